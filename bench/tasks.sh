#!/usr/bin/env bash
# Remote-task benchmark: one `demo.tasks` job of TASKS tasks against the
# loopback fake task service (examples/fake_tasks.rs; a task is
# `processing` for POLLS-1 looks, then done: POLLS polls per task), the
# account paced at RATE requests per second (`demo.interval_ms`, the way a
# provider with a 2/s limit is paced), against a sequential client that
# polls every second (bench/tasks_client.py). Reports wall time, API calls
# counted by the fake, the floor calls ÷ RATE, and wall ÷ floor.
#
#   bench/tasks.sh            # TASKS=100 POLLS=2 RATE=2
#
# SPOOLFETCH_BIN / FAKE_TASKS_BIN skip the build.
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${TASKS:-100}
POLLS=${POLLS:-2}
RATE=${RATE:-2}
TOOLS=${TOOLS:-"spoolfetch sequential"}
if [[ -z ${SPOOLFETCH_BIN:-} || -z ${FAKE_TASKS_BIN:-} ]]; then
    cargo build --release --locked --bin spoolfetch --example fake_tasks >&2
fi
BIN=${SPOOLFETCH_BIN:-target/release/spoolfetch}
FAKE=${FAKE_TASKS_BIN:-target/release/examples/fake_tasks}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names=$(seq -f "in%03g" 1 "$TASKS")
interval=$(python3 -c "print(int(1000 / $RATE))")

run_fake() {
    mkfifo "$tmp/in.$1"
    "$FAKE" --polls $((POLLS - 1)) < "$tmp/in.$1" > "$tmp/fake.$1" &
    exec 7> "$tmp/in.$1"
    for _ in $(seq 100); do grep -q READY "$tmp/fake.$1" 2>/dev/null && break; sleep 0.05; done
    BASE=$(sed -n 's/^BASE_URL=//p' "$tmp/fake.$1")
}

stop_fake() {
    exec 7>&-
    wait
    CALLS=$(sed -n 's/^REQUESTS=//p' "$tmp/fake.$1")
    CREATES=$(sed -n 's/^CREATES=//p' "$tmp/fake.$1")
}

echo "| tool | wall s | API calls | creates | floor s (calls ÷ $RATE/s) | wall ÷ floor | files |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for tool in $TOOLS; do
    run_fake "$tool"
    out="$tmp/out-$tool"
    start=$(date +%s.%N)
    case $tool in
        spoolfetch)
            spool="$tmp/spool"
            mkdir -p "$spool"
            printf '{"save_path":"%s","state_dir":"%s","instance":"bench","demo":{"interval_ms":%s}}' \
                "$out" "$tmp/state" "$interval" > "$spool/spoolfetch.json"
            python3 -c 'import json,sys; print(json.dumps({"type":"demo.tasks","name":"t","api":sys.argv[1],"inputs":sys.argv[2:]}))' \
                "$BASE" $names > "$spool/t.json"
            "$BIN" run --once --spool "$spool" 2> "$tmp/log.$tool" || { cat "$tmp/log.$tool" >&2; exit 1; }
            files=$(find "$out/t" -name '*.out' | wc -l)
            ;;
        sequential)
            python3 bench/tasks_client.py "$BASE" "$out" "$RATE" $names
            files=$(find "$out" -name '*.out' | wc -l)
            ;;
    esac
    end=$(date +%s.%N)
    stop_fake "$tool"
    python3 - "$tool" "$start" "$end" "$CALLS" "$CREATES" "$RATE" "$files" <<'PY'
import sys
tool, start, end, calls, creates, rate, files = sys.argv[1:]
wall = float(end) - float(start)
floor = int(calls) / float(rate)
print(f"| {tool} | {wall:.1f} | {calls} | {creates} | {floor:.1f} | {wall / floor:.3f} | {files} |")
PY
done
