/* wald.h - Wald tests of linear hypotheses on a fit's coefficients.
 *
 * Hypotheses are written with coefficient names as they print:
 *   "a:b = 0, c:d = 0"      joint test of two restrictions
 *   "x1 - x2 = 0"           equality of two coefficients
 *   "2*x1 + 0.5*x3 = 1"     general linear restriction
 * Names may contain any characters R term names have ("factor(g)2",
 * "I(x^2)", "(Intercept)", "share: x" for multi-component models written
 * component:term); the parser matches the longest coefficient name at
 * each position.
 *
 * The test uses the fit's current covariance (whatever --vcov chose):
 * W = (Lb - r)' (L V L')^-1 (Lb - r); reported as F = W/q on (q, df) with
 * the fit's inference df (t-based fits) or as chi^2(q) (z-based fits).
 */
#ifndef BH_WALD_H
#define BH_WALD_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/fit.h"

typedef struct {
    size_t q;                 /* restrictions                              */
    double *L;                /* q x p row-major                           */
    double *r;                /* q                                         */
    char *text;               /* the hypothesis as given                   */
} bh_hypothesis;

typedef struct {
    double chi2;              /* Wald statistic W                          */
    double f;                 /* W / q                                     */
    double df1, df2;          /* q and the denominator df (INFINITY: chi2) */
    double p_value;           /* from F(q, df2), or chi2(q) when df2 = Inf */
} bh_wald_result;

/* Parse hypotheses against the fit's coefficient names.  BH_EUSAGE names
 * the unknown coefficient (with a suggestion) or the position of a syntax
 * error.  A restriction on an aliased coefficient is an error. */
bh_status bh_hypothesis_parse(const char *text, const bh_fit *fit,
                              bh_hypothesis *out, bh_error *err);
void bh_hypothesis_free(bh_hypothesis *h);

/* The test.  BH_ENUMERIC when L V L' is singular (e.g. more restrictions
 * than clusters - 1 under a cluster-robust covariance). */
bh_status bh_wald_test(const bh_fit *fit, const bh_hypothesis *h,
                       bh_wald_result *out, bh_error *err);

/* Joint test that every coefficient except the intercept is zero: the
 * overall F of a linear model under any covariance (Stata's robust F). */
bh_status bh_wald_overall(const bh_fit *fit, bh_wald_result *out, bh_error *err);

/* Scratch memory for repeated tests (simulations): with it
 * bh_wald_overall_ws gives what bh_wald_overall gives and allocates
 * nothing once the workspace has grown to the problem.  One per thread. */
typedef struct bh_wald_workspace bh_wald_workspace;
bh_wald_workspace *bh_wald_workspace_alloc(void);
void bh_wald_workspace_free(bh_wald_workspace *ws);

/* bh_wald_overall with its buffers in ws (NULL: allocated for the call). */
bh_status bh_wald_overall_ws(const bh_fit *fit, bh_wald_workspace *ws, bh_wald_result *out,
                             bh_error *err);

#endif
