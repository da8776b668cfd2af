#!/bin/sh
# case_5.sh - GLMM vs lme4::glmer: runs bench/glmm_vs_glmer.sh (written by
# another engineer) when it exists; its standard output goes into the
# results verbatim.
set -eu
printf '## Case 5: GLMM vs glmer\n\n'
if [ -f "$BENCH_DIR/glmm_vs_glmer.sh" ]; then
    echo '```'
    sh "$BENCH_DIR/glmm_vs_glmer.sh" 2>&1 || echo "bench/glmm_vs_glmer.sh failed (exit $?)"
    echo '```'
    echo
else
    echo "  case 5 (GLMM vs glmer): not yet available (bench/glmm_vs_glmer.sh missing)" >&2
    printf 'Not yet available (bench/glmm_vs_glmer.sh does not exist yet).\n\n'
fi
