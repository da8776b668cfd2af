/* test_fit.c - the generic result type: allocation, strings, warnings,
 * scores and the coefficient table (bh_fit_summarize against R's pt/qt/
 * pnorm/qnorm, tests/fixtures/lm/fit_summary.csv written by
 * tests/fixtures/r/lm_fit_summary.R). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "blackhole/fit.h"

Test(fit, alloc_defaults)
{
    bh_fit *f = bh_fit_alloc(3, 5, 1, 2);
    cr_assert_not_null(f);
    cr_expect_eq(f->p, 3);
    cr_expect_eq(f->nrows, 5);
    cr_expect_eq(f->nblocks, 2);
    cr_expect(isnan(f->beta[2]) && isnan(f->vcov[8]) && isnan(f->bread[0]));
    cr_expect(isnan(f->stats.r2) && isnan(f->stats.auc));
    cr_expect(isinf(f->df_inference));
    cr_expect_str_eq(f->component[1], "");
    cr_expect_null(f->term[0]);
    cr_expect_not_null(f->u);
    cr_expect_not_null(f->fitted);
    cr_expect_null(f->hat);
    cr_expect_null(f->scores);
    bh_fit_free(f);
    bh_fit_free(NULL);
    f = bh_fit_alloc(0, 0, 0, 0); /* degenerate sizes still allocate */
    cr_assert_not_null(f);
    bh_fit_free(f);
}

Test(fit, strings_and_warnings)
{
    bh_fit *f = bh_fit_alloc(1, 0, 0, 0);
    cr_assert_eq(bh_fit_set_string(&f->name, "model A"), BH_OK);
    cr_assert_eq(bh_fit_set_string(&f->name, "model B"), BH_OK);
    cr_expect_str_eq(f->name, "model B");
    cr_assert_eq(bh_fit_set_string(&f->name, NULL), BH_OK);
    cr_expect_null(f->name);
    cr_assert_eq(bh_fit_warn(f, "first %d", 1), BH_OK);
    cr_assert_eq(bh_fit_warn(f, "%s", "second"), BH_OK);
    cr_assert_eq(f->nwarnings, 2);
    cr_expect_str_eq(f->warnings[0], "first 1");
    cr_expect_str_eq(f->warnings[1], "second");
    bh_fit_free(f);
}

/* Scores from two blocks (coefficients 0-1 and 2) and from explicit scores;
 * aliased coefficients score 0.  Expected values are x * u by hand. */
Test(fit, scores)
{
    double x0[] = {1, 1, 1, 2, 3, 4}; /* n = 3, 2 columns */
    double x1[] = {5, 6, 7};
    bh_fit *f = bh_fit_alloc(3, 3, 1, 2);
    f->blocks[0] = (bh_score_block){x0, 2, 0};
    f->blocks[1] = (bh_score_block){x1, 1, 2};
    double u[] = {0.5, -1, 2, 10, 20, 30};
    memcpy(f->u, u, sizeof u);
    double s[3];
    bh_fit_score(f, 1, s);
    cr_expect_eq(s[0], -1.0);
    cr_expect_eq(s[1], -3.0);
    cr_expect_eq(s[2], 120.0);
    f->aliased[1] = 1;
    bh_fit_score(f, 2, s);
    cr_expect_eq(s[0], 2.0);
    cr_expect_eq(s[1], 0.0);
    cr_expect_eq(s[2], 210.0);
    f->scores = malloc(9 * sizeof(double));
    for (size_t k = 0; k < 9; k++)
        f->scores[k] = (double)k;
    bh_fit_score(f, 2, s);
    cr_expect_eq(s[0], 2.0);
    cr_expect_eq(s[1], 0.0);
    cr_expect_eq(s[2], 8.0);
    bh_fit_free(f);
}

Test(fit, summarize_against_r)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/lm/fit_summary.csv");
    for (size_t i = 0; i < fx->nrow; i++) {
        bh_fit *f = bh_fit_alloc(2, 0, 0, 0);
        f->beta[0] = bht_fixture_num(fx, i, "beta");
        f->vcov[0] = bht_fixture_num(fx, i, "var");
        f->beta[1] = 1;
        f->aliased[1] = 1;
        const char *df = bht_fixture_str(fx, i, "df");
        f->df_inference = strcmp(df, "Inf") == 0 ? INFINITY : atof(df);
        bh_error err;
        cr_assert_eq(bh_fit_summarize(f, bht_fixture_num(fx, i, "level"), &err), BH_OK);
        bht_assert_rel(f->se[0], bht_fixture_num(fx, i, "se"), 1e-14, "(row %zu)", i);
        bht_assert_rel(f->statistic[0], bht_fixture_num(fx, i, "statistic"), 1e-14, "(row %zu)", i);
        bht_assert_rel(f->p_value[0], bht_fixture_num(fx, i, "p_value"), 1e-9, "(row %zu)", i);
        bht_assert_rel(f->conf_low[0], bht_fixture_num(fx, i, "conf_low"), 1e-10, "(row %zu)", i);
        bht_assert_rel(f->conf_high[0], bht_fixture_num(fx, i, "conf_high"), 1e-10, "(row %zu)", i);
        cr_expect(isnan(f->se[1]) && isnan(f->statistic[1]) && isnan(f->p_value[1]) &&
                  isnan(f->conf_low[1]) && isnan(f->conf_high[1]));
        bh_fit_free(f);
    }
    bht_fixture_free(fx);
}

Test(fit, summarize_bad_level)
{
    bh_fit *f = bh_fit_alloc(1, 0, 0, 0);
    bh_error err;
    cr_expect_eq(bh_fit_summarize(f, 1.0, &err), BH_EUSAGE);
    cr_expect(strstr(err.msg, "level"), "%s", err.msg);
    cr_expect_eq(bh_fit_summarize(f, 0.0, &err), BH_EUSAGE);
    bh_fit_free(f);
}

/* A recycled fit keeps its per-row arrays when they have the rows asked
 * for (and frees them otherwise), keeps the components' text, and writes
 * its next warnings and notes into the strings of the last ones, long
 * messages included. */
Test(fit, recycle_rows_and_messages)
{
    bh_fit *f = bh_fit_alloc(3, 10, 1, 1);
    cr_assert_not_null(f);
    f->rows_cap = 10;
    f->hat = malloc(10 * sizeof *f->hat);
    cr_assert_eq(bh_fit_set_string(&f->component[1], "share_a"), BH_OK);
    cr_assert_eq(bh_fit_warn(f, "first %d", 1), BH_OK);
    cr_assert_eq(bh_fit_note(f, "a note"), BH_OK);
    double *fitted = f->fitted, *hat = f->hat;
    char *w0 = f->warnings[0];
    cr_assert_eq(bh_fit_recycle_rows(f, 4, 1, 10), -1, "another shape is refused");
    cr_assert_eq(bh_fit_recycle_rows(f, 3, 1, 8), 0);
    cr_assert_eq(f->fitted, fitted);
    cr_assert_eq(f->hat, hat);
    cr_assert_eq(f->rows_cap, 10);
    cr_assert_str_eq(f->component[1], "share_a");
    cr_assert_eq(f->nwarnings, 0);
    cr_assert_eq(f->nnotes, 0);
    cr_assert(isnan(f->beta[0]) && isnan(f->vcov[4]));
    cr_assert_eq(bh_fit_warn(f, "second, a little longer: %s", "x"), BH_OK);
    cr_assert_eq(f->warnings[0], w0, "the string is written again");
    cr_assert_str_eq(f->warnings[0], "second, a little longer: x");
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(bh_fit_warn(f, "%s", big), BH_OK);
    cr_assert_eq(bh_fit_warn(f, "third"), BH_OK);
    cr_assert_eq(f->nwarnings, 3);
    cr_assert_str_eq(f->warnings[1], big);
    /* too few rows: the arrays are given back */
    cr_assert_eq(bh_fit_recycle_rows(f, 3, 1, 11), 1);
    cr_assert_null(f->fitted);
    cr_assert_null(f->hat);
    cr_assert_eq(f->rows_cap, 0);
    cr_assert_eq(bh_fit_warn(f, "%s and more", big), BH_OK);
    cr_assert_str_eq(f->warnings[0] + sizeof big - 1, " and more");
    /* bh_fit_recycle resets the components */
    cr_assert_eq(bh_fit_recycle(f, 3, 1), 0);
    cr_assert_str_eq(f->component[1], "");
    bh_fit_free(f);   /* ASan: every kept string freed once */
}
