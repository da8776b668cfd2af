/* test_csv.c - the CSV reader: every accepted form and every error path.
 *
 * Inputs are the files under tests/fixtures/csv/ (bytes shown in comments
 * where they matter); binary inputs (NUL, bad UTF-8) are written at run
 * time into a temporary directory.  Expected values are read off the
 * fixture text by hand; the level order comes from R (levels_expected.csv,
 * made by tests/fixtures/r/csv_levels.R).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blackhole/csvread.h"
#include "testutil.h"

#define FX "tests/fixtures/csv/"

static bh_frame *read_ok(const char *path, const bh_csv_options *opt)
{
    bh_frame *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status s = bh_csv_read_path(path, opt, &f, &err);
    cr_assert_eq(s, BH_OK, "%s: %s", path, err.msg);
    cr_assert_not_null(f);
    return f;
}

/* Read a file expected to fail; returns the error record. */
static bh_error read_fail(const char *path, const bh_csv_options *opt)
{
    bh_frame *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status s = bh_csv_read_path(path, opt, &f, &err);
    cr_assert_neq(s, BH_OK, "%s unexpectedly read", path);
    cr_assert_eq(s, err.status);
    cr_assert_null(f);
    return err;
}

#define assert_has(msg, sub) \
    cr_assert(strstr((msg), (sub)) != NULL, "message \"%s\" lacks \"%s\"", (msg), (sub))

static const char *level_of(const bh_column *c, size_t i)
{
    cr_assert_eq(c->type, BH_COL_CATEGORICAL, "%s is not categorical", c->name);
    cr_assert_lt(i, c->n);
    if (c->code[i] < 0)
        return NULL;
    cr_assert_lt((size_t)c->code[i], c->nlevels);
    return c->levels[c->code[i]];
}

static const bh_column *col(const bh_frame *f, const char *name)
{
    const bh_column *c = bh_frame_col(f, name);
    cr_assert_not_null(c, "no column \"%s\"", name);
    return c;
}

static void assert_num(const bh_column *c, const double *want, size_t n)
{
    cr_assert_eq(c->type, BH_COL_NUMERIC, "%s is not numeric", c->name);
    cr_assert_eq(c->n, n);
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            cr_assert_eq(c->na[i], 1, "%s[%zu] should be missing", c->name, i);
            cr_assert(isnan(c->num[i]));
        } else {
            cr_assert_eq(c->na[i], 0, "%s[%zu] should not be missing", c->name, i);
            bht_assert_rel(c->num[i], want[i], 1e-15);
        }
    }
}

/* Remove a test's temporary file and directory.  (bht_rmtree's command
 * buffer is too short for two copies of the path, so it is not used.) */
static void remove_tmp(char *dir, char *path)
{
    if (path)
        remove(path);
    rmdir(dir);
    free(path);
    free(dir);
}

/* Write bytes to dir/name; returns the malloc'ed path. */
static char *write_bytes(const char *dir, const char *name, const char *bytes, size_t n)
{
    size_t L = strlen(dir) + strlen(name) + 2;
    char *p = malloc(L);
    snprintf(p, L, "%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(bytes, 1, n, fp), n);
    fclose(fp);
    return p;
}

/* ---- accepted forms ------------------------------------------------- */

Test(csv, quotes_embedded_sep_quote_newline)
{
    bh_frame *f = read_ok(FX "quotes.csv", NULL);
    cr_assert_eq(f->nrow, 4);
    cr_assert_eq(f->ncol, 3);
    cr_assert_str_eq(f->source, FX "quotes.csv");
    const bh_column *t = col(f, "text");
    cr_assert_str_eq(level_of(t, 0), "a,b");
    cr_assert_str_eq(level_of(t, 1), "say \"hi\"");
    cr_assert_str_eq(level_of(t, 2), "two\nlines");
    cr_assert_str_eq(level_of(t, 3), "plain");
    cr_assert_eq(t->file_column, 2);
    double x[] = {1.5, 2.5, 3.5, 4.5}, id[] = {1, 2, 3, 4};
    assert_num(col(f, "x"), x, 4);
    assert_num(col(f, "id"), id, 4);
    bh_frame_free(f);
}

Test(csv, crlf)
{
    bh_frame *f = read_ok(FX "crlf.csv", NULL);
    cr_assert_eq(f->nrow, 2);
    double a[] = {1, 2};
    assert_num(col(f, "a"), a, 2);
    const bh_column *b = col(f, "b");   /* "x\r" would mean CR kept */
    cr_assert_str_eq(level_of(b, 0), "x");
    cr_assert_str_eq(level_of(b, 1), "y");
    bh_frame_free(f);
}

Test(csv, bom_is_skipped)
{
    bh_frame *f = read_ok(FX "bom.csv", NULL);
    cr_assert_not_null(bh_frame_col(f, "a"), "BOM must not stick to the first name");
    double a[] = {1, 3};
    assert_num(col(f, "a"), a, 2);
    bh_frame_free(f);
}

Test(csv, no_trailing_newline)
{
    bh_frame *f = read_ok(FX "no_trailing_newline.csv", NULL);
    double a[] = {1, 3}, b[] = {2, 4};
    assert_num(col(f, "a"), a, 2);
    assert_num(col(f, "b"), b, 2);
    bh_frame_free(f);
}

Test(csv, blank_lines_are_skipped)
{
    bh_frame *f = read_ok(FX "blank_lines.csv", NULL);
    double a[] = {1, 3};
    assert_num(col(f, "a"), a, 2);
    bh_frame_free(f);
}

Test(csv, semicolon_separator)
{
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    cr_assert_eq(opt.sep, ',');
    opt.sep = ';';
    bh_frame *f = read_ok(FX "semicolon.csv", &opt);
    cr_assert_eq(f->ncol, 3);
    /* "1,5" is not a number with '.' decimals: column a is text. */
    const bh_column *a = col(f, "a");
    cr_assert_str_eq(level_of(a, 0), "1,5");
    cr_assert_str_eq(level_of(a, 1), "3");
    double b[] = {2, 4};
    assert_num(col(f, "b"), b, 2);
    bh_frame_free(f);
}

Test(csv, tab_separator)
{
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    opt.sep = '\t';
    bh_frame *f = read_ok(FX "tab.tsv", &opt);
    cr_assert_eq(f->ncol, 3);
    double a[] = {1, 3};
    assert_num(col(f, "a"), a, 2);
    const bh_column *c = col(f, "c");
    cr_assert_str_eq(level_of(c, 0), "x y");
    cr_assert_str_eq(level_of(c, 1), "q\tr");
    bh_frame_free(f);
}

Test(csv, na_default_and_extra)
{
    /* Default: "" and "NA" only; "-" and "missing" are text. */
    bh_frame *f = read_ok(FX "na.csv", NULL);
    const bh_column *x = col(f, "x");
    cr_assert_eq(x->type, BH_COL_CATEGORICAL);
    cr_assert_eq(x->na[1], 1);
    cr_assert_str_eq(level_of(x, 2), "-");
    bh_frame_free(f);

    const char *na[] = {"-", "missing"};
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    opt.na = na;
    opt.n_na = 2;
    f = read_ok(FX "na.csv", &opt);
    double xv[] = {1, NAN, NAN, 4, 5}, yv[] = {NAN, 2, 3, NAN, 6};
    assert_num(col(f, "x"), xv, 5);
    assert_num(col(f, "y"), yv, 5);
    const bh_column *g = col(f, "g");
    cr_assert_eq(g->nlevels, 2);
    cr_assert_str_eq(level_of(g, 0), "a");
    cr_assert_null(level_of(g, 1));
    cr_assert_null(level_of(g, 2));
    cr_assert_null(level_of(g, 3));
    cr_assert_str_eq(level_of(g, 4), "b");
    for (size_t i = 1; i < 4; i++)
        cr_assert_eq(g->na[i], 1);
    bh_frame_free(f);
}

Test(csv, mixed_column_becomes_categorical)
{
    /* x: 10, 20, NA, 2.5, abc (line 6), 7, def.  Numbers seen before
     * "abc" are rendered with %.15g; later ones keep their spelling. */
    bh_frame *f = read_ok(FX "mixed.csv", NULL);
    const bh_column *x = col(f, "x");
    cr_assert_eq(x->type, BH_COL_CATEGORICAL);
    cr_assert_eq(x->numeric_fields, 4);
    cr_assert_str_eq(x->first_text, "abc");
    cr_assert_eq(x->first_text_line, 6);
    cr_assert_eq(x->file_column, 2);
    cr_assert_str_eq(level_of(x, 0), "10");
    cr_assert_str_eq(level_of(x, 1), "20");
    cr_assert_null(level_of(x, 2));
    cr_assert_str_eq(level_of(x, 3), "2.5");
    cr_assert_str_eq(level_of(x, 4), "abc");
    cr_assert_str_eq(level_of(x, 5), "7");
    cr_assert_str_eq(level_of(x, 6), "def");
    /* Byte order among digits: "10" < "2.5" < "20" < "7" < "abc" < "def". */
    const char *want[] = {"10", "2.5", "20", "7", "abc", "def"};
    cr_assert_eq(x->nlevels, 6);
    for (size_t k = 0; k < 6; k++)
        cr_assert_str_eq(x->levels[k], want[k]);
    bh_frame_free(f);
}

Test(csv, header_only_has_zero_rows)
{
    bh_frame *f = read_ok(FX "header_only.csv", NULL);
    cr_assert_eq(f->nrow, 0);
    cr_assert_eq(f->ncol, 3);
    cr_assert_eq(col(f, "c")->type, BH_COL_NUMERIC);
    bh_frame_free(f);
}

Test(csv, level_order_matches_R)
{
    bh_frame *f = read_ok(FX "levels.csv", NULL);
    const bh_column *g = col(f, "g");
    bht_fixture *fx = bht_fixture_read(FX "levels_expected.csv");
    cr_assert_eq(g->nlevels, fx->nrow);
    for (size_t k = 0; k < fx->nrow; k++)
        cr_assert_str_eq(g->levels[k], bht_fixture_str(fx, k, "level"),
                         "level %zu", k + 1);
    bht_fixture_free(fx);
    /* Repeated values share one level. */
    cr_assert_eq(g->code[0], g->code[9]);     /* beta */
    cr_assert_str_eq(level_of(g, 10), "alpha");
    bh_frame_free(f);
}

Test(csv, spaces_trimmed_for_numbers_only)
{
    /* Header " x , y "; rows " 1 ,2", "3\t, 4 ", " 5,six ".  y turns
     * categorical at "six ": earlier numbers are rendered with %.15g. */
    bh_frame *f = read_ok(FX "spaces.csv", NULL);
    cr_assert_null(bh_frame_col(f, "x"), "names keep their spaces");
    double x[] = {1, 3, 5};
    assert_num(col(f, " x "), x, 3);
    const bh_column *y = col(f, " y ");
    cr_assert_str_eq(level_of(y, 0), "2");
    /* " 4 " was read as the number 4 before "six " made y text. */
    cr_assert_str_eq(level_of(y, 1), "4");
    cr_assert_str_eq(level_of(y, 2), "six ");
    cr_assert_eq(y->first_text_line, 4);
    bh_frame_free(f);
}

Test(csv, inf_is_fine_in_a_text_column)
{
    bh_frame *f = read_ok(FX "inf_in_text.csv", NULL);
    const bh_column *b = col(f, "b");
    cr_assert_str_eq(level_of(b, 0), "Inf");
    cr_assert_str_eq(level_of(b, 1), "text");
    cr_assert_str_eq(b->first_text, "text");
    cr_assert_eq(b->first_text_line, 3);
    bh_frame_free(f);
}

Test(csv, stdin_dash)
{
    cr_assert_not_null(freopen(FX "bom.csv", "rb", stdin));
    bh_frame *f = read_ok("-", NULL);
    cr_assert_str_eq(f->source, "<stdin>");
    cr_assert_eq(f->nrow, 2);
    bh_frame_free(f);
}

Test(csv, stdin_word_and_stdin_errors_named)
{
    cr_assert_not_null(freopen(FX "ragged_short.csv", "rb", stdin));
    bh_error e = read_fail("stdin", NULL);
    assert_has(e.msg, "<stdin>:3:");
}

Test(csv, utf8_text_is_accepted)
{
    char *dir = bht_tmpdir();
    /* 2-, 3- and 4-byte sequences at the edges of their ranges. */
    const char data[] = "name\n\xC3\xA9t\xC3\xA9\n\xE2\x82\xAC\n\xF0\x9F\x98\x80\n"
                        "\xED\x9F\xBF\n\xF4\x8F\xBF\xBF\n";
    char *p = write_bytes(dir, "ok.csv", data, sizeof data - 1);
    bh_frame *f = read_ok(p, NULL);
    cr_assert_eq(f->nrow, 5);
    cr_assert_str_eq(level_of(col(f, "name"), 0), "\xC3\xA9t\xC3\xA9");
    bh_frame_free(f);
    remove_tmp(dir, p);
}

Test(csv, large_input_crosses_chunks)
{
    /* 30000 rows (> one 64 KiB chunk) with a quoted multi-line field near
     * the end: values and line numbers must survive chunk boundaries. */
    char *dir = bht_tmpdir();
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    n += (size_t)sprintf(buf + n, "i,v,s\n");
    for (int i = 0; i < 30000; i++)
        n += (size_t)sprintf(buf + n, "%d,%d.25,\"k%d\"\n", i, i, i % 7);
    n += (size_t)sprintf(buf + n, "30000,1,\"a\nb\"\n30001,2,c,extra\n");
    char *p = write_bytes(dir, "big.csv", buf, n);
    bh_error e = read_fail(p, NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    /* header = line 1, rows 0..29999 = lines 2..30001, the quoted row
     * spans 30002-30003, the bad row is line 30004. */
    cr_assert_eq(e.line, 30004, "%s", e.msg);
    assert_has(e.msg, "4 fields, but the header has 3");
    buf[n - strlen("30001,2,c,extra\n")] = '\0';
    remove(p);
    free(p);
    p = write_bytes(dir, "big2.csv", buf, strlen(buf));
    bh_frame *f = read_ok(p, NULL);
    cr_assert_eq(f->nrow, 30001);
    bht_assert_rel(col(f, "v")->num[12345], 12345.25, 1e-15);
    cr_assert_eq(col(f, "s")->nlevels, 8);
    cr_assert_str_eq(level_of(col(f, "s"), 30000), "a\nb");
    bh_frame_free(f);
    free(buf);
    remove_tmp(dir, p);
}

/* ---- errors --------------------------------------------------------- */

Test(csv, ragged_long_row)
{
    bh_error e = read_fail(FX "ragged_long.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 4);
    cr_assert_eq(e.column, 4);
    assert_has(e.msg, FX "ragged_long.csv:4:4:");
    assert_has(e.msg, "4 fields, but the header has 3");
}

Test(csv, ragged_short_row)
{
    bh_error e = read_fail(FX "ragged_short.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 3);
    cr_assert_eq(e.column, 3);
    assert_has(e.msg, "2 fields, but the header has 3");
}

Test(csv, unterminated_quote_names_opening_line)
{
    /* The quote opens on line 3 and swallows lines 4-5. */
    bh_error e = read_fail(FX "unterminated.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 3);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "unterminated");
    assert_has(e.msg, "line 3");
}

Test(csv, malformed_quote)
{
    bh_error e = read_fail(FX "bad_quote.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 2);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "malformed quoting");
    assert_has(e.msg, "'y'");
}

Test(csv, duplicate_names_both_positions)
{
    bh_error e = read_fail(FX "dup_names.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 1);
    cr_assert_eq(e.column, 3);
    assert_has(e.msg, "duplicate column name \"x\"");
    assert_has(e.msg, "columns 1 and 3");
}

Test(csv, line_numbers_count_leading_blank_lines)
{
    char *dir = bht_tmpdir();
    const char d[] = "\n\nx,x\n1,2\n";
    char *p = write_bytes(dir, "blank_header.csv", d, sizeof d - 1);
    bh_error e = read_fail(p, NULL);
    cr_assert_eq(e.line, 3, "%s", e.msg);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "columns 1 and 2");
    remove_tmp(dir, p);
}

Test(csv, empty_name)
{
    bh_error e = read_fail(FX "empty_name.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 1);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "column 2 has an empty name");
}

Test(csv, empty_files)
{
    const char *files[] = {FX "empty.csv", FX "bom_only.csv", FX "blank_only.csv"};
    for (size_t k = 0; k < 3; k++) {
        bh_error e = read_fail(files[k], NULL);
        cr_assert_eq(e.status, BH_EINPUT, "%s", files[k]);
        assert_has(e.msg, files[k]);
        assert_has(e.msg, "empty");
    }
}

Test(csv, inf_in_numeric_column)
{
    bh_error e = read_fail(FX "inf.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 3);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "\"Inf\"");
    assert_has(e.msg, "column \"b\"");
    assert_has(e.msg, "--na");
}

Test(csv, neg_inf_and_nan)
{
    bh_error e = read_fail(FX "neg_inf.csv", NULL);
    cr_assert_eq(e.line, 2);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "\"-inf\"");
    e = read_fail(FX "nan.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 3);
    cr_assert_eq(e.column, 1);
    assert_has(e.msg, "\"NaN\"");
    assert_has(e.msg, "column \"a\"");
}

Test(csv, inf_declared_missing_is_fine)
{
    const char *na[] = {"Inf"};
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    opt.na = na;
    opt.n_na = 1;
    bh_frame *f = read_ok(FX "inf.csv", &opt);
    double b[] = {2, NAN, 5};
    assert_num(col(f, "b"), b, 3);
    bh_frame_free(f);
}

Test(csv, overflow)
{
    bh_error e = read_fail(FX "overflow.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    cr_assert_eq(e.line, 3);
    cr_assert_eq(e.column, 2);
    assert_has(e.msg, "\"1e999\"");
    assert_has(e.msg, "range");
}

Test(csv, missing_file)
{
    bh_error e = read_fail("tests/fixtures/csv/no_such_file.csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    assert_has(e.msg, "no_such_file.csv");
    assert_has(e.msg, "No such file");
}

Test(csv, directory_is_unreadable)
{
    bh_error e = read_fail("tests/fixtures/csv", NULL);
    cr_assert_eq(e.status, BH_EINPUT);
    assert_has(e.msg, "tests/fixtures/csv");
    assert_has(e.msg, "Is a directory");
}

Test(csv, bad_separator_option)
{
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    opt.sep = '"';
    bh_error e = read_fail(FX "crlf.csv", &opt);
    cr_assert_eq(e.status, BH_EUSAGE);
    assert_has(e.msg, "separator");
}

static void expect_bad_bytes(const char *bytes, size_t n, size_t line, size_t column,
                             const char *sub)
{
    char *dir = bht_tmpdir();
    char *p = write_bytes(dir, "bad.csv", bytes, n);
    bh_error e = read_fail(p, NULL);
    cr_assert_eq(e.status, BH_EINPUT, "%s", e.msg);
    cr_assert_eq(e.line, line, "%s", e.msg);
    cr_assert_eq(e.column, column, "%s", e.msg);
    assert_has(e.msg, sub);
    assert_has(e.msg, p);
    remove_tmp(dir, p);
}

Test(csv, nul_byte)
{
    const char d[] = "a,b\n1,x\0y\n";
    expect_bad_bytes(d, sizeof d - 1, 2, 2, "NUL byte");
    expect_bad_bytes(d, sizeof d - 1, 2, 2, "after \"x\"");
}

Test(csv, nul_byte_in_header)
{
    const char d[] = "a,\0b\n1,2\n";
    expect_bad_bytes(d, sizeof d - 1, 1, 2, "NUL byte");
}

Test(csv, invalid_utf8)
{
    const char latin1[] = "name\ncaf\xE9\n";                 /* ISO-8859-1 e-acute */
    expect_bad_bytes(latin1, sizeof latin1 - 1, 2, 1, "0xE9");
    expect_bad_bytes(latin1, sizeof latin1 - 1, 2, 1, "after \"caf\"");
    const char overlong2[] = "a,b\n1,\xC0\xAF\n";            /* overlong '/' */
    expect_bad_bytes(overlong2, sizeof overlong2 - 1, 2, 2, "0xC0");
    const char overlong3[] = "a,b\n1,\xE0\x80\xAF\n";
    expect_bad_bytes(overlong3, sizeof overlong3 - 1, 2, 2, "0xE0");
    const char overlong4[] = "a,b\n1,\xF0\x80\x80\xAF\n";
    expect_bad_bytes(overlong4, sizeof overlong4 - 1, 2, 2, "0xF0");
    const char surrogate[] = "a,b\n1,x\xED\xA0\x80\n";        /* U+D800 */
    expect_bad_bytes(surrogate, sizeof surrogate - 1, 2, 2, "0xED");
    const char too_big[] = "a,b\n1,\xF4\x90\x80\x80\n";       /* U+110000 */
    expect_bad_bytes(too_big, sizeof too_big - 1, 2, 2, "0xF4");
    const char truncated[] = "a,b\n1,\xE2\x82\n";
    expect_bad_bytes(truncated, sizeof truncated - 1, 2, 2, "0xE2");
    const char lone_cont[] = "a,b\n1,\x80\n";
    expect_bad_bytes(lone_cont, sizeof lone_cont - 1, 2, 2, "0x80");
}

Test(csv, invalid_utf8_line_inside_multiline_field)
{
    /* The quoted field starts on line 2; the bad byte is on line 3. */
    const char d[] = "a,b\n1,\"ok\nbad\xFF\"\n";
    expect_bad_bytes(d, sizeof d - 1, 3, 2, "0xFF");
}
