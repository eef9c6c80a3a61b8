//! The GCRA as one Lua script: the exact arithmetic of the local limiter, run atomically
//! by Redis.

use std::sync::LazyLock;

use crate::decision::Decision;
use crate::quota::Quota;

/// The script's source (`gcra.lua` beside this file).
pub(crate) const SOURCE: &str = include_str!("gcra.lua");

/// The script, hashed once; `redis::Script` sends `EVALSHA` and loads the source on
/// `NOSCRIPT` (the first call on a server, or after `SCRIPT FLUSH`).
pub(crate) static GCRA: LazyLock<::redis::Script> = LazyLock::new(|| ::redis::Script::new(SOURCE));

/// The script's reply: allowed (1/0), headroom, reset-after and retry-after in
/// nanoseconds.
pub(crate) type Reply = (u8, u64, u64, u64);

/// The arguments of one check: `n` cells of `quota` at `now` (`None`: Redis server time),
/// keys kept `margin_ms` longer than their state needs.
pub(crate) fn invocation(
    key: &str,
    n: u32,
    quota: &Quota,
    now: Option<u64>,
    margin_ms: u64,
) -> ::redis::ScriptInvocation<'static> {
    let mut invocation = GCRA.prepare_invoke();
    // `n <= burst` was checked, so `n * T <= T * burst`, which saturates but fits.
    let cost = quota.interval_nanos().saturating_mul(u64::from(n));
    invocation.key(key).arg(cost).arg(quota.tolerance_nanos());
    match now {
        Some(now) => invocation.arg(now),
        None => invocation.arg(""),
    };
    invocation.arg(margin_ms);
    invocation
}

/// The decision a reply stands for: the same numbers as the local `GcraCell::check`.
pub(crate) fn decision(reply: Reply, quota: &Quota) -> Decision {
    let (allowed, headroom, reset_after, retry_after) = reply;
    Decision::new(
        allowed == 1,
        quota.burst(),
        headroom,
        quota.interval_nanos(),
        reset_after,
        retry_after,
    )
}
