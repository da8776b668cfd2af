#!/bin/sh
# case_7.sh - CSV ingest of a ~150 MB file: blackhole's reader
# (bench/csv_read_driver.c: bh_csv_read_path, shape printed) vs
# data.table::fread vs pandas.read_csv.  Markdown on stdout.
set -eu
. "$BENCH_DIR/lib.sh"
F=$(gen ingest "$INGEST_ROWS" 3)
SIZE=$(wc -c < "$F")
echo "  data: $F ($SIZE bytes)" >&2
measure c7_bh "$DATA/bin/csv_read_driver" "$F" >&2
have_r && measure c7_r "$RSCRIPT" "$BENCH_DIR/ref_r.R" ingest "$F" /dev/null >&2
have_py && measure c7_py "$PY" "$BENCH_DIR/ref_py.py" ingest "$F" /dev/null >&2

bh=$(get "$WORK/c7_bh.med" wall)
mbs() { awk -v s="$SIZE" -v t="$1" 'BEGIN { if (t == "NA") print "NA"; else printf "%.0f", s / t / 1e6 }'; }
cat <<MD
## Case 7: CSV ingest, $INGEST_ROWS rows x 14 columns (12 numeric, an integer, a text column)

File \`$F\`, $SIZE bytes.  blackhole: \`$DATA/bin/csv_read_driver $F\` (whole process);
R: \`fread\` inside \`Rscript bench/ref_r.R ingest\`; pandas: \`read_csv\` inside \`python3 bench/ref_py.py ingest\`.
The reference tools' read time is measured inside the process (start-up and package loading excluded); blackhole's is the whole process.

| tool | read (s) | MB/s | process wall (s) | process CPU (s) | peak RSS (MB) | ratio (ref / blackhole, read) |
|---|---|---|---|---|---|---|
| blackhole (bh_csv_read_path) | $(fmt "$bh") | $(mbs "$bh") | $(fmt "$bh") | $(fmt "$(get "$WORK/c7_bh.med" cpu)") | $(get "$WORK/c7_bh.med" rss_mb) | 1 |
MD
if have_r; then
    t=$(get "$WORK/c7_r.med" t_read)
    echo "| data.table::fread ($(get "$WORK/c7_r.med" fread_threads) thread(s)) | $(fmt "$t") | $(mbs "$t") | $(fmt "$(get "$WORK/c7_r.med" wall)") | $(fmt "$(get "$WORK/c7_r.med" cpu)") | $(get "$WORK/c7_r.med" rss_mb) | $(ratio "$t" "$bh") |"
fi
if have_py; then
    t=$(get "$WORK/c7_py.med" t_read)
    echo "| pandas.read_csv | $(fmt "$t") | $(mbs "$t") | $(fmt "$(get "$WORK/c7_py.med" wall)") | $(fmt "$(get "$WORK/c7_py.med" cpu)") | $(get "$WORK/c7_py.med" rss_mb) | $(ratio "$t" "$bh") |"
fi
echo
echo "Shape check: blackhole \"$(head -1 "$WORK/c7_bh.out.1")\"; R $(get "$WORK/c7_r.med" rows) rows x $(get "$WORK/c7_r.med" cols) columns; pandas $(get "$WORK/c7_py.med" rows) rows x $(get "$WORK/c7_py.med" cols) columns."
echo
