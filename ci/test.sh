#!/usr/bin/env bash
# The README's test command, with every feature on: unit, integration and doc tests,
# the tutorials in docs/tutorials included (they are doctests of the facade crate).
# A hung test (a lost wake-up, a deadlock) fails the step after 30 minutes instead of
# running into CI's overall limit.
set -euo pipefail
timeout 1800 cargo test --workspace --all-features
