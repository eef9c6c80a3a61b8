//! What a window operator emits: [`WindowEvent`], [`WindowResult`], [`Firing`].

use super::Window;

/// Why a window fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Firing {
    /// The watermark (or the processing clock, or end of input) passed the window's end;
    /// also every count-window firing.
    OnTime,
    /// A late event (behind the watermark, within the allowed lateness) updated a window
    /// whose end the watermark had already passed; the window fires again at once with
    /// the updated value. Replace the earlier result of the same key and window.
    Late,
}

/// One fired window: which key, which window, the aggregate and why it fired.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowResult<K, Out> {
    /// The key the window belongs to (`()` without [`key_by`](super::Windowing::key_by)).
    pub key: K,
    /// The window's range.
    pub window: Window,
    /// The aggregator's output over every event of the window so far.
    pub value: Out,
    /// Why it fired.
    pub firing: Firing,
}

/// An item of a window operator's output: a fired window, or a late event on the side
/// output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WindowEvent<K, Out, T> {
    /// A window fired.
    Fired(WindowResult<K, Out>),
    /// An event that came too late for every window it belongs to (behind the watermark
    /// by more than the allowed lateness): the side output for late events.
    Late(T),
}

impl<K, Out, T> WindowEvent<K, Out, T> {
    /// The fired window, if this is one: `flow.filter_map(WindowEvent::into_fired)`
    /// drops the late events.
    pub fn into_fired(self) -> Option<WindowResult<K, Out>> {
        match self {
            Self::Fired(result) => Some(result),
            Self::Late(_) => None,
        }
    }

    /// The late event, if this is one: `flow.filter_map(WindowEvent::into_late)` keeps
    /// only the side output.
    pub fn into_late(self) -> Option<T> {
        match self {
            Self::Late(event) => Some(event),
            Self::Fired(_) => None,
        }
    }

    /// Whether this is a late event.
    pub fn is_late(&self) -> bool {
        matches!(self, Self::Late(_))
    }
}
