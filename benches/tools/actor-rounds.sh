#!/usr/bin/env bash
# Runs the actor criterion suite (benches/benches/actor.rs) 3 times and the memory report
# (benches/benches/actor_memory.rs) once, on a quiet machine. Each round's criterion
# output is copied to $OUT/round<N>/criterion (only the actor_* groups), the console output
# to $OUT/round<N>.log, the memory table to $OUT/memory.md, and the median table over the
# rounds to $OUT/table.md (benches/tools/criterion_table.py).
#
# Usage: bash benches/tools/actor-rounds.sh [OUT_DIR]   (default /tmp/bench-actor-rounds-<date>)
set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=${1:-/tmp/bench-actor-rounds-$(date +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3}
CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)

mkdir -p "$OUT"
cd "$REPO"
cargo bench -p flowbed-benches --bench actor --bench actor_memory --no-run

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse HEAD) (dirty files: $(git status --porcelain | wc -l))"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "rustc: $(rustc --version)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "command: cargo bench -p flowbed-benches --bench actor -- ${CRITERION_ARGS[*]}"
} > "$OUT/machine.txt"

run_dirs=()
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS (load $(cut -d' ' -f1-3 /proc/loadavg))"
    rm -rf "$CARGO_TARGET_DIR"/criterion/actor_*
    cargo bench -p flowbed-benches --bench actor -- "${CRITERION_ARGS[@]}" 2>&1 | tee "$OUT/round$round.log"
    mkdir -p "$OUT/round$round/criterion"
    cp -r "$CARGO_TARGET_DIR"/criterion/actor_* "$OUT/round$round/criterion/"
    run_dirs+=("$OUT/round$round/criterion")
done

echo "== memory (load $(cut -d' ' -f1-3 /proc/loadavg))"
cargo bench -p flowbed-benches --bench actor_memory 2>&1 | tee "$OUT/memory.log"
grep -E '^(\||actor_memory)' "$OUT/memory.log" > "$OUT/memory.md"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
python3 benches/tools/criterion_table.py actor_ "${run_dirs[@]}" | tee "$OUT/table.md"
echo
cat "$OUT/memory.md"
echo
echo "results in $OUT"
