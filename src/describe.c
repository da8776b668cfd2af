/* describe.c - descriptive statistics, correlations and scales.
 * See describe.h for the definitions; they follow R's mean(), sd(),
 * quantile(type = 7), cor(use = "pairwise.complete.obs") and cor.test().
 */
#include "blackhole/describe.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Quartile probabilities of the summary. */
static const double PROB_Q1 = 0.25, PROB_MEDIAN = 0.5, PROB_Q3 = 0.75;
/* Where the correlation p-value switches from the t tail to the
 * incomplete beta (see cor_pvalue). */
static const double PVAL_BETA_BELOW = 1e-2, PVAL_BETA_MAXDF = 4e5;
/* Not where the beta result could underflow: GSL reports that through its
 * error handler, which aborts unless the program has switched it off. */
static const double PVAL_BETA_ABOVE = 1e-290;

static char *dup_str(const char *s)
{
    size_t L = strlen(s) + 1;
    char *d = malloc(L);
    if (d)
        memcpy(d, s, L);
    return d;
}

static bh_status nomem(bh_error *err, const char *what)
{
    return bh_error_set(err, BH_ENOMEM, "out of memory (%s)", what);
}

/* "unknown variable" with the frame's suggestion, if any. */
static bh_status unknown_var(const bh_frame *f, const char *name,
                             const char *role, bh_error *err)
{
    char q[128], qs[128];
    const char *sug = bh_frame_suggest(f, name);
    bh_quote(q, sizeof q, name, 60);
    if (sug)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "unknown variable '%s' (%s); did you mean '%s'?",
                           q, role, bh_quote(qs, sizeof qs, sug, 60));
    return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                       "unknown variable '%s' (%s)", q, role);
}

void bh_describe_default_options(bh_describe_options *opt)
{
    if (!opt)
        return;
    opt->vars = NULL;
    opt->nvars = 0;
    opt->by = NULL;
    opt->correlations = 1;
    opt->max_groups = BH_DESCRIBE_MAX_GROUPS;
}

/* ---- univariate numerics ------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean as R computes it: long double sum, then one correction pass (the
 * mean of the residuals) that removes most of the rounding of the first. */
static double mean_of(const double *x, size_t n)
{
    if (n == 0)
        return NAN;
    long double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    s /= (long double)n;
    if (isfinite((double)s)) {
        long double t = 0;
        for (size_t i = 0; i < n; i++)
            t += x[i] - s;
        s += t / (long double)n;
    }
    return (double)s;
}

/* Sample variance (divisor n-1) by two passes about the mean: no
 * cancellation of sum(x^2) - n mean^2. */
static double var_of(const double *x, size_t n)
{
    if (n < 2)
        return NAN;
    double m = mean_of(x, n);
    long double ss = 0;
    for (size_t i = 0; i < n; i++) {
        long double d = (long double)x[i] - m;
        ss += d * d;
    }
    return (double)(ss / (long double)(n - 1));
}

double bh_describe_quantile_sorted(const double *x, size_t n, double prob)
{
    if (!x || n == 0 || !(prob >= 0 && prob <= 1))
        return NAN;
    /* R's arithmetic exactly: 1-based index = 1 + (n-1) p, then linear
     * interpolation between the order statistics floor and ceiling. */
    double index = 1.0 + (double)(n - 1) * prob;
    double lo = floor(index), hi = ceil(index);
    size_t ilo = (size_t)lo - 1, ihi = (size_t)hi - 1;
    if (ihi >= n)          /* guards rounding at prob == 1 */
        ihi = n - 1;
    if (ilo >= n)
        ilo = n - 1;
    double q = x[ilo];
    double h = index - lo;
    /* Skipping equal neighbours also keeps Inf - Inf out of the sum. */
    if (index > lo && x[ihi] != q)
        q = (1 - h) * q + h * x[ihi];
    return q;
}

static void stats_numeric(const bh_column *c, const size_t *rows, size_t nrows,
                          double *buf, bh_describe_stats *st)
{
    size_t m = 0;
    for (size_t t = 0; t < nrows; t++) {
        size_t i = rows ? rows[t] : t;
        if (!c->na[i] && !isnan(c->num[i]))
            buf[m++] = c->num[i];
    }
    st->n = m;
    st->missing = nrows - m;
    st->mean = mean_of(buf, m);
    double v = var_of(buf, m);
    st->sd = isnan(v) ? NAN : sqrt(v);
    /* One copy of the group's values, sorted in place: gives min, max and
     * every quantile. */
    qsort(buf, m, sizeof *buf, cmp_double);
    st->min = m ? buf[0] : NAN;
    st->max = m ? buf[m - 1] : NAN;
    st->q1 = bh_describe_quantile_sorted(buf, m, PROB_Q1);
    st->median = bh_describe_quantile_sorted(buf, m, PROB_MEDIAN);
    st->q3 = bh_describe_quantile_sorted(buf, m, PROB_Q3);
}

static bh_status stats_categorical(const bh_column *c, const size_t *rows,
                                   size_t nrows, bh_describe_stats *st,
                                   bh_error *err)
{
    st->mean = st->sd = st->min = st->q1 = st->median = st->q3 = st->max = NAN;
    st->counts = calloc(c->nlevels ? c->nlevels : 1, sizeof *st->counts);
    if (!st->counts)
        return nomem(err, "level counts");
    size_t m = 0;
    for (size_t t = 0; t < nrows; t++) {
        size_t i = rows ? rows[t] : t;
        int code = c->code[i];
        if (c->na[i] || code < 0 || (size_t)code >= c->nlevels)
            continue;
        st->counts[code]++;
        m++;
    }
    st->n = m;
    st->missing = nrows - m;
    return BH_OK;
}

/* ---- correlation ---------------------------------------------------------- */

double bh_describe_cor_pvalue(double r, size_t n)
{
    if (isnan(r) || n < 3)
        return NAN;
    if (fabs(r) >= 1)
        return 0.0;          /* t is infinite */
    /* t as cor.test computes it.  The two-sided p-value is 2 Q(|t|), but
     * GSL's t tail loses up to 8 digits far out (p < 1e-10); there the
     * equal form I_x(df/2, 1/2), x = df / (df + t^2), is accurate to ~1e-14
     * (checked against R over n = 3..1e6).  For huge df the beta form is
     * the weak one, and R itself switches to a normal approximation. */
    double df = (double)(n - 2);
    double t = sqrt(df) * fabs(r) / sqrt(1 - r * r);
    double p = 2 * gsl_cdf_tdist_Q(t, df);
    if (p < PVAL_BETA_BELOW && p > PVAL_BETA_ABOVE && df <= PVAL_BETA_MAXDF) {
        gsl_sf_result b;
        if (gsl_sf_beta_inc_e(df / 2, 0.5, 1 / (1 + t * t / df), &b) == GSL_SUCCESS)
            p = b.val;
    }
    return p > 1 ? 1 : p;
}

size_t bh_describe_cor(const double *x, const double *y, size_t n,
                       double *r, double *p)
{
    /* Two passes over the pairwise complete rows, like R's cor(): the
     * means of this pair first, then centred cross-products. */
    size_t m = 0;
    long double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]) && !isnan(y[i])) {
            sx += x[i];
            sy += y[i];
            m++;
        }
    double rr = NAN;
    if (m >= 2) {
        long double mx = sx / (long double)m, my = sy / (long double)m;
        long double sxx = 0, syy = 0, sxy = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i]) && !isnan(y[i])) {
                long double dx = x[i] - mx, dy = y[i] - my;
                sxx += dx * dx;
                syy += dy * dy;
                sxy += dx * dy;
            }
        if (sxx > 0 && syy > 0) {
            rr = (double)(sxy / (sqrtl(sxx) * sqrtl(syy)));
            if (rr > 1)
                rr = 1;
            else if (rr < -1)
                rr = -1;
        }
    }
    if (r)
        *r = rr;
    if (p)
        *p = bh_describe_cor_pvalue(rr, m);
    return m;
}

/* ---- result ---------------------------------------------------------------- */

static void group_clear(bh_describe_group *g, size_t nvars)
{
    if (g->stats)
        for (size_t j = 0; j < nvars; j++)
            free(g->stats[j].counts);
    free(g->stats);
    free(g->label);
    g->stats = NULL;
    g->label = NULL;
}

void bh_describe_free(bh_describe_result *res)
{
    if (!res)
        return;
    group_clear(&res->overall, res->nvars);
    for (size_t g = 0; g < res->ngroups; g++)
        group_clear(&res->groups[g], res->nvars);
    free(res->groups);
    if (res->vars)
        for (size_t j = 0; j < res->nvars; j++) {
            free(res->vars[j].name);
            for (size_t l = 0; l < res->vars[j].nlevels; l++)
                free(res->vars[j].levels[l]);
            free(res->vars[j].levels);
        }
    free(res->vars);
    free(res->by);
    free(res->cor_var);
    free(res->cor_r);
    free(res->cor_p);
    free(res->cor_n);
    free(res);
}

/* Resolve the variables to describe into column indices. */
static bh_status select_vars(const bh_frame *f, const bh_describe_options *opt,
                             long by, size_t **idx, size_t *nidx, bh_error *err)
{
    size_t cap = f->ncol ? f->ncol : 1;
    size_t n = 0;
    size_t *v = NULL;
    unsigned char *seen = calloc(cap, 1);
    if (opt->vars && opt->nvars) {
        v = malloc(opt->nvars * sizeof *v);
        if (!v || !seen) {
            free(v);
            free(seen);
            return nomem(err, "variable list");
        }
        for (size_t j = 0; j < opt->nvars; j++) {
            const char *name = opt->vars[j];
            long c = name ? bh_frame_index(f, name) : -1;
            if (c < 0) {
                free(v);
                free(seen);
                return unknown_var(f, name ? name : "", "variables to describe", err);
            }
            if (seen[c]) {
                char q[128];
                free(v);
                free(seen);
                return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                                   "variable '%s' is listed twice in the variables to describe",
                                   bh_quote(q, sizeof q, name, 60));
            }
            seen[c] = 1;
            v[n++] = (size_t)c;
        }
    } else {
        v = malloc(cap * sizeof *v);
        if (!v || !seen) {
            free(v);
            free(seen);
            return nomem(err, "variable list");
        }
        for (size_t c = 0; c < f->ncol; c++)
            if ((long)c != by)
                v[n++] = c;
    }
    free(seen);
    *idx = v;
    *nidx = n;
    return BH_OK;
}

/* Group code of every row (-1 = grouping variable missing), the group
 * labels and their count. */
static bh_status make_groups(const bh_frame *f, const bh_column *g,
                             size_t max_groups, int *code, char ***labels,
                             size_t *ngroups, bh_error *err)
{
    size_t n = f->nrow, k = 0;
    char **lab = NULL;
    char q[128];
    if (g->type == BH_COL_CATEGORICAL) {
        k = g->nlevels;
        for (size_t i = 0; i < n; i++)
            code[i] = (g->na[i] || g->code[i] < 0 || (size_t)g->code[i] >= k) ? -1 : g->code[i];
    } else {
        double *u = malloc((n ? n : 1) * sizeof *u);
        if (!u)
            return nomem(err, "group values");
        for (size_t i = 0; i < n; i++)
            if (!g->na[i] && !isnan(g->num[i]))
                u[k++] = g->num[i];
        qsort(u, k, sizeof *u, cmp_double);
        size_t d = 0;
        for (size_t i = 0; i < k; i++)
            if (d == 0 || u[i] != u[d - 1])
                u[d++] = u[i];
        k = d;
        if (max_groups && k > max_groups) {
            free(u);
            return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                               "grouping variable '%s' has %zu distinct values "
                               "(at most %zu groups); is it continuous?",
                               bh_quote(q, sizeof q, g->name, 60), k, max_groups);
        }
        for (size_t i = 0; i < n; i++) {
            code[i] = -1;
            if (g->na[i] || isnan(g->num[i]))
                continue;
            const double *hit = bsearch(&g->num[i], u, k, sizeof *u, cmp_double);
            code[i] = (int)(hit - u);
        }
        lab = calloc(k ? k : 1, sizeof *lab);
        for (size_t l = 0; lab && l < k; l++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.15g", u[l]);   /* as R's as.character */
            if (!(lab[l] = dup_str(buf))) {
                for (size_t m = 0; m < l; m++)
                    free(lab[m]);
                free(lab);
                lab = NULL;
            }
        }
        free(u);
        if (!lab)
            return nomem(err, "group labels");
        *labels = lab;
        *ngroups = k;
        return BH_OK;
    }
    if (max_groups && k > max_groups)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "grouping variable '%s' has %zu levels (at most %zu groups)",
                           bh_quote(q, sizeof q, g->name, 60), k, max_groups);
    lab = calloc(k ? k : 1, sizeof *lab);
    if (!lab)
        return nomem(err, "group labels");
    for (size_t l = 0; l < k; l++)
        if (!(lab[l] = dup_str(g->levels[l]))) {
            for (size_t m = 0; m < l; m++)
                free(lab[m]);
            free(lab);
            return nomem(err, "group labels");
        }
    *labels = lab;
    *ngroups = k;
    return BH_OK;
}

static bh_status fill_group(const bh_frame *f, const size_t *colidx, size_t nv,
                            const size_t *rows, size_t nrows, double *buf,
                            bh_describe_group *grp, bh_error *err)
{
    grp->nrow = nrows;
    grp->stats = calloc(nv ? nv : 1, sizeof *grp->stats);
    if (!grp->stats)
        return nomem(err, "statistics");
    for (size_t j = 0; j < nv; j++) {
        const bh_column *c = &f->cols[colidx[j]];
        if (c->type == BH_COL_NUMERIC)
            stats_numeric(c, rows, nrows, buf, &grp->stats[j]);
        else {
            bh_status s = stats_categorical(c, rows, nrows, &grp->stats[j], err);
            if (s)
                return s;
        }
    }
    return BH_OK;
}

static bh_status copy_vars(const bh_frame *f, const size_t *colidx, size_t nv,
                           bh_describe_result *res, bh_error *err)
{
    res->vars = calloc(nv ? nv : 1, sizeof *res->vars);
    if (!res->vars)
        return nomem(err, "variables");
    res->nvars = nv;
    for (size_t j = 0; j < nv; j++) {
        const bh_column *c = &f->cols[colidx[j]];
        bh_describe_var *v = &res->vars[j];
        v->type = c->type;
        if (!(v->name = dup_str(c->name)))
            return nomem(err, "variable names");
        if (c->type != BH_COL_CATEGORICAL)
            continue;
        v->levels = calloc(c->nlevels ? c->nlevels : 1, sizeof *v->levels);
        if (!v->levels)
            return nomem(err, "levels");
        for (size_t l = 0; l < c->nlevels; l++) {
            if (!(v->levels[l] = dup_str(c->levels[l])))
                return nomem(err, "levels");
            v->nlevels = l + 1;
        }
    }
    return BH_OK;
}

static bh_status correlations(const bh_frame *f, const size_t *colidx,
                              bh_describe_result *res, bh_error *err)
{
    size_t nc = 0;
    for (size_t j = 0; j < res->nvars; j++)
        nc += res->vars[j].type == BH_COL_NUMERIC;
    res->ncor = nc;
    size_t nn = nc ? nc * nc : 1;
    res->cor_var = malloc((nc ? nc : 1) * sizeof *res->cor_var);
    res->cor_r = malloc(nn * sizeof *res->cor_r);
    res->cor_p = malloc(nn * sizeof *res->cor_p);
    res->cor_n = malloc(nn * sizeof *res->cor_n);
    if (!res->cor_var || !res->cor_r || !res->cor_p || !res->cor_n)
        return nomem(err, "correlation matrix");
    size_t a = 0;
    for (size_t j = 0; j < res->nvars; j++)
        if (res->vars[j].type == BH_COL_NUMERIC)
            res->cor_var[a++] = j;
    size_t n = f->nrow;
    for (a = 0; a < nc; a++) {
        const double *x = f->cols[colidx[res->cor_var[a]]].num;
        for (size_t b = a; b < nc; b++) {
            const double *y = f->cols[colidx[res->cor_var[b]]].num;
            double r, p;
            size_t m = bh_describe_cor(x, y, n, &r, &p);
            if (a == b) {   /* r is 1 by definition; a test of it is void */
                r = isnan(r) ? NAN : 1.0;
                p = NAN;
            }
            res->cor_r[a * nc + b] = res->cor_r[b * nc + a] = r;
            res->cor_p[a * nc + b] = res->cor_p[b * nc + a] = p;
            res->cor_n[a * nc + b] = res->cor_n[b * nc + a] = m;
        }
    }
    return BH_OK;
}

bh_status bh_describe_run(const bh_frame *f, const bh_describe_options *opt,
                          bh_describe_result **out, bh_error *err)
{
    if (!out)
        return bh_error_set(err, BH_EINTERNAL, "bh_describe_run: NULL result pointer");
    *out = NULL;
    if (!f)
        return bh_error_set(err, BH_EINTERNAL, "bh_describe_run: NULL frame");
    bh_describe_options def;
    if (!opt) {
        bh_describe_default_options(&def);
        opt = &def;
    }

    long by = -1;
    if (opt->by) {
        by = bh_frame_index(f, opt->by);
        if (by < 0)
            return unknown_var(f, opt->by, "grouping variable", err);
    }
    size_t *colidx = NULL, nv = 0;
    bh_status s = select_vars(f, opt, by, &colidx, &nv, err);
    if (s)
        return s;

    size_t n = f->nrow;
    bh_describe_result *res = calloc(1, sizeof *res);
    double *buf = malloc((n ? n : 1) * sizeof *buf);   /* one workspace */
    int *gcode = NULL;
    size_t *rows = NULL, *start = NULL;
    char **labels = NULL;
    size_t ng = 0;
    if (!res || !buf) {
        s = nomem(err, "describe");
        goto fail;
    }
    if ((s = copy_vars(f, colidx, nv, res, err)))
        goto fail;
    if ((s = fill_group(f, colidx, nv, NULL, n, buf, &res->overall, err)))
        goto fail;

    if (by >= 0) {
        const bh_column *g = &f->cols[by];
        if (!(res->by = dup_str(g->name))) {
            s = nomem(err, "grouping variable");
            goto fail;
        }
        gcode = malloc((n ? n : 1) * sizeof *gcode);
        if (!gcode) {
            s = nomem(err, "groups");
            goto fail;
        }
        if ((s = make_groups(f, g, opt->max_groups, gcode, &labels, &ng, err)))
            goto fail;
        /* The groups' labels move into the result at once so that every
         * later failure frees them with it. */
        res->groups = calloc(ng ? ng : 1, sizeof *res->groups);
        if (!res->groups) {
            for (size_t l = 0; l < ng; l++)
                free(labels[l]);
            s = nomem(err, "groups");
            goto fail;
        }
        res->ngroups = ng;
        for (size_t l = 0; l < ng; l++)
            res->groups[l].label = labels[l];
        size_t present = 0;
        for (size_t i = 0; i < n; i++)
            present += gcode[i] >= 0;
        res->by_missing = n - present;
        if (present == 0) {
            char q[128];
            s = bh_error_at(err, BH_EDATA, f->source, 0, 0,
                            "grouping variable '%s' is missing in every row",
                            bh_quote(q, sizeof q, g->name, 60));
            goto fail;
        }
        /* Rows grouped by a counting sort: start[l] .. start[l+1]. */
        rows = malloc((n ? n : 1) * sizeof *rows);
        start = calloc(ng + 1, sizeof *start);
        if (!rows || !start) {
            s = nomem(err, "groups");
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            if (gcode[i] >= 0)
                start[gcode[i] + 1]++;
        for (size_t l = 0; l < ng; l++)
            start[l + 1] += start[l];
        for (size_t i = 0; i < n; i++)
            if (gcode[i] >= 0)
                rows[start[gcode[i]]++] = i;
        for (size_t l = ng; l > 0; l--)   /* undo the shift of the fill */
            start[l] = start[l - 1];
        start[0] = 0;
        for (size_t l = 0; l < ng; l++)
            if ((s = fill_group(f, colidx, nv, rows + start[l],
                                start[l + 1] - start[l], buf,
                                &res->groups[l], err)))
                goto fail;
    }

    if (opt->correlations && (s = correlations(f, colidx, res, err)))
        goto fail;

    free(labels);
    free(gcode);
    free(rows);
    free(start);
    free(buf);
    free(colidx);
    *out = res;
    return BH_OK;

fail:
    free(labels);
    free(gcode);
    free(rows);
    free(start);
    free(buf);
    free(colidx);
    bh_describe_free(res);
    return s;
}

/* ---- scales ----------------------------------------------------------------- */

void bh_scale_result_free(bh_scale_result *s)
{
    if (!s)
        return;
    free(s->name);
    if (s->items)
        for (size_t j = 0; j < s->k; j++)
            free(s->items[j]);
    free(s->items);
    free(s->alpha_if_deleted);
    memset(s, 0, sizeof *s);
}

/* Raw alpha of the items cols[j] for j != skip, on the rows given;
 * buf holds m doubles. */
static double alpha_of(const bh_column *const *cols, size_t k, size_t skip,
                       const size_t *rows, size_t m, double *buf)
{
    size_t kk = skip < k ? k - 1 : k;
    if (kk < 2 || m < 2)
        return NAN;
    long double sumvar = 0;
    for (size_t j = 0; j < k; j++) {
        if (j == skip)
            continue;
        for (size_t t = 0; t < m; t++)
            buf[t] = cols[j]->num[rows[t]];
        sumvar += var_of(buf, m);
    }
    /* The variance of the total directly (not from the covariances): the
     * textbook formula, and one two-pass variance. */
    for (size_t t = 0; t < m; t++) {
        long double tot = 0;
        for (size_t j = 0; j < k; j++)
            if (j != skip)
                tot += cols[j]->num[rows[t]];
        buf[t] = (double)tot;
    }
    double vt = var_of(buf, m);
    if (!(vt > 0))
        return NAN;
    return (double)kk / (double)(kk - 1) * (1.0 - (double)(sumvar / vt));
}

/* The item columns of scale q (its quoted name) into cols[0..k), checked:
 * at least 2 items, each a known (else the closest name is suggested),
 * numeric column listed once. */
static bh_status scale_items(const bh_frame *f, const char *q, const char *const *items,
                             size_t k, const bh_column **cols, bh_error *err)
{
    char q2[128], q3[128];
    if (k < 2 || !items)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "scale '%s' needs at least 2 items, got %zu", q, items ? k : 0);
    for (size_t j = 0; j < k; j++) {
        const char *it = items[j] ? items[j] : "";
        const bh_column *c = bh_frame_col(f, it);
        bh_quote(q2, sizeof q2, it, 60);
        if (!c) {
            const char *sug = bh_frame_suggest(f, it);
            if (sug)
                return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                                   "scale '%s': unknown item '%s'; did you mean '%s'?",
                                   q, q2, bh_quote(q3, sizeof q3, sug, 60));
            return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                               "scale '%s': unknown item '%s'", q, q2);
        }
        if (c->type != BH_COL_NUMERIC) {
            if (c->first_text && c->first_text_line)
                return bh_error_at(err, BH_EUSAGE, f->source, c->first_text_line,
                                   c->file_column,
                                   "scale '%s': item '%s' is not numeric (value '%s')",
                                   q, q2, bh_quote(q3, sizeof q3, c->first_text, 40));
            return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                               "scale '%s': item '%s' is categorical, not numeric", q, q2);
        }
        for (size_t i = 0; i < j; i++)
            if (cols[i] == c)
                return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                                   "scale '%s': item '%s' is listed twice", q, q2);
        cols[j] = c;
    }
    return BH_OK;
}

/* The composite of row i: mean of the items present there (missing and
 * NaN items left out), NAN when none is; *present gets their number.
 * The one definition both scoring entry points use. */
static double scale_row(const bh_column *const *cols, size_t k, size_t i, size_t *present)
{
    long double sum = 0;
    size_t c = 0;
    for (size_t j = 0; j < k; j++)
        if (!cols[j]->na[i] && !isnan(cols[j]->num[i])) {
            sum += cols[j]->num[i];
            c++;
        }
    *present = c;
    return c ? (double)(sum / (long double)c) : NAN;
}

bh_status bh_scale_score(bh_frame *f, const char *name,
                         const char *const *items, size_t k,
                         bh_scale_result *out, bh_error *err)
{
    char q[128];
    if (out)
        memset(out, 0, sizeof *out);
    if (!f)
        return bh_error_set(err, BH_EINTERNAL, "bh_scale_score: NULL frame");
    if (!name || !*name)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0, "a scale needs a name");
    bh_quote(q, sizeof q, name, 60);
    if (bh_frame_col(f, name))
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "scale '%s': a column of that name already exists", q);
    if (k < 2 || !items)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "scale '%s' needs at least 2 items, got %zu", q, items ? k : 0);

    const bh_column **cols = calloc(k, sizeof *cols);
    if (!cols)
        return nomem(err, "scale items");
    bh_status s = scale_items(f, q, items, k, cols, err);
    if (s != BH_OK)
        goto done;

    size_t n = f->nrow;
    size_t *rows = malloc((n ? n : 1) * sizeof *rows);
    double *buf = malloc((n ? n : 1) * sizeof *buf);
    double *score = malloc((n ? n : 1) * sizeof *score);
    double *drop = malloc(k * sizeof *drop);
    if (!rows || !buf || !score || !drop) {
        free(rows);
        free(buf);
        free(score);
        free(drop);
        s = nomem(err, "scale");
        goto done;
    }
    size_t m = 0, scored = 0;
    for (size_t i = 0; i < n; i++) {
        size_t present;
        score[i] = scale_row(cols, k, i, &present);
        scored += present > 0;
        if (present == k)
            rows[m++] = i;
    }
    /* the reliabilities only go to out: a caller that wants the composite
     * alone (simulate, per replication) does not pay for them */
    double alpha = NAN;
    if (out) {
        alpha = alpha_of(cols, k, SIZE_MAX, rows, m, buf);
        for (size_t j = 0; j < k; j++)
            drop[j] = alpha_of(cols, k, j, rows, m, buf);
    }
    free(rows);
    free(buf);
    /* Last, since adding a column moves the frame's columns (cols[]). */
    s = bh_frame_add_numeric(f, name, score, NULL, err);
    free(score);
    if (s) {
        free(drop);
        goto done;
    }
    if (out) {
        out->k = k;
        out->n_complete = m;
        out->n_scored = scored;
        out->alpha = alpha;
        out->alpha_if_deleted = drop;
        drop = NULL;
        out->name = dup_str(name);
        out->items = calloc(k, sizeof *out->items);
        int ok = out->name && out->items;
        for (size_t j = 0; ok && j < k; j++)
            ok = (out->items[j] = dup_str(items[j])) != NULL;
        if (!ok)
            s = nomem(err, "scale result");
    }
    free(drop);
done:
    free(cols);
    return s;
}

/* Scales of up to this many items are scored into a column without
 * allocating (the item column table lives on the stack). */
#define SCALE_STACK_ITEMS 32

bh_status bh_scale_score_into(bh_frame *f, size_t col, const char *const *items, size_t k,
                              bh_error *err)
{
    char q[128];
    if (!f)
        return bh_error_set(err, BH_EINTERNAL, "bh_scale_score_into: NULL frame");
    if (col >= f->ncol)
        return bh_error_set(err, BH_EINTERNAL,
                            "bh_scale_score_into: column %zu of a frame of %zu columns",
                            col + 1, f->ncol);
    bh_column *out = &f->cols[col];
    bh_quote(q, sizeof q, out->name ? out->name : "", 60);
    if (out->type != BH_COL_NUMERIC)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "scale '%s': the column of that name is categorical", q);
    const bh_column *stack_cols[SCALE_STACK_ITEMS];
    const bh_column **cols = stack_cols;
    if (k > SCALE_STACK_ITEMS && !(cols = calloc(k, sizeof *cols)))
        return nomem(err, "scale items");
    bh_status s = scale_items(f, q, items, k, cols, err);
    for (size_t j = 0; s == BH_OK && j < k; j++)
        if (cols[j] == out)
            s = bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                            "scale '%s': the scale is one of its own items", q);
    size_t n = f->nrow, m = n ? n : 1;
    /* values a consumer gave back (bh_frame_release_column) come again */
    if (s == BH_OK && !out->num && !(out->num = malloc(m * sizeof *out->num)))
        s = nomem(err, "scale");
    if (s == BH_OK && !out->na && !(out->na = malloc(m)))
        s = nomem(err, "scale");
    if (s == BH_OK) {
        out->n = n;
        /* stored as bh_frame_add_numeric stores bh_scale_score's column */
        for (size_t i = 0; i < n; i++) {
            size_t present;
            double v = scale_row((const bh_column *const *)cols, k, i, &present);
            unsigned char miss = (unsigned char)isnan(v);
            out->na[i] = miss;
            out->num[i] = miss ? NAN : v;
        }
    }
    if (cols != stack_cols)
        free(cols);
    return s;
}

/* ---- scale specification ----------------------------------------------------- */

/* Copy of s[0..len) without surrounding blanks. */
static char *dup_trim(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void bh_scale_spec_free(char *name, char **items, size_t k)
{
    free(name);
    if (items)
        for (size_t j = 0; j < k; j++)
            free(items[j]);
    free(items);
}

bh_status bh_scale_spec_parse(const char *spec, char **name, char ***items,
                              size_t *k, bh_error *err)
{
    char q[160];
    if (!spec || !name || !items || !k)
        return bh_error_set(err, BH_EINTERNAL, "bh_scale_spec_parse: NULL argument");
    *name = NULL;
    *items = NULL;
    *k = 0;
    bh_quote(q, sizeof q, spec, 80);
    const char *eq = strchr(spec, '=');
    if (!eq)
        return bh_error_set(err, BH_EUSAGE,
                            "scale '%s': expected name=item1,item2,...", q);
    char *nm = dup_trim(spec, (size_t)(eq - spec));
    if (!nm)
        return nomem(err, "scale name");
    if (!*nm) {
        free(nm);
        return bh_error_set(err, BH_EUSAGE, "scale '%s': empty name before '='", q);
    }
    size_t cnt = 1;
    for (const char *p = eq + 1; *p; p++)
        cnt += *p == ',';
    char **it = calloc(cnt, sizeof *it);
    if (!it) {
        free(nm);
        return nomem(err, "scale items");
    }
    const char *p = eq + 1;
    for (size_t j = 0; j < cnt; j++) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        it[j] = dup_trim(p, len);
        if (!it[j]) {
            bh_scale_spec_free(nm, it, cnt);
            return nomem(err, "scale items");
        }
        if (!*it[j]) {
            bh_scale_spec_free(nm, it, cnt);
            return bh_error_set(err, BH_EUSAGE, "scale '%s': item %zu is empty", q, j + 1);
        }
        p = c ? c + 1 : p + len;
    }
    *name = nm;
    *items = it;
    *k = cnt;
    return BH_OK;
}
