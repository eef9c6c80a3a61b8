#!/usr/bin/env bash
# Runs the pool criterion suite (benches/benches/pool.rs) 3 times and the fairness report
# once, on a quiet machine. Each round's criterion output is copied to
# $OUT/round<N>/criterion (only the pool_* groups), the console output to $OUT/round<N>.log,
# the fairness table to $OUT/fairness.md, and the median table over the rounds to
# $OUT/table.md (benches/tools/criterion_table.py). Needs PostgreSQL at FLOWBED_PG_URL
# (default postgres://postgres@127.0.0.1:5432/test).
#
# Usage: bash benches/tools/pool-rounds.sh [OUT_DIR]   (default /tmp/bench-pool-rounds-<date>)
set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=${1:-/tmp/bench-pool-rounds-$(date +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3}
CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)

mkdir -p "$OUT"
cd "$REPO"
# shellcheck source=benches/tools/rounds.sh
source benches/tools/rounds.sh
bash ci/services.sh
cargo bench -p flowbed-benches --bench pool --no-run

write_machine_info "$OUT" "cargo bench -p flowbed-benches --bench pool -- ${CRITERION_ARGS[*]}"

run_rounds pool pool_ "$OUT" "$ROUNDS" "${CRITERION_ARGS[@]}"

echo "== fairness (load $(cut -d' ' -f1-3 /proc/loadavg))"
FLOWBED_POOL_FAIRNESS=1 cargo bench -p flowbed-benches --bench pool 2>&1 | tee "$OUT/fairness.log"
grep -E '^(\||pool fairness)' "$OUT/fairness.log" > "$OUT/fairness.md"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
python3 benches/tools/criterion_table.py pool_ "${RUN_DIRS[@]}" | tee "$OUT/table.md"
echo
cat "$OUT/fairness.md"
echo
echo "results in $OUT"
