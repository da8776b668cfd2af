/* frame.h - a typed, column-oriented data frame.
 *
 * Ownership: a bh_frame owns all of its columns, names, levels and strings;
 * bh_frame_free() releases everything.  Pointers returned by accessors stay
 * valid until the frame is freed or a column is added.
 *
 * Numeric columns hold doubles with a missing mask.  Categorical columns hold
 * level codes into a sorted level table (the first level is the base level of
 * treatment contrasts).  Level order: like R's sort() in an English locale
 * for ASCII text: case-insensitive first, lower case before upper case on a
 * tie, then byte order (so "alpha" < "Beta" < "beta" < "gamma").  On a
 * tie the first case difference from the left decides ("aB" < "Ab").
 * Checked against R 4.2.2 sort() (ICU root collation; this machine has no
 * en_US locale) for letters and digits: tests/fixtures/r/csv_levels.R.
 * Known differences from R: punctuation (ICU puts it before digits; here it
 * sorts by byte value) and non-ASCII text (byte order here).
 */
#ifndef BH_FRAME_H
#define BH_FRAME_H

#include <stddef.h>
#include <stdio.h>
#include "blackhole/status.h"

typedef enum { BH_COL_NUMERIC = 0, BH_COL_CATEGORICAL = 1 } bh_coltype;

typedef struct {
    char *name;
    bh_coltype type;
    size_t n;              /* = frame nrow */
    unsigned char *na;     /* n flags: 1 = missing (both types)             */
    double *num;           /* numeric: n values, NAN where missing; else NULL */
    int *code;             /* categorical: n codes 0..nlevels-1, -1 missing  */
    char **levels;         /* categorical: nlevels sorted level strings      */
    size_t nlevels;
    /* Where a column read as categorical looked numeric: how many of its
     * non-missing fields parsed as numbers, and the first field that did
     * not (text and 1-based physical line in the source).  Lets a formula
     * that uses the column numerically say exactly which value is at fault. */
    size_t numeric_fields;
    size_t first_text_line;
    char *first_text;
    size_t file_column;    /* 1-based column position in the source file */
    /* Memory kept by a column refilled in place (bh_generate_ws_reuse),
     * all 0 in columns built once: */
    size_t cap;            /* rows allocated in na and num or code when
                              more than n; 0 = n                         */
    size_t levels_cap;     /* entries allocated in levels when more than
                              nlevels: those past nlevels are NULL or
                              owned strings kept for the next refill
                              (freed with the column); 0 = nlevels      */
    size_t level_room;     /* bytes allocated in every non-NULL entry of
                              levels (up to levels_cap) when set, so a
                              refill writes level text in place; 0 =
                              each holds its text exactly               */
} bh_column;

typedef struct {
    char *source;          /* file name for messages, "<stdin>" for stdin */
    size_t nrow;
    size_t ncol;
    bh_column *cols;
    size_t cap;            /* allocated length of cols */
} bh_frame;

/* An empty frame with nrow rows and no columns. source may be NULL. */
bh_frame *bh_frame_new(const char *source, size_t nrow);
void bh_frame_free(bh_frame *f);

/* Column by exact name, or NULL. */
const bh_column *bh_frame_col(const bh_frame *f, const char *name);
/* Index of a column by name, or -1. */
long bh_frame_index(const bh_frame *f, const char *name);

/* The column name closest to `name` by edit distance, if close enough to be
 * a plausible typo (distance <= max(1, strlen/3)); else NULL. */
const char *bh_frame_suggest(const bh_frame *f, const char *name);

/* Add a numeric column (values copied; na may be NULL = derive from isnan).
 * Fails with BH_EUSAGE on a duplicate or empty name. */
bh_status bh_frame_add_numeric(bh_frame *f, const char *name,
                               const double *values, const unsigned char *na,
                               bh_error *err);

/* Add a categorical column from strings (copied; NULL entries are missing);
 * levels are computed and sorted as described above. */
bh_status bh_frame_add_categorical(bh_frame *f, const char *name,
                                   const char *const *values, bh_error *err);

/* Add a column that the caller built; the frame takes ownership of every
 * pointer in *col (also on failure).  col->n must equal f->nrow. */
bh_status bh_frame_adopt(bh_frame *f, bh_column *col, bh_error *err);

/* Free a column's values (num, code, na) and keep its name, type, levels
 * and position, so that messages can still name it: a consumer that has
 * copied what it needs (bh_design_build_consume) gives the memory back
 * column by column.  The column's values must not be read afterwards. */
void bh_frame_release_column(bh_frame *f, size_t j);

/* Free columns ncol.. (values, names, levels): the frame keeps its first
 * ncol columns.  Nothing happens when it has no more than ncol. */
void bh_frame_drop_columns(bh_frame *f, size_t ncol);

/* Compare two level strings in frame level order (see top of file). */
int bh_level_cmp(const char *a, const char *b);

/* Write the frame as CSV (header + rows, ',' separator, RFC 4180 quoting,
 * numbers in %.15g as R's write.csv does, missing as "NA").  Text is quoted
 * only when it must be, and also when it is "NA" or empty to show it was
 * text (this reader and R's read.csv still read such a field as missing);
 * non-missing NaN/Inf are written "NaN", "Inf", "-Inf" as R does.
 * Unlike R, large integers come out in exponent form (1.23456789012346e+17).
 * Fails with BH_EOUTPUT when the stream cannot be written (it is flushed). */
bh_status bh_frame_write_csv(const bh_frame *f, FILE *out, bh_error *err);

#endif
