/* test_dirichlet.c - Dirichlet regression against R.
 *
 * Data and reference values are in tests/fixtures/dirichlet/, written by
 * tests/fixtures/r/dirichlet_reference.R (tool, version and command in
 * each fixture's header): maximum likelihood in R (optim BFGS, Newton
 * polish to |gradient| < 1e-10), classical standard errors from the
 * inverse negative Hessian, HC0/HC1/cluster sandwich from the analytic
 * per-observation scores, a two-share model checked against a beta
 * regression coded with R's dbeta, and the Smithson-Verkuilen squeeze.
 * Designs come from the real pipeline (formula -> frame -> design).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blackhole/csvread.h"
#include "blackhole/design.h"
#include "blackhole/dirichlet.h"
#include "blackhole/formula.h"
#include "blackhole/frame.h"
#include "blackhole/vcov.h"

#define FX "tests/fixtures/dirichlet/"

/* Estimates and log-likelihood: R's optimum has |gradient| < 1e-10. */
#define TOL_EST 1e-8
/* Standard errors: R's Hessian is a Richardson difference of the analytic
 * gradient (agrees with numDeriv::hessian to 3e-9, dir_stats.csv). */
#define TOL_SE 1e-7

/* A frame from a fixture: columns whose first cell does not parse as a
 * number are categorical. */
static bh_frame *frame_from(const char *path)
{
    bht_fixture *fx = bht_fixture_read(path);
    bh_error err;
    bh_error_clear(&err);
    bh_frame *fr = bh_frame_new(path, fx->nrow);
    cr_assert_not_null(fr);
    for (size_t j = 0; j < fx->ncol; j++) {
        char *end;
        strtod(fx->cell[0][j], &end);
        if (*end) {
            const char **v = calloc(fx->nrow, sizeof *v);
            for (size_t i = 0; i < fx->nrow; i++)
                v[i] = fx->cell[i][j];
            cr_assert_eq(bh_frame_add_categorical(fr, fx->header[j], v, &err),
                         BH_OK, "%s", err.msg);
            free(v);
        } else {
            double *v = malloc(fx->nrow * sizeof *v);
            for (size_t i = 0; i < fx->nrow; i++)
                v[i] = strtod(fx->cell[i][j], NULL);
            cr_assert_eq(bh_frame_add_numeric(fr, fx->header[j], v, NULL, &err),
                         BH_OK, "%s", err.msg);
            free(v);
        }
    }
    bht_fixture_free(fx);
    return fr;
}

static bh_design *design(const bh_frame *fr, const char *text,
                         const char *cluster)
{
    bh_formula *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s: %s", text, err.msg);
    bh_design_options o;
    bh_design_default_options(&o);
    o.cluster = cluster;
    bh_design *d = NULL;
    cr_assert_eq(bh_design_build(f, fr, &o, &d, &err), BH_OK, "%s: %s", text,
                 err.msg);
    bh_formula_free(f);
    return d;
}

static bh_fit *fit_ok(const bh_design *d, const bh_dirichlet_options *o,
                      bh_dirichlet_workspace *ws)
{
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status st = bh_dirichlet_fit(d, o, ws, &fit, &err);
    cr_assert_eq(st, BH_OK, "bh_dirichlet_fit: %s", err.msg);
    cr_assert_not_null(fit);
    return fit;
}

static void set_vcov(bh_fit *fit, const char *spec)
{
    bh_vcov_spec vs;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_vcov_parse(spec, &vs, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_vcov_compute(fit, &vs, &err), BH_OK, "%s: %s", spec, err.msg);
}

static double se_of(const bh_fit *fit, size_t j)
{
    return sqrt(fit->vcov[j * fit->p + j]);
}

/* Compare a fit with the rows of dir_coef.csv / dir_stats.csv for model. */
static void check_model(bh_fit *fit, const char *model, int cluster)
{
    bht_fixture *fx = bht_fixture_read(FX "dir_coef.csv");
    size_t k = 0;
    double *hc0 = malloc(fit->p * sizeof *hc0), *hc1 = malloc(fit->p * sizeof *hc1);
    cr_assert(fit->converged, "%s: not converged", model);
    for (size_t j = 0; j < fit->p; j++) {
        cr_assert(!fit->aliased[j]);
    }
    set_vcov(fit, "hc0");
    for (size_t j = 0; j < fit->p; j++)
        hc0[j] = se_of(fit, j);
    set_vcov(fit, "hc1");
    for (size_t j = 0; j < fit->p; j++)
        hc1[j] = se_of(fit, j);
    double *cl = malloc(fit->p * sizeof *cl);
    if (cluster) {
        set_vcov(fit, "cluster:g");
        for (size_t j = 0; j < fit->p; j++)
            cl[j] = se_of(fit, j);
    }
    set_vcov(fit, "classical");
    for (size_t r = 0; r < fx->nrow; r++) {
        if (strcmp(bht_fixture_str(fx, r, "model"), model) != 0)
            continue;
        cr_assert_lt(k, fit->p, "%s: more coefficients in R", model);
        cr_assert_str_eq(fit->component[k], bht_fixture_str(fx, r, "component"),
                         "%s coefficient %zu", model, k);
        cr_assert_str_eq(fit->term[k], bht_fixture_str(fx, r, "term"),
                         "%s coefficient %zu", model, k);
        const char *nm = fit->term[k];
        bht_assert_rel(fit->beta[k], bht_fixture_num(fx, r, "estimate"), TOL_EST,
                       "%s %s %s", model, fit->component[k], nm);
        bht_assert_rel(se_of(fit, k), bht_fixture_num(fx, r, "se"), TOL_SE,
                       "%s %s %s", model, fit->component[k], nm);
        bht_assert_rel(hc0[k], bht_fixture_num(fx, r, "se_hc0"), TOL_SE,
                       "%s %s %s", model, fit->component[k], nm);
        bht_assert_rel(hc1[k], bht_fixture_num(fx, r, "se_hc1"), TOL_SE,
                       "%s %s %s", model, fit->component[k], nm);
        if (cluster)
            bht_assert_rel(cl[k], bht_fixture_num(fx, r, "se_cluster"), TOL_SE,
                           "%s %s %s", model, fit->component[k], nm);
        k++;
    }
    cr_assert_eq(k, fit->p, "%s: %zu coefficients, R has %zu", model, fit->p, k);
    bht_fixture_free(fx);
    free(hc0);
    free(hc1);
    free(cl);

    fx = bht_fixture_read(FX "dir_stats.csv");
    size_t found = 0;
    for (size_t r = 0; r < fx->nrow; r++) {
        if (strcmp(bht_fixture_str(fx, r, "model"), model) != 0)
            continue;
        found = 1;
        cr_assert_eq(fit->nobs, (size_t)bht_fixture_num(fx, r, "nobs"));
        cr_assert_eq(fit->rank, (size_t)bht_fixture_num(fx, r, "k"));
        bht_assert_rel(fit->stats.loglik, bht_fixture_num(fx, r, "loglik"), TOL_EST, "%s", model);
        bht_assert_rel(fit->stats.aic, bht_fixture_num(fx, r, "aic"), TOL_EST, "%s", model);
        bht_assert_rel(fit->stats.bic, bht_fixture_num(fx, r, "bic"), TOL_EST, "%s", model);
    }
    cr_assert(found, "model %s not in dir_stats.csv", model);
    bht_fixture_free(fx);
    cr_assert_str_eq(fit->family, "dirichlet");
    cr_assert_str_eq(fit->method, "ml");
}

static int has_warning(const bh_fit *fit, const char *needle)
{
    for (size_t k = 0; k < fit->nwarnings; k++)
        if (strstr(fit->warnings[k], needle))
            return 1;
    return 0;
}

/* ---- against R ---------------------------------------------------------- */

Test(dirichlet, common_matches_r)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    bh_fit *fit = fit_ok(d, &o, NULL);
    cr_assert_str_eq(fit->link, "log");
    cr_assert_eq(fit->nwarnings, 0, "unexpected warning: %s",
                 fit->nwarnings ? fit->warnings[0] : "");
    check_model(fit, "common", 1);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(dirichlet, alternative_intercept_phi_matches_r)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    bh_fit *fit = fit_ok(d, &o, NULL);
    cr_assert_str_eq(fit->link, "logit/log");
    check_model(fit, "alt_phi1", 1);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* Without an intercept column in X the intercept-only precision block has
 * nothing to point at: explicit scores must give the same sandwich. */
Test(dirichlet, alternative_explicit_scores)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    /* Same column space with the intercept column replaced by 1 + x2:
     * identical likelihood, different parametrisation of the means. */
    size_t n = d->n;
    double *x0 = malloc(n * sizeof *x0);
    memcpy(x0, d->x, n * sizeof *x0);
    for (size_t i = 0; i < n; i++)
        d->x[i] = 1.0 + d->x[2 * n + i];
    bh_fit *fit = fit_ok(d, &o, NULL);
    cr_assert_not_null(fit->scores);
    bh_fit *ref = NULL;
    memcpy(d->x, x0, n * sizeof *x0);
    ref = fit_ok(d, &o, NULL);
    bht_assert_rel(fit->stats.loglik, ref->stats.loglik, 1e-12);
    /* Precision coefficient and its robust SE do not depend on the mean
     * parametrisation. */
    size_t j = fit->p - 1;
    set_vcov(fit, "cluster:g");
    set_vcov(ref, "cluster:g");
    bht_assert_rel(fit->beta[j], ref->beta[j], 1e-9);
    bht_assert_rel(se_of(fit, j), se_of(ref, j), 1e-7);
    set_vcov(fit, "hc0");
    set_vcov(ref, "hc0");
    bht_assert_rel(se_of(fit, j), se_of(ref, j), 1e-7);
    free(x0);
    bh_fit_free(fit);
    bh_fit_free(ref);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(dirichlet, alternative_phi_model_matches_r)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2 | z", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    bh_fit *fit = fit_ok(d, &o, NULL);
    check_model(fit, "alt_phiz", 1);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* Two shares: the alternative model is a beta regression of the second
 * share (logit mean, log precision); R's reference uses dbeta. */
Test(dirichlet, two_shares_equal_beta_regression)
{
    bh_frame *fr = frame_from(FX "dir_beta.csv");
    bh_design *d = design(fr, "yA + yB ~ x1 | x2", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    bh_fit *fit = fit_ok(d, &o, NULL);
    check_model(fit, "beta_k2", 1);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* ---- data checks ------------------------------------------------------ */

Test(dirichlet, zero_share_error_and_squeeze)
{
    bh_frame *fr = frame_from(FX "dir_zero.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 + x2", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_dirichlet_fit(d, &o, NULL, &fit, &err), BH_EDATA);
    cr_assert_null(fit);
    cr_assert(strstr(err.msg, "y2") && strstr(err.msg, "data row 5") &&
              strstr(err.msg, "squeeze"), "%s", err.msg);

    o.squeeze = 1;
    fit = fit_ok(d, &o, NULL);
    cr_assert(has_warning(fit, "squeezed:"));
    cr_assert(has_warning(fit, "2 shares of exactly 0 or 1"));
    check_model(fit, "squeeze", 1);
    /* The transformed shares: fitted + residual. */
    bht_fixture *fx = bht_fixture_read(FX "dir_squeeze.csv");
    for (size_t r = 0; r < fx->nrow; r++) {
        size_t i = (size_t)bht_fixture_num(fx, r, "row") - 1;
        const char *comp = bht_fixture_str(fx, r, "component");
        size_t c = (size_t)(comp[1] - '1');
        double yq = fit->fitted[c * d->n + i] + fit->resid[c * d->n + i];
        bht_assert_rel(yq, bht_fixture_num(fx, r, "squeezed"), 1e-14,
                       "row %zu %s", i + 1, comp);
    }
    bht_fixture_free(fx);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* A small frame: shares a, b, c and predictor x. */
static bh_frame *small_frame(const double *a, const double *b, const double *c,
                             size_t n)
{
    bh_error err;
    bh_error_clear(&err);
    bh_frame *fr = bh_frame_new("small.csv", n);
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(i % 7) - 3.0 + 0.1 * (double)i;
    cr_assert_eq(bh_frame_add_numeric(fr, "a", a, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "b", b, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "c", c, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "x", x, NULL, &err), BH_OK, "%s", err.msg);
    free(x);
    return fr;
}

static void small_shares(double *a, double *b, double *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        a[i] = 0.2 + 0.01 * (double)(i % 11);
        b[i] = 0.3 + 0.02 * (double)(i % 5);
        c[i] = 1.0 - a[i] - b[i];
    }
}

Test(dirichlet, shares_not_summing_to_one)
{
    enum { N = 30 };
    double a[N], b[N], c[N];
    small_shares(a, b, c, N);
    a[2] -= 0.02; /* row 3 sums to 0.98 */
    bh_frame *fr = small_frame(a, b, c, N);
    bh_design *d = design(fr, "a + b + c ~ x", NULL);
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_dirichlet_fit(d, &o, NULL, &fit, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "small.csv") && strstr(err.msg, "data row 3") &&
              strstr(err.msg, "sum to 0.98") && strstr(err.msg, "sum_tol"),
              "%s", err.msg);
    /* Within a looser tolerance the row is normalised, with a warning. */
    o.sum_tol = 0.03;
    fit = fit_ok(d, &o, NULL);
    cr_assert(has_warning(fit, "normalised:"));
    cr_assert(has_warning(fit, "data row 3"));
    double s = 0;
    for (size_t k = 0; k < 3; k++)
        s += fit->fitted[k * N + 2] + fit->resid[k * N + 2];
    bht_assert_rel(s, 1.0, 1e-15);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(dirichlet, share_out_of_range)
{
    enum { N = 20 };
    double a[N], b[N], c[N];
    small_shares(a, b, c, N);
    b[6] = -0.1;
    c[6] = 1 - a[6] - b[6];
    bh_frame *fr = small_frame(a, b, c, N);
    bh_design *d = design(fr, "a + b + c ~ x", NULL);
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_dirichlet_fit(d, NULL, NULL, &fit, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "share b") && strstr(err.msg, "data row 7"),
              "%s", err.msg);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(dirichlet, response_not_numeric)
{
    enum { N = 10 };
    double a[N], b[N], c[N];
    small_shares(a, b, c, N);
    bh_frame *fr = small_frame(a, b, c, N);
    const char *t[N] = {"x", "y", "x", "y", "x", "y", "x", "y", "x", "y"};
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_frame_add_categorical(fr, "txt", t, &err), BH_OK);
    bh_formula *f = NULL;
    cr_assert_eq(bh_formula_parse("a + txt + c ~ x", &f, &err), BH_OK);
    bh_design *d = NULL;
    bh_status st = bh_design_build(f, fr, NULL, &d, &err);
    cr_assert_neq(st, BH_OK);
    cr_assert_null(d);
    cr_assert(strstr(err.msg, "txt"), "%s", err.msg);
    bh_formula_free(f);
    bh_frame_free(fr);
}

Test(dirichlet, model_errors)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    /* One response. */
    bh_design *d = design(fr, "y1 ~ x1", NULL);
    cr_assert_eq(bh_dirichlet_fit(d, NULL, NULL, &fit, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "at least 2 shares"), "%s", err.msg);
    bh_design_free(d);
    /* A precision part with the common parametrisation. */
    d = design(fr, "y1 + y2 + y3 ~ x1 | z", NULL);
    cr_assert_eq(bh_dirichlet_fit(d, NULL, NULL, &fit, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "alternative"), "%s", err.msg);
    /* A base outside the responses. */
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    o.base = 3;
    cr_assert_eq(bh_dirichlet_fit(d, &o, NULL, &fit, &err), BH_EUSAGE);
    bh_design_free(d);
    bh_dirichlet_param p;
    cr_assert_eq(bh_dirichlet_param_parse("Alternative", &p, &err), BH_OK);
    cr_assert_eq(p, BH_DIRICHLET_ALTERNATIVE);
    cr_assert_eq(bh_dirichlet_param_parse("alt", &p, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'alt'"), "%s", err.msg);
    bh_frame_free(fr);
}

/* HC2/HC3 need leverages, which a Dirichlet fit does not have. */
Test(dirichlet, hc3_refused)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1", NULL);
    bh_fit *fit = fit_ok(d, NULL, NULL);
    bh_vcov_spec vs;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_vcov_parse("hc3", &vs, &err), BH_OK);
    cr_assert_eq(bh_vcov_compute(fit, &vs, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "leverages"), "%s", err.msg);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* x3 = 2 x1 is aliased in every component; the rest is R's common fit. */
Test(dirichlet, rank_deficient_x)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    const bh_column *x1 = bh_frame_col(fr, "x1");
    double *x3 = malloc(fr->nrow * sizeof *x3);
    for (size_t i = 0; i < fr->nrow; i++)
        x3[i] = 2 * x1->num[i];
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_frame_add_numeric(fr, "x3", x3, NULL, &err), BH_OK);
    free(x3);
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2 + x3", "g");
    bh_fit *fit = fit_ok(d, NULL, NULL);
    cr_assert_eq(fit->p, 15);
    cr_assert_eq(fit->rank, 12);
    cr_assert(has_warning(fit, "not estimable (collinear), in every component: x3"));
    /* Columns: (Intercept), x1, x2, x3, x1:x2 per component. */
    bht_fixture *fx = bht_fixture_read(FX "dir_coef.csv");
    size_t k = 0;
    for (size_t j = 0; j < fit->p; j++) {
        if (strcmp(fit->term[j], "x3") == 0) {
            cr_assert(fit->aliased[j]);
            cr_assert(isnan(fit->beta[j]));
            continue;
        }
        while (strcmp(bht_fixture_str(fx, k, "model"), "common") != 0)
            k++;
        cr_assert_str_eq(fit->term[j], bht_fixture_str(fx, k, "term"));
        bht_assert_rel(fit->beta[j], bht_fixture_num(fx, k, "estimate"), TOL_EST);
        bht_assert_rel(se_of(fit, j), bht_fixture_num(fx, k, "se"), TOL_SE);
        k++;
    }
    set_vcov(fit, "cluster:g");
    for (size_t j = 0; j < fit->p; j++)
        cr_assert(fit->aliased[j] ? isnan(fit->vcov[j * fit->p + j])
                                  : fit->vcov[j * fit->p + j] > 0);
    bht_fixture_free(fx);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* ---- workspace reuse, weights, prediction ------------------------------- */

static void assert_same_fit(const bh_fit *a, const bh_fit *b)
{
    cr_assert_eq(a->p, b->p);
    for (size_t j = 0; j < a->p; j++) {
        cr_assert(a->beta[j] == b->beta[j], "beta %zu: %.17g vs %.17g", j,
                  a->beta[j], b->beta[j]);
        for (size_t k = 0; k < a->p; k++)
            cr_assert(a->vcov[j * a->p + k] == b->vcov[j * a->p + k]);
    }
    cr_assert(a->stats.loglik == b->stats.loglik);
    cr_assert_eq(a->iterations, b->iterations);
}

Test(dirichlet, workspace_reuse_equals_fresh_fits)
{
    bh_frame *f1 = frame_from(FX "dir_data.csv");
    bh_frame *f2 = frame_from(FX "dir_zero.csv");
    bh_design *d1 = design(f1, "y1 + y2 + y3 ~ x1 * x2 | z", NULL);
    bh_design *d2 = design(f2, "y1 + y2 + y3 ~ x1 + x2", NULL);
    bh_dirichlet_options o1, o2;
    bh_dirichlet_default_options(&o1);
    o1.param = BH_DIRICHLET_ALTERNATIVE;
    bh_dirichlet_default_options(&o2);
    o2.squeeze = 1;
    bh_fit *fresh1 = fit_ok(d1, &o1, NULL), *fresh2 = fit_ok(d2, &o2, NULL);
    bh_dirichlet_workspace *ws = bh_dirichlet_workspace_alloc(400, 4, 2, 3);
    cr_assert_not_null(ws);
    for (int rep = 0; rep < 2; rep++) {
        bh_fit *a = fit_ok(d1, &o1, ws);
        assert_same_fit(a, fresh1);
        bh_fit *b = fit_ok(d2, &o2, ws);
        assert_same_fit(b, fresh2);
        bh_fit_free(a);
        bh_fit_free(b);
    }
    /* Too small a workspace is refused. */
    bh_dirichlet_workspace *small = bh_dirichlet_workspace_alloc(100, 4, 2, 3);
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_dirichlet_fit(d1, &o1, small, &fit, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "too small"), "%s", err.msg);
    bh_dirichlet_workspace_free(small);
    bh_dirichlet_workspace_free(ws);
    bh_fit_free(fresh1);
    bh_fit_free(fresh2);
    bh_design_free(d1);
    bh_design_free(d2);
    bh_frame_free(f1);
    bh_frame_free(f2);
}

/* Frequency weights of 2 equal duplicating the rows. */
Test(dirichlet, frequency_weights_equal_duplicated_rows)
{
    bh_frame *fr = frame_from(FX "dir_zero.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 + x2", NULL);
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    o.squeeze = 1;
    /* Rows 1..120, each twice, as a hand-built design. */
    size_t n = d->n, p = d->p;
    bh_design dd = {0};
    dd.n = 2 * n;
    dd.p = p;
    dd.m = 3;
    dd.x = malloc(2 * n * p * sizeof *dd.x);
    dd.y = malloc(2 * n * 3 * sizeof *dd.y);
    for (size_t j = 0; j < p; j++)
        for (size_t i = 0; i < 2 * n; i++)
            dd.x[j * 2 * n + i] = d->x[j * n + i % n];
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < 2 * n; i++)
            dd.y[c * 2 * n + i] = d->y[c * n + i % n];
    double *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = 2;
    d->w = w;
    d->weight_kind = BH_WEIGHTS_FREQUENCY;
    bh_fit *fw = fit_ok(d, &o, NULL);
    bh_fit *fd = fit_ok(&dd, &o, NULL);
    cr_assert_eq(fw->nobs, 2 * n);
    bht_assert_rel(fw->stats.loglik, fd->stats.loglik, 1e-11);
    set_vcov(fw, "hc1");
    set_vcov(fd, "hc1");
    for (size_t j = 0; j < fw->p; j++) {
        bht_assert_rel(fw->beta[j], fd->beta[j], 1e-8);
        bht_assert_rel(se_of(fw, j), se_of(fd, j), 1e-7);
    }
    bh_fit_free(fw);
    bh_fit_free(fd);
    free(dd.x);
    free(dd.y);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(dirichlet, prediction_and_derivatives)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2 | z", NULL);
    for (int alt = 0; alt < 2; alt++) {
        bh_dirichlet_options o;
        bh_dirichlet_default_options(&o);
        o.param = alt ? BH_DIRICHLET_ALTERNATIVE : BH_DIRICHLET_COMMON;
        o.base = 1;
        bh_design *dd = d;
        bh_design *d0 = alt ? NULL : design(fr, "y1 + y2 + y3 ~ x1 * x2", NULL);
        if (!alt)
            dd = d0;
        bh_fit *fit = fit_ok(dd, &o, NULL);
        bh_dirichlet_layout L;
        bh_error err;
        bh_error_clear(&err);
        cr_assert_eq(bh_dirichlet_layout_of(fit, &L, &err), BH_OK, "%s", err.msg);
        cr_assert_eq(L.param, o.param);
        cr_assert_eq(L.K, 3);
        cr_assert_eq(bh_dirichlet_ncoef(&L), fit->p);
        if (alt) {
            cr_assert_eq(L.base, 1);
            cr_assert_eq(L.pz, 2);
            cr_assert_str_eq(fit->component[0], "y1");
            cr_assert_str_eq(fit->component[4], "y3");
        }
        size_t n = dd->n;
        double *sh = malloc(n * 3 * sizeof *sh), *jac = malloc(n * 9 * sizeof *jac);
        bh_dirichlet_predict(&L, fit->beta, dd->x, n, n, sh, jac);
        for (size_t k = 0; k < n * 3; k++)
            bht_assert_rel(sh[k], fit->fitted[k], 1e-13);
        /* Derivatives against central differences of the shares. */
        for (size_t i = 0; i < n; i += 37) {
            double eta[3], s1[3], s2[3];
            bh_dirichlet_eta(&L, fit->beta, dd->x + i, n, eta);
            for (size_t k = 0; k < 3; k++) {
                if (alt && k == L.base) {
                    for (size_t c = 0; c < 3; c++)
                        cr_assert(jac[(c * 3 + k) * n + i] == 0);
                    continue;
                }
                double h = 1e-5, e0 = eta[k];
                eta[k] = e0 + h;
                bh_dirichlet_shares(3, eta, s1, NULL);
                eta[k] = e0 - h;
                bh_dirichlet_shares(3, eta, s2, NULL);
                eta[k] = e0;
                for (size_t c = 0; c < 3; c++)
                    cr_assert(fabs(jac[(c * 3 + k) * n + i] -
                                   (s1[c] - s2[c]) / (2 * h)) < 1e-9,
                              "row %zu d%zu/deta%zu", i, c, k);
            }
        }
        free(sh);
        free(jac);
        bh_fit_free(fit);
        bh_design_free(d0);
    }
    bh_design_free(d);
    bh_frame_free(fr);
}

/* The base changes the parametrisation, not the model: same likelihood. */
Test(dirichlet, base_choice_same_likelihood)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2 | z", NULL);
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.param = BH_DIRICHLET_ALTERNATIVE;
    o.base = 2;
    bh_fit *fit = fit_ok(d, &o, NULL);
    bht_fixture *fx = bht_fixture_read(FX "dir_stats.csv");
    for (size_t r = 0; r < fx->nrow; r++)
        if (strcmp(bht_fixture_str(fx, r, "model"), "alt_phiz") == 0)
            bht_assert_rel(fit->stats.loglik, bht_fixture_num(fx, r, "loglik"), TOL_EST);
    bht_fixture_free(fx);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* The shipped study data: 461 reps, ~15 columns, common parametrisation.
 * Timing is reported, not asserted (machines differ). */
Test(dirichlet, study_model_time)
{
    bh_frame *fr = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_csv_read_path("datasets/reps.csv", NULL, &fr, &err), BH_OK,
                 "%s", err.msg);
    bh_design *d = design(fr, "share_marketing + share_self + share_other ~ "
                              "experience * (prequal1 + tracking1 + lead_volume) + "
                              "performance * (prequal1 + tracking1 + lead_volume) + "
                              "firm", NULL);
    bh_dirichlet_workspace *ws = bh_dirichlet_workspace_alloc(d->n, d->p, 0, 3);
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    bh_fit *fit = fit_ok(d, &o, ws);
    cr_assert(fit->converged);
    bh_fit_free(fit);
    struct timespec t0, t1;
    enum { REPS = 20 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < REPS; r++) {
        fit = fit_ok(d, &o, ws);
        bh_fit_free(fit);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                 (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / REPS;
    cr_log_info("dirichlet: study model (n = %zu, p = %zu, K = 3): %.2f ms per fit",
                d->n, d->p, ms);
    fprintf(stderr, "dirichlet: study model (n = %zu, p = %zu, K = 3): %.2f ms per fit\n",
            d->n, d->p, ms);
    bh_dirichlet_workspace_free(ws);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* The BFGS phase (always, or after Newton trouble from a poor start) ends
 * at R's optimum too. */
Test(dirichlet, bfgs_paths_match_r)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2", "g");
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.bfgs = BH_DIRICHLET_BFGS_ALWAYS;
    bh_fit *fit = fit_ok(d, &o, NULL);
    check_model(fit, "common", 1);
    bh_fit_free(fit);
    /* A start far from the optimum: every coefficient 2. */
    double start[12];
    for (size_t j = 0; j < 12; j++)
        start[j] = 2.0;
    bh_dirichlet_default_options(&o);
    o.start = start;
    fit = fit_ok(d, &o, NULL);
    check_model(fit, "common", 1);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(dirichlet, non_convergence_is_flagged)
{
    bh_frame *fr = frame_from(FX "dir_data.csv");
    bh_design *d = design(fr, "y1 + y2 + y3 ~ x1 * x2", NULL);
    bh_dirichlet_options o;
    bh_dirichlet_default_options(&o);
    o.bfgs = BH_DIRICHLET_BFGS_NEVER;
    o.maxiter = 1;
    bh_fit *fit = fit_ok(d, &o, NULL);
    cr_assert_eq(fit->converged, 0);
    cr_assert_eq(fit->iterations, 1);
    cr_assert(has_warning(fit, "did not converge in 1 iterations"));
    bh_fit_free(fit);
    bh_design_free(d);
    bh_frame_free(fr);
}

/* ---- recycled results (simulations) -------------------------------------- */

/* Repeated fits through one workspace, each reusing the previous result
 * (bh_dirichlet_options.recycle, as simulations do), over designs of
 * different sizes, parametrisations, precision models and BFGS settings:
 * every fit equals a fresh one bit for bit, the result is reused whenever
 * it has the shape, and the R reference models still match R. */
Test(dirichlet, recycled_fits_equal_fresh_fits)
{
    bh_frame *f1 = frame_from(FX "dir_data.csv");
    bh_frame *f2 = frame_from(FX "dir_zero.csv");
    bh_design *da = design(f1, "y1 + y2 + y3 ~ x1 * x2", "g");
    bh_design *dz = design(f1, "y1 + y2 + y3 ~ x1 * x2 | z", "g");
    bh_design *db = design(f2, "y1 + y2 + y3 ~ x1 + x2", NULL);
    struct {
        const bh_design *d;
        bh_dirichlet_param param;
        int squeeze;
        bh_dirichlet_bfgs bfgs;
        const char *model;    /* in dir_coef.csv, or NULL */
        int cluster;
    } seq[] = {
        {da, BH_DIRICHLET_COMMON, 0, BH_DIRICHLET_BFGS_AUTO, "common", 1},
        {da, BH_DIRICHLET_ALTERNATIVE, 0, BH_DIRICHLET_BFGS_AUTO, "alt_phi1", 1},
        {da, BH_DIRICHLET_ALTERNATIVE, 0, BH_DIRICHLET_BFGS_AUTO, "alt_phi1", 1},
        {db, BH_DIRICHLET_COMMON, 1, BH_DIRICHLET_BFGS_AUTO, NULL, 0},
        {da, BH_DIRICHLET_COMMON, 0, BH_DIRICHLET_BFGS_ALWAYS, "common", 1},
        {da, BH_DIRICHLET_COMMON, 0, BH_DIRICHLET_BFGS_ALWAYS, "common", 1},
        {dz, BH_DIRICHLET_ALTERNATIVE, 0, BH_DIRICHLET_BFGS_AUTO, "alt_phiz", 1},
        {db, BH_DIRICHLET_COMMON, 1, BH_DIRICHLET_BFGS_AUTO, NULL, 0},
        {da, BH_DIRICHLET_COMMON, 0, BH_DIRICHLET_BFGS_AUTO, "common", 1},
    };
    size_t nseq = sizeof seq / sizeof *seq, reused = 0;
    bh_dirichlet_workspace *ws = bh_dirichlet_workspace_alloc(400, 4, 2, 3);
    cr_assert_not_null(ws);
    bh_fit *prev = NULL;
    for (size_t k = 0; k < nseq; k++) {
        bh_dirichlet_options o;
        bh_dirichlet_default_options(&o);
        o.param = seq[k].param;
        o.squeeze = seq[k].squeeze;
        o.bfgs = seq[k].bfgs;
        bh_fit *fresh = fit_ok(seq[k].d, &o, NULL);
        o.recycle = prev;
        size_t pp = prev ? prev->p : 0, pb = prev ? prev->nblocks : 0;
        bh_fit *f = fit_ok(seq[k].d, &o, ws);
        if (prev && pp == f->p && pb == f->nblocks) {
            cr_expect_eq(f, prev, "step %zu: the previous result is reused", k);
            reused++;
        }
        if (prev && f != prev)
            bh_fit_free(prev);
        char what[32];
        snprintf(what, sizeof what, "step %zu", k);
        /* the caller names a recycled result (bh_model_fit does) */
        cr_assert_eq(bh_fit_set_string(&f->formula, fresh->formula), BH_OK);
        bht_assert_same_fit(f, fresh, what);
        if (seq[k].model)
            check_model(f, seq[k].model, seq[k].cluster);
        bh_fit_free(fresh);
        prev = f;
    }
    cr_expect_geq(reused, 3);
    bh_fit_free(prev);
    bh_dirichlet_workspace_free(ws);
    bh_design_free(da);
    bh_design_free(dz);
    bh_design_free(db);
    bh_frame_free(f1);
    bh_frame_free(f2);
}
