//! The registry's map: shards of `HashMap`s behind reader-writer locks, each key hashed
//! once per lookup.
//!
//! std's `HashMap` hashes the key it is given, and the shard index needs a hash too.
//! To hash once, the map's keys are [`Slot`]s that carry their hash, the map's hasher
//! passes that hash through, and lookups borrow a slot as a `dyn` [`Probe`] so a
//! `(hash, &K)` pair can be looked up without cloning the key.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use crossbeam_utils::CachePadded;

use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, read, write};

/// A key stored with its hash.
pub(crate) struct Slot<K> {
    pub(crate) hash: u64,
    pub(crate) key: K,
}

/// A key and its hash, owned ([`Slot`]) or borrowed ([`Lookup`]).
pub(crate) trait Probe<K> {
    fn hash(&self) -> u64;
    fn key(&self) -> &K;
}

impl<K> Probe<K> for Slot<K> {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn key(&self) -> &K {
        &self.key
    }
}

/// A borrowed key and its hash, to look a slot up with.
pub(crate) struct Lookup<'k, K> {
    pub(crate) hash: u64,
    pub(crate) key: &'k K,
}

impl<K> Probe<K> for Lookup<'_, K> {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn key(&self) -> &K {
        self.key
    }
}

// `Borrow` requires the borrowed form to hash and compare like the owned one: both hash
// as the stored hash alone and compare hash and key.
impl<'a, K: 'a> Borrow<dyn Probe<K> + 'a> for Slot<K> {
    fn borrow(&self) -> &(dyn Probe<K> + 'a) {
        self
    }
}

impl<K> Hash for dyn Probe<K> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(Probe::hash(self));
    }
}

impl<K: Eq> PartialEq for dyn Probe<K> + '_ {
    fn eq(&self, other: &Self) -> bool {
        Probe::hash(self) == Probe::hash(other) && self.key() == other.key()
    }
}

impl<K: Eq> Eq for dyn Probe<K> + '_ {}

impl<K> Hash for Slot<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: Eq> PartialEq for Slot<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Slot<K> {}

/// Hands the precomputed hash of a [`Slot`] or [`Probe`] to the table unchanged.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called; fold anything else in rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
}

pub(crate) type Shard<K, V> = HashMap<Slot<K>, V, BuildHasherDefault<PassThrough>>;

/// One shard, on its own cache line(s).
type LockedShard<K, V> = CachePadded<RwLock<Shard<K, V>>>;

pub(crate) struct Shards<K, V, S> {
    shards: Box<[LockedShard<K, V>]>,
    /// `64 - log2(shard count)`.
    shift: u32,
    hasher: S,
}

impl<K: Hash + Eq, V, S: BuildHasher> Shards<K, V, S> {
    /// `count` shards (a power of two, at least 1).
    pub(crate) fn new(count: usize, hasher: S) -> Self {
        debug_assert!(count.is_power_of_two());
        Self {
            shards: (0..count)
                .map(|_| CachePadded::new(RwLock::new(HashMap::default())))
                .collect(),
            shift: 64 - count.trailing_zeros(),
            hasher,
        }
    }

    pub(crate) fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of `hash`: the bits below the top 7, which the table uses as tags
    /// (its bucket index comes from the low bits).
    pub(crate) fn index(&self, hash: u64) -> usize {
        if self.shift == 64 {
            return 0;
        }
        ((hash << 7) >> self.shift) as usize
    }

    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    pub(crate) fn read(&self, index: usize) -> RwLockReadGuard<'_, Shard<K, V>> {
        read(&self.shards[index])
    }

    pub(crate) fn write(&self, index: usize) -> RwLockWriteGuard<'_, Shard<K, V>> {
        write(&self.shards[index])
    }
}

/// Finds `key` (whose hash is `hash`) in a locked shard.
#[inline]
pub(crate) fn find<'s, K: Eq, V>(shard: &'s Shard<K, V>, hash: u64, key: &K) -> Option<&'s V> {
    shard.get(&Lookup { hash, key } as &dyn Probe<K>)
}

/// Removes `key` from a write-locked shard.
pub(crate) fn take<K: Eq, V>(shard: &mut Shard<K, V>, hash: u64, key: &K) -> Option<V> {
    shard.remove(&Lookup { hash, key } as &dyn Probe<K>)
}
