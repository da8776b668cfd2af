/* test_csv_parallel.c - the parallel CSV reader gives what the one-thread
 * reader gives.
 *
 * The one-thread reader (threads = 1) is the reference here: its own
 * behaviour is pinned down against hand-read fixtures and R in
 * test_csv.c.  Each input is read once with threads = 1 and then with 2,
 * 3 and 4 threads and block sizes from 64 bytes (so that blocks end inside
 * lines and parts hold a line or two) to the default; the frames must be
 * the same field by field (types, values bit for bit, missing flags,
 * levels and their order, numeric_fields, first_text, first_text_line,
 * file_column) and a failure the same status, line, column and message.
 * A few values are also checked against the numbers the generator wrote.
 * Inputs are built in memory and read through fmemopen().
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/csvread.h"
#include "testutil.h"

/* A growing byte buffer for generated files. */
typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->s = realloc(b->s, cap);
        cr_assert_not_null(b->s);
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof tmp);
    sb_add(b, tmp, (size_t)n);
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

typedef struct {
    bh_status st;
    bh_error err;
    bh_frame *f;
} result;

static result read_mem(const char *bytes, size_t n, const bh_csv_options *base,
                       unsigned threads, size_t block)
{
    bh_csv_options o = *base;
    o.threads = threads;
    o.block_bytes = block;
    result res = {0};
    bh_error_clear(&res.err);
    /* fmemopen cannot open an empty buffer in every libc: a real
     * temporary file serves then. */
    FILE *fp = n ? fmemopen((void *)bytes, n, "rb") : tmpfile();
    cr_assert_not_null(fp);
    res.st = bh_csv_read_stream(fp, "gen.csv", &o, &res.f, &res.err);
    fclose(fp);
    return res;
}

static void same_frame(const bh_frame *a, const bh_frame *b, const char *what)
{
    cr_assert_eq(a->nrow, b->nrow, "%s: nrow %zu vs %zu", what, a->nrow, b->nrow);
    cr_assert_eq(a->ncol, b->ncol, "%s: ncol", what);
    cr_assert_str_eq(a->source, b->source, "%s: source", what);
    for (size_t j = 0; j < a->ncol; j++) {
        const bh_column *x = &a->cols[j], *y = &b->cols[j];
        cr_assert_str_eq(x->name, y->name, "%s: name of column %zu", what, j + 1);
        cr_assert_eq(x->type, y->type, "%s: type of %s", what, x->name);
        cr_assert_eq(x->n, y->n, "%s: n of %s", what, x->name);
        cr_assert_eq(x->file_column, y->file_column, "%s", what);
        cr_assert_eq(x->numeric_fields, y->numeric_fields,
                     "%s: numeric_fields of %s: %zu vs %zu", what, x->name,
                     x->numeric_fields, y->numeric_fields);
        cr_assert_eq(x->first_text_line, y->first_text_line,
                     "%s: first_text_line of %s: %zu vs %zu", what, x->name,
                     x->first_text_line, y->first_text_line);
        cr_assert_eq(!x->first_text, !y->first_text, "%s: first_text of %s", what, x->name);
        if (x->first_text)
            cr_assert_str_eq(x->first_text, y->first_text, "%s: first_text of %s",
                             what, x->name);
        if (x->n)
            cr_assert(memcmp(x->na, y->na, x->n) == 0, "%s: missing flags of %s",
                      what, x->name);
        if (x->type == BH_COL_NUMERIC) {
            for (size_t i = 0; i < x->n; i++)
                cr_assert(memcmp(&x->num[i], &y->num[i], sizeof(double)) == 0 ||
                              (isnan(x->num[i]) && isnan(y->num[i])),
                          "%s: %s[%zu] %.17g vs %.17g", what, x->name, i,
                          x->num[i], y->num[i]);
        } else {
            cr_assert_eq(x->nlevels, y->nlevels, "%s: levels of %s: %zu vs %zu",
                         what, x->name, x->nlevels, y->nlevels);
            for (size_t k = 0; k < x->nlevels; k++)
                cr_assert_str_eq(x->levels[k], y->levels[k], "%s: level %zu of %s",
                                 what, k, x->name);
            if (x->n)
                cr_assert(memcmp(x->code, y->code, x->n * sizeof *x->code) == 0,
                          "%s: codes of %s", what, x->name);
        }
    }
}

static const size_t BLOCKS[] = {64, 97, 331, 1000, 4096, 65536, 0};

/* Read `bytes` with every thread count and block size and compare each
 * result with the one-thread reader's.  Returns the reference result
 * (the caller frees its frame). */
static result check_same_opt(const char *bytes, size_t n, const bh_csv_options *o,
                             const char *name)
{
    result ref = read_mem(bytes, n, o, 1, 0);
    for (unsigned t = 2; t <= 4; t++)
        for (size_t b = 0; b < sizeof BLOCKS / sizeof *BLOCKS; b++) {
            char what[160];
            snprintf(what, sizeof what, "%s, %u threads, block %zu", name, t, BLOCKS[b]);
            result got = read_mem(bytes, n, o, t, BLOCKS[b]);
            cr_assert_eq(got.st, ref.st, "%s: status %d vs %d (%s | %s)", what,
                         (int)got.st, (int)ref.st, got.err.msg, ref.err.msg);
            if (ref.st == BH_OK) {
                same_frame(ref.f, got.f, what);
                bh_frame_free(got.f);
            } else {
                cr_assert_null(got.f, "%s", what);
                cr_assert_str_eq(got.err.msg, ref.err.msg, "%s", what);
                cr_assert_eq(got.err.line, ref.err.line, "%s", what);
                cr_assert_eq(got.err.column, ref.err.column, "%s", what);
                cr_assert_eq(got.err.status, ref.err.status, "%s", what);
            }
        }
    return ref;
}

static result check_same(const char *bytes, size_t n, const char *name)
{
    bh_csv_options o;
    bh_csv_default_options(&o);
    return check_same_opt(bytes, n, &o, name);
}

static void check_same_ok(const sbuf *b, const char *name)
{
    result r = check_same(b->s, b->n, name);
    cr_assert_eq(r.st, BH_OK, "%s: %s", name, r.err.msg);
    bh_frame_free(r.f);
}

static void check_same_fail(const sbuf *b, const char *name, const char *want)
{
    result r = check_same(b->s, b->n, name);
    cr_assert_neq(r.st, BH_OK, "%s read", name);
    cr_assert(strstr(r.err.msg, want), "%s: \"%s\" lacks \"%s\"", name, r.err.msg, want);
}

/* Deterministic pseudo-random numbers (SplitMix64) for the generators. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A numeric file whose values are known: x = i / 4, y = -i * 1e-3 written
 * with %.3f, z an integer, plus spellings only strtod reads (20 digits,
 * hex) and blanks around numbers. */
Test(csv_parallel, numeric_values_known)
{
    sbuf b = {0};
    size_t n = 3000;
    sb_str(&b, "x,y,z,w\n");
    for (size_t i = 0; i < n; i++) {
        const char *w = i % 7 == 0 ? "12345678901234567890" : i % 7 == 1 ? "0x1A"
                      : i % 7 == 2 ? " 2.5\t" : i % 7 == 3 ? "1e-400"
                      : i % 7 == 4 ? "+.5" : i % 7 == 5 ? "NA" : "";
        sb_printf(&b, "%.2f,%.3f,%zu,%s\n", i / 4.0, -(double)i * 1e-3, i * 7, w);
    }
    result r = check_same(b.s, b.n, "numeric");
    cr_assert_eq(r.st, BH_OK, "%s", r.err.msg);
    /* Against the generator, with 2 threads and small blocks. */
    bh_csv_options o;
    bh_csv_default_options(&o);
    result p = read_mem(b.s, b.n, &o, 2, 1000);
    cr_assert_eq(p.st, BH_OK);
    cr_assert_eq(p.f->nrow, n);
    const bh_column *x = bh_frame_col(p.f, "x"), *z = bh_frame_col(p.f, "z"),
                    *w = bh_frame_col(p.f, "w");
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(x->num[i], i / 4.0);
        cr_assert_eq(z->num[i], (double)(i * 7));
    }
    cr_assert_eq(w->type, BH_COL_NUMERIC);
    cr_assert_eq(w->num[0], 12345678901234567890.0);
    cr_assert_eq(w->num[1], 26.0);
    cr_assert_eq(w->num[2], 2.5);
    cr_assert_eq(w->num[3], 0.0);
    cr_assert_eq(w->num[4], 0.5);
    cr_assert(w->na[5] && w->na[6]);
    bh_frame_free(p.f);
    bh_frame_free(r.f);
    free(b.s);
}

/* Text and numbers mixed, UTF-8 text, and columns that turn text at
 * different places: early (in the first part of a block, so that later
 * parts of the same block hold numbers of a column that is already text),
 * late, at the very last row, and through NaN/Inf text next to words. */
Test(csv_parallel, mixed_and_late_text)
{
    sbuf b = {0};
    size_t n = 5000;
    sb_str(&b, "id,grp,early,late,last,inf_then_word,city\n");
    const char *cities[] = {"Z\xc3\xbcrich", "\xe6\x9d\xb1\xe4\xba\xac", "Oslo", "caf\xc3\xa9",
                            "NA", "", "S\xc3\xa3o Paulo"};
    for (size_t i = 0; i < n; i++) {
        sb_printf(&b, "%zu,g%03zu,", i, (i * 37) % 101);
        if (i == 3)
            sb_str(&b, "three,");
        else
            sb_printf(&b, "%s,", i % 3 ? "1.50" : "2");
        if (i == 4000)
            sb_str(&b, "oops,");
        else
            sb_printf(&b, "%.1f,", (double)(i % 50) / 2);
        sb_printf(&b, "%s,", i == n - 1 ? "end" : i % 11 ? "7" : "NA");
        sb_printf(&b, "%s,", i == 10 ? "Inf" : i == 2500 ? "word" : "0.25");
        sb_printf(&b, "%s\n", cities[i % 7]);
    }
    check_same_ok(&b, "mixed");
    free(b.s);
}

/* CRLF line ends, blank lines of both kinds, no final line end. */
Test(csv_parallel, crlf_blank_lines)
{
    sbuf b = {0};
    sb_str(&b, "\r\n\na,b,c\r\n");
    for (size_t i = 0; i < 2000; i++) {
        sb_printf(&b, "%zu,%s,%g\r\n", i, i % 5 ? "u" : "v", i * 0.5);
        if (i % 97 == 0)
            sb_str(&b, i % 2 ? "\r\n" : "\n");
    }
    sb_str(&b, "1,w,2");
    check_same_ok(&b, "crlf");
    free(b.s);
}

/* Quoted fields here and there (one across lines, doubled quotes, a
 * separator inside) and a lone CR: those lines go to the one-thread reader
 * and the rest of the file goes on in parallel. */
Test(csv_parallel, quotes_and_lone_cr)
{
    sbuf b = {0};
    sb_str(&b, "name,x,note\n");
    for (size_t i = 0; i < 4000; i++) {
        if (i == 1500)
            sb_str(&b, "\"multi\nline\",1,\"a \"\"b\"\", c\"\n");
        else if (i == 2600)
            sb_str(&b, "p,2,q\rr,3,s\n");
        else if (i % 400 == 17)
            sb_printf(&b, "\"n%zu\",%zu,\"x,y\"\n", i, i);
        else
            sb_printf(&b, "n%zu,%zu,t%zu\n", i % 13, i, i % 3);
    }
    check_same_ok(&b, "quotes");
    free(b.s);
}

/* A file quoted everywhere (as R's write.csv writes text). */
Test(csv_parallel, all_quoted)
{
    sbuf b = {0};
    sb_str(&b, "\"id\",\"g\",\"v\"\n");
    for (size_t i = 0; i < 1500; i++)
        sb_printf(&b, "\"%zu\",\"g%zu\",%zu.5\n", i + 1, i % 4, i);
    check_same_ok(&b, "all quoted");
    free(b.s);
}

/* Separators, NA strings, a line longer than the block, a byte order mark. */
Test(csv_parallel, options_and_long_lines)
{
    sbuf b = {0};
    sb_str(&b, "\xef\xbb\xbf" "a;b;c\n");
    for (size_t i = 0; i < 1500; i++) {
        if (i == 700) {
            sb_str(&b, "long");
            for (int k = 0; k < 300; k++)
                sb_str(&b, "x");
            sb_str(&b, ";1;2\n");
            continue;
        }
        sb_printf(&b, "%s;%s;%zu,5\n", i % 9 ? "1.25" : "-999", i % 4 ? "3" : ".", i);
    }
    const char *na[] = {"-999", "."};
    bh_csv_options o;
    bh_csv_default_options(&o);
    o.sep = ';';
    o.na = na;
    o.n_na = 2;
    result r = check_same_opt(b.s, b.n, &o, "semicolon");
    cr_assert_eq(r.st, BH_OK, "%s", r.err.msg);
    bh_frame_free(r.f);
    /* Separators a number can contain take the general path. */
    for (const char *sep = "\t e."; *sep; sep++) {
        sbuf c = {0};
        sb_printf(&c, "a%cb\n", *sep);
        for (size_t i = 0; i < 800; i++)
            sb_printf(&c, "%zu%c%s\n", i, *sep, i % 3 ? "4" : "1");
        o.sep = *sep;
        o.n_na = 0;
        result s = check_same_opt(c.s, c.n, &o, "separator");
        cr_assert_eq(s.st, BH_OK, "%s", s.err.msg);
        bh_frame_free(s.f);
        free(c.s);
    }
    free(b.s);
}

Test(csv_parallel, tiny_files)
{
    const char *cases[] = {"a,b\n", "a,b", "a,b\n1,2\n", "a,b\n1,2", "a,b\r\n1,x\r\n",
                           "\n\n", "", "\xef\xbb\xbf", "a\n\n\n", "a,b\n\"1\",2\n",
                           "a,b\n1,\"2"};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "tiny %zu", k);
        result r = check_same(cases[k], strlen(cases[k]), name);
        bh_frame_free(r.f);
    }
}

/* Errors far into the file: the message, line and column must be the
 * one-thread reader's, and the earliest error in file order wins even when
 * a later block (parsed first by another thread) holds another one. */
Test(csv_parallel, late_errors)
{
#define BAD(s, w) {s, sizeof s - 1, w}
    struct {
        const char *line;
        size_t len;
        const char *want;
    } bad[] = {
        BAD("1,2\n", "2 fields, but the header has 3"),
        BAD("1,2,3,4\n", "4 fields, but the header has 3"),
        BAD("1,\xff,3\n", "invalid UTF-8 byte 0xFF"),
        BAD("1,\xc3\x28,3\n", "invalid UTF-8"),
        BAD("1,a\0b,3\n", "NUL byte"),
        BAD("1,a\"b,3\n", "malformed quoting"),
        BAD("1,\"open,3\n", "unterminated quoted field"),
    };
#undef BAD
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        sbuf b = {0};
        sb_str(&b, "x,y,z\n");
        /* A second, later error (a ragged row) must not win. */
        for (size_t i = 0; i < 4000; i++) {
            if (i == 2900)
                sb_add(&b, bad[k].line, bad[k].len);
            else
                sb_printf(&b, "%zu,%zu,%s\n", i, i % 10, i == 3500 ? "1,2" : "w");
        }
        char name[32];
        snprintf(name, sizeof name, "error %zu", k);
        check_same_fail(&b, name, bad[k].want);
        free(b.s);
    }
    /* NaN text in a numeric column is reported at the end; an immediate
     * error anywhere, even later in the file, comes first. */
    sbuf b = {0};
    sb_str(&b, "x,y\n");
    for (size_t i = 0; i < 3000; i++)
        sb_printf(&b, "%s,%zu\n", i == 100 ? "NaN" : i == 2000 ? "1e999" : "1", i);
    check_same_fail(&b, "nan", "\"NaN\" in numeric column \"x\" is not a finite number");
    sb_str(&b, "1,2,3\n");
    check_same_fail(&b, "nan then ragged", "3 fields, but the header has 2");
    free(b.s);
    b = (sbuf){0};
    sb_str(&b, "x,y\n");
    for (size_t i = 0; i < 3000; i++)
        sb_printf(&b, "%s,%s\n", i == 2000 ? "-1e999" : "1", i == 2500 ? "Inf" : "2");
    check_same_fail(&b, "range", "out of the range of a double");
    free(b.s);
}

/* Random files from a small alphabet of fields and line ends (numbers in
 * several spellings, words, UTF-8, missing values, quotes, CR, blank
 * lines, the odd ragged row), read with all thread counts and blocks. */
Test(csv_parallel, random_files)
{
    static const char *tok[] = {"1", "-2.5", "3e2", "0.1", "007", "1.50", "NA", "",
                                "abc", "Inf", "nan", "x y", "\xc3\xa9t\xc3\xa9", " 4 ",
                                "\"q\"", "\"a,b\"", "\"l1\nl2\"", "1e-400", "0x10",
                                "99999999999999999999"};
    static const char *eol[] = {"\n", "\n", "\n", "\n", "\r\n", "\n\n", "\r\n\r\n", "\r"};
    uint64_t seed = 20240611;
    for (int file = 0; file < 150; file++) {
        sbuf b = {0};
        size_t ncol = 1 + rnd(&seed) % 4, nrow = rnd(&seed) % 400;
        for (size_t j = 0; j < ncol; j++)
            sb_printf(&b, "%sc%zu", j ? "," : "", j);
        sb_str(&b, "\n");
        /* Per column: mostly numbers, sometimes a column of anything. */
        int wild[4];
        for (size_t j = 0; j < ncol; j++)
            wild[j] = rnd(&seed) % 3 == 0;
        int rare = rnd(&seed) % 2;   /* odd tokens and line ends rare or never */
        for (size_t i = 0; i < nrow; i++) {
            size_t nf = ncol;
            if (rare && rnd(&seed) % 1500 == 0)
                nf = ncol + 1;
            for (size_t j = 0; j < nf; j++) {
                size_t t;
                if (j < ncol && wild[j])
                    t = rnd(&seed) % (sizeof tok / sizeof *tok);
                else if (rare && rnd(&seed) % 200 == 0)
                    t = rnd(&seed) % (sizeof tok / sizeof *tok);
                else
                    t = rnd(&seed) % 6;
                sb_printf(&b, "%s%s", j ? "," : "", tok[t]);
            }
            sb_str(&b, rare && rnd(&seed) % 50 == 0
                           ? eol[rnd(&seed) % (sizeof eol / sizeof *eol)] : "\n");
        }
        char name[32];
        snprintf(name, sizeof name, "random %d", file);
        result r = check_same(b.s, b.n, name);
        bh_frame_free(r.f);
        free(b.s);
    }
}

/* Threads = 0 means the online CPUs; the defaults ask for that. */
Test(csv_parallel, default_options)
{
    bh_csv_options o;
    bh_csv_default_options(&o);
    cr_assert_eq(o.threads, 0);
    cr_assert_eq(o.block_bytes, 0);
}
