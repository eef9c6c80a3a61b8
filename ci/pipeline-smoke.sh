#!/usr/bin/env bash
# A short headless run of the main job, checking its final summary: nothing lost, nothing
# duplicated. Until the analytics pipeline exists, the main job is the lock-free pipeline
# example.
set -euo pipefail
output=$(cargo run --release --example lockfree_pipeline -- --events 2000000 --producers 4 --consumers 4)
echo "$output"
summary=$(grep '^summary:' <<<"$output")
grep -q 'lost=0 duplicated=0' <<<"$summary" || {
    echo "pipeline-smoke: the summary reports lost or duplicated events" >&2
    exit 1
}
