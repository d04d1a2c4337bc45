#!/usr/bin/env bash
# Memory benchmark: peak RSS, wall time and checkpoint bytes per item of
# spoolfetch for one http.files job of N URLs (default 100,000) of a tiny
# file. nginx maps every /f/<anything> to one SIZE_B-byte file, so no file
# tree is generated; each URL still gets its own output file.
#
#   bench/memory.sh [--n N] [--size-b BYTES] [--conc C] [--missing] [--keep]
#
# --missing: every URL answers 404, to measure what failed items cost
# (the job ends failed; there are no files to check).
#
# Environment: N, SIZE_B (default 1024), CONC (default 8), MISSING=1, KEEP=1.
# Results on stdout and in bench/out/memory-<date>.md.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-100000}
SIZE_B=${SIZE_B:-1024}
CONC=${CONC:-8}
KEEP=${KEEP:-0}
MISSING=${MISSING:-0}

while (($#)); do
    case $1 in
        --n) N=$2; shift 2 ;;
        --size-b) SIZE_B=$2; shift 2 ;;
        --conc) CONC=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --missing) MISSING=1; shift ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for v in N SIZE_B CONC; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done

ensure_tools nginx:nginx-light curl:curl /usr/bin/time:time
build_release

make_workdir mem

mkdir -p "$WORK/data"
head -c "$SIZE_B" /dev/urandom >"$WORK/data/tiny.bin"
start_nginx "$WORK/nginx" "$WORK/data" 'location /f/ { try_files /tiny.bin =404; }'
BASE="http://127.0.0.1:$NGINX_PORT"
curl --silent --fail -o /dev/null "$BASE/f/probe" || die "nginx does not serve /f/"

RUN="$WORK/run"
mkdir -p "$RUN/spool" "$RUN/save" && mkdir -m 700 "$RUN/statedir"
log "writing a job of $N URLs"
{
    printf '{"type":"http.files","name":"mem","urls":['
    if ((MISSING)); then prefix=/missing/; else prefix=/f/; fi
    seq -f "\"$BASE$prefix%07g.bin\"" 0 $((N - 1)) | paste -sd,
    printf ']}\n'
} >"$WORK/job.json"
cat >"$RUN/spool/spoolfetch.json" <<EOF
{"save_path": "$RUN/save", "state_dir": "$RUN/statedir", "instance": "bench",
 "concurrency": $CONC, "watch": "poll", "poll_ms": 50, "settle_ms": 0}
EOF
cp "$WORK/job.json" "$RUN/spool/mem.json"
sync
wait_quiet

log "running spoolfetch (job file $(du -h "$WORK/job.json" | cut -f1))"
# RSS timeline: the daemon's VmRSS every 100 ms, to see which phase peaks.
sample_rss() {
    local pid="" t0 rss
    t0=$(date +%s%N)
    while [[ -z $pid ]]; do
        pid=$(pgrep -f -- "^$SPOOLFETCH run --spool $RUN/spool" | head -n 1 || true)
        sleep 0.02
    done
    while rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null) && [[ -n $rss ]]; do
        echo "$((($(date +%s%N) - t0) / 1000000)) $rss $(ls "/proc/$pid/task" 2>/dev/null | wc -l)"
        sleep 0.1
    done
}
sample_rss >"$RUN/rss.txt" &
SAMPLER=$!
if ((MISSING)); then
    # The job fails (every file is missing), so `run --once` exits 1.
    RUST_LOG=info timed "$RUN/m" "$SPOOLFETCH" run --spool "$RUN/spool" --once 2>"$RUN/spoolfetch.log" || true
    grep -q "job 1 (mem) failed: $N of $N files failed" "$RUN/spoolfetch.log" ||
        die "expected every file to fail: $(tail -n 3 "$RUN/spoolfetch.log")"
else
    RUST_LOG=info timed "$RUN/m" "$SPOOLFETCH" run --spool "$RUN/spool" --once 2>"$RUN/spoolfetch.log" ||
        die "spoolfetch failed: $(tail -n 3 "$RUN/spoolfetch.log")"
fi
wait "$SAMPLER" || true

if ((MISSING)); then
    count=$(find "$RUN/save/mem" -type f -name '*.bin' 2>/dev/null | wc -l)
    [[ $count == 0 ]] || die "expected no files, found $count"
else
    count=$(find "$RUN/save/mem" -type f -name '*.bin' | wc -l)
    [[ $count == "$N" ]] || die "expected $N files, found $count"
    # Every file must equal the served one: compare a sample with cmp and the
    # size of all.
    bad=$(find "$RUN/save/mem" -type f -name '*.bin' ! -size "${SIZE_B}c" | wc -l)
    [[ $bad == 0 ]] || die "$bad files have the wrong size"
    find "$RUN/save/mem" -type f -name '*.bin' | shuf -n 200 | while read -r f; do
        cmp -s "$f" "$WORK/data/tiny.bin" || die "$f differs from the served file"
    done
fi

# A failed run makes time(1) write a status line first: the figures are last.
read -r rss_kb _ user sys < <(tail -n 1 "$RUN/m.time")
wall=$(cat "$RUN/m.wall")
ondisk=$(checkpoint_files_bytes "$RUN/spool")
if ((MISSING)); then
    # A failed job logs no checkpoint size; what it wrote is on disk.
    logged=$ondisk
else
    logged=$(checkpoint_logged_bytes "$RUN/spoolfetch.log")
    [[ -n $logged ]] || die "no 'done … checkpoint B bytes' line in the log"
fi
ckfiles=$(find "$RUN/spool/state" -type f \( -name 'checkpoint.json' -o -name 'journal.*' \) -printf '%f=%s ' | sort)

DATE=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$BENCH_DIR/out"
REPORT="$BENCH_DIR/out/memory-$DATE.md"
{
    echo "## spoolfetch memory: one job of $N URLs × $SIZE_B B, concurrency $CONC — $(date '+%Y-%m-%d %H:%M')"
    echo
    machine_summary "$WORK"
    echo
    echo "| URLs | answers | peak RSS MiB | wall s | files/s | CPU s (user+sys) | checkpoint bytes (logged) | per item | left on disk | per item |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    echo "| $N | $(((MISSING)) && echo 404 || echo 200) | $(calc "$rss_kb / 1024" 1) | $wall | $(calc "$N / $wall" 0) | $(calc "$user + $sys") | $logged | $(calc "$logged / $N" 1) | $ondisk | $(calc "$ondisk / $N" 1) |"
    echo
    echo "Checkpoint files at the end: $ckfiles"
    echo
    echo "RSS timeline (ms since start, VmRSS MiB, threads): every ~0.25 s for 3 s, then every ~10 s; sampled every 0.1 s, so short spikes can be missed (peak RSS above is exact):"
    echo
    awk 'NR == 1 || $1 >= next_t { printf "    %6d ms %7.1f MiB %3d threads\n", $1, $2 / 1024, $3; next_t = $1 + ($1 < 3000 ? 250 : 10000) }
         $2 > peak { peak = $2; pt = $1; pth = $3 }
         END { printf "    peak: %.1f MiB at %d ms (%d threads)\n", peak / 1024, pt, pth }' "$RUN/rss.txt"
    echo
    echo "Daemon log:"
    echo
    grep -v DEBUG "$RUN/spoolfetch.log" | sed 's/^/    /' | tail -n 8
} | tee "$REPORT"
log "written to $REPORT"
