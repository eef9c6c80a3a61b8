#!/usr/bin/env bash
# Runs the eventsourcing criterion suite (benches/benches/eventsourcing.rs) 3 times on a
# quiet machine. Each round's criterion output is copied to $OUT/round<N>/criterion (only
# the eventsourcing_* groups), the console output to $OUT/round<N>.log, and the median
# table over the rounds to $OUT/table.md (benches/tools/criterion_table.py), followed by
# each flowbed backend's throughput, its ratio to each peer in the same group (peer time /
# flowbed time per run, median over runs: above 1, flowbed is faster) and issue 9's
# targets (the 2x target pairs memory with cqrs_es and SQLite and PostgreSQL with
# postgres_es). Needs PostgreSQL at FLOWBED_PG_URL (default
# postgres://postgres@127.0.0.1:5432/test).
#
# Usage: bash benches/tools/eventsourcing-rounds.sh [OUT_DIR]
#        (default /tmp/bench-eventsourcing-rounds-<date>)
set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT=${1:-/tmp/bench-eventsourcing-rounds-$(date +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3}
CRITERION_ARGS=(--warm-up-time 1 --measurement-time 3)

mkdir -p "$OUT"
cd "$REPO"
# shellcheck source=benches/tools/rounds.sh
source benches/tools/rounds.sh
bash ci/services.sh
cargo bench -p flowbed-benches --bench eventsourcing --no-run

write_machine_info "$OUT" "cargo bench -p flowbed-benches --bench eventsourcing -- ${CRITERION_ARGS[*]}"
psql "${FLOWBED_PG_URL:-postgres://postgres@127.0.0.1:5432/test}" -Atc \
    "SELECT 'postgres: ' || version() || ', fsync ' || current_setting('fsync') || ', synchronous_commit ' || current_setting('synchronous_commit')" \
    >> "$OUT/machine.txt" 2>/dev/null || echo "postgres: (psql not available)" >> "$OUT/machine.txt"

run_rounds eventsourcing eventsourcing_ "$OUT" "$ROUNDS" "${CRITERION_ARGS[@]}"

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
python3 benches/tools/criterion_table.py eventsourcing_ "${RUN_DIRS[@]}" | tee "$OUT/table.md"
# criterion_table.py's ratio column compares with a function named `flowbed`; here flowbed
# has one function per backend, so the ratios and the targets are computed below.
python3 - "${RUN_DIRS[@]}" <<'PY' | tee -a "$OUT/table.md"
import json, pathlib, statistics, sys

PEERS = ("cqrs_es", "postgres_es")
BACKENDS = ("flowbed_memory", "flowbed_sqlite", "flowbed_sqlite_normal", "flowbed_postgres")


def load(run):
    """{group: {function: (median_ns, elements per iteration)}} for one run."""
    result = {}
    for estimates in pathlib.Path(run).glob("eventsourcing_*/*/new/estimates.json"):
        function, group = estimates.parent.parent.name, estimates.parent.parent.parent.name
        bench = json.loads((estimates.parent / "benchmark.json").read_text())
        elements = (bench.get("throughput") or {}).get("Elements", 1)
        median = json.loads(estimates.read_text())["median"]["point_estimate"]
        result.setdefault(group, {})[function] = (median, elements)
    return result


runs = [load(run) for run in sys.argv[1:]]
groups = sorted({group for run in runs for group in run})


def events_per_s(group, function):
    rates = [run[group][function][1] / run[group][function][0] * 1e9
             for run in runs if function in run.get(group, {})]
    return statistics.median(rates) if rates else None


def ratio(group, function, peer):
    ratios = [run[group][peer][0] / run[group][function][0]
              for run in runs if function in run.get(group, {}) and peer in run.get(group, {})]
    return statistics.median(ratios) if ratios else None


def fmt_rate(rate):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.2f} {unit}"
    return f"{rate:.1f}"


print()
print(f"| workload | flowbed backend | throughput (median of {len(runs)} runs) | "
      "cqrs_es time / flowbed time | postgres_es time / flowbed time |")
print("|---|---|---|---|---|")
for group in groups:
    for backend in BACKENDS:
        rate = events_per_s(group, backend)
        if rate is None:
            continue
        cells = []
        for peer in PEERS:
            # flowbed_sqlite_normal is not the shipped default: no ratio against the peers.
            r = None if backend.endswith("_normal") else ratio(group, backend, peer)
            cells.append("—" if r is None else f"{r:.2f}")
        unit = "loads/s" if group.endswith("load_aggregate_snapshot") else "events/s"
        print(f"| {group.removeprefix('eventsourcing_')} | {backend} | "
              f"{fmt_rate(rate)} {unit} | {cells[0]} | {cells[1]} |")

print()
print("Targets (issue 9):")
targets = [
    ("SQLite single appends, 16 concurrent writers", "eventsourcing_append_concurrent_16", "flowbed_sqlite", 50e3),
    ("  (for information: the same with synchronous = NORMAL, not the default)", "eventsourcing_append_concurrent_16", "flowbed_sqlite_normal", 50e3),
    ("SQLite appends in batches of 100", "eventsourcing_append_batch100", "flowbed_sqlite", 300e3),
    ("  (for information: the same with synchronous = NORMAL, not the default)", "eventsourcing_append_batch100", "flowbed_sqlite_normal", 300e3),
    ("replay from SQLite", "eventsourcing_replay_1m", "flowbed_sqlite", 1e6),
]
for name, group, function, floor in targets:
    rate = events_per_s(group, function)
    verdict = "not measured" if rate is None else (
        f"{fmt_rate(rate)} events/s, target {fmt_rate(floor)} events/s: "
        + ("met" if rate >= floor else "MISSED"))
    print(f"- {name}: {verdict}")
# Each backend against the peer of its kind: memory against cqrs-es's MemStore, the durable
# stores against postgres-es (cqrs-es has no SQLite store).
PAIRS = (("flowbed_memory", "cqrs_es"), ("flowbed_sqlite", "postgres_es"),
         ("flowbed_postgres", "postgres_es"))
for group in ("eventsourcing_append_single", "eventsourcing_append_batch100",
              "eventsourcing_append_concurrent_16", "eventsourcing_append_command"):
    for backend, peer in PAIRS:
        r = ratio(group, backend, peer)
        if r is not None:
            print(f"- {group.removeprefix('eventsourcing_')}: {backend} vs {peer}: "
                  f"{r:.2f}x the throughput, target 2x: {'met' if r >= 2 else 'MISSED'}")
PY
echo
echo "results in $OUT"
