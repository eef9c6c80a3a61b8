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
# shellcheck source=benches/tools/rounds.sh
source benches/tools/rounds.sh
cargo bench -p flowbed-benches --bench actor --bench actor_memory --no-run

write_machine_info "$OUT" "cargo bench -p flowbed-benches --bench actor -- ${CRITERION_ARGS[*]}"

run_rounds actor actor_ "$OUT" "$ROUNDS" "${CRITERION_ARGS[@]}"

echo "== memory (load $(cut -d' ' -f1-3 /proc/loadavg))"
cargo bench -p flowbed-benches --bench actor_memory 2>&1 | tee "$OUT/memory.log"
grep -E '^(\||actor_memory)' "$OUT/memory.log" > "$OUT/memory.md"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
python3 benches/tools/criterion_table.py actor_ "${RUN_DIRS[@]}" | tee "$OUT/table.md"
echo
cat "$OUT/memory.md"
echo
echo "results in $OUT"
