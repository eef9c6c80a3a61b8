//! What the axum examples share: the command line of their `main` (`--self-test`,
//! `--serve ADDR`, or serve on 127.0.0.1:3000), the plain HTTP/1.1 client and the checks
//! of their `--self-test`, and the rounding of `Retry-After` headers.
//!
//! Not an example of its own (cargo only takes `main.rs` from a subdirectory of
//! `examples`): each example includes it with `#[path = "support/self_test.rs"] mod support;`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs the example called `name` as its command line asks: `--self-test` runs
/// `self_test`, `--serve ADDR` runs `serve(ADDR)` and no argument `serve("127.0.0.1:3000")`.
/// An error is printed after the example's name and makes the exit code a failure.
pub(crate) async fn run(
    name: &str,
    self_test: impl AsyncFnOnce() -> Result<(), String>,
    serve: impl AsyncFnOnce(&str) -> Result<(), String>,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--self-test"] => self_test().await,
        [] => serve("127.0.0.1:3000").await,
        ["--serve", addr] => serve(addr).await,
        _ => Err(format!("usage: {name} [--self-test | --serve ADDR]")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Whole seconds, rounded up: a client told to wait 0 s after 300 ms would come too early.
pub(crate) fn seconds_rounded_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A listener on a free port of 127.0.0.1, and its address: where the self-test serves.
pub(crate) async fn bind_free_port() -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("cannot bind 127.0.0.1:0: {error}"))?;
    let addr = listener
        .local_addr()
        .map_err(|error| format!("local address: {error}"))?;
    Ok((listener, addr))
}

/// The parts of an HTTP response the self-test looks at.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    #[allow(dead_code, reason = "not every example checks bodies")]
    pub(crate) body: String,
}

impl Answer {
    /// The value of the header `name` (in any case), if there is one.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of the header `name` as a number, or an error if it is missing or not one.
    pub(crate) fn number(&self, name: &str) -> Result<u64, String> {
        let value = self
            .header(name)
            .ok_or_else(|| format!("no {name} header in {self:?}"))?;
        value
            .parse()
            .map_err(|_| format!("{name} is not a number: {value:?}"))
    }
}

/// One `method path` request without a body, with `extra_headers`, over a fresh HTTP/1.1
/// connection.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|error| format!("connect {addr}: {error}"))?;
    let extra_headers: String = extra_headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{extra_headers}content-length: 0\r\n\
         connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("send: {error}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|error| format!("receive: {error}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Checks `condition`, or fails with `message`.
pub(crate) fn expect(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}
