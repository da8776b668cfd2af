/* test_cli_generate.c - `blackhole generate` end to end: the three files,
 * bit-for-bit reproducibility (also of the shipped datasets/ files from the
 * command stated in datasets/README.md), exit codes, and no partial output
 * on failure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static int run(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s generate %s", bht_bin(), args);
    return bht_run(cmd, out, err);
}

static char *file_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static const char *files[] = {"reps.csv", "leads.csv", "codebook.csv"};

Test(cli_generate, three_files_identical_bytes)
{
    char *a = bht_tmpdir(), *b = bht_tmpdir();
    char args[1024], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "--study analysis/sabnis2013.ini --seed 99 --out %s", a);
    cr_assert_eq(run(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "seed 99") != NULL, "%s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "--study analysis/sabnis2013.ini --seed 99 --out %s", b);
    cr_assert_eq(run(args, NULL, NULL), 0);
    cr_assert_eq(count_entries(a), 3);
    for (size_t k = 0; k < 3; k++) {
        char *pa = file_in(a, files[k]), *pb = file_in(b, files[k]);
        char *x = bht_slurp(pa), *y = bht_slurp(pb);
        cr_assert_not_null(x, "%s", pa);
        cr_assert_not_null(y, "%s", pb);
        cr_assert_str_eq(x, y, "%s differs between runs", files[k]);
        free(x);
        free(y);
        free(pa);
        free(pb);
    }
    bht_rmtree(a);
    bht_rmtree(b);
    free(a);
    free(b);
}

/* The shipped data are what datasets/README.md says reproduces them. */
Test(cli_generate, shipped_files_reproduce)
{
    char *a = bht_tmpdir();
    char args[1024];
    snprintf(args, sizeof args, "--study analysis/sabnis2013.ini --seed 20130101 --out %s", a);
    cr_assert_eq(run(args, NULL, NULL), 0);
    for (size_t k = 0; k < 3; k++) {
        char *pa = file_in(a, files[k]), *ps = file_in("datasets", files[k]);
        char *x = bht_slurp(pa), *y = bht_slurp(ps);
        cr_assert_not_null(y, "%s", ps);
        cr_assert_str_eq(x, y, "%s is not what the stated command generates", ps);
        free(x);
        free(y);
        free(pa);
        free(ps);
    }
    bht_rmtree(a);
    free(a);
}

Test(cli_generate, options_change_the_data)
{
    char *a = bht_tmpdir();
    char args[1024];
    snprintf(args, sizeof args,
             "--study analysis/sabnis2013.ini --seed 5 --index 2 --n-reps 40 --effect-scale 0.5 "
             "--out %s", a);
    cr_assert_eq(run(args, NULL, NULL), 0);
    char *p = file_in(a, "reps.csv");
    char *x = bht_slurp(p);
    size_t lines = 0;
    for (char *c = x; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 41);  /* header + 40 reps */
    free(x);
    free(p);
    bht_rmtree(a);
    free(a);
}

Test(cli_generate, bad_spec_exit_2)
{
    char *err = NULL;
    int rc = run("--study tests/fixtures/study/typo_key.ini --out /tmp", NULL, &err);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "typo_key.ini:12:") != NULL, "%s", err);
    cr_assert(strstr(err, "did you mean 'formula'") != NULL, "%s", err);
    free(err);
}

Test(cli_generate, usage_errors_exit_2)
{
    cr_assert_eq(run("--out /tmp", NULL, NULL), 2);
    cr_assert_eq(run("--study analysis/sabnis2013.ini --out /tmp --seed -1", NULL, NULL), 2);
    cr_assert_eq(run("--study analysis/sabnis2013.ini --out /tmp --n-reps 0", NULL, NULL), 2);
    cr_assert_eq(run("--help", NULL, NULL), 0);
}

Test(cli_generate, unwritable_out_exit_4_no_files)
{
    char *err = NULL;
    int rc = run("--study analysis/sabnis2013.ini --out /nonexistent/dir", NULL, &err);
    cr_assert_eq(rc, 4, "exit %d: %s", rc, err);
    free(err);
    /* the second file cannot be created: the first must not appear either */
    char *a = bht_tmpdir();
    char *blocker = file_in(a, "leads.csv");
    cr_assert_eq(mkdir(blocker, 0755), 0);
    char args[1024];
    snprintf(args, sizeof args, "--study analysis/sabnis2013.ini --out %s", a);
    rc = run(args, NULL, &err);
    cr_assert_eq(rc, 4, "exit %d: %s", rc, err);
    cr_assert_eq(count_entries(a), 1, "partial or temporary files left in %s", a);
    free(err);
    rmdir(blocker);
    free(blocker);
    bht_rmtree(a);
    free(a);
}
