#!/usr/bin/env bash
# miri on every crate that contains `unsafe` code. If the nightly toolchain or miri
# cannot be had on this machine, say so loudly and skip; everything else fails hard.
set -euo pipefail

# Crates with `unsafe` code (the others `#![forbid(unsafe_code)]`), each with the test
# targets that exercise its unsafe code. flowbed-workerpool's one `unsafe` (the scoped-job
# lifetime erasure) is driven by tests/scoped_borrows.rs; its other suites sleep and spin
# up dozens of threads, which miri interprets orders of magnitude slower.
# Entries: crate;test targets;miri model flags. crossbeam-epoch (under crossbeam-deque)
# keeps tags in pointer bits through integer casts, which strict provenance rejects, and
# its thread registry breaks the experimental Stacked Borrows rules (not Tree Borrows),
# and its global garbage list outlives the test process (reported as leaks), as in
# crossbeam's own miri runs. The unit tests, which make no pool, keep leak checking.
# flowbed-ratelimit's one `unsafe` (rdtsc in src/monotonic.rs) is compiled out under miri;
# tests/smoke.rs walks every limiter, the keyed map, the clocks, tokio's semaphore and a
# paused-time runtime in a few seconds (its other suites run proptest and long loops).
MIRI_CRATES=(
    "flowbed-lockfree;--lib --tests;-Zmiri-strict-provenance"
    "flowbed-workerpool;--lib;-Zmiri-permissive-provenance -Zmiri-tree-borrows"
    "flowbed-workerpool;--test scoped_borrows;-Zmiri-permissive-provenance -Zmiri-tree-borrows -Zmiri-ignore-leaks"
    "flowbed-ratelimit;--lib --test smoke;-Zmiri-strict-provenance"
    # flowbed-actor's one `unsafe` is src/handler_slot.rs (unit tests); basics.rs drives it through real actors (~90 s).
    "flowbed-actor;--lib --test basics;-Zmiri-strict-provenance"
)

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

for entry in "${MIRI_CRATES[@]}"; do
    IFS=';' read -r crate targets provenance <<<"$entry"
    # isolation off: proptest and the timeout tests read the clock and the working directory.
    export MIRIFLAGS="$provenance -Zmiri-disable-isolation"
    echo "miri: $crate ($targets, $MIRIFLAGS)"
    # Doctests are left out: they are API examples the unit and integration tests cover,
    # and interpreting each one (a tokio runtime included) would add minutes.
    # shellcheck disable=SC2086 # $targets is a list of cargo arguments
    cargo +nightly miri test -p "$crate" $targets
done
