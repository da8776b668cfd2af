/* predict.h - fitted values of a model on new data, with standard errors.
 *
 * The model's trained terms (factor levels, center()/scale() state) are
 * evaluated on the new rows, offsets included.  Standard errors use the
 * fit's current covariance (classical, robust or cluster, as chosen):
 * se(eta) = sqrt(x' V x); on the response scale by the delta method,
 * se(mu) = |dmu/deta| se(eta).  Confidence limits are computed on the link
 * scale and transformed, so they stay inside the response's range.
 * Rows with a missing predictor get NAN (the row is kept, so output rows
 * line up with input rows).  Aliased coefficients count as zero, as R does
 * (with a warning there).
 *
 * Dirichlet models: the expected share of every component (E[y_c]), its
 * standard error by the delta method, and limits computed on the logit of
 * the share and transformed (so they stay inside (0, 1)).
 */
#ifndef BH_PREDICT_H
#define BH_PREDICT_H

#include <stddef.h>
#include "blackhole/fit.h"
#include "blackhole/frame.h"
#include "blackhole/status.h"

typedef struct {
    size_t n;                 /* rows of the new data                       */
    size_t ncomp;             /* 1, or the components of a Dirichlet model  */
    char **components;        /* ncomp response names (Dirichlet) or NULL  */
    double *eta, *se_eta;     /* linear predictor and its standard error
                                 (NAN for Dirichlet models)                 */
    double *mu, *se_mu;       /* response scale; n x ncomp, mu[c * n + i]   */
    double *conf_low, *conf_high; /* response scale, fit->level; n x ncomp */
    size_t nmissing;          /* rows with a missing predictor             */
} bh_prediction;

bh_status bh_predict(const bh_fit *fit, const bh_frame *newdata,
                     bh_prediction **out, bh_error *err);
void bh_prediction_free(bh_prediction *p);

#endif
