/* glmm.c - binomial GLMM with one or two nested random intercepts:
 * Laplace approximation and adaptive Gauss-Hermite quadrature (see glmm.h).
 *
 * Notation: theta[0] is the SD of the top (coarser or only) grouping,
 * theta[1] that of the leaf grouping nested in it.  u are the spherical
 * random effects (N(0, 1)); b = theta u.  The negative Hessian of the
 * penalised log-likelihood in u is block diagonal over top groups, each
 * block an arrow (one top node, its leaves); it is never formed densely.
 * ell are the per-observation log-likelihood pieces: l1 = d ell / d eta,
 * d2 = -d2 ell / d eta2 (observed), W = the expected (IRLS) weight and
 * W1 = dW / d eta.
 */
#include "blackhole/glmm.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_math.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_sf_erf.h>
#include <gsl/gsl_sf_gamma.h>

#include "blackhole/buf.h"

/* lme4's isSingular() tolerance on theta. */
#define GLMM_SINGULAR_TOL 1e-4
/* Relative steps of the gradient differences: forward for the Newton
 * Hessian (only the direction depends on it), central for the covariance
 * (as lme4's deriv12, delta = 1e-4). */
#define GLMM_FD_NEWTON 1e-6
#define GLMM_FD_VCOV 1e-4
#define GLMM_MAX_HALVINGS 50
/* A "small" gradient at the optimum, for the diagnostic warning. */
#define GLMM_GRAD_WARN 1e-3

void bh_glmm_default_options(bh_glmm_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->link = BH_LINK_LOGIT;
    opt->nagq = 1;
    opt->tol = 1e-12;
    opt->maxiter = 200;
    opt->pirls_tol = 1e-11;
    opt->pirls_maxiter = 100;
}

/* ------------------------------------------------------ Gauss-Hermite */

/* Orthonormal Hermite polynomials (weight exp(-x^2)) h_0..h_k at x:
 * returns h_k, sets *hkm1 = h_{k-1} and *sumsq = sum_{j<k} h_j^2. */
static double hermite_on(size_t k, double x, double *hkm1, double *sumsq)
{
    double pm = 0, pc = 1 / sqrt(sqrt(M_PI)), ss = 0;
    for (size_t j = 0; j < k; j++) {
        ss += pc * pc;
        double pn = x * sqrt(2.0 / (double)(j + 1)) * pc -
                    sqrt((double)j / (double)(j + 1)) * pm;
        pm = pc;
        pc = pn;
    }
    *hkm1 = pm;
    *sumsq = ss;
    return pc;
}

bh_status bh_glmm_gauss_hermite(size_t k, double *x, double *w, bh_error *err)
{
    if (k < 1 || k > 100)
        return bh_error_set(err, BH_EUSAGE,
                            "Gauss-Hermite rule with %zu nodes: give 1 to 100",
                            k);
    gsl_matrix *J = gsl_matrix_calloc(k, k), *V = gsl_matrix_alloc(k, k);
    gsl_vector *ev = gsl_vector_alloc(k);
    gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc(k);
    bh_status st = BH_OK;
    if (!J || !V || !ev || !ew) {
        st = bh_error_set(err, BH_ENOMEM, "Gauss-Hermite: out of memory");
        goto done;
    }
    /* Jacobi matrix of the monic recurrence: zero diagonal, sqrt(j/2). */
    for (size_t j = 1; j < k; j++) {
        double b = sqrt((double)j / 2.0);
        gsl_matrix_set(J, j - 1, j, b);
        gsl_matrix_set(J, j, j - 1, b);
    }
    if (gsl_eigen_symmv(J, ev, V, ew) ||
        gsl_eigen_symmv_sort(ev, V, GSL_EIGEN_SORT_VAL_ASC)) {
        st = bh_error_set(err, BH_ENUMERIC,
                          "Gauss-Hermite: eigenvalue computation failed (%zu "
                          "nodes)", k);
        goto done;
    }
    for (size_t i = 0; i < k; i++) {
        double xi = gsl_vector_get(ev, i), hk1, ss;
        /* Newton polish: the eigenvalues are accurate to a few ulps of the
         * largest node only. */
        for (int it = 0; it < 10 && k > 1; it++) {
            double hk = hermite_on(k, xi, &hk1, &ss);
            double dx = hk / (sqrt(2.0 * (double)k) * hk1);
            xi -= dx;
            if (fabs(dx) <= 4 * DBL_EPSILON * (1 + fabs(xi)))
                break;
        }
        x[i] = xi;
    }
    /* Exact symmetry; the middle node of an odd rule is 0. */
    for (size_t i = 0; i < k / 2; i++) {
        double a = 0.5 * (x[k - 1 - i] - x[i]);
        x[i] = -a;
        x[k - 1 - i] = a;
    }
    if (k % 2)
        x[k / 2] = 0;
    for (size_t i = 0; i < k; i++) {
        double hk1, ss;
        hermite_on(k, x[i], &hk1, &ss);
        w[i] = 1 / ss;   /* Christoffel number: full relative accuracy */
    }
done:
    gsl_matrix_free(J);
    gsl_matrix_free(V);
    gsl_vector_free(ev);
    if (ew)
        gsl_eigen_symmv_free(ew);
    return st;
}

/* ------------------------------------------------------ workspace */

typedef struct {
    const bh_design *d;
    bh_glmm_options opt;
    size_t n, pe, L, K, npar;
    size_t *col;              /* pe estimated design columns              */
    double *X;                /* n x pe, column-major                     */
    const double *y, *w, *off;
    const size_t *top, *leaf; /* group codes                              */
    size_t nt, nl;
    size_t *parent;           /* nl: top group of each leaf               */
    size_t kre[2];            /* design re index of top, leaf             */
    double lconst;            /* sum of log binomial coefficients         */
    double theta[2];
    double *xb;                           /* n: X beta + offset */
    double *l1, *d2, *W, *W1, *rr;        /* n */
    double *ut, *ul, *ut0, *ul0, *utb, *ulb, *stt, *stl;
    double *fac, *objt, *objo, *Gt, *Ht, *St, *LLt, *sch, *rhs, *At;
    double *Gl, *Hl, *Sl, *Bl;
    double *gz, *glw;         /* K standard-normal nodes, log weights     */
    double *A, *A1, *pik;     /* nt x K                                   */
    int pirls_fail;
    /* newton_dir's eigenproblem: npar x npar matrices and vectors, and one
     * GSL eigen workspace per size k met (ew[k], k <= newcap) */
    double *nA, *nV, *nev;
    size_t *nidx;
    gsl_eigen_symmv_workspace **ew;
    size_t newcap;
} glmm_ws;

/* The buffers of bh_glmm_fit, kept between fits (simulations), each group
 * with its capacity in elements; grown with room to spare, never shrunk.
 * The problem's arrays live in s (borrowed there, owned here). */
struct bh_glmm_workspace {
    glmm_ws s;
    size_t cap_col, cap_X, cap_n, cap_t, cap_l, cap_tK, cap_m, cap_pa, cap_pb;
    size_t gh_k;              /* K whose nodes gz, glw hold (0: none)     */
    size_t *pa, *pb;          /* nestedness candidates (two groupings)    */
    /* per parameter (m, m x m) */
    double *phi, *g, *H, *V, *work, *gsave, *Hc;
    unsigned char *fixed, *none;
    size_t *pos;
    /* the starting GLM: workspace (rows, columns) and result, recycled */
    bh_glm_workspace *gws;
    size_t gn, gp;
    bh_fit *g0;
};

/* Headroom for sizes that vary between data sets (rows, groups). */
static size_t roomy(size_t len)
{
    return len + len / 8 + 1;
}

/* Arrays v[0..k) of at least len doubles each, sharing the capacity *cap:
 * kept when it suffices, else all allocated again (contents not kept).
 * 0 when out of memory (*cap = 0; every array NULL or allocated). */
static int reserve_doubles(double **const *v, size_t k, size_t *cap, size_t len)
{
    if (*cap >= len && *cap > 0)
        return 1;
    size_t nc = roomy(len);
    *cap = 0;
    for (size_t i = 0; i < k; i++) {
        free(*v[i]);
        if (!(*v[i] = malloc(nc * sizeof **v[i])))
            return 0;
    }
    *cap = nc;
    return 1;
}

bh_glmm_workspace *bh_glmm_workspace_alloc(void)
{
    return calloc(1, sizeof(bh_glmm_workspace));
}

void bh_glmm_workspace_free(bh_glmm_workspace *w)
{
    if (!w)
        return;
    glmm_ws *s = &w->s;
    free(s->col);
    free(s->X);
    double **arr[] = {&s->xb, &s->l1, &s->d2, &s->W, &s->W1, &s->rr, &s->ut,
                      &s->ul, &s->ut0, &s->ul0, &s->utb, &s->ulb, &s->stt,
                      &s->stl, &s->fac, &s->objt, &s->objo, &s->Gt, &s->Ht,
                      &s->St, &s->LLt, &s->sch, &s->rhs, &s->At, &s->Gl,
                      &s->Hl, &s->Sl, &s->Bl, &s->gz, &s->glw, &s->A, &s->A1,
                      &s->pik, &s->nA, &s->nV, &s->nev};
    for (size_t k = 0; k < sizeof arr / sizeof arr[0]; k++)
        free(*arr[k]);
    free(s->nidx);
    for (size_t k = 0; s->ew && k <= s->newcap; k++)
        if (s->ew[k])
            gsl_eigen_symmv_free(s->ew[k]);
    free(s->ew);
    free(w->pa);
    free(w->pb);
    double *pm[] = {w->phi, w->g, w->H, w->V, w->work, w->gsave, w->Hc};
    for (size_t k = 0; k < sizeof pm / sizeof pm[0]; k++)
        free(pm[k]);
    free(w->fixed);
    free(w->none);
    free(w->pos);
    bh_glm_workspace_free(w->gws);
    bh_fit_free(w->g0);
    free(w);
}

/* The per-parameter buffers for m parameters (their contents not kept). */
static int reserve_params(bh_glmm_workspace *w, size_t m)
{
    glmm_ws *s = &w->s;
    if (w->cap_m >= m && w->cap_m > 0)
        return 1;
    size_t c = m ? m : 1;
    double **dv[] = {&w->phi, &w->g, &w->gsave, &s->nev};
    double **mv[] = {&w->H, &w->V, &w->Hc, &s->nA, &s->nV};
    for (size_t k = 0; k < s->newcap + 1 && s->ew; k++)
        if (s->ew[k])
            gsl_eigen_symmv_free(s->ew[k]);
    free(s->ew);
    free(w->work);
    free(w->fixed);
    free(w->none);
    free(w->pos);
    free(s->nidx);
    w->cap_m = 0;
    s->newcap = 0;
    s->ew = NULL;
    w->work = NULL;
    w->fixed = w->none = NULL;
    w->pos = s->nidx = NULL;
    size_t one = 0, sq = 0;
    if (!reserve_doubles(dv, sizeof dv / sizeof *dv, &one, c) ||
        !reserve_doubles(mv, sizeof mv / sizeof *mv, &sq, c * c) ||
        !(w->work = malloc(5 * c * sizeof *w->work)) || !(w->fixed = malloc(c)) ||
        !(w->none = malloc(c)) || !(w->pos = malloc(c * sizeof *w->pos)) ||
        !(s->nidx = malloc(c * sizeof *s->nidx)) ||
        !(s->ew = calloc(c + 1, sizeof *s->ew)))
        return 0;
    s->newcap = c;
    w->cap_m = c;
    return 1;
}

static double log_Phi(double x)
{
    return gsl_sf_log_erfc(-x / M_SQRT2) - M_LN2;
}

/* Per-observation pieces at eta (see the top of the file); ll excludes
 * the binomial coefficient.  Overflow-free for any finite eta. */
static void obs_eval(bh_link link, double y, double w, double eta,
                     double *ll, double *l1, double *d2, double *W,
                     double *W1)
{
    if (link == BH_LINK_PROBIT) {
        double r1 = gsl_sf_hazard(-eta), r0 = gsl_sf_hazard(eta);
        double l = 0;
        if (y > 0)
            l += y * log_Phi(eta);
        if (y < 1)
            l += (1 - y) * log_Phi(-eta);
        *ll = w * l;
        *l1 = w * (y * r1 - (1 - y) * r0);
        *d2 = w * (y * r1 * (eta + r1) + (1 - y) * r0 * (r0 - eta));
        *W = w * r0 * r1;
        *W1 = *W * (r0 - r1 - 2 * eta);
        return;
    }
    double e = exp(-fabs(eta)), m, c;
    if (eta >= 0) {
        m = 1 / (1 + e);
        c = e / (1 + e);
    } else {
        m = e / (1 + e);
        c = 1 / (1 + e);
    }
    double sp = (eta > 0 ? eta : 0) + log1p(e);   /* log(1 + exp(eta)) */
    *ll = w * (y * eta - sp);
    *l1 = w * (y - m);
    *d2 = *W = w * m * c;
    *W1 = *W * (c - m);
}

static double wt(const glmm_ws *s, size_t i)
{
    return s->w ? s->w[i] : 1.0;
}

/* One pass over the data at the current modes: per-observation pieces and
 * group sums, and the penalised log-likelihood of each top group. */
static void pass(glmm_ws *s)
{
    size_t n = s->n, L2 = s->L == 2;
    double t0 = s->theta[0], t1 = s->theta[1];
    memset(s->Gt, 0, s->nt * sizeof *s->Gt);
    memset(s->Ht, 0, s->nt * sizeof *s->Ht);
    memset(s->St, 0, s->nt * sizeof *s->St);
    memset(s->LLt, 0, s->nt * sizeof *s->LLt);
    if (L2) {
        memset(s->Gl, 0, s->nl * sizeof *s->Gl);
        memset(s->Hl, 0, s->nl * sizeof *s->Hl);
        memset(s->Sl, 0, s->nl * sizeof *s->Sl);
    }
    for (size_t i = 0; i < n; i++) {
        double wi = wt(s, i);
        size_t f = s->top[i];
        if (!(wi > 0)) {
            s->l1[i] = s->d2[i] = s->W[i] = s->W1[i] = 0;
            continue;
        }
        double eta = s->xb[i] + t0 * s->ut[f];
        if (L2)
            eta += t1 * s->ul[s->leaf[i]];
        double ll;
        obs_eval(s->opt.link, s->y[i], wi, eta, &ll, &s->l1[i], &s->d2[i],
                 &s->W[i], &s->W1[i]);
        s->Gt[f] += s->l1[i];
        s->Ht[f] += s->d2[i];
        s->St[f] += s->W[i];
        s->LLt[f] += ll;
        if (L2) {
            size_t r = s->leaf[i];
            s->Gl[r] += s->l1[i];
            s->Hl[r] += s->d2[i];
            s->Sl[r] += s->W[i];
        }
    }
    for (size_t f = 0; f < s->nt; f++)
        s->objt[f] = s->LLt[f] - 0.5 * s->ut[f] * s->ut[f];
    if (L2)
        for (size_t r = 0; r < s->nl; r++)
            s->objt[s->parent[r]] -= 0.5 * s->ul[r] * s->ul[r];
}

/* Solve the arrow systems (I + Lambda Z' D Z Lambda) x = rhs for every top
 * group, D given by its group sums Hf (top) and Hr (leaves): the leaves
 * are eliminated onto their top node (Schur complement).  rt/rl are the
 * right-hand sides, overwritten by the solution. */
static void arrow_solve(glmm_ws *s, const double *Hf, const double *Hr,
                        double *rt, double *rl)
{
    double t0 = s->theta[0], t1 = s->theta[1];
    for (size_t f = 0; f < s->nt; f++)
        s->sch[f] = 1 + t0 * t0 * Hf[f];
    if (s->L == 2) {
        for (size_t r = 0; r < s->nl; r++) {
            size_t f = s->parent[r];
            double B = 1 + t1 * t1 * Hr[r], C = t0 * t1 * Hr[r];
            s->sch[f] -= C * C / B;
            rt[f] -= C * rl[r] / B;
        }
    }
    for (size_t f = 0; f < s->nt; f++)
        rt[f] /= s->sch[f];
    if (s->L == 2)
        for (size_t r = 0; r < s->nl; r++) {
            double B = 1 + t1 * t1 * Hr[r], C = t0 * t1 * Hr[r];
            rl[r] = (rl[r] - C * rt[s->parent[r]]) / B;
        }
}

/* Conditional modes for the current xb and theta by penalised IRLS,
 * starting from the modes in ut/ul.  Leaves the pass at the mode. */
static void pirls(glmm_ws *s)
{
    size_t nt = s->nt, nl = s->L == 2 ? s->nl : 0;
    double t0 = s->theta[0], t1 = s->theta[1];
    pass(s);
    for (size_t it = 0; it < s->opt.pirls_maxiter; it++) {
        for (size_t f = 0; f < nt; f++)
            s->stt[f] = t0 * s->Gt[f] - s->ut[f];
        for (size_t r = 0; r < nl; r++)
            s->stl[r] = t1 * s->Gl[r] - s->ul[r];
        arrow_solve(s, s->Ht, s->Hl, s->stt, s->stl);
        memcpy(s->ut0, s->ut, nt * sizeof *s->ut);
        memcpy(s->ul0, s->ul, nl * sizeof *s->ul);
        memcpy(s->objo, s->objt, nt * sizeof *s->objt);
        for (size_t f = 0; f < nt; f++)
            s->fac[f] = 1;
        /* The objective is a sum over top groups: halve group by group. */
        for (int h = 0; h <= GLMM_MAX_HALVINGS; h++) {
            for (size_t f = 0; f < nt; f++)
                s->ut[f] = s->ut0[f] + s->fac[f] * s->stt[f];
            for (size_t r = 0; r < nl; r++)
                s->ul[r] = s->ul0[r] + s->fac[s->parent[r]] * s->stl[r];
            pass(s);
            int bad = 0;
            for (size_t f = 0; f < nt; f++)
                if (s->fac[f] > 0 &&
                    !(s->objt[f] >= s->objo[f] - 1e-12 * (1 + fabs(s->objo[f])))) {
                    s->fac[f] = h == GLMM_MAX_HALVINGS - 1 ? 0 : s->fac[f] / 2;
                    bad = 1;
                }
            if (!bad)
                break;
        }
        double mx = 0;
        for (size_t f = 0; f < nt; f++)
            mx = fmax(mx, fabs(s->fac[f] * s->stt[f]));
        for (size_t r = 0; r < nl; r++)
            mx = fmax(mx, fabs(s->fac[s->parent[r]] * s->stl[r]));
        if (mx <= s->opt.pirls_tol)
            return;
    }
    s->pirls_fail++;
}

/* Set (beta, theta) from phi and compute X beta + offset. */
static void set_params(glmm_ws *s, const double *phi)
{
    size_t n = s->n, pe = s->pe;
    if (s->off)
        memcpy(s->xb, s->off, n * sizeof *s->xb);
    else
        memset(s->xb, 0, n * sizeof *s->xb);
    if (pe)
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)pe, 1.0, s->X,
                    (int)n, phi, 1, 1.0, s->xb, 1);
    s->theta[0] = phi[pe];
    s->theta[1] = s->L == 2 ? phi[pe + 1] : 0;
}

static void restore_modes(glmm_ws *s)
{
    memcpy(s->ut, s->utb, s->nt * sizeof *s->ut);
    if (s->L == 2)
        memcpy(s->ul, s->ulb, s->nl * sizeof *s->ul);
}

static void save_modes(glmm_ws *s)
{
    memcpy(s->utb, s->ut, s->nt * sizeof *s->ut);
    if (s->L == 2)
        memcpy(s->ulb, s->ul, s->nl * sizeof *s->ul);
}

/* Laplace deviance at the current mode (pass done). */
static double laplace_dev(glmm_ws *s)
{
    double t0 = s->theta[0], t1 = s->theta[1], D = 0;
    for (size_t f = 0; f < s->nt; f++)
        D += -2 * s->LLt[f] + s->ut[f] * s->ut[f];
    if (s->L == 2) {
        for (size_t f = 0; f < s->nt; f++)
            s->sch[f] = 0;
        for (size_t r = 0; r < s->nl; r++) {
            double dr = 1 + t1 * t1 * s->Sl[r];
            D += s->ul[r] * s->ul[r] + log(dr);
            s->sch[s->parent[r]] += s->Sl[r] / dr;
        }
        for (size_t f = 0; f < s->nt; f++)
            D += log1p(t0 * t0 * s->sch[f]);
    } else {
        for (size_t f = 0; f < s->nt; f++)
            D += log1p(t0 * t0 * s->St[f]);
    }
    return D - 2 * s->lconst;
}

/* Per-node pieces of the W-Hessian inverse applied to the random-effect
 * design row of an observation in leaf r (or top group f when L = 1):
 * mf = (H^-1 z)_top, ml = (H^-1 z)_leaf, q = z'H^-1 z. */
static void hinv_row(const glmm_ws *s, size_t f, size_t r, double *mf,
                     double *ml, double *q)
{
    double t0 = s->theta[0], t1 = s->theta[1];
    if (s->L == 1) {
        double c = 1 + t0 * t0 * s->St[f];
        *mf = t0 / c;
        *ml = 0;
        *q = t0 * t0 / c;
        return;
    }
    double dr = 1 + t1 * t1 * s->Sl[r], e = t0 * t1 * s->Sl[r];
    double c = s->At[f];   /* Schur complement with W, from laplace_grad */
    *mf = t0 / c - t1 * e / (dr * c);
    *ml = -t0 * e / (dr * c) + t1 * (1 / dr + e * e / (dr * dr * c));
    *q = t0 * *mf + t1 * *ml;
}

/* Gradient of the Laplace deviance over (beta, theta) at the current mode
 * (pass done), by implicit differentiation through the modes. */
static void laplace_grad(glmm_ws *s, double *g)
{
    size_t n = s->n, nt = s->nt, nl = s->L == 2 ? s->nl : 0, pe = s->pe;
    double t0 = s->theta[0], t1 = s->theta[1];
    if (s->L == 2) {
        for (size_t f = 0; f < nt; f++)
            s->At[f] = 1;
        for (size_t r = 0; r < nl; r++)
            s->At[s->parent[r]] += t0 * t0 * s->Sl[r] / (1 + t1 * t1 * s->Sl[r]);
    }
    /* q per node; c_i = W1_i q; right-hand side Lambda Z' c. */
    double *qt = s->stt, *ql = s->stl, *vt = s->rhs, *vl = s->Bl;
    for (size_t f = 0; f < nt; f++) {
        double mf, ml, q;
        if (s->L == 1) {
            hinv_row(s, f, 0, &mf, &ml, &q);
            qt[f] = q;
        }
        vt[f] = 0;
    }
    for (size_t r = 0; r < nl; r++) {
        double mf, ml, q;
        hinv_row(s, s->parent[r], r, &mf, &ml, &q);
        ql[r] = q;
        vl[r] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        double q = s->L == 2 ? ql[s->leaf[i]] : qt[s->top[i]];
        double c = s->W1[i] * q;
        s->rr[i] = c;
        vt[s->top[i]] += c;
        if (nl)
            vl[s->leaf[i]] += c;
    }
    for (size_t f = 0; f < nt; f++)
        vt[f] *= t0;
    for (size_t r = 0; r < nl; r++)
        vl[r] *= t1;
    /* v = Hp^-1 Lambda Z' c (Hp: observed information). */
    arrow_solve(s, s->Ht, s->Hl, vt, vl);
    double gt0 = 0, gt1 = 0;
    for (size_t i = 0; i < n; i++) {
        size_t f = s->top[i];
        double zv = t0 * vt[f] + (nl ? t1 * vl[s->leaf[i]] : 0);
        double ri = -2 * s->l1[i] + s->rr[i] - s->d2[i] * zv;
        s->rr[i] = ri;
        gt0 += ri * s->ut[f];
        if (nl)
            gt1 += ri * s->ul[s->leaf[i]];
    }
    for (size_t f = 0; f < nt; f++)
        gt0 += vt[f] * s->Gt[f];
    if (s->L == 1) {
        for (size_t f = 0; f < nt; f++) {
            double mf, ml, q;
            hinv_row(s, f, 0, &mf, &ml, &q);
            gt0 += 2 * s->St[f] * mf;
        }
    } else {
        for (size_t r = 0; r < nl; r++) {
            double mf, ml, q;
            hinv_row(s, s->parent[r], r, &mf, &ml, &q);
            gt0 += 2 * s->Sl[r] * mf;
            gt1 += 2 * s->Sl[r] * ml + vl[r] * s->Gl[r];
        }
    }
    if (pe)
        cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)pe, 1.0, s->X,
                    (int)n, s->rr, 1, 0.0, g, 1);
    g[pe] = gt0;
    if (s->L == 2)
        g[pe + 1] = gt1;
}

/* Adaptive Gauss-Hermite deviance (one grouping) at the current mode, and
 * its gradient when g is not NULL. */
static double agq_dev(glmm_ws *s, double *g)
{
    size_t n = s->n, nt = s->nt, K = s->K, pe = s->pe;
    double t0 = s->theta[0];
    memset(s->A, 0, nt * K * sizeof *s->A);
    memset(s->A1, 0, nt * K * sizeof *s->A1);
    for (size_t f = 0; f < nt; f++)
        s->sch[f] = 1 / sqrt(1 + t0 * t0 * s->St[f]);   /* s_f */
    for (size_t i = 0; i < n; i++) {
        double wi = wt(s, i);
        if (!(wi > 0))
            continue;
        size_t f = s->top[i];
        for (size_t k = 0; k < K; k++) {
            double u = s->ut[f] + s->sch[f] * s->gz[k], ll, l1, d2, W, W1;
            obs_eval(s->opt.link, s->y[i], wi, s->xb[i] + t0 * u, &ll, &l1,
                     &d2, &W, &W1);
            s->A[f * K + k] += ll;
            s->A1[f * K + k] += l1;
        }
    }
    double D = -2 * s->lconst;
    for (size_t f = 0; f < nt; f++) {
        double mx = -INFINITY, *la = s->pik + f * K;
        for (size_t k = 0; k < K; k++) {
            double u = s->ut[f] + s->sch[f] * s->gz[k];
            la[k] = s->glw[k] + 0.5 * s->gz[k] * s->gz[k] +
                    s->A[f * K + k] - 0.5 * u * u;
            mx = fmax(mx, la[k]);
        }
        double sum = 0;
        for (size_t k = 0; k < K; k++)
            sum += exp(la[k] - mx);
        double lse = mx + log(sum);
        for (size_t k = 0; k < K; k++)
            la[k] = exp(la[k] - lse);          /* pi_k */
        D += -2 * log(s->sch[f]) - 2 * lse;
    }
    if (!g)
        return D;
    /* Group scalars: B (through s), C (through the mode), the theta part,
     * and sums of W1. */
    double *Bf = s->rhs, *Cf = s->At, *SW1 = s->objo, gth = 0;
    memset(SW1, 0, nt * sizeof *SW1);
    for (size_t i = 0; i < n; i++)
        SW1[s->top[i]] += s->W1[i];
    for (size_t f = 0; f < nt; f++) {
        double sf = s->sch[f], uh = s->ut[f], B = -2 / sf, C = 0, E = 0;
        const double *pk = s->pik + f * K;
        for (size_t k = 0; k < K; k++) {
            double u = uh + sf * s->gz[k];
            double dl = t0 * s->A1[f * K + k] - u;
            C += -2 * pk[k] * dl;
            B += -2 * pk[k] * dl * s->gz[k];
            E += pk[k] * u * s->A1[f * K + k];
        }
        Bf[f] = B;
        Cf[f] = C;
        double Hg = 1 + t0 * t0 * s->Ht[f];
        double duth = (s->Gt[f] - t0 * uh * s->Ht[f]) / Hg;
        double dS = SW1[f] * (uh + t0 * duth);
        double ds = -0.5 * sf * sf * sf * (2 * t0 * s->St[f] + t0 * t0 * dS);
        gth += B * ds + C * duth - 2 * E;
    }
    for (size_t i = 0; i < n; i++) {
        double wi = wt(s, i);
        size_t f = s->top[i];
        if (!(wi > 0)) {
            s->rr[i] = 0;
            continue;
        }
        double rho = 0;
        for (size_t k = 0; k < K; k++) {
            double u = s->ut[f] + s->sch[f] * s->gz[k], ll, l1, d2, W, W1;
            obs_eval(s->opt.link, s->y[i], wi, s->xb[i] + t0 * u, &ll, &l1,
                     &d2, &W, &W1);
            rho += s->pik[f * K + k] * l1;
        }
        double sf = s->sch[f], Hg = 1 + t0 * t0 * s->Ht[f];
        double delta = -t0 * s->d2[i] / Hg;
        s->rr[i] = -2 * rho + Cf[f] * delta +
                   Bf[f] * (-0.5 * sf * sf * sf * t0 * t0) *
                       (s->W1[i] + t0 * SW1[f] * delta);
    }
    if (pe)
        cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)pe, 1.0, s->X,
                    (int)n, s->rr, 1, 0.0, g, 1);
    g[pe] = gth;
    return D;
}

/* Deviance at phi (modes from the saved ones); gradient into g if not
 * NULL. */
static double evaluate(glmm_ws *s, const double *phi, double *g)
{
    set_params(s, phi);
    restore_modes(s);
    pirls(s);
    if (s->K > 1)
        return agq_dev(s, g);
    double D = laplace_dev(s);
    if (g)
        laplace_grad(s, g);
    return D;
}

/* Hessian of the deviance over the free parameters by differences of the
 * gradient (central or forward); H is npar x npar row-major, rows and
 * columns of fixed parameters zero. */
static void hessian(glmm_ws *s, const double *phi, const double *g0,
                    const unsigned char *fixed, int central, double rel,
                    double *H, double *work)
{
    size_t m = s->npar;
    double *ph = work, *gp = work + m, *gm = work + 2 * m;
    memset(H, 0, m * m * sizeof *H);
    for (size_t j = 0; j < m; j++) {
        if (fixed[j])
            continue;
        double h = rel * fmax(1.0, fabs(phi[j]));
        memcpy(ph, phi, m * sizeof *ph);
        ph[j] = phi[j] + h;
        evaluate(s, ph, gp);
        if (central) {
            ph[j] = phi[j] - h;
            evaluate(s, ph, gm);
        } else {
            memcpy(gm, g0, m * sizeof *gm);
        }
        double den = central ? 2 * h : h;
        for (size_t i = 0; i < m; i++)
            if (!fixed[i])
                H[i * m + j] = (gp[i] - gm[i]) / den;
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < i; j++) {
            double a = 0.5 * (H[i * m + j] + H[j * m + i]);
            H[i * m + j] = H[j * m + i] = a;
        }
}

/* Modified Newton direction -H^-1 g over the free parameters, with
 * |eigenvalues| bounded below.  Returns 0, or -1 on failure. */
static int newton_dir(glmm_ws *s, size_t m, const double *H, const double *g,
                      const unsigned char *fixed, double *dir)
{
    size_t k = 0, *idx = s->nidx;
    for (size_t j = 0; j < m; j++)
        if (!fixed[j])
            idx[k++] = j;
    if (k == 0 || k > s->newcap)   /* GSL has no empty matrices */
        return -1;
    /* views with the layout gsl_matrix_alloc(k, k) and gsl_vector_alloc(k)
     * give (tda k, stride 1) on the workspace's buffers: the same
     * eigenproblem, solved the same way */
    gsl_matrix_view Av = gsl_matrix_view_array(s->nA, k, k);
    gsl_matrix_view Vv = gsl_matrix_view_array(s->nV, k, k);
    gsl_vector_view evv = gsl_vector_view_array(s->nev, k);
    gsl_matrix *A = &Av.matrix, *V = &Vv.matrix;
    gsl_vector *ev = &evv.vector;
    if (!s->ew[k] && !(s->ew[k] = gsl_eigen_symmv_alloc(k)))
        return -1;
    gsl_eigen_symmv_workspace *ew = s->ew[k];
    int rc = -1;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++)
            gsl_matrix_set(A, a, b, H[idx[a] * m + idx[b]]);
    if (gsl_eigen_symmv(A, ev, V, ew))
        goto done;
    double lmax = 0;
    for (size_t a = 0; a < k; a++)
        lmax = fmax(lmax, fabs(gsl_vector_get(ev, a)));
    double floor_ = fmax(lmax * 1e-10, 1e-12);
    for (size_t j = 0; j < m; j++)
        dir[j] = 0;
    for (size_t e = 0; e < k; e++) {
        double lam = fmax(fabs(gsl_vector_get(ev, e)), floor_), vg = 0;
        for (size_t a = 0; a < k; a++)
            vg += gsl_matrix_get(V, a, e) * g[idx[a]];
        for (size_t a = 0; a < k; a++)
            dir[idx[a]] -= gsl_matrix_get(V, a, e) * vg / lam;
    }
    rc = 0;
done:
    return rc;
}

/* Modified Newton with backtracking from phi; returns iterations used and
 * sets *conv. D and g are updated to the final point. */
static size_t optimise(glmm_ws *s, double *phi, const unsigned char *fixed,
                       double *D, double *g, double *H, double *work,
                       int *conv)
{
    size_t m = s->npar, it;
    double *dir = work + 3 * m, *pn = work + 4 * m;
    *conv = 0;
    *D = evaluate(s, phi, g);
    save_modes(s);
    for (it = 0; it < s->opt.maxiter; it++) {
        hessian(s, phi, g, fixed, 0, GLMM_FD_NEWTON, H, work);
        if (newton_dir(s, m, H, g, fixed, dir))
            break;
        double dec = 0;
        for (size_t j = 0; j < m; j++)
            dec -= g[j] * dir[j];
        if (dec < s->opt.tol) {
            *conv = 1;
            break;
        }
        double t = 1, Dn = NAN;
        int ok = 0;
        for (int h = 0; h < GLMM_MAX_HALVINGS; h++, t /= 2) {
            for (size_t j = 0; j < m; j++)
                pn[j] = phi[j] + t * dir[j];
            Dn = evaluate(s, pn, NULL);
            if (Dn <= *D - 1e-4 * t * dec) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            /* No decrease along a descent direction: at the optimum to
             * rounding when the decrement is already tiny. */
            *conv = dec < 1e3 * s->opt.tol;
            break;
        }
        memcpy(phi, pn, m * sizeof *phi);
        *D = evaluate(s, phi, g);
        save_modes(s);
    }
    *D = evaluate(s, phi, g);
    save_modes(s);
    return it + 1;
}

/* RX-based covariance of the estimated fixed effects at fixed theta:
 * (X'WX - X'WZ Lambda (I + Lambda Z'WZ Lambda)^-1 Lambda Z'WX)^-1. */
static int vcov_rx(glmm_ws *s, double *V)
{
    size_t n = s->n, pe = s->pe, nt = s->nt, nl = s->L == 2 ? s->nl : 0;
    double t0 = s->theta[0], t1 = s->theta[1];
    double *vt = calloc(nt * pe + 1, sizeof *vt);
    double *vl = calloc(nl * pe + 1, sizeof *vl);
    gsl_matrix *M = gsl_matrix_calloc(pe, pe);
    int rc = -1;
    if (!vt || !vl || !M)
        goto done;
    for (size_t i = 0; i < n; i++) {
        double Wi = s->W[i];
        size_t f = s->top[i];
        for (size_t a = 0; a < pe; a++) {
            double xa = s->X[a * n + i] * Wi;
            vt[f * pe + a] += t0 * xa;
            if (nl)
                vl[s->leaf[i] * pe + a] += t1 * xa;
            for (size_t b = 0; b <= a; b++)
                M->data[a * pe + b] += xa * s->X[b * n + i];
        }
    }
    for (size_t f = 0; f < nt; f++)
        s->sch[f] = 1 + t0 * t0 * s->St[f];
    for (size_t r = 0; r < nl; r++) {
        size_t f = s->parent[r];
        double dr = 1 + t1 * t1 * s->Sl[r], e = t0 * t1 * s->Sl[r];
        s->sch[f] -= e * e / dr;
        for (size_t a = 0; a < pe; a++) {
            vt[f * pe + a] -= e * vl[r * pe + a] / dr;
            for (size_t b = 0; b <= a; b++)
                M->data[a * pe + b] -= vl[r * pe + a] * vl[r * pe + b] / dr;
        }
    }
    for (size_t f = 0; f < nt; f++)
        for (size_t a = 0; a < pe; a++)
            for (size_t b = 0; b <= a; b++)
                M->data[a * pe + b] -= vt[f * pe + a] * vt[f * pe + b] / s->sch[f];
    for (size_t a = 0; a < pe; a++)
        for (size_t b = 0; b < a; b++)
            M->data[b * pe + a] = M->data[a * pe + b];
    if (pe && (gsl_linalg_cholesky_decomp1(M) || gsl_linalg_cholesky_invert(M)))
        goto done;
    memcpy(V, M->data, pe * pe * sizeof *V);
    rc = 0;
done:
    free(vt);
    free(vl);
    gsl_matrix_free(M);
    return rc;
}

/* Is grouping a nested in grouping b (each a-group in one b-group)?  Fills
 * parent (a->ngroups) when so. */
static int nested_in(const bh_grouping *a, const bh_grouping *b, size_t n,
                     size_t *parent)
{
    for (size_t g = 0; g < a->ngroups; g++)
        parent[g] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t *p = &parent[a->code[i]];
        if (*p == SIZE_MAX)
            *p = b->code[i];
        else if (*p != b->code[i])
            return 0;
    }
    return 1;
}

void bh_glmm_re_free(bh_glmm_re *re)
{
    if (!re)
        return;
    for (size_t k = 0; k < re->ngroupings; k++) {
        bh_glmm_group *g = &re->g[k];
        free(g->name);
        size_t nl = g->cap > g->ngroups ? g->cap : g->ngroups;
        if (g->labels)
            for (size_t j = 0; j < nl; j++)
                free(g->labels[j]);
        free(g->labels);
        free(g->mode);
        free(g->cond_sd);
    }
    free(re->g);
    free(re);
}

static bh_status check_input(const bh_design *d, const bh_glmm_options *o,
                             bh_error *err)
{
    if (o->link != BH_LINK_LOGIT && o->link != BH_LINK_PROBIT)
        return bh_error_set(err, BH_EUSAGE,
                            "glmm: link %s is not available (binomial GLMM: "
                            "logit or probit)", bh_link_name(o->link));
    if (o->nagq < 1 || o->nagq > BH_GLMM_MAX_AGQ)
        return bh_error_set(err, BH_EUSAGE,
                            "glmm: %zu quadrature points; give 1 (Laplace) to "
                            "%d", o->nagq, BH_GLMM_MAX_AGQ);
    if (d->nre == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "glmm: the formula has no random-effect term; add "
                            "one such as (1 | rep_id)");
    if (d->nre > 2)
        return bh_error_set(err, BH_EUSAGE,
                            "glmm: %zu random-effect groupings; at most two "
                            "nested ones are supported, as (1 | firm/rep_id)",
                            d->nre);
    if (d->nre == 2 && o->nagq > 1)
        return bh_error_set(err, BH_EUSAGE,
                            "glmm: adaptive Gauss-Hermite quadrature (nagq = "
                            "%zu) needs a single grouping factor; %s and %s "
                            "are two (use nagq = 1, Laplace)", o->nagq,
                            d->re[0].name, d->re[1].name);
    if (o->response >= d->m || d->n == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "glmm: no response column %zu or no rows",
                            o->response);
    const double *y = d->y + o->response * d->n;
    for (size_t i = 0; i < d->n; i++) {
        size_t row = (d->rows ? d->rows[i] : i) + 1;
        if (!(y[i] >= 0 && y[i] <= 1))
            return bh_error_at(err, BH_EDATA, d->source, 0, 0,
                               "glmm: response '%s' is %g in data row %zu; a "
                               "binomial response must be 0/1 or a proportion "
                               "(with the trials as weights)",
                               d->ynames && d->ynames[o->response]
                                   ? d->ynames[o->response] : "y",
                               y[i], row);
        if (d->w && !(d->w[i] >= 0 && isfinite(d->w[i])))
            return bh_error_at(err, BH_EDATA, d->source, 0, 0,
                               "glmm: weight %g in data row %zu", d->w[i], row);
    }
    return BH_OK;
}

static bh_status nomem(bh_error *err)
{
    return bh_error_set(err, BH_ENOMEM, "glmm: out of memory");
}

bh_status bh_glmm_fit(const bh_design *d, const bh_glmm_options *opt,
                      bh_fit **out, bh_glmm_re **reout, bh_error *err)
{
    return bh_glmm_fit_ws(d, opt, NULL, out, reout, err);
}

/* The random-effect result: opt->recycle_re refilled when it has L
 * groupings (*reused set), else a new one; NULL when out of memory. */
static bh_glmm_re *re_prepare(const bh_glmm_options *opt, size_t L, int *reused)
{
    bh_glmm_re *re = opt->recycle_re;
    *reused = re && re->ngroupings == L && re->g;
    if (*reused)
        return re;
    if (!(re = calloc(1, sizeof *re)))
        return NULL;
    if (!(re->g = calloc(L ? L : 1, sizeof *re->g))) {
        free(re);
        return NULL;
    }
    re->ngroupings = L;
    return re;
}

/* Group k of the random-effect result for grouping gr: name, labels
 * (copies, written where the last fit's were) and room for the modes and
 * conditional SDs.  0 when out of memory. */
static int re_group_fill(bh_glmm_group *G, const bh_grouping *gr)
{
    if (bh_fit_set_string(&G->name, gr->name))
        return 0;
    size_t ng = gr->ngroups, room = 1;
    for (size_t j = 0; j < ng; j++) {
        size_t L = strlen(gr->labels[j] ? gr->labels[j] : "") + 1;
        room = L > room ? L : room;
    }
    size_t have = G->cap > G->ngroups ? G->cap : G->ngroups, before = have;
    G->ngroups = 0;   /* labels past it stay owned (cap) */
    int ok = bh_reserve_strings(&G->labels, &have, &G->label_room, ng, room);
    G->cap = have;
    if (ok && (have != before || !G->mode || !G->cond_sd)) {
        /* the values have as many entries as labels */
        free(G->mode);
        free(G->cond_sd);
        G->mode = malloc(have * sizeof *G->mode);
        G->cond_sd = malloc(have * sizeof *G->cond_sd);
        ok = G->mode && G->cond_sd;
    }
    if (!ok)
        return 0;
    for (size_t j = 0; j < ng; j++)
        strcpy(G->labels[j], gr->labels[j] ? gr->labels[j] : "");
    G->ngroups = ng;
    return 1;
}

bh_status bh_glmm_fit_ws(const bh_design *d, const bh_glmm_options *opt, bh_glmm_workspace *w,
                         bh_fit **out, bh_glmm_re **reout, bh_error *err)
{
    *out = NULL;
    if (reout)
        *reout = NULL;
    if (!d)
        return bh_error_set(err, BH_EINTERNAL, "glmm: no design");
    bh_glmm_options defopt;
    if (!opt) {
        bh_glmm_default_options(&defopt);
        opt = &defopt;
    }
    bh_status st = check_input(d, opt, err);
    if (st)
        return st;

    bh_glmm_workspace *own = NULL;
    if (!w && !(w = own = bh_glmm_workspace_alloc()))
        return nomem(err);
    /* The arrays stay in the workspace; the problem's fields start as in
     * a zeroed state (what the computation accumulates or tests). */
    glmm_ws *s = &w->s;
    s->pe = s->nt = s->nl = s->npar = 0;
    s->top = s->leaf = NULL;
    s->parent = NULL;
    s->lconst = 0;
    s->theta[0] = s->theta[1] = 0;
    s->pirls_fail = 0;
    bh_fit *fit = NULL, *g0 = NULL;
    bh_glmm_re *re = NULL;
    int recycled = 0, reused = 0;
    double *phi = NULL, *g = NULL, *H = NULL, *work = NULL, *V = NULL;
    unsigned char *fixed = NULL;
    size_t n = d->n, p = d->p;
    s->d = d;
    s->opt = *opt;
    s->n = n;
    s->L = d->nre;
    s->K = opt->nagq;
    s->y = d->y + opt->response * n;
    s->w = d->w;
    s->off = d->offset;

    /* Groupings: the top one and, with two, the nested leaf one. */
    s->kre[0] = 0;
    s->kre[1] = 1;
    if (s->L == 2) {
        size_t *par = w->pa = bh_reserve(w->pa, &w->cap_pa, d->re[1].ngroups, sizeof *par);
        size_t *par2 = w->pb = bh_reserve(w->pb, &w->cap_pb, d->re[0].ngroups, sizeof *par2);
        if (!par || !par2)
            goto nomem;
        if (nested_in(&d->re[1], &d->re[0], n, par)) {
            s->parent = par;
        } else if (nested_in(&d->re[0], &d->re[1], n, par2)) {
            s->parent = par2;
            s->kre[0] = 1;
            s->kre[1] = 0;
        } else {
            st = bh_error_set(err, BH_EUSAGE,
                              "glmm: the groupings %s and %s are crossed, "
                              "not nested; only nested random intercepts "
                              "are supported", d->re[0].name, d->re[1].name);
            goto fail;
        }
        s->leaf = d->re[s->kre[1]].code;
        s->nl = d->re[s->kre[1]].ngroups;
    }
    s->top = d->re[s->kre[0]].code;
    s->nt = d->re[s->kre[0]].ngroups;

    /* Start: the GLM without random effects (also finds aliased columns). */
    bh_glm_options go;
    bh_glm_default_options(&go);
    go.family = BH_FAM_BINOMIAL;
    go.link = opt->link;
    go.response = opt->response;
    go.colnames = opt->colnames;
    if (!w->gws || w->gn < n || w->gp < p) {
        /* grown to the largest problem seen: bh_glm_fit's results do not
         * depend on the workspace's size (it works in fixed chunks) */
        size_t gn = n > w->gn ? roomy(n) : w->gn, gp = p > w->gp ? p : w->gp;
        bh_glm_workspace_free(w->gws);
        w->gn = w->gp = 0;
        if (!(w->gws = bh_glm_workspace_alloc(gn, gp)))
            goto nomem;
        w->gn = gn;
        w->gp = gp;
    }
    go.recycle = w->g0;
    st = bh_glm_fit(d, &go, w->gws, &g0, err);
    if (g0 != w->g0) {
        /* the last start was not reused (shape changed): this one is kept */
        bh_fit_free(w->g0);
        w->g0 = g0;
    }
    if (st)
        goto fail;
    if (!(s->col = bh_reserve(s->col, &w->cap_col, p, sizeof *s->col)))
        goto nomem;
    for (size_t j = 0; j < p; j++)
        if (!g0->aliased[j])
            s->col[s->pe++] = j;
    size_t pe = s->pe, m = pe + s->L;
    s->npar = m;
    size_t nt = s->nt, nl = s->nl ? s->nl : 1, K = s->K;
    /* The workspace's buffers, grown when too small; those the fit
     * expects zeroed (calloc'ed in a fit of its own) are cleared. */
    double **na[] = {&s->xb, &s->l1, &s->d2, &s->W, &s->W1, &s->rr};
    double **ta[] = {&s->ut, &s->ut0, &s->utb, &s->stt, &s->fac, &s->objt,
                     &s->objo, &s->Gt, &s->Ht, &s->St, &s->LLt, &s->sch,
                     &s->rhs, &s->At};
    double **la[] = {&s->ul, &s->ul0, &s->ulb, &s->stl, &s->Gl, &s->Hl,
                     &s->Sl, &s->Bl};
    double **ka[] = {&s->A, &s->A1, &s->pik};
    double **xa[] = {&s->X};
    if (!reserve_doubles(xa, 1, &w->cap_X, n * pe) ||
        !reserve_doubles(na, sizeof na / sizeof *na, &w->cap_n, n) ||
        !reserve_doubles(ta, sizeof ta / sizeof *ta, &w->cap_t, nt) ||
        !reserve_doubles(la, sizeof la / sizeof *la, &w->cap_l, nl) ||
        !reserve_doubles(ka, sizeof ka / sizeof *ka, &w->cap_tK, nt * K) ||
        !reserve_params(w, m))
        goto nomem;
    for (size_t k = 0; k < sizeof ta / sizeof ta[0]; k++)
        memset(*ta[k], 0, nt * sizeof **ta[k]);
    for (size_t k = 0; k < sizeof la / sizeof la[0]; k++)
        memset(*la[k], 0, nl * sizeof **la[k]);
    phi = w->phi;
    g = w->g;
    H = w->H;
    V = w->V;
    work = w->work;
    fixed = w->fixed;
    memset(phi, 0, m * sizeof *phi);
    memset(g, 0, m * sizeof *g);
    memset(H, 0, m * m * sizeof *H);
    memset(V, 0, m * m * sizeof *V);
    memset(work, 0, 5 * m * sizeof *work);
    memset(fixed, 0, m);
    for (size_t j = 0; j < pe; j++) {
        memcpy(s->X + j * n, d->x + s->col[j] * n, n * sizeof *s->X);
        phi[j] = g0->beta[s->col[j]];
    }
    if (K > 1 && w->gh_k != K) {
        /* the rule's nodes and log weights, kept for the next fit */
        double **kv[] = {&s->gz, &s->glw};
        size_t kc = 0;
        w->gh_k = 0;
        if (!reserve_doubles(kv, 2, &kc, K))
            goto nomem;
        if ((st = bh_glmm_gauss_hermite(K, s->gz, s->glw, err)))
            goto fail;
        for (size_t k = 0; k < K; k++) {
            s->glw[k] = log(s->glw[k] / sqrt(M_PI));
            s->gz[k] *= M_SQRT2;
        }
        w->gh_k = K;
    }
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = wt(s, i);
        if (wi > 0) {
            npos++;
            if (s->w) {
                double tr = round(wi), sc = round(wi * s->y[i]);
                s->lconst += gsl_sf_lnchoose((unsigned)tr, (unsigned)fmin(sc, tr));
            }
        }
    }
    for (size_t l = 0; l < s->L; l++)
        phi[pe + l] = 1;   /* lme4's starting theta */

    /* Optimise; a theta at the boundary is fixed at 0 and the rest
     * re-optimised. */
    double D;
    int conv;
    size_t iters = optimise(s, phi, fixed, &D, g, H, work, &conv);
    int resing = 0;
    for (size_t l = 0; l < s->L; l++)
        if (fabs(phi[pe + l]) < GLMM_SINGULAR_TOL) {
            phi[pe + l] = 0;
            fixed[pe + l] = 1;
            resing = 1;
        }
    if (resing)
        iters += optimise(s, phi, fixed, &D, g, H, work, &conv);

    /* Covariance: 2 H^-1 over all parameters (a boundary theta included,
     * as lme4's Hessian includes it). */
    unsigned char *none = w->none;
    memset(none, 0, m);
    double maxg = 0;
    for (size_t j = 0; j < m; j++)
        if (!fixed[j])
            maxg = fmax(maxg, fabs(g[j]));
    double *gsave = w->gsave;
    memcpy(gsave, g, m * sizeof *g);
    hessian(s, phi, gsave, none, 1, GLMM_FD_VCOV, H, work);
    D = evaluate(s, phi, g);   /* state back at the estimate */
    int hpd = 1;
    {
        /* a copy with gsl_matrix_alloc(m, m)'s layout (tda m) */
        gsl_matrix_view Hv = gsl_matrix_view_array(H, m, m);
        gsl_matrix_view Hcv = gsl_matrix_view_array(w->Hc, m, m);
        gsl_matrix *Hc = &Hcv.matrix;
        gsl_matrix_memcpy(Hc, &Hv.matrix);
        if (gsl_linalg_cholesky_decomp1(Hc) || gsl_linalg_cholesky_invert(Hc))
            hpd = 0;
        else
            for (size_t k = 0; k < m * m; k++)
                V[k] = 2 * Hc->data[k];
    }
    double *Vrx = NULL;
    if (opt->vcov_rx && hpd) {
        Vrx = malloc((pe * pe > 0 ? pe * pe : 1) * sizeof *Vrx);
        if (!Vrx)
            goto nomem;
        if (vcov_rx(s, Vrx)) {
            free(Vrx);
            Vrx = NULL;
            hpd = 0;
        } else {
            for (size_t a = 0; a < pe; a++)
                for (size_t b = 0; b < pe; b++)
                    V[a * m + b] = Vrx[a * pe + b];
        }
        free(Vrx);
    }

    /* The fit: opt->recycle reused when it has the shape, its per-row
     * arrays with the workspace's rows (every row used is written). */
    size_t P = p + s->L, rcap = w->cap_n;
    if (opt->recycle && bh_fit_recycle_rows(opt->recycle, P, 0, rcap) >= 0) {
        fit = opt->recycle;
        recycled = 1;
    } else if (!(fit = bh_fit_alloc(P, 0, 1, 0)))
        goto nomem;
    fit->nrows = n;
    fit->rows_cap = rcap;
    if ((!fit->fitted && !(fit->fitted = malloc(rcap * sizeof *fit->fitted))) ||
        (!fit->resid && !(fit->resid = malloc(rcap * sizeof *fit->resid))))
        goto nomem;
    size_t *pos = w->pos;
    for (size_t j = 0; j < pe; j++)
        pos[j] = s->col[j];
    for (size_t l = 0; l < s->L; l++)
        pos[pe + l] = p + s->kre[l];
    char nb[32];
    for (size_t j = 0; j < p; j++) {
        const char *nm = d->terms && d->terms->colnames && d->terms->colnames[j]
                             ? d->terms->colnames[j]
                             : (opt->colnames && opt->colnames[j] ? opt->colnames[j] : NULL);
        if (!nm) {
            snprintf(nb, sizeof nb, "x%zu", j + 1);
            nm = nb;
        }
        fit->aliased[j] = g0->aliased[j];
        /* (a recycled fit's components keep their text: set them all) */
        if (bh_fit_set_string(&fit->term[j], nm) ||
            (recycled && bh_fit_set_string(&fit->component[j], "")))
            goto nomem;
    }
    for (size_t k = 0; k < s->L; k++)
        if (bh_fit_set_string(&fit->term[p + k], "sd__(Intercept)") ||
            bh_fit_set_string(&fit->component[p + k], d->re[k].name))
            goto nomem;
    double sgn[2] = {1, 1};
    for (size_t l = 0; l < s->L; l++)
        sgn[l] = phi[pe + l] < 0 ? -1 : 1;
    for (size_t j = 0; j < m; j++)
        fit->beta[pos[j]] = j < pe ? phi[j] : fabs(phi[j]);
    for (size_t a = 0; a < m; a++)
        for (size_t b = 0; b < m; b++) {
            double sa = a >= pe ? sgn[a - pe] : 1, sb = b >= pe ? sgn[b - pe] : 1;
            double v = hpd ? sa * sb * V[a * m + b] : NAN;
            fit->vcov[pos[a] * P + pos[b]] = v;
            fit->bread[pos[a] * P + pos[b]] = v;
        }
    fit->design = d;
    fit->linear = 0;
    fit->rank = m;
    fit->nobs = npos;
    fit->ndropped = d->ndropped;
    fit->converged = conv && !s->pirls_fail;
    fit->iterations = iters;
    fit->dispersion = 1;
    fit->df_inference = INFINITY;
    snprintf(fit->vcov_type, sizeof fit->vcov_type,
             opt->vcov_rx ? "model-based (RX, theta fixed)"
                          : "model-based (Hessian)");
    if (bh_fit_set_string(&fit->family, "binomial") ||
        bh_fit_set_string(&fit->link, bh_link_name(opt->link)) ||
        bh_fit_set_string(&fit->method, K > 1 ? "agq" : "laplace"))
        goto nomem;
    /* A recycled fit keeps the name and formula its owner gave it. */
    if (!recycled && bh_fit_set_string(&fit->name, "(1)"))
        goto nomem;
    if (!recycled && d->terms && d->terms->formula && d->terms->formula->text &&
        bh_fit_set_string(&fit->formula, d->terms->formula->text))
        goto nomem;
    bh_fit_stats *Sx = &fit->stats;
    double ll = -0.5 * D, df = (double)m;
    Sx->loglik = ll;
    Sx->deviance = D;
    Sx->aic = D + 2 * df;
    Sx->bic = D + log((double)npos) * df;
    Sx->df_model = df;
    Sx->df_resid = (double)npos - df;
    for (size_t i = 0; i < n; i++) {
        double eta = s->xb[i] + s->theta[0] * s->ut[s->top[i]] +
                     (s->L == 2 ? s->theta[1] * s->ul[s->leaf[i]] : 0);
        fit->fitted[i] = bh_link_inv(opt->link, eta);
        fit->resid[i] = s->y[i] - fit->fitted[i];
    }

    /* Random-effect side. */
    if (!(re = re_prepare(opt, s->L, &reused)))
        goto nomem;
    re->nagq = K;
    re->max_grad = maxg;
    double resid_var = opt->link == BH_LINK_PROBIT ? 1.0 : M_PI * M_PI / 3;
    double vsum = 0;
    for (size_t l = 0; l < s->L; l++)
        vsum += phi[pe + l] * phi[pe + l];
    re->icc_total = vsum / (vsum + resid_var);
    if (s->L == 2) {
        for (size_t f = 0; f < nt; f++)
            s->At[f] = 1;
        for (size_t r = 0; r < s->nl; r++)
            s->At[s->parent[r]] += s->theta[0] * s->theta[0] * s->Sl[r] /
                                   (1 + s->theta[1] * s->theta[1] * s->Sl[r]);
    }
    for (size_t l = 0; l < s->L; l++) {
        const bh_grouping *gr = &d->re[s->kre[l]];
        bh_glmm_group *G = &re->g[s->kre[l]];
        if (!re_group_fill(G, gr))
            goto nomem;
        double th = s->theta[l], t0 = s->theta[0], t1 = s->theta[1];
        G->sd = fabs(th);
        G->sd_se = fit->vcov[(p + s->kre[l]) * P + p + s->kre[l]];
        G->sd_se = G->sd_se >= 0 ? sqrt(G->sd_se) : NAN;
        G->icc = th * th / (vsum + resid_var);
        G->singular = fixed[pe + l] != 0;
        for (size_t j = 0; j < gr->ngroups; j++) {
            double v;
            if (s->L == 1) {
                G->mode[j] = th * s->ut[j];
                v = th * th / (1 + th * th * s->St[j]);
            } else if (l == 0) {
                G->mode[j] = th * s->ut[j];
                v = th * th / s->At[j];
            } else {
                size_t f = s->parent[j];
                double dr = 1 + t1 * t1 * s->Sl[j], e = t0 * t1 * s->Sl[j];
                G->mode[j] = th * s->ul[j];
                v = th * th * (1 / dr + e * e / (dr * dr * s->At[f]));
            }
            G->cond_sd[j] = sqrt(v);
        }
    }

    /* Warnings, only when something is wrong. */
    for (size_t l = 0; l < s->L; l++)
        if (fixed[pe + l] &&
            bh_fit_warn(fit, "singular fit: random-intercept SD for %s is 0",
                        d->re[s->kre[l]].name))
            goto nomem;
    if (!conv &&
        bh_fit_warn(fit, "the Newton iterations did not converge in %zu "
                    "iterations (largest gradient %.3g)", iters, maxg))
        goto nomem;
    if (s->pirls_fail &&
        bh_fit_warn(fit, "penalised IRLS for the conditional modes did not "
                    "converge in %zu iterations (%d times)",
                    opt->pirls_maxiter, s->pirls_fail))
        goto nomem;
    if (conv && maxg > GLMM_GRAD_WARN &&
        bh_fit_warn(fit, "gradient of the deviance at the optimum is not "
                    "small (largest %.3g)", maxg))
        goto nomem;
    if (!hpd &&
        bh_fit_warn(fit, "the Hessian of the deviance is not positive "
                    "definite at the optimum: no standard errors"))
        goto nomem;
    for (size_t j = 0; j < p; j++)
        if (fit->aliased[j] &&
            bh_fit_warn(fit, "not estimable (collinear): %s", fit->term[j]))
            goto nomem;

    bh_glmm_workspace_free(own);
    *out = fit;
    if (reout)
        *reout = re;
    else if (!reused)
        bh_glmm_re_free(re);
    return BH_OK;
nomem:
    st = nomem(err);
fail:
    /* recycled results stay the caller's, the start fit the workspace's */
    if (!recycled)
        bh_fit_free(fit);
    if (!reused)
        bh_glmm_re_free(re);
    bh_glmm_workspace_free(own);
    return st;
}
