#!/bin/sh
# robust_1e7.sh - least squares on 10,000,000 rows x 4 columns through the
# library (bh_lm_fit + HC1), checked against coefficients that are exact by
# construction (each design row twice with residuals +d and -d, so X'e = 0
# exactly; see tests/unit/test_robust.c).  Reports time and the largest
# relative error; exits 1 if an estimate or sigma is off by more than 1e-10.
# Needs about 1.2 GB of memory (x, y and the long double workspace).
# Usage: bench/robust_1e7.sh [ROWS]   (run from the repository root; needs
# lib/libblackhole.a: make)
set -eu
ROWS=${1:-10000000}
TMP=${TMPDIR:-/tmp}/bh_robust_bench.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT INT TERM
CC=${CC:-cc}
cat > "$TMP/driver.c" <<'C'
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "blackhole/lm.h"
#include "blackhole/vcov.h"
int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    size_t n = (size_t)atof(argv[1]) / 2 * 2, p = 4, npts = n / 2;
    const double beta[4] = {1, 2, -3, 1e-6}, d = 0.5;
    bh_design D = {0};
    D.n = D.nrow_data = n;
    D.p = p;
    D.m = 1;
    D.x = malloc(n * p * sizeof(double));
    D.y = malloc(n * sizeof(double));
    if (!D.x || !D.y)
        return 2;
    for (size_t k = 0; k < npts; k++) {
        double xr[4] = {1, (double)(k % 997) * 0.001, sin((double)k), (double)(k % 1000003) * 1e3};
        double mu = 0;
        for (size_t j = 0; j < p; j++) {
            D.x[j * n + 2 * k] = D.x[j * n + 2 * k + 1] = xr[j];
            mu += xr[j] * beta[j];
        }
        D.y[2 * k] = mu + d;
        D.y[2 * k + 1] = mu - d;
    }
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bh_fit *fit = NULL;
    bh_error err;
    if (bh_lm_fit(&D, NULL, NULL, &fit, &err) != BH_OK) {
        fprintf(stderr, "fit failed: %s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bh_vcov_spec hc1 = {.kind = BH_VCOV_HC1};
    if (bh_vcov_compute(fit, &hc1, &err) != BH_OK) {
        fprintf(stderr, "vcov failed: %s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    double worst = 0;
    for (size_t j = 0; j < p; j++) {
        double r = fabs(fit->beta[j] / beta[j] - 1);
        worst = r > worst ? r : worst;
    }
    double rs = fabs(fit->stats.sigma / (d * sqrt((double)n / (double)(n - p))) - 1);
    printf("rows %zu: fit %.2f s, HC1 %.2f s; max rel error beta %.2e, sigma %.2e\n", n,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9,
           (t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) * 1e-9, worst, rs);
    bh_fit_free(fit);
    return worst > 1e-10 || rs > 1e-10;
}
C
$CC -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iinclude "$TMP/driver.c" lib/libblackhole.a \
    -lgsl -lopenblas -lcsv -linih -ljansson -lm -lpthread -o "$TMP/driver"
"$TMP/driver" "$ROWS"
