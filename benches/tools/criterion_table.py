#!/usr/bin/env python3
"""Turns saved criterion runs into the markdown table of docs/benchmarks.md.

Usage: criterion_table.py PREFIX RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a copy of `target/criterion` taken after one `cargo bench` run. For every
group starting with PREFIX it takes each function's median time per run, reports the
median of those medians, and the ratio of each peer's time to flowbed's time (above 1:
flowbed is faster) computed within each run and then taken as the median over runs, so
machine drift between runs cancels out.
"""
import json
import pathlib
import statistics
import sys


def medians(run_dir, prefix):
    """{group: {function: median_ns}} for one run."""
    result = {}
    for estimates in pathlib.Path(run_dir).glob(f"{prefix}*/*/new/estimates.json"):
        function = estimates.parent.parent.name
        group = estimates.parent.parent.parent.name
        with open(estimates) as f:
            result.setdefault(group, {})[function] = json.load(f)["median"]["point_estimate"]
    return result


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.2f} ns"


def main():
    prefix, run_dirs = sys.argv[1], sys.argv[2:]
    runs = [medians(d, prefix) for d in run_dirs]
    groups = sorted({g for run in runs for g in run})
    print(f"| workload | implementation | median time ({len(runs)} runs) | peer time / flowbed time |")
    print("|---|---|---|---|")
    for group in groups:
        functions = sorted({f for run in runs for f in run.get(group, {})},
                           key=lambda f: (f != "flowbed", f))
        for function in functions:
            times = [run[group][function] for run in runs if function in run.get(group, {})]
            ratios = [run[group][function] / run[group]["flowbed"]
                      for run in runs
                      if function in run.get(group, {}) and "flowbed" in run.get(group, {})]
            ratio = "—" if function == "flowbed" or not ratios else f"{statistics.median(ratios):.2f}"
            name = group.removeprefix(prefix)
            print(f"| {name} | {function} | {fmt_time(statistics.median(times))} | {ratio} |")


if __name__ == "__main__":
    main()
