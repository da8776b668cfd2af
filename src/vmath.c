/* vmath.c - exp(-|x|) and log1p(e), e in [0, 1], over arrays (vmath.h).
 *
 * Design.  Each function runs one kernel over blocks of VM_BLOCK elements:
 * loops of a fixed trip count that read the input into a local array,
 * compute there and copy out (so no possible aliasing, x == e included),
 * with no calls and no branches, which GCC vectorises even at -O2 (its
 * "very cheap" cost model accepts loops whose count is a known multiple
 * of the vector length).  The last, partial block is copied into a
 * zero-padded local block and goes through the very same kernel code,
 * so an element's result never depends on n, its position or alignment
 * (the GLM's chunk boundaries vary).
 *
 * Paths.  The kernel is written once, with its multiply-adds through
 * vm_fma(): plain a * b + c on the baseline path, fused on the AVX2+FMA
 * and AVX-512 paths (x86-64 with GCC or clang, picked per call from the
 * CPU).  Fusing halves the polynomial work and gives the exact division
 * remainder in one instruction (the baseline path uses Dekker's exact
 * product instead), so the paths differ in the last bit now and then;
 * each is within 1 ulp.
 *
 * Polynomial coefficients: Chebyshev interpolation (near-minimax) with
 * mpmath 1.3.0 at 200 bits, rounded to double, then checked in mpmath:
 *   import mpmath as mp; mp.mp.prec = 200
 *   h = mp.log(2)/2*(1+mp.mpf('1e-6'))        # exp: P(r), |r| <= h
 *   P = lambda r: (mp.exp(r)-1-r)/r**2 if r else mp.mpf(1)/2
 *   mp.chebyfit(P, [-h, h], 11)               # rel. err 4.9e-18
 *   zm = mp.mpf(1)/9*(1+mp.mpf('1e-6'))       # log1p: Q(z), z = s^2
 *   Q = lambda z: (mp.atanh(mp.sqrt(z))/mp.sqrt(z)-1)/z if z else mp.mpf(1)/3
 *   mp.chebyfit(Q, [0, zm], 11)               # rel. err 6.2e-17 (x 2 below)
 */
#include "blackhole/vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 8 doubles: one AVX-512 vector, two AVX2 or four SSE2 ones. */
#define VM_BLOCK 8

/* CPU dispatch where GCC/clang's target attribute and
 * __builtin_cpu_supports exist; elsewhere only the portable path. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define VM_X86 1
#else
#define VM_X86 0
#endif

/* Always inlined so each path's function gets its own copy of the kernel,
 * compiled for that path's instruction set. */
#if defined(__GNUC__)
#define VM_INLINE static inline __attribute__((always_inline))
#else
#define VM_INLINE static inline
#endif

/* a * b + c, fused (one rounding) when `fused` (a constant after
 * inlining, so the choice costs nothing). */
VM_INLINE double vm_fma(double a, double b, double c, int fused)
{
#if VM_X86
    if (fused)
        return __builtin_fma(a, b, c);
#else
    (void)fused;
#endif
    return a * b + c;
}

static double vm_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t vm_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* ---- exp(-|x|) ------------------------------------------------------ */

/* t + 1.5 * 2^52 rounds t (|t| < 2^51) to an integer, held in the low
 * bits of the sum. */
#define VM_SHIFT 0x1.8p52
#define VM_INV_LN2 0x1.71547652b82fep0
/* ln 2 = LN2HI + LN2LO; LN2HI has 32 trailing zero bits so m * LN2HI is
 * exact for m < 2^21 (fdlibm's split). */
#define VM_LN2HI 0x1.62e42feep-1
#define VM_LN2LO 0x1.a39ef35793c76p-33
/* exp(-746) < 2^-1075 rounds to 0; clamping there keeps m <= 1076. */
#define VM_EXP_AMAX 746.0
/* 2^-m is applied as 2^(VM_EXP_PRE - m) 2^-VM_EXP_PRE: the first factor
 * is normal for every m <= 1076 and y 2^(PRE - m) is exact, so a
 * subnormal result is rounded once, by the second product. */
#define VM_EXP_PRE 64
/* (VM_EXP_BIAS - bits(m + VM_SHIFT)) << 52 is the bit pattern of
 * 2^(PRE - m): the biased exponent 1023 + PRE - m. */
#define VM_EXP_BIAS (0x4338000000000000u + 1023u + VM_EXP_PRE)

/* exp(r) = 1 + r + r^2 P(r) for |r| <= ln2 / 2. */
static const double vm_exp_p[11] = {
    0x1.0000000000000p-1,  0x1.5555555555557p-3,  0x1.5555555555556p-5,
    0x1.11111111100dfp-7,  0x1.6c16c16c162d6p-10, 0x1.a01a01abe6327p-13,
    0x1.a01a01a6d7833p-16, 0x1.71de0237479e4p-19, 0x1.27e4db67abc75p-22,
    0x1.af4ddda32bea9p-26, 0x1.1f72fc848c527p-29,
};

/* e[i] = exp(-|x[i]|) for one block.  With a = |x| and a = m ln2 - r:
 * exp(-a) = 2^-m exp(r), r carried as r + rl (rl is the rounding error
 * of r, which would otherwise cost up to a quarter ulp of the result),
 * and 1 + r split exactly into s + sl, so the only large rounding is the
 * final sum. */
VM_INLINE void exp_block(const double *x, double *e, int fused)
{
    double v[VM_BLOCK];
    /* a = min(|x|, AMAX), NaN staying NaN, in a loop of its own: GCC -O2
     * turns a ?: stored straight to memory into a vector select, but
     * leaves one whose value is used further as a branch, which blocks
     * vectorisation (and SSE2 has no 64-bit integer compare for a mask). */
    for (int i = 0; i < VM_BLOCK; i++) {
        double a = fabs(x[i]);
        v[i] = a > VM_EXP_AMAX ? VM_EXP_AMAX : a;
    }
    const double *p = vm_exp_p;
    for (int i = 0; i < VM_BLOCK; i++) {
        double a = v[i];
        double t = vm_fma(a, VM_INV_LN2, VM_SHIFT, fused);
        double m = t - VM_SHIFT;                  /* round(a / ln2) */
        double rh = vm_fma(m, VM_LN2HI, -a, fused); /* exact */
        double r = vm_fma(m, VM_LN2LO, rh, fused);
        double rl = vm_fma(m, VM_LN2LO, rh - r, fused);
        double q = p[10];
        q = vm_fma(q, r, p[9], fused);
        q = vm_fma(q, r, p[8], fused);
        q = vm_fma(q, r, p[7], fused);
        q = vm_fma(q, r, p[6], fused);
        q = vm_fma(q, r, p[5], fused);
        q = vm_fma(q, r, p[4], fused);
        q = vm_fma(q, r, p[3], fused);
        q = vm_fma(q, r, p[2], fused);
        q = vm_fma(q, r, p[1], fused);
        q = vm_fma(q, r, p[0], fused);
        double s = 1 + r;
        double sl = (1 - s) + r; /* 1 + r = s + sl exactly */
        /* exp(r + rl) ~ exp(r) + rl (1 + r) */
        double lo = vm_fma(r * r, q, vm_fma(rl, s, sl, fused), fused);
        double y = s + lo;
        double f = vm_from_bits((VM_EXP_BIAS - vm_to_bits(t)) << 52);
        v[i] = (y * f) * 0x1p-64;
    }
    for (int i = 0; i < VM_BLOCK; i++)
        e[i] = v[i];
}

/* Full blocks straight from x to e, the tail through a zero-padded
 * block: one call site, so one copy of the kernel for both (the same
 * instructions, hence the same bits, at every position). */
VM_INLINE void exp_array(size_t n, const double *x, double *e, int fused)
{
    for (size_t i = 0; i < n; i += VM_BLOCK) {
        const double *src = x + i;
        double *dst = e + i, pad[VM_BLOCK] = {0};
        size_t m = n - i < VM_BLOCK ? n - i : VM_BLOCK;
        if (m < VM_BLOCK) {
            memcpy(pad, src, m * sizeof *pad);
            src = dst = pad;
        }
        exp_block(src, dst, fused);
        if (m < VM_BLOCK)
            memcpy(e + i, pad, m * sizeof *pad);
    }
}

/* ---- log1p(e), e in [0, 1] ------------------------------------------ */

/* log1p(e) = 2 atanh(s) with s = e / (2 + e) in [0, 1/3]:
 * 2 s + s^3 Q2(s^2), Q2 = 2 Q. */
static const double vm_log_q2[11] = {
    0x1.5555555555555p-1, 0x1.9999999999944p-2, 0x1.2492492499d46p-2,
    0x1.c71c71bedea4cp-3, 0x1.745d19937c459p-3, 0x1.3b13515f46324p-3,
    0x1.111abdcc35b9dp-3, 0x1.e0a2d5224a88fp-4, 0x1.bc37f319fc520p-4,
    0x1.32e0c4d323d70p-4, 0x1.401d4b3d9862dp-3,
};

/* Veltkamp's constant 2^27 + 1: splits a double into two 26-bit halves
 * whose pairwise products are exact (Dekker's exact product). */
#define VM_SPLIT 134217729.0

/* L[i] = log1p(x[i]) for one block (e below is x[i]).  The rounding
 * errors of 2 + e and of the division would each cost up to an ulp of
 * the result, since log1p(e) ~ 2 s: the remainder rem = e - s (2 + e),
 * exact up to a negligible term, corrects 2 s by 2 rem / (2 + e) =
 * rem (1 - s), so the only large rounding is the final sum. */
VM_INLINE void log1p_block(const double *x, double *L, int fused)
{
    const double *c = vm_log_q2;
    double v[VM_BLOCK];
    for (int i = 0; i < VM_BLOCK; i++) {
        double e = x[i];
        double d = 2 + e;
        double dl = (2 - d) + e; /* 2 + e = d + dl exactly (|e| <= 2) */
        double s = e / d;
        double rem;              /* e - s d, exactly representable */
        if (fused) {
            rem = vm_fma(-s, d, e, 1);
        } else {
            double t = VM_SPLIT * s;
            double sh = t - (t - s), sl = s - sh;
            t = VM_SPLIT * d;
            double dh = t - (t - d), dlo = d - dh;
            double p = s * d;
            double pe = ((sh * dh - p) + sh * dlo + sl * dh) + sl * dlo;
            rem = (e - p) - pe;
        }
        rem = vm_fma(-s, dl, rem, fused);
        double z = s * s;
        double q = c[10];
        q = vm_fma(q, z, c[9], fused);
        q = vm_fma(q, z, c[8], fused);
        q = vm_fma(q, z, c[7], fused);
        q = vm_fma(q, z, c[6], fused);
        q = vm_fma(q, z, c[5], fused);
        q = vm_fma(q, z, c[4], fused);
        q = vm_fma(q, z, c[3], fused);
        q = vm_fma(q, z, c[2], fused);
        q = vm_fma(q, z, c[1], fused);
        q = vm_fma(q, z, c[0], fused);
        double corr = vm_fma(rem, 1 - s, (s * z) * q, fused);
        v[i] = 2 * s + corr;
    }
    for (int i = 0; i < VM_BLOCK; i++)
        L[i] = v[i];
}

VM_INLINE void log1p_array(size_t n, const double *e, double *L, int fused)
{
    for (size_t i = 0; i < n; i += VM_BLOCK) {
        const double *src = e + i;
        double *dst = L + i, pad[VM_BLOCK] = {0};
        size_t m = n - i < VM_BLOCK ? n - i : VM_BLOCK;
        if (m < VM_BLOCK) {
            memcpy(pad, src, m * sizeof *pad);
            src = dst = pad;
        }
        log1p_block(src, dst, fused);
        if (m < VM_BLOCK)
            memcpy(L + i, pad, m * sizeof *pad);
    }
}

/* ---- IRLS row kernels ------------------------------------------------- */

/* Only +, -, *, / and sqrt, each correctly rounded and never contracted
 * (-std=c11 leaves fused multiply-adds off): every path, vector or
 * scalar, gives the bits of the plain C loop.  Blocks of VM_BLOCK with a
 * fixed trip count vectorise at -O2; the tail runs the same expressions
 * one by one.  (sqrt vectorises because the Makefile builds this file
 * with -fno-math-errno: nothing here reads errno.) */

VM_INLINE void mul_array(size_t n, const double *restrict a,
                         const double *restrict b, double *restrict out)
{
    size_t nb = n - n % VM_BLOCK;
    for (size_t i = 0; i < nb; i += VM_BLOCK)
        for (int k = 0; k < VM_BLOCK; k++)
            out[i + k] = a[i + k] * b[i + k];
    for (size_t i = nb; i < n; i++)
        out[i] = a[i] * b[i];
}

VM_INLINE void sqrt_scale_array(size_t n, double *restrict w,
                                double *restrict z)
{
    size_t nb = n - n % VM_BLOCK;
    for (size_t i = 0; i < nb; i += VM_BLOCK)
        for (int k = 0; k < VM_BLOCK; k++) {
            double s = sqrt(w[i + k]);
            w[i + k] = s;
            z[i + k] *= s;
        }
    for (size_t i = nb; i < n; i++) {
        double s = sqrt(w[i]);
        w[i] = s;
        z[i] *= s;
    }
}

/* Row ii of bh_vm_logit_rows, with H its h term (0 when absent; the
 * inner loops index i + k with an int k, which GCC vectorises where a
 * size_t k from i to i + VM_BLOCK is not).  q =
 * [eta >= 0] without a compare (which SSE2 cannot turn into a vector of
 * doubles): -0 gives q = 0, but at eta = +-0 both values of q give the
 * same numbers (e = 1); NaN rows are the caller's to redo. */
#define VM_LOGIT_ROW(ii, H)                                              \
    do {                                                                 \
        double et_ = eta[ii], ee_ = e[ii], d_ = 1 + ee_;                 \
        double q_ = 0.5 + copysign(0.5, et_);                            \
        double m_ = (q_ + (1 - q_) * ee_) / d_;                          \
        double cm_ = ((1 - q_) + q_ * ee_) / d_;                         \
        double me_ = m_ * cm_, y_ = y[ii];                               \
        double pos_ = q_ * et_, neg_ = (q_ - 1) * et_;                   \
        dev[ii] = 2 * (L[ii] + y_ * neg_ + (1 - y_) * pos_ + (H));       \
        w[ii] = me_ * me_ / me_;                                         \
        z[ii] = et_ + (y_ - m_) / me_;                                   \
    } while (0)

VM_INLINE void logit_array(size_t n, const double *restrict eta,
                           const double *restrict e, const double *restrict L,
                           const double *restrict y, const double *restrict h,
                           double *restrict dev, double *restrict w,
                           double *restrict z)
{
    size_t nb = n - n % VM_BLOCK;
    if (h) {
        for (size_t i = 0; i < nb; i += VM_BLOCK)
            for (int k = 0; k < VM_BLOCK; k++)
                VM_LOGIT_ROW(i + k, h[i + k]);
        for (size_t k = nb; k < n; k++)
            VM_LOGIT_ROW(k, h[k]);
    } else {
        for (size_t i = 0; i < nb; i += VM_BLOCK)
            for (int k = 0; k < VM_BLOCK; k++)
                VM_LOGIT_ROW(i + k, 0.0);
        for (size_t k = nb; k < n; k++)
            VM_LOGIT_ROW(k, 0.0);
    }
}

/* ---- paths and dispatch ----------------------------------------------- */

static void exp_generic(size_t n, const double *x, double *e)
{
    exp_array(n, x, e, 0);
}

static void log1p_generic(size_t n, const double *e, double *L)
{
    log1p_array(n, e, L, 0);
}

static void mul_generic(size_t n, const double *a, const double *b,
                        double *out)
{
    mul_array(n, a, b, out);
}

static void sqrt_scale_generic(size_t n, double *w, double *z)
{
    sqrt_scale_array(n, w, z);
}

static void logit_generic(size_t n, const double *eta, const double *e,
                          const double *L, const double *y, const double *h,
                          double *dev, double *w, double *z)
{
    logit_array(n, eta, e, L, y, h, dev, w, z);
}

#if VM_X86
__attribute__((target("avx2"))) static void
mul_avx2(size_t n, const double *a, const double *b, double *out)
{
    mul_array(n, a, b, out);
}

__attribute__((target("avx2"))) static void
sqrt_scale_avx2(size_t n, double *w, double *z)
{
    sqrt_scale_array(n, w, z);
}

__attribute__((target("avx2"))) static void
logit_avx2(size_t n, const double *eta, const double *e, const double *L,
           const double *y, const double *h, double *dev, double *w, double *z)
{
    logit_array(n, eta, e, L, y, h, dev, w, z);
}

__attribute__((target("avx512f"))) static void
mul_avx512(size_t n, const double *a, const double *b, double *out)
{
    mul_array(n, a, b, out);
}

__attribute__((target("avx512f"))) static void
sqrt_scale_avx512(size_t n, double *w, double *z)
{
    sqrt_scale_array(n, w, z);
}

__attribute__((target("avx512f"))) static void
logit_avx512(size_t n, const double *eta, const double *e, const double *L,
             const double *y, const double *h, double *dev, double *w,
             double *z)
{
    logit_array(n, eta, e, L, y, h, dev, w, z);
}

__attribute__((target("avx2,fma"))) static void
exp_avx2(size_t n, const double *x, double *e)
{
    exp_array(n, x, e, 1);
}

__attribute__((target("avx2,fma"))) static void
log1p_avx2(size_t n, const double *e, double *L)
{
    log1p_array(n, e, L, 1);
}

__attribute__((target("avx512f,fma"))) static void
exp_avx512(size_t n, const double *x, double *e)
{
    exp_array(n, x, e, 1);
}

__attribute__((target("avx512f,fma"))) static void
log1p_avx512(size_t n, const double *e, double *L)
{
    log1p_array(n, e, L, 1);
}
#endif

bh_vm_path bh_vm_best_path(void)
{
#if VM_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return BH_VM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return BH_VM_AVX2;
#endif
    return BH_VM_GENERIC;
}

const char *bh_vm_path_name(bh_vm_path path)
{
    switch (path) {
    case BH_VM_AUTO:
        return "auto";
    case BH_VM_GENERIC:
        return "generic";
    case BH_VM_AVX2:
        return "avx2+fma";
    case BH_VM_AVX512:
        return "avx512f";
    }
    return "?";
}

/* The path to run: the one asked for, unless the CPU cannot run it (or
 * AUTO / an unknown value), then the best one it can. */
static bh_vm_path vm_resolve(bh_vm_path path)
{
    bh_vm_path best = bh_vm_best_path();
    if (path == BH_VM_GENERIC)
        return path;
    if (path == BH_VM_AVX2 && best != BH_VM_GENERIC)
        return path;
    return best;
}

void bh_vm_exp_negabs_on(bh_vm_path path, size_t n, const double *x,
                         double *e)
{
    switch (vm_resolve(path)) {
#if VM_X86
    case BH_VM_AVX512:
        exp_avx512(n, x, e);
        return;
    case BH_VM_AVX2:
        exp_avx2(n, x, e);
        return;
#endif
    default:
        exp_generic(n, x, e);
        return;
    }
}

void bh_vm_log1p_unit_on(bh_vm_path path, size_t n, const double *e,
                         double *L)
{
    switch (vm_resolve(path)) {
#if VM_X86
    case BH_VM_AVX512:
        log1p_avx512(n, e, L);
        return;
    case BH_VM_AVX2:
        log1p_avx2(n, e, L);
        return;
#endif
    default:
        log1p_generic(n, e, L);
        return;
    }
}

void bh_vm_exp_negabs(size_t n, const double *x, double *e)
{
    bh_vm_exp_negabs_on(BH_VM_AUTO, n, x, e);
}

void bh_vm_log1p_unit(size_t n, const double *e, double *L)
{
    bh_vm_log1p_unit_on(BH_VM_AUTO, n, e, L);
}

void bh_vm_mul_on(bh_vm_path path, size_t n, const double *a, const double *b,
                  double *out)
{
    switch (vm_resolve(path)) {
#if VM_X86
    case BH_VM_AVX512:
        mul_avx512(n, a, b, out);
        return;
    case BH_VM_AVX2:
        mul_avx2(n, a, b, out);
        return;
#endif
    default:
        mul_generic(n, a, b, out);
        return;
    }
}

void bh_vm_sqrt_scale_on(bh_vm_path path, size_t n, double *w, double *z)
{
    switch (vm_resolve(path)) {
#if VM_X86
    case BH_VM_AVX512:
        sqrt_scale_avx512(n, w, z);
        return;
    case BH_VM_AVX2:
        sqrt_scale_avx2(n, w, z);
        return;
#endif
    default:
        sqrt_scale_generic(n, w, z);
        return;
    }
}

void bh_vm_logit_rows_on(bh_vm_path path, size_t n, const double *eta,
                         const double *e, const double *L, const double *y,
                         const double *h, double *dev, double *w, double *z)
{
    switch (vm_resolve(path)) {
#if VM_X86
    case BH_VM_AVX512:
        logit_avx512(n, eta, e, L, y, h, dev, w, z);
        return;
    case BH_VM_AVX2:
        logit_avx2(n, eta, e, L, y, h, dev, w, z);
        return;
#endif
    default:
        logit_generic(n, eta, e, L, y, h, dev, w, z);
        return;
    }
}

void bh_vm_mul(size_t n, const double *a, const double *b, double *out)
{
    bh_vm_mul_on(BH_VM_AUTO, n, a, b, out);
}

void bh_vm_sqrt_scale(size_t n, double *w, double *z)
{
    bh_vm_sqrt_scale_on(BH_VM_AUTO, n, w, z);
}

void bh_vm_logit_rows(size_t n, const double *eta, const double *e,
                      const double *L, const double *y, const double *h,
                      double *dev, double *w, double *z)
{
    bh_vm_logit_rows_on(BH_VM_AUTO, n, eta, e, L, y, h, dev, w, z);
}
