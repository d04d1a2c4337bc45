#!/usr/bin/env bash
# Douyin benchmark: one `douyin.post` job of WORKS works against the loopback
# fake Douyin (examples/fake_douyin.rs; every call's A-Bogus signature and
# F2's query order are checked), with API_MS of latency on every API call
# and MEDIA_MS on every media request, and the configuration a user gets
# (only `douyin.web_url` and the msToken endpoint `douyin.mssdk_url` point
# at the fake; calls of one cookie 1.5 s apart plus a random 0-1 s). The
# floor is the API calls no client can avoid, each costing the pacing
# interval, the jitter's mean and its latency: calls × (1.5 s + 0.5 s +
# API_MS).
#
# Then F2 0.0.1.7 (https://github.com/Johnserf-Seed/f2), the downloader the
# provider is modelled on, runs the same user's listing and downloads with
# its default options against a fresh instance of the same fake
# (bench/douyin_f2_fake.py patches its hosts to loopback), from a venv at
# F2_VENV (created with pip when it lacks f2; F2 is skipped, with the
# reason, when pip cannot install it). Each fake counts the requests it got.
#
#   bench/douyin.sh            # WORKS=500 API_MS=30 MEDIA_MS=100
#   F2=0 bench/douyin.sh       # spoolfetch only
#
# SPOOLFETCH_BIN / FAKE_DOUYIN_BIN skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKS=${WORKS:-500}
API_MS=${API_MS:-30}
MEDIA_MS=${MEDIA_MS:-100}
F2=${F2:-1}
F2_VENV=${F2_VENV:-${TMPDIR:-/tmp}/spoolfetch-bench-f2venv}
if [[ -z ${SPOOLFETCH_BIN:-} || -z ${FAKE_DOUYIN_BIN:-} ]]; then
    cargo build --release --locked --bin spoolfetch --example fake_douyin >&2
fi
BIN=${SPOOLFETCH_BIN:-target/release/spoolfetch}
FAKE=${FAKE_DOUYIN_BIN:-target/release/examples/fake_douyin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Starts a fake for tool $1: its output in $tmp/fake.$1, its stdin on fd 7.
start_fake() {
    mkfifo "$tmp/fifo.$1"
    "$FAKE" --users 2 --works "$WORKS" --api-latency-ms "$API_MS" --media-latency-ms "$MEDIA_MS" \
        < "$tmp/fifo.$1" > "$tmp/fake.$1" &
    fake_pid=$!
    exec 7> "$tmp/fifo.$1"
    for _ in $(seq 200); do grep -q READY "$tmp/fake.$1" 2>/dev/null && break; sleep 0.05; done
}

# Stops the fake (it prints its counters when its stdin closes).
stop_fake() {
    exec 7>&-
    wait "$fake_pid"
}

field() { sed -n "s/^$2=//p" "$tmp/fake.$1"; }

start_fake spoolfetch
BASE=$(field spoolfetch BASE_URL)
SEC=$(field spoolfetch SEC_UID_0)
spool="$tmp/spool"
mkdir -p "$spool"
printf '{"save_path":"%s","state_dir":"%s","instance":"bench","douyin":{"web_url":"%s/web","mssdk_url":"%s/mssdk"}}' \
    "$tmp/out" "$tmp/state" "$BASE" "$BASE" > "$spool/spoolfetch.json"
printf '{"type":"douyin.post","name":"u","sec_user_id":"%s"}' "$SEC" > "$spool/u.json"
start=$(date +%s.%N)
"$BIN" run --once --spool "$spool" 2> "$tmp/log" || { tail -20 "$tmp/log" >&2; exit 1; }
end=$(date +%s.%N)
stop_fake
files=$(find "$tmp/out/u" -type f | wc -l)
row() { echo "$1 $2 $3 $(field "$1" API_CALLS) $4 $(field "$1" BAD_SIGNATURES) $(field "$1" REQUESTS_ms_token | grep . || echo 0)"; }
row spoolfetch "$start" "$end" "$files" > "$tmp/rows"

f2_skip=""
if [[ $F2 == 1 ]]; then
    if ! "$F2_VENV/bin/python" -c 'import f2, gmssl' 2> /dev/null; then
        echo "creating $F2_VENV for F2 0.0.1.7 …" >&2
        # F2's pins (its package metadata); --no-deps for F2 itself, whose
        # pytest pins a benchmark does not need.
        if ! { python3 -m venv "$F2_VENV" \
            && "$F2_VENV/bin/pip" install -q --no-deps f2==0.0.1.7 gmssl==3.2.2 \
            && "$F2_VENV/bin/pip" install -q httpx==0.27.2 'pydantic==2.9.*' pyyaml==6.0.2 rich==13.9.3 \
                jsonpath-ng==1.6.1 aiofiles==24.1.0 aiosqlite==0.20.0 click==8.1.7 \
                importlib-resources==6.4.5 m3u8==3.6.0 qrcode==8.0 babel==2.13.0 pyexecjs==1.5.1 \
                protobuf==5.28.3 'websockets<13.0' websockets-proxy==0.1.2 browser-cookie3==0.20.1 \
                cryptography==44.0.0; } >&2; then
            f2_skip="pip could not install f2==0.0.1.7 and its dependencies into $F2_VENV"
        fi
    fi
    if [[ -z $f2_skip ]]; then
        start_fake f2
        BASE=$(field f2 BASE_URL)
        start=$(date +%s.%N)
        if "$F2_VENV/bin/python" bench/douyin_f2_fake.py "$BASE" "$(field f2 SEC_UID_0)" \
            "$(field f2 LOGIN_COOKIE)" "$tmp/f2out" > "$tmp/f2.log" 2>&1; then
            end=$(date +%s.%N)
            stop_fake
            files=$(find "$tmp/f2out" -type f | wc -l)
            row f2 "$start" "$end" "$files" >> "$tmp/rows"
        else
            stop_fake
            tail -20 "$tmp/f2.log" >&2
            f2_skip="F2 failed against the fake (its log's end is above)"
        fi
    fi
fi

python3 - "$tmp/rows" "$API_MS" "$f2_skip" <<'PY'
import sys
rows, api_ms, skip = sys.argv[1], int(sys.argv[2]), sys.argv[3]
got = {}
print("| tool | wall s | API calls | msToken requests | floor s (calls × (1.5 s + 0.5 s jitter + latency)) | wall ÷ floor | files | bad signatures |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for line in open(rows):
    tool, start, end, calls, files, bad, tokens = line.split()
    wall = float(end) - float(start)
    got[tool] = wall
    if tool == "spoolfetch":
        floor = int(calls) * (1.5 + 0.5 + api_ms / 1000)
        print(f"| spoolfetch | {wall:.1f} | {calls} | {tokens} | {floor:.1f} | {wall / floor:.3f} | {files} | {bad} |")
    else:
        # F2 keeps no interval: it sleeps its `timeout` after every page.
        print(f"| F2 0.0.1.7 | {wall:.1f} | {calls} | {tokens} | — | — | {files} | {bad} |")
if "f2" in got:
    print(f"\nspoolfetch wall ÷ F2 wall: {got['spoolfetch'] / got['f2']:.3f}")
elif skip:
    print(f"\nF2: skipped: {skip}")
PY
