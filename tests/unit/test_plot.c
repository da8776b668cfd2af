/* test_plot.c - chart scripts: golden scripts per kind, the theme file,
 * gnuplot string escaping and data-block markers (checked by running
 * gnuplot 5.4), histogram bins against R, and rendering failures.
 *
 * Golden scripts (tests/fixtures/plot/NAME.gp) pin the layout; their numbers
 * come from the fixture inputs (provenance in tests/fixtures/plot/README)
 * and are compared to 1e-10 relative (their last digits follow the CPU's
 * BLAS kernels).
 * After a deliberate layout change, rewrite them with
 *   BH_UPDATE_GOLDEN=1 build/tests/run_tests --filter 'plot/golden_*'
 * and review the diff and the rendered charts. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blackhole/csvread.h"
#include "blackhole/model.h"
#include "blackhole/plot.h"
#include "blackhole/render.h"
#include "testutil.h"

#define FIX "tests/fixtures/plot/"

static bh_frame *read_csv(const char *path)
{
    bh_csv_options o;
    bh_csv_default_options(&o);
    bh_frame *f = NULL;
    bh_error err;
    cr_assert_eq(bh_csv_read_path(path, &o, &f, &err), BH_OK, "%s", err.msg);
    return f;
}

static char *chart_text(const bh_chart *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    bh_error err;
    cr_assert_eq(bh_chart_write(c, m, &err), BH_OK, "%s", err.msg);
    fclose(m);
    return buf;
}

/* Does a number start at s (t = the text's start)?  Only after a
 * delimiter, so that names such as x1 stay text. */
static int number_at(const char *t, const char *s)
{
    if (!(*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9')))
        return 0;
    return s == t || strchr(" \t\n,;:=([{<>", s[-1]) != NULL;
}

/* got and want equal, except that numbers may differ by 1e-10 relative
 * (absolute 1e-13 near 0): their last of 15 digits depend on the kernels
 * OpenBLAS picks for the CPU (Haswell vs SkylakeX change some).  *line:
 * the first line that differs. */
static int texts_match(const char *got, const char *want, size_t *line)
{
    const char *g = got, *w = want;
    *line = 1;
    while (*g && *w) {
        if (number_at(got, g) && number_at(want, w)) {
            char *ge, *we;
            double a = strtod(g, &ge), b = strtod(w, &we);
            if (ge > g && we > w) {
                if (!(fabs(a - b) <= 1e-10 * fmax(fabs(a), fabs(b)) + 1e-13))
                    return 0;
                g = ge;
                w = we;
                continue;
            }
        }
        if (*g != *w)
            return 0;
        *line += *g == '\n';
        g++;
        w++;
    }
    return *g == *w;
}

/* Compare with the golden file (or rewrite it when BH_UPDATE_GOLDEN=1). */
static void check_golden(const bh_chart *c, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, FIX "%s.gp", name);
    char *got = chart_text(c);
    const char *upd = getenv("BH_UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        FILE *fp = fopen(path, "w");
        cr_assert(fp);
        fputs(got, fp);
        fclose(fp);
    }
    char *want = bht_slurp(path);
    cr_assert(want, "missing golden %s", path);
    size_t line;
    if (!texts_match(got, want, &line))
        cr_assert_fail("%s differs from the generated script at line %zu", path, line);
    free(got);
    free(want);
}

static bh_plot_labels *codebook(void)
{
    bh_frame *cb = read_csv(FIX "codebook.csv");
    bh_plot_labels *l = NULL;
    bh_error err;
    cr_assert_eq(bh_plot_labels_from_frame(cb, FIX "codebook.csv", &l, &err), BH_OK, "%s",
                 err.msg);
    bh_frame_free(cb);
    return l;
}

static void base_opt(bh_plot_options *o, bh_plot_labels *l)
{
    bh_plot_default_options(o);
    o->labels = l;
    o->output = "chart.png";
    o->vcov_label = "classical";
}

Test(plot, golden_interaction_and_slopes)
{
    bh_frame *m = read_csv(FIX "margins.csv");
    bh_plot_labels *l = codebook();
    bh_plot_options o;
    base_opt(&o, l);
    bh_chart *c = NULL;
    bh_error err;
    cr_assert_eq(bh_plot_interaction(m, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, "interaction");
    bh_chart_free(c);
    cr_assert_eq(bh_plot_slopes(m, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, "slopes");
    bh_chart_free(c);
    /* a model that is not in the file */
    o.model = "nope";
    cr_assert_eq(bh_plot_slopes(m, &o, &c, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "nope"), "%s", err.msg);
    bh_plot_labels_free(l);
    bh_frame_free(m);
}

Test(plot, golden_coef)
{
    bh_frame *f = read_csv(FIX "fit.csv");
    bh_plot_labels *l = codebook();
    bh_plot_options o;
    base_opt(&o, l);
    const char *omit[] = {"(Intercept)", "^firm"};
    o.omit = omit;
    o.nomit = 2;
    o.vcov_label = "HC1";
    bh_chart *c = NULL;
    bh_error err;
    const bh_frame *fits[] = {f};
    cr_assert_eq(bh_plot_coef(fits, 1, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, "coef");
    char *s = chart_text(c);
    cr_assert(!strstr(s, "\nFirm: beta\n"), "^firm must omit the firm dummies");
    cr_assert(strstr(s, "\nPerformance (%% of quota)\n"), "percent doubled in tic labels");
    free(s);
    bh_chart_free(c);
    bh_plot_labels_free(l);
    bh_frame_free(f);
}

Test(plot, golden_describe)
{
    bh_frame *f = read_csv("tests/fixtures/cli/birthwt.csv");
    bh_plot_labels *l = codebook();
    bh_plot_options o;
    base_opt(&o, l);
    const char *vars[] = {"age", "lwt", "bwt"};
    o.vars = vars;
    o.nvars = 3;
    bh_chart *c = NULL;
    bh_error err;
    cr_assert_eq(bh_plot_describe(f, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, "describe");
    bh_chart_free(c);
    const char *bad[] = {"nonexistent"};
    o.vars = bad;
    o.nvars = 1;
    cr_assert_eq(bh_plot_describe(f, &o, &c, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "unknown variable"), "%s", err.msg);
    bh_plot_labels_free(l);
    bh_frame_free(f);
}

Test(plot, golden_sim)
{
    bh_plot_options o;
    base_opt(&o, NULL);
    bh_chart *c = NULL;
    bh_error err;
    bh_frame *p = read_csv(FIX "sim_power.csv");
    cr_assert_eq(bh_plot_sim(p, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, "sim_power");
    bh_chart_free(c);
    bh_frame *s = read_csv(FIX "sim_sampling.csv");
    cr_assert_eq(bh_plot_sim(s, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, "sim_sampling");
    bh_chart_free(c);
    /* neither contract */
    bh_frame *m = read_csv(FIX "codebook.csv");
    cr_assert_eq(bh_plot_sim(m, &o, &c, &err), BH_EINPUT);
    cr_assert(strstr(err.msg, "replication,n,term,estimate,true"), "%s", err.msg);
    bh_frame_free(m);
    bh_frame_free(p);
    bh_frame_free(s);
}

static void diag(const char *formula, bh_family fam, const char *golden)
{
    bh_frame *d = read_csv("tests/fixtures/cli/birthwt.csv");
    bh_model_spec sp;
    bh_model_spec_default(&sp);
    sp.formula = formula;
    sp.family = fam;
    bh_model *m = NULL;
    bh_error err;
    cr_assert_eq(bh_model_fit(d, &sp, &m, &err), BH_OK, "%s", err.msg);
    bh_plot_labels *l = codebook();
    bh_plot_options o;
    base_opt(&o, l);
    bh_chart *c = NULL;
    cr_assert_eq(bh_plot_diagnostics(m, &o, &c, &err), BH_OK, "%s", err.msg);
    check_golden(c, golden);
    bh_chart_free(c);
    bh_plot_labels_free(l);
    bh_model_free(m);
    bh_frame_free(d);
}

Test(plot, golden_diagnostics)
{
    diag("low ~ age + lwt + factor(race) + smoke", BH_FAM_BINOMIAL, "diagnostics_logit");
    diag("bwt ~ age + lwt + factor(race) + smoke", BH_FAM_GAUSSIAN, "diagnostics_lm");
}

/* Reference: R 4.2.2 rstandard(lm(bwt ~ age + lwt + factor(race) + smoke,
 * MASS::birthwt)) sorted: min -3.3973... and max 2.7089... are the Q-Q
 * end points; qqnorm's ppoints(189) end points are qnorm(0.5/189). */
Test(plot, qq_points_against_r)
{
    bht_fixture *fx = bht_fixture_read(FIX "qq_ref.csv");
    char *g = bht_slurp(FIX "diagnostics_lm.gp");
    cr_assert(g);
    char *blk = strstr(g, "$qq");
    cr_assert(blk);
    blk = strstr(blk, "\n# theoretical standardised\n");
    cr_assert(blk);
    blk += strlen("\n# theoretical standardised\n");
    double t0, s0;
    cr_assert_eq(sscanf(blk, "%lf %lf", &t0, &s0), 2);
    bht_assert_rel(t0, bht_fixture_num(fx, 0, "theoretical"), 1e-12);
    bht_assert_rel(s0, bht_fixture_num(fx, 0, "standardised"), 1e-9);
    bht_fixture_free(fx);
    free(g);
}

Test(plot, theme_file_matches_inlined_theme)
{
    char *t = bht_slurp("plots/theme.gp");
    cr_assert(t, "plots/theme.gp missing");
    cr_assert_str_eq(t, bh_plot_theme());
    free(t);
}

Test(plot, term_labels)
{
    bh_plot_labels *l = codebook();
    const char *cases[][2] = {
        {"experience", "Experience (years)"},
        {"experience:lead_volume", "Experience (years) \xc3\x97 Lead volume (leads/month)"},
        {"firmbeta", "Firm: beta"},
        {"factor(race)2", "race: 2"},
        {"center(experience)", "Experience (years) (centred)"},
        {"log(lead_volume)", "log(Lead volume (leads/month))"},
        {"unknown_term", "unknown_term"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *s = bh_plot_term_label(l, cases[k][0]);
        cr_assert_str_eq(s, cases[k][1]);
        free(s);
    }
    bh_plot_labels_free(l);
}

/* R 4.2.2: nclass.FD(1:100) = 5; nclass.Sturges(1:100) = 8, used when the
 * IQR is 0: nclass.FD(c(rep(0, 99), 10)) falls back in this module (R
 * returns 1 there; we prefer Sturges' 8 so a spike does not hide the rest). */
Test(plot, histogram_bins)
{
    double x[100];
    for (int i = 0; i < 100; i++)
        x[i] = i + 1;
    double lo, w;
    size_t *cnt, nb;
    bh_error err;
    cr_assert_eq(bh_plot_histogram(x, 100, 0, &lo, &w, &cnt, &nb, &err), BH_OK);
    cr_assert_eq(nb, 5);
    bht_assert_rel(lo, 1, 1e-15);
    bht_assert_rel(w, 99.0 / 5, 1e-15);
    size_t tot = 0;
    for (size_t k = 0; k < nb; k++)
        tot += cnt[k];
    cr_assert_eq(tot, 100);
    cr_assert_eq(cnt[4], 20, "the maximum belongs to the last, closed bin");
    free(cnt);
    for (int i = 0; i < 100; i++)
        x[i] = i == 99 ? 10 : 0;
    cr_assert_eq(bh_plot_histogram(x, 100, 0, &lo, &w, &cnt, &nb, &err), BH_OK);
    cr_assert_eq(nb, 8);
    free(cnt);
    x[0] = NAN;
    cr_assert_eq(bh_plot_histogram(x, 1, 0, &lo, &w, &cnt, &nb, &err), BH_EDATA);
}

/* Run gnuplot on `script` in `dir`; returns its exit status, stderr in *err. */
static int gnuplot_in(const char *dir, const char *script, char **err)
{
    char path[512], cmd[1200];
    snprintf(path, sizeof path, "%s/t.gp", dir);
    FILE *fp = fopen(path, "w");
    cr_assert(fp);
    fputs(script, fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot t.gp", dir);
    return bht_run(cmd, NULL, err);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Hostile names as column names (describe), model names, terms and
 * codebook labels (coef): gnuplot renders the script, and nothing runs. */
static const char *hostile_csv =
    "\"x\"\"; system(\"\"touch pwned1\"\"); \"\"\",`touch pwned2`,\"x'; system('touch pwned3'); '\","
    "\"it''s \\' back\\slash `touch pwned4` @bh_term\",\"a_b^c@d&e{f} %s %%\"\n"
    "1,2,3,4,5\n2,1,4,3,7\n3,5,1,2,2\n4,4,4,1,9\n";

static const char *hostile_fit =
    "model,component,term,estimate,std_error,statistic,p_value,conf_low,conf_high\n"
    "\"m'; system('touch pwned5'); '\",,\"`touch pwned6`\",1,0.5,2,0.05,0.1,1.9\n"
    "\"m'; system('touch pwned5'); '\",,\"t\\'\"\"; system(\"\"touch pwned7\"\")\",-1,0.5,-2,0.05,-1.9,-0.1\n"
    "\"@bh_output\",,\"EOD\",0.5,0.5,1,0.3,-0.5,1.5\n";

static const char *hostile_codebook =
    "column,label\n\"`touch pwned6`\",\"lab\\' `touch pwned8` @bh_term %s\"\n";

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    cr_assert(fp);
    fputs(text, fp);
    fclose(fp);
}

static void render_in(const char *dir, const bh_chart *c)
{
    char *s = chart_text(c), *err = NULL, cmd[800];
    write_file(dir, "t.gp", s);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && gnuplot -e \"bh_term='svg'; bh_output='o.svg'\" t.gp", dir);
    cr_assert_eq(bht_run(cmd, NULL, &err), 0, "gnuplot failed: %s", err);
    free(err);
    free(s);
}

Test(plot, hostile_strings_execute_nothing)
{
    char *dir = bht_tmpdir();
    write_file(dir, "h.csv", hostile_csv);
    write_file(dir, "f.csv", hostile_fit);
    write_file(dir, "c.csv", hostile_codebook);
    char p[512];
    snprintf(p, sizeof p, "%s/h.csv", dir);
    bh_frame *h = read_csv(p);
    snprintf(p, sizeof p, "%s/f.csv", dir);
    bh_frame *f = read_csv(p);
    snprintf(p, sizeof p, "%s/c.csv", dir);
    bh_frame *cbf = read_csv(p);
    bh_plot_labels *l = NULL;
    bh_error err;
    cr_assert_eq(bh_plot_labels_from_frame(cbf, p, &l, &err), BH_OK, "%s", err.msg);
    bh_plot_options o;
    base_opt(&o, l);
    o.title = "title `touch pwned9` @bh_term\nsecond line";
    o.vcov_label = "v'; system('touch pwned10'); '";
    bh_chart *c = NULL;
    cr_assert_eq(bh_plot_describe(h, &o, &c, &err), BH_OK, "%s", err.msg);
    render_in(dir, c);
    char *svg = NULL;
    snprintf(p, sizeof p, "%s/o.svg", dir);
    svg = bht_slurp(p);
    cr_assert(svg && strstr(svg, "touch pwned2"), "the names are drawn as text");
    cr_assert(strstr(svg, "a_b^c@d&amp;e{f} %s %%"), "no enhanced-text markup");
    free(svg);
    bh_chart_free(c);
    const bh_frame *fits[] = {f};
    cr_assert_eq(bh_plot_coef(fits, 1, &o, &c, &err), BH_OK, "%s", err.msg);
    render_in(dir, c);
    bh_chart_free(c);
    /* only the inputs, the script and the image: no command ran */
    cr_assert_eq(count_entries(dir), 5);
    bh_plot_labels_free(l);
    bh_frame_free(h);
    bh_frame_free(f);
    bh_frame_free(cbf);
    bht_rmtree(dir);
    free(dir);
}

Test(plot, datablock_marker_cannot_be_forged)
{
    const char *lines[] = {"1 2", "EOD", "BH_END_d", "BH_END_d_1", "3 4", "EOD_1"};
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    bh_plot_write_datablock(m, "d", lines, 6);
    fputs("print |$d|\n", m);
    fclose(m);
    cr_assert(strstr(buf, "$d << BH_END_d_2\n"), "%s", buf);
    char *dir = bht_tmpdir(), *err = NULL;
    cr_assert_eq(gnuplot_in(dir, buf, &err), 0, "%s", err);
    cr_assert_str_eq(err, "6\n");
    free(err);
    free(buf);
    bht_rmtree(dir);
    free(dir);
}

Test(plot, render_failure_reports_gnuplot_and_leaves_nothing)
{
    char *gp = bh_render_find("gnuplot", NULL);
    cr_assert(gp, "gnuplot must be installed for the tests (gnuplot-nox)");
    char *dir = bht_tmpdir();
    char script[512], image[512];
    snprintf(script, sizeof script, "%s/bad.gp", dir);
    snprintf(image, sizeof image, "%s/bad.png", dir);
    FILE *fp = fopen(script, "w");
    fputs("set terminal bh_term size bh_width,bh_height\nset output bh_output\n"
          "plot nosuchfunction(x)\n", fp);
    fclose(fp);
    bh_error err;
    cr_assert_eq(bh_render_run(gp, script, BH_RENDER_PNG, 300, 200, image, &err), BH_EOUTPUT);
    cr_assert(strstr(err.msg, "undefined function"), "gnuplot's message: %s", err.msg);
    cr_assert_eq(count_entries(dir), 1, "no image and no temporary file may be left");
    /* an image path under a regular file cannot be created (also as root) */
    snprintf(image, sizeof image, "%s/bad.gp/x.png", dir);
    cr_assert_eq(bh_render_run(gp, script, BH_RENDER_PNG, 300, 200, image, &err), BH_EOUTPUT);
    cr_assert(strstr(err.msg, "Not a directory"), "%s", err.msg);
    cr_assert_null(bh_render_find("gnuplot", "/nonexistent:/also/not"));
    free(gp);
    bht_rmtree(dir);
    free(dir);
}
