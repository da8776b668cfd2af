/* frame.c - the column-oriented data frame (see frame.h). */
#include "blackhole/frame.h"
#include "blackhole/strutil.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Release everything a column owns and zero it (safe on a zeroed column). */
static void column_clear(bh_column *c)
{
    free(c->name);
    free(c->na);
    free(c->num);
    free(c->code);
    size_t nl = c->levels_cap > c->nlevels ? c->levels_cap : c->nlevels;
    if (c->levels)
        for (size_t k = 0; k < nl; k++)
            free(c->levels[k]);
    free(c->levels);
    free(c->first_text);
    memset(c, 0, sizeof *c);
}

bh_frame *bh_frame_new(const char *source, size_t nrow)
{
    bh_frame *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->nrow = nrow;
    if (source && !(f->source = dup_str(source))) {
        free(f);
        return NULL;
    }
    return f;
}

void bh_frame_free(bh_frame *f)
{
    if (!f)
        return;
    for (size_t j = 0; j < f->ncol; j++)
        column_clear(&f->cols[j]);
    free(f->cols);
    free(f->source);
    free(f);
}

void bh_frame_release_column(bh_frame *f, size_t j)
{
    if (!f || j >= f->ncol)
        return;
    bh_column *c = &f->cols[j];
    free(c->na);
    free(c->num);
    free(c->code);
    c->na = NULL;
    c->num = NULL;
    c->code = NULL;
}

void bh_frame_drop_columns(bh_frame *f, size_t ncol)
{
    if (!f)
        return;
    while (f->ncol > ncol)
        column_clear(&f->cols[--f->ncol]);
}

long bh_frame_index(const bh_frame *f, const char *name)
{
    if (!f || !name)
        return -1;
    for (size_t j = 0; j < f->ncol; j++)
        if (strcmp(f->cols[j].name, name) == 0)
            return (long)j;
    return -1;
}

const bh_column *bh_frame_col(const bh_frame *f, const char *name)
{
    long j = bh_frame_index(f, name);
    return j < 0 ? NULL : &f->cols[j];
}

const char *bh_frame_suggest(const bh_frame *f, const char *name)
{
    if (!f || !name || f->ncol == 0)
        return NULL;
    const char **names = malloc(f->ncol * sizeof *names);
    if (!names)
        return NULL;
    for (size_t j = 0; j < f->ncol; j++)
        names[j] = f->cols[j].name;
    /* Ties go to the earlier column: deterministic and usually the one
     * the user saw first in the file. */
    const char *best = bh_suggest(name, names, f->ncol);
    free(names);
    return best;
}

static int lower_ascii(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int bh_level_cmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a;
    const unsigned char *q = (const unsigned char *)b;
    /* Pass 1: case-insensitive (ASCII only; other bytes by value). */
    size_t i = 0;
    for (;; i++) {
        int x = lower_ascii(p[i]), y = lower_ascii(q[i]);
        if (x != y)
            return x < y ? -1 : 1;
        if (!x)
            break;
    }
    /* Pass 2: equal ignoring case; the first case difference from the
     * left decides, lower case first (as glibc's en_US collation does). */
    for (i = 0; p[i]; i++) {
        if (p[i] != q[i]) {
            int pl = p[i] >= 'a' && p[i] <= 'z';
            return pl ? -1 : 1;
        }
    }
    return 0;
}

static bh_status check_name(const bh_frame *f, const char *name, bh_error *err)
{
    if (!name || !*name)
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "column %zu has an empty name", f->ncol + 1);
    long j = bh_frame_index(f, name);
    if (j >= 0) {
        char q[128];
        return bh_error_at(err, BH_EUSAGE, f->source, 0, 0,
                           "duplicate column name \"%s\" (columns %ld and %zu)",
                           bh_quote(q, sizeof q, name, 80), j + 1, f->ncol + 1);
    }
    return BH_OK;
}

/* Append a fully built column; on failure the column is released. */
static bh_status append_column(bh_frame *f, bh_column *col, bh_error *err)
{
    if (f->ncol == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        bh_column *c = realloc(f->cols, cap * sizeof *c);
        if (!c) {
            column_clear(col);
            return bh_error_set(err, BH_ENOMEM, "out of memory adding a column");
        }
        f->cols = c;
        f->cap = cap;
    }
    f->cols[f->ncol++] = *col;
    memset(col, 0, sizeof *col);
    return BH_OK;
}

bh_status bh_frame_add_numeric(bh_frame *f, const char *name,
                               const double *values, const unsigned char *na,
                               bh_error *err)
{
    if (!f)
        return bh_error_set(err, BH_EINTERNAL, "bh_frame_add_numeric: NULL frame");
    bh_status s = check_name(f, name, err);
    if (s)
        return s;
    if (f->nrow && !values)
        return bh_error_set(err, BH_EINTERNAL, "bh_frame_add_numeric: NULL values for \"%s\"", name);
    size_t n = f->nrow, m = n ? n : 1;
    bh_column c = {0};
    c.type = BH_COL_NUMERIC;
    c.n = n;
    c.name = dup_str(name);
    c.num = malloc(m * sizeof *c.num);
    c.na = malloc(m);
    if (!c.name || !c.num || !c.na) {
        column_clear(&c);
        return bh_error_set(err, BH_ENOMEM, "out of memory adding column \"%s\"", name);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char miss = na ? (na[i] != 0) : (unsigned char)isnan(values[i]);
        c.na[i] = miss;
        c.num[i] = miss ? NAN : values[i];
    }
    return append_column(f, &c, err);
}

static int cmp_level_ptr(const void *x, const void *y)
{
    return bh_level_cmp(*(const char *const *)x, *(const char *const *)y);
}

bh_status bh_frame_add_categorical(bh_frame *f, const char *name,
                                   const char *const *values, bh_error *err)
{
    if (!f)
        return bh_error_set(err, BH_EINTERNAL, "bh_frame_add_categorical: NULL frame");
    bh_status s = check_name(f, name, err);
    if (s)
        return s;
    if (f->nrow && !values)
        return bh_error_set(err, BH_EINTERNAL, "bh_frame_add_categorical: NULL values for \"%s\"", name);
    size_t n = f->nrow, m = n ? n : 1;
    bh_column c = {0};
    c.type = BH_COL_CATEGORICAL;
    c.n = n;
    c.name = dup_str(name);
    c.code = malloc(m * sizeof *c.code);
    c.na = malloc(m);
    const char **sorted = malloc(m * sizeof *sorted);
    if (!c.name || !c.code || !c.na || !sorted)
        goto nomem;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (values[i])
            sorted[k++] = values[i];
    /* Sort, then keep one copy of each distinct string (bh_level_cmp is 0
     * only for identical strings). */
    qsort(sorted, k, sizeof *sorted, cmp_level_ptr);
    size_t nl = 0;
    for (size_t i = 0; i < k; i++)
        if (nl == 0 || strcmp(sorted[nl - 1], sorted[i]) != 0)
            sorted[nl++] = sorted[i];
    if (nl > (size_t)INT32_MAX)
        goto nomem;
    c.levels = calloc(nl ? nl : 1, sizeof *c.levels);
    if (!c.levels)
        goto nomem;
    for (size_t l = 0; l < nl; l++) {
        if (!(c.levels[l] = dup_str(sorted[l])))
            goto nomem;
        c.nlevels = l + 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!values[i]) {
            c.code[i] = -1;
            c.na[i] = 1;
            continue;
        }
        const char *key = values[i];
        const char **hit = bsearch(&key, sorted, nl, sizeof *sorted, cmp_level_ptr);
        c.code[i] = (int)(hit - sorted);
        c.na[i] = 0;
    }
    free(sorted);
    return append_column(f, &c, err);
nomem:
    free(sorted);
    column_clear(&c);
    return bh_error_set(err, BH_ENOMEM, "out of memory adding column \"%s\"", name);
}

bh_status bh_frame_adopt(bh_frame *f, bh_column *col, bh_error *err)
{
    if (!f || !col) {
        if (col)
            column_clear(col);
        return bh_error_set(err, BH_EINTERNAL, "bh_frame_adopt: NULL argument");
    }
    bh_status s = check_name(f, col->name, err);
    if (s) {
        column_clear(col);
        return s;
    }
    if (col->n != f->nrow) {
        s = bh_error_set(err, BH_EINTERNAL,
                         "column \"%s\" has %zu rows, the frame has %zu",
                         col->name, col->n, f->nrow);
        column_clear(col);
        return s;
    }
    int ok = col->na != NULL || col->n == 0;
    if (col->type == BH_COL_NUMERIC)
        ok = ok && (col->num || col->n == 0);
    else if (col->type == BH_COL_CATEGORICAL)
        ok = ok && (col->code || col->n == 0) && (col->levels || col->nlevels == 0);
    else
        ok = 0;
    if (!ok) {
        s = bh_error_set(err, BH_EINTERNAL,
                         "column \"%s\" is missing its data arrays", col->name);
        column_clear(col);
        return s;
    }
    return append_column(f, col, err);
}

/* RFC 4180: quote a field holding the separator, a quote, CR or LF; also
 * quote "NA" and "" so that a text level is not mistaken for a missing one
 * by a reader that honours quoting. */
static int put_text(FILE *out, const char *s)
{
    int need = *s == '\0' || strcmp(s, "NA") == 0 || strpbrk(s, ",\"\r\n") != NULL;
    if (!need)
        return fputs(s, out) < 0 ? -1 : 0;
    if (putc('"', out) == EOF)
        return -1;
    for (; *s; s++) {
        if (*s == '"' && putc('"', out) == EOF)
            return -1;
        if (putc(*s, out) == EOF)
            return -1;
    }
    return putc('"', out) == EOF ? -1 : 0;
}

static int put_number(FILE *out, double x)
{
    /* Spell non-finite values as R's write.csv does, not as printf's "inf". */
    if (isnan(x))
        return fputs("NaN", out) < 0 ? -1 : 0;
    if (isinf(x))
        return fputs(x > 0 ? "Inf" : "-Inf", out) < 0 ? -1 : 0;
    return fprintf(out, "%.15g", x) < 0 ? -1 : 0;
}

bh_status bh_frame_write_csv(const bh_frame *f, FILE *out, bh_error *err)
{
    if (!f || !out)
        return bh_error_set(err, BH_EINTERNAL, "bh_frame_write_csv: NULL argument");
    int bad = 0;
    for (size_t j = 0; j < f->ncol && !bad; j++) {
        if (j && putc(',', out) == EOF)
            bad = 1;
        else if (put_text(out, f->cols[j].name))
            bad = 1;
    }
    if (!bad && putc('\n', out) == EOF)
        bad = 1;
    for (size_t i = 0; i < f->nrow && !bad; i++) {
        for (size_t j = 0; j < f->ncol && !bad; j++) {
            const bh_column *c = &f->cols[j];
            if (j && putc(',', out) == EOF)
                bad = 1;
            else if (c->na[i])
                bad = fputs("NA", out) < 0;
            else if (c->type == BH_COL_NUMERIC)
                bad = put_number(out, c->num[i]) != 0;
            else
                bad = put_text(out, c->levels[c->code[i]]) != 0;
        }
        if (!bad && putc('\n', out) == EOF)
            bad = 1;
    }
    /* Flush so that a full disk is reported here, not lost at fclose. */
    if (!bad && fflush(out) == EOF)
        bad = 1;
    if (bad || ferror(out))
        return bh_error_set(err, BH_EOUTPUT, "cannot write CSV: %s", strerror(errno));
    return BH_OK;
}
