//! Each pattern crate is reachable through the facade, under its feature, and its types
//! work across the re-export boundary.

#[cfg(feature = "lockfree")]
#[test]
fn lockfree_is_reexported() {
    use flowbed::lockfree::{ArrayQueue, PopError, SegQueue, channel, spsc};

    let bounded = ArrayQueue::new(1);
    bounded.push(1).unwrap();
    assert_eq!(bounded.pop(), Ok(1));

    let unbounded = SegQueue::new();
    unbounded.push("x").unwrap();
    assert_eq!(unbounded.pop(), Ok("x"));
    assert_eq!(unbounded.pop(), Err(PopError::Empty));

    let (mut producer, mut consumer) = spsc::channel(2);
    producer.push(2u8).unwrap();
    assert_eq!(consumer.pop(), Ok(2));

    let (tx, rx) = channel::bounded(1);
    tx.send_blocking(3).unwrap();
    assert_eq!(rx.recv_blocking(), Ok(3));
}

/// The facade is the same crate, not a copy: types are interchangeable.
#[cfg(feature = "lockfree")]
#[test]
fn lockfree_types_are_the_subcrate_types() {
    fn takes_facade_type(queue: &flowbed::lockfree::ArrayQueue<u8>) -> usize {
        queue.capacity()
    }
    let queue: flowbed_lockfree::ArrayQueue<u8> = flowbed_lockfree::ArrayQueue::new(4);
    assert_eq!(takes_facade_type(&queue), 4);
}

#[cfg(feature = "workerpool")]
#[test]
fn workerpool_is_reexported() {
    use flowbed::workerpool::{RejectPolicy, WorkerPool};

    let pool = WorkerPool::builder()
        .core_threads(1)
        .reject_policy(RejectPolicy::CallerRuns)
        .build()
        .unwrap();
    assert_eq!(pool.submit(|| 40 + 2).unwrap().join().unwrap(), 42);
}

/// A pool built through the sub-crate is usable through the facade's paths.
#[cfg(feature = "workerpool")]
#[test]
fn workerpool_types_are_the_subcrate_types() {
    fn stats_of(pool: &flowbed::workerpool::WorkerPool) -> usize {
        pool.stats().threads
    }
    let pool = flowbed_workerpool::WorkerPool::new(2).unwrap();
    assert_eq!(stats_of(&pool), 2);
}

#[cfg(feature = "ratelimit")]
#[test]
fn ratelimit_is_reexported() {
    use flowbed::ratelimit::{KeyedRateLimiter, Quota, RateLimiter};
    use std::num::NonZeroU32;

    let quota = Quota::per_minute(NonZeroU32::new(2).unwrap());
    let limiter = RateLimiter::new(quota);
    assert!(limiter.check().is_allowed());
    assert!(limiter.check().is_allowed());
    assert!(!limiter.check().is_allowed());

    let keyed: KeyedRateLimiter<&str> = flowbed_ratelimit::KeyedRateLimiter::new(quota);
    assert!(keyed.check(&"a").unwrap().is_allowed());
    assert_eq!(keyed.len(), 1);
}

#[cfg(feature = "circuitbreaker")]
#[test]
fn circuitbreaker_is_reexported() {
    use flowbed::circuitbreaker::{CircuitBreaker, Config, ManualClock, State};

    let config = Config::builder()
        .count_window(2)
        .minimum_calls(2)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::with_clock(config, ManualClock::new());
    let _ = breaker.call(|| Err::<(), _>("down"));
    let _ = breaker.call(|| Err::<(), _>("down"));
    assert_eq!(breaker.state(), State::Open);
    let same: &flowbed_circuitbreaker::CircuitBreaker<ManualClock> = &breaker;
    assert!(same.try_acquire().is_err());
}

#[cfg(feature = "pool")]
#[test]
fn pool_is_reexported() {
    use flowbed::pool::{Manager, Pool};

    struct Numbers;
    impl Manager for Numbers {
        type Connection = u8;
        type Error = std::convert::Infallible;
        async fn create(&self) -> Result<u8, Self::Error> {
            Ok(7)
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool: Pool<Numbers> = Pool::builder(Numbers).max_size(1).build().unwrap();
        assert_eq!(*pool.get().await.unwrap(), 7);
        let same: &flowbed_pool::Pool<Numbers> = &pool;
        assert_eq!(same.stats().size, 1);
    });
}

#[cfg(feature = "actor")]
#[test]
fn actor_is_reexported() {
    use flowbed::actor::{Actor, BoxError, Context, Message};

    struct Echo;
    impl Actor for Echo {
        type Args = ();
        async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
            Ok(Echo)
        }
    }
    impl Message<u32> for Echo {
        type Reply = u32;
        async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> u32 {
            n
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let echo = Echo::spawn(());
        assert_eq!(echo.ask(7).await.unwrap(), 7);
        let same: &flowbed_actor::ActorRef<Echo> = &echo;
        assert_eq!(same.stats().processed, 1);
    });
}

#[cfg(feature = "reactive")]
#[test]
fn reactive_is_reexported() {
    use flowbed::reactive::Flow;

    let sum =
        futures::executor::block_on(Flow::iter(1..=3u32).map(|n| n * 2).fold(0, |a, n| a + n));
    assert_eq!(sum.unwrap(), 12);
    let _same: fn(Vec<u32>) -> flowbed_reactive::Flow<_> = Flow::iter;
}

#[cfg(feature = "eventsourcing")]
#[test]
fn eventsourcing_is_reexported() {
    use flowbed::eventsourcing::memory::MemoryStore;
    use flowbed::eventsourcing::{EventData, EventStore, ExpectedVersion, Position};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = MemoryStore::new();
        let event = EventData::new("Happened", b"{}".to_vec());
        let result = store
            .append("s-1", ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        assert_eq!(result.position, Some(Position(1)));
        let same: fn() -> flowbed_eventsourcing::memory::MemoryStore = MemoryStore::new;
        assert_eq!(same().head().await.unwrap(), Position::START);
    });
}
