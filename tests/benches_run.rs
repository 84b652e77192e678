//! The benchmarks of docs/PERFORMANCE.md run and measure what they claim: every batch of
//! `bench` is stored (pipelined and sequential), and every request of `bench-http` is a
//! stored entry, posted by a unit's poster in its unit's id namespace.

fn junbao(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_junbao")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn bench_posts_every_batch_pipelined_and_sequential() {
    for extra in [None, Some("--sequential")] {
        let mut args = vec!["bench", "--batch", "100", "--entries", "1000", "--members", "50"];
        args.extend(extra);
        let r = junbao(&args);
        assert_eq!(r["entries"], 1000, "{r}");
        assert_eq!(r["pipelined"], extra.is_none(), "{r}");
        // The ledger verified after the run holds the enrolments, seeds and every premium.
        assert!(r["verify_entries"].as_u64().unwrap() > 1050, "{r}");
        assert!(r["entries_per_second"].as_f64().unwrap() > 0.0, "{r}");
        // The end-to-end rate counts the closing checkpoint of every premium posted too.
        assert_eq!(r["checkpoint_entries"], 1000, "{r}");
        let with = r["entries_per_second_with_checkpoint"].as_f64().unwrap();
        assert!(with > 0.0 && with <= r["entries_per_second"].as_f64().unwrap(), "{r}");
    }
}

/// `bench --raw` times only the raw writer, over the bytes of every premium of the run, in
/// batches of the run's size.
#[test]
fn bench_raw_writes_every_premium_and_times_nothing_else() {
    let r = junbao(&["bench", "--raw", "--batch", "100", "--entries", "1000", "--members", "50"]);
    assert_eq!(
        (r["raw"].as_bool(), r["entries"].as_u64(), r["batch"].as_u64()),
        (Some(true), Some(1000), Some(100)),
        "{r}"
    );
    assert!(r["raw_entries_per_second"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r.get("entries_per_second").is_none() && r.get("verify_entries").is_none(), "{r}");
}

#[test]
fn bench_http_stores_every_request() {
    let r = junbao(&["bench-http", "--clients", "4", "--requests", "300", "--members", "50"]);
    assert_eq!(
        (r["requests_ok"].as_u64(), r["requests_failed"].as_u64()),
        (Some(300), Some(0)),
        "{r}"
    );
    assert!(r["first_failure"].is_null(), "{r}");
    // Seeds, 50 enrolments and the 300 premiums, verified by the benchmark after the run.
    assert!(r["verified_entries"].as_u64().unwrap() >= 350, "{r}");
}
