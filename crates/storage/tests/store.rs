//! The store's own promises, tested without the ledger above it: an append is all or nothing,
//! a failed write or sync poisons the handle, the durable head moves only with a sync, and a
//! head that does not name the last stored entry is refused at open.

use junbao_storage::{
    APPEND_ENTRIES_MAX, Append, Entries, Head, OpenError, Store, StoredEntry, WAL_FILES_KEPT_MAX,
    WriteError, wal_files,
};

/// `n` entries following `head`, with made-up chain hashes (the store does not recompute the
/// chain; it checks that the head names the last entry).
fn entries_after(head: Head, n: usize) -> (Vec<StoredEntry>, Head) {
    let entries: Vec<StoredEntry> = (1..=n as u64)
        .map(|i| {
            let seq = head.seq + i;
            StoredEntry {
                seq,
                chain_hash: [seq as u8; 32],
                bytes: format!("entry {seq}").into_bytes(),
            }
        })
        .collect();
    let next = entries.last().map_or(head, |e| Head { seq: e.seq, hash: e.chain_hash });
    (entries, next)
}

fn append_n(store: &Store, n: usize) -> Append {
    let (entries, head) = entries_after(store.head(), n);
    Append {
        entries: entries.into(),
        ids: vec![(format!("id-{}", head.seq).into_bytes(), b"record".to_vec())],
        balances: vec![(b"medical:pool".to_vec(), head.seq as i64)],
        head,
        ..Append::default()
    }
}

fn stored_seqs(store: &Store) -> Vec<u64> {
    store.entries(1, usize::MAX).map(|r| r.unwrap().seq).collect()
}

#[test]
fn appended_entries_and_head_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let head = {
        let store = Store::create(&path).unwrap();
        store.append(append_n(&store, 3)).unwrap();
        store.append(append_n(&store, 2)).unwrap();
        assert_eq!(store.durable_head(), store.head());
        store.head()
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head(), head);
    assert_eq!(stored_seqs(&store), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        store.balances().unwrap(),
        vec![(b"medical:pool".to_vec(), 5i64.to_le_bytes().to_vec())]
    );
}

#[test]
fn a_failed_write_stores_nothing_and_poisons_the_handle_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let before = {
        let store = Store::create(&path).unwrap();
        store.append(append_n(&store, 2)).unwrap();
        let before = store.head();
        store.inject_write_failure();
        assert!(matches!(store.append(append_n(&store, 4)), Err(WriteError::Engine(_))));
        assert!(store.is_poisoned());
        assert_eq!(store.head(), before, "a failed append does not move the head");
        assert!(matches!(store.append(append_n(&store, 1)), Err(WriteError::Poisoned)));
        assert!(matches!(store.sync(), Err(WriteError::Poisoned)));
        before
    };
    let store = Store::open(&path).unwrap();
    assert!(!store.is_poisoned());
    assert_eq!(store.head(), before);
    assert_eq!(stored_seqs(&store), vec![1, 2]);
    store.append(append_n(&store, 1)).unwrap();
    assert_eq!(store.head().seq, 3);
}

#[test]
fn a_deferred_append_is_durable_only_after_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    store.append(append_n(&store, 1)).unwrap();
    let durable = store.durable_head();
    store.append_deferred(append_n(&store, 3)).unwrap();
    assert_eq!(store.head().seq, 4, "a deferred append is visible at once");
    assert_eq!(store.durable_head(), durable, "but not durable");
    let synced = store.sync().unwrap();
    assert_eq!(synced, store.head());
    assert_eq!(store.durable_head(), store.head());
}

#[test]
fn a_failed_sync_poisons_and_leaves_the_durable_head_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    store.append(append_n(&store, 1)).unwrap();
    let durable = store.durable_head();
    store.append_deferred(append_n(&store, 2)).unwrap();
    store.inject_sync_failure();
    assert!(store.sync().is_err());
    assert!(store.is_poisoned());
    assert_eq!(store.durable_head(), durable);
    assert!(matches!(store.append(append_n(&store, 1)), Err(WriteError::Poisoned)));
}

#[test]
fn a_batch_over_the_entry_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    let too_many = append_n(&store, APPEND_ENTRIES_MAX + 1);
    assert!(
        matches!(store.append(too_many), Err(WriteError::TooLarge(n)) if n == APPEND_ENTRIES_MAX + 1)
    );
    assert_eq!(store.head().seq, 0);
    assert!(stored_seqs(&store).is_empty());
    assert!(!store.is_poisoned(), "a refused batch is not a disk failure");
}

#[test]
#[should_panic(expected = "appended entries must be dense")]
fn an_append_that_skips_a_sequence_number_stops_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    let (entries, _) = entries_after(store.head(), 3);
    // Entries 2 and 3 after an empty journal: entry 1 is skipped.
    let mut skipping = Entries::starting_at(2);
    for e in &entries[1..] {
        skipping.push(&e.bytes, e.chain_hash);
    }
    let head = Head { seq: 2, hash: entries[2].chain_hash };
    let _ = store.append(Append { entries: skipping, head, ..Append::default() });
}

/// Entries one by one (as reads give them) must be dense to make an append's entries.
#[test]
#[should_panic(expected = "appended entries must be dense")]
fn entries_given_one_by_one_must_be_dense() {
    let (mut entries, _) = entries_after(Head::default(), 2);
    entries[1].seq = 3;
    let _ = Entries::from(entries);
}

#[test]
#[should_panic(expected = "the head advances by the number of entries")]
fn an_append_whose_head_does_not_match_its_entries_stops_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    let (entries, mut head) = entries_after(store.head(), 2);
    head.seq += 1;
    let _ = store.append(Append { entries: entries.into(), head, ..Append::default() });
}

#[test]
fn open_refuses_a_head_that_names_an_entry_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::create(&path).unwrap();
        store.append(append_n(&store, 2)).unwrap();
        store.tamper_head(Head { seq: 7, hash: [9; 32] }).unwrap();
    }
    match Store::open(&path) {
        Err(OpenError::Corrupt(msg)) => assert!(msg.contains("names entry 7"), "{msg}"),
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn create_refuses_a_folder_that_holds_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Store::create(&path).unwrap());
    assert!(matches!(Store::create(&path), Err(OpenError::AlreadyExists(_))));
}

#[test]
fn open_of_a_missing_ledger_says_so() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Store::open(&dir.path().join("none")), Err(OpenError::Missing(_))));
}

#[test]
fn a_checkpoint_holds_every_append_before_it_none_after_and_opens_as_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    store.append(append_n(&store, 3)).unwrap();
    // Deferred (not yet synced) appends are in the copy too: the checkpoint syncs first.
    store.append_deferred(append_n(&store, 2)).unwrap();
    store.flush_memtables().unwrap();
    store.append_deferred(append_n(&store, 1)).unwrap();
    let copy_path = dir.path().join("copy");
    let head = store.checkpoint(&copy_path).unwrap();
    assert_eq!(head, store.head());
    assert_eq!(store.durable_head(), head);
    store.append(append_n(&store, 4)).unwrap();

    let copy = Store::open(&copy_path).unwrap();
    assert_eq!(copy.head(), head);
    assert_eq!(stored_seqs(&copy), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(stored_seqs(&store).len(), 10);
}

#[test]
fn meta_last_reads_the_greatest_key_under_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("db")).unwrap();
    assert_eq!(store.meta_last(b"digest/").unwrap(), None);
    let key = |n: u64| [b"digest/".as_slice(), &n.to_be_bytes()].concat();
    let append = Append {
        meta: vec![
            (key(7), b"seven".to_vec()),
            (key(300), b"three hundred".to_vec()),
            (key(12), b"twelve".to_vec()),
            (b"digesu".to_vec(), b"after the prefix".to_vec()),
        ],
        head: store.head(),
        ..Append::default()
    };
    store.append(append).unwrap();
    assert_eq!(store.meta_last(b"digest/").unwrap(), Some((key(300), b"three hundred".to_vec())));
    assert_eq!(store.meta_last(b"nothing/").unwrap(), None);
}

/// The journal is kept in blocks of 16 (docs/FORMAT.md §2): appends of every size, starting
/// anywhere in a block, read back entry by entry and as ranges, before and after a reopen.
#[test]
fn appends_of_any_size_read_back_across_block_boundaries_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let sizes = [1usize, 15, 1, 16, 17, 3, 40, 2];
    let total: usize = sizes.iter().sum();
    let mut written = Vec::new();
    {
        let store = Store::create(&path).unwrap();
        for n in sizes {
            let (entries, head) = entries_after(store.head(), n);
            written.extend(entries.clone());
            store.append(Append { entries: entries.into(), head, ..Append::default() }).unwrap();
            assert_eq!(stored_seqs(&store), (1..=head.seq).collect::<Vec<_>>());
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head().seq, total as u64);
    for e in &written {
        assert_eq!(store.entry(e.seq).unwrap().as_ref(), Some(e));
    }
    assert_eq!(store.entry(total as u64 + 1).unwrap(), None);
    assert_eq!(store.entry(0).unwrap(), None);
    for from in [1u64, 15, 16, 17, 33, 90] {
        let got: Vec<StoredEntry> = store.entries(from, 20).map(Result::unwrap).collect();
        let want: Vec<StoredEntry> =
            written.iter().filter(|e| e.seq >= from).take(20).cloned().collect();
        assert_eq!(got, want, "from {from}");
    }
    // The reopened store continues the partial last block.
    let (entries, head) = entries_after(store.head(), 5);
    written.extend(entries.clone());
    store.append(Append { entries: entries.into(), head, ..Append::default() }).unwrap();
    let all: Vec<StoredEntry> = store.entries(1, usize::MAX).map(Result::unwrap).collect();
    assert_eq!(all, written);
}

/// A store of format 1 (one record per entry) is refused at open with a message that says how
/// to convert it; `migrate_v1` converts it in place, keeping every entry, the head and the
/// other records, and refuses a journal that its check rejects without changing anything.
#[test]
fn a_format1_store_is_refused_and_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (entries, head) = entries_after(Head::default(), 37);
    let state = vec![(b"s/".to_vec(), b"standards".to_vec())];
    Store::create_format1_for_tests(&path, &entries, &[("state", state.clone())]).unwrap();
    match Store::open(&path) {
        Err(e @ OpenError::NeedsMigration(_)) => assert!(e.to_string().contains("migrate"), "{e}"),
        other => panic!("a format-1 store was not refused: {other:?}"),
    }
    // A check that rejects entry 20: nothing changes, the store is still format 1.
    let err = Store::migrate_v1(
        &path,
        &mut |e| {
            if e.seq == 20 { Err("bad link".into()) } else { Ok(()) }
        },
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("entry 20"), "{err}");
    assert!(matches!(Store::open(&path), Err(OpenError::NeedsMigration(_))));

    let mut seen = 0;
    let report = Store::migrate_v1(
        &path,
        &mut |e| {
            seen += 1;
            assert_eq!(e.seq, seen);
            Ok(())
        },
        &[b"covered"],
    )
    .unwrap();
    assert_eq!((report.entries, report.head), (37, head));
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head(), head);
    let all: Vec<StoredEntry> = store.entries(1, usize::MAX).map(Result::unwrap).collect();
    assert_eq!(all, entries);
    assert_eq!(store.state().unwrap(), state);
    assert_eq!(store.meta(b"covered").unwrap(), Some(37u64.to_be_bytes().to_vec()));
    drop(store);
    assert!(matches!(
        Store::migrate_v1(&path, &mut |_| Ok(()), &[]),
        Err(junbao_storage::MigrateError::NotNeeded(2))
    ));
}

#[test]
fn opens_keep_the_replayed_log_but_never_more_than_the_bound_of_log_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let head = {
        let store = Store::create(&path).unwrap();
        store.append(append_n(&store, 20)).unwrap();
        store.head()
    };
    // The open keeps what it replayed in memtables: the log stays, no table file is written.
    let tables = |path: &std::path::Path| {
        std::fs::read_dir(path)
            .unwrap()
            .filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|x| x == "sst"))
            .count()
    };
    drop(Store::open(&path).unwrap());
    assert_eq!(tables(&path), 0, "the open flushed what it replayed");
    assert!(wal_files(&path) >= 2);
    // Read-only opens, one after the other: each starts an empty log, and past the bound an
    // open flushes, after which RocksDB deletes the logs.
    let mut most = 0;
    for _ in 0..3 * WAL_FILES_KEPT_MAX {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.head(), head);
        assert_eq!(stored_seqs(&store), (1..=20).collect::<Vec<u64>>());
        drop(store);
        most = most.max(wal_files(&path));
    }
    assert!(most <= WAL_FILES_KEPT_MAX + 1, "{most} log files");
    assert!(tables(&path) > 0, "no open flushed");
}

/// An open holds RocksDB's automatic compactions (the state loads meanwhile); they are on
/// again once resumed or once the store is written to, and a created store never holds them.
#[test]
fn compactions_are_held_from_open_until_resumed_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::create(&path).unwrap();
        assert!(!store.compactions_held());
        store.append(append_n(&store, 3)).unwrap();
    }
    {
        let store = Store::open(&path).unwrap();
        assert!(store.compactions_held());
        assert_eq!(stored_seqs(&store), vec![1, 2, 3]);
        store.resume_compactions().unwrap();
        assert!(!store.compactions_held());
        store.resume_compactions().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert!(store.compactions_held());
    store.append(append_n(&store, 2)).unwrap();
    assert!(!store.compactions_held());
    assert_eq!(stored_seqs(&store), vec![1, 2, 3, 4, 5]);
}

/// A table file ingested into the state holds, for a key given twice, its last value; a delete
/// removes a record; the `ids` file also records the entry it is of. A snapshot taken before
/// an ingestion does not see it; the records are there after a reopen; and a table file a
/// crash left in the folder is removed at the next open. An ingestion of records of entries not
/// yet durable stops before writing.
#[test]
fn ingested_records_keep_the_last_value_spare_earlier_snapshots_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::create(&path).unwrap();
    store.append(append_n(&store, 3)).unwrap();
    let put = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
    store.ingest_state(vec![put("m/a", "1"), put("m/b", "2"), put("m/a", "3")], 3).unwrap();
    let before = store.snapshot();
    store.ingest_state(vec![(b"m/b".to_vec(), None), put("m/c", "4")], store.head().seq).unwrap();
    store.ingest_index(vec![(b"id-x".to_vec(), b"r".to_vec())], 3).unwrap();
    assert_eq!(before.state_record(b"m/b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(before.state_record(b"m/c").unwrap(), None);
    assert_eq!(before.index_until().unwrap(), 0);
    drop(before);
    let check = |store: &Store| {
        assert_eq!(store.state_record(b"m/a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(store.state_record(b"m/b").unwrap(), None);
        assert_eq!(store.state_record(b"m/c").unwrap(), Some(b"4".to_vec()));
        assert_eq!(store.index_until().unwrap(), 3);
        assert_eq!(store.ids_get(&[b"id-x"]).unwrap(), vec![Some(b"r".to_vec())]);
    };
    check(&store);
    assert!(!path.join(junbao_storage::INGEST_FILE).exists(), "moved into the store");
    drop(store);
    std::fs::write(path.join(junbao_storage::INGEST_FILE), b"half a table file").unwrap();
    let store = Store::open(&path).unwrap();
    check(&store);
    assert!(!path.join(junbao_storage::INGEST_FILE).exists(), "removed at the open");
    let (entries, head) = entries_after(store.head(), 1);
    store.append_deferred(Append { entries: entries.into(), head, ..Append::default() }).unwrap();
    let early = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.ingest_state(vec![put("m/d", "5")], head.seq)
    }));
    assert!(early.is_err(), "a state as of an entry not yet durable");
    assert_eq!(store.state_record(b"m/d").unwrap(), None);
}
