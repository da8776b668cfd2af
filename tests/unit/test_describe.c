/* test_describe.c - descriptive statistics, correlations and scales against
 * reference values computed with R (tests/fixtures/r/describe.R, R 4.2.2;
 * alpha cross-checked with psych 2.2.9).  The data set is read by the
 * fixture helper, not the project's CSV reader, so these tests depend only
 * on frame construction.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/describe.h"
#include "blackhole/frame.h"

#define FX "tests/fixtures/describe/"
#define RTOL 1e-10
#define PTOL 1e-8

static const char *const NUMVARS[] = {"experience", "performance", "leads", "share",
                                      "q1", "q2", "q3", "q4"};
static const char *const ITEMS[] = {"q1", "q2", "q3", "q4"};

/* survey.csv as a frame: firm categorical, everything else numeric. */
static bh_frame *survey(void)
{
    bht_fixture *fx = bht_fixture_read(FX "survey.csv");
    bh_frame *f = bh_frame_new(FX "survey.csv", fx->nrow);
    cr_assert_not_null(f);
    bh_error err;
    const char **firm = calloc(fx->nrow, sizeof *firm);
    for (size_t i = 0; i < fx->nrow; i++) {
        const char *s = bht_fixture_str(fx, i, "firm");
        firm[i] = strcmp(s, "NA") == 0 ? NULL : s;
    }
    cr_assert_eq(bh_frame_add_categorical(f, "firm", firm, &err), BH_OK, "%s", err.msg);
    free(firm);
    double *v = malloc(fx->nrow * sizeof *v);
    for (size_t j = 0; j < sizeof NUMVARS / sizeof *NUMVARS; j++) {
        for (size_t i = 0; i < fx->nrow; i++)
            v[i] = bht_fixture_num(fx, i, NUMVARS[j]);
        cr_assert_eq(bh_frame_add_numeric(f, NUMVARS[j], v, NULL, &err), BH_OK, "%s", err.msg);
    }
    free(v);
    bht_fixture_free(fx);
    return f;
}

/* survey with the composite "engage" = mean of q1..q4 added. */
static bh_frame *survey_scored(bh_scale_result *sr)
{
    bh_frame *f = survey();
    bh_error err;
    cr_assert_eq(bh_scale_score(f, "engage", ITEMS, 4, sr, &err), BH_OK, "%s", err.msg);
    return f;
}

static long var_index(const bh_describe_result *res, const char *name)
{
    for (size_t j = 0; j < res->nvars; j++)
        if (strcmp(res->vars[j].name, name) == 0)
            return (long)j;
    return -1;
}

static const bh_describe_group *group_of(const bh_describe_result *res, const char *label)
{
    if (strcmp(label, "(all)") == 0)
        return &res->overall;
    for (size_t g = 0; g < res->ngroups; g++)
        if (strcmp(res->groups[g].label, label) == 0)
            return &res->groups[g];
    return NULL;
}

/* Compare every row of numeric.csv whose group is present in res. */
static size_t check_numeric(const bh_describe_result *res, int grouped)
{
    bht_fixture *fx = bht_fixture_read(FX "numeric.csv");
    size_t checked = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        const char *gl = bht_fixture_str(fx, i, "group");
        if (!grouped && strcmp(gl, "(all)") != 0)
            continue;
        const char *vn = bht_fixture_str(fx, i, "var");
        const bh_describe_group *g = group_of(res, gl);
        cr_assert_not_null(g, "group %s", gl);
        long j = var_index(res, vn);
        cr_assert(j >= 0, "variable %s", vn);
        const bh_describe_stats *st = &g->stats[j];
        cr_assert_eq(st->n, (size_t)bht_fixture_num(fx, i, "n"), "%s/%s n", vn, gl);
        cr_assert_eq(st->missing, (size_t)bht_fixture_num(fx, i, "missing"), "%s/%s", vn, gl);
        bht_assert_rel(st->mean, bht_fixture_num(fx, i, "mean"), RTOL, "%s/%s", vn, gl);
        bht_assert_rel(st->sd, bht_fixture_num(fx, i, "sd"), RTOL, "%s/%s", vn, gl);
        bht_assert_rel(st->min, bht_fixture_num(fx, i, "min"), RTOL, "%s/%s", vn, gl);
        bht_assert_rel(st->q1, bht_fixture_num(fx, i, "q1"), RTOL, "%s/%s", vn, gl);
        bht_assert_rel(st->median, bht_fixture_num(fx, i, "median"), RTOL, "%s/%s", vn, gl);
        bht_assert_rel(st->q3, bht_fixture_num(fx, i, "q3"), RTOL, "%s/%s", vn, gl);
        bht_assert_rel(st->max, bht_fixture_num(fx, i, "max"), RTOL, "%s/%s", vn, gl);
        cr_assert_null(st->counts);
        checked++;
    }
    bht_fixture_free(fx);
    return checked;
}

Test(describe, numeric_overall_matches_r)
{
    bh_scale_result sr;
    bh_frame *f = survey_scored(&sr);
    bh_describe_result *res = NULL;
    bh_error err;
    cr_assert_eq(bh_describe_run(f, NULL, &res, &err), BH_OK, "%s", err.msg);
    /* Default: every column in frame order, the composite included. */
    cr_assert_eq(res->nvars, 10);
    cr_assert_str_eq(res->vars[0].name, "firm");
    cr_assert_str_eq(res->vars[9].name, "engage");
    cr_assert_null(res->by);
    cr_assert_eq(res->ngroups, 0);
    cr_assert_eq(res->overall.nrow, 40);
    cr_assert_eq(check_numeric(res, 0), 9);
    bh_describe_free(res);
    bh_scale_result_free(&sr);
    bh_frame_free(f);
}

Test(describe, by_group_matches_r)
{
    bh_scale_result sr;
    bh_frame *f = survey_scored(&sr);
    bh_describe_options opt;
    bh_describe_default_options(&opt);
    opt.by = "firm";
    bh_describe_result *res = NULL;
    bh_error err;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_OK, "%s", err.msg);
    cr_assert_str_eq(res->by, "firm");
    cr_assert_eq(res->nvars, 9, "the grouping variable is not described by default");
    cr_assert_eq(var_index(res, "firm"), -1);
    cr_assert_eq(res->by_missing, 1);
    cr_assert_eq(res->ngroups, 4);
    /* Frame level order: case-insensitive. */
    const char *want[] = {"Acme", "bolt", "Crane", "delta"};
    size_t nrow[] = {14, 12, 10, 3};
    for (size_t g = 0; g < 4; g++) {
        cr_assert_str_eq(res->groups[g].label, want[g]);
        cr_assert_eq(res->groups[g].nrow, nrow[g]);
    }
    cr_assert_eq(check_numeric(res, 1), 9 * 5);
    /* delta has one experience value: sd undefined (R: NA). */
    const bh_describe_stats *st = &res->groups[3].stats[var_index(res, "experience")];
    cr_assert_eq(st->n, 1);
    cr_assert(isnan(st->sd));
    cr_assert_eq(st->min, st->max);
    /* The correlation matrix stays overall: same n as without grouping. */
    long a = var_index(res, "experience"), b = var_index(res, "leads");
    size_t ia = 0, ib = 0;
    for (size_t c = 0; c < res->ncor; c++) {
        if (res->cor_var[c] == (size_t)a) ia = c;
        if (res->cor_var[c] == (size_t)b) ib = c;
    }
    cr_assert_eq(res->cor_n[ia * res->ncor + ib], 35);
    bh_describe_free(res);
    bh_scale_result_free(&sr);
    bh_frame_free(f);
}

Test(describe, categorical_counts_match_r)
{
    bh_frame *f = survey();
    bh_describe_options opt;
    bh_describe_default_options(&opt);
    const char *vars[] = {"leads", "firm"};
    opt.vars = vars;
    opt.nvars = 2;
    opt.correlations = 0;
    bh_describe_result *res = NULL;
    bh_error err;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(res->nvars, 2);
    cr_assert_str_eq(res->vars[0].name, "leads", "requested order kept");
    cr_assert_eq(res->vars[1].type, BH_COL_CATEGORICAL);
    cr_assert_eq(res->ncor, 0);
    cr_assert_null(res->cor_r);
    const bh_describe_var *v = &res->vars[1];
    const bh_describe_stats *st = &res->overall.stats[1];
    bht_fixture *fx = bht_fixture_read(FX "categorical.csv");
    cr_assert_eq(v->nlevels, fx->nrow - 1);
    size_t total = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        const char *lv = bht_fixture_str(fx, i, "level");
        size_t want = (size_t)bht_fixture_num(fx, i, "count");
        if (strcmp(lv, "<NA>") == 0) {
            cr_assert_eq(st->missing, want);
            continue;
        }
        cr_assert_str_eq(v->levels[i], lv);
        cr_assert_eq(st->counts[i], want, "level %s", lv);
        total += want;
    }
    cr_assert_eq(st->n, total);
    cr_assert(isnan(st->mean));
    bht_fixture_free(fx);
    bh_describe_free(res);
    bh_frame_free(f);
}

Test(describe, correlations_match_r)
{
    bh_scale_result sr;
    bh_frame *f = survey_scored(&sr);
    bh_describe_result *res = NULL;
    bh_error err;
    cr_assert_eq(bh_describe_run(f, NULL, &res, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(res->ncor, 9, "numeric variables only");
    size_t nc = res->ncor;
    bht_fixture *fx = bht_fixture_read(FX "correlations.csv");
    cr_assert_eq(fx->nrow, nc * (nc - 1));
    for (size_t i = 0; i < fx->nrow; i++) {
        const char *v1 = bht_fixture_str(fx, i, "var1"), *v2 = bht_fixture_str(fx, i, "var2");
        long j1 = var_index(res, v1), j2 = var_index(res, v2);
        size_t a = nc, b = nc;
        for (size_t c = 0; c < nc; c++) {
            if (res->cor_var[c] == (size_t)j1) a = c;
            if (res->cor_var[c] == (size_t)j2) b = c;
        }
        cr_assert(a < nc && b < nc, "%s, %s in the matrix", v1, v2);
        cr_assert_eq(res->cor_n[a * nc + b], (size_t)bht_fixture_num(fx, i, "n"), "%s,%s", v1, v2);
        bht_assert_rel(res->cor_r[a * nc + b], bht_fixture_num(fx, i, "r"), RTOL, "%s,%s", v1, v2);
        bht_assert_rel(res->cor_p[a * nc + b], bht_fixture_num(fx, i, "p"), PTOL, "%s,%s", v1, v2);
    }
    for (size_t a = 0; a < nc; a++) {
        cr_assert_eq(res->cor_r[a * nc + a], 1.0);
        cr_assert(isnan(res->cor_p[a * nc + a]));
        cr_assert_eq(res->cor_n[a * nc + a], res->overall.stats[res->cor_var[a]].n);
    }
    bht_fixture_free(fx);
    bh_describe_free(res);
    bh_scale_result_free(&sr);
    bh_frame_free(f);
}

Test(describe, cor_edge_cases)
{
    double r, p;
    /* r rounds to exactly 1 / -1: t infinite, R's cor.test gives p = 0
     * (checked in describe.R with the same data). */
    double x[] = {1, 2, 3, 4, 5.5}, y[5], z[5];
    for (int i = 0; i < 5; i++) {
        y[i] = 2 * x[i];
        z[i] = -2 * x[i];
    }
    cr_assert_eq(bh_describe_cor(x, y, 5, &r, &p), 5);
    cr_assert_eq(r, 1.0);
    cr_assert_eq(p, 0.0);
    bh_describe_cor(x, z, 5, &r, &p);
    cr_assert_eq(r, -1.0);
    cr_assert_eq(p, 0.0);
    /* Two complete pairs: r defined, no test (cor.test needs n >= 3). */
    double u[] = {1, NAN, 3, 7}, w[] = {2, 5, NAN, 1};
    cr_assert_eq(bh_describe_cor(u, w, 4, &r, &p), 2);
    cr_assert_eq(r, -1.0);
    cr_assert(isnan(p));
    /* One pair, or a constant: r undefined. */
    cr_assert_eq(bh_describe_cor(u, w, 2, &r, &p), 1);
    cr_assert(isnan(r) && isnan(p));
    double c[] = {3, 3, 3, 3};
    cr_assert_eq(bh_describe_cor(c, x, 4, &r, &p), 4);
    cr_assert(isnan(r) && isnan(p));
    cr_assert_eq(bh_describe_cor(x, y, 0, &r, &p), 0);
    cr_assert(isnan(r));
}

Test(describe, cor_pvalue_matches_r_into_the_tails)
{
    /* p from 0.99999 down to 1e-300: the far tail is where a plain t tail
     * loses digits. */
    bht_fixture *fx = bht_fixture_read(FX "cor_pvalue.csv");
    cr_assert_gt(fx->nrow, 100);
    for (size_t i = 0; i < fx->nrow; i++) {
        size_t n = (size_t)bht_fixture_num(fx, i, "n");
        double r = bht_fixture_num(fx, i, "r");
        bht_assert_rel(bh_describe_cor_pvalue(r, n), bht_fixture_num(fx, i, "p"), PTOL,
                       "n = %zu, r = %.17g", n, r);
    }
    bht_fixture_free(fx);
    cr_assert(isnan(bh_describe_cor_pvalue(0.5, 2)));
    cr_assert(isnan(bh_describe_cor_pvalue(NAN, 10)));
    cr_assert_eq(bh_describe_cor_pvalue(-1.0, 3), 0.0);
}

Test(describe, quantile_type7)
{
    /* Type 7 by its definition: index 1 + (n-1) p, linear interpolation
     * (Hyndman & Fan 1996); R: quantile(c(1,2,3,4), c(.25,.5,.1)) gives
     * 1.75, 2.5, 1.3. */
    double x[] = {1, 2, 3, 4};
    bht_assert_rel(bh_describe_quantile_sorted(x, 4, 0.25), 1.75, 1e-15);
    bht_assert_rel(bh_describe_quantile_sorted(x, 4, 0.5), 2.5, 1e-15);
    bht_assert_rel(bh_describe_quantile_sorted(x, 4, 0.1), 1.3, 1e-15);
    cr_assert_eq(bh_describe_quantile_sorted(x, 4, 0), 1);
    cr_assert_eq(bh_describe_quantile_sorted(x, 4, 1), 4);
    cr_assert_eq(bh_describe_quantile_sorted(x, 1, 0.75), 1);
    cr_assert(isnan(bh_describe_quantile_sorted(x, 0, 0.5)));
    cr_assert(isnan(bh_describe_quantile_sorted(x, 4, 1.5)));
    /* Equal neighbours: no Inf - Inf. */
    double inf[] = {1, INFINITY, INFINITY};
    cr_assert_eq(bh_describe_quantile_sorted(inf, 3, 0.75), INFINITY);
}

Test(describe, alpha_matches_r)
{
    bh_frame *f = survey();
    bh_scale_result sr, s2;
    bh_error err;
    cr_assert_eq(bh_scale_score(f, "engage", ITEMS, 4, &sr, &err), BH_OK, "%s", err.msg);
    const char *pair[] = {"q1", "q3"};
    cr_assert_eq(bh_scale_score(f, "pair", pair, 2, &s2, &err), BH_OK, "%s", err.msg);

    bht_fixture *fx = bht_fixture_read(FX "alpha.csv");
    for (size_t i = 0; i < fx->nrow; i++) {
        const bh_scale_result *s = strcmp(bht_fixture_str(fx, i, "scale"), "engage") == 0 ? &sr : &s2;
        cr_assert_eq(s->k, (size_t)bht_fixture_num(fx, i, "k"));
        cr_assert_eq(s->n_complete, (size_t)bht_fixture_num(fx, i, "n_complete"));
        cr_assert_eq(s->n_scored, (size_t)bht_fixture_num(fx, i, "n_scored"));
        bht_assert_rel(s->alpha, bht_fixture_num(fx, i, "alpha"), RTOL, "%s", s->name);
    }
    bht_fixture_free(fx);

    fx = bht_fixture_read(FX "alpha_drop.csv");
    cr_assert_eq(fx->nrow, 4);
    for (size_t i = 0; i < fx->nrow; i++) {
        cr_assert_str_eq(sr.items[i], bht_fixture_str(fx, i, "item"));
        bht_assert_rel(sr.alpha_if_deleted[i], bht_fixture_num(fx, i, "alpha"), RTOL,
                       "without %s", sr.items[i]);
    }
    bht_fixture_free(fx);
    cr_assert_str_eq(sr.name, "engage");
    cr_assert(isnan(s2.alpha_if_deleted[0]) && isnan(s2.alpha_if_deleted[1]),
              "alpha of a single item is undefined");
    bh_scale_result_free(&sr);
    bh_scale_result_free(&s2);
    bh_frame_free(f);
}

/* Column c holds composite.csv's "engage" (R): its one missing row
 * missing, the others to 1e-15. */
static void assert_composite(const bh_column *c, const bht_fixture *fx)
{
    size_t nmiss = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        double want = bht_fixture_num(fx, i, "engage");
        if (isnan(want)) {
            cr_assert(c->na[i] && isnan(c->num[i]), "row %zu missing", i + 1);
            nmiss++;
        } else {
            cr_assert(!c->na[i], "row %zu", i + 1);
            bht_assert_rel(c->num[i], want, 1e-15, "row %zu", i + 1);
        }
    }
    cr_assert_eq(nmiss, 1);
}

Test(describe, composite_matches_r)
{
    bh_frame *f = survey();
    size_t ncol = f->ncol;
    bh_error err;
    cr_assert_eq(bh_scale_score(f, "engage", ITEMS, 4, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(f->ncol, ncol + 1);
    const bh_column *c = bh_frame_col(f, "engage");
    cr_assert_not_null(c);
    cr_assert_eq(c->type, BH_COL_NUMERIC);
    bht_fixture *fx = bht_fixture_read(FX "composite.csv");
    cr_assert_eq(fx->nrow, f->nrow);
    assert_composite(c, fx);
    bht_fixture_free(fx);
    bh_frame_free(f);
}

Test(describe, numeric_by_variable)
{
    bh_frame *f = survey();
    bh_describe_options opt;
    bh_describe_default_options(&opt);
    opt.by = "q1";
    const char *vars[] = {"leads"};
    opt.vars = vars;
    opt.nvars = 1;
    bh_describe_result *res = NULL;
    bh_error err;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_OK, "%s", err.msg);
    /* Groups are the distinct values, ascending, labelled as R prints them;
     * their sizes must add up with the missing ones to all rows. */
    const bh_column *q1 = bh_frame_col(f, "q1");
    size_t sum = 0;
    for (size_t g = 0; g < res->ngroups; g++) {
        double v = strtod(res->groups[g].label, NULL);
        size_t cnt = 0;
        for (size_t i = 0; i < f->nrow; i++)
            cnt += !q1->na[i] && q1->num[i] == v;
        cr_assert_eq(res->groups[g].nrow, cnt, "group %s", res->groups[g].label);
        cr_assert_eq(res->groups[g].stats[0].n, cnt, "leads has no NA");
        if (g)
            cr_assert(v > strtod(res->groups[g - 1].label, NULL));
        sum += cnt;
    }
    cr_assert_eq(res->by_missing, 2);
    cr_assert_eq(sum + res->by_missing, f->nrow);
    bh_describe_free(res);

    /* A continuous grouping variable is refused. */
    opt.by = "performance";
    opt.max_groups = 10;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_EUSAGE);
    cr_assert_null(res);
    cr_assert(strstr(err.msg, "'performance'") && strstr(err.msg, "distinct"), "%s", err.msg);
    opt.max_groups = 0;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(res->ngroups, 38);
    bh_describe_free(res);
    bh_frame_free(f);
}

Test(describe, usage_errors)
{
    bh_frame *f = survey();
    bh_describe_options opt;
    bh_describe_default_options(&opt);
    bh_describe_result *res = NULL;
    bh_error err;

    const char *bad[] = {"leads", "experiance"};
    opt.vars = bad;
    opt.nvars = 2;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_EUSAGE);
    cr_assert_null(res);
    cr_assert(strstr(err.msg, "'experiance'") && strstr(err.msg, "did you mean 'experience'"),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "survey.csv"), "names the file: %s", err.msg);

    const char *twice[] = {"leads", "share", "leads"};
    opt.vars = twice;
    opt.nvars = 3;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'leads'") && strstr(err.msg, "twice"), "%s", err.msg);

    opt.vars = NULL;
    opt.nvars = 0;
    opt.by = "firms";
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'firms'") && strstr(err.msg, "did you mean 'firm'"),
              "%s", err.msg);
    opt.by = "zzzzzzzz";
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'zzzzzzzz'") && !strstr(err.msg, "did you mean"), "%s", err.msg);
    bh_frame_free(f);
}

Test(describe, by_all_missing_is_data_error)
{
    bh_frame *f = bh_frame_new("t", 3);
    double x[] = {1, 2, 3};
    const char *g[] = {NULL, NULL, NULL};
    bh_error err;
    cr_assert_eq(bh_frame_add_numeric(f, "x", x, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_categorical(f, "g", g, &err), BH_OK, "%s", err.msg);
    bh_describe_options opt;
    bh_describe_default_options(&opt);
    opt.by = "g";
    bh_describe_result *res = NULL;
    cr_assert_eq(bh_describe_run(f, &opt, &res, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "'g'"), "%s", err.msg);
    cr_assert_null(res);
    bh_frame_free(f);
}

Test(describe, empty_frame)
{
    bh_frame *f = bh_frame_new(NULL, 0);
    bh_error err;
    cr_assert_eq(bh_frame_add_numeric(f, "x", NULL, NULL, &err), BH_OK, "%s", err.msg);
    bh_describe_result *res = NULL;
    cr_assert_eq(bh_describe_run(f, NULL, &res, &err), BH_OK, "%s", err.msg);
    const bh_describe_stats *st = &res->overall.stats[0];
    cr_assert_eq(st->n, 0);
    cr_assert_eq(st->missing, 0);
    cr_assert(isnan(st->mean) && isnan(st->sd) && isnan(st->min) && isnan(st->median));
    cr_assert_eq(res->ncor, 1);
    cr_assert(isnan(res->cor_r[0]));
    bh_describe_free(res);
    bh_frame_free(f);
}

/* Scoring into an existing column (simulate's refilled frames): the
 * composite of composite.csv (R), written over stale values, the column's
 * memory kept; then again after its values were released. */
Test(describe, composite_into_matches_r)
{
    bh_frame *f = survey();
    bh_error err;
    double *stale = malloc(f->nrow * sizeof *stale);
    for (size_t i = 0; i < f->nrow; i++)
        stale[i] = i % 3 ? -99 : NAN;
    cr_assert_eq(bh_frame_add_numeric(f, "engage", stale, NULL, &err), BH_OK, "%s", err.msg);
    free(stale);
    size_t j = (size_t)bh_frame_index(f, "engage"), ncol = f->ncol;
    bht_fixture *fx = bht_fixture_read(FX "composite.csv");
    cr_assert_eq(fx->nrow, f->nrow);
    for (int pass = 0; pass < 2; pass++) {
        const double *mem = f->cols[j].num;
        cr_assert_eq(bh_scale_score_into(f, j, ITEMS, 4, &err), BH_OK, "%s", err.msg);
        cr_assert_eq(f->ncol, ncol);
        const bh_column *c = &f->cols[j];
        if (pass == 0)
            cr_assert_eq(c->num, mem, "the column's memory is reused");
        cr_assert_str_eq(c->name, "engage");
        assert_composite(c, fx);
        bh_frame_release_column(f, j);
    }
    bht_fixture_free(fx);
    bh_frame_free(f);
}

/* The same column, bit for bit, as bh_scale_score adds (missing rows, a
 * NaN item, an infinite one whose mean is NaN). */
Test(describe, composite_into_same_bits_as_score)
{
    bh_frame *f = bh_frame_new("t", 5);
    double a[] = {1, NAN, 3, INFINITY, 0.1}, b[] = {NAN, NAN, 2, -INFINITY, 0.2},
           c[] = {2, NAN, 5, 1, 0.7}, z[] = {0, 0, 0, 0, 0};
    bh_error err;
    cr_assert_eq(bh_frame_add_numeric(f, "a", a, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "b", b, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "c", c, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "into", z, NULL, &err), BH_OK);
    const char *items[] = {"a", "b", "c"};
    cr_assert_eq(bh_scale_score(f, "s", items, 3, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_scale_score_into(f, 3, items, 3, &err), BH_OK, "%s", err.msg);
    const bh_column *x = bh_frame_col(f, "s"), *y = bh_frame_col(f, "into");
    cr_assert(memcmp(x->na, y->na, 5) == 0);
    cr_assert(memcmp(x->num, y->num, 5 * sizeof(double)) == 0);
    cr_assert(y->na[1] && y->na[3] && !y->na[0]);
    bh_frame_free(f);
}

Test(describe, composite_into_errors_leave_column_unchanged)
{
    bh_frame *f = survey();
    bh_error err;
    long jl = bh_frame_index(f, "leads"), jf = bh_frame_index(f, "firm");
    cr_assert(jl >= 0 && jf >= 0);
    size_t j = (size_t)jl;
    double before = f->cols[j].num[0];

    cr_assert_eq(bh_scale_score_into(f, (size_t)jf, ITEMS, 4, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'firm'") && strstr(err.msg, "categorical"), "%s", err.msg);
    cr_assert_eq(bh_scale_score_into(f, f->ncol, ITEMS, 4, &err), BH_EINTERNAL);
    cr_assert_eq(bh_scale_score_into(f, j, ITEMS, 1, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'leads'") && strstr(err.msg, "at least 2 items"), "%s", err.msg);
    const char *typo[] = {"q1", "q33"};
    cr_assert_eq(bh_scale_score_into(f, j, typo, 2, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "did you mean 'q3'"), "%s", err.msg);
    const char *self[] = {"q1", "leads"};
    cr_assert_eq(bh_scale_score_into(f, j, self, 2, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "its own items"), "%s", err.msg);
    const char *dup[] = {"q1", "q2", "q1"};
    cr_assert_eq(bh_scale_score_into(f, j, dup, 3, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    cr_assert_eq(bh_scale_score_into(NULL, 0, ITEMS, 4, &err), BH_EINTERNAL);
    cr_assert(memcmp(&f->cols[j].num[0], &before, sizeof before) == 0);
    bh_frame_free(f);
}

/* More items than the stack table holds: allocated, same numbers. */
Test(describe, composite_into_many_items)
{
    enum { K = 40, N = 3 };
    bh_frame *f = bh_frame_new("t", N);
    bh_error err;
    char names[K][16];
    const char *items[K];
    for (int k = 0; k < K; k++) {
        double v[N] = {k, 2.0 * k, k % 2 ? NAN : 1.0};
        snprintf(names[k], sizeof names[k], "i%d", k);
        items[k] = names[k];
        cr_assert_eq(bh_frame_add_numeric(f, names[k], v, NULL, &err), BH_OK);
    }
    double z[N] = {0};
    cr_assert_eq(bh_frame_add_numeric(f, "s", z, NULL, &err), BH_OK);
    cr_assert_eq(bh_scale_score_into(f, K, items, K, &err), BH_OK, "%s", err.msg);
    /* means of 0..39, of 0..78 step 2, and of twenty 1s */
    cr_assert_eq(f->cols[K].num[0], 19.5);
    cr_assert_eq(f->cols[K].num[1], 39);
    cr_assert_eq(f->cols[K].num[2], 1);
    bh_frame_free(f);
}

Test(describe, scale_errors_leave_frame_unchanged)
{
    bh_frame *f = survey();
    size_t ncol = f->ncol;
    bh_scale_result sr;
    bh_error err;

    cr_assert_eq(bh_scale_score(f, "leads", ITEMS, 4, &sr, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'leads'") && strstr(err.msg, "already exists"), "%s", err.msg);
    bh_scale_result_free(&sr);

    cr_assert_eq(bh_scale_score(f, "s", ITEMS, 1, &sr, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "at least 2 items"), "%s", err.msg);

    cr_assert_eq(bh_scale_score(f, "", ITEMS, 4, &sr, &err), BH_EUSAGE);

    const char *typo[] = {"q1", "q2", "q33"};
    cr_assert_eq(bh_scale_score(f, "s", typo, 3, &sr, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'q33'") && strstr(err.msg, "did you mean 'q3'"), "%s", err.msg);

    const char *cat[] = {"q1", "firm"};
    cr_assert_eq(bh_scale_score(f, "s", cat, 2, &sr, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'firm'") && strstr(err.msg, "not numeric"), "%s", err.msg);

    const char *dup[] = {"q1", "q2", "q1"};
    cr_assert_eq(bh_scale_score(f, "s", dup, 3, &sr, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'q1'") && strstr(err.msg, "twice"), "%s", err.msg);

    cr_assert_eq(f->ncol, ncol);
    cr_assert_null(bh_frame_col(f, "s"));
    bh_scale_result_free(&sr);
    bh_frame_free(f);
}

Test(describe, scale_alpha_undefined_is_nan)
{
    /* Items that never co-occur: no complete case, alpha NAN, composite
     * still the mean of what is present. */
    bh_frame *f = bh_frame_new("t", 3);
    double a[] = {1, NAN, 3}, b[] = {NAN, 2, NAN};
    bh_error err;
    bh_frame_add_numeric(f, "a", a, NULL, &err);
    bh_frame_add_numeric(f, "b", b, NULL, &err);
    const char *items[] = {"a", "b"};
    bh_scale_result sr;
    cr_assert_eq(bh_scale_score(f, "s", items, 2, &sr, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(sr.n_complete, 0);
    cr_assert_eq(sr.n_scored, 3);
    cr_assert(isnan(sr.alpha));
    const bh_column *c = bh_frame_col(f, "s");
    cr_assert_eq(c->num[0], 1);
    cr_assert_eq(c->num[1], 2);
    cr_assert_eq(c->num[2], 3);
    bh_scale_result_free(&sr);
    bh_frame_free(f);
}

Test(describe, scale_spec_parse)
{
    char *name, **items;
    size_t k;
    bh_error err;
    cr_assert_eq(bh_scale_spec_parse("engage= q1, q2 ,q3", &name, &items, &k, &err), BH_OK,
                 "%s", err.msg);
    cr_assert_str_eq(name, "engage");
    cr_assert_eq(k, 3);
    cr_assert_str_eq(items[0], "q1");
    cr_assert_str_eq(items[1], "q2");
    cr_assert_str_eq(items[2], "q3");
    bh_scale_spec_free(name, items, k);

    cr_assert_eq(bh_scale_spec_parse("engage", &name, &items, &k, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "name=item1"), "%s", err.msg);
    cr_assert_eq(bh_scale_spec_parse("=q1,q2", &name, &items, &k, &err), BH_EUSAGE);
    cr_assert_eq(bh_scale_spec_parse("s=q1,,q2", &name, &items, &k, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "item 2"), "%s", err.msg);
    cr_assert_null(name);
    /* One item parses; bh_scale_score refuses it. */
    cr_assert_eq(bh_scale_spec_parse("s=q1", &name, &items, &k, &err), BH_OK);
    cr_assert_eq(k, 1);
    bh_scale_spec_free(name, items, k);
}
