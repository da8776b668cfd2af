/* test_table.c - table renderers and escaping for every target format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/table.h"
#include "testutil.h"

static char *render(const bh_table *t, bh_format f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    cr_assert(fp);
    bh_error err;
    cr_assert_eq(bh_table_render(t, f, fp, &err), BH_OK);
    fclose(fp);
    return buf;
}

static bh_table *hostile_table(void)
{
    bh_table *t = bh_table_new(2);
    const char *hdr[2] = {"te|rm", "val_ue"};
    cr_assert_eq(bh_table_set_header(t, hdr), BH_OK);
    const char *r1[2] = {"a,\"b\"", "1.5"};
    const char *r2[2] = {"<script>&'x'", "50%$#_{}~^\\"};
    cr_assert_eq(bh_table_add_row(t, r1), BH_OK);
    cr_assert_eq(bh_table_add_rule(t), BH_OK);
    cr_assert_eq(bh_table_add_row(t, r2), BH_OK);
    cr_assert_eq(bh_table_set_title(t, "T & <t>"), BH_OK);
    cr_assert_eq(bh_table_add_note(t, "note | 100%"), BH_OK);
    return t;
}

Test(table, csv_quotes_fields)
{
    bh_table *t = hostile_table();
    char *s = render(t, BH_FMT_CSV);
    cr_assert_str_eq(s, "te|rm,val_ue\n\"a,\"\"b\"\"\",1.5\n<script>&'x',50%$#_{}~^\\\n");
    free(s);
    bh_table_free(t);
}

Test(table, html_escapes_entities)
{
    bh_table *t = hostile_table();
    char *s = render(t, BH_FMT_HTML);
    cr_assert(strstr(s, "&lt;script&gt;&amp;&#39;x&#39;"));
    cr_assert(!strstr(s, "<script>"));
    cr_assert(strstr(s, "<caption>T &amp; &lt;t&gt;</caption>"));
    /* balanced tags */
    const char *tags[] = {"table", "thead", "tbody", "tr", "td", "th", "caption", "tfoot"};
    for (size_t k = 0; k < sizeof tags / sizeof tags[0]; k++) {
        char open[32], close[32];
        snprintf(open, sizeof open, "<%s", tags[k]);
        snprintf(close, sizeof close, "</%s>", tags[k]);
        size_t no = 0, nc = 0;
        for (const char *p = s; (p = strstr(p, open)); p++)
            if (p[strlen(open)] == '>' || p[strlen(open)] == ' ')
                no++;
        for (const char *p = s; (p = strstr(p, close)); p++)
            nc++;
        cr_assert_eq(no, nc, "tag %s: %zu open, %zu close", tags[k], no, nc);
    }
    free(s);
    bh_table_free(t);
}

Test(table, latex_escapes_specials_and_balances)
{
    bh_table *t = hostile_table();
    char *s = render(t, BH_FMT_LATEX);
    cr_assert(strstr(s, "50\\%\\$\\#\\_\\{\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}"), "%s", s);
    cr_assert(strstr(s, "te\\textbar{}rm & val\\_ue"));
    cr_assert(strstr(s, "\\begin{tabular}") && strstr(s, "\\end{tabular}"));
    cr_assert(strstr(s, "\\toprule") && strstr(s, "\\bottomrule"));
    /* braces balance once escaped braces are discounted */
    long depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && (p[1] == '{' || p[1] == '}')) {
            p++;
            continue;
        }
        depth += (*p == '{') - (*p == '}');
        cr_assert(depth >= 0);
    }
    cr_assert_eq(depth, 0);
    free(s);
    bh_table_free(t);
}

Test(table, markdown_escapes_pipes)
{
    bh_table *t = hostile_table();
    char *s = render(t, BH_FMT_MD);
    cr_assert(strstr(s, "| te\\|rm | val\\_ue |"), "%s", s);
    /* every table line has the same number of unescaped pipes */
    int expect = -1;
    char *copy = strdup(s), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] != '|')
            continue;
        int n = 0;
        for (char *p = l; *p; p++) {
            if (*p == '\\') { p++; continue; }
            n += *p == '|';
        }
        if (expect < 0)
            expect = n;
        cr_assert_eq(n, expect, "line: %s", l);
    }
    free(copy);
    free(s);
    bh_table_free(t);
}

Test(table, text_aligns_columns)
{
    bh_table *t = bh_table_new(2);
    const char *hdr[2] = {"term", "estimate"};
    bh_table_set_header(t, hdr);
    bh_table_set_align(t, 1, BH_ALIGN_RIGHT);
    const char *r1[2] = {"x", "1.5"};
    const char *r2[2] = {"longer", "-12.25"};
    bh_table_add_row(t, r1);
    bh_table_add_row(t, r2);
    char *s = render(t, BH_FMT_TEXT);
    cr_assert(strstr(s, "x            1.5\n"), "%s", s);
    cr_assert(strstr(s, "longer    -12.25\n"), "%s", s);
    free(s);
    bh_table_free(t);
}

Test(table, format_parse)
{
    bh_format f;
    bh_error err;
    cr_assert_eq(bh_format_parse("LaTeX", &f, &err), BH_OK);
    cr_assert_eq(f, BH_FMT_LATEX);
    cr_assert_eq(bh_format_parse("xml", &f, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "xml"));
}

Test(table, number_formatting)
{
    char b[64];
    cr_assert_str_eq(bh_fmt_num(b, sizeof b, 1.23456789, 4), "1.235");
    cr_assert_str_eq(bh_fmt_num(b, sizeof b, 0.000123456, 3), "0.000123");
    cr_assert_str_eq(bh_fmt_num(b, sizeof b, 1.5e-7, 3), "1.50e-07");
    cr_assert_str_eq(bh_fmt_num(b, sizeof b, NAN, 3), "NA");
    cr_assert_str_eq(bh_fmt_pvalue(b, sizeof b, 1e-20), "<2e-16");
    cr_assert_str_eq(bh_fmt_pvalue(b, sizeof b, 0.01234), "0.0123");
}
