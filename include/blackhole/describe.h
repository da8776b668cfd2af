/* describe.h - descriptive statistics of a frame ("Table 1") and
 * multi-item scales (Cronbach's alpha, composite scores).
 *
 * Ownership: a bh_describe_result owns every name, label, count and matrix
 * it points to (copied from the frame, so it outlives the frame);
 * bh_describe_free() releases it all.  A bh_scale_result owns its members;
 * bh_scale_result_free() releases them (not the struct itself).
 *
 * Definitions (chosen to match R):
 *   numeric   n = non-missing count; mean; sd with divisor n-1 (sd());
 *             min, quartiles and max as quantile(x, type = 7), which is
 *             also what summary() shows.  n = 0 gives NAN everywhere,
 *             n = 1 gives sd = NAN.
 *   categorical  counts per level in frame level order, and missing.
 *   correlation  Pearson r over pairwise complete observations, as
 *             cor(use = "pairwise.complete.obs"); p = two-sided p-value of
 *             cor.test (t = r sqrt((n-2)/(1-r^2)) on n-2 df; |r| = 1 gives
 *             p = 0).  r = NAN when n < 2 or a variance is zero; p = NAN
 *             when n < 3 or r is NAN.  The diagonal holds r = 1 (NAN for a
 *             constant or near-empty variable), n = non-missing count and
 *             p = NAN.
 *   alpha     raw Cronbach's alpha on the complete cases of the items:
 *             k/(k-1) (1 - sum var(item) / var(sum of items)), as
 *             psych::alpha()$total$raw_alpha on complete data.
 */
#ifndef BH_DESCRIBE_H
#define BH_DESCRIBE_H

#include <stddef.h>
#include "blackhole/status.h"
#include "blackhole/frame.h"

#define BH_DESCRIBE_MAX_GROUPS 50

typedef struct {
    /* Variables to describe, in this order.  NULL (or nvars == 0): every
     * column of the frame in frame order, except the grouping variable. */
    const char *const *vars;
    size_t nvars;
    /* Grouping variable or NULL.  Categorical: one group per level (level
     * order).  Numeric: one group per distinct value (ascending).  Rows
     * where it is missing belong to no group (counted in by_missing). */
    const char *by;
    int correlations;     /* compute the correlation matrix (default 1)   */
    size_t max_groups;    /* more groups than this is an error (default
                             BH_DESCRIBE_MAX_GROUPS, 0 = no limit): guards
                             against grouping by a continuous variable */
} bh_describe_options;

void bh_describe_default_options(bh_describe_options *opt);

/* One described variable. */
typedef struct {
    char *name;
    bh_coltype type;
    size_t nlevels;       /* categorical: number of levels, else 0  */
    char **levels;        /* categorical: level strings, else NULL  */
} bh_describe_var;

/* Statistics of one variable within one group of rows. */
typedef struct {
    size_t n;             /* non-missing values                    */
    size_t missing;
    /* numeric only (NAN for categorical variables) */
    double mean, sd, min, q1, median, q3, max;
    /* categorical only: nlevels counts in level order, else NULL */
    size_t *counts;
} bh_describe_stats;

typedef struct {
    char *label;          /* level of the grouping variable; NULL overall */
    size_t nrow;          /* rows in the group                           */
    bh_describe_stats *stats;   /* one per described variable            */
} bh_describe_group;

typedef struct {
    size_t nvars;
    bh_describe_var *vars;

    bh_describe_group overall;  /* all rows of the frame                  */

    char *by;             /* grouping variable, NULL without grouping     */
    size_t by_missing;    /* rows with the grouping variable missing      */
    size_t ngroups;
    bh_describe_group *groups;

    /* Correlations of the numeric described variables (all rows, never by
     * group).  cor_var[a] is the index into vars of matrix row/column a;
     * r, p and n are ncor x ncor, row-major: element (a, b) at a*ncor+b. */
    size_t ncor;
    size_t *cor_var;
    double *cor_r;
    double *cor_p;
    size_t *cor_n;
} bh_describe_result;

/* Describe the frame.  Errors: BH_EUSAGE for an unknown variable in
 * opt->vars or opt->by (with a "did you mean" suggestion), a variable
 * listed twice, or too many groups; BH_EDATA when the grouping variable
 * has no non-missing value; BH_ENOMEM. opt may be NULL (defaults). */
bh_status bh_describe_run(const bh_frame *f, const bh_describe_options *opt,
                          bh_describe_result **out, bh_error *err);
void bh_describe_free(bh_describe_result *res);

/* Pearson correlation with the cor.test p-value, over the rows where both
 * x and y are present (missing = NAN).  Returns the number of pairs used.
 * r and p follow the definitions at the top of this file. */
size_t bh_describe_cor(const double *x, const double *y, size_t n,
                       double *r, double *p);

/* The two-sided cor.test p-value of a Pearson r from n pairs (NAN when
 * n < 3 or r is NAN; 0 when |r| = 1). */
double bh_describe_cor_pvalue(double r, size_t n);

/* Type-7 sample quantile (R's default) of the n values in x, which must be
 * sorted ascending and free of NAN; prob in [0, 1].  NAN when n == 0. */
double bh_describe_quantile_sorted(const double *x, size_t n, double prob);

/* A multi-item scale. */
typedef struct {
    char *name;
    size_t k;                 /* number of items                          */
    char **items;             /* k item names                              */
    size_t n_complete;        /* rows with every item present             */
    size_t n_scored;          /* rows with at least one item present      */
    double alpha;             /* raw alpha on the complete cases          */
    /* k values: alpha of the remaining k-1 items on the same complete
     * cases (NAN when k == 2: alpha of one item is undefined). */
    double *alpha_if_deleted;
} bh_scale_result;

/* Score a scale: compute alpha (and alpha if item deleted) of the items,
 * and add to the frame a numeric column `name` holding, per row, the mean
 * of the non-missing items (missing when all items are missing).
 * alpha is NAN (not an error) when fewer than 2 complete cases remain or
 * the total has zero variance.  out may be NULL; when given it is filled
 * (also partially on failure, so always call bh_scale_result_free).
 * Errors (BH_EUSAGE): empty name, a column `name` already exists, fewer
 * than 2 items, an item listed twice, an unknown item (with suggestion) or
 * a categorical item.  On error the frame is unchanged. */
bh_status bh_scale_score(bh_frame *f, const char *name,
                         const char *const *items, size_t k,
                         bh_scale_result *out, bh_error *err);
void bh_scale_result_free(bh_scale_result *s);

/* Score a scale into column col of f, an existing numeric column (named
 * after the scale), overwriting its values with exactly those
 * bh_scale_score would add; no reliabilities.  For a caller that scores
 * the same scale into frames refilled in place (simulate, once per
 * replication): nothing is allocated for up to 32 items, unless the
 * column's values were released (bh_frame_release_column), which are
 * allocated again.  Errors (BH_EUSAGE): the item errors of
 * bh_scale_score, a categorical column col, col among the items; col out
 * of range is BH_EINTERNAL.  On error the column is unchanged. */
bh_status bh_scale_score_into(bh_frame *f, size_t col, const char *const *items, size_t k,
                              bh_error *err);

/* Parse a scale specification "name=item1,item2,..." (spaces around names
 * are ignored).  On success *name and *items (k strings) are malloc'ed and
 * owned by the caller; free with bh_scale_spec_free.  BH_EUSAGE on a
 * missing '=', an empty name or an empty item. */
bh_status bh_scale_spec_parse(const char *spec, char **name, char ***items,
                              size_t *k, bh_error *err);
void bh_scale_spec_free(char *name, char **items, size_t k);

#endif
