/* replicate.c - a study spec run end to end into a replication package
 * (see replicate.h). */
#include "blackhole/replicate.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_version.h>
#include <jansson.h>

#include "blackhole/atomicfile.h"
#include "blackhole/csvread.h"
#include "blackhole/describe.h"
#include "blackhole/describe_render.h"
#include "blackhole/margins.h"
#include "blackhole/model.h"
#include "blackhole/output.h"
#include "blackhole/plot.h"
#include "blackhole/render.h"
#include "blackhole/sha256.h"
#include "blackhole/strutil.h"
#include "blackhole/table.h"

#define SIG_LEVEL 0.05

void bh_replicate_default_options(bh_replicate_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->out_dir = "out";
    opt->render = 1;
    opt->version = "unknown";
}

/* ---- run state ------------------------------------------------------------ */

typedef struct {
    const bh_study *study;
    const bh_replicate_options *opt;
    bh_replicate_result *res;
    bh_frame *data[2];          /* reps, leads (NULL when absent)          */
    char *path[2];
    char hash[2][65];
    bh_model **models;          /* per spec model (NULL if it failed)      */
    char **model_error;         /* per spec model: why it failed           */
    char *formula_used;         /* scratch                                  */
    bh_scale_result *scales;
    size_t nscales;
    char *gnuplot;              /* path or NULL                             */
    bh_plot_labels *labels;
    /* report pieces */
    char **figs;                /* figure names with rendered PNGs / scripts */
    char **fig_titles;
    int *fig_png;
    size_t nfigs;
    bh_table **slope_tables;
    size_t nslope_tables;
} run;

static void progress(const run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(const run *r, const char *fmt, ...)
{
    if (!r->opt->progress)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->opt->progress(r->opt->progress_ctx, msg);
}

static bh_status push_str(char ***list, size_t *n, const char *s)
{
    char **v = realloc(*list, (*n + 1) * sizeof *v);
    if (!v)
        return BH_ENOMEM;
    *list = v;
    if (!(v[*n] = bh_strdup(s)))
        return BH_ENOMEM;
    (*n)++;
    return BH_OK;
}

static bh_status notice(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bh_status notice(run *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    progress(r, "note: %s", msg);
    return push_str(&r->res->notices, &r->res->nnotices, msg);
}

static char *out_path(const run *r, const char *rel)
{
    size_t n = strlen(r->opt->out_dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", r->opt->out_dir, rel);
    return p;
}

static bh_status make_dir(const char *path, bh_error *err)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return BH_OK;
        return bh_error_at(err, BH_EOUTPUT, path, 0, 0, "exists and is not a directory");
    }
    return bh_error_at(err, BH_EOUTPUT, path, 0, 0, "cannot create directory: %s",
                       strerror(errno));
}

/* A writer callback for write_file. */
typedef bh_status (*writer_fn)(run *r, FILE *out, const void *arg, bh_error *err);

/* Write out_dir/rel atomically through `fn` and record it. */
static bh_status write_file(run *r, const char *rel, writer_fn fn, const void *arg, bh_error *err)
{
    char *p = out_path(r, rel);
    if (!p)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_afile af;
    bh_status s = bh_afile_open(&af, p, err);
    free(p);
    if (s != BH_OK)
        return s;
    s = fn(r, af.fp, arg, err);
    if (s != BH_OK) {
        bh_afile_abort(&af);
        return s;
    }
    if ((s = bh_afile_commit(&af, err)) != BH_OK)
        return s;
    return push_str(&r->res->files, &r->res->nfiles, rel) == BH_OK
               ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
}

/* ---- data ------------------------------------------------------------------ */

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Data columns take the spec's names ([columns] maps spec -> data). */
static void apply_colmap(const bh_study *st, bh_frame *f)
{
    for (size_t k = 0; k < st->ncolumns; k++) {
        const bh_study_colmap *m = &st->columns[k];
        if (strcmp(m->spec_name, m->column) == 0)
            continue;
        long j = bh_frame_index(f, m->column);
        if (j >= 0 && bh_frame_index(f, m->spec_name) < 0) {
            char *nm = bh_strdup(m->spec_name);
            if (nm) {
                free(f->cols[j].name);
                f->cols[j].name = nm;
            }
        }
    }
}

static bh_status load_data(run *r, bh_error *err)
{
    const bh_study *st = r->study;
    const char *spec_path[2] = {st->reps, st->leads};
    const char *over[2] = {r->opt->reps, r->opt->leads};
    for (int lv = 0; lv < 2; lv++) {
        const char *p = over[lv];
        char buf[4096];
        if (!p && spec_path[lv]) {
            if (r->opt->data_dir) {
                snprintf(buf, sizeof buf, "%s/%s", r->opt->data_dir, base_name(spec_path[lv]));
                p = buf;
            } else
                p = spec_path[lv];
        }
        if (!p)
            continue;
        progress(r, "reading %s", p);
        bh_csv_options co;
        bh_csv_default_options(&co);
        bh_status s = bh_csv_read_path(p, &co, &r->data[lv], err);
        if (s != BH_OK)
            return s;
        if (!(r->path[lv] = bh_strdup(p)))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        if ((s = bh_sha256_file(p, r->hash[lv], err)) != BH_OK)
            return s;
        apply_colmap(st, r->data[lv]);
    }
    if (!r->data[BH_LEVEL_REPS])
        return bh_error_set(err, BH_EUSAGE, "%s: the spec names no unit-level data file",
                            st->path);
    return BH_OK;
}

/* Score the spec's scales (composite = item mean) on their data level. */
static bh_status score_scales(run *r, bh_error *err)
{
    const bh_study *st = r->study;
    r->scales = calloc(st->nscales ? st->nscales : 1, sizeof *r->scales);
    if (!r->scales)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    for (size_t k = 0; k < st->nscales; k++) {
        const bh_study_scale *sc = &st->scales[k];
        bh_frame *f = r->data[sc->data];
        if (!f)
            return bh_error_set(err, BH_EUSAGE, "scale %s: no %s data file", sc->name,
                                sc->data == BH_LEVEL_LEADS ? "lead-level" : "unit-level");
        if (bh_frame_index(f, sc->name) >= 0) {
            /* the data already carry the composite (e.g. copied onto leads) */
            continue;
        }
        bh_status s = bh_scale_score(f, sc->name, (const char *const *)sc->items, sc->nitems,
                                     &r->scales[r->nscales], err);
        r->nscales++;
        if (s != BH_OK)
            return s;
        progress(r, "scale %s: %zu items, Cronbach's alpha %.3f", sc->name, sc->nitems,
                 r->scales[r->nscales - 1].alpha);
    }
    return BH_OK;
}

/* ---- Table 1 ------------------------------------------------------------------ */

typedef struct {
    const bh_describe_report *rp;
    bh_format fmt;
} describe_arg;

static bh_status write_describe(run *r, FILE *out, const void *a, bh_error *err)
{
    (void)r;
    const describe_arg *da = a;
    return bh_describe_render(da->rp, da->fmt, out, err);
}

static const struct {
    bh_format fmt;
    const char *ext;
} formats[] = {{BH_FMT_TEXT, "txt"}, {BH_FMT_MD, "md"}, {BH_FMT_LATEX, "tex"},
               {BH_FMT_CSV, "csv"}, {BH_FMT_JSON, "json"}};
#define NFORMATS (sizeof formats / sizeof formats[0])

/* Variables of Table 1: every variable the unit-level models use (after
 * the column mapping), in first-appearance order, plus the composites. */
static bh_status table1_vars(const run *r, char ***vars, size_t *n)
{
    const bh_study *st = r->study;
    const bh_frame *f = r->data[BH_LEVEL_REPS];
    *vars = NULL;
    *n = 0;
    for (size_t m = 0; m < st->nmodels; m++) {
        const bh_study_model *md = &st->models[m];
        if (md->data != BH_LEVEL_REPS)
            continue;
        for (size_t k = 0; k < md->nresponses + md->nvars; k++) {
            const char *v = k < md->nresponses ? md->responses[k] : md->vars[k - md->nresponses];
            if (bh_frame_index(f, v) < 0)
                continue;
            size_t j = 0;
            while (j < *n && strcmp((*vars)[j], v) != 0)
                j++;
            if (j == *n && push_str(vars, n, v) != BH_OK)
                return BH_ENOMEM;
        }
    }
    return BH_OK;
}

static bh_status table1(run *r, bh_error *err)
{
    char **vars = NULL;
    size_t nvars = 0;
    if (table1_vars(r, &vars, &nvars) != BH_OK)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_describe_options dopt;
    bh_describe_default_options(&dopt);
    dopt.vars = (const char *const *)vars;
    dopt.nvars = nvars;
    bh_describe_result *res = NULL;
    bh_status s = bh_describe_run(r->data[BH_LEVEL_REPS], &dopt, &res, err);
    if (s == BH_OK) {
        bh_describe_report rp = {res, r->scales, r->nscales, 3};
        for (size_t k = 0; s == BH_OK && k < NFORMATS; k++) {
            char rel[64];
            snprintf(rel, sizeof rel, "table1.%s", formats[k].ext);
            describe_arg da = {&rp, formats[k].fmt};
            s = write_file(r, rel, write_describe, &da, err);
        }
    }
    bh_describe_free(res);
    for (size_t k = 0; k < nvars; k++)
        free(vars[k]);
    free(vars);
    return s;
}

/* ---- models --------------------------------------------------------------------- */

static int in_list(char *const *list, size_t n, const char *s)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(list[k], s) == 0)
            return 1;
    return 0;
}

static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

/* The spec's transforms as formula functions: every right-hand-side
 * variable listed under center (standardize) becomes center(v)
 * (scale(v)), so centring uses the estimation sample of each model and
 * margins and figures stay in the variables' own units. */
static char *transform_formula(const bh_study *st, const char *f)
{
    const char *tilde = strchr(f, '~');
    size_t cap = strlen(f) * 3 + 64, o = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    const char *p = f;
    int rhs = 0;
    while (*p) {
        if (p == tilde)
            rhs = 1;
        if (rhs && ident_char(*p) && !(*p >= '0' && *p <= '9') &&
            (p == f || !ident_char(p[-1]))) {
            const char *q = p;
            while (ident_char(*q))
                q++;
            size_t len = (size_t)(q - p);
            char name[256];
            const char *after = q;
            while (*after == ' ')
                after++;
            if (len < sizeof name && *after != '(') {
                memcpy(name, p, len);
                name[len] = '\0';
                const char *fn = in_list(st->center, st->ncenter, name) ? "center"
                                 : in_list(st->standardize, st->nstandardize, name) ? "scale"
                                                                                   : NULL;
                if (fn) {
                    if (o + len + 16 >= cap) {
                        char *n2 = realloc(out, cap *= 2);
                        if (!n2) {
                            free(out);
                            return NULL;
                        }
                        out = n2;
                    }
                    o += (size_t)snprintf(out + o, cap - o, "%s(%s)", fn, name);
                    p = q;
                    continue;
                }
            }
            if (o + len + 1 >= cap) {
                char *n2 = realloc(out, cap = cap * 2 + len);
                if (!n2) {
                    free(out);
                    return NULL;
                }
                out = n2;
            }
            memcpy(out + o, p, len);
            o += len;
            p = q;
            continue;
        }
        if (o + 2 >= cap) {
            char *n2 = realloc(out, cap *= 2);
            if (!n2) {
                free(out);
                return NULL;
            }
            out = n2;
        }
        out[o++] = *p == '\n' || *p == '\t' ? ' ' : *p;
        p++;
    }
    out[o] = '\0';
    return out;
}

bh_status bh_study_model_spec(const bh_study *st, size_t m, bh_model_spec *sp,
                              char **formula, bh_error *err)
{
    const bh_study_model *md = &st->models[m];
    *formula = transform_formula(st, md->formula);
    if (!*formula)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    if (md->random) {
        size_t n = strlen(*formula) + strlen(md->random) + 16;
        char *g = malloc(n);
        if (!g) {
            free(*formula);
            *formula = NULL;
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        snprintf(g, n, "%s + (1 | %s)", *formula, md->random);
        free(*formula);
        *formula = g;
    }
    bh_model_spec_default(sp);
    sp->formula = *formula;
    sp->name = md->name;
    bh_error e2;
    bh_status s = bh_family_parse(md->family, &sp->family, &e2);
    if (s == BH_OK && md->link) {
        s = bh_link_parse(md->link, &sp->link, &e2);
        sp->link_set = 1;
    }
    if (s == BH_OK && md->vcov) {
        s = bh_vcov_parse(md->vcov, &sp->vcov, &e2);
        sp->vcov_set = 1;
    }
    if (s == BH_OK && md->param)
        s = bh_dirichlet_param_parse(md->param, &sp->param, &e2);
    sp->base = md->reference;
    if (s != BH_OK) {
        free(*formula);
        *formula = NULL;
        return bh_error_at(err, s, st->path, md->line, 0, "model %s: %s", md->name, e2.msg);
    }
    return BH_OK;
}

static bh_status fit_models(run *r, bh_error *err)
{
    const bh_study *st = r->study;
    size_t nm = st->nmodels;
    r->models = calloc(nm ? nm : 1, sizeof *r->models);
    r->model_error = calloc(nm ? nm : 1, sizeof *r->model_error);
    if (!r->models || !r->model_error)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    for (size_t m = 0; m < nm; m++) {
        const bh_study_model *md = &st->models[m];
        bh_frame *data = r->data[md->data];
        if (!data) {
            r->model_error[m] = bh_strdup("no lead-level data file");
            notice(r, "model %s skipped: no lead-level data file", md->name);
            continue;
        }
        char *f = NULL;
        bh_model_spec sp;
        bh_status s = bh_study_model_spec(st, m, &sp, &f, err);
        if (s != BH_OK)
            return s;
        progress(r, "fitting %s (%s)", md->name, md->family);
        bh_error e2;
        s = bh_model_fit(data, &sp, &r->models[m], &e2);
        free(f);
        if (s != BH_OK) {
            r->model_error[m] = bh_strdup(e2.msg);
            if (s == BH_ENOMEM)
                return bh_error_set(err, s, "out of memory");
            notice(r, "model %s failed: %s", md->name, e2.msg);
            continue;
        }
        if (!r->models[m]->fit->converged)
            notice(r, "model %s did not converge; its rows are marked", md->name);
    }
    return BH_OK;
}

/* A view of one component of a multi-component fit, for side-by-side
 * tables: the component's coefficients with plain term names. */
static bh_fit *component_view(const bh_fit *f, const char *component)
{
    size_t q = 0;
    for (size_t j = 0; j < f->p; j++)
        q += strcmp(f->component[j] ? f->component[j] : "", component) == 0;
    bh_fit *v = bh_fit_alloc(q, 0, 0, 0);
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t j = 0; j < f->p; j++) {
        if (strcmp(f->component[j] ? f->component[j] : "", component) != 0)
            continue;
        if (bh_fit_set_string(&v->term[k], f->term[j]) != BH_OK) {
            bh_fit_free(v);
            return NULL;
        }
        v->beta[k] = f->beta[j];
        v->aliased[k] = f->aliased[j];
        v->se[k] = f->se[j];
        v->statistic[k] = f->statistic[j];
        v->p_value[k] = f->p_value[j];
        v->conf_low[k] = f->conf_low[j];
        v->conf_high[k] = f->conf_high[j];
        k++;
    }
    char name[256];
    snprintf(name, sizeof name, "%s [%s]", f->name, component);
    if (bh_fit_set_string(&v->name, name) || bh_fit_set_string(&v->formula, f->formula) ||
        bh_fit_set_string(&v->family, f->family) || bh_fit_set_string(&v->link, f->link)) {
        bh_fit_free(v);
        return NULL;
    }
    memcpy(v->vcov_type, f->vcov_type, sizeof v->vcov_type);
    v->nobs = f->nobs;
    v->ndropped = f->ndropped;
    v->nclusters = f->nclusters;
    v->df_inference = f->df_inference;
    v->level = f->level;
    v->stats = f->stats;
    v->converged = f->converged;
    v->linear = f->linear;
    return v;
}

typedef struct {
    const bh_fit *const *fits;
    size_t n;
    bh_format fmt;
} fits_arg;

static bh_status write_fits(run *r, FILE *out, const void *a, bh_error *err)
{
    (void)r;
    const fits_arg *fa = a;
    bh_output_options oo;
    bh_output_default_options(&oo);
    oo.format = fa->fmt;
    oo.digits = 4;
    return bh_output_fits(out, fa->fits, fa->n, &oo, err);
}

/* Table 2 (unit level) and Table 3 (lead level): the spec's models side by
 * side; a multi-component model shows the component its findings use. */
static bh_status model_tables(run *r, bh_error *err)
{
    const bh_study *st = r->study;
    bh_status s = BH_OK;
    for (int lv = 0; lv < 2 && s == BH_OK; lv++) {
        const bh_fit **fits = calloc(st->nmodels + 1, sizeof *fits);
        bh_fit **views = calloc(st->nmodels + 1, sizeof *views);
        size_t n = 0;
        if (!fits || !views) {
            free(fits);
            free(views);
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        for (size_t m = 0; m < st->nmodels; m++) {
            if (st->models[m].data != (bh_study_level)lv || !r->models[m])
                continue;
            const bh_fit *f = r->models[m]->fit;
            const char *comp = NULL;
            for (size_t k = 0; k < st->nfindings && !comp; k++)
                if (st->findings[k].model_index == m && st->findings[k].component)
                    comp = st->findings[k].component;
            if (comp) {
                views[m] = component_view(f, comp);
                if (!views[m]) {
                    s = bh_error_set(err, BH_ENOMEM, "out of memory");
                    break;
                }
                f = views[m];
            }
            fits[n++] = f;
        }
        for (size_t k = 0; s == BH_OK && n && k < NFORMATS; k++) {
            char rel[64];
            snprintf(rel, sizeof rel, "table%d.%s", lv + 2, formats[k].ext);
            fits_arg fa = {fits, n, formats[k].fmt};
            s = write_file(r, rel, write_fits, &fa, err);
        }
        /* every model in full, one file each (all components) */
        for (size_t m = 0; s == BH_OK && m < st->nmodels; m++) {
            if (st->models[m].data != (bh_study_level)lv || !r->models[m])
                continue;
            const bh_fit *one = r->models[m]->fit;
            char rel[300];
            for (size_t k = 0; s == BH_OK && k < NFORMATS; k++) {
                snprintf(rel, sizeof rel, "models/%s.%s", st->models[m].name, formats[k].ext);
                fits_arg fa = {&one, 1, formats[k].fmt};
                s = write_file(r, rel, write_fits, &fa, err);
            }
        }
        for (size_t m = 0; m <= st->nmodels; m++)
            bh_fit_free(views[m]);
        free(views);
        free(fits);
    }
    return s;
}

/* ---- findings ------------------------------------------------------------------- */

/* Strip center( ) / scale( ) wrappers: "center(experience)" -> "experience". */
static void plain_var(const char *in, size_t len, char *out, size_t size)
{
    const char *wrap[] = {"center(", "scale("};
    for (int k = 0; k < 2; k++) {
        size_t w = strlen(wrap[k]);
        if (len > w + 1 && strncmp(in, wrap[k], w) == 0 && in[len - 1] == ')') {
            in += w;
            len -= w + 1;
            break;
        }
    }
    snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), in);
}

int bh_study_term_matches(const char *fit_term, const bh_study_finding *fd)
{
    size_t nparts = 1;
    for (const char *c = fit_term; *c; c++)
        nparts += *c == ':';
    if (nparts != fd->nterm_vars)
        return 0;
    const char *p = fit_term;
    for (size_t k = 0; k < nparts; k++) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char v[256];
        plain_var(p, len, v, sizeof v);
        if (!in_list(fd->term_vars, fd->nterm_vars, v))
            return 0;
        p = e ? e + 1 : p + len;
    }
    return 1;
}

static const char *verdict_of(int sign, double est, double p)
{
    if (!(p < SIG_LEVEL))
        return "not significant";
    return (est > 0) == (sign > 0) ? "replicated" : "opposite sign";
}

/* The margins model of a spec model; `store` holds what a Dirichlet
 * description points to.  Mixed models: the fixed part, conditional on a
 * zero random effect. */
static bh_status margins_model_of(const run *r, size_t m, bh_margins_softmax *store,
                                  bh_margins_model *mm, bh_error *err)
{
    const bh_model *md = r->models[m];
    return bh_margins_model_for(md->fit, r->data[r->study->models[m].data], store, mm, err);
}

static bh_status score_findings(run *r, bh_error *err)
{
    const bh_study *st = r->study;
    bh_replicate_result *res = r->res;
    res->scores = calloc(st->nfindings ? st->nfindings : 1, sizeof *res->scores);
    if (!res->scores)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    for (size_t k = 0; k < st->nfindings; k++) {
        const bh_study_finding *fd = &st->findings[k];
        bh_score *sc = &res->scores[res->nscores];
        memset(sc, 0, sizeof *sc);
        sc->estimate = sc->conf_low = sc->conf_high = sc->p_value = NAN;
        sc->expected_sign = fd->sign;
        const char *scale = fd->scale ? fd->scale : "coefficient";
        if (!(sc->finding = bh_strdup(fd->name)) || !(sc->claim = bh_strdup(fd->claim)) ||
            !(sc->term = bh_strdup(fd->term)) || !(sc->model = bh_strdup(fd->model)) ||
            !(sc->scale = bh_strdup(scale)) ||
            !(sc->component = bh_strdup(fd->component ? fd->component : "")))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        res->nscores++;
        const bh_model *md = r->models[fd->model_index];
        if (!md) {
            sc->verdict = bh_strdup("model failed");
            continue;
        }
        const bh_fit *f = md->fit;
        int found = 0;
        if (strcmp(scale, "coefficient") == 0) {
            for (size_t j = 0; j < f->p && !found; j++) {
                if (fd->component &&
                    strcmp(f->component[j] ? f->component[j] : "", fd->component) != 0)
                    continue;
                if (!bh_study_term_matches(f->term[j], fd))
                    continue;
                sc->estimate = f->beta[j];
                sc->conf_low = f->conf_low[j];
                sc->conf_high = f->conf_high[j];
                sc->p_value = f->p_value[j];
                found = 1;
            }
        } else {
            bh_margins_model mm;
            bh_margins_softmax store;
            bh_error e2;
            bh_status s = margins_model_of(r, fd->model_index, &store, &mm, &e2);
            if (s == BH_OK) {
                bh_margins_options mo;
                bh_margins_default_options(&mo);
                const char *one[1] = {fd->term};
                if (strcmp(scale, "ame") == 0) {
                    mo.dydx = one;
                    mo.ndydx = 1;
                } else {
                    mo.interaction = one;
                    mo.ninteraction = 1;
                }
                bh_margins_result *mr = NULL;
                s = bh_margins_compute(&mm, &mo, &mr, &e2);
                for (size_t i = 0; s == BH_OK && i < mr->nrows && !found; i++) {
                    const bh_margin *g = &mr->rows[i];
                    if (fd->component && strcmp(g->component, fd->component) != 0)
                        continue;
                    sc->estimate = g->estimate;
                    sc->conf_low = g->conf_low;
                    sc->conf_high = g->conf_high;
                    sc->p_value = g->p_value;
                    found = 1;
                }
                bh_margins_result_free(mr);
            }
            if (s != BH_OK)
                notice(r, "finding %s: %s", fd->name, e2.msg);
        }
        if (!found) {
            sc->verdict = bh_strdup("not estimated");
            notice(r, "finding %s: term %s not found in model %s", fd->name, fd->term, fd->model);
            continue;
        }
        if (fd->sign == 0) {
            sc->verdict = bh_strdup("not reported");
            continue;
        }
        sc->verdict = bh_strdup(verdict_of(fd->sign, sc->estimate, sc->p_value));
        res->scored++;
        res->replicated += strcmp(sc->verdict, "replicated") == 0;
        if (!sc->verdict)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    return BH_OK;
}

static bh_status write_scorecard(run *r, FILE *out, const void *a, bh_error *err)
{
    (void)a;
    fputs("finding,term,model,scale,expected_sign,estimate,conf_low,conf_high,p_value,verdict\n",
          out);
    for (size_t k = 0; k < r->res->nscores; k++) {
        const bh_score *s = &r->res->scores[k];
        if (s->expected_sign == 0)
            continue; /* not published: not scored */
        bh_write_csv_field(out, s->finding);
        fputc(',', out);
        bh_write_csv_field(out, s->term);
        fputc(',', out);
        bh_write_csv_field(out, s->model);
        fputc(',', out);
        bh_write_csv_field(out, s->scale);
        fprintf(out, ",%s,", s->expected_sign > 0 ? "+" : "-");
        bh_write_csv_num(out, s->estimate);
        fputc(',', out);
        bh_write_csv_num(out, s->conf_low);
        fputc(',', out);
        bh_write_csv_num(out, s->conf_high);
        fputc(',', out);
        bh_write_csv_num(out, s->p_value);
        fputc(',', out);
        bh_write_csv_field(out, s->verdict ? s->verdict : "");
        fputc('\n', out);
    }
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
}

static bh_table *scorecard_table(const run *r)
{
    bh_table *t = bh_table_new(8);
    if (!t)
        return NULL;
    const char *hdr[8] = {"finding", "claim", "term", "expected", "estimate", "95% CI",
                          "p", "verdict"};
    bh_status s = bh_table_set_header(t, hdr);
    bh_table_set_title(t, "Replication scorecard");
    for (size_t j = 3; j < 7; j++)
        bh_table_set_align(t, j, BH_ALIGN_RIGHT);
    for (size_t k = 0; s == BH_OK && k < r->res->nscores; k++) {
        const bh_score *sc = &r->res->scores[k];
        char est[48], ci[96], p[32], lo[40], hi[40], term[300];
        bh_fmt_num(est, sizeof est, sc->estimate, 4);
        snprintf(ci, sizeof ci, "[%s, %s]", bh_fmt_num(lo, sizeof lo, sc->conf_low, 3),
                 bh_fmt_num(hi, sizeof hi, sc->conf_high, 3));
        bh_fmt_pvalue(p, sizeof p, sc->p_value);
        snprintf(term, sizeof term, "%s%s%s (%s)", sc->component[0] ? sc->component : "",
                 sc->component[0] ? ": " : "", sc->term, sc->scale);
        const char *row[8] = {sc->finding, sc->claim, term,
                              sc->expected_sign > 0 ? "+" : sc->expected_sign < 0 ? "-" : "none",
                              est, ci, p, sc->verdict ? sc->verdict : ""};
        s = bh_table_add_row(t, row);
    }
    char note[256];
    snprintf(note, sizeof note, "%zu of %zu published findings replicated (significant at 5%% with "
             "the published sign).", r->res->replicated, r->res->scored);
    if (s == BH_OK)
        s = bh_table_add_note(t, note);
    if (s != BH_OK) {
        bh_table_free(t);
        return NULL;
    }
    return t;
}

/* ---- figures -------------------------------------------------------------------- */

/* "-1sd, mean, +1sd" -> "mean-1*sd,mean,mean+1*sd" (margins' --at syntax). */
static bh_status at_values(const char *spec, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    size_t n = 0;
    char **items = NULL;
    const char *p = spec;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char tok[64];
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        snprintf(tok, sizeof tok, "%.*s", (int)(len < 63 ? len : 63), p);
        char conv[96];
        size_t tl = strlen(tok);
        if (tl > 2 && strcmp(tok + tl - 2, "sd") == 0 && (tok[0] == '+' || tok[0] == '-'))
            snprintf(conv, sizeof conv, "mean%c%.*s*sd", tok[0], (int)(tl - 3), tok + 1);
        else
            snprintf(conv, sizeof conv, "%s", tok);
        o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", n ? "," : "", conv);
        n++;
        p = e ? e + 1 : NULL;
    }
    free(items);
    return o < size ? BH_OK : BH_EUSAGE;
}

typedef struct {
    const bh_margins_result *mr;
    const char *model;
    const char *component;      /* keep only this component's rows, or NULL */
} margins_arg;

static bh_status write_margins_csv(run *r, FILE *out, const void *a, bh_error *err)
{
    (void)r;
    const margins_arg *ma = a;
    fputs("model,type,term,at,estimate,std_error,statistic,p_value,conf_low,conf_high\n", out);
    for (size_t i = 0; i < ma->mr->nrows; i++) {
        const bh_margin *g = &ma->mr->rows[i];
        if (ma->component && g->component[0] && strcmp(g->component, ma->component) != 0)
            continue;
        bh_write_csv_field(out, ma->model);
        fputc(',', out);
        bh_write_csv_field(out, bh_margin_type_name(g->type));
        fputc(',', out);
        bh_write_csv_field(out, g->term);
        fputc(',', out);
        bh_write_csv_field(out, g->at);
        const double v[6] = {g->estimate, g->std_error, g->statistic, g->p_value, g->conf_low,
                             g->conf_high};
        for (int k = 0; k < 6; k++) {
            fputc(',', out);
            bh_write_csv_num(out, v[k]);
        }
        fputc('\n', out);
    }
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
}

typedef struct {
    const bh_chart *chart;
} chart_arg;

static bh_status write_chart(run *r, FILE *out, const void *a, bh_error *err)
{
    (void)r;
    return bh_chart_write(((const chart_arg *)a)->chart, out, err);
}

/* Evenly spaced grid over [lo, hi] as "name=v1,v2,..." (full precision). */
static char *grid_spec(const char *name, double lo, double hi, size_t n)
{
    size_t cap = strlen(name) + 2 + n * 26;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap, "%s=", name);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s%.17g", i ? "," : "",
                              lo + (hi - lo) * (double)i / (double)(n - 1));
    return s;
}

/* Observed 5th-95th percentile range of a variable over the model rows. */
static void var_range(const bh_model *md, const bh_frame *data, const char *var, double *lo,
                      double *hi)
{
    *lo = NAN;
    *hi = NAN;
    const bh_column *c = bh_frame_col(data, var);
    if (!c || c->type != BH_COL_NUMERIC)
        return;
    size_t n = md->design->n, k = 0;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        double x = c->num[md->design->rows[i]];
        if (!isnan(x))
            v[k++] = x;
    }
    if (k) {
        /* insertion-free: sort */
        for (size_t i = 1; i < k; i++) {
            double x = v[i];
            size_t j = i;
            while (j > 0 && v[j - 1] > x) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        *lo = bh_describe_quantile_sorted(v, k, 0.05);
        *hi = bh_describe_quantile_sorted(v, k, 0.95);
    }
    free(v);
}

static bh_status render_chart(run *r, const char *rel_gp, int *png, bh_error *err)
{
    *png = 0;
    if (!r->opt->render || !r->gnuplot)
        return BH_OK;
    char *gp = out_path(r, rel_gp);
    if (!gp)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_render_format fmts[2] = {BH_RENDER_PNG, BH_RENDER_SVG};
    bh_status s = BH_OK;
    for (int k = 0; k < 2 && s == BH_OK; k++) {
        size_t n = strlen(gp) + 8;
        char *img = malloc(n);
        if (!img) {
            free(gp);
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        snprintf(img, n, "%.*s.%s", (int)(strlen(gp) - 3), gp, bh_render_extension(fmts[k]));
        s = bh_render_run(r->gnuplot, gp, fmts[k], 900, 600, img, err);
        if (s == BH_OK) {
            const char *rel = img + strlen(r->opt->out_dir) + 1;
            push_str(&r->res->files, &r->res->nfiles, rel);
            if (k == 0)
                *png = 1;
        }
        free(img);
    }
    free(gp);
    return s;
}

static bh_status add_figure(run *r, const char *name, const char *title, int png)
{
    char **a = realloc(r->figs, (r->nfigs + 1) * sizeof *a);
    char **b = realloc(r->fig_titles, (r->nfigs + 1) * sizeof *b);
    int *c = realloc(r->fig_png, (r->nfigs + 1) * sizeof *c);
    if (a)
        r->figs = a;
    if (b)
        r->fig_titles = b;
    if (c)
        r->fig_png = c;
    if (!a || !b || !c)
        return BH_ENOMEM;
    r->figs[r->nfigs] = bh_strdup(name);
    r->fig_titles[r->nfigs] = bh_strdup(title ? title : name);
    r->fig_png[r->nfigs] = png;
    r->nfigs++;
    return BH_OK;
}

/* One spec figure: margins on a grid -> CSV -> chart script -> images. */
static bh_status figure(run *r, const bh_study_figure *fg, bh_error *err)
{
    const bh_model *md = r->models[fg->model_index];
    if (!md)
        return notice(r, "figure %s skipped: model %s failed", fg->name, fg->model) == BH_OK
                   ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
    const bh_frame *data = r->data[r->study->models[fg->model_index].data];
    bh_plot_options po;
    bh_plot_default_options(&po);
    po.title = fg->title;
    po.labels = r->labels;
    po.vcov_label = md->fit->vcov_type;
    char gp_rel[300], csv_rel[300], png_rel[300];
    snprintf(gp_rel, sizeof gp_rel, "figures/%s.gp", fg->name);
    snprintf(csv_rel, sizeof csv_rel, "figures/%s_data.csv", fg->name);
    snprintf(png_rel, sizeof png_rel, "figures/%s.png", fg->name);
    po.output = png_rel + 8;
    bh_chart *chart = NULL;
    bh_status s = BH_OK;
    bh_error e2;

    if (strcmp(fg->kind, "coef") == 0) {
        /* coefficient plot across the models of the same level and outcome */
        size_t nf = 0;
        const bh_study *st = r->study;
        bh_frame **frames = calloc(st->nmodels + 1, sizeof *frames);
        if (!frames)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        for (size_t m = 0; s == BH_OK && m < st->nmodels; m++) {
            if (!r->models[m] || st->models[m].data != st->models[fg->model_index].data)
                continue;
            const bh_fit *f = r->models[m]->fit;
            bh_fit *view = NULL;
            if (fg->component && strcmp(f->family, "dirichlet") == 0) {
                view = component_view(f, fg->component);
                if (!view) {
                    s = bh_error_set(err, BH_ENOMEM, "out of memory");
                    break;
                }
                bh_fit_set_string(&view->name, f->name);
                f = view;
            } else if (strcmp(f->family, "dirichlet") == 0) {
                continue;
            } else if (f->linear) {
                /* least-squares coefficients are on the share scale, not
                 * the log-odds scale of the others: not in the same chart */
                continue;
            }
            /* the chart reads the fit CSV contract: write, then read back */
            char rel[300];
            snprintf(rel, sizeof rel, "figures/%s_%s.csv", fg->name, st->models[m].name);
            fits_arg fa = {(const bh_fit *const *)&f, 1, BH_FMT_CSV};
            s = write_file(r, rel, write_fits, &fa, err);
            bh_fit_free(view);
            if (s != BH_OK)
                break;
            char *p = out_path(r, rel);
            bh_csv_options co;
            bh_csv_default_options(&co);
            s = p ? bh_csv_read_path(p, &co, &frames[nf], err) : BH_ENOMEM;
            free(p);
            if (s == BH_OK)
                nf++;
        }
        const char *omit[2] = {"(Intercept)", "^firm"};
        po.omit = omit;
        po.nomit = 2;
        /* raw term names: codebook labels of interactions are too long
         * for the axis */
        po.labels = NULL;
        po.vcov_label = "as in each model's table";
        po.caption = "Points: estimates on the log-odds scale of the marketing-lead share; "
                     "bars: 95% confidence intervals (each model's own standard errors). "
                     "Intercepts and firm effects not shown; least squares (share scale) in "
                     "Table 2.";
        if (s == BH_OK)
            s = bh_plot_coef((const bh_frame *const *)frames, nf, &po, &chart, err);
        for (size_t k = 0; k < nf; k++)
            bh_frame_free(frames[k]);
        free(frames);
    } else {
        bh_margins_model mm;
        bh_margins_softmax store;
        if (margins_model_of(r, fg->model_index, &store, &mm, &e2) != BH_OK)
            return notice(r, "figure %s skipped: %s", fg->name, e2.msg) == BH_OK
                       ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
        bh_margins_options mo;
        bh_margins_default_options(&mo);
        char atvals[512], *grid = NULL, jn[300], *atlist[2] = {NULL, NULL};
        char mod_at[700];
        const char *dydx[1] = {fg->x};
        if (at_values(fg->at ? fg->at : "-1sd, mean, +1sd", atvals, sizeof atvals) != BH_OK)
            return bh_error_set(err, BH_EUSAGE, "figure %s: at list too long", fg->name);
        if (strcmp(fg->kind, "slopes") == 0) {
            double lo, hi;
            var_range(md, data, fg->moderator, &lo, &hi);
            grid = grid_spec(fg->moderator, lo, hi, 41);
            snprintf(jn, sizeof jn, "%s:%s", fg->x, fg->moderator);
            const char *jns[1] = {jn};
            atlist[0] = grid;
            mo.dydx = dydx;
            mo.ndydx = 1;
            mo.at = (const char *const *)atlist;
            mo.nat = 1;
            mo.jn = jns;
            mo.njn = 1;
            bh_margins_result *mr = NULL;
            s = grid ? bh_margins_compute(&mm, &mo, &mr, &e2) : BH_ENOMEM;
            if (s == BH_OK) {
                margins_arg ma = {mr, fg->model, fg->component};
                s = write_file(r, csv_rel, write_margins_csv, &ma, err);
            } else if (s != BH_ENOMEM)
                notice(r, "figure %s: %s", fg->name, e2.msg);
            bh_margins_result_free(mr);
            /* the simple slopes at the spec's moderator values, for the report */
            snprintf(mod_at, sizeof mod_at, "%s=%s", fg->moderator, atvals);
            atlist[0] = mod_at;
            mo.jn = NULL;
            mo.njn = 0;
            bh_margins_result *sr = NULL;
            if (s == BH_OK && bh_margins_compute(&mm, &mo, &sr, &e2) == BH_OK) {
                bh_table *t = bh_table_new(6);
                const char *hdr[6] = {"figure", "at", "slope", "std.error", "p", "95% CI"};
                if (t && bh_table_set_header(t, hdr) == BH_OK) {
                    for (size_t i = 0; i < sr->nrows; i++) {
                        const bh_margin *g = &sr->rows[i];
                        if (fg->component && g->component[0] &&
                            strcmp(g->component, fg->component) != 0)
                            continue;
                        char a1[48], a2[48], a3[32], a4[100], l1[40], l2[40];
                        snprintf(a4, sizeof a4, "[%s, %s]",
                                 bh_fmt_num(l1, sizeof l1, g->conf_low, 3),
                                 bh_fmt_num(l2, sizeof l2, g->conf_high, 3));
                        const char *row[6] = {fg->name, g->at,
                                              bh_fmt_num(a1, sizeof a1, g->estimate, 4),
                                              bh_fmt_num(a2, sizeof a2, g->std_error, 4),
                                              bh_fmt_pvalue(a3, sizeof a3, g->p_value), a4};
                        bh_table_add_row(t, row);
                    }
                    bh_table **v = realloc(r->slope_tables,
                                           (r->nslope_tables + 1) * sizeof *v);
                    if (v) {
                        r->slope_tables = v;
                        v[r->nslope_tables++] = t;
                        t = NULL;
                    }
                }
                bh_table_free(t);
                bh_margins_result_free(sr);
            }
        } else { /* interaction: predictions over x at the moderator values */
            double lo, hi;
            var_range(md, data, fg->x, &lo, &hi);
            grid = grid_spec(fg->x, lo, hi, 31);
            snprintf(mod_at, sizeof mod_at, "%s=%s", fg->moderator, atvals);
            atlist[0] = grid;
            atlist[1] = mod_at;
            mo.at = (const char *const *)atlist;
            mo.nat = 2;
            mo.predict = 1;
            mo.ndydx = 0;
            po.x = fg->x;
            bh_margins_result *mr = NULL;
            s = grid ? bh_margins_compute(&mm, &mo, &mr, &e2) : BH_ENOMEM;
            if (s == BH_OK) {
                margins_arg ma = {mr, fg->model, fg->component};
                s = write_file(r, csv_rel, write_margins_csv, &ma, err);
            } else if (s != BH_ENOMEM)
                notice(r, "figure %s: %s", fg->name, e2.msg);
            bh_margins_result_free(mr);
        }
        free(grid);
        if (s == BH_OK) {
            bh_frame *mf = NULL;
            char *p = out_path(r, csv_rel);
            bh_csv_options co;
            bh_csv_default_options(&co);
            s = p ? bh_csv_read_path(p, &co, &mf, err) : BH_ENOMEM;
            free(p);
            if (s == BH_OK)
                s = strcmp(fg->kind, "slopes") == 0 ? bh_plot_slopes(mf, &po, &chart, err)
                                                    : bh_plot_interaction(mf, &po, &chart, err);
            bh_frame_free(mf);
        } else if (s != BH_ENOMEM) {
            return BH_OK; /* noticed above */
        }
    }
    if (s != BH_OK) {
        bh_chart_free(chart);
        return s;
    }
    chart_arg ca = {chart};
    s = write_file(r, gp_rel, write_chart, &ca, err);
    bh_chart_free(chart);
    int png = 0;
    if (s == BH_OK) {
        bh_error e3;
        if (render_chart(r, gp_rel, &png, &e3) != BH_OK)
            notice(r, "figure %s not rendered: %s", fg->name, e3.msg);
    }
    if (s == BH_OK && add_figure(r, fg->name, fg->title, png) != BH_OK)
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
    return s;
}

/* ---- report ------------------------------------------------------------------------ */

static bh_status write_file_copy_table(FILE *out, const bh_table *t, bh_format f, bh_error *err)
{
    return bh_table_render(t, f, out, err);
}

static bh_status cat_file(const run *r, FILE *out, const char *rel)
{
    char *p = out_path(r, rel);
    FILE *fp = p ? fopen(p, "r") : NULL;
    free(p);
    if (!fp)
        return BH_EOUTPUT;
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0)
        fwrite(buf, 1, k, out);
    fclose(fp);
    return BH_OK;
}

static void report_header(const run *r, FILE *out, int html)
{
    const bh_study *st = r->study;
    const char *h1 = html ? "<h1>" : "# ", *h1e = html ? "</h1>\n" : "\n\n";
    fputs(h1, out);
    fputs("Replication report: ", out);
    if (html)
        bh_write_html(out, st->name);
    else
        fputs(st->name, out);
    fputs(h1e, out);
    const char *lines[8];
    char l0[2048], l1[512], l2[512], l3[512], l4[512], l5[512];
    snprintf(l0, sizeof l0, "Study: %s", st->citation ? st->citation : st->name);
    snprintf(l1, sizeof l1, "Command: %s", r->opt->command ? r->opt->command : "blackhole replicate");
    snprintf(l2, sizeof l2, "Specification: %s", st->path);
    snprintf(l3, sizeof l3, "Unit-level data: %s (SHA-256 %s)", r->path[0], r->hash[0]);
    if (r->path[1])
        snprintf(l4, sizeof l4, "Lead-level data: %s (SHA-256 %s)", r->path[1], r->hash[1]);
    else
        snprintf(l4, sizeof l4, "Lead-level data: none");
    snprintf(l5, sizeof l5, "Versions: blackhole %s, GSL %s, jansson %s; data seed in the spec: "
             "%llu", r->opt->version, GSL_VERSION, JANSSON_VERSION,
             (unsigned long long)st->seed);
    lines[0] = l0;
    lines[1] = l1;
    lines[2] = l2;
    lines[3] = l3;
    lines[4] = l4;
    lines[5] = l5;
    lines[6] = st->notes;
    fputs(html ? "<ul>\n" : "", out);
    for (int k = 0; k < 7; k++) {
        if (!lines[k])
            continue;
        if (html) {
            fputs("<li>", out);
            bh_write_html(out, lines[k]);
            fputs("</li>\n", out);
        } else
            fprintf(out, "- %s\n", lines[k]);
    }
    fputs(html ? "</ul>\n" : "\n", out);
}

static bh_status write_report(run *r, FILE *out, const void *a, bh_error *err)
{
    int html = *(const int *)a;
    bh_format tf = html ? BH_FMT_HTML : BH_FMT_MD;
    if (html)
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<title>Replication report</title>\n<style>\n"
              "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
              "padding:0 1em;color:#222;line-height:1.45}\n"
              "table{border-collapse:collapse;margin:1em 0;font-size:.92em}\n"
              "th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}\n"
              "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
              "caption{font-weight:600;text-align:left;padding:.4em 0}\n"
              "tfoot td{font-size:.85em;color:#555;border:none}\n"
              "img{max-width:100%;border:1px solid #eee}\n"
              "</style></head><body>\n", out);
    report_header(r, out, html);
    const char *sec[] = {"Scorecard",
                         ("Table 1: descriptive statistics, correlations, reliabilities"),
                         "Table 2: unit-level models",
                         "Table 3: lead-level models", "Simple slopes", "Figures",
                         "Notes"};
#define SECTION(i)                                                                   \
    do {                                                                             \
        if (html) {                                                                  \
            fputs("<h2>", out);                                                      \
            bh_write_html(out, sec[i]);                                              \
            fputs("</h2>\n", out);                                                   \
        } else                                                                       \
            fprintf(out, "## %s\n\n", sec[i]);                                       \
    } while (0)
    SECTION(0);
    bh_table *sc = scorecard_table(r);
    if (!sc)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_status s = write_file_copy_table(out, sc, tf, err);
    bh_table_free(sc);
    if (s != BH_OK)
        return s;
    const char *tabs[3] = {"table1", "table2", "table3"};
    for (int k = 0; k < 3; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "%s.%s", tabs[k], html ? "html.part" : "md");
        SECTION(1 + k);
        if (html) {
            /* HTML tables are rendered into the report directly */
            char mdrel[64];
            snprintf(mdrel, sizeof mdrel, "%s.md", tabs[k]);
            fputs("<pre>", out);
            char txt[64];
            snprintf(txt, sizeof txt, "%s.txt", tabs[k]);
            char *p = out_path(r, txt);
            FILE *fp = p ? fopen(p, "r") : NULL;
            free(p);
            if (fp) {
                char buf[4096];
                while (fgets(buf, sizeof buf, fp))
                    bh_write_html(out, buf);
                fclose(fp);
            } else
                fputs("(not produced)", out);
            fputs("</pre>\n", out);
        } else if (cat_file(r, out, rel) != BH_OK)
            fputs("(not produced)\n", out);
        fputc('\n', out);
    }
    SECTION(4);
    for (size_t k = 0; k < r->nslope_tables; k++) {
        if ((s = bh_table_render(r->slope_tables[k], tf, out, err)) != BH_OK)
            return s;
        fputc('\n', out);
    }
    SECTION(5);
    for (size_t k = 0; k < r->nfigs; k++) {
        if (html) {
            fputs("<figure>", out);
            if (r->fig_png[k])
                fprintf(out, "<img src=\"figures/%s.png\" alt=\"", r->figs[k]);
            if (r->fig_png[k]) {
                bh_write_html(out, r->fig_titles[k]);
                fputs("\">", out);
            }
            fputs("<figcaption>", out);
            bh_write_html(out, r->fig_titles[k]);
            fprintf(out, " (<a href=\"figures/%s.gp\">gnuplot script</a>)</figcaption></figure>\n",
                    r->figs[k]);
        } else {
            if (r->fig_png[k])
                fprintf(out, "![%s](figures/%s.png)\n\n", r->fig_titles[k], r->figs[k]);
            fprintf(out, "*%s* (script: `figures/%s.gp`)\n\n", r->fig_titles[k], r->figs[k]);
        }
    }
    SECTION(6);
    const char *fixed[] = {
        "Moderators listed under [transform] in the specification are mean-centred within each "
        "model's estimation sample (center() in the formulas), so main effects are effects at "
        "the mean of the other variables.",
        "Verdicts: replicated = significant at the 5% level with the published sign; opposite "
        "sign = significant with the other sign; not significant otherwise. Findings the paper "
        "did not report are estimated but not scored.",
    };
    for (size_t k = 0; k < 2 + r->res->nnotices; k++) {
        const char *t = k < 2 ? fixed[k] : r->res->notices[k - 2];
        if (html) {
            fputs("<p>", out);
            bh_write_html(out, t);
            fputs("</p>\n", out);
        } else
            fprintf(out, "- %s\n", t);
    }
    if (html)
        fputs("</body></html>\n", out);
    return ferror(out) ? bh_error_set(err, BH_EOUTPUT, "write error") : BH_OK;
#undef SECTION
}

/* ---- driver --------------------------------------------------------------------------- */

void bh_replicate_result_free(bh_replicate_result *r)
{
    if (!r)
        return;
    for (size_t k = 0; k < r->nscores; k++) {
        bh_score *s = &r->scores[k];
        free(s->finding);
        free(s->claim);
        free(s->term);
        free(s->model);
        free(s->scale);
        free(s->component);
        free(s->verdict);
    }
    free(r->scores);
    for (size_t k = 0; k < r->nfiles; k++)
        free(r->files[k]);
    free(r->files);
    for (size_t k = 0; k < r->nnotices; k++)
        free(r->notices[k]);
    free(r->notices);
    free(r);
}

static void run_free(run *r)
{
    for (int k = 0; k < 2; k++) {
        bh_frame_free(r->data[k]);
        free(r->path[k]);
    }
    if (r->models)
        for (size_t m = 0; m < r->study->nmodels; m++) {
            bh_model_free(r->models[m]);
            free(r->model_error[m]);
        }
    free(r->models);
    free(r->model_error);
    for (size_t k = 0; k < r->nscales; k++)
        bh_scale_result_free(&r->scales[k]);
    free(r->scales);
    free(r->gnuplot);
    bh_plot_labels_free(r->labels);
    for (size_t k = 0; k < r->nfigs; k++) {
        free(r->figs[k]);
        free(r->fig_titles[k]);
    }
    free(r->figs);
    free(r->fig_titles);
    free(r->fig_png);
    for (size_t k = 0; k < r->nslope_tables; k++)
        bh_table_free(r->slope_tables[k]);
    free(r->slope_tables);
}

static bh_status load_labels(run *r)
{
    const char *cb = r->study->codebook;
    if (!cb)
        return BH_OK;
    char buf[4096];
    if (r->opt->data_dir) {
        snprintf(buf, sizeof buf, "%s/%s", r->opt->data_dir, base_name(cb));
        cb = buf;
    }
    bh_frame *f = NULL;
    bh_csv_options co;
    bh_csv_default_options(&co);
    bh_error e2;
    if (bh_csv_read_path(cb, &co, &f, &e2) != BH_OK)
        return notice(r, "codebook not read (%s): charts use column names", e2.msg);
    bh_status s = bh_plot_labels_from_frame(f, cb, &r->labels, &e2);
    if (s != BH_OK) {
        bh_frame_free(f);
        return notice(r, "codebook not used (%s)", e2.msg);
    }
    /* Figure labels are short: the codebook label up to its first ':'
     * ("... : composite (mean of the answered items)" describes the
     * column, not the construct), with the unit when it is short. */
    const bh_column *lab = bh_frame_col(f, "label"), *unit = bh_frame_col(f, "unit"),
                    *col = bh_frame_col(f, "column");
    for (size_t i = 0; lab && col && i < r->labels->n; i++) {
        for (size_t row = 0; row < f->nrow; row++) {
            if (col->type != BH_COL_CATEGORICAL || col->code[row] < 0 ||
                strcmp(col->levels[col->code[row]], r->labels->column[i]) != 0)
                continue;
            const char *l = lab->type == BH_COL_CATEGORICAL && lab->code[row] >= 0
                                ? lab->levels[lab->code[row]] : NULL;
            const char *u = unit && unit->type == BH_COL_CATEGORICAL && unit->code[row] >= 0
                                ? unit->levels[unit->code[row]] : NULL;
            if (!l)
                break;
            size_t n = strcspn(l, ":");
            char buf[256];
            if (u && *u && strlen(u) <= 24)
                snprintf(buf, sizeof buf, "%.*s (%s)", (int)(n < 200 ? n : 200), l, u);
            else
                snprintf(buf, sizeof buf, "%.*s", (int)(n < 200 ? n : 200), l);
            char *d = bh_strdup(buf);
            if (d) {
                free(r->labels->label[i]);
                r->labels->label[i] = d;
            }
            break;
        }
    }
    bh_frame_free(f);
    return BH_OK;
}

bh_status bh_replicate_run(const bh_study *study, const bh_replicate_options *opt,
                           bh_replicate_result **out, bh_error *err)
{
    *out = NULL;
    bh_replicate_options dflt;
    if (!opt) {
        bh_replicate_default_options(&dflt);
        opt = &dflt;
    }
    run r;
    memset(&r, 0, sizeof r);
    r.study = study;
    r.opt = opt;
    r.res = calloc(1, sizeof *r.res);
    if (!r.res)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_status s = load_data(&r, err);
    for (int lv = 0; s == BH_OK && lv < 2; lv++)
        if (r.data[lv])
            s = bh_study_check_data(study, (bh_study_level)lv, r.data[lv], err);
    if (s == BH_OK)
        s = make_dir(opt->out_dir, err);
    const char *subdirs[2] = {"figures", "models"};
    for (int k = 0; s == BH_OK && k < 2; k++) {
        char *sub = out_path(&r, subdirs[k]);
        s = sub ? make_dir(sub, err) : bh_error_set(err, BH_ENOMEM, "out of memory");
        free(sub);
    }
    if (s == BH_OK)
        s = score_scales(&r, err);
    if (s == BH_OK) {
        progress(&r, "Table 1: descriptives, correlations, reliabilities");
        s = table1(&r, err);
    }
    if (s == BH_OK)
        s = fit_models(&r, err);
    if (s == BH_OK) {
        progress(&r, "Tables 2 and 3: models side by side");
        s = model_tables(&r, err);
    }
    if (s == BH_OK) {
        progress(&r, "scoring %zu findings", study->nfindings);
        s = score_findings(&r, err);
    }
    if (s == BH_OK)
        s = write_file(&r, "scorecard.csv", write_scorecard, NULL, err);
    if (s == BH_OK) {
        r.gnuplot = opt->render ? bh_render_find("gnuplot", getenv("PATH")) : NULL;
        if (opt->render && !r.gnuplot)
            notice(&r, "gnuplot not found: figures are written as scripts only");
        s = load_labels(&r);
    }
    for (size_t k = 0; s == BH_OK && k < study->nfigures; k++) {
        progress(&r, "figure %s", study->figures[k].name);
        s = figure(&r, &study->figures[k], err);
    }
    int md = 0, html = 1;
    if (s == BH_OK)
        s = write_file(&r, "report.md", write_report, &md, err);
    if (s == BH_OK)
        s = write_file(&r, "report.html", write_report, &html, err);
    run_free(&r);
    if (s != BH_OK) {
        bh_replicate_result_free(r.res);
        return s;
    }
    *out = r.res;
    return BH_OK;
}
