/* table.h - a plain table of text cells and its renderers.
 *
 * Presentation code builds a bh_table (header + rows of already formatted
 * cells, column alignment, optional title and notes) and renders it as
 * aligned text, CSV, Markdown, LaTeX (booktabs) or HTML.  Cell text is
 * escaped for the target format here, in one place: CSV quoting, Markdown
 * pipes, LaTeX special characters, HTML entities.  JSON output does not go
 * through tables (see output.h).
 *
 * Ownership: the table copies every string given to it.
 */
#ifndef BH_TABLE_H
#define BH_TABLE_H

#include <stddef.h>
#include <stdio.h>
#include "blackhole/status.h"

typedef enum {
    BH_FMT_TEXT = 0, BH_FMT_CSV, BH_FMT_MD, BH_FMT_LATEX, BH_FMT_HTML,
    BH_FMT_JSON
} bh_format;

/* Parse "text", "csv", "md"/"markdown", "latex"/"tex", "html", "json". */
bh_status bh_format_parse(const char *s, bh_format *out, bh_error *err);

typedef enum { BH_ALIGN_LEFT = 0, BH_ALIGN_RIGHT = 1 } bh_align;

typedef struct bh_table bh_table;

bh_table *bh_table_new(size_t ncol);
void bh_table_free(bh_table *t);
bh_status bh_table_set_title(bh_table *t, const char *title);
bh_status bh_table_add_note(bh_table *t, const char *note);
/* Header cells (ncol strings); alignment per column. */
bh_status bh_table_set_header(bh_table *t, const char *const *cells);
void bh_table_set_align(bh_table *t, size_t col, bh_align a);
/* Append a row of ncol cells (NULL = empty). */
bh_status bh_table_add_row(bh_table *t, const char *const *cells);
/* Append a horizontal rule before the next row (text/LaTeX/Markdown
 * sections; ignored in CSV). */
bh_status bh_table_add_rule(bh_table *t);

size_t bh_table_nrow(const bh_table *t);

/* Render.  BH_FMT_CSV writes header + rows only (RFC 4180 quoting, no
 * title or notes) so CSV output stays machine-readable.  BH_FMT_JSON is
 * not handled here (BH_EUSAGE). Returns BH_EOUTPUT on a write error. */
bh_status bh_table_render(const bh_table *t, bh_format fmt, FILE *out,
                          bh_error *err);

/* A standalone HTML page around tables (UTF-8, a small stylesheet):
 * begin writes everything up to <body>, end closes it. */
void bh_html_page_begin(FILE *out, const char *title);
void bh_html_page_end(FILE *out);

/* Escaping helpers, exposed for other presentation code and tests.  Each
 * writes `s` escaped for its target to `out`. */
void bh_write_csv_field(FILE *out, const char *s);
void bh_write_latex(FILE *out, const char *s);
void bh_write_html(FILE *out, const char *s);
void bh_write_md(FILE *out, const char *s);

/* A number in full precision for machine-readable output: %.17g, "NA" for
 * NAN, "Inf" / "-Inf" (as R writes them). */
void bh_write_csv_num(FILE *out, double v);

/* Format a number for display with `digits` significant digits (like R's
 * print: 1.234, 0.0001234, 1.2e+10).  NAN prints as "NA". */
char *bh_fmt_num(char *buf, size_t size, double v, int digits);
/* Format with a fixed number of decimals ("0.300", "154.000"); NAN "NA".
 * Values that would print as 0 but are not get scientific notation. */
char *bh_fmt_fixed(char *buf, size_t size, double v, int decimals);
/* Format a p-value the way R does ("< 2e-16", "0.0123"). */
char *bh_fmt_pvalue(char *buf, size_t size, double p);

#endif
