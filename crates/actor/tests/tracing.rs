//! The `tracing` feature: a span per handled message (named `actor.handle`, with the
//! actor's id, its type and the message type) and events for starts and run ends, checked
//! with a small recording subscriber.
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};

use flowbed_actor::{Actor, BoxError, Context, Message};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default)]
struct Recorded {
    spans: Vec<(String, Vec<(String, String)>)>,
    events: Vec<String>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Recorded>>);

struct Fields(Vec<(String, String)>);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(Vec::new());
        span.record(&mut fields);
        let mut recorded = self.0.lock().unwrap();
        recorded
            .spans
            .push((span.metadata().name().to_owned(), fields.0));
        Id::from_u64(recorded.spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let message = fields
            .0
            .iter()
            .find(|(name, _)| name == "message")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        self.0.lock().unwrap().events.push(message);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

struct Echo;
impl Actor for Echo {
    type Args = ();
    async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Echo)
    }
}
struct Ping(u32);
impl Message<Ping> for Echo {
    type Reply = u32;
    async fn handle(&mut self, Ping(n): Ping, _: &mut Context<Self>) -> u32 {
        n
    }
}

#[test]
fn every_handled_message_gets_a_span_and_the_lifecycle_gets_events() {
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = tracing::subscriber::with_default(recorder.clone(), || {
        runtime.block_on(async {
            let echo = Echo::spawn(());
            for n in 0..3 {
                assert_eq!(echo.ask(Ping(n)).await.unwrap(), n);
            }
            echo.stop();
            echo.wait_for_stop().await;
            echo.id()
        })
    });
    let recorded = recorder.0.lock().unwrap();
    let handles: Vec<_> = recorded
        .spans
        .iter()
        .filter(|(name, _)| name == "actor.handle")
        .collect();
    assert_eq!(handles.len(), 3, "{:?}", recorded.spans);
    for (_, fields) in handles {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        assert_eq!(field("actor"), id.to_string());
        assert!(field("kind").ends_with("Echo"), "{fields:?}");
        assert!(field("message").ends_with("Ping"), "{fields:?}");
    }
    assert!(
        recorded.events.iter().any(|e| e == "actor started"),
        "{:?}",
        recorded.events
    );
    assert!(
        recorded.events.iter().any(|e| e == "actor run ended"),
        "{:?}",
        recorded.events
    );
}
