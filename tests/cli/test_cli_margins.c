/* test_cli_margins.c - `blackhole margins` end to end against R
 * (tests/fixtures/r/margins_reference.R states the method and versions;
 * data from tests/fixtures/r/margins_data.R). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#define HEADER "model,type,term,at,estimate,std_error,statistic,p_value,conf_low,conf_high"
#define BW "tests/fixtures/margins/birthwt.csv -m 'low ~ age * lwt + factor(race) + smoke' " \
           "--family binomial"
#define MT "tests/fixtures/margins/mtcars.csv"
#define GEN "tests/fixtures/margins/gen.csv"

static int run(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s margins %s", bht_bin(), args);
    return bht_run(cmd, out, err);
}

/* Split CSV output into lines of cells (no quoted commas in these cases). */
typedef struct {
    size_t n;
    char *cell[64][10];
} rows_t;

static void parse_csv(char *out, rows_t *r)
{
    r->n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line && r->n < 64;
         line = strtok_r(NULL, "\n", &save)) {
        size_t k = 0;
        char *p = line;
        while (k < 10) {
            r->cell[r->n][k++] = p;
            char *c = strchr(p, ',');
            if (!c)
                break;
            *c = '\0';
            p = c + 1;
        }
        cr_assert_eq(k, 10, "row with %zu cells", k);
        r->n++;
    }
}

/* "a=1.5;b=x" against the fixture's: same names and levels, numbers to rtol. */
static void check_at(const char *got, const char *want, double rtol, const char *ctx)
{
    char g[512], w[512];
    snprintf(g, sizeof g, "%s", got);
    snprintf(w, sizeof w, "%s", want);
    char *sg = NULL, *sw = NULL;
    char *pg = strtok_r(g, ";", &sg), *pw = strtok_r(w, ";", &sw);
    while (pg || pw) {
        cr_assert(pg && pw, "%s: at '%s' vs '%s'", ctx, got, want);
        char *eg = strchr(pg, '='), *ew = strchr(pw, '=');
        cr_assert(eg && ew && eg - pg == ew - pw && strncmp(pg, pw, (size_t)(eg - pg)) == 0,
                  "%s: at '%s' vs '%s'", ctx, got, want);
        char *end;
        double vw = strtod(ew + 1, &end);
        if (*end)
            cr_assert_str_eq(eg + 1, ew + 1, "%s", ctx);
        else
            bht_assert_rel(strtod(eg + 1, NULL), vw, rtol, "%s at", ctx);
        pg = strtok_r(NULL, ";", &sg);
        pw = strtok_r(NULL, ";", &sw);
    }
}

static void check_case(const char *casename, const char *args, double rtol)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/margins/margins_ref.csv");
    char full[2048];
    snprintf(full, sizeof full, "%s --format csv", args);
    char *out = NULL, *err = NULL;
    int rc = run(full, &out, &err);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", casename, rc, err);
    cr_assert(strncmp(out, HEADER "\n", strlen(HEADER) + 1) == 0, "%s: header:\n%s", casename, out);
    rows_t r;
    parse_csv(out, &r);
    size_t k = 1;   /* skip the header */
    for (size_t i = 0; i < fx->nrow; i++) {
        if (strcmp(bht_fixture_str(fx, i, "case"), casename) != 0)
            continue;
        cr_assert_lt(k, r.n, "%s: fewer rows than the reference (%zu)", casename, k);
        const char *type = bht_fixture_str(fx, i, "type");
        const char *term = bht_fixture_str(fx, i, "term");
        cr_assert_str_eq(r.cell[k][0], "(1)");
        cr_assert_str_eq(r.cell[k][1], type, "%s row %zu", casename, k);
        cr_assert_str_eq(r.cell[k][2], term, "%s row %zu", casename, k);
        char ctx[256];
        snprintf(ctx, sizeof ctx, "%s %s %s %s", casename, type, term, r.cell[k][3]);
        /* settings to 1e-9; a jn boundary is an estimate (rtol) */
        check_at(r.cell[k][3], bht_fixture_str(fx, i, "at"), strcmp(type, "jn") ? 1e-9 : rtol, ctx);
        bht_assert_rel(strtod(r.cell[k][4], NULL), bht_fixture_num(fx, i, "estimate"), rtol, "%s", ctx);
        if (strcmp(type, "jn") != 0)
            bht_assert_rel(strtod(r.cell[k][5], NULL), bht_fixture_num(fx, i, "std_error"), rtol,
                           "%s se", ctx);
        else
            cr_assert_str_eq(r.cell[k][5], "NA", "%s", ctx);
        k++;
    }
    cr_assert_gt(k, 1, "no reference rows for %s", casename);
    cr_assert_eq(k, r.n, "%s: %zu rows, reference has %zu:\n%s", casename, r.n - 1, k - 1, out);
    free(out);
    free(err);
    bht_fixture_free(fx);
}

Test(cli_margins, logit_ame_and_interaction)
{
    check_case("bw_ame", BW " --dydx age,lwt,race,smoke --interaction age:lwt", 1e-6);
}

Test(cli_margins, logit_discrete_and_mixed)
{
    check_case("bw_discrete", BW " --dydx smoke --discrete --interaction age:smoke "
                              "--interaction race:smoke", 1e-6);
}

Test(cli_margins, logit_simple_slopes_predictions)
{
    check_case("bw_at", BW " --dydx age --at 'lwt=mean-sd,mean,mean+sd' --predict "
                       "--interaction age:lwt", 1e-6);
}

Test(cli_margins, logit_grid_of_two)
{
    check_case("bw_at2", BW " --dydx age --at 'lwt=p25,p75' --at 'race=1,3'", 1e-6);
}

Test(cli_margins, logit_at_means)
{
    check_case("bw_mem", BW " --dydx age,smoke --atmeans", 1e-6);
}

Test(cli_margins, logit_hc1)
{
    check_case("bw_hc1", BW " --vcov hc1 --dydx age,race", 1e-6);
}

Test(cli_margins, lm_ame_interaction_jn_exact)
{
    check_case("mt_lm", MT " -m 'mpg ~ wt * hp' --dydx wt,hp --interaction wt:hp --jn wt:hp", 1e-6);
}

Test(cli_margins, lm_slopes_emtrends)
{
    check_case("mt_lm_slope", MT " -m 'mpg ~ wt * hp' --dydx wt --at hp=100,150,200", 1e-9);
}

Test(cli_margins, lm_log_and_square_jn_numeric)
{
    check_case("mt_lm2", MT " -m 'mpg ~ wt * log(hp) + I(wt^2)' --dydx wt,hp --interaction wt:hp "
                        "--jn wt:hp", 1e-6);
}

Test(cli_margins, probit)
{
    check_case("mt_probit", MT " -m 'vs ~ mpg * wt' --family binomial --link probit --dydx mpg,wt "
                           "--interaction mpg:wt --jn mpg:wt", 1e-6);
}

Test(cli_margins, centred_logit_jn)
{
    check_case("gen_logit", GEN " -m 'y ~ center(x) * center(z) + d' --family binomial "
                           "--dydx x,z,d --interaction x:z --jn x:z", 1e-6);
}

Test(cli_margins, poisson)
{
    check_case("gen_poisson", GEN " -m 'count ~ center(x) * center(z) + d' --family poisson "
                             "--dydx x,z,d --discrete --interaction x:z --interaction x:d", 1e-6);
}

Test(cli_margins, cloglog_slopes)
{
    check_case("gen_cloglog", GEN " -m 'y ~ center(x) * center(z) + d' --family binomial --link "
                             "cloglog --dydx x --at 'z=mean-sd,mean+sd' --interaction x:z", 1e-6);
}

Test(cli_margins, per_row_interactions)
{
    char *dir = bht_tmpdir();
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/obs.csv", dir);
    snprintf(args, sizeof args, BW " --interaction age:lwt --write-obs %s --format csv", path);
    char *out = NULL, *err = NULL;
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    char *txt = bht_slurp(path);
    cr_assert(txt);
    cr_assert(strncmp(txt, "term,at,row,estimate,std_error\n", 31) == 0);
    bht_fixture *fx = bht_fixture_read("tests/fixtures/margins/obs_ref.csv");
    for (size_t i = 0; i < fx->nrow; i++) {
        char key[64];
        snprintf(key, sizeof key, "\nage:lwt,,%s,", bht_fixture_str(fx, i, "row"));
        char *p = strstr(txt, key);
        cr_assert(p, "row %s missing", bht_fixture_str(fx, i, "row"));
        p += strlen(key);
        double est = strtod(p, &p), se = strtod(p + 1, NULL);
        bht_assert_rel(est, bht_fixture_num(fx, i, "estimate"), 1e-6, "row %zu", i);
        bht_assert_rel(se, bht_fixture_num(fx, i, "std_error"), 1e-6, "row %zu se", i);
    }
    /* 189 rows + header */
    size_t lines = 0;
    for (char *c = txt; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 190);
    bht_fixture_free(fx);
    free(txt);
    free(out);
    free(err);
    bht_rmtree(dir);
    free(dir);
}

Test(cli_margins, jn_band_and_json)
{
    char *dir = bht_tmpdir();
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/band.csv", dir);
    snprintf(args, sizeof args, MT " -m 'mpg ~ wt * hp' --jn wt:hp --jn-points 11 --write-band %s "
             "--format json", path);
    char *out = NULL, *err = NULL;
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "\"jn_bands\""));
    cr_assert(strstr(out, "\"in_range\": true"));
    cr_assert(strstr(out, "\"in_range\": false"));
    char *txt = bht_slurp(path);
    cr_assert(txt);
    cr_assert(strncmp(txt, "term,moderator,value,estimate,std_error,conf_low,conf_high,significant\n",
                      71) == 0);
    /* first band point: hp = min(hp) = 52; effect b_wt + b_int * 52 (R: coef(lm)) */
    cr_assert(strstr(txt, "\nwt,hp,52,"));
    free(txt);
    free(out);
    free(err);
    bht_rmtree(dir);
    free(dir);
}

Test(cli_margins, text_table_notes)
{
    char *out = NULL, *err = NULL;
    int rc = run(MT " -m 'mpg ~ wt * hp' --dydx wt --jn wt:hp --vcov hc3", &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "HC3"), "%s", out);
    cr_assert(strstr(out, "Johnson-Neyman"), "%s", out);
    cr_assert(strstr(out, "(within"), "%s", out);
    free(out);
    free(err);
}

static void expect_usage(const char *args, const char *needle)
{
    char *out = NULL, *err = NULL;
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 2, "exit %d for %s: %s", rc, args, err);
    cr_assert(strstr(err, needle), "message for %s lacks '%s': %s", args, needle, err);
    free(out);
    free(err);
}

Test(cli_margins, errors)
{
    expect_usage(BW " --dydx agee", "did you mean 'age'");
    expect_usage(BW " --dydx ptl", "unknown variable 'ptl'");
    expect_usage(BW " --dydx low", "not a predictor");
    expect_usage(BW " --at 'lwt=mean-sdd'", "column 10");
    expect_usage(BW " --at 'lwt=mean-sdd'", "unknown name 'sdd'");
    expect_usage(BW " --at 'lwt=1,,2'", "missing value");
    expect_usage(BW " --at 'lwt'", "expected VARIABLE=VALUES");
    expect_usage(BW " --at 'race=4'", "not a level");
    expect_usage(BW " --jn age:race", "is a factor");
    expect_usage(BW " --jn age", "expected two variables");
    expect_usage(BW " --interaction age:lwtt", "did you mean 'lwt'");
    expect_usage(BW " --interaction age:age", "must differ");
    expect_usage(BW " --write-obs /tmp/x.csv", "add --interaction");
}

Test(cli_margins, atomic_output_on_error)
{
    char *dir = bht_tmpdir();
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/out.csv", dir);
    snprintf(args, sizeof args, BW " --dydx nosuch -o %s", path);
    int rc = run(args, NULL, NULL);
    cr_assert_eq(rc, 2);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "output file created despite the error");
    bht_rmtree(dir);
    free(dir);
}

Test(cli_margins, header_contract)
{
    char *out = NULL, *err = NULL;
    int rc = run(BW " --dydx age --format csv", &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strncmp(out, HEADER "\n", strlen(HEADER) + 1) == 0, "%s", out);
    free(out);
    free(err);
}
