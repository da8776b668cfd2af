/* testutil.c - see testutil.h. */
#include "testutil.h"

#include "blackhole/fit.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

double bht_lre(double got, double want)
{
    if (got == want)
        return 17.0;
    double d = fabs(got - want);
    return want != 0 ? -log10(d / fabs(want)) : -log10(d);
}

static char **split_line(char *line, size_t *n)
{
    size_t cap = 8, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *s = line;
    for (;;) {
        char *c = strchr(s, ',');
        if (c)
            *c = '\0';
        if (k == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = strdup(s);
        if (!c)
            break;
        s = c + 1;
    }
    *n = k;
    return v;
}

bht_fixture *bht_fixture_read(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        cr_assert_fail("cannot open fixture %s: %s", path, strerror(errno));
    bht_fixture *fx = calloc(1, sizeof *fx);
    char *line = NULL;
    size_t len = 0, cap = 0;
    ssize_t r;
    while ((r = getline(&line, &len, fp)) >= 0) {
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
            line[--r] = '\0';
        if (r == 0 || line[0] == '#')
            continue;
        size_t n;
        char **cells = split_line(line, &n);
        if (!fx->header) {
            fx->header = cells;
            fx->ncol = n;
            continue;
        }
        if (n != fx->ncol)
            cr_assert_fail("fixture %s: row with %zu cells, header has %zu", path, n, fx->ncol);
        if (fx->nrow == cap)
            fx->cell = realloc(fx->cell, (cap = cap ? 2 * cap : 16) * sizeof *fx->cell);
        fx->cell[fx->nrow++] = cells;
    }
    free(line);
    fclose(fp);
    if (!fx->header)
        cr_assert_fail("fixture %s has no header", path);
    return fx;
}

void bht_fixture_free(bht_fixture *fx)
{
    if (!fx)
        return;
    for (size_t i = 0; i < fx->nrow; i++) {
        for (size_t j = 0; j < fx->ncol; j++)
            free(fx->cell[i][j]);
        free(fx->cell[i]);
    }
    for (size_t j = 0; j < fx->ncol; j++)
        free(fx->header[j]);
    free(fx->header);
    free(fx->cell);
    free(fx);
}

long bht_fixture_colidx(const bht_fixture *fx, const char *name)
{
    for (size_t j = 0; j < fx->ncol; j++)
        if (strcmp(fx->header[j], name) == 0)
            return (long)j;
    return -1;
}

const char *bht_fixture_str(const bht_fixture *fx, size_t row, const char *col)
{
    long j = bht_fixture_colidx(fx, col);
    if (j < 0 || row >= fx->nrow)
        cr_assert_fail("fixture has no cell (%zu, %s)", row, col);
    return fx->cell[row][j];
}

double bht_fixture_num(const bht_fixture *fx, size_t row, const char *col)
{
    const char *s = bht_fixture_str(fx, row, col);
    if (strcmp(s, "NA") == 0)
        return NAN;
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        cr_assert_fail("fixture cell (%zu, %s) = '%s' is not a number", row, col, s);
    return v;
}

const char *bht_bin(void)
{
    const char *b = getenv("BH_BIN");
    return b && *b ? b : "bin/blackhole";
}

char *bht_slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += k;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

int bht_run(const char *cmd, char **out, char **err)
{
    char tout[] = "/tmp/bht_outXXXXXX", terr[] = "/tmp/bht_errXXXXXX";
    int fo = mkstemp(tout), fe = mkstemp(terr);
    if (fo < 0 || fe < 0)
        cr_assert_fail("mkstemp: %s", strerror(errno));
    close(fo);
    close(fe);
    size_t L = strlen(cmd) + strlen(tout) + strlen(terr) + 64;
    char *full = malloc(L);
    snprintf(full, L, "( %s ) </dev/null >%s 2>%s", cmd, tout, terr);
    int st = system(full);
    free(full);
    if (out)
        *out = bht_slurp(tout);
    if (err)
        *err = bht_slurp(terr);
    unlink(tout);
    unlink(terr);
    if (st == -1)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

char *bht_tmpdir(void)
{
    char tmpl[] = "/tmp/bht_dirXXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d)
        cr_assert_fail("mkdtemp: %s", strerror(errno));
    return strdup(d);
}

void bht_rmtree(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/bht_dir", 12) != 0)
        return;
    size_t L = 2 * strlen(dir) + 48;
    char *cmd = malloc(L);
    snprintf(cmd, L, "chmod -R u+w '%s'; rm -rf '%s'", dir, dir);
    if (system(cmd) != 0) { /* best effort */ }
    free(cmd);
}

static int same_mem(const void *a, const void *b, size_t bytes)
{
    return bytes == 0 || (a && b && memcmp(a, b, bytes) == 0);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void bht_assert_same_fit(const bh_fit *a, const bh_fit *b, const char *what)
{
    cr_assert_eq(a->p, b->p, "%s: p", what);
    cr_assert_eq(a->nrows, b->nrows, "%s: rows", what);
    cr_assert_eq(a->nblocks, b->nblocks, "%s: blocks", what);
    size_t p = a->p, n = a->nrows, nb = a->nblocks, m = nb > 1 ? nb : 1;
    cr_assert_eq(a->nobs, b->nobs, "%s: nobs", what);
    cr_assert_eq(a->ndropped, b->ndropped, "%s: ndropped", what);
    cr_assert_eq(a->rank, b->rank, "%s: rank", what);
    cr_assert_eq(a->linear, b->linear, "%s: linear", what);
    cr_assert_eq(a->converged, b->converged, "%s: converged", what);
    cr_assert_eq(a->iterations, b->iterations, "%s: iterations", what);
    cr_assert_eq(a->nclusters, b->nclusters, "%s: clusters", what);
    cr_assert(same_str(a->family, b->family) && same_str(a->link, b->link) &&
              same_str(a->method, b->method) && same_str(a->name, b->name) &&
              same_str(a->formula, b->formula) && same_str(a->vcov_type, b->vcov_type),
              "%s: names differ", what);
    for (size_t j = 0; j < p; j++) {
        cr_assert(same_str(a->term[j], b->term[j]), "%s: term %zu", what, j);
        cr_assert(same_str(a->component[j], b->component[j]), "%s: component %zu", what, j);
    }
    cr_assert(same_mem(a->aliased, b->aliased, p), "%s: aliasing differs", what);
    const double *va[] = {a->beta, a->se, a->statistic, a->p_value, a->conf_low, a->conf_high};
    const double *vb[] = {b->beta, b->se, b->statistic, b->p_value, b->conf_low, b->conf_high};
    for (size_t k = 0; k < sizeof va / sizeof *va; k++)
        cr_assert(same_mem(va[k], vb[k], p * sizeof(double)), "%s: coefficient table column "
                  "%zu differs", what, k);
    cr_assert(same_mem(a->vcov, b->vcov, p * p * sizeof(double)), "%s: vcov differs", what);
    cr_assert(same_mem(a->bread, b->bread, p * p * sizeof(double)), "%s: bread differs", what);
    cr_assert(same_mem(&a->stats, &b->stats, sizeof a->stats), "%s: statistics differ", what);
    cr_assert(same_mem(&a->dispersion, &b->dispersion, sizeof(double)) &&
              same_mem(&a->df_inference, &b->df_inference, sizeof(double)) &&
              same_mem(&a->level, &b->level, sizeof(double)), "%s: dispersion, df", what);
    cr_assert(same_mem(a->fitted, b->fitted, n * m * sizeof(double)), "%s: fitted", what);
    cr_assert(same_mem(a->resid, b->resid, n * m * sizeof(double)), "%s: residuals", what);
    cr_assert_eq(!a->u, !b->u, "%s: score multipliers", what);
    cr_assert(!a->u || same_mem(a->u, b->u, n * nb * sizeof(double)), "%s: u differs", what);
    cr_assert_eq(!a->hat, !b->hat, "%s: leverages", what);
    cr_assert(!a->hat || same_mem(a->hat, b->hat, n * sizeof(double)), "%s: hat", what);
    cr_assert_eq(!a->scores, !b->scores, "%s: scores", what);
    cr_assert(!a->scores || same_mem(a->scores, b->scores, n * p * sizeof(double)),
              "%s: scores differ", what);
    for (size_t k = 0; k < nb; k++)
        cr_assert(a->blocks[k].ncol == b->blocks[k].ncol &&
                  a->blocks[k].coef0 == b->blocks[k].coef0, "%s: block %zu", what, k);
    cr_assert_eq(a->nwarnings, b->nwarnings, "%s: warnings", what);
    for (size_t k = 0; k < a->nwarnings; k++)
        cr_assert_str_eq(a->warnings[k], b->warnings[k], "%s", what);
    cr_assert_eq(a->nnotes, b->nnotes, "%s: notes", what);
    for (size_t k = 0; k < a->nnotes; k++)
        cr_assert_str_eq(a->notes[k], b->notes[k], "%s", what);
}

void bht_context(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* Like the program, the tests switch GSL's aborting error handler off once:
 * the library checks every GSL status itself. */
#include <gsl/gsl_errno.h>
__attribute__((constructor)) static void bht_gsl_handler_off(void)
{
    gsl_set_error_handler_off();
}
