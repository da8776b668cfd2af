/* cmd_fit.c - `blackhole fit DATA -m FORMULA [-m ...]`: read, build the
 * design, estimate, compute the requested covariance, print. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blackhole/atomicfile.h"
#include "blackhole/design.h"
#include "blackhole/fit.h"
#include "blackhole/formula.h"
#include "blackhole/frame.h"
#include "blackhole/lm.h"
#include "blackhole/output.h"
#include "blackhole/vcov.h"
#include "cli.h"

static const bh_cli_option fit_options[] = {
    {"model", 'm', 1, "FORMULA", "model formula, e.g. 'y ~ x * z' (repeatable: models side by side)"},
    {"name", 0, 1, "NAME", "name of the model given by the matching -m (repeatable)"},
    {"family", 0, 1, "F", "gaussian (least squares; the default)"},
    {"vcov", 0, 1, "V", "classical (default), hc0, hc1, hc2, hc3 or cluster:VAR"},
    {"weights", 0, 1, "COL", "weights column"},
    {"weight-type", 0, 1, "T", "analytic (default; R's lm weights) or frequency (replication counts)"},
    {"level", 0, 1, "L", "confidence level in percent (default 95)"},
    {"format", 0, 1, "F", "text (default), csv, md, latex, html or json"},
    {"digits", 0, 1, "N", "significant digits in text/md/latex/html (default 5)"},
    {"output", 'o', 1, "FILE", "write to FILE (atomically) instead of standard output"},
    {"tol", 0, 1, "X", "rank-detection tolerance of the QR factorisation"},
    BH_CLI_DATA_OPTIONS,
};
#define NOPT (sizeof fit_options / sizeof fit_options[0])

static void fit_help(void)
{
    printf("usage: blackhole fit DATA -m FORMULA [-m FORMULA ...] [options]\n\n"
           "Fit regression models on a CSV file (DATA, or '-' for standard input) and\n"
           "print their coefficient tables; several -m give models side by side.\n\n"
           "Options:\n");
    bh_cli_print_options(fit_options, NOPT);
    printf("\nFormulas use R's notation: y ~ a + b, a:b, a*b, (a + b)^2, - 1, factor(g),\n"
           "I(x^2), log(x), center(x), scale(x).  CSV output columns:\n"
           "model,component,term,estimate,std_error,statistic,p_value,conf_low,conf_high\n"
           "\nExit codes: 0 success, 1 estimation failed or did not converge, 2 usage error,\n"
           "3 input/data error, 4 output error.\n");
}

static bh_status parse_double_opt(const char *name, const char *s, double lo, double hi,
                                  double *out, bh_error *err)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return bh_error_set(err, BH_EUSAGE, "--%s must be a number in [%g, %g], not '%s'",
                            name, lo, hi, s);
    *out = v;
    return BH_OK;
}

/* Fit one model: formula -> design -> estimate -> covariance -> table. */
static bh_status fit_one(const bh_frame *data, const char *ftext, const char *name,
                         const bh_design_options *dopt, const bh_lm_options *lopt,
                         const bh_vcov_spec *vspec, double level, bh_design **dout,
                         bh_fit **fout, bh_error *err)
{
    bh_formula *f = NULL;
    bh_status s = bh_formula_parse(ftext, &f, err);
    if (s != BH_OK)
        return s;
    s = bh_design_build(f, data, dopt, dout, err);
    bh_formula_free(f);
    if (s != BH_OK)
        return s;
    s = bh_lm_fit(*dout, lopt, NULL, fout, err);
    if (s != BH_OK)
        return s;
    if ((s = bh_fit_set_string(&(*fout)->name, name)) != BH_OK ||
        (s = bh_fit_set_string(&(*fout)->formula, ftext)) != BH_OK)
        return bh_error_set(err, s, "out of memory");
    s = bh_vcov_compute(*fout, vspec, err);
    if (s != BH_OK)
        return s;
    return bh_fit_summarize(*fout, level, err);
}

int bh_cmd_fit(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_frame *data = NULL;
    bh_design **designs = NULL;
    bh_fit **fits = NULL;
    size_t nmod = 0;
    char **names = NULL;

    bh_status s = bh_cli_parse(argc, argv, fit_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        fit_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;

    size_t nnames = 0;
    char **models = bh_cli_all(&args, "model", &nmod);
    names = bh_cli_all(&args, "name", &nnames);
    if (args.npos != 1) {
        s = bh_error_set(&err, BH_EUSAGE, args.npos ? "expected one DATA file, got %zu arguments"
                                                     : "missing DATA file (a CSV path or '-')",
                         args.npos);
        goto fail;
    }
    if (nmod == 0) {
        s = bh_error_set(&err, BH_EUSAGE, "no model given: add -m 'y ~ x'");
        goto fail;
    }
    if (nnames > nmod) {
        s = bh_error_set(&err, BH_EUSAGE, "%zu --name values for %zu models", nnames, nmod);
        goto fail;
    }
    const char *family = bh_cli_get(&args, "family");
    if (family && strcasecmp(family, "gaussian") != 0) {
        s = bh_error_set(&err, BH_EUSAGE, "unknown family '%s' (available: gaussian)", family);
        goto fail;
    }

    bh_output_options oopt;
    bh_output_default_options(&oopt);
    const char *v;
    if ((v = bh_cli_get(&args, "format")) && (s = bh_format_parse(v, &oopt.format, &err)) != BH_OK)
        goto fail;
    if ((v = bh_cli_get(&args, "digits"))) {
        double d;
        if ((s = parse_double_opt("digits", v, 1, 17, &d, &err)) != BH_OK)
            goto fail;
        oopt.digits = (int)d;
    }
    double level = 0.95;
    if ((v = bh_cli_get(&args, "level"))) {
        if ((s = parse_double_opt("level", v, 1e-6, 99.999999, &level, &err)) != BH_OK)
            goto fail;
        level /= 100;
    }
    bh_vcov_spec vspec = {.kind = BH_VCOV_CLASSICAL};
    if ((v = bh_cli_get(&args, "vcov")) && (s = bh_vcov_parse(v, &vspec, &err)) != BH_OK)
        goto fail;
    bh_lm_options lopt;
    bh_lm_default_options(&lopt);
    if ((v = bh_cli_get(&args, "tol")) &&
        (s = parse_double_opt("tol", v, 0, 0.5, &lopt.tol, &err)) != BH_OK)
        goto fail;
    bh_design_options dopt;
    bh_design_default_options(&dopt);
    dopt.weights = bh_cli_get(&args, "weights");
    if ((v = bh_cli_get(&args, "weight-type"))) {
        if (strcasecmp(v, "analytic") == 0)
            dopt.weight_kind = BH_WEIGHTS_ANALYTIC;
        else if (strcasecmp(v, "frequency") == 0)
            dopt.weight_kind = BH_WEIGHTS_FREQUENCY;
        else {
            s = bh_error_set(&err, BH_EUSAGE,
                             "--weight-type must be analytic or frequency, not '%s'", v);
            goto fail;
        }
        if (!dopt.weights) {
            s = bh_error_set(&err, BH_EUSAGE, "--weight-type needs --weights COL");
            goto fail;
        }
    }
    if (vspec.kind == BH_VCOV_CLUSTER)
        dopt.cluster = vspec.cluster;

    if ((s = bh_cli_read_data(args.pos[0], &args, &data, &err)) != BH_OK)
        goto fail;

    designs = calloc(nmod, sizeof *designs);
    fits = calloc(nmod, sizeof *fits);
    if (!designs || !fits) {
        s = bh_error_set(&err, BH_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t k = 0; k < nmod; k++) {
        char dflt[32];
        snprintf(dflt, sizeof dflt, "(%zu)", k + 1);
        const char *name = k < nnames ? names[k] : dflt;
        s = fit_one(data, models[k], name, &dopt, &lopt, &vspec, level, &designs[k],
                    &fits[k], &err);
        if (s != BH_OK) {
            if (nmod > 1) {
                char msg[BH_ERROR_MSG_MAX];
                snprintf(msg, sizeof msg, "model %.64s: %.900s", name, err.msg);
                snprintf(err.msg, sizeof err.msg, "%s", msg);
            }
            goto fail;
        }
    }

    bh_afile af;
    const char *outpath = bh_cli_get(&args, "output");
    if ((s = bh_afile_open(&af, outpath ? outpath : "-", &err)) != BH_OK)
        goto fail;
    s = bh_output_fits(af.fp, (const bh_fit *const *)fits, nmod, &oopt, &err);
    if (s != BH_OK) {
        bh_afile_abort(&af);
        goto fail;
    }
    if ((s = bh_afile_commit(&af, &err)) != BH_OK)
        goto fail;
    for (size_t k = 0; k < nmod; k++)
        if (!fits[k]->converged) {
            fprintf(stderr, "blackhole fit: model %s did not converge\n", fits[k]->name);
            rc = BH_EXIT_ESTIMATION;
        }
    goto done;

fail:
    rc = bh_cli_fail("fit", &err);
done:
    if (fits)
        for (size_t k = 0; k < nmod; k++)
            bh_fit_free(fits[k]);
    if (designs)
        for (size_t k = 0; k < nmod; k++)
            bh_design_free(designs[k]);
    free(fits);
    free(designs);
    bh_frame_free(data);
    bh_cli_args_free(&args);
    return rc;
}
