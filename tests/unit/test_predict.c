/* test_predict.c - predictions on new data.  References: the estimators'
 * own fitted values on the estimation rows are computed by different code
 * (inside each estimator); the delta-method SEs are checked against a
 * numerical Jacobian in the coefficients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/csvread.h"
#include "blackhole/model.h"
#include "blackhole/predict.h"
#include "testutil.h"

static bh_frame *read_fixture(const char *path, const char *tmp)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -v '^#' %s > %s", path, tmp);
    cr_assert_eq(bht_run(cmd, NULL, NULL), 0);
    bh_frame *f;
    bh_error err;
    bh_csv_options co;
    bh_csv_default_options(&co);
    cr_assert_eq(bh_csv_read_path(tmp, &co, &f, &err), BH_OK, "%s", err.msg);
    return f;
}

Test(predict, dirichlet_shares_equal_fitted_and_se_matches_jacobian)
{
    bh_frame *f = read_fixture("tests/fixtures/dirichlet/dir_data.csv", "/tmp/bht_pdir.csv");
    bh_model_spec sp;
    bh_model_spec_default(&sp);
    sp.formula = "y1 + y2 + y3 ~ x1 * x2";
    sp.family = BH_FAM_DIRICHLET;
    sp.param = BH_DIRICHLET_ALTERNATIVE;
    bh_model *m;
    bh_error err;
    cr_assert_eq(bh_model_fit(f, &sp, &m, &err), BH_OK, "%s", err.msg);
    bh_prediction *pr;
    cr_assert_eq(bh_predict(m->fit, f, &pr, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(pr->ncomp, 3);
    size_t n = f->nrow;
    for (size_t i = 0; i < n; i++) {
        double tot = 0;
        for (size_t c = 0; c < 3; c++) {
            tot += pr->mu[c * n + i];
            bht_assert_rel(pr->mu[c * n + i], m->fit->fitted[c * m->design->n + i], 1e-12,
                           "row %zu comp %zu", i, c);
            cr_assert(pr->conf_low[c * n + i] < pr->mu[c * n + i] &&
                      pr->mu[c * n + i] < pr->conf_high[c * n + i]);
        }
        bht_assert_rel(tot, 1.0, 1e-14);
    }
    /* SE of row 0, component 0 by a numerical Jacobian */
    size_t P = m->fit->p;
    double *g = calloc(P, sizeof *g), *b0 = malloc(P * sizeof *b0);
    memcpy(b0, m->fit->beta, P * sizeof *b0);
    for (size_t j = 0; j < P; j++) {
        double h = 1e-6 * (1 + fabs(b0[j]));
        bh_prediction *a, *b;
        m->fit->beta[j] = b0[j] + h;
        bh_predict(m->fit, f, &a, &err);
        m->fit->beta[j] = b0[j] - h;
        bh_predict(m->fit, f, &b, &err);
        m->fit->beta[j] = b0[j];
        g[j] = (a->mu[0] - b->mu[0]) / (2 * h);
        bh_prediction_free(a);
        bh_prediction_free(b);
    }
    double v = 0;
    for (size_t a = 0; a < P; a++)
        for (size_t b = 0; b < P; b++)
            v += g[a] * m->fit->vcov[a * P + b] * g[b];
    bht_assert_rel(pr->se_mu[0], sqrt(v), 1e-6);
    free(g);
    free(b0);
    bh_prediction_free(pr);
    bh_model_free(m);
    bh_frame_free(f);
}
