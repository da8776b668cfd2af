/* test_vcov.c - covariance estimators against R's sandwich package.
 *
 * References: tests/fixtures/lm/lm_vcov.csv, written by
 * tests/fixtures/r/lm_sandwich.R (R 4.2.2, sandwich 3.0.2): vcov(lm),
 * sandwich::vcovHC(type = "HC0".."HC3") and sandwich::vcovCL(fit,
 * cluster = ~g, type = "HC1"), full matrices, compared at 1e-8 relative.
 * Designs are built by hand from the same CSV data (no formula layer).
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/lm.h"
#include "blackhole/vcov.h"

#include "handdesign.h"

/* the shared hand-built designs (tests/handdesign.h) */
typedef bht_design lmt_design;
#define lmt_new bht_design_new
#define lmt_free bht_design_free
#define lmt_name bht_design_name
#define lmt_fit bht_lm_fit
#define rcase_design bht_rcase_design






/* ---- R reference cases (tests/fixtures/lm, from lm_sandwich.R) -------- */


static size_t rcase_term(const bh_fit *fit, const char *term)
{
    for (size_t j = 0; j < fit->p; j++)
        if (strcmp(fit->term[j], term) == 0)
            return j;
    cr_assert_fail("fit has no term %s", term);
    return 0;
}

/* Compare fit->vcov with R's matrix of the given type, every element. */
static void check_vcov(const char *name, const char *type, const bh_fit *fit)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/lm/lm_vcov.csv");
    size_t p = fit->p, k = 0;
    unsigned char *seen = calloc(p * p, 1);
    for (size_t i = 0; i < fx->nrow; i++) {
        if (strcmp(bht_fixture_str(fx, i, "case"), name) != 0 ||
            strcmp(bht_fixture_str(fx, i, "type"), type) != 0)
            continue;
        size_t a = rcase_term(fit, bht_fixture_str(fx, i, "row"));
        size_t b = rcase_term(fit, bht_fixture_str(fx, i, "col"));
        bht_assert_rel(fit->vcov[a * p + b], bht_fixture_num(fx, i, "value"), 1e-8,
                       "(%s %s [%s, %s])", name, type, fit->term[a], fit->term[b]);
        seen[a * p + b] = 1;
        k++;
    }
    cr_assert_eq(k, fit->rank * fit->rank, "%s %s: %zu reference entries", name, type, k);
    /* Aliased rows and columns are NAN. */
    for (size_t a = 0; a < p; a++)
        for (size_t b = 0; b < p; b++)
            if (!seen[a * p + b])
                cr_expect(isnan(fit->vcov[a * p + b]));
    free(seen);
    bht_fixture_free(fx);
}

/* With ws, every covariance goes through bh_vcov_compute_ws on it. */
static void check_case_ws(const char *name, bh_vcov_workspace *ws)
{
    static const char *types[] = {"classical", "hc0", "hc1", "hc2", "hc3", "cluster:"};
    static const char *rtypes[] = {"classical", "HC0", "HC1", "HC2", "HC3", "cluster"};
    lmt_design *t = rcase_design(name);
    bh_fit *fit = lmt_fit(t, 0);
    for (size_t k = 0; k < 6; k++) {
        bh_vcov_spec spec;
        bh_error err;
        char text[300];
        snprintf(text, sizeof text, "%s%s", types[k], k == 5 ? t->d.cluster->name : "");
        cr_assert_eq(bh_vcov_parse(text, &spec, &err), BH_OK, "%s", err.msg);
        bh_status st = ws ? bh_vcov_compute_ws(fit, &spec, ws, &err)
                          : bh_vcov_compute(fit, &spec, &err);
        cr_assert_eq(st, BH_OK, "%s: %s", text, err.msg);
        check_vcov(name, rtypes[k], fit);
        double dfres = fit->stats.df_resid;
        if (k == 5) {
            cr_expect_eq(fit->nclusters, t->d.cluster->ngroups);
            cr_expect_eq(fit->df_inference, (double)t->d.cluster->ngroups - 1);
            char want[300];
            snprintf(want, sizeof want, "cluster(%s)", t->d.cluster->name);
            cr_expect_str_eq(fit->vcov_type, want);
        } else {
            cr_expect_eq(fit->nclusters, 0);
            cr_expect_eq(fit->df_inference, dfres);
            cr_expect_str_eq(fit->vcov_type, rtypes[k]);
        }
    }
    bh_fit_free(fit);
    lmt_free(t);
}

static void check_case(const char *name)
{
    check_case_ws(name, NULL);
}

/* One workspace reused for every kind and every case (sizes and cluster
 * counts change): the same R references. */
Test(vcov_r, one_workspace_for_every_case)
{
    static const char *cases[] = {"mtcars", "gen", "mtcars_noint", "gen_w", "gen_w0",
                                  "gen_freq", "gen_alias", "mtcars"};
    bh_vcov_workspace *ws = bh_vcov_workspace_alloc();
    cr_assert_not_null(ws);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        check_case_ws(cases[k], ws);
    bh_vcov_workspace_free(ws);
}

Test(vcov_r, mtcars) { check_case("mtcars"); }
Test(vcov_r, mtcars_no_intercept) { check_case("mtcars_noint"); }
Test(vcov_r, generated) { check_case("gen"); }
Test(vcov_r, weighted) { check_case("gen_w"); }
Test(vcov_r, zero_weights) { check_case("gen_w0"); }
Test(vcov_r, frequency_weights) { check_case("gen_freq"); }
Test(vcov_r, collinear) { check_case("gen_alias"); }

Test(vcov_parse, kinds)
{
    bh_vcov_spec s;
    bh_error err;
    cr_expect_eq(bh_vcov_parse("classical", &s, &err), BH_OK);
    cr_expect_eq(s.kind, BH_VCOV_CLASSICAL);
    cr_expect_eq(bh_vcov_parse("HC1", &s, &err), BH_OK);
    cr_expect_eq(s.kind, BH_VCOV_HC1);
    cr_expect_eq(bh_vcov_parse("hc3", &s, &err), BH_OK);
    cr_expect_eq(s.kind, BH_VCOV_HC3);
    cr_expect_eq(bh_vcov_parse("cluster:firm", &s, &err), BH_OK);
    cr_expect_eq(s.kind, BH_VCOV_CLUSTER);
    cr_expect_str_eq(s.cluster, "firm");
    cr_expect_eq(bh_vcov_parse("cluster:", &s, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "cluster variable"), "%s", err.msg);
    cr_expect_eq(bh_vcov_parse("hc4", &s, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "'hc4'"), "%s", err.msg);
    cr_expect_eq(bh_vcov_parse(NULL, &s, &err), BH_EUSAGE);
}

/* Failures leave the fit unchanged. */
Test(vcov_errors, cluster_missing_and_hat)
{
    lmt_design *t = rcase_design("gen");
    bh_grouping *g = t->d.cluster;
    t->d.cluster = NULL;
    bh_fit *fit = lmt_fit(t, 0);
    double v0 = fit->vcov[0];
    bh_vcov_spec s;
    bh_error err;
    cr_assert_eq(bh_vcov_parse("cluster:g", &s, &err), BH_OK);
    cr_expect_eq(bh_vcov_compute(fit, &s, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "cluster"), "%s", err.msg);
    cr_expect_eq(fit->vcov[0], v0);
    cr_expect_str_eq(fit->vcov_type, "classical");
    t->d.cluster = g;
    cr_assert_eq(bh_vcov_parse("cluster:firm", &s, &err), BH_OK);
    cr_expect_eq(bh_vcov_compute(fit, &s, &err), BH_EUSAGE); /* wrong name */
    size_t ng = g->ngroups;
    g->ngroups = 1;
    for (size_t i = 0; i < t->d.n; i++)
        g->code[i] = 0;
    cr_assert_eq(bh_vcov_parse("cluster:g", &s, &err), BH_OK);
    cr_expect_eq(bh_vcov_compute(fit, &s, &err), BH_EDATA);
    g->ngroups = ng;
    /* No leverages: HC2/HC3 are refused, HC1 works. */
    free(fit->hat);
    fit->hat = NULL;
    cr_assert_eq(bh_vcov_parse("hc3", &s, &err), BH_OK);
    cr_expect_eq(bh_vcov_compute(fit, &s, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "leverages"), "%s", err.msg);
    cr_expect_eq(fit->vcov[0], v0);
    cr_assert_eq(bh_vcov_parse("hc1", &s, &err), BH_OK);
    cr_expect_eq(bh_vcov_compute(fit, &s, &err), BH_OK);
    cr_expect_neq(fit->vcov[0], v0);
    bh_fit_free(fit);
    lmt_free(t);
}

/* Score rows for the meats: x[i, c] * u[i, b] summed over the blocks that
 * hold a coefficient, by hand with small integers (exact in double), for
 * overlapping blocks, an aliased coefficient left out, a chunk starting
 * inside the data, and explicit scores. */
Test(vcov_scores, score_rows_by_hand)
{
    enum { N = 5, P = 4 };
    bh_fit *fit = bh_fit_alloc(P, N, 1, 2);
    cr_assert_not_null(fit);
    /* block 0: coefficients 0..2 from x0 (3 columns); block 1: 2..3 from
     * x1 (2 columns), so coefficient 2 gets x0[.,2] u0 + x1[.,0] u1 */
    static const double x0[3 * N] = {1, 2, 3, 4, 5, -1, 0, 1, 2, 3, 2, 2, 2, 2, -2};
    static const double x1[2 * N] = {1, 1, 1, 1, 1, 0.5, -0.5, 1.5, 2, -3};
    fit->blocks[0] = (bh_score_block){.x = x0, .ncol = 3, .coef0 = 0};
    fit->blocks[1] = (bh_score_block){.x = x1, .ncol = 2, .coef0 = 2};
    const double u0[N] = {1, -2, 0.5, 3, -1}, u1[N] = {2, 2, -1, 0.25, 4};
    memcpy(fit->u, u0, sizeof u0);
    memcpy(fit->u + N, u1, sizeof u1);
    fit->aliased[1] = 1;
    const size_t idx[3] = {0, 2, 3};
    /* rows 1..4 (i0 = 1), by hand:
     * coef 0: x0[i,0] u0[i]             =  -4, 1.5, 12, -5
     * coef 2: x0[i,2] u0 + x1[i,0] u1   =  -4+2, 1-1, 6+0.25, 2+4 = -2, 0, 6.25, 6
     * coef 3: x1[i,1] u1                =  -1, -1.5, 0.5, -12 */
    const double want[4][3] = {{-4, -2, -1}, {1.5, 0, -1.5}, {12, 6.25, 0.5}, {-5, 6, -12}};
    double g[4 * 3], full[P];
    bh_fit_score_rows(fit, 1, 4, idx, 3, g);
    for (size_t i = 0; i < 4; i++) {
        bh_fit_score(fit, i + 1, full);
        for (size_t k = 0; k < 3; k++) {
            cr_assert_eq(g[i * 3 + k], want[i][k], "row %zu coef %zu: %g", i + 1, idx[k],
                         g[i * 3 + k]);
            cr_assert_eq(memcmp(&g[i * 3 + k], &full[idx[k]], sizeof full[0]), 0,
                         "row %zu coef %zu differs from bh_fit_score", i + 1, idx[k]);
        }
    }
    /* coefficients 0 and 3, each in one block only (the row-wise path) */
    const size_t idx2[2] = {0, 3};
    bh_fit_score_rows(fit, 1, 4, idx2, 2, g);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(g[i * 2], want[i][0], "row %zu coef 0", i + 1);
        cr_assert_eq(g[i * 2 + 1], want[i][2], "row %zu coef 3", i + 1);
    }
    /* a -0 product comes out +0, as in bh_fit_score's zeroed row */
    fit->u[0] = -0.0;
    bh_fit_score_rows(fit, 0, 1, idx, 1, g);
    cr_assert(g[0] == 0 && !signbit(g[0]));
    /* explicit scores (n x p, column-major) take precedence */
    fit->scores = malloc(N * P * sizeof *fit->scores);
    for (size_t k = 0; k < N * P; k++)
        fit->scores[k] = (double)k + 0.5;
    bh_fit_score_rows(fit, 2, 2, idx, 3, g);
    const double ws[2][3] = {{2.5, 12.5, 17.5}, {3.5, 13.5, 18.5}};
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < 3; k++)
            cr_assert_eq(g[i * 3 + k], ws[i][k]);
    bh_fit_free(fit);
}
