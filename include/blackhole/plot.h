/* plot.h - publication charts as self-contained gnuplot scripts.
 *
 * Charts are built from the CSV contracts of other commands (fit,
 * margins, simulate) or from a fitted model, never by re-estimating
 * anything from those results: the estimators own the statistics, this
 * module owns the picture.  A chart (bh_chart) is a list of numeric data
 * blocks plus gnuplot commands; bh_chart_write() emits one script that
 * reproduces the figure on its own: terminal set-up, the shared theme
 * (bh_plot_theme(), identical to plots/theme.gp), the data as inline
 * blocks, then the plot commands.  Rendering (running gnuplot) is in
 * render.h.
 *
 * Safety: text that comes from data (column names, labels, factor levels,
 * model names, titles, the output path) never appears inside a gnuplot
 * command.  It is stored, one string per line with control characters
 * replaced by spaces, in the data block $bh_text at the top of the script,
 * and commands refer to it as $bh_text[k]: block lines are stored raw, so
 * no macro (@x), backquote (`cmd`) or backslash processing reaches it.
 * (Quoting is not enough with gnuplot 5.4: '' runs are mis-scanned and
 * @name is expanded inside single quotes after a backslash-quote.)  The
 * terminal is `noenhanced`, so _ ^ @ & { } print literally, and '%' is
 * doubled in tic labels (which gnuplot treats as formats).  Every data
 * block's end marker is chosen so that no line of the block equals it.
 *
 * Input contracts (CSV with header; extra columns are ignored):
 *   fit      model,component,term,estimate,std_error,statistic,p_value,
 *            conf_low,conf_high
 *   margins  model,type,term,at,estimate,std_error,statistic,p_value,
 *            conf_low,conf_high; type in ame, mem, slope, prediction,
 *            interaction, jn; at = "x=1.5;m=2" (';'-joined); jn rows carry
 *            the Johnson-Neyman boundary in estimate.
 *   sim power       n,power [,power_se] [,effect_scale] [,model] [,term]
 *                   [,alpha]: one row per design point; one curve per
 *                   (model, term, effect_scale) combination.
 *   sim sampling    replication,n,term,estimate,true [,model]: one row per
 *                   replication and term; one panel per (model, term, n).
 *   codebook column,label [,unit, ...]: axis labels ("label (unit)").
 *
 * Ownership: a bh_chart owns everything in it; bh_chart_free() releases
 * it.  Builders copy what they need from their inputs.
 */
#ifndef BH_PLOT_H
#define BH_PLOT_H

#include <stddef.h>
#include <stdio.h>
#include "blackhole/frame.h"
#include "blackhole/model.h"
#include "blackhole/status.h"

/* Columns of the simulation summaries the `simulate` command writes. */
#define BH_PLOT_SIM_POWER_COLUMNS "n,power,power_se,effect_scale,model,term,alpha"
#define BH_PLOT_SIM_SAMPLING_COLUMNS "replication,n,term,estimate,true,model"

typedef enum {
    BH_PLOT_INTERACTION = 0, BH_PLOT_SLOPES, BH_PLOT_COEF, BH_PLOT_DESCRIBE,
    BH_PLOT_SIM, BH_PLOT_DIAGNOSTICS
} bh_plot_kind;

/* Parse "interaction", "slopes", "coef", "describe", "sim", "diagnostics". */
bh_status bh_plot_kind_parse(const char *s, bh_plot_kind *out, bh_error *err);

/* Axis labels from a codebook: variable name -> display label. */
typedef struct bh_plot_labels {
    size_t n;
    char **column;
    char **label;        /* "label" or "label (unit)"                    */
} bh_plot_labels;

/* Build labels from a codebook frame with columns `column` and `label`
 * (and optionally `unit`).  BH_EINPUT naming `source` when a column is
 * missing. */
bh_status bh_plot_labels_from_frame(const bh_frame *codebook, const char *source,
                                    bh_plot_labels **out, bh_error *err);
void bh_plot_labels_free(bh_plot_labels *l);
/* The label of a variable, or the name itself (labels may be NULL). */
const char *bh_plot_label(const bh_plot_labels *l, const char *column);
/* Display text of a coefficient name: each ':'-part is looked up ("x"),
 * unwrapped ("center(x)" -> "<x> (centred)", "factor(g)2" -> "<g>: 2"), or
 * split at the longest labelled column prefix ("firmbeta" -> "<firm>:
 * beta"); parts are joined with " × ".  Returns a malloc'ed string. */
char *bh_plot_term_label(const bh_plot_labels *l, const char *term);

typedef struct {
    const char *title;        /* NULL: automatic; "" for none              */
    const char *caption;      /* NULL: automatic note (model, vcov, bands) */
    const char *vcov_label;   /* covariance named in the note when the
                                 input does not record it (CSV inputs)     */
    size_t width, height;     /* pixels (png, svg); pdf: 150 px per inch.
                                 0 = 900 x 600                              */
    const char *terminal;     /* script default: "pngcairo" (NULL), "svg"
                                 or "pdfcairo"                              */
    const char *output;       /* image the script writes when run alone;
                                 NULL = "chart.png"                         */
    const bh_plot_labels *labels;   /* may be NULL                          */
    const char *model;        /* margins: the model to draw (NULL: first)  */
    const char *x;            /* interaction: focal variable in `at`
                                 (NULL: first variable)                     */
    const char *const *omit;  /* coef: term patterns to leave out; "^p"
                                 matches terms starting with p, anything
                                 else matches as a substring               */
    size_t nomit;
    const char *const *vars;  /* describe: numeric variables (NULL: all)   */
    size_t nvars;
    size_t bins;              /* describe, sim: histogram bins; 0 = Freedman-
                                 Diaconis, Sturges when the IQR is 0       */
} bh_plot_options;

void bh_plot_default_options(bh_plot_options *opt);

typedef struct bh_chart bh_chart;

/* interaction: predicted response (prediction rows) against x, one line
 * and confidence band per moderator value. */
bh_status bh_plot_interaction(const bh_frame *margins, const bh_plot_options *opt,
                              bh_chart **out, bh_error *err);
/* slopes: conditional effect (slope rows) across the moderator with its
 * band, the zero line and the Johnson-Neyman boundaries (jn rows). */
bh_status bh_plot_slopes(const bh_frame *margins, const bh_plot_options *opt,
                         bh_chart **out, bh_error *err);
/* coef: forest plot of the coefficients of every model in the fit CSVs
 * (nfits frames, each possibly holding several models), dodged. */
bh_status bh_plot_coef(const bh_frame *const *fits, size_t nfits,
                       const bh_plot_options *opt, bh_chart **out, bh_error *err);
/* describe: histograms of numeric variables (small multiples) and a
 * correlation heat map (pairwise complete Pearson r, bh_describe_cor). */
bh_status bh_plot_describe(const bh_frame *data, const bh_plot_options *opt,
                           bh_chart **out, bh_error *err);
/* sim: power curves (power summary) or sampling distributions with the
 * true value marked (sampling summary), chosen by the columns present. */
bh_status bh_plot_sim(const bh_frame *sim, const bh_plot_options *opt,
                      bh_chart **out, bh_error *err);
/* diagnostics of a fitted model: binned residuals (Gelman & Hill) for
 * binomial models; residuals vs fitted and a normal Q-Q plot of
 * standardised residuals for least squares; residuals vs fitted and
 * binned residuals for other GLMs. */
bh_status bh_plot_diagnostics(const bh_model *model, const bh_plot_options *opt,
                              bh_chart **out, bh_error *err);

/* Write the whole script.  BH_EOUTPUT on a write error. */
bh_status bh_chart_write(const bh_chart *c, FILE *out, bh_error *err);
void bh_chart_free(bh_chart *c);

/* The shared theme (the text of plots/theme.gp). */
const char *bh_plot_theme(void);

/* The data-block writer, exposed for tests and other writers. */
/* Write a here-document `$name << MARK ... MARK` holding the n lines,
 * with MARK chosen so that no line equals it. */
void bh_plot_write_datablock(FILE *out, const char *name, const char *const *lines,
                             size_t n);

/* Histogram bins of the n finite values in x (NANs skipped): bin count by
 * Freedman-Diaconis (width 2 IQR n^(-1/3), IQR of R's type-7 quantiles),
 * or Sturges (ceil(log2 n) + 1) when the IQR is 0; `bins` > 0 forces the
 * count.  Bins are equal-width from min to max, the last closed.  On
 * success *lo is the first edge, *width the bin width, *counts (malloc'ed,
 * *nbins entries).  BH_EDATA when there is no finite value. */
bh_status bh_plot_histogram(const double *x, size_t n, size_t bins, double *lo,
                            double *width, size_t **counts, size_t *nbins,
                            bh_error *err);

#endif
