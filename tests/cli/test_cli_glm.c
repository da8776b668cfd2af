/* test_cli_glm.c - `fit --family ...` end to end against R
 * (tests/fixtures/r/cli_glm.R states the exact commands). */
#include <math.h>
#include <stdint.h>
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

/* estimate and std_error of a term in fit's CSV output */
static int lookup(const char *csv, const char *term, double *est, double *se)
{
    char key[256];
    snprintf(key, sizeof key, ",,%s,", term);
    const char *p = strstr(csv, key);
    if (!p)
        return 0;
    p += strlen(key);
    *est = strtod(p, (char **)&p);
    *se = strtod(p + 1, NULL);
    return 1;
}

static void check_case(const char *args, const char *casename, double rtol)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/cli/glm_ref.csv");
    char *out = NULL, *err = NULL;
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", casename, rc, err);
    size_t n = 0;
    for (size_t i = 0; i < fx->nrow; i++) {
        if (strcmp(bht_fixture_str(fx, i, "case"), casename) != 0)
            continue;
        const char *term = bht_fixture_str(fx, i, "term");
        double est, se;
        cr_assert(lookup(out, term, &est, &se), "%s: term %s missing in\n%s", casename, term, out);
        bht_assert_rel(est, bht_fixture_num(fx, i, "estimate"), rtol, "%s %s", casename, term);
        bht_assert_rel(se, bht_fixture_num(fx, i, "std_error"), rtol, "%s %s se", casename, term);
        n++;
    }
    cr_assert_gt(n, 0);
    free(out);
    free(err);
    bht_fixture_free(fx);
}

#define BW "tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt + factor(race) + smoke' --format csv"

Test(cli_glm, logit_classical)
{
    check_case("fit " BW " --family binomial", "logit", 1e-8);
}

Test(cli_glm, probit_hc1)
{
    check_case("fit " BW " --family binomial --link probit --vcov hc1", "probit_hc1", 1e-8);
}

Test(cli_glm, logit_cluster)
{
    check_case("fit " BW " --family binomial --vcov cluster:ftv", "logit_cl", 1e-8);
}

Test(cli_glm, firth)
{
    check_case("fit " BW " --family binomial --firth", "firth", 1e-6);
}

Test(cli_glm, fractional_defaults_to_robust_hc0)
{
    check_case("fit datasets/reps.csv -m 'share_marketing ~ experience + lead_volume + firm' "
               "--family fractional --format csv", "frac", 1e-8);
}

Test(cli_glm, compare_lr_test)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/cli/glm_ref.csv");
    double stat = NAN, p = NAN, df = NAN;
    for (size_t i = 0; i < fx->nrow; i++) {
        if (strcmp(bht_fixture_str(fx, i, "case"), "lr") == 0) {
            stat = bht_fixture_num(fx, i, "estimate");
            p = bht_fixture_num(fx, i, "std_error");
        }
        if (strcmp(bht_fixture_str(fx, i, "case"), "lr_df") == 0)
            df = bht_fixture_num(fx, i, "estimate");
    }
    bht_fixture_free(fx);
    char *out = NULL;
    cr_assert_eq(run("fit tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt' "
                     "-m 'low ~ age + lwt + factor(race) + smoke' --family binomial --compare "
                     "--format json", &out, NULL), 0);
    const char *k = strstr(out, "\"kind\": \"lr\"");
    cr_assert(k, "no LR test in\n%s", out);
    const char *sp = strstr(k, "\"statistic\": ");
    const char *dp = strstr(k, "\"df1\": ");
    const char *pp = strstr(k, "\"p_value\": ");
    cr_assert(sp && dp && pp);
    bht_assert_rel(strtod(sp + 13, NULL), stat, 1e-8);
    bht_assert_rel(strtod(dp + 7, NULL), df, 0);
    bht_assert_rel(strtod(pp + 11, NULL), p, 1e-7);
    free(out);
}

Test(cli_glm, errors)
{
    char *err = NULL;
    cr_assert_eq(run("fit " BW " --family binomail", NULL, &err), 2);
    cr_assert(strstr(err, "binomail"), "%s", err);
    free(err);
    cr_assert_eq(run("fit " BW " --family poisson --link logit", NULL, &err), 2);
    free(err);
    cr_assert_eq(run("fit " BW " --family binomial --link probit --firth", NULL, &err), 2);
    cr_assert(strstr(err, "firth"), "%s", err);
    free(err);
    /* fractional response outside [0, 1]: data error naming the value */
    cr_assert_eq(run("fit tests/fixtures/cli/birthwt.csv -m 'bwt ~ age' --family fractional", NULL, &err), 3);
    cr_assert(strstr(err, "2523") || strstr(err, "[0, 1]"), "%s", err);
    free(err);
    /* non-convergence: exit 1 with a clear message */
    cr_assert_eq(run("fit " BW " --family binomial --maxiter 1", NULL, &err), 1);
    cr_assert(strstr(err, "did not converge"), "%s", err);
    free(err);
    cr_assert_eq(run("fit " BW " --family binomial --boot wild", NULL, &err), 2);
    cr_assert(strstr(err, "cluster"), "%s", err);
    free(err);
    cr_assert_eq(run("fit " BW " --family binomial --test 'agee = 0'", NULL, &err), 2);
    cr_assert(strstr(err, "did you mean 'age'"), "%s", err);
    free(err);
}

Test(cli_glm, trace_prints_iterations)
{
    char *err = NULL;
    cr_assert_eq(run("fit " BW " --family binomial --trace", NULL, &err), 0);
    cr_assert(strstr(err, "iteration 1: deviance"), "%s", err);
    free(err);
}

Test(cli_glm, bootstrap_reproducible_across_threads)
{
    char *a = NULL, *b = NULL;
    cr_assert_eq(run("fit " BW " --family binomial --vcov cluster:ftv --boot wild --reps 199 "
                     "--seed 7 --threads 1 --format json", &a, NULL), 0);
    cr_assert_eq(run("fit " BW " --family binomial --vcov cluster:ftv --boot wild --reps 199 "
                     "--seed 7 --threads 2 --format json", &b, NULL), 0);
    cr_assert(strstr(a, "\"bootstrap\""));
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

/* predict: link-scale fit and SE, response-scale fit, delta-method SE and
 * transformed CI against R's predict.glm (tests/fixtures/r/cli_predict.R). */
Test(cli_glm, predict_matches_r)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/cli/predict_ref.csv");
    char *out = NULL;
    cr_assert_eq(run("predict tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt + factor(race) + smoke' "
                     "--family binomial --newdata tests/fixtures/cli/newdata.csv -o /tmp/bht_pred.csv",
                     NULL, NULL), 0);
    cr_assert_eq(run("predict tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt + factor(race) + smoke' "
                     "--family binomial --newdata tests/fixtures/cli/newdata.csv --vcov hc1", &out, NULL), 0);
    bht_fixture *got = bht_fixture_read("/tmp/bht_pred.csv");
    cr_assert_eq(got->nrow, fx->nrow);
    const char *cols[] = {"eta", "se_eta", "fitted", "se_fitted", "conf_low", "conf_high"};
    for (size_t i = 0; i < fx->nrow; i++)
        for (size_t k = 0; k < 6; k++)
            bht_assert_rel(bht_fixture_num(got, i, cols[k]), bht_fixture_num(fx, i, cols[k]), 1e-8,
                           "row %zu %s", i + 1, cols[k]);
    /* the same under HC1 */
    char *line = strchr(out, '\n');
    for (size_t i = 0; i < fx->nrow && line; i++) {
        double v[3];
        char *p = line + 1;
        strtod(p, &p);
        for (int k = 0; k < 3; k++)
            v[k] = strtod(p + 1, &p);
        bht_assert_rel(v[1], bht_fixture_num(fx, i, "se_eta_hc1"), 1e-8, "row %zu", i + 1);
        line = strchr(line + 1, '\n');
    }
    bht_fixture_free(got);
    bht_fixture_free(fx);
    free(out);
}

Test(cli_glm, predict_missing_predictor_gives_na)
{
    char *out = NULL, *err = NULL;
    bht_run("printf 'age,lwt,race,smoke\\n25,,1,0\\n' > /tmp/bht_nd_na.csv", NULL, NULL);
    cr_assert_eq(run("predict tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt + factor(race) + smoke' "
                     "--family binomial --newdata /tmp/bht_nd_na.csv", &out, &err), 0);
    cr_assert(strstr(out, "1,NA,NA,NA,NA,NA,NA"), "%s", out);
    cr_assert(strstr(err, "missing predictor"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(run("predict tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt + factor(race) + smoke' "
                     "--family binomial --newdata tests/fixtures/cli/collinear.csv", NULL, &err), 2);
    cr_assert(strstr(err, "unknown variable"), "%s", err);
    free(err);
}

/* `fit --threads T` bounds the CSV reader and the GLM's passes over the
 * rows; on data longer than one GLM block (32,768 rows) the output must
 * be the same bytes for 1 and 2 threads and the default, with a clustered
 * covariance (the scores of every block). */
Test(cli_glm, threads_do_not_change_the_output, .timeout = 120)
{
    char *dir = bht_tmpdir();
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/big.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("y,x1,x2,g\n", f);
    uint64_t s = 12345;
    for (size_t i = 0; i < 70001; i++) {
        double u[3];
        for (int k = 0; k < 3; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            u[k] = (double)(s >> 11) * 0x1.0p-53;
        }
        double x1 = 2 * u[0] - 1, x2 = u[1] < 0.3;
        double eta = -0.3 + 0.8 * x1 - 0.5 * x2;
        fprintf(f, "%d,%.6f,%g,%zu\n", u[2] < 1 / (1 + exp(-eta)), x1, x2, i % 97);
    }
    fclose(f);
    char *out[3] = {NULL, NULL, NULL};
    const char *th[3] = {"", "--threads 1", "--threads 2"};
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd,
                 "fit %s -m 'y ~ x1 * x2' --family binomial --vcov cluster:g --format csv %s",
                 path, th[k]);
        cr_assert_eq(run(cmd, &out[k], NULL), 0, "%s", cmd);
    }
    cr_expect_str_eq(out[1], out[0]);
    cr_expect_str_eq(out[2], out[0]);
    for (int k = 0; k < 3; k++)
        free(out[k]);
    bht_rmtree(dir);
    free(dir);
}
