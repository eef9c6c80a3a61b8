//! The core paths end to end: tell, ask, stop, kill, panics, supervision restarts.

use std::time::Duration;

use flowbed_actor::{
    Actor, AskError, BoxError, ChildSpec, Context, ExitReason, Message, Restart, SendError, Spawn,
    Strategy, SupervisorSpec,
};

struct Counter {
    total: u64,
}

impl Actor for Counter {
    type Args = u64;
    async fn on_start(start: u64, _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Counter { total: start })
    }
}

struct Add(u64);
impl Message<Add> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
        self.total += n;
        self.total
    }
}

struct Boom;
impl Message<Boom> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom");
    }
}

struct Sleep(Duration);
impl Message<Sleep> for Counter {
    type Reply = ();
    async fn handle(&mut self, Sleep(d): Sleep, _: &mut Context<Self>) {
        tokio::time::sleep(d).await;
    }
}

#[tokio::test]
async fn tell_then_ask_sees_every_tell() {
    let counter = Counter::spawn(10);
    for _ in 0..1000 {
        counter.tell(Add(1)).await.unwrap();
    }
    assert_eq!(counter.ask(Add(0)).await.unwrap(), 1010);
    assert_eq!(counter.stats().processed, 1001);
}

#[tokio::test]
async fn graceful_stop_handles_the_queue_then_refuses() {
    let counter = Counter::spawn(0);
    for _ in 0..50 {
        counter.tell(Add(1)).await.unwrap();
    }
    counter.stop();
    assert_eq!(counter.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(counter.stats().processed, 50);
    assert!(matches!(
        counter.tell(Add(1)).await,
        Err(SendError::Stopped(Add(1)))
    ));
    assert!(matches!(
        counter.ask(Add(1)).await,
        Err(AskError::Stopped(Add(1)))
    ));
}

#[tokio::test]
async fn a_panic_fails_the_ask_and_stops_with_its_message() {
    let counter = Counter::spawn(0);
    assert!(matches!(counter.ask(Boom).await, Err(AskError::NoReply)));
    assert_eq!(
        counter.wait_for_stop().await,
        ExitReason::Panicked("boom".into())
    );
}

#[tokio::test(start_paused = true)]
async fn kill_aborts_the_running_handler_and_dead_letters_the_queue() {
    let letters = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = letters.clone();
    let counter = Spawn::new()
        .on_dead_letter(move |_| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .spawn::<Counter>(0);
    counter
        .tell(Sleep(Duration::from_secs(3600)))
        .await
        .unwrap();
    for _ in 0..5 {
        counter.tell(Add(1)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    counter.kill();
    assert_eq!(counter.wait_for_stop().await, ExitReason::Killed);
    assert_eq!(letters.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(counter.stats().dead_letters, 5);
}

#[tokio::test(start_paused = true)]
async fn ask_times_out_at_its_deadline() {
    let counter = Counter::spawn(0);
    counter.tell(Sleep(Duration::from_secs(60))).await.unwrap();
    let started = tokio::time::Instant::now();
    let asked = counter
        .ask_timeout(Add(1), Duration::from_millis(100))
        .await;
    assert!(matches!(asked, Err(AskError::Timeout(_))));
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}

#[tokio::test]
async fn dropping_every_reference_stops_the_actor_normally() {
    let counter = Counter::spawn(0);
    let weak = counter.downgrade();
    counter.tell(Add(1)).await.unwrap();
    drop(counter);
    for _ in 0..100 {
        if !weak.is_alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(weak.upgrade().is_none());
}

#[tokio::test]
async fn a_supervised_child_restarts_in_place_and_keeps_its_reference() {
    let supervisor = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::<Counter>::new("counter", || 100).restart(Restart::Permanent))
        .start()
        .await
        .unwrap();
    let counter = supervisor.child::<Counter>("counter").await.unwrap();
    assert_eq!(counter.ask(Add(1)).await.unwrap(), 101);
    assert!(matches!(counter.ask(Boom).await, Err(AskError::NoReply)));
    // The next run started from the factory again.
    assert_eq!(counter.ask(Add(1)).await.unwrap(), 101);
    assert_eq!(counter.stats().restarts, 1);
    supervisor.stop();
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(counter.wait_for_stop().await, ExitReason::Stopped);
}

#[tokio::test]
async fn exceeding_the_intensity_escalates() {
    let supervisor = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(60))
        .unwrap()
        .child(ChildSpec::<Counter>::new("counter", || 0))
        .start()
        .await
        .unwrap();
    let counter = supervisor.child::<Counter>("counter").await.unwrap();
    for _ in 0..3 {
        let _ = counter.ask(Boom).await;
    }
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
    assert!(!counter.is_alive());
}
