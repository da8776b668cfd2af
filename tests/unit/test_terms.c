/* test_terms.c - trained terms: per-row evaluation against R's model.matrix
 * (tests/fixtures/design/mm_*.csv, see tests/fixtures/r/design_model_matrix.R),
 * overrides, exact derivatives (hand-derived formulas and central finite
 * differences), levels, and binding errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/design.h"
#include "blackhole/terms.h"
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

static bh_frame *load_data(void)
{
    bht_fixture *fx = bht_fixture_read(FIX "data.csv");
    bh_frame *fr = bh_frame_new("data.csv", fx->nrow);
    bh_error err = {0};
    for (size_t j = 0; j < fx->ncol; j++) {
        const char *name = fx->header[j];
        if (!strcmp(name, "f") || !strcmp(name, "g")) {
            const char **v = calloc(fx->nrow, sizeof *v);
            for (size_t i = 0; i < fx->nrow; i++)
                v[i] = strcmp(fx->cell[i][j], "NA") ? fx->cell[i][j] : NULL;
            cr_assert_eq(bh_frame_add_categorical(fr, name, v, &err), BH_OK, "%s", err.msg);
            free(v);
        } else {
            double *v = malloc(fx->nrow * sizeof *v);
            for (size_t i = 0; i < fx->nrow; i++)
                v[i] = strcmp(fx->cell[i][j], "NA") ? strtod(fx->cell[i][j], NULL) : NAN;
            cr_assert_eq(bh_frame_add_numeric(fr, name, v, NULL, &err), BH_OK, "%s", err.msg);
            free(v);
        }
    }
    bht_fixture_free(fx);
    return fr;
}

/* Terms trained on the complete rows of the formula's variables. */
static bh_terms *train(const bh_frame *fr, const char *text, size_t **rowsp,
                       size_t *np)
{
    bh_formula *f;
    bh_error err = {0};
    cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s", err.msg);
    bh_design *d;
    cr_assert_eq(bh_design_build(f, fr, NULL, &d, &err), BH_OK, "%s", err.msg);
    bh_terms *t;
    cr_assert_eq(bh_terms_train(f, fr, d->rows, d->n, &t, &err), BH_OK, "%s", err.msg);
    if (rowsp) {
        *rowsp = malloc(d->n * sizeof **rowsp);
        memcpy(*rowsp, d->rows, d->n * sizeof **rowsp);
        *np = d->n;
    }
    bh_design_free(d);
    bh_formula_free(f);
    return t;
}

static size_t raw_index(const bh_terms *t, const char *name)
{
    for (size_t k = 0; k < t->nraw; k++)
        if (!strcmp(t->rawvars[k], name))
            return k;
    cr_assert_fail("no raw variable %s", name);
    return SIZE_MAX;
}

Test(terms, row_matches_R_model_matrix)
{
    bh_frame *fr = load_data();
    const char *cases[][2] = {{"y ~ x * f", "2"}, {"y ~ (x + f + g)^2", "8"},
                              {"y ~ x + I(x^2) + a:x + factor(race):f", "14"}};
    for (size_t c = 0; c < 3; c++) {
        bh_terms *t = train(fr, cases[c][0], NULL, NULL);
        char path[128];
        snprintf(path, sizeof path, FIX "mm_%s.csv", cases[c][1]);
        bht_fixture *fx = bht_fixture_read(path);
        size_t *map = malloc(t->nraw * sizeof *map);
        bh_error err = {0};
        cr_assert_eq(bh_terms_map(t, fr, map, &err), BH_OK, "%s", err.msg);
        double *x = malloc(t->p * sizeof *x);
        for (size_t i = 0; i < fx->nrow; i++) {
            size_t row = strtoul(fx->cell[i][0], NULL, 10) - 1;
            cr_assert_eq(bh_terms_row(t, fr, map, row, NULL, 0, x, &err), BH_OK, "%s", err.msg);
            for (size_t j = 0; j < t->p; j++)
                assert_rel_msg(x[j], strtod(fx->cell[i][j + 1], NULL), 1e-12, "(%s row %zu col %zu)", cases[c][0], row, j);
        }
        free(x);
        free(map);
        bht_fixture_free(fx);
        bh_terms_free(t);
    }
    bh_frame_free(fr);
}

Test(terms, factor_levels_and_coding)
{
    bh_frame *fr = load_data();
    bh_terms *t = train(fr, "y ~ factor(race) * x + f", NULL, NULL);
    cr_assert_eq(t->nvars, 3);
    cr_assert_eq(t->vars[0].kind, BH_TV_FACTOR);
    cr_assert_eq(t->vars[0].nlevels, 3);
    cr_assert_str_eq(t->vars[0].levels[2], "3");
    cr_assert_eq(t->vars[0].levnum[1], 2.0);
    cr_assert_eq(t->vars[1].kind, BH_TV_NUMERIC);
    /* f: level d only in a row with x missing: dropped, as lm does */
    cr_assert_eq(t->vars[2].nlevels, 3);
    cr_assert_str_eq(t->vars[2].levels[0], "a");
    cr_assert_null(t->vars[2].levnum);
    cr_assert_eq(t->terms[3].contrast[0], 1);
    cr_assert_str_eq(t->colnames[t->p - 1], "factor(race)3:x");
    cr_assert_eq(t->col_term[0], SIZE_MAX);
    cr_assert_eq(t->col_term[t->p - 1], 3);
    bh_terms_free(t);
    bh_frame_free(fr);
}

Test(terms, overrides)
{
    bh_frame *fr = load_data();
    bh_terms *t = train(fr, "y ~ x * f + factor(race)", NULL, NULL);
    size_t map[8];
    bh_error err = {0};
    cr_assert_eq(bh_terms_map(t, fr, map, &err), BH_OK);
    /* columns: (Intercept) x fb fc factor(race)2 factor(race)3 x:fb x:fc */
    cr_assert_eq(t->p, 8);
    bh_override ov[3] = {{raw_index(t, "x"), 2.0, NULL},
                         {raw_index(t, "f"), 0, "c"},
                         {raw_index(t, "race"), 3.0, NULL}};
    double x[8];
    cr_assert_eq(bh_terms_row(t, fr, map, 0, ov, 3, x, &err), BH_OK, "%s", err.msg);
    double want[8] = {1, 2, 0, 1, 0, 1, 0, 2};
    for (int j = 0; j < 8; j++)
        assert_rel_msg(x[j], want[j], 1e-15, "col %d", j);
    ov[1].level = "d";   /* not in the estimation rows */
    cr_assert_eq(bh_terms_row(t, fr, map, 0, ov, 3, x, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "level 'd' of variable 'f'"), "%s", err.msg);
    ov[1].level = NULL;
    cr_assert_eq(bh_terms_row(t, fr, map, 0, ov, 3, x, &err), BH_EUSAGE);
    ov[1].level = "c";
    ov[2].value = 4;
    cr_assert_eq(bh_terms_row(t, fr, map, 0, ov, 3, x, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "level '4' of variable 'factor(race)'"), "%s", err.msg);
    /* unseen level in the data itself (row 7 has f = d), and a missing x */
    cr_assert_eq(bh_terms_row(t, fr, map, 6, ov, 1, x, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "level 'd' of variable 'f' (data row 7)"), "%s", err.msg);
    cr_assert_eq(bh_terms_row(t, fr, map, 6, NULL, 0, x, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "missing value of 'x' in data row 7"), "%s", err.msg);
    bh_terms_free(t);
    bh_frame_free(fr);
}

#define DFORM "y ~ x + I(x^2) + log(z) + x:z + exp(-x/2) + sqrt(z) + abs(x - 1) + " \
              "center(x) + scale(z) + x:f + I((x + 1)^-2) + I(2^x) + I(x^z) + I(x/z) + factor(race)"

Test(terms, derivatives_hand_derived)
{
    bh_frame *fr = load_data();
    size_t *rows, n;
    bh_terms *t = train(fr, DFORM, &rows, &n);
    /* sd of z over the estimation rows, from R 4.2.2:
     * d <- read.csv("tests/fixtures/design/data.csv", comment.char = "#");
     * sprintf("%.17g", sd(d$z[!is.na(d$x) & !is.na(d$f)])) */
    double sdz = 1.4260761486744604;
    size_t map[16];
    bh_error err = {0};
    cr_assert_eq(bh_terms_map(t, fr, map, &err), BH_OK, "%s", err.msg);
    size_t rx = raw_index(t, "x"), rz = raw_index(t, "z"), rr = raw_index(t, "race");
    double *dx = malloc(t->p * sizeof *dx), *dz = malloc(t->p * sizeof *dz);
    const bh_column *F = bh_frame_col(fr, "f");
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        double x = fr->cols[1].num[r], z = fr->cols[2].num[r];
        const char *f = F->levels[F->code[r]];
        cr_assert_eq(bh_terms_row_deriv(t, fr, map, r, NULL, 0, rx, dx, &err), BH_OK, "%s", err.msg);
        cr_assert_eq(bh_terms_row_deriv(t, fr, map, r, NULL, 0, rz, dz, &err), BH_OK, "%s", err.msg);
        /* (Intercept) x I(x^2) log(z) exp(-x/2) sqrt(z) abs(x - 1) center(x)
         * scale(z) I((x + 1)^-2) I(2^x) I(x^z) I(x/z) factor(race)2
         * factor(race)3 x:z x:fb x:fc */
        double wx[] = {0, 1, 2 * x, 0, -0.5 * exp(-x / 2), 0, x > 1 ? 1 : x < 1 ? -1 : 0, 1, 0,
                       -2 * pow(x + 1, -3), pow(2, x) * log(2), z * pow(x, z - 1),
                       1 / z, 0, 0, z, !strcmp(f, "b"), !strcmp(f, "c")};
        double wz[] = {0, 0, 0, 1 / z, 0, 0.5 / sqrt(z), 0, 0, 1 / sdz, 0, 0,
                       pow(x, z) * log(x), -x / (z * z), 0, 0, x, 0, 0};
        cr_assert_eq(t->p, 18);
        for (size_t j = 0; j < t->p; j++) {
            assert_rel_msg(dx[j], wx[j], 1e-13, "d/dx %s row %zu", t->colnames[j], r);
            assert_rel_msg(dz[j], wz[j], 1e-13, "d/dz %s row %zu", t->colnames[j], r);
        }
        /* factor(race) is a factor: derivative with respect to race is 0 */
        cr_assert_eq(bh_terms_row_deriv(t, fr, map, r, NULL, 0, rr, dx, &err), BH_OK);
        for (size_t j = 0; j < t->p; j++)
            cr_assert_eq(dx[j], 0.0);
    }
    cr_assert_str_eq(t->colnames[8], "scale(z)");
    cr_assert_str_eq(t->colnames[17], "x:fc");
    free(dx);
    free(dz);
    free(rows);
    bh_terms_free(t);
    bh_frame_free(fr);
}

Test(terms, derivatives_match_finite_differences)
{
    bh_frame *fr = load_data();
    size_t *rows, n;
    bh_terms *t = train(fr, DFORM, &rows, &n);
    size_t map[16];
    bh_error err = {0};
    cr_assert_eq(bh_terms_map(t, fr, map, &err), BH_OK, "%s", err.msg);
    const char *vars[] = {"x", "z"};
    double *d = malloc(t->p * sizeof *d), *xp = malloc(t->p * sizeof *xp),
           *xm = malloc(t->p * sizeof *xm);
    for (size_t v = 0; v < 2; v++) {
        size_t raw = raw_index(t, vars[v]);
        long col = bh_frame_index(fr, vars[v]);
        for (size_t i = 0; i < n; i++) {
            size_t r = rows[i];
            double x0 = fr->cols[col].num[r];
            double h = 1e-6 * (fabs(x0) > 1 ? fabs(x0) : 1);
            bh_override ov = {raw, x0 + h, NULL};
            cr_assert_eq(bh_terms_row(t, fr, map, r, &ov, 1, xp, &err), BH_OK);
            ov.value = x0 - h;
            cr_assert_eq(bh_terms_row(t, fr, map, r, &ov, 1, xm, &err), BH_OK);
            ov.value = x0;
            cr_assert_eq(bh_terms_row_deriv(t, fr, map, r, &ov, 1, raw, d, &err), BH_OK);
            for (size_t j = 0; j < t->p; j++) {
                double fd = (xp[j] - xm[j]) / (2 * h);
                double scale = fabs(d[j]) > 1e-3 ? fabs(d[j]) : 1e-3;
                cr_assert(fabs(fd - d[j]) <= 1e-6 * scale,
                          "d/d%s %s row %zu: exact %.17g, central difference %.17g",
                          vars[v], t->colnames[j], r, d[j], fd);
            }
        }
    }
    free(d);
    free(xp);
    free(xm);
    free(rows);
    bh_terms_free(t);
    bh_frame_free(fr);
}

Test(terms, eval_expr_response_and_offset)
{
    bh_frame *fr = load_data();
    bh_terms *t = train(fr, "log(y) ~ x + offset(z * a)", NULL, NULL);
    size_t map[8];
    bh_error err = {0};
    cr_assert_eq(bh_terms_map(t, fr, map, &err), BH_OK);
    double v, dv;
    size_t ry = raw_index(t, "y"), rz = raw_index(t, "z");
    cr_assert_eq(bh_terms_eval_expr(t, t->formula->lhs[0], fr, map, 2, NULL, 0,
                                    ry, &v, &dv, &err), BH_OK);
    bht_assert_rel(v, log(3.1), 1e-15);
    bht_assert_rel(dv, 1 / 3.1, 1e-15);
    cr_assert_eq(bh_terms_eval_expr(t, t->formula->offsets[0], fr, map, 2, NULL,
                                    0, rz, &v, &dv, &err), BH_OK);
    bht_assert_rel(v, 1.25 * 3, 1e-15);
    bht_assert_rel(dv, 3, 1e-15);
    cr_assert_eq(bh_terms_eval_expr(t, t->formula->offsets[0], fr, map, 2, NULL,
                                    0, SIZE_MAX, &v, NULL, &err), BH_OK);
    bh_terms_free(t);
    bh_frame_free(fr);
}

Test(terms, binding_errors)
{
    size_t n = 4;
    bh_frame *fr = bh_frame_new("reps.csv", n);
    bh_error err = {0};
    double v[] = {1, 2, 3, 4};
    const char *firm[] = {"alpha", "beta", "alpha", "beta"};
    bh_frame_add_numeric(fr, "y", v, NULL, &err);
    bh_frame_add_numeric(fr, "experience", v, NULL, &err);
    bh_frame_add_numeric(fr, "x", v, NULL, &err);
    bh_frame_add_categorical(fr, "firm", firm, &err);
    size_t rows[] = {0, 1, 2, 3};
    bh_formula *f;
    bh_terms *t = NULL;

    cr_assert_eq(bh_formula_parse("y ~ x + expereince", &f, &err), BH_OK);
    cr_assert_eq(bh_terms_train(f, fr, rows, n, &t, &err), BH_EFORMULA);
    cr_assert_str_eq(err.msg, "formula:1:9: unknown variable 'expereince' (did you mean 'experience'?)");
    cr_assert_eq(err.column, 9);
    bh_formula_free(f);

    cr_assert_eq(bh_formula_parse("y ~ zzzzzz", &f, &err), BH_OK);
    cr_assert_eq(bh_terms_train(f, fr, rows, n, &t, &err), BH_EFORMULA);
    cr_assert_str_eq(err.msg, "formula:1:5: unknown variable 'zzzzzz' (no such column in reps.csv)");
    bh_formula_free(f);

    cr_assert_eq(bh_formula_parse("y ~ experience + I(firm^2)", &f, &err), BH_OK);
    cr_assert_eq(bh_terms_train(f, fr, rows, n, &t, &err), BH_EDATA);
    cr_assert_str_eq(err.msg, "formula:1:20: variable 'firm' is categorical and cannot be used in arithmetic in 'I(firm^2)'");
    bh_formula_free(f);

    cr_assert_eq(bh_formula_parse("firm ~ experience", &f, &err), BH_OK);
    cr_assert_eq(bh_terms_train(f, fr, rows, n, &t, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "response 'firm' is categorical"), "%s", err.msg);
    bh_formula_free(f);

    cr_assert_eq(bh_formula_parse("y ~ scale(I(experience * 0))", &f, &err), BH_OK);
    cr_assert_eq(bh_terms_train(f, fr, rows, n, &t, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "cannot scale a constant"), "%s", err.msg);
    bh_formula_free(f);

    /* a model trained with categorical firm cannot read a numeric firm */
    cr_assert_eq(bh_formula_parse("y ~ firm", &f, &err), BH_OK);
    cr_assert_eq(bh_terms_train(f, fr, rows, n, &t, &err), BH_OK, "%s", err.msg);
    cr_assert_str_eq(t->colnames[1], "firmbeta");
    bh_frame *other = bh_frame_new("new.csv", n);
    bh_frame_add_numeric(other, "y", v, NULL, &err);
    bh_frame_add_numeric(other, "firm", v, NULL, &err);
    size_t map[2];
    cr_assert_eq(bh_terms_map(t, other, map, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "'firm' was categorical when the model was fitted but is numeric in new.csv"), "%s", err.msg);
    bh_frame_free(other);
    bh_terms_free(t);
    bh_formula_free(f);
    bh_frame_free(fr);
}

Test(terms, rawvars_in_order_of_appearance)
{
    bh_formula *f;
    bh_error err = {0};
    cr_assert_eq(bh_formula_parse("log(y) ~ b:a + offset(w) + (1 | g/h) | z + a", &f, &err), BH_OK);
    const char **names;
    size_t n;
    cr_assert_eq(bh_formula_rawvars(f, &names, &n, &err), BH_OK);
    const char *want[] = {"y", "b", "a", "w", "g", "h", "z"};
    cr_assert_eq(n, 7);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(names[i], want[i]);
    free(names);
    bh_formula_free(f);
}

/* bh_terms_retrain: center()/scale() state and factor levels of the new
 * rows, by hand.  x = 1..8, f = a a b b a b c c.
 *   rows 0-3: x 1,2,3,4: mean 2.5, sd sqrt(5/3); f levels a b
 *   rows 2-5: x 3,4,5,6: mean 4.5, sd sqrt(5/3); f levels a b (kept)
 *   rows 4-7: x 5,6,7,8: mean 6.5;               f levels a b c (new)
 *   rows 6-7: f has the one level c: the error of bh_terms_train */
Test(terms, retrain_by_hand)
{
    bh_error err = {0}, e2 = {0};
    bh_frame *fr = bh_frame_new("hand", 8);
    const double x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {0};
    const char *f[8] = {"a", "a", "b", "b", "a", "b", "c", "c"};
    cr_assert_eq(bh_frame_add_numeric(fr, "x", x, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "y", y, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_categorical(fr, "f", f, &err), BH_OK, "%s", err.msg);
    bh_formula *fo;
    cr_assert_eq(bh_formula_parse("y ~ center(x) + scale(x) + f", &fo, &err), BH_OK);
    const size_t r0[4] = {0, 1, 2, 3}, r1[4] = {2, 3, 4, 5}, r2[4] = {4, 5, 6, 7}, r3[2] = {6, 7};
    bh_terms *t = NULL;
    cr_assert_eq(bh_terms_retrain(fo, fr, r0, 4, &t, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(t->p, 4);
    bht_assert_rel(t->vars[0].expr->state[0], 2.5, 1e-15);
    bht_assert_rel(t->vars[1].expr->state[1], sqrt(5.0 / 3.0), 1e-15);

    const bh_terms *before = t;
    cr_assert_eq(bh_terms_retrain(fo, fr, r1, 4, &t, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(t, before, "same levels: the terms are kept");
    bht_assert_rel(t->vars[0].expr->state[0], 4.5, 1e-15);
    bht_assert_rel(t->vars[1].expr->state[0], 4.5, 1e-15);
    bht_assert_rel(t->vars[1].expr->state[1], sqrt(5.0 / 3.0), 1e-15);
    cr_assert_eq(t->p, 4);
    cr_assert_str_eq(t->colnames[3], "fb");
    size_t map[3];
    double row[4];
    cr_assert_eq(bh_terms_map(t, fr, map, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_terms_row(t, fr, map, 5, NULL, 0, row, &err), BH_OK, "%s", err.msg);
    /* x = 6: center 1.5, scale 1.5 / sqrt(5/3), f = b */
    bht_assert_rel(row[1], 1.5, 1e-15);
    bht_assert_rel(row[2], 1.5 / sqrt(5.0 / 3.0), 1e-15);
    cr_assert_eq(row[3], 1.0);

    cr_assert_eq(bh_terms_retrain(fo, fr, r2, 4, &t, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(t->p, 5);
    cr_assert_str_eq(t->colnames[4], "fc");
    bht_assert_rel(t->vars[0].expr->state[0], 6.5, 1e-15);

    bh_terms *fresh = NULL;
    bh_status want = bh_terms_train(fo, fr, r3, 2, &fresh, &e2);
    cr_assert_eq(want, BH_EDATA);
    cr_assert_null(fresh);
    cr_assert_eq(bh_terms_retrain(fo, fr, r3, 2, &t, &err), want);
    cr_assert_null(t);
    cr_assert_str_eq(err.msg, e2.msg);

    /* another formula text: trained anew, not kept */
    bh_formula *fo2;
    cr_assert_eq(bh_formula_parse("y ~ center(x) + f", &fo2, &err), BH_OK);
    cr_assert_eq(bh_terms_retrain(fo, fr, r0, 4, &t, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_terms_retrain(fo2, fr, r1, 4, &t, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(t->p, 3);
    cr_assert_str_eq(t->formula->text, "y ~ center(x) + f");
    bht_assert_rel(t->vars[0].expr->state[0], 4.5, 1e-15);
    bh_terms_free(t);
    bh_formula_free(fo2);
    bh_formula_free(fo);
    bh_frame_free(fr);
}
