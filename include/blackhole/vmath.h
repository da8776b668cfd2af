/* vmath.h - array versions of the elementary functions in the logit IRLS
 * hot loop (issue #9): exp(-|x|) and log1p(e) on [0, 1].
 *
 * Both are branch-free polynomial kernels that the compiler vectorises
 * (several times faster than glibc's scalar exp / log1p per element) and
 * accurate to within 1 ulp (measured maxima 0.72 ulp for exp, 0.66 for
 * log1p; see tests/unit/test_vmath.c).  The caller owns every array.
 *
 * Results are deterministic: an element's value depends on that element
 * alone, never on n, on its position in the array or on alignment (the
 * tail of an array goes through the same code as full blocks), so chunk
 * boundaries do not change the numbers.  On a given machine and build the
 * values are fixed; builds that let the compiler contract a * b + c into
 * fused multiply-adds (e.g. -std=gnu11, -ffp-contract=fast) may differ
 * from -std=c11 builds in the last bit.
 */
#ifndef BH_VMATH_H
#define BH_VMATH_H

#include <stddef.h>

/* e[i] = exp(-|x[i]|) for i < n.  Any alignment.  x and e may be the same
 * pointer (in place); other overlaps are not allowed.  Special values:
 * -|x| below about -745.13 gives 0 (subnormal results down there are
 * rounded as usual), x = +-0 gives 1, +-inf gives 0, NaN gives NaN. */
void bh_vm_exp_negabs(size_t n, const double *x, double *e);

/* L[i] = log1p(e[i]) for e[i] in [0, 1] (what bh_vm_exp_negabs yields).
 * Any alignment; e and L may be the same pointer, no other overlap.
 * e = 0 gives 0, subnormal e gives e, e = 1 gives log(2), NaN gives NaN.
 * Inputs outside [0, 1] give unspecified (possibly inaccurate, infinite or
 * NaN) values, never undefined behaviour. */
void bh_vm_log1p_unit(size_t n, const double *e, double *L);

/* The IRLS row arithmetic of the logit link (glm.c), vectorised.  These
 * use only correctly rounded operations, so every path gives the bits of
 * the plain C loop.  No argument may overlap another unless stated.
 *
 * out[i] = a[i] * b[i]. */
void bh_vm_mul(size_t n, const double *a, const double *b, double *out);
/* w[i] = sqrt(w[i]), then z[i] *= w[i] (w[i] >= 0). */
void bh_vm_sqrt_scale(size_t n, double *w, double *z);
/* Per row, from eta, e = exp(-|eta|) and L = log1p(e) (the two functions
 * above), the response y and h (y log y + (1 - y) log(1 - y) per row, or
 * NULL for none): with q = [eta >= 0], mu = (q + (1 - q) e) / (1 + e) and
 * 1 - mu = ((1 - q) + q e) / (1 + e), mu' = mu (1 - mu):
 *   dev = 2 (L + y (q - 1) eta + (1 - y) q eta + h)   (unit deviance),
 *   w = mu'^2 / mu'   (the working weight; = mu' up to rounding),
 *   z = eta + (y - mu) / mu'   (the working response).
 * Rows with |eta| > 30 get values the caller replaces (R's clamp). */
void bh_vm_logit_rows(size_t n, const double *eta, const double *e,
                      const double *L, const double *y, const double *h,
                      double *dev, double *w, double *z);

/* The kernels behind those, for tests and benchmarks.  The functions
 * above use the best path this CPU runs (bh_vm_best_path(), checked per
 * call: no global state); the _on forms run the one asked for, or the
 * best one the CPU runs if it cannot run that (never a fault).  Each path
 * is deterministic as above and within 1 ulp; the fused paths may differ
 * from the generic one in the last bit. */
typedef enum {
    BH_VM_AUTO = 0,   /* the best this CPU runs */
    BH_VM_GENERIC,    /* portable C (SSE2 on x86-64) */
    BH_VM_AVX2,       /* x86-64 AVX2 + FMA */
    BH_VM_AVX512      /* x86-64 AVX-512F (+ FMA) */
} bh_vm_path;

bh_vm_path bh_vm_best_path(void);
const char *bh_vm_path_name(bh_vm_path path);
void bh_vm_exp_negabs_on(bh_vm_path path, size_t n, const double *x,
                         double *e);
void bh_vm_log1p_unit_on(bh_vm_path path, size_t n, const double *e,
                         double *L);
void bh_vm_mul_on(bh_vm_path path, size_t n, const double *a, const double *b,
                  double *out);
void bh_vm_sqrt_scale_on(bh_vm_path path, size_t n, double *w, double *z);
void bh_vm_logit_rows_on(bh_vm_path path, size_t n, const double *eta,
                         const double *e, const double *L, const double *y,
                         const double *h, double *dev, double *w, double *z);

#endif
