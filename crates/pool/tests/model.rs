//! Model-based property tests: random operation sequences on a real `Pool` (ManualClock, paused tokio time) checked against a sequential reference model of the sizing rules, plus bounds under lifetime jitter.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flowbed_pool::{
    CloseReason, ConnectionInfo, IdleOrder, Manager, ManualClock, Pool, PoolError, Pooled,
    ResizeError, Stats,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The ManualClock step: advances are whole multiples of it, so ages and idle times land
/// exactly on `idle_timeout`, `max_lifetime` and `validate_after` boundaries.
const UNIT: u64 = 250_000_000;
/// `get_timeout`'s wait when nothing is idle (tokio time, auto-advanced).
const SHORT_WAIT: Duration = Duration::from_millis(10);
/// Create retry backoff, fixed (initial = max).
const BACKOFF: Duration = Duration::from_secs(1);
/// How creation tasks are settled after every operation: `tokio::time::sleep(SETTLE)` on the
/// paused current-thread runtime. The sleep first lets every ready task run (a fresh create
/// finishes in its first poll: the manager creates instantly), then, with nothing runnable,
/// tokio auto-advances its clock timer by timer up to SETTLE. Every failed create sleeps
/// exactly BACKOFF, and the previous settle ended at least SETTLE > BACKOFF ago, so each
/// retrying create wakes at least once inside the window: it re-checks whether it is still
/// wanted (giving up if not) and retries. After the sleep no creation is runnable:
/// succeeded ones are counted, failing ones sleep in their backoff. `yield_now` alone is
/// enough for creates that succeed at once but never lets a backoff end, so a create that
/// failed before `ToggleFail` switched failures off would resume at an arbitrary later op.
const SETTLE: Duration = Duration::from_millis(1_010);
/// Maintenance interval: never due within a test (pool.maintain() is called by hand).
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug)]
struct TestConn {
    id: u64,
    broken: bool,
}

#[derive(Debug, Default)]
struct TestManager {
    next: AtomicU64,
    failing: AtomicBool,
    recycles: AtomicU64,
}

impl Manager for TestManager {
    type Connection = TestConn;
    type Error = io::Error;

    async fn create(&self) -> Result<TestConn, io::Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::other("connection refused"));
        }
        Ok(TestConn {
            id: self.next.fetch_add(1, Ordering::SeqCst) + 1,
            broken: false,
        })
    }

    async fn recycle(&self, _conn: &mut TestConn) -> Result<(), io::Error> {
        self.recycles.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn is_broken(&self, conn: &TestConn) -> bool {
        conn.broken
    }
}

type TestPool = Pool<TestManager>;
type Held = Pooled<TestManager>;

#[derive(Debug, Clone)]
struct Cfg {
    max_size: usize,
    min_idle: usize,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    jitter: Duration,
    validate_after: Duration,
    lifo: bool,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    TryGet,
    GetTimeout,
    Return(usize),
    Detach(usize),
    MarkBroken(usize),
    /// Permille of 2 × idle_timeout (40 units when there is none), rounded to units.
    Advance(u64),
    Maintain,
    Resize(usize),
    /// Keep idle connections whose id has this parity.
    Retain(u64),
    ToggleFail,
}

fn units(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap() / UNIT
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap()
}

fn advance_by(cfg: &Cfg, permille: u64) -> u64 {
    let base = cfg.idle_timeout.map_or(40, units);
    (permille * 2 * base + 500) / 1000 * UNIT
}

fn reason_index(reason: CloseReason) -> usize {
    CloseReason::ALL
        .iter()
        .position(|r| *r == reason)
        .expect("every reason is in ALL")
}

// ---------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, Copy)]
struct MConn {
    id: u64,
    created_at: u64,
    last_used: u64,
    retire_at: u64,
    uses: u64,
    broken: bool,
}

#[derive(Debug)]
struct Model {
    cfg: Cfg,
    now: u64,
    max_size: usize,
    /// Oldest-returned first.
    idle: VecDeque<MConn>,
    held: Vec<MConn>,
    /// Idle connections taken out and being checked, or judged by `retain` (count as in use).
    judging: usize,
    /// Creations reserved and not yet finished or given up.
    creating: usize,
    /// Of those, spawned in this operation and not yet polled.
    fresh: usize,
    waiting: usize,
    failing: bool,
    last_error: bool,
    next_id: u64,
    created: u64,
    closed: [u64; CloseReason::COUNT],
    waits: u64,
    timeouts: u64,
    recycles: u64,
}

impl Model {
    fn new(cfg: Cfg) -> Self {
        let mut model = Self {
            max_size: cfg.max_size,
            cfg,
            now: 0,
            idle: VecDeque::new(),
            held: Vec::new(),
            judging: 0,
            creating: 0,
            fresh: 0,
            waiting: 0,
            failing: false,
            last_error: false,
            next_id: 0,
            created: 0,
            closed: [0; CloseReason::COUNT],
            waits: 0,
            timeouts: 0,
            recycles: 0,
        };
        // Building opens min_idle connections.
        model.start_creates();
        model
    }

    fn open(&self) -> usize {
        self.idle.len() + self.held.len() + self.judging
    }

    /// Connections wanted: one per waiter plus the min_idle deficit.
    fn demand(&self) -> usize {
        self.waiting + self.cfg.min_idle.saturating_sub(self.idle.len())
    }

    /// Reserve creations for the demand not already being met, within max_size.
    fn start_creates(&mut self) {
        let room = self.max_size.saturating_sub(self.open() + self.creating);
        let wanted = self.demand().saturating_sub(self.creating).min(room);
        self.creating += wanted;
        self.fresh += wanted;
    }

    /// A creation in flight is still wanted (checked by a retrying create).
    fn still_wanted(&self) -> bool {
        self.creating <= self.demand() && self.open() + self.creating <= self.max_size
    }

    fn close(&mut self, reason: CloseReason) {
        self.closed[reason_index(reason)] += 1;
    }

    /// A connection out of the idle list closes: count it, replace it if wanted.
    fn discard(&mut self, reason: CloseReason) {
        self.close(reason);
        self.start_creates();
    }

    fn new_conn(&mut self) -> MConn {
        self.creating -= 1;
        self.next_id += 1;
        self.created += 1;
        self.last_error = false;
        let retire_at = self
            .cfg
            .max_lifetime
            .map_or(u64::MAX, |lifetime| self.now + nanos(lifetime));
        MConn {
            id: self.next_id,
            created_at: self.now,
            last_used: self.now,
            retire_at,
            uses: 0,
            broken: false,
        }
    }

    /// A connection comes back to the pool's hands (not yet counted anywhere).
    fn put(&mut self, conn: MConn) {
        if self.open() + 1 > self.max_size {
            self.close(CloseReason::Resized);
        } else {
            self.idle.push_back(conn);
        }
    }

    /// The checkout's last steps: validate if unused for validate_after, then hand out.
    fn hand_out(&mut self, mut conn: MConn) -> MConn {
        if self.now - conn.last_used >= nanos(self.cfg.validate_after) {
            self.recycles += 1;
        }
        conn.uses += 1;
        conn.last_used = self.now;
        self.held.push(conn);
        conn
    }

    /// Takes idle connections in LIFO/FIFO order, closing the ones past their lifetime.
    /// min_idle is "replenished in the background as they are used or closed": taking one
    /// (by `get` or `try_get`) starts its replacement.
    fn take_idle(&mut self) -> Option<MConn> {
        loop {
            let conn = if self.cfg.lifo {
                self.idle.pop_back()
            } else {
                self.idle.pop_front()
            }?;
            // Out of the idle list but still open while it is checked.
            self.judging += 1;
            self.start_creates();
            self.judging -= 1;
            if conn.retire_at <= self.now {
                self.discard(CloseReason::MaxLifetime);
                continue;
            }
            return Some(self.hand_out(conn));
        }
    }

    /// The fresh creations of this operation run (first poll).
    fn poll_fresh(&mut self) -> Option<MConn> {
        let fresh = std::mem::take(&mut self.fresh);
        if self.failing {
            if fresh > 0 {
                self.last_error = true;
            }
            return None;
        }
        let mut handed = None;
        for _ in 0..fresh {
            let conn = self.new_conn();
            if self.waiting > 0 {
                self.waiting -= 1;
                handed = Some(conn);
            } else {
                self.put(conn);
            }
        }
        handed
    }

    fn try_get(&mut self) -> Option<MConn> {
        self.take_idle()
    }

    /// `get_timeout`: an idle connection, else queue; a creation finishing serves the
    /// waiter, else it times out. Err carries whether a create error is reported.
    fn get(&mut self) -> Result<MConn, bool> {
        if let Some(conn) = self.take_idle() {
            return Ok(conn);
        }
        self.waits += 1;
        self.waiting = 1;
        self.start_creates();
        if let Some(conn) = self.poll_fresh() {
            // A brand-new connection is never past its lifetime (max_lifetime > 0).
            return Ok(self.hand_out(conn));
        }
        self.waiting = 0;
        self.timeouts += 1;
        Err(self.last_error)
    }

    fn give_back(&mut self, index: usize) {
        let mut conn = self.held.remove(index);
        if conn.broken {
            self.discard(CloseReason::Broken);
        } else if conn.retire_at <= self.now {
            self.discard(CloseReason::MaxLifetime);
        } else {
            conn.last_used = self.now;
            self.put(conn);
        }
    }

    fn detach(&mut self, index: usize) {
        self.held.remove(index);
        self.discard(CloseReason::Detached);
    }

    /// maintain(), as the docs state it: close idle connections past max_lifetime, then
    /// the ones idle past idle_timeout, least recently used first, while more than
    /// min_idle are idle; then open connections up to min_idle.
    fn maintain(&mut self) {
        let now = self.now;
        let before = self.idle.len();
        self.idle.retain(|conn| conn.retire_at > now);
        for _ in self.idle.len()..before {
            self.close(CloseReason::MaxLifetime);
        }
        if let Some(idle_timeout) = self.cfg.idle_timeout.map(nanos) {
            let mut kept = VecDeque::new();
            while let Some(conn) = self.idle.pop_front() {
                let expired = now - conn.last_used >= idle_timeout;
                if expired && self.idle.len() + kept.len() + 1 > self.cfg.min_idle {
                    self.close(CloseReason::IdleTimeout);
                } else {
                    kept.push_back(conn);
                }
            }
            self.idle = kept;
        }
        self.start_creates();
    }

    fn resize(&mut self, max_size: usize) -> Result<(), &'static str> {
        if max_size == 0 {
            return Err("zero");
        }
        if max_size < self.cfg.min_idle {
            return Err("below min_idle");
        }
        self.max_size = max_size;
        while self.open() > max_size {
            // The least recently used idle connections go first.
            if self.idle.pop_front().is_none() {
                break;
            }
            self.close(CloseReason::Resized);
        }
        self.start_creates();
        Ok(())
    }

    /// retain(): the idle connections are judged one by one and count as in use
    /// meanwhile (so a close's min_idle refill does not see the ones not yet put back).
    fn retain(&mut self, parity: u64) -> usize {
        let judged: Vec<MConn> = self.idle.drain(..).collect();
        self.judging = judged.len();
        let mut closed = 0;
        for conn in judged {
            self.judging -= 1;
            if conn.id % 2 == parity {
                self.put(conn);
            } else {
                closed += 1;
                self.discard(CloseReason::Retain);
            }
        }
        closed
    }

    /// What SETTLE does to the creations in flight.
    fn settle(&mut self) {
        if self.failing {
            if self.creating > 0 {
                self.last_error = true;
            }
            self.fresh = 0;
            // Each failing create re-checks at least once; the unwanted give up.
            let target = self
                .cfg
                .min_idle
                .saturating_sub(self.idle.len())
                .min(self.max_size.saturating_sub(self.open()));
            self.creating = self.creating.min(target);
        } else {
            let handed = self.poll_fresh();
            assert!(handed.is_none(), "nobody waits between operations");
            // Creates that failed earlier wake from their backoff, re-check, and succeed.
            for _ in 0..self.creating {
                if self.still_wanted() {
                    let conn = self.new_conn();
                    self.put(conn);
                } else {
                    self.creating -= 1;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Driving the real pool.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

fn build(cfg: &Cfg, clock: &ManualClock) -> TestPool {
    let builder = Pool::builder(TestManager::default())
        .max_size(cfg.max_size)
        .min_idle(cfg.min_idle)
        .idle_timeout(cfg.idle_timeout)
        .max_lifetime(cfg.max_lifetime)
        .validate_after(cfg.validate_after)
        .idle_order(if cfg.lifo {
            IdleOrder::Lifo
        } else {
            IdleOrder::Fifo
        })
        .create_backoff(BACKOFF, BACKOFF)
        .maintenance_interval(NEVER)
        .wait_timeout(SHORT_WAIT)
        .clock(clock.clone());
    let builder = if cfg.max_lifetime.is_some() {
        builder.max_lifetime_jitter(cfg.jitter)
    } else {
        builder
    };
    builder.build().expect("a valid config")
}

async fn settle() {
    tokio::time::sleep(SETTLE).await;
}

/// The idle connections, oldest-returned first, seen through a keep-everything `retain`
/// (it puts each one back in order and changes nothing).
fn idle_view(pool: &TestPool) -> Vec<ConnectionInfo> {
    let mut seen = Vec::new();
    let closed = pool.retain(|conn, info| {
        assert_eq!(conn.id, info.id, "manager id and pool id agree");
        seen.push(info);
        true
    });
    assert_eq!(closed, 0);
    seen
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// Invariants that hold after every settled operation, with or without jitter.
fn check_invariants(
    cfg: &Cfg,
    stats: &Stats,
    view: &[ConnectionInfo],
    after_maintain: bool,
    failing: bool,
) -> Result<(), TestCaseError> {
    // Above max_size only through the shrink-on-return lag: nothing idle then.
    prop_assert!(
        stats.size <= stats.max_size || stats.idle == 0,
        "size {} > max_size {} with {} idle",
        stats.size,
        stats.max_size,
        stats.idle
    );
    prop_assert_eq!(stats.idle + stats.in_use, stats.size);
    prop_assert_eq!(stats.size as u64, stats.created - stats.closed_total());
    prop_assert_eq!(stats.waiters, 0);
    prop_assert!(stats.creating <= stats.max_size.saturating_sub(stats.size));
    if !failing {
        prop_assert_eq!(stats.creating, 0);
    }
    prop_assert_eq!(view.len(), stats.idle);
    if after_maintain {
        if let Some(lifetime) = cfg.max_lifetime {
            for info in view {
                prop_assert!(
                    info.age < lifetime,
                    "idle {info:?} past {lifetime:?} after maintain"
                );
            }
        }
        if let Some(idle_timeout) = cfg.idle_timeout {
            let stale = view.iter().filter(|i| i.idle_for >= idle_timeout).count();
            prop_assert!(
                stale <= cfg.min_idle,
                "{stale} idle past {idle_timeout:?} after maintain, min_idle {}",
                cfg.min_idle
            );
        }
        if !failing {
            let floor = cfg
                .min_idle
                .min(stats.max_size.saturating_sub(stats.in_use));
            prop_assert!(
                stats.idle >= floor,
                "idle {} below min(min_idle, max_size - in_use) = {floor} after maintain",
                stats.idle
            );
        }
    }
    Ok(())
}

fn compare(
    pool: &TestPool,
    model: &Model,
    held: &[Held],
) -> Result<Vec<ConnectionInfo>, TestCaseError> {
    let stats = pool.stats();
    prop_assert_eq!(stats.size, model.open(), "size");
    prop_assert_eq!(stats.idle, model.idle.len(), "idle");
    prop_assert_eq!(stats.in_use, model.held.len(), "in_use");
    prop_assert_eq!(stats.max_size, model.max_size, "max_size");
    prop_assert_eq!(stats.creating, model.creating, "creating");
    prop_assert_eq!(stats.created, model.created, "created");
    prop_assert_eq!(
        stats.closed,
        model.closed,
        "closed by reason {:?}",
        CloseReason::ALL
    );
    prop_assert_eq!(stats.waits, model.waits, "waits");
    prop_assert_eq!(stats.timeouts, model.timeouts, "timeouts");
    prop_assert_eq!(
        pool.manager().recycles.load(Ordering::SeqCst),
        model.recycles,
        "recycle calls"
    );
    let held_ids: Vec<u64> = held.iter().map(|p| p.id).collect();
    let model_held: Vec<u64> = model.held.iter().map(|c| c.id).collect();
    prop_assert_eq!(held_ids, model_held, "held ids");
    let view = idle_view(pool);
    let got: Vec<(u64, u64, u64, u64)> = view
        .iter()
        .map(|i| (i.id, nanos(i.age), nanos(i.idle_for), i.uses))
        .collect();
    let want: Vec<(u64, u64, u64, u64)> = model
        .idle
        .iter()
        .map(|c| {
            (
                c.id,
                model.now - c.created_at,
                model.now - c.last_used,
                c.uses,
            )
        })
        .collect();
    prop_assert_eq!(
        got,
        want,
        "idle (id, age, idle_for, uses), oldest-returned first"
    );
    Ok(view)
}

async fn run_exact(cfg: Cfg, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let pool = build(&cfg, &clock);
    let mut model = Model::new(cfg.clone());
    let mut held: Vec<Held> = Vec::new();
    settle().await;
    model.settle();
    compare(&pool, &model, &held)?;
    for (step, &op) in ops.iter().enumerate() {
        match op {
            Op::TryGet => {
                let want = model.try_get().map(|c| c.id);
                let got = pool
                    .try_get()
                    .await
                    .map_err(|e| fail(format!("step {step}: try_get: {e}")))?;
                prop_assert_eq!(
                    got.as_ref().map(|p| p.id),
                    want,
                    "step {}: try_get id",
                    step
                );
                held.extend(got);
            }
            Op::GetTimeout => match (pool.get_timeout(SHORT_WAIT).await, model.get()) {
                (Ok(conn), Ok(want)) => {
                    prop_assert_eq!(conn.id, want.id, "step {}: get id", step);
                    prop_assert_eq!(conn.info().uses, want.uses);
                    held.push(conn);
                }
                (
                    Err(PoolError::Timeout {
                        last_create_error, ..
                    }),
                    Err(create_error),
                ) => {
                    prop_assert_eq!(last_create_error.is_some(), create_error, "step {}", step);
                }
                (got, want) => {
                    return Err(fail(format!(
                        "step {step}: get_timeout gave {got:?}, model {want:?}"
                    )));
                }
            },
            Op::Return(i) if !held.is_empty() => {
                let i = i % held.len();
                drop(held.remove(i));
                model.give_back(i);
            }
            Op::Detach(i) if !held.is_empty() => {
                let i = i % held.len();
                let conn = held.remove(i).detach();
                prop_assert_eq!(conn.id, model.held[i].id);
                model.detach(i);
            }
            Op::MarkBroken(i) if !held.is_empty() => {
                let i = i % held.len();
                held[i].broken = true;
                model.held[i].broken = true;
            }
            Op::Return(_) | Op::Detach(_) | Op::MarkBroken(_) => {}
            Op::Advance(permille) => {
                let by = advance_by(&cfg, permille);
                clock.advance(Duration::from_nanos(by));
                model.now += by;
            }
            Op::Maintain => {
                pool.maintain();
                model.maintain();
            }
            Op::Resize(n) => {
                let got = pool.resize(n);
                let want = model.resize(n);
                match (&got, want) {
                    (Ok(()), Ok(())) => {}
                    (Err(ResizeError::Zero), Err("zero")) => {}
                    (Err(ResizeError::BelowMinIdle { .. }), Err("below min_idle")) => {}
                    _ => {
                        return Err(fail(format!(
                            "step {step}: resize({n}) gave {got:?}, model {want:?}"
                        )));
                    }
                }
            }
            Op::Retain(parity) => {
                let got = pool.retain(|conn, _| conn.id % 2 == parity);
                prop_assert_eq!(got, model.retain(parity), "step {}: retain closed", step);
            }
            Op::ToggleFail => {
                model.failing = !model.failing;
                pool.manager()
                    .failing
                    .store(model.failing, Ordering::SeqCst);
            }
        }
        settle().await;
        model.settle();
        let view = compare(&pool, &model, &held)
            .map_err(|e| fail(format!("after step {step} ({op:?}): {e}")))?;
        let stats = pool.stats();
        check_invariants(
            &cfg,
            &stats,
            &view,
            matches!(op, Op::Maintain),
            model.failing,
        )
        .map_err(|e| fail(format!("after step {step} ({op:?}): {e}")))?;
    }
    Ok(())
}

/// Jittered lifetimes: no exact model, only the bounds the docs give. A connection retires
/// somewhere in [max_lifetime - jitter, max_lifetime] of age.
async fn run_jitter(cfg: Cfg, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let lifetime = cfg.max_lifetime.expect("jitter runs have a lifetime");
    let early = lifetime - cfg.jitter;
    let clock = ManualClock::new();
    let pool = build(&cfg, &clock);
    let mut held: Vec<Held> = Vec::new();
    let mut failing = false;
    settle().await;
    let mut view = idle_view(&pool);
    for (step, &op) in ops.iter().enumerate() {
        let before = pool.stats();
        let lifetime_closes = |pool: &TestPool| {
            pool.stats().closed_for(CloseReason::MaxLifetime)
                - before.closed_for(CloseReason::MaxLifetime)
        };
        match op {
            Op::TryGet | Op::GetTimeout => {
                let got = if matches!(op, Op::TryGet) {
                    pool.try_get()
                        .await
                        .map_err(|e| fail(format!("try_get: {e}")))?
                } else {
                    match pool.get_timeout(SHORT_WAIT).await {
                        Ok(conn) => Some(conn),
                        Err(PoolError::Timeout { .. }) => None,
                        Err(e) => return Err(fail(format!("step {step}: get_timeout: {e}"))),
                    }
                };
                match got {
                    Some(conn) => {
                        prop_assert!(
                            conn.info().age < lifetime,
                            "step {step}: handed out past max_lifetime"
                        );
                        held.push(conn);
                    }
                    None => {
                        // Every idle connection must have been past its (jittered) lifetime.
                        for info in &view {
                            prop_assert!(
                                info.age >= early,
                                "step {step}: {info:?} young, yet nothing handed out"
                            );
                        }
                    }
                }
            }
            Op::Return(i) if !held.is_empty() => {
                let conn = held.remove(i % held.len());
                let (info, broken) = (conn.info(), conn.broken);
                drop(conn);
                let closes = lifetime_closes(&pool);
                if broken {
                    prop_assert_eq!(closes, 0);
                } else if info.age >= lifetime {
                    prop_assert_eq!(
                        closes,
                        1,
                        "step {}: returned at age {:?} >= {:?} and kept",
                        step,
                        info.age,
                        lifetime
                    );
                } else if info.age < early {
                    prop_assert_eq!(
                        closes,
                        0,
                        "step {}: retired at age {:?} < {:?}",
                        step,
                        info.age,
                        early
                    );
                }
            }
            Op::Detach(i) if !held.is_empty() => {
                let conn = held.remove(i % held.len()).detach();
                prop_assert_eq!(
                    pool.stats().closed_for(CloseReason::Detached),
                    before.closed_for(CloseReason::Detached) + 1
                );
                prop_assert!(conn.id > 0);
            }
            Op::MarkBroken(i) if !held.is_empty() => {
                let i = i % held.len();
                held[i].broken = true;
            }
            Op::Return(_) | Op::Detach(_) | Op::MarkBroken(_) => {}
            Op::Advance(permille) => {
                clock.advance(Duration::from_nanos(advance_by(&cfg, permille)))
            }
            Op::Maintain => {
                pool.maintain();
                let after = idle_view(&pool);
                for info in &view {
                    let kept = after.iter().any(|a| a.id == info.id);
                    let idle_ok = cfg.idle_timeout.is_none_or(|t| info.idle_for < t);
                    if info.age >= lifetime {
                        prop_assert!(!kept, "step {step}: maintain kept {info:?}");
                    } else if info.age < early && idle_ok {
                        prop_assert!(kept, "step {step}: maintain closed {info:?}");
                    }
                }
            }
            Op::Resize(n) => {
                let _ = pool.resize(n);
            }
            Op::Retain(parity) => {
                pool.retain(|conn, _| conn.id % 2 == parity);
            }
            Op::ToggleFail => {
                failing = !failing;
                pool.manager().failing.store(failing, Ordering::SeqCst);
            }
        }
        settle().await;
        let next = idle_view(&pool);
        if !matches!(op, Op::Maintain | Op::Resize(_) | Op::Retain(_)) {
            // Idle connections leave only by being handed out or retiring.
            for info in &view {
                let still =
                    next.iter().any(|a| a.id == info.id) || held.iter().any(|h| h.id == info.id);
                if !still {
                    prop_assert!(
                        info.age >= early,
                        "step {step} ({op:?}): {info:?} vanished before its lifetime"
                    );
                }
            }
        }
        let stats = pool.stats();
        check_invariants(&cfg, &stats, &next, matches!(op, Op::Maintain), failing)
            .map_err(|e| fail(format!("after step {step} ({op:?}): {e}")))?;
        view = next;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Strategies.

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::TryGet),
        4 => Just(Op::GetTimeout),
        4 => (0usize..8).prop_map(Op::Return),
        1 => (0usize..8).prop_map(Op::Detach),
        1 => (0usize..8).prop_map(Op::MarkBroken),
        4 => (0u64..=1000).prop_map(Op::Advance),
        3 => Just(Op::Maintain),
        1 => (0usize..=7).prop_map(Op::Resize),
        1 => (0u64..=1).prop_map(Op::Retain),
        1 => Just(Op::ToggleFail),
    ]
}

fn cfg(jitter: bool) -> impl Strategy<Value = Cfg> {
    (1usize..=6).prop_flat_map(move |max_size| {
        let lifetime = if jitter {
            (8u64..=240).prop_map(Some).boxed()
        } else {
            prop::option::weighted(0.75, 8u64..=240).boxed()
        };
        (
            0..=max_size,
            prop::option::weighted(0.8, 4u64..=80),
            lifetime,
            1u64..1000,
            prop_oneof![Just(0u64), Just(2), Just(4)],
            any::<bool>(),
        )
            .prop_map(
                move |(min_idle, idle, lifetime, permille, validate, lifo)| {
                    let max_lifetime = lifetime.map(|u| Duration::from_nanos(u * UNIT));
                    Cfg {
                        max_size,
                        min_idle,
                        idle_timeout: idle.map(|u| Duration::from_nanos(u * UNIT)),
                        max_lifetime,
                        jitter: match (jitter, max_lifetime) {
                            (true, Some(l)) => (l * u32::try_from(permille).unwrap() / 1000)
                                .max(Duration::from_nanos(1)),
                            _ => Duration::ZERO,
                        },
                        validate_after: Duration::from_nanos(validate * UNIT),
                        lifo,
                    }
                },
            )
    })
}

fn scenario(jitter: bool) -> impl Strategy<Value = (Cfg, Vec<Op>)> {
    (cfg(jitter), prop::collection::vec(op(), 1..80))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pool_matches_the_sequential_model((cfg, ops) in scenario(false)) {
        runtime().block_on(run_exact(cfg, ops))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn jittered_lifetimes_stay_within_bounds((cfg, ops) in scenario(true)) {
        runtime().block_on(run_jitter(cfg, ops))?;
    }
}

/// The shrunk counterexample the model property finds, step by step: one idle connection
/// past its lifetime and one past its idle timeout, min_idle 1. The docs (Builder::idle_timeout
/// "closed, down to min_idle"; CloseReason::IdleTimeout "with more than min_idle idle") allow
/// closing only the retired one; the pool closes both, leaving no idle connection, and opens
/// a replacement.
#[test]
fn idle_timeout_closes_stop_at_min_idle_when_a_lifetime_close_follows() {
    let cfg = Cfg {
        max_size: 2,
        min_idle: 1,
        idle_timeout: Some(Duration::from_secs(10)),
        max_lifetime: Some(Duration::from_secs(30)),
        jitter: Duration::ZERO,
        validate_after: Duration::from_millis(500),
        lifo: true,
    };
    runtime().block_on(async {
        let clock = ManualClock::new();
        let pool = build(&cfg, &clock);
        settle().await;
        let first = pool.try_get().await.unwrap().expect("min_idle opened one");
        assert_eq!(first.id, 1);
        clock.advance(Duration::from_secs(15));
        pool.maintain(); // refills min_idle: connection 2, idle since t = 15 s
        settle().await;
        clock.advance(Duration::from_secs(10));
        drop(first); // t = 25 s: connection 1 (age 25 s) goes back, behind connection 2
        let ids: Vec<u64> = idle_view(&pool).iter().map(|i| i.id).collect();
        assert_eq!(ids, [2, 1]);
        clock.advance(Duration::from_secs(5));
        // t = 30 s: connection 1 reaches max_lifetime; connection 2 idled 15 s >= 10 s.
        pool.maintain();
        let stats = pool.stats();
        assert_eq!(stats.closed_for(CloseReason::MaxLifetime), 1);
        assert_eq!(
            stats.closed_for(CloseReason::IdleTimeout),
            0,
            "idle-timeout close took idle below min_idle: {stats:?}"
        );
        let ids: Vec<u64> = idle_view(&pool).iter().map(|i| i.id).collect();
        assert_eq!(ids, [2], "connection 2 is the min_idle connection to keep");
        settle().await;
        assert_eq!(pool.stats().created, 2, "no replacement needed");
    });
}

/// min_idle is "replenished in the background as they are used or closed" (Builder::min_idle):
/// taking the idle connection with `try_get` must start its replacement as `get` does.
#[test]
fn try_get_replenishes_min_idle_like_get() {
    let cfg = Cfg {
        max_size: 3,
        min_idle: 1,
        idle_timeout: None,
        max_lifetime: None,
        jitter: Duration::ZERO,
        validate_after: Duration::from_millis(500),
        lifo: true,
    };
    runtime().block_on(async {
        let clock = ManualClock::new();
        let pool = build(&cfg, &clock);
        settle().await;
        let by_get = pool.get().await.unwrap();
        settle().await;
        assert_eq!(
            (pool.stats().idle, pool.stats().created),
            (1, 2),
            "get refills min_idle"
        );
        let by_try_get = pool
            .try_get()
            .await
            .unwrap()
            .expect("the refilled connection");
        settle().await;
        let stats = pool.stats();
        assert_eq!(
            (stats.idle, stats.created),
            (1, 3),
            "try_get took the only idle connection and left min_idle unfilled: {stats:?}"
        );
        drop((by_get, by_try_get));
    });
}
