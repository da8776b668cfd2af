/* test_margins_dirichlet.c - margins of the Dirichlet expected shares
 * against an independent computation: central differences of
 * bh_dirichlet_predict on hand-built design rows for the effect, and a
 * numerical Jacobian in the coefficients for the delta-method SE. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blackhole/csvread.h"
#include "blackhole/dirichlet.h"
#include "blackhole/margins.h"
#include "blackhole/model.h"
#include "testutil.h"

/* average d share_c / d x1 for y1 + y2 + y3 ~ x1 * x2, X = [1 x1 x2 x1*x2] */
static void ame_fd(const bh_dirichlet_layout *L, const double *beta, const bh_frame *f,
                   const size_t *rows, size_t n, double *ame)
{
    const bh_column *x1 = bh_frame_col(f, "x1"), *x2 = bh_frame_col(f, "x2");
    size_t K = L->K;
    double *X = malloc(n * 4 * sizeof *X), *sh = malloc(n * K * sizeof *sh);
    for (size_t c = 0; c < K; c++)
        ame[c] = 0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        for (size_t i = 0; i < n; i++) {
            double a = x1->num[rows[i]], b = x2->num[rows[i]];
            double h = 1e-5 * (1 + fabs(a));
            double v = a + sgn * h;
            X[0 * n + i] = 1;
            X[1 * n + i] = v;
            X[2 * n + i] = b;
            X[3 * n + i] = v * b;
        }
        bh_dirichlet_predict(L, beta, X, n, n, sh, NULL);
        for (size_t i = 0; i < n; i++) {
            double h = 1e-5 * (1 + fabs(x1->num[rows[i]]));
            for (size_t c = 0; c < K; c++)
                ame[c] += sgn * sh[c * n + i] / (2 * h) / (double)n;
        }
    }
    free(X);
    free(sh);
}

static void check(const char *param)
{
    /* one file per test process: the suites run in parallel */
    char tmp[64], cmd[256];
    snprintf(tmp, sizeof tmp, "/tmp/bht_mdir_%ld.csv", (long)getpid());
    snprintf(cmd, sizeof cmd, "grep -v '^#' tests/fixtures/dirichlet/dir_data.csv > %s", tmp);
    cr_assert_eq(bht_run(cmd, NULL, NULL), 0);
    bh_frame *f;
    bh_error err;
    bh_csv_options co;
    bh_csv_default_options(&co);
    cr_assert_eq(bh_csv_read_path(tmp, &co, &f, &err), BH_OK, "%s", err.msg);
    unlink(tmp);
    bh_model_spec sp;
    bh_model_spec_default(&sp);
    sp.formula = "y1 + y2 + y3 ~ x1 * x2";
    sp.family = BH_FAM_DIRICHLET;
    cr_assert_eq(bh_dirichlet_param_parse(param, &sp.param, &err), BH_OK);
    bh_model *m;
    cr_assert_eq(bh_model_fit(f, &sp, &m, &err), BH_OK, "%s", err.msg);
    bh_margins_softmax store;
    bh_margins_model mm;
    cr_assert_eq(bh_margins_model_for(m->fit, f, &store, &mm, &err), BH_OK, "%s", err.msg);
    bh_margins_options mo;
    bh_margins_default_options(&mo);
    const char *dydx[1] = {"x1"};
    mo.dydx = dydx;
    mo.ndydx = 1;
    bh_margins_result *r;
    cr_assert_eq(bh_margins_compute(&mm, &mo, &r, &err), BH_OK, "%s", err.msg);
    bh_dirichlet_layout L;
    cr_assert_eq(bh_dirichlet_layout_of(m->fit, &L, &err), BH_OK);
    size_t p = m->fit->p, K = L.K, n = m->design->n;
    double ame[8], up[8], dn[8];
    ame_fd(&L, m->fit->beta, f, m->design->rows, n, ame);
    /* numerical Jacobian of the averaged effect in the coefficients */
    double *J = calloc(K * p, sizeof *J), *b = malloc(p * sizeof *b);
    for (size_t j = 0; j < p; j++) {
        memcpy(b, m->fit->beta, p * sizeof *b);
        double h = 1e-5 * (1 + fabs(b[j]));
        b[j] += h;
        ame_fd(&L, b, f, m->design->rows, n, up);
        b[j] -= 2 * h;
        ame_fd(&L, b, f, m->design->rows, n, dn);
        for (size_t c = 0; c < K; c++)
            J[c * p + j] = (up[c] - dn[c]) / (2 * h);
    }
    size_t found = 0;
    for (size_t c = 0; c < K; c++) {
        double v = 0;
        for (size_t a = 0; a < p; a++)
            for (size_t bb = 0; bb < p; bb++)
                if (!m->fit->aliased[a] && !m->fit->aliased[bb])
                    v += J[c * p + a] * m->fit->vcov[a * p + bb] * J[c * p + bb];
        for (size_t i = 0; i < r->nrows; i++) {
            const bh_margin *g = &r->rows[i];
            if (g->type != BH_MARGIN_AME || strcmp(g->component, m->design->ynames[c]) != 0)
                continue;
            bht_assert_rel(g->estimate, ame[c], 1e-6, "%s AME %s", param, g->component);
            bht_assert_rel(g->std_error, sqrt(v), 1e-5, "%s SE %s", param, g->component);
            found++;
        }
    }
    cr_assert_eq(found, K);
    /* the effects on shares that sum to one sum to zero */
    double tot = 0;
    for (size_t i = 0; i < r->nrows; i++)
        tot += r->rows[i].estimate;
    cr_assert(fabs(tot) < 1e-12, "AMEs across components sum to %g", tot);
    free(J);
    free(b);
    bh_margins_result_free(r);
    bh_model_free(m);
    bh_frame_free(f);
}

Test(margins_dirichlet, common_matches_finite_differences) { check("common"); }
Test(margins_dirichlet, alternative_matches_finite_differences) { check("alternative"); }
