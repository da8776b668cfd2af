/* cmd_predict.c - `blackhole predict DATA -m FORMULA --newdata FILE`: fit on
 * DATA, then fitted values with standard errors for every row of FILE. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/atomicfile.h"
#include "blackhole/model.h"
#include "blackhole/predict.h"
#include "blackhole/output.h"
#include "blackhole/table.h"
#include "cli.h"

static const bh_cli_option predict_options[] = {
    {"model", 'm', 1, "FORMULA", "model formula, e.g. 'followed_up ~ quality * experience'"},
    {"newdata", 0, 1, "FILE", "rows to predict (CSV; default: DATA itself)"},
    BH_CLI_MODEL_OPTIONS,
    {"format", 0, 1, "F", "csv (default) or json"},
    {"output", 'o', 1, "FILE", "write to FILE (atomically) instead of standard output"},
    BH_CLI_DATA_OPTIONS,
};
#define NOPT (sizeof predict_options / sizeof predict_options[0])

static void predict_help(void)
{
    printf("usage: blackhole predict DATA -m FORMULA [--newdata FILE] [options]\n\n"
           "Fit the model on DATA and write, for every row of FILE (or DATA), the linear\n"
           "predictor and the fitted value on the response scale with standard errors\n"
           "(delta method, under the chosen --vcov) and confidence limits (computed on the\n"
           "link scale and transformed).  Rows with a missing predictor give NA.\n\n"
           "Options:\n");
    bh_cli_print_options(predict_options, NOPT);
    printf("\nCSV columns: row,eta,se_eta,fitted,se_fitted,conf_low,conf_high\n"
           "(Dirichlet models: row,component,fitted,se_fitted,conf_low,conf_high, the expected\n"
           "share of each component; mixed models: at a zero random effect)\n"
           "\nExit codes: 0 success, 1 estimation failed or did not converge, 2 usage error,\n"
           "3 input/data error, 4 output error.\n");
}

static bh_status write_csv(FILE *out, const bh_prediction *p, bh_error *err)
{
    if (p->components) {
        /* Dirichlet: one row per (row, component) */
        fputs("row,component,fitted,se_fitted,conf_low,conf_high\n", out);
        for (size_t i = 0; i < p->n; i++)
            for (size_t c = 0; c < p->ncomp; c++) {
                fprintf(out, "%zu,", i + 1);
                bh_write_csv_field(out, p->components[c]);
                const double v[4] = {p->mu[c * p->n + i], p->se_mu[c * p->n + i],
                                     p->conf_low[c * p->n + i], p->conf_high[c * p->n + i]};
                for (int k = 0; k < 4; k++) {
                    fputc(',', out);
                    bh_write_csv_num(out, v[k]);
                }
                fputc('\n', out);
            }
        return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
    }
    fputs("row,eta,se_eta,fitted,se_fitted,conf_low,conf_high\n", out);
    for (size_t i = 0; i < p->n; i++) {
        fprintf(out, "%zu", i + 1);
        const double v[6] = {p->eta[i], p->se_eta[i], p->mu[i], p->se_mu[i], p->conf_low[i],
                             p->conf_high[i]};
        for (int k = 0; k < 6; k++) {
            fputc(',', out);
            bh_write_csv_num(out, v[k]);
        }
        fputc('\n', out);
    }
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
}

static bh_status write_json(FILE *out, const bh_fit *fit, const bh_prediction *p, bh_error *err)
{
    json_t *root = json_object(), *rows = json_array();
    json_object_set_new(root, "model", json_string(fit->name));
    json_object_set_new(root, "formula", json_string(fit->formula));
    json_object_set_new(root, "vcov", json_string(fit->vcov_type));
    json_object_set_new(root, "level", bh_json_num(fit->level));
    for (size_t i = 0; i < p->n && p->components; i++)
        for (size_t c = 0; c < p->ncomp; c++) {
            json_t *r = json_object();
            size_t k = c * p->n + i;
            json_object_set_new(r, "row", json_integer((json_int_t)(i + 1)));
            json_object_set_new(r, "component", json_string(p->components[c]));
            json_object_set_new(r, "fitted", bh_json_num(p->mu[k]));
            json_object_set_new(r, "se_fitted", bh_json_num(p->se_mu[k]));
            json_object_set_new(r, "conf_low", bh_json_num(p->conf_low[k]));
            json_object_set_new(r, "conf_high", bh_json_num(p->conf_high[k]));
            json_array_append_new(rows, r);
        }
    for (size_t i = 0; i < p->n && !p->components; i++) {
        json_t *r = json_object();
        json_object_set_new(r, "row", json_integer((json_int_t)(i + 1)));
        json_object_set_new(r, "eta", bh_json_num(p->eta[i]));
        json_object_set_new(r, "se_eta", bh_json_num(p->se_eta[i]));
        json_object_set_new(r, "fitted", bh_json_num(p->mu[i]));
        json_object_set_new(r, "se_fitted", bh_json_num(p->se_mu[i]));
        json_object_set_new(r, "conf_low", bh_json_num(p->conf_low[i]));
        json_object_set_new(r, "conf_high", bh_json_num(p->conf_high[i]));
        json_array_append_new(rows, r);
    }
    json_object_set_new(root, "predictions", rows);
    int bad = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0;
    fputc('\n', out);
    json_decref(root);
    return bad || ferror(out) ? bh_error_set(err, BH_EOUTPUT, "cannot write JSON") : BH_OK;
}

int bh_cmd_predict(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_frame *data = NULL, *newdata = NULL;
    bh_model *model = NULL;
    bh_prediction *pred = NULL;

    bh_status s = bh_cli_parse(argc, argv, predict_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        predict_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    size_t nmod = 0;
    char **formulas = bh_cli_all(&args, "model", &nmod);
    if (args.npos != 1) {
        s = bh_error_set(&err, BH_EUSAGE, "expected one DATA file");
        goto fail;
    }
    if (nmod != 1) {
        s = bh_error_set(&err, BH_EUSAGE, "predict takes exactly one -m model (got %zu)", nmod);
        goto fail;
    }
    bh_format fmt = BH_FMT_CSV;
    const char *v = bh_cli_get(&args, "format");
    if (v && ((s = bh_format_parse(v, &fmt, &err)) != BH_OK))
        goto fail;
    if (fmt != BH_FMT_CSV && fmt != BH_FMT_JSON) {
        s = bh_error_set(&err, BH_EUSAGE, "predict writes csv or json, not '%s'", v);
        goto fail;
    }
    bh_model_spec spec;
    if ((s = bh_cli_single_spec(&args, formulas[0], &spec, &err)) != BH_OK)
        goto fail;
    if ((s = bh_cli_read_data(args.pos[0], &args, &data, &err)) != BH_OK)
        goto fail;
    const char *nd = bh_cli_get(&args, "newdata");
    if (nd && (s = bh_cli_read_data(nd, &args, &newdata, &err)) != BH_OK)
        goto fail;
    if ((s = bh_model_fit(data, &spec, &model, &err)) != BH_OK)
        goto fail;
    if (!model->fit->converged) {
        s = bh_error_set(&err, BH_ENOCONV, "the model did not converge after %zu iterations; "
                                           "no predictions written", model->fit->iterations);
        goto fail;
    }
    if ((s = bh_predict(model->fit, newdata ? newdata : data, &pred, &err)) != BH_OK)
        goto fail;
    bh_afile af;
    const char *outpath = bh_cli_get(&args, "output");
    if ((s = bh_afile_open(&af, outpath ? outpath : "-", &err)) != BH_OK)
        goto fail;
    s = fmt == BH_FMT_JSON ? write_json(af.fp, model->fit, pred, &err)
                           : write_csv(af.fp, pred, &err);
    if (s != BH_OK) {
        bh_afile_abort(&af);
        goto fail;
    }
    if ((s = bh_afile_commit(&af, &err)) != BH_OK)
        goto fail;
    if (pred->nmissing)
        fprintf(stderr, "blackhole predict: %zu row%s with a missing predictor: NA\n",
                pred->nmissing, pred->nmissing == 1 ? "" : "s");
    goto done;
fail:
    rc = bh_cli_fail("predict", &err);
done:
    bh_prediction_free(pred);
    bh_model_free(model);
    bh_frame_free(newdata);
    bh_frame_free(data);
    bh_cli_args_free(&args);
    return rc;
}
