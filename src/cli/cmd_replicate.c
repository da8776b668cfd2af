/* cmd_replicate.c - `blackhole replicate`: run the study spec end to end
 * and print the replication scorecard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/replicate.h"
#include "blackhole/study.h"
#include "blackhole/table.h"
#include "cli.h"

#ifndef BH_VERSION
#define BH_VERSION "0.1.0"
#endif

static const bh_cli_option replicate_options[] = {
    {"study", 0, 1, "FILE", "study specification (default analysis/sabnis2013.ini)"},
    {"data-dir", 0, 1, "DIR", "read the spec's data files from DIR (by their base names)"},
    {"reps", 0, 1, "FILE", "unit-level (rep) data file, overriding the spec"},
    {"leads", 0, 1, "FILE", "lead-level data file, overriding the spec"},
    {"out", 0, 1, "DIR", "output directory (default out)"},
    {"no-render", 0, 0, NULL, "write gnuplot scripts but do not render images"},
    {"quiet", 'q', 0, NULL, "no progress lines on standard error"},
};
#define NOPT (sizeof replicate_options / sizeof replicate_options[0])

static void replicate_help(void)
{
    printf("usage: blackhole replicate [--study FILE] [--data-dir DIR] [--out DIR] [options]\n\n"
           "Run everything the study specification declares (scales, descriptives, models,\n"
           "findings, figures) and write a replication package to DIR: table1-3 in text,\n"
           "Markdown, LaTeX, CSV and JSON, models/, figures/ (gnuplot scripts, PNG, SVG),\n"
           "scorecard.csv and report.md / report.html.  The scorecard is printed.\n\n"
           "Options:\n");
    bh_cli_print_options(replicate_options, NOPT);
    printf("\nscorecard.csv columns: finding,term,model,scale,expected_sign,estimate,conf_low,"
           "conf_high,p_value,verdict\n"
           "\nExit codes: 0 success, 1 estimation failed, 2 usage or specification error,\n"
           "3 input/data error (including columns the spec needs that the data lack),\n"
           "4 output error.\n");
}

static void on_progress(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "replicate: %s\n", msg);
}

int bh_cmd_replicate(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_study *study = NULL;
    bh_replicate_result *res = NULL;
    char cmdline[2048];
    size_t o = (size_t)snprintf(cmdline, sizeof cmdline, "blackhole replicate");
    for (int i = 0; i < argc && o < sizeof cmdline; i++)
        o += (size_t)snprintf(cmdline + o, sizeof cmdline - o, " %s", argv[i]);

    bh_status s = bh_cli_parse(argc, argv, replicate_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        replicate_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    if (args.npos) {
        s = bh_error_set(&err, BH_EUSAGE, "unexpected argument '%s'", args.pos[0]);
        goto fail;
    }
    const char *spec = bh_cli_get(&args, "study");
    if ((s = bh_study_read(spec ? spec : "analysis/sabnis2013.ini", &study, &err)) != BH_OK)
        goto fail;
    bh_replicate_options ro;
    bh_replicate_default_options(&ro);
    ro.data_dir = bh_cli_get(&args, "data-dir");
    ro.reps = bh_cli_get(&args, "reps");
    ro.leads = bh_cli_get(&args, "leads");
    if (bh_cli_get(&args, "out"))
        ro.out_dir = bh_cli_get(&args, "out");
    ro.render = !bh_cli_flag(&args, "no-render");
    ro.version = BH_VERSION;
    ro.command = cmdline;
    ro.progress = bh_cli_flag(&args, "quiet") ? NULL : on_progress;
    if ((s = bh_replicate_run(study, &ro, &res, &err)) != BH_OK)
        goto fail;

    /* the scorecard, as in the report */
    bh_table *t = bh_table_new(6);
    const char *hdr[6] = {"finding", "term", "expected", "estimate", "p", "verdict"};
    if (!t || bh_table_set_header(t, hdr) != BH_OK) {
        bh_table_free(t);
        s = bh_error_set(&err, BH_ENOMEM, "out of memory");
        goto fail;
    }
    bh_table_set_title(t, "Replication scorecard");
    bh_table_set_align(t, 2, BH_ALIGN_RIGHT);
    bh_table_set_align(t, 3, BH_ALIGN_RIGHT);
    bh_table_set_align(t, 4, BH_ALIGN_RIGHT);
    for (size_t k = 0; k < res->nscores; k++) {
        const bh_score *sc = &res->scores[k];
        char est[48], p[32], term[400];
        snprintf(term, sizeof term, "%s%s%s", sc->component[0] ? sc->component : "",
                 sc->component[0] ? ": " : "", sc->term);
        const char *row[6] = {sc->finding, term,
                              sc->expected_sign > 0 ? "+" : sc->expected_sign < 0 ? "-" : "none",
                              bh_fmt_num(est, sizeof est, sc->estimate, 4),
                              bh_fmt_pvalue(p, sizeof p, sc->p_value),
                              sc->verdict ? sc->verdict : ""};
        bh_table_add_row(t, row);
    }
    char note[512];
    snprintf(note, sizeof note, "%zu of %zu published findings replicated. Report: %s/report.md "
             "(and report.html)", res->replicated, res->scored, ro.out_dir);
    bh_table_add_note(t, note);
    bh_table_render(t, BH_FMT_TEXT, stdout, &err);
    bh_table_free(t);
    goto done;
fail:
    rc = bh_cli_fail("replicate", &err);
done:
    bh_replicate_result_free(res);
    bh_study_free(study);
    bh_cli_args_free(&args);
    return rc;
}
