/* describe_render.c - descriptive results as tables, CSV and JSON (see
 * describe_render.h). */
#include "blackhole/describe_render.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/output.h"


/* Descriptive tables print a fixed number of decimals (journal style). */
static const char *num(char *buf, size_t n, double v, int digits)
{
    return bh_fmt_fixed(buf, n, v, digits);
}

/* ---- human-readable tables ----------------------------------------------- */

static int has_type(const bh_describe_result *r, bh_coltype t)
{
    for (size_t v = 0; v < r->nvars; v++)
        if (r->vars[v].type == t)
            return 1;
    return 0;
}

static bh_status numeric_table(const bh_describe_report *rp, bh_table **out)
{
    const bh_describe_result *r = rp->res;
    int grouped = r->by != NULL;
    size_t nc = grouped ? 11 : 10;
    bh_table *t = bh_table_new(nc);
    if (!t)
        return BH_ENOMEM;
    const char *hdr[11] = {"variable", "n", "missing", "mean", "sd", "min",
                           "25%", "median", "75%", "max", NULL};
    const char *ghdr[11];
    ghdr[0] = r->by;
    for (size_t k = 0; k < 10; k++)
        ghdr[k + 1] = hdr[k];
    bh_status s = bh_table_set_title(t, "Descriptive statistics");
    if (s == BH_OK)
        s = bh_table_set_header(t, grouped ? ghdr : hdr);
    for (size_t k = grouped ? 2 : 1; k < nc; k++)
        bh_table_set_align(t, k, BH_ALIGN_RIGHT);
    size_t ng = grouped ? r->ngroups + 1 : 1;
    for (size_t g = 0; s == BH_OK && g < ng; g++) {
        const bh_describe_group *grp = g == 0 ? &r->overall : &r->groups[g - 1];
        if (g > 0 && g == 1)
            s = bh_table_add_rule(t);
        for (size_t v = 0; s == BH_OK && v < r->nvars; v++) {
            if (r->vars[v].type != BH_COL_NUMERIC)
                continue;
            const bh_describe_stats *st = &grp->stats[v];
            char c[10][48];
            snprintf(c[0], 48, "%zu", st->n);
            snprintf(c[1], 48, "%zu", st->missing);
            const double vals[7] = {st->mean, st->sd, st->min, st->q1, st->median, st->q3, st->max};
            for (int k = 0; k < 7; k++)
                num(c[2 + k], 48, vals[k], rp->digits);
            const char *row[11];
            size_t o = 0;
            if (grouped)
                row[o++] = g == 0 ? "(all)" : grp->label;
            row[o++] = r->vars[v].name;
            for (int k = 0; k < 9; k++)
                row[o++] = c[k];
            s = bh_table_add_row(t, row);
        }
    }
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

static bh_status levels_table(const bh_describe_report *rp, bh_table **out)
{
    const bh_describe_result *r = rp->res;
    int grouped = r->by != NULL;
    size_t nc = grouped ? 5 : 4;
    bh_table *t = bh_table_new(nc);
    if (!t)
        return BH_ENOMEM;
    const char *hdr[5] = {"variable", "level", "n", "percent", NULL};
    const char *ghdr[5] = {r->by, "variable", "level", "n", "percent"};
    bh_status s = bh_table_set_title(t, "Categorical variables");
    if (s == BH_OK)
        s = bh_table_set_header(t, grouped ? ghdr : hdr);
    bh_table_set_align(t, nc - 1, BH_ALIGN_RIGHT);
    bh_table_set_align(t, nc - 2, BH_ALIGN_RIGHT);
    size_t ng = grouped ? r->ngroups + 1 : 1;
    for (size_t g = 0; s == BH_OK && g < ng; g++) {
        const bh_describe_group *grp = g == 0 ? &r->overall : &r->groups[g - 1];
        for (size_t v = 0; s == BH_OK && v < r->nvars; v++) {
            const bh_describe_var *var = &r->vars[v];
            if (var->type != BH_COL_CATEGORICAL)
                continue;
            const bh_describe_stats *st = &grp->stats[v];
            size_t total = st->n + st->missing;
            for (size_t l = 0; s == BH_OK && l <= var->nlevels; l++) {
                size_t cnt = l < var->nlevels ? st->counts[l] : st->missing;
                if (l == var->nlevels && cnt == 0)
                    continue;
                char n[32], pct[32];
                snprintf(n, sizeof n, "%zu", cnt);
                snprintf(pct, sizeof pct, "%.1f", total ? 100.0 * (double)cnt / (double)total : NAN);
                const char *row[5];
                size_t o = 0;
                if (grouped)
                    row[o++] = g == 0 ? "(all)" : grp->label;
                row[o++] = l == 0 ? var->name : "";
                row[o++] = l < var->nlevels ? var->levels[l] : "(missing)";
                row[o++] = n;
                row[o++] = pct;
                s = bh_table_add_row(t, row);
            }
        }
    }
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

/* Lower triangle of r with significance stars, as in journal Table 1s. */
static bh_status cor_table(const bh_describe_report *rp, bh_table **out)
{
    const bh_describe_result *r = rp->res;
    size_t k = r->ncor;
    bh_table *t = bh_table_new(k + 1);
    const char **cells = calloc(k + 1, sizeof *cells);
    char (*buf)[48] = calloc(k + 1, sizeof *buf);
    bh_status s = (!t || !cells || !buf) ? BH_ENOMEM : BH_OK;
    if (s == BH_OK)
        s = bh_table_set_title(t, "Pearson correlations (pairwise complete observations)");
    if (s == BH_OK) {
        cells[0] = "";
        for (size_t a = 0; a < k; a++) {
            snprintf(buf[a + 1], 48, "(%zu)", a + 1);
            cells[a + 1] = buf[a + 1];
            bh_table_set_align(t, a + 1, BH_ALIGN_RIGHT);
        }
        s = bh_table_set_header(t, cells);
    }
    for (size_t a = 0; s == BH_OK && a < k; a++) {
        char lab[300];
        snprintf(lab, sizeof lab, "(%zu) %s", a + 1, r->vars[r->cor_var[a]].name);
        cells[0] = lab;
        for (size_t b = 0; b < k; b++) {
            buf[b + 1][0] = '\0';
            if (b < a) {
                char x[40];
                double rv = r->cor_r[a * k + b];
                /* correlations: plain decimals, no "-0.000" */
                snprintf(x, sizeof x, "%.*f", rp->digits, rv);
                if (strspn(x, "-0.") == strlen(x) && x[0] == '-')
                    memmove(x, x + 1, strlen(x));
                snprintf(buf[b + 1], 48, "%s%s", x,
                         bh_stars(r->cor_p[a * k + b]));
                if (isnan(rv))
                    snprintf(buf[b + 1], 48, "NA");
            } else if (b == a)
                snprintf(buf[b + 1], 48, "1");
            cells[b + 1] = buf[b + 1];
        }
        s = bh_table_add_row(t, cells);
    }
    if (s == BH_OK)
        s = bh_table_add_note(t, "Two-sided cor.test p-values: *** 0.001, ** 0.01, * 0.05, . 0.1");
    free(cells);
    free(buf);
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

static bh_status scales_table(const bh_describe_report *rp, bh_table **out)
{
    bh_table *t = bh_table_new(5);
    if (!t)
        return BH_ENOMEM;
    const char *hdr[5] = {"scale", "items", "n complete", "alpha", "alpha if deleted"};
    bh_status s = bh_table_set_title(t, "Scale reliabilities (Cronbach's alpha, raw)");
    if (s == BH_OK)
        s = bh_table_set_header(t, hdr);
    bh_table_set_align(t, 2, BH_ALIGN_RIGHT);
    bh_table_set_align(t, 3, BH_ALIGN_RIGHT);
    for (size_t i = 0; s == BH_OK && i < rp->nscales; i++) {
        const bh_scale_result *sc = &rp->scales[i];
        char k[32], n[32], a[48];
        snprintf(k, sizeof k, "%zu", sc->k);
        snprintf(n, sizeof n, "%zu", sc->n_complete);
        num(a, sizeof a, sc->alpha, rp->digits);
        for (size_t j = 0; s == BH_OK && j < sc->k; j++) {
            char d[400], x[48];
            snprintf(d, sizeof d, "%s: %s", sc->items[j],
                     num(x, sizeof x, sc->alpha_if_deleted[j], rp->digits));
            const char *row[5] = {j ? "" : sc->name, j ? "" : k, j ? "" : n, j ? "" : a, d};
            s = bh_table_add_row(t, row);
        }
    }
    if (s == BH_OK)
        s = bh_table_add_note(t, "Composites (item means over non-missing items) were added as "
                                 "variables named after each scale.");
    if (s != BH_OK) {
        bh_table_free(t);
        return s;
    }
    *out = t;
    return BH_OK;
}

static bh_status render_tables(const bh_describe_report *rp, bh_format fmt, FILE *out, bh_error *err)
{
    bh_status (*builders[4])(const bh_describe_report *, bh_table **) = {numeric_table, levels_table,
                                                             cor_table, scales_table};
    int want[4] = {has_type(rp->res, BH_COL_NUMERIC), has_type(rp->res, BH_COL_CATEGORICAL),
                   rp->res->ncor > 1, rp->nscales > 0};
    int first = 1;
    for (int b = 0; b < 4; b++) {
        if (!want[b])
            continue;
        bh_table *t = NULL;
        bh_status s = builders[b](rp, &t);
        if (s != BH_OK)
            return bh_error_set(err, s, "cannot build the descriptive tables");
        if (!first)
            fputc('\n', out);
        first = 0;
        s = bh_table_render(t, fmt, out, err);
        bh_table_free(t);
        if (s != BH_OK)
            return s;
    }
    return BH_OK;
}

/* ---- CSV: one tidy long table ------------------------------------------- */

static void csv_row(FILE *out, const char *section, const char *group, const char *var,
                    const char *with, const char *stat, double value)
{
    bh_write_csv_field(out, section);
    fputc(',', out);
    bh_write_csv_field(out, group);
    fputc(',', out);
    bh_write_csv_field(out, var);
    fputc(',', out);
    bh_write_csv_field(out, with);
    fputc(',', out);
    bh_write_csv_field(out, stat);
    fputc(',', out);
    if (isnan(value))
        fputs("NA", out);
    else
        fprintf(out, "%.17g", value);
    fputc('\n', out);
}

static bh_status render_csv(const bh_describe_report *rp, FILE *out, bh_error *err)
{
    const bh_describe_result *r = rp->res;
    fputs("section,group,variable,with,statistic,value\n", out);
    size_t ng = r->by ? r->ngroups + 1 : 1;
    for (size_t g = 0; g < ng; g++) {
        const bh_describe_group *grp = g == 0 ? &r->overall : &r->groups[g - 1];
        const char *gl = g == 0 ? "" : grp->label;
        for (size_t v = 0; v < r->nvars; v++) {
            const bh_describe_var *var = &r->vars[v];
            const bh_describe_stats *st = &grp->stats[v];
            if (var->type == BH_COL_NUMERIC) {
                const char *nm[9] = {"n", "missing", "mean", "sd", "min", "q1", "median", "q3", "max"};
                const double vals[9] = {(double)st->n, (double)st->missing, st->mean, st->sd,
                                        st->min, st->q1, st->median, st->q3, st->max};
                for (int k = 0; k < 9; k++)
                    csv_row(out, "numeric", gl, var->name, "", nm[k], vals[k]);
            } else {
                for (size_t l = 0; l < var->nlevels; l++)
                    csv_row(out, "level", gl, var->name, var->levels[l], "count",
                            (double)st->counts[l]);
                csv_row(out, "level", gl, var->name, "", "missing", (double)st->missing);
            }
        }
    }
    for (size_t a = 0; a < r->ncor; a++)
        for (size_t b = 0; b < a; b++) {
            const char *va = r->vars[r->cor_var[a]].name, *vb = r->vars[r->cor_var[b]].name;
            size_t k = a * r->ncor + b;
            csv_row(out, "correlation", "", va, vb, "r", r->cor_r[k]);
            csv_row(out, "correlation", "", va, vb, "p_value", r->cor_p[k]);
            csv_row(out, "correlation", "", va, vb, "n", (double)r->cor_n[k]);
        }
    for (size_t i = 0; i < rp->nscales; i++) {
        const bh_scale_result *sc = &rp->scales[i];
        csv_row(out, "scale", "", sc->name, "", "alpha", sc->alpha);
        csv_row(out, "scale", "", sc->name, "", "items", (double)sc->k);
        csv_row(out, "scale", "", sc->name, "", "n_complete", (double)sc->n_complete);
        for (size_t j = 0; j < sc->k; j++)
            csv_row(out, "scale", "", sc->name, sc->items[j], "alpha_if_deleted",
                    sc->alpha_if_deleted[j]);
    }
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
}

/* ---- JSON ---------------------------------------------------------------- */

static json_t *json_group(const bh_describe_result *r, const bh_describe_group *grp)
{
    json_t *vars = json_object();
    for (size_t v = 0; v < r->nvars; v++) {
        const bh_describe_var *var = &r->vars[v];
        const bh_describe_stats *st = &grp->stats[v];
        json_t *o = json_object();
        json_object_set_new(o, "n", json_integer((json_int_t)st->n));
        json_object_set_new(o, "missing", json_integer((json_int_t)st->missing));
        if (var->type == BH_COL_NUMERIC) {
            const char *nm[7] = {"mean", "sd", "min", "q1", "median", "q3", "max"};
            const double vals[7] = {st->mean, st->sd, st->min, st->q1, st->median, st->q3, st->max};
            for (int k = 0; k < 7; k++)
                json_object_set_new(o, nm[k], bh_json_num(vals[k]));
        } else {
            json_t *lv = json_object();
            for (size_t l = 0; l < var->nlevels; l++)
                json_object_set_new(lv, var->levels[l], json_integer((json_int_t)st->counts[l]));
            json_object_set_new(o, "levels", lv);
        }
        json_object_set_new(vars, var->name, o);
    }
    return vars;
}

static bh_status render_json(const bh_describe_report *rp, FILE *out, bh_error *err)
{
    const bh_describe_result *r = rp->res;
    json_t *root = json_object();
    json_object_set_new(root, "variables", json_group(r, &r->overall));
    if (r->by) {
        json_t *groups = json_array();
        for (size_t g = 0; g < r->ngroups; g++) {
            json_t *o = json_object();
            json_object_set_new(o, "group", json_string(r->groups[g].label));
            json_object_set_new(o, "rows", json_integer((json_int_t)r->groups[g].nrow));
            json_object_set_new(o, "variables", json_group(r, &r->groups[g]));
            json_array_append_new(groups, o);
        }
        json_object_set_new(root, "by", json_string(r->by));
        json_object_set_new(root, "groups", groups);
    }
    json_t *cor = json_object(), *names = json_array(), *rm = json_array(), *pm = json_array(),
           *nm = json_array();
    for (size_t a = 0; a < r->ncor; a++) {
        json_array_append_new(names, json_string(r->vars[r->cor_var[a]].name));
        json_t *rr = json_array(), *pr = json_array(), *nr = json_array();
        for (size_t b = 0; b < r->ncor; b++) {
            json_array_append_new(rr, bh_json_num(r->cor_r[a * r->ncor + b]));
            json_array_append_new(pr, bh_json_num(r->cor_p[a * r->ncor + b]));
            json_array_append_new(nr, json_integer((json_int_t)r->cor_n[a * r->ncor + b]));
        }
        json_array_append_new(rm, rr);
        json_array_append_new(pm, pr);
        json_array_append_new(nm, nr);
    }
    json_object_set_new(cor, "variables", names);
    json_object_set_new(cor, "r", rm);
    json_object_set_new(cor, "p_value", pm);
    json_object_set_new(cor, "n", nm);
    json_object_set_new(root, "correlations", cor);
    json_t *scales = json_array();
    for (size_t i = 0; i < rp->nscales; i++) {
        const bh_scale_result *sc = &rp->scales[i];
        json_t *o = json_object(), *items = json_array(), *aid = json_array();
        for (size_t j = 0; j < sc->k; j++) {
            json_array_append_new(items, json_string(sc->items[j]));
            json_array_append_new(aid, bh_json_num(sc->alpha_if_deleted[j]));
        }
        json_object_set_new(o, "name", json_string(sc->name));
        json_object_set_new(o, "items", items);
        json_object_set_new(o, "n_complete", json_integer((json_int_t)sc->n_complete));
        json_object_set_new(o, "alpha", bh_json_num(sc->alpha));
        json_object_set_new(o, "alpha_if_deleted", aid);
        json_array_append_new(scales, o);
    }
    json_object_set_new(root, "scales", scales);
    errno = 0;
    int bad = json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0;
    fputc('\n', out);
    int e = errno;
    json_decref(root);
    /* Say why (a full disk is the usual reason), as the other writers do. */
    return bad || ferror(out)
               ? bh_error_set(err, BH_EOUTPUT, "cannot write JSON output: %s",
                              e ? strerror(e) : "write error")
               : BH_OK;
}


bh_status bh_describe_render(const bh_describe_report *rp, bh_format fmt, FILE *out,
                             bh_error *err)
{
    if (fmt == BH_FMT_CSV)
        return render_csv(rp, out, err);
    if (fmt == BH_FMT_JSON)
        return render_json(rp, out, err);
    if (fmt == BH_FMT_HTML)
        bh_html_page_begin(out, "Descriptive statistics");
    bh_status s = render_tables(rp, fmt, out, err);
    if (s == BH_OK && fmt == BH_FMT_HTML)
        bh_html_page_end(out);
    return s;
}
