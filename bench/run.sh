#!/usr/bin/env bash
# Throughput benchmark: spoolfetch vs curl --parallel vs aria2c, downloading
# N files of SIZE_KB KiB from a private nginx on 127.0.0.1.
#
#   bench/run.sh [--n N] [--size-kb K] [--conc C] [--runs R] [--tools "a b"]
#                [--states "deleted kept"] [--keep]
#
# The same settings can be given as environment variables N (2000), SIZE_KB
# (256), CONC (8), RUNS (3), TOOLS ("spoolfetch spoolfetch_tuned curl
# aria2c"), STATES ("deleted kept"); flags win. `spoolfetch` runs with the
# configuration a user gets (only save_path, state_dir, instance and
# concurrency set); `spoolfetch_tuned` with watch poll, poll_ms 50 and
# settle_ms 0; spoolfetch_nosync is the tuned run under eatmydata (fsync
# off); spoolfetch_base runs SPOOLFETCH_BASE_BIN (an older build) with the
# defaults in the same rounds, for before/after pairs. States: `deleted`
# removes each run's output before the next run (the page cache's fast
# state), `kept` keeps every output until the end; each state gets its own
# table. KEEP=1 / --keep leaves the temp dir in place. Noise control: before
# each run wait up to QUIET_WAIT s (120) for the CPUs to be ≤ QUIET_PCT %
# (10) busy; repeat a run (MAX_ATTEMPTS, 4, in all) when other processes
# used more than NOISE_MAX % (15) of the CPUs during it. TMPDIR picks the
# disk; SPOOLFETCH_BIN=path benchmarks that binary instead of building.
# Results: Markdown tables on stdout and in bench/out/results-<date>.md.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-2000}
SIZE_KB=${SIZE_KB:-256}
CONC=${CONC:-8}
RUNS=${RUNS:-3}
KEEP=${KEEP:-0}
TOOLS=${TOOLS:-"spoolfetch spoolfetch_tuned curl aria2c"}
STATES=${STATES:-"deleted kept"}
# A run during which other processes kept more than NOISE_MAX % of the CPUs
# busy is repeated, up to MAX_ATTEMPTS times in all.
NOISE_MAX=${NOISE_MAX:-15}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-4}

while (($#)); do
    case $1 in
        --n) N=$2; shift 2 ;;
        --size-kb) SIZE_KB=$2; shift 2 ;;
        --conc) CONC=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --states) STATES=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
for st in $STATES; do
    [[ $st == deleted || $st == kept ]] || die "states are 'deleted' and 'kept', got '$st'"
done
for v in N SIZE_KB CONC RUNS MAX_ATTEMPTS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done

ensure_tools nginx:nginx-light aria2c:aria2 curl:curl /usr/bin/time:time sha256sum:coreutils
if [[ " $TOOLS " == *" spoolfetch_base "* ]]; then
    log "spoolfetch_base: $SPOOLFETCH_BASE_BIN (sha256 $(sha256sum "$SPOOLFETCH_BASE_BIN" | cut -c1-12))"
fi
if [[ " $TOOLS " == *" spoolfetch_nosync "* ]]; then ensure_tools eatmydata:eatmydata; fi
build_release

make_workdir bench

# --- data -------------------------------------------------------------------
log "generating $N files of $SIZE_KB KiB in $WORK/data"
mkdir -p "$WORK/data"
head -c $((N * SIZE_KB * 1024)) /dev/urandom |
    split -b $((SIZE_KB * 1024)) -a 6 -d --additional-suffix=.bin - "$WORK/data/f"
(cd "$WORK/data" && sha256sum -- *.bin >"$WORK/SHA256SUMS")
[[ $(wc -l <"$WORK/SHA256SUMS") == "$N" ]] || die "file generation went wrong"

start_nginx "$WORK/nginx" "$WORK/data"
BASE="http://127.0.0.1:$NGINX_PORT"
# Warm the page cache and nginx's open_file_cache; check one file.
curl --silent --fail -o /dev/null "$BASE/f000000.bin" || die "nginx does not serve the files"
cat "$WORK"/data/*.bin >/dev/null

# --- inputs for each tool -------------------------------------------------------
(cd "$WORK/data" && ls -- *.bin) >"$WORK/names"
sed "s|^|$BASE/|" "$WORK/names" >"$WORK/urls.txt"
{
    printf '{"type":"http.files","name":"bench","urls":['
    sed 's/.*/"&"/' "$WORK/urls.txt" | paste -sd,
    printf ']}\n'
} >"$WORK/job.json"

# --- one run of one tool --------------------------------------------------------
# Each run gets a fresh RUN dir with an empty output folder; prints nothing,
# leaves RUN/m.time, RUN/m.wall and (spoolfetch) RUN/ckpt.
verify_output() {
    local out=$1 count
    count=$(find "$out" -type f | wc -l)
    [[ $count == "$N" ]] || { log "expected $N files in $out, found $count"; return 1; }
    (cd "$out" && sha256sum --quiet --strict -c "$WORK/SHA256SUMS") || { log "checksum mismatch in $out"; return 1; }
}

# SPOOLFETCH_TUNED=1: watch poll, poll_ms 50, settle_ms 0; otherwise the
# configuration a user gets.
run_spoolfetch() {
    local run=$1 wrap=("${@:2}") tuned=""
    mkdir -p "$run/spool" "$run/save" && mkdir -m 700 "$run/statedir"
    if [[ ${SPOOLFETCH_TUNED:-0} == 1 ]]; then tuned=', "watch": "poll", "poll_ms": 50, "settle_ms": 0'; fi
    cat >"$run/spool/spoolfetch.json" <<EOF
{"save_path": "$run/save", "state_dir": "$run/statedir", "instance": "bench",
 "concurrency": $CONC$tuned}
EOF
    cp "$WORK/job.json" "$run/spool/bench.json"
    RUST_LOG=info timed "$run/m" "${wrap[@]}" "${SPOOLFETCH_RUN_BIN:-$SPOOLFETCH}" run --spool "$run/spool" --once 2>"$run/spoolfetch.log" ||
        { log "spoolfetch failed: $(tail -n 3 "$run/spoolfetch.log")"; return 1; }
    verify_output "$run/save/bench" || return 1
    local logged files
    logged=$(checkpoint_logged_bytes "$run/spoolfetch.log")
    [[ -n $logged ]] || { log "no 'done … checkpoint B bytes' line in $run/spoolfetch.log"; return 1; }
    files=$(checkpoint_files_bytes "$run/spool")
    echo "$logged $files" >"$run/ckpt"
    # The store counts every byte it wrote, including snapshots that were
    # later replaced, so what is left on disk can only be smaller.
    # (the log rounds to a tenth of its unit, hence the 5 % slack).
    ((files <= logged + logged / 20)) || log "warning: checkpoint files ($files B) exceed the logged total ($logged B)"
}

# Diagnostic only (TOOLS="spoolfetch spoolfetch_nosync curl"): spoolfetch with
# every fsync turned into a no-op by eatmydata, to show what durability costs.
run_spoolfetch_nosync() {
    command -v eatmydata >/dev/null 2>&1 || die "spoolfetch_nosync needs eatmydata (apt-get install eatmydata)"
    SPOOLFETCH_TUNED=1 run_spoolfetch "$1" eatmydata
}

run_spoolfetch_tuned() {
    SPOOLFETCH_TUNED=1 run_spoolfetch "$1"
}

# Before/after comparisons (TOOLS="spoolfetch_base spoolfetch curl"): the
# binary SPOOLFETCH_BASE_BIN, same settings, same rounds.
run_spoolfetch_base() {
    [[ -x ${SPOOLFETCH_BASE_BIN:-} ]] || die "spoolfetch_base needs SPOOLFETCH_BASE_BIN=path/to/spoolfetch"
    SPOOLFETCH_RUN_BIN=$SPOOLFETCH_BASE_BIN run_spoolfetch "$1"
}

run_curl() {
    local run=$1
    mkdir -p "$run/out"
    paste -d'\n' <(sed 's/.*/url = "&"/' "$WORK/urls.txt") \
        <(sed "s|.*|output = \"$run/out/&\"|" "$WORK/names") >"$run/curl.cfg"
    # --no-progress-meter: curl 7.88 still draws its parallel progress meter
    # with --silent alone.
    timed "$run/m" curl --parallel --parallel-max "$CONC" --silent --no-progress-meter --fail \
        -K "$run/curl.cfg" 2>"$run/curl.log" || { log "curl failed: $(tail -n 3 "$run/curl.log")"; return 1; }
    verify_output "$run/out"
}

run_aria2c() {
    local run=$1
    mkdir -p "$run/out"
    timed "$run/m" aria2c -j "$CONC" -x1 -s1 -i "$WORK/urls.txt" -d "$run/out" --allow-overwrite=true \
        --auto-file-renaming=false --console-log-level=warn --summary-interval=0 --file-allocation=none \
        >"$run/aria2c.log" 2>&1 || { log "aria2c failed: $(tail -n 3 "$run/aria2c.log")"; return 1; }
    verify_output "$run/out"
}

# --- the runs, interleaved so that drift hits every tool alike ------------------
# State `kept` keeps outputs until the end (when the disk has room): on ext4,
# creating files shortly after deleting many makes the inode allocator skip
# "recently deleted" inodes, and the page cache holds the old outputs, so
# every tool runs slower there. State `deleted` removes each output (and
# syncs) before the next run: the fast state. Each has its own table.
mkdir -p "$WORK/results"
for state in $STATES; do
    keep_outputs=0
    if [[ $state == kept ]]; then
        need_kb=$(($(wc -w <<<"$TOOLS") * RUNS * MAX_ATTEMPTS * N * SIZE_KB * 5 / 4))
        free_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
        keep_outputs=1
        if ((free_kb < need_kb + 1048576)); then
            keep_outputs=0
            log "warning: not enough disk to keep every run's output in state 'kept'; deleting between runs"
        fi
    fi
    mkdir -p "$WORK/results/$state"
    for r in $(seq "$RUNS"); do
        for tool in $TOOLS; do
            for attempt in $(seq "$MAX_ATTEMPTS"); do
                run="$WORK/runs/$state/$tool.$r.$attempt"
                mkdir -p "$run"
                sync # earlier runs' dirty pages must not be flushed during this one
                wait_quiet
                "run_$tool" "$run" || die "$tool run $r failed (see $run)"
                read -r rss_kb _ user sys <"$run/m.time"
                wall=$(cat "$run/m.wall")
                noise=$(cat "$run/m.noise")
                ((keep_outputs)) || { rm -rf "$run/out" "$run/save" && sync; }
                msg="[$state] $tool run $r/$RUNS: ${wall} s, peak RSS $((rss_kb / 1024)) MiB, CPU $(calc "$user + $sys") s, other load ${noise}%"
                if ((noise > NOISE_MAX)) && ((attempt < MAX_ATTEMPTS)); then
                    log "$msg — discarded (other load > NOISE_MAX=$NOISE_MAX%), repeating"
                    continue
                fi
                log "$msg"
                echo "$wall $rss_kb $(calc "$user + $sys" 2) $noise" >>"$WORK/results/$state/$tool"
                if [[ -f $run/ckpt ]]; then cat "$run/ckpt" >>"$WORK/results/$state/$tool.ckpt"; fi
                break
            done
        done
    done
    # The next state starts from an empty disk.
    rm -rf "$WORK/runs/$state"/*/out "$WORK/runs/$state"/*/save
    sync
done

# --- report ----------------------------------------------------------------------
MB=$(calc "$N * $SIZE_KB * 1024 / 1000000" 1)
DATE=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$BENCH_DIR/out"
REPORT="$BENCH_DIR/out/results-$DATE.md"
report_state() {
    local state=$1 tool w rss cpu ratio paired cpu_ratio logged ondisk
    local dir="$WORK/results/$state"
    col() { awk -v c="$2" '{ print $c }' "$dir/$1"; }
    declare -A WALL CPU
    for tool in $TOOLS; do
        # shellcheck disable=SC2046
        WALL[$tool]=$(median $(col "$tool" 1))
        # shellcheck disable=SC2046
        CPU[$tool]=$(median $(col "$tool" 3))
    done
    echo "### State \`$state\`"
    echo
    echo "| tool | wall s (median) | wall ÷ curl | paired ÷ curl | CPU ÷ curl | files/s | MB/s | peak RSS MiB | CPU s (user+sys) | all walls s | other load % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    for tool in $TOOLS; do
        w=${WALL[$tool]}
        cpu=${CPU[$tool]}
        # shellcheck disable=SC2046
        rss=$(median $(col "$tool" 2))
        ratio="–" paired="–" cpu_ratio="–"
        if [[ -n ${WALL[curl]:-} ]]; then
            ratio="$(calc "$w / ${WALL[curl]}")×"
            cpu_ratio="$(calc "$cpu / ${CPU[curl]}")×"
            # Median of the per-round ratios: runs of one round are seconds
            # apart, so slow drifts of the machine cancel out.
            # shellcheck disable=SC2046
            paired="$(calc "$(median $(paste -d' ' <(col "$tool" 1) <(col curl 1) | awk '{ print $1 / $2 }'))")×"
        fi
        echo "| $tool | $w | $ratio | $paired | $cpu_ratio | $(calc "$N / $w" 0) | $(calc "$MB / $w" 1) | $(calc "$rss / 1024" 1) | $cpu | $(col "$tool" 1 | paste -sd' ') | $(col "$tool" 4 | paste -sd' ') |"
    done
    if [[ -f $dir/spoolfetch.ckpt ]]; then
        # shellcheck disable=SC2046
        logged=$(median $(awk '{ print $1 }' "$dir/spoolfetch.ckpt"))
        # shellcheck disable=SC2046
        ondisk=$(median $(awk '{ print $2 }' "$dir/spoolfetch.ckpt"))
        echo
        echo "spoolfetch checkpoint writes: $logged bytes logged by the daemon (median) = $(calc "$logged / $N" 1) bytes per completed item; files left in state/<tid>/ (checkpoint.json + journal.*): $ondisk bytes = $(calc "$ondisk / $N" 1) bytes per item."
    fi
    echo
}
{
    echo "## $N files × $SIZE_KB KiB ($MB MB), concurrency $CONC, median of $RUNS runs — $(date '+%Y-%m-%d %H:%M')"
    echo
    machine_summary "$WORK"
    echo
    for state in $STATES; do report_state "$state"; done
} | tee "$REPORT"
log "written to $REPORT"
