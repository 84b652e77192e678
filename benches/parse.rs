//! Parsing one event line, on one thread: the JSON text to a typed `Event` (`event`) and with
//! its content fingerprint (`fingerprinted`, what a post does per line before the rules). The
//! lines are `junbao bench`'s premiums and enrolments. And the encodings of a premium: its
//! fingerprint, as computed and as the plain definition says, and its entry's canonical bytes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use junbao_engine::parse_fingerprinted;
use junbao_ledger::entry::{
    ENTRY_FORMAT_VERSION, Entry, Posting, encode, event_fingerprint, sha256,
};
use junbao_ledger::event::parse_event_line;
use junbao_ledger::fund::{AccountKind, Holding};
use junbao_ledger::{Account, Date, Fen, Fund, Period};

const LINES: usize = 1_000;

fn contribution(i: usize) -> String {
    let (m, k) = (i % 8_000, i / 8_000);
    format!(
        r#"{{"id":"c-{m}-{k}","type":"contribution","member":"M{m:07}","fund":"medical","period":"{:04}-{:02}","amount":"100.00","unit":"U{:03}"}}"#,
        2014 + k / 12,
        k % 12 + 1,
        m % 100
    )
}

fn enroll(m: usize) -> String {
    format!(
        r#"{{"id":"enroll-{m}","type":"enroll","member":"M{m:07}","category":"officer","unit":"U{:03}","enlisted_on":"2014-01-01","monthly_pay":"10000.00"}}"#,
        m % 100
    )
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, lines) in [
        ("contribution", (0..LINES).map(contribution).collect::<Vec<_>>()),
        ("enroll", (0..LINES).map(enroll).collect::<Vec<_>>()),
    ] {
        group.bench_function(format!("{name}/event"), |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(parse_event_line(black_box(l)).unwrap());
                }
            });
        });
        group.bench_function(format!("{name}/fingerprinted"), |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(parse_fingerprinted(black_box(l)).unwrap());
                }
            });
        });
    }
    group.finish();
}

fn encode_premium(c: &mut Criterion) {
    let event = parse_event_line(&contribution(12_345)).unwrap();
    let member = match &event.body {
        junbao_ledger::EventBody::Contribution { member, .. } => member.clone(),
        _ => unreachable!("a contribution line"),
    };
    let unit = junbao_ledger::ids::UnitId::parse("U045").unwrap();
    let entry = Entry {
        format: ENTRY_FORMAT_VERSION,
        seq: 108_024,
        recorded_at_us: 1_764_000_000_000_000,
        value_date: Date(19_000),
        event: event.clone(),
        postings: vec![
            Posting {
                account: Account::member(Fund::Medical, &member, None, Holding::Personal),
                amount: Fen(10_000),
            },
            Posting {
                account: Account {
                    fund: Fund::Medical,
                    kind: AccountKind::UnitReceivable {
                        unit,
                        period: Period { year: 2014, month: 2 },
                    },
                },
                amount: Fen(-10_000),
            },
        ],
    };
    let mut group = c.benchmark_group("encode");
    group.bench_function("event_fingerprint", |b| {
        b.iter(|| event_fingerprint(black_box(&event)));
    });
    group.bench_function("event_fingerprint_by_definition", |b| {
        b.iter(|| sha256(&encode(black_box(&event))))
    });
    group.bench_function("entry_canonical_bytes", |b| {
        b.iter(|| black_box(&entry).canonical_bytes());
    });
    group.bench_function("entry_canonical_bytes_by_definition", |b| {
        b.iter(|| encode(black_box(&entry)))
    });
    group.finish();
}

criterion_group!(benches, parse, encode_premium);
criterion_main!(benches);
