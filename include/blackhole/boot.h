/* boot.h - few-cluster inference: wild cluster bootstrap tests and
 * confidence intervals for single coefficients.
 *
 *   bh_boot_wild    least squares: the wild cluster restricted (WCR)
 *                   bootstrap of Cameron, Gelbach & Miller (2008), computed
 *                   with the algebra of Roodman, MacKinnon, Nielsen & Webb
 *                   (2019, "Fast and wild", Stata Journal 19(1)).
 *   bh_boot_score   GLMs (logit, fractional logit, ...): the wild score
 *                   bootstrap of Kline & Santos (2012, J. Econometric
 *                   Methods 1(1)): restricted ML refit without column j
 *                   (offset r x_j), restricted cluster scores S_g, restricted
 *                   information H, b_g = (H^-1 S_g)_j;
 *                   t = sum b_g / sqrt(c sum b_g^2),
 *                   t* = sum v_g b_g / sqrt(c sum v_g^2 b_g^2), c = G/(G-1);
 *                   no re-estimation per draw.  Intervals invert the test
 *                   with one restricted refit per trial r; where the
 *                   restricted fit fails far out (separation) that side is
 *                   reported unbounded with a warning.
 *   bh_boot_fit     dispatches on fit->linear.
 *
 * For each tested coefficient j and null H0: beta_j = r, the data are
 * re-generated under H0 (restricted least squares), each cluster's
 * restricted residuals are multiplied by one weight v_g, the model is
 * re-estimated and the cluster-robust t statistic for beta_j = r is
 * computed with the same small-sample factor as the original one (vcov.h:
 * G/(G-1) (N-1)/(N-K)).  Per replication the work is O(G^2) (never a
 * refit): with y* = y_r + v o e_r everything the t statistic needs is a
 * linear or quadratic form in v, precomputed once per coefficient from the
 * per-cluster cross-products X_g'X_g and scores X_g'e_g.
 *
 * P-value (symmetric, two-sided): p = #{b : |t*_b| >= |t|} / B, ties
 * counted as at least as extreme (a tie is |t*_b| >= (1 - 1e-9) |t|).  With
 * v = (1, ..., 1) the bootstrap sample is the original one, so t* = t
 * exactly; under full enumeration the draws +-1 (Rademacher; six draws
 * c * (+-1) for Webb) always tie, so p >= 2/2^G.  boottest's symmetric
 * p-value (Roodman et al. 2019, sect. 3) counts |t*| > |t| strictly; it is
 * reported too (p_value_strict).
 *
 * Weights: Rademacher (+-1, each 1/2) or Webb's six-point distribution
 * (+-sqrt(1/2), +-1, +-sqrt(3/2), each 1/6).  When the distribution has no
 * more distinct draws than requested (2^G <= B, or 6^G <= B for Webb), all
 * of them are enumerated once, deterministically, as boottest does; the
 * result says so.  Otherwise draw b uses the random stream (seed, b) of
 * rng.h, so results are identical for any number of threads.
 *
 * Confidence intervals invert the bootstrap test: {r : p(r) > 1 - level}.
 * p(r) is a step function of r; starting at the estimate (p = 1) the search
 * steps outward on a fixed grid of r = estimate -+ k se (k = 0.25, 0.5, ...,
 * 10, then doubling) until the test rejects, then bisects the last bracket
 * until its width is at most ci_tol * se (1e-10 by default); the endpoint
 * reported is the bracket's midpoint.  If p(r) is not monotone beyond the
 * first crossing, further crossings are not looked for.  When the test does
 * not reject within ci_max standard errors (e.g. 4 clusters, Rademacher:
 * p >= 2/16 > 0.05 for every r) the side is unbounded (+-INFINITY).
 *
 * Ownership: a bh_boot_result owns its arrays; free with
 * bh_boot_result_free().  The fit (and its design) are only read.
 */
#ifndef BH_BOOT_H
#define BH_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "blackhole/status.h"
#include "blackhole/fit.h"

typedef enum {
    BH_BOOT_RADEMACHER = 0,
    BH_BOOT_WEBB = 1
} bh_boot_weights;

typedef enum {
    BH_BOOT_WCR = 0,          /* wild cluster restricted, least squares    */
    BH_BOOT_SCORE = 1         /* wild score bootstrap, likelihood models   */
} bh_boot_method;

/* "rademacher", "webb" (any case). */
bh_status bh_boot_weights_parse(const char *s, bh_boot_weights *out,
                                bh_error *err);
const char *bh_boot_weights_name(bh_boot_weights w);
const char *bh_boot_method_name(bh_boot_method m);

/* Relative tolerance below which |t*| and |t| count as a tie. */
#define BH_BOOT_TIE_RTOL 1e-9

/* Fewer clusters than this add the few-clusters warning to the result. */
#define BH_BOOT_FEW_CLUSTERS 10

typedef struct {
    bh_boot_weights weights;  /* default BH_BOOT_RADEMACHER                */
    size_t reps;              /* B, default 9999                           */
    uint64_t seed;            /* default 1; report it with the results     */
    size_t threads;           /* worker threads, default 1 (0 counts as 1) */
    double level;             /* confidence level, default 0.95            */
    int ci;                   /* 1 (default): intervals by test inversion  */
    const double *null;       /* p null values r_j, or NULL for all zero   */
    const unsigned char *test; /* p flags selecting coefficients, or NULL
                                 for every estimable one                  */
    double ci_tol;            /* bisection stops at width ci_tol * se
                                 (default 1e-10)                          */
    double ci_max;            /* search at most ci_max se from the estimate
                                 (default 1e7)                            */
} bh_boot_options;

void bh_boot_default_options(bh_boot_options *opt);

typedef struct bh_boot_result {
    bh_boot_method method;
    bh_boot_weights weights;
    size_t p;                 /* coefficients of the fit                   */
    size_t nclusters;         /* G                                         */
    size_t reps_requested;    /* B asked for                               */
    size_t reps;              /* draws used: B, or 2^G / 6^G enumerated    */
    int enumerated;           /* 1 when every distinct draw was used once  */
    uint64_t seed;
    size_t threads;           /* threads actually used                     */
    double level;
    int has_ci;
    /* Per coefficient (p entries); untested ones are NAN / 0. */
    unsigned char *tested;
    double *null_value;       /* r of H0: beta_j = r                       */
    double *estimate;         /* unrestricted beta_j                       */
    double *statistic;        /* original cluster-robust t for H0          */
    double *p_value;          /* bootstrap p, ties counted                 */
    double *p_value_strict;   /* bootstrap p, |t*| > |t| (boottest)        */
    size_t *count;            /* #{|t*| >= |t|}: p_value = count / reps    */
    double *conf_low, *conf_high;  /* +-INFINITY when unbounded            */
    char **warnings;          /* e.g. the few-clusters warning             */
    size_t nwarnings;
} bh_boot_result;

/* Wild cluster restricted bootstrap for a least-squares fit (fit->linear)
 * whose design has a cluster grouping (G >= 2).  Analytic and frequency
 * weights are supported (rows scaled by sqrt(w), as lm.h).  Errors:
 * BH_EUSAGE (not a linear fit, no clusters, bad options), BH_EDATA
 * (G < 2), BH_ENOMEM. */
bh_status bh_boot_wild(const bh_fit *fit, const bh_boot_options *opt,
                       bh_boot_result **out, bh_error *err);

/* Wild score bootstrap for a GLM fit (family and link read from the fit;
 * analytic weights and offsets supported, frequency weights not:
 * BH_EUSAGE).  Errors as bh_boot_wild, plus BH_ENOCONV / BH_ENUMERIC when
 * the restricted fit at the null fails. */
bh_status bh_boot_score(const bh_fit *fit, const bh_boot_options *opt,
                        bh_boot_result **out, bh_error *err);

/* bh_boot_wild for linear fits, bh_boot_score otherwise. */
bh_status bh_boot_fit(const bh_fit *fit, const bh_boot_options *opt,
                      bh_boot_result **out, bh_error *err);

void bh_boot_result_free(bh_boot_result *res);

#endif
