/* dirichlet.h - Dirichlet regression for shares that sum to one.
 *
 * The responses of the design (d->m = K >= 2 columns of d->y, one row per
 * observation) are shares y_i1..y_iK in (0, 1) with sum 1, modelled as
 * Dirichlet(alpha_i1, ..., alpha_iK) (Gueorguieva, Rosenheck & Zelterman
 * 2008; parametrisations as R's DirichletReg):
 *
 *   common       alpha_ic = exp(x_i' b_c) for every component c; all
 *                components share X; K x p coefficients, component name =
 *                response name.  No precision design ('|' part is an
 *                error).  fit->link = "log".
 *   alternative  mean mu_ic = exp(x_i' b_c) / sum_d exp(x_i' b_d) with the
 *                base component's b fixed at 0 (opt.base, default the first
 *                response as DirichletReg's base = 1), precision
 *                phi_i = exp(z_i' g), alpha_ic = mu_ic phi_i.  Z is the
 *                design's precision part (d->z, from "y1 + y2 ~ x | z");
 *                without one, phi is an intercept only.  Components: each
 *                non-base response name for its mean coefficients, then
 *                "(phi)".  fit->link = "logit/log" (multinomial logit mean,
 *                log precision).
 *
 * Coefficient order (fit->beta): common: component c's p coefficients at
 * c*p .. c*p + p-1 (response order); alternative: the K-1 non-base mean
 * blocks of p in response order, then the pz precision coefficients.
 *
 * Estimation: maximum likelihood.  Starting values from least squares of
 * the log-ratios log(y_c / y_base) on X and a method-of-moments precision.
 * Newton steps with the analytic Hessian (digamma and trigamma from
 * gsl_sf_psi and gsl_sf_psi_1), halving while the log-likelihood falls,
 * Levenberg damping where the Hessian is not negative definite, until the
 * squared Newton decrement g'(-H)^-1 g (the squared length of the step in
 * standard-error units, about twice the remaining log-likelihood gain) is
 * below opt.tol.  GSL's BFGS (vector_bfgs2, on coefficients scaled by
 * their column's root mean square) is the safeguard (opt.bfgs): on the
 * study's model it needs hundreds of iterations where Newton from the
 * least-squares start needs five, so by default it runs only when Newton
 * gets into trouble.
 *
 * Result (bh_fit): family "dirichlet", method "ml", dispersion 1, z tests;
 * bread = (-H)^-1 (observed information) and vcov = bread; score blocks:
 * one per linear predictor (common: K blocks on X; alternative: K-1 blocks
 * on X and one on Z), with multipliers u_ib = d l_i / d eta_ib, so
 * bh_vcov_compute() gives HC0, HC1 and cluster-robust covariances (no
 * leverages: HC2/HC3 are refused).  With an intercept-only precision and
 * no constant-1 column in X to serve as its score block, explicit scores
 * are stored instead.  fitted = expected shares (n x K), resid = y - fitted
 * (y as fitted: normalised, and squeezed when asked).  Statistics: loglik,
 * AIC = -2 ll + 2 k, BIC = -2 ll + log(nobs) k with k the estimated
 * coefficients, df_model = k, df_resid = nobs - k.
 *
 * Weights (d->w) multiply each row's log-likelihood; frequency weights
 * count rows w times (nobs = sum w) and their score multipliers carry
 * sqrt(w) as lm.h describes, analytic weights w.  Offsets and random
 * effects are refused.
 *
 * Data checks (errors name the data row, 1-based, the file and the shares):
 * every share finite and in [0, 1]; |row sum - 1| <= opt.sum_tol; rows
 * within tolerance are divided by their sum (a warning says so when some
 * sum was off by more than BH_DIRICHLET_SUM_QUIET, i.e. more than rounding
 * of exact decimal shares).  A share of exactly 0 or 1 is an error unless
 * opt.squeeze: then EVERY share is transformed as Smithson & Verkuilen
 * (2006), y' = (y (n - 1) + 1/K) / n with n = nobs, whether or not the
 * data hold a 0 or 1 (so repeated fits treat all samples alike), and the
 * fit carries a warning starting "squeezed:".
 *
 * Aliasing: columns of X (and of Z) that are collinear with earlier ones
 * (Householder QR with R's rule, tolerance BH_LM_TOL) are not estimated in
 * any block; a warning names them.
 *
 * Ownership: the workspace is the caller's and may be reused for any fit
 * no larger than its sizes; fits do not point into it (their score blocks
 * point into the design).
 */
#ifndef BH_DIRICHLET_H
#define BH_DIRICHLET_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/design.h"
#include "blackhole/fit.h"

typedef enum {
    BH_DIRICHLET_COMMON = 0,
    BH_DIRICHLET_ALTERNATIVE = 1
} bh_dirichlet_param;

/* "common" or "alternative" (any case). */
bh_status bh_dirichlet_param_parse(const char *s, bh_dirichlet_param *out,
                                   bh_error *err);
const char *bh_dirichlet_param_name(bh_dirichlet_param p);

/* Default of opt.sum_tol: strict, so a forgotten component is caught;
 * survey shares rounded to d decimals need about K * 0.5 * 10^-d (e.g.
 * 0.015 for three shares rounded to 2 decimals). */
#define BH_DIRICHLET_SUM_TOL 1e-6
/* Row sums off by less than this are renormalised without a warning
 * (binary rounding of shares that sum to exactly 1 in decimal). */
#define BH_DIRICHLET_SUM_QUIET 1e-12
/* Most components supported (per-row work uses stack arrays of this size). */
#define BH_DIRICHLET_MAX_K 64

/* The BFGS phase.  AUTO: Newton from the starting values first (from
 * the least-squares start it usually converges in a handful of steps);
 * only if it does not converge, BFGS from the starting values and Newton
 * again from BFGS's best point (fit->iterations counts both Newton runs).
 * ALWAYS: BFGS, then Newton.  NEVER: Newton only. */
typedef enum {
    BH_DIRICHLET_BFGS_AUTO = 0,
    BH_DIRICHLET_BFGS_ALWAYS = 1,
    BH_DIRICHLET_BFGS_NEVER = 2
} bh_dirichlet_bfgs;

typedef struct {
    bh_dirichlet_param param;  /* default common                          */
    size_t base;               /* alternative: base response (0-based), 0  */
    double sum_tol;            /* allowed |sum of shares - 1|, default
                                  BH_DIRICHLET_SUM_TOL                    */
    int squeeze;               /* Smithson-Verkuilen transformation (0)   */
    double tol;                /* squared Newton decrement, default 1e-20  */
    size_t maxiter;            /* Newton iterations, default 100           */
    bh_dirichlet_bfgs bfgs;    /* when to run BFGS, default AUTO           */
    size_t bfgs_maxiter;       /* BFGS iterations, default 50              */
    double bfgs_gtol;          /* BFGS stops when every gradient entry of
                                  the scaled mean log-likelihood is below
                                  this, default 1e-3                       */
    const double *start;       /* all coefficients (fit order) or NULL    */
    const char *const *colnames;  /* X names when the design has no terms */
    const char *const *zcolnames; /* Z names likewise                     */
    bh_fit *recycle;           /* an earlier result to reuse (simulations):
                                  returned, reset by bh_fit_recycle_rows
                                  (per-row arrays kept when they have the
                                  workspace's rows, name and formula as the
                                  caller set them), when it has the same
                                  coefficients and components; otherwise
                                  (also for the explicit scores of an
                                  intercept-free alternative model) it is
                                  left alone and the caller frees it
                                  (whenever *out != recycle, also on
                                  error).  Default NULL.                  */
} bh_dirichlet_options;

void bh_dirichlet_default_options(bh_dirichlet_options *opt);

/* Workspace for up to n rows, p columns of X, pz columns of Z (0 for an
 * intercept-only precision) and K components.  Everything the iterations
 * need is allocated here; the BFGS minimiser is allocated at the first fit
 * and again only when the number of free coefficients changes. */
typedef struct bh_dirichlet_workspace bh_dirichlet_workspace;
bh_dirichlet_workspace *bh_dirichlet_workspace_alloc(size_t n, size_t p,
                                                     size_t pz, size_t K);
void bh_dirichlet_workspace_free(bh_dirichlet_workspace *ws);

/* Fit.  ws may be NULL (allocated and freed internally).  Errors: BH_EDATA
 * for shares out of range, rows not summing to 1, exact 0/1 without
 * squeeze, fewer than 2 responses or no observations; BH_EUSAGE for bad
 * options, a '|' part with the common parametrisation, offsets, random
 * effects, a too small workspace.  Non-convergence is not an error: the
 * fit has converged = 0 and a warning. */
bh_status bh_dirichlet_fit(const bh_design *d, const bh_dirichlet_options *opt,
                           bh_dirichlet_workspace *ws, bh_fit **out,
                           bh_error *err);

/* ---- prediction (expected shares and their derivatives) ---------------
 *
 * Both parametrisations give E[y_c] = softmax(eta)_c, where eta_c is the
 * log alpha_c (common) or the mean linear predictor with eta_base = 0
 * (alternative); the precision does not enter the expected shares. */

typedef struct {
    bh_dirichlet_param param;
    size_t K;                  /* components                               */
    size_t p;                  /* columns of X                             */
    size_t pz;                 /* precision coefficients (alternative)     */
    size_t base;               /* base component (alternative)             */
    const unsigned char *aliased; /* coefficient flags (treated as 0), or
                                     NULL                                  */
} bh_dirichlet_layout;

/* Coefficients in the layout: K p, or (K - 1) p + pz. */
size_t bh_dirichlet_ncoef(const bh_dirichlet_layout *L);

/* The layout of a Dirichlet fit (BH_EUSAGE if the fit is not one). */
bh_status bh_dirichlet_layout_of(const bh_fit *fit, bh_dirichlet_layout *L,
                                 bh_error *err);

/* Linear predictors of one row: x[j * incx], j < p, are its X values
 * (incx = n reads row i of a column-major design at x + i).  eta gets K
 * values (eta[base] = 0 for the alternative). */
void bh_dirichlet_eta(const bh_dirichlet_layout *L, const double *beta,
                      const double *x, size_t incx, double *eta);

/* Expected shares from K linear predictors (softmax, overflow-safe), and
 * when jac is not NULL the K x K row-major derivatives
 * jac[c * K + k] = d share_c / d eta_k = share_c (delta_ck - share_k). */
void bh_dirichlet_shares(size_t K, const double *eta, double *share,
                         double *jac);

/* Expected shares at n rows of x (column-major, leading dimension ldx >=
 * n) into share (n x K column-major, share[c * n + i]); when jac is not
 * NULL also d share_c / d eta_k at jac[(c * K + k) * n + i] (n K K values;
 * for the alternative the base column k = base is 0: it is no predictor).
 * K above BH_DIRICHLET_MAX_K gives NAN. */
void bh_dirichlet_predict(const bh_dirichlet_layout *L, const double *beta,
                          const double *x, size_t ldx, size_t n,
                          double *share, double *jac);

#endif
