//! The per-JWKS-source coordination record shared by all worker VMs.
//!
//! Text encoding (small, versioned, easy to read in a debugger):
//! `v1 <holder> <phase> <until_ms> <failures> <forced_at_ms> <record_seq>`.
//! Anything that does not decode is treated as absent (a fresh start), never as an error that
//! could wedge the filter.

/// What the lease holder is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeasePhase {
    /// Nobody is fetching.
    Idle,
    /// `holder` is fetching until `until_ms` (after that the lease may be taken over).
    Fetching,
    /// The last fetch failed; nobody fetches before `until_ms` (process-wide backoff).
    BackingOff,
}

impl LeasePhase {
    fn as_str(self) -> &'static str {
        match self {
            LeasePhase::Idle => "idle",
            LeasePhase::Fetching => "fetching",
            LeasePhase::BackingOff => "backoff",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "idle" => Some(LeasePhase::Idle),
            "fetching" => Some(LeasePhase::Fetching),
            "backoff" => Some(LeasePhase::BackingOff),
            _ => None,
        }
    }
}

/// Who may fetch a JWKS source, and what the process knows about its recent fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The VM that wrote this lease (a per-VM nonce chosen by the host).
    pub holder: u64,
    pub phase: LeasePhase,
    /// End of the fetch window (`Fetching`) or of the backoff (`BackingOff`).
    pub until_ms: u64,
    /// Consecutive failed fetches (drives the exponential backoff).
    pub failures: u32,
    /// When the last unknown-`kid` refetch was started (0 = never): the rate limit.
    pub forced_at_ms: u64,
    /// Version of the newest [`super::SharedRecord`] (0 = none yet); each fetch increments it.
    pub record_seq: u64,
}

impl Lease {
    /// Whether the lease still binds others at `now`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.phase != LeasePhase::Idle && now_ms < self.until_ms
    }

    pub fn encode(&self) -> Vec<u8> {
        format!(
            "v1 {} {} {} {} {} {}",
            self.holder,
            self.phase.as_str(),
            self.until_ms,
            self.failures,
            self.forced_at_ms,
            self.record_seq
        )
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        if parts.next()? != "v1" {
            return None;
        }
        let lease = Lease {
            holder: parts.next()?.parse().ok()?,
            phase: LeasePhase::parse(parts.next()?)?,
            until_ms: parts.next()?.parse().ok()?,
            failures: parts.next()?.parse().ok()?,
            forced_at_ms: parts.next()?.parse().ok()?,
            record_seq: parts.next()?.parse().ok()?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let lease = Lease {
            holder: 42,
            phase: LeasePhase::BackingOff,
            until_ms: 1_700_000_000_123,
            failures: 3,
            forced_at_ms: 9,
            record_seq: 7,
        };
        assert_eq!(Lease::decode(&lease.encode()), Some(lease));
    }

    #[test]
    fn garbage_is_absent() {
        for bad in [
            &b""[..],
            b"v2 1 idle 0 0 0 0",
            b"v1 1 idle 0 0 0",
            b"v1 1 idle 0 0 0 0 x",
            b"v1 x idle 0 0 0 0",
            b"\xff",
        ] {
            assert_eq!(Lease::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn activity() {
        let mut lease = Lease {
            holder: 1,
            phase: LeasePhase::Fetching,
            until_ms: 100,
            failures: 0,
            forced_at_ms: 0,
            record_seq: 0,
        };
        assert!(lease.is_active(99));
        assert!(!lease.is_active(100));
        lease.phase = LeasePhase::Idle;
        assert!(!lease.is_active(0));
    }
}
