#!/usr/bin/env bash
# miri on every crate that contains `unsafe` code. If the nightly toolchain or miri
# cannot be had on this machine, say so loudly and skip; everything else fails hard.
set -euo pipefail

# Crates with `unsafe` code (the others `#![forbid(unsafe_code)]`).
MIRI_CRATES=(flowbed-lockfree)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "miri: SKIPPED (no nightly toolchain on this machine)"
    exit 0
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri: installing miri and rust-src on nightly"
    if ! rustup component add miri rust-src --toolchain nightly; then
        echo "miri: SKIPPED (rustup could not install the miri component for nightly)"
        exit 0
    fi
fi

# isolation off: proptest and the timeout tests read the clock and the working directory.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance -Zmiri-disable-isolation}"
for crate in "${MIRI_CRATES[@]}"; do
    echo "miri: $crate"
    # Doctests are left out: they are API examples the unit and integration tests cover,
    # and interpreting each one (a tokio runtime included) would add minutes.
    cargo +nightly miri test -p "$crate" --lib --tests
done
