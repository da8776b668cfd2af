/* cmd_fit.c - `blackhole fit DATA -m FORMULA [-m ...]`: options -> model
 * specs -> bh_model_fit -> tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blackhole/atomicfile.h"
#include "blackhole/model.h"
#include "blackhole/csvread.h"
#include "blackhole/output.h"
#include "blackhole/plot.h"
#include "cli.h"

static const bh_cli_option fit_options[] = {
    {"model", 'm', 1, "FORMULA", "model formula, e.g. 'y ~ x * z' (repeatable: models side by side)"},
    {"name", 0, 1, "NAME", "name of the model given by the matching -m (repeatable)"},
    BH_CLI_MODEL_OPTIONS,
    {"test", 0, 1, "HYP", "Wald test of linear restrictions, e.g. 'a:b = 0, c:d = 0' (repeatable)"},
    {"compare", 0, 0, NULL, "test each model against the previous one (nested; F or LR test)"},
    {"boot", 0, 1, "wild", "wild cluster (linear) or wild score (GLM) bootstrap; needs --vcov cluster:VAR"},
    {"reps", 0, 1, "B", "bootstrap replications (default 9999)"},
    {"seed", 0, 1, "S", "bootstrap seed (default 1; always reported)"},
    {"boot-weights", 0, 1, "W", "rademacher (default) or webb"},
    {"threads", 0, 1, "T", "threads for reading, large GLM fits and the bootstrap (default: all CPUs, bootstrap 1; results do not depend on it)"},
    {"write-re", 0, 1, "FILE", "mixed models: write the conditional modes per group (CSV)"},
    {"format", 0, 1, "F", "text (default), csv, md, latex, html or json"},
    {"digits", 0, 1, "N", "significant digits in text/md/latex/html (default 5)"},
    {"decimals", 0, 1, "N", "fixed decimals instead of significant digits"},
    {"stars", 0, 1, "S", "none, r (default: . 0.1 * 0.05 ** 0.01 *** 0.001), econ, or 0.05,0.01,..."},
    {"below", 0, 1, "W", "under estimates in side-by-side tables: se (default), t, ci or none"},
    {"labels", 0, 1, "CSV", "term labels from a codebook (columns column,label[,unit])"},
    {"omit", 0, 1, "PAT", "leave out terms containing PAT, with a 'PAT effects: yes' row (repeatable)"},
    {"title", 0, 1, "T", "table title"},
    {"output", 'o', 1, "FILE", "write to FILE (atomically) instead of standard output"},
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
           "I(x^2), log(x), center(x), scale(x), offset(x).  CSV output columns:\n"
           "model,component,term,estimate,std_error,statistic,p_value,conf_low,conf_high\n"
           "\nExit codes: 0 success, 1 estimation failed or did not converge, 2 usage error,\n"
           "3 input/data error, 4 output error.\n");
}

bh_status bh_cli_number(const char *name, const char *s, double lo, double hi, double *out,
                        bh_error *err)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return bh_error_set(err, BH_EUSAGE, "--%s must be a number in [%g, %g], not '%s'",
                            name, lo, hi, s);
    *out = v;
    return BH_OK;
}

void bh_cli_trace_iter(void *ctx, size_t iter, double dev, double change, unsigned halvings)
{
    const char *name = ctx;
    fprintf(stderr, "%s: iteration %zu: deviance %.10g, relative change %.3g%s\n", name, iter,
            dev, change, halvings ? " (step halved)" : "");
    if (halvings > 1)
        fprintf(stderr, "%s:   %u step halvings\n", name, halvings);
}

/* Everything but the formula and name: the options shared by all -m. */
bh_status bh_cli_model_spec(const bh_cli_args *a, bh_model_spec *sp, bh_error *err)
{
    bh_model_spec_default(sp);
    const char *v;
    bh_status s;
    double d;
    if ((v = bh_cli_get(a, "family")) && (s = bh_family_parse(v, &sp->family, err)) != BH_OK)
        return s;
    if ((v = bh_cli_get(a, "link"))) {
        if ((s = bh_link_parse(v, &sp->link, err)) != BH_OK)
            return s;
        sp->link_set = 1;
    }
    if ((v = bh_cli_get(a, "vcov"))) {
        if ((s = bh_vcov_parse(v, &sp->vcov, err)) != BH_OK)
            return s;
        sp->vcov_set = 1;
    }
    sp->weights = bh_cli_get(a, "weights");
    if ((v = bh_cli_get(a, "weight-type"))) {
        if (strcasecmp(v, "analytic") == 0)
            sp->weight_kind = BH_WEIGHTS_ANALYTIC;
        else if (strcasecmp(v, "frequency") == 0)
            sp->weight_kind = BH_WEIGHTS_FREQUENCY;
        else
            return bh_error_set(err, BH_EUSAGE,
                                "--weight-type must be analytic or frequency, not '%s'", v);
        if (!sp->weights)
            return bh_error_set(err, BH_EUSAGE, "--weight-type needs --weights COL");
    }
    if ((v = bh_cli_get(a, "level"))) {
        if ((s = bh_cli_number("level", v, 1e-6, 99.999999, &d, err)) != BH_OK)
            return s;
        sp->level = d / 100;
    }
    if ((v = bh_cli_get(a, "tol")) && (s = bh_cli_number("tol", v, 1e-300, 0.1, &sp->tol, err)))
        return s;
    if ((v = bh_cli_get(a, "rank-tol")) &&
        (s = bh_cli_number("rank-tol", v, 1e-300, 0.5, &sp->rank_tol, err)))
        return s;
    if ((v = bh_cli_get(a, "maxiter"))) {
        if ((s = bh_cli_number("maxiter", v, 1, 1e6, &d, err)) != BH_OK)
            return s;
        sp->maxiter = (size_t)d;
    }
    sp->firth = bh_cli_flag(a, "firth");
    if ((v = bh_cli_get(a, "param")) &&
        (s = bh_dirichlet_param_parse(v, &sp->param, err)) != BH_OK)
        return s;
    sp->base = bh_cli_get(a, "base");
    sp->squeeze = bh_cli_flag(a, "squeeze");
    if ((v = bh_cli_get(a, "sum-tol")) &&
        (s = bh_cli_number("sum-tol", v, 0, 0.5, &sp->sum_tol, err)) != BH_OK)
        return s;
    if (sp->family != BH_FAM_DIRICHLET &&
        (bh_cli_get(a, "param") || sp->base || sp->squeeze || bh_cli_get(a, "sum-tol")))
        return bh_error_set(err, BH_EUSAGE,
                            "--param, --base, --squeeze and --sum-tol apply to --family dirichlet");
    if ((v = bh_cli_get(a, "nagq"))) {
        if ((s = bh_cli_number("nagq", v, 1, 25, &d, err)) != BH_OK)
            return s;
        sp->nagq = (size_t)d;
    }
    if ((v = bh_cli_get(a, "boot"))) {
        if (strcasecmp(v, "wild") != 0)
            return bh_error_set(err, BH_EUSAGE, "--boot supports 'wild', not '%s'", v);
        sp->boot = 1;
    }
    const char *bopts[] = {"reps", "seed", "boot-weights"};
    for (size_t k = 0; k < 3; k++)
        if (!sp->boot && bh_cli_get(a, bopts[k]))
            return bh_error_set(err, BH_EUSAGE, "--%s needs --boot wild", bopts[k]);
    if ((v = bh_cli_get(a, "reps"))) {
        if ((s = bh_cli_number("reps", v, 1, 1e8, &d, err)) != BH_OK)
            return s;
        sp->boot_opt.reps = (size_t)d;
    }
    if ((v = bh_cli_get(a, "seed"))) {
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || v[0] == '-')
            return bh_error_set(err, BH_EUSAGE, "--seed must be a non-negative integer, not '%s'", v);
        sp->boot_opt.seed = (uint64_t)x;
    }
    if ((v = bh_cli_get(a, "boot-weights")) &&
        (s = bh_boot_weights_parse(v, &sp->boot_opt.weights, err)) != BH_OK)
        return s;
    if ((v = bh_cli_get(a, "threads"))) {
        if ((s = bh_cli_number("threads", v, 1, 1024, &d, err)) != BH_OK)
            return s;
        sp->boot_opt.threads = (size_t)d;
        sp->threads = (size_t)d;
    }
    return BH_OK;
}

/* Conditional modes of every mixed model: model,grouping,group,mode,cond_sd */
static bh_status write_re(const char *path, bh_model *const *models, size_t nmod, bh_error *err)
{
    size_t any = 0;
    for (size_t k = 0; k < nmod; k++)
        any += models[k]->re != NULL;
    if (!any)
        return bh_error_set(err, BH_EUSAGE,
                            "--write-re: no model has random effects ((1 | g) terms)");
    bh_afile af;
    bh_status s = bh_afile_open(&af, path, err);
    if (s != BH_OK)
        return s;
    fputs("model,grouping,group,mode,cond_sd\n", af.fp);
    for (size_t k = 0; k < nmod; k++) {
        const bh_glmm_re *re = models[k]->re;
        for (size_t g = 0; re && g < re->ngroupings; g++)
            for (size_t j = 0; j < re->g[g].ngroups; j++) {
                bh_write_csv_field(af.fp, models[k]->fit->name);
                fputc(',', af.fp);
                bh_write_csv_field(af.fp, re->g[g].name);
                fputc(',', af.fp);
                bh_write_csv_field(af.fp, re->g[g].labels[j]);
                fprintf(af.fp, ",%.17g,%.17g\n", re->g[g].mode[j], re->g[g].cond_sd[j]);
            }
    }
    if (ferror(af.fp)) {
        bh_afile_abort(&af);
        return bh_error_at(err, BH_EOUTPUT, path, 0, 0, "write error");
    }
    return bh_afile_commit(&af, err);
}

int bh_cmd_fit(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_frame *data = NULL;
    bh_model **models = NULL;
    bh_fit **fits = NULL;
    size_t nmod = 0;
    bh_frame *codebook = NULL;
    bh_plot_labels *labels = NULL;

    bh_status s = bh_cli_parse(argc, argv, fit_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        fit_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;

    size_t nnames = 0, ntests = 0;
    char **formulas = bh_cli_all(&args, "model", &nmod);
    char **names = bh_cli_all(&args, "name", &nnames);
    char **tests = bh_cli_all(&args, "test", &ntests);
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
    int compare = bh_cli_flag(&args, "compare");
    if (compare && nmod < 2) {
        s = bh_error_set(&err, BH_EUSAGE, "--compare needs at least two -m models");
        goto fail;
    }

    bh_output_options oopt;
    bh_output_default_options(&oopt);
    const char *v;
    if ((v = bh_cli_get(&args, "format")) && (s = bh_format_parse(v, &oopt.format, &err)) != BH_OK)
        goto fail;
    if ((v = bh_cli_get(&args, "digits"))) {
        double d;
        if ((s = bh_cli_number("digits", v, 1, 17, &d, &err)) != BH_OK)
            goto fail;
        oopt.digits = (int)d;
    }
    if ((v = bh_cli_get(&args, "decimals"))) {
        double d;
        if ((s = bh_cli_number("decimals", v, 0, 15, &d, &err)) != BH_OK)
            goto fail;
        oopt.decimals = (int)d;
    }
    if ((v = bh_cli_get(&args, "stars")) && (s = bh_output_parse_stars(v, &oopt, &err)) != BH_OK)
        goto fail;
    if ((v = bh_cli_get(&args, "below"))) {
        const char *names[4] = {"se", "t", "ci", "none"};
        int k = 0;
        while (k < 4 && strcasecmp(v, names[k]) != 0)
            k++;
        if (k == 4) {
            s = bh_error_set(&err, BH_EUSAGE, "--below must be se, t, ci or none, not '%s'", v);
            goto fail;
        }
        oopt.below = (bh_below)k;
    }
    size_t nomit = 0;
    char **omit = bh_cli_all(&args, "omit", &nomit);
    oopt.omit = (const char *const *)omit;
    oopt.nomit = nomit;
    oopt.title = bh_cli_get(&args, "title");
    if ((v = bh_cli_get(&args, "labels"))) {
        bh_csv_options co;
        bh_csv_default_options(&co);
        if ((s = bh_csv_read_path(v, &co, &codebook, &err)) != BH_OK ||
            (s = bh_plot_labels_from_frame(codebook, v, &labels, &err)) != BH_OK)
            goto fail;
        oopt.labels = labels;
    }
    bh_model_spec spec;
    if ((s = bh_cli_model_spec(&args, &spec, &err)) != BH_OK)
        goto fail;

    if ((s = bh_cli_read_data(args.pos[0], &args, &data, &err)) != BH_OK)
        goto fail;

    models = calloc(nmod, sizeof *models);
    fits = calloc(nmod, sizeof *fits);
    if (!models || !fits) {
        s = bh_error_set(&err, BH_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t k = 0; k < nmod; k++) {
        char dflt[32];
        snprintf(dflt, sizeof dflt, "(%zu)", k + 1);
        spec.formula = formulas[k];
        spec.name = k < nnames ? names[k] : dflt;
        spec.trace = bh_cli_flag(&args, "trace") ? bh_cli_trace_iter : NULL;
        spec.trace_ctx = (void *)spec.name;
        spec.tests = (const char *const *)tests;
        spec.ntests = ntests;
        spec.tests_optional = nmod > 1;
        /* One model: nothing reads the data after its design is built, so
         * the frame is handed over and freed before estimation (peak
         * memory).  Several models each need it. */
        s = nmod == 1 ? bh_model_fit_consume(&data, &spec, &models[k], &err)
                      : bh_model_fit(data, &spec, &models[k], &err);
        if (s != BH_OK) {
            if (nmod > 1) {
                char msg[BH_ERROR_MSG_MAX];
                snprintf(msg, sizeof msg, "model %.64s: %.900s", spec.name, err.msg);
                snprintf(err.msg, sizeof err.msg, "%s", msg);
            }
            goto fail;
        }
        if (compare && k > 0 && (s = bh_model_compare(models[k - 1], models[k], &err)) != BH_OK)
            goto fail;
        fits[k] = models[k]->fit;
    }

    for (size_t t = 0; t < ntests; t++) {
        int used = 0;
        for (size_t k = 0; k < nmod; k++)
            for (size_t j = 0; j < fits[k]->ntests; j++)
                used |= strcmp(fits[k]->tests[j].label, tests[t]) == 0;
        for (size_t k = 0; !used && k < nmod; k++)
            for (size_t j = 0; j < fits[k]->nwarnings; j++)
                used |= strstr(fits[k]->warnings[j], "not computed") &&
                        strstr(fits[k]->warnings[j], tests[t]);
        if (!used) {
            s = bh_error_set(&err, BH_EUSAGE,
                             "--test '%s' names coefficients that no model has", tests[t]);
            goto fail;
        }
    }

    const char *repath = bh_cli_get(&args, "write-re");
    if (repath && (s = write_re(repath, models, nmod, &err)) != BH_OK)
        goto fail;

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
    /* The CSV contract has no place for warnings: they go to stderr. */
    if (oopt.format == BH_FMT_CSV)
        for (size_t k = 0; k < nmod; k++)
            for (size_t w = 0; w < fits[k]->nwarnings; w++)
                fprintf(stderr, "blackhole fit: model %s: warning: %s\n", fits[k]->name,
                        fits[k]->warnings[w]);
    for (size_t k = 0; k < nmod; k++)
        if (!fits[k]->converged) {
            fprintf(stderr, "blackhole fit: model %s did not converge after %zu iterations; "
                            "its estimates are not reliable\n", fits[k]->name, fits[k]->iterations);
            rc = BH_EXIT_ESTIMATION;
        }
    goto done;

fail:
    rc = bh_cli_fail("fit", &err);
done:
    if (models)
        for (size_t k = 0; k < nmod; k++)
            bh_model_free(models[k]);
    free(models);
    free(fits);
    bh_plot_labels_free(labels);
    bh_frame_free(codebook);
    bh_frame_free(data);
    bh_cli_args_free(&args);
    return rc;
}
