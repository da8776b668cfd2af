/* handdesign.c - see handdesign.h. */
#include "handdesign.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/lm.h"
#include "testutil.h"

bht_design *bht_design_new(size_t n, size_t p)
{
    bht_design *t = calloc(1, sizeof *t);
    t->d.n = n;
    t->d.p = p;
    t->d.m = 1;
    t->d.x = calloc((n * p) > 0 ? n * p : 1, sizeof(double));
    t->d.y = calloc(n ? n : 1, sizeof(double));
    t->names = calloc(p ? p : 1, sizeof(char *));
    return t;
}


void bht_design_free(bht_design *t)
{
    if (!t)
        return;
    for (size_t j = 0; j < t->d.p; j++)
        free(t->names[j]);
    free(t->names);
    free(t->d.x);
    free(t->d.y);
    free(t->d.w);
    free(t->d.offset);
    if (t->d.cluster) {
        free(t->d.cluster->code);
        free(t->d.cluster->name);
        free(t->d.cluster);
    }
    free(t);
}


void bht_design_name(bht_design *t, size_t j, const char *s)
{
    free(t->names[j]);
    t->names[j] = strdup(s);
}


bh_fit *bht_lm_fit(bht_design *t, double tol)
{
    bh_lm_options opt;
    bh_lm_default_options(&opt);
    if (tol > 0)
        opt.tol = tol;
    opt.colnames = (const char *const *)t->names;
    bh_fit *fit = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status st = bh_lm_fit(&t->d, &opt, NULL, &fit, &err);
    cr_assert_eq(st, BH_OK, "bh_lm_fit: %s", err.msg);
    return fit;
}


/* Build the design of case `name` from lm_cases.csv and its data file;
 * clustered by the case's cluster column (codes by first appearance). */
bht_design *bht_rcase_design(const char *name)
{
    bht_fixture *cs = bht_fixture_read("tests/fixtures/lm/lm_cases.csv");
    size_t row = SIZE_MAX;
    for (size_t i = 0; i < cs->nrow; i++)
        if (strcmp(bht_fixture_str(cs, i, "case"), name) == 0)
            row = i;
    cr_assert_neq(row, SIZE_MAX, "no case %s in lm_cases.csv", name);
    char path[256], xs[256];
    snprintf(path, sizeof path, "tests/fixtures/lm/%s.csv", bht_fixture_str(cs, row, "data"));
    bht_fixture *fx = bht_fixture_read(path);
    snprintf(xs, sizeof xs, "%s", bht_fixture_str(cs, row, "x"));
    int icpt = (int)bht_fixture_num(cs, row, "intercept");
    const char *wname = bht_fixture_str(cs, row, "weights");
    const char *cname = bht_fixture_str(cs, row, "cluster");
    const char *xv[16];
    size_t nx = 0;
    for (char *tok = strtok(xs, " "); tok && nx < 16; tok = strtok(NULL, " "))
        xv[nx++] = tok;
    size_t n = fx->nrow, p = nx + (icpt ? 1 : 0), j0 = icpt ? 1 : 0;
    bht_design *t = bht_design_new(n, p);
    if (icpt)
        bht_design_name(t, 0, "(Intercept)");
    for (size_t k = 0; k < nx; k++)
        bht_design_name(t, j0 + k, xv[k]);
    const char *yname = bht_fixture_str(cs, row, "y");
    if (wname[0]) {
        t->d.w = calloc(n, sizeof(double));
        if (strcmp(bht_fixture_str(cs, row, "weight_kind"), "frequency") == 0)
            t->d.weight_kind = BH_WEIGHTS_FREQUENCY;
    }
    t->d.cluster = calloc(1, sizeof *t->d.cluster);
    t->d.cluster->name = strdup(cname);
    t->d.cluster->code = calloc(n, sizeof(size_t));
    double *seen = calloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        t->d.y[i] = bht_fixture_num(fx, i, yname);
        if (icpt)
            t->d.x[i] = 1.0;
        for (size_t k = 0; k < nx; k++)
            t->d.x[(j0 + k) * n + i] = bht_fixture_num(fx, i, xv[k]);
        if (wname[0])
            t->d.w[i] = bht_fixture_num(fx, i, wname);
        double cv = bht_fixture_num(fx, i, cname);
        size_t g = 0;
        while (g < t->d.cluster->ngroups && seen[g] != cv)
            g++;
        if (g == t->d.cluster->ngroups)
            seen[t->d.cluster->ngroups++] = cv;
        t->d.cluster->code[i] = g;
    }
    free(seen);
    bht_fixture_free(fx);
    bht_fixture_free(cs);
    return t;
}

