/* vcov.c - classical, heteroskedasticity-consistent and cluster-robust
 * covariance estimators for any bh_fit.
 *
 * All sandwich types compute bread * meat * bread on the estimable
 * (non-aliased) coefficients only; aliased rows and columns stay NAN.  The
 * meat is built by BLAS: score rows are gathered into small row blocks (HC)
 * or summed per cluster, then accumulated with dsyrk, so a million-row fit
 * streams through cache-sized blocks without an n x p copy.
 *
 * Conventions follow R's sandwich package on lm/glm fits: scores are
 * estfun() (w_i e_i x_i for least squares), HC1 multiplies by n/(n-k), HC2
 * divides each squared score by 1-h_i, HC3 by (1-h_i)^2; cluster sums are
 * scaled by G/(G-1), times (N-1)/(N-K) for linear models (vcovCL type HC1).
 */
#include "blackhole/vcov.h"
#include "blackhole/buf.h"
#include "blackhole/wald.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gsl/gsl_cblas.h>

/* Rows gathered per dsyrk call when accumulating the HC meat. */
#define VCOV_CHUNK 256

bh_status bh_vcov_parse(const char *text, bh_vcov_spec *spec, bh_error *err)
{
    char q[96];
    memset(spec, 0, sizeof *spec);
    if (!text)
        text = "";
    static const struct { const char *name; bh_vcov_kind kind; } kinds[] = {
        {"classical", BH_VCOV_CLASSICAL}, {"hc0", BH_VCOV_HC0},
        {"hc1", BH_VCOV_HC1}, {"hc2", BH_VCOV_HC2}, {"hc3", BH_VCOV_HC3},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcasecmp(text, kinds[k].name) == 0) {
            spec->kind = kinds[k].kind;
            return BH_OK;
        }
    if (strncasecmp(text, "cluster:", 8) == 0) {
        const char *v = text + 8;
        size_t L = strlen(v);
        if (L == 0)
            return bh_error_set(err, BH_EUSAGE,
                                "vcov '%s': name the cluster variable, "
                                "e.g. cluster:firm",
                                bh_quote(q, sizeof q, text, 60));
        if (L >= sizeof spec->cluster)
            return bh_error_set(err, BH_EUSAGE,
                                "vcov: cluster variable name '%s' is longer "
                                "than %zu bytes",
                                bh_quote(q, sizeof q, v, 60),
                                sizeof spec->cluster - 1);
        spec->kind = BH_VCOV_CLUSTER;
        memcpy(spec->cluster, v, L + 1);
        return BH_OK;
    }
    return bh_error_set(err, BH_EUSAGE,
                        "unknown vcov type '%s' (expected classical, hc0, "
                        "hc1, hc2, hc3 or cluster:VAR)",
                        bh_quote(q, sizeof q, text, 60));
}

/* V = B M B (r x r, row-major) in long double: T = M B once (r^3), then
 * V = B T on the upper triangle.  Each element is summed in the same order
 * as a direct triple loop would, so the bits do not depend on the
 * factoring. */
static void sandwich(const double *B, const double *M, size_t r, double f,
                     long double *T, double *V)
{
    for (size_t k = 0; k < r; k++)
        for (size_t b = 0; b < r; b++) {
            long double t = 0;
            for (size_t l = 0; l < r; l++)
                t += (long double)M[k * r + l] * B[l * r + b];
            T[k * r + b] = t;
        }
    for (size_t a = 0; a < r; a++)
        for (size_t b = a; b < r; b++) {
            long double s = 0;
            for (size_t k = 0; k < r; k++)
                s += (long double)B[a * r + k] * T[k * r + b];
            V[a * r + b] = V[b * r + a] = (double)(s * f);
        }
}

/* The buffers of one covariance, each with its capacity in elements. */
struct bh_vcov_workspace {
    size_t *idx;
    double *B, *M, *V, *G, *S;
    long double *T;
    size_t cidx, cB, cM, cV, cG, cS, cT;
    bh_wald_workspace *wald;    /* the robust overall F of linear models */
};

bh_vcov_workspace *bh_vcov_workspace_alloc(void)
{
    return calloc(1, sizeof(bh_vcov_workspace));
}

static void ws_release(bh_vcov_workspace *ws)
{
    free(ws->idx);
    free(ws->B);
    free(ws->M);
    free(ws->V);
    free(ws->G);
    free(ws->S);
    free(ws->T);
    bh_wald_workspace_free(ws->wald);
}

void bh_vcov_workspace_free(bh_vcov_workspace *ws)
{
    if (!ws)
        return;
    ws_release(ws);
    free(ws);
}


bh_status bh_vcov_compute(bh_fit *fit, const bh_vcov_spec *spec,
                          bh_error *err)
{
    return bh_vcov_compute_ws(fit, spec, NULL, err);
}

bh_status bh_vcov_compute_ws(bh_fit *fit, const bh_vcov_spec *spec,
                             bh_vcov_workspace *ws, bh_error *err)
{
    size_t p = fit->p, n = fit->nrows;
    char q[96];
    bh_vcov_workspace own = {0};
    if (!ws)
        ws = &own;   /* released at the end */
    size_t *idx = ws->idx = bh_reserve(ws->idx, &ws->cidx, p, sizeof *idx);
    double *B = NULL, *M = NULL, *V = NULL, *G = NULL;
    long double *T = NULL;
    bh_status st = BH_OK;
    if (!idx) {
        st = bh_error_set(err, BH_ENOMEM, "vcov: out of memory");
        goto done;
    }
    size_t r = 0;
    for (size_t j = 0; j < p; j++)
        if (!fit->aliased[j])
            idx[r++] = j;
    size_t r1 = r ? r : 1;
    B = ws->B = bh_reserve(ws->B, &ws->cB, r1 * r1, sizeof *B);
    M = ws->M = bh_reserve(ws->M, &ws->cM, r1 * r1, sizeof *M);
    V = ws->V = bh_reserve(ws->V, &ws->cV, r1 * r1, sizeof *V);
    T = ws->T = bh_reserve(ws->T, &ws->cT, r1 * r1, sizeof *T);
    if (M)
        memset(M, 0, r1 * r1 * sizeof *M);
    if (!B || !M || !V || !T) {
        st = bh_error_set(err, BH_ENOMEM, "vcov: out of memory");
        goto done;
    }
    for (size_t a = 0; a < r; a++)
        for (size_t b = 0; b < r; b++)
            B[a * r + b] = fit->bread[idx[a] * p + idx[b]];

    const bh_design *d = fit->design;
    int freq = d && d->w && d->weight_kind == BH_WEIGHTS_FREQUENCY;
    double N = (double)fit->nobs, K = (double)fit->rank;
    double df_lin = fit->linear ? N - K : INFINITY;
    char type[sizeof fit->vcov_type];
    size_t ncl = 0;
    double df = df_lin;

    if (spec->kind == BH_VCOV_CLASSICAL) {
        for (size_t k = 0; k < r * r; k++)
            V[k] = B[k] * fit->dispersion;
        snprintf(type, sizeof type, "classical");
    } else if (spec->kind == BH_VCOV_CLUSTER) {
        const bh_grouping *g = d ? d->cluster : NULL;
        if (!g || !g->code)
            st = bh_error_set(err, BH_EUSAGE,
                              "vcov cluster:%s: the model was fitted without "
                              "a cluster variable (build the design with it)",
                              bh_quote(q, sizeof q, spec->cluster, 60));
        else if (g->name && spec->cluster[0] &&
                 strcmp(g->name, spec->cluster) != 0)
            st = bh_error_set(err, BH_EUSAGE,
                              "vcov cluster:%s: the design is clustered by "
                              "'%s'", bh_quote(q, sizeof q, spec->cluster, 60),
                              g->name);
        else if (g->ngroups < 2)
            st = bh_error_set(err, BH_EDATA,
                              "vcov cluster:%s: %zu cluster(s); cluster-robust "
                              "standard errors need at least 2",
                              bh_quote(q, sizeof q, spec->cluster, 60),
                              g->ngroups);
        if (st)
            goto done;
        size_t ng = g->ngroups;
        G = ws->G = bh_reserve(ws->G, &ws->cG, ng * r1, sizeof *G);
        double *S = ws->S = bh_reserve(ws->S, &ws->cS, VCOV_CHUNK * r1, sizeof *S);
        if (G)
            memset(G, 0, ng * r1 * sizeof *G);
        if (!G || !S) {
            st = bh_error_set(err, BH_ENOMEM, "vcov: out of memory (%zu clusters)", ng);
            goto done;
        }
        for (size_t i0 = 0; i0 < n; i0 += VCOV_CHUNK) {
            size_t rows = n - i0 < VCOV_CHUNK ? n - i0 : VCOV_CHUNK;
            bh_fit_score_rows(fit, i0, rows, idx, r, S);
            for (size_t i = i0; i < i0 + rows; i++) {
                size_t c = g->code[i];
                if (c >= ng) {
                    st = bh_error_set(err, BH_EINTERNAL,
                                      "vcov: cluster code %zu of row %zu out of "
                                      "range (%zu clusters)", c, i + 1, ng);
                    goto done;
                }
                /* Frequency weights: u_i = sqrt(w_i) e_i makes s_i s_i'
                 * right for the expanded data; a cluster sum needs
                 * w_i e_i x_i. */
                double f = freq ? sqrt(d->w[i]) : 1.0;
                const double *s = S + (i - i0) * r;
                double *Sg = G + c * r;
                for (size_t k = 0; k < r; k++)
                    Sg[k] += f * s[k];
            }
        }
        if (r)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)r,
                        (int)ng, 1.0, G, (int)r, 0.0, M, (int)r);
        for (size_t a = 0; a < r; a++)
            for (size_t b = 0; b < a; b++)
                M[a * r + b] = M[b * r + a];
        double adj = (double)ng / (double)(ng - 1);
        if (fit->linear)
            adj *= (N - 1) / (N - K);
        sandwich(B, M, r, adj, T, V);
        ncl = ng;
        df = (double)ng - 1;
        snprintf(type, sizeof type, "cluster(%.80s)",
                 spec->cluster[0] ? spec->cluster : (g->name ? g->name : "?"));
    } else {
        int hc = spec->kind - BH_VCOV_HC0; /* 0..3 */
        if (hc < 0 || hc > 3) {
            st = bh_error_set(err, BH_EUSAGE, "vcov: unknown kind %d",
                              (int)spec->kind);
            goto done;
        }
        if (hc >= 2 && !fit->hat) {
            st = bh_error_set(err, BH_EUSAGE,
                              "vcov HC%d needs leverages, which this %s fit "
                              "does not provide (use HC0 or HC1)", hc,
                              fit->method ? fit->method : "model");
            goto done;
        }
        G = ws->G = bh_reserve(ws->G, &ws->cG, VCOV_CHUNK * r1, sizeof *G);
        if (!G) {
            st = bh_error_set(err, BH_ENOMEM, "vcov: out of memory");
            goto done;
        }
        for (size_t i0 = 0; i0 < n; i0 += VCOV_CHUNK) {
            size_t rows = n - i0 < VCOV_CHUNK ? n - i0 : VCOV_CHUNK;
            bh_fit_score_rows(fit, i0, rows, idx, r, G);
            for (size_t i = i0; hc >= 2 && i < i0 + rows; i++) {
                /* Leverage of one replicate under frequency weights. */
                double h = fit->hat[i];
                if (freq && d->w[i] > 0)
                    h /= d->w[i];
                double oneh = 1.0 - h;
                /* h = 1 has a zero residual: it contributes nothing
                 * (R would give 0/0 here). */
                double om = oneh > 0 ? (hc == 2 ? 1.0 / oneh : 1.0 / (oneh * oneh))
                                     : 0.0;
                double sq = sqrt(om);
                double *s = G + (i - i0) * r;
                for (size_t k = 0; k < r; k++)
                    s[k] *= sq;
            }
            /* dgemm forms the whole r x r meat faster than dsyrk its
             * triangle at these shapes (OpenBLAS's small-matrix kernel;
             * the upper triangle is used, as before) */
            if (r)
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)r,
                            (int)rows, 1.0, G, (int)r, G, (int)r, 1.0, M, (int)r);
        }
        for (size_t a = 0; a < r; a++)
            for (size_t b = 0; b < a; b++)
                M[a * r + b] = M[b * r + a];
        double adj = 1.0;
        if (hc == 1) {
            if (!(N > K)) {
                st = bh_error_set(err, BH_EDATA,
                                  "vcov HC1: %g observations for %g "
                                  "coefficients", N, K);
                goto done;
            }
            adj = N / (N - K);
        }
        sandwich(B, M, r, adj, T, V);
        snprintf(type, sizeof type, "HC%d", hc);
    }

    /* Squared scores overflow double for data near its limits (|e| above
     * ~1e154): refuse rather than report a NAN or infinite variance as a
     * missing or zero-information standard error. */
    for (size_t k = 0; k < r * r; k++)
        if (!isfinite(V[k]) ||
            (k % (r + 1) == 0 && V[k] > 0 && V[k] < DBL_MIN)) {
            st = bh_error_set(err, BH_ENUMERIC,
                              "vcov %s: the covariance is beyond the range of double "
                              "precision (residuals or predictors too large or too "
                              "small in magnitude); rescale the variables", type);
            goto done;
        }

    /* Commit. */
    for (size_t k = 0; k < p * p; k++)
        fit->vcov[k] = NAN;
    for (size_t a = 0; a < r; a++)
        for (size_t b = 0; b < r; b++)
            fit->vcov[idx[a] * p + idx[b]] = V[a * r + b];
    memcpy(fit->vcov_type, type, sizeof type);
    fit->nclusters = ncl;
    fit->df_inference = df;
    /* A linear model's overall F must use the chosen covariance (as Stata's
     * robust F does); under the classical one the Wald F equals the usual
     * F, so only robust types recompute it.  Not computable (more
     * restrictions than clusters - 1): reported as missing. */
    if (fit->linear && spec->kind != BH_VCOV_CLASSICAL && !isnan(fit->stats.fstat)) {
        bh_wald_result w;
        /* a kept workspace gets its test's buffers too (made on first use;
         * without them the test allocates its own) */
        if (ws != &own && !ws->wald)
            ws->wald = bh_wald_workspace_alloc();
        if (bh_wald_overall_ws(fit, ws->wald, &w, NULL) == BH_OK) {
            fit->stats.fstat = w.f;
            fit->stats.f_df1 = w.df1;
            fit->stats.f_df2 = w.df2;
            fit->stats.f_pvalue = w.p_value;
        } else
            fit->stats.fstat = fit->stats.f_df1 = fit->stats.f_df2 = fit->stats.f_pvalue = NAN;
    }
done:
    ws_release(&own);
    return st;
}
