#!/bin/sh
# csv_memory.sh - time and peak memory of the CSV reader on a generated
# 1,000,000-row x 10-column numeric file.  Final columns: 10 x 1e6 doubles
# (80 MB) plus 10 MB of missing-value flags; peak RSS should stay close.
# Usage: bench/csv_memory.sh [ROWS]   (run from the repository root)
set -eu
ROWS=${1:-1000000}
TMP=${TMPDIR:-/tmp}/bh_csv_bench.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT INT TERM

CC=${CC:-cc}
$CC -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iinclude \
    src/status.c src/frame.c src/csvread.c bench/csv_read_driver.c \
    -lcsv -lm -o "$TMP/driver"

# Seeded so every run reads the same bytes.
awk -v rows="$ROWS" 'BEGIN {
    srand(20130101);
    print "x1,x2,x3,x4,x5,x6,x7,x8,x9,x10";
    for (i = 0; i < rows; i++) {
        line = sprintf("%.6f", rand() * 100);
        for (j = 2; j <= 10; j++)
            line = line "," sprintf("%.6g", (rand() - 0.5) * 1e4);
        print line;
    }
}' > "$TMP/data.csv"
echo "input: $(wc -c < "$TMP/data.csv") bytes, $ROWS rows x 10 columns"

if [ ! -x /usr/bin/time ]; then
    echo "needs GNU time (/usr/bin/time): apt-get install time" >&2
    exit 1
fi
/usr/bin/time -v "$TMP/driver" "$TMP/data.csv" 2> "$TMP/time.txt"
grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$TMP/time.txt"
