/* model.h - one model specification, estimated end to end.
 *
 * A bh_model_spec says everything needed to estimate a model: formula,
 * family and link, weights, covariance type, bootstrap, tests.  The CLI's
 * `fit` and `predict`, the study spec (`replicate`) and the Monte Carlo
 * batches (`simulate`) all go through bh_model_fit, so a model means the
 * same thing everywhere:
 *
 *   formula -> design -> estimator (lm, glm, or the mixed-effects logit
 *   when the formula has (1 | g) terms) -> covariance -> tests,
 *   bootstrap -> coefficient table
 *
 * The spec is never modified; strings in it are borrowed for the call.
 * Ownership: a bh_model owns its design and fit; bh_model_free() frees them.
 */
#ifndef BH_MODEL_H
#define BH_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "blackhole/boot.h"
#include "blackhole/design.h"
#include "blackhole/dirichlet.h"
#include "blackhole/fit.h"
#include "blackhole/frame.h"
#include "blackhole/glm.h"
#include "blackhole/glmm.h"
#include "blackhole/status.h"
#include "blackhole/vcov.h"

typedef struct {
    const char *formula;
    const char *name;           /* shown in tables; NULL = "(1)"            */
    bh_family family;           /* default gaussian (least squares)         */
    bh_link link;               /* used when link_set                       */
    int link_set;
    const char *weights;        /* column or NULL                           */
    bh_weight_kind weight_kind;
    bh_vcov_spec vcov;          /* used when vcov_set; otherwise classical,
                                   or HC0 for the fractional family         */
    int vcov_set;
    double level;               /* default 0.95                             */
    double tol;                 /* IRLS tolerance (0 = default 1e-10)       */
    size_t maxiter;             /* IRLS iterations (0 = default 100)        */
    double rank_tol;            /* QR rank tolerance (0 = default)          */
    int firth;
    bh_dirichlet_param param;   /* dirichlet: common (default) / alternative */
    const char *base;           /* dirichlet alternative: base response name */
    int squeeze;                /* dirichlet: Smithson-Verkuilen for 0s/1s   */
    double sum_tol;             /* dirichlet: row sums within this of 1 (0 =
                                   default 1e-6)                            */
    size_t nagq;                /* mixed models: 1 = Laplace (default), 2..25
                                   adaptive Gauss-Hermite quadrature          */
    bh_glm_trace_fn trace;
    void *trace_ctx;
    const char *const *tests;   /* Wald hypotheses, each "a = 0, b = 0"     */
    size_t ntests;
    int tests_optional;         /* a hypothesis naming coefficients this
                                   model lacks is skipped with a warning
                                   instead of failing (several models)     */
    int boot;                   /* wild (cluster/score) bootstrap           */
    bh_boot_options boot_opt;
    int lean;                   /* GLM fits for simulations: no null model,
                                   likelihood statistics, AUC/HL or leverages
                                   (bh_glm_options.lean); ignored when the
                                   covariance is HC2/HC3, which needs the
                                   leverages                                 */
    size_t threads;             /* GLM passes over the rows of designs longer
                                   than BH_GLM_BLOCK: 0 = all online CPUs
                                   (default), 1 = the calling thread (e.g.
                                   fits that already run one per thread);
                                   the numbers do not depend on it          */
} bh_model_spec;

void bh_model_spec_default(bh_model_spec *spec);

typedef struct {
    bh_design *design;
    bh_fit *fit;
    bh_glmm_re *re;             /* random effects of a mixed model, or NULL */
} bh_model;

/* Estimate.  Errors are those of each step (formula, data, estimation,
 * covariance); a model that did not converge is returned with
 * fit->converged = 0 and BH_OK. */
bh_status bh_model_fit(const bh_frame *data, const bh_model_spec *spec,
                       bh_model **out, bh_error *err);

/* The same, for a frame that nothing needs after this model: the frame is
 * given back while the design is built (see bh_design_build_consume), before
 * estimation, which bounds peak memory by about one copy of the data plus
 * the estimator's workspace.  *data is freed and set to NULL in every case.
 * Same results and messages as bh_model_fit; the model's design has no
 * frame behind it (margins and predictions on the estimation data need
 * bh_model_fit). */
bh_status bh_model_fit_consume(bh_frame **data, const bh_model_spec *spec, bh_model **out,
                               bh_error *err);
void bh_model_free(bh_model *m);

/* Repeated fits of one spec to data sets with the same columns
 * (simulations): the spec is checked and its formula parsed once, the
 * design's buffers (groupings included), the estimator's workspace (GLM,
 * least squares, Dirichlet or mixed model) and the covariance's are kept
 * between fits (grown to the largest problem seen, with room to spare),
 * and each result is recycled into the next: once the buffers have grown,
 * a fit allocates nothing (but for the spec's Wald tests and bootstrap,
 * and warnings that list collinear columns).  The spec's strings are borrowed for the
 * workspace's life.  NULL when out of memory; a spec error (bad formula,
 * link, ...) is not detected here but returned by every bh_model_fit_ws.
 * Not shared between threads. */
typedef struct bh_model_workspace bh_model_workspace;
bh_model_workspace *bh_model_workspace_alloc(const bh_model_spec *spec);
void bh_model_workspace_free(bh_model_workspace *ws);

/* Fit the workspace's spec to data: the same numbers, statuses and
 * messages as bh_model_fit.  *out belongs to the workspace and stays valid
 * until the next call or bh_model_workspace_free (its design does not
 * point into data). */
bh_status bh_model_fit_ws(bh_model_workspace *ws, const bh_frame *data, const bh_model **out,
                          bh_error *err);

/* Compare nested models fitted to the same rows: an F test for least
 * squares (as R's anova), a likelihood-ratio chi^2 test otherwise (as
 * lmtest::lrtest).  The result is attached to `larger` as a test labelled
 * "vs <smaller's name>".  BH_EUSAGE when the models are not nested (the
 * smaller's coefficients must all appear in the larger), not of the same
 * family, or not fitted to the same observations. */
bh_status bh_model_compare(const bh_model *smaller, bh_model *larger,
                           bh_error *err);

#endif
