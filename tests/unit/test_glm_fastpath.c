/* test_glm_fastpath.c - the tall-skinny QR (tsqr.c) and the chunked GLM
 * passes built on it, against independent slow computations written here:
 * modified Gram-Schmidt and Gauss-Jordan in long double on the whole
 * matrix (not the library's code, not its output).
 *
 * Designs are deterministic pseudo-random numbers (an LCG), sized around
 * the GLM's row chunk (4096 rows): not a multiple of it, smaller than one
 * chunk, and n = p. */
#include <criterion/criterion.h>
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
 * estimates (each within 1e-9 of sum_i |x_ij|). */
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
        cr_expect(fabsl(sc) <= 1e-9L * sa, "score %zu = %Lg (scale %Lg)", j,
                  sc, sa);
    }
    bh_fit_free(fit);
    bht_design_free(u);
    bht_design_free(t);
}
