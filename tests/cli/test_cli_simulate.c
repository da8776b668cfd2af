/* test_cli_simulate.c - `blackhole simulate` end to end: thread counts give
 * identical files, an interrupted run (test hook BH_SIMULATE_STOP_AFTER)
 * resumed equals an uninterrupted one, shards merged equal one run, exit
 * codes, and the MPI driver (tests/mpi/run_mpi_test.sh; skipped without
 * mpicc/mpirun).  Also `blackhole policy` (shares sum to the total, seeded
 * draws reproducible). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

void bht_rmtree(const char *dir);

#define BASE "--study analysis/sabnis2013.ini --models ols --n 50,100 --reps 6 --truth-n 2000 -q"

static int sim(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s simulate %s", bht_bin(), args);
    return bht_run(cmd, out, err);
}

static const char *const FILES[] = {"simulate.cfg", "truth.csv", "replications.csv",
                                    "summary.csv", "power.csv", "sampling.csv"};

static void same_dirs(const char *a, const char *b)
{
    for (size_t k = 0; k < sizeof FILES / sizeof FILES[0]; k++) {
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/%s", a, FILES[k]);
        snprintf(pb, sizeof pb, "%s/%s", b, FILES[k]);
        char *ta = bht_slurp(pa), *tb = bht_slurp(pb);
        cr_assert_not_null(ta, "%s missing", pa);
        cr_assert_not_null(tb, "%s missing", pb);
        cr_assert(strcmp(ta, tb) == 0, "%s differs", FILES[k]);
        free(ta);
        free(tb);
    }
}

Test(cli_simulate, threads_resume_shards)
{
    char *d = bht_tmpdir();
    char args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, BASE " --threads 1 --out %s/t1", d);
    cr_assert_eq(sim(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "12 of 12 replications complete") != NULL, "%s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, BASE " --threads 2 --out %s/t2", d);
    cr_assert_eq(sim(args, NULL, NULL), 0);
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/t1", d);
    snprintf(b, sizeof b, "%s/t2", d);
    same_dirs(a, b);

    /* interrupted after 4 replications (exit 1), then resumed */
    snprintf(args, sizeof args, "BH_SIMULATE_STOP_AFTER=4 %s simulate " BASE " --out %s/r",
             bht_bin(), d);
    cr_assert_eq(bht_run(args, NULL, &err), 1);
    cr_assert(strstr(err, "--resume") != NULL, "%s", err);
    free(err);
    snprintf(args, sizeof args, BASE " --threads 2 --resume --out %s/r", d);
    cr_assert_eq(sim(args, NULL, NULL), 0);
    snprintf(b, sizeof b, "%s/r", d);
    same_dirs(a, b);

    /* two shards, merged */
    for (int k = 1; k <= 2; k++) {
        snprintf(args, sizeof args, BASE " --shard %d/2 --out %s/s%d", k, d, k);
        cr_assert_eq(sim(args, &out, NULL), 0);
        cr_assert(strstr(out, "shard") != NULL, "%s", out);
        free(out);
    }
    snprintf(args, sizeof args, "--merge %s/s2 %s/s1 --out %s/m -q", d, d, d);
    cr_assert_eq(sim(args, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    snprintf(b, sizeof b, "%s/m", d);
    same_dirs(a, b);
    bht_rmtree(d);
    free(d);
}

/* Issue #8: "no allocation per replication in the hot loop".  The five
 * models of the study (unit and lead level; GLM, least squares, Dirichlet,
 * GLMM) run 30 and then 90 replications on one thread under the counter
 * of tests/alloc_count.c (LD_PRELOAD): the 60 more replications may only
 * add the few allocations of buffers that grow to a data set larger than
 * any before (the lead count is drawn), not one per replication (before
 * the workspaces: ~11,000 per replication).  Skipped in sanitizer builds,
 * whose allocator the counter cannot wrap. */
static long allocations(const char *so, const char *dir, int reps)
{
    char out[1100], args[2048], cmd[4096];
    snprintf(out, sizeof out, "%s/count.txt", dir);
    snprintf(args, sizeof args,
             "--study analysis/sabnis2013.ini --n 200 --reps %d --truth-n 500 --threads 1 "
             "--out %s/run%d -q", reps, dir, reps);
    snprintf(cmd, sizeof cmd, "LD_PRELOAD=%s BH_ALLOC_OUT=%s %s simulate %s", so, out, bht_bin(),
             args);
    remove(out);
    cr_assert_eq(bht_run(cmd, NULL, NULL), 0, "%s", cmd);
    char *t = bht_slurp(out);
    cr_assert_not_null(t, "the counter wrote nothing (%s)", out);
    long n = -1;
    /* the last process's line (a re-executing CLI writes none before) */
    for (const char *p = t; (p = strstr(p, "allocations ")) != NULL; p++)
        n = strtol(p + 12, NULL, 10);
    free(t);
    cr_assert_geq(n, 0);
    return n;
}

Test(cli_simulate, replications_allocate_nothing, .timeout = 180)
{
    const char *so = getenv("BH_ALLOC_SO");
    if (!so || !*so)
        cr_skip_test("no allocation counter in this build (sanitizers)");
    char *dir = bht_tmpdir();
    long a = allocations(so, dir, 30), b = allocations(so, dir, 90);
    cr_assert(b - a < 60, "60 more replications made %ld more allocations (%ld for 30, %ld for "
              "90): some allocation happens per replication", b - a, a, b);
    bht_rmtree(dir);
    free(dir);
}

Test(cli_simulate, table_and_usage_errors)
{
    char *d = bht_tmpdir();
    char args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args,
             "--study analysis/sabnis2013.ini --models fractional --n 100 --reps 3 --truth-n 2000 "
             "--out %s/a 2>/dev/null",
             d);
    cr_assert_eq(sim(args, &out, NULL), 0);
    /* the table names findings with plain terms */
    cr_assert(strstr(out, "F4") && strstr(out, "experience:prequal"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "--study analysis/sabnis2013.ini --models nosuch --out %s/b", d);
    cr_assert_eq(sim(args, NULL, &err), 2);
    cr_assert(strstr(err, "nosuch") != NULL, "%s", err);
    free(err);
    snprintf(args, sizeof args, "--study analysis/sabnis2013.ini --shard 3/2 --out %s/b", d);
    cr_assert_eq(sim(args, NULL, &err), 2);
    free(err);
    cr_assert_eq(sim("--out x", NULL, NULL), 2);
    cr_assert_eq(sim("--help", &out, NULL), 0);
    cr_assert(strstr(out, "--resume") != NULL);
    free(out);
    /* merging a directory that is not a simulate output */
    snprintf(args, sizeof args, "--merge %s --out %s/m", d, d);
    cr_assert_eq(sim(args, NULL, NULL), 3);
    bht_rmtree(d);
    free(d);
}

Test(cli_simulate, mpi_matches_threads, .timeout = 300)
{
    if (system("command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1") != 0)
        cr_skip_test("mpicc/mpirun not installed (make deps installs them)");
    char cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "BH_BIN=%s sh tests/mpi/run_mpi_test.sh", bht_bin());
    int rc = bht_run(cmd, &out, &err);
    if (rc == 77)
        cr_skip_test("MPI not available");
    cr_assert_eq(rc, 0, "%s\n%s", out, err);
    free(out);
    free(err);
}

/* policy: every policy distributes exactly the observed total over the same
 * reps, within the cap; the same seed gives the same bytes. */
Test(cli_policy, shares_sum_and_seeded_draws, .timeout = 120)
{
    char *d = bht_tmpdir();
    char cmd[2048], *out = NULL, *err = NULL;
    for (int k = 1; k <= 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "%s policy --study analysis/sabnis2013.ini --draws 50 --seed 7 --out %s/p%d",
                 bht_bin(), d, k);
        cr_assert_eq(bht_run(cmd, &out, &err), 0, "%s", err);
        cr_assert(strstr(out, "greedy") && strstr(out, "novices"), "%s", out);
        free(out);
        free(err);
    }
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/p1/policy.csv", d);
    snprintf(b, sizeof b, "%s/p2/policy.csv", d);
    char *ta = bht_slurp(a), *tb = bht_slurp(b);
    cr_assert(ta && tb && strcmp(ta, tb) == 0, "seeded draws must reproduce");
    free(ta);
    free(tb);
    snprintf(a, sizeof a, "%s/p1/allocation.csv", d);
    bht_fixture *fx = bht_fixture_read(a);
    const char *pol[5] = {"leads_observed", "leads_even", "leads_novices", "leads_performance",
                          "leads_greedy"};
    double sum[5] = {0}, mx[5] = {0};
    for (size_t i = 0; i < fx->nrow; i++)
        for (int q = 0; q < 5; q++) {
            double v = bht_fixture_num(fx, i, pol[q]);
            cr_assert(v >= 0 && v == floor(v), "whole leads");
            sum[q] += v;
            mx[q] = v > mx[q] ? v : mx[q];
        }
    for (int q = 1; q < 5; q++) {
        cr_assert_eq(sum[q], sum[0], "%s distributes %g leads, observed %g", pol[q], sum[q],
                     sum[0]);
        cr_assert_leq(mx[q], ceil(2 * sum[0] / (double)fx->nrow), "%s exceeds the cap", pol[q]);
    }
    bht_fixture_free(fx);
    /* the chart keeps text out of commands: names only in $bh_text */
    snprintf(a, sizeof a, "%s/p1/policy.gp", d);
    ta = bht_slurp(a);
    cr_assert(strstr(ta, "$bh_text << ") && strstr(ta, "set ytics ($bh_text[4] 1"), "%s", ta);
    free(ta);
    bht_rmtree(d);
    free(d);
}

/* policy --truth: the observed and even allocations' follow-up rates under
 * the spec's true parameters, against tests/fixtures/r/policy_truth.R
 * (R 4.2.2; the random intercept integrated by integrate(), here by
 * Gauss-Hermite). */
Test(cli_policy, truth_rates_against_r, .timeout = 120)
{
    char *d = bht_tmpdir();
    char cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "%s policy --study analysis/sabnis2013.ini --truth --out %s/t",
             bht_bin(), d);
    cr_assert_eq(bht_run(cmd, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "true parameters (dgp:followed_up)"), "%s", out);
    free(out);
    free(err);
    char path[1024];
    snprintf(path, sizeof path, "%s/t/policy.csv", d);
    bht_fixture *got = bht_fixture_read(path);
    bht_fixture *ref = bht_fixture_read("tests/fixtures/policy/truth_ref.csv");
    size_t checked = 0;
    for (size_t i = 0; i < ref->nrow; i++)
        for (size_t k = 0; k < got->nrow; k++) {
            if (strcmp(bht_fixture_str(got, k, "policy"), bht_fixture_str(ref, i, "policy")))
                continue;
            double rate = bht_fixture_num(got, k, "followup_rate");
            bht_assert_rel(rate, bht_fixture_num(ref, i, "followup_rate"), 1e-10, "%s",
                           bht_fixture_str(ref, i, "policy"));
            /* no estimation uncertainty: the interval is the point */
            cr_assert_eq(bht_fixture_num(got, k, "rate_low"), rate);
            cr_assert_eq(bht_fixture_num(got, k, "rate_high"), rate);
            cr_assert_eq(bht_fixture_num(got, k, "draws"), 0);
            checked++;
        }
    cr_assert_eq(checked, 2);
    bht_fixture_free(got);
    bht_fixture_free(ref);
    /* a model whose response is not a bernoulli node of the DGP */
    snprintf(cmd, sizeof cmd,
             "%s policy --study analysis/sabnis2013.ini --truth --model ols --out %s/u",
             bht_bin(), d);
    cr_assert_eq(bht_run(cmd, &out, &err), 2, "%s", out);
    cr_assert(strstr(err, "ols"), "%s", err);
    free(out);
    free(err);
    bht_rmtree(d);
    free(d);
}
