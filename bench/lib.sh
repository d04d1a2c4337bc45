# Shared helpers for bench/run.sh and bench/memory.sh. Sourced, not run.
# shellcheck shell=bash

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
# SPOOLFETCH_BIN=/path/to/spoolfetch skips the build and benchmarks that
# binary (for example one built from a clean `git archive` while the work
# tree is mid-edit).
# CARGO_PROFILE: `release` (the installed binary) or `profiling` (the same
# with line tables, for bench/profile.sh).
CARGO_PROFILE=${CARGO_PROFILE:-release}
SPOOLFETCH="${SPOOLFETCH_BIN:-$REPO_DIR/target/$CARGO_PROFILE/spoolfetch}"
SPOOLFETCH_BUILD=""

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs missing tools with apt-get (needs root or sudo). Arguments are
# "command:package" pairs.
ensure_tools() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x $cmd ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing missing packages: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install ${missing[*]}"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_release() {
    if [[ -n ${SPOOLFETCH_BIN:-} ]]; then
        [[ -x $SPOOLFETCH ]] || die "SPOOLFETCH_BIN=$SPOOLFETCH is not an executable"
        SPOOLFETCH_BUILD="binary $SPOOLFETCH (sha256 $(sha256sum "$SPOOLFETCH" | cut -c1-12))"
        log "using $SPOOLFETCH_BUILD"
        return
    fi
    log "cargo build --profile $CARGO_PROFILE"
    (cd "$REPO_DIR" && cargo build --profile "$CARGO_PROFILE" --quiet) || die "cargo build --profile $CARGO_PROFILE failed"
    [[ -x $SPOOLFETCH ]] || die "$SPOOLFETCH not found after the build"
    SPOOLFETCH_BUILD="cargo build --profile $CARGO_PROFILE of $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo "an unknown revision")"
}

# Returns success when something accepts connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

NGINX_PID=""
NGINX_PORT=""

# start_nginx PREFIX_DIR ROOT_DIR [EXTRA_SERVER_DIRECTIVES]
# Writes PREFIX_DIR/nginx.conf, starts nginx in the foreground (daemon off)
# as a background job of this shell and sets NGINX_PID and NGINX_PORT.
start_nginx() {
    local prefix=$1 root=$2 extra=${3:-} attempt port
    mkdir -p "$prefix/tmp"
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" && continue
        cat >"$prefix/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
$( ((EUID == 0)) && echo "user root;" )
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    open_file_cache max=10000 inactive=60s;
    types { }
    default_type application/octet-stream;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $root;
        $extra
    }
}
EOF
        nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
        NGINX_PID=$!
        local i
        for i in $(seq 50); do
            if ! kill -0 "$NGINX_PID" 2>/dev/null; then break; fi
            if port_in_use "$port"; then
                NGINX_PORT=$port
                log "nginx $(nginx -v 2>&1 | sed 's/.*\///') pid $NGINX_PID on 127.0.0.1:$port"
                return 0
            fi
            sleep 0.1
        done
        stop_nginx
        log "nginx did not start on port $port (attempt $attempt); $(tail -n 2 "$prefix/error.log" 2>/dev/null || true)"
    done
    die "could not start nginx"
}

# Creates the run's temp folder in $WORK (world-readable, so that nginx's
# workers can serve from it) and, on exit, stops nginx and removes the
# folder unless KEEP=1. Ctrl-C exits with 130 through the same cleanup.
make_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/spoolfetch-$1.XXXXXX")
    chmod 755 "$WORK"
    trap cleanup_workdir EXIT
    trap 'exit 130' INT TERM
}

# The EXIT trap of make_workdir.
cleanup_workdir() {
    stop_nginx
    if [[ ${KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

stop_nginx() {
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=""
}

# Busy CPU time of the whole machine, in clock ticks (user, nice, system,
# irq, softirq and steal from /proc/stat).
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# CPU time (ticks) used so far by the benchmark's nginx, master and workers.
nginx_ticks() {
    [[ -n $NGINX_PID ]] || { echo 0; return; }
    local p
    for p in "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); do
        awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
    done | awk '{ s += $1 } END { print s + 0 }'
}

# timed OUT_PREFIX cmd...: runs cmd under /usr/bin/time; writes
# OUT_PREFIX.time ("maxrss_kb elapsed user sys"), OUT_PREFIX.wall
# (nanosecond wall clock) and OUT_PREFIX.noise: the share of all CPUs that
# processes other than cmd and nginx used meanwhile (other benchmarks,
# builds, …; kernel threads doing cmd's writeback count too, so a quiet
# machine shows a few percent). Returns the command's exit status.
timed() {
    local out=$1 t0 t1 b0 b1 n0 n1 rc=0
    shift
    b0=$(machine_busy_ticks) n0=$(nginx_ticks)
    t0=$(date +%s%N)
    /usr/bin/time -f '%M %e %U %S' -o "$out.time" "$@" || rc=$?
    t1=$(date +%s%N)
    b1=$(machine_busy_ticks) n1=$(nginx_ticks)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }' >"$out.wall"
    if ((rc == 0)); then
        read -r _ _ user sys <"$out.time"
        awk -v busy=$((b1 - b0)) -v ng=$((n1 - n0)) -v hz="$(getconf CLK_TCK)" -v u="$user" -v s="$sys" \
            -v wall="$(cat "$out.wall")" -v cpus="$(nproc)" 'BEGIN {
                f = ((busy - ng) / hz - u - s) / (wall * cpus); if (f < 0) f = 0
                printf "%.0f\n", 100 * f }' >"$out.noise"
    fi
    return "$rc"
}

# median of the numbers given as arguments
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        s = sprintf("%.3f", m); sub(/\.?0+$/, "", s); print s }'
}

# calc EXPR: floating-point arithmetic with awk.
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# Bytes in a job's checkpoint files (checkpoint.json + journal.*) under
# SPOOL/state/*/.
checkpoint_files_bytes() {
    local spool=$1
    find "$spool/state" -type f \( -name 'checkpoint.json' -o -name 'journal.*' \) -printf '%s\n' 2>/dev/null |
        awk '{ s += $1 } END { print s + 0 }'
}

# Value of "checkpoint B bytes" from the daemon's done line, or empty.
# The daemon logs the checkpoint size for people (`checkpoint 176.7 KiB`,
# older builds `checkpoint 180933 bytes`); this gives bytes, rounded as
# logged (to a tenth of the unit).
checkpoint_logged_bytes() {
    sed -n 's/.* done: .*; checkpoint \([0-9.]*\) \(bytes\|B\|KiB\|MiB\|GiB\).*/\1 \2/p' "$1" | tail -n 1 |
        awk '{ m = ($2 == "KiB") ? 1024 : ($2 == "MiB") ? 1048576 : ($2 == "GiB") ? 1073741824 : 1
               printf "%d\n", $1 * m + 0.5 }'
}

machine_summary() {
    local disk
    disk=$(df -hT "${1:-/tmp}" | awk 'NR == 2 { print $1 " (" $2 ", " $3 " total, " $5 " free)" }')
    echo "- CPU: $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- Memory: $(free -m | awk '/^Mem:/ { printf "%.1f GiB", $2 / 1024 }')"
    echo "- Disk (bench temp dir): $disk"
    echo "- spoolfetch: ${SPOOLFETCH_BUILD:-$SPOOLFETCH}"
    echo "- Kernel: $(uname -r); $(nginx -v 2>&1); $(curl --version | head -n 1 | cut -d' ' -f1-2); $(command -v aria2c >/dev/null && aria2c --version | head -n 1)"
}

# Percentage of all CPUs busy over the last ~0.5 s (from /proc/stat).
cpu_busy_pct() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2];
        printf "%d\n", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

# Waits (up to QUIET_WAIT seconds, default 120; 0 = never wait) until the
# machine is idle enough (busy ≤ QUIET_PCT %, default 10) for a timed run:
# other processes' CPU use skews wall times on small machines.
wait_quiet() {
    local limit=${QUIET_WAIT:-120} pct=${QUIET_PCT:-10} waited=0 busy
    ((limit > 0)) || return 0
    while busy=$(cpu_busy_pct) && ((busy > pct)); do
        if ((waited >= limit)); then
            log "warning: machine still ${busy}% busy after ${limit} s; timing anyway"
            return 0
        fi
        ((waited == 0)) && log "machine ${busy}% busy; waiting for it to settle (QUIET_WAIT=$limit)"
        sleep 2
        waited=$((waited + 3))
    done
}
