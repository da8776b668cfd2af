/* test_cli_replicate.c - generate -> replicate end to end on a small data
 * set, and the errors a user meets first: a column the spec needs that the
 * data lack, and a typo in the spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static int run(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s", bht_bin(), args);
    return bht_run(cmd, out, err);
}

Test(cli_replicate, generate_then_replicate_small_n)
{
    char *dir = bht_tmpdir(), args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "generate --study analysis/sabnis2013.ini --seed 7 --n-reps 150 "
             "--out %s", dir);
    cr_assert_eq(run(args, NULL, &err), 0, "%s", err);
    free(err);
    snprintf(args, sizeof args, "replicate --study analysis/sabnis2013.ini --data-dir %s "
             "--out %s/out --no-render", dir, dir);
    cr_assert_eq(run(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "Replication scorecard"), "%s", out);
    cr_assert(strstr(err, "replicate: fitting dirichlet_full"), "%s", err);
    const char *files[] = {"scorecard.csv", "report.md", "report.html", "table1.md", "table2.tex",
                           "table3.json", "figures/tracking_by_experience.gp",
                           "figures/coefficients.gp", "models/dirichlet_full.csv"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/out/%s", dir, files[k]);
        cr_assert_eq(access(p, F_OK), 0, "missing %s", files[k]);
    }
    char p[1024];
    snprintf(p, sizeof p, "%s/out/scorecard.csv", dir);
    char *sc = bht_slurp(p);
    const char *hdr = "finding,term,model,scale,expected_sign,estimate,conf_low,conf_high,"
                      "p_value,verdict\n";
    cr_assert(sc && strncmp(sc, hdr, strlen(hdr)) == 0, "%s", sc);
    /* one row per published finding, each with one of the three verdicts */
    size_t rows = 0;
    for (char *l = strchr(sc, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        rows++;
        char *e = strchr(l + 1, '\n');
        size_t len = e ? (size_t)(e - l - 1) : strlen(l + 1);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, l + 1);
        cr_assert(strstr(line, ",replicated") || strstr(line, ",not significant") ||
                  strstr(line, ",opposite sign"), "bad verdict: %s", line);
    }
    cr_assert_eq(rows, 11);
    free(sc);
    snprintf(p, sizeof p, "%s/out/report.md", dir);
    char *rep = bht_slurp(p);
    cr_assert(rep && strstr(rep, "SHA-256") && strstr(rep, "## Scorecard"));
    free(rep);
    free(out);
    free(err);
    bht_rmtree(dir);
    free(dir);
}

Test(cli_replicate, missing_columns_are_listed)
{
    char *dir = bht_tmpdir(), args[2048], *err = NULL;
    /* reps without experience and tracking2 */
    snprintf(args, sizeof args, "cut -d, -f1,2,4-9,11- datasets/reps.csv > %s/reps.csv && "
             "cp datasets/leads.csv %s/leads.csv", dir, dir);
    cr_assert_eq(bht_run(args, NULL, NULL), 0);
    snprintf(args, sizeof args, "replicate --data-dir %s --out %s/out --no-render", dir, dir);
    cr_assert_eq(run(args, NULL, &err), 3, "%s", err);
    cr_assert(strstr(err, "experience") && strstr(err, "tracking2"), "%s", err);
    char p[1024];
    snprintf(p, sizeof p, "%s/out/report.md", dir);
    cr_assert_neq(access(p, F_OK), 0, "no report after a data error");
    free(err);
    bht_rmtree(dir);
    free(dir);
}

Test(cli_replicate, spec_typo_names_the_line)
{
    char *dir = bht_tmpdir(), args[2048], *err = NULL;
    snprintf(args, sizeof args, "sed 's/^formula = share_marketing ~ experience/formla = "
             "share_marketing ~ experience/' analysis/sabnis2013.ini > %s/typo.ini", dir);
    cr_assert_eq(bht_run(args, NULL, NULL), 0);
    snprintf(args, sizeof args, "replicate --study %s/typo.ini --out %s/out", dir, dir);
    cr_assert_eq(run(args, NULL, &err), 2, "%s", err);
    cr_assert(strstr(err, "typo.ini:") && strstr(err, "formla") && strstr(err, "did you mean"),
              "%s", err);
    free(err);
    bht_rmtree(dir);
    free(dir);
}
