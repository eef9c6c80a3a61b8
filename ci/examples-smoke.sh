#!/usr/bin/env bash
# The pattern examples that check a property of their own and exit non-zero when it does
# not hold: the worker pool's idle CPU (a mostly idle 16-thread pool must stay under 5 %
# of one core) and its round-trip latency report (printed for the log; no threshold, CI
# machines are too noisy for one); and the rate-limited axum app, which serves on
# 127.0.0.1:0, sends itself requests and checks its 200s, 429s, Retry-After and
# RateLimit-* headers (on a manual clock: no timing involved); and the axum app behind a
# circuit breaker, which checks 200s, 502s, fast 503s with Retry-After while open, a failed
# and a successful half-open trial (manual clock too); and the supervised actor shards, which
# check that every event was counted or was one of the poison events that crash a shard;
# and the click-stream windows, which check that every click was counted once or came out
# on the late side output; and the bank accounts on SQLite, which check that a projection
# resumed from its checkpoint saw every event once, in order, and matches the balances.
set -euo pipefail
cargo run --release --example workerpool_idle_cpu
cargo run --release --example workerpool_latency -- --round-trips 50000
cargo run --release --example ratelimit_axum --features ratelimit-tower -- --self-test
cargo run --release --example circuitbreaker_axum --features circuitbreaker-tower -- --self-test
cargo run --release --example actor_sessions -- --events 200000
cargo run --release --example reactive_clickstream -- --clicks 1000000
cargo run --release --example eventsourcing_bank -- --commands 40000
