//! The thread-safety and pinning promises of every public type, checked at compile time.

use flowbed_lockfree::channel::{Receiver, Recv, Send as SendFuture, Sender};
use flowbed_lockfree::spsc::{Consumer, Producer};
use flowbed_lockfree::{ArrayQueue, PopError, PushError, SegQueue};

use flowbed_testkit::thread_safety::{error, send, sync, unpin};

/// A type that is `Send` but not `Sync`, to show the queues only need `T: Send`.
type SendOnly = std::cell::Cell<u32>;

#[test]
fn queues_are_send_and_sync_for_send_values() {
    send::<ArrayQueue<SendOnly>>();
    sync::<ArrayQueue<SendOnly>>();
    send::<SegQueue<SendOnly>>();
    sync::<SegQueue<SendOnly>>();
    unpin::<ArrayQueue<SendOnly>>();
    unpin::<SegQueue<SendOnly>>();
}

#[test]
fn spsc_ends_are_send() {
    send::<Producer<SendOnly>>();
    send::<Consumer<SendOnly>>();
    sync::<Producer<SendOnly>>();
    sync::<Consumer<SendOnly>>();
}

#[test]
fn channel_ends_and_futures_are_send_sync_unpin() {
    send::<Sender<SendOnly>>();
    sync::<Sender<SendOnly>>();
    send::<Receiver<SendOnly>>();
    sync::<Receiver<SendOnly>>();
    send::<SendFuture<'static, SendOnly>>();
    send::<Recv<'static, SendOnly>>();
    unpin::<SendFuture<'static, SendOnly>>();
    unpin::<Recv<'static, SendOnly>>();
}

#[test]
fn errors_are_send_sync_and_std_errors() {
    error::<PushError<u32>>();
    error::<PopError>();
}
