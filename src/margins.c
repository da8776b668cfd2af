/* margins.c - marginal effects, simple slopes, predictions, Johnson-Neyman
 * and Ai-Norton interaction effects with delta-method standard errors
 * (see margins.h).
 *
 * Every statistic is a weighted average over the sample of a per-row
 * quantity built from "operators" applied to the mean function: none (a
 * prediction), one (an effect) or two (an interaction effect); each
 * operator is a derivative with respect to a raw variable or a difference
 * between two settings of it.  Differences become signed "corners" (rows
 * re-evaluated with the variable overridden); derivatives are carried by
 * the exact derivative columns of the design (bh_terms_eval_rows with
 * draw) through the chain rule.  The Jacobian with respect to beta is
 * accumulated row block by row block, so memory is O(block * p). */
#include "blackhole/margins.h"
#include "blackhole/dirichlet.h"
#include "blackhole/glmm.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "blackhole/strutil.h"

#define BLK 128                 /* rows evaluated at once                 */
#define NONE SIZE_MAX
#define EQ(mm, k) ((mm)->eq ? &(mm)->eq[k] : &(mm)->single)
#define FD_REL 1e-4             /* relative step of the cross derivative  */
#define AFFINE_TOL 1e-9         /* closed-form JN: design affine in m     */
#define JN_SEARCH 400           /* grid intervals of the numeric JN search */

/* ------------------------------------------------------------ basics */

const char *bh_margin_type_name(bh_margin_type t)
{
    switch (t) {
    case BH_MARGIN_AME: return "ame";
    case BH_MARGIN_MEM: return "mem";
    case BH_MARGIN_SLOPE: return "slope";
    case BH_MARGIN_PREDICTION: return "prediction";
    case BH_MARGIN_INTERACTION: return "interaction";
    case BH_MARGIN_JN: return "jn";
    }
    return "?";
}

void bh_margins_default_options(bh_margins_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->jn_points = 101;
    opt->jn_extend = 1.0;
}

static bh_status nomem(bh_error *err)
{
    return bh_error_set(err, BH_ENOMEM, "out of memory");
}

/* Constant table so the GLM mean function's context needs no storage. */
static const bh_link glm_links[] = {BH_LINK_IDENTITY, BH_LINK_LOGIT, BH_LINK_PROBIT,
                                    BH_LINK_CLOGLOG, BH_LINK_LOG};

bh_status bh_margins_glm_mean(const void *ctx, const double *eta, int order, double *mu,
                              double *d1, double *d2, double *d3, bh_error *err)
{
    (void)err;
    bh_link l = *(const bh_link *)ctx;
    mu[0] = bh_link_inv(l, eta[0]);
    if (order >= 1)
        d1[0] = bh_link_mu_eta(l, eta[0]);
    if (order >= 2)
        d2[0] = bh_link_mu_eta2(l, eta[0]);
    if (order >= 3)
        d3[0] = bh_link_mu_eta3(l, eta[0]);
    return BH_OK;
}

bh_status bh_margins_model_glm(const bh_fit *fit, const bh_frame *data, bh_margins_model *mm,
                               bh_error *err)
{
    memset(mm, 0, sizeof *mm);
    const bh_design *d = fit->design;
    if (!d || !d->terms)
        return bh_error_set(err, BH_EUSAGE, "margins need a model estimated from a formula");
    /* A mixed model's coefficients are its fixed effects followed by the
     * random-effect SDs (terms "sd__..."): the fixed part is a GLM
     * conditional on a zero random effect. */
    int extra_ok = fit->p > d->terms->p;
    for (size_t j = d->terms->p; extra_ok && j < fit->p; j++)
        extra_ok = fit->term[j] && strncmp(fit->term[j], "sd__", 4) == 0;
    if (fit->p != d->terms->p && !extra_ok)
        return bh_error_set(err, BH_EUSAGE,
                            "margins of multi-equation models need their own mean function");
    bh_link link = BH_LINK_IDENTITY;
    if (fit->link && bh_link_parse(fit->link, &link, err) != BH_OK)
        return err ? err->status : BH_EINTERNAL;
    static const size_t nl = sizeof glm_links / sizeof glm_links[0];
    size_t li = 0;
    while (li < nl && glm_links[li] != link)
        li++;
    if (li == nl)
        return bh_error_set(err, BH_EINTERNAL, "link %d has no mean function", (int)link);
    mm->fit = fit;
    mm->data = data;
    mm->rows = d->rows;
    mm->n = d->n;
    mm->freq = d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY ? d->w : NULL;
    mm->neq = 1;
    mm->single.terms = d->terms;
    mm->single.coef0 = 0;
    mm->nout = 1;
    mm->mean = bh_margins_glm_mean;
    mm->mean_ctx = &glm_links[li];
    mm->identity = link == BH_LINK_IDENTITY;
    return BH_OK;
}

/* ---- softmax mean (Dirichlet expected shares) ------------------------------ */

/* mu_c = exp(eta_c) / (1 + sum_k exp(eta_k)) with the base component's
 * eta fixed at 0 (alternative parametrisation), or / sum_k exp(eta_k) over
 * all components (common).  With f_ck = [c == comp(k)] - mu_comp(k):
 *   d1 = mu_c f_ck
 *   d2 = mu_c (f_cl f_ck - mu_k f_kl)
 *   d3 = mu_c (f_cm f_cl f_ck - mu_l f_lm f_ck - mu_k f_km f_cl
 *              - mu_k f_cm f_kl - mu_k f_km f_kl + mu_k mu_l f_lm)
 * where mu_k means mu of predictor k's component. */
static bh_status softmax_mean(const void *ctx, const double *eta, int order, double *mu,
                              double *d1, double *d2, double *d3, bh_error *err)
{
    const bh_margins_softmax *sm = ctx;
    size_t C = sm->C, K = sm->K;
    double mx = sm->has_base ? 0 : -INFINITY;
    for (size_t k = 0; k < K; k++)
        mx = fmax(mx, eta[k]);
    double e[BH_DIRICHLET_MAX_K], S = sm->has_base ? exp(-mx) : 0;
    for (size_t c = 0; c < C; c++)
        e[c] = 0;
    for (size_t k = 0; k < K; k++) {
        e[sm->comp[k]] = exp(eta[k] - mx);
        S += e[sm->comp[k]];
    }
    if (sm->has_base)
        e[sm->base] = exp(-mx);
    for (size_t c = 0; c < C; c++)
        mu[c] = e[c] / S;
    if (!(S > 0) || !isfinite(S))
        return bh_error_set(err, BH_ENUMERIC, "margins: shares not finite");
    if (order < 1)
        return BH_OK;
#define F(c, k) (((c) == sm->comp[k] ? 1.0 : 0.0) - mu[sm->comp[k]])
#define MK(k) (mu[sm->comp[k]])
    for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < K; k++)
            d1[c * K + k] = mu[c] * F(c, k);
    if (order < 2)
        return BH_OK;
    for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < K; k++)
            for (size_t l = 0; l < K; l++) {
                double fkl = (k == l ? 1.0 : 0.0) - MK(l);
                d2[(c * K + k) * K + l] = mu[c] * (F(c, l) * F(c, k) - MK(k) * fkl);
            }
    if (order < 3)
        return BH_OK;
    for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < K; k++)
            for (size_t l = 0; l < K; l++)
                for (size_t m = 0; m < K; m++) {
                    double fkl = (k == l ? 1.0 : 0.0) - MK(l);
                    double fkm = (k == m ? 1.0 : 0.0) - MK(m);
                    double flm = (l == m ? 1.0 : 0.0) - MK(m);
                    d3[((c * K + k) * K + l) * K + m] =
                        mu[c] * (F(c, m) * F(c, l) * F(c, k) - MK(l) * flm * F(c, k) -
                                 MK(k) * fkm * F(c, l) - MK(k) * F(c, m) * fkl -
                                 MK(k) * fkm * fkl + MK(k) * MK(l) * flm);
                }
#undef F
#undef MK
    return BH_OK;
}

bh_status bh_margins_model_dirichlet(const bh_fit *fit, const bh_frame *data,
                                     bh_margins_softmax *store, bh_margins_model *mm,
                                     bh_error *err)
{
    memset(mm, 0, sizeof *mm);
    memset(store, 0, sizeof *store);
    const bh_design *d = fit->design;
    if (!d || !d->terms)
        return bh_error_set(err, BH_EUSAGE, "margins need a model estimated from a formula");
    bh_dirichlet_layout L;
    bh_status s = bh_dirichlet_layout_of(fit, &L, err);
    if (s != BH_OK)
        return s;
    if (L.K > BH_DIRICHLET_MAX_K || L.p != d->terms->p)
        return bh_error_set(err, BH_EUSAGE, "margins: unexpected Dirichlet layout");
    store->C = L.K;
    store->has_base = L.param == BH_DIRICHLET_ALTERNATIVE;
    store->base = L.base;
    size_t k = 0;
    for (size_t c = 0; c < L.K; c++) {
        store->names[c] = d->ynames[c];
        if (store->has_base && c == L.base)
            continue;
        store->comp[k] = c;
        store->eq[k].terms = d->terms;
        store->eq[k].coef0 = k * L.p;   /* mean blocks come first, in order */
        k++;
    }
    store->K = k;
    mm->fit = fit;
    mm->data = data;
    mm->rows = d->rows;
    mm->n = d->n;
    mm->freq = d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY ? d->w : NULL;
    mm->neq = store->K;
    mm->eq = store->eq;
    mm->nout = store->C;
    mm->out_names = store->names;
    mm->mean = softmax_mean;
    mm->mean_ctx = store;
    return BH_OK;
}

/* Population-averaged mean of a random-intercept model:
 * mu(eta) = E_u[h(eta + sigma u)], u ~ N(0, 1), by Gauss-Hermite
 * quadrature; its eta-derivatives are the averages of the first three
 * derivatives of h. */
static bh_status ravg_mean(const void *ctx, const double *eta, int order, double *mu,
                           double *d1, double *d2, double *d3, bh_error *err)
{
    (void)err;
    const bh_margins_ravg *ra = ctx;
    double m = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t q = 0; q < ra->nq; q++) {
        double e = eta[0] + ra->node[q];
        double w = ra->weight[q];
        m += w * bh_link_inv(ra->link, e);
        if (order >= 1)
            a1 += w * bh_link_mu_eta(ra->link, e);
        if (order >= 2)
            a2 += w * bh_link_mu_eta2(ra->link, e);
        if (order >= 3)
            a3 += w * bh_link_mu_eta3(ra->link, e);
    }
    mu[0] = m;
    if (order >= 1)
        d1[0] = a1;
    if (order >= 2)
        d2[0] = a2;
    if (order >= 3)
        d3[0] = a3;
    return BH_OK;
}

bh_status bh_margins_model_ravg(const bh_fit *fit, const bh_frame *data,
                                bh_margins_ravg *store, bh_margins_model *mm, bh_error *err)
{
    bh_status s = bh_margins_model_glm(fit, data, mm, err);
    if (s != BH_OK)
        return s;
    const bh_design *d = fit->design;
    /* total random-intercept variance: the SDs of every grouping (nested
     * intercepts add on the linear-predictor scale) */
    double var = 0;
    size_t nsd = 0;
    for (size_t j = d->terms->p; j < fit->p; j++)
        if (strncmp(fit->term[j], "sd__", 4) == 0) {
            var += fit->beta[j] * fit->beta[j];
            nsd++;
        }
    if (!nsd)
        return bh_error_set(err, BH_EUSAGE,
                            "averaging over the random effect needs a mixed model ((1 | g))");
    bh_link link = BH_LINK_LOGIT;
    if (fit->link && bh_link_parse(fit->link, &link, err) != BH_OK)
        return err ? err->status : BH_EINTERNAL;
    double x[BH_MARGINS_RAVG_NODES], w[BH_MARGINS_RAVG_NODES];
    if ((s = bh_glmm_gauss_hermite(BH_MARGINS_RAVG_NODES, x, w, err)) != BH_OK)
        return s;
    /* E[f(sigma u)], u ~ N(0,1): nodes sqrt(2) sigma x_q, weights w_q / sqrt(pi) */
    double sigma = sqrt(var);
    store->link = link;
    store->sigma = sigma;
    store->nq = BH_MARGINS_RAVG_NODES;
    for (size_t q = 0; q < store->nq; q++) {
        store->node[q] = 1.4142135623730951 * sigma * x[q];
        store->weight[q] = w[q] / 1.7724538509055159;
    }
    mm->mean = ravg_mean;
    mm->mean_ctx = store;
    mm->identity = 0;
    return BH_OK;
}

bh_status bh_margins_model_for(const bh_fit *fit, const bh_frame *data,
                               bh_margins_softmax *store, bh_margins_model *mm, bh_error *err)
{
    if (fit->family && strcmp(fit->family, "dirichlet") == 0)
        return bh_margins_model_dirichlet(fit, data, store, mm, err);
    return bh_margins_model_glm(fit, data, mm, err);
}

/* ------------------------------------------------------------ variables */

/* A right-hand-side raw variable, shared by all equations. */
typedef struct {
    const char *name;
    int factor;
    char **levels;            /* factor: training levels (borrowed)   */
    size_t nlevels;
    double *levnum;           /* factor(numeric): level values        */
    int is01;                 /* numeric with values in {0, 1}        */
    double mean, sd, min, max;
    double *sorted;           /* numeric: sample values, sorted       */
    size_t nsorted;
    long col;                 /* frame column                         */
} gvar;

/* A setting of one variable for every row. */
typedef struct {
    size_t g;
    double value;
    const char *level;
} gset;

typedef struct {
    size_t g;
    int deriv;                /* 1 derivative, 0 difference v1 - v0   */
    gset v0, v1;
} mop;

typedef struct {
    bh_margin_type type;
    char *term, *at;
    size_t comp;
    gset *base;               /* grid settings (+ means with atmeans)  */
    size_t nbase;
    mop op[2];
    size_t nop;
    int atmeans;
    bh_margin *out;           /* for the per-row callback             */
} mstat;

typedef struct {
    double sign;
    gset set[2];              /* the difference settings of this corner */
    size_t nset;
} corner;

typedef struct {
    const bh_margins_model *mm;
    const bh_margins_options *opt;
    bh_error *err;
    size_t p, K, C;
    double *beta;             /* p, aliased -> 0 */
    size_t **map;             /* per equation: raw -> frame column */
    size_t **eqraw;           /* per equation: gvar -> raw index or NONE */
    gvar *gv;
    size_t ngv;
    double sumw;
    /* block buffers per equation: [0] x, [1] x_a, [2] x_b, [3] x_ab,
     * each BLK * p_k column-major with ld BLK; offsets alike */
    double **X[4], **OFF[4];
    double **T, *toff, *tval, *tder;
    double *q, *Jr;           /* BLK, BLK * p */
    double *eta, *ea, *eb, *eab, *mu, *d1, *d2, *d3;
    bh_override **ov;         /* per equation, scratch */
    size_t *nov;
    size_t ovcap;
    /* shifted copies of the frame for the cross derivative */
    bh_frame shift[4];
    double *shiftnum[4];
    double *hrow;             /* per frame row step */
    size_t shift_g;           /* gvar the shifted frames move, or NONE */
    /* atmeans accumulators: [corner][part] per equation */
    double *psum;
    size_t psum_len;
} ws_t;

static size_t eq_p(const ws_t *w, size_t k)
{
    return EQ(w->mm, k)->terms->p;
}

static void mark_raw(const bh_expr *e, size_t nraw, unsigned char *flags, unsigned char v)
{
    for (; e; e = e->arg[1]) {
        if (e->kind == BH_EX_VAR && e->raw < nraw)
            flags[e->raw] |= v;
        mark_raw(e->arg[0], nraw, flags, v);
    }
}

static long find_gvar(const ws_t *w, const char *name)
{
    for (size_t g = 0; g < w->ngv; g++)
        if (strcmp(w->gv[g].name, name) == 0)
            return (long)g;
    return -1;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sample statistics of numeric variables (weighted by frequency weights;
 * quantiles unweighted, R's type 7). */
static bh_status var_stats(ws_t *w, gvar *v)
{
    const bh_margins_model *mm = w->mm;
    const bh_column *c = &mm->data->cols[v->col];
    v->sorted = malloc((mm->n ? mm->n : 1) * sizeof *v->sorted);
    if (!v->sorted)
        return nomem(w->err);
    double sw = 0, s = 0;
    v->is01 = 1;
    for (size_t i = 0; i < mm->n; i++) {
        double x = c->num[mm->rows[i]], wi = mm->freq ? mm->freq[i] : 1.0;
        v->sorted[i] = x;
        sw += wi;
        s += wi * x;
        if (x != 0 && x != 1)
            v->is01 = 0;
    }
    v->nsorted = mm->n;
    v->mean = s / sw;
    double ss = 0;
    for (size_t i = 0; i < mm->n; i++) {
        double d = v->sorted[i] - v->mean;
        ss += (mm->freq ? mm->freq[i] : 1.0) * d * d;
    }
    v->sd = sw > 1 ? sqrt(ss / (sw - 1)) : NAN;
    qsort(v->sorted, mm->n, sizeof *v->sorted, cmp_dbl);
    v->min = mm->n ? v->sorted[0] : NAN;
    v->max = mm->n ? v->sorted[mm->n - 1] : NAN;
    return BH_OK;
}

static double quantile7(const gvar *v, double prob)
{
    if (v->nsorted == 0)
        return NAN;
    double h = (double)(v->nsorted - 1) * prob;
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < v->nsorted ? lo + 1 : lo;
    return v->sorted[lo] + (h - (double)lo) * (v->sorted[hi] - v->sorted[lo]);
}

/* The right-hand-side variables of every equation, with their kind. */
static bh_status collect_vars(ws_t *w)
{
    const bh_margins_model *mm = w->mm;
    for (size_t k = 0; k < w->K; k++) {
        const bh_terms *t = EQ(mm, k)->terms;
        unsigned char *use = calloc(t->nraw ? t->nraw : 1, 1);
        if (!use)
            return nomem(w->err);
        for (size_t v = 0; v < t->nvars; v++)
            mark_raw(t->vars[v].expr, t->nraw, use, t->vars[v].kind == BH_TV_FACTOR ? 2 : 1);
        for (size_t o = 0; o < t->formula->noffsets; o++)
            mark_raw(t->formula->offsets[o], t->nraw, use, 1);
        for (size_t r = 0; r < t->nraw; r++) {
            if (!use[r] || find_gvar(w, t->rawvars[r]) >= 0)
                continue;
            gvar *nv = realloc(w->gv, (w->ngv + 1) * sizeof *nv);
            if (!nv) {
                free(use);
                return nomem(w->err);
            }
            w->gv = nv;
            gvar *g = &w->gv[w->ngv++];
            memset(g, 0, sizeof *g);
            g->name = t->rawvars[r];
            g->col = bh_frame_index(mm->data, g->name);
            if (g->col < 0) {
                free(use);
                return bh_error_set(w->err, BH_EINTERNAL, "variable '%s' vanished from the data",
                                    g->name);
            }
            const bh_column *c = &mm->data->cols[g->col];
            g->factor = c->type == BH_COL_CATEGORICAL || use[r] == 2;
            if (g->factor) {
                for (size_t v = 0; v < t->nvars; v++) {
                    const bh_tvar *tv = &t->vars[v];
                    if (tv->kind != BH_TV_FACTOR)
                        continue;
                    const bh_expr *e = tv->expr;
                    if (e->kind == BH_EX_CALL && e->arg[0] && e->arg[0]->kind == BH_EX_VAR)
                        e = e->arg[0];
                    if (e->kind == BH_EX_VAR && e->raw == r) {
                        g->levels = tv->levels;
                        g->nlevels = tv->nlevels;
                        g->levnum = tv->levnum;
                        break;
                    }
                }
            } else {
                bh_status s = var_stats(w, g);
                if (s != BH_OK) {
                    free(use);
                    return s;
                }
            }
        }
        free(use);
    }
    for (size_t k = 0; k < w->K; k++) {
        const bh_terms *t = EQ(mm, k)->terms;
        w->eqraw[k] = malloc((w->ngv ? w->ngv : 1) * sizeof **w->eqraw);
        if (!w->eqraw[k])
            return nomem(w->err);
        for (size_t g = 0; g < w->ngv; g++) {
            w->eqraw[k][g] = NONE;
            for (size_t r = 0; r < t->nraw; r++)
                if (strcmp(t->rawvars[r], w->gv[g].name) == 0)
                    w->eqraw[k][g] = r;
        }
    }
    return BH_OK;
}

/* Resolve a variable named in option `opt`. */
static bh_status resolve(ws_t *w, const char *opt, const char *name, size_t *g)
{
    long k = find_gvar(w, name);
    if (k >= 0) {
        *g = (size_t)k;
        return BH_OK;
    }
    const char **cands = malloc((w->ngv ? w->ngv : 1) * sizeof *cands);
    if (!cands)
        return nomem(w->err);
    char list[512] = "";
    size_t o = 0;
    for (size_t i = 0; i < w->ngv; i++) {
        cands[i] = w->gv[i].name;
        int r = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", w->gv[i].name);
        if (r > 0 && (size_t)r < sizeof list - o)
            o += (size_t)r;
    }
    const char *sug = bh_suggest(name, cands, w->ngv);
    free(cands);
    char q[160];
    bh_quote(q, sizeof q, name, 100);
    if (bh_frame_index(w->mm->data, name) >= 0)
        return bh_error_set(w->err, BH_EUSAGE,
                            "--%s: variable '%s' is not a predictor of the model (its "
                            "predictors: %s)", opt, q, list);
    if (!sug)
        sug = bh_frame_suggest(w->mm->data, name);
    if (sug)
        return bh_error_set(w->err, BH_EUSAGE,
                            "--%s: unknown variable '%s' (did you mean '%s'?)", opt, q, sug);
    return bh_error_set(w->err, BH_EUSAGE, "--%s: unknown variable '%s' (the model's "
                        "predictors: %s)", opt, q, list);
}

/* ------------------------------------------------------------ --at values */

typedef struct {
    const char *s;            /* whole spec, for positions */
    const char *p;
    const gvar *v;
    bh_error *err;
} atparse;

static bh_status at_fail(atparse *a, const char *what)
{
    char q[200];
    size_t col = (size_t)(a->p - a->s) + 1;
    return bh_error_at(a->err, BH_EUSAGE, "--at", 0, col, "'%s': %s at column %zu",
                       bh_quote(q, sizeof q, a->s, 160), what, col);
}

static void at_ws(atparse *a)
{
    while (*a->p == ' ' || *a->p == '\t')
        a->p++;
}

static bh_status at_sum(atparse *a, double *v);

static bh_status at_atom(atparse *a, double *v)
{
    at_ws(a);
    if (*a->p == '-' || *a->p == '+') {
        int neg = *a->p == '-';
        a->p++;
        bh_status s = at_atom(a, v);
        if (neg)
            *v = -*v;
        return s;
    }
    if (*a->p == '(') {
        a->p++;
        bh_status s = at_sum(a, v);
        if (s)
            return s;
        at_ws(a);
        if (*a->p != ')')
            return at_fail(a, "expected ')'");
        a->p++;
        return BH_OK;
    }
    if (isdigit((unsigned char)*a->p) || *a->p == '.') {
        char *end;
        *v = strtod(a->p, &end);
        if (end == a->p)
            return at_fail(a, "expected a number");
        a->p = end;
        return BH_OK;
    }
    if (isalpha((unsigned char)*a->p)) {
        const char *b = a->p;
        while (isalnum((unsigned char)*a->p) || *a->p == '.' || *a->p == '_')
            a->p++;
        size_t len = (size_t)(a->p - b);
        char name[32];
        if (len >= sizeof name) {
            a->p = b;
            return at_fail(a, "unknown name (use a number, mean, sd, min, max, median or pNN)");
        }
        memcpy(name, b, len);
        name[len] = '\0';
        const gvar *g = a->v;
        if (!strcmp(name, "mean"))
            *v = g->mean;
        else if (!strcmp(name, "sd"))
            *v = g->sd;
        else if (!strcmp(name, "min"))
            *v = g->min;
        else if (!strcmp(name, "max"))
            *v = g->max;
        else if (!strcmp(name, "median"))
            *v = quantile7(g, 0.5);
        else if (name[0] == 'p' && len > 1 && strspn(name + 1, "0123456789.") == len - 1) {
            double pr = strtod(name + 1, NULL);
            if (!(pr >= 0 && pr <= 100)) {
                a->p = b;
                return at_fail(a, "quantile outside p0..p100");
            }
            *v = quantile7(g, pr / 100);
        } else {
            a->p = b;
            char msg[128];
            snprintf(msg, sizeof msg, "unknown name '%s' (use a number, mean, sd, min, max, "
                     "median or pNN)", name);
            return at_fail(a, msg);
        }
        return BH_OK;
    }
    return at_fail(a, *a->p && *a->p != ',' ? "unexpected character" : "missing value");
}

static bh_status at_prod(atparse *a, double *v)
{
    bh_status s = at_atom(a, v);
    for (;;) {
        if (s)
            return s;
        at_ws(a);
        char op = *a->p;
        if (op != '*' && op != '/')
            return BH_OK;
        a->p++;
        double r;
        s = at_atom(a, &r);
        *v = op == '*' ? *v * r : *v / r;
    }
}

static bh_status at_sum(atparse *a, double *v)
{
    bh_status s = at_prod(a, v);
    for (;;) {
        if (s)
            return s;
        at_ws(a);
        char op = *a->p;
        if (op != '+' && op != '-')
            return BH_OK;
        a->p++;
        double r;
        s = at_prod(a, &r);
        *v = op == '+' ? *v + r : *v - r;
    }
}

/* Level index of a factor variable by its label, or -1. */
static long level_index(const gvar *g, const char *lev)
{
    for (size_t l = 0; l < g->nlevels; l++)
        if (strcmp(g->levels[l], lev) == 0)
            return (long)l;
    return -1;
}

static void level_set(const gvar *g, size_t gi, size_t l, gset *s)
{
    s->g = gi;
    s->level = g->levnum ? NULL : g->levels[l];
    s->value = g->levnum ? g->levnum[l] : NAN;
}

/* Parse one "m=v1,v2" into settings (malloc'ed). */
static bh_status parse_at(ws_t *w, const char *spec, gset **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    const char *eq = strchr(spec, '=');
    char q[200];
    if (!eq)
        return bh_error_set(w->err, BH_EUSAGE, "--at '%s': expected VARIABLE=VALUES, e.g. "
                            "\"experience=mean-sd,mean,mean+sd\"", bh_quote(q, sizeof q, spec, 160));
    size_t nl = (size_t)(eq - spec);
    while (nl && spec[nl - 1] == ' ')
        nl--;
    const char *nb = spec;
    while (*nb == ' ' && nb < eq)
        nb++, nl--;
    char *name = malloc(nl + 1);
    if (!name)
        return nomem(w->err);
    memcpy(name, nb, nl);
    name[nl] = '\0';
    size_t g;
    bh_status s = resolve(w, "at", name, &g);
    free(name);
    if (s)
        return s;
    const gvar *v = &w->gv[g];
    size_t cap = 4;
    gset *set = malloc(cap * sizeof *set);
    if (!set)
        return nomem(w->err);
    const char *p = eq + 1;
    for (;;) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        if (*nout == cap) {
            gset *ns = realloc(set, (cap *= 2) * sizeof *set);
            if (!ns) {
                free(set);
                return nomem(w->err);
            }
            set = ns;
        }
        gset *st = &set[*nout];
        st->g = g;
        st->level = NULL;
        if (v->factor) {
            const char *b = p, *en = e;
            while (b < en && *b == ' ')
                b++;
            while (en > b && en[-1] == ' ')
                en--;
            char lev[256];
            size_t len = (size_t)(en - b) < sizeof lev - 1 ? (size_t)(en - b) : sizeof lev - 1;
            memcpy(lev, b, len);
            lev[len] = '\0';
            long l = level_index(v, lev);
            if (l < 0) {
                char list[400] = "";
                size_t o = 0;
                for (size_t i = 0; i < v->nlevels && o < sizeof list - 1; i++) {
                    int r = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", v->levels[i]);
                    if (r > 0)
                        o += (size_t)r;
                }
                free(set);
                char q2[160];
                return bh_error_at(w->err, BH_EUSAGE, "--at", 0, (size_t)(b - spec) + 1,
                                   "'%s': '%s' is not a level of factor '%s' (levels: %s)",
                                   bh_quote(q, sizeof q, spec, 160), bh_quote(q2, sizeof q2, lev, 100),
                                   v->name, list);
            }
            level_set(v, g, (size_t)l, st);
        } else {
            char *piece = malloc((size_t)(e - p) + 1);
            if (!piece) {
                free(set);
                return nomem(w->err);
            }
            memcpy(piece, p, (size_t)(e - p));
            piece[e - p] = '\0';
            /* parse inside the whole spec so positions refer to it */
            atparse a = {.s = spec, .p = p, .v = v, .err = w->err};
            double val;
            s = at_sum(&a, &val);
            if (s == BH_OK) {
                at_ws(&a);
                if (a.p != e)
                    s = at_fail(&a, "unexpected text");
            }
            free(piece);
            if (s == BH_OK && !isfinite(val))
                s = at_fail(&a, "value is not finite");
            if (s) {
                free(set);
                return s;
            }
            st->value = val;
        }
        (*nout)++;
        if (!*e)
            break;
        p = e + 1;
    }
    *out = set;
    return BH_OK;
}

static char *setting_text(const ws_t *w, const gset *s, size_t n)
{
    size_t cap = 64, len = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    b[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char piece[400];
        const gvar *v = &w->gv[s[i].g];
        if (s[i].level)
            snprintf(piece, sizeof piece, "%s%s=%s", i ? ";" : "", v->name, s[i].level);
        else
            snprintf(piece, sizeof piece, "%s%s=%.17g", i ? ";" : "", v->name, s[i].value);
        size_t pl = strlen(piece);
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap)
                cap *= 2;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
        }
        memcpy(b + len, piece, pl + 1);
        len += pl;
    }
    return b;
}

/* ------------------------------------------------------------ evaluation */

/* Translate settings into equation k's overrides (w->ov[k]). */
static void build_ov(ws_t *w, size_t k, const gset *base, size_t nbase, const gset *extra,
                     size_t nextra)
{
    size_t n = 0;
    for (size_t pass = 0; pass < 2; pass++) {
        const gset *s = pass ? extra : base;
        size_t ns = pass ? nextra : nbase;
        for (size_t i = 0; i < ns; i++) {
            size_t r = w->eqraw[k][s[i].g];
            if (r == NONE)
                continue;
            size_t j = 0;
            while (j < n && w->ov[k][j].raw != r)
                j++;
            w->ov[k][j].raw = r;
            w->ov[k][j].value = s[i].value;
            w->ov[k][j].level = s[i].level;
            if (j == n)
                n++;
        }
    }
    w->nov[k] = n;
}

/* Design columns (draw = NONE) or their derivative with respect to gvar
 * `dg` of equation k at rows, with offsets. */
static bh_status eval_x(ws_t *w, size_t k, const bh_frame *d, const size_t *rows, size_t nb,
                        const bh_override *ov, size_t nov, size_t dg, double *x, double *off)
{
    const bh_terms *t = EQ(w->mm, k)->terms;
    size_t p = t->p, draw = NONE;
    if (dg != NONE) {
        draw = w->eqraw[k][dg];
        if (draw == NONE) {
            /* the variable does not enter this equation */
            for (size_t j = 0; j < p; j++)
                memset(x + j * BLK, 0, nb * sizeof *x);
            memset(off, 0, nb * sizeof *off);
            return BH_OK;
        }
    }
    bh_status s = bh_terms_eval_rows(t, d, w->map[k], rows, nb, ov, nov, draw, x, BLK, w->err);
    if (s)
        return s;
    memset(off, 0, nb * sizeof *off);
    for (size_t o = 0; o < t->formula->noffsets; o++) {
        s = bh_terms_eval_expr_rows(t, t->formula->offsets[o], d, w->map[k], rows, nb, ov, nov,
                                    draw, w->tval, w->tder, w->err);
        if (s)
            return s;
        const double *src = draw == NONE ? w->tval : w->tder;
        for (size_t i = 0; i < nb; i++)
            off[i] += src[i];
    }
    return BH_OK;
}

static bh_status prepare_shift(ws_t *w, size_t g)
{
    if (w->shift_g == g)
        return BH_OK;
    const bh_frame *d = w->mm->data;
    const gvar *v = &w->gv[g];
    const double *col = d->cols[v->col].num;
    size_t nr = d->nrow ? d->nrow : 1;
    if (!w->hrow) {
        w->hrow = malloc(nr * sizeof *w->hrow);
        for (int s = 0; s < 4; s++) {
            w->shiftnum[s] = malloc(nr * sizeof(double));
            w->shift[s] = *d;
            w->shift[s].cols = malloc((d->ncol ? d->ncol : 1) * sizeof(bh_column));
            if (!w->shiftnum[s] || !w->shift[s].cols)
                return nomem(w->err);
        }
        if (!w->hrow)
            return nomem(w->err);
    }
    static const double frac[4] = {1.0, -1.0, 0.5, -0.5};
    for (size_t i = 0; i < d->nrow; i++) {
        double x = col[i];
        double h = FD_REL * (x != 0 ? fabs(x) : (v->sd > 0 ? v->sd : 1.0));
        /* a representable step, so that the difference quotient divides by
         * the step actually taken */
        volatile double xh = x + h;
        h = xh - x;
        w->hrow[i] = h;
        for (int s = 0; s < 4; s++)
            w->shiftnum[s][i] = x + frac[s] * h;
    }
    for (int s = 0; s < 4; s++) {
        memcpy(w->shift[s].cols, d->cols, d->ncol * sizeof(bh_column));
        w->shift[s].cols[v->col].num = w->shiftnum[s];
    }
    w->shift_g = g;
    return BH_OK;
}

/* Design quantities of one corner for rows[0..nb-1], every equation:
 * X[0] values, X[1] d/da, X[2] d/db, X[3] d2/da db (as the statistic's
 * derivative operators require). */
static bh_status corner_block(ws_t *w, const mstat *st, const corner *cn, const size_t *rows,
                              size_t nb)
{
    size_t da = NONE, db = NONE;
    for (size_t o = 0; o < st->nop; o++)
        if (st->op[o].deriv) {
            if (da == NONE)
                da = st->op[o].g;
            else
                db = st->op[o].g;
        }
    const bh_frame *d = w->mm->data;
    for (size_t k = 0; k < w->K; k++) {
        build_ov(w, k, st->base, st->nbase, cn->set, cn->nset);
        const bh_override *ov = w->ov[k];
        size_t nov = w->nov[k];
        bh_status s = eval_x(w, k, d, rows, nb, ov, nov, NONE, w->X[0][k], w->OFF[0][k]);
        if (!s && da != NONE)
            s = eval_x(w, k, d, rows, nb, ov, nov, da, w->X[1][k], w->OFF[1][k]);
        if (!s && db != NONE)
            s = eval_x(w, k, d, rows, nb, ov, nov, db, w->X[2][k], w->OFF[2][k]);
        if (s)
            return s;
        if (db == NONE)
            continue;
        /* d2 x / da db: central differences in b of the exact d x / da,
         * Richardson-extrapolated (exact for terms quadratic in b). */
        size_t p = eq_p(w, k);
        double *xab = w->X[3][k], *oab = w->OFF[3][k];
        size_t rb = w->eqraw[k][db];
        long oi = -1;
        for (size_t j = 0; j < nov; j++)
            if (w->ov[k][j].raw == rb)
                oi = (long)j;
        static const double frac[4] = {1.0, -1.0, 0.5, -0.5};
        static const double coef[4] = {-1.0 / 6, 1.0 / 6, 4.0 / 3, -4.0 / 3};
        /* (4 D(h/2) - D(h)) / 3 with D(h) = (f(+h) - f(-h)) / 2h and
         * D(h/2) = (f(+h/2) - f(-h/2)) / h: weights coef[s] / h */
        for (size_t j = 0; j < p; j++)
            memset(xab + j * BLK, 0, nb * sizeof *xab);
        memset(oab, 0, nb * sizeof *oab);
        if (rb == NONE)
            continue;
        double hov = 0;
        if (oi < 0) {
            if ((s = prepare_shift(w, db)) != BH_OK)
                return s;
        } else {
            double x = w->ov[k][oi].value;
            hov = FD_REL * (x != 0 ? fabs(x) : (w->gv[db].sd > 0 ? w->gv[db].sd : 1.0));
            volatile double xh = x + hov;
            hov = xh - x;
        }
        for (int sh = 0; sh < 4; sh++) {
            if (oi >= 0) {
                double keep = w->ov[k][oi].value;
                w->ov[k][oi].value = keep + frac[sh] * hov;
                s = eval_x(w, k, d, rows, nb, ov, nov, da, w->T[k], w->toff);
                w->ov[k][oi].value = keep;
            } else {
                s = eval_x(w, k, &w->shift[sh], rows, nb, ov, nov, da, w->T[k], w->toff);
            }
            if (s)
                return s;
            for (size_t i = 0; i < nb; i++) {
                double h = oi >= 0 ? hov : w->hrow[rows[i]];
                double c = coef[sh] / h;
                for (size_t j = 0; j < p; j++)
                    xab[j * BLK + i] += c * w->T[k][j * BLK + i];
                oab[i] += c * w->toff[i];
            }
        }
    }
    return BH_OK;
}

static double dotb(const double *x, size_t ld, size_t i, const double *b, size_t p)
{
    double s = 0;
    for (size_t j = 0; j < p; j++)
        s += x[j * ld + i] * b[j];
    return s;
}

/* Add sign * (per-row quantity) and its gradient in beta to q[i], Jr[i*p]
 * for rows 0..nb-1 of the block buffers. */
static bh_status apply(ws_t *w, const mstat *st, double sign, size_t nb)
{
    size_t K = w->K, c = st->comp, p = w->p;
    size_t nder = 0;
    for (size_t o = 0; o < st->nop; o++)
        nder += st->op[o].deriv ? 1 : 0;
    const double *d1 = w->d1 + c * K, *d2 = w->d2 + c * K * K, *d3 = w->d3 + c * K * K * K;
    for (size_t i = 0; i < nb; i++) {
        for (size_t k = 0; k < K; k++) {
            const double *b = w->beta + EQ(w->mm, k)->coef0;
            size_t pk = eq_p(w, k);
            w->eta[k] = dotb(w->X[0][k], BLK, i, b, pk) + w->OFF[0][k][i];
            if (nder >= 1)
                w->ea[k] = dotb(w->X[1][k], BLK, i, b, pk) + w->OFF[1][k][i];
            if (nder >= 2) {
                w->eb[k] = dotb(w->X[2][k], BLK, i, b, pk) + w->OFF[2][k][i];
                w->eab[k] = dotb(w->X[3][k], BLK, i, b, pk) + w->OFF[3][k][i];
            }
        }
        bh_status s = w->mm->mean(w->mm->mean_ctx, w->eta, (int)nder + 1, w->mu, w->d1, w->d2,
                                  w->d3, w->err);
        if (s)
            return s;
        double qv;
        double *J = w->Jr + i * p;
        if (nder == 0) {
            qv = w->mu[c];
            for (size_t k = 0; k < K; k++) {
                const double *x = w->X[0][k];
                size_t c0 = EQ(w->mm, k)->coef0, pk = eq_p(w, k);
                for (size_t j = 0; j < pk; j++)
                    J[c0 + j] += sign * d1[k] * x[j * BLK + i];
            }
        } else if (nder == 1) {
            qv = 0;
            for (size_t k = 0; k < K; k++)
                qv += d1[k] * w->ea[k];
            for (size_t k = 0; k < K; k++) {
                double gx = 0;      /* coefficient of x_k */
                for (size_t l = 0; l < K; l++)
                    gx += d2[k * K + l] * w->ea[l];
                const double *x = w->X[0][k], *xa = w->X[1][k];
                size_t c0 = EQ(w->mm, k)->coef0, pk = eq_p(w, k);
                for (size_t j = 0; j < pk; j++)
                    J[c0 + j] += sign * (gx * x[j * BLK + i] + d1[k] * xa[j * BLK + i]);
            }
        } else {
            qv = 0;
            for (size_t k = 0; k < K; k++) {
                qv += d1[k] * w->eab[k];
                for (size_t l = 0; l < K; l++)
                    qv += d2[k * K + l] * w->ea[k] * w->eb[l];
            }
            for (size_t k = 0; k < K; k++) {
                double gx = 0, gxa = 0, gxb = 0;
                for (size_t l = 0; l < K; l++) {
                    for (size_t m = 0; m < K; m++)
                        gx += d3[(k * K + l) * K + m] * w->ea[l] * w->eb[m];
                    gx += d2[k * K + l] * w->eab[l];
                    gxa += d2[k * K + l] * w->eb[l];
                    gxb += d2[k * K + l] * w->ea[l];
                }
                const double *x = w->X[0][k], *xa = w->X[1][k], *xb = w->X[2][k],
                             *xab = w->X[3][k];
                size_t c0 = EQ(w->mm, k)->coef0, pk = eq_p(w, k);
                for (size_t j = 0; j < pk; j++) {
                    size_t ij = j * BLK + i;
                    J[c0 + j] += sign * (gx * x[ij] + gxa * xa[ij] + gxb * xb[ij] +
                                         d1[k] * xab[ij]);
                }
            }
        }
        w->q[i] += sign * qv;
    }
    return BH_OK;
}

static double quad_form(const ws_t *w, const double *J)
{
    const bh_fit *f = w->mm->fit;
    size_t p = w->p;
    double v = 0;
    for (size_t a = 0; a < p; a++) {
        if (f->aliased[a] || J[a] == 0)
            continue;
        double s = 0;
        for (size_t b = 0; b < p; b++)
            if (!f->aliased[b])
                s += f->vcov[a * p + b] * J[b];
        v += J[a] * s;
    }
    return v;
}

static size_t make_corners(const mstat *st, corner *cn)
{
    size_t n = 1;
    cn[0].sign = 1;
    cn[0].nset = 0;
    for (size_t o = 0; o < st->nop; o++) {
        if (st->op[o].deriv)
            continue;
        for (size_t c = 0; c < n; c++) {
            cn[n + c] = cn[c];
            cn[n + c].sign = -cn[c].sign;
            cn[n + c].set[cn[n + c].nset++] = st->op[o].v0;
            cn[c].set[cn[c].nset++] = st->op[o].v1;
        }
        n *= 2;
    }
    return n;
}

/* Estimate and Jacobian (p) of one statistic. */
static bh_status eval_stat(ws_t *w, const mstat *st, double *est, double *J, int obs)
{
    const bh_margins_model *mm = w->mm;
    size_t p = w->p, n = mm->n;
    corner cn[4];
    size_t ncn = make_corners(st, cn);
    memset(J, 0, p * sizeof *J);
    *est = 0;
    bh_status s;
    if (!st->atmeans) {
        for (size_t b0 = 0; b0 < n; b0 += BLK) {
            size_t nb = n - b0 < BLK ? n - b0 : BLK;
            memset(w->q, 0, nb * sizeof *w->q);
            memset(w->Jr, 0, nb * p * sizeof *w->Jr);
            for (size_t c = 0; c < ncn; c++)
                if ((s = corner_block(w, st, &cn[c], mm->rows + b0, nb)) ||
                    (s = apply(w, st, cn[c].sign, nb)))
                    return s;
            for (size_t i = 0; i < nb; i++) {
                double wi = mm->freq ? mm->freq[b0 + i] : 1.0;
                *est += wi * w->q[i];
                const double *Ji = w->Jr + i * p;
                for (size_t j = 0; j < p; j++)
                    J[j] += wi * Ji[j];
                if (obs && w->opt->obs) {
                    double v = quad_form(w, Ji);
                    s = w->opt->obs(w->opt->obs_ctx, st->out, mm->rows[b0 + i], w->q[i],
                                    sqrt(v > 0 ? v : 0), w->err);
                    if (s)
                        return s;
                }
            }
        }
        *est /= w->sumw;
        for (size_t j = 0; j < p; j++)
            J[j] /= w->sumw;
        return BH_OK;
    }
    /* at the means: average the design quantities of each corner, then
     * evaluate the mean function once at that row */
    size_t per = 0;
    for (size_t k = 0; k < w->K; k++)
        per += 4 * (eq_p(w, k) + 1);
    memset(w->psum, 0, ncn * per * sizeof *w->psum);
    for (size_t c = 0; c < ncn; c++) {
        for (size_t b0 = 0; b0 < n; b0 += BLK) {
            size_t nb = n - b0 < BLK ? n - b0 : BLK;
            if ((s = corner_block(w, st, &cn[c], mm->rows + b0, nb)))
                return s;
            double *ps = w->psum + c * per;
            for (size_t k = 0; k < w->K; k++) {
                size_t pk = eq_p(w, k);
                for (int part = 0; part < 4; part++) {
                    for (size_t i = 0; i < nb; i++) {
                        double wi = mm->freq ? mm->freq[b0 + i] : 1.0;
                        for (size_t j = 0; j < pk; j++)
                            ps[j] += wi * w->X[part][k][j * BLK + i];
                        ps[pk] += wi * w->OFF[part][k][i];
                    }
                    ps += pk + 1;
                }
            }
        }
    }
    memset(w->q, 0, sizeof *w->q);
    memset(w->Jr, 0, p * sizeof *w->Jr);
    for (size_t c = 0; c < ncn; c++) {
        const double *ps = w->psum + c * per;
        for (size_t k = 0; k < w->K; k++) {
            size_t pk = eq_p(w, k);
            for (int part = 0; part < 4; part++) {
                for (size_t j = 0; j < pk; j++)
                    w->X[part][k][j * BLK] = ps[j] / w->sumw;
                w->OFF[part][k][0] = ps[pk] / w->sumw;
                ps += pk + 1;
            }
        }
        if ((s = apply(w, st, cn[c].sign, 1)))
            return s;
    }
    *est = w->q[0];
    memcpy(J, w->Jr, p * sizeof *J);
    return BH_OK;
}

/* ------------------------------------------------------------ workspace */

static void ws_free(ws_t *w)
{
    for (size_t k = 0; k < w->K; k++) {
        if (w->map)
            free(w->map[k]);
        if (w->eqraw)
            free(w->eqraw[k]);
        for (int a = 0; a < 4; a++) {
            if (w->X[a])
                free(w->X[a][k]);
            if (w->OFF[a])
                free(w->OFF[a][k]);
        }
        if (w->T)
            free(w->T[k]);
        if (w->ov)
            free(w->ov[k]);
    }
    free(w->map);
    free(w->eqraw);
    for (int a = 0; a < 4; a++) {
        free(w->X[a]);
        free(w->OFF[a]);
        free(w->shiftnum[a]);
        free(w->shift[a].cols);
    }
    free(w->T);
    free(w->ov);
    free(w->nov);
    free(w->toff);
    free(w->tval);
    free(w->tder);
    free(w->q);
    free(w->Jr);
    free(w->eta);
    free(w->ea);
    free(w->eb);
    free(w->eab);
    free(w->mu);
    free(w->d1);
    free(w->d2);
    free(w->d3);
    free(w->hrow);
    free(w->psum);
    free(w->beta);
    for (size_t g = 0; g < w->ngv; g++)
        free(w->gv[g].sorted);
    free(w->gv);
}

static bh_status ws_init(ws_t *w, const bh_margins_model *mm, const bh_margins_options *opt,
                         bh_error *err)
{
    memset(w, 0, sizeof *w);
    w->mm = mm;
    w->opt = opt;
    w->err = err;
    w->shift_g = NONE;
    if (!mm || !mm->fit || !mm->data || (!mm->eq && mm->neq != 1) || !mm->neq || !mm->nout || !mm->mean)
        return bh_error_set(err, BH_EUSAGE, "incomplete margins model description");
    const bh_fit *f = mm->fit;
    w->p = f->p;
    w->K = mm->neq;
    w->C = mm->nout;
    if (mm->n == 0)
        return bh_error_set(err, BH_EDATA, "the model has no estimation rows");
    for (size_t k = 0; k < w->K; k++)
        if (EQ(mm, k)->coef0 + EQ(mm, k)->terms->p > f->p)
            return bh_error_set(err, BH_EINTERNAL, "equation %zu's coefficients exceed the fit's",
                                k + 1);
    size_t K = w->K, C = w->C, p = w->p;
    w->beta = malloc(p * sizeof *w->beta);
    w->map = calloc(K, sizeof *w->map);
    w->eqraw = calloc(K, sizeof *w->eqraw);
    for (int a = 0; a < 4; a++) {
        w->X[a] = calloc(K, sizeof *w->X[a]);
        w->OFF[a] = calloc(K, sizeof *w->OFF[a]);
    }
    w->T = calloc(K, sizeof *w->T);
    w->ov = calloc(K, sizeof *w->ov);
    w->nov = calloc(K, sizeof *w->nov);
    w->toff = malloc(BLK * sizeof(double));
    w->tval = malloc(BLK * sizeof(double));
    w->tder = malloc(BLK * sizeof(double));
    w->q = malloc(BLK * sizeof(double));
    w->Jr = malloc(BLK * p * sizeof(double));
    w->eta = malloc(K * sizeof(double));
    w->ea = malloc(K * sizeof(double));
    w->eb = malloc(K * sizeof(double));
    w->eab = malloc(K * sizeof(double));
    w->mu = malloc(C * sizeof(double));
    w->d1 = malloc(C * K * sizeof(double));
    w->d2 = malloc(C * K * K * sizeof(double));
    w->d3 = malloc(C * K * K * K * sizeof(double));
    if (!w->beta || !w->map || !w->eqraw || !w->T || !w->ov || !w->nov || !w->toff || !w->tval ||
        !w->tder || !w->q || !w->Jr || !w->eta || !w->ea || !w->eb || !w->eab || !w->mu ||
        !w->d1 || !w->d2 || !w->d3)
        return nomem(err);
    for (int a = 0; a < 4; a++)
        if (!w->X[a] || !w->OFF[a])
            return nomem(err);
    for (size_t j = 0; j < p; j++)
        w->beta[j] = f->aliased[j] || isnan(f->beta[j]) ? 0.0 : f->beta[j];
    size_t per = 0;
    for (size_t k = 0; k < K; k++) {
        const bh_terms *t = EQ(mm, k)->terms;
        size_t pk = t->p ? t->p : 1;
        w->map[k] = malloc((t->nraw ? t->nraw : 1) * sizeof **w->map);
        w->T[k] = malloc(BLK * pk * sizeof(double));
        w->ov[k] = malloc((t->nraw + 1) * sizeof(bh_override));
        for (int a = 0; a < 4; a++) {
            w->X[a][k] = malloc(BLK * pk * sizeof(double));
            w->OFF[a][k] = malloc(BLK * sizeof(double));
            if (!w->X[a][k] || !w->OFF[a][k])
                return nomem(err);
        }
        if (!w->map[k] || !w->T[k] || !w->ov[k])
            return nomem(err);
        bh_status s = bh_terms_map(t, mm->data, w->map[k], err);
        if (s)
            return s;
        per += 4 * (t->p + 1);
    }
    w->psum = malloc(4 * per * sizeof *w->psum);
    if (!w->psum)
        return nomem(err);
    w->sumw = 0;
    for (size_t i = 0; i < mm->n; i++)
        w->sumw += mm->freq ? mm->freq[i] : 1.0;
    if (!(w->sumw > 0))
        return bh_error_set(err, BH_EDATA, "the estimation sample has no weight");
    return collect_vars(w);
}

/* ------------------------------------------------------------ results */

static void margin_clear(bh_margin *m)
{
    free(m->term);
    free(m->at);
    free(m->component);
}

void bh_margins_result_free(bh_margins_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrows; i++)
        margin_clear(&r->rows[i]);
    free(r->rows);
    for (size_t b = 0; b < r->nbands; b++) {
        bh_jn_band *j = &r->bands[b];
        free(j->term);
        free(j->moderator);
        free(j->component);
        free(j->value);
        free(j->estimate);
        free(j->std_error);
        free(j->conf_low);
        free(j->conf_high);
        free(j->significant);
    }
    free(r->bands);
    for (size_t i = 0; i < r->nnotes; i++)
        free(r->notes[i]);
    free(r->notes);
    free(r->model);
    free(r->formula);
    free(r->family);
    free(r->link);
    free(r->vcov_type);
    free(r);
}

static bh_status add_note(bh_margins_result *r, bh_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bh_status add_note(bh_margins_result *r, bh_error *err, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **nn = realloc(r->notes, (r->nnotes + 1) * sizeof *nn);
    if (!nn)
        return nomem(err);
    r->notes = nn;
    if (!(nn[r->nnotes] = bh_strdup(buf)))
        return nomem(err);
    r->nnotes++;
    return BH_OK;
}

static bh_margin *add_row(bh_margins_result *r, size_t *cap)
{
    if (r->nrows == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        bh_margin *nr = realloc(r->rows, nc * sizeof *nr);
        if (!nr)
            return NULL;
        r->rows = nr;
        *cap = nc;
    }
    bh_margin *m = &r->rows[r->nrows++];
    memset(m, 0, sizeof *m);
    m->in_range = -1;
    return m;
}

static void inference(const ws_t *w, double crit, double est, double var, bh_margin *m)
{
    const bh_fit *f = w->mm->fit;
    m->estimate = est;
    m->std_error = var >= 0 ? sqrt(var) : NAN;
    m->statistic = est / m->std_error;
    double a = fabs(m->statistic);
    m->p_value = isnan(a) ? NAN
                 : isinf(f->df_inference) || !(f->df_inference > 0)
                     ? 2 * gsl_cdf_ugaussian_Q(a)
                     : 2 * gsl_cdf_tdist_Q(a, f->df_inference);
    m->conf_low = est - crit * m->std_error;
    m->conf_high = est + crit * m->std_error;
}

/* ------------------------------------------------------------ the plan */

typedef struct {
    size_t g;                 /* variable */
    size_t nops;              /* 1 (derivative / 0-1 change) or levels - 1 */
    mop op[64];
    char label[64][160];
} opset;

/* The operators of variable g: a derivative, a 0 -> 1 change, or one
 * change per non-base factor level. */
static bh_status var_ops(ws_t *w, size_t g, int discrete, opset *os)
{
    const gvar *v = &w->gv[g];
    os->g = g;
    os->nops = 0;
    if (v->factor) {
        if (!v->levels || v->nlevels < 2)
            return bh_error_set(w->err, BH_EUSAGE,
                                "factor '%s' has no usable levels for a discrete change (only "
                                "factor(VAR) and categorical columns are supported)", v->name);
        if (v->nlevels - 1 > 64)
            return bh_error_set(w->err, BH_EUSAGE, "factor '%s' has %zu levels; margins "
                                "handle at most 65", v->name, v->nlevels);
        size_t nl = v->nlevels - 1;
        for (size_t l = 0; l < nl; l++) {
            mop *o = &os->op[l];
            o->g = g;
            o->deriv = 0;
            level_set(v, g, 0, &o->v0);
            level_set(v, g, l + 1, &o->v1);
            snprintf(os->label[l], sizeof os->label[l], "%s[%s vs %s]", v->name,
                     v->levels[l + 1], v->levels[0]);
        }
        os->nops = nl;
        return BH_OK;
    }
    mop *o = &os->op[0];
    o->g = g;
    snprintf(os->label[0], sizeof os->label[0], "%s", v->name);
    if (discrete && v->is01) {
        o->deriv = 0;
        o->v0 = (gset){.g = g, .value = 0, .level = NULL};
        o->v1 = (gset){.g = g, .value = 1, .level = NULL};
    } else {
        o->deriv = 1;
    }
    os->nops = 1;
    return BH_OK;
}

static char *trimdup(const char *b, size_t n)
{
    while (n && (*b == ' ' || *b == '\t'))
        b++, n--;
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
        n--;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, b, n);
        s[n] = '\0';
    }
    return s;
}

/* Split "a:b" (or "a,b" lists elsewhere) at the first `sep`. */
static bh_status split2(ws_t *w, const char *opt, const char *spec, size_t *ga, size_t *gb)
{
    const char *c = strchr(spec, ':');
    char q[200];
    if (!c || strchr(c + 1, ':'))
        return bh_error_set(w->err, BH_EUSAGE, "--%s '%s': expected two variables as A:B", opt,
                            bh_quote(q, sizeof q, spec, 160));
    char *a = trimdup(spec, (size_t)(c - spec)), *b = trimdup(c + 1, strlen(c + 1));
    bh_status s = !a || !b ? nomem(w->err) : BH_OK;
    if (!s)
        s = resolve(w, opt, a, ga);
    if (!s)
        s = resolve(w, opt, b, gb);
    free(a);
    free(b);
    if (!s && *ga == *gb)
        s = bh_error_set(w->err, BH_EUSAGE, "--%s '%s': the two variables must differ", opt,
                         bh_quote(q, sizeof q, spec, 160));
    return s;
}

typedef struct {
    ws_t *w;
    bh_margins_result *r;
    size_t cap;
    double crit;
    double *J;
} runctx;

/* Evaluate one statistic and append its row. */
static bh_status run_stat(runctx *rc, mstat *st, const char *term, const char *at, int obs)
{
    ws_t *w = rc->w;
    bh_margin *m = add_row(rc->r, &rc->cap);
    if (!m)
        return nomem(w->err);
    m->type = st->type;
    m->term = bh_strdup(term);
    m->at = bh_strdup(at ? at : "");
    m->component = bh_strdup(w->mm->out_names ? w->mm->out_names[st->comp] : "");
    if (!m->term || !m->at || !m->component)
        return nomem(w->err);
    st->out = m;
    double est;
    bh_status s = eval_stat(w, st, &est, rc->J, obs);
    if (s)
        return s;
    /* the row may have moved if the callback appended nothing; m stays
     * valid because add_row is not called during eval_stat */
    inference(w, rc->crit, est, quad_form(w, rc->J), m);
    return BH_OK;
}

/* Conditional effect of x (derivative) with moderator m set to `val`. */
static bh_status jn_eval(runctx *rc, mstat *st, double val, double *est, double *se)
{
    st->base[0].value = val;
    bh_status s = eval_stat(rc->w, st, est, rc->J, 0);
    if (s)
        return s;
    double v = quad_form(rc->w, rc->J);
    *se = v > 0 ? sqrt(v) : 0;
    return BH_OK;
}

static bh_status jn_f(runctx *rc, mstat *st, double val, double *f)
{
    double e, se;
    bh_status s = jn_eval(rc, st, val, &e, &se);
    *f = e * e - rc->crit * rc->crit * se * se;
    return s;
}

/* Root of f in [a, b] with f(a) f(b) < 0: Illinois regula falsi. */
static bh_status jn_refine(runctx *rc, mstat *st, double a, double fa, double b, double fb,
                           double *root)
{
    int side = 0;
    double c = a;
    for (int it = 0; it < 200; it++) {
        c = (a * fb - b * fa) / (fb - fa);
        if (!(c > fmin(a, b) && c < fmax(a, b)))
            c = 0.5 * (a + b);
        double fc;
        bh_status s = jn_f(rc, st, c, &fc);
        if (s)
            return s;
        if (fc == 0 || fabs(b - a) <= 1e-14 * fmax(1.0, fabs(c)))
            break;
        if ((fc > 0) == (fb > 0)) {
            b = c;
            fb = fc;
            if (side == -1)
                fa /= 2;
            side = -1;
        } else {
            a = c;
            fa = fc;
            if (side == 1)
                fb /= 2;
            side = 1;
        }
    }
    *root = c;
    return BH_OK;
}

static int cmp_root(const void *a, const void *b)
{
    return cmp_dbl(a, b);
}

static bh_status run_jn(runctx *rc, const char *spec, size_t comp, const gset *means,
                        size_t nmeans)
{
    ws_t *w = rc->w;
    const bh_margins_options *opt = w->opt;
    size_t gx, gm;
    bh_status s = split2(w, "jn", spec, &gx, &gm);
    if (s)
        return s;
    const gvar *vx = &w->gv[gx], *vm = &w->gv[gm];
    char q[200];
    if (vm->factor || vx->factor)
        return bh_error_set(w->err, BH_EUSAGE,
                            "--jn '%s': '%s' is a factor; Johnson-Neyman needs a continuous "
                            "focal variable and moderator (use --at for factor levels)",
                            bh_quote(q, sizeof q, spec, 160), vm->factor ? vm->name : vx->name);
    if (!(vm->max > vm->min))
        return bh_error_set(w->err, BH_EUSAGE, "--jn '%s': moderator '%s' is constant",
                            bh_quote(q, sizeof q, spec, 160), vm->name);
    mstat st;
    memset(&st, 0, sizeof st);
    st.type = BH_MARGIN_JN;
    st.comp = comp;
    st.nop = 1;
    st.op[0].g = gx;
    st.op[0].deriv = 1;
    st.atmeans = opt->atmeans;
    st.base = malloc((nmeans + 1) * sizeof *st.base);
    if (!st.base)
        return nomem(w->err);
    st.base[0] = (gset){.g = gm, .value = vm->mean, .level = NULL};
    st.nbase = 1;
    for (size_t i = 0; i < nmeans; i++)
        if (means[i].g != gm)
            st.base[st.nbase++] = means[i];

    bh_margins_result *r = rc->r;
    bh_jn_band *nb = realloc(r->bands, (r->nbands + 1) * sizeof *nb);
    if (!nb) {
        free(st.base);
        return nomem(w->err);
    }
    r->bands = nb;
    bh_jn_band *band = &r->bands[r->nbands++];
    memset(band, 0, sizeof *band);
    size_t np = opt->jn_points >= 2 ? opt->jn_points : 2;
    band->term = bh_strdup(vx->name);
    band->moderator = bh_strdup(vm->name);
    band->component = bh_strdup(w->mm->out_names ? w->mm->out_names[comp] : "");
    band->lo = vm->min;
    band->hi = vm->max;
    band->n = np;
    band->value = malloc(np * sizeof(double));
    band->estimate = malloc(np * sizeof(double));
    band->std_error = malloc(np * sizeof(double));
    band->conf_low = malloc(np * sizeof(double));
    band->conf_high = malloc(np * sizeof(double));
    band->significant = malloc(np);
    double roots[JN_SEARCH + 2];
    size_t nroots = 0;
    double span_lo = -INFINITY, span_hi = INFINITY;
    if (!band->term || !band->moderator || !band->component || !band->value || !band->estimate ||
        !band->std_error || !band->conf_low || !band->conf_high || !band->significant) {
        s = nomem(w->err);
        goto done;
    }
    double crit = rc->crit;
    for (size_t i = 0; i < np; i++) {
        double m = vm->min + (vm->max - vm->min) * (double)i / (double)(np - 1);
        double e, se;
        if ((s = jn_eval(rc, &st, m, &e, &se)))
            goto done;
        band->value[i] = m;
        band->estimate[i] = e;
        band->std_error[i] = se;
        band->conf_low[i] = e - crit * se;
        band->conf_high[i] = e + crit * se;
        band->significant[i] = fabs(e) > crit * se;
    }
    /* Exact: identity link and a design affine in the moderator, so that
     * the effect is a(m)' beta with a(m) = a0 + m a1. */
    double qa = 0, qb = 0, qc = 0;
    if (w->mm->identity) {
        size_t p = w->p;
        double *a = malloc(4 * p * sizeof *a);
        if (!a) {
            s = nomem(w->err);
            goto done;
        }
        double lo = vm->min, hi = vm->max, wd = hi - lo;
        double pts[4] = {lo, hi, 0.5 * (lo + hi), hi + 2 * wd};
        double e, se, elo = 0, ehi = 0;
        for (int k = 0; k < 4 && !s; k++) {
            s = jn_eval(rc, &st, pts[k], &e, &se);
            memcpy(a + k * p, rc->J, p * sizeof *a);
            if (k == 0)
                elo = e;
            else if (k == 1)
                ehi = e;
        }
        if (s) {
            free(a);
            goto done;
        }
        int affine = 1;
        double scale = 0;
        for (size_t j = 0; j < p; j++)
            scale = fmax(scale, fmax(fabs(a[j]), fabs(a[p + j])));
        for (size_t j = 0; j < p && affine; j++) {
            double a1 = (a[p + j] - a[j]) / wd;
            for (int k = 2; k < 4; k++)
                if (fabs(a[j] + a1 * (pts[k] - lo) - a[k * p + j]) > AFFINE_TOL * (scale + 1e-300))
                    affine = 0;
        }
        if (affine) {
            double *a0 = a + 2 * p, *a1 = a + 3 * p;   /* reuse */
            for (size_t j = 0; j < p; j++) {
                double s1 = (a[p + j] - a[j]) / wd;
                a1[j] = s1;
                a0[j] = a[j] - lo * s1;
            }
            /* the estimate itself (offsets included) is affine too */
            double b1 = (ehi - elo) / wd, b0 = elo - lo * b1;
            double v00 = 0, v01 = 0, v11 = 0;
            const bh_fit *f = w->mm->fit;
            for (size_t i = 0; i < p; i++) {
                if (f->aliased[i])
                    continue;
                for (size_t j = 0; j < p; j++) {
                    if (f->aliased[j])
                        continue;
                    double v = f->vcov[i * p + j];
                    v00 += a0[i] * v * a0[j];
                    v01 += a0[i] * v * a1[j];
                    v11 += a1[i] * v * a1[j];
                }
            }
            double c2 = crit * crit;
            qa = b1 * b1 - c2 * v11;
            qb = 2 * (b0 * b1 - c2 * v01);
            qc = b0 * b0 - c2 * v00;
            double disc = qb * qb - 4 * qa * qc;
            if (fabs(qa) <= 1e-14 * (b1 * b1 + c2 * v11)) {
                if (qb != 0)
                    roots[nroots++] = -qc / qb;
            } else if (disc >= 0) {
                double qq = -0.5 * (qb + (qb >= 0 ? 1 : -1) * sqrt(disc));
                roots[nroots++] = qq / qa;
                if (qq != 0)
                    roots[nroots++] = qc / qq;
            }
            band->exact = 1;
        }
        free(a);
    }
    if (!band->exact) {
        double wd = vm->max - vm->min, ext = opt->jn_extend >= 0 ? opt->jn_extend : 1.0;
        span_lo = vm->min - ext * wd;
        span_hi = vm->max + ext * wd;
        double prev = span_lo, fprev;
        if ((s = jn_f(rc, &st, prev, &fprev)))
            goto done;
        for (size_t i = 1; i <= JN_SEARCH; i++) {
            double m = span_lo + (span_hi - span_lo) * (double)i / JN_SEARCH, fm;
            if ((s = jn_f(rc, &st, m, &fm)))
                goto done;
            if (isfinite(fprev) && isfinite(fm) && fm != 0 && (fprev > 0) != (fm > 0)) {
                double root;
                if (fprev == 0)
                    root = prev;
                else if ((s = jn_refine(rc, &st, prev, fprev, m, fm, &root)))
                    goto done;
                roots[nroots++] = root;
            }
            prev = m;
            fprev = fm;
        }
    }
    qsort(roots, nroots, sizeof *roots, cmp_root);
    for (size_t k = 0; k < nroots; k++) {
        bh_margin *m = add_row(r, &rc->cap);
        if (!m) {
            s = nomem(w->err);
            goto done;
        }
        m->type = BH_MARGIN_JN;
        m->term = bh_strdup(vx->name);
        gset g = {.g = gm, .value = roots[k], .level = NULL};
        m->at = setting_text(w, &g, 1);
        m->component = bh_strdup(band->component);
        if (!m->term || !m->at || !m->component) {
            s = nomem(w->err);
            goto done;
        }
        m->estimate = roots[k];
        m->std_error = m->statistic = m->p_value = m->conf_low = m->conf_high = NAN;
        m->in_range = roots[k] >= vm->min && roots[k] <= vm->max;
    }
    /* describe the regions of significance between the boundaries */
    {
        char desc[700] = "";
        size_t o = 0;
        double edges[JN_SEARCH + 4];
        size_t ne = 0;
        edges[ne++] = band->exact ? -INFINITY : span_lo;
        for (size_t k = 0; k < nroots; k++)
            edges[ne++] = roots[k];
        edges[ne++] = band->exact ? INFINITY : span_hi;
        int any = 0;
        for (size_t k = 0; k + 1 < ne && o < sizeof desc - 80; k++) {
            double a = edges[k], b = edges[k + 1], mid;
            if (isinf(a) && isinf(b))
                mid = vm->mean;
            else if (isinf(a))
                mid = b - fmax(1.0, fabs(b));
            else if (isinf(b))
                mid = a + fmax(1.0, fabs(a));
            else
                mid = 0.5 * (a + b);
            double fm;
            if (band->exact)
                fm = (qa * mid + qb) * mid + qc;
            else if ((s = jn_f(rc, &st, mid, &fm)))
                goto done;
            if (!(fm > 0))
                continue;
            char sa[40], sb[40];
            snprintf(sa, sizeof sa, "%.6g", a);
            snprintf(sb, sizeof sb, "%.6g", b);
            int r2 = isinf(a) && isinf(b)
                         ? snprintf(desc + o, sizeof desc - o, "%severywhere", any ? " and " : "")
                     : isinf(a) ? snprintf(desc + o, sizeof desc - o, "%s%s < %s", any ? " and " : "",
                                           vm->name, sb)
                     : isinf(b) ? snprintf(desc + o, sizeof desc - o, "%s%s > %s", any ? " and " : "",
                                           vm->name, sa)
                                : snprintf(desc + o, sizeof desc - o, "%s%s in [%s, %s]",
                                           any ? " and " : "", vm->name, sa, sb);
            if (r2 > 0)
                o += (size_t)r2 < sizeof desc - o ? (size_t)r2 : sizeof desc - o - 1;
            any = 1;
        }
        char range[160];
        snprintf(range, sizeof range, "observed %s range [%.6g, %.6g]", vm->name, vm->min, vm->max);
        char search[200] = "";
        if (!band->exact)
            snprintf(search, sizeof search, "; numeric search over [%.6g, %.6g]", span_lo, span_hi);
        s = add_note(r, w->err,
                     "Johnson-Neyman, effect of %s by %s%s%s: significant at the %g%% level "
                     "for %s (%s; %zu boundar%s, %s%s)",
                     vx->name, vm->name, *band->component ? " on " : "", band->component,
                     100 * w->mm->fit->level, any ? desc : "no value", range, nroots,
                     nroots == 1 ? "y" : "ies", band->exact ? "closed form" : "numeric", search);
    }
done:
    free(st.base);
    return s;
}

/* Cartesian product of --at settings: grid point g of ng. */
static void grid_point(gset *const *sets, const size_t *nsets, size_t nat, size_t g, gset *out)
{
    for (size_t a = nat; a-- > 0;) {
        out[a] = sets[a][g % nsets[a]];
        g /= nsets[a];
    }
}

bh_status bh_margins_compute(const bh_margins_model *mm, const bh_margins_options *opt,
                             bh_margins_result **out, bh_error *err)
{
    *out = NULL;
    bh_margins_options dflt;
    if (!opt) {
        bh_margins_default_options(&dflt);
        opt = &dflt;
    }
    ws_t w;
    bh_status s = ws_init(&w, mm, opt, err);
    bh_margins_result *r = calloc(1, sizeof *r);
    gset **sets = calloc(opt->nat ? opt->nat : 1, sizeof *sets);
    size_t *nsets = calloc(opt->nat ? opt->nat : 1, sizeof *nsets);
    gset *base = NULL, *means = NULL;
    opset *osa = NULL, *osb = NULL;
    size_t *dydx = NULL, ndydx = 0, *ia = NULL, *ib = NULL;
    runctx rc = {.w = &w, .r = r};
    rc.J = malloc((w.p ? w.p : 1) * sizeof *rc.J);
    if (!s && (!r || !sets || !nsets || !rc.J))
        s = nomem(err);
    if (s)
        goto done;
    const bh_fit *f = mm->fit;
    r->model = bh_strdup(f->name ? f->name : "(1)");
    r->formula = bh_strdup(f->formula ? f->formula : "");
    r->family = bh_strdup(f->family ? f->family : "gaussian");
    r->link = bh_strdup(f->link ? f->link : "identity");
    r->vcov_type = bh_strdup(f->vcov_type);
    if (!r->model || !r->formula || !r->family || !r->link || !r->vcov_type) {
        s = nomem(err);
        goto done;
    }
    r->level = f->level;
    r->df_inference = f->df_inference;
    r->nobs = f->nobs;
    double alpha2 = (1 - f->level) / 2;
    r->crit = isinf(f->df_inference) || !(f->df_inference > 0)
                  ? gsl_cdf_ugaussian_Qinv(alpha2)
                  : gsl_cdf_tdist_Qinv(alpha2, f->df_inference);
    rc.crit = r->crit;

    /* parse everything before computing anything */
    size_t ng = 1;
    for (size_t a = 0; a < opt->nat; a++) {
        if ((s = parse_at(&w, opt->at[a], &sets[a], &nsets[a])))
            goto done;
        for (size_t b = 0; b < a; b++)
            if (sets[b][0].g == sets[a][0].g) {
                s = bh_error_set(err, BH_EUSAGE, "--at sets '%s' twice",
                                 w.gv[sets[a][0].g].name);
                goto done;
            }
        ng *= nsets[a];
    }
    for (size_t i = 0; i < opt->ndydx; i++) {
        const char *list = opt->dydx[i];
        const char *p = list;
        for (;;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char *name = trimdup(p, len);
            if (!name) {
                s = nomem(err);
                goto done;
            }
            size_t g;
            if (*name) {
                s = resolve(&w, "dydx", name, &g);
                free(name);
                if (s)
                    goto done;
                size_t *nd = realloc(dydx, (ndydx + 1) * sizeof *nd);
                if (!nd) {
                    s = nomem(err);
                    goto done;
                }
                dydx = nd;
                int dup = 0;
                for (size_t k = 0; k < ndydx; k++)
                    dup |= dydx[k] == g;
                if (!dup)
                    dydx[ndydx++] = g;
            } else {
                free(name);
            }
            if (!e)
                break;
            p = e + 1;
        }
    }
    ia = malloc((opt->ninteraction ? opt->ninteraction : 1) * sizeof *ia);
    ib = malloc((opt->ninteraction ? opt->ninteraction : 1) * sizeof *ib);
    if (!ia || !ib) {
        s = nomem(err);
        goto done;
    }
    for (size_t i = 0; i < opt->ninteraction; i++)
        if ((s = split2(&w, "interaction", opt->interaction[i], &ia[i], &ib[i])))
            goto done;
    for (size_t i = 0; i < opt->njn; i++) {
        size_t a, b;
        if ((s = split2(&w, "jn", opt->jn[i], &a, &b)))
            goto done;
    }
    int nothing = opt->ndydx == 0 && !opt->predict && opt->ninteraction == 0 && opt->njn == 0;
    if (nothing) {
        /* Stata's dydx(*): every right-hand-side variable */
        dydx = malloc((w.ngv ? w.ngv : 1) * sizeof *dydx);
        if (!dydx) {
            s = nomem(err);
            goto done;
        }
        for (size_t g = 0; g < w.ngv; g++)
            dydx[ndydx++] = g;
    }

    /* with --atmeans: every numeric predictor at its mean (settings
     * from --at and difference operators take precedence) */
    size_t nmeans = 0;
    means = malloc((w.ngv ? w.ngv : 1) * sizeof *means);
    base = malloc((opt->nat + w.ngv + 1) * sizeof *base);
    osa = malloc(sizeof *osa);
    osb = malloc(sizeof *osb);
    if (!means || !base || !osa || !osb) {
        s = nomem(err);
        goto done;
    }
    if (opt->atmeans)
        for (size_t g = 0; g < w.ngv; g++)
            if (!w.gv[g].factor)
                means[nmeans++] = (gset){.g = g, .value = w.gv[g].mean, .level = NULL};

    for (size_t comp = 0; comp < w.C; comp++) {
        for (size_t gp = 0; gp < ng; gp++) {
            grid_point(sets, nsets, opt->nat, gp, base);
            char *at = setting_text(&w, base, opt->nat);
            if (!at) {
                s = nomem(err);
                goto done;
            }
            size_t nbase = opt->nat;
            for (size_t i = 0; i < nmeans; i++) {
                int set = 0;
                for (size_t a = 0; a < opt->nat; a++)
                    set |= base[a].g == means[i].g;
                if (!set)
                    base[nbase++] = means[i];
            }
            mstat st;
            memset(&st, 0, sizeof st);
            st.comp = comp;
            st.base = base;
            st.nbase = nbase;
            st.atmeans = opt->atmeans;
            bh_margin_type eff = opt->nat ? BH_MARGIN_SLOPE
                                 : opt->atmeans ? BH_MARGIN_MEM : BH_MARGIN_AME;
            for (size_t i = 0; i < ndydx && !s; i++) {
                if ((s = var_ops(&w, dydx[i], opt->discrete, osa)))
                    break;
                for (size_t l = 0; l < osa->nops && !s; l++) {
                    st.type = eff;
                    st.nop = 1;
                    st.op[0] = osa->op[l];
                    s = run_stat(&rc, &st, osa->label[l], at, 0);
                }
            }
            if (!s && opt->predict) {
                st.type = BH_MARGIN_PREDICTION;
                st.nop = 0;
                const bh_formula *fo = EQ(mm, 0)->terms->formula;
                s = run_stat(&rc, &st, fo->nlhs ? fo->lhs_labels[0] : "(prediction)", at, 0);
            }
            for (size_t i = 0; i < opt->ninteraction && !s; i++) {
                if ((s = var_ops(&w, ia[i], opt->discrete, osa)) ||
                    (s = var_ops(&w, ib[i], opt->discrete, osb)))
                    break;
                for (size_t la = 0; la < osa->nops && !s; la++)
                    for (size_t lb = 0; lb < osb->nops && !s; lb++) {
                        char term[330];
                        snprintf(term, sizeof term, "%s:%s", osa->label[la], osb->label[lb]);
                        st.type = BH_MARGIN_INTERACTION;
                        st.nop = 2;
                        st.op[0] = osa->op[la];
                        st.op[1] = osb->op[lb];
                        s = run_stat(&rc, &st, term, at, 1);
                    }
            }
            free(at);
            if (s)
                goto done;
        }
        for (size_t i = 0; i < opt->njn; i++)
            if ((s = run_jn(&rc, opt->jn[i], comp, means, nmeans)))
                goto done;
    }
    if (opt->atmeans)
        s = add_note(r, err, "At means: numeric predictors at their sample means, factors at "
                             "their sample proportions (averaged indicator columns, as Stata's "
                             "atmeans).");
    if (!s && mm->freq)
        s = add_note(r, err, "Averages weighted by the frequency weights.");
done:
    if (sets)
        for (size_t a = 0; a < opt->nat; a++)
            free(sets[a]);
    free(sets);
    free(nsets);
    free(base);
    free(means);
    free(osa);
    free(osb);
    free(dydx);
    free(ia);
    free(ib);
    free(rc.J);
    ws_free(&w);
    if (s) {
        bh_margins_result_free(r);
        return s;
    }
    *out = r;
    return BH_OK;
}
