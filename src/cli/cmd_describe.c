/* cmd_describe.c - `blackhole describe DATA`: the "Table 1" of a survey
 * study: descriptives, level counts, correlations, scale reliabilities. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/atomicfile.h"
#include "blackhole/describe.h"
#include "blackhole/describe_render.h"
#include "blackhole/frame.h"
#include "blackhole/output.h"
#include "blackhole/table.h"
#include "cli.h"

static const bh_cli_option describe_options[] = {
    {"vars", 0, 1, "A,B,...", "variables to describe (default: all columns)"},
    {"by", 0, 1, "G", "also describe within each level of G"},
    {"scale", 0, 1, "NAME=I1,I2,...", "multi-item scale: Cronbach's alpha and composite NAME (repeatable)"},
    {"write-scored", 0, 1, "FILE", "write the data with the scale composites added (CSV)"},
    {"no-cor", 0, 0, NULL, "skip the correlation matrix"},
    {"format", 0, 1, "F", "text (default), csv, md, latex, html or json"},
    {"digits", 0, 1, "N", "decimals in text/md/latex/html tables (default 3)"},
    {"output", 'o', 1, "FILE", "write to FILE (atomically) instead of standard output"},
    BH_CLI_DATA_OPTIONS,
};
#define NOPT (sizeof describe_options / sizeof describe_options[0])

static void describe_help(void)
{
    printf("usage: blackhole describe DATA [--vars a,b] [--by g] [--scale name=i1,i2,i3 ...]\n"
           "                          [--write-scored FILE] [options]\n\n"
           "Descriptive statistics (n, missing, mean, sd, min, quartiles, max), level counts,\n"
           "Pearson correlations with cor.test p-values (pairwise complete observations),\n"
           "and Cronbach's alpha with the composite (item mean) of each declared scale.\n\n"
           "Options:\n");
    bh_cli_print_options(describe_options, NOPT);
    printf("\nCSV output is one long table: section,group,variable,with,statistic,value\n"
           "\nExit codes: 0 success, 2 usage error, 3 input/data error, 4 output error.\n");
}

/* ---- command ------------------------------------------------------------- */

static bh_status write_scored(const bh_frame *data, const char *path, bh_error *err)
{
    bh_afile af;
    bh_status s = bh_afile_open(&af, path, err);
    if (s != BH_OK)
        return s;
    s = bh_frame_write_csv(data, af.fp, err);
    if (s != BH_OK) {
        bh_afile_abort(&af);
        return s;
    }
    return bh_afile_commit(&af, err);
}

int bh_cmd_describe(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_frame *data = NULL;
    bh_describe_result *res = NULL;
    bh_scale_result *scales = NULL;
    size_t nscales = 0, nvars = 0;
    char **vars = NULL;
    bh_describe_report rp = {0};

    bh_status s = bh_cli_parse(argc, argv, describe_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        describe_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    if (args.npos != 1) {
        s = bh_error_set(&err, BH_EUSAGE, args.npos ? "expected one DATA file, got %zu arguments"
                                                     : "missing DATA file (a CSV path or '-')",
                         args.npos);
        goto fail;
    }
    bh_format fmt = BH_FMT_TEXT;
    const char *v;
    if ((v = bh_cli_get(&args, "format")) && (s = bh_format_parse(v, &fmt, &err)) != BH_OK)
        goto fail;
    rp.digits = 3;
    if ((v = bh_cli_get(&args, "digits"))) {
        char *end;
        long d = strtol(v, &end, 10);
        if (end == v || *end || d < 0 || d > 17) {
            s = bh_error_set(&err, BH_EUSAGE, "--digits must be an integer in [0, 17], not '%s'", v);
            goto fail;
        }
        rp.digits = (int)d;
    }
    if ((s = bh_cli_read_data(args.pos[0], &args, &data, &err)) != BH_OK)
        goto fail;

    size_t nspec = 0;
    char **specs = bh_cli_all(&args, "scale", &nspec);
    if (nspec) {
        scales = calloc(nspec, sizeof *scales);
        if (!scales) {
            s = bh_error_set(&err, BH_ENOMEM, "out of memory");
            goto fail;
        }
    }
    for (size_t i = 0; i < nspec; i++) {
        char *name = NULL, **items = NULL;
        size_t k = 0;
        if ((s = bh_scale_spec_parse(specs[i], &name, &items, &k, &err)) != BH_OK)
            goto fail;
        s = bh_scale_score(data, name, (const char *const *)items, k, &scales[i], &err);
        nscales++;
        bh_scale_spec_free(name, items, k);
        if (s != BH_OK) {
            char msg[BH_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "--scale %.200s: %.700s", specs[i], err.msg);
            snprintf(err.msg, sizeof err.msg, "%s", msg);
            goto fail;
        }
    }

    bh_describe_options dopt;
    bh_describe_default_options(&dopt);
    if ((v = bh_cli_get(&args, "vars"))) {
        vars = bh_cli_split(v, ',', &nvars);
        if (!vars) {
            s = bh_error_set(&err, BH_ENOMEM, "out of memory");
            goto fail;
        }
        dopt.vars = (const char *const *)vars;
        dopt.nvars = nvars;
    }
    dopt.by = bh_cli_get(&args, "by");
    dopt.correlations = !bh_cli_flag(&args, "no-cor");
    if ((s = bh_describe_run(data, &dopt, &res, &err)) != BH_OK)
        goto fail;

    rp.res = res;
    rp.scales = scales;
    rp.nscales = nscales;
    const char *scored = bh_cli_get(&args, "write-scored");
    if (scored && (s = write_scored(data, scored, &err)) != BH_OK)
        goto fail;

    bh_afile af;
    const char *outpath = bh_cli_get(&args, "output");
    if ((s = bh_afile_open(&af, outpath ? outpath : "-", &err)) != BH_OK)
        goto fail;
    s = bh_describe_render(&rp, fmt, af.fp, &err);
    if (s != BH_OK) {
        bh_afile_abort(&af);
        goto fail;
    }
    if ((s = bh_afile_commit(&af, &err)) != BH_OK)
        goto fail;
    goto done;
fail:
    rc = bh_cli_fail("describe", &err);
done:
    for (size_t i = 0; i < nscales; i++)
        bh_scale_result_free(&scales[i]);
    free(scales);
    bh_cli_free_list(vars, nvars);
    bh_describe_free(res);
    bh_frame_free(data);
    bh_cli_args_free(&args);
    return rc;
}
