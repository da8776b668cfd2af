/* terms.c - bind a parsed formula to data, train it, evaluate design rows
 * and their exact derivatives.
 *
 * Evaluation works on blocks of rows with stack buffers, so building a
 * design for millions of rows never allocates per row, and one evaluator
 * serves design building, prediction and marginal effects.  Derivatives are
 * forward-mode: every node carries (value, d value / d raw variable).
 */
#include "blackhole/terms.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/buf.h"

#define BLK 128   /* rows evaluated together */

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

/* ------------------------------------------------------ raw variables */

typedef struct {
    const char **name;
    size_t *pos;
    size_t n, cap;
} rawlist;

static int raw_add(rawlist *r, const char *name, size_t pos)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->name[i], name)) {
            if (pos < r->pos[i])
                r->pos[i] = pos;
            return 0;
        }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        const char **a = realloc(r->name, cap * sizeof *a);
        if (!a)
            return -1;
        r->name = a;
        size_t *b = realloc(r->pos, cap * sizeof *b);
        if (!b)
            return -1;
        r->pos = b;
        r->cap = cap;
    }
    r->name[r->n] = name;
    r->pos[r->n] = pos;
    r->n++;
    return 0;
}

static int raw_expr(rawlist *r, const bh_expr *e)
{
    if (!e)
        return 0;
    if (e->kind == BH_EX_VAR)
        return raw_add(r, e->name, e->pos);
    return raw_expr(r, e->arg[0]) || raw_expr(r, e->arg[1]);
}

static int raw_formula(rawlist *r, const bh_formula *f)
{
    for (size_t i = 0; i < f->nlhs; i++)
        if (raw_expr(r, f->lhs[i]))
            return -1;
    for (size_t i = 0; i < f->nvars; i++)
        if (raw_expr(r, f->vars[i].expr))
            return -1;
    for (size_t i = 0; i < f->noffsets; i++)
        if (raw_expr(r, f->offsets[i]))
            return -1;
    for (size_t i = 0; i < f->nre; i++)
        for (size_t j = 0; j < f->re[i].ngroup; j++)
            if (raw_add(r, f->re[i].group[j], f->re[i].pos))
                return -1;
    return f->phi ? raw_formula(r, f->phi) : 0;
}

/* All raw variables in order of first appearance in the text.  r's
 * arrays (empty, or kept from an earlier list) are reused and stay the
 * caller's, also on error. */
static bh_status collect_raw(const bh_formula *f, rawlist *r, bh_error *err)
{
    r->n = 0;
    if (raw_formula(r, f))
        return nomem(err);
    /* insertion sort by position: short lists, and stable */
    for (size_t i = 1; i < r->n; i++) {
        const char *nm = r->name[i];
        size_t p = r->pos[i], j = i;
        while (j > 0 && r->pos[j - 1] > p) {
            r->name[j] = r->name[j - 1];
            r->pos[j] = r->pos[j - 1];
            j--;
        }
        r->name[j] = nm;
        r->pos[j] = p;
    }
    return BH_OK;
}

bh_status bh_formula_rawvars(const bh_formula *f, const char ***names,
                             size_t *n, bh_error *err)
{
    rawlist r = {0};
    bh_status st = collect_raw(f, &r, err);
    if (st) {
        free(r.name);
        free(r.pos);
        return st;
    }
    free(r.pos);
    *names = r.name;
    *n = r.n;
    return BH_OK;
}

static bh_status unknown_var(const bh_frame *data, const char *name,
                             size_t pos, bh_error *err)
{
    char q[160];
    const char *s = bh_frame_suggest(data, name);
    bh_quote(q, sizeof q, name, 100);
    if (s) {
        char q2[160];
        return bh_error_at(err, BH_EFORMULA, "formula", 1, pos,
                           "unknown variable '%s' (did you mean '%s'?)", q,
                           bh_quote(q2, sizeof q2, s, 100));
    }
    /* One column whose name holds a separator: the file was read with the
     * wrong --sep (a ';' export read as ',' is the common case). */
    if (data->ncol == 1 && strpbrk(data->cols[0].name, ",;\t|")) {
        char q2[160];
        return bh_error_at(err, BH_EFORMULA, "formula", 1, pos,
                           "unknown variable '%s': %s has a single column named "
                           "'%s'; is the field separator wrong? (see --sep)", q,
                           data->source ? data->source : "the data",
                           bh_quote(q2, sizeof q2, data->cols[0].name, 100));
    }
    return bh_error_at(err, BH_EFORMULA, "formula", 1, pos,
                       "unknown variable '%s' (no such column in %s)", q,
                       data->source ? data->source : "the data");
}


/* The raw variables into r and their frame columns into *cols (capacity
 * *capc); the memory stays the caller's, also on error. */
static bh_status find_columns(const bh_formula *f, const bh_frame *data,
                              rawlist *r, size_t **cols, size_t *capc,
                              bh_error *err)
{
    bh_status st = collect_raw(f, r, err);
    if (st)
        return st;
    if (!(*cols = bh_reserve(*cols, capc, r->n, sizeof **cols)))
        return nomem(err);
    for (size_t k = 0; k < r->n; k++) {
        long j = bh_frame_index(data, r->name[k]);
        if (j < 0)
            return unknown_var(data, r->name[k], r->pos[k], err);
        (*cols)[k] = (size_t)j;
    }
    return BH_OK;
}

bh_status bh_formula_find_columns(const bh_formula *f, const bh_frame *data,
                                  const char ***names, size_t **cols,
                                  size_t *n, bh_error *err)
{
    rawlist r = {0};
    size_t *c = NULL, capc = 0;
    bh_status st = find_columns(f, data, &r, &c, &capc, err);
    free(r.pos);
    if (st) {
        free(r.name);
        free(c);
        return st;
    }
    *names = r.name;
    *cols = c;
    *n = r.n;
    return BH_OK;
}

/* ------------------------------------------------------------ free */

void bh_terms_free(bh_terms *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nraw; i++)
        free(t->rawvars[i]);
    free(t->rawvars);
    free(t->rawpos);
    for (size_t i = 0; i < t->nvars; i++) {
        free(t->vars[i].label);
        for (size_t l = 0; l < t->vars[i].nlevels; l++)
            free(t->vars[i].levels[l]);
        free(t->vars[i].levels);
        free(t->vars[i].levnum);
    }
    free(t->vars);
    for (size_t i = 0; i < t->nterms; i++) {
        free(t->terms[i].label);
        free(t->terms[i].vars);
        free(t->terms[i].contrast);
    }
    free(t->terms);
    for (size_t j = 0; j < t->p; j++)
        if (t->colnames)
            free(t->colnames[j]);
    free(t->colnames);
    free(t->col_term);
    bh_formula_free(t->formula);
    bh_terms_free(t->phi);
    free(t);
}

/* ------------------------------------------------------------ binding */

static void bind_expr(bh_expr *e, char **rawvars, size_t nraw)
{
    if (!e)
        return;
    if (e->kind == BH_EX_VAR) {
        for (size_t k = 0; k < nraw; k++)
            if (!strcmp(rawvars[k], e->name))
                e->raw = k;
        return;
    }
    bind_expr(e->arg[0], rawvars, nraw);
    bind_expr(e->arg[1], rawvars, nraw);
}

static size_t nonmissing(const bh_column *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += !c->na[i];
    return k;
}

/* A categorical column whose fields were mostly numbers: almost surely a
 * numeric column with a stray code such as "abc" or "n/a". */
static int mostly_numeric(const bh_column *c)
{
    return c->type == BH_COL_CATEGORICAL && c->first_text &&
           2 * c->numeric_fields > nonmissing(c);
}

static bh_status numeric_except(const bh_frame *data, const bh_column *c,
                                bh_error *err)
{
    char q[160], v[160];
    bh_quote(q, sizeof q, c->name, 100);
    bh_quote(v, sizeof v, c->first_text, 100);
    return bh_error_at(err, BH_EDATA, NULL, c->first_text_line, c->file_column,
                       "variable '%s' is numeric except for '%s' at %s:line "
                       "%zu; use --na %s or factor(%s)", q, v,
                       data->source ? data->source : "<data>",
                       c->first_text_line, v, q);
}

enum { CTX_BARE, CTX_FACTOR, CTX_ARITH, CTX_RESPONSE };

/* Check that the columns read by an expression can serve it. */
static bh_status check_expr(const bh_terms *t, const bh_frame *data,
                            const size_t *map, const bh_expr *e, int ctx,
                            const char *label, bh_error *err)
{
    if (!e)
        return BH_OK;
    if (e->kind == BH_EX_VAR) {
        const bh_column *c = &data->cols[map[e->raw]];
        if (c->type != BH_COL_CATEGORICAL || ctx == CTX_FACTOR)
            return BH_OK;
        if (mostly_numeric(c))
            return numeric_except(data, c, err);
        char q[160];
        bh_quote(q, sizeof q, c->name, 100);
        if (ctx == CTX_RESPONSE)
            return bh_error_at(err, BH_EDATA, "formula", 1, e->pos,
                               "the response '%s' is categorical (levels '%s', "
                               "...); a numeric response is needed", q,
                               c->nlevels ? c->levels[0] : "");
        if (ctx == CTX_ARITH)
            return bh_error_at(err, BH_EDATA, "formula", 1, e->pos,
                               "variable '%s' is categorical and cannot be "
                               "used in arithmetic in '%s'", q, label);
        return BH_OK;
    }
    int sub = ctx == CTX_RESPONSE ? CTX_RESPONSE : CTX_ARITH;
    if (e->kind == BH_EX_CALL && !strcmp(e->name, "factor") && ctx == CTX_BARE)
        sub = CTX_FACTOR;
    if (e->kind == BH_EX_CALL && !strcmp(e->name, "(") && ctx == CTX_FACTOR)
        sub = CTX_FACTOR;
    bh_status st = check_expr(t, data, map, e->arg[0], sub, label, err);
    if (!st)
        st = check_expr(t, data, map, e->arg[1], sub, label, err);
    return st;
}

/* The raw column under factor(v) (through parentheses), or NULL when the
 * argument is an expression. */
static const bh_expr *factor_column_arg(const bh_expr *e)
{
    const bh_expr *a = e->arg[0];
    while (a->kind == BH_EX_CALL && !strcmp(a->name, "("))
        a = a->arg[0];
    return a->kind == BH_EX_VAR ? a : NULL;
}

static int is_factor_call(const bh_expr *e)
{
    return e->kind == BH_EX_CALL && !strcmp(e->name, "factor");
}

bh_status bh_terms_map(const bh_terms *t, const bh_frame *data, size_t *map,
                       bh_error *err)
{
    for (size_t k = 0; k < t->nraw; k++) {
        long j = bh_frame_index(data, t->rawvars[k]);
        if (j < 0)
            return unknown_var(data, t->rawvars[k], t->rawpos[k], err);
        map[k] = (size_t)j;
    }
    const bh_formula *f = t->formula;
    bh_status st;
    for (size_t i = 0; i < f->nlhs; i++)
        if ((st = check_expr(t, data, map, f->lhs[i], CTX_RESPONSE,
                             f->lhs_labels[i], err)))
            return st;
    for (size_t i = 0; i < f->nvars; i++)
        if ((st = check_expr(t, data, map, f->vars[i].expr, CTX_BARE,
                             f->vars[i].label, err)))
            return st;
    for (size_t i = 0; i < f->noffsets; i++) {
        char *lab = bh_expr_deparse(f->offsets[i]);
        st = check_expr(t, data, map, f->offsets[i], CTX_ARITH,
                        lab ? lab : "offset", err);
        free(lab);
        if (st)
            return st;
    }
    /* After training: the column types must be those the model was
     * trained with (a model fitted with categorical 'firm' cannot read a
     * numeric 'firm'). */
    for (size_t i = 0; i < t->nvars && t->vars; i++) {
        const bh_tvar *v = &t->vars[i];
        const bh_expr *e = v->expr;
        const bh_expr *col = NULL;
        int want_cat = 0;
        if (e->kind == BH_EX_VAR) {
            col = e;
            want_cat = v->kind == BH_TV_FACTOR;
        } else if (is_factor_call(e) && (col = factor_column_arg(e))) {
            want_cat = v->levnum == NULL;
        }
        if (!col)
            continue;
        const bh_column *c = &data->cols[map[col->raw]];
        int is_cat = c->type == BH_COL_CATEGORICAL;
        if (is_cat != want_cat)
            return bh_error_at(err, BH_EDATA, "formula", 1, col->pos,
                               "variable '%s' was %s when the model was "
                               "fitted but is %s in %s", c->name,
                               want_cat ? "categorical" : "numeric",
                               is_cat ? "categorical" : "numeric",
                               data->source ? data->source : "the data");
    }
    return BH_OK;
}

/* ------------------------------------------------------------ evaluation */

typedef struct {
    const bh_terms *t;
    const bh_frame *data;
    const size_t *map;
    const size_t *rows;      /* this block's frame rows */
    size_t nb;
    const bh_override *ov;
    size_t nov;
    size_t draw;             /* SIZE_MAX: values only */
    bh_error *err;
} evctx;

static const bh_override *find_ov(const evctx *c, size_t raw)
{
    for (size_t i = 0; i < c->nov; i++)
        if (c->ov[i].raw == raw)
            return &c->ov[i];
    return NULL;
}

static bh_status missing_at(const evctx *c, const char *name, size_t row)
{
    return bh_error_at(c->err, BH_EDATA, c->data->source, 0, 0,
                       "missing value of '%s' in data row %zu", name, row + 1);
}

/* Value and (if d) derivative of e at the block's rows. */
static bh_status ev(const evctx *c, const bh_expr *e, double *v, double *d)
{
    size_t nb = c->nb;
    bh_status st;
    switch (e->kind) {
    case BH_EX_NUM:
        for (size_t i = 0; i < nb; i++)
            v[i] = e->num;
        if (d)
            memset(d, 0, nb * sizeof *d);
        return BH_OK;
    case BH_EX_VAR: {
        const bh_override *o = find_ov(c, e->raw);
        if (o) {
            for (size_t i = 0; i < nb; i++)
                v[i] = o->value;
        } else {
            const bh_column *col = &c->data->cols[c->map[e->raw]];
            if (col->type != BH_COL_NUMERIC)
                return bh_error_at(c->err, BH_EINTERNAL, "formula", 1, e->pos,
                                   "variable '%s' is not numeric", e->name);
            /* gather first, look for the missing value only if any */
            unsigned char anyna = 0;
            for (size_t i = 0; i < nb; i++) {
                size_t r = c->rows[i];
                anyna |= col->na[r];
                v[i] = col->num[r];
            }
            for (size_t i = 0; anyna && i < nb; i++)
                if (col->na[c->rows[i]])
                    return missing_at(c, e->name, c->rows[i]);
        }
        if (d) {
            double one = e->raw == c->draw ? 1.0 : 0.0;
            for (size_t i = 0; i < nb; i++)
                d[i] = one;
        }
        return BH_OK;
    }
    case BH_EX_NEG:
        if ((st = ev(c, e->arg[0], v, d)))
            return st;
        for (size_t i = 0; i < nb; i++)
            v[i] = -v[i];
        if (d)
            for (size_t i = 0; i < nb; i++)
                d[i] = -d[i];
        return BH_OK;
    case BH_EX_ADD: case BH_EX_SUB: case BH_EX_MUL: case BH_EX_DIV:
    case BH_EX_POW: {
        double b[BLK], db[BLK];
        if ((st = ev(c, e->arg[0], v, d)) ||
            (st = ev(c, e->arg[1], b, d ? db : NULL)))
            return st;
        for (size_t i = 0; i < nb; i++) {
            double a = v[i], da = d ? d[i] : 0, bb = b[i], dbb = d ? db[i] : 0;
            double r, dr = 0;
            switch (e->kind) {
            case BH_EX_ADD: r = a + bb; dr = da + dbb; break;
            case BH_EX_SUB: r = a - bb; dr = da - dbb; break;
            case BH_EX_MUL: r = a * bb; dr = da * bb + a * dbb; break;
            case BH_EX_DIV:
                r = a / bb;
                dr = (da - r * dbb) / bb;
                break;
            default:
                r = pow(a, bb);
                /* d a^b = b a^(b-1) da + a^b log(a) db; each part only
                 * when its differential is non-zero, so that x^2 at x <= 0
                 * stays finite. */
                dr = 0;
                if (da != 0)
                    dr += bb * pow(a, bb - 1) * da;
                if (dbb != 0)
                    dr += r * log(a) * dbb;
                break;
            }
            v[i] = r;
            if (d)
                d[i] = dr;
        }
        return BH_OK;
    }
    case BH_EX_CALL: {
        const char *fn = e->name;
        if ((st = ev(c, e->arg[0], v, d)))
            return st;
        if (!strcmp(fn, "(") || !strcmp(fn, "I"))
            return BH_OK;
        if (!strcmp(fn, "log")) {
            for (size_t i = 0; i < nb; i++) {
                if (d)
                    d[i] /= v[i];
                v[i] = log(v[i]);
            }
        } else if (!strcmp(fn, "exp")) {
            for (size_t i = 0; i < nb; i++) {
                v[i] = exp(v[i]);
                if (d)
                    d[i] *= v[i];
            }
        } else if (!strcmp(fn, "sqrt")) {
            for (size_t i = 0; i < nb; i++) {
                v[i] = sqrt(v[i]);
                if (d)
                    d[i] /= 2 * v[i];
            }
        } else if (!strcmp(fn, "abs")) {
            for (size_t i = 0; i < nb; i++) {
                if (d)
                    d[i] *= v[i] > 0 ? 1.0 : v[i] < 0 ? -1.0 : 0.0;
                v[i] = fabs(v[i]);
            }
        } else if (!strcmp(fn, "center") || !strcmp(fn, "scale")) {
            if (!e->trained)
                return bh_error_at(c->err, BH_EINTERNAL, "formula", 1, e->pos,
                                   "%s() evaluated before training", fn);
            double m = e->state[0];
            double s = !strcmp(fn, "scale") ? e->state[1] : 1.0;
            for (size_t i = 0; i < nb; i++) {
                v[i] = (v[i] - m) / s;
                if (d)
                    d[i] /= s;
            }
        } else {
            return bh_error_at(c->err, BH_EINTERNAL, "formula", 1, e->pos,
                               "%s() cannot be evaluated numerically", fn);
        }
        return BH_OK;
    }
    }
    return bh_error_set(c->err, BH_EINTERNAL, "bad expression node");
}

/* Evaluate over arbitrarily many rows, BLK at a time. */
static bh_status ev_rows(evctx *c, const bh_expr *e, const size_t *rows,
                         size_t n, double *v, double *d)
{
    for (size_t s = 0; s < n; s += BLK) {
        c->rows = rows + s;
        c->nb = n - s < BLK ? n - s : BLK;
        bh_status st = ev(c, e, v + s, d ? d + s : NULL);
        if (st)
            return st;
    }
    return BH_OK;
}

static int cmp_level_key(const void *k, const void *el)
{
    return bh_level_cmp((const char *)k, *(char *const *)el);
}

static long find_level(const bh_tvar *v, const char *s)
{
    char **hit = bsearch(s, v->levels, v->nlevels, sizeof *v->levels,
                         cmp_level_key);
    return hit ? (long)(hit - v->levels) : -1;
}

/* Canonical value of a number as a factor level: R's as.character keeps
 * 15 significant digits. */
static double level_value(double x, char *buf, size_t size)
{
    snprintf(buf, size, "%.15g", x);
    return strtod(buf, NULL);
}

static long find_numlevel(const bh_tvar *v, double x)
{
    size_t lo = 0, hi = v->nlevels;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->levnum[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->nlevels && v->levnum[lo] == x ? (long)lo : -1;
}

static bh_status unseen(const evctx *c, const bh_tvar *v, const char *lev,
                        size_t row)
{
    char q[160];
    return bh_error_at(c->err, BH_EDATA, c->data->source, 0, 0,
                       "level '%s' of variable '%s' (data row %zu) was not "
                       "present when the model was fitted",
                       bh_quote(q, sizeof q, lev, 100), v->label, row + 1);
}

/* Training-level index of factor variable v at the block's rows. */
static bh_status ev_factor(const evctx *c, const bh_tvar *v, long *lev)
{
    const bh_expr *e = v->expr;
    const bh_expr *col = e->kind == BH_EX_VAR ? e : factor_column_arg(e);
    if (!v->levnum) {
        /* categorical column */
        const bh_override *o = find_ov(c, col->raw);
        if (o) {
            if (!o->level)
                return bh_error_set(c->err, BH_EUSAGE,
                                    "setting categorical variable '%s' needs a "
                                    "level, not a number", col->name);
            long l = find_level(v, o->level);
            if (l < 0)
                return unseen(c, v, o->level, c->rows[0]);
            for (size_t i = 0; i < c->nb; i++)
                lev[i] = l;
            return BH_OK;
        }
        const bh_column *cc = &c->data->cols[c->map[col->raw]];
        /* The block's rows repeat few frame codes: remember each code's
         * training level (direct-mapped) instead of a string search per row. */
        enum { NMEMO = 64 };
        int mkey[NMEMO];
        long mval[NMEMO];
        for (size_t k = 0; k < NMEMO; k++)
            mkey[k] = -1;
        for (size_t i = 0; i < c->nb; i++) {
            size_t r = c->rows[i];
            if (cc->na[r])
                return missing_at(c, cc->name, r);
            int code = cc->code[r];
            size_t slot = (size_t)code % NMEMO;
            if (mkey[slot] != code) {
                const char *s = cc->levels[code];
                long l = find_level(v, s);
                if (l < 0)
                    return unseen(c, v, s, r);
                mkey[slot] = code;
                mval[slot] = l;
            }
            lev[i] = mval[slot];
        }
        return BH_OK;
    }
    double val[BLK];
    bh_status st = ev(c, e->arg[0], val, NULL);
    if (st)
        return st;
    for (size_t i = 0; i < c->nb; i++) {
        char buf[40];
        double x = level_value(val[i], buf, sizeof buf);
        long l = find_numlevel(v, x);
        if (l < 0)
            return unseen(c, v, buf, c->rows[i]);
        lev[i] = l;
    }
    return BH_OK;
}

/* Workspace for one block: per variable values, derivatives, levels
 * (each array with its capacity, so that a bh_terms_ws keeps them). */
typedef struct {
    double *val, *der, *col, *dcol;
    long *lev;
    size_t *cnt, *idx;
    size_t cval, cder, ccol, cdcol, clev, ccnt, cidx;
} block_ws;

static void ws_free(block_ws *w)
{
    free(w->val);
    free(w->der);
    free(w->col);
    free(w->dcol);
    free(w->lev);
    free(w->cnt);
    free(w->idx);
}

/* Room for nvars variables over blocks of nb rows. */
static int ws_reserve(block_ws *w, size_t nvars, size_t nb)
{
    size_t m = (nvars ? nvars : 1) * nb;
    w->val = bh_reserve(w->val, &w->cval, m, sizeof *w->val);
    w->der = bh_reserve(w->der, &w->cder, m, sizeof *w->der);
    w->lev = bh_reserve(w->lev, &w->clev, m, sizeof *w->lev);
    w->col = bh_reserve(w->col, &w->ccol, nb, sizeof *w->col);
    w->dcol = bh_reserve(w->dcol, &w->cdcol, nb, sizeof *w->dcol);
    w->cnt = bh_reserve(w->cnt, &w->ccnt, nvars + 1, sizeof *w->cnt);
    w->idx = bh_reserve(w->idx, &w->cidx, nvars + 1, sizeof *w->idx);
    return w->val && w->der && w->lev && w->col && w->dcol && w->cnt && w->idx
               ? 0 : -1;
}

/* Scratch memory kept between calls (see terms.h). */
struct bh_terms_ws {
    rawlist raw;              /* bh_formula_find_columns_ws */
    size_t *cols, ccols;
    block_ws blk;             /* bh_terms_eval_rows_ws */
    size_t *map, cmap;        /* bh_terms_retrain_ws */
    double *buf;
    size_t cbuf;
    unsigned char *seen;
    size_t cseen;
};

bh_terms_ws *bh_terms_ws_alloc(void)
{
    return calloc(1, sizeof(bh_terms_ws));
}

void bh_terms_ws_free(bh_terms_ws *ws)
{
    if (!ws)
        return;
    free(ws->raw.name);
    free(ws->raw.pos);
    free(ws->cols);
    ws_free(&ws->blk);
    free(ws->map);
    free(ws->buf);
    free(ws->seen);
    free(ws);
}

bh_status bh_formula_find_columns_ws(const bh_formula *f, const bh_frame *data,
                                     bh_terms_ws *ws, const char *const **names,
                                     const size_t **cols, size_t *n,
                                     bh_error *err)
{
    bh_status st = find_columns(f, data, &ws->raw, &ws->cols, &ws->ccols, err);
    if (st)
        return st;
    *names = ws->raw.name;
    *cols = ws->cols;
    *n = ws->raw.n;
    return BH_OK;
}

/* Values only (no derivative) of the term columns, written straight into
 * the column-major block out[i + j*cs].  The same operations in the same
 * order as the general loop of eval_block (a product started at 1.0 is the
 * first factor itself, bit for bit), so the numbers are identical. */
static void eval_values(const bh_terms *t, const block_ws *w, size_t stride, size_t nb,
                        size_t j, double *out, size_t cs)
{
    size_t idx[64], cnt[64];
    for (size_t q = 0; q < t->nterms; q++) {
        const bh_tterm *tm = &t->terms[q];
        for (size_t a = 0; a < tm->nvars; a++) {
            const bh_tvar *v = &t->vars[tm->vars[a]];
            cnt[a] = v->kind == BH_TV_FACTOR ? v->nlevels - tm->contrast[a] : 1;
            idx[a] = 0;
        }
        for (size_t col = 0; col < tm->ncols; col++) {
            double *o = out + (j + col) * cs;
            for (size_t a = 0; a < tm->nvars; a++) {
                size_t k = tm->vars[a];
                const bh_tvar *v = &t->vars[k];
                if (v->kind == BH_TV_FACTOR) {
                    long want = (long)(idx[a] + tm->contrast[a]);
                    const long *lv = w->lev + k * stride;
                    /* branch-free: the levels of a block come in random
                     * order; +0.0 is all zero bits */
                    if (a == 0) {
                        for (size_t i = 0; i < nb; i++)
                            o[i] = (double)(lv[i] == want);
                    } else {
                        for (size_t i = 0; i < nb; i++) {
                            uint64_t bits;
                            memcpy(&bits, &o[i], sizeof bits);
                            bits &= -(uint64_t)(lv[i] == want);
                            memcpy(&o[i], &bits, sizeof bits);
                        }
                    }
                } else {
                    const double *x = w->val + k * stride;
                    if (a == 0)
                        memcpy(o, x, nb * sizeof *o);
                    else
                        for (size_t i = 0; i < nb; i++)
                            o[i] *= x[i];
                }
            }
            if (tm->nvars == 0)
                for (size_t i = 0; i < nb; i++)
                    o[i] = 1.0;
            for (size_t a = 0; a < tm->nvars; a++) {
                if (++idx[a] < cnt[a])
                    break;
                idx[a] = 0;
            }
        }
        j += tm->ncols;
    }
}

/* Whether every term has at most 64 variables (eval_values' index arrays). */
static int small_terms(const bh_terms *t)
{
    for (size_t q = 0; q < t->nterms; q++)
        if (t->terms[q].nvars > 64)
            return 0;
    return 1;
}

/* Fill the design block for the context's rows: out[i*rs + j*cs]. */
static bh_status eval_block(evctx *c, block_ws *w, size_t stride, double *out,
                            size_t rs, size_t cs)
{
    const bh_terms *t = c->t;
    size_t nb = c->nb;
    int deriv = c->draw != SIZE_MAX;
    bh_status st;
    for (size_t k = 0; k < t->nvars; k++) {
        const bh_tvar *v = &t->vars[k];
        if (v->kind == BH_TV_FACTOR)
            st = ev_factor(c, v, w->lev + k * stride);
        else
            st = ev(c, v->expr, w->val + k * stride,
                    deriv ? w->der + k * stride : NULL);
        if (st)
            return st;
    }
    size_t j = 0;
    if (t->intercept) {
        for (size_t i = 0; i < nb; i++)
            out[i * rs] = deriv ? 0.0 : 1.0;
        j = 1;
    }
    if (!deriv && rs == 1 && small_terms(t)) {
        eval_values(t, w, stride, nb, j, out, cs);
        return BH_OK;
    }
    for (size_t q = 0; q < t->nterms; q++) {
        const bh_tterm *tm = &t->terms[q];
        for (size_t a = 0; a < tm->nvars; a++) {
            const bh_tvar *v = &t->vars[tm->vars[a]];
            w->cnt[a] = v->kind == BH_TV_FACTOR ? v->nlevels - tm->contrast[a] : 1;
            w->idx[a] = 0;
        }
        for (size_t col = 0; col < tm->ncols; col++) {
            /* product of the term's variables, first varying fastest, with
             * the derivative by the product rule, built up factor by
             * factor */
            for (size_t i = 0; i < nb; i++) {
                w->col[i] = 1.0;
                w->dcol[i] = 0.0;
            }
            for (size_t a = 0; a < tm->nvars; a++) {
                size_t k = tm->vars[a];
                const bh_tvar *v = &t->vars[k];
                if (v->kind == BH_TV_FACTOR) {
                    long want = (long)(w->idx[a] + tm->contrast[a]);
                    const long *lv = w->lev + k * stride;
                    for (size_t i = 0; i < nb; i++)
                        if (lv[i] != want)
                            w->col[i] = w->dcol[i] = 0.0;
                } else {
                    const double *x = w->val + k * stride;
                    const double *dx = w->der + k * stride;
                    for (size_t i = 0; i < nb; i++) {
                        if (deriv)
                            w->dcol[i] = w->dcol[i] * x[i] + w->col[i] * dx[i];
                        w->col[i] *= x[i];
                    }
                }
            }
            const double *src = deriv ? w->dcol : w->col;
            for (size_t i = 0; i < nb; i++)
                out[i * rs + (j + col) * cs] = src[i];
            for (size_t a = 0; a < tm->nvars; a++) {
                if (++w->idx[a] < w->cnt[a])
                    break;
                w->idx[a] = 0;
            }
        }
        j += tm->ncols;
    }
    return BH_OK;
}

static bh_status check_ov(const bh_terms *t, const bh_override *ov, size_t nov,
                          bh_error *err)
{
    for (size_t i = 0; i < nov; i++)
        if (ov[i].raw >= t->nraw)
            return bh_error_set(err, BH_EUSAGE,
                                "override of raw variable %zu: the model has "
                                "only %zu", ov[i].raw, t->nraw);
    return BH_OK;
}

bh_status bh_terms_eval_rows_ws(const bh_terms *t, const bh_frame *data,
                                const size_t *map, const size_t *rows, size_t n,
                                const bh_override *ov, size_t nov, size_t draw,
                                double *x, size_t ldx, bh_terms_ws *ws,
                                bh_error *err)
{
    bh_status st = check_ov(t, ov, nov, err);
    if (st)
        return st;
    if (n == 0)
        return BH_OK;
    size_t nb = n < BLK ? n : BLK;
    block_ws own = {0};
    block_ws *w = ws ? &ws->blk : &own;
    if (ws_reserve(w, t->nvars, nb)) {
        ws_free(&own);
        return nomem(err);
    }
    evctx c = {.t = t, .data = data, .map = map, .ov = ov, .nov = nov,
               .draw = draw, .err = err};
    for (size_t s = 0; s < n && !st; s += BLK) {
        c.rows = rows + s;
        c.nb = n - s < BLK ? n - s : BLK;
        st = eval_block(&c, w, nb, x + s, 1, ldx);
    }
    ws_free(&own);
    return st;
}

bh_status bh_terms_eval_rows(const bh_terms *t, const bh_frame *data,
                             const size_t *map, const size_t *rows, size_t n,
                             const bh_override *ov, size_t nov, size_t draw,
                             double *x, size_t ldx, bh_error *err)
{
    return bh_terms_eval_rows_ws(t, data, map, rows, n, ov, nov, draw, x, ldx,
                                 NULL, err);
}

bh_status bh_terms_eval_term(const bh_terms *t, size_t q, const bh_frame *data,
                             const size_t *map, const size_t *rows, size_t n,
                             double *x, size_t ldx, bh_error *err)
{
    if (q >= t->nterms)
        return bh_error_set(err, BH_EINTERNAL, "term %zu of %zu", q, t->nterms);
    /* a view of t holding term q and only its variables: eval_block then
     * does for this term exactly what it does inside the whole design */
    const bh_tterm *tm = &t->terms[q];
    size_t nv = tm->nvars;
    size_t *vidx = malloc((nv ? nv : 1) * sizeof *vidx);
    bh_tvar *vv = malloc((nv ? nv : 1) * sizeof *vv);
    if (!vidx || !vv) {
        free(vidx);
        free(vv);
        return nomem(err);
    }
    bh_tterm one = *tm;
    for (size_t a = 0; a < nv; a++) {
        vv[a] = t->vars[tm->vars[a]];
        vidx[a] = a;
    }
    one.vars = vidx;
    bh_terms view = *t;
    view.vars = vv;
    view.nvars = nv;
    view.terms = &one;
    view.nterms = 1;
    view.intercept = 0;
    view.p = tm->ncols;
    view.phi = NULL;
    bh_status st = bh_terms_eval_rows(&view, data, map, rows, n, NULL, 0, SIZE_MAX, x, ldx,
                                      err);
    free(vidx);
    free(vv);
    return st;
}

bh_status bh_terms_row(const bh_terms *t, const bh_frame *data,
                       const size_t *map, size_t row, const bh_override *ov,
                       size_t nov, double *x, bh_error *err)
{
    return bh_terms_eval_rows(t, data, map, &row, 1, ov, nov, SIZE_MAX, x, 1,
                              err);
}

bh_status bh_terms_row_deriv(const bh_terms *t, const bh_frame *data,
                             const size_t *map, size_t row,
                             const bh_override *ov, size_t nov, size_t raw,
                             double *dx, bh_error *err)
{
    if (raw >= t->nraw)
        return bh_error_set(err, BH_EUSAGE,
                            "derivative with respect to raw variable %zu: the "
                            "model has only %zu", raw, t->nraw);
    return bh_terms_eval_rows(t, data, map, &row, 1, ov, nov, raw, dx, 1, err);
}

bh_status bh_terms_eval_expr_rows(const bh_terms *t, const bh_expr *e,
                                  const bh_frame *data, const size_t *map,
                                  const size_t *rows, size_t n,
                                  const bh_override *ov, size_t nov,
                                  size_t draw, double *val, double *dval,
                                  bh_error *err)
{
    bh_status st = check_ov(t, ov, nov, err);
    if (st)
        return st;
    evctx c = {.t = t, .data = data, .map = map, .ov = ov, .nov = nov,
               .draw = draw, .err = err};
    return ev_rows(&c, e, rows, n, val,
                   draw != SIZE_MAX && dval ? dval : NULL);
}

bh_status bh_terms_eval_expr(const bh_terms *t, const bh_expr *e,
                             const bh_frame *data, const size_t *map,
                             size_t row, const bh_override *ov, size_t nov,
                             size_t draw, double *val, double *dval,
                             bh_error *err)
{
    return bh_terms_eval_expr_rows(t, e, data, map, &row, 1, ov, nov, draw,
                                   val, dval, err);
}

/* ------------------------------------------------------------ training */

typedef struct {
    const bh_terms *t;
    const bh_frame *data;
    const size_t *map;
    const size_t *rows;
    size_t nrows;
    double *buf;             /* nrows scratch */
    bh_error *err;
    bh_terms_ws *ws;         /* scratch kept between retrains, or NULL */
} trainctx;

/* Train center()/scale() nodes bottom-up over the estimation rows. */
static bh_status train_expr(trainctx *tc, bh_expr *e)
{
    if (!e)
        return BH_OK;
    bh_status st;
    if ((st = train_expr(tc, e->arg[0])) || (st = train_expr(tc, e->arg[1])))
        return st;
    if (e->kind != BH_EX_CALL ||
        (strcmp(e->name, "center") && strcmp(e->name, "scale")))
        return BH_OK;
    evctx c = {.t = tc->t, .data = tc->data, .map = tc->map,
               .draw = SIZE_MAX, .err = tc->err};
    if ((st = ev_rows(&c, e->arg[0], tc->rows, tc->nrows, tc->buf, NULL)))
        return st;
    const char *what = NULL;
    double m = NAN, sd = NAN;
    if (tc->nrows < 2) {
        what = "rows";
    } else {
        /* two-pass mean and variance */
        m = 0;
        for (size_t i = 0; i < tc->nrows; i++)
            m += tc->buf[i];
        m /= (double)tc->nrows;
        /* the SD only where it is used (scale); center's is never read,
         * and a simulation retrains these for every replication */
        if (!strcmp(e->name, "scale")) {
            double ss = 0, corr = 0;
            for (size_t i = 0; i < tc->nrows; i++) {
                double dv = tc->buf[i] - m;
                ss += dv * dv;
                corr += dv;
            }
            double var = (ss - corr * corr / (double)tc->nrows) / (double)(tc->nrows - 1);
            sd = sqrt(var > 0 ? var : 0);
        }
        if (!isfinite(m))
            what = "mean";
        else if (!strcmp(e->name, "scale") && !(sd > 0 && isfinite(sd)))
            what = "sd";
    }
    if (what) {
        /* the label only for the message (training runs once per fit) */
        char *lab = bh_expr_deparse(e);
        const char *l = lab ? lab : e->name;
        if (!strcmp(what, "rows"))
            st = bh_error_at(tc->err, BH_EDATA, "formula", 1, e->pos,
                             "%s needs at least 2 rows to be estimated", l);
        else if (!strcmp(what, "mean"))
            st = bh_error_at(tc->err, BH_EDATA, "formula", 1, e->pos,
                             "%s: the mean over the estimation rows is not finite", l);
        else
            st = bh_error_at(tc->err, BH_EDATA, "formula", 1, e->pos,
                             "%s: the standard deviation over the estimation rows "
                             "is %g; cannot scale a constant", l, sd);
        free(lab);
        return st;
    }
    e->state[0] = m;
    e->state[1] = sd;
    e->trained = 1;
    return BH_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sort v[0..n) and keep each value once at its front; returns how many
 * (a numeric factor's levels). */
static size_t sort_unique(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        if (nl == 0 || v[i] != v[nl - 1])
            v[nl++] = v[i];
    return nl;
}

/* Levels of a factor variable present in the estimation rows (R's lm drops
 * unused levels). */
static bh_status train_levels(trainctx *tc, bh_tvar *v)
{
    const bh_expr *e = v->expr;
    const bh_expr *col = e->kind == BH_EX_VAR ? e : factor_column_arg(e);
    const bh_column *cc = col ? &tc->data->cols[tc->map[col->raw]] : NULL;
    if (cc && cc->type == BH_COL_CATEGORICAL) {
        unsigned char *seen = calloc(cc->nlevels + 1, 1);
        if (!seen)
            return nomem(tc->err);
        for (size_t i = 0; i < tc->nrows; i++) {
            size_t r = tc->rows[i];
            if (cc->na[r]) {
                free(seen);
                evctx c = {.data = tc->data, .err = tc->err};
                return missing_at(&c, cc->name, r);
            }
            seen[cc->code[r]] = 1;
        }
        size_t nl = 0;
        for (size_t l = 0; l < cc->nlevels; l++)
            nl += seen[l];
        v->levels = calloc(nl + 1, sizeof *v->levels);
        if (!v->levels) {
            free(seen);
            return nomem(tc->err);
        }
        for (size_t l = 0; l < cc->nlevels; l++)
            if (seen[l]) {
                if (!(v->levels[v->nlevels] = xstrdup(cc->levels[l]))) {
                    free(seen);
                    return nomem(tc->err);
                }
                v->nlevels++;
            }
        free(seen);
    } else {
        evctx c = {.t = tc->t, .data = tc->data, .map = tc->map,
                   .draw = SIZE_MAX, .err = tc->err};
        bh_status st = ev_rows(&c, e->arg[0], tc->rows, tc->nrows, tc->buf, NULL);
        if (st)
            return st;
        char buf[40];
        for (size_t i = 0; i < tc->nrows; i++) {
            if (!isfinite(tc->buf[i]))
                return bh_error_at(tc->err, BH_EDATA, "formula", 1, e->pos,
                                   "%s: value %g in data row %zu cannot be a "
                                   "factor level", v->label, tc->buf[i],
                                   tc->rows[i] + 1);
            tc->buf[i] = level_value(tc->buf[i], buf, sizeof buf);
        }
        size_t nl = sort_unique(tc->buf, tc->nrows);
        v->levnum = malloc((nl + 1) * sizeof *v->levnum);
        v->levels = calloc(nl + 1, sizeof *v->levels);
        if (!v->levnum || !v->levels)
            return nomem(tc->err);
        for (size_t l = 0; l < nl; l++) {
            v->levnum[l] = tc->buf[l];
            level_value(tc->buf[l], buf, sizeof buf);
            if (!(v->levels[l] = xstrdup(buf)))
                return nomem(tc->err);
            v->nlevels = l + 1;
        }
    }
    if (v->nlevels < 2)
        return bh_error_at(tc->err, BH_EDATA, "formula", 1, e->pos,
                           "factor '%s' has %s level%s%s%s%s in the estimation "
                           "rows; contrasts need at least two", v->label,
                           v->nlevels ? "only one" : "no",
                           v->nlevels ? "" : "s", v->nlevels ? " ('" : "",
                           v->nlevels ? v->levels[0] : "",
                           v->nlevels ? "')" : "");
    return BH_OK;
}

/* Whether factor variable v has, in the estimation rows, exactly the levels
 * it was trained with (train_levels would give the same list).  0 also for
 * anything train_levels would fail on. */
static int same_levels(trainctx *tc, const bh_tvar *v)
{
    const bh_expr *e = v->expr;
    const bh_expr *col = e->kind == BH_EX_VAR ? e : factor_column_arg(e);
    const bh_column *cc = col ? &tc->data->cols[tc->map[col->raw]] : NULL;
    if (cc && cc->type == BH_COL_CATEGORICAL) {
        if (v->levnum)
            return 0;
        unsigned char *seen;
        if (tc->ws) {
            if (!(seen = tc->ws->seen = bh_reserve(tc->ws->seen, &tc->ws->cseen,
                                                cc->nlevels + 1, 1)))
                return 0;
            memset(seen, 0, cc->nlevels + 1);
        } else if (!(seen = calloc(cc->nlevels + 1, 1)))
            return 0;
        int ok = 1;
        for (size_t i = 0; i < tc->nrows && ok; i++) {
            size_t r = tc->rows[i];
            if (cc->na[r])
                ok = 0;
            else
                seen[cc->code[r]] = 1;
        }
        size_t nl = 0;
        for (size_t l = 0; l < cc->nlevels && ok; l++)
            if (seen[l])
                ok = nl < v->nlevels && !strcmp(v->levels[nl++], cc->levels[l]);
        if (!tc->ws)
            free(seen);
        return ok && nl == v->nlevels;
    }
    if (!v->levnum)
        return 0;
    evctx c = {.t = tc->t, .data = tc->data, .map = tc->map,
               .draw = SIZE_MAX, .err = tc->err};
    if (ev_rows(&c, e->arg[0], tc->rows, tc->nrows, tc->buf, NULL))
        return 0;
    char buf[40];
    for (size_t i = 0; i < tc->nrows; i++) {
        if (!isfinite(tc->buf[i]))
            return 0;
        tc->buf[i] = level_value(tc->buf[i], buf, sizeof buf);
    }
    size_t nl = sort_unique(tc->buf, tc->nrows);
    if (nl != v->nlevels)
        return 0;
    for (size_t l = 0; l < nl; l++)
        if (tc->buf[l] != v->levnum[l])
            return 0;
    return 1;
}

static int term_has(const bh_fterm *t, size_t var)
{
    for (size_t i = 0; i < t->nvars; i++)
        if (t->vars[i] == var)
            return 1;
    return 0;
}

/* Is the term `t` without variable `drop` among the formula's terms?  The
 * empty term counts as present (R's terms.formula assumes an intercept
 * here; model.matrix fixes the no-intercept case afterwards). */
static int margin_present(const bh_formula *f, const bh_fterm *t, size_t drop)
{
    if (t->nvars == 1)
        return 1;
    for (size_t q = 0; q < f->nterms; q++) {
        const bh_fterm *u = &f->terms[q];
        if (u->nvars != t->nvars - 1)
            continue;
        int ok = 1;
        for (size_t i = 0; i < t->nvars && ok; i++)
            if (t->vars[i] != drop && !term_has(u, t->vars[i]))
                ok = 0;
        if (ok)
            return 1;
    }
    return 0;
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, c, lc + 1);
    }
    return s;
}

/* Coding and column names of every term. */
static bh_status build_columns(bh_terms *t, bh_error *err)
{
    const bh_formula *f = t->formula;
    t->terms = calloc(f->nterms + 1, sizeof *t->terms);
    if (!t->terms)
        return nomem(err);
    t->nterms = f->nterms;
    size_t p = t->intercept ? 1 : 0;
    int fixed_first = !t->intercept;
    for (size_t q = 0; q < f->nterms; q++) {
        bh_tterm *tm = &t->terms[q];
        const bh_fterm *ft = &f->terms[q];
        tm->nvars = ft->nvars;
        tm->vars = malloc(ft->nvars * sizeof *tm->vars);
        tm->contrast = malloc(ft->nvars);
        tm->label = bh_formula_term_label(f, q);
        if (!tm->vars || !tm->contrast || !tm->label)
            return nomem(err);
        size_t nc = 1;
        for (size_t a = 0; a < ft->nvars; a++) {
            size_t k = ft->vars[a];
            tm->vars[a] = k;
            tm->contrast[a] = (unsigned char)margin_present(f, ft, k);
            if (t->vars[k].kind == BH_TV_FACTOR && fixed_first) {
                /* Without an intercept R codes the first factor it meets
                 * (terms in order, variables in order) by indicators. */
                tm->contrast[a] = 0;
                fixed_first = 0;
            }
            if (t->vars[k].kind == BH_TV_FACTOR)
                nc *= t->vars[k].nlevels - tm->contrast[a];
            else
                tm->contrast[a] = 0;
        }
        tm->col0 = p;
        tm->ncols = nc;
        p += nc;
    }
    t->p = p;
    t->colnames = calloc(p + 1, sizeof *t->colnames);
    t->col_term = malloc((p + 1) * sizeof *t->col_term);
    if (!t->colnames || !t->col_term)
        return nomem(err);
    size_t j = 0;
    if (t->intercept) {
        if (!(t->colnames[0] = xstrdup("(Intercept)")))
            return nomem(err);
        t->col_term[0] = SIZE_MAX;
        j = 1;
    }
    size_t *idx = calloc(f->nvars + 1, sizeof *idx);
    if (!idx)
        return nomem(err);
    for (size_t q = 0; q < t->nterms; q++) {
        bh_tterm *tm = &t->terms[q];
        memset(idx, 0, (tm->nvars + 1) * sizeof *idx);
        for (size_t col = 0; col < tm->ncols; col++, j++) {
            char *name = xstrdup("");
            for (size_t a = 0; a < tm->nvars && name; a++) {
                const bh_tvar *v = &t->vars[tm->vars[a]];
                const char *lev = v->kind == BH_TV_FACTOR
                                      ? v->levels[idx[a] + tm->contrast[a]] : "";
                char *part = cat3(v->label, lev, "");
                char *nn = part ? cat3(name, a ? ":" : "", part) : NULL;
                free(part);
                free(name);
                name = nn;
            }
            if (!name) {
                free(idx);
                return nomem(err);
            }
            t->colnames[j] = name;
            t->col_term[j] = q;
            for (size_t a = 0; a < tm->nvars; a++) {
                const bh_tvar *v = &t->vars[tm->vars[a]];
                size_t cnt = v->kind == BH_TV_FACTOR ? v->nlevels - tm->contrast[a] : 1;
                if (++idx[a] < cnt)
                    break;
                idx[a] = 0;
            }
        }
    }
    free(idx);
    return BH_OK;
}

bh_status bh_terms_train(const bh_formula *f, const bh_frame *data,
                         const size_t *rows, size_t nrows, bh_terms **out,
                         bh_error *err)
{
    *out = NULL;
    bh_terms *t = calloc(1, sizeof *t);
    if (!t || !(t->formula = bh_formula_copy(f))) {
        free(t);
        return nomem(err);
    }
    bh_formula *g = t->formula;
    bh_status st;
    size_t *map = NULL;
    double *buf = NULL;
    rawlist r = {0};
    if ((st = collect_raw(g, &r, err))) {
        free(r.name);
        free(r.pos);
        goto fail;
    }
    t->rawvars = calloc(r.n + 1, sizeof *t->rawvars);
    t->rawpos = malloc((r.n + 1) * sizeof *t->rawpos);
    if (!t->rawvars || !t->rawpos) {
        free(r.name);
        free(r.pos);
        st = nomem(err);
        goto fail;
    }
    for (size_t k = 0; k < r.n; k++) {
        t->rawpos[k] = r.pos[k];
        if (!(t->rawvars[k] = xstrdup(r.name[k]))) {
            free(r.name);
            free(r.pos);
            st = nomem(err);
            goto fail;
        }
        t->nraw = k + 1;
    }
    free(r.name);
    free(r.pos);
    for (size_t i = 0; i < g->nlhs; i++)
        bind_expr(g->lhs[i], t->rawvars, t->nraw);
    for (size_t i = 0; i < g->nvars; i++)
        bind_expr(g->vars[i].expr, t->rawvars, t->nraw);
    for (size_t i = 0; i < g->noffsets; i++)
        bind_expr(g->offsets[i], t->rawvars, t->nraw);

    map = malloc((t->nraw + 1) * sizeof *map);
    buf = malloc((nrows + 1) * sizeof *buf);
    if (!map || !buf) {
        st = nomem(err);
        goto fail;
    }
    if ((st = bh_terms_map(t, data, map, err)))
        goto fail;
    t->intercept = g->intercept;
    t->nvars = g->nvars;
    t->vars = calloc(g->nvars + 1, sizeof *t->vars);
    if (!t->vars) {
        st = nomem(err);
        goto fail;
    }
    for (size_t i = 0; i < g->nvars; i++) {
        bh_tvar *v = &t->vars[i];
        v->expr = g->vars[i].expr;
        if (!(v->label = xstrdup(g->vars[i].label))) {
            st = nomem(err);
            goto fail;
        }
        const bh_expr *e = v->expr;
        if (is_factor_call(e) ||
            (e->kind == BH_EX_VAR &&
             data->cols[map[e->raw]].type == BH_COL_CATEGORICAL))
            v->kind = BH_TV_FACTOR;
    }
    trainctx tc = {.t = t, .data = data, .map = map, .rows = rows,
                   .nrows = nrows, .buf = buf, .err = err};
    for (size_t i = 0; i < g->nlhs; i++)
        if ((st = train_expr(&tc, g->lhs[i])))
            goto fail;
    for (size_t i = 0; i < g->nvars; i++)
        if ((st = train_expr(&tc, g->vars[i].expr)))
            goto fail;
    for (size_t i = 0; i < g->noffsets; i++)
        if ((st = train_expr(&tc, g->offsets[i])))
            goto fail;
    for (size_t i = 0; i < t->nvars; i++)
        if (t->vars[i].kind == BH_TV_FACTOR &&
            (st = train_levels(&tc, &t->vars[i])))
            goto fail;
    if ((st = build_columns(t, err)))
        goto fail;
    if (g->phi && (st = bh_terms_train(g->phi, data, rows, nrows, &t->phi, err)))
        goto fail;
    free(map);
    free(buf);
    *out = t;
    return BH_OK;
fail:
    free(map);
    free(buf);
    bh_terms_free(t);
    return st;
}

/* Whether t was trained from a formula that parses the same as f: the same
 * text (the parse is a function of it) and, for formulas built by hand,
 * the same shape and variable labels. */
static int same_formula(const bh_formula *g, const bh_formula *f)
{
    if (!g->text || !f->text || strcmp(g->text, f->text) || g->nlhs != f->nlhs ||
        g->nvars != f->nvars || g->nterms != f->nterms || g->noffsets != f->noffsets ||
        g->nre != f->nre || g->intercept != f->intercept || g->phi || f->phi)
        return 0;
    for (size_t i = 0; i < f->nvars; i++)
        if (strcmp(g->vars[i].label, f->vars[i].label))
            return 0;
    return 1;
}

/* Train t again in place on new rows: 0 when that gives what
 * bh_terms_train would (same variable kinds and factor levels, so the same
 * coding and column names; center()/scale() state updated), -1 otherwise
 * (t then holds partly updated state and must be discarded). */
static int retrain_in_place(bh_terms *t, const bh_frame *data, const size_t *rows,
                            size_t nrows, bh_terms_ws *ws)
{
    bh_formula *g = t->formula;
    bh_error scratch;
    size_t *map;
    double *buf;
    if (ws) {
        map = ws->map = bh_reserve(ws->map, &ws->cmap, t->nraw + 1, sizeof *map);
        buf = ws->buf = bh_reserve(ws->buf, &ws->cbuf, nrows + 1, sizeof *buf);
    } else {
        map = malloc((t->nraw + 1) * sizeof *map);
        buf = malloc((nrows + 1) * sizeof *buf);
    }
    int ok = map && buf && bh_terms_map(t, data, map, &scratch) == BH_OK;
    for (size_t i = 0; ok && i < g->nvars; i++) {
        const bh_expr *e = t->vars[i].expr;
        bh_tvkind kind = is_factor_call(e) || (e->kind == BH_EX_VAR &&
                                               data->cols[map[e->raw]].type ==
                                                   BH_COL_CATEGORICAL)
                             ? BH_TV_FACTOR : BH_TV_NUMERIC;
        ok = kind == t->vars[i].kind;
    }
    trainctx tc = {.t = t, .data = data, .map = map, .rows = rows,
                   .nrows = nrows, .buf = buf, .err = &scratch, .ws = ws};
    for (size_t i = 0; ok && i < g->nlhs; i++)
        ok = train_expr(&tc, g->lhs[i]) == BH_OK;
    for (size_t i = 0; ok && i < g->nvars; i++)
        ok = train_expr(&tc, g->vars[i].expr) == BH_OK;
    for (size_t i = 0; ok && i < g->noffsets; i++)
        ok = train_expr(&tc, g->offsets[i]) == BH_OK;
    for (size_t i = 0; ok && i < t->nvars; i++)
        if (t->vars[i].kind == BH_TV_FACTOR)
            ok = same_levels(&tc, &t->vars[i]);
    if (!ws) {
        free(map);
        free(buf);
    }
    return ok ? 0 : -1;
}

bh_status bh_terms_retrain_ws(const bh_formula *f, const bh_frame *data,
                              const size_t *rows, size_t nrows, bh_terms **t,
                              bh_terms_ws *ws, bh_error *err)
{
    if (*t && same_formula((*t)->formula, f) &&
        retrain_in_place(*t, data, rows, nrows, ws) == 0)
        return BH_OK;
    bh_terms_free(*t);
    *t = NULL;
    return bh_terms_train(f, data, rows, nrows, t, err);
}

bh_status bh_terms_retrain(const bh_formula *f, const bh_frame *data,
                           const size_t *rows, size_t nrows, bh_terms **t,
                           bh_error *err)
{
    return bh_terms_retrain_ws(f, data, rows, nrows, t, NULL, err);
}
