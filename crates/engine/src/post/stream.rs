//! Posting a stream of batches through a pipeline over the cores: while batch N is synced,
//! batch N+1 goes through the rules and is written, and batch N+2 is parsed. Each batch is
//! one post (all or nothing on its own, one write); its answer is given only once the write
//! that carries it is durable, as [`Ledger::post_lines`] does.

use std::sync::mpsc::{channel, sync_channel};
use std::time::Instant;

use super::{PostError, PostRequest, PostScope, PostSummary, parse_fingerprinted};
use crate::Ledger;
use crate::commit::acknowledged;

impl Ledger {
    /// Posts `batches` of JSON lines in order, each as one post, pipelined: a parser thread
    /// works ahead, this thread applies the rules and writes each batch unsynced, and a syncer
    /// thread syncs the write-ahead log (once for every batch written meanwhile) before a
    /// batch's answer counts. Returns one answer per batch, in order, once every stored batch
    /// is durable; a batch that was written but whose sync failed is answered with the error.
    /// Line numbers count from 1 in each batch.
    pub fn post_stream<I>(&self, batches: I) -> Vec<Result<PostSummary, PostError>>
    where
        I: IntoIterator<Item = Vec<String>>,
        I::IntoIter: Send,
    {
        let batches = batches.into_iter();
        std::thread::scope(|scope| {
            // Two parsed batches wait at most: the parser stays ahead without running away.
            let (parsed_tx, parsed_rx) = sync_channel::<(PostRequest, std::time::Duration)>(2);
            let (written_tx, written_rx) = channel::<Result<PostSummary, PostError>>();
            scope.spawn(move || {
                for lines in batches {
                    let started = Instant::now();
                    let events = lines
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| !l.trim().is_empty())
                        .map(|(i, l)| (i + 1, parse_fingerprinted(l)))
                        .collect();
                    let request = PostRequest { events, scope: PostScope::Any };
                    if parsed_tx.send((request, started.elapsed())).is_err() {
                        return;
                    }
                }
            });
            let syncer = scope.spawn(move || {
                let mut answers = Vec::new();
                while let Ok(first) = written_rx.recv() {
                    let mut group = vec![first];
                    while let Ok(more) = written_rx.try_recv() {
                        group.push(more);
                    }
                    let synced = self.sync_if_behind().unwrap_or(Ok(()));
                    answers.extend(group.into_iter().map(|a| acknowledged(&synced, a)));
                }
                answers
            });
            for (request, parse) in parsed_rx {
                let mut answer =
                    self.post_group_deferred(vec![request]).pop().expect("one answer per request");
                if let Ok(summary) = answer.as_mut() {
                    summary.timings.parse = parse;
                }
                if written_tx.send(answer).is_err() {
                    break;
                }
            }
            drop(written_tx);
            syncer.join().expect("the syncer thread does not panic")
        })
    }
}
