#!/usr/bin/env bash
# The README's test command, with every feature on: unit, integration and doc tests,
# the tutorials in docs/tutorials included (they are doctests of the facade crate).
set -euo pipefail
cargo test --workspace --all-features
