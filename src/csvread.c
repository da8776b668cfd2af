/* csvread.c - stream a CSV file into a bh_frame with libcsv (see csvread.h).
 *
 * The input is read in CHUNK-byte blocks and handed to libcsv one physical
 * line at a time (split at '\n'), so the reader always knows the line it is
 * on; libcsv itself only reports fields and record ends.  Each field goes
 * straight into its column: numeric columns into a growing double array,
 * text columns into an array of codes into a table of interned strings.
 *
 * With more than one thread (bh_csv_options.threads) the input is read in
 * larger blocks whose plain lines are parsed on several threads and then
 * appended in file order (see "The parallel reader" below); every line
 * the threads do not take goes through the one-thread path above, so the
 * frame and any error are the same as with one thread.
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
#include <pthread.h>
#include <unistd.h>

enum {
    CHUNK = 64 * 1024,      /* fread block size (one thread)            */
    BLOCK = 4 * 1024 * 1024,/* default block of the parallel reader     */
    MIN_BLOCK = 64,
    MAX_BLOCK = 1 << 30,    /* offsets into a block fit 32 bits         */
    MAX_THREADS = 256,
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

/* strtod on [b, e), which is followed by a byte that ends any number. */
static int parse_strtod(const char *b, const char *e, double *out)
{
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

/* The common start of parse_number and parse_number_at: trim blanks
 * (space, tab) and try the fast decimal path.  Returns F_TEXT or F_NUMBER
 * when decided, -2 when strtod must decide on [*b, *e). */
static int classify_fast(const char **b, const char **e, int fast, double *out)
{
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
    if (*b == *e)
        return F_TEXT;
    /* strtod would skip other white space itself; those are text. */
    if (**b == '\n' || **b == '\r' || **b == '\v' || **b == '\f')
        return F_TEXT;
    if (fast && fast_decimal(*b, *e, out))
        return F_NUMBER;
    return -2;
}

/* Classify a NUL-terminated field.  Leading and trailing blanks (space,
 * tab) are ignored here only; text values keep them.  Underflow to zero
 * or a subnormal is accepted as the nearest double. */
static int parse_number(const char *s, size_t len, int fast, double *out)
{
    const char *b = s, *e = s + len;
    int kind = classify_fast(&b, &e, fast, out);
    return kind != -2 ? kind : parse_strtod(b, e, out);
}

/* parse_number for a field that is not NUL-terminated (the parallel
 * parsers leave the block untouched): strtod gets a terminated copy, or
 * it could read on into a separator that looks like part of a number.
 * Returns -1 only when the copy cannot be allocated. */
static int parse_number_at(const char *s, size_t len, int fast, double *out)
{
    const char *b = s, *e = s + len;
    int kind = classify_fast(&b, &e, fast, out);
    if (kind != -2)
        return kind;
    char small[128], *t = small;
    size_t n = (size_t)(e - b);
    if (n >= sizeof small && !(t = malloc(n + 1)))
        return -1;
    memcpy(t, b, n);
    t[n] = '\0';
    kind = parse_strtod(t, t + n, out);
    if (t != small)
        free(t);
    return kind;
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

/* Hand bytes to the one-thread reader: split at '\n' into pieces, plain
 * complete lines to split_plain, everything else to libcsv. */
static void serial_chunk(reader *r, struct csv_parser *p, char *s, size_t n)
{
    while (n && r->st == BH_OK) {
        /* A byte order mark belongs to the header line even after blank
         * lines (which are skipped), and repeated marks (files joined
         * with cat) are all dropped: no column name starts with one, so
         * the frame writes back out to the same header. */
        while (!r->have_header && r->fresh && r->nf == 0 && n >= 3 &&
               memcmp(s, BOM, 3) == 0) {
            s += 3;
            n -= 3;
        }
        if (!n)
            break;
        const char *nl = memchr(s, '\n', n);
        size_t k = nl ? (size_t)(nl - s) + 1 : n;
        /* fresh: libcsv is between records (nothing pending). */
        if (!(nl && r->have_header && r->col && r->fresh && r->nf == 0 &&
              split_plain(r, s, k)))
            feed(r, p, s, k);
        s += k;
        n -= k;
    }
}

/* ---------------------------------------------------------------------
 * The parallel reader.  A block's complete lines are cut at line starts
 * into one part per thread.  Each thread parses its part into its own
 * buffers without touching the reader: per field a kind and either the
 * double or the field's place in the block (text is interned later, in
 * file order, so level ids, the numeric-to-text switch and every piece of
 * bookkeeping come out as the one-thread reader makes them).  A thread
 * stops at the first line split_plain would not take (a quote, a lone CR)
 * and at the first line it cannot accept (ragged, NUL or bad UTF-8 bytes,
 * no memory); the main thread appends the parts in order and hands the
 * rest of a stopped part to the one-thread reader, which reports the error
 * with its exact message or reads the quoted record.  A part is appended
 * only while the reader is between records, so quoting never crosses
 * into a parallel part.
 */

/* Field kinds.  K_NUM and K_NA are 0 and 1 so that a numeric part's kinds
 * are its missing flags. */
enum { K_NUM = 0, K_NA = 1, K_NUMSPELL, K_TEXT, K_NONFINITE, K_RANGE };

typedef union {
    double d;                       /* K_NUM, K_NA (NAN)                */
    struct {
        uint32_t off, len;          /* field bytes: offset in the block */
    } t;
} cell;

typedef struct {
    const reader *r;                /* read only while threads run      */
    const char *base;               /* the block                        */
    size_t start, end;              /* the part: [start, end) of base   */
    const unsigned char *text0;     /* per column: text mode at block start */
    /* Results. */
    size_t stop;                    /* first byte not taken (a line start) */
    size_t rows, lines;             /* records and '\n's before stop    */
    size_t last_rec_line;           /* relative line of the last record */
    size_t cap;
    unsigned char **kind;           /* [ncol][cap]                      */
    cell **val;                     /* [ncol][cap]                      */
    uint32_t *lineoff;              /* [cap] line start of each row     */
    size_t *nother;                 /* per column: fields not K_NUM/K_NA */
    size_t *ft_line, *sp_line;      /* per column: relative line of the first
                                       K_TEXT / special, SIZE_MAX = none */
    unsigned char *textmode;        /* per column, while parsing        */
} part;

static size_t online_cpus(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (size_t)c : 1;
}

static void part_free(part *P, size_t ncol)
{
    for (size_t j = 0; j < ncol; j++) {
        free(P->kind ? P->kind[j] : NULL);
        free(P->val ? P->val[j] : NULL);
    }
    free(P->kind);
    free(P->val);
    free(P->lineoff);
    free(P->nother);
    free(P->ft_line);
    free(P->sp_line);
    free(P->textmode);
}

static int part_init(part *P, size_t ncol)
{
    size_t m = ncol ? ncol : 1;
    P->kind = calloc(m, sizeof *P->kind);
    P->val = calloc(m, sizeof *P->val);
    P->nother = malloc(m * sizeof *P->nother);
    P->ft_line = malloc(m * sizeof *P->ft_line);
    P->sp_line = malloc(m * sizeof *P->sp_line);
    P->textmode = malloc(m);
    return P->kind && P->val && P->nother && P->ft_line && P->sp_line &&
           P->textmode ? 0 : -1;
}

static int part_grow(part *P, size_t ncol)
{
    size_t cap = P->cap ? 2 * P->cap : 1024;
    uint32_t *lo = realloc(P->lineoff, cap * sizeof *lo);
    if (!lo)
        return -1;
    P->lineoff = lo;
    for (size_t j = 0; j < ncol; j++) {
        unsigned char *k = realloc(P->kind[j], cap);
        if (!k)
            return -1;
        P->kind[j] = k;
        cell *v = realloc(P->val[j], cap * sizeof *v);
        if (!v)
            return -1;
        P->val[j] = v;
    }
    P->cap = cap;
    return 0;
}

/* check_bytes without the message: 1 if the field is clean. */
static int bytes_ok(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (unsigned char)(s[i] - 1) < 0x7F)
        i++;
    if (i == len)
        return 1;
    return !memchr(s, '\0', len) &&
           utf8_bad((const unsigned char *)s, len) == len;
}

/* One field of row i, column j; 0 = the line must go to the serial reader. */
static int part_field(part *P, const char *s, size_t len, size_t j, size_t i)
{
    const reader *r = P->r;
    if (!bytes_ok(s, len))
        return 0;
    cell *v = &P->val[j][i];
    if (is_missing(r, s, len)) {
        P->kind[j][i] = K_NA;
        v->d = NAN;
        return 1;
    }
    double x = 0;
    int kind = parse_number_at(s, len, r->dot_radix, &x);
    unsigned char k;
    if (kind < 0)
        return 0;
    if (kind == F_NUMBER) {
        if (!P->textmode[j]) {
            P->kind[j][i] = K_NUM;
            v->d = x;
            return 1;
        }
        k = K_NUMSPELL;
    } else if (kind == F_TEXT) {
        k = K_TEXT;
        if (P->ft_line[j] == SIZE_MAX)
            P->ft_line[j] = P->lines;
    } else {
        k = kind == F_RANGE ? K_RANGE : K_NONFINITE;
        if (P->sp_line[j] == SIZE_MAX)
            P->sp_line[j] = P->lines;
    }
    /* From here on the column is text (it may have been before). */
    P->textmode[j] = 1;
    P->nother[j]++;
    P->kind[j][i] = k;
    v->t.off = (uint32_t)(s - P->base);
    v->t.len = (uint32_t)len;
    return 1;
}

/* fast_decimal fused with the search for the field's end: a plain decimal
 * (same grammar and limits) that runs up to a separator or the line end
 * (LF or CR LF).  Returns the end of the field, or NULL when the field
 * must take the general path (anything else, blanks included).  Only used
 * when no byte of a number can be the separator and the radix is '.'.
 * The block holds complete lines: every scan stops at a '\n'. */
static const char *scan_decimal(const char *q, char sep, double *out)
{
#if FLT_EVAL_METHOD == 0
    static const double p10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int neg = 0, any = 0, nd = 0;
    long scale = 0;
    uint64_t m = 0;
    if (*q == '-' || *q == '+')
        neg = *q++ == '-';
    while (*q == '0') {
        q++;
        any = 1;
    }
    for (; (unsigned)(*q - '0') < 10; q++, any = 1) {
        if (nd == 19)
            return NULL;
        m = m * 10 + (uint64_t)(*q - '0');
        nd++;
    }
    if (*q == '.') {
        q++;
        if (nd == 0)
            for (; *q == '0'; q++, any = 1)
                if (--scale < -1000)
                    return NULL;
        for (; (unsigned)(*q - '0') < 10; q++, any = 1) {
            if (nd == 19)
                return NULL;
            m = m * 10 + (uint64_t)(*q - '0');
            nd++;
            scale--;
        }
    }
    if (!any)
        return NULL;
    if (*q == 'e' || *q == 'E') {
        int eneg = 0;
        long x = 0;
        q++;
        if (*q == '-' || *q == '+')
            eneg = *q++ == '-';
        if ((unsigned)(*q - '0') >= 10)
            return NULL;
        for (; (unsigned)(*q - '0') < 10; q++)
            if (x < 100000)
                x = x * 10 + (*q - '0');
        scale += eneg ? -x : x;
    }
    if (!(*q == sep || *q == '\n' || (*q == '\r' && q[1] == '\n')))
        return NULL;
    if (m > (UINT64_C(1) << 53))
        return NULL;
    double v = (double)m;
    if (m != 0) {
        if (scale < -22 || scale > 22)
            return NULL;
        if (scale < 0)
            v /= p10[-scale];
        else
            v *= p10[scale];
    }
    *out = neg ? -v : v;
    return q;
#else
    (void)q, (void)sep, (void)out;
    return NULL;
#endif
}

/* Parse one part (thread entry).  Each line is taken as split_plain takes
 * it (no quote, no CR but a final CR LF, split at every separator) or not
 * at all; a blank line (LF or CR LF alone) only counts. */
static void *part_run(void *arg)
{
    part *P = arg;
    const reader *r = P->r;
    size_t ncol = r->ncol;
    char sep = r->opt->sep;
    int fused = r->dot_radix && !strchr("0123456789.eE+-", sep);
    for (size_t j = 0; j < ncol; j++) {
        P->nother[j] = 0;
        P->ft_line[j] = P->sp_line[j] = SIZE_MAX;
        P->textmode[j] = P->text0[j];
    }
    P->rows = P->lines = P->last_rec_line = 0;
    size_t pos = P->start, end = P->end;
    const char *base = P->base;
    while (pos < end) {
        const char *line = base + pos, *q = line;
        if (*q == '\r' && q[1] == '\n')
            q++;
        if (*q == '\n') {
            P->lines++;
            pos = (size_t)(q + 1 - base);
            continue;
        }
        if (P->rows == P->cap && part_grow(P, ncol))
            break;
        size_t i = P->rows, j = 0;
        q = line;
        int ok = 0;
        for (;;) {
            /* q: start of field j. */
            if (j == ncol)
                break;
            double x;
            const char *f = q, *fe;
            if (fused && !P->textmode[j] && (fe = scan_decimal(f, sep, &x)) &&
                !(r->opt->n_na && is_missing(r, f, (size_t)(fe - f)))) {
                P->kind[j][i] = K_NUM;
                P->val[j][i].d = x;
            } else {
                fe = f;
                char c;
                while ((c = *fe) != sep && c != '\n' && c != '\r' && c != '"')
                    fe++;
                if (c == '"' || (c == '\r' && fe[1] != '\n'))
                    break;
                if (!part_field(P, f, (size_t)(fe - f), j, i))
                    break;
            }
            j++;
            if (*fe == sep) {
                q = fe + 1;
                continue;
            }
            /* Line end: LF or CR LF. */
            q = fe + (*fe == '\r') + 1;
            ok = j == ncol;
            break;
        }
        if (!ok)
            break;
        P->lineoff[i] = (uint32_t)pos;
        P->rows++;
        P->last_rec_line = P->lines;
        P->lines++;
        pos = (size_t)(q - base);
    }
    P->stop = pos;
    return NULL;
}

/* Field j of the plain line at base + off (j < ncol, the line was split). */
static const char *resplit(const part *P, size_t off, size_t j, char sep,
                           size_t *len)
{
    const char *s = P->base + off;
    const char *e = memchr(s, '\n', P->end - off);
    if (e > s && e[-1] == '\r')
        e--;
    for (size_t t = 0; t < j; t++)
        s = (const char *)memchr(s, sep, (size_t)(e - s)) + 1;
    const char *d = memchr(s, sep, (size_t)(e - s));
    *len = (size_t)((d ? d : e) - s);
    return s;
}

/* Append column j of part P at row i0, as data_field would have done
 * field by field; line0 is the line the part starts on.  Touches column j
 * only.  -1 = no memory. */
static int merge_column(reader *r, const part *P, size_t j, size_t i0,
                        size_t line0)
{
    colbuf *c = &r->col[j];
    size_t n = P->rows;
    if (n == 0)
        return 0;
    if (grow_rows(c, i0 + n))
        return -1;
    const unsigned char *kd = P->kind[j];
    const cell *v = P->val[j];
    if (!c->text && P->nother[j] == 0) {
        /* Numbers and missing values only: a copy. */
        size_t nna = 0;
        for (size_t k = 0; k < n; k++) {
            nna += kd[k];
            c->num[i0 + k] = v[k].d;
        }
        memcpy(c->na + i0, kd, n);
        c->numeric_fields += n - nna;
        return 0;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = i0 + k;
        const char *s;
        size_t len;
        switch (kd[k]) {
        case K_NA:
            c->na[i] = 1;
            if (c->text)
                c->code[i] = -1;
            else
                c->num[i] = NAN;
            continue;
        case K_NUM:
            c->na[i] = 0;
            c->numeric_fields++;
            if (!c->text) {
                c->num[i] = v[k].d;
                continue;
            }
            /* The column turned text in an earlier part of this block:
             * the number is a level spelled as in the file. */
            s = resplit(P, P->lineoff[k], j, r->opt->sep, &len);
            break;
        case K_NUMSPELL:
            /* Stored only after text in this part, or when the column was
             * text at block start: c->text is set. */
            c->na[i] = 0;
            c->numeric_fields++;
            s = P->base + v[k].t.off;
            len = v[k].t.len;
            break;
        case K_TEXT:
            c->na[i] = 0;
            s = P->base + v[k].t.off;
            len = v[k].t.len;
            if (!c->has_plain) {
                /* The part's first text in this column, or has_plain
                 * would have been set by it already. */
                c->has_plain = 1;
                c->first_text_line = line0 + P->ft_line[j];
                if (!(c->first_text = dup_mem(s, len)))
                    return -1;
            }
            break;
        default:
            c->na[i] = 0;
            s = P->base + v[k].t.off;
            len = v[k].t.len;
            if (!c->special) {
                c->special_line = line0 + P->sp_line[j];
                c->special_range = kd[k] == K_RANGE;
                if (!(c->special = dup_mem(s, len)))
                    return -1;
            }
            break;
        }
        if (!c->text && to_text(c, i))
            return -1;
        long id = intern(c, s, len);
        if (id < 0)
            return -1;
        c->code[i] = (int)id;
    }
    return 0;
}

/* Between records, with the header read: a part may be appended. */
static int ready(const reader *r)
{
    return r->st == BH_OK && r->have_header && r->col && r->fresh && r->nf == 0;
}

typedef struct {
    size_t T;
    part *parts;
    size_t nparts;                  /* initialised                      */
    pthread_t *tid;
    unsigned char *text0;
} pool;

typedef struct {
    reader *r;
    const pool *W;
    size_t np, t, T;
    const size_t *i0, *line0;       /* per part: first row, first line  */
    int fail;
} merge_job;

/* Columns t, t + T, ... of every part, in part order. */
static void *merge_run(void *arg)
{
    merge_job *m = arg;
    for (size_t j = m->t; j < m->r->ncol && !m->fail; j += m->T)
        for (size_t q = 0; q < m->np && !m->fail; q++)
            m->fail = merge_column(m->r, &m->W->parts[q], j, m->i0[q], m->line0[q]);
    return NULL;
}

/* Every part was taken whole, so the parts follow each other without a
 * gap and the columns can be appended independently, on the threads. */
static void merge_parallel(reader *r, pool *W, size_t np)
{
    size_t T = W->T < r->ncol ? W->T : r->ncol;
    size_t *i0 = malloc(2 * np * sizeof *i0);
    merge_job *job = calloc(T, sizeof *job);
    int *started = calloc(T, sizeof *started);
    if (!i0 || !job || !started) {
        free(i0);
        free(job);
        free(started);
        nomem(r);
        return;
    }
    size_t *line0 = i0 + np, row = r->nrow, line = r->line, last = SIZE_MAX;
    for (size_t q = 0; q < np; q++) {
        i0[q] = row;
        line0[q] = line;
        if (W->parts[q].rows)
            last = line + W->parts[q].last_rec_line;
        row += W->parts[q].rows;
        line += W->parts[q].lines;
    }
    for (size_t t = 0; t < T; t++)
        job[t] = (merge_job){r, W, np, t, T, i0, line0, 0};
    for (size_t t = 1; t < T; t++)
        started[t] = pthread_create(&W->tid[t], NULL, merge_run, &job[t]) == 0;
    merge_run(&job[0]);
    int fail = job[0].fail;
    for (size_t t = 1; t < T; t++) {
        if (started[t])
            pthread_join(W->tid[t], NULL);
        else
            merge_run(&job[t]);
        fail |= job[t].fail;
    }
    free(i0);
    free(job);
    free(started);
    if (fail) {
        nomem(r);
        return;
    }
    r->nrow = row;
    r->line = line;
    if (last != SIZE_MAX)
        r->field_line = r->rec_line = last;
}

/* Read [s, e) of buf, complete lines only, with the parts in parallel. */
static void parallel_region(reader *r, struct csv_parser *p, pool *W,
                            char *buf, size_t s, size_t e)
{
    /* The header, and anything that leaves a record open, line by line. */
    while (s < e && r->st == BH_OK && !ready(r)) {
        size_t k = (size_t)((char *)memchr(buf + s, '\n', e - s) - (buf + s)) + 1;
        serial_chunk(r, p, buf + s, k);
        s += k;
    }
    if (s >= e || r->st)
        return;
    if (!W->text0) {
        /* First use: the header is known now. */
        W->text0 = malloc(r->ncol ? r->ncol : 1);
        W->parts = calloc(W->T, sizeof *W->parts);
        W->tid = malloc(W->T * sizeof *W->tid);
        if (!W->text0 || !W->parts || !W->tid) {
            nomem(r);
            return;
        }
        for (; W->nparts < W->T; W->nparts++)
            if (part_init(&W->parts[W->nparts], r->ncol)) {
                W->nparts++;
                nomem(r);
                return;
            }
    }
    for (size_t j = 0; j < r->ncol; j++)
        W->text0[j] = (unsigned char)r->col[j].text;
    /* Cut at line starts near equal shares. */
    size_t np = 0, a = s, len = e - s;
    for (size_t t = 0; t < W->T && a < e; t++) {
        size_t b = t + 1 == W->T ? e : s + len / W->T * (t + 1);
        if (b <= a)
            continue;
        if (b < e && buf[b - 1] != '\n')
            b = (size_t)((char *)memchr(buf + b, '\n', e - b) - buf) + 1;
        part *P = &W->parts[np++];
        P->r = r;
        P->base = buf;
        P->start = a;
        P->end = b;
        P->text0 = W->text0;
        a = b;
    }
    int *started = calloc(np, sizeof *started);
    if (!started) {
        nomem(r);
        return;
    }
    for (size_t q = 1; q < np; q++)
        started[q] = pthread_create(&W->tid[q], NULL, part_run, &W->parts[q]) == 0;
    part_run(&W->parts[0]);
    for (size_t q = 1; q < np; q++) {
        if (started[q])
            pthread_join(W->tid[q], NULL);
        else
            part_run(&W->parts[q]);
    }
    free(started);
    int clean = 1;
    for (size_t q = 0; q < np; q++)
        clean &= W->parts[q].stop == W->parts[q].end;
    if (clean && np > 1 && r->ncol > 1) {
        merge_parallel(r, W, np);
        return;
    }
    /* Append in file order; whatever a part did not take is read by the
     * one-thread reader up to the next part. */
    size_t pos = s;
    for (size_t q = 0; q < np && r->st == BH_OK; q++) {
        part *P = &W->parts[q];
        if (pos < P->start) {
            serial_chunk(r, p, buf + pos, P->start - pos);
            pos = P->start;
        }
        if (!ready(r))
            continue;
        size_t line0 = r->line;
        for (size_t j = 0; j < r->ncol; j++)
            if (merge_column(r, P, j, r->nrow, line0)) {
                nomem(r);
                return;
            }
        r->nrow += P->rows;
        r->line = line0 + P->lines;
        if (P->rows)
            r->field_line = r->rec_line = line0 + P->last_rec_line;
        pos = P->stop;
    }
    if (pos < e && r->st == BH_OK)
        serial_chunk(r, p, buf + pos, e - pos);
}

/* The parallel reader's input loop: blocks of `block` bytes, the
 * incomplete last line carried to the next block. */
static void read_blocks(reader *r, struct csv_parser *p, FILE *in,
                        size_t T, size_t block)
{
    pool W = {0};
    W.T = T;
    char *buf = malloc(block);
    if (!buf) {
        nomem(r);
        return;
    }
    size_t have = 0;
    while (r->st == BH_OK) {
        size_t want = block - have;
        size_t n = fread(buf + have, 1, want, in);
        int eof = n < want;
        have += n;
        if (!have)
            break;
        size_t e = have;
        while (e && buf[e - 1] != '\n')
            e--;
        if (e == 0) {
            /* One line longer than the block: to libcsv as it comes. */
            serial_chunk(r, p, buf, have);
            have = 0;
        } else {
            parallel_region(r, p, &W, buf, 0, e);
            memmove(buf, buf + e, have - e);
            have -= e;
        }
        if (eof) {
            if (have && r->st == BH_OK)
                serial_chunk(r, p, buf, have);
            break;
        }
    }
    for (size_t q = 0; q < W.nparts; q++)
        part_free(&W.parts[q], r->ncol);
    free(W.parts);
    free(W.tid);
    free(W.text0);
    free(buf);
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
    opt->threads = 0;
    opt->block_bytes = 0;
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

    size_t threads = opt->threads ? opt->threads : online_cpus();
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    size_t block = opt->block_bytes ? opt->block_bytes : BLOCK;
    if (block > MAX_BLOCK)
        block = MAX_BLOCK;
    if (block < MIN_BLOCK)
        block = MIN_BLOCK;

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
    char *buf = threads > 1 ? NULL : malloc(CHUNK);
    struct csv_parser p;
    int pinit = csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) == 0;
    if (!r.na_len || (threads <= 1 && !buf) || !pinit) {
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

    if (threads > 1)
        read_blocks(&r, &p, in, threads, block);
    else {
        size_t n;
        while (r.st == BH_OK && (n = fread(buf, 1, CHUNK, in)) > 0)
            serial_chunk(&r, &p, buf, n);
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
