/* test_ran.c - the samplers of ran.h.
 *
 * References:
 *  - Stream: the contract of ran.h, bh_ran_uniform() at (seed, index, sub)
 *    equals gsl_rng_uniform() on a bh_rng_type() generator set with
 *    bh_rng_substream_set() (rng.h, itself tested against an independent
 *    implementation in test_rng.c).  The crafted-state tests invert the
 *    xoshiro256** output function rotl(5 s[1], 7) 9 (Blackman & Vigna, ACM
 *    TOMS 47(4), 2021).
 *  - Ziggurat: Marsaglia & Tsang, "The ziggurat method for generating random
 *    variables", J. Stat. Software 5(8), 2000, publish R = 3.6541528853610088
 *    and v = 4.92867323399e-3 for 256 layers.  The layer area v from R is
 *    in tests/fixtures/ran/ziggurat.csv (R 4.2.2,
 *    tests/fixtures/r/ran_reference.R, via pnorm).  The published v is off by
 *    2 units in its 12th digit: the area from R is 4.9286732339746549e-3
 *    (mpmath, 40 digits), and the exact root of the closure condition,
 *    R* = 3.65415288536100877165, gives 4.9286732339746553e-3.  So the
 *    published value is checked to 5e-12 relative (11 digits).
 *  - Distribution functions: GSL 2.7.1, gsl_cdf_ugaussian_P/Q, gsl_cdf_gamma_P,
 *    gsl_cdf_beta_P, gsl_ran_poisson_pdf, gsl_cdf_poisson_Q,
 *    gsl_ran_negative_binomial_pdf, gsl_cdf_chisq_Q (p-values of Pearson's
 *    chi-square statistic); gsl_sf_psi, gsl_sf_psi_1, gsl_sf_psi_n for the
 *    cumulants of log G(a) (polygamma psi_(n-1)(a)).  Normal tail
 *    probabilities: the R fixture.
 *  - The ziggurat's rare paths (tail, wedges) are also tested directly, by
 *    crafted first outputs (white-box: they use ran.c's bit layout), against
 *    the exact conditional tail law and wedge acceptance probabilities.
 *  - Moments (closed forms): normal E Z^k = 0, 1, 0, 3 with Var Z^k = 1, 2,
 *    15, 96; gamma(a, b) mean a b, variance a b^2, 4th central moment
 *    3 a (a + 2) b^4; Poisson mean = variance = mu, 4th central moment
 *    mu (1 + 3 mu); negative binomial mean mu, variance mu + mu^2 / size (4th
 *    central moment summed from GSL's pmf); Dirichlet marginals Beta(a_j,
 *    a0 - a_j) with raw moments prod_{i<r} (a_j + i) / (a0 + i).
 *
 * Tolerances: Monte Carlo estimates within 5 standard errors (from the exact
 * moments; the SE of a sample variance is sqrt((mu4 - sigma^4) / n)),
 * chi-square p-values > 1e-4.  Seeds are fixed, so results are reproducible.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sf_psi.h>

#include "blackhole/ran.h"
#include "blackhole/rng.h"

#define NSE 5.0          /* Monte Carlo tolerance, in standard errors */
#define PMIN 1e-4        /* smallest accepted chi-square p-value */
#define ZIG_R 3.6541528853610088  /* Marsaglia & Tsang (2000), 256 layers */

static bh_ran *ran_at(uint64_t seed, uint64_t index, uint64_t sub)
{
    bh_ran *r = bh_ran_alloc();
    cr_assert_not_null(r, "bh_ran_alloc failed");
    bh_ran_substream(r, seed, index, sub);
    return r;
}

static void assert_se(double got, double want, double se, const char *what)
{
    cr_assert(fabs(got - want) <= NSE * se,
              "%s: got %.10g, want %.10g: %.2f SE off (SE %.3g)", what, got,
              want, fabs(got - want) / se, se);
}

static void assert_p(double p, const char *what)
{
    cr_assert(p > PMIN, "%s: chi-square p-value %.3g <= %g", what, p, PMIN);
}

/* Pearson's chi-square p-value for m cells (m - 1 degrees of freedom). */
static double chisq_p(const double *obs, const double *ex, size_t m)
{
    double x2 = 0;
    for (size_t j = 0; j < m; j++) {
        double d = obs[j] - ex[j];
        x2 += d * d / ex[j];
    }
    return gsl_cdf_chisq_Q(x2, (double)(m - 1));
}

/* Chi-square p-value of probability integral transforms u = F(x) (uniform
 * when x has distribution F) in nb equiprobable bins. */
static double pit_p(const double *u, size_t n, size_t nb)
{
    double *obs = calloc(nb, sizeof *obs), *ex = malloc(nb * sizeof *ex);
    cr_assert(obs && ex);
    for (size_t i = 0; i < n; i++) {
        size_t b = (size_t)(u[i] * (double)nb);
        obs[b < nb ? b : nb - 1]++;
    }
    for (size_t b = 0; b < nb; b++)
        ex[b] = (double)n / (double)nb;
    double p = chisq_p(obs, ex, nb);
    free(obs);
    free(ex);
    return p;
}

/* Chi-square p-value of integer draws against p[k] = P(X = k), k = 0..K,
 * and tail = P(X > K): consecutive values pooled into cells of expected
 * count >= 20 (a short remainder joins the last cell). */
static double int_chisq_p(const double *x, size_t n, const double *p,
                          size_t K, double tail)
{
    double *cnt = calloc(K + 2, sizeof *cnt);
    double *obs = calloc(K + 2, sizeof *obs), *ex = calloc(K + 2, sizeof *ex);
    cr_assert(cnt && obs && ex);
    for (size_t i = 0; i < n; i++)
        cnt[x[i] > (double)K ? K + 1 : (size_t)x[i]]++;
    size_t m = 0;
    double o = 0, e = 0;
    for (size_t k = 0; k <= K + 1; k++) {
        o += cnt[k];
        e += (double)n * (k <= K ? p[k] : tail);
        if (e >= 20) {
            obs[m] = o;
            ex[m++] = e;
            o = e = 0;
        }
    }
    cr_assert(m >= 2, "only %zu chi-square cells", m);
    obs[m - 1] += o;
    ex[m - 1] += e;
    double pv = chisq_p(obs, ex, m);
    free(cnt);
    free(obs);
    free(ex);
    return pv;
}

/* Sample mean and variance against the exact mean, variance and 4th central
 * moment, each within NSE standard errors. */
static void check_mean_var(const double *x, size_t n, double mean, double var,
                           double mu4, const char *what)
{
    double m = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        m += x[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        s2 += (x[i] - m) * (x[i] - m);
    s2 /= (double)(n - 1);
    char buf[160];
    snprintf(buf, sizeof buf, "%s mean", what);
    assert_se(m, mean, sqrt(var / (double)n), buf);
    snprintf(buf, sizeof buf, "%s variance", what);
    assert_se(s2, var, sqrt((mu4 - var * var) / (double)n), buf);
}

/* ---- stream ---- */

Test(ran, uniform_is_the_gsl_stream)
{
    const uint64_t keys[][3] = {
        {0, 0, 0}, {12345, 7, 3}, {UINT64_MAX, 99999, (uint64_t)1 << 40}};
    gsl_rng *g = gsl_rng_alloc(bh_rng_type());
    cr_assert_not_null(g);
    bh_ran *r = bh_ran_alloc();
    cr_assert_not_null(r);
    for (size_t c = 0; c < 3; c++) {
        bh_error err;
        cr_assert_eq(bh_rng_substream_set(g, keys[c][0], keys[c][1],
                                          keys[c][2], &err), BH_OK);
        bh_ran_substream(r, keys[c][0], keys[c][1], keys[c][2]);
        for (int i = 0; i < 1000; i++) {
            double want = gsl_rng_uniform(g), got = bh_ran_uniform(r);
            cr_assert(got == want, "key %zu draw %d: got %.17g want %.17g", c,
                      i, got, want);
            cr_assert(got >= 0 && got < 1);
            double scaled = got * 0x1.0p53;  /* 53 random bits */
            cr_assert(scaled == floor(scaled));
        }
    }
    gsl_rng_free(g);
    bh_ran_free(r);
}

Test(ran, uniform_fill_is_repeated_uniform)
{
    bh_ran *a = ran_at(42, 3, 9), *b = ran_at(42, 3, 9);
    double want[1000], got[1000];
    for (int i = 0; i < 1000; i++)
        want[i] = bh_ran_uniform(a);
    /* pieces of several lengths (0 included) continue the stream */
    const size_t len[] = {0, 1, 7, 0, 500, 492};
    size_t at = 0;
    for (size_t q = 0; q < sizeof len / sizeof len[0]; q++) {
        bh_ran_uniform_fill(b, got + at, len[q]);
        at += len[q];
    }
    cr_assert_eq(at, 1000);
    cr_assert(memcmp(got, want, sizeof got) == 0);
    /* and the state after them is the same */
    cr_assert(bh_ran_uniform(a) == bh_ran_uniform(b));
    bh_ran_free(a);
    bh_ran_free(b);
}

/* ran.h: "NULL when out of memory.  Positioned at stream (0, 0)": the
 * stream of bh_rng_stream_alloc(0, 0) (rng.h), which is not its substream
 * 0 (bh_rng_substream_key(0, 0, 0) != bh_rng_stream_key(0, 0)). */
Test(ran, alloc_is_at_substream_0_0_0)
{
    bh_ran *r = bh_ran_alloc();
    gsl_rng *g = gsl_rng_alloc(bh_rng_type());
    bh_error err;
    cr_assert(r && g);
    cr_assert_eq(bh_rng_substream_set(g, 0, 0, 0, &err), BH_OK);
    double got[10], want[10];
    for (int i = 0; i < 10; i++) {
        want[i] = gsl_rng_uniform(g);
        got[i] = bh_ran_uniform(r);
    }
    gsl_rng_free(g);
    bh_ran_free(r);
    for (int i = 0; i < 10; i++)
        cr_assert(got[i] == want[i],
                  "fresh bh_ran, draw %d: got %.17g, substream (0, 0, 0) gives "
                  "%.17g (ran.h documents that start)", i, got[i], want[i]);
}

/* Odd a's inverse modulo 2^64 (Newton: each step doubles the correct low
 * bits, from 3 for x = a). */
static uint64_t inv_odd(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

/* Put r in a state whose next 64-bit output is t, the other state words
 * w[0..2] (they make the outputs after it): xoshiro256** outputs
 * rotl(5 s[1], 7) 9, so s[1] = 5^-1 rotr(9^-1 t, 7) (mod 2^64). */
static void next_output_w(bh_ran *r, uint64_t t, const uint64_t w[3])
{
    uint64_t y = t * inv_odd(9);
    y = (y >> 7) | (y << 57);
    r->s[0] = w[0];
    r->s[1] = y * inv_odd(5);
    r->s[2] = w[1];
    r->s[3] = w[2];
    uint64_t s[4];
    memcpy(s, r->s, sizeof s);
    cr_assert_eq(bh_rng_next64(s), t, "crafted state");
}

static void next_output(bh_ran *r, uint64_t t)
{
    const uint64_t w[3] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL,
                           0x0f1e2d3c4b5a6978ULL};
    next_output_w(r, t, w);
}

Test(ran, uniform_extremes)
{
    bh_ran *r = bh_ran_alloc();
    cr_assert_not_null(r);
    next_output(r, 0);
    cr_assert(bh_ran_uniform(r) == 0.0);
    next_output(r, UINT64_MAX);
    cr_assert(bh_ran_uniform(r) == 1 - 0x1.0p-53);
    next_output(r, UINT64_MAX);
    double u;
    bh_ran_uniform_fill(r, &u, 1);
    cr_assert(u == 1 - 0x1.0p-53);
    bh_ran_free(r);
}

/* The discrete sampler at u = 0 and u = 1 - 2^-53: zero-probability
 * categories at either end are still never drawn, on both the scan (k <= 8)
 * and the binary-search path. */
Test(ran, discrete_at_extreme_uniforms)
{
    bh_ran *r = bh_ran_alloc();
    cr_assert_not_null(r);
    const double lead4[] = {0, 0, 0.5, 1};
    const double lead9[] = {0, 0, 1, 2, 3, 4, 5, 6, 7};
    const double end4[] = {0.3, 0.55, 0.8, 0.8};
    const double end9[] = {1, 2, 3, 4, 5, 6, 7, 7, 7};
    const double odd[] = {0.1, 0.2, 0.29999999999999999};  /* total not 1 */
    next_output(r, 0);
    cr_assert_eq(bh_ran_discrete(r, 4, lead4), 2);
    next_output(r, 0);
    cr_assert_eq(bh_ran_discrete(r, 9, lead9), 2);
    next_output(r, UINT64_MAX);
    cr_assert_eq(bh_ran_discrete(r, 4, end4), 2);
    next_output(r, UINT64_MAX);
    cr_assert_eq(bh_ran_discrete(r, 9, end9), 6);
    next_output(r, UINT64_MAX);
    cr_assert_eq(bh_ran_discrete(r, 3, odd), 2);
    const double one[] = {2.5};
    next_output(r, UINT64_MAX);
    cr_assert_eq(bh_ran_discrete(r, 1, one), 0);
    bh_ran_free(r);
}

/* ---- ziggurat tables ---- */

static double fixture_value(const bht_fixture *fx, const char *name)
{
    for (size_t i = 0; i < fx->nrow; i++)
        if (strcmp(bht_fixture_str(fx, i, "name"), name) == 0)
            return bht_fixture_num(fx, i, "value");
    cr_assert_fail("fixture has no %s", name);
    return NAN;
}

/* The fill gives what repeated draws give, for the scan (k <= 8) and the
 * binary search, and leaves the stream where they leave it. */
Test(ran, discrete_fill_is_repeated_discrete)
{
    static const double cum4[] = {0.3, 0.55, 0.8, 1.0};
    static const double cum12[] = {1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12};
    const double *cums[2] = {cum4, cum12};
    size_t ks[2] = {4, 12};
    for (int c = 0; c < 2; c++) {
        bh_ran *a = ran_at(11, 3, 5), *b = ran_at(11, 3, 5);
        enum { N = 3000 };
        int got[N];
        for (int i = 0; i < N; i++)
            got[i] = -1;
        bh_ran_discrete_fill(b, ks[c], cums[c], got, 7);
        bh_ran_discrete_fill(b, ks[c], cums[c], got + 7, N - 7);
        for (int i = 0; i < N; i++)
            cr_assert_eq((size_t)got[i], bh_ran_discrete(a, ks[c], cums[c]), "k %zu, draw %d",
                         ks[c], i);
        cr_assert(bh_ran_uniform(a) == bh_ran_uniform(b));
        bh_ran_free(a);
        bh_ran_free(b);
    }
}

Test(ran, ziggurat_tables)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/ran/ziggurat.csv");
    const double v_ref = fixture_value(fx, "v");
    cr_assert(fixture_value(fx, "R") == ZIG_R);
    bht_fixture_free(fx);
    /* the layer area from R, as the tables must use it: equal to R's
     * value and, to 11 digits, to the published one (see the top) */
    const double R = ZIG_R;
    const double v = R * exp(-0.5 * R * R) +
                     sqrt(acos(-1.0) / 2) * erfc(R / sqrt(2.0));
    bht_assert_rel(v, v_ref, 1e-14);
    bht_assert_rel(v, 4.92867323399e-3, 5e-12);

    bh_ran *r = bh_ran_alloc();
    cr_assert_not_null(r);
    const double *x = r->zx, *f = r->zf;
    const int N = BH_RAN_ZIG_N;
    cr_assert(x[1] == R, "zx[1] = %.17g, want R", x[1]);
    cr_assert(x[N] == 0);
    for (int i = 0; i < N; i++)
        cr_assert(x[i] > x[i + 1], "zx not decreasing at %d: %.17g <= %.17g",
                  i, x[i], x[i + 1]);
    for (int i = 0; i <= N; i++)
        bht_assert_rel(f[i], exp(-0.5 * x[i] * x[i]), 1e-15, "zf[%d]", i);
    /* base strip: a rectangle of area v and height f(R) */
    bht_assert_rel(x[0] * exp(-0.5 * R * R), v, 1e-14);
    /* every layer has area v, the top one (up to f(0) = 1) included */
    for (int i = 1; i < N - 1; i++)
        bht_assert_rel(x[i] * (exp(-0.5 * x[i + 1] * x[i + 1]) -
                               exp(-0.5 * x[i] * x[i])),
                       v, 1e-12, "layer %d", i);
    bht_assert_rel(x[N - 1] * (1 - exp(-0.5 * x[N - 1] * x[N - 1])), v, 1e-12,
                   "top layer");
    bh_ran_free(r);
}

/* ---- normal ---- */

Test(ran, normal_fill_is_repeated_normal)
{
    bh_ran *a = ran_at(7, 1, 2), *b = ran_at(7, 1, 2);
    enum { N = 5000 };
    double *want = malloc(N * sizeof *want), *got = malloc(N * sizeof *got);
    cr_assert(want && got);
    for (int i = 0; i < N; i++)
        want[i] = bh_ran_normal(a);
    bh_ran_normal_fill(b, got, 1);
    bh_ran_normal_fill(b, got + 1, N - 1);
    cr_assert(memcmp(got, want, N * sizeof *got) == 0);
    cr_assert(bh_ran_uniform(a) == bh_ran_uniform(b));
    free(want);
    free(got);
    bh_ran_free(a);
    bh_ran_free(b);
}

Test(ran, normal_distribution)
{
    enum { N = 200000 };
    bh_ran *r = ran_at(20240611, 0, 0);
    double *z = malloc(N * sizeof *z), *u = malloc(N * sizeof *u);
    cr_assert(z && u);
    bh_ran_normal_fill(r, z, N);
    double m[5] = {0};  /* raw moments about the true mean 0 */
    for (size_t i = 0; i < N; i++) {
        cr_assert(isfinite(z[i]));
        u[i] = gsl_cdf_ugaussian_P(z[i]);
        double p = 1;
        for (int k = 1; k <= 4; k++)
            m[k] += (p *= z[i]);
    }
    assert_p(pit_p(u, N, 100), "normal, 100 bins");
    const double want[5] = {0, 0, 1, 0, 3}, var[5] = {0, 1, 2, 15, 96};
    const char *name[5] = {"", "E Z", "E Z^2", "E Z^3", "E Z^4"};
    for (int k = 1; k <= 4; k++)
        assert_se(m[k] / N, want[k], sqrt(var[k] / N), name[k]);
    free(z);
    free(u);
    bh_ran_free(r);
}

/* 4e6 draws: the fine shape (1000 bins, ~4 bins per layer: a wrong wedge or
 * layer edge shows), the tail path's frequency beyond R and 4.5, and the
 * distribution of |Z| given |Z| > R (the tail sampler). */
Test(ran, normal_fine_shape_and_tails)
{
    enum { CHUNK = 100000, NCHUNK = 40, NB = 1000, NT = 10 };
    const double n = (double)CHUNK * NCHUNK;
    bht_fixture *fx = bht_fixture_read("tests/fixtures/ran/ziggurat.csv");
    const double pR = fixture_value(fx, "p_abs_gt_R");
    const double p45 = fixture_value(fx, "p_abs_gt_4.5");
    bht_fixture_free(fx);
    const double qR = gsl_cdf_ugaussian_Q(ZIG_R);
    bh_ran *r = ran_at(99, 5, 1);
    double *z = malloc(CHUNK * sizeof *z);
    double obs[NB] = {0}, ex[NB], tobs[NT] = {0}, tex[NT];
    double nR = 0, n45 = 0, npos = 0;
    cr_assert(z);
    for (int c = 0; c < NCHUNK; c++) {
        bh_ran_normal_fill(r, z, CHUNK);
        for (size_t i = 0; i < CHUNK; i++) {
            size_t b = (size_t)(gsl_cdf_ugaussian_P(z[i]) * NB);
            obs[b < NB ? b : NB - 1]++;
            double a = fabs(z[i]);
            if (a > ZIG_R) {
                nR++;
                npos += z[i] > 0;
                /* P(|Z| > a | |Z| > R) = Q(a) / Q(R), uniform */
                size_t t = (size_t)(gsl_cdf_ugaussian_Q(a) / qR * NT);
                tobs[t < NT ? t : NT - 1]++;
            }
            n45 += a > 4.5;
        }
    }
    for (size_t b = 0; b < NB; b++)
        ex[b] = n / NB;
    assert_p(chisq_p(obs, ex, NB), "normal, 1000 bins");
    assert_se(nR, n * pR, sqrt(n * pR * (1 - pR)), "count |Z| > R");
    assert_se(n45, n * p45, sqrt(n * p45 * (1 - p45)), "count |Z| > 4.5");
    for (size_t t = 0; t < NT; t++)
        tex[t] = nR / NT;
    assert_p(chisq_p(tobs, tex, NT), "|Z| given |Z| > R, 10 bins");
    assert_se(npos, nR / 2, sqrt(nR / 4), "positive tail draws");
    free(z);
    bh_ran_free(r);
}

/* White-box tests of the ziggurat's rare paths, forced by a crafted first
 * output.  They rely on ran.c's bit layout: layer = bits 0-7, sign = bit 8
 * (set: negative), position = bits 11-63 (x = 2^-53 (b >> 11) zx[i]).  The
 * outputs after the first are those of a state with random other words
 * (from another stream), so each trial is an independent run of the path. */
static void random_words(bh_ran *h, uint64_t w[3])
{
    for (int k = 0; k < 3; k++)
        w[k] = bh_rng_next64(h->s);
}

/* The tail sampler (layer 0, position beyond R): |Z| given |Z| > R.  Its
 * distribution function is 1 - Q(z) / Q(R), and E(Z - R | Z > R) = l - R,
 * Var(Z | Z > R) = 1 + R l - l^2 with l = phi(R) / Q(R) (the inverse Mills
 * ratio).  Q(R) from the R fixture, phi(R) = exp(-R^2 / 2) / sqrt(2 pi). */
Test(ran, normal_tail_sampler)
{
    enum { N = 100000, NB = 50 };
    bht_fixture *fx = bht_fixture_read("tests/fixtures/ran/ziggurat.csv");
    const double qR = fixture_value(fx, "p_abs_gt_R") / 2;
    bht_fixture_free(fx);
    const double R = ZIG_R;
    const double l = exp(-0.5 * R * R) / sqrt(2 * acos(-1.0)) / qR;
    bh_ran *r = bh_ran_alloc(), *h = ran_at(4242, 0, 0);
    cr_assert(r && h);
    /* top bits all ones: x = (1 - 2^-53) zx[0] > R */
    const uint64_t pos = ~(uint64_t)0x1ff, neg = ~(uint64_t)0xff;
    double *u = malloc(N * sizeof *u), sum = 0;
    cr_assert(u);
    for (size_t i = 0; i < N; i++) {
        uint64_t w[3];
        random_words(h, w);
        next_output_w(r, i % 2 ? neg : pos, w);
        double z = bh_ran_normal(r);
        cr_assert(i % 2 ? z < -R : z > R, "trial %zu: %.17g", i, z);
        u[i] = gsl_cdf_ugaussian_Q(fabs(z)) / qR;
        sum += fabs(z) - R;
    }
    assert_p(pit_p(u, N, NB), "normal tail, 50 bins");
    assert_se(sum / N, l - R, sqrt((1 + R * l - l * l) / N),
              "E(|Z| - R | |Z| > R)");
    free(u);
    bh_ran_free(r);
    bh_ran_free(h);
}

/* The wedge test: in layer i at position x beyond zx[i + 1], x is accepted
 * with probability (f(x) - f(zx[i])) / (f(zx[i + 1]) - f(zx[i])),
 * f(x) = exp(-x^2 / 2); otherwise the sampler starts again (and returns
 * x itself with probability ~0). */
Test(ran, normal_wedge_acceptance)
{
    enum { N = 20000 };
    const unsigned layer[] = {1, 2, 60, 128, 200, 254, 255};
    const double where[] = {0.5, 0.1, 0.9};  /* across the wedge */
    bh_ran *r = bh_ran_alloc(), *h = ran_at(4242, 1, 0);
    cr_assert(r && h);
    for (size_t c = 0; c < sizeof layer / sizeof layer[0]; c++) {
        const unsigned i = layer[c];
        const double xi = r->zx[i], xn = r->zx[i + 1];
        for (size_t q = 0; q < 3; q++) {
            double target = xn + where[q] * (xi - xn);
            uint64_t top = (uint64_t)(target / xi * 0x1.0p53);
            double x = (double)top * 0x1.0p-53 * xi;  /* as ran.c does */
            cr_assert(x > xn && x < xi);
            const uint64_t t = (top << 11) | i;  /* sign bit 0: positive */
            double acc = 0;
            for (size_t k = 0; k < N; k++) {
                uint64_t w[3];
                random_words(h, w);
                next_output_w(r, t, w);
                acc += bh_ran_normal(r) == x;
            }
            double fi = exp(-0.5 * xi * xi), fn = exp(-0.5 * xn * xn);
            double p = (exp(-0.5 * x * x) - fi) / (fn - fi);
            char what[128];
            snprintf(what, sizeof what, "wedge of layer %u at %.3f", i,
                     where[q]);
            assert_se(acc / N, p, sqrt(p * (1 - p) / N), what);
        }
    }
    bh_ran_free(r);
    bh_ran_free(h);
}

/* ---- gamma ---- */

Test(ran, gamma_distribution)
{
    enum { N = 50000 };
    const double shape[] = {0.05, 0.3, 1, 2.5, 12, 87};
    const double scale[] = {1, 2, 0.5, 1, 3, 0.25};
    double *x = malloc(N * sizeof *x), *u = malloc(N * sizeof *u);
    cr_assert(x && u);
    for (size_t c = 0; c < sizeof shape / sizeof shape[0]; c++) {
        const double a = shape[c], b = scale[c];
        bh_ran *r = ran_at(31337, c, 4);
        for (size_t i = 0; i < N; i++) {
            x[i] = bh_ran_gamma(r, a, b);
            cr_assert(x[i] > 0 && isfinite(x[i]), "gamma(%g): %g", a, x[i]);
            u[i] = gsl_cdf_gamma_P(x[i], a, b);
        }
        char what[128];
        snprintf(what, sizeof what, "gamma(shape %g, scale %g)", a, b);
        assert_p(pit_p(u, N, 50), what);
        check_mean_var(x, N, a * b, a * b * b, 3 * a * (a + 2) * pow(b, 4),
                       what);
        /* log X: cumulants psi(a) + log b, psi_1(a), psi_2(a), psi_3(a)
         * (polygammas); sensitive to the shape < 1 boost's power U^(1/a) */
        for (size_t i = 0; i < N; i++)
            x[i] = log(x[i]);
        const double k2 = gsl_sf_psi_1(a);
        snprintf(what, sizeof what, "log gamma(shape %g, scale %g)", a, b);
        check_mean_var(x, N, gsl_sf_psi(a) + log(b), k2,
                       gsl_sf_psi_n(3, a) + 3 * k2 * k2, what);
        bh_ran_free(r);
    }
    free(x);
    free(u);
}

/* The scale multiplies, and the precomputed shape draws the same values. */
Test(ran, gamma_scale_and_shape_constants)
{
    const double shape[] = {0.3, 1, 2.5, 87};
    for (size_t c = 0; c < 4; c++) {
        bh_ran *a = ran_at(5, c, 0), *b = ran_at(5, c, 0), *s = ran_at(5, c, 0);
        bh_ran_gamma_shape g;
        bh_ran_gamma_shape_set(&g, shape[c]);
        for (int i = 0; i < 500; i++) {
            double x1 = bh_ran_gamma(a, shape[c], 1);
            double x3 = bh_ran_gamma(b, shape[c], 3.5);
            double xs = bh_ran_gamma_std(s, &g);
            cr_assert(x3 == 3.5 * x1 && xs == x1,
                      "shape %g draw %d: %.17g %.17g %.17g", shape[c], i, x1,
                      x3, xs);
        }
        bh_ran_free(a);
        bh_ran_free(b);
        bh_ran_free(s);
    }
}

/* ---- Poisson and negative binomial ---- */

/* Integer draws x against a pmf given on 0..K (tail above K), with mean,
 * variance and 4th central moment. */
static void check_counts(const double *x, size_t n, const double *p, size_t K,
                         double tail, double mean, double var, double mu4,
                         const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(x[i] >= 0 && x[i] == floor(x[i]) && isfinite(x[i]),
                  "%s: draw %zu = %.17g", what, i, x[i]);
    assert_p(int_chisq_p(x, n, p, K, tail), what);
    check_mean_var(x, n, mean, var, mu4, what);
}

Test(ran, poisson_distribution)
{
    enum { N = 50000 };
    /* both sides of the switch from inversion to PTRS at 10 */
    const double mean[] = {0.5, 3, 9.99, 10, 18, 150, 1e4};
    double *x = malloc(N * sizeof *x);
    cr_assert(x);
    for (size_t c = 0; c < sizeof mean / sizeof mean[0]; c++) {
        const double mu = mean[c];
        bh_ran *r = ran_at(2718, c, 1);
        for (size_t i = 0; i < N; i++)
            x[i] = bh_ran_poisson(r, mu);
        size_t K = (size_t)(mu + 12 * sqrt(mu) + 30);
        double *p = malloc((K + 1) * sizeof *p);
        cr_assert(p);
        for (size_t k = 0; k <= K; k++)
            p[k] = gsl_ran_poisson_pdf((unsigned)k, mu);
        char what[128];
        snprintf(what, sizeof what, "Poisson(%g)", mu);
        check_counts(x, N, p, K, gsl_cdf_poisson_Q((unsigned)K, mu), mu, mu,
                     mu * (1 + 3 * mu), what);
        free(p);
        bh_ran_free(r);
    }
    free(x);
}

Test(ran, poisson_mean_zero)
{
    bh_ran *r = ran_at(1, 2, 3);
    for (int i = 0; i < 1000; i++)
        cr_assert(bh_ran_poisson(r, 0) == 0);
    cr_assert(bh_ran_negbin(r, 12, 0) == 0);
    bh_ran_free(r);
}

/* An overflowed mean (a linear predictor beyond exp's range) comes back as
 * it is instead of looping (PTRS with NaN arithmetic never accepts). */
Test(ran, poisson_nonfinite_mean, .timeout = 10)
{
    bh_ran *r = ran_at(1, 2, 4);
    cr_assert(isinf(bh_ran_poisson(r, INFINITY)));
    cr_assert(isnan(bh_ran_poisson(r, NAN)));
    cr_assert(isinf(bh_ran_negbin(r, 12, INFINITY)));
    cr_assert(bh_ran_poisson(r, -3) == 0);
    bh_ran_free(r);
}

Test(ran, negbin_distribution)
{
    enum { N = 50000, K = 3000 };
    /* size 0.5: the gamma's shape < 1 path */
    const double size[] = {12, 0.5}, mean[] = {18, 3};
    double *x = malloc(N * sizeof *x), *p = malloc((K + 1) * sizeof *p);
    cr_assert(x && p);
    for (size_t c = 0; c < 2; c++) {
        const double s = size[c], mu = mean[c];
        const double var = mu + mu * mu / s;
        /* GSL's parametrisation: P(k) = C p^n (1 - p)^k, mean n (1 - p) / p */
        const double pg = s / (s + mu);
        double tot = 0, mu4 = 0;
        for (size_t k = 0; k <= K; k++) {
            p[k] = gsl_ran_negative_binomial_pdf((unsigned)k, pg, s);
            tot += p[k];
            mu4 += p[k] * pow((double)k - mu, 4);
        }
        cr_assert(fabs(1 - tot) < 1e-12, "pmf mass beyond %d: %g", K, 1 - tot);
        bh_ran *r = ran_at(161803, c, 2);
        for (size_t i = 0; i < N; i++)
            x[i] = bh_ran_negbin(r, s, mu);
        char what[128];
        snprintf(what, sizeof what, "negbin(size %g, mean %g)", s, mu);
        check_counts(x, N, p, K, 0, mu, var, mu4, what);
        bh_ran_free(r);
    }
    free(x);
    free(p);
}

/* ---- Dirichlet ---- */

/* Mean, variance and 4th central moment of Beta(a, a0 - a) from its raw
 * moments E X^r = prod_{i<r} (a + i) / (a0 + i). */
static void beta_moments(double a, double a0, double *mean, double *var,
                         double *mu4)
{
    double m[5] = {1};
    for (int r = 1; r <= 4; r++)
        m[r] = m[r - 1] * (a + r - 1) / (a0 + r - 1);
    double e = m[1];
    *mean = e;
    *var = m[2] - e * e;
    *mu4 = m[4] - 4 * e * m[3] + 6 * e * e * m[2] - 3 * e * e * e * e;
}

Test(ran, dirichlet_distribution)
{
    enum { N = 20000 };
    /* all shapes >= 1; shapes below 1 (the log-space path); tiny shapes,
     * where gammas underflow but their logs do not */
    const double al[3][3] = {{2, 3, 5}, {0.05, 0.3, 1.5}, {1e-3, 1e-3, 0}};
    const size_t kk[3] = {3, 3, 2};
    double *x = malloc(3 * N * sizeof *x), *col = malloc(N * sizeof *col);
    double *u = malloc(N * sizeof *u);
    cr_assert(x && col && u);
    for (size_t c = 0; c < 3; c++) {
        const size_t k = kk[c];
        const double *alpha = al[c];
        double a0 = 0;
        for (size_t j = 0; j < k; j++)
            a0 += alpha[j];
        bh_ran *r = ran_at(577, c, 6);
        for (size_t i = 0; i < N; i++) {
            double *t = x + k * i, sum = 0;
            bh_ran_dirichlet(r, k, alpha, t);
            for (size_t j = 0; j < k; j++) {
                cr_assert(t[j] >= 0 && t[j] <= 1, "alpha set %zu draw %zu "
                          "component %zu: %.17g", c, i, j, t[j]);
                sum += t[j];
            }
            cr_assert(fabs(sum - 1) <= 1e-15, "alpha set %zu draw %zu: sum "
                      "%.17g", c, i, sum);
        }
        for (size_t j = 0; j < k; j++) {
            for (size_t i = 0; i < N; i++)
                col[i] = x[k * i + j];
            double mean, var, mu4;
            beta_moments(alpha[j], a0, &mean, &var, &mu4);
            char what[128];
            snprintf(what, sizeof what, "Dirichlet set %zu component %zu", c,
                     j);
            check_mean_var(col, N, mean, var, mu4, what);
            if (c < 2) {  /* the marginal Beta(a_j, a0 - a_j) */
                for (size_t i = 0; i < N; i++)
                    u[i] = gsl_cdf_beta_P(col[i], alpha[j], a0 - alpha[j]);
                assert_p(pit_p(u, N, 20), what);
            }
        }
        if (c == 2) {
            /* Beta(1e-3, 1e-3): mass at both ends, theta_0 > 1/2 half the
             * time (values of 1e-300 and less round to 0) */
            double above = 0;
            for (size_t i = 0; i < N; i++)
                above += x[2 * i] > 0.5;
            assert_se(above, N / 2.0, sqrt(N / 4.0), "Dirichlet(1e-3, 1e-3)");
        }
        bh_ran_free(r);
    }
    const double one = 0.7;
    double th = -1;
    bh_ran *r = ran_at(0, 0, 0);
    bh_ran_dirichlet(r, 1, &one, &th);
    cr_assert(th == 1, "k = 1: %.17g", th);
    bh_ran_free(r);
    free(x);
    free(col);
    free(u);
}

/* ---- discrete ---- */

/* Category frequencies of n draws within NSE SE of (cum[j] - cum[j-1]) /
 * cum[k-1]; categories of probability 0 never drawn. */
static void check_discrete(size_t k, const double *cum, size_t n,
                           uint64_t seed)
{
    bh_ran *r = ran_at(seed, k, 0);
    double cnt[16] = {0};
    cr_assert(k <= 16);
    for (size_t i = 0; i < n; i++) {
        size_t j = bh_ran_discrete(r, k, cum);
        cr_assert(j < k, "k = %zu: index %zu", k, j);
        cnt[j]++;
    }
    for (size_t j = 0; j < k; j++) {
        double p = (cum[j] - (j ? cum[j - 1] : 0)) / cum[k - 1];
        char what[128];
        snprintf(what, sizeof what, "k = %zu (seed %llu), category %zu", k,
                 (unsigned long long)seed, j);
        if (p == 0)
            cr_assert(cnt[j] == 0, "%s: probability 0, drawn %g times", what,
                      cnt[j]);
        else
            assert_se(cnt[j] / (double)n, p, sqrt(p * (1 - p) / (double)n),
                      what);
    }
    bh_ran_free(r);
}

Test(ran, discrete_distribution)
{
    enum { N = 100000 };
    const double c4[] = {0.3, 0.55, 0.8, 1.0};
    const double zero_mid_end[] = {0.3, 0.55, 0.55, 0.8, 1.0, 1.0};
    const double scaled[] = {2.1, 3.85, 3.85, 7};   /* total 7, not 1 */
    const double lead[] = {0, 0, 0.25, 1};
    /* 9 categories (binary search): zero probability first, in the middle
     * and last */
    const double c9[] = {0, 1, 3, 3, 6, 10, 15, 21, 21};
    const double c12[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    check_discrete(4, c4, N, 1);
    check_discrete(6, zero_mid_end, N, 2);
    check_discrete(4, scaled, N, 3);
    check_discrete(4, lead, N, 4);
    check_discrete(9, c9, N, 5);
    check_discrete(12, c12, N, 6);
    const double one[] = {0.4};
    bh_ran *r = ran_at(8, 8, 8);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(bh_ran_discrete(r, 1, one), 0);
    bh_ran_free(r);
}

/* ---- determinism ---- */

enum { DET_N = 64 };

/* DET_N values of every sampler from (seed, index, sub), on r. */
static void draw_all(bh_ran *r, uint64_t seed, uint64_t index, uint64_t sub,
                     double *v)
{
    static const double alpha[3] = {0.5, 2, 7};
    static const double cum[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    bh_ran_substream(r, seed, index, sub);
    size_t i = 0;
    while (i + 10 <= DET_N) {
        v[i++] = bh_ran_uniform(r);
        v[i++] = bh_ran_normal(r);
        v[i++] = bh_ran_gamma(r, 0.4, 2);
        v[i++] = bh_ran_gamma(r, 3.3, 1);
        v[i++] = bh_ran_poisson(r, 4.2);
        v[i++] = bh_ran_poisson(r, 420);
        v[i++] = bh_ran_negbin(r, 2, 30);
        bh_ran_dirichlet(r, 3, alpha, v + i);
        i += 3;
        v[i - 3] += (double)bh_ran_discrete(r, 9, cum);
    }
    while (i < DET_N)
        v[i++] = bh_ran_normal(r);
}

static size_t n_equal(const double *a, const double *b)
{
    size_t e = 0;
    for (size_t i = 0; i < DET_N; i++)
        e += a[i] == b[i];
    return e;
}

Test(ran, determinism)
{
    bh_ran *r = bh_ran_alloc(), *q = bh_ran_alloc();
    cr_assert(r && q);
    double a[DET_N], b[DET_N], c[DET_N];
    draw_all(r, 2024, 17, 3, a);
    draw_all(q, 2024, 17, 3, b);  /* another object */
    cr_assert(memcmp(a, b, sizeof a) == 0);
    draw_all(r, 2024, 17, 3, c);  /* the same object, repositioned */
    cr_assert(memcmp(a, c, sizeof a) == 0);
    /* another sub, index or seed: another sequence (equal values only by
     * chance, e.g. small counts) */
    const uint64_t other[][3] = {{2024, 17, 4}, {2024, 18, 3}, {2025, 17, 3},
                                 {2024, 17, 0}};
    for (size_t o = 0; o < 4; o++) {
        draw_all(q, other[o][0], other[o][1], other[o][2], b);
        cr_assert(n_equal(a, b) < DET_N / 4, "(%llu, %llu, %llu): %zu of %d "
                  "values equal to (2024, 17, 3)'s",
                  (unsigned long long)other[o][0],
                  (unsigned long long)other[o][1],
                  (unsigned long long)other[o][2], n_equal(a, b), DET_N);
    }
    /* uniforms of neighbouring subs share no value */
    bh_ran_substream(r, 9, 9, 0);
    bh_ran_substream(q, 9, 9, 1);
    for (int i = 0; i < 1000; i++)
        cr_assert(bh_ran_uniform(r) != bh_ran_uniform(q));
    bh_ran_free(r);
    bh_ran_free(q);
}
