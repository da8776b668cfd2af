/* terms.h - a formula bound to data: model terms that can be re-evaluated.
 *
 * bh_terms is what a fitted model remembers of its formula: which raw
 * columns it reads, which variables are numeric and which are factors (with
 * their training levels), the trained state of center()/scale(), the
 * contrast coding of every term and the names of the design columns.  With
 * it a design row can be evaluated on any data frame that has the raw
 * columns (prediction, counterfactual margins, simulated data), optionally
 * with some raw variables overridden, and differentiated with respect to any
 * numeric raw variable (marginal effects).
 *
 * Column naming and contrast coding follow R's model.matrix exactly:
 * "(Intercept)", "x", "a:b", "factor(race)2", "firmbeta", "I(x^2)",
 * treatment contrasts with the first level as base, full indicator coding
 * where a term's margin is absent from the model.
 *
 * Training differs from R in one deliberate way: center(x) and scale(x)
 * use the mean and sd (n - 1) of the estimation rows (after listwise
 * deletion), whereas R's scale() inside a formula is evaluated on the whole
 * column before NA removal.  Training on the fitted sample makes a centred
 * variable have mean exactly 0 there, so main effects in models with
 * interactions are effects at the sample mean, and the same state is
 * reused unchanged for prediction on new data.
 *
 * Derivatives: abs() has derivative 0 at 0; factor variables contribute 0.
 *
 * Ownership: a bh_terms owns a deep copy of the formula it was trained
 * from; the caller's formula is never modified.
 */
#ifndef BH_TERMS_H
#define BH_TERMS_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/frame.h"
#include "blackhole/formula.h"

typedef enum { BH_TV_NUMERIC = 0, BH_TV_FACTOR = 1 } bh_tvkind;

typedef struct {
    char *label;              /* "x", "factor(g)", "firm"                  */
    bh_tvkind kind;
    const bh_expr *expr;      /* points into terms->formula               */
    char **levels;            /* factor: training levels, base first      */
    size_t nlevels;
    double *levnum;           /* factor(numeric): value of each level
                                 (strtod of its "%.15g" label), else NULL */
} bh_tvar;

typedef struct {
    char *label;              /* "a:b"                                     */
    size_t *vars;             /* indices into terms->vars (formula order) */
    size_t nvars;
    unsigned char *contrast;  /* per variable: 1 treatment contrasts,
                                 0 full indicator coding                  */
    size_t col0, ncols;       /* its design columns                       */
} bh_tterm;

typedef struct bh_terms {
    bh_formula *formula;      /* owned, trained copy                      */
    char **rawvars;           /* every raw column the formula reads
                                 (responses, terms, offsets, random-effect
                                 groups, phi part), first appearance order */
    size_t nraw;
    size_t *rawpos;           /* formula column of each raw variable's
                                 first appearance (for messages)          */
    bh_tvar *vars;            /* parallel to formula->vars                */
    size_t nvars;
    bh_tterm *terms;          /* parallel to formula->terms               */
    size_t nterms;
    int intercept;
    size_t p;                 /* design columns                           */
    char **colnames;          /* p R-style names                          */
    size_t *col_term;         /* term of each column; SIZE_MAX = intercept */
    struct bh_terms *phi;     /* trained precision part, or NULL          */
} bh_terms;

/* A counterfactual setting of one raw variable for every row: a number for
 * numeric variables (or factor(numeric)), a level string for categorical. */
typedef struct {
    size_t raw;               /* index into terms->rawvars */
    double value;
    const char *level;        /* non-NULL for categorical raw variables */
} bh_override;

/* Which frame column each raw variable reads: map[k] = column index of
 * rawvars[k] in the frame.  Fails (BH_EFORMULA) naming the variable and its
 * formula position, with a "did you mean" suggestion, when a column is
 * missing, and (BH_EDATA) when a column's type cannot serve the variable
 * (e.g. text in a column used numerically: names line, column and value). */
bh_status bh_terms_map(const bh_terms *t, const bh_frame *data, size_t *map,
                       bh_error *err);

/* Bind a parsed formula to data and train it on the given rows (the
 * estimation sample): decides numeric vs factor for each variable, records
 * factor levels present in those rows, computes center()/scale() state over
 * those rows, builds term coding and column names. */
bh_status bh_terms_train(const bh_formula *f, const bh_frame *data,
                         const size_t *rows, size_t nrows, bh_terms **out,
                         bh_error *err);
void bh_terms_free(bh_terms *t);

/* bh_terms_free(*t) then bh_terms_train(f, ...) into *t, with the same
 * result and errors, but cheaper for repeated fits (simulations): when *t
 * was trained from a formula with the same text and the new rows give the
 * same variable kinds and factor levels, *t is kept and only its
 * center()/scale() state is trained again.  *t may be NULL; it is NULL
 * after an error. */
bh_status bh_terms_retrain(const bh_formula *f, const bh_frame *data,
                           const size_t *rows, size_t nrows, bh_terms **t,
                           bh_error *err);

/* Raw-variable names the formula reads (RHS, LHS, offsets, random effects
 * and phi part), each once, before any training; for listwise deletion.
 * *names is a malloc'ed array of pointers into f (free only the array). */
bh_status bh_formula_rawvars(const bh_formula *f, const char ***names,
                             size_t *n, bh_error *err);

/* Every raw variable of the formula with the frame column it reads
 * (*names points into f, *cols[k] = column index; free both arrays only).
 * Unknown variables give BH_EFORMULA with formula position and a "did you
 * mean" suggestion.  No type checks (see bh_terms_map). */
bh_status bh_formula_find_columns(const bh_formula *f, const bh_frame *data,
                                  const char ***names, size_t **cols,
                                  size_t *n, bh_error *err);

/* Evaluate design rows rows[0..n-1] of `data` at once into the column-major
 * block x[j*ldx + i] (ldx >= n): the fast path for whole samples (design
 * building, counterfactual predictions).  With draw != SIZE_MAX the block
 * receives d x / d rawvars[draw] instead of x.  No allocation per row. */
bh_status bh_terms_eval_rows(const bh_terms *t, const bh_frame *data,
                             const size_t *map, const size_t *rows, size_t n,
                             const bh_override *ov, size_t nov, size_t draw,
                             double *x, size_t ldx, bh_error *err);

/* Evaluate only term q (its columns col0 .. col0 + ncols - 1, intercept
 * excluded) at rows[0..n-1] into x[j*ldx + i], j = 0..ncols-1: the same
 * numbers as bh_terms_eval_rows gives in those columns, reading only the
 * term's variables (so a design can be filled term by term while the data
 * columns no longer needed are released). */
bh_status bh_terms_eval_term(const bh_terms *t, size_t q, const bh_frame *data,
                             const size_t *map, const size_t *rows, size_t n,
                             double *x, size_t ldx, bh_error *err);

/* Evaluate a numeric expression of t->formula (a response, an offset) at
 * rows[0..n-1] into val[0..n-1] (and dval, when draw != SIZE_MAX). */
bh_status bh_terms_eval_expr_rows(const bh_terms *t, const bh_expr *e,
                                  const bh_frame *data, const size_t *map,
                                  const size_t *rows, size_t n,
                                  const bh_override *ov, size_t nov,
                                  size_t draw, double *val, double *dval,
                                  bh_error *err);

/* Evaluate design row `row` of `data` into x[0..p-1].  ov/nov override raw
 * variables (may be NULL/0).  Missing inputs give BH_EDATA; a factor level
 * unseen in training gives BH_EDATA naming level and variable. */
bh_status bh_terms_row(const bh_terms *t, const bh_frame *data,
                       const size_t *map, size_t row, const bh_override *ov,
                       size_t nov, double *x, bh_error *err);

/* d x[j] / d rawvars[raw] at that row, into dx[0..p-1] (exact, by forward
 * differentiation through every term and transform; 0 for factor columns).
 * Trained center()/scale() state is treated as constant. */
bh_status bh_terms_row_deriv(const bh_terms *t, const bh_frame *data,
                             const size_t *map, size_t row,
                             const bh_override *ov, size_t nov, size_t raw,
                             double *dx, bh_error *err);

/* Evaluate one numeric expression of t->formula (a response, an offset:
 * `e` must point into t->formula, whose variables are bound) at a row, with
 * optional derivative with respect to raw variable `draw` (SIZE_MAX: none;
 * *dval may then be NULL). */
bh_status bh_terms_eval_expr(const bh_terms *t, const bh_expr *e,
                             const bh_frame *data, const size_t *map,
                             size_t row, const bh_override *ov, size_t nov,
                             size_t draw, double *val, double *dval,
                             bh_error *err);

/* Scratch memory kept between calls, so that repeated designs of the same
 * model (simulations) allocate nothing for these steps: the _ws variants
 * below give the same results, statuses and messages as the plain
 * functions.  A workspace grows to the largest problem seen; one per
 * thread (it is written by every call). */
typedef struct bh_terms_ws bh_terms_ws;
bh_terms_ws *bh_terms_ws_alloc(void);
void bh_terms_ws_free(bh_terms_ws *ws);

/* bh_formula_find_columns with the arrays kept in ws: *names (pointers into
 * f) and *cols stay valid until the next call of this function with ws
 * (free neither). */
bh_status bh_formula_find_columns_ws(const bh_formula *f, const bh_frame *data,
                                     bh_terms_ws *ws, const char *const **names,
                                     const size_t **cols, size_t *n,
                                     bh_error *err);

/* bh_terms_eval_rows with its block buffers in ws (NULL: allocated for the
 * call). */
bh_status bh_terms_eval_rows_ws(const bh_terms *t, const bh_frame *data,
                                const size_t *map, const size_t *rows, size_t n,
                                const bh_override *ov, size_t nov, size_t draw,
                                double *x, size_t ldx, bh_terms_ws *ws,
                                bh_error *err);

/* bh_terms_retrain with the scratch of an in-place retraining in ws (NULL:
 * allocated for the call). */
bh_status bh_terms_retrain_ws(const bh_formula *f, const bh_frame *data,
                              const size_t *rows, size_t nrows, bh_terms **t,
                              bh_terms_ws *ws, bh_error *err);

#endif
