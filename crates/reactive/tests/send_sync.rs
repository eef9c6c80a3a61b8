//! The thread-safety promises of flowbed-reactive's public types, checked at compile time
//! (each call below compiles only if the type has the property), plus one run of the
//! futures on a multi-thread runtime. Items that are `Send` but not `Sync` (a `Cell`) get
//! the same guarantees: a flow only ever requires `Send` of its items.

use std::cell::Cell;
use std::num::NonZeroU64;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use flowbed_reactive::ops::boundary::{Boundary, Overflow};
use flowbed_reactive::sources::iter::Iter;
use flowbed_reactive::sources::publisher::FromPublisher;
use flowbed_reactive::{
    BoxSource, Demand, Error, Flow, IntoStream, Step, Subscriber, Subscription,
};
use flowbed_testkit::thread_safety::{
    debug, error, send, send_future, spawnable, thread_safe, unpin,
};
use futures::StreamExt;

/// Compiles only for `Clone` types.
fn cloneable<T: Clone>() {}

/// A source whose items are `Send` but not `Sync`.
type Cells = Iter<std::vec::IntoIter<Cell<u32>>>;

/// A subscriber that is `Send` but not `Sync` (it keeps a `Cell`).
struct Counting {
    seen: Cell<u64>,
    subscription: Option<Subscription>,
    total: Arc<Mutex<Option<u64>>>,
}

impl Counting {
    fn new(total: Arc<Mutex<Option<u64>>>) -> Self {
        Self {
            seen: Cell::new(0),
            subscription: None,
            total,
        }
    }
}

impl<T> Subscriber<T> for Counting {
    fn on_subscribe(&mut self, subscription: Subscription) {
        subscription.request(NonZeroU64::new(2).expect("positive"));
        self.subscription = Some(subscription);
    }

    fn on_next(&mut self, _: T) {
        self.seen.set(self.seen.get() + 1);
        if let Some(subscription) = &self.subscription {
            subscription.request(NonZeroU64::MIN);
        }
    }

    fn on_error(&mut self, error: Error) {
        panic!("unexpected error {error}");
    }

    fn on_complete(&mut self) {
        *self.total.lock().expect("not poisoned") = Some(self.seen.get());
    }
}

#[test]
fn the_subscription_handles_are_thread_safe() {
    thread_safe::<Subscription>();
    cloneable::<Subscription>();
    thread_safe::<Demand>();
}

#[test]
fn the_error_is_a_send_sync_static_std_error() {
    error::<Error>();
    thread_safe::<Error>();
    cloneable::<Error>();
    thread_safe::<Step>();
    thread_safe::<Overflow>();
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> =
        Box::new(Error::Protocol("test"));
    assert!(boxed.to_string().contains("test"));
}

#[test]
fn flows_and_their_sources_are_send() {
    thread_safe::<Flow<Iter<Range<u32>>>>();
    thread_safe::<Iter<Range<u32>>>();
    send::<Flow<Cells>>();
    unpin::<Flow<Cells>>();
    send::<BoxSource<Cell<u32>>>();
    debug::<BoxSource<Cell<u32>>>();
    // The async boundary holds upstream until its first poll, then the ring's consumer end.
    send::<Boundary<Iter<Range<u32>>>>();
    send::<Boundary<Cells>>();
    send::<Flow<Boundary<Cells>>>();
    unpin::<Boundary<Cells>>();
    debug::<Boundary<Cells>>();
    send::<FromPublisher<Flow<Iter<Range<u32>>>>>();
    send::<FromPublisher<Flow<Boundary<Cells>>>>();
    debug::<FromPublisher<Flow<Iter<Range<u32>>>>>();
}

#[test]
fn the_stream_adapter_is_send() {
    send::<IntoStream<Iter<Range<u32>>>>();
    send::<IntoStream<Cells>>();
    send::<IntoStream<Boundary<Cells>>>();
    unpin::<IntoStream<Boundary<Cells>>>();
    debug::<IntoStream<Iter<Range<u32>>>>();
    let stream = send_future(Flow::iter(0..3u32).async_boundary(2).into_stream().count());
    drop(stream);
}

#[test]
fn consuming_futures_are_send_when_their_parts_are() {
    // A non-`Sync` accumulator and non-`Sync` items.
    let fold = send_future(
        Flow::iter(vec![Cell::new(1u32)]).fold(Cell::new(0), |sum, item| {
            sum.set(sum.get() + item.get());
            sum
        }),
    );
    drop(fold);
    drop(send_future(Flow::iter(0..3u32).collect::<Vec<_>>()));
    drop(send_future(Flow::iter(0..3u32).async_boundary(4).count()));
    drop(send_future(
        Flow::iter(0..3u32).buffer(4, Overflow::DropOldest).count(),
    ));
    drop(send_future(
        Flow::from_publisher(Flow::iter(0..3u32)).for_each(drop),
    ));
    // The driver of a non-`Sync` subscriber on a source of non-`Sync` items.
    let total = Arc::new(Mutex::new(None));
    let drive = send_future(Flow::iter(vec![Cell::new(1u32)]).drive(Counting::new(total)));
    unpin::<flowbed_reactive::Drive<Cells, Counting>>();
    debug::<flowbed_reactive::Drive<Cells, Counting>>();
    drop(drive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_futures_run_on_other_threads() {
    let total = Arc::new(Mutex::new(None));
    let drive = spawnable(
        Flow::iter((0..1000u32).map(Cell::new))
            .async_boundary(8)
            .drive(Counting::new(Arc::clone(&total))),
    );
    tokio::spawn(drive).await.expect("no panic");
    assert_eq!(*total.lock().expect("not poisoned"), Some(1000));

    let sum = tokio::spawn(spawnable(
        Flow::iter((0..1000u32).map(Cell::new))
            .async_boundary(8)
            .fold(0u32, |sum, cell| sum + cell.get()),
    ))
    .await
    .expect("no panic")
    .expect("completes");
    assert_eq!(sum, 999 * 1000 / 2);

    let mut stream = Flow::from_publisher_with_prefetch(Flow::iter(0..100u32), 4).into_stream();
    let collected = tokio::spawn(spawnable(async move {
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item.expect("no error"));
        }
        items
    }))
    .await
    .expect("no panic");
    assert_eq!(collected, (0..100).collect::<Vec<_>>());
}
