/* test_perf_paths.c - the fast paths give the results of the slow ones.
 *
 * - CSV: plain decimals are converted without strtod (Clinger's fast path)
 *   and plain lines are split without libcsv; every value must be the
 *   double strtod returns, bit for bit, on random and edge-case strings,
 *   with lines going through both splitters in one file.
 * - bh_grouping_build numbers the distinct keys through a hash table and
 *   sorts only those: the codes must be the ranks of the keys in sorted
 *   order (what a sort of all rows gave), recomputed here by brute force.
 * - The AUC and Hosmer-Lemeshow statistics of a logit fit sort the fitted
 *   values by radix sort: recomputed here from fit->fitted with qsort and
 *   the definitions (weighted Mann-Whitney with ties 1/2; hoslem.test
 *   groups at type-7 quantiles), with many tied fitted values.
 * The references are computed independently in this file (strtod of the C
 * library; brute-force ranking; a direct implementation of the formulas),
 * not taken from the code under test.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/csvread.h"
#include "blackhole/design.h"
#include "blackhole/formula.h"
#include "blackhole/glm.h"
#include "testutil.h"

/* splitmix64: a small reproducible generator for the test inputs. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static unsigned urand(uint64_t *s, unsigned n)
{
    return (unsigned)(next_u64(s) % n);
}

static const char *const EDGE[] = {
    "0", "-0", "+0", ".5", "5.", "-.5", "+5.e1", "0.0", "00012", "-0.0e-5",
    "0.000000000000000000000000123", "9007199254740993", "9007199254740992",
    "9007199254740991", "9007199254740993e-3", "1e22", "1e-22", "1e23",
    "1e-23", "123456789012345678e-5", "1234567890123456789",
    "12345678901234567890", "0.1", "0.2", "0.3", "2.675", "1.005",
    "1.7976931348623157e308", "2.2250738585072014e-308", "4.9e-324",
    "2.4703282292062327e-324", "0e999999", "00.00e-7", "1e0000000000000000001",
    "0.1e23", "8.98846567431158e307", "4503599627370497.5", "1e15", "1e16",
    "123.456e-2", "999999999999999999", "0.000001", "1E5", "1E+05", "3e-0",
    "7.2057594037927933e16", "18446744073709551615", "18446744073709551616",
    "6.0221409e23", "1.602176634e-19", "-273.15", "3.14159265358979323846"};

/* A random numeric string: digits, optional point and exponent, both short
 * (fast path) and long (fallback) mantissas and exponents. */
static void random_number(uint64_t *s, char *buf, size_t cap)
{
    unsigned kind = urand(s, 6);
    if (kind == 0) {
        snprintf(buf, cap, "%s", EDGE[urand(s, sizeof EDGE / sizeof *EDGE)]);
        return;
    }
    if (kind == 1) {
        double v;
        uint64_t u = next_u64(s);
        memcpy(&v, &u, sizeof v);
        if (!isfinite(v))
            v = 1.5;
        snprintf(buf, cap, "%.*g", 1 + (int)urand(s, 17), v);
        return;
    }
    size_t k = 0;
    if (urand(s, 4) == 0)
        buf[k++] = urand(s, 2) ? '-' : '+';
    unsigned nint = urand(s, kind == 2 ? 25 : 8);
    for (unsigned i = 0; i < nint; i++)
        buf[k++] = (char)('0' + urand(s, 10));
    if (urand(s, 3)) {
        buf[k++] = '.';
        unsigned nfr = urand(s, kind == 3 ? 25 : 10);
        for (unsigned i = 0; i < nfr; i++)
            buf[k++] = (char)('0' + urand(s, 10));
    }
    if (k == 0 || (k == 1 && (buf[0] == '.' || buf[0] == '-' || buf[0] == '+')))
        buf[k++] = '7';
    if (urand(s, 3) == 0) {
        buf[k++] = urand(s, 2) ? 'e' : 'E';
        unsigned c = urand(s, 3);
        if (c == 1)
            buf[k++] = '-';
        else if (c == 2)
            buf[k++] = '+';
        k += (size_t)snprintf(buf + k, cap - k, "%u", urand(s, kind == 4 ? 400 : 30));
    }
    buf[k] = '\0';
}

/* Accept only strings that strtod reads whole as a finite number, so the
 * column stays numeric; the reader must agree with strtod on each. */
static int strtod_whole(const char *t, double *v)
{
    char *end;
    *v = strtod(t, &end);
    return *end == '\0' && end != t && isfinite(*v);
}

Test(perf_paths, csv_numbers_bit_identical_to_strtod)
{
    enum { N = 60000 };
    uint64_t seed = 20261126;
    char **txt = malloc(N * sizeof *txt);
    double *want = malloc(N * sizeof *want);
    cr_assert(txt && want);
    size_t n = 0;
    char tb[128];
    while (n < N) {
        random_number(&seed, tb, sizeof tb);
        double v;
        if (!strtod_whole(tb, &v))
            continue;
        txt[n] = strdup(tb);
        want[n] = v;
        n++;
    }
    /* Two columns; lines alternate between the plain splitter (LF and
     * CRLF ends) and libcsv (a quoted field), and a blank line. */
    char *csv = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&csv, &len);
    cr_assert(mf);
    fputs("a,b\n", mf);
    for (size_t i = 0; i + 1 < n; i += 2) {
        switch (i % 10) {
        case 0: fprintf(mf, "%s,%s\r\n", txt[i], txt[i + 1]); break;
        case 2: fprintf(mf, "\"%s\",%s\n", txt[i], txt[i + 1]); break;
        case 4: fprintf(mf, "%s,\"%s\"\r\n\n", txt[i], txt[i + 1]); break;
        default: fprintf(mf, "%s,%s\n", txt[i], txt[i + 1]);
        }
    }
    fclose(mf);
    FILE *in = fmemopen(csv, len, "r");
    cr_assert(in);
    bh_frame *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_csv_read_stream(in, "mem", NULL, &f, &err), BH_OK, "%s", err.msg);
    fclose(in);
    cr_assert_eq(f->nrow, n / 2);
    cr_assert_eq(f->cols[0].type, BH_COL_NUMERIC);
    cr_assert_eq(f->cols[1].type, BH_COL_NUMERIC);
    for (size_t i = 0; i + 1 < n; i += 2)
        for (size_t c = 0; c < 2; c++) {
            double got = f->cols[c].num[i / 2];
            cr_assert(memcmp(&got, &want[i + c], sizeof got) == 0,
                      "\"%s\": reader %.17g, strtod %.17g", txt[i + c], got,
                      want[i + c]);
        }
    bh_frame_free(f);
    for (size_t i = 0; i < n; i++)
        free(txt[i]);
    free(txt);
    free(want);
    free(csv);
}

/* Text, missing values, blanks kept in text, quoted separators and line
 * breaks: the plain splitter and libcsv must give the same frame as libcsv
 * alone would (values written out here by hand). */
Test(perf_paths, csv_plain_and_quoted_lines_agree)
{
    const char *csv = "x,s,y\n"
                      "1.5, a ,NA\n"
                      "2,\"b,c\",3\r\n"
                      "\n"
                      "-0,\"d\ne\",1e3\n"
                      ",f,2.5\n";
    FILE *in = fmemopen((void *)csv, strlen(csv), "r");
    cr_assert(in);
    bh_frame *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_csv_read_stream(in, "mem", NULL, &f, &err), BH_OK, "%s", err.msg);
    fclose(in);
    cr_assert_eq(f->nrow, 4);
    const bh_column *x = bh_frame_col(f, "x"), *s = bh_frame_col(f, "s"),
                    *y = bh_frame_col(f, "y");
    cr_assert(x && s && y);
    cr_assert_eq(x->num[0], 1.5);
    cr_assert_eq(x->num[1], 2);
    cr_assert(x->num[2] == 0 && signbit(x->num[2]));
    cr_assert(x->na[3]);
    cr_assert(y->na[0]);
    cr_assert_eq(y->num[1], 3);
    cr_assert_eq(y->num[2], 1000);
    cr_assert_eq(y->num[3], 2.5);
    cr_assert_eq(s->type, BH_COL_CATEGORICAL);
    cr_assert_str_eq(s->levels[s->code[0]], " a ");
    cr_assert_str_eq(s->levels[s->code[1]], "b,c");
    cr_assert_str_eq(s->levels[s->code[2]], "d\ne");
    cr_assert_str_eq(s->levels[s->code[3]], "f");
    bh_frame_free(f);
}

/* A field with a byte above 7F still goes through the UTF-8 check. */
Test(perf_paths, csv_non_ascii_still_checked)
{
    const char *csv = "x,s\n1,ok\n2,\xC3\xA9t\xC3\xA9\n3,\xFF\n";
    FILE *in = fmemopen((void *)csv, strlen(csv), "r");
    cr_assert(in);
    bh_frame *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_csv_read_stream(in, "mem", NULL, &f, &err), BH_EINPUT);
    fclose(in);
    cr_assert(strstr(err.msg, "invalid UTF-8 byte 0xFF"), "%s", err.msg);
    cr_assert(strstr(err.msg, "mem:4"), "%s", err.msg);
}

typedef struct {
    double a;
    int b;
} gkey;

Test(perf_paths, grouping_codes_are_ranks_of_sorted_keys)
{
    enum { N = 20000 };
    uint64_t seed = 77;
    double *a = malloc(N * sizeof *a);
    const char **b = malloc(N * sizeof *b);
    size_t *rows = malloc(N * sizeof *rows);
    cr_assert(a && b && rows);
    static const char *const lev[] = {"u", "v", "w"};
    for (size_t i = 0; i < N; i++) {
        a[i] = (double)((int)urand(&seed, 300) - 150) / 4;
        b[i] = lev[urand(&seed, 3)];
        rows[i] = i;
    }
    bh_frame *f = bh_frame_new("mem", N);
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_frame_add_numeric(f, "a", a, NULL, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(bh_frame_add_categorical(f, "b", b, &err), BH_OK, "%s", err.msg);
    const char *cols[] = {"a", "b"};
    bh_grouping *g = NULL;
    cr_assert_eq(bh_grouping_build(f, cols, 2, rows, N, &g, &err), BH_OK, "%s", err.msg);
    /* Brute force: the rank of row i's key among the distinct keys in
     * lexicographic (number, level) order. */
    const bh_column *bc = bh_frame_col(f, "b");
    size_t nd = 0;
    for (size_t i = 0; i < N; i++) {
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = a[k] == a[i] && bc->code[k] == bc->code[i];
        nd += !seen;
    }
    cr_assert_eq(g->ngroups, nd);
    for (size_t i = 0; i < N; i += 37) {
        size_t rank = 0;
        /* count distinct keys smaller than key i */
        for (size_t k = 0; k < N; k++) {
            int smaller = a[k] < a[i] || (a[k] == a[i] && bc->code[k] < bc->code[i]);
            if (!smaller)
                continue;
            int first = 1;
            for (size_t q = 0; q < k && first; q++)
                first = !(a[q] == a[k] && bc->code[q] == bc->code[k]);
            rank += first;
        }
        cr_assert_eq(g->code[i], rank, "row %zu", i);
        char lab[64];
        snprintf(lab, sizeof lab, "%.15g:%s", a[i], bc->levels[bc->code[i]]);
        cr_assert_str_eq(g->labels[g->code[i]], lab);
    }
    bh_grouping_free(g);
    bh_frame_free(f);
    free(a);
    free(b);
    free(rows);
}

/* -0 and 0 are one group (the label of 0). */
Test(perf_paths, grouping_signed_zero_one_group)
{
    double a[] = {0.0, -0.0, 1.0, -0.0};
    size_t rows[] = {0, 1, 2, 3};
    bh_frame *f = bh_frame_new("mem", 4);
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_frame_add_numeric(f, "a", a, NULL, &err), BH_OK);
    const char *cols[] = {"a"};
    bh_grouping *g = NULL;
    cr_assert_eq(bh_grouping_build(f, cols, 1, rows, 4, &g, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(g->ngroups, 2);
    cr_assert_str_eq(g->labels[0], "0");
    cr_assert_eq(g->code[1], 0);
    cr_assert_eq(g->code[3], 0);
    cr_assert_eq(g->code[2], 1);
    bh_grouping_free(g);
    bh_frame_free(f);
}

typedef struct {
    double f, y;
} fy;

static int cmp_fy(const void *p, const void *q)
{
    double x = ((const fy *)p)->f, y = ((const fy *)q)->f;
    return (x > y) - (x < y);
}

Test(perf_paths, auc_and_hosmer_lemeshow_match_direct_computation)
{
    enum { N = 30000 };
    uint64_t seed = 5;
    double *x1 = malloc(N * sizeof *x1), *x2 = malloc(N * sizeof *x2),
           *x3 = malloc(N * sizeof *x3), *y = malloc(N * sizeof *y);
    cr_assert(x1 && x2 && x3 && y);
    for (size_t i = 0; i < N; i++) {
        /* Few distinct x: many tied fitted values. */
        x1[i] = (double)urand(&seed, 7);
        x2[i] = (double)urand(&seed, 5) - 2;
        x3[i] = (double)urand(&seed, 50) / 10;
        double eta = -1 + 0.4 * x1[i] - 0.3 * x2[i] + 0.2 * x3[i];
        double p = 1 / (1 + exp(-eta));
        y[i] = (double)(next_u64(&seed) >> 11) / 9007199254740992.0 < p;
    }
    bh_frame *f = bh_frame_new("mem", N);
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_frame_add_numeric(f, "x1", x1, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "x2", x2, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "x3", x3, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "y", y, NULL, &err), BH_OK);
    bh_formula *fo = NULL;
    cr_assert_eq(bh_formula_parse("y ~ x1 + x2 + x3", &fo, &err), BH_OK, "%s", err.msg);
    bh_design_options dopt;
    bh_design_default_options(&dopt);
    bh_design *d = NULL;
    cr_assert_eq(bh_design_build(fo, f, &dopt, &d, &err), BH_OK, "%s", err.msg);
    bh_glm_options go;
    bh_glm_default_options(&go);
    go.family = BH_FAM_BINOMIAL;
    go.link = BH_LINK_LOGIT;
    bh_glm_workspace *ws = bh_glm_workspace_alloc(d->n, d->p);
    cr_assert(ws);
    bh_fit *fit = NULL;
    cr_assert_eq(bh_glm_fit(d, &go, ws, &fit, &err), BH_OK, "%s", err.msg);

    fy *v = malloc(N * sizeof *v);
    cr_assert(v);
    double w1 = 0, w0 = 0;
    for (size_t i = 0; i < N; i++) {
        v[i].f = fit->fitted[i];
        v[i].y = d->y[i];
        w1 += v[i].y == 1;
        w0 += v[i].y != 1;
    }
    qsort(v, N, sizeof *v, cmp_fy);
    /* AUC: for each tie block, positives beat all lower negatives and half
     * of the tied ones. */
    long double num = 0, below0 = 0;
    for (size_t a = 0; a < N;) {
        size_t b = a;
        long double g1 = 0, g0 = 0;
        for (; b < N && v[b].f == v[a].f; b++)
            *(v[b].y == 1 ? &g1 : &g0) += 1;
        num += g1 * (below0 + g0 / 2);
        below0 += g0;
        a = b;
    }
    double auc = (double)(num / ((long double)w1 * w0));
    cr_assert(fabs(fit->stats.auc - auc) <= 1e-15 * auc, "auc %.17g vs %.17g",
              fit->stats.auc, auc);
    /* Hosmer-Lemeshow with 10 groups cut at type-7 quantiles (1,750
     * distinct fitted values here: the breaks do not tie). */
    double br[11];
    for (int k = 0; k <= 10; k++) {
        double h = (double)(N - 1) * k / 10;
        size_t lo = (size_t)floor(h);
        br[k] = lo + 1 < N ? v[lo].f + (h - (double)lo) * (v[lo + 1].f - v[lo].f) : v[lo].f;
    }
    int ties = 0;
    for (int k = 0; k < 10; k++)
        ties |= !(br[k + 1] > br[k]);
    cr_assert(!ties);
    {
        double chi = 0;
        size_t a = 0;
        for (int g = 1; g <= 10; g++) {
            long double o1 = 0, e1 = 0, e0 = 0, c = 0;
            for (; a < N && (v[a].f <= br[g] || g == 10); a++) {
                o1 += v[a].y;
                e1 += v[a].f;
                e0 += 1 - v[a].f;
                c += 1;
            }
            long double o0 = c - o1;
            chi += (double)((o1 - e1) * (o1 - e1) / e1 + (o0 - e0) * (o0 - e0) / e0);
        }
        cr_assert(fabs(fit->stats.hl_stat - chi) <= 1e-13 * chi, "hl %.17g vs %.17g",
                  fit->stats.hl_stat, chi);
    }
    free(v);
    bh_fit_free(fit);
    bh_glm_workspace_free(ws);
    bh_design_free(d);
    bh_formula_free(fo);
    bh_frame_free(f);
    free(x1);
    free(x2);
    free(x3);
    free(y);
}
