#!/bin/sh
# case_3.sh - OLS with HC1 standard errors on ROWS x 20 predictors: end to
# end from CSV (blackhole CLI vs R fread + lm + vcovHC(type = "HC1") vs
# statsmodels read_csv + formula OLS .fit(cov_type = "HC1")) and in memory
# (bench/fit_driver.c vs lm.fit / OLS.fit on pre-built matrices).  Markdown
# on stdout; run by bench/run.sh.
set -eu
. "$BENCH_DIR/lib.sh"
F=$(gen ols "$ROWS" 2)
FORMULA="y ~ $(seq 1 20 | sed 's/^/x/' | paste -sd+ | sed 's/+/ + /g')"
echo "  data: $F ($(wc -c < "$F") bytes)" >&2

measure c3_bh "$BH_BIN" fit "$F" -m "$FORMULA" --vcov hc1 --format csv >&2
coefs_from_cli "$WORK/c3_bh.out.1" > "$WORK/c3_bh.coef"
measure c3m_bh "$DRIVER" ols "$F" "$FORMULA" hc1 "$WORK/c3m_bh.coef" >&2
if have_r; then
    measure c3_r "$RSCRIPT" "$BENCH_DIR/ref_r.R" ols_e2e "$F" "$WORK/c3_r.coef" >&2
    measure c3m_r "$RSCRIPT" "$BENCH_DIR/ref_r.R" ols_mem "$F" "$WORK/c3m_r.coef" >&2
fi
if have_py; then
    measure c3_py "$PY" "$BENCH_DIR/ref_py.py" ols_e2e "$F" "$WORK/c3_py.coef" >&2
    measure c3m_py "$PY" "$BENCH_DIR/ref_py.py" ols_mem "$F" "$WORK/c3m_py.coef" >&2
fi

w() { fmt "$(get "$WORK/$1.med" "$2")"; }
bh_wall=$(get "$WORK/c3_bh.med" wall)
r_wall=$(get "$WORK/c3_r.med" wall)
py_wall=$(get "$WORK/c3_py.med" wall)
row() { # label bh r py
    echo "| $1 | $(fmt "$2") | $(fmt "$3") | $(fmt "$4") | $(ratio "$3" "$2") | $(ratio "$4" "$2") |"
}
sum3() {
    awk -v a="$(get "$1" t_design)" -v b="$(get "$1" t_fit)" -v c="$(get "$1" t_vcov)" \
        'BEGIN { if (a == "NA") print "NA"; else print a + b + c }'
}

cat <<MD
## Case 3: OLS with HC1 standard errors, $ROWS x 20

File \`$F\` ($(wc -c < "$F") bytes), \`$FORMULA\`.

\`\`\`
$BH_BIN fit $F -m '$FORMULA' --vcov hc1 --format csv
Rscript bench/ref_r.R ols_e2e $F OUT     # fread; lm; vcovHC(m, type = "HC1")
python3 bench/ref_py.py ols_e2e $F OUT   # read_csv; smf.ols(...).fit(cov_type = "HC1")
$DRIVER ols $F '...' hc1 OUT
Rscript bench/ref_r.R ols_mem $F OUT     # model.matrix; lm.fit(X, y); vcovHC
python3 bench/ref_py.py ols_mem $F OUT   # patsy; sm.OLS(y, X).fit(); get_robustcov_results("HC1")
\`\`\`

End to end (whole process, wall and CPU = user + system over all threads, median of $RUNS runs):

| tool | wall (s) | CPU (s) | read (s) | fit (s) | vcov (s) | peak RSS (MB) | ratio wall (ref / blackhole) | ratio CPU |
|---|---|---|---|---|---|---|---|---|
| blackhole | $(fmt "$bh_wall") | $(w c3_bh cpu) | | | | $(get "$WORK/c3_bh.med" rss_mb) | 1 | 1 |
MD
if have_r; then
    echo "| R lm + vcovHC | $(fmt "$r_wall") | $(w c3_r cpu) | $(w c3_r t_read) | $(w c3_r t_fit) | $(w c3_r t_vcov) | $(get "$WORK/c3_r.med" rss_mb) | $(ratio "$r_wall" "$bh_wall") | $(ratio "$(get "$WORK/c3_r.med" cpu)" "$(get "$WORK/c3_bh.med" cpu)") |"
else
    echo "| R | skipped (not available) | | | | | | | |"
fi
if have_py; then
    echo "| statsmodels OLS | $(fmt "$py_wall") | $(w c3_py cpu) | $(w c3_py t_read) | $(w c3_py t_fit) (incl. vcov) | | $(get "$WORK/c3_py.med" rss_mb) | $(ratio "$py_wall" "$bh_wall") | $(ratio "$(get "$WORK/c3_py.med" cpu)" "$(get "$WORK/c3_bh.med" cpu)") |"
else
    echo "| statsmodels | skipped (not available) | | | | | | | |"
fi
cat <<MD

In memory (seconds, median of $RUNS runs; R's fit is \`lm.fit\` on the pre-built matrix, its vcovHC runs on an \`lm\` object):

| stage | blackhole | R | statsmodels | R / blackhole | statsmodels / blackhole |
|---|---|---|---|---|---|
MD
row "read CSV" "$(get "$WORK/c3m_bh.med" t_read)" "$(get "$WORK/c3m_r.med" t_read)" "$(get "$WORK/c3m_py.med" t_read)"
row "design matrix" "$(get "$WORK/c3m_bh.med" t_design)" "$(get "$WORK/c3m_r.med" t_design)" "$(get "$WORK/c3m_py.med" t_design)"
row "least squares fit" "$(get "$WORK/c3m_bh.med" t_fit)" "$(get "$WORK/c3m_r.med" t_fit)" "$(get "$WORK/c3m_py.med" t_fit)"
row "HC1 vcov" "$(get "$WORK/c3m_bh.med" t_vcov)" "$(get "$WORK/c3m_r.med" t_vcov)" "$(get "$WORK/c3m_py.med" t_vcov)"
row "in memory: design + fit + vcov" "$(sum3 "$WORK/c3m_bh.med")" "$(sum3 "$WORK/c3m_r.med")" "$(sum3 "$WORK/c3m_py.med")"
cat <<MD

Agreement:

| pair | estimates | std. errors |
|---|---|---|
MD
have_r && agree_row "blackhole CLI vs R" "$WORK/c3_bh.coef" "$WORK/c3_r.coef"
have_py && agree_row "blackhole CLI vs statsmodels" "$WORK/c3_bh.coef" "$WORK/c3_py.coef"
have_r && agree_row "blackhole driver vs R lm.fit" "$WORK/c3m_bh.coef" "$WORK/c3m_r.coef"
echo
r3=$(ratio "$r_wall" "$bh_wall")
echo "| (no target set) case 3 end to end vs R | ${r3}x (R $(fmt "$r_wall") s, blackhole $(fmt "$bh_wall") s) | - |" >> "$WORK/targets"
