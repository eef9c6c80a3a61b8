//! The core in a few end-to-end checks: fused chains, stream adapters, publisher round
//! trips, panics becoming errors.

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

use flowbed_reactive::{Error, Flow, Publisher, Subscriber, Subscription};
use futures::StreamExt;

#[tokio::test]
async fn a_fused_chain_computes_what_an_iterator_computes() {
    let expected: u64 = (0..10_000u64)
        .map(|n| n * 3)
        .filter(|n| n % 2 == 0)
        .skip(5)
        .take(1000)
        .sum();
    let got = Flow::iter(0..10_000u64)
        .map(|n| n * 3)
        .filter(|n| n % 2 == 0)
        .skip(5)
        .take(1000)
        .fold(0, |sum, n| sum + n)
        .await
        .unwrap();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_flow_round_trips_through_a_publisher_and_back() {
    let items = Flow::from_publisher_with_prefetch(Flow::iter(0..5_000u32).map(|n| n + 1), 16)
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(items, (1..=5_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_panic_in_a_closure_becomes_an_error_and_ends_the_stream() {
    let mut stream = Flow::iter(0..10u32)
        .map(|n| if n == 3 { panic!("bad item {n}") } else { n })
        .into_stream();
    for expected in 0..3 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    match stream.next().await {
        Some(Err(Error::Panicked { message })) => assert_eq!(message, "bad item 3"),
        other => panic!("expected the panic as an error, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
}

/// Records every signal; requests one item at a time from inside `on_next`.
struct OneByOne {
    log: Arc<Mutex<Vec<String>>>,
    subscription: Option<Subscription>,
}

impl Subscriber<u32> for OneByOne {
    fn on_subscribe(&mut self, subscription: Subscription) {
        subscription.request(NonZeroU64::MIN);
        self.subscription = Some(subscription);
    }
    fn on_next(&mut self, item: u32) {
        self.log.lock().unwrap().push(format!("next {item}"));
        self.subscription.as_ref().unwrap().request(NonZeroU64::MIN);
    }
    fn on_error(&mut self, error: Error) {
        self.log.lock().unwrap().push(format!("error {error}"));
    }
    fn on_complete(&mut self) {
        self.log.lock().unwrap().push("complete".into());
    }
}

#[tokio::test]
async fn request_one_from_on_next_gets_every_item_then_complete() {
    let log = Arc::new(Mutex::new(Vec::new()));
    Flow::iter(0..3u32)
        .drive(OneByOne {
            log: Arc::clone(&log),
            subscription: None,
        })
        .await;
    assert_eq!(
        *log.lock().unwrap(),
        ["next 0", "next 1", "next 2", "complete"]
    );
}

#[tokio::test]
async fn subscribe_spawns_and_delivers_the_error() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    struct Done(OneByOne, Option<tokio::sync::oneshot::Sender<()>>);
    impl Subscriber<u32> for Done {
        fn on_subscribe(&mut self, s: Subscription) {
            self.0.on_subscribe(s)
        }
        fn on_next(&mut self, item: u32) {
            self.0.on_next(item)
        }
        fn on_error(&mut self, error: Error) {
            self.0.on_error(error);
            let _ = self.1.take().unwrap().send(());
        }
        fn on_complete(&mut self) {
            self.0.on_complete();
            let _ = self.1.take().unwrap().send(());
        }
    }
    Flow::iter(["1", "x"])
        .try_map(|text| Ok(text.parse::<u32>()?))
        .subscribe(Done(
            OneByOne {
                log: Arc::clone(&log),
                subscription: None,
            },
            Some(done_tx),
        ));
    done_rx.await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "next 1",
            "error upstream failed: invalid digit found in string"
        ]
    );
}
