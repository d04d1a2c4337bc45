#!/usr/bin/env bash
# PicWish benchmark: IMAGES images through `picwish.process` on the official
# API (interface "api", the configuration a user writes: key, origin,
# input_roots, nothing tuned) against the loopback fake
# (examples/fake_picwish.rs: a task processes PROCESS_MS, the key may make
# RATE requests per second, burst 2), and the same folder through a
# sequential client that polls every second (bench/picwish_seq.py), the way
# PicWish's documentation examples work. Reports wall time, the API calls
# the fake counted, the floor (one create and one poll per image, the calls
# no client can avoid, at RATE per second) and wall ÷ floor.
#
#   bench/picwish.sh            # IMAGES=100 PROCESS_MS=1500 RATE=2
#
# SPOOLFETCH_BIN / FAKE_PICWISH_BIN skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-100}
PROCESS_MS=${PROCESS_MS:-1500}
RATE=${RATE:-2}
TOOLS=${TOOLS:-"spoolfetch sequential"}
if [[ -z ${SPOOLFETCH_BIN:-} || -z ${FAKE_PICWISH_BIN:-} ]]; then
    cargo build --release --locked --bin spoolfetch --example fake_picwish >&2
fi
BIN=${SPOOLFETCH_BIN:-target/release/spoolfetch}
FAKE=${FAKE_PICWISH_BIN:-target/release/examples/fake_picwish}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/in/photos"
python3 - "$tmp/in/photos" "$IMAGES" <<'PY'
import struct, sys, zlib
out, n = sys.argv[1], int(sys.argv[2])
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
for i in range(n):
    w = h = 64
    raw = b"".join(b"\0" + bytes(((x * 7 + y * 13 + i) & 255) for x in range(w * 3)) for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(f"{out}/img{i:03d}.png", "wb").write(png)
PY

run_fake() {
    mkfifo "$tmp/fifo.$1"
    "$FAKE" --process-ms "$PROCESS_MS" --rate "$RATE" < "$tmp/fifo.$1" > "$tmp/fake.$1" &
    exec 7> "$tmp/fifo.$1"
    for _ in $(seq 100); do grep -q READY "$tmp/fake.$1" 2>/dev/null && break; sleep 0.05; done
    BASE=$(sed -n 's/^BASE_URL=//p' "$tmp/fake.$1")
}

stop_fake() {
    exec 7>&-
    wait
    CALLS=$(sed -n 's/^REQUESTS=//p' "$tmp/fake.$1")
    CREATES=$(sed -n 's/^CREATES=//p' "$tmp/fake.$1")
    LIMITED=$(sed -n 's/^RATE_LIMITED=//p' "$tmp/fake.$1")
}

echo "| tool | wall s | API calls | creates | 429s | floor s ($((IMAGES * 2)) calls ÷ $RATE/s) | wall ÷ floor | files |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for tool in $TOOLS; do
    run_fake "$tool"
    out="$tmp/out-$tool"
    start=$(date +%s.%N)
    case $tool in
        spoolfetch)
            spool="$tmp/spool"
            mkdir -p "$spool"
            printf '{"save_path":"%s","state_dir":"%s","instance":"bench","input_roots":["%s"],"picwish":{"api_url":"%s","api_key":"test-key"}}' \
                "$out" "$tmp/state" "$tmp/in" "$BASE" > "$spool/spoolfetch.json"
            printf '{"type":"picwish.process","name":"p","op":"remove_background","input_dir":"%s"}' \
                "$tmp/in/photos" > "$spool/p.json"
            "$BIN" run --once --spool "$spool" 2> "$tmp/log.$tool" || { cat "$tmp/log.$tool" >&2; exit 1; }
            files=$(find "$out/p" -name '*.png' | wc -l)
            ;;
        sequential)
            BASE_URL=$BASE RATE=$RATE python3 bench/picwish_seq.py "$tmp/in/photos" "$out" > "$tmp/seq.out"
            files=$(find "$out" -name '*.png' | wc -l)
            ;;
    esac
    end=$(date +%s.%N)
    stop_fake "$tool"
    python3 - "$tool" "$start" "$end" "$CALLS" "$CREATES" "$LIMITED" "$RATE" "$IMAGES" "$files" <<'PY'
import sys
tool, start, end, calls, creates, limited, rate, images, files = sys.argv[1:]
wall = float(end) - float(start)
floor = 2 * int(images) / float(rate)
print(f"| {tool} | {wall:.1f} | {calls} | {creates} | {limited} | {floor:.1f} | {wall / floor:.3f} | {files} |")
PY
done
