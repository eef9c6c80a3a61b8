//! Typed tokio actors with OTP supervision.
//!
//! * An [`Actor`] owns its state; it changes only in the handlers of the messages it
//!   accepts, one at a time, so it needs no lock. Each message type has its own
//!   [`Message`] handler with its own reply type: native `async fn`, polled in place (one
//!   allocation per message, for the envelope; none for the handler's future).
//! * An [`ActorRef`] sends: [`tell`](ActorRef::tell) waits for mailbox room (bounded by
//!   default: backpressure, not memory growth), [`try_tell`](ActorRef::try_tell),
//!   [`tell_timeout`](ActorRef::tell_timeout), [`ask`](ActorRef::ask) with a deadline
//!   (5 s by default). [`stop`](ActorRef::stop), [`kill`](ActorRef::kill) and
//!   supervision travel on a priority lane, so a full mailbox never blocks control.
//! * Delivery: a `tell` that returned `Ok` is handled, or — if the actor is killed or
//!   fails first — reported as a [`DeadLetter`]. A graceful stop handles everything
//!   queued. No ask waits past its deadline.
//! * [`SupervisorSpec`] builds OTP supervisors: one-for-one, one-for-all, rest-for-one;
//!   permanent, transient, temporary children; restart intensity with escalation;
//!   backoff; ordered start and reverse-order stop with a shutdown timeout, then a kill.
//! * Links and monitors ([`Context::link`], [`Context::monitor`]) deliver typed
//!   [`ExitReason`]s; a typed [`Registry`]; timers ([`Context::send_after`],
//!   [`Context::send_interval`]); [`Router`]s; per-actor [`ActorStats`]; `tracing` spans
//!   per message behind the `tracing` feature.
//!
//! # Examples
//!
//! ```
//! use flowbed_actor::{Actor, BoxError, Context, Message};
//!
//! struct Counter(u64);
//!
//! impl Actor for Counter {
//!     type Args = u64;
//!     async fn on_start(start: u64, _: &mut Context<Self>) -> Result<Self, BoxError> {
//!         Ok(Counter(start))
//!     }
//! }
//!
//! struct Add(u64);
//!
//! impl Message<Add> for Counter {
//!     type Reply = u64;
//!     async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
//!         self.0 += n;
//!         self.0
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let counter = Counter::spawn(0);
//!     counter.tell(Add(2)).await.unwrap();
//!     assert_eq!(counter.ask(Add(3)).await.unwrap(), 5);
//! }
//! ```

mod actor;
mod actor_ref;
mod cell;
mod context;
mod deadline;
mod envelope;
mod error;
mod exit;
mod handler_slot;
mod lifecycle;
mod registry;
mod router;
mod run;
mod signal;
mod spawn;
mod stats;
mod supervisor;
mod sync;
mod timer;

pub use actor::{Actor, BoxError, Message, PanicAction};
pub use actor_ref::{ActorRef, DEFAULT_ASK_TIMEOUT, WeakActorRef};
pub use context::Context;
pub use envelope::DeadLetter;
pub use error::{AskError, ConfigError, LookupError, RegisterError, SendError, StartChildError};
pub use exit::{ActorId, ExitKind, ExitReason, ExitSignal};
pub use registry::{Name, Registry};
pub use router::{Router, Routing};
pub use spawn::{Mailbox, Spawn};
pub use stats::ActorStats;
pub use supervisor::{
    Backoff, ChildInfo, ChildSpec, Children, GetChild, Restart, StartChild, Strategy, Supervisor,
    SupervisorSpec, TerminateChild,
};
pub use timer::TimerHandle;

/// The lifecycle's lock-free parts, exposed for the loom models only.
#[cfg(flowbed_loom)]
#[doc(hidden)]
pub mod loom_api {
    pub use crate::lifecycle::{Doorbell, ExitWatchers, KillSwitch, RefCount};
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
