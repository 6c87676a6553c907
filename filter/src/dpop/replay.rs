//! The DPoP `jti` replay cache (RFC 9449 §11.1), shared by every worker VM of one Envoy process
//! through proxy shared data, in bounded memory.
//!
//! Layout: `buckets` shared-data keys `meshguard/dpop/<n>`, each at most [`PER_BUCKET`] entries
//! of 24 bytes (a 16-byte hash of the proof key's thumbprint and `jti`, and the second after
//! which the proof is refused for its age anyway), behind an 8-byte writer tag. A proof is
//! recorded with a compare-and-swap loop on its bucket: expired entries are dropped on every
//! write, a live entry with the same hash is a replay, and a bucket full of live entries refuses
//! the proof (fail closed: an unrecorded proof could be replayed). Only proofs that passed every
//! other check are recorded, so only holders of a bound token's key can fill the cache.
//!
//! Scope: one Envoy process (shared data is per process and `vm_id`); a proof replayed to
//! another replica within its window is not seen. Window: `iat` + the rule's `maxAgeSeconds`.
//!
//! Proxy-wasm has no conditional create: writing a key that does not exist always succeeds. The
//! buckets are therefore created when a VM is configured ([`ReplayCache::create_buckets`]),
//! before it takes requests; a bucket found missing at request time is created and read back,
//! and the writer tag tells whether another VM overwrote it meanwhile.

use crate::jose::ProofError;
use crate::jwks::{SharedStore, StoreError};

/// Entries per bucket: a write copies one bucket (≤ 1.5 KiB) through the host twice.
pub const PER_BUCKET: usize = 64;
/// Default capacity, in entries (≈ 1.5 MiB of shared data).
pub const DEFAULT_ENTRIES: usize = 65_536;
/// Compare-and-swap attempts before giving up (refused, `dpop_replay_unavailable`).
const MAX_ATTEMPTS: usize = 8;
const ENTRY: usize = 24;
const TAG: usize = 8;

/// One recorded proof: what identifies it and until when it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: [u8; 16],
    pub expires: u64,
}

impl Entry {
    /// The entry of the proof with key thumbprint `jkt` and `jti`, live until `expires`.
    pub fn new(jkt: &[u8; 32], jti: &str, expires: u64) -> Entry {
        let mut input = Vec::with_capacity(32 + jti.len());
        input.extend_from_slice(jkt);
        input.extend_from_slice(jti.as_bytes());
        let digest = meshguard_crypto::sha256(&input);
        let id = digest.first_chunk::<16>().copied().unwrap_or_default();
        Entry { id, expires }
    }
}

/// The cache's shape (from the configuration); the entries live in shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayCache {
    buckets: u32,
}

impl ReplayCache {
    /// A cache of about `entries` entries (rounded up to whole buckets, at least one).
    pub fn new(entries: usize) -> ReplayCache {
        let buckets = entries.div_ceil(PER_BUCKET).max(1);
        ReplayCache {
            buckets: u32::try_from(buckets).unwrap_or(u32::MAX),
        }
    }

    /// Total capacity in entries.
    pub fn capacity(&self) -> usize {
        (self.buckets as usize).saturating_mul(PER_BUCKET)
    }

    /// Creates the buckets that do not exist yet (a VM's configuration, before requests).
    pub fn create_buckets(&self, store: &mut dyn SharedStore, writer: u64) {
        for bucket in 0..self.buckets {
            let key = bucket_key(bucket);
            if store.get(&key).is_none() {
                let _ = store.set(&key, &writer.to_be_bytes(), 0);
            }
        }
    }

    /// Records `entry` at `now`: `Err(Replayed)` when a live entry has its id,
    /// `Err(ReplayCheck)` when its bucket is full of live entries or the store keeps failing.
    pub fn record(
        &self,
        store: &mut dyn SharedStore,
        entry: Entry,
        now: u64,
        writer: u64,
    ) -> Result<(), ProofError> {
        let key = bucket_key(
            u32::from_be_bytes([entry.id[0], entry.id[1], entry.id[2], entry.id[3]]) % self.buckets,
        );
        for _ in 0..MAX_ATTEMPTS {
            let (stored, cas) = store.get(&key).unwrap_or_default();
            let mut live: Vec<Entry> = entries(&stored).filter(|e| e.expires > now).collect();
            if live.iter().any(|e| e.id == entry.id) {
                return Err(ProofError::Replayed);
            }
            if live.len() >= PER_BUCKET {
                return Err(ProofError::ReplayCheck);
            }
            live.push(entry);
            let value = encode(writer, &live);
            match store.set(&key, &value, cas) {
                Ok(()) if cas != 0 => return Ok(()),
                // Created (no CAS possible): recorded only if no other VM overwrote it since.
                Ok(()) => {
                    if store
                        .get(&key)
                        .is_some_and(|(now_stored, _)| now_stored == value)
                    {
                        return Ok(());
                    }
                }
                Err(StoreError::CasMismatch) => {}
                Err(StoreError::Host(_)) => return Err(ProofError::ReplayCheck),
            }
        }
        Err(ProofError::ReplayCheck)
    }
}

fn bucket_key(bucket: u32) -> String {
    format!("meshguard/dpop/{bucket}")
}

/// The entries of a stored bucket (a torn or foreign value reads as fewer entries, never as a
/// panic).
fn entries(stored: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    stored
        .get(TAG..)
        .unwrap_or_default()
        .chunks_exact(ENTRY)
        .filter_map(|chunk| {
            let (id, expires) = chunk.split_first_chunk::<16>()?;
            Some(Entry {
                id: *id,
                expires: u64::from_be_bytes(expires.try_into().ok()?),
            })
        })
}

fn encode(writer: u64, live: &[Entry]) -> Vec<u8> {
    let mut value = Vec::with_capacity(TAG + ENTRY * live.len());
    value.extend_from_slice(&writer.to_be_bytes());
    for e in live {
        value.extend_from_slice(&e.id);
        value.extend_from_slice(&e.expires.to_be_bytes());
    }
    value
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Envoy's shared data: a CAS per key, bumped on every write; a write with CAS 0, or to a
    /// missing key, always succeeds.
    #[derive(Default)]
    struct Shared {
        data: HashMap<String, (Vec<u8>, u32)>,
        next: u32,
    }

    impl SharedStore for Shared {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.data.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            if let Some((_, current)) = self.data.get(key)
                && cas != 0
                && cas != *current
            {
                return Err(StoreError::CasMismatch);
            }
            self.next += 1;
            self.data
                .insert(key.to_owned(), (value.to_vec(), self.next));
            Ok(())
        }
    }

    const JKT: [u8; 32] = [7; 32];

    #[test]
    fn replay_refused_until_expiry() {
        let cache = ReplayCache::new(128);
        let mut shared = Shared::default();
        cache.create_buckets(&mut shared, 1);
        assert_eq!(shared.data.len(), 2);
        let entry = Entry::new(&JKT, "a", 160);
        assert_eq!(cache.record(&mut shared, entry, 100, 1), Ok(()));
        // Another worker (another writer tag), same proof: refused.
        assert_eq!(
            cache.record(&mut shared, entry, 101, 2),
            Err(ProofError::Replayed)
        );
        // Same jti under another key: another proof.
        assert_eq!(
            cache.record(&mut shared, Entry::new(&[8; 32], "a", 160), 101, 2),
            Ok(())
        );
        // Past its window the entry is dropped (the proof itself is refused for its age).
        assert_eq!(cache.record(&mut shared, entry, 160, 2), Ok(()));
    }

    #[test]
    fn full_bucket_fails_closed_and_expired_entries_make_room() {
        let cache = ReplayCache::new(1);
        assert_eq!(cache.capacity(), PER_BUCKET);
        let mut shared = Shared::default();
        for i in 0..PER_BUCKET {
            let entry = Entry::new(&JKT, &i.to_string(), 200);
            assert_eq!(cache.record(&mut shared, entry, 100, 1), Ok(()));
        }
        let one_more = Entry::new(&JKT, "x", 200);
        assert_eq!(
            cache.record(&mut shared, one_more, 100, 1),
            Err(ProofError::ReplayCheck)
        );
        assert_eq!(cache.record(&mut shared, one_more, 200, 1), Ok(()));
        let (stored, _) = shared.get("meshguard/dpop/0").unwrap();
        assert_eq!(stored.len(), TAG + ENTRY, "expired entries are dropped");
    }

    #[test]
    fn lost_race_is_retried() {
        /// A store where another VM records the same proof once, right before (`after: false`)
        /// or right after (`after: true`) our write.
        struct Racy {
            inner: Shared,
            raced: bool,
            after: bool,
        }
        impl Racy {
            fn race(&mut self, key: &str) -> Result<(), StoreError> {
                if self.raced {
                    return Ok(());
                }
                self.raced = true;
                let other = encode(9, &[Entry::new(&JKT, "a", 500)]);
                self.inner.set(key, &other, 0)
            }
        }
        impl SharedStore for Racy {
            fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
                self.inner.get(key)
            }
            fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
                if !self.after {
                    self.race(key)?;
                }
                self.inner.set(key, value, cas)?;
                if self.after {
                    self.race(key)?;
                }
                Ok(())
            }
        }
        let cache = ReplayCache::new(1);
        // The other VM recorded the same proof between our read and our write: our CAS fails,
        // the retry sees it.
        let mut racy = Racy {
            inner: Shared::default(),
            raced: false,
            after: false,
        };
        cache.create_buckets(&mut racy.inner, 1);
        assert_eq!(
            cache.record(&mut racy, Entry::new(&JKT, "a", 500), 100, 1),
            Err(ProofError::Replayed)
        );
        // A missing bucket we created, overwritten by another VM at once: seen on read-back.
        let mut racy = Racy {
            inner: Shared::default(),
            raced: false,
            after: true,
        };
        assert_eq!(
            cache.record(&mut racy, Entry::new(&JKT, "a", 500), 100, 1),
            Err(ProofError::Replayed)
        );
    }

    #[test]
    fn foreign_bytes_never_panic() {
        let cache = ReplayCache::new(1);
        let mut shared = Shared::default();
        shared.set("meshguard/dpop/0", &[1, 2, 3], 0).unwrap();
        assert_eq!(
            cache.record(&mut shared, Entry::new(&JKT, "a", 5), 1, 1),
            Ok(())
        );
        shared.set("meshguard/dpop/0", &[0; 8 + 24 + 5], 0).unwrap();
        assert_eq!(
            cache.record(&mut shared, Entry::new(&JKT, "b", 5), 1, 1),
            Ok(())
        );
    }
}
