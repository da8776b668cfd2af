/* fit.h - the one result type every estimator returns.
 *
 * A bh_fit holds coefficients (per component for multi-equation models),
 * their covariance and the coefficient table derived from it, fit
 * statistics, convergence and warnings, and the pieces that robust,
 * cluster and bootstrap inference need: the bread (inverse information,
 * unscaled) and per-observation scores.
 *
 * Scores: for observation i and score block b, the score of the block's
 * coefficients coef0..coef0+ncol-1 is  xb[i, .] * u[i, b],  where xb is the
 * block's n x ncol column-major design.  OLS and GLMs have one block (X);
 * multi-component models have one block per linear predictor.  An
 * estimator whose scores do not factor this way fills `scores` (n x p,
 * column-major) instead.
 *
 * Ownership: a fit owns all arrays and strings in it, except `design`,
 * which must outlive the fit.  bh_fit_free() releases the rest.
 */
#ifndef BH_FIT_H
#define BH_FIT_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/design.h"

typedef struct {
    double r2, adj_r2;        /* linear models                              */
    double sigma;             /* residual standard deviation                */
    double fstat, f_df1, f_df2, f_pvalue;  /* overall F test (model vs intercept) */
    double loglik, aic, bic;
    double deviance, null_deviance;
    double df_model;          /* estimated coefficients (incl. intercept)   */
    double df_resid;
    double pseudo_r2_mcfadden, pseudo_r2_tjur, auc;
    double hl_stat, hl_df, hl_pvalue;  /* Hosmer-Lemeshow goodness of fit */
    double null_df;           /* residual df of the null model             */
} bh_fit_stats;

/* A hypothesis test attached to a fit (Wald test of --test, likelihood
 * ratio or F test of --compare). */
typedef struct {
    char *kind;               /* "wald", "lr", "f"                          */
    char *label;              /* the hypothesis, or "vs (1)"                */
    double statistic;         /* chi^2, or F when df2 is finite             */
    double df1, df2;          /* df2 = INFINITY for chi^2 tests             */
    double p_value;
} bh_fit_test;

struct bh_boot_result;

typedef struct {
    const double *x;          /* n x ncol column-major (not owned)          */
    size_t ncol;
    size_t coef0;             /* first coefficient of the block             */
} bh_score_block;

typedef struct bh_fit {
    char *name;               /* model name ("(1)" when not given)          */
    char *formula;            /* formula text                               */
    char *family, *link;      /* "gaussian"/"identity" for least squares    */
    char *method;             /* "ols", "wls", "irls", "ml", ...            */
    int linear;               /* 1 for least squares (small-sample rules)   */
    const bh_design *design;  /* not owned                                  */

    size_t nobs;              /* rows used (sum of weights if frequency)    */
    size_t nrows;             /* rows of the per-observation arrays below
                                 (design rows, zero-weight rows included)  */
    size_t ndropped;          /* rows removed by listwise deletion          */

    size_t p;                 /* coefficients, all components               */
    char **term;              /* p term names                               */
    char **component;         /* p component names, "" if single-equation   */
    double *beta;             /* p estimates, NAN where aliased             */
    unsigned char *aliased;   /* p flags: not estimable (R's NA)            */
    size_t rank;              /* estimated coefficients                     */

    /* Covariance: p x p row-major, NAN in aliased rows/columns. */
    double *vcov;
    char vcov_type[96];       /* "classical", "HC1", "cluster(firm), CR1"... */
    size_t nclusters;         /* 0 unless cluster-robust                    */
    double df_inference;      /* df of t tests; INFINITY for z tests        */
    double level;             /* confidence level, e.g. 0.95                */

    /* Coefficient table (bh_fit_summarize), p entries each. */
    double *se, *statistic, *p_value, *conf_low, *conf_high;

    bh_fit_stats stats;
    double dispersion;        /* sigma^2 for least squares, 1 for ML        */

    int converged;
    size_t iterations;

    char **warnings;
    size_t nwarnings;

    char **notes;             /* estimator-specific facts worth printing
                                 (groups, ICC, transformations applied)    */
    size_t nnotes;
    size_t warnings_cap, notes_cap; /* entries allocated in warnings and
                                 notes when more than nwarnings, nnotes (a
                                 recycled fit keeps its message strings
                                 there for the next; bh_fit_free frees
                                 them); 0 = as many as messages           */

    bh_fit_test *tests;       /* hypothesis tests requested for this model  */
    size_t ntests;
    struct bh_boot_result *boot; /* bootstrap inference, or NULL (owned)    */

    /* Pieces for sandwich / cluster / bootstrap inference. */
    double *bread;            /* p x p row-major unscaled inverse information
                                 (X'WX)^-1 for least squares; NAN aliased  */
    size_t nblocks;
    bh_score_block *blocks;
    double *u;                /* n x nblocks column-major score multipliers */
    double *scores;           /* n x p explicit scores, or NULL             */
    double *hat;              /* n leverages, or NULL                       */
    double *fitted;           /* n x m fitted values (response scale)       */
    double *resid;            /* n x m response residuals                   */
    size_t rows_cap;          /* rows allocated in fitted, resid (times
                                 the responses), u (times nblocks), hat
                                 and scores (times p) when set
                                 (bh_glm_result: its workspace's size, so
                                 a recycled fit can give them back);
                                 0 = not known                            */
} bh_fit;

/* Allocate a fit for p coefficients with statistics, estimates and the
 * covariance set to NAN, term names unset (NULL), components "" and
 * df_inference INFINITY, level 0.95.  n (stored in nrows) is the number of
 * rows of the per-observation arrays (fitted, resid: n*m; u: n*nblocks),
 * which are allocated when non-zero; blocks (nblocks entries) is zeroed;
 * hat and scores are left NULL for the estimator to allocate.  Returns
 * NULL when out of memory. */
bh_fit *bh_fit_alloc(size_t p, size_t n, size_t m, size_t nblocks);
void bh_fit_free(bh_fit *fit);

/* Make fit, an earlier result with p coefficients and nblocks score
 * blocks, as bh_fit_alloc(p, 0, m, nblocks) would return it, keeping its
 * memory (repeated fits in simulations allocate nothing for it): the
 * p-arrays and the name strings are kept (the strings keep their text
 * until set again), statistics, estimates and the covariance become NAN,
 * warnings and notes are emptied (their memory kept for the next ones:
 * warnings_cap, notes_cap), tests, the bootstrap and the per-row arrays
 * are freed.
 * Returns 0, or -1 (fit untouched) when its shape differs. */
int bh_fit_recycle(bh_fit *fit, size_t p, size_t nblocks);

/* bh_fit_recycle for an estimator that fills the per-row arrays itself
 * (repeated fits of one model: same responses, p and blocks): when the
 * fit's rows_cap is at least rows, its non-NULL fitted, resid, u, hat and
 * scores are kept (their contents stale, to be overwritten for the rows
 * used) with rows_cap, and 0 is returned; otherwise they are freed
 * (rows_cap 0) and 1 is returned.  Unlike bh_fit_recycle, the components
 * keep their text as well (the estimator sets every one: with the same
 * text nothing is allocated).  -1 (fit untouched) when its shape
 * differs. */
int bh_fit_recycle_rows(bh_fit *fit, size_t p, size_t nblocks, size_t rows);

/* Set a string field (copies; keeps the field when it already holds that
 * text). Returns BH_ENOMEM on failure. */
bh_status bh_fit_set_string(char **field, const char *value);

/* Append a warning (printf-style). */
bh_status bh_fit_warn(bh_fit *fit, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append a note (printf-style): facts, not problems (those are warnings). */
bh_status bh_fit_note(bh_fit *fit, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Attach a test result (strings copied). */
bh_status bh_fit_add_test(bh_fit *fit, const char *kind, const char *label,
                          double statistic, double df1, double df2,
                          double p_value);

/* Score row i (p values, 0 for aliased coefficients) into s: from the
 * explicit scores when set, else the sum over blocks of xb[i, .] * u[i, b]. */
void bh_fit_score(const bh_fit *fit, size_t i, double *s);

/* Score rows i0 .. i0+rows-1 restricted to the coefficients idx[0..r-1]
 * (none aliased), into the row-major block g[(i - i0) * r + k]: the same
 * numbers as bh_fit_score gives in those places, bit for bit, gathered
 * column by column (the covariance meats build their BLAS blocks so). */
void bh_fit_score_rows(const bh_fit *fit, size_t i0, size_t rows, const size_t *idx,
                       size_t r, double *g);

/* Fill se, statistic, p_value and conf_low/high from vcov, df_inference and
 * the confidence level (0 < level < 1): t tests with df_inference degrees of
 * freedom when it is finite and positive, z tests when it is INFINITY;
 * two-sided p-values from the upper tail (exact for tiny p).  Aliased
 * coefficients, and those with a NAN or negative variance, get NAN. */
bh_status bh_fit_summarize(bh_fit *fit, double level, bh_error *err);

#endif
