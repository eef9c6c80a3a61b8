#!/usr/bin/env bash
# Formatting and clippy, warnings as errors (DESIGN.md §3.1).
set -euo pipefail
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
