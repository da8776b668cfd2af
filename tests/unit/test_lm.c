/* test_lm.c - least squares against NIST StRD certified values and R.
 *
 * Designs are built by hand (no formula layer): tests/fixtures/nist/ holds
 * the NIST data and certified values, tests/fixtures/lm/ the R references
 * written by tests/fixtures/r/lm_sandwich.R (tool, version and command are
 * in each fixture's header).
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






/* ---- NIST StRD ------------------------------------------------------- */

/* Load tests/fixtures/nist/<name>.csv into a design: polynomial of the given
 * degree in x (degree 0: use every x column as is), with or without an
 * intercept. */
static lmt_design *nist_design(const char *name, int intercept, int degree)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/nist/%s.csv", name);
    bht_fixture *fx = bht_fixture_read(path);
    size_t n = fx->nrow;
    size_t nx = degree > 0 ? (size_t)degree : fx->ncol - 1;
    size_t p = nx + (intercept ? 1 : 0);
    lmt_design *t = lmt_new(n, p);
    size_t j0 = 0;
    if (intercept) {
        for (size_t i = 0; i < n; i++)
            t->d.x[i] = 1.0;
        lmt_name(t, 0, "(Intercept)");
        j0 = 1;
    }
    for (size_t i = 0; i < n; i++) {
        t->d.y[i] = bht_fixture_num(fx, i, "y");
        if (degree > 0) {
            /* Powers by repeated multiplication in double.  The design's
             * rounding bounds what any solver can reach on Filip: the exact
             * (rational arithmetic) least-squares solution of this very
             * double design agrees with NIST's to LRE 7.90, which bh_lm_fit
             * matches; correctly rounded powers give a different bound. */
            double x = bht_fixture_num(fx, i, "x"), pw = 1;
            for (size_t k = 0; k < nx; k++) {
                pw *= x;
                t->d.x[(j0 + k) * n + i] = (double)pw;
            }
        } else {
            for (size_t k = 0; k < nx; k++)
                t->d.x[(j0 + k) * n + i] = atof(fx->cell[i][k + 1]);
        }
    }
    for (size_t k = 0; k < nx; k++) {
        char nm[32];
        if (degree > 0 && k > 0)
            snprintf(nm, sizeof nm, "x^%zu", k + 1);
        else if (degree > 0)
            snprintf(nm, sizeof nm, "x");
        else
            snprintf(nm, sizeof nm, "%s", fx->header[k + 1]);
        lmt_name(t, j0 + k, nm);
    }
    bht_fixture_free(fx);
    return t;
}

/* Fit a NIST dataset and return the minimum LRE over estimates, standard
 * errors, residual SD and R^2 (each asserted >= min_lre). */
static double nist_check(const char *name, double min_lre)
{
    bht_fixture *sum = bht_fixture_read("tests/fixtures/nist/certified_summary.csv");
    bht_fixture *cert = bht_fixture_read("tests/fixtures/nist/certified.csv");
    size_t row = SIZE_MAX;
    for (size_t i = 0; i < sum->nrow; i++)
        if (strcmp(bht_fixture_str(sum, i, "dataset"), name) == 0)
            row = i;
    cr_assert_neq(row, SIZE_MAX, "no certified summary for %s", name);
    int icpt = (int)bht_fixture_num(sum, row, "intercept");
    int deg = (int)bht_fixture_num(sum, row, "degree");
    lmt_design *t = nist_design(name, icpt, deg);
    bh_fit *fit = lmt_fit(t, 0);
    cr_assert_eq(fit->rank, t->d.p, "%s: rank %zu of %zu", name, fit->rank, t->d.p);
    bh_error err;
    cr_assert_eq(bh_fit_summarize(fit, 0.95, &err), BH_OK);
    double lo = 99;
    size_t nterm = 0;
    for (size_t i = 0; i < cert->nrow; i++) {
        if (strcmp(bht_fixture_str(cert, i, "dataset"), name) != 0)
            continue;
        const char *term = bht_fixture_str(cert, i, "term");
        size_t j = 0;
        while (j < fit->p && strcmp(fit->term[j], term) != 0)
            j++;
        cr_assert_lt(j, fit->p, "%s: no term %s in the fit", name, term);
        nterm++;
        double le = bht_lre(fit->beta[j], bht_fixture_num(cert, i, "estimate"));
        double ls = bht_lre(fit->se[j], bht_fixture_num(cert, i, "std_error"));
        cr_log_info("%s %s: LRE estimate %.2f, std. error %.2f", name, term, le, ls);
        cr_expect_geq(le, min_lre, "%s %s estimate %.17g: LRE %.2f", name, term,
                      fit->beta[j], le);
        cr_expect_geq(ls, min_lre, "%s %s std. error %.17g: LRE %.2f", name, term,
                      fit->se[j], ls);
        lo = fmin(lo, fmin(le, ls));
    }
    cr_assert_eq(nterm, t->d.p, "%s: %zu certified terms for %zu columns", name,
                 nterm, t->d.p);
    double lsd = bht_lre(fit->stats.sigma, bht_fixture_num(sum, row, "residual_sd"));
    double lr2 = bht_lre(fit->stats.r2, bht_fixture_num(sum, row, "r_squared"));
    cr_log_info("%s: LRE residual SD %.2f, R^2 %.2f", name, lsd, lr2);
    cr_expect_geq(lsd, min_lre, "%s residual SD %.17g: LRE %.2f", name, fit->stats.sigma, lsd);
    cr_expect_geq(lr2, min_lre, "%s R^2 %.17g: LRE %.2f", name, fit->stats.r2, lr2);
    lo = fmin(lo, fmin(lsd, lr2));
    cr_log_info("%s: minimum LRE %.2f", name, lo);
    bh_fit_free(fit);
    lmt_free(t);
    bht_fixture_free(sum);
    bht_fixture_free(cert);
    return lo;
}

Test(lm_nist, norris) { nist_check("norris", 7); }
Test(lm_nist, pontius) { nist_check("pontius", 7); }
Test(lm_nist, noint1) { nist_check("noint1", 7); }
Test(lm_nist, noint2) { nist_check("noint2", 7); }
Test(lm_nist, longley) { nist_check("longley", 7); }
Test(lm_nist, wampler1) { nist_check("wampler1", 7); }
Test(lm_nist, wampler2) { nist_check("wampler2", 7); }
Test(lm_nist, wampler3) { nist_check("wampler3", 7); }
Test(lm_nist, wampler4) { nist_check("wampler4", 7); }
Test(lm_nist, wampler5) { nist_check("wampler5", 7); }
Test(lm_nist, filip) { nist_check("filip", 7); }
/* The default tolerance keeps Filip full rank (NIST certifies all eleven
 * coefficients); R's 1e-7 drops x^10, as R's lm does. */
Test(lm_nist, filip_rank_tolerance)
{
    lmt_design *t = nist_design("filip", 1, 10);
    bh_fit *f = lmt_fit(t, 0);
    cr_expect_eq(f->rank, 11);
    bh_fit_free(f);
    f = lmt_fit(t, 1e-7);
    cr_expect_eq(f->rank, 10);
    cr_expect(f->aliased[10] && isnan(f->beta[10]));
    cr_expect_eq(f->nwarnings, 1);
    cr_expect_str_eq(f->warnings[0], "not estimable (collinear): x^10");
    bh_fit_free(f);
    lmt_free(t);
}

/* ---- R reference cases (tests/fixtures/lm, from lm_sandwich.R) -------- */


static size_t rcase_term(const bh_fit *fit, const char *term)
{
    for (size_t j = 0; j < fit->p; j++)
        if (strcmp(fit->term[j], term) == 0)
            return j;
    cr_assert_fail("fit has no term %s", term);
    return 0;
}

/* Coefficients, aliasing and fit statistics of a fit of case `name`
 * against R (lm_coef.csv, lm_stats.csv), relative tolerance 1e-8 (R's own
 * QR is double). */
static void rcase_compare(const char *name, const bh_fit *fit)
{
    bht_fixture *co = bht_fixture_read("tests/fixtures/lm/lm_coef.csv");
    size_t nterm = 0;
    for (size_t i = 0; i < co->nrow; i++) {
        if (strcmp(bht_fixture_str(co, i, "case"), name) != 0)
            continue;
        nterm++;
        size_t j = rcase_term(fit, bht_fixture_str(co, i, "term"));
        double want = bht_fixture_num(co, i, "estimate");
        cr_expect_eq(fit->aliased[j], isnan(want) ? 1 : 0, "%s %s aliased", name, fit->term[j]);
        bht_assert_rel(fit->beta[j], want, 1e-8, "(%s %s)", name, fit->term[j]);
    }
    cr_assert_eq(nterm, fit->p);
    bht_fixture_free(co);

    bht_fixture *sf = bht_fixture_read("tests/fixtures/lm/lm_stats.csv");
    for (size_t i = 0; i < sf->nrow; i++) {
        if (strcmp(bht_fixture_str(sf, i, "case"), name) != 0)
            continue;
        const char *k = bht_fixture_str(sf, i, "stat");
        double want = bht_fixture_num(sf, i, "value"), got = NAN;
        const bh_fit_stats *S = &fit->stats;
        if (!strcmp(k, "r2")) got = S->r2;
        else if (!strcmp(k, "adj_r2")) got = S->adj_r2;
        else if (!strcmp(k, "sigma")) got = S->sigma;
        else if (!strcmp(k, "fstat")) got = S->fstat;
        else if (!strcmp(k, "f_df1")) got = S->f_df1;
        else if (!strcmp(k, "f_df2")) got = S->f_df2;
        else if (!strcmp(k, "f_pvalue")) got = S->f_pvalue;
        else if (!strcmp(k, "loglik")) got = S->loglik;
        else if (!strcmp(k, "aic")) got = S->aic;
        else if (!strcmp(k, "bic")) got = S->bic;
        else if (!strcmp(k, "df_resid")) got = S->df_resid;
        else if (!strcmp(k, "deviance")) got = S->deviance;
        else if (!strcmp(k, "nobs")) got = (double)fit->nobs;
        else if (!strcmp(k, "rank")) got = (double)fit->rank;
        else
            cr_assert_fail("unknown statistic %s", k);
        bht_assert_rel(got, want, 1e-8, "(%s %s)", name, k);
    }
    bht_fixture_free(sf);
}

static void rcase_check(const char *name, double tol)
{
    lmt_design *t = rcase_design(name);
    bh_fit *fit = lmt_fit(t, tol);
    rcase_compare(name, fit);
    bh_fit_free(fit);
    lmt_free(t);
}

Test(lm_r, mtcars) { rcase_check("mtcars", 0); }
Test(lm_r, mtcars_no_intercept) { rcase_check("mtcars_noint", 0); }
Test(lm_r, generated) { rcase_check("gen", 0); }
Test(lm_r, weighted) { rcase_check("gen_w", 0); }
Test(lm_r, zero_weights) { rcase_check("gen_w0", 0); }
Test(lm_r, frequency_weights) { rcase_check("gen_freq", 0); }
Test(lm_r, collinear_default_tol) { rcase_check("gen_alias", 0); }
Test(lm_r, collinear_r_tol) { rcase_check("gen_alias", 1e-7); }

/* x3 = x1 + x2: aliased like R (the later column), named in the warning,
 * NAN in the covariance, rank 3; the classical vcov of the others is that
 * of the fit without x3 (R: vcov(fit)[1:3, 1:3]). */
Test(lm_r, collinear_reporting)
{
    lmt_design *t = rcase_design("gen_alias");
    bh_fit *fit = lmt_fit(t, 0);
    cr_assert_eq(fit->rank, 3);
    cr_expect(fit->aliased[3]);
    cr_assert_eq(fit->nwarnings, 1);
    cr_expect_str_eq(fit->warnings[0], "not estimable (collinear): x3");
    for (size_t k = 0; k < 4; k++) {
        cr_expect(isnan(fit->vcov[3 * 4 + k]) && isnan(fit->vcov[k * 4 + 3]));
        cr_expect(isnan(fit->bread[3 * 4 + k]));
    }
    bh_error err;
    cr_assert_eq(bh_fit_summarize(fit, 0.95, &err), BH_OK);
    cr_expect(isnan(fit->se[3]) && isnan(fit->p_value[3]) && isnan(fit->conf_low[3]));
    cr_expect(fit->se[1] > 0);
    bh_fit_free(fit);
    lmt_free(t);
}

/* A duplicated column is aliased at the default tolerance too. */
Test(lm_r, duplicated_column)
{
    lmt_design *t = lmt_new(5, 3);
    double xv[] = {1, 2, 3, 4, 6}, yv[] = {1.5, 1.9, 3.2, 4.1, 5.8};
    for (size_t i = 0; i < 5; i++) {
        t->d.x[i] = 1;
        t->d.x[5 + i] = t->d.x[10 + i] = xv[i];
        t->d.y[i] = yv[i];
    }
    lmt_name(t, 0, "(Intercept)");
    lmt_name(t, 1, "a");
    lmt_name(t, 2, "a:b");
    bh_fit *fit = lmt_fit(t, 0);
    cr_expect_eq(fit->rank, 2);
    cr_expect(fit->aliased[2] && !fit->aliased[1]);
    cr_expect_str_eq(fit->warnings[0], "not estimable (collinear): a:b");
    bh_fit_free(fit);
    lmt_free(t);
}

/* ---- errors and workspace -------------------------------------------- */

Test(lm_errors, nonfinite_and_weights)
{
    lmt_design *t = rcase_design("gen");
    bh_lm_options opt;
    bh_lm_default_options(&opt);
    opt.colnames = (const char *const *)t->names;
    bh_fit *fit = NULL;
    bh_error err;
    t->d.x[1 * t->d.n + 4] = NAN;
    cr_expect_eq(bh_lm_fit(&t->d, &opt, NULL, &fit, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "x1") && strstr(err.msg, "row 5"), "%s", err.msg);
    cr_expect_null(fit);
    t->d.x[1 * t->d.n + 4] = 1;
    t->d.y[6] = INFINITY;
    cr_expect_eq(bh_lm_fit(&t->d, &opt, NULL, &fit, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "response") && strstr(err.msg, "row 7"), "%s", err.msg);
    t->d.y[6] = 1;
    t->d.w = calloc(t->d.n, sizeof(double));
    for (size_t i = 0; i < t->d.n; i++)
        t->d.w[i] = 1;
    t->d.w[2] = -1;
    cr_expect_eq(bh_lm_fit(&t->d, &opt, NULL, &fit, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "weight") && strstr(err.msg, "row 3"), "%s", err.msg);
    /* Only three positive weights for three coefficients: no residual df. */
    for (size_t i = 0; i < t->d.n; i++)
        t->d.w[i] = i < 3 ? 1 : 0;
    cr_expect_eq(bh_lm_fit(&t->d, &opt, NULL, &fit, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "degrees of freedom"), "%s", err.msg);
    opt.response = 1;
    cr_expect_eq(bh_lm_fit(&t->d, &opt, NULL, &fit, &err), BH_EUSAGE);
    cr_expect_null(fit);
    lmt_free(t);
}

/* n <= rank (exact fit, no residual df) is a data error. */
Test(lm_errors, saturated)
{
    lmt_design *t = lmt_new(2, 2);
    t->d.x[0] = t->d.x[1] = 1;
    t->d.x[2] = 1;
    t->d.x[3] = 2;
    t->d.y[0] = 1;
    t->d.y[1] = 3;
    bh_fit *fit = NULL;
    bh_error err;
    cr_expect_eq(bh_lm_fit(&t->d, NULL, NULL, &fit, &err), BH_EDATA);
    cr_expect_null(fit);
    lmt_free(t);
}

/* A workspace serves repeated fits of that size or smaller, with the same
 * results as a fresh one; a too-small workspace is refused. */
Test(lm_errors, workspace_reuse)
{
    lmt_design *a = rcase_design("gen_w"), *b = rcase_design("mtcars");
    bh_lm_workspace *ws = bh_lm_workspace_alloc(60, 4);
    bh_lm_options opt;
    bh_lm_default_options(&opt);
    bh_fit *f1 = NULL, *f2 = NULL, *f3 = NULL;
    bh_error err;
    cr_assert_eq(bh_lm_fit(&a->d, &opt, ws, &f1, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_lm_fit(&b->d, &opt, ws, &f2, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_lm_fit(&a->d, &opt, ws, &f3, &err), BH_OK, "%s", err.msg);
    for (size_t j = 0; j < f1->p; j++)
        cr_expect_eq(f1->beta[j], f3->beta[j]);
    cr_expect_str_eq(f2->term[1], "x2"); /* no names given: x1.. */
    bh_lm_workspace *small = bh_lm_workspace_alloc(10, 4);
    bh_fit *f4 = NULL;
    cr_expect_eq(bh_lm_fit(&a->d, &opt, small, &f4, &err), BH_EUSAGE);
    bh_lm_workspace_free(small);
    bh_fit_free(f1);
    bh_fit_free(f2);
    bh_fit_free(f3);
    bh_lm_workspace_free(ws);
    lmt_free(a);
    lmt_free(b);
}

/* ---- recycled results (simulations) ------------------------------------ */

/* Repeated fits through one workspace, each reusing the previous result
 * (bh_lm_options.recycle, as simulations do), over designs of different
 * sizes, weights, ranks and both paths (NIST Longley and the collinear case
 * take the extended one): every fit equals a fresh one bit for bit, the
 * result is reused whenever it has the coefficients, and the R reference
 * cases still match R. */
Test(lm_recycle, recycled_fits_equal_fresh_fits)
{
    const char *cases[] = {"gen",    "gen",       "mtcars",  "mtcars",       "gen_w",
                           "gen_w0", "gen_alias", "longley", "longley",      "gen_freq",
                           "gen",    "norris",    "norris",  "mtcars_noint", "gen_alias"};
    enum { NC = sizeof cases / sizeof *cases };
    lmt_design *t[NC];
    size_t nmax = 0, pmax = 0;
    for (size_t k = 0; k < NC; k++) {
        int nist = !strcmp(cases[k], "longley") || !strcmp(cases[k], "norris");
        t[k] = nist ? nist_design(cases[k], 1, !strcmp(cases[k], "norris") ? 1 : 0)
                    : rcase_design(cases[k]);
        nmax = t[k]->d.n > nmax ? t[k]->d.n : nmax;
        pmax = t[k]->d.p > pmax ? t[k]->d.p : pmax;
    }
    bh_lm_workspace *ws = bh_lm_workspace_alloc(nmax, pmax);
    cr_assert_not_null(ws);
    bh_fit *prev = NULL;
    size_t reused = 0;
    for (size_t k = 0; k < NC; k++) {
        bh_lm_options opt;
        bh_lm_default_options(&opt);
        opt.colnames = (const char *const *)t[k]->names;
        opt.recycle = prev;
        size_t prev_p = prev ? prev->p : 0;
        bh_fit *f = NULL, *fresh = NULL;
        bh_error err;
        cr_assert_eq(bh_lm_fit(&t[k]->d, &opt, ws, &f, &err), BH_OK, "%s: %s", cases[k],
                     err.msg);
        if (prev && prev_p == f->p) {
            cr_expect_eq(f, prev, "%s: the previous result is reused", cases[k]);
            reused++;
        }
        if (prev && f != prev)
            bh_fit_free(prev);
        opt.recycle = NULL;
        cr_assert_eq(bh_lm_fit(&t[k]->d, &opt, NULL, &fresh, &err), BH_OK, "%s", err.msg);
        /* the caller names a recycled result (bh_model_fit does) */
        cr_assert_eq(bh_fit_set_string(&f->formula, fresh->formula), BH_OK);
        bht_assert_same_fit(f, fresh, cases[k]);
        if (!strcmp(cases[k], "gen_alias") || !strcmp(cases[k], "longley"))
            cr_expect_eq(bh_lm_workspace_path(ws), BH_LM_PATH_EXTENDED, "%s", cases[k]);
        if (strcmp(cases[k], "longley") && strcmp(cases[k], "norris"))
            rcase_compare(cases[k], f);
        bh_fit_free(fresh);
        prev = f;
    }
    cr_expect_geq(reused, 4);
    bh_fit_free(prev);
    bh_lm_workspace_free(ws);
    for (size_t k = 0; k < NC; k++)
        lmt_free(t[k]);
}

/* An error leaves the recycled result with the caller, who frees it. */
Test(lm_recycle, error_leaves_recycled_fit_to_caller)
{
    lmt_design *t = rcase_design("gen");
    bh_fit *prev = lmt_fit(t, 0), *f = NULL;
    bh_lm_options opt;
    bh_lm_default_options(&opt);
    opt.colnames = (const char *const *)t->names;
    opt.recycle = prev;
    t->d.y[3] = NAN;
    bh_error err;
    cr_expect_eq(bh_lm_fit(&t->d, &opt, NULL, &f, &err), BH_EDATA);
    cr_expect_null(f);
    bh_fit_free(prev);   /* ASan: still the caller's, freed once */
    lmt_free(t);
}
