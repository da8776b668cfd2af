/* margins.h - effects on the response scale: average marginal effects,
 * effects at the means, simple slopes on a counterfactual grid, average
 * predictions, Johnson-Neyman boundaries and Ai-Norton interaction effects.
 *
 * In a nonlinear model the coefficient of a product term is not the
 * interaction effect (Ai & Norton 2003) and a coefficient is not the change
 * in E[y]; these are computed here on the scale researchers report.
 *
 * Quantities (every one an average over the estimation sample, rows
 * weighted by frequency weights when the fit has them; analytic weights
 * are not used, as marginaleffects' default):
 *   ame          d E[y] / d x per row, averaged; through every term that
 *                contains x (interactions, I(x^2), log(x), center(x),
 *                offsets) by the exact derivatives of the design columns
 *                (terms.h).  Factors, and 0/1 numeric variables with
 *                `discrete`, give discrete changes: each level against the
 *                base level (term "race[2 vs 1]"), 0 -> 1 (term "smoke").
 *   mem          the same at the means: numeric predictors at their sample
 *                means, factors at their sample proportions (the design
 *                columns of factor terms are averaged, as Stata's atmeans
 *                sets each indicator to its mean); the effect is evaluated
 *                once at that averaged design row.
 *   slope        the effect with moderators set to grid values for every
 *                row, then averaged (marginaleffects' counterfactual grid);
 *                several `at` specifications form a Cartesian grid.
 *   prediction   average E[y] at each grid point (or overall).
 *   interaction  Ai-Norton: d^2 E[y] / da db per row, averaged; a cross
 *                difference for factors and, with `discrete`, 0/1
 *                variables; mixed (derivative of a difference) otherwise.
 *                The design's cross derivative d^2 x / da db comes from
 *                central differences of the exact first derivatives with
 *                Richardson extrapolation (exact up to rounding for
 *                products and polynomials; ~1e-12 relative otherwise).
 *                For identity links it equals the product coefficient.
 *   jn           Johnson-Neyman: moderator values where the conditional
 *                effect of x (a slope on the grid moderator = m) crosses
 *                |estimate / se| = critical value.  Identity link with a
 *                design affine in the moderator: the roots of the
 *                quadratic, anywhere on the line; otherwise the roots of
 *                est^2 - c^2 se^2 on a grid of the observed range
 *                extended by `jn_extend` widths on each side, refined by
 *                Brent's method.  Each boundary says whether it lies in
 *                the observed range.  A band over the observed range
 *                (estimate, se, limits, significance) is kept for plots.
 *
 * Standard errors: delta method, J V J' with J the analytic derivative of
 * the averaged quantity with respect to the coefficients (accumulated in
 * one pass over the rows: memory is linear in n, never n x p), V the fit's
 * covariance (classical, HC, cluster: whatever the fit carries).  Tests are
 * t tests with fit->df_inference when finite, z tests otherwise.  The
 * sampling variability of the covariates is not included (as Stata and
 * marginaleffects).  Aliased coefficients count as zero.
 *
 * --at values: numbers, `mean`, `sd`, `min`, `max`, `median`, `pNN`
 * (quantile, R's type 7) of the estimation sample, with + - * / and
 * parentheses ("mean-sd", "mean+2*sd"); factor moderators take levels.
 *
 * Extension (multi-equation and mixed models): an estimator describes its
 * mean function through bh_margins_model: K linear predictors (each with
 * trained terms and the position of its coefficients in fit->beta) and a
 * callback that returns the C mean components and their derivatives with
 * respect to the K linear predictors up to third order.  Everything else
 * (grids, derivatives of the design, Jacobians, delta method, JN, output)
 * is shared.  Margins are reported per component.
 *
 * Ownership: the model description borrows everything it points to; a
 * result owns all its strings and arrays (bh_margins_result_free).
 */
#ifndef BH_MARGINS_H
#define BH_MARGINS_H

#include <stddef.h>
#include "blackhole/dirichlet.h"
#include "blackhole/fit.h"
#include "blackhole/frame.h"
#include "blackhole/glm.h"
#include "blackhole/status.h"
#include "blackhole/terms.h"

typedef enum {
    BH_MARGIN_AME = 0, BH_MARGIN_MEM, BH_MARGIN_SLOPE, BH_MARGIN_PREDICTION,
    BH_MARGIN_INTERACTION, BH_MARGIN_JN
} bh_margin_type;

/* "ame", "mem", "slope", "prediction", "interaction", "jn". */
const char *bh_margin_type_name(bh_margin_type t);

/* The mean function at one row: eta[0..K-1] -> mu[0..C-1] and its
 * derivatives, row-major: d1[c*K + k] = d mu_c / d eta_k,
 * d2[(c*K + k)*K + l], d3[((c*K + k)*K + l)*K + m].  Only the orders up to
 * `order` (0..3) are needed; higher arrays may then be NULL.  Must be
 * finite for any finite eta (clamp as the family does). */
typedef bh_status (*bh_margins_mean_fn)(const void *ctx, const double *eta,
                                        int order, double *mu, double *d1,
                                        double *d2, double *d3,
                                        bh_error *err);

/* One linear predictor: eta_k = x_k' beta[coef0 .. coef0 + terms->p - 1]
 * + offsets of terms->formula. */
typedef struct {
    const bh_terms *terms;
    size_t coef0;
} bh_margins_eq;

typedef struct {
    const bh_fit *fit;          /* beta, aliased, vcov, df_inference, level */
    const bh_frame *data;       /* the data the model was estimated on     */
    const size_t *rows;         /* frame rows of the estimation sample     */
    size_t n;
    const double *freq;         /* n frequency weights, or NULL            */
    size_t neq;                 /* K                                       */
    const bh_margins_eq *eq;    /* K equations; NULL with K = 1: `single`  */
    bh_margins_eq single;       /* the one equation of bh_margins_model_glm
                                   (so the description can be copied)      */
    size_t nout;                /* C                                       */
    const char *const *out_names; /* C component labels; NULL when C = 1  */
    bh_margins_mean_fn mean;
    const void *mean_ctx;
    int identity;               /* K = C = 1 and mu = eta (exact JN)       */
} bh_margins_model;

/* Describe a single-equation fit (least squares or GLM: mu = g^-1(eta) by
 * bh_link_inv and bh_link_mu_eta/2/3) estimated on `data`.  mm borrows
 * fit, its design and data. */
bh_status bh_margins_model_glm(const bh_fit *fit, const bh_frame *data,
                               bh_margins_model *mm, bh_error *err);

/* Storage for the Dirichlet description (the model points into it). */
typedef struct {
    size_t C, K;                /* components, free linear predictors      */
    int has_base;               /* alternative: the base share has eta = 0 */
    size_t base;
    size_t comp[BH_DIRICHLET_MAX_K];        /* component of predictor k    */
    bh_margins_eq eq[BH_DIRICHLET_MAX_K];
    const char *names[BH_DIRICHLET_MAX_K];  /* response names              */
} bh_margins_softmax;

/* Describe a Dirichlet fit: the expected share of every component,
 * E[y_c] = softmax(eta)_c (both parametrisations; the precision does not
 * enter the means).  Margins are reported per component. */
bh_status bh_margins_model_dirichlet(const bh_fit *fit, const bh_frame *data,
                                     bh_margins_softmax *store, bh_margins_model *mm,
                                     bh_error *err);

/* Population-averaged margins of a mixed model: E[y] averaged over the
 * random-intercept distribution, mu(eta) = E_u h(eta + sigma u) with
 * sigma^2 the sum of the random-intercept variances, by Gauss-Hermite
 * quadrature.  sigma is treated as fixed in the delta method (its
 * uncertainty is not propagated). */
#define BH_MARGINS_RAVG_NODES 40
typedef struct {
    bh_link link;
    double sigma;
    size_t nq;
    double node[BH_MARGINS_RAVG_NODES], weight[BH_MARGINS_RAVG_NODES];
} bh_margins_ravg;

bh_status bh_margins_model_ravg(const bh_fit *fit, const bh_frame *data,
                                bh_margins_ravg *store, bh_margins_model *mm, bh_error *err);

/* The description of any fit this module knows: Dirichlet (store used),
 * least squares and GLMs, and mixed models conditional on a zero random
 * effect (their fixed part). */
bh_status bh_margins_model_for(const bh_fit *fit, const bh_frame *data,
                               bh_margins_softmax *store, bh_margins_model *mm,
                               bh_error *err);

/* The GLM mean function (ctx points to a bh_link), exposed for estimators
 * that build on it (e.g. a GLMM conditional on zero random effects). */
bh_status bh_margins_glm_mean(const void *ctx, const double *eta, int order,
                              double *mu, double *d1, double *d2, double *d3,
                              bh_error *err);

typedef struct bh_margin bh_margin;

/* Per-observation values of interaction statistics: called for every
 * sample row (frame row index `row`) with the row's value and its
 * delta-method standard error. */
typedef bh_status (*bh_margins_obs_fn)(void *ctx, const bh_margin *stat,
                                       size_t row, double value, double se,
                                       bh_error *err);

typedef struct {
    const char *const *dydx;    /* variables; none (and nothing else asked):
                                   every right-hand-side variable          */
    size_t ndydx;
    int discrete;               /* 0/1 numeric variables: change 0 -> 1    */
    int atmeans;                /* mem instead of ame                      */
    const char *const *at;      /* "m=v1,v2,..." each                      */
    size_t nat;
    int predict;                /* average predictions at the grid         */
    const char *const *jn;      /* "x:moderator" each                      */
    size_t njn;
    const char *const *interaction; /* "a:b" each                          */
    size_t ninteraction;
    size_t jn_points;           /* band grid points (default 101)          */
    double jn_extend;           /* root search beyond the observed range,
                                   in widths of it (default 1)             */
    bh_margins_obs_fn obs;      /* per-row interaction values, or NULL     */
    void *obs_ctx;
} bh_margins_options;

void bh_margins_default_options(bh_margins_options *opt);

struct bh_margin {
    bh_margin_type type;
    char *term;                 /* "x", "race[2 vs 1]", "a:b"              */
    char *at;                   /* "m=%.17g;g=level", "" when none         */
    char *component;            /* "" for single-outcome models            */
    double estimate;            /* jn: the moderator value                 */
    double std_error, statistic, p_value, conf_low, conf_high; /* jn: NAN  */
    int in_range;               /* jn: 1 inside the observed range of the
                                   moderator, 0 beyond it; else -1         */
};

/* Johnson-Neyman band of x over moderator values (for plots). */
typedef struct {
    char *term, *moderator, *component;
    double lo, hi;              /* observed range of the moderator         */
    int exact;                  /* boundaries in closed form               */
    size_t n;
    double *value, *estimate, *std_error, *conf_low, *conf_high;
    unsigned char *significant;
} bh_jn_band;

typedef struct {
    char *model, *formula, *family, *link, *vcov_type;
    double level, df_inference, crit;
    size_t nobs;
    bh_margin *rows;
    size_t nrows;
    bh_jn_band *bands;
    size_t nbands;
    char **notes;               /* conventions, JN search summaries        */
    size_t nnotes;
} bh_margins_result;

/* Compute every requested statistic.  Errors (BH_EUSAGE, naming the
 * option and value, with "did you mean" for near-miss names): unknown
 * variables, a variable not in the model, an --at value that does not
 * parse (with its position), factor variables in jn, a:a interactions. */
bh_status bh_margins_compute(const bh_margins_model *mm,
                             const bh_margins_options *opt,
                             bh_margins_result **out, bh_error *err);
void bh_margins_result_free(bh_margins_result *r);

#endif
