//! The harness proven with `mgprobe`: every host function, Envoy's status codes, and the guards.

use std::time::Duration;

use meshguard_harness::{Host, HostBuilder, LogLevel, Result};

use crate::probe_wasm;

fn probe() -> Result<HostBuilder> {
    Host::load(probe_wasm())
}

#[test]
fn properties_as_envoy_encodes_them() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h
        .request()
        .header("x-probe", "props")
        .path("/a/b?c=d")
        .peer_spiffe("spiffe://cluster.local/ns/a/sa/b")
        .property("custom.thing", "abc")
        .send()?;
    r.assert_continued()
        .assert_status(200)
        .assert_upstream_header("x-prop-source-address", "10.0.0.1:50000")
        .assert_upstream_header("x-prop-destination-port", "8080")
        .assert_upstream_header("x-prop-mtls", "Some([1])")
        .assert_upstream_header("x-prop-peer", "spiffe://cluster.local/ns/a/sa/b")
        .assert_upstream_header("x-prop-path", "/a/b?c=d")
        .assert_upstream_header("x-prop-host", "api.example.com")
        .assert_upstream_header("x-prop-plugin", "meshguard")
        .assert_upstream_header("x-prop-custom", "abc");
    assert_eq!(
        r.filter_property("probe.seen").as_deref(),
        Some(&b"yes"[..])
    );
    // The filter's on_response_headers ran on the upstream's answer.
    assert_eq!(r.response_header("x-probe-response").as_deref(), Some("1"));

    let plain = h.request().header("x-probe", "props").send()?;
    plain
        .assert_upstream_header("x-prop-mtls", "Some([0])")
        .assert_upstream_header("x-prop-peer", "none");
    Ok(())
}

#[test]
fn header_map_operations() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h
        .request()
        .header("x-probe", "headers")
        .header("X-Replace", "old")
        .header("x-replace", "old2")
        .header("x-remove", "gone")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .send()?;
    r.assert_continued()
        .assert_upstream_header("x-replace", "new")
        .assert_no_upstream_header("x-remove")
        .assert_upstream_header("x-first-multi", "one")
        .assert_upstream_header("x-missing-is-none", "true");
    let up = r.upstream_headers();
    assert_eq!(up.get_all("x-added"), vec!["a1", "a2"]);
    assert_eq!(up.get_all("x-replace"), vec!["new"]);
    // 4 pseudo headers + x-request-id + x-probe + 2 x-replace + x-remove + 2 x-multi.
    assert_eq!(up.get("x-count").as_deref(), Some("11"));

    let r = h.request().header("x-probe", "set-map").send()?;
    let up = r.upstream_headers();
    assert_eq!(up.get(":path").as_deref(), Some("/replaced"));
    assert_eq!(
        up.get("x-only").as_deref(),
        Some("1"),
        "keys are lower-cased"
    );
    assert!(!up.contains("x-probe"));
    Ok(())
}

#[test]
fn local_response_goes_through_the_response_path() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h.request().header("x-probe", "deny").send()?;
    r.assert_status(403).assert_body_contains("denied by probe");
    assert!(!r.continued());
    let lr = r.local_response().unwrap();
    assert_eq!(lr.headers.get("x-denied").as_deref(), Some("1"));
    let resp = r.response();
    assert_eq!(
        resp.headers.get("content-type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(resp.headers.get("x-probe-response").as_deref(), Some("1"));
    assert_eq!(r.actions()[0], ("on_request_headers", "Pause"));
    Ok(())
}

#[test]
fn http_call_answered_resumes_the_request() -> Result<()> {
    let h = probe()?.clusters(["idp"]).configure("")?;
    let r = h.request().header("x-probe", "call").send()?;
    r.assert_paused();
    let call = h.expect_one_call();
    assert_eq!(call.cluster(), "idp");
    assert_eq!(call.path(), "/jwks");
    assert_eq!(call.authority(), "idp.example.com");
    assert_eq!(call.body(), b"ping");
    assert_eq!(call.header("content-length").as_deref(), Some("4"));
    assert_eq!(call.configured_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(call.context_id(), r.context_id());
    call.respond(200, &[("content-type", "application/json")], "keys!")?;
    r.assert_continued()
        .assert_upstream_header("x-call-body", "keys!");
    assert!(h.pending_calls().is_empty());
    // Answering twice is an error, not a silent no-op.
    assert!(call.respond(200, &[], "").is_err());

    let r = h.request().header("x-probe", "call").send()?;
    h.expect_one_call().respond(500, &[], "")?;
    r.assert_status(503);
    assert_eq!(r.response_header("x-probe-call").as_deref(), Some("500"));
    Ok(())
}

#[test]
fn http_call_reset_timeout_and_connect_failure() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h.request().header("x-probe", "call").send()?;
    h.expect_one_call().fail()?;
    r.assert_status(502);
    assert!(
        !h.logs_containing("status 11 Some(\"reset\")").is_empty(),
        "{}",
        h.log_dump(None)
    );

    let r = h.request().header("x-probe", "call").send()?;
    h.advance(Duration::from_millis(4999))?;
    r.assert_paused();
    h.advance(Duration::from_millis(1))?;
    r.assert_status(503);
    assert_eq!(r.response_header("x-probe-call").as_deref(), Some("504"));

    let r = h.request().header("x-probe", "call").send()?;
    h.expect_one_call().timeout()?;
    assert_eq!(r.response_header("x-probe-call").as_deref(), Some("504"));

    let r = h.request().header("x-probe", "call").send()?;
    h.expect_one_call().connect_failure()?;
    assert_eq!(r.response_header("x-probe-call").as_deref(), Some("503"));
    Ok(())
}

#[test]
fn http_call_bad_arguments() -> Result<()> {
    let h = probe()?.clusters(["idp"]).configure("")?;
    h.request()
        .header("x-probe", "call-unknown")
        .send()?
        .assert_upstream_header("x-dispatch-error", "BadArgument");
    h.request()
        .header("x-probe", "call-bad")
        .send()?
        .assert_upstream_header("x-dispatch-error", "BadArgument");
    assert!(h.pending_calls().is_empty());
    assert_eq!(h.notes().len(), 2, "{:?}", h.notes());
    Ok(())
}

#[test]
fn downstream_reset_cancels_the_call() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h.request().header("x-probe", "call").send()?;
    let call = h.expect_one_call();
    h.reset(&r)?;
    assert!(r.is_complete());
    assert_eq!(r.reset_reason().as_deref(), Some("downstream reset"));
    assert!(h.pending_calls().is_empty());
    let err = call.respond(200, &[], "").unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    Ok(())
}

#[test]
fn root_context_call_on_configure() -> Result<()> {
    let h = probe()?.configure("fetch=cfg")?;
    let call = h.expect_one_call();
    assert_eq!(call.context_id(), 1, "dispatched by the root context");
    assert_eq!(call.cluster(), "cfg");
    call.respond(200, &[], "config-body")?;
    assert_eq!(h.shared_data("probe/fetched").unwrap().0, b"config-body");
    h.assert_logged(LogLevel::Info, "answered 200");
    Ok(())
}

#[test]
fn shared_data_cas_semantics() -> Result<()> {
    let h = probe()?.workers(2).configure("")?;
    let r = h.request().header("x-probe", "cas").send()?;
    // Absent: cas 0 writes; a made-up cas against the fresh value is a mismatch.
    r.assert_upstream_header("x-cas", "0->1 Ok(()) Err(CasMismatch)");
    assert_eq!(h.shared_data("probe/counter").unwrap().0, b"1");
    h.set_shared_data("probe/counter", "5");
    let (_, cas_before) = h.shared_data("probe/counter").unwrap();
    let r = h.request().header("x-probe", "cas").on_worker(1).send()?;
    r.assert_upstream_header("x-cas", "5->6 Ok(()) Err(CasMismatch)");
    let (v, cas) = h.shared_data("probe/counter").unwrap();
    assert_eq!(v, b"6");
    assert_ne!(cas, cas_before, "every write gets a new cas");
    Ok(())
}

#[test]
fn ticks_per_worker_and_a_shared_counter() -> Result<()> {
    let h = probe()?.workers(2).configure("tick_ms=1000")?;
    assert_eq!(h.tick_period(0), Some(Duration::from_secs(1)));
    h.advance(Duration::from_millis(3500))?;
    assert_eq!(h.metric("probe_ticks"), Some(6));
    assert_eq!(h.shared_data("probe/ticks").unwrap().0, b"6");
    let start = meshguard_harness::DEFAULT_CLOCK_UNIX_SECS * 1000;
    assert_eq!(h.logs_containing(&format!("at {}", start + 3000)).len(), 2);
    assert_eq!(h.now_unix(), meshguard_harness::DEFAULT_CLOCK_UNIX_SECS + 3);
    Ok(())
}

#[test]
fn queues_notify_the_registering_vm() -> Result<()> {
    let h = probe()?.workers(2).configure("queue=probe_q")?;
    let r = h
        .request()
        .on_worker(1)
        .header("x-probe", "enqueue")
        .header("x-data", "hello")
        .send()?;
    r.assert_upstream_header("x-enqueue", "Some(1) Some(Ok(()))");
    let got = h.logs_containing("queue 1 got hello");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].worker, 0, "the first registrant owns the queue");
    h.enqueue("", "probe_q", "from-test")?;
    assert_eq!(h.logs_containing("got from-test").len(), 1);
    assert_eq!(h.queue_len("", "probe_q"), Some(0));
    Ok(())
}

#[test]
fn metrics_define_increment_record_get() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h.request().header("x-probe", "metrics").send()?;
    r.assert_upstream_header("x-metric", "1 Err(BadArgument) Err(BadArgument)");
    assert_eq!(h.metric("probe_requests"), Some(1));
    assert_eq!(h.metric("probe_gauge"), Some(42));
    let hist = h
        .metrics()
        .into_iter()
        .find(|(n, _)| n == "probe_hist")
        .unwrap()
        .1;
    assert_eq!(hist.samples, vec![7]);
    Ok(())
}

#[test]
fn clock_body_vm_config_and_log_level() -> Result<()> {
    let h = probe()?
        .clock_unix(1_800_000_000)
        .vm_config("vm-cfg")
        .log_level(LogLevel::Debug)
        .configure("")?;
    h.request()
        .header("x-probe", "time")
        .send()?
        .assert_upstream_header("x-now", "1800000000");
    h.assert_logged(LogLevel::Info, "vm config \"vm-cfg\"");
    let r = h
        .request()
        .method("POST")
        .header("x-probe", "body")
        .body("hello")
        .send()?;
    assert_eq!(r.upstream().body, b"HELLO");
    h.assert_logged(LogLevel::Info, "body 5 eos=true");
    Ok(())
}

#[test]
fn paused_request_without_resume_stays_paused() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h.request().header("x-probe", "pause").send()?;
    r.assert_paused();
    h.advance(Duration::from_secs(60))?;
    r.assert_paused();
    Ok(())
}

#[test]
fn a_panic_fails_with_the_logged_message() -> Result<()> {
    let h = probe()?.workers(2).configure("")?;
    let err = h
        .request()
        .header("x-probe", "panic")
        .send()
        .err()
        .expect("a trap");
    let msg = err.to_string();
    assert!(msg.contains("probe panic: deliberate"), "{msg}");
    assert!(msg.contains("proxy_on_request_headers"), "{msg}");
    // Like Envoy, the failed VM is not called again; the other worker still serves.
    let again = h.request().send().err().expect("worker 0 is failed");
    assert!(again.to_string().contains("is failed"), "{again}");
    h.request().on_worker(1).send()?.assert_continued();
    assert!(h.failure(0).is_some());
    Ok(())
}

#[test]
fn a_runaway_loop_exhausts_the_budget() -> Result<()> {
    let h = probe()?.fuel(20_000_000).configure("")?;
    let err = h
        .request()
        .header("x-probe", "loop")
        .send()
        .err()
        .expect("out of fuel");
    assert!(err.to_string().contains("execution budget"), "{err}");
    Ok(())
}

#[test]
fn memory_is_capped() -> Result<()> {
    let h = probe()?.memory_limit(32 << 20).configure("")?;
    let err = h
        .request()
        .header("x-probe", "oom")
        .send()
        .err()
        .expect("memory cap");
    assert!(format!("{err:?}").contains("memory"), "{err:?}");
    Ok(())
}

#[test]
fn configure_failures_carry_the_logs() -> Result<()> {
    let err = probe()?.configure("fail=because").err().expect("rejected");
    let msg = err.to_string();
    assert!(msg.contains("proxy_on_configure returned false"), "{msg}");
    assert!(msg.contains("probe: bad config: because"), "{msg}");
    let err = probe()?.configure("panic").err().expect("trap");
    assert!(
        err.to_string().contains("probe panics in on_configure"),
        "{err}"
    );
    Ok(())
}

#[test]
fn root_shutdown_and_proxy_done() -> Result<()> {
    let h = probe()?.workers(2).configure("")?;
    assert_eq!(h.shutdown()?, vec![true, true]);
    let h = probe()?.configure("delay_done\ntick_ms=100")?;
    assert_eq!(h.shutdown()?, vec![false]);
    assert!(!h.done_called(0));
    h.advance(Duration::from_millis(100))?;
    assert!(h.done_called(0), "{}", h.log_dump(None));
    Ok(())
}

#[test]
fn request_trailers() -> Result<()> {
    let h = probe()?.configure("")?;
    let r = h
        .request()
        .method("POST")
        .body("b")
        .trailer("x-trailer", "t1")
        .send()?;
    r.assert_continued();
    let trailers = r.upstream().trailers.unwrap();
    assert_eq!(trailers.get("x-probe-trailer").as_deref(), Some("1:t1"));
    assert_eq!(
        r.actions().iter().map(|a| a.0).collect::<Vec<_>>(),
        [
            "on_request_headers",
            "on_request_body",
            "on_request_trailers",
            "on_response_headers"
        ]
    );
    Ok(())
}

/// The crossing record (`Exchange::host_calls`, `Host::vm_host_calls`) against the probe's code:
/// the "time" request's callbacks and calls are all visible in `testdata/probe/src/lib.rs`.
#[test]
fn host_calls_are_recorded_per_request_and_per_vm() -> Result<()> {
    use meshguard_harness::CallKind::{Entry, Import};
    let h = probe()?.configure("tick_ms=1000")?;
    let started = h.vm_host_calls(0);
    for name in ["_initialize", "proxy_on_vm_start", "proxy_on_configure"] {
        assert_eq!(started.count(name), 1, "{name}\n{started}");
    }
    assert_eq!(started.count("proxy_set_tick_period_milliseconds"), 1);

    let r = h.request().header("x-probe", "time").send()?;
    r.assert_continued();
    let calls = r.host_calls();
    let order = [
        (Entry, "proxy_on_context_create"),
        (Entry, "proxy_on_request_headers"),
        (Import, "proxy_increment_metric"),
        (Import, "proxy_get_header_map_value"), // x-probe
        (Entry, "malloc"),                      // its value copied in
        (Import, "proxy_log"),
        (Import, "proxy_get_current_time_nanoseconds"),
        (Import, "proxy_replace_header_map_value"), // x-now
        (Entry, "proxy_on_response_headers"),
        (Import, "proxy_replace_header_map_value"), // x-probe-response
        (Entry, "proxy_on_log"),
        (Import, "proxy_log"),
        (Entry, "proxy_on_done"),
        (Entry, "proxy_on_delete"),
    ];
    assert_eq!(calls.sequence(), order, "\n{}", calls.sequence_text());
    calls.assert_counts(&[
        (Entry, "proxy_on_context_create", 1),
        (Entry, "proxy_on_request_headers", 1),
        (Entry, "malloc", 1),
        (Entry, "proxy_on_response_headers", 1),
        (Entry, "proxy_on_log", 1),
        (Entry, "proxy_on_done", 1),
        (Entry, "proxy_on_delete", 1),
        (Import, "proxy_increment_metric", 1),
        (Import, "proxy_get_header_map_value", 1),
        (Import, "proxy_log", 2),
        (Import, "proxy_get_current_time_nanoseconds", 1),
        (Import, "proxy_replace_header_map_value", 2),
    ]);
    assert_eq!(
        (calls.entries(), calls.imports(), calls.total()),
        (7, 7, 14)
    );
    assert_eq!(calls.count("proxy_log"), 2);

    // The VM's record holds the request's crossings and, separately, the root context's.
    let vm = h.vm_host_calls(0);
    assert_eq!(vm.since(&started).by_name(), calls.by_name());
    h.advance(Duration::from_millis(1000))?;
    let tick = h.vm_host_calls(0).since(&vm);
    assert_eq!(tick.count("proxy_on_tick"), 1, "{tick}");
    assert!(tick.count("proxy_set_shared_data") >= 1, "{tick}");
    assert_eq!(
        r.host_calls(),
        calls,
        "a root-context tick is not the request's"
    );
    Ok(())
}

/// A wrong expectation fails, and says what was observed (as a table to paste).
#[test]
fn host_call_expectation_failure_prints_the_observed_table() -> Result<()> {
    use meshguard_harness::CallKind::Import;
    let h = probe()?.configure("")?;
    let calls = h.request().header("x-probe", "time").send()?.host_calls();
    let failure = std::panic::catch_unwind(|| {
        calls.assert_counts(&[(Import, "proxy_get_header_map_value", 1)]);
    });
    let message = failure
        .err()
        .and_then(|e| e.downcast::<String>().ok())
        .expect("an incomplete table must fail");
    for needle in [
        "Entry proxy_on_request_headers: expected 0, observed 1",
        "(Import, \"proxy_log\", 2),",
        "      malloc",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from:\n{message}"
        );
    }
    Ok(())
}
