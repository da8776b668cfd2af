/* dirichlet.c - Dirichlet regression by maximum likelihood.
 *
 * Both parametrisations are handled as L linear predictors per row,
 * eta_ib = x_bi' b_b, each on its own design (X, or Z for the precision),
 * whose row log-likelihood l_i has gradient u_i (L) and Hessian W_i (L x L)
 * in eta; the coefficient gradient is sum_i w_i x_bi u_ib and the Hessian
 * block (a, b) is X_a' diag(w W_ab) X_b (one dgemm per block pair).
 *
 * Row derivatives, with g_c = psi(A) - psi(alpha_c) + log y_c = dl/dalpha_c
 * (A = sum alpha = phi for the alternative):
 *   common       u_c = alpha_c g_c,
 *                W_cd = alpha_c alpha_d psi1(A) + delta_cd t_c,
 *                t_c = u_c - alpha_c^2 psi1(alpha_c)
 *   alternative  (k, l non-base components, th = log phi)
 *                G = sum_c alpha_c g_c, Q = sum_c alpha_c^2 psi1(alpha_c),
 *                t_c = alpha_c g_c - alpha_c^2 psi1(alpha_c), T = sum t_c
 *                u_k = alpha_k g_k - mu_k G,  u_th = G
 *                W_kl = delta_kl (t_k - mu_k G) - t_k mu_l - t_l mu_k
 *                       + mu_k mu_l (T + G)
 *                W_k,th = u_k - alpha_k^2 psi1(alpha_k) + mu_k Q
 *                W_th,th = phi^2 psi1(phi) - Q + G
 * (chain rule through alpha = phi softmax(eta); sum_c d alpha_c / d eta_k
 * = 0 removes the psi1(phi) term from the mean blocks).
 */
#include "blackhole/dirichlet.h"
#include "blackhole/lm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_sf_psi.h>

/* Newton steps may lower the log-likelihood by rounding noise near the
 * optimum; larger drops (relative to 1 + |l|) trigger step halving. */
#define DIR_LL_SLACK 1e-12
#define DIR_MAX_HALVINGS 40
/* Levenberg damping of the equilibrated Hessian when it is not negative
 * definite: first shift and growth factor, and the largest shift tried. */
#define DIR_LM_SHIFT0 1e-4
#define DIR_LM_GROW 10.0
#define DIR_LM_SHIFT_MAX 1e12
/* BFGS: first trial step and line-search tolerance (GSL's advice). */
#define DIR_BFGS_STEP 0.1
#define DIR_BFGS_LSTOL 0.1
/* Method-of-moments precision is clamped to this range for the start. */
#define DIR_PHI_MIN 1.0
#define DIR_PHI_MAX 1e6

struct bh_dirichlet_workspace {
    size_t nmax, pmax, pzmax, Kmax, Pmax, Lmax;
    /* Problem. */
    const bh_design *d;
    bh_dirichlet_options opt;
    size_t n, p, pz, K, L, P, base;
    int alt, freq, implicit_z;
    const double *w;
    double nobs;
    /* Per row. */
    double *y, *ly;       /* n x K shares as fitted and their logs       */
    double *ones;         /* n ones: the implicit precision design        */
    double *eta;          /* n x L linear predictors                      */
    double *alpha, *mu;   /* n x K                                        */
    double *u;            /* n x L row gradients                          */
    double *W;            /* n x L(L+1)/2 row Hessians (packed, a <= b)   */
    double *tmp;          /* n x max(p, pz) scratch; n-vectors            */
    double *rw;           /* n: sqrt of weights                           */
    /* Coefficients (P, fit order). */
    double *beta, *btry, *grad, *step, *scale, *best;
    unsigned char *alias;
    size_t *fr, nfree;    /* free (estimable) coefficients                */
    double *H;            /* P x P column-major                           */
    double *M;            /* nfree x nfree equilibrated -H, then Cholesky */
    double *dsc, *rhs;    /* nfree                                        */
    /* Least squares by Householder QR (rank and starting values). */
    double *qa, *qh, *qd, *qs;
    size_t *qact, qr;
    /* BFGS. */
    gsl_multimin_fdfminimizer *mm;
    size_t mmdim;
    gsl_vector *mx;
    double fbest;
    /* State. */
    double ll;
    size_t iter, bfgs_iter;
    int converged, halving_failed, info_ok;
    double decrement;
};

/* ---- small helpers ----------------------------------------------------- */

bh_status bh_dirichlet_param_parse(const char *s, bh_dirichlet_param *out,
                                   bh_error *err)
{
    char q[64];
    if (s && strcasecmp(s, "common") == 0) {
        *out = BH_DIRICHLET_COMMON;
        return BH_OK;
    }
    if (s && strcasecmp(s, "alternative") == 0) {
        *out = BH_DIRICHLET_ALTERNATIVE;
        return BH_OK;
    }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown Dirichlet parametrisation '%s' (expected "
                        "common or alternative)",
                        bh_quote(q, sizeof q, s ? s : "", 40));
}

const char *bh_dirichlet_param_name(bh_dirichlet_param p)
{
    return p == BH_DIRICHLET_ALTERNATIVE ? "alternative" : "common";
}

void bh_dirichlet_default_options(bh_dirichlet_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->param = BH_DIRICHLET_COMMON;
    opt->sum_tol = BH_DIRICHLET_SUM_TOL;
    opt->tol = 1e-20;
    opt->maxiter = 100;
    opt->bfgs_maxiter = 50;
    opt->bfgs_gtol = 1e-3;
}

static size_t coef_count(int alt, size_t K, size_t p, size_t pz)
{
    return alt ? (K - 1) * p + pz : K * p;
}

bh_dirichlet_workspace *bh_dirichlet_workspace_alloc(size_t n, size_t p,
                                                     size_t pz, size_t K)
{
    bh_dirichlet_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    size_t n1 = n ? n : 1, K1 = K < 2 ? 2 : K, pz1 = pz ? pz : 1;
    size_t pc = p > pz1 ? p : pz1;
    size_t P = coef_count(0, K1, p, pz1);
    size_t Pa = coef_count(1, K1, p, pz1);
    if (Pa > P)
        P = Pa;
    size_t P1 = P ? P : 1, L = K1;
    ws->nmax = n;
    ws->pmax = p;
    ws->pzmax = pz1;
    ws->Kmax = K1;
    ws->Pmax = P;
    ws->Lmax = L;
    int ok = 1;
    struct { double **v; size_t len; } arr[] = {
        {&ws->y, n1 * K1}, {&ws->ly, n1 * K1}, {&ws->ones, n1},
        {&ws->eta, n1 * L}, {&ws->alpha, n1 * K1}, {&ws->mu, n1 * K1},
        {&ws->u, n1 * L}, {&ws->W, n1 * L * (L + 1) / 2},
        {&ws->tmp, n1 * (pc + 1)}, {&ws->rw, n1},
        {&ws->beta, P1}, {&ws->btry, P1}, {&ws->grad, P1}, {&ws->step, P1},
        {&ws->scale, P1}, {&ws->best, P1}, {&ws->H, P1 * P1},
        {&ws->M, P1 * P1}, {&ws->dsc, P1}, {&ws->rhs, P1},
        {&ws->qa, n1 * (pc ? pc : 1)}, {&ws->qh, pc + 1}, {&ws->qd, pc + 1},
        {&ws->qs, pc + 1},
    };
    for (size_t k = 0; k < sizeof arr / sizeof *arr; k++)
        ok &= (*arr[k].v = malloc(arr[k].len * sizeof(double))) != NULL;
    ok &= (ws->alias = calloc(P1, 1)) != NULL;
    ok &= (ws->fr = malloc(P1 * sizeof *ws->fr)) != NULL;
    ok &= (ws->qact = malloc((pc + 1) * sizeof *ws->qact)) != NULL;
    if (!ok) {
        bh_dirichlet_workspace_free(ws);
        return NULL;
    }
    for (size_t i = 0; i < n1; i++)
        ws->ones[i] = 1.0;
    return ws;
}

void bh_dirichlet_workspace_free(bh_dirichlet_workspace *ws)
{
    if (!ws)
        return;
    double *arr[] = {ws->y, ws->ly, ws->ones, ws->eta, ws->alpha, ws->mu,
                     ws->u, ws->W, ws->tmp, ws->rw, ws->beta, ws->btry,
                     ws->grad, ws->step, ws->scale, ws->best, ws->H, ws->M,
                     ws->dsc, ws->rhs, ws->qa, ws->qh, ws->qd, ws->qs};
    for (size_t k = 0; k < sizeof arr / sizeof *arr; k++)
        free(arr[k]);
    free(ws->alias);
    free(ws->fr);
    free(ws->qact);
    if (ws->mm)
        gsl_multimin_fdfminimizer_free(ws->mm);
    if (ws->mx)
        gsl_vector_free(ws->mx);
    free(ws);
}

static double wi_of(const bh_dirichlet_workspace *ws, size_t i)
{
    return ws->w ? ws->w[i] : 1.0;
}

static const char *yname(const bh_design *d, size_t c, char *buf, size_t bs)
{
    if (d->ynames && d->ynames[c])
        return d->ynames[c];
    snprintf(buf, bs, "y%zu", c + 1);
    return buf;
}

static const char *zname(const bh_dirichlet_workspace *ws, size_t j,
                         char *buf, size_t bs)
{
    const bh_design *d = ws->d;
    if (ws->implicit_z)
        return "(Intercept)";
    if (d->terms && d->terms->phi && d->terms->phi->colnames &&
        d->terms->phi->colnames[j])
        return d->terms->phi->colnames[j];
    if (ws->opt.zcolnames && ws->opt.zcolnames[j])
        return ws->opt.zcolnames[j];
    snprintf(buf, bs, "z%zu", j + 1);
    return buf;
}

/* Design, columns and first coefficient of linear predictor b. */
static const double *block_x(const bh_dirichlet_workspace *ws, size_t b,
                             size_t *ncol, size_t *coef0)
{
    if (ws->alt && b == ws->L - 1) {
        *ncol = ws->pz;
        *coef0 = (ws->K - 1) * ws->p;
        return ws->implicit_z ? ws->ones : ws->d->z;
    }
    *ncol = ws->p;
    *coef0 = b * ws->p;
    return ws->d->x;
}

/* Component of mean predictor b of the alternative (skips the base). */
static size_t alt_comp(const bh_dirichlet_workspace *ws, size_t b)
{
    return b < ws->base ? b : b + 1;
}

/* Packed index of (a, b), a <= b, in an L x L upper triangle. */
static size_t pk(size_t L, size_t a, size_t b)
{
    return a * L - a * (a - 1) / 2 + (b - a);
}

/* ---- least squares (rank decisions and starting values) ------------- */

/* Householder QR of diag(rw) A (n x ncol) in column order: a column whose
 * part orthogonal to the accepted ones is below BH_LM_TOL of its norm is
 * aliased (R's rule).  Returns the rank; the factor stays in ws->q*. */
static size_t qr_factor(bh_dirichlet_workspace *ws, const double *A,
                        size_t ncol, unsigned char *alias)
{
    size_t n = ws->n, r = 0;
    double *a = ws->qa;
    for (size_t j = 0; j < ncol; j++) {
        double *c = a + j * n;
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            c[i] = ws->rw[i] * A[j * n + i];
            s += c[i] * c[i];
        }
        ws->qs[j] = s > 0 ? 1 / sqrt(s) : 0;
        for (size_t i = 0; i < n; i++)
            c[i] *= ws->qs[j];
    }
    for (size_t j = 0; j < ncol; j++) {
        double *c = a + j * n;
        double s = 0;
        for (size_t i = r; i < n; i++)
            s += c[i] * c[i];
        double nrm = sqrt(s);
        if (ws->qs[j] == 0 || nrm < BH_LM_TOL || r >= n) {
            alias[j] = 1;
            continue;
        }
        alias[j] = 0;
        double al = c[r] > 0 ? -nrm : nrm;
        double vtv = 2 * nrm * (nrm + fabs(c[r]));
        c[r] -= al;
        ws->qh[r] = 2 / vtv;
        ws->qd[r] = al;
        ws->qact[r] = j;
        for (size_t k = j + 1; k < ncol; k++) {
            double *v = a + k * n;
            double t = cblas_ddot((int)(n - r), c + r, 1, v + r, 1) * ws->qh[r];
            cblas_daxpy((int)(n - r), -t, c + r, 1, v + r, 1);
        }
        r++;
    }
    ws->qr = r;
    return r;
}

/* Least-squares coefficients of rhs (n, overwritten) on the factored
 * columns into coef (ncol values, 0 where aliased). */
static void qr_solve(bh_dirichlet_workspace *ws, double *rhs, size_t ncol,
                     double *coef)
{
    size_t n = ws->n, r = ws->qr;
    for (size_t i = 0; i < n; i++)
        rhs[i] *= ws->rw[i];
    for (size_t k = 0; k < r; k++) {
        const double *h = ws->qa + ws->qact[k] * n;
        double t = cblas_ddot((int)(n - k), h + k, 1, rhs + k, 1) * ws->qh[k];
        cblas_daxpy((int)(n - k), -t, h + k, 1, rhs + k, 1);
    }
    for (size_t j = 0; j < ncol; j++)
        coef[j] = 0;
    for (size_t k = r; k-- > 0;) {
        double s = rhs[k];
        for (size_t l = k + 1; l < r; l++)
            s -= ws->qa[ws->qact[l] * n + k] * rhs[l];
        rhs[k] = s / ws->qd[k];
    }
    for (size_t k = 0; k < r; k++)
        coef[ws->qact[k]] = rhs[k] * ws->qs[ws->qact[k]];
}

/* ---- likelihood --------------------------------------------------------- */

/* Log-likelihood at beta; with need >= 1 also the row gradients u, with
 * need >= 2 the row Hessians W.  Returns -INFINITY when not finite. */
static double loglik(bh_dirichlet_workspace *ws, const double *beta, int need)
{
    size_t n = ws->n, K = ws->K, L = ws->L;
    for (size_t b = 0; b < L; b++) {
        size_t nc, c0;
        const double *X = block_x(ws, b, &nc, &c0);
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)nc, 1.0, X,
                    (int)n, beta + c0, 1, 0.0, ws->eta + b * n, 1);
    }
    long double ll = 0;
    double g[BH_DIRICHLET_MAX_K], q[BH_DIRICHLET_MAX_K];
    for (size_t i = 0; i < n; i++) {
        double wi = wi_of(ws, i);
        if (!(wi > 0)) {
            for (size_t b = 0; b < L && need; b++)
                ws->u[b * n + i] = 0;
            continue;
        }
        double A, li;
        if (!ws->alt) {
            A = 0;
            for (size_t c = 0; c < K; c++) {
                double a = exp(ws->eta[c * n + i]);
                ws->alpha[c * n + i] = a;
                A += a;
            }
            for (size_t c = 0; c < K; c++)
                ws->mu[c * n + i] = ws->alpha[c * n + i] / A;
        } else {
            /* Softmax with the base at 0, largest predictor subtracted. */
            double mx = 0, s = 0;
            for (size_t b = 0; b + 1 < L; b++)
                if (ws->eta[b * n + i] > mx)
                    mx = ws->eta[b * n + i];
            for (size_t c = 0; c < K; c++) {
                double et = c == ws->base ? 0.0
                          : ws->eta[(c < ws->base ? c : c - 1) * n + i];
                double ex = exp(et - mx);
                ws->mu[c * n + i] = ex;
                s += ex;
            }
            A = exp(ws->eta[(L - 1) * n + i]);
            for (size_t c = 0; c < K; c++) {
                ws->mu[c * n + i] /= s;
                ws->alpha[c * n + i] = ws->mu[c * n + i] * A;
            }
        }
        li = lgamma(A);
        for (size_t c = 0; c < K; c++) {
            double a = ws->alpha[c * n + i];
            li += (a - 1) * ws->ly[c * n + i] - lgamma(a);
        }
        if (!isfinite(li) || !(A > 0) || !isfinite(A))
            return -INFINITY;
        ll += (long double)wi * li;
        if (!need)
            continue;
        double psA = gsl_sf_psi(A);
        double G = 0, Q = 0, T = 0;
        for (size_t c = 0; c < K; c++) {
            double a = ws->alpha[c * n + i];
            g[c] = psA - gsl_sf_psi(a) + ws->ly[c * n + i];
            G += a * g[c];
        }
        if (!ws->alt) {
            for (size_t c = 0; c < K; c++)
                ws->u[c * n + i] = ws->alpha[c * n + i] * g[c];
        } else {
            for (size_t b = 0; b + 1 < L; b++) {
                size_t c = alt_comp(ws, b);
                ws->u[b * n + i] = ws->alpha[c * n + i] * g[c] -
                                   ws->mu[c * n + i] * G;
            }
            ws->u[(L - 1) * n + i] = G;
        }
        if (need < 2)
            continue;
        double *Wi = ws->W + i * (L * (L + 1) / 2);
        if (!ws->alt) {
            double p1A = gsl_sf_psi_1(A);
            for (size_t c = 0; c < K; c++) {
                double ac = ws->alpha[c * n + i];
                for (size_t dd = c; dd < K; dd++)
                    Wi[pk(L, c, dd)] = ac * ws->alpha[dd * n + i] * p1A;
                Wi[pk(L, c, c)] += ws->u[c * n + i] -
                                   ac * ac * gsl_sf_psi_1(ac);
            }
        } else {
            /* t_c replaces g_c; q_c = alpha_c^2 psi1(alpha_c). */
            for (size_t c = 0; c < K; c++) {
                double a = ws->alpha[c * n + i];
                q[c] = a * a * gsl_sf_psi_1(a);
                Q += q[c];
                g[c] = a * g[c] - q[c];
                T += g[c];
            }
            for (size_t bk = 0; bk + 1 < L; bk++) {
                size_t k = alt_comp(ws, bk);
                double mk = ws->mu[k * n + i];
                for (size_t bl = bk; bl + 1 < L; bl++) {
                    size_t l = alt_comp(ws, bl);
                    double ml = ws->mu[l * n + i];
                    double v = -g[k] * ml - g[l] * mk + mk * ml * (T + G);
                    if (bk == bl)
                        v += g[k] - mk * G;
                    Wi[pk(L, bk, bl)] = v;
                }
                Wi[pk(L, bk, L - 1)] = ws->u[bk * n + i] - q[k] + mk * Q;
            }
            Wi[pk(L, L - 1, L - 1)] = A * A * gsl_sf_psi_1(A) - Q + G;
        }
    }
    return isfinite((double)ll) ? (double)ll : -INFINITY;
}

/* Coefficient gradient from the row gradients (after loglik need >= 1). */
static void gradient(bh_dirichlet_workspace *ws)
{
    size_t n = ws->n;
    double *v = ws->tmp;
    for (size_t b = 0; b < ws->L; b++) {
        size_t nc, c0;
        const double *X = block_x(ws, b, &nc, &c0);
        for (size_t i = 0; i < n; i++)
            v[i] = wi_of(ws, i) * ws->u[b * n + i];
        cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)nc, 1.0, X,
                    (int)n, v, 1, 0.0, ws->grad + c0, 1);
    }
    for (size_t j = 0; j < ws->P; j++)
        if (ws->alias[j])
            ws->grad[j] = 0;
}

/* Coefficient Hessian H (P x P, column-major) from the row Hessians. */
static void hessian(bh_dirichlet_workspace *ws)
{
    size_t n = ws->n, L = ws->L, P = ws->P, LL = L * (L + 1) / 2;
    for (size_t a = 0; a < L; a++) {
        size_t na, ca;
        const double *Xa = block_x(ws, a, &na, &ca);
        for (size_t b = a; b < L; b++) {
            size_t nb, cb;
            const double *Xb = block_x(ws, b, &nb, &cb);
            size_t k = pk(L, a, b);
            for (size_t j = 0; j < na; j++)
                for (size_t i = 0; i < n; i++) {
                    double wi = wi_of(ws, i);
                    ws->tmp[j * n + i] = wi > 0 ? wi * ws->W[i * LL + k] *
                                                  Xa[j * n + i] : 0.0;
                }
            /* H[cb.., ca..] = Xb' T */
            cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)nb,
                        (int)na, (int)n, 1.0, Xb, (int)n, ws->tmp, (int)n,
                        0.0, ws->H + ca * P + cb, (int)P);
            for (size_t j = 0; j < na; j++)
                for (size_t l = 0; l < nb; l++)
                    ws->H[(cb + l) * P + ca + j] = ws->H[(ca + j) * P + cb + l];
        }
    }
}

/* Equilibrated -H on the free coefficients into M (nfree x nfree) with
 * its scaling in dsc, plus shift on the diagonal; Cholesky in place.
 * Returns 0 on success. */
static int info_chol(bh_dirichlet_workspace *ws, double shift)
{
    size_t r = ws->nfree, P = ws->P;
    for (size_t a = 0; a < r; a++) {
        double h = -ws->H[ws->fr[a] * P + ws->fr[a]];
        if (!(h > 0) || !isfinite(h))
            h = 1.0; /* not PD anyway: the shift or the Cholesky decides */
        ws->dsc[a] = 1 / sqrt(h);
    }
    for (size_t a = 0; a < r; a++)
        for (size_t b = 0; b < r; b++)
            ws->M[a * r + b] = -ws->H[ws->fr[a] * P + ws->fr[b]] *
                               ws->dsc[a] * ws->dsc[b] +
                               (a == b ? shift : 0.0);
    gsl_matrix_view mv = gsl_matrix_view_array(ws->M, r, r);
    return gsl_linalg_cholesky_decomp1(&mv.matrix) != GSL_SUCCESS;
}

/* step = (-H)^-1 grad on the free coefficients from the factor in M. */
static void chol_step(bh_dirichlet_workspace *ws)
{
    size_t r = ws->nfree;
    for (size_t a = 0; a < r; a++)
        ws->rhs[a] = ws->grad[ws->fr[a]] * ws->dsc[a];
    gsl_matrix_view mv = gsl_matrix_view_array(ws->M, r, r);
    gsl_vector_view rv = gsl_vector_view_array(ws->rhs, r);
    gsl_linalg_cholesky_svx(&mv.matrix, &rv.vector);
    memset(ws->step, 0, ws->P * sizeof *ws->step);
    for (size_t a = 0; a < r; a++)
        ws->step[ws->fr[a]] = ws->rhs[a] * ws->dsc[a];
}

/* ---- BFGS on the scaled free coefficients ----------------------------- */

static void unscale(const bh_dirichlet_workspace *ws, const gsl_vector *x,
                    double *beta)
{
    memset(beta, 0, ws->P * sizeof *beta);
    for (size_t a = 0; a < ws->nfree; a++)
        beta[ws->fr[a]] = gsl_vector_get(x, a) / ws->scale[ws->fr[a]];
}

static void bfgs_fdf(const gsl_vector *x, void *params, double *f,
                     gsl_vector *df)
{
    bh_dirichlet_workspace *ws = params;
    unscale(ws, x, ws->btry);
    double ll = loglik(ws, ws->btry, df != NULL);
    double v = isfinite(ll) ? -ll / ws->nobs : GSL_POSINF;
    if (f)
        *f = v;
    if (df) {
        if (isfinite(ll))
            gradient(ws);
        for (size_t a = 0; a < ws->nfree; a++) {
            size_t j = ws->fr[a];
            gsl_vector_set(df, a, isfinite(ll) ? -ws->grad[j] /
                                  (ws->nobs * ws->scale[j]) : 0.0);
        }
    }
    if (v < ws->fbest) {
        ws->fbest = v;
        memcpy(ws->best, ws->btry, ws->P * sizeof *ws->best);
    }
}

static double bfgs_f(const gsl_vector *x, void *params)
{
    double f;
    bfgs_fdf(x, params, &f, NULL);
    return f;
}

static void bfgs_df(const gsl_vector *x, void *params, gsl_vector *df)
{
    double f;
    bfgs_fdf(x, params, &f, df);
}

/* Runs BFGS from ws->beta; leaves the best point seen in ws->beta.
 * Returns BH_ENOMEM if the minimiser cannot be allocated. */
static bh_status bfgs(bh_dirichlet_workspace *ws)
{
    size_t r = ws->nfree;
    ws->bfgs_iter = 0;
    if (ws->opt.bfgs_maxiter == 0 || r == 0)
        return BH_OK;
    if (ws->mmdim != r) {
        if (ws->mm)
            gsl_multimin_fdfminimizer_free(ws->mm);
        if (ws->mx)
            gsl_vector_free(ws->mx);
        ws->mm = gsl_multimin_fdfminimizer_alloc(
            gsl_multimin_fdfminimizer_vector_bfgs2, r);
        ws->mx = gsl_vector_alloc(r);
        ws->mmdim = r;
        if (!ws->mm || !ws->mx) {
            ws->mmdim = 0;
            return BH_ENOMEM;
        }
    }
    for (size_t a = 0; a < r; a++)
        gsl_vector_set(ws->mx, a, ws->beta[ws->fr[a]] * ws->scale[ws->fr[a]]);
    gsl_multimin_function_fdf fn = {bfgs_f, bfgs_df, bfgs_fdf, r, ws};
    ws->fbest = INFINITY;
    memcpy(ws->best, ws->beta, ws->P * sizeof *ws->best);
    if (gsl_multimin_fdfminimizer_set(ws->mm, &fn, ws->mx, DIR_BFGS_STEP,
                                      DIR_BFGS_LSTOL) != GSL_SUCCESS)
        return BH_OK; /* Newton starts from the starting values */
    while (ws->bfgs_iter < ws->opt.bfgs_maxiter) {
        ws->bfgs_iter++;
        if (gsl_multimin_fdfminimizer_iterate(ws->mm) != GSL_SUCCESS)
            break;
        if (gsl_multimin_test_gradient(ws->mm->gradient, ws->opt.bfgs_gtol) ==
            GSL_SUCCESS)
            break;
    }
    if (isfinite(ws->fbest))
        memcpy(ws->beta, ws->best, ws->P * sizeof *ws->beta);
    return BH_OK;
}

/* ---- Newton ------------------------------------------------------------- */

/* Newton with halving from ws->beta; on return H and grad are at ws->beta
 * and ws->info_ok says whether -H is positive definite there. */
static void newton(bh_dirichlet_workspace *ws)
{
    size_t P = ws->P;
    ws->iter = 0;
    ws->converged = 0;
    ws->halving_failed = 0;
    ws->decrement = NAN;
    for (;;) {
        ws->ll = loglik(ws, ws->beta, 2);
        gradient(ws);
        hessian(ws);
        ws->info_ok = info_chol(ws, 0.0) == 0;
        if (ws->info_ok) {
            chol_step(ws);
            double dec = 0;
            for (size_t j = 0; j < P; j++)
                dec += ws->grad[j] * ws->step[j];
            ws->decrement = dec;
            if (dec <= ws->opt.tol) {
                ws->converged = 1;
                return;
            }
        }
        if (ws->iter >= ws->opt.maxiter || ws->halving_failed)
            return;
        if (!ws->info_ok) {
            /* Levenberg: shift the equilibrated information. */
            double sh = DIR_LM_SHIFT0;
            while (info_chol(ws, sh) && sh < DIR_LM_SHIFT_MAX)
                sh *= DIR_LM_GROW;
            if (sh >= DIR_LM_SHIFT_MAX) {
                ws->halving_failed = 1;
                return;
            }
            chol_step(ws);
        }
        ws->iter++;
        double t = 1.0, slack = DIR_LL_SLACK * (1 + fabs(ws->ll));
        unsigned h = 0;
        for (;; h++) {
            for (size_t j = 0; j < P; j++)
                ws->btry[j] = ws->beta[j] + t * ws->step[j];
            double lt = loglik(ws, ws->btry, 0);
            if (isfinite(lt) && lt >= ws->ll - slack)
                break;
            if (h >= DIR_MAX_HALVINGS) {
                ws->halving_failed = 1;
                break;
            }
            t *= 0.5;
        }
        if (!ws->halving_failed)
            memcpy(ws->beta, ws->btry, P * sizeof *ws->beta);
    }
}

/* ---- data --------------------------------------------------------------- */

static bh_status check_shares(bh_dirichlet_workspace *ws, size_t *nbound,
                              double *maxdev, size_t *maxrow, bh_error *err)
{
    const bh_design *d = ws->d;
    size_t n = ws->n, K = ws->K;
    const char *src = d->source;
    char nb[32];
    *nbound = 0;
    *maxdev = 0;
    *maxrow = 0;
    for (size_t i = 0; i < n; i++) {
        long double s = 0;
        for (size_t c = 0; c < K; c++) {
            double v = d->y[c * n + i];
            if (!isfinite(v) || v < 0 || v > 1)
                return bh_error_at(err, BH_EDATA, src, 0, 0,
                                   "dirichlet: share %s is %.17g in data "
                                   "row %zu; shares must lie in [0, 1]",
                                   yname(d, c, nb, sizeof nb), v,
                                   bh_design_data_row(d, i));
            s += v;
        }
        double dev = fabs((double)s - 1.0);
        if (!(dev <= ws->opt.sum_tol)) {
            char list[512];
            size_t len = 0;
            list[0] = 0;
            for (size_t c = 0; c < K && len < sizeof list; c++)
                len += (size_t)snprintf(list + len, sizeof list - len,
                                        "%s%s = %.10g", c ? ", " : "",
                                        yname(d, c, nb, sizeof nb),
                                        d->y[c * n + i]);
            return bh_error_at(err, BH_EDATA, src, 0, 0,
                               "dirichlet: the shares in data row %zu sum to "
                               "%.10g (%s), more than %g away from 1 (raise "
                               "the tolerance sum_tol for rounded shares, "
                               "e.g. 0.015 for 3 shares rounded to 2 "
                               "decimals)", bh_design_data_row(d, i), (double)s, list,
                               ws->opt.sum_tol);
        }
        if (dev > *maxdev) {
            *maxdev = dev;
            *maxrow = bh_design_data_row(d, i);
        }
        for (size_t c = 0; c < K; c++) {
            double v = d->y[c * n + i] / (double)s;
            ws->y[c * n + i] = v;
            if (v <= 0 || v >= 1) {
                if (!ws->opt.squeeze)
                    return bh_error_at(err, BH_EDATA, src, 0, 0,
                                       "dirichlet: share %s is %g in data "
                                       "row %zu; the Dirichlet distribution "
                                       "needs shares strictly between 0 and "
                                       "1 (ask for the Smithson-Verkuilen "
                                       "squeeze to transform all shares)",
                                       yname(d, c, nb, sizeof nb),
                                       d->y[c * n + i], bh_design_data_row(d, i));
                (*nbound)++;
            }
        }
    }
    return BH_OK;
}

/* ---- driver ------------------------------------------------------------- */

static bh_status result(bh_dirichlet_workspace *ws, size_t nbound,
                        double maxdev, size_t maxrow, bh_fit **out);

bh_status bh_dirichlet_fit(const bh_design *d, const bh_dirichlet_options *opt,
                           bh_dirichlet_workspace *ws, bh_fit **out,
                           bh_error *err)
{
    *out = NULL;
    bh_dirichlet_options defopt;
    if (!opt) {
        bh_dirichlet_default_options(&defopt);
        opt = &defopt;
    }
    if (!d || !d->x)
        return bh_error_set(err, BH_EINTERNAL, "dirichlet: design without data");
    char nb[32];
    size_t n = d->n, p = d->p, K = d->m;
    int alt = opt->param == BH_DIRICHLET_ALTERNATIVE;
    if (K < 2 || !d->y)
        return bh_error_set(err, BH_EDATA,
                            "dirichlet: needs at least 2 shares on the "
                            "left-hand side (e.g. share_a + share_b + share_c "
                            "~ x); the model has %zu", K);
    if (K > BH_DIRICHLET_MAX_K)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: %zu shares; at most %d are supported",
                            K, BH_DIRICHLET_MAX_K);
    if (opt->param != BH_DIRICHLET_COMMON && !alt)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: unknown parametrisation %d",
                            (int)opt->param);
    if (!alt && d->z)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: the common parametrisation has no "
                            "precision model; drop the '| ...' part of the "
                            "formula or use the alternative parametrisation");
    if (alt && opt->base >= K)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: base component %zu requested, the "
                            "model has %zu shares", opt->base + 1, K);
    if (d->offset)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: offsets are not supported");
    if (d->nre)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: random effects are not supported");
    if (!(opt->sum_tol >= 0) || !(opt->tol > 0) || opt->maxiter == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: sum_tol (%g) must be non-negative, tol "
                            "(%g) positive and maxiter (%zu) at least 1",
                            opt->sum_tol, opt->tol, opt->maxiter);
    if (p == 0)
        return bh_error_set(err, BH_EUSAGE, "dirichlet: the model has no columns");
    size_t pz = alt ? (d->z ? d->pz : 1) : 0;
    if (alt && pz == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: the precision model has no columns");
    bh_dirichlet_workspace *own = NULL;
    if (!ws) {
        ws = own = bh_dirichlet_workspace_alloc(n, p, pz, K);
        if (!ws)
            return bh_error_set(err, BH_ENOMEM,
                                "dirichlet: out of memory (%zu rows, %zu "
                                "columns, %zu shares)", n, p, K);
    }
    bh_status st = BH_OK;
    if (ws->nmax < n || ws->pmax < p || ws->Kmax < K ||
        (alt && ws->pzmax < pz) ||
        ws->Pmax < coef_count(alt, K, p, pz)) {
        st = bh_error_set(err, BH_EUSAGE,
                          "dirichlet: workspace for %zu rows, %zu + %zu "
                          "columns, %zu shares is too small for %zu, %zu + "
                          "%zu, %zu", ws->nmax, ws->pmax, ws->pzmax, ws->Kmax,
                          n, p, pz, K);
        goto done;
    }
    ws->d = d;
    ws->opt = *opt;
    ws->n = n;
    ws->p = p;
    ws->K = K;
    ws->alt = alt;
    ws->pz = pz;
    ws->implicit_z = alt && !d->z;
    ws->base = alt ? opt->base : 0;
    ws->L = K;
    ws->P = coef_count(alt, K, p, pz);
    ws->w = d->w;
    ws->freq = d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY;

    /* Weights and designs. */
    size_t nok = 0;
    double wsum = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = wi_of(ws, i);
        if (!isfinite(wi) || wi < 0) {
            st = bh_error_at(err, BH_EDATA, d->source, 0, 0,
                             "dirichlet: weight %s is %g in data row %zu; "
                             "weights must be finite and non-negative",
                             d->weights_name ? d->weights_name : "", wi,
                             bh_design_data_row(d, i));
            goto done;
        }
        ws->rw[i] = sqrt(wi);
        if (wi > 0) {
            nok++;
            wsum += wi;
        }
    }
    for (size_t b = 0; b < (alt ? 2u : 1u); b++) {
        const double *X = b ? (ws->implicit_z ? ws->ones : d->z) : d->x;
        size_t nc = b ? pz : p;
        for (size_t j = 0; j < nc; j++)
            for (size_t i = 0; i < n; i++)
                if (!isfinite(X[j * n + i])) {
                    st = bh_error_at(err, BH_EDATA, d->source, 0, 0,
                                     "dirichlet: %s column %s is %g in data "
                                     "row %zu; values must be finite",
                                     b ? "precision" : "model",
                                     b ? zname(ws, j, nb, sizeof nb)
                                       : bh_design_colname(ws->d, ws->opt.colnames, j, nb, sizeof nb),
                                     X[j * n + i], bh_design_data_row(d, i));
                    goto done;
                }
    }
    if (nok == 0) {
        st = bh_error_set(err, BH_EDATA,
                          "dirichlet: no observations with positive weight");
        goto done;
    }
    ws->nobs = ws->freq ? wsum : (double)nok;

    size_t nbound;
    double maxdev;
    size_t maxrow;
    if ((st = check_shares(ws, &nbound, &maxdev, &maxrow, err)))
        goto done;
    if (opt->squeeze) {
        double N = ws->nobs;
        for (size_t k = 0; k < n * K; k++)
            ws->y[k] = (ws->y[k] * (N - 1) + 1.0 / (double)K) / N;
    }
    for (size_t k = 0; k < n * K; k++)
        ws->ly[k] = log(ws->y[k]);

    /* Estimable columns; coefficient scales (column RMS). */
    unsigned char *zal = ws->alias + (K - 1) * p; /* scratch for Z flags */
    memset(ws->alias, 0, ws->P);
    size_t rz = pz;
    if (alt) {
        rz = qr_factor(ws, ws->implicit_z ? ws->ones : d->z, pz, zal);
        for (size_t j = 0; j < pz; j++) {
            const double *c = (ws->implicit_z ? ws->ones : d->z) + j * n;
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += ws->rw[i] * ws->rw[i] * c[i] * c[i];
            double rms = sqrt(s / wsum);
            ws->scale[(K - 1) * p + j] = rms > 0 ? rms : 1.0;
        }
    }
    size_t rx = qr_factor(ws, d->x, p, ws->alias);
    if (rx == 0 || (alt && rz == 0)) {
        st = bh_error_set(err, BH_EDATA,
                          "dirichlet: no estimable column (all are zero on "
                          "the rows with positive weight)");
        goto done;
    }
    size_t nmean = alt ? K - 1 : K;
    for (size_t j = 0; j < p; j++) {
        const double *c = d->x + j * n;
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += ws->rw[i] * ws->rw[i] * c[i] * c[i];
        double rms = sqrt(s / wsum);
        for (size_t b = 0; b < nmean; b++) {
            ws->alias[b * p + j] = ws->alias[j];
            ws->scale[b * p + j] = rms > 0 ? rms : 1.0;
        }
    }
    ws->nfree = 0;
    for (size_t j = 0; j < ws->P; j++)
        if (!ws->alias[j])
            ws->fr[ws->nfree++] = j;

    /* Starting values. */
    if (opt->start) {
        for (size_t j = 0; j < ws->P; j++) {
            if (!ws->alias[j] && !isfinite(opt->start[j])) {
                st = bh_error_set(err, BH_EUSAGE,
                                  "dirichlet: starting value %zu is %g",
                                  j + 1, opt->start[j]);
                goto done;
            }
            ws->beta[j] = ws->alias[j] ? 0 : opt->start[j];
        }
    } else {
        /* Log-ratio least squares for the means (QR of X is current). */
        size_t base = ws->base;
        double *coef = ws->btry;
        double *eta = ws->eta; /* n x K scratch: log-ratio fits */
        for (size_t c = 0; c < K; c++) {
            if (c == base) {
                for (size_t i = 0; i < n; i++)
                    eta[c * n + i] = 0;
                continue;
            }
            double *r = ws->tmp;
            for (size_t i = 0; i < n; i++)
                r[i] = ws->ly[c * n + i] - ws->ly[base * n + i];
            qr_solve(ws, r, p, coef);
            cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)p, 1.0,
                        d->x, (int)n, coef, 1, 0.0, eta + c * n, 1);
            if (alt) {
                size_t b = c < base ? c : c - 1;
                memcpy(ws->beta + b * p, coef, p * sizeof *coef);
            }
        }
        /* Softmax means and a moment precision: Var y_c = mu(1-mu)/(phi+1). */
        long double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
            double mx = 0, s = 0;
            for (size_t c = 0; c < K; c++)
                if (eta[c * n + i] > mx)
                    mx = eta[c * n + i];
            for (size_t c = 0; c < K; c++)
                s += exp(eta[c * n + i] - mx);
            double wi = wi_of(ws, i);
            for (size_t c = 0; c < K; c++) {
                double m = exp(eta[c * n + i] - mx) / s;
                ws->mu[c * n + i] = m;
                double e = ws->y[c * n + i] - m;
                num += wi * m * (1 - m);
                den += wi * e * e;
            }
        }
        double phi0 = den > 0 ? (double)(num / den) - 1 : DIR_PHI_MAX;
        if (!(phi0 >= DIR_PHI_MIN))
            phi0 = DIR_PHI_MIN;
        if (phi0 > DIR_PHI_MAX)
            phi0 = DIR_PHI_MAX;
        if (!alt) {
            for (size_t c = 0; c < K; c++) {
                double *r = ws->tmp;
                for (size_t i = 0; i < n; i++)
                    r[i] = log(phi0 * ws->mu[c * n + i]);
                qr_solve(ws, r, p, ws->beta + c * p);
            }
        } else {
            /* Precision: least squares of log phi0 on Z (refactor Z). */
            qr_factor(ws, ws->implicit_z ? ws->ones : d->z, pz, zal);
            double *r = ws->tmp;
            for (size_t i = 0; i < n; i++)
                r[i] = log(phi0);
            qr_solve(ws, r, pz, ws->beta + (K - 1) * p);
        }
        for (size_t j = 0; j < ws->P; j++)
            if (ws->alias[j] || !isfinite(ws->beta[j]))
                ws->beta[j] = 0;
    }
    if (!isfinite(loglik(ws, ws->beta, 0))) {
        st = bh_error_set(err, BH_ENUMERIC,
                          "dirichlet: the log-likelihood is not finite at the "
                          "starting values");
        goto done;
    }

    /* BFGS before Newton when asked, or (AUTO) when Newton from the
     * starting values does not converge: then BFGS from the starting
     * values and Newton again from BFGS's best point. */
    int use_bfgs = opt->bfgs == BH_DIRICHLET_BFGS_ALWAYS;
    if (opt->bfgs == BH_DIRICHLET_BFGS_AUTO) {
        memcpy(ws->best, ws->beta, ws->P * sizeof *ws->beta);
        newton(ws);
        if (!ws->converged) {
            use_bfgs = 1;
            memcpy(ws->beta, ws->best, ws->P * sizeof *ws->beta);
        }
    }
    if (use_bfgs) {
        if (bfgs(ws)) {
            st = bh_error_set(err, BH_ENOMEM, "dirichlet: out of memory (BFGS)");
            goto done;
        }
        size_t it0 = opt->bfgs == BH_DIRICHLET_BFGS_AUTO ? ws->iter : 0;
        newton(ws);
        ws->iter += it0;
    } else if (opt->bfgs == BH_DIRICHLET_BFGS_NEVER)
        newton(ws);
    if (result(ws, nbound, maxdev, maxrow, out))
        st = bh_error_set(err, BH_ENOMEM, "dirichlet: out of memory");
done:
    bh_dirichlet_workspace_free(own);
    return st;
}

static int append_name(char **s, size_t *len, const char *name)
{
    size_t L = strlen(name);
    char *t = realloc(*s, *len + L + 3);
    if (!t)
        return 1;
    if (*len) {
        memcpy(t + *len, ", ", 2);
        *len += 2;
    }
    memcpy(t + *len, name, L + 1);
    *len += L;
    *s = t;
    return 0;
}

/* Package the state as a fit (also when not converged). */
static bh_status result(bh_dirichlet_workspace *ws, size_t nbound,
                        double maxdev, size_t maxrow, bh_fit **out)
{
    const bh_design *d = ws->d;
    size_t n = ws->n, K = ws->K, L = ws->L, P = ws->P, p = ws->p;
    size_t r = ws->nfree;
    char nb[32];
    /* The precision block of an intercept-only alternative needs a column
     * of ones that outlives the fit: X's constant column if it has one,
     * else explicit scores. */
    const double *zcol = ws->alt ? d->z : NULL;
    int explicit = 0;
    if (ws->implicit_z) {
        for (size_t j = 0; j < p && !zcol; j++) {
            const double *c = d->x + j * n;
            size_t i = 0;
            while (i < n && c[i] == 1.0)
                i++;
            if (i == n)
                zcol = c;
        }
        explicit = zcol == NULL;
    }
    bh_fit *fit = NULL;
    int recycled = 0;
    if (explicit) {
        /* rare (no constant column anywhere): a fresh fit every time */
        if (!(fit = bh_fit_alloc(P, n, K, 0)))
            return BH_ENOMEM;
        if (!(fit->scores = malloc(n * P * sizeof *fit->scores)))
            goto nomem;
    } else {
        /* Per-row arrays of the workspace's rows, so that the next fit
         * with this workspace can take them back from a recycled result
         * (one block per component: the same K); every row used is
         * written below. */
        size_t rcap = ws->nmax ? ws->nmax : 1;
        bh_fit *rec = ws->opt.recycle;
        if (rec && bh_fit_recycle_rows(rec, P, L, rcap) >= 0) {
            fit = rec;
            recycled = 1;
        } else if (!(fit = bh_fit_alloc(P, 0, K, L)))
            return BH_ENOMEM;
        fit->nrows = n;
        fit->rows_cap = rcap;
        if ((!fit->fitted && !(fit->fitted = malloc(rcap * K * sizeof *fit->fitted))) ||
            (!fit->resid && !(fit->resid = malloc(rcap * K * sizeof *fit->resid))) ||
            (!fit->u && !(fit->u = malloc(rcap * L * sizeof *fit->u))))
            goto nomem;
    }

    /* Bread: inverse of the equilibrated information from its Cholesky. */
    if (ws->info_ok) {
        info_chol(ws, 0.0);
        gsl_matrix_view mv = gsl_matrix_view_array(ws->M, r, r);
        if (gsl_linalg_cholesky_invert(&mv.matrix) != GSL_SUCCESS)
            ws->info_ok = 0;
        for (size_t a = 0; a < r && ws->info_ok; a++)
            for (size_t b = 0; b < r; b++)
                fit->bread[ws->fr[a] * P + ws->fr[b]] =
                    ws->M[a * r + b] * ws->dsc[a] * ws->dsc[b];
    }
    for (size_t k = 0; k < P * P; k++)
        fit->vcov[k] = fit->bread[k];

    /* Names, estimates. */
    for (size_t j = 0; j < P; j++) {
        fit->aliased[j] = ws->alias[j];
        fit->beta[j] = ws->alias[j] ? NAN : ws->beta[j];
        size_t b = j / p, col = j % p;
        const char *term, *comp;
        if (ws->alt && j >= (K - 1) * p) {
            col = j - (K - 1) * p;
            term = zname(ws, col, nb, sizeof nb);
            comp = "(phi)";
            if (bh_fit_set_string(&fit->term[j], term) ||
                bh_fit_set_string(&fit->component[j], comp))
                goto nomem;
            continue;
        }
        term = bh_design_colname(ws->d, ws->opt.colnames, col, nb, sizeof nb);
        if (bh_fit_set_string(&fit->term[j], term))
            goto nomem;
        comp = yname(d, ws->alt ? alt_comp(ws, b) : b, nb, sizeof nb);
        if (bh_fit_set_string(&fit->component[j], comp))
            goto nomem;
    }

    /* Scores: multipliers w u (sqrt(w) u for frequency weights). */
    for (size_t b = 0; b < L; b++)
        for (size_t i = 0; i < n; i++) {
            double wi = wi_of(ws, i), v = 0;
            if (wi > 0)
                v = (ws->freq ? sqrt(wi) : wi) * ws->u[b * n + i];
            if (explicit) {
                size_t nc, c0;
                const double *X = block_x(ws, b, &nc, &c0);
                for (size_t j = 0; j < nc; j++)
                    fit->scores[(c0 + j) * n + i] = X[j * n + i] * v;
            } else
                fit->u[b * n + i] = v;
        }
    for (size_t b = 0; b < L && !explicit; b++) {
        size_t nc, c0;
        const double *X = block_x(ws, b, &nc, &c0);
        if (ws->implicit_z && b == L - 1)
            X = zcol;
        fit->blocks[b].x = X;
        fit->blocks[b].ncol = nc;
        fit->blocks[b].coef0 = c0;
    }
    for (size_t k = 0; k < n * K; k++) {
        fit->fitted[k] = ws->mu[k];
        fit->resid[k] = ws->y[k] - ws->mu[k];
    }

    fit->design = d;
    fit->linear = 0;
    fit->rank = r;
    fit->nobs = ws->freq ? (size_t)llround(ws->nobs) : (size_t)ws->nobs;
    fit->ndropped = d->ndropped;
    fit->converged = ws->converged && ws->info_ok;
    fit->iterations = ws->iter;
    fit->dispersion = 1;
    fit->df_inference = INFINITY;
    snprintf(fit->vcov_type, sizeof fit->vcov_type, "classical");
    if (bh_fit_set_string(&fit->family, "dirichlet") ||
        bh_fit_set_string(&fit->link, ws->alt ? "logit/log" : "log") ||
        bh_fit_set_string(&fit->method, "ml"))
        goto nomem;
    /* A recycled fit keeps the name and formula its owner gave it. */
    if (!recycled && bh_fit_set_string(&fit->name, "(1)"))
        goto nomem;
    if (!recycled && d->terms && d->terms->formula && d->terms->formula->text &&
        bh_fit_set_string(&fit->formula, d->terms->formula->text))
        goto nomem;
    bh_fit_stats *S = &fit->stats;
    double k = (double)r;
    S->loglik = ws->ll;
    S->aic = -2 * ws->ll + 2 * k;
    S->bic = -2 * ws->ll + log(ws->nobs) * k;
    S->df_model = k;
    S->df_resid = ws->nobs - k;

    /* Warnings. */
    if (ws->opt.squeeze &&
        bh_fit_warn(fit, "squeezed: every share transformed as Smithson & "
                    "Verkuilen, y' = (y (n - 1) + 1/K) / n with n = %.15g, "
                    "K = %zu (%zu share%s of exactly 0 or 1); the "
                    "log-likelihood is that of the transformed shares",
                    ws->nobs, K, nbound, nbound == 1 ? "" : "s"))
        goto nomem;
    if (maxdev > BH_DIRICHLET_SUM_QUIET &&
        bh_fit_warn(fit, "normalised: shares that summed to within %g of 1 "
                    "were divided by their sum (largest |sum - 1| = %.3g, "
                    "data row %zu)", ws->opt.sum_tol, maxdev, maxrow))
        goto nomem;
    if (!ws->converged && ws->info_ok &&
        bh_fit_warn(fit, "the Newton iterations did not converge in %zu "
                    "iterations (squared Newton decrement %.3g, tolerance "
                    "%g)%s", ws->iter, ws->decrement, ws->opt.tol,
                    ws->halving_failed ? "; step halving could not raise "
                    "the log-likelihood" : ""))
        goto nomem;
    if (!ws->info_ok &&
        bh_fit_warn(fit, "the observed information is not positive definite "
                    "at the estimates (no maximum found): standard errors "
                    "are not available"))
        goto nomem;
    if (r < P) {
        char *names = NULL;
        size_t len = 0;
        for (size_t j = 0; j < p; j++)
            if (ws->alias[j] && append_name(&names, &len,
                                            bh_design_colname(ws->d, ws->opt.colnames, j, nb, sizeof nb))) {
                free(names);
                goto nomem;
            }
        char *znames = NULL;
        size_t zlen = 0;
        for (size_t j = 0; ws->alt && j < ws->pz; j++)
            if (ws->alias[(K - 1) * p + j] &&
                append_name(&znames, &zlen, zname(ws, j, nb, sizeof nb))) {
                free(names);
                free(znames);
                goto nomem;
            }
        bh_status st = BH_OK;
        if (names)
            st = bh_fit_warn(fit, "not estimable (collinear), in every "
                             "component: %s", names);
        if (!st && znames)
            st = bh_fit_warn(fit, "not estimable (collinear), precision "
                             "(phi): %s", znames);
        free(names);
        free(znames);
        if (st)
            goto nomem;
    }
    *out = fit;
    return BH_OK;
nomem:
    if (!recycled) /* a recycled fit stays the caller's */
        bh_fit_free(fit);
    return BH_ENOMEM;
}

/* ---- prediction --------------------------------------------------------- */

size_t bh_dirichlet_ncoef(const bh_dirichlet_layout *L)
{
    return coef_count(L->param == BH_DIRICHLET_ALTERNATIVE, L->K, L->p, L->pz);
}

bh_status bh_dirichlet_layout_of(const bh_fit *fit, bh_dirichlet_layout *L,
                                 bh_error *err)
{
    memset(L, 0, sizeof *L);
    const bh_design *d = fit ? fit->design : NULL;
    if (!fit || !fit->family || strcmp(fit->family, "dirichlet") != 0 || !d ||
        d->m < 2 || d->p == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: the fit is not a Dirichlet regression");
    L->K = d->m;
    L->p = d->p;
    L->aliased = fit->aliased;
    L->param = fit->link && strcmp(fit->link, "logit/log") == 0
                   ? BH_DIRICHLET_ALTERNATIVE : BH_DIRICHLET_COMMON;
    if (L->param == BH_DIRICHLET_COMMON) {
        if (fit->p != L->K * L->p)
            return bh_error_set(err, BH_EUSAGE,
                                "dirichlet: %zu coefficients do not match %zu "
                                "shares x %zu columns", fit->p, L->K, L->p);
        return BH_OK;
    }
    if (fit->p <= (L->K - 1) * L->p)
        return bh_error_set(err, BH_EUSAGE,
                            "dirichlet: %zu coefficients leave no precision "
                            "part", fit->p);
    L->pz = fit->p - (L->K - 1) * L->p;
    /* The base is the response without a mean block. */
    char nb[32];
    size_t b = 0;
    L->base = L->K - 1;
    for (size_t c = 0; c < L->K; c++) {
        if (b < L->K - 1 &&
            strcmp(fit->component[b * L->p], yname(d, c, nb, sizeof nb)) == 0)
            b++;
        else {
            L->base = c;
            break;
        }
    }
    return BH_OK;
}

void bh_dirichlet_eta(const bh_dirichlet_layout *L, const double *beta,
                      const double *x, size_t incx, double *eta)
{
    int alt = L->param == BH_DIRICHLET_ALTERNATIVE;
    size_t b = 0;
    for (size_t c = 0; c < L->K; c++) {
        if (alt && c == L->base) {
            eta[c] = 0;
            continue;
        }
        const double *bc = beta + b * L->p;
        const unsigned char *al = L->aliased ? L->aliased + b * L->p : NULL;
        double s = 0;
        for (size_t j = 0; j < L->p; j++)
            if (!al || !al[j])
                s += x[j * incx] * bc[j];
        eta[c] = s;
        b++;
    }
}

void bh_dirichlet_shares(size_t K, const double *eta, double *share,
                         double *jac)
{
    double mx = -INFINITY, s = 0;
    for (size_t c = 0; c < K; c++)
        if (eta[c] > mx)
            mx = eta[c];
    for (size_t c = 0; c < K; c++) {
        share[c] = exp(eta[c] - mx);
        s += share[c];
    }
    for (size_t c = 0; c < K; c++)
        share[c] /= s;
    if (jac)
        for (size_t c = 0; c < K; c++)
            for (size_t k = 0; k < K; k++)
                jac[c * K + k] = share[c] * ((c == k) - share[k]);
}

void bh_dirichlet_predict(const bh_dirichlet_layout *L, const double *beta,
                          const double *x, size_t ldx, size_t n,
                          double *share, double *jac)
{
    size_t K = L->K;
    double eta[BH_DIRICHLET_MAX_K], sh[BH_DIRICHLET_MAX_K];
    double jc[BH_DIRICHLET_MAX_K * BH_DIRICHLET_MAX_K];
    if (K > BH_DIRICHLET_MAX_K) {
        for (size_t k = 0; k < n * K; k++)
            share[k] = NAN;
        for (size_t k = 0; jac && k < n * K * K; k++)
            jac[k] = NAN;
    } else {
        int alt = L->param == BH_DIRICHLET_ALTERNATIVE;
        for (size_t i = 0; i < n; i++) {
            bh_dirichlet_eta(L, beta, x + i, ldx, eta);
            bh_dirichlet_shares(K, eta, sh, jac ? jc : NULL);
            for (size_t c = 0; c < K; c++)
                share[c * n + i] = sh[c];
            if (jac)
                for (size_t c = 0; c < K; c++)
                    for (size_t k = 0; k < K; k++)
                        jac[(c * K + k) * n + i] =
                            alt && k == L->base ? 0.0 : jc[c * K + k];
        }
    }
}
