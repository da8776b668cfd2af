/* handdesign.h - designs built by hand for the estimator suites (no
 * formula layer), and the R reference cases of tests/fixtures/lm. */
#ifndef BH_HANDDESIGN_H
#define BH_HANDDESIGN_H

#include <stddef.h>
#include "blackhole/design.h"
#include "blackhole/fit.h"

/* A hand-built design owning its arrays (x, y, w, offset, cluster) and
 * column names. */
typedef struct {
    bh_design d;
    char **names;
} bht_design;

bht_design *bht_design_new(size_t n, size_t p);
void bht_design_free(bht_design *t);
void bht_design_name(bht_design *t, size_t j, const char *s);
/* bh_lm_fit with the design's names (tol > 0 overrides the rank tolerance);
 * fails the test on error. */
bh_fit *bht_lm_fit(bht_design *t, double tol);
/* The design of R reference case `name` (tests/fixtures/lm/lm_cases.csv and
 * its data file), clustered by the case's cluster column. */
bht_design *bht_rcase_design(const char *name);

#endif
