//! Loom models of the actor lifecycle's lock-free parts (`flowbed_actor::loom_api`), with
//! two or three threads each:
//! * `RefCount`: of two references dropped at once exactly one is the last, and it sees
//!   what the other did before its drop; a weak reference upgraded while the last strong
//!   one is dropped never loses the "unreferenced" stop (the actor re-checks the count on
//!   each signal, and either sees zero or gets another signal), and when the actor does
//!   see zero, the dropped holder's writes are visible to it.
//! * `KillSwitch`: a kill on one thread always wakes a task waiting in `poll_killed` on
//!   another (no lost wake-up), also after `reset()` for the next run.
//! * `Doorbell`: two senders push a message each and ring while the actor takes messages
//!   and sleeps between them (arm, look again, sleep): it always gets both, never sleeps
//!   through one (no lost wake-up).
//! * `ExitWatchers`: a watcher added while the actor finishes is either returned by
//!   `finish()` or handed back by `add()`, exactly once; a `remove()` racing `finish()`
//!   removes it or sees it finished, never both and never a duplicate.
//!
//! Run: `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3
//! CARGO_TARGET_DIR=/work/target-loom cargo test --release -p flowbed-actor --test loom`.
#![cfg(flowbed_loom)]

use std::future::poll_fn;

use flowbed_actor::loom_api::{Doorbell, ExitWatchers, KillSwitch, RefCount};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn of_two_concurrent_drops_exactly_one_is_the_last_and_sees_the_others_writes() {
    loom::model(|| {
        let refs = Arc::new(RefCount::new());
        refs.acquire(); // a clone: two strong references
        // What each holder wrote before dropping its reference (relaxed on purpose: only
        // the reference count may order it).
        let writes = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let holders: Vec<_> = (0..2)
            .map(|holder| {
                let (refs, writes) = (refs.clone(), writes.clone());
                thread::spawn(move || {
                    writes[holder].store(holder + 1, Ordering::Relaxed);
                    if refs.release() {
                        let seen = [
                            writes[0].load(Ordering::Relaxed),
                            writes[1].load(Ordering::Relaxed),
                        ];
                        assert_eq!(seen, [1, 2], "the last holder sees every earlier write");
                        1
                    } else {
                        0
                    }
                })
            })
            .collect();
        let lasts: usize = holders
            .into_iter()
            .map(|holder| holder.join().expect("no panic"))
            .sum();
        assert_eq!(lasts, 1, "exactly one drop is the last");
        assert!(refs.is_unreferenced());
        assert_eq!(refs.count(), 0);
    });
}

#[test]
fn an_upgrade_racing_the_last_drop_never_loses_the_stop() {
    loom::model(|| {
        let refs = Arc::new(RefCount::new()); // held by `last`
        let signals = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicUsize::new(0));

        // The last strong reference is dropped.
        let last = {
            let (refs, signals, written) = (refs.clone(), signals.clone(), written.clone());
            thread::spawn(move || {
                written.store(1, Ordering::Relaxed);
                if refs.release() {
                    signals.fetch_add(1, Ordering::Release);
                }
            })
        };
        // Meanwhile a weak reference is upgraded, used, and dropped.
        let upgrader = {
            let (refs, signals) = (refs.clone(), signals.clone());
            thread::spawn(move || {
                refs.acquire();
                if refs.release() {
                    signals.fetch_add(1, Ordering::Release);
                }
            })
        };

        // The actor: on each "unreferenced" signal it checks the count again and stops
        // only if it is zero. A lost stop would spin here until loom gives up.
        let mut handled = 0;
        loop {
            if signals.load(Ordering::Acquire) == handled {
                thread::yield_now();
                continue;
            }
            handled += 1;
            if refs.is_unreferenced() {
                assert_eq!(
                    written.load(Ordering::Relaxed),
                    1,
                    "the dropped holder's writes are visible once the count is seen at zero"
                );
                break;
            }
        }

        last.join().expect("no panic");
        upgrader.join().expect("no panic");
        let signals = signals.load(Ordering::Acquire);
        // One signal per drop to zero: two only if the upgrade came after the first one.
        assert!((1..=2).contains(&signals), "{signals} signals");
        assert!(handled <= signals);
        assert!(refs.is_unreferenced());
    });
}

#[test]
fn a_kill_always_wakes_the_waiting_task_also_after_a_reset() {
    loom::model(|| {
        let switch = Arc::new(KillSwitch::new());
        for _run in 0..2 {
            assert!(!switch.is_killed());
            let killer = {
                let switch = switch.clone();
                thread::spawn(move || switch.kill())
            };
            // Blocks for ever (loom reports a deadlock) if the wake-up is lost.
            loom::future::block_on(poll_fn(|cx| switch.poll_killed(cx)));
            assert!(switch.is_killed());
            killer.join().expect("no panic");
            switch.reset();
        }
        assert!(!switch.is_killed());
    });
}

#[test]
fn a_ring_after_a_push_always_wakes_the_sleeping_actor() {
    loom::model(|| {
        let doorbell = Arc::new(Doorbell::new());
        // The mailbox: messages pushed so far (the actor takes them in order).
        let pushed = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let (doorbell, pushed) = (doorbell.clone(), pushed.clone());
                thread::spawn(move || {
                    pushed.fetch_add(1, Ordering::Relaxed);
                    doorbell.ring();
                })
            })
            .collect();
        let mut taken = 0;
        while taken < 2 {
            // Blocks for ever (loom reports a deadlock) if a wake-up is lost.
            loom::future::block_on(poll_fn(|cx| {
                if pushed.load(Ordering::Relaxed) > taken {
                    return std::task::Poll::Ready(());
                }
                doorbell.arm(cx.waker());
                if pushed.load(Ordering::Relaxed) > taken {
                    doorbell.disarm();
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            }));
            taken += 1;
        }
        for sender in senders {
            sender.join().expect("no panic");
        }
    });
}

#[test]
fn a_watcher_added_while_finishing_is_notified_exactly_once() {
    loom::model(|| {
        let watchers = Arc::new(ExitWatchers::<u32>::new());
        watchers.add(1).expect("running");
        let adders: Vec<_> = [2, 3]
            .into_iter()
            .map(|watcher| {
                let watchers = watchers.clone();
                thread::spawn(move || watchers.add(watcher).err())
            })
            .collect();
        let mut notified = watchers.finish();
        for adder in adders {
            // Handed back: the caller notifies it itself.
            notified.extend(adder.join().expect("no panic"));
        }
        notified.sort_unstable();
        assert_eq!(notified, [1, 2, 3], "every watcher exactly once");
        assert!(watchers.finish().is_empty(), "finished once");
        assert_eq!(watchers.add(4), Err(4));
    });
}

#[test]
fn a_remove_racing_finish_is_seen_or_too_late_never_both() {
    loom::model(|| {
        let watchers = Arc::new(ExitWatchers::<u32>::new());
        for watcher in 1..=3 {
            watchers.add(watcher).expect("running");
        }
        let remover = {
            let watchers = watchers.clone();
            thread::spawn(move || watchers.remove(|watcher| *watcher == 2))
        };
        let notified = watchers.finish();
        remover.join().expect("no panic");
        assert!(
            notified == [1, 2, 3] || notified == [1, 3],
            "finish() took {notified:?}"
        );
        watchers.remove(|_| true);
        assert!(watchers.finish().is_empty());
        assert_eq!(watchers.add(2), Err(2));
    });
}
