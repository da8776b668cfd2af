/* vcov.h - covariance estimators for any bh_fit.
 *
 *   classical   dispersion * bread (model-based)
 *   hc0..hc3    sandwich: bread * sum_i s_i s_i' w(h_i) * bread, with the
 *               small-sample factors of R's sandwich::vcovHC
 *   cluster:V   one-way cluster-robust: bread * sum_g S_g S_g' * bread times
 *               G/(G-1) * (N-1)/(N-K) for linear models (Stata, and
 *               sandwich::vcovCL(type = "HC1")), G/(G-1) for likelihood
 *               models (vcovCL(type = "HC0", cadjust = TRUE)); t tests
 *               with G-1 degrees of freedom.
 * Scores and leverages come from the fit (see fit.h), so every estimator
 * gets every covariance type.
 */
#ifndef BH_VCOV_H
#define BH_VCOV_H

#include "blackhole/status.h"
#include "blackhole/fit.h"

typedef enum {
    BH_VCOV_CLASSICAL = 0,
    BH_VCOV_HC0, BH_VCOV_HC1, BH_VCOV_HC2, BH_VCOV_HC3,
    BH_VCOV_CLUSTER
} bh_vcov_kind;

typedef struct {
    bh_vcov_kind kind;
    char cluster[256];        /* column name for BH_VCOV_CLUSTER */
} bh_vcov_spec;

/* Parse "classical", "hc0".."hc3" (any case), "cluster:VAR". */
bh_status bh_vcov_parse(const char *text, bh_vcov_spec *spec, bh_error *err);

/* Replace fit->vcov with the requested estimator and set vcov_type,
 * nclusters and df_inference.  Cluster needs fit->design->cluster (build
 * the design with that cluster column).  Leaves the fit unchanged on
 * failure.  Call bh_fit_summarize() afterwards. */
bh_status bh_vcov_compute(bh_fit *fit, const bh_vcov_spec *spec,
                          bh_error *err);

/* Scratch memory for repeated covariances (simulations): with it
 * bh_vcov_compute_ws gives what bh_vcov_compute gives and allocates nothing
 * once the workspace has grown to the problem.  One per thread. */
typedef struct bh_vcov_workspace bh_vcov_workspace;
bh_vcov_workspace *bh_vcov_workspace_alloc(void);
void bh_vcov_workspace_free(bh_vcov_workspace *ws);

/* bh_vcov_compute with its buffers in ws (NULL: allocated for the call). */
bh_status bh_vcov_compute_ws(bh_fit *fit, const bh_vcov_spec *spec,
                             bh_vcov_workspace *ws, bh_error *err);

#endif
