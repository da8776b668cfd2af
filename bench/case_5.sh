#!/bin/sh
# case_5.sh - GLMM vs lme4::glmer: runs bench/glmm_vs_glmer.sh (written by
# another engineer) when it exists; its standard output goes into the
# results verbatim.
set -eu
W=${WORK:-$(mktemp -d)}
printf '## Case 5: GLMM vs glmer\n\n'
if [ -f "$BENCH_DIR/glmm_vs_glmer.sh" ]; then
    echo '```'
    sh "$BENCH_DIR/glmm_vs_glmer.sh" > "$W/c5.txt" 2>&1 || echo "bench/glmm_vs_glmer.sh failed (exit $?)" >> "$W/c5.txt"
    cat "$W/c5.txt"
    echo '```'
    echo
    sp=$(awk -F: '/^speed-up/ { gsub(/[ x]/, "", $2); print $2 }' "$W/c5.txt")
    df=$(awk -F: '/max \|fixed effect difference\|/ { split($2, a, " "); print a[1] }' "$W/c5.txt")
    if [ -n "$sp" ]; then
        met=$(awk -v s="$sp" -v d="${df:-1}" 'BEGIN { print (s >= 10 && d <= 1e-4) ? "**met**" : "**not met**" }')
        echo "| case 5 GLMM >= 10x faster than glmer, estimates equal to 1e-4 | ${sp}x (fit only); largest fixed-effect difference $df | $met |" >> "$W/targets"
    fi
else
    echo "  case 5 (GLMM vs glmer): not yet available (bench/glmm_vs_glmer.sh missing)" >&2
    printf 'Not yet available (bench/glmm_vs_glmer.sh does not exist yet).\n\n'
fi
