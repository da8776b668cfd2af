#!/bin/sh
# run_mpi_test.sh - `mpirun -np 2 bin/blackhole-mpi simulate` must write the
# same bytes as the threaded `blackhole simulate` (2 design points x 10
# replications of the fractional logit).  Run from the repository root by
# tests/cli/test_cli_simulate.c.  Exit 0 pass, 1 fail, 77 skip (no MPI).
# BH_BIN: the program under test (default bin/blackhole); BH_MPI_BIN: the
# MPI driver (default: blackhole-mpi beside it, built by `make mpi` when
# missing).
set -u
command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 || exit 77
BIN=${BH_BIN:-bin/blackhole}
MPI_BIN=${BH_MPI_BIN:-$(dirname "$BIN")/blackhole-mpi}
# missing, or older than the program under test (built from an older library)
if [ ! -x "$MPI_BIN" ] || [ "$BIN" -nt "$MPI_BIN" ]; then
    make -s mpi >&2 || { echo "make mpi failed" >&2; exit 1; }
    MPI_BIN=bin/blackhole-mpi
fi
W=$(mktemp -d /tmp/bh_mpi_XXXXXX) || exit 1
trap 'rm -rf "$W"' EXIT
ARGS="--study analysis/sabnis2013.ini --models fractional --n 100,200 --reps 10 --truth-n 2000 --quiet"
"$BIN" simulate $ARGS --threads 2 --out "$W/threads" >"$W/threads.log" 2>&1 ||
    { echo "threaded run failed" >&2; cat "$W/threads.log" >&2; exit 1; }
# Open MPI's own start-up allocations are never freed: under `make sanitize`
# LeakSanitizer would report them as leaks of the MPI driver.  Leak checking
# stays on for the project's code everywhere else.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
mpirun --allow-run-as-root --oversubscribe -np 2 "$MPI_BIN" simulate $ARGS --out "$W/mpi" \
    >"$W/mpi.log" 2>&1 || { echo "MPI run failed" >&2; cat "$W/mpi.log" >&2; exit 1; }
# and with two threads in each worker rank
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
mpirun --allow-run-as-root --oversubscribe -np 2 "$MPI_BIN" simulate $ARGS --threads 2 \
    --out "$W/mpi2" >"$W/mpi2.log" 2>&1 ||
    { echo "MPI run with threads failed" >&2; cat "$W/mpi2.log" >&2; exit 1; }
for d in mpi mpi2; do
    for f in simulate.cfg truth.csv replications.csv summary.csv power.csv sampling.csv; do
        cmp "$W/threads/$f" "$W/$d/$f" >&2 || { echo "$f differs ($d vs threads)" >&2; exit 1; }
    done
done
echo "MPI (2 ranks, 1 and 2 threads each) and threaded runs wrote identical files"
