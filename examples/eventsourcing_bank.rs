//! Bank accounts on the embedded SQLite event store, with 16 concurrent tellers and a live
//! projection.
//!
//! Sixteen teller tasks run random deposits and withdrawals against 64 accounts through a
//! `Repository` (optimistic concurrency, retries that re-read only the missed events,
//! a snapshot every 50 events). Meanwhile a projection follows the global log with a
//! catch-up subscription and keeps the total of all balances, checkpointing as it goes; it
//! is stopped halfway and resumed from its checkpoint, as after a restart. At the end the
//! example checks that the projection saw every event exactly once, in position order, and
//! that its total equals the sum of the accounts' balances loaded from the store; it exits
//! non-zero otherwise.
//!
//! Run: `cargo run --release --example eventsourcing_bank [-- --commands N]`

use std::time::Instant;

use flowbed::eventsourcing::sqlite::SqliteStore;
use flowbed::eventsourcing::{
    Aggregate, CommandError, DomainEvent, EventStore, Position, Repository, Subscription, Upcasters,
};
use serde::{Deserialize, Serialize};

const ACCOUNTS: u64 = 64;
const TELLERS: u64 = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum AccountEvent {
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::Deposited { .. } => "MoneyDeposited",
            AccountEvent::Withdrawn { .. } => "MoneyWithdrawn",
        }
    }
}

#[derive(Debug, Clone)]
enum AccountCommand {
    Deposit(u64),
    Withdraw(u64),
}

#[derive(Debug, thiserror::Error)]
#[error("insufficient funds")]
struct InsufficientFunds;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    balance: u64,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = InsufficientFunds;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, InsufficientFunds> {
        match command {
            AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited { amount }]),
            AccountCommand::Withdraw(amount) if amount > self.balance => Err(InsufficientFunds),
            AccountCommand::Withdraw(amount) => Ok(vec![AccountEvent::Withdrawn { amount }]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

/// The projection: the sum of all balances, built from the global log.
struct TotalBalance {
    total: i128,
    events: u64,
}

impl TotalBalance {
    /// Folds events until the projection has seen `until`; checks positions are dense.
    async fn follow(
        &mut self,
        subscription: &mut Subscription<SqliteStore>,
        upcasters: &Upcasters,
        until: Position,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        while subscription.position() < until {
            let expected = subscription.position().next();
            let event = subscription.next().await?;
            if event.position != expected {
                return Err(format!(
                    "projection got position {} after {}",
                    event.position,
                    expected.0 - 1
                )
                .into());
            }
            match upcasters.decode::<AccountEvent>(&event)? {
                AccountEvent::Deposited { amount } => self.total += i128::from(amount),
                AccountEvent::Withdrawn { amount } => self.total -= i128::from(amount),
            }
            self.events += 1;
        }
        Ok(())
    }
}

fn parse_commands() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--commands")
        .and_then(|index| args.get(index + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(40_000)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let commands = parse_commands();
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("bank.db"))?;
    let accounts = Repository::<Account, _>::new(store.clone()).snapshot_every(50);
    let upcasters = Upcasters::new();

    // The projection runs alongside the tellers, then "restarts" from its checkpoint.
    let projection_store = store.clone();
    let projection_upcasters = upcasters.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Position>();
    let projection = tokio::spawn(async move {
        let mut view = TotalBalance {
            total: 0,
            events: 0,
        };
        let mut subscription =
            Subscription::resume(projection_store.clone(), "total-balance").await?;
        // First life: follow live until some events are in, then checkpoint and stop.
        let halfway = loop {
            let head = projection_store.head().await?;
            if head.0 > 1_000 {
                break head;
            }
            tokio::task::yield_now().await;
        };
        view.follow(&mut subscription, &projection_upcasters, halfway)
            .await?;
        subscription.save_checkpoint("total-balance").await?;
        drop(subscription);
        // Second life: resume from the checkpoint and follow to the final head.
        let mut resumed = Subscription::resume(projection_store.clone(), "total-balance").await?;
        assert_eq!(resumed.position(), halfway, "resumed from the checkpoint");
        let end = done_rx.await?;
        view.follow(&mut resumed, &projection_upcasters, end)
            .await?;
        resumed.save_checkpoint("total-balance").await?;
        Ok::<TotalBalance, Box<dyn std::error::Error + Send + Sync>>(view)
    });

    let started = Instant::now();
    let mut tellers = Vec::new();
    for teller in 0..TELLERS {
        let accounts = accounts.clone();
        tellers.push(tokio::spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (teller + 1);
            let (mut applied, mut refused, mut retries) = (0u64, 0u64, 0usize);
            for _ in 0..commands / TELLERS {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let account = format!("{}", state % ACCOUNTS);
                let amount = 1 + (state >> 32) % 100;
                let command = if state % 3 == 0 {
                    AccountCommand::Withdraw(amount)
                } else {
                    AccountCommand::Deposit(amount)
                };
                match accounts.execute_with_retry(&account, command, 1_000).await {
                    Ok(executed) => {
                        applied += 1;
                        retries += executed.retries;
                    }
                    Err(CommandError::Rejected(InsufficientFunds)) => refused += 1,
                    Err(other) => return Err(other.to_string()),
                }
            }
            Ok((applied, refused, retries))
        }));
    }
    let (mut applied, mut refused, mut retries) = (0, 0, 0);
    for teller in tellers {
        let (a, r, c) = teller.await??;
        applied += a;
        refused += r;
        retries += c;
    }
    let elapsed = started.elapsed();
    let head = store.head().await?;
    let _ = done_tx.send(head);
    let view = projection.await?.map_err(|error| error.to_string())?;

    let mut sum_of_balances = 0i128;
    for account in 0..ACCOUNTS {
        sum_of_balances += i128::from(accounts.load(&account.to_string()).await?.state.balance);
    }
    println!(
        "{applied} commands applied, {refused} refused (insufficient funds), {retries} conflict retries, in {:.2?} ({:.0} commands/s)",
        elapsed,
        applied as f64 / elapsed.as_secs_f64()
    );
    println!(
        "store head {head}; projection saw {} events (resumed once from its checkpoint), total {}; sum of balances {}",
        view.events, view.total, sum_of_balances
    );
    if view.events != head.0 || head.0 != applied {
        return Err(format!(
            "projection saw {} events, head is {head}, {applied} applied",
            view.events
        )
        .into());
    }
    if view.total != sum_of_balances {
        return Err(format!(
            "projection total {} != sum of balances {sum_of_balances}",
            view.total
        )
        .into());
    }
    println!("ok: every event seen exactly once, in order; projection matches the accounts");
    Ok(())
}
