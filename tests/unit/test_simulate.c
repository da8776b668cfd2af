/* test_simulate.c - the Monte Carlo engine (simulate.h): summaries against
 * values computed by hand, reproducibility across thread counts, resume,
 * shards + merge, failure counting, and the rejection rate under the null.
 *
 * Runs use the shipped spec analysis/sabnis2013.ini with the fast OLS
 * model (or the fractional logit) and a small pseudo-truth data set. */
#include <gsl/gsl_errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/describe.h"
#include "blackhole/generate.h"
#include "blackhole/model.h"
#include "blackhole/replicate.h"
#include "blackhole/simulate.h"
#include "blackhole/study.h"
#include "testutil.h"

void bht_rmtree(const char *dir);

#define SPEC "analysis/sabnis2013.ini"

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void assert_same_file(const char *a, const char *b, const char *name)
{
    char *pa = path_in(a, name), *pb = path_in(b, name);
    char *ta = bht_slurp(pa), *tb = bht_slurp(pb);
    cr_assert_not_null(ta, "%s missing", pa);
    cr_assert_not_null(tb, "%s missing", pb);
    cr_assert(strcmp(ta, tb) == 0, "%s differs between %s and %s", name, a, b);
    free(ta);
    free(tb);
    free(pa);
    free(pb);
}

static const char *const FILES[] = {"simulate.cfg", "truth.csv", "replications.csv",
                                    "summary.csv", "power.csv", "sampling.csv"};

static void assert_same_dirs(const char *a, const char *b)
{
    for (size_t k = 0; k < sizeof FILES / sizeof FILES[0]; k++)
        assert_same_file(a, b, FILES[k]);
}

static bh_study *spec(void)
{
    gsl_set_error_handler_off();
    bh_study *s = NULL;
    bh_error err;
    cr_assert_eq(bh_study_read(SPEC, &s, &err), BH_OK, "%s", err.msg);
    return s;
}

static const char *OLS[] = {"ols"};
static const size_t TWO_N[] = {60, 120};

static void small_opts(bh_simulate_options *o, size_t reps, size_t threads)
{
    bh_simulate_default_options(o);
    o->reps = reps;
    o->n = TWO_N;
    o->nn = 2;
    o->models = OLS;
    o->nmodels = 1;
    o->threads = threads;
    o->truth_n = 2000;
}

static bh_simulate_result *run(const bh_study *s, const bh_simulate_options *o, const char *dir)
{
    bh_simulate_result *r = NULL;
    bh_error err;
    cr_assert_eq(bh_simulate_run(s, SPEC, o, dir, &r, &err), BH_OK, "%s", err.msg);
    return r;
}

static const bh_simulate_row *row_of(const bh_simulate_result *r, const char *term)
{
    for (size_t k = 0; k < r->nrows; k++)
        if (strcmp(r->rows[k].term, term) == 0)
            return &r->rows[k];
    cr_assert_fail("no summary row for %s", term);
    return NULL;
}

/* tests/fixtures/simulate/hand: estimates in replication order 0, 1, 2
 * (replication 3 failed):
 *   x (true 2, sign +): 1, 2, 3; SE .5, 1, 1; CIs [.02,1.98] [.04,3.96]
 *     [1.04,4.96]; p .04 .046 .003.  mean 2, bias 0, rel. bias 0, SD
 *     sqrt((1 + 0 + 1)/2) = 1, mean SE 2.5/3, RMSE sqrt(2/3), coverage 2/3
 *     (1.98 < 2), MC SE sqrt((2/3)(1/3)/3) = sqrt(2/27), power 1 (all p <
 *     .05 and positive), 3 ok, 1 failed.
 *   y (true -.3, sign -): .5, -.5, -.1; SE .1 .15 .15; p .001 .01 .3.
 *     mean -1/30, bias -1/30 + .3 = 4/15, rel. bias (4/15)/.3 = 8/9, SD
 *     sqrt(((16/30)^2 + (14/30)^2 + (2/30)^2)/2) = sqrt(228)/30, mean SE
 *     .4/3, RMSE sqrt((.64 + .04 + .04)/3) = sqrt(.24), coverage 2/3,
 *     power 1/3 (p = .001 has the wrong sign).
 *   z (true 0, no finding: two-sided): -.5, .1, .3; SE .2 .2 .25; p .01 .8
 *     .2.  mean -1/30, SD sqrt(312/900/2) = sqrt(156)/30, mean SE .65/3,
 *     RMSE sqrt(.35/3), relative bias NA, coverage 2/3, power 1/3. */

/* Remove a temporary directory and free its path. */
static void drop_dir(char *dir)
{
    bht_rmtree(dir);
    free(dir);
}

Test(simulate, hand_summary)
{
    char *dir = bht_tmpdir();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/simulate/hand/* %s/", dir);
    cr_assert_eq(system(cmd), 0);
    bh_simulate_result *r = NULL;
    bh_error err;
    cr_assert_eq(bh_simulate_finish(dir, &r, &err), BH_OK, "%s", err.msg);
    cr_assert(r->complete);
    cr_assert_eq(r->nrows, 3);
    const bh_simulate_row *x = row_of(r, "x"), *y = row_of(r, "y"), *z = row_of(r, "z");
    cr_assert_eq(x->reps, 4);
    cr_assert_eq(x->ok, 3);
    cr_assert_eq(x->failed, 1);
    cr_assert_str_eq(x->finding, "F");
    cr_assert(x->key && y->key && !z->key);
    double t = 1e-9;
    bht_assert_rel(x->mean, 2, t);
    bht_assert_rel(x->bias, 0, t);
    bht_assert_rel(x->rel_bias, 0, t);
    bht_assert_rel(x->emp_sd, 1, t);
    bht_assert_rel(x->mean_se, 2.5 / 3, t);
    bht_assert_rel(x->rmse, sqrt(2.0 / 3), t);
    bht_assert_rel(x->coverage, 2.0 / 3, t);
    bht_assert_rel(x->coverage_se, sqrt(2.0 / 27), t);
    bht_assert_rel(x->power, 1, t);
    bht_assert_rel(x->power_se, 0, t);
    bht_assert_rel(y->mean, -1.0 / 30, t);
    bht_assert_rel(y->bias, 4.0 / 15, t);
    bht_assert_rel(y->rel_bias, 8.0 / 9, t);
    bht_assert_rel(y->emp_sd, sqrt(228.0) / 30, t);
    bht_assert_rel(y->mean_se, 0.4 / 3, t);
    bht_assert_rel(y->rmse, sqrt(0.24), t);
    bht_assert_rel(y->coverage, 2.0 / 3, t);
    bht_assert_rel(y->power, 1.0 / 3, t);
    bht_assert_rel(y->power_se, sqrt(2.0 / 27), t);
    bht_assert_rel(z->mean, -1.0 / 30, t);
    bht_assert_rel(z->emp_sd, sqrt(156.0) / 30, t);
    bht_assert_rel(z->mean_se, 0.65 / 3, t);
    bht_assert_rel(z->rmse, sqrt(0.35 / 3), t);
    cr_assert(isnan(z->rel_bias));
    bht_assert_rel(z->coverage, 2.0 / 3, t);
    bht_assert_rel(z->power, 1.0 / 3, t);
    /* the file was sorted by replication; plot inputs have the contract's columns */
    char *p = path_in(dir, "replications.csv");
    char *text = bht_slurp(p);
    cr_assert(strstr(text, "\n0,10,1,0,m,,x,1,") != NULL);
    cr_assert(strstr(text, "\n0,10,1,0,m,,x,1,") < strstr(text, "\n1,10,1,1,m,,x,2,"));
    cr_assert(strstr(text, "\n1,10,1,1,") < strstr(text, "\n2,10,1,2,"));
    free(text);
    free(p);
    p = path_in(dir, "power.csv");
    text = bht_slurp(p);
    cr_assert(strncmp(text, "n,power,power_se,effect_scale,model,term,alpha\n10,1,0,1,m,x,0.05\n",
                      64) == 0, "%s", text);
    free(text);
    free(p);
    p = path_in(dir, "sampling.csv");
    text = bht_slurp(p);
    cr_assert(strncmp(text, "replication,n,term,estimate,true,model\n0,10,x,1,2,m\n0,10,y,0.5,-0.3,m\n",
                      70) == 0, "%s", text);
    free(text);
    free(p);
    bh_simulate_result_free(r);
    drop_dir(dir);
}

Test(simulate, threads_give_identical_files)
{
    bh_study *s = spec();
    char *a = bht_tmpdir(), *b = bht_tmpdir();
    bh_simulate_options o;
    small_opts(&o, 6, 1);
    bh_simulate_result *r1 = run(s, &o, a);
    o.threads = 2;
    bh_simulate_result *r2 = run(s, &o, b);
    cr_assert(r1->complete && r2->complete);
    cr_assert_eq(r1->done, 12);
    assert_same_dirs(a, b);
    bh_simulate_result_free(r1);
    bh_simulate_result_free(r2);
    drop_dir(a);
    drop_dir(b);
    bh_study_free(s);
}

Test(simulate, resume_equals_uninterrupted)
{
    bh_study *s = spec();
    char *a = bht_tmpdir(), *b = bht_tmpdir();
    bh_simulate_options o;
    small_opts(&o, 5, 2);
    bh_simulate_result *r1 = run(s, &o, a);
    o.stop_after = 3;
    bh_simulate_result *r2 = run(s, &o, b);
    cr_assert(!r2->complete);
    cr_assert(r2->done >= 3 && r2->done < 10, "done %zu", r2->done);
    /* a killed run leaves a partial block: resume drops it */
    char *p = path_in(b, "replications.csv");
    FILE *f = fopen(p, "a");
    fputs("7,120,1,2,ols,,(Intercept),0.1", f);
    fclose(f);
    free(p);
    o.stop_after = 0;
    o.resume = 1;
    bh_simulate_result *r3 = run(s, &o, b);
    cr_assert(r3->complete);
    cr_assert_eq(r3->ran, 10 - r2->done);
    assert_same_dirs(a, b);
    bh_simulate_result_free(r1);
    bh_simulate_result_free(r2);
    bh_simulate_result_free(r3);
    drop_dir(a);
    drop_dir(b);
    bh_study_free(s);
}

Test(simulate, resume_refuses_another_design)
{
    bh_study *s = spec();
    char *a = bht_tmpdir();
    bh_simulate_options o;
    small_opts(&o, 2, 1);
    bh_simulate_result_free(run(s, &o, a));
    o.reps = 3;
    o.resume = 1;
    bh_simulate_result *r = NULL;
    bh_error err;
    cr_assert_eq(bh_simulate_run(s, SPEC, &o, a, &r, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "--resume") != NULL, "%s", err.msg);
    drop_dir(a);
    bh_study_free(s);
}

Test(simulate, shards_merge_to_single_run)
{
    bh_study *s = spec();
    char *a = bht_tmpdir(), *s1 = bht_tmpdir(), *s2 = bht_tmpdir(), *s3 = bht_tmpdir(),
         *m = bht_tmpdir();
    bh_simulate_options o;
    small_opts(&o, 4, 2);
    bh_simulate_result_free(run(s, &o, a));
    const char *dirs[3] = {s1, s2, s3};
    o.nshards = 3;
    for (size_t k = 0; k < 3; k++) {
        o.shard = k;
        bh_simulate_result *r = run(s, &o, dirs[2 - k]);
        cr_assert(r->complete);
        cr_assert_eq(r->nrows, 0, "a shard writes no summary");
        bh_simulate_result_free(r);
    }
    bh_simulate_result *r = NULL;
    bh_error err;
    /* a missing shard is reported */
    cr_assert_eq(bh_simulate_merge(dirs, 2, m, &r, &err), BH_EINPUT);
    cr_assert(strstr(err.msg, "missing") != NULL, "%s", err.msg);
    cr_assert_eq(bh_simulate_merge(dirs, 3, m, &r, &err), BH_OK, "%s", err.msg);
    assert_same_dirs(a, m);
    bh_simulate_result_free(r);
    const char *cleanup[5] = {a, s1, s2, s3, m};
    for (int k = 0; k < 5; k++) {
        bht_rmtree(cleanup[k]);
        free((char *)cleanup[k]);
    }
    bh_study_free(s);
}

/* n = 12 units for a model with 19 coefficients: every fit fails (too few
 * rows or aliased terms); the batch completes and counts them. */
Test(simulate, failures_are_counted)
{
    bh_study *s = spec();
    char *a = bht_tmpdir();
    bh_simulate_options o;
    static const size_t tiny[] = {12};
    small_opts(&o, 3, 2);
    o.n = tiny;
    o.nn = 1;
    bh_simulate_result *r = run(s, &o, a);
    cr_assert(r->complete);
    cr_assert_gt(r->nrows, 0);
    size_t failed = 0;
    for (size_t k = 0; k < r->nrows; k++)
        failed += r->rows[k].failed;
    cr_assert_gt(failed, 0, "some coefficient must be unestimable at n = 12");
    bh_simulate_result_free(r);
    drop_dir(a);
    bh_study_free(s);
}

/* Effect scale 0: every slope is 0 (firm shifts remain), so the two-sided
 * rejection rate of the unreported F9 term is near alpha = 5% and a
 * directional finding's near alpha/2 = 2.5%.  Near, not at: HC0/HC1
 * standard errors are biased down in samples of a few hundred, so their
 * tests over-reject (Long & Ervin, "Using heteroscedasticity consistent
 * standard errors in the linear regression model", The American
 * Statistician 54(3), 2000: HC1 sizes well above nominal at n <= 250).
 * The band allows that: at least the nominal rate minus 3 Monte Carlo SEs,
 * at most 1.5 times it plus 3 SEs (SE = sqrt(a (1 - a) / 1000)).  (A run
 * of 10,000 replications of this design gave 0.025-0.036 for the
 * directional findings and 0.064 for F9, inside it.) */
Test(simulate, null_rejection_rate, .timeout = 240)
{
    /* 1,000 replications: with 200, one of the nine terms fell outside
     * 3 Monte Carlo SEs by chance (0.07 against 0.025; 0.030 in 3,000). */
    bh_study *s = spec();
    char *a = bht_tmpdir();
    bh_simulate_options o;
    static const size_t n200[] = {200};
    static const double zero[] = {0};
    small_opts(&o, 1000, 0);
    o.n = n200;
    o.nn = 1;
    o.scales = zero;
    o.nscales = 1;
    bh_simulate_result *r = run(s, &o, a);
    cr_assert(r->complete);
    size_t nf = 0;
    for (size_t k = 0; k < r->nrows; k++) {
        const bh_simulate_row *w = &r->rows[k];
        if (!*w->finding)
            continue;
        nf++;
        double a0 = w->sign ? 0.025 : 0.05, se = sqrt(a0 * (1 - a0) / 1000);
        cr_assert(w->power >= a0 - 3 * se && w->power <= 1.5 * a0 + 3 * se,
                  "%s: rejection rate %g, expected in [%g, %g]", w->term, w->power,
                  a0 - 3 * se, 1.5 * a0 + 3 * se);
        cr_assert_eq(w->ok, 1000);
    }
    cr_assert_eq(nf, 9, "the nine rep-level findings apply to the OLS model of share_marketing");
    bh_simulate_result_free(r);
    drop_dir(a);
    bh_study_free(s);
}

Test(simulate, bad_options)
{
    bh_study *s = spec();
    bh_simulate_options o;
    bh_simulate_plan *p = NULL;
    bh_error err;
    static const char *bad[] = {"nosuch"};
    small_opts(&o, 2, 1);
    o.models = bad;
    cr_assert_eq(bh_simulate_plan_new(s, SPEC, &o, &p, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "nosuch") && strstr(err.msg, "dirichlet_full"), "%s", err.msg);
    small_opts(&o, 0, 1);
    cr_assert_eq(bh_simulate_plan_new(s, SPEC, &o, &p, &err), BH_EUSAGE);
    small_opts(&o, 2, 1);
    o.nshards = 2;
    o.shard = 2;
    cr_assert_eq(bh_simulate_plan_new(s, SPEC, &o, &p, &err), BH_EUSAGE);
    cr_assert_null(p);
    bh_study_free(s);
}

/* ---- reusable workspaces (issue 8): the hot loop gives the numbers of
 * the plain calls, bit for bit.  The reference is the library's own
 * one-shot path (bh_generate, bh_model_fit), whose numbers the tests above
 * and test_glm.c check against R: these tests check that reuse changes
 * nothing, not the estimates themselves. */

/* Data as simulate prepares it: spec names, scale composites scored. */
static void ready(const bh_study *s, bh_frame *f, int level)
{
    bh_error err;
    for (size_t k = 0; k < s->ncolumns; k++) {
        const bh_study_colmap *m = &s->columns[k];
        long j = bh_frame_index(f, m->column);
        if (strcmp(m->spec_name, m->column) != 0 && j >= 0 &&
            bh_frame_index(f, m->spec_name) < 0) {
            free(f->cols[j].name);
            f->cols[j].name = strdup(m->spec_name);
        }
    }
    for (size_t k = 0; k < s->nscales; k++)
        if ((int)s->scales[k].data == level && bh_frame_index(f, s->scales[k].name) < 0)
            cr_assert_eq(bh_scale_score(f, s->scales[k].name,
                                        (const char *const *)s->scales[k].items,
                                        s->scales[k].nitems, NULL, &err), BH_OK, "%s", err.msg);
}

static void gen_opts(bh_generate_options *go, size_t n, uint64_t index)
{
    bh_generate_default_options(go);
    go->n_reps = n;
    go->index = index;
}

static int same_bits(const double *a, const double *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static void assert_same_frame(const bh_frame *a, const bh_frame *b)
{
    cr_assert_eq(a->nrow, b->nrow);
    cr_assert_eq(a->ncol, b->ncol);
    for (size_t j = 0; j < a->ncol; j++) {
        const bh_column *x = &a->cols[j], *y = &b->cols[j];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->type, y->type, "%s", x->name);
        cr_assert(memcmp(x->na, y->na, a->nrow) == 0, "%s: missing masks differ", x->name);
        if (x->type == BH_COL_NUMERIC) {
            for (size_t i = 0; i < a->nrow; i++)
                cr_assert(x->na[i] ? isnan(y->num[i]) : memcmp(&x->num[i], &y->num[i],
                                                               sizeof(double)) == 0,
                          "%s row %zu: %.17g vs %.17g", x->name, i, x->num[i], y->num[i]);
        } else {
            cr_assert_eq(x->nlevels, y->nlevels, "%s", x->name);
            for (size_t l = 0; l < x->nlevels; l++)
                cr_assert_str_eq(x->levels[l], y->levels[l]);
            cr_assert(memcmp(x->code, y->code, a->nrow * sizeof *x->code) == 0, "%s", x->name);
        }
    }
}

/* Frames filled in place (reps, after ready(); NULL: not compared, and
 * leads) equal those bh_generate makes afresh with the same options. */
static void same_as_fresh(const bh_study *s, const bh_generate_options *go,
                          const bh_frame *reps, const bh_frame *leads)
{
    bh_frame *r2 = NULL, *l2 = NULL;
    bh_error err;
    cr_assert_eq(bh_generate(s, go, &r2, &l2, &err), BH_OK, "%s", err.msg);
    if (reps) {
        ready(s, r2, BH_LEVEL_REPS);
        assert_same_frame(reps, r2);
    }
    assert_same_frame(leads, l2);
    bh_frame_free(r2);
    bh_frame_free(l2);
}

/* Frames refilled in place (after the caller renamed and appended columns,
 * as simulate does) equal fresh ones, across sizes that grow and shrink. */
Test(simulate, generate_reuse_matches_fresh)
{
    bh_study *s = spec();
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    cr_assert_not_null(w);
    bh_frame *reps = NULL, *leads = NULL;
    const size_t ns[] = {461, 461, 60, 60, 1000, 461, 2};
    bh_error err;
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        bh_generate_options go;
        gen_opts(&go, ns[k], 100 + k);
        go.effect_scale = k % 2 ? 0.5 : 1;
        cr_assert_eq(bh_generate_ws_reuse(w, &go, &reps, &leads, &err), BH_OK, "%s", err.msg);
        ready(s, reps, BH_LEVEL_REPS);
        cr_assert_not_null(leads);
        same_as_fresh(s, &go, reps, leads);
    }
    bh_frame_free(reps);
    bh_frame_free(leads);
    bh_generate_workspace_free(w);
    bh_study_free(s);
}

/* The lead-level frame (its row count drawn) is refilled in place: after
 * a large data set, smaller ones reuse every column's memory (values,
 * codes, level strings), and the frames equal fresh ones. */
Test(simulate, generate_reuse_refills_leads_in_place)
{
    bh_study *s = spec();
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    cr_assert_not_null(w);
    bh_frame *reps = NULL, *leads = NULL;
    const size_t ns[] = {1000, 461, 461, 300, 461, 500};
    bh_error err;
    const bh_frame *first = NULL;
    const int *code0 = NULL;
    const char *lev0 = NULL;
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        bh_generate_options go;
        gen_opts(&go, ns[k], 300 + k);
        cr_assert_eq(bh_generate_ws_reuse(w, &go, &reps, &leads, &err), BH_OK, "%s", err.msg);
        cr_assert_not_null(leads);
        if (k == 0)
            first = leads;
        else if (k == 1) {
            /* the first refill gives the level strings their room */
            cr_assert_eq(leads, first, "the lead frame is refilled");
            code0 = leads->cols[0].code;
            lev0 = leads->cols[0].levels[0];
        } else {
            /* a thousand units draw more leads than the smaller data sets */
            cr_assert_eq(leads, first, "data set %zu: the lead frame is refilled", k);
            cr_assert_eq(leads->cols[0].code, code0, "data set %zu: codes in place", k);
            cr_assert_eq(leads->cols[0].levels[0], lev0, "data set %zu: ids in place", k);
        }
        same_as_fresh(s, &go, NULL, leads);
    }
    bh_frame_free(reps);
    bh_frame_free(leads);
    bh_generate_workspace_free(w);
    bh_study_free(s);
}

/* As simulate prepares refilled frames: the composites appended to the
 * previous data set are kept (keep_appended) and scored again into their
 * columns (bh_scale_score_into); those are the frames of the plain path,
 * and the composites keep their memory while n stays the same. */
Test(simulate, generate_reuse_keeps_composites)
{
    bh_study *s = spec();
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    cr_assert_not_null(w);
    size_t ng = bh_generate_ncol(s, BH_LEVEL_REPS);
    bh_frame *reps = NULL;
    const size_t ns[] = {461, 461, 461, 60, 60, 461};
    const double *mem = NULL;
    bh_error err;
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        bh_generate_options go;
        gen_opts(&go, ns[k], 200 + k);
        go.effect_scale = k % 2 ? 0.5 : 1;
        go.keep_appended = 1;
        cr_assert_eq(bh_generate_ws_reuse(w, &go, &reps, NULL, &err), BH_OK, "%s", err.msg);
        int kept = reps->ncol > ng;
        cr_assert_eq(kept, k > 0 && ns[k] == ns[k - 1], "data set %zu", k);
        for (size_t q = 0; q < s->nscales; q++) {
            const bh_study_scale *sc = &s->scales[q];
            if ((int)sc->data != BH_LEVEL_REPS)
                continue;
            long j = bh_frame_index(reps, sc->name);
            if (kept) {
                cr_assert(j >= (long)ng, "%s kept after the generated columns", sc->name);
                cr_assert_eq(bh_scale_score_into(reps, (size_t)j, (const char *const *)sc->items,
                                                 sc->nitems, &err), BH_OK, "%s", err.msg);
            }
        }
        if (kept)
            cr_assert_eq(reps->cols[ng].num, mem, "data set %zu: composite memory reused", k);
        ready(s, reps, BH_LEVEL_REPS);  /* renames; scores the composites of new frames */
        mem = reps->cols[ng].num;
        bh_frame *r2 = NULL;
        cr_assert_eq(bh_generate(s, &go, &r2, NULL, &err), BH_OK, "%s", err.msg);
        ready(s, r2, BH_LEVEL_REPS);
        assert_same_frame(reps, r2);
        bh_frame_free(r2);
    }
    bh_frame_free(reps);
    bh_generate_workspace_free(w);
    bh_study_free(s);
}

static void assert_same_fit(const bh_fit *a, const bh_fit *b, const char *what)
{
    cr_assert_eq(a->p, b->p, "%s", what);
    cr_assert_eq(a->converged, b->converged, "%s", what);
    cr_assert_eq(a->iterations, b->iterations, "%s", what);
    cr_assert_eq(a->nwarnings, b->nwarnings, "%s", what);
    cr_assert_eq(a->nobs, b->nobs, "%s", what);
    for (size_t j = 0; j < a->p; j++)
        cr_assert_str_eq(a->term[j], b->term[j], "%s", what);
    cr_assert(same_bits(a->beta, b->beta, a->p), "%s: estimates differ", what);
    cr_assert(same_bits(a->se, b->se, a->p), "%s: SEs differ", what);
    cr_assert(same_bits(a->p_value, b->p_value, a->p), "%s: p-values differ", what);
    cr_assert(same_bits(a->conf_low, b->conf_low, a->p), "%s: intervals differ", what);
    cr_assert(same_bits(a->conf_high, b->conf_high, a->p), "%s: intervals differ", what);
    cr_assert(same_bits(a->vcov, b->vcov, a->p * a->p), "%s: vcov differs", what);
}

/* One model workspace per model, reused over data sets of different n
 * (growing and shrinking the design, estimator and covariance buffers and
 * recycling each previous result): every fit equals a fresh bh_model_fit
 * bit for bit, for a GLM (fractional logit, HC0), the Dirichlet model,
 * least squares (HC1), a lead-level logit with clusters and the lead-level
 * mixed logit (random intercepts, with its random-effect result). */
Test(simulate, model_workspace_matches_fresh_fits, .timeout = 240)
{
    bh_study *s = spec();
    const char *names[] = {"fractional", "dirichlet_full", "ols", "followup_cluster",
                           "followup"};
    enum { NM = 5 };
    bh_model_spec sp[NM];
    char *formula[NM];
    bh_model_workspace *ws[NM];
    int level[NM];
    bh_error err;
    for (size_t m = 0; m < NM; m++) {
        long mi = bh_study_model_index(s, names[m]);
        cr_assert(mi >= 0, "%s", names[m]);
        cr_assert_eq(bh_study_model_spec(s, (size_t)mi, &sp[m], &formula[m], &err), BH_OK, "%s",
                     err.msg);
        sp[m].lean = 1;
        level[m] = s->models[mi].data;
        cr_assert_not_null(ws[m] = bh_model_workspace_alloc(&sp[m]));
    }
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    const size_t ns[] = {461, 80, 1000, 461, 30, 461};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        bh_generate_options go;
        gen_opts(&go, ns[k], 7 + k);
        bh_frame *data[2] = {NULL, NULL};
        cr_assert_eq(bh_generate_ws(w, &go, &data[0], &data[1], &err), BH_OK, "%s", err.msg);
        ready(s, data[0], BH_LEVEL_REPS);
        ready(s, data[1], BH_LEVEL_LEADS);
        for (size_t m = 0; m < NM; m++) {
            bh_model *fresh = NULL;
            const bh_model *re = NULL;
            bh_error e1, e2;
            bh_status s1 = bh_model_fit(data[level[m]], &sp[m], &fresh, &e1);
            bh_status s2 = bh_model_fit_ws(ws[m], data[level[m]], &re, &e2);
            cr_assert_eq(s1, s2, "%s n %zu", names[m], ns[k]);
            if (s1 != BH_OK) {
                cr_assert_str_eq(e1.msg, e2.msg);
                continue;
            }
            char what[64];
            snprintf(what, sizeof what, "%s at n = %zu", names[m], ns[k]);
            assert_same_fit(fresh->fit, re->fit, what);
            bht_assert_same_fit(fresh->fit, re->fit, what);
            cr_assert_eq(!fresh->re, !re->re, "%s", what);
            for (size_t g = 0; fresh->re && g < fresh->re->ngroupings; g++) {
                const bh_glmm_group *x = &fresh->re->g[g], *y = &re->re->g[g];
                cr_assert_str_eq(x->name, y->name);
                cr_assert_eq(x->ngroups, y->ngroups, "%s", what);
                for (size_t j = 0; j < x->ngroups; j++)
                    cr_assert_str_eq(x->labels[j], y->labels[j], "%s", what);
                cr_assert(same_bits(x->mode, y->mode, x->ngroups) &&
                          same_bits(x->cond_sd, y->cond_sd, x->ngroups) &&
                          same_bits(&x->sd, &y->sd, 1), "%s: random effects differ", what);
            }
            cr_assert_eq(fresh->design->n, re->design->n);
            cr_assert(same_bits(fresh->design->x, re->design->x,
                                fresh->design->n * fresh->design->p), "%s: X differs", what);
            bh_model_free(fresh);
        }
        bh_frame_free(data[0]);
        bh_frame_free(data[1]);
    }
    for (size_t m = 0; m < NM; m++) {
        bh_model_workspace_free(ws[m]);
        free(formula[m]);
    }
    bh_generate_workspace_free(w);
    bh_study_free(s);
}

/* A spec error is reported by every fit, with bh_model_fit's message; a
 * data error (unknown column) leaves the workspace usable. */
Test(simulate, model_workspace_errors)
{
    bh_model_spec sp;
    bh_model_spec_default(&sp);
    sp.formula = "y ~ x +";
    bh_model_workspace *ws = bh_model_workspace_alloc(&sp);
    cr_assert_not_null(ws);
    bh_frame *f = bh_frame_new("t.csv", 4);
    const double y[] = {1, 2, 4, 3}, x[] = {1, 2, 3, 4.5};
    bh_error err, e1, e2;
    cr_assert_eq(bh_frame_add_numeric(f, "y", y, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "x", x, NULL, &err), BH_OK);
    bh_model *m = NULL;
    const bh_model *mw = NULL;
    bh_status s1 = bh_model_fit(f, &sp, &m, &e1);
    cr_assert_neq(s1, BH_OK);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(bh_model_fit_ws(ws, f, &mw, &e2), s1);
        cr_assert_null(mw);
        cr_assert_str_eq(e1.msg, e2.msg);
    }
    bh_model_workspace_free(ws);

    sp.formula = "y ~ z";
    ws = bh_model_workspace_alloc(&sp);
    s1 = bh_model_fit(f, &sp, &m, &e1);
    cr_assert_eq(bh_model_fit_ws(ws, f, &mw, &e2), s1);
    cr_assert_str_eq(e1.msg, e2.msg);
    bh_model_workspace_free(ws);

    sp.formula = "y ~ x";
    ws = bh_model_workspace_alloc(&sp);
    cr_assert_eq(bh_model_fit(f, &sp, &m, &e1), BH_OK);
    cr_assert_eq(bh_model_fit_ws(ws, f, &mw, &e2), BH_OK, "%s", e2.msg);
    assert_same_fit(m->fit, mw->fit, "ols");
    bh_model_free(m);
    bh_model_workspace_free(ws);
    bh_frame_free(f);
}

/* The threaded driver computes the pseudo-true values inside its pool
 * (alongside the replications); the building blocks compute them first
 * (bh_simulate_prepare, as the MPI driver does).  Same files. */
Test(simulate, truth_in_pool_matches_prepare)
{
    bh_study *s = spec();
    char *a = bht_tmpdir(), *b = bht_tmpdir();
    bh_simulate_options o;
    small_opts(&o, 4, 2);
    static const char *MODELS[] = {"fractional", "ols"};
    static const double SCALES[] = {0.5, 1};
    o.models = MODELS;
    o.nmodels = 2;
    o.scales = SCALES;
    o.nscales = 2;
    bh_simulate_result *r1 = run(s, &o, a);
    cr_assert(r1->complete);

    bh_simulate_plan *p = NULL;
    unsigned char *done = NULL;
    bh_error err;
    cr_assert_eq(bh_simulate_plan_new(s, SPEC, &o, &p, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_simulate_prepare(p, b, &done, &err), BH_OK, "%s", err.msg);
    char *rp = path_in(b, "replications.csv");
    FILE *f = fopen(rp, "a");
    bh_simulate_worker *wk = bh_simulate_worker_alloc(p);
    cr_assert_not_null(wk);
    /* in reverse order: the finish step sorts */
    for (size_t w = bh_simulate_plan_size(p); w-- > 0;) {
        char *blk = NULL;
        size_t failed;
        cr_assert_eq(bh_simulate_run_one(wk, w, &blk, &failed, &err), BH_OK, "%s", err.msg);
        fputs(blk, f);
        free(blk);
    }
    fclose(f);
    bh_simulate_worker_free(wk);
    bh_simulate_result *r2 = NULL;
    cr_assert_eq(bh_simulate_finish(b, &r2, &err), BH_OK, "%s", err.msg);
    cr_assert(r2->complete);
    assert_same_dirs(a, b);
    free(rp);
    free(done);
    bh_simulate_plan_free(p);
    bh_simulate_result_free(r1);
    bh_simulate_result_free(r2);
    drop_dir(a);
    drop_dir(b);
    bh_study_free(s);
}

/* A run killed before it created replications.csv (while the pseudo-true
 * values were computed) resumes into the files of an uninterrupted run. */
Test(simulate, resume_without_replications_file)
{
    bh_study *s = spec();
    char *a = bht_tmpdir(), *b = bht_tmpdir();
    bh_simulate_options o;
    small_opts(&o, 3, 2);
    bh_simulate_result *r1 = run(s, &o, a);
    bh_simulate_result *r2 = run(s, &o, b);
    const char *gone[] = {"replications.csv", "truth.csv", "summary.csv", "power.csv",
                          "sampling.csv"};
    for (size_t k = 0; k < 5; k++) {
        char *p = path_in(b, gone[k]);
        remove(p);
        free(p);
    }
    o.resume = 1;
    bh_simulate_result *r3 = run(s, &o, b);
    cr_assert(r3->complete);
    assert_same_dirs(a, b);
    bh_simulate_result_free(r1);
    bh_simulate_result_free(r2);
    bh_simulate_result_free(r3);
    drop_dir(a);
    drop_dir(b);
    bh_study_free(s);
}

/* ---- replications.csv numbers: the integer "%.17g" against glibc's ---- */

static void check_g17(double v)
{
    char want[64], got[64];
    int k = snprintf(want, sizeof want, "%.17g", v);
    size_t L = bh_simulate_fmt_g17(v, got);
    cr_assert(L == (size_t)k && strcmp(got, want) == 0,
              "%%.17g of %a: got '%s' (%zu), glibc '%s'", v, got, L, want);
}

/* splitmix64: a reproducible stream of bit patterns */
static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

Test(simulate, g17_matches_printf_special_cases)
{
    const double fixed[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1.5, 2.5, 1e-5, 1e-4, 9.9999e-5,
                            1e16, 1e17, 9.999999999999999e16, 99999999999999984.0, 1e22,
                            DBL_MAX, -DBL_MAX, DBL_MIN, 4.9406564584124654e-324,
                            2.2250738585072009e-308, 0.30000000000000004, 1.0 / 3.0,
                            123456789012345678.0, 0.000123456789, 5e-324, 1e-300, 1e-11,
                            1.0000000000000002, 0.99999999999999989, 9007199254740993.0,
                            INFINITY, -INFINITY, NAN};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        check_g17(fixed[k]);
    /* powers of ten and their neighbours: where the exponent estimate and
     * the rounding to a new power (9.99...e-5 -> 0.0001) are decided */
    for (int e = -324; e <= 308; e++) {
        double p = pow(10.0, e);
        double v = p;
        for (int j = 0; j < 4; j++)
            v = nextafter(v, 0);
        for (int j = 0; j < 9; j++, v = nextafter(v, INFINITY)) {
            check_g17(v);
            check_g17(-v);
        }
    }
    /* exact ties at the 17th digit: integers 10^16 .. 10^17 with a final
     * 5 below the 17 digits are doubles only above 2^53; halves of odd
     * integers near 2^53 are ties for the rounding of short numbers */
    for (uint64_t m = 1; m < 4000; m++) {
        check_g17((double)m + 0.5);
        check_g17(((double)(UINT64_C(1) << 53) - (double)m) / 2);
        check_g17(ldexp((double)m, -60));
        check_g17((double)(UINT64_C(10000000000000000) + 10 * m + 5));
    }
}

Test(simulate, g17_matches_printf_random, .timeout = 120)
{
    uint64_t st = 20130101;
    /* every bit pattern class: 2 million raw patterns (subnormals, huge,
     * tiny), 2 million log-uniform values in the range of estimates, SEs
     * and p-values (1e-30 .. 1e6); a hundredth under valgrind (make
     * valgrind), which runs this ~50x slower */
    const long N = getenv("BH_VALGRIND") ? 20000 : 2000000;
    for (long k = 0; k < N; k++) {
        uint64_t b = sm64(&st);
        double v;
        memcpy(&v, &b, sizeof v);
        check_g17(v);
    }
    for (long k = 0; k < N; k++) {
        double u = (double)(sm64(&st) >> 11) / 9007199254740992.0;
        double v = pow(10.0, -30 + 36 * u);
        check_g17(k % 2 ? v : -v);
    }
}
