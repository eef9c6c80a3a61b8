#!/usr/bin/env bash
# The pattern examples that check a property of their own and exit non-zero when it does
# not hold: the worker pool's idle CPU (a mostly idle 16-thread pool must stay under 5 %
# of one core) and its round-trip latency report (printed for the log; no threshold, CI
# machines are too noisy for one).
set -euo pipefail
cargo run --release --example workerpool_idle_cpu
cargo run --release --example workerpool_latency -- --round-trips 50000
