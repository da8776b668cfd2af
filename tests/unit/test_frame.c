/* test_frame.c - the data frame: construction, lookup, suggestions, level
 * order, adoption and CSV output.
 *
 * References: the level order of levels.csv from R 4.2.2
 * (tests/fixtures/csv/levels_expected.csv, made by
 * tests/fixtures/r/csv_levels.R); number spelling from R's write.csv:
 *   LC_ALL=C.UTF-8 Rscript -e 'write.csv(data.frame(x=c(1/3, 1e-20,
 *     100, 0.1+0.2, -2.5, NA)), stdout(), row.names=FALSE)'
 * prints 0.333333333333333, 1e-20, 100, 0.3, -2.5, NA.  (R spells large
 * integers in fixed notation, e.g. 123456789012345680 where %.15g gives
 * 1.23456789012346e+17; the frame writes %.15g, so such values differ.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/csvread.h"
#include "blackhole/frame.h"
#include "testutil.h"

#define assert_has(msg, sub) \
    cr_assert(strstr((msg), (sub)) != NULL, "message \"%s\" lacks \"%s\"", (msg), (sub))

static char *dup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

Test(frame, new_and_free)
{
    bh_frame *f = bh_frame_new("data.csv", 3);
    cr_assert_not_null(f);
    cr_assert_str_eq(f->source, "data.csv");
    cr_assert_eq(f->nrow, 3);
    cr_assert_eq(f->ncol, 0);
    bh_frame_free(f);
    f = bh_frame_new(NULL, 0);
    cr_assert_null(f->source);
    bh_frame_free(f);
    bh_frame_free(NULL);
}

Test(frame, add_numeric_and_lookup)
{
    bh_frame *f = bh_frame_new(NULL, 3);
    bh_error err;
    double x[] = {1.5, NAN, -2};
    cr_assert_eq(bh_frame_add_numeric(f, "x", x, NULL, &err), BH_OK);
    double y[] = {1, 2, 3};
    unsigned char yna[] = {0, 0, 1};
    cr_assert_eq(bh_frame_add_numeric(f, "y", y, yna, &err), BH_OK);
    cr_assert_eq(f->ncol, 2);
    cr_assert_eq(bh_frame_index(f, "y"), 1);
    cr_assert_eq(bh_frame_index(f, "z"), -1);
    cr_assert_null(bh_frame_col(f, "X"), "lookup is case-sensitive");
    const bh_column *c = bh_frame_col(f, "x");
    cr_assert_eq(c->type, BH_COL_NUMERIC);
    cr_assert_eq(c->n, 3);
    cr_assert_eq(c->na[0], 0);
    cr_assert_eq(c->na[1], 1, "NAN marks missing when na is NULL");
    cr_assert_eq(c->num[2], -2.0);
    c = bh_frame_col(f, "y");
    cr_assert_eq(c->na[2], 1);
    cr_assert(isnan(c->num[2]), "a missing value is stored as NAN");
    cr_assert_eq(c->num[1], 2.0);
    cr_assert_null(c->code);
    bh_frame_free(f);
}

Test(frame, duplicate_and_empty_names)
{
    bh_frame *f = bh_frame_new("d.csv", 1);
    bh_error err;
    double v[] = {1};
    const char *s[] = {"a"};
    cr_assert_eq(bh_frame_add_numeric(f, "x", v, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "x", v, NULL, &err), BH_EUSAGE);
    cr_assert_eq(err.status, BH_EUSAGE);
    assert_has(err.msg, "duplicate column name \"x\"");
    assert_has(err.msg, "columns 1 and 2");
    cr_assert_eq(bh_frame_add_categorical(f, "x", s, &err), BH_EUSAGE);
    cr_assert_eq(bh_frame_add_numeric(f, "", v, NULL, &err), BH_EUSAGE);
    assert_has(err.msg, "empty name");
    cr_assert_eq(bh_frame_add_categorical(f, NULL, s, &err), BH_EUSAGE);
    cr_assert_eq(f->ncol, 1);
    /* A NULL error record is allowed. */
    cr_assert_eq(bh_frame_add_numeric(f, "x", v, NULL, NULL), BH_EUSAGE);
    bh_frame_free(f);
}

Test(frame, suggest)
{
    bh_frame *f = bh_frame_new(NULL, 0);
    const char *names[] = {"experience", "performance", "prequal", "y"};
    for (size_t k = 0; k < 4; k++)
        cr_assert_eq(bh_frame_add_numeric(f, names[k], NULL, NULL, NULL), BH_OK);
    cr_assert_str_eq(bh_frame_suggest(f, "experiance"), "experience");
    cr_assert_str_eq(bh_frame_suggest(f, "Performance"), "performance");
    cr_assert_str_eq(bh_frame_suggest(f, "prequl"), "prequal");
    cr_assert_str_eq(bh_frame_suggest(f, "Y"), "y", "distance 1 is always close");
    /* limit = max(1, len/3): "perfrmnce" (9) is 2 edits away: allowed
     * (limit 3); "tracking" is far from everything. */
    cr_assert_str_eq(bh_frame_suggest(f, "perfrmnce"), "performance");
    cr_assert_null(bh_frame_suggest(f, "tracking"));
    cr_assert_null(bh_frame_suggest(f, "ab"), "2 edits from \"y\" exceeds limit 1");
    bh_frame_free(f);
}

Test(frame, level_cmp)
{
    cr_assert_lt(bh_level_cmp("alpha", "Beta"), 0);
    cr_assert_lt(bh_level_cmp("Beta", "beta") * -1, 0);
    cr_assert_lt(bh_level_cmp("beta", "Beta"), 0);
    cr_assert_lt(bh_level_cmp("beta", "gamma"), 0);
    cr_assert_lt(bh_level_cmp("aB", "Ab"), 0, "first case difference decides");
    cr_assert_lt(bh_level_cmp("a", "ab"), 0);
    cr_assert_lt(bh_level_cmp("10", "9"), 0);
    cr_assert_lt(bh_level_cmp("9", "a"), 0);
    cr_assert_eq(bh_level_cmp("same", "same"), 0);
    cr_assert_gt(bh_level_cmp("Beta", "alpha"), 0);
    cr_assert_gt(bh_level_cmp("Ab", "aB"), 0);
}

Test(frame, categorical_levels_match_R)
{
    /* Column g of tests/fixtures/csv/levels.csv, given as strings. */
    const char *g[] = {"beta", "Alpha", "alpha", "gamma", "10", "9",
                       "Beta", "aB", "Ab", "beta", "alpha", NULL};
    bh_frame *f = bh_frame_new(NULL, 12);
    bh_error err;
    cr_assert_eq(bh_frame_add_categorical(f, "g", g, &err), BH_OK, "%s", err.msg);
    const bh_column *c = bh_frame_col(f, "g");
    cr_assert_eq(c->type, BH_COL_CATEGORICAL);
    bht_fixture *fx = bht_fixture_read("tests/fixtures/csv/levels_expected.csv");
    cr_assert_eq(c->nlevels, fx->nrow);
    for (size_t k = 0; k < fx->nrow; k++)
        cr_assert_str_eq(c->levels[k], bht_fixture_str(fx, k, "level"));
    bht_fixture_free(fx);
    for (size_t i = 0; i < 11; i++) {
        cr_assert_eq(c->na[i], 0);
        cr_assert_str_eq(c->levels[c->code[i]], g[i]);
    }
    cr_assert_eq(c->code[11], -1);
    cr_assert_eq(c->na[11], 1);
    cr_assert_null(c->num);
    bh_frame_free(f);
}

Test(frame, adopt)
{
    bh_frame *f = bh_frame_new(NULL, 2);
    bh_error err;
    bh_column c = {0};
    c.name = dup("k");
    c.type = BH_COL_CATEGORICAL;
    c.n = 2;
    c.na = calloc(2, 1);
    c.code = malloc(2 * sizeof *c.code);
    c.code[0] = 1;
    c.code[1] = 0;
    c.levels = malloc(2 * sizeof *c.levels);
    c.levels[0] = dup("a");
    c.levels[1] = dup("b");
    c.nlevels = 2;
    cr_assert_eq(bh_frame_adopt(f, &c, &err), BH_OK, "%s", err.msg);
    const bh_column *k = bh_frame_col(f, "k");
    cr_assert_str_eq(k->levels[k->code[0]], "b");

    /* Wrong length: refused, and the column is released (ASan checks). */
    bh_column bad = {0};
    bad.name = dup("short");
    bad.type = BH_COL_NUMERIC;
    bad.n = 1;
    bad.na = calloc(1, 1);
    bad.num = calloc(1, sizeof *bad.num);
    cr_assert_neq(bh_frame_adopt(f, &bad, &err), BH_OK);
    assert_has(err.msg, "short");
    cr_assert_null(bad.name, "adopt took ownership");

    /* Duplicate name: refused, released. */
    bh_column dupc = {0};
    dupc.name = dup("k");
    dupc.type = BH_COL_NUMERIC;
    dupc.n = 2;
    dupc.na = calloc(2, 1);
    dupc.num = calloc(2, sizeof *dupc.num);
    cr_assert_eq(bh_frame_adopt(f, &dupc, &err), BH_EUSAGE);
    assert_has(err.msg, "\"k\"");
    cr_assert_eq(f->ncol, 1);
    bh_frame_free(f);
}

Test(frame, many_columns_grow)
{
    bh_frame *f = bh_frame_new(NULL, 1);
    char name[16];
    double v = 1;
    for (int j = 0; j < 100; j++) {
        snprintf(name, sizeof name, "v%d", j);
        cr_assert_eq(bh_frame_add_numeric(f, name, &v, NULL, NULL), BH_OK);
    }
    cr_assert_eq(f->ncol, 100);
    cr_assert_eq(bh_frame_index(f, "v73"), 73);
    bh_frame_free(f);
}

static char *write_to_string(const bh_frame *f)
{
    FILE *fp = tmpfile();
    cr_assert_not_null(fp);
    bh_error err;
    cr_assert_eq(bh_frame_write_csv(f, fp, &err), BH_OK, "%s", err.msg);
    long n = ftell(fp);
    rewind(fp);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

Test(frame, write_csv)
{
    bh_frame *f = bh_frame_new(NULL, 6);
    double x[] = {1.0 / 3.0, 1e-20, 100, 0.1 + 0.2, -2.5, NAN};
    const char *s[] = {"a,b", "say \"hi\"", "two\nlines", "NA", NULL, "plain"};
    cr_assert_eq(bh_frame_add_numeric(f, "x", x, NULL, NULL), BH_OK);
    cr_assert_eq(bh_frame_add_categorical(f, "s t", s, NULL), BH_OK);
    char *out = write_to_string(f);
    /* Numbers as R's write.csv spells them (see top); text quoted only
     * where RFC 4180 needs it, plus the text "NA" so it stays text. */
    const char *want =
        "x,s t\n"
        "0.333333333333333,\"a,b\"\n"
        "1e-20,\"say \"\"hi\"\"\"\n"
        "100,\"two\nlines\"\n"
        "0.3,\"NA\"\n"
        "-2.5,NA\n"
        "NA,plain\n";
    cr_assert_str_eq(out, want);
    free(out);
    bh_frame_free(f);
}

Test(frame, write_csv_nonfinite_and_empty)
{
    bh_frame *f = bh_frame_new(NULL, 3);
    double x[] = {INFINITY, -INFINITY, NAN};
    unsigned char na[] = {0, 0, 0};
    cr_assert_eq(bh_frame_add_numeric(f, "x", x, na, NULL), BH_OK);
    char *out = write_to_string(f);
    /* With na given, NAN is a value (R's NaN), not missing. */
    cr_assert(isnan(bh_frame_col(f, "x")->num[2]));
    cr_assert_str_eq(out, "x\nInf\n-Inf\nNaN\n");
    free(out);
    bh_frame_free(f);

    f = bh_frame_new(NULL, 0);
    cr_assert_eq(bh_frame_add_numeric(f, "a", NULL, NULL, NULL), BH_OK);
    out = write_to_string(f);
    cr_assert_str_eq(out, "a\n");
    free(out);
    bh_frame_free(f);
}

Test(frame, write_csv_error)
{
    FILE *fp = fopen("/dev/full", "w");
    if (!fp)
        cr_skip_test("no /dev/full");
    bh_frame *f = bh_frame_new(NULL, 1);
    double v = 1;
    cr_assert_eq(bh_frame_add_numeric(f, "x", &v, NULL, NULL), BH_OK);
    bh_error err;
    cr_assert_eq(bh_frame_write_csv(f, fp, &err), BH_EOUTPUT);
    assert_has(err.msg, "cannot write");
    fclose(fp);
    bh_frame_free(f);
}

Test(frame, write_then_read_round_trip)
{
    /* Properties, not reference values: what the writer emits the reader
     * takes back unchanged (values, levels, missing). */
    bh_frame *f = bh_frame_new(NULL, 4);
    double x[] = {0.125, -3, NAN, 6.02214076e23};
    const char *s[] = {"x,y", "q\"uote", NULL, "line\nbreak"};
    cr_assert_eq(bh_frame_add_numeric(f, "x", x, NULL, NULL), BH_OK);
    cr_assert_eq(bh_frame_add_categorical(f, "s", s, NULL), BH_OK);
    FILE *fp = tmpfile();
    cr_assert_eq(bh_frame_write_csv(f, fp, NULL), BH_OK);
    rewind(fp);
    bh_frame *g = NULL;
    bh_error err;
    cr_assert_eq(bh_csv_read_stream(fp, "tmp", NULL, &g, &err), BH_OK, "%s", err.msg);
    fclose(fp);
    const bh_column *gx = bh_frame_col(g, "x"), *gs = bh_frame_col(g, "s");
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(gx->na[i], f->cols[0].na[i]);
        if (!gx->na[i])
            bht_assert_rel(gx->num[i], x[i], 1e-15);
        cr_assert_eq(gs->na[i], s[i] == NULL);
        if (s[i])
            cr_assert_str_eq(gs->levels[gs->code[i]], s[i]);
    }
    bh_frame_free(f);
    bh_frame_free(g);
}
