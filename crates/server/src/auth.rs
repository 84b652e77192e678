//! Bearer tokens and roles.
//!
//! Tokens are 32 random bytes, written as `jbt_` and 64 hex digits, shown once when created.
//! The tokens file keeps only their SHA-256: a stolen file grants nothing. (A token is a random
//! secret, not a password, so one unsalted hash is enough: there is no dictionary to try.)
//!
//! ```json
//! {"tokens": [{"name": "finance-U001", "role": "poster", "units": ["U001"], "sha256": "…"}]}
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A unit's finance department: posts events about members of its units, reads their
    /// statements.
    Poster,
    /// Reads everything, posts nothing.
    Auditor,
    /// Transfer clerk: exports and confirms transfers, exports balances.
    Clerk,
    /// Records standards and fund-level events; may do everything.
    Admin,
}

impl Role {
    pub const NAMES: &'static str = "poster, auditor, clerk or admin";

    pub fn name(self) -> &'static str {
        match self {
            Role::Poster => "poster",
            Role::Auditor => "auditor",
            Role::Clerk => "clerk",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "poster" => Ok(Role::Poster),
            "auditor" => Ok(Role::Auditor),
            "clerk" => Ok(Role::Clerk),
            "admin" => Ok(Role::Admin),
            other => Err(format!("{other:?} is not a role; expected {}", Role::NAMES)),
        }
    }

    /// The permission table (docs/HTTP.md). Posters' unit restriction is checked apart.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Poster => matches!(action, Post | Statement | Proof | Digest),
            Role::Auditor => {
                matches!(
                    action,
                    Balances | Statement | Journal | Reports | VerifyPackage | Proof | Digest
                )
            }
            Role::Clerk => {
                matches!(action, Balances | Statement | Transfer | VerifyPackage | Proof | Digest)
            }
        }
    }
}

/// What a request asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Post,
    Balances,
    Statement,
    Journal,
    Reports,
    Transfer,
    VerifyPackage,
    Proof,
    Digest,
    /// Take a backup (`POST /v1/admin/backup`): admin only.
    Backup,
}

/// One token's record in the tokens file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
    /// SHA-256 of the token, hex.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenRecord>,
}

/// Who is asking: the token's name (logged; never the token), role and units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// Shared: every post of a poster carries it to the writer.
    pub units: Arc<BTreeSet<String>>,
}

/// The tokens file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The tokens the server accepts, by the hash of the token.
#[derive(Debug, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Arc<Principal>>,
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Most tokens one file may hold.
pub const TOKENS_MAX: usize = 10_000;

impl Tokens {
    /// Reads and checks a tokens file: each record's name unique, role known, units given for
    /// posters only, hash 64 hex digits.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let file = read_file(path)?;
        let invalid =
            |reason: String| TokensError::Invalid { path: path.display().to_string(), reason };
        if file.tokens.len() > TOKENS_MAX {
            return Err(invalid(format!("more than {TOKENS_MAX} tokens")));
        }
        let mut tokens = Tokens::default();
        let mut names = BTreeSet::new();
        for (i, t) in file.tokens.iter().enumerate() {
            let at = |field: &str, why: &str| invalid(format!("tokens[{i}].{field}: {why}"));
            if t.name.is_empty()
                || t.name.len() > 64
                || !t.name.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(at("name", "1 to 64 printable ASCII characters"));
            }
            if !names.insert(t.name.clone()) {
                return Err(at("name", "used by an earlier token"));
            }
            match (t.role, t.units.is_empty()) {
                (Role::Poster, true) => {
                    return Err(at("units", "a poster needs at least one unit"));
                }
                (Role::Poster, false) => {}
                (_, false) => return Err(at("units", "only posters are restricted to units")),
                (_, true) => {}
            }
            let hash: [u8; 32] = hex::decode(&t.sha256)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| at("sha256", "64 hex digits expected"))?;
            let principal = Principal {
                name: t.name.clone(),
                role: t.role,
                units: Arc::new(t.units.iter().cloned().collect()),
            };
            if tokens.by_hash.insert(hash, Arc::new(principal)).is_some() {
                return Err(at("sha256", "the same token is listed twice"));
            }
        }
        Ok(tokens)
    }

    /// The principal a presented token stands for.
    pub fn find(&self, token: &str) -> Option<&Arc<Principal>> {
        self.by_hash.get(&token_hash(token))
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn read_file(path: &Path) -> Result<TokensFile, TokensError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokensFile::default()),
        Err(e) => {
            return Err(TokensError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text).map_err(|e| TokensError::Invalid {
        path: path.display().to_string(),
        reason: format!("line {}: {e}", e.line()),
    })
}

/// Creates a token, adds its hash to the tokens file (created if absent) and returns the token,
/// which is not kept anywhere.
pub fn add_token(
    path: &Path,
    name: &str,
    role: Role,
    units: &[String],
) -> Result<String, TokensError> {
    let _lock = lock_file(path)?;
    let mut file = read_file(path)?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| TokensError::Io {
        path: path.display().to_string(),
        reason: format!("no randomness for the token: {e}"),
    })?;
    let token = format!("jbt_{}", hex::encode(random));
    file.tokens.push(TokenRecord {
        name: name.to_string(),
        role,
        units: units.to_vec(),
        sha256: hex::encode(token_hash(&token)),
    });
    write_file(path, &file)?;
    Ok(token)
}

/// Removes the token named `name` from the tokens file; it no longer works once the server
/// reloads its tokens (SIGHUP) or restarts.
pub fn remove_token(path: &Path, name: &str) -> Result<(), TokensError> {
    let _lock = lock_file(path)?;
    let mut file = read_file(path)?;
    let before = file.tokens.len();
    file.tokens.retain(|t| t.name != name);
    if file.tokens.len() == before {
        return Err(TokensError::Invalid {
            path: path.display().to_string(),
            reason: format!("no token is named {name:?}"),
        });
    }
    write_file(path, &file)
}

/// Takes the exclusive lock of the tokens file (`FILE.lock`, kept beside it) for a
/// read-modify-write, so that concurrent `token add` runs each keep their token.
fn lock_file(path: &Path) -> Result<std::fs::File, TokensError> {
    let lock_path = path.with_extension("json.lock");
    let io = |e: std::io::Error| TokensError::Io {
        path: lock_path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io(e.into()))?;
    Ok(file)
}

/// Writes the tokens file through a temporary file of its own (unique name, synced, checked
/// as the server will read it), renamed over the old one; the caller holds the lock.
fn write_file(path: &Path, file: &TokensFile) -> Result<(), TokensError> {
    let text = serde_json::to_string_pretty(file).expect("tokens serialise");
    let io = |e: std::io::Error| TokensError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp =
        tempfile::Builder::new().prefix(".tokens-").suffix(".tmp").tempfile_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, (text + "\n").as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    Tokens::load(tmp.path())?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_hash_and_the_file_holds_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let t = add_token(&path, "finance-U001", Role::Poster, &["U001".into()]).unwrap();
        let a = add_token(&path, "audit", Role::Auditor, &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&t[4..]) && !text.contains(&a[4..]), "no token at rest");
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.find(&t).unwrap().role, Role::Poster);
        assert_eq!(tokens.find(&a).unwrap().name, "audit");
        assert!(tokens.find("jbt_00").is_none());
    }

    #[test]
    fn a_bad_tokens_file_names_the_record_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        add_token(&path, "p", Role::Poster, &["U1".into()]).unwrap();
        assert!(
            add_token(&path, "p", Role::Clerk, &[])
                .unwrap_err()
                .to_string()
                .contains("tokens[1].name")
        );
        let err = add_token(&path, "q", Role::Clerk, &["U1".into()]).unwrap_err().to_string();
        assert!(err.contains("tokens[1].units"), "{err}");
        assert!(
            add_token(&path, "r", Role::Poster, &[])
                .unwrap_err()
                .to_string()
                .contains("tokens[1].units")
        );
        std::fs::write(&path, r#"{"tokens":[{"name":"x","role":"boss","sha256":"00"}]}"#).unwrap();
        assert!(Tokens::load(&path).unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn the_permission_table() {
        use Action::*;
        assert!(Role::Poster.allows(Post) && !Role::Poster.allows(Journal));
        assert!(!Role::Auditor.allows(Post) && Role::Auditor.allows(Journal));
        assert!(Role::Clerk.allows(Transfer) && !Role::Clerk.allows(Post));
        assert!(!Role::Auditor.allows(Transfer) && !Role::Poster.allows(Balances));
        assert!(Role::Admin.allows(Post) && Role::Admin.allows(Transfer));
    }
}
