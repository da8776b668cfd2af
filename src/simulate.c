/* simulate.c - Monte Carlo batches from a study's DGP (see simulate.h). */
#include "blackhole/simulate.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "blackhole/atomicfile.h"
#include "blackhole/describe.h"
#include "blackhole/generate.h"
#include "blackhole/model.h"
#include "blackhole/plot.h"
#include "blackhole/replicate.h"
#include "blackhole/strutil.h"

#define DEFAULT_REPS 200
#define DEFAULT_TRUTH_N 100000
#define DEFAULT_ALPHA 0.05
/* Fields of a replications.csv line. */
#define NFIELD 16
static const char REP_HEADER[] =
    "replication,n,effect_scale,index,model,component,term,estimate,std_error,conf_low,"
    "conf_high,p_value,status,iterations,warnings,message\n";
static const char TRUTH_HEADER[] = "effect_scale,model,component,term,true,finding,sign\n";

void bh_simulate_default_options(bh_simulate_options *o)
{
    memset(o, 0, sizeof *o);
    o->reps = DEFAULT_REPS;
    o->truth_n = DEFAULT_TRUTH_N;
    o->alpha = DEFAULT_ALPHA;
}

/* ---- text buffers ---------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

/* Room for extra more bytes (and a NUL); 0 (and oom set) when out of memory. */
static int sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t nc = (b->cap ? b->cap * 2 : 256) + extra + 1;
    char *ns = realloc(b->s, nc);
    if (!ns) {
        b->oom = 1;
        return 0;
    }
    b->s = ns;
    b->cap = nc;
    return 1;
}

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int k = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)k < room) {
            b->len += (size_t)k;
            return;
        }
        if (!sb_reserve(b, (size_t)k))
            return;
    }
}

/* Append len bytes (the text paths: one call per field, not per byte). */
static void sb_mem(sbuf *b, const char *s, size_t len)
{
    if (!sb_reserve(b, len))
        return;
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

/* ---- "%.17g" without printf ---------------------------------------------------------
 *
 * replications.csv holds 75 numbers per replication at n = 461, and glibc's
 * printf formats each through its multi-precision path.  The 17 significant
 * digits are computed here exactly in integers instead: a = m 2^e (m < 2^53)
 * times 10^s = 5^s 2^s is P 2^(e+s) with P = m 5^s, so the digits are P
 * shifted right, rounded half to even on the exact remainder, as glibc
 * rounds in the default rounding mode.  P fits 128 bits up to s = 27
 * (a >= 1e-11), a few 64-bit limbs below that.  Values from 1e17 up (the
 * digits would need a division) and non-finite ones go to snprintf.  The
 * unit test compares the bytes with snprintf on millions of doubles. */

#define G17_LIMBS 16  /* m 5^s for s <= 340 (subnormals): < 2^850 */

static const uint64_t g17_pow5[28] = {
    1ULL, 5ULL, 25ULL, 125ULL, 625ULL, 3125ULL, 15625ULL, 78125ULL, 390625ULL,
    1953125ULL, 9765625ULL, 48828125ULL, 244140625ULL, 1220703125ULL, 6103515625ULL,
    30517578125ULL, 152587890625ULL, 762939453125ULL, 3814697265625ULL,
    19073486328125ULL, 95367431640625ULL, 476837158203125ULL, 2384185791015625ULL,
    11920928955078125ULL, 59604644775390625ULL, 298023223876953125ULL,
    1490116119384765625ULL, 7450580596923828125ULL};

/* floor and round-half-even of P / 2^k for P = m 5^s: digits D (< 2^64)
 * and whether the floor was already >= 10^17 or < 10^16 (then E is off). */
static uint64_t g17_digits(uint64_t m, int s, int k, uint64_t *floor_out)
{
    /* k = -(e + s) > 0 here: the number has a fractional part. */
    if (s <= 27) {
        unsigned __int128 P = (unsigned __int128)m * g17_pow5[s];
        uint64_t q;
        int up;
        if (k >= 128) {
            q = 0;
            up = 0;
        } else {
            unsigned __int128 qq = P >> k;
            unsigned __int128 rem = P - (qq << k);
            unsigned __int128 half = (unsigned __int128)1 << (k - 1);
            q = (uint64_t)qq;
            up = rem > half || (rem == half && (q & 1));
        }
        *floor_out = q;
        return q + (uint64_t)up;
    }
    uint64_t L[G17_LIMBS] = {m};
    size_t nl = 1;
    while (s > 0) {
        int t = s < 27 ? s : 27;
        uint64_t f = g17_pow5[t];
        unsigned __int128 carry = 0;
        for (size_t i = 0; i < nl; i++) {
            unsigned __int128 x = (unsigned __int128)L[i] * f + carry;
            L[i] = (uint64_t)x;
            carry = x >> 64;
        }
        if (carry)
            L[nl++] = (uint64_t)carry;
        s -= t;
    }
    /* q = P >> k (< 2^64 as D < 10^18), rem compared with 2^(k-1) */
    size_t w = (size_t)k / 64;
    int b = k % 64;
    uint64_t lo = w < nl ? L[w] : 0, hi = w + 1 < nl ? L[w + 1] : 0;
    uint64_t q = b ? (lo >> b) | (hi << (64 - b)) : lo;
    int hb = (k - 1) % 64;
    size_t hw = (size_t)(k - 1) / 64;
    int halfbit = hw < nl ? (int)((L[hw] >> hb) & 1) : 0;
    int below = hb ? (L[hw] & ((UINT64_C(1) << hb) - 1)) != 0 : 0;
    for (size_t i = 0; i < hw && !below; i++)
        below = L[i] != 0;
    *floor_out = q;
    return q + (uint64_t)(halfbit && (below || (q & 1)));
}

/* "%.17g" of v into buf (at least 32 bytes), returning the length; the
 * same bytes as snprintf(buf, 32, "%.17g", v). */
static size_t fmt_g17(double v, char *buf)
{
    double a = fabs(v);
    if (!isfinite(v) || a >= 1e17 || a == 0)
        return (size_t)snprintf(buf, 32, "%.17g", v);
    int ex;
    double fr = frexp(a, &ex);                   /* a = fr 2^ex, fr in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(fr, 53);         /* exact: fr has <= 53 bits */
    int e = ex - 53;
    int E = (int)floor(log10(a));                 /* may be off by one */
    if (E > 16)
        E = 16;                                  /* a < 1e17 */
    uint64_t D = 0, fl = 0;
    for (int tries = 0; tries < 3; tries++) {
        int s = 16 - E;
        if (e + s >= 0) {
            /* an integer, m 5^s 2^(e+s) < 10^18 (a < 1e17, s small) */
            D = fl = (m * g17_pow5[s]) << (e + s);
        } else {
            D = g17_digits(m, s, -(e + s), &fl);
        }
        if (fl < UINT64_C(10000000000000000))
            E--;
        else if (fl >= UINT64_C(100000000000000000) && E < 16)
            E++;
        else
            break;
    }
    int X = E;
    if (D == UINT64_C(100000000000000000)) {
        D = UINT64_C(10000000000000000);
        X = E + 1;
    }
    char dig[17];
    for (int i = 16; i >= 0; i--) {
        dig[i] = (char)('0' + D % 10);
        D /= 10;
    }
    int nd = 17;                                 /* significant digits kept */
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    size_t L = 0;
    if (v < 0)
        buf[L++] = '-';
    if (X < -4 || X >= 17) {
        buf[L++] = dig[0];
        if (nd > 1) {
            buf[L++] = '.';
            memcpy(buf + L, dig + 1, (size_t)nd - 1);
            L += (size_t)nd - 1;
        }
        buf[L++] = 'e';
        buf[L++] = X < 0 ? '-' : '+';
        int ax = X < 0 ? -X : X;
        if (ax >= 100)
            buf[L++] = (char)('0' + ax / 100);
        buf[L++] = (char)('0' + ax / 10 % 10);
        buf[L++] = (char)('0' + ax % 10);
    } else if (X >= 0) {
        memcpy(buf + L, dig, (size_t)X + 1);
        L += (size_t)X + 1;
        if (nd > X + 1) {
            buf[L++] = '.';
            memcpy(buf + L, dig + X + 1, (size_t)(nd - X - 1));
            L += (size_t)(nd - X - 1);
        }
    } else {
        buf[L++] = '0';
        buf[L++] = '.';
        for (int i = 0; i < -X - 1; i++)
            buf[L++] = '0';
        memcpy(buf + L, dig, (size_t)nd);
        L += (size_t)nd;
    }
    buf[L] = '\0';
    return L;
}

size_t bh_simulate_fmt_g17(double v, char *buf)
{
    return fmt_g17(v, buf);
}

/* A count in decimal (as %zu). */
static void sb_uint(sbuf *b, size_t v)
{
    char t[24];
    size_t k = sizeof t;
    do {
        t[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_mem(b, t + k, sizeof t - k);
}

/* A number for replications.csv: round-trip exact (%.17g), NA when NAN. */
static void sb_num(sbuf *b, double v)
{
    if (isnan(v)) {
        sb_mem(b, "NA", 2);
    } else if (isinf(v)) {
        sb_mem(b, v > 0 ? "Inf" : "-Inf", v > 0 ? 3 : 4);
    } else {
        char t[32];
        sb_mem(b, t, fmt_g17(v, t));
    }
}

/* The shortest %g text that reads back as exactly v (design values), into
 * buf (40 bytes); its length. */
static size_t exact_text(double v, char *buf)
{
    int k = 0;
    for (int prec = 15; prec <= 17; prec++) {
        k = snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return k > 0 ? (size_t)k : 0;
}

static void sb_exact(sbuf *b, double v)
{
    char buf[40];
    sb_mem(b, buf, exact_text(v, buf));
}

/* A number for the summaries (12 significant digits are plenty). */
static void put_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("NA", f);
    else if (isinf(v))
        fputs(v > 0 ? "Inf" : "-Inf", f);
    else
        fprintf(f, "%.12g", v);
}

/* Text in a field: commas, quotes and line breaks become harmless so that
 * the files need no quoting (messages and names only). */
static void sb_text(sbuf *b, const char *s)
{
    size_t start = b->len;
    sb_mem(b, s ? s : "", s ? strlen(s) : 0);
    for (size_t k = start; !b->oom && k < b->len; k++) {
        char c = b->s[k];
        if (c == ',')
            c = ';';
        else if (c == '"')
            c = '\'';
        else if ((unsigned char)c < 0x20 || c == 0x7f)
            c = ' ';
        b->s[k] = c;
    }
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    while (s) {
        size_t k = fread(s + n, 1, cap - n - 1, f);
        n += k;
        if (n + 1 < cap)
            break;
        char *t = realloc(s, cap *= 2);
        if (!t) {
            free(s);
            s = NULL;
        } else
            s = t;
    }
    int bad = ferror(f);
    fclose(f);
    if (!s || bad) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

/* ---- the plan ------------------------------------------------------------------- */

typedef struct {
    size_t study_index;
    bh_model_spec spec;
    char *formula;
    bh_study_level level;
} plan_model;

struct bh_simulate_plan {
    const bh_study *study;
    char *study_path;
    bh_simulate_options opt;    /* arrays below replace the borrowed ones */
    uint64_t seed;
    size_t *n;
    size_t nn;
    double *scales;
    size_t nscales;
    plan_model *models;
    size_t nmodels;
    int need_leads;
    size_t ndesign;
};

static void plan_free_models(bh_simulate_plan *p)
{
    for (size_t k = 0; k < p->nmodels; k++)
        free(p->models[k].formula);
    free(p->models);
}

void bh_simulate_plan_free(bh_simulate_plan *p)
{
    if (!p)
        return;
    plan_free_models(p);
    free(p->n);
    free(p->scales);
    free(p->study_path);
    free(p);
}

size_t bh_simulate_plan_size(const bh_simulate_plan *p)
{
    return p->ndesign * p->opt.reps;
}

static int has_model(const bh_simulate_plan *p, size_t m)
{
    for (size_t k = 0; k < p->nmodels; k++)
        if (p->models[k].study_index == m)
            return 1;
    return 0;
}

static bh_status add_model(bh_simulate_plan *p, size_t m, bh_error *err)
{
    if (has_model(p, m))
        return BH_OK;
    plan_model *pm = &p->models[p->nmodels];
    memset(pm, 0, sizeof *pm);
    bh_status s = bh_study_model_spec(p->study, m, &pm->spec, &pm->formula, err);
    /* a replication records estimates, SEs, intervals and p-values only */
    pm->spec.lean = 1;
    /* the pool runs one fit per worker thread (the pseudo-true values
     * too), so a fit's own passes stay on its thread */
    pm->spec.threads = 1;
    if (s != BH_OK)
        return s;
    pm->study_index = m;
    pm->level = p->study->models[m].data;
    p->need_leads |= pm->level == BH_LEVEL_LEADS;
    p->nmodels++;
    return BH_OK;
}

bh_status bh_simulate_plan_new(const bh_study *s, const char *study_path,
                               const bh_simulate_options *o, bh_simulate_plan **out,
                               bh_error *err)
{
    *out = NULL;
    if (!s->dgp.present)
        return bh_error_set(err, BH_EUSAGE, "%s: the spec has no [dgp] section to simulate from",
                            s->path ? s->path : "study");
    if (o->reps < 1)
        return bh_error_set(err, BH_EUSAGE, "--reps must be at least 1");
    if (o->nshards > 1 && o->shard >= o->nshards)
        return bh_error_set(err, BH_EUSAGE, "--shard %zu/%zu: the shard number must be 1..%zu",
                            o->shard + 1, o->nshards, o->nshards);
    if (!(o->alpha > 0 && o->alpha < 1))
        return bh_error_set(err, BH_EUSAGE, "alpha %g must lie strictly between 0 and 1",
                            o->alpha);
    if (o->truth_n < 2)
        return bh_error_set(err, BH_EUSAGE, "--truth-n must be at least 2");
    bh_simulate_plan *p = calloc(1, sizeof *p);
    if (!p)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    p->study = s;
    p->opt = *o;
    p->seed = o->seed_set ? o->seed : s->seed;
    p->study_path = bh_strdup(study_path ? study_path : (s->path ? s->path : ""));
    p->nn = o->n ? o->nn : 1;
    p->nscales = o->scales ? o->nscales : 1;
    p->n = malloc(p->nn * sizeof *p->n);
    p->scales = malloc(p->nscales * sizeof *p->scales);
    p->models = calloc(s->nmodels ? s->nmodels : 1, sizeof *p->models);
    bh_status st = BH_OK;
    if (!p->study_path || !p->n || !p->scales || !p->models) {
        st = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto fail;
    }
    if (p->nn == 0 || p->nscales == 0) {
        st = bh_error_set(err, BH_EUSAGE, "--n and --scale-effects need at least one value");
        goto fail;
    }
    for (size_t k = 0; k < p->nn; k++) {
        p->n[k] = o->n ? o->n[k] : s->dgp.n;
        if (p->n[k] < 2) {
            st = bh_error_set(err, BH_EUSAGE, "--n: sample size %zu is below 2", p->n[k]);
            goto fail;
        }
    }
    for (size_t k = 0; k < p->nscales; k++) {
        p->scales[k] = o->scales ? o->scales[k] : 1.0;
        if (!isfinite(p->scales[k])) {
            st = bh_error_set(err, BH_EUSAGE, "--scale-effects: effect scales must be finite");
            goto fail;
        }
    }
    if (o->models) {
        for (size_t k = 0; k < o->nmodels; k++) {
            long m = bh_study_model_index(s, o->models[k]);
            if (m < 0) {
                char q[128];
                sbuf names = {0};
                for (size_t j = 0; j < s->nmodels; j++)
                    sb_add(&names, "%s%s", j ? ", " : "", s->models[j].name);
                st = bh_error_set(err, BH_EUSAGE, "--models: unknown model '%s' in %s (the spec has: %s)",
                                  bh_quote(q, sizeof q, o->models[k], 60),
                                  s->path ? s->path : "the spec", names.s ? names.s : "none");
                free(names.s);
                goto fail;
            }
            if ((st = add_model(p, (size_t)m, err)) != BH_OK)
                goto fail;
        }
    } else {
        for (size_t k = 0; k < s->nfindings; k++)
            if ((st = add_model(p, s->findings[k].model_index, err)) != BH_OK)
                goto fail;
    }
    if (p->nmodels == 0) {
        st = bh_error_set(err, BH_EUSAGE,
                          "no models to fit: the spec has no findings; choose with --models");
        goto fail;
    }
    if (p->need_leads && !s->dgp.leads_count) {
        st = bh_error_set(err, BH_EUSAGE,
                          "a lead-level model needs leads_count in the spec's [dgp] section");
        goto fail;
    }
    p->ndesign = p->nn * p->nscales;
    p->opt.n = NULL;
    p->opt.scales = NULL;
    p->opt.models = NULL;
    *out = p;
    return BH_OK;
fail:
    bh_simulate_plan_free(p);
    return st;
}

/* ---- one replication ------------------------------------------------------------- */

/* A worker's workspace, reused by every replication it runs: the data
 * generator and the frames it fills, one model workspace per chosen model
 * (parsed formula, design buffers, GLM workspace), the text buffers. */
struct bh_simulate_worker {
    const bh_simulate_plan *p;
    bh_generate_workspace *gen;
    bh_frame *data[2];          /* the last replication's data sets */
    bh_model_workspace **mws;   /* per plan model */
    sbuf blk, head;
    double *vals;               /* the block's coefficient lines: 5 numbers each */
    size_t nlines, cvals;
    double scale_v;             /* the effect scale whose text is scale_txt */
    char scale_txt[40];
    size_t scale_len;           /* 0: none yet */
};

bh_simulate_worker *bh_simulate_worker_alloc(const bh_simulate_plan *p)
{
    bh_simulate_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->p = p;
    w->gen = bh_generate_workspace_alloc(p->study);
    w->mws = calloc(p->nmodels, sizeof *w->mws);
    int ok = w->gen && w->mws;
    for (size_t m = 0; ok && m < p->nmodels; m++)
        ok = (w->mws[m] = bh_model_workspace_alloc(&p->models[m].spec)) != NULL;
    if (!ok) {
        bh_simulate_worker_free(w);
        return NULL;
    }
    return w;
}

void bh_simulate_worker_free(bh_simulate_worker *w)
{
    if (!w)
        return;
    bh_generate_workspace_free(w->gen);
    for (size_t m = 0; w->mws && m < w->p->nmodels; m++)
        bh_model_workspace_free(w->mws[m]);
    free(w->mws);
    bh_frame_free(w->data[0]);
    bh_frame_free(w->data[1]);
    free(w->blk.s);
    free(w->head.s);
    free(w->vals);
    free(w);
}

/* Data columns take the spec's names ([columns] maps spec -> data). */
static bh_status apply_colmap(const bh_study *st, bh_frame *f, bh_error *err)
{
    for (size_t k = 0; k < st->ncolumns; k++) {
        const bh_study_colmap *m = &st->columns[k];
        if (strcmp(m->spec_name, m->column) == 0)
            continue;
        long j = bh_frame_index(f, m->column);
        if (j >= 0 && bh_frame_index(f, m->spec_name) < 0) {
            char *nm = bh_strdup(m->spec_name);
            if (!nm)
                return bh_error_set(err, BH_ENOMEM, "out of memory");
            free(f->cols[j].name);
            f->cols[j].name = nm;
        }
    }
    return BH_OK;
}

/* One generated data set, ready for the models: spec names, scale
 * composites scored (replicate does the same to the shipped data).
 * data[] holds NULL or the frames of an earlier call, filled again in
 * place when they fit (bh_generate_ws_reuse); freed and NULL on error. */
static bh_status make_data(bh_generate_workspace *gen, const bh_simulate_plan *p, size_t n,
                           double scale, uint64_t index, bh_frame *data[2], bh_error *err)
{
    bh_generate_options go;
    bh_generate_default_options(&go);
    go.seed = p->seed;
    go.seed_set = 1;
    go.index = index;
    go.n_reps = n;
    go.effect_scale = scale;
    go.keep_appended = 1;  /* the composites below, scored again in place */
    if (!p->need_leads) {
        bh_frame_free(data[1]);
        data[1] = NULL;
    }
    bh_status s = bh_generate_ws_reuse(gen, &go, &data[0], p->need_leads ? &data[1] : NULL,
                                       err);
    for (int lv = 0; s == BH_OK && lv < 2; lv++)
        if (data[lv])
            s = apply_colmap(p->study, data[lv], err);
    const bh_study *st = p->study;
    for (size_t k = 0; s == BH_OK && k < st->nscales; k++) {
        const bh_study_scale *sc = &st->scales[k];
        bh_frame *f = data[sc->data];
        long j = f ? bh_frame_index(f, sc->name) : -1;
        if (!f || (j >= 0 && (size_t)j < bh_generate_ncol(st, sc->data)))
            continue;  /* a generated column of that name is the data's own */
        /* a composite of an earlier replication, kept by the refill: the
         * same numbers bh_scale_score gives, into its memory */
        s = j >= 0 ? bh_scale_score_into(f, (size_t)j, (const char *const *)sc->items,
                                         sc->nitems, err)
                   : bh_scale_score(f, sc->name, (const char *const *)sc->items, sc->nitems,
                                    NULL, err);
    }
    if (s != BH_OK) {
        bh_frame_free(data[0]);
        bh_frame_free(data[1]);
        data[0] = data[1] = NULL;
    }
    return s;
}

/* "w,n,scale,i," of every line of a replication, formatted once; the
 * scale's text is kept in the worker (the same for a design point's reps). */
static void line_head(bh_simulate_worker *wk, sbuf *b, size_t w, size_t n, double scale,
                      size_t i)
{
    if (!wk->scale_len || memcmp(&wk->scale_v, &scale, sizeof scale) != 0) {
        wk->scale_len = exact_text(scale, wk->scale_txt);
        wk->scale_v = scale;
    }
    sb_uint(b, w);
    sb_mem(b, ",", 1);
    sb_uint(b, n);
    sb_mem(b, ",", 1);
    sb_mem(b, wk->scale_txt, wk->scale_len);
    sb_mem(b, ",", 1);
    sb_uint(b, i);
    sb_mem(b, ",", 1);
}

static void put_head(sbuf *b, const sbuf *head)
{
    sb_mem(b, head->s ? head->s : "", head->len);
}

/* Room for the five numbers of the block's next coefficient line (what the
 * summaries would parse back from its text, which holds them exactly), or
 * NULL when out of memory (the block is then parsed). */
static double *keep_line(bh_simulate_worker *wk)
{
    if (wk->nlines == (size_t)-1)
        return NULL;
    if (5 * (wk->nlines + 1) > wk->cvals) {
        /* grown keeping the lines so far (the first blocks only) */
        size_t nc = wk->cvals ? 2 * wk->cvals : 5 * 64;
        double *v = realloc(wk->vals, nc * sizeof *v);
        if (!v) {
            wk->nlines = (size_t)-1;
            return NULL;
        }
        wk->vals = v;
        wk->cvals = nc;
    }
    return wk->vals + 5 * wk->nlines++;
}

/* Run work item w into wk->blk (the block's text, NUL-terminated). */
static bh_status run_one(bh_simulate_worker *wk, size_t w, size_t *failed, bh_error *err)
{
    const bh_simulate_plan *p = wk->p;
    *failed = 0;
    if (w >= bh_simulate_plan_size(p))
        return bh_error_set(err, BH_EINTERNAL, "work item %zu out of range", w);
    size_t d = w / p->opt.reps, i = w % p->opt.reps;
    size_t n = p->n[d / p->nscales];
    double scale = p->scales[d % p->nscales];
    sbuf *b = &wk->blk, *head = &wk->head;
    b->len = head->len = 0;
    b->oom = head->oom = 0;
    size_t lines = 0;
    line_head(wk, head, w, n, scale, i);
    if (head->oom)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    bh_frame **data = wk->data;
    bh_error e2;
    wk->nlines = 0;
    bh_status s = make_data(wk->gen, p, n, scale, (uint64_t)i, data, &e2);
    if (s == BH_ENOMEM)
        return bh_error_set(err, s, "out of memory");
    if (s != BH_OK) {
        /* a data error fails every model of this replication */
        for (size_t m = 0; m < p->nmodels; m++) {
            put_head(b, head);
            sb_text(b, p->study->models[p->models[m].study_index].name);
            sb_add(b, ",,,NA,NA,NA,NA,NA,error,0,0,data: ");
            sb_text(b, e2.msg);
            sb_add(b, "\n");
            lines++;
        }
        *failed = p->nmodels;
    }
    for (size_t m = 0; s == BH_OK && m < p->nmodels; m++) {
        const plan_model *pm = &p->models[m];
        const char *name = p->study->models[pm->study_index].name;
        const bh_model *md = NULL;
        bh_status fs = data[pm->level] ? bh_model_fit_ws(wk->mws[m], data[pm->level], &md, &e2)
                                       : bh_error_set(&e2, BH_EDATA, "no lead-level data");
        if (fs == BH_ENOMEM)
            return bh_error_set(err, fs, "out of memory");
        if (fs != BH_OK) {
            put_head(b, head);
            sb_text(b, name);
            sb_add(b, ",,,NA,NA,NA,NA,NA,error,0,0,");
            sb_text(b, e2.msg);
            sb_add(b, "\n");
            lines++;
            (*failed)++;
            continue;
        }
        const bh_fit *f = md->fit;
        const char *status = f->converged ? "ok" : "nonconverged";
        *failed += !f->converged;
        for (size_t j = 0; j < f->p; j++) {
            put_head(b, head);
            sb_text(b, name);
            sb_mem(b, ",", 1);
            sb_text(b, f->component && f->component[j] ? f->component[j] : "");
            sb_mem(b, ",", 1);
            sb_text(b, f->term[j]);
            double v[5] = {f->beta[j], f->se[j], f->conf_low[j], f->conf_high[j], f->p_value[j]};
            double *kept = keep_line(wk);
            for (int k = 0; k < 5; k++) {
                double x = f->aliased && f->aliased[j] ? NAN : v[k];
                sb_mem(b, ",", 1);
                sb_num(b, x);
                if (kept)
                    kept[k] = x;
            }
            /* ",status,iterations,warnings,message\n" without printf */
            sb_mem(b, ",", 1);
            sb_mem(b, status, strlen(status));
            sb_mem(b, ",", 1);
            sb_uint(b, f->iterations);
            sb_mem(b, ",", 1);
            sb_uint(b, f->nwarnings);
            sb_mem(b, ",", 1);
            if (!f->converged)
                sb_mem(b, "did not converge", 16);
            sb_mem(b, "\n", 1);
            lines++;
        }
    }
    put_head(b, head);
    sb_mem(b, ",,,,,,,,end,", 12);
    sb_uint(b, lines);
    sb_mem(b, ",,\n", 3);
    if (b->oom)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    return BH_OK;
}

bh_status bh_simulate_run_one(bh_simulate_worker *wk, size_t w, char **block, size_t *failed,
                              bh_error *err)
{
    *block = NULL;
    bh_status s = run_one(wk, w, failed, err);
    if (s != BH_OK)
        return s;
    if (!(*block = malloc(wk->blk.len + 1)))
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    memcpy(*block, wk->blk.s, wk->blk.len + 1);
    return BH_OK;
}

/* ---- design file ------------------------------------------------------------------ */

static char *cfg_text(const bh_simulate_plan *p)
{
    sbuf b = {0};
    sb_add(&b, "# blackhole simulate: the design of this directory (--resume and --merge check it)\n");
    sb_add(&b, "study = ");
    sb_text(&b, p->study_path);
    sb_add(&b, "\nstudy_name = ");
    sb_text(&b, p->study->name);
    sb_add(&b, "\nseed = %llu\nreps = %zu\nn = ", (unsigned long long)p->seed, p->opt.reps);
    for (size_t k = 0; k < p->nn; k++)
        sb_add(&b, "%s%zu", k ? "," : "", p->n[k]);
    sb_add(&b, "\neffect_scale = ");
    for (size_t k = 0; k < p->nscales; k++) {
        sb_add(&b, "%s", k ? "," : "");
        sb_exact(&b, p->scales[k]);
    }
    sb_add(&b, "\nmodels = ");
    for (size_t k = 0; k < p->nmodels; k++) {
        sb_add(&b, "%s", k ? "," : "");
        sb_text(&b, p->study->models[p->models[k].study_index].name);
    }
    sb_add(&b, "\ntruth_n = %zu\nalpha = ", p->opt.truth_n);
    sb_exact(&b, p->opt.alpha);
    sb_add(&b, "\n");
    sb_add(&b, "shard = %zu/%zu\n", p->opt.nshards > 1 ? p->opt.shard + 1 : 1,
           p->opt.nshards > 1 ? p->opt.nshards : 1);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* The design as read back: what summaries and merges need. */
typedef struct {
    char *text;                 /* the file without its shard line */
    size_t reps, nn, nscales, nmodels, shard, nshards;
    size_t *n;
    double *scales;
    char **models;
    double alpha;
} design;

static void design_free(design *g)
{
    free(g->text);
    free(g->n);
    free(g->scales);
    for (size_t k = 0; k < g->nmodels; k++)
        free(g->models[k]);
    free(g->models);
    memset(g, 0, sizeof *g);
}

static size_t count_items(const char *v)
{
    size_t k = 1;
    for (; *v; v++)
        k += *v == ',';
    return k;
}

static bh_status design_read(const char *dir, design *g, bh_error *err)
{
    memset(g, 0, sizeof *g);
    char *path = join_path(dir, "simulate.cfg");
    if (!path)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    char *text = slurp(path, NULL);
    if (!text) {
        bh_status s = bh_error_at(err, BH_EINPUT, path, 0, 0,
                                  "cannot read the design file (%s): not a simulate directory?",
                                  strerror(errno));
        free(path);
        return s;
    }
    sbuf keep = {0};
    bh_status st = BH_OK;
    size_t lineno = 0;
    for (char *line = text; *line && st == BH_OK;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *eq = strstr(line, " = ");
        if (line[0] != '#' && eq) {
            *eq = '\0';
            const char *k = line, *v = eq + 3;
            if (strcmp(k, "shard") != 0)
                sb_add(&keep, "%s = %s\n", k, v);
            if (strcmp(k, "reps") == 0)
                g->reps = (size_t)strtoull(v, NULL, 10);
            else if (strcmp(k, "alpha") == 0)
                g->alpha = strtod(v, NULL);
            else if (strcmp(k, "shard") == 0) {
                unsigned long a = 0, b2 = 0;
                if (sscanf(v, "%lu/%lu", &a, &b2) != 2 || a < 1 || a > b2)
                    st = bh_error_at(err, BH_EINPUT, path, lineno, 0, "bad shard '%s'", v);
                g->shard = a - 1;
                g->nshards = b2;
            } else if (strcmp(k, "n") == 0) {
                g->nn = count_items(v);
                if (!(g->n = malloc(g->nn * sizeof *g->n)))
                    st = bh_error_set(err, BH_ENOMEM, "out of memory");
                const char *q = v;
                for (size_t j = 0; st == BH_OK && j < g->nn; j++) {
                    char *end;
                    g->n[j] = (size_t)strtoull(q, &end, 10);
                    q = *end ? end + 1 : end;
                }
            } else if (strcmp(k, "effect_scale") == 0) {
                g->nscales = count_items(v);
                if (!(g->scales = malloc(g->nscales * sizeof *g->scales)))
                    st = bh_error_set(err, BH_ENOMEM, "out of memory");
                const char *q = v;
                for (size_t j = 0; st == BH_OK && j < g->nscales; j++) {
                    char *end;
                    g->scales[j] = strtod(q, &end);
                    q = *end ? end + 1 : end;
                }
            } else if (strcmp(k, "models") == 0) {
                g->nmodels = count_items(v);
                if (!(g->models = calloc(g->nmodels, sizeof *g->models)))
                    st = bh_error_set(err, BH_ENOMEM, "out of memory");
                const char *q = v;
                for (size_t j = 0; st == BH_OK && j < g->nmodels; j++) {
                    const char *e = strchr(q, ',');
                    size_t len = e ? (size_t)(e - q) : strlen(q);
                    if (!(g->models[j] = malloc(len + 1))) {
                        st = bh_error_set(err, BH_ENOMEM, "out of memory");
                        break;
                    }
                    memcpy(g->models[j], q, len);
                    g->models[j][len] = '\0';
                    q += len + (e != NULL);
                }
            }
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    if (st == BH_OK && (g->reps == 0 || g->nn == 0 || g->nscales == 0 || g->nmodels == 0 ||
                        !(g->alpha > 0 && g->alpha < 1)))
        st = bh_error_at(err, BH_EINPUT, path, 0, 0,
                         "incomplete design file (reps, n, effect_scale, models, alpha)");
    if (st == BH_OK && keep.oom)
        st = bh_error_set(err, BH_ENOMEM, "out of memory");
    g->text = keep.s;
    if (st != BH_OK)
        design_free(g);
    if (g->nshards == 0)
        g->nshards = 1;
    free(text);
    free(path);
    return st;
}

/* ---- truth ------------------------------------------------------------------------ */


/* The finding (with a sign) that a coefficient of study model m carries,
 * or NULL: see simulate.h for when a finding applies to a model. */
static const bh_study_finding *finding_of(const bh_study *st, size_t m, const char *component,
                                          const char *term)
{
    const bh_study_model *md = &st->models[m];
    for (size_t k = 0; k < st->nfindings; k++) {
        const bh_study_finding *fd = &st->findings[k];
        const bh_study_model *fm = &st->models[fd->model_index];
        if (fm->data != md->data)
            continue;
        const char *resp = fd->component ? fd->component : fm->responses[0];
        if (md->nresponses > 1) {
            if (!component || strcmp(component, resp) != 0)
                continue;
        } else if (strcmp(md->responses[0], resp) != 0)
            continue;
        if (bh_study_term_matches(term, fd))
            return fd;
    }
    return NULL;
}

typedef struct {
    const bh_simulate_plan *p;
    size_t npair;               /* nscales * nmodels */
    char **text;                /* per pair: truth.csv rows */
    bh_status st;
    bh_error err;
    size_t next;
    pthread_mutex_t mu;
} truth_job;

/* Pseudo-true values of pair (effect scale, model); mws: the plan's model
 * workspaces to fit in (a pool worker's, reused by its replications
 * afterwards), or NULL for a fit of its own. */
static bh_status truth_pair(const bh_simulate_plan *p, bh_generate_workspace *gen,
                            bh_model_workspace **mws, size_t pair, char **text, bh_error *err)
{
    size_t is = pair / p->nmodels, m = pair % p->nmodels;
    const plan_model *pm = &p->models[m];
    const bh_study *st = p->study;
    const char *name = st->models[pm->study_index].name;
    bh_frame *data[2] = {NULL, NULL};
    bh_error e2;
    sbuf b = {0};
    *text = NULL;
    bh_status s = make_data(gen, p, p->opt.truth_n, p->scales[is], BH_SIMULATE_TRUTH_INDEX, data,
                            &e2);
    if (s == BH_ENOMEM)
        return bh_error_set(err, s, "out of memory");
    bh_model *own = NULL;
    const bh_model *md = NULL;
    if (s == BH_OK && mws)
        s = bh_model_fit_ws(mws[m], data[pm->level], &md, &e2);
    else if (s == BH_OK && (s = bh_model_fit(data[pm->level], &pm->spec, &own, &e2)) == BH_OK)
        md = own;
    bh_frame_free(data[0]);
    bh_frame_free(data[1]);
    if (s == BH_ENOMEM)
        return bh_error_set(err, s, "out of memory");
    if (s != BH_OK)
        /* without pseudo-true values bias and coverage are NA; power stands */
        return BH_OK;
    const bh_fit *f = md->fit;
    for (size_t j = 0; j < f->p; j++) {
        const char *comp = f->component && f->component[j] ? f->component[j] : "";
        const bh_study_finding *fd = finding_of(st, pm->study_index, comp, f->term[j]);
        sb_exact(&b, p->scales[is]);
        sb_add(&b, ",");
        sb_text(&b, name);
        sb_add(&b, ",");
        sb_text(&b, comp);
        sb_add(&b, ",");
        sb_text(&b, f->term[j]);
        sb_add(&b, ",");
        sb_num(&b, f->converged && !(f->aliased && f->aliased[j]) ? f->beta[j] : NAN);
        sb_add(&b, ",");
        sb_text(&b, fd ? fd->name : "");
        sb_add(&b, ",%d\n", fd ? fd->sign : 0);
    }
    bh_model_free(own);
    if (b.oom) {
        free(b.s);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    *text = b.s ? b.s : bh_strdup("");
    return *text ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
}

static void *truth_thread(void *arg)
{
    truth_job *j = arg;
    bh_generate_workspace *gen = bh_generate_workspace_alloc(j->p->study);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t pair = j->next++;
        int stop = j->st != BH_OK || pair >= j->npair || !gen;
        if (!gen && j->st == BH_OK)
            j->st = bh_error_set(&j->err, BH_ENOMEM, "out of memory");
        pthread_mutex_unlock(&j->mu);
        if (stop)
            break;
        bh_error e;
        char *text = NULL;
        bh_status s = truth_pair(j->p, gen, NULL, pair, &text, &e);
        pthread_mutex_lock(&j->mu);
        j->text[pair] = text;
        if (s != BH_OK && j->st == BH_OK) {
            j->st = s;
            j->err = e;
        }
        pthread_mutex_unlock(&j->mu);
    }
    bh_generate_workspace_free(gen);
    return NULL;
}

static size_t online_cpus(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (size_t)c : 1;
}

static size_t threads_of(const bh_simulate_options *o)
{
    size_t t = o->threads ? o->threads : online_cpus();
    return t > 256 ? 256 : t;
}

/* truth.csv from the pairs' rows, in pair order, written atomically. */
static bh_status truth_commit(const char *path, char *const *text, size_t npair, bh_error *err)
{
    bh_afile af;
    bh_status s = bh_afile_open(&af, path, err);
    if (s != BH_OK)
        return s;
    fputs(TRUTH_HEADER, af.fp);
    for (size_t k = 0; k < npair; k++)
        if (text[k])
            fputs(text[k], af.fp);
    return bh_afile_commit(&af, err);
}

/* Pseudo-true values: one large data set per effect scale, every model. */
static bh_status write_truth(const bh_simulate_plan *p, const char *path, bh_error *err)
{
    truth_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.npair = p->nscales * p->nmodels;
    j.text = calloc(j.npair, sizeof *j.text);
    if (!j.text)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    pthread_mutex_init(&j.mu, NULL);
    size_t nt = threads_of(&p->opt);
    if (nt > j.npair)
        nt = j.npair;
    pthread_t th[256];
    size_t started = 0;
    for (; started + 1 < nt; started++)
        if (pthread_create(&th[started], NULL, truth_thread, &j) != 0)
            break;
    truth_thread(&j);
    for (size_t k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    pthread_mutex_destroy(&j.mu);
    bh_status s = j.st;
    if (s != BH_OK)
        *err = j.err;
    if (s == BH_OK)
        s = truth_commit(path, j.text, j.npair, err);
    for (size_t k = 0; k < j.npair; k++)
        free(j.text[k]);
    free(j.text);
    return s;
}

/* ---- replications.csv ------------------------------------------------------------ */

typedef struct {
    size_t w;
    const char *start;          /* first line of the block */
    size_t len;                 /* bytes, end line included */
} block;

/* The numbers of the coefficient lines (estimate, SE, CI, p-value) of the
 * replications this process ran, per work item, so the summaries need not
 * parse them back: parsing 17-digit numbers was most of the summaries'
 * time (~20 ms per 1,000 replications of 16 terms).  The text holds the
 * same doubles exactly (%.17g), so the results are the same. */
typedef struct {
    size_t lines;               /* coefficient lines per replication */
    double *v;                  /* items x lines x 5 */
    unsigned char *ok;          /* per item: v holds its lines */
    const char *text;           /* replications.csv as this run wrote it, or NULL */
    size_t len;
} value_cache;

/* Memory for a value cache at most (more: the summaries parse). */
#define VALUE_CACHE_MAX ((size_t)256 << 20)

/* Split text into fields at commas (in place); returns the field count. */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t k = 0;
    f[k++] = line;
    for (char *c = line; *c; c++)
        if (*c == ',') {
            *c = '\0';
            if (k < max)
                f[k++] = c + 1;
            else
                return max + 1;
        }
    return k;
}

/* Index the complete blocks of replications.csv text (header skipped).
 * *valid_len is the byte length up to the end of the last complete block;
 * anything after it is a partial block from an interrupted run. */
static bh_status index_blocks(const char *path, const char *text, size_t len, block **out,
                              size_t *nout, size_t *valid_len, bh_error *err)
{
    *out = NULL;
    *nout = 0;
    size_t cap = 0, lines = 0, lineno = 1;
    const char *hdr_end = strchr(text, '\n');
    if (!hdr_end || strncmp(text, REP_HEADER, sizeof REP_HEADER - 1) != 0)
        return bh_error_at(err, BH_EINPUT, path, 1, 0, "not a replications file (bad header)");
    const char *pos = hdr_end + 1, *bstart = pos;
    *valid_len = (size_t)(pos - text);
    block *b = NULL;
    char buf[512];
    while (pos < text + len) {
        const char *nl = memchr(pos, '\n', (size_t)(text + len - pos));
        if (!nl)
            break; /* partial last line */
        lineno++;
        size_t ll = (size_t)(nl - pos);
        /* an end line: "w,n,scale,i,,,,,,,,,end,count,," */
        const char *e = NULL;
        if (ll > 16 && ll < sizeof buf && memcmp(nl - 2, ",,", 2) == 0) {
            memcpy(buf, pos, ll);
            buf[ll] = '\0';
            char *f[NFIELD + 1];
            if (split_fields(buf, f, NFIELD) == NFIELD && strcmp(f[12], "end") == 0) {
                e = pos;
                size_t cnt = (size_t)strtoull(f[13], NULL, 10);
                if (cnt != lines) {
                    free(b);
                    return bh_error_at(err, BH_EINPUT, path, lineno, 0,
                                       "replication %s: %zu lines but its end line says %zu "
                                       "(the file was edited?)", f[0], lines, cnt);
                }
                if (*nout == cap) {
                    block *nb = realloc(b, (cap = cap ? cap * 2 : 1024) * sizeof *b);
                    if (!nb) {
                        free(b);
                        return bh_error_set(err, BH_ENOMEM, "out of memory");
                    }
                    b = nb;
                }
                b[*nout].w = (size_t)strtoull(f[0], NULL, 10);
                b[*nout].start = bstart;
                b[*nout].len = (size_t)(nl + 1 - bstart);
                (*nout)++;
                lines = 0;
                bstart = nl + 1;
                *valid_len = (size_t)(nl + 1 - text);
            }
        }
        if (!e)
            lines++;
        pos = nl + 1;
    }
    *out = b;
    return BH_OK;
}

static int block_cmp(const void *a, const void *b)
{
    const block *x = a, *y = b;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* ---- prepare ----------------------------------------------------------------------- */

/* bh_simulate_prepare; with defer_truth the pseudo-true values are not
 * computed: *need_truth says whether truth.csv is still to be written (the
 * threaded driver computes them alongside the replications). */
static bh_status prepare(bh_simulate_plan *p, const char *dir, unsigned char **done,
                         int defer_truth, int *need_truth, bh_error *err)
{
    *done = NULL;
    *need_truth = 0;
    size_t N = bh_simulate_plan_size(p);
    unsigned char *dn = calloc(N ? N : 1, 1);
    char *cfg = cfg_text(p);
    char *cfg_path = join_path(dir, "simulate.cfg"), *truth_path = join_path(dir, "truth.csv"),
         *rep_path = join_path(dir, "replications.csv");
    bh_status s = BH_OK;
    char *old = NULL;
    if (!dn || !cfg || !cfg_path || !truth_path || !rep_path) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    if (make_dir(dir) != 0) {
        s = bh_error_at(err, BH_EOUTPUT, dir, 0, 0, "cannot create the directory: %s",
                        strerror(errno));
        goto done;
    }
    old = slurp(cfg_path, NULL);
    if (p->opt.resume && old) {
        if (strcmp(old, cfg) != 0) {
            s = bh_error_at(err, BH_EUSAGE, cfg_path, 0, 0,
                            "--resume: the stored design differs from this command's (seed, "
                            "reps, n, effect scales, models, truth-n, shard); use the same "
                            "options or another --out");
            goto done;
        }
        size_t len = 0;
        char *text = slurp(rep_path, &len);
        int missing = !text && errno == ENOENT;
        if (text && len == 0) {
            free(text);
            text = NULL;
            missing = 1;
        }
        if (text) {
            block *b = NULL;
            size_t nb = 0, valid = 0;
            s = index_blocks(rep_path, text, len, &b, &nb, &valid, err);
            for (size_t k = 0; s == BH_OK && k < nb; k++)
                if (b[k].w < N)
                    dn[b[k].w] = 1;
            free(b);
            free(text);
            /* drop a partial block left by a killed run */
            if (s == BH_OK && valid < len && truncate(rep_path, (off_t)valid) != 0)
                s = bh_error_at(err, BH_EOUTPUT, rep_path, 0, 0, "cannot truncate: %s",
                                strerror(errno));
            if (s != BH_OK)
                goto done;
        } else if (missing) {
            /* a run killed before it created the file (or its header): start it */
            FILE *f = fopen(rep_path, "w");
            if (!f || fputs(REP_HEADER, f) < 0 || fclose(f) != 0) {
                s = bh_error_at(err, BH_EOUTPUT, rep_path, 0, 0, "cannot write: %s",
                                strerror(errno));
                goto done;
            }
        }
        struct stat sb;
        if (stat(truth_path, &sb) != 0) {
            if (defer_truth)
                *need_truth = 1;
            else if ((s = write_truth(p, truth_path, err)) != BH_OK)
                goto done;
        }
    } else {
        if (old && !p->opt.resume) {
            /* a fresh run replaces an old one wholesale */
            char *names[] = {"summary.csv", "power.csv", "sampling.csv"};
            for (int k = 0; k < 3; k++) {
                char *q = join_path(dir, names[k]);
                if (q)
                    remove(q);
                free(q);
            }
        }
        bh_afile af;
        if ((s = bh_afile_open(&af, cfg_path, err)) != BH_OK)
            goto done;
        fputs(cfg, af.fp);
        if ((s = bh_afile_commit(&af, err)) != BH_OK)
            goto done;
        if (defer_truth) {
            /* an older truth.csv must not pass for this run's: a run killed
             * before the new one is written recomputes it on --resume */
            remove(truth_path);
            *need_truth = 1;
        } else if ((s = write_truth(p, truth_path, err)) != BH_OK)
            goto done;
        FILE *f = fopen(rep_path, "w");
        if (!f || fputs(REP_HEADER, f) < 0 || fclose(f) != 0) {
            s = bh_error_at(err, BH_EOUTPUT, rep_path, 0, 0, "cannot write: %s", strerror(errno));
            goto done;
        }
    }
done:
    free(old);
    free(cfg);
    free(cfg_path);
    free(truth_path);
    free(rep_path);
    if (s != BH_OK) {
        free(dn);
        return s;
    }
    *done = dn;
    return BH_OK;
}

bh_status bh_simulate_prepare(bh_simulate_plan *p, const char *dir, unsigned char **done,
                              bh_error *err)
{
    int need;
    return prepare(p, dir, done, 0, &need, err);
}

/* ---- summaries ------------------------------------------------------------------ */

typedef struct {
    double scale;
    char *model, *component, *term, *finding;
    double truth;
    int sign;
} truth_row;

typedef struct {
    size_t d;
    char *model, *component, *term;
    const truth_row *tr;
    size_t ok;
    double mean, m2, sum_se, sum_sq_err;
    size_t covered, covered_n, rejected;
} group;

static void truth_free(truth_row *t, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(t[k].model);
        free(t[k].component);
        free(t[k].term);
        free(t[k].finding);
    }
    free(t);
}

static bh_status truth_read(const char *dir, truth_row **out, size_t *nout, bh_error *err)
{
    *out = NULL;
    *nout = 0;
    char *path = join_path(dir, "truth.csv");
    if (!path)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    char *text = slurp(path, NULL);
    if (!text) {
        bh_status s = bh_error_at(err, BH_EINPUT, path, 0, 0, "cannot read: %s", strerror(errno));
        free(path);
        return s;
    }
    size_t cap = 64, n = 0, lineno = 0;
    truth_row *t = calloc(cap, sizeof *t);
    bh_status s = t ? BH_OK : bh_error_set(err, BH_ENOMEM, "out of memory");
    char *line = text;
    while (s == BH_OK && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        if (lineno > 1 && *line) {
            char *f[8];
            if (split_fields(line, f, 7) != 7) {
                s = bh_error_at(err, BH_EINPUT, path, lineno, 0, "expected 7 fields");
                break;
            }
            if (n == cap) {
                truth_row *nt = realloc(t, (cap *= 2) * sizeof *t);
                if (!nt) {
                    s = bh_error_set(err, BH_ENOMEM, "out of memory");
                    break;
                }
                t = nt;
            }
            truth_row *r = &t[n++];
            memset(r, 0, sizeof *r);
            r->scale = strtod(f[0], NULL);
            r->model = bh_strdup(f[1]);
            r->component = bh_strdup(f[2]);
            r->term = bh_strdup(f[3]);
            r->truth = strcmp(f[4], "NA") == 0 ? NAN : strtod(f[4], NULL);
            r->finding = bh_strdup(f[5]);
            r->sign = atoi(f[6]);
            if (!r->model || !r->component || !r->term || !r->finding)
                s = bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    free(path);
    if (s != BH_OK) {
        truth_free(t, n);
        return s;
    }
    *out = t;
    *nout = n;
    return BH_OK;
}

void bh_simulate_result_free(bh_simulate_result *r)
{
    if (!r)
        return;
    for (size_t k = 0; k < r->nrows; k++) {
        free(r->rows[k].model);
        free(r->rows[k].component);
        free(r->rows[k].term);
        free(r->rows[k].finding);
    }
    free(r->rows);
    free(r);
}

static double num_field(const char *s)
{
    if (strcmp(s, "NA") == 0 || !*s)
        return NAN;
    return strtod(s, NULL);
}

static int model_has_findings(const truth_row *t, size_t nt, const char *model)
{
    for (size_t k = 0; k < nt; k++)
        if (*t[k].finding && strcmp(t[k].model, model) == 0)
            return 1;
    return 0;
}

static void plot_term(FILE *f, const char *component, const char *term)
{
    if (*component)
        fprintf(f, "%s/%s", component, term);
    else
        fputs(term, f);
}

/* Write summary, power and sampling files from the sorted blocks. */
static bh_status summarize(const char *dir, const design *g, const block *b, size_t nb,
                           const value_cache *vc, bh_simulate_result *res, bh_error *err)
{
    truth_row *tr = NULL;
    size_t ntr = 0;
    bh_status s = truth_read(dir, &tr, &ntr, err);
    if (s != BH_OK)
        return s;
    size_t ndesign = g->nn * g->nscales;
    group *gr = NULL;
    size_t ng = 0, gcap = 0;
    size_t *dstart = calloc(ndesign + 1, sizeof *dstart); /* first group of design d */
    size_t *reps_d = calloc(ndesign, sizeof *reps_d);
    unsigned char *keyflag = NULL;
    FILE *sf = NULL;
    char *line = NULL;
    size_t linecap = 0;
    if (!dstart || !reps_d) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    size_t cur_d = (size_t)-1, guess = 0;
    for (size_t k = 0; k < nb && s == BH_OK; k++) {
        size_t d = b[k].w / g->reps;
        if (d != cur_d) {
            for (size_t dd = cur_d == (size_t)-1 ? 0 : cur_d + 1; dd <= d; dd++)
                dstart[dd] = ng;
            cur_d = d;
            guess = ng;
            /* every coefficient of the truth fits gets a row, also when all
             * replications failed to estimate it (failed = reps) */
            double sc = g->scales[d % g->nscales];
            for (size_t t = 0; t < ntr && s == BH_OK; t++) {
                if (tr[t].scale != sc)
                    continue;
                if (ng == gcap) {
                    group *ngp = realloc(gr, (gcap = gcap ? gcap * 2 : 64) * sizeof *gr);
                    if (!ngp) {
                        s = bh_error_set(err, BH_ENOMEM, "out of memory");
                        break;
                    }
                    gr = ngp;
                }
                group *G = &gr[ng];
                memset(G, 0, sizeof *G);
                G->d = d;
                G->tr = &tr[t];
                G->model = bh_strdup(tr[t].model);
                G->component = bh_strdup(tr[t].component);
                G->term = bh_strdup(tr[t].term);
                ng++;
                if (!G->model || !G->component || !G->term)
                    s = bh_error_set(err, BH_ENOMEM, "out of memory");
            }
            if (s != BH_OK)
                break;
        }
        reps_d[d]++;
        /* the block's numbers from the cache while its lines keep in step */
        const double *cv = vc && vc->v && vc->ok && vc->ok[b[k].w]
                               ? vc->v + b[k].w * vc->lines * 5 : NULL;
        size_t li = 0;
        const char *pos = b[k].start, *end = b[k].start + b[k].len;
        while (pos < end) {
            const char *nl = memchr(pos, '\n', (size_t)(end - pos));
            size_t ll = (size_t)(nl - pos);
            if (ll + 1 > linecap) {
                char *nlb = realloc(line, linecap = ll + 256);
                if (!nlb) {
                    s = bh_error_set(err, BH_ENOMEM, "out of memory");
                    break;
                }
                line = nlb;
            }
            memcpy(line, pos, ll);
            line[ll] = '\0';
            pos = nl + 1;
            char *f[NFIELD + 1];
            if (split_fields(line, f, NFIELD) != NFIELD) {
                cv = NULL;
                continue;
            }
            if (strcmp(f[12], "end") == 0 || strcmp(f[12], "error") == 0)
                continue;
            const double *lv = cv && li < vc->lines ? cv + 5 * li++ : NULL;
            /* find the group: lines come in the same order in every block */
            size_t gi = (size_t)-1;
            for (size_t t = 0; t < ng - dstart[d] && gi == (size_t)-1; t++) {
                size_t c = dstart[d] + (guess - dstart[d] + t) % (ng - dstart[d]);
                if (strcmp(gr[c].model, f[4]) == 0 && strcmp(gr[c].component, f[5]) == 0 &&
                    strcmp(gr[c].term, f[6]) == 0)
                    gi = c;
            }
            if (gi == (size_t)-1) {
                if (ng == gcap) {
                    group *ngp = realloc(gr, (gcap = gcap ? gcap * 2 : 64) * sizeof *gr);
                    if (!ngp) {
                        s = bh_error_set(err, BH_ENOMEM, "out of memory");
                        break;
                    }
                    gr = ngp;
                }
                group *G = &gr[ng];
                memset(G, 0, sizeof *G);
                G->d = d;
                G->model = bh_strdup(f[4]);
                G->component = bh_strdup(f[5]);
                G->term = bh_strdup(f[6]);
                if (!G->model || !G->component || !G->term) {
                    free(G->model);
                    free(G->component);
                    free(G->term);
                    s = bh_error_set(err, BH_ENOMEM, "out of memory");
                    break;
                }
                double sc = g->scales[d % g->nscales];
                for (size_t t = 0; t < ntr; t++)
                    if (tr[t].scale == sc && strcmp(tr[t].model, G->model) == 0 &&
                        strcmp(tr[t].component, G->component) == 0 &&
                        strcmp(tr[t].term, G->term) == 0) {
                        G->tr = &tr[t];
                        break;
                    }
                gi = ng++;
            }
            guess = gi + 1 < ng ? gi + 1 : dstart[d];
            group *G = &gr[gi];
            double est, se, lo, hi, pv;
            if (lv) {
                est = lv[0], se = lv[1], lo = lv[2], hi = lv[3], pv = lv[4];
            } else {
                est = num_field(f[7]), se = num_field(f[8]), lo = num_field(f[9]);
                hi = num_field(f[10]), pv = num_field(f[11]);
            }
            if (strcmp(f[12], "ok") != 0 || !isfinite(est))
                continue;
            /* Welford: stable and, in file order, reproducible */
            G->ok++;
            double delta = est - G->mean;
            G->mean += delta / (double)G->ok;
            G->m2 += delta * (est - G->mean);
            G->sum_se += se;
            double truth = G->tr ? G->tr->truth : NAN;
            G->sum_sq_err += (est - truth) * (est - truth);
            if (isfinite(lo) && isfinite(hi) && !isnan(truth)) {
                G->covered_n++;
                G->covered += lo <= truth && truth <= hi;
            }
            int sign = G->tr ? G->tr->sign : 0;
            G->rejected += pv < g->alpha && (sign == 0 || (est > 0 ? 1 : -1) == sign);
        }
    }
    if (s != BH_OK)
        goto done;
    res->rows = calloc(ng ? ng : 1, sizeof *res->rows);
    keyflag = calloc(ng ? ng : 1, 1);
    if (!res->rows || !keyflag) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    res->alpha = g->alpha;
    for (size_t k = 0; k < ng; k++) {
        group *G = &gr[k];
        bh_simulate_row *r = &res->rows[res->nrows++];
        r->n = g->n[G->d / g->nscales];
        r->effect_scale = g->scales[G->d % g->nscales];
        r->model = bh_strdup(G->model);
        r->component = bh_strdup(G->component);
        r->term = bh_strdup(G->term);
        r->finding = bh_strdup(G->tr ? G->tr->finding : "");
        if (!r->model || !r->component || !r->term || !r->finding) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            goto done;
        }
        r->sign = G->tr ? G->tr->sign : 0;
        r->key = model_has_findings(tr, ntr, G->model) ? *r->finding != '\0' : 1;
        r->truth = G->tr ? G->tr->truth : NAN;
        r->reps = reps_d[G->d];
        r->ok = G->ok;
        r->failed = r->reps - r->ok;
        double m = (double)G->ok;
        r->mean = G->ok ? G->mean : NAN;
        r->bias = r->mean - r->truth;
        r->rel_bias = r->truth != 0 ? r->bias / fabs(r->truth) : NAN;
        r->emp_sd = G->ok > 1 ? sqrt(G->m2 / (m - 1)) : NAN;
        r->mean_se = G->ok ? G->sum_se / m : NAN;
        r->rmse = G->ok ? sqrt(G->sum_sq_err / m) : NAN;
        if (G->covered_n) {
            double c = (double)G->covered / (double)G->covered_n;
            r->coverage = c;
            r->coverage_se = sqrt(c * (1 - c) / (double)G->covered_n);
        } else
            r->coverage = r->coverage_se = NAN;
        if (G->ok) {
            double pw = (double)G->rejected / m;
            r->power = pw;
            r->power_se = sqrt(pw * (1 - pw) / m);
        } else
            r->power = r->power_se = NAN;
        keyflag[k] = (unsigned char)r->key;
    }
    /* summary.csv */
    const char *names[3] = {"summary.csv", "power.csv", "sampling.csv"};
    for (int fi = 0; fi < 3 && s == BH_OK; fi++) {
        char *path = join_path(dir, names[fi]);
        bh_afile af;
        if (!path) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            break;
        }
        s = bh_afile_open(&af, path, err);
        free(path);
        if (s != BH_OK)
            break;
        sf = af.fp;
        if (fi == 0) {
            fputs("n,effect_scale,model,component,term,finding,expected_sign,true,reps,ok,failed,"
                  "mean_estimate,bias,rel_bias,emp_sd,mean_se,rmse,coverage,coverage_se,power,"
                  "power_se,alpha\n", sf);
            for (size_t k = 0; k < res->nrows; k++) {
                const bh_simulate_row *r = &res->rows[k];
                fprintf(sf, "%zu,%.15g,%s,%s,%s,%s,%d,", r->n, r->effect_scale, r->model,
                        r->component, r->term, r->finding, r->sign);
                put_num(sf, r->truth);
                fprintf(sf, ",%zu,%zu,%zu", r->reps, r->ok, r->failed);
                double v[10] = {r->mean, r->bias, r->rel_bias, r->emp_sd, r->mean_se,
                                r->rmse, r->coverage, r->coverage_se, r->power, r->power_se};
                for (int q = 0; q < 10; q++) {
                    fputc(',', sf);
                    put_num(sf, v[q]);
                }
                fprintf(sf, ",%.15g\n", g->alpha);
            }
        } else if (fi == 1) {
            fputs(BH_PLOT_SIM_POWER_COLUMNS "\n", sf);
            for (size_t k = 0; k < res->nrows; k++) {
                const bh_simulate_row *r = &res->rows[k];
                if (!r->key)
                    continue;
                fprintf(sf, "%zu,", r->n);
                put_num(sf, r->power);
                fputc(',', sf);
                put_num(sf, r->power_se);
                fprintf(sf, ",%.15g,%s,", r->effect_scale, r->model);
                plot_term(sf, r->component, r->term);
                fprintf(sf, ",%.15g\n", g->alpha);
            }
        } else {
            fputs(BH_PLOT_SIM_SAMPLING_COLUMNS "\n", sf);
            /* The text that repeats in every row (true values, scale suffixes) is
             * formatted once: a row per replication and key term is then
             * only copies. */
            char (*ttxt)[48] = malloc((ng ? ng : 1) * sizeof *ttxt);
            char (*stxt)[48] = malloc((g->nscales ? g->nscales : 1) * sizeof *stxt);
            if (!ttxt || !stxt) {
                free(ttxt);
                free(stxt);
                bh_afile_abort(&af);
                s = bh_error_set(err, BH_ENOMEM, "out of memory");
                goto done;
            }
            for (size_t q = 0; q < ng; q++) {
                double t = gr[q].tr ? gr[q].tr->truth : NAN;
                if (isnan(t))
                    snprintf(ttxt[q], sizeof ttxt[q], "NA");
                else if (isinf(t))
                    snprintf(ttxt[q], sizeof ttxt[q], "%s", t > 0 ? "Inf" : "-Inf");
                else
                    snprintf(ttxt[q], sizeof ttxt[q], "%.12g", t);
            }
            for (size_t is = 0; is < g->nscales; is++)
                snprintf(stxt[is], sizeof stxt[is], " @ scale %.15g\n", g->scales[is]);
            /* second pass over the blocks: one row per replication and key term */
            for (size_t k = 0; k < nb && s == BH_OK; k++) {
                size_t d = b[k].w / g->reps;
                const char *pos = b[k].start, *end = b[k].start + b[k].len;
                while (pos < end) {
                    const char *nl = memchr(pos, '\n', (size_t)(end - pos));
                    size_t ll = (size_t)(nl - pos);
                    memcpy(line, pos, ll);
                    line[ll] = '\0';
                    pos = nl + 1;
                    char *f[NFIELD + 1];
                    if (split_fields(line, f, NFIELD) != NFIELD || strcmp(f[12], "ok") != 0 ||
                        strcmp(f[7], "NA") == 0)
                        continue;
                    for (size_t q = dstart[d]; q < ng && gr[q].d == d; q++) {
                        if (!keyflag[q] || strcmp(gr[q].model, f[4]) != 0 ||
                            strcmp(gr[q].component, f[5]) != 0 || strcmp(gr[q].term, f[6]) != 0)
                            continue;
                        /* "%s,%s,", plot_term, ",%s,", put_num(truth),
                         * ",%s" and the scale suffix or a newline */
                        fputs(f[3], sf);
                        putc(',', sf);
                        fputs(f[1], sf);
                        putc(',', sf);
                        if (*f[5]) {
                            fputs(f[5], sf);
                            putc('/', sf);
                        }
                        fputs(f[6], sf);
                        putc(',', sf);
                        fputs(f[7], sf);
                        putc(',', sf);
                        fputs(ttxt[q], sf);
                        putc(',', sf);
                        fputs(f[4], sf);
                        if (g->nscales > 1)
                            fputs(stxt[d % g->nscales], sf);
                        else
                            putc('\n', sf);
                        break;
                    }
                }
            }
            free(ttxt);
            free(stxt);
        }
        s = bh_afile_commit(&af, err);
        sf = NULL;
    }
done:
    for (size_t k = 0; k < ng; k++) {
        free(gr[k].model);
        free(gr[k].component);
        free(gr[k].term);
    }
    free(gr);
    free(dstart);
    free(reps_d);
    free(keyflag);
    free(line);
    truth_free(tr, ntr);
    return s;
}

/* Sort (and deduplicate) blocks; rewrite replications.csv when needed. */
static bh_status sort_blocks(const char *rep_path, const char *text, block *b, size_t *nb,
                             int force_write, bh_error *err)
{
    int sorted = 1;
    for (size_t k = 1; k < *nb && sorted; k++)
        sorted = b[k - 1].w < b[k].w;
    if (!sorted) {
        qsort(b, *nb, sizeof *b, block_cmp);
        size_t o = 0;
        for (size_t k = 0; k < *nb; k++) {
            if (o > 0 && b[o - 1].w == b[k].w) {
                if (b[o - 1].len != b[k].len || memcmp(b[o - 1].start, b[k].start, b[k].len) != 0)
                    return bh_error_at(err, BH_EINPUT, rep_path, 0, 0,
                                       "replication %zu appears twice with different results "
                                       "(shards of different runs?)", b[k].w);
                continue;
            }
            b[o++] = b[k];
        }
        *nb = o;
    }
    if (sorted && !force_write)
        return BH_OK;
    (void)text;
    bh_afile af;
    bh_status s = bh_afile_open(&af, rep_path, err);
    if (s != BH_OK)
        return s;
    fputs(REP_HEADER, af.fp);
    for (size_t k = 0; k < *nb; k++)
        fwrite(b[k].start, 1, b[k].len, af.fp);
    return bh_afile_commit(&af, err);
}

static bh_status finish(const char *dir, const value_cache *vc, bh_simulate_result **out,
                        bh_error *err)
{
    if (out)
        *out = NULL;
    design g;
    bh_status s = design_read(dir, &g, err);
    if (s != BH_OK)
        return s;
    char *rep_path = join_path(dir, "replications.csv");
    size_t len = 0;
    /* the file's bytes as this run wrote them, else read back */
    const char *kept = vc && vc->text ? vc->text : NULL;
    char *own = kept || !rep_path ? NULL : slurp(rep_path, &len);
    const char *text = kept ? kept : own;
    if (kept)
        len = vc->len;
    block *b = NULL;
    size_t nb = 0, valid = 0;
    bh_simulate_result *res = calloc(1, sizeof *res);
    if (!rep_path || !res) {
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    if (!text) {
        s = bh_error_at(err, BH_EINPUT, rep_path, 0, 0, "cannot read: %s", strerror(errno));
        goto done;
    }
    if ((s = index_blocks(rep_path, text, len, &b, &nb, &valid, err)) != BH_OK)
        goto done;
    if ((s = sort_blocks(rep_path, text, b, &nb, valid < len, err)) != BH_OK)
        goto done;
    size_t N = g.nn * g.nscales * g.reps;
    res->total = N;
    res->done = nb;
    res->alpha = g.alpha;
    int all = nb == N;
    for (size_t k = 0; k < nb && all; k++)
        all = b[k].w == k;
    res->complete = all;
    if (all)
        s = summarize(dir, &g, b, nb, vc, res, err);
done:
    free(b);
    free(own);
    free(rep_path);
    design_free(&g);
    if (s != BH_OK || !out)
        bh_simulate_result_free(res);
    else
        *out = res;
    return s;
}

bh_status bh_simulate_finish(const char *dir, bh_simulate_result **out, bh_error *err)
{
    return finish(dir, NULL, out, err);
}

/* ---- the threaded driver ---------------------------------------------------------- */

/* The work of the pool: first the pseudo-truth pairs (when truth.csv is
 * still to be written), then the pending replications.  The pairs are
 * the slowest items (truth_n units each), so they start first and the
 * other workers run replications meanwhile; the worker that finishes the
 * last pair writes truth.csv. */
typedef struct {
    const bh_simulate_plan *p;
    size_t *todo, ntodo, next;
    size_t ntruth, truth_left;  /* truth pairs: items 0..ntruth-1 */
    char **truth_text;
    const char *truth_path;
    pthread_mutex_t mu;
    FILE *fp;
    const char *rep_path;
    size_t done, total, ran, failed;
    int stop;
    bh_status st;
    bh_error err;
    size_t nitems;              /* work items of the plan (all shards) */
    int cstate;                 /* value cache: 0 not yet sized, 1 kept, -1 off */
    value_cache vc;
    int textok;                 /* text holds the whole file so far */
    sbuf text;
} pool;

/* Keep worker wk's numbers of item w (under P->mu, after its block was
 * appended).  The first block sizes the cache; blocks of another line
 * count (a failed fit) are parsed instead. */
static void pool_keep(pool *P, const bh_simulate_worker *wk, size_t w)
{
    size_t L = wk->nlines;
    if (P->cstate == 0) {
        P->cstate = -1;
        if (L > 0 && L != (size_t)-1 && P->nitems <= VALUE_CACHE_MAX / (L * 5 * sizeof(double))) {
            P->vc.v = malloc(P->nitems * L * 5 * sizeof *P->vc.v);
            P->vc.ok = calloc(P->nitems, 1);
            P->vc.lines = L;
            if (P->vc.v && P->vc.ok)
                P->cstate = 1;
        }
    }
    if (P->textok) {
        /* the file's bytes also in memory, while they stay small */
        sb_mem(&P->text, wk->blk.s, wk->blk.len);
        if (P->text.oom || P->text.len > VALUE_CACHE_MAX) {
            free(P->text.s);
            memset(&P->text, 0, sizeof P->text);
            P->textok = 0;
        }
    }
    if (P->cstate != 1 || L != P->vc.lines || w >= P->nitems)
        return;
    memcpy(P->vc.v + w * L * 5, wk->vals, L * 5 * sizeof *wk->vals);
    P->vc.ok[w] = 1;
}

/* Truth pair k on worker wk; the last pair to finish writes truth.csv. */
static void pool_truth(pool *P, bh_simulate_worker *wk, size_t k)
{
    char *text = NULL;
    bh_error e;
    bh_status s = truth_pair(P->p, wk->gen, wk->mws, k, &text, &e);
    pthread_mutex_lock(&P->mu);
    P->truth_text[k] = text;
    int last = --P->truth_left == 0 && P->st == BH_OK && s == BH_OK;
    pthread_mutex_unlock(&P->mu);
    if (last)
        s = truth_commit(P->truth_path, P->truth_text, P->ntruth, &e);
    if (s != BH_OK) {
        pthread_mutex_lock(&P->mu);
        if (P->st == BH_OK) {
            P->st = s;
            P->err = e;
        }
        P->stop = 1;
        pthread_mutex_unlock(&P->mu);
    }
}

static void *pool_thread(void *arg)
{
    pool *P = arg;
    const bh_simulate_options *o = &P->p->opt;
    bh_simulate_worker *wk = bh_simulate_worker_alloc(P->p);
    for (;;) {
        pthread_mutex_lock(&P->mu);
        if (!wk && P->st == BH_OK) {
            P->st = bh_error_set(&P->err, BH_ENOMEM, "out of memory");
            P->stop = 1;
        }
        int quit = P->stop || P->next >= P->ntruth + P->ntodo || (o->stop && *o->stop);
        size_t item = quit ? 0 : P->next++;
        pthread_mutex_unlock(&P->mu);
        if (quit)
            break;
        if (item < P->ntruth) {
            pool_truth(P, wk, item);
            continue;
        }
        size_t w = P->todo[item - P->ntruth];
        size_t failed = 0;
        bh_error e;
        bh_status s = run_one(wk, w, &failed, &e);
        pthread_mutex_lock(&P->mu);
        if (s != BH_OK) {
            if (P->st == BH_OK) {
                P->st = s;
                P->err = e;
            }
            P->stop = 1;
        } else if (!P->stop || P->st == BH_OK) {
            /* one fwrite + fflush per block: a kill leaves at most a partial last block */
            size_t len = wk->blk.len;
            if (fwrite(wk->blk.s, 1, len, P->fp) != len || fflush(P->fp) != 0) {
                if (P->st == BH_OK)
                    P->st = bh_error_at(&P->err, BH_EOUTPUT, P->rep_path, 0, 0,
                                        "cannot append: %s", strerror(errno));
                P->stop = 1;
            } else {
                pool_keep(P, wk, w);
                P->done++;
                P->ran++;
                P->failed += failed;
                if (o->stop_after && P->ran >= o->stop_after)
                    P->stop = 1;
                if (o->progress)
                    o->progress(o->progress_ctx, P->done, P->total);
            }
        }
        pthread_mutex_unlock(&P->mu);
    }
    bh_simulate_worker_free(wk);
    return NULL;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bh_status bh_simulate_run(const bh_study *st, const char *study_path,
                          const bh_simulate_options *o, const char *dir,
                          bh_simulate_result **out, bh_error *err)
{
    *out = NULL;
    bh_simulate_plan *p = NULL;
    unsigned char *dn = NULL;
    pool P;
    memset(&P, 0, sizeof P);
    char *truth_path = NULL;
    bh_status s = bh_simulate_plan_new(st, study_path, o, &p, err);
    if (s != BH_OK)
        return s;
    int need_truth = 0;
    if ((s = prepare(p, dir, &dn, 1, &need_truth, err)) != BH_OK)
        goto done;
    if (need_truth) {
        P.ntruth = P.truth_left = p->nscales * p->nmodels;
        P.truth_text = calloc(P.ntruth, sizeof *P.truth_text);
        P.truth_path = truth_path = join_path(dir, "truth.csv");
        if (!P.truth_text || !truth_path) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            goto done;
        }
    }
    size_t N = bh_simulate_plan_size(p), K = o->nshards > 1 ? o->nshards : 1;
    P.p = p;
    P.nitems = N;
    P.todo = malloc((N ? N : 1) * sizeof *P.todo);
    P.rep_path = NULL;
    char *rep_path = join_path(dir, "replications.csv");
    if (!P.todo || !rep_path) {
        free(rep_path);
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t w = 0; w < N; w++) {
        if (K > 1 && w % K != o->shard)
            continue;
        P.total++;
        if (dn[w])
            P.done++;
        else
            P.todo[P.ntodo++] = w;
    }
    P.fp = fopen(rep_path, "a");
    P.rep_path = rep_path;
    if (!P.fp) {
        s = bh_error_at(err, BH_EOUTPUT, rep_path, 0, 0, "cannot append: %s", strerror(errno));
        free(rep_path);
        goto done;
    }
    /* A file holding the header alone (a fresh run) is kept in memory as
     * it grows, so the summaries need not read it back. */
    struct stat rst;
    if (fstat(fileno(P.fp), &rst) == 0 && rst.st_size == (off_t)(sizeof REP_HEADER - 1)) {
        P.textok = 1;
        sb_mem(&P.text, REP_HEADER, sizeof REP_HEADER - 1);
    }
    pthread_mutex_init(&P.mu, NULL);
    if (o->progress)
        o->progress(o->progress_ctx, P.done, P.total);
    double t0 = now_seconds();
    size_t nt = threads_of(o);
    if (nt > P.ntruth + P.ntodo)
        nt = P.ntruth + P.ntodo ? P.ntruth + P.ntodo : 1;
    pthread_t th[256];
    size_t started = 0;
    for (; started + 1 < nt; started++)
        if (pthread_create(&th[started], NULL, pool_thread, &P) != 0)
            break;
    pool_thread(&P);
    for (size_t k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    double secs = now_seconds() - t0;
    pthread_mutex_destroy(&P.mu);
    if (fclose(P.fp) != 0 && P.st == BH_OK)
        P.st = bh_error_at(&P.err, BH_EOUTPUT, rep_path, 0, 0, "cannot close: %s",
                           strerror(errno));
    free(rep_path);
    if (P.st != BH_OK) {
        s = P.st;
        *err = P.err;
        goto done;
    }
    bh_simulate_result *res = NULL;
    /* the numbers where pool_keep kept them (ok[] is set only then), the
     * text when the whole file is in memory */
    if (P.textok && !P.text.oom) {
        P.vc.text = P.text.s;
        P.vc.len = P.text.len;
    }
    s = finish(dir, &P.vc, &res, err);
    if (s != BH_OK)
        goto done;
    res->total = P.total;
    res->done = P.done;
    res->ran = P.ran;
    res->failed_models = P.failed;
    res->complete = P.done == P.total;
    res->seconds = secs;
    *out = res;
done:
    for (size_t k = 0; P.truth_text && k < P.ntruth; k++)
        free(P.truth_text[k]);
    free(P.truth_text);
    free(truth_path);
    free(P.todo);
    free(P.vc.v);
    free(P.vc.ok);
    free(P.text.s);
    free(dn);
    bh_simulate_plan_free(p);
    return s;
}

/* ---- merge --------------------------------------------------------------------------- */

bh_status bh_simulate_merge(const char *const *dirs, size_t ndirs, const char *out_dir,
                            bh_simulate_result **out, bh_error *err)
{
    *out = NULL;
    if (ndirs == 0)
        return bh_error_set(err, BH_EUSAGE, "--merge needs at least one directory");
    design g0;
    bh_status s = design_read(dirs[0], &g0, err);
    if (s != BH_OK)
        return s;
    char *truth0 = NULL, *path = NULL;
    sbuf all = {0};
    sb_add(&all, "%s", REP_HEADER);
    for (size_t k = 0; k < ndirs && s == BH_OK; k++) {
        design g;
        if ((s = design_read(dirs[k], &g, err)) != BH_OK)
            break;
        int same = strcmp(g.text, g0.text) == 0;
        design_free(&g);
        if (!same) {
            s = bh_error_at(err, BH_EUSAGE, dirs[k], 0, 0,
                            "simulate.cfg differs from that of %s: shards of different designs",
                            dirs[0]);
            break;
        }
        free(path);
        path = join_path(dirs[k], "truth.csv");
        char *t = path ? slurp(path, NULL) : NULL;
        if (!t) {
            s = bh_error_at(err, BH_EINPUT, path ? path : dirs[k], 0, 0, "cannot read: %s",
                            strerror(errno));
            break;
        }
        if (!truth0)
            truth0 = t;
        else {
            int same_t = strcmp(t, truth0) == 0;
            free(t);
            if (!same_t) {
                s = bh_error_at(err, BH_EINPUT, path, 0, 0, "differs from the first shard's");
                break;
            }
        }
        free(path);
        path = join_path(dirs[k], "replications.csv");
        size_t len = 0;
        char *text = path ? slurp(path, &len) : NULL;
        if (!text) {
            s = bh_error_at(err, BH_EINPUT, path ? path : dirs[k], 0, 0, "cannot read: %s",
                            strerror(errno));
            break;
        }
        block *b = NULL;
        size_t nb = 0, valid = 0;
        s = index_blocks(path, text, len, &b, &nb, &valid, err);
        for (size_t q = 0; s == BH_OK && q < nb; q++)
            sb_add(&all, "%.*s", (int)b[q].len, b[q].start);
        free(b);
        free(text);
    }
    if (s == BH_OK && all.oom)
        s = bh_error_set(err, BH_ENOMEM, "out of memory");
    if (s == BH_OK && make_dir(out_dir) != 0)
        s = bh_error_at(err, BH_EOUTPUT, out_dir, 0, 0, "cannot create the directory: %s",
                        strerror(errno));
    /* the merged directory is an unsharded run of the same design */
    const char *files[3] = {"simulate.cfg", "truth.csv", "replications.csv"};
    for (int k = 0; k < 3 && s == BH_OK; k++) {
        free(path);
        path = join_path(out_dir, files[k]);
        bh_afile af;
        if (!path) {
            s = bh_error_set(err, BH_ENOMEM, "out of memory");
            break;
        }
        if ((s = bh_afile_open(&af, path, err)) != BH_OK)
            break;
        if (k == 0)
            fprintf(af.fp, "# blackhole simulate: the design of this directory (--resume and "
                           "--merge check it)\n%sshard = 1/1\n", g0.text);
        else if (k == 1)
            fputs(truth0, af.fp);
        else
            fwrite(all.s, 1, all.len, af.fp);
        s = bh_afile_commit(&af, err);
    }
    free(path);
    free(truth0);
    free(all.s);
    design_free(&g0);
    if (s != BH_OK)
        return s;
    bh_simulate_result *res = NULL;
    if ((s = bh_simulate_finish(out_dir, &res, err)) != BH_OK)
        return s;
    if (!res->complete) {
        size_t have = res->done, missing = res->total - res->done;
        bh_simulate_result_free(res);
        return bh_error_set(err, BH_EINPUT,
                            "the shards hold %zu of the design's replications (%zu missing): "
                            "run or resume the missing shards, then merge again",
                            have, missing);
    }
    *out = res;
    return BH_OK;
}
