/* cmd_margins.c - `blackhole margins DATA -m FORMULA [--dydx x] [--at ...]
 * [--jn x:m] [--interaction a:b]`: fit the model, then effects on the
 * response scale (margins.h) as a table, CSV or JSON. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/atomicfile.h"
#include "blackhole/margins.h"
#include "blackhole/model.h"
#include "blackhole/output.h"
#include "blackhole/table.h"
#include "cli.h"

static const bh_cli_option margins_options[] = {
    {"model", 'm', 1, "FORMULA", "model formula, e.g. 'followed_up ~ experience * tracking'"},
    BH_CLI_MODEL_OPTIONS,
    {"dydx", 0, 1, "X,Z", "average marginal effects of these variables (repeatable; default: all)"},
    {"discrete", 0, 0, NULL, "0/1 numeric variables: discrete change 0 -> 1 (factors always)"},
    {"re-average", 0, 0, NULL, "mixed models: average over the random-intercept distribution "
                               "(default: conditional on a zero random effect)"},
    {"atmeans", 0, 0, NULL, "effects at the means (numeric at means, factors at proportions)"},
    {"at", 0, 1, "M=V1,V2", "moderator values, e.g. \"experience=mean-sd,mean,mean+sd\" (repeatable: grid)"},
    {"predict", 0, 0, NULL, "average predictions (at each --at grid point)"},
    {"jn", 0, 1, "X:M", "Johnson-Neyman boundaries of the effect of X over moderator M (repeatable)"},
    {"interaction", 0, 1, "A:B", "Ai-Norton interaction effect d2 E[y]/dA dB (repeatable)"},
    {"jn-points", 0, 1, "N", "points of the Johnson-Neyman band (default 101)"},
    {"write-obs", 0, 1, "FILE", "per-row interaction effects with standard errors (CSV)"},
    {"write-band", 0, 1, "FILE", "Johnson-Neyman significance bands for plots (CSV)"},
    {"format", 0, 1, "F", "text (default), csv, md, latex, html or json"},
    {"digits", 0, 1, "N", "significant digits in text/md/latex/html (default 5)"},
    {"output", 'o', 1, "FILE", "write to FILE (atomically) instead of standard output"},
    BH_CLI_DATA_OPTIONS,
};
#define NOPT (sizeof margins_options / sizeof margins_options[0])

#define CSV_HEADER "model,type,term,at,estimate,std_error,statistic,p_value,conf_low,conf_high\n"

static void margins_help(void)
{
    printf("usage: blackhole margins DATA -m FORMULA [--dydx X,Z] [--at M=V,...] [options]\n\n"
           "Fit the model on DATA, then effects on the response scale (probability,\n"
           "expected share) with delta-method standard errors under the chosen --vcov:\n"
           "  --dydx      average marginal effects d E[y]/dx (ame), or with --atmeans at\n"
           "              the means (mem); factors and, with --discrete, 0/1 variables\n"
           "              give discrete changes (term 'race[2 vs 1]')\n"
           "  --at        simple slopes (slope) and --predict average predictions\n"
           "              (prediction) with moderators set to the values for every row;\n"
           "              values: numbers, mean, sd, min, max, median, pNN and + - * /\n"
           "  --jn        Johnson-Neyman boundaries (jn: estimate = moderator value);\n"
           "              the band over the observed range goes to --write-band and JSON\n"
           "  --interaction  Ai-Norton interaction effects (interaction), averaged;\n"
           "              per row with --write-obs\n\n"
           "Options:\n");
    bh_cli_print_options(margins_options, NOPT);
    printf("\nCSV columns: model,type,term,at,estimate,std_error,statistic,p_value,conf_low,conf_high\n"
           "(at: 'm=value' settings joined by ';', numbers in %%.17g; jn rows have NA inference)\n"
           "--write-obs columns: term,at,row,estimate,std_error (row: data row, 1-based)\n"
           "--write-band columns: term,moderator,value,estimate,std_error,conf_low,conf_high,significant\n"
           "\nExit codes: 0 success, 1 estimation failed or did not converge, 2 usage error,\n"
           "3 input/data error, 4 output error.\n");
}

/* CSV term: the component (multi-outcome models) in brackets after it. */
static void csv_term(FILE *out, const bh_margin *m)
{
    if (m->component && *m->component) {
        size_t n = strlen(m->term) + strlen(m->component) + 4;
        char *t = malloc(n);
        if (t) {
            snprintf(t, n, "%s (%s)", m->term, m->component);
            bh_write_csv_field(out, t);
            free(t);
            return;
        }
    }
    bh_write_csv_field(out, m->term);
}

static bh_status write_csv(FILE *out, const bh_margins_result *r, bh_error *err)
{
    fputs(CSV_HEADER, out);
    for (size_t i = 0; i < r->nrows; i++) {
        const bh_margin *m = &r->rows[i];
        bh_write_csv_field(out, r->model);
        fprintf(out, ",%s,", bh_margin_type_name(m->type));
        csv_term(out, m);
        fputc(',', out);
        bh_write_csv_field(out, m->at);
        const double v[6] = {m->estimate, m->std_error, m->statistic, m->p_value, m->conf_low,
                             m->conf_high};
        for (int k = 0; k < 6; k++) {
            fputc(',', out);
            bh_write_csv_num(out, v[k]);
        }
        fputc('\n', out);
    }
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
}

static bh_status write_json(FILE *out, const bh_margins_result *r, bh_error *err)
{
    json_t *root = json_object(), *rows = json_array(), *bands = json_array(),
           *notes = json_array();
    json_object_set_new(root, "model", json_string(r->model));
    json_object_set_new(root, "formula", json_string(r->formula));
    json_object_set_new(root, "family", json_string(r->family));
    json_object_set_new(root, "link", json_string(r->link));
    json_object_set_new(root, "vcov", json_string(r->vcov_type));
    json_object_set_new(root, "level", bh_json_num(r->level));
    json_object_set_new(root, "df", bh_json_num(r->df_inference));
    json_object_set_new(root, "nobs", json_integer((json_int_t)r->nobs));
    for (size_t i = 0; i < r->nrows; i++) {
        const bh_margin *m = &r->rows[i];
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(r->model));
        json_object_set_new(o, "type", json_string(bh_margin_type_name(m->type)));
        json_object_set_new(o, "term", json_string(m->term));
        json_object_set_new(o, "at", json_string(m->at));
        if (*m->component)
            json_object_set_new(o, "component", json_string(m->component));
        json_object_set_new(o, "estimate", bh_json_num(m->estimate));
        json_object_set_new(o, "std_error", bh_json_num(m->std_error));
        json_object_set_new(o, "statistic", bh_json_num(m->statistic));
        json_object_set_new(o, "p_value", bh_json_num(m->p_value));
        json_object_set_new(o, "conf_low", bh_json_num(m->conf_low));
        json_object_set_new(o, "conf_high", bh_json_num(m->conf_high));
        if (m->type == BH_MARGIN_JN)
            json_object_set_new(o, "in_range", json_boolean(m->in_range == 1));
        json_array_append_new(rows, o);
    }
    for (size_t b = 0; b < r->nbands; b++) {
        const bh_jn_band *j = &r->bands[b];
        json_t *o = json_object(), *pts = json_array();
        json_object_set_new(o, "term", json_string(j->term));
        json_object_set_new(o, "moderator", json_string(j->moderator));
        if (*j->component)
            json_object_set_new(o, "component", json_string(j->component));
        json_object_set_new(o, "observed_min", bh_json_num(j->lo));
        json_object_set_new(o, "observed_max", bh_json_num(j->hi));
        json_object_set_new(o, "exact", json_boolean(j->exact));
        for (size_t i = 0; i < j->n; i++) {
            json_t *p = json_object();
            json_object_set_new(p, "value", bh_json_num(j->value[i]));
            json_object_set_new(p, "estimate", bh_json_num(j->estimate[i]));
            json_object_set_new(p, "std_error", bh_json_num(j->std_error[i]));
            json_object_set_new(p, "conf_low", bh_json_num(j->conf_low[i]));
            json_object_set_new(p, "conf_high", bh_json_num(j->conf_high[i]));
            json_object_set_new(p, "significant", json_boolean(j->significant[i]));
            json_array_append_new(pts, p);
        }
        json_object_set_new(o, "band", pts);
        json_array_append_new(bands, o);
    }
    for (size_t i = 0; i < r->nnotes; i++)
        json_array_append_new(notes, json_string(r->notes[i]));
    json_object_set_new(root, "margins", rows);
    json_object_set_new(root, "jn_bands", bands);
    json_object_set_new(root, "notes", notes);
    int bad = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0;
    fputc('\n', out);
    json_decref(root);
    return bad || ferror(out) ? bh_error_set(err, BH_EOUTPUT, "cannot write JSON") : BH_OK;
}

/* Display of an at setting: the numbers shortened to `digits`. */
static void short_at(char *buf, size_t size, const char *at, int digits)
{
    size_t o = 0;
    const char *p = at;
    buf[0] = '\0';
    while (*p && o + 1 < size) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end) {
            size_t n = (size_t)(end - p);
            if (n > size - o - 1)
                n = size - o - 1;
            memcpy(buf + o, p, n);
            o += n;
        } else {
            char *stop;
            double v = strtod(eq + 1, &stop);
            char num[64];
            int isnum = stop == end && stop != eq + 1;
            int r = isnum ? snprintf(buf + o, size - o, "%.*s=%s", (int)(eq - p), p,
                                     bh_fmt_num(num, sizeof num, v, digits))
                          : snprintf(buf + o, size - o, "%.*s", (int)(end - p), p);
            if (r > 0)
                o += (size_t)r < size - o ? (size_t)r : size - o - 1;
        }
        if (!*end)
            break;
        if (o + 2 < size) {
            buf[o++] = ';';
            buf[o++] = ' ';
            buf[o] = '\0';
        }
        p = end + 1;
    }
    buf[o < size ? o : size - 1] = '\0';
}

static bh_status write_table(FILE *out, const bh_margins_result *r, bh_format fmt, int digits,
                             bh_error *err)
{
    bh_table *t = bh_table_new(9);
    if (!t)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    char title[512], lo[32], hi[32];
    snprintf(title, sizeof title, "Margins: model %s: %s (%s, %s link)", r->model, r->formula,
             r->family, r->link);
    snprintf(lo, sizeof lo, "%g%% low", 100 * r->level);
    snprintf(hi, sizeof hi, "%g%% high", 100 * r->level);
    const char *stat = isinf(r->df_inference) ? "z" : "t";
    const char *hdr[9] = {"type", "term", "at", "estimate", "std. error", stat, "p", lo, hi};
    bh_status s = bh_table_set_title(t, title);
    if (!s)
        s = bh_table_set_header(t, hdr);
    for (size_t j = 0; j < 9; j++)
        bh_table_set_align(t, j, j < 3 ? BH_ALIGN_LEFT : BH_ALIGN_RIGHT);
    for (size_t i = 0; i < r->nrows && !s; i++) {
        const bh_margin *m = &r->rows[i];
        char c[9][256];
        snprintf(c[0], sizeof c[0], "%s", bh_margin_type_name(m->type));
        if (*m->component)
            snprintf(c[1], sizeof c[1], "%s (%s)", m->term, m->component);
        else
            snprintf(c[1], sizeof c[1], "%s", m->term);
        short_at(c[2], sizeof c[2], m->at, digits);
        bh_fmt_num(c[3], sizeof c[3], m->estimate, digits);
        if (m->type == BH_MARGIN_JN) {
            snprintf(c[4], sizeof c[4], "%s", m->in_range == 1 ? "(within" : "(beyond");
            snprintf(c[5], sizeof c[5], "%s", "observed");
            snprintf(c[6], sizeof c[6], "%s", "range)");
            c[7][0] = c[8][0] = '\0';
        } else {
            bh_fmt_num(c[4], sizeof c[4], m->std_error, digits);
            bh_fmt_num(c[5], sizeof c[5], m->statistic, 4);
            bh_fmt_pvalue(c[6], sizeof c[6], m->p_value);
            bh_fmt_num(c[7], sizeof c[7], m->conf_low, digits);
            bh_fmt_num(c[8], sizeof c[8], m->conf_high, digits);
        }
        const char *row[9];
        for (int k = 0; k < 9; k++)
            row[k] = c[k];
        s = bh_table_add_row(t, row);
    }
    char note[640];
    if (!s) {
        snprintf(note, sizeof note,
                 "Effects on the response scale (%s), averaged over N = %zu; standard errors by "
                 "the delta method, covariance %s; %s tests%s.",
                 r->link, r->nobs, r->vcov_type, stat,
                 isinf(r->df_inference) ? "" : " with the model's residual df");
        s = bh_table_add_note(t, note);
    }
    if (!s && r->nrows && fmt != BH_FMT_CSV)
        s = bh_table_add_note(t, "Types: ame average marginal effect, mem effect at means, slope "
                                 "effect at the --at values, jn Johnson-Neyman boundary (estimate "
                                 "= moderator value).");
    for (size_t i = 0; i < r->nnotes && !s; i++)
        s = bh_table_add_note(t, r->notes[i]);
    if (!s)
        s = bh_table_render(t, fmt, out, err);
    else if (s == BH_ENOMEM)
        bh_error_set(err, s, "out of memory");
    bh_table_free(t);
    return s;
}

typedef struct {
    FILE *fp;
} obsctx;

static bh_status write_obs(void *ctx, const bh_margin *stat, size_t row, double value, double se,
                           bh_error *err)
{
    obsctx *o = ctx;
    bh_write_csv_field(o->fp, stat->term);
    fputc(',', o->fp);
    bh_write_csv_field(o->fp, stat->at);
    fprintf(o->fp, ",%zu,", row + 1);
    bh_write_csv_num(o->fp, value);
    fputc(',', o->fp);
    bh_write_csv_num(o->fp, se);
    fputc('\n', o->fp);
    return ferror(o->fp) ? bh_error_set(err, BH_EOUTPUT, "cannot write --write-obs file")
                         : BH_OK;
}

static bh_status write_band(FILE *out, const bh_margins_result *r, bh_error *err)
{
    fputs("term,moderator,value,estimate,std_error,conf_low,conf_high,significant\n", out);
    for (size_t b = 0; b < r->nbands; b++) {
        const bh_jn_band *j = &r->bands[b];
        for (size_t i = 0; i < j->n; i++) {
            bh_write_csv_field(out, j->term);
            fputc(',', out);
            bh_write_csv_field(out, j->moderator);
            const double v[5] = {j->value[i], j->estimate[i], j->std_error[i], j->conf_low[i],
                                 j->conf_high[i]};
            for (int k = 0; k < 5; k++) {
                fputc(',', out);
                bh_write_csv_num(out, v[k]);
            }
            fprintf(out, ",%d\n", j->significant[i] ? 1 : 0);
        }
    }
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "cannot write --write-band file")
                       : BH_OK;
}

int bh_cmd_margins(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_frame *data = NULL;
    bh_model *model = NULL;
    bh_margins_result *res = NULL;
    bh_afile obs_af = {0}, band_af = {0};
    int obs_open = 0, band_open = 0;

    bh_status s = bh_cli_parse(argc, argv, margins_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        margins_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    size_t nmod = 0;
    char **formulas = bh_cli_all(&args, "model", &nmod);
    if (args.npos != 1) {
        s = bh_error_set(&err, BH_EUSAGE, args.npos ? "expected one DATA file, got %zu arguments"
                                                     : "missing DATA file (a CSV path or '-')",
                         args.npos);
        goto fail;
    }
    if (nmod != 1) {
        s = bh_error_set(&err, BH_EUSAGE, "margins takes exactly one -m model (got %zu)", nmod);
        goto fail;
    }
    bh_format fmt = BH_FMT_TEXT;
    int digits = 5;
    const char *v;
    if ((v = bh_cli_get(&args, "format")) && (s = bh_format_parse(v, &fmt, &err)) != BH_OK)
        goto fail;
    if ((v = bh_cli_get(&args, "digits"))) {
        double d;
        if ((s = bh_cli_number("digits", v, 1, 17, &d, &err)) != BH_OK)
            goto fail;
        digits = (int)d;
    }
    bh_margins_options mo;
    bh_margins_default_options(&mo);
    if ((v = bh_cli_get(&args, "jn-points"))) {
        double d;
        if ((s = bh_cli_number("jn-points", v, 2, 1e6, &d, &err)) != BH_OK)
            goto fail;
        mo.jn_points = (size_t)d;
    }
    mo.dydx = (const char *const *)bh_cli_all(&args, "dydx", &mo.ndydx);
    mo.at = (const char *const *)bh_cli_all(&args, "at", &mo.nat);
    mo.jn = (const char *const *)bh_cli_all(&args, "jn", &mo.njn);
    mo.interaction = (const char *const *)bh_cli_all(&args, "interaction", &mo.ninteraction);
    mo.discrete = bh_cli_flag(&args, "discrete");
    mo.atmeans = bh_cli_flag(&args, "atmeans");
    mo.predict = bh_cli_flag(&args, "predict");
    const char *obs_path = bh_cli_get(&args, "write-obs");
    const char *band_path = bh_cli_get(&args, "write-band");
    if (obs_path && mo.ninteraction == 0) {
        s = bh_error_set(&err, BH_EUSAGE, "--write-obs writes per-row interaction effects: "
                                          "add --interaction A:B");
        goto fail;
    }
    if (obs_path && mo.atmeans) {
        s = bh_error_set(&err, BH_EUSAGE, "--write-obs has no per-row values with --atmeans");
        goto fail;
    }
    if (band_path && mo.njn == 0) {
        s = bh_error_set(&err, BH_EUSAGE, "--write-band writes Johnson-Neyman bands: add --jn X:M");
        goto fail;
    }

    bh_model_spec spec;
    if ((s = bh_cli_single_spec(&args, formulas[0], &spec, &err)) != BH_OK)
        goto fail;
    if ((s = bh_cli_read_data(args.pos[0], &args, &data, &err)) != BH_OK)
        goto fail;
    if ((s = bh_model_fit(data, &spec, &model, &err)) != BH_OK)
        goto fail;
    if (!model->fit->converged) {
        s = bh_error_set(&err, BH_ENOCONV, "the model did not converge after %zu iterations; "
                                           "no margins computed", model->fit->iterations);
        goto fail;
    }
    bh_margins_model mm;
    bh_margins_softmax softmax;
    bh_margins_ravg ravg;
    if (bh_cli_flag(&args, "re-average")) {
        if (!model->re) {
            s = bh_error_set(&err, BH_EUSAGE,
                             "--re-average needs a mixed model (a (1 | g) term in the formula)");
            goto fail;
        }
        s = bh_margins_model_ravg(model->fit, data, &ravg, &mm, &err);
    } else
        s = bh_margins_model_for(model->fit, data, &softmax, &mm, &err);
    if (s != BH_OK)
        goto fail;
    obsctx oc = {0};
    if (obs_path) {
        if ((s = bh_afile_open(&obs_af, obs_path, &err)) != BH_OK)
            goto fail;
        obs_open = 1;
        fputs("term,at,row,estimate,std_error\n", obs_af.fp);
        oc.fp = obs_af.fp;
        mo.obs = write_obs;
        mo.obs_ctx = &oc;
    }
    if ((s = bh_margins_compute(&mm, &mo, &res, &err)) != BH_OK)
        goto fail;
    if (band_path) {
        if ((s = bh_afile_open(&band_af, band_path, &err)) != BH_OK)
            goto fail;
        band_open = 1;
        if ((s = write_band(band_af.fp, res, &err)) != BH_OK)
            goto fail;
    }
    bh_afile af;
    const char *outpath = bh_cli_get(&args, "output");
    if ((s = bh_afile_open(&af, outpath ? outpath : "-", &err)) != BH_OK)
        goto fail;
    s = fmt == BH_FMT_JSON  ? write_json(af.fp, res, &err)
        : fmt == BH_FMT_CSV ? write_csv(af.fp, res, &err)
                            : write_table(af.fp, res, fmt, digits, &err);
    if (s != BH_OK) {
        bh_afile_abort(&af);
        goto fail;
    }
    if ((s = bh_afile_commit(&af, &err)) != BH_OK)
        goto fail;
    if (obs_open) {
        obs_open = 0;
        if ((s = bh_afile_commit(&obs_af, &err)) != BH_OK)
            goto fail;
    }
    if (band_open) {
        band_open = 0;
        if ((s = bh_afile_commit(&band_af, &err)) != BH_OK)
            goto fail;
    }
    goto done;
fail:
    rc = bh_cli_fail("margins", &err);
done:
    if (obs_open)
        bh_afile_abort(&obs_af);
    if (band_open)
        bh_afile_abort(&band_af);
    bh_margins_result_free(res);
    bh_model_free(model);
    bh_frame_free(data);
    bh_cli_args_free(&args);
    return rc;
}
