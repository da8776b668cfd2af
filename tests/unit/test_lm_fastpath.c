/* test_lm_fastpath.c - the double (tall-skinny QR) path of bh_lm_fit.
 *
 * References: the least-squares solution, (X'WX)^-1, sigma^2 and the
 * leverages computed here independently from the normal equations in long
 * double (Cholesky of X'WX accumulated in long double).  On the designs
 * used (well conditioned: equilibrated condition numbers of order 10) that
 * reference is accurate to ~1e-17, so the double path must agree to 1e-13
 * relative.  The path
 * taken is read with bh_lm_workspace_path.  NIST designs (Filip, Wampler 4)
 * come from tests/fixtures/nist (NIST StRD data, see that directory).
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/lm.h"

#include "handdesign.h"

/* Under `make valgrind` (BH_VALGRIND set) long double is computed in
 * double precision (valgrind has no 80-bit x87 arithmetic), so the long
 * double references lose their extra digits: tolerances widen 100x. */
static double tol(double t)
{
    return getenv("BH_VALGRIND") ? 100 * t : t;
}

/* Rows per chunk of the double path for p = 6 (src/lm.c, chunk_rows:
 * 32768 / (p + 1) rounded down to a multiple of 8). */
#define CH6 4680

/* A small deterministic generator (splitmix64), uniform on [0, 1). */
static double unif(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

enum { W_NONE, W_ANALYTIC, W_FREQ };

/* n x p design: intercept, p - 1 uniform predictors on different scales
 * and offsets (still well conditioned), y = X beta + noise with every
 * beta_j in [1, 3] (relative comparisons stay meaningful). */
static bht_design *random_design(size_t n, size_t p, int wkind, uint64_t seed)
{
    bht_design *t = bht_design_new(n, p);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        t->d.x[i] = 1;
    for (size_t j = 1; j < p; j++) {
        double sc = (double)j * 10.0, off = (double)j;
        for (size_t i = 0; i < n; i++)
            t->d.x[j * n + i] = off + sc * (unif(&s) - 0.5);
    }
    for (size_t i = 0; i < n; i++) {
        double mu = 0;
        for (size_t j = 0; j < p; j++)
            mu += (1 + (double)(j % 3)) * t->d.x[j * n + i];
        t->d.y[i] = mu + (unif(&s) - 0.5);
    }
    if (wkind != W_NONE) {
        t->d.w = malloc(n * sizeof *t->d.w);
        for (size_t i = 0; i < n; i++)
            t->d.w[i] = wkind == W_FREQ ? (double)(1 + (i % 3))
                                        : 0.2 + unif(&s);
        if (n > 10)
            t->d.w[3] = 0;  /* a zero-weight row takes no part */
        t->d.weight_kind = wkind == W_FREQ ? BH_WEIGHTS_FREQUENCY
                                           : BH_WEIGHTS_ANALYTIC;
    }
    for (size_t j = 0; j < p; j++) {
        char nm[16];
        snprintf(nm, sizeof nm, j ? "x%zu" : "(Intercept)", j);
        bht_design_name(t, j, nm);
    }
    return t;
}

/* The reference: normal equations in long double. */
typedef struct {
    long double *beta, *inv, *hat;
    long double sigma2;
} nref;

static nref normal_equations(const bh_design *d)
{
    size_t n = d->n, p = d->p;
    long double *G = calloc(p * p, sizeof *G), *c = calloc(p, sizeof *c);
    long double *L = calloc(p * p, sizeof *L);
    nref r = {calloc(p, sizeof(long double)), calloc(p * p, sizeof(long double)),
              calloc(n, sizeof(long double)), 0};
    long double nobs = 0;
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        long double w = d->w ? d->w[i] : 1.0L;
        if (w > 0) {
            nobs += w;
            npos++;
        }
        for (size_t a = 0; a < p; a++) {
            c[a] += w * d->x[a * n + i] * (long double)d->y[i];
            for (size_t b = 0; b < p; b++)
                G[a * p + b] += w * d->x[a * n + i] * (long double)d->x[b * n + i];
        }
    }
    if (!(d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY))
        nobs = (long double)npos;
    /* Cholesky G = L L' (L lower, row-major). */
    for (size_t j = 0; j < p; j++) {
        long double s = G[j * p + j];
        for (size_t k = 0; k < j; k++)
            s -= L[j * p + k] * L[j * p + k];
        L[j * p + j] = sqrtl(s);
        for (size_t i = j + 1; i < p; i++) {
            long double t = G[i * p + j];
            for (size_t k = 0; k < j; k++)
                t -= L[i * p + k] * L[j * p + k];
            L[i * p + j] = t / L[j * p + j];
        }
    }
    /* G^-1 column by column: solve L L' x = e_c. */
    long double *v = calloc(p, sizeof *v);
    for (size_t col = 0; col <= p; col++) {
        for (size_t i = 0; i < p; i++)
            v[i] = col < p ? (i == col) : c[i];
        for (size_t i = 0; i < p; i++) {
            for (size_t k = 0; k < i; k++)
                v[i] -= L[i * p + k] * v[k];
            v[i] /= L[i * p + i];
        }
        for (size_t i = p; i-- > 0;) {
            for (size_t k = i + 1; k < p; k++)
                v[i] -= L[k * p + i] * v[k];
            v[i] /= L[i * p + i];
        }
        for (size_t i = 0; i < p; i++) {
            if (col < p)
                r.inv[i * p + col] = v[i];
            else
                r.beta[i] = v[i];
        }
    }
    long double rss = 0;
    for (size_t i = 0; i < n; i++) {
        long double w = d->w ? d->w[i] : 1.0L, e = d->y[i], h = 0;
        for (size_t a = 0; a < p; a++) {
            e -= d->x[a * n + i] * r.beta[a];
            for (size_t b = 0; b < p; b++)
                h += d->x[a * n + i] * r.inv[a * p + b] * (long double)d->x[b * n + i];
        }
        rss += w * e * e;
        r.hat[i] = w * h;
    }
    r.sigma2 = rss / (nobs - (long double)p);
    free(G);
    free(c);
    free(L);
    free(v);
    return r;
}

static void nref_free(nref *r)
{
    free(r->beta);
    free(r->inv);
    free(r->hat);
}

static bh_fit *fit_with(bht_design *t, bh_lm_path path, bh_lm_path *taken)
{
    bh_lm_options opt;
    bh_lm_default_options(&opt);
    opt.colnames = (const char *const *)t->names;
    opt.path = path;
    bh_lm_workspace *ws = bh_lm_workspace_alloc(t->d.n, t->d.p);
    cr_assert_not_null(ws);
    bh_fit *fit = NULL;
    bh_error err;
    cr_assert_eq(bh_lm_fit(&t->d, &opt, ws, &fit, &err), BH_OK, "%s", err.msg);
    *taken = bh_lm_workspace_path(ws);
    bh_lm_workspace_free(ws);
    return fit;
}

/* The automatic choice takes the double path on the design and agrees
 * with the normal equations in long double to 1e-13. */
static void check_against_reference(size_t n, size_t p, int wkind, uint64_t seed)
{
    bht_design *t = random_design(n, p, wkind, seed);
    bh_lm_path taken;
    bh_fit *fit = fit_with(t, BH_LM_PATH_AUTO, &taken);
    cr_expect_eq(taken, BH_LM_PATH_DOUBLE, "n %zu p %zu weights %d: path %d",
                 n, p, wkind, (int)taken);
    nref r = normal_equations(&t->d);
    cr_assert_eq(fit->rank, p);
    for (size_t j = 0; j < p; j++) {
        bht_assert_rel(fit->beta[j], (double)r.beta[j], tol(1e-13),
                       "n %zu beta[%zu] weights %d", n, j, wkind);
        /* Off-diagonal entries relative to sqrt(B_jj B_kk): they may
         * be near zero. */
        for (size_t k = 0; k < p; k++) {
            double sc = sqrt((double)(r.inv[j * p + j] * r.inv[k * p + k]));
            double dv = fabs(fit->bread[j * p + k] - (double)r.inv[j * p + k]);
            cr_expect_leq(dv, tol(1e-13) * sc, "n %zu bread[%zu,%zu] weights %d: "
                          "%.17g vs %.17Lg", n, j, k, wkind,
                          fit->bread[j * p + k], r.inv[j * p + k]);
        }
    }
    bht_assert_rel(fit->dispersion, (double)r.sigma2, tol(1e-13), "n %zu sigma^2", n);
    for (size_t i = 0; i < n; i++)
        bht_assert_rel(fit->hat[i], (double)r.hat[i], tol(1e-13), "n %zu hat[%zu]", n, i);
    nref_free(&r);
    bh_fit_free(fit);
    bht_design_free(t);
}

Test(lm_fastpath, random_design_unweighted)
{
    check_against_reference(20000, 6, W_NONE, 1);
}

Test(lm_fastpath, random_design_weighted)
{
    check_against_reference(12345, 6, W_ANALYTIC, 2);
    check_against_reference(12345, 6, W_FREQ, 3);
}

/* Chunk boundaries: one row short of, exactly, one past one and two
 * chunks and a remainder; fewer rows than a chunk; wider designs. */
Test(lm_fastpath, chunk_boundaries)
{
    const size_t ns[] = {CH6 - 1, CH6, CH6 + 1, 2 * CH6 + 13, 3 * CH6, 50, 9};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        check_against_reference(ns[k], 6, k % 2 ? W_ANALYTIC : W_NONE, 10 + k);
    check_against_reference(3000, 40, W_NONE, 30);  /* 3000 = 3 chunks of 808 + 576 */
    check_against_reference(70, 1, W_NONE, 31);     /* intercept only */
}

/* n = p + 1: one residual degree of freedom, a nearly orthogonal design
 * (identity plus small perturbations, then one row of ones). */
Test(lm_fastpath, one_residual_df)
{
    size_t p = 6, n = p + 1;
    bht_design *t = bht_design_new(n, p);
    uint64_t s = 77;
    for (size_t j = 0; j < p; j++) {
        for (size_t i = 0; i < n; i++)
            t->d.x[j * n + i] = (i == j) + 0.1 * (unif(&s) - 0.5);
        t->d.x[j * n + p] = 1;
        bht_design_name(t, j, j ? "x" : "(Intercept)");
    }
    for (size_t i = 0; i < n; i++)
        t->d.y[i] = 1 + unif(&s);
    bh_lm_path taken;
    bh_fit *fit = fit_with(t, BH_LM_PATH_AUTO, &taken);
    cr_expect_eq(taken, BH_LM_PATH_DOUBLE);
    nref r = normal_equations(&t->d);
    for (size_t j = 0; j < p; j++) {
        bht_assert_rel(fit->beta[j], (double)r.beta[j], tol(1e-13), "beta[%zu]", j);
        bht_assert_rel(fit->vcov[j * p + j], (double)(r.inv[j * p + j] * r.sigma2),
                       tol(1e-12), "var[%zu]", j);
    }
    for (size_t i = 0; i < n; i++)
        bht_assert_rel(fit->hat[i], (double)r.hat[i], tol(1e-13), "hat[%zu]", i);
    cr_expect_eq(fit->stats.df_resid, 1);
    nref_free(&r);
    bh_fit_free(fit);
    bht_design_free(t);
}

/* Both paths on the same well-conditioned design: fitted values, residuals,
 * scores and fit statistics agree to the last bits. */
Test(lm_fastpath, paths_agree)
{
    bht_design *t = random_design(9999, 8, W_ANALYTIC, 5);
    bh_lm_path t1, t2;
    bh_fit *a = fit_with(t, BH_LM_PATH_AUTO, &t1);
    bh_fit *b = fit_with(t, BH_LM_PATH_EXTENDED, &t2);
    cr_expect_eq(t1, BH_LM_PATH_DOUBLE);
    cr_expect_eq(t2, BH_LM_PATH_EXTENDED);
    for (size_t i = 0; i < t->d.n; i++) {
        bht_assert_rel(a->fitted[i], b->fitted[i], tol(1e-14), "fitted[%zu]", i);
        bht_assert_rel(a->u[i], b->u[i], tol(1e-12), "u[%zu]", i);
        bht_assert_rel(a->hat[i], b->hat[i], tol(1e-13), "hat[%zu]", i);
    }
    bht_assert_rel(a->stats.r2, b->stats.r2, tol(1e-14));
    bht_assert_rel(a->stats.loglik, b->stats.loglik, tol(1e-14));
    bht_assert_rel(a->stats.fstat, b->stats.fstat, tol(1e-13));
    bh_fit_free(a);
    bh_fit_free(b);
    bht_design_free(t);
}

/* Polynomial designs of the NIST StRD (x from the fixture, powers by
 * repeated multiplication, intercept first). */
static bht_design *nist_poly(const char *name, size_t degree)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/nist/%s.csv", name);
    bht_fixture *fx = bht_fixture_read(path);
    size_t n = fx->nrow, p = degree + 1;
    bht_design *t = bht_design_new(n, p);
    for (size_t i = 0; i < n; i++) {
        double x = bht_fixture_num(fx, i, "x"), pw = 1;
        t->d.y[i] = bht_fixture_num(fx, i, "y");
        for (size_t k = 0; k < p; k++) {
            t->d.x[k * n + i] = pw;
            pw *= x;
        }
    }
    for (size_t k = 0; k < p; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "c%zu", k);
        bht_design_name(t, k, nm);
    }
    bht_fixture_free(fx);
    return t;
}

/* Ill-conditioned designs keep the extended path, bit for bit. */
Test(lm_fastpath, ill_conditioned_take_extended_path)
{
    struct { const char *name; size_t degree; } cs[] = {
        {"filip", 10}, {"wampler4", 5}, {"wampler1", 5}};
    for (size_t k = 0; k < 3; k++) {
        bht_design *t = nist_poly(cs[k].name, cs[k].degree);
        bh_lm_path t1, t2;
        bh_fit *a = fit_with(t, BH_LM_PATH_AUTO, &t1);
        bh_fit *b = fit_with(t, BH_LM_PATH_EXTENDED, &t2);
        cr_expect_eq(t1, BH_LM_PATH_EXTENDED, "%s: path %d", cs[k].name, (int)t1);
        for (size_t j = 0; j < t->d.p; j++) {
            cr_expect_eq(a->beta[j], b->beta[j], "%s beta[%zu]", cs[k].name, j);
            cr_expect_eq(a->vcov[j * t->d.p + j], b->vcov[j * t->d.p + j]);
        }
        bh_fit_free(a);
        bh_fit_free(b);
        bht_design_free(t);
    }
    /* Norris (straight line, condition 3.9) takes the double path. */
    bht_design *t = nist_poly("norris", 1);
    bh_lm_path taken;
    bh_fit *f = fit_with(t, BH_LM_PATH_AUTO, &taken);
    cr_expect_eq(taken, BH_LM_PATH_DOUBLE);
    bh_fit_free(f);
    bht_design_free(t);
}

/* Collinear columns are decided by the extended path (aliased, warned);
 * so are data near the ends of the double range. */
Test(lm_fastpath, collinear_and_extreme_scales_take_extended_path)
{
    bht_design *t = random_design(500, 4, W_NONE, 9);
    for (size_t i = 0; i < 500; i++)
        t->d.x[3 * 500 + i] = 2 * t->d.x[1 * 500 + i] - t->d.x[2 * 500 + i];
    bh_lm_path taken;
    bh_fit *f = fit_with(t, BH_LM_PATH_AUTO, &taken);
    cr_expect_eq(taken, BH_LM_PATH_EXTENDED);
    cr_expect_eq(f->rank, 3);
    cr_expect(f->aliased[3]);
    cr_expect_eq(f->nwarnings, 1);
    bh_fit_free(f);
    bht_design_free(t);

    /* Columns whose largest entry is below 2^-200 or above 2^200. */
    const double scale[2] = {1e-72, 1e70};
    for (int k = 0; k < 2; k++) {
        t = random_design(500, 3, W_NONE, 10);
        for (size_t i = 0; i < 500; i++)
            t->d.x[2 * 500 + i] *= scale[k];
        nref r = normal_equations(&t->d);
        f = fit_with(t, BH_LM_PATH_AUTO, &taken);
        cr_expect_eq(taken, BH_LM_PATH_EXTENDED, "scale %g", scale[k]);
        for (size_t j = 0; j < 3; j++)
            bht_assert_rel(f->beta[j], (double)r.beta[j], tol(1e-12), "scale %g", scale[k]);
        nref_free(&r);
        bh_fit_free(f);
        bht_design_free(t);
    }

    /* Forcing the double path still refuses a singular factor. */
    t = random_design(300, 3, W_NONE, 11);
    for (size_t i = 0; i < 300; i++)
        t->d.x[2 * 300 + i] = 0;
    f = fit_with(t, BH_LM_PATH_DOUBLE, &taken);
    cr_expect_eq(taken, BH_LM_PATH_EXTENDED);
    cr_expect(f->aliased[2]);
    bh_fit_free(f);
    bht_design_free(t);
}
