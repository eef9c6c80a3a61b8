//! `Classify`: how a [`CircuitBreakerService`](super::CircuitBreakerService) counts a
//! finished call, and [`ConfigClassifier`], the default.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::{Config, Outcome};

/// Decides how a finished call counts in the breaker: [`Outcome::Success`],
/// [`Outcome::Failure`] or [`Outcome::Ignored`], from the inner service's result.
///
/// Implemented by every `Fn(&Result<T, E>) -> Outcome` and by [`ConfigClassifier`] (the
/// default: `Ok` is a success, an error is what the breaker's
/// [`Config`] error classifiers say). A classifier sees the whole result, so an `Ok` can
/// count as a failure too: the usual case is an HTTP client whose `Ok(response)` carries
/// a `5xx` status.
///
/// Set it with [`CircuitBreakerLayer::classify`](super::CircuitBreakerLayer::classify). It
/// runs once per permitted call, when the inner service's future completes; it must be
/// `Clone` (each call's future holds a copy, which for a closure without captures, or
/// with only `Copy` ones, costs nothing).
///
/// # Examples
///
/// An HTTP-style classifier: a `5xx` is a failure even though the call returned `Ok`; a
/// `4xx` is the caller's fault and says nothing about the downstream's health.
///
/// ```
/// use flowbed_circuitbreaker::Outcome;
/// use flowbed_circuitbreaker::tower::Classify;
///
/// struct Response { status: u16 }
///
/// let by_status = |result: &Result<Response, std::io::Error>| match result {
///     Ok(response) if response.status >= 500 => Outcome::Failure,
///     Ok(response) if response.status >= 400 => Outcome::Ignored,
///     Ok(_) => Outcome::Success,
///     Err(_) => Outcome::Failure,
/// };
/// assert_eq!(by_status.classify(&Ok(Response { status: 503 })), Outcome::Failure);
/// assert_eq!(by_status.classify(&Ok(Response { status: 404 })), Outcome::Ignored);
/// assert_eq!(by_status.classify(&Ok(Response { status: 200 })), Outcome::Success);
/// ```
pub trait Classify<T, E> {
    /// How the call that produced `result` counts.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default [`Classify`]: `Ok` is a success, and an error counts as the breaker's
/// [`Config`] says: the error classifiers registered with
/// [`classify_error`](crate::ConfigBuilder::classify_error),
/// [`ignore_error_if`](crate::ConfigBuilder::ignore_error_if) and
/// [`record_error_if`](crate::ConfigBuilder::record_error_if) for its type, and a failure
/// when none has an opinion. The same rule as
/// [`CircuitBreaker::classify`](crate::CircuitBreaker::classify) and
/// [`CircuitBreaker::call`](crate::CircuitBreaker::call).
///
/// The config classifiers look errors up by type, so the inner service's error type must
/// be `'static` (an owned error, or a `Box<dyn Error + Send + Sync>`); use a closure
/// classifier for a borrowed one.
///
/// A [`CircuitBreakerLayer`](super::CircuitBreakerLayer) makes one from its breaker's
/// config; make your own with [`ConfigClassifier::new`] to fall back on it from a closure
/// classifier (see the example). Cloning it is free when the config has no error
/// classifiers and one reference count otherwise.
///
/// # Examples
///
/// Count `Ok` responses with a `5xx` status as failures, and leave errors to the config
/// (which here ignores `NotFound`):
///
/// ```
/// use std::io;
/// use flowbed_circuitbreaker::tower::{Classify, ConfigClassifier};
/// use flowbed_circuitbreaker::{Config, Outcome};
///
/// let config = Config::builder()
///     .ignore_error_if(|error: &io::Error| error.kind() == io::ErrorKind::NotFound)
///     .build()?;
/// let by_config = ConfigClassifier::new(&config);
/// let classify = move |result: &Result<u16, io::Error>| match result {
///     Ok(status) if *status >= 500 => Outcome::Failure,
///     other => by_config.classify(other),
/// };
///
/// assert_eq!(classify(&Ok(200)), Outcome::Success);
/// assert_eq!(classify(&Ok(502)), Outcome::Failure);
/// assert_eq!(classify(&Err(io::ErrorKind::NotFound.into())), Outcome::Ignored);
/// assert_eq!(classify(&Err(io::ErrorKind::TimedOut.into())), Outcome::Failure);
/// # Ok::<(), flowbed_circuitbreaker::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct ConfigClassifier {
    /// The config, when it has error classifiers (without any, every error is a failure
    /// and there is nothing to keep).
    config: Option<Arc<Config>>,
}

impl ConfigClassifier {
    /// The classifier of `config`'s error classifiers.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_circuitbreaker::tower::{Classify, ConfigClassifier};
    /// use flowbed_circuitbreaker::{Config, Outcome};
    ///
    /// let classifier = ConfigClassifier::new(&Config::default());
    /// assert_eq!(classifier.classify(&Ok::<_, String>(())), Outcome::Success);
    /// assert_eq!(classifier.classify(&Err::<(), _>("boom".to_string())), Outcome::Failure);
    /// ```
    pub fn new(config: &Config) -> Self {
        Self {
            config: config
                .has_error_classifiers()
                .then(|| Arc::new(config.clone())),
        }
    }
}

impl<T, E: Any> Classify<T, E> for ConfigClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match &self.config {
            Some(config) => config.classify(result),
            None if result.is_ok() => Outcome::Success,
            None => Outcome::Failure,
        }
    }
}

impl fmt::Debug for ConfigClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigClassifier")
            .field("has_error_classifiers", &self.config.is_some())
            .finish()
    }
}
