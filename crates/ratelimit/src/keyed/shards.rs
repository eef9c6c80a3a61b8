//! The keyed limiter's map: GCRA states in shards of hash tables behind reader-writer
//! locks, each key hashed once.
//!
//! The same layout as dashmap (which governor's keyed limiter uses), without its
//! per-shard `HashMap` wrappers: each shard is a `hashbrown::HashTable` of `(key, state)`
//! pairs looked up with the one hash computed per check. Checks on existing keys take a
//! shard's read lock and update the key's state with a compare-and-swap, so checks of
//! different keys in one shard run in parallel; inserting, forgetting and sweeping take
//! the write lock.

use std::hash::{BuildHasher, Hash};

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;

use crate::gcra::GcraCell;
use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, read, write};

pub(crate) type Shard<K> = HashTable<(K, GcraCell)>;

pub(crate) struct Shards<K, S> {
    shards: Box<[CachePadded<RwLock<Shard<K>>>]>,
    /// `64 - log2(shard count)`.
    shift: u32,
    hasher: S,
}

impl<K: Hash + Eq, S: BuildHasher> Shards<K, S> {
    /// `count` shards (a power of two, at least 1).
    pub(crate) fn new(count: usize, hasher: S) -> Self {
        debug_assert!(count.is_power_of_two());
        Self {
            shards: (0..count)
                .map(|_| CachePadded::new(RwLock::new(HashTable::new())))
                .collect(),
            shift: 64 - count.trailing_zeros(),
            hasher,
        }
    }

    pub(crate) fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn index(&self, hash: u64) -> usize {
        if self.shift == 64 {
            return 0;
        }
        // Below the top 7 bits, which the table uses as tags within a shard.
        ((hash << 7) >> self.shift) as usize
    }

    pub(crate) fn read(&self, hash: u64) -> RwLockReadGuard<'_, Shard<K>> {
        read(&self.shards[self.index(hash)])
    }

    pub(crate) fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Shard<K>> {
        write(&self.shards[self.index(hash)])
    }

    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    /// Write-locks shard `index` (for sweeps).
    pub(crate) fn write_shard(&self, index: usize) -> RwLockWriteGuard<'_, Shard<K>> {
        write(&self.shards[index])
    }

    /// Inserts a key known to be absent from the locked `shard`.
    pub(crate) fn insert(&self, shard: &mut Shard<K>, hash: u64, key: K, state: GcraCell) {
        shard.insert_unique(hash, (key, state), |(key, _)| self.hasher.hash_one(key));
    }
}

/// Finds `key`'s state in a locked shard.
pub(crate) fn find<'a, K: Eq>(shard: &'a Shard<K>, hash: u64, key: &K) -> Option<&'a GcraCell> {
    shard
        .find(hash, |(candidate, _)| candidate == key)
        .map(|(_, state)| state)
}
