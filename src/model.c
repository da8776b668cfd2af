/* model.c - a model specification estimated end to end (see model.h). */
#include "blackhole/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "blackhole/formula.h"
#include "blackhole/lm.h"
#include "blackhole/wald.h"

void bh_model_spec_default(bh_model_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->family = BH_FAM_GAUSSIAN;
    spec->link = BH_LINK_IDENTITY;
    spec->weight_kind = BH_WEIGHTS_ANALYTIC;
    spec->vcov.kind = BH_VCOV_CLASSICAL;
    spec->level = 0.95;
    bh_boot_default_options(&spec->boot_opt);
}

void bh_model_free(bh_model *m)
{
    if (!m)
        return;
    bh_fit_free(m->fit);
    bh_glmm_re_free(m->re);
    bh_design_free(m->design);
    free(m);
}

/* Least squares serves the gaussian family with the identity link; every
 * other family/link goes through IRLS. */
static int use_lm(const bh_model_spec *s, bh_link link)
{
    return s->family == BH_FAM_GAUSSIAN && link == BH_LINK_IDENTITY && !s->firth;
}

/* What repeated fits keep between calls: the estimators' workspaces (NULL:
 * each estimator allocates its own) and the previous result to recycle
 * (NULL, or still the caller's unless it comes back as *fit). */
typedef struct {
    bh_glm_workspace *gws;
    bh_lm_workspace *lws;
    bh_dirichlet_workspace *dws;
    bh_glmm_workspace *mws;
    bh_fit *recycle;
    bh_glmm_re *recycle_re;     /* the random effects likewise */
} est_ws;

static bh_status estimate(const bh_model_spec *spec, const bh_design *d, bh_link link,
                          const est_ws *ew, bh_fit **fit, bh_glmm_re **re, bh_error *err)
{
    if (d->nre > 0) {
        /* (1 | g) terms: the mixed-effects model */
        if (spec->family != BH_FAM_BINOMIAL)
            return bh_error_set(err, BH_EUSAGE,
                                "random-effect terms need --family binomial (mixed-effects "
                                "logit or probit); the %s family has no mixed model here",
                                bh_family_name(spec->family));
        if (spec->firth)
            return bh_error_set(err, BH_EUSAGE, "--firth does not apply to mixed models");
        bh_glmm_options mo;
        bh_glmm_default_options(&mo);
        mo.link = link;
        if (spec->nagq)
            mo.nagq = spec->nagq;
        mo.recycle = ew->recycle;
        mo.recycle_re = ew->recycle_re;
        return bh_glmm_fit_ws(d, &mo, ew->mws, fit, re, err);
    }
    if (spec->family == BH_FAM_DIRICHLET) {
        if (d->m < 2)
            return bh_error_set(err, BH_EUSAGE,
                                "the dirichlet family needs the shares as several responses: "
                                "'share_a + share_b + share_c ~ ...'");
        bh_dirichlet_options o;
        bh_dirichlet_default_options(&o);
        o.param = spec->param;
        o.squeeze = spec->squeeze;
        if (spec->sum_tol > 0)
            o.sum_tol = spec->sum_tol;
        if (spec->tol > 0)
            o.tol = spec->tol;
        if (spec->maxiter > 0)
            o.maxiter = spec->maxiter;
        if (spec->base) {
            size_t k = 0;
            while (k < d->m && strcmp(d->ynames[k], spec->base) != 0)
                k++;
            if (k == d->m)
                return bh_error_set(err, BH_EUSAGE, "--base '%s' is not one of the responses",
                                    spec->base);
            o.base = k;
        }
        o.recycle = ew->recycle;
        return bh_dirichlet_fit(d, &o, ew->dws, fit, err);
    }
    if (spec->nagq > 1)
        return bh_error_set(err, BH_EUSAGE,
                            "--nagq applies to mixed models: add a random intercept (1 | g)");
    if (use_lm(spec, link)) {
        bh_lm_options lo;
        bh_lm_default_options(&lo);
        if (spec->rank_tol > 0)
            lo.tol = spec->rank_tol;
        lo.recycle = ew->recycle;
        return bh_lm_fit(d, &lo, ew->lws, fit, err);
    }
    bh_glm_options go;
    bh_glm_default_options(&go);
    go.family = spec->family;
    go.link = link;
    if (spec->tol > 0)
        go.tol = spec->tol;
    if (spec->maxiter > 0)
        go.maxiter = spec->maxiter;
    go.firth = spec->firth;
    go.threads = spec->threads;
    go.lean = spec->lean && !(spec->vcov_set && (spec->vcov.kind == BH_VCOV_HC2 ||
                                                 spec->vcov.kind == BH_VCOV_HC3));
    go.trace = spec->trace;
    go.trace_ctx = spec->trace_ctx;
    go.recycle = ew->recycle;
    return bh_glm_fit(d, &go, ew->gws, fit, err);
}

/* Wald tests under the model's covariance.  A covariance too small for the
 * restrictions (few clusters) is a warning, not a failure. */
static bh_status run_tests(const bh_model_spec *spec, bh_fit *fit, bh_error *err)
{
    for (size_t t = 0; t < spec->ntests; t++) {
        bh_hypothesis h;
        bh_error e2;
        bh_status s = bh_hypothesis_parse(spec->tests[t], fit, &h, &e2);
        if (s == BH_EUSAGE && spec->tests_optional) {
            if (bh_fit_warn(fit, "test '%s' skipped: %s", spec->tests[t], e2.msg) != BH_OK)
                return bh_error_set(err, BH_ENOMEM, "out of memory");
            continue;
        }
        if (s != BH_OK) {
            if (err)
                *err = e2;
            return s;
        }
        bh_wald_result w;
        s = bh_wald_test(fit, &h, &w, &e2);
        if (s == BH_OK)
            s = bh_fit_add_test(fit, "wald", h.text, isinf(w.df2) ? w.chi2 : w.f, w.df1, w.df2,
                                w.p_value);
        else if (s == BH_ENUMERIC)
            s = bh_fit_warn(fit, "test '%s' not computed: %s", spec->tests[t], e2.msg);
        bh_hypothesis_free(&h);
        if (s != BH_OK)
            return s == BH_ENOMEM ? bh_error_set(err, s, "out of memory") : (*err = e2, s);
    }
    return BH_OK;
}

/* What a spec says before any data: the link, the covariance and the
 * parsed formula, checked in the order fit_model has always checked them
 * (so a simulation reports the same message as a single fit). */
typedef struct {
    bh_link link;
    bh_vcov_spec vspec;
    bh_formula *f;
} prelude;

static bh_status spec_prelude(const bh_model_spec *spec, prelude *pr, bh_error *err)
{
    memset(pr, 0, sizeof *pr);
    if (!spec || !spec->formula)
        return bh_error_set(err, BH_EUSAGE, "no model formula");
    bh_link link = spec->link_set ? spec->link : bh_family_default_link(spec->family);
    bh_status s = bh_family_check_link(spec->family, link, err);
    if (s != BH_OK)
        return s;
    if (spec->firth && !(spec->family == BH_FAM_BINOMIAL && link == BH_LINK_LOGIT))
        return bh_error_set(err, BH_EUSAGE,
                            "--firth is Firth's bias-reduced logistic regression: it needs "
                            "--family binomial with the logit link");
    bh_vcov_spec vspec = spec->vcov;
    if (!spec->vcov_set) {
        /* Papke-Wooldridge: the fractional model is a quasi-likelihood, so its
         * default standard errors are robust. */
        vspec.kind = spec->family == BH_FAM_FRACTIONAL ? BH_VCOV_HC0 : BH_VCOV_CLASSICAL;
        vspec.cluster[0] = '\0';
    }
    if (spec->boot && vspec.kind != BH_VCOV_CLUSTER)
        return bh_error_set(err, BH_EUSAGE,
                            "the wild bootstrap resamples clusters: give --vcov cluster:VAR");
    bh_formula *f = NULL;
    if ((s = bh_formula_parse(spec->formula, &f, err)) != BH_OK)
        return s;
    if (f->nlhs != 1 && spec->family != BH_FAM_DIRICHLET) {
        s = bh_error_set(err, BH_EUSAGE,
                         "formula has %zu responses; the %s family takes one", f->nlhs,
                         bh_family_name(spec->family));
        bh_formula_free(f);
        return s;
    }
    pr->link = link;
    pr->vspec = vspec;
    pr->f = f;
    return BH_OK;
}

static void design_options(const bh_model_spec *spec, const prelude *pr, bh_design_options *dopt)
{
    bh_design_default_options(dopt);
    dopt->weights = spec->weights;
    dopt->weight_kind = spec->weight_kind;
    if (pr->vspec.kind == BH_VCOV_CLUSTER)
        dopt->cluster = pr->vspec.cluster;
}

/* Everything after the design: estimation, notes, covariance, table,
 * tests, bootstrap.  m->design is set; m->fit and m->re are filled.  ew
 * and vws: what is kept between repeated fits, or NULL. */
static bh_status fit_rest(const bh_model_spec *spec, const prelude *pr, const est_ws *ew,
                          bh_vcov_workspace *vws, bh_model *m, bh_error *err)
{
    bh_status s;
    est_ws none = {0};
    if ((s = estimate(spec, m->design, pr->link, ew ? ew : &none, &m->fit, &m->re, err)) != BH_OK)
        return s;
    for (size_t k = 0; m->re && k < m->re->ngroupings; k++) {
        const bh_glmm_group *g = &m->re->g[k];
        if (bh_fit_note(m->fit, "random intercept %s: %zu groups, SD %.6g (SE %.3g), ICC %.4g "
                        "(latent scale)", g->name, g->ngroups, g->sd, g->sd_se, g->icc) != BH_OK)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    if (m->re && pr->vspec.kind != BH_VCOV_CLASSICAL)
        return bh_error_set(err, BH_EUSAGE,
                            "mixed models report model-based standard errors only; for "
                            "cluster-robust inference fit the logit without (1 | g) and use "
                            "--vcov cluster:VAR");
    if (bh_fit_set_string(&m->fit->name, spec->name ? spec->name : "(1)") != BH_OK ||
        bh_fit_set_string(&m->fit->formula, spec->formula) != BH_OK)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    if ((s = bh_vcov_compute_ws(m->fit, &pr->vspec, vws, err)) != BH_OK)
        return s;
    if ((s = bh_fit_summarize(m->fit, spec->level, err)) != BH_OK)
        return s;
    if (spec->ntests && (s = run_tests(spec, m->fit, err)) != BH_OK)
        return s;
    if (spec->boot) {
        bh_boot_options bo = spec->boot_opt;
        bo.level = spec->level;
        if ((s = bh_boot_fit(m->fit, &bo, &m->fit->boot, err)) != BH_OK)
            return s;
    }
    return BH_OK;
}

/* With own (== data) the frame is handed to the design, which frees it
 * before anything is estimated. */
static bh_status fit_model(const bh_frame *data, bh_frame **own, const bh_model_spec *spec,
                           bh_model **out, bh_error *err)
{
    *out = NULL;
    prelude pr;
    bh_status s = spec_prelude(spec, &pr, err);
    if (s != BH_OK)
        return s;
    bh_model *m = calloc(1, sizeof *m);
    if (!m) {
        bh_formula_free(pr.f);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    bh_design_options dopt;
    design_options(spec, &pr, &dopt);
    s = own ? bh_design_build_consume(pr.f, own, &dopt, &m->design, err)
            : bh_design_build(pr.f, data, &dopt, &m->design, err);
    bh_formula_free(pr.f);
    if (s == BH_OK)
        s = fit_rest(spec, &pr, NULL, NULL, m, err);
    if (s != BH_OK) {
        bh_model_free(m);
        return s;
    }
    *out = m;
    return BH_OK;
}

/* ---- a workspace for repeated fits ---- */

struct bh_model_workspace {
    bh_model_spec spec;         /* copy; strings borrowed */
    bh_status pst;              /* the prelude's status and error, kept */
    bh_error perr;
    prelude pr;
    bh_design_options dopt;
    bh_model m;                 /* design kept (its buffers reused), fit replaced */
    bh_glm_workspace *gws;
    size_t gn, gp;              /* the GLM workspace's rows and columns */
    bh_lm_workspace *lws;       /* least squares, likewise */
    size_t ln, lp;
    bh_dirichlet_workspace *dws; /* Dirichlet regression, likewise */
    size_t dn, dp, dpz, dk;
    bh_glmm_workspace *mws;     /* mixed models (grows by itself) */
    bh_vcov_workspace *vws;     /* the covariance's buffers, kept */
};

bh_model_workspace *bh_model_workspace_alloc(const bh_model_spec *spec)
{
    bh_model_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    if (spec)
        ws->spec = *spec;
    ws->pst = spec_prelude(spec, &ws->pr, &ws->perr);
    if (ws->pst == BH_ENOMEM) {
        free(ws);
        return NULL;
    }
    if (ws->pst == BH_OK)
        design_options(&ws->spec, &ws->pr, &ws->dopt);
    return ws;
}

/* The results of the previous call, given back (or, with spare and
 * spare_re, kept there for the next fit to reuse). */
static void ws_clear_fit(bh_model_workspace *ws, bh_fit **spare, bh_glmm_re **spare_re)
{
    if (spare)
        *spare = ws->m.fit;
    else
        bh_fit_free(ws->m.fit);
    if (spare_re)
        *spare_re = ws->m.re;
    else
        bh_glmm_re_free(ws->m.re);
    ws->m.fit = NULL;
    ws->m.re = NULL;
}

void bh_model_workspace_free(bh_model_workspace *ws)
{
    if (!ws)
        return;
    ws_clear_fit(ws, NULL, NULL);
    bh_design_free(ws->m.design);
    bh_formula_free(ws->pr.f);
    bh_glm_workspace_free(ws->gws);
    bh_lm_workspace_free(ws->lws);
    bh_dirichlet_workspace_free(ws->dws);
    bh_glmm_workspace_free(ws->mws);
    bh_vcov_workspace_free(ws->vws);
    free(ws);
}

/* Which estimator estimate() takes for this spec and design. */
typedef enum { EST_OTHER, EST_GLM, EST_LM, EST_DIRICHLET, EST_GLMM } est_kind;

static est_kind estimator_of(const bh_model_spec *spec, const bh_design *d, bh_link link)
{
    if (d->nre > 0)
        return EST_GLMM;
    if (spec->family == BH_FAM_DIRICHLET)
        return d->m >= 2 ? EST_DIRICHLET : EST_OTHER;
    if (spec->nagq > 1)
        return EST_OTHER;
    return use_lm(spec, link) ? EST_LM : EST_GLM;
}

/* Grown sizes: the largest problem seen, with room for a quarter more rows
 * (the rows vary with listwise deletion and drawn lead counts), so that a
 * workspace is rarely allocated again.  The estimators' results do not
 * depend on their workspace's size. */
static size_t grow_rows(size_t need, size_t have)
{
    return need <= have ? have : need + need / 4;
}

static size_t grow_to(size_t need, size_t have)
{
    return need > have ? need : have;
}

/* The Dirichlet fit's precision columns (as bh_dirichlet_fit counts them). */
static size_t dirichlet_pz(const bh_model_spec *spec, const bh_design *d)
{
    return spec->param == BH_DIRICHLET_ALTERNATIVE ? (d->z ? d->pz : 1) : 0;
}

static bh_status fit_ws(bh_model_workspace *ws, const bh_frame *data, bh_fit *spare,
                        bh_glmm_re *spare_re, bh_error *err)
{
    if (ws->pst != BH_OK) {
        if (err)
            *err = ws->perr;
        return ws->pst;
    }
    bh_status s;
    if (ws->m.design)
        s = bh_design_rebuild(ws->pr.f, data, &ws->dopt, ws->m.design, err);
    else
        s = bh_design_build(ws->pr.f, data, &ws->dopt, &ws->m.design, err);
    if (s != BH_OK)
        return s;
    const bh_design *d = ws->m.design;
    est_ws ew = {.recycle = spare, .recycle_re = spare_re};
    switch (estimator_of(&ws->spec, d, ws->pr.link)) {
    case EST_GLM:
        if (!ws->gws || ws->gn < d->n || ws->gp < d->p) {
            /* bh_glm_fit works in fixed chunks */
            size_t n = grow_rows(d->n, ws->gn), p = grow_to(d->p, ws->gp);
            bh_glm_workspace_free(ws->gws);
            ws->gn = ws->gp = 0;
            if (!(ws->gws = bh_glm_workspace_alloc(n, p)))
                return bh_error_set(err, BH_ENOMEM, "glm: out of memory (%zu x %zu)", n, p);
            ws->gn = n;
            ws->gp = p;
        }
        ew.gws = ws->gws;
        break;
    case EST_LM:
        if (!ws->lws || ws->ln < d->n || ws->lp < d->p) {
            /* bh_lm_fit cuts its chunks by the problem's own size */
            size_t n = grow_rows(d->n, ws->ln), p = grow_to(d->p, ws->lp);
            bh_lm_workspace_free(ws->lws);
            ws->ln = ws->lp = 0;
            if (!(ws->lws = bh_lm_workspace_alloc(n, p)))
                return bh_error_set(err, BH_ENOMEM, "lm: out of memory (%zu x %zu)", n, p);
            ws->ln = n;
            ws->lp = p;
        }
        ew.lws = ws->lws;
        break;
    case EST_DIRICHLET: {
        size_t pz = dirichlet_pz(&ws->spec, d);
        if (!ws->dws || ws->dn < d->n || ws->dp < d->p || ws->dpz < pz || ws->dk < d->m) {
            size_t n = grow_rows(d->n, ws->dn), p = grow_to(d->p, ws->dp);
            size_t z = grow_to(pz, ws->dpz), k = grow_to(d->m, ws->dk);
            bh_dirichlet_workspace_free(ws->dws);
            ws->dn = ws->dp = ws->dpz = ws->dk = 0;
            if (!(ws->dws = bh_dirichlet_workspace_alloc(n, p, z, k)))
                return bh_error_set(err, BH_ENOMEM,
                                    "dirichlet: out of memory (%zu rows, %zu columns, %zu "
                                    "shares)", n, p, k);
            ws->dn = n;
            ws->dp = p;
            ws->dpz = z;
            ws->dk = k;
        }
        ew.dws = ws->dws;
        break;
    }
    case EST_GLMM:
        if (!ws->mws && !(ws->mws = bh_glmm_workspace_alloc()))
            return bh_error_set(err, BH_ENOMEM, "glmm: out of memory");
        ew.mws = ws->mws;
        break;
    case EST_OTHER:
        break;
    }
    if (!ws->vws && !(ws->vws = bh_vcov_workspace_alloc()))
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    return fit_rest(&ws->spec, &ws->pr, &ew, ws->vws, &ws->m, err);
}

bh_status bh_model_fit_ws(bh_model_workspace *ws, const bh_frame *data, const bh_model **out,
                          bh_error *err)
{
    *out = NULL;
    /* the previous fit's memory is reused by the next result of the same
     * shape (GLM, least squares, Dirichlet), else freed */
    bh_fit *spare = NULL;
    bh_glmm_re *spare_re = NULL;
    ws_clear_fit(ws, &spare, &spare_re);
    bh_status s = fit_ws(ws, data, spare, spare_re, err);
    if (ws->m.fit != spare)
        bh_fit_free(spare);
    if (ws->m.re != spare_re)
        bh_glmm_re_free(spare_re);
    if (s != BH_OK) {
        ws_clear_fit(ws, NULL, NULL);
        return s;
    }
    *out = &ws->m;
    return BH_OK;
}

bh_status bh_model_fit(const bh_frame *data, const bh_model_spec *spec, bh_model **out,
                       bh_error *err)
{
    return fit_model(data, NULL, spec, out, err);
}

bh_status bh_model_fit_consume(bh_frame **data, const bh_model_spec *spec, bh_model **out,
                               bh_error *err)
{
    *out = NULL;
    if (!data || !*data)
        return bh_error_set(err, BH_EINTERNAL, "no data frame to fit");
    bh_status s = fit_model(*data, data, spec, out, err);
    /* Errors before the design (spec, formula) leave the frame here. */
    bh_frame_free(*data);
    *data = NULL;
    return s;
}

/* Whether two designs hold the same data rows (rows may be NULL: see
 * bh_design). */
static int same_rows(const bh_design *a, const bh_design *b)
{
    if (a->n != b->n)
        return 0;
    if (a->rows && b->rows)
        return memcmp(a->rows, b->rows, a->n * sizeof *a->rows) == 0;
    for (size_t i = 0; i < a->n; i++)
        if (bh_design_data_row(a, i) != bh_design_data_row(b, i))
            return 0;
    return 1;
}

static long find_term(const bh_fit *f, const char *comp, const char *term)
{
    for (size_t j = 0; j < f->p; j++)
        if (strcmp(f->term[j], term) == 0 &&
            strcmp(f->component[j] ? f->component[j] : "", comp ? comp : "") == 0)
            return (long)j;
    return -1;
}

bh_status bh_model_compare(const bh_model *small, bh_model *large, bh_error *err)
{
    const bh_fit *a = small->fit;
    bh_fit *b = large->fit;
    if (strcmp(a->family ? a->family : "", b->family ? b->family : "") != 0 ||
        strcmp(a->link ? a->link : "", b->link ? b->link : "") != 0)
        return bh_error_set(err, BH_EUSAGE, "models %s and %s have different families or links",
                            a->name, b->name);
    if (a->nobs != b->nobs || !same_rows(small->design, large->design))
        return bh_error_set(err, BH_EUSAGE,
                            "models %s (N = %zu) and %s (N = %zu) were not fitted to the same "
                            "observations (missing values differ?); nested comparisons need the "
                            "same rows", a->name, a->nobs, b->name, b->nobs);
    for (size_t j = 0; j < a->p; j++)
        if (!a->aliased[j] && find_term(b, a->component[j], a->term[j]) < 0)
            return bh_error_set(err, BH_EUSAGE,
                                "model %s is not nested in %s: term '%s' is missing from %s",
                                a->name, b->name, a->term[j], b->name);
    double q = (double)b->rank - (double)a->rank;
    if (!(q > 0))
        return bh_error_set(err, BH_EUSAGE, "model %s has no more parameters than %s",
                            b->name, a->name);
    char label[256];
    snprintf(label, sizeof label, "vs %.200s", a->name);
    bh_status s;
    if (b->linear) {
        /* anova(): F = ((RSS0 - RSS1) / q) / (RSS1 / df1) */
        double rss0 = a->stats.deviance, rss1 = b->stats.deviance, df1 = b->stats.df_resid;
        double F = ((rss0 - rss1) / q) / (rss1 / df1);
        s = bh_fit_add_test(b, "f", label, F, q, df1, gsl_cdf_fdist_Q(F, q, df1));
    } else {
        if (b->family && strcmp(b->family, "fractional") == 0)
            return bh_error_set(err, BH_EUSAGE,
                                "fractional models are quasi-likelihood fits without a true "
                                "likelihood: compare them with a Wald test (--test)");
        double lr = 2 * (b->stats.loglik - a->stats.loglik);
        if (!isfinite(lr))
            return bh_error_set(err, BH_EUSAGE,
                                "the likelihood-ratio test needs log-likelihoods; model %s "
                                "(%s) has none", b->name, b->family);
        s = bh_fit_add_test(b, "lr", label, lr, q, INFINITY, gsl_cdf_chisq_Q(lr, q));
    }
    return s == BH_OK ? BH_OK : bh_error_set(err, s, "out of memory");
}
