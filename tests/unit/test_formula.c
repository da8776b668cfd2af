/* test_formula.c - formula parsing: term algebra and labels against R's
 * terms.formula (tests/fixtures/design/terms.csv, written by
 * tests/fixtures/r/design_terms.R with R 4.2.2), random effects, precision
 * part, copies and every syntax error with its position.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/formula.h"
#include "testutil.h"

static bh_formula *parse_ok(const char *text)
{
    bh_formula *f = NULL;
    bh_error err = {0};
    cr_assert_eq(bh_formula_parse(text, &f, &err), BH_OK, "%s: %s", text, err.msg);
    cr_assert_not_null(f);
    return f;
}

/* Term labels joined by ';' (as the fixture stores them). */
static char *joined_labels(const bh_formula *f)
{
    char *s = calloc(4096, 1);
    for (size_t i = 0; i < f->nterms; i++) {
        char *l = bh_formula_term_label(f, i);
        if (i)
            strcat(s, ";");
        strcat(s, l);
        free(l);
    }
    return s;
}

Test(formula, terms_match_R)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/design/terms.csv");
    cr_assert_geq(fx->nrow, 25);
    for (size_t r = 0; r < fx->nrow; r++) {
        const char *text = bht_fixture_str(fx, r, "formula");
        bh_formula *f = parse_ok(text);
        char *got = joined_labels(f);
        cr_assert_str_eq(got, bht_fixture_str(fx, r, "labels"), "%s", text);
        cr_assert_eq(f->intercept, atoi(bht_fixture_str(fx, r, "intercept")), "%s", text);
        char off[1024] = "";
        for (size_t k = 0; k < f->noffsets; k++) {
            char *d = bh_expr_deparse(f->offsets[k]);
            if (k)
                strcat(off, ";");
            strcat(off, "offset(");
            strcat(off, d);
            strcat(off, ")");
            free(d);
        }
        cr_assert_str_eq(off, bht_fixture_str(fx, r, "offsets"), "%s", text);
        /* a copy is equal */
        bh_formula *c = bh_formula_copy(f);
        char *got2 = joined_labels(c);
        cr_assert_str_eq(got2, got);
        cr_assert_eq(c->intercept, f->intercept);
        free(got2);
        bh_formula_free(c);
        free(got);
        bh_formula_free(f);
    }
    bht_fixture_free(fx);
}

Test(formula, variables_in_order_of_appearance)
{
    bh_formula *f = parse_ok("y ~ c:b:a + a:b + d + factor(g) + I(x^2)");
    const char *want[] = {"c", "b", "a", "d", "factor(g)", "I(x^2)"};
    cr_assert_eq(f->nvars, 6);
    for (size_t i = 0; i < 6; i++)
        cr_assert_str_eq(f->vars[i].label, want[i]);
    cr_assert_eq(f->vars[0].pos, 5);
    cr_assert_eq(f->vars[4].pos, 23);
    cr_assert_eq(f->vars[4].expr->kind, BH_EX_CALL);
    cr_assert_str_eq(f->vars[4].expr->name, "factor");
    cr_assert_eq(f->vars[4].expr->arg[0]->raw, SIZE_MAX);
    bh_formula_free(f);
}

Test(formula, responses_and_precision_part)
{
    bh_formula *f = parse_ok("y1 + y2 + log(y3) ~ x * z | w + v");
    cr_assert_eq(f->nlhs, 3);
    cr_assert_str_eq(f->lhs_labels[2], "log(y3)");
    cr_assert_eq(f->nterms, 3);
    cr_assert_not_null(f->phi);
    cr_assert_eq(f->phi->nterms, 2);
    cr_assert_eq(f->phi->intercept, 1);
    cr_assert_str_eq(f->phi->text, "w + v");
    cr_assert_str_eq(f->phi->vars[1].label, "v");
    cr_assert_eq(f->phi->vars[1].pos, 33);
    bh_formula *c = bh_formula_copy(f);
    cr_assert_str_eq(c->phi->vars[0].label, "w");
    bh_formula_free(c);
    bh_formula_free(f);

    f = parse_ok("~ x");
    cr_assert_eq(f->nlhs, 0);
    cr_assert_eq(f->nterms, 1);
    bh_formula_free(f);
}

Test(formula, random_effects)
{
    bh_formula *f = parse_ok("y ~ x + (1 | firm/rep_id) + (1 | region)");
    cr_assert_eq(f->nterms, 1);
    cr_assert_eq(f->nvars, 1);
    cr_assert_eq(f->nre, 3);
    cr_assert_str_eq(f->re[0].label, "1 | firm");
    cr_assert_str_eq(f->re[1].label, "1 | firm:rep_id");
    cr_assert_eq(f->re[1].ngroup, 2);
    cr_assert_str_eq(f->re[1].group[0], "firm");
    cr_assert_str_eq(f->re[1].group[1], "rep_id");
    cr_assert_str_eq(f->re[2].label, "1 | region");
    bh_formula_free(f);
    f = parse_ok("y ~ (1 | a:b) + (1 | a/b/c)");
    cr_assert_eq(f->nre, 3);  /* a:b only once */
    cr_assert_str_eq(f->re[2].label, "1 | a:b:c");
    bh_formula_free(f);
}

Test(formula, deparse_numbers_and_names)
{
    /* Labels as R 4.2.2 deparse prints them (see terms.csv for more). */
    bh_formula *f = parse_ok("y ~ `my var` + I(x * 1e-8) + I(x^0.5) + I(x + 2.5e10) + I(x*1e15) + I(x * 0.1)");
    cr_assert_str_eq(f->vars[0].label, "`my var`");
    cr_assert_str_eq(f->vars[0].expr->name, "my var");
    cr_assert_str_eq(f->vars[1].label, "I(x * 1e-08)");
    cr_assert_str_eq(f->vars[2].label, "I(x^0.5)");
    cr_assert_str_eq(f->vars[3].label, "I(x + 2.5e+10)");
    cr_assert_str_eq(f->vars[4].label, "I(x * 1e+15)");
    cr_assert_str_eq(f->vars[5].label, "I(x * 0.1)");
    bh_formula_free(f);
    /* the same variable written with other spacing is one variable */
    f = parse_ok("y ~ I(x^2) + I( x ^ 2 ) + log(x+1):I(x^2)");
    cr_assert_eq(f->nvars, 2);
    cr_assert_eq(f->nterms, 2);
    char *l = bh_formula_term_label(f, 1);
    cr_assert_str_eq(l, "I(x^2):log(x + 1)");
    free(l);
    bh_formula_free(f);
}

static void parse_fails(const char *text, bh_status want, size_t col,
                        const char *msg)
{
    bh_formula *f = (bh_formula *)1;
    bh_error err = {0};
    bh_status st = bh_formula_parse(text, &f, &err);
    cr_assert_eq(st, want, "%s: got %d (%s)", text, st, err.msg);
    cr_assert_null(f, "%s", text);
    cr_assert_eq(err.column, col, "%s: column %zu, want %zu (%s)", text,
                 err.column, col, err.msg);
    cr_assert(strstr(err.msg, msg), "%s: message '%s' lacks '%s'", text,
              err.msg, msg);
}

Test(formula, errors_with_position)
{
    parse_fails("", BH_EFORMULA, 1, "formula:1:1: empty formula");
    parse_fails("   ", BH_EFORMULA, 1, "empty formula");
    parse_fails("y + x", BH_EFORMULA, 1, "missing '~'");
    parse_fails("y ~", BH_EFORMULA, 4, "unexpected end of formula");
    parse_fails("y ~ a +", BH_EFORMULA, 8, "unexpected end of formula");
    parse_fails("y ~ (a + b", BH_EFORMULA, 5, "'(' is never closed");
    parse_fails("y ~ log(a", BH_EFORMULA, 8, "'(' is never closed");
    parse_fails("y ~ a)", BH_EFORMULA, 6, "formula:1:6: unbalanced parentheses: unexpected ')'");
    parse_fails("y ~ a b", BH_EFORMULA, 7, "unexpected 'b'");
    parse_fails("y ~ a $ b", BH_EFORMULA, 7, "unexpected character '$'");
    parse_fails("y ~ foo(x)", BH_EFORMULA, 5,
                "unknown function 'foo' (known: factor, I, log, exp, sqrt, abs, center, scale, offset)");
    parse_fails("y ~ (a + b)^1.5", BH_EFORMULA, 13, "must be a positive integer");
    parse_fails("y ~ (a + b)^c", BH_EFORMULA, 13, "must be a positive integer");
    parse_fails("y ~ 2 + x", BH_EFORMULA, 5, "invalid term '2'");
    parse_fails("y ~ x ~ z", BH_EFORMULA, 7, "unexpected second '~'");
    parse_fails("y ~ x + y", BH_EFORMULA, 9, "response 'y' also appears");
    parse_fails("y ~ log(x, 2)", BH_EFORMULA, 10, "takes one argument");
    parse_fails("y ~ I(a:b)", BH_EFORMULA, 8, "operator ':' is not allowed");
    parse_fails("y ~ I(factor(g))", BH_EFORMULA, 7, "factor() cannot be used inside");
    parse_fails("y ~ x + `abc", BH_EFORMULA, 9, "unterminated backquoted name");
    parse_fails("y ~ x + 1.5e", BH_EFORMULA, 9, "malformed number '1.5e'");
    parse_fails("y ~ ()", BH_EFORMULA, 6, "empty parentheses");
    parse_fails("y ~ log()", BH_EFORMULA, 9, "log() needs an argument");
    parse_fails("y ~ x | z | w", BH_EFORMULA, 7, "'|' must be inside parentheses");
    parse_fails("y ~ (x | g)", BH_EFORMULA, 6, "only random intercepts");
    parse_fails("y ~ (1 | log(g))", BH_EFORMULA, 10, "grouping must be a column name");
    parse_fails("y ~ x | (1 | g)", BH_EFORMULA, 9, "not allowed in the precision");
    parse_fails("y ~ .", BH_EFORMULA, 5, "'.' (all other columns) is not supported");
    parse_fails("y + y ~ x", BH_EFORMULA, 5, "response 'y' is listed twice");
    parse_fails("y ~ x - (1 | g)", BH_EFORMULA, 9, "cannot be removed");
}

Test(formula, unary_plus_is_accepted_as_in_R)
{
    /* R parses 'a + + b' as a + (+b); so do we (explicit choice). */
    bh_formula *f = parse_ok("y ~ a + + b");
    cr_assert_eq(f->nterms, 2);
    bh_formula_free(f);
}

Test(formula, expr_copy_keeps_state)
{
    bh_formula *f = parse_ok("y ~ center(x)");
    bh_expr *e = f->vars[0].expr;
    e->state[0] = 2.5;
    e->trained = 1;
    bh_expr *c = bh_expr_copy(e);
    cr_assert_eq(c->state[0], 2.5);
    cr_assert_eq(c->trained, 1);
    cr_assert_neq(c->arg[0], e->arg[0]);
    char *d = bh_expr_deparse(c);
    cr_assert_str_eq(d, "center(x)");
    free(d);
    bh_expr_free(c);
    bh_formula_free(f);
}
