/* test_memory.c - the consuming paths (bh_design_build_consume,
 * bh_model_fit_consume), which free the data frame while the design is
 * built to bound peak memory, give the same design, estimates and error
 * messages as the paths that leave the frame alone.
 *
 * No reference values are needed: the consuming path must reproduce the
 * other path bit for bit (the numbers of that path are tested against R in
 * test_design.c, test_lm.c, test_glm.c and test_vcov.c).  Run under ASan for
 * the "frees everything" half.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/design.h"
#include "blackhole/formula.h"
#include "blackhole/model.h"
#include "testutil.h"

#define NR 18

/* y (0/1, one missing), x (one missing), z > 0, w >= 0, g categorical with
 * a missing value, cl the cluster (one missing), u a column no model reads,
 * s a share in (0, 1) and q a text column that looks numeric. */
static bh_frame *make_frame(void)
{
    static const double y[NR] = {0, 1, 1, 0, 1, NAN, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1};
    static const double x[NR] = {0.3, -1.2, 2.5, 0.7, NAN, 1.1, -0.4, 0.9, 1.8, -2.0,
                                 0.05, 1.4, -0.6, 0.2, 2.2, -1.5, 0.8, 0.0};
    static const double z[NR] = {1.5, 2.0, 0.7, 3.1, 1.2, 0.9, 2.6, 1.1, 0.4, 1.9,
                                 2.3, 0.8, 1.7, 2.8, 1.0, 0.6, 1.3, 2.1};
    static const double w[NR] = {1, 2, 1, 3, 1, 1, 2, 2, 1, 1, 3, 1, 2, 1, 1, 2, 1, 1};
    static const double u[NR] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    static const double sh[NR] = {0.2, 0.5, 0.7, 0.3, 0.6, 0.4, 0.1, 0.8, 0.9, 0.25,
                                  0.35, 0.65, 0.55, 0.15, 0.75, 0.45, 0.5, 0.6};
    static const char *g[NR] = {"a", "b", "c", "a", "b", "c", NULL, "b", "c", "a",
                                "b", "c", "a", "b", "c", "a", "b", "c"};
    static const char *cl[NR] = {"k1", "k1", "k2", "k2", "k3", "k3", "k4", "k4", NULL,
                                 "k5", "k5", "k6", "k6", "k7", "k7", "k8", "k8", "k1"};
    static const char *q[NR] = {"1", "2", "3", "oops", "5", "6", "7", "8", "9",
                                "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    bh_frame *fr = bh_frame_new("mem.csv", NR);
    cr_assert_not_null(fr);
    bh_error err = {0};
    cr_assert_eq(bh_frame_add_numeric(fr, "y", y, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "u", u, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "x", x, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_categorical(fr, "g", g, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "z", z, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "w", w, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_categorical(fr, "cl", cl, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_numeric(fr, "s", sh, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_categorical(fr, "q", q, &err), BH_OK, "%s", err.msg);
    return fr;
}

static void same_doubles(const double *a, const double *b, size_t n, const char *what)
{
    cr_assert_eq(a == NULL, b == NULL, "%s: one is NULL", what);
    if (a)
        cr_assert(memcmp(a, b, n * sizeof *a) == 0, "%s differs", what);
}

static void same_grouping(const bh_grouping *a, const bh_grouping *b, size_t n)
{
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->ngroups, b->ngroups);
    cr_assert(memcmp(a->code, b->code, n * sizeof *a->code) == 0, "group codes differ");
    for (size_t k = 0; k < a->ngroups; k++)
        cr_assert_str_eq(a->labels[k], b->labels[k]);
}

static void same_design(const bh_design *a, const bh_design *b)
{
    cr_assert_eq(a->n, b->n);
    cr_assert_eq(a->p, b->p);
    cr_assert_eq(a->m, b->m);
    cr_assert_eq(a->pz, b->pz);
    cr_assert_eq(a->nre, b->nre);
    cr_assert_eq(a->nrow_data, b->nrow_data);
    cr_assert_eq(a->ndropped, b->ndropped);
    same_doubles(a->x, b->x, a->n * a->p, "X");
    same_doubles(a->y, b->y, a->n * a->m, "y");
    same_doubles(a->w, b->w, a->n, "weights");
    same_doubles(a->offset, b->offset, a->n, "offset");
    same_doubles(a->z, b->z, a->n * a->pz, "Z");
    for (size_t j = 0; j < a->p; j++)
        cr_assert_str_eq(a->terms->colnames[j], b->terms->colnames[j]);
    for (size_t k = 0; k < a->m; k++)
        cr_assert_str_eq(a->ynames[k], b->ynames[k]);
    cr_assert_eq(a->cluster == NULL, b->cluster == NULL);
    if (a->cluster)
        same_grouping(a->cluster, b->cluster, a->n);
    for (size_t k = 0; k < a->nre; k++)
        same_grouping(&a->re[k], &b->re[k], a->n);
    for (size_t i = 0; i < a->n; i++)
        cr_assert_eq(bh_design_data_row(a, i), bh_design_data_row(b, i), "row %zu", i);
}

/* Build both ways; *consumed gets the consuming path's design. */
static void build_both(const char *text, const bh_design_options *opt, bh_design **plain,
                       bh_design **consumed)
{
    bh_formula *f;
    bh_error err = {0};
    cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s", err.msg);
    bh_frame *fr = make_frame();
    cr_assert_eq(bh_design_build(f, fr, opt, plain, &err), BH_OK, "%s", err.msg);
    bh_frame_free(fr);
    fr = make_frame();
    cr_assert_eq(bh_design_build_consume(f, &fr, opt, consumed, &err), BH_OK, "%s", err.msg);
    cr_assert_null(fr, "the frame is handed over");
    bh_formula_free(f);
}

Test(memory, consume_same_design_dropped_rows)
{
    bh_design_options opt;
    bh_design_default_options(&opt);
    opt.cluster = "cl";
    opt.weights = "w";
    bh_design *a, *b;
    build_both("y ~ x * g + log(z) + center(x) + I(x^2):z + offset(log(z))", &opt, &a, &b);
    cr_assert_eq(a->ndropped, 4, "y, x, g and cl each lose a row");
    cr_assert_not_null(b->rows, "rows were dropped: the table stays");
    cr_assert(memcmp(a->rows, b->rows, a->n * sizeof *a->rows) == 0);
    same_design(a, b);
    bh_design_free(a);
    bh_design_free(b);
}

Test(memory, consume_no_dropped_rows_has_no_row_table)
{
    bh_design *a, *b;
    build_both("z ~ w * u + log(z + 1)", NULL, &a, &b);
    cr_assert_eq(a->ndropped, 0);
    cr_assert_null(b->rows);
    same_design(a, b);
    cr_assert_eq(bh_design_data_row(b, 7), 8);
    bh_design_free(a);
    bh_design_free(b);
}

Test(memory, consume_random_effects_and_precision_part)
{
    bh_design *a, *b;
    build_both("y ~ x + z + (1 | cl) + (1 | g)", NULL, &a, &b);
    same_design(a, b);
    bh_design_free(a);
    bh_design_free(b);
    build_both("s ~ x * z + g | z + log(w)", NULL, &a, &b);
    cr_assert_gt(a->pz, 0);
    same_design(a, b);
    bh_design_free(a);
    bh_design_free(b);
}

/* Fit both ways; the coefficient tables must agree bit for bit. */
static void fit_both(bh_model_spec *spec)
{
    bh_error err = {0};
    bh_model *a, *b;
    bh_frame *fr = make_frame();
    cr_assert_eq(bh_model_fit(fr, spec, &a, &err), BH_OK, "%s", err.msg);
    bh_frame_free(fr);
    fr = make_frame();
    cr_assert_eq(bh_model_fit_consume(&fr, spec, &b, &err), BH_OK, "%s", err.msg);
    cr_assert_null(fr);
    same_design(a->design, b->design);
    size_t p = a->fit->p;
    cr_assert_eq(p, b->fit->p);
    same_doubles(a->fit->beta, b->fit->beta, p, "beta");
    same_doubles(a->fit->vcov, b->fit->vcov, p * p, "vcov");
    same_doubles(a->fit->se, b->fit->se, p, "se");
    same_doubles(a->fit->p_value, b->fit->p_value, p, "p values");
    cr_assert_eq(a->fit->iterations, b->fit->iterations);
    bh_model_free(a);
    bh_model_free(b);
}

Test(memory, consume_same_estimates)
{
    bh_model_spec spec;
    bh_model_spec_default(&spec);
    bh_error err = {0};
    spec.formula = "y ~ x * g + log(z)";
    spec.family = BH_FAM_BINOMIAL;
    cr_assert_eq(bh_vcov_parse("cluster:cl", &spec.vcov, &err), BH_OK, "%s", err.msg);
    spec.vcov_set = 1;
    fit_both(&spec);
    spec.formula = "z ~ x * g + w";
    spec.family = BH_FAM_GAUSSIAN;
    spec.weights = "w";
    fit_both(&spec);
}

/* Same status and message both ways, and the consuming path frees the
 * frame (ASan reports a leak otherwise). */
static void same_error(const char *text, const bh_design_options *opt)
{
    bh_formula *f;
    bh_error e1 = {0}, e2 = {0};
    cr_assert_eq(bh_formula_parse(text, &f, &e1), BH_OK, "%s", e1.msg);
    bh_frame *fr = make_frame();
    bh_design *d = NULL;
    bh_status s1 = bh_design_build(f, fr, opt, &d, &e1);
    bh_frame_free(fr);
    cr_assert_neq(s1, BH_OK, "%s should fail", text);
    cr_assert_null(d);
    fr = make_frame();
    bh_status s2 = bh_design_build_consume(f, &fr, opt, &d, &e2);
    cr_assert_null(fr);
    cr_assert_null(d);
    cr_assert_eq(s1, s2, "%s: status", text);
    cr_assert_str_eq(e1.msg, e2.msg, "%s", text);
    bh_formula_free(f);
}

Test(memory, consume_same_errors)
{
    bh_design_options opt;
    bh_design_default_options(&opt);
    same_error("y ~ xx + g", NULL);                      /* unknown variable */
    same_error("y ~ x + I(q * 2)", NULL);               /* text where numbers */
    same_error("y ~ log(x) + g", NULL);                  /* non-finite X */
    same_error("log(x) ~ z", NULL);                      /* non-finite response */
    same_error("log(x) ~ log(x - 1)", NULL);             /* both: X is reported */
    same_error("y ~ z + offset(log(x))", NULL);          /* offset */
    same_error("y ~ log(x - 1) + offset(log(x))", NULL); /* offset and X */
    same_error("s ~ z | log(x)", NULL);                  /* precision design */
    opt.weights = "x";                                   /* negative weights */
    same_error("y ~ z + g", &opt);
    same_error("y ~ log(z - 1) + g", &opt);              /* X before weights */
    opt.weights = "g";
    same_error("y ~ z", &opt);
    opt.weights = NULL;
    opt.cluster = "cll";
    same_error("y ~ z", &opt);
    opt.cluster = NULL;
    same_error("s ~ z + I(w / 3) | log(z - 2)", NULL);   /* phi after X */
    opt.weights = "s";
    opt.weight_kind = BH_WEIGHTS_FREQUENCY;
    same_error("s ~ z | log(z - 2)", &opt);              /* weights before phi */
}

Test(memory, consume_model_errors_free_the_frame)
{
    bh_model_spec spec;
    bh_model_spec_default(&spec);
    spec.formula = "y ~ x";
    spec.firth = 1;                          /* rejected before the design */
    bh_error e1 = {0}, e2 = {0};
    bh_model *m = NULL;
    bh_frame *fr = make_frame();
    bh_status s1 = bh_model_fit(fr, &spec, &m, &e1);
    bh_frame_free(fr);
    fr = make_frame();
    bh_status s2 = bh_model_fit_consume(&fr, &spec, &m, &e2);
    cr_assert_null(fr);
    cr_assert_null(m);
    cr_assert_eq(s1, s2);
    cr_assert_str_eq(e1.msg, e2.msg);
    spec.firth = 0;
    spec.formula = "y ~ x + (1 | g)";        /* rejected after the design */
    fr = make_frame();
    s1 = bh_model_fit(fr, &spec, &m, &e1);
    bh_frame_free(fr);
    fr = make_frame();
    s2 = bh_model_fit_consume(&fr, &spec, &m, &e2);
    cr_assert_null(fr);
    cr_assert_eq(s1, s2);
    cr_assert_str_eq(e1.msg, e2.msg);
}

Test(memory, release_column_keeps_name_and_levels)
{
    bh_frame *fr = make_frame();
    long j = bh_frame_index(fr, "g");
    cr_assert_geq(j, 0);
    bh_frame_release_column(fr, (size_t)j);
    const bh_column *c = bh_frame_col(fr, "g");
    cr_assert_not_null(c);
    cr_assert_null(c->code);
    cr_assert_null(c->na);
    cr_assert_eq(c->nlevels, 3);
    cr_assert_str_eq(c->levels[2], "c");
    bh_frame_release_column(fr, 99);           /* out of range: nothing */
    bh_frame_free(fr);
}
