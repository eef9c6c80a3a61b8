//! Criterion suites for flowbed, one bench target per crate, each measuring flowbed against
//! its peers on the same workload in the same run. Run them with
//! `cargo bench -p flowbed-benches`; results land in `target/criterion/<group>/<name>/`.
