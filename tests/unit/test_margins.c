/* test_margins.c - the analytic derivatives margins rely on, checked by
 * finite differences of predict-like evaluation, per observation and for
 * every link; identities (lm interaction effect = product coefficient);
 * the multi-equation extension path.  Reference values against R are in
 * tests/cli/test_cli_margins.c (tests/fixtures/r/margins_reference.R).
 *
 * Finite differences here are central differences with Richardson
 * extrapolation; tolerances are set by their truncation and rounding. */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "blackhole/csvread.h"
#include "blackhole/margins.h"
#include "blackhole/model.h"

static bh_frame *read_data(const char *path)
{
    bh_csv_options o;
    bh_csv_default_options(&o);
    bh_frame *f = NULL;
    bh_error err;
    cr_assert_eq(bh_csv_read_path(path, &o, &f, &err), BH_OK, "%s", err.msg);
    return f;
}

static bh_model *fit(const bh_frame *d, const char *formula, bh_family fam, bh_link link)
{
    bh_model_spec s;
    bh_model_spec_default(&s);
    s.formula = formula;
    s.family = fam;
    s.link = link;
    s.link_set = 1;
    s.tol = 1e-14;
    bh_model *m = NULL;
    bh_error err;
    cr_assert_eq(bh_model_fit(d, &s, &m, &err), BH_OK, "%s", err.msg);
    cr_assert(m->fit->converged);
    return m;
}

/* Richardson-extrapolated central difference of f at x. */
static double rderiv(double (*f)(void *, double), void *ctx, double x, double h)
{
    double d1 = (f(ctx, x + h) - f(ctx, x - h)) / (2 * h);
    double d2 = (f(ctx, x + h / 2) - f(ctx, x - h / 2)) / h;
    return (4 * d2 - d1) / 3;
}

typedef struct {
    bh_link l;
    int order;
} linkctx;

static double link_piece(void *c, double eta)
{
    const linkctx *k = c;
    switch (k->order) {
    case 0: return bh_link_inv(k->l, eta);
    case 1: return bh_link_mu_eta(k->l, eta);
    default: return bh_link_mu_eta2(k->l, eta);
    }
}

Test(margins, link_derivatives_all_links)
{
    const bh_link links[] = {BH_LINK_IDENTITY, BH_LINK_LOGIT, BH_LINK_PROBIT, BH_LINK_CLOGLOG,
                             BH_LINK_LOG};
    /* |eta| moderate: near mu = 1 the differences of mu lose digits */
    const double etas[] = {-3.1, -1, -0.2, 0.3, 1.2, 1.7};
    for (size_t a = 0; a < 5; a++)
        for (size_t e = 0; e < 6; e++) {
            double eta = etas[e];
            linkctx c = {links[a], 0};
            double want[3] = {rderiv(link_piece, &c, eta, 1e-3), 0, 0};
            c.order = 1;
            want[1] = rderiv(link_piece, &c, eta, 1e-3);
            c.order = 2;
            want[2] = rderiv(link_piece, &c, eta, 1e-3);
            double got[3] = {bh_link_mu_eta(links[a], eta), bh_link_mu_eta2(links[a], eta),
                             bh_link_mu_eta3(links[a], eta)};
            for (int k = 0; k < 3; k++) {
                if (fabs(want[k]) < 1e-12)
                    cr_assert_lt(fabs(got[k]), 1e-9, "link %s order %d eta %g",
                                 bh_link_name(links[a]), k + 1, eta);
                else
                    bht_assert_rel(got[k], want[k], 1e-8, "link %s order %d eta %g",
                                   bh_link_name(links[a]), k + 1, eta);
            }
        }
}

/* Design columns of one row with raw variable r overridden to v. */
typedef struct {
    const bh_terms *t;
    const bh_frame *d;
    size_t *map, row, raw, col;
    bh_override *extra;   /* a second override (cross derivatives) or NULL */
} dctx;

static double design_at(void *c, double v)
{
    dctx *k = c;
    double x[64];
    bh_override ov[2] = {{.raw = k->raw, .value = v, .level = NULL}};
    size_t nov = 1;
    if (k->extra)
        ov[nov++] = *k->extra;
    bh_error err;
    cr_assert_eq(bh_terms_eval_rows(k->t, k->d, k->map, &k->row, 1, ov, nov, SIZE_MAX, x, 1, &err),
                 BH_OK, "%s", err.msg);
    return x[k->col];
}

static size_t raw_index(const bh_terms *t, const char *name)
{
    for (size_t r = 0; r < t->nraw; r++)
        if (strcmp(t->rawvars[r], name) == 0)
            return r;
    cr_assert_fail("no raw variable %s", name);
    return 0;
}

Test(margins, design_derivatives_by_finite_differences)
{
    gsl_set_error_handler_off();
    bh_frame *d = read_data("tests/fixtures/margins/gen.csv");
    bh_model *m = fit(d, "y ~ center(x) * log(z) + I(x^2) + exp(x/10):z + sqrt(z)",
                      BH_FAM_GAUSSIAN, BH_LINK_IDENTITY);
    const bh_terms *t = m->design->terms;
    size_t map[16];
    bh_error err;
    cr_assert_eq(bh_terms_map(t, d, map, &err), BH_OK);
    const char *vars[] = {"x", "z"};
    for (size_t v = 0; v < 2; v++) {
        size_t raw = raw_index(t, vars[v]);
        for (size_t row = 0; row < 40; row += 7) {
            double dx[64];
            cr_assert_eq(bh_terms_eval_rows(t, d, map, &row, 1, NULL, 0, raw, dx, 1, &err), BH_OK);
            double x0 = d->cols[map[raw]].num[row];
            for (size_t j = 0; j < t->p; j++) {
                dctx c = {t, d, map, row, raw, j, NULL};
                double want = rderiv(design_at, &c, x0, 1e-3 * fmax(1, fabs(x0)));
                if (fabs(want) < 1e-10)
                    cr_assert_lt(fabs(dx[j]), 1e-8, "%s col %s row %zu", vars[v], t->colnames[j], row);
                else
                    bht_assert_rel(dx[j], want, 1e-8, "d %s / d %s row %zu", t->colnames[j], vars[v], row);
            }
        }
    }
    bh_model_free(m);
    bh_frame_free(d);
}

/* Predict-like evaluation: mu of one row with x and z overridden. */
typedef struct {
    const bh_fit *f;
    const bh_terms *t;
    const bh_frame *d;
    size_t *map, row, rx, rz;
    double xv, zv;
    bh_link link;
    int which;               /* 0: vary x, 1: vary z */
} pctx;

static double mu_row(const pctx *c, double xv, double zv)
{
    double x[64];
    bh_override ov[2] = {{.raw = c->rx, .value = xv}, {.raw = c->rz, .value = zv}};
    bh_error err;
    cr_assert_eq(bh_terms_eval_rows(c->t, c->d, c->map, &c->row, 1, ov, 2, SIZE_MAX, x, 1, &err),
                 BH_OK);
    double eta = 0;
    for (size_t j = 0; j < c->t->p; j++)
        eta += x[j] * c->f->beta[j];
    return bh_link_inv(c->link, eta);
}

static double mu_dx(void *cv, double xv)
{
    pctx *c = cv;
    return mu_row(c, xv, c->zv);
}

/* d mu / dx at z = zv (for the cross partial by differences in z) */
static double dmu_dx_at_z(void *cv, double zv)
{
    pctx *c = cv;
    pctx k = *c;
    k.zv = zv;
    return rderiv(mu_dx, &k, c->xv, 1e-3 * fmax(1, fabs(c->xv)));
}

typedef struct {
    size_t n;
    size_t rows[400];
    double val[400], se[400];
} obsbuf;

static bh_status collect(void *ctx, const bh_margin *stat, size_t row, double value, double se,
                         bh_error *err)
{
    (void)stat;
    (void)err;
    obsbuf *b = ctx;
    if (b->n < 400) {
        b->rows[b->n] = row;
        b->val[b->n] = value;
        b->se[b->n] = se;
        b->n++;
    }
    return BH_OK;
}

/* Per-observation Ai-Norton cross partials and the AME against finite
 * differences of predict-like evaluation, for every link. */
Test(margins, per_observation_effects_all_links)
{
    gsl_set_error_handler_off();
    bh_frame *d = read_data("tests/fixtures/margins/gen.csv");
    struct {
        bh_family fam;
        bh_link link;
        const char *f;
    } cases[] = {
        {BH_FAM_BINOMIAL, BH_LINK_LOGIT, "y ~ center(x) * log(z) + d"},
        {BH_FAM_BINOMIAL, BH_LINK_PROBIT, "y ~ x * z + I(x^2) + d"},
        {BH_FAM_BINOMIAL, BH_LINK_CLOGLOG, "y ~ center(x) * center(z) + d"},
        {BH_FAM_POISSON, BH_LINK_LOG, "count ~ x * sqrt(z) + d"},
        {BH_FAM_GAUSSIAN, BH_LINK_IDENTITY, "y ~ x * log(z) + I(z^2)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bh_model *m = fit(d, cases[k].f, cases[k].fam, cases[k].link);
        bh_margins_model mm;
        bh_error err;
        cr_assert_eq(bh_margins_model_glm(m->fit, d, &mm, &err), BH_OK);
        bh_margins_options o;
        bh_margins_default_options(&o);
        const char *ia[] = {"x:z"}, *dx[] = {"x"};
        o.interaction = ia;
        o.ninteraction = 1;
        o.dydx = dx;
        o.ndydx = 1;
        obsbuf *buf = calloc(1, sizeof *buf);
        o.obs = collect;
        o.obs_ctx = buf;
        bh_margins_result *r = NULL;
        cr_assert_eq(bh_margins_compute(&mm, &o, &r, &err), BH_OK, "%s", err.msg);
        cr_assert_eq(buf->n, m->design->n);
        const bh_terms *t = m->design->terms;
        size_t map[16];
        cr_assert_eq(bh_terms_map(t, d, map, &err), BH_OK);
        pctx c = {.f = m->fit, .t = t, .d = d, .map = map, .rx = raw_index(t, "x"),
                  .rz = raw_index(t, "z"), .link = cases[k].link};
        double ame = 0;
        for (size_t i = 0; i < buf->n; i++) {
            c.row = buf->rows[i];
            c.xv = d->cols[map[c.rx]].num[c.row];
            c.zv = d->cols[map[c.rz]].num[c.row];
            ame += dmu_dx_at_z(&c, c.zv);
            if (i % 37)
                continue;
            double want = rderiv(dmu_dx_at_z, &c, c.zv, 1e-3 * fmax(1, fabs(c.zv)));
            double scale = fmax(fabs(want), 1e-6 * fabs(r->rows[1].std_error));
            cr_assert(fabs(buf->val[i] - want) <= 1e-5 * scale, "%s row %zu: %.10g vs %.10g",
                      cases[k].f, c.row, buf->val[i], want);
        }
        ame /= (double)buf->n;
        cr_assert_eq(r->rows[0].type, BH_MARGIN_AME);
        bht_assert_rel(r->rows[0].estimate, ame, 1e-7, "%s AME", cases[k].f);
        free(buf);
        bh_margins_result_free(r);
        bh_model_free(m);
    }
    bh_frame_free(d);
}

/* Ai & Norton: in a linear model the interaction effect is the product
 * term's coefficient, with its standard error. */
Test(margins, lm_interaction_is_product_coefficient)
{
    gsl_set_error_handler_off();
    bh_frame *d = read_data("tests/fixtures/margins/mtcars.csv");
    bh_model *m = fit(d, "mpg ~ wt * hp", BH_FAM_GAUSSIAN, BH_LINK_IDENTITY);
    bh_margins_model mm;
    bh_error err;
    cr_assert_eq(bh_margins_model_glm(m->fit, d, &mm, &err), BH_OK);
    bh_margins_options o;
    bh_margins_default_options(&o);
    const char *ia[] = {"wt:hp", "hp:wt"};
    o.interaction = ia;
    o.ninteraction = 2;
    bh_margins_result *r = NULL;
    cr_assert_eq(bh_margins_compute(&mm, &o, &r, &err), BH_OK, "%s", err.msg);
    size_t j = 3;
    cr_assert_str_eq(m->fit->term[j], "wt:hp");
    for (size_t k = 0; k < 2; k++) {
        bht_assert_rel(r->rows[k].estimate, m->fit->beta[j], 1e-10);
        bht_assert_rel(r->rows[k].std_error, m->fit->se[j], 1e-8);
        bht_assert_rel(r->rows[k].p_value, m->fit->p_value[j], 1e-6);
    }
    bh_margins_result_free(r);
    bh_model_free(m);
    bh_frame_free(d);
}

/* The extension path: two linear predictors and two mean components
 * (a multinomial logit over three categories, the shape a Dirichlet or
 * multinomial estimator will supply).  The AME and its delta-method SE
 * are checked against finite differences of the averaged share. */
static bh_status mlogit_mean(const void *ctx, const double *eta, int order, double *mu,
                             double *d1, double *d2, double *d3, bh_error *err)
{
    (void)ctx;
    (void)err;
    double m0 = fmax(0, fmax(eta[0], eta[1]));
    double e[2] = {exp(eta[0] - m0), exp(eta[1] - m0)}, den = exp(-m0) + e[0] + e[1];
    double p[2] = {e[0] / den, e[1] / den};
    for (int c = 0; c < 2; c++)
        mu[c] = p[c];
    /* derivatives of softmax: dp_c/deta_k = p_c (delta_ck - p_k) and so on,
     * generated by differentiating that product rule repeatedly */
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 2; k++) {
            double dck = (c == k) - p[k];
            if (order >= 1)
                d1[c * 2 + k] = p[c] * dck;
            for (int l = 0; l < 2 && order >= 2; l++) {
                double dcl = (c == l) - p[l], dkl = p[k] * ((k == l) - p[l]);
                d2[(c * 2 + k) * 2 + l] = p[c] * dcl * dck - p[c] * dkl;
                for (int m = 0; m < 2 && order >= 3; m++) {
                    double dcm = (c == m) - p[m], dkm = p[k] * ((k == m) - p[m]);
                    double dlm = p[l] * ((l == m) - p[m]);
                    double dklm = dkm * ((k == l) - p[l]) - p[k] * dlm;
                    d3[((c * 2 + k) * 2 + l) * 2 + m] =
                        p[c] * dcm * dcl * dck - p[c] * dlm * dck - p[c] * dcl * dkm +
                        -(p[c] * dcm * dkl + p[c] * dklm);
                }
            }
        }
    return BH_OK;
}

typedef struct {
    bh_margins_model *mm;
    double *beta;
    size_t comp, rx, coord;   /* coord: which beta to vary (SIZE_MAX: none) */
    double xshift;
    size_t *map;
} mlctx;

static double ml_avg(mlctx *c)
{
    const bh_margins_model *mm = c->mm;
    const bh_terms *t = mm->eq[0].terms;
    double x[16], s = 0;
    for (size_t i = 0; i < mm->n; i++) {
        size_t row = mm->rows[i];
        double xv = mm->data->cols[c->map[c->rx]].num[row] + c->xshift;
        bh_override ov = {.raw = c->rx, .value = xv};
        bh_error err;
        cr_assert_eq(bh_terms_eval_rows(t, mm->data, c->map, &row, 1, &ov, 1, SIZE_MAX, x, 1, &err),
                     BH_OK);
        double eta[2] = {0, 0}, mu[2];
        for (size_t k = 0; k < 2; k++)
            for (size_t j = 0; j < t->p; j++)
                eta[k] += x[j] * c->beta[mm->eq[k].coef0 + j];
        mlogit_mean(NULL, eta, 0, mu, NULL, NULL, NULL, NULL);
        s += mu[c->comp];
    }
    return s / (double)mm->n;
}

static double ml_shift(void *cv, double h)
{
    mlctx *c = cv;
    c->xshift = h;
    double v = ml_avg(c);
    c->xshift = 0;
    return v;
}

static double ml_ame_beta(void *cv, double b)
{
    mlctx *c = cv;
    double keep = c->beta[c->coord];
    c->beta[c->coord] = b;
    double v = rderiv(ml_shift, c, 0, 1e-3);
    c->beta[c->coord] = keep;
    return v;
}

Test(margins, two_equation_mean_function)
{
    gsl_set_error_handler_off();
    bh_frame *d = read_data("tests/fixtures/margins/gen.csv");
    bh_model *m = fit(d, "y ~ x * z", BH_FAM_GAUSSIAN, BH_LINK_IDENTITY);
    const bh_terms *t = m->design->terms;
    size_t p1 = t->p, p = 2 * p1;
    bh_fit *f = bh_fit_alloc(p, 0, 0, 0);
    const double b[8] = {-0.4, 0.3, 0.05, 0.02, 0.2, -0.1, 0.03, -0.015};
    cr_assert_eq(p, 8);
    for (size_t j = 0; j < p; j++) {
        f->beta[j] = b[j];
        f->aliased[j] = 0;
        for (size_t k = 0; k < p; k++)   /* a valid covariance: 1e-4 (0.5^|j-k|) */
            f->vcov[j * p + k] = 1e-4 * pow(0.5, fabs((double)j - (double)k));
    }
    f->level = 0.95;
    bh_margins_eq eq[2] = {{t, 0}, {t, p1}};
    const char *names[2] = {"share1", "share2"};
    bh_margins_model mm = {.fit = f, .data = d, .rows = m->design->rows, .n = m->design->n,
                           .neq = 2, .eq = eq, .nout = 2, .out_names = names,
                           .mean = mlogit_mean};
    bh_margins_options o;
    bh_margins_default_options(&o);
    const char *dx[] = {"x"}, *ia[] = {"x:z"};
    o.dydx = dx;
    o.ndydx = 1;
    o.interaction = ia;
    o.ninteraction = 1;
    bh_margins_result *r = NULL;
    bh_error err;
    cr_assert_eq(bh_margins_compute(&mm, &o, &r, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(r->nrows, 4);
    size_t map[8];
    cr_assert_eq(bh_terms_map(t, d, map, &err), BH_OK);
    double beta[8];
    memcpy(beta, b, sizeof beta);
    for (size_t comp = 0; comp < 2; comp++) {
        const bh_margin *row = &r->rows[2 * comp];
        cr_assert_str_eq(row->component, names[comp]);
        mlctx c = {.mm = &mm, .beta = beta, .comp = comp, .rx = raw_index(t, "x"), .map = map};
        double ame = rderiv(ml_shift, &c, 0, 1e-3);
        bht_assert_rel(row->estimate, ame, 1e-7, "component %zu AME", comp);
        double J[8], var = 0;
        for (size_t j = 0; j < p; j++) {
            c.coord = j;
            J[j] = rderiv(ml_ame_beta, &c, beta[j], 1e-3);
        }
        for (size_t j = 0; j < p; j++)
            for (size_t k = 0; k < p; k++)
                var += J[j] * f->vcov[j * p + k] * J[k];
        bht_assert_rel(row->std_error, sqrt(var), 1e-5, "component %zu SE", comp);
    }
    bh_margins_result_free(r);
    bh_fit_free(f);
    bh_model_free(m);
    bh_frame_free(d);
}
