/* test_study.c - the study spec reader and validator (study.h).
 *
 * Expected values here are facts of the spec files themselves (counts of
 * sections, names, line numbers of the faults planted in the error
 * fixtures under tests/fixtures/study/, each a copy of minimal.ini with one
 * fault), not output of the code under test. */
#include <stdlib.h>
#include <string.h>

#include "blackhole/study.h"
#include "testutil.h"

#define FX "tests/fixtures/study/"

static void expect_error(const char *path, bh_status st, size_t line, const char *a,
                         const char *b)
{
    bh_study *s = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status r = bh_study_read(path, &s, &err);
    cr_assert_eq(r, st, "%s: status %d (%s)", path, r, err.msg);
    cr_assert_null(s);
    cr_assert_eq(err.line, line, "%s: line %zu, want %zu: %s", path, err.line, line, err.msg);
    cr_assert(strstr(err.msg, path) != NULL, "message lacks the file: %s", err.msg);
    if (a)
        cr_assert(strstr(err.msg, a) != NULL, "message lacks '%s': %s", a, err.msg);
    if (b)
        cr_assert(strstr(err.msg, b) != NULL, "message lacks '%s': %s", b, err.msg);
}

static void expect_string_error(const char *text, size_t line, const char *a)
{
    bh_study *s = NULL;
    bh_error err;
    bh_error_clear(&err);
    bh_status r = bh_study_read_string(text, "t.ini", &s, &err);
    cr_assert_eq(r, BH_EUSAGE, "status %d (%s)", r, err.msg);
    cr_assert_null(s);
    if (line)
        cr_assert_eq(err.line, line, "line %zu, want %zu: %s", err.line, line, err.msg);
    cr_assert(strstr(err.msg, a) != NULL, "message lacks '%s': %s", a, err.msg);
}

Test(study, shipped_spec)
{
    bh_study *s = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_study_read("analysis/sabnis2013.ini", &s, &err), BH_OK, "%s", err.msg);
    cr_assert_str_eq(s->name, "sabnis2013");
    cr_assert_eq(s->seed, 20130101u);
    cr_assert_str_eq(s->reps, "datasets/reps.csv");
    cr_assert_str_eq(s->leads, "datasets/leads.csv");
    cr_assert_eq(s->nscales, 2);
    cr_assert_eq(s->nmodels, 5);
    cr_assert_eq(s->nfindings, 12);
    cr_assert_eq(s->nfigures, 9);
    cr_assert_eq(s->ncenter, 6);
    long m = bh_study_model_index(s, "dirichlet_full");
    cr_assert_geq(m, 0);
    cr_assert_str_eq(s->models[m].family, "dirichlet");
    cr_assert_eq(s->models[m].nresponses, 3);
    cr_assert_str_eq(s->models[m].reference, "share_self");
    cr_assert_str_eq(s->models[m].param, "alternative");
    /* the continued formula was joined */
    cr_assert(strstr(s->models[m].formula, "performance * (prequal") != NULL, "%s",
              s->models[m].formula);
    /* F4: experience x prequal, +, on the marketing share */
    bh_study_finding *f4 = &s->findings[3];
    cr_assert_str_eq(f4->name, "F4");
    cr_assert_eq(f4->sign, 1);
    cr_assert_eq(f4->nterm_vars, 2);
    cr_assert_str_eq(f4->component, "share_marketing");
    cr_assert_eq(f4->model_index, (size_t)m);
    cr_assert_eq(s->findings[8].sign, 0);  /* F9: not reported */
    long fu = bh_study_model_index(s, "followup");
    cr_assert_eq(s->models[fu].data, BH_LEVEL_LEADS);
    cr_assert_str_eq(s->models[fu].random, "rep_id");
    /* DGP */
    cr_assert(s->dgp.present);
    cr_assert_eq(s->dgp.n, 461);
    cr_assert_eq(s->dgp.nlevels, 4);
    cr_assert_str_eq(bh_study_column(s, "experience"), "experience");
    cr_assert_str_eq(bh_study_column(s, "prequal"), "prequal");
    bh_study_free(s);
}

Test(study, minimal_spec)
{
    bh_study *s = NULL;
    bh_error err;
    bh_error_clear(&err);
    cr_assert_eq(bh_study_read(FX "minimal.ini", &s, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(s->seed, 42u);
    cr_assert_eq(s->dgp.nnodes, 3);
    /* y depends on x and q: generated after both */
    size_t pos[3];
    for (size_t k = 0; k < 3; k++)
        pos[s->dgp.order[k]] = k;
    cr_assert_gt(pos[2], pos[0]);
    cr_assert_gt(pos[2], pos[1]);
    bh_dgp_effects *e = &s->dgp.nodes[2].effects[0];
    cr_assert_eq(e->nterms, 2);
    cr_assert_eq(e->terms[1].nnode, 2);
    bh_study_free(s);
}

Test(study, typo_key_with_suggestion)
{
    expect_error(FX "typo_key.ini", BH_EUSAGE, 12, "unknown key 'formla'",
                 "did you mean 'formula'");
}

Test(study, typo_section_with_suggestion)
{
    expect_error(FX "typo_section.ini", BH_EUSAGE, 11, "unknown section [modle m1]",
                 "did you mean [model m1]");
}

Test(study, missing_required_key)
{
    expect_error(FX "missing_key.ini", BH_EUSAGE, 11, "[model m1]", "required key 'family'");
}

Test(study, undefined_model_in_finding)
{
    expect_error(FX "undefined_model.ini", BH_EUSAGE, 15, "model 'm2' is not defined",
                 "did you mean 'm1'");
}

Test(study, scale_lists_itself)
{
    expect_error(FX "circular_scale.ini", BH_EUSAGE, 9, "circular reference", "[scale q]");
}

Test(study, circular_dgp)
{
    /* y depends on x (x = 0.5 in [dgp effects y]) and x on y */
    expect_error(FX "circular_dgp.ini", BH_EUSAGE, 28, "circular reference", "x -> y -> x");
}

Test(study, bad_number_names_line_and_value)
{
    expect_error(FX "bad_number.ini", BH_EUSAGE, 31, "'1.O' is not a finite number",
                 "[dgp var x] sd");
}

Test(study, duplicate_section)
{
    expect_error(FX "duplicate_section.ini", BH_EUSAGE, 48, "[scale q] appears twice",
                 "line 8");
}

Test(study, finding_term_not_in_model)
{
    expect_error(FX "bad_term.ini", BH_EUSAGE, 15, "'g2' is not a predictor", "m1");
}

Test(study, missing_file_is_input_error)
{
    bh_study *s = NULL;
    bh_error err;
    cr_assert_eq(bh_study_read(FX "no_such.ini", &s, &err), BH_EINPUT);
}

#define HEAD "[study]\nname = t\nreps = r.csv\nseed = 1\n"

Test(study, scale_cycle_through_other_scale)
{
    expect_string_error(HEAD "[scale a]\nitems = b, x1\n[scale b]\nitems = a, x2\n", 5,
                        "circular reference");
}

Test(study, repeated_key)
{
    expect_string_error(HEAD "[model m]\nformula = y ~ x\nfamily = gaussian\nformula = y ~ z\n",
                        8, "key 'formula' repeated");
}

Test(study, continuation_is_not_repetition)
{
    bh_study *s = NULL;
    bh_error err;
    cr_assert_eq(bh_study_read_string(HEAD "[model m]\nformula = y ~ x +\n    z\nfamily = "
                                      "gaussian\n", "t.ini", &s, &err),
                 BH_OK, "%s", err.msg);
    cr_assert_str_eq(s->models[0].formula, "y ~ x + z");
    cr_assert_eq(s->models[0].nvars, 3);
    bh_study_free(s);
}

Test(study, syntax_error_line)
{
    expect_string_error(HEAD "[model m]\nthis line has no equals sign\n", 6, "syntax error");
}

Test(study, bad_family_suggests)
{
    expect_string_error(HEAD "[model m]\nformula = y ~ x\nfamily = gausian\n", 7,
                        "did you mean 'gaussian'");
}

Test(study, bad_formula)
{
    expect_string_error(HEAD "[model m]\nformula = y ~ x +\nfamily = gaussian\n", 6,
                        "formula");
}

Test(study, dirichlet_finding_needs_component)
{
    expect_string_error(HEAD "[model d]\nformula = a + b ~ x\nfamily = dirichlet\n"
                             "[finding f]\nclaim = c\nmodel = d\nterm = x\nsign = -\n",
                        8, "say which component");
}

Test(study, unknown_model_variable_with_dgp)
{
    expect_string_error(HEAD "[model m]\nformula = y ~ experiance\nfamily = gaussian\n"
                             "[dgp]\nn = 5\nid = id\ngroup = g\nlevels = a\nprobs = 1\n"
                             "[dgp var experience]\ndist = normal\nmean = 0\nsd = 1\n"
                             "[dgp var y]\ndist = normal\nmean = 0\nsd = 1\n",
                        5, "did you mean 'experience'");
}

Test(study, probs_must_sum_to_one)
{
    expect_string_error(HEAD "[dgp]\nn = 5\nid = id\ngroup = g\nlevels = a, b\nprobs = 0.5, "
                             "0.6\n", 10, "sum to");
}

Test(study, effects_term_unknown_predictor)
{
    expect_string_error(HEAD "[dgp]\nn = 5\nid = id\ngroup = g\nlevels = a\nprobs = 1\n"
                             "[dgp var x]\ndist = normal\nmean = 0\nsd = 1\n"
                             "[dgp effects x]\nexperince*x = 1\n",
                        16, "'experince'");
}

Test(study, check_data_lists_every_missing_column)
{
    bh_study *s = NULL;
    bh_error err;
    cr_assert_eq(bh_study_read("analysis/sabnis2013.ini", &s, &err), BH_OK, "%s", err.msg);
    /* a reps file with only some of the columns the spec needs */
    bh_frame *f = bh_frame_new("mine.csv", 2);
    double v[2] = {1, 2};
    const char *ids[2] = {"a", "b"};
    cr_assert_eq(bh_frame_add_categorical(f, "firm", ids, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "experience", v, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "prequal1", v, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "share_marketing", v, NULL, &err), BH_OK);
    bh_error_clear(&err);
    cr_assert_eq(bh_study_check_data(s, BH_LEVEL_REPS, f, &err), BH_EDATA);
    const char *want[] = {"'prequal2'", "'prequal3'", "'tracking1'", "'tracking2'",
                          "'tracking3'", "'performance'", "'lead_volume'", "'share_self'",
                          "'share_other'"};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        cr_assert(strstr(err.msg, want[k]) != NULL, "lacks %s: %s", want[k], err.msg);
    cr_assert(strstr(err.msg, "9 columns") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "'experience'") == NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "'firm'") == NULL, "%s", err.msg);
    bh_frame_free(f);
    bh_study_free(s);
}

Test(study, check_data_uses_column_mapping)
{
    bh_study *s = NULL;
    bh_error err;
    cr_assert_eq(bh_study_read_string(HEAD "[columns]\nx = my_x\n[model m]\nformula = y ~ x\n"
                                      "family = gaussian\n", "t.ini", &s, &err),
                 BH_OK, "%s", err.msg);
    bh_frame *f = bh_frame_new("d.csv", 1);
    double v[1] = {1};
    cr_assert_eq(bh_frame_add_numeric(f, "y", v, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "x", v, NULL, &err), BH_OK);
    bh_error_clear(&err);
    cr_assert_eq(bh_study_check_data(s, BH_LEVEL_REPS, f, &err), BH_EDATA);
    cr_assert(strstr(err.msg, "'my_x' (spec name 'x'") != NULL, "%s", err.msg);
    bh_frame_free(f);
    f = bh_frame_new("d.csv", 1);
    cr_assert_eq(bh_frame_add_numeric(f, "y", v, NULL, &err), BH_OK);
    cr_assert_eq(bh_frame_add_numeric(f, "my_x", v, NULL, &err), BH_OK);
    cr_assert_eq(bh_study_check_data(s, BH_LEVEL_REPS, f, &err), BH_OK, "%s", err.msg);
    bh_frame_free(f);
    bh_study_free(s);
}

Test(study, overlong_line_names_line)
{
    char text[1024];
    char longv[400];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    snprintf(text, sizeof text, HEAD "[scale s]\nitems = a, %s\n", longv);
    expect_string_error(text, 6, "longer than");
}

Test(study, effects_for_unknown_node)
{
    expect_string_error(HEAD "[dgp]\nn = 5\nid = id\ngroup = g\nlevels = a\nprobs = 1\n"
                             "[dgp var x]\ndist = normal\nmean = 0\nsd = 1\n"
                             "[dgp effects xx]\nintercept = 1\n",
                        15, "did you mean 'x'");
}
