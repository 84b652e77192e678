//! A byte flipped on disk inside an SST file of a compacted ledger is an integrity failure:
//! `junbao verify` exits 3 (not 1, not a panic) and says the stored data is corrupted.

mod common;

use common::*;
use junbao_engine::{Ledger, system_clock};

#[test]
fn a_flipped_byte_inside_an_sst_file_makes_verify_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    {
        let ledger = Ledger::init(&data, system_clock()).unwrap();
        let mut lines = vec![];
        for m in 0..200 {
            let member = format!("M{m:04}");
            lines.push(enroll(&format!("e{m}"), &member, "officer", "U1", "2020-01-01", "9000.00"));
            for month in 1..=6 {
                let period = format!("2024-{month:02}");
                lines.push(contribution(&format!("c{m}-{month}"), &member, &period, "90.00", "U1"));
            }
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        ledger.post_lines(&refs).unwrap();
        ledger.store_for_tests().compact().unwrap();
    }
    // The journal's entries are the bulk of the data: flip one byte in the middle of the
    // largest SST file, inside a data block.
    let largest = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a compacted ledger has SST files");
    let mut bytes = std::fs::read(&largest).unwrap();
    let pos = bytes.len() / 3;
    bytes[pos] ^= 0x40;
    std::fs::write(&largest, &bytes).unwrap();

    let out = std::process::Command::new(bin())
        .args(["--data", data.to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "verify must report corruption as integrity: {err}");
    assert!(
        err.to_lowercase().contains("corrupt"),
        "the message says the data is corrupted: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_tampered_head_record_is_an_integrity_failure_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    {
        let ledger = Ledger::init(&data, system_clock()).unwrap();
        let head = ledger.head();
        ledger
            .store_for_tests()
            .tamper_head(junbao_engine::Head { seq: head.seq + 5, hash: [7; 32] })
            .unwrap();
    }
    for args in [&["verify"][..], &["balance"][..]] {
        let out = std::process::Command::new(bin())
            .args(["--data", data.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("corrupt"), "{err}");
    }
}
