//! `ConcurrencyLimit`: a cap on operations in flight, with RAII permits.

// `Arc` is std's: tokio's owned permits need `Arc<Semaphore>`.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::error::AcquireError;
use crate::sync::{AtomicUsize, Mutex, Ordering, lock};

/// A cap on how many operations run at once (in-flight requests to a database, parallel
/// uploads), where a rate limit caps how many start per second.
///
/// [`acquire`](Self::acquire) waits without blocking a thread, first come first served;
/// [`try_acquire`](Self::try_acquire) never waits. Either returns a [`Permit`] that frees
/// its slot when dropped, so an early return, an error or a panic cannot leak it, and a
/// cancelled `acquire` holds nothing. The limit can be raised or lowered while permits are
/// out ([`set_limit`](Self::set_limit)). Clones share the same limit.
///
/// Built on `tokio::sync::Semaphore`, whose FIFO queue and cancellation safety are what
/// this needs; this type adds the resizable limit, in-flight counts and typed errors.
///
/// # Examples
///
/// ```
/// use flowbed_ratelimit::ConcurrencyLimit;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limit = ConcurrencyLimit::new(2);
/// let a = limit.acquire().await.unwrap();
/// let _b = limit.acquire().await.unwrap();
/// assert!(limit.try_acquire().is_err()); // two in flight already
/// drop(a);
/// assert!(limit.try_acquire().is_ok());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit {
    semaphore: Arc<Semaphore>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: AtomicUsize,
    in_flight: AtomicUsize,
    /// Permits to retire as they come back, after the limit was lowered below the number
    /// in flight.
    to_retire: AtomicUsize,
    resize: Mutex<()>,
}

/// One slot of a [`ConcurrencyLimit`]; the slot is freed when this is dropped.
#[derive(Debug)]
#[must_use = "dropping a permit frees its slot at once"]
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
}

impl ConcurrencyLimit {
    /// The largest limit (tokio's semaphore maximum, about 2^61).
    pub const MAX_LIMIT: usize = Semaphore::MAX_PERMITS;

    /// At most `limit` permits out at once (clamped to [`MAX_LIMIT`](Self::MAX_LIMIT);
    /// zero admits nothing until raised).
    pub fn new(limit: usize) -> Self {
        let limit = limit.min(Self::MAX_LIMIT);
        Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            shared: Arc::new(Shared {
                limit: AtomicUsize::new(limit),
                in_flight: AtomicUsize::new(0),
                to_retire: AtomicUsize::new(0),
                resize: Mutex::new(()),
            }),
        }
    }

    /// Waits for a free slot, first come first served. Dropping the future gives up its
    /// place in the queue and holds nothing.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Closed`] if the limit is (or gets) closed.
    pub async fn acquire(&self) -> Result<Permit, AcquireError> {
        let permit = Arc::clone(&self.semaphore)
            .acquire_owned()
            .await
            .map_err(|_| AcquireError::Closed)?;
        Ok(self.permit(permit))
    }

    /// [`acquire`](Self::acquire), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`AcquireError::NoPermits`] after the timeout, [`AcquireError::Closed`] if closed.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Permit, AcquireError> {
        tokio::time::timeout(timeout, self.acquire())
            .await
            .unwrap_or(Err(AcquireError::NoPermits))
    }

    /// Takes a free slot if there is one, without waiting (and without overtaking
    /// waiters: while anyone waits, there is no free slot).
    ///
    /// # Errors
    ///
    /// [`AcquireError::NoPermits`] if every slot is taken, [`AcquireError::Closed`] if
    /// closed.
    pub fn try_acquire(&self) -> Result<Permit, AcquireError> {
        match Arc::clone(&self.semaphore).try_acquire_owned() {
            Ok(permit) => Ok(self.permit(permit)),
            Err(TryAcquireError::NoPermits) => Err(AcquireError::NoPermits),
            Err(TryAcquireError::Closed) => Err(AcquireError::Closed),
        }
    }

    /// Changes the limit. Raising it lets waiters in at once; lowering it below the
    /// number in flight retires permits as they come back, so no operation is cut short.
    pub fn set_limit(&self, limit: usize) {
        let limit = limit.min(Self::MAX_LIMIT);
        let _resize = lock(&self.shared.resize);
        let old = self.shared.limit.swap(limit, Ordering::AcqRel);
        if limit > old {
            let mut grow = limit - old;
            // Cancel pending retirements first: those permits simply stay.
            let retired = self
                .shared
                .to_retire
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                    Some(r - r.min(grow))
                })
                .unwrap_or(0);
            grow -= retired.min(grow);
            self.semaphore.add_permits(grow);
        } else {
            let shrink = old - limit;
            let forgotten = self.semaphore.forget_permits(shrink);
            self.shared
                .to_retire
                .fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.shared.limit.load(Ordering::Acquire)
    }

    /// Permits out now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Free slots now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Closes the limit: waiters and later acquires fail with
    /// [`AcquireError::Closed`]; permits already out stay valid.
    pub fn close(&self) {
        self.semaphore.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.semaphore.is_closed()
    }

    fn permit(&self, permit: OwnedSemaphorePermit) -> Permit {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Permit {
            permit: Some(permit),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        let retire = self
            .shared
            .to_retire
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1))
            .is_ok();
        if let Some(permit) = self.permit.take() {
            if retire {
                permit.forget();
            }
        }
    }
}
