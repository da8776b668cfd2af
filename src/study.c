/* study.c - read and validate a study specification (see study.h).
 *
 * inih does the INI lexing.  It is fed through our own line reader so that
 * every key knows its physical line, so that section headers are seen
 * (inih reports only keys: duplicate and empty sections would be
 * invisible), and so that continuation lines can be told from repeated
 * keys.  Entries are collected first and interpreted afterwards, which
 * lets every error name the file and line of the offending text. */
#include "blackhole/study.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/formula.h"
#include "blackhole/strutil.h"

/* ---- raw entries ---------------------------------------------------------- */

typedef struct {
    char *key;
    char *value;
    size_t line;
    int used;
} entry;

typedef struct {
    char *name;           /* text between the brackets */
    size_t line;          /* header line (0 for keys before any header) */
    entry *e;
    size_t n, cap;
} section;

typedef struct {
    const char *where;    /* file name for messages */
    const char *text;
    size_t len, pos;
    size_t line;          /* physical line last handed to inih */
    int cont;             /* that line starts with blank: continuation */
    section *sec;
    size_t nsec, capsec;
    bh_error *err;
    bh_status st;         /* first error (BH_OK while none) */
    size_t err_line;
} reader_ctx;

static bh_status fail(reader_ctx *c, size_t line, bh_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bh_status fail(reader_ctx *c, size_t line, bh_status s, const char *fmt, ...)
{
    if (c->st != BH_OK)
        return c->st;  /* keep the first error */
    char buf[BH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->st = s;
    c->err_line = line;
    return bh_error_at(c->err, s, c->where, line, 0, "%s", buf);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static section *add_section(reader_ctx *c, const char *name, size_t len, size_t line)
{
    if (c->nsec == c->capsec) {
        size_t nc = c->capsec ? 2 * c->capsec : 16;
        section *ns = realloc(c->sec, nc * sizeof *ns);
        if (!ns)
            return NULL;
        c->sec = ns;
        c->capsec = nc;
    }
    section *s = &c->sec[c->nsec];
    memset(s, 0, sizeof *s);
    s->name = malloc(len + 1);
    if (!s->name)
        return NULL;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->line = line;
    c->nsec++;
    return s;
}

/* Longest section or key inih keeps without truncating (its MAX_SECTION
 * and MAX_NAME are 50 bytes with the NUL). */
#define NAME_MAX_LEN 49

/* fgets-like reader for inih: one physical line per call. */
static char *read_line(char *str, int num, void *stream)
{
    reader_ctx *c = stream;
    if (c->pos >= c->len)
        return NULL;
    const char *p = c->text + c->pos;
    const char *nl = memchr(p, '\n', c->len - c->pos);
    size_t n = nl ? (size_t)(nl - p) + 1 : c->len - c->pos;
    c->pos += n;
    c->line++;
    size_t room = num > 1 ? (size_t)num - 1 : 0;
    if (n > room) {
        /* inih would split the line and parse the rest as a new line. */
        fail(c, c->line, BH_EUSAGE,
             "line is longer than %zu characters; continue the value on the next "
             "line, indented", room > 3 ? room - 3 : room);
        n = 0;
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    memcpy(str, p, n);
    str[n] = '\0';
    /* Track section headers ourselves (see top of file). */
    const char *q = str;
    if (c->line == 1 && (unsigned char)q[0] == 0xEF && (unsigned char)q[1] == 0xBB &&
        (unsigned char)q[2] == 0xBF)
        q += 3;
    c->cont = (*q == ' ' || *q == '\t');
    while (*q == ' ' || *q == '\t')
        q++;
    if (*q == '\0' || *q == '\n' || *q == '\r' || *q == ';' || *q == '#')
        c->cont = 0;
    if (*q == '[') {
        c->cont = 0;
        const char *end = strchr(q + 1, ']');
        if (end) {
            size_t len = (size_t)(end - q - 1);
            if (len > NAME_MAX_LEN) {
                fail(c, c->line, BH_EUSAGE, "section name longer than %d characters",
                     NAME_MAX_LEN);
                return str;
            }
            for (size_t k = 0; k < c->nsec; k++)
                if (strlen(c->sec[k].name) == len && memcmp(c->sec[k].name, q + 1, len) == 0) {
                    fail(c, c->line, BH_EUSAGE,
                         "section [%s] appears twice (first on line %zu)", c->sec[k].name,
                         c->sec[k].line);
                    return str;
                }
            if (!add_section(c, q + 1, len, c->line))
                fail(c, c->line, BH_ENOMEM, "out of memory");
        }
    }
    return str;
}

static int handler(void *user, const char *secname, const char *name, const char *value)
{
    reader_ctx *c = user;
    if (c->nsec == 0 || strcmp(c->sec[c->nsec - 1].name, secname) != 0) {
        if (secname[0] == '\0')
            fail(c, c->line, BH_EUSAGE, "'%s' comes before any [section]", name);
        else
            fail(c, c->line, BH_EINTERNAL, "section bookkeeping lost at [%s]", secname);
        return 1;
    }
    section *s = &c->sec[c->nsec - 1];
    if (strlen(name) > NAME_MAX_LEN) {
        fail(c, c->line, BH_EUSAGE, "key name longer than %d characters", NAME_MAX_LEN);
        return 1;
    }
    if (c->cont && s->n > 0 && strcmp(s->e[s->n - 1].key, name) == 0) {
        /* Continuation line: join with one space. */
        entry *e = &s->e[s->n - 1];
        size_t a = strlen(e->value), b = strlen(value);
        char *nv = realloc(e->value, a + b + 2);
        if (!nv) {
            fail(c, c->line, BH_ENOMEM, "out of memory");
            return 1;
        }
        nv[a] = ' ';
        memcpy(nv + a + 1, value, b + 1);
        e->value = nv;
        return 1;
    }
    for (size_t k = 0; k < s->n; k++)
        if (strcmp(s->e[k].key, name) == 0) {
            fail(c, c->line, BH_EUSAGE, "key '%s' repeated in [%s] (first on line %zu)", name,
                 s->name, s->e[k].line);
            return 1;
        }
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 8;
        entry *ne = realloc(s->e, nc * sizeof *ne);
        if (!ne) {
            fail(c, c->line, BH_ENOMEM, "out of memory");
            return 1;
        }
        s->e = ne;
        s->cap = nc;
    }
    entry *e = &s->e[s->n];
    e->key = strdup(name);
    e->value = strdup(value);
    e->line = c->line;
    e->used = 0;
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        fail(c, c->line, BH_ENOMEM, "out of memory");
        return 1;
    }
    s->n++;
    return 1;
}

static void free_sections(reader_ctx *c)
{
    for (size_t k = 0; k < c->nsec; k++) {
        for (size_t j = 0; j < c->sec[k].n; j++) {
            free(c->sec[k].e[j].key);
            free(c->sec[k].e[j].value);
        }
        free(c->sec[k].e);
        free(c->sec[k].name);
    }
    free(c->sec);
}

/* ---- small helpers ----------------------------------------------------------- */

static entry *get(section *s, const char *key)
{
    for (size_t k = 0; k < s->n; k++)
        if (strcmp(s->e[k].key, key) == 0) {
            s->e[k].used = 1;
            return &s->e[k];
        }
    return NULL;
}

static bh_status check_keys(reader_ctx *c, section *s, const char *const *allowed, size_t n)
{
    for (size_t k = 0; k < s->n; k++) {
        int ok = 0;
        for (size_t j = 0; j < n && !ok; j++)
            ok = strcmp(s->e[k].key, allowed[j]) == 0;
        if (ok)
            continue;
        const char *sug = bh_suggest(s->e[k].key, allowed, n);
        char list[600] = "";
        size_t o = 0;
        for (size_t j = 0; j < n && o + 2 < sizeof list; j++) {
            int w = snprintf(list + o, sizeof list - o, "%s%s", j ? ", " : "", allowed[j]);
            if (w < 0)
                break;
            o += (size_t)w;
        }
        if (sug)
            return fail(c, s->e[k].line, BH_EUSAGE,
                        "unknown key '%s' in [%s]; did you mean '%s'?", s->e[k].key, s->name,
                        sug);
        return fail(c, s->e[k].line, BH_EUSAGE, "unknown key '%s' in [%s] (known: %s)",
                    s->e[k].key, s->name, list);
    }
    return BH_OK;
}

static bh_status req(reader_ctx *c, section *s, const char *key, entry **out)
{
    *out = get(s, key);
    if (!*out)
        return fail(c, s->line, BH_EUSAGE, "[%s] lacks the required key '%s'", s->name, key);
    if ((*out)->value[0] == '\0')
        return fail(c, (*out)->line, BH_EUSAGE, "[%s] %s is empty", s->name, key);
    return BH_OK;
}

static bh_status str_opt(reader_ctx *c, section *s, const char *key, char **out)
{
    entry *e = get(s, key);
    if (!e)
        return BH_OK;
    char *v = strdup(e->value);
    if (!v)
        return fail(c, e->line, BH_ENOMEM, "out of memory");
    free(*out);
    *out = v;
    return BH_OK;
}

static bh_status str_req(reader_ctx *c, section *s, const char *key, char **out)
{
    entry *e;
    bh_status st = req(c, s, key, &e);
    if (st != BH_OK)
        return st;
    return str_opt(c, s, key, out);
}

static bh_status parse_num(reader_ctx *c, section *s, entry *e, const char *what,
                           const char *text, double *out)
{
    char q[80];
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == text || *end != '\0' || !isfinite(v) || errno == ERANGE)
        return fail(c, e->line, BH_EUSAGE, "[%s] %s: '%s' is not a finite number", s->name,
                    what, bh_quote(q, sizeof q, text, 60));
    *out = v;
    return BH_OK;
}

/* Number in [lo, hi]; *out left alone when the key is absent. */
static bh_status num_opt(reader_ctx *c, section *s, const char *key, double lo, double hi,
                         double *out)
{
    entry *e = get(s, key);
    if (!e)
        return BH_OK;
    double v;
    bh_status st = parse_num(c, s, e, key, e->value, &v);
    if (st != BH_OK)
        return st;
    if (v < lo || v > hi)
        return fail(c, e->line, BH_EUSAGE, "[%s] %s = %s is outside [%g, %g]", s->name, key,
                    e->value, lo, hi);
    *out = v;
    return BH_OK;
}

static bh_status num_req(reader_ctx *c, section *s, const char *key, double lo, double hi,
                         double *out)
{
    entry *e;
    bh_status st = req(c, s, key, &e);
    if (st != BH_OK)
        return st;
    return num_opt(c, s, key, lo, hi, out);
}

static bh_status int_opt(reader_ctx *c, section *s, const char *key, long lo, long hi, long *out)
{
    entry *e = get(s, key);
    if (!e)
        return BH_OK;
    char *end;
    errno = 0;
    long v = strtol(e->value, &end, 10);
    if (end == e->value || *end != '\0' || errno == ERANGE)
        return fail(c, e->line, BH_EUSAGE, "[%s] %s: '%s' is not an integer", s->name, key,
                    e->value);
    if (v < lo || v > hi)
        return fail(c, e->line, BH_EUSAGE, "[%s] %s = %ld is outside [%ld, %ld]", s->name, key,
                    v, lo, hi);
    *out = v;
    return BH_OK;
}

static void free_list(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t k = 0; k < n; k++)
        free(v[k]);
    free(v);
}

/* Comma-separated list; empty items are errors. */
static bh_status split_list(reader_ctx *c, section *s, entry *e, char ***out, size_t *n)
{
    char *copy = strdup(e->value);
    if (!copy)
        return fail(c, e->line, BH_ENOMEM, "out of memory");
    size_t cap = 1;
    for (const char *p = copy; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap, sizeof *v);
    if (!v) {
        free(copy);
        return fail(c, e->line, BH_ENOMEM, "out of memory");
    }
    size_t k = 0;
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *t = trim(p);
        if (*t == '\0') {
            free(copy);
            free_list(v, k);
            return fail(c, e->line, BH_EUSAGE, "[%s] %s: empty item in list '%s'", s->name,
                        e->key, e->value);
        }
        v[k] = strdup(t);
        if (!v[k]) {
            free(copy);
            free_list(v, k);
            return fail(c, e->line, BH_ENOMEM, "out of memory");
        }
        k++;
        if (!comma)
            break;
        p = comma + 1;
    }
    free(copy);
    *out = v;
    *n = k;
    return BH_OK;
}

static bh_status list_opt(reader_ctx *c, section *s, const char *key, char ***out, size_t *n)
{
    entry *e = get(s, key);
    if (!e)
        return BH_OK;
    return split_list(c, s, e, out, n);
}

static bh_status list_req(reader_ctx *c, section *s, const char *key, char ***out, size_t *n)
{
    entry *e;
    bh_status st = req(c, s, key, &e);
    if (st != BH_OK)
        return st;
    return split_list(c, s, e, out, n);
}

static bh_status nums_of(reader_ctx *c, section *s, entry *e, double **out, size_t *n)
{
    char **v = NULL;
    size_t k = 0;
    bh_status st = split_list(c, s, e, &v, &k);
    if (st != BH_OK)
        return st;
    double *x = malloc((k ? k : 1) * sizeof *x);
    if (!x) {
        free_list(v, k);
        return fail(c, e->line, BH_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < k && st == BH_OK; j++)
        st = parse_num(c, s, e, e->key, v[j], &x[j]);
    free_list(v, k);
    if (st != BH_OK) {
        free(x);
        return st;
    }
    *out = x;
    *n = k;
    return BH_OK;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
            return 0;
    return 1;
}

static bh_status level_opt(reader_ctx *c, section *s, bh_study_level *out)
{
    entry *e = get(s, "data");
    if (!e)
        return BH_OK;
    if (strcmp(e->value, "reps") == 0)
        *out = BH_LEVEL_REPS;
    else if (strcmp(e->value, "leads") == 0)
        *out = BH_LEVEL_LEADS;
    else
        return fail(c, e->line, BH_EUSAGE, "[%s] data = '%s': expected reps or leads", s->name,
                    e->value);
    return BH_OK;
}

static int in_list(const char *s, const char *const *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(s, v[k]) == 0)
            return 1;
    return 0;
}

static bh_status choice(reader_ctx *c, section *s, entry *e, const char *const *v, size_t n)
{
    if (in_list(e->value, v, n))
        return BH_OK;
    const char *sug = bh_suggest(e->value, v, n);
    char list[300] = "";
    size_t o = 0;
    for (size_t k = 0; k < n && o + 2 < sizeof list; k++) {
        int w = snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", v[k]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (sug)
        return fail(c, e->line, BH_EUSAGE, "[%s] %s = '%s' is not one of %s; did you mean '%s'?",
                    s->name, e->key, e->value, list, sug);
    return fail(c, e->line, BH_EUSAGE, "[%s] %s = '%s' is not one of %s", s->name, e->key,
                e->value, list);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- sections ------------------------------------------------------------------ */

static bh_status do_study(reader_ctx *c, section *s, bh_study *st)
{
    static const char *const keys[] = {"name", "citation", "reps", "leads", "codebook",
                                       "seed", "notes"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    if (r == BH_OK)
        r = str_req(c, s, "name", &st->name);
    if (r == BH_OK)
        r = str_opt(c, s, "citation", &st->citation);
    if (r == BH_OK)
        r = str_req(c, s, "reps", &st->reps);
    if (r == BH_OK)
        r = str_opt(c, s, "leads", &st->leads);
    if (r == BH_OK)
        r = str_opt(c, s, "codebook", &st->codebook);
    if (r == BH_OK)
        r = str_opt(c, s, "notes", &st->notes);
    entry *e;
    if (r == BH_OK)
        r = req(c, s, "seed", &e);
    if (r == BH_OK) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(e->value, &end, 10);
        if (end == e->value || *end != '\0' || errno == ERANGE || e->value[0] == '-')
            return fail(c, e->line, BH_EUSAGE,
                        "[study] seed: '%s' is not an unsigned 64-bit integer", e->value);
        st->seed = (uint64_t)v;
    }
    return r;
}

static bh_status do_columns(reader_ctx *c, section *s, bh_study *st)
{
    st->columns = calloc(s->n ? s->n : 1, sizeof *st->columns);
    if (!st->columns)
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    for (size_t k = 0; k < s->n; k++) {
        entry *e = &s->e[k];
        e->used = 1;
        if (!valid_name(e->value))
            return fail(c, e->line, BH_EUSAGE, "[columns] %s = '%s': not a valid column name",
                        e->key, e->value);
        for (size_t j = 0; j < k; j++)
            if (strcmp(s->e[j].value, e->value) == 0)
                return fail(c, e->line, BH_EUSAGE,
                            "[columns] '%s' and '%s' both map to column '%s'", s->e[j].key,
                            e->key, e->value);
        st->columns[k].spec_name = strdup(e->key);
        st->columns[k].column = strdup(e->value);
        st->ncolumns = k + 1;
        if (!st->columns[k].spec_name || !st->columns[k].column)
            return fail(c, e->line, BH_ENOMEM, "out of memory");
    }
    return BH_OK;
}

static bh_status do_transform(reader_ctx *c, section *s, bh_study *st)
{
    static const char *const keys[] = {"center", "standardize"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    if (r == BH_OK)
        r = list_opt(c, s, "center", &st->center, &st->ncenter);
    if (r == BH_OK)
        r = list_opt(c, s, "standardize", &st->standardize, &st->nstandardize);
    for (size_t k = 0; r == BH_OK && k < st->ncenter; k++)
        if (in_list(st->center[k], (const char *const *)st->standardize, st->nstandardize))
            r = fail(c, get(s, "center")->line, BH_EUSAGE,
                     "[transform] '%s' is both centred and standardised", st->center[k]);
    return r;
}

static bh_status do_scale(reader_ctx *c, section *s, const char *name, bh_study_scale *sc)
{
    static const char *const keys[] = {"items", "data", "label"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    sc->line = s->line;
    sc->name = strdup(name);
    if (!sc->name)
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    if (r == BH_OK)
        r = list_req(c, s, "items", &sc->items, &sc->nitems);
    if (r == BH_OK)
        r = level_opt(c, s, &sc->data);
    if (r == BH_OK)
        r = str_opt(c, s, "label", &sc->label);
    if (r != BH_OK)
        return r;
    entry *e = get(s, "items");
    if (sc->nitems < 2)
        return fail(c, e->line, BH_EUSAGE, "[%s] needs at least two items", s->name);
    for (size_t k = 0; k < sc->nitems; k++) {
        if (strcmp(sc->items[k], name) == 0)
            return fail(c, e->line, BH_EUSAGE,
                        "[%s] circular reference: the scale lists itself as an item", s->name);
        for (size_t j = 0; j < k; j++)
            if (strcmp(sc->items[j], sc->items[k]) == 0)
                return fail(c, e->line, BH_EUSAGE, "[%s] item '%s' listed twice", s->name,
                            sc->items[k]);
    }
    return BH_OK;
}

/* Raw data variables used anywhere in a formula (responses, predictors,
 * offsets, random-effect groups, precision formula). */
static int add_unique(char ***v, size_t *n, const char *s)
{
    for (size_t k = 0; k < *n; k++)
        if (strcmp((*v)[k], s) == 0)
            return 1;
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return 0;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return 0;
    (*n)++;
    return 1;
}

static int expr_vars(const bh_expr *e, char ***v, size_t *n)
{
    if (!e)
        return 1;
    if (e->kind == BH_EX_VAR)
        return add_unique(v, n, e->name);
    return expr_vars(e->arg[0], v, n) && expr_vars(e->arg[1], v, n);
}

static int formula_vars(const bh_formula *f, char ***v, size_t *n, int with_lhs)
{
    if (with_lhs)
        for (size_t k = 0; k < f->nlhs; k++)
            if (!expr_vars(f->lhs[k], v, n))
                return 0;
    for (size_t k = 0; k < f->nvars; k++)
        if (!expr_vars(f->vars[k].expr, v, n))
            return 0;
    for (size_t k = 0; k < f->noffsets; k++)
        if (!expr_vars(f->offsets[k], v, n))
            return 0;
    for (size_t k = 0; k < f->nre; k++)
        for (size_t g = 0; g < f->re[k].ngroup; g++)
            if (!add_unique(v, n, f->re[k].group[g]))
                return 0;
    if (f->phi && !formula_vars(f->phi, v, n, 0))
        return 0;
    return 1;
}

static const char *const families[] = {"gaussian", "binomial", "fractional", "poisson",
                                       "dirichlet"};
static const char *const links[] = {"identity", "logit", "probit", "cloglog", "log"};

static bh_status check_vcov(reader_ctx *c, section *s, entry *e)
{
    static const char *const kinds[] = {"classical", "hc0", "hc1", "hc2", "hc3"};
    if (strncmp(e->value, "cluster:", 8) == 0) {
        if (!valid_name(e->value + 8))
            return fail(c, e->line, BH_EUSAGE, "[%s] vcov = '%s': expected cluster:VARIABLE",
                        s->name, e->value);
        return BH_OK;
    }
    return choice(c, s, e, kinds, NELEM(kinds));
}

static bh_status do_model(reader_ctx *c, section *s, const char *name, bh_study_model *m)
{
    static const char *const keys[] = {"formula", "family", "data", "link", "vcov", "param",
                                       "reference", "random", "label"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    m->line = s->line;
    m->name = strdup(name);
    if (!m->name)
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    if (r == BH_OK)
        r = str_req(c, s, "formula", &m->formula);
    if (r == BH_OK)
        r = str_req(c, s, "family", &m->family);
    if (r == BH_OK)
        r = choice(c, s, get(s, "family"), families, NELEM(families));
    if (r == BH_OK)
        r = level_opt(c, s, &m->data);
    entry *e;
    if (r == BH_OK && (e = get(s, "link")) != NULL) {
        r = choice(c, s, e, links, NELEM(links));
        if (r == BH_OK)
            r = str_opt(c, s, "link", &m->link);
    }
    if (r == BH_OK && (e = get(s, "vcov")) != NULL) {
        r = check_vcov(c, s, e);
        if (r == BH_OK)
            r = str_opt(c, s, "vcov", &m->vcov);
    }
    int dir = r == BH_OK && strcmp(m->family, "dirichlet") == 0;
    if (r == BH_OK && (e = get(s, "param")) != NULL) {
        static const char *const params[] = {"alternative", "common"};
        if (!dir)
            return fail(c, e->line, BH_EUSAGE, "[%s] param applies only to family = dirichlet",
                        s->name);
        r = choice(c, s, e, params, NELEM(params));
        if (r == BH_OK)
            r = str_opt(c, s, "param", &m->param);
    }
    if (r == BH_OK && (e = get(s, "reference")) != NULL && !dir)
        return fail(c, e->line, BH_EUSAGE, "[%s] reference applies only to family = dirichlet",
                    s->name);
    if (r == BH_OK)
        r = str_opt(c, s, "reference", &m->reference);
    if (r == BH_OK && (e = get(s, "random")) != NULL && !valid_name(e->value))
        return fail(c, e->line, BH_EUSAGE, "[%s] random = '%s' is not a column name", s->name,
                    e->value);
    if (r == BH_OK)
        r = str_opt(c, s, "random", &m->random);
    if (r == BH_OK)
        r = str_opt(c, s, "label", &m->label);
    if (r != BH_OK)
        return r;
    if (dir && !m->param && !(m->param = strdup("alternative")))
        return fail(c, s->line, BH_ENOMEM, "out of memory");

    e = get(s, "formula");
    bh_formula *f = NULL;
    bh_error ferr;
    bh_error_clear(&ferr);
    if (bh_formula_parse(m->formula, &f, &ferr) != BH_OK)
        return fail(c, e->line, BH_EUSAGE, "[%s] formula: %s", s->name, ferr.msg);
    int ok = 1;
    for (size_t k = 0; ok && k < f->nlhs; k++) {
        char **one = NULL;
        size_t none = 0;
        ok = expr_vars(f->lhs[k], &one, &none);
        if (ok && none != 1) {
            free_list(one, none);
            bh_formula_free(f);
            return fail(c, e->line, BH_EUSAGE,
                        "[%s] formula: response '%s' must be a single column", s->name,
                        f->lhs_labels[k]);
        }
        if (ok)
            ok = add_unique(&m->responses, &m->nresponses, one[0]);
        free_list(one, none);
    }
    if (ok)
        ok = formula_vars(f, &m->vars, &m->nvars, 1);
    if (ok && m->random)
        ok = add_unique(&m->vars, &m->nvars, m->random);
    if (ok && m->vcov && strncmp(m->vcov, "cluster:", 8) == 0)
        ok = add_unique(&m->vars, &m->nvars, m->vcov + 8);
    size_t nlhs = f->nlhs;
    bh_formula_free(f);
    if (!ok)
        return fail(c, e->line, BH_ENOMEM, "out of memory");
    if (nlhs == 0)
        return fail(c, e->line, BH_EUSAGE, "[%s] formula has no response (left of '~')",
                    s->name);
    if (dir && m->nresponses < 2)
        return fail(c, e->line, BH_EUSAGE,
                    "[%s] a dirichlet model needs at least two components: a + b ~ ...",
                    s->name);
    if (!dir && m->nresponses != 1)
        return fail(c, e->line, BH_EUSAGE,
                    "[%s] several responses need family = dirichlet", s->name);
    if (dir && m->reference &&
        !in_list(m->reference, (const char *const *)m->responses, m->nresponses))
        return fail(c, get(s, "reference")->line, BH_EUSAGE,
                    "[%s] reference '%s' is not a response of the formula", s->name,
                    m->reference);
    if (dir && !m->reference && !(m->reference = strdup(m->responses[0])))
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    return BH_OK;
}

static bh_status do_finding(reader_ctx *c, section *s, const char *name, bh_study_finding *fd)
{
    static const char *const keys[] = {"claim", "model", "term", "sign", "scale",
                                       "component"};
    static const char *const scales[] = {"coefficient", "ame", "ai-norton"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    fd->line = s->line;
    fd->name = strdup(name);
    if (!fd->name)
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    if (r == BH_OK)
        r = str_req(c, s, "claim", &fd->claim);
    if (r == BH_OK)
        r = str_req(c, s, "model", &fd->model);
    if (r == BH_OK)
        r = str_req(c, s, "term", &fd->term);
    entry *e;
    if (r == BH_OK)
        r = req(c, s, "sign", &e);
    if (r == BH_OK) {
        if (strcmp(e->value, "+") == 0)
            fd->sign = 1;
        else if (strcmp(e->value, "-") == 0)
            fd->sign = -1;
        else if (strcmp(e->value, "none") == 0)
            fd->sign = 0;
        else
            return fail(c, e->line, BH_EUSAGE, "[%s] sign = '%s': expected +, - or none",
                        s->name, e->value);
    }
    if (r == BH_OK && (e = get(s, "scale")) != NULL)
        r = choice(c, s, e, scales, NELEM(scales));
    if (r == BH_OK)
        r = str_opt(c, s, "scale", &fd->scale);
    if (r == BH_OK && !fd->scale && !(fd->scale = strdup("coefficient")))
        r = fail(c, s->line, BH_ENOMEM, "out of memory");
    if (r == BH_OK)
        r = str_opt(c, s, "component", &fd->component);
    if (r != BH_OK)
        return r;
    /* Term: variables joined by ':'. */
    e = get(s, "term");
    char *copy = strdup(fd->term);
    if (!copy)
        return fail(c, e->line, BH_ENOMEM, "out of memory");
    for (char *p = copy, *q; p; p = q) {
        q = strchr(p, ':');
        if (q)
            *q++ = '\0';
        char *t = trim(p);
        if (!valid_name(t)) {
            free(copy);
            return fail(c, e->line, BH_EUSAGE,
                        "[%s] term = '%s': expected variables joined by ':'", s->name, fd->term);
        }
        if (!add_unique(&fd->term_vars, &fd->nterm_vars, t)) {
            free(copy);
            return fail(c, e->line, BH_ENOMEM, "out of memory");
        }
    }
    free(copy);
    return BH_OK;
}

static bh_status do_figure(reader_ctx *c, section *s, const char *name, bh_study_figure *fg)
{
    static const char *const keys[] = {"kind", "model", "x", "moderator", "at", "component",
                                       "title"};
    static const char *const kinds[] = {"interaction", "slopes", "coef", "margins"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    fg->line = s->line;
    fg->name = strdup(name);
    if (!fg->name)
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    if (r == BH_OK)
        r = str_req(c, s, "kind", &fg->kind);
    if (r == BH_OK)
        r = choice(c, s, get(s, "kind"), kinds, NELEM(kinds));
    if (r == BH_OK)
        r = str_req(c, s, "model", &fg->model);
    if (r == BH_OK)
        r = str_opt(c, s, "x", &fg->x);
    if (r == BH_OK)
        r = str_opt(c, s, "moderator", &fg->moderator);
    if (r == BH_OK)
        r = str_opt(c, s, "at", &fg->at);
    if (r == BH_OK)
        r = str_opt(c, s, "component", &fg->component);
    if (r == BH_OK)
        r = str_opt(c, s, "title", &fg->title);
    if (r != BH_OK)
        return r;
    if ((strcmp(fg->kind, "interaction") == 0 || strcmp(fg->kind, "slopes") == 0) &&
        (!fg->x || !fg->moderator))
        return fail(c, s->line, BH_EUSAGE, "[%s] kind = %s needs x and moderator", s->name,
                    fg->kind);
    if (fg->at) {
        /* numbers, or mean / +-Ksd */
        char **v = NULL;
        size_t n = 0;
        entry *e = get(s, "at");
        r = split_list(c, s, e, &v, &n);
        for (size_t k = 0; r == BH_OK && k < n; k++) {
            char *end;
            const char *t = v[k];
            if (strcmp(t, "mean") == 0)
                continue;
            double x = strtod(t, &end);
            (void)x;
            if (end != t && (*end == '\0' || strcmp(end, "sd") == 0))
                continue;
            r = fail(c, e->line, BH_EUSAGE,
                     "[%s] at: '%s' is neither a number nor mean, -1sd, +1sd, ...", s->name, t);
        }
        free_list(v, n);
    }
    return r;
}

/* ---- the data-generating process --------------------------------------------- */

static bh_status do_dgp(reader_ctx *c, section *s, bh_dgp *d)
{
    static const char *const keys[] = {"n", "id", "id_prefix", "id_label", "group",
                                       "group_label", "levels", "probs", "leads_count",
                                       "lead_id", "lead_id_prefix", "lead_id_label",
                                       "lead_copy"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    double n = 0;
    d->present = 1;
    if (r == BH_OK)
        r = num_req(c, s, "n", 1, 1e8, &n);
    if (r == BH_OK && n != floor(n))
        return fail(c, get(s, "n")->line, BH_EUSAGE, "[dgp] n = %g is not a whole number", n);
    d->n = (size_t)n;
    if (r == BH_OK)
        r = str_req(c, s, "id", &d->id);
    if (r == BH_OK)
        r = str_opt(c, s, "id_prefix", &d->id_prefix);
    if (r == BH_OK)
        r = str_opt(c, s, "id_label", &d->id_label);
    if (r == BH_OK)
        r = str_req(c, s, "group", &d->group);
    if (r == BH_OK)
        r = str_opt(c, s, "group_label", &d->group_label);
    if (r == BH_OK)
        r = list_req(c, s, "levels", &d->levels, &d->nlevels);
    size_t np = 0;
    entry *e;
    if (r == BH_OK)
        r = req(c, s, "probs", &e);
    if (r == BH_OK)
        r = nums_of(c, s, e, &d->probs, &np);
    if (r == BH_OK && np != d->nlevels)
        return fail(c, e->line, BH_EUSAGE, "[dgp] probs has %zu values for %zu levels", np,
                    d->nlevels);
    if (r == BH_OK) {
        double sum = 0;
        for (size_t k = 0; k < np; k++) {
            if (d->probs[k] <= 0)
                return fail(c, e->line, BH_EUSAGE, "[dgp] probs: %g is not positive",
                            d->probs[k]);
            sum += d->probs[k];
        }
        if (fabs(sum - 1) > 1e-9)
            return fail(c, e->line, BH_EUSAGE, "[dgp] probs sum to %.10g, not 1", sum);
        for (size_t k = 0; k < d->nlevels; k++)
            for (size_t j = 0; j < k; j++)
                if (strcmp(d->levels[j], d->levels[k]) == 0)
                    return fail(c, get(s, "levels")->line, BH_EUSAGE,
                                "[dgp] level '%s' listed twice", d->levels[k]);
    }
    if (r == BH_OK)
        r = str_opt(c, s, "leads_count", &d->leads_count);
    if (r == BH_OK)
        r = str_opt(c, s, "lead_id", &d->lead_id);
    if (r == BH_OK)
        r = str_opt(c, s, "lead_id_prefix", &d->lead_id_prefix);
    if (r == BH_OK)
        r = str_opt(c, s, "lead_id_label", &d->lead_id_label);
    if (r == BH_OK)
        r = list_opt(c, s, "lead_copy", &d->lead_copy, &d->nlead_copy);
    if (r != BH_OK)
        return r;
    if (!d->leads_count && (d->lead_copy || d->lead_id))
        return fail(c, s->line, BH_EUSAGE, "[dgp] lead_id and lead_copy need leads_count");
    struct { char **p; const char *def; } defs[] = {
        {&d->id_prefix, "U"}, {&d->lead_id_prefix, "L"}, {&d->lead_id, "lead_id"},
        {&d->id_label, "unit identifier"}, {&d->group_label, "group"},
        {&d->lead_id_label, "lead identifier"}};
    for (size_t k = 0; k < NELEM(defs); k++)
        if (!*defs[k].p && !(*defs[k].p = strdup(defs[k].def)))
            return fail(c, s->line, BH_ENOMEM, "out of memory");
    const char *names[] = {d->id, d->group, d->lead_id};
    for (size_t k = 0; k < 3; k++)
        if (!valid_name(names[k]))
            return fail(c, s->line, BH_EUSAGE, "[dgp] '%s' is not a valid column name",
                        names[k]);
    return BH_OK;
}

static bh_dgp_node *new_node(reader_ctx *c, bh_dgp *d, section *s, const char *name,
                             bh_dgp_kind kind)
{
    bh_dgp_node *nn = realloc(d->nodes, (d->nnodes + 1) * sizeof *nn);
    if (!nn) {
        fail(c, s->line, BH_ENOMEM, "out of memory");
        return NULL;
    }
    d->nodes = nn;
    bh_dgp_node *x = &nn[d->nnodes++];
    memset(x, 0, sizeof *x);
    x->name = strdup(name);
    x->kind = kind;
    x->line = s->line;
    x->digits = -1;
    x->min = x->max = NAN;
    x->points = 7;
    if (!x->name) {
        fail(c, s->line, BH_ENOMEM, "out of memory");
        return NULL;
    }
    return x;
}

static bh_status do_dgp_var(reader_ctx *c, section *s, const char *name, bh_dgp *d)
{
    static const char *const keys[] = {"dist", "data", "mean", "sd", "size", "digits", "min",
                                       "max", "missing", "random_sd", "label", "unit",
                                       "construct"};
    static const char *const dists[] = {"normal", "lognormal", "gamma", "poisson", "negbin",
                                        "bernoulli"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    bh_dgp_node *x = r == BH_OK ? new_node(c, d, s, name, BH_DGP_VAR) : NULL;
    if (!x)
        return c->st;
    entry *e;
    r = req(c, s, "dist", &e);
    if (r == BH_OK)
        r = choice(c, s, e, dists, NELEM(dists));
    if (r != BH_OK)
        return r;
    for (size_t k = 0; k < NELEM(dists); k++)
        if (strcmp(e->value, dists[k]) == 0)
            x->dist = (bh_dgp_dist)k;
    r = level_opt(c, s, &x->data);
    int need_sd = x->dist == BH_DGP_NORMAL || x->dist == BH_DGP_LOGNORMAL ||
                  x->dist == BH_DGP_GAMMA;
    int positive = x->dist != BH_DGP_NORMAL;
    if (r == BH_OK && x->dist != BH_DGP_BERNOULLI)
        r = num_req(c, s, "mean", positive ? 1e-300 : -HUGE_VAL, HUGE_VAL, &x->mean);
    if (r == BH_OK && x->dist == BH_DGP_BERNOULLI && (e = get(s, "mean")) != NULL)
        return fail(c, e->line, BH_EUSAGE,
                    "[%s] mean does not apply to bernoulli (set the intercept in [dgp effects "
                    "%s])", s->name, name);
    if (r == BH_OK && need_sd)
        r = num_req(c, s, "sd", 1e-300, HUGE_VAL, &x->sd);
    else if (r == BH_OK && (e = get(s, "sd")) != NULL)
        return fail(c, e->line, BH_EUSAGE, "[%s] sd does not apply to dist = %s", s->name,
                    dists[x->dist]);
    if (r == BH_OK && x->dist == BH_DGP_NEGBIN)
        r = num_req(c, s, "size", 1e-300, HUGE_VAL, &x->size);
    else if (r == BH_OK && (e = get(s, "size")) != NULL)
        return fail(c, e->line, BH_EUSAGE, "[%s] size applies only to dist = negbin", s->name);
    long dg = -1;
    if (r == BH_OK)
        r = int_opt(c, s, "digits", 0, 15, &dg);
    x->digits = (int)dg;
    if (r == BH_OK)
        r = num_opt(c, s, "min", -HUGE_VAL, HUGE_VAL, &x->min);
    if (r == BH_OK)
        r = num_opt(c, s, "max", -HUGE_VAL, HUGE_VAL, &x->max);
    if (r == BH_OK && x->min > x->max)
        return fail(c, get(s, "max")->line, BH_EUSAGE, "[%s] max %g is below min %g", s->name,
                    x->max, x->min);
    if (r == BH_OK)
        r = num_opt(c, s, "missing", 0, 0.99, &x->missing);
    if (r == BH_OK)
        r = num_opt(c, s, "random_sd", 0, HUGE_VAL, &x->random_sd);
    if (r == BH_OK && x->random_sd > 0 && x->data != BH_LEVEL_LEADS)
        return fail(c, get(s, "random_sd")->line, BH_EUSAGE,
                    "[%s] random_sd applies only to data = leads (a random intercept per unit)",
                    s->name);
    if (r == BH_OK)
        r = str_opt(c, s, "label", &x->label);
    if (r == BH_OK)
        r = str_opt(c, s, "unit", &x->unit);
    if (r == BH_OK)
        r = str_opt(c, s, "construct", &x->construct);
    return r;
}

static bh_status do_dgp_scale(reader_ctx *c, section *s, const char *name, bh_dgp *d)
{
    static const char *const keys[] = {"items", "loading", "noise_sd", "item_mean", "points",
                                       "missing", "label", "construct", "unit"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    bh_dgp_node *x = r == BH_OK ? new_node(c, d, s, name, BH_DGP_SCALE) : NULL;
    if (!x)
        return c->st;
    r = list_req(c, s, "items", &x->items, &x->nitems);
    if (r == BH_OK && x->nitems < 2)
        return fail(c, get(s, "items")->line, BH_EUSAGE, "[%s] needs at least two items",
                    s->name);
    if (r == BH_OK)
        r = num_req(c, s, "loading", -HUGE_VAL, HUGE_VAL, &x->loading);
    if (r == BH_OK)
        r = num_req(c, s, "noise_sd", 0, HUGE_VAL, &x->noise_sd);
    if (r == BH_OK)
        r = num_req(c, s, "item_mean", -HUGE_VAL, HUGE_VAL, &x->item_mean);
    long pts = 7;
    if (r == BH_OK)
        r = int_opt(c, s, "points", 2, 100, &pts);
    x->points = (int)pts;
    x->digits = 0;
    if (r == BH_OK)
        r = num_opt(c, s, "missing", 0, 0.99, &x->missing);
    if (r == BH_OK)
        r = str_opt(c, s, "label", &x->label);
    if (r == BH_OK)
        r = str_opt(c, s, "construct", &x->construct);
    if (r == BH_OK)
        r = str_opt(c, s, "unit", &x->unit);
    return r;
}

static bh_status do_dgp_dirichlet(reader_ctx *c, section *s, const char *name, bh_dgp *d)
{
    static const char *const keys[] = {"components", "reference", "precision", "digits",
                                       "labels", "unit", "construct"};
    bh_status r = check_keys(c, s, keys, NELEM(keys));
    bh_dgp_node *x = r == BH_OK ? new_node(c, d, s, name, BH_DGP_DIRICHLET) : NULL;
    if (!x)
        return c->st;
    r = list_req(c, s, "components", &x->components, &x->ncomp);
    if (r == BH_OK && x->ncomp < 2)
        return fail(c, get(s, "components")->line, BH_EUSAGE,
                    "[%s] needs at least two components", s->name);
    entry *e;
    if (r == BH_OK)
        r = req(c, s, "reference", &e);
    if (r == BH_OK) {
        size_t k = 0;
        while (k < x->ncomp && strcmp(x->components[k], e->value) != 0)
            k++;
        if (k == x->ncomp)
            return fail(c, e->line, BH_EUSAGE, "[%s] reference '%s' is not a component",
                        s->name, e->value);
        x->reference = k;
    }
    if (r == BH_OK)
        r = num_req(c, s, "precision", 1e-300, HUGE_VAL, &x->precision);
    long dg = 4;
    if (r == BH_OK)
        r = int_opt(c, s, "digits", 1, 9, &dg);
    x->digits = (int)dg;
    size_t nl = 0;
    if (r == BH_OK)
        r = list_opt(c, s, "labels", &x->comp_labels, &nl);
    if (r == BH_OK && x->comp_labels && nl != x->ncomp)
        return fail(c, get(s, "labels")->line, BH_EUSAGE,
                    "[%s] labels has %zu entries for %zu components", s->name, nl, x->ncomp);
    if (r == BH_OK)
        r = str_opt(c, s, "unit", &x->unit);
    if (r == BH_OK)
        r = str_opt(c, s, "construct", &x->construct);
    if (r == BH_OK && !(x->effects = calloc(x->ncomp, sizeof *x->effects)))
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    return r;
}

/* ---- cross references ----------------------------------------------------------- */

/* Where a DGP name lives. */
typedef struct {
    long node;      /* -1 none */
    long comp;      /* dirichlet component, -1 for the node itself */
    long item;      /* scale item, -1 */
} dgp_ref;

static dgp_ref dgp_find(const bh_dgp *d, const char *name)
{
    dgp_ref r = {-1, -1, -1};
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        if (strcmp(x->name, name) == 0 && x->kind != BH_DGP_DIRICHLET) {
            r.node = (long)k;
            return r;
        }
        for (size_t j = 0; j < x->ncomp; j++)
            if (strcmp(x->components[j], name) == 0) {
                r.node = (long)k;
                r.comp = (long)j;
                return r;
            }
        for (size_t j = 0; j < x->nitems; j++)
            if (strcmp(x->items[j], name) == 0) {
                r.node = (long)k;
                r.item = (long)j;
                return r;
            }
    }
    return r;
}

/* All predictor names (vars and scale composites), for suggestions. */
static const char **dgp_predictors(const bh_dgp *d, size_t *n)
{
    const char **v = calloc(d->nnodes + 1, sizeof *v);
    size_t k = 0;
    if (v)
        for (size_t j = 0; j < d->nnodes; j++)
            if (d->nodes[j].kind != BH_DGP_DIRICHLET)
                v[k++] = d->nodes[j].name;
    *n = k;
    return v;
}

static bh_status do_dgp_effects(reader_ctx *c, section *s, const char *name, bh_dgp *d)
{
    dgp_ref ref = dgp_find(d, name);
    if (ref.node < 0 || ref.item >= 0) {
        size_t np;
        const char **cand = dgp_predictors(d, &np);
        const char *sug = cand ? bh_suggest(name, cand, np) : NULL;
        bh_status r;
        if (sug)
            r = fail(c, s->line, BH_EUSAGE,
                     "[%s]: no [dgp var], [dgp scale] or Dirichlet component '%s'; did you "
                     "mean '%s'?", s->name, name, sug);
        else
            r = fail(c, s->line, BH_EUSAGE,
                     "[%s]: no [dgp var], [dgp scale] or Dirichlet component '%s' is defined "
                     "above this section", s->name, name);
        free(cand);
        return r;
    }
    bh_dgp_node *x = &d->nodes[ref.node];
    if (x->kind == BH_DGP_DIRICHLET && (size_t)ref.comp == x->reference)
        return fail(c, s->line, BH_EUSAGE,
                    "[%s]: '%s' is the reference component (its predictor is fixed at 0)",
                    s->name, name);
    if (!x->effects && !(x->effects = calloc(1, sizeof *x->effects)))
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    bh_dgp_effects *ef = &x->effects[ref.comp >= 0 ? ref.comp : 0];
    ef->present = 1;
    ef->line = s->line;
    ef->terms = calloc(s->n ? s->n : 1, sizeof *ef->terms);
    if (!ef->terms)
        return fail(c, s->line, BH_ENOMEM, "out of memory");
    for (size_t k = 0; k < s->n; k++) {
        entry *e = &s->e[k];
        e->used = 1;
        if (strcmp(e->key, "intercept") == 0) {
            bh_status r = parse_num(c, s, e, "intercept", e->value, &ef->intercept);
            if (r != BH_OK)
                return r;
            continue;
        }
        if (strcmp(e->key, "group") == 0) {
            size_t ng = 0;
            bh_status r = nums_of(c, s, e, &ef->group, &ng);
            if (r != BH_OK)
                return r;
            if (ng != d->nlevels)
                return fail(c, e->line, BH_EUSAGE,
                            "[%s] group has %zu shifts for %zu levels of [dgp] levels", s->name,
                            ng, d->nlevels);
            continue;
        }
        bh_dgp_term *t = &ef->terms[ef->nterms];
        t->line = e->line;
        t->label = strdup(e->key);
        if (!t->label)
            return fail(c, e->line, BH_ENOMEM, "out of memory");
        ef->nterms++;
        bh_status r = parse_num(c, s, e, e->key, e->value, &t->coef);
        if (r != BH_OK)
            return r;
        size_t nparts = 1;
        for (const char *p = e->key; *p; p++)
            nparts += *p == '*';
        t->node = calloc(nparts, sizeof *t->node);
        if (!t->node)
            return fail(c, e->line, BH_ENOMEM, "out of memory");
        char *copy = strdup(e->key);
        if (!copy)
            return fail(c, e->line, BH_ENOMEM, "out of memory");
        for (char *p = copy, *q; p; p = q) {
            q = strchr(p, '*');
            if (q)
                *q++ = '\0';
            char *tn = trim(p);
            dgp_ref pr = dgp_find(d, tn);
            if (pr.node < 0 || pr.comp >= 0 || pr.item >= 0) {
                size_t np;
                const char **cand = dgp_predictors(d, &np);
                const char *sug = cand ? bh_suggest(tn, cand, np) : NULL;
                char msg[300];
                if (pr.node >= 0)
                    snprintf(msg, sizeof msg, "; a predictor must be a [dgp var] or a [dgp "
                             "scale] composite");
                else if (sug)
                    snprintf(msg, sizeof msg, "; did you mean '%s'?", sug);
                else
                    snprintf(msg, sizeof msg, " (unknown, or defined below this section)");
                free(cand);
                bh_status rr = fail(c, e->line, BH_EUSAGE, "[%s] term '%s': '%s'%s", s->name,
                                    e->key, tn, msg);
                free(copy);
                return rr;
            }
            t->node[t->nnode++] = (size_t)pr.node;
        }
        free(copy);
        for (size_t j = 0; j < t->nnode; j++) {
            if (d->nodes[t->node[j]].data == BH_LEVEL_LEADS && x->data == BH_LEVEL_REPS)
                return fail(c, e->line, BH_EUSAGE,
                            "[%s] term '%s': the unit-level '%s' cannot depend on the "
                            "leads-level '%s'", s->name, e->key, name,
                            d->nodes[t->node[j]].name);
        }
    }
    return BH_OK;
}

/* Depth-first search for cycles in the DGP dependency graph; fills the
 * generation order (dependencies first, ties in file order). */
static bh_status dgp_order(reader_ctx *c, bh_dgp *d)
{
    size_t n = d->nnodes;
    d->order = calloc(n ? n : 1, sizeof *d->order);
    int *state = calloc(n ? n : 1, sizeof *state);   /* 0 new, 1 on stack, 2 done */
    size_t *stack = calloc(n ? n : 1, sizeof *stack);
    size_t *edge = calloc(n ? n : 1, sizeof *edge);
    bh_status r = BH_OK;
    if (!d->order || !state || !stack || !edge)
        r = fail(c, 0, BH_ENOMEM, "out of memory");
    size_t no = 0;
    /* Edges of node k: the nodes of all its terms (flattened on the fly). */
    for (size_t root = 0; r == BH_OK && root < n; root++) {
        if (state[root])
            continue;
        size_t sp = 0;
        stack[sp] = root;
        edge[sp] = 0;
        state[root] = 1;
        sp++;
        while (sp > 0 && r == BH_OK) {
            size_t v = stack[sp - 1];
            const bh_dgp_node *x = &d->nodes[v];
            size_t neff = x->kind == BH_DGP_DIRICHLET ? x->ncomp : (x->effects ? 1 : 0);
            /* enumerate edge number edge[sp-1] */
            size_t idx = edge[sp - 1], next = SIZE_MAX, count = 0;
            for (size_t f = 0; f < neff && next == SIZE_MAX; f++)
                for (size_t t = 0; t < x->effects[f].nterms && next == SIZE_MAX; t++)
                    for (size_t j = 0; j < x->effects[f].terms[t].nnode; j++, count++)
                        if (count == idx) {
                            next = x->effects[f].terms[t].node[j];
                            break;
                        }
            /* leads-level variables also depend on the count of leads */
            if (next == SIZE_MAX && x->data == BH_LEVEL_LEADS && d->leads_count &&
                count == idx && d->leads_count_node != v)
                next = d->leads_count_node;
            if (next == SIZE_MAX) {
                state[v] = 2;
                d->order[no++] = v;
                sp--;
                continue;
            }
            edge[sp - 1]++;
            if (state[next] == 2)
                continue;
            if (state[next] == 1) {
                char path[600];
                size_t o = 0;
                size_t from = 0;
                while (stack[from] != next)
                    from++;
                for (size_t k = from; k < sp && o + 4 < sizeof path; k++) {
                    int w = snprintf(path + o, sizeof path - o, "%s -> ",
                                     d->nodes[stack[k]].name);
                    if (w < 0)
                        break;
                    o += (size_t)w;
                }
                snprintf(path + (o < sizeof path ? o : sizeof path - 1),
                         o < sizeof path ? sizeof path - o : 1, "%s", d->nodes[next].name);
                r = fail(c, d->nodes[stack[from]].line, BH_EUSAGE,
                         "circular reference in the data-generating process: %s "
                         "(each depends on the next through [dgp effects])", path);
                break;
            }
            state[next] = 1;
            stack[sp] = next;
            edge[sp] = 0;
            sp++;
        }
    }
    free(state);
    free(stack);
    free(edge);
    return r;
}

static bh_status dgp_check(reader_ctx *c, bh_dgp *d)
{
    /* Every output column name is unique. */
    const char **names = NULL;
    size_t nn = 0, cap = 0;
    bh_status r = BH_OK;
#define ADDNAME(nm, ln)                                                                     \
    do {                                                                                    \
        const char *nm_ = (nm);                                                             \
        for (size_t q_ = 0; q_ < nn; q_++)                                                  \
            if (strcmp(names[q_], nm_) == 0) {                                              \
                r = fail(c, (ln), BH_EUSAGE, "data-generating process: name '%s' is "       \
                         "defined twice", nm_);                                             \
                goto done;                                                                  \
            }                                                                               \
        if (!valid_name(nm_)) {                                                             \
            r = fail(c, (ln), BH_EUSAGE, "data-generating process: '%s' is not a valid "    \
                     "column name", nm_);                                                   \
            goto done;                                                                      \
        }                                                                                   \
        if (nn == cap) {                                                                    \
            cap = cap ? 2 * cap : 32;                                                       \
            const char **nv_ = realloc(names, cap * sizeof *nv_);                            \
            if (!nv_) {                                                                     \
                r = fail(c, (ln), BH_ENOMEM, "out of memory");                              \
                goto done;                                                                  \
            }                                                                               \
            names = nv_;                                                                    \
        }                                                                                   \
        names[nn++] = nm_;                                                                  \
    } while (0)
    ADDNAME(d->id, 0);
    ADDNAME(d->group, 0);
    if (d->leads_count)
        ADDNAME(d->lead_id, 0);
    for (size_t k = 0; k < d->nnodes; k++) {
        const bh_dgp_node *x = &d->nodes[k];
        if (x->kind != BH_DGP_DIRICHLET)
            ADDNAME(x->name, x->line);
        for (size_t j = 0; j < x->nitems; j++)
            ADDNAME(x->items[j], x->line);
        for (size_t j = 0; j < x->ncomp; j++)
            ADDNAME(x->components[j], x->line);
    }
#undef ADDNAME
    if (d->leads_count) {
        dgp_ref lc = dgp_find(d, d->leads_count);
        if (lc.node < 0 || lc.comp >= 0 || lc.item >= 0 ||
            d->nodes[lc.node].kind != BH_DGP_VAR ||
            (d->nodes[lc.node].dist != BH_DGP_POISSON &&
             d->nodes[lc.node].dist != BH_DGP_NEGBIN) ||
            d->nodes[lc.node].data != BH_LEVEL_REPS) {
            r = fail(c, 0, BH_EUSAGE,
                     "[dgp] leads_count = '%s' must be a unit-level [dgp var] with dist = "
                     "poisson or negbin", d->leads_count);
            goto done;
        }
        d->leads_count_node = (size_t)lc.node;
        for (size_t k = 0; k < d->nlead_copy; k++) {
            const char *nm = d->lead_copy[k];
            dgp_ref cr = dgp_find(d, nm);
            if (strcmp(nm, d->id) == 0 || strcmp(nm, d->group) == 0) {
                r = fail(c, 0, BH_EUSAGE, "[dgp] lead_copy: '%s' is always copied", nm);
                goto done;
            }
            if (cr.node < 0 || d->nodes[cr.node].data != BH_LEVEL_REPS) {
                size_t np;
                const char **cand = dgp_predictors(d, &np);
                const char *sug = cand ? bh_suggest(nm, cand, np) : NULL;
                r = sug ? fail(c, 0, BH_EUSAGE,
                               "[dgp] lead_copy: no unit-level '%s'; did you mean '%s'?", nm,
                               sug)
                        : fail(c, 0, BH_EUSAGE, "[dgp] lead_copy: no unit-level '%s'", nm);
                free(cand);
                goto done;
            }
        }
    } else {
        for (size_t k = 0; k < d->nnodes; k++)
            if (d->nodes[k].data == BH_LEVEL_LEADS) {
                r = fail(c, d->nodes[k].line, BH_EUSAGE,
                         "[dgp var %s] has data = leads but [dgp] has no leads_count",
                         d->nodes[k].name);
                goto done;
            }
    }
    r = dgp_order(c, d);
done:
    free(names);
    return r;
}

/* Names a model, scale or transform may use on a data level, when known
 * statically (a DGP or a [columns] section); NULL list = unknown. */
typedef struct {
    const char **v;
    size_t n, cap;
} namelist;

static int nl_add(namelist *l, const char *s)
{
    for (size_t k = 0; k < l->n; k++)
        if (strcmp(l->v[k], s) == 0)
            return 1;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 32;
        const char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return 0;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return 1;
}

static int known_names(const bh_study *st, bh_study_level lv, int with_scales, namelist *l)
{
    const bh_dgp *d = &st->dgp;
    int ok = 1;
    for (size_t k = 0; k < st->ncolumns; k++)
        ok = ok && nl_add(l, st->columns[k].spec_name);
    if (d->present) {
        ok = ok && nl_add(l, d->id) && nl_add(l, d->group);
        if (lv == BH_LEVEL_LEADS) {
            ok = ok && nl_add(l, d->lead_id);
            for (size_t k = 0; k < d->nlead_copy; k++)
                ok = ok && nl_add(l, d->lead_copy[k]);
        }
        for (size_t k = 0; k < d->nnodes; k++) {
            const bh_dgp_node *x = &d->nodes[k];
            if (x->data != lv)
                continue;
            if (x->kind == BH_DGP_VAR)
                ok = ok && nl_add(l, x->name);
            for (size_t j = 0; j < x->nitems; j++)
                ok = ok && nl_add(l, x->items[j]);
            for (size_t j = 0; j < x->ncomp; j++)
                ok = ok && nl_add(l, x->components[j]);
        }
    }
    if (with_scales)
        for (size_t k = 0; k < st->nscales; k++)
            if (st->scales[k].data == lv)
                ok = ok && nl_add(l, st->scales[k].name);
    return ok;
}

static const char *level_name(bh_study_level lv)
{
    return lv == BH_LEVEL_LEADS ? "leads" : "reps";
}

static bh_status unknown_name(reader_ctx *c, size_t line, const char *what, const char *name,
                              bh_study_level lv, const namelist *l)
{
    const char *sug = bh_suggest(name, l->v, l->n);
    if (sug)
        return fail(c, line, BH_EUSAGE, "%s: '%s' is not a column of the %s data, a scale or a "
                    "[columns] name; did you mean '%s'?", what, name, level_name(lv), sug);
    return fail(c, line, BH_EUSAGE, "%s: '%s' is not a column of the %s data, a scale or a "
                "[columns] name", what, name, level_name(lv));
}

static bh_status cross_check(reader_ctx *c, bh_study *st)
{
    bh_status r = BH_OK;
    int statically = st->dgp.present;  /* without a DGP, names are checked on the data */
    namelist known[2] = {{0}, {0}};
    for (int lv = 0; lv < 2; lv++)
        if (!known_names(st, (bh_study_level)lv, 1, &known[lv])) {
            r = fail(c, 0, BH_ENOMEM, "out of memory");
            goto done;
        }
    /* scales: items known; cycles among scales */
    for (size_t k = 0; k < st->nscales; k++) {
        bh_study_scale *sc = &st->scales[k];
        for (size_t j = 0; j < sc->nitems; j++) {
            long other = bh_study_scale_index(st, sc->items[j]);
            if (other >= 0) {
                /* follow the chain of scale-in-scale items */
                size_t depth = 0;
                long cur = other;
                int cyc = 0;
                /* a scale built (at any depth) from this one is circular */
                long stack[64];
                size_t sp = 0;
                stack[sp++] = cur;
                while (sp > 0 && depth++ < 10000) {
                    long v = stack[--sp];
                    if ((size_t)v == k) {
                        cyc = 1;
                        break;
                    }
                    for (size_t q = 0; q < st->scales[v].nitems && sp < 64; q++) {
                        long w = bh_study_scale_index(st, st->scales[v].items[q]);
                        if (w >= 0)
                            stack[sp++] = w;
                    }
                }
                if (cyc) {
                    r = fail(c, sc->line, BH_EUSAGE,
                             "[scale %s] circular reference: item '%s' is a scale built "
                             "(directly or not) from '%s'", sc->name, sc->items[j], sc->name);
                    goto done;
                }
                continue;
            }
            if (statically && !in_list(sc->items[j], known[sc->data].v, known[sc->data].n)) {
                char what[120];
                snprintf(what, sizeof what, "[scale %s] items", sc->name);
                r = unknown_name(c, sc->line, what, sc->items[j], sc->data, &known[sc->data]);
                goto done;
            }
        }
    }
    /* transform */
    for (size_t k = 0; statically && k < st->ncenter + st->nstandardize; k++) {
        const char *nm = k < st->ncenter ? st->center[k] : st->standardize[k - st->ncenter];
        if (!in_list(nm, known[0].v, known[0].n) && !in_list(nm, known[1].v, known[1].n)) {
            r = unknown_name(c, 0, "[transform]", nm, BH_LEVEL_REPS, &known[0]);
            goto done;
        }
    }
    /* models */
    for (size_t k = 0; k < st->nmodels; k++) {
        bh_study_model *m = &st->models[k];
        for (size_t j = 0; statically && j < m->nvars; j++)
            if (!in_list(m->vars[j], known[m->data].v, known[m->data].n)) {
                char what[120];
                snprintf(what, sizeof what, "[model %s]", m->name);
                r = unknown_name(c, m->line, what, m->vars[j], m->data, &known[m->data]);
                goto done;
            }
    }
    /* findings and figures refer to models and their variables */
    for (size_t k = 0; k < st->nfindings + st->nfigures; k++) {
        int isfig = k >= st->nfindings;
        bh_study_finding *fd = isfig ? NULL : &st->findings[k];
        bh_study_figure *fg = isfig ? &st->figures[k - st->nfindings] : NULL;
        const char *model = isfig ? fg->model : fd->model;
        const char *sname = isfig ? fg->name : fd->name;
        const char *kind = isfig ? "figure" : "finding";
        size_t line = isfig ? fg->line : fd->line;
        long mi = bh_study_model_index(st, model);
        if (mi < 0) {
            const char **cand = calloc(st->nmodels + 1, sizeof *cand);
            for (size_t j = 0; cand && j < st->nmodels; j++)
                cand[j] = st->models[j].name;
            const char *sug = cand ? bh_suggest(model, cand, st->nmodels) : NULL;
            r = sug ? fail(c, line, BH_EUSAGE,
                           "[%s %s] model '%s' is not defined; did you mean '%s'?", kind, sname,
                           model, sug)
                    : fail(c, line, BH_EUSAGE, "[%s %s] model '%s' is not defined (no [model "
                           "%s] section)", kind, sname, model, model);
            free(cand);
            goto done;
        }
        bh_study_model *m = &st->models[mi];
        int dir = strcmp(m->family, "dirichlet") == 0;
        const char *comp = isfig ? fg->component : fd->component;
        if (isfig)
            fg->model_index = (size_t)mi;
        else
            fd->model_index = (size_t)mi;
        if (comp && !dir) {
            r = fail(c, line, BH_EUSAGE, "[%s %s] component applies only to dirichlet models",
                     kind, sname);
            goto done;
        }
        if (dir && !comp && !isfig) {
            r = fail(c, line, BH_EUSAGE,
                     "[%s %s] model '%s' is a dirichlet model: say which component", kind,
                     sname, m->name);
            goto done;
        }
        if (comp && !in_list(comp, (const char *const *)m->responses, m->nresponses)) {
            r = fail(c, line, BH_EUSAGE, "[%s %s] component '%s' is not a response of model "
                     "'%s'", kind, sname, comp, m->name);
            goto done;
        }
        if (comp && !isfig && strcmp(m->param, "alternative") == 0 &&
            strcmp(comp, m->reference) == 0) {
            r = fail(c, line, BH_EUSAGE, "[%s %s] component '%s' is the reference of model "
                     "'%s' (it has no coefficients)", kind, sname, comp, m->name);
            goto done;
        }
        /* variables must be right-hand-side variables of the model */
        char **tv = isfig ? NULL : fd->term_vars;
        size_t ntv = isfig ? 0 : fd->nterm_vars;
        const char *figv[2] = {isfig ? fg->x : NULL, isfig ? fg->moderator : NULL};
        for (size_t j = 0; j < (isfig ? 2 : ntv); j++) {
            const char *v = isfig ? figv[j] : tv[j];
            if (!v)
                continue;
            int found = 0;
            for (size_t q = 0; q < m->nvars && !found; q++)
                found = strcmp(m->vars[q], v) == 0 &&
                        !in_list(v, (const char *const *)m->responses, m->nresponses);
            if (!found) {
                r = fail(c, line, BH_EUSAGE, "[%s %s] '%s' is not a predictor of model '%s' "
                         "(%s)", kind, sname, v, m->name, m->formula);
                goto done;
            }
        }
    }
done:
    free(known[0].v);
    free(known[1].v);
    return r;
}

/* Check that the finding's term is a term of its model's formula. */
static bh_status finding_terms(reader_ctx *c, bh_study *st)
{
    for (size_t k = 0; k < st->nfindings; k++) {
        bh_study_finding *fd = &st->findings[k];
        bh_study_model *m = &st->models[fd->model_index];
        bh_formula *f = NULL;
        if (bh_formula_parse(m->formula, &f, NULL) != BH_OK)
            return fail(c, m->line, BH_EINTERNAL, "formula reparse failed");
        int match = 0;
        for (size_t t = 0; t < f->nterms && !match; t++) {
            char **raw = NULL;
            size_t nraw = 0;
            int ok = 1;
            for (size_t j = 0; j < f->terms[t].nvars && ok; j++)
                ok = expr_vars(f->vars[f->terms[t].vars[j]].expr, &raw, &nraw);
            if (!ok) {
                free_list(raw, nraw);
                bh_formula_free(f);
                return fail(c, fd->line, BH_ENOMEM, "out of memory");
            }
            if (nraw == fd->nterm_vars) {
                match = 1;
                for (size_t j = 0; j < nraw && match; j++)
                    match = in_list(raw[j], (const char *const *)fd->term_vars, fd->nterm_vars);
            }
            free_list(raw, nraw);
        }
        bh_formula_free(f);
        if (!match)
            return fail(c, fd->line, BH_EUSAGE,
                        "[finding %s] term '%s' is not a term of model '%s' (%s)", fd->name,
                        fd->term, m->name, m->formula);
    }
    return BH_OK;
}

/* ---- driver ---------------------------------------------------------------------- */

static const char *const section_kinds[] = {"study", "columns", "transform", "dgp",
                                            "scale", "model", "finding", "figure",
                                            "dgp var", "dgp scale", "dgp dirichlet",
                                            "dgp effects"};

/* Split "kind NAME" into kind index and name; -1 when unknown. */
static int classify(const char *secname, const char **name)
{
    static const int named[] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    int best = -1;
    size_t bestlen = 0;
    for (size_t k = 0; k < NELEM(section_kinds); k++) {
        size_t len = strlen(section_kinds[k]);
        if (strncmp(secname, section_kinds[k], len) != 0)
            continue;
        if (named[k] ? secname[len] == ' ' : secname[len] == '\0') {
            if (len >= bestlen) {
                best = (int)k;
                bestlen = len;
            }
        }
    }
    if (best >= 0 && named[best]) {
        const char *p = secname + bestlen;
        while (*p == ' ')
            p++;
        *name = p;
    } else {
        *name = NULL;
    }
    return best;
}

static bh_status unknown_section(reader_ctx *c, section *s)
{
    /* Suggest against the kind word(s) typed, keeping the name. */
    char kind[64];
    const char *sp = strrchr(s->name, ' ');
    const char *rest = "";
    size_t len = strlen(s->name);
    if (sp) {
        /* the name is the last word; the kind is everything before it */
        len = (size_t)(sp - s->name);
        rest = sp;
    }
    if (len >= sizeof kind)
        len = sizeof kind - 1;
    memcpy(kind, s->name, len);
    kind[len] = '\0';
    const char *sug = bh_suggest(kind, section_kinds, NELEM(section_kinds));
    if (!sug && sp) {
        /* maybe an unnamed kind with a stray word, e.g. [studdy x] */
        sug = bh_suggest(s->name, section_kinds, NELEM(section_kinds));
        rest = "";
    }
    if (sug)
        return fail(c, s->line, BH_EUSAGE, "unknown section [%s]; did you mean [%s%s]?",
                    s->name, sug, rest);
    return fail(c, s->line, BH_EUSAGE,
                "unknown section [%s] (known: study, columns, transform, scale NAME, model "
                "NAME, finding NAME, figure NAME, dgp, dgp var NAME, dgp scale NAME, dgp "
                "dirichlet NAME, dgp effects NAME)", s->name);
}

static void *grow(void *p, size_t n, size_t size)
{
    return realloc(p, (n + 1) * size);
}

static bh_status interpret(reader_ctx *c, bh_study *st)
{
    bh_status r = BH_OK;
    int have_study = 0;
    /* Effects sections refer to nodes defined anywhere: do them last. */
    for (int pass = 0; pass < 2 && r == BH_OK; pass++) {
        for (size_t k = 0; k < c->nsec && r == BH_OK; k++) {
            section *s = &c->sec[k];
            const char *name;
            int kind = classify(s->name, &name);
            if (pass == 1 && kind != 11)
                continue;
            if (pass == 0 && kind == 11)
                continue;
            if (kind < 0)
                return unknown_section(c, s);
            if (name && !valid_name(name))
                return fail(c, s->line, BH_EUSAGE,
                            "section [%s]: '%s' is not a valid name (letters, digits, '_', "
                            "'.')", s->name, name);
            void *p;
            switch (kind) {
            case 0:
                have_study = 1;
                r = do_study(c, s, st);
                break;
            case 1:
                r = do_columns(c, s, st);
                break;
            case 2:
                r = do_transform(c, s, st);
                break;
            case 3:
                r = do_dgp(c, s, &st->dgp);
                break;
            case 4:
                if (!(p = grow(st->scales, st->nscales, sizeof *st->scales)))
                    return fail(c, s->line, BH_ENOMEM, "out of memory");
                st->scales = p;
                memset(&st->scales[st->nscales], 0, sizeof *st->scales);
                r = do_scale(c, s, name, &st->scales[st->nscales++]);
                break;
            case 5:
                if (!(p = grow(st->models, st->nmodels, sizeof *st->models)))
                    return fail(c, s->line, BH_ENOMEM, "out of memory");
                st->models = p;
                memset(&st->models[st->nmodels], 0, sizeof *st->models);
                r = do_model(c, s, name, &st->models[st->nmodels++]);
                break;
            case 6:
                if (!(p = grow(st->findings, st->nfindings, sizeof *st->findings)))
                    return fail(c, s->line, BH_ENOMEM, "out of memory");
                st->findings = p;
                memset(&st->findings[st->nfindings], 0, sizeof *st->findings);
                r = do_finding(c, s, name, &st->findings[st->nfindings++]);
                break;
            case 7:
                if (!(p = grow(st->figures, st->nfigures, sizeof *st->figures)))
                    return fail(c, s->line, BH_ENOMEM, "out of memory");
                st->figures = p;
                memset(&st->figures[st->nfigures], 0, sizeof *st->figures);
                r = do_figure(c, s, name, &st->figures[st->nfigures++]);
                break;
            case 8:
                r = do_dgp_var(c, s, name, &st->dgp);
                break;
            case 9:
                r = do_dgp_scale(c, s, name, &st->dgp);
                break;
            case 10:
                r = do_dgp_dirichlet(c, s, name, &st->dgp);
                break;
            case 11:
                r = do_dgp_effects(c, s, name, &st->dgp);
                break;
            }
        }
    }
    if (r != BH_OK)
        return r;
    if (!have_study)
        return fail(c, 0, BH_EUSAGE, "the spec has no [study] section");
    int anynode = st->dgp.nnodes > 0;
    if (anynode && !st->dgp.present)
        return fail(c, st->dgp.nodes[0].line, BH_EUSAGE,
                    "[dgp ...] sections need a [dgp] section (n, id, group, levels, probs)");
    if (st->dgp.present && (r = dgp_check(c, &st->dgp)) != BH_OK)
        return r;
    if (st->dgp.present && st->dgp.leads_count && !st->leads)
        return fail(c, 0, BH_EUSAGE, "[dgp] makes a leads file (leads_count) but [study] has "
                    "no 'leads' path");
    for (size_t k = 0; k < st->nmodels; k++)
        if (st->models[k].data == BH_LEVEL_LEADS && !st->leads)
            return fail(c, st->models[k].line, BH_EUSAGE,
                        "[model %s] uses data = leads but [study] has no 'leads' path",
                        st->models[k].name);
    /* scale names must not collide with raw columns */
    for (size_t k = 0; k < st->nscales; k++) {
        dgp_ref ref = dgp_find(&st->dgp, st->scales[k].name);
        if (st->dgp.present && ref.node >= 0 &&
            (ref.item >= 0 || ref.comp >= 0 || st->dgp.nodes[ref.node].kind == BH_DGP_VAR) &&
            st->dgp.nodes[ref.node].data == st->scales[k].data)
            return fail(c, st->scales[k].line, BH_EUSAGE,
                        "[scale %s]: the data already has a column '%s'", st->scales[k].name,
                        st->scales[k].name);
    }
    if ((r = cross_check(c, st)) != BH_OK)
        return r;
    return finding_terms(c, st);
}

bh_status bh_study_read_string(const char *text, const char *name, bh_study **out,
                               bh_error *err)
{
    *out = NULL;
    reader_ctx c;
    memset(&c, 0, sizeof c);
    c.where = name ? name : "<spec>";
    c.text = text;
    c.len = strlen(text);
    c.err = err;
    bh_study *st = calloc(1, sizeof *st);
    if (!st)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    st->path = strdup(c.where);
    if (!st->path) {
        free(st);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    int rc = ini_parse_stream(read_line, &c, handler, &c);
    if (rc > 0 && (c.st == BH_OK || (size_t)rc < c.err_line)) {
        char q[100];
        /* find that line's text for the message */
        const char *p = text;
        for (int k = 1; k < rc && p; k++) {
            p = strchr(p, '\n');
            if (p)
                p++;
        }
        char linebuf[100] = "";
        if (p) {
            size_t n = strcspn(p, "\r\n");
            if (n >= sizeof linebuf)
                n = sizeof linebuf - 1;
            memcpy(linebuf, p, n);
            linebuf[n] = '\0';
        }
        c.st = BH_OK;
        fail(&c, (size_t)rc, BH_EUSAGE,
             "syntax error: expected '[section]', 'key = value' or a comment, got '%s'",
             bh_quote(q, sizeof q, linebuf, 80));
    } else if (rc < 0 && c.st == BH_OK) {
        fail(&c, 0, BH_ENOMEM, "out of memory while parsing");
    }
    if (c.st == BH_OK)
        interpret(&c, st);
    bh_status s = c.st;
    free_sections(&c);
    if (s != BH_OK) {
        bh_study_free(st);
        return s;
    }
    *out = st;
    return BH_OK;
}

bh_status bh_study_read(const char *path, bh_study **out, bh_error *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return bh_error_at(err, BH_EINPUT, path, 0, 0, "cannot open the study spec: %s",
                           strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t nc = cap ? 2 * cap : 8192;
            if (nc > ((size_t)1 << 24)) {
                free(buf);
                fclose(fp);
                return bh_error_at(err, BH_EINPUT, path, 0, 0,
                                   "the study spec is larger than 16 MB");
            }
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(fp);
                return bh_error_set(err, BH_ENOMEM, "out of memory");
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, 4096, fp);
        len += got;
        if (got < 4096)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return bh_error_at(err, BH_EINPUT, path, 0, 0, "cannot read the study spec");
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        return bh_error_at(err, BH_EINPUT, path, 0, 0, "the study spec contains a NUL byte");
    }
    bh_status s = bh_study_read_string(buf, path, out, err);
    free(buf);
    return s;
}

static void free_effects(bh_dgp_effects *e)
{
    free(e->group);
    for (size_t k = 0; k < e->nterms; k++) {
        free(e->terms[k].label);
        free(e->terms[k].node);
    }
    free(e->terms);
}

void bh_study_free(bh_study *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->name);
    free(s->citation);
    free(s->notes);
    free(s->reps);
    free(s->leads);
    free(s->codebook);
    for (size_t k = 0; k < s->ncolumns; k++) {
        free(s->columns[k].spec_name);
        free(s->columns[k].column);
    }
    free(s->columns);
    free_list(s->center, s->ncenter);
    free_list(s->standardize, s->nstandardize);
    for (size_t k = 0; k < s->nscales; k++) {
        free(s->scales[k].name);
        free(s->scales[k].label);
        free_list(s->scales[k].items, s->scales[k].nitems);
    }
    free(s->scales);
    for (size_t k = 0; k < s->nmodels; k++) {
        bh_study_model *m = &s->models[k];
        free(m->name);
        free(m->formula);
        free(m->family);
        free(m->link);
        free(m->vcov);
        free(m->param);
        free(m->reference);
        free(m->random);
        free(m->label);
        free_list(m->responses, m->nresponses);
        free_list(m->vars, m->nvars);
    }
    free(s->models);
    for (size_t k = 0; k < s->nfindings; k++) {
        bh_study_finding *f = &s->findings[k];
        free(f->name);
        free(f->claim);
        free(f->model);
        free(f->term);
        free_list(f->term_vars, f->nterm_vars);
        free(f->scale);
        free(f->component);
    }
    free(s->findings);
    for (size_t k = 0; k < s->nfigures; k++) {
        bh_study_figure *f = &s->figures[k];
        free(f->name);
        free(f->kind);
        free(f->model);
        free(f->x);
        free(f->moderator);
        free(f->at);
        free(f->component);
        free(f->title);
    }
    free(s->figures);
    bh_dgp *d = &s->dgp;
    free(d->id);
    free(d->id_prefix);
    free(d->id_label);
    free(d->group);
    free(d->group_label);
    free_list(d->levels, d->nlevels);
    free(d->probs);
    free(d->leads_count);
    free(d->lead_id);
    free(d->lead_id_prefix);
    free(d->lead_id_label);
    free_list(d->lead_copy, d->nlead_copy);
    for (size_t k = 0; k < d->nnodes; k++) {
        bh_dgp_node *x = &d->nodes[k];
        free(x->name);
        free(x->label);
        free(x->unit);
        free(x->construct);
        free_list(x->items, x->nitems);
        free_list(x->components, x->ncomp);
        free_list(x->comp_labels, x->comp_labels ? x->ncomp : 0);
        size_t ne = x->kind == BH_DGP_DIRICHLET ? x->ncomp : 1;
        if (x->effects)
            for (size_t j = 0; j < ne; j++)
                free_effects(&x->effects[j]);
        free(x->effects);
    }
    free(d->nodes);
    free(d->order);
    free(s);
}

const char *bh_study_column(const bh_study *s, const char *spec_name)
{
    for (size_t k = 0; k < s->ncolumns; k++)
        if (strcmp(s->columns[k].spec_name, spec_name) == 0)
            return s->columns[k].column;
    return spec_name;
}

long bh_study_model_index(const bh_study *s, const char *name)
{
    for (size_t k = 0; k < s->nmodels; k++)
        if (strcmp(s->models[k].name, name) == 0)
            return (long)k;
    return -1;
}

long bh_study_scale_index(const bh_study *s, const char *name)
{
    for (size_t k = 0; k < s->nscales; k++)
        if (strcmp(s->scales[k].name, name) == 0)
            return (long)k;
    return -1;
}

/* ---- data check ---------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->cap + n + 1) * 2;
        char *nb = realloc(b->buf, nc);
        if (!nb)
            return 0;
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
    return 1;
}

bh_status bh_study_check_data(const bh_study *s, bh_study_level level, const bh_frame *data,
                              bh_error *err)
{
    /* needed spec names with who needs them */
    namelist need = {0};
    const char **who = NULL;
    size_t nwho = 0;
    int ok = 1;
#define NEED(nm, by)                                                                  \
    do {                                                                              \
        size_t before_ = need.n;                                                      \
        ok = ok && nl_add(&need, (nm));                                               \
        if (ok && need.n > before_) {                                                 \
            const char **nw_ = realloc(who, need.n * sizeof *nw_);                     \
            if (!nw_)                                                                 \
                ok = 0;                                                               \
            else {                                                                    \
                who = nw_;                                                            \
                who[need.n - 1] = (by);                                               \
                nwho = need.n;                                                        \
            }                                                                         \
        }                                                                             \
    } while (0)
    for (size_t k = 0; k < s->nscales; k++)
        if (s->scales[k].data == level)
            for (size_t j = 0; j < s->scales[k].nitems; j++)
                if (bh_study_scale_index(s, s->scales[k].items[j]) < 0)
                    NEED(s->scales[k].items[j], s->scales[k].name);
    for (size_t k = 0; k < s->nmodels; k++)
        if (s->models[k].data == level)
            for (size_t j = 0; j < s->models[k].nvars; j++) {
                long sc = bh_study_scale_index(s, s->models[k].vars[j]);
                if (sc >= 0 && s->scales[sc].data == level)
                    continue;
                NEED(s->models[k].vars[j], s->models[k].name);
            }
#undef NEED
    (void)nwho;
    if (!ok) {
        free(need.v);
        free(who);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    sbuf b = {0};
    size_t nmiss = 0;
    for (size_t k = 0; k < need.n && ok; k++) {
        const char *col = bh_study_column(s, need.v[k]);
        if (bh_frame_col(data, col))
            continue;
        char item[400];
        const char *sug = bh_frame_suggest(data, col);
        if (strcmp(col, need.v[k]) != 0)
            snprintf(item, sizeof item, "%s'%s' (spec name '%s', for %s)%s%s%s",
                     nmiss ? ", " : "", col, need.v[k], who[k], sug ? " [did you mean '" : "",
                     sug ? sug : "", sug ? "'?]" : "");
        else
            snprintf(item, sizeof item, "%s'%s' (for %s)%s%s%s", nmiss ? ", " : "", col,
                     who[k], sug ? " [did you mean '" : "", sug ? sug : "", sug ? "'?]" : "");
        ok = sb_add(&b, item);
        nmiss++;
    }
    free(need.v);
    free(who);
    if (!ok) {
        free(b.buf);
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    if (nmiss == 0) {
        free(b.buf);
        return BH_OK;
    }
    bh_status r = bh_error_at(err, BH_EDATA, data->source ? data->source : "<data>", 0, 0,
                              "the %s data lack %zu column%s the study spec %s needs: %s",
                              level_name(level), nmiss, nmiss > 1 ? "s" : "", s->path, b.buf);
    free(b.buf);
    return r;
}
