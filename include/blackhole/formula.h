/* formula.h - parse R/Wilkinson model formulas.
 *
 * Parsing is purely syntactic: no data is needed.  Binding to data and
 * training stateful transforms happen in terms.h.
 *
 * Grammar (R semantics):
 *   formula := [lhs] '~' rhs ['|' rhs]        top-level '|' starts the
 *                                             precision (phi) formula
 *   lhs     := expr ('+' expr)*               several responses (Dirichlet)
 *   rhs     := sum of terms built with  + - * : / ^ ( )  1  0
 *              and random-effect terms (1 | g), (1 | a/b)
 * Variables are identifiers (letters, digits, '.', '_'; or `backquoted`)
 * or calls: factor(v), I(expr), log(e), exp(e), sqrt(e), abs(e),
 * center(e), scale(e), offset(e).  Arithmetic inside calls: + - * / ^ and
 * unary minus, numbers.
 *
 * As in R: '^' between terms is crossing, so y ~ x^2 is y ~ x (use I(x^2));
 * unary plus is accepted (y ~ a + + b is y ~ a + b); a term that appears
 * twice is kept once; a variable removed with '-' still counts as used
 * (listwise deletion), as R's model.frame does.  Not supported: '.',
 * '%in%', functions other than those listed, calls with several arguments,
 * random slopes.  Unary plus inside a call is dropped from labels (R would
 * print "I(+x)").
 *
 * Ownership: bh_formula_free() releases everything reachable from the
 * formula.  bh_expr trees are owned by the structure that points to them.
 */
#ifndef BH_FORMULA_H
#define BH_FORMULA_H

#include <stddef.h>
#include "blackhole/status.h"

typedef enum {
    BH_EX_NUM,    /* numeric literal                     */
    BH_EX_VAR,    /* raw data column (name)              */
    BH_EX_NEG,    /* unary minus: arg[0]                  */
    BH_EX_ADD, BH_EX_SUB, BH_EX_MUL, BH_EX_DIV, BH_EX_POW, /* arg[0] op arg[1] */
    BH_EX_CALL    /* name(arg[0]); name "(" is a pair of
                     parentheses kept from the source, so
                     that deparse reproduces R's labels    */
} bh_expr_kind;

typedef struct bh_expr {
    bh_expr_kind kind;
    double num;               /* BH_EX_NUM                                  */
    char *name;               /* BH_EX_VAR column name, BH_EX_CALL function */
    struct bh_expr *arg[2];
    size_t pos;               /* 1-based column of the node in the text     */
    /* Raw-variable index (into the owning bh_terms' rawvars) once bound;
     * SIZE_MAX before. */
    size_t raw;
    /* State of stateful calls, filled when trained on data:
     * center(e): state[0] = mean; scale(e): state[0] = mean, state[1] = sd. */
    double state[2];
    int trained;
} bh_expr;

/* A distinct right-hand-side variable: "x", "factor(g)", "I(x^2)". */
typedef struct {
    char *label;              /* R's deparse of the expression */
    bh_expr *expr;
    size_t pos;               /* where it first appears (1-based column) */
} bh_fvar;

/* A term: an interaction of variables (ascending indices into vars). */
typedef struct {
    size_t *vars;
    size_t nvars;
} bh_fterm;

/* A random-effect term (1 | g) or, after expanding nesting, (1 | a:b).
 * Only random intercepts are parsed for now; `slopes` is reserved. */
typedef struct {
    char *label;              /* "1 | rep_id", "1 | firm:rep_id"       */
    char **group;             /* raw column names whose interaction is */
    size_t ngroup;            /*   the grouping factor                 */
    size_t pos;
} bh_fre;

typedef struct bh_formula {
    char *text;               /* the formula as given                       */
    bh_expr **lhs;            /* responses                                  */
    char **lhs_labels;
    size_t nlhs;
    int intercept;            /* 1 unless removed with -1 / +0 / 0          */
    bh_fvar *vars;            /* RHS variables in order of first appearance */
    size_t nvars;
    bh_fterm *terms;          /* R order: by degree, then by appearance     */
    size_t nterms;
    bh_expr **offsets;        /* offset(e) terms                             */
    size_t noffsets;
    bh_fre *re;               /* random-effect terms                        */
    size_t nre;
    struct bh_formula *phi;   /* precision formula after a top-level '|'    */
} bh_formula;

/* Limits that keep hostile or generated formulas from exhausting the stack
 * or the time: the syntax tree may be at most BH_FORMULA_MAX_DEPTH levels
 * high (parentheses, calls, unary signs and each operator of a chain such
 * as a + b + c count one level each), and the right-hand side may expand
 * to at most BH_FORMULA_MAX_TERMS terms (e.g. (a + ... + t)^20 would give
 * 2^20 - 1).  All three limits are BH_EFORMULA errors. */
#define BH_FORMULA_MAX_DEPTH 5000
#define BH_FORMULA_MAX_TERMS 10000
/* A call and its argument (I(...), log(...), nested calls) may be at most
 * this many levels deep: such expressions are evaluated recursively. */
#define BH_FORMULA_MAX_EXPR_DEPTH 256

/* Parse `text`.  Errors are BH_EFORMULA with messages of the form
 * "formula:1:9: unexpected ')'" and error->column set. */
bh_status bh_formula_parse(const char *text, bh_formula **out, bh_error *err);
void bh_formula_free(bh_formula *f);

/* Label of a term: its variables' labels joined by ':'.  Returns a pointer to
 * a malloc'ed string the caller frees, or NULL on allocation failure. */
char *bh_formula_term_label(const bh_formula *f, size_t term);

/* R-style deparse of an expression into a new string ("I(x^2)",
 * "log(x + 1)"); the caller frees it. */
char *bh_expr_deparse(const bh_expr *e);

/* Deep copy of an expression (including trained state) or NULL on ENOMEM. */
bh_expr *bh_expr_copy(const bh_expr *e);
void bh_expr_free(bh_expr *e);

/* Deep copy of a whole formula, or NULL on ENOMEM. */
bh_formula *bh_formula_copy(const bh_formula *f);

#endif
