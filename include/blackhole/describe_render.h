/* describe_render.h - present descriptive results ("Table 1"): summary
 * statistics, level counts, the correlation matrix (lower triangle with
 * stars) and scale reliabilities, in every output format.  Presentation
 * only: the numbers come from describe.h. */
#ifndef BH_DESCRIBE_RENDER_H
#define BH_DESCRIBE_RENDER_H

#include <stdio.h>
#include "blackhole/describe.h"
#include "blackhole/table.h"

typedef struct {
    const bh_describe_result *res;
    const bh_scale_result *scales;
    size_t nscales;
    int digits;               /* decimals in text/md/latex/html tables */
} bh_describe_report;

/* Text, Markdown, LaTeX, HTML: a series of tables.  CSV: one long table
 * section,group,variable,with,statistic,value.  JSON: one object. */
bh_status bh_describe_render(const bh_describe_report *rp, bh_format fmt, FILE *out,
                             bh_error *err);

#endif
