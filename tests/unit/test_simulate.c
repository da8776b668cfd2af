/* test_simulate.c - the Monte Carlo engine (simulate.h): summaries against
 * values computed by hand, reproducibility across thread counts, resume,
 * shards + merge, failure counting, and the rejection rate under the null.
 *
 * Runs use the shipped spec analysis/sabnis2013.ini with the fast OLS
 * model (or the fractional logit) and a small pseudo-truth data set. */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    bht_rmtree(dir);
    free(dir);
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
    bht_rmtree(a);
    bht_rmtree(b);
    free(a);
    free(b);
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
    bht_rmtree(a);
    bht_rmtree(b);
    free(a);
    free(b);
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
    bht_rmtree(a);
    free(a);
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
    bht_rmtree(a);
    free(a);
    bh_study_free(s);
}

/* Effect scale 0: every slope is 0 (firm shifts remain), so the two-sided
 * rejection rate of the unreported F9 term is alpha = 5% and a directional
 * finding's is alpha/2 = 2.5%; 200 replications, within 3 Monte Carlo SEs
 * (sqrt(.05 * .95 / 200) = .0154; sqrt(.025 * .975 / 200) = .011). */
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
        cr_assert(fabs(w->power - a0) <= 3 * se, "%s: rejection rate %g, expected %g +- %g",
                  w->term, w->power, a0, 3 * se);
        cr_assert_eq(w->ok, 1000);
    }
    cr_assert_eq(nf, 9, "the nine rep-level findings apply to the OLS model of share_marketing");
    bh_simulate_result_free(r);
    bht_rmtree(a);
    free(a);
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
