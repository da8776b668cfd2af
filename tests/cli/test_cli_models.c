/* test_cli_models.c - `fit --family dirichlet` and mixed models end to end,
 * against the R references of the estimator suites
 * (tests/fixtures/r/dirichlet_reference.R, tests/fixtures/r/glmm_reference.R). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int run(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s", bht_bin(), args);
    return bht_run(cmd, out, err);
}

/* estimate and std_error for (component, term) in fit's CSV output */
static int lookup(const char *csv, const char *comp, const char *term, double *est, double *se)
{
    char key[256];
    snprintf(key, sizeof key, ",%s,%s,", comp, term);
    const char *p = strstr(csv, key);
    if (!p)
        return 0;
    p += strlen(key);
    char *e;
    *est = strtod(p, &e);
    *se = strtod(e + 1, NULL);
    return 1;
}

/* The fixtures' data files start with '#' provenance lines. */
static void strip(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -v '^#' %s > %s", from, to);
    cr_assert_eq(bht_run(cmd, NULL, NULL), 0);
}

Test(cli_models, dirichlet_common_and_cluster)
{
    strip("tests/fixtures/dirichlet/dir_data.csv", "/tmp/bht_dir.csv");
    bht_fixture *fx = bht_fixture_read("tests/fixtures/dirichlet/dir_coef.csv");
    const char *vc[2] = {"classical", "cluster:g"}, *col[2] = {"se", "se_cluster"};
    for (int v = 0; v < 2; v++) {
        char args[512], *out = NULL, *err = NULL;
        snprintf(args, sizeof args, "fit /tmp/bht_dir.csv -m 'y1 + y2 + y3 ~ x1 * x2' "
                 "--family dirichlet --vcov %s --format csv", vc[v]);
        cr_assert_eq(run(args, &out, &err), 0, "%s", err);
        size_t n = 0;
        for (size_t i = 0; i < fx->nrow; i++) {
            if (strcmp(bht_fixture_str(fx, i, "model"), "common") != 0)
                continue;
            double est, se;
            const char *comp = bht_fixture_str(fx, i, "component");
            const char *term = bht_fixture_str(fx, i, "term");
            cr_assert(lookup(out, comp, term, &est, &se), "%s %s missing:\n%s", comp, term, out);
            bht_assert_rel(est, bht_fixture_num(fx, i, "estimate"), 1e-7, "%s %s", comp, term);
            bht_assert_rel(se, bht_fixture_num(fx, i, col[v]), 1e-6, "%s %s %s", comp, term, vc[v]);
            n++;
        }
        cr_assert_eq(n, 12);
        free(out);
        free(err);
    }
    bht_fixture_free(fx);
}

Test(cli_models, dirichlet_errors)
{
    char *err = NULL;
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --family dirichlet",
                     NULL, &err), 2);
    cr_assert(strstr(err, "several responses"), "%s", err);
    free(err);
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --squeeze", NULL, &err), 2);
    cr_assert(strstr(err, "dirichlet"), "%s", err);
    free(err);
    /* shares that do not sum to 1: a data error naming the row */
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing + share_self ~ experience' "
                     "--family dirichlet", NULL, &err), 3);
    cr_assert(strstr(err, "row"), "%s", err);
    free(err);
}

Test(cli_models, glmm_laplace_and_write_re)
{
    strip("tests/fixtures/glmm/leads.csv", "/tmp/bht_glmm.csv");
    bht_fixture *fx = bht_fixture_read("tests/fixtures/glmm/glmm_coef.csv");
    char *out = NULL, *err = NULL;
    cr_assert_eq(run("fit /tmp/bht_glmm.csv -m 'followed_up ~ quality * experience + tracking * "
                     "experience + (1 | rep_id)' --family binomial --format csv "
                     "--write-re /tmp/bht_re.csv", &out, &err), 0, "%s", err);
    size_t n = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        if (strcmp(bht_fixture_str(fx, i, "case"), "lap") != 0)
            continue;
        double est, se;
        const char *term = bht_fixture_str(fx, i, "term");
        cr_assert(lookup(out, "", term, &est, &se), "%s missing:\n%s", term, out);
        double ref_se = bht_fixture_num(fx, i, "se");
        /* lme4's own optimum is reproduced to well within 1e-3 SE */
        cr_assert(fabs(est - bht_fixture_num(fx, i, "estimate")) < 1e-3 * ref_se, "%s", term);
        bht_assert_rel(se, ref_se, 1e-3, "%s", term);
        n++;
    }
    cr_assert_eq(n, 6);
    cr_assert(strstr(out, ",rep_id,sd__(Intercept),"), "%s", out);
    char *re = bht_slurp("/tmp/bht_re.csv");
    cr_assert(re && strncmp(re, "model,grouping,group,mode,cond_sd\n", 34) == 0);
    free(re);
    free(out);
    free(err);
    bht_fixture_free(fx);
    /* mixed models: model-based SEs only */
    cr_assert_eq(run("fit /tmp/bht_glmm.csv -m 'followed_up ~ quality + (1 | rep_id)' "
                     "--family binomial --vcov hc1", NULL, &err), 2);
    cr_assert(strstr(err, "model-based"), "%s", err);
    free(err);
    cr_assert_eq(run("fit /tmp/bht_glmm.csv -m 'followed_up ~ quality + (1 | rep_id)'", NULL, &err), 2);
    cr_assert(strstr(err, "binomial"), "%s", err);
    free(err);
}

/* Margins of the mixed logit, conditional and population-averaged, against
 * R (tests/fixtures/r/margins_glmm.R; lme4's optimum reproduced to ~1e-6,
 * hence 1e-5 relative). */
Test(cli_models, glmm_margins_conditional_and_averaged)
{
    strip("tests/fixtures/glmm/leads.csv", "/tmp/bht_glmm_m.csv");
    bht_fixture *fx = bht_fixture_read("tests/fixtures/margins/glmm_margins_ref.csv");
    const char *flag[2] = {"", "--re-average"}, *pre[2] = {"cond_", "avg_"};
    for (int k = 0; k < 2; k++) {
        char args[1024], *out = NULL, *err = NULL;
        snprintf(args, sizeof args, "margins /tmp/bht_glmm_m.csv -m 'followed_up ~ quality * "
                 "experience + tracking * experience + (1 | rep_id)' --family binomial "
                 "--dydx quality --predict --format csv %s", flag[k]);
        cr_assert_eq(run(args, &out, &err), 0, "%s", err);
        for (size_t i = 0; i < fx->nrow; i++) {
            const char *q = bht_fixture_str(fx, i, "quantity");
            if (strncmp(q, pre[k], strlen(pre[k])) != 0)
                continue;
            const char *key = strstr(q, "prediction") ? ",prediction,followed_up,," : ",ame,quality,,";
            const char *p = strstr(out, key);
            cr_assert(p, "%s missing in\n%s", key, out);
            bht_assert_rel(strtod(p + strlen(key), NULL), bht_fixture_num(fx, i, "value"), 1e-5,
                           "%s", q);
        }
        free(out);
        free(err);
    }
    bht_fixture_free(fx);
}
