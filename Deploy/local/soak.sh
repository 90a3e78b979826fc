#!/usr/bin/env bash
# A soak: a coordinator and two workers run for a long time (default an hour) against a private
# PostgreSQL cluster, with a batch submitted every minute and idle stretches between; it checks
# that every batch completes, sealed and verified, and records the processes' memory as it goes.
#
#   Deploy/local/soak.sh [--minutes 60] [--every 60] [--records 20000] [--binary .build/release/oversight] [--dir DIR]
#
# It prints one line per batch (records, seconds to complete, RSS of coordinator and workers in
# MiB) and a summary: batches completed, any that did not, and the memory at the start and the
# end of the run. Exit status 1 if a batch did not complete or did not verify. Build first:
#   swift build -c release --product oversight
set -euo pipefail
cd "$(dirname "$0")/../.."

minutes=60 every=60 records=20000 binary=.build/release/oversight dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --every) every="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$binary" ] || { echo "soak: $binary not found; build it: swift build -c release --product oversight" >&2; exit 2; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
dir="${dir:-$(mktemp -d /tmp/oversight-soak.XXXXXX)}"
mkdir -p "$dir" && chmod 755 "$dir"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$binary" local-db stop --data-dir "$dir/db" >/dev/null 2>&1 || true
}
trap cleanup EXIT

uri="$("$binary" local-db start --data-dir "$dir/db" --unsafe-fast)"
port_w=$((20000 + RANDOM % 20000)); port_c=$((port_w + 1))
"$binary" coordinator --database "$uri" --worker-endpoint "tcp://127.0.0.1:$port_w" --client-endpoint "tcp://127.0.0.1:$port_c" \
    --insecure > "$dir/coordinator.log" 2>&1 & pids+=($!); coordinator=$!
workers=()
for n in 1 2; do
    "$binary" worker --coordinator "tcp://127.0.0.1:$port_w" --database "$uri" --insecure --name "soak-$n" > "$dir/worker-$n.log" 2>&1 &
    pids+=($!); workers+=($!)
done
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "gone"; }
memory() { echo "coordinator $(rss "$coordinator") MiB, workers $(rss "${workers[0]}") and $(rss "${workers[1]}") MiB"; }

echo "soak: $minutes min, a batch of $records records every $every s, in $dir"
start=$(date +%s) end=$(( $(date +%s) + minutes * 60 )) n=0 failed=0
first_memory=""
while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1))
    began=$(date +%s)
    "$binary" generate --records "$records" --seed "$n" > "$dir/batch.jsonl"
    if out="$("$binary" submit "$dir/batch.jsonl" --coordinator "tcp://127.0.0.1:$port_c" --insecure --wait 2>"$dir/submit-$n.err")"; then
        batch="$(echo "$out" | grep -Eo '[0-9a-f]{8}-[0-9a-f-]{27}' | head -1)"
        if "$binary" audit verify "$batch" --database "$uri" > "$dir/verify-$n.out" 2>&1; then verdict="completed, verified"; else verdict="NOT VERIFIED"; failed=$((failed + 1)); fi
    else
        verdict="DID NOT COMPLETE (see $dir/submit-$n.err)"; failed=$((failed + 1))
    fi
    took=$(( $(date +%s) - began ))
    [ -n "$first_memory" ] || first_memory="$(memory)"
    printf 'batch %3d at %4d s: %s in %d s; %s\n' "$n" "$(( $(date +%s) - start ))" "$verdict" "$took" "$(memory)"
    # Idle until the next minute (the idle stretch is the rest of the interval).
    sleep_for=$(( every - took ))
    [ "$(( $(date +%s) + (sleep_for > 0 ? sleep_for : 0) ))" -lt "$end" ] || break
    [ "$sleep_for" -gt 0 ] && sleep "$sleep_for"
done
echo "soak: $n batches in $(( $(date +%s) - start )) s, $failed failed; memory after the first batch: $first_memory; at the end: $(memory)"
[ "$failed" -eq 0 ]
