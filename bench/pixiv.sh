#!/usr/bin/env bash
# Pixiv benchmark: one `pixiv.user` job of WORKS works (70 % one-page
# illust, 20 % manga of 2-5 pages, 10 % ugoira) against the loopback fake
# Pixiv (examples/fake_pixiv.rs) with API_LAT ms API latency and IMG_LAT ms
# image latency, run by spoolfetch and then by gallery-dl on a fresh fake
# with the same data, latencies and API interval.
#
#   bench/pixiv.sh [--works N] [--interval-ms I] [--conc C] [--runs R] [--keep]
#
# Environment: WORKS (1000), INTERVAL_MS (200), API_LAT (30), IMG_LAT (150),
# CONC (8: spoolfetch download threads; gallery-dl downloads one file at a
# time), RUNS (1), TOOLS ("spoolfetch gallery-dl"), KEEP (0); flags win.
# SPOOLFETCH_BIN / FAKE_PIXIV_BIN skip the build and use those binaries.
# Add spoolfetch_base to TOOLS to run SPOOLFETCH_BASE_BIN (an older build)
# in the same rounds, for before/after pairs.
# gallery-dl is installed with pip when `import gallery_dl` fails.
#
# Reports, per run: wall time, API calls (counted by the fake), the pacing
# floor calls x (INTERVAL_MS + API_LAT), wall/floor, files saved and the
# ratio to gallery-dl; checks that both tools saved the same files, byte
# for byte; and analyses the fake's call log (gaps between API calls,
# startup, the download tail). Results: Markdown on stdout and in
# bench/out/pixiv-<date>.md; call logs stay in the temp dir with --keep.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

WORKS=${WORKS:-1000}
INTERVAL_MS=${INTERVAL_MS:-200}
API_LAT=${API_LAT:-30}
IMG_LAT=${IMG_LAT:-150}
CONC=${CONC:-8}
RUNS=${RUNS:-1}
KEEP=${KEEP:-0}
TOOLS=${TOOLS:-"spoolfetch gallery-dl"}
PYTHON=${PYTHON:-python3}

log() { printf '[pixiv-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

while (($#)); do
    case $1 in
        --works) WORKS=$2; shift 2 ;;
        --interval-ms) INTERVAL_MS=$2; shift 2 ;;
        --conc) CONC=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

SPOOLFETCH="${SPOOLFETCH_BIN:-$REPO_DIR/target/release/spoolfetch}"
FAKE="${FAKE_PIXIV_BIN:-$REPO_DIR/target/release/examples/fake_pixiv}"
if [[ -z ${SPOOLFETCH_BIN:-} || -z ${FAKE_PIXIV_BIN:-} ]]; then
    log "cargo build --release --bin spoolfetch --example fake_pixiv"
    (cd "$REPO_DIR" && cargo build --release --quiet --bin spoolfetch --example fake_pixiv) ||
        die "cargo build --release failed"
    BUILD="cargo build --release of $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo "an unknown revision")"
else
    BUILD="binaries $SPOOLFETCH (sha256 $(sha256sum "$SPOOLFETCH" | cut -c1-12)), $FAKE"
fi
[[ -x $SPOOLFETCH && -x $FAKE ]] || die "missing $SPOOLFETCH or $FAKE"
if [[ " $TOOLS " == *" gallery-dl "* ]] && ! "$PYTHON" -c 'import gallery_dl' 2>/dev/null; then
    log "pip install gallery-dl"
    "$PYTHON" -m pip install --quiet gallery-dl || die "pip install gallery-dl failed"
fi
GDL_VERSION=$("$PYTHON" -c 'from gallery_dl import version; print(version.__version__)' 2>/dev/null || echo "-")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/spoolfetch-pixiv-bench.XXXXXX")
FAKE_PID=""
cleanup() {
    if [[ -n $FAKE_PID ]]; then
        exec 7>&- 2>/dev/null || true
        wait "$FAKE_PID" 2>/dev/null || true
    fi
    if ((KEEP)); then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# start_fake DIR: a fresh fake with the data set; sets BASE_URL, TOKEN.
start_fake() {
    local dir=$1
    mkdir -p "$dir"
    mkfifo "$dir/fake.in"
    "$FAKE" --port 0 --seconds 3600 --user-works "$WORKS" --api-latency-ms "$API_LAT" \
        --image-latency-ms "$IMG_LAT" --call-log "$dir/calls.tsv" \
        <"$dir/fake.in" >"$dir/fake.out" 2>"$dir/fake.err" &
    FAKE_PID=$!
    exec 7>"$dir/fake.in"
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q '^READY$' "$dir/fake.out" 2>/dev/null && break
        sleep 0.05
    done
    grep -q '^READY$' "$dir/fake.out" || die "the fake did not start: $(cat "$dir/fake.err")"
    BASE_URL=$(sed -n 's/^BASE_URL=//p' "$dir/fake.out")
    TOKEN=$(sed -n 's/^REFRESH_TOKEN=//p' "$dir/fake.out")
}

# stop_fake DIR: closes its stdin, waits; sets API_CALLS.
stop_fake() {
    local dir=$1
    exec 7>&-
    wait "$FAKE_PID" || die "the fake failed: $(cat "$dir/fake.err")"
    FAKE_PID=""
    API_CALLS=$(sed -n 's/^API_CALLS=//p' "$dir/fake.out")
    [[ -n $API_CALLS ]] || die "no API_CALLS from the fake"
}

# Files the data set should produce (see examples/fake_pixiv.rs).
EXPECTED=$("$PYTHON" -c "
n = 0
for i in range(100001, 100001 + $WORKS):
    n += 2 + (i // 10) % 4 if i % 10 in (7, 8) else 1
print(n)")

run_spoolfetch() {
    local dir=$1 bin=${2:-$SPOOLFETCH} out
    out="$dir/files"
    mkdir -p "$dir/spool"
    cat >"$dir/spool/spoolfetch.json" <<EOF
{
  "save_path": "$out",
  "state_dir": "$dir/state",
  "instance": "bench",
  "concurrency": $CONC,
  "interval_ms": $INTERVAL_MS,
  "pixiv": {"api_url": "$BASE_URL", "oauth_url": "$BASE_URL", "refresh_token": "$TOKEN",
            "ugoira_format": "zip"}
}
EOF
    printf '{"type": "pixiv.user", "user_id": 11}\n' >"$dir/spool/.user11.tmp"
    mv "$dir/spool/.user11.tmp" "$dir/spool/user11.json"
    START_MS=$(now_ms)
    env -u SPOOLFETCH_CONFIG -u SSL_CERT_FILE RUST_LOG=info \
        "$bin" run --spool "$dir/spool" --once >"$dir/tool.log" 2>&1 ||
        die "spoolfetch failed: $(tail -5 "$dir/tool.log")"
    END_MS=$(now_ms)
    FILES_DIR="$out/user11"
}

run_gallery_dl() {
    local dir=$1
    mkdir -p "$dir/files"
    START_MS=$(now_ms)
    "$PYTHON" "$BENCH_DIR/gallery_dl_fake.py" --fake-base "$BASE_URL" \
        --config-ignore --cache-file "$dir/gdl-cache.sqlite3" \
        -o "refresh-token=$TOKEN" \
        -o "sleep-request=$(awk "BEGIN{print $INTERVAL_MS/1000}")" \
        -o ugoira=true -o sanity=false \
        -D "$dir/files" "https://www.pixiv.net/en/users/11/artworks" >"$dir/tool.log" 2>&1 ||
        die "gallery-dl failed: $(tail -5 "$dir/tool.log")"
    END_MS=$(now_ms)
    FILES_DIR="$dir/files"
}

# Downloaded files, without spoolfetch's ugoira frame-delay JSON.
count_files() { find "$1" -type f ! -name '*.json' ! -name '.*' | wc -l; }

# analyse DIR START_MS END_MS: call-log facts, one "key=value" per line.
analyse() {
    "$PYTHON" - "$1/calls.tsv" "$2" "$3" "$INTERVAL_MS" <<'EOF'
import sys, statistics as st
path, start, end, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
api, tok, img = [], [], []
t0 = None
for line in open(path):
    if line.startswith("# t0_unix_ms="):
        t0 = int(line.split("=")[1]); continue
    kind, s, e, status, target = line.rstrip("\n").split("\t", 4)
    row = (float(s), float(e), int(status), target)
    {"api": api, "token": tok, "image": img}[kind].append(row)
s0 = start - t0  # tool start on the fake's clock, ms
e0 = end - t0
api.sort()
gaps = [b[0] - a[1] for a, b in zip(api, api[1:])]
paths = {}
for a in api:
    p = a[3].split("?")[0].split(" ")[-1]
    paths[p] = paths.get(p, 0) + 1
first_req = min([r[0] for r in api + tok] or [s0])
last_api = api[-1][1] if api else s0
last_img = max([r[0] for r in img] or [last_api])
imgs_after = sum(1 for r in img if r[0] > last_api)
out = {
    "api_by_path": " ".join(f"{k}:{v}" for k, v in sorted(paths.items())),
    "token_requests": len(tok),
    "image_requests": len(img),
    "startup_s": (first_req - s0) / 1000,
    "paced_span_s": ((last_api - api[0][0]) / 1000) if api else 0,
    "latency_sum_s": sum(a[1] - a[0] for a in api) / 1000,
    "gap_mean_ms": st.mean(gaps) if gaps else 0,
    "gap_median_ms": st.median(gaps) if gaps else 0,
    "gap_max_ms": max(gaps) if gaps else 0,
    "gap_excess_s": sum(max(0, g - interval) for g in gaps) / 1000,
    "gaps_over_1.5x": sum(1 for g in gaps if g > 1.5 * interval),
    "tail_s": (last_img - last_api) / 1000,
    "images_after_last_api": imgs_after,
    "exit_s": (e0 - last_img) / 1000,
}
for k, v in out.items():
    print(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}")
EOF
}

fmt() { awk "BEGIN{printf \"%.${2:-1}f\", $1}"; }

declare -A WALL CALLS FILES DIRS
HOST_CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
log "data set: $WORKS works, $EXPECTED files expected; interval $INTERVAL_MS ms, API latency $API_LAT ms, image latency $IMG_LAT ms"
for ((run = 1; run <= RUNS; run++)); do
    for tool in $TOOLS; do
        dir="$TMP/$tool-$run"
        start_fake "$dir"
        log "run $run: $tool against $BASE_URL"
        case $tool in
            spoolfetch) run_spoolfetch "$dir" ;;
            spoolfetch_base)
                [[ -x ${SPOOLFETCH_BASE_BIN:-} ]] || die "spoolfetch_base needs SPOOLFETCH_BASE_BIN=path/to/spoolfetch"
                run_spoolfetch "$dir" "$SPOOLFETCH_BASE_BIN"
                ;;
            gallery-dl) run_gallery_dl "$dir" ;;
            *) die "unknown tool $tool" ;;
        esac
        stop_fake "$dir"
        WALL[$tool-$run]=$(awk "BEGIN{print ($END_MS - $START_MS)/1000}")
        CALLS[$tool-$run]=$API_CALLS
        FILES[$tool-$run]=$(count_files "$FILES_DIR")
        DIRS[$tool-$run]=$FILES_DIR
        analyse "$dir" "$START_MS" "$END_MS" >"$dir/analysis.txt"
        log "$tool: ${WALL[$tool-$run]} s, $API_CALLS API calls, ${FILES[$tool-$run]} files; load $(cut -d' ' -f1-3 /proc/loadavg)"
    done
done

# Same files, byte for byte (gallery-dl names ugoira zips {id}_p0.zip,
# spoolfetch {id}_ugoira1920x1080.zip).
compare() {
    local a=$1 b=$2 f name alt n=0 bad=0
    while IFS= read -r f; do
        name=${f##*/}
        alt=$name
        [[ $name == *_p0.zip ]] && alt="${name%_p0.zip}_ugoira1920x1080.zip"
        if ! cmp -s "$f" "$b/$alt"; then
            bad=$((bad + 1))
            ((bad <= 5)) && log "differs or missing: $name"
        fi
        n=$((n + 1))
    done < <(find "$a" -type f ! -name '.*')
    echo "$n compared, $bad different"
}

md=$(mktemp)
{
    echo "Pixiv benchmark $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs ($HOST_CPU), load at the end $(cut -d' ' -f1-3 /proc/loadavg); $BUILD; gallery-dl $GDL_VERSION."
    echo
    echo "Data set: user 11, $WORKS works ($EXPECTED files expected). API interval $INTERVAL_MS ms, API latency $API_LAT ms, image latency $IMG_LAT ms; spoolfetch concurrency $CONC, ugoira_format zip; gallery-dl ugoira=true (zip), sanity=false. Floor = API calls × ($INTERVAL_MS + $API_LAT) ms."
    echo
    echo "| run | tool | wall s | API calls | floor s | wall/floor | files | ratio to gallery-dl |"
    echo "|---|---|---|---|---|---|---|---|"
    for ((run = 1; run <= RUNS; run++)); do
        for tool in $TOOLS; do
            k=$tool-$run
            floor=$(awk "BEGIN{print ${CALLS[$k]} * ($INTERVAL_MS + $API_LAT) / 1000}")
            ratio="-"
            if [[ -n ${WALL[gallery-dl-$run]:-} ]]; then
                ratio=$(fmt "${WALL[$k]} / ${WALL[gallery-dl-$run]}" 3)
            fi
            echo "| $run | $tool | $(fmt "${WALL[$k]}" 1) | ${CALLS[$k]} | $(fmt "$floor" 1) | $(fmt "${WALL[$k]} / $floor" 3) | ${FILES[$k]} | $ratio |"
        done
    done
    echo
    for ((run = 1; run <= RUNS; run++)); do
        if [[ -n ${WALL[spoolfetch-$run]:-} && -n ${WALL[gallery-dl-$run]:-} ]]; then
            echo "Run $run, same files: $(compare "${DIRS[gallery-dl-$run]}" "${DIRS[spoolfetch-$run]}") (every gallery-dl file against spoolfetch's)."
        fi
        for tool in $TOOLS; do
            k=$tool-$run
            floor=$(awk "BEGIN{print ${CALLS[$k]} * ($INTERVAL_MS + $API_LAT) / 1000}")
            echo
            echo "Run $run, $tool call log: $(tr '\n' ' ' <"$TMP/$k/analysis.txt")"
            if [[ $tool == spoolfetch* ]]; then
                within=$(awk "BEGIN{print (${WALL[$k]} <= 1.15 * $floor) ? \"met\" : \"MISSED\"}")
                line="Run $run targets: within 15 % of the floor: **$within** ($(fmt "${WALL[$k]} / $floor" 3))"
                if [[ -n ${WALL[gallery-dl-$run]:-} ]]; then
                    quarter=$(awk "BEGIN{print (${WALL[$k]} <= 0.25 * ${WALL[gallery-dl-$run]}) ? \"met\" : \"MISSED\"}")
                    line+="; at most a quarter of gallery-dl: **$quarter** ($(fmt "${WALL[$k]} / ${WALL[gallery-dl-$run]}" 3))"
                fi
                echo
                echo "$line."
            fi
        done
    done
} >"$md"
mkdir -p "$BENCH_DIR/out"
report="$BENCH_DIR/out/pixiv-$(date '+%Y-%m-%d-%H%M%S').md"
cp "$md" "$report"
cat "$md"
rm -f "$md"
log "report: $report"
