//! The thread-safety and pinning promises of every public type, checked at compile time.

use flowbed_workerpool::{
    BroadcastContext, Builder, ConfigError, Growth, JobError, JobHandle, JoinTimeoutError,
    PendingJob, RejectPolicy, Rejected, RejectedStats, Scope, ScopedJoinHandle, Stats, SubmitAsync,
    WorkerPool,
};

use flowbed_testkit::thread_safety::{send, send_error, sync, unpin};

/// A value that is `Send` but not `Sync`: handles and rejections only need `T: Send`.
type SendOnly = std::cell::Cell<u32>;
/// A closure type that is `Send` but not `Sync`.
type SendClosure = Box<dyn FnOnce() -> u32 + Send>;

#[test]
fn the_pool_and_its_builder_are_send_and_sync() {
    send::<WorkerPool>();
    sync::<WorkerPool>();
    send::<Builder>();
    sync::<Builder>();
    send::<std::sync::Arc<WorkerPool>>();
}

#[test]
fn job_handles_are_send_sync_and_unpin_for_send_values() {
    send::<JobHandle<SendOnly>>();
    sync::<JobHandle<SendOnly>>();
    unpin::<JobHandle<SendOnly>>();
    send::<JoinTimeoutError<SendOnly>>();
}

#[test]
fn the_async_submit_future_is_send_and_unpin() {
    send::<SubmitAsync<'static, SendClosure, SendOnly>>();
    unpin::<SubmitAsync<'static, SendClosure, SendOnly>>();
}

#[test]
fn scopes_and_scoped_handles_can_be_shared_with_scoped_jobs() {
    sync::<Scope<'static, 'static>>();
    send::<ScopedJoinHandle<'static, SendOnly>>();
    sync::<ScopedJoinHandle<'static, SendOnly>>();
    send::<BroadcastContext>();
    sync::<BroadcastContext>();
}

#[test]
fn pending_jobs_can_be_run_on_another_thread() {
    send::<PendingJob>();
}

#[test]
fn rejections_hand_back_send_closures_and_are_errors() {
    send::<Rejected<SendClosure>>();
    sync::<Rejected<fn()>>();
    send_error::<Rejected<SendClosure>>();
}

#[test]
fn errors_are_send_and_std_errors() {
    // `JobError::Panicked` holds a `Box<dyn Any + Send>` panic payload (as
    // `std::thread::Result` does), so `JobError` is `Send` but not `Sync`.
    send::<JobError>();
    send_error::<JobError>();
    send_error::<JoinTimeoutError<u32>>();
    send::<ConfigError>();
    sync::<ConfigError>();
    send_error::<ConfigError>();
}

#[test]
fn configuration_and_stats_values_are_send_and_sync() {
    send::<Stats>();
    sync::<Stats>();
    send::<RejectedStats>();
    sync::<RejectedStats>();
    send::<RejectPolicy>();
    sync::<RejectPolicy>();
    send::<Growth>();
    sync::<Growth>();
}
