# Shared steps of the *-rounds.sh scripts (sourced, not run): the machine facts and the
# criterion rounds of one bench target.
#
# write_machine_info OUT COMMAND...   -> $OUT/machine.txt
# run_rounds BENCH PREFIX OUT ROUNDS CRITERION_ARGS...
#     runs `cargo bench -p flowbed-benches --bench BENCH -- CRITERION_ARGS` ROUNDS times,
#     keeping each run's target/criterion/PREFIX* in $OUT/round<N>/criterion and its output
#     in $OUT/round<N>.log; sets RUN_DIRS to the kept directories.

write_machine_info() {
    local out=$1
    shift
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit: $(git rev-parse HEAD) (dirty files: $(git status --porcelain | wc -l))"
        echo "nproc: $(nproc)"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
        echo "rustc: $(rustc --version)"
        echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "command: $*"
    } > "$out/machine.txt"
}

run_rounds() {
    local bench=$1 prefix=$2 out=$3 rounds=$4
    shift 4
    RUN_DIRS=()
    for round in $(seq 1 "$rounds"); do
        echo "== round $round of $rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
        rm -rf "$CARGO_TARGET_DIR"/criterion/"$prefix"*
        cargo bench -p flowbed-benches --bench "$bench" -- "$@" 2>&1 | tee "$out/round$round.log"
        mkdir -p "$out/round$round/criterion"
        cp -r "$CARGO_TARGET_DIR"/criterion/"$prefix"* "$out/round$round/criterion/"
        RUN_DIRS+=("$out/round$round/criterion")
    done
}
