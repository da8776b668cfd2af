/* policy.c - lead-allocation policies compared with a fitted follow-up
 * logit (see policy.h). */
#include "blackhole/policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "blackhole/atomicfile.h"
#include "blackhole/glmm.h"
#include "blackhole/model.h"
#include "blackhole/plot.h"
#include "blackhole/predict.h"
#include "blackhole/replicate.h"
#include "blackhole/rng.h"
#include "blackhole/strutil.h"
#include "blackhole/table.h"

#define DEFAULT_DRAWS 1000
/* Relative tolerance of the linearity check of the design in lead volume. */
#define LINEAR_TOL 1e-8
/* Gauss-Hermite nodes for the random intercept of the true model: 40
 * integrate logistic(eta + u) against N(0, 0.8^2) to ~1e-15. */
#define TRUTH_NQ 40

static const char *const POLICY_NAME[BH_POLICY_COUNT] = {"observed", "even", "novices",
                                                         "performance", "greedy"};

void bh_policy_default_options(bh_policy_options *o)
{
    memset(o, 0, sizeof *o);
    o->draws = DEFAULT_DRAWS;
    o->experience = "experience";
    o->performance = "performance";
}

void bh_policy_result_free(bh_policy_result *r)
{
    if (!r)
        return;
    for (size_t j = 0; j < r->nreps && r->rep_id; j++)
        free(r->rep_id[j]);
    free(r->rep_id);
    free(r->model);
    free(r->experience);
    free(r->performance);
    free(r->p_observed);
    free(r->alloc);
    free(r);
}

typedef struct {
    size_t n, p, J;
    double *x0, *dx;          /* n x p design rows at the observed volume, and
                                 their change per extra lead              */
    size_t *start, *count;    /* rep j's leads: rows idx[start..start+count) */
    size_t *idx;
    double *L;                /* observed volume per rep                   */
    double *eta0, *deta;      /* per lead at the current coefficients      */
    /* truth mode: the DGP's rep random intercept N(0, re_sd^2) is averaged
     * out by Gauss-Hermite quadrature (nq nodes; 0 = none) */
    size_t nq;
    double re_sd, ghx[TRUTH_NQ], ghw[TRUTH_NQ];
} ctx;

static double logistic(double e)
{
    /* two branches: no overflow for large |e| */
    if (e >= 0)
        return 1 / (1 + exp(-e));
    double z = exp(e);
    return z / (1 + z);
}

static void set_beta(ctx *c, const double *b)
{
    for (size_t i = 0; i < c->n; i++) {
        double e = 0, d = 0;
        for (size_t k = 0; k < c->p; k++) {
            e += c->x0[i * c->p + k] * b[k];
            d += c->dx[i * c->p + k] * b[k];
        }
        c->eta0[i] = e;
        c->deta[i] = d;
    }
}

/* Follow-up probability at linear predictor e: logistic(e), or its mean
 * over the random intercept when there is one. */
static double pfollow(const ctx *c, double e)
{
    if (!c->nq)
        return logistic(e);
    double s = 0;
    for (size_t q = 0; q < c->nq; q++)
        s += c->ghw[q] * logistic(e + M_SQRT2 * c->re_sd * c->ghx[q]);
    return s / sqrt(M_PI);
}

/* p_j(L): mean follow-up probability of rep j's leads with L leads. */
static double prob(const ctx *c, size_t j, double L)
{
    double s = 0;
    for (size_t q = 0; q < c->count[j]; q++) {
        size_t i = c->idx[c->start[j] + q];
        s += pfollow(c, c->eta0[i] + (L - c->L[j]) * c->deta[i]);
    }
    return s / (double)c->count[j];
}

static double followups(const ctx *c, const double *alloc)
{
    double f = 0;
    for (size_t j = 0; j < c->J; j++)
        if (alloc[j] > 0)
            f += alloc[j] * prob(c, j, alloc[j]);
    return f;
}

/* Whole leads proportional to w, at most cap per rep: shares above the cap
 * are clipped and the excess is spread over the others in proportion
 * (water filling), then rounded by largest remainder (ties to the earlier
 * rep; a share below the cap rounds up to at most the cap). */
static void proportional(const double *w, size_t J, double total, double cap, double *out,
                         unsigned char *capped)
{
    memset(capped, 0, J);
    double *raw = out;
    for (;;) {
        double sw = 0, rest = total;
        for (size_t j = 0; j < J; j++) {
            if (capped[j])
                rest -= cap;
            else
                sw += w[j];
        }
        int more = 0;
        for (size_t j = 0; j < J; j++) {
            raw[j] = capped[j] ? cap : rest * w[j] / sw;
            if (!capped[j] && raw[j] > cap) {
                capped[j] = 1;
                more = 1;
            }
        }
        if (!more)
            break;
    }
    double given = 0;
    for (size_t j = 0; j < J; j++) {
        double f = floor(raw[j]);
        capped[j] = (unsigned char)(raw[j] - f > 0);
        given += f;
    }
    size_t left = (size_t)(total - given + 0.5);
    double *frac = malloc(J * sizeof *frac);
    for (size_t j = 0; j < J; j++) {
        double f = floor(raw[j]);
        if (frac)
            frac[j] = raw[j] - f;
        out[j] = f;
    }
    while (frac && left-- > 0) {
        size_t best = 0;
        double bf = -1;
        for (size_t j = 0; j < J; j++)
            if (frac[j] > bf) {
                bf = frac[j];
                best = j;
            }
        out[best] += 1;
        frac[best] = -1;
    }
    free(frac);
}

/* Ranks 1..J of v ascending (ties in rep order). */
static void ranks(const double *v, size_t J, double *r)
{
    for (size_t j = 0; j < J; j++) {
        size_t k = 1;
        for (size_t q = 0; q < J; q++)
            k += v[q] < v[j] || (v[q] == v[j] && q < j);
        r[j] = (double)k;
    }
}

static double quantile(double *x, size_t n, double q)
{
    /* R's type 7 on sorted x */
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return x[lo] + (h - (double)lo) * (x[hi] - x[lo]);
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Design rows on the fit's data: eta with beta = e_k is column k (aliased
 * coefficients count as zero in predictions). */
static bh_status design_rows(bh_fit *fit, const bh_frame *data, double *X, bh_error *err)
{
    size_t p = fit->p;
    double *save = malloc(p * sizeof *save);
    if (!save)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    memcpy(save, fit->beta, p * sizeof *save);
    bh_status s = BH_OK;
    for (size_t k = 0; k < p && s == BH_OK; k++) {
        for (size_t q = 0; q < p; q++)
            fit->beta[q] = fit->aliased && fit->aliased[q] ? NAN : (q == k);
        bh_prediction *pr = NULL;
        s = bh_predict(fit, data, &pr, err);
        for (size_t i = 0; s == BH_OK && i < pr->n; i++)
            X[i * p + k] = fit->aliased && fit->aliased[k] ? 0 : pr->eta[i];
        bh_prediction_free(pr);
    }
    memcpy(fit->beta, save, p * sizeof *save);
    free(save);
    return s;
}

/* Mean and SD (n - 1) of column col over rows where it is finite: every
 * lead (lead-level node), or each rep's first lead (rep-level node: one
 * value per rep, as the DGP standardises over reps). */
static void moments(const bh_frame *leads, long col, const int *rep, int per_rep,
                    unsigned char *seen, size_t nrep, double *mean, double *sd)
{
    const double *x = leads->cols[col].num;
    if (per_rep)
        memset(seen, 0, nrep);
    double m = 0, ss = 0;
    size_t k = 0;
    for (size_t i = 0; i < leads->nrow; i++) {
        if (!isfinite(x[i]))
            continue;
        if (per_rep) {
            if (rep[i] < 0 || seen[rep[i]])
                continue;
            seen[rep[i]] = 1;
        }
        k++;
        double d = x[i] - m;
        m += d / (double)k;
        ss += d * (x[i] - m);
    }
    *mean = m;
    *sd = k > 1 ? sqrt(ss / (double)(k - 1)) : 0;
}

/* Truth mode: the "model" is the spec's data-generating process for the
 * model's response (a lead-level Bernoulli node of [dgp]): design columns
 * intercept, one indicator per group level with a shift, and one per
 * effect term (the product of the standardised nodes it names), with the
 * DGP's coefficients as b.  Predictors are standardised with the moments
 * of the lead file (rep-level variables over its reps, one value each), as
 * the DGP standardises over the generated sample.  Rows with a missing
 * value get NAN (their rep leaves the population). */
static bh_status truth_rows(const bh_study *st, const bh_study_model *md,
                            const bh_frame *leads, long ic, long vc, ctx *c,
                            double **bout, bh_error *err)
{
    const bh_dgp *d = &st->dgp;
    const bh_dgp_node *y = NULL;
    for (size_t k = 0; k < d->nnodes && !y; k++)
        if (md->nresponses && strcmp(d->nodes[k].name, md->responses[0]) == 0)
            y = &d->nodes[k];
    if (!y || y->kind != BH_DGP_VAR || y->dist != BH_DGP_BERNOULLI ||
        y->data != BH_LEVEL_LEADS || !y->effects || !y->effects->present)
        return bh_error_at(err, BH_EUSAGE, st->path, md->line, 0,
                           "--truth: the response '%s' of model %s is not a lead-level "
                           "bernoulli variable with [dgp effects] in the spec",
                           md->nresponses ? md->responses[0] : "", md->name);
    const bh_dgp_effects *e = y->effects;
    size_t G = e->group ? d->nlevels : 0;
    long gc = -1;
    if (G) {
        gc = d->group ? bh_frame_index(leads, d->group) : -1;
        if (gc < 0 || leads->cols[gc].type != BH_COL_CATEGORICAL)
            return bh_error_at(err, BH_EDATA, leads->source, 0, 0,
                               "--truth: the lead file needs the categorical group column "
                               "'%s' (the DGP's effects on %s shift by it)",
                               d->group ? d->group : "", y->name);
    }
    size_t p = 1 + G + e->nterms, n = leads->nrow;
    c->p = p;
    c->x0 = malloc((n ? n : 1) * p * sizeof *c->x0);
    c->dx = malloc((n ? n : 1) * p * sizeof *c->dx);
    double *b = malloc(p * sizeof *b);
    long *col = malloc((d->nnodes ? d->nnodes : 1) * sizeof *col);
    double *mu = malloc((d->nnodes ? d->nnodes : 1) * sizeof *mu),
           *sdv = malloc((d->nnodes ? d->nnodes : 1) * sizeof *sdv);
    size_t nrep = leads->cols[ic].nlevels;
    unsigned char *seen = malloc(nrep ? nrep : 1);
    long *glev = calloc(leads->cols[gc >= 0 ? gc : ic].nlevels + 1, sizeof *glev);
    bh_status s = BH_OK;
    if (!c->x0 || !c->dx || !b || !col || !mu || !sdv || !seen || !glev) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto out;
    }
    b[0] = e->intercept;
    for (size_t g = 0; g < G; g++)
        b[1 + g] = e->group[g];
    for (size_t t = 0; t < e->nterms; t++)
        b[1 + G + t] = e->terms[t].coef;
    for (size_t k = 0; k < d->nnodes; k++)
        col[k] = -1;
    for (size_t t = 0; t < e->nterms; t++)
        for (size_t j = 0; j < e->terms[t].nnode; j++) {
            size_t nd = e->terms[t].node[j];
            if (col[nd] >= 0)
                continue;
            long cc = bh_frame_index(leads, d->nodes[nd].name);
            if (cc < 0 || leads->cols[cc].type != BH_COL_NUMERIC) {
                s = bh_error_at(err, BH_EDATA, leads->source, 0, 0,
                                "--truth: the lead file needs the numeric column '%s' "
                                "(term %s of the DGP's effects on %s)", d->nodes[nd].name,
                                e->terms[t].label, y->name);
                goto out;
            }
            col[nd] = cc;
            moments(leads, cc, leads->cols[ic].code, d->nodes[nd].data == BH_LEVEL_REPS, seen,
                    nrep, &mu[nd], &sdv[nd]);
        }
    /* the DGP's group levels of the file's levels (-1: no shift known) */
    for (size_t l = 0; gc >= 0 && l < leads->cols[gc].nlevels; l++) {
        glev[l] = -1;
        for (size_t g = 0; g < G; g++)
            if (strcmp(leads->cols[gc].levels[l], d->levels[g]) == 0)
                glev[l] = (long)g;
        if (glev[l] < 0) {
            s = bh_error_at(err, BH_EDATA, leads->source, 0, 0,
                            "--truth: level '%s' of %s is not one of the DGP's groups",
                            leads->cols[gc].levels[l], d->group);
            goto out;
        }
    }
    size_t vnode = d->leads_count_node;
    for (size_t i = 0; i < n; i++) {
        double *x = c->x0 + i * p, *dx = c->dx + i * p;
        int ok = 1;
        x[0] = 1;
        dx[0] = 0;
        int gi = gc >= 0 ? leads->cols[gc].code[i] : 0;
        ok = gi >= 0;
        for (size_t g = 0; g < G; g++) {
            x[1 + g] = ok && glev[gi] == (long)g;
            dx[1 + g] = 0;
        }
        for (size_t t = 0; t < e->nterms; t++) {
            const bh_dgp_term *tm = &e->terms[t];
            double v = 1, dv = 0;
            for (size_t j = 0; j < tm->nnode; j++) {
                size_t nd = tm->node[j];
                double xv = leads->cols[col[nd]].num[i];
                ok = ok && isfinite(xv);
                double z = sdv[nd] > 0 ? (xv - mu[nd]) / sdv[nd] : 0;
                double dz = nd == vnode && col[nd] == vc && sdv[nd] > 0 ? 1 / sdv[nd] : 0;
                dv = dv * z + v * dz;  /* product rule */
                v *= z;
            }
            x[1 + G + t] = v;
            dx[1 + G + t] = dv;
        }
        if (!ok)
            for (size_t k = 0; k < p; k++)
                x[k] = NAN;
    }
    c->re_sd = y->random_sd;
    if (y->random_sd > 0) {
        c->nq = TRUTH_NQ;
        s = bh_glmm_gauss_hermite(TRUTH_NQ, c->ghx, c->ghw, err);
    }
out:
    free(col);
    free(mu);
    free(sdv);
    free(seen);
    free(glev);
    if (s != BH_OK)
        free(b);
    else
        *bout = b;
    return s;
}

bh_status bh_policy_run(const bh_study *st, bh_frame *leads, const bh_policy_options *o,
                        bh_policy_result **out, bh_error *err)
{
    *out = NULL;
    long m = -1;
    if (o->model) {
        m = bh_study_model_index(st, o->model);
        if (m < 0)
            return bh_error_set(err, BH_EUSAGE, "--model: no model '%s' in %s", o->model,
                                st->path ? st->path : "the spec");
    } else {
        for (size_t k = 0; k < st->nmodels && m < 0; k++)
            if (st->models[k].data == BH_LEVEL_LEADS && (o->truth || !st->models[k].random))
                m = (long)k;
        if (m < 0)
            return bh_error_set(err, BH_EUSAGE, "%s: no lead-level model without a random "
                                "term; name one with --model", st->path ? st->path : "spec");
    }
    const bh_study_model *md = &st->models[m];
    if (md->data != BH_LEVEL_LEADS || (md->random && !o->truth))
        return bh_error_set(err, BH_EUSAGE, "model %s: policy needs a lead-level model "
                            "(data = leads) without random terms", md->name);
    if (o->draws < 2 && !o->truth)
        return bh_error_set(err, BH_EUSAGE, "--draws must be at least 2");
    const char *vol = st->dgp.leads_count, *idname = st->dgp.id;
    if (!vol || !idname)
        return bh_error_set(err, BH_EUSAGE, "%s: the spec's [dgp] must name id and leads_count "
                            "(the rep id and lead-volume variables)", st->path ? st->path : "spec");
    long vc = bh_frame_index(leads, vol), ic = bh_frame_index(leads, idname),
         ec = bh_frame_index(leads, o->experience), pc = bh_frame_index(leads, o->performance);
    const char *missing = vc < 0 ? vol : ic < 0 ? idname : ec < 0 ? o->experience
                          : pc < 0 ? o->performance : NULL;
    if (missing)
        return bh_error_at(err, BH_EDATA, leads->source, 0, 0, "no column '%s' in the lead file",
                           missing);
    if (leads->cols[vc].type != BH_COL_NUMERIC || leads->cols[ec].type != BH_COL_NUMERIC ||
        leads->cols[pc].type != BH_COL_NUMERIC || leads->cols[ic].type != BH_COL_CATEGORICAL)
        return bh_error_at(err, BH_EDATA, leads->source, 0, 0,
                           "%s, %s and %s must be numeric and %s an id", vol, o->experience,
                           o->performance, idname);

    bh_status s = BH_OK;
    bh_model *fitm = NULL;
    bh_fit *fit = NULL;
    double *btrue = NULL;
    ctx c;
    memset(&c, 0, sizeof c);
    c.n = leads->nrow;
    if (o->truth) {
        if ((s = truth_rows(st, md, leads, ic, vc, &c, &btrue, err)) != BH_OK) {
            free(c.x0);
            free(c.dx);
            return s;
        }
    } else {
        bh_model_spec sp;
        char *formula = NULL;
        if ((s = bh_study_model_spec(st, (size_t)m, &sp, &formula, err)) != BH_OK)
            return s;
        s = bh_model_fit(leads, &sp, &fitm, err);
        free(formula);
        if (s != BH_OK)
            return s;
        fit = fitm->fit;
        c.p = fit->p;
        c.x0 = malloc(c.n * c.p * sizeof *c.x0);
        c.dx = malloc(c.n * c.p * sizeof *c.dx);
    }
    bh_policy_result *r = calloc(1, sizeof *r);
    /* scratch of at least n x p and J doubles */
    double *x1 = malloc((c.n * c.p + 2) * sizeof *x1), *x2 = malloc((c.n * c.p + 2) * sizeof *x2);
    c.eta0 = malloc(c.n * sizeof *c.eta0);
    c.deta = malloc(c.n * sizeof *c.deta);
    c.idx = malloc(c.n * sizeof *c.idx);
    size_t ngroups = leads->cols[ic].nlevels;
    c.start = calloc(ngroups + 1, sizeof *c.start);
    c.count = calloc(ngroups + 1, sizeof *c.count);
    c.L = calloc(ngroups + 1, sizeof *c.L);
    double *b = malloc(c.p * sizeof *b), *z = malloc(c.p * sizeof *z),
           *draws = NULL, *ok_row = NULL;
    gsl_matrix *V = gsl_matrix_alloc(c.p, c.p);
    gsl_rng *rng = NULL;
    if (!r || !x1 || !x2 || !c.x0 || !c.dx || !c.eta0 || !c.deta || !c.idx || !c.start ||
        !c.count || !c.L || !b || !z || !V) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    /* design rows at volume, volume + 1 and volume + 2 */
    double *vals = leads->cols[vc].num;
    if (o->truth)
        goto population;  /* truth_rows gave x0 and dx */
    if ((s = design_rows(fit, leads, c.x0, err)) != BH_OK)
        goto done;
    for (size_t i = 0; i < c.n; i++)
        vals[i] += 1;
    s = design_rows(fit, leads, x1, err);
    for (size_t i = 0; i < c.n; i++)
        vals[i] += 1;
    if (s == BH_OK)
        s = design_rows(fit, leads, x2, err);
    for (size_t i = 0; i < c.n; i++)
        vals[i] -= 2;
    if (s != BH_OK)
        goto done;
    for (size_t q = 0; q < c.n * c.p; q++) {
        c.dx[q] = x1[q] - c.x0[q];
        double d2 = x2[q] - x1[q];
        if (isfinite(c.dx[q]) &&
            fabs(d2 - c.dx[q]) > LINEAR_TOL * (1 + fabs(c.x0[q]) + fabs(x2[q]))) {
            s = bh_error_set(err, BH_EUSAGE,
                             "model %s: the design is not linear in %s (coefficient %s); "
                             "policies need a model where the lead volume enters linearly or "
                             "in products", md->name, vol, fit->term[q % c.p]);
            goto done;
        }
    }
population:;
    /* the population: reps whose leads all have complete design rows */
    const int *code = leads->cols[ic].code;
    unsigned char *bad = calloc(ngroups + 1, 1);
    if (!bad) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c.n; i++) {
        int g = code[i];
        int complete = g >= 0;
        for (size_t k = 0; k < c.p && complete; k++)
            complete = isfinite(c.x0[i * c.p + k]);
        if (g >= 0 && !complete)
            bad[g] = 1;
    }
    size_t *grp_of = calloc(ngroups + 1, sizeof *grp_of); /* level -> rep index + 1 */
    if (!grp_of) {
        free(bad);
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    size_t J = 0;
    /* reps in order of first appearance in the file */
    for (size_t i = 0; i < c.n; i++) {
        int g = code[i];
        if (g < 0 || bad[g])
            continue;
        if (!grp_of[g])
            grp_of[g] = ++J;
        c.count[grp_of[g] - 1]++;
    }
    c.J = J;
    r->rep_id = calloc(J ? J : 1, sizeof *r->rep_id);
    r->experience = malloc((J ? J : 1) * sizeof(double));
    r->performance = malloc((J ? J : 1) * sizeof(double));
    r->p_observed = malloc((J ? J : 1) * sizeof(double));
    r->alloc = calloc(BH_POLICY_COUNT * (J ? J : 1), sizeof(double));
    r->nreps = J;
    if (!r->rep_id || !r->experience || !r->performance || !r->p_observed || !r->alloc) {
        free(bad);
        free(grp_of);
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 1; j < J; j++)
        c.start[j] = c.start[j - 1] + c.count[j - 1];
    size_t *fill = calloc(J ? J : 1, sizeof *fill);
    for (size_t i = 0; fill && i < c.n; i++) {
        int g = code[i];
        if (g < 0 || bad[g])
            continue;
        size_t j = grp_of[g] - 1;
        if (fill[j] == 0) {
            r->rep_id[j] = bh_strdup(leads->cols[ic].levels[g]);
            r->experience[j] = leads->cols[ec].num[i];
            r->performance[j] = leads->cols[pc].num[i];
            c.L[j] = vals[i];
        }
        c.idx[c.start[j] + fill[j]++] = i;
    }
    free(fill);
    free(bad);
    free(grp_of);
    if (J < 2) {
        s = bh_error_set(err, BH_EDATA, "fewer than 2 reps with complete lead data");
        goto done;
    }
    for (size_t j = 0; j < J; j++)
        if (!r->rep_id[j]) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            goto done;
        }
    double T = 0;
    for (size_t j = 0; j < J; j++)
        T += c.L[j];
    r->total = T;
    r->cap = o->cap ? o->cap : (size_t)ceil(2 * T / (double)J);
    r->draws = o->truth ? 0 : o->draws;
    r->seed = o->seed_set ? o->seed : st->seed;
    r->truth = o->truth;
    char tname[256];
    snprintf(tname, sizeof tname, "dgp:%s", md->responses[0]);
    if (!(r->model = bh_strdup(o->truth ? tname : md->name))) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < c.p; k++)
        b[k] = o->truth ? btrue[k] : fit->aliased && fit->aliased[k] ? 0 : fit->beta[k];
    set_beta(&c, b);
    /* allocations at the estimates */
    double *A = r->alloc, *w = x1; /* scratch: x1 is free now */
    memcpy(A, c.L, J * sizeof *A);
    if ((double)r->cap * (double)J < T) {
        s = bh_error_set(err, BH_EUSAGE, "--cap %zu x %zu reps is below the %g leads", r->cap,
                         J, T);
        goto done;
    }
    unsigned char *flag = (unsigned char *)c.eta0; /* scratch until set_beta */
    for (size_t j = 0; j < J; j++)
        w[j] = 1;
    proportional(w, J, T, (double)r->cap, A + J, flag);
    ranks(r->experience, J, w);
    for (size_t j = 0; j < J; j++)
        w[j] = 1 / w[j];
    proportional(w, J, T, (double)r->cap, A + 2 * J, flag);
    ranks(r->performance, J, w);
    proportional(w, J, T, (double)r->cap, A + 3 * J, flag);
    set_beta(&c, b);
    {
        double *G = A + 4 * J, *gain = x2;
        for (size_t j = 0; j < J; j++)
            gain[j] = prob(&c, j, 1);
        for (double given = 0; given < T; given += 1) {
            size_t best = 0;
            double bg = -INFINITY;
            for (size_t j = 0; j < J; j++)
                if (G[j] < (double)r->cap && gain[j] > bg) {
                    bg = gain[j];
                    best = j;
                }
            G[best] += 1;
            double L = G[best];
            gain[best] = (L + 1) * prob(&c, best, L + 1) - L * prob(&c, best, L);
        }
    }
    for (size_t j = 0; j < J; j++)
        r->p_observed[j] = prob(&c, j, c.L[j]);
    for (int q = 0; q < BH_POLICY_COUNT; q++) {
        bh_policy_row *row = &r->rows[q];
        row->name = POLICY_NAME[q];
        row->followups = followups(&c, A + (size_t)q * J);
        row->rate = row->followups / T;
        row->lost = T - row->followups;
        /* truth: no estimation uncertainty */
        row->rate_low = row->rate_high = row->rate;
        row->lost_low = row->lost_high = row->lost;
    }
    if (o->truth)
        goto done;
    /* draws: b + chol(V) z */
    for (size_t i = 0; i < c.p; i++)
        for (size_t k = 0; k < c.p; k++) {
            int al = fit->aliased && (fit->aliased[i] || fit->aliased[k]);
            double v = al ? (i == k) * 0.0 : fit->vcov[i * c.p + k];
            gsl_matrix_set(V, i, k, v);
        }
    /* aliased coefficients are fixed at 0: a unit diagonal keeps the factor
     * defined and their design columns are zero */
    for (size_t i = 0; i < c.p; i++)
        if (fit->aliased && fit->aliased[i])
            gsl_matrix_set(V, i, i, 1);
    if (gsl_linalg_cholesky_decomp1(V) != GSL_SUCCESS) {
        s = bh_error_set(err, BH_ENUMERIC, "model %s: the coefficient covariance is not positive "
                         "definite; cannot draw coefficients", md->name);
        goto done;
    }
    draws = malloc(BH_POLICY_COUNT * o->draws * sizeof *draws);
    ok_row = malloc(o->draws * sizeof *ok_row);
    rng = bh_rng_stream_alloc(r->seed, 0);
    if (!draws || !ok_row || !rng) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t d = 0; d < o->draws; d++) {
        if ((s = bh_rng_stream_set(rng, r->seed, d, err)) != BH_OK)
            goto done;
        for (size_t k = 0; k < c.p; k++)
            z[k] = gsl_ran_gaussian(rng, 1.0);
        for (size_t i = 0; i < c.p; i++) {
            double v = fit->aliased && fit->aliased[i] ? 0 : fit->beta[i];
            if (!(fit->aliased && fit->aliased[i]))
                for (size_t k = 0; k <= i; k++)
                    v += gsl_matrix_get(V, i, k) * z[k];
            b[i] = v;
        }
        set_beta(&c, b);
        for (int q = 0; q < BH_POLICY_COUNT; q++)
            draws[(size_t)q * o->draws + d] = followups(&c, A + (size_t)q * J);
    }
    for (int q = 0; q < BH_POLICY_COUNT; q++) {
        double *x = draws + (size_t)q * o->draws;
        qsort(x, o->draws, sizeof *x, dcmp);
        bh_policy_row *row = &r->rows[q];
        double f_lo = quantile(x, o->draws, 0.025), f_hi = quantile(x, o->draws, 0.975);
        row->rate_low = f_lo / T;
        row->rate_high = f_hi / T;
        row->lost_low = T - f_hi;
        row->lost_high = T - f_lo;
    }
done:
    free(x1);
    free(x2);
    free(c.x0);
    free(c.dx);
    free(c.eta0);
    free(c.deta);
    free(c.idx);
    free(c.start);
    free(c.count);
    free(c.L);
    free(b);
    free(btrue);
    free(z);
    free(draws);
    free(ok_row);
    if (V)
        gsl_matrix_free(V);
    if (rng)
        gsl_rng_free(rng);
    bh_model_free(fitm);
    if (s != BH_OK) {
        bh_policy_result_free(r);
        return s;
    }
    *out = r;
    return BH_OK;
}

/* ---- files ---------------------------------------------------------------------- */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void num(FILE *f, double v)
{
    bh_write_csv_num(f, v);  /* round-trip precision, NA when not finite */
}

static bh_status write_one(const bh_policy_result *r, const char *dir, int which, bh_error *err)
{
    static const char *const names[3] = {"policy.csv", "allocation.csv", "policy.gp"};
    char *path = join(dir, names[which]);
    if (!path)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_afile af;
    bh_status s = bh_afile_open(&af, path, err);
    if (s != BH_OK) {
        free(path);
        return s;
    }
    FILE *f = af.fp;
    if (which == 0) {
        fputs("policy,model,reps,total_leads,followup_rate,rate_low,rate_high,"
              "expected_followups,leads_lost,lost_low,lost_high,draws,seed\n", f);
        for (int q = 0; q < BH_POLICY_COUNT; q++) {
            const bh_policy_row *w = &r->rows[q];
            fprintf(f, "%s,%s,%zu,%.15g,", w->name, r->model, r->nreps, r->total);
            double v[7] = {w->rate, w->rate_low, w->rate_high, w->followups, w->lost,
                           w->lost_low, w->lost_high};
            for (int k = 0; k < 7; k++) {
                num(f, v[k]);
                fputc(',', f);
            }
            fprintf(f, "%zu,%llu\n", r->draws, (unsigned long long)r->seed);
        }
    } else if (which == 1) {
        fputs("rep_id,experience,performance,p_followup_observed", f);
        for (int q = 0; q < BH_POLICY_COUNT; q++)
            fprintf(f, ",leads_%s", POLICY_NAME[q]);
        fputc('\n', f);
        for (size_t j = 0; j < r->nreps; j++) {
            /* ids are data text: quote as CSV */
            fputc('"', f);
            for (const char *c = r->rep_id[j]; *c; c++) {
                if (*c == '"')
                    fputc('"', f);
                fputc(*c, f);
            }
            fputs("\",", f);
            num(f, r->experience[j]);
            fputc(',', f);
            num(f, r->performance[j]);
            fputc(',', f);
            num(f, r->p_observed[j]);
            for (int q = 0; q < BH_POLICY_COUNT; q++)
                fprintf(f, ",%.15g", r->alloc[(size_t)q * r->nreps + j]);
            fputc('\n', f);
        }
    } else {
        /* Text (output name, title, policy names, model name) lives in
         * $bh_text only; commands refer to $bh_text[k] (plot.h). */
        char title[512];
        if (r->truth)
            snprintf(title, sizeof title, "Expected follow-up rate by lead-allocation policy "
                     "(true parameters, %s; %.0f leads, %zu reps)", r->model, r->total,
                     r->nreps);
        else
            snprintf(title, sizeof title, "Expected follow-up rate by lead-allocation policy "
                     "(%s, %.0f leads, %zu reps; 95%% intervals over %zu coefficient draws)",
                     r->model, r->total, r->nreps, r->draws);
        const char *text[3 + BH_POLICY_COUNT];
        text[0] = "policy.png";
        text[1] = title;
        text[2] = "expected follow-up rate";
        for (int q = 0; q < BH_POLICY_COUNT; q++)
            text[3 + q] = POLICY_NAME[q];
        fputs("# blackhole policy: a self-contained gnuplot script (gnuplot policy.gp).\n", f);
        bh_plot_write_datablock(f, "bh_text", text, 3 + BH_POLICY_COUNT);
        char lines[BH_POLICY_COUNT + 1][160];
        const char *lp[BH_POLICY_COUNT + 1];
        snprintf(lines[0], sizeof lines[0], "# row rate low high");
        lp[0] = lines[0];
        for (int q = 0; q < BH_POLICY_COUNT; q++) {
            const bh_policy_row *w = &r->rows[q];
            snprintf(lines[q + 1], sizeof lines[q + 1], "%d %.10g %.10g %.10g", q + 1, w->rate,
                     w->rate_low, w->rate_high);
            lp[q + 1] = lines[q + 1];
        }
        fputs("set terminal pngcairo size 900,500 noenhanced font 'Helvetica,12' background "
              "rgb 'white'\nset output $bh_text[1]\n", f);
        fputs(bh_plot_theme(), f);
        fputc('\n', f);
        bh_plot_write_datablock(f, "bh_policy", lp, BH_POLICY_COUNT + 1);
        fputs("set title $bh_text[2]\nset xlabel $bh_text[3]\nunset key\n"
              "set yrange [0.5:", f);
        fprintf(f, "%d.5]\nset ytics (", BH_POLICY_COUNT);
        for (int q = 0; q < BH_POLICY_COUNT; q++)
            fprintf(f, "%s$bh_text[%d] %d", q ? ", " : "", 4 + q, q + 1);
        fputs(")\nplot $bh_policy using 2:1:3:4 with xerrorbars pt 7 ps 1.5 lw 2\n", f);
    }
    s = bh_afile_commit(&af, err);
    free(path);
    return s;
}

bh_status bh_policy_write(const bh_policy_result *r, const char *dir, bh_error *err)
{
    for (int k = 0; k < 3; k++) {
        bh_status s = write_one(r, dir, k, err);
        if (s != BH_OK)
            return s;
    }
    return BH_OK;
}
