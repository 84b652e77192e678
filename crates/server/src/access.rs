//! The access log: every read of members' records (Art. 43), one JSON line each, synced before
//! the data is sent. A read that cannot be logged is not served.
//!
//! ```json
//! {"at":"2026-11-25T08:00:00.000000Z","member":"M0001","prev":"…","read":"statement","role":"auditor","token":"audit-1"}
//! ```
//!
//! It names the token (never the token itself), what was read and the member id or the scope;
//! it holds no amounts and nothing else about the member. Each line carries `prev`, the SHA-256
//! of the line before it (32 zero bytes for the first), so a line edited, removed or inserted
//! is found by [`verify_access_log`] (docs/FORMAT.md §10).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::Principal;

#[derive(Debug)]
struct Tail {
    file: File,
    /// SHA-256 of the last line written (without its newline).
    last: [u8; 32],
    /// Length of the file up to the end of the last complete line.
    len: u64,
    /// Number of complete lines.
    lines: u64,
    /// A failed append could not be undone: nothing more is written until the log is opened
    /// again (which recovers the torn tail).
    poisoned: bool,
}

#[derive(Debug)]
pub struct AccessLog {
    path: PathBuf,
    tail: Mutex<Tail>,
}

/// The access log does not verify, or cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessLogError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: line {line}: {reason}")]
    Broken { path: String, line: usize, reason: String },
}

/// What a verified access log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogReport {
    pub records: usize,
    /// SHA-256 of the last line, hex: publish it to pin the log as it is now.
    pub last: String,
}

fn line_hash(line: &str) -> [u8; 32] {
    Sha256::digest(line.as_bytes()).into()
}

/// Checks every line's `prev` against the hash of the line before it.
pub fn verify_access_log(path: &Path) -> Result<AccessLogReport, AccessLogError> {
    verify_access_log_anchored(path, None)
}

/// As [`verify_access_log`], and, with an anchor (from a signed digest, whose signature the
/// caller checked with the pinned key), that the log still holds at least `anchor.lines` lines
/// and that its line `anchor.lines` hashes to `anchor.head`: the lines the digest anchored were
/// not rewritten since, not even with the whole chain recomputed after them.
pub fn verify_access_log_anchored(
    path: &Path,
    anchor: Option<&junbao_engine::AccessAnchor>,
) -> Result<AccessLogReport, AccessLogError> {
    let io = |e: std::io::Error| AccessLogError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = File::open(path).map_err(io)?;
    let mut previous = [0u8; 32];
    let mut records = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        let broken = |reason: String| AccessLogError::Broken {
            path: path.display().to_string(),
            line: i + 1,
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| broken(format!("not JSON: {e}")))?;
        let prev = v["prev"].as_str().ok_or_else(|| broken("no \"prev\"".into()))?;
        if prev != hex::encode(previous) {
            return Err(broken(
                "\"prev\" is not the hash of the line before: a line was changed, removed or \
                 inserted"
                    .into(),
            ));
        }
        previous = line_hash(&line);
        records += 1;
        if let Some(a) = anchor
            && a.lines == records as u64
            && a.head != previous
        {
            return Err(broken(format!(
                "the signed digest anchors line {} of the log with hash {}, but it hashes to {}: \
                 the log was rewritten after the digest was signed",
                a.lines,
                hex::encode(a.head),
                hex::encode(previous)
            )));
        }
    }
    if let Some(a) = anchor {
        if a.lines > records as u64 {
            return Err(AccessLogError::Broken {
                path: path.display().to_string(),
                line: records,
                reason: format!(
                    "the log has {records} lines but the signed digest anchors {}: lines were \
                     removed after the digest was signed",
                    a.lines
                ),
            });
        }
        if a.lines == 0 && a.head != [0u8; 32] {
            return Err(AccessLogError::Broken {
                path: path.display().to_string(),
                line: 0,
                reason: "the signed digest anchors an empty log with a non-zero hash".into(),
            });
        }
    }
    Ok(AccessLogReport { records, last: hex::encode(previous) })
}

/// Cuts an incomplete last line (bytes after the last newline: a crash or a full disk in the
/// middle of an append; such a line was never synced whole, so no read it records was
/// answered). Returns how many bytes were cut.
fn cut_torn_tail(path: &Path) -> Result<u64, AccessLogError> {
    use std::io::{Read, Seek, SeekFrom};
    /// The tail is searched backwards in steps of this size: a log's lines are short, so one
    /// step nearly always finds the last newline without reading the whole log.
    const STEP_BYTES: u64 = 64 * 1024;
    let io = |e: std::io::Error| AccessLogError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    let mut end = len;
    let mut complete = 0;
    while end > 0 {
        let start = end.saturating_sub(STEP_BYTES);
        let mut chunk = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut chunk).map_err(io)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            complete = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    let torn = len - complete;
    if torn > 0 {
        file.set_len(complete).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    Ok(torn)
}

impl AccessLog {
    /// Opens (or creates) the log. A torn last line is cut and the cut is recorded as a new
    /// line of the chain; the complete lines are then verified, so that the chain is never
    /// extended from a broken one.
    pub fn open(path: &Path) -> Result<AccessLog, AccessLogError> {
        let torn = cut_torn_tail(path)?;
        let (last, lines) = if path.exists() {
            let report = verify_access_log(path)?;
            let mut last = [0u8; 32];
            hex::decode_to_slice(&report.last, &mut last).expect("64 hex digits");
            (last, report.records as u64)
        } else {
            ([0u8; 32], 0)
        };
        let io = |e: std::io::Error| AccessLogError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let log = AccessLog {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail { file, last, len, lines, poisoned: false }),
        };
        if torn > 0 {
            log.append(
                json!({"recovered": format!("an incomplete last line of {torn} bytes was cut")}),
            )
            .map_err(io)?;
        }
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's head as it stands: what a signed digest anchors (docs/FORMAT.md §10).
    pub fn anchor(&self) -> junbao_engine::AccessAnchor {
        let tail = self.tail.lock().expect("the access log lock is never held across a panic");
        junbao_engine::AccessAnchor { lines: tail.lines, head: tail.last }
    }

    /// Appends and syncs one record. `member` is the member read, or `None` for reads that
    /// cover many members; `scope` says which (e.g. `unit U001`, `entries 1..100`).
    pub fn record(
        &self,
        who: &Principal,
        read: &str,
        member: Option<&str>,
        scope: Option<&str>,
    ) -> std::io::Result<()> {
        let mut record = json!({"token": who.name, "role": who.role.name(), "read": read});
        if let Some(m) = member {
            record["member"] = json!(m);
        }
        if let Some(s) = scope {
            record["scope"] = json!(s);
        }
        self.append(record)
    }

    /// Adds `at` and `prev` to `record`, appends it as one line and syncs. A failed append (a
    /// full disk) is cut off again, so the next line chains on the last complete one; if even
    /// that fails, the log takes no more lines until it is reopened.
    fn append(&self, mut record: serde_json::Value) -> std::io::Result<()> {
        let mut tail = self.tail.lock().expect("the access log lock is never held across a panic");
        if tail.poisoned {
            return Err(std::io::Error::other(
                "the access log could not undo a failed append; reopen it",
            ));
        }
        record["at"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        record["prev"] = json!(hex::encode(tail.last));
        let line = record.to_string();
        let hash = line_hash(&line);
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let written = tail.file.write_all(&bytes).and_then(|()| tail.file.sync_data());
        if let Err(e) = written {
            let len = tail.len;
            if tail.file.set_len(len).and_then(|()| tail.file.sync_data()).is_err() {
                tail.poisoned = true;
            }
            return Err(e);
        }
        tail.len += bytes.len() as u64;
        tail.lines += 1;
        tail.last = hash;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn who() -> Principal {
        Principal { name: "audit-1".into(), role: Role::Auditor, units: Default::default() }
    }

    #[test]
    fn the_chain_survives_a_reopen_and_finds_a_changed_removed_or_inserted_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.jsonl");
        let log = AccessLog::open(&path).unwrap();
        log.record(&who(), "statement", Some("M1"), None).unwrap();
        log.record(&who(), "balance", None, Some("all members")).unwrap();
        drop(log);
        let log = AccessLog::open(&path).unwrap();
        log.record(&who(), "statement", Some("M2"), None).unwrap();
        drop(log);
        let report = verify_access_log(&path).unwrap();
        assert_eq!(report.records, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let broken_at = |lines: Vec<String>| {
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
            match verify_access_log(&path).unwrap_err() {
                AccessLogError::Broken { line, .. } => line,
                other => panic!("{other}"),
            }
        };
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut changed = own(&lines);
        changed[0] = changed[0].replace("M1", "M9");
        assert_eq!(broken_at(changed), 2, "the next line no longer matches");
        assert_eq!(broken_at(own(&[lines[0], lines[2]])), 2, "a removed line");
        assert_eq!(broken_at(own(&[lines[0], lines[0], lines[1], lines[2]])), 2, "an inserted one");
        assert!(AccessLog::open(&path).is_err(), "a broken log is not extended");
    }

    #[test]
    fn a_line_cut_mid_write_is_cut_on_open_and_the_cut_is_recorded_in_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.jsonl");
        let log = AccessLog::open(&path).unwrap();
        log.record(&who(), "statement", Some("M1"), None).unwrap();
        log.record(&who(), "statement", Some("M2"), None).unwrap();
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = text.len() - 20;
        std::fs::write(&path, &text[..cut]).unwrap();
        assert!(verify_access_log(&path).is_err(), "a torn line does not verify");
        let log = AccessLog::open(&path).unwrap();
        log.record(&who(), "statement", Some("M3"), None).unwrap();
        drop(log);
        let report = verify_access_log(&path).unwrap();
        assert_eq!(report.records, 3, "M1, the recovery note, M3");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().nth(1).unwrap().contains("an incomplete last line of"));
        assert!(!text.contains("M2"));
    }

    #[test]
    fn a_torn_tail_longer_than_one_search_step_is_cut_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.jsonl");
        let log = AccessLog::open(&path).unwrap();
        log.record(&who(), "statement", Some("M1"), None).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        let complete = bytes.len();
        // Zeros, as a file extended but never written before a crash may hold.
        bytes.extend(std::iter::repeat_n(0u8, 200 * 1024));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(cut_torn_tail(&path).unwrap(), 200 * 1024);
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, complete);
        assert_eq!(verify_access_log(&path).unwrap().records, 1);
        // A log that is all torn is cut to nothing.
        std::fs::write(&path, b"{\"at\":").unwrap();
        assert_eq!(cut_torn_tail(&path).unwrap(), 6);
        assert_eq!(verify_access_log(&path).unwrap().records, 0);
    }
}
