//! The shared-data interface the state machine needs, with Envoy's semantics.

use std::fmt;

/// Process-wide key/value store shared by all worker VMs (Envoy's proxy shared data).
///
/// Envoy's semantics, which the state machine relies on: `get` returns the value and its CAS
/// token; `set` with `cas == 0` always writes; a non-zero `cas` must equal the current token or
/// the write fails with [`StoreError::CasMismatch`]; every successful write yields a new token.
pub trait SharedStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// Why a shared-data write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Another VM wrote the key since we read it.
    CasMismatch,
    /// The host refused the call (the text is the host's status).
    Host(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CasMismatch => {
                f.write_str("shared data changed concurrently (CAS mismatch)")
            }
            StoreError::Host(status) => write!(f, "shared data call failed: {status}"),
        }
    }
}

/// An in-memory [`SharedStore`] with Envoy's CAS semantics, shared by clones (one per
/// simulated VM). For native tests and fuzzing.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: std::rc::Rc<std::cell::RefCell<MemoryInner>>,
}

#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
struct MemoryInner {
    entries: std::collections::HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    writes: usize,
}

#[cfg(any(test, feature = "test-util"))]
impl MemoryStore {
    /// Number of successful writes so far (all keys).
    pub fn writes(&self) -> usize {
        self.inner.borrow().writes
    }
}

#[cfg(any(test, feature = "test-util"))]
impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner.borrow().entries.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut inner = self.inner.borrow_mut();
        if let Some((_, current)) = inner.entries.get(key)
            && cas != 0
            && cas != *current
        {
            return Err(StoreError::CasMismatch);
        }
        inner.next_cas = inner.next_cas.wrapping_add(1).max(1);
        let token = inner.next_cas;
        inner
            .entries
            .insert(key.to_owned(), (value.to_vec(), token));
        inner.writes += 1;
        Ok(())
    }
}
