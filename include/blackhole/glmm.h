/* glmm.h - binomial generalized linear mixed models with random intercepts.
 *
 * Model: y_i ~ Binomial(w_i, mu_i) / w_i (y a proportion, w the prior
 * weights = trials, 1 when the design has none), g(mu_i) = x_i'beta +
 * offset_i + sum_k sigma_k u_k[g_k(i)], u ~ N(0, 1) independent; the
 * groupings are the design's random-effect terms d->re[k]: either one
 * grouping, or two that are nested (every group of the finer one lies in
 * one group of the coarser one, as (1 | firm/rep_id) gives).  Crossed
 * groupings and more than two levels are refused (BH_EUSAGE).
 *
 * Estimation as lme4::glmer conceptually: for given (beta, theta), theta
 * = the random-intercept SDs, the conditional modes u are found by
 * penalised IRLS (Newton per top-level group: a scalar with one grouping,
 * an arrow system solved by a Schur complement over the upper level with
 * two); the approximate deviance is the Laplace approximation (nagq = 1:
 * -2 log p(y | u) + |u|^2 + log det(I + Lambda Z'WZ Lambda), W the
 * expected (IRLS) weights, as lme4) or adaptive Gauss-Hermite quadrature
 * with nagq nodes per group around the mode (one grouping only).  Beta and
 * theta are optimised jointly by a modified Newton method (eigenvalues of
 * the Hessian bounded away from zero, backtracking line search) on the
 * analytic gradient (implicit differentiation through the modes), the
 * Hessian by differences of that gradient.  The deviance is even in each
 * theta, so theta is unconstrained and |theta| reported; a theta below
 * 1e-4 at convergence is set to 0 and the rest re-optimised (a singular
 * fit, reported as a warning).
 *
 * Result (bh_fit): coefficients 0..d->p-1 are the fixed effects (component
 * ""), followed by one "sd__(Intercept)" per grouping in design order, with
 * component = the grouping name (broom.mixed's convention).  The
 * covariance is 2 H^-1 with H the Hessian of the approximate deviance over
 * (beta, theta) at the optimum (central differences of the analytic
 * gradient): its beta block is lme4's default vcov() for nAGQ >= 1
 * (use.hessian = TRUE), the SD variances are those of theta (equal to the
 * delta method from log-SD at the optimum); Wald intervals for an SD are
 * poor near 0, and at a singular fit meaningless.  With options.vcov_rx
 * the beta block is instead lme4's vcov(use.hessian = FALSE): the inverse
 * Schur complement RX'RX of the PIRLS system at fixed theta.  bread =
 * vcov, dispersion 1; there are no scores (nblocks = 0, scores NULL), so
 * robust and cluster covariances do not apply to these fits.
 * stats: loglik (the Laplace/AGQ approximation, as lme4's logLik, binomial
 * coefficients included), aic, bic (df = fixed effects + SDs), deviance =
 * -2 loglik, df_model, df_resid = nobs - df.  fitted = mu at the modes,
 * resid = y - mu.  method is "laplace" or "agq".
 *
 * The random-effect side (SDs, ICCs, conditional modes and SDs per group)
 * comes back in a bh_glmm_re.
 *
 * Ownership: bh_glmm_fit returns a fit (free with bh_fit_free; it points
 * to the design) and a bh_glmm_re that owns all its arrays and strings.
 */
#ifndef BH_GLMM_H
#define BH_GLMM_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/design.h"
#include "blackhole/fit.h"
#include "blackhole/glm.h"

#define BH_GLMM_MAX_AGQ 25

typedef struct {
    bh_link link;             /* BH_LINK_LOGIT (default) or BH_LINK_PROBIT */
    size_t nagq;              /* 1 = Laplace (default); 2..25 adaptive
                                 Gauss-Hermite (one grouping only)        */
    double tol;               /* outer convergence: Newton decrement
                                 g'H^-1 g on the deviance scale (1e-12)   */
    size_t maxiter;           /* outer Newton iterations (200)            */
    double pirls_tol;         /* conditional modes: largest step (1e-11)  */
    size_t pirls_maxiter;     /* PIRLS iterations per evaluation (100)    */
    int vcov_rx;              /* 1: fixed-effect covariance from RX at
                                 fixed theta (lme4 use.hessian = FALSE)   */
    size_t response;          /* response column of the design (0)        */
    const char *const *colnames; /* names when the design has no terms   */
    bh_fit *recycle;          /* an earlier result to reuse (simulations):
                                 returned, reset by bh_fit_recycle_rows
                                 (its fitted values and residuals kept
                                 when they have the workspace's rows, name
                                 and formula as the caller set them), when
                                 it has the same number of coefficients;
                                 otherwise left alone, the caller's to
                                 free (whenever *out != recycle, also on
                                 error).  Default NULL.                   */
    struct bh_glmm_re *recycle_re; /* an earlier random-effect result to
                                 refill in place (its labels, modes and
                                 SDs where they fit) when it has as many
                                 groupings; returned as *re, or left the
                                 caller's likewise.  Default NULL.        */
} bh_glmm_options;

void bh_glmm_default_options(bh_glmm_options *opt);

/* One random-intercept grouping. */
typedef struct {
    char *name;               /* grouping name ("rep_id", "firm:rep_id")   */
    size_t ngroups;
    char **labels;            /* ngroups group labels (copies)             */
    double sd;                /* random-intercept SD (>= 0)                */
    double sd_se;             /* its standard error (see above)            */
    double icc;               /* sd^2 / (sum of all sd^2 + latent residual
                                 variance: pi^2/3 logit, 1 probit)         */
    int singular;             /* sd set to 0 at the boundary               */
    double *mode;             /* ngroups conditional modes b = sd * u (as
                                 lme4's ranef)                             */
    double *cond_sd;          /* ngroups conditional SDs (sqrt of ranef's
                                 condVar: diag of Lambda (I + Lambda Z'WZ
                                 Lambda)^-1 Lambda at the optimum)         */
    size_t cap;               /* entries allocated in labels, mode and
                                 cond_sd when more than ngroups (a result
                                 refilled through recycle_re): labels past
                                 ngroups are NULL or owned strings kept for
                                 the next fit; 0 = ngroups                 */
    size_t label_room;        /* bytes allocated in every non-NULL label
                                 (up to cap) when set; 0 = each holds its
                                 text exactly                              */
} bh_glmm_group;

typedef struct bh_glmm_re {
    size_t ngroupings;
    bh_glmm_group *g;         /* in design order (d->re)                   */
    double icc_total;         /* all SDs together over the latent scale    */
    double max_grad;          /* largest |gradient| of the deviance at the
                                 optimum (free parameters)                 */
    size_t nagq;
} bh_glmm_re;

void bh_glmm_re_free(bh_glmm_re *re);

/* Fit the model.  re may be NULL when not wanted.  Errors: no random-effect
 * term, crossed or deeper groupings, AGQ with two groupings, nagq out of
 * range (BH_EUSAGE); a response outside [0, 1] or negative weights
 * (BH_EDATA naming the data row); numerical failure (BH_ENUMERIC).  Not
 * converging is not an error: the fit has converged = 0 and a warning, as
 * have a gradient that is not small or a Hessian that is not positive
 * definite at the end. */
bh_status bh_glmm_fit(const bh_design *d, const bh_glmm_options *opt,
                      bh_fit **out, bh_glmm_re **re, bh_error *err);

/* Repeated fits (simulations): the buffers of bh_glmm_fit, the starting
 * GLM's workspace and result, the eigen workspaces of the Newton steps and
 * the quadrature rule, grown to the largest problem seen and kept.  With
 * options.recycle and recycle_re set to the previous results, a fit of a
 * problem no larger than those before allocates nothing (except with
 * vcov_rx).  Not shared between threads. */
typedef struct bh_glmm_workspace bh_glmm_workspace;
bh_glmm_workspace *bh_glmm_workspace_alloc(void);
void bh_glmm_workspace_free(bh_glmm_workspace *ws);

/* bh_glmm_fit with its buffers in ws (NULL: allocated for the call): the
 * same numbers, statuses and messages. */
bh_status bh_glmm_fit_ws(const bh_design *d, const bh_glmm_options *opt,
                         bh_glmm_workspace *ws, bh_fit **out, bh_glmm_re **re,
                         bh_error *err);

/* Gauss-Hermite rule for the weight exp(-x^2) with k nodes (1..100):
 * nodes ascending and weights, by the Golub-Welsch eigenvalue method
 * (gsl_eigen_symmv on the Jacobi matrix) with each node polished by Newton
 * on the orthonormal Hermite recurrence and weights from the Christoffel
 * function (full relative accuracy for the tiny outer weights).  For the
 * standard normal density use z = sqrt(2) x, w / sqrt(pi). */
bh_status bh_glmm_gauss_hermite(size_t k, double *x, double *w, bh_error *err);

#endif
