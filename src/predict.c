/* predict.c - fitted values and standard errors on new data. */
#include "blackhole/predict.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "blackhole/design.h"
#include "blackhole/dirichlet.h"
#include "blackhole/glm.h"
#include "blackhole/terms.h"

void bh_prediction_free(bh_prediction *p)
{
    if (!p)
        return;
    free(p->eta);
    free(p->se_eta);
    free(p->mu);
    free(p->se_mu);
    free(p->conf_low);
    free(p->conf_high);
    free(p->components);
    free(p);
}

static bh_prediction *prediction_alloc(size_t n, size_t ncomp)
{
    bh_prediction *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t n1 = n ? n : 1, nc = n1 * (ncomp ? ncomp : 1);
    p->n = n;
    p->ncomp = ncomp ? ncomp : 1;
    p->eta = malloc(n1 * sizeof(double));
    p->se_eta = malloc(n1 * sizeof(double));
    p->mu = malloc(nc * sizeof(double));
    p->se_mu = malloc(nc * sizeof(double));
    p->conf_low = malloc(nc * sizeof(double));
    p->conf_high = malloc(nc * sizeof(double));
    if (!p->eta || !p->se_eta || !p->mu || !p->se_mu || !p->conf_low || !p->conf_high) {
        bh_prediction_free(p);
        return NULL;
    }
    return p;
}

/* Flag the raw variables an expression reads (depth is bounded by the
 * parser's BH_FORMULA_MAX_DEPTH). */
static void mark_raw(const bh_expr *e, size_t nraw, unsigned char *flags)
{
    for (; e; e = e->arg[1]) {
        if (e->kind == BH_EX_VAR && e->raw < nraw)
            flags[e->raw] = 1;
        mark_raw(e->arg[0], nraw, flags);
    }
}

/* Map the model's raw variables onto new data that may lack the columns
 * only the response (or random-effect groups) read: those are stood in for
 * by all-missing numeric columns in a shallow view of the frame, and get
 * map[k] = SIZE_MAX afterwards, so nothing reads them. */
static bh_status map_newdata(const bh_terms *t, const bh_frame *data, size_t *map,
                             bh_error *err)
{
    const bh_formula *f = t->formula;
    unsigned char *rhs = calloc(t->nraw ? t->nraw : 1, 1);
    if (!rhs)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    /* raw variables read by terms and offsets */
    for (size_t i = 0; i < f->nvars + f->noffsets; i++)
        mark_raw(i < f->nvars ? f->vars[i].expr : f->offsets[i - f->nvars], t->nraw, rhs);
    size_t extra = 0;
    for (size_t k = 0; k < t->nraw; k++)
        if (!rhs[k] && bh_frame_index(data, t->rawvars[k]) < 0)
            extra++;
    bh_frame view = *data;
    bh_column *cols = NULL;
    unsigned char *na = NULL;
    double *nanv = NULL;
    bh_status s = BH_OK;
    if (extra) {
        size_t n1 = data->nrow ? data->nrow : 1;
        cols = calloc(data->ncol + extra, sizeof *cols);
        na = malloc(n1);
        nanv = malloc(n1 * sizeof *nanv);
        if (!cols || !na || !nanv) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            goto done;
        }
        memset(na, 1, n1);
        for (size_t i = 0; i < n1; i++)
            nanv[i] = NAN;
        memcpy(cols, data->cols, data->ncol * sizeof *cols);
        size_t c = data->ncol;
        for (size_t k = 0; k < t->nraw; k++)
            if (!rhs[k] && bh_frame_index(data, t->rawvars[k]) < 0) {
                cols[c].name = t->rawvars[k];
                cols[c].type = BH_COL_NUMERIC;
                cols[c].n = data->nrow;
                cols[c].na = na;
                cols[c].num = nanv;
                c++;
            }
        view.cols = cols;
        view.ncol = c;
        view.cap = c;
    }
    s = bh_terms_map(t, &view, map, err);
    for (size_t k = 0; s == BH_OK && k < t->nraw; k++)
        if (!rhs[k])
            map[k] = SIZE_MAX;
done:
    free(rhs);
    free(cols);
    free(na);
    free(nanv);
    return s;
}

/* Is any raw input of row i missing? */
static int row_missing(const bh_frame *data, const size_t *map, size_t nraw, size_t i)
{
    for (size_t k = 0; k < nraw; k++)
        if (map[k] != SIZE_MAX && data->cols[map[k]].na[i])
            return 1;
    return 0;
}

/* Expected shares of a Dirichlet model with delta-method standard errors:
 * d share_c / d beta(block b, j) = d share_c / d eta_comp(b) * x_j. */
static bh_status predict_shares(const bh_fit *fit, const bh_frame *newdata, const size_t *map,
                                bh_prediction **out, bh_error *err)
{
    const bh_design *d = fit->design;
    const bh_terms *t = d->terms;
    bh_dirichlet_layout L;
    bh_status s = bh_dirichlet_layout_of(fit, &L, err);
    if (s != BH_OK)
        return s;
    size_t K = L.K, px = L.p, P = fit->p, n = newdata->nrow;
    if (K > BH_DIRICHLET_MAX_K)
        return bh_error_set(err, BH_EUSAGE, "too many components");
    bh_prediction *pr = prediction_alloc(n, K);
    double *x = malloc((px ? px : 1) * sizeof *x), *g = malloc(P * sizeof *g);
    double share[BH_DIRICHLET_MAX_K], jac[BH_DIRICHLET_MAX_K * BH_DIRICHLET_MAX_K];
    size_t one, blockcomp[BH_DIRICHLET_MAX_K], nb = 0;
    if (!pr || !x || !g || !(pr->components = calloc(K, sizeof *pr->components))) {
        bh_prediction_free(pr);
        free(x);
        free(g);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    for (size_t c = 0; c < K; c++) {
        pr->components[c] = d->ynames[c];
        if (!(L.param == BH_DIRICHLET_ALTERNATIVE && c == L.base))
            blockcomp[nb++] = c;
    }
    double z = isinf(fit->df_inference) ? gsl_cdf_ugaussian_Qinv((1 - fit->level) / 2)
                                        : gsl_cdf_tdist_Qinv((1 - fit->level) / 2,
                                                             fit->df_inference);
    for (size_t i = 0; i < n && s == BH_OK; i++) {
        pr->eta[i] = pr->se_eta[i] = NAN;
        int miss = 0;
        for (size_t k = 0; k < t->nraw; k++)
            if (map[k] != SIZE_MAX && newdata->cols[map[k]].na[i])
                miss = 1;
        if (miss) {
            for (size_t c = 0; c < K; c++)
                pr->mu[c * n + i] = pr->se_mu[c * n + i] = pr->conf_low[c * n + i] =
                    pr->conf_high[c * n + i] = NAN;
            pr->nmissing++;
            continue;
        }
        one = i;
        if ((s = bh_terms_eval_rows(t, newdata, map, &one, 1, NULL, 0, SIZE_MAX, x, 1, err)))
            break;
        bh_dirichlet_predict(&L, fit->beta, x, 1, 1, share, jac);
        for (size_t c = 0; c < K; c++) {
            for (size_t q = 0; q < P; q++)
                g[q] = 0;
            for (size_t b = 0; b < nb; b++)
                for (size_t j = 0; j < px; j++)
                    g[b * px + j] = jac[c * K + blockcomp[b]] * x[j];
            double v = 0;
            for (size_t a = 0; a < P; a++) {
                if (fit->aliased[a] || g[a] == 0)
                    continue;
                for (size_t bq = 0; bq < P; bq++)
                    if (!fit->aliased[bq] && g[bq] != 0)
                        v += g[a] * fit->vcov[a * P + bq] * g[bq];
            }
            double sh = share[c], se = sqrt(v > 0 ? v : 0);
            pr->mu[c * n + i] = sh;
            pr->se_mu[c * n + i] = se;
            double lg = log(sh / (1 - sh)), sl = se / (sh * (1 - sh));
            pr->conf_low[c * n + i] = 1 / (1 + exp(-(lg - z * sl)));
            pr->conf_high[c * n + i] = 1 / (1 + exp(-(lg + z * sl)));
        }
    }
    free(x);
    free(g);
    if (s != BH_OK) {
        bh_prediction_free(pr);
        return s;
    }
    *out = pr;
    return BH_OK;
}

bh_status bh_predict(const bh_fit *fit, const bh_frame *newdata, bh_prediction **out,
                     bh_error *err)
{
    *out = NULL;
    const bh_design *d = fit->design;
    if (!d || !d->terms)
        return bh_error_set(err, BH_EUSAGE, "this model cannot predict: it has no formula terms");
    const bh_terms *t = d->terms;
    if (fit->family && strcmp(fit->family, "dirichlet") == 0) {
        size_t *m2 = malloc((t->nraw ? t->nraw : 1) * sizeof *m2);
        if (!m2)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        bh_status s2 = map_newdata(t, newdata, m2, err);
        if (s2 == BH_OK)
            s2 = predict_shares(fit, newdata, m2, out, err);
        free(m2);
        return s2;
    }
    if (fit->p < t->p)
        return bh_error_set(err, BH_EUSAGE,
                            "prediction is implemented for single-equation models");
    bh_link link = BH_LINK_IDENTITY;
    if (fit->link && bh_link_parse(fit->link, &link, err) != BH_OK)
        return err ? err->status : BH_EINTERNAL;
    /* a mixed model's fixed part: the first t->p coefficients (the SDs of
     * the random intercepts follow); prediction at a zero random effect */
    size_t p = t->p, P = fit->p, n = newdata->nrow;
    size_t *map = malloc((t->nraw ? t->nraw : 1) * sizeof *map);
    size_t *one = malloc(sizeof *one);
    double *x = malloc((p ? p : 1) * sizeof *x), *vx = malloc((p ? p : 1) * sizeof *vx);
    bh_prediction *pr = prediction_alloc(n, 1);
    bh_status s = BH_OK;
    if (!map || !one || !x || !vx || !pr) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    if ((s = map_newdata(t, newdata, map, err)) != BH_OK)
        goto done;
    double crit = isinf(fit->df_inference)
                      ? gsl_cdf_ugaussian_Qinv((1 - fit->level) / 2)
                      : gsl_cdf_tdist_Qinv((1 - fit->level) / 2, fit->df_inference);
    const bh_formula *f = t->formula;
    for (size_t i = 0; i < n; i++) {
        if (row_missing(newdata, map, t->nraw, i)) {
            pr->eta[i] = pr->se_eta[i] = pr->mu[i] = pr->se_mu[i] = NAN;
            pr->conf_low[i] = pr->conf_high[i] = NAN;
            pr->nmissing++;
            continue;
        }
        *one = i;
        if ((s = bh_terms_eval_rows(t, newdata, map, one, 1, NULL, 0, SIZE_MAX, x, 1, err)) != BH_OK)
            goto done;
        double eta = 0;
        for (size_t j = 0; j < p; j++)
            if (!fit->aliased[j])
                eta += x[j] * fit->beta[j];
        for (size_t k = 0; k < f->noffsets; k++) {
            double off;
            if ((s = bh_terms_eval_expr_rows(t, f->offsets[k], newdata, map, one, 1, NULL, 0,
                                             SIZE_MAX, &off, NULL, err)) != BH_OK)
                goto done;
            eta += off;
        }
        double v = 0;
        for (size_t a = 0; a < p; a++) {
            if (fit->aliased[a])
                continue;
            double sa = 0;
            for (size_t b = 0; b < p; b++)
                if (!fit->aliased[b])
                    sa += fit->vcov[a * P + b] * x[b];
            v += x[a] * sa;
        }
        double se = sqrt(v > 0 ? v : 0);
        pr->eta[i] = eta;
        pr->se_eta[i] = se;
        pr->mu[i] = bh_link_inv(link, eta);
        pr->se_mu[i] = fabs(bh_link_mu_eta(link, eta)) * se;
        pr->conf_low[i] = bh_link_inv(link, eta - crit * se);
        pr->conf_high[i] = bh_link_inv(link, eta + crit * se);
    }
done:
    free(map);
    free(one);
    free(x);
    free(vx);
    if (s != BH_OK) {
        bh_prediction_free(pr);
        return s;
    }
    *out = pr;
    return BH_OK;
}
