/* replicate.h - run everything a study spec declares and write a
 * replication package: Table 1 (descriptives, correlations, scale
 * reliabilities), the model tables, margins, figures, a scorecard that says
 * finding by finding whether the published result replicates, and a report
 * (Markdown and HTML) tying it together.
 *
 * Steps, in order: read the data files (spec paths, or overrides), apply
 * the spec's column mapping (data columns take the spec's names), check
 * that every needed column exists (one message listing all that are
 * missing), score the scales, describe (Table 1, on the raw scale), apply
 * the transforms (mean-centring, standardising), estimate every model,
 * evaluate every finding on its scale, draw every figure, write the report.
 *
 * Verdicts: "replicated" (significant at 5% with the published sign),
 * "opposite sign" (significant with the other sign), "not significant".
 * Findings the paper did not report (sign = none) are estimated and shown
 * in the report but not scored.
 *
 * The library writes files only under opt->out_dir and reports progress
 * through a callback; it never prints.
 */
#ifndef BH_REPLICATE_H
#define BH_REPLICATE_H

#include <stddef.h>
#include "blackhole/model.h"
#include "blackhole/status.h"
#include "blackhole/study.h"

typedef void (*bh_progress_fn)(void *ctx, const char *message);

typedef struct {
    const char *data_dir;     /* directory holding the spec's data files
                                 (their base names), or NULL             */
    const char *reps;         /* explicit unit-level file, or NULL       */
    const char *leads;        /* explicit lead-level file, or NULL       */
    const char *out_dir;      /* default "out"                           */
    int render;               /* render figures (PNG + SVG) when gnuplot
                                 is available (default 1)                */
    const char *version;      /* program version for the report          */
    const char *command;      /* the command line, for the report        */
    bh_progress_fn progress;
    void *progress_ctx;
} bh_replicate_options;

void bh_replicate_default_options(bh_replicate_options *opt);

/* One scorecard row. */
typedef struct {
    char *finding, *claim, *term, *model, *scale, *component;
    int expected_sign;        /* +1, -1; 0 = not reported (not scored)   */
    double estimate, conf_low, conf_high, p_value;
    char *verdict;            /* replicated / not significant / opposite sign */
} bh_score;

typedef struct {
    bh_score *scores;
    size_t nscores;
    size_t replicated, scored;
    char **files;             /* files written, relative to out_dir      */
    size_t nfiles;
    char **notices;           /* e.g. "gnuplot not found: scripts only"  */
    size_t nnotices;
} bh_replicate_result;

/* The estimation spec of the study's model m: formula with the spec's
 * transforms applied (variables under [transform] center become
 * center(v), standardize scale(v)), a random intercept term when the model
 * names one, family, link, vcov and Dirichlet settings.  *formula is the
 * malloc'ed formula text sp->formula points to (free it after use). */
bh_status bh_study_model_spec(const bh_study *st, size_t m, bh_model_spec *sp,
                              char **formula, bh_error *err);

/* Does a fitted term ("center(experience):center(prequal)") name the same
 * set of variables as a finding's term ("experience:prequal")?  Order and
 * the center()/scale() wrappers of the spec's transforms do not matter. */
int bh_study_term_matches(const char *fit_term, const bh_study_finding *fd);

bh_status bh_replicate_run(const bh_study *study, const bh_replicate_options *opt,
                           bh_replicate_result **out, bh_error *err);
void bh_replicate_result_free(bh_replicate_result *r);

#endif
