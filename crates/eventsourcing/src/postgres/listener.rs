//! `LISTEN`/`NOTIFY` → the store's head watch.
//!
//! `append_batch` ends with `pg_notify('flowbed_es_<schema>', <last position>)`; PostgreSQL
//! delivers notifications at commit, in commit order, to every session listening on the
//! channel, in any process. The listener keeps one connection of its own (outside the
//! pool: a listening session must stay open and must not be handed to other users),
//! drives it with [`Connection::poll_message`] and raises the watch to each announced
//! position.
//!
//! A notification can be lost when the connection drops. The listener then reconnects
//! with backoff (100 ms doubling to 5 s), listens again, and only then reads the head from
//! the counter row and raises the watch to it: a commit made while it was away is seen by
//! that read, one made after it is announced on the new connection. Subscriptions also
//! read at an interval (see [`Subscription::poll_interval`](crate::Subscription::poll_interval)),
//! so even a listener that cannot reconnect delays them without losing anything.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::event::Position;

/// Raises the head to `position` if that is newer (the watch only moves forward).
pub(super) fn raise(head: &watch::Sender<Position>, position: Position) {
    head.send_if_modified(|current| {
        let newer = position > *current;
        if newer {
            *current = position;
        }
        newer
    });
}

/// What the listener needs to (re)connect and catch up.
#[derive(Debug, Clone)]
pub(super) struct Listener {
    pub(super) config: Config,
    pub(super) channel: String,
    pub(super) head_sql: String,
    pub(super) head: Arc<watch::Sender<Position>>,
    pub(super) connect_timeout: Duration,
}

/// An open connection whose messages a task forwards to the head watch.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) client: Client,
    driver: JoinHandle<()>,
}

/// Why opening a session failed.
#[derive(Debug)]
pub(super) enum OpenError {
    /// The server refused or failed.
    Driver(tokio_postgres::Error),
    /// Connecting took longer than the connect timeout.
    TimedOut(Duration),
}

impl Listener {
    /// Connects and spawns the task that drives the connection, turning notifications on
    /// the channel into head raises. Does not listen yet.
    pub(super) async fn open(&self) -> Result<Session, OpenError> {
        let connect = self.config.connect(NoTls);
        let (client, mut connection) = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| OpenError::TimedOut(self.connect_timeout))?
            .map_err(OpenError::Driver)?;
        let head = Arc::clone(&self.head);
        let channel = self.channel.clone();
        let driver = tokio::spawn(async move {
            // `None` or an error is terminal: the connection is gone.
            while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
                let AsyncMessage::Notification(notification) = message else {
                    continue;
                };
                if notification.channel() != channel {
                    continue;
                }
                if let Ok(position) = notification.payload().parse::<u64>() {
                    raise(&head, Position(position));
                }
            }
        });
        Ok(Session { client, driver })
    }

    /// Listens on the channel, then reads the head and raises the watch to it.
    pub(super) async fn listen(&self, session: &Session) -> Result<(), tokio_postgres::Error> {
        session
            .client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel))
            .await?;
        let last: i64 = session.client.query_one(&self.head_sql, &[]).await?.get(0);
        raise(&self.head, Position(u64::try_from(last).unwrap_or(0)));
        Ok(())
    }

    /// Runs until aborted: waits for the session's connection to end, then reconnects
    /// with backoff and listens again.
    pub(super) fn spawn(self, first: Session) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut session = first;
            loop {
                // The client stays alive (in `session`) while the driver runs.
                let _ = (&mut session.driver).await;
                let mut backoff = Duration::from_millis(100);
                session = loop {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if let Ok(session) = self.open().await {
                        if self.listen(&session).await.is_ok() {
                            break session;
                        }
                    }
                };
            }
        })
    }
}
