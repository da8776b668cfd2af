/* fit.c - the generic estimation result: allocation, warnings, scores and
 * the coefficient table. */
#include "blackhole/fit.h"
#include "blackhole/boot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

/* malloc(0) may return NULL; every array gets at least one element so a
 * NULL always means "out of memory". */
static double *nan_array(size_t k)
{
    double *v = malloc((k ? k : 1) * sizeof *v);
    if (v)
        for (size_t i = 0; i < k; i++)
            v[i] = NAN;
    return v;
}

bh_fit *bh_fit_alloc(size_t p, size_t n, size_t m, size_t nblocks)
{
    bh_fit *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->p = p;
    f->nrows = n;
    f->linear = 0;
    f->converged = 1;
    f->level = 0.95;
    f->df_inference = INFINITY;
    f->dispersion = NAN;
    double *st = (double *)&f->stats;
    for (size_t k = 0; k < sizeof f->stats / sizeof(double); k++)
        st[k] = NAN;

    size_t p1 = p ? p : 1;
    f->term = calloc(p1, sizeof *f->term);
    f->component = calloc(p1, sizeof *f->component);
    f->aliased = calloc(p1, 1);
    f->beta = nan_array(p);
    f->vcov = nan_array(p * p);
    f->bread = nan_array(p * p);
    f->se = nan_array(p);
    f->statistic = nan_array(p);
    f->p_value = nan_array(p);
    f->conf_low = nan_array(p);
    f->conf_high = nan_array(p);
    int ok = f->term && f->component && f->aliased && f->beta && f->vcov &&
             f->bread && f->se && f->statistic && f->p_value && f->conf_low &&
             f->conf_high;
    for (size_t j = 0; ok && j < p; j++)
        ok = (f->component[j] = calloc(1, 1)) != NULL;
    if (ok && nblocks) {
        f->nblocks = nblocks;
        ok = (f->blocks = calloc(nblocks, sizeof *f->blocks)) != NULL;
    }
    if (ok && n) {
        size_t m1 = m ? m : 1;
        f->fitted = nan_array(n * m1);
        f->resid = nan_array(n * m1);
        ok = f->fitted && f->resid;
        if (ok && nblocks)
            ok = (f->u = nan_array(n * nblocks)) != NULL;
    }
    if (!ok) {
        bh_fit_free(f);
        return NULL;
    }
    return f;
}

/* Bytes allocated at least for every warning and note: a recycled fit
 * keeps its message strings, and any message shorter than this can then
 * be written into any of them. */
#define MSG_ROOM 256

/* Free a list of n messages with cap entries allocated. */
static void free_msgs(char **list, size_t n, size_t cap)
{
    size_t m = cap > n ? cap : n;
    for (size_t k = 0; list && k < m; k++)
        free(list[k]);
    free(list);
}

/* Empty a message list, keeping its array and strings for the next
 * messages (*cap: the entries allocated). */
static void keep_msgs(size_t *n, size_t *cap)
{
    if (*n > *cap)
        *cap = *n;
    *n = 0;
}

/* Free what an estimation adds to a fit beyond its p-arrays and names
 * (warnings, notes, tests, the bootstrap, the per-row arrays), leaving
 * the fields empty; with keep_msgs_mem the warnings and notes are only
 * emptied (their memory kept for a recycled fit's next messages). */
static void free_results(bh_fit *f, int keep_msgs_mem)
{
    if (keep_msgs_mem) {
        keep_msgs(&f->nwarnings, &f->warnings_cap);
        keep_msgs(&f->nnotes, &f->notes_cap);
    } else {
        free_msgs(f->warnings, f->nwarnings, f->warnings_cap);
        free_msgs(f->notes, f->nnotes, f->notes_cap);
        f->warnings = f->notes = NULL;
        f->nwarnings = f->nnotes = 0;
        f->warnings_cap = f->notes_cap = 0;
    }
    for (size_t k = 0; k < f->ntests; k++) {
        free(f->tests[k].kind);
        free(f->tests[k].label);
    }
    free(f->tests);
    bh_boot_result_free(f->boot);
    free(f->u);
    free(f->scores);
    free(f->hat);
    free(f->fitted);
    free(f->resid);
    f->ntests = 0;
    f->tests = NULL;
    f->boot = NULL;
    f->u = f->scores = f->hat = f->fitted = f->resid = NULL;
    f->rows_cap = 0;
}

void bh_fit_free(bh_fit *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->formula);
    free(f->family);
    free(f->link);
    free(f->method);
    for (size_t j = 0; j < f->p; j++) {
        if (f->term)
            free(f->term[j]);
        if (f->component)
            free(f->component[j]);
    }
    free(f->term);
    free(f->component);
    free(f->beta);
    free(f->aliased);
    free(f->vcov);
    free(f->se);
    free(f->statistic);
    free(f->p_value);
    free(f->conf_low);
    free(f->conf_high);
    free(f->bread);
    free(f->blocks);
    free_results(f, 0);
    free(f);
}

bh_status bh_fit_add_test(bh_fit *fit, const char *kind, const char *label,
                          double statistic, double df1, double df2, double p_value)
{
    bh_fit_test *t = realloc(fit->tests, (fit->ntests + 1) * sizeof *t);
    if (!t)
        return BH_ENOMEM;
    fit->tests = t;
    bh_fit_test *x = &t[fit->ntests];
    memset(x, 0, sizeof *x);
    if (bh_fit_set_string(&x->kind, kind) != BH_OK ||
        bh_fit_set_string(&x->label, label) != BH_OK) {
        free(x->kind);
        free(x->label);
        return BH_ENOMEM;
    }
    x->statistic = statistic;
    x->df1 = df1;
    x->df2 = df2;
    x->p_value = p_value;
    fit->ntests++;
    return BH_OK;
}

static void fill_nan(double *v, size_t k)
{
    for (size_t i = 0; i < k; i++)
        v[i] = NAN;
}

/* bh_fit_recycle; with keep_comp the components keep their text. */
static int recycle(bh_fit *f, size_t p, size_t nblocks, int keep_comp)
{
    if (!f || f->p != p || f->nblocks != nblocks || (nblocks && !f->blocks))
        return -1;
    free_results(f, 1);
    f->design = NULL;
    f->linear = 0;
    f->nobs = f->nrows = f->ndropped = f->rank = f->nclusters = f->iterations = 0;
    f->converged = 1;
    f->level = 0.95;
    f->df_inference = INFINITY;
    f->dispersion = NAN;
    f->vcov_type[0] = '\0';
    fill_nan((double *)&f->stats, sizeof f->stats / sizeof(double));
    fill_nan(f->beta, p);
    fill_nan(f->vcov, p * p);
    fill_nan(f->bread, p * p);
    fill_nan(f->se, p);
    fill_nan(f->statistic, p);
    fill_nan(f->p_value, p);
    fill_nan(f->conf_low, p);
    fill_nan(f->conf_high, p);
    memset(f->aliased, 0, p ? p : 1);
    if (nblocks)
        memset(f->blocks, 0, nblocks * sizeof *f->blocks);
    /* components back to "" (in place: each holds at least one byte) */
    for (size_t j = 0; j < p && !keep_comp; j++)
        if (f->component[j])
            f->component[j][0] = '\0';
    return 0;
}

int bh_fit_recycle(bh_fit *f, size_t p, size_t nblocks)
{
    return recycle(f, p, nblocks, 0);
}

int bh_fit_recycle_rows(bh_fit *f, size_t p, size_t nblocks, size_t rows)
{
    if (!f || f->p != p || f->nblocks != nblocks || (nblocks && !f->blocks))
        return -1;
    /* Taken out before bh_fit_recycle frees the per-row arrays, put back
     * after when they are large enough. */
    int keep = f->rows_cap >= rows && f->rows_cap > 0;
    double *kept[5] = {f->fitted, f->resid, f->u, f->hat, f->scores};
    size_t cap = f->rows_cap;
    if (keep)
        f->fitted = f->resid = f->u = f->hat = f->scores = NULL;
    recycle(f, p, nblocks, 1);
    if (!keep)
        return 1;
    f->fitted = kept[0];
    f->resid = kept[1];
    f->u = kept[2];
    f->hat = kept[3];
    f->scores = kept[4];
    f->rows_cap = cap;
    return 0;
}

bh_status bh_fit_set_string(char **field, const char *value)
{
    if (value && *field && strcmp(*field, value) == 0)
        return BH_OK;
    char *c = NULL;
    if (value) {
        size_t L = strlen(value) + 1;
        c = malloc(L);
        if (!c)
            return BH_ENOMEM;
        memcpy(c, value, L);
    }
    free(*field);
    *field = c;
    return BH_OK;
}

/* Append a formatted string to a list (warnings and notes share it) of
 * *n messages with *cap entries allocated (a recycled fit's: entries past
 * *n are NULL or strings of at least MSG_ROOM bytes, written again here). */
static bh_status push_fmt(char ***list, size_t *n, size_t *cap, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int k = vsnprintf(NULL, 0, fmt, ap);
    if (k < 0) {
        va_end(ap2);
        return BH_EINTERNAL;
    }
    size_t need = (size_t)k + 1, room = need > MSG_ROOM ? need : MSG_ROOM;
    if (*n >= *cap) {
        char **w = realloc(*list, (*n + 1) * sizeof *w);
        if (!w) {
            va_end(ap2);
            return BH_ENOMEM;
        }
        *list = w;
        w[*n] = NULL;
        *cap = *n + 1;
    }
    char **slot = &(*list)[*n];
    /* a kept string holds MSG_ROOM bytes, or its text when longer */
    if (*slot && need > MSG_ROOM && need > strlen(*slot) + 1) {
        free(*slot);
        *slot = NULL;
    }
    if (!*slot && !(*slot = malloc(room))) {
        va_end(ap2);
        return BH_ENOMEM;
    }
    vsnprintf(*slot, need, fmt, ap2);
    va_end(ap2);
    (*n)++;
    return BH_OK;
}

bh_status bh_fit_warn(bh_fit *fit, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bh_status s = push_fmt(&fit->warnings, &fit->nwarnings, &fit->warnings_cap, fmt, ap);
    va_end(ap);
    return s;
}

bh_status bh_fit_note(bh_fit *fit, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bh_status s = push_fmt(&fit->notes, &fit->nnotes, &fit->notes_cap, fmt, ap);
    va_end(ap);
    return s;
}

void bh_fit_score(const bh_fit *fit, size_t i, double *s)
{
    size_t n = fit->nrows, p = fit->p;
    if (fit->scores) {
        for (size_t j = 0; j < p; j++)
            s[j] = fit->aliased[j] ? 0.0 : fit->scores[j * n + i];
        return;
    }
    for (size_t j = 0; j < p; j++)
        s[j] = 0.0;
    for (size_t b = 0; b < fit->nblocks; b++) {
        const bh_score_block *bl = &fit->blocks[b];
        double ui = fit->u[b * n + i];
        for (size_t c = 0; c < bl->ncol && bl->coef0 + c < p; c++)
            s[bl->coef0 + c] += bl->x[c * n + i] * ui;
    }
    for (size_t j = 0; j < p; j++)
        if (fit->aliased[j])
            s[j] = 0.0;
}

void bh_fit_score_rows(const bh_fit *fit, size_t i0, size_t rows, const size_t *idx,
                       size_t r, double *g)
{
    size_t n = fit->nrows, p = fit->p;
    /* Common case (one block per coefficient, few coefficients): row by
     * row, so that g is written in order while the r columns are read as
     * r sequential streams. */
    enum { FEW = 64 };
    const double *xs[FEW], *us[FEW];
    int one_block = !fit->scores && r <= FEW;
    for (size_t k = 0; k < r && one_block; k++) {
        size_t j = idx[k], hits = 0;
        for (size_t b = 0; b < fit->nblocks; b++) {
            const bh_score_block *bl = &fit->blocks[b];
            if (j < bl->coef0 || j - bl->coef0 >= bl->ncol || j >= p)
                continue;
            xs[k] = bl->x + (j - bl->coef0) * n + i0;
            us[k] = fit->u + b * n + i0;
            hits++;
        }
        one_block = hits == 1;
    }
    if (one_block) {
        for (size_t i = 0; i < rows; i++)
            for (size_t k = 0; k < r; k++)
                g[i * r + k] = 0.0 + xs[k][i] * us[k][i];
        return;
    }
    for (size_t k = 0; k < r; k++) {
        size_t j = idx[k];
        double *gk = g + k;
        if (fit->scores) {
            const double *sc = fit->scores + j * n + i0;
            for (size_t i = 0; i < rows; i++)
                gk[i * r] = sc[i];
            continue;
        }
        /* 0.0 + the first product, as bh_fit_score adds to a zeroed row:
         * a -0 product becomes +0 there too. */
        int first = 1;
        for (size_t b = 0; b < fit->nblocks; b++) {
            const bh_score_block *bl = &fit->blocks[b];
            if (j < bl->coef0 || j - bl->coef0 >= bl->ncol || j >= p)
                continue;
            const double *x = bl->x + (j - bl->coef0) * n + i0;
            const double *u = fit->u + b * n + i0;
            if (first)
                for (size_t i = 0; i < rows; i++)
                    gk[i * r] = 0.0 + x[i] * u[i];
            else
                for (size_t i = 0; i < rows; i++)
                    gk[i * r] += x[i] * u[i];
            first = 0;
        }
        if (first)
            for (size_t i = 0; i < rows; i++)
                gk[i * r] = 0.0;
    }
}

bh_status bh_fit_summarize(bh_fit *fit, double level, bh_error *err)
{
    if (!(level > 0 && level < 1))
        return bh_error_set(err, BH_EUSAGE,
                            "confidence level %g is not between 0 and 1",
                            level);
    double df = fit->df_inference;
    /* t with df > 0; INFINITY (or anything not finite-positive but +inf)
     * means a z test; df <= 0 or NAN leaves no test at all. */
    int use_t = isfinite(df) && df > 0;
    int use_z = isinf(df) && df > 0;
    double alpha2 = (1.0 - level) / 2.0;
    double crit = NAN;
    if (use_t)
        crit = gsl_cdf_tdist_Qinv(alpha2, df);
    else if (use_z)
        crit = gsl_cdf_ugaussian_Qinv(alpha2);
    fit->level = level;
    size_t p = fit->p;
    for (size_t j = 0; j < p; j++) {
        double v = fit->vcov[j * p + j];
        if (fit->aliased[j] || !(v >= 0) || !isfinite(fit->beta[j])) {
            fit->se[j] = fit->statistic[j] = fit->p_value[j] = NAN;
            fit->conf_low[j] = fit->conf_high[j] = NAN;
            continue;
        }
        double se = sqrt(v), b = fit->beta[j];
        double t = b / se; /* se == 0: +-inf, or NAN for 0/0 */
        double at = fabs(t), pv = NAN;
        if (isnan(t))
            pv = NAN;
        else if (isinf(at))
            pv = 0.0;
        else if (use_t)
            pv = 2.0 * gsl_cdf_tdist_Q(at, df);
        else if (use_z)
            pv = 2.0 * gsl_cdf_ugaussian_Q(at);
        if (pv > 1.0)
            pv = 1.0;
        fit->se[j] = se;
        fit->statistic[j] = t;
        fit->p_value[j] = pv;
        fit->conf_low[j] = b - crit * se;
        fit->conf_high[j] = b + crit * se;
        if (strncmp(fit->term[j] ? fit->term[j] : "", "sd__", 4) == 0) {
            /* A random-effect SD: zero is the boundary of its space, so no
             * Wald test; the interval is Wald on the log scale (delta
             * method, se(log sd) = se / sd), which stays positive. */
            fit->statistic[j] = fit->p_value[j] = NAN;
            if (b > 0) {
                fit->conf_low[j] = b * exp(-crit * se / b);
                fit->conf_high[j] = b * exp(crit * se / b);
            } else
                fit->conf_low[j] = fit->conf_high[j] = NAN;
        }
    }
    return BH_OK;
}
