//! Durable append of contribution events through the engine, end to end (parse, rules, hash,
//! synced RocksDB write), in batches of 1,000 and 8,000. `make bench` runs it; the figures are
//! in docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use junbao_engine::{Ledger, system_clock};

const MEMBERS: usize = 8_000;

fn enroll(m: usize) -> String {
    format!(
        r#"{{"id":"e{m}","type":"enroll","member":"M{m:06}","category":"officer","unit":"U1","enlisted_on":"2014-01-01","monthly_pay":"10000.00"}}"#
    )
}

fn contribution(m: usize, k: usize) -> String {
    format!(
        r#"{{"id":"c{m}-{k}","type":"contribution","member":"M{m:06}","fund":"medical","period":"{:04}-{:02}","amount":"100.00","unit":"U1"}}"#,
        2014 + k / 12,
        k % 12 + 1
    )
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_append");
    group.sample_size(10);
    for batch in [1_000usize, 8_000] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::init(dir.path(), system_clock()).unwrap();
        let lines: Vec<String> = (0..MEMBERS).map(enroll).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        ledger.post_lines(&refs).unwrap();
        // Each iteration posts the next `batch` premiums: (member, month) never repeats.
        let mut next = 0usize;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("contributions", batch), |b| {
            b.iter_batched(
                || {
                    let lines: Vec<String> = (next..next + batch)
                        .map(|i| contribution(i % MEMBERS, i / MEMBERS))
                        .collect();
                    next += batch;
                    lines
                },
                |lines| {
                    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                    let s = ledger.post_lines(&refs).unwrap();
                    assert_eq!(s.accepted, batch);
                },
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
