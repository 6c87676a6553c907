//! Istio's `timeout`: a protobuf `Duration` in its JSON form.
//!
//! Istio's API types are protobuf; the JSON (and YAML) form of `google.protobuf.Duration` is a
//! decimal number of seconds with an `s` suffix and at most nine fractional digits (`"5s"`,
//! `"1.5s"`, `"0.250s"`). Istio's CRD additionally requires at least 1 ms. Go-style strings such
//! as `"500ms"` or `"1m"` are refused by Istio's protobuf decoding, so they are refused here too,
//! with a hint: a config that works with meshguard must also work when pasted into Istio.

use core::fmt;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Does not end in `s`.
    MissingSuffix,
    /// A Go-style unit (`500ms`, `1m`, `2h`): valid in Kubernetes CEL, refused by Istio's
    /// protobuf decoding.
    GoStyle,
    /// Not `<digits>[.<1-9 digits>]s`.
    Syntax,
    /// Below Istio's 1 ms minimum.
    TooShort,
    /// Above the range we can represent as a host timeout (about 49 days in milliseconds).
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::MissingSuffix => f.write_str(
                "must be a protobuf Duration in seconds with an \"s\" suffix, e.g. \"5s\" or \"0.5s\" (\"500ms\" and \"1m\" are not accepted by Istio)",
            ),
            DurationError::GoStyle => f.write_str(
                "uses a Go-style unit: Istio's protobuf Duration takes seconds only, e.g. \"0.5s\" for 500ms or \"60s\" for 1m",
            ),
            DurationError::Syntax => f.write_str(
                "must be <seconds>[.<up to 9 digits>]s, e.g. \"5s\" or \"1.5s\"",
            ),
            DurationError::TooShort => f.write_str("must be at least 1ms (\"0.001s\")"),
            DurationError::TooLong => f.write_str("must be at most 4294967s"),
        }
    }
}

/// Parses `"5s"`, `"1.5s"`, `"0.001s"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let go_style = ["ms", "us", "µs", "ns", "m", "h"].iter().any(|unit| {
        text.strip_suffix(unit)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    });
    if go_style {
        return Err(DurationError::GoStyle);
    }
    let number = text.strip_suffix('s').ok_or(DurationError::MissingSuffix)?;
    let (whole, frac) = match number.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (number, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::Syntax);
    }
    let secs: u64 = whole.parse().map_err(|_| DurationError::TooLong)?;
    let mut nanos: u32 = 0;
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DurationError::Syntax);
        }
        for digit in frac.bytes().chain(core::iter::repeat(b'0')).take(9) {
            nanos = nanos * 10 + u32::from(digit - b'0');
        }
    }
    if secs > u64::from(u32::MAX) / 1000 {
        return Err(DurationError::TooLong);
    }
    let duration = Duration::new(secs, nanos);
    if duration < Duration::from_millis(1) {
        return Err(DurationError::TooShort);
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_protobuf_json_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0.001s").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_duration("0.000000001s"), Err(DurationError::TooShort));
        assert_eq!(
            parse_duration("10.250s").unwrap(),
            Duration::from_millis(10_250)
        );
        assert_eq!(
            parse_duration("4294967s").unwrap(),
            Duration::from_secs(4_294_967)
        );
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(parse_duration("500ms"), Err(DurationError::GoStyle));
        assert_eq!(parse_duration("1m"), Err(DurationError::GoStyle));
        assert_eq!(parse_duration("1.5h"), Err(DurationError::GoStyle));
        assert_eq!(parse_duration("1m30s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("ms"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("5"), Err(DurationError::MissingSuffix));
        assert_eq!(parse_duration("s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration(".5s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("5.s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("-1s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("+1s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("1.0000000001s"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("0s"), Err(DurationError::TooShort));
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::TooLong)
        );
        assert_eq!(parse_duration("4294968s"), Err(DurationError::TooLong));
        assert_eq!(parse_duration(" 5s"), Err(DurationError::Syntax));
    }
}
