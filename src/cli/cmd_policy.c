/* cmd_policy.c - `blackhole policy`: compare ways of allocating the same
 * leads to reps with the spec's fitted lead-level logit (policy.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blackhole/csvread.h"
#include "blackhole/policy.h"
#include "blackhole/strutil.h"
#include "blackhole/study.h"
#include "cli.h"

static const bh_cli_option policy_options[] = {
    {"study", 0, 1, "FILE", "study spec (INI) (required)"},
    {"out", 0, 1, "DIR", "output directory (required)"},
    {"model", 0, 1, "NAME", "lead-level model of the spec (default: the first without random terms)"},
    {"leads", 0, 1, "FILE", "lead file (default: the spec's [study] leads)"},
    {"draws", 0, 1, "D", "coefficient draws for the intervals (default 1000)"},
    {"seed", 0, 1, "S", "unsigned 64-bit seed of the draws (default: the spec's seed)"},
    {"cap", 0, 1, "N", "greedy policy: at most N leads per rep (default: 2 x the mean)"},
    {"truth", 0, 0, NULL, "use the spec's true [dgp] parameters for the model's response "
                          "instead of fitting the model (no intervals)"},
};
#define NOPT (sizeof policy_options / sizeof policy_options[0])

static void policy_help(void)
{
    printf("usage: blackhole policy --study SPEC --out DIR [--model NAME] [--leads FILE]\n"
           "                        [--draws D] [--seed S] [--cap N] [--truth]\n\n"
           "Fits the spec's lead-level logit (lead volume is a predictor of follow-up) and\n"
           "compares policies that distribute the same total number of leads over the\n"
           "same reps: observed, even, novices (proportional to 1/rank of experience),\n"
           "performance (proportional to the rank of performance) and greedy (each lead\n"
           "to the largest gain in expected follow-ups, at most --cap per rep).  Expected\n"
           "follow-up rate and leads lost, with 95%% intervals over coefficient draws from\n"
           "the fitted covariance.  Writes DIR/policy.csv, DIR/allocation.csv and\n"
           "DIR/policy.gp (gnuplot chart).  With --truth the follow-up probabilities come\n"
           "from the spec's data-generating process (its effects on the model's response,\n"
           "predictors standardised with the lead file's moments, the rep random intercept\n"
           "averaged out): the policies' true effect on generated data.\n\nOptions:\n");
    bh_cli_print_options(policy_options, NOPT);
    printf("\nExit codes: 0 success, 1 estimation failed, 2 usage or spec error, 3 input\n"
           "error, 4 output error.\n");
}

int bh_cmd_policy(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_study *study = NULL;
    bh_frame *leads = NULL;
    bh_policy_result *res = NULL;
    bh_status s = bh_cli_parse(argc, argv, policy_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        policy_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    if (args.npos) {
        s = bh_error_set(&err, BH_EUSAGE, "unexpected argument '%s' (see --help)", args.pos[0]);
        goto fail;
    }
    const char *spec = bh_cli_get(&args, "study"), *out = bh_cli_get(&args, "out"), *v;
    if (!spec || !out) {
        s = bh_error_set(&err, BH_EUSAGE, "--study SPEC and --out DIR are required");
        goto fail;
    }
    bh_policy_options o;
    bh_policy_default_options(&o);
    o.model = bh_cli_get(&args, "model");
    o.truth = bh_cli_flag(&args, "truth");
    double x;
    if ((v = bh_cli_get(&args, "draws"))) {
        if ((s = bh_cli_number("draws", v, 2, 1e7, &x, &err)) != BH_OK)
            goto fail;
        o.draws = (size_t)x;
    }
    if ((v = bh_cli_get(&args, "cap"))) {
        if ((s = bh_cli_number("cap", v, 1, 1e9, &x, &err)) != BH_OK)
            goto fail;
        o.cap = (size_t)x;
    }
    if ((v = bh_cli_get(&args, "seed"))) {
        char *end;
        errno = 0;
        unsigned long long sd = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-') {
            s = bh_error_set(&err, BH_EUSAGE, "--seed must be an unsigned 64-bit integer, not '%s'", v);
            goto fail;
        }
        o.seed = (uint64_t)sd;
        o.seed_set = 1;
    }
    if ((s = bh_study_read(spec, &study, &err)) != BH_OK)
        goto fail;
    const char *lp = bh_cli_get(&args, "leads");
    if (!lp)
        lp = study->leads;
    if (!lp) {
        s = bh_error_set(&err, BH_EUSAGE, "%s names no lead file; give --leads FILE", spec);
        goto fail;
    }
    bh_csv_options co;
    bh_csv_default_options(&co);
    if ((s = bh_csv_read_path(lp, &co, &leads, &err)) != BH_OK)
        goto fail;
    /* data columns take the spec's names */
    for (size_t k = 0; k < study->ncolumns; k++) {
        const bh_study_colmap *m = &study->columns[k];
        long j = bh_frame_index(leads, m->column);
        if (strcmp(m->spec_name, m->column) != 0 && j >= 0 &&
            bh_frame_index(leads, m->spec_name) < 0) {
            char *nm = bh_strdup(m->spec_name);
            if (nm) {
                free(leads->cols[j].name);
                leads->cols[j].name = nm;
            }
        }
    }
    if ((s = bh_policy_run(study, leads, &o, &res, &err)) != BH_OK)
        goto fail;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        s = bh_error_at(&err, BH_EOUTPUT, out, 0, 0, "cannot create the directory: %s",
                        strerror(errno));
        goto fail;
    }
    if ((s = bh_policy_write(res, out, &err)) != BH_OK)
        goto fail;
    if (res->truth)
        printf("blackhole policy: true parameters (%s) on %s; %zu reps, %.0f leads; greedy cap "
               "%zu per rep; no estimation uncertainty\n\n", res->model, lp, res->nreps,
               res->total, res->cap);
    else
        printf("blackhole policy: model %s on %s; %zu reps, %.0f leads; greedy cap %zu per rep; "
               "%zu draws, seed %llu\n\n", res->model, lp, res->nreps, res->total, res->cap,
               res->draws, (unsigned long long)res->seed);
    printf("%-12s %14s %19s %12s %19s\n", "policy", "follow-up rate", "95% interval",
           "leads lost", "95% interval");
    for (int q = 0; q < BH_POLICY_COUNT; q++) {
        const bh_policy_row *w = &res->rows[q];
        printf("%-12s %14.4f   [%.4f, %.4f] %12.1f   [%.1f, %.1f]\n", w->name, w->rate,
               w->rate_low, w->rate_high, w->lost, w->lost_low, w->lost_high);
    }
    printf("\nwrote %s/policy.csv, %s/allocation.csv, %s/policy.gp\n", out, out, out);
    goto done;
fail:
    rc = bh_cli_fail("policy", &err);
done:
    bh_policy_result_free(res);
    bh_frame_free(leads);
    bh_study_free(study);
    bh_cli_args_free(&args);
    return rc;
}
