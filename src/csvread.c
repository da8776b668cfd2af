/* csvread.c - stream a CSV file into a bh_frame with libcsv (see csvread.h).
 *
 * The input is read in CHUNK-byte blocks and handed to libcsv one physical
 * line at a time (split at '\n'), so the reader always knows the line it is
 * on; libcsv itself only reports fields and record ends.  Each field goes
 * straight into its column: numeric columns into a growing double array,
 * text columns into an array of codes into a table of interned strings.
 */
#include "blackhole/csvread.h"

#include <csv.h>
#include <errno.h>
#include <float.h>
#include <langinfo.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    CHUNK = 64 * 1024,      /* fread block size                         */
    FIRST_CAP = 1024,       /* initial rows per column buffer           */
    QUOTE_MAX = 60,         /* bytes of a value quoted in a message     */
    QBUF = 4 * QUOTE_MAX + 8
};

/* One column while reading.  Until the first non-number the column is in
 * numeric mode (num[]); then it switches for good to text mode (code[] into
 * strs[], interned through the open-addressing table slot[]). */
typedef struct {
    int text;
    size_t cap;               /* rows allocated in na and num/code      */
    unsigned char *na;
    double *num;
    int *code;                /* ids in first-seen order until the end  */
    char **strs;
    size_t nstr, strcap;
    uint32_t *slot;           /* id + 1, 0 = empty                       */
    size_t nslot;
    /* Bookkeeping for messages: see bh_column. */
    size_t numeric_fields;
    int has_plain;            /* a field that is text, not a number      */
    char *first_text;
    size_t first_text_line;
    /* First NaN/Inf text or overflowing number: an error at the end if the
     * column has no other text (then it was meant to be numeric). */
    char *special;
    size_t special_line;
    int special_range;        /* 1 = out of double range, 0 = NaN/Inf    */
} colbuf;

typedef struct {
    const bh_csv_options *opt;
    size_t *na_len;           /* lengths of opt->na strings               */
    const char *source;
    bh_error *err;
    bh_status st;
    /* Position. */
    size_t line;              /* physical line being fed to libcsv        */
    size_t field_line;        /* line where the current field started     */
    size_t rec_line;          /* line where the current record started    */
    int fresh;                /* between records: next field not begun    */
    size_t nf;                /* fields seen in the current record        */
    /* Header. */
    int have_header;
    char **names;
    size_t ncol, namecap;
    /* Data. */
    size_t nrow;
    colbuf *col;
    int dot_radix;            /* the locale's decimal point is '.': the
                                 strtod fast path agrees with strtod     */
} reader;

/* --------------------------------------------------------------------- */

static char *dup_mem(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static bh_status nomem(reader *r)
{
    if (r->st == BH_OK)
        r->st = bh_error_at(r->err, BH_ENOMEM, r->source, r->line, 0,
                            "out of memory reading CSV");
    return r->st;
}

/* Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or len if the text is valid. */
static size_t utf8_bad(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;   /* range of the 2nd byte */
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;                          /* overlong below U+0800 */
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;                          /* surrogates D800-DFFF  */
        } else if (c >= 0xE1 && c <= 0xEF)
            need = 2;
        else if (c == 0xF0) {
            need = 3;
            lo = 0x90;                          /* overlong below 10000  */
        } else if (c >= 0xF1 && c <= 0xF3)
            need = 3;
        else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;                          /* above U+10FFFF        */
        } else
            return i;                           /* 80-C1, F5-FF          */
        if (i + need >= len)                    /* truncated sequence    */
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return i;
        i += need + 1;
    }
    return len;
}

/* Physical line of byte `off` of a field that started on `line`. */
static size_t line_of(const char *s, size_t off, size_t line)
{
    for (size_t i = 0; i < off; i++)
        line += s[i] == '\n';
    return line;
}

/* Reject NUL bytes and invalid UTF-8 in a field (column `c`, 1-based). */
static int check_bytes(reader *r, const char *s, size_t len, size_t c)
{
    /* Fast path: bytes 01-7F are valid UTF-8 and not NUL, and almost every
     * field of a numeric file is only those. */
    size_t i = 0;
    while (i < len && (unsigned char)(s[i] - 1) < 0x7F)
        i++;
    if (i == len)
        return 0;
    char q[QBUF];
    const char *nul = memchr(s, '\0', len);
    size_t bad = utf8_bad((const unsigned char *)s, nul ? (size_t)(nul - s) : len);
    if (nul && bad == (size_t)(nul - s)) {
        size_t off = (size_t)(nul - s);
        char *pre = dup_mem(s, off);
        if (!pre)
            return nomem(r), -1;
        r->st = bh_error_at(r->err, BH_EINPUT, r->source,
                            line_of(s, off, r->field_line), c,
                            "NUL byte in field %zu (after \"%s\"); is this a "
                            "binary or UTF-16 file?", c,
                            bh_quote(q, sizeof q, pre, QUOTE_MAX));
        free(pre);
        return -1;
    }
    if (bad < (nul ? (size_t)(nul - s) : len)) {
        char *pre = dup_mem(s, bad);
        if (!pre)
            return nomem(r), -1;
        r->st = bh_error_at(r->err, BH_EINPUT, r->source,
                            line_of(s, bad, r->field_line), c,
                            "invalid UTF-8 byte 0x%02X at byte %zu of field %zu "
                            "(after \"%s\"); convert the file to UTF-8",
                            (unsigned char)s[bad], bad + 1, c,
                            bh_quote(q, sizeof q, pre, QUOTE_MAX));
        free(pre);
        return -1;
    }
    return 0;
}

static int is_missing(const reader *r, const char *s, size_t len)
{
    if (len == 0 || (len == 2 && s[0] == 'N' && s[1] == 'A'))
        return 1;
    for (size_t k = 0; k < r->opt->n_na; k++)
        if (r->na_len[k] == len && memcmp(r->opt->na[k], s, len) == 0)
            return 1;
    return 0;
}

enum { F_NUMBER, F_TEXT, F_NONFINITE, F_RANGE };

/* Clinger's fast path for a plain decimal [b, e): [+-]digits[.digits]
 * [(e|E)[+-]digits] with at most 19 significant digits.  When the integer
 * mantissa m <= 2^53 and the decimal exponent is within +-22, m and 10^|k|
 * are exact doubles and one IEEE multiplication or division rounds the
 * exact value once: the same correctly rounded double strtod returns.
 * Returns 0 (nothing stored) whenever strtod must decide, including every
 * form this does not recognise.  Needs '.' as the decimal point (checked
 * by the caller) and double evaluation without excess precision. */
static int fast_decimal(const char *b, const char *e, double *out)
{
#if FLT_EVAL_METHOD == 0
    static const double p10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = b;
    int neg = 0, any = 0, nd = 0;
    long scale = 0;
    uint64_t m = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    while (p < e && *p == '0') {
        p++;
        any = 1;
    }
    for (; p < e && (unsigned)(*p - '0') < 10; p++, any = 1) {
        if (nd == 19)
            return 0;
        m = m * 10 + (uint64_t)(*p - '0');
        nd++;
    }
    if (p < e && *p == '.') {
        p++;
        if (nd == 0)
            for (; p < e && *p == '0'; p++, any = 1)
                if (--scale < -1000)
                    return 0;
        for (; p < e && (unsigned)(*p - '0') < 10; p++, any = 1) {
            if (nd == 19)
                return 0;
            m = m * 10 + (uint64_t)(*p - '0');
            nd++;
            scale--;
        }
    }
    if (!any)
        return 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        long x = 0;
        p++;
        if (p < e && (*p == '-' || *p == '+'))
            eneg = *p++ == '-';
        if (p == e || (unsigned)(*p - '0') >= 10)
            return 0;
        for (; p < e && (unsigned)(*p - '0') < 10; p++)
            if (x < 100000)
                x = x * 10 + (*p - '0');
        scale += eneg ? -x : x;
    }
    if (p != e || m > (UINT64_C(1) << 53))
        return 0;
    double v = (double)m;
    if (m != 0) {
        if (scale < -22 || scale > 22)
            return 0;
        if (scale < 0)
            v /= p10[-scale];
        else
            v *= p10[scale];
    }
    *out = neg ? -v : v;
    return 1;
#else
    (void)b, (void)e, (void)out;
    return 0;
#endif
}

/* Classify a NUL-terminated field.  Leading and trailing blanks (space,
 * tab) are ignored here only; text values keep them.  Underflow to zero
 * or a subnormal is accepted as the nearest double. */
static int parse_number(const char *s, size_t len, int fast, double *out)
{
    const char *b = s, *e = s + len;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (b == e)
        return F_TEXT;
    /* strtod would skip other white space itself; those are text. */
    if (*b == '\n' || *b == '\r' || *b == '\v' || *b == '\f')
        return F_TEXT;
    if (fast && fast_decimal(b, e, out))
        return F_NUMBER;
    char *end;
    errno = 0;
    double v = strtod(b, &end);
    if (end != e)
        return F_TEXT;
    if (isnan(v))
        return F_NONFINITE;
    if (isinf(v))
        return errno == ERANGE ? F_RANGE : F_NONFINITE;
    *out = v;
    return F_NUMBER;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int rehash(colbuf *c, size_t nslot)
{
    uint32_t *t = calloc(nslot, sizeof *t);
    if (!t)
        return -1;
    for (size_t id = 0; id < c->nstr; id++) {
        size_t h = (size_t)hash_bytes(c->strs[id], strlen(c->strs[id])) & (nslot - 1);
        while (t[h])
            h = (h + 1) & (nslot - 1);
        t[h] = (uint32_t)id + 1;
    }
    free(c->slot);
    c->slot = t;
    c->nslot = nslot;
    return 0;
}

/* Id of string s[0..len) in the column's table, adding it if new; -1 on
 * allocation failure. */
static long intern(colbuf *c, const char *s, size_t len)
{
    if (2 * (c->nstr + 1) > c->nslot && rehash(c, c->nslot ? 2 * c->nslot : 64))
        return -1;
    size_t h = (size_t)hash_bytes(s, len) & (c->nslot - 1);
    while (c->slot[h]) {
        const char *t = c->strs[c->slot[h] - 1];
        if (strncmp(t, s, len) == 0 && t[len] == '\0')
            return (long)c->slot[h] - 1;
        h = (h + 1) & (c->nslot - 1);
    }
    if (c->nstr == INT32_MAX)
        return -1;
    if (c->nstr == c->strcap) {
        size_t cap = c->strcap ? 2 * c->strcap : 16;
        char **v = realloc(c->strs, cap * sizeof *v);
        if (!v)
            return -1;
        c->strs = v;
        c->strcap = cap;
    }
    char *d = dup_mem(s, len);
    if (!d)
        return -1;
    c->strs[c->nstr] = d;
    c->slot[h] = (uint32_t)++c->nstr;
    return (long)c->nstr - 1;
}

static int grow_rows(colbuf *c, size_t need)
{
    if (need <= c->cap)
        return 0;
    size_t cap = c->cap ? 2 * c->cap : FIRST_CAP;
    while (cap < need)
        cap *= 2;
    unsigned char *na = realloc(c->na, cap);
    if (!na)
        return -1;
    c->na = na;
    if (c->text) {
        int *v = realloc(c->code, cap * sizeof *v);
        if (!v)
            return -1;
        c->code = v;
    } else {
        double *v = realloc(c->num, cap * sizeof *v);
        if (!v)
            return -1;
        c->num = v;
    }
    c->cap = cap;
    return 0;
}

/* Switch a numeric column to text: numbers read so far become levels
 * spelled with %.15g (the original spelling is not kept: the reader never
 * stores the text of numeric fields). */
static int to_text(colbuf *c, size_t nrow)
{
    int *code = malloc((c->cap ? c->cap : 1) * sizeof *code);
    if (!code)
        return -1;
    c->text = 1;
    for (size_t i = 0; i < nrow; i++) {
        if (c->na[i]) {
            code[i] = -1;
            continue;
        }
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%.15g", c->num[i]);
        long id = intern(c, buf, (size_t)n);
        if (id < 0) {
            free(code);
            c->text = 0;
            return -1;
        }
        code[i] = (int)id;
    }
    free(c->num);
    c->num = NULL;
    c->code = code;
    return 0;
}

static void data_field(reader *r, const char *s, size_t len, size_t j)
{
    colbuf *c = &r->col[j];
    size_t i = r->nrow;
    if (grow_rows(c, i + 1)) {
        nomem(r);
        return;
    }
    if (is_missing(r, s, len)) {
        c->na[i] = 1;
        if (c->text)
            c->code[i] = -1;
        else
            c->num[i] = NAN;
        return;
    }
    c->na[i] = 0;
    double v = 0;
    int kind = parse_number(s, len, r->dot_radix, &v);
    if (kind == F_NUMBER) {
        c->numeric_fields++;
        if (!c->text) {
            c->num[i] = v;
            return;
        }
    } else if (kind == F_TEXT) {
        if (!c->has_plain) {
            c->has_plain = 1;
            c->first_text_line = r->field_line;
            if (!(c->first_text = dup_mem(s, len))) {
                nomem(r);
                return;
            }
        }
    } else if (!c->special) {
        c->special_line = r->field_line;
        c->special_range = kind == F_RANGE;
        if (!(c->special = dup_mem(s, len))) {
            nomem(r);
            return;
        }
    }
    if (!c->text && to_text(c, i)) {
        nomem(r);
        return;
    }
    long id = intern(c, s, len);
    if (id < 0) {
        nomem(r);
        return;
    }
    c->code[i] = (int)id;
}

static void header_field(reader *r, const char *s, size_t len)
{
    if (r->ncol == r->namecap) {
        size_t cap = r->namecap ? 2 * r->namecap : 16;
        char **v = realloc(r->names, cap * sizeof *v);
        if (!v) {
            nomem(r);
            return;
        }
        r->names = v;
        r->namecap = cap;
    }
    if (!(r->names[r->ncol] = dup_mem(s, len))) {
        nomem(r);
        return;
    }
    r->ncol++;
}

/* libcsv field callback. */
static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

static void on_field(void *field, size_t len, void *data)
{
    reader *r = data;
    if (r->st)
        return;
    const char *s = field ? field : "";
    if (r->nf == 0)
        r->rec_line = r->field_line;
    size_t j = r->nf++;
    if (!r->have_header) {
        /* Byte order marks before the first name are dropped wherever the
         * header starts (after CR-only blank lines, too), so that no first
         * column name begins with one and a frame writes back unchanged. */
        while (j == 0 && len >= 3 && memcmp(s, BOM, 3) == 0) {
            s += 3;
            len -= 3;
        }
        if (check_bytes(r, s, len, j + 1) == 0)
            header_field(r, s, len);
    } else if (j < r->ncol) {
        /* Extra fields of a ragged row are only counted: on_record
         * reports the total. */
        if (check_bytes(r, s, len, j + 1) == 0)
            data_field(r, s, len, j);
    }
    /* The next field begins right after this one's separator. */
    r->field_line = r->line;
    r->fresh = 0;
}

static void check_header(reader *r)
{
    char q[QBUF];
    for (size_t j = 0; j < r->ncol; j++) {
        if (r->names[j][0] == '\0') {
            r->st = bh_error_at(r->err, BH_EINPUT, r->source, r->rec_line, j + 1,
                                "column %zu has an empty name in the header", j + 1);
            return;
        }
        for (size_t k = 0; k < j; k++)
            if (strcmp(r->names[k], r->names[j]) == 0) {
                r->st = bh_error_at(r->err, BH_EINPUT, r->source, r->rec_line, j + 1,
                                    "duplicate column name \"%s\" (columns %zu and %zu)",
                                    bh_quote(q, sizeof q, r->names[j], QUOTE_MAX),
                                    k + 1, j + 1);
                return;
            }
    }
    r->col = calloc(r->ncol, sizeof *r->col);
    if (!r->col)
        nomem(r);
}

/* libcsv record callback. */
static void on_record(int term, void *data)
{
    (void)term;
    reader *r = data;
    if (r->st)
        return;
    size_t nf = r->nf;
    r->nf = 0;
    r->fresh = 1;
    if (!r->have_header) {
        r->have_header = 1;
        check_header(r);
        return;
    }
    if (nf != r->ncol) {
        r->st = bh_error_at(r->err, BH_EINPUT, r->source, r->rec_line,
                            nf > r->ncol ? r->ncol + 1 : nf + 1,
                            "%zu field%s, but the header has %zu",
                            nf, nf == 1 ? "" : "s", r->ncol);
        return;
    }
    r->nrow++;
}

/* No libcsv white space: text keeps its blanks, and a tab separator is
 * never mistaken for padding. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static int blank_segment(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Feed one piece of a physical line (ending at '\n' or the chunk end). */
static void feed(reader *r, struct csv_parser *p, const char *s, size_t n)
{
    if (r->fresh && !blank_segment(s, n)) {
        r->field_line = r->line;
        r->fresh = 0;
    }
    size_t done = csv_parse(p, s, n, on_field, on_record, r);
    if (r->st == BH_OK && done < n) {
        if (csv_error(p) == CSV_EPARSE) {
            char q[QBUF], ch[2] = {s[done], '\0'};
            r->st = bh_error_at(r->err, BH_EINPUT, r->source, r->line, r->nf + 1,
                                "malformed quoting in field %zu at '%s': a quote "
                                "inside an unquoted field, or text after a closing "
                                "quote (inside a quoted field, write a quote as \"\")",
                                r->nf + 1, bh_quote(q, sizeof q, ch, 1));
        } else
            nomem(r);
    }
    if (n && s[n - 1] == '\n')
        r->line++;
}

/* A complete data line (ending in '\n') that starts a record and holds no
 * quote and no CR before its line end is split here at the separators, as
 * libcsv would split it (no white space trimming, CRLF ends a record), and
 * handed to the same callbacks; libcsv's byte-by-byte state machine is the
 * slow part of reading a plain numeric file.  Returns 0, having done
 * nothing, for any other line (blank, quoted, or a record continued from
 * the previous piece), which then goes through libcsv.  The fields are
 * NUL-terminated in place in the caller's buffer. */
static int split_plain(reader *r, char *s, size_t k)
{
    size_t len = k - 1;
    if (len && s[len - 1] == '\r')
        len--;
    if (!len || memchr(s, '"', len) || memchr(s, '\r', len))
        return 0;
    r->field_line = r->line;
    r->fresh = 0;
    char *f = s, *end = s + len;
    for (;;) {
        char *d = memchr(f, r->opt->sep, (size_t)(end - f));
        char *stop = d ? d : end;
        *stop = '\0';
        on_field(f, (size_t)(stop - f), r);
        if (!d)
            break;
        f = d + 1;
    }
    on_record('\n', r);
    r->line++;
    return 1;
}

typedef struct {
    const char *s;
    size_t id;
} level_ref;

static int cmp_level_ref(const void *x, const void *y)
{
    return bh_level_cmp(((const level_ref *)x)->s, ((const level_ref *)y)->s);
}

/* Turn a text column buffer into sorted levels and remapped codes, moving
 * the strings into col.  Returns -1 on allocation failure. */
static int finish_levels(colbuf *c, size_t nrow, bh_column *col)
{
    size_t L = c->nstr;
    level_ref *ref = malloc((L ? L : 1) * sizeof *ref);
    size_t *rank = malloc((L ? L : 1) * sizeof *rank);
    char **levels = malloc((L ? L : 1) * sizeof *levels);
    if (!ref || !rank || !levels) {
        free(ref);
        free(rank);
        free(levels);
        return -1;
    }
    for (size_t k = 0; k < L; k++) {
        ref[k].s = c->strs[k];
        ref[k].id = k;
    }
    qsort(ref, L, sizeof *ref, cmp_level_ref);
    for (size_t k = 0; k < L; k++) {
        rank[ref[k].id] = k;
        levels[k] = c->strs[ref[k].id];
    }
    for (size_t i = 0; i < nrow; i++)
        if (col->code[i] >= 0)
            col->code[i] = (int)rank[col->code[i]];
    free(ref);
    free(rank);
    free(c->strs);
    c->strs = NULL;
    c->nstr = 0;
    col->levels = levels;
    col->nlevels = L;
    return 0;
}

/* Report the earliest NaN/Inf text or overflowing number in a column that
 * has no other text (so it was meant to be numeric). */
static bh_status check_special(reader *r)
{
    size_t bad = r->ncol;
    for (size_t j = 0; j < r->ncol; j++) {
        colbuf *c = &r->col[j];
        if (c->special && !c->has_plain &&
            (bad == r->ncol || c->special_line < r->col[bad].special_line))
            bad = j;
    }
    if (bad == r->ncol)
        return BH_OK;
    char q[QBUF], nq[QBUF];
    colbuf *c = &r->col[bad];
    bh_quote(q, sizeof q, c->special, QUOTE_MAX);
    bh_quote(nq, sizeof nq, r->names[bad], QUOTE_MAX);
    if (c->special_range)
        return r->st = bh_error_at(r->err, BH_EINPUT, r->source, c->special_line, bad + 1,
                                   "\"%s\" in numeric column \"%s\" is out of the "
                                   "range of a double", q, nq);
    return r->st = bh_error_at(r->err, BH_EINPUT, r->source, c->special_line, bad + 1,
                               "\"%s\" in numeric column \"%s\" is not a finite "
                               "number; if it marks missing values, declare it "
                               "with --na \"%s\"", q, nq, q);
}

static bh_status make_frame(reader *r, bh_frame **out)
{
    if (check_special(r))
        return r->st;
    bh_frame *f = bh_frame_new(r->source, r->nrow);
    if (!f)
        return nomem(r);
    size_t n = r->nrow, m = n ? n : 1;
    for (size_t j = 0; j < r->ncol; j++) {
        colbuf *c = &r->col[j];
        if (grow_rows(c, 1)) {      /* a header-only file has no buffers */
            bh_frame_free(f);
            return nomem(r);
        }
        bh_column col = {0};
        col.n = n;
        col.file_column = j + 1;
        col.numeric_fields = c->numeric_fields;
        /* Shrink to size; should a shrink fail, keep the larger block. */
        unsigned char *na = realloc(c->na, m);
        col.na = na ? na : c->na;
        c->na = NULL;
        if (!c->text) {
            col.type = BH_COL_NUMERIC;
            double *v = realloc(c->num, m * sizeof *v);
            col.num = v ? v : c->num;
            c->num = NULL;
        } else {
            col.type = BH_COL_CATEGORICAL;
            int *v = realloc(c->code, m * sizeof *v);
            col.code = v ? v : c->code;
            c->code = NULL;
            col.first_text = c->first_text;
            col.first_text_line = c->first_text_line;
            c->first_text = NULL;
            if (finish_levels(c, n, &col)) {
                free(col.na);
                free(col.code);
                free(col.first_text);
                bh_frame_free(f);
                return nomem(r);
            }
        }
        col.name = r->names[j];
        r->names[j] = NULL;
        /* adopt owns col from here on, also when it fails. */
        bh_status s = bh_frame_adopt(f, &col, r->err);
        if (s) {
            bh_frame_free(f);
            return r->st = s;
        }
    }
    *out = f;
    return BH_OK;
}

static void reader_free(reader *r)
{
    for (size_t j = 0; j < r->ncol; j++)
        free(r->names ? r->names[j] : NULL);
    free(r->names);
    if (r->col) {
        for (size_t j = 0; j < r->ncol; j++) {
            colbuf *c = &r->col[j];
            free(c->na);
            free(c->num);
            free(c->code);
            for (size_t k = 0; k < c->nstr; k++)
                free(c->strs[k]);
            free(c->strs);
            free(c->slot);
            free(c->first_text);
            free(c->special);
        }
        free(r->col);
    }
    free(r->na_len);
}

void bh_csv_default_options(bh_csv_options *opt)
{
    if (!opt)
        return;
    opt->sep = ',';
    opt->na = NULL;
    opt->n_na = 0;
}

bh_status bh_csv_read_stream(FILE *in, const char *source,
                             const bh_csv_options *opt, bh_frame **out,
                             bh_error *err)
{
    bh_csv_options defaults;
    if (!opt) {
        bh_csv_default_options(&defaults);
        opt = &defaults;
    }
    if (!source)
        source = "<input>";
    if (!in || !out)
        return bh_error_set(err, BH_EINTERNAL, "bh_csv_read_stream: NULL argument");
    *out = NULL;
    if (opt->sep == '"' || opt->sep == '\n' || opt->sep == '\r' || opt->sep == '\0')
        return bh_error_at(err, BH_EUSAGE, source, 0, 0,
                           "the field separator cannot be a quote, a line end or NUL");
    if (opt->n_na && !opt->na)
        return bh_error_set(err, BH_EINTERNAL, "bh_csv_read_stream: n_na > 0 but na is NULL");

    reader r = {0};
    r.opt = opt;
    r.source = source;
    r.err = err;
    r.line = 1;
    r.field_line = 1;
    r.fresh = 1;
    const char *radix = nl_langinfo(RADIXCHAR);
    r.dot_radix = radix && strcmp(radix, ".") == 0;
    r.na_len = malloc((opt->n_na ? opt->n_na : 1) * sizeof *r.na_len);
    char *buf = malloc(CHUNK);
    struct csv_parser p;
    int pinit = csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) == 0;
    if (!r.na_len || !buf || !pinit) {
        nomem(&r);
        goto done;
    }
    for (size_t k = 0; k < opt->n_na; k++)
        r.na_len[k] = strlen(opt->na[k]);
    csv_set_delim(&p, (unsigned char)opt->sep);
    csv_set_space_func(&p, no_space);
    /* libcsv grows its field buffer by a fixed block (128 bytes by
     * default): a 10 MB field meant 80,000 reallocs, quadratic copying
     * wherever realloc cannot grow in place (minutes under ASan). */
    csv_set_blk_size(&p, CHUNK);

    size_t n;
    while (r.st == BH_OK && (n = fread(buf, 1, CHUNK, in)) > 0) {
        char *s = buf;
        while (n && r.st == BH_OK) {
            /* A byte order mark belongs to the header line even after blank
             * lines (which are skipped), and repeated marks (files joined
             * with cat) are all dropped: no column name starts with one, so
             * the frame writes back out to the same header. */
            while (!r.have_header && r.fresh && r.nf == 0 && n >= 3 &&
                   memcmp(s, BOM, 3) == 0) {
                s += 3;
                n -= 3;
            }
            if (!n)
                break;
            const char *nl = memchr(s, '\n', n);
            size_t k = nl ? (size_t)(nl - s) + 1 : n;
            /* fresh: libcsv is between records (nothing pending). */
            if (!(nl && r.have_header && r.col && r.fresh && r.nf == 0 &&
                  split_plain(&r, s, k)))
                feed(&r, &p, s, k);
            s += k;
            n -= k;
        }
    }
    if (r.st == BH_OK && ferror(in)) {
        r.st = bh_error_at(err, BH_EINPUT, source, r.line, 0,
                           "read error: %s", strerror(errno));
        goto done;
    }
    if (r.st == BH_OK && csv_fini(&p, on_field, on_record, &r) != 0 && r.st == BH_OK) {
        if (csv_error(&p) == CSV_EPARSE)
            r.st = bh_error_at(err, BH_EINPUT, source, r.field_line, r.nf + 1,
                               "unterminated quoted field %zu: the quote opened on "
                               "line %zu is never closed", r.nf + 1, r.field_line);
        else
            nomem(&r);
    }
    if (r.st == BH_OK && !r.have_header)
        r.st = bh_error_at(err, BH_EINPUT, source, 0, 0,
                           "the file is empty (no header row)");
    if (r.st == BH_OK)
        make_frame(&r, out);
done:
    if (pinit)
        csv_free(&p);
    free(buf);
    reader_free(&r);
    return r.st;
}

bh_status bh_csv_read_path(const char *path, const bh_csv_options *opt,
                           bh_frame **out, bh_error *err)
{
    if (!path || !out)
        return bh_error_set(err, BH_EINTERNAL, "bh_csv_read_path: NULL argument");
    if (strcmp(path, "-") == 0 || strcmp(path, "stdin") == 0)
        return bh_csv_read_stream(stdin, "<stdin>", opt, out, err);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return bh_error_at(err, BH_EINPUT, path, 0, 0, "cannot open: %s",
                           strerror(errno));
    bh_status s = bh_csv_read_stream(fp, path, opt, out, err);
    fclose(fp);
    return s;
}
