/* design.c - from formula and frame to the numeric problem: listwise
 * deletion, training of the terms on the complete rows, X, y, weights,
 * offsets, cluster and random-effect groupings, precision design.
 */
#include "blackhole/design.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/buf.h"

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bh_status nomem(bh_error *err)
{
    return bh_error_set(err, BH_ENOMEM, "out of memory");
}

void bh_design_default_options(bh_design_options *opt)
{
    opt->weights = NULL;
    opt->weight_kind = BH_WEIGHTS_ANALYTIC;
    opt->cluster = NULL;
}

/* ------------------------------------------------------------ groupings */

/* Free what a grouping owns (its labels kept past ngroups included) and
 * zero it. */
static void grouping_clear(bh_grouping *g)
{
    free(g->name);
    free(g->code);
    size_t nl = g->cap_labels > g->ngroups ? g->cap_labels : g->ngroups;
    if (g->labels)
        for (size_t k = 0; k < nl; k++)
            free(g->labels[k]);
    free(g->labels);
    memset(g, 0, sizeof *g);
}

void bh_grouping_free(bh_grouping *g)
{
    if (!g)
        return;
    grouping_clear(g);
    free(g);
}

/* A sort key and its row: (key pointer, first-seen id). */
typedef struct {
    const double *key;
    size_t ncols;
    size_t i;
} keyref;

/* Key order, then first-seen order: a total order (ids are distinct). */
static int cmp_keyref(const keyref *x, const keyref *y)
{
    for (size_t c = 0; c < x->ncols; c++) {
        if (x->key[c] < y->key[c])
            return -1;
        if (x->key[c] > y->key[c])
            return 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sort a[0..n) with tmp[0..n) as scratch: bottom-up merge sort, no
 * allocation (qsort may allocate).  The order is total, so the result is
 * the one any sort gives.  Keys seen in sorted order (as ids and codes of
 * data sorted by group come) are recognised in one pass. */
static void sort_refs(keyref *a, keyref *tmp, size_t n)
{
    size_t k = 1;
    while (k < n && cmp_keyref(&a[k - 1], &a[k]) < 0)
        k++;
    if (k >= n)
        return;
    keyref *src = a, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t p = lo, q = mid, o = lo;
            while (p < mid && q < hi)
                dst[o++] = cmp_keyref(&src[q], &src[p]) < 0 ? src[q++] : src[p++];
            while (p < mid)
                dst[o++] = src[p++];
            while (q < hi)
                dst[o++] = src[q++];
        }
        keyref *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* Hash of a key's bytes (FNV-1a); keys hold no -0 (see below). */
static size_t hash_key(const double *k, size_t ncols)
{
    const unsigned char *b = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < ncols * sizeof *k; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 29));
}

static bh_status unknown_column(const bh_frame *data, const char *what,
                                const char *name, bh_error *err)
{
    const char *s = bh_frame_suggest(data, name);
    char q[160], q2[160];
    bh_quote(q, sizeof q, name, 100);
    if (s)
        return bh_error_set(err, BH_EUSAGE,
                            "%s column '%s' not found in %s (did you mean "
                            "'%s'?)", what, q,
                            data->source ? data->source : "the data",
                            bh_quote(q2, sizeof q2, s, 100));
    return bh_error_set(err, BH_EUSAGE, "%s column '%s' not found in %s", what,
                        q, data->source ? data->source : "the data");
}

/* The buffers of a grouping's construction, each with its capacity in
 * elements: kept in a rebuilt design's scratch, so that repeated builds
 * (simulations) allocate none of them again. */
typedef struct {
    const bh_column **cc;
    double *key;
    keyref *ref, *tmp;
    size_t *slot[2];      /* hash table, and the one it grows into */
    size_t *rank;
    size_t ccc, ckey, cref, ctmp, cslot[2], crank;
} grouping_scratch;

static void grouping_scratch_release(grouping_scratch *gs)
{
    free(gs->cc);
    free(gs->key);
    free(gs->ref);
    free(gs->tmp);
    free(gs->slot[0]);
    free(gs->slot[1]);
    free(gs->rank);
    memset(gs, 0, sizeof *gs);
}

/* Room in g for n codes and labels 0..nl-1 of at least room bytes each:
 * kept from an earlier build when large enough, grown with room to spare
 * otherwise (the label text is written in place afterwards). */
static int grouping_room(bh_grouping *g, size_t n, size_t nl, size_t room)
{
    if (!(g->code = bh_reserve(g->code, &g->cap_code, n, sizeof *g->code)))
        return 0;
    size_t have = g->cap_labels > g->ngroups ? g->cap_labels : g->ngroups;
    int ok = bh_reserve_strings(&g->labels, &have, &g->label_room, nl, room);
    g->cap_labels = have;
    return ok;
}

/* Build the grouping into g, an empty (zeroed) grouping or one built here
 * before, whose memory is reused; gs holds the construction's buffers.  On
 * error g is left for the caller to clear or refill. */
static bh_status grouping_fill(const bh_frame *data, const char *const *cols, size_t ncols,
                               const size_t *rows, size_t n, bh_grouping *g,
                               grouping_scratch *gs, bh_error *err)
{
    if (ncols == 0)
        return bh_error_set(err, BH_EINTERNAL, "grouping without columns");
    size_t n1 = n ? n : 1;
    const bh_column **cc = gs->cc = bh_reserve(gs->cc, &gs->ccc, ncols, sizeof *cc);
    double *key = gs->key = bh_reserve(gs->key, &gs->ckey, n1 * ncols, sizeof *key);
    keyref *ref = gs->ref = bh_reserve(gs->ref, &gs->cref, n1, sizeof *ref);
    if (!cc || !key || !ref)
        return nomem(err);
    /* labels past ngroups are kept (cap_labels) */
    if (g->ngroups > g->cap_labels)
        g->cap_labels = g->ngroups;
    g->ngroups = 0;
    size_t namelen = 1;
    for (size_t c = 0; c < ncols; c++) {
        if (!(cc[c] = bh_frame_col(data, cols[c])))
            return unknown_column(data, "grouping", cols[c], err);
        namelen += strlen(cols[c]) + 1;
    }
    /* the name: kept when the last build had the same */
    int same = g->name != NULL;
    if (same) {
        const char *p = g->name;
        for (size_t c = 0; c < ncols && same; c++) {
            size_t L = strlen(cols[c]);
            same = (c == 0 || *p++ == ':') && strncmp(p, cols[c], L) == 0;
            p += same ? L : 0;
        }
        same = same && *p == '\0';
    }
    if (!same) {
        free(g->name);
        if (!(g->name = malloc(namelen)))
            return nomem(err);
        g->name[0] = '\0';
        for (size_t c = 0; c < ncols; c++) {
            if (c)
                strcat(g->name, ":");
            strcat(g->name, cols[c]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t r = rows[i];
        for (size_t c = 0; c < ncols; c++) {
            const bh_column *col = cc[c];
            if (col->na[r])
                return bh_error_at(err, BH_EDATA, data->source, 0, 0,
                                   "missing value of grouping variable '%s' in "
                                   "data row %zu", col->name, r + 1);
            /* Level codes follow the frame's level order, numbers sort
             * numerically: labels come out in frame level order.  Adding
             * +0 turns -0 into 0, so that the two are one group. */
            key[i * ncols + c] = col->type == BH_COL_CATEGORICAL
                                     ? (double)col->code[r] : col->num[r] + 0.0;
        }
    }
    if (!(g->code = bh_reserve(g->code, &g->cap_code, n1, sizeof *g->code)))
        return nomem(err);
    /* Number the distinct keys in first-seen order through a hash table
     * (O(n)), then sort only the distinct keys: group codes follow the
     * sorted key order, as a sort of all n rows would give. */
    size_t ndist = 0;
    size_t nslot = 64;
    while (nslot < 2 * (n < 1024 ? n : 1024))
        nslot *= 2;
    size_t *slot = gs->slot[0] = bh_reserve(gs->slot[0], &gs->cslot[0], nslot, sizeof *slot);
    if (!slot)
        return nomem(err);
    memset(slot, 0, nslot * sizeof *slot);   /* distinct id + 1 */
    for (size_t i = 0; i < n; i++) {
        const double *ki = key + i * ncols;
        if (2 * (ndist + 1) > nslot) {
            size_t ns = 2 * nslot;
            size_t *nt = gs->slot[1] = bh_reserve(gs->slot[1], &gs->cslot[1], ns, sizeof *nt);
            if (!nt)
                return nomem(err);
            memset(nt, 0, ns * sizeof *nt);
            for (size_t d = 0; d < ndist; d++) {
                size_t h = hash_key(ref[d].key, ncols) & (ns - 1);
                while (nt[h])
                    h = (h + 1) & (ns - 1);
                nt[h] = d + 1;
            }
            /* the grown table becomes the current one */
            size_t ct = gs->cslot[0];
            gs->slot[1] = gs->slot[0];
            gs->cslot[0] = gs->cslot[1];
            gs->cslot[1] = ct;
            gs->slot[0] = slot = nt;
            nslot = ns;
        }
        size_t h = hash_key(ki, ncols) & (nslot - 1);
        for (;;) {
            if (!slot[h]) {
                slot[h] = ndist + 1;
                ref[ndist].key = ki;
                ref[ndist].ncols = ncols;
                ref[ndist].i = ndist;
                g->code[i] = ndist++;
                break;
            }
            if (memcmp(ref[slot[h] - 1].key, ki, ncols * sizeof *key) == 0) {
                g->code[i] = slot[h] - 1;
                break;
            }
            h = (h + 1) & (nslot - 1);
        }
    }
    keyref *tmp = gs->tmp = bh_reserve(gs->tmp, &gs->ctmp, ndist, sizeof *tmp);
    size_t *rank = gs->rank = bh_reserve(gs->rank, &gs->crank, ndist, sizeof *rank);
    if (!tmp || !rank)
        return nomem(err);
    sort_refs(ref, tmp, ndist);
    /* rank[first-seen id] = position in key order; each label's length
     * first, so that every label string has room for the longest */
    char num[40];
    size_t room = 1;
    for (size_t s = 0; s < ndist; s++) {
        rank[ref[s].i] = s;
        size_t len = 1;
        for (size_t c = 0; c < ncols; c++) {
            const bh_column *col = cc[c];
            if (col->type == BH_COL_CATEGORICAL)
                len += strlen(col->levels[(size_t)ref[s].key[c]]) + 1;
            else
                len += sizeof num;
        }
        room = len > room ? len : room;
    }
    if (!grouping_room(g, n1, ndist, room))
        return nomem(err);
    for (size_t s = 0; s < ndist; s++) {
        char *lab = g->labels[s];
        lab[0] = '\0';
        for (size_t c = 0; c < ncols; c++) {
            const bh_column *col = cc[c];
            if (c)
                strcat(lab, ":");
            if (col->type == BH_COL_CATEGORICAL) {
                strcat(lab, col->levels[(size_t)ref[s].key[c]]);
            } else {
                snprintf(num, sizeof num, "%.15g", ref[s].key[c]);
                strcat(lab, num);
            }
        }
    }
    g->ngroups = ndist;
    for (size_t i = 0; i < n; i++)
        g->code[i] = rank[g->code[i]];
    return BH_OK;
}

bh_status bh_grouping_build(const bh_frame *data, const char *const *cols,
                            size_t ncols, const size_t *rows, size_t n,
                            bh_grouping **out, bh_error *err)
{
    *out = NULL;
    if (ncols == 0)
        return bh_error_set(err, BH_EINTERNAL, "grouping without columns");
    bh_grouping *g = calloc(1, sizeof *g);
    if (!g)
        return nomem(err);
    grouping_scratch gs = {0};
    bh_status st = grouping_fill(data, cols, ncols, rows, n, g, &gs, err);
    grouping_scratch_release(&gs);
    if (st)
        bh_grouping_free(g);
    else
        *out = g;
    return st;
}

/* ------------------------------------------------------------ design */

/* What a rebuilt design keeps between builds: the terms' workspace, the
 * column map, and the last build's strings (taken back when the next build
 * needs the same text, so a simulation copies no names). */
struct bh_design_scratch {
    bh_terms_ws *tws;
    size_t *map, cap_map;
    char *source;
    char **ynames;
    size_t nynames;
    /* the last build's groupings, refilled by the next (grouping_fill) */
    bh_grouping *cluster;
    bh_grouping *re;
    size_t nre;
    grouping_scratch gs;
};

static void free_names(char **names, size_t n)
{
    if (names)
        for (size_t k = 0; k < n; k++)
            free(names[k]);
    free(names);
}

/* Free an array of n groupings (contents and array). */
static void groupings_free(bh_grouping *g, size_t n)
{
    for (size_t k = 0; g && k < n; k++)
        grouping_clear(&g[k]);
    free(g);
}

static void scratch_free(struct bh_design_scratch *sc)
{
    if (!sc)
        return;
    bh_grouping_free(sc->cluster);
    groupings_free(sc->re, sc->nre);
    grouping_scratch_release(&sc->gs);
    bh_terms_ws_free(sc->tws);
    free(sc->map);
    free(sc->source);
    free_names(sc->ynames, sc->nynames);
    free(sc);
}

/* Free what d points to.  With keep, x, y and rows stay (with their
 * capacities) for the next build into d. */
static void design_clear(bh_design *d, int keep)
{
    struct bh_design_scratch *sc = d->scratch;
    bh_terms_free(d->terms);
    if (keep && sc) {
        /* the strings wait in the scratch for the next build */
        if (d->source) {
            free(sc->source);
            sc->source = d->source;
        }
        if (d->ynames) {
            free_names(sc->ynames, sc->nynames);
            sc->ynames = d->ynames;
            sc->nynames = d->m;
        }
        /* so do the groupings, to be refilled */
        if (d->cluster) {
            bh_grouping_free(sc->cluster);
            sc->cluster = d->cluster;
            d->cluster = NULL;
        }
        if (d->re) {
            groupings_free(sc->re, sc->nre);
            sc->re = d->re;
            sc->nre = d->nre;
            d->re = NULL;
        }
    } else {
        free(d->source);
        free_names(d->ynames, d->m);
    }
    free(d->w);
    free(d->weights_name);
    free(d->offset);
    bh_grouping_free(d->cluster);
    groupings_free(d->re, d->nre);
    free(d->z);
    double *x = d->x, *y = d->y;
    size_t *rows = d->rows;
    size_t cx = d->cap_x, cy = d->cap_y, cr = d->cap_rows;
    if (!keep) {
        free(x);
        free(y);
        free(rows);
        scratch_free(sc);
        sc = NULL;
    }
    memset(d, 0, sizeof *d);
    d->scratch = sc;
    if (keep) {
        d->x = x;
        d->y = y;
        d->rows = rows;
        d->cap_x = x ? cx : 0;
        d->cap_y = y ? cy : 0;
        d->cap_rows = rows ? cr : 0;
    }
}

void bh_design_free(bh_design *d)
{
    if (!d)
        return;
    design_clear(d, 0);
    free(d);
}


/* The first non-finite value of a column-major block, reported with the
 * column name and data row. */
static bh_status check_finite(const double *x, size_t n, size_t p,
                              char *const *names, const size_t *rows,
                              const char *what, const char *source,
                              bh_error *err)
{
    /* One branch-free pass over the exponent bits first (a double is not
     * finite when they are all ones); the search for the first bad value
     * only when there is one. */
    const uint64_t expo = 0x7ff0000000000000ULL, one = 0x0010000000000000ULL;
    uint64_t bad = 0;
    for (size_t k = 0; k < n * p; k++) {
        uint64_t b;
        memcpy(&b, x + k, sizeof b);
        bad |= (b & expo) + one;   /* carries into bit 63 only from 0x7ff */
    }
    if (!(bad >> 63))
        return BH_OK;
    for (size_t j = 0; j < p; j++)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(x[j * n + i]))
                return bh_error_at(err, BH_EDATA, source, 0, 0,
                                   "%s '%s' is %g in data row %zu (a "
                                   "transformation outside its domain?)",
                                   what, names[j], x[j * n + i], rows[i] + 1);
    return BH_OK;
}

/* A numeric option column (weights): must exist and hold numbers. */
static bh_status option_column(const bh_frame *data, const char *what,
                               const char *name, int numeric, long *idx,
                               bh_error *err)
{
    *idx = bh_frame_index(data, name);
    if (*idx < 0)
        return unknown_column(data, what, name, err);
    const bh_column *c = &data->cols[*idx];
    if (numeric && c->type != BH_COL_NUMERIC) {
        if (c->first_text)
            return bh_error_at(err, BH_EDATA, NULL, c->first_text_line,
                               c->file_column,
                               "%s column '%s' is numeric except for '%s' at "
                               "%s:line %zu; use --na %s", what, name,
                               c->first_text,
                               data->source ? data->source : "<data>",
                               c->first_text_line, c->first_text);
        return bh_error_set(err, BH_EDATA,
                            "%s column '%s' is categorical; %s must be numbers",
                            what, name, what);
    }
    return BH_OK;
}

/* Responses, weights, offsets, cluster and random-effect groupings and the
 * precision design, in the order in which bh_design_build checks them
 * (after X).  Reads only the design's rows of `data`. */
static bh_status build_rest(bh_design *d, const bh_frame *data,
                            const size_t *map, const bh_design_options *opt,
                            long wcol, long ccol, bh_error *err)
{
    const bh_terms *t = d->terms;
    const bh_formula *g = t->formula;
    size_t n = d->n;
    size_t *phimap = NULL;
    bh_status st = BH_OK;
    d->m = g->nlhs;
    if (d->m) {
        struct bh_design_scratch *sc = d->scratch;
        d->y = bh_reserve(d->y, &d->cap_y, n * d->m, sizeof *d->y);
        if (sc && sc->ynames && sc->nynames == d->m) {
            /* the last build's names, kept where the text is the same */
            d->ynames = sc->ynames;
            sc->ynames = NULL;
            sc->nynames = 0;
        } else
            d->ynames = calloc(d->m, sizeof *d->ynames);
        if (!d->y || !d->ynames)
            return nomem(err);
        for (size_t k = 0; k < d->m; k++) {
            if (!d->ynames[k] || strcmp(d->ynames[k], g->lhs_labels[k])) {
                free(d->ynames[k]);
                if (!(d->ynames[k] = xstrdup(g->lhs_labels[k])))
                    return nomem(err);
            }
            if ((st = bh_terms_eval_expr_rows(t, g->lhs[k], data, map, d->rows,
                                              n, NULL, 0, SIZE_MAX,
                                              d->y + k * n, NULL, err)))
                return st;
        }
        if ((st = check_finite(d->y, n, d->m, d->ynames, d->rows, "response",
                               data->source, err)))
            return st;
    }

    if (wcol >= 0) {
        const bh_column *wc = &data->cols[wcol];
        if (!(d->w = malloc(n * sizeof *d->w)) ||
            !(d->weights_name = xstrdup(opt->weights)))
            return nomem(err);
        for (size_t i = 0; i < n; i++) {
            double w = wc->num[d->rows[i]];
            if (!(w >= 0) || !isfinite(w))
                return bh_error_at(err, BH_EDATA, data->source, 0, 0,
                                   "weight '%s' is %g in data row %zu; weights "
                                   "must be finite and non-negative",
                                   opt->weights, w, d->rows[i] + 1);
            if (opt->weight_kind == BH_WEIGHTS_FREQUENCY && w != floor(w))
                return bh_error_at(err, BH_EDATA, data->source, 0, 0,
                                   "frequency weight '%s' is %g in data row "
                                   "%zu; frequency weights must be whole "
                                   "numbers", opt->weights, w, d->rows[i] + 1);
            d->w[i] = w;
        }
    }

    if (g->noffsets) {
        double *tmp = malloc(n * sizeof *tmp);
        d->offset = calloc(n, sizeof *d->offset);
        if (!tmp || !d->offset) {
            free(tmp);
            return nomem(err);
        }
        for (size_t k = 0; k < g->noffsets && !st; k++) {
            st = bh_terms_eval_expr_rows(t, g->offsets[k], data, map, d->rows,
                                         n, NULL, 0, SIZE_MAX, tmp, NULL, err);
            for (size_t i = 0; i < n && !st; i++)
                d->offset[i] += tmp[i];
        }
        free(tmp);
        if (st)
            return st;
        char *oname = "offset";
        if ((st = check_finite(d->offset, n, 1, &oname, d->rows, "offset",
                               data->source, err)))
            return st;
    }

    /* Groupings: a rebuilt design refills those of its last build. */
    struct bh_design_scratch *sc = d->scratch;
    if (ccol >= 0) {
        if (sc && sc->cluster) {
            d->cluster = sc->cluster;
            sc->cluster = NULL;
        } else if (!(d->cluster = calloc(1, sizeof *d->cluster)))
            return nomem(err);
        grouping_scratch own = {0};
        st = grouping_fill(data, &opt->cluster, 1, d->rows, n, d->cluster, sc ? &sc->gs : &own,
                           err);
        grouping_scratch_release(&own);
        if (st)
            return st;
    }

    if (g->nre) {
        if (sc && sc->re && sc->nre == g->nre) {
            d->re = sc->re;
            sc->re = NULL;
            sc->nre = 0;
        } else if (!(d->re = calloc(g->nre, sizeof *d->re)))
            return nomem(err);
        d->nre = g->nre;   /* zeroed or kept groupings: all freeable */
        grouping_scratch own = {0};
        for (size_t k = 0; k < g->nre && !st; k++)
            st = grouping_fill(data, (const char *const *)g->re[k].group, g->re[k].ngroup,
                               d->rows, n, &d->re[k], sc ? &sc->gs : &own, err);
        grouping_scratch_release(&own);
        if (st)
            return st;
    }

    if (t->phi) {
        phimap = malloc((t->phi->nraw + 1) * sizeof *phimap);
        if (!phimap)
            return nomem(err);
        d->pz = t->phi->p;
        d->z = malloc((n * d->pz > 0 ? n * d->pz : 1) * sizeof *d->z);
        if (!d->z)
            st = nomem(err);
        else if (!(st = bh_terms_map(t->phi, data, phimap, err)) &&
                 !(st = bh_terms_eval_rows_ws(t->phi, data, phimap, d->rows, n,
                                              NULL, 0, SIZE_MAX, d->z, n,
                                              d->scratch ? d->scratch->tws : NULL,
                                              err)))
            st = check_finite(d->z, n, d->pz, t->phi->colnames, d->rows,
                              "precision design column", data->source, err);
        free(phimap);
    }
    return st;
}

/* X in one pass over the rows, every column at once. */
static bh_status build_x(bh_design *d, const bh_frame *data, const size_t *map,
                         bh_error *err)
{
    size_t n = d->n;
    d->p = d->terms->p;
    if (!(d->x = bh_reserve(d->x, &d->cap_x, n * d->p, sizeof *d->x)))
        return nomem(err);
    bh_status st = bh_terms_eval_rows_ws(d->terms, data, map, d->rows, n, NULL, 0,
                                         SIZE_MAX, d->x, n,
                                         d->scratch ? d->scratch->tws : NULL, err);
    return st ? st : check_finite(d->x, n, d->p, d->terms->colnames, d->rows,
                                  "design column", data->source, err);
}

/* last[c] = q for every frame column c that expression e reads. */
static void mark_columns(const bh_expr *e, const size_t *map, size_t q,
                         size_t *last)
{
    if (!e)
        return;
    if (e->kind == BH_EX_VAR && e->raw != SIZE_MAX)
        last[map[e->raw]] = q;
    mark_columns(e->arg[0], map, q, last);
    mark_columns(e->arg[1], map, q, last);
}

/* X term by term, giving each frame column back as soon as no remaining
 * term reads it: X's pages are first written while the frame's are freed,
 * so the two never both live in full.  bh_terms_eval_term gives each term's
 * columns exactly as bh_terms_eval_rows does, so X is bit-identical to
 * build_x's.  The check for non-finite values runs over the
 * finished X, so its message is also the same.  Columns not read by X are
 * released first (the caller has built everything else). */
static bh_status build_x_consume(bh_design *d, bh_frame *own,
                                 const size_t *map, bh_error *err)
{
    const bh_terms *t = d->terms;
    size_t n = d->n;
    size_t *last = malloc((own->ncol + 1) * sizeof *last);
    bh_status st = BH_OK;
    if (!last) {
        st = nomem(err);
        goto done;
    }
    for (size_t c = 0; c < own->ncol; c++)
        last[c] = SIZE_MAX;
    for (size_t q = 0; q < t->nterms; q++)
        for (size_t a = 0; a < t->terms[q].nvars; a++)
            mark_columns(t->vars[t->terms[q].vars[a]].expr, map, q, last);
    for (size_t c = 0; c < own->ncol; c++)
        if (last[c] == SIZE_MAX)
            bh_frame_release_column(own, c);

    d->p = t->p;
    if (!(d->x = bh_reserve(d->x, &d->cap_x, n * d->p, sizeof *d->x))) {
        st = nomem(err);
        goto done;
    }
    if (t->intercept)
        for (size_t i = 0; i < n; i++)
            d->x[i] = 1.0;
    for (size_t q = 0; q < t->nterms && !st; q++) {
        st = bh_terms_eval_term(t, q, own, map, d->rows, n, d->x + t->terms[q].col0 * n, n,
                                err);
        for (size_t c = 0; c < own->ncol; c++)
            if (last[c] == q)
                bh_frame_release_column(own, c);
    }
    if (!st)
        st = check_finite(d->x, n, d->p, t->colnames, d->rows, "design column",
                          own->source, err);
done:
    free(last);
    return st;
}

/* The design of `data`; with own (== data) the frame's columns are given
 * back as soon as the design has taken what it needs of them. */
static bh_status build(const bh_formula *f, const bh_frame *data, bh_frame *own,
                       const bh_design_options *opt, bh_design *reuse,
                       bh_design **out, bh_error *err)
{
    *out = NULL;
    bh_design_options defopt;
    if (!opt) {
        bh_design_default_options(&defopt);
        opt = &defopt;
    }
    const char **names = NULL;    /* owned unless from the scratch */
    size_t *owncols = NULL, nvar = 0, *map = NULL;
    const size_t *cols = NULL;
    bh_status st;
    bh_design *d = reuse;
    bh_terms *old_terms = NULL;   /* retrained in place when it fits */
    struct bh_design_scratch *sc = NULL;
    if (d) {
        old_terms = d->terms;
        d->terms = NULL;
        design_clear(d, 1);
        /* a rebuilt design keeps its scratch for the builds to come */
        if (!d->scratch && (d->scratch = calloc(1, sizeof *d->scratch)) &&
            !(d->scratch->tws = bh_terms_ws_alloc())) {
            free(d->scratch);
            d->scratch = NULL;
        }
        if (!(sc = d->scratch)) {
            st = nomem(err);
            goto fail;
        }
    } else if (!(d = calloc(1, sizeof *d)))
        return nomem(err);
    d->weight_kind = opt->weight_kind;
    if (data->source) {
        if (sc && sc->source && !strcmp(sc->source, data->source)) {
            d->source = sc->source;
            sc->source = NULL;
        } else if (!(d->source = xstrdup(data->source))) {
            st = nomem(err);
            goto fail;
        }
    }
    if (sc) {
        const char *const *cnames;
        st = bh_formula_find_columns_ws(f, data, sc->tws, &cnames, &cols, &nvar, err);
    } else {
        st = bh_formula_find_columns(f, data, &names, &owncols, &nvar, err);
        cols = owncols;
    }
    if (st)
        goto fail;
    long wcol = -1, ccol = -1;
    if (opt->weights &&
        (st = option_column(data, "weights", opt->weights, 1, &wcol, err)))
        goto fail;
    if (opt->cluster &&
        (st = option_column(data, "cluster", opt->cluster, 0, &ccol, err)))
        goto fail;
    if (own) {
        /* Columns the model never reads go at once. */
        for (size_t c = 0; c < own->ncol; c++) {
            int used = (long)c == wcol || (long)c == ccol;
            for (size_t k = 0; k < nvar && !used; k++)
                used = cols[k] == c;
            if (!used)
                bh_frame_release_column(own, c);
        }
    }

    /* Listwise deletion over every column the model reads. */
    size_t N = data->nrow;
    d->nrow_data = N;
    if (!(d->rows = bh_reserve(d->rows, &d->cap_rows, N, sizeof *d->rows))) {
        st = nomem(err);
        goto fail;
    }
    /* One column at a time (sequential, branch-free): rows keeps, in
     * order, the frame rows complete in every column filtered so far. */
    for (size_t r = 0; r < N; r++)
        d->rows[r] = r;
    d->n = N;
    for (size_t k = 0; k < nvar + 2; k++) {
        long c = k < nvar ? (long)cols[k] : k == nvar ? wcol : ccol;
        if (c < 0)
            continue;
        const unsigned char *na = data->cols[c].na;
        size_t m = 0;
        for (size_t i = 0; i < d->n; i++) {
            size_t r = d->rows[i];
            d->rows[m] = r;
            m += !na[r];
        }
        d->n = m;
    }
    d->ndropped = N - d->n;
    if (d->n == 0) {
        char list[512] = "";
        size_t L = 0;
        for (size_t k = 0; k < nvar + 2; k++) {
            long c = k < nvar ? (long)cols[k] : k == nvar ? wcol : ccol;
            if (c < 0)
                continue;
            size_t miss = 0;
            for (size_t r = 0; r < N; r++)
                miss += data->cols[c].na[r];
            if (miss && L < sizeof list - 1)
                L += (size_t)snprintf(list + L, sizeof list - L, "%s%s %zu",
                                      L ? ", " : "", data->cols[c].name, miss);
            if (L >= sizeof list)
                L = sizeof list - 1;
        }
        st = bh_error_at(err, BH_EDATA, data->source, 0, 0,
                         "no complete rows: listwise deletion removed all %zu "
                         "rows%s%s%s", N, L ? " (missing values: " : "", list,
                         L ? ")" : "");
        goto fail;
    }

    d->terms = old_terms;
    old_terms = NULL;
    if ((st = bh_terms_retrain_ws(f, data, d->rows, d->n, &d->terms,
                                  sc ? sc->tws : NULL, err)))
        goto fail;
    if (sc)
        map = sc->map = bh_reserve(sc->map, &sc->cap_map, d->terms->nraw + 1, sizeof *map);
    else
        map = malloc((d->terms->nraw + 1) * sizeof *map);
    if (!map) {
        st = nomem(err);
        goto fail;
    }
    if ((st = bh_terms_map(d->terms, data, map, err)))
        goto fail;

    if (!own) {
        if ((st = build_x(d, data, map, err)) ||
            (st = build_rest(d, data, map, opt, wcol, ccol, err)))
            goto fail;
    } else {
        /* Everything but X first, so that X can then be filled while the
         * frame is given back.  X is checked first in the other order: when
         * something else fails, X decides which message the user sees. */
        bh_error e_rest;
        bh_error_clear(&e_rest);
        if ((st = build_rest(d, data, map, opt, wcol, ccol, &e_rest))) {
            bh_status sx = build_x(d, data, map, err);
            if (sx)
                st = sx;
            else if (err)
                *err = e_rest;
            goto fail;
        }
        if ((st = build_x_consume(d, own, map, err)))
            goto fail;
        if (d->ndropped == 0) {
            /* Design row i is data row i: bh_design_data_row needs no
             * table, and no frame is left that the rows could index. */
            free(d->rows);
            d->rows = NULL;
            d->cap_rows = 0;
        }
    }
    free(names);
    free(owncols);
    if (!sc)
        free(map);
    *out = d;
    return BH_OK;
fail:
    free(names);
    free(owncols);
    if (!sc)
        free(map);
    bh_terms_free(old_terms);
    if (reuse)
        design_clear(d, 1);
    else
        bh_design_free(d);
    return st;
}

bh_status bh_design_build(const bh_formula *f, const bh_frame *data,
                          const bh_design_options *opt, bh_design **out,
                          bh_error *err)
{
    return build(f, data, NULL, opt, NULL, out, err);
}

bh_status bh_design_rebuild(const bh_formula *f, const bh_frame *data,
                            const bh_design_options *opt, bh_design *d,
                            bh_error *err)
{
    bh_design *out;
    return build(f, data, NULL, opt, d, &out, err);
}

bh_status bh_design_build_consume(const bh_formula *f, bh_frame **data,
                                  const bh_design_options *opt,
                                  bh_design **out, bh_error *err)
{
    *out = NULL;
    if (!data || !*data)
        return bh_error_set(err, BH_EINTERNAL, "no data frame to build from");
    bh_status st = build(f, *data, *data, opt, NULL, out, err);
    bh_frame_free(*data);
    *data = NULL;
    return st;
}

size_t bh_design_data_row(const bh_design *d, size_t i)
{
    return (d->rows ? d->rows[i] : i) + 1;
}

const char *bh_design_colname(const bh_design *d, const char *const *names, size_t j,
                              char *buf, size_t bufsize)
{
    if (d->terms && d->terms->colnames && d->terms->colnames[j])
        return d->terms->colnames[j];
    if (names && names[j])
        return names[j];
    snprintf(buf, bufsize, "x%zu", j + 1);
    return buf;
}

int bh_design_has_intercept(const bh_design *d)
{
    if (d->terms)
        return d->terms->intercept != 0;
    for (size_t j = 0; j < d->p; j++) {
        const double *c = d->x + j * d->n;
        if (d->n == 0 || c[0] == 0)
            continue;
        size_t i = 1;
        while (i < d->n && c[i] == c[0])
            i++;
        if (i == d->n)
            return 1;
    }
    return 0;
}
