/* csvread.h - read a CSV file into a bh_frame (libcsv underneath).
 *
 * Ownership: on success *out is a new frame the caller frees with
 * bh_frame_free(); on failure *out is NULL and nothing is left allocated.
 *
 * Streams: the input is read in fixed-size chunks and fields go straight
 * into growing column buffers, so memory is the final columns plus slack.
 * Accepts a header row, a configurable separator, RFC 4180 quoting (embedded
 * separators, doubled quotes, newlines), CRLF, a UTF-8 byte order mark and a
 * missing final newline.  Blank lines are skipped.
 *
 * Values:
 * - Missing: an empty field, "NA", and every string in opt->na (exact
 *   match; quoting makes no difference).
 * - A column is numeric when every non-missing field parses fully with
 *   strtod as a finite number (C numeric locale; decimal point '.'; hex
 *   such as 0x1A is accepted, as R's read.csv does).  Leading and trailing
 *   blanks (space, tab) are ignored for this test only: names and text
 *   values keep them.  Otherwise the column is categorical, with levels in
 *   bh_level_cmp() order (see frame.h).
 * - A column that is numeric up to some row and then meets text switches to
 *   categorical; the numbers read before the switch become levels spelled
 *   with %.15g ("1.50" -> "1.5"), later fields keep their spelling.  The
 *   column records numeric_fields, first_text and first_text_line.
 * - Underflow ("1e-400") reads as the nearest double (0 or subnormal).
 *
 * Errors (BH_EINPUT) name file, physical line (1-based, counted at '\n', so
 * the header is line 1 unless blank lines precede it) and column (1-based
 * field position) and
 * quote the value: ragged rows, unterminated quotes (the line where the
 * quote opened), malformed quoting, duplicate or empty column names, an
 * empty file (0 bytes, or only a BOM and/or blank lines), NaN/Inf text or a
 * number out of double range in a column that is otherwise numeric (text
 * columns may hold "Inf" as a level), non-UTF-8 bytes (overlong forms and
 * surrogates included), NUL bytes, and read errors.  A file holding only
 * the header row is valid and gives a frame with 0 rows (all columns
 * numeric).  A bad separator option (quote, CR, LF, NUL) is BH_EUSAGE.
 */
#ifndef BH_CSVREAD_H
#define BH_CSVREAD_H

#include <stdio.h>
#include "blackhole/frame.h"

typedef struct {
    char sep;                    /* field separator, default ','          */
    const char *const *na;       /* extra missing-value strings           */
    size_t n_na;                 /* "" and "NA" are always missing        */
    /* Parsing threads: 0 = the online CPUs, 1 = one thread (the plain
     * streaming reader).  With more than one, the input is read in blocks
     * of block_bytes (0 = 4 MB); the complete lines of a block are split
     * into one part per thread, parsed in parallel, and appended in file
     * order.  A line holding a quote or a lone CR, or a line in error, is
     * handed to the one-thread reader (so is the rest of its part), which
     * keeps quoting, type inference, levels and every error message, line
     * and column exactly as with threads = 1.  Memory: the block, plus
     * about 9 bytes per field of the block, on top of the columns. */
    unsigned threads;
    size_t block_bytes;
} bh_csv_options;

void bh_csv_default_options(bh_csv_options *opt);

/* Read a file; path "-" or "stdin" reads standard input. */
bh_status bh_csv_read_path(const char *path, const bh_csv_options *opt,
                           bh_frame **out, bh_error *err);

/* Read an open stream; `source` names it in messages. */
bh_status bh_csv_read_stream(FILE *in, const char *source,
                             const bh_csv_options *opt, bh_frame **out,
                             bh_error *err);

#endif
