#!/usr/bin/env bash
# Compiles every criterion suite and runs each benchmark once (no measurement).
set -euo pipefail
cargo bench -p flowbed-benches -- --test
