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

static void check_case(const char *name)
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
        cr_assert_eq(bh_vcov_compute(fit, &spec, &err), BH_OK, "%s: %s", text, err.msg);
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
