#!/bin/sh
# glmm_vs_glmer.sh - speed and agreement of bh_glmm_fit with lme4::glmer.
#
# Generates 100,000 leads in 2,000 sales reps (R, set.seed(20240615)),
# fits  followed_up ~ quality * experience + tracking * experience +
# (1 | rep_id)  (binomial logit, Laplace) with blackhole (a small C driver
# compiled here against lib/libblackhole.a) and with glmer(nAGQ = 1,
# default control), and prints both times (model fit only, data already in
# memory; the blackhole process total as well), their ratio and the largest
# difference of the fixed effects.  Run from the repository root:
#   sh bench/glmm_vs_glmer.sh            (N=100000 G=2000 by default)
# Needs Rscript with lme4.  LIBBH=path overrides the library.
set -eu
N=${N:-100000}
G=${G:-2000}
CC=${CC:-cc}
LIBBH=${LIBBH:-lib/libblackhole.a}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -f "$LIBBH" ] || make "$LIBBH" >/dev/null

cat > "$tmp/gen.R" <<REOF
set.seed(20240615)
G <- $G; N <- $N
rep_of <- sort(sample(seq_len(G), N, replace = TRUE))
exper <- round(rnorm(G, 5, 2), 2); u <- rnorm(G, 0, 0.8)
d <- data.frame(rep_id = sprintf("r%04d", rep_of), quality = round(rnorm(N), 3),
                experience = exper[rep_of], tracking = rbinom(N, 1, 0.4))
eta <- -0.6 + 0.7 * d\$quality + 0.08 * d\$experience + 0.5 * d\$tracking -
  0.05 * d\$quality * d\$experience - 0.06 * d\$tracking * d\$experience + u[rep_of]
d\$followed_up <- rbinom(N, 1, plogis(eta))
write.csv(d, "$tmp/leads.csv", row.names = FALSE, quote = FALSE)
REOF
Rscript "$tmp/gen.R"

cat > "$tmp/drv.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <gsl/gsl_errno.h>
#include "blackhole/csvread.h"
#include "blackhole/formula.h"
#include "blackhole/design.h"
#include "blackhole/glmm.h"
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    bh_error e;
    bh_csv_options co;
    bh_csv_default_options(&co);
    bh_frame *fr;
    bh_formula *f;
    bh_design *d;
    bh_design_options dop;
    bh_design_default_options(&dop);
    if (argc < 3 || bh_csv_read_path(argv[1], &co, &fr, &e) ||
        bh_formula_parse(argv[2], &f, &e) || bh_design_build(f, fr, &dop, &d, &e)) {
        fprintf(stderr, "%s\n", argc < 3 ? "usage: drv data formula" : e.msg);
        return 2;
    }
    bh_glmm_options o;
    bh_glmm_default_options(&o);
    bh_fit *fit;
    bh_glmm_re *re;
    double t0 = now();
    if (bh_glmm_fit(d, &o, &fit, &re, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    double t1 = now();
    printf("time,%.6f\n", t1 - t0);
    for (size_t j = 0; j < fit->p; j++)
        printf("%s%s%s,%.17g\n", fit->component[j], fit->component[j][0] ? "/" : "",
               fit->term[j], fit->beta[j]);
    printf("loglik,%.17g\n", fit->stats.loglik);
    for (size_t k = 0; k < fit->nwarnings; k++)
        fprintf(stderr, "warning: %s\n", fit->warnings[k]);
    bh_fit_free(fit);
    bh_glmm_re_free(re);
    bh_design_free(d);
    bh_formula_free(f);
    bh_frame_free(fr);
    return 0;
}
CEOF
$CC -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iinclude -o "$tmp/drv" "$tmp/drv.c" \
    "$LIBBH" -lgsl -lopenblas -lcsv -linih -ljansson -lm -lpthread

F='followed_up ~ quality * experience + tracking * experience + (1 | rep_id)'
s0=$(date +%s.%N)
"$tmp/drv" "$tmp/leads.csv" "$F" > "$tmp/bh.csv"
s1=$(date +%s.%N)
total=$(echo "$s1 - $s0" | bc -l)

cat > "$tmp/fit.R" <<REOF
suppressMessages(library(lme4))
d <- read.csv("$tmp/leads.csv")
t <- system.time(m <- glmer($F, data = d, family = binomial, nAGQ = 1))[["elapsed"]]
bh <- read.csv("$tmp/bh.csv", header = FALSE, col.names = c("k", "v"))
tb <- bh\$v[bh\$k == "time"]
b <- fixef(m)
ours <- bh\$v[match(names(b), bh\$k)]
sdr <- getME(m, "theta")[[1]]
sdb <- bh\$v[bh\$k == "rep_id/sd__(Intercept)"]
cat(sprintf("data: %d leads in %d reps (set.seed(20240615))\n", nrow(d), length(unique(d\$rep_id))))
cat(sprintf("blackhole bh_glmm_fit: %8.3f s  (process total incl. CSV read and design: %.3f s)\n", tb, $total))
cat(sprintf("lme4 glmer(nAGQ = 1):  %8.3f s  (lme4 %s, R %s)\n", t, packageVersion("lme4"), getRversion()))
cat(sprintf("speed-up (fit only):   %8.1fx\n", t / tb))
cat(sprintf("max |fixed effect difference|: %.3g  (largest relative to SE: %.3g)\n",
            max(abs(ours - b)), max(abs(ours - b) / sqrt(diag(as.matrix(vcov(m)))))))
cat(sprintf("SD rep_id: blackhole %.8f  glmer %.8f\n", sdb, sdr))
cat(sprintf("logLik: blackhole %.8f  glmer %.8f\n", bh\$v[bh\$k == "loglik"], as.numeric(logLik(m))))
REOF
Rscript "$tmp/fit.R"
