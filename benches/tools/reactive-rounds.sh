#!/usr/bin/env bash
# Runs the reactive criterion suite (benches/benches/reactive.rs) 3 times on a quiet
# machine. Each round's criterion output is copied to $OUT/round<N>/criterion (only the
# reactive_* groups), the console output to $OUT/round<N>.log, and the median table over
# the rounds to $OUT/table.md (benches/tools/criterion_table.py), followed by the
# sliding-to-tumbling window throughput ratio.
#
# Usage: bash benches/tools/reactive-rounds.sh [OUT_DIR]   (default /tmp/bench-reactive-rounds-<date>)
set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=${1:-/tmp/bench-reactive-rounds-$(date +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3}
CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)

mkdir -p "$OUT"
cd "$REPO"
# shellcheck source=benches/tools/rounds.sh
source benches/tools/rounds.sh
cargo bench -p flowbed-benches --bench reactive --no-run

write_machine_info "$OUT" "cargo bench -p flowbed-benches --bench reactive -- ${CRITERION_ARGS[*]}"

run_rounds reactive reactive_ "$OUT" "$ROUNDS" "${CRITERION_ARGS[@]}"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
python3 benches/tools/criterion_table.py reactive_ "${RUN_DIRS[@]}" | tee "$OUT/table.md"
# The window groups have no peer; their target compares the two groups (same element
# count per iteration, so the throughput ratio is tumbling time / sliding time).
python3 - "${RUN_DIRS[@]}" <<'PY' | tee -a "$OUT/table.md"
import json, pathlib, statistics, sys
def median_ns(run, group):
    path = pathlib.Path(run) / group / "flowbed" / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]
ratios = [median_ns(r, "reactive_tumbling_window_count") / median_ns(r, "reactive_sliding_window_100")
          for r in sys.argv[1:]]
print()
print(f"sliding_window_100 throughput / tumbling_window_count throughput "
      f"(median of {len(ratios)} runs): {statistics.median(ratios):.2f}")
PY
echo
echo "results in $OUT"
