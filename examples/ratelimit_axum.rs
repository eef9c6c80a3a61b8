//! An axum app rate limited per client with flowbed's `RateLimitLayer`: 10 requests per
//! minute per client, shared by every route, answered with `429 Too Many Requests`,
//! `Retry-After` and `RateLimit-*` headers when over, and with `RateLimit-*` headers on
//! every admitted response too.
//!
//! A client is named by its `x-client-id` header, or else by its IP address (axum's
//! `ConnectInfo`). The layer is applied with `Router::layer`, which gives each route its
//! own copy of the service: all copies check the same limiter, so the quota holds across
//! routes (tower's own `RateLimit` would count per copy).
//!
//! ```text
//! cargo run --example ratelimit_axum --features ratelimit-tower                # serve on 127.0.0.1:3000
//! curl -i -H 'x-client-id: alice' http://127.0.0.1:3000/
//! cargo run --example ratelimit_axum --features ratelimit-tower -- --self-test  # check it, for CI
//! ```
//!
//! `--self-test` serves on a free port of 127.0.0.1 with a manual clock, sends requests to
//! itself over plain HTTP/1.1, checks every status and header, prints a summary line and
//! exits non-zero if anything is wrong.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flowbed::ratelimit::tower::{RateLimitError, RateLimitLayer, Rejection};
use flowbed::ratelimit::{Clock, Decision, KeyedRateLimiter, ManualClock, Quota};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

#[path = "support/self_test.rs"]
mod support;

use support::{bind_free_port, expect, request, seconds_rounded_up};

/// Requests per minute per client (and the burst: all of them at once).
const PER_MINUTE: u32 = 10;

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Client {
    /// The client's own `x-client-id`.
    Id(HeaderValue),
    /// The peer's address, for clients without an id.
    Peer(IpAddr),
    /// Neither (a server run without `ConnectInfo`): all such requests share one limit.
    Unknown,
}

/// The key function of the limiter: runs once per request, before the check.
fn client_of(request: &Request) -> Client {
    if let Some(id) = request.headers().get("x-client-id") {
        return Client::Id(id.clone());
    }
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => Client::Peer(peer.ip()),
        None => Client::Unknown,
    }
}

/// The app: two routes behind one per-client limit.
fn app<C: Clock + 'static>(limiter: KeyedRateLimiter<Client, C>) -> Router {
    let rate_limit = RateLimitLayer::keyed(limiter, client_of).on_allowed(set_headers_on_allowed);
    Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/status", get(|| async { "ok\n" }))
        .layer(
            ServiceBuilder::new()
                // The rate limit's error becomes a response here (axum services cannot fail).
                .layer(HandleErrorLayer::new(rejected))
                .layer(rate_limit),
        )
}

/// The `on_allowed` hook: the `RateLimit-*` headers on every admitted response.
fn set_headers_on_allowed(response: &mut Response, decision: &Decision) {
    set_rate_limit_headers(response.headers_mut(), decision);
}

/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the
/// client's full quota is back, rounded up).
fn set_rate_limit_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(decision.limit()));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(decision.remaining()));
    headers.insert(
        RATELIMIT_RESET,
        HeaderValue::from(seconds_rounded_up(decision.reset_after())),
    );
}

/// The response for a request the rate limit refused.
async fn rejected(error: RateLimitError<Infallible>) -> Response {
    match error {
        RateLimitError::Rejected(Rejection::Limited(decision)) => {
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, "too many requests\n").into_response();
            let headers = response.headers_mut();
            set_rate_limit_headers(headers, &decision);
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from(seconds_rounded_up(decision.retry_after())),
            );
            response
        }
        // The limiter tracks as many busy clients as it may: the server is overloaded.
        RateLimitError::Rejected(Rejection::TooManyKeys { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "too many clients\n").into_response()
        }
        // A request costing more than the burst (not possible here: each costs 1).
        RateLimitError::Rejected(Rejection::InsufficientCapacity { .. }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request too large for the quota\n",
        )
            .into_response(),
        other => (StatusCode::INTERNAL_SERVER_ERROR, format!("{other}\n")).into_response(),
    }
}

/// Serves `app` on `listener` with the peers' addresses available to `client_of`.
async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    support::run("ratelimit_axum", self_test, run_server).await
}

async fn run_server(addr: &str) -> Result<(), String> {
    let quota = Quota::per_minute(PER_MINUTE.try_into().expect("PER_MINUTE > 0"));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot bind {addr}: {error}"))?;
    println!(
        "ratelimit_axum: serving on http://{addr}/ ({PER_MINUTE} requests per minute per client); \
         try: curl -i -H 'x-client-id: alice' http://{addr}/"
    );
    serve(listener, app(KeyedRateLimiter::new(quota)))
        .await
        .map_err(|error| format!("server failed: {error}"))
}

/// The header that names the self-test's client.
const ALICE: &[(&str, &str)] = &[("x-client-id", "alice")];

async fn self_test() -> Result<(), String> {
    let clock = ManualClock::new();
    let quota = Quota::per_minute(PER_MINUTE.try_into().expect("PER_MINUTE > 0"));
    let limiter = KeyedRateLimiter::builder(quota)
        .clock(clock.clone())
        .build();
    let (listener, addr) = bind_free_port().await?;
    let server = tokio::spawn(serve(listener, app(limiter)));

    // alice sends 15 requests, alternating between the two routes: the first 10 get 200
    // with RateLimit-Remaining counting down, the last 5 get 429 with Retry-After.
    let (mut ok, mut limited, mut retry_after) = (0_u32, 0_u32, None);
    for attempt in 0..PER_MINUTE + 5 {
        let path = if attempt % 2 == 0 { "/" } else { "/status" };
        let answer = request(addr, "GET", path, ALICE).await?;
        expect(
            answer.number("ratelimit-limit")? == u64::from(PER_MINUTE),
            || format!("wrong RateLimit-Limit in {answer:?}"),
        )?;
        let remaining = answer.number("ratelimit-remaining")?;
        let reset = answer.number("ratelimit-reset")?;
        match answer.status {
            200 => {
                ok += 1;
                expect(remaining == u64::from(PER_MINUTE - ok), || {
                    format!(
                        "request {attempt}: RateLimit-Remaining {remaining}, expected {}",
                        PER_MINUTE - ok
                    )
                })?;
                expect(answer.header("retry-after").is_none(), || {
                    format!("Retry-After on a 200: {answer:?}")
                })?;
                // One cell comes back every 6 s: `ok` of them are spent.
                expect(reset == u64::from(ok) * 6, || {
                    format!(
                        "request {attempt}: RateLimit-Reset {reset}, expected {}",
                        ok * 6
                    )
                })?;
            }
            429 => {
                limited += 1;
                expect(remaining == 0 && reset == 60, || {
                    format!("429 with RateLimit-Remaining {remaining}, RateLimit-Reset {reset}")
                })?;
                let seconds = answer.number("retry-after")?;
                // The next cell comes in 60 s / 10 = 6 s (the clock stands still).
                expect(seconds == 6, || {
                    format!("Retry-After {seconds}, expected 6")
                })?;
                retry_after = Some(seconds);
            }
            status => return Err(format!("request {attempt}: unexpected status {status}")),
        }
    }
    expect(ok == PER_MINUTE && limited == 5, || {
        format!("ok={ok} limited={limited}, expected ok={PER_MINUTE} limited=5")
    })?;

    // Another client (no id: keyed by its IP address) has its own quota.
    let anonymous = request(addr, "GET", "/", &[]).await?;
    expect(
        anonymous.status == 200
            && anonymous.number("ratelimit-remaining")? == u64::from(PER_MINUTE - 1),
        || format!("another client was not served on its own quota: {anonymous:?}"),
    )?;

    // After Retry-After, alice is admitted again.
    clock.advance(Duration::from_secs(retry_after.unwrap_or(0)));
    let again = request(addr, "GET", "/", ALICE).await?;
    expect(
        again.status == 200 && again.number("ratelimit-remaining")? == 0,
        || format!("alice was not admitted after Retry-After: {again:?}"),
    )?;

    server.abort();
    println!(
        "ratelimit_axum: ok={ok} limited={limited} retry_after_header={} other_client=200 after_retry=200",
        if retry_after.is_some() {
            "present"
        } else {
            "missing"
        }
    );
    Ok(())
}
