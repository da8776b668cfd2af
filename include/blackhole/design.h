/* design.h - the numeric problem an estimator sees.
 *
 * bh_design_build() takes a parsed formula and a data frame and produces:
 * the design matrix X (column-major), the response(s), weights, offset,
 * cluster and random-effect groupings, after listwise deletion of rows with
 * a missing value in any variable the model uses.  It owns the trained
 * bh_terms, so the same model can be evaluated on other data.
 *
 * Ownership: a bh_design owns everything it points to.  Fits keep a
 * non-owning pointer to their design; free the design after its fits.
 */
#ifndef BH_DESIGN_H
#define BH_DESIGN_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/frame.h"
#include "blackhole/formula.h"
#include "blackhole/terms.h"

typedef enum {
    BH_WEIGHTS_ANALYTIC = 0,  /* precision weights (R's lm/glm weights,
                                 Stata aweights): df = n - p            */
    BH_WEIGHTS_FREQUENCY = 1  /* replication counts (Stata fweights):
                                 n = sum of weights                    */
} bh_weight_kind;

typedef struct {
    const char *weights;      /* column name or NULL                        */
    bh_weight_kind weight_kind;
    const char *cluster;      /* column name or NULL                        */
} bh_design_options;

void bh_design_default_options(bh_design_options *opt);

/* A grouping of the design rows (cluster variable or random-effect factor). */
typedef struct {
    char *name;               /* "firm", "firm:rep_id"                      */
    size_t *code;             /* n group codes 0..ngroups-1                 */
    size_t ngroups;
    char **labels;            /* ngroups labels, in frame level order       */
    /* Memory kept for the next build into this grouping (a design rebuilt
     * by bh_design_rebuild refills its groupings in place): */
    size_t cap_code;          /* entries allocated in code                  */
    size_t cap_labels;        /* entries allocated in labels when more than
                                 ngroups: those past ngroups are NULL or
                                 owned strings kept for the next build
                                 (bh_grouping_free frees them); 0 =
                                 ngroups                                  */
    size_t label_room;        /* bytes allocated in every non-NULL entry of
                                 labels (up to cap_labels); 0 = each holds
                                 its text exactly                         */
} bh_grouping;

typedef struct bh_design {
    bh_terms *terms;          /* owned, trained on the estimation rows      */
    char *source;             /* data file name for messages                */
    size_t n;                 /* rows used                                  */
    size_t p;                 /* columns of X                               */
    double *x;                /* n x p, column-major: x[j*n + i]            */
    size_t m;                 /* responses                                  */
    double *y;                /* n x m, column-major                        */
    char **ynames;            /* m response labels                          */
    double *w;                /* n weights, or NULL for unit weights        */
    bh_weight_kind weight_kind;
    char *weights_name;       /* column name or NULL                        */
    double *offset;           /* n offsets (sum of offset() terms) or NULL  */
    bh_grouping *cluster;     /* NULL unless requested                      */
    bh_grouping *re;          /* random-effect groupings, one per (1 | g)   */
    size_t nre;
    size_t pz;                /* columns of the precision design            */
    double *z;                /* n x pz, column-major, or NULL (no phi part) */
    size_t *rows;             /* frame row of each design row; NULL (row i
                                 is frame row i) only in a design from
                                 bh_design_build_consume that dropped no
                                 row: use bh_design_data_row()             */
    size_t nrow_data;         /* rows in the data frame                     */
    size_t ndropped;          /* rows removed by listwise deletion          */
    size_t cap_x, cap_y, cap_rows; /* allocated lengths of x, y and rows
                                 (bh_design_rebuild reuses them); 0 in
                                 hand-built designs                       */
    struct bh_design_scratch *scratch; /* owned; what bh_design_rebuild
                                 keeps for the next build (evaluation
                                 buffers, the last build's names); NULL in
                                 hand-built designs                       */
} bh_design;

/* Build the design.  Errors: unknown variables (BH_EFORMULA, with formula
 * position and a suggestion), unusable columns or values (BH_EDATA naming
 * the variable, line and value), no complete rows (BH_EDATA), negative or
 * non-finite weights (BH_EDATA naming the row). */
bh_status bh_design_build(const bh_formula *f, const bh_frame *data,
                          const bh_design_options *opt, bh_design **out,
                          bh_error *err);
void bh_design_free(bh_design *d);

/* The same design from a frame that is no longer needed afterwards: the
 * frame's columns are freed as soon as the design holds what it needs of
 * them (X is filled term by term while the columns it came from are
 * released), so the data and the design never both live in full.  *data is
 * freed and set to NULL in every case, success or error.  Same numbers and
 * same error messages as bh_design_build; `rows` is NULL when no row was
 * dropped (nothing is left to index). */
bh_status bh_design_build_consume(const bh_formula *f, bh_frame **data,
                                  const bh_design_options *opt,
                                  bh_design **out, bh_error *err);

/* Build the design of (f, data) into d, a design from bh_design_build or
 * bh_design_rebuild, replacing its contents: x, y and rows keep their
 * memory when it is large enough, and the scratch of the build (column
 * lists, evaluation buffers, names) is kept in d, so repeated builds of the
 * same model (simulations) allocate none of it again.  The same numbers and errors as bh_design_build; on
 * error d is left empty (n = p = 0), to be rebuilt or freed. */
bh_status bh_design_rebuild(const bh_formula *f, const bh_frame *data,
                            const bh_design_options *opt, bh_design *d,
                            bh_error *err);

/* 1-based row of the data frame that design row i came from (messages). */
size_t bh_design_data_row(const bh_design *d, size_t i);

/* Name of design column j: the trained terms' name, else names[j] (names
 * supplied with a hand-built design; may be NULL), else "x<j+1>" written
 * into buf. */
const char *bh_design_colname(const bh_design *d, const char *const *names, size_t j,
                              char *buf, size_t bufsize);

/* Whether the model has an intercept: from the terms when known, else a
 * column that is one non-zero constant (a hand-built design has no terms;
 * R's summary decides by the terms). */
int bh_design_has_intercept(const bh_design *d);

/* Build a grouping from a column for the given frame rows (used for
 * clusters and random effects; several columns form their interaction). */
bh_status bh_grouping_build(const bh_frame *data, const char *const *cols,
                            size_t ncols, const size_t *rows, size_t n,
                            bh_grouping **out, bh_error *err);
void bh_grouping_free(bh_grouping *g);

#endif
