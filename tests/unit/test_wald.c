/* test_wald.c - linear hypotheses and Wald tests against R (see
 * tests/fixtures/r/wald.R for the exact computation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blackhole/csvread.h"
#include "blackhole/design.h"
#include "blackhole/formula.h"
#include "blackhole/lm.h"
#include "blackhole/vcov.h"
#include "blackhole/wald.h"
#include "testutil.h"

typedef struct {
    bh_frame *data;
    bh_design *d;
    bh_fit *fit;
} model;

static void fit_mtcars(model *m, const char *vcov)
{
    bh_error err;
    bh_csv_options o;
    bh_csv_default_options(&o);
    /* the fixture starts with '#' provenance lines: strip them for the reader */
    /* one file per test process: the suites run in parallel */
    char tmp[64], cmd[256];
    snprintf(tmp, sizeof tmp, "/tmp/bht_mtcars_wald_%ld.csv", (long)getpid());
    snprintf(cmd, sizeof cmd, "grep -v '^#' tests/fixtures/lm/mtcars.csv > %s", tmp);
    cr_assert_eq(bht_run(cmd, NULL, NULL), 0);
    cr_assert_eq(bh_csv_read_path(tmp, &o, &m->data, &err), BH_OK, "%s", err.msg);
    unlink(tmp);
    bh_formula *f;
    cr_assert_eq(bh_formula_parse("mpg ~ hp + wt + qsec + am", &f, &err), BH_OK);
    bh_design_options dopt;
    bh_design_default_options(&dopt);
    bh_vcov_spec vs;
    cr_assert_eq(bh_vcov_parse(vcov, &vs, &err), BH_OK);
    if (vs.kind == BH_VCOV_CLUSTER)
        dopt.cluster = vs.cluster;
    cr_assert_eq(bh_design_build(f, m->data, &dopt, &m->d, &err), BH_OK, "%s", err.msg);
    bh_formula_free(f);
    cr_assert_eq(bh_lm_fit(m->d, NULL, NULL, &m->fit, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_vcov_compute(m->fit, &vs, &err), BH_OK, "%s", err.msg);
}

static void free_model(model *m)
{
    bh_fit_free(m->fit);
    bh_design_free(m->d);
    bh_frame_free(m->data);
}

static const char *hyp[4] = {"hp = 0, wt = 0", "wt - qsec = 0", "2*hp + am = 1", NULL};

Test(wald, matches_r_for_every_vcov)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/wald/wald.csv");
    const char *vc[3] = {"classical", "hc1", "cluster:cyl"};
    const char *vn[3] = {"classical", "hc1", "cluster"};
    for (int v = 0; v < 3; v++) {
        model m;
        fit_mtcars(&m, vc[v]);
        for (size_t i = 0; i < fx->nrow; i++) {
            if (strcmp(bht_fixture_str(fx, i, "vcov"), vn[v]) != 0)
                continue;
            int h = atoi(bht_fixture_str(fx, i, "hyp"));
            bh_wald_result w;
            bh_error err;
            bh_status st;
            if (hyp[h - 1]) {
                bh_hypothesis H;
                cr_assert_eq(bh_hypothesis_parse(hyp[h - 1], m.fit, &H, &err), BH_OK, "%s", err.msg);
                cr_assert_eq(H.q, (size_t)bht_fixture_num(fx, i, "q"));
                st = bh_wald_test(m.fit, &H, &w, &err);
                bh_hypothesis_free(&H);
            } else
                st = bh_wald_overall(m.fit, &w, &err);
            double Fref = bht_fixture_num(fx, i, "F");
            if (isnan(Fref)) {
                cr_assert_eq(st, BH_ENUMERIC, "singular case must be refused");
                cr_assert(strstr(err.msg, "singular"));
                continue;
            }
            cr_assert_eq(st, BH_OK, "%s", err.msg);
            bht_assert_rel(w.f, Fref, 1e-9, "%s hyp %d", vn[v], h);
            bht_assert_rel(w.df2, bht_fixture_num(fx, i, "df2"), 0);
            bht_assert_rel(w.p_value, bht_fixture_num(fx, i, "p_value"), 1e-8, "%s hyp %d", vn[v], h);
        }
        /* the fit's overall F follows the chosen covariance */
        if (v == 1) {
            bht_assert_rel(m.fit->stats.fstat, 36.998251837434005, 1e-9);
        }
        if (v == 2)
            cr_assert(isnan(m.fit->stats.fstat), "3 clusters cannot test 4 restrictions");
        free_model(&m);
    }
    bht_fixture_free(fx);
}

Test(wald, parse_errors_name_the_problem)
{
    model m;
    fit_mtcars(&m, "classical");
    bh_hypothesis H;
    bh_error err;
    cr_assert_eq(bh_hypothesis_parse("wtt = 0", m.fit, &H, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "'wtt'") && strstr(err.msg, "did you mean 'wt'"), "%s", err.msg);
    cr_assert_eq(bh_hypothesis_parse("hp = 0,", m.fit, &H, &err), BH_EUSAGE);
    cr_assert_eq(bh_hypothesis_parse("hp hp = 0", m.fit, &H, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "hypothesis:1:4"), "%s", err.msg);
    cr_assert_eq(bh_hypothesis_parse("3 = 0", m.fit, &H, &err), BH_EUSAGE);
    /* "(Intercept)" is a name like any other; "= 0" may be omitted */
    cr_assert_eq(bh_hypothesis_parse("(Intercept)", m.fit, &H, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(H.q, 1);
    cr_assert_eq(H.L[0], 1.0);
    bh_hypothesis_free(&H);
    free_model(&m);
}

/* The overall test with a workspace kept across fits (simulations) gives
 * the results of the plain call bit for bit, R's numbers included, and the
 * covariance's workspace gives the fit's robust F the same way. */
Test(wald, overall_with_workspace_equals_plain)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/wald/wald.csv");
    const char *vc[3] = {"classical", "hc1", "cluster:cyl"};
    const char *vn[3] = {"classical", "hc1", "cluster"};
    bh_wald_workspace *ws = bh_wald_workspace_alloc();
    cr_assert_not_null(ws);
    for (int rep = 0; rep < 2; rep++)
        for (int v = 0; v < 3; v++) {
            model m;
            fit_mtcars(&m, vc[v]);
            bh_wald_result a, b;
            bh_error ea, eb;
            bh_status sa = bh_wald_overall(m.fit, &a, &ea);
            bh_status sb = bh_wald_overall_ws(m.fit, ws, &b, &eb);
            cr_assert_eq(sa, sb, "%s", vn[v]);
            if (sa != BH_OK) {
                cr_assert_str_eq(ea.msg, eb.msg);
                free_model(&m);
                continue;
            }
            cr_assert(!memcmp(&a, &b, sizeof a), "%s: results differ", vn[v]);
            for (size_t i = 0; i < fx->nrow; i++)
                if (!strcmp(bht_fixture_str(fx, i, "vcov"), vn[v]) &&
                    atoi(bht_fixture_str(fx, i, "hyp")) == 4)
                    bht_assert_rel(b.f, bht_fixture_num(fx, i, "F"), 1e-9, "%s", vn[v]);
            /* the robust F of the covariance with a kept workspace */
            if (v == 1) {
                bh_vcov_workspace *vws = bh_vcov_workspace_alloc();
                bh_vcov_spec vs;
                cr_assert_eq(bh_vcov_parse("hc1", &vs, &ea), BH_OK);
                bh_fit_stats before = m.fit->stats;
                cr_assert_eq(bh_vcov_compute_ws(m.fit, &vs, vws, &ea), BH_OK, "%s", ea.msg);
                cr_assert(!memcmp(&before, &m.fit->stats, sizeof before));
                cr_assert_eq(bh_vcov_compute_ws(m.fit, &vs, vws, &ea), BH_OK, "%s", ea.msg);
                cr_assert(!memcmp(&before, &m.fit->stats, sizeof before));
                bh_vcov_workspace_free(vws);
            }
            free_model(&m);
        }
    bh_wald_workspace_free(ws);
    bht_fixture_free(fx);
}
