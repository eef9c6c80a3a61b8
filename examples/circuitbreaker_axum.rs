//! An axum app whose handler calls a flaky downstream service through flowbed's
//! `CircuitBreakerLayer`: while the downstream is healthy its answers pass through; when
//! it starts failing, the breaker opens and the app answers `503 Service Unavailable`
//! with `Retry-After` at once, without calling the downstream; after the wait, two probes
//! decide whether it has recovered (and each failed trial doubles the wait).
//!
//! The downstream is simulated in-process (a pricing service behind an HTTP client, as a
//! tower service) and can be switched between `healthy`, `failing` (it answers `503`) and
//! `down` (the connection is refused). A `503` from it is an `Ok` response, so the layer
//! gets a classifier that counts `5xx` responses as failures.
//!
//! ```text
//! cargo run --example circuitbreaker_axum --features circuitbreaker-tower                # serve on 127.0.0.1:3000
//! curl -i http://127.0.0.1:3000/price/apple
//! curl -i -X POST http://127.0.0.1:3000/downstream/failing    # or healthy, down
//! curl -i http://127.0.0.1:3000/breaker
//! cargo run --example circuitbreaker_axum --features circuitbreaker-tower -- --self-test  # check it, for CI
//! ```
//!
//! `--self-test` serves on a free port of 127.0.0.1 with a manual clock (so the waits are
//! exact and take no time), sends requests to itself over plain HTTP/1.1, checks every
//! status, `Retry-After`, the number of calls that reached the downstream and the
//! breaker's transitions, prints a summary line and exits non-zero if anything is wrong.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flowbed::circuitbreaker::tower::{CircuitBreakerLayer, CircuitBreakerService};
use flowbed::circuitbreaker::{
    CallError, CircuitBreaker, Clock, Config, Event, Interest, ManualClock, MonotonicClock,
    Outcome, WaitInOpen,
};
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt};

#[path = "support/self_test.rs"]
mod support;

use support::{Answer, bind_free_port, expect, request, seconds_rounded_up};

/// The first wait in `Open`; every failed half-open trial doubles it (up to a minute).
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// Probes in half-open.
const PROBES: u32 = 2;

/// The breaker's settings: open when half of the last 10 calls (at least 4) failed.
fn config() -> Config {
    Config::builder()
        .count_window(10)
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(WaitInOpen::Exponential {
            initial: FIRST_WAIT,
            multiplier: 2.0,
            max: Duration::from_secs(60),
        })
        .permitted_calls_in_half_open(PROBES)
        .build()
        .expect("the example's configuration is valid")
}

// ---------------------------------------------------------------------------------------
// The downstream: a pricing service, as the tower service of an HTTP client would see it.

/// What the downstream does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Answers `200` with a price.
    Healthy,
    /// Answers `503 Service Unavailable` (an `Ok` response, for an HTTP client).
    Failing,
    /// Refuses the connection (an `Err`).
    Down,
}

/// The switch and the call counter of the simulated downstream.
#[derive(Debug)]
struct Control {
    mode: AtomicU8,
    calls: AtomicU64,
}

impl Control {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            mode: AtomicU8::new(Mode::Healthy as u8),
            calls: AtomicU64::new(0),
        })
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            0 => Mode::Healthy,
            1 => Mode::Failing,
            _ => Mode::Down,
        }
    }

    fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Calls that reached the downstream.
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

type DownstreamResponse = axum::http::Response<String>;

/// The downstream pricing service: `item` in, a price (or a failure) out.
#[derive(Debug, Clone)]
struct Downstream {
    control: Arc<Control>,
}

impl Service<String> for Downstream {
    type Response = DownstreamResponse;
    type Error = io::Error;
    type Future = std::future::Ready<Result<DownstreamResponse, io::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, item: String) -> Self::Future {
        self.control.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(match self.control.mode() {
            Mode::Healthy => Ok(DownstreamResponse::new(format!("{item}: 42 EUR\n"))),
            Mode::Failing => {
                let mut response = DownstreamResponse::new("overloaded\n".to_string());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                Ok(response)
            }
            Mode::Down => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused",
            )),
        })
    }
}

// ---------------------------------------------------------------------------------------
// The app.

/// How the breaker counts a downstream call: a `5xx` response is a failure although the
/// HTTP call itself returned `Ok`; so is an error (the downstream could not be reached).
fn server_errors_are_failures(result: &Result<DownstreamResponse, io::Error>) -> Outcome {
    match result {
        Ok(response) if response.status().is_server_error() => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

/// The classifier's type, to name the client's type in the app state.
type Classifier = fn(&Result<DownstreamResponse, io::Error>) -> Outcome;

/// The downstream client behind the breaker. Cloning it is cheap and every clone asks
/// the same breaker.
type Client<C> = CircuitBreakerService<Downstream, C, Classifier>;

struct AppState<C: Clock> {
    client: Client<C>,
    control: Arc<Control>,
}

// By hand: a derived `Clone` would ask for `C: Clone`, which the breaker's `Arc` does not
// need.
impl<C: Clock> Clone for AppState<C> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            control: Arc::clone(&self.control),
        }
    }
}

/// The app: `GET /price/{item}` asks the downstream through the breaker; `GET /breaker`
/// shows the breaker; `POST /downstream/{healthy|failing|down}` switches the simulated
/// downstream.
fn app<C: Clock + 'static>(breaker: Arc<CircuitBreaker<C>>, control: Arc<Control>) -> Router {
    let layer =
        CircuitBreakerLayer::new(breaker).classify(server_errors_are_failures as Classifier);
    let client = layer.layer(Downstream {
        control: Arc::clone(&control),
    });
    Router::new()
        .route("/price/{item}", get(price::<C>))
        .route("/breaker", get(breaker_status::<C>))
        .route("/downstream/{mode}", post(switch_downstream::<C>))
        .with_state(AppState { client, control })
}

/// Asks the downstream for the price of `item`, through the breaker.
async fn price<C: Clock + 'static>(
    State(state): State<AppState<C>>,
    Path(item): Path<String>,
) -> Response {
    match state.client.clone().oneshot(item).await {
        Ok(response) if response.status().is_success() => response.into_body().into_response(),
        // The downstream answered with an error status: a bad gateway, for our client.
        Ok(response) => (
            StatusCode::BAD_GATEWAY,
            format!("downstream answered {}\n", response.status()),
        )
            .into_response(),
        Err(CallError::Failed(error)) => (
            StatusCode::BAD_GATEWAY,
            format!("downstream unreachable: {error}\n"),
        )
            .into_response(),
        // The breaker refused the call: the downstream was not called.
        Err(CallError::Rejected(rejected)) => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("pricing is unavailable ({rejected})\n"),
            )
                .into_response();
            // Open: the rest of the wait. Half-open with every probe out, or forced open:
            // unknown, so no header.
            if let Some(wait) = rejected.retry_after() {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds_rounded_up(wait)));
            }
            response
        }
    }
}

/// The breaker's state and numbers, one line.
async fn breaker_status<C: Clock + 'static>(State(state): State<AppState<C>>) -> String {
    let metrics = state.client.breaker().metrics();
    format!(
        "state={} calls={} failed={} failure_rate={} not_permitted={} downstream_calls={}\n",
        metrics.state,
        metrics.calls,
        metrics.failed,
        metrics
            .failure_rate
            .map_or_else(|| "n/a".to_string(), |rate| format!("{rate:.0}%")),
        metrics.not_permitted,
        state.control.calls(),
    )
}

/// Switches the simulated downstream.
async fn switch_downstream<C: Clock + 'static>(
    State(state): State<AppState<C>>,
    Path(mode): Path<String>,
) -> Response {
    let mode = match mode.as_str() {
        "healthy" => Mode::Healthy,
        "failing" => Mode::Failing,
        "down" => Mode::Down,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "modes: healthy, failing, down\n".to_string(),
            )
                .into_response();
        }
    };
    state.control.set_mode(mode);
    format!("downstream is now {mode:?}\n").into_response()
}

// ---------------------------------------------------------------------------------------
// Running it.

#[tokio::main]
async fn main() -> ExitCode {
    support::run("circuitbreaker_axum", self_test, run_server).await
}

async fn run_server(addr: &str) -> Result<(), String> {
    let breaker = Arc::new(CircuitBreaker::with_clock(config(), MonotonicClock::new()));
    // Log every transition (the callback runs on the thread that caused it: keep it short).
    let _transitions = breaker.subscribe(Interest::Transitions, |event| {
        if let Event::Transition { from, to } = event {
            println!("circuitbreaker_axum: breaker {from} -> {to}");
        }
    });
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot bind {addr}: {error}"))?;
    println!(
        "circuitbreaker_axum: serving on http://{addr}/; try: curl -i http://{addr}/price/apple, \
         then curl -X POST http://{addr}/downstream/failing and ask for prices again"
    );
    axum::serve(listener, app(breaker, Control::new()))
        .await
        .map_err(|error| format!("server failed: {error}"))
}

/// The self-test's view of the server: its address, the downstream's counter and the
/// tally of answers.
struct Probe {
    addr: SocketAddr,
    control: Arc<Control>,
    ok: u32,
    bad_gateway: u32,
    fast_503: u32,
}

impl Probe {
    /// `GET /price/apple`, which must answer `status`; returns the answer.
    async fn price(&mut self, status: u16, step: &str) -> Result<Answer, String> {
        let answer = request(self.addr, "GET", "/price/apple", &[]).await?;
        expect(answer.status == status, || {
            format!("{step}: expected {status}, got {answer:?}")
        })?;
        match status {
            200 => self.ok += 1,
            502 => self.bad_gateway += 1,
            503 => self.fast_503 += 1,
            _ => {}
        }
        Ok(answer)
    }

    /// A `503` from the open breaker, with `Retry-After: seconds`, that did not reach the
    /// downstream.
    async fn rejected(&mut self, seconds: u64, step: &str) -> Result<(), String> {
        let before = self.control.calls();
        let answer = self.price(503, step).await?;
        expect(answer.number("retry-after").ok() == Some(seconds), || {
            format!("{step}: expected Retry-After: {seconds}, got {answer:?}")
        })?;
        expect(self.control.calls() == before, || {
            format!("{step}: a rejected request reached the downstream")
        })
    }

    async fn switch(&self, mode: &str) -> Result<(), String> {
        let answer = request(self.addr, "POST", &format!("/downstream/{mode}"), &[]).await?;
        expect(answer.status == 200, || {
            format!("switching the downstream to {mode}: {answer:?}")
        })
    }

    /// The breaker, as `GET /breaker` shows it, must be in `state`; `failure` says what
    /// went wrong if not.
    async fn breaker(&self, state: &str, failure: &str) -> Result<(), String> {
        let status = request(self.addr, "GET", "/breaker", &[]).await?;
        expect(status.body.starts_with(&format!("state={state} ")), || {
            format!("{failure}: {status:?}")
        })
    }

    fn downstream_calls(&self, expected: u64, step: &str) -> Result<(), String> {
        let calls = self.control.calls();
        expect(calls == expected, || {
            format!("{step}: {calls} calls reached the downstream, expected {expected}")
        })
    }
}

async fn self_test() -> Result<(), String> {
    let clock = ManualClock::new();
    let breaker = Arc::new(CircuitBreaker::with_clock(config(), clock.clone()));
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&transitions);
    let _subscription = breaker.subscribe(Interest::Transitions, move |event| {
        if let Event::Transition { from, to } = event {
            log.lock().unwrap().push(format!("{from}->{to}"));
        }
    });
    let control = Control::new();
    let (listener, addr) = bind_free_port().await?;
    let server = tokio::spawn(
        axum::serve(listener, app(Arc::clone(&breaker), Arc::clone(&control))).into_future(),
    );
    let mut probe = Probe {
        addr,
        control,
        ok: 0,
        bad_gateway: 0,
        fast_503: 0,
    };

    // 1. Healthy: prices pass through.
    for _ in 0..4 {
        let answer = probe.price(200, "healthy downstream").await?;
        expect(answer.body == "apple: 42 EUR\n", || {
            format!("unexpected price: {answer:?}")
        })?;
    }
    probe.downstream_calls(4, "healthy downstream")?;

    // 2. The downstream fails (503s): each is a 502 for our client and a failure for the
    //    breaker; the 4th makes 4 of the last 8 calls, 50 %, and the breaker opens.
    probe.switch("failing").await?;
    for _ in 0..4 {
        probe.price(502, "failing downstream").await?;
    }
    probe.downstream_calls(8, "failing downstream")?;
    probe.breaker("open", "the breaker did not open").await?;

    // 3. Open: fast 503s with Retry-After, and the downstream is left alone.
    let first_wait = FIRST_WAIT.as_secs();
    for _ in 0..3 {
        probe.rejected(first_wait, "open breaker").await?;
    }
    clock.advance(Duration::from_secs(2));
    probe
        .rejected(first_wait - 2, "open breaker, 2 s later")
        .await?;

    // 4. After the wait two probes go through; the downstream still fails, so the breaker
    //    opens again, for twice as long.
    clock.advance(Duration::from_secs(first_wait - 2));
    for _ in 0..PROBES {
        probe.price(502, "failed half-open trial").await?;
    }
    probe.downstream_calls(10, "failed half-open trial")?;
    probe
        .rejected(2 * first_wait, "open again after a failed trial")
        .await?;

    // 5. The downstream recovers, but the breaker waits its time.
    probe.switch("healthy").await?;
    probe
        .rejected(2 * first_wait, "healthy downstream, breaker still open")
        .await?;
    probe.downstream_calls(10, "healthy downstream, breaker still open")?;

    // 6. After the wait the probes succeed and the breaker closes.
    clock.advance(2 * FIRST_WAIT);
    for _ in 0..PROBES + 2 {
        probe.price(200, "recovered").await?;
    }
    probe.downstream_calls(14, "recovered")?;
    probe.breaker("closed", "the breaker did not close").await?;

    // 7. A refused connection is a 502 too (and one failure is not enough to open).
    probe.switch("down").await?;
    let answer = probe.price(502, "downstream down").await?;
    expect(answer.body.contains("connection refused"), || {
        format!("unexpected answer for a refused connection: {answer:?}")
    })?;

    let transitions = transitions.lock().unwrap().join(",");
    let expected = "closed->open,open->half-open,half-open->open,open->half-open,half-open->closed";
    expect(transitions == expected, || {
        format!("transitions {transitions}, expected {expected}")
    })?;

    server.abort();
    println!(
        "circuitbreaker_axum: ok={} bad_gateway={} fast_503={} downstream_calls={} transitions={transitions}",
        probe.ok,
        probe.bad_gateway,
        probe.fast_503,
        probe.control.calls(),
    );
    Ok(())
}
