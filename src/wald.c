/* wald.c - linear hypotheses: parsing against coefficient names and the
 * Wald test under the fit's current covariance. */
#include "blackhole/wald.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_linalg.h>

#include "blackhole/buf.h"
#include "blackhole/strutil.h"

/* Printable name of coefficient j: "term", or "component:term". */
static void coef_name(const bh_fit *fit, size_t j, char *buf, size_t n)
{
    if (fit->component && fit->component[j] && fit->component[j][0])
        snprintf(buf, n, "%s:%s", fit->component[j], fit->term[j]);
    else
        snprintf(buf, n, "%s", fit->term[j]);
}

/* Longest coefficient name that starts at s; returns its index or -1. */
static long match_name(const bh_fit *fit, const char *s, size_t *len)
{
    long best = -1;
    size_t bestlen = 0;
    char buf[512];
    for (size_t j = 0; j < fit->p; j++) {
        for (int form = 0; form < 2; form++) {
            if (form == 0)
                coef_name(fit, j, buf, sizeof buf);
            else
                snprintf(buf, sizeof buf, "%s", fit->term[j]);
            size_t L = strlen(buf);
            if (L > bestlen && strncmp(s, buf, L) == 0) {
                /* a name must not be followed by more name characters */
                char c = s[L];
                if (c && !isspace((unsigned char)c) && !strchr("+-*=,", c))
                    continue;
                best = (long)j;
                bestlen = L;
            }
        }
    }
    *len = bestlen;
    return best;
}

static const char *skip(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* Parse a linear combination up to '=', ',' or end into coef[] and *cst. */
static bh_status parse_side(const char *text, const char **sp, const bh_fit *fit,
                            double sign, double *coef, double *cst, bh_error *err)
{
    const char *s = skip(*sp);
    int nterms = 0;
    while (*s && *s != '=' && *s != ',') {
        double sg = 1;
        if (*s == '+' || *s == '-') {
            sg = *s == '-' ? -1 : 1;
            s = skip(s + 1);
        } else if (nterms > 0)
            return bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                               "expected '+', '-' or '=' at '%.20s'", s);
        double mult = 1;
        size_t L;
        long j = match_name(fit, s, &L);
        if (j < 0) {
            char *end;
            double v = strtod(s, &end);
            if (end == s) {
                char want[128];
                size_t k = 0;
                while (s[k] && !strchr("=,+", s[k]) && k < sizeof want - 1) {
                    want[k] = s[k];
                    k++;
                }
                while (k && isspace((unsigned char)want[k - 1]))
                    k--;
                want[k] = '\0';
                const char **names = malloc(fit->p * sizeof *names);
                const char *sug = NULL;
                if (names) {
                    for (size_t i = 0; i < fit->p; i++)
                        names[i] = fit->term[i];
                    sug = bh_suggest(want, names, fit->p);
                }
                bh_status st = sug
                    ? bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                                  "unknown coefficient '%s' (did you mean '%s'?)", want, sug)
                    : bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                                  "unknown coefficient '%s'", want);
                free(names);
                return st;
            }
            s = skip(end);
            if (*s == '*') {
                mult = v;
                s = skip(s + 1);
                j = match_name(fit, s, &L);
                if (j < 0)
                    return bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                                       "expected a coefficient name after '*' at '%.20s'", s);
            } else {
                *cst += sign * sg * v;
                nterms++;
                continue;
            }
        }
        if (fit->aliased && fit->aliased[j])
            return bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                               "coefficient '%s' is not estimable (aliased)", fit->term[j]);
        coef[j] += sign * sg * mult;
        s = skip(s + L);
        nterms++;
    }
    if (nterms == 0)
        return bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                           "empty side of a restriction");
    *sp = s;
    return BH_OK;
}

bh_status bh_hypothesis_parse(const char *text, const bh_fit *fit, bh_hypothesis *out,
                              bh_error *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 1;
    for (const char *c = text; *c; c++)
        cap += *c == ',';
    out->L = calloc(cap * (fit->p ? fit->p : 1), sizeof *out->L);
    out->r = calloc(cap, sizeof *out->r);
    out->text = bh_strdup(text);
    if (!out->L || !out->r || !out->text) {
        bh_hypothesis_free(out);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    const char *s = text;
    for (;;) {
        double *row = out->L + out->q * fit->p, cst = 0;
        bh_status st = parse_side(text, &s, fit, 1, row, &cst, err);
        if (st == BH_OK && *s == '=') {
            s++;
            st = parse_side(text, &s, fit, -1, row, &cst, err);
        }
        if (st != BH_OK) {
            bh_hypothesis_free(out);
            return st;
        }
        int any = 0;
        for (size_t j = 0; j < fit->p; j++)
            any |= row[j] != 0;
        if (!any) {
            bh_hypothesis_free(out);
            return bh_error_set(err, BH_EUSAGE,
                                "hypothesis '%s': restriction %zu involves no coefficient",
                                text, out->q + 1);
        }
        out->r[out->q++] = -cst;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s) {
            bh_hypothesis_free(out);
            return bh_error_at(err, BH_EUSAGE, "hypothesis", 1, (size_t)(s - text) + 1,
                               "unexpected '%c'", *s);
        }
        break;
    }
    return BH_OK;
}

void bh_hypothesis_free(bh_hypothesis *h)
{
    if (!h)
        return;
    free(h->L);
    free(h->r);
    free(h->text);
    memset(h, 0, sizeof *h);
}

/* The buffers of one test, each with its capacity in elements. */
struct bh_wald_workspace {
    double *M, *d, *tmp, *x, *L, *r;
    size_t cM, cd, ctmp, cx, cL, cr;
};

bh_wald_workspace *bh_wald_workspace_alloc(void)
{
    return calloc(1, sizeof(bh_wald_workspace));
}

static void ws_release(bh_wald_workspace *ws)
{
    free(ws->M);
    free(ws->d);
    free(ws->tmp);
    free(ws->x);
    free(ws->L);
    free(ws->r);
}

void bh_wald_workspace_free(bh_wald_workspace *ws)
{
    if (!ws)
        return;
    ws_release(ws);
    free(ws);
}

/* The test with its buffers in ws (grown to q and p there).  M and x are
 * GSL views of q x q and q doubles with the layout gsl_matrix_alloc and
 * gsl_vector_alloc give (tda = q, stride 1): the same factorisation. */
static bh_status wald(const bh_fit *fit, const double *L, const double *r, size_t q,
                      bh_wald_workspace *ws, bh_wald_result *out, bh_error *err)
{
    size_t p = fit->p;
    if (q == 0)   /* GSL has no empty matrices */
        return bh_error_set(err, BH_EUSAGE, "no restrictions to test");
    double *Mb = ws->M = bh_reserve(ws->M, &ws->cM, q * q, sizeof *Mb);
    double *d = ws->d = bh_reserve(ws->d, &ws->cd, q, sizeof *d);
    double *tmp = ws->tmp = bh_reserve(ws->tmp, &ws->ctmp, p, sizeof *tmp);
    double *xb = ws->x = bh_reserve(ws->x, &ws->cx, q, sizeof *xb);
    if (!Mb || !d || !tmp || !xb)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    gsl_matrix_view Mv = gsl_matrix_view_array(Mb, q, q);
    gsl_matrix *M = &Mv.matrix;
    /* d = L b - r and M = L V L' over the estimable coefficients. */
    for (size_t a = 0; a < q; a++) {
        const double *la = L + a * p;
        double s = -r[a];
        for (size_t j = 0; j < p; j++)
            if (la[j] != 0)
                s += la[j] * fit->beta[j];
        d[a] = s;
        for (size_t j = 0; j < p; j++) {
            double t = 0;
            if (!(fit->aliased && fit->aliased[j]))
                for (size_t k = 0; k < p; k++)
                    if (la[k] != 0)
                        t += la[k] * fit->vcov[k * p + j];
            tmp[j] = t;
        }
        for (size_t b = 0; b < q; b++) {
            const double *lb = L + b * p;
            double t = 0;
            for (size_t j = 0; j < p; j++)
                if (lb[j] != 0)
                    t += tmp[j] * lb[j];
            gsl_matrix_set(M, a, b, t);
        }
    }
    int ok = 1;
    for (size_t a = 0; a < q; a++)
        ok &= isfinite(d[a]);
    bh_status st = BH_OK;
    if (!ok || gsl_linalg_cholesky_decomp1(M) != GSL_SUCCESS) {
        st = bh_error_set(err, BH_ENUMERIC,
                          "the restrictions' covariance L V L' is singular (%zu restriction%s; "
                          "with %zu clusters a cluster-robust covariance has rank at most %zu)",
                          q, q == 1 ? "" : "s", fit->nclusters,
                          fit->nclusters ? fit->nclusters - 1 : fit->rank);
    } else {
        gsl_vector_view dv = gsl_vector_view_array(d, q);
        gsl_vector_view xv = gsl_vector_view_array(xb, q);
        gsl_vector *x = &xv.vector;
        gsl_linalg_cholesky_solve(M, &dv.vector, x);
        double W = 0;
        for (size_t a = 0; a < q; a++)
            W += d[a] * gsl_vector_get(x, a);
        out->chi2 = W;
        out->df1 = (double)q;
        out->f = W / (double)q;
        out->df2 = fit->df_inference;
        out->p_value = isinf(fit->df_inference)
                           ? gsl_cdf_chisq_Q(W, (double)q)
                           : gsl_cdf_fdist_Q(out->f, (double)q, fit->df_inference);
    }
    return st;
}

bh_status bh_wald_test(const bh_fit *fit, const bh_hypothesis *h, bh_wald_result *out,
                       bh_error *err)
{
    bh_wald_workspace own = {0};
    bh_status st = wald(fit, h->L, h->r, h->q, &own, out, err);
    ws_release(&own);
    return st;
}

bh_status bh_wald_overall(const bh_fit *fit, bh_wald_result *out, bh_error *err)
{
    return bh_wald_overall_ws(fit, NULL, out, err);
}

bh_status bh_wald_overall_ws(const bh_fit *fit, bh_wald_workspace *ws, bh_wald_result *out,
                             bh_error *err)
{
    bh_wald_workspace own = {0};
    if (!ws)
        ws = &own;   /* released at the end */
    size_t p = fit->p, q = 0;
    double *L = ws->L = bh_reserve(ws->L, &ws->cL, p * p + 1, sizeof *L);
    double *r = ws->r = bh_reserve(ws->r, &ws->cr, p + 1, sizeof *r);
    bh_status st;
    if (!L || !r) {
        st = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    memset(L, 0, (p * p + 1) * sizeof *L);
    memset(r, 0, (p + 1) * sizeof *r);
    for (size_t j = 0; j < p; j++) {
        if (strcmp(fit->term[j], "(Intercept)") == 0 || (fit->aliased && fit->aliased[j]))
            continue;
        L[q * p + j] = 1;
        q++;
    }
    st = q ? wald(fit, L, r, q, ws, out, err)
           : bh_error_set(err, BH_EUSAGE, "no coefficients besides the intercept");
done:
    ws_release(&own);
    return st;
}
