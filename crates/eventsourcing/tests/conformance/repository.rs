//! `Repository` on every backend: execute, rejection, optimistic-concurrency conflicts and
//! retries (re-reading only the tail), snapshots, upcasting on load and on subscriptions,
//! command metadata, and concurrent commands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flowbed_eventsourcing::{
    Aggregate, AppendError, CommandError, DecodeError, DomainEvent, EventData, EventStore,
    ExpectedVersion, FnUpcaster, Metadata, Position, Repository, Snapshot, Subscription, Upcasters,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

use super::*;
use crate::common::hooked::{Hooked, StoreHooks};

/// The suite's test aggregate: a bank account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Account {
    opened: bool,
    owner: String,
    balance: i64,
    deposits: u32,
}

/// What happens to an account. Schema version 2: version 1 of `MoneyDeposited` called the
/// amount `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AccountEvent {
    /// The account was opened.
    Opened {
        /// Who owns it.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// How much.
        amount: i64,
    },
    /// Money went out.
    Withdrawn {
        /// How much.
        amount: i64,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::Opened { .. } => "AccountOpened",
            AccountEvent::Deposited { .. } => "MoneyDeposited",
            AccountEvent::Withdrawn { .. } => "MoneyWithdrawn",
        }
    }

    const SCHEMA_VERSION: u32 = 2;
}

/// What callers ask an account to do.
#[derive(Clone, Debug)]
pub(crate) enum AccountCommand {
    /// Open it for an owner.
    Open(String),
    /// Open it and deposit at once (two events).
    OpenWithDeposit(String, i64),
    /// Deposit a positive amount.
    Deposit(i64),
    /// Withdraw at most the balance.
    Withdraw(i64),
    /// Decide that nothing happens (no events).
    Touch,
}

/// Why an account refuses a command.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AccountError {
    /// Opening twice.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Moving money before opening.
    #[error("the account is not open")]
    NotOpen,
    /// A zero or negative amount.
    #[error("amounts must be positive")]
    NotPositive,
    /// Withdrawing more than the balance.
    #[error("balance {balance} does not cover {amount}")]
    Insufficient {
        /// The balance.
        balance: i64,
        /// The amount asked for.
        amount: i64,
    },
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let open = |owner: String| {
            if self.opened {
                Err(AccountError::AlreadyOpen)
            } else {
                Ok(AccountEvent::Opened { owner })
            }
        };
        let positive = |amount: i64| {
            if !self.opened {
                Err(AccountError::NotOpen)
            } else if amount <= 0 {
                Err(AccountError::NotPositive)
            } else {
                Ok(amount)
            }
        };
        match command {
            AccountCommand::Open(owner) => Ok(vec![open(owner)?]),
            AccountCommand::OpenWithDeposit(owner, amount) => {
                let opened = open(owner)?;
                if amount <= 0 {
                    return Err(AccountError::NotPositive);
                }
                Ok(vec![opened, AccountEvent::Deposited { amount }])
            }
            AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited {
                amount: positive(amount)?,
            }]),
            AccountCommand::Withdraw(amount) => {
                let amount = positive(amount)?;
                if amount > self.balance {
                    return Err(AccountError::Insufficient {
                        balance: self.balance,
                        amount,
                    });
                }
                Ok(vec![AccountEvent::Withdrawn { amount }])
            }
            AccountCommand::Touch => Ok(Vec::new()),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => {
                self.opened = true;
                self.owner.clone_from(owner);
            }
            AccountEvent::Deposited { amount } => {
                self.balance += amount;
                self.deposits += 1;
            }
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

/// The upcaster from `MoneyDeposited` v1 (`{"Deposited":{"value":n}}`) to v2.
fn deposit_v1_to_v2() -> FnUpcaster<
    impl Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
> {
    FnUpcaster::new("MoneyDeposited", 1, |mut payload: serde_json::Value| {
        let inner = payload
            .get_mut("Deposited")
            .and_then(serde_json::Value::as_object_mut)
            .ok_or("not a deposit")?;
        let value = inner.remove("value").ok_or("no value field")?;
        inner.insert("amount".to_owned(), value);
        Ok(payload)
    })
}

/// A raw event of an old schema, as an older release wrote it.
fn raw(event_type: &str, schema_version: u32, payload: &str) -> EventData {
    EventData::new(event_type, payload.as_bytes().to_vec()).with_schema_version(schema_version)
}

/// A store that lets a competing writer append one deposit of 1000 right before each of
/// the next `races` non-empty appends, and records where `read_stream` started.
pub(crate) type RaceStore<S> = Hooked<S, Race>;

/// The hooks of a [`RaceStore`]: the races still armed and the `read_stream` starts.
#[derive(Debug, Default)]
pub(crate) struct Race {
    races: AtomicUsize,
    reads_from: Mutex<Vec<u64>>,
}

impl StoreHooks for Race {
    fn before_append(&self, events: &[EventData]) -> Option<EventData> {
        let race = !events.is_empty()
            && self
                .races
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        race.then(|| {
            EventData::from_event(&AccountEvent::Deposited { amount: 1000 })
                .expect("a deposit encodes")
        })
    }

    fn on_read_stream(&self, from: u64) {
        self.reads_from.lock().expect("lock").push(from);
    }
}

impl<S: EventStore> RaceStore<S> {
    /// Makes the next `races` appends lose to a competing writer.
    fn arm(&self, races: usize) {
        self.hooks().races.store(races, Ordering::SeqCst);
        self.hooks().reads_from.lock().expect("lock").clear();
    }

    /// Where each `read_stream` since the last [`arm`](RaceStore::arm) started.
    fn reads_from(&self) -> Vec<u64> {
        self.hooks().reads_from.lock().expect("lock").clone()
    }
}

/// Runs a command that must succeed.
async fn run<S: EventStore>(
    repository: &Repository<Account, S>,
    id: &str,
    command: AccountCommand,
) -> flowbed_eventsourcing::Executed<Account> {
    repository
        .execute(id, command.clone())
        .await
        .unwrap_or_else(|error| panic!("command {command:?} on {id:?} failed: {error}"))
}

/// Loads an account that must load.
async fn load<S: EventStore>(
    repository: &Repository<Account, S>,
    id: &str,
) -> flowbed_eventsourcing::Loaded<Account> {
    repository
        .load(id)
        .await
        .unwrap_or_else(|error| panic!("loading {id:?} failed: {error}"))
}

/// An open account owned by `owner` with this balance and deposit count.
fn account(owner: &str, balance: i64, deposits: u32) -> Account {
    Account {
        opened: true,
        owner: owner.to_owned(),
        balance,
        deposits,
    }
}

/// `execute` appends the command's events to `account-<id>` expecting the loaded version
/// and reports them; `load` folds them back; a command with no events appends nothing.
pub(crate) async fn execute_appends_and_loads<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let opened = run(&accounts, "alice", AccountCommand::Open("Alice".into())).await;
    assert_eq!(
        opened.events,
        vec![AccountEvent::Opened {
            owner: "Alice".into()
        }]
    );
    assert_eq!(
        (opened.loaded.version, opened.position, opened.retries),
        (1, Some(Position(1)), 0)
    );
    let deposited = run(&accounts, "alice", AccountCommand::Deposit(50)).await;
    assert_eq!(
        (deposited.loaded.version, deposited.position),
        (2, Some(Position(2)))
    );
    assert_eq!(deposited.loaded.state, account("Alice", 50, 1));
    let bob = run(
        &accounts,
        "bob",
        AccountCommand::OpenWithDeposit("Bob".into(), 7),
    )
    .await;
    assert_eq!(bob.events.len(), 2);
    assert_eq!((bob.loaded.version, bob.position), (2, Some(Position(4))));

    let touched = run(&accounts, "alice", AccountCommand::Touch).await;
    assert!(touched.events.is_empty());
    assert_eq!((touched.loaded.version, touched.position), (2, None));
    assert_eq!(head_of(&store).await, Position(4));

    let alice = load(&accounts, "alice").await;
    assert_eq!((alice.state, alice.version), (account("Alice", 50, 1), 2));
    assert_eq!(load(&accounts, "bob").await.state, account("Bob", 7, 1));
    assert_eq!(load(&accounts, "nobody").await.version, 0);

    let stored = stream_events(&store, "account-alice").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored
            .iter()
            .map(|e| (e.event_type.as_str(), e.schema_version))
            .collect::<Vec<_>>(),
        vec![("AccountOpened", 2), ("MoneyDeposited", 2)]
    );
    assert_eq!(
        serde_json::from_slice::<AccountEvent>(&stored[1].payload).expect("a v2 payload"),
        AccountEvent::Deposited { amount: 50 }
    );
}

/// A rejected command appends nothing and reports the aggregate's error.
pub(crate) async fn rejected_command_appends_nothing<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let expect_rejected =
        |result: Result<_, CommandError<AccountError>>, error: AccountError| match result {
            Err(CommandError::Rejected(got)) => assert_eq!(got, error),
            other => panic!("expected Rejected({error:?}), got {other:?}"),
        };
    expect_rejected(
        accounts.execute("a", AccountCommand::Withdraw(10)).await,
        AccountError::NotOpen,
    );
    assert_eq!(head_of(&store).await, Position::START);
    run(&accounts, "a", AccountCommand::Open("A".into())).await;
    expect_rejected(
        accounts.execute("a", AccountCommand::Withdraw(100)).await,
        AccountError::Insufficient {
            balance: 0,
            amount: 100,
        },
    );
    expect_rejected(
        accounts
            .execute("a", AccountCommand::Open("again".into()))
            .await,
        AccountError::AlreadyOpen,
    );
    expect_rejected(
        accounts
            .execute_with_retry("a", AccountCommand::Deposit(0), 3)
            .await,
        AccountError::NotPositive,
    );
    assert_eq!(head_of(&store).await, Position(1));
    assert_eq!(version_of(&store, "account-a").await, 1);
}

/// Without retry, losing the race is a conflict error naming the versions, and the
/// command's events are not stored.
pub(crate) async fn conflict_without_retry<S: EventStore>(store: S) {
    let racing = RaceStore::new(store.clone());
    let accounts = Repository::<Account, _>::new(racing.clone());
    run(&accounts, "alice", AccountCommand::Open("Alice".into())).await;
    racing.arm(1);
    let result = accounts.execute("alice", AccountCommand::Deposit(5)).await;
    match &result {
        Err(
            error @ CommandError::Append(AppendError::WrongExpectedVersion {
                stream,
                expected,
                actual,
            }),
        ) => {
            assert!(error.is_conflict());
            assert_eq!(
                (stream.as_str(), *expected, *actual),
                ("account-alice", ExpectedVersion::Exact(1), 2)
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let alice = load(&accounts, "alice").await;
    assert_eq!((alice.state, alice.version), (account("Alice", 1000, 1), 2));
    assert_eq!(head_of(&store).await, Position(2));
}

/// `execute_with_retry` re-reads only the events appended since its last read and re-runs
/// the command on the new state.
pub(crate) async fn retry_rereads_tail<S: EventStore>(store: S) {
    let racing = RaceStore::new(store.clone());
    let accounts = Repository::<Account, _>::new(racing.clone());
    run(&accounts, "alice", AccountCommand::Open("Alice".into())).await;
    racing.arm(2);
    let executed = accounts
        .execute_with_retry("alice", AccountCommand::Deposit(5), 3)
        .await
        .unwrap_or_else(|error| panic!("the retried command failed: {error}"));
    assert_eq!(executed.retries, 2);
    assert_eq!(executed.events, vec![AccountEvent::Deposited { amount: 5 }]);
    assert_eq!(executed.loaded.version, 4);
    assert_eq!(executed.loaded.state, account("Alice", 2005, 3));
    assert_eq!(executed.position, Some(Position(4)));
    assert_eq!(
        racing.reads_from(),
        vec![1, 2, 3],
        "each read starts after the last one"
    );
    let alice = load(&accounts, "alice").await;
    assert_eq!((alice.state, alice.version), (executed.loaded.state, 4));
}

/// Out of retries, the conflict is returned and the command's events are not stored.
pub(crate) async fn retry_gives_up_after_max_retries<S: EventStore>(store: S) {
    let racing = RaceStore::new(store.clone());
    let accounts = Repository::<Account, _>::new(racing.clone());
    run(&accounts, "alice", AccountCommand::Open("Alice".into())).await;
    racing.arm(5);
    let result = accounts
        .execute_with_retry("alice", AccountCommand::Deposit(5), 2)
        .await;
    match &result {
        Err(error) if error.is_conflict() => {}
        other => panic!("expected a conflict after 2 retries, got {other:?}"),
    }
    let stored = stream_events(&store, "account-alice").await;
    assert_eq!(stored.len(), 4, "the open and three competing deposits");
    let alice = load(&accounts, "alice").await;
    assert_eq!(alice.state, account("Alice", 3000, 3));
    assert_eq!(racing.hooks().races.load(Ordering::SeqCst), 2);
}

/// `snapshot_every(3)` saves a snapshot whenever a command crosses a multiple of 3, with
/// the state at that version.
pub(crate) async fn snapshot_policy_saves_snapshots<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone()).snapshot_every(3);
    run(&accounts, "alice", AccountCommand::Open("Alice".into())).await;
    run(&accounts, "alice", AccountCommand::Deposit(1)).await;
    assert_eq!(
        store.load_snapshot("account-alice").await.expect("load"),
        None
    );
    let third = run(&accounts, "alice", AccountCommand::Deposit(2)).await;
    assert!(third.snapshot_error.is_none());
    let snapshot = store
        .load_snapshot("account-alice")
        .await
        .expect("load")
        .expect("a snapshot at version 3");
    assert_eq!(
        (
            snapshot.stream_id.as_str(),
            snapshot.version,
            snapshot.schema_version
        ),
        ("account-alice", 3, 1)
    );
    assert_eq!(
        serde_json::from_slice::<Account>(&snapshot.state).expect("a JSON state"),
        account("Alice", 3, 2)
    );
    for amount in [10, 20, 30, 40] {
        run(&accounts, "alice", AccountCommand::Deposit(amount)).await;
    }
    let snapshot = store
        .load_snapshot("account-alice")
        .await
        .expect("load")
        .expect("a snapshot at version 6");
    assert_eq!(snapshot.version, 6);
    assert_eq!(
        serde_json::from_slice::<Account>(&snapshot.state).expect("a JSON state"),
        account("Alice", 63, 5)
    );
    let alice = load(&accounts, "alice").await;
    assert_eq!((alice.state, alice.version), (account("Alice", 103, 6), 7));
}

/// `load` starts from the stored snapshot and folds only the events after it (shown with a
/// snapshot whose state differs from the events' fold).
pub(crate) async fn load_starts_from_snapshot<S: EventStore>(store: S) {
    let plain = Repository::<Account, _>::new(store.clone());
    run(&plain, "alice", AccountCommand::Open("Alice".into())).await;
    for amount in [1, 2, 3] {
        run(&plain, "alice", AccountCommand::Deposit(amount)).await;
    }
    let marker = account("Snapshot", 1_000_000, 0);
    store
        .save_snapshot(Snapshot {
            stream_id: "account-alice".into(),
            version: 3,
            schema_version: 1,
            state: serde_json::to_vec(&marker).expect("encode"),
        })
        .await
        .expect("save snapshot");
    let snapshotting = Repository::<Account, _>::new(store.clone()).snapshot_every(100);
    let loaded = load(&snapshotting, "alice").await;
    assert_eq!(
        (loaded.state, loaded.version),
        (account("Snapshot", 1_000_003, 1), 4)
    );
    let true_state = load(&plain, "alice").await;
    assert_eq!(
        (true_state.state, true_state.version),
        (account("Alice", 6, 3), 4)
    );
}

/// A snapshot of another schema version, or one that no longer parses, is ignored and the
/// state rebuilt from the events.
pub(crate) async fn stale_snapshot_schema_ignored<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone()).snapshot_every(100);
    run(
        &accounts,
        "alice",
        AccountCommand::OpenWithDeposit("Alice".into(), 9),
    )
    .await;
    for (schema_version, state) in [
        (
            99,
            serde_json::to_vec(&account("Stale", 1, 0)).expect("encode"),
        ),
        (1, b"not json".to_vec()),
    ] {
        store
            .save_snapshot(Snapshot {
                stream_id: "account-alice".into(),
                version: 2,
                schema_version,
                state,
            })
            .await
            .expect("save snapshot");
        let loaded = load(&accounts, "alice").await;
        assert_eq!((loaded.state, loaded.version), (account("Alice", 9, 1), 2));
    }
}

/// Stores the v1 history an older release wrote for `account-old` (positions 1..=3).
async fn v1_history<S: EventStore>(store: &S) {
    append_ok(
        store,
        "account-old",
        ExpectedVersion::NoStream,
        vec![
            raw("AccountOpened", 1, r#"{"Opened":{"owner":"Old"}}"#),
            raw("MoneyDeposited", 1, r#"{"Deposited":{"value":7}}"#),
            raw("MoneyDeposited", 1, r#"{"Deposited":{"value":5}}"#),
        ],
    )
    .await;
}

/// A repository with an upcaster loads v1 events as v2, appends new events as v2, and
/// never rewrites the stored v1 events.
pub(crate) async fn upcaster_applied_on_load<S: EventStore>(store: S) {
    v1_history(&store).await;
    let stored_v1 = stream_events(&store, "account-old").await;
    let accounts = Repository::<Account, _>::new(store.clone()).upcaster(deposit_v1_to_v2());
    let loaded = load(&accounts, "old").await;
    assert_eq!((loaded.state, loaded.version), (account("Old", 12, 2), 3));
    let executed = run(&accounts, "old", AccountCommand::Withdraw(12)).await;
    assert_eq!(executed.loaded.state.balance, 0);
    let stored = stream_events(&store, "account-old").await;
    assert_eq!(stored[..3], stored_v1[..]);
    assert_eq!(
        (stored[3].event_type.as_str(), stored[3].schema_version),
        ("MoneyWithdrawn", 2)
    );
}

/// Without the upcaster, a v1 payload that no longer fits is a decode error naming the
/// event; a schema newer than the code is refused as from the future.
pub(crate) async fn missing_upcaster_is_decode_error<S: EventStore>(store: S) {
    v1_history(&store).await;
    let accounts = Repository::<Account, _>::new(store.clone());
    match accounts.load("old").await {
        Err(CommandError::Decode(DecodeError::Payload {
            event_type,
            schema_version,
            position,
            ..
        })) => assert_eq!(
            (event_type.as_str(), schema_version, position),
            ("MoneyDeposited", 1, 2)
        ),
        other => panic!("expected a payload decode error, got {other:?}"),
    }
    append_ok(
        &store,
        "account-future",
        ExpectedVersion::NoStream,
        vec![raw("AccountOpened", 3, r#"{"Opened":{"owner":"Future"}}"#)],
    )
    .await;
    match accounts.load("future").await {
        Err(CommandError::Decode(DecodeError::FromTheFuture {
            event_type,
            schema_version,
            known,
        })) => assert_eq!(
            (event_type.as_str(), schema_version, known),
            ("AccountOpened", 3, 2)
        ),
        other => panic!("expected a from-the-future decode error, got {other:?}"),
    }
}

/// The same upcasters decode events delivered by a subscription (the projection path).
pub(crate) async fn upcasters_on_subscription_path<S: EventStore>(store: S) {
    v1_history(&store).await;
    let accounts = Repository::<Account, _>::new(store.clone());
    run(
        &accounts,
        "new",
        AccountCommand::OpenWithDeposit("New".into(), 3),
    )
    .await;
    let upcasters = Upcasters::new().with(deposit_v1_to_v2());
    let mut subscription = Subscription::all(store.clone(), Position::START).batch_size(2);
    let mut decoded = Vec::new();
    for _ in 0..5 {
        let recorded = within("the subscription", subscription.next())
            .await
            .unwrap_or_else(|error| panic!("the subscription failed: {error}"));
        decoded.push(
            upcasters
                .decode::<AccountEvent>(&recorded)
                .unwrap_or_else(|error| panic!("decoding {recorded:?}: {error}")),
        );
    }
    assert_eq!(
        decoded,
        vec![
            AccountEvent::Opened {
                owner: "Old".into()
            },
            AccountEvent::Deposited { amount: 7 },
            AccountEvent::Deposited { amount: 5 },
            AccountEvent::Opened {
                owner: "New".into()
            },
            AccountEvent::Deposited { amount: 3 },
        ]
    );
}

/// `execute_with_metadata` stores the metadata on every event of the command.
pub(crate) async fn metadata_on_command_events<S: EventStore>(store: S) {
    let accounts = Repository::<Account, _>::new(store.clone());
    let correlation = uuid::Uuid::new_v4();
    let cause = flowbed_eventsourcing::EventId::new();
    let metadata = Metadata::default()
        .correlation_id(correlation)
        .caused_by(cause)
        .with("user", "operator-7");
    accounts
        .execute_with_metadata(
            "m",
            AccountCommand::OpenWithDeposit("M".into(), 4),
            metadata.clone(),
            0,
        )
        .await
        .unwrap_or_else(|error| panic!("the command failed: {error}"));
    let stored = stream_events(&store, "account-m").await;
    assert_eq!(stored.len(), 2);
    for event in &stored {
        assert_eq!(event.metadata, metadata);
    }
}

/// Eight tasks depositing into one account with retries: every deposit lands exactly once.
pub(crate) async fn concurrent_commands_with_retry<S: EventStore>(store: S) {
    const TASKS: usize = 8;
    const EACH: usize = 5;
    let accounts = Repository::<Account, _>::new(store.clone());
    run(&accounts, "shared", AccountCommand::Open("Shared".into())).await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (accounts, barrier) = (accounts.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..EACH {
                accounts
                    .execute_with_retry("shared", AccountCommand::Deposit(1), 1000)
                    .await
                    .unwrap_or_else(|error| panic!("a deposit failed: {error}"));
            }
        }));
    }
    for task in tasks {
        within("a depositing task", task)
            .await
            .expect("a depositing task panicked");
    }
    let shared = load(&accounts, "shared").await;
    let total = (TASKS * EACH) as i64;
    assert_eq!(
        (shared.state, shared.version),
        (account("Shared", total, total as u32), total as u64 + 1)
    );
    let stored = stream_events(&store, "account-shared").await;
    assert_eq!(
        stored.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=total as u64 + 1).collect::<Vec<_>>()
    );
}
