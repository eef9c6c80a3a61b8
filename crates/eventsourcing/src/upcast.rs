//! Schema evolution: [`Upcaster`]s turn an event stored with an old payload shape into the
//! current one while it is read, so stored events never need rewriting.
//!
//! [`Upcasters`] is the chain a [`Repository`](crate::Repository) (and anyone decoding
//! events, e.g. a projection on a [`Subscription`](crate::Subscription)) runs on every event
//! it decodes: while some upcaster applies to the event's type and schema version, it is
//! applied; then the payload is deserialized into the current event type. Events already
//! at the current version skip the JSON tree entirely.

use std::fmt;
use std::sync::Arc;

use crate::error::DecodeError;
use crate::event::{DomainEvent, RecordedEvent};

/// An event in flight through the upcaster chain.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// The type name (an upcaster may rename it).
    pub event_type: String,
    /// The payload's schema version (an upcaster raises it).
    pub schema_version: u32,
    /// The payload.
    pub payload: serde_json::Value,
}

/// Migrates one old event shape to a newer one.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{FnUpcaster, RawEvent, Upcaster};
/// use serde_json::json;
///
/// // v1 stored `amount` in dollars as a float; v2 stores integer cents.
/// let to_cents = FnUpcaster::new("Deposited", 1, |mut payload| {
///     let dollars = payload["amount"].as_f64().ok_or("amount is not a number")?;
///     payload["amount"] = json!((dollars * 100.0).round() as u64);
///     Ok(payload)
/// });
/// let old = RawEvent { event_type: "Deposited".into(), schema_version: 1, payload: json!({"amount": 1.5}) };
/// assert!(to_cents.applies_to(&old.event_type, old.schema_version));
/// let new = to_cents.upcast(old).unwrap();
/// assert_eq!((new.schema_version, new.payload), (2, json!({"amount": 150})));
/// ```
pub trait Upcaster: Send + Sync + 'static {
    /// A name for error messages.
    fn name(&self) -> &str;

    /// Whether this upcaster migrates events of this type at this schema version.
    fn applies_to(&self, event_type: &str, schema_version: u32) -> bool;

    /// Migrates the event; the result must have a higher schema version (or another type).
    ///
    /// # Errors
    ///
    /// A reason the event cannot be migrated.
    fn upcast(&self, event: RawEvent) -> Result<RawEvent, String>;
}

/// An [`Upcaster`] from a closure over the payload: migrates `event_type` at
/// `from_version` to `from_version + 1`.
pub struct FnUpcaster<F> {
    name: String,
    event_type: String,
    from_version: u32,
    migrate: F,
}

impl<F> FnUpcaster<F>
where
    F: Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
{
    /// Migrates `event_type` payloads at `from_version` with `migrate`.
    pub fn new(event_type: &str, from_version: u32, migrate: F) -> FnUpcaster<F>
    where
        F: Fn(serde_json::Value) -> Result<serde_json::Value, String>,
    {
        FnUpcaster {
            name: format!("{event_type} v{from_version} -> v{}", from_version + 1),
            event_type: event_type.to_owned(),
            from_version,
            migrate,
        }
    }
}

impl<F> fmt::Debug for FnUpcaster<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnUpcaster")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> Upcaster for FnUpcaster<F>
where
    F: Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn applies_to(&self, event_type: &str, schema_version: u32) -> bool {
        event_type == self.event_type && schema_version == self.from_version
    }

    fn upcast(&self, event: RawEvent) -> Result<RawEvent, String> {
        Ok(RawEvent {
            event_type: event.event_type,
            schema_version: self.from_version + 1,
            payload: (self.migrate)(event.payload)?,
        })
    }
}

/// The chain of upcasters events are decoded through. Cheap to clone.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{DomainEvent, FnUpcaster, Upcasters};
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Renamed { full_name: String }
/// impl DomainEvent for Renamed {
///     fn event_type(&self) -> &'static str { "Renamed" }
///     const SCHEMA_VERSION: u32 = 2;
/// }
///
/// let upcasters = Upcasters::new().with(FnUpcaster::new("Renamed", 1, |payload| {
///     Ok(json!({ "full_name": payload["name"] }))
/// }));
/// let event: Renamed = upcasters.decode_parts("Renamed", 1, br#"{"name":"Ada"}"#, 0).unwrap();
/// assert_eq!(event, Renamed { full_name: "Ada".into() });
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    chain: Arc<Vec<Arc<dyn Upcaster>>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.chain.iter().map(|upcaster| upcaster.name()))
            .finish()
    }
}

/// More steps than this means the upcasters loop (one maps back to a version another
/// migrates from).
const MAX_STEPS: usize = 256;

impl Upcasters {
    /// No upcasters: events decode as stored.
    pub fn new() -> Upcasters {
        Upcasters::default()
    }

    /// Adds an upcaster to the chain.
    pub fn with(mut self, upcaster: impl Upcaster) -> Upcasters {
        Arc::make_mut(&mut self.chain).push(Arc::new(upcaster));
        self
    }

    /// True when the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// Decodes a recorded event into the current event type, upcasting on the way.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Upcast`] (an upcaster failed or they loop),
    /// [`DecodeError::FromTheFuture`] (schema version newer than `E::SCHEMA_VERSION`),
    /// [`DecodeError::Payload`] (the result does not deserialize).
    pub fn decode<E: DomainEvent>(&self, event: &RecordedEvent) -> Result<E, DecodeError> {
        self.decode_parts(
            &event.event_type,
            event.schema_version,
            &event.payload,
            event.position.0,
        )
    }

    /// [`decode`](Upcasters::decode) from the stored parts (`position` is only for errors).
    ///
    /// # Errors
    ///
    /// As [`decode`](Upcasters::decode).
    pub fn decode_parts<E: DomainEvent>(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
        position: u64,
    ) -> Result<E, DecodeError> {
        let payload_error = |event_type: &str, schema_version, source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            schema_version,
            position,
            source,
        };
        if !self
            .chain
            .iter()
            .any(|u| u.applies_to(event_type, schema_version))
        {
            check_not_future::<E>(event_type, schema_version)?;
            return serde_json::from_slice(payload)
                .map_err(|source| payload_error(event_type, schema_version, source));
        }
        let mut raw = RawEvent {
            event_type: event_type.to_owned(),
            schema_version,
            payload: serde_json::from_slice(payload)
                .map_err(|source| payload_error(event_type, schema_version, source))?,
        };
        for _ in 0..MAX_STEPS {
            let Some(upcaster) = self
                .chain
                .iter()
                .find(|u| u.applies_to(&raw.event_type, raw.schema_version))
            else {
                check_not_future::<E>(&raw.event_type, raw.schema_version)?;
                let (event_type, schema_version) = (raw.event_type, raw.schema_version);
                return serde_json::from_value(raw.payload)
                    .map_err(|source| payload_error(&event_type, schema_version, source));
            };
            let (event_type, schema_version) = (raw.event_type.clone(), raw.schema_version);
            raw = upcaster.upcast(raw).map_err(|reason| DecodeError::Upcast {
                upcaster: upcaster.name().to_owned(),
                event_type,
                schema_version,
                reason,
            })?;
        }
        Err(DecodeError::Upcast {
            upcaster: "(chain)".to_owned(),
            event_type: raw.event_type,
            schema_version: raw.schema_version,
            reason: format!("more than {MAX_STEPS} upcasting steps: the upcasters loop"),
        })
    }
}

fn check_not_future<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
) -> Result<(), DecodeError> {
    if schema_version > E::SCHEMA_VERSION {
        Err(DecodeError::FromTheFuture {
            event_type: event_type.to_owned(),
            schema_version,
            known: E::SCHEMA_VERSION,
        })
    } else {
        Ok(())
    }
}
