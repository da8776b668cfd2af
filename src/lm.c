/* lm.c - linear least squares by Householder QR.
 *
 * Two paths (bh_lm_options.path; the automatic choice is described at
 * fast_condition below):
 *
 * Double path, for well-conditioned designs: a tall-skinny QR in double of
 * diag(sqrt w) [X y] in row chunks that stay in cache (the p x p factor R
 * and Q'y are updated by one Householder QR of [R; chunk] per chunk, so no
 * copy of X is made), the solution of R b = Q'y, then refinement by the
 * corrected seminormal equations R'R d = X'W (y - X b) with the residual and
 * X'W r accumulated in long double from the original data: each step
 * multiplies the error by about cond^2 * 1.1e-16, so for the condition
 * numbers admitted the estimates are those of the extended path to the
 * last bits of double.  Leverages come from R^-1 chunk by chunk.
 *
 * Extended path, for everything else (ill-conditioned or rank-deficient
 * designs, data near the ends of the double range): (1) validate and form
 * A = diag(sqrt w) X S, with S scaling every column to unit norm
 * (equilibration); (2) Householder QR of A with R's limited pivoting
 * (dqrdc2): columns are taken in order, a column whose norm orthogonal to
 * the accepted ones is below tol times its own norm is rotated to the end
 * and aliased; (3) solve R b = Q'(sqrt w y), then refine b by solving for
 * the correction from the residual recomputed from the original data;
 * (4) covariance from R^-1, never from X'X.  Everything runs in long
 * double: on x86-64 that is the x87 80-bit format (64-bit significand, eps
 * 5.4e-20), which leaves NIST's hardest design (Filip, condition number
 * ~1e15 unscaled) with well over 7 correct digits.
 */
#include "blackhole/lm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "blackhole/buf.h"

typedef long double real;

struct bh_lm_workspace {
    size_t nmax, pmax;
    /* Extended path only, allocated on its first use (n x p long doubles
     * are 16 n p bytes, which the double path never needs). */
    real *a;        /* nmax x pmax working matrix, column-major         */
    real *sw;       /* nmax sqrt(weights)                               */
    real *vec;      /* nmax work vector (right-hand side, residuals)    */
    size_t *done;   /* pmax reflections applied to each column (fused QR) */
    unsigned char *tok; /* pmax: the column's dot with the next reflection
                       is in z (fused QR)                              */
    size_t *js;     /* pmax columns swept by one reflection (fused QR)  */
    /* Both paths. */
    real *hbeta;    /* pmax Householder scalars 2 / v'v                 */
    real *rdiag;    /* pmax diagonal of R                               */
    real *scale;    /* pmax column scales (1 / column norm, 0 if zero)  */
    real *b;        /* pmax solution in working (pivoted, scaled) order */
    real *beta;     /* pmax coefficients, original order and units      */
    real *rinv;     /* pmax x pmax R^-1 (upper triangle), column-major   */
    real *z;        /* pmax row work                                    */
    size_t *perm;   /* pmax original column at each working position    */
    /* Double path. */
    size_t ch;      /* rows per chunk of the current fit (chunk_rows)   */
    size_t cap_ch, cap_chunk; /* allocated rows of rl and swc, doubles of
                       chunk                                           */
    double *rf;     /* pmax x (pmax + 1): R, then Q'y in the last column */
    double *chunk;  /* ch x (pmax + 1) rows of diag(sqrt w) [X y]       */
    double *rid;    /* pmax x pmax R^-1 in double (leverages)           */
    double *swc;    /* ch sqrt(weights) of the chunk                    */
    double *cmax;   /* pmax + 1 largest |entry| of each column          */
    real *rl;       /* ch residuals in long double (refinement)         */
    double cond;    /* condition number of the equilibrated R (double)  */
    bh_lm_path path;  /* path of the last successful fit                */
};

void bh_lm_default_options(bh_lm_options *opt)
{
    opt->tol = BH_LM_TOL;
    opt->refine = 2;
    opt->response = 0;
    opt->colnames = NULL;
    opt->path = BH_LM_PATH_AUTO;
    opt->recycle = NULL;
}

/* Rows per chunk of the double path: the chunk of diag(sqrt w) [X y]
 * (ch x (p + 1) doubles) should stay in the L2 cache (256 KB here) while
 * the p reflections sweep it; at least 64 rows so that the O(p^2) work on R
 * per chunk stays small next to the O(ch p^2) work on the rows; a multiple
 * of 8 so columns start aligned. */
static size_t chunk_rows(size_t n, size_t p)
{
    size_t ch = ((size_t)32768 / (p + 1)) & ~(size_t)7;
    if (ch < 64)
        ch = 64;
    size_t n8 = (n + 7) & ~(size_t)7;
    return n8 > 0 && n8 < ch ? n8 : ch;
}

bh_lm_workspace *bh_lm_workspace_alloc(size_t n, size_t p)
{
    bh_lm_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    size_t p1 = p ? p : 1;
    ws->nmax = n;
    ws->pmax = p;
    ws->path = BH_LM_PATH_AUTO;
    ws->hbeta = malloc(p1 * sizeof *ws->hbeta);
    ws->rdiag = malloc(p1 * sizeof *ws->rdiag);
    ws->scale = malloc(p1 * sizeof *ws->scale);
    ws->b = malloc(p1 * sizeof *ws->b);
    ws->beta = malloc(p1 * sizeof *ws->beta);
    ws->rinv = malloc(p1 * p1 * sizeof *ws->rinv);
    ws->z = malloc(p1 * sizeof *ws->z);
    ws->perm = malloc(p1 * sizeof *ws->perm);
    ws->ch = ws->cap_ch = chunk_rows(n, p);
    ws->cap_chunk = ws->ch * (p1 + 1);
    ws->rf = malloc(p1 * (p1 + 1) * sizeof *ws->rf);
    ws->chunk = malloc(ws->cap_chunk * sizeof *ws->chunk);
    ws->rid = malloc(p1 * p1 * sizeof *ws->rid);
    ws->rl = malloc(ws->ch * sizeof *ws->rl);
    ws->swc = malloc(ws->ch * sizeof *ws->swc);
    ws->cmax = malloc((p1 + 1) * sizeof *ws->cmax);
    if (!ws->hbeta || !ws->rdiag || !ws->scale || !ws->b || !ws->beta ||
        !ws->rinv || !ws->z || !ws->perm || !ws->rf || !ws->chunk ||
        !ws->rid || !ws->rl || !ws->swc || !ws->cmax) {
        bh_lm_workspace_free(ws);
        return NULL;
    }
    return ws;
}

/* The extended path's arrays (the n-sized ones and the factorisation's
 * bookkeeping), allocated once per workspace. */
static int extended_arrays(bh_lm_workspace *ws)
{
    if (ws->a)
        return 1;
    size_t n1 = ws->nmax ? ws->nmax : 1, p1 = ws->pmax ? ws->pmax : 1;
    ws->a = malloc(n1 * p1 * sizeof *ws->a);
    ws->sw = malloc(n1 * sizeof *ws->sw);
    ws->vec = malloc(n1 * sizeof *ws->vec);
    ws->done = malloc(p1 * sizeof *ws->done);
    ws->tok = malloc(p1);
    ws->js = malloc(p1 * sizeof *ws->js);
    if (ws->a && ws->sw && ws->vec && ws->done && ws->tok && ws->js)
        return 1;
    free(ws->a);
    free(ws->sw);
    free(ws->vec);
    free(ws->done);
    free(ws->tok);
    free(ws->js);
    ws->a = NULL;
    ws->sw = ws->vec = NULL;
    ws->done = ws->js = NULL;
    ws->tok = NULL;
    return 0;
}

bh_lm_path bh_lm_workspace_path(const bh_lm_workspace *ws)
{
    return ws ? ws->path : BH_LM_PATH_AUTO;
}

void bh_lm_workspace_free(bh_lm_workspace *ws)
{
    if (!ws)
        return;
    free(ws->a);
    free(ws->sw);
    free(ws->vec);
    free(ws->done);
    free(ws->tok);
    free(ws->js);
    free(ws->hbeta);
    free(ws->rdiag);
    free(ws->scale);
    free(ws->b);
    free(ws->beta);
    free(ws->rinv);
    free(ws->z);
    free(ws->perm);
    free(ws->rf);
    free(ws->chunk);
    free(ws->rid);
    free(ws->rl);
    free(ws->swc);
    free(ws->cmax);
    free(ws);
}

/* Apply Householder reflection k (vector in a[k..n-1, k]) to v[k..n-1]. */
static void apply_h(const real *a, size_t n, size_t k, real hb, real *v)
{
    const real *h = a + k * n;
    real s = 0;
    for (size_t i = k; i < n; i++)
        s += h[i] * v[i];
    s *= hb;
    for (size_t i = k; i < n; i++)
        v[i] -= s * h[i];
}

/* Q'v for the first r reflections, then back-substitute R x = (Q'v)[0..r). */
static void qr_solve(const bh_lm_workspace *ws, size_t n, size_t r, real *v,
                     real *x)
{
    for (size_t k = 0; k < r; k++)
        apply_h(ws->a, n, k, ws->hbeta[k], v);
    for (size_t k = r; k-- > 0;) {
        real s = v[k];
        for (size_t j = k + 1; j < r; j++)
            s -= ws->a[j * n + k] * x[j];
        x[k] = s / ws->rdiag[k];
    }
}

/* Bookkeeping of the fused factorisation below: per working position, the
 * reflections applied to the column so far, and whether t[] holds the dot
 * product of the next reflection with it (as apply_h would compute it). */
typedef struct {
    size_t *done;
    unsigned char *tok;
} qr_track;

/* Move column k (with its bookkeeping) to the end of the active block
 * [k, pe), as dqrdc2 does with a column found to be aliased. */
static void rotate_col(bh_lm_workspace *ws, qr_track *tr, size_t n, size_t k,
                       size_t pe)
{
    real *a = ws->a, *c = a + k * n;
    size_t pk = ws->perm[k], dk = tr->done[k];
    for (size_t i = 0; i < n; i++)
        ws->vec[i] = c[i];
    memmove(a + k * n, a + (k + 1) * n, (pe - k - 1) * n * sizeof *a);
    memcpy(a + (pe - 1) * n, ws->vec, n * sizeof *a);
    memmove(ws->perm + k, ws->perm + k + 1, (pe - k - 1) * sizeof *ws->perm);
    memmove(tr->done + k, tr->done + k + 1, (pe - k - 1) * sizeof *tr->done);
    memmove(ws->z + k, ws->z + k + 1, (pe - k - 1) * sizeof *ws->z);
    memmove(tr->tok + k, tr->tok + k + 1, (pe - k - 1) * sizeof *tr->tok);
    ws->perm[pe - 1] = pk;
    tr->done[pe - 1] = dk;
    tr->tok[pe - 1] = 0;
}

/* Choose and form reflection k: bring the candidate column up to date,
 * test its orthogonal norm, rotate aliased candidates to the end.  Returns
 * 1 when reflection k was formed, 0 when the rank is reached (*pe = k). */
static int qr_pick(bh_lm_workspace *ws, qr_track *tr, size_t n, size_t k,
                   size_t *pe, real tol)
{
    real *a = ws->a;
    for (;;) {
        real *c = a + k * n;
        for (; tr->done[k] < k; tr->done[k]++)
            apply_h(a, n, tr->done[k], ws->hbeta[tr->done[k]], c);
        /* Norm of the candidate's part orthogonal to columns 0..k-1;
         * computed afresh (no downdating) so the test is exact. */
        real s = 0;
        for (size_t i = k; i < n; i++)
            s += c[i] * c[i];
        real nrm = sqrtl(s);
        /* Columns are equilibrated: the original norm is 1, or 0 for a
         * column of zeros, which is aliased as well. */
        real orig = ws->scale[ws->perm[k]] > 0 ? 1.0L : 0.0L;
        if (orig > 0 && nrm >= tol * orig) {
            real alpha = c[k] > 0 ? -nrm : nrm;
            real vk = c[k] - alpha;
            /* v'v = nrm^2 - 2 alpha c_k + alpha^2 = 2 nrm (nrm + |c_k|). */
            real vtv = 2 * nrm * (nrm + fabsl(c[k]));
            c[k] = vk;
            ws->hbeta[k] = 2 / vtv;
            ws->rdiag[k] = alpha;
            return 1;
        }
        if (k + 1 >= *pe) {
            *pe = k;
            return 0;
        }
        rotate_col(ws, tr, n, k, *pe);
        (*pe)--;
    }
}

/* Householder QR with dqrdc2's limited pivoting: the arithmetic of the
 * column-by-column loop (take column k, rotate it to the end while its
 * orthogonal norm fails the rank test, form reflection k, apply it to
 * every later column) with fewer passes over the n x p long double matrix
 * (the factorisation is bound by memory traffic): one pass over the rows
 * applies reflection k to every remaining column and, in the same sweep,
 * accumulates each column's dot product with reflection k + 1 (chosen
 * beforehand from column k + 1 alone).  Every column still sees
 * reflections 0, 1, ... in order, each dot product is summed over rows in
 * increasing order from zero, and each update is the same expression, so
 * the factor is bit-identical to the column-by-column loop.  The
 * bookkeeping lives in the workspace (extended_arrays): nothing is
 * allocated per fit.  Returns the rank; ws->perm maps working positions to
 * original columns (aliased ones at the end). */
static size_t qr_factor(bh_lm_workspace *ws, size_t n, size_t p, real tol)
{
    qr_track tr = {ws->done, ws->tok};
    memset(tr.tok, 0, p);
    real *a = ws->a, *t = ws->z, *sc = ws->b;
    for (size_t j = 0; j < p; j++)
        tr.done[j] = 0;
    size_t pe = p, k = 0;
    int have = n > 0 && qr_pick(ws, &tr, n, 0, &pe, tol);
    while (have) {
        /* Reflection k is formed.  Choose k + 1 first (its column gets
         * reflection k on its own), then sweep the other columns. */
        int next = k + 1 < pe && k + 1 < n &&
                   qr_pick(ws, &tr, n, k + 1, &pe, tol);
        const real *h = a + k * n, *h1 = a + (k + 1) * n;
        real hb = ws->hbeta[k];
        size_t j0 = k + 1 + (next ? 1 : 0), nj = 0;
        size_t *js = ws->js;
        for (size_t j = k + 1; j < p; j++) {
            if (tr.done[j] < k) {   /* behind (rotated earlier): catch up */
                for (; tr.done[j] < k; tr.done[j]++)
                    apply_h(a, n, tr.done[j], ws->hbeta[tr.done[j]], a + j * n);
                tr.tok[j] = 0;
            }
            if (j < j0 || tr.done[j] != k)
                continue;
            if (!tr.tok[j]) {       /* no dot from the last sweep */
                real s = 0;
                const real *v = a + j * n;
                for (size_t i = k; i < n; i++)
                    s += h[i] * v[i];
                t[j] = s;
            }
            sc[nj] = t[j] * hb;
            t[j] = 0;
            js[nj++] = j;
        }
        for (size_t i = k; i < n; i++) {
            real hi = h[i];
            if (next && i > k) {
                real h1i = h1[i];
                for (size_t q = 0; q < nj; q++) {
                    real *v = a + js[q] * n;
                    v[i] -= sc[q] * hi;
                    t[js[q]] += h1i * v[i];
                }
            } else
                for (size_t q = 0; q < nj; q++)
                    a[js[q] * n + i] -= sc[q] * hi;
        }
        for (size_t q = 0; q < nj; q++) {
            tr.done[js[q]] = k + 1;
            tr.tok[js[q]] = next;
        }
        /* Columns the sweep skipped (aliased, or already past k) need
         * nothing more here: qr_pick and the catch-up above apply what
         * they miss before they are used. */
        k++;
        have = next;
    }
    /* Aliased columns get the remaining reflections, as in the plain
     * loop (their contents are not used afterwards). */
    size_t r = k < pe ? k : pe;
    for (size_t j = r; j < p; j++)
        for (; tr.done[j] < r; tr.done[j]++)
            apply_h(a, n, tr.done[j], ws->hbeta[tr.done[j]], a + j * n);
    return r;
}

/* ---- double path ----------------------------------------------------- */

/* Dot product with four partial sums: independent chains the compiler can
 * keep in vector registers (a single sum is one serial chain). */
static double dot4(const double *restrict a, const double *restrict b, size_t m)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < m; i++)
        s0 += a[i] * b[i];
    return (s0 + s2) + (s1 + s3);
}

/* y += s x over m entries. */
static void axpy(double s, const double *restrict x, double *restrict y, size_t m)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        y[i] += s * x[i];
        y[i + 1] += s * x[i + 1];
        y[i + 2] += s * x[i + 2];
        y[i + 3] += s * x[i + 3];
    }
    for (; i < m; i++)
        y[i] += s * x[i];
}

/* Rows i0 .. i0+m-1 of diag(sqrt w) [X y] into the chunk (column-major,
 * leading dimension m; y is left out when NULL), recording the largest
 * |entry| of each column in ws->cmax. */
static void fill_chunk(const bh_design *d, const double *y, bh_lm_workspace *ws,
                       size_t i0, size_t m)
{
    size_t n = d->n, p = d->p, nc = y ? p + 1 : p;
    double *C = ws->chunk, *sw = ws->swc;
    if (d->w)
        for (size_t i = 0; i < m; i++)
            sw[i] = sqrt(d->w[i0 + i]);
    for (size_t j = 0; j < nc; j++) {
        const double *src = j < p ? d->x + j * n + i0 : y + i0;
        double *dst = C + j * m, mx = ws->cmax[j];
        if (d->w)
            for (size_t i = 0; i < m; i++)
                dst[i] = sw[i] * src[i];
        else
            memcpy(dst, src, m * sizeof *dst);
        for (size_t i = 0; i < m; i++) {
            double a = fabs(dst[i]);   /* the data are finite: no fmax call */
            mx = a > mx ? a : mx;
        }
        ws->cmax[j] = mx;
    }
}

/* One step of the tall-skinny QR: Householder QR of [R; C], with R the
 * p x (p + 1) upper trapezoid in rf (leading dimension p; its last column
 * is Q'y so far) and C the chunk (m rows, leading dimension m, last column
 * y).  Reflection k has its vector at row k of R and in C[:, k] only (rows
 * k+1.. of R are zero in column k), so a chunk costs O(m p^2) on C and
 * O(p^2) on R, and the rows of X are seen once, in cache. */
static void tsqr_chunk(double *rf, size_t p, double *C, size_t m)
{
    for (size_t k = 0; k < p; k++) {
        double *c = C + k * m;
        double sig = dot4(c, c, m);
        if (sig == 0)
            continue;   /* column k of the chunk is zero: nothing to do */
        double x0 = rf[k * p + k];
        double nrm = sqrt(x0 * x0 + sig);
        double alpha = x0 > 0 ? -nrm : nrm;
        double v0 = x0 - alpha;     /* x0 and -alpha agree in sign: exact */
        double tau = 1 / (nrm * (nrm + fabs(x0)));  /* 2 / v'v */
        for (size_t j = k + 1; j <= p; j++) {
            double *cj = C + j * m;
            double s = tau * (v0 * rf[j * p + k] + dot4(c, cj, m));
            rf[j * p + k] -= s * v0;
            axpy(-s, c, cj, m);
        }
        rf[k * p + k] = alpha;
    }
}

/* The double factor of diag(sqrt w) [X y] in ws->rf.  Returns 0 when the
 * data leave the range in which sums of squares in double neither overflow
 * nor lose digits to underflow (the extended path has 15 more bits of
 * exponent), 1 otherwise. */
static int fast_factor(const bh_design *d, const double *y, bh_lm_workspace *ws)
{
    size_t n = d->n, p = d->p, ch = ws->ch;
    for (size_t j = 0; j < p * (p + 1); j++)
        ws->rf[j] = 0;
    for (size_t j = 0; j <= p; j++)
        ws->cmax[j] = 0;
    for (size_t i0 = 0; i0 < n; i0 += ch) {
        size_t m = n - i0 < ch ? n - i0 : ch;
        fill_chunk(d, y, ws, i0, m);
        tsqr_chunk(ws->rf, p, ws->chunk, m);
    }
    /* Entries up to 2^200 in magnitude square to 2^400, and n of those
     * stay far from 2^1024; a column whose largest entry is at least
     * 2^-200 has its square sum above 2^-400, and entries whose squares
     * underflow are below 2^-600 of it. */
    const double big = 0x1p200, small = 0x1p-200;
    for (size_t j = 0; j <= p; j++) {
        double mx = ws->cmax[j];
        if (mx > big || (mx < small && (j < p || mx > 0)))
            return 0;
    }
    for (size_t j = 0; j < p * (p + 1); j++)
        if (!isfinite(ws->rf[j]))
            return 0;
    return 1;
}

/* Whether the double factor is good enough (the automatic choice):
 *
 * - every column passes the rank test with a margin of ten: |R_kk| over
 *   the norm of R's column k is the norm of column k's part orthogonal to
 *   the columns before it relative to its own norm, the quantity the
 *   extended path compares with tol; closer calls go to the extended path,
 *   which decides them with its pivoting;
 * - the 1-norm condition number of the column-equilibrated R (computed
 *   from its explicit inverse, which the covariance needs anyway) is at
 *   most BH_LM_COND_FAST.  Measured on the NIST StRD designs (both paths
 *   forced; minimum LRE over estimates, standard errors, residual SD and
 *   R^2, extended -> double path):
 *       NoInt1, NoInt2  cond 1      14.72 -> 14.72, 14.94 -> 14.94
 *       Norris          cond 3.9    13.92 -> 13.92
 *       Pontius         cond 27     13.51 -> 13.51
 *       Wampler 1-5     cond 3.4e3  SEs 13.22 -> 13.17 (W1), 14.46 ->
 *                                   13.84 (W3-W5); estimates equal or better
 *       Longley         cond 3.4e4  SEs 14.98 -> 14.89
 *       Filip           cond 7.8e9  SEs 8.64 -> 8.20
 *   The covariance comes from the double R, whose error grows with the
 *   condition number; the refinement does not reach it.  1e3 admits the
 *   designs whose every LRE is unchanged and sends the first design that
 *   loses digits (Wampler, 3.4e3) and all worse ones to the extended path.
 *
 * Fills ws->rinv with R^-1 (long double, leading dimension p) and ws->cond.
 * With force set only a singular or non-finite factor is refused. */
static int fast_condition(bh_lm_workspace *ws, size_t p, double tol, int force)
{
    const double *rf = ws->rf;
    real *ri = ws->rinv, *cn = ws->z;
    ws->cond = INFINITY;
    for (size_t k = 0; k < p; k++) {
        real s = 0;
        for (size_t i = 0; i <= k; i++)
            s += (real)rf[k * p + i] * rf[k * p + i];
        cn[k] = sqrtl(s);
        real rkk = fabsl((real)rf[k * p + k]);
        if (!(rkk > 0) || (!force && rkk < 10 * (real)tol * cn[k]))
            return 0;
    }
    for (size_t c = 0; c < p; c++) {
        for (size_t i = c + 1; i < p; i++)
            ri[c * p + i] = 0;
        ri[c * p + c] = 1 / (real)rf[c * p + c];
        for (size_t i = c; i-- > 0;) {
            real s = 0;
            for (size_t k = i + 1; k <= c; k++)
                s += (real)rf[k * p + i] * ri[c * p + k];
            ri[c * p + i] = -s / (real)rf[i * p + i];
        }
    }
    /* R S^-1 has unit columns; its inverse is S R^-1 (S = column norms). */
    real n1 = 0, ni1 = 0;
    for (size_t c = 0; c < p; c++) {
        real a = 0, b = 0;
        for (size_t i = 0; i <= c; i++) {
            a += fabsl((real)rf[c * p + i]) / cn[c];
            b += cn[i] * fabsl(ri[c * p + i]);
        }
        n1 = a > n1 ? a : n1;
        ni1 = b > ni1 ? b : ni1;
    }
    ws->cond = (double)(n1 * ni1);
    if (!isfinite(ws->cond))
        return 0;
    return force || ws->cond <= BH_LM_COND_FAST;
}

/* Solve R b = Q'y, then refine by the corrected seminormal equations:
 * r = y - X b and g = X'W r accumulated in long double from the original
 * data, R'R d = g solved with the same R, b += d.  With the error of the
 * double factor of order cond^2 eps per step, two steps bring b to the
 * accuracy of the long double residuals. */
static void fast_solve(const bh_design *d, const double *y, int refine,
                       bh_lm_workspace *ws)
{
    size_t n = d->n, p = d->p, ch = ws->ch;
    const double *rf = ws->rf;
    real *b = ws->beta, *g = ws->z, *t = ws->b, *r = ws->rl;
    for (size_t k = p; k-- > 0;) {
        real s = rf[p * p + k];
        for (size_t j = k + 1; j < p; j++)
            s -= (real)rf[j * p + k] * b[j];
        b[k] = s / (real)rf[k * p + k];
    }
    for (int it = 0; it < refine; it++) {
        for (size_t j = 0; j < p; j++)
            g[j] = 0;
        for (size_t i0 = 0; i0 < n; i0 += ch) {
            size_t m = n - i0 < ch ? n - i0 : ch;
            for (size_t i = 0; i < m; i++)
                r[i] = y[i0 + i];
            for (size_t j = 0; j < p; j++) {
                const double *x = d->x + j * n + i0;
                real bj = b[j];
                for (size_t i = 0; i < m; i++)
                    r[i] -= (real)x[i] * bj;
            }
            if (d->w)
                for (size_t i = 0; i < m; i++)
                    r[i] *= (real)d->w[i0 + i];
            for (size_t j = 0; j < p; j++) {
                const double *x = d->x + j * n + i0;
                real s = 0;
                for (size_t i = 0; i < m; i++)
                    s += (real)x[i] * r[i];
                g[j] += s;
            }
        }
        for (size_t k = 0; k < p; k++) {        /* R't = g */
            real s = g[k];
            for (size_t i = 0; i < k; i++)
                s -= (real)rf[k * p + i] * t[i];
            t[k] = s / (real)rf[k * p + k];
        }
        for (size_t k = p; k-- > 0;) {          /* R d = t, b += d */
            real s = t[k];
            for (size_t j = k + 1; j < p; j++)
                s -= (real)rf[j * p + k] * t[j];
            t[k] = s / (real)rf[k * p + k];
        }
        for (size_t k = 0; k < p; k++)
            b[k] += t[k];
    }
}

/* Leverages h_i = || sqrt(w_i) x_i R^-1 ||^2 chunk by chunk in double:
 * for each chunk of rows A_c = diag(sqrt w) X_c, column c of A_c R^-1 is
 * built in the chunk's spare column and its squares added up. */
static void fast_leverage(const bh_design *d, bh_lm_workspace *ws, double *hat)
{
    size_t n = d->n, p = d->p, ch = ws->ch;
    double *rid = ws->rid;
    for (size_t c = 0; c < p; c++)
        for (size_t k = 0; k <= c; k++)
            rid[c * p + k] = (double)ws->rinv[c * p + k];
    for (size_t i0 = 0; i0 < n; i0 += ch) {
        size_t m = n - i0 < ch ? n - i0 : ch;
        fill_chunk(d, NULL, ws, i0, m);
        double *C = ws->chunk, *z = C + p * m, *h = hat + i0;
        for (size_t i = 0; i < m; i++)
            h[i] = 0;
        for (size_t c = 0; c < p; c++) {
            for (size_t i = 0; i < m; i++)
                z[i] = 0;
            for (size_t k = 0; k <= c; k++)
                axpy(rid[c * p + k], C + k * m, z, m);
            for (size_t i = 0; i < m; i++)
                h[i] += z[i] * z[i];
        }
    }
}

/* Residual e = y - X beta in long double for row i. */
static real row_resid(const bh_design *d, const double *y, const real *beta,
                      const unsigned char *alias, size_t i)
{
    real s = y[i];
    for (size_t j = 0; j < d->p; j++)
        if (!alias[j])
            s -= (real)d->x[j * d->n + i] * beta[j];
    return s;
}

bh_status bh_lm_fit(const bh_design *d, const bh_lm_options *opt,
                    bh_lm_workspace *ws, bh_fit **out, bh_error *err)
{
    bh_lm_options defopt;
    if (!opt) {
        bh_lm_default_options(&defopt);
        opt = &defopt;
    }
    *out = NULL;
    if (!d || !d->x || !d->y)
        return bh_error_set(err, BH_EINTERNAL, "lm: design without data");
    size_t n = d->n, p = d->p;
    char nb[32];
    const char *src = d->source;
    if (opt->response >= (d->m ? d->m : 1))
        return bh_error_set(err, BH_EUSAGE,
                            "lm: response %zu requested, the design has %zu",
                            opt->response + 1, d->m);
    if (!(opt->tol > 0 && opt->tol < 1))
        return bh_error_set(err, BH_EUSAGE,
                            "lm: rank tolerance %g is not in (0, 1)",
                            opt->tol);
    if (p == 0)
        return bh_error_set(err, BH_EUSAGE, "lm: the model has no columns");
    const double *y = d->y + opt->response * n;
    const char *yname = d->ynames && d->ynames[opt->response]
                            ? d->ynames[opt->response] : "response";
    int freq = d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY;

    /* Validate: finite data, usable weights. */
    size_t nz = 0;     /* rows with positive weight */
    real wsum = 0;     /* sum of weights over those rows */
    for (size_t i = 0; i < n; i++) {
        double wi = d->w ? d->w[i] : 1.0;
        if (!isfinite(wi) || wi < 0)
            return bh_error_at(err, BH_EDATA, src, bh_design_data_row(d, i), 0,
                               "weight%s%s is %g in row %zu: weights must "
                               "be finite and non-negative",
                               d->weights_name ? " " : "",
                               d->weights_name ? d->weights_name : "",
                               wi, bh_design_data_row(d, i));
        if (!isfinite(y[i]))
            return bh_error_at(err, BH_EDATA, src, bh_design_data_row(d, i), 0,
                               "response %s is %g in row %zu: values must "
                               "be finite", yname, y[i], bh_design_data_row(d, i));
        if (wi > 0) {
            nz++;
            wsum += wi;
        }
    }
    for (size_t j = 0; j < p; j++)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(d->x[j * n + i]))
                return bh_error_at(err, BH_EDATA, src, bh_design_data_row(d, i), 0,
                                   "model column %s is %g in row %zu: values "
                                   "must be finite",
                                   bh_design_colname(d, opt->colnames, j, nb, sizeof nb),
                                   d->x[j * n + i], bh_design_data_row(d, i));
    if (nz == 0)
        return bh_error_set(err, BH_EDATA,
                            "lm: no observations with positive weight");

    bh_lm_workspace *own = NULL;
    if (!ws) {
        ws = own = bh_lm_workspace_alloc(n, p);
        if (!ws)
            return bh_error_set(err, BH_ENOMEM, "lm: out of memory (%zu x %zu)",
                                n, p);
    } else if (ws->nmax < n || ws->pmax < p) {
        return bh_error_set(err, BH_EUSAGE,
                            "lm: workspace for %zu x %zu is too small for %zu x %zu",
                            ws->nmax, ws->pmax, n, p);
    }
    /* The chunks of this problem, as a workspace of its own size would cut
     * them (the sums, and so the bits, depend on the cut): a larger
     * workspace gives the same numbers. */
    ws->ch = chunk_rows(n, p);
    if (ws->ch > ws->cap_ch) {
        free(ws->rl);
        free(ws->swc);
        ws->rl = malloc(ws->ch * sizeof *ws->rl);
        ws->swc = malloc(ws->ch * sizeof *ws->swc);
        ws->cap_ch = ws->rl && ws->swc ? ws->ch : 0;
    }
    if (ws->ch * (p + 1) > ws->cap_chunk)
        ws->chunk = bh_reserve(ws->chunk, &ws->cap_chunk, ws->ch * (p + 1), sizeof *ws->chunk);
    if (!ws->cap_ch || !ws->chunk) {
        bh_lm_workspace_free(own);
        return bh_error_set(err, BH_ENOMEM, "lm: out of memory (%zu x %zu)", n, p);
    }
    bh_status st = BH_OK;
    bh_fit *fit = NULL;
    int recycled = 0;
    size_t r = p;
    bh_lm_path path = BH_LM_PATH_EXTENDED;

    if (opt->path != BH_LM_PATH_EXTENDED && fast_factor(d, y, ws) &&
        fast_condition(ws, p, opt->tol, opt->path == BH_LM_PATH_DOUBLE)) {
        /* Double path: full rank, original order and units. */
        path = BH_LM_PATH_DOUBLE;
        for (size_t j = 0; j < p; j++) {
            ws->perm[j] = j;
            ws->scale[j] = 1;
        }
    } else {
        if (!extended_arrays(ws)) {
            st = bh_error_set(err, BH_ENOMEM, "lm: out of memory (%zu x %zu "
                              "extended-precision copy)", n, p);
            goto done;
        }
        /* (1) A = diag(sqrt w) X, columns equilibrated. */
        for (size_t i = 0; i < n; i++)
            ws->sw[i] = d->w ? sqrtl((real)d->w[i]) : 1.0L;
        for (size_t j = 0; j < p; j++) {
            real s = 0;
            real *c = ws->a + j * n;
            for (size_t i = 0; i < n; i++) {
                c[i] = ws->sw[i] * (real)d->x[j * n + i];
                s += c[i] * c[i];
            }
            real nrm = sqrtl(s);
            ws->scale[j] = nrm > 0 ? 1 / nrm : 0;
            for (size_t i = 0; i < n; i++)
                c[i] *= ws->scale[j];
            ws->perm[j] = j;
        }

        /* (2) Factor. */
        r = qr_factor(ws, n, p, (real)opt->tol);
    }
    real nobs = freq ? wsum : (real)nz;
    if (nobs <= (real)r) {
        st = bh_error_set(err, BH_EDATA,
                          "lm: %zu observations%s for %zu estimable "
                          "coefficients: no residual degrees of freedom",
                          freq ? (size_t)llroundl(wsum) : nz,
                          freq ? " (sum of frequency weights)" : "", r);
        goto done;
    }

    /* The per-row arrays have the workspace's rows, so that the next fit
     * with this workspace can take them back from a recycled result;
     * every row used is written below. */
    size_t rcap = ws->nmax ? ws->nmax : 1;
    if (opt->recycle && bh_fit_recycle_rows(opt->recycle, p, 1, rcap) >= 0) {
        fit = opt->recycle;
        recycled = 1;
    } else if (!(fit = bh_fit_alloc(p, 0, 1, 1))) {
        st = bh_error_set(err, BH_ENOMEM, "lm: out of memory");
        goto done;
    }
    fit->nrows = n;
    fit->rows_cap = rcap;
    double **rowv[] = {&fit->fitted, &fit->resid, &fit->u, &fit->hat};
    for (size_t k = 0; k < sizeof rowv / sizeof *rowv; k++)
        if (!*rowv[k] && !(*rowv[k] = malloc(rcap * sizeof **rowv[k]))) {
            st = bh_error_set(err, BH_ENOMEM, "lm: out of memory");
            goto done;
        }
    for (size_t k = r; k < p; k++)
        fit->aliased[ws->perm[k]] = 1;

    /* (3) Solve and refine.  The correction solves the same least-squares
     * problem with the residual (accumulated in long double from the
     * original double data) as right-hand side. */
    if (path == BH_LM_PATH_DOUBLE) {
        fast_solve(d, y, opt->refine, ws);
    } else {
        for (size_t j = 0; j < p; j++)
            ws->beta[j] = 0;
        for (int it = 0; it <= opt->refine; it++) {
            for (size_t i = 0; i < n; i++)
                ws->vec[i] = ws->sw[i] * row_resid(d, y, ws->beta, fit->aliased, i);
            qr_solve(ws, n, r, ws->vec, ws->b);
            for (size_t k = 0; k < r; k++)
                ws->beta[ws->perm[k]] += ws->b[k] * ws->scale[ws->perm[k]];
        }
    }

    /* (4) R^-1 (upper triangular, r x r, column-major with leading dim p);
     * the double path has it from fast_condition. */
    real *ri = ws->rinv;
    for (size_t c = 0; c < r && path == BH_LM_PATH_EXTENDED; c++) {
        for (size_t i = c + 1; i < r; i++)
            ri[c * p + i] = 0;
        ri[c * p + c] = 1 / ws->rdiag[c];
        for (size_t i = c; i-- > 0;) {
            real s = 0;
            for (size_t k = i + 1; k <= c; k++)
                s += ws->a[k * n + i] * ri[c * p + k];
            ri[c * p + i] = -s / ws->rdiag[i];
        }
    }
    /* bread = S R^-1 R^-T S in original order. */
    for (size_t a1 = 0; a1 < r; a1++)
        for (size_t b1 = a1; b1 < r; b1++) {
            real s = 0;
            for (size_t k = b1; k < r; k++)
                s += ri[k * p + a1] * ri[k * p + b1];
            size_t ja = ws->perm[a1], jb = ws->perm[b1];
            s *= ws->scale[ja] * ws->scale[jb];
            fit->bread[ja * p + jb] = fit->bread[jb * p + ja] = (double)s;
        }

    /* Fold the column scales into R^-1 for the leverages: row i of
     * diag(sqrt w) X S R^-1 is then sqrt(w_i) x_i(perm) times this. */
    for (size_t c = 0; c < r; c++)
        for (size_t k = 0; k <= c; k++)
            ri[c * p + k] *= ws->scale[ws->perm[k]];

    /* Residuals, fitted values, scores, leverages, sums of squares. */
    int extended = path == BH_LM_PATH_EXTENDED;
    if (!extended)
        fast_leverage(d, ws, fit->hat);
    real rss = 0, sumw_f = 0, sumlogw = 0;
    for (size_t i = 0; i < n; i++) {
        real wi = d->w ? (real)d->w[i] : 1.0L;
        real e = row_resid(d, y, ws->beta, fit->aliased, i);
        real f = (real)y[i] - e;
        fit->resid[i] = (double)e;
        fit->fitted[i] = (double)f;
        fit->u[i] = (double)(freq ? sqrtl(wi) * e : wi * e);
        /* h_i = || sqrt(w_i) x_i S_perm R^-1 ||^2 */
        real h = 0;
        if (wi > 0) {
            for (size_t k = 0; k < r && extended; k++)
                ws->z[k] = (real)d->x[ws->perm[k] * n + i];
            for (size_t c = 0; c < r && extended; c++) {
                real s = 0;
                for (size_t k = 0; k <= c; k++)
                    s += ws->z[k] * ri[c * p + k];
                h += s * s;
            }
            h *= wi;
            rss += wi * e * e;
            sumw_f += wi * f;
            if (!freq && d->w)     /* log 1 = 0: skipped when unweighted */
                sumlogw += logl(wi);
        }
        if (extended)
            fit->hat[i] = (double)h;
    }
    int icpt = bh_design_has_intercept(d);
    real mss = 0;
    {
        real m = sumw_f / wsum;
        for (size_t i = 0; i < n; i++) {
            real wi = d->w ? (real)d->w[i] : 1.0L;
            if (!(wi > 0))
                continue;
            real f = (real)y[i] - row_resid(d, y, ws->beta, fit->aliased, i);
            real dv = icpt ? f - m : f;
            mss += wi * dv * dv;
        }
    }

    for (size_t j = 0; j < p; j++) {
        fit->beta[j] = fit->aliased[j] ? NAN : (double)ws->beta[j];
        if ((st = bh_fit_set_string(&fit->term[j],
                                    bh_design_colname(d, opt->colnames, j, nb, sizeof nb))))
            goto nomem;
        /* single equation (a recycled fit's components keep their text) */
        if (recycled && (st = bh_fit_set_string(&fit->component[j], "")))
            goto nomem;
    }
    real rdf = nobs - (real)r;
    real sigma2 = rss / rdf;
    for (size_t a1 = 0; a1 < p; a1++)
        for (size_t b1 = 0; b1 < p; b1++)
            fit->vcov[a1 * p + b1] = fit->bread[a1 * p + b1] * (double)sigma2;
    /* The work is in long double, whose range hides overflow: data near
     * the double limits (|y| ~ 1e308) give estimates or variances that are
     * infinite once stored as double.  Refuse rather than print Inf or a
     * silently missing standard error. */
    {
        int overflow = !isfinite((double)sigma2) || !isfinite((double)rss);
        const char *what = NULL;    /* the coefficient at fault, if one */
        for (size_t a1 = 0; a1 < p && !overflow; a1++) {
            if (fit->aliased[a1])
                continue;
            /* The opposite end: a predictor near 1e308 has a variance near
             * 1e-616, which is 0 or subnormal in double and would print
             * as a standard error of 0 and t = Inf.  Zero is right only
             * for an exact fit (rss = 0). */
            double v = fit->vcov[a1 * p + a1];
            overflow |= !isfinite(fit->beta[a1]) || (!(v >= DBL_MIN) && rss != 0);
            for (size_t b1 = 0; b1 < p && !overflow; b1++)
                if (!fit->aliased[b1])
                    overflow |= !isfinite(fit->vcov[a1 * p + b1]) ||
                                !isfinite(fit->bread[a1 * p + b1]);
            if (overflow)
                what = fit->term[a1];
        }
        for (size_t i = 0; i < n && !overflow; i++)
            overflow |= !isfinite(fit->resid[i]) || !isfinite(fit->fitted[i]) ||
                        !isfinite(fit->u[i]) || !isfinite(fit->hat[i]);
        if (overflow) {
            st = bh_error_set(err, BH_ENUMERIC,
                              "lm: %s%s%sbeyond the range of double precision "
                              "(residual variance %Lg): the values of %s or of the "
                              "predictors are too large or too small in magnitude; "
                              "rescale them",
                              what ? "the estimate or variance of " : "the results are ",
                              what ? what : "", what ? " is " : "", sigma2, yname);
            goto done;
        }
    }

    fit->design = d;
    fit->linear = 1;
    fit->rank = r;
    fit->nobs = freq ? (size_t)llroundl(wsum) : nz;
    fit->ndropped = d->ndropped;
    fit->dispersion = (double)sigma2;
    fit->df_inference = (double)rdf;
    fit->blocks[0].x = d->x;
    fit->blocks[0].ncol = p;
    fit->blocks[0].coef0 = 0;
    snprintf(fit->vcov_type, sizeof fit->vcov_type, "classical");
    if ((st = bh_fit_set_string(&fit->family, "gaussian")) ||
        (st = bh_fit_set_string(&fit->link, "identity")) ||
        (st = bh_fit_set_string(&fit->method, d->w ? "wls" : "ols")))
        goto nomem;
    /* A recycled fit keeps the name and formula its owner gave it. */
    if (!recycled && (st = bh_fit_set_string(&fit->name, "(1)")))
        goto nomem;
    if (!recycled && d->terms && d->terms->formula && d->terms->formula->text &&
        (st = bh_fit_set_string(&fit->formula, d->terms->formula->text)))
        goto nomem;

    /* Fit statistics by R's summary.lm / logLik.lm rules. */
    bh_fit_stats *S = &fit->stats;
    real dfint = icpt ? 1 : 0;
    S->deviance = (double)rss;
    S->null_deviance = (double)(mss + rss);
    S->sigma = (double)sqrtl(sigma2);
    S->df_model = (double)r;
    S->df_resid = (double)rdf;
    if ((real)r > dfint) {
        S->r2 = (double)(mss / (mss + rss));
        S->adj_r2 = (double)(1 - (1 - mss / (mss + rss)) * ((nobs - dfint) / rdf));
        S->f_df1 = (double)((real)r - dfint);
        S->f_df2 = (double)rdf;
        S->fstat = (double)((mss / ((real)r - dfint)) / sigma2);
        S->f_pvalue = isinf(S->fstat) ? 0.0
                      : gsl_cdf_fdist_Q(S->fstat, S->f_df1, S->f_df2);
    } else {
        S->r2 = S->adj_r2 = 0;
    }
    /* logLik.lm: 0.5 (sum log w - N (log 2pi + 1 - log N + log sum w e^2))
     * over positive-weight rows; frequency weights replicate rows, so the
     * sum of log weights drops out and N = sum w. */
    real N = nobs;
    real ll = 0.5L * (sumlogw - N * (logl(2 * 3.14159265358979323846264338327950288L) +
                                      1 - logl(N) + logl(rss)));
    S->loglik = (double)ll;
    S->aic = (double)(-2 * ll + 2 * ((real)r + 1));
    S->bic = (double)(-2 * ll + logl(N) * ((real)r + 1));

    /* R's summary.lm rule: a residual variance below 1e-30 of the fitted
     * values' scale (mean^2 + variance) is an essentially perfect fit, whose
     * standard errors, t values and p-values are rounding noise. */
    {
        real fm = 0, fv = 0;
        size_t nf = 0;
        for (size_t i = 0; i < n; i++)
            if (!d->w || d->w[i] > 0) {
                fm += fit->fitted[i];
                nf++;
            }
        fm /= nf;
        for (size_t i = 0; i < n; i++)
            if (!d->w || d->w[i] > 0)
                fv += (fit->fitted[i] - fm) * (fit->fitted[i] - fm);
        fv = nf > 1 ? fv / (real)(nf - 1) : 0;
        if (sigma2 < (fm * fm + fv) * 1e-30L &&
            (st = bh_fit_warn(fit, "essentially perfect fit (residual variance %Lg): "
                              "standard errors, tests and intervals are unreliable",
                              sigma2)))
            goto nomem;
    }

    /* Warn about aliased columns, naming them in design order. */
    if (r < p) {
        size_t L = 0;
        for (size_t j = 0; j < p; j++)
            if (fit->aliased[j])
                L += strlen(fit->term[j]) + 2;
        char *names = malloc(L + 1);
        if (!names) {
            st = BH_ENOMEM;
            goto nomem;
        }
        names[0] = '\0';
        for (size_t j = 0; j < p; j++)
            if (fit->aliased[j]) {
                if (names[0])
                    strcat(names, ", ");
                strcat(names, fit->term[j]);
            }
        st = bh_fit_warn(fit, "not estimable (collinear): %s", names);
        free(names);
        if (st)
            goto nomem;
    }
    ws->path = path;
    goto done;

nomem:
    st = bh_error_set(err, BH_ENOMEM, "lm: out of memory");
done:
    bh_lm_workspace_free(own);
    if (st) {
        if (!recycled) /* a recycled fit stays the caller's */
            bh_fit_free(fit);
        return st;
    }
    *out = fit;
    return BH_OK;
}
