/* test_vmath.c - bh_vm_exp_negabs / bh_vm_log1p_unit: accuracy in ulps,
 * special values, bit-identical results at every position and length,
 * aliasing; on every kernel path this CPU runs.
 *
 * Reference values: computed here in long double with glibc's expl and
 * log1pl.  On x86-64 long double is the x87 80-bit format (64-bit
 * significand) and glibc documents these functions to a few long double
 * ulps (libm-test-ulps), i.e. about 2^-10 of a double ulp, so the errors
 * measured below are exact to about 0.001 double ulp.  The test
 * `reference_sane` checks that premise against glibc's own double exp and
 * log1p (documented within 1 ulp; measured <= 0.52 here).  Measured
 * maxima of the vmath kernels on this machine (all three paths): exp
 * about 0.60 ulp for normal results (0.75 where the result is subnormal,
 * from the double rounding into fewer bits), log1p about 0.66 ulp.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/vmath.h"
#include "testutil.h"

/* Error budget asserted: under 1 ulp (requirement: 1.5). */
#define MAX_ULP 1.0

/* |got - want| in units of the double ulp at want (ulp of a subnormal:
 * 2^-1074). */
static double ulp_err(double got, long double want)
{
    if (isnan(got) || isinf(got))
        return INFINITY;
    int ex;
    frexpl(want, &ex);
    int q = ex - 53 < -1074 ? -1074 : ex - 53;
    return (double)(fabsl((long double)got - want) / ldexpl(1.0L, q));
}

/* Deterministic 64-bit LCG (Knuth's MMIX constants): uniform in [0, 1). */
static double lcg_unit(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * 0x1p-53;
}

/* Under `make valgrind` (BH_VALGRIND set) long double is computed in
 * double precision (valgrind has no 80-bit x87 arithmetic): the long
 * double references cannot measure ulps there. */
static int no_long_double(void)
{
    return getenv("BH_VALGRIND") != NULL;
}

static int n_paths(void)
{
    return (int)bh_vm_best_path();
}

/* Inputs for exp: a grid over [-760, 760] (through the subnormal and
 * zero results), a dense one over [-3, 3], then pseudo-random magnitudes,
 * log-uniform over [2^-60, 2^10] (so small |x| and all binades), random
 * signs. */
#define EXP_GRID 150000
#define EXP_DENSE 60000
#define EXP_RAND 200000
#define EXP_N (EXP_GRID + EXP_DENSE + EXP_RAND)

static double *exp_inputs(void)
{
    double *x = malloc(EXP_N * sizeof *x);
    cr_assert(x);
    size_t k = 0;
    for (size_t i = 0; i < EXP_GRID; i++)
        x[k++] = -760.0 + 1520.0 * (double)i / (EXP_GRID - 1);
    for (size_t i = 0; i < EXP_DENSE; i++)
        x[k++] = -3.0 + 6.0 * (double)i / (EXP_DENSE - 1);
    uint64_t s = 20240601;
    for (size_t i = 0; i < EXP_RAND; i++) {
        double mag = ldexp(1.0, -60) * pow(2.0, 70 * lcg_unit(&s));
        x[k++] = lcg_unit(&s) < 0.5 ? -mag : mag;
    }
    return x;
}

/* Inputs for log1p: a grid over [0, 1], then pseudo-random e, half
 * uniform on [0, 1], half log-uniform over [2^-1074, 1] (subnormals and
 * every binade down there). */
#define LOG_GRID 200000
#define LOG_RAND 200000
#define LOG_N (LOG_GRID + LOG_RAND)

static double *log_inputs(void)
{
    double *e = malloc(LOG_N * sizeof *e);
    cr_assert(e);
    size_t k = 0;
    for (size_t i = 0; i < LOG_GRID; i++)
        e[k++] = (double)i / (LOG_GRID - 1);
    uint64_t s = 7;
    for (size_t i = 0; i < LOG_RAND; i++)
        e[k++] = i % 2 ? lcg_unit(&s) : ldexp(1.0, -(int)(1074 * lcg_unit(&s))) *
                                            (0.5 + 0.5 * lcg_unit(&s));
    return e;
}

Test(vmath, reference_sane)
{
    if (no_long_double())
        cr_skip_test("no 80-bit long double under valgrind: no ulp reference");
    /* The long double references agree with glibc's double exp / log1p
     * (each within 1 ulp by glibc's manual) to within a little over half
     * an ulp: they measure ulps of doubles correctly. */
    double *x = exp_inputs(), *e = log_inputs();
    double mx = 0, ml = 0;
    for (size_t i = 0; i < EXP_N; i += 7) {
        double u = ulp_err(exp(-fabs(x[i])), expl(-fabsl((long double)x[i])));
        mx = u > mx ? u : mx;
    }
    for (size_t i = 0; i < LOG_N; i += 7) {
        double u = ulp_err(log1p(e[i]), log1pl((long double)e[i]));
        ml = u > ml ? u : ml;
    }
    cr_assert(mx <= 1.0 && ml <= 1.0, "glibc exp %.3f, log1p %.3f ulp", mx, ml);
    free(x);
    free(e);
}

Test(vmath, exp_negabs_accuracy)
{
    if (no_long_double())
        cr_skip_test("no 80-bit long double under valgrind: no ulp reference");
    double *x = exp_inputs(), *y = malloc(EXP_N * sizeof *y);
    cr_assert(y);
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++) {
        bh_vm_exp_negabs_on((bh_vm_path)p, EXP_N, x, y);
        double mx = 0, at = 0;
        for (size_t i = 0; i < EXP_N; i++) {
            double u = ulp_err(y[i], expl(-fabsl((long double)x[i])));
            if (!(u <= mx))
                mx = u, at = x[i];
        }
        cr_assert(mx < MAX_ULP, "path %s: exp(-|x|) max error %.3f ulp at x = %.17g",
                  bh_vm_path_name((bh_vm_path)p), mx, at);
    }
    free(x);
    free(y);
}

Test(vmath, log1p_unit_accuracy)
{
    if (no_long_double())
        cr_skip_test("no 80-bit long double under valgrind: no ulp reference");
    double *e = log_inputs(), *y = malloc(LOG_N * sizeof *y);
    cr_assert(y);
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++) {
        bh_vm_log1p_unit_on((bh_vm_path)p, LOG_N, e, y);
        double mx = 0, at = 0;
        for (size_t i = 0; i < LOG_N; i++) {
            double u = ulp_err(y[i], log1pl((long double)e[i]));
            if (!(u <= mx))
                mx = u, at = e[i];
        }
        cr_assert(mx < MAX_ULP, "path %s: log1p(e) max error %.3f ulp at e = %.17g",
                  bh_vm_path_name((bh_vm_path)p), mx, at);
    }
    free(e);
    free(y);
}

/* Bit patterns equal (NaN payloads aside, which these tests do not use
 * where compared). */
static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

Test(vmath, exp_negabs_special)
{
    /* exp(-745.13321910194122) is about 2^-1075 (the rounding boundary
     * to the smallest subnormal); exp(-708.39641853226408) about
     * DBL_MIN.  Exact values from expl. */
    const double x[] = {0.0,      -0.0,     INFINITY, -INFINITY, NAN,
                        1e300,    -1e300,   DBL_MAX,  -DBL_MAX,  745.2,
                        -746.0,   800.0,    5e-324,   -5e-324,   DBL_MIN,
                        745.0,    -744.4,   708.3964185322641, 1e-17,
                        0x1.62e42fefa39efp-1};
    size_t n = sizeof x / sizeof *x;
    double y[sizeof x / sizeof *x];
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++) {
        const char *pn = bh_vm_path_name((bh_vm_path)p);
        bh_vm_exp_negabs_on((bh_vm_path)p, n, x, y);
        cr_assert(same_bits(y[0], 1.0) && same_bits(y[1], 1.0), "%s: exp(-0)", pn);
        cr_assert(same_bits(y[2], 0.0) && same_bits(y[3], 0.0), "%s: exp(-inf)", pn);
        cr_assert(isnan(y[4]), "%s: NaN in, %g out", pn, y[4]);
        for (size_t i = 5; i <= 11; i++)
            cr_assert(same_bits(y[i], 0.0), "%s: exp(-|%g|) = %g, want +0", pn,
                      x[i], y[i]);
        for (size_t i = 12; i <= 14; i++)
            cr_assert(same_bits(y[i], 1.0), "%s: exp(-|%g|) = %.17g", pn, x[i], y[i]);
        for (size_t i = 15; i < n; i++)
            cr_assert(ulp_err(y[i], expl(-fabsl((long double)x[i]))) < MAX_ULP,
                      "%s: exp(-|%.17g|) = %.17g", pn, x[i], y[i]);
        cr_assert(y[15] > 0 && y[15] < DBL_MIN, "%s: exp(-745) subnormal", pn);
        cr_assert(same_bits(y[19], 0.5), "%s: exp(-ln 2) = %.17g", pn, y[19]);
    }
    /* Every result in [0, 1], never NaN, for finite x; a sweep over all
     * exponents including the subnormal / underflow transition. */
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++)
        for (double a = 700; a < 750; a += 0.001) {
            double yy;
            bh_vm_exp_negabs_on((bh_vm_path)p, 1, &a, &yy);
            cr_assert(yy >= 0 && yy <= 1, "exp(-%.17g) = %g", a, yy);
        }
}

Test(vmath, log1p_unit_special)
{
    const double e[] = {0.0, 1.0, NAN, 5e-324, 0x1.fffffffffffffp-1023,
                        DBL_MIN, 1e-300, 0x1p-53, 0.5, 0x1.fffffffffffffp-1};
    size_t n = sizeof e / sizeof *e;
    double y[sizeof e / sizeof *e];
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++) {
        const char *pn = bh_vm_path_name((bh_vm_path)p);
        bh_vm_log1p_unit_on((bh_vm_path)p, n, e, y);
        cr_assert(same_bits(y[0], 0.0), "%s: log1p(0) = %g", pn, y[0]);
        /* log 2 correctly rounded: 0x1.62e42fefa39efp-1 (fdlibm's ln2). */
        cr_assert(same_bits(y[1], 0x1.62e42fefa39efp-1), "%s: log1p(1) = %.17g",
                  pn, y[1]);
        cr_assert(isnan(y[2]), "%s: NaN in, %g out", pn, y[2]);
        /* log1p(e) = e - e^2/2 + ... rounds to e below 2^-53. */
        for (size_t i = 3; i <= 6; i++)
            cr_assert(same_bits(y[i], e[i]), "%s: log1p(%g) = %.17g", pn, e[i], y[i]);
        for (size_t i = 7; i < n && !no_long_double(); i++)
            cr_assert(ulp_err(y[i], log1pl((long double)e[i])) < MAX_ULP,
                      "%s: log1p(%.17g) = %.17g", pn, e[i], y[i]);
    }
    /* Outside [0, 1]: any value, but no crash and no undefined behaviour
     * (this test runs under UBSan in `make sanitize`). */
    const double bad[] = {-0.0,     -0.5, -1.0, -2.0,      -3.0,     1.5,
                          2.0,      1e300, -1e300, INFINITY, -INFINITY, DBL_MAX,
                          -DBL_MAX, -NAN};
    double out[sizeof bad / sizeof *bad];
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++)
        bh_vm_log1p_unit_on((bh_vm_path)p, sizeof bad / sizeof *bad, bad, out);
}

Test(vmath, empty_and_auto)
{
    /* n = 0 touches nothing (NULL is fine). */
    bh_vm_exp_negabs(0, NULL, NULL);
    bh_vm_log1p_unit(0, NULL, NULL);
    /* The default entry points are the best path. */
    double x[13], a[13], b[13];
    for (int i = 0; i < 13; i++)
        x[i] = 0.37 * i - 2;
    bh_vm_exp_negabs(13, x, a);
    bh_vm_exp_negabs_on(bh_vm_best_path(), 13, x, b);
    cr_assert(memcmp(a, b, sizeof a) == 0);
    bh_vm_log1p_unit(13, a, b);
    bh_vm_log1p_unit_on(BH_VM_AUTO, 13, a, x);
    cr_assert(memcmp(x, b, sizeof x) == 0);
    cr_assert_str_eq(bh_vm_path_name(BH_VM_GENERIC), "generic");
}

/* Each element computed alone (n = 1) must equal, bit for bit, the same
 * element computed inside arrays of every length 1..40 starting at every
 * offset 0..8 of a buffer (so at every position within a block, in full
 * blocks and in the tail, at every alignment mod 64 bytes). */
#define POS_N 48
typedef void vm_fn(bh_vm_path, size_t, const double *, double *);

static void check_positions(vm_fn *fn, const double *in, const char *what)
{
    double alone[POS_N], buf[POS_N + 16], out[POS_N + 16];
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++) {
        for (size_t i = 0; i < POS_N; i++)
            fn((bh_vm_path)p, 1, &in[i], &alone[i]);
        for (size_t off = 0; off <= 8; off++)
            for (size_t len = 1; len <= 40; len++)
                for (size_t start = 0; start + len <= POS_N; start += 5) {
                    memcpy(buf + off, in + start, len * sizeof *buf);
                    fn((bh_vm_path)p, len, buf + off, out + off);
                    for (size_t k = 0; k < len; k++)
                        cr_assert(same_bits(out[off + k], alone[start + k]),
                                  "%s %s: element %zu of %zu at offset %zu differs "
                                  "from n = 1 (%.17g vs %.17g)",
                                  bh_vm_path_name((bh_vm_path)p), what, k, len, off,
                                  out[off + k], alone[start + k]);
                }
    }
}

Test(vmath, bit_identical_across_positions)
{
    double x[POS_N], e[POS_N];
    uint64_t s = 99;
    for (size_t i = 0; i < POS_N; i++) {
        x[i] = (lcg_unit(&s) - 0.5) * (i % 3 ? 60 : 1500);
        e[i] = i % 5 ? lcg_unit(&s) : ldexp(lcg_unit(&s), -(int)(i * 20));
    }
    check_positions(bh_vm_exp_negabs_on, x, "exp_negabs");
    check_positions(bh_vm_log1p_unit_on, e, "log1p_unit");
}

Test(vmath, in_place_equals_out_of_place)
{
    enum { N = 1027 };
    static double x[N], a[N], b[N];
    uint64_t s = 3;
    for (size_t i = 0; i < N; i++)
        x[i] = (lcg_unit(&s) - 0.5) * 80;
    for (int p = BH_VM_GENERIC; p <= n_paths(); p++) {
        bh_vm_exp_negabs_on((bh_vm_path)p, N, x, a);
        memcpy(b, x, sizeof b);
        bh_vm_exp_negabs_on((bh_vm_path)p, N, b, b);
        cr_assert(memcmp(a, b, sizeof a) == 0, "exp in place, %s",
                  bh_vm_path_name((bh_vm_path)p));
        bh_vm_log1p_unit_on((bh_vm_path)p, N, a, x);
        bh_vm_log1p_unit_on((bh_vm_path)p, N, b, b);
        cr_assert(memcmp(x, b, sizeof x) == 0, "log1p in place, %s",
                  bh_vm_path_name((bh_vm_path)p));
        for (size_t i = 0; i < N; i++)
            x[i] = (lcg_unit(&s) - 0.5) * 80;
    }
}

/* The IRLS row kernels use only correctly rounded operations: on every
 * path and at every length (full blocks and tails) they must give the
 * bits of the plain scalar expressions written here (the arithmetic of
 * the documentation in vmath.h, with q = [eta >= 0]). */
Test(vmath, irls_kernels_equal_scalar_arithmetic)
{
    enum { N = 203 };
    double eta[N], e[N], L[N], y[N], h[N], x[N];
    uint64_t s = 77;
    for (int i = 0; i < N; i++) {
        eta[i] = (lcg_unit(&s) - 0.5) * 60;
        if (i == 5)
            eta[i] = 0.0;
        if (i == 6)
            eta[i] = -0.0;
        e[i] = exp(-fabs(eta[i]));
        L[i] = log1p(e[i]);
        y[i] = i % 3 ? lcg_unit(&s) : (double)(i % 2);
        h[i] = y[i] > 0 && y[i] < 1 ? y[i] * log(y[i]) + (1 - y[i]) * log1p(-y[i]) : 0;
        x[i] = (lcg_unit(&s) - 0.5) * 1e3;
    }
    for (int pk = BH_VM_GENERIC; pk <= n_paths(); pk++) {
        bh_vm_path pa = (bh_vm_path)pk;
        for (int withh = 0; withh < 2; withh++)
            for (size_t n = 0; n <= N; n += n < 20 ? 1 : 61) {
                double dev[N], w[N], z[N], o[N], sw[N], sz[N];
                bh_vm_logit_rows_on(pa, n, eta, e, L, y, withh ? h : NULL, dev, w, z);
                for (size_t i = 0; i < n; i++) {
                    double et = eta[i], ee = e[i], d = 1 + ee, q = (double)(et >= 0);
                    double m = (q + (1 - q) * ee) / d, cm = ((1 - q) + q * ee) / d;
                    double me = m * cm, yi = y[i];
                    double wdev = 2 * (L[i] + yi * ((q - 1) * et) + (1 - yi) * (q * et) +
                                       (withh ? h[i] : 0));
                    cr_expect(dev[i] == wdev && same_bits(w[i], me * me / me) &&
                                  same_bits(z[i], et + (yi - m) / me),
                              "%s, n %zu, row %zu: logit rows", bh_vm_path_name(pa), n, i);
                }
                memcpy(sw, w, sizeof w);
                memcpy(sz, z, sizeof z);
                bh_vm_sqrt_scale_on(pa, n, sw, sz);
                bh_vm_mul_on(pa, n, x, e, o);
                for (size_t i = 0; i < n; i++) {
                    double r = sqrt(w[i]);
                    cr_expect(same_bits(sw[i], r) && same_bits(sz[i], z[i] * r) &&
                                  same_bits(o[i], x[i] * e[i]),
                              "%s, n %zu, row %zu: sqrt_scale / mul", bh_vm_path_name(pa), n, i);
                }
            }
    }
}
