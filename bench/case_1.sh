#!/bin/sh
# case_1.sh - logit, ROWS x 10 predictors + one interaction, cluster-robust
# standard errors by a 2,000-level id, end to end from CSV: the blackhole
# CLI vs R fread + glm + vcovCL(type = "HC0", cadjust = TRUE) vs statsmodels
# read_csv + formula GLM .fit(cov_type = "cluster").  Markdown on stdout,
# progress on stderr; run by bench/run.sh.
set -eu
. "$BENCH_DIR/lib.sh"
F=$(gen logit "$ROWS" 1)
FORMULA='y ~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x1:x2'
echo "  data: $F ($(wc -c < "$F") bytes)" >&2

measure c1_bh "$BH_BIN" fit "$F" -m "$FORMULA" --family binomial \
    --vcov cluster:id --format csv >&2
coefs_from_cli "$WORK/c1_bh.out.1" > "$WORK/c1_bh.coef"
if have_r; then
    measure c1_r "$RSCRIPT" "$BENCH_DIR/ref_r.R" logit_e2e "$F" "$WORK/c1_r.coef" >&2
fi
if have_py; then
    measure c1_py "$PY" "$BENCH_DIR/ref_py.py" logit_e2e "$F" "$WORK/c1_py.coef" >&2
fi

w() { fmt "$(get "$WORK/$1.med" "$2")"; }
bh_wall=$(get "$WORK/c1_bh.med" wall)
bh_cpu=$(get "$WORK/c1_bh.med" cpu)
r_wall=$(get "$WORK/c1_r.med" wall)
py_wall=$(get "$WORK/c1_py.med" wall)
cols=12
data_mb=$(awk -v n="$ROWS" -v c="$cols" 'BEGIN { printf "%.1f", 8 * n * c / 1048576 }')
bh_rss=$(get "$WORK/c1_bh.med" rss_mb)

cat <<MD
## Case 1: logit with cluster-robust SEs, end to end from CSV

$ROWS rows, \`$FORMULA\`, clusters \`id\` (2,000), file \`$F\` ($(wc -c < "$F") bytes).
Wall and CPU (user + system, all threads) time of the whole process (start-up, reading, fitting, covariance, output), median of $RUNS runs.
The stage times of R and statsmodels are measured inside their scripts.

\`\`\`
$BH_BIN fit $F -m '$FORMULA' --family binomial --vcov cluster:id --format csv
Rscript bench/ref_r.R logit_e2e $F OUT     # fread; glm(binomial); vcovCL(m, ~id, type = "HC0", cadjust = TRUE)
python3 bench/ref_py.py logit_e2e $F OUT   # read_csv; smf.glm(...).fit(cov_type = "cluster")
\`\`\`

| tool | wall (s) | CPU (s) | read (s) | fit (s) | vcov (s) | IRLS iterations | peak RSS (MB) | ratio wall (ref / blackhole) | ratio CPU |
|---|---|---|---|---|---|---|---|---|---|
| blackhole | $(fmt "$bh_wall") | $(fmt "$bh_cpu") | | | | | $bh_rss | 1 | 1 |
MD
if have_r; then
    echo "| R glm + vcovCL | $(fmt "$r_wall") | $(w c1_r cpu) | $(w c1_r t_read) | $(w c1_r t_fit) | $(w c1_r t_vcov) | $(get "$WORK/c1_r.med" iters) | $(get "$WORK/c1_r.med" rss_mb) | $(ratio "$r_wall" "$bh_wall") | $(ratio "$(get "$WORK/c1_r.med" cpu)" "$bh_cpu") |"
else
    echo "| R | skipped (not available) | | | | | | | | |"
fi
if have_py; then
    echo "| statsmodels GLM | $(fmt "$py_wall") | $(w c1_py cpu) | $(w c1_py t_read) | $(w c1_py t_fit) (incl. vcov) | | $(get "$WORK/c1_py.med" iters) | $(get "$WORK/c1_py.med" rss_mb) | $(ratio "$py_wall" "$bh_wall") | $(ratio "$(get "$WORK/c1_py.med" cpu)" "$bh_cpu") |"
else
    echo "| statsmodels | skipped (not available) | | | | | | | | |"
fi
cat <<MD

Agreement (largest relative difference over the 12 coefficients; statsmodels' SEs rescaled by sqrt((N-K)/(N-1)) to the same G/(G-1) correction; R's glm stops at its default epsilon 1e-8, blackhole at 1e-10 and computes the covariance at the estimate):

| pair | estimates | std. errors |
|---|---|---|
MD
have_r && agree_row "blackhole vs R" "$WORK/c1_bh.coef" "$WORK/c1_r.coef"
have_py && agree_row "blackhole vs statsmodels" "$WORK/c1_bh.coef" "$WORK/c1_py.coef"
echo
echo "Numeric data: $ROWS x $cols columns x 8 bytes = $data_mb MB; blackhole's peak RSS is $(ratio "$bh_rss" "$data_mb") x that."
echo

# Targets.
r1=$(ratio "$r_wall" "$bh_wall")
met=$(awk -v r="$r1" 'BEGIN { print (r == "NA" ? "not measured (no R)" : (r >= 5 ? "**met**" : "**not met**")) }')
echo "| case 1 end to end >= 5x faster than R | ${r1}x wall (R $(fmt "$r_wall") s, blackhole $(fmt "$bh_wall") s); $(ratio "$(get "$WORK/c1_r.med" cpu)" "$bh_cpu")x CPU | $met |" >> "$WORK/targets"
m1=$(ratio "$bh_rss" "$data_mb")
met=$(awk -v r="$m1" 'BEGIN { print (r == "NA" ? "not measured (no GNU time)" : (r <= 2 ? "**met**" : "**not met**")) }')
echo "| case 1 peak memory <= 2x numeric data ($data_mb MB) | $bh_rss MB = ${m1}x | $met |" >> "$WORK/targets"
