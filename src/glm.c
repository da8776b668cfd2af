/* glm.c - generalized linear models by iteratively reweighted least squares.
 *
 * Steps.  init validates the data, sets R's starting values (mustart) and
 * forms the first X'WX and X'Wz, and decides which columns are estimable
 * (a tall-skinny QR of sqrt(w) X in row chunks, tsqr.h, then R's limited
 * pivoting, as lm.c, on the p x p factor; skipped when X'WX shows every
 * column far from collinear).  Each iterate solves X'WX b = X'Wz by
 * Cholesky on the equilibrated X'WX (falling back to the QR when the
 * Cholesky finds a tiny pivot), then updates eta in one chunked pass over
 * the rows that also forms X'WX (dgemm, or dsyrk for full fits of one
 * chunk) and X'Wz (dgemv) for the next iteration, and halves the step
 * while the deviance is not finite or rises.  result refactors sqrt(W) X
 * by the tall-skinny QR at the solution, so the bread (X'WX)^-1 and the
 * leverages come from R^-1, never from an inverted X'WX (lean fits of
 * well-conditioned designs: from the Cholesky factor), and then fills the
 * statistics and checks binary models for separation.  No n x p buffer
 * is kept: only chunks of rows and a few n-vectors.
 *
 * Passes over the rows run block by block (BH_GLM_BLOCK rows) on threads;
 * each block's sums go to a slot of its own and are added in block order,
 * so the numbers do not depend on the thread count.  The logit rows use
 * vmath.h's vectorised exp, log1p and row kernels.
 *
 * Link functions and the binomial variance follow R's families exactly,
 * including their clamps of mu to [eps, 1 - eps] (so separated fits give
 * R's numbers and the deviance stays finite for any eta); 1 - mu is
 * computed from eta directly rather than by subtraction.
 *
 * Firth's bias-reduced logistic regression replaces IRLS by Newton steps
 * on the modified score X'(w(y - mu) + h(1/2 - mu)), halving on the
 * penalised log-likelihood l + log|X'WX|/2.
 *
 * Shared with lm.c in spirit (could become one internal module): the
 * column naming, intercept detection and the dqrdc2-style QR; here in
 * double precision, since the weights themselves carry the iteration's
 * rounding.
 */
#include "blackhole/glm.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>

#include "blackhole/tsqr.h"
#include "blackhole/vmath.h"

/* Rows per dsyrk/dgemv call: large enough to amortise BLAS call overhead,
 * small enough that the chunk of X and its scaled copy stay in L1/L2
 * between the eta product, the scaling and X'WX (1e6 x 12 logit, per
 * iteration: 4096 rows 48 ms, 2048 45, 1024 and 512 43, 256 41, 8192
 * 55; 1024 keeps the BLAS calls few). */
#define GLM_CHUNK 1024
/* Coefficient-change test of convergence: every coefficient's relative
 * change (or the error bound estimated from the ratio of successive
 * changes, see bh_glm_iterate) below GLM_BETA_TOL, relative to |beta_j|
 * plus GLM_BETA_FLOOR times the largest |beta| (so coefficients near zero
 * are judged on the scale of the others). */
#define GLM_BETA_TOL 1e-10
#define GLM_BETA_FLOOR 1e-6
/* Rank tolerance of the QR (norm of a column orthogonal to the accepted
 * ones relative to its own norm), as lm's default BH_LM_TOL. */
#define GLM_RANK_TOL 1e-9
/* surely_full_rank's margin over GLM_RANK_TOL: a pivot ratio of 1e-5 or
 * more (squared pivots of 1e-10, whose rounding error is ~1e-15). */
#define GLM_FULLRANK_MARGIN 1e4
/* Smallest equilibrated Cholesky pivot ratio (each column's part
 * orthogonal to the ones before it, relative to its norm) with which a
 * lean fit takes its bread from the Cholesky factor (lean_cholesky). */
#define GLM_LEAN_PIVOT 1e-2
/* Smallest equilibrated Cholesky pivot accepted in the iterations; below
 * it the step is solved by the QR, which decides the rank properly. */
#define GLM_CHOL_TOL 1e-13
#define GLM_MAX_HALVINGS 30
/* Fitted probabilities closer than this to 0 or 1 trigger the separation
 * check (a linear program, which then decides). */
#define GLM_SEP_PROB 1e-6
#define GLM_SEP_TOL 1e-7
/* Pivots allowed per estimable column (Dantzig pricing needs a few per
 * column; the cap bounds the cost, O(n r) per pivot, on huge data). */
#define GLM_LP_PIVOTS_PER_COL 50
#define GLM_HL_GROUPS 10

/* Threads of one pass over the rows, at most (as many lanes). */
#define GLM_MAX_THREADS 64

#define EPS DBL_EPSILON
#define GLM_SQRT_2PI 2.5066282746310005024
#define GLM_2PI 6.2831853071795864769

/* Scratch of one thread in a pass over the rows: GLM_CHUNK x (p + 1)
 * (buf), GLM_CHUNK x (p + 2) (buf2), GLM_CHUNK (cw, sw), p + 1 (twork). */
typedef struct {
    double *buf, *buf2, *cw, *sw, *twork;
} glm_lane;

struct bh_glm_workspace {
    size_t nmax, pmax;
    /* Problem (set by init). */
    const bh_design *d;
    bh_glm_options opt;
    const double *y, *w, *off;
    size_t n, p;
    int freq, icpt, binary;
    size_t nok;           /* rows with positive weight */
    size_t fit_rank;      /* bh_glm_result: the rank at the estimate */
    double wsum;          /* sum of weights over them */
    int nonint;           /* poisson non-integer counts / binomial successes */
    /* Rows: eta, mu, 1 - mu, and scratch z, mu0, cmu0 (null model, sort
     * keys of binary_stats, Firth's score multipliers, the separation LP).
     * Separate blocks so that bh_glm_result can hand them to the fit
     * (fitted = mu, resid = eta, u = z, hat = mu0) instead of copying:
     * a NULL vector is reallocated by the next init. */
    double *eta, *mu, *cmu, *z, *mu0, *cmu0;
    /* The null model's fitted values when they are one constant (no
     * offset): mu0/cmu0 are then not filled. */
    int null_const;
    double null_mu, null_cmu;
    /* Coefficients (p, indexed by design column; 0 where aliased). */
    double *beta, *beta_old, *step;
    unsigned char *alias;
    size_t *act, r;       /* active (estimable) columns */
    /* r x r matrices, column-major, leading dimension r. */
    double *xtwx, *chol, *rinv, *rhs, *csc;
    double *buf, *buf2;   /* GLM_CHUNK x (p + 1) each */
    double *cw, *sw;      /* GLM_CHUNK: working weights and their roots */
    double *bfull;        /* p: coefficients, 0 outside the active set
                             (those of the last update_eta: rows_refresh
                             reads them; qr_step's scratch after that) */
    /* Tall-skinny R factor of the rows (tr, (p + 1) x (p + 1)) and its
     * dqrdc2-style pivoted QR (qa, same size: R' above the diagonal with
     * rdiag, reflectors below with hbeta; columns in perm order, scaled
     * by qscale). */
    double *tr, *qa, *twork, *hbeta, *rdiag, *qscale;
    size_t *perm;
    /* State. */
    double dev, devold, pl, rel;
    double brel_prev;     /* previous largest relative coefficient change */
    unsigned stall;       /* iterations in which it stopped shrinking       */
    size_t iter;
    int converged, have_old, halving_failed;
    int fastlogit;        /* IRLS with the logit link on a Bernoulli
                             deviance (binomial, fractional): update_eta
                             takes logit_rows */
    int hy;               /* cmu0 holds y log y + (1 - y) log(1 - y) per
                             row (fastlogit, y not binary); else 0 */
    int have_cp;          /* xtwx and rhs hold X'WX and X'Wz at the
                             current eta (IRLS, accumulated by the pass
                             that computed eta) */
    int rows_stale;       /* eta, mu, 1 - mu not stored for the current
                             coefficients (bfull): the fastlogit pass
                             needs them only per chunk; rows_refresh
                             recomputes them (same numbers) when read */
    unsigned halvings;
    int chol_cur;         /* chol and csc factor the current xtwx (init's
                             rank check factored it: the first iteration
                             need not again) */
    /* Passes over the rows run block by block (BH_GLM_BLOCK rows).  Each
     * block leaves its sums in a slot of its own (pa: two (p + 1)^2
     * matrices, pb: p + 1, pd and ppl: a deviance or Pearson sum, pflag),
     * and the caller adds the slots in block order: the numbers do not
     * depend on how many threads ran the blocks.  Lane 0 is buf, buf2,
     * cw, sw and twork above; lanes 1.. are allocated on first use. */
    size_t maxblk, slot, slotb; /* slots; doubles per pa matrix, pb slot */
    double *pa, *pb, *pd;
    long double *ppl;
    double *pwr;          /* per block: min and max of W / w at mustart */
    int *pflag;
    glm_lane *lanes;
    size_t nlanes;
    /* binary_stats' radix sort counters (4 x 65536 each), one per sort of
     * sort_both, allocated on first use and kept: refits (simulations)
     * allocate none */
    size_t *rcnt[2];
};

/* ---- families and links ---------------------------------------------- */

static const char *const fam_names[] = {"gaussian", "binomial", "poisson",
                                        "fractional", "dirichlet"};
static const char *const link_names[] = {"identity", "logit", "probit",
                                         "cloglog", "log"};

bh_status bh_family_parse(const char *s, bh_family *out, bh_error *err)
{
    char q[64];
    for (size_t k = 0; s && k < sizeof fam_names / sizeof *fam_names; k++)
        if (strcasecmp(s, fam_names[k]) == 0) {
            *out = (bh_family)k;
            return BH_OK;
        }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown family '%s' (expected gaussian, binomial, "
                        "poisson, fractional or dirichlet)",
                        bh_quote(q, sizeof q, s ? s : "", 40));
}

bh_status bh_link_parse(const char *s, bh_link *out, bh_error *err)
{
    char q[64];
    for (size_t k = 0; s && k < sizeof link_names / sizeof *link_names; k++)
        if (strcasecmp(s, link_names[k]) == 0) {
            *out = (bh_link)k;
            return BH_OK;
        }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown link '%s' (expected identity, logit, "
                        "probit, cloglog or log)",
                        bh_quote(q, sizeof q, s ? s : "", 40));
}

const char *bh_family_name(bh_family f)
{
    return (unsigned)f < sizeof fam_names / sizeof *fam_names ? fam_names[f] : "?";
}

const char *bh_link_name(bh_link l)
{
    return (unsigned)l < 5 ? link_names[l] : "?";
}

bh_link bh_family_default_link(bh_family f)
{
    switch (f) {
    case BH_FAM_BINOMIAL:
    case BH_FAM_FRACTIONAL: return BH_LINK_LOGIT;
    case BH_FAM_POISSON:
    case BH_FAM_DIRICHLET:  return BH_LINK_LOG;
    default:                return BH_LINK_IDENTITY;
    }
}

bh_status bh_family_check_link(bh_family f, bh_link l, bh_error *err)
{
    int ok = 0;
    switch (f) {
    case BH_FAM_GAUSSIAN:   ok = l == BH_LINK_IDENTITY; break;
    case BH_FAM_BINOMIAL:   ok = l == BH_LINK_LOGIT || l == BH_LINK_PROBIT ||
                                 l == BH_LINK_CLOGLOG; break;
    case BH_FAM_FRACTIONAL: ok = l == BH_LINK_LOGIT || l == BH_LINK_PROBIT;
                            break;
    case BH_FAM_POISSON:    ok = l == BH_LINK_LOG; break;
    case BH_FAM_DIRICHLET:  ok = l == BH_LINK_LOG; break;
    }
    if (ok)
        return BH_OK;
    return bh_error_set(err, BH_EUSAGE,
                        "family %s does not take link %s (binomial: logit, "
                        "probit, cloglog; fractional: logit, probit; "
                        "poisson: log; gaussian: identity; dirichlet: "
                        "log, with --param for the parametrisation)",
                        bh_family_name(f), bh_link_name(l));
}

/* R's probit clamp: -qnorm(.Machine$double.eps). */
static double probit_thresh(void)
{
    return -gsl_cdf_ugaussian_Pinv(EPS);
}

/* mu = g^-1(eta) and its complement 1 - mu, both with R's clamps; the
 * complement is computed from eta so it keeps full relative precision. */
static void link_inv2(bh_link l, double eta, double *mu, double *cmu)
{
    switch (l) {
    case BH_LINK_LOGIT:
        /* R's logit_linkinv: eps / (1 + eps) beyond |eta| = 30. */
        if (eta < -30) {
            *mu = EPS / (1 + EPS);
            *cmu = 1 / (1 + EPS);
        } else if (eta > 30) {
            *mu = 1 / (1 + EPS);
            *cmu = EPS / (1 + EPS);
        } else if (eta >= 0) {
            double e = exp(-eta);
            *mu = 1 / (1 + e);
            *cmu = e / (1 + e);
        } else {
            double e = exp(eta);
            *mu = e / (1 + e);
            *cmu = 1 / (1 + e);
        }
        return;
    case BH_LINK_PROBIT: {
        double t = probit_thresh();
        double e = eta < -t ? -t : (eta > t ? t : eta);
        *mu = gsl_cdf_ugaussian_P(e);
        *cmu = gsl_cdf_ugaussian_Q(e);
        return;
    }
    case BH_LINK_CLOGLOG: {
        double m = -expm1(-exp(eta));
        if (m > 1 - EPS) {
            *mu = 1 - EPS;
            *cmu = EPS;
        } else if (m < EPS) {
            *mu = EPS;
            *cmu = 1 - EPS;
        } else {
            *mu = m;
            *cmu = exp(-exp(eta));
        }
        return;
    }
    case BH_LINK_LOG: {
        double m = exp(eta);
        *mu = m > EPS ? m : EPS;
        *cmu = 1 - *mu;
        return;
    }
    default:
        *mu = eta;
        *cmu = 1 - eta;
    }
}

double bh_link_inv(bh_link l, double eta)
{
    double mu, cmu;
    link_inv2(l, eta, &mu, &cmu);
    return mu;
}

double bh_link_mu_eta(bh_link l, double eta)
{
    switch (l) {
    case BH_LINK_LOGIT: {
        if (eta > 30 || eta < -30)
            return EPS;
        double e = exp(-fabs(eta));
        return e / ((1 + e) * (1 + e));
    }
    case BH_LINK_PROBIT: {
        double v = exp(-0.5 * eta * eta) / GLM_SQRT_2PI;
        return v > EPS ? v : EPS;
    }
    case BH_LINK_CLOGLOG: {
        double e = eta < 700 ? eta : 700;
        double v = exp(e - exp(e));
        return v > EPS ? v : EPS;
    }
    case BH_LINK_LOG: {
        double v = exp(eta);
        return v > EPS ? v : EPS;
    }
    default:
        return 1;
    }
}

/* Unclamped logistic pieces for the higher derivatives. */
static void plogis2(double eta, double *m, double *c)
{
    if (eta >= 0) {
        double e = exp(-eta);
        *m = 1 / (1 + e);
        *c = e / (1 + e);
    } else {
        double e = exp(eta);
        *m = e / (1 + e);
        *c = 1 / (1 + e);
    }
}

double bh_link_mu_eta2(bh_link l, double eta)
{
    switch (l) {
    case BH_LINK_LOGIT: {
        double m, c;
        plogis2(eta, &m, &c);
        return m * c * (c - m);
    }
    case BH_LINK_PROBIT:
        return -eta * exp(-0.5 * eta * eta) / GLM_SQRT_2PI;
    case BH_LINK_CLOGLOG: {
        double t = exp(eta), d1 = exp(eta - t);
        return d1 == 0 ? 0 : d1 * (1 - t);
    }
    case BH_LINK_LOG:
        return exp(eta);
    default:
        return 0;
    }
}

double bh_link_mu_eta3(bh_link l, double eta)
{
    switch (l) {
    case BH_LINK_LOGIT: {
        double m, c;
        plogis2(eta, &m, &c);
        return m * c * (1 - 6 * m * c);
    }
    case BH_LINK_PROBIT:
        return (eta * eta - 1) * exp(-0.5 * eta * eta) / GLM_SQRT_2PI;
    case BH_LINK_CLOGLOG: {
        double t = exp(eta), d1 = exp(eta - t);
        return d1 == 0 ? 0 : d1 * ((1 - t) * (1 - t) - t);
    }
    case BH_LINK_LOG:
        return exp(eta);
    default:
        return 0;
    }
}

double bh_link_fun(bh_link l, double mu)
{
    switch (l) {
    case BH_LINK_LOGIT:   return log(mu / (1 - mu));
    case BH_LINK_PROBIT:  return gsl_cdf_ugaussian_Pinv(mu);
    case BH_LINK_CLOGLOG: return log(-log1p(-mu));
    case BH_LINK_LOG:     return log(mu);
    default:              return mu;
    }
}

static double variance(bh_family f, double mu, double cmu)
{
    switch (f) {
    case BH_FAM_BINOMIAL:
    case BH_FAM_FRACTIONAL: return mu * cmu;
    case BH_FAM_POISSON:    return mu;
    default:                return 1;
    }
}

/* y log(y / mu), 0 at y = 0 (R's y_log_y). */
static double ylogy(double y, double mu)
{
    return y > 0 ? y * log(y / mu) : 0;
}

/* Unit deviance times the prior weight. */
static double dev_resid(bh_family f, double y, double mu, double cmu,
                        double w)
{
    switch (f) {
    case BH_FAM_BINOMIAL:
    case BH_FAM_FRACTIONAL:
        return 2 * w * (ylogy(y, mu) + ylogy(1 - y, cmu));
    case BH_FAM_POISSON:
        return y > 0 ? 2 * w * (y * log(y / mu) - (y - mu)) : 2 * w * mu;
    default:
        return w * (y - mu) * (y - mu);
    }
}

/* ---- options and workspace ------------------------------------------- */

void bh_glm_default_options(bh_glm_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->family = BH_FAM_GAUSSIAN;
    opt->link = BH_LINK_IDENTITY;
    opt->tol = 1e-10;
    opt->maxiter = 100;
}

/* Allocate the n-vectors that are missing (all at first; those a
 * previous result handed to its fit afterwards).  Untouched pages cost no
 * memory, so vectors a fit does not use stay free.  0 or -1. */
static int nvec_alloc(bh_glm_workspace *ws)
{
    size_t n1 = ws->nmax ? ws->nmax : 1;
    double **nv[] = {&ws->eta, &ws->mu, &ws->cmu, &ws->z, &ws->mu0,
                     &ws->cmu0};
    int ok = 1;
    for (size_t k = 0; k < sizeof nv / sizeof *nv; k++)
        if (!*nv[k])
            ok &= (*nv[k] = malloc(n1 * sizeof(double))) != NULL;
    return ok ? 0 : -1;
}

bh_glm_workspace *bh_glm_workspace_alloc(size_t n, size_t p)
{
    bh_glm_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    size_t p1 = p ? p : 1;
    ws->nmax = n;
    ws->pmax = p;
    int ok = nvec_alloc(ws) == 0;
    double **pv[] = {&ws->beta, &ws->beta_old, &ws->step, &ws->rhs, &ws->csc,
                     &ws->hbeta, &ws->rdiag, &ws->qscale, &ws->bfull,
                     &ws->twork};
    for (size_t k = 0; k < sizeof pv / sizeof *pv; k++)
        ok &= (*pv[k] = malloc((p1 + 1) * sizeof(double))) != NULL;
    double **mv[] = {&ws->xtwx, &ws->chol, &ws->rinv, &ws->tr, &ws->qa};
    for (size_t k = 0; k < sizeof mv / sizeof *mv; k++)
        ok &= (*mv[k] = malloc((p1 + 1) * (p1 + 1) * sizeof(double))) != NULL;
    ok &= (ws->alias = calloc(p1, 1)) != NULL;
    ok &= (ws->act = malloc(p1 * sizeof *ws->act)) != NULL;
    ok &= (ws->perm = malloc(p1 * sizeof *ws->perm)) != NULL;
    /* Row chunks never exceed n rows: small fits (simulations allocate a
     * workspace per fit) get small buffers, not fresh pages to fault in.
     * At least 2 (p + 1) + 1 rows: the separation LP's scratch. */
    size_t ch = n < GLM_CHUNK ? n : GLM_CHUNK;
    if (ch < 2 * (p1 + 1) + 1)
        ch = 2 * (p1 + 1) + 1;
    ok &= (ws->buf = malloc(ch * (p1 + 1) * sizeof(double))) != NULL;
    ok &= (ws->buf2 = malloc(ch * (p1 + 2) * sizeof(double))) != NULL;
    ok &= (ws->cw = malloc(ch * sizeof(double))) != NULL;
    ok &= (ws->sw = malloc(ch * sizeof(double))) != NULL;
    ws->maxblk = n <= BH_GLM_BLOCK ? 1 : (n - 1) / BH_GLM_BLOCK + 1;
    ws->slot = (p1 + 1) * (p1 + 1);
    ws->slotb = p1 + 1;
    ok &= (ws->pa = malloc(ws->maxblk * 2 * ws->slot * sizeof(double))) != NULL;
    ok &= (ws->pb = malloc(ws->maxblk * ws->slotb * sizeof(double))) != NULL;
    ok &= (ws->pd = malloc(ws->maxblk * sizeof(double))) != NULL;
    ok &= (ws->ppl = malloc(ws->maxblk * sizeof(long double))) != NULL;
    ok &= (ws->pflag = malloc(ws->maxblk * sizeof(int))) != NULL;
    ok &= (ws->pwr = malloc(ws->maxblk * 2 * sizeof(double))) != NULL;
    if (!ok) {
        bh_glm_workspace_free(ws);
        return NULL;
    }
    return ws;
}

void bh_glm_workspace_free(bh_glm_workspace *ws)
{
    if (!ws)
        return;
    free(ws->eta);
    free(ws->mu);
    free(ws->cmu);
    free(ws->z);
    free(ws->mu0);
    free(ws->cmu0);
    free(ws->beta);
    free(ws->beta_old);
    free(ws->step);
    free(ws->rhs);
    free(ws->csc);
    free(ws->hbeta);
    free(ws->rdiag);
    free(ws->qscale);
    free(ws->bfull);
    free(ws->twork);
    free(ws->tr);
    free(ws->xtwx);
    free(ws->chol);
    free(ws->rinv);
    free(ws->alias);
    free(ws->act);
    free(ws->perm);
    free(ws->buf);
    free(ws->buf2);
    free(ws->cw);
    free(ws->sw);
    free(ws->qa);
    free(ws->pa);
    free(ws->pb);
    free(ws->pd);
    free(ws->ppl);
    free(ws->pflag);
    free(ws->pwr);
    free(ws->rcnt[0]);
    free(ws->rcnt[1]);
    for (size_t k = 1; k < ws->nlanes; k++) {
        free(ws->lanes[k].buf);
        free(ws->lanes[k].buf2);
        free(ws->lanes[k].cw);
        free(ws->lanes[k].sw);
        free(ws->lanes[k].twork);
    }
    free(ws->lanes);
    free(ws);
}

/* ---- passes over the rows, block by block ------------------------------ */

/* Rows [i0, i1) of block b, on lane L. */
typedef void (*glm_block_fn)(bh_glm_workspace *ws, glm_lane *L, size_t b,
                             size_t i0, size_t i1, void *ctx);

typedef struct {
    bh_glm_workspace *ws;
    glm_block_fn fn;
    void *ctx;
    size_t nblk;
    atomic_size_t next;
} glm_par;

typedef struct {
    glm_par *P;
    glm_lane *L;
} glm_par_arg;

static size_t nblocks(const bh_glm_workspace *ws)
{
    return ws->n <= BH_GLM_BLOCK ? 1 : (ws->n - 1) / BH_GLM_BLOCK + 1;
}

static double *slot_a(const bh_glm_workspace *ws, size_t b)
{
    return ws->pa + 2 * b * ws->slot;
}

static double *slot_r(const bh_glm_workspace *ws, size_t b)
{
    return ws->pa + (2 * b + 1) * ws->slot;
}

static double *slot_b(const bh_glm_workspace *ws, size_t b)
{
    return ws->pb + b * ws->slotb;
}

/* Blocks are taken in any order by any thread; only the slots differ. */
static void par_loop(glm_par *P, glm_lane *L)
{
    size_t n = P->ws->n;
    for (;;) {
        size_t b = atomic_fetch_add(&P->next, 1);
        if (b >= P->nblk)
            break;
        size_t i0 = b * BH_GLM_BLOCK;
        size_t i1 = n - i0 <= BH_GLM_BLOCK ? n : i0 + BH_GLM_BLOCK;
        P->fn(P->ws, L, b, i0, i1, P->ctx);
    }
}

static void *par_thread(void *arg)
{
    glm_par_arg *a = arg;
    par_loop(a->P, a->L);
    return NULL;
}

/* Lanes 0 .. want - 1 (allocating the missing ones); returns how many are
 * available (fewer when memory runs out: the pass then uses fewer
 * threads, with the same numbers). */
static size_t lanes_ready(bh_glm_workspace *ws, size_t want)
{
    if (!ws->lanes) {
        if (!(ws->lanes = calloc(GLM_MAX_THREADS, sizeof *ws->lanes)))
            return 1;
        ws->nlanes = 1;
    }
    ws->lanes[0] = (glm_lane){ws->buf, ws->buf2, ws->cw, ws->sw, ws->twork};
    size_t p1 = (ws->pmax ? ws->pmax : 1) + 1;
    while (ws->nlanes < want) {
        glm_lane *L = &ws->lanes[ws->nlanes];
        L->buf = malloc(GLM_CHUNK * p1 * sizeof(double));
        L->buf2 = malloc(GLM_CHUNK * (p1 + 1) * sizeof(double));
        L->cw = malloc(GLM_CHUNK * sizeof(double));
        L->sw = malloc(GLM_CHUNK * sizeof(double));
        L->twork = malloc(p1 * sizeof(double));
        if (!L->buf || !L->buf2 || !L->cw || !L->sw || !L->twork) {
            free(L->buf);
            free(L->buf2);
            free(L->cw);
            free(L->sw);
            free(L->twork);
            memset(L, 0, sizeof *L);
            break;
        }
        ws->nlanes++;
    }
    return want < ws->nlanes ? want : ws->nlanes;
}

/* fn on every block of rows.  One block (n <= BH_GLM_BLOCK, e.g. every
 * simulated data set) runs on the calling thread without asking how many
 * CPUs there are; more blocks use up to opt.threads threads (0: the
 * online CPUs), the calling thread among them. */
static void par_blocks(bh_glm_workspace *ws, glm_block_fn fn, void *ctx)
{
    glm_par P = {.ws = ws, .fn = fn, .ctx = ctx, .nblk = nblocks(ws)};
    atomic_init(&P.next, 0);
    glm_lane L0 = {ws->buf, ws->buf2, ws->cw, ws->sw, ws->twork};
    size_t T = 1;
    if (P.nblk > 1) {
        long cpus = ws->opt.threads ? 0 : sysconf(_SC_NPROCESSORS_ONLN);
        T = ws->opt.threads ? ws->opt.threads : cpus > 0 ? (size_t)cpus : 1;
        if (T > P.nblk)
            T = P.nblk;
        if (T > GLM_MAX_THREADS)
            T = GLM_MAX_THREADS;
        if (T > 1)
            T = lanes_ready(ws, T);
    }
    pthread_t th[GLM_MAX_THREADS];
    glm_par_arg args[GLM_MAX_THREADS];
    size_t started = 0;
    for (size_t t = 1; t < T; t++) {
        args[started] = (glm_par_arg){&P, &ws->lanes[t]};
        if (pthread_create(&th[started], NULL, par_thread, &args[started]))
            break;
        started++;
    }
    par_loop(&P, &L0);
    for (size_t k = 0; k < started; k++)
        pthread_join(th[k], NULL);
}

/* dst[k] = the blocks' src slots added in block order (len entries each,
 * slots stride apart). */
static void reduce_sum(double *dst, const double *src, size_t stride,
                       size_t nb, size_t len)
{
    memcpy(dst, src, len * sizeof *dst);
    for (size_t b = 1; b < nb; b++)
        for (size_t k = 0; k < len; k++)
            dst[k] += src[b * stride + k];
}

static double reduce_dev(const bh_glm_workspace *ws, size_t nb)
{
    double s = ws->pd[0];
    for (size_t b = 1; b < nb; b++)
        s += ws->pd[b];
    return s;
}

/* X'WX (r x r) and X'Wz (r) from the blocks' slots. */
static void reduce_cross(bh_glm_workspace *ws, size_t nb, int withz)
{
    size_t r = ws->r;
    ws->chol_cur = 0;
    reduce_sum(ws->xtwx, ws->pa, 2 * ws->slot, nb, r * r);
    if (withz)
        reduce_sum(ws->rhs, ws->pb, ws->slotb, nb, r);
}

/* The tall-skinny R factor (q x q into ws->tr, leading dimension q) of the
 * blocks' factors stacked in block order. */
static void reduce_tsqr(bh_glm_workspace *ws, size_t nb, size_t q)
{
    if (nb == 1) {
        memcpy(ws->tr, slot_r(ws, 0), q * q * sizeof *ws->tr);
        return;
    }
    bh_tsqr_reset(q, ws->tr, q);
    for (size_t b = 0; b < nb; b++) {
        /* As a chunk of rows, the block's factor is read whole: its
         * lower triangle (never written by the TSQR) must be zero. */
        double *R = slot_r(ws, b);
        for (size_t j = 0; j < q; j++)
            memset(R + j * q + j + 1, 0, (q - j - 1) * sizeof *R);
        bh_tsqr_update(q, ws->tr, q, R, q, q, ws->twork);
    }
}

/* ---- helpers ----------------------------------------------------------- */

static double wi_of(const bh_glm_workspace *ws, size_t i)
{
    return ws->w ? ws->w[i] : 1.0;
}

/* Working weight and working response of row i at the current eta:
 * W = w mu'^2 / V, z = eta - offset + (y - mu) / mu' (R's glm.fit; rows
 * with w = 0 or mu' = 0 get W = 0). */
static void working_at(const bh_glm_workspace *ws, size_t i, double eta,
                       double mu, double cmu, double *W, double *z)
{
    double wi = wi_of(ws, i);
    /* Logit: mu' = mu (1 - mu) from the stored pieces (R's
     * exp(-|eta|) / (1 + exp(-|eta|))^2 up to rounding, one exp fewer per
     * row), with R's clamp beyond |eta| = 30. */
    double me = ws->opt.link == BH_LINK_LOGIT
                    ? (fabs(eta) > 30 ? EPS : mu * cmu)
                    : bh_link_mu_eta(ws->opt.link, eta);
    double o = ws->off ? ws->off[i] : 0;
    if (!(wi > 0) || me == 0) {
        *W = 0;
        *z = eta - o;
        return;
    }
    double V = variance(ws->opt.family, mu, cmu);
    *W = wi * me * me / V;
    *z = eta - o + (ws->y[i] - mu) / me;
}

static void working(const bh_glm_workspace *ws, size_t i, double *W,
                    double *z)
{
    working_at(ws, i, ws->eta[i], ws->mu[i], ws->cmu[i], W, z);
}

/* eta = offset + X bfull and mu, 1 - mu for rows [i0, i0 + c), the same
 * numbers (same dgemv on the same chunk, link_inv2 as logit_row) as the
 * update_eta that left them unstored. */
static void chunk_rows(bh_glm_workspace *ws, glm_lane *L, size_t i0,
                       size_t c)
{
    size_t n = ws->n;
    double *eta = ws->eta + i0;
    if (ws->off)
        memcpy(eta, ws->off + i0, c * sizeof *eta);
    else
        memset(eta, 0, c * sizeof *eta);
    cblas_dgemv(CblasColMajor, CblasNoTrans, (int)c, (int)ws->p, 1.0,
                ws->d->x + i0, (int)n, ws->bfull, 1, 1.0, eta, 1);
    double *restrict mu = ws->mu + i0, *restrict cmu = ws->cmu + i0;
    if (ws->opt.link != BH_LINK_LOGIT) {
        for (size_t ii = 0; ii < c; ii++)
            link_inv2(ws->opt.link, eta[ii], &mu[ii], &cmu[ii]);
        return;
    }
    /* Logit: logit_row's branch-free arithmetic (the same vectorised exp,
     * e kept in cw), then R's clamp on the rows beyond |eta| = 30. */
    double *restrict e = L->cw;
    bh_vm_exp_negabs(c, eta, e);
    int odd = 0;
    for (size_t ii = 0; ii < c; ii++) {
        double q = (double)(eta[ii] >= 0), d = 1 + e[ii];
        mu[ii] = (q + (1 - q) * e[ii]) / d;
        cmu[ii] = ((1 - q) + q * e[ii]) / d;
        odd |= !(fabs(eta[ii]) <= 30);
    }
    if (odd)
        for (size_t ii = 0; ii < c; ii++)
            if (!(fabs(eta[ii]) <= 30))
                link_inv2(BH_LINK_LOGIT, eta[ii], &mu[ii], &cmu[ii]);
}

/* Store eta, mu and 1 - mu if update_eta left them out (everything that
 * reads them per row calls this first). */
static void refresh_block(bh_glm_workspace *ws, glm_lane *L, size_t b,
                          size_t i0, size_t i1, void *ctx)
{
    (void)b;
    (void)ctx;
    for (; i0 < i1; i0 += GLM_CHUNK)
        chunk_rows(ws, L, i0, i1 - i0 < GLM_CHUNK ? i1 - i0 : GLM_CHUNK);
}

static void rows_refresh(bh_glm_workspace *ws)
{
    if (!ws->rows_stale)
        return;
    par_blocks(ws, refresh_block, NULL);
    ws->rows_stale = 0;
}

/* Weights of rows [i0, i0 + c) at the current eta into ws->cw (W) and
 * ws->sw (sqrt(W)), and sqrt(W) z into sz when given: the IRLS working
 * weights and response, or for Firth the Fisher weights w mu (1 - mu)
 * (unclamped). */
static void chunk_weights(const bh_glm_workspace *ws, glm_lane *L,
                          size_t i0, size_t c, double *sz)
{
    for (size_t ii = 0; ii < c; ii++) {
        size_t i = i0 + ii;
        double W, z = 0;
        if (ws->opt.firth)
            W = wi_of(ws, i) * ws->mu[i] * ws->cmu[i];
        else
            working(ws, i, &W, &z);
        double s = sqrt(W);
        L->cw[ii] = W;
        L->sw[ii] = s;
        if (sz)
            sz[ii] = s * z;
    }
}

/* buf (c x r, leading dimension c) = diag(sw) x[:, act] for the c rows
 * at x (columns of x ldx apart), by vmath's vectorised product (-O2 does
 * not vectorise a loop of unknown length here). */
static void scale_rows(const double *restrict sw, const double *x,
                       size_t ldx, const size_t *act, size_t r, size_t c,
                       double *restrict buf)
{
    for (size_t k = 0; k < r; k++)
        bh_vm_mul(c, sw, x + act[k] * ldx, buf + k * c);
}

/* Add the chunk's sqrt(W) X (active columns, built in L->buf, weights
 * in L->sw) to A = X'WX (upper triangle, r x r) and, with sz, sqrt(W) z
 * to rhs = X'Wz. */
static void chunk_cross(const bh_glm_workspace *ws, glm_lane *L, size_t i0,
                        size_t c, const double *sz, double *A, double *rhs)
{
    size_t n = ws->n, r = ws->r;
    const double *x = ws->d->x;
    scale_rows(L->sw, x + i0, n, ws->act, r, c, L->buf);
    /* dgemm forms the whole r x r product faster than dsyrk its triangle
     * (no packing of a triangular result: 1e6 x 12 logit, 55 -> 49 ms per
     * iteration; many small fits alike), at a rounding-level difference
     * (the upper triangle is used).  Full fits of one chunk keep dsyrk,
     * which costs little there, so their results stay bit-identical to
     * earlier versions (golden outputs print 15 digits). */
    if (ws->opt.lean || ws->n > GLM_CHUNK)
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)r, (int)r,
                    (int)c, 1.0, L->buf, (int)c, L->buf, (int)c, 1.0,
                    A, (int)r);
    else
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)r, (int)c,
                    1.0, L->buf, (int)c, 1.0, A, (int)r);
    if (sz)
        cblas_dgemv(CblasColMajor, CblasTrans, (int)c, (int)r, 1.0,
                    L->buf, (int)c, sz, 1, 1.0, rhs, 1);
}

/* Block b's slots for X'WX and X'Wz, zeroed (r x r and r). */
static void cross_slots(const bh_glm_workspace *ws, size_t b, double **A,
                        double **rhs)
{
    *A = slot_a(ws, b);
    *rhs = slot_b(ws, b);
    memset(*A, 0, ws->r * ws->r * sizeof **A);
    memset(*rhs, 0, ws->r * sizeof **rhs);
}

static void cross_block(bh_glm_workspace *ws, glm_lane *L, size_t b,
                        size_t i0, size_t i1, void *ctx)
{
    int withz = *(const int *)ctx;
    double *A, *rhs;
    cross_slots(ws, b, &A, &rhs);
    for (; i0 < i1; i0 += GLM_CHUNK) {
        size_t c = i1 - i0 < GLM_CHUNK ? i1 - i0 : GLM_CHUNK;
        double *sz = withz ? L->buf + c * ws->r : NULL;
        chunk_weights(ws, L, i0, c, sz);
        chunk_cross(ws, L, i0, c, sz, A, rhs);
    }
}

/* A = X'WX and, with withz, rhs = X'Wz at the current eta (one pass). */
static void cross_products(bh_glm_workspace *ws, int withz)
{
    rows_refresh(ws);
    par_blocks(ws, cross_block, &withz);
    reduce_cross(ws, nblocks(ws), withz);
    if (withz && !ws->opt.firth)
        ws->have_cp = 1;
}

/* Row ii of logit_rows for |eta| <= 30 and wi > 0 with prior weights or
 * an offset (bh_vm_logit_rows does the others, with the same arithmetic
 * for wi = 1, o = 0): e = exp(-|eta|) in ev and L = log1p(e) in sw on
 * entry; W into cw and z into sz.  Arithmetic instead of branches or
 * fmax (which -O2 calls, spilling every live value around the call). */
static inline void logit_row(const double *restrict eta,
                             const double *restrict ev, double *restrict cw,
                             const double *restrict sw,
                             const double *restrict y, double wi, double o,
                             double h, size_t ii, double *restrict tv,
                             double *restrict sz)
{
    double et = eta[ii], e = ev[ii], d = 1 + e, L = sw[ii];
    /* q = 1 for eta >= 0, else 0: m = 1 / d and cm = e / d, or the
     * reverse, the same numbers as link_inv2 computes (q + (1 - q) e is
     * exactly 1 or e). */
    double q = (double)(et >= 0);
    double m = (q + (1 - q) * e) / d, cm = ((1 - q) + q * e) / d;
    double me = m * cm, yi = y[ii];
    double pos = q * et, neg = (q - 1) * et;
    tv[ii] = 2 * wi * (L + yi * neg + (1 - yi) * pos + h);
    cw[ii] = wi * me * me / me;
    sz[ii] = et - o + (yi - m) / me;
}

/* The IRLS pieces of rows [i0, i0 + c) for the logit link on a Bernoulli
 * deviance, in one loop from eta (the chunk's, c rows): mu and 1 - mu
 * (used, not stored: see rows_stale), the deviance (returned),
 * and what chunk_weights computes (W, sqrt(W), sqrt(W) z into sz).  One
 * exp and one log1p per row: with a = |eta|, e = exp(-a) and
 * L = log1p(e), -log(mu) = L + max(-eta, 0) and -log(1 - mu) =
 * L + max(eta, 0) (sums of non-negative terms, so each is accurate to a
 * few ulps, also where mu is near 1, which log(1 / mu) is not), and the
 * unit deviance y log(y / mu) + (1 - y) log((1 - y) / (1 - mu)) is
 * H(y) - y log(mu) - (1 - y) log(1 - mu), with H(y) = y log y +
 * (1 - y) log(1 - y) fixed per row (0 for a binary y; else kept in cmu0
 * by init).  mu, 1 - mu, W and z are computed exactly as link_inv2 and
 * working() do; rows beyond R's clamp (|eta| > 30) take those functions
 * and dev_resid. */
static double logit_rows(const bh_glm_workspace *ws, glm_lane *L,
                         size_t i0, size_t c, const double *restrict eta,
                         double *restrict sz)
{
    const double *restrict y = ws->y + i0;
    const double *restrict w = ws->w ? ws->w + i0 : NULL;
    const double *restrict off = ws->off ? ws->off + i0 : NULL;
    const double *restrict hy = ws->hy ? ws->cmu0 + i0 : NULL;
    double *restrict cw = L->cw, *restrict sw = L->sw;
    /* Per-row deviance terms and e (buf2 holds eta at c, free after). */
    double *restrict tv = L->buf2, *restrict ev = L->buf2 + 2 * c;
    /* exp and log1p over the whole chunk first, by the vectorised kernels
     * of vmath.h (a loop doing everything per row is bound by its long
     * chain of dependent operations); sw holds L until sqrt(W)
     * replaces it. */
    bh_vm_exp_negabs(c, eta, ev);
    bh_vm_log1p_unit(c, ev, sw);
    /* Every row as if |eta| <= 30 and w > 0, without branches or calls
     * (the few other rows are redone below). */
    int odd = 0;
    if (!w && !off)
        bh_vm_logit_rows(c, eta, ev, sw, y, hy, tv, cw, sz);
    else
        for (size_t ii = 0; ii < c; ii++) {
            double wi = w ? w[ii] : 1.0;
            logit_row(eta, ev, cw, sw, y, wi, off ? off[ii] : 0,
                      hy ? hy[ii] : 0, ii, tv, sz);
            odd |= !(wi > 0);
        }
    /* sqrt(W), and sqrt(W) z. */
    memcpy(sw, cw, c * sizeof *sw);
    bh_vm_sqrt_scale(c, sw, sz);
    for (size_t ii = 0; ii < c; ii++)
        odd |= !(fabs(eta[ii]) <= 30);
    if (odd)
        for (size_t ii = 0; ii < c; ii++) {
            double et = eta[ii], wi = w ? w[ii] : 1.0;
            if (fabs(et) <= 30 && wi > 0)
                continue;
            tv[ii] = 0;
            cw[ii] = sw[ii] = sz[ii] = 0;
            if (!(fabs(et) <= 30)) {
                double W, z, m, cm;
                link_inv2(BH_LINK_LOGIT, et, &m, &cm);
                if (wi > 0)
                    tv[ii] = dev_resid(ws->opt.family, y[ii], m, cm, wi);
                working_at(ws, i0 + ii, et, m, cm, &W, &z);
                cw[ii] = W;
                sw[ii] = sqrt(W);
                sz[ii] = sw[ii] * z;
            }
        }
    /* In row order, as the other paths sum the deviance. */
    double dev = 0;
    for (size_t ii = 0; ii < c; ii++)
        dev += tv[ii];
    return dev;
}

/* update_eta's pass over block b's rows (cp: also X'WX and X'Wz). */
static void eta_block(bh_glm_workspace *ws, glm_lane *L, size_t b,
                      size_t i0, size_t i1, void *ctx)
{
    size_t n = ws->n, p = ws->p;
    int cp = *(const int *)ctx;
    double dev = 0, *A = NULL, *rhs = NULL;
    if (cp)
        cross_slots(ws, b, &A, &rhs);
    for (; i0 < i1; i0 += GLM_CHUNK) {
        size_t c = i1 - i0 < GLM_CHUNK ? i1 - i0 : GLM_CHUNK;
        /* The fastlogit pass keeps eta in buf2 (past logit_rows' c
         * deviance terms): nothing reads the rows before the next
         * update_eta unless the iterations end or fall back to the QR,
         * and rows_refresh serves those (8 MB less written per vector and
         * iteration on 1e6 rows). */
        int fast = cp && ws->fastlogit;
        double *eta = fast ? L->buf2 + c : ws->eta + i0;
        if (ws->off)
            memcpy(eta, ws->off + i0, c * sizeof *eta);
        else
            memset(eta, 0, c * sizeof *eta);
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)c, (int)p, 1.0,
                    ws->d->x + i0, (int)n, ws->bfull, 1, 1.0, eta, 1);
        if (fast) {
            double *sz = L->buf + c * ws->r;
            dev += logit_rows(ws, L, i0, c, eta, sz);
            chunk_cross(ws, L, i0, c, sz, A, rhs);
            continue;
        }
        for (size_t i = i0; i < i0 + c; i++) {
            link_inv2(ws->opt.link, ws->eta[i], &ws->mu[i], &ws->cmu[i]);
            double wi = wi_of(ws, i);
            if (wi > 0)
                dev += dev_resid(ws->opt.family, ws->y[i], ws->mu[i],
                                 ws->cmu[i], wi);
        }
        if (cp) {
            double *sz = L->buf + c * ws->r;
            chunk_weights(ws, L, i0, c, sz);
            chunk_cross(ws, L, i0, c, sz, A, rhs);
        }
    }
    ws->pd[b] = dev;
}

/* eta = offset + X beta over the active columns; mu, 1 - mu (stored
 * unless fastlogit: rows_stale); returns the deviance.  One pass over the
 * rows: for IRLS (not Firth) it also forms X'WX and X'Wz at the new eta
 * while the chunk of X is in cache, ready for the next iteration (the
 * pass that accepts a step thus prepares the next one, and X is read once
 * per iteration). */
static double update_eta(bh_glm_workspace *ws, const double *beta)
{
    size_t p = ws->p;
    int cp = !ws->opt.firth;
    /* Coefficients outside the active set count as 0 (the halving may
     * have averaged in an old value of a column aliased since). */
    memset(ws->bfull, 0, p * sizeof *ws->bfull);
    for (size_t k = 0; k < ws->r; k++)
        ws->bfull[ws->act[k]] = beta[ws->act[k]];
    par_blocks(ws, eta_block, &cp);
    size_t nb = nblocks(ws);
    if (cp)
        reduce_cross(ws, nb, 1);
    ws->have_cp = cp;
    ws->rows_stale = cp && ws->fastlogit;
    return reduce_dev(ws, nb);
}

/* Cholesky of the equilibrated X'WX: chol = U with S A S = U'U (upper),
 * csc = S.  Returns 0 on success, -1 on a tiny or non-positive pivot. */
static int chol_factor(bh_glm_workspace *ws)
{
    size_t r = ws->r;
    double *U = ws->chol;
    for (size_t k = 0; k < r; k++) {
        double a = ws->xtwx[k * r + k];
        if (!(a > 0) || !isfinite(a))
            return -1;
        ws->csc[k] = 1 / sqrt(a);
    }
    for (size_t j = 0; j < r; j++)
        for (size_t i = 0; i <= j; i++)
            U[j * r + i] = ws->xtwx[j * r + i] * ws->csc[i] * ws->csc[j];
    for (size_t j = 0; j < r; j++) {
        for (size_t i = 0; i < j; i++) {
            double s = U[j * r + i];
            for (size_t k = 0; k < i; k++)
                s -= U[i * r + k] * U[j * r + k];
            U[j * r + i] = s / U[i * r + i];
        }
        double s = U[j * r + j];
        for (size_t k = 0; k < j; k++)
            s -= U[j * r + k] * U[j * r + k];
        if (!(s > GLM_CHOL_TOL))
            return -1;
        U[j * r + j] = sqrt(s);
    }
    return 0;
}

/* Solve (X'WX) t = v in place (v: r) with the Cholesky factor. */
static void chol_solve(const bh_glm_workspace *ws, double *v)
{
    size_t r = ws->r;
    const double *U = ws->chol;
    for (size_t k = 0; k < r; k++)
        v[k] *= ws->csc[k];
    for (size_t i = 0; i < r; i++) { /* U' t = v */
        double s = v[i];
        for (size_t k = 0; k < i; k++)
            s -= U[i * r + k] * v[k];
        v[i] = s / U[i * r + i];
    }
    for (size_t i = r; i-- > 0;) { /* U t = v */
        double s = v[i];
        for (size_t k = i + 1; k < r; k++)
            s -= U[k * r + i] * v[k];
        v[i] = s / U[i * r + i];
    }
    for (size_t k = 0; k < r; k++)
        v[k] *= ws->csc[k];
}

/* log det X'WX from the Cholesky factor. */
static double chol_logdet(const bh_glm_workspace *ws)
{
    double s = 0;
    for (size_t k = 0; k < ws->r; k++)
        s += 2 * log(ws->chol[k * ws->r + k]) - 2 * log(ws->csc[k]);
    return s;
}

/* Householder QR of the m x nc matrix a (column-major, leading dimension
 * m; column k holds design column cand[k], e.g. the tall-skinny R factor
 * of sqrt(w) X[:, cand]) with equilibrated columns and dqrdc2's limited
 * pivoting (a column whose part orthogonal to the accepted ones is below
 * GLM_RANK_TOL of its norm moves to the end).  R'R = X'WX, so the column
 * norms and the residual norms are those of the rows themselves.  ws->perm
 * gets the design column at each position; returns the rank. */
static size_t qr_factor(bh_glm_workspace *ws, double *a, size_t m,
                        const size_t *cand, size_t nc)
{
    for (size_t k = 0; k < nc; k++) {
        size_t j = cand[k];
        double *c = a + k * m;
        double s = 0;
        for (size_t i = 0; i < m; i++)
            s += c[i] * c[i];
        double nrm = sqrt(s);
        ws->qscale[j] = nrm > 0 ? 1 / nrm : 0;
        for (size_t i = 0; i < m; i++)
            c[i] *= ws->qscale[j];
        ws->perm[k] = j;
    }
    size_t pe = nc, k = 0;
    for (; k < pe && k < m; k++) {
        double nrm = 0;
        for (;;) {
            double *c = a + k * m;
            double s = 0;
            for (size_t i = k; i < m; i++)
                s += c[i] * c[i];
            nrm = sqrt(s);
            if (ws->qscale[ws->perm[k]] > 0 && nrm >= GLM_RANK_TOL)
                break;
            if (k + 1 >= pe) {
                pe = k;
                break;
            }
            /* Rotate column k to the end of the active block. */
            size_t pk = ws->perm[k];
            memcpy(ws->twork, c, m * sizeof *a);
            memmove(a + k * m, a + (k + 1) * m, (pe - k - 1) * m * sizeof *a);
            memcpy(a + (pe - 1) * m, ws->twork, m * sizeof *a);
            memmove(ws->perm + k, ws->perm + k + 1,
                    (pe - k - 1) * sizeof *ws->perm);
            ws->perm[pe - 1] = pk;
            pe--;
        }
        if (k >= pe)
            break;
        double *c = a + k * m;
        double alpha = c[k] > 0 ? -nrm : nrm;
        double vtv = 2 * nrm * (nrm + fabs(c[k]));
        c[k] -= alpha;
        ws->hbeta[k] = 2 / vtv;
        ws->rdiag[k] = alpha;
        for (size_t j = k + 1; j < nc; j++) {
            double *v = a + j * m;
            double s = 0;
            for (size_t i = k; i < m; i++)
                s += c[i] * v[i];
            s *= ws->hbeta[k];
            for (size_t i = k; i < m; i++)
                v[i] -= s * c[i];
        }
    }
    return k < pe ? k : pe;
}

/* Tall-skinny R factor of sqrt(W) [X[:, act], z] (withz) or of
 * sqrt(W) X[:, act] at the current eta, W the weights of chunk_weights
 * (sqrt(w) when prior is set: the prior weights alone), into ws->tr with
 * leading dimension q = r (+ 1); its leading r x r block is copied to
 * ws->qa (leading dimension r, zeros below the diagonal) for qr_factor.
 * Returns q. */
typedef struct {
    int withz, prior;
} tsqr_ctx;

static void tsqr_block(bh_glm_workspace *ws, glm_lane *L, size_t b,
                       size_t i0, size_t i1, void *ctx)
{
    const tsqr_ctx *t = ctx;
    size_t n = ws->n, r = ws->r, q = r + (t->withz ? 1 : 0);
    const double *x = ws->d->x;
    double *R = slot_r(ws, b);
    bh_tsqr_reset(q, R, q);
    for (; i0 < i1; i0 += GLM_CHUNK) {
        size_t c = i1 - i0 < GLM_CHUNK ? i1 - i0 : GLM_CHUNK;
        double *sz = t->withz ? L->buf + r * c : NULL;
        /* rows_refresh fused into this pass (X's chunk read once). */
        if (ws->rows_stale)
            chunk_rows(ws, L, i0, c);
        if (t->prior)
            for (size_t ii = 0; ii < c; ii++)
                L->sw[ii] = sqrt(wi_of(ws, i0 + ii));
        else
            chunk_weights(ws, L, i0, c, sz);
        scale_rows(L->sw, x + i0, n, ws->act, r, c, L->buf);
        bh_tsqr_update(q, R, q, L->buf, c, c, L->twork);
    }
}

static size_t tsqr_rows(bh_glm_workspace *ws, int withz, int prior)
{
    size_t r = ws->r, q = r + (withz ? 1 : 0);
    tsqr_ctx t = {withz, prior};
    par_blocks(ws, tsqr_block, &t);
    reduce_tsqr(ws, nblocks(ws), q);
    ws->rows_stale = 0;
    for (size_t j = 0; j < r; j++)
        for (size_t i = 0; i < r; i++)
            ws->qa[j * r + i] = i <= j ? ws->tr[j * q + i] : 0;
    return q;
}

/* Solve the weighted LS step by the QR of sqrt(W) X (used when the
 * Cholesky fails): updates the active set and ws->step (design order). */
static void qr_step(bh_glm_workspace *ws)
{
    size_t nc = ws->r;
    size_t q = tsqr_rows(ws, 1, 0);
    /* Q'sqrt(W) z from the tall-skinny factor, then the reflections of
     * the pivoted QR of R (qr_factor reads the candidates before it
     * writes perm). */
    double *v = ws->bfull;
    for (size_t k = 0; k < nc; k++)
        v[k] = ws->tr[nc * q + k];
    size_t r = qr_factor(ws, ws->qa, nc, ws->act, nc);
    size_t m = nc;
    const double *a = ws->qa;
    for (size_t k = 0; k < r; k++) {
        const double *h = a + k * m;
        double s = 0;
        for (size_t i = k; i < m; i++)
            s += h[i] * v[i];
        s *= ws->hbeta[k];
        for (size_t i = k; i < m; i++)
            v[i] -= s * h[i];
    }
    for (size_t k = r; k-- > 0;) {
        double s = v[k];
        for (size_t j = k + 1; j < r; j++)
            s -= a[j * m + k] * v[j];
        v[k] = s / ws->rdiag[k];
    }
    memset(ws->step, 0, ws->p * sizeof *ws->step);
    for (size_t k = 0; k < r; k++)
        ws->step[ws->perm[k]] = v[k] * ws->qscale[ws->perm[k]];
    for (size_t k = r; k < nc; k++)
        ws->alias[ws->perm[k]] = 1;
    ws->r = 0;
    for (size_t j = 0; j < ws->p; j++)
        if (!ws->alias[j])
            ws->act[ws->r++] = j;
}

/* ---- init / iterate / test ------------------------------------------- */

/* init's pass over block b's rows: whether X is finite (pflag) and, with
 * *ctx (R's mustart), the starting eta, mu, 1 - mu, the deviance at
 * mustart (pd), the first X'WX and X'Wz over all columns (slots a and b)
 * and the range of W / w over the rows with w > 0 (pwr; NAN when some
 * such row has W = 0). */
static void init_block(bh_glm_workspace *ws, glm_lane *L, size_t b,
                       size_t i0, size_t i1, void *ctx)
{
    int must = *(const int *)ctx;
    size_t n = ws->n, p = ws->p;
    const double *x = ws->d->x;
    bh_family fam = ws->opt.family;
    double *A = NULL, *rhs = NULL;
    if (must)
        cross_slots(ws, b, &A, &rhs);
    int bad = 0;
    double dev = 0, wmin = INFINITY, wmax = 0;
    /* Binary and fractional starting values depend on (w, y) alone, which
     * in a binary model takes a few values: the last row's results per
     * y <= 1/2 and y > 1/2 are reused when (w, y) repeats (one log and
     * one exp fewer per row; the same numbers). */
    int memo = fam == BH_FAM_BINOMIAL || fam == BH_FAM_FRACTIONAL;
    int memo_ok[2] = {0, 0};
    double memo_w[2] = {0, 0}, memo_y[2] = {0, 0}, memo_v[2][4];
    for (; i0 < i1; i0 += GLM_CHUNK) {
        size_t c = i1 - i0 < GLM_CHUNK ? i1 - i0 : GLM_CHUNK;
        for (size_t j = 0; j < p; j++) {
            const double *xc = x + j * n + i0;
            for (size_t ii = 0; ii < c; ii++)
                bad |= !isfinite(xc[ii]);
        }
        if (!must || bad)
            continue;
        for (size_t i = i0; i < i0 + c; i++) {
            double wi = wi_of(ws, i), yi = ws->y[i], m;
            int sl = yi > 0.5;
            if (memo && memo_ok[sl] && memo_w[sl] == wi && memo_y[sl] == yi) {
                ws->eta[i] = memo_v[sl][0];
                ws->mu[i] = memo_v[sl][1];
                ws->cmu[i] = memo_v[sl][2];
                if (wi > 0)
                    dev += memo_v[sl][3];
                continue;
            }
            switch (fam) {
            case BH_FAM_BINOMIAL:
            case BH_FAM_FRACTIONAL: m = (wi * yi + 0.5) / (wi + 1); break;
            case BH_FAM_POISSON:    m = yi + 0.1; break;
            default:                m = yi;
            }
            ws->eta[i] = bh_link_fun(ws->opt.link, m);
            link_inv2(ws->opt.link, ws->eta[i], &ws->mu[i], &ws->cmu[i]);
            /* R evaluates the first deviance at mustart itself.  Only
             * the first iteration's relative change reads it (the
             * iteration neither halves nor tests convergence against
             * it), which only the trace and a one-iteration limit
             * report; otherwise it is skipped (two logs per row). */
            double dr = wi > 0 && (ws->opt.trace || ws->opt.maxiter == 1)
                            ? dev_resid(fam, yi, m, 1 - m, wi) : 0;
            if (wi > 0)
                dev += dr;
            if (memo) {
                memo_ok[sl] = 1;
                memo_w[sl] = wi;
                memo_y[sl] = yi;
                memo_v[sl][0] = ws->eta[i];
                memo_v[sl][1] = ws->mu[i];
                memo_v[sl][2] = ws->cmu[i];
                memo_v[sl][3] = dr;
            }
        }
        double *sz = L->buf + c * p;
        chunk_weights(ws, L, i0, c, sz);
        chunk_cross(ws, L, i0, c, sz, A, rhs);
        for (size_t ii = 0; ii < c; ii++) {
            double wi = wi_of(ws, i0 + ii);
            if (!(wi > 0))
                continue;
            double q = L->cw[ii] / wi;
            wmin = q < wmin ? q : wmin;
            wmax = q > wmax ? q : wmax;
        }
    }
    ws->pd[b] = dev;
    ws->pflag[b] = bad;
    ws->pwr[2 * b] = wmin;
    ws->pwr[2 * b + 1] = wmax;
}

/* Is sqrt(w) X (all p columns) certainly of full rank for the rank
 * decision of qr_factor, judging from the equilibrated Cholesky factor of
 * X'WX at mustart (in ws->xtwx) alone?  Each squared pivot is the squared
 * ratio of a column's part orthogonal to the columns before it to its
 * norm, under the weights W; under the prior weights w that ratio can
 * differ by at most sqrt(max(W/w) / min(W/w)).  When every ratio exceeds
 * GLM_RANK_TOL by a wide margin (GLM_FULLRANK_MARGIN, far above the
 * Cholesky's rounding) after that factor, the QR would keep every column
 * in order, so its tall-skinny pass can be skipped. */
static int surely_full_rank(bh_glm_workspace *ws, size_t nblk)
{
    double wmin = INFINITY, wmax = 0;
    for (size_t b = 0; b < nblk; b++) {
        wmin = fmin(wmin, ws->pwr[2 * b]);
        wmax = fmax(wmax, ws->pwr[2 * b + 1]);
    }
    if (!(wmin > 0) || !isfinite(wmax) || chol_factor(ws))
        return 0;
    double pmin = INFINITY;
    for (size_t k = 0; k < ws->r; k++)
        pmin = fmin(pmin, ws->chol[k * ws->r + k]);
    return pmin / sqrt(wmax / wmin) >= GLM_FULLRANK_MARGIN * GLM_RANK_TOL;
}

bh_status bh_glm_init(bh_glm_workspace *ws, const bh_design *d,
                      const bh_glm_options *opt, bh_error *err)
{
    bh_glm_options defopt;
    if (!opt) {
        bh_glm_default_options(&defopt);
        opt = &defopt;
    }
    if (!ws || !d || !d->x || !d->y)
        return bh_error_set(err, BH_EINTERNAL, "glm: design without data");
    size_t n = d->n, p = d->p;
    if (ws->nmax < n || ws->pmax < p)
        return bh_error_set(err, BH_EUSAGE,
                            "glm: workspace for %zu x %zu is too small for "
                            "%zu x %zu", ws->nmax, ws->pmax, n, p);
    if (opt->family == BH_FAM_DIRICHLET)
        return bh_error_set(err, BH_EUSAGE,
                            "glm: the dirichlet family is estimated by bh_dirichlet_fit");
    bh_status st = bh_family_check_link(opt->family, opt->link, err);
    if (st)
        return st;
    if (opt->firth && !(opt->family == BH_FAM_BINOMIAL &&
                        opt->link == BH_LINK_LOGIT))
        return bh_error_set(err, BH_EUSAGE,
                            "glm: Firth's penalised likelihood is available "
                            "for family binomial with link logit only "
                            "(got %s, %s)", bh_family_name(opt->family),
                            bh_link_name(opt->link));
    if (!(opt->tol > 0) || opt->maxiter == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "glm: tolerance %g must be positive and maxiter "
                            "(%zu) at least 1", opt->tol, opt->maxiter);
    if (opt->response >= (d->m ? d->m : 1))
        return bh_error_set(err, BH_EUSAGE,
                            "glm: response %zu requested, the design has %zu",
                            opt->response + 1, d->m);
    if (p == 0)
        return bh_error_set(err, BH_EUSAGE, "glm: the model has no columns");
    /* A recycled fit's row vectors, when they have this workspace's size
     * (rows_cap: an earlier result of a workspace as large), become the
     * workspace's again instead of new allocations. */
    if (opt->recycle && opt->recycle->rows_cap >= ws->nmax && ws->nmax > 0) {
        bh_fit *rf = opt->recycle;
        double **fv[] = {&rf->fitted, &rf->resid, &rf->u, &rf->hat};
        double **wv[] = {&ws->mu, &ws->eta, &ws->z, &ws->mu0};
        for (int k = 0; k < 4; k++)
            if (!*wv[k] && *fv[k]) {
                *wv[k] = *fv[k];
                *fv[k] = NULL;
            }
    }
    if (nvec_alloc(ws))
        return bh_error_set(err, BH_ENOMEM, "glm: out of memory (%zu rows)",
                            n);
    ws->d = d;
    ws->opt = *opt;
    ws->n = n;
    ws->p = p;
    ws->y = d->y + opt->response * n;
    ws->w = d->w;
    ws->off = d->offset;
    ws->freq = d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY;
    ws->icpt = bh_design_has_intercept(d);
    ws->iter = 0;
    ws->converged = 0;
    ws->have_old = 0;
    ws->brel_prev = INFINITY;
    ws->stall = 0;
    ws->halving_failed = 0;
    ws->halvings = 0;
    ws->have_cp = 0;
    ws->chol_cur = 0;
    ws->rows_stale = 0;
    ws->rel = NAN;
    ws->nonint = 0;

    const char *src = d->source;
    const char *yname = d->ynames && d->ynames[opt->response]
                            ? d->ynames[opt->response] : "response";
    bh_family fam = opt->family;
    char nb[32];
    ws->nok = 0;
    ws->wsum = 0;
    ws->binary = fam == BH_FAM_BINOMIAL;
    for (size_t i = 0; i < n; i++) {
        double wi = wi_of(ws, i), yi = ws->y[i];
        size_t row = bh_design_data_row(d, i);
        if (!isfinite(wi) || wi < 0)
            return bh_error_at(err, BH_EDATA, src, row, 0,
                               "weight%s%s is %g in row %zu: weights must be "
                               "finite and non-negative",
                               d->weights_name ? " " : "",
                               d->weights_name ? d->weights_name : "", wi,
                               row);
        if (!isfinite(yi))
            return bh_error_at(err, BH_EDATA, src, row, 0,
                               "response %s is %g in row %zu: values must be "
                               "finite", yname, yi, row);
        if (ws->off && !isfinite(ws->off[i]))
            return bh_error_at(err, BH_EDATA, src, row, 0,
                               "offset is %g in row %zu: values must be "
                               "finite", ws->off[i], row);
        if (!(wi > 0))
            continue;
        ws->nok++;
        ws->wsum += wi;
        if ((fam == BH_FAM_BINOMIAL || fam == BH_FAM_FRACTIONAL) &&
            (yi < 0 || yi > 1))
            return bh_error_at(err, BH_EDATA, src, row, 0,
                               "%s response %s is %g in row %zu: values must "
                               "lie in [0, 1]%s", bh_family_name(fam), yname,
                               yi, row,
                               fam == BH_FAM_BINOMIAL
                                   ? " (proportions, with the number of "
                                     "trials as weights)" : "");
        if (fam == BH_FAM_POISSON && yi < 0)
            return bh_error_at(err, BH_EDATA, src, row, 0,
                               "poisson response %s is %g in row %zu: counts "
                               "must be non-negative", yname, yi, row);
        if (fam == BH_FAM_POISSON && yi != floor(yi))
            ws->nonint = 1;
        if (fam == BH_FAM_BINOMIAL && fabs(wi * yi - round(wi * yi)) > 1e-3)
            ws->nonint = 1;
        if (yi != 0 && yi != 1)
            ws->binary = 0;
    }
    ws->fastlogit = !opt->firth && opt->link == BH_LINK_LOGIT &&
                    (fam == BH_FAM_BINOMIAL || fam == BH_FAM_FRACTIONAL);
    ws->hy = ws->fastlogit && !ws->binary;
    for (size_t i = 0; ws->hy && i < n; i++) {
        double yi = ws->y[i];
        ws->cmu0[i] = yi > 0 && yi < 1 ? yi * log(yi) + (1 - yi) * log1p(-yi)
                                       : 0;
    }
    /* One pass over the rows: the check that X is finite and, when IRLS
     * starts from R's mustart, the starting eta and the first X'WX and
     * X'Wz over all columns (reduced to the estimable ones below), so the
     * first iteration need not read X again.  The rank decision is the
     * pivoted QR of the tall-skinny R factor of sqrt(w) X (exact
     * collinearity does not depend on the working weights, only on which
     * rows take part): a second pass, skipped when X'WX shows the columns
     * far from collinear (surely_full_rank). */
    const double *x = d->x;
    int must = !(opt->start || opt->firth);
    ws->r = p;
    for (size_t j = 0; j < p; j++)
        ws->act[j] = j;
    par_blocks(ws, init_block, &must);
    size_t nblk = nblocks(ws);
    int bad = 0;
    for (size_t b = 0; b < nblk; b++)
        bad |= ws->pflag[b];
    double dev = reduce_dev(ws, nblk);
    for (size_t j = 0; bad && j < p; j++)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(x[j * n + i]))
                return bh_error_at(err, BH_EDATA, src, bh_design_data_row(d, i), 0,
                                   "model column %s is %g in row %zu: values "
                                   "must be finite",
                                   bh_design_colname(ws->d, ws->opt.colnames, j, nb, sizeof nb),
                                   x[j * n + i], bh_design_data_row(d, i));
    if (ws->nok == 0)
        return bh_error_set(err, BH_EDATA,
                            "glm: no observations with positive weight");

    if (must)
        reduce_cross(ws, nblk, 1);
    size_t r = p;
    if (!must || !surely_full_rank(ws, nblk)) {
        tsqr_rows(ws, 0, 1);
        /* qr_factor reads the candidates (act) before it writes perm. */
        r = qr_factor(ws, ws->qa, p, ws->act, p);
    } else {
        for (size_t k = 0; k < p; k++)
            ws->perm[k] = k;
        ws->chol_cur = 1; /* every column kept: X'WX stays as factored */
    }
    memset(ws->alias, 0, p);
    for (size_t k = r; k < p; k++)
        ws->alias[ws->perm[k]] = 1;
    ws->r = 0;
    for (size_t j = 0; j < p; j++)
        if (!ws->alias[j])
            ws->act[ws->r++] = j;
    if (ws->r == 0)
        return bh_error_set(err, BH_EDATA,
                            "glm: no estimable column (all are zero on the "
                            "rows with positive weight)");

    memset(ws->beta, 0, p * sizeof *ws->beta);
    if (opt->start) {
        for (size_t j = 0; j < p; j++) {
            if (!isfinite(opt->start[j]))
                return bh_error_set(err, BH_EUSAGE,
                                    "glm: starting value %zu (%s) is %g",
                                    j + 1, bh_design_colname(ws->d, ws->opt.colnames, j, nb, sizeof nb),
                                    opt->start[j]);
            ws->beta[j] = ws->alias[j] ? 0 : opt->start[j];
        }
    }
    if (opt->start || opt->firth) {
        /* Firth's Newton iterations start from beta = 0 (mu = 1/2 plus
         * offset) unless told otherwise. */
        ws->dev = ws->devold = update_eta(ws, ws->beta);
        memcpy(ws->beta_old, ws->beta, p * sizeof *ws->beta);
        ws->have_old = 1;
        if (!isfinite(ws->dev))
            return bh_error_set(err, BH_EUSAGE,
                                "glm: the deviance is not finite at the "
                                "starting values");
        if (opt->firth) {
            cross_products(ws, 0);
            if (chol_factor(ws))
                return bh_error_set(err, BH_ENUMERIC,
                                    "glm (Firth): X'WX is singular at the "
                                    "starting values");
            ws->pl = -0.5 * ws->dev + 0.5 * chol_logdet(ws);
        }
        return BH_OK;
    }

    /* R's mustart (computed in the pass above): keep X'WX and X'Wz of the
     * estimable columns (in place: every entry moves to a lower index). */
    r = ws->r;
    for (size_t kb = 0; kb < r; kb++) {
        size_t jb = ws->act[kb];
        for (size_t ka = 0; ka <= kb; ka++)
            ws->xtwx[kb * r + ka] = ws->xtwx[jb * p + ws->act[ka]];
        ws->rhs[kb] = ws->rhs[jb];
    }
    ws->have_cp = 1;
    ws->dev = ws->devold = dev;
    return BH_OK;
}

/* Firth: one Newton step on the modified score with halving on the
 * penalised log-likelihood. */
static bh_status firth_iterate(bh_glm_workspace *ws, bh_error *err)
{
    size_t n = ws->n, r = ws->r, p = ws->p;
    const double *x = ws->d->x;
    /* X'WX at the current beta, W = w mu (1 - mu) (unclamped). */
    cross_products(ws, 0);
    if (chol_factor(ws))
        return bh_error_set(err, BH_ENUMERIC,
                            "glm (Firth): X'WX is numerically singular at "
                            "iteration %zu", ws->iter + 1);
    /* Leverages h_i = W_i ||U^-T S x_i||^2, then the modified score. */
    double *a = ws->mu0; /* scratch: score multipliers */
    glm_lane L0 = {ws->buf, ws->buf2, ws->cw, ws->sw, ws->twork};
    for (size_t i0 = 0; i0 < n; i0 += GLM_CHUNK) {
        size_t c = n - i0 < GLM_CHUNK ? n - i0 : GLM_CHUNK;
        chunk_weights(ws, &L0, i0, c, NULL);
        for (size_t k = 0; k < r; k++) {
            const double *xc = x + ws->act[k] * n + i0;
            double *bc = ws->buf + k * c;
            for (size_t ii = 0; ii < c; ii++)
                bc[ii] = ws->sw[ii] * xc[ii] * ws->csc[k];
        }
        cblas_dtrsm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans,
                    CblasNonUnit, (int)c, (int)r, 1.0, ws->chol, (int)r,
                    ws->buf, (int)c);
        for (size_t ii = 0; ii < c; ii++) {
            size_t i = i0 + ii;
            double h = 0;
            for (size_t k = 0; k < r; k++)
                h += ws->buf[k * c + ii] * ws->buf[k * c + ii];
            double wi = wi_of(ws, i);
            a[i] = wi > 0 ? wi * (ws->y[i] - ws->mu[i]) +
                                h * (0.5 - ws->mu[i])
                          : 0;
        }
    }
    for (size_t k = 0; k < r; k++)
        ws->rhs[k] = cblas_ddot((int)n, x + ws->act[k] * n, 1, a, 1);
    chol_solve(ws, ws->rhs);
    memcpy(ws->beta_old, ws->beta, p * sizeof *ws->beta);
    double plold = ws->pl, devold = ws->dev;
    double f = 1;
    unsigned halv = 0;
    for (;;) {
        for (size_t k = 0; k < r; k++)
            ws->beta[ws->act[k]] = ws->beta_old[ws->act[k]] + f * ws->rhs[k];
        double dev = update_eta(ws, ws->beta);
        double pl = -INFINITY;
        if (isfinite(dev)) {
            cross_products(ws, 0);
            if (chol_factor(ws) == 0)
                pl = -0.5 * dev + 0.5 * chol_logdet(ws);
        }
        /* Accept an increase, or no worse than rounding. */
        if (isfinite(pl) &&
            pl >= plold - 1e-12 * (fabs(plold) + 0.1)) {
            ws->dev = dev;
            ws->pl = pl;
            break;
        }
        if (++halv > GLM_MAX_HALVINGS) {
            /* No progress possible: stay at the previous point. */
            memcpy(ws->beta, ws->beta_old, p * sizeof *ws->beta);
            ws->dev = update_eta(ws, ws->beta);
            ws->pl = plold;
            ws->halving_failed = 1;
            break;
        }
        f *= 0.5;
    }
    ws->halvings = halv;
    ws->devold = devold;
    /* Convergence on the size of the step: these Newton steps use the
     * expected information, not the Jacobian of the modified score, so
     * they converge linearly (slowly for separated data) and a small
     * change in the penalised deviance does not mean a small error.  The
     * step test is floored at rounding level. */
    ws->rel = fabs(-2 * ws->pl + 2 * plold) / (fabs(2 * ws->pl) + 0.1);
    double smax = 0, bmax = 0;
    for (size_t k = 0; k < r; k++) {
        size_t j = ws->act[k];
        smax = fmax(smax, fabs(ws->beta[j] - ws->beta_old[j]));
        bmax = fmax(bmax, fabs(ws->beta[j]));
    }
    ws->converged = smax <= fmax(ws->opt.tol, 1e-13) * (1 + bmax);
    ws->iter++;
    return BH_OK;
}

bh_status bh_glm_iterate(bh_glm_workspace *ws, bh_error *err)
{
    if (!ws || !ws->d)
        return bh_error_set(err, BH_EUSAGE, "glm: iterate before init");
    bh_status st = BH_OK;
    if (ws->opt.firth) {
        st = firth_iterate(ws, err);
    } else {
        size_t p = ws->p, r;
        /* X'WX and X'Wz at the current eta: usually formed already by the
         * pass that computed eta. */
        if (!ws->have_cp)
            cross_products(ws, 1);
        r = ws->r;
        if (ws->chol_cur || chol_factor(ws) == 0) {
            ws->chol_cur = 0;
            chol_solve(ws, ws->rhs);
            memset(ws->step, 0, p * sizeof *ws->step);
            for (size_t k = 0; k < r; k++)
                ws->step[ws->act[k]] = ws->rhs[k];
        } else {
            qr_step(ws);
            if (ws->r == 0)
                return bh_error_set(err, BH_ENUMERIC,
                                    "glm: every column is numerically zero "
                                    "under the working weights at iteration "
                                    "%zu", ws->iter + 1);
        }
        /* ws->step holds the new coefficients (IRLS solves for them). */
        double dev = update_eta(ws, ws->step);
        unsigned halv = 0;
        /* Halve towards the previous coefficients while the deviance is
         * not finite (R) or rises (which R's glm.fit does not check; its
         * successor glm2 does). */
        while (!isfinite(dev) ||
               (ws->have_old &&
                dev - ws->devold > 1e-12 * (fabs(dev) + 0.1))) {
            if (!ws->have_old)
                return bh_error_set(err, BH_ENUMERIC,
                                    "glm: the deviance is not finite after "
                                    "the first iteration and there are no "
                                    "previous coefficients to step back to "
                                    "(supply starting values)");
            if (++halv > GLM_MAX_HALVINGS) {
                memcpy(ws->step, ws->beta_old, p * sizeof *ws->step);
                dev = update_eta(ws, ws->step);
                ws->halving_failed = 1;
                break;
            }
            for (size_t j = 0; j < p; j++)
                ws->step[j] = 0.5 * (ws->step[j] + ws->beta_old[j]);
            dev = update_eta(ws, ws->step);
        }
        ws->halvings = halv;
        /* A small deviance change alone leaves the coefficients at about
         * sqrt(tol) relative accuracy (Fisher scoring with a non-canonical
         * link converges linearly), so convergence also needs the
         * coefficients to have stopped moving; a deviance that no longer
         * changes at all ends the iteration either way. */
        /* From R's mustart there are no previous coefficients: the first
         * change counts as infinite. */
        double bmax = 0, brel = ws->have_old ? 0 : INFINITY;
        for (size_t k = 0; k < ws->r; k++)
            bmax = fmax(bmax, fabs(ws->step[ws->act[k]]));
        for (size_t k = 0; ws->have_old && k < ws->r; k++) {
            size_t j = ws->act[k];
            double sc = fabs(ws->step[j]) + GLM_BETA_FLOOR * bmax + 1e-300;
            brel = fmax(brel, fabs(ws->step[j] - ws->beta_old[j]) / sc);
        }
        int had_old = ws->have_old;
        memcpy(ws->beta, ws->step, p * sizeof *ws->beta);
        ws->dev = dev;
        ws->rel = fabs(dev - ws->devold) / (fabs(dev) + 0.1);
        /* At the limit of double precision (ill-conditioned designs) the
         * coefficient change stops shrinking: two such iterations with the
         * deviance converged end the iteration too. */
        if (had_old && ws->rel < ws->opt.tol && ws->iter > 0 && brel > 0.5 * ws->brel_prev)
            ws->stall++;
        else
            ws->stall = 0;
        /* The error left in the new coefficients: for steps that
         * contract by rho = brel / brel_prev < 1/2, a contraction's
         * a-posteriori bound rho / (1 - rho) * brel.  IRLS with the
         * canonical link is Newton's method, whose steps shrink
         * quadratically: the step after one of ~1e-8 is ~1e-16, which the
         * bound sees without taking it (one pass over the rows fewer;
         * Fisher scoring's linear steps still wait for their size). */
        double rho = brel / ws->brel_prev;
        int small = brel <= GLM_BETA_TOL ||
                    (halv == 0 && isfinite(ws->brel_prev) && rho < 0.5 &&
                     brel * rho / (1 - rho) <= GLM_BETA_TOL);
        ws->brel_prev = brel;
        ws->converged = had_old && ws->rel < ws->opt.tol &&
                        (small || ws->stall >= 2);
        ws->devold = dev;
        memcpy(ws->beta_old, ws->beta, p * sizeof *ws->beta);
        ws->have_old = 1;
        ws->iter++;
    }
    if (!st && ws->opt.trace)
        ws->opt.trace(ws->opt.trace_ctx, ws->iter, ws->dev, ws->rel,
                      ws->halvings);
    return st;
}

int bh_glm_test(const bh_glm_workspace *ws)
{
    return ws && ws->converged;
}

/* ---- statistics -------------------------------------------------------- */

/* Log-likelihood at (mu, cmu) as R's logLik.glm (family aic), with dev the
 * deviance there (gaussian); row i at mu[i * stride] (stride 0: one
 * constant).  Fractional: the Bernoulli quasi-likelihood. */
typedef struct {
    const double *mu, *cmu;
    size_t stride;
} ll_ctx;

/* loglik_at's sum over block b's rows (ppl; pflag: -Inf). */
static void ll_block(bh_glm_workspace *ws, glm_lane *L, size_t b, size_t i0,
                     size_t i1, void *ctx)
{
    (void)L;
    const ll_ctx *c = ctx;
    const double *mu = c->mu, *cmu = c->cmu;
    size_t stride = c->stride;
    bh_family fam = ws->opt.family;
    long double ll = 0;
    ws->pflag[b] = 0;
    for (size_t i = i0; i < i1; i++) {
        double wi = wi_of(ws, i), y = ws->y[i];
        if (!(wi > 0))
            continue;
        if (fam == BH_FAM_BINOMIAL) {
            /* dbinom(round(w y), round(w), mu) * w / round(w). */
            double m = round(wi), k = round(wi * y);
            if (m <= 0)
                continue;
            double l = gsl_sf_lnchoose((unsigned)m, (unsigned)k);
            if (k > 0)
                l += k * log(mu[i * stride]);
            if (m - k > 0)
                l += (m - k) * log(cmu[i * stride]);
            ll += wi / m * l;
        } else if (fam == BH_FAM_FRACTIONAL) {
            if (y > 0)
                ll += wi * y * log(mu[i * stride]);
            if (y < 1)
                ll += wi * (1 - y) * log(cmu[i * stride]);
        } else {
            /* R's dpois is -Inf (with a warning) for non-integer counts. */
            if (y != floor(y)) {
                ws->pflag[b] = 1;
                break;
            }
            ll += wi * ((y > 0 ? y * log(mu[i * stride]) : 0) -
                        mu[i * stride] - gsl_sf_lngamma(y + 1));
        }
    }
    ws->ppl[b] = ll;
}

static double loglik_at(bh_glm_workspace *ws, const double *mu,
                        const double *cmu, size_t stride, double dev)
{
    if (ws->opt.family == BH_FAM_GAUSSIAN) {
        double N = (double)ws->nok, slw = 0;
        for (size_t i = 0; i < ws->n; i++)
            if (wi_of(ws, i) > 0)
                slw += log(wi_of(ws, i));
        return -0.5 * N * (log(GLM_2PI * dev / N) + 1) + 0.5 * slw;
    }
    ll_ctx c = {mu, cmu, stride};
    par_blocks(ws, ll_block, &c);
    long double ll = 0;
    for (size_t b = 0; b < nblocks(ws); b++) {
        if (ws->pflag[b])
            return -INFINITY;
        ll += ws->ppl[b];
    }
    return (double)ll;
}

/* The deviance at (mu, cmu) (an ll_ctx) over block b's rows (pd). */
static void dev_block(bh_glm_workspace *ws, glm_lane *L, size_t b, size_t i0,
                      size_t i1, void *ctx)
{
    (void)L;
    const ll_ctx *c = ctx;
    double dev = 0;
    for (size_t i = i0; i < i1; i++) {
        double wi = wi_of(ws, i);
        if (wi > 0)
            dev += dev_resid(ws->opt.family, ws->y[i], c->mu[i * c->stride],
                             c->cmu[i * c->stride], wi);
    }
    ws->pd[b] = dev;
}

/* The null model of R's glm: intercept only (weighted mean) or, with an
 * offset, intercept + offset fitted by IRLS; without an intercept, the
 * offset alone.  Fills mu0/cmu0 (or, without an offset, the constants
 * null_mu/null_cmu) and returns the null deviance. */
static double null_model(bh_glm_workspace *ws, int *conv)
{
    size_t n = ws->n;
    bh_family fam = ws->opt.family;
    bh_link link = ws->opt.link;
    *conv = 1;
    ws->null_const = !ws->off;
    if (!ws->off && !ws->icpt) {
        link_inv2(link, 0, &ws->null_mu, &ws->null_cmu);
    } else if (!ws->icpt) {
        for (size_t i = 0; i < n; i++)
            link_inv2(link, ws->off[i], &ws->mu0[i], &ws->cmu0[i]);
    } else if (!ws->off) {
        long double sy = 0, sw = 0;
        for (size_t i = 0; i < n; i++) {
            sy += (long double)wi_of(ws, i) * ws->y[i];
            sw += wi_of(ws, i);
        }
        ws->null_mu = (double)(sy / sw);
        ws->null_cmu = (double)((sw - sy) / sw);
    } else {
        /* Scalar IRLS from the full model's fitted values (R's fit2). */
        double *eta0 = ws->z;
        long double num = 0, den = 0;
        double devold = 0, b = 0;
        for (size_t i = 0; i < n; i++) {
            double wi = wi_of(ws, i);
            eta0[i] = ws->eta[i];
            ws->mu0[i] = ws->mu[i];
            ws->cmu0[i] = ws->cmu[i];
            if (wi > 0)
                devold += dev_resid(fam, ws->y[i], ws->mu[i], ws->cmu[i], wi);
        }
        *conv = 0;
        for (size_t it = 0; it < ws->opt.maxiter; it++) {
            num = den = 0;
            for (size_t i = 0; i < n; i++) {
                double wi = wi_of(ws, i);
                double me = bh_link_mu_eta(link, eta0[i]);
                if (!(wi > 0) || me == 0)
                    continue;
                double W = wi * me * me / variance(fam, ws->mu0[i],
                                                   ws->cmu0[i]);
                double z = eta0[i] - ws->off[i] +
                           (ws->y[i] - ws->mu0[i]) / me;
                num += W * z;
                den += W;
            }
            b = (double)(num / den);
            double dev = 0;
            for (size_t i = 0; i < n; i++) {
                eta0[i] = b + ws->off[i];
                link_inv2(link, eta0[i], &ws->mu0[i], &ws->cmu0[i]);
                double wi = wi_of(ws, i);
                if (wi > 0)
                    dev += dev_resid(fam, ws->y[i], ws->mu0[i], ws->cmu0[i],
                                     wi);
            }
            double rel = fabs(dev - devold) / (fabs(dev) + 0.1);
            devold = dev;
            if (rel < ws->opt.tol) {
                *conv = 1;
                break;
            }
        }
    }
    ll_ctx c = {ws->null_const ? &ws->null_mu : ws->mu0,
                ws->null_const ? &ws->null_cmu : ws->cmu0,
                ws->null_const ? 0 : 1};
    par_blocks(ws, dev_block, &c);
    return reduce_dev(ws, nblocks(ws));
}

typedef struct {
    double f, y, w;
} fyw;

static int cmp_fyw(const void *a, const void *b)
{
    double x = ((const fyw *)a)->f, y = ((const fyw *)b)->f;
    return (x > y) - (x < y);
}

/* Order-preserving unsigned image of a double (-0 counts as 0; no NaN). */
static uint64_t fkey(double f)
{
    uint64_t u;
    f += 0.0;
    memcpy(&u, &f, sizeof u);
    return u >> 63 ? ~u : u | (UINT64_C(1) << 63);
}

enum { RADIX_COUNTS = 4 * 65536 };

/* Stable ascending sort of m elements of es bytes (es a multiple of 8)
 * whose first member is the double key: LSD radix sort on 16-bit digits of
 * fkey, skipping digits all keys share; tmp: m elements of scratch; counts:
 * RADIX_COUNTS counters of scratch, or NULL (allocated here).  Returns 0
 * when the counters cannot be allocated (nothing done). */
static int radix_sort(void *v, size_t m, size_t es, void *tmp, size_t *counts)
{
    if (m < 2)
        return 1;
    size_t *cnt = counts ? counts : malloc(RADIX_COUNTS * sizeof *cnt);
    if (!cnt)
        return 0;
    memset(cnt, 0, 4 * 65536 * sizeof *cnt);
    unsigned char *src = v, *dst = tmp;
    double key;
    for (size_t i = 0; i < m; i++) {
        memcpy(&key, src + i * es, sizeof key);
        uint64_t k = fkey(key);
        for (int d = 0; d < 4; d++)
            cnt[d * 65536 + ((k >> (16 * d)) & 0xFFFF)]++;
    }
    memcpy(&key, src, sizeof key);
    uint64_t k0 = fkey(key);
    for (int d = 0; d < 4; d++) {
        size_t *c = cnt + d * 65536;
        if (c[(k0 >> (16 * d)) & 0xFFFF] == m)
            continue;                     /* one value of this digit */
        size_t pos = 0;
        for (size_t b = 0; b < 65536; b++) {
            size_t t = c[b];
            c[b] = pos;
            pos += t;
        }
        for (size_t i = 0; i < m; i++) {
            memcpy(&key, src + i * es, sizeof key);
            size_t at = c[(fkey(key) >> (16 * d)) & 0xFFFF]++;
            memcpy(dst + at * es, src + i * es, es);
        }
        unsigned char *t = src;
        src = dst;
        dst = t;
    }
    if (src != (unsigned char *)v)
        memcpy(v, src, m * es);
    if (cnt != counts)
        free(cnt);
    return 1;
}

/* Stable sort of (f, y, w) records by f.  Stable like glibc's merge sort
 * behind qsort here, so ties keep the same row order and every sum over the
 * sorted records is bit-identical to the qsort path, which remains the
 * fallback when the scratch cannot be allocated. */
static void sort_fyw(fyw *v, size_t m)
{
    fyw *tmp = m > 1 ? malloc(m * sizeof *tmp) : NULL;
    if (m > 1 && !(tmp && radix_sort(v, m, sizeof *v, tmp, NULL)))
        qsort(v, m, sizeof *v, cmp_fyw);
    free(tmp);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Ascending sort of v[0..m) (no NaN); tmp: m doubles of scratch; cnt:
 * radix counters or NULL.  Equal keys are equal values, so the order is
 * unique. */
static void sort_dbl(double *v, size_t m, double *tmp, size_t *cnt)
{
    if (!radix_sort(v, m, sizeof *v, tmp, cnt))
        qsort(v, m, sizeof *v, cmp_dbl);
}

typedef struct {
    double *v, *tmp;
    size_t m;
    size_t *cnt;
} sort_job;

static void *sort_thread(void *arg)
{
    sort_job *j = arg;
    sort_dbl(j->v, j->m, j->tmp, j->cnt);
    return NULL;
}

/* Sort a[0..ma) and b[0..mb) (scratch: tmp, ma + mb doubles), the first on
 * a thread of its own when the design has several blocks and may use
 * threads (each sort's result is unique, so this changes no number). */
static void sort_both(bh_glm_workspace *ws, double *a, size_t ma,
                      double *b, size_t mb, double *tmp)
{
    for (int k = 0; k < 2; k++)
        if (!ws->rcnt[k])   /* NULL still works: each sort allocates */
            ws->rcnt[k] = malloc(RADIX_COUNTS * sizeof *ws->rcnt[k]);
    sort_job j = {a, tmp, ma, ws->rcnt[0]};
    pthread_t th;
    int par = nblocks(ws) > 1 && ws->opt.threads != 1 &&
              pthread_create(&th, NULL, sort_thread, &j) == 0;
    if (!par)
        sort_dbl(a, ma, tmp, ws->rcnt[0]);
    sort_dbl(b, mb, tmp + ma, ws->rcnt[1]);
    if (par)
        pthread_join(th, NULL);
}

/* AUC (weighted Mann-Whitney, ties 1/2) from (fitted, y, weight) records
 * of m rows with positive weight, sorted here; w1, w0: the weight sums of
 * y = 1 and y = 0 (both positive). */
static void auc_weighted(fyw *v, size_t m, long double w1, long double w0,
                         bh_fit_stats *S)
{
    sort_fyw(v, m);
    long double num = 0, cum0 = 0;
    for (size_t a = 0; a < m;) {
        size_t b = a;
        long double g1 = 0, g0 = 0;
        while (b < m && v[b].f == v[a].f) {
            if (v[b].y == 1)
                g1 += v[b].w;
            else
                g0 += v[b].w;
            b++;
        }
        if (b == a)
            break; /* NaN: no order */
        num += g1 * (cum0 + 0.5L * g0);
        cum0 += g0;
        a = b;
    }
    S->auc = (double)(num / (w1 * w0));
}

/* Tjur, AUC (weighted Mann-Whitney, ties 1/2) and Hosmer-Lemeshow for a
 * binary response.  Unit weights (the usual case) need no records: the
 * fitted values of the y = 1 and the y = 0 rows are sorted apart in ws->z
 * (ws->mu0 the radix scratch and then their merge), and the sums over
 * groups of equal or binned fitted values equal those over sorted
 * (f, y) records, whatever the order within ties.  Other weights sort
 * (f, y, w) records (3 doubles per row, allocated here).  Uses z and mu0,
 * so it runs after the null model's log-likelihood.  0, or -1 when out of
 * memory. */
static int binary_stats(bh_glm_workspace *ws, bh_fit_stats *S)
{
    size_t n = ws->n, m = 0, m1 = 0;
    long double s1 = 0, s0 = 0, w1 = 0, w0 = 0;
    int unit = 1;
    for (size_t i = 0; i < n; i++) {
        double wi = wi_of(ws, i);
        if (!(wi > 0))
            continue;
        if (wi != 1)
            unit = 0;
        m++;
        if (ws->y[i] == 1) {
            s1 += wi * ws->mu[i];
            w1 += wi;
            m1++;
        } else {
            s0 += wi * ws->mu[i];
            w0 += wi;
        }
    }
    if (w1 > 0 && w0 > 0)
        S->pseudo_r2_tjur = (double)(s1 / w1 - s0 / w0);
    if (!unit) {
        if (!(w1 > 0 && w0 > 0))
            return 0;
        fyw *v = malloc(m * sizeof *v);
        if (!v)
            return -1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            double wi = wi_of(ws, i);
            if (!(wi > 0))
                continue;
            v[k].f = ws->mu[i];
            v[k].y = ws->y[i];
            v[k].w = wi;
            k++;
        }
        auc_weighted(v, m, w1, w0, S);
        free(v);
        return 0;
    }
    size_t m0 = m - m1, a1 = 0, a0 = 0;
    double *f1 = ws->z, *f0 = ws->z + m1, *v = ws->mu0;
    for (size_t i = 0; i < n; i++) {
        if (!(wi_of(ws, i) > 0))
            continue;
        if (ws->y[i] == 1)
            f1[a1++] = ws->mu[i];
        else
            f0[a0++] = ws->mu[i];
    }
    sort_both(ws, f1, m1, f0, m0, v);
    /* Merge into v, with the AUC over groups of equal fitted values. */
    long double num = 0, cum0 = 0;
    size_t i = 0, j = 0, k = 0;
    while (i < m1 || j < m0) {
        double f = i < m1 && (j >= m0 || f1[i] <= f0[j]) ? f1[i] : f0[j];
        long double g1 = 0, g0 = 0;
        while (i < m1 && f1[i] == f) {
            g1 += 1;
            v[k++] = f1[i++];
        }
        while (j < m0 && f0[j] == f) {
            g0 += 1;
            v[k++] = f0[j++];
        }
        if (g1 == 0 && g0 == 0)
            return 0; /* NaN: no order */
        num += g1 * (cum0 + 0.5L * g0);
        cum0 += g0;
    }
    if (w1 > 0 && w0 > 0)
        S->auc = (double)(num / (w1 * w0));
    /* Hosmer-Lemeshow as ResourceSelection::hoslem.test: groups cut at the
     * type-7 quantiles of the fitted values, unweighted, so only without
     * weights; NAN where R's cut() fails (tied breaks) or a group is
     * empty. */
    if (m < GLM_HL_GROUPS)
        return 0;
    double br[GLM_HL_GROUPS + 1];
    for (size_t g = 0; g <= GLM_HL_GROUPS; g++) {
        double h = (double)(m - 1) * (double)g / GLM_HL_GROUPS;
        size_t lo = (size_t)floor(h);
        double fr = h - (double)lo;
        br[g] = lo + 1 < m ? v[lo] + fr * (v[lo + 1] - v[lo]) : v[lo];
    }
    for (size_t g = 0; g < GLM_HL_GROUPS; g++)
        if (!(br[g + 1] > br[g]))
            return 0;
    double chi = 0;
    size_t a = 0, b = 0;
    for (size_t g = 1; g <= GLM_HL_GROUPS; g++) {
        long double o1 = 0, e1 = 0, e0 = 0, cnt = 0;
        while (a < m && (v[a] <= br[g] || g == GLM_HL_GROUPS)) {
            e1 += v[a];
            e0 += 1 - v[a];
            cnt += 1;
            a++;
        }
        while (b < m1 && (f1[b] <= br[g] || g == GLM_HL_GROUPS)) {
            o1 += 1;
            b++;
        }
        if (!(e1 > 0) || !(e0 > 0))
            return 0;
        long double o0 = cnt - o1;
        chi += (double)((o1 - e1) * (o1 - e1) / e1 + (o0 - e0) * (o0 - e0) / e0);
    }
    S->hl_stat = chi;
    S->hl_df = GLM_HL_GROUPS - 2;
    S->hl_pvalue = gsl_cdf_chisq_Q(chi, GLM_HL_GROUPS - 2);
    return 0;
}

/* ---- separation: a linear program ------------------------------------- */

/* Is there b != 0 with x_i'b >= 0 where y_i = 1 and <= 0 where y_i = 0
 * (Albert & Anderson 1984)?  With xt_i = (2 y_i - 1) x_i (columns scaled
 * to max |x| = 1) solve max c'b, c = sum_i xt_i, subject to xt_i'b >= 0 and
 * -1 <= b <= 1 (Konis 2007): separation iff the optimum is positive.  The
 * revised simplex runs on the dual, min 1'(s + t) s.t. s - t - Xt'l = c,
 * (l, s, t) >= 0, whose slack basis is feasible from the start; the primal
 * b is the simplex multiplier vector.  Dantzig pricing, Bland's rule after
 * degenerate pivots.  Returns 1 (separation; b filled), 0 (none) or -1
 * (not solved).  Uses ws->cmu0 (n) and ws->buf as scratch. */
static int separation_lp(bh_glm_workspace *ws, double *b)
{
    size_t n = ws->n, r = ws->r;
    const double *x = ws->d->x;
    double *rc = ws->cmu0;
    double *cs = ws->qscale;        /* column scales */
    double *c = ws->rhs;            /* r */
    double *B = ws->xtwx, *Bi = ws->chol; /* r x r each, column-major */
    double *xB = ws->step, *dq = ws->csc, *pi = b;
    double *tmp = ws->buf;          /* 2 r x r + r scratch */
    size_t *basis = ws->perm;       /* code: i < n row, n + k s_k, n + r + k t_k */
    for (size_t k = 0; k < r; k++) {
        const double *xc = x + ws->act[k] * n;
        double mx = 0;
        for (size_t i = 0; i < n; i++)
            if (wi_of(ws, i) > 0 && fabs(xc[i]) > mx)
                mx = fabs(xc[i]);
        cs[k] = mx > 0 ? 1 / mx : 0;
        double s = 0;
        for (size_t i = 0; i < n; i++)
            if (wi_of(ws, i) > 0)
                s += (ws->y[i] == 1 ? 1 : -1) * xc[i] * cs[k];
        c[k] = s;
        basis[k] = c[k] >= 0 ? n + k : n + r + k;
    }
    size_t degenerate = 0, maxit = GLM_LP_PIVOTS_PER_COL * (r + 2);
    for (size_t it = 0; it < maxit; it++) {
        /* Basis matrix and its inverse (Gauss-Jordan, partial pivoting). */
        for (size_t k = 0; k < r; k++) {
            size_t q = basis[k];
            for (size_t a = 0; a < r; a++) {
                double v;
                if (q < n)
                    v = -(ws->y[q] == 1 ? 1 : -1) * x[ws->act[a] * n + q] * cs[a];
                else if (q < n + r)
                    v = (q - n == a) ? 1 : 0;
                else
                    v = (q - n - r == a) ? -1 : 0;
                B[k * r + a] = v;
            }
        }
        double *M = tmp, *I = tmp + r * r;
        memcpy(M, B, r * r * sizeof *M);
        for (size_t a = 0; a < r; a++)
            for (size_t k = 0; k < r; k++)
                I[k * r + a] = a == k;
        for (size_t k = 0; k < r; k++) {
            size_t piv = k;
            for (size_t a = k + 1; a < r; a++)
                if (fabs(M[k * r + a]) > fabs(M[k * r + piv]))
                    piv = a;
            if (fabs(M[k * r + piv]) < 1e-12)
                return -1;
            for (size_t j = 0; j < r; j++) {
                double t = M[j * r + k];
                M[j * r + k] = M[j * r + piv];
                M[j * r + piv] = t;
                t = I[j * r + k];
                I[j * r + k] = I[j * r + piv];
                I[j * r + piv] = t;
            }
            double d = M[k * r + k];
            for (size_t j = 0; j < r; j++) {
                M[j * r + k] /= d;
                I[j * r + k] /= d;
            }
            for (size_t a = 0; a < r; a++) {
                if (a == k)
                    continue;
                double f = M[k * r + a];
                if (f == 0)
                    continue;
                for (size_t j = 0; j < r; j++) {
                    M[j * r + a] -= f * M[j * r + k];
                    I[j * r + a] -= f * I[j * r + k];
                }
            }
        }
        memcpy(Bi, I, r * r * sizeof *Bi);
        /* xB = Bi c; pi = Bi' hB. */
        for (size_t a = 0; a < r; a++) {
            double s = 0;
            for (size_t k = 0; k < r; k++)
                s += Bi[k * r + a] * c[k];
            xB[a] = s;
        }
        for (size_t k = 0; k < r; k++) {
            double s = 0;
            for (size_t a = 0; a < r; a++)
                s += Bi[k * r + a] * (basis[a] >= n ? 1.0 : 0.0);
            pi[k] = s;
        }
        /* Reduced costs: rows xt_i'pi; s_k 1 - pi_k; t_k 1 + pi_k. */
        memset(rc, 0, n * sizeof *rc);
        for (size_t k = 0; k < r; k++)
            cblas_daxpy((int)n, pi[k] * cs[k], x + ws->act[k] * n, 1, rc, 1);
        int bland = degenerate > 50;
        size_t q = SIZE_MAX;
        double best = -1e-9;
        for (size_t i = 0; i < n && !(bland && q != SIZE_MAX); i++) {
            if (!(wi_of(ws, i) > 0))
                continue;
            double v = (ws->y[i] == 1 ? 1 : -1) * rc[i];
            if (v < best) {
                best = bland ? -1e-9 : v;
                q = i;
            }
        }
        for (size_t k = 0; k < 2 * r && !(bland && q != SIZE_MAX); k++) {
            double v = k < r ? 1 - pi[k] : 1 + pi[k - r];
            if (v < best) {
                best = bland ? -1e-9 : v;
                q = n + k;
            }
        }
        if (q == SIZE_MAX)
            break; /* optimal */
        /* Entering column and ratio test. */
        for (size_t a = 0; a < r; a++) {
            double s = 0;
            for (size_t k = 0; k < r; k++) {
                double col;
                if (q < n)
                    col = -(ws->y[q] == 1 ? 1 : -1) * x[ws->act[k] * n + q] * cs[k];
                else if (q < n + r)
                    col = (q - n == k) ? 1 : 0;
                else
                    col = (q - n - r == k) ? -1 : 0;
                s += Bi[k * r + a] * col;
            }
            dq[a] = s;
        }
        size_t leave = SIZE_MAX;
        double ratio = INFINITY;
        for (size_t a = 0; a < r; a++)
            if (dq[a] > 1e-11) {
                double t = fmax(xB[a], 0) / dq[a];
                if (t < ratio - 1e-12 ||
                    (t <= ratio + 1e-12 && leave != SIZE_MAX &&
                     basis[a] < basis[leave])) {
                    ratio = t;
                    leave = a;
                }
            }
        if (leave == SIZE_MAX)
            return -1; /* unbounded dual: cannot happen (b = 0 feasible) */
        degenerate = ratio < 1e-12 ? degenerate + 1 : 0;
        basis[leave] = q;
        if (it + 1 == maxit)
            return -1;
    }
    double val = 0, cn = 0;
    for (size_t k = 0; k < r; k++) {
        val += c[k] * pi[k];
        cn += fabs(c[k]);
    }
    if (!(val > GLM_SEP_TOL * (cn > 1 ? cn : 1)))
        return 0;
    /* b in original units is pi * cs (only its support and signs matter). */
    for (size_t k = 0; k < r; k++)
        b[k] = fabs(pi[k]) > GLM_SEP_TOL ? pi[k] * cs[k] : 0;
    return 1;
}

/* Append ", name" to a growing string. */
static int append_name(char **s, size_t *len, const char *name)
{
    size_t L = strlen(name) + 3;
    char *t = realloc(*s, *len + L);
    if (!t)
        return -1;
    *s = t;
    if (*len > 0)
        strcat(t, ", ");
    else
        t[0] = '\0';
    strcat(t, name);
    *len = strlen(t) + 1;
    return 0;
}

static bh_status check_separation(bh_glm_workspace *ws, bh_fit *fit)
{
    size_t n = ws->n, near = 0, n1 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(wi_of(ws, i) > 0))
            continue;
        if (ws->mu[i] < GLM_SEP_PROB || ws->cmu[i] < GLM_SEP_PROB)
            near++;
        n1 += ws->y[i] == 1;
    }
    if (n1 == 0 || n1 == ws->nok)
        return bh_fit_warn(fit, "complete separation: the response is %d in "
                           "every row (%zu rows), so every estimate is "
                           "infinite in the limit (the intercept tends to "
                           "%s)", n1 ? 1 : 0, ws->nok,
                           n1 ? "+infinity" : "-infinity");
    if (near == 0)
        return BH_OK;
    /* The LP's multipliers (r <= p) go into beta_old, which is no longer
     * needed. */
    double *b = ws->beta_old;
    int sep = separation_lp(ws, b);
    if (sep != 1) {
        size_t tiny = 0;
        for (size_t i = 0; i < n; i++)
            if (wi_of(ws, i) > 0 &&
                (ws->mu[i] < 10 * EPS || ws->cmu[i] < 10 * EPS))
                tiny++;
        if (tiny)
            return bh_fit_warn(fit, "fitted probabilities numerically 0 or 1 "
                               "occurred (%zu rows)", tiny);
        return BH_OK;
    }
    /* The LP's vertex may leave separated rows on its boundary, so
     * complete separation (every row fitted at 0 or 1) is read from the
     * fitted values. */
    int complete = near == ws->nok;
    char *names = NULL;
    size_t len = 0;
    for (size_t k = 0; k < ws->r; k++)
        if (b[k] != 0 && append_name(&names, &len, fit->term[ws->act[k]])) {
            free(names);
            return BH_ENOMEM;
        }
    bh_status st = bh_fit_warn(
        fit, "%s separation: fitted probabilities of 0 or 1 for %zu rows; "
        "variables involved: %s; estimates for them are not finite "
        "(consider --firth)", complete ? "complete" : "quasi-complete", near,
        names ? names : "?");
    free(names);
    return st;
}

/* ---- result ------------------------------------------------------------ */

/* The likelihood-based statistics: null deviance, log-likelihood, AIC,
 * BIC, McFadden's R^2 and, for binary responses, Tjur's R^2, the AUC and
 * Hosmer-Lemeshow (fit->stats; deviance and df already set).  *nullconv:
 * whether the null model's IRLS converged.  0, or -1 when out of memory. */
static int likelihood_stats(bh_glm_workspace *ws, bh_fit *fit, double nobs,
                            int *nullconv)
{
    bh_family fam = ws->opt.family;
    bh_fit_stats *S = &fit->stats;
    size_t r = fit->rank;
    S->null_deviance = null_model(ws, nullconv);
    double ll = loglik_at(ws, ws->mu, ws->cmu, 1, ws->dev);
    double k = (double)r + (fam == BH_FAM_GAUSSIAN ? 1 : 0);
    if (ws->opt.firth) {
        /* Reported as logistf does: the penalised log-likelihood
         * l + log|X'WX| / 2 at the estimate (the information criteria use
         * it as well).  The iterations track -dev/2 + log|X'WX|/2, which
         * differs from it by the saturated log-likelihood. */
        ll += ws->pl + 0.5 * ws->dev;
    }
    S->loglik = ll;
    if (fam == BH_FAM_FRACTIONAL) {
        /* Quasi-likelihood: R reports AIC as NA for quasi families. */
        S->aic = S->bic = NAN;
    } else {
        S->aic = -2 * ll + 2 * k;
        S->bic = -2 * ll + log(nobs) * k;
    }
    if (fam != BH_FAM_GAUSSIAN) {
        double ll0 = ws->null_const
                         ? loglik_at(ws, &ws->null_mu, &ws->null_cmu, 0,
                                     S->null_deviance)
                         : loglik_at(ws, ws->mu0, ws->cmu0, 1,
                                     S->null_deviance);
        if (!ws->opt.firth)
            S->pseudo_r2_mcfadden = 1 - ll / ll0;
    }
    if (ws->binary && binary_stats(ws, S))
        return -1;
    return 0;
}

/* T^-1 (r x r, column-major, leading dimension r, into ri) of the upper
 * triangular T (leading dimension ldt; its diagonal in diag, or on T's
 * diagonal when diag is NULL), in long double. */
static void tri_inverse(const double *T, size_t ldt, const double *diag,
                        size_t r, double *ri)
{
    for (size_t c = 0; c < r; c++) {
        for (size_t i = c + 1; i < r; i++)
            ri[c * r + i] = 0;
        long double dc = diag ? diag[c] : T[c * ldt + c];
        ri[c * r + c] = (double)(1 / dc);
        for (size_t i = c; i-- > 0;) {
            long double s = 0;
            for (size_t k = i + 1; k <= c; k++)
                s += (long double)T[k * ldt + i] * ri[c * r + k];
            ri[c * r + i] = (double)(-s / (diag ? diag[i] : T[i * ldt + i]));
        }
    }
}

/* May a lean fit take its bread from the Cholesky factor of X'WX at the
 * estimate?  Only IRLS fits whose last pass formed X'WX there, when the
 * factor exists and every equilibrated pivot ratio is at least
 * GLM_LEAN_PIVOT (cond(S A S) then stays below ~1e4 p: the bread is
 * accurate to ~1e-11 or better).  Otherwise the tall-skinny QR decides
 * (rank included), as for full fits.  Leaves the factor in ws->chol. */
static int lean_cholesky(bh_glm_workspace *ws)
{
    if (!ws->opt.lean || ws->opt.firth || !ws->have_cp || chol_factor(ws))
        return 0;
    for (size_t k = 0; k < ws->r; k++)
        if (!(ws->chol[k * ws->r + k] >= GLM_LEAN_PIVOT))
            return 0;
    return 1;
}

/* bh_glm_result's second pass over block b's rows: leverages (not lean)
 * from the rows of sqrt(W) X S R^-1 = Q (R^-1 in rinv, r x r); response
 * residuals (into eta, its last use), score multipliers u = w (y - mu)
 * mu' / V (sandwich::estfun.glm; sqrt(w) for frequency weights, see
 * lm.h) into z, Pearson chi^2 (pl). */
static void result_block(bh_glm_workspace *ws, glm_lane *L, size_t b,
                         size_t i0, size_t i1, void *ctx)
{
    (void)ctx;
    const bh_design *d = ws->d;
    size_t n = ws->n, r = ws->fit_rank;
    int lean = ws->opt.lean;
    const double *ri = ws->rinv;
    long double pearson = 0;
    double *hat = ws->mu0, *uv = ws->z;
    for (; i0 < i1; i0 += GLM_CHUNK) {
        size_t c = i1 - i0 < GLM_CHUNK ? i1 - i0 : GLM_CHUNK;
        chunk_weights(ws, L, i0, c, NULL);
        for (size_t k = 0; k < r && !lean; k++) {
            size_t j = ws->perm[k];
            const double *xc = d->x + j * n + i0;
            double *bc = L->buf + k * c;
            for (size_t ii = 0; ii < c; ii++)
                bc[ii] = L->sw[ii] * xc[ii] * ws->qscale[j];
        }
        if (r && !lean)
            cblas_dtrmm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans,
                        CblasNonUnit, (int)c, (int)r, 1.0, ri, (int)r,
                        L->buf, (int)c);
        /* Leverages column by column: the r entries of a row lie c
         * doubles apart (32 KB for a full chunk), which row by row maps
         * them to one L1 set. */
        if (!lean) {
            double *restrict h = hat + i0;
            memset(h, 0, c * sizeof *h);
            for (size_t k = 0; k < r; k++) {
                const double *restrict bc = L->buf + k * c;
                for (size_t ii = 0; ii < c; ii++)
                    h[ii] += bc[ii] * bc[ii];
            }
        }
        for (size_t ii = 0; ii < c; ii++) {
            size_t i = i0 + ii;
            double wi = wi_of(ws, i), W = L->cw[ii];
            double u = 0;
            if (wi > 0 && W > 0) {
                /* Working residual (final mu) times working weight, as
                 * sandwich::estfun.glm; Pearson chi^2 as summary.glm. */
                double me = ws->opt.firth
                                ? ws->mu[i] * ws->cmu[i]
                                : bh_link_mu_eta(ws->opt.link, ws->eta[i]);
                double res = (ws->y[i] - ws->mu[i]) / me;
                u = W * res;
                if (ws->freq)
                    u /= sqrt(wi);
                pearson += W * res * res;
            }
            uv[i] = u;
            ws->eta[i] = ws->y[i] - ws->mu[i]; /* eta's last use: resid */
        }
    }
    ws->ppl[b] = pearson;
}

bh_status bh_glm_result(bh_glm_workspace *ws, bh_fit **out, bh_error *err)
{
    *out = NULL;
    if (!ws || !ws->d || ws->iter == 0)
        return bh_error_set(err, BH_EUSAGE,
                            "glm: no iteration has been run (call "
                            "bh_glm_init and bh_glm_iterate first)");
    const bh_design *d = ws->d;
    size_t n = ws->n, p = ws->p;
    bh_family fam = ws->opt.family;
    bh_link link = ws->opt.link;
    char nb[32];
    bh_status st = BH_OK;
    int lean = ws->opt.lean;
    /* The per-row arrays are the workspace's vectors, handed over at the
     * end (no copies): fitted = mu, resid = eta (overwritten in the second
     * pass, after its last use), u = z, hat = mu0. */
    bh_fit *rec = ws->opt.recycle;
    int recycled = rec && bh_fit_recycle(rec, p, 1) == 0;
    bh_fit *fit = recycled ? rec : bh_fit_alloc(p, 0, 1, 1);
    if (!fit)
        return bh_error_set(err, BH_ENOMEM, "glm: out of memory");
    fit->nrows = n;

    /* The working weights at the final estimate, not those of the last
     * iteration (R's glm.fit keeps the latter, one step behind: with R's
     * default epsilon its standard errors are ~1e-5 off; at the estimate
     * they are exact for any tolerance that reached quadratic
     * convergence).  Firth: the Fisher weights at the estimate.  The
     * tall-skinny R factor of sqrt(W) X (one pass over the rows), then
     * its pivoted QR, which may still find a column numerically zero under
     * these weights. */
    size_t r0 = ws->r, r = r0;
    double *ri = ws->rinv, *sc = ws->twork;
    if (lean_cholesky(ws)) {
        /* Lean fits of well-conditioned designs: (X'WX)^-1 at the
         * estimate from the Cholesky factor S A S = U'U that the last
         * iteration's pass formed (no further pass over X; relative error
         * ~ cond(S A S) eps, below 1e-11 here); rows_refresh stores the
         * rows the TSQR pass would have. */
        rows_refresh(ws);
        for (size_t k = 0; k < r; k++) {
            ws->perm[k] = ws->act[k];
            sc[k] = ws->csc[k];
        }
        tri_inverse(ws->chol, r, NULL, r, ri);
    } else {
        tsqr_rows(ws, 0, 0);
        r = qr_factor(ws, ws->qa, r0, ws->act, r0);
        for (size_t k = r; k < r0; k++)
            ws->alias[ws->perm[k]] = 1;
        for (size_t k = 0; k < r; k++)
            sc[k] = ws->qscale[ws->perm[k]];
        tri_inverse(ws->qa, r0, ws->rdiag, r, ri);
    }
    for (size_t j = 0; j < p; j++)
        fit->aliased[j] = ws->alias[j];
    ws->fit_rank = r;
    /* bread = S T^-1 T^-T S in design order (T = R or U). */
    for (size_t a = 0; a < r; a++)
        for (size_t b = a; b < r; b++) {
            long double s = 0;
            for (size_t k = b; k < r; k++)
                s += (long double)ri[k * r + a] * ri[k * r + b];
            size_t ja = ws->perm[a], jb = ws->perm[b];
            s *= (long double)sc[a] * sc[b];
            fit->bread[ja * p + jb] = fit->bread[jb * p + ja] = (double)s;
        }
    for (size_t j = 0; j < p; j++) {
        fit->beta[j] = fit->aliased[j] ? NAN : ws->beta[j];
        if (bh_fit_set_string(&fit->term[j], bh_design_colname(ws->d, ws->opt.colnames, j, nb, sizeof nb)))
            goto nomem;
    }
    double nobs = ws->freq ? ws->wsum : (double)ws->nok;
    double rdf = nobs - (double)r;
    fit->design = d;
    fit->linear = 0;
    fit->rank = r;
    fit->nobs = ws->freq ? (size_t)llround(ws->wsum) : ws->nok;
    fit->ndropped = d->ndropped;
    fit->converged = ws->converged;
    fit->iterations = ws->iter;
    fit->df_inference = fam == BH_FAM_GAUSSIAN && rdf > 0 ? rdf : INFINITY;
    fit->blocks[0].x = d->x;
    fit->blocks[0].ncol = p;
    fit->blocks[0].coef0 = 0;
    snprintf(fit->vcov_type, sizeof fit->vcov_type, "classical");
    if (bh_fit_set_string(&fit->family, bh_family_name(fam)) ||
        bh_fit_set_string(&fit->link, bh_link_name(link)) ||
        bh_fit_set_string(&fit->method, ws->opt.firth ? "firth" : "irls"))
        goto nomem;
    /* A recycled fit keeps the name and formula its owner gave it (they
     * would be set again just after: no allocation per replication). */
    if (!recycled && bh_fit_set_string(&fit->name, "(1)"))
        goto nomem;
    if (!recycled && d->terms && d->terms->formula && d->terms->formula->text &&
        bh_fit_set_string(&fit->formula, d->terms->formula->text))
        goto nomem;

    /* Statistics, before the second pass (the null model and
     * binary_stats use z, mu0 and cmu0 as scratch). */
    bh_fit_stats *S = &fit->stats;
    int nullconv = 1;
    S->deviance = ws->dev;
    S->df_model = (double)r;
    S->df_resid = rdf;
    S->null_df = nobs - (ws->icpt ? 1 : 0);
    if (!lean && likelihood_stats(ws, fit, nobs, &nullconv))
        goto nomem;

    /* Second pass: leverages (not lean), the rows of sqrt(W) X S R^-1 = Q;
     * response residuals, score multipliers u = w (y - mu) mu' / V
     * (sandwich::estfun.glm; sqrt(w) for frequency weights, see lm.h),
     * Pearson chi^2. */
    par_blocks(ws, result_block, NULL);
    long double pearson = ws->ppl[0];
    for (size_t b = 1; b < nblocks(ws); b++)
        pearson += ws->ppl[b];

    if (fam == BH_FAM_GAUSSIAN || fam == BH_FAM_FRACTIONAL)
        fit->dispersion = rdf > 0 ? (double)pearson / rdf : NAN;
    else
        fit->dispersion = 1;
    for (size_t k = 0; k < p * p; k++)
        fit->vcov[k] = fit->bread[k] * fit->dispersion;
    if (fam == BH_FAM_GAUSSIAN)
        S->sigma = sqrt(fit->dispersion);

    /* Warnings. */
    if (!ws->converged &&
        bh_fit_warn(fit, "the IRLS algorithm did not converge in %zu "
                    "iterations (relative change in deviance %.3g, "
                    "tolerance %g)", ws->iter, ws->rel, ws->opt.tol))
        goto nomem;
    if (ws->halving_failed &&
        bh_fit_warn(fit, "step halving could not reduce the %s deviance; "
                    "the estimates are from the last improving step",
                    ws->opt.firth ? "penalised" : ""))
        goto nomem;
    if (!nullconv &&
        bh_fit_warn(fit, "the null model (intercept and offset) did not "
                    "converge; the null deviance is approximate"))
        goto nomem;
    if (ws->nonint && fam == BH_FAM_POISSON &&
        bh_fit_warn(fit, "non-integer counts in a poisson model: the "
                    "log-likelihood is -Inf as in R (consider family "
                    "fractional or a quasi model)"))
        goto nomem;
    if (ws->nonint && fam == BH_FAM_BINOMIAL &&
        bh_fit_warn(fit, "non-integer number of successes (weight x "
                    "response) in a binomial model"))
        goto nomem;
    if (r < p) {
        char *names = NULL;
        size_t len = 0;
        for (size_t j = 0; j < p; j++)
            if (fit->aliased[j] && append_name(&names, &len, fit->term[j])) {
                free(names);
                goto nomem;
            }
        st = bh_fit_warn(fit, "not estimable (collinear): %s", names);
        free(names);
        if (st)
            goto nomem;
    }
    if (fam == BH_FAM_BINOMIAL && ws->binary && !ws->opt.firth &&
        check_separation(ws, fit))
        goto nomem;
    fit->fitted = ws->mu;
    fit->resid = ws->eta;
    fit->u = ws->z;
    ws->mu = ws->eta = ws->z = NULL;
    if (!lean) {
        fit->hat = ws->mu0;
        ws->mu0 = NULL;
    }
    fit->rows_cap = ws->nmax ? ws->nmax : 1;
    ws->d = NULL; /* eta is gone: the next fit starts with init */
    *out = fit;
    return BH_OK;
nomem:
    ws->d = NULL;
    if (!recycled) /* a recycled fit stays the caller's */
        bh_fit_free(fit);
    return bh_error_set(err, BH_ENOMEM, "glm: out of memory");
}

bh_status bh_glm_fit(const bh_design *d, const bh_glm_options *opt,
                     bh_glm_workspace *ws, bh_fit **out, bh_error *err)
{
    *out = NULL;
    if (!d)
        return bh_error_set(err, BH_EINTERNAL, "glm: no design");
    bh_glm_options defopt;
    if (!opt) {
        bh_glm_default_options(&defopt);
        opt = &defopt;
    }
    bh_glm_workspace *own = NULL;
    if (!ws) {
        ws = own = bh_glm_workspace_alloc(d->n, d->p);
        if (!ws)
            return bh_error_set(err, BH_ENOMEM,
                                "glm: out of memory (%zu x %zu)", d->n, d->p);
    }
    bh_status st = bh_glm_init(ws, d, opt, err);
    while (!st && ws->iter < ws->opt.maxiter) {
        st = bh_glm_iterate(ws, err);
        if (!st && bh_glm_test(ws))
            break;
    }
    if (!st)
        st = bh_glm_result(ws, out, err);
    bh_glm_workspace_free(own);
    return st;
}
