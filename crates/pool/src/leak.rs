//! Leak detection: connections held longer than a threshold are reported with the call
//! site that took them. Off by default, and then it costs one branch per checkout.

use std::collections::HashMap;
use std::panic::Location;
use std::time::Duration;

use crate::sync::{Mutex, lock};

/// A connection held past the leak-detection threshold, given to the callback set with
/// [`Builder::leak_detection`](crate::Builder::leak_detection). Each checkout is reported
/// at most once.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use flowbed_pool::{Manager, Pool};
/// # struct M;
/// # impl Manager for M { type Connection = (); type Error = std::convert::Infallible;
/// #     async fn create(&self) -> Result<(), Self::Error> { Ok(()) } }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let reports = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&reports);
/// let pool = Pool::builder(M)
///     .clock(flowbed_pool::TokioClock::new()) // follows the paused tokio time
///     .leak_detection(Duration::from_secs(10), move |report| {
///         sink.lock().unwrap().push(report.location.line());
///     })
///     .build()
///     .unwrap();
/// let held = pool.get().await.unwrap(); // this line is reported
/// let line = line!() - 1;
/// tokio::time::sleep(Duration::from_secs(20)).await;
/// assert_eq!(*reports.lock().unwrap(), vec![line]);
/// drop(held);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LeakReport {
    /// The connection's id (see [`ConnectionInfo::id`](crate::ConnectionInfo::id)).
    pub id: u64,
    /// How long it has been held.
    pub held_for: Duration,
    /// Where it was taken: the call of `get`, `get_timeout`, `try_get` or `get_blocking`.
    pub location: &'static Location<'static>,
}

#[derive(Debug)]
struct Held {
    since: u64,
    location: &'static Location<'static>,
    reported: bool,
}

/// The connections out, by id.
#[derive(Debug, Default)]
pub(crate) struct LeakTracker {
    held: Mutex<HashMap<u64, Held>>,
}

impl LeakTracker {
    pub(crate) fn checked_out(&self, id: u64, now: u64, location: &'static Location<'static>) {
        lock(&self.held).insert(
            id,
            Held {
                since: now,
                location,
                reported: false,
            },
        );
    }

    pub(crate) fn returned(&self, id: u64) {
        lock(&self.held).remove(&id);
    }

    /// Reports (once each) the connections held at least `threshold` at `now`.
    pub(crate) fn overdue(&self, now: u64, threshold: Duration) -> Vec<LeakReport> {
        let threshold = crate::conn::nanos(threshold);
        let mut held = lock(&self.held);
        held.iter_mut()
            .filter(|(_, held)| !held.reported && now.saturating_sub(held.since) >= threshold)
            .map(|(&id, held)| {
                held.reported = true;
                LeakReport {
                    id,
                    held_for: Duration::from_nanos(now - held.since),
                    location: held.location,
                }
            })
            .collect()
    }
}
