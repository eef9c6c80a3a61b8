//! Upcasting on every read path: a v1 → v2 → v3 chain and an event-type rename, applied by
//! `Repository::load` and by `Upcasters::decode` on a `Subscription`; the errors a broken
//! chain gives (a failing upcaster named in `DecodeError::Upcast`, a loop that ends in an
//! error instead of hanging, a schema version from the future); events already at the
//! current version decode the same with or without a chain.
//!
//! The event's history:
//! * v1 `ItemAdded {"item": "kettle"}` (one of it, price unknown);
//! * v2 `ItemAdded {"sku": "kettle", "quantity": 2}`;
//! * v3 `ItemAdded {"sku": "kettle", "quantity": 2, "price_cents": 1999}` (current);
//! * and an older name: v1 `ProductPicked {"product": "mug", "qty": 3}` became v2 `ItemAdded`.

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{
    Aggregate, CommandError, DecodeError, DomainEvent, EventData, EventStore, ExpectedVersion,
    FnUpcaster, Position, RawEvent, Repository, Subscription, Upcaster, Upcasters,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ItemAdded {
    sku: String,
    quantity: u32,
    price_cents: u64,
}

impl DomainEvent for ItemAdded {
    fn event_type(&self) -> &'static str {
        "ItemAdded"
    }
    const SCHEMA_VERSION: u32 = 3;
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cart {
    items: Vec<ItemAdded>,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Cart {
    const TYPE: &'static str = "cart";
    type Command = ItemAdded;
    type Event = ItemAdded;
    type Error = Never;

    fn handle(&self, item: ItemAdded) -> Result<Vec<ItemAdded>, Never> {
        Ok(vec![item])
    }

    fn apply(&mut self, event: &ItemAdded) {
        self.items.push(event.clone());
    }
}

fn item(sku: &str, quantity: u32, price_cents: u64) -> ItemAdded {
    ItemAdded {
        sku: sku.into(),
        quantity,
        price_cents,
    }
}

/// A stored event of any type, schema version and payload.
fn raw(event_type: &str, schema_version: u32, payload: serde_json::Value) -> EventData {
    EventData::new(event_type, serde_json::to_vec(&payload).unwrap())
        .with_schema_version(schema_version)
}

/// v1 → v2: `item` becomes `sku`, quantity 1.
fn v1_to_v2() -> impl Upcaster {
    FnUpcaster::new("ItemAdded", 1, |payload| {
        let sku = payload["item"].as_str().ok_or("no item field")?.to_owned();
        Ok(json!({ "sku": sku, "quantity": 1 }))
    })
}

/// v2 → v3: price unknown, 0.
fn v2_to_v3() -> impl Upcaster {
    FnUpcaster::new("ItemAdded", 2, |mut payload| {
        payload["price_cents"] = json!(0);
        Ok(payload)
    })
}

/// `ProductPicked` v1 → `ItemAdded` v2.
#[derive(Debug)]
struct RenameProductPicked;

impl Upcaster for RenameProductPicked {
    fn name(&self) -> &str {
        "ProductPicked -> ItemAdded"
    }

    fn applies_to(&self, event_type: &str, schema_version: u32) -> bool {
        event_type == "ProductPicked" && schema_version == 1
    }

    fn upcast(&self, event: RawEvent) -> Result<RawEvent, String> {
        Ok(RawEvent {
            event_type: "ItemAdded".into(),
            schema_version: 2,
            payload: json!({ "sku": event.payload["product"], "quantity": event.payload["qty"] }),
        })
    }
}

fn chain() -> Upcasters {
    Upcasters::new()
        .with(v1_to_v2())
        .with(v2_to_v3())
        .with(RenameProductPicked)
}

/// One event of every vintage, and what each decodes to.
fn history() -> (Vec<EventData>, Vec<ItemAdded>) {
    let stored = vec![
        raw("ItemAdded", 1, json!({ "item": "kettle" })),
        raw("ItemAdded", 2, json!({ "sku": "toaster", "quantity": 2 })),
        raw("ProductPicked", 1, json!({ "product": "mug", "qty": 3 })),
        EventData::from_event(&item("tea", 4, 1999)).unwrap(),
    ];
    let current = vec![
        item("kettle", 1, 0),
        item("toaster", 2, 0),
        item("mug", 3, 0),
        item("tea", 4, 1999),
    ];
    (stored, current)
}

#[tokio::test]
async fn repository_load_upcasts_every_vintage() {
    let store = MemoryStore::new();
    let (stored, current) = history();
    store
        .append("cart-1", ExpectedVersion::NoStream, stored)
        .await
        .unwrap();

    // The chain one upcaster at a time, or as a shared chain: the same result.
    let one_by_one = Repository::<Cart, _>::new(store.clone())
        .upcaster(v1_to_v2())
        .upcaster(v2_to_v3())
        .upcaster(RenameProductPicked);
    let shared = Repository::<Cart, _>::new(store.clone()).upcasters(chain());
    let mut expected = current;
    for repository in [one_by_one, shared] {
        let loaded = repository.load("1").await.unwrap();
        assert_eq!(
            (loaded.state.items.clone(), loaded.version),
            (expected.clone(), expected.len() as u64)
        );

        // Commands run on the upcast state and write the current version.
        let executed = repository.execute("1", item("cup", 1, 350)).await.unwrap();
        expected.push(item("cup", 1, 350));
        assert_eq!(executed.loaded.state.items, expected);
    }
    let newest = store
        .read_stream(
            "cart-1",
            u64::MAX,
            flowbed_eventsourcing::Direction::Backward,
            1,
        )
        .await
        .unwrap();
    assert_eq!(newest[0].schema_version, 3);
}

#[tokio::test]
async fn subscription_events_decode_through_the_chain() {
    let store = MemoryStore::new();
    let (stored, current) = history();
    for event in stored {
        store
            .append("cart-9", ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    let upcasters = chain();
    let mut subscription = Subscription::all(store.clone(), Position::START).batch_size(3);
    let mut decoded = Vec::new();
    for _ in 0..current.len() {
        let event = subscription.next().await.unwrap();
        decoded.push(upcasters.decode::<ItemAdded>(&event).unwrap());
    }
    assert_eq!(decoded, current);

    // The stored events keep their original type and schema version.
    let events = store.read_all(Position::START, 10).await.unwrap();
    let vintages: Vec<(&str, u32)> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.schema_version))
        .collect();
    assert_eq!(
        vintages,
        vec![
            ("ItemAdded", 1),
            ("ItemAdded", 2),
            ("ProductPicked", 1),
            ("ItemAdded", 3)
        ]
    );
}

#[test]
fn a_failing_upcaster_is_named_in_the_error() {
    let upcasters = chain();
    let error = upcasters
        .decode_parts::<ItemAdded>("ItemAdded", 1, br#"{"name":"kettle"}"#, 17)
        .unwrap_err();
    match error {
        DecodeError::Upcast {
            upcaster,
            event_type,
            schema_version,
            reason,
        } => {
            assert_eq!(upcaster, "ItemAdded v1 -> v2");
            assert_eq!((event_type.as_str(), schema_version), ("ItemAdded", 1));
            assert_eq!(reason, "no item field");
        }
        other => panic!("expected DecodeError::Upcast, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failing_upcaster_fails_the_load() {
    let store = MemoryStore::new();
    store
        .append(
            "cart-1",
            ExpectedVersion::NoStream,
            vec![raw("ItemAdded", 1, json!({ "name": "kettle" }))],
        )
        .await
        .unwrap();
    let repository = Repository::<Cart, _>::new(store.clone()).upcasters(chain());
    let error = repository.load("1").await.unwrap_err();
    assert!(
        matches!(
            &error,
            CommandError::Decode(DecodeError::Upcast { upcaster, .. }) if upcaster == "ItemAdded v1 -> v2"
        ),
        "{error:?}"
    );
    // And a command on it writes nothing.
    assert!(repository.execute("1", item("x", 1, 1)).await.is_err());
    assert_eq!(store.head().await.unwrap(), Position(1));
}

/// Maps one (type, version) to another without raising the version: two of them loop.
#[derive(Debug)]
struct Relabel {
    name: String,
    from: &'static str,
    to: &'static str,
}

impl Upcaster for Relabel {
    fn name(&self) -> &str {
        &self.name
    }

    fn applies_to(&self, event_type: &str, schema_version: u32) -> bool {
        event_type == self.from && schema_version == 1
    }

    fn upcast(&self, mut event: RawEvent) -> Result<RawEvent, String> {
        event.event_type = self.to.into();
        Ok(event)
    }
}

#[test]
fn a_looping_chain_is_an_error_not_a_hang() {
    let looping = Upcasters::new()
        .with(Relabel {
            name: "A -> B".into(),
            from: "A",
            to: "B",
        })
        .with(Relabel {
            name: "B -> A".into(),
            from: "B",
            to: "A",
        });
    let error = looping
        .decode_parts::<ItemAdded>("A", 1, br#"{}"#, 1)
        .unwrap_err();
    assert!(
        matches!(&error, DecodeError::Upcast { reason, .. } if reason.contains("loop")),
        "{error:?}"
    );
    // An upcaster that maps an event onto itself loops too.
    let stuck = Upcasters::new().with(Relabel {
        name: "A -> A".into(),
        from: "A",
        to: "A",
    });
    assert!(matches!(
        stuck.decode_parts::<ItemAdded>("A", 1, br#"{}"#, 1),
        Err(DecodeError::Upcast { .. })
    ));
}

#[tokio::test]
async fn a_schema_version_from_the_future_is_refused() {
    let payload = serde_json::to_vec(&item("kettle", 1, 1)).unwrap();
    for upcasters in [Upcasters::new(), chain()] {
        let error = upcasters
            .decode_parts::<ItemAdded>("ItemAdded", 4, &payload, 1)
            .unwrap_err();
        assert!(
            matches!(
                &error,
                DecodeError::FromTheFuture { event_type, schema_version: 4, known: 3 } if event_type == "ItemAdded"
            ),
            "{error:?}"
        );
    }
    // An upcaster that overshoots the current version is caught the same way.
    let overshoot = Upcasters::new().with(FnUpcaster::new("ItemAdded", 3, Ok));
    assert!(matches!(
        overshoot.decode_parts::<ItemAdded>("ItemAdded", 3, &payload, 1),
        Err(DecodeError::FromTheFuture {
            schema_version: 4,
            ..
        })
    ));

    let store = MemoryStore::new();
    store
        .append(
            "cart-1",
            ExpectedVersion::NoStream,
            vec![EventData::new("ItemAdded", payload).with_schema_version(4)],
        )
        .await
        .unwrap();
    let error = Repository::<Cart, _>::new(store)
        .upcasters(chain())
        .load("1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CommandError::Decode(DecodeError::FromTheFuture { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn current_events_decode_the_same_with_or_without_a_chain() {
    let current = item("tea", 4, 1999);
    let payload = serde_json::to_vec(&current).unwrap();
    let plain: ItemAdded = Upcasters::new()
        .decode_parts("ItemAdded", 3, &payload, 1)
        .unwrap();
    let chained: ItemAdded = chain().decode_parts("ItemAdded", 3, &payload, 1).unwrap();
    assert_eq!(plain, current);
    assert_eq!(chained, current);
    // An event of a type no upcaster knows, at the current version, also decodes as is.
    let other: ItemAdded = chain().decode_parts("Unrelated", 3, &payload, 1).unwrap();
    assert_eq!(other, current);
}

#[test]
fn a_payload_that_does_not_fit_is_a_payload_error_with_its_position() {
    for upcasters in [Upcasters::new(), chain()] {
        let error = upcasters
            .decode_parts::<ItemAdded>("ItemAdded", 3, br#"{"sku":1}"#, 42)
            .unwrap_err();
        assert!(
            matches!(
                &error,
                DecodeError::Payload { event_type, schema_version: 3, position: 42, .. } if event_type == "ItemAdded"
            ),
            "{error:?}"
        );
    }
    // After upcasting, the error names the version it reached.
    let error = chain()
        .decode_parts::<ItemAdded>("ItemAdded", 2, br#"{"sku":"x"}"#, 7)
        .unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::Payload {
                schema_version: 3,
                position: 7,
                ..
            }
        ),
        "{error:?}"
    );
}
