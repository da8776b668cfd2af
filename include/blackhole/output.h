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

#include <stdio.h>
#include "blackhole/status.h"
#include "blackhole/fit.h"
#include "blackhole/table.h"

typedef struct {
    bh_format format;
    int digits;               /* significant digits in text/md/latex/html */
} bh_output_options;

void bh_output_default_options(bh_output_options *opt);

/* One model: a detailed coefficient table (like R's summary) with the model
 * description and fit statistics.  Several: models side by side, estimates
 * with standard errors in parentheses, statistics rows below. */
bh_status bh_output_fits(FILE *out, const bh_fit *const *fits, size_t nfits,
                         const bh_output_options *opt, bh_error *err);

/* Significance stars for a p-value with R's thresholds
 * (*** 0.001, ** 0.01, * 0.05, . 0.1). */
const char *bh_stars(double p);

#endif
