/* test_generate.c - the data-generating process (generate.h).
 *
 * Statistical checks compare sample statistics of generated data with
 * values derived from the spec's stated assumptions by known distribution
 * formulas (gamma and negative binomial means with log-scale firm shifts,
 * the mean of a Dirichlet component, Cronbach's alpha of parallel items
 * with Sheppard's 1/12 rounding variance), with tolerances of a few
 * standard errors.  The expected values come from the spec (the
 * assumptions), not from the generator's output, so this is not testing
 * the code against itself.  Structural checks (sizes, shares summing to
 * one at the written precision, reproducibility) need no reference. */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/generate.h"
#include "blackhole/study.h"
#include "testutil.h"

#define SPEC "analysis/sabnis2013.ini"

static bh_study *load(void)
{
    bh_study *s = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_study_read(SPEC, &s, &err), BH_OK, "%s", err.msg);
    return s;
}

static void gen(const bh_study *s, uint64_t seed, uint64_t index, size_t n, double scale,
                bh_frame **reps, bh_frame **leads)
{
    bh_generate_options o;
    bh_generate_default_options(&o);
    o.seed = seed;
    o.seed_set = 1;
    o.index = index;
    o.n_reps = n;
    o.effect_scale = scale;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_generate(s, &o, reps, leads, &err), BH_OK, "%s", err.msg);
}

static const double *num(const bh_frame *f, const char *name)
{
    const bh_column *c = bh_frame_col(f, name);
    cr_assert_not_null(c, "no column %s", name);
    cr_assert_eq(c->type, BH_COL_NUMERIC, "%s", name);
    return c->num;
}

static const bh_dgp_node *node(const bh_study *s, const char *name)
{
    for (size_t k = 0; k < s->dgp.nnodes; k++)
        if (strcmp(s->dgp.nodes[k].name, name) == 0)
            return &s->dgp.nodes[k];
    cr_assert_fail("no dgp node %s", name);
    return NULL;
}

/* 1 when frames have the same columns and values (bitwise). */
static int frames_equal(const bh_frame *a, const bh_frame *b)
{
    if (a->nrow != b->nrow || a->ncol != b->ncol)
        return 0;
    for (size_t j = 0; j < a->ncol; j++) {
        const bh_column *x = &a->cols[j], *y = &b->cols[j];
        if (strcmp(x->name, y->name) || x->type != y->type)
            return 0;
        if (x->type == BH_COL_NUMERIC) {
            if (memcmp(x->na, y->na, a->nrow))
                return 0;
            for (size_t i = 0; i < a->nrow; i++)
                if (!x->na[i] && x->num[i] != y->num[i])
                    return 0;
        } else {
            if (x->nlevels != y->nlevels || memcmp(x->code, y->code, a->nrow * sizeof(int)))
                return 0;
            for (size_t l = 0; l < x->nlevels; l++)
                if (strcmp(x->levels[l], y->levels[l]))
                    return 0;
        }
    }
    return 1;
}

static void mean_sd(const double *x, const unsigned char *na, size_t n, double *m, double *sd,
                    size_t *used)
{
    double s = 0, ss = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!na || !na[i]) {
            s += x[i];
            k++;
        }
    *m = s / (double)k;
    for (size_t i = 0; i < n; i++)
        if (!na || !na[i])
            ss += (x[i] - *m) * (x[i] - *m);
    *sd = sqrt(ss / (double)(k - 1));
    if (used)
        *used = k;
}

Test(generate, sizes_and_columns)
{
    bh_study *s = load();
    bh_frame *r = NULL, *l = NULL;
    gen(s, 20130101, 0, 0, 1, &r, &l);
    cr_assert_eq(r->nrow, 461);
    const bh_column *firm = bh_frame_col(r, "firm");
    cr_assert_eq(firm->nlevels, 4);
    const char *cols[] = {"rep_id", "firm", "experience", "performance", "lead_volume",
                          "prequal1", "prequal2", "prequal3", "tracking1", "tracking2",
                          "tracking3", "share_marketing", "share_self", "share_other"};
    cr_assert_eq(r->ncol, sizeof cols / sizeof cols[0]);
    for (size_t k = 0; k < r->ncol; k++)
        cr_assert_str_eq(r->cols[k].name, cols[k]);
    /* one lead row per marketing lead of the month */
    const double *lv = num(r, "lead_volume");
    double tot = 0;
    for (size_t i = 0; i < r->nrow; i++)
        tot += lv[i];
    cr_assert_eq((double)l->nrow, tot);
    cr_assert_str_eq(l->cols[0].name, "lead_id");
    cr_assert_not_null(bh_frame_col(l, "followed_up"));
    cr_assert_not_null(bh_frame_col(l, "quality"));
    cr_assert_not_null(bh_frame_col(l, "tracking"));
    bh_frame_free(r);
    bh_frame_free(l);
    gen(s, 1, 0, 100, 1, &r, &l);
    cr_assert_eq(r->nrow, 100);
    bh_frame_free(r);
    bh_frame_free(l);
    bh_study_free(s);
}

Test(generate, reproducible_and_index_matters)
{
    bh_study *s = load();
    bh_frame *r1, *l1, *r2, *l2, *r3, *l3;
    gen(s, 7, 3, 0, 1, &r1, &l1);
    gen(s, 7, 3, 0, 1, &r2, &l2);
    gen(s, 7, 4, 0, 1, &r3, &l3);
    cr_assert(frames_equal(r1, r2));
    cr_assert(frames_equal(l1, l2));
    cr_assert(!frames_equal(r1, r3));
    /* a reused workspace gives the same data as a fresh one */
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    bh_generate_options o;
    bh_generate_default_options(&o);
    o.seed = 7;
    o.seed_set = 1;
    o.index = 4;
    bh_frame *a, *b;
    bh_error err;
    o.n_reps = 900;  /* grow the buffers first */
    cr_assert_eq(bh_generate_ws(w, &o, &a, &b, &err), BH_OK, "%s", err.msg);
    bh_frame_free(a);
    bh_frame_free(b);
    o.n_reps = 0;
    cr_assert_eq(bh_generate_ws(w, &o, &a, &b, &err), BH_OK, "%s", err.msg);
    cr_assert(frames_equal(a, r3));
    cr_assert(frames_equal(b, l3));
    bh_frame_free(a);
    bh_frame_free(b);
    bh_generate_workspace_free(w);
    bh_frame *fr[] = {r1, l1, r2, l2, r3, l3};
    for (size_t k = 0; k < 6; k++)
        bh_frame_free(fr[k]);
    bh_study_free(s);
}

/* Each DGP node draws from its own substream: leaving the lead level out
 * (leads == NULL, as simulate does for unit-level models) gives exactly the
 * same unit-level data, also in a reused workspace. */
Test(generate, unit_level_independent_of_lead_level)
{
    bh_study *s = load();
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    bh_generate_options o;
    bh_generate_default_options(&o);
    o.seed = 11;
    o.seed_set = 1;
    bh_error err;
    for (uint64_t idx = 0; idx < 3; idx++) {
        o.index = idx;
        bh_frame *a, *la, *b;
        cr_assert_eq(bh_generate_ws(w, &o, &a, &la, &err), BH_OK, "%s", err.msg);
        cr_assert_not_null(la);
        cr_assert_eq(bh_generate_ws(w, &o, &b, NULL, &err), BH_OK, "%s", err.msg);
        cr_assert(frames_equal(a, b), "index %llu", (unsigned long long)idx);
        /* the id and group columns are built without sorting: the same
         * levels and codes as the frame's own categorical constructor gives */
        for (int lv = 0; lv < 2; lv++) {
            const bh_frame *f = lv ? la : a;
            for (size_t j = 0; j < f->ncol; j++) {
                const bh_column *c = &f->cols[j];
                if (c->type != BH_COL_CATEGORICAL)
                    continue;
                const char **txt = malloc(f->nrow * sizeof *txt);
                for (size_t i = 0; i < f->nrow; i++)
                    txt[i] = c->levels[c->code[i]];
                bh_frame *g = bh_frame_new(NULL, f->nrow);
                cr_assert_eq(bh_frame_add_categorical(g, c->name, txt, &err), BH_OK);
                const bh_column *d = &g->cols[0];
                cr_assert_eq(d->nlevels, c->nlevels);
                cr_assert(memcmp(d->code, c->code, f->nrow * sizeof(int)) == 0, "%s codes",
                          c->name);
                for (size_t l = 0; l < d->nlevels; l++)
                    cr_assert_str_eq(d->levels[l], c->levels[l]);
                bh_frame_free(g);
                free(txt);
            }
        }
        bh_frame_free(a);
        bh_frame_free(la);
        bh_frame_free(b);
    }
    bh_generate_workspace_free(w);
    bh_study_free(s);
}

Test(generate, shares_sum_to_one_and_lie_inside)
{
    bh_study *s = load();
    bh_frame *r, *l;
    gen(s, 20130101, 0, 5000, 1, &r, &l);
    const double *m = num(r, "share_marketing"), *se = num(r, "share_self"),
                 *o = num(r, "share_other");
    for (size_t i = 0; i < r->nrow; i++) {
        /* written with 4 decimals: whole units of 1e-4 summing to 10000 */
        long long u = llround(m[i] * 1e4) + llround(se[i] * 1e4) + llround(o[i] * 1e4);
        cr_assert_eq(u, 10000, "row %zu: %g + %g + %g", i, m[i], se[i], o[i]);
        cr_assert(m[i] > 0 && m[i] < 1 && se[i] > 0 && se[i] < 1 && o[i] > 0 && o[i] < 1);
        cr_assert(fabs(m[i] * 1e4 - (double)llround(m[i] * 1e4)) < 1e-8, "%.17g", m[i]);
    }
    bh_frame_free(r);
    bh_frame_free(l);
    bh_study_free(s);
}

/* Expected means of the unit-level variables from the [dgp] assumptions. */
Test(generate, unit_means_match_assumptions)
{
    bh_study *s = load();
    bh_frame *r, *l;
    size_t n = 20000;
    gen(s, 99, 0, n, 1, &r, &l);
    const double *p = s->dgp.probs;
    const bh_dgp_node *ex = node(s, "experience"), *lv = node(s, "lead_volume"),
                      *pf = node(s, "performance");
    /* log-mean shifts: E = mean * sum_g p_g exp(shift_g) */
    double e_ex = 0, e_lv = 0, e_pf = pf->mean;
    for (size_t g = 0; g < s->dgp.nlevels; g++) {
        e_ex += p[g] * ex->mean * exp(ex->effects[0].group[g]);
        e_lv += p[g] * lv->mean * exp(lv->effects[0].group[g]);
        e_pf += p[g] * pf->effects[0].group[g];
    }
    struct {
        const char *col;
        double want;
    } c[] = {{"experience", e_ex}, {"lead_volume", e_lv}, {"performance", e_pf}};
    for (size_t k = 0; k < 3; k++) {
        const bh_column *col = bh_frame_col(r, c[k].col);
        double m, sd;
        size_t used;
        mean_sd(col->num, col->na, n, &m, &sd, &used);
        double se = sd / sqrt((double)used);
        cr_assert(fabs(m - c[k].want) < 4 * se, "%s: mean %g, assumed %g (SE %g)", c[k].col, m,
                  c[k].want, se);
    }
    /* negative binomial variance within firm: mu + mu^2/size; overall adds
     * the variance of the firm means */
    double v = 0, mu2 = 0;
    for (size_t g = 0; g < s->dgp.nlevels; g++) {
        double mg = lv->mean * exp(lv->effects[0].group[g]);
        v += p[g] * (mg + mg * mg / lv->size);
        mu2 += p[g] * mg * mg;
    }
    v += mu2 - e_lv * e_lv;
    double m, sd;
    mean_sd(num(r, "lead_volume"), NULL, n, &m, &sd, NULL);
    bht_assert_rel(sd * sd, v, 0.05, "lead_volume variance");
    /* firm shares */
    const bh_column *firm = bh_frame_col(r, "firm");
    for (size_t g = 0; g < s->dgp.nlevels; g++) {
        size_t cnt = 0;
        long lev = -1;
        for (size_t q = 0; q < firm->nlevels; q++)
            if (strcmp(firm->levels[q], s->dgp.levels[g]) == 0)
                lev = (long)q;
        for (size_t i = 0; i < n; i++)
            cnt += firm->code[i] == lev;
        double ph = (double)cnt / (double)n, se = sqrt(p[g] * (1 - p[g]) / (double)n);
        cr_assert(fabs(ph - p[g]) < 4 * se, "firm %s: %g vs %g", s->dgp.levels[g], ph, p[g]);
    }
    /* missing performance: rate as assumed */
    size_t miss = 0;
    for (size_t i = 0; i < n; i++)
        miss += bh_frame_col(r, "performance")->na[i];
    double q = pf->missing;
    cr_assert(fabs((double)miss / (double)n - q) < 4 * sqrt(q * (1 - q) / (double)n));
    bh_frame_free(r);
    bh_frame_free(l);
    bh_study_free(s);
}

/* With every effect scaled to 0, E[share_j] = sum_g p_g softmax(eta_g)_j
 * (the mean of a Dirichlet component is alpha_j / sum alpha). */
Test(generate, share_mean_without_effects)
{
    bh_study *s = load();
    bh_frame *r, *l;
    size_t n = 20000;
    gen(s, 5, 0, n, 0, &r, &l);
    const bh_dgp_node *d = node(s, "shares");
    double want = 0;
    for (size_t g = 0; g < s->dgp.nlevels; g++) {
        double e[3], den = 0;
        for (size_t j = 0; j < 3; j++) {
            e[j] = j == d->reference ? 0
                                     : d->effects[j].intercept +
                                           (d->effects[j].group ? d->effects[j].group[g] : 0);
            den += exp(e[j]);
        }
        want += s->dgp.probs[g] * exp(e[0]) / den;
    }
    double m, sd;
    mean_sd(num(r, "share_marketing"), NULL, n, &m, &sd, NULL);
    cr_assert(fabs(m - want) < 4 * sd / sqrt((double)n), "mean %g, want %g", m, want);
    bh_frame_free(r);
    bh_frame_free(l);
    bh_study_free(s);
}

static double cronbach(const bh_frame *f, const char *const *items, size_t k)
{
    size_t n = f->nrow, used = 0;
    double *tot = calloc(n, sizeof *tot);
    unsigned char *ok = calloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        ok[i] = 1;
        for (size_t j = 0; j < k; j++)
            ok[i] &= !bh_frame_col(f, items[j])->na[i];
        used += ok[i];
    }
    double sumvar = 0;
    for (size_t j = 0; j < k; j++) {
        const double *x = bh_frame_col(f, items[j])->num;
        double m = 0, ss = 0;
        for (size_t i = 0; i < n; i++)
            if (ok[i]) {
                m += x[i];
                tot[i] += x[i];
            }
        m /= (double)used;
        for (size_t i = 0; i < n; i++)
            if (ok[i])
                ss += (x[i] - m) * (x[i] - m);
        sumvar += ss / (double)(used - 1);
    }
    double m = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        if (ok[i])
            m += tot[i];
    m /= (double)used;
    for (size_t i = 0; i < n; i++)
        if (ok[i])
            ss += (tot[i] - m) * (tot[i] - m);
    free(tot);
    free(ok);
    double kk = (double)k;
    return kk / (kk - 1) * (1 - sumvar / (ss / (double)(used - 1)));
}

/* Alpha of the items vs. the value implied by loading and noise, with the
 * latent variance 1 + variance of the firm shifts and the rounding
 * variance 1/12 added to the noise (Sheppard's correction). */
static double expected_alpha(const bh_study *s, const bh_dgp_node *x)
{
    double m = 0, m2 = 0;
    for (size_t g = 0; g < s->dgp.nlevels; g++) {
        double sh = x->effects && x->effects[0].group ? x->effects[0].group[g] : 0;
        m += s->dgp.probs[g] * sh;
        m2 += s->dgp.probs[g] * sh * sh;
    }
    bh_dgp_node y = *x;
    y.noise_sd = sqrt(x->noise_sd * x->noise_sd + 1.0 / 12);
    return bh_generate_expected_alpha(&y, 1 + m2 - m * m);
}

Test(generate, cronbach_alpha_near_target)
{
    bh_study *s = load();
    const char *pq[] = {"prequal1", "prequal2", "prequal3"};
    const char *tr[] = {"tracking1", "tracking2", "tracking3"};
    /* the shipped data set */
    bh_frame *r, *l;
    gen(s, 20130101, 0, 0, 1, &r, &l);
    double a1 = cronbach(r, pq, 3), a2 = cronbach(r, tr, 3);
    cr_assert(a1 > 0.7 && a1 < 0.9, "prequal alpha %g", a1);
    cr_assert(a2 > 0.7 && a2 < 0.9, "tracking alpha %g", a2);
    bh_frame_free(r);
    bh_frame_free(l);
    /* a large sample: close to the formula (clamping at 1 and 7 lowers it
     * slightly, hence 0.02) */
    gen(s, 11, 0, 20000, 1, &r, &l);
    double w1 = expected_alpha(s, node(s, "prequal")), w2 = expected_alpha(s, node(s, "tracking"));
    cr_assert(w1 > 0.78 && w1 < 0.84, "assumed alpha %g", w1);
    cr_assert(fabs(cronbach(r, pq, 3) - w1) < 0.02, "%g vs %g", cronbach(r, pq, 3), w1);
    cr_assert(fabs(cronbach(r, tr, 3) - w2) < 0.02, "%g vs %g", cronbach(r, tr, 3), w2);
    bh_frame_free(r);
    bh_frame_free(l);
    bh_study_free(s);
}

Test(generate, follow_up_rate_near_30_percent)
{
    bh_study *s = load();
    uint64_t seeds[] = {20130101, 2, 3};
    for (size_t k = 0; k < 3; k++) {
        bh_frame *r, *l;
        gen(s, seeds[k], 0, 0, 1, &r, &l);
        const double *y = num(l, "followed_up");
        double m = 0;
        for (size_t i = 0; i < l->nrow; i++) {
            cr_assert(y[i] == 0 || y[i] == 1);
            m += y[i];
        }
        m /= (double)l->nrow;
        cr_assert(m > 0.25 && m < 0.35, "seed %llu: follow-up rate %g",
                  (unsigned long long)seeds[k], m);
        /* quality is a 1-7 rating */
        const double *q = num(l, "quality");
        for (size_t i = 0; i < l->nrow; i++)
            cr_assert(q[i] >= 1 && q[i] <= 7 && q[i] == floor(q[i]));
        bh_frame_free(r);
        bh_frame_free(l);
    }
    bh_study_free(s);
}

Test(generate, codebook_covers_every_column)
{
    bh_study *s = load();
    bh_frame *r, *l, *cb;
    bh_error err;
    gen(s, 1, 0, 50, 1, &r, &l);
    cr_assert_eq(bh_generate_codebook(s, &cb, &err), BH_OK, "%s", err.msg);
    const char *hdr[] = {"column", "label", "unit", "type", "construct", "source"};
    cr_assert_eq(cb->ncol, 6);
    for (size_t k = 0; k < 6; k++)
        cr_assert_str_eq(cb->cols[k].name, hdr[k]);
    const bh_column *col = bh_frame_col(cb, "column");
    const bh_frame *fs[2] = {r, l};
    for (size_t f = 0; f < 2; f++)
        for (size_t j = 0; j < fs[f]->ncol; j++) {
            int found = 0;
            for (size_t i = 0; i < cb->nrow && !found; i++)
                found = strcmp(col->levels[col->code[i]], fs[f]->cols[j].name) == 0;
            cr_assert(found, "codebook lacks %s", fs[f]->cols[j].name);
        }
    bh_frame_free(cb);
    bh_frame_free(r);
    bh_frame_free(l);
    bh_study_free(s);
}

Test(generate, spec_without_dgp)
{
    bh_study *s = NULL;
    bh_error err;
    cr_assert_eq(bh_study_read_string("[study]\nname = t\nreps = r.csv\nseed = 1\n", "t.ini", &s,
                                      &err),
                 BH_OK);
    bh_frame *r, *l;
    bh_generate_options o;
    bh_generate_default_options(&o);
    cr_assert_eq(bh_generate(s, &o, &r, &l, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "no [dgp]") != NULL, "%s", err.msg);
    cr_assert_eq(bh_generate_ncol(s, BH_LEVEL_REPS), 0);
    cr_assert_eq(bh_generate_ncol(s, BH_LEVEL_LEADS), 0);
    bh_study_free(s);
}

/* The generated columns come first, as many as the shipped files have
 * (datasets/reps.csv: 14 columns, leads.csv: 10) at any n. */
Test(generate, ncol_counts_generated_columns)
{
    bh_study *s = load();
    cr_assert_eq(bh_generate_ncol(s, BH_LEVEL_REPS), 14);
    cr_assert_eq(bh_generate_ncol(s, BH_LEVEL_LEADS), 10);
    const size_t ns[] = {0, 5, 300};
    for (size_t k = 0; k < 3; k++) {
        bh_frame *r, *l;
        gen(s, 3, k, ns[k], 1, &r, &l);
        cr_assert_eq(r->ncol, bh_generate_ncol(s, BH_LEVEL_REPS));
        cr_assert_eq(l->ncol, bh_generate_ncol(s, BH_LEVEL_LEADS));
        bh_frame_free(r);
        bh_frame_free(l);
    }
    bh_study_free(s);
}

/* keep_appended: a frame refilled in place keeps the caller's columns
 * (and their memory) after the generated ones, which equal a fresh
 * frame's; without it they are dropped; a frame built anew has none. */
Test(generate, reuse_keeps_appended_columns)
{
    bh_study *s = load();
    bh_generate_workspace *w = bh_generate_workspace_alloc(s);
    cr_assert_not_null(w);
    size_t ng = bh_generate_ncol(s, BH_LEVEL_REPS);
    bh_generate_options o;
    bh_generate_default_options(&o);
    cr_assert_eq(o.keep_appended, 0);
    o.seed = 5;
    o.seed_set = 1;
    o.n_reps = 200;
    o.keep_appended = 1;
    bh_error err;
    bh_frame *r = NULL;
    cr_assert_eq(bh_generate_ws_reuse(w, &o, &r, NULL, &err), BH_OK, "%s", err.msg);
    double *v = calloc(200, sizeof *v);
    v[7] = 42;
    cr_assert_eq(bh_frame_add_numeric(r, "mine", v, NULL, &err), BH_OK, "%s", err.msg);
    free(v);
    const double *mem = r->cols[ng].num;
    o.index = 1;
    cr_assert_eq(bh_generate_ws_reuse(w, &o, &r, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(r->ncol, ng + 1);
    cr_assert_str_eq(r->cols[ng].name, "mine");
    cr_assert_eq(r->cols[ng].num, mem);
    cr_assert_eq(r->cols[ng].num[7], 42, "values untouched");
    bh_frame *fresh, *fl;
    gen(s, 5, 1, 200, 1, &fresh, &fl);
    bh_frame_drop_columns(r, ng);
    cr_assert(frames_equal(r, fresh));
    bh_frame_free(fresh);
    bh_frame_free(fl);
    /* without keep_appended: dropped */
    cr_assert_eq(bh_frame_add_numeric(r, "mine", r->cols[2].num, NULL, &err), BH_OK);
    o.keep_appended = 0;
    cr_assert_eq(bh_generate_ws_reuse(w, &o, &r, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(r->ncol, ng);
    /* another n: built anew, only the generated columns */
    cr_assert_eq(bh_frame_add_numeric(r, "mine", r->cols[2].num, NULL, &err), BH_OK);
    o.keep_appended = 1;
    o.n_reps = 150;
    cr_assert_eq(bh_generate_ws_reuse(w, &o, &r, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(r->nrow, 150);
    cr_assert_eq(r->ncol, ng);
    bh_frame_free(r);
    bh_generate_workspace_free(w);
    bh_study_free(s);
}

/* bh_generate_round is C's round() (C11 7.12.9.6: halfway cases away from
 * zero, whatever the rounding mode), bit for bit, -0.0 included: checked
 * against libm's round on every half k + 1/2 with |k| < 2^21 and both its
 * neighbours (the values where a rounding shortcut goes wrong), on every
 * multiple of 1/64 below 2^12 in magnitude (the range of drawn scale
 * items, values x 10 and shares x 10^4), on 2^22 doubles of random bit
 * patterns (all exponents), on edge values, and under the other rounding
 * modes. */
static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_round(double x)
{
    double want = round(x), got = bh_generate_round(x);
    if (isnan(want))
        cr_assert(isnan(got), "round(%a)", x);
    else
        cr_assert(same_bits(got, want), "round(%a): got %a want %a", x, got, want);
}

Test(generate, round_is_c_round)
{
    for (int32_t k = -(1 << 21); k < (1 << 21); k++) {
        double h = (double)k + 0.5;
        check_round(h);
        check_round(nextafter(h, HUGE_VAL));
        check_round(nextafter(h, -HUGE_VAL));
    }
    for (int32_t k = -(1 << 18); k <= (1 << 18); k++)
        check_round((double)k / 64);
    uint64_t st = 0x243f6a8885a308d3ULL;  /* any fixed start */
    for (int k = 0; k < (1 << 22); k++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t bits = st ^ (st >> 29);
        double x;
        memcpy(&x, &bits, sizeof x);
        check_round(x);
    }
    const double edge[] = {0.0, -0.0, 0.5, -0.5, 0.49999999999999994, -0.49999999999999994,
                           1.5, 2.5, -2.5, 0x1.0p52, 0x1.0p52 - 0.5, -(0x1.0p52 - 0.5),
                           0x1.0p52 + 1, 0x1.0p53, 0x1.0p51 + 0.5, DBL_MIN, -DBL_MIN,
                           DBL_TRUE_MIN, DBL_MAX, -DBL_MAX, HUGE_VAL, -HUGE_VAL, NAN};
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++)
        check_round(edge[k]);
    const int modes[] = {FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
    for (int m = 0; m < 3; m++) {
        cr_assert_eq(fesetround(modes[m]), 0);
        for (int32_t k = -1000; k < 1000; k++) {
            double h = (double)k + 0.5;
            check_round(h);
            check_round(nextafter(h, HUGE_VAL));
            check_round(nextafter(h, -HUGE_VAL));
            check_round((double)k / 7);
        }
        for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++)
            check_round(edge[k]);
        fesetround(FE_TONEAREST);
    }
}
