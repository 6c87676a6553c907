//! What one request costs at the ABI: every host function meshguard calls and every entry of the
//! host into the VM, per request, on the benchmark's request path (`bench/bench.py`: an inline
//! JWKS, `tokenCacheEntries`, the token in `Authorization`, default locations, no claim headers,
//! no policies).
//!
//! The tables are exact on purpose: a new host call (a regression) and a saved one (an
//! improvement) both fail here, and the failure prints the observed table as Rust source to paste
//! over the old one after checking it is what was meant. Keep `docs/performance.md` section 2 in
//! step. `per_request_report` prints all four as Markdown:
//!
//! ```text
//! cargo test -p meshguard-harness --test scenarios host_calls::per_request_report -- --nocapture 2>/dev/null
//! ```

use meshguard_harness::CallKind::{Entry, Import};
use meshguard_harness::{Exchange, Expected, Host, HostCalls, LogLevel, Result};
use serde_json::json;

use crate::meshguard_wasm;
use crate::tokens::{AUDIENCE, ISSUER, jwks, token};

// --- expectations: one table per scenario -----------------------------------------------------
// Every request: the context lifecycle callbacks meshguard exports (create, request headers,
// done; Envoy skips the ones a module does not export). `proxy_on_memory_allocate` is the
// allocator the host re-enters the VM through to copy a value in; an absent header costs no copy.

/// A token seen before: read it, cache probe, re-check the times, strip it.
const CACHE_HIT: &[Expected] = &[
    (Entry, "proxy_on_context_create", 1),
    (Entry, "proxy_on_request_headers", 1),
    // authorization, :path (query-parameter location), access-control-request-method (a CORS
    // preflight's tokens are ignored, as Istio's jwt_authn `bypass_cors_preflight`; only read
    // when a token was found, and first of the preflight's three headers: it is absent)
    (Import, "proxy_get_header_map_value", 3),
    (Entry, "proxy_on_memory_allocate", 2), // authorization, :path copied in
    (Import, "proxy_get_current_time_nanoseconds", 1),
    (Import, "proxy_remove_header_map_value", 1), // authorization (forwardOriginalToken: false)
    (Entry, "proxy_on_done", 1),
];

/// A new token: the same crossings as a hit; verification and the cache insert are VM-internal.
const CACHE_MISS: &[Expected] = &[
    (Entry, "proxy_on_context_create", 1),
    (Entry, "proxy_on_request_headers", 1),
    // authorization, :path, access-control-request-method (absent)
    (Import, "proxy_get_header_map_value", 3),
    (Entry, "proxy_on_memory_allocate", 2),
    (Import, "proxy_get_current_time_nanoseconds", 1),
    (Import, "proxy_remove_header_map_value", 1),
    (Entry, "proxy_on_done", 1),
];

/// No token: both locations read (authorization absent: no copy), the request passes.
/// `meshguard.jwt.no_token` is counted in the VM and flushed on the tick: no host call.
const NO_TOKEN: &[Expected] = &[
    (Entry, "proxy_on_context_create", 1),
    (Entry, "proxy_on_request_headers", 1),
    (Import, "proxy_get_header_map_value", 2), // authorization (absent), :path
    (Entry, "proxy_on_memory_allocate", 1),    // :path
    (Entry, "proxy_on_done", 1),
];

/// A bad signature, once the VM has answered one before (the first 401 of each reason on a VM also
/// defines `meshguard.denied.<reason>`: one `proxy_define_metric` more).
const UNAUTHORIZED: &[Expected] = &[
    (Entry, "proxy_on_context_create", 1),
    (Entry, "proxy_on_request_headers", 1),
    // authorization, :path (locations), access-control-request-method (CORS preflight; absent),
    // then :scheme, :authority, :path again (the realm of WWW-Authenticate)
    (Import, "proxy_get_header_map_value", 6),
    (Entry, "proxy_on_memory_allocate", 5),
    (Import, "proxy_get_current_time_nanoseconds", 1),
    (Import, "proxy_log", 1), // the denial line, at info: sent whatever Envoy's log level
    (Import, "proxy_increment_metric", 2), // meshguard.denied.<reason>, meshguard.jwt.<issuer>.denied
    (Import, "proxy_send_local_response", 1),
    (Entry, "proxy_on_done", 1),
];

// --- the benchmark's shape --------------------------------------------------------------------

/// The benchmark's plugin configuration (`bench/bench.py` `configs`), with this suite's issuer,
/// audience and keys; vm_id, root_id and Envoy's `-l warning` as the benchmark runs it.
fn bench_host() -> Result<Host> {
    let config = json!({
        "jwtRules": [{"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks()}],
        "tokenCacheEntries": 1024,
    });
    Host::load(meshguard_wasm())?
        .vm_id("meshguard")
        .root_id("meshguard")
        .log_level(LogLevel::Warn)
        .configure(config.to_string())
}

/// Sends one request and returns its record, after checking the VM did nothing else meanwhile
/// (the request's record is the whole cost: no root-context work hides per request).
fn measured(h: &Host, r: impl FnOnce(&Host) -> Result<Exchange>) -> Result<(Exchange, HostCalls)> {
    let before = h.vm_host_calls(0);
    let x = r(h)?;
    let calls = x.host_calls();
    let vm = h.vm_host_calls(0).since(&before);
    assert_eq!(
        vm.by_name(),
        calls.by_name(),
        "the VM did more than the request during it:\nVM:\n{vm}\nrequest:\n{calls}"
    );
    Ok((x, calls))
}

fn bearer(token: &str) -> impl FnOnce(&Host) -> Result<Exchange> + '_ {
    move |h| h.request().bearer(token).send()
}

/// The cache's counters as the filter exports them on its tick.
fn cache_counter(h: &Host, which: &str) -> Result<i64> {
    h.advance(std::time::Duration::from_secs(10))?;
    Ok(h.metric(&format!("meshguard.cache.{which}")).unwrap_or(0))
}

fn cache_hit() -> Result<HostCalls> {
    let h = bench_host()?;
    let tok = token("ES256", h.now_unix());
    measured(&h, bearer(&tok))?.0.assert_continued();
    let (x, calls) = measured(&h, bearer(&tok))?;
    x.assert_continued()
        .assert_no_upstream_header("authorization");
    assert_eq!(cache_counter(&h, "hit")?, 1, "the second request was a hit");
    Ok(calls)
}

fn cache_miss() -> Result<HostCalls> {
    let h = bench_host()?;
    let (x, calls) = measured(&h, bearer(&token("ES256", h.now_unix())))?;
    x.assert_continued()
        .assert_no_upstream_header("authorization");
    assert_eq!(cache_counter(&h, "miss")?, 1);
    Ok(calls)
}

fn no_token() -> Result<HostCalls> {
    let h = bench_host()?;
    let (x, calls) = measured(&h, |h| h.request().send())?;
    x.assert_continued();
    Ok(calls)
}

/// The first and the second 401 on one VM.
fn unauthorized() -> Result<(HostCalls, HostCalls)> {
    let h = bench_host()?;
    let good = token("ES256", h.now_unix());
    // As bench.py's sanity check: the last signature characters replaced.
    let bad = format!("{}AAAAAAAA", &good[..good.len() - 8]);
    let (x, first) = measured(&h, bearer(&bad))?;
    x.assert_status(401);
    let (x, again) = measured(&h, bearer(&bad))?;
    x.assert_status(401);
    Ok((first, again))
}

#[test]
fn cache_hit_host_calls() -> Result<()> {
    cache_hit()?.assert_counts(CACHE_HIT);
    Ok(())
}

#[test]
fn cache_miss_host_calls() -> Result<()> {
    cache_miss()?.assert_counts(CACHE_MISS);
    Ok(())
}

#[test]
fn no_token_host_calls() -> Result<()> {
    no_token()?.assert_counts(NO_TOKEN);
    Ok(())
}

#[test]
fn unauthorized_host_calls() -> Result<()> {
    let (first, again) = unauthorized()?;
    again.assert_counts(UNAUTHORIZED);
    first.assert_counts(&[UNAUTHORIZED, &[(Import, "proxy_define_metric", 1)]].concat());
    Ok(())
}

/// Prints the per-request table (Markdown) and each request's calls in order; see the module doc
/// for the command. Asserts nothing beyond what the scenarios above check.
#[test]
fn per_request_report() -> Result<()> {
    let rows = [
        ("cache hit (token seen before)", cache_hit()?),
        ("cache miss (new token)", cache_miss()?),
        ("no token", no_token()?),
        ("401 (bad signature, not the VM's first)", unauthorized()?.1),
    ];
    let mut names: Vec<(meshguard_harness::CallKind, &str)> = rows
        .iter()
        .flat_map(|(_, c)| c.by_name().into_iter().map(|(k, n, _)| (k, n)))
        .collect();
    names.sort();
    names.dedup();
    let mut out = String::from("| crossing |");
    for (label, _) in &rows {
        out.push_str(&format!(" {label} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(rows.len()));
    out.push('\n');
    for (k, n) in &names {
        let arrow = if *k == Entry { "→ VM" } else { "VM →" };
        out.push_str(&format!("| {arrow} `{n}` |"));
        for (_, c) in &rows {
            out.push_str(&format!(" {} |", c.count(n)));
        }
        out.push('\n');
    }
    for (what, f) in [
        (
            "entries into the VM",
            HostCalls::entries as fn(&HostCalls) -> u64,
        ),
        ("host calls", HostCalls::imports),
        ("total crossings", HostCalls::total),
    ] {
        out.push_str(&format!("| **{what}** |"));
        for (_, c) in &rows {
            out.push_str(&format!(" **{}** |", f(c)));
        }
        out.push('\n');
    }
    out.push_str("| wasm instructions executed (wasmtime fuel) |");
    for (_, c) in &rows {
        out.push_str(&format!(" {} |", c.instructions()));
    }
    out.push('\n');
    println!("\nmeshguard.wasm, the benchmark's request path, per request:\n\n{out}");
    for (label, c) in &rows {
        println!("{label}, in order:\n{}", c.sequence_text());
    }
    Ok(())
}
