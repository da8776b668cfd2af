/* predict.c - fitted values and standard errors on new data. */
#include "blackhole/predict.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "blackhole/design.h"
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
    free(p);
}

static bh_prediction *prediction_alloc(size_t n)
{
    bh_prediction *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t n1 = n ? n : 1;
    p->n = n;
    p->eta = malloc(n1 * sizeof(double));
    p->se_eta = malloc(n1 * sizeof(double));
    p->mu = malloc(n1 * sizeof(double));
    p->se_mu = malloc(n1 * sizeof(double));
    p->conf_low = malloc(n1 * sizeof(double));
    p->conf_high = malloc(n1 * sizeof(double));
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

bh_status bh_predict(const bh_fit *fit, const bh_frame *newdata, bh_prediction **out,
                     bh_error *err)
{
    *out = NULL;
    const bh_design *d = fit->design;
    if (!d || !d->terms)
        return bh_error_set(err, BH_EUSAGE, "this model cannot predict: it has no formula terms");
    const bh_terms *t = d->terms;
    if (fit->p != t->p)
        return bh_error_set(err, BH_EUSAGE,
                            "prediction is implemented for single-equation models");
    bh_link link = BH_LINK_IDENTITY;
    if (fit->link && bh_link_parse(fit->link, &link, err) != BH_OK)
        return err ? err->status : BH_EINTERNAL;
    size_t p = fit->p, n = newdata->nrow;
    size_t *map = malloc((t->nraw ? t->nraw : 1) * sizeof *map);
    size_t *one = malloc(sizeof *one);
    double *x = malloc((p ? p : 1) * sizeof *x), *vx = malloc((p ? p : 1) * sizeof *vx);
    bh_prediction *pr = prediction_alloc(n);
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
                    sa += fit->vcov[a * p + b] * x[b];
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
