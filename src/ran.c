/* ran.c - samplers on a xoshiro256** state held in the object (ran.h). */
#include "blackhole/ran.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/rng.h"

/* Marsaglia & Tsang (2000), 256 layers: the right edge of the base layer's
 * rectangle.  The layer area v follows from it (ran_tables), and the
 * recursion then closes the top layer at 0 to ~1e-13 (tested). */
#define ZIG_R 3.6541528853610088

/* PTRS (Hoermann 1993) is used from this mean on; below, inversion needs
 * few steps. */
#define POISSON_PTRS_MIN 10.0

static void ran_tables(bh_ran *r)
{
    const double R = ZIG_R;
    const double fr = exp(-0.5 * R * R);
    /* base layer: the rectangle [0, R] x [0, f(R)] plus the tail,
     * sqrt(pi / 2) erfc(R / sqrt(2)) */
    const double v = R * fr + 1.2533141373155002512 * erfc(R * 0.70710678118654752440);
    r->zx[0] = v / fr;  /* width of a rectangle of area v and height f(R) */
    r->zx[1] = R;
    for (int i = 1; i < BH_RAN_ZIG_N - 1; i++)
        r->zx[i + 1] = sqrt(-2 * log(v / r->zx[i] + exp(-0.5 * r->zx[i] * r->zx[i])));
    r->zx[BH_RAN_ZIG_N] = 0;
    for (int i = 0; i <= BH_RAN_ZIG_N; i++)
        r->zf[i] = exp(-0.5 * r->zx[i] * r->zx[i]);
    /* running sums of logs: within a few ulps, ample for a rejection test */
    r->lfact[0] = 0;
    for (int k = 1; k < 256; k++)
        r->lfact[k] = r->lfact[k - 1] + log((double)k);
}

bh_ran *bh_ran_alloc(void)
{
    bh_ran *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    ran_tables(r);
    bh_ran_substream(r, 0, 0, 0);
    return r;
}

void bh_ran_free(bh_ran *r)
{
    free(r);
}

void bh_ran_substream(bh_ran *r, uint64_t seed, uint64_t index, uint64_t sub)
{
    bh_rng_state_from_key(r->s, bh_rng_substream_key(seed, index, sub));
}

static inline double u53(uint64_t b)
{
    return (double)(b >> 11) * 0x1.0p-53;
}

/* v with its sign bit flipped when bit 8 of b is set: -v without a branch
 * (the bit is a coin toss, which a branch predictor gets wrong half the
 * time). */
static inline double with_sign(double v, uint64_t b)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    u ^= (b & 0x100) << 55;
    memcpy(&v, &u, sizeof v);
    return v;
}

double bh_ran_uniform(bh_ran *r)
{
    return u53(bh_rng_next64(r->s));
}

void bh_ran_uniform_fill(bh_ran *r, double *u, size_t n)
{
    uint64_t s[4] = {r->s[0], r->s[1], r->s[2], r->s[3]};  /* in registers */
    for (size_t i = 0; i < n; i++)
        u[i] = u53(bh_rng_next64(s));
    for (int k = 0; k < 4; k++)
        r->s[k] = s[k];
}

/* The normal tail beyond R (Marsaglia 1964): exponential proposals. */
static double zig_tail(bh_ran *r)
{
    double a, y;
    do {
        a = -log(1 - bh_ran_uniform(r)) / ZIG_R;  /* 1 - u in (0, 1] */
        y = -log(1 - bh_ran_uniform(r));
    } while (y + y < a * a);
    return ZIG_R + a;
}

/* The ziggurat's rare cases (~1.2% of draws): the wedge and the tail, given
 * the first try's 64 bits; loops with fresh bits until a value is accepted. */
static double __attribute__((noinline)) zig_slow(bh_ran *r, uint64_t b)
{
    for (;;) {
        unsigned i = (unsigned)(b & 0xff);      /* bits 0-7: layer */
        double sg = (b & 0x100) ? -1.0 : 1.0;   /* bit 8: sign */
        double x = u53(b) * r->zx[i];           /* bits 11-63: position */
        if (x < r->zx[i + 1])
            return sg * x;  /* inside the layer's rectangle under the curve */
        if (i == 0)
            return sg * zig_tail(r);
        /* the wedge between the rectangle and the curve */
        double y = r->zf[i] + bh_ran_uniform(r) * (r->zf[i + 1] - r->zf[i]);
        if (y < exp(-0.5 * x * x))
            return sg * x;
        b = bh_rng_next64(r->s);
    }
}

/* The common case inline: one 64-bit output, a multiply and a compare. */
static inline double zig(bh_ran *r)
{
    uint64_t b = bh_rng_next64(r->s);
    unsigned i = (unsigned)(b & 0xff);
    double x = u53(b) * r->zx[i];
    if (__builtin_expect(x < r->zx[i + 1], 1))
        return with_sign(x, b);
    return zig_slow(r, b);
}

double bh_ran_normal(bh_ran *r)
{
    return zig(r);
}

void bh_ran_normal_fill(bh_ran *r, double *x, size_t n)
{
    /* The state in a local array the compiler keeps in registers (it does
     * not escape): r->s itself would be reloaded and stored around every
     * draw, putting the state's loop-carried chain through memory; written
     * back only around the rare slow path. */
    uint64_t s[4] = {r->s[0], r->s[1], r->s[2], r->s[3]};
    const double *zx = r->zx;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = bh_rng_next64(s);
        unsigned k = (unsigned)(b & 0xff);
        double v = u53(b) * zx[k];
        if (__builtin_expect(v < zx[k + 1], 1)) {
            x[i] = with_sign(v, b);
            continue;
        }
        memcpy(r->s, s, sizeof s);
        x[i] = zig_slow(r, b);
        memcpy(s, r->s, sizeof s);
    }
    memcpy(r->s, s, sizeof s);
}

void bh_ran_gamma_shape_set(bh_ran_gamma_shape *g, double a)
{
    double ap = a < 1 ? a + 1 : a;
    g->d = ap - 1.0 / 3.0;
    g->c = 1 / sqrt(9 * g->d);
    g->inv_a = a < 1 ? 1 / a : 0;
}

double bh_ran_gamma_std(bh_ran *r, const bh_ran_gamma_shape *g)
{
    const double d = g->d, c = g->c;
    double x, v, u;
    for (;;) {
        do {
            x = zig(r);
            v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        u = bh_ran_uniform(r);
        double x2 = x * x;
        if (u < 1 - 0.0331 * x2 * x2)  /* squeeze: no log for ~98% */
            break;
        if (log(u) < 0.5 * x2 + d * (1 - v + log(v)))
            break;
    }
    double z = d * v;
    if (g->inv_a > 0)  /* shape a < 1: G(a) = G(a + 1) U^(1/a) */
        z *= exp(log(1 - bh_ran_uniform(r)) * g->inv_a);
    return z;
}

double bh_ran_gamma(bh_ran *r, double a, double b)
{
    bh_ran_gamma_shape g;
    bh_ran_gamma_shape_set(&g, a);
    return b * bh_ran_gamma_std(r, &g);
}

/* log(k!) for k >= 0: the table, then Stirling's series (k >= 256: the
 * first omitted term is below 1e-19 relative). */
static double log_fact(const bh_ran *r, double k)
{
    if (k < 256)
        return r->lfact[(int)k];
    double ik = 1 / k, ik2 = ik * ik;
    return (k + 0.5) * log(k) - k + 0.91893853320467274178 +
           ik * (1.0 / 12 - ik2 * (1.0 / 360 - ik2 * (1.0 / 1260)));
}

static double poisson_ptrs(bh_ran *r, double mu)
{
    const double smu = sqrt(mu), lmu = log(mu);
    const double b = 0.931 + 2.53 * smu;
    const double a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        double U = bh_ran_uniform(r) - 0.5;
        double V = bh_ran_uniform(r);
        double us = 0.5 - fabs(U);
        double k = floor((2 * a / us + b) * U + mu + 0.43);
        if (us >= 0.07 && V <= vr)
            return k;
        if (k < 0 || (us < 0.013 && V > us))
            continue;
        if (log(V) + log(inv_alpha) - log(a / (us * us) + b) <= -mu + k * lmu - log_fact(r, k))
            return k;
    }
}

double bh_ran_poisson(bh_ran *r, double mu)
{
    if (isnan(mu) || isinf(mu))
        return mu;  /* PTRS would compute with NaN (a mean overflowed) */
    if (mu >= POISSON_PTRS_MIN)
        return poisson_ptrs(r, mu);
    if (!(mu > 0))
        return 0;
    /* inversion: the smallest k with F(k) > u.  Rounding leaves F(inf)
     * a few ulps from 1, so a u beyond every F(k) (probability ~1e-16)
     * draws again instead of looping. */
    const double p0 = exp(-mu);
    for (;;) {
        double u = bh_ran_uniform(r), p = p0, F = p0;
        for (int k = 0; k < 200; k++) {
            if (u < F)
                return (double)k;
            p *= mu / (k + 1);
            F += p;
        }
    }
}

double bh_ran_negbin(bh_ran *r, double size, double mu)
{
    if (!(mu > 0))
        return 0;
    return bh_ran_poisson(r, bh_ran_gamma(r, size, mu / size));
}

void bh_ran_dirichlet(bh_ran *r, size_t k, const double *alpha, double *theta)
{
    int small = 0;
    for (size_t j = 0; j < k; j++)
        small |= alpha[j] < 1;
    bh_ran_gamma_shape g;
    if (!small) {
        double sum = 0;
        for (size_t j = 0; j < k; j++) {
            bh_ran_gamma_shape_set(&g, alpha[j]);
            theta[j] = bh_ran_gamma_std(r, &g);
            sum += theta[j];
        }
        for (size_t j = 0; j < k; j++)
            theta[j] /= sum;
        return;
    }
    /* log G(a) = log G(a + 1) + log(U) / a for a < 1: shapes near 0 give
     * gammas that underflow, their logs do not */
    double mx = -HUGE_VAL;
    for (size_t j = 0; j < k; j++) {
        double a = alpha[j];
        bh_ran_gamma_shape_set(&g, a < 1 ? a + 1 : a);
        double lg = log(bh_ran_gamma_std(r, &g));
        if (a < 1)
            lg += log(1 - bh_ran_uniform(r)) / a;
        theta[j] = lg;
        if (lg > mx)
            mx = lg;
    }
    double sum = 0;
    for (size_t j = 0; j < k; j++) {
        theta[j] = exp(theta[j] - mx);
        sum += theta[j];
    }
    for (size_t j = 0; j < k; j++)
        theta[j] /= sum;
}

/* The category of uniform u: the first j with u total < cum[j]. */
static inline size_t discrete_at(double u01, size_t k, const double *cum)
{
    double u = u01 * cum[k - 1];
    size_t lo = 0, hi = k - 1;
    if (k <= 8) {  /* few categories: a scan the compiler makes branch-free */
        size_t j = 0;
        for (size_t q = 0; q + 1 < k; q++)
            j += u >= cum[q];
        lo = j;
        hi = j;
    }
    /* binary search; hi = k - 1 if rounding put u at the total */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    /* a zero-probability last category cannot be drawn through rounding */
    while (lo > 0 && cum[lo] == cum[lo - 1])
        lo--;
    return lo;
}

size_t bh_ran_discrete(bh_ran *r, size_t k, const double *cum)
{
    return discrete_at(bh_ran_uniform(r), k, cum);
}

void bh_ran_discrete_fill(bh_ran *r, size_t k, const double *cum, int *out, size_t n)
{
    uint64_t s[4] = {r->s[0], r->s[1], r->s[2], r->s[3]};
    for (size_t i = 0; i < n; i++)
        out[i] = (int)discrete_at(u53(bh_rng_next64(s)), k, cum);
    for (int q = 0; q < 4; q++)
        r->s[q] = s[q];
}
