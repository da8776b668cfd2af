/* boot.c - wild cluster restricted bootstrap for least squares (see
 * boot.h).
 *
 * Algebra.  Work on the sqrt(w)-scaled problem, so weighted fits are plain
 * least squares.  Let A = (X'X)^-1 (the fit's bread), a its row for
 * coefficient j, e the unrestricted residuals, S_g = X_g'e_g and
 * H_g = X_g'X_g.  The restricted estimate under beta_j = r is
 * beta~ = beta^ - A e_j d with d = (beta^_j - r) / A_jj, so the restricted
 * residuals are e_r = e + X a d and their cluster scores
 * s_g = S_g + q_g d with q_g = H_g a.  With y* = X beta~ + v o e_r the
 * re-estimate is beta* = beta~ + A sum_h v_h s_h, hence
 *   beta*_j - r = sum_g v_g a's_g                            (numerator)
 *   a'X_g'e*_g  = v_g a's_g - q_g'A sum_h v_h s_h             (score of g)
 * Both are linear in v and in d: numerator = n0 + d n1 and score
 * w_g = w0_g + d w1_g with
 *   n0 = sum_g v_g a'S_g,  n1 = sum_g v_g q_g'a,
 *   w0_g = v_g a'S_g - sum_h (q_g'A S_h) v_h,
 *   w1_g = v_g q_g'a - sum_h (q_g'A q_h) v_h,
 * and t*(d) = (n0 + d n1) / sqrt(c (S00 + 2 d S01 + d^2 S11)) with
 * Sxy = sum_g wx_g wy_g.  So one pass over the draws (O(G^2) each) stores
 * five numbers per draw, after which the p-value at any r costs O(1) per
 * draw: that is what makes inverting the test for a confidence interval
 * cheap.  v = 1 reproduces the original statistic (n0 = a'X'e = 0,
 * n1 = A_jj), and it is computed by the same code, so the draw v = 1 ties
 * with it exactly.
 */
#include "blackhole/boot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gsl/gsl_linalg.h>

#include "blackhole/glm.h"
#include "blackhole/rng.h"

/* Confidence-interval search grid: GRID_FINE steps of GRID_STEP standard
 * errors, then doubling up to ci_max. */
#define GRID_STEP 0.25
#define GRID_FINE 40

/* Stored per draw: n0, n1, S00, S01, S11. */
#define NQ 5

void bh_boot_default_options(bh_boot_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->weights = BH_BOOT_RADEMACHER;
    opt->reps = 9999;
    opt->seed = 1;
    opt->threads = 1;
    opt->level = 0.95;
    opt->ci = 1;
    opt->ci_tol = 1e-10;
    opt->ci_max = 1e7;
}

bh_status bh_boot_weights_parse(const char *s, bh_boot_weights *out,
                                bh_error *err)
{
    char q[96];
    if (s && strcasecmp(s, "rademacher") == 0) {
        *out = BH_BOOT_RADEMACHER;
        return BH_OK;
    }
    if (s && strcasecmp(s, "webb") == 0) {
        *out = BH_BOOT_WEBB;
        return BH_OK;
    }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown bootstrap weights '%s' (expected rademacher "
                        "or webb)", bh_quote(q, sizeof q, s ? s : "", 60));
}

const char *bh_boot_weights_name(bh_boot_weights w)
{
    return w == BH_BOOT_WEBB ? "webb" : "rademacher";
}

const char *bh_boot_method_name(bh_boot_method m)
{
    return m == BH_BOOT_SCORE ? "wild score bootstrap"
                              : "wild cluster restricted bootstrap";
}

void bh_boot_result_free(bh_boot_result *res)
{
    if (!res)
        return;
    free(res->tested);
    free(res->null_value);
    free(res->estimate);
    free(res->statistic);
    free(res->p_value);
    free(res->p_value_strict);
    free(res->count);
    free(res->conf_low);
    free(res->conf_high);
    for (size_t k = 0; k < res->nwarnings; k++)
        free(res->warnings[k]);
    free(res->warnings);
    free(res);
}

static double *nan_vec(size_t k)
{
    double *v = malloc((k ? k : 1) * sizeof *v);
    if (v)
        for (size_t i = 0; i < k; i++)
            v[i] = NAN;
    return v;
}

static bh_boot_result *result_alloc(size_t p)
{
    bh_boot_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->p = p;
    r->tested = calloc(p ? p : 1, 1);
    r->count = calloc(p ? p : 1, sizeof *r->count);
    r->null_value = nan_vec(p);
    r->estimate = nan_vec(p);
    r->statistic = nan_vec(p);
    r->p_value = nan_vec(p);
    r->p_value_strict = nan_vec(p);
    r->conf_low = nan_vec(p);
    r->conf_high = nan_vec(p);
    if (!r->tested || !r->count || !r->null_value || !r->estimate ||
        !r->statistic || !r->p_value || !r->p_value_strict ||
        !r->conf_low || !r->conf_high) {
        bh_boot_result_free(r);
        return NULL;
    }
    return r;
}

static bh_status result_warn(bh_boot_result *r, bh_error *err,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bh_status result_warn(bh_boot_result *r, bh_error *err,
                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = k >= 0 ? malloc((size_t)k + 1) : NULL;
    char **w = msg ? realloc(r->warnings, (r->nwarnings + 1) * sizeof *w)
                   : NULL;
    if (!w) {
        free(msg);
        return bh_error_set(err, BH_ENOMEM, "bootstrap: out of memory");
    }
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)k + 1, fmt, ap);
    va_end(ap);
    r->warnings = w;
    w[r->nwarnings++] = msg;
    return BH_OK;
}

/* ---- draws ----------------------------------------------------------- */

/* Webb's six points, ordered so that digit 4 is +1 (so draw 4...4 of the
 * enumeration is the original sample). */
static double webb_point(unsigned digit)
{
    static const double pts[6] = {
        -1.224744871391589049, /* -sqrt(3/2) */
        -1.0,
        -0.707106781186547524, /* -sqrt(1/2) */
        0.707106781186547524,
        1.0,
        1.224744871391589049
    };
    return pts[digit];
}

typedef struct {
    /* inputs */
    size_t G;
    bh_boot_weights weights;
    int enumerated;
    const double *beta_g, *kappa_g;  /* G: a'S_g, q_g'a                      */
    const double *P, *Q;             /* G x G row-major: q_g'A S_h, q_g'A q_h */
    /* outputs */
    double *qd;                      /* ndraws x NQ                          */
    /* per-thread scratch: 3G doubles each */
    double *scratch;
} wcr_ctx;

/* Weights of draw b into v. */
static void draw_weights(const wcr_ctx *c, size_t b, gsl_rng *rng, double *v)
{
    size_t G = c->G;
    if (c->enumerated && c->weights == BH_BOOT_RADEMACHER) {
        for (size_t g = 0; g < G; g++)
            v[g] = (b >> g) & 1u ? -1.0 : 1.0;
    } else if (c->enumerated) {
        size_t x = b;
        for (size_t g = 0; g < G; g++) {
            v[g] = webb_point((unsigned)(x % 6));
            x /= 6;
        }
    } else if (c->weights == BH_BOOT_RADEMACHER) {
        for (size_t g = 0; g < G; g++)
            v[g] = gsl_rng_uniform_int(rng, 2) ? -1.0 : 1.0;
    } else {
        for (size_t g = 0; g < G; g++)
            v[g] = webb_point((unsigned)gsl_rng_uniform_int(rng, 6));
    }
}

/* The five numbers of the t statistic for weights v (see the top). */
static void draw_forms(const wcr_ctx *c, const double *v, double *w0,
                       double *w1, double *q)
{
    size_t G = c->G;
    double n0 = 0, n1 = 0, s00 = 0, s01 = 0, s11 = 0;
    for (size_t g = 0; g < G; g++) {
        n0 += c->beta_g[g] * v[g];
        n1 += c->kappa_g[g] * v[g];
        double p = 0, qq = 0;
        const double *Pg = c->P + g * G, *Qg = c->Q + g * G;
        for (size_t h = 0; h < G; h++) {
            p += Pg[h] * v[h];
            qq += Qg[h] * v[h];
        }
        w0[g] = c->beta_g[g] * v[g] - p;
        w1[g] = c->kappa_g[g] * v[g] - qq;
    }
    for (size_t g = 0; g < G; g++) {
        s00 += w0[g] * w0[g];
        s01 += w0[g] * w1[g];
        s11 += w1[g] * w1[g];
    }
    q[0] = n0;
    q[1] = n1;
    q[2] = s00;
    q[3] = s01;
    q[4] = s11;
}

static bh_status wcr_task(void *vctx, size_t b, gsl_rng *rng, size_t thread,
                          bh_error *err)
{
    (void)err;
    wcr_ctx *c = vctx;
    double *v = c->scratch + thread * 3 * c->G;
    draw_weights(c, b, rng, v);
    draw_forms(c, v, v + c->G, v + 2 * c->G, c->qd + b * NQ);
    return BH_OK;
}

/* t(d) from the five numbers; the small-sample factor is cfac. */
static double t_of(const double *q, double d, double cfac)
{
    double num = q[0] + d * q[1];
    double den2 = cfac * (q[2] + 2 * d * q[3] + d * d * q[4]);
    if (!(den2 > 0))
        return num == 0 ? 0.0 : copysign(INFINITY, num);
    return num / sqrt(den2);
}

/* Counts of |t*| >= |t| (ties within BH_BOOT_TIE_RTOL) and |t*| > |t|. */
static void count_at(const double *qd, size_t nd, const double *q1, double d,
                     double cfac, size_t *ge, size_t *gt)
{
    double t = fabs(t_of(q1, d, cfac));
    double lo = t * (1 - BH_BOOT_TIE_RTOL), hi = t * (1 + BH_BOOT_TIE_RTOL);
    size_t a = 0, s = 0;
    for (size_t b = 0; b < nd; b++) {
        double tb = fabs(t_of(qd + b * NQ, d, cfac));
        a += tb >= lo;
        s += tb > hi;
    }
    *ge = a;
    if (gt)
        *gt = s;
}

typedef struct {
    const double *qd, *q1;
    size_t nd;
    double cfac, est, se, Ajj, alpha;
} inv_ctx;

/* Does the test of beta_j = est + k se reject at level alpha? */
static int rejects(const inv_ctx *ic, double k)
{
    double r = ic->est + k * ic->se;
    double d = (ic->est - r) / ic->Ajj;
    size_t ge;
    count_at(ic->qd, ic->nd, ic->q1, d, ic->cfac, &ge, NULL);
    return (double)ge <= ic->alpha * (double)ic->nd;
}

/* One side (dir = -1 lower, +1 upper) of the inverted-test interval. */
static double ci_side(const inv_ctx *ic, int dir, double tol, double kmax)
{
    double kin = 0, kout = NAN;
    for (size_t m = 1;; m++) {
        double k = m <= GRID_FINE ? GRID_STEP * (double)m
                                  : GRID_STEP * GRID_FINE *
                                        ldexp(1.0, (int)(m - GRID_FINE));
        if (k > kmax)
            break;
        if (rejects(ic, dir * k)) {
            kout = k;
            break;
        }
        kin = k;
    }
    if (isnan(kout))
        return dir * INFINITY;
    while (kout - kin > tol) {
        double mid = 0.5 * (kin + kout);
        if (mid <= kin || mid >= kout)
            break; /* no double between them */
        if (rejects(ic, dir * mid))
            kout = mid;
        else
            kin = mid;
    }
    return ic->est + dir * 0.5 * (kin + kout) * ic->se;
}

static bh_status check_options(const bh_boot_options *o, size_t p,
                               bh_error *err)
{
    if (o->weights != BH_BOOT_RADEMACHER && o->weights != BH_BOOT_WEBB)
        return bh_error_set(err, BH_EUSAGE, "bootstrap: unknown weights %d",
                            (int)o->weights);
    if (o->reps < 1)
        return bh_error_set(err, BH_EUSAGE,
                            "bootstrap: --reps must be at least 1 (got %zu)",
                            o->reps);
    if (!(o->level > 0 && o->level < 1))
        return bh_error_set(err, BH_EUSAGE,
                            "bootstrap: confidence level %g is not in (0, 1)",
                            o->level);
    if (o->ci && !(o->ci_tol > 0 && o->ci_max > 0))
        return bh_error_set(err, BH_EUSAGE,
                            "bootstrap: interval search needs ci_tol > 0 and "
                            "ci_max > 0 (got %g, %g)", o->ci_tol, o->ci_max);
    for (size_t j = 0; o->null && j < p; j++)
        if (!isfinite(o->null[j]))
            return bh_error_set(err, BH_EUSAGE,
                                "bootstrap: null value %g for coefficient %zu "
                                "is not finite", o->null[j], j + 1);
    return BH_OK;
}

/* Number of distinct draws, or 0 when it exceeds `cap`. */
static size_t distinct_draws(bh_boot_weights w, size_t G, size_t cap)
{
    size_t base = w == BH_BOOT_WEBB ? 6 : 2, n = 1;
    for (size_t g = 0; g < G; g++) {
        if (n > cap / base)
            return 0;
        n *= base;
    }
    return n <= cap ? n : 0;
}

static const char *term_name(const bh_fit *fit, size_t j, char *buf,
                             size_t len)
{
    if (fit->term && fit->term[j])
        return fit->term[j];
    snprintf(buf, len, "coefficient %zu", j + 1);
    return buf;
}

/* The few-clusters warning and the enumeration note. */
static bh_status common_warnings(bh_boot_result *res,
                                 const bh_boot_options *opt, size_t G,
                                 size_t nd, int enumerated, bh_error *err)
{
    bh_status st = BH_OK;
    if (G < BH_BOOT_FEW_CLUSTERS) {
        size_t dist = distinct_draws(opt->weights, G, (size_t)-1);
        if (opt->weights == BH_BOOT_RADEMACHER)
            st = result_warn(res, err,
                             "only %zu clusters: Rademacher weights give at "
                             "most %zu distinct bootstrap draws (p-values "
                             "are multiples of 1/%zu, and at least 2/%zu); "
                             "Webb weights recommended", G, dist, dist, dist);
        else
            st = result_warn(res, err,
                             "only %zu clusters: bootstrap inference is "
                             "approximate with so few clusters (Webb "
                             "weights: %zu distinct draws)", G, dist);
        if (st)
            return st;
    }
    if (enumerated)
        st = result_warn(res, err,
                         "all %zu distinct %s draws enumerated (%zu "
                         "requested): p-values are exact for this bootstrap "
                         "distribution, no random numbers used", nd,
                         bh_boot_weights_name(opt->weights), opt->reps);
    return st;
}

bh_status bh_boot_wild(const bh_fit *fit, const bh_boot_options *opt,
                       bh_boot_result **out, bh_error *err)
{
    bh_boot_options defopt;
    if (!opt) {
        bh_boot_default_options(&defopt);
        opt = &defopt;
    }
    *out = NULL;
    if (!fit || !fit->design)
        return bh_error_set(err, BH_EINTERNAL, "bootstrap: fit without design");
    if (!fit->linear)
        return bh_error_set(err, BH_EUSAGE,
                            "wild cluster bootstrap: %s fits are not least "
                            "squares (use the score bootstrap)",
                            fit->method ? fit->method : "these");
    const bh_design *d = fit->design;
    const bh_grouping *gr = d->cluster;
    if (!gr || !gr->code)
        return bh_error_set(err, BH_EUSAGE,
                            "wild cluster bootstrap: the model was fitted "
                            "without a cluster variable (use --vcov "
                            "cluster:VAR)");
    size_t G = gr->ngroups, n = d->n, p = fit->p;
    if (G < 2)
        return bh_error_set(err, BH_EDATA,
                            "wild cluster bootstrap: %zu cluster(s) in '%s'; "
                            "at least 2 are needed", G,
                            gr->name ? gr->name : "?");
    if (fit->nrows != n || !fit->resid || !fit->bread || !fit->beta ||
        d->p != p)
        return bh_error_set(err, BH_EINTERNAL,
                            "wild cluster bootstrap: fit and design disagree "
                            "(%zu rows, %zu coefficients vs %zu, %zu)",
                            fit->nrows, p, n, d->p);
    bh_status st = check_options(opt, p, err);
    if (st)
        return st;

    double N = (double)fit->nobs, K = (double)fit->rank;
    if (!(N > K))
        return bh_error_set(err, BH_EDATA,
                            "wild cluster bootstrap: %g observations for %g "
                            "coefficients", N, K);
    double cfac = (double)G / (double)(G - 1) * (N - 1) / (N - K);

    size_t nd = distinct_draws(opt->weights, G, opt->reps);
    int enumerated = nd != 0;
    if (!enumerated)
        nd = opt->reps;

    bh_boot_result *res = result_alloc(p);
    size_t r = 0, *idx = malloc((p ? p : 1) * sizeof *idx);
    double *A = NULL, *H = NULL, *S = NULL, *work = NULL, *qd = NULL,
           *scratch = NULL;
    if (!res || !idx) {
        st = bh_error_set(err, BH_ENOMEM, "bootstrap: out of memory");
        goto done;
    }
    res->method = BH_BOOT_WCR;
    res->weights = opt->weights;
    res->nclusters = G;
    res->reps_requested = opt->reps;
    res->reps = nd;
    res->enumerated = enumerated;
    res->seed = opt->seed;
    res->level = opt->level;
    res->has_ci = opt->ci != 0;
    res->threads = bh_rng_threads_used(nd, opt->threads);

    for (size_t j = 0; j < p; j++)
        if (!fit->aliased[j])
            idx[r++] = j;
    size_t r1 = r ? r : 1;
    A = malloc(r1 * r1 * sizeof *A);
    H = calloc(G * r1 * r1, sizeof *H);
    S = calloc(G * r1, sizeof *S);
    /* a, q (G x r), AS (G x r), Aq (G x r), beta_g, kappa_g, P, Q, x row */
    work = malloc((r1 + 3 * G * r1 + 2 * G + 2 * G * G + r1) * sizeof *work);
    qd = malloc(nd * NQ * sizeof *qd);
    scratch = malloc(res->threads * 3 * G * sizeof *scratch);
    if (!A || !H || !S || !work || !qd || !scratch) {
        st = bh_error_set(err, BH_ENOMEM,
                          "bootstrap: out of memory (%zu draws, %zu clusters)",
                          nd, G);
        goto done;
    }
    for (size_t a = 0; a < r; a++)
        for (size_t b = 0; b < r; b++)
            A[a * r + b] = fit->bread[idx[a] * p + idx[b]];

    /* Per-cluster cross-products and scores of the sqrt(w)-scaled data. */
    double *xi = work + r1 + 3 * G * r1 + 2 * G + 2 * G * G;
    for (size_t i = 0; i < n; i++) {
        double w = d->w ? d->w[i] : 1.0;
        if (!(w > 0))
            continue;
        size_t g = gr->code[i];
        if (g >= G) {
            st = bh_error_set(err, BH_EINTERNAL,
                              "bootstrap: cluster code %zu of row %zu out of "
                              "range (%zu clusters)", g, i + 1, G);
            goto done;
        }
        double e = fit->resid[i];
        if (!isfinite(e)) {
            st = bh_error_set(err, BH_EDATA,
                              "bootstrap: residual of row %zu is not finite",
                              i + 1);
            goto done;
        }
        for (size_t a = 0; a < r; a++)
            xi[a] = d->x[idx[a] * n + i];
        double *Hg = H + g * r * r, *Sg = S + g * r;
        for (size_t a = 0; a < r; a++) {
            Sg[a] += w * xi[a] * e;
            for (size_t b = a; b < r; b++)
                Hg[a * r + b] += w * xi[a] * xi[b];
        }
    }
    for (size_t g = 0; g < G; g++)
        for (size_t a = 0; a < r; a++)
            for (size_t b = 0; b < a; b++)
                H[g * r * r + a * r + b] = H[g * r * r + b * r + a];

    double *av = work, *q = av + r1, *AS = q + G * r1, *Aq = AS + G * r1,
           *beta_g = Aq + G * r1, *kappa_g = beta_g + G, *P = kappa_g + G,
           *Q = P + G * G;
    for (size_t g = 0; g < G; g++)
        for (size_t a = 0; a < r; a++) {
            double s = 0;
            for (size_t b = 0; b < r; b++)
                s += A[a * r + b] * S[g * r + b];
            AS[g * r + a] = s;
        }

    wcr_ctx ctx = {
        .G = G, .weights = opt->weights, .enumerated = enumerated,
        .beta_g = beta_g, .kappa_g = kappa_g, .P = P, .Q = Q, .qd = qd,
        .scratch = scratch
    };
    char nb[64];
    for (size_t k = 0; k < r; k++) {
        size_t j = idx[k];
        if (opt->test && !opt->test[j])
            continue;
        double est = fit->beta[j], Ajj = A[k * r + k];
        double null = opt->null ? opt->null[j] : 0.0;
        res->tested[j] = 1;
        res->null_value[j] = null;
        res->estimate[j] = est;
        if (!(Ajj > 0) || !isfinite(est)) {
            st = result_warn(res, err, "bootstrap: %s has no usable variance; "
                             "not tested", term_name(fit, j, nb, sizeof nb));
            if (st)
                goto done;
            continue;
        }
        for (size_t a = 0; a < r; a++)
            av[a] = A[k * r + a];
        for (size_t g = 0; g < G; g++) {
            const double *Hg = H + g * r * r;
            double bg = 0, kg = 0;
            for (size_t a = 0; a < r; a++) {
                double s = 0;
                for (size_t b = 0; b < r; b++)
                    s += Hg[a * r + b] * av[b];
                q[g * r + a] = s;
                bg += av[a] * S[g * r + a];
                kg += av[a] * s;
            }
            beta_g[g] = bg;
            kappa_g[g] = kg;
            for (size_t a = 0; a < r; a++) {
                double s = 0;
                for (size_t b = 0; b < r; b++)
                    s += A[a * r + b] * q[g * r + b];
                Aq[g * r + a] = s;
            }
        }
        for (size_t g = 0; g < G; g++)
            for (size_t h = 0; h < G; h++) {
                double sp = 0, sq = 0;
                for (size_t a = 0; a < r; a++) {
                    sp += q[g * r + a] * AS[h * r + a];
                    sq += q[g * r + a] * Aq[h * r + a];
                }
                P[g * G + h] = sp;
                Q[g * G + h] = sq;
            }

        /* The original sample is the draw v = 1. */
        double q1[NQ];
        for (size_t g = 0; g < G; g++)
            scratch[g] = 1.0;
        draw_forms(&ctx, scratch, scratch + G, scratch + 2 * G, q1);
        st = bh_rng_parallel_for(nd, opt->threads, opt->seed, wcr_task, &ctx,
                                 err);
        if (st)
            goto done;

        double d0 = (est - null) / Ajj;
        size_t ge, gt;
        count_at(qd, nd, q1, d0, cfac, &ge, &gt);
        res->statistic[j] = t_of(q1, d0, cfac);
        res->count[j] = ge;
        res->p_value[j] = (double)ge / (double)nd;
        res->p_value_strict[j] = (double)gt / (double)nd;

        if (opt->ci) {
            double se = sqrt(cfac * q1[2]);
            if (!(se > 0)) {
                st = result_warn(res, err, "bootstrap: %s has a zero "
                                 "cluster-robust standard error; no interval",
                                 term_name(fit, j, nb, sizeof nb));
                if (st)
                    goto done;
                continue;
            }
            inv_ctx ic = {qd, q1, nd, cfac, est, se, Ajj, 1 - opt->level};
            res->conf_low[j] = ci_side(&ic, -1, opt->ci_tol, opt->ci_max);
            res->conf_high[j] = ci_side(&ic, +1, opt->ci_tol, opt->ci_max);
            if (isinf(res->conf_low[j]) || isinf(res->conf_high[j])) {
                st = result_warn(res, err,
                                 "bootstrap: the %g%% interval for %s is "
                                 "unbounded %s: the bootstrap test does not "
                                 "reject within %g standard errors of the "
                                 "estimate", 100 * opt->level,
                                 term_name(fit, j, nb, sizeof nb),
                                 isinf(res->conf_low[j]) &&
                                         isinf(res->conf_high[j])
                                     ? "on both sides"
                                     : isinf(res->conf_low[j]) ? "below"
                                                               : "above",
                                 opt->ci_max);
                if (st)
                    goto done;
            }
        }
    }

    if ((st = common_warnings(res, opt, G, nd, enumerated, err)))
        goto done;
    *out = res;
    res = NULL;
done:
    bh_boot_result_free(res);
    free(idx);
    free(A);
    free(H);
    free(S);
    free(work);
    free(qd);
    free(scratch);
    return st;
}

/* ---- wild score bootstrap (Kline & Santos 2012) ----------------------
 *
 * For H0: beta_j = r the GLM is refitted without column j and with offset
 * r x_j (restricted ML).  At the restricted estimate: cluster scores
 * S_g = sum_{i in g} x_i u_i over ALL estimable columns (u_i as glm.h:
 * w_i (y_i - mu_i) mu'_i / V(mu_i)), the information H = sum_i W_i x_i x_i'
 * (W_i = w_i mu'_i^2 / V(mu_i)) and a = H^-1 e_j.  With b_g = a'S_g the
 * score statistic in Wald form and its bootstrap analogue are
 *   t  = sum_g b_g / sqrt(c sum_g b_g^2),
 *   t* = sum_g v_g b_g / sqrt(c sum_g v_g^2 b_g^2),   c = G/(G-1):
 * the perturbed restricted scores v_g S_g are mapped through the restricted
 * inverse information and studentized by their own cluster variance, with
 * no re-estimation (this is what distinguishes the score bootstrap from the
 * WCR one; in a linear model the two differ at order 1/n, Kline & Santos
 * 2012, sect. 3).  Since c cancels between t and t*, the p-value does not
 * depend on it.  Intervals invert the test: every trial r is a restricted
 * refit. */

typedef struct {
    size_t G;
    bh_boot_weights weights;
    int enumerated;
    double *V;                       /* ndraws x G weights                  */
} draw_ctx;

static bh_status draw_task(void *vctx, size_t b, gsl_rng *rng, size_t thread,
                           bh_error *err)
{
    (void)thread;
    (void)err;
    draw_ctx *c = vctx;
    wcr_ctx w = {.G = c->G, .weights = c->weights, .enumerated = c->enumerated};
    draw_weights(&w, b, rng, c->V + b * c->G);
    return BH_OK;
}

typedef struct {
    const bh_fit *fit;
    const bh_design *d;
    bh_glm_options gopt;
    bh_family fam;
    bh_link link;
    size_t n, r, G;
    const size_t *idx;               /* r estimable columns                  */
    bh_design dr;                    /* restricted design (shares d's data)  */
    double *xr, *off, *start;        /* n x (r-1), n, r-1                   */
    const char **names;              /* r-1                                 */
    double *S, *H, *a, *xi;          /* G x r, r x r, r, r                  */
    double *b;                       /* G: a'S_g                            */
    bh_glm_workspace *ws;
} score_ctx;

/* Restricted fit for coefficient k (column idx[k]) at beta_j = rnull; fills
 * sc->b.  BH_ENOCONV when the restricted fit does not converge. */
static bh_status score_restricted(score_ctx *sc, size_t k, double rnull,
                                  bh_error *err)
{
    const bh_design *d = sc->d;
    size_t n = sc->n, r = sc->r, G = sc->G, j = sc->idx[k];
    const double *xj = d->x + j * n;
    for (size_t i = 0; i < n; i++)
        sc->off[i] = (d->offset ? d->offset[i] : 0.0) + rnull * xj[i];
    size_t c = 0;
    for (size_t a = 0; a < r; a++) {
        if (a == k)
            continue;
        memcpy(sc->xr + c * n, d->x + sc->idx[a] * n, n * sizeof *sc->xr);
        sc->start[c] = sc->fit->beta[sc->idx[a]];
        sc->names[c] = sc->fit->term && sc->fit->term[sc->idx[a]]
                           ? sc->fit->term[sc->idx[a]] : "x";
        c++;
    }
    sc->dr.p = r - 1;
    sc->gopt.start = sc->start;
    sc->gopt.colnames = sc->names;
    bh_fit *rf = NULL;
    bh_status st = bh_glm_fit(&sc->dr, &sc->gopt, sc->ws, &rf, err);
    if (st)
        return st;
    char nb[64];
    if (!rf->converged) {
        st = bh_error_set(err, BH_ENOCONV,
                          "score bootstrap: the restricted fit with %s = %g "
                          "did not converge", term_name(sc->fit, j, nb, sizeof nb),
                          rnull);
        bh_fit_free(rf);
        return st;
    }
    memset(sc->S, 0, G * r * sizeof *sc->S);
    memset(sc->H, 0, r * r * sizeof *sc->H);
    const double *y = d->y;
    for (size_t i = 0; i < n; i++) {
        double w = d->w ? d->w[i] : 1.0;
        if (!(w > 0))
            continue;
        double eta = sc->off[i];
        for (size_t a = 0; a + 1 < r; a++)
            if (!rf->aliased[a])
                eta += sc->xr[a * n + i] * rf->beta[a];
        double mu = bh_link_inv(sc->link, eta), me = bh_link_mu_eta(sc->link, eta);
        double V = sc->fam == BH_FAM_POISSON ? mu
                   : sc->fam == BH_FAM_GAUSSIAN ? 1.0 : mu * (1 - mu);
        if (!(V > 0))
            continue; /* a fitted 0 or 1: no score, no information */
        double u = w * (y[i] - mu) * me / V, W = w * me * me / V;
        for (size_t a = 0; a < r; a++)
            sc->xi[a] = d->x[sc->idx[a] * n + i];
        double *Sg = sc->S + d->cluster->code[i] * r;
        for (size_t a = 0; a < r; a++) {
            Sg[a] += sc->xi[a] * u;
            for (size_t b2 = a; b2 < r; b2++)
                sc->H[a * r + b2] += W * sc->xi[a] * sc->xi[b2];
        }
    }
    bh_fit_free(rf);
    for (size_t a = 0; a < r; a++)
        for (size_t b2 = 0; b2 < a; b2++)
            sc->H[a * r + b2] = sc->H[b2 * r + a];
    gsl_matrix_view Hm = gsl_matrix_view_array(sc->H, r, r);
    for (size_t a = 0; a < r; a++)
        sc->a[a] = a == k;
    gsl_vector_view av = gsl_vector_view_array(sc->a, r);
    if (gsl_linalg_cholesky_decomp1(&Hm.matrix) ||
        gsl_linalg_cholesky_svx(&Hm.matrix, &av.vector))
        return bh_error_set(err, BH_ENUMERIC,
                            "score bootstrap: the restricted information for "
                            "%s = %g is not positive definite",
                            term_name(sc->fit, j, nb, sizeof nb), rnull);
    for (size_t g = 0; g < G; g++) {
        double s = 0;
        for (size_t a = 0; a < r; a++)
            s += sc->a[a] * sc->S[g * r + a];
        sc->b[g] = s;
    }
    return BH_OK;
}

static double score_t(const double *b, const double *v, size_t G, double cfac)
{
    double num = 0, den = 0;
    for (size_t g = 0; g < G; g++) {
        double vg = v ? v[g] : 1.0;
        num += vg * b[g];
        den += vg * vg * b[g] * b[g];
    }
    den *= cfac;
    if (!(den > 0))
        return num == 0 ? 0.0 : copysign(INFINITY, num);
    return num / sqrt(den);
}

static void score_count(const double *b, const double *V, size_t nd, size_t G,
                        double cfac, double *t, size_t *ge, size_t *gt)
{
    double t0 = score_t(b, NULL, G, cfac), at = fabs(t0);
    double lo = at * (1 - BH_BOOT_TIE_RTOL), hi = at * (1 + BH_BOOT_TIE_RTOL);
    size_t a = 0, s = 0;
    for (size_t k = 0; k < nd; k++) {
        double tb = fabs(score_t(b, V + k * G, G, cfac));
        a += tb >= lo;
        s += tb > hi;
    }
    *t = t0;
    *ge = a;
    if (gt)
        *gt = s;
}

/* Rejection at est + dir k se; -1 on error (err filled). */
static int score_rejects(score_ctx *sc, size_t k, const double *V, size_t nd,
                         double cfac, double r, double alpha, bh_error *err)
{
    if (score_restricted(sc, k, r, err))
        return -1;
    double t;
    size_t ge;
    score_count(sc->b, V, nd, sc->G, cfac, &t, &ge, NULL);
    return (double)ge <= alpha * (double)nd;
}

static bh_status score_ci_side(score_ctx *sc, size_t k, const double *V,
                               size_t nd, double cfac, double est, double se,
                               double alpha, int dir, const bh_boot_options *o,
                               double *out, double *failed_at, bh_error *err)
{
    double kin = 0, kout = NAN;
    *failed_at = NAN;
    for (size_t m = 1;; m++) {
        double kk = m <= GRID_FINE ? GRID_STEP * (double)m
                                   : GRID_STEP * GRID_FINE *
                                         ldexp(1.0, (int)(m - GRID_FINE));
        if (kk > o->ci_max)
            break;
        int rej = score_rejects(sc, k, V, nd, cfac, est + dir * kk * se, alpha, err);
        if (rej < 0) {
            /* Far from the estimate the restricted fit may fail (e.g.
             * fitted probabilities 0/1): treat as the end of the search. */
            if (kk > 1) {
                *failed_at = est + dir * kk * se;
                break;
            }
            return err ? err->status : BH_ENUMERIC;
        }
        if (rej) {
            kout = kk;
            break;
        }
        kin = kk;
    }
    if (isnan(kout)) {
        *out = dir * INFINITY;
        return BH_OK;
    }
    while (kout - kin > o->ci_tol) {
        double mid = 0.5 * (kin + kout);
        if (mid <= kin || mid >= kout)
            break;
        int rej = score_rejects(sc, k, V, nd, cfac, est + dir * mid * se, alpha, err);
        if (rej < 0)
            return err ? err->status : BH_ENUMERIC;
        if (rej)
            kout = mid;
        else
            kin = mid;
    }
    *out = est + dir * 0.5 * (kin + kout) * se;
    return BH_OK;
}

bh_status bh_boot_score(const bh_fit *fit, const bh_boot_options *opt,
                        bh_boot_result **out, bh_error *err)
{
    bh_boot_options defopt;
    if (!opt) {
        bh_boot_default_options(&defopt);
        opt = &defopt;
    }
    *out = NULL;
    if (!fit || !fit->design)
        return bh_error_set(err, BH_EINTERNAL, "bootstrap: fit without design");
    const bh_design *d = fit->design;
    const bh_grouping *gr = d->cluster;
    if (!gr || !gr->code)
        return bh_error_set(err, BH_EUSAGE,
                            "score bootstrap: the model was fitted without a "
                            "cluster variable (use --vcov cluster:VAR)");
    bh_family fam;
    bh_link link;
    bh_status st;
    if (!fit->family || !fit->link ||
        bh_family_parse(fit->family, &fam, NULL) ||
        bh_link_parse(fit->link, &link, NULL))
        return bh_error_set(err, BH_EUSAGE,
                            "score bootstrap: needs a GLM fit (family '%s', "
                            "link '%s')", fit->family ? fit->family : "?",
                            fit->link ? fit->link : "?");
    if (d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY)
        return bh_error_set(err, BH_EUSAGE,
                            "score bootstrap: frequency weights are not "
                            "supported (use analytic weights)");
    size_t G = gr->ngroups, n = d->n, p = fit->p;
    if (G < 2)
        return bh_error_set(err, BH_EDATA,
                            "score bootstrap: %zu cluster(s) in '%s'; at "
                            "least 2 are needed", G, gr->name ? gr->name : "?");
    if (fit->nrows != n || d->p != p || !d->y)
        return bh_error_set(err, BH_EINTERNAL,
                            "score bootstrap: fit and design disagree");
    if ((st = check_options(opt, p, err)))
        return st;
    double cfac = (double)G / (double)(G - 1);
    size_t nd = distinct_draws(opt->weights, G, opt->reps);
    int enumerated = nd != 0;
    if (!enumerated)
        nd = opt->reps;

    score_ctx sc;
    memset(&sc, 0, sizeof sc);
    size_t *idx = malloc((p ? p : 1) * sizeof *idx), r = 0;
    bh_boot_result *res = result_alloc(p);
    double *V = malloc(nd * G * sizeof *V);
    if (!idx || !res || !V) {
        st = bh_error_set(err, BH_ENOMEM, "bootstrap: out of memory");
        goto done;
    }
    for (size_t j = 0; j < p; j++)
        if (!fit->aliased[j])
            idx[r++] = j;
    res->method = BH_BOOT_SCORE;
    res->weights = opt->weights;
    res->nclusters = G;
    res->reps_requested = opt->reps;
    res->reps = nd;
    res->enumerated = enumerated;
    res->seed = opt->seed;
    res->level = opt->level;
    res->has_ci = opt->ci != 0;
    res->threads = bh_rng_threads_used(nd, opt->threads);
    draw_ctx dc = {G, opt->weights, enumerated, V};
    if ((st = bh_rng_parallel_for(nd, opt->threads, opt->seed, draw_task, &dc, err)))
        goto done;

    size_t r1 = r ? r : 1;
    sc.fit = fit;
    sc.d = d;
    sc.fam = fam;
    sc.link = link;
    sc.n = n;
    sc.r = r;
    sc.G = G;
    sc.idx = idx;
    sc.dr = *d;
    sc.dr.terms = NULL; /* names from colnames; intercept from the columns */
    bh_glm_default_options(&sc.gopt);
    sc.gopt.family = fam;
    sc.gopt.link = link;
    /* Tight convergence: the p-value compares scores of the refit. */
    sc.gopt.tol = 1e-12;
    sc.xr = malloc(n * r1 * sizeof *sc.xr);
    sc.off = malloc((n ? n : 1) * sizeof *sc.off);
    sc.start = malloc(r1 * sizeof *sc.start);
    sc.names = malloc(r1 * sizeof *sc.names);
    sc.S = malloc(G * r1 * sizeof *sc.S);
    sc.H = malloc(r1 * r1 * sizeof *sc.H);
    sc.a = malloc(r1 * sizeof *sc.a);
    sc.xi = malloc(r1 * sizeof *sc.xi);
    sc.b = malloc(G * sizeof *sc.b);
    sc.ws = bh_glm_workspace_alloc(n, r1);
    if (!sc.xr || !sc.off || !sc.start || !sc.names || !sc.S || !sc.H ||
        !sc.a || !sc.xi || !sc.b || !sc.ws) {
        st = bh_error_set(err, BH_ENOMEM, "bootstrap: out of memory");
        goto done;
    }
    sc.dr.x = sc.xr;
    sc.dr.offset = sc.off;

    /* Unrestricted cluster-robust standard errors set the search scale. */
    double *su = calloc(G * r1, sizeof *su), *full = malloc(p ? p * sizeof *full : 8);
    if (!su || !full) {
        free(su);
        free(full);
        st = bh_error_set(err, BH_ENOMEM, "bootstrap: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        bh_fit_score(fit, i, full);
        for (size_t a = 0; a < r; a++)
            su[gr->code[i] * r + a] += full[idx[a]];
    }
    char nb[64];
    for (size_t k = 0; k < r && !st; k++) {
        size_t j = idx[k];
        if (opt->test && !opt->test[j])
            continue;
        double est = fit->beta[j], null = opt->null ? opt->null[j] : 0.0;
        res->tested[j] = 1;
        res->null_value[j] = null;
        res->estimate[j] = est;
        double m = 0;
        for (size_t g = 0; g < G; g++) {
            double s = 0;
            for (size_t a = 0; a < r; a++)
                s += fit->bread[j * p + idx[a]] * su[g * r + a];
            m += s * s;
        }
        double se = sqrt(cfac * m);
        if ((st = score_restricted(&sc, k, null, err)))
            break;
        double t;
        size_t ge, gt;
        score_count(sc.b, V, nd, G, cfac, &t, &ge, &gt);
        res->statistic[j] = t;
        res->count[j] = ge;
        res->p_value[j] = (double)ge / (double)nd;
        res->p_value_strict[j] = (double)gt / (double)nd;
        if (!opt->ci)
            continue;
        if (!(se > 0)) {
            st = result_warn(res, err, "bootstrap: %s has a zero cluster-robust "
                             "standard error; no interval",
                             term_name(fit, j, nb, sizeof nb));
            continue;
        }
        double alpha = 1 - opt->level, fail_lo, fail_hi;
        st = score_ci_side(&sc, k, V, nd, cfac, est, se, alpha, -1, opt,
                           &res->conf_low[j], &fail_lo, err);
        if (!st)
            st = score_ci_side(&sc, k, V, nd, cfac, est, se, alpha, +1, opt,
                               &res->conf_high[j], &fail_hi, err);
        for (int side = 0; side < 2 && !st; side++) {
            double at = side ? fail_hi : fail_lo;
            if (!isnan(at))
                st = result_warn(res, err,
                                 "bootstrap: the score test at %s = %g could "
                                 "not be computed (%s); the interval is "
                                 "reported unbounded %s", term_name(fit, j, nb, sizeof nb),
                                 at, err ? err->msg : "no convergence",
                                 side ? "above" : "below");
        }
        if (err)
            bh_error_clear(err);
        if (!st && (isinf(res->conf_low[j]) || isinf(res->conf_high[j])))
            st = result_warn(res, err,
                             "bootstrap: the %g%% interval for %s is unbounded "
                             "%s: the bootstrap test does not reject within "
                             "the searched range", 100 * opt->level,
                             term_name(fit, j, nb, sizeof nb),
                             isinf(res->conf_low[j]) && isinf(res->conf_high[j])
                                 ? "on both sides"
                                 : isinf(res->conf_low[j]) ? "below" : "above");
    }
    free(su);
    free(full);
    if (st)
        goto done;
    if ((st = common_warnings(res, opt, G, nd, enumerated, err)))
        goto done;
    *out = res;
    res = NULL;
done:
    bh_boot_result_free(res);
    free(idx);
    free(V);
    free(sc.xr);
    free(sc.off);
    free(sc.start);
    free(sc.names);
    free(sc.S);
    free(sc.H);
    free(sc.a);
    free(sc.xi);
    free(sc.b);
    bh_glm_workspace_free(sc.ws);
    return st;
}

bh_status bh_boot_fit(const bh_fit *fit, const bh_boot_options *opt,
                      bh_boot_result **out, bh_error *err)
{
    if (fit && fit->linear)
        return bh_boot_wild(fit, opt, out, err);
    return bh_boot_score(fit, opt, out, err);
}
