/* test_boot.c - wild cluster restricted bootstrap against an independent R
 * implementation.
 *
 * References: tests/fixtures/boot/wcr_pvalues.csv and wcr_ci.csv, written
 * by tests/fixtures/r/boot_wcr.R (R 4.2.2, sandwich 3.0.2) on the data
 * tests/fixtures/boot/wcr_data.csv.  The R code refits every bootstrap
 * sample by QR and enumerates ALL draws (2^G Rademacher, 6^4 Webb), so its
 * p-values are exact rationals count/ndraws: the C counts must be equal,
 * not close.  Interval endpoints are jumps of a step function located by
 * the same grid + bisection in both (to 1e-10 se), compared at 1e-8 se.
 * Random draws (B below the number of distinct draws) are checked for
 * identical results across thread counts and for agreement with the
 * enumerated p-value within Monte Carlo error.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/boot.h"
#include "blackhole/lm.h"
#include "blackhole/vcov.h"

typedef struct {
    bh_design d;
    bh_grouping grp;
    char *names[3];
} bt_design;

/* y ~ 1 + x1 + x2 on firms 1..G of wcr_data.csv (weights w if asked). */
static bt_design *bt_new(size_t G, int weighted)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/wcr_data.csv");
    size_t n = 0;
    for (size_t i = 0; i < fx->nrow; i++)
        n += bht_fixture_num(fx, i, "firm") <= (double)G;
    bt_design *t = calloc(1, sizeof *t);
    t->d.n = n;
    t->d.p = 3;
    t->d.m = 1;
    t->d.x = calloc(n * 3, sizeof(double));
    t->d.y = calloc(n, sizeof(double));
    t->d.w = weighted ? calloc(n, sizeof(double)) : NULL;
    t->d.weight_kind = BH_WEIGHTS_ANALYTIC;
    t->grp.code = calloc(n, sizeof(size_t));
    t->grp.ngroups = G;
    t->grp.name = strdup("firm");
    t->d.cluster = &t->grp;
    size_t k = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        double f = bht_fixture_num(fx, i, "firm");
        if (f > (double)G)
            continue;
        t->grp.code[k] = (size_t)f - 1;
        t->d.x[k] = 1.0;
        t->d.x[n + k] = bht_fixture_num(fx, i, "x1");
        t->d.x[2 * n + k] = bht_fixture_num(fx, i, "x2");
        t->d.y[k] = bht_fixture_num(fx, i, "y");
        if (weighted)
            t->d.w[k] = bht_fixture_num(fx, i, "w");
        k++;
    }
    t->names[0] = "(Intercept)";
    t->names[1] = "x1";
    t->names[2] = "x2";
    bht_fixture_free(fx);
    return t;
}

static void bt_free(bt_design *t)
{
    free(t->d.x);
    free(t->d.y);
    free(t->d.w);
    free(t->grp.code);
    free(t->grp.name);
    free(t);
}

static bh_fit *bt_fit(bt_design *t)
{
    bh_lm_options opt;
    bh_lm_default_options(&opt);
    opt.colnames = (const char *const *)t->names;
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_lm_fit(&t->d, &opt, NULL, &fit, &err), BH_OK, "%s", err.msg);
    return fit;
}

static bh_boot_result *bt_boot(const bh_fit *fit, bh_boot_weights w,
                               size_t reps, size_t threads, double level,
                               const double *null)
{
    bh_boot_options o;
    bh_boot_default_options(&o);
    o.weights = w;
    o.reps = reps;
    o.threads = threads;
    o.level = level;
    o.null = null;
    o.seed = 20240611;
    bh_boot_result *res = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_boot_wild(fit, &o, &res, &err), BH_OK, "%s", err.msg);
    return res;
}

static size_t term_index(const char *term)
{
    return strcmp(term, "x1") == 0 ? 1 : strcmp(term, "x2") == 0 ? 2 : 0;
}

static size_t case_G(const char *c)
{
    const char *g = strstr(c, "_G");
    return (size_t)atoi(g + 2);
}

/* Every row of wcr_pvalues.csv: equal counts, equal p-values. */
Test(boot_wcr, enumerated_pvalues_match_r_exactly)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/wcr_pvalues.csv");
    cr_assert_gt(fx->nrow, 20);
    for (size_t row = 0; row < fx->nrow; row++) {
        const char *c = bht_fixture_str(fx, row, "case");
        size_t G = case_G(c);
        int webb = strcmp(bht_fixture_str(fx, row, "weights"), "webb") == 0;
        int weighted = bht_fixture_num(fx, row, "weighted") != 0;
        size_t j = term_index(bht_fixture_str(fx, row, "term"));
        double null[3] = {0, 0, 0};
        null[j] = bht_fixture_num(fx, row, "null");
        bt_design *t = bt_new(G, weighted);
        bh_fit *fit = bt_fit(t);
        /* More requested than distinct draws: full enumeration. */
        bh_boot_result *r = bt_boot(fit, webb ? BH_BOOT_WEBB : BH_BOOT_RADEMACHER,
                                    9999, 2, 0.95, null);
        size_t nd = (size_t)bht_fixture_num(fx, row, "ndraws");
        cr_assert(r->enumerated, "%s", c);
        cr_assert_eq(r->reps, nd, "%s: %zu draws", c, r->reps);
        cr_assert_eq(r->nclusters, G);
        cr_assert_eq(r->count[j], (size_t)bht_fixture_num(fx, row, "count"),
                     "%s %s null %g: count %zu", c, t->names[j], null[j],
                     r->count[j]);
        cr_assert_eq(r->p_value[j], bht_fixture_num(fx, row, "p"), "%s", c);
        cr_assert_eq(r->p_value_strict[j], bht_fixture_num(fx, row, "p_strict"),
                     "%s", c);
        bht_assert_rel(r->statistic[j], bht_fixture_num(fx, row, "t"), 1e-9,
                       "(%s %s)", c, t->names[j]);
        bh_boot_result_free(r);
        bh_fit_free(fit);
        bt_free(t);
    }
    bht_fixture_free(fx);
}

/* The original statistic is the fit's cluster-robust (CR1) t. */
Test(boot_wcr, statistic_is_cluster_t)
{
    bt_design *t = bt_new(6, 1);
    bh_fit *fit = bt_fit(t);
    bh_vcov_spec spec;
    bh_error err;
    cr_assert_eq(bh_vcov_parse("cluster:firm", &spec, &err), BH_OK);
    cr_assert_eq(bh_vcov_compute(fit, &spec, &err), BH_OK, "%s", err.msg);
    bh_boot_result *r = bt_boot(fit, BH_BOOT_RADEMACHER, 64, 1, 0.95, NULL);
    for (size_t j = 0; j < 3; j++)
        bht_assert_rel(r->statistic[j], fit->beta[j] / sqrt(fit->vcov[j * 3 + j]),
                       1e-10, "(%s)", t->names[j]);
    bh_boot_result_free(r);
    bh_fit_free(fit);
    bt_free(t);
}

Test(boot_wcr, intervals_match_r)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/wcr_ci.csv");
    cr_assert_gt(fx->nrow, 5);
    for (size_t row = 0; row < fx->nrow; row++) {
        const char *c = bht_fixture_str(fx, row, "case");
        size_t G = case_G(c);
        int webb = strcmp(bht_fixture_str(fx, row, "weights"), "webb") == 0;
        size_t j = term_index(bht_fixture_str(fx, row, "term"));
        double level = bht_fixture_num(fx, row, "level");
        double se = bht_fixture_num(fx, row, "se");
        bt_design *t = bt_new(G, bht_fixture_num(fx, row, "weighted") != 0);
        bh_fit *fit = bt_fit(t);
        bh_boot_result *r = bt_boot(fit, webb ? BH_BOOT_WEBB : BH_BOOT_RADEMACHER,
                                    9999, 1, level, NULL);
        cr_assert(r->has_ci);
        double lo = bht_fixture_num(fx, row, "low");
        double hi = bht_fixture_num(fx, row, "high");
        bht_assert_rel(r->estimate[j], bht_fixture_num(fx, row, "estimate"), 1e-10,
                       "(%s)", c);
        if (isinf(lo))
            cr_assert(isinf(r->conf_low[j]) && r->conf_low[j] < 0, "%s", c);
        else
            cr_assert(fabs(r->conf_low[j] - lo) <= 1e-8 * se,
                      "%s %s level %g: low %.17g want %.17g", c, t->names[j],
                      level, r->conf_low[j], lo);
        if (isinf(hi))
            cr_assert(isinf(r->conf_high[j]) && r->conf_high[j] > 0, "%s", c);
        else
            cr_assert(fabs(r->conf_high[j] - hi) <= 1e-8 * se,
                      "%s %s level %g: high %.17g want %.17g", c, t->names[j],
                      level, r->conf_high[j], hi);
        bh_boot_result_free(r);
        bh_fit_free(fit);
        bt_free(t);
    }
    bht_fixture_free(fx);
}

static int has_warning(const bh_boot_result *r, const char *needle)
{
    for (size_t k = 0; k < r->nwarnings; k++)
        if (strstr(r->warnings[k], needle))
            return 1;
    return 0;
}

Test(boot_wcr, few_clusters_warnings)
{
    bt_design *t = bt_new(4, 0);
    bh_fit *fit = bt_fit(t);
    bh_boot_result *r = bt_boot(fit, BH_BOOT_RADEMACHER, 999, 1, 0.95, NULL);
    cr_assert(has_warning(r, "only 4 clusters: Rademacher weights give at most "
                             "16 distinct bootstrap draws"));
    cr_assert(has_warning(r, "Webb weights recommended"));
    cr_assert(has_warning(r, "all 16 distinct rademacher draws enumerated"));
    cr_assert(has_warning(r, "unbounded"));
    /* Rademacher, G = 4: p >= 2/16 for every null, so no finite interval. */
    cr_assert(isinf(r->conf_low[1]) && isinf(r->conf_high[1]));
    bh_boot_result_free(r);
    r = bt_boot(fit, BH_BOOT_WEBB, 999, 1, 0.95, NULL);
    cr_assert(!r->enumerated);
    cr_assert_eq(r->reps, 999);
    cr_assert(has_warning(r, "only 4 clusters"));
    cr_assert(!has_warning(r, "enumerated"));
    bh_boot_result_free(r);
    bh_fit_free(fit);
    bt_free(t);
}

static void same_results(const bh_boot_result *a, const bh_boot_result *b)
{
    for (size_t j = 0; j < a->p; j++) {
        cr_assert_eq(a->count[j], b->count[j]);
        cr_assert(a->p_value[j] == b->p_value[j]);
        cr_assert(a->p_value_strict[j] == b->p_value_strict[j]);
        cr_assert(a->conf_low[j] == b->conf_low[j], "%.17g %.17g",
                  a->conf_low[j], b->conf_low[j]);
        cr_assert(a->conf_high[j] == b->conf_high[j]);
    }
}

/* Random draws: the same numbers for 1, 2, 4 and 7 threads. */
Test(boot_wcr, random_draws_independent_of_threads)
{
    bt_design *t = bt_new(8, 0);
    bh_fit *fit = bt_fit(t);
    bh_boot_result *r1 = bt_boot(fit, BH_BOOT_WEBB, 1999, 1, 0.95, NULL);
    cr_assert(!r1->enumerated);
    cr_assert_eq(r1->threads, 1);
    size_t th[] = {2, 4, 7};
    for (size_t k = 0; k < 3; k++) {
        bh_boot_result *rk = bt_boot(fit, BH_BOOT_WEBB, 1999, th[k], 0.95, NULL);
        cr_assert_eq(rk->threads, th[k]);
        same_results(r1, rk);
        bh_boot_result_free(rk);
    }
    bh_boot_result_free(r1);
    bh_fit_free(fit);
    bt_free(t);
}

/* Random draws estimate the enumerated p-value: within 4 Monte Carlo
 * standard errors sqrt(p (1 - p) / B) of the exact one from R. */
Test(boot_wcr, random_draws_within_monte_carlo_error)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/wcr_pvalues.csv");
    size_t checked = 0;
    for (size_t row = 0; row < fx->nrow; row++) {
        const char *c = bht_fixture_str(fx, row, "case");
        if (strcmp(c, "webb_G4") != 0 && strcmp(c, "rad_G8") != 0)
            continue;
        int webb = c[0] == 'w';
        size_t j = term_index(bht_fixture_str(fx, row, "term"));
        double null[3] = {0, 0, 0};
        null[j] = bht_fixture_num(fx, row, "null");
        bt_design *t = bt_new(case_G(c), 0);
        bh_fit *fit = bt_fit(t);
        size_t B = webb ? 999 : 199; /* below 6^4 = 1296 and 2^8 = 256 */
        bh_boot_result *r = bt_boot(fit, webb ? BH_BOOT_WEBB : BH_BOOT_RADEMACHER,
                                    B, 3, 0.95, null);
        cr_assert(!r->enumerated);
        double p = bht_fixture_num(fx, row, "p");
        double mcse = sqrt(p * (1 - p) / (double)B);
        cr_assert(fabs(r->p_value[j] - p) <= 4 * mcse + 1.0 / (double)B,
                  "%s %s: random %g exact %g (mcse %g)", c, t->names[j],
                  r->p_value[j], p, mcse);
        checked++;
        bh_boot_result_free(r);
        bh_fit_free(fit);
        bt_free(t);
    }
    cr_assert_eq(checked, 8);
    bht_fixture_free(fx);
}

/* Another seed gives other draws (the counts differ somewhere). */
Test(boot_wcr, seed_changes_draws)
{
    bt_design *t = bt_new(8, 0);
    bh_fit *fit = bt_fit(t);
    bh_boot_options o;
    bh_boot_default_options(&o);
    o.weights = BH_BOOT_WEBB;
    o.reps = 999;
    o.ci = 0;
    bh_boot_result *a = NULL, *b = NULL;
    bh_error err;
    cr_assert_eq(bh_boot_wild(fit, &o, &a, &err), BH_OK);
    o.seed = 2;
    cr_assert_eq(bh_boot_wild(fit, &o, &b, &err), BH_OK);
    cr_assert(a->count[0] != b->count[0] || a->count[1] != b->count[1] ||
              a->count[2] != b->count[2]);
    cr_assert(!a->has_ci && isnan(a->conf_low[1]));
    bh_boot_result_free(a);
    bh_boot_result_free(b);
    bh_fit_free(fit);
    bt_free(t);
}

Test(boot_wcr, selected_coefficients_only)
{
    bt_design *t = bt_new(5, 0);
    bh_fit *fit = bt_fit(t);
    bh_boot_options o;
    bh_boot_default_options(&o);
    unsigned char which[3] = {0, 1, 0};
    o.test = which;
    bh_boot_result *r = NULL;
    bh_error err;
    cr_assert_eq(bh_boot_wild(fit, &o, &r, &err), BH_OK, "%s", err.msg);
    cr_assert(!r->tested[0] && r->tested[1] && !r->tested[2]);
    cr_assert(isnan(r->p_value[0]) && isnan(r->p_value[2]));
    cr_assert(r->p_value[1] > 0 && r->p_value[1] <= 1);
    bh_boot_result_free(r);
    bh_fit_free(fit);
    bt_free(t);
}

Test(boot_wcr, errors)
{
    bt_design *t = bt_new(5, 0);
    bh_fit *fit = bt_fit(t);
    bh_boot_options o;
    bh_boot_result *r = NULL;
    bh_error err;

    bh_boot_default_options(&o);
    o.reps = 0;
    cr_assert_eq(bh_boot_wild(fit, &o, &r, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "reps"), "%s", err.msg);
    cr_assert_null(r);

    bh_boot_default_options(&o);
    o.level = 1.5;
    cr_assert_eq(bh_boot_wild(fit, &o, &r, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "1.5"), "%s", err.msg);

    bh_boot_default_options(&o);
    double null[3] = {0, NAN, 0};
    o.null = null;
    cr_assert_eq(bh_boot_wild(fit, &o, &r, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "coefficient 2"), "%s", err.msg);

    bh_boot_weights w;
    cr_assert_eq(bh_boot_weights_parse("mammen", &w, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "mammen"), "%s", err.msg);
    cr_assert_eq(bh_boot_weights_parse("WEBB", &w, &err), BH_OK);
    cr_assert_eq(w, BH_BOOT_WEBB);
    cr_assert_str_eq(bh_boot_weights_name(BH_BOOT_RADEMACHER), "rademacher");

    /* One cluster. */
    t->grp.ngroups = 1;
    for (size_t i = 0; i < t->d.n; i++)
        t->grp.code[i] = 0;
    cr_assert_eq(bh_boot_wild(fit, NULL, &r, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "firm"), "%s", err.msg);

    /* No cluster variable. */
    t->d.cluster = NULL;
    cr_assert_eq(bh_boot_wild(fit, NULL, &r, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "cluster"), "%s", err.msg);

    /* Not least squares: the WCR refuses; the score bootstrap needs the
     * cluster variable too. */
    fit->linear = 0;
    cr_assert_eq(bh_boot_wild(fit, NULL, &r, &err), BH_EUSAGE);
    cr_assert_eq(bh_boot_fit(fit, NULL, &r, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "score"), "%s", err.msg);
    cr_assert_null(r);
    bh_fit_free(fit);
    bt_free(t);
}

/* ---- wild score bootstrap ---------------------------------------------
 * References: tests/fixtures/boot/score_pvalues.csv and score_ci.csv from
 * tests/fixtures/r/boot_score.R (R 4.2.2; glm with epsilon = 1e-15),
 * enumerated draws, so counts must be equal. */

#include "blackhole/glm.h"

/* resp ~ 1 + x1 + x2 on firms 1..G of score_data.csv. */
static bt_design *st_new(size_t G, const char *resp)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/score_data.csv");
    size_t n = 0;
    for (size_t i = 0; i < fx->nrow; i++)
        n += bht_fixture_num(fx, i, "firm") <= (double)G;
    bt_design *t = calloc(1, sizeof *t);
    t->d.n = n;
    t->d.p = 3;
    t->d.m = 1;
    t->d.x = calloc(n * 3, sizeof(double));
    t->d.y = calloc(n, sizeof(double));
    t->grp.code = calloc(n, sizeof(size_t));
    t->grp.ngroups = G;
    t->grp.name = strdup("firm");
    t->d.cluster = &t->grp;
    size_t k = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        double f = bht_fixture_num(fx, i, "firm");
        if (f > (double)G)
            continue;
        t->grp.code[k] = (size_t)f - 1;
        t->d.x[k] = 1.0;
        t->d.x[n + k] = bht_fixture_num(fx, i, "x1");
        t->d.x[2 * n + k] = bht_fixture_num(fx, i, "x2");
        t->d.y[k] = bht_fixture_num(fx, i, resp);
        k++;
    }
    t->names[0] = "(Intercept)";
    t->names[1] = "x1";
    t->names[2] = "x2";
    bht_fixture_free(fx);
    return t;
}

static bh_fit *st_fit(bt_design *t, int fractional)
{
    bh_glm_options opt;
    bh_glm_default_options(&opt);
    opt.family = fractional ? BH_FAM_FRACTIONAL : BH_FAM_BINOMIAL;
    opt.link = BH_LINK_LOGIT;
    opt.tol = 1e-14;
    opt.colnames = (const char *const *)t->names;
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_glm_fit(&t->d, &opt, NULL, &fit, &err), BH_OK, "%s", err.msg);
    cr_assert(fit->converged);
    return fit;
}

Test(boot_score, enumerated_pvalues_match_r_exactly)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/score_pvalues.csv");
    cr_assert_gt(fx->nrow, 10);
    for (size_t row = 0; row < fx->nrow; row++) {
        const char *c = bht_fixture_str(fx, row, "case");
        const char *resp = bht_fixture_str(fx, row, "response");
        int webb = strcmp(bht_fixture_str(fx, row, "weights"), "webb") == 0;
        size_t j = term_index(bht_fixture_str(fx, row, "term"));
        double null[3] = {0, 0, 0};
        null[j] = bht_fixture_num(fx, row, "null");
        bt_design *t = st_new(case_G(c), resp);
        bh_fit *fit = st_fit(t, strcmp(resp, "yf") == 0);
        bh_boot_options o;
        bh_boot_default_options(&o);
        o.weights = webb ? BH_BOOT_WEBB : BH_BOOT_RADEMACHER;
        o.null = null;
        o.ci = 0;
        bh_boot_result *r = NULL;
        bh_error err;
        bh_error_clear(&err);
        cr_assert_eq(bh_boot_fit(fit, &o, &r, &err), BH_OK, "%s: %s", c, err.msg);
        cr_assert_eq(r->method, BH_BOOT_SCORE);
        cr_assert(r->enumerated);
        cr_assert_eq(r->reps, (size_t)bht_fixture_num(fx, row, "ndraws"));
        cr_assert_eq(r->count[j], (size_t)bht_fixture_num(fx, row, "count"),
                     "%s %s null %g: count %zu", c, t->names[j], null[j],
                     r->count[j]);
        cr_assert_eq(r->p_value[j], bht_fixture_num(fx, row, "p"), "%s", c);
        cr_assert_eq(r->p_value_strict[j], bht_fixture_num(fx, row, "p_strict"),
                     "%s", c);
        bht_assert_rel(r->statistic[j], bht_fixture_num(fx, row, "t"), 1e-7,
                       "(%s %s)", c, t->names[j]);
        bh_boot_result_free(r);
        bh_fit_free(fit);
        bt_free(t);
    }
    bht_fixture_free(fx);
}

Test(boot_score, intervals_match_r)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/score_ci.csv");
    for (size_t row = 0; row < fx->nrow; row++) {
        const char *c = bht_fixture_str(fx, row, "case");
        int webb = strcmp(bht_fixture_str(fx, row, "weights"), "webb") == 0;
        double se = bht_fixture_num(fx, row, "se");
        bt_design *t = st_new(case_G(c), "yb");
        bh_fit *fit = st_fit(t, 0);
        bh_boot_options o;
        bh_boot_default_options(&o);
        o.weights = webb ? BH_BOOT_WEBB : BH_BOOT_RADEMACHER;
        o.level = bht_fixture_num(fx, row, "level");
        unsigned char which[3] = {0, 1, 0};
        o.test = which;
        bh_boot_result *r = NULL;
        bh_error err;
        bh_error_clear(&err);
        cr_assert_eq(bh_boot_score(fit, &o, &r, &err), BH_OK, "%s: %s", c, err.msg);
        double lo = bht_fixture_num(fx, row, "low"), hi = bht_fixture_num(fx, row, "high");
        /* Each trial value is a restricted ML refit (to ~1e-12), so the
         * jumps are located less precisely than for least squares. */
        cr_assert(fabs(r->conf_low[1] - lo) <= 1e-6 * se,
                  "%s: low %.17g want %.17g", c, r->conf_low[1], lo);
        cr_assert(fabs(r->conf_high[1] - hi) <= 1e-6 * se,
                  "%s: high %.17g want %.17g", c, r->conf_high[1], hi);
        bh_boot_result_free(r);
        bh_fit_free(fit);
        bt_free(t);
    }
    bht_fixture_free(fx);
}

Test(boot_score, random_draws_independent_of_threads)
{
    bt_design *t = st_new(8, "yb");
    bh_fit *fit = st_fit(t, 0);
    bh_boot_options o;
    bh_boot_default_options(&o);
    o.weights = BH_BOOT_WEBB;
    o.reps = 999;
    o.ci = 0;
    bh_boot_result *a = NULL, *b = NULL;
    bh_error err;
    cr_assert_eq(bh_boot_score(fit, &o, &a, &err), BH_OK, "%s", err.msg);
    o.threads = 4;
    cr_assert_eq(bh_boot_score(fit, &o, &b, &err), BH_OK, "%s", err.msg);
    cr_assert(!a->enumerated);
    for (size_t j = 0; j < 3; j++)
        cr_assert_eq(a->count[j], b->count[j]);
    bh_boot_result_free(a);
    bh_boot_result_free(b);
    bh_fit_free(fit);
    bt_free(t);
}
