//! A typed registry of named actors: register, look up by a typed [`Name`], removed
//! automatically when the actor ends.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock, Weak};

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::cell::Watcher;
use crate::error::{LookupError, RegisterError};
use crate::exit::ActorId;
use crate::sync::{Mutex, lock};

/// A name for an actor of type `A`: looking it up yields an `ActorRef<A>`, checked at
/// compile time. Declare names as constants.
///
/// # Examples
///
/// ```
/// use flowbed_actor::{Actor, BoxError, Context, Name, Registry};
///
/// struct Sessions;
/// impl Actor for Sessions {
///     type Args = ();
///     async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Sessions)
///     }
/// }
///
/// const SESSIONS: Name<Sessions> = Name::new("sessions");
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let registry = Registry::new();
/// let sessions = Sessions::spawn(());
/// registry.register(&SESSIONS, &sessions).unwrap();
/// assert_eq!(registry.lookup(&SESSIONS).unwrap(), sessions);
///
/// sessions.stop();
/// sessions.wait_for_stop().await;
/// assert!(registry.lookup(&SESSIONS).is_err()); // removed when it stopped
/// # }
/// ```
pub struct Name<A> {
    name: Cow<'static, str>,
    _actor: PhantomData<fn() -> A>,
}

impl<A> Name<A> {
    /// A name known at compile time.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            _actor: PhantomData,
        }
    }

    /// A name built at run time (`format!("session-{id}")`).
    pub fn owned(name: String) -> Self {
        Self {
            name: Cow::Owned(name),
            _actor: PhantomData,
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl<A> Clone for Name<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            _actor: PhantomData,
        }
    }
}

impl<A> fmt::Debug for Name<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name<{}>({:?})", std::any::type_name::<A>(), self.name)
    }
}

struct Entry {
    id: ActorId,
    type_name: &'static str,
    actor_ref: Box<dyn Any + Send + Sync>,
}

type Entries = Mutex<HashMap<String, Entry>>;

/// Named actors. A registered actor is held (a strong reference) until it ends; its entry
/// is then removed automatically. [`Registry::global`] is one per process; build more with
/// [`Registry::new`] (tests, subsystems).
#[derive(Clone, Default)]
pub struct Registry {
    entries: Arc<Entries>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// Registers `actor` under `name`.
    ///
    /// # Errors
    ///
    /// [`RegisterError::NameTaken`] if a running actor has the name;
    /// [`RegisterError::Stopped`] if `actor` has already ended.
    pub fn register<A: Actor>(
        &self,
        name: &Name<A>,
        actor: &ActorRef<A>,
    ) -> Result<(), RegisterError> {
        {
            let mut entries = lock(&self.entries);
            if entries.contains_key(name.as_str()) {
                return Err(RegisterError::NameTaken(name.as_str().to_owned()));
            }
            entries.insert(
                name.as_str().to_owned(),
                Entry {
                    id: actor.id(),
                    type_name: std::any::type_name::<A>(),
                    actor_ref: Box::new(actor.clone()),
                },
            );
        }
        let entries = Arc::downgrade(&self.entries);
        let key = name.as_str().to_owned();
        let removal = Watcher::Hook(Box::new(move |id, _| remove_if(&entries, &key, id)));
        if actor.cell.core.watchers.add(removal).is_err() {
            remove_if(&Arc::downgrade(&self.entries), name.as_str(), actor.id());
            return Err(RegisterError::Stopped);
        }
        Ok(())
    }

    /// The actor registered under `name`.
    ///
    /// # Errors
    ///
    /// [`LookupError::NotFound`], or [`LookupError::WrongType`] when the text of the name
    /// was registered for another actor type.
    pub fn lookup<A: Actor>(&self, name: &Name<A>) -> Result<ActorRef<A>, LookupError> {
        let entries = lock(&self.entries);
        let entry = entries
            .get(name.as_str())
            .ok_or_else(|| LookupError::NotFound(name.as_str().to_owned()))?;
        entry
            .actor_ref
            .downcast_ref::<ActorRef<A>>()
            .cloned()
            .ok_or_else(|| LookupError::WrongType {
                name: name.as_str().to_owned(),
                expected: std::any::type_name::<A>(),
                actual: entry.type_name,
            })
    }

    /// Removes the name; true if it was registered.
    pub fn unregister<A>(&self, name: &Name<A>) -> bool {
        lock(&self.entries).remove(name.as_str()).is_some()
    }

    /// The names registered now, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.entries).keys().cloned().collect();
        names.sort();
        names
    }

    /// How many names are registered.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// True if no name is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes `key` if it still names actor `id` (it may have been re-registered since).
fn remove_if(entries: &Weak<Entries>, key: &str, id: ActorId) {
    if let Some(entries) = entries.upgrade() {
        let mut entries = lock(&entries);
        if entries.get(key).is_some_and(|entry| entry.id == id) {
            // Dropping the entry drops its strong reference outside our lock's concern:
            // the actor has ended, so no signal is acted on.
            entries.remove(key);
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish()
    }
}
