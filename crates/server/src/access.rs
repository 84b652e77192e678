//! The access log: every read of members' records (Art. 43), one JSON line each, synced before
//! the data is sent. A read that cannot be logged is not served.
//!
//! ```json
//! {"at":"2026-11-25T08:00:00.000000Z","token":"audit-1","role":"auditor","read":"statement","member":"M0001"}
//! ```
//!
//! It names the token (never the token itself), what was read and the member id or the scope;
//! it holds no amounts and nothing else about the member.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use crate::auth::Principal;

#[derive(Debug)]
pub struct AccessLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AccessLog {
    pub fn open(path: &Path) -> std::io::Result<AccessLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AccessLog { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut line = json!({"at": at, "token": who.name, "role": who.role.name(), "read": read});
        if let Some(m) = member {
            line["member"] = json!(m);
        }
        if let Some(s) = scope {
            line["scope"] = json!(s);
        }
        let mut text = line.to_string();
        text.push('\n');
        let mut file = self.file.lock().expect("the access log lock is never held across a panic");
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}
