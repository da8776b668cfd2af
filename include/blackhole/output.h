/* output.h - present fitted models: coefficient tables in every format.
 *
 * Presentation only: nothing here recomputes a statistic; everything
 * printed comes from the bh_fit (see fit.h).
 *
 * The CSV format is a fixed contract other tools rely on:
 *   model,component,term,estimate,std_error,statistic,p_value,conf_low,conf_high
 * one row per coefficient, component empty for single-equation models,
 * numbers in %.17g, "NA" where a value does not exist (aliased terms).
 */
#ifndef BH_OUTPUT_H
#define BH_OUTPUT_H

#include <jansson.h>
#include <stdio.h>
#include "blackhole/status.h"
#include "blackhole/fit.h"
#include "blackhole/table.h"

typedef enum {
    BH_BELOW_SE = 0,          /* (standard error) under each estimate      */
    BH_BELOW_T,               /* [t or z statistic]                        */
    BH_BELOW_CI,              /* [low, high] confidence interval           */
    BH_BELOW_NONE
} bh_below;

struct bh_plot_labels;

typedef struct {
    bh_format format;
    int digits;               /* significant digits in text/md/latex/html */
    int decimals;             /* >= 0: fixed decimals instead of digits    */
    /* Significance stars: thresholds in decreasing order, one more star
     * each ("0.1,0.05,0.01" gives *, **, ***); nstars = 0: none.  The
     * default is R's: . 0.1, * 0.05, ** 0.01, *** 0.001. */
    double stars[4];
    const char *star_marks[4];
    size_t nstars;
    bh_below below;           /* side-by-side tables: what goes under     */
    const struct bh_plot_labels *labels; /* term labels (codebook) or NULL */
    const char *const *omit;  /* terms containing these are left out; a row
                                 "<pattern> effects: yes/no" says so       */
    size_t nomit;
    const char *title;        /* table title or NULL                       */
} bh_output_options;

/* Parse "--stars" values: "none", "r" (the default), "econ" (* 0.1,
 * ** 0.05, *** 0.01) or a list of thresholds "0.05,0.01,0.001". */
bh_status bh_output_parse_stars(const char *s, bh_output_options *opt, bh_error *err);

void bh_output_default_options(bh_output_options *opt);

/* One model: a detailed coefficient table (like R's summary) with the model
 * description and fit statistics.  Several: models side by side, estimates
 * with standard errors in parentheses, statistics rows below. */
bh_status bh_output_fits(FILE *out, const bh_fit *const *fits, size_t nfits,
                         const bh_output_options *opt, bh_error *err);

/* A JSON number, or null for a value that is not finite (JSON has no NaN
 * or infinity). */
json_t *bh_json_num(double v);

/* Significance stars for a p-value with R's thresholds
 * (*** 0.001, ** 0.01, * 0.05, . 0.1). */
const char *bh_stars(double p);
/* The same with the thresholds of opt. */
const char *bh_output_stars(const bh_output_options *opt, double p);

#endif
