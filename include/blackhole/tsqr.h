/* tsqr.h - tall-skinny QR in row chunks.
 *
 * The R factor of a tall n x q matrix A (n >> q) is built chunk by chunk:
 * starting from R = 0, each chunk A_c of rows replaces R by the R factor of
 * the stacked [R; A_c], computed with Householder reflections that touch
 * only the q rows of R and the rows of the chunk.  After the last chunk,
 * A = Q R for an orthogonal Q that is never formed; R has the column norms
 * and inner products of A (R'R = A'A), so rank decisions and the bread
 * (A'A)^-1 = R^-1 R^-T can be made on the q x q R alone, while A is read
 * once and no n x q copy is kept.
 *
 * A least-squares right-hand side b is handled by appending it as column
 * q + 1: the last column of the (q + 1) x (q + 1) factor then holds Q'b in
 * its first q rows and the residual norm (up to sign) in its last.
 *
 * The signs of R's rows are not normalised (each row is determined up to
 * sign, as with any Householder QR).
 */
#ifndef BH_TSQR_H
#define BH_TSQR_H

#include <stddef.h>

/* R (q x q, column-major, leading dimension ldr) is set to 0. */
void bh_tsqr_reset(size_t q, double *R, size_t ldr);

/* R <- the R factor of [R; A], with R upper triangular on entry and exit
 * (entries below its diagonal are neither read nor written) and A the
 * c x q chunk (column-major, leading dimension lda >= c), which is
 * overwritten by the Householder vectors.  work: q doubles.  c may be 0. */
void bh_tsqr_update(size_t q, double *R, size_t ldr, double *A, size_t c,
                    size_t lda, double *work);

#endif
