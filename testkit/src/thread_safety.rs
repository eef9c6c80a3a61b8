//! Compile-time thread-safety assertions: each function compiles only if its type
//! parameter has the property, so a `tests/send_sync.rs` made of calls to them fails to
//! build when a public type loses `Send`, `Sync`, `Unpin` or `Debug`.

use std::fmt::Debug;
use std::future::Future;

/// Compiles only for `Send` types.
pub fn send<T: Send>() {}

/// Compiles only for `Sync` types.
pub fn sync<T: Sync>() {}

/// Compiles only for `Unpin` types.
pub fn unpin<T: Unpin>() {}

/// Compiles only for `Debug` types.
pub fn debug<T: Debug>() {}

/// `Send`, `Sync`, `Unpin` and `Debug` at once.
pub fn thread_safe<T: Send + Sync + Unpin + Debug>() {}

/// An error type that can cross threads and be boxed into `Box<dyn Error + Send + Sync>`.
pub fn error<E: std::error::Error + Send + Sync + 'static>() {}

/// An error type that can be sent to another thread (it may hand back a value that is not
/// `Sync`, such as a rejected closure).
pub fn send_error<E: std::error::Error + Send + 'static>() {}

/// A future that can be moved to another thread. Built, checked and dropped by the caller
/// without being polled.
pub fn send_future<F: Future + Send>(future: F) -> F {
    future
}

/// A future that `tokio::spawn` accepts.
pub fn spawnable<F: Future + Send + 'static>(future: F) -> F {
    future
}

/// Compiles only for types that are **not** `Sync`.
///
/// ```
/// flowbed_testkit::assert_not_sync!(std::cell::Cell<u8>);
/// ```
///
/// ```compile_fail
/// flowbed_testkit::assert_not_sync!(u8);
/// ```
#[macro_export]
macro_rules! assert_not_sync {
    ($type:ty) => {{
        // `some_item` is ambiguous (a compile error) exactly when both impls apply.
        trait AmbiguousIfSync<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        let _ = <$type as AmbiguousIfSync<_>>::some_item;
    }};
}
