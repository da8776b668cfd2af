/* plot.c - chart model and gnuplot script writer (see plot.h).
 *
 * Every builder turns its input into numeric data blocks plus plot
 * commands; text from data reaches the script only through sb_quote(). */
#include "blackhole/plot.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blackhole/describe.h"

/* Default figure size in pixels: 6 x 4 inches at 150 dpi, a full-width
 * journal figure. */
#define PLOT_DEFAULT_WIDTH 900
#define PLOT_DEFAULT_HEIGHT 600
/* Font sizes (points) for the png terminal; svg and pdf scale them. */
#define PLOT_FONT_SIZE 12
#define PLOT_CAPTION_FONT 10
/* Text height of one caption line in pixels at PLOT_CAPTION_FONT (the
 * cairo terminals draw 1 pt as about 1 px at the default resolution). */
#define PLOT_CAPTION_LINE_PX 15.0
/* Approximate caption character width in pixels, for wrapping. */
#define PLOT_CAPTION_CHAR_PX 6.0
/* Title line height and character width in pixels (font size + 1). */
#define PLOT_TITLE_LINE_PX 22.0
#define PLOT_TITLE_CHAR_PX 8.5
/* Character width of a panel title (font size - 1) in pixels. */
#define PLOT_PANEL_CHAR_PX 6.8
/* Panels in one small-multiples figure. */
#define PLOT_MAX_PANELS 24
/* Distinct lines (moderator values, models, curves) in one chart. */
#define PLOT_MAX_SERIES 8

/* ---------------------------------------------------------------- theme */

static const char theme_text[] =
    "# blackhole chart theme (the same text is inlined into every chart script).\n"
    "# Journal style: no top/right border, light grid behind the data, outward\n"
    "# ticks, Okabe-Ito colours (distinguishable with colour-blind vision and\n"
    "# paired with dash patterns and point shapes so grey-scale print works).\n"
    "set encoding utf8\n"
    "set border 3 front lc rgb '#404040' lw 1\n"
    "set tics nomirror out scale 0.5 textcolor rgb '#202020'\n"
    "set grid xtics ytics back lc rgb '#e6e6e6' lw 1 dt solid\n"
    "set key noautotitle nobox opaque samplen 2.5 spacing 1.1\n"
    "set datafile missing 'NA'\n"
    "set style fill transparent solid 0.18 noborder\n"
    "set linetype 1 lc rgb '#0072B2' lw 2 dt 1 pt 7 ps 0.9\n"
    "set linetype 2 lc rgb '#D55E00' lw 2 dt 2 pt 5 ps 0.9\n"
    "set linetype 3 lc rgb '#009E73' lw 2 dt 4 pt 9 ps 1.0\n"
    "set linetype 4 lc rgb '#CC79A7' lw 2 dt 5 pt 11 ps 1.0\n"
    "set linetype 5 lc rgb '#E69F00' lw 2 dt 3 pt 13 ps 1.0\n"
    "set linetype 6 lc rgb '#56B4E9' lw 2 dt 1 pt 6 ps 0.9\n"
    "set linetype 7 lc rgb '#000000' lw 2 dt 2 pt 4 ps 0.9\n"
    "set linetype 8 lc rgb '#F0E442' lw 2 dt 4 pt 8 ps 1.0\n"
    "set linetype cycle 8\n"
    "# Reference lines (zero, true values, boundaries) and neutral fills.\n"
    "bh_ref = '#555555'\n"
    "bh_fill = '#9a9a9a'\n"
    "# Diverging palette for correlations: blue (-1), white (0), vermillion (+1).\n"
    "set palette defined (-1 '#0072B2', 0 '#ffffff', 1 '#D55E00')\n";

const char *bh_plot_theme(void)
{
    return theme_text;
}

/* ------------------------------------------------------- string builder */

/* A list of distinct strings in first-appearance order. */
typedef struct strset {
    size_t n;
    char **v;
} strset;

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
    strset *texts;   /* a chart's text table (see sb_quote), or NULL */
} sb;

static void sb_grow(sb *b, size_t add)
{
    if (b->oom)
        return;
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *n = realloc(b->s, cap);
        if (!n) {
            b->oom = 1;
            return;
        }
        b->s = n;
        b->cap = cap;
    }
}

static void sb_add(sb *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    sb_grow(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static long strset_add(strset *s, const char *x);

/* Text from data never appears in a gnuplot command.  It goes into the
 * chart's text table, written as the data block $bh_text (one string per
 * line; block lines are stored raw: no macro, backquote or backslash
 * processing), and the command refers to it as $bh_text[k].  gnuplot's
 * command-line scanners are not a safe place for arbitrary text: @name is
 * macro-expanded even inside single quotes when a backslash precedes a
 * quote, and runs of doubled quotes ('') are mis-read.
 */
static void sb_text(sb *b, const char *s)
{
    sb clean = {0};
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++)
        sb_add(&clean, *c < 0x20 || *c == 0x7f ? " " : (const char *)c, 1);
    long k = strset_add(b->texts, clean.s ? clean.s : "");
    if (k < 0 || clean.oom)
        b->oom = 1;
    else
        sb_printf(b, "$bh_text[%ld]", k + 1);
    free(clean.s);
}

static void sb_quote(sb *b, const char *s)
{
    if (!b->texts) {
        b->oom = 1; /* a bug: every builder writes into a chart */
        return;
    }
    sb_text(b, s);
}

void bh_plot_write_datablock(FILE *out, const char *name, const char *const *lines,
                             size_t n)
{
    /* The here-document ends at the first line equal to its marker: pick a
     * marker no line equals (a counter suffix until unique). */
    char mark[64];
    for (unsigned k = 0;; k++) {
        if (k == 0)
            snprintf(mark, sizeof mark, "BH_END_%s", name);
        else
            snprintf(mark, sizeof mark, "BH_END_%s_%u", name, k);
        size_t i = 0;
        while (i < n && strcmp(lines[i], mark) != 0)
            i++;
        if (i == n)
            break;
    }
    fprintf(out, "$%s << %s\n", name, mark);
    for (size_t i = 0; i < n; i++) {
        /* One block line per entry: a newline inside would split it. */
        for (const char *c = lines[i]; *c; c++)
            fputc(*c == '\n' || *c == '\r' ? ' ' : *c, out);
        fputc('\n', out);
    }
    fprintf(out, "%s\n", mark);
}

/* ---------------------------------------------------------------- chart */

typedef struct {
    char name[32];
    size_t ncol, nrow, cap;
    const char *header;          /* column names (internal, constant)   */
    double *v;                   /* nrow x ncol row-major                */
} chart_block;

struct bh_chart {
    char *kind;
    char *terminal;
    char *output;
    size_t width, height;
    size_t title_lines;          /* lines of the (wrapped) title       */
    size_t nblocks;
    chart_block *blocks;
    strset texts;                /* text from data: $bh_text lines     */
    sb body;
};

static bh_chart *chart_new(const char *kind, const bh_plot_options *opt)
{
    bh_chart *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kind = strdup(kind);
    /* the terminal name is written into a command: only known names */
    const char *term = opt->terminal;
    if (!term || (strcmp(term, "svg") != 0 && strcmp(term, "pdfcairo") != 0))
        term = "pngcairo";
    c->terminal = strdup(term);
    c->output = strdup(opt->output ? opt->output : "chart.png");
    c->width = opt->width ? opt->width : PLOT_DEFAULT_WIDTH;
    c->height = opt->height ? opt->height : PLOT_DEFAULT_HEIGHT;
    c->body.texts = &c->texts;
    {
        sb tmp = {0};
        tmp.texts = &c->texts;
        sb_text(&tmp, c->output ? c->output : "");
        free(tmp.s);
        if (tmp.oom) {
            bh_chart_free(c);
            return NULL;
        }
    }
    if (!c->kind || !c->terminal || !c->output) {
        bh_chart_free(c);
        return NULL;
    }
    return c;
}

void bh_chart_free(bh_chart *c)
{
    if (!c)
        return;
    for (size_t k = 0; k < c->nblocks; k++)
        free(c->blocks[k].v);
    free(c->blocks);
    free(c->body.s);
    for (size_t k = 0; k < c->texts.n; k++)
        free(c->texts.v[k]);
    free(c->texts.v);
    free(c->kind);
    free(c->terminal);
    free(c->output);
    free(c);
}

/* A new data block named "<prefix><number>"; returns its index or -1. */
static long chart_block_new(bh_chart *c, const char *prefix, const char *header, size_t ncol)
{
    chart_block *nb = realloc(c->blocks, (c->nblocks + 1) * sizeof *nb);
    if (!nb)
        return -1;
    c->blocks = nb;
    chart_block *b = &nb[c->nblocks];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s%zu", prefix, c->nblocks + 1);
    b->ncol = ncol;
    b->header = header;
    return (long)c->nblocks++;
}

static int chart_row(bh_chart *c, long blk, const double *row)
{
    chart_block *b = &c->blocks[blk];
    if (b->nrow == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        double *v = realloc(b->v, cap * b->ncol * sizeof *v);
        if (!v)
            return -1;
        b->v = v;
        b->cap = cap;
    }
    memcpy(b->v + b->nrow * b->ncol, row, b->ncol * sizeof *row);
    b->nrow++;
    return 0;
}

static const char *blk_name(const bh_chart *c, long blk)
{
    return c->blocks[blk].name;
}

static void fmt_value(char *buf, size_t n, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, n, "NA");
    else
        snprintf(buf, n, "%.15g", v);
}

bh_status bh_chart_write(const bh_chart *c, FILE *out, bh_error *err)
{
    if (c->body.oom)
        return bh_error_set(err, BH_ENOMEM, "out of memory building the chart");
    fprintf(out, "# blackhole plot %s: a self-contained gnuplot script.\n", c->kind);
    fputs("# Run `gnuplot THIS_FILE`; the theme and the data are inlined below, so\n"
          "# it can be edited by hand.  `blackhole plot --render` sets bh_term,\n"
          "# bh_output, bh_width and bh_height with -e before running it.\n", out);
    /* Text from data (labels, names, titles, the output path): one string
     * per line, used as $bh_text[k]. */
    bh_plot_write_datablock(out, "bh_text", (const char *const *)c->texts.v, c->texts.n);
    fprintf(out, "if (!exists('bh_term')) bh_term = '%s'\n", c->terminal);
    /* the output path is text 1 (chart_new) */
    fputs("if (!exists('bh_output')) bh_output = $bh_text[1]\n", out);
    fprintf(out, "if (!exists('bh_width')) bh_width = %zu\n", c->width);
    fprintf(out, "if (!exists('bh_height')) bh_height = %zu\n", c->height);
    /* pdf sizes are inches: 150 px per inch keeps the pixel layout. */
    fprintf(out,
            "if (bh_term eq 'svg') {\n"
            "    set terminal svg size bh_width,bh_height fixed noenhanced font 'Helvetica,%d' "
            "background rgb 'white'\n"
            "} else { if (bh_term eq 'pdfcairo') {\n"
            "    set terminal pdfcairo size (bh_width/150.0),(bh_height/150.0) noenhanced "
            "font 'Helvetica,%d'\n"
            "} else {\n"
            "    set terminal pngcairo size bh_width,bh_height noenhanced font 'Helvetica,%d' "
            "background rgb 'white'\n"
            "} }\n"
            "set output bh_output\n\n",
            PLOT_FONT_SIZE, PLOT_FONT_SIZE * 2 / 3, PLOT_FONT_SIZE);
    fputs(theme_text, out);
    fputc('\n', out);
    for (size_t k = 0; k < c->nblocks; k++) {
        const chart_block *b = &c->blocks[k];
        char **lines = calloc(b->nrow + 1, sizeof *lines);
        if (!lines)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        size_t n = 0;
        int bad = 0;
        lines[n] = malloc(strlen(b->header) + 3);
        if (lines[n])
            sprintf(lines[n], "# %s", b->header);
        bad |= !lines[n++];
        for (size_t i = 0; i < b->nrow && !bad; i++) {
            sb line = {0};
            for (size_t j = 0; j < b->ncol; j++) {
                char num[40];
                fmt_value(num, sizeof num, b->v[i * b->ncol + j]);
                if (j)
                    sb_puts(&line, " ");
                sb_puts(&line, num);
            }
            bad |= line.oom || !line.s;
            lines[n++] = line.s;
        }
        if (!bad)
            bh_plot_write_datablock(out, b->name, (const char *const *)lines, n);
        for (size_t i = 0; i < n; i++)
            free(lines[i]);
        free(lines);
        if (bad)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    fputc('\n', out);
    if (c->body.s)
        fputs(c->body.s, out);
    fputs("unset output\n", out);
    if (fflush(out) != 0 || ferror(out))
        return bh_error_set(err, BH_EOUTPUT, "cannot write the chart script");
    return BH_OK;
}

/* --------------------------------------------------------------- labels */

void bh_plot_labels_free(bh_plot_labels *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->column[i]);
        free(l->label[i]);
    }
    free(l->column);
    free(l->label);
    free(l);
}

/* Text of cell (col, i): the level, or the number as %.15g; NULL when
 * missing.  buf holds numbers. */
static const char *cell_text(const bh_column *col, size_t i, char *buf, size_t n)
{
    if (!col || col->na[i])
        return NULL;
    if (col->type == BH_COL_CATEGORICAL)
        return col->levels[col->code[i]];
    snprintf(buf, n, "%.15g", col->num[i]);
    return buf;
}

bh_status bh_plot_labels_from_frame(const bh_frame *cb, const char *source,
                                    bh_plot_labels **out, bh_error *err)
{
    *out = NULL;
    const bh_column *cc = bh_frame_col(cb, "column"), *cl = bh_frame_col(cb, "label");
    const bh_column *cu = bh_frame_col(cb, "unit");
    if (!cc || !cl)
        return bh_error_at(err, BH_EINPUT, source, 1, 0,
                           "a codebook needs the columns 'column' and 'label'");
    bh_plot_labels *l = calloc(1, sizeof *l);
    if (!l)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    l->column = calloc(cb->nrow + 1, sizeof *l->column);
    l->label = calloc(cb->nrow + 1, sizeof *l->label);
    if (!l->column || !l->label) {
        bh_plot_labels_free(l);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cb->nrow; i++) {
        char b1[40], b2[40], b3[40];
        const char *name = cell_text(cc, i, b1, sizeof b1);
        const char *lab = cell_text(cl, i, b2, sizeof b2);
        const char *unit = cell_text(cu, i, b3, sizeof b3);
        if (!name || !lab)
            continue;
        sb t = {0};
        sb_puts(&t, lab);
        if (unit && *unit)
            sb_printf(&t, " (%s)", unit);
        l->column[l->n] = strdup(name);
        l->label[l->n] = t.s;
        if (!l->column[l->n] || !t.s || t.oom) {
            l->n++;
            bh_plot_labels_free(l);
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        l->n++;
    }
    *out = l;
    return BH_OK;
}

const char *bh_plot_label(const bh_plot_labels *l, const char *column)
{
    if (l && column)
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->column[i], column) == 0)
                return l->label[i];
    return column;
}

static void term_part(sb *b, const bh_plot_labels *l, const char *p, size_t len)
{
    char *part = strndup(p, len);
    if (!part) {
        b->oom = 1;
        return;
    }
    const char *lab = bh_plot_label(l, part);
    if (lab != part) {
        sb_puts(b, lab);
        free(part);
        return;
    }
    /* func(var)rest */
    static const struct {
        const char *fn, *suffix;
    } wraps[] = {{"center(", " (centred)"}, {"scale(", " (standardised)"},
                 {"log(", ""},            {"factor(", ""},
                 {"sqrt(", ""},           {"exp(", ""},
                 {"abs(", ""}};
    for (size_t k = 0; k < sizeof wraps / sizeof wraps[0]; k++) {
        size_t fl = strlen(wraps[k].fn);
        char *close = strchr(part, ')');
        if (strncmp(part, wraps[k].fn, fl) == 0 && close) {
            *close = '\0';
            const char *inner = bh_plot_label(l, part + fl);
            const char *rest = close + 1;
            if (strcmp(wraps[k].fn, "factor(") == 0) {
                sb_puts(b, inner);
                if (*rest)
                    sb_printf(b, ": %s", rest);
            } else if (!*wraps[k].suffix) {
                /* log(x) etc.: the label inside the function */
                sb_printf(b, "%.*s%s)%s", (int)fl, wraps[k].fn, inner, rest);
            } else {
                sb_printf(b, "%s%s%s", inner, wraps[k].suffix, rest);
            }
            free(part);
            return;
        }
    }
    /* Treatment dummy "<column><level>": longest labelled column prefix. */
    size_t best = 0, bi = 0;
    if (l)
        for (size_t i = 0; i < l->n; i++) {
            size_t cl = strlen(l->column[i]);
            if (cl < len && cl > best && strncmp(part, l->column[i], cl) == 0) {
                best = cl;
                bi = i;
            }
        }
    if (best)
        sb_printf(b, "%s: %s", l->label[bi], part + best);
    else
        sb_puts(b, part);
    free(part);
}

char *bh_plot_term_label(const bh_plot_labels *l, const char *term)
{
    sb b = {0};
    const char *p = term;
    for (;;) {
        const char *c = strchr(p, ':');
        term_part(&b, l, p, c ? (size_t)(c - p) : strlen(p));
        if (!c)
            break;
        sb_puts(&b, " \xc3\x97 "); /* multiplication sign */
        p = c + 1;
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s ? b.s : strdup("");
}

/* -------------------------------------------------------------- options */

void bh_plot_default_options(bh_plot_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

bh_status bh_plot_kind_parse(const char *s, bh_plot_kind *out, bh_error *err)
{
    static const char *names[] = {"interaction", "slopes", "coef", "describe", "sim",
                                  "diagnostics"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(s, names[k]) == 0) {
            *out = (bh_plot_kind)k;
            return BH_OK;
        }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown chart kind '%s' (interaction, slopes, coef, describe, sim, "
                        "diagnostics)", s);
}

/* ------------------------------------------------------- input columns */

static bh_status need_col(const bh_frame *f, const char *name, const bh_column **out,
                          bh_error *err)
{
    *out = bh_frame_col(f, name);
    if (!*out)
        return bh_error_at(err, BH_EINPUT, f->source, 1, 0, "no column '%s' in the header",
                           name);
    return BH_OK;
}

static bh_status need_num(const bh_frame *f, const char *name, const bh_column **out,
                          bh_error *err)
{
    bh_status s = need_col(f, name, out, err);
    if (s != BH_OK)
        return s;
    if ((*out)->type != BH_COL_NUMERIC)
        return bh_error_at(err, BH_EINPUT, f->source, (*out)->first_text_line,
                           (*out)->file_column, "column '%s' must be numeric, found '%s'",
                           name, (*out)->first_text ? (*out)->first_text : "text");
    return BH_OK;
}

static double num_at(const bh_column *c, size_t i)
{
    return (!c || c->na[i]) ? NAN : c->num[i];
}

/* Text of a cell, "" when missing (keys and labels). */
static const char *key_text(const bh_column *c, size_t i, char *buf, size_t n)
{
    const char *t = cell_text(c, i, buf, n);
    return t ? t : "";
}


static long strset_find(const strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return (long)i;
    return -1;
}

static long strset_add(strset *s, const char *x)
{
    long k = strset_find(s, x);
    if (k >= 0)
        return k;
    char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return -1;
    s->v = v;
    if (!(v[s->n] = strdup(x)))
        return -1;
    return (long)s->n++;
}

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* ------------------------------------------------------ layout helpers */

/* An explicit tic label is a format string to gnuplot (the tic value is
 * substituted for %-conversions): a '%' from data must be written "%%". */
static void sb_quote_tic(sb *b, const char *s)
{
    sb t = {0};
    for (const char *c = s ? s : ""; *c; c++)
        sb_puts(&t, *c == '%' ? "%%" : (char[2]){*c, 0});
    sb_quote(b, t.s ? t.s : "");
    free(t.s);
}

/* A round tic step (1, 2, 2.5 or 5 times a power of ten) giving about
 * `target` intervals over `range`: gnuplot's own choice crowds small
 * panels with overlapping labels. */
static double nice_step(double range, double target)
{
    if (!(range > 0) || !isfinite(range))
        return 1;
    double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10) * p;
}

/* Wrap text into lines of at most `width` characters (UTF-8 aware enough:
 * continuation bytes do not count) at spaces. */
static size_t wrap_lines(const char *text, size_t width, strset *out);

/* A quoted string broken into lines of at most `width` characters, joined
 * with gnuplot's "\n" (a constant: data text stays single-quoted). */
static size_t sb_quote_wrapped(sb *b, const char *text, size_t width)
{
    size_t n;
    strset lines = {0};
    wrap_lines(text, width, &lines);
    if (lines.n == 0)
        sb_quote(b, "");
    for (size_t k = 0; k < lines.n; k++) {
        if (k)
            sb_puts(b, ".\"\\n\".");
        sb_quote(b, lines.v[k]);
    }
    n = lines.n;
    strset_free(&lines);
    return n;
}

static size_t wrap_lines(const char *text, size_t width, strset *out)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *lastsp = NULL, *q = p;
        size_t chars = 0;
        while (*q && chars < width) {
            if (*q == ' ')
                lastsp = q;
            if (((unsigned char)*q & 0xC0) != 0x80)
                chars++;
            q++;
        }
        const char *end = *q && lastsp && lastsp > p ? lastsp : q;
        if (*q && !lastsp) /* one long word: split inside it */
            end = q;
        char *line = strndup(p, (size_t)(end - p));
        if (line) {
            /* duplicates are allowed here: append without strset_add */
            char **v = realloc(out->v, (out->n + 1) * sizeof *v);
            if (v) {
                out->v = v;
                v[out->n++] = line;
            } else {
                free(line);
            }
        }
        p = end;
    }
    return out->n;
}

/* Title and caption; returns the fraction of the height the caption takes
 * at the bottom (0 without caption) and the top fraction the title takes. */
static void emit_title_caption(bh_chart *c, const char *title, const char *caption,
                               int multiplot, double *bottom, double *top)
{
    sb *b = &c->body;
    *bottom = 0;
    *top = 0;
    if (title && *title) {
        if (multiplot) {
            sb_puts(b, "set multiplot title ");
            c->title_lines = sb_quote_wrapped(b, title,
                                              (size_t)((double)c->width / PLOT_TITLE_CHAR_PX));
            sb_printf(b, " font ',%d'\n", PLOT_FONT_SIZE + 1);
            *top = 2.2 * PLOT_CAPTION_LINE_PX / (double)c->height;
        } else {
            /* Labels at the top of the canvas rather than `set title`,
             * which sits on the plot border where the legend goes. */
            strset lines = {0};
            wrap_lines(title, (size_t)((double)c->width / PLOT_TITLE_CHAR_PX), &lines);
            for (size_t k = 0; k < lines.n; k++) {
                sb_printf(b, "set label %zu ", 800 + k);
                sb_quote(b, lines.v[k]);
                sb_printf(b, " at screen 0.5, screen %.4f center font ',%d' front\n",
                          1.0 - (PLOT_TITLE_LINE_PX * ((double)k + 1)) / (double)c->height,
                          PLOT_FONT_SIZE + 1);
            }
            c->title_lines = lines.n;
            strset_free(&lines);
            sb_printf(b, "set tmargin at screen %.4f\n",
                      1.0 - (PLOT_TITLE_LINE_PX * ((double)c->title_lines + 0.5) + 8.0) /
                                (double)c->height);
        }
    } else if (multiplot) {
        sb_puts(b, "set multiplot\n");
    }
    if (caption && *caption) {
        strset lines = {0};
        size_t width = (size_t)((double)c->width / PLOT_CAPTION_CHAR_PX) - 4;
        wrap_lines(caption, width, &lines);
        double lh = PLOT_CAPTION_LINE_PX / (double)c->height;
        for (size_t k = 0; k < lines.n; k++) {
            double y = 0.4 * lh + (double)(lines.n - 1 - k) * lh;
            sb_printf(b, "set label %zu ", 900 + k);
            sb_quote(b, lines.v[k]);
            sb_printf(b, " at screen 0.015, screen %.4f left font ',%d' tc rgb '#333333' front\n",
                      y + 0.35 * lh, PLOT_CAPTION_FONT);
        }
        *bottom = ((double)lines.n + 0.6) * lh;
        strset_free(&lines);
    }
}

/* The end of every chart builder: out of memory while writing the body is
 * an error too; on failure the chart is freed, else handed to the caller. */
static bh_status chart_done(bh_chart *c, bh_status s, bh_chart **out, bh_error *err)
{
    if (s == BH_OK && c->body.oom)
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
    if (s != BH_OK) {
        bh_chart_free(c);
        return s;
    }
    *out = c;
    return BH_OK;
}

/* A horizontal legend between the title and a single panel: in gnuplot's
 * own tmargin placement it lands above the title. */
static void key_top(bh_chart *c)
{
    double h = (double)c->height;
    double k = 1.0 - (PLOT_TITLE_LINE_PX * ((double)c->title_lines + 0.5) + 6.0) / h;
    sb_printf(&c->body, "set key at screen 0.5, screen %.4f center top horizontal\n"
                        "set tmargin at screen %.4f\n", k, k - 32.0 / h);
}

/* A legend only when there is more than one series to tell apart. */
static void key_if_several(bh_chart *c, size_t nseries)
{
    if (nseries > 1)
        key_top(c);
    else
        sb_puts(&c->body, "unset key\n");
}

/* In a multiplot the caption labels must be drawn once: after the first
 * panel, remove them. */
static void drop_caption_labels(bh_chart *c)
{
    sb_puts(&c->body, "unset label\n");
}

static const char *auto_text(const char *given, const char *fallback)
{
    return given ? given : fallback;
}

/* Axis space below the plot border: tic labels and axis label (pixels). */
#define PLOT_XAXIS_PX 58.0

static void single_panel_bottom(bh_chart *c, double caption)
{
    if (caption > 0)
        sb_printf(&c->body, "set bmargin at screen %.4f\n",
                  caption + PLOT_XAXIS_PX / (double)c->height);
}

static void fmt_short(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.4g", v);
}

/* Parse "a=1;b=2" into names and values; returns count (at most max). */
static size_t parse_at(const char *at, char names[][128], char vals[][128], size_t max)
{
    size_t k = 0;
    const char *p = at;
    while (p && *p && k < max) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            size_t nl = (size_t)(eq - p), vl = len - nl - 1;
            while (nl && p[nl - 1] == ' ')
                nl--;
            const char *v = eq + 1;
            while (vl && *v == ' ') {
                v++;
                vl--;
            }
            snprintf(names[k], 128, "%.*s", (int)(nl < 127 ? nl : 127), p);
            snprintf(vals[k], 128, "%.*s", (int)(vl < 127 ? vl : 127), v);
            k++;
        }
        p = semi ? semi + 1 : NULL;
    }
    return k;
}

static int is_number(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*v);
}

/* Columns of the margins contract used here. */
typedef struct {
    const bh_column *model, *type, *term, *at, *est, *lo, *hi;
} margins_cols;

static bh_status margins_open(const bh_frame *m, margins_cols *mc, bh_error *err)
{
    bh_status s;
    if ((s = need_col(m, "model", &mc->model, err)) || (s = need_col(m, "type", &mc->type, err)) ||
        (s = need_col(m, "term", &mc->term, err)) || (s = need_col(m, "at", &mc->at, err)) ||
        (s = need_num(m, "estimate", &mc->est, err)) ||
        (s = need_num(m, "conf_low", &mc->lo, err)) ||
        (s = need_num(m, "conf_high", &mc->hi, err)))
        return s;
    return BH_OK;
}

/* The model drawn: opt->model, else the model of the first row of `type`. */
static bh_status margins_model(const bh_frame *m, const margins_cols *mc, const char *type,
                               const char *want, char *model, size_t msize, bh_error *err)
{
    int seen = 0;
    for (size_t i = 0; i < m->nrow; i++) {
        char b1[40], b2[40];
        if (strcmp(key_text(mc->type, i, b1, sizeof b1), type) != 0)
            continue;
        const char *mo = key_text(mc->model, i, b2, sizeof b2);
        if (!want) {
            snprintf(model, msize, "%s", mo);
            return BH_OK;
        }
        seen = 1;
        if (strcmp(mo, want) == 0) {
            snprintf(model, msize, "%s", mo);
            return BH_OK;
        }
    }
    if (want && seen) {
        char q[160];
        return bh_error_at(err, BH_EUSAGE, m->source, 0, 0, "no %s rows for model %s", type,
                           bh_quote(q, sizeof q, want, 100));
    }
    return bh_error_at(err, BH_EDATA, m->source, 0, 0,
                       "no rows of type '%s' (the margins CSV must hold %s rows)", type, type);
}

static void caption_models(sb *cap, const char *what, const char *model, const char *vcov)
{
    sb_printf(cap, "%s Model %s; standard errors: %s.", what, model,
              vcov ? vcov : "as in the input (not recorded in the CSV)");
}

/* --------------------------------------------------------- interaction */

typedef struct {
    double m;          /* moderator value (first numeric)   */
    char *key;         /* moderator text "m=1.5"            */
    long blk;
} level;

static int level_cmp(const void *a, const void *b)
{
    const level *x = a, *y = b;
    if (x->m < y->m)
        return -1;
    if (x->m > y->m)
        return 1;
    return strcmp(x->key, y->key);
}

/* Sort rows of a block by its first column. */
static int row_cmp(const void *a, const void *b)
{
    const double *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

static void sort_block(bh_chart *c, long blk)
{
    chart_block *b = &c->blocks[blk];
    /* rows are contiguous doubles of equal width: sort in place. */
    if (b->ncol == 4)
        qsort(b->v, b->nrow, 4 * sizeof(double), row_cmp);
}

bh_status bh_plot_interaction(const bh_frame *m, const bh_plot_options *opt,
                              bh_chart **out, bh_error *err)
{
    *out = NULL;
    margins_cols mc;
    bh_status s = margins_open(m, &mc, err);
    if (s != BH_OK)
        return s;
    char model[256];
    if ((s = margins_model(m, &mc, "prediction", opt->model, model, sizeof model, err)))
        return s;
    bh_chart *c = chart_new("interaction", opt);
    if (!c)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    level lv[PLOT_MAX_SERIES];
    size_t nlv = 0;
    char xname[128] = "", mname[128] = "", response[256] = "";
    if (opt->x)
        snprintf(xname, sizeof xname, "%s", opt->x);
    s = BH_OK;
    for (size_t i = 0; i < m->nrow && s == BH_OK; i++) {
        char b1[40], b2[40], b3[40], b4[40];
        if (strcmp(key_text(mc.type, i, b1, sizeof b1), "prediction") != 0 ||
            strcmp(key_text(mc.model, i, b2, sizeof b2), model) != 0)
            continue;
        const char *at = key_text(mc.at, i, b3, sizeof b3);
        char names[8][128], vals[8][128];
        size_t na = parse_at(at, names, vals, 8);
        if (!response[0])
            snprintf(response, sizeof response, "%s", key_text(mc.term, i, b4, sizeof b4));
        if (!xname[0] && na)
            snprintf(xname, sizeof xname, "%s", names[0]);
        long xi = -1;
        sb key = {0};
        double mval = NAN;
        for (size_t k = 0; k < na; k++) {
            if (strcmp(names[k], xname) == 0) {
                xi = (long)k;
                continue;
            }
            if (!mname[0])
                snprintf(mname, sizeof mname, "%s", names[k]);
            double d;
            if (isnan(mval) && is_number(vals[k], &d))
                mval = d;
            if (key.len)
                sb_puts(&key, "; ");
            sb_printf(&key, "%s = %s", names[k], vals[k]);
        }
        double x;
        if (xi < 0 || !is_number(vals[xi], &x)) {
            char q[200];
            free(key.s);
            s = bh_error_at(err, BH_EDATA, m->source, i + 2, mc.at->file_column,
                            "prediction row 'at' = %s has no numeric value of '%s'",
                            bh_quote(q, sizeof q, at, 120), xname);
            break;
        }
        const char *k = key.s ? key.s : "";
        size_t j = 0;
        while (j < nlv && strcmp(lv[j].key, k) != 0)
            j++;
        if (j == nlv) {
            if (nlv == PLOT_MAX_SERIES) {
                free(key.s);
                s = bh_error_at(err, BH_EDATA, m->source, i + 2, mc.at->file_column,
                                "more than %d moderator values: choose fewer in margins",
                                PLOT_MAX_SERIES);
                break;
            }
            lv[nlv].key = strdup(k);
            lv[nlv].m = isnan(mval) ? (double)nlv : mval;
            lv[nlv].blk = chart_block_new(c, "pred", "x estimate conf_low conf_high", 4);
            if (!lv[nlv].key || lv[nlv].blk < 0) {
                free(lv[nlv].key);
                free(key.s);
                s = bh_error_set(err, BH_ENOMEM, "out of memory");
                break;
            }
            nlv++;
        }
        free(key.s);
        double row[4] = {x, num_at(mc.est, i), num_at(mc.lo, i), num_at(mc.hi, i)};
        if (chart_row(c, lv[j].blk, row))
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    if (s != BH_OK)
        goto done;
    for (size_t j = 0; j < nlv; j++)
        sort_block(c, lv[j].blk);
    qsort(lv, nlv, sizeof lv[0], level_cmp);

    const char *xl = bh_plot_label(opt->labels, xname);
    const char *ml = mname[0] ? bh_plot_label(opt->labels, mname) : "moderator";
    const char *rl = response[0] ? bh_plot_label(opt->labels, response) : "response";
    sb t = {0}, cap = {0};
    sb_printf(&t, "Predicted %s by %s and %s", rl, xl, ml);
    caption_models(&cap, "Lines: predictions at fixed values of the moderator; bands: "
                         "confidence intervals.", model, opt->vcov_label);
    double bottom, top;
    emit_title_caption(c, auto_text(opt->title, t.s ? t.s : ""),
                       auto_text(opt->caption, cap.s ? cap.s : ""), 0, &bottom, &top);
    free(t.s);
    free(cap.s);
    sb *b = &c->body;
    single_panel_bottom(c, bottom);
    sb_puts(b, "set xlabel ");
    sb_quote(b, xl);
    sb_puts(b, "\nset ylabel ");
    {
        sb yl = {0};
        sb_printf(&yl, "%s (predicted)", rl);
        sb_quote(b, yl.s ? yl.s : "");
        free(yl.s);
    }
    sb_puts(b, "\nset autoscale xfix\nset offsets 0, 0, graph 0.05, graph 0.05\n");
    sb_puts(b, "set key outside right top vertical Left reverse title ");
    sb_quote(b, ml);
    sb_puts(b, "\nplot \\\n");
    for (size_t j = 0; j < nlv; j++)
        sb_printf(b, "    $%s using 1:3:4 with filledcurves lc %zu notitle, \\\n",
                  blk_name(c, lv[j].blk), j + 1);
    for (size_t j = 0; j < nlv; j++) {
        sb_printf(b, "    $%s using 1:2 with lines lt %zu title ", blk_name(c, lv[j].blk), j + 1);
        /* "m = 2.14": show the moderator value, as short as it reads */
        const char *eq = strstr(lv[j].key, " = ");
        char num[40];
        if (eq && !strchr(lv[j].key, ';') && is_number(eq + 3, &lv[j].m)) {
            fmt_short(num, sizeof num, lv[j].m);
            sb_quote(b, num);
        } else {
            sb_quote(b, lv[j].key);
        }
        sb_puts(b, j + 1 < nlv ? ", \\\n" : "\n");
    }
done:
    for (size_t j = 0; j < nlv; j++)
        free(lv[j].key);
    return chart_done(c, s, out, err);
}

/* -------------------------------------------------------------- slopes */

bh_status bh_plot_slopes(const bh_frame *m, const bh_plot_options *opt, bh_chart **out,
                         bh_error *err)
{
    *out = NULL;
    margins_cols mc;
    bh_status s = margins_open(m, &mc, err);
    if (s != BH_OK)
        return s;
    char model[256];
    if ((s = margins_model(m, &mc, "slope", opt->model, model, sizeof model, err)))
        return s;
    bh_chart *c = chart_new("slopes", opt);
    if (!c)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    long blk = chart_block_new(c, "slope", "moderator estimate conf_low conf_high", 4);
    char mname[128] = "", focal[256] = "";
    double jn[8];
    size_t njn = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    for (size_t i = 0; i < m->nrow && blk >= 0; i++) {
        char b1[40], b2[40], b3[40], b4[40];
        const char *type = key_text(mc.type, i, b1, sizeof b1);
        if (strcmp(key_text(mc.model, i, b2, sizeof b2), model) != 0)
            continue;
        if (strcmp(type, "jn") == 0) {
            if (njn < 8 && isfinite(num_at(mc.est, i)))
                jn[njn++] = num_at(mc.est, i);
            continue;
        }
        if (strcmp(type, "slope") != 0)
            continue;
        if (!focal[0])
            snprintf(focal, sizeof focal, "%s", key_text(mc.term, i, b4, sizeof b4));
        const char *at = key_text(mc.at, i, b3, sizeof b3);
        char names[8][128], vals[8][128];
        size_t na = parse_at(at, names, vals, 8);
        double x;
        if (na < 1 || !is_number(vals[0], &x)) {
            char q[200];
            bh_chart_free(c);
            return bh_error_at(err, BH_EDATA, m->source, i + 2, mc.at->file_column,
                               "slope row 'at' = %s has no numeric moderator value",
                               bh_quote(q, sizeof q, at, 120));
        }
        if (!mname[0])
            snprintf(mname, sizeof mname, "%s", names[0]);
        xmin = fmin(xmin, x);
        xmax = fmax(xmax, x);
        double row[4] = {x, num_at(mc.est, i), num_at(mc.lo, i), num_at(mc.hi, i)};
        if (chart_row(c, blk, row))
            blk = -1;
    }
    if (blk < 0) {
        bh_chart_free(c);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    sort_block(c, blk);
    const char *ml = bh_plot_label(opt->labels, mname);
    char *fl = bh_plot_term_label(opt->labels, focal);
    sb t = {0}, cap = {0};
    sb_printf(&t, "Effect of %s across %s", fl ? fl : focal, ml);
    caption_models(&cap, "Line: conditional effect (simple slope); band: confidence interval; "
                         "dotted lines: Johnson-Neyman boundaries of significance.",
                   model, opt->vcov_label);
    size_t outside = 0;
    for (size_t k = 0; k < njn; k++)
        outside += !(jn[k] >= xmin && jn[k] <= xmax);
    if (njn == 0)
        sb_puts(&cap, " No Johnson-Neyman boundary in the input.");
    else if (outside) {
        sb_printf(&cap, " Boundar%s outside the plotted range:", outside > 1 ? "ies" : "y");
        for (size_t k = 0; k < njn; k++)
            if (!(jn[k] >= xmin && jn[k] <= xmax))
                sb_printf(&cap, " %.4g", jn[k]);
        sb_puts(&cap, ".");
    }
    double bottom, top;
    emit_title_caption(c, auto_text(opt->title, t.s ? t.s : ""),
                       auto_text(opt->caption, cap.s ? cap.s : ""), 0, &bottom, &top);
    free(t.s);
    free(cap.s);
    sb *b = &c->body;
    single_panel_bottom(c, bottom);
    sb_puts(b, "set xlabel ");
    sb_quote(b, ml);
    sb_puts(b, "\nset ylabel ");
    {
        sb yl = {0};
        sb_printf(&yl, "Effect of %s", fl ? fl : focal);
        sb_quote(b, yl.s ? yl.s : "");
        free(yl.s);
    }
    free(fl);
    sb_puts(b, "\nset autoscale xfix\nset offsets 0, 0, graph 0.05, graph 0.05\n");
    for (size_t k = 0; k < njn; k++) {
        if (!(jn[k] >= xmin && jn[k] <= xmax))
            continue;
        char num[40];
        fmt_short(num, sizeof num, jn[k]);
        sb_printf(b, "set arrow %zu from first %.15g, graph 0 to first %.15g, graph 1 nohead "
                     "lc rgb bh_ref lw 1.2 dt 3 back\n", k + 1, jn[k], jn[k]);
        sb_printf(b, "set label %zu ", k + 1);
        sb_quote(b, num);
        sb_printf(b, " at first %.15g, graph 0.04 %s offset %s0.6,0 tc rgb bh_ref front\n",
                  jn[k], (jn[k] - xmin) > 0.75 * (xmax - xmin) ? "right" : "left",
                  (jn[k] - xmin) > 0.75 * (xmax - xmin) ? "-" : "");
    }
    key_top(c);
    sb_puts(b, "set arrow 99 from graph 0, first 0 to graph 1, first 0 nohead lc rgb bh_ref "
               "lw 1 dt 2 back\n");
    sb_printf(b, "plot \\\n"
                 "    $%s using 1:3:4 with filledcurves lc 1 title 'Confidence band', \\\n"
                 "    $%s using 1:2 with lines lt 1 title 'Conditional effect'\n",
              blk_name(c, blk), blk_name(c, blk));
    return chart_done(c, BH_OK, out, err);
}

/* ---------------------------------------------------------------- coef */

static int omitted(const char *term, const bh_plot_options *opt)
{
    for (size_t k = 0; k < opt->nomit; k++) {
        const char *p = opt->omit[k];
        if (p[0] == '^' ? strncmp(term, p + 1, strlen(p + 1)) == 0 : strstr(term, p) != NULL)
            return 1;
    }
    return 0;
}

bh_status bh_plot_coef(const bh_frame *const *fits, size_t nfits, const bh_plot_options *opt,
                       bh_chart **out, bh_error *err)
{
    *out = NULL;
    strset models = {0}, terms = {0};
    bh_status s = BH_OK;
    bh_chart *c = NULL;
    /* Pass 1: models and terms in first-appearance order. */
    for (size_t f = 0; f < nfits && s == BH_OK; f++) {
        const bh_column *cm, *cc, *ct, *ce, *cl, *ch;
        if ((s = need_col(fits[f], "model", &cm, err)) ||
            (s = need_col(fits[f], "component", &cc, err)) ||
            (s = need_col(fits[f], "term", &ct, err)) ||
            (s = need_num(fits[f], "estimate", &ce, err)) ||
            (s = need_num(fits[f], "conf_low", &cl, err)) ||
            (s = need_num(fits[f], "conf_high", &ch, err)))
            break;
        for (size_t i = 0; i < fits[f]->nrow; i++) {
            char b1[40], b2[40], b3[40];
            const char *t = key_text(ct, i, b1, sizeof b1);
            const char *comp = key_text(cc, i, b2, sizeof b2);
            sb key = {0};
            if (*comp)
                sb_printf(&key, "%s: ", comp);
            sb_puts(&key, t);
            if (!omitted(t, opt) && isfinite(num_at(ce, i)) &&
                (strset_add(&models, key_text(cm, i, b3, sizeof b3)) < 0 ||
                 strset_add(&terms, key.s ? key.s : "") < 0))
                s = bh_error_set(err, BH_ENOMEM, "out of memory");
            free(key.s);
        }
    }
    if (s == BH_OK && terms.n == 0)
        s = bh_error_set(err, BH_EDATA, "no coefficients left to plot%s",
                         opt->nomit ? " after --omit" : "");
    if (s == BH_OK && models.n > PLOT_MAX_SERIES)
        s = bh_error_set(err, BH_EDATA, "%zu models: at most %d fit in one coefficient plot",
                         models.n, PLOT_MAX_SERIES);
    if (s != BH_OK)
        goto done;
    if (!(c = chart_new("coef", opt))) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    long blk[PLOT_MAX_SERIES];
    for (size_t k = 0; k < models.n; k++)
        if ((blk[k] = chart_block_new(c, "coef", "position estimate conf_low conf_high", 4)) < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    /* Dodge: models share 60% of a term's row, first model on top. */
    double step = models.n > 1 ? 0.6 / (double)(models.n - 1) : 0;
    if (step > 0.25)
        step = 0.25;
    for (size_t f = 0; f < nfits && s == BH_OK; f++) {
        const bh_column *cm = bh_frame_col(fits[f], "model"),
                        *cc = bh_frame_col(fits[f], "component"),
                        *ct = bh_frame_col(fits[f], "term"),
                        *ce = bh_frame_col(fits[f], "estimate"),
                        *cl = bh_frame_col(fits[f], "conf_low"),
                        *ch = bh_frame_col(fits[f], "conf_high");
        for (size_t i = 0; i < fits[f]->nrow; i++) {
            char b1[40], b2[40], b3[40];
            const char *t = key_text(ct, i, b1, sizeof b1);
            const char *comp = key_text(cc, i, b2, sizeof b2);
            if (omitted(t, opt) || !isfinite(num_at(ce, i)))
                continue;
            sb key = {0};
            if (*comp)
                sb_printf(&key, "%s: ", comp);
            sb_puts(&key, t);
            long ti = strset_find(&terms, key.s ? key.s : "");
            long mi = strset_find(&models, key_text(cm, i, b3, sizeof b3));
            free(key.s);
            double y = (double)terms.n - (double)ti +
                       ((double)(models.n - 1) / 2.0 - (double)mi) * step;
            double row[4] = {y, num_at(ce, i), num_at(cl, i), num_at(ch, i)};
            if (chart_row(c, blk[mi], row))
                s = bh_error_set(err, BH_ENOMEM, "out of memory");
        }
    }
    if (s != BH_OK)
        goto done;
    sb t = {0}, cap = {0};
    if (models.n == 1)
        sb_printf(&t, "Coefficients of model %s", models.v[0]);
    else
        sb_puts(&t, "Coefficients by model");
    sb_puts(&cap, "Points: estimates; bars: confidence intervals.");
    if (models.n > 1) {
        sb_puts(&cap, " Models:");
        for (size_t k = 0; k < models.n; k++)
            sb_printf(&cap, "%s %s", k ? "," : "", models.v[k]);
        sb_puts(&cap, ".");
    }
    sb_printf(&cap, " Standard errors: %s.",
              opt->vcov_label ? opt->vcov_label : "as in the input (not recorded in the CSV)");
    if (opt->nomit) {
        sb_puts(&cap, " Not shown:");
        for (size_t k = 0; k < opt->nomit; k++)
            sb_printf(&cap, "%s %s", k ? "," : "", opt->omit[k]);
        sb_puts(&cap, ".");
    }
    double bottom, top;
    emit_title_caption(c, auto_text(opt->title, t.s ? t.s : ""),
                       auto_text(opt->caption, cap.s ? cap.s : ""), 0, &bottom, &top);
    free(t.s);
    free(cap.s);
    sb *b = &c->body;
    single_panel_bottom(c, bottom);
    sb_puts(b, "set xlabel 'Estimate'\nset ylabel ''\nset grid noytics\n");
    {
        double lo = 0, hi = 0;
        for (size_t k = 0; k < models.n; k++) {
            const chart_block *cb = &c->blocks[blk[k]];
            for (size_t i = 0; i < cb->nrow; i++)
                for (size_t j = 1; j < 4; j++) {
                    double v = cb->v[i * 4 + j];
                    if (isfinite(v)) {
                        lo = fmin(lo, v);
                        hi = fmax(hi, v);
                    }
                }
        }
        sb_printf(b, "set xtics %.15g\n", nice_step(hi - lo, 5));
    }
    sb_printf(b, "set yrange [0.4:%zu.6]\nset offsets graph 0.04, graph 0.04, 0, 0\n", terms.n);
    sb_puts(b, "set ytics scale 0 (");
    for (size_t k = 0; k < terms.n; k++) {
        char *lab = bh_plot_term_label(opt->labels, terms.v[k]);
        sb_quote_tic(b, lab ? lab : terms.v[k]);
        free(lab);
        sb_printf(b, " %zu%s", terms.n - k, k + 1 < terms.n ? ", " : ")\n");
    }
    sb_puts(b, "set arrow 1 from first 0, graph 0 to first 0, graph 1 nohead lc rgb bh_ref "
               "lw 1 dt 2 back\n");
    key_if_several(c, models.n);
    sb_puts(b, "plot \\\n");
    for (size_t k = 0; k < models.n; k++) {
        sb_printf(b, "    $%s using 2:1:3:4 with xerrorbars lt %zu dt 1 lw 1.5 title ",
                  blk_name(c, blk[k]), k + 1);
        sb_quote(b, models.v[k]);
        sb_puts(b, k + 1 < models.n ? ", \\\n" : "\n");
    }
done:
    strset_free(&models);
    strset_free(&terms);
    return chart_done(c, s, out, err);
}

/* ----------------------------------------------------------- histogram */

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bh_status bh_plot_histogram(const double *x, size_t n, size_t bins, double *lo, double *width,
                            size_t **counts, size_t *nbins, bh_error *err)
{
    *counts = NULL;
    *nbins = 0;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            v[m++] = x[i];
    if (m == 0) {
        free(v);
        return bh_error_set(err, BH_EDATA, "no finite values to bin");
    }
    qsort(v, m, sizeof *v, dbl_cmp);
    double mn = v[0], mx = v[m - 1], range = mx - mn;
    size_t k = bins;
    if (k == 0) {
        double iqr = bh_describe_quantile_sorted(v, m, 0.75) -
                     bh_describe_quantile_sorted(v, m, 0.25);
        double h = 2 * iqr / cbrt((double)m);
        if (h > 0 && range > 0)
            k = (size_t)ceil(range / h);
        else
            k = (size_t)ceil(log2((double)m)) + 1;
        if (k > 200)
            k = 200;
    }
    if (k < 1 || range == 0)
        k = 1;
    double w = range > 0 ? range / (double)k : 1.0;
    double start = range > 0 ? mn : mn - 0.5;
    size_t *cnt = calloc(k, sizeof *cnt);
    if (!cnt) {
        free(v);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m; i++) {
        size_t j = (size_t)floor((v[i] - start) / w);
        if (j >= k) /* the maximum falls in the last, closed bin */
            j = k - 1;
        cnt[j]++;
    }
    free(v);
    *lo = start;
    *width = w;
    *counts = cnt;
    *nbins = k;
    return BH_OK;
}

/* ------------------------------------------------------------ describe */

/* Panel origin and size for cell `k` of a cols x rows grid inside the box
 * [x0, x0+w] x [y0, y0+h] (screen fractions). */
static void grid_cell(sb *b, size_t k, size_t cols, size_t rows, double x0, double y0, double w,
                      double h)
{
    size_t r = k / cols, col = k % cols;
    double pw = w / (double)cols, ph = h / (double)rows;
    sb_printf(b, "set origin %.4f, %.4f\nset size %.4f, %.4f\n", x0 + (double)col * pw,
              y0 + h - (double)(r + 1) * ph, pw, ph);
}

bh_status bh_plot_describe(const bh_frame *data, const bh_plot_options *opt, bh_chart **out,
                           bh_error *err)
{
    *out = NULL;
    size_t nv = 0;
    const bh_column *cols[PLOT_MAX_PANELS];
    if (opt->nvars) {
        if (opt->nvars > PLOT_MAX_PANELS)
            return bh_error_set(err, BH_EUSAGE, "--vars lists %zu variables; at most %d fit",
                                opt->nvars, PLOT_MAX_PANELS);
        for (size_t k = 0; k < opt->nvars; k++) {
            const bh_column *col = bh_frame_col(data, opt->vars[k]);
            char q[160];
            if (!col) {
                const char *sug = bh_frame_suggest(data, opt->vars[k]);
                return bh_error_set(err, BH_EUSAGE, "%s: unknown variable %s%s%s%s",
                                    data->source, bh_quote(q, sizeof q, opt->vars[k], 100),
                                    sug ? " (did you mean '" : "", sug ? sug : "",
                                    sug ? "'?)" : "");
            }
            if (col->type != BH_COL_NUMERIC)
                return bh_error_set(err, BH_EUSAGE,
                                    "%s: variable %s is categorical; describe plots numeric "
                                    "variables", data->source,
                                    bh_quote(q, sizeof q, opt->vars[k], 100));
            cols[nv++] = col;
        }
    } else {
        for (size_t j = 0; j < data->ncol && nv < PLOT_MAX_PANELS; j++)
            if (data->cols[j].type == BH_COL_NUMERIC)
                cols[nv++] = &data->cols[j];
    }
    if (nv == 0)
        return bh_error_set(err, BH_EDATA, "%s: no numeric variable to plot", data->source);
    bh_chart *c = chart_new("describe", opt);
    if (!c)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_status s = BH_OK;
    long hb[PLOT_MAX_PANELS];
    for (size_t k = 0; k < nv && s == BH_OK; k++) {
        double lo, w;
        size_t *cnt, nb;
        if ((s = bh_plot_histogram(cols[k]->num, data->nrow, opt->bins, &lo, &w, &cnt, &nb,
                                   err)) != BH_OK) {
            char msg[BH_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s: variable '%.100s': %.800s", data->source,
                     cols[k]->name, err ? err->msg : "");
            if (err)
                snprintf(err->msg, sizeof err->msg, "%s", msg);
            break;
        }
        hb[k] = chart_block_new(c, "hist", "center count width", 3);
        for (size_t j = 0; j < nb && hb[k] >= 0; j++) {
            double row[3] = {lo + ((double)j + 0.5) * w, (double)cnt[j], w};
            if (chart_row(c, hb[k], row))
                hb[k] = -1;
        }
        free(cnt);
        if (hb[k] < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    long cb = -1;
    size_t nmin = (size_t)-1, nmax = 0;
    if (s == BH_OK && nv > 1) {
        cb = chart_block_new(c, "cor", "column row r dark", 4);
        /* Lower triangle with the diagonal; first variable at the top. */
        for (size_t i = 0; i < nv && cb >= 0; i++)
            for (size_t j = 0; j <= i; j++) {
                double r, p;
                size_t np = bh_describe_cor(cols[i]->num, cols[j]->num, data->nrow, &r, &p);
                if (i != j) {
                    nmin = np < nmin ? np : nmin;
                    nmax = np > nmax ? np : nmax;
                }
                double row[4] = {(double)(j + 1), (double)(nv - i), r,
                                 fabs(r) > 0.6 ? 1.0 : 0.0};
                if (chart_row(c, cb, row))
                    cb = -1;
            }
        if (cb < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    if (s != BH_OK) {
        bh_chart_free(c);
        return s;
    }
    sb cap = {0};
    sb_printf(&cap, "Histograms: %s bins. ",
              opt->bins ? "fixed number of" : "Freedman-Diaconis (Sturges when the IQR is 0)");
    if (nv > 1) {
        sb_printf(&cap, "Heat map: Pearson correlations, pairwise complete observations (n = %zu",
                  nmin);
        if (nmax != nmin)
            sb_printf(&cap, " to %zu", nmax);
        sb_puts(&cap, ").");
    }
    sb_printf(&cap, " Data: %s.", data->source ? data->source : "input");
    double bottom, top;
    emit_title_caption(c, auto_text(opt->title, "Distributions and correlations"),
                       auto_text(opt->caption, cap.s ? cap.s : ""), 1, &bottom, &top);
    free(cap.s);
    sb *b = &c->body;
    double area_h = 1.0 - bottom - top - 0.01;
    double left_w = nv > 1 ? 0.56 : 1.0;
    size_t gc = (size_t)ceil(sqrt((double)nv)), gr = (nv + gc - 1) / gc;
    sb_printf(b, "set style fill solid 0.85 border lc rgb 'white'\n"
                 "set grid noxtics ytics\nset ytics font ',%d'\nset xtics font ',%d'\n"
                 "set offsets 0, 0, graph 0.05, 0\nset yrange [0:*]\n"
                 "set tmargin 3.5\nset bmargin 2.5\nset lmargin 7\nset rmargin 2\n",
              PLOT_FONT_SIZE - 2, PLOT_FONT_SIZE - 2);
    for (size_t k = 0; k < nv; k++) {
        grid_cell(b, k, gc, gr, 0, bottom, left_w, area_h);
        sb_puts(b, "set title ");
        {
            /* "(k) label": the heat map refers to variables by number */
            sb t = {0};
            if (nv > 1)
                sb_printf(&t, "(%zu) ", k + 1);
            sb_puts(&t, bh_plot_label(opt->labels, cols[k]->name));
            /* long codebook labels: wrapped to the panel width */
            size_t chars = (size_t)(left_w * (double)c->width / (double)gc / PLOT_PANEL_CHAR_PX);
            sb_quote_wrapped(b, t.s ? t.s : "", chars > 8 ? chars : 8);
            free(t.s);
        }
        const chart_block *hk = &c->blocks[hb[k]];
        double span = hk->nrow ? (double)hk->nrow * hk->v[2] : 1;
        sb_printf(b, " font ',%d'\nset ylabel %s\nset xtics %.15g\n", PLOT_FONT_SIZE - 1,
                  k % gc == 0 ? "'Count' offset 1,0" : "''", nice_step(span, 4));
        sb_printf(b, "plot $%s using 1:2:3 with boxes lc 1 notitle\n", blk_name(c, hb[k]));
        if (k == 0)
            drop_caption_labels(c);
    }
    if (cb >= 0) {
        sb_printf(b, "set origin %.4f, %.4f\nset size %.4f, %.4f\n", left_w + 0.02, bottom,
                  1.0 - left_w - 0.02, area_h);
        sb_puts(b, "set ylabel ''\nset size ratio -1\nunset grid\n"
                   "set tmargin 2.5\nset bmargin 2.5\nset lmargin 5\nset rmargin 9\n"
                   "set border 0\nset tics scale 0\nset offsets 0, 0, 0, 0\n");
        sb_printf(b, "set xrange [0.5:%zu.5]\nset yrange [0.5:%zu.5]\n", nv, nv);
        sb_puts(b, "set cbrange [-1:1]\nset cbtics 0.5 font ',10'\nset colorbox default\n");
        sb_printf(b, "set title 'Correlations' font ',%d'\n", PLOT_FONT_SIZE - 1);
        /* Numbered like a "Table 1" correlation matrix: (k) is the title of
         * histogram k; long names would not fit under the cells. */
        sb_puts(b, "set xtics (");
        for (size_t k = 0; k < nv; k++)
            sb_printf(b, "%s'(%zu)' %zu", k ? ", " : "", k + 1, k + 1);
        sb_puts(b, ")\nset ytics (");
        for (size_t k = 0; k < nv; k++)
            sb_printf(b, "%s'(%zu)' %zu", k ? ", " : "", k + 1, nv - k);
        sb_puts(b, ")\n");
        /* |r| < 0.005 prints as 0.00, not -0.00 */
        sb_puts(b, "bh_r(r) = abs(r) < 0.005 ? '0.00' : sprintf('%.2f', r)\n");
        sb_printf(b, "plot $%s using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder "
                     "lc palette notitle, \\\n"
                     "    $%s using 1:2:($4 > 0 ? bh_r($3) : '') with labels "
                     "tc rgb 'white' font ',10' notitle, \\\n"
                     "    $%s using 1:2:($4 > 0 ? '' : bh_r($3)) with labels "
                     "tc rgb '#202020' font ',10' notitle\n",
                  blk_name(c, cb), blk_name(c, cb), blk_name(c, cb));
    }
    sb_puts(b, "unset multiplot\n");
    return chart_done(c, BH_OK, out, err);
}

/* ----------------------------------------------------------------- sim */

static bh_status plot_power(const bh_frame *f, const bh_plot_options *opt, bh_chart **out,
                            bh_error *err)
{
    const bh_column *cn, *cp;
    bh_status s;
    if ((s = need_num(f, "n", &cn, err)) || (s = need_num(f, "power", &cp, err)))
        return s;
    const bh_column *cse = bh_frame_col(f, "power_se"), *ces = bh_frame_col(f, "effect_scale");
    const bh_column *cm = bh_frame_col(f, "model"), *ct = bh_frame_col(f, "term");
    const bh_column *ca = bh_frame_col(f, "alpha");
    if (cse && cse->type != BH_COL_NUMERIC)
        return need_num(f, "power_se", &cse, err);
    /* Which key parts vary decides what the legend shows. */
    const bh_column *parts[3] = {cm, ct, ces};
    const char *pname[3] = {"model", "term", "effect scale"};
    int vary[3] = {0, 0, 0};
    for (int q = 0; q < 3; q++)
        for (size_t i = 1; parts[q] && i < f->nrow; i++) {
            char b1[40], b2[40];
            if (strcmp(key_text(parts[q], i, b1, sizeof b1),
                       key_text(parts[q], 0, b2, sizeof b2)) != 0)
                vary[q] = 1;
        }
    bh_chart *c = chart_new("sim", opt);
    if (!c)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    strset keys = {0}, ns = {0};
    long blk[PLOT_MAX_SERIES];
    double nmin = INFINITY, nmax = -INFINITY, alpha = NAN;
    s = BH_OK;
    for (size_t i = 0; i < f->nrow && s == BH_OK; i++) {
        sb key = {0};
        for (int q = 0; q < 3; q++) {
            char b1[40];
            if (!vary[q])
                continue;
            if (key.len)
                sb_puts(&key, ", ");
            if (q == 2)
                sb_printf(&key, "%s %s", pname[q], key_text(parts[q], i, b1, sizeof b1));
            else
                sb_puts(&key, key_text(parts[q], i, b1, sizeof b1));
        }
        size_t before = keys.n;
        long k = strset_add(&keys, key.s ? key.s : "");
        free(key.s);
        if (k < 0) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            break;
        }
        if (keys.n > before) {
            if (keys.n > PLOT_MAX_SERIES) {
                s = bh_error_at(err, BH_EDATA, f->source, i + 2, 0,
                                "more than %d power curves: filter the input", PLOT_MAX_SERIES);
                break;
            }
            blk[k] = chart_block_new(c, "power", "n power conf_low conf_high", 4);
        }
        double n = num_at(cn, i), p = num_at(cp, i), se = num_at(cse, i);
        if (ca && isnan(alpha))
            alpha = num_at(ca, i);
        char nb[40];
        fmt_value(nb, sizeof nb, n);
        if (strset_add(&ns, nb) < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
        nmin = fmin(nmin, n);
        nmax = fmax(nmax, n);
        double row[4] = {n, p, isnan(se) ? NAN : fmax(0, p - 1.96 * se),
                         isnan(se) ? NAN : fmin(1, p + 1.96 * se)};
        if (blk[k] < 0 || chart_row(c, blk[k], row))
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    if (s == BH_OK && f->nrow == 0)
        s = bh_error_set(err, BH_EDATA, "%s: no rows", f->source);
    if (s != BH_OK)
        goto done;
    for (size_t k = 0; k < keys.n; k++)
        sort_block(c, blk[k]);
    sb cap = {0};
    sb_puts(&cap, "Power: share of replications rejecting the null hypothesis");
    if (!isnan(alpha))
        sb_printf(&cap, " at alpha = %.3g", alpha);
    sb_puts(&cap, cse ? "; bars: 95% Monte Carlo intervals (power +/- 1.96 se)." : ".");
    sb_puts(&cap, " Dashed line: 80% power.");
    for (int q = 0; q < 3; q++) {
        char b1[40];
        if (parts[q] && !vary[q] && f->nrow)
            sb_printf(&cap, " %c%s: %s.", pname[q][0] - 32, pname[q] + 1,
                      key_text(parts[q], 0, b1, sizeof b1));
    }
    double bottom, top;
    emit_title_caption(c, auto_text(opt->title, "Power by sample size"),
                       auto_text(opt->caption, cap.s ? cap.s : ""), 0, &bottom, &top);
    free(cap.s);
    sb *b = &c->body;
    single_panel_bottom(c, bottom);
    sb_puts(b, "set xlabel 'Sample size (n)'\nset ylabel 'Power'\n"
               "set yrange [0:1.02]\nset ytics 0, 0.2, 1\nset autoscale xfix\n"
               "set offsets graph 0.05, graph 0.05, 0, 0\n");
    if (nmin > 0 && nmax / nmin >= 8)
        sb_puts(b, "set logscale x\n");
    if (ns.n <= 10) {
        sb_puts(b, "set xtics (");
        for (size_t k = 0; k < ns.n; k++)
            sb_printf(b, "%s%s", k ? ", " : "", ns.v[k]);
        sb_puts(b, ")\n");
    }
    sb_puts(b, "set arrow 1 from graph 0, first 0.8 to graph 1, first 0.8 nohead lc rgb bh_ref "
               "lw 1 dt 2 back\n");
    if (!isnan(alpha))
        sb_printf(b, "set arrow 2 from graph 0, first %.15g to graph 1, first %.15g nohead "
                     "lc rgb bh_ref lw 1 dt 3 back\n", alpha, alpha);
    key_if_several(c, keys.n);
    sb_puts(b, "plot \\\n");
    for (size_t k = 0; k < keys.n; k++) {
        sb_printf(b, "    $%s using 1:2%s with %s lt %zu title ", blk_name(c, blk[k]),
                  cse ? ":3:4" : "", cse ? "yerrorlines" : "linespoints", k + 1);
        sb_quote(b, keys.v[k]);
        sb_puts(b, k + 1 < keys.n ? ", \\\n" : "\n");
    }
done:
    strset_free(&keys);
    strset_free(&ns);
    return chart_done(c, s, out, err);
}

static bh_status plot_sampling(const bh_frame *f, const bh_plot_options *opt, bh_chart **out,
                               bh_error *err)
{
    const bh_column *cn, *ct, *ce, *ctrue, *cr;
    bh_status s;
    if ((s = need_num(f, "replication", &cr, err)) || (s = need_num(f, "n", &cn, err)) ||
        (s = need_col(f, "term", &ct, err)) || (s = need_num(f, "estimate", &ce, err)) ||
        (s = need_num(f, "true", &ctrue, err)))
        return s;
    const bh_column *cm = bh_frame_col(f, "model");
    strset panels = {0};
    size_t *rowpanel = malloc((f->nrow ? f->nrow : 1) * sizeof *rowpanel);
    bh_chart *c = chart_new("sim", opt);
    if (!rowpanel || !c) {
        free(rowpanel);
        bh_chart_free(c);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    s = BH_OK;
    for (size_t i = 0; i < f->nrow && s == BH_OK; i++) {
        char b1[40], b2[40], b3[40];
        sb key = {0};
        if (cm)
            sb_printf(&key, "%s: ", key_text(cm, i, b1, sizeof b1));
        char *tl = bh_plot_term_label(opt->labels, key_text(ct, i, b2, sizeof b2));
        sb_printf(&key, "%s, n = %s", tl ? tl : "", key_text(cn, i, b3, sizeof b3));
        free(tl);
        long k = strset_add(&panels, key.s ? key.s : "");
        free(key.s);
        if (k < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
        else if (panels.n > PLOT_MAX_PANELS)
            s = bh_error_at(err, BH_EDATA, f->source, i + 2, 0,
                            "more than %d (model, term, n) panels: filter the input",
                            PLOT_MAX_PANELS);
        else
            rowpanel[i] = (size_t)k;
    }
    if (s == BH_OK && panels.n == 0)
        s = bh_error_set(err, BH_EDATA, "%s: no rows", f->source);
    size_t np = panels.n;
    long hb[PLOT_MAX_PANELS];
    double truev[PLOT_MAX_PANELS], meanv[PLOT_MAX_PANELS];
    size_t reps[PLOT_MAX_PANELS];
    double *buf = malloc((f->nrow ? f->nrow : 1) * sizeof *buf);
    if (!buf && s == BH_OK)
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
    for (size_t k = 0; k < np && s == BH_OK; k++) {
        size_t m = 0;
        truev[k] = NAN;
        double sum = 0;
        for (size_t i = 0; i < f->nrow; i++)
            if (rowpanel[i] == k) {
                buf[m++] = num_at(ce, i);
                if (isfinite(buf[m - 1]))
                    sum += buf[m - 1];
                if (isnan(truev[k]))
                    truev[k] = num_at(ctrue, i);
            }
        double lo, w;
        size_t *cnt, nb, fin = 0;
        for (size_t i = 0; i < m; i++)
            fin += isfinite(buf[i]) != 0;
        reps[k] = fin;
        meanv[k] = fin ? sum / (double)fin : NAN;
        if ((s = bh_plot_histogram(buf, m, opt->bins, &lo, &w, &cnt, &nb, err)) != BH_OK)
            break;
        hb[k] = chart_block_new(c, "est", "center count width", 3);
        for (size_t j = 0; j < nb && hb[k] >= 0; j++) {
            double row[3] = {lo + ((double)j + 0.5) * w, (double)cnt[j], w};
            if (chart_row(c, hb[k], row))
                hb[k] = -1;
        }
        free(cnt);
        if (hb[k] < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    free(buf);
    free(rowpanel);
    if (s != BH_OK) {
        strset_free(&panels);
        bh_chart_free(c);
        return s;
    }
    sb cap = {0};
    sb_puts(&cap, "Histograms of the estimates over Monte Carlo replications; solid line: true "
                  "value; dashed line: mean estimate.");
    size_t rmin = (size_t)-1, rmax = 0;
    for (size_t k = 0; k < np; k++) {
        rmin = reps[k] < rmin ? reps[k] : rmin;
        rmax = reps[k] > rmax ? reps[k] : rmax;
    }
    sb_printf(&cap, " Replications per panel: %zu", rmin);
    if (rmax != rmin)
        sb_printf(&cap, " to %zu", rmax);
    sb_puts(&cap, ".");
    double bottom, top;
    emit_title_caption(c, auto_text(opt->title, "Sampling distributions of the estimates"),
                       auto_text(opt->caption, cap.s ? cap.s : ""), 1, &bottom, &top);
    free(cap.s);
    sb *b = &c->body;
    size_t gc = (size_t)ceil(sqrt((double)np)), gr = (np + gc - 1) / gc;
    sb_printf(b, "set style fill solid 0.6 border lc rgb 'white'\n"
                 "set grid noxtics ytics\nset ytics font ',%d'\nset xtics font ',%d'\n"
                 "set yrange [0:*]\nset offsets 0, 0, graph 0.08, 0\n"
                 "set tmargin 2.5\nset bmargin 2.5\nset lmargin 7\nset rmargin 2\n",
              PLOT_FONT_SIZE - 2, PLOT_FONT_SIZE - 2);
    double area_h = 1.0 - bottom - top - 0.01;
    for (size_t k = 0; k < np; k++) {
        grid_cell(b, k, gc, gr, 0, bottom, 1.0, area_h);
        sb_puts(b, "set title ");
        sb_quote(b, panels.v[k]);
        sb_printf(b, " font ',%d'\nset ylabel %s\n", PLOT_FONT_SIZE - 1,
                  k % gc == 0 ? "'Replications' offset 1,0" : "''");
        sb_puts(b, "unset arrow\n");
        if (isfinite(truev[k]))
            sb_printf(b, "set arrow 1 from first %.15g, graph 0 to first %.15g, graph 1 nohead "
                         "lc rgb '#000000' lw 2 front\n", truev[k], truev[k]);
        if (isfinite(meanv[k]))
            sb_printf(b, "set arrow 2 from first %.15g, graph 0 to first %.15g, graph 1 nohead "
                         "lc 2 lw 1.5 dt 2 front\n", meanv[k], meanv[k]);
        /* keep the true value inside the x range even when far off */
        if (isfinite(truev[k]))
            sb_printf(b, "plot $%s using 1:2:3 with boxes lc 1 notitle, "
                         "'+' using (%.15g):(NaN) notitle\n",
                      blk_name(c, hb[k]), truev[k]);
        else
            sb_printf(b, "plot $%s using 1:2:3 with boxes lc 1 notitle\n", blk_name(c, hb[k]));
        if (k == 0)
            drop_caption_labels(c);
    }
    sb_puts(b, "unset multiplot\n");
    strset_free(&panels);
    return chart_done(c, BH_OK, out, err);
}

bh_status bh_plot_sim(const bh_frame *f, const bh_plot_options *opt, bh_chart **out,
                      bh_error *err)
{
    *out = NULL;
    if (bh_frame_col(f, "power"))
        return plot_power(f, opt, out, err);
    if (bh_frame_col(f, "estimate") && bh_frame_col(f, "true"))
        return plot_sampling(f, opt, out, err);
    return bh_error_at(err, BH_EINPUT, f->source, 1, 0,
                       "not a simulation summary: expected columns %s (power curves) or %s "
                       "(sampling distributions)", BH_PLOT_SIM_POWER_COLUMNS,
                       BH_PLOT_SIM_SAMPLING_COLUMNS);
}

/* --------------------------------------------------------- diagnostics */

typedef struct {
    double fitted, resid;
} fr_pair;

static int fr_cmp(const void *a, const void *b)
{
    const fr_pair *x = a, *y = b;
    return (x->fitted > y->fitted) - (x->fitted < y->fitted);
}

/* Gelman & Hill (2007, sec. 5.6) binned residuals, as arm::binnedplot:
 * rows sorted by fitted value into nbins bins of (nearly) equal count
 * (floor(sqrt(n)) bins for n >= 100, 10 for 10 < n < 100, else n/2); per
 * bin the mean fitted value, the mean residual and +/- 2 sd/sqrt(n_bin). */
static long binned_block(bh_chart *c, fr_pair *pr, size_t n)
{
    qsort(pr, n, sizeof *pr, fr_cmp);
    size_t nb = n >= 100 ? (size_t)floor(sqrt((double)n)) : n > 10 ? 10 : n / 2;
    if (nb < 1)
        nb = 1;
    long blk = chart_block_new(c, "binned", "fitted mean_resid upper lower", 4);
    for (size_t k = 0; k < nb && blk >= 0; k++) {
        size_t a = k * n / nb, e = (k + 1) * n / nb;
        if (e <= a)
            continue;
        double mf = 0, mr = 0, ss = 0;
        for (size_t i = a; i < e; i++) {
            mf += pr[i].fitted;
            mr += pr[i].resid;
        }
        double m = (double)(e - a);
        mf /= m;
        mr /= m;
        for (size_t i = a; i < e; i++)
            ss += (pr[i].resid - mr) * (pr[i].resid - mr);
        double band = e - a > 1 ? 2 * sqrt(ss / (m - 1)) / sqrt(m) : NAN;
        double row[4] = {mf, mr, band, -band};
        if (chart_row(c, blk, row))
            blk = -1;
    }
    return blk;
}

bh_status bh_plot_diagnostics(const bh_model *model, const bh_plot_options *opt,
                              bh_chart **out, bh_error *err)
{
    *out = NULL;
    const bh_fit *fit = model->fit;
    const bh_design *d = model->design;
    if (!fit->fitted || !fit->resid || fit->nrows == 0)
        return bh_error_set(err, BH_EUSAGE, "model %s has no residuals to plot", fit->name);
    int binomial = fit->family && strcmp(fit->family, "binomial") == 0;
    int linear = fit->linear;
    const char *fam = fit->family ? fit->family : "";
    size_t n = fit->nrows;
    fr_pair *pr = malloc(n * sizeof *pr);
    double *std = malloc(n * sizeof *std);
    bh_chart *c = chart_new("diagnostics", opt);
    if (!pr || !std || !c) {
        free(pr);
        free(std);
        bh_chart_free(c);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    size_t m = 0;
    long rf = chart_block_new(c, "resid", "fitted residual", 2);
    double sigma = sqrt(fit->dispersion);
    for (size_t i = 0; i < n && rf >= 0; i++) {
        double w = d && d->w ? d->w[i] : 1.0;
        double mu = fit->fitted[i], e = fit->resid[i];
        if (!(w > 0) || !isfinite(mu) || !isfinite(e))
            continue; /* zero-weight rows are not part of the fit */
        double r = e;
        if (!linear && !binomial) {
            /* Pearson residuals: response residual over sqrt(variance fn). */
            double v = strcmp(fam, "poisson") == 0 ? mu : mu * (1 - mu);
            r = v > 0 ? e * sqrt(w) / sqrt(v) : NAN;
        }
        pr[m].fitted = mu;
        pr[m].resid = e;
        if (linear) {
            double h = fit->hat ? fit->hat[i] : 0;
            std[m] = h < 1 && sigma > 0 ? e * sqrt(w) / (sigma * sqrt(1 - h)) : NAN;
        }
        m++;
        double row[2] = {mu, r};
        if (!binomial && chart_row(c, rf, row))
            rf = -1;
    }
    bh_status s = BH_OK;
    long qb = -1, bb = -1;
    if (rf < 0)
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
    else if (m < 3)
        s = bh_error_set(err, BH_EDATA, "model %s: %zu usable residuals; need 3", fit->name, m);
    if (s == BH_OK && linear) {
        size_t k = 0;
        for (size_t i = 0; i < m; i++)
            if (isfinite(std[i]))
                std[k++] = std[i];
        qsort(std, k, sizeof *std, dbl_cmp);
        qb = chart_block_new(c, "qq", "theoretical standardised", 2);
        /* plotting positions of R's ppoints(): a = 3/8 for n <= 10, else 1/2 */
        double a = k <= 10 ? 0.375 : 0.5;
        for (size_t i = 0; i < k && qb >= 0; i++) {
            double row[2] = {gsl_cdf_ugaussian_Pinv(((double)i + 1 - a) / ((double)k + 1 - 2 * a)),
                             std[i]};
            if (chart_row(c, qb, row))
                qb = -1;
        }
        if (qb < 0)
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    if (s == BH_OK && !linear && (bb = binned_block(c, pr, m)) < 0)
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
    free(pr);
    free(std);
    if (s != BH_OK) {
        bh_chart_free(c);
        return s;
    }
    const char *resp = d && d->m > 0 && d->ynames ? d->ynames[0] : "response";
    sb t = {0}, cap = {0};
    sb_printf(&t, "Diagnostics: %s", fit->formula ? fit->formula : fit->name);
    sb_printf(&cap, "Model %s: %s [%s, %s link; %s]; N = %zu; standard errors: %s.", fit->name,
              fit->formula ? fit->formula : "", fam, fit->link ? fit->link : "",
              fit->method ? fit->method : "", fit->nobs, fit->vcov_type);
    if (linear)
        sb_puts(&cap, " Q-Q: internally studentised residuals against normal quantiles "
                      "(ppoints); line: y = x.");
    if (!linear)
        sb_puts(&cap, " Binned residuals (Gelman & Hill): mean residual in bins of fitted "
                      "values; lines: +/- 2 standard errors.");
    double bottom, top;
    int panels = binomial ? 1 : 2;
    emit_title_caption(c, auto_text(opt->title, t.s ? t.s : ""),
                       auto_text(opt->caption, cap.s ? cap.s : ""), panels > 1, &bottom, &top);
    free(t.s);
    free(cap.s);
    sb *b = &c->body;
    const char *rl = bh_plot_label(opt->labels, resp);
    double area_h = 1.0 - bottom - top - 0.01;
    if (panels > 1)
        sb_printf(b, "set tmargin 2.5\nset bmargin 3.5\n");
    else
        single_panel_bottom(c, bottom);
    /* Panel 1 (not for binomial): residuals against fitted values. */
    if (!binomial) {
        grid_cell(b, 0, 2, 1, 0, bottom, 1.0, area_h);
        sb_puts(b, "set title 'Residuals vs fitted' font ',12'\nset xlabel ");
        {
            sb xl = {0};
            sb_printf(&xl, "Fitted %s", rl);
            sb_quote(b, xl.s ? xl.s : "");
            free(xl.s);
        }
        sb_printf(b, "\nset ylabel '%s'\n", linear ? "Residual" : "Pearson residual");
        sb_puts(b, "set arrow 1 from graph 0, first 0 to graph 1, first 0 nohead lc rgb bh_ref "
                   "lw 1 dt 2 front\n");
        sb_printf(b, "plot $%s using 1:2 with points pt 7 ps 0.5 lc rgb '#800072B2' notitle\n",
                  blk_name(c, rf));
        drop_caption_labels(c);
        sb_puts(b, "unset arrow\n");
    }
    if (linear) {
        grid_cell(b, 1, 2, 1, 0, bottom, 1.0, area_h);
        sb_puts(b, "set title 'Normal Q-Q' font ',12'\n"
                   "set xlabel 'Theoretical quantiles (standard normal)'\n"
                   "set ylabel 'Standardised residual'\n");
        sb_printf(b, "plot x with lines lc rgb bh_ref lw 1 dt 2 notitle, \\\n"
                     "    $%s using 1:2 with points pt 7 ps 0.5 lc rgb '#800072B2' notitle\n",
                  blk_name(c, qb));
    } else {
        if (panels > 1)
            grid_cell(b, 1, 2, 1, 0, bottom, 1.0, area_h);
        if (panels > 1)
            sb_puts(b, "set title 'Binned residuals' font ',12'\n");
        sb_puts(b, "set xlabel ");
        {
            sb xl = {0};
            sb_printf(&xl, "Fitted %s (bin mean)", rl);
            sb_quote(b, xl.s ? xl.s : "");
            free(xl.s);
        }
        sb_puts(b, "\nset ylabel 'Mean residual'\n");
        if (panels > 1)
            sb_puts(b, "set key tmargin center horizontal\n");
        else
            key_top(c);
        sb_puts(b, ""
                   "set arrow 1 from graph 0, first 0 to graph 1, first 0 nohead lc rgb bh_ref "
                   "lw 1 dt 2 back\n");
        sb_printf(b, "plot $%s using 1:3 with lines lc rgb '#777777' lw 1 dt 1 title "
                     "'+/- 2 SE', \\\n"
                     "    $%s using 1:4 with lines lc rgb '#777777' lw 1 dt 1 notitle, \\\n"
                     "    $%s using 1:2 with points lt 1 pt 7 ps 0.9 title 'Bin mean'\n",
                  blk_name(c, bb), blk_name(c, bb), blk_name(c, bb));
    }
    if (panels > 1)
        sb_puts(b, "unset multiplot\n");
    return chart_done(c, BH_OK, out, err);
}
