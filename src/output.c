/* output.c - fitted models as tables (text, CSV, Markdown, LaTeX, HTML) and
 * JSON.  Only formats; every number comes from the bh_fit. */
#include "blackhole/output.h"
#include "blackhole/boot.h"
#include "blackhole/plot.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bh_output_default_options(bh_output_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->format = BH_FMT_TEXT;
    opt->digits = 5;
    opt->decimals = -1;
    bh_output_parse_stars("r", opt, NULL);
}

bh_status bh_output_parse_stars(const char *s, bh_output_options *opt, bh_error *err)
{
    static const char *const marks[4] = {"*", "**", "***", "****"};
    if (strcmp(s, "none") == 0) {
        opt->nstars = 0;
        return BH_OK;
    }
    if (strcmp(s, "r") == 0 || strcmp(s, "R") == 0) {
        const double th[4] = {0.1, 0.05, 0.01, 0.001};
        const char *mk[4] = {".", "*", "**", "***"};
        memcpy(opt->stars, th, sizeof th);
        memcpy(opt->star_marks, mk, sizeof mk);
        opt->nstars = 4;
        return BH_OK;
    }
    if (strcmp(s, "econ") == 0)
        s = "0.1,0.05,0.01";
    double th[4];
    size_t n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0 && v < 1) || n == 4 || (n && !(v < th[n - 1])))
            return bh_error_set(err, BH_EUSAGE,
                                "--stars: expected none, r, econ or up to 4 decreasing "
                                "thresholds in (0, 1) such as 0.1,0.05,0.01, not '%s'", s);
        th[n++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return bh_error_set(err, BH_EUSAGE, "--stars: unexpected '%c' in '%s'", *end, s);
    }
    for (size_t k = 0; k < n; k++) {
        opt->stars[k] = th[k];
        opt->star_marks[k] = marks[k];
    }
    opt->nstars = n;
    return BH_OK;
}

const char *bh_output_stars(const bh_output_options *opt, double p)
{
    const char *m = "";
    if (isnan(p))
        return m;
    for (size_t k = 0; k < opt->nstars; k++)
        if (p < opt->stars[k])
            m = opt->star_marks[k];
    return m;
}

/* The stars legend of opt ("* 0.1, ** 0.05, *** 0.01"). */
static void stars_legend(const bh_output_options *opt, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "Signif. codes:");
    if (!opt->nstars)
        snprintf(buf, n, "No significance stars.");
    for (size_t k = opt->nstars; k-- > 0 && o < n;)
        o += (size_t)snprintf(buf + o, n - o, " %s %g%s", opt->star_marks[k], opt->stars[k],
                              k ? "," : "");
}

static int omitted(const bh_output_options *opt, const char *term, size_t *which)
{
    for (size_t k = 0; k < opt->nomit; k++)
        if (strstr(term, opt->omit[k])) {
            if (which)
                *which = k;
            return 1;
        }
    return 0;
}

static char *fmt_est(const bh_output_options *opt, char *buf, size_t n, double v)
{
    if (opt->decimals >= 0 && isfinite(v))
        return bh_fmt_fixed(buf, n, v, opt->decimals);
    return bh_fmt_num(buf, n, v, opt->digits > 0 ? opt->digits : 5);
}

const char *bh_stars(double p)
{
    if (isnan(p))
        return "";
    if (p < 0.001)
        return "***";
    if (p < 0.01)
        return "**";
    if (p < 0.05)
        return "*";
    if (p < 0.1)
        return ".";
    return "";
}

static const char *str_or(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

static const char *stat_label(const bh_fit *f)
{
    return isinf(f->df_inference) ? "z" : "t";
}

/* ---- CSV contract ---------------------------------------------------------- */

static void write_csv(FILE *out, const bh_fit *const *fits, size_t nfits)
{
    fputs("model,component,term,estimate,std_error,statistic,p_value,conf_low,conf_high\n", out);
    for (size_t m = 0; m < nfits; m++) {
        const bh_fit *f = fits[m];
        for (size_t j = 0; j < f->p; j++) {
            bh_write_csv_field(out, str_or(f->name, ""));
            fputc(',', out);
            bh_write_csv_field(out, f->component ? str_or(f->component[j], "") : "");
            fputc(',', out);
            bh_write_csv_field(out, f->term[j]);
            const double v[6] = {f->beta[j], f->se[j], f->statistic[j], f->p_value[j],
                                 f->conf_low[j], f->conf_high[j]};
            for (int k = 0; k < 6; k++) {
                fputc(',', out);
                bh_write_csv_num(out, v[k]);
            }
            fputc('\n', out);
        }
    }
}

/* ---- JSON ------------------------------------------------------------------- */

json_t *bh_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int jset(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *json_fit(const bh_fit *f)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= jset(o, "name", json_string(str_or(f->name, "")));
    bad |= jset(o, "formula", json_string(str_or(f->formula, "")));
    bad |= jset(o, "family", json_string(str_or(f->family, "")));
    bad |= jset(o, "link", json_string(str_or(f->link, "")));
    bad |= jset(o, "method", json_string(str_or(f->method, "")));
    bad |= jset(o, "nobs", json_integer((json_int_t)f->nobs));
    bad |= jset(o, "rows_dropped", json_integer((json_int_t)f->ndropped));

    json_t *vc = json_object();
    bad |= jset(vc, "type", json_string(f->vcov_type));
    bad |= jset(vc, "clusters", f->nclusters ? json_integer((json_int_t)f->nclusters)
                                             : json_null());
    bad |= jset(vc, "df", bh_json_num(f->df_inference));
    bad |= jset(vc, "statistic", json_string(stat_label(f)));
    bad |= jset(vc, "level", bh_json_num(f->level));
    bad |= jset(o, "vcov", vc);

    json_t *coefs = json_array();
    json_t *terms = json_array();
    for (size_t j = 0; j < f->p; j++) {
        json_t *c = json_object();
        bad |= jset(c, "component", json_string(f->component ? str_or(f->component[j], "") : ""));
        bad |= jset(c, "term", json_string(f->term[j]));
        bad |= jset(c, "estimate", bh_json_num(f->beta[j]));
        bad |= jset(c, "std_error", bh_json_num(f->se[j]));
        bad |= jset(c, "statistic", bh_json_num(f->statistic[j]));
        bad |= jset(c, "p_value", bh_json_num(f->p_value[j]));
        bad |= jset(c, "conf_low", bh_json_num(f->conf_low[j]));
        bad |= jset(c, "conf_high", bh_json_num(f->conf_high[j]));
        bad |= jset(c, "aliased", json_boolean(f->aliased && f->aliased[j]));
        bad |= json_array_append_new(coefs, c);
        bad |= json_array_append_new(terms, json_string(f->term[j]));
    }
    bad |= jset(o, "coefficients", coefs);

    json_t *cov = json_object();
    json_t *rows = json_array();
    for (size_t i = 0; i < f->p; i++) {
        json_t *r = json_array();
        for (size_t j = 0; j < f->p; j++)
            bad |= json_array_append_new(r, bh_json_num(f->vcov ? f->vcov[i * f->p + j] : NAN));
        bad |= json_array_append_new(rows, r);
    }
    bad |= jset(cov, "terms", terms);
    bad |= jset(cov, "matrix", rows);
    bad |= jset(o, "covariance", cov);

    const bh_fit_stats *s = &f->stats;
    json_t *st = json_object();
    const struct { const char *k; double v; } sv[] = {
        {"r_squared", s->r2}, {"adj_r_squared", s->adj_r2}, {"sigma", s->sigma},
        {"f_statistic", s->fstat}, {"f_df1", s->f_df1}, {"f_df2", s->f_df2},
        {"f_p_value", s->f_pvalue}, {"log_likelihood", s->loglik}, {"aic", s->aic},
        {"bic", s->bic}, {"deviance", s->deviance}, {"null_deviance", s->null_deviance},
        {"df_model", s->df_model}, {"df_residual", s->df_resid},
        {"pseudo_r_squared_mcfadden", s->pseudo_r2_mcfadden},
        {"pseudo_r_squared_tjur", s->pseudo_r2_tjur}, {"auc", s->auc},
    };
    for (size_t k = 0; k < sizeof sv / sizeof sv[0]; k++)
        if (!isnan(sv[k].v))
            bad |= jset(st, sv[k].k, bh_json_num(sv[k].v));
    bad |= jset(o, "statistics", st);

    json_t *cv = json_object();
    bad |= jset(cv, "converged", json_boolean(f->converged));
    bad |= jset(cv, "iterations", json_integer((json_int_t)f->iterations));
    bad |= jset(o, "convergence", cv);

    json_t *tests = json_array();
    for (size_t k = 0; k < f->ntests; k++) {
        const bh_fit_test *x = &f->tests[k];
        json_t *o2 = json_object();
        bad |= jset(o2, "kind", json_string(x->kind));
        bad |= jset(o2, "hypothesis", json_string(x->label));
        bad |= jset(o2, "statistic", bh_json_num(x->statistic));
        bad |= jset(o2, "df1", bh_json_num(x->df1));
        bad |= jset(o2, "df2", bh_json_num(x->df2));
        bad |= jset(o2, "distribution", json_string(isinf(x->df2) ? "chi2" : "F"));
        bad |= jset(o2, "p_value", bh_json_num(x->p_value));
        bad |= json_array_append_new(tests, o2);
    }
    bad |= jset(o, "tests", tests);
    if (f->boot) {
        const bh_boot_result *b = f->boot;
        json_t *bo = json_object(), *rows = json_array();
        bad |= jset(bo, "method", json_string(bh_boot_method_name(b->method)));
        bad |= jset(bo, "weights", json_string(bh_boot_weights_name(b->weights)));
        bad |= jset(bo, "reps", json_integer((json_int_t)b->reps));
        bad |= jset(bo, "reps_requested", json_integer((json_int_t)b->reps_requested));
        bad |= jset(bo, "enumerated", json_boolean(b->enumerated));
        bad |= jset(bo, "seed", json_integer((json_int_t)b->seed));
        bad |= jset(bo, "clusters", json_integer((json_int_t)b->nclusters));
        bad |= jset(bo, "level", bh_json_num(b->level));
        for (size_t j = 0; j < b->p; j++) {
            if (!b->tested[j])
                continue;
            json_t *r = json_object();
            bad |= jset(r, "term", json_string(f->term[j]));
            bad |= jset(r, "null", bh_json_num(b->null_value[j]));
            bad |= jset(r, "statistic", bh_json_num(b->statistic[j]));
            bad |= jset(r, "p_value", bh_json_num(b->p_value[j]));
            bad |= jset(r, "p_value_strict", bh_json_num(b->p_value_strict[j]));
            /* unbounded interval ends are strings: JSON has no infinity */
            bad |= jset(r, "conf_low", isinf(b->conf_low[j]) ? json_string("-Inf") : bh_json_num(b->conf_low[j]));
            bad |= jset(r, "conf_high", isinf(b->conf_high[j]) ? json_string("Inf") : bh_json_num(b->conf_high[j]));
            bad |= json_array_append_new(rows, r);
        }
        bad |= jset(bo, "coefficients", rows);
        json_t *bw = json_array();
        for (size_t k = 0; k < b->nwarnings; k++)
            bad |= json_array_append_new(bw, json_string(b->warnings[k]));
        bad |= jset(bo, "warnings", bw);
        bad |= jset(o, "bootstrap", bo);
    }

    json_t *notes = json_array();
    for (size_t k = 0; k < f->nnotes; k++)
        bad |= json_array_append_new(notes, json_string(f->notes[k]));
    bad |= jset(o, "notes", notes);

    json_t *w = json_array();
    for (size_t k = 0; k < f->nwarnings; k++)
        bad |= json_array_append_new(w, json_string(f->warnings[k]));
    bad |= jset(o, "warnings", w);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bh_status write_json(FILE *out, const bh_fit *const *fits, size_t nfits,
                            bh_error *err)
{
    json_t *root = json_object();
    json_t *models = json_array();
    int bad = !root || !models;
    for (size_t m = 0; !bad && m < nfits; m++) {
        json_t *o = json_fit(fits[m]);
        bad |= !o || json_array_append_new(models, o) != 0;
    }
    if (!bad)
        bad |= json_object_set_new(root, "models", models) != 0;
    else
        json_decref(models);
    if (bad || json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0) {
        json_decref(root);
        return bh_error_set(err, BH_EOUTPUT, "cannot write JSON output");
    }
    fputc('\n', out);
    json_decref(root);
    return BH_OK;
}

/* ---- human-readable tables ------------------------------------------------- */

static const char *coef_label(const bh_fit *f, size_t j, char *buf, size_t n)
{
    if (f->component && f->component[j] && f->component[j][0])
        snprintf(buf, n, "%s: %s", f->component[j], f->term[j]);
    else
        snprintf(buf, n, "%s", f->term[j]);
    return buf;
}

static bh_status add_stat_note(bh_table *t, const char *text)
{
    return bh_table_add_note(t, text);
}

/* "Wald test of a = 0: F(1, 27) = 4.2, p = 0.05" */
static const char *test_line(const bh_fit *f, size_t k, char *line, size_t size, int digits)
{
    const bh_fit_test *x = &f->tests[k];
    char a[64], b[64], c[64], p[32];
    const char *what = strcmp(x->kind, "wald") == 0 ? "Wald test of "
                       : strcmp(x->kind, "lr") == 0 ? "Likelihood-ratio test " : "F test ";
    if (isinf(x->df2))
        snprintf(line, size, "%s: %s%s: chi2(%s) = %s, p = %s", str_or(f->name, ""), what,
                 x->label, bh_fmt_num(a, sizeof a, x->df1, 10),
                 bh_fmt_num(b, sizeof b, x->statistic, digits), bh_fmt_pvalue(p, sizeof p, x->p_value));
    else
        snprintf(line, size, "%s: %s%s: F(%s, %s) = %s, p = %s", str_or(f->name, ""), what,
                 x->label, bh_fmt_num(a, sizeof a, x->df1, 10), bh_fmt_num(c, sizeof c, x->df2, 10),
                 bh_fmt_num(b, sizeof b, x->statistic, digits), bh_fmt_pvalue(p, sizeof p, x->p_value));
    return line;
}

/* Model description lines shared by the single- and multi-model layouts. */
static bh_status describe_model(bh_table *t, const bh_fit *f, int digits)
{
    char line[1024], a[64], b[64], c[64], d[64];
    bh_status s = BH_OK;
    snprintf(line, sizeof line, "Model %s: %s  [%s, %s link; %s]", str_or(f->name, ""),
             str_or(f->formula, ""), str_or(f->family, "gaussian"),
             str_or(f->link, "identity"), str_or(f->method, ""));
    s = add_stat_note(t, line);
    if (s == BH_OK) {
        snprintf(line, sizeof line, "N = %zu (%zu row%s dropped for missing values); "
                 "standard errors: %s%s", f->nobs, f->ndropped, f->ndropped == 1 ? "" : "s",
                 f->vcov_type[0] ? f->vcov_type : "classical", "");
        s = add_stat_note(t, line);
    }
    if (s == BH_OK && f->nclusters) {
        snprintf(line, sizeof line, "%zu clusters; %s tests with %s df%s", f->nclusters,
                 stat_label(f), bh_fmt_num(a, sizeof a, f->df_inference, 6),
                 f->nclusters < 42 ? " (few clusters: cluster-robust SEs may be biased "
                                     "downward; consider the wild cluster bootstrap)" : "");
        s = add_stat_note(t, line);
    }
    const bh_fit_stats *st = &f->stats;
    if (s == BH_OK && !isnan(st->r2)) {
        snprintf(line, sizeof line, "R-squared %s, adjusted %s; residual SD %s on %s df",
                 bh_fmt_num(a, sizeof a, st->r2, digits), bh_fmt_num(b, sizeof b, st->adj_r2, digits),
                 bh_fmt_num(c, sizeof c, st->sigma, digits),
                 bh_fmt_num(d, sizeof d, st->df_resid, 10));
        s = add_stat_note(t, line);
    }
    if (s == BH_OK && !isnan(st->fstat)) {
        char p[32];
        snprintf(line, sizeof line, "F = %s on %s and %s df, p %s%s",
                 bh_fmt_num(a, sizeof a, st->fstat, digits), bh_fmt_num(b, sizeof b, st->f_df1, 10),
                 bh_fmt_num(c, sizeof c, st->f_df2, 10), isnan(st->f_pvalue) || st->f_pvalue >= 2.2e-16 ? "= " : "",
                 bh_fmt_pvalue(p, sizeof p, st->f_pvalue));
        s = add_stat_note(t, line);
    }
    if (s == BH_OK && !isnan(st->loglik)) {
        if (isnan(st->aic)) /* quasi-likelihood families have no AIC */
            snprintf(line, sizeof line, "quasi-log-likelihood %s (no AIC/BIC for a "
                     "quasi-likelihood)", bh_fmt_num(a, sizeof a, st->loglik, digits + 2));
        else
            snprintf(line, sizeof line, "log-likelihood %s, AIC %s, BIC %s",
                     bh_fmt_num(a, sizeof a, st->loglik, digits + 2),
                     bh_fmt_num(b, sizeof b, st->aic, digits + 2),
                     bh_fmt_num(c, sizeof c, st->bic, digits + 2));
        s = add_stat_note(t, line);
    }
    if (s == BH_OK && !f->linear && !isnan(st->deviance)) {
        size_t o = (size_t)snprintf(line, sizeof line, "deviance %s on %s df",
                                    bh_fmt_num(a, sizeof a, st->deviance, digits + 2),
                                    bh_fmt_num(b, sizeof b, st->df_resid, 10));
        if (!isnan(st->null_deviance) && o < sizeof line)
            snprintf(line + o, sizeof line - o, "; null deviance %s on %s df",
                     bh_fmt_num(c, sizeof c, st->null_deviance, digits + 2),
                     bh_fmt_num(d, sizeof d, st->null_df, 10));
        s = add_stat_note(t, line);
    }
    if (s == BH_OK && !isnan(st->pseudo_r2_mcfadden)) {
        char e[64];
        size_t o = (size_t)snprintf(line, sizeof line, "McFadden R-squared %s",
                                    bh_fmt_num(a, sizeof a, st->pseudo_r2_mcfadden, digits));
        if (!isnan(st->pseudo_r2_tjur) && o < sizeof line)
            o += (size_t)snprintf(line + o, sizeof line - o, ", Tjur R-squared %s",
                                  bh_fmt_num(b, sizeof b, st->pseudo_r2_tjur, digits));
        if (!isnan(st->auc) && o < sizeof line)
            snprintf(line + o, sizeof line - o, ", AUC %s", bh_fmt_num(e, sizeof e, st->auc, digits));
        s = add_stat_note(t, line);
    }
    if (s == BH_OK && !isnan(st->hl_stat)) {
        char p[32];
        snprintf(line, sizeof line, "Hosmer-Lemeshow chi2 = %s on %s df, p = %s",
                 bh_fmt_num(a, sizeof a, st->hl_stat, digits), bh_fmt_num(b, sizeof b, st->hl_df, 10),
                 bh_fmt_pvalue(p, sizeof p, st->hl_pvalue));
        s = add_stat_note(t, line);
    }
    for (size_t k = 0; s == BH_OK && k < f->nnotes; k++)
        s = add_stat_note(t, f->notes[k]);
    for (size_t k = 0; s == BH_OK && k < f->ntests; k++)
        s = add_stat_note(t, test_line(f, k, line, sizeof line, digits));
    if (s == BH_OK && !f->converged) {
        snprintf(line, sizeof line, "WARNING: did not converge after %zu iterations", f->iterations);
        s = add_stat_note(t, line);
    }
    for (size_t k = 0; s == BH_OK && k < f->nwarnings; k++) {
        snprintf(line, sizeof line, "Warning: %s", f->warnings[k]);
        s = add_stat_note(t, line);
    }
    return s;
}

static bh_status single_table(const bh_fit *f, const bh_output_options *opt,
                              bh_table **out)
{
    int dg = opt->digits > 0 ? opt->digits : 5;
    bh_table *t = bh_table_new(8);
    if (!t)
        return BH_ENOMEM;
    char sh[32], ph[32], lo[48], hi[48];
    snprintf(sh, sizeof sh, "%s value", stat_label(f));
    snprintf(ph, sizeof ph, "Pr(>|%s|)", stat_label(f));
    double lvl = isnan(f->level) ? 95 : 100 * f->level;
    snprintf(lo, sizeof lo, "%.4g%% CI low", lvl);
    snprintf(hi, sizeof hi, "high");
    const char *hdr[8] = {"term", "estimate", "std.error", sh, ph, "", lo, hi};
    bh_status s = bh_table_set_header(t, hdr);
    for (size_t j = 1; j < 8; j++)
        bh_table_set_align(t, j, j == 5 ? BH_ALIGN_LEFT : BH_ALIGN_RIGHT);
    if (s == BH_OK && opt->title)
        s = bh_table_set_title(t, opt->title);
    for (size_t j = 0; s == BH_OK && j < f->p; j++) {
        char c[8][64];
        coef_label(f, j, c[0], sizeof c[0]);
        if (omitted(opt, c[0], NULL))
            continue;
        if (opt->labels) {
            char *pretty = bh_plot_term_label(opt->labels, f->term[j]);
            if (pretty) {
                snprintf(c[0], sizeof c[0], "%s%s%s",
                         f->component && f->component[j] && f->component[j][0] ? f->component[j]
                                                                                : "",
                         f->component && f->component[j] && f->component[j][0] ? ": " : "",
                         pretty);
                free(pretty);
            }
        }
        if (f->aliased && f->aliased[j]) {
            const char *row[8] = {c[0], "NA", "(aliased)", "", "", "", "", ""};
            s = bh_table_add_row(t, row);
            continue;
        }
        bh_fmt_num(c[1], 64, f->beta[j], dg);
        bh_fmt_num(c[2], 64, f->se[j], dg);
        bh_fmt_num(c[3], 64, f->statistic[j], 4);
        bh_fmt_pvalue(c[4], 64, f->p_value[j]);
        snprintf(c[5], 64, "%s", bh_output_stars(opt, f->p_value[j]));
        bh_fmt_num(c[6], 64, f->conf_low[j], dg);
        bh_fmt_num(c[7], 64, f->conf_high[j], dg);
        const char *row[8] = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]};
        s = bh_table_add_row(t, row);
    }
    if (s == BH_OK)
        s = describe_model(t, f, dg);
    if (s == BH_OK) {
        char legend[160];
        stars_legend(opt, legend, sizeof legend);
        s = bh_table_add_note(t, legend);
    }
    for (size_t k = 0; s == BH_OK && k < opt->nomit; k++) {
        char note[200];
        snprintf(note, sizeof note, "Terms containing '%s' are estimated but not shown.",
                 opt->omit[k]);
        s = bh_table_add_note(t, note);
    }
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

/* Union of coefficient labels over all models, in order of first appearance. */
static bh_status collect_labels(const bh_fit *const *fits, size_t nfits, char ***labels,
                                size_t *nlab)
{
    size_t cap = 16, n = 0;
    char **v = malloc(cap * sizeof *v);
    if (!v)
        return BH_ENOMEM;
    for (size_t m = 0; m < nfits; m++)
        for (size_t j = 0; j < fits[m]->p; j++) {
            char buf[512];
            coef_label(fits[m], j, buf, sizeof buf);
            size_t k = 0;
            while (k < n && strcmp(v[k], buf) != 0)
                k++;
            if (k < n)
                continue;
            if (n == cap) {
                char **nv = realloc(v, (cap *= 2) * sizeof *v);
                if (!nv)
                    goto oom;
                v = nv;
            }
            if (!(v[n] = strdup(buf)))
                goto oom;
            n++;
        }
    *labels = v;
    *nlab = n;
    return BH_OK;
oom:
    for (size_t k = 0; k < n; k++)
        free(v[k]);
    free(v);
    return BH_ENOMEM;
}

static long find_coef(const bh_fit *f, const char *label)
{
    char buf[512];
    for (size_t j = 0; j < f->p; j++)
        if (strcmp(coef_label(f, j, buf, sizeof buf), label) == 0)
            return (long)j;
    return -1;
}

static bh_status multi_table(const bh_fit *const *fits, size_t nfits,
                             const bh_output_options *opt, bh_table **out)
{
    int dg = opt->digits > 0 ? opt->digits : 5;
    char **labels = NULL;
    size_t nlab = 0;
    bh_status s = collect_labels(fits, nfits, &labels, &nlab);
    if (s != BH_OK)
        return s;
    bh_table *t = bh_table_new(nfits + 1);
    const char **cells = calloc(nfits + 1, sizeof *cells);
    char (*buf)[96] = calloc(nfits + 1, sizeof *buf);
    if (!t || !cells || !buf) {
        s = BH_ENOMEM;
        goto done;
    }
    cells[0] = "";
    for (size_t m = 0; m < nfits; m++) {
        cells[m + 1] = str_or(fits[m]->name, "");
        bh_table_set_align(t, m + 1, BH_ALIGN_RIGHT);
    }
    s = bh_table_set_header(t, cells);
    (void)dg;
    if (opt->title)
        s = bh_table_set_title(t, opt->title);
    for (size_t k = 0; s == BH_OK && k < nlab; k++) {
        if (omitted(opt, labels[k], NULL))
            continue;
        char *pretty = opt->labels ? bh_plot_term_label(opt->labels, labels[k]) : NULL;
        cells[0] = pretty ? pretty : labels[k];
        int passes = opt->below == BH_BELOW_NONE ? 1 : 2;
        for (int pass = 0; s == BH_OK && pass < passes; pass++) {
            for (size_t m = 0; m < nfits; m++) {
                long j = find_coef(fits[m], labels[k]);
                const bh_fit *f = fits[m];
                buf[m + 1][0] = '\0';
                char e[64], e2[64];
                if (j >= 0 && f->aliased && f->aliased[j])
                    snprintf(buf[m + 1], 96, pass ? "" : "(aliased)");
                else if (j >= 0 && pass == 0)
                    snprintf(buf[m + 1], 96, "%s%s", fmt_est(opt, e, sizeof e, f->beta[j]),
                             bh_output_stars(opt, f->p_value[j]));
                else if (j >= 0 && opt->below == BH_BELOW_SE)
                    snprintf(buf[m + 1], 96, "(%s)", fmt_est(opt, e, sizeof e, f->se[j]));
                else if (j >= 0 && opt->below == BH_BELOW_T)
                    snprintf(buf[m + 1], 96, "[%s]", bh_fmt_num(e, sizeof e, f->statistic[j], 3));
                else if (j >= 0)
                    snprintf(buf[m + 1], 96, "[%s, %s]", fmt_est(opt, e, sizeof e, f->conf_low[j]),
                             fmt_est(opt, e2, sizeof e2, f->conf_high[j]));
                cells[m + 1] = buf[m + 1];
            }
            s = bh_table_add_row(t, cells);
            cells[0] = "";
        }
        free(pretty);
    }
    if (s == BH_OK)
        s = bh_table_add_rule(t);
    /* "<pattern> effects: yes/no" for every omitted group of terms */
    for (size_t k = 0; s == BH_OK && k < opt->nomit; k++) {
        char rowlab[160];
        snprintf(rowlab, sizeof rowlab, "%s effects", opt->omit[k]);
        cells[0] = rowlab;
        for (size_t m = 0; m < nfits; m++) {
            int has = 0;
            size_t w;
            for (size_t j = 0; j < fits[m]->p; j++)
                has |= omitted(opt, fits[m]->term[j], &w) && w == k;
            snprintf(buf[m + 1], 96, "%s", has ? "yes" : "no");
            cells[m + 1] = buf[m + 1];
        }
        s = bh_table_add_row(t, cells);
    }
    /* Statistics rows: only those some model has. */
    const char *names[] = {"N", "R-squared", "Adj. R-squared", "Residual SD",
                           "Log-likelihood", "AIC", "BIC", "Clusters", "Std. errors",
                           "Pseudo R-squared (McFadden)", "AUC", "Deviance"};
    for (size_t r = 0; s == BH_OK && r < sizeof names / sizeof names[0]; r++) {
        int any = 0;
        cells[0] = names[r];
        for (size_t m = 0; m < nfits; m++) {
            const bh_fit *f = fits[m];
            const bh_fit_stats *st = &f->stats;
            double v = NAN;
            buf[m + 1][0] = '\0';
            switch (r) {
            case 0: snprintf(buf[m + 1], 96, "%zu", f->nobs); any = 1; break;
            case 1: v = st->r2; break;
            case 2: v = st->adj_r2; break;
            case 3: v = st->sigma; break;
            case 4: v = st->loglik; break;
            case 5: v = st->aic; break;
            case 6: v = st->bic; break;
            case 7:
                if (f->nclusters) {
                    snprintf(buf[m + 1], 96, "%zu", f->nclusters);
                    any = 1;
                }
                break;
            case 8: snprintf(buf[m + 1], 96, "%s", f->vcov_type); any = 1; break;
            case 9: v = st->pseudo_r2_mcfadden; break;
            case 10: v = st->auc; break;
            case 11: v = f->linear ? NAN : st->deviance; break;
            }
            if (!isnan(v)) {
                bh_fmt_num(buf[m + 1], 96, v, (r >= 4 && r <= 6) || r == 11 ? dg + 2 : dg);
                any = 1;
            }
            cells[m + 1] = buf[m + 1];
        }
        if (any)
            s = bh_table_add_row(t, cells);
    }
    for (size_t m = 0; s == BH_OK && m < nfits; m++) {
        char line[1024];
        snprintf(line, sizeof line, "%s: %s [%s, %s link]", str_or(fits[m]->name, ""),
                 str_or(fits[m]->formula, ""), str_or(fits[m]->family, "gaussian"),
                 str_or(fits[m]->link, "identity"));
        s = bh_table_add_note(t, line);
        for (size_t k = 0; s == BH_OK && k < fits[m]->nnotes; k++) {
            snprintf(line, sizeof line, "%s: %s", str_or(fits[m]->name, ""), fits[m]->notes[k]);
            s = bh_table_add_note(t, line);
        }
        for (size_t k = 0; s == BH_OK && k < fits[m]->ntests; k++)
            s = bh_table_add_note(t, test_line(fits[m], k, line, sizeof line, dg));
        for (size_t k = 0; s == BH_OK && k < fits[m]->nwarnings; k++) {
            snprintf(line, sizeof line, "%s: warning: %s", str_or(fits[m]->name, ""),
                     fits[m]->warnings[k]);
            s = bh_table_add_note(t, line);
        }
    }
    if (s == BH_OK) {
        char legend[160], note[320];
        stars_legend(opt, legend, sizeof legend);
        const char *what = opt->below == BH_BELOW_SE ? "Standard errors in parentheses. "
                           : opt->below == BH_BELOW_T ? "t or z statistics in brackets. "
                           : opt->below == BH_BELOW_CI ? "Confidence intervals in brackets. " : "";
        snprintf(note, sizeof note, "%s%s", what, legend);
        s = bh_table_add_note(t, note);
    }
done:
    for (size_t k = 0; k < nlab; k++)
        free(labels[k]);
    free(labels);
    free(cells);
    free(buf);
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

/* Bootstrap p-values and intervals of one model, as a table of its own. */
static bh_status boot_table(const bh_fit *f, const bh_output_options *opt, bh_table **out)
{
    const bh_boot_result *b = f->boot;
    int dg = opt->digits > 0 ? opt->digits : 5;
    bh_table *t = bh_table_new(6);
    if (!t)
        return BH_ENOMEM;
    char title[512], lo[48];
    snprintf(title, sizeof title, "Model %s: %s (%s weights)", str_or(f->name, ""),
             bh_boot_method_name(b->method), bh_boot_weights_name(b->weights));
    snprintf(lo, sizeof lo, "%.4g%% CI low", 100 * b->level);
    const char *hdr[6] = {"term", "estimate", "statistic", "boot p", lo, "high"};
    bh_status s = bh_table_set_title(t, title);
    if (s == BH_OK)
        s = bh_table_set_header(t, hdr);
    for (size_t j = 1; j < 6; j++)
        bh_table_set_align(t, j, BH_ALIGN_RIGHT);
    for (size_t j = 0; s == BH_OK && j < b->p; j++) {
        if (!b->tested[j])
            continue;
        char c[5][64];
        bh_fmt_num(c[0], 64, b->estimate[j], dg);
        bh_fmt_num(c[1], 64, b->statistic[j], 4);
        bh_fmt_pvalue(c[2], 64, b->p_value[j]);
        bh_fmt_num(c[3], 64, b->conf_low[j], dg);
        bh_fmt_num(c[4], 64, b->conf_high[j], dg);
        const char *row[6] = {f->term[j], c[0], c[1], c[2], c[3], c[4]};
        s = bh_table_add_row(t, row);
    }
    char note[512];
    snprintf(note, sizeof note, "%zu clusters; %zu bootstrap draws%s; seed %llu; null imposed "
             "(restricted); p-values count |t*| >= |t|", b->nclusters, b->reps,
             b->enumerated ? " (every distinct draw, enumerated)" : "", (unsigned long long)b->seed);
    if (s == BH_OK)
        s = bh_table_add_note(t, note);
    for (size_t k = 0; s == BH_OK && k < b->nwarnings; k++)
        s = bh_table_add_note(t, b->warnings[k]);
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

bh_status bh_output_fits(FILE *out, const bh_fit *const *fits, size_t nfits,
                         const bh_output_options *opt, bh_error *err)
{
    bh_output_options dflt;
    if (!opt) {
        bh_output_default_options(&dflt);
        opt = &dflt;
    }
    if (opt->format == BH_FMT_CSV) {
        write_csv(out, fits, nfits);
        return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
    }
    if (opt->format == BH_FMT_JSON)
        return write_json(out, fits, nfits, err);
    if (opt->format == BH_FMT_HTML)
        bh_html_page_begin(out, opt->title ? opt->title : "blackhole fit");
    bh_table *t = NULL;
    bh_status s = nfits == 1 ? single_table(fits[0], opt, &t)
                             : multi_table(fits, nfits, opt, &t);
    if (s != BH_OK)
        return bh_error_set(err, s, "cannot build the results table (%s)", bh_status_name(s));
    s = bh_table_render(t, opt->format, out, err);
    bh_table_free(t);
    for (size_t m = 0; s == BH_OK && m < nfits; m++) {
        if (!fits[m]->boot)
            continue;
        bh_table *bt = NULL;
        if ((s = boot_table(fits[m], opt, &bt)) != BH_OK)
            return bh_error_set(err, s, "cannot build the bootstrap table");
        fputc('\n', out);
        s = bh_table_render(bt, opt->format, out, err);
        bh_table_free(bt);
    }
    if (s == BH_OK && opt->format == BH_FMT_HTML)
        bh_html_page_end(out);
    return s;
}
