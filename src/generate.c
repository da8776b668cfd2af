/* generate.c - synthetic data from a study's [dgp] sections (generate.h).
 *
 * Draw order (fixed, so a data set is a function of seed and index only):
 *   1. the group of every unit (inversion of the cumulative probabilities);
 *   2. each node in the spec's generation order (dependencies first, ties
 *      in file order), row by row: leads-level nodes first draw their
 *      random intercepts (one per unit, in unit order) when random_sd > 0;
 *   3. missing-value masks, node by node in file order, row by row.
 * Predictors enter linear predictors standardised with the sample mean and
 * SD of their level, so main effects are effects at the mean per SD.
 * Samplers: ran.h (ziggurat normals, Marsaglia-Tsang gammas, PTRS
 * Poisson), on one substream per node (draw). */
#include "blackhole/generate.h"

#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/atomicfile.h"
#include "blackhole/buf.h"
#include "blackhole/ran.h"

typedef struct {
    size_t cap;
    double *val;          /* complete values (var), composite (scale) */
    double *z;            /* standardised val */
    double **sub;         /* scale items / Dirichlet components */
    unsigned char **na;   /* missing masks: 1 (var) or nitems (scale) */
    size_t nsub, nna;
} nodebuf;

/* The parameters of a var node's distribution at one linear predictor
 * (var_params), as its sampler takes them (var_sample). */
typedef struct {
    double a, b;
} var_par;

struct bh_generate_workspace {
    const bh_study *s;
    bh_ran *rng;
    double *gcum;         /* cumulative group probabilities */
    size_t cap_reps, cap_leads;
    int *group;
    double *re;           /* random intercepts, one per unit */
    size_t *parent;       /* unit of each lead */
    size_t nreps, nleads;
    nodebuf *nb;
    double *alpha, *theta;
    long long *units;
    double *eta;          /* per row linear predictor (max of levels) */
    double *u;            /* uniforms drawn ahead (masks, Bernoulli), cap_eta */
    double *nz;           /* normals drawn ahead (scale nodes), cap_nz */
    size_t cap_nz;
    size_t cap_eta;
    unsigned char *used;  /* per node: a predictor of some node (needs z) */
    var_par *gpar;        /* per group: the parameters of a group-only var */
    int near;             /* the rounding mode is to nearest (round_fast) */
    char *idtext;
    const char **idptr;
    size_t cap_id, cap_idtext;
    /* refill_reps: the group levels present, sorted, and each group's code */
    const char **glev;
    int *grank;
};

void bh_generate_default_options(bh_generate_options *o)
{
    memset(o, 0, sizeof *o);
    o->effect_scale = 1.0;
}

static int grow_d(double **p, size_t n)
{
    double *np = realloc(*p, (n ? n : 1) * sizeof *np);
    if (!np)
        return 0;
    *p = np;
    return 1;
}

static int grow_u(unsigned char **p, size_t n)
{
    unsigned char *np = realloc(*p, n ? n : 1);
    if (!np)
        return 0;
    *p = np;
    return 1;
}

bh_generate_workspace *bh_generate_workspace_alloc(const bh_study *s)
{
    bh_generate_workspace *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->s = s;
    const bh_dgp *d = &s->dgp;
    w->rng = bh_ran_alloc();
    w->nb = calloc(d->nnodes ? d->nnodes : 1, sizeof *w->nb);
    size_t maxc = 2;
    for (size_t k = 0; k < d->nnodes; k++)
        if (d->nodes[k].ncomp > maxc)
            maxc = d->nodes[k].ncomp;
    w->alpha = calloc(maxc, sizeof *w->alpha);
    w->theta = calloc(maxc, sizeof *w->theta);
    w->units = calloc(maxc, sizeof *w->units);
    w->gcum = calloc(d->nlevels ? d->nlevels : 1, sizeof *w->gcum);
    for (size_t g = 0; w->gcum && g < d->nlevels; g++)
        w->gcum[g] = (g ? w->gcum[g - 1] : 0) + d->probs[g];
    w->glev = calloc(d->nlevels ? d->nlevels : 1, sizeof *w->glev);
    w->grank = calloc(d->nlevels ? d->nlevels : 1, sizeof *w->grank);
    w->gpar = calloc(d->nlevels ? d->nlevels : 1, sizeof *w->gpar);
    w->used = calloc(d->nnodes ? d->nnodes : 1, 1);
    if (!w->rng || !w->nb || !w->alpha || !w->theta || !w->units || !w->glev || !w->grank ||
        !w->gpar || !w->used || !w->gcum) {
        bh_generate_workspace_free(w);
        return NULL;
    }
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        nodebuf *b = &w->nb[k];
        b->nsub = x->kind == BH_DGP_SCALE ? x->nitems : x->kind == BH_DGP_DIRICHLET ? x->ncomp : 0;
        b->nna = x->kind == BH_DGP_SCALE ? x->nitems : x->kind == BH_DGP_VAR ? 1 : 0;
        b->sub = calloc(b->nsub ? b->nsub : 1, sizeof *b->sub);
        b->na = calloc(b->nna ? b->nna : 1, sizeof *b->na);
        if (!b->sub || !b->na) {
            bh_generate_workspace_free(w);
            return NULL;
        }
        /* nodes no linear predictor reads are not standardised */
        size_t neff = x->kind == BH_DGP_DIRICHLET ? x->ncomp : (x->effects ? 1 : 0);
        for (size_t f = 0; x->effects && f < neff; f++)
            for (size_t t = 0; t < x->effects[f].nterms; t++)
                for (size_t j = 0; j < x->effects[f].terms[t].nnode; j++)
                    w->used[x->effects[f].terms[t].node[j]] = 1;
    }
    return w;
}

void bh_generate_workspace_free(bh_generate_workspace *w)
{
    if (!w)
        return;
    bh_ran_free(w->rng);
    free(w->gcum);
    if (w->nb)
        for (size_t k = 0; k < w->s->dgp.nnodes; k++) {
            nodebuf *b = &w->nb[k];
            free(b->val);
            free(b->z);
            for (size_t j = 0; b->sub && j < b->nsub; j++)
                free(b->sub[j]);
            for (size_t j = 0; b->na && j < b->nna; j++)
                free(b->na[j]);
            free(b->sub);
            free(b->na);
        }
    free(w->nb);
    free(w->group);
    free(w->re);
    free(w->parent);
    free(w->alpha);
    free(w->theta);
    free(w->units);
    free(w->eta);
    free(w->u);
    free(w->nz);
    free(w->used);
    free(w->gpar);
    free(w->idtext);
    free(w->idptr);
    free(w->glev);
    free(w->grank);
    free(w);
}

/* Make node k's buffers hold n rows. */
static int node_reserve(nodebuf *b, size_t n)
{
    if (b->cap >= n)
        return 1;
    size_t nc = n + n / 4 + 16;
    if (!grow_d(&b->val, nc) || !grow_d(&b->z, nc))
        return 0;
    for (size_t j = 0; j < b->nsub; j++)
        if (!grow_d(&b->sub[j], nc))
            return 0;
    for (size_t j = 0; j < b->nna; j++)
        if (!grow_u(&b->na[j], nc))
            return 0;
    b->cap = nc;
    return 1;
}

/* Room for n rows in the per-row scratch (linear predictor, uniforms). */
static int reserve_eta(bh_generate_workspace *w, size_t n)
{
    if (n <= w->cap_eta)
        return 1;
    /* room for more: the lead count is drawn */
    size_t nc = n + n / 4 + 16;
    if (!grow_d(&w->eta, nc) || !grow_d(&w->u, nc))
        return 0;
    w->cap_eta = nc;
    return 1;
}

static int grow_normals(bh_generate_workspace *w, size_t n)
{
    if (n <= w->cap_nz)
        return 1;
    if (!grow_d(&w->nz, n))
        return 0;
    w->cap_nz = n;
    return 1;
}

/* round(x) when the rounding mode is to nearest (near != 0), without the
 * library call; round(x) otherwise.  From 2^52 on every double is an
 * integer (NaN and the infinities are returned as they are, as by round).
 * Below, a = |x| plus 2^52 lands where doubles are the integers, so the
 * sum rounds a to the nearest integer r, ties to even, and subtracting
 * 2^52 again is exact; a - r is exact (r = 0, or r and a within a factor
 * 2: Sterbenz) and is +1/2 exactly when a tie went down, which round()
 * takes up.  copysign gives the sign, also of a zero (round(-0.3) is
 * -0.0).  No branch on the value: halves are a coin toss for a branch
 * predictor, and conversions to integers are slower here than adds. */
static double round_fast(double x, int near)
{
    double a = fabs(x);
    if (!(a < 0x1.0p52))
        return x;
    if (!near)
        return round(x);
    double r = (a + 0x1.0p52) - 0x1.0p52;
    r += a - r >= 0.5 ? 1.0 : 0.0;  /* a - r <= 1/2: ">=" is "==", branch-free */
    return copysign(r, x);
}

double bh_generate_round(double x)
{
    return round_fast(x, fegetround() == FE_TONEAREST);
}

/* llround(v), without the library call where the result fits. */
static long long round_ll(double v, int near)
{
    return fabs(v) < 0x1.0p62 ? (long long)round_fast(v, near) : llround(v);
}

static double round_to(double x, int digits, int near)
{
    /* 10^k for k <= 22 is exact in double: the same values pow gives,
     * without a pow call per drawn value */
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (digits < 0)
        return x;
    double f = digits <= 22 ? p10[digits] : pow(10.0, digits);
    return round_fast(x * f, near) / f;
}

static double clamp(double x, double lo, double hi)
{
    if (!isnan(lo) && x < lo)
        x = lo;
    if (!isnan(hi) && x > hi)
        x = hi;
    return x;
}

/* z = (x - m) / sd with m the mean of x and sd the sample SD (n - 1);
 * z = 0 when sd = 0. */
static void standardise(const double *x, double *z, size_t n)
{
    double m = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        m += x[i];
    m = n ? m / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    double sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
    if (sd > 0)
        for (size_t i = 0; i < n; i++)
            z[i] = (x[i] - m) / sd;
    else
        for (size_t i = 0; i < n; i++)
            z[i] = 0;
}

/* The intercept plus group shift of effects e for group g: the start of
 * every row's linear predictor. */
static double eta_base(const bh_dgp_effects *e, int g)
{
    if (!e || !e->present)
        return 0;
    double v = e->intercept;
    if (e->group)
        v += e->group[g];
    return v;
}

/* Linear predictor of effects e for rows of level lv (n rows): the
 * intercept, plus the group shift, plus each term (coef * scale times its
 * predictors' z in order) in term order.  Built term by term over all rows,
 * so each row sees the same operations in the same order as when summed
 * row by row. */
static void linear_predictor(const bh_generate_workspace *w, const bh_dgp_effects *e,
                             bh_study_level lv, size_t n, double scale, double *eta)
{
    const bh_dgp *d = &w->s->dgp;
    const size_t *par = lv == BH_LEVEL_LEADS ? w->parent : NULL;
    const int *grp = w->group;
    if (!e || !e->present) {
        for (size_t i = 0; i < n; i++)
            eta[i] = 0;
        return;
    }
    if (e->group && par)
        for (size_t i = 0; i < n; i++)
            eta[i] = e->intercept + e->group[grp[par[i]]];
    else if (e->group)
        for (size_t i = 0; i < n; i++)
            eta[i] = e->intercept + e->group[grp[i]];
    else
        for (size_t i = 0; i < n; i++)
            eta[i] = e->intercept;
    for (size_t t = 0; t < e->nterms; t++) {
        const bh_dgp_term *tm = &e->terms[t];
        double c = tm->coef * scale;
        /* each predictor's row: i (rows of its level: ix NULL) or the unit */
        const double *z0 = tm->nnode > 0 ? w->nb[tm->node[0]].z : NULL;
        const double *z1 = tm->nnode > 1 ? w->nb[tm->node[1]].z : NULL;
        const size_t *ix0 = par && tm->nnode > 0 && d->nodes[tm->node[0]].data != BH_LEVEL_LEADS
                                ? par : NULL;
        const size_t *ix1 = par && tm->nnode > 1 && d->nodes[tm->node[1]].data != BH_LEVEL_LEADS
                                ? par : NULL;
        if (tm->nnode == 1 && !ix0) {
            for (size_t i = 0; i < n; i++)
                eta[i] += c * z0[i];
        } else if (tm->nnode == 1) {
            for (size_t i = 0; i < n; i++)
                eta[i] += c * z0[ix0[i]];
        } else if (tm->nnode == 2 && !ix0 && !ix1) {
            for (size_t i = 0; i < n; i++)
                eta[i] += c * z0[i] * z1[i];
        } else if (tm->nnode == 2) {
            for (size_t i = 0; i < n; i++)
                eta[i] += c * z0[ix0 ? ix0[i] : i] * z1[ix1 ? ix1[i] : i];
        } else {
            for (size_t i = 0; i < n; i++) {
                size_t unit = par ? par[i] : i;
                double p = c;
                for (size_t j = 0; j < tm->nnode; j++) {
                    size_t nd = tm->node[j];
                    p *= w->nb[nd].z[d->nodes[nd].data == BH_LEVEL_LEADS ? i : unit];
                }
                eta[i] += p;
            }
        }
    }
}

/* A var node's distribution parameters at linear predictor eta. */
static var_par var_params(const bh_dgp_node *x, double eta)
{
    var_par p = {0, 0};
    double m;
    switch (x->dist) {
    case BH_DGP_NORMAL:
        p.a = x->mean + eta;
        p.b = x->sd;
        break;
    case BH_DGP_LOGNORMAL: {
        double s2 = log1p((x->sd / x->mean) * (x->sd / x->mean));
        m = x->mean * exp(eta);
        p.a = log(m) - s2 / 2;
        p.b = sqrt(s2);
        break;
    }
    case BH_DGP_GAMMA: {
        double shape = (x->mean / x->sd) * (x->mean / x->sd);
        m = x->mean * exp(eta);
        p.a = shape;
        p.b = m / shape;
        break;
    }
    case BH_DGP_POISSON:
        p.a = x->mean * exp(eta);
        break;
    case BH_DGP_NEGBIN:
        p.a = x->mean * exp(eta);
        p.b = x->size;
        break;
    case BH_DGP_BERNOULLI:
        /* two-branch logistic: no overflow for large |eta| */
        p.a = eta >= 0 ? 1 / (1 + exp(-eta)) : exp(eta) / (1 + exp(eta));
        break;
    }
    return p;
}

/* One draw of a var node with parameters p; gs: the constants of the
 * node's gamma shape (gamma: its shape, negbin: its size), which does not
 * vary by row.  (gen_var draws Bernoulli outcomes from uniforms drawn
 * ahead instead: the same draws.) */
static double var_sample(bh_ran *r, const bh_dgp_node *x, var_par p,
                         const bh_ran_gamma_shape *gs)
{
    switch (x->dist) {
    case BH_DGP_NORMAL:
        return p.a + p.b * bh_ran_normal(r);
    case BH_DGP_LOGNORMAL:
        return exp(p.a + p.b * bh_ran_normal(r));
    case BH_DGP_GAMMA:
        return p.b * bh_ran_gamma_std(r, gs);
    case BH_DGP_POISSON:
        return bh_ran_poisson(r, p.a);
    case BH_DGP_NEGBIN:  /* gamma-Poisson mixture with mean p.a */
        return p.a > 0 ? bh_ran_poisson(r, bh_ran_gamma_std(r, gs) * (p.a / p.b)) : 0;
    case BH_DGP_BERNOULLI:
        return bh_ran_uniform(r) < p.a ? 1.0 : 0.0;
    }
    return NAN;
}

static void gen_var(bh_generate_workspace *w, const bh_dgp_node *x, nodebuf *b, size_t n,
                    double scale)
{
    const bh_dgp_effects *e = x->effects;
    const size_t *par = x->data == BH_LEVEL_LEADS ? w->parent : NULL;
    bh_ran *r = w->rng;
    int bern = x->dist == BH_DGP_BERNOULLI;
    bh_ran_gamma_shape gs = {0, 0, 0};
    if (x->dist == BH_DGP_GAMMA)
        bh_ran_gamma_shape_set(&gs, (x->mean / x->sd) * (x->mean / x->sd));
    else if (x->dist == BH_DGP_NEGBIN)
        bh_ran_gamma_shape_set(&gs, x->size);
    if (!(x->random_sd > 0) && (!e || !e->present || e->nterms == 0)) {
        /* The linear predictor is the group's shift: parameters (and their
         * exp and log) once per group instead of once per row. */
        for (size_t g = 0; g < w->s->dgp.nlevels; g++)
            w->gpar[g] = var_params(x, eta_base(e, (int)g));
        if (bern)  /* one uniform per row and nothing else: drawn ahead */
            bh_ran_uniform_fill(r, w->u, n);
        for (size_t i = 0; i < n; i++) {
            var_par p = w->gpar[w->group[par ? par[i] : i]];
            double v = bern ? (w->u[i] < p.a ? 1.0 : 0.0) : var_sample(r, x, p, &gs);
            b->val[i] = clamp(round_to(v, x->digits, w->near), x->min, x->max);
        }
        return;
    }
    double *eta = w->eta;
    linear_predictor(w, e, x->data, n, scale, eta);
    if (x->random_sd > 0) {
        for (size_t u = 0; u < w->nreps; u++)
            w->re[u] = x->random_sd * bh_ran_normal(r);
        for (size_t i = 0; i < n; i++)
            eta[i] += w->re[w->parent[i]];
    }
    if (bern)
        bh_ran_uniform_fill(r, w->u, n);
    for (size_t i = 0; i < n; i++) {
        var_par p = var_params(x, eta[i]);
        double v = bern ? (w->u[i] < p.a ? 1.0 : 0.0) : var_sample(r, x, p, &gs);
        b->val[i] = clamp(round_to(v, x->digits, w->near), x->min, x->max);
    }
}

static bh_status gen_node(bh_generate_workspace *w, size_t k, double scale, bh_error *err)
{
    const bh_dgp *d = &w->s->dgp;
    const bh_dgp_node *x = &d->nodes[k];
    nodebuf *b = &w->nb[k];
    size_t n = x->data == BH_LEVEL_LEADS ? w->nleads : w->nreps;
    if (!node_reserve(b, n))
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_ran *r = w->rng;
    double *eta = w->eta;
    switch (x->kind) {
    case BH_DGP_VAR:
        gen_var(w, x, b, n, scale);
        break;
    case BH_DGP_SCALE: {
        linear_predictor(w, x->effects, x->data, n, scale, eta);
        const double hi = (double)x->points, mu = x->item_mean, ld = x->loading;
        const double nsd = x->noise_sd, k = (double)x->nitems;
        const size_t ni = x->nitems;
        double **sub = b->sub, *val = b->val;
        const int near = w->near;
        /* per row: the latent's normal, then one per item, drawn ahead */
        if (!grow_normals(w, n * (ni + 1)))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        const double *z = w->nz;
        bh_ran_normal_fill(r, w->nz, n * (ni + 1));
        for (size_t i = 0; i < n; i++, z += ni + 1) {
            double base = mu + ld * (eta[i] + z[0]);
            double sum = 0;
            for (size_t j = 0; j < ni; j++) {
                double v = clamp(round_fast(base + nsd * z[j + 1], near), 1, hi);
                sub[j][i] = v;
                sum += v;
            }
            val[i] = sum / k;
        }
        break;
    }
    case BH_DGP_DIRICHLET: {
        /* eta per component, then mu by softmax (max subtracted) */
        for (size_t j = 0; j < x->ncomp; j++) {
            if (j == x->reference) {
                for (size_t i = 0; i < n; i++)
                    b->sub[j][i] = 0;
                continue;
            }
            linear_predictor(w, &x->effects[j], x->data, n, scale, b->sub[j]);
        }
        long long U = 1;
        for (int q = 0; q < x->digits; q++)
            U *= 10;
        for (size_t i = 0; i < n; i++) {
            double mx = -HUGE_VAL, sum = 0;
            for (size_t j = 0; j < x->ncomp; j++)
                if (b->sub[j][i] > mx)
                    mx = b->sub[j][i];
            for (size_t j = 0; j < x->ncomp; j++) {
                w->alpha[j] = exp(b->sub[j][i] - mx);
                sum += w->alpha[j];
            }
            for (size_t j = 0; j < x->ncomp; j++)
                w->alpha[j] = x->precision * w->alpha[j] / sum;
            bh_ran_dirichlet(r, x->ncomp, w->alpha, w->theta);
            /* Written shares: whole units of 10^-digits, each at least one
             * unit, summing exactly to 10^digits (the largest absorbs the
             * rounding), so they sum to one at the written precision and
             * lie in (0, 1). */
            long long tot = 0;
            size_t big = 0;
            for (size_t j = 0; j < x->ncomp; j++) {
                long long u = round_ll(w->theta[j] * (double)U, w->near);
                if (u < 1)
                    u = 1;
                w->units[j] = u;
                tot += u;
                if (u > w->units[big])
                    big = j;
            }
            w->units[big] += U - tot;
            if (w->units[big] < 1)
                return bh_error_set(err, BH_EINTERNAL,
                                    "[dgp dirichlet %s]: %zu components cannot each get a "
                                    "share of at least 10^-%d", x->name, x->ncomp, x->digits);
            for (size_t j = 0; j < x->ncomp; j++)
                b->sub[j][i] = (double)w->units[j] / (double)U;
        }
        return BH_OK;  /* components are not predictors: no z */
    }
    }
    if (w->used[k])
        standardise(b->val, b->z, n);
    return BH_OK;
}

static bh_status setup_leads(bh_generate_workspace *w, bh_error *err)
{
    const bh_dgp *d = &w->s->dgp;
    const double *cnt = w->nb[d->leads_count_node].val;
    size_t tot = 0;
    for (size_t u = 0; u < w->nreps; u++) {
        if (!(cnt[u] >= 0) || cnt[u] > 1e6)
            return bh_error_set(err, BH_EUSAGE, "[dgp] leads_count %s = %g for unit %zu",
                                d->leads_count, cnt[u], u + 1);
        tot += (size_t)cnt[u];
    }
    if (tot > w->cap_leads) {
        size_t nc = tot + tot / 4 + 16;
        size_t *np = realloc(w->parent, nc * sizeof *np);
        if (!np)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        w->parent = np;
        w->cap_leads = nc;
    }
    size_t i = 0;
    for (size_t u = 0; u < w->nreps; u++)
        for (size_t c = 0; c < (size_t)cnt[u]; c++)
            w->parent[i++] = u;
    w->nleads = tot;
    if (!reserve_eta(w, tot))
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    return BH_OK;
}

/* PREFIX + v zero-padded to width digits (room: strlen(prefix) + width + 1). */
static void format_id(char *dst, const char *prefix, int width, size_t v)
{
    size_t plen = strlen(prefix);
    memcpy(dst, prefix, plen);
    for (int q = width - 1; q >= 0; q--, v /= 10)
        dst[plen + (size_t)q] = (char)('0' + v % 10);
    dst[plen + (size_t)width] = '\0';
}

/* Ids PREFIX + zero-padded number, width of the largest. */
static bh_status make_ids(bh_generate_workspace *w, const char *prefix, size_t n, bh_error *err)
{
    int width = snprintf(NULL, 0, "%zu", n);
    size_t each = strlen(prefix) + (size_t)width + 1;
    if (n > w->cap_id) {
        const char **np = realloc(w->idptr, n * sizeof *np);
        if (!np)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        w->idptr = np;
        w->cap_id = n;
    }
    if (n * each > w->cap_idtext) {
        char *nt = realloc(w->idtext, n * each);
        if (!nt)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        w->idtext = nt;
        w->cap_idtext = n * each;
    }
    for (size_t i = 0; i < n; i++) {
        char *p = w->idtext + i * each;
        format_id(p, prefix, width, i + 1);
        w->idptr[i] = p;
    }
    return BH_OK;
}

/* Hand a column built here to the frame, or free it when building it ran
 * out of memory (its levels array is calloc'ed: unused entries are NULL). */
static bh_status adopt_or_drop(bh_frame *f, bh_column *c, int ok, bh_error *err)
{
    if (ok)
        return bh_frame_adopt(f, c, err);
    for (size_t l = 0; c->levels && l < c->nlevels; l++)
        free(c->levels[l]);
    free(c->levels);
    free(c->code);
    free(c->na);
    free(c->name);
    return bh_error_set(err, BH_ENOMEM, "out of memory");
}

/* An empty categorical column of n rows with room for maxlev levels
 * (codes and levels to fill); 0 when out of memory (adopt_or_drop frees
 * what was allocated). */
static int cat_column(bh_column *c, const char *name, size_t n, size_t maxlev)
{
    memset(c, 0, sizeof *c);
    c->type = BH_COL_CATEGORICAL;
    c->n = n;
    c->name = strdup(name);
    c->na = calloc(n ? n : 1, 1);
    c->code = malloc((n ? n : 1) * sizeof *c->code);
    c->levels = calloc(maxlev ? maxlev : 1, sizeof *c->levels);
    return c->name && c->na && c->code && c->levels;
}

/* Column `name` of ids PREFIX + zero-padded 1..n, built directly: the ids
 * are distinct and, sharing a prefix and a width, already in the frame's
 * level order (see frame.h), so level k is row k and nothing is sorted. */
static bh_status add_ids(bh_frame *f, const char *name, const char *prefix, size_t n,
                         bh_error *err)
{
    int width = snprintf(NULL, 0, "%zu", n);
    size_t each = strlen(prefix) + (size_t)width + 1;
    bh_column c;
    int ok = cat_column(&c, name, n, n);
    c.nlevels = n; /* levels not yet made are NULL, which frees */
    for (size_t i = 0; ok && i < n; i++) {
        if (!(c.levels[i] = malloc(each))) {
            ok = 0;
            break;
        }
        format_id(c.levels[i], prefix, width, i + 1);
        c.code[i] = (int)i;
    }
    return adopt_or_drop(f, &c, ok, err);
}

/* Column `name` of each lead's unit id (make_ids text), built directly: the
 * column bh_frame_add_categorical makes from those strings, without
 * sorting n of them.  The levels are the ids of the units with leads, in
 * unit order, which is their frame order (one prefix, one width: see
 * add_ids); leads come unit by unit, so a lead's code is the number of
 * units with leads before its own. */
static bh_status add_unit_ids(bh_generate_workspace *w, bh_frame *f, const char *name,
                              size_t n, bh_error *err)
{
    bh_column c;
    int ok = cat_column(&c, name, n, w->nreps);
    for (size_t i = 0; ok && i < n; i++) {
        size_t u = w->parent[i];
        if (i == 0 || u != w->parent[i - 1]) {
            if (!(c.levels[c.nlevels] = strdup(w->idptr[u]))) {
                ok = 0;
                break;
            }
            c.nlevels++;
        }
        c.code[i] = (int)c.nlevels - 1;
    }
    return adopt_or_drop(f, &c, ok, err);
}

static bh_status add_group(bh_generate_workspace *w, bh_frame *f, const char *name, size_t n,
                           int leads, bh_error *err)
{
    /* Built directly from the group numbers: the levels present, sorted as
     * the frame sorts levels (few of them), and each row's code; the same
     * column bh_frame_add_categorical makes from the strings, without
     * sorting n strings. */
    const bh_dgp *d = &w->s->dgp;
    size_t G = d->nlevels;
    bh_column c;
    int ok = cat_column(&c, name, n, G);
    int *rank = calloc(G ? G : 1, sizeof *rank);
    ok = ok && rank;
    for (size_t i = 0; ok && i < n; i++)
        rank[w->group[leads ? w->parent[i] : i]] = 1;
    /* present levels in sorted order: insertion sort of at most G names */
    for (size_t g = 0; ok && g < G; g++) {
        if (!rank[g])
            continue;
        size_t at = c.nlevels;
        while (at > 0 && bh_level_cmp(c.levels[at - 1], d->levels[g]) > 0) {
            c.levels[at] = c.levels[at - 1];
            at--;
        }
        c.levels[at] = d->levels[g];  /* borrowed until copied below */
        c.nlevels++;
    }
    for (size_t l = 0; ok && l < c.nlevels; l++)
        for (size_t g = 0; g < G; g++)
            if (c.levels[l] == d->levels[g])
                rank[g] = (int)l;
    for (size_t i = 0; ok && i < n; i++)
        c.code[i] = rank[w->group[leads ? w->parent[i] : i]];
    for (size_t l = 0; ok && l < c.nlevels; l++)
        c.levels[l] = strdup(c.levels[l]);
    for (size_t l = 0; ok && l < c.nlevels; l++)
        ok = c.levels[l] != NULL;
    free(rank);
    return adopt_or_drop(f, &c, ok, err);
}

/* Column values of a unit-level name as written (with missing), expanded
 * to leads when leads != 0.  Scale composites: mean of the written items
 * (as `describe --scale` scores them). */
static bh_status unit_column(bh_generate_workspace *w, const char *name, int leads,
                             double *out, unsigned char *na, bh_error *err)
{
    const bh_dgp *d = &w->s->dgp;
    size_t n = leads ? w->nleads : w->nreps;
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        const nodebuf *b = &w->nb[k];
        if (x->data != BH_LEVEL_REPS)
            continue;
        const double *src = NULL;
        const unsigned char *msk = NULL;
        if (x->kind == BH_DGP_VAR && strcmp(x->name, name) == 0) {
            src = b->val;
            msk = b->na[0];
        }
        for (size_t j = 0; j < x->nitems; j++)
            if (strcmp(x->items[j], name) == 0) {
                src = b->sub[j];
                msk = b->na[j];
            }
        for (size_t j = 0; j < x->ncomp; j++)
            if (strcmp(x->components[j], name) == 0)
                src = b->sub[j];
        if (src) {
            for (size_t i = 0; i < n; i++) {
                size_t u = leads ? w->parent[i] : i;
                na[i] = msk ? msk[u] : 0;
                out[i] = na[i] ? NAN : src[u];
            }
            return BH_OK;
        }
        if (x->kind == BH_DGP_SCALE && strcmp(x->name, name) == 0) {
            for (size_t i = 0; i < n; i++) {
                size_t u = leads ? w->parent[i] : i;
                double s = 0;
                size_t c = 0;
                for (size_t j = 0; j < x->nitems; j++)
                    if (!b->na[j][u]) {
                        s += b->sub[j][u];
                        c++;
                    }
                na[i] = c == 0;
                out[i] = c ? s / (double)c : NAN;
            }
            return BH_OK;
        }
    }
    return bh_error_set(err, BH_EINTERNAL, "no unit-level column '%s'", name);
}

static bh_status add_num(bh_frame *f, const bh_study *s, const char *spec_name,
                         const double *v, const unsigned char *na, size_t n,
                         double *tmp, bh_error *err)
{
    /* values at missing positions are NAN, as frame.h expects */
    for (size_t i = 0; i < n; i++)
        tmp[i] = na && na[i] ? NAN : v[i];
    return bh_frame_add_numeric(f, bh_study_column(s, spec_name), tmp, na, err);
}

static bh_status build_reps(bh_generate_workspace *w, bh_frame **out, bh_error *err)
{
    const bh_study *s = w->s;
    const bh_dgp *d = &s->dgp;
    size_t n = w->nreps;
    bh_frame *f = bh_frame_new(s->reps, n);
    if (!f)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_status r = add_ids(f, bh_study_column(s, d->id), d->id_prefix, n, err);
    if (r == BH_OK)
        r = add_group(w, f, bh_study_column(s, d->group), n, 0, err);
    for (size_t k = 0; r == BH_OK && k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        const nodebuf *b = &w->nb[k];
        if (x->data != BH_LEVEL_REPS)
            continue;
        if (x->kind == BH_DGP_VAR)
            r = add_num(f, s, x->name, b->val, b->na[0], n, w->eta, err);
        for (size_t j = 0; r == BH_OK && j < x->nitems; j++)
            r = add_num(f, s, x->items[j], b->sub[j], b->na[j], n, w->eta, err);
        for (size_t j = 0; r == BH_OK && j < x->ncomp; j++)
            r = add_num(f, s, x->components[j], b->sub[j], NULL, n, w->eta, err);
    }
    if (r != BH_OK) {
        bh_frame_free(f);
        return r;
    }
    *out = f;
    return BH_OK;
}

/* Overwrite numeric column c with v (missing where na[i], or where v is
 * NAN when na is NULL): the values bh_frame_add_numeric stores, as add_num
 * gives them to it. */
static void refill_num(bh_column *c, const double *v, const unsigned char *na, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char miss = na ? (na[i] != 0) : (unsigned char)isnan(v[i]);
        c->na[i] = miss;
        c->num[i] = miss ? NAN : v[i];
    }
}

/* Node x's columns of f, from column j on, overwritten with its values
 * (b); the column after them. */
static size_t refill_node(bh_frame *f, size_t j, const bh_dgp_node *x, const nodebuf *b,
                          size_t n)
{
    if (x->kind == BH_DGP_VAR)
        refill_num(&f->cols[j++], b->val, b->na[0], n);
    for (size_t q = 0; q < x->nitems; q++)
        refill_num(&f->cols[j++], b->sub[q], b->na[q], n);
    for (size_t q = 0; q < x->ncomp; q++)
        refill_num(&f->cols[j++], b->sub[q], NULL, n);
    return j;
}

size_t bh_generate_ncol(const bh_study *s, bh_study_level level)
{
    const bh_dgp *d = &s->dgp;
    if (!d->present || (level == BH_LEVEL_LEADS && !d->leads_count))
        return 0;
    /* ids and groups, then (leads) the unit ids and the copied columns,
     * then the nodes' columns: build_reps and build_leads */
    size_t j = level == BH_LEVEL_LEADS ? 3 + d->nlead_copy : 2;
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        if (x->data == level)
            j += (x->kind == BH_DGP_VAR) + x->nitems + x->ncomp;
    }
    return j;
}

/* Whether f has the columns build_reps makes for n units (names aside:
 * the caller may have renamed them), in its order and of its types. */
static int reps_shape(const bh_generate_workspace *w, const bh_frame *f, size_t n)
{
    const bh_dgp *d = &w->s->dgp;
    if (f->nrow != n || f->ncol < 2 || f->cols[0].type != BH_COL_CATEGORICAL ||
        f->cols[0].nlevels != n || f->cols[1].type != BH_COL_CATEGORICAL)
        return 0;
    size_t j = 2;
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        if (x->data != BH_LEVEL_REPS)
            continue;
        size_t cnt = (x->kind == BH_DGP_VAR) + x->nitems + x->ncomp;
        for (size_t q = 0; q < cnt; q++, j++)
            if (j >= f->ncol || f->cols[j].type != BH_COL_NUMERIC || f->cols[j].n != n ||
                !f->cols[j].num || !f->cols[j].na)
                return 0;
    }
    return j <= f->ncol && f->cols[0].n == n && f->cols[1].n == n && f->cols[1].code &&
           f->cols[1].na;
}

/* The group levels present among n rows (units, or leads through
 * parent), sorted as add_group sorts them, into w->glev (w->grank marks
 * them); their count. */
static size_t present_levels(bh_generate_workspace *w, size_t n, const size_t *parent)
{
    const bh_dgp *d = &w->s->dgp;
    for (size_t g = 0; g < d->nlevels; g++)
        w->grank[g] = 0;
    for (size_t i = 0; i < n; i++)
        w->grank[w->group[parent ? parent[i] : i]] = 1;
    size_t nl = 0;
    for (size_t g = 0; g < d->nlevels; g++) {
        if (!w->grank[g])
            continue;
        size_t at = nl;
        while (at > 0 && bh_level_cmp(w->glev[at - 1], d->levels[g]) > 0) {
            w->glev[at] = w->glev[at - 1];
            at--;
        }
        w->glev[at] = d->levels[g];
        nl++;
    }
    return nl;
}

/* Write the drawn data set into f, a frame of build_reps's shape for the
 * same n (reps_shape): the ids are those of any data set of n units; the
 * group column keeps its levels when the same groups are present (else 0
 * is returned and nothing was changed: the caller builds a new frame);
 * numeric columns are overwritten.  Columns after the generated ones are
 * dropped unless keep.  The frame ends up equal to the one build_reps
 * would make, except for names the caller changed (and kept columns). */
static int refill_reps(bh_generate_workspace *w, bh_frame *f, int keep)
{
    const bh_dgp *d = &w->s->dgp;
    size_t n = w->nreps, G = d->nlevels;
    /* the present levels in frame order, as add_group finds them */
    size_t nl = present_levels(w, n, NULL);
    bh_column *gc = &f->cols[1];
    if (gc->nlevels != nl)
        return 0;
    for (size_t l = 0; l < nl; l++)
        if (strcmp(gc->levels[l], w->glev[l]) != 0)
            return 0;
    for (size_t l = 0; l < nl; l++)
        for (size_t g = 0; g < G; g++)
            if (w->glev[l] == d->levels[g])
                w->grank[g] = (int)l;
    for (size_t i = 0; i < n; i++)
        gc->code[i] = w->grank[w->group[i]];
    memset(gc->na, 0, n);
    size_t j = 2;
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        const nodebuf *b = &w->nb[k];
        if (x->data != BH_LEVEL_REPS)
            continue;
        j = refill_node(f, j, x, b, n);
    }
    if (!keep)
        bh_frame_drop_columns(f, j);
    return 1;
}

/* ---- the lead-level frame refilled in place ----
 *
 * Its row count is drawn, so its columns keep memory for more rows than
 * they hold (bh_column.cap, levels_cap, level_room): a refill grows them
 * when a data set is larger than any before (with room to spare) and
 * otherwise writes every value, code and level string where the last data
 * set had its own.  The frame is the one build_leads makes for this data
 * set, names aside. */

/* Room for n rows in column c (contents not kept); c->n becomes n. */
static int col_rows(bh_column *c, size_t n)
{
    size_t have = c->cap > c->n ? c->cap : c->n;
    if (n > have) {
        size_t nc = n + n / 8 + 16;
        unsigned char *na = realloc(c->na, nc);
        if (!na)
            return 0;
        c->na = na;
        if (c->type == BH_COL_NUMERIC) {
            double *v = realloc(c->num, nc * sizeof *v);
            if (!v)
                return 0;
            c->num = v;
        } else {
            int *v = realloc(c->code, nc * sizeof *v);
            if (!v)
                return 0;
            c->code = v;
        }
        have = nc;
    }
    c->cap = have;
    c->n = n;
    return 1;
}

/* Level strings 0..nl-1 of c allocated with room for room - 1
 * characters, written in place afterwards (bh_reserve_strings). */
static int col_levels(bh_column *c, size_t nl, size_t room)
{
    size_t have = c->levels_cap > c->nlevels ? c->levels_cap : c->nlevels;
    if (!bh_reserve_strings(&c->levels, &have, &c->level_room, nl, room))
        return 0;
    c->levels_cap = have;
    return 1;
}

/* Whether f has the columns build_leads makes (names aside), in its order
 * and of its types, and (keep) only numeric columns after them. */
static int leads_shape(const bh_generate_workspace *w, const bh_frame *f, int keep)
{
    size_t nc = bh_generate_ncol(w->s, BH_LEVEL_LEADS);
    if (nc < 3 || f->ncol < nc)
        return 0;
    for (size_t j = 0; j < f->ncol; j++) {
        const bh_column *c = &f->cols[j];
        if (j >= nc && !keep)
            break;
        int cat = j < 3;
        if (c->n != f->nrow || !c->na || c->type != (cat ? BH_COL_CATEGORICAL : BH_COL_NUMERIC) ||
            (cat ? !c->code || !c->levels : !c->num))
            return 0;
    }
    return 1;
}

/* Column c: ids PREFIX + zero-padded 1..n (add_ids's column). */
static int refill_ids(bh_column *c, const char *prefix, size_t n)
{
    int width = snprintf(NULL, 0, "%zu", n);
    if (!col_rows(c, n) || !col_levels(c, n, strlen(prefix) + (size_t)width + 1))
        return 0;
    for (size_t i = 0; i < n; i++) {
        format_id(c->levels[i], prefix, width, i + 1);
        c->code[i] = (int)i;
    }
    memset(c->na, 0, n);
    c->nlevels = n;
    return 1;
}

/* Column c: each lead's unit id (add_unit_ids's column); make_ids has run. */
static int refill_unit_ids(bh_generate_workspace *w, bh_column *c, size_t n)
{
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        nl += i == 0 || w->parent[i] != w->parent[i - 1];
    size_t room = w->nreps ? strlen(w->idptr[0]) + 1 : 1;  /* one width */
    if (!col_rows(c, n) || !col_levels(c, nl, room))
        return 0;
    size_t l = 0;
    for (size_t i = 0; i < n; i++) {
        size_t u = w->parent[i];
        if (i == 0 || u != w->parent[i - 1])
            strcpy(c->levels[l++], w->idptr[u]);
        c->code[i] = (int)l - 1;
    }
    memset(c->na, 0, n);
    c->nlevels = nl;
    return 1;
}

/* Column c: the group of each lead's unit (add_group's column). */
static int refill_lead_group(bh_generate_workspace *w, bh_column *c, size_t n)
{
    const bh_dgp *d = &w->s->dgp;
    size_t G = d->nlevels, room = 1;
    for (size_t g = 0; g < G; g++) {
        size_t L = strlen(d->levels[g]) + 1;
        room = L > room ? L : room;
    }
    /* present levels in sorted order, as add_group finds them */
    size_t nl = present_levels(w, n, w->parent);
    if (!col_rows(c, n) || !col_levels(c, nl, room))
        return 0;
    for (size_t l = 0; l < nl; l++) {
        strcpy(c->levels[l], w->glev[l]);
        for (size_t g = 0; g < G; g++)
            if (w->glev[l] == d->levels[g])
                w->grank[g] = (int)l;
    }
    for (size_t i = 0; i < n; i++)
        c->code[i] = w->grank[w->group[w->parent[i]]];
    memset(c->na, 0, n);
    c->nlevels = nl;
    return 1;
}

/* Write the drawn lead-level data set into f (leads_shape): the frame
 * build_leads would make, except for names the caller changed and, with
 * keep, the numeric columns after the generated ones, which keep their
 * values (rows beyond the last data set's are missing).  BH_ENOMEM (f is
 * then the caller's to free) or BH_OK. */
static bh_status refill_leads(bh_generate_workspace *w, bh_frame *f, int keep, bh_error *err)
{
    const bh_study *s = w->s;
    const bh_dgp *d = &s->dgp;
    size_t n = w->nleads, nc = bh_generate_ncol(s, BH_LEVEL_LEADS);
    bh_status r = make_ids(w, d->id_prefix, w->nreps, err);
    if (r != BH_OK)
        return r;
    if (!refill_ids(&f->cols[0], d->lead_id_prefix, n) || !refill_unit_ids(w, &f->cols[1], n) ||
        !refill_lead_group(w, &f->cols[2], n))
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    size_t j = 3;
    for (size_t k = 0; k < d->nlead_copy; k++, j++) {
        bh_column *c = &f->cols[j];
        if (!col_rows(c, n))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        /* the values bh_frame_add_numeric stores from unit_column's */
        if ((r = unit_column(w, d->lead_copy[k], 1, c->num, c->na, err)) != BH_OK)
            return r;
    }
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        const nodebuf *b = &w->nb[k];
        if (x->data != BH_LEVEL_LEADS)
            continue;
        size_t cnt = (x->kind == BH_DGP_VAR) + x->nitems + x->ncomp;
        for (size_t q = 0; q < cnt; q++)
            if (!col_rows(&f->cols[j + q], n))
                return bh_error_set(err, BH_ENOMEM, "out of memory");
        j = refill_node(f, j, x, b, n);
    }
    if (!keep)
        bh_frame_drop_columns(f, nc);
    for (j = nc; j < f->ncol; j++) {
        bh_column *c = &f->cols[j];
        size_t old = c->n;
        if (!col_rows(c, n))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        for (size_t i = old; i < n; i++) {
            c->na[i] = 1;
            c->num[i] = NAN;
        }
    }
    f->nrow = n;
    return BH_OK;
}

static bh_status build_leads(bh_generate_workspace *w, bh_frame **out, bh_error *err)
{
    const bh_study *s = w->s;
    const bh_dgp *d = &s->dgp;
    size_t n = w->nleads;
    bh_frame *f = bh_frame_new(s->leads, n);
    double *tmp = malloc((n ? n : 1) * sizeof *tmp);
    unsigned char *na = malloc(n ? n : 1);
    bh_status r = (f && tmp && na) ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
    if (r == BH_OK)
        r = add_ids(f, bh_study_column(s, d->lead_id), d->lead_id_prefix, n, err);
    if (r == BH_OK)
        r = make_ids(w, d->id_prefix, w->nreps, err);
    if (r == BH_OK)
        r = add_unit_ids(w, f, bh_study_column(s, d->id), n, err);
    if (r == BH_OK)
        r = add_group(w, f, bh_study_column(s, d->group), n, 1, err);
    for (size_t k = 0; r == BH_OK && k < d->nlead_copy; k++) {
        r = unit_column(w, d->lead_copy[k], 1, tmp, na, err);
        if (r == BH_OK)
            r = bh_frame_add_numeric(f, bh_study_column(s, d->lead_copy[k]), tmp, na, err);
    }
    for (size_t k = 0; r == BH_OK && k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        const nodebuf *b = &w->nb[k];
        if (x->data != BH_LEVEL_LEADS)
            continue;
        if (x->kind == BH_DGP_VAR)
            r = add_num(f, s, x->name, b->val, b->na[0], n, tmp, err);
        for (size_t j = 0; r == BH_OK && j < x->nitems; j++)
            r = add_num(f, s, x->items[j], b->sub[j], b->na[j], n, tmp, err);
        for (size_t j = 0; r == BH_OK && j < x->ncomp; j++)
            r = add_num(f, s, x->components[j], b->sub[j], NULL, n, tmp, err);
    }
    free(tmp);
    free(na);
    if (r != BH_OK) {
        bh_frame_free(f);
        return r;
    }
    *out = f;
    return BH_OK;
}

/* Draw one data set into the workspace's buffers (nothing is built). */
static bh_status draw(bh_generate_workspace *w, const bh_generate_options *o, int want_leads,
                      bh_error *err)
{
    const bh_study *s = w->s;
    const bh_dgp *d = &s->dgp;
    if (!d->present)
        return bh_error_at(err, BH_EUSAGE, s->path, 0, 0,
                           "the study spec has no [dgp] section: nothing to generate");
    if (!isfinite(o->effect_scale))
        return bh_error_set(err, BH_EUSAGE, "effect scale %g is not finite", o->effect_scale);
    size_t n = o->n_reps ? o->n_reps : d->n;
    uint64_t seed = o->seed_set ? o->seed : s->seed;
    /* Substreams: 0 for the groups, 1 + k for node k's values, 1 + nnodes +
     * k for its missing-value mask.  So the unit level does not depend on
     * whether the leads level is drawn, and leaving it out (leads == NULL)
     * changes nothing else. */
    const uint64_t nn = d->nnodes;
    bh_status r = BH_OK;
    bh_ran_substream(w->rng, seed, o->index, 0);
    if (n > w->cap_reps) {
        size_t nc = n;
        int *g = realloc(w->group, nc * sizeof *g);
        if (g)
            w->group = g;
        if (!g || !grow_d(&w->re, nc))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        w->cap_reps = nc;
    }
    if (!reserve_eta(w, n))
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    w->nreps = n;
    w->nleads = 0;
    w->near = fegetround() == FE_TONEAREST;
    bh_ran_discrete_fill(w->rng, d->nlevels, w->gcum, w->group, n);
    for (size_t q = 0; q < d->nnodes; q++) {
        size_t k = d->order[q];
        if (d->nodes[k].data == BH_LEVEL_LEADS && !want_leads)
            continue;  /* unit-level nodes never depend on lead-level ones */
        bh_ran_substream(w->rng, seed, o->index, 1 + k);
        r = gen_node(w, k, o->effect_scale, err);
        if (r != BH_OK)
            return r;
        if (want_leads && k == d->leads_count_node && (r = setup_leads(w, err)) != BH_OK)
            return r;
    }
    /* missing-value masks (the complete values above drove everything) */
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        nodebuf *b = &w->nb[k];
        size_t nr = x->data == BH_LEVEL_LEADS ? w->nleads : w->nreps;
        if (x->data == BH_LEVEL_LEADS && !want_leads)
            continue;
        if (!(x->missing > 0)) {
            for (size_t j = 0; j < b->nna; j++)
                memset(b->na[j], 0, nr);
            continue;
        }
        bh_ran_substream(w->rng, seed, o->index, 1 + nn + k);
        for (size_t j = 0; j < b->nna; j++) {
            /* one uniform per row, drawn ahead */
            bh_ran_uniform_fill(w->rng, w->u, nr);
            for (size_t i = 0; i < nr; i++)
                b->na[j][i] = w->u[i] < x->missing;
        }
    }
    return BH_OK;
}

bh_status bh_generate_ws(bh_generate_workspace *w, const bh_generate_options *o,
                         bh_frame **reps, bh_frame **leads, bh_error *err)
{
    *reps = NULL;
    if (leads)
        *leads = NULL;
    int want_leads = leads && w->s->dgp.leads_count;
    bh_status r = draw(w, o, want_leads, err);
    if (r != BH_OK)
        return r;
    r = build_reps(w, reps, err);
    if (r == BH_OK && want_leads) {
        r = build_leads(w, leads, err);
        if (r != BH_OK) {
            bh_frame_free(*reps);
            *reps = NULL;
        }
    }
    return r;
}

bh_status bh_generate_ws_reuse(bh_generate_workspace *w, const bh_generate_options *o,
                               bh_frame **reps, bh_frame **leads, bh_error *err)
{
    int want_leads = leads && w->s->dgp.leads_count;
    bh_status r = draw(w, o, want_leads, err);
    if (r == BH_OK) {
        if (*reps && reps_shape(w, *reps, w->nreps) &&
            refill_reps(w, *reps, o->keep_appended)) {
            /* refilled in place */
        } else {
            bh_frame_free(*reps);
            *reps = NULL;
            r = build_reps(w, reps, err);
        }
    }
    if (leads) {
        /* the lead count is drawn: the frame is refilled with room to
         * grow (refill_leads), or built anew when it is not one of ours */
        if (r == BH_OK && want_leads && *leads && leads_shape(w, *leads, o->keep_appended)) {
            r = refill_leads(w, *leads, o->keep_appended, err);
        } else {
            bh_frame_free(*leads);
            *leads = NULL;
            if (r == BH_OK && want_leads)
                r = build_leads(w, leads, err);
        }
    }
    if (r != BH_OK) {
        bh_frame_free(*reps);
        *reps = NULL;
        if (leads) {
            bh_frame_free(*leads);
            *leads = NULL;
        }
    }
    return r;
}

bh_status bh_generate(const bh_study *s, const bh_generate_options *o, bh_frame **reps,
                      bh_frame **leads, bh_error *err)
{
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    if (!w)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_status r = bh_generate_ws(w, o, reps, leads, err);
    bh_generate_workspace_free(w);
    return r;
}

/* ---- codebook ------------------------------------------------------------------ */

typedef struct {
    size_t n, cap;
    char **cell;          /* n x 6 */
} cbrows;

static int cb_add(cbrows *c, const char *col, const char *label, const char *unit,
                  const char *type, const char *construct, const char *source)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->cell[6 * i], col) == 0)
            return 1;  /* listed once (copied columns) */
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 32;
        char **ncell = realloc(c->cell, nc * 6 * sizeof *ncell);
        if (!ncell)
            return 0;
        c->cell = ncell;
        c->cap = nc;
    }
    const char *v[6] = {col, label, unit, type, construct, source};
    for (int k = 0; k < 6; k++) {
        c->cell[6 * c->n + (size_t)k] = strdup(v[k] ? v[k] : "");
        if (!c->cell[6 * c->n + (size_t)k]) {
            for (int j = 0; j < k; j++)
                free(c->cell[6 * c->n + (size_t)j]);
            return 0;
        }
    }
    c->n++;
    return 1;
}

static const char *var_type(const bh_dgp_node *x)
{
    if (x->dist == BH_DGP_BERNOULLI)
        return "binary";
    if (x->dist == BH_DGP_POISSON || x->dist == BH_DGP_NEGBIN || x->digits == 0)
        return "integer";
    return "numeric";
}

static int cb_node_cols(const bh_study *s, const bh_dgp_node *x, cbrows *c)
{
    char lab[512], unit[128];
    int ok = 1;
    if (x->kind == BH_DGP_VAR)
        ok = cb_add(c, bh_study_column(s, x->name), x->label ? x->label : x->name, x->unit,
                    var_type(x), x->construct, "assumed");
    for (size_t j = 0; ok && j < x->nitems; j++) {
        snprintf(lab, sizeof lab, "%s: item %zu of %zu", x->label ? x->label : x->name, j + 1,
                 x->nitems);
        snprintf(unit, sizeof unit, "%d-point rating (1-%d)", x->points, x->points);
        ok = cb_add(c, bh_study_column(s, x->items[j]), lab, x->unit ? x->unit : unit,
                    "integer", x->construct, "assumed");
    }
    for (size_t j = 0; ok && j < x->ncomp; j++)
        ok = cb_add(c, bh_study_column(s, x->components[j]),
                    x->comp_labels ? x->comp_labels[j] : x->components[j],
                    x->unit ? x->unit : "share (0-1)", "numeric", x->construct, "assumed");
    return ok;
}

bh_status bh_generate_codebook(const bh_study *s, bh_frame **out, bh_error *err)
{
    *out = NULL;
    const bh_dgp *d = &s->dgp;
    if (!d->present)
        return bh_error_at(err, BH_EUSAGE, s->path, 0, 0, "the study spec has no [dgp] section");
    cbrows c = {0};
    int ok = cb_add(&c, bh_study_column(s, d->id), d->id_label, "", "id", "", "derived") &&
             cb_add(&c, bh_study_column(s, d->group), d->group_label, "", "categorical", "",
                    "assumed");
    for (size_t k = 0; ok && k < d->nnodes; k++)
        if (d->nodes[k].data == BH_LEVEL_REPS)
            ok = cb_node_cols(s, &d->nodes[k], &c);
    if (ok && d->leads_count) {
        ok = cb_add(&c, bh_study_column(s, d->lead_id), d->lead_id_label, "", "id", "",
                    "derived");
        for (size_t k = 0; ok && k < d->nlead_copy; k++)
            for (size_t q = 0; ok && q < d->nnodes; q++) {
                const bh_dgp_node *x = &d->nodes[q];
                if (x->kind == BH_DGP_SCALE && strcmp(x->name, d->lead_copy[k]) == 0) {
                    char lab[512], unit[128];
                    snprintf(lab, sizeof lab, "%s: composite (mean of the answered items)",
                             x->label ? x->label : x->name);
                    snprintf(unit, sizeof unit, "mean of %d-point ratings (1-%d)", x->points,
                             x->points);
                    ok = cb_add(&c, bh_study_column(s, x->name), lab, unit, "numeric",
                                x->construct, "derived");
                }
            }
        for (size_t k = 0; ok && k < d->nnodes; k++)
            if (d->nodes[k].data == BH_LEVEL_LEADS)
                ok = cb_node_cols(s, &d->nodes[k], &c);
    }
    bh_frame *f = ok ? bh_frame_new("codebook", c.n) : NULL;
    const char **colv = ok ? malloc((c.n ? c.n : 1) * sizeof *colv) : NULL;
    bh_status r = (f && colv) ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
    static const char *const hdr[6] = {"column", "label", "unit", "type", "construct",
                                       "source"};
    for (int k = 0; r == BH_OK && k < 6; k++) {
        for (size_t i = 0; i < c.n; i++)
            colv[i] = c.cell[6 * i + (size_t)k];
        r = bh_frame_add_categorical(f, hdr[k], colv, err);
    }
    free(colv);
    for (size_t i = 0; i < 6 * c.n; i++)
        free(c.cell[i]);
    free(c.cell);
    if (r != BH_OK) {
        bh_frame_free(f);
        return r;
    }
    *out = f;
    return BH_OK;
}

/* ---- files --------------------------------------------------------------------- */

static char *out_path(const char *dir, const char *spec_path)
{
    const char *base = strrchr(spec_path, '/');
    base = base ? base + 1 : spec_path;
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + (size_t)slash + strlen(base) + 1);
    if (p)
        sprintf(p, "%s%s%s", dir, slash ? "/" : "", base);
    return p;
}

bh_status bh_generate_write(const bh_study *s, const bh_generate_options *o, const char *outdir,
                            bh_error *err)
{
    bh_frame *fr[3] = {NULL, NULL, NULL};
    bh_afile af[3];
    int open[3] = {0, 0, 0};
    char *path[3] = {NULL, NULL, NULL};
    memset(af, 0, sizeof af);
    bh_status r = bh_generate(s, o, &fr[0], &fr[1], err);
    if (r == BH_OK)
        r = bh_generate_codebook(s, &fr[2], err);
    const char *names[3] = {s->reps, s->leads, s->codebook};
    for (int k = 0; r == BH_OK && k < 3; k++) {
        if (!fr[k] || !names[k])
            continue;
        if (!(path[k] = out_path(outdir, names[k]))) {
            r = bh_error_set(err, BH_ENOMEM, "out of memory");
            break;
        }
        r = bh_afile_open(&af[k], path[k], err);
        if (r != BH_OK)
            break;
        open[k] = 1;
        r = bh_frame_write_csv(fr[k], af[k].fp, err);
        if (r == BH_OK && (fflush(af[k].fp) != 0 || ferror(af[k].fp)))
            r = bh_error_at(err, BH_EOUTPUT, path[k], 0, 0, "cannot write: %s",
                            strerror(errno));
    }
    /* Rename only when every file was written in full. */
    for (int k = 0; r == BH_OK && k < 3; k++)
        if (open[k]) {
            open[k] = 0;
            r = bh_afile_commit(&af[k], err);
        }
    for (int k = 0; k < 3; k++) {
        if (open[k])
            bh_afile_abort(&af[k]);
        bh_frame_free(fr[k]);
        free(path[k]);
    }
    return r;
}

double bh_generate_expected_alpha(const bh_dgp_node *x, double latent_var)
{
    double k = (double)x->nitems;
    double t = x->loading * x->loading * latent_var;
    double rho = t / (t + x->noise_sd * x->noise_sd);
    return k * rho / (1 + (k - 1) * rho);
}
