/* lm.h - linear least squares (OLS / WLS) by Householder QR.
 *
 * Two paths give the same results to the last bits of double on
 * well-conditioned designs; the choice is automatic (bh_lm_options.path).
 *
 * Double path (well-conditioned, full-rank designs): a tall-skinny
 * Householder QR in double over row chunks that stay in cache, no copy of
 * X; the solution is refined by the corrected seminormal equations with
 * residuals and X'W r accumulated in long double.  It is taken when the
 * column-equilibrated factor R has a 1-norm condition number at most
 * BH_LM_COND_FAST (below), every column passes the rank test with a margin
 * of ten, and the data lie well inside the double range; otherwise:
 *
 * Extended path: columns are equilibrated, then factored by Householder QR with
 * R's limited pivoting rule (a column whose remaining norm falls below
 * tol * its original norm is aliased: moved to the end and reported as not
 * estimable, as R's lm reports NA).  The solution is improved by iterative
 * refinement with residuals accumulated in extended precision.  X'X is
 * never formed or inverted; the covariance comes from R^-1.
 *
 * The factorization and refinement run in long double (64-bit significand
 * on x86-64), which with equilibration gives at least 7 correct digits for
 * every estimate and standard error on all NIST StRD linear datasets.
 *
 * Weights: analytic (R's lm weights) use sqrt(w) row scaling; rows with zero
 * weight take no part (they do not count in n or the residual df, as in R).
 * Frequency weights count each row w times: n = sum w, df = sum w - rank.
 *
 * The fit's bread is (X'WX)^-1, its score multipliers u_i = w_i * e_i for
 * analytic weights and u_i = sqrt(w_i) * e_i for frequency weights (so that
 * sum_i s_i s_i' is the meat of the expanded data; vcov.c knows this for
 * cluster sums), leverages
 * h_i = w_i x_i'(X'WX)^-1 x_i, dispersion = sigma^2, and vcov is the
 * classical sigma^2 (X'WX)^-1.  Call bh_vcov_compute() for robust types.
 */
#ifndef BH_LM_H
#define BH_LM_H

#include "blackhole/status.h"
#include "blackhole/design.h"
#include "blackhole/fit.h"

/* Factorisation used by bh_lm_fit. */
typedef enum {
    BH_LM_PATH_AUTO = 0,    /* double when well conditioned, else extended */
    BH_LM_PATH_EXTENDED,    /* always the long double Householder QR       */
    BH_LM_PATH_DOUBLE       /* for tests: the double path whatever the
                               conditioning (no rank decision: a singular
                               factor still goes to the extended path)   */
} bh_lm_path;

/* Largest 1-norm condition number of the column-equilibrated R for which
 * the automatic choice takes the double path.  The covariance comes from
 * the double R, whose relative error grows with the condition number: on
 * the NIST StRD designs every LRE of the double path equals the extended
 * path's up to condition 27 (Pontius), while Wampler 1-5 (3.4e3) lose up
 * to 0.6 digit on the standard errors (14.5 -> 13.8), Longley (3.4e4) and
 * Filip (7.8e9) more; 1e3 keeps all of these on the extended path (the
 * measurements are listed in src/lm.c, fast_condition). */
#define BH_LM_COND_FAST 1e3

typedef struct {
    double tol;               /* rank tolerance, default BH_LM_TOL (below)   */
    int refine;               /* refinement steps, default 2                 */
    size_t response;          /* which response column of the design (0)    */
    const char *const *colnames; /* p term names used when the design has no
                                 terms (hand-built designs); NULL: "x1".. */
    bh_lm_path path;          /* BH_LM_PATH_AUTO (default)                   */
    bh_fit *recycle;          /* an earlier result to reuse (simulations):
                                 bh_lm_fit returns it, reset by
                                 bh_fit_recycle_rows (its per-row arrays
                                 kept when they have the workspace's rows,
                                 its name and formula as the caller set
                                 them), when it has the same number of
                                 coefficients; otherwise it is left alone
                                 and the caller frees it (whenever *out !=
                                 recycle, also on error).  Default NULL. */
} bh_lm_options;

/* Default rank tolerance: a column is aliased when the norm of its part
 * orthogonal to the columns before it is below tol times its own norm.  R's
 * lm uses 1e-7 and so declares NIST's Filip (10th-degree polynomial, which
 * NIST certifies as full rank; the ratio for x^10 lies between 1e-8 and
 * 1e-7) rank deficient.  1e-9 keeps Filip full rank with a margin of ten,
 * while exactly collinear columns, whose ratio is rounding error (1e-13 and
 * below for double data), are still aliased.  Pass 1e-7 to reproduce R's
 * decisions on such borderline designs. */
#define BH_LM_TOL 1e-9

void bh_lm_default_options(bh_lm_options *opt);

/* Workspace sized for n x p, reusable across fits of that size or smaller. */
typedef struct bh_lm_workspace bh_lm_workspace;
bh_lm_workspace *bh_lm_workspace_alloc(size_t n, size_t p);
void bh_lm_workspace_free(bh_lm_workspace *ws);

/* Path taken by the last successful bh_lm_fit with this workspace
 * (BH_LM_PATH_EXTENDED or BH_LM_PATH_DOUBLE), BH_LM_PATH_AUTO before any. */
bh_lm_path bh_lm_workspace_path(const bh_lm_workspace *ws);

/* Fit y ~ X from the design.  ws may be NULL (allocated internally).
 * Rank deficiency is not an error: aliased coefficients are flagged and a
 * warning names them.  Fails with BH_EDATA when n <= rank (no residual
 * degrees of freedom) or the response is not finite. */
bh_status bh_lm_fit(const bh_design *d, const bh_lm_options *opt,
                    bh_lm_workspace *ws, bh_fit **out, bh_error *err);

#endif
