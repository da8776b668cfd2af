/* tsqr.c - tall-skinny QR in row chunks (see tsqr.h).
 *
 * Reflection k of the stacked [R; A] acts on row k of R and on all rows of
 * the chunk: rows k+1.. of R are zero in column k, so they are untouched.
 * The reflector is LAPACK's dlarfg convention (H = I - tau v v', v_k = 1)
 * and is applied to the remaining columns by a dgemv and a dger over the
 * chunk (the chunk stays in cache between the two). */
#include "blackhole/tsqr.h"

#include <math.h>
#include <string.h>

#include <gsl/gsl_cblas.h>

void bh_tsqr_reset(size_t q, double *R, size_t ldr)
{
    for (size_t j = 0; j < q; j++)
        memset(R + j * ldr, 0, (j + 1) * sizeof *R);
}

void bh_tsqr_update(size_t q, double *R, size_t ldr, double *A, size_t c,
                    size_t lda, double *work)
{
    if (c == 0)
        return;
    for (size_t k = 0; k < q; k++) {
        double *v = A + k * lda;
        double rkk = R[k * ldr + k];
        double s = cblas_ddot((int)c, v, 1, v, 1);
        /* The plain sum of squares unless it may have under- or
         * overflowed; dnrm2 scales. */
        double xn = s > 1e-290 && s < 1e290 ? sqrt(s)
                                             : cblas_dnrm2((int)c, v, 1);
        if (xn == 0)
            continue; /* column k of the chunk is zero: H = I */
        double nrm = hypot(rkk, xn);
        double beta = rkk > 0 ? -nrm : nrm;
        double tau = (beta - rkk) / beta;
        cblas_dscal((int)c, 1 / (rkk - beta), v, 1);
        R[k * ldr + k] = beta;
        size_t m = q - k - 1;
        if (m == 0)
            continue;
        /* w = R[k, k+1:]' + A[:, k+1:]' v; then R[k, k+1:] -= tau w' and
         * A[:, k+1:] -= tau v w'. */
        for (size_t j = 0; j < m; j++)
            work[j] = R[(k + 1 + j) * ldr + k];
        cblas_dgemv(CblasColMajor, CblasTrans, (int)c, (int)m, 1.0,
                    A + (k + 1) * lda, (int)lda, v, 1, 1.0, work, 1);
        for (size_t j = 0; j < m; j++)
            R[(k + 1 + j) * ldr + k] -= tau * work[j];
        cblas_dger(CblasColMajor, (int)c, (int)m, -tau, v, 1, work, 1,
                   A + (k + 1) * lda, (int)lda);
    }
}
