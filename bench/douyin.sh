#!/usr/bin/env bash
# Douyin benchmark: one `douyin.post` job of WORKS works against the loopback
# fake Douyin (examples/fake_douyin.rs; every call's A-Bogus signature and
# F2's query order are checked), with API_MS of latency on every API call
# and MEDIA_MS on every media request, and the configuration a user gets
# (only `douyin.web_url` points at the fake; calls of one cookie 1.5 s
# apart plus a random 0-1 s). The floor is the API calls no client can
# avoid, each costing the pacing interval, the jitter's mean and its
# latency: calls × (1.5 s + 0.5 s + API_MS).
#
#   bench/douyin.sh            # WORKS=500 API_MS=30 MEDIA_MS=100
#
# SPOOLFETCH_BIN / FAKE_DOUYIN_BIN skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKS=${WORKS:-500}
API_MS=${API_MS:-30}
MEDIA_MS=${MEDIA_MS:-100}
if [[ -z ${SPOOLFETCH_BIN:-} || -z ${FAKE_DOUYIN_BIN:-} ]]; then
    cargo build --release --locked --bin spoolfetch --example fake_douyin >&2
fi
BIN=${SPOOLFETCH_BIN:-target/release/spoolfetch}
FAKE=${FAKE_DOUYIN_BIN:-target/release/examples/fake_douyin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/fifo"
"$FAKE" --users 2 --works "$WORKS" --api-latency-ms "$API_MS" --media-latency-ms "$MEDIA_MS" < "$tmp/fifo" > "$tmp/fake" &
exec 7> "$tmp/fifo"
for _ in $(seq 200); do grep -q READY "$tmp/fake" 2>/dev/null && break; sleep 0.05; done
WEB=$(sed -n 's/^WEB_URL=//p' "$tmp/fake")
SEC=$(sed -n 's/^SEC_UID_0=//p' "$tmp/fake")
spool="$tmp/spool"
mkdir -p "$spool"
printf '{"save_path":"%s","state_dir":"%s","instance":"bench","douyin":{"web_url":"%s"}}' \
    "$tmp/out" "$tmp/state" "$WEB" > "$spool/spoolfetch.json"
printf '{"type":"douyin.post","name":"u","sec_user_id":"%s"}' "$SEC" > "$spool/u.json"
start=$(date +%s.%N)
"$BIN" run --once --spool "$spool" 2> "$tmp/log" || { tail -20 "$tmp/log" >&2; exit 1; }
end=$(date +%s.%N)
exec 7>&-
wait
calls=$(sed -n 's/^API_CALLS=//p' "$tmp/fake")
bad=$(sed -n 's/^BAD_SIGNATURES=//p' "$tmp/fake")
files=$(find "$tmp/out/u" -type f | wc -l)
python3 - "$start" "$end" "$calls" "$API_MS" "$files" "$bad" <<'PY'
import sys
start, end, calls, api_ms, files, bad = sys.argv[1:]
wall = float(end) - float(start)
floor = int(calls) * (1.5 + 0.5 + int(api_ms) / 1000)
print("| tool | wall s | API calls | floor s (calls × (1.5 s + 0.5 s jitter + latency)) | wall ÷ floor | files | bad signatures |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| spoolfetch | {wall:.1f} | {calls} | {floor:.1f} | {wall / floor:.3f} | {files} | {bad} |")
PY
