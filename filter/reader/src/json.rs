//! Strict JSON objects for JOSE headers, claims and JWKS documents.
//!
//! `serde_json` keeps the last of two equal member names and allows 128 levels of nesting. Both
//! are attack surface here: duplicates let one party read a different `alg`, `kid` or `sub` than
//! another (RFC 7515 §5.2 allows refusing them, and we do, at every level), and deep nesting
//! costs stack and time in a VM with a small stack. This module parses through a
//! [`DeserializeSeed`] that tracks depth and rejects duplicates while it builds the
//! [`serde_json::Value`], so there is one pass and no second parser to disagree with.

use core::cell::Cell;
use core::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document is not a strict JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonIssue {
    /// Syntax error, bad UTF-8, trailing bytes, or a number serde_json cannot hold.
    Syntax,
    /// Valid JSON, but the top level is not an object.
    NotObject,
    /// More than the allowed levels of nested arrays/objects.
    TooDeep,
    /// A member name appears twice in one object.
    Duplicate,
}

/// Parses `bytes` as one JSON object, nested at most `max_depth` levels (the top-level object
/// is level 1), with no duplicate member names anywhere.
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonIssue> {
    let issue = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        depth: 0,
        max_depth,
        issue: &issue,
    };
    let value = match seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(value) => value,
        Err(_) => return Err(issue.get().unwrap_or(JsonIssue::Syntax)),
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonIssue::NotObject),
    }
}

/// One level of the strict parse: knows its depth and where to record why it gave up.
#[derive(Clone, Copy)]
struct Strict<'a> {
    depth: usize,
    max_depth: usize,
    issue: &'a Cell<Option<JsonIssue>>,
}

impl Strict<'_> {
    /// The seed for a child of a container, or an error when that would be too deep.
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        let depth = self.depth.saturating_add(1);
        if depth > self.max_depth {
            return Err(self.fail(JsonIssue::TooDeep));
        }
        Ok(Strict { depth, ..self })
    }

    fn fail<E: de::Error>(self, issue: JsonIssue) -> E {
        self.issue.set(Some(issue));
        E::custom(match issue {
            JsonIssue::TooDeep => "nested too deeply",
            JsonIssue::Duplicate => "duplicate member name",
            JsonIssue::Syntax | JsonIssue::NotObject => "invalid",
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json never yields a non-finite float, but do not turn one into null silently.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| self.fail(JsonIssue::Syntax))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(self.fail(JsonIssue::Duplicate));
            }
            let value = access.next_value_seed(child)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        let mut s = String::new();
        for _ in 1..depth {
            s.push_str("{\"a\":");
        }
        s.push_str("{}");
        for _ in 1..depth {
            s.push('}');
        }
        s
    }

    #[test]
    fn parses_objects_like_serde_json() {
        let text = br#"{"a":1,"b":[true,null,-2,1.5,"x"],"c":{"d":{}}}"#;
        let ours = parse_object(text, 32).unwrap();
        let theirs: Map<String, Value> = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn refuses_duplicates_at_any_level_even_when_escaped() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#, 32),
            Err(JsonIssue::Duplicate)
        );
        assert_eq!(
            parse_object(br#"{"a":1,"\u0061":2}"#, 32),
            Err(JsonIssue::Duplicate)
        );
        assert_eq!(
            parse_object(br#"{"o":{"k":1,"k":1}}"#, 32),
            Err(JsonIssue::Duplicate)
        );
        assert_eq!(
            parse_object(br#"{"l":[{"k":1,"k":1}]}"#, 32),
            Err(JsonIssue::Duplicate)
        );
    }

    #[test]
    fn depth_limit_counts_the_top_object() {
        assert!(parse_object(nested(32).as_bytes(), 32).is_ok());
        assert_eq!(
            parse_object(nested(33).as_bytes(), 32),
            Err(JsonIssue::TooDeep)
        );
        // Far beyond serde_json's own limit: still our error, no stack trouble.
        assert_eq!(
            parse_object(nested(5000).as_bytes(), 32),
            Err(JsonIssue::TooDeep)
        );
        let arrays = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(parse_object(arrays.as_bytes(), 32), Err(JsonIssue::TooDeep));
    }

    #[test]
    fn refuses_non_objects_and_garbage() {
        assert_eq!(parse_object(b"[]", 32), Err(JsonIssue::NotObject));
        assert_eq!(parse_object(b"\"s\"", 32), Err(JsonIssue::NotObject));
        assert_eq!(parse_object(b"{} {}", 32), Err(JsonIssue::Syntax));
        assert_eq!(parse_object(b"{\"a\":1,}", 32), Err(JsonIssue::Syntax));
        assert_eq!(
            parse_object(b"{\"a\":\"\xff\"}", 32),
            Err(JsonIssue::Syntax)
        );
        assert_eq!(parse_object(b"{\"a\":1e400}", 32), Err(JsonIssue::Syntax));
        assert_eq!(parse_object(b"", 32), Err(JsonIssue::Syntax));
        // Whitespace around the object is JSON, and RFC 7515 A.2's payload uses CRLF in it.
        assert!(parse_object(b" {\"a\":1}\r\n", 32).is_ok());
    }
}
