/* test_cli_plot.c - `blackhole plot` end to end: every kind rendered to PNG
 * and SVG at the requested size, the notice without gnuplot, output errors
 * (exit 4, nothing left behind), usage and input errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define FIX "tests/fixtures/plot/"

/* The inputs of each kind (relative to the repository root). */
static const char *kinds[][2] = {
    {"interaction", "interaction " FIX "margins.csv --labels " FIX "codebook.csv"},
    {"slopes", "slopes " FIX "margins.csv --labels " FIX "codebook.csv"},
    {"coef", "coef " FIX "fit.csv --omit '(Intercept)' --labels " FIX "codebook.csv"},
    {"describe", "describe tests/fixtures/cli/birthwt.csv --vars age,lwt,bwt --labels " FIX
                 "codebook.csv"},
    {"sim_power", "sim " FIX "sim_power.csv"},
    {"sim_sampling", "sim " FIX "sim_sampling.csv"},
    {"diag_logit", "diagnostics tests/fixtures/cli/birthwt.csv -m 'low ~ age + lwt + "
                   "factor(race) + smoke' --family binomial"},
    {"diag_lm", "diagnostics tests/fixtures/cli/birthwt.csv -m 'bwt ~ age + lwt + "
                "factor(race) + smoke' --vcov hc3"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static int plot(const char *args, char **out, char **err)
{
    size_t n = strlen(args) + strlen(bht_bin()) + 16;
    char *cmd = malloc(n);
    snprintf(cmd, n, "%s plot %s", bht_bin(), args);
    int rc = bht_run(cmd, out, err);
    free(cmd);
    return rc;
}

static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 |
           p[3];
}

/* PNG: signature, then the IHDR chunk with width and height. */
static void check_png(const char *path, unsigned long w, unsigned long h)
{
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "no image %s", path);
    unsigned char b[24];
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    cr_assert_eq(n, 24, "%s too short", path);
    cr_assert(memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0, "%s: not a PNG", path);
    cr_assert(memcmp(b + 12, "IHDR", 4) == 0, "%s: no IHDR", path);
    cr_assert_eq(be32(b + 16), w, "%s width", path);
    cr_assert_eq(be32(b + 20), h, "%s height", path);
}

/* The value of attribute `name` in the <svg ...> root element. */
static double svg_attr(const char *svg, const char *name)
{
    const char *root = strstr(svg, "<svg");
    cr_assert(root, "no <svg> root element");
    const char *end = strchr(root, '>');
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *a = strstr(root, pat);
    cr_assert(a && a < end, "root element has no %s", name);
    return strtod(a + strlen(pat), NULL);
}

static void check_svg(const char *path, double w, double h)
{
    char *s = bht_slurp(path);
    cr_assert(s, "no image %s", path);
    cr_assert(strstr(s, "</svg>"), "%s: incomplete SVG", path);
    cr_assert_eq(svg_attr(s, "width"), w);
    cr_assert_eq(svg_attr(s, "height"), h);
    free(s);
}

Test(cli_plot, every_kind_renders_png_and_svg_at_the_requested_size)
{
    char *dir = bht_tmpdir();
    for (size_t k = 0; k < NKINDS; k++) {
        char args[1024], path[512];
        char *err = NULL;
        snprintf(args, sizeof args, "%s -o %s/%s.gp --render png --width 640 --height 480",
                 kinds[k][1], dir, kinds[k][0]);
        cr_assert_eq(plot(args, NULL, &err), 0, "%s: %s", kinds[k][0], err);
        free(err);
        snprintf(path, sizeof path, "%s/%s.png", dir, kinds[k][0]);
        check_png(path, 640, 480);
        snprintf(args, sizeof args, "%s -o %s/%s.gp --render svg --width 700 --height 500",
                 kinds[k][1], dir, kinds[k][0]);
        cr_assert_eq(plot(args, NULL, &err), 0, "%s: %s", kinds[k][0], err);
        free(err);
        snprintf(path, sizeof path, "%s/%s.svg", dir, kinds[k][0]);
        check_svg(path, 700, 500);
    }
    bht_rmtree(dir);
    free(dir);
}

Test(cli_plot, script_alone_reproduces_the_chart)
{
    char *dir = bht_tmpdir(), args[1024], cmd[1024], *err = NULL;
    snprintf(args, sizeof args, "%s -o %s/c.gp", kinds[1][1], dir);
    cr_assert_eq(plot(args, NULL, &err), 0, "%s", err);
    free(err);
    /* the script names its own image (beside the script path given) */
    snprintf(cmd, sizeof cmd, "gnuplot %s/c.gp", dir);
    cr_assert_eq(bht_run(cmd, NULL, &err), 0, "%s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "%s/c.png", dir);
    check_png(cmd, 900, 600);
    bht_rmtree(dir);
    free(dir);
}

Test(cli_plot, without_gnuplot_the_script_is_written_with_a_notice)
{
    char *dir = bht_tmpdir(), args[4096], path[512], *err = NULL;
    char bin[2048], cwd[1024];
    /* an absolute program path: PATH is emptied for the program only */
    cr_assert(getcwd(cwd, sizeof cwd));
    snprintf(bin, sizeof bin, "/usr/bin/env PATH=/nonexistent %s%s%s plot",
             bht_bin()[0] == '/' ? "" : cwd, bht_bin()[0] == '/' ? "" : "/", bht_bin());
    snprintf(args, sizeof args, "%s %s -o %s/c.gp --render png", bin, kinds[2][1], dir);
    cr_assert_eq(bht_run(args, NULL, &err), 0, "%s", err);
    cr_assert(err && strstr(err, "gnuplot not found"), "notice: %s", err);
    free(err);
    snprintf(path, sizeof path, "%s/c.gp", dir);
    cr_assert_eq(access(path, F_OK), 0, "the script is written");
    snprintf(path, sizeof path, "%s/c.png", dir);
    cr_assert_neq(access(path, F_OK), 0, "no image");
    bht_rmtree(dir);
    free(dir);
}

Test(cli_plot, output_errors_exit_4_and_leave_nothing)
{
    char *dir = bht_tmpdir(), args[1024], path[512], *err = NULL;
    snprintf(path, sizeof path, "%s/file", dir);
    FILE *fp = fopen(path, "w");
    fputs("x\n", fp);
    fclose(fp);
    /* the script's directory is a regular file (fails also as root) */
    snprintf(args, sizeof args, "%s -o %s/file/c.gp --render png", kinds[0][1], dir);
    cr_assert_eq(plot(args, NULL, &err), 4, "%s", err);
    free(err);
    /* the script can be written but the image cannot */
    snprintf(args, sizeof args, "%s -o %s/c.gp --render png --image %s/file/c.png",
             kinds[0][1], dir, dir);
    cr_assert_eq(plot(args, NULL, &err), 4, "%s", err);
    cr_assert(err && strstr(err, "c.png"), "%s", err);
    free(err);
    char cmd[600];
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    bht_run(cmd, &out, NULL);
    cr_assert_str_eq(out, "c.gp\nfile\n", "nothing partial left: %s", out);
    free(out);
    /* a read-only directory (skipped as root, who can write anyway) */
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/ro", dir);
        mkdir(path, 0555);
        snprintf(args, sizeof args, "%s -o %s/ro/c.gp --render png", kinds[0][1], dir);
        cr_assert_eq(plot(args, NULL, &err), 4, "%s", err);
        free(err);
    }
    bht_rmtree(dir);
    free(dir);
}

Test(cli_plot, usage_and_input_errors)
{
    char *err = NULL;
    cr_assert_eq(plot("pie " FIX "fit.csv", NULL, &err), 2);
    cr_assert(strstr(err, "unknown chart kind 'pie'"), "%s", err);
    free(err);
    cr_assert_eq(plot("slopes " FIX "margins.csv --render gif -o x.gp", NULL, &err), 2);
    free(err);
    cr_assert_eq(plot("slopes " FIX "margins.csv --render png", NULL, &err), 2);
    cr_assert(strstr(err, "needs -o"), "%s", err);
    free(err);
    cr_assert_eq(plot("slopes " FIX "nonexistent.csv", NULL, &err), 3);
    free(err);
    cr_assert_eq(plot("slopes " FIX "fit.csv", NULL, &err), 3);
    cr_assert(strstr(err, "no column 'type'"), "%s", err);
    free(err);
    char *out = NULL;
    cr_assert_eq(plot("--help", &out, NULL), 0);
    cr_assert(strstr(out, "replication,n,term,estimate,true"));
    free(out);
}
