/* test_design.c - design matrices against R's model.matrix, listwise
 * deletion, weights, offsets, groupings, precision design, errors.
 *
 * References: tests/fixtures/design/mm_*.csv, written by
 * tests/fixtures/r/design_model_matrix.R (R 4.2.2, model.matrix on the
 * model frame lm() would build).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blackhole/design.h"
#include "blackhole/formula.h"
#include "testutil.h"

#define FIX "tests/fixtures/design/"

/* Like bht_assert_rel, with a formatted message (bht_assert_rel passes its
 * own arguments after the caller's, so it only takes a plain string). */
#define assert_rel_msg(got, want, rtol, fmt, ...)                              \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        double s_ = fabs(w_) > 0 ? fabs(w_) : 1.0;                             \
        cr_assert(fabs(g_ - w_) <= (rtol) * s_,                                \
                  "got %.17g want %.17g: " fmt, g_, w_, __VA_ARGS__);          \
    } while (0)

/* The fixture data as a frame (its first `limit` rows): y x z a race
 * numeric, f g categorical. */
static bh_frame *load_data_rows(size_t limit)
{
    bht_fixture *fx = bht_fixture_read(FIX "data.csv");
    size_t nrow = fx->nrow < limit ? fx->nrow : limit;
    bh_frame *fr = bh_frame_new("data.csv", nrow);
    cr_assert_not_null(fr);
    bh_error err = {0};
    for (size_t j = 0; j < fx->ncol; j++) {
        const char *name = fx->header[j];
        if (!strcmp(name, "f") || !strcmp(name, "g")) {
            const char **v = calloc(nrow, sizeof *v);
            for (size_t i = 0; i < nrow; i++)
                v[i] = strcmp(fx->cell[i][j], "NA") ? fx->cell[i][j] : NULL;
            cr_assert_eq(bh_frame_add_categorical(fr, name, v, &err), BH_OK, "%s", err.msg);
            free(v);
        } else {
            double *v = malloc(nrow * sizeof *v);
            for (size_t i = 0; i < nrow; i++)
                v[i] = strcmp(fx->cell[i][j], "NA") ? strtod(fx->cell[i][j], NULL) : NAN;
            cr_assert_eq(bh_frame_add_numeric(fr, name, v, NULL, &err), BH_OK, "%s", err.msg);
            free(v);
        }
    }
    bht_fixture_free(fx);
    return fr;
}

static bh_frame *load_data(void)
{
    return load_data_rows(SIZE_MAX);
}

static bh_design *build(const bh_frame *fr, const char *text,
                        const bh_design_options *opt)
{
    bh_formula *f;
    bh_error err = {0};
    cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s: %s", text, err.msg);
    bh_design *d = NULL;
    bh_status st = bh_design_build(f, fr, opt, &d, &err);
    cr_assert_eq(st, BH_OK, "%s: %s", text, err.msg);
    bh_formula_free(f);
    return d;
}

static bh_status build_err(const bh_frame *fr, const char *text,
                           const bh_design_options *opt, bh_error *err)
{
    bh_formula *f;
    cr_assert_eq(bh_formula_parse(text, &f, err), BH_OK, "%s: %s", text, err->msg);
    bh_design *d = NULL;
    bh_status st = bh_design_build(f, fr, opt, &d, err);
    cr_assert_null(d);
    bh_formula_free(f);
    return st;
}

static void compare_design(const bh_design *d, const bh_frame *fr, const char *text,
                           const char *path)
{
    bht_fixture *fx = bht_fixture_read(path);
    cr_assert_eq(d->p, fx->ncol - 1, "%s: p = %zu, R has %zu", text, d->p,
                 fx->ncol - 1);
    for (size_t j = 0; j < d->p; j++)
        cr_assert_str_eq(d->terms->colnames[j], fx->header[j + 1],
                         "%s: column %zu", text, j);
    cr_assert_eq(d->n, fx->nrow, "%s: n", text);
    cr_assert_eq(d->ndropped, d->nrow_data - d->n);
    for (size_t i = 0; i < d->n; i++) {
        cr_assert_eq(d->rows[i] + 1, strtoul(fx->cell[i][0], NULL, 10),
                     "%s: row %zu", text, i);
        for (size_t j = 0; j < d->p; j++)
            assert_rel_msg(d->x[j * d->n + i], strtod(fx->cell[i][j + 1], NULL),
                           1e-12, "(%s, row %zu, column %s)", text, i,
                           fx->header[j + 1]);
        /* y ~ ...: the response is column y of the data */
        bht_assert_rel(d->y[i], fr->cols[0].num[d->rows[i]], 1e-15);
    }
    cr_assert_eq(d->m, 1);
    cr_assert_str_eq(d->ynames[0], "y");
    bht_fixture_free(fx);
}

static void compare_fixture(const bh_frame *fr, const char *text,
                            const char *path)
{
    bh_design *d = build(fr, text, NULL);
    compare_design(d, fr, text, path);
    bh_design_free(d);
}

Test(design, model_matrix_matches_R)
{
    bh_frame *fr = load_data();
    bht_fixture *fl = bht_fixture_read(FIX "formulas.csv");
    cr_assert_geq(fl->nrow, 15);
    for (size_t k = 0; k < fl->nrow; k++) {
        char path[256];
        snprintf(path, sizeof path, FIX "mm_%s.csv", fl->cell[k][0]);
        compare_fixture(fr, fl->cell[k][1], path);
    }
    bht_fixture_free(fl);
    bh_frame_free(fr);
}

/* bh_design_rebuild keeps the trained terms when the new data have the
 * same factor levels (only center()/scale() are trained again) and trains
 * anew otherwise: either way the design must be R's.  The first build is
 * on the first rows only (fewer levels of f, g and race, other means), the
 * rebuilds on all rows (new levels), then again on all rows (same levels:
 * the terms are kept). */
Test(design, rebuild_matches_R)
{
    bh_frame *all = load_data();
    bh_frame *few = load_data_rows(5);
    bht_fixture *fl = bht_fixture_read(FIX "formulas.csv");
    bh_error err = {0};
    for (size_t k = 0; k <= fl->nrow; k++) {
        char path[256];
        const char *text = k < fl->nrow ? fl->cell[k][1] : "y ~ center(x) + scale(z) + center(x):g";
        if (k < fl->nrow)
            snprintf(path, sizeof path, FIX "mm_%s.csv", fl->cell[k][0]);
        else
            snprintf(path, sizeof path, FIX "mm_center.csv");
        bh_formula *f;
        cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s", err.msg);
        bh_design *d = NULL;
        /* five rows may not support the formula (one level only): then the
         * first design comes from all rows */
        if (bh_design_build(f, few, NULL, &d, &err) != BH_OK)
            cr_assert_eq(bh_design_build(f, all, NULL, &d, &err), BH_OK, "%s", err.msg);
        for (int rep = 0; rep < 2; rep++) {
            const bh_terms *before = d->terms;
            cr_assert_eq(bh_design_rebuild(f, all, NULL, d, &err), BH_OK, "%s: %s", text,
                         err.msg);
            if (rep == 1)
                cr_assert_eq(d->terms, before, "%s: the terms were not kept", text);
            compare_design(d, all, text, path);
        }
        bh_design_free(d);
        bh_formula_free(f);
    }
    bht_fixture_free(fl);
    bh_frame_free(few);
    bh_frame_free(all);
}

/* A rebuild whose data fail gives the errors of a fresh build, and the
 * design can be rebuilt afterwards. */
Test(design, rebuild_errors_then_recovers)
{
    bh_frame *all = load_data();
    bh_frame *one = load_data_rows(1);   /* f has one level: an error */
    bh_formula *f;
    bh_error err = {0}, e2 = {0};
    cr_assert_eq(bh_formula_parse("y ~ x * f", &f, &err), BH_OK);
    bh_design *d = NULL;
    cr_assert_eq(bh_design_build(f, all, NULL, &d, &err), BH_OK, "%s", err.msg);
    bh_design *fresh = NULL;
    bh_status want = bh_design_build(f, one, NULL, &fresh, &e2);
    cr_assert_neq(want, BH_OK);
    cr_assert_eq(bh_design_rebuild(f, one, NULL, d, &err), want);
    cr_assert_str_eq(err.msg, e2.msg);
    cr_assert_eq(d->n, 0);
    cr_assert_null(d->terms);
    cr_assert_eq(bh_design_rebuild(f, all, NULL, d, &err), BH_OK, "%s", err.msg);
    compare_design(d, all, "y ~ x * f", FIX "mm_2.csv");
    bh_design_free(d);
    bh_formula_free(f);
    bh_frame_free(one);
    bh_frame_free(all);
}

Test(design, center_scale_trained_on_estimation_rows)
{
    bh_frame *fr = load_data();
    compare_fixture(fr, "y ~ center(x) + scale(z) + center(x):g",
                    FIX "mm_center.csv");
    bh_frame_free(fr);
}

Test(design, listwise_deletion_counts)
{
    bh_frame *fr = load_data();
    /* x is missing in row 7, f in row 13 (data.csv) */
    bh_design *d = build(fr, "y ~ x + f", NULL);
    cr_assert_eq(d->nrow_data, 14);
    cr_assert_eq(d->n, 12);
    cr_assert_eq(d->ndropped, 2);
    for (size_t i = 0; i < d->n; i++)
        cr_assert(d->rows[i] != 6 && d->rows[i] != 12);
    bh_design_free(d);
    /* a variable removed with '-' still takes part in listwise deletion,
     * as in R's model.frame */
    d = build(fr, "y ~ z + x - x", NULL);
    cr_assert_eq(d->n, 13);
    cr_assert_eq(d->p, 2);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(design, multi_response_phi_offsets)
{
    bh_frame *fr = load_data();
    bh_design *d = build(fr, "y + z + log(a) ~ x + offset(a) + offset(log(z)) | g", NULL);
    cr_assert_eq(d->m, 3);
    cr_assert_str_eq(d->ynames[0], "y");
    cr_assert_str_eq(d->ynames[1], "z");
    cr_assert_str_eq(d->ynames[2], "log(a)");
    cr_assert_eq(d->p, 2);
    cr_assert_eq(d->pz, 2);
    cr_assert_str_eq(d->terms->phi->colnames[1], "gy");
    for (size_t i = 0; i < d->n; i++) {
        size_t r = d->rows[i];
        bht_assert_rel(d->y[1 * d->n + i], fr->cols[2].num[r], 1e-15);
        bht_assert_rel(d->y[2 * d->n + i], log(fr->cols[3].num[r]), 1e-15);
        bht_assert_rel(d->offset[i], fr->cols[3].num[r] + log(fr->cols[2].num[r]), 1e-15);
        cr_assert_eq(d->z[i], 1.0);
        const bh_column *g = bh_frame_col(fr, "g");
        cr_assert_eq(d->z[d->n + i], !strcmp(g->levels[g->code[r]], "y") ? 1.0 : 0.0);
    }
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(design, weights_cluster_and_random_effects)
{
    bh_frame *fr = load_data();
    bh_design_options opt;
    bh_design_default_options(&opt);
    opt.weights = "a";
    opt.cluster = "g";
    bh_design *d = build(fr, "y ~ x + (1 | g/f)", &opt);
    cr_assert_eq(d->n, 12);
    cr_assert_not_null(d->w);
    cr_assert_str_eq(d->weights_name, "a");
    for (size_t i = 0; i < d->n; i++)
        cr_assert_eq(d->w[i], fr->cols[3].num[d->rows[i]]);
    cr_assert_str_eq(d->cluster->name, "g");
    cr_assert_eq(d->cluster->ngroups, 2);
    cr_assert_str_eq(d->cluster->labels[0], "x");
    cr_assert_str_eq(d->cluster->labels[1], "y");
    cr_assert_eq(d->nre, 2);
    cr_assert_str_eq(d->re[0].name, "g");
    cr_assert_str_eq(d->re[1].name, "g:f");
    /* complete rows: g:f combinations present (x: a b c; y: a b c) */
    cr_assert_eq(d->re[1].ngroups, 6);
    cr_assert_str_eq(d->re[1].labels[0], "x:a");
    cr_assert_str_eq(d->re[1].labels[5], "y:c");
    const bh_column *g = bh_frame_col(fr, "g"), *f = bh_frame_col(fr, "f");
    for (size_t i = 0; i < d->n; i++) {
        size_t r = d->rows[i];
        char want[16];
        snprintf(want, sizeof want, "%s:%s", g->levels[g->code[r]], f->levels[f->code[r]]);
        cr_assert_str_eq(d->re[1].labels[d->re[1].code[i]], want);
        cr_assert_str_eq(d->cluster->labels[d->cluster->code[i]], g->levels[g->code[r]]);
    }
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(design, grouping_numeric_column)
{
    bh_frame *fr = load_data();
    size_t rows[] = {0, 1, 2, 3, 4, 5};
    const char *cols[] = {"race"};
    bh_grouping *g;
    bh_error err = {0};
    cr_assert_eq(bh_grouping_build(fr, cols, 1, rows, 6, &g, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(g->ngroups, 3);
    cr_assert_str_eq(g->labels[0], "1");
    cr_assert_str_eq(g->labels[2], "3");
    size_t want[] = {0, 1, 2, 0, 1, 2};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(g->code[i], want[i]);
    bh_grouping_free(g);
    const char *bad[] = {"rase"};
    cr_assert_eq(bh_grouping_build(fr, bad, 1, rows, 6, &g, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "did you mean 'race'"), "%s", err.msg);
    bh_frame_free(fr);
}

Test(design, errors)
{
    bh_frame *fr = load_data();
    bh_error err = {0};
    cr_assert_eq(build_err(fr, "y ~ x + zz", NULL, &err), BH_EFORMULA);
    cr_assert_eq(err.column, 9);
    cr_assert(strstr(err.msg, "formula:1:9: unknown variable 'zz' (did you mean 'z'?)"), "%s", err.msg);

    cr_assert_eq(build_err(fr, "f ~ x", NULL, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "response 'f' is categorical"), "%s", err.msg);

    cr_assert_eq(build_err(fr, "y ~ log(f)", NULL, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "'f' is categorical and cannot be used in arithmetic in 'log(f)'"), "%s", err.msg);

    bh_design_options opt;
    bh_design_default_options(&opt);
    opt.weights = "w8";
    cr_assert_eq(build_err(fr, "y ~ x", &opt, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "weights column 'w8' not found"), "%s", err.msg);
    opt.weights = "f";
    cr_assert_eq(build_err(fr, "y ~ x", &opt, &err), BH_EDATA);

    /* negative and non-finite weights name the data row */
    double w[14];
    for (int i = 0; i < 14; i++)
        w[i] = 1;
    w[4] = -2;
    cr_assert_eq(bh_frame_add_numeric(fr, "w", w, NULL, &err), BH_OK);
    opt.weights = "w";
    cr_assert_eq(build_err(fr, "y ~ x", &opt, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "weight 'w' is -2 in data row 5"), "%s", err.msg);
    w[4] = 0;
    w[5] = INFINITY;
    cr_assert_eq(bh_frame_add_numeric(fr, "w2", w, NULL, &err), BH_OK);
    opt.weights = "w2";
    cr_assert_eq(build_err(fr, "y ~ x", &opt, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "data row 6"), "%s", err.msg);
    /* zero weights are kept */
    w[5] = 1;
    cr_assert_eq(bh_frame_add_numeric(fr, "w3", w, NULL, &err), BH_OK);
    opt.weights = "w3";
    bh_design *d = build(fr, "y ~ z", &opt);
    cr_assert_eq(d->n, 14);
    cr_assert_eq(d->w[4], 0.0);
    bh_design_free(d);

    /* domain errors: log(x - 1) at x = 0.5 is NaN */
    cr_assert_eq(build_err(fr, "y ~ log(x - 1)", NULL, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "design column 'log(x - 1)'"), "%s", err.msg);
    cr_assert(strstr(err.msg, "data row 1"), "%s", err.msg);

    /* no complete rows */
    double na[14];
    for (int i = 0; i < 14; i++)
        na[i] = NAN;
    cr_assert_eq(bh_frame_add_numeric(fr, "empty", na, NULL, &err), BH_OK);
    cr_assert_eq(build_err(fr, "y ~ x + empty", NULL, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "no complete rows: listwise deletion removed all 14 rows"), "%s", err.msg);
    cr_assert(strstr(err.msg, "empty 14"), "%s", err.msg);

    /* a factor with one level in the estimation rows */
    const char *one[14];
    for (int i = 0; i < 14; i++)
        one[i] = "only";
    cr_assert_eq(bh_frame_add_categorical(fr, "one", one, &err), BH_OK);
    cr_assert_eq(build_err(fr, "y ~ one", NULL, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "factor 'one' has only one level ('only')"), "%s", err.msg);
    bh_frame_free(fr);
}

Test(design, mostly_numeric_column)
{
    bh_frame *fr = load_data();
    bh_error err = {0};
    const char *v[14];
    char buf[14][16];
    for (int i = 0; i < 14; i++) {
        snprintf(buf[i], sizeof buf[i], "%d", i);
        v[i] = buf[i];
    }
    v[3] = "abc";
    cr_assert_eq(bh_frame_add_categorical(fr, "score", v, &err), BH_OK);
    bh_column *c = &fr->cols[fr->ncol - 1];
    c->numeric_fields = 13;
    c->first_text = strdup("abc");
    c->first_text_line = 5;
    c->file_column = 8;
    cr_assert_eq(build_err(fr, "y ~ x + score", NULL, &err), BH_EDATA);
    cr_assert_str_eq(err.msg, "variable 'score' is numeric except for 'abc' at "
                              "data.csv:line 5; use --na abc or factor(score)");
    cr_assert_eq(err.line, 5);
    cr_assert_eq(build_err(fr, "y ~ I(score^2)", NULL, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "numeric except for 'abc'"), "%s", err.msg);
    /* explicitly a factor: fine */
    bh_design *d = build(fr, "y ~ factor(score)", NULL);
    cr_assert_eq(d->p, 14);
    bh_design_free(d);
    bh_frame_free(fr);
}

Test(design, one_million_rows_fast)
{
    size_t n = 1000000;
    bh_frame *fr = bh_frame_new("big", n);
    bh_error err = {0};
    double *v = malloc(n * sizeof *v);
    const char *lev[] = {"a", "b", "c", "d"};
    const char **s = malloc(n * sizeof *s);
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < n; i++)
            v[i] = (double)((i * (k + 3)) % 1000) / 100.0 + 1.0;
        char name[16];
        snprintf(name, sizeof name, "x%d", k);
        cr_assert_eq(bh_frame_add_numeric(fr, name, v, NULL, &err), BH_OK);
    }
    for (size_t i = 0; i < n; i++)
        s[i] = lev[i % 4];
    cr_assert_eq(bh_frame_add_categorical(fr, "g", s, &err), BH_OK);
    bh_formula *f;
    cr_assert_eq(bh_formula_parse("x0 ~ x1 + x2 + x3 + log(x1) + I(x2^2) + x1:x3 + g",
                                  &f, &err), BH_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bh_design *d;
    cr_assert_eq(bh_design_build(f, fr, NULL, &d, &err), BH_OK, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_assert_eq(d->p, 10);
    cr_assert_eq(d->n, n);
    size_t i = 777777;
    bht_assert_rel(d->x[4 * n + i], log(fr->cols[1].num[i]), 1e-15);
    cr_assert_str_eq(d->terms->colnames[8], "gd");
    cr_assert_str_eq(d->terms->colnames[9], "x1:x3");
    bht_assert_rel(d->x[8 * n + i], (i % 4) == 3 ? 1.0 : 0.0, 1e-15);
    bht_assert_rel(d->x[9 * n + i], fr->cols[1].num[i] * fr->cols[3].num[i], 1e-15);
    /* generous bound: sanitizer builds are several times slower */
    cr_assert_lt(sec, 5.0, "design build took %.2f s", sec);
    cr_log_info("1e6 x 10 design built in %.3f s", sec);
    bh_design_free(d);
    bh_formula_free(f);
    free(v);
    free(s);
    bh_frame_free(fr);
}

static void assert_same_grouping(const bh_grouping *a, const bh_grouping *b, size_t n,
                                 const char *what)
{
    cr_assert_str_eq(a->name, b->name, "%s", what);
    cr_assert_eq(a->ngroups, b->ngroups, "%s", what);
    for (size_t k = 0; k < a->ngroups; k++)
        cr_assert_str_eq(a->labels[k], b->labels[k], "%s", what);
    cr_assert(n == 0 || !memcmp(a->code, b->code, n * sizeof *a->code), "%s: codes", what);
}

/* A rebuilt design refills its cluster and random-effect groupings in
 * place, over data of different rows and groups (fewer, more, other):
 * they equal those of a fresh build, and their memory is kept. */
Test(design, rebuild_refills_groupings)
{
    bh_frame *all = load_data(), *few = load_data_rows(5), *mid = load_data_rows(9);
    bh_design_options opt;
    bh_design_default_options(&opt);
    opt.cluster = "g";
    const char *text = "y ~ x + (1 | g/f)";
    bh_formula *f;
    bh_error err = {0};
    cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s", err.msg);
    bh_design *d = build(all, text, &opt);
    const bh_frame *seq[] = {few, all, mid, all, few, mid, all};
    const char *const *lab = NULL;
    const size_t *code = NULL;
    for (size_t k = 0; k < sizeof seq / sizeof *seq; k++) {
        cr_assert_eq(bh_design_rebuild(f, seq[k], &opt, d, &err), BH_OK, "%s", err.msg);
        bh_design *fresh = build(seq[k], text, &opt);
        char what[32];
        snprintf(what, sizeof what, "data set %zu", k);
        cr_assert_eq(d->n, fresh->n, "%s", what);
        assert_same_grouping(d->cluster, fresh->cluster, d->n, what);
        cr_assert_eq(d->nre, fresh->nre);
        for (size_t r = 0; r < d->nre; r++)
            assert_same_grouping(&d->re[r], &fresh->re[r], d->n, what);
        if (k == 1) {
            lab = (const char *const *)d->re[1].labels;
            code = d->re[1].code;
        } else if (k > 1) {
            /* the largest data set came first: nothing grows after it */
            cr_assert_eq((const char *const *)d->re[1].labels, lab, "%s: labels kept", what);
            cr_assert_eq(d->re[1].code, code, "%s: codes kept", what);
        }
        bh_design_free(fresh);
    }
    bh_design_free(d);
    bh_formula_free(f);
    bh_frame_free(all);
    bh_frame_free(few);
    bh_frame_free(mid);
}
