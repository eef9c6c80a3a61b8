//! `Config`: every threshold and duration of a breaker, validated once when built.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{ConfigError, Outcome};

/// The largest count window: the window keeps one byte per call.
pub const MAX_COUNT_WINDOW: u32 = 1 << 20;
/// The most buckets a time window may have.
pub const MAX_TIME_BUCKETS: u32 = 4096;
/// The most probes `permitted_calls_in_half_open` may allow (they are counted in one
/// atomic word).
pub const MAX_HALF_OPEN_CALLS: u32 = 255;

/// Which calls the failure and slow-call rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls (resilience4j's `COUNT_BASED`): every new call pushes the
    /// oldest one out.
    Count(u32),
    /// The calls of the last `length` (resilience4j's `TIME_BASED`), kept in buckets of
    /// `bucket` width; a whole bucket leaves the window at once, so the window spans
    /// between `length - bucket` and `length`.
    Time {
        /// How far back the window reaches.
        length: Duration,
        /// The width of one bucket.
        bucket: Duration,
    },
}

/// How long the breaker stays `Open` before it lets probes through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitInOpen {
    /// The same wait every time.
    Fixed(Duration),
    /// `initial`, then `initial * multiplier^k` after the k-th failed half-open trial in
    /// a row, never longer than `max`. A successful trial (back to `Closed`) starts
    /// again from `initial`.
    Exponential {
        /// The first wait.
        initial: Duration,
        /// The growth factor, at least 1.
        multiplier: f64,
        /// The longest wait.
        max: Duration,
    },
}

impl WaitInOpen {
    /// The wait after `failed_trials` failed half-open trials in a row, in nanoseconds.
    pub(crate) fn nanos(&self, failed_trials: u32) -> u64 {
        match *self {
            WaitInOpen::Fixed(wait) => duration_nanos(wait),
            WaitInOpen::Exponential {
                initial,
                multiplier,
                max,
            } => {
                let grown = duration_nanos(initial) as f64
                    * multiplier.powi(failed_trials.min(i32::MAX as u32) as i32);
                let max = duration_nanos(max);
                if grown >= max as f64 {
                    max
                } else {
                    grown as u64
                }
            }
        }
    }

    /// The wait after `failed_trials` failed half-open trials in a row.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_circuitbreaker::WaitInOpen;
    ///
    /// let wait = WaitInOpen::Exponential {
    ///     initial: Duration::from_secs(1),
    ///     multiplier: 2.0,
    ///     max: Duration::from_secs(5),
    /// };
    /// assert_eq!(wait.after(0), Duration::from_secs(1));
    /// assert_eq!(wait.after(2), Duration::from_secs(4));
    /// assert_eq!(wait.after(3), Duration::from_secs(5));
    /// ```
    pub fn after(&self, failed_trials: u32) -> Duration {
        Duration::from_nanos(self.nanos(failed_trials))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let reason = match *self {
            WaitInOpen::Fixed(wait) if wait.is_zero() => "the wait must be longer than zero",
            WaitInOpen::Fixed(_) => return Ok(()),
            WaitInOpen::Exponential { initial, .. } if initial.is_zero() => {
                "the initial wait must be longer than zero"
            }
            WaitInOpen::Exponential { multiplier, .. }
                if !(multiplier.is_finite() && multiplier >= 1.0) =>
            {
                "the multiplier must be a finite number of at least 1"
            }
            WaitInOpen::Exponential { initial, max, .. } if max < initial => {
                "the cap must not be shorter than the initial wait"
            }
            WaitInOpen::Exponential { .. } => return Ok(()),
        };
        Err(ConfigError::WaitInOpen { reason })
    }
}

pub(crate) fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

type Classifier = Arc<dyn Fn(&dyn Any) -> Option<Outcome> + Send + Sync>;

/// Everything a [`CircuitBreaker`](crate::CircuitBreaker) decides by. Build it with
/// [`Config::builder`]; [`Config::default`] is resilience4j's default configuration
/// except that slow calls are not timed unless `slow_call_duration` is set.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `sliding_window` | `Count(100)` | which calls the rates cover |
/// | `failure_rate_threshold` | 50 % | open at this failure rate or above |
/// | `slow_call_duration` | off | a call at least this long is slow |
/// | `slow_call_rate_threshold` | 100 % (once timing is on) | open at this slow-call rate or above |
/// | `minimum_calls` | 100 | no rate is computed over fewer calls |
/// | `wait_in_open` | `Fixed(60 s)` | how long `Open` refuses calls |
/// | `permitted_calls_in_half_open` | 10 | the probes of one half-open trial |
/// | `max_wait_in_half_open` | forever | a trial that takes longer goes back to `Open` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_circuitbreaker::{Config, SlidingWindow, WaitInOpen};
///
/// let config = Config::builder()
///     .sliding_window(SlidingWindow::Count(20))
///     .minimum_calls(10)
///     .failure_rate_threshold(25.0)
///     .slow_call_duration(Duration::from_millis(200))
///     .slow_call_rate_threshold(50.0)
///     .wait_in_open(WaitInOpen::Exponential {
///         initial: Duration::from_secs(1),
///         multiplier: 2.0,
///         max: Duration::from_secs(30),
///     })
///     .permitted_calls_in_half_open(3)
///     .ignore_error_if(|e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound)
///     .build()?;
/// assert_eq!(config.minimum_calls(), 10);
/// # Ok::<(), flowbed_circuitbreaker::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) sliding_window: SlidingWindow,
    pub(crate) failure_rate_threshold: f32,
    pub(crate) slow_call_rate_threshold: f32,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) minimum_calls: u32,
    pub(crate) wait_in_open: WaitInOpen,
    pub(crate) permitted_calls_in_half_open: u32,
    pub(crate) max_wait_in_half_open: Option<Duration>,
    pub(crate) classifiers: Arc<[Classifier]>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sliding_window: SlidingWindow::Count(100),
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: None,
            minimum_calls: 100,
            wait_in_open: WaitInOpen::Fixed(Duration::from_secs(60)),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: None,
            classifiers: Arc::from(Vec::new()),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("sliding_window", &self.sliding_window)
            .field("failure_rate_threshold", &self.failure_rate_threshold)
            .field("slow_call_rate_threshold", &self.slow_call_rate_threshold)
            .field("slow_call_duration", &self.slow_call_duration)
            .field("minimum_calls", &self.minimum_calls)
            .field("wait_in_open", &self.wait_in_open)
            .field(
                "permitted_calls_in_half_open",
                &self.permitted_calls_in_half_open,
            )
            .field("max_wait_in_half_open", &self.max_wait_in_half_open)
            .field("error_classifiers", &self.classifiers.len())
            .finish()
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
            classifiers: Vec::new(),
            slow_rate_set: false,
        }
    }

    /// A builder starting from this configuration (to derive a variant of shared
    /// defaults).
    pub fn to_builder(&self) -> ConfigBuilder {
        ConfigBuilder {
            config: self.clone(),
            classifiers: self.classifiers.to_vec(),
            slow_rate_set: self.slow_call_duration.is_some(),
        }
    }

    /// Which calls the rates cover.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.sliding_window
    }

    /// The failure rate (percent) at or above which the breaker opens.
    pub fn failure_rate_threshold(&self) -> f32 {
        self.failure_rate_threshold
    }

    /// The slow-call rate (percent) at or above which the breaker opens, if calls are timed.
    pub fn slow_call_rate_threshold(&self) -> Option<f32> {
        self.slow_call_duration
            .map(|_| self.slow_call_rate_threshold)
    }

    /// How long a call must take to count as slow; `None` when calls are not timed.
    pub fn slow_call_duration(&self) -> Option<Duration> {
        self.slow_call_duration
    }

    /// The fewest calls a rate is computed over.
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    /// How long `Open` refuses calls.
    pub fn wait_in_open(&self) -> WaitInOpen {
        self.wait_in_open
    }

    /// The probes of one half-open trial.
    pub fn permitted_calls_in_half_open(&self) -> u32 {
        self.permitted_calls_in_half_open
    }

    /// How long a half-open trial may last before the breaker opens again.
    pub fn max_wait_in_half_open(&self) -> Option<Duration> {
        self.max_wait_in_half_open
    }

    /// How `result` counts: `Ok` is a success; an error goes to the classifiers
    /// registered for its type (a failure if none has an opinion).
    pub(crate) fn classify<T, E: Any>(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) if self.classifiers.is_empty() => Outcome::Failure,
            Err(error) => self
                .classifiers
                .iter()
                .find_map(|classify| classify(error))
                .unwrap_or(Outcome::Failure),
        }
    }

    #[cfg(feature = "tower")]
    pub(crate) fn has_error_classifiers(&self) -> bool {
        !self.classifiers.is_empty()
    }
}

/// Builds a [`Config`]; [`build`](ConfigBuilder::build) checks every setting.
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    classifiers: Vec<Classifier>,
    slow_rate_set: bool,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// Which calls the rates cover (default: the last 100 calls).
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// Shorthand for `sliding_window(SlidingWindow::Count(calls))`.
    pub fn count_window(self, calls: u32) -> Self {
        self.sliding_window(SlidingWindow::Count(calls))
    }

    /// Shorthand for `sliding_window(SlidingWindow::Time { length, bucket })`.
    pub fn time_window(self, length: Duration, bucket: Duration) -> Self {
        self.sliding_window(SlidingWindow::Time { length, bucket })
    }

    /// Open when at least this percentage of the window's calls failed (default 50).
    pub fn failure_rate_threshold(mut self, percent: f32) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Time every call and count one that takes at least `duration` as slow (default:
    /// calls are not timed).
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.config.slow_call_duration = Some(duration);
        self
    }

    /// Open when at least this percentage of the window's calls were slow (default 100
    /// once `slow_call_duration` is set; setting it without a duration is an error).
    pub fn slow_call_rate_threshold(mut self, percent: f32) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self.slow_rate_set = true;
        self
    }

    /// Compute no rate over fewer calls than this (default 100; a count window smaller
    /// than this needs only to be full).
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// How long `Open` refuses calls before letting probes through (default 60 s fixed).
    pub fn wait_in_open(mut self, wait: WaitInOpen) -> Self {
        self.config.wait_in_open = wait;
        self
    }

    /// How many probes one half-open trial lets through (default 10); their rates decide
    /// between `Closed` and `Open`.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// Give a half-open trial at most this long; then the breaker opens again (default:
    /// wait for the probes forever).
    pub fn max_wait_in_half_open(mut self, wait: Duration) -> Self {
        self.config.max_wait_in_half_open = Some(wait);
        self
    }

    /// Decide how errors of type `E` count; `None` leaves the decision to later
    /// classifiers (and finally: failure). Classifiers apply to
    /// [`call`](crate::CircuitBreaker::call), [`call_async`](crate::CircuitBreaker::call_async)
    /// and the tower layer's default classification.
    pub fn classify_error<E: Any>(
        mut self,
        classify: impl Fn(&E) -> Option<Outcome> + Send + Sync + 'static,
    ) -> Self {
        self.classifiers.push(Arc::new(move |error: &dyn Any| {
            error.downcast_ref::<E>().and_then(&classify)
        }));
        self
    }

    /// Errors of type `E` for which `ignore` holds count neither as success nor as
    /// failure (resilience4j's `ignoreExceptions`).
    pub fn ignore_error_if<E: Any>(
        self,
        ignore: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.classify_error(move |e: &E| ignore(e).then_some(Outcome::Ignored))
    }

    /// Errors of type `E` count as failures only if `record` holds; the others count as
    /// successes (resilience4j's `recordException` predicate).
    pub fn record_error_if<E: Any>(
        self,
        record: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.classify_error(move |e: &E| {
            Some(if record(e) {
                Outcome::Failure
            } else {
                Outcome::Success
            })
        })
    }

    /// Checks every setting and returns the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that is out of range or contradicts
    /// another.
    pub fn build(self) -> Result<Config, ConfigError> {
        let mut config = self.config;
        let percent = |value: f32| value > 0.0 && value <= 100.0;
        if !percent(config.failure_rate_threshold) {
            return Err(ConfigError::FailureRateThreshold {
                value: config.failure_rate_threshold,
            });
        }
        if !percent(config.slow_call_rate_threshold) {
            return Err(ConfigError::SlowCallRateThreshold {
                value: config.slow_call_rate_threshold,
            });
        }
        match config.slow_call_duration {
            None if self.slow_rate_set => return Err(ConfigError::SlowCallDurationMissing),
            Some(duration) if duration.is_zero() => return Err(ConfigError::SlowCallDuration),
            _ => {}
        }
        match config.sliding_window {
            SlidingWindow::Count(value) if value == 0 || value > MAX_COUNT_WINDOW => {
                return Err(ConfigError::CountWindow {
                    value,
                    max: MAX_COUNT_WINDOW,
                });
            }
            SlidingWindow::Time { length, bucket } => {
                let bucket_nanos = bucket.as_nanos();
                let whole = bucket_nanos >= 1_000
                    && length.as_nanos() % bucket_nanos == 0
                    && (1..=u128::from(MAX_TIME_BUCKETS))
                        .contains(&(length.as_nanos() / bucket_nanos));
                if !whole {
                    return Err(ConfigError::TimeWindow {
                        length,
                        bucket,
                        max_buckets: MAX_TIME_BUCKETS,
                    });
                }
            }
            SlidingWindow::Count(_) => {}
        }
        if config.minimum_calls == 0 {
            return Err(ConfigError::MinimumCalls);
        }
        if config.permitted_calls_in_half_open == 0
            || config.permitted_calls_in_half_open > MAX_HALF_OPEN_CALLS
        {
            return Err(ConfigError::PermittedCallsInHalfOpen {
                value: config.permitted_calls_in_half_open,
                max: MAX_HALF_OPEN_CALLS,
            });
        }
        config.wait_in_open.validate()?;
        if config.max_wait_in_half_open.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::MaxWaitInHalfOpen);
        }
        config.classifiers = Arc::from(self.classifiers);
        Ok(config)
    }
}
