//! Backups: a consistent copy of the ledger taken while it serves, a manifest that says what
//! the copy holds (tree size, head, the signed digest at that size, a SHA-256 of every file),
//! and the checks that a copy is whole before it is trusted or restored.
//!
//! A backup folder holds `manifest.json` and `ledger/`, the copy of the store. The signing key
//! is not in it: a backup travels, the key should not (docs/OPERATIONS.md).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use junbao_ledger::merkle;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::StoreNodes;
use crate::{Ledger, SignedDigest};

/// The manifest's file name in a backup folder.
pub const BACKUP_MANIFEST: &str = "manifest.json";
/// The folder, inside a backup, that holds the copy of the store.
pub const BACKUP_LEDGER_DIR: &str = "ledger";
/// The manifest's format tag.
pub const BACKUP_FORMAT: &str = "junbao-backup-v1";
/// Most files a backup may list (a store has a few per column family and level).
const BACKUP_FILES_MAX: usize = 100_000;

/// One file of a backup: its path under the backup folder, size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// What a backup holds.
#[derive(Debug, Clone)]
pub struct BackupManifest {
    pub tree_size: u64,
    pub head: [u8; 32],
    pub root: [u8; 32],
    /// Signed by the ledger's key at `tree_size` when the backup was taken.
    pub digest: SignedDigest,
    pub files: Vec<BackupFile>,
    /// How long posts waited while the copy was cut (not in the manifest file), microseconds.
    pub writer_paused_us: u64,
    /// Files hard-linked from an earlier backup instead of copied (not in the manifest file).
    pub files_linked: usize,
}

/// A backup could not be taken, or a backup is not whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The target is not usable (exists, holds a ledger): nothing was written.
    #[error("{0}")]
    Target(String),
    /// A file of the backup is missing, extra or damaged: the backup must not be trusted.
    #[error("integrity failure: backup file {file}: {what}")]
    File { file: String, what: String },
    /// The manifest, its digest or the restored ledger do not agree.
    #[error("integrity failure: {0}")]
    Integrity(String),
    #[error("{0}")]
    Io(String),
}

impl BackupError {
    /// Whether this is an integrity failure (exit status 3).
    pub fn is_integrity(&self) -> bool {
        matches!(self, BackupError::File { .. } | BackupError::Integrity(_))
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> BackupError {
    move |e| BackupError::Io(format!("{what}: {e}"))
}

impl BackupManifest {
    pub fn to_json(&self) -> Value {
        json!({
            "format": BACKUP_FORMAT,
            "tree_size": self.tree_size,
            "head": hex::encode(self.head),
            "root": hex::encode(self.root),
            "digest": self.digest.to_json(),
            "files": self.files.iter().map(|f| json!({
                "path": f.path, "bytes": f.bytes, "sha256": hex::encode(f.sha256),
            })).collect::<Vec<_>>(),
        })
    }

    pub fn from_json(v: &Value) -> Result<BackupManifest, BackupError> {
        let bad = |f: &str| BackupError::File {
            file: BACKUP_MANIFEST.into(),
            what: format!("field \"{f}\" is missing or malformed"),
        };
        if v["format"].as_str() != Some(BACKUP_FORMAT) {
            return Err(BackupError::File {
                file: BACKUP_MANIFEST.into(),
                what: format!("format is not {BACKUP_FORMAT}"),
            });
        }
        let hash = |f: &str, x: &Value| -> Result<[u8; 32], BackupError> {
            hex::decode(x.as_str().ok_or_else(|| bad(f))?)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(f))
        };
        let listed = v["files"].as_array().ok_or_else(|| bad("files"))?;
        if listed.len() > BACKUP_FILES_MAX {
            return Err(bad("files"));
        }
        let mut files = Vec::with_capacity(listed.len());
        for f in listed {
            let path = f["path"].as_str().ok_or_else(|| bad("files.path"))?;
            files.push(BackupFile {
                path: path.to_string(),
                bytes: f["bytes"].as_u64().ok_or_else(|| bad("files.bytes"))?,
                sha256: hash("files.sha256", &f["sha256"])?,
            });
        }
        Ok(BackupManifest {
            writer_paused_us: 0,
            files_linked: 0,
            tree_size: v["tree_size"].as_u64().ok_or_else(|| bad("tree_size"))?,
            head: hash("head", &v["head"])?,
            root: hash("root", &v["root"])?,
            digest: SignedDigest::from_json(&v["digest"]).map_err(|e| BackupError::File {
                file: BACKUP_MANIFEST.into(),
                what: e.to_string(),
            })?,
            files,
        })
    }
}

/// SHA-256 and length of a file, read in blocks.
fn file_sha256(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hasher.finalize().into(), len))
}

/// The files of a backup's store folder, as paths relative to the backup, sorted.
fn list_files(backup: &Path) -> Result<Vec<String>, BackupError> {
    let dir = backup.join(BACKUP_LEDGER_DIR);
    let mut names = Vec::new();
    for item in std::fs::read_dir(&dir).map_err(io(format!("reading {}", dir.display())))? {
        let item = item.map_err(io(format!("reading {}", dir.display())))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let kind = item.file_type().map_err(io(format!("reading {}", dir.display())))?;
        if !kind.is_file() {
            return Err(BackupError::File {
                file: format!("{BACKUP_LEDGER_DIR}/{name}"),
                what: "is not a regular file".into(),
            });
        }
        names.push(format!("{BACKUP_LEDGER_DIR}/{name}"));
    }
    names.sort();
    Ok(names)
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed into place.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(io(format!("writing {}", path.display())))
}

fn is_empty_or_missing(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(BackupError::Io(format!("reading {}: {e}", dir.display()))),
    }
}

impl Ledger {
    /// Takes a backup into `to` (missing or empty) while the ledger keeps serving: posts wait
    /// for the moment the copy is cut (hard links and a short log), not for the copying and checksums. The
    /// copy holds every entry acknowledged before the call; its manifest carries a digest of
    /// exactly that tree, signed with `key`.
    ///
    /// With `since` (an earlier backup of this ledger), a table file that the earlier backup
    /// holds with the same content (its SHA-256, read from both files) is hard-linked from it
    /// instead of copied: the backup is incremental on disk, yet stands alone (deleting the
    /// earlier one leaves it whole). Where linking fails (another file system), it copies.
    pub fn backup(
        &self,
        key: &SigningKey,
        to: &Path,
        since: Option<&Path>,
    ) -> Result<BackupManifest, BackupError> {
        let previous = match since {
            None => HashMap::new(),
            Some(p) => previous_files(p)?,
        };
        if !is_empty_or_missing(to)? {
            return Err(BackupError::Target(format!(
                "{} is not empty; a backup goes into a new folder",
                to.display()
            )));
        }
        let dest = to.join(BACKUP_LEDGER_DIR);
        std::fs::create_dir_all(&dest).map_err(io(format!("creating {}", dest.display())))?;
        // The copy is cut next to the store (hard links: no data copied while posts wait),
        // then copied to `to`, which may be on another disk, with the posts going on.
        let staging = self.store.path().join(format!(".backup-staging-{}", self.now_us()));
        let result = self.backup_via(key, &staging, &dest, &previous);
        let _ = std::fs::remove_dir_all(&staging);
        let (digest, paused, files, linked) = result?;
        let manifest = BackupManifest {
            tree_size: digest.tree_size,
            head: digest.head,
            root: digest.root,
            digest,
            files,
            writer_paused_us: paused.as_micros() as u64,
            files_linked: linked,
        };
        let text =
            serde_json::to_string_pretty(&manifest.to_json()).expect("a manifest is plain JSON");
        write_synced(&to.join(BACKUP_MANIFEST), text.as_bytes())?;
        Ok(manifest)
    }
}

impl Ledger {
    /// Cuts the copy into `staging` under the writer lock, signs its digest, then copies the
    /// files into `dest`, hashing them on the way.
    #[allow(clippy::type_complexity)]
    fn backup_via(
        &self,
        key: &SigningKey,
        staging: &Path,
        dest: &Path,
        previous: &HashMap<String, (PathBuf, u64)>,
    ) -> Result<(SignedDigest, std::time::Duration, Vec<BackupFile>, usize), BackupError> {
        // Most of the memtables reach table files before posts are held up.
        self.store
            .flush_memtables()
            .map_err(|e| BackupError::Io(format!("flushing the store: {e}")))?;
        let (digest, paused) = {
            // No post, digest or transfer between the head read, the copy and the signature.
            let _writer = self.writer();
            let started = std::time::Instant::now();
            let head = self
                .store
                .checkpoint(staging)
                .map_err(|e| BackupError::Io(format!("copying the store: {e}")))?;
            let root = merkle::root(&StoreNodes { store: &self.store }, head.seq).map_err(|e| {
                // A node the disk failed to read is I/O; one that is wrong or missing, integrity.
                let e = crate::AuditError::from(e);
                match e.kind() {
                    crate::ErrorKind::Io => BackupError::Io(format!("the stored Merkle tree: {e}")),
                    _ => BackupError::Integrity(format!("the stored Merkle tree: {e}")),
                }
            })?;
            let d = SignedDigest::sign(key, head.seq, root, head.hash, self.now_us(), None);
            (d, started.elapsed())
        };
        let mut names = Vec::new();
        for item in
            std::fs::read_dir(staging).map_err(io(format!("reading {}", staging.display())))?
        {
            let item = item.map_err(io(format!("reading {}", staging.display())))?;
            names.push(item.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        let mut linked = 0;
        for name in names {
            let (from, to) = (staging.join(&name), dest.join(&name));
            let reused = match previous.get(&name) {
                Some((earlier, bytes)) => link_if_same(&from, earlier, *bytes, &to)
                    .map_err(io(format!("comparing {name} with {}", earlier.display())))?,
                None => None,
            };
            let (sha256, bytes) = match reused {
                Some(found) => {
                    linked += 1;
                    found
                }
                None => copy_hashing(&from, &to)
                    .map_err(io(format!("copying {name} into {}", dest.display())))?,
            };
            files.push(BackupFile { path: format!("{BACKUP_LEDGER_DIR}/{name}"), bytes, sha256 });
        }
        std::fs::File::open(dest)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("syncing {}", dest.display())))?;
        Ok((digest, paused, files, linked))
    }
}

/// The table files of an earlier backup, by name: their path and size. Only immutable table
/// files (`*.sst`) are candidates; the manifest must read, but it is not trusted: a file is
/// reused only if its own bytes hash as the new one's do.
fn previous_files(since: &Path) -> Result<HashMap<String, (PathBuf, u64)>, BackupError> {
    let text = std::fs::read_to_string(since.join(BACKUP_MANIFEST))
        .map_err(|e| BackupError::Target(format!("--since {}: {e}", since.display())))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        BackupError::Target(format!("--since {}: the manifest is not JSON: {e}", since.display()))
    })?;
    let m = BackupManifest::from_json(&v)
        .map_err(|e| BackupError::Target(format!("--since {}: {e}", since.display())))?;
    Ok(m.files
        .into_iter()
        .filter_map(|f| {
            let name = f.path.strip_prefix(&format!("{BACKUP_LEDGER_DIR}/"))?.to_string();
            (name.ends_with(".sst") && !name.contains('/'))
                .then(|| (name.clone(), (since.join(&f.path), f.bytes)))
        })
        .collect())
}

/// Hard-links `earlier` to `to` if it holds the same bytes as `current` (same size and
/// SHA-256); returns that SHA-256 and size, or `None` (nothing created) if the files differ
/// or cannot be linked.
fn link_if_same(
    current: &Path,
    earlier: &Path,
    earlier_bytes: u64,
    to: &Path,
) -> std::io::Result<Option<([u8; 32], u64)>> {
    if std::fs::metadata(current)?.len() != earlier_bytes {
        return Ok(None);
    }
    let Ok((earlier_sha, _)) = file_sha256(earlier) else { return Ok(None) };
    let (sha, bytes) = file_sha256(current)?;
    if sha != earlier_sha || bytes != earlier_bytes {
        return Ok(None);
    }
    Ok(std::fs::hard_link(earlier, to).ok().map(|()| (sha, bytes)))
}

/// Copies `from` to `to` (created), synced, and returns the SHA-256 and length of what it read.
fn copy_hashing(from: &Path, to: &Path) -> std::io::Result<([u8; 32], u64)> {
    let mut src = std::fs::File::open(from)?;
    let mut dst = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut dst, &buf[..n])?;
        len += n as u64;
    }
    dst.sync_all()?;
    Ok((hasher.finalize().into(), len))
}

/// Checks a backup folder without opening its store: the manifest reads, its digest is signed
/// by `trusted_key` (pinned, never the key the manifest carries) and names the manifest's tree
/// size, head and root, and every file is there with its size and SHA-256, with no file
/// added. The error names the first file that differs.
pub fn check_backup_files(
    backup: &Path,
    trusted_key: &[u8; 32],
) -> Result<BackupManifest, BackupError> {
    let manifest_path = backup.join(BACKUP_MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BackupError::File { file: BACKUP_MANIFEST.into(), what: "is missing".into() }
        } else {
            BackupError::Io(format!("reading {}: {e}", manifest_path.display()))
        }
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| BackupError::File {
        file: BACKUP_MANIFEST.into(),
        what: format!("is not JSON: {e}"),
    })?;
    let manifest = BackupManifest::from_json(&v)?;
    let d = &manifest.digest;
    d.verify_signature(Some(trusted_key)).map_err(|e| BackupError::File {
        file: BACKUP_MANIFEST.into(),
        what: format!("its digest: {e}"),
    })?;
    if d.tree_size != manifest.tree_size || d.head != manifest.head || d.root != manifest.root {
        return Err(BackupError::File {
            file: BACKUP_MANIFEST.into(),
            what: "its tree size, head or root differ from its signed digest's".into(),
        });
    }
    let present = list_files(backup)?;
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if let Some(extra) = present.iter().find(|p| !listed.contains(&p.as_str())) {
        return Err(BackupError::File {
            file: extra.clone(),
            what: "is not in the manifest".into(),
        });
    }
    for f in &manifest.files {
        if !present.contains(&f.path) {
            return Err(BackupError::File { file: f.path.clone(), what: "is missing".into() });
        }
        let (sha256, bytes) = file_sha256(&backup.join(&f.path)).map_err(|e| {
            // A file gone is the backup's fault; a file the disk cannot read, the disk's.
            if e.kind() == std::io::ErrorKind::NotFound {
                BackupError::File { file: f.path.clone(), what: e.to_string() }
            } else {
                BackupError::Io(format!("reading backup file {}: {e}", f.path))
            }
        })?;
        if bytes != f.bytes {
            return Err(BackupError::File {
                file: f.path.clone(),
                what: format!("is {bytes} bytes, the manifest says {}", f.bytes),
            });
        }
        if sha256 != f.sha256 {
            return Err(BackupError::File {
                file: f.path.clone(),
                what: "its SHA-256 differs from the manifest's (the file is damaged)".into(),
            });
        }
    }
    Ok(manifest)
}

/// What a restore (or a full check of a backup) established.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub manifest: BackupManifest,
    pub verify: crate::VerifyReport,
    pub restored_to: PathBuf,
}

/// Restores a backup into `to`, a folder that must not hold a ledger (nor anything else):
/// checks the files ([`check_backup_files`]), copies the store, opens it, runs a full
/// [`Ledger::verify`], and checks that the restored head, tree size and root are those of the
/// manifest's signed digest. On any failure the partial copy is removed.
pub fn restore_backup(
    backup: &Path,
    to: &Path,
    trusted_key: &[u8; 32],
    clock: crate::Clock,
) -> Result<RestoreReport, BackupError> {
    if to.join("CURRENT").exists() {
        return Err(BackupError::Target(format!(
            "{} holds a ledger; restore into a new folder, never over a ledger",
            to.display()
        )));
    }
    if !is_empty_or_missing(to)? {
        return Err(BackupError::Target(format!(
            "{} is not empty; restore into a new folder",
            to.display()
        )));
    }
    let manifest = check_backup_files(backup, trusted_key)?;
    std::fs::create_dir_all(to).map_err(io(format!("creating {}", to.display())))?;
    let restored = (|| {
        for f in &manifest.files {
            let name = Path::new(&f.path).file_name().expect("listed files have a name");
            let dest = to.join(name);
            std::fs::copy(backup.join(&f.path), &dest)
                .map_err(io(format!("copying {}", f.path)))?;
            std::fs::File::open(&dest)
                .and_then(|f| f.sync_all())
                .map_err(io(format!("syncing {}", dest.display())))?;
        }
        // The copies were checked at the source; check what landed, before opening it.
        for f in &manifest.files {
            let name = Path::new(&f.path).file_name().expect("listed files have a name");
            let (sha256, _) = file_sha256(&to.join(name))
                .map_err(io(format!("reading the restored {}", f.path)))?;
            if sha256 != f.sha256 {
                return Err(BackupError::File {
                    file: f.path.clone(),
                    what: "the restored copy differs from the backup (disk error?)".into(),
                });
            }
        }
        let ledger = Ledger::open(to, clock).map_err(|e| {
            let what = format!("the restored ledger does not open: {e}");
            if e.is_integrity() { BackupError::Integrity(what) } else { BackupError::Io(what) }
        })?;
        let verify = ledger.verify(&|_| {}).map_err(|e| {
            let what = format!("the restored ledger: {e}");
            if e.is_integrity() { BackupError::Integrity(what) } else { BackupError::Io(what) }
        })?;
        let head = ledger.head();
        if head.seq != manifest.tree_size || head.hash != manifest.digest.head {
            return Err(BackupError::Integrity(format!(
                "the restored ledger ends at entry {} but the signed digest names entry {}",
                head.seq, manifest.tree_size
            )));
        }
        let root = ledger
            .root(head.seq)
            .map_err(|e| BackupError::Integrity(format!("the restored tree: {e}")))?;
        if root != manifest.digest.root {
            return Err(BackupError::Integrity(
                "the restored ledger's Merkle root differs from the signed digest's".into(),
            ));
        }
        Ok(verify)
    })();
    match restored {
        Ok(verify) => Ok(RestoreReport { manifest, verify, restored_to: to.to_path_buf() }),
        Err(e) => {
            // Never leave a half-restored ledger that a later command could take for a good one.
            let _ = std::fs::remove_dir_all(to);
            Err(e)
        }
    }
}

/// What `backup` prints (and `POST /v1/admin/backup` answers).
pub fn backup_summary(m: &BackupManifest, to: &Path) -> Value {
    json!({
        "backup": to.display().to_string(),
        "tree_size": m.tree_size,
        "head": hex::encode(m.head),
        "root": hex::encode(m.root),
        "files": m.files.len(),
        "bytes": m.files.iter().map(|f| f.bytes).sum::<u64>(),
        "digest": m.digest.to_json(),
        "writer_paused_ms": m.writer_paused_us / 1000,
        "files_linked": m.files_linked,
    })
}
