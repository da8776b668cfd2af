#!/bin/sh
# case_2.sh - the case 1 logit in memory: bench/fit_driver.c reads the CSV
# once, then times design building, IRLS (init + iterations), the result
# statistics and the cluster covariance separately; R's glm.fit and
# statsmodels' GLM.fit on pre-built matrices.  Also the bytes an IRLS
# iteration must move against a measured memory bandwidth.  Markdown on
# stdout; run by bench/run.sh.
set -eu
. "$BENCH_DIR/lib.sh"
F=$(gen logit "$ROWS" 1)
FORMULA='y ~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x1:x2'

measure c2_stream "$DRIVER" stream >&2
measure c2_bh "$DRIVER" logit "$F" "$FORMULA" cluster:id "$WORK/c2_bh.coef" >&2
if have_r; then
    measure c2_r "$RSCRIPT" "$BENCH_DIR/ref_r.R" logit_mem "$F" "$WORK/c2_r.coef" >&2
fi
if have_py; then
    measure c2_py "$PY" "$BENCH_DIR/ref_py.py" logit_mem "$F" "$WORK/c2_py.coef" >&2
fi

B=$WORK/c2_bh.med R=$WORK/c2_r.med P=$WORK/c2_py.med
n=$(get "$B" n) p=$(get "$B" p)
bh_irls=$(get "$B" t_fit)
bh_full=$(awk -v a="$bh_irls" -v b="$(get "$B" t_result)" 'BEGIN { print a + b }')
bh_mem=$(awk -v a="$(get "$B" t_design)" -v b="$bh_full" -v c="$(get "$B" t_vcov)" 'BEGIN { print a + b + c }')
r_mem=$(awk -v a="$(get "$R" t_design)" -v b="$(get "$R" t_irls)" -v c="$(get "$R" t_vcov)" 'BEGIN { if (a == "NA") print "NA"; else print a + b + c }')
py_mem=$(awk -v a="$(get "$P" t_design)" -v b="$(get "$P" t_irls)" -v c="$(get "$P" t_vcov)" 'BEGIN { if (a == "NA") print "NA"; else print a + b + c }')
r_it=$(awk -v t="$(get "$R" t_irls)" -v k="$(get "$R" iters)" 'BEGIN { if (t == "NA") print "NA"; else print t / k }')
py_it=$(awk -v t="$(get "$P" t_irls)" -v k="$(get "$P" iters)" 'BEGIN { if (t == "NA") print "NA"; else print t / k }')
it=$(get "$B" t_iter_median)
triad1=$(get "$WORK/c2_stream.med" triad_gbs)
rd1=$(get "$WORK/c2_stream.med" read_gbs)
# The bound uses the bandwidth of all CPUs: the GLM's passes run on all.
nth=$(get "$WORK/c2_stream.med" threads)
triad=$(get "$WORK/c2_stream.med" triad_all_gbs)
rd=$(get "$WORK/c2_stream.med" read_all_gbs)
# Lower bound of the traffic of one iteration: X (n x p doubles) read twice,
# once for X'WX and once for eta = X beta.
bytes=$(awk -v n="$n" -v p="$p" 'BEGIN { print 2 * n * p * 8 }')
gbs=$(awk -v b="$bytes" -v t="$it" 'BEGIN { printf "%.2f", b / t / 1e9 }')
bound=$(awk -v b="$bytes" -v g="$triad" 'BEGIN { printf "%.3g", b / (g * 1e9) }')
vs_bound=$(ratio "$it" "$bound")
row() { # label bh r py
    echo "| $1 | $(fmt "$2") | $(fmt "$3") | $(fmt "$4") | $(ratio "$3" "$2") | $(ratio "$4" "$2") |"
}

cat <<MD
## Case 2: the same logit in memory (fit only)

\`$DRIVER logit $F '$FORMULA' cluster:id OUT\` (\`bench/fit_driver.c\`, linked against \`$BH_LIB\`);
R: \`model.matrix\`, then \`glm.fit(X, y, family = binomial())\` on the pre-built matrix, \`vcovCL\` on a \`glm\` object;
statsmodels: \`patsy.dmatrices\`, \`sm.GLM(y, X, Binomial()).fit()\` on arrays, cluster covariance (a second fit with \`cov_type = "cluster"\`, minus the first).
Median of $RUNS runs, seconds. n = $n, p = $p.

| stage | blackhole | R | statsmodels | R / blackhole | statsmodels / blackhole |
|---|---|---|---|---|---|
MD
row "read CSV" "$(get "$B" t_read)" "$(get "$R" t_read)" "$(get "$P" t_read)"
row "design matrix" "$(get "$B" t_design)" "$(get "$R" t_design)" "$(get "$P" t_design)"
row "IRLS (blackhole: init + iterations; R: glm.fit)" "$bh_irls" "$(get "$R" t_irls)" "$(get "$P" t_irls)"
echo "| IRLS iterations | $(get "$B" iters) | $(get "$R" iters) | $(get "$P" iters) | | |"
row "one IRLS iteration (blackhole: median; others: mean)" "$it" "$r_it" "$py_it"
echo "| blackhole IRLS init (starting values, first eta) | $(fmt "$(get "$B" t_irls_init)") | | | | |"
echo "| blackhole result (final QR, leverages, null model, AUC, Hosmer-Lemeshow, separation check) | $(fmt "$(get "$B" t_result)") | | | | |"
row "IRLS + result" "$bh_full" "$(get "$R" t_irls)" "$(get "$P" t_irls)"
row "cluster vcov" "$(get "$B" t_vcov)" "$(get "$R" t_vcov)" "$(get "$P" t_vcov)"
row "in memory: design + fit + vcov" "$bh_mem" "$r_mem" "$py_mem"
cat <<MD

Memory bandwidth (\`fit_driver stream\`, arrays of 160 MB): on $nth threads (as many as the GLM's passes use) triad $triad GB/s, read-only (dot product) $rd GB/s; on one thread $triad1 and $rd1 GB/s.
One IRLS iteration must read X at least twice (X'WX and eta = X beta): 2 x $n x $p x 8 = $(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }') MB.
blackhole's median iteration takes $(fmt "$it") s: **$gbs GB/s** achieved; the bandwidth bound at the $nth-thread triad rate is $bound s, so an iteration takes **${vs_bound}x** the bound.

Agreement:

| pair | estimates | std. errors |
|---|---|---|
MD
have_r && agree_row "blackhole vs R (glm.fit estimates, vcovCL SEs)" "$WORK/c2_bh.coef" "$WORK/c2_r.coef"
have_py && agree_row "blackhole vs statsmodels" "$WORK/c2_bh.coef" "$WORK/c2_py.coef"
echo

r2=$(ratio "$(get "$R" t_irls)" "$bh_irls")
r2b=$(ratio "$(get "$R" t_irls)" "$bh_full")
met=$(awk -v r="$r2" 'BEGIN { print (r == "NA" ? "not measured (no R)" : (r >= 20 ? "**met**" : "**not met**")) }')
echo "| case 2 IRLS >= 20x faster than R's glm.fit | ${r2}x (R $(fmt "$(get "$R" t_irls)") s, blackhole IRLS $(fmt "$bh_irls") s; ${r2b}x with the result statistics) | $met |" >> "$WORK/targets"
met=$(awk -v r="$vs_bound" 'BEGIN { print (r == "NA" ? "not measured" : (r <= 3 ? "**met**" : "**not met**")) }')
echo "| case 2 IRLS iteration within 3x of the memory-bandwidth bound | ${vs_bound}x ($(fmt "$it") s vs $bound s; $gbs of $triad GB/s, the $nth-thread triad) | $met |" >> "$WORK/targets"
