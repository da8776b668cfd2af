/* glm.h - generalized linear models by iteratively reweighted least squares.
 *
 * Families: binomial (logit, probit, cloglog), fractional (Papke-Wooldridge
 * quasi-likelihood: Bernoulli log-likelihood on y in [0, 1]; logit or
 * probit), poisson (log), gaussian (identity).  Prior weights and offsets
 * come from the design.
 *
 * The solver follows GSL's iterative-solver pattern: a workspace allocated
 * once from sizes, then init / iterate / test, and a driver (bh_glm_fit)
 * that loops.  Each iteration solves a weighted least-squares problem; step
 * halving backs off when the deviance rises; convergence needs the relative
 * change in deviance, |dev - dev_old| / (|dev| + 0.1) < tol (R's glm rule),
 * and the coefficients to have stopped moving (relative change, or the
 * error bound estimated from the ratio of successive changes, below 1e-10).
 * Designs longer than BH_GLM_BLOCK rows are processed block by block on
 * opt.threads threads, with the same numbers for any thread count.
 *
 * The result is a bh_fit with bread = (X'WX)^-1 at the solution (W the
 * working weights of the last iteration, as R's glm.fit keeps them; from a
 * Householder QR of sqrt(W) X, never an inverted X'WX), score multipliers
 * u_i = working residual * working weight (sandwich::estfun.glm),
 * leverages from the same QR, dispersion (1 for binomial/poisson; Pearson
 * chi^2/(n - p) for fractional, gaussian, as R's quasi families), and the
 * model-based vcov dispersion * bread.  Fractional models default to
 * robust (HC0) standard errors in the CLI.
 *
 * Statistics follow R: null deviance from the intercept-only model (with
 * an offset: intercept + offset fitted by IRLS; without an intercept: the
 * offset alone), logLik/AIC/BIC as logLik.glm (fractional: the Bernoulli
 * quasi-log-likelihood, AIC and BIC NAN as R's NA for quasi families;
 * poisson with non-integer counts: -Inf as R), McFadden 1 - ll/ll0 (not
 * gaussian, not Firth).  Binary 0/1 binomial responses also get Tjur's R^2
 * and the AUC (both weighted by prior weights) and Hosmer-Lemeshow with 10
 * groups as ResourceSelection::hoslem.test (unweighted fits only; NAN when
 * the decile breaks tie).
 *
 * Links and variances clamp mu to [eps, 1 - eps] exactly as R's families
 * do (bh_link_inv and bh_link_mu_eta are R's linkinv and mu.eta), so the
 * deviance stays finite for any eta; bh_link_mu_eta2/3 are unclamped.
 *
 * Step halving: while the deviance is not finite (R) or rises above the
 * previous iteration's (R's glm.fit does not check this; glm2 does).
 *
 * Separation (binomial, binary response): when fitted probabilities come
 * within 1e-6 of 0 or 1, a linear program (Konis 2007) decides whether a
 * direction b != 0 with x_i'b >= 0 for y = 1 and <= 0 for y = 0 exists; if
 * so a warning names the columns with b_j != 0 ("complete" when every row
 * is fitted at 0/1, else "quasi-complete").  An outcome that is constant
 * is reported the same way.  The estimates are R's (large, not infinite).
 *
 * Firth (binomial logit only): Newton steps with the expected information
 * on the modified score X'(w(y - mu) + h(1/2 - mu)), halving on the
 * penalised log-likelihood l + log|X'WX|/2; convergence when the largest
 * step is below tol * (1 + max|beta|) (the steps converge linearly, so a
 * deviance criterion would stop early); start at beta = 0.  stats.loglik
 * is the penalised log-likelihood (as logistf), AIC/BIC computed from it;
 * the null deviance is the ML one (brglm2 and logistf report a penalised
 * null model).  Profile-likelihood intervals are not provided.
 *
 * Ownership: the workspace is the caller's; fits do not point into it.
 */
#ifndef BH_GLM_H
#define BH_GLM_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/design.h"
#include "blackhole/fit.h"

typedef enum {
    BH_FAM_GAUSSIAN = 0, BH_FAM_BINOMIAL, BH_FAM_POISSON, BH_FAM_FRACTIONAL,
    BH_FAM_DIRICHLET          /* not a GLM: parsed here so every command
                                 names families one way; estimated by
                                 dirichlet.h (bh_glm_fit refuses it)      */
} bh_family;

typedef enum {
    BH_LINK_IDENTITY = 0, BH_LINK_LOGIT, BH_LINK_PROBIT, BH_LINK_CLOGLOG, BH_LINK_LOG
} bh_link;

bh_status bh_family_parse(const char *s, bh_family *out, bh_error *err);
bh_status bh_link_parse(const char *s, bh_link *out, bh_error *err);
const char *bh_family_name(bh_family f);
const char *bh_link_name(bh_link l);
bh_link bh_family_default_link(bh_family f);
/* BH_EUSAGE when the family does not take this link. */
bh_status bh_family_check_link(bh_family f, bh_link l, bh_error *err);

/* Link function pieces, numerically safe for any finite eta (also used by
 * margins): mu = g^-1(eta), dmu/deta, d2mu/deta2, d3mu/deta3, and g(mu). */
double bh_link_inv(bh_link l, double eta);
double bh_link_mu_eta(bh_link l, double eta);
double bh_link_mu_eta2(bh_link l, double eta);
double bh_link_mu_eta3(bh_link l, double eta);
double bh_link_fun(bh_link l, double mu);

/* Called once per iteration when set (the library never prints). */
typedef void (*bh_glm_trace_fn)(void *ctx, size_t iter, double deviance,
                                double rel_change, unsigned halvings);

typedef struct {
    bh_family family;
    bh_link link;
    double tol;               /* default 1e-10 (relative deviance change;
                                 Firth: relative step size)               */
    size_t maxiter;           /* default 100                              */
    int firth;                /* Firth bias-reduced logistic regression   */
    size_t response;          /* response column of the design (0)       */
    const double *start;      /* p starting values or NULL               */
    bh_glm_trace_fn trace;
    void *trace_ctx;
    const char *const *colnames; /* names when the design has no terms   */
    int lean;                 /* simulations: the result carries only the
                                 coefficients, bread, vcov, scores (u),
                                 fitted values, residuals, deviance and
                                 df, convergence and warnings; no null
                                 model, log-likelihood statistics (loglik,
                                 AIC, BIC, McFadden, Tjur, AUC, Hosmer-
                                 Lemeshow stay NAN) or leverages (hat
                                 NULL, so no HC2/HC3).  Its bread comes
                                 from the Cholesky factor of X'WX at the
                                 estimate (formed by the last iteration)
                                 when the equilibrated pivots show a well-
                                 conditioned design, else from the QR as
                                 for full fits.  Default 0.              */
    bh_fit *recycle;          /* an earlier result to reuse (simulations):
                                 bh_glm_result returns it, reset by
                                 bh_fit_recycle, when its shape fits (its
                                 name and formula strings are kept as the
                                 caller set them); otherwise it is left
                                 alone and the caller frees it (whenever
                                 *out != recycle).  Default NULL.        */
    size_t threads;           /* threads for the passes over the rows of
                                 designs with more than one block of
                                 BH_GLM_BLOCK rows: 0 = the online CPUs
                                 (default), 1 = the calling thread only.
                                 The results do not depend on it: each
                                 block's sums are formed alone and added
                                 in block order.                          */
} bh_glm_options;

/* Rows per block of the passes over the rows (see threads). */
#define BH_GLM_BLOCK 32768

void bh_glm_default_options(bh_glm_options *opt);

typedef struct bh_glm_workspace bh_glm_workspace;
bh_glm_workspace *bh_glm_workspace_alloc(size_t n, size_t p);
void bh_glm_workspace_free(bh_glm_workspace *ws);

/* The steps, for callers that drive the loop themselves. */
bh_status bh_glm_init(bh_glm_workspace *ws, const bh_design *d,
                      const bh_glm_options *opt, bh_error *err);
bh_status bh_glm_iterate(bh_glm_workspace *ws, bh_error *err);
/* 1 when converged, 0 otherwise. */
int bh_glm_test(const bh_glm_workspace *ws);
/* Package the current state as a fit (also when not converged: the fit
 * is then marked converged = 0 with a warning).  The fit takes over the
 * workspace's row vectors (no copies), so the workspace needs a new
 * bh_glm_init before it is iterated again (it reallocates them). */
bh_status bh_glm_result(bh_glm_workspace *ws, bh_fit **out, bh_error *err);

/* Driver: init, iterate until test or maxiter, result.  Non-convergence is
 * not an error status: the fit comes back with converged = 0 and a
 * warning, and the CLI exits 1.  Separation in binary models is detected
 * and reported as a warning naming the variables involved. */
bh_status bh_glm_fit(const bh_design *d, const bh_glm_options *opt,
                     bh_glm_workspace *ws, bh_fit **out, bh_error *err);

#endif
