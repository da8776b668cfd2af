/* formula.c - parse R model formulas into variables, terms, offsets,
 * random-effect terms and an optional precision (phi) part.
 *
 * Two stages: a Pratt parser builds a syntax tree with R's operator
 * precedence; then the right-hand side is expanded into terms with R's
 * terms.formula algebra (+ : * / ^ -, 0 and 1) and every leaf becomes a
 * bh_expr variable labelled with R's deparse.
 */
#include "blackhole/formula.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tokens */

typedef enum {
    T_END, T_NUM, T_NAME, T_OP, T_LPAREN, T_RPAREN, T_COMMA
} tkind;

typedef struct {
    tkind k;
    char op;          /* T_OP: one of ~ | + - * / : ^ */
    double num;
    char *name;       /* T_NAME (malloc'ed) */
    int quoted;       /* backquoted name */
    size_t pos;       /* 1-based column */
    size_t len;
} token;

typedef struct {
    const char *s;
    size_t i;
    token tok;        /* current (peeked) token */
    bh_error *err;
    bh_status st;
    size_t depth;     /* parse_expr recursion depth */
} lexer;

/* Syntax tree node. */
typedef enum { N_NUM, N_NAME, N_CALL, N_PAREN, N_UNARY, N_BIN } nkind;

typedef struct node {
    nkind k;
    char op;
    double num;
    char *name;
    struct node *a, *b;
    size_t pos;
    size_t depth;     /* height of the subtree (a leaf is 1) */
} node;

static bh_status ferr(bh_error *err, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bh_status ferr(bh_error *err, size_t col, const char *fmt, ...)
{
    char buf[BH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return bh_error_at(err, BH_EFORMULA, "formula", 1, col ? col : 1, "%s", buf);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void node_free(node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    free(n->name);
    free(n);
}

static node *node_new(nkind k, size_t pos)
{
    node *n = calloc(1, sizeof *n);
    if (n) {
        n->k = k;
        n->pos = pos;
        n->depth = 1;
    }
    return n;
}

/* Every later pass (encoding, deparse, evaluation, freeing) recurses over
 * the tree, so its height is bounded where the tree is built: a hostile or
 * generated formula must get an error, not a stack overflow.  Set n's
 * height from its children; 0 when it exceeds BH_FORMULA_MAX_DEPTH (the
 * error is then recorded in lx). */
static int node_height(lexer *lx, node *n)
{
    size_t h = 0;
    if (n->a && n->a->depth > h)
        h = n->a->depth;
    if (n->b && n->b->depth > h)
        h = n->b->depth;
    n->depth = h + 1;
    if (n->depth > BH_FORMULA_MAX_DEPTH) {
        lx->st = ferr(lx->err, n->pos,
                      "formula nested too deeply: more than %d levels of "
                      "parentheses, calls or operators",
                      BH_FORMULA_MAX_DEPTH);
        return 0;
    }
    return 1;
}

/* Describe the current token for messages. */
static const char *tok_text(const lexer *lx, char *buf, size_t size)
{
    const token *t = &lx->tok;
    if (t->k == T_END)
        return "end of formula";
    char q[64];
    size_t len = t->len < 40 ? t->len : 40;
    char raw[48];
    memcpy(raw, lx->s + t->pos - 1, len);
    raw[len] = '\0';
    snprintf(buf, size, "'%s'", bh_quote(q, sizeof q, raw, 40));
    return buf;
}

static int is_name_start(int c)
{
    return isalpha(c) || c == '.' || c == '_' || (c & 0x80);
}

static int is_name_char(int c)
{
    return isalnum(c) || c == '.' || c == '_' || (c & 0x80);
}

/* Advance to the next token. */
static bh_status lex_next(lexer *lx)
{
    free(lx->tok.name);
    memset(&lx->tok, 0, sizeof lx->tok);
    const char *s = lx->s;
    while (s[lx->i] == ' ' || s[lx->i] == '\t' || s[lx->i] == '\n' ||
           s[lx->i] == '\r')
        lx->i++;
    size_t st = lx->i;
    token *t = &lx->tok;
    t->pos = st + 1;
    unsigned char c = (unsigned char)s[st];
    if (!c) {
        t->k = T_END;
        return BH_OK;
    }
    if (isdigit(c) || (c == '.' && isdigit((unsigned char)s[st + 1]))) {
        /* Scan the decimal literal ourselves: strtod would also accept hex
         * and "inf", which R formulas do not have. */
        char *end;
        size_t j = st;
        while (isdigit((unsigned char)s[j]) || s[j] == '.')
            j++;
        if ((s[j] == 'e' || s[j] == 'E') &&
            (isdigit((unsigned char)s[j + 1]) ||
             ((s[j + 1] == '+' || s[j + 1] == '-') &&
              isdigit((unsigned char)s[j + 2])))) {
            j += 2;
            while (isdigit((unsigned char)s[j]))
                j++;
        }
        t->num = strtod(s + st, &end);
        if ((size_t)(end - s) != j || is_name_char((unsigned char)s[j])) {
            size_t k = j;
            while (is_name_char((unsigned char)s[k]))
                k++;
            char q[64], raw[64];
            size_t L = k - st < 60 ? k - st : 60;
            memcpy(raw, s + st, L);
            raw[L] = '\0';
            return lx->st = ferr(lx->err, t->pos, "malformed number '%s'",
                                 bh_quote(q, sizeof q, raw, 40));
        }
        t->k = T_NUM;
        t->len = j - st;
        lx->i = j;
        return BH_OK;
    }
    if (is_name_start(c)) {
        size_t j = st;
        while (is_name_char((unsigned char)s[j]))
            j++;
        t->k = T_NAME;
        t->name = xstrndup(s + st, j - st);
        if (!t->name)
            return lx->st = bh_error_set(lx->err, BH_ENOMEM, "out of memory");
        t->len = j - st;
        lx->i = j;
        return BH_OK;
    }
    if (c == '`') {
        size_t j = st + 1;
        while (s[j] && s[j] != '`')
            j++;
        if (!s[j])
            return lx->st = ferr(lx->err, t->pos, "unterminated backquoted name");
        if (j == st + 1)
            return lx->st = ferr(lx->err, t->pos, "empty backquoted name");
        t->k = T_NAME;
        t->quoted = 1;
        t->name = xstrndup(s + st + 1, j - st - 1);
        if (!t->name)
            return lx->st = bh_error_set(lx->err, BH_ENOMEM, "out of memory");
        t->len = j + 1 - st;
        lx->i = j + 1;
        return BH_OK;
    }
    t->len = 1;
    lx->i = st + 1;
    switch (c) {
    case '(': t->k = T_LPAREN; return BH_OK;
    case ')': t->k = T_RPAREN; return BH_OK;
    case ',': t->k = T_COMMA; return BH_OK;
    case '~': case '|': case '+': case '-': case '*': case '/': case ':':
    case '^':
        t->k = T_OP;
        t->op = (char)c;
        return BH_OK;
    default: {
        char q[16], raw[2] = {(char)c, 0};
        return lx->st = ferr(lx->err, t->pos, "unexpected character '%s'",
                             bh_quote(q, sizeof q, raw, 4));
    }
    }
}

/* Binding powers, as R's grammar: ~ < | < + - < * / < : < unary < ^. */
static int infix_bp(char op)
{
    switch (op) {
    case '~': return 1;
    case '|': return 2;
    case '+': case '-': return 3;
    case '*': case '/': return 4;
    case ':': return 5;
    case '^': return 7;
    }
    return 0;
}
#define BP_UNARY 6

static node *parse_expr(lexer *lx, int minbp);

static node *unexpected(lexer *lx)
{
    char buf[80];
    if (lx->tok.k == T_END)
        lx->st = ferr(lx->err, lx->tok.pos, "unexpected end of formula");
    else
        lx->st = ferr(lx->err, lx->tok.pos, "unexpected %s",
                      tok_text(lx, buf, sizeof buf));
    return NULL;
}

static node *parse_prefix(lexer *lx)
{
    token *t = &lx->tok;
    node *n = NULL;
    size_t pos = t->pos;
    switch (t->k) {
    case T_NUM:
        n = node_new(N_NUM, pos);
        if (!n)
            goto nomem;
        n->num = t->num;
        if (lex_next(lx))
            goto fail;
        return n;
    case T_NAME: {
        int quoted = t->quoted;
        char *name = t->name;
        t->name = NULL;
        if (lex_next(lx)) {
            free(name);
            return NULL;
        }
        if (!quoted && lx->tok.k == T_LPAREN) {
            n = node_new(N_CALL, pos);
            if (!n) {
                free(name);
                goto nomem;
            }
            n->name = name;
            if (lex_next(lx))
                goto fail;
            if (lx->tok.k == T_RPAREN) {
                lx->st = ferr(lx->err, lx->tok.pos, "%s() needs an argument",
                              name);
                goto fail;
            }
            n->a = parse_expr(lx, 0);
            if (!n->a || !node_height(lx, n))
                goto fail;
            /* Expressions inside calls are evaluated recursively with a
             * block of values per level (terms.c): a tighter bound. */
            if (n->depth > BH_FORMULA_MAX_EXPR_DEPTH) {
                lx->st = ferr(lx->err, pos,
                              "expression in %s() nested too deeply: more than "
                              "%d levels", name, BH_FORMULA_MAX_EXPR_DEPTH);
                goto fail;
            }
            if (lx->tok.k == T_COMMA) {
                lx->st = ferr(lx->err, lx->tok.pos,
                              "unexpected ',': %s() takes one argument", name);
                goto fail;
            }
            if (lx->tok.k != T_RPAREN) {
                if (lx->tok.k == T_END)
                    lx->st = ferr(lx->err, pos + strlen(name),
                                  "unbalanced parentheses: '(' is never closed");
                else
                    unexpected(lx);
                goto fail;
            }
            if (lex_next(lx))
                goto fail;
            return n;
        }
        n = node_new(N_NAME, pos);
        if (!n) {
            free(name);
            goto nomem;
        }
        n->name = name;
        n->op = (char)quoted;
        return n;
    }
    case T_LPAREN:
        n = node_new(N_PAREN, pos);
        if (!n)
            goto nomem;
        if (lex_next(lx))
            goto fail;
        if (lx->tok.k == T_RPAREN) {
            lx->st = ferr(lx->err, lx->tok.pos, "empty parentheses");
            goto fail;
        }
        n->a = parse_expr(lx, 0);
        if (!n->a || !node_height(lx, n))
            goto fail;
        if (lx->tok.k != T_RPAREN) {
            if (lx->tok.k == T_END)
                lx->st = ferr(lx->err, pos,
                              "unbalanced parentheses: '(' is never closed");
            else
                unexpected(lx);
            goto fail;
        }
        if (lex_next(lx))
            goto fail;
        return n;
    case T_OP:
        if (t->op == '-' || t->op == '+') {
            n = node_new(N_UNARY, pos);
            if (!n)
                goto nomem;
            n->op = t->op;
            if (lex_next(lx))
                goto fail;
            n->a = parse_expr(lx, BP_UNARY);
            if (!n->a || !node_height(lx, n))
                goto fail;
            return n;
        }
        if (t->op == '~') {
            /* One-sided formula: '~ rhs'. */
            n = node_new(N_BIN, pos);
            if (!n)
                goto nomem;
            n->op = '~';
            if (lex_next(lx))
                goto fail;
            n->b = parse_expr(lx, infix_bp('~'));
            if (!n->b || !node_height(lx, n))
                goto fail;
            return n;
        }
        return unexpected(lx);
    case T_RPAREN:
        lx->st = ferr(lx->err, pos, "unbalanced parentheses: unexpected ')'");
        return NULL;
    default:
        return unexpected(lx);
    }
nomem:
    lx->st = bh_error_set(lx->err, BH_ENOMEM, "out of memory");
fail:
    node_free(n);
    return NULL;
}

static node *parse_expr_at(lexer *lx, int minbp);

/* The parser recurses once per nesting level: bound it before the stack. */
static node *parse_expr(lexer *lx, int minbp)
{
    if (lx->depth >= BH_FORMULA_MAX_DEPTH) {
        lx->st = ferr(lx->err, lx->tok.pos,
                      "formula nested too deeply: more than %d levels of "
                      "parentheses, calls or operators",
                      BH_FORMULA_MAX_DEPTH);
        return NULL;
    }
    lx->depth++;
    node *n = parse_expr_at(lx, minbp);
    lx->depth--;
    return n;
}

static node *parse_expr_at(lexer *lx, int minbp)
{
    node *lhs = parse_prefix(lx);
    if (!lhs)
        return NULL;
    for (;;) {
        token *t = &lx->tok;
        if (t->k == T_NUM || t->k == T_NAME || t->k == T_LPAREN) {
            node_free(lhs);
            return unexpected(lx);
        }
        if (t->k != T_OP)
            return lhs;
        int bp = infix_bp(t->op);
        if (bp <= minbp)
            return lhs;
        node *n = node_new(N_BIN, t->pos);
        if (!n) {
            node_free(lhs);
            lx->st = bh_error_set(lx->err, BH_ENOMEM, "out of memory");
            return NULL;
        }
        n->op = t->op;
        n->a = lhs;
        if (lex_next(lx)) {
            node_free(n);
            return NULL;
        }
        /* '^' is right-associative and its exponent may carry a unary
         * sign (x^-1), as in R. */
        n->b = parse_expr(lx, t->op == '^' ? BP_UNARY - 1 : bp);
        if (!n->b || !node_height(lx, n)) {
            node_free(n);
            return NULL;
        }
        lhs = n;
    }
}

/* ------------------------------------------------------------- deparse */

static const char *const reserved[] = {
    "if", "else", "repeat", "while", "function", "for", "next", "break",
    "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_",
    "NA_character_", "in", NULL
};

static int syntactic_name(const char *s)
{
    if (!*s)
        return 0;
    unsigned char c = (unsigned char)s[0];
    if (!(isalpha(c) || c == '.'))
        return 0;
    if (c == '.' && isdigit((unsigned char)s[1]))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_'))
            return 0;
    for (size_t i = 0; reserved[i]; i++)
        if (!strcmp(s, reserved[i]))
            return 0;
    return 1;
}

/* Format a number as R's deparse does: the fewest significant digits (at
 * most 15) that reproduce the value to 15 digits, fixed notation unless
 * scientific is strictly narrower. */
static void format_num(char *buf, size_t size, double x)
{
    if (isnan(x)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, size, x > 0 ? "Inf" : "-Inf");
        return;
    }
    if (x == 0) {
        snprintf(buf, size, "0");
        return;
    }
    char ref[40];
    snprintf(ref, sizeof ref, "%.14e", x);
    double r15 = strtod(ref, NULL);
    int sig = 15;
    for (int d = 1; d <= 15; d++) {
        char t[40];
        snprintf(t, sizeof t, "%.*e", d - 1, x);
        if (strtod(t, NULL) == r15) {
            sig = d;
            break;
        }
    }
    char sci[40];
    snprintf(sci, sizeof sci, "%.*e", sig - 1, x);
    /* exponent of the rounded value */
    const char *e = strchr(sci, 'e');
    int kp = atoi(e + 1);
    int neg = x < 0;
    int sciw = neg + (sig > 1 ? sig + 1 : 1) + (abs(kp) >= 100 ? 5 : 4);
    int rgt = sig - kp - 1;
    if (rgt < 0)
        rgt = 0;
    int left = kp >= 0 ? kp + 1 : 1;
    int fixw = neg + left + (rgt ? rgt + 1 : 0);
    if (fixw <= sciw) {
        snprintf(buf, size, "%.*f", rgt, x);
    } else {
        /* C prints at least two exponent digits, as R does. */
        snprintf(buf, size, "%s", sci);
    }
}

typedef struct {
    char *s;
    size_t n, cap;
    int fail;
} sbuf;

static void sb_add(sbuf *b, const char *s)
{
    size_t L = strlen(s);
    if (b->fail)
        return;
    if (b->n + L + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 32);
        while (cap < b->n + L + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->fail = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, L + 1);
    b->n += L;
}

static void deparse_into(sbuf *b, const bh_expr *e)
{
    char num[48];
    switch (e->kind) {
    case BH_EX_NUM:
        format_num(num, sizeof num, e->num);
        sb_add(b, num);
        return;
    case BH_EX_VAR:
        if (syntactic_name(e->name)) {
            sb_add(b, e->name);
        } else {
            sb_add(b, "`");
            sb_add(b, e->name);
            sb_add(b, "`");
        }
        return;
    case BH_EX_NEG:
        sb_add(b, "-");
        deparse_into(b, e->arg[0]);
        return;
    case BH_EX_ADD: case BH_EX_SUB: case BH_EX_MUL: case BH_EX_DIV:
    case BH_EX_POW: {
        static const char *ops[] = {" + ", " - ", " * ", "/", "^"};
        deparse_into(b, e->arg[0]);
        sb_add(b, ops[e->kind - BH_EX_ADD]);
        deparse_into(b, e->arg[1]);
        return;
    }
    case BH_EX_CALL:
        if (strcmp(e->name, "(") != 0)
            sb_add(b, e->name);
        sb_add(b, "(");
        deparse_into(b, e->arg[0]);
        sb_add(b, ")");
        return;
    }
}

char *bh_expr_deparse(const bh_expr *e)
{
    sbuf b = {0};
    sb_add(&b, "");
    deparse_into(&b, e);
    if (b.fail) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ----------------------------------------------------------- bh_expr */

void bh_expr_free(bh_expr *e)
{
    if (!e)
        return;
    bh_expr_free(e->arg[0]);
    bh_expr_free(e->arg[1]);
    free(e->name);
    free(e);
}

bh_expr *bh_expr_copy(const bh_expr *e)
{
    if (!e)
        return NULL;
    bh_expr *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    *c = *e;
    c->name = NULL;
    c->arg[0] = c->arg[1] = NULL;
    if (e->name && !(c->name = xstrdup(e->name)))
        goto fail;
    for (int i = 0; i < 2; i++)
        if (e->arg[i] && !(c->arg[i] = bh_expr_copy(e->arg[i])))
            goto fail;
    return c;
fail:
    bh_expr_free(c);
    return NULL;
}

static bh_expr *expr_new(bh_expr_kind k, size_t pos)
{
    bh_expr *e = calloc(1, sizeof *e);
    if (e) {
        e->kind = k;
        e->pos = pos;
        e->raw = SIZE_MAX;
    }
    return e;
}

static const char *const known_funcs[] = {
    "factor", "I", "log", "exp", "sqrt", "abs", "center", "scale", "offset",
    NULL
};
#define KNOWN_LIST "factor, I, log, exp, sqrt, abs, center, scale, offset"

static int is_known(const char *name)
{
    for (size_t i = 0; known_funcs[i]; i++)
        if (!strcmp(name, known_funcs[i]))
            return 1;
    return 0;
}

/* Convert a syntax subtree to an expression.  `top` is set for a whole
 * variable (where factor() and offset() may appear). */
static bh_status to_expr(const node *n, int top, bh_expr **out, bh_error *err)
{
    bh_expr *e = NULL;
    *out = NULL;
    switch (n->k) {
    case N_NUM:
        if (!(e = expr_new(BH_EX_NUM, n->pos)))
            goto nomem;
        e->num = n->num;
        break;
    case N_NAME:
        if (!(e = expr_new(BH_EX_VAR, n->pos)) || !(e->name = xstrdup(n->name)))
            goto nomem;
        break;
    case N_PAREN:
        if (n->a->k == N_BIN && n->a->op == '|')
            return ferr(err, n->pos,
                        "random-effect term '( | )' cannot be used inside an "
                        "expression");
        if (!(e = expr_new(BH_EX_CALL, n->pos)) || !(e->name = xstrdup("(")))
            goto nomem;
        break;
    case N_UNARY:
        if (n->op == '+')
            return to_expr(n->a, 0, out, err);
        if (!(e = expr_new(BH_EX_NEG, n->pos)))
            goto nomem;
        break;
    case N_BIN: {
        bh_expr_kind k;
        switch (n->op) {
        case '+': k = BH_EX_ADD; break;
        case '-': k = BH_EX_SUB; break;
        case '*': k = BH_EX_MUL; break;
        case '/': k = BH_EX_DIV; break;
        case '^': k = BH_EX_POW; break;
        default:
            return ferr(err, n->pos,
                        "operator '%c' is not allowed inside a function call",
                        n->op);
        }
        if (!(e = expr_new(k, n->pos)))
            goto nomem;
        break;
    }
    case N_CALL:
        if (!is_known(n->name))
            return ferr(err, n->pos, "unknown function '%s' (known: " KNOWN_LIST
                        ")", n->name);
        if (!top && (!strcmp(n->name, "factor") || !strcmp(n->name, "offset")))
            return ferr(err, n->pos, "%s() cannot be used inside an expression",
                        n->name);
        if (!(e = expr_new(BH_EX_CALL, n->pos)) || !(e->name = xstrdup(n->name)))
            goto nomem;
        break;
    }
    if (n->k != N_NUM && n->k != N_NAME) {
        bh_status st = to_expr(n->a, 0, &e->arg[0], err);
        if (st) {
            bh_expr_free(e);
            return st;
        }
        if (n->k == N_BIN && (st = to_expr(n->b, 0, &e->arg[1], err))) {
            bh_expr_free(e);
            return st;
        }
    }
    *out = e;
    return BH_OK;
nomem:
    bh_expr_free(e);
    return bh_error_set(err, BH_ENOMEM, "out of memory");
}

/* ----------------------------------------------------------- term algebra */

typedef struct {
    size_t *v;   /* ascending variable indices */
    size_t n;
} term;

typedef struct {
    term *t;
    size_t n, cap;
    int full;    /* an addition was refused: BH_FORMULA_MAX_TERMS reached */
    /* Open-addressing set of the terms (index + 1, 0 = empty): duplicate
     * checks in constant time, so expanding (a + ... + z)^k is not
     * quadratic in the number of terms. */
    size_t *slot;
    size_t nslot;
} tlist;

static void tlist_free(tlist *l)
{
    free(l->slot);
    l->slot = NULL;
    l->nslot = 0;
    for (size_t i = 0; i < l->n; i++)
        free(l->t[i].v);
    free(l->t);
    l->t = NULL;
    l->n = l->cap = 0;
}

static int term_eq(const term *a, const term *b)
{
    return a->n == b->n && (a->n == 0 || !memcmp(a->v, b->v, a->n * sizeof *a->v));
}

static size_t term_hash(const term *t)
{
    size_t h = 1469598103934665603ull ^ t->n;
    for (size_t i = 0; i < t->n; i++)
        h = (h ^ t->v[i]) * 1099511628211ull;
    return h;
}

/* Rebuild the set for at least `want` terms (load factor <= 1/2). */
static int tlist_rehash(tlist *l, size_t want)
{
    size_t ns = 16;
    while (ns < 2 * want)
        ns *= 2;
    size_t *slot = calloc(ns, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        size_t h = term_hash(&l->t[i]) & (ns - 1);
        while (slot[h])
            h = (h + 1) & (ns - 1);
        slot[h] = i + 1;
    }
    free(l->slot);
    l->slot = slot;
    l->nslot = ns;
    return 0;
}

/* Append a term (the list takes ownership), skipping duplicates (R keeps
 * the first occurrence). */
static int tlist_add(tlist *l, term t)
{
    if (l->n >= BH_FORMULA_MAX_TERMS) {
        free(t.v);
        l->full = 1;
        return -1;
    }
    if (2 * (l->n + 1) > l->nslot && tlist_rehash(l, l->n + 1)) {
        free(t.v);
        return -1;
    }
    size_t h = term_hash(&t) & (l->nslot - 1);
    for (; l->slot[h]; h = (h + 1) & (l->nslot - 1))
        if (term_eq(&l->t[l->slot[h] - 1], &t)) {
            free(t.v);
            return 0;
        }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        term *p = realloc(l->t, cap * sizeof *p);
        if (!p) {
            free(t.v);
            return -1;
        }
        l->t = p;
        l->cap = cap;
    }
    l->slot[h] = l->n + 1;
    l->t[l->n++] = t;
    return 0;
}

static int term_dup(const term *a, term *out)
{
    out->n = a->n;
    out->v = malloc((a->n ? a->n : 1) * sizeof *out->v);
    if (!out->v)
        return -1;
    if (a->n)
        memcpy(out->v, a->v, a->n * sizeof *a->v);
    return 0;
}

static int term_union(const term *a, const term *b, term *out)
{
    out->v = malloc((a->n + b->n + 1) * sizeof *out->v);
    if (!out->v)
        return -1;
    size_t i = 0, j = 0, k = 0;
    while (i < a->n || j < b->n) {
        if (j >= b->n || (i < a->n && a->v[i] < b->v[j]))
            out->v[k++] = a->v[i++];
        else if (i >= a->n || b->v[j] < a->v[i])
            out->v[k++] = b->v[j++];
        else {
            out->v[k++] = a->v[i++];
            j++;
        }
    }
    out->n = k;
    return 0;
}

static int tlist_append_all(tlist *dst, const tlist *src)
{
    for (size_t i = 0; i < src->n; i++) {
        term t;
        if (term_dup(&src->t[i], &t) || tlist_add(dst, t))
            return -1;
    }
    return 0;
}

static int tlist_interact(tlist *dst, const tlist *a, const tlist *b)
{
    /* (a + b + ...)^k grows exponentially and each addition scans for
     * duplicates: refuse before the quadratic work, not after.  Products
     * collapse a lot ((a + ... + m)^13: 4095 x 13 pairs give 8191 terms),
     * hence the factor 16. */
    if (a->n && b->n > 16 * (size_t)BH_FORMULA_MAX_TERMS / a->n) {
        dst->full = 1;
        return -1;
    }
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            term t;
            if (term_union(&a->t[i], &b->t[j], &t) || tlist_add(dst, t))
                return -1;
        }
    return 0;
}

/* Parser state for the right-hand side of one formula. */
typedef struct {
    bh_formula *f;
    size_t capvars, capoff, capre;
    char **resp;              /* response labels (a variable equal to one
                                 of them is an error) */
    size_t nresp;
    bh_error *err;
} rhs_state;

static bh_status nomem(bh_error *err)
{
    return bh_error_set(err, BH_ENOMEM, "out of memory");
}

/* A failed term-list operation on l: too many terms, or out of memory. */
static bh_status tl_fail(rhs_state *rs, const tlist *l, size_t pos)
{
    if (l->full)
        return ferr(rs->err, pos, "the formula expands to more than %d terms",
                    BH_FORMULA_MAX_TERMS);
    return nomem(rs->err);
}

/* Register a variable by label; returns its index in *idx. */
static bh_status add_var(rhs_state *rs, const node *n, size_t *idx)
{
    bh_formula *f = rs->f;
    if (n->k == N_NAME && !n->op && !strcmp(n->name, "."))
        return ferr(rs->err, n->pos,
                    "'.' (all other columns) is not supported; list the "
                    "variables");
    bh_expr *e;
    bh_status st = to_expr(n, 1, &e, rs->err);
    if (st)
        return st;
    char *label = bh_expr_deparse(e);
    if (!label) {
        bh_expr_free(e);
        return nomem(rs->err);
    }
    for (size_t i = 0; i < rs->nresp; i++)
        if (!strcmp(rs->resp[i], label)) {
            bh_expr_free(e);
            free(label);
            return ferr(rs->err, n->pos,
                        "the response '%s' also appears on the right-hand side",
                        rs->resp[i]);
        }
    for (size_t i = 0; i < f->nvars; i++)
        if (!strcmp(f->vars[i].label, label)) {
            bh_expr_free(e);
            free(label);
            *idx = i;
            return BH_OK;
        }
    if (f->nvars == rs->capvars) {
        size_t cap = rs->capvars ? 2 * rs->capvars : 8;
        bh_fvar *p = realloc(f->vars, cap * sizeof *p);
        if (!p) {
            bh_expr_free(e);
            free(label);
            return nomem(rs->err);
        }
        f->vars = p;
        rs->capvars = cap;
    }
    f->vars[f->nvars].label = label;
    f->vars[f->nvars].expr = e;
    f->vars[f->nvars].pos = n->pos;
    *idx = f->nvars++;
    return BH_OK;
}

static bh_status add_offset(rhs_state *rs, const node *n)
{
    bh_formula *f = rs->f;
    bh_expr *e;
    bh_status st = to_expr(n->a, 0, &e, rs->err);
    if (st)
        return st;
    if (f->noffsets == rs->capoff) {
        size_t cap = rs->capoff ? 2 * rs->capoff : 4;
        bh_expr **p = realloc(f->offsets, cap * sizeof *p);
        if (!p) {
            bh_expr_free(e);
            return nomem(rs->err);
        }
        f->offsets = p;
        rs->capoff = cap;
    }
    f->offsets[f->noffsets++] = e;
    return BH_OK;
}

/* Grouping structure of a random-effect term: a list of groups, each a
 * list of column names. */
typedef struct {
    char ***g;
    size_t *len;
    size_t n;
} glist;

static void glist_free(glist *g)
{
    for (size_t i = 0; i < g->n; i++) {
        for (size_t j = 0; j < g->len[i]; j++)
            free(g->g[i][j]);
        free(g->g[i]);
    }
    free(g->g);
    free(g->len);
    g->g = NULL;
    g->len = NULL;
    g->n = 0;
}

static int glist_push(glist *g, char **names, size_t len)
{
    char ***p = realloc(g->g, (g->n + 1) * sizeof *p);
    if (!p)
        return -1;
    g->g = p;
    size_t *q = realloc(g->len, (g->n + 1) * sizeof *q);
    if (!q)
        return -1;
    g->len = q;
    g->g[g->n] = names;
    g->len[g->n] = len;
    g->n++;
    return 0;
}

static char **names_concat(char **a, size_t na, char **b, size_t nb)
{
    char **r = calloc(na + nb + 1, sizeof *r);
    if (!r)
        return NULL;
    for (size_t i = 0; i < na + nb; i++) {
        r[i] = xstrdup(i < na ? a[i] : b[i - na]);
        if (!r[i]) {
            for (size_t j = 0; j < i; j++)
                free(r[j]);
            free(r);
            return NULL;
        }
    }
    return r;
}

/* Grouping factor expression: g, a:b, a/b (= a, a:b). */
static bh_status re_groups(const node *n, glist *out, bh_error *err)
{
    if (n->k == N_PAREN)
        return re_groups(n->a, out, err);
    if (n->k == N_NAME) {
        char **v = calloc(2, sizeof *v);
        if (!v || !(v[0] = xstrdup(n->name)) || glist_push(out, v, 1)) {
            if (v)
                free(v[0]);
            free(v);
            return nomem(err);
        }
        return BH_OK;
    }
    if (n->k == N_BIN && (n->op == ':' || n->op == '/')) {
        glist L = {0}, R = {0};
        bh_status st = re_groups(n->a, &L, err);
        if (!st)
            st = re_groups(n->b, &R, err);
        if (!st && n->op == ':' && (L.n != 1 || R.n != 1))
            st = ferr(err, n->pos, "nested grouping cannot be interacted with ':'");
        if (!st) {
            if (n->op == '/') {
                /* a/b: the outer groups, then each inner group within the
                 * innermost outer group. */
                for (size_t i = 0; i < L.n && !st; i++) {
                    char **c = names_concat(L.g[i], L.len[i], NULL, 0);
                    if (!c || glist_push(out, c, L.len[i]))
                        st = nomem(err);
                }
            }
            size_t base = L.n - 1;
            for (size_t i = 0; i < R.n && !st; i++) {
                char **c = names_concat(L.g[base], L.len[base], R.g[i], R.len[i]);
                if (!c || glist_push(out, c, L.len[base] + R.len[i]))
                    st = nomem(err);
            }
        }
        glist_free(&L);
        glist_free(&R);
        return st;
    }
    return ferr(err, n->pos,
                "a random-effect grouping must be a column name, a:b or a/b");
}

static bh_status add_re(rhs_state *rs, const node *paren)
{
    const node *bar = paren->a;
    const node *l = bar->a;
    while (l->k == N_PAREN)
        l = l->a;
    if (!(l->k == N_NUM && l->num == 1))
        return ferr(rs->err, l->pos,
                    "only random intercepts (1 | g) are supported");
    glist g = {0};
    bh_status st = re_groups(bar->b, &g, rs->err);
    bh_formula *f = rs->f;
    for (size_t i = 0; i < g.n && !st; i++) {
        /* the same grouping twice (a:b from (1|a:b) and (1|a/b)) is one
         * random effect, as duplicate terms are one term */
        int dup = 0;
        for (size_t k = 0; k < f->nre && !dup; k++) {
            dup = f->re[k].ngroup == g.len[i];
            for (size_t j = 0; dup && j < g.len[i]; j++)
                dup = !strcmp(f->re[k].group[j], g.g[i][j]);
        }
        if (dup)
            continue;
        bh_fre *p = realloc(f->re, (f->nre + 1) * sizeof *p);
        if (!p) {
            st = nomem(rs->err);
            break;
        }
        f->re = p;
        sbuf b = {0};
        sb_add(&b, "1 | ");
        for (size_t j = 0; j < g.len[i]; j++) {
            if (j)
                sb_add(&b, ":");
            sb_add(&b, g.g[i][j]);
        }
        if (b.fail) {
            free(b.s);
            st = nomem(rs->err);
            break;
        }
        bh_fre *r = &f->re[f->nre++];
        r->label = b.s;
        r->group = g.g[i];
        r->ngroup = g.len[i];
        r->pos = paren->pos;
        g.g[i] = NULL;
        g.len[i] = 0;
    }
    glist_free(&g);
    return st;
}

/* Expand a right-hand-side subtree into terms (R's terms.formula).  `sign`
 * is -1 inside the right operand of '-', where 1 removes the intercept and
 * 0 restores it. */
static bh_status encode(rhs_state *rs, const node *n, int sign, tlist *out)
{
    bh_status st = BH_OK;
    tlist L = {0}, R = {0};
    switch (n->k) {
    case N_NUM:
        if (n->num == 1)
            rs->f->intercept = sign > 0;
        else if (n->num == 0)
            rs->f->intercept = sign < 0;
        else {
            char num[48];
            format_num(num, sizeof num, n->num);
            return ferr(rs->err, n->pos,
                        "invalid term '%s': only 0 and 1 may stand alone "
                        "(use I() for arithmetic)", num);
        }
        return BH_OK;
    case N_NAME:
    case N_CALL: {
        if (n->k == N_CALL && !strcmp(n->name, "offset")) {
            if (sign < 0)
                return ferr(rs->err, n->pos, "offset() cannot be removed with '-'");
            return add_offset(rs, n);
        }
        size_t idx = 0;
        if ((st = add_var(rs, n, &idx)))
            return st;
        term t = {malloc(sizeof(size_t)), 1};
        if (!t.v)
            return nomem(rs->err);
        t.v[0] = idx;
        if (tlist_add(out, t))
            return tl_fail(rs, out, n->pos);
        return BH_OK;
    }
    case N_PAREN:
        if (n->a->k == N_BIN && n->a->op == '|') {
            if (sign < 0)
                return ferr(rs->err, n->pos,
                            "random-effect terms cannot be removed with '-'");
            return add_re(rs, n);
        }
        return encode(rs, n->a, sign, out);
    case N_UNARY:
        if (n->op == '+')
            return encode(rs, n->a, sign, out);
        /* A leading '-' removes terms from nothing: only its effect on the
         * intercept remains (R: y ~ -1 + x). */
        st = encode(rs, n->a, -sign, &L);
        tlist_free(&L);
        return st;
    case N_BIN:
        break;
    }
    char op = n->op;
    if (op == '~')
        return ferr(rs->err, n->pos, "unexpected '~' on the right-hand side");
    if (op == '|')
        return ferr(rs->err, n->pos,
                    "'|' must be inside parentheses, as in (1 | g), or separate "
                    "the precision formula at the top level");
    if ((st = encode(rs, n->a, sign, &L)))
        goto done;
    if (op == '^') {
        const node *b = n->b;
        while (b->k == N_PAREN)
            b = b->a;
        if (b->k != N_NUM || b->num < 1 || b->num != floor(b->num) ||
            b->num > 64) {
            st = ferr(rs->err, n->b->pos,
                      "the power of terms in (...)^k must be a positive integer");
            goto done;
        }
        int k = (int)b->num;
        if (tlist_append_all(out, &L)) {
            st = tl_fail(rs, out, n->pos);
            goto done;
        }
        for (int i = 1; i < k; i++) {
            tlist cur = {0};
            if (tlist_append_all(&cur, out) || tlist_interact(&cur, out, &L)) {
                st = tl_fail(rs, &cur, n->pos);
                tlist_free(&cur);
                goto done;
            }
            tlist_free(out);
            *out = cur;
        }
        goto done;
    }
    if (op == '-') {
        if ((st = encode(rs, n->b, -sign, &R)))
            goto done;
        for (size_t i = 0; i < L.n; i++) {
            int drop = 0;
            for (size_t j = 0; j < R.n; j++)
                if (term_eq(&L.t[i], &R.t[j]))
                    drop = 1;
            if (!drop) {
                term t;
                if (term_dup(&L.t[i], &t) || tlist_add(out, t)) {
                    st = tl_fail(rs, out, n->pos);
                    goto done;
                }
            }
        }
        goto done;
    }
    if ((st = encode(rs, n->b, sign, &R)))
        goto done;
    int fail = 0;
    switch (op) {
    case '+':
        fail = tlist_append_all(out, &L) || tlist_append_all(out, &R);
        break;
    case ':':
        fail = tlist_interact(out, &L, &R);
        break;
    case '*':
        fail = tlist_append_all(out, &L) || tlist_append_all(out, &R) ||
               tlist_interact(out, &L, &R);
        break;
    case '/': {
        /* a/b = a + b %in% a: every right term joined with all of a's
         * variables. */
        term all = {NULL, 0};
        for (size_t i = 0; i < L.n && !fail; i++) {
            term u;
            if (term_union(&all, &L.t[i], &u))
                fail = 1;
            else {
                free(all.v);
                all = u;
            }
        }
        fail = fail || tlist_append_all(out, &L);
        for (size_t j = 0; j < R.n && !fail; j++) {
            term u;
            fail = term_union(&R.t[j], &all, &u) || tlist_add(out, u);
        }
        free(all.v);
        break;
    }
    default:
        st = ferr(rs->err, n->pos, "unexpected '%c'", op);
        goto done;
    }
    if (fail)
        st = tl_fail(rs, out, n->pos);
done:
    tlist_free(&L);
    tlist_free(&R);
    return st;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static bh_status build_rhs(bh_formula *f, const node *rhs, char **resp,
                           size_t nresp, bh_error *err)
{
    rhs_state rs = {.f = f, .resp = resp, .nresp = nresp, .err = err};
    tlist tl = {0};
    f->intercept = 1;
    bh_status st = encode(&rs, rhs, 1, &tl);
    if (st) {
        tlist_free(&tl);
        return st;
    }
    /* Order by degree, stable in order of appearance. */
    size_t *ord = malloc((tl.n + 1) * sizeof *ord);
    f->terms = calloc(tl.n + 1, sizeof *f->terms);
    if (!ord || !f->terms) {
        free(ord);
        tlist_free(&tl);
        return nomem(err);
    }
    size_t k = 0, maxdeg = 0;
    for (size_t i = 0; i < tl.n; i++)
        if (tl.t[i].n > maxdeg)
            maxdeg = tl.t[i].n;
    for (size_t d = 1; d <= maxdeg; d++)
        for (size_t i = 0; i < tl.n; i++)
            if (tl.t[i].n == d)
                ord[k++] = i;
    for (size_t i = 0; i < k; i++) {
        term *t = &tl.t[ord[i]];
        qsort(t->v, t->n, sizeof *t->v, cmp_size);
        f->terms[i].vars = t->v;
        f->terms[i].nvars = t->n;
        t->v = NULL;
    }
    f->nterms = k;
    free(ord);
    tlist_free(&tl);
    return BH_OK;
}

/* ------------------------------------------------------------ formula */

void bh_formula_free(bh_formula *f)
{
    if (!f)
        return;
    free(f->text);
    for (size_t i = 0; i < f->nlhs; i++) {
        bh_expr_free(f->lhs[i]);
        if (f->lhs_labels)
            free(f->lhs_labels[i]);
    }
    free(f->lhs);
    free(f->lhs_labels);
    for (size_t i = 0; i < f->nvars; i++) {
        free(f->vars[i].label);
        bh_expr_free(f->vars[i].expr);
    }
    free(f->vars);
    for (size_t i = 0; i < f->nterms; i++)
        free(f->terms[i].vars);
    free(f->terms);
    for (size_t i = 0; i < f->noffsets; i++)
        bh_expr_free(f->offsets[i]);
    free(f->offsets);
    for (size_t i = 0; i < f->nre; i++) {
        free(f->re[i].label);
        for (size_t j = 0; j < f->re[i].ngroup; j++)
            free(f->re[i].group[j]);
        free(f->re[i].group);
    }
    free(f->re);
    bh_formula_free(f->phi);
    free(f);
}

/* Split a left-hand side a + b + c into its responses. */
static bh_status build_lhs(bh_formula *f, const node *n, bh_error *err)
{
    if (n->k == N_BIN && n->op == '+') {
        bh_status st = build_lhs(f, n->a, err);
        return st ? st : build_lhs(f, n->b, err);
    }
    bh_expr *e;
    bh_status st = to_expr(n, 0, &e, err);
    if (st)
        return st;
    char *label = bh_expr_deparse(e);
    bh_expr **p = realloc(f->lhs, (f->nlhs + 1) * sizeof *p);
    if (p)
        f->lhs = p;
    char **q = realloc(f->lhs_labels, (f->nlhs + 1) * sizeof *q);
    if (q)
        f->lhs_labels = q;
    if (!label || !p || !q) {
        free(label);
        bh_expr_free(e);
        return nomem(err);
    }
    for (size_t i = 0; i < f->nlhs; i++)
        if (!strcmp(f->lhs_labels[i], label)) {
            free(label);
            bh_expr_free(e);
            return ferr(err, n->pos, "response '%s' is listed twice",
                        f->lhs_labels[i]);
        }
    f->lhs[f->nlhs] = e;
    f->lhs_labels[f->nlhs] = label;
    f->nlhs++;
    return BH_OK;
}

bh_status bh_formula_parse(const char *text, bh_formula **out, bh_error *err)
{
    *out = NULL;
    if (!text)
        return ferr(err, 1, "empty formula");
    const char *p = text;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (!*p)
        return ferr(err, 1, "empty formula");
    lexer lx = {.s = text, .err = err};
    if (lex_next(&lx))
        return lx.st;
    node *root = parse_expr(&lx, 0);
    if (!root) {
        free(lx.tok.name);
        return lx.st ? lx.st : ferr(err, 1, "cannot parse formula");
    }
    if (lx.tok.k != T_END) {
        if (lx.tok.k == T_RPAREN)
            lx.st = ferr(err, lx.tok.pos,
                         "unbalanced parentheses: unexpected ')'");
        else
            unexpected(&lx);
        free(lx.tok.name);
        node_free(root);
        return lx.st;
    }
    free(lx.tok.name);
    if (!(root->k == N_BIN && root->op == '~')) {
        node_free(root);
        return ferr(err, 1, "missing '~' (a formula looks like 'y ~ x1 + x2')");
    }
    if (root->a && root->a->k == N_BIN && root->a->op == '~') {
        size_t at = root->pos;
        node_free(root);
        return ferr(err, at, "unexpected second '~'");
    }
    bh_status st = BH_OK;
    bh_formula *f = calloc(1, sizeof *f);
    if (!f || !(f->text = xstrdup(text))) {
        free(f);
        node_free(root);
        return nomem(err);
    }
    f->intercept = 1;
    /* The response is evaluated like a call's argument (terms.c). */
    if (root->a && root->a->depth > BH_FORMULA_MAX_EXPR_DEPTH) {
        st = ferr(err, root->a->pos, "left-hand side nested too deeply: more than %d levels",
                  BH_FORMULA_MAX_EXPR_DEPTH);
        goto fail;
    }
    if (root->a && (st = build_lhs(f, root->a, err)))
        goto fail;
    const node *rhs = root->b;
    const node *phi = NULL;
    if (rhs->k == N_BIN && rhs->op == '|') {
        phi = rhs->b;
        rhs = rhs->a;
    }
    if ((st = build_rhs(f, rhs, f->lhs_labels, f->nlhs, err)))
        goto fail;
    if (phi) {
        bh_formula *g = calloc(1, sizeof *g);
        if (!g) {
            st = nomem(err);
            goto fail;
        }
        f->phi = g;
        /* The phi text is what follows the top-level '|'. */
        size_t at = root->b->pos;   /* position of the '|' */
        const char *s = text + at;
        while (*s && isspace((unsigned char)*s))
            s++;
        if (!(g->text = xstrdup(s))) {
            st = nomem(err);
            goto fail;
        }
        if ((st = build_rhs(g, phi, f->lhs_labels, f->nlhs, err)))
            goto fail;
        if (g->nre) {
            st = ferr(err, g->re[0].pos,
                      "random-effect terms are not allowed in the precision "
                      "formula");
            goto fail;
        }
    }
    node_free(root);
    *out = f;
    return BH_OK;
fail:
    node_free(root);
    bh_formula_free(f);
    return st;
}

char *bh_formula_term_label(const bh_formula *f, size_t term)
{
    if (!f || term >= f->nterms)
        return NULL;
    sbuf b = {0};
    sb_add(&b, "");
    const bh_fterm *t = &f->terms[term];
    for (size_t i = 0; i < t->nvars; i++) {
        if (i)
            sb_add(&b, ":");
        sb_add(&b, f->vars[t->vars[i]].label);
    }
    if (b.fail) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

bh_formula *bh_formula_copy(const bh_formula *f)
{
    if (!f)
        return NULL;
    bh_formula *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->intercept = f->intercept;
    if (!(c->text = xstrdup(f->text)))
        goto fail;
    if (f->nlhs) {
        c->lhs = calloc(f->nlhs, sizeof *c->lhs);
        c->lhs_labels = calloc(f->nlhs, sizeof *c->lhs_labels);
        if (!c->lhs || !c->lhs_labels)
            goto fail;
        for (size_t i = 0; i < f->nlhs; i++) {
            c->nlhs = i + 1;
            if (!(c->lhs[i] = bh_expr_copy(f->lhs[i])) ||
                !(c->lhs_labels[i] = xstrdup(f->lhs_labels[i])))
                goto fail;
        }
    }
    if (f->nvars) {
        if (!(c->vars = calloc(f->nvars, sizeof *c->vars)))
            goto fail;
        for (size_t i = 0; i < f->nvars; i++) {
            c->nvars = i + 1;
            c->vars[i].pos = f->vars[i].pos;
            if (!(c->vars[i].label = xstrdup(f->vars[i].label)) ||
                !(c->vars[i].expr = bh_expr_copy(f->vars[i].expr)))
                goto fail;
        }
    }
    if (f->nterms) {
        if (!(c->terms = calloc(f->nterms, sizeof *c->terms)))
            goto fail;
        for (size_t i = 0; i < f->nterms; i++) {
            c->nterms = i + 1;
            size_t n = f->terms[i].nvars;
            if (!(c->terms[i].vars = malloc((n ? n : 1) * sizeof(size_t))))
                goto fail;
            memcpy(c->terms[i].vars, f->terms[i].vars, n * sizeof(size_t));
            c->terms[i].nvars = n;
        }
    }
    if (f->noffsets) {
        if (!(c->offsets = calloc(f->noffsets, sizeof *c->offsets)))
            goto fail;
        for (size_t i = 0; i < f->noffsets; i++) {
            c->noffsets = i + 1;
            if (!(c->offsets[i] = bh_expr_copy(f->offsets[i])))
                goto fail;
        }
    }
    if (f->nre) {
        if (!(c->re = calloc(f->nre, sizeof *c->re)))
            goto fail;
        for (size_t i = 0; i < f->nre; i++) {
            c->nre = i + 1;
            c->re[i].pos = f->re[i].pos;
            if (!(c->re[i].label = xstrdup(f->re[i].label)) ||
                !(c->re[i].group = names_concat(f->re[i].group, f->re[i].ngroup,
                                                NULL, 0)))
                goto fail;
            c->re[i].ngroup = f->re[i].ngroup;
        }
    }
    if (f->phi && !(c->phi = bh_formula_copy(f->phi)))
        goto fail;
    return c;
fail:
    bh_formula_free(c);
    return NULL;
}
