/* test_glm.c - generalized linear models against R.
 *
 * Designs are built by hand (no formula layer) from tests/fixtures/glm/,
 * written with the reference values by tests/fixtures/r/glm_reference.R
 * (tool, versions and command in each fixture's header).  Factors are coded
 * there as 0/1 dummy columns so these designs equal R's model matrices.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/glm.h"
#include "blackhole/vcov.h"

#include "handdesign.h"

/* the shared hand-built designs (tests/handdesign.h) */
typedef bht_design glt_design;
#define glt_new bht_design_new
#define glt_free bht_design_free
#define glt_name bht_design_name

#define FX "tests/fixtures/glm/"





static void glt_opts(bh_glm_options *o, glt_design *t, bh_family f, bh_link l)
{
    bh_glm_default_options(o);
    o->family = f;
    o->link = l;
    o->colnames = (const char *const *)t->names;
}

static bh_fit *glt_fit(glt_design *t, const bh_glm_options *o)
{
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status st = bh_glm_fit(&t->d, o, NULL, &fit, &err);
    cr_assert_eq(st, BH_OK, "bh_glm_fit: %s", err.msg);
    cr_assert_not_null(fit);
    return fit;
}

static const char *glt_warning(const bh_fit *f, const char *needle)
{
    for (size_t k = 0; k < f->nwarnings; k++)
        if (strstr(f->warnings[k], needle))
            return f->warnings[k];
    return NULL;
}

static size_t glt_term(const bh_fit *fit, const char *term)
{
    for (size_t j = 0; j < fit->p; j++)
        if (strcmp(fit->term[j], term) == 0)
            return j;
    cr_assert_fail("fit has no term %s", term);
    return 0;
}

/* ---- R reference cases ---------------------------------------------- */

typedef struct {
    glt_design *t;
    bh_family family;
    bh_link link;
    int firth;
} glt_case;

static glt_case glt_load(const char *name)
{
    bht_fixture *cs = bht_fixture_read(FX "glm_cases.csv");
    size_t row = SIZE_MAX;
    for (size_t i = 0; i < cs->nrow; i++)
        if (strcmp(bht_fixture_str(cs, i, "case"), name) == 0)
            row = i;
    cr_assert_neq(row, SIZE_MAX, "no case %s in glm_cases.csv", name);
    char path[256], xs[512];
    snprintf(path, sizeof path, FX "%s.csv", bht_fixture_str(cs, row, "data"));
    bht_fixture *fx = bht_fixture_read(path);
    snprintf(xs, sizeof xs, "%s", bht_fixture_str(cs, row, "x"));
    int icpt = (int)bht_fixture_num(cs, row, "intercept");
    const char *wname = bht_fixture_str(cs, row, "weights");
    const char *oname = bht_fixture_str(cs, row, "offset");
    const char *cname = bht_fixture_str(cs, row, "cluster");
    const char *xv[32];
    size_t nx = 0;
    for (char *tok = strtok(xs, " "); tok && nx < 32; tok = strtok(NULL, " "))
        xv[nx++] = tok;
    size_t n = fx->nrow, p = nx + (icpt ? 1 : 0), j0 = icpt ? 1 : 0;
    glt_case c;
    c.t = glt_new(n, p);
    glt_design *t = c.t;
    cr_assert_eq(bh_family_parse(bht_fixture_str(cs, row, "family"), &c.family, NULL), BH_OK);
    cr_assert_eq(bh_link_parse(bht_fixture_str(cs, row, "link"), &c.link, NULL), BH_OK);
    c.firth = (int)bht_fixture_num(cs, row, "firth");
    if (icpt)
        glt_name(t, 0, "(Intercept)");
    for (size_t k = 0; k < nx; k++)
        glt_name(t, j0 + k, xv[k]);
    const char *yname = bht_fixture_str(cs, row, "y");
    if (wname[0])
        t->d.w = calloc(n, sizeof(double));
    if (oname[0])
        t->d.offset = calloc(n, sizeof(double));
    double *seen = NULL;
    if (cname[0]) {
        t->d.cluster = calloc(1, sizeof *t->d.cluster);
        t->d.cluster->name = strdup(cname);
        t->d.cluster->code = calloc(n, sizeof(size_t));
        seen = calloc(n, sizeof(double));
    }
    for (size_t i = 0; i < n; i++) {
        t->d.y[i] = bht_fixture_num(fx, i, yname);
        if (icpt)
            t->d.x[i] = 1.0;
        for (size_t k = 0; k < nx; k++)
            t->d.x[(j0 + k) * n + i] = bht_fixture_num(fx, i, xv[k]);
        if (wname[0])
            t->d.w[i] = bht_fixture_num(fx, i, wname);
        if (oname[0])
            t->d.offset[i] = bht_fixture_num(fx, i, oname);
        if (cname[0]) {
            double cv = bht_fixture_num(fx, i, cname);
            size_t g = 0;
            while (g < t->d.cluster->ngroups && seen[g] != cv)
                g++;
            if (g == t->d.cluster->ngroups)
                seen[t->d.cluster->ngroups++] = cv;
            t->d.cluster->code[i] = g;
        }
    }
    free(seen);
    bht_fixture_free(fx);
    bht_fixture_free(cs);
    return c;
}

static bh_fit *glt_case_fit(const glt_case *c, double tol)
{
    bh_glm_options o;
    glt_opts(&o, c->t, c->family, c->link);
    o.firth = c->firth;
    if (tol > 0)
        o.tol = tol;
    return glt_fit(c->t, &o);
}

/* Covariance entries relative to their scale sqrt(V_aa V_bb), since an
 * off-diagonal entry may be zero up to rounding (R's too). */
static void glt_vcov_rel(const bh_fit *fit, size_t a, size_t b, double want,
                         double rtol, const char *what)
{
    double got = fit->vcov[a * fit->p + b];
    double s = sqrt(fabs(fit->vcov[a * fit->p + a] * fit->vcov[b * fit->p + b]));
    cr_assert(fabs(got - want) <= rtol * fmax(fabs(want), s),
              "%s [%s, %s]: got %.17g want %.17g", what, fit->term[a],
              fit->term[b], got, want);
}

/* Estimates, model-based standard errors, every covariance type R gives,
 * and the statistics, all to relative tolerance rtol.  The fits use R's
 * convergence tolerance of the references (1e-15): probit and cloglog
 * converge linearly, so the default 1e-10 leaves them ~1e-7 from R's
 * tight fit. */
static void glt_check(const char *name, double rtol)
{
    glt_case c = glt_load(name);
    bh_fit *fit = glt_case_fit(&c, 1e-15);
    cr_expect(fit->converged, "%s did not converge", name);
    bh_error err;
    cr_assert_eq(bh_fit_summarize(fit, 0.95, &err), BH_OK, "%s", err.msg);

    bht_fixture *co = bht_fixture_read(FX "glm_coef.csv");
    size_t nterm = 0;
    for (size_t i = 0; i < co->nrow; i++) {
        if (strcmp(bht_fixture_str(co, i, "case"), name) != 0)
            continue;
        nterm++;
        size_t j = glt_term(fit, bht_fixture_str(co, i, "term"));
        bht_assert_rel(fit->beta[j], bht_fixture_num(co, i, "estimate"), rtol,
                       "(%s %s estimate)", name, fit->term[j]);
        bht_assert_rel(fit->se[j], bht_fixture_num(co, i, "se"), rtol,
                       "(%s %s se)", name, fit->term[j]);
    }
    cr_assert_eq(nterm, fit->p);
    bht_fixture_free(co);

    /* Covariances: each type computed from the fit, compared entrywise. */
    static const char *const types[] = {"classical", "HC0", "HC1", "HC2",
                                        "HC3", "cluster"};
    bht_fixture *vf = bht_fixture_read(FX "glm_vcov.csv");
    for (size_t ty = 0; ty < sizeof types / sizeof *types; ty++) {
        size_t seen = 0;
        for (size_t i = 0; i < vf->nrow; i++) {
            if (strcmp(bht_fixture_str(vf, i, "case"), name) != 0 ||
                strcmp(bht_fixture_str(vf, i, "type"), types[ty]) != 0)
                continue;
            if (seen++ == 0) {
                bh_vcov_spec spec;
                char text[64];
                if (ty == 5)
                    snprintf(text, sizeof text, "cluster:%s", c.t->d.cluster->name);
                else
                    snprintf(text, sizeof text, "%s", types[ty]);
                cr_assert_eq(bh_vcov_parse(text, &spec, &err), BH_OK);
                cr_assert_eq(bh_vcov_compute(fit, &spec, &err), BH_OK, "%s", err.msg);
            }
            size_t a = glt_term(fit, bht_fixture_str(vf, i, "row"));
            size_t b = glt_term(fit, bht_fixture_str(vf, i, "col"));
            char what[96];
            snprintf(what, sizeof what, "%s %s", name, types[ty]);
            glt_vcov_rel(fit, a, b, bht_fixture_num(vf, i, "value"), rtol, what);
        }
    }
    bht_fixture_free(vf);

    bht_fixture *sf = bht_fixture_read(FX "glm_stats.csv");
    for (size_t i = 0; i < sf->nrow; i++) {
        if (strcmp(bht_fixture_str(sf, i, "case"), name) != 0)
            continue;
        const char *k = bht_fixture_str(sf, i, "stat");
        double want = bht_fixture_num(sf, i, "value"), got = NAN;
        const bh_fit_stats *S = &fit->stats;
        if (!strcmp(k, "iterations"))
            continue; /* depends on the tolerance (R: 1e-15) */
        if (c.firth && (!strcmp(k, "null_deviance")))
            continue; /* brglm2 fits a bias-reduced null model */
        if (!strcmp(k, "deviance")) got = S->deviance;
        else if (!strcmp(k, "null_deviance")) got = S->null_deviance;
        else if (!strcmp(k, "df_resid")) got = S->df_resid;
        else if (!strcmp(k, "null_df")) got = S->null_df;
        else if (!strcmp(k, "dispersion")) got = fit->dispersion;
        else if (!strcmp(k, "loglik")) got = S->loglik;
        else if (!strcmp(k, "aic")) got = S->aic;
        else if (!strcmp(k, "bic")) got = S->bic;
        else if (!strcmp(k, "mcfadden")) got = S->pseudo_r2_mcfadden;
        else if (!strcmp(k, "tjur")) got = S->pseudo_r2_tjur;
        else if (!strcmp(k, "auc")) got = S->auc;
        else if (!strcmp(k, "hl_stat")) got = S->hl_stat;
        else if (!strcmp(k, "hl_df")) got = S->hl_df;
        else if (!strcmp(k, "hl_pvalue")) got = S->hl_pvalue;
        else
            cr_assert_fail("unknown statistic %s", k);
        bht_assert_rel(got, want, rtol, "(%s %s)", name, k);
    }
    bht_fixture_free(sf);
    bh_fit_free(fit);
    glt_free(c.t);
}

Test(glm_r, birthwt_logit) { glt_check("bw_logit", 1e-8); }
Test(glm_r, birthwt_probit) { glt_check("bw_probit", 1e-8); }
Test(glm_r, birthwt_cloglog) { glt_check("bw_cloglog", 1e-8); }
Test(glm_r, birthwt_no_intercept) { glt_check("bw_noint", 1e-8); }
Test(glm_r, esoph_trials_logit) { glt_check("esoph_logit", 1e-8); }
/* Fisher scoring converges linearly for this non-canonical link: R's fit
 * at epsilon 1e-15 (12 iterations) is itself accurate to ~1e-8 only. */
Test(glm_r, esoph_trials_cloglog) { glt_check("esoph_cloglog", 1e-7); }
Test(glm_r, mtcars_am_logit) { glt_check("mtcars_am", 1e-8); }
Test(glm_r, mtcars_gaussian_weighted) { glt_check("mtcars_gauss_w", 1e-8); }
Test(glm_r, insurance_poisson_offset) { glt_check("ins_offset", 1e-8); }
Test(glm_r, warpbreaks_poisson) { glt_check("warp_pois", 1e-8); }
Test(glm_r, fractional_logit) { glt_check("frac_logit", 1e-8); }
Test(glm_r, fractional_probit_weighted) { glt_check("frac_probit_w", 1e-8); }
Test(glm_firth, birthwt_vs_brglm2) { glt_check("bw_firth", 1e-8); }
Test(glm_firth, separated_vs_brglm2) { glt_check("sep_firth", 1e-8); }

/* Convergence needs both a small deviance change and coefficients that
 * have stopped moving (stricter than R's rule), in a handful of
 * iterations on well-posed problems. */
Test(glm_r, converges_in_few_iterations)
{
    const char *names[] = {"bw_logit", "mtcars_gauss_w", "mtcars_am", "bw_probit", "bw_cloglog"};
    for (size_t k = 0; k < 5; k++) {
        glt_case c = glt_load(names[k]);
        bh_fit *fit = glt_case_fit(&c, 1e-10);
        cr_expect(fit->converged, "%s did not converge", names[k]);
        cr_expect_leq(fit->iterations, 30, "%s: %zu iterations", names[k], fit->iterations);
        bh_fit_free(fit);
        glt_free(c.t);
    }
}

/* ---- separation -------------------------------------------------------- */

static glt_design *sep_design(const char *file, const char *y,
                              const char *const *xs, size_t nx)
{
    bht_fixture *fx = bht_fixture_read(file);
    size_t n = fx->nrow;
    glt_design *t = glt_new(n, nx + 1);
    glt_name(t, 0, "(Intercept)");
    for (size_t k = 0; k < nx; k++)
        glt_name(t, k + 1, xs[k]);
    for (size_t i = 0; i < n; i++) {
        t->d.x[i] = 1;
        t->d.y[i] = bht_fixture_num(fx, i, y);
        for (size_t k = 0; k < nx; k++)
            t->d.x[(k + 1) * n + i] = bht_fixture_num(fx, i, xs[k]);
    }
    bht_fixture_free(fx);
    return t;
}

Test(glm_separation, complete)
{
    const char *xs[] = {"x"};
    glt_design *t = sep_design(FX "sep.csv", "yc", xs, 1);
    bh_glm_options o;
    glt_opts(&o, t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bh_fit *f = glt_fit(t, &o);
    const char *w = glt_warning(f, "separation");
    cr_assert_not_null(w, "no separation warning");
    cr_expect(strncmp(w, "complete separation", 19) == 0, "%s", w);
    cr_expect(strstr(w, "variables involved: (Intercept), x;") != NULL, "%s", w);
    cr_expect(strstr(w, "for 12 rows") != NULL, "%s", w);
    cr_expect(isfinite(f->stats.deviance) && f->stats.deviance < 1e-6);
    bh_fit_free(f);
    glt_free(t);
}

Test(glm_separation, quasi_complete)
{
    const char *xs[] = {"x"};
    glt_design *t = sep_design(FX "sep.csv", "yq", xs, 1);
    bh_glm_options o;
    glt_opts(&o, t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bh_fit *f = glt_fit(t, &o);
    const char *w = glt_warning(f, "separation");
    cr_assert_not_null(w, "no separation warning");
    cr_expect(strncmp(w, "quasi-complete separation", 25) == 0, "%s", w);
    cr_expect(strstr(w, "variables involved: (Intercept), x;") != NULL, "%s", w);
    /* The rows at x = 5 (one 0, one 1) stay at fitted 1/2, each adding
     * 2 log 2 to the deviance; the others are fitted exactly. */
    bht_assert_rel(f->stats.deviance, 4 * log(2.0), 1e-6, "(quasi-complete deviance)");
    bh_fit_free(f);
    glt_free(t);
}

/* Level 3 of a factor has y = 0 throughout: only its dummy is infinite. */
Test(glm_separation, factor_level)
{
    const char *xs[] = {"g2", "g3", "z"};
    glt_design *t = sep_design(FX "sepfactor.csv", "y", xs, 3);
    bh_glm_options o;
    glt_opts(&o, t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bh_fit *f = glt_fit(t, &o);
    const char *w = glt_warning(f, "separation");
    cr_assert_not_null(w, "no separation warning");
    cr_expect(strstr(w, "quasi-complete separation: fitted probabilities of 0 "
                        "or 1 for 20 rows; variables involved: g3;") != NULL,
              "%s", w);
    cr_expect(f->beta[2] < -15, "g3 estimate %g", f->beta[2]);
    cr_expect(isfinite(f->beta[1]) && fabs(f->beta[1]) < 5);
    bh_fit_free(f);
    glt_free(t);
}

/* Non-separated data with a strong predictor: no separation warning. */
Test(glm_separation, none_for_mtcars)
{
    glt_case c = glt_load("mtcars_am");
    bh_fit *f = glt_case_fit(&c, 0);
    cr_expect_null(glt_warning(f, "separation"));
    bh_fit_free(f);
    glt_free(c.t);
}

Test(glm_separation, all_zero_outcome)
{
    const char *xs[] = {"x"};
    glt_design *t = sep_design(FX "sep.csv", "yc", xs, 1);
    for (size_t i = 0; i < t->d.n; i++)
        t->d.y[i] = 0;
    bh_glm_options o;
    glt_opts(&o, t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bh_fit *f = glt_fit(t, &o);
    const char *w = glt_warning(f, "every row");
    cr_assert_not_null(w);
    cr_expect(strstr(w, "the response is 0 in every row") != NULL, "%s", w);
    cr_expect(isfinite(f->stats.deviance));
    cr_expect_eq(f->stats.null_deviance, 0);
    bh_fit_free(f);
    glt_free(t);
}

/* A constant column is aliased with the intercept (R: NA), named. */
Test(glm_errors, constant_column)
{
    glt_case c = glt_load("mtcars_am");
    glt_design *t = glt_new(c.t->d.n, 4);
    memcpy(t->d.x, c.t->d.x, 3 * c.t->d.n * sizeof(double));
    memcpy(t->d.y, c.t->d.y, c.t->d.n * sizeof(double));
    for (size_t i = 0; i < t->d.n; i++)
        t->d.x[3 * t->d.n + i] = 2.5;
    glt_name(t, 0, "(Intercept)");
    glt_name(t, 1, "hp");
    glt_name(t, 2, "wt");
    glt_name(t, 3, "k");
    bh_glm_options o;
    glt_opts(&o, t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    bh_fit *f = glt_fit(t, &o);
    bh_fit *f0 = glt_case_fit(&c, 0);
    cr_expect_eq(f->rank, 3);
    cr_expect(f->aliased[3] && isnan(f->beta[3]) && isnan(f->vcov[15]));
    cr_expect_not_null(glt_warning(f, "not estimable (collinear): k"));
    for (size_t j = 0; j < 3; j++)
        bht_assert_rel(f->beta[j], f0->beta[j], 1e-12, "(%s)", f->term[j]);
    bh_fit_free(f);
    bh_fit_free(f0);
    glt_free(t);
    glt_free(c.t);
}

/* ---- errors, options, robustness ------------------------------------- */

Test(glm_errors, fractional_out_of_range)
{
    glt_case c = glt_load("frac_logit");
    c.t->d.y[6] = 1.25;
    bh_glm_options o;
    glt_opts(&o, c.t, BH_FAM_FRACTIONAL, BH_LINK_LOGIT);
    bh_fit *f = NULL;
    bh_error err;
    cr_expect_eq(bh_glm_fit(&c.t->d, &o, NULL, &f, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "row 7") && strstr(err.msg, "1.25"), "%s", err.msg);
    cr_expect_null(f);
    c.t->d.y[6] = -0.01;
    cr_expect_eq(bh_glm_fit(&c.t->d, &o, NULL, &f, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "row 7") && strstr(err.msg, "-0.01"), "%s", err.msg);
    glt_free(c.t);
}

Test(glm_errors, poisson_counts)
{
    glt_case c = glt_load("warp_pois");
    bh_glm_options o;
    glt_opts(&o, c.t, BH_FAM_POISSON, BH_LINK_LOG);
    bh_fit *f = NULL;
    bh_error err;
    c.t->d.y[3] = -2;
    cr_expect_eq(bh_glm_fit(&c.t->d, &o, NULL, &f, &err), BH_EDATA);
    cr_expect(strstr(err.msg, "row 4") && strstr(err.msg, "-2"), "%s", err.msg);
    c.t->d.y[3] = 20.5;
    f = glt_fit(c.t, &o);
    cr_expect_not_null(glt_warning(f, "non-integer counts"));
    cr_expect(isinf(f->stats.loglik) && f->stats.loglik < 0);
    bh_fit_free(f);
    glt_free(c.t);
}

Test(glm_errors, family_link_combinations)
{
    bh_error err;
    cr_expect_eq(bh_family_check_link(BH_FAM_POISSON, BH_LINK_LOGIT, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "poisson") && strstr(err.msg, "logit"), "%s", err.msg);
    cr_expect_eq(bh_family_check_link(BH_FAM_FRACTIONAL, BH_LINK_CLOGLOG, &err), BH_EUSAGE);
    cr_expect_eq(bh_family_check_link(BH_FAM_GAUSSIAN, BH_LINK_LOG, &err), BH_EUSAGE);
    cr_expect_eq(bh_family_check_link(BH_FAM_BINOMIAL, BH_LINK_CLOGLOG, &err), BH_OK);
    cr_expect_eq(bh_family_default_link(BH_FAM_POISSON), BH_LINK_LOG);
    bh_family f;
    bh_link l;
    cr_expect_eq(bh_family_parse("Binomial", &f, &err), BH_OK);
    cr_expect_eq(f, BH_FAM_BINOMIAL);
    cr_expect_eq(bh_family_parse("gamma", &f, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "gamma") != NULL);
    cr_expect_eq(bh_link_parse("probit", &l, &err), BH_OK);
    cr_expect_eq(l, BH_LINK_PROBIT);
    cr_expect_str_eq(bh_link_name(BH_LINK_CLOGLOG), "cloglog");

    glt_case c = glt_load("bw_probit");
    bh_glm_options o;
    glt_opts(&o, c.t, BH_FAM_BINOMIAL, BH_LINK_PROBIT);
    o.firth = 1;
    bh_fit *fit = NULL;
    cr_expect_eq(bh_glm_fit(&c.t->d, &o, NULL, &fit, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "Firth") && strstr(err.msg, "probit"), "%s", err.msg);
    glt_free(c.t);
}

Test(glm_errors, nonconvergence)
{
    glt_case c = glt_load("bw_cloglog");
    bh_glm_options o;
    glt_opts(&o, c.t, BH_FAM_BINOMIAL, BH_LINK_CLOGLOG);
    o.maxiter = 2;
    bh_fit *f = glt_fit(c.t, &o);
    cr_expect_eq(f->converged, 0);
    cr_expect_eq(f->iterations, 2);
    cr_expect_not_null(glt_warning(f, "did not converge in 2 iterations"));
    bh_fit_free(f);
    glt_free(c.t);
}

/* |eta| far beyond 700: R's clamps keep mu in (0, 1); the deviance and
 * everything derived stay finite. */
Test(glm_robust, extreme_eta)
{
    static const bh_link links[] = {BH_LINK_LOGIT, BH_LINK_PROBIT, BH_LINK_CLOGLOG};
    for (size_t k = 0; k < 3; k++) {
        const char *xs[] = {"x"};
        glt_design *t = sep_design(FX "sep.csv", "yq", xs, 1);
        for (size_t i = 0; i < t->d.n; i++)
            t->d.x[t->d.n + i] = (t->d.x[t->d.n + i] - 5) * 1e3;
        bh_glm_options o;
        glt_opts(&o, t, BH_FAM_BINOMIAL, links[k]);
        double start[2] = {0, 1}; /* eta up to 5000 */
        o.start = start;
        bh_fit *f = glt_fit(t, &o);
        cr_expect(isfinite(f->stats.deviance), "%s deviance %g", bh_link_name(links[k]),
                  f->stats.deviance);
        cr_expect(isfinite(f->stats.loglik));
        for (size_t i = 0; i < t->d.n; i++)
            cr_expect(f->fitted[i] > 0 && f->fitted[i] < 1);
        bh_fit_free(f);
        glt_free(t);
    }
    for (double e = -1000; e <= 1000; e += 250) {
        for (int l = BH_LINK_LOGIT; l <= BH_LINK_CLOGLOG; l++) {
            double m = bh_link_inv((bh_link)l, e);
            cr_expect(m > 0 && m < 1, "link %d eta %g mu %g", l, e, m);
            cr_expect(isfinite(bh_link_mu_eta((bh_link)l, e)));
            cr_expect(isfinite(bh_link_mu_eta2((bh_link)l, e)));
            cr_expect(isfinite(bh_link_mu_eta3((bh_link)l, e)));
        }
    }
}

/* Derivatives of the inverse links against central differences. */
Test(glm_links, derivatives)
{
    static const bh_link links[] = {BH_LINK_LOGIT, BH_LINK_PROBIT,
                                    BH_LINK_CLOGLOG, BH_LINK_LOG};
    const double etas[] = {-3, -0.7, 0.2, 1.9};
    for (size_t k = 0; k < 4; k++)
        for (size_t e = 0; e < 4; e++) {
            double x = etas[e], h = 1e-4;
            bh_link l = links[k];
            double d1 = (bh_link_inv(l, x + h) - bh_link_inv(l, x - h)) / (2 * h);
            double d2 = (bh_link_mu_eta(l, x + h) - bh_link_mu_eta(l, x - h)) / (2 * h);
            double d3 = (bh_link_mu_eta2(l, x + h) - bh_link_mu_eta2(l, x - h)) / (2 * h);
            bht_assert_rel(bh_link_mu_eta(l, x), d1, 1e-6, "(%s)", bh_link_name(l));
            bht_assert_rel(bh_link_mu_eta2(l, x), d2, 1e-6, "(%s)", bh_link_name(l));
            bht_assert_rel(bh_link_mu_eta3(l, x), d3, 1e-6, "(%s)", bh_link_name(l));
            bht_assert_rel(bh_link_fun(l, bh_link_inv(l, x)), x, 1e-12, "(%s)",
                           bh_link_name(l));
        }
}

/* The steps driven by hand give the driver's fit; the trace sees every
 * iteration; one workspace serves several fits. */
typedef struct {
    size_t calls, last;
    double dev;
} glt_trace;

static void glt_tracefn(void *ctx, size_t iter, double dev, double rel, unsigned h)
{
    glt_trace *t = ctx;
    (void)rel;
    (void)h;
    t->calls++;
    t->last = iter;
    t->dev = dev;
}

Test(glm_api, steps_trace_workspace)
{
    glt_case c = glt_load("bw_logit");
    bh_glm_options o;
    glt_opts(&o, c.t, BH_FAM_BINOMIAL, BH_LINK_LOGIT);
    glt_trace tr = {0, 0, 0};
    o.trace = glt_tracefn;
    o.trace_ctx = &tr;
    bh_glm_workspace *ws = bh_glm_workspace_alloc(c.t->d.n, c.t->d.p);
    bh_error err;
    cr_assert_eq(bh_glm_init(ws, &c.t->d, &o, &err), BH_OK, "%s", err.msg);
    while (!bh_glm_test(ws))
        cr_assert_eq(bh_glm_iterate(ws, &err), BH_OK, "%s", err.msg);
    bh_fit *a = NULL, *b = NULL;
    cr_assert_eq(bh_glm_result(ws, &a, &err), BH_OK);
    cr_expect_eq(tr.calls, a->iterations);
    cr_expect_eq(tr.dev, a->stats.deviance);
    cr_assert_eq(bh_glm_fit(&c.t->d, &o, ws, &b, &err), BH_OK);
    for (size_t j = 0; j < a->p; j++)
        cr_expect_eq(a->beta[j], b->beta[j]);
    bh_fit_free(a);
    bh_fit_free(b);
    /* A workspace too small is a usage error. */
    bh_glm_workspace *small = bh_glm_workspace_alloc(10, 2);
    cr_expect_eq(bh_glm_fit(&c.t->d, &o, small, &b, &err), BH_EUSAGE);
    bh_glm_workspace_free(small);
    bh_glm_workspace_free(ws);
    glt_free(c.t);
}
