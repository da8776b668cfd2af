/* test_cli.c - the blackhole program end to end: exit codes, messages, the
 * CSV contract, atomic output, and numbers against R on the shipped data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char *cmd(const char *fmt, const char *arg)
{
    static char buf[4096];
    char inner[3500];
    snprintf(inner, sizeof inner, fmt, arg ? arg : "");
    snprintf(buf, sizeof buf, "%s %s", bht_bin(), inner);
    return buf;
}

static int run(const char *args, char **out, char **err)
{
    return bht_run(cmd("%s", args), out, err);
}

static void assert_contains(const char *hay, const char *needle)
{
    cr_assert(hay && strstr(hay, needle), "expected '%s' in:\n%s", needle, hay ? hay : "(null)");
}

/* Estimate and std_error of `term` in fit's CSV output, for model `model`. */
static int csv_lookup(const char *csv, const char *model, const char *term, double *est,
                      double *se)
{
    char *copy = strdup(csv), *save = NULL;
    int found = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[9];
        size_t k = 0;
        char *s2 = NULL;
        for (char *c = strtok_r(line, ",", &s2); c && k < 9; c = strtok_r(NULL, ",", &s2))
            f[k++] = c;
        /* component is empty: strtok collapses it, so 8 fields */
        if (k == 8 && strcmp(f[0], model) == 0 && strcmp(f[1], term) == 0) {
            *est = strtod(f[2], NULL);
            *se = strtod(f[3], NULL);
            found = 1;
            break;
        }
    }
    free(copy);
    return found;
}

Test(cli, help_and_version)
{
    char *out = NULL;
    cr_assert_eq(run("--help", &out, NULL), 0);
    assert_contains(out, "Exit codes");
    free(out);
    cr_assert_eq(run("fit --help", &out, NULL), 0);
    assert_contains(out, "--vcov");
    free(out);
    cr_assert_eq(run("describe --help", &out, NULL), 0);
    assert_contains(out, "--scale");
    free(out);
}

Test(cli, usage_errors_exit_2)
{
    char *err = NULL;
    cr_assert_eq(run("frobnicate", NULL, &err), 2);
    assert_contains(err, "unknown command 'frobnicate'");
    free(err);
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --vcvo hc1", NULL, &err), 2);
    assert_contains(err, "did you mean '--vcov'");
    free(err);
    cr_assert_eq(run("fit datasets/reps.csv", NULL, &err), 2);
    assert_contains(err, "no model");
    free(err);
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --vcov hc7", NULL, &err), 2);
    free(err);
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --format xml", NULL, &err), 2);
    assert_contains(err, "xml");
    free(err);
}

Test(cli, unknown_variable_names_position_and_suggestion)
{
    char *err = NULL;
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ expereince'", NULL, &err), 2);
    assert_contains(err, "formula:1:19");
    assert_contains(err, "expereince");
    assert_contains(err, "did you mean 'experience'");
    free(err);
}

Test(cli, missing_file_exit_3)
{
    char *err = NULL;
    cr_assert_eq(run("fit no/such/file.csv -m 'y ~ x'", NULL, &err), 3);
    assert_contains(err, "no/such/file.csv");
    free(err);
}

Test(cli, csv_contract_header_and_r_reference)
{
    /* Reference: tests/fixtures/r/cli_reps.R (R 4.2.2, sandwich 3.0-2). */
    bht_fixture *fx = bht_fixture_read("tests/fixtures/cli/reps_lm.csv");
    const char *vc[3] = {"classical", "hc1", "cluster:firm"};
    const char *vname[3] = {"classical", "hc1", "cluster"};
    for (int v = 0; v < 3; v++) {
        char args[512], *out = NULL;
        snprintf(args, sizeof args,
                 "fit datasets/reps.csv -m 'share_marketing ~ experience * lead_volume + "
                 "performance + firm' --name m --vcov %s --format csv", vc[v]);
        cr_assert_eq(run(args, &out, NULL), 0);
        cr_assert(strncmp(out, "model,component,term,estimate,std_error,statistic,p_value,"
                               "conf_low,conf_high\n", 75) == 0, "header: %.80s", out);
        size_t checked = 0, expected = 0;
        for (size_t i = 0; i < fx->nrow; i++) {
            if (strcmp(bht_fixture_str(fx, i, "vcov"), vname[v]) != 0)
                continue;
            double est, se;
            const char *term = bht_fixture_str(fx, i, "term");
            cr_assert(csv_lookup(out, "m", term, &est, &se), "term %s missing", term);
            bht_assert_rel(est, bht_fixture_num(fx, i, "estimate"), 1e-10, "%s", term);
            bht_assert_rel(se, bht_fixture_num(fx, i, "std_error"), 1e-8, "%s %s", vname[v], term);
            checked++;
        }
        for (size_t i = 0; i < fx->nrow; i++)
            expected += strcmp(bht_fixture_str(fx, i, "vcov"), vname[v]) == 0;
        cr_assert_eq(checked, expected);
        cr_assert_eq(checked, 8);
        free(out);
    }
    bht_fixture_free(fx);
}

Test(cli, text_output_reports_rows_dropped_and_vcov)
{
    char *out = NULL;
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ performance' --vcov hc1", &out, NULL), 0);
    assert_contains(out, "N = 459 (2 rows dropped");
    assert_contains(out, "HC1");
    free(out);
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --vcov cluster:firm", &out, NULL), 0);
    assert_contains(out, "4 clusters");
    assert_contains(out, "few clusters");
    free(out);
}

Test(cli, side_by_side_models)
{
    char *out = NULL;
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' "
                     "-m 'share_marketing ~ experience + firm' --name base --name fe", &out, NULL), 0);
    assert_contains(out, "base");
    assert_contains(out, "fe");
    assert_contains(out, "firmbeta");
    free(out);
}

Test(cli, json_output_parses_fields)
{
    char *out = NULL;
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' --format json", &out, NULL), 0);
    assert_contains(out, "\"coefficients\"");
    assert_contains(out, "\"covariance\"");
    assert_contains(out, "\"rows_dropped\"");
    assert_contains(out, "\"convergence\"");
    free(out);
}

Test(cli, atomic_output_and_output_errors)
{
    char *dir = bht_tmpdir();
    char args[1024], path[600], *err = NULL;
    snprintf(path, sizeof path, "%s/out.csv", dir);
    snprintf(args, sizeof args, "fit datasets/reps.csv -m 'share_marketing ~ experience' --format csv -o %s", path);
    cr_assert_eq(run(args, NULL, NULL), 0);
    char *txt = bht_slurp(path);
    cr_assert(txt && strncmp(txt, "model,component,term", 20) == 0);
    free(txt);
    /* a failing fit must not replace or create the output */
    snprintf(path, sizeof path, "%s/never.csv", dir);
    snprintf(args, sizeof args, "fit datasets/reps.csv -m 'share_marketing ~ nosuchvar' -o %s", path);
    cr_assert_eq(run(args, NULL, NULL), 2);
    cr_assert_neq(access(path, F_OK), 0, "partial output left behind");
    /* unwritable directory: exit 4, nothing left */
    char ro[600];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    mkdir(ro, 0555);
    if (geteuid() == 0) {
        /* root ignores permissions: use a path whose directory is a file */
        snprintf(args, sizeof args, "fit datasets/reps.csv -m 'share_marketing ~ experience' -o %s/out.csv/x", dir);
    } else
        snprintf(args, sizeof args, "fit datasets/reps.csv -m 'share_marketing ~ experience' -o %s/x.csv", ro);
    cr_assert_eq(run(args, NULL, &err), 4);
    assert_contains(err, "cannot");
    free(err);
    char lsout[700], *ls = NULL;
    snprintf(lsout, sizeof lsout, "ls -A %s", ro);
    bht_run(lsout, &ls, NULL);
    cr_assert_str_empty(ls);
    free(ls);
    bht_rmtree(dir);
    free(dir);
}

Test(cli, stdin_data)
{
    char *out = NULL;
    cr_assert_eq(bht_run(cmd("fit - -m 'share_marketing ~ experience' --format csv < datasets/reps.csv", NULL),
                         &out, NULL), 0);
    assert_contains(out, "experience");
    free(out);
}

Test(cli, describe_scales_against_r)
{
    /* Reference: tests/fixtures/r/cli_scales.R (R 4.2.2). */
    bht_fixture *fx = bht_fixture_read("tests/fixtures/cli/reps_scales.csv");
    char *out = NULL;
    cr_assert_eq(run("describe datasets/reps.csv --scale prequal=prequal1,prequal2,prequal3 "
                     "--scale tracking=tracking1,tracking2,tracking3 --format csv", &out, NULL), 0);
    for (size_t i = 0; i < fx->nrow; i++) {
        const char *sc = bht_fixture_str(fx, i, "scale");
        char key[128];
        snprintf(key, sizeof key, "scale,,%s,,alpha,", sc);
        const char *p = strstr(out, key);
        cr_assert(p, "no alpha row for %s in\n%s", sc, out);
        bht_assert_rel(strtod(p + strlen(key), NULL), bht_fixture_num(fx, i, "alpha"), 1e-12);
        snprintf(key, sizeof key, "numeric,,%s,,mean,", sc);
        p = strstr(out, key);
        cr_assert(p, "no composite mean for %s", sc);
        bht_assert_rel(strtod(p + strlen(key), NULL), bht_fixture_num(fx, i, "composite_mean"), 1e-12);
    }
    free(out);
    bht_fixture_free(fx);
}

Test(cli, describe_write_scored)
{
    char *dir = bht_tmpdir();
    char args[1024], path[600];
    snprintf(path, sizeof path, "%s/scored.csv", dir);
    snprintf(args, sizeof args, "describe datasets/reps.csv --scale pq=prequal1,prequal2,prequal3 "
                                "--write-scored %s --format csv", path);
    cr_assert_eq(run(args, NULL, NULL), 0);
    char *txt = bht_slurp(path);
    cr_assert(txt);
    char *nl = strchr(txt, '\n');
    cr_assert(nl);
    *nl = '\0';
    cr_assert(strstr(txt, ",pq") != NULL, "header %s", txt);
    free(txt);
    bht_rmtree(dir);
    free(dir);
}

Test(cli, describe_errors)
{
    char *err = NULL;
    cr_assert_eq(run("describe datasets/reps.csv --vars experiense", NULL, &err), 2);
    assert_contains(err, "did you mean 'experience'");
    free(err);
    cr_assert_eq(run("describe datasets/reps.csv --scale bad", NULL, &err), 2);
    free(err);
    cr_assert_eq(run("describe datasets/reps.csv --scale s=prequal1,firm", NULL, &err), 2);
    assert_contains(err, "firm");
    free(err);
}

/* A standalone HTML page whose tags balance, and LaTeX whose environments
 * and braces balance, for a side-by-side table with every option. */
Test(cli, html_and_latex_are_well_formed)
{
    char *out = NULL;
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' "
                     "-m 'share_marketing ~ experience + firm' --omit firm --format html "
                     "--title 'T <&> \"x\"'", &out, NULL), 0);
    cr_assert(strncmp(out, "<!DOCTYPE html>", 15) == 0);
    cr_assert(strstr(out, "T &lt;&amp;&gt; &quot;x&quot;"), "%s", out);
    const char *tags[] = {"html", "head", "body", "table", "thead", "tbody", "tfoot", "tr",
                          "td", "th", "caption", "style", "title"};
    for (size_t k = 0; k < sizeof tags / sizeof tags[0]; k++) {
        char open[32], close[32];
        snprintf(open, sizeof open, "<%s", tags[k]);
        snprintf(close, sizeof close, "</%s>", tags[k]);
        size_t no = 0, nc = 0;
        for (const char *p = out; (p = strstr(p, open)); p++)
            if (p[strlen(open)] == '>' || p[strlen(open)] == ' ')
                no++;
        for (const char *p = out; (p = strstr(p, close)); p++)
            nc++;
        cr_assert_eq(no, nc, "<%s>: %zu opened, %zu closed", tags[k], no, nc);
    }
    free(out);
    cr_assert_eq(run("fit datasets/reps.csv -m 'share_marketing ~ experience' "
                     "-m 'share_marketing ~ experience + firm' --format latex --title 'a_b & c%'",
                     &out, NULL), 0);
    long depth = 0;
    size_t begins = 0, ends = 0;
    for (const char *p = out; *p; p++) {
        if (*p == '\\' && (p[1] == '{' || p[1] == '}' || p[1] == '%' || p[1] == '&' ||
                           p[1] == '_')) {
            p++;
            continue;
        }
        depth += (*p == '{') - (*p == '}');
        cr_assert(depth >= 0);
    }
    cr_assert_eq(depth, 0);
    for (const char *p = out; (p = strstr(p, "\\begin{")); p++)
        begins++;
    for (const char *p = out; (p = strstr(p, "\\end{")); p++)
        ends++;
    cr_assert_eq(begins, ends);
    cr_assert(strstr(out, "a\\_b \\& c\\%"), "%s", out);
    free(out);
}

/* Without OPENBLAS_NUM_THREADS the program starts itself again with it set
 * to 1 (OpenBLAS reads it when loaded): the same output as a run with the
 * variable set, and the exit code and stderr of the second start. */
Test(cli, restarts_with_one_blas_thread)
{
    char c1[4096], c2[4096], *o1 = NULL, *o2 = NULL, *e2 = NULL;
    const char *args = "fit datasets/reps.csv -m 'share_marketing ~ experience * lead_volume' "
                       "--vcov hc1 --format csv";
    snprintf(c1, sizeof c1, "OPENBLAS_NUM_THREADS=1 %s %s", bht_bin(), args);
    snprintf(c2, sizeof c2, "env -u OPENBLAS_NUM_THREADS %s %s", bht_bin(), args);
    cr_assert_eq(bht_run(c1, &o1, NULL), 0);
    cr_assert_eq(bht_run(c2, &o2, NULL), 0);
    cr_assert_str_eq(o1, o2);
    free(o1);
    free(o2);
    o2 = NULL;
    snprintf(c2, sizeof c2, "env -u OPENBLAS_NUM_THREADS %s fit no/such.csv -m 'y ~ x'",
             bht_bin());
    cr_assert_eq(bht_run(c2, &o2, &e2), 3);
    cr_assert(e2 && strstr(e2, "no/such.csv"), "%s", e2 ? e2 : "");
    free(o2);
    free(e2);
}
