#!/usr/bin/env bash
# Profiling aids behind BENCHMARKS.md (diagnostics, not benchmarks: the
# tracers slow spoolfetch down).
#
#   bench/profile.sh syscalls   strace -c -f of one spoolfetch job of N files of
#                               SIZE_KB KiB (defaults 2000 × 256): syscall counts
#                               per downloaded file
#   bench/profile.sh heap       heaptrack of one job of N tiny URLs (default
#                               100000): the allocation sites at peak heap
#
# Environment: N, SIZE_KB, CONC (8), KEEP=1. Needs strace / heaptrack
# (installed with apt-get when missing).
set -euo pipefail

# The tracers need the code's names: the release build with line tables.
export CARGO_PROFILE=${CARGO_PROFILE:-profiling}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=${1:-}
CONC=${CONC:-8}
KEEP=${KEEP:-0}
case $MODE in
    syscalls) N=${N:-2000}; SIZE_KB=${SIZE_KB:-256}; ensure_tools nginx:nginx-light strace:strace curl:curl ;;
    heap) N=${N:-100000}; ensure_tools nginx:nginx-light heaptrack:heaptrack heaptrack_print:heaptrack curl:curl ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
esac
build_release

make_workdir prof

mkdir -p "$WORK/data" "$WORK/run/spool" "$WORK/run/save" && mkdir -m 700 "$WORK/run/statedir"
if [[ $MODE == syscalls ]]; then
    head -c $((N * SIZE_KB * 1024)) /dev/urandom |
        split -b $((SIZE_KB * 1024)) -a 6 -d --additional-suffix=.bin - "$WORK/data/f"
    start_nginx "$WORK/nginx" "$WORK/data"
    urls() { (cd "$WORK/data" && ls -- *.bin) | sed "s|^|http://127.0.0.1:$NGINX_PORT/|"; }
else
    head -c 1024 /dev/urandom >"$WORK/data/tiny.bin"
    start_nginx "$WORK/nginx" "$WORK/data" 'location /f/ { try_files /tiny.bin =404; }'
    urls() { seq -f "http://127.0.0.1:$NGINX_PORT/f/%07g.bin" 0 $((N - 1)); }
fi
{
    printf '{"type":"http.files","name":"prof","urls":['
    urls | sed 's/.*/"&"/' | paste -sd,
    printf ']}\n'
} >"$WORK/run/spool/prof.json"
cat >"$WORK/run/spool/spoolfetch.json" <<EOF
{"save_path": "$WORK/run/save", "state_dir": "$WORK/run/statedir", "instance": "bench",
 "concurrency": $CONC, "watch": "poll", "poll_ms": 50, "settle_ms": 0}
EOF
sync

if [[ $MODE == syscalls ]]; then
    log "strace -c -f spoolfetch: $N files × $SIZE_KB KiB, concurrency $CONC"
    RUST_LOG=info strace -c -f -o "$WORK/strace.txt" "$SPOOLFETCH" run --spool "$WORK/run/spool" --once \
        2>"$WORK/run/log" || die "spoolfetch failed: $(tail -n 3 "$WORK/run/log")"
    echo "### syscalls of spoolfetch for $N files × $SIZE_KB KiB (strace -c -f), per downloaded file"
    echo
    echo "| syscall | calls | errors | per file | % of syscall time |"
    echo "|---|---:|---:|---:|---:|"
    awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
            name = $NF; calls = $4; errs = (NF == 6) ? $5 : 0
            if (calls / n >= 0.5) printf "| %s | %d | %d | %.2f | %s |\n", name, calls, errs, calls / n, $1 }' \
        "$WORK/strace.txt"
    awk -v n="$N" '/ total$/ { printf "\nTotal: %d calls = %.1f per file (%d failed).\n", $4, $4 / n, $5 }' "$WORK/strace.txt"
else
    log "heaptrack spoolfetch: $N URLs"
    heaptrack -o "$WORK/heap" "$SPOOLFETCH" run --spool "$WORK/run/spool" --once >"$WORK/heaptrack.log" 2>&1 ||
        die "heaptrack/spoolfetch failed: $(tail -n 5 "$WORK/heaptrack.log")"
    heaptrack_print -f "$WORK"/heap.* --print-peaks 1 --print-allocators 0 --print-temporary 0 \
        --print-leaks 0 --peak-limit 20 --sub-peak-limit 20 >"$WORK/peaks.txt" 2>/dev/null
    echo "### heap at peak for a job of $N URLs (heaptrack), by allocation site"
    echo
    heaptrack_print -f "$WORK"/heap.* 2>/dev/null | grep -E '^(peak heap memory|peak RSS)' | sed 's/^/    /'
    echo
    # One line per call site: size, calls and the first three spoolfetch frames.
    awk '/ consumed over / && !/peak memory/ {
            if (hdr != "" && path != "") print hdr " ←" path
            hdr = $1 " over " $4 " calls"; path = ""; n = 0; next }
         /spoolfetch::/ && n < 3 { sub(/^ +/, ""); sub(/::h[0-9a-f]+$/, ""); path = path " " $0; n++ }
         END { if (hdr != "" && path != "") print hdr " ←" path }' "$WORK/peaks.txt" |
        sort -t' ' -k1,1 -h -r | awk '$1 ~ /M$/ || NR <= 8' | sed 's/^/    /'
fi
