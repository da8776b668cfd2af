/* table.c - text cells to text, CSV, Markdown, LaTeX and HTML.
 * Escaping for each target happens here and nowhere else. */
#include "blackhole/table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct bh_table {
    size_t ncol;
    char *title;
    char **notes;
    size_t nnotes;
    char **header;
    bh_align *align;
    char ***rows;           /* nrow x ncol; a NULL row is a rule */
    size_t nrow, cap;
};

static char *dupstr(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

bh_status bh_format_parse(const char *s, bh_format *out, bh_error *err)
{
    static const struct { const char *name; bh_format f; } names[] = {
        {"text", BH_FMT_TEXT}, {"csv", BH_FMT_CSV}, {"md", BH_FMT_MD},
        {"markdown", BH_FMT_MD}, {"latex", BH_FMT_LATEX}, {"tex", BH_FMT_LATEX},
        {"html", BH_FMT_HTML}, {"json", BH_FMT_JSON},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && strcasecmp(s, names[i].name) == 0) {
            *out = names[i].f;
            return BH_OK;
        }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown format '%s' (use text, csv, md, latex, html or json)",
                        s ? s : "");
}

bh_table *bh_table_new(size_t ncol)
{
    bh_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncol = ncol;
    t->header = calloc(ncol, sizeof *t->header);
    t->align = calloc(ncol, sizeof *t->align);
    if (!t->header || !t->align) {
        bh_table_free(t);
        return NULL;
    }
    return t;
}

static void free_row(char **row, size_t ncol)
{
    if (!row)
        return;
    for (size_t j = 0; j < ncol; j++)
        free(row[j]);
    free(row);
}

void bh_table_free(bh_table *t)
{
    if (!t)
        return;
    free(t->title);
    for (size_t i = 0; i < t->nnotes; i++)
        free(t->notes[i]);
    free(t->notes);
    if (t->header)
        for (size_t j = 0; j < t->ncol; j++)
            free(t->header[j]);
    free(t->header);
    free(t->align);
    for (size_t i = 0; i < t->nrow; i++)
        free_row(t->rows[i], t->ncol);
    free(t->rows);
    free(t);
}

bh_status bh_table_set_title(bh_table *t, const char *title)
{
    char *d = dupstr(title);
    if (!d)
        return BH_ENOMEM;
    free(t->title);
    t->title = d;
    return BH_OK;
}

bh_status bh_table_add_note(bh_table *t, const char *note)
{
    char **n = realloc(t->notes, (t->nnotes + 1) * sizeof *n);
    if (!n)
        return BH_ENOMEM;
    t->notes = n;
    if (!(n[t->nnotes] = dupstr(note)))
        return BH_ENOMEM;
    t->nnotes++;
    return BH_OK;
}

bh_status bh_table_set_header(bh_table *t, const char *const *cells)
{
    for (size_t j = 0; j < t->ncol; j++) {
        char *d = dupstr(cells[j]);
        if (!d)
            return BH_ENOMEM;
        free(t->header[j]);
        t->header[j] = d;
    }
    return BH_OK;
}

void bh_table_set_align(bh_table *t, size_t col, bh_align a)
{
    if (col < t->ncol)
        t->align[col] = a;
}

static bh_status push_row(bh_table *t, char **row)
{
    if (t->nrow == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char ***r = realloc(t->rows, cap * sizeof *r);
        if (!r)
            return BH_ENOMEM;
        t->rows = r;
        t->cap = cap;
    }
    t->rows[t->nrow++] = row;
    return BH_OK;
}

bh_status bh_table_add_row(bh_table *t, const char *const *cells)
{
    char **row = calloc(t->ncol, sizeof *row);
    if (!row)
        return BH_ENOMEM;
    for (size_t j = 0; j < t->ncol; j++)
        if (!(row[j] = dupstr(cells[j]))) {
            free_row(row, t->ncol);
            return BH_ENOMEM;
        }
    bh_status s = push_row(t, row);
    if (s != BH_OK)
        free_row(row, t->ncol);
    return s;
}

bh_status bh_table_add_rule(bh_table *t)
{
    return push_row(t, NULL);
}

size_t bh_table_nrow(const bh_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nrow; i++)
        n += t->rows[i] != NULL;
    return n;
}

/* ---- escaping ---------------------------------------------------------- */

void bh_write_csv_field(FILE *out, const char *s)
{
    if (!s)
        s = "";
    if (strpbrk(s, ",\"\r\n") == NULL && s[0] != ' ' &&
        (s[0] == '\0' || s[strlen(s) - 1] != ' ')) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void bh_write_latex(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '\\': fputs("\\textbackslash{}", out); break;
        case '~':  fputs("\\textasciitilde{}", out); break;
        case '^':  fputs("\\textasciicircum{}", out); break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            fputc('\\', out);
            fputc(*s, out);
            break;
        case '<':  fputs("\\textless{}", out); break;
        case '>':  fputs("\\textgreater{}", out); break;
        case '|':  fputs("\\textbar{}", out); break;
        case '\n': case '\r': fputc(' ', out); break;
        default:   fputc(*s, out);
        }
    }
}

void bh_write_html(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':  fputs("&amp;", out); break;
        case '<':  fputs("&lt;", out); break;
        case '>':  fputs("&gt;", out); break;
        case '"':  fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:   fputc(*s, out);
        }
    }
}

void bh_write_md(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '|': case '\\': case '*': case '_': case '`': case '<': case '>':
        case '[': case ']':
            fputc('\\', out);
            fputc(*s, out);
            break;
        case '\n': case '\r': fputc(' ', out); break;
        default: fputc(*s, out);
        }
    }
}

/* ---- number formatting -------------------------------------------------- */

char *bh_fmt_num(char *buf, size_t size, double v, int digits)
{
    if (isnan(v))
        snprintf(buf, size, "NA");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "Inf" : "-Inf");
    else if (v == 0)
        snprintf(buf, size, "0");
    else if (v == floor(v) && fabs(v) < 1e15 && fabs(v) >= 1)
        snprintf(buf, size, "%.0f", v);   /* counts and df print as integers */
    else {
        double a = fabs(v);
        if (a >= 1e-4 && a < 1e15) {
            /* fixed notation with `digits` significant digits */
            int mag = (int)floor(log10(a));
            int dec = digits - 1 - mag;
            if (dec < 0)
                dec = 0;
            snprintf(buf, size, "%.*f", dec, v);
        } else
            snprintf(buf, size, "%.*e", digits - 1, v);
    }
    return buf;
}

char *bh_fmt_fixed(char *buf, size_t size, double v, int decimals)
{
    if (isnan(v))
        snprintf(buf, size, "NA");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "Inf" : "-Inf");
    else if (v != 0 && fabs(v) < 0.5 * pow(10, -decimals))
        snprintf(buf, size, "%.1e", v);
    else
        snprintf(buf, size, "%.*f", decimals, v);
    return buf;
}

char *bh_fmt_pvalue(char *buf, size_t size, double p)
{
    if (isnan(p))
        snprintf(buf, size, "NA");
    else if (p < 2.2e-16)
        snprintf(buf, size, "<2e-16");
    else if (p < 1e-4)
        snprintf(buf, size, "%.1e", p);
    else
        snprintf(buf, size, "%.4f", p);
    return buf;
}

/* ---- renderers ------------------------------------------------------------ */

/* Display width of UTF-8 text: count code points, not bytes. */
static size_t utf8_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void pad(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

static void text_cell(FILE *out, const char *s, size_t width, bh_align a)
{
    size_t w = utf8_width(s);
    if (a == BH_ALIGN_RIGHT)
        pad(out, width - w);
    fputs(s, out);
    if (a == BH_ALIGN_LEFT)
        pad(out, width - w);
}

static void render_text(const bh_table *t, FILE *out)
{
    size_t *wd = calloc(t->ncol ? t->ncol : 1, sizeof *wd);
    if (!wd)
        return;
    size_t total = 0;
    for (size_t j = 0; j < t->ncol; j++) {
        wd[j] = utf8_width(t->header[j]);
        for (size_t i = 0; i < t->nrow; i++)
            if (t->rows[i] && utf8_width(t->rows[i][j]) > wd[j])
                wd[j] = utf8_width(t->rows[i][j]);
        total += wd[j] + (j ? 2 : 0);
    }
    if (t->title)
        fprintf(out, "%s\n", t->title);
    for (size_t k = 0; k < total; k++)
        fputc('-', out);
    fputc('\n', out);
    for (size_t j = 0; j < t->ncol; j++) {
        if (j)
            fputs("  ", out);
        if (j + 1 == t->ncol && t->align[j] == BH_ALIGN_LEFT)
            fputs(t->header[j], out);
        else
            text_cell(out, t->header[j], wd[j], t->align[j]);
    }
    fputc('\n', out);
    for (size_t k = 0; k < total; k++)
        fputc('-', out);
    fputc('\n', out);
    for (size_t i = 0; i < t->nrow; i++) {
        if (!t->rows[i]) {
            for (size_t k = 0; k < total; k++)
                fputc('-', out);
            fputc('\n', out);
            continue;
        }
        /* Trailing blanks are trimmed: pad only up to the last filled cell. */
        size_t last = 0;
        for (size_t j = 0; j < t->ncol; j++)
            if (t->rows[i][j][0])
                last = j;
        for (size_t j = 0; j <= last; j++) {
            if (j)
                fputs("  ", out);
            if (j == last && t->align[j] == BH_ALIGN_LEFT)
                fputs(t->rows[i][j], out);
            else
                text_cell(out, t->rows[i][j], wd[j], t->align[j]);
        }
        fputc('\n', out);
    }
    for (size_t k = 0; k < total; k++)
        fputc('-', out);
    fputc('\n', out);
    for (size_t i = 0; i < t->nnotes; i++)
        fprintf(out, "%s\n", t->notes[i]);
    free(wd);
}

static void render_csv(const bh_table *t, FILE *out)
{
    for (size_t j = 0; j < t->ncol; j++) {
        if (j)
            fputc(',', out);
        bh_write_csv_field(out, t->header[j]);
    }
    fputc('\n', out);
    for (size_t i = 0; i < t->nrow; i++) {
        if (!t->rows[i])
            continue;
        for (size_t j = 0; j < t->ncol; j++) {
            if (j)
                fputc(',', out);
            bh_write_csv_field(out, t->rows[i][j]);
        }
        fputc('\n', out);
    }
}

static void render_md(const bh_table *t, FILE *out)
{
    if (t->title) {
        bh_write_md(out, t->title);
        fputs("\n\n", out);
    }
    fputc('|', out);
    for (size_t j = 0; j < t->ncol; j++) {
        fputc(' ', out);
        bh_write_md(out, t->header[j]);
        fputs(" |", out);
    }
    fputs("\n|", out);
    for (size_t j = 0; j < t->ncol; j++)
        fputs(t->align[j] == BH_ALIGN_RIGHT ? "---:|" : ":---|", out);
    fputc('\n', out);
    for (size_t i = 0; i < t->nrow; i++) {
        if (!t->rows[i])
            continue;
        fputc('|', out);
        for (size_t j = 0; j < t->ncol; j++) {
            fputc(' ', out);
            bh_write_md(out, t->rows[i][j]);
            fputs(" |", out);
        }
        fputc('\n', out);
    }
    if (t->nnotes)
        fputc('\n', out);
    for (size_t i = 0; i < t->nnotes; i++) {
        bh_write_md(out, t->notes[i]);
        fputs("\n\n", out);
    }
}

static void render_latex(const bh_table *t, FILE *out)
{
    fputs("\\begin{table}[htbp]\n\\centering\n", out);
    if (t->title) {
        fputs("\\caption{", out);
        bh_write_latex(out, t->title);
        fputs("}\n", out);
    }
    fputs("\\begin{tabular}{", out);
    for (size_t j = 0; j < t->ncol; j++)
        fputc(t->align[j] == BH_ALIGN_RIGHT ? 'r' : 'l', out);
    fputs("}\n\\toprule\n", out);
    for (size_t j = 0; j < t->ncol; j++) {
        if (j)
            fputs(" & ", out);
        bh_write_latex(out, t->header[j]);
    }
    fputs(" \\\\\n\\midrule\n", out);
    for (size_t i = 0; i < t->nrow; i++) {
        if (!t->rows[i]) {
            fputs("\\midrule\n", out);
            continue;
        }
        for (size_t j = 0; j < t->ncol; j++) {
            if (j)
                fputs(" & ", out);
            bh_write_latex(out, t->rows[i][j]);
        }
        fputs(" \\\\\n", out);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", out);
    if (t->nnotes) {
        fputs("\\par\\smallskip\n{\\footnotesize ", out);
        for (size_t i = 0; i < t->nnotes; i++) {
            if (i)
                fputs(" ", out);
            bh_write_latex(out, t->notes[i]);
        }
        fputs("}\n", out);
    }
    fputs("\\end{table}\n", out);
}

static void render_html(const bh_table *t, FILE *out)
{
    fputs("<table class=\"bh-table\">\n", out);
    if (t->title) {
        fputs("<caption>", out);
        bh_write_html(out, t->title);
        fputs("</caption>\n", out);
    }
    fputs("<thead><tr>", out);
    for (size_t j = 0; j < t->ncol; j++) {
        fputs("<th>", out);
        bh_write_html(out, t->header[j]);
        fputs("</th>", out);
    }
    fputs("</tr></thead>\n<tbody>\n", out);
    for (size_t i = 0; i < t->nrow; i++) {
        if (!t->rows[i])
            continue;
        fputs("<tr>", out);
        for (size_t j = 0; j < t->ncol; j++) {
            fputs(t->align[j] == BH_ALIGN_RIGHT ? "<td class=\"num\">" : "<td>", out);
            bh_write_html(out, t->rows[i][j]);
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n", out);
    if (t->nnotes) {
        fputs("<tfoot>", out);
        for (size_t i = 0; i < t->nnotes; i++) {
            fprintf(out, "<tr><td colspan=\"%zu\">", t->ncol);
            bh_write_html(out, t->notes[i]);
            fputs("</td></tr>", out);
        }
        fputs("</tfoot>\n", out);
    }
    fputs("</table>\n", out);
}

bh_status bh_table_render(const bh_table *t, bh_format fmt, FILE *out,
                          bh_error *err)
{
    switch (fmt) {
    case BH_FMT_TEXT:  render_text(t, out); break;
    case BH_FMT_CSV:   render_csv(t, out); break;
    case BH_FMT_MD:    render_md(t, out); break;
    case BH_FMT_LATEX: render_latex(t, out); break;
    case BH_FMT_HTML:  render_html(t, out); break;
    case BH_FMT_JSON:
        return bh_error_set(err, BH_EUSAGE, "tables are not rendered as JSON");
    }
    if (ferror(out))
        return bh_error_set(err, BH_EOUTPUT, "write error while rendering a table");
    return BH_OK;
}

void bh_html_page_begin(FILE *out, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", out);
    bh_write_html(out, title ? title : "blackhole");
    fputs("</title>\n<style>\n"
          "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;"
          "color:#222}\n"
          "table.bh-table{border-collapse:collapse;margin:1.5em 0;font-size:.92em}\n"
          "table.bh-table th,table.bh-table td{padding:.2em .7em;text-align:left}\n"
          "table.bh-table thead th{border-top:2px solid #222;border-bottom:1px solid #222}\n"
          "table.bh-table tbody tr:last-child td{border-bottom:2px solid #222}\n"
          "table.bh-table td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
          "table.bh-table caption{font-weight:600;text-align:left;padding:.3em 0}\n"
          "table.bh-table tfoot td{font-size:.85em;color:#555}\n"
          "</style></head><body>\n", out);
}

void bh_html_page_end(FILE *out)
{
    fputs("</body></html>\n", out);
}

void bh_write_csv_num(FILE *out, double v)
{
    if (isnan(v))
        fputs("NA", out);
    else if (isinf(v))
        fputs(v > 0 ? "Inf" : "-Inf", out);
    else
        fprintf(out, "%.17g", v);
}
