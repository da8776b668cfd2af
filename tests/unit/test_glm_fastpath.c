/* test_glm_fastpath.c - the tall-skinny QR (tsqr.c) and the chunked GLM
 * passes built on it, against independent slow computations written here:
 * modified Gram-Schmidt and Gauss-Jordan in long double on the whole
 * matrix (not the library's code, not its output).
 *
 * Designs are deterministic pseudo-random numbers (an LCG), sized around
 * the GLM's row chunk (4096 rows): not a multiple of it, smaller than one
 * chunk, and n = p. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/glm.h"
#include "blackhole/tsqr.h"
#include "handdesign.h"
#include "testutil.h"

/* Uniform(-1, 1) from a 64-bit LCG (Knuth's MMIX constants). */
static double unif(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * 0x1.0p-53 * 2 - 1;
}

/* R of the n x q column-major a by modified Gram-Schmidt in long double
 * (rq: q x q column-major, diagonal positive). */
static void mgs_r(const double *a, size_t n, size_t q, long double *rq)
{
    long double *v = malloc(n * q * sizeof *v);
    for (size_t k = 0; k < n * q; k++)
        v[k] = a[k];
    memset(rq, 0, q * q * sizeof *rq);
    for (size_t k = 0; k < q; k++) {
        long double s = 0;
        for (size_t i = 0; i < n; i++)
            s += v[k * n + i] * v[k * n + i];
        long double nr = sqrtl(s);
        rq[k * q + k] = nr;
        for (size_t i = 0; i < n; i++)
            v[k * n + i] /= nr;
        for (size_t j = k + 1; j < q; j++) {
            long double d = 0;
            for (size_t i = 0; i < n; i++)
                d += v[k * n + i] * v[j * n + i];
            rq[j * q + k] = d;
            for (size_t i = 0; i < n; i++)
                v[j * n + i] -= d * v[k * n + i];
        }
    }
    free(v);
}

/* In-place inverse of the q x q symmetric positive definite m (long
 * double Gauss-Jordan, partial pivoting). */
static void gj_inverse(long double *m, size_t q)
{
    long double *b = calloc(q * q, sizeof *b);
    for (size_t k = 0; k < q; k++)
        b[k * q + k] = 1;
    for (size_t k = 0; k < q; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < q; i++)
            if (fabsl(m[k * q + i]) > fabsl(m[k * q + piv]))
                piv = i;
        for (size_t j = 0; j < q; j++) {
            long double t = m[j * q + k];
            m[j * q + k] = m[j * q + piv];
            m[j * q + piv] = t;
            t = b[j * q + k];
            b[j * q + k] = b[j * q + piv];
            b[j * q + piv] = t;
        }
        long double d = m[k * q + k];
        for (size_t j = 0; j < q; j++) {
            m[j * q + k] /= d;
            b[j * q + k] /= d;
        }
        for (size_t i = 0; i < q; i++) {
            if (i == k)
                continue;
            long double f = m[k * q + i];
            for (size_t j = 0; j < q; j++) {
                m[j * q + i] -= f * m[j * q + k];
                b[j * q + i] -= f * b[j * q + k];
            }
        }
    }
    memcpy(m, b, q * q * sizeof *m);
    free(b);
}

/* TSQR of a (n x q) in chunks of `chunk` rows against MGS, up to the sign
 * of each row, each entry within rtol of its column's norm. */
static void check_tsqr(const double *a, size_t n, size_t q, size_t chunk,
                       double rtol)
{
    double *R = malloc(q * q * sizeof *R), *buf = malloc(chunk * q * sizeof *buf),
           *work = malloc(q * sizeof *work);
    long double *ref = malloc(q * q * sizeof *ref);
    bh_tsqr_reset(q, R, q);
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t c = n - i0 < chunk ? n - i0 : chunk;
        for (size_t j = 0; j < q; j++)
            memcpy(buf + j * c, a + j * n + i0, c * sizeof *buf);
        bh_tsqr_update(q, R, q, buf, c, c, work);
    }
    mgs_r(a, n, q, ref);
    for (size_t i = 0; i < q; i++) {
        double sg = R[i * q + i] < 0 ? -1 : 1;
        for (size_t j = i; j < q; j++) {
            double cn = (double)ref[j * q + j];
            for (size_t k = 0; k < j; k++)
                cn = hypot(cn, (double)ref[j * q + k]);
            double got = sg * R[j * q + i], want = (double)ref[j * q + i];
            cr_expect(fabs(got - want) <= rtol * cn,
                      "n %zu chunk %zu: R[%zu,%zu] = %.17g, MGS %.17g",
                      n, chunk, i, j, got, want);
        }
    }
    free(R);
    free(buf);
    free(work);
    free(ref);
}

static double *random_matrix(size_t n, size_t q, uint64_t seed)
{
    double *a = malloc(n * q * sizeof *a);
    uint64_t s = seed;
    for (size_t j = 0; j < q; j++)
        for (size_t i = 0; i < n; i++)
            /* Columns on different scales and correlated with the first. */
            a[j * n + i] = (j == 0 ? 1 : ldexp(1.0, (int)j * 3 - 6)) *
                           (unif(&s) + (j ? 0.5 * a[i] : 0));
    return a;
}

Test(glm_fastpath, tsqr_r_against_mgs)
{
    size_t q = 7;
    size_t sizes[] = {1000, 4096 * 2 + 37, 7};
    size_t chunks[] = {1, 3, 64, 1000, 4096};
    for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++) {
        double *m = random_matrix(sizes[a], q, 42 + a);
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++)
            check_tsqr(m, sizes[a], q, chunks[c], 1e-12);
        free(m);
    }
}

/* Chunks of fewer rows than columns, and a zero column (its R column
 * stays exactly zero). */
Test(glm_fastpath, tsqr_short_chunks_and_zero_column)
{
    size_t n = 50, q = 5;
    double *m = random_matrix(n, q, 7);
    check_tsqr(m, n, q, 2, 1e-12);
    for (size_t i = 0; i < n; i++)
        m[2 * n + i] = 0;
    double R[25], work[5], buf[5 * 5];
    bh_tsqr_reset(q, R, q);
    for (size_t i0 = 0; i0 < n; i0 += 5) {
        for (size_t j = 0; j < q; j++)
            memcpy(buf + j * 5, m + j * n + i0, 5 * sizeof *buf);
        bh_tsqr_update(q, R, q, buf, 5, 5, work);
    }
    for (size_t i = 0; i < q; i++)
        cr_expect(i > 2 || R[2 * q + i] == 0, "R[%zu,2] = %g", i, R[2 * q + i]);
    free(m);
}

/* A logit design: intercept and q - 1 covariates, y from a logistic
 * model with moderate effects (no separation). */
static bht_design *logit_design(size_t n, size_t q, uint64_t seed)
{
    bht_design *t = bht_design_new(n, q);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        t->d.x[i] = 1;
        double eta = 0.2;
        for (size_t j = 1; j < q; j++) {
            double v = unif(&s) * (double)j;
            t->d.x[j * n + i] = v;
            eta += (j % 2 ? 0.4 : -0.3) * v / (double)j;
        }
        t->d.y[i] = (unif(&s) + 1) / 2 < 1 / (1 + exp(-eta)) ? 1 : 0;
    }
    char nm[32];
    bht_design_name(t, 0, "(Intercept)");
    for (size_t j = 1; j < q; j++) {
        snprintf(nm, sizeof nm, "x%zu", j);
        bht_design_name(t, j, nm);
    }
    return t;
}

static bh_fit *fit_glm(bht_design *t, bh_family fam, bh_link link)
{
    bh_glm_options opt;
    bh_glm_default_options(&opt);
    opt.family = fam;
    opt.link = link;
    opt.colnames = (const char *const *)t->names;
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_glm_fit(&t->d, &opt, NULL, &fit, &err), BH_OK, "%s", err.msg);
    return fit;
}

/* Bread (X'WX)^-1 with W = mu (1 - mu) at the reported estimate (or W = 1,
 * gaussian) and leverages W_i x_i' (X'WX)^-1 x_i, in long double from the
 * estimates alone. */
static void check_bread_hat(const bht_design *t, const bh_fit *fit, int logit,
                            double rtol)
{
    size_t n = t->d.n, q = t->d.p;
    const double *x = t->d.x;
    long double *A = calloc(q * q, sizeof *A), *W = malloc(n * sizeof *W);
    for (size_t i = 0; i < n; i++) {
        long double eta = 0;
        for (size_t j = 0; j < q; j++)
            eta += (long double)x[j * n + i] * fit->beta[j];
        long double mu = 1 / (1 + expl(-eta));
        W[i] = logit ? mu * (1 - mu) : 1;
        for (size_t a = 0; a < q; a++)
            for (size_t b = 0; b < q; b++)
                A[b * q + a] += W[i] * x[a * n + i] * x[b * n + i];
    }
    gj_inverse(A, q);
    for (size_t a = 0; a < q; a++)
        for (size_t b = 0; b < q; b++) {
            double want = (double)A[b * q + a];
            double scale = sqrt(fabs((double)A[a * q + a] * (double)A[b * q + b]));
            cr_expect(fabs(fit->bread[b * q + a] - want) <= rtol * scale,
                      "bread[%zu,%zu] = %.17g, long double %.17g", a, b,
                      fit->bread[b * q + a], want);
        }
    double maxerr = 0;
    for (size_t i = 0; i < n; i++) {
        long double h = 0;
        for (size_t a = 0; a < q; a++)
            for (size_t b = 0; b < q; b++)
                h += (long double)x[a * n + i] * A[b * q + a] * x[b * n + i];
        h *= W[i];
        double e = fabs(fit->hat[i] - (double)h) / fmax((double)h, 1e-300);
        if (e > maxerr)
            maxerr = e;
    }
    cr_expect(maxerr <= rtol, "largest relative leverage error %g", maxerr);
    free(A);
    free(W);
}

/* n not a multiple of the 4096-row chunk: bread and leverages of a logit. */
Test(glm_fastpath, logit_bread_and_leverages)
{
    bht_design *t = logit_design(4096 * 2 + 37, 6, 11);
    bh_fit *fit = fit_glm(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    cr_assert(fit->converged);
    cr_assert_eq(fit->rank, 6);
    check_bread_hat(t, fit, 1, 1e-12);
    bh_fit_free(fit);
    bht_design_free(t);
}

/* n smaller than one chunk. */
Test(glm_fastpath, logit_small_n)
{
    bht_design *t = logit_design(60, 4, 5);
    bh_fit *fit = fit_glm(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    cr_assert(fit->converged);
    check_bread_hat(t, fit, 1, 1e-12);
    bh_fit_free(fit);
    bht_design_free(t);
}

/* n = p (gaussian, saturated): bread (X'X)^-1, every leverage 1. */
Test(glm_fastpath, gaussian_n_equals_p)
{
    bht_design *t = logit_design(5, 5, 3);
    for (size_t i = 0; i < 5; i++)
        t->d.y[i] = (double)i * 0.5 - 1;
    bh_fit *fit = fit_glm(t, BH_FAM_GAUSSIAN, BH_LINK_IDENTITY);
    cr_assert_eq(fit->rank, 5);
    check_bread_hat(t, fit, 0, 1e-11);
    for (size_t i = 0; i < 5; i++)
        bht_assert_rel(fit->hat[i], 1.0, 1e-12);
    bh_fit_free(fit);
    bht_design_free(t);
}

/* Rank decision (hand calculation): with columns (Intercept), x1, x2,
 * x3 = x1 + 2 x2 (exactly collinear: residual at rounding level),
 * x4 = x1 + 1e-12 u (residual norm about 1e-12 |u| / |x1| ~ 1e-12 of its
 * norm, below the 1e-9 rank tolerance) and x5 = x2 + 1e-5 u' (residual
 * ~1e-5 of its norm, kept), dqrdc2's limited pivoting accepts the columns
 * in order and sets aside x3 and x4: rank 4, aliased {x3, x4}.  The same
 * design over 3 chunks of rows (n = 9000). */
Test(glm_fastpath, rank_decision_collinear)
{
    size_t n = 9000, q = 6;
    bht_design *t = logit_design(n, 3, 17);
    bht_design *u = bht_design_new(n, q);
    uint64_t s = 99;
    memcpy(u->d.x, t->d.x, 3 * n * sizeof(double));
    memcpy(u->d.y, t->d.y, n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double x1 = u->d.x[n + i], x2 = u->d.x[2 * n + i];
        u->d.x[3 * n + i] = x1 + 2 * x2;
        u->d.x[4 * n + i] = x1 + 1e-12 * unif(&s);
        u->d.x[5 * n + i] = x2 + 1e-5 * unif(&s);
    }
    const char *nm[] = {"(Intercept)", "x1", "x2", "x3", "x4", "x5"};
    for (size_t j = 0; j < q; j++)
        bht_design_name(u, j, nm[j]);
    bh_fit *fit = fit_glm(u, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    cr_assert_eq(fit->rank, 4);
    int want[] = {0, 0, 0, 1, 1, 0};
    for (size_t j = 0; j < q; j++)
        cr_expect_eq(fit->aliased[j], want[j], "column %s aliased %d", nm[j],
                     fit->aliased[j]);
    cr_expect(isnan(fit->beta[3]) && isnan(fit->beta[4]));
    bh_fit_free(fit);
    bht_design_free(u);
    bht_design_free(t);
}

/* A column whose part orthogonal to the others is 1e-8 of its norm: kept
 * by the rank decision (tolerance 1e-9) but the equilibrated Cholesky
 * pivot of X'WX (~1e-16) is below its 1e-13 floor, so the steps are solved
 * by the tall-skinny QR of [sqrt(W) X, sqrt(W) z].  Checked against the
 * score equations X'(y - mu) = 0 evaluated in long double from the
 * estimates (each within 5e-8 of sum_i |x_ij|, see below). */
Test(glm_fastpath, qr_step_fallback_scores)
{
    size_t n = 5000, q = 4;
    bht_design *t = logit_design(n, 3, 23);
    bht_design *u = bht_design_new(n, q);
    uint64_t s = 5;
    memcpy(u->d.x, t->d.x, 3 * n * sizeof(double));
    memcpy(u->d.y, t->d.y, n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        u->d.x[3 * n + i] = u->d.x[2 * n + i] + 1e-8 * unif(&s);
    const char *nm[] = {"(Intercept)", "x1", "x2", "x3"};
    for (size_t j = 0; j < q; j++)
        bht_design_name(u, j, nm[j]);
    bh_fit *fit = fit_glm(u, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    cr_assert(fit->converged);
    cr_assert_eq(fit->rank, 4);
    for (size_t j = 0; j < q; j++) {
        long double sc = 0, sa = 0;
        for (size_t i = 0; i < n; i++) {
            long double eta = 0;
            for (size_t k = 0; k < q; k++)
                eta += (long double)u->d.x[k * n + i] * fit->beta[k];
            long double mu = 1 / (1 + expl(-eta));
            sc += u->d.x[j * n + i] * (u->d.y[i] - mu);
            sa += fabs(u->d.x[j * n + i]);
        }
        /* x3 and x4 differ by 1e-8: cond(X) ~ 1e8, so the scores are
         * attainable to about eps cond ~ 2e-8 of their scale (the
         * iterations end in rounding noise: 1e-9 held with glibc's and
         * the AVX paths' exp/log1p, 1.5e-8 with the portable path). */
        cr_expect(fabsl(sc) <= 5e-8L * sa, "score %zu = %Lg (scale %Lg)", j,
                  sc, sa);
    }
    bh_fit_free(fit);
    bht_design_free(u);
    bht_design_free(t);
}

/* The fit takes over the workspace's row vectors: one workspace used for
 * two fits in turn (the second needs init to reallocate them) gives the
 * same fits as fresh workspaces, bit for bit, and fitted = mu,
 * resid = y - fitted hold row by row. */
static void expect_same_fit(const bh_fit *a, const bh_fit *b, size_t n)
{
    size_t p = a->p;
    cr_assert_eq(a->p, b->p);
    cr_assert_eq(a->nrows, n);
    cr_assert_eq(b->nrows, n);
    cr_expect(memcmp(a->beta, b->beta, p * sizeof(double)) == 0, "beta");
    cr_expect(memcmp(a->vcov, b->vcov, p * p * sizeof(double)) == 0, "vcov");
    cr_expect(memcmp(a->u, b->u, n * sizeof(double)) == 0, "u");
    cr_expect(memcmp(a->hat, b->hat, n * sizeof(double)) == 0, "hat");
    cr_expect(memcmp(a->fitted, b->fitted, n * sizeof(double)) == 0, "fitted");
    cr_expect(memcmp(a->resid, b->resid, n * sizeof(double)) == 0, "resid");
    /* Bits, not ==: a statistic may be NAN in both (e.g. no AUC for
     * poisson). */
    cr_expect(memcmp(&a->stats.auc, &b->stats.auc, sizeof(double)) == 0 &&
                  memcmp(&a->stats.loglik, &b->stats.loglik, sizeof(double)) == 0,
              "statistics");
}

Test(glm_fastpath, workspace_reused_across_fits)
{
    bht_design *t1 = logit_design(4096 + 11, 5, 31);
    bht_design *t2 = logit_design(300, 3, 32);
    bh_glm_workspace *ws = bh_glm_workspace_alloc(4096 + 11, 5);
    cr_assert_not_null(ws);
    bh_glm_options opt;
    bh_glm_default_options(&opt);
    opt.family = BH_FAM_BINOMIAL;
    opt.link = BH_LINK_LOGIT;
    bh_error err;
    bh_fit *a1 = NULL, *a2 = NULL, *a3 = NULL;
    opt.colnames = (const char *const *)t1->names;
    cr_assert_eq(bh_glm_fit(&t1->d, &opt, ws, &a1, &err), BH_OK, "%s", err.msg);
    /* After a result the workspace must be initialised again. */
    cr_expect_neq(bh_glm_iterate(ws, &err), BH_OK);
    opt.colnames = (const char *const *)t2->names;
    cr_assert_eq(bh_glm_fit(&t2->d, &opt, ws, &a2, &err), BH_OK, "%s", err.msg);
    opt.colnames = (const char *const *)t1->names;
    cr_assert_eq(bh_glm_fit(&t1->d, &opt, ws, &a3, &err), BH_OK, "%s", err.msg);
    bh_glm_workspace_free(ws);
    bh_fit *f1 = fit_glm(t1, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bh_fit *f2 = fit_glm(t2, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    expect_same_fit(a1, f1, t1->d.n);
    expect_same_fit(a3, f1, t1->d.n);
    expect_same_fit(a2, f2, t2->d.n);
    for (size_t i = 0; i < t1->d.n; i++) {
        long double eta = 0;
        for (size_t j = 0; j < 5; j++)
            eta += (long double)t1->d.x[j * t1->d.n + i] * f1->beta[j];
        double mu = (double)(1 / (1 + expl(-eta)));
        cr_expect(fabs(f1->fitted[i] - mu) <= 1e-13, "fitted[%zu]", i);
        cr_expect_eq(f1->resid[i], t1->d.y[i] - f1->fitted[i], "resid[%zu]", i);
    }
    bh_fit_free(a1);
    bh_fit_free(a2);
    bh_fit_free(a3);
    bh_fit_free(f1);
    bh_fit_free(f2);
    bht_design_free(t1);
    bht_design_free(t2);
}

/* AUC with many tied fitted values (one binary covariate: two distinct
 * fitted values) against the pair count of its definition,
 * P(f_1 > f_0) + P(f_1 = f_0) / 2 over all (y = 1, y = 0) pairs, computed
 * here; the same with all prior weights 2 (the weighted path, whose
 * weights cancel) and with weights 1 given explicitly. */
Test(glm_fastpath, auc_ties_against_pair_count)
{
    size_t n = 2000;
    bht_design *t = bht_design_new(n, 2);
    uint64_t s = 41;
    for (size_t i = 0; i < n; i++) {
        t->d.x[i] = 1;
        t->d.x[n + i] = unif(&s) > 0.2 ? 1 : 0;
        double mu = t->d.x[n + i] ? 0.6 : 0.3;
        t->d.y[i] = (unif(&s) + 1) / 2 < mu ? 1 : 0;
    }
    bht_design_name(t, 0, "(Intercept)");
    bht_design_name(t, 1, "x");
    bh_fit *f = fit_glm(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    long double num = 0, n1 = 0, n0 = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->d.y[i] == 1)
            n1 += 1;
        else
            n0 += 1;
        if (t->d.y[i] != 1)
            continue;
        for (size_t j = 0; j < n; j++)
            if (t->d.y[j] == 0)
                num += f->fitted[i] > f->fitted[j]
                           ? 1
                           : (f->fitted[i] == f->fitted[j] ? 0.5L : 0);
    }
    double want = (double)(num / (n1 * n0));
    bht_assert_rel(f->stats.auc, want, 1e-14);
    t->d.w = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        t->d.w[i] = 1;
    bh_fit *f1 = fit_glm(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bht_assert_rel(f1->stats.auc, want, 1e-14);
    /* Two distinct fitted values: the decile breaks tie, so no
     * Hosmer-Lemeshow (R's cut() fails), on either path. */
    cr_expect(isnan(f->stats.hl_stat) && isnan(f1->stats.hl_stat));
    for (size_t i = 0; i < n; i++)
        t->d.w[i] = 2;
    bh_fit *f2 = fit_glm(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bht_assert_rel(f2->stats.auc, want, 1e-12);
    bht_assert_rel(f2->stats.pseudo_r2_tjur, f->stats.pseudo_r2_tjur, 1e-12);
    bh_fit_free(f);
    bh_fit_free(f1);
    bh_fit_free(f2);
    bht_design_free(t);
}

/* The logit fit of t in full and lean (both converged). */
static void full_and_lean(bht_design *t, bh_family fam, bh_fit **full, bh_fit **lean)
{
    bh_glm_options opt;
    bh_glm_default_options(&opt);
    opt.family = fam;
    opt.link = BH_LINK_LOGIT;
    opt.colnames = (const char *const *)t->names;
    bh_error err;
    *full = *lean = NULL;
    cr_assert_eq(bh_glm_fit(&t->d, &opt, NULL, full, &err), BH_OK, "%s", err.msg);
    opt.lean = 1;
    cr_assert_eq(bh_glm_fit(&t->d, &opt, NULL, lean, &err), BH_OK, "%s", err.msg);
    cr_assert((*full)->converged && (*lean)->converged);
}

/* Lean fits (simulations): the same coefficients, covariance, scores and
 * dispersion as the full fit up to rounding (its cross products come
 * from dgemm instead of dsyrk, its bread from the Cholesky factor of
 * X'WX instead of the QR), no leverages and no likelihood statistics. */
Test(glm_fastpath, lean_matches_full)
{
    size_t n = 461, q = 8;
    bht_design *t = logit_design(n, q, 51);
    uint64_t s = 52;
    for (size_t i = 0; i < n; i++) /* a fractional response */
        t->d.y[i] = 0.5 * t->d.y[i] + 0.25 * (unif(&s) + 1);
    bh_fit *full, *lean;
    full_and_lean(t, BH_FAM_FRACTIONAL, &full, &lean);
    cr_expect_null(lean->hat);
    cr_expect_not_null(full->hat);
    cr_expect(isnan(lean->stats.loglik) && isnan(lean->stats.null_deviance) &&
              isnan(lean->stats.pseudo_r2_mcfadden), "lean statistics");
    cr_expect(isfinite(full->stats.loglik));
    bht_assert_rel(lean->stats.deviance, full->stats.deviance, 1e-13);
    bht_assert_rel(lean->dispersion, full->dispersion, 1e-13);
    for (size_t j = 0; j < q; j++)
        cr_expect(fabs(lean->beta[j] - full->beta[j]) <=
                      1e-13 * (fabs(full->beta[j]) + 1e-3),
                  "beta %zu: %.17g vs %.17g", j, lean->beta[j], full->beta[j]);
    for (size_t a = 0; a < q; a++)
        for (size_t b = 0; b < q; b++) {
            double sc = sqrt(full->vcov[a * q + a] * full->vcov[b * q + b]);
            cr_expect(fabs(lean->vcov[a * q + b] - full->vcov[a * q + b]) <=
                          1e-13 * sc, "vcov %zu %zu", a, b);
        }
    for (size_t i = 0; i < n; i++) {
        cr_expect(fabs(lean->u[i] - full->u[i]) <= 1e-13, "u %zu", i);
        cr_expect(fabs(lean->fitted[i] - full->fitted[i]) <= 1e-13, "fitted %zu", i);
    }
    bh_fit_free(full);
    bh_fit_free(lean);
    bht_design_free(t);
}

/* The deviance of the logit fast path (one exp and one log1p per row,
 * y log y + (1 - y) log(1 - y) kept per row) against the unit deviances
 * summed in long double at the returned coefficients, with R's clamp of
 * mu beyond |eta| = 30: more than one chunk of rows, binary and
 * fractional responses, prior weights (one of them 0) and an offset that
 * puts some rows beyond the clamp. */
Test(glm_fastpath, logit_deviance_against_long_double)
{
    size_t n = 5000, q = 5;
    for (int frac = 0; frac < 2; frac++) {
        bht_design *t = logit_design(n, q, 61 + (uint64_t)frac);
        uint64_t s = 62;
        t->d.w = malloc(n * sizeof *t->d.w);
        t->d.offset = malloc(n * sizeof *t->d.offset);
        cr_assert(t->d.w && t->d.offset);
        t->d.weight_kind = BH_WEIGHTS_ANALYTIC;
        for (size_t i = 0; i < n; i++) {
            t->d.w[i] = i == 17 ? 0 : 0.5 + (unif(&s) + 1);
            t->d.offset[i] = i % 97 == 0 ? (i % 2 ? 40 : -40) : 0;
            if (frac && i % 3)
                t->d.y[i] = 0.5 * t->d.y[i] + 0.25 * (unif(&s) + 1);
        }
        bh_glm_options opt;
        bh_glm_default_options(&opt);
        opt.family = frac ? BH_FAM_FRACTIONAL : BH_FAM_BINOMIAL;
        opt.link = BH_LINK_LOGIT;
        opt.colnames = (const char *const *)t->names;
        bh_error err;
        bh_fit *fit = NULL;
        cr_assert_eq(bh_glm_fit(&t->d, &opt, NULL, &fit, &err), BH_OK, "%s",
                     err.msg);
        cr_assert(fit->converged);
        long double dev = 0, eps = DBL_EPSILON;
        for (size_t i = 0; i < n; i++) {
            long double eta = t->d.offset[i], mu, cmu, y = t->d.y[i];
            for (size_t j = 0; j < q; j++)
                eta += (long double)t->d.x[j * n + i] * fit->beta[j];
            if (eta > 30) {
                mu = 1 / (1 + eps);
                cmu = eps / (1 + eps);
            } else if (eta < -30) {
                mu = eps / (1 + eps);
                cmu = 1 / (1 + eps);
            } else {
                mu = 1 / (1 + expl(-eta));
                cmu = expl(-eta) / (1 + expl(-eta));
            }
            long double d = 0;
            if (y > 0)
                d += y * logl(y / mu);
            if (y < 1)
                d += (1 - y) * logl((1 - y) / cmu);
            dev += 2 * t->d.w[i] * d;
        }
        bht_assert_rel(fit->stats.deviance, (double)dev, 1e-12);
        bh_fit_free(fit);
        bht_design_free(t);
    }
}

/* Designs longer than one block (BH_GLM_BLOCK rows) are processed block by
 * block, on several threads: every pass (init, iterations, the QR at the
 * estimate, the result pass) must give the same bits for any number of
 * threads, with prior weights and an offset (the general path), for the
 * logit fast path, probit, poisson and Firth. */
static bh_fit *fit_threads(bht_design *t, bh_family fam, bh_link link,
                           int firth, size_t threads)
{
    bh_glm_options opt;
    bh_glm_default_options(&opt);
    opt.family = fam;
    opt.link = link;
    opt.firth = firth;
    opt.threads = threads;
    opt.colnames = (const char *const *)t->names;
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_glm_fit(&t->d, &opt, NULL, &fit, &err), BH_OK, "%s", err.msg);
    cr_assert(fit->converged);
    return fit;
}

Test(glm_fastpath, blocks_same_bits_for_any_thread_count, .timeout = 60)
{
    size_t n = 3 * BH_GLM_BLOCK + 123, q = 4;
    bht_design *t = logit_design(n, q, 71);
    uint64_t s = 72;
    t->d.w = malloc(n * sizeof *t->d.w);
    t->d.offset = malloc(n * sizeof *t->d.offset);
    cr_assert(t->d.w && t->d.offset);
    t->d.weight_kind = BH_WEIGHTS_ANALYTIC;
    for (size_t i = 0; i < n; i++) {
        t->d.w[i] = i == 40000 ? 0 : 0.5 + (unif(&s) + 1);
        t->d.offset[i] = 0.1 * unif(&s);
    }
    struct {
        bh_family fam;
        bh_link link;
        int firth;
    } m[] = {{BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0},
             {BH_FAM_BINOMIAL, BH_LINK_PROBIT, 0},
             {BH_FAM_POISSON, BH_LINK_LOG, 0},
             {BH_FAM_BINOMIAL, BH_LINK_LOGIT, 1}};
    for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
        bh_fit *f1 = fit_threads(t, m[k].fam, m[k].link, m[k].firth, 1);
        for (size_t th = 2; th <= 3; th++) {
            bh_fit *f = fit_threads(t, m[k].fam, m[k].link, m[k].firth, th);
            expect_same_fit(f, f1, n);
            cr_expect(f->stats.deviance == f1->stats.deviance &&
                      f->stats.null_deviance == f1->stats.null_deviance &&
                      f->dispersion == f1->dispersion,
                      "model %zu, %zu threads: deviance", k, th);
            bh_fit_free(f);
        }
        bh_fit_free(f1);
    }
    bht_design_free(t);
    /* Unweighted binary: the AUC's two sorts run on two threads, and
     * Hosmer-Lemeshow reads their merge. */
    t = logit_design(n, q, 73);
    bh_fit *u1 = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 1);
    bh_fit *u2 = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 2);
    expect_same_fit(u2, u1, n);
    cr_expect(isfinite(u1->stats.auc) && isfinite(u1->stats.hl_stat) &&
                  memcmp(&u1->stats.hl_stat, &u2->stats.hl_stat, sizeof(double)) == 0,
              "AUC %g, Hosmer-Lemeshow %g vs %g", u1->stats.auc, u1->stats.hl_stat,
              u2->stats.hl_stat);
    bh_fit_free(u1);
    bh_fit_free(u2);
    bht_design_free(t);
}

/* Block sums and the stacked block R factors against long double on the
 * whole matrix: bread and leverages of a logit over several blocks, on
 * two threads. */
Test(glm_fastpath, blocks_bread_and_leverages_against_long_double, .timeout = 60)
{
    bht_design *t = logit_design(2 * BH_GLM_BLOCK + 4097, 5, 81);
    bh_fit *fit = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 2);
    cr_assert_eq(fit->rank, 5);
    check_bread_hat(t, fit, 1, 1e-12);
    bh_fit_free(fit);
    bht_design_free(t);
}

/* Convergence: IRLS may stop when the error bound from the ratio of
 * successive coefficient changes is below 1e-10 (without the confirming
 * pass).  The estimate must then be the maximum to that accuracy: the
 * Newton step from it, (X'WX)^-1 X'(y - mu) computed in long double on the
 * whole data, is below 1e-12 of each coefficient's scale. */
Test(glm_fastpath, logit_estimate_is_the_maximum)
{
    size_t n = 20000, q = 5;
    bht_design *t = logit_design(n, q, 91);
    bh_fit *fit = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 1);
    const double *x = t->d.x;
    long double *A = calloc(q * q, sizeof *A), g[8] = {0};
    for (size_t i = 0; i < n; i++) {
        long double eta = 0;
        for (size_t j = 0; j < q; j++)
            eta += (long double)x[j * n + i] * fit->beta[j];
        long double mu = 1 / (1 + expl(-eta)), w = mu * (1 - mu);
        for (size_t a = 0; a < q; a++) {
            g[a] += x[a * n + i] * (t->d.y[i] - mu);
            for (size_t b = 0; b < q; b++)
                A[b * q + a] += w * x[a * n + i] * x[b * n + i];
        }
    }
    gj_inverse(A, q);
    double bmax = 0;
    for (size_t j = 0; j < q; j++)
        bmax = fmax(bmax, fabs(fit->beta[j]));
    for (size_t a = 0; a < q; a++) {
        long double step = 0;
        for (size_t b = 0; b < q; b++)
            step += A[b * q + a] * g[b];
        cr_expect(fabsl(step) <= 1e-12 * (fabs(fit->beta[a]) + 1e-6 * bmax),
                  "coefficient %zu: Newton step %Lg from %.17g", a, step,
                  fit->beta[a]);
    }
    free(A);
    bh_fit_free(fit);
    bht_design_free(t);
}

/* A lean fit of a design with nearly collinear columns (the second
 * covariate is the first plus 1e-3 noise: an equilibrated pivot ratio
 * ~1e-3, below the 1e-2 at which lean fits take the bread from the
 * Cholesky factor) takes it from the QR, as the full fit: the same bread
 * to 1e-10 (the coefficients differ by rounding), checked also against
 * long double. */
Test(glm_fastpath, lean_ill_conditioned_takes_the_qr)
{
    size_t n = 3000, q = 4;
    bht_design *t = logit_design(n, q, 93);
    uint64_t s = 94;
    for (size_t i = 0; i < n; i++)
        t->d.x[2 * n + i] = t->d.x[n + i] + 1e-3 * unif(&s);
    bh_fit *full, *lean;
    full_and_lean(t, BH_FAM_BINOMIAL, &full, &lean);
    for (size_t a = 0; a < q; a++)
        for (size_t b = 0; b < q; b++) {
            double sc = sqrt(full->bread[a * q + a] * full->bread[b * q + b]);
            cr_expect(fabs(lean->bread[a * q + b] - full->bread[a * q + b]) <= 1e-10 * sc,
                      "bread %zu %zu: %.17g vs %.17g", a, b, lean->bread[a * q + b],
                      full->bread[a * q + b]);
        }
    bh_fit *f = lean;
    lean->hat = malloc(n * sizeof *lean->hat); /* check_bread_hat reads leverages */
    cr_assert_not_null(lean->hat);
    memcpy(lean->hat, full->hat, n * sizeof *lean->hat);
    check_bread_hat(t, f, 1, 1e-9);
    bh_fit_free(full);
    bh_fit_free(lean);
    bht_design_free(t);
}

/* Over several blocks the rank decision comes from the stacked block R
 * factors: an exactly collinear column (x3 = x1 + 2 x2) is aliased, with
 * the same bits for 1 and 2 threads, and the remaining estimates agree
 * with the fit without that column (to rounding). */
Test(glm_fastpath, blocks_rank_decision, .timeout = 60)
{
    size_t n = 2 * BH_GLM_BLOCK + 999, q = 4;
    bht_design *t = logit_design(n, q, 95);
    for (size_t i = 0; i < n; i++)
        t->d.x[3 * n + i] = t->d.x[n + i] + 2 * t->d.x[2 * n + i];
    bh_fit *f1 = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 1);
    bh_fit *f2 = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 2);
    cr_expect_eq(f1->rank, 3);
    cr_expect(f1->aliased[3] && !f1->aliased[0] && !f1->aliased[1] && !f1->aliased[2]);
    cr_expect(memcmp(f1->beta, f2->beta, q * sizeof(double)) == 0, "beta bits");
    cr_expect(memcmp(f1->vcov, f2->vcov, q * q * sizeof(double)) == 0, "vcov bits");
    t->d.p = 3; /* the same fit without the collinear column */
    bh_fit *f3 = fit_threads(t, BH_FAM_BINOMIAL, BH_LINK_LOGIT, 0, 2);
    for (size_t j = 0; j < 3; j++)
        bht_assert_rel(f1->beta[j], f3->beta[j], 1e-12);
    bh_fit_free(f1);
    bh_fit_free(f2);
    bh_fit_free(f3);
    t->d.p = q;
    bht_design_free(t);
}

/* opt.recycle: a fit of the same shape is reset and reused (the same
 * pointer comes back) with the same bits as a fresh fit, and nothing of
 * the earlier fit survives (its non-convergence warning, its
 * statistics); a fit of another shape is left to the caller. */
Test(glm_fastpath, recycled_fit_equals_fresh)
{
    bht_design *t1 = logit_design(700, 4, 97), *t2 = logit_design(500, 4, 98);
    bht_design *t3 = logit_design(300, 3, 99);
    bh_glm_options opt;
    bh_glm_default_options(&opt);
    opt.family = BH_FAM_BINOMIAL;
    opt.link = BH_LINK_LOGIT;
    opt.maxiter = 2;
    opt.colnames = (const char *const *)t1->names;
    bh_error err;
    bh_fit *old = NULL, *got = NULL;
    cr_assert_eq(bh_glm_fit(&t1->d, &opt, NULL, &old, &err), BH_OK, "%s", err.msg);
    cr_assert(!old->converged && old->nwarnings > 0);
    opt.maxiter = 100;
    opt.colnames = (const char *const *)t2->names;
    opt.recycle = old;
    cr_assert_eq(bh_glm_fit(&t2->d, &opt, NULL, &got, &err), BH_OK, "%s", err.msg);
    cr_expect(got == old, "a fit of the same shape is reused");
    bh_fit *fresh = fit_glm(t2, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    expect_same_fit(got, fresh, t2->d.n);
    cr_expect(got->converged && got->nwarnings == 0 && got->iterations == fresh->iterations);
    cr_expect(memcmp(&got->stats, &fresh->stats, sizeof got->stats) == 0, "statistics");
    cr_expect(memcmp(got->bread, fresh->bread, 16 * sizeof(double)) == 0, "bread");
    for (size_t j = 0; j < 4; j++)
        cr_expect_str_eq(got->term[j], fresh->term[j]);
    /* another shape: not reused */
    bh_fit *other = NULL;
    opt.colnames = (const char *const *)t3->names;
    opt.recycle = got;
    cr_assert_eq(bh_glm_fit(&t3->d, &opt, NULL, &other, &err), BH_OK, "%s", err.msg);
    cr_expect(other != got && other->p == 3);
    bh_fit_free(other);
    bh_fit_free(got);
    bh_fit_free(fresh);
    bht_design_free(t1);
    bht_design_free(t2);
    bht_design_free(t3);
}
