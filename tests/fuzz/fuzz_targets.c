/* fuzz_targets.c - one input through the library, as the program would run
 * it (see fuzz_targets.h).  Besides "no crash", each target checks cheap
 * invariants that would otherwise let a wrong result pass silently: a
 * failure always carries a message, a frame's columns are consistent, a
 * frame written out reads back with the same shape, a fit's arrays hold
 * what fit.h promises. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/csvread.h"
#include "blackhole/design.h"
#include "blackhole/fit.h"
#include "blackhole/formula.h"
#include "blackhole/frame.h"
#include "blackhole/lm.h"
#include "blackhole/output.h"
#include "blackhole/table.h"
#include "blackhole/vcov.h"
#include "fuzz_targets.h"

/* BH_FUZZ_VERBOSE=1 explains which check failed (for triage). */
static int why(const char *check, const char *detail)
{
    if (getenv("BH_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz check failed: %s (%s)\n", check, detail ? detail : "");
    return 1;
}

/* An invariant check returns 0 (fails) at this line. */
#define FAIL_CHECK()                                                           \
    do {                                                                       \
        char line_[32];                                                        \
        snprintf(line_, sizeof line_, "line %d", __LINE__);                    \
        why(__func__, line_);                                                  \
        return 0;                                                              \
    } while (0)

/* Record a failed check: bad = 1, with the reason when verbose. */
#define CHECK(bad, cond) ((cond) ? 0 : ((bad) = why(#cond, NULL)))

/* A failed call must say why (the CLI prints err.msg as the only hint). */
static int failed_properly(bh_status s, const bh_error *err)
{
    if (getenv("BH_FUZZ_VERBOSE"))
        fprintf(stderr, "status %d: %s\n", (int)s, err->msg);
    return s != BH_OK && err->status == s && err->msg[0] != '\0';
}

static int frame_consistent(const bh_frame *f)
{
    for (size_t j = 0; j < f->ncol; j++) {
        const bh_column *c = &f->cols[j];
        if (c->n != f->nrow || !c->name || !c->name[0])
            FAIL_CHECK();
        for (size_t k = 0; k < j; k++)
            if (strcmp(f->cols[k].name, c->name) == 0)
                FAIL_CHECK();
        if (c->type == BH_COL_NUMERIC) {
            if (f->nrow && !c->num)
                FAIL_CHECK();
            for (size_t i = 0; i < f->nrow; i++)
                if (c->na[i] ? !isnan(c->num[i]) : !isfinite(c->num[i]))
                    FAIL_CHECK();
        } else {
            for (size_t i = 0; i < f->nrow; i++) {
                int code = c->code[i];
                if (c->na[i] ? code != -1 : (code < 0 || (size_t)code >= c->nlevels))
                    FAIL_CHECK();
            }
            for (size_t l = 1; l < c->nlevels; l++)
                if (bh_level_cmp(c->levels[l - 1], c->levels[l]) >= 0)
                    FAIL_CHECK();
        }
    }
    return 1;
}

static bh_status read_buffer(const uint8_t *data, size_t size, const bh_csv_options *opt,
                             bh_frame **out, bh_error *err)
{
    /* fmemopen of a 0-byte buffer is not portable: give it one byte it
     * cannot read past (mode "r" reads `size` bytes only). */
    static const uint8_t empty[1] = {0};
    FILE *in = fmemopen((void *)(size ? data : empty), size ? size : 1, "r");
    if (!in)
        return bh_error_set(err, BH_ENOMEM, "fmemopen failed");
    if (!size)
        fgetc(in);
    bh_status s = bh_csv_read_stream(in, "fuzz.csv", opt, out, err);
    fclose(in);
    return s;
}

int bh_fuzz_csv(const uint8_t *data, size_t size)
{
    static const char *const na[] = {"-99", "."};
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    int bad = 0;
    for (int pass = 0; pass < 2; pass++) {
        /* Pass 0: defaults.  Pass 1: ';' separator and extra NA strings,
         * which change how the same bytes split into fields. */
        if (pass == 1) {
            opt.sep = ';';
            opt.na = na;
            opt.n_na = 2;
        }
        bh_frame *f = NULL;
        bh_error err;
        bh_error_clear(&err);
        bh_status s = read_buffer(data, size, &opt, &f, &err);
        if (s != BH_OK) {
            CHECK(bad, failed_properly(s, &err) && f == NULL);
            continue;
        }
        CHECK(bad, frame_consistent(f));
        /* Round trip: what we write, we must read back with the same shape. */
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (mem) {
            bh_error werr;
            bh_status ws = bh_frame_write_csv(f, mem, &werr);
            fclose(mem);
            if (ws == BH_OK && f->ncol > 0) {
                bh_frame *g = NULL;
                bh_error rerr;
                bh_status rs = read_buffer((const uint8_t *)buf, len, NULL, &g, &rerr);
                if (rs != BH_OK) {
                    why("round trip read", rerr.msg);
                    bad = 1;
                } else if (CHECK(bad, g->nrow == f->nrow && g->ncol == f->ncol) == 0) {
                    for (size_t j = 0; j < f->ncol; j++)
                        CHECK(bad, strcmp(f->cols[j].name, g->cols[j].name) == 0 &&
                                       f->cols[j].type == g->cols[j].type);
                }
                bh_frame_free(g);
            }
            free(buf);
        }
        bh_frame_free(f);
    }
    return bad ? -1 : 0;
}

/* A small fixed frame for the formula target: numeric y, x, z, w (w > 0),
 * a text factor g and a numeric code k. */
static bh_frame *formula_frame(void)
{
    enum { N = 12 };
    double y[N], x[N], z[N], w[N], k[N];
    const char *g[N];
    static const char *const lv[] = {"a", "b", "c"};
    for (int i = 0; i < N; i++) {
        x[i] = i + 1;
        z[i] = (i * 7) % 5 - 2.5;
        w[i] = 1 + (i % 4);
        k[i] = i % 3;
        y[i] = 1 + 0.5 * x[i] - z[i] + ((i * 5) % 7) * 0.1;
        g[i] = lv[i % 3];
    }
    bh_frame *f = bh_frame_new("fixed", N);
    if (!f)
        return NULL;
    bh_error err;
    if (bh_frame_add_numeric(f, "y", y, NULL, &err) || bh_frame_add_numeric(f, "x", x, NULL, &err) ||
        bh_frame_add_numeric(f, "z", z, NULL, &err) || bh_frame_add_numeric(f, "w", w, NULL, &err) ||
        bh_frame_add_numeric(f, "k", k, NULL, &err) ||
        bh_frame_add_categorical(f, "g", g, &err)) {
        bh_frame_free(f);
        return NULL;
    }
    return f;
}

static int design_consistent(const bh_design *d)
{
    if (d->n + d->ndropped != d->nrow_data)
        FAIL_CHECK();
    for (size_t i = 0; i < d->n * d->p; i++)
        if (isnan(d->x[i]))
            FAIL_CHECK();
    return 1;
}

int bh_fuzz_formula(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int bad = 0;
    bh_formula *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status s = bh_formula_parse(text, &f, &err);
    if (s != BH_OK) {
        CHECK(bad, failed_properly(s, &err) && f == NULL);
    } else {
        for (size_t t = 0; t < f->nterms; t++)
            free(bh_formula_term_label(f, t));
        bh_frame *fr = formula_frame();
        if (fr) {
            bh_design_options dopt;
            bh_design_default_options(&dopt);
            dopt.cluster = "g";
            /* Without and with weights: different code in design.c. */
            for (int pass = 0; pass < 2; pass++) {
                dopt.weights = pass ? "w" : NULL;
                bh_design *d = NULL;
                bh_error_clear(&err);
                s = bh_design_build(f, fr, &dopt, &d, &err);
                if (s != BH_OK) {
                    CHECK(bad, failed_properly(s, &err));
                    continue;
                }
                CHECK(bad, design_consistent(d));
                bh_fit *fit = NULL;
                if (d->m > 0 && bh_lm_fit(d, NULL, NULL, &fit, &err) == BH_OK)
                    bh_fit_free(fit);
                bh_design_free(d);
            }
            bh_frame_free(fr);
        }
        bh_formula_free(f);
    }
    free(text);
    return bad ? -1 : 0;
}

/* The fit invariants fit.h promises after summarize. */
static int fit_consistent(const bh_fit *fit)
{
    size_t rank = 0;
    for (size_t j = 0; j < fit->p; j++) {
        if (fit->aliased[j]) {
            if (!isnan(fit->beta[j]))
                FAIL_CHECK();
            continue;
        }
        rank++;
        if (!isfinite(fit->beta[j]))
            FAIL_CHECK();
        /* A printed standard error is never negative; a finite CI contains
         * its estimate. */
        if (fit->se[j] < 0)
            FAIL_CHECK();
        if (isfinite(fit->conf_low[j]) && isfinite(fit->conf_high[j]) &&
            !(fit->conf_low[j] <= fit->beta[j] && fit->beta[j] <= fit->conf_high[j]))
            FAIL_CHECK();
        if (!isnan(fit->p_value[j]) && !(fit->p_value[j] >= 0 && fit->p_value[j] <= 1))
            FAIL_CHECK();
    }
    if (rank != fit->rank)
        FAIL_CHECK();
    return 1;
}

int bh_fuzz_fit(const uint8_t *data, size_t size)
{
    static const char *const formulas[] = {
        "y ~ x",
        "y ~ x * z + g",
        "y ~ log(x) + I(z^2) + center(x):factor(g) - 1",
        "y ~ scale(x) + sqrt(abs(z)) + offset(z)",
        "y ~ (x + z + g)^2",
    };
    static const char *const vcovs[] = {"hc3", "cluster:g"};
    bh_frame *fr = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status s = read_buffer(data, size, NULL, &fr, &err);
    if (s != BH_OK)
        return failed_properly(s, &err) ? 0 : -1;
    FILE *devnull = fopen("/dev/null", "w");
    int bad = 0;
    for (size_t m = 0; m < sizeof formulas / sizeof formulas[0]; m++) {
        bh_formula *f = NULL;
        if (CHECK(bad, bh_formula_parse(formulas[m], &f, &err) == BH_OK)) {
            continue;
        }
        for (int wpass = 0; wpass < 2; wpass++) {
            bh_design_options dopt;
            bh_design_default_options(&dopt);
            dopt.cluster = "g";
            if (wpass) {
                dopt.weights = "w";
                dopt.weight_kind = (m % 2) ? BH_WEIGHTS_FREQUENCY : BH_WEIGHTS_ANALYTIC;
            }
            bh_design *d = NULL;
            bh_error_clear(&err);
            s = bh_design_build(f, fr, &dopt, &d, &err);
            if (s != BH_OK) {
                CHECK(bad, failed_properly(s, &err));
                continue;
            }
            bh_fit *fit = NULL;
            s = bh_lm_fit(d, NULL, NULL, &fit, &err);
            if (s != BH_OK) {
                CHECK(bad, failed_properly(s, &err) && fit == NULL);
                bh_design_free(d);
                continue;
            }
            for (size_t v = 0; v < sizeof vcovs / sizeof vcovs[0]; v++) {
                bh_vcov_spec spec;
                bh_error_clear(&err);
                if (CHECK(bad, bh_vcov_parse(vcovs[v], &spec, &err) == BH_OK)) {
                    continue;
                }
                s = bh_vcov_compute(fit, &spec, &err);
                if (s != BH_OK) {
                    CHECK(bad, failed_properly(s, &err));
                    continue;
                }
                s = bh_fit_summarize(fit, 0.9, &err);
                if (s != BH_OK) {
                    CHECK(bad, failed_properly(s, &err));
                    continue;
                }
                CHECK(bad, fit_consistent(fit));
                if (devnull)
                    for (int fmt = BH_FMT_TEXT; fmt <= BH_FMT_JSON; fmt++) {
                        bh_output_options oopt;
                        bh_output_default_options(&oopt);
                        oopt.format = (bh_format)fmt;
                        const bh_fit *one[2] = {fit, fit};
                        CHECK(bad, bh_output_fits(devnull, one, 1 + (fmt % 2), &oopt,
                                                  &err) == BH_OK);
                    }
            }
            bh_fit_free(fit);
            bh_design_free(d);
        }
        bh_formula_free(f);
    }
    if (devnull)
        fclose(devnull);
    bh_frame_free(fr);
    return bad ? -1 : 0;
}
