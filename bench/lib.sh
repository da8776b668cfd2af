# lib.sh - helpers shared by bench/run.sh and bench/case_N.sh (sourced).
#
# Environment set by run.sh: BH_BIN, BENCH_DIR (bench/), DATA (bench/data),
# WORK (scratch for this run), RUNS, ROWS, RSCRIPT (empty when R is
# unavailable), PY (empty when statsmodels is unavailable), HAVE_TIME (1 when
# GNU time is installed), DRIVER (the compiled bench/fit_driver.c).

# median of the numbers on stdin ("NA" when there are none)
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "NA"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# get FILE KEY: the value on the "KEY value" line of FILE, NA if absent
get() {
    if [ -f "$1" ]; then
        awk -v k="$2" '$1 == k { print $2; f = 1; exit } END { if (!f) print "NA" }' "$1"
    else
        echo NA
    fi
}

# ratio A B: A / B with two decimals (NA when either is missing)
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "NA" || b == "NA" || b + 0 == 0) print "NA"; else printf "%.2f\n", a / b }'
}

# fmt X: seconds with three significant digits, NA kept
fmt() {
    awk -v a="$1" 'BEGIN { if (a == "NA" || a == "") print "NA"; else printf "%.3g\n", a }'
}

# measure NAME CMD...: run CMD $RUNS times (stdout to $WORK/NAME.out.R), each
# under GNU time when available; writes $WORK/NAME.med with the median of
# every "key value" line the command printed plus wall (s), cpu (user +
# system s, all threads: less sensitive than wall to other jobs on a shared
# machine) and rss_mb (peak resident set, MB).  Returns 1 (after showing stderr) when a run fails.
measure() {
    name=$1
    shift
    r=1
    while [ "$r" -le "$RUNS" ]; do
        out=$WORK/$name.out.$r
        if [ "$HAVE_TIME" = 1 ]; then
            if ! /usr/bin/time -f '%e %M %U %S' -o "$WORK/$name.time.$r" "$@" \
                    > "$out" 2> "$WORK/$name.err.$r"; then
                echo "  $name: command failed: $*" >&2
                tail -5 "$WORK/$name.err.$r" >&2
                return 1
            fi
            awk 'NF == 4 && $1 ~ /^[0-9.]+$/ {
                printf "wall %s\nrss_mb %.1f\ncpu %.2f\n", $1, $2 / 1024, $3 + $4 }' \
                "$WORK/$name.time.$r" >> "$out.kv"
        else
            t0=$(date +%s.%N)
            if ! "$@" > "$out" 2> "$WORK/$name.err.$r"; then
                echo "  $name: command failed: $*" >&2
                tail -5 "$WORK/$name.err.$r" >&2
                return 1
            fi
            t1=$(date +%s.%N)
            awk -v a="$t0" -v b="$t1" 'BEGIN { printf "wall %.3f\n", b - a }' >> "$out.kv"
        fi
        awk 'NF == 2 && $2 ~ /^-?[0-9.eE+-]+$/' "$out" >> "$out.kv"
        r=$((r + 1))
    done
    cat "$WORK/$name".out.*.kv | awk '{ print $1 }' | sort -u | while read -r k; do
        v=$(cat "$WORK/$name".out.*.kv | awk -v k="$k" '$1 == k { print $2 }' | median)
        echo "$k $v"
    done > "$WORK/$name.med"
    rm -f "$WORK/$name".out.*.kv
    printf '  %-22s wall %6ss  cpu %6ss  peak %7s MB\n' "$name" "$(get "$WORK/$name.med" wall)" \
        "$(get "$WORK/$name.med" cpu)" "$(get "$WORK/$name.med" rss_mb)"
}

# coefs_from_cli FILE: term,estimate,std_error from blackhole's --format csv
coefs_from_cli() {
    awk -F, 'NR == 1 { print "term,estimate,std_error"; next } { print $3 "," $4 "," $5 }' "$1"
}

# agree A.csv B.csv: "est X se Y", the largest relative differences of the
# estimates and standard errors over the terms both files hold ("NA" when a
# file is missing or no term matches)
agree() {
    if [ ! -s "$1" ] || [ ! -s "$2" ]; then echo "est NA se NA"; return; fi
    awk -F, 'FNR == 1 { next }
        NR == FNR { e[$1] = $2; s[$1] = $3; next }
        ($1 in e) { m++
            de = ($2 - e[$1]); if (de < 0) de = -de; de /= (e[$1] < 0 ? -e[$1] : e[$1])
            ds = ($3 - s[$1]); if (ds < 0) ds = -ds; ds /= (s[$1] < 0 ? -s[$1] : s[$1])
            if (de > me) me = de; if (ds > ms) ms = ds }
        END { if (!m) print "est NA se NA"; else printf "est %.1e se %.1e\n", me, ms }' "$1" "$2"
}

# agree_row LABEL A B: a markdown row "| LABEL | est | se |"
agree_row() {
    # shellcheck disable=SC2046  # "est X se Y": split into words on purpose
    set -- "$1" $(agree "$2" "$3")
    echo "| $1 | $3 | $5 |"
}

# gen KIND ROWS SEED: path of the generated file (made once, reused when
# present: the generator is deterministic)
gen() {
    f=$DATA/$1_$2_$3.csv
    if [ ! -s "$f" ]; then
        "$DATA/bin/gen_data" "$1" "$2" "$3" > "$f.tmp" && mv "$f.tmp" "$f"
    fi
    # Every tool then reads from the page cache, not the disk.
    cat "$f" > /dev/null
    echo "$f"
}

have_r() { [ -n "$RSCRIPT" ]; }
have_py() { [ -n "$PY" ]; }
