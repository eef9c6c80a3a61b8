//! Runs checks one after the other on a multi-thread tokio runtime the kit builds itself.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::report::Outcome;

/// One check, started inside the runtime.
pub(crate) type Check = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send>;

/// Runs `checks` in order, each on its own task (a panic fails that check only) and
/// within `limit`; returns each with its outcome.
///
/// The runtime lives on a thread of its own, so this works from a plain `#[test]` as well
/// as from inside another runtime.
pub(crate) fn run_checks(
    checks: Vec<(&'static str, &'static str, Check)>,
    limit: Duration,
) -> Vec<(&'static str, &'static str, Outcome)> {
    let work = move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flowbed-tck")
            .enable_time()
            .build()
            .expect("the tck could not build its tokio runtime");
        let results = runtime.block_on(async move {
            let mut results = Vec::with_capacity(checks.len());
            for (rule, name, check) in checks {
                let task = tokio::spawn(async move { check().await });
                let abort = task.abort_handle();
                let outcome = match tokio::time::timeout(limit, task).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(failure)) if failure.is_panic() => {
                        let payload = failure.into_panic();
                        let message = payload
                            .downcast_ref::<&str>()
                            .map(|text| (*text).to_owned())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "non-string panic payload".to_owned());
                        Outcome::Failed(format!("the check panicked: {message}"))
                    }
                    Ok(Err(failure)) => Outcome::Failed(format!("the check was lost: {failure}")),
                    Err(_) => {
                        abort.abort();
                        Outcome::Failed(format!("the check did not finish within {limit:?}"))
                    }
                };
                results.push((rule, name, outcome));
            }
            results
        });
        // A subject that ignores cancellation may leave tasks running: do not wait for them.
        runtime.shutdown_timeout(Duration::from_millis(100));
        results
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("flowbed-tck-driver".into())
            .spawn_scoped(scope, work)
            .expect("the tck could not start its driver thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
