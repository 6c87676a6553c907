//! Counting what crosses the ABI: every host function the module calls (an *import*) and every
//! call the host makes into the module (an *entry*: the `proxy_on_*` callbacks, `_initialize`, and
//! the allocator re-entries Envoy makes while it copies a value into the VM). Issue 8 asks for a
//! lean request path; in V8 each crossing costs far more than the work behind most of them, so the
//! scenarios pin these counts per request.
//!
//! Recorded in two places (see `VmState::record`): per HTTP context (an ordered list, kept on the
//! stream, so [`crate::Exchange::host_calls`] works after the stream ended) and per VM (counts only,
//! so a long test does not grow a list). Recording costs a `Vec` push and a map increment per
//! crossing and needs no switch.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// Which way a call crossed the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    /// The host called into the module: a `proxy_on_*` callback, `_initialize`, or the module's
    /// allocator (`proxy_on_memory_allocate` / `malloc`) while a host function returns a value.
    Entry,
    /// The module called a host function (`proxy_*` import).
    Import,
}

/// The allocator exports Envoy re-enters the VM through to hand it a value.
pub const ALLOCATORS: [&str; 2] = ["malloc", "proxy_on_memory_allocate"];

/// One row of an expectation table: `(Entry, "proxy_on_request_headers", 1)`.
pub type Expected = (CallKind, &'static str, u64);

/// What crossed the ABI for one HTTP context ([`crate::Exchange::host_calls`]) or one VM
/// ([`crate::Host::vm_host_calls`]): counts by name and, for a context, the order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostCalls {
    counts: BTreeMap<(CallKind, &'static str), u64>,
    /// In call order; empty for a VM's record.
    sequence: Vec<(CallKind, &'static str)>,
    /// Wasm instructions executed in the context's callbacks (a context's record; 0 for a VM's).
    instructions: u64,
}

impl HostCalls {
    pub(crate) fn from_sequence(sequence: Vec<(CallKind, &'static str)>) -> Self {
        let mut counts = BTreeMap::new();
        for key in &sequence {
            *counts.entry(*key).or_insert(0) += 1;
        }
        Self {
            counts,
            sequence,
            instructions: 0,
        }
    }

    pub(crate) fn with_instructions(mut self, instructions: u64) -> Self {
        self.instructions = instructions;
        self
    }

    /// Wasm instructions the module executed for this context (wasmtime fuel: one per
    /// instruction; the allocator re-entries included). Deterministic for a given module, unlike
    /// time, but not V8's cost model: a relative measure of the VM-side work.
    pub fn instructions(&self) -> u64 {
        self.instructions
    }

    pub(crate) fn from_counts(counts: BTreeMap<(CallKind, &'static str), u64>) -> Self {
        Self {
            counts,
            sequence: Vec::new(),
            instructions: 0,
        }
    }

    /// How often `name` crossed (either kind; the ABI's export and import names are disjoint).
    pub fn count(&self, name: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((_, n), _)| *n == name)
            .map(|(_, c)| *c)
            .sum()
    }

    /// Host functions the module called.
    pub fn imports(&self) -> u64 {
        self.total_of(CallKind::Import)
    }

    /// Calls from the host into the module (callbacks and allocator re-entries).
    pub fn entries(&self) -> u64 {
        self.total_of(CallKind::Entry)
    }

    /// Every crossing, both ways.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    fn total_of(&self, kind: CallKind) -> u64 {
        self.counts
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, c)| *c)
            .sum()
    }

    /// Counts by (kind, name): entries first, then imports, each by name.
    pub fn by_name(&self) -> Vec<Expected> {
        self.counts.iter().map(|(&(k, n), &c)| (k, n, c)).collect()
    }

    /// The crossings in order (a context's record; empty for a VM's).
    pub fn sequence(&self) -> &[(CallKind, &'static str)] {
        &self.sequence
    }

    /// What crossed since `earlier` (a snapshot of the same VM): counts only.
    pub fn since(&self, earlier: &HostCalls) -> HostCalls {
        let mut counts = BTreeMap::new();
        for (key, &c) in &self.counts {
            let before = earlier.counts.get(key).copied().unwrap_or(0);
            if c > before {
                counts.insert(*key, c - before);
            }
        }
        Self::from_counts(counts)
    }

    /// Fails the test unless the counts are exactly `expected` (any row order; a row with count 0
    /// means "never"). The message prints the observed table as Rust source, ready to paste over
    /// the old one, and the order the calls came in.
    pub fn assert_counts(&self, expected: &[Expected]) {
        let mut want: BTreeMap<(CallKind, &str), u64> = BTreeMap::new();
        for &(k, n, c) in expected {
            *want.entry((k, n)).or_insert(0) += c;
        }
        want.retain(|_, c| *c > 0);
        let got: BTreeMap<(CallKind, &str), u64> = self
            .counts
            .iter()
            .map(|(&(k, n), &c)| ((k, n), c))
            .collect();
        if want == got {
            return;
        }
        let mut diff = String::new();
        for key in want
            .keys()
            .chain(got.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (w, g) = (
                want.get(key).copied().unwrap_or(0),
                got.get(key).copied().unwrap_or(0),
            );
            if w != g {
                let _ = writeln!(diff, "  {:?} {}: expected {w}, observed {g}", key.0, key.1);
            }
        }
        panic!(
            "host calls differ from the expectation:\n{diff}\nobserved ({} entries + {} imports = \
             {}), as an expectation table:\n{}\nin order:\n{}",
            self.entries(),
            self.imports(),
            self.total(),
            self.table_source(),
            self.sequence_text()
        );
    }

    /// The counts as a Rust expectation table (`use CallKind::*` in scope).
    pub fn table_source(&self) -> String {
        let mut out = String::from("&[\n");
        for (k, n, c) in self.by_name() {
            let _ = writeln!(out, "    ({k:?}, {n:?}, {c}),");
        }
        out.push(']');
        out
    }

    /// The order of the crossings, one per line, indented by nesting: callbacks at the left, the
    /// host functions they call under them, allocator re-entries under those.
    pub fn sequence_text(&self) -> String {
        let mut out = String::new();
        for (k, n) in &self.sequence {
            let indent = match k {
                CallKind::Entry if ALLOCATORS.contains(n) => "    ",
                CallKind::Entry => "",
                CallKind::Import => "  ",
            };
            let _ = writeln!(out, "  {indent}{n}");
        }
        if self.sequence.is_empty() {
            out.push_str("  (no order recorded: a VM's record keeps counts only)\n");
        }
        out
    }
}

/// A Markdown table of the counts: `| kind | name | count |`, then the totals.
impl fmt::Display for HostCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| kind | name | count |")?;
        writeln!(f, "|---|---|---:|")?;
        for (k, n, c) in self.by_name() {
            let kind = match k {
                CallKind::Entry => "entry",
                CallKind::Import => "import",
            };
            writeln!(f, "| {kind} | `{n}` | {c} |")?;
        }
        write!(
            f,
            "| | **total** | {} entries + {} imports = {} |",
            self.entries(),
            self.imports(),
            self.total()
        )
    }
}
