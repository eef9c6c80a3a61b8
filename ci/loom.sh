#!/usr/bin/env bash
# Every loom model of every crate (tests/loom.rs), model-checked up to 3 preemptions.
# A separate target dir keeps the `--cfg flowbed_loom` build from invalidating the normal one.
set -euo pipefail
export RUSTFLAGS="--cfg flowbed_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
cargo test --release --workspace --test loom
