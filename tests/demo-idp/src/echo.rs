//! The echo upstream: answers every request with 200 and a JSON description of what it received,
//! so a test or a curl user sees exactly which headers made it through Envoy.
//!
//! `{"method": "GET", "path": "/x?y", "headers": {"x-user-id": ["alice"], ...}, "body_bytes": 0}`
//! Header names are lowercased; repeated headers keep every value in order.

use crate::http::{Handler, Reply, Request, Response};
use serde_json::{Map, Value, json};

pub struct Echo;

impl Handler for Echo {
    fn handle(&self, req: &Request) -> Reply {
        let mut headers: Map<String, Value> = Map::new();
        for (n, v) in &req.headers {
            let entry = headers
                .entry(n.to_ascii_lowercase())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(Value::String(v.clone()));
            }
        }
        let body = json!({
            "method": req.method,
            "path": req.target,
            "headers": headers,
            "body_bytes": req.body.len(),
        });
        Reply::Respond(Response::json(200, &body))
    }
}
