//! `junbao mirror`: a local, verified copy of a remote ledger, that can serve its read routes;
//! `junbao mirror status`: how far behind it is.
//!
//! Each round reads the remote's signed digest, checks it against the pinned key, proves it
//! consistent with the last digest the mirror trusted (RFC 6962 consistency proof), fetches
//! the new entries' canonical bytes from `/v1/journal`, and stores them only if their chain
//! and Merkle root end at the signed head and root (`Ledger::append_recorded`). A digest that
//! contradicts one already held stops the mirror with exit status 3, both digests kept in
//! `DIR/evidence/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use junbao_engine::{Ledger, MirrorError, RemoteEntry, SignedDigest, system_clock};
use junbao_ledger::merkle;
use serde_json::{Value, json};

/// The mirror's own file in its folder: where it copies from, the pinned key, the last round.
const MIRROR_FILE: &str = "mirror.json";
/// Where a mirror keeps the digests that contradict each other.
const EVIDENCE_DIR: &str = "evidence";
/// Entries asked for per journal request (the server's page bound).
const PAGE_ENTRIES: usize = junbao_engine::JOURNAL_PAGE_ENTRIES_MAX;
/// A request to the remote not answered in this time is a failed round.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `mirror status` waits for the remote's health route.
const STATUS_WAIT: Duration = Duration::from_secs(3);

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MirrorArgs {
    #[command(subcommand)]
    action: Option<MirrorAction>,
    /// The remote `junbao serve`, e.g. http://10.0.0.5:8080 (plain HTTP; see
    /// docs/OPERATIONS.md for transport security).
    #[arg(long)]
    from: Option<String>,
    /// A token of the remote with the auditor (or admin) role.
    #[arg(long, env = "JUNBAO_MIRROR_TOKEN")]
    token: Option<String>,
    /// The remote ledger's public key (pinned): 64 hex digits or a file holding them. The key
    /// the remote sends is never trusted.
    #[arg(long)]
    key: Option<String>,
    /// Seconds between rounds.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// One round, then exit (for a timer, and tests).
    #[arg(long)]
    once: bool,
    /// Also answer the read routes from the copy (a read replica) on this address; port 0
    /// picks one (printed on the first line of output). Tokens: DIR/tokens.json.
    #[arg(long)]
    serve: Option<String>,
}

#[derive(Subcommand, Debug)]
enum MirrorAction {
    /// How far behind the mirror is: as of its last round (DIR/mirror.json, so it works while
    /// the mirror runs), and against the remote's size now (its /health).
    Status,
}

/// A plain HTTP/1.1 request to `base` (`http://host:port`); the status and the JSON answer.
pub async fn http(
    timeout: Duration,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<(hyper::StatusCode, Value)> {
    let authority = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: only http://HOST:PORT is supported"))?
        .trim_end_matches('/');
    anyhow::ensure!(!authority.contains('/'), "{base}: give the server's root, HOST:PORT");
    let call = async {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", authority);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| json!({"error": String::from_utf8_lossy(&bytes[..bytes.len().min(500)])}),
        );
        anyhow::Ok((status, v))
    };
    tokio::time::timeout(timeout, call)
        .await
        .with_context(|| format!("{method} {base}{path}: no answer in {timeout:?}"))?
}

async fn get_ok(base: &str, path: &str, token: &str) -> Result<Value> {
    let (status, v) = http(REQUEST_TIMEOUT, base, "GET", path, Some(token), None).await?;
    if !status.is_success() {
        bail!("GET {path}: {status}: {}", v["error"]);
    }
    Ok(v)
}

/// What a round found.
struct Round {
    remote: SignedDigest,
    stored: u64,
}

/// The remote contradicts what the mirror holds: stop, keep the evidence.
struct Contradiction {
    what: String,
    held: Option<SignedDigest>,
    presented: SignedDigest,
    proof: Option<Value>,
}

enum RoundError {
    Contradiction(Box<Contradiction>),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for RoundError {
    fn from(e: anyhow::Error) -> RoundError {
        RoundError::Other(e)
    }
}

impl From<tokio::task::JoinError> for RoundError {
    fn from(e: tokio::task::JoinError) -> RoundError {
        RoundError::Other(e.into())
    }
}

impl From<junbao_engine::AuditError> for RoundError {
    fn from(e: junbao_engine::AuditError) -> RoundError {
        RoundError::Other(e.into())
    }
}

fn hash32(v: &Value) -> Option<[u8; 32]> {
    hex::decode(v.as_str()?).ok()?.try_into().ok()
}

async fn round(
    ledger: &Arc<Ledger>,
    base: &str,
    token: &str,
    pinned: &[u8; 32],
) -> Result<Round, RoundError> {
    let presented = SignedDigest::from_json(&get_ok(base, "/v1/digest", token).await?)
        .map_err(|e| anyhow::anyhow!("the remote's digest: {e}"))?;
    let l = Arc::clone(ledger);
    let (held, head, ours) = tokio::task::spawn_blocking(move || {
        let head = l.head();
        (l.latest_digest(), head, l.root(head.seq))
    })
    .await?;
    // `held` is the last digest of the remote this copy stored (the evidence, if it comes to
    // that); `ours` the root of everything it holds, each entry of which was checked against
    // a signed digest (a copy killed while catching up holds entries past `held`).
    let (held, ours) = (held?, ours?);
    let contradiction = |what: String, proof: Option<Value>| {
        RoundError::Contradiction(Box::new(Contradiction {
            what,
            held: held.clone(),
            presented: presented.clone(),
            proof,
        }))
    };
    if let Err(e) = presented.verify_signature(Some(pinned)) {
        return Err(contradiction(
            format!("the remote's digest does not verify against the pinned key: {e}"),
            None,
        ));
    }
    if held.is_none() && head.seq > 0 {
        return Err(RoundError::Other(anyhow::anyhow!(
            "this copy holds {} entries but no digest of the remote",
            head.seq
        )));
    }
    if presented.tree_size < head.seq {
        let size = presented.tree_size;
        let l = Arc::clone(ledger);
        let at_size = tokio::task::spawn_blocking(move || l.root(size)).await??;
        let what = if at_size == presented.root {
            format!(
                "the remote now holds {} entries, fewer than the {} this mirror verified: \
                 entries it signed for are gone from it",
                presented.tree_size, head.seq
            )
        } else {
            format!(
                "the remote's digest at tree size {} is not a prefix of the history this \
                 mirror holds ({} entries): its history was rewritten",
                presented.tree_size, head.seq
            )
        };
        return Err(contradiction(what, None));
    }
    if presented.tree_size == head.seq {
        if presented.root != ours || presented.head != head.hash {
            return Err(contradiction(
                format!(
                    "the remote's digest at tree size {} names another root than the one this \
                     mirror holds for that size: its history was rewritten",
                    head.seq
                ),
                None,
            ));
        }
        if held.as_ref().is_some_and(|h| h.tree_size == head.seq) {
            return Ok(Round { remote: presented, stored: 0 });
        }
    } else if head.seq > 0 {
        let (proof, path) = consistency(base, token, head.seq, presented.tree_size).await?;
        let checked =
            path.ok_or_else(|| "the proof's path is malformed".to_string()).and_then(|path| {
                merkle::verify_consistency(
                    head.seq,
                    presented.tree_size,
                    &ours,
                    &presented.root,
                    &path,
                )
                .map_err(|e| e.to_string())
            });
        if let Err(e) = checked {
            return Err(contradiction(
                format!(
                    "the remote's digest at tree size {} is not consistent with the history of \
                     {} entries this mirror holds ({e}): its history was rewritten or forked",
                    presented.tree_size, head.seq
                ),
                Some(proof),
            ));
        }
    }
    // Copy in steps of at most one write; a step short of the digest comes with a consistency
    // proof from where it ends to the digest.
    let mut at = head.seq;
    let target = presented.tree_size;
    loop {
        let end = (at + junbao_engine::MIRROR_STEP_ENTRIES_MAX as u64).min(target);
        let entries = fetch_entries(base, token, at + 1, end).await?;
        let path = if end < target {
            let (_, path) = consistency(base, token, end, target).await?;
            Some(path.context("the remote's consistency proof is malformed")?)
        } else {
            None
        };
        let (l, d, pinned) = (Arc::clone(ledger), presented.clone(), *pinned);
        let stored = tokio::task::spawn_blocking(move || {
            l.append_recorded(entries, &d, &pinned, path.as_deref())
        })
        .await?;
        match stored {
            Ok(h) => at = h.seq,
            Err(MirrorError::Integrity(what)) => {
                return Err(contradiction(
                    format!(
                        "the remote's entries do not give its own signed digest at tree size \
                         {}: {what}",
                        presented.tree_size
                    ),
                    None,
                ));
            }
            Err(e) => return Err(RoundError::Other(e.into())),
        }
        if at >= target {
            break;
        }
    }
    Ok(Round { remote: presented, stored: at - head.seq })
}

/// The remote's consistency proof between two tree sizes: the JSON, and its path if well formed.
async fn consistency(
    base: &str,
    token: &str,
    from: u64,
    to: u64,
) -> Result<(Value, Option<Vec<[u8; 32]>>)> {
    let proof = get_ok(base, &format!("/v1/proofs/consistency?from={from}&to={to}"), token).await?;
    let path = proof["path"].as_array().and_then(|p| p.iter().map(hash32).collect());
    Ok((proof, path))
}

/// Entries `from..=to` of the remote's journal, with their canonical bytes.
async fn fetch_entries(base: &str, token: &str, from: u64, to: u64) -> Result<Vec<RemoteEntry>> {
    let mut entries = Vec::with_capacity(to.saturating_sub(from) as usize + 1);
    let mut next = from;
    while next <= to {
        let want = ((to - next + 1) as usize).min(PAGE_ENTRIES);
        let page = get_ok(base, &format!("/v1/journal?from={next}&limit={want}"), token).await?;
        let list = page["entries"].as_array().context("the journal page has no entries")?;
        anyhow::ensure!(!list.is_empty(), "the remote's journal ends before entry {next}");
        for e in list.iter().take(want) {
            let seq = e["seq"].as_u64().context("a journal entry without seq")?;
            let bytes = hex::decode(e["bytes"].as_str().with_context(|| {
                format!("entry {seq} comes without its bytes (the remote predates mirrors)")
            })?)
            .with_context(|| format!("entry {seq}: bytes are not hex"))?;
            let chain_hash =
                hash32(&e["hash"]).with_context(|| format!("entry {seq}: hash is malformed"))?;
            entries.push(RemoteEntry { seq, bytes, chain_hash });
            next += 1;
        }
    }
    Ok(entries)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Writes `v` to `path` through a temporary file and a rename: a reader never sees half.
fn write_json(path: &Path, v: &Value) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(v)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn keep_evidence(data: &Path, c: &Contradiction) -> Result<Vec<PathBuf>> {
    let dir = data.join(EVIDENCE_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
    let mut kept = Vec::new();
    if let Some(h) = &c.held {
        let p = dir.join(format!("{stamp}-held-digest.json"));
        write_json(&p, &h.to_json())?;
        kept.push(p);
    }
    let p = dir.join(format!("{stamp}-presented-digest.json"));
    write_json(&p, &c.presented.to_json())?;
    kept.push(p);
    if let Some(proof) = &c.proof {
        let p = dir.join(format!("{stamp}-consistency-proof.json"));
        write_json(&p, proof)?;
        kept.push(p);
    }
    let p = dir.join(format!("{stamp}-what.txt"));
    std::fs::write(&p, format!("{}\n", c.what))?;
    kept.push(p);
    Ok(kept)
}

pub fn run(data: &Path, args: MirrorArgs) -> Result<()> {
    if let Some(MirrorAction::Status) = args.action {
        return status(data);
    }
    let missing = |f: &str| crate::rejected(format!("mirror: --{f} is required"));
    let from = args.from.ok_or_else(|| missing("from"))?;
    let token = args.token.ok_or_else(|| missing("token"))?;
    let pinned = crate::keys::pinned_public_key(&args.key.ok_or_else(|| missing("key"))?)?;
    let file = data.join(MIRROR_FILE);
    let ledger = if data.join("CURRENT").exists() {
        let text = std::fs::read_to_string(&file).map_err(|e| {
            if e.kind() != std::io::ErrorKind::NotFound {
                // The disk's failure, not the folder's: exit 1.
                return anyhow::Error::from(e).context(format!("reading {}", file.display()));
            }
            crate::rejected(format!(
                "{} holds a ledger that is not a mirror (no {MIRROR_FILE}); a mirror needs a \
                 folder of its own",
                data.display()
            ))
        })?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        match v["public_key"].as_str() {
            Some(k) if k == hex::encode(pinned) => {}
            Some(k) => {
                return Err(crate::rejected(format!(
                    "this mirror follows the ledger with key {k}, not {}",
                    hex::encode(pinned)
                )));
            }
            None => {
                return Err(crate::rejected(format!(
                    "{}: no \"public_key\": not a mirror's file",
                    file.display()
                )));
            }
        }
        // Not `crate::open`: a mirror runs on (and may serve reads) while its remote is idle,
        // so RocksDB's compactions resume at the open, as for `serve`, not at a first write.
        let ledger = junbao_engine::Ledger::open(data, junbao_engine::system_clock())
            .with_context(|| format!("opening the ledger at {}", data.display()))?;
        ledger.exit_after_close();
        ledger
    } else {
        // The mirror's file first: a folder with a store but without it would be refused as
        // "not a mirror" if the process died in between.
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        write_json(
            &file,
            &json!({"from": from, "public_key": hex::encode(pinned), "mirrored_entries": 0,
                    "state": "created", "created_at": now_rfc3339()}),
        )?;
        Ledger::create_mirror(data, system_clock())
            .with_context(|| format!("creating a mirror at {}", data.display()))?
    };
    let ledger = Arc::new(ledger);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let stop = Arc::new(tokio::sync::Notify::new());
        let mut server_task = None;
        if let Some(addr) = &args.serve {
            let config = junbao_server::ServerConfig::for_ledger(data.to_path_buf());
            let server = junbao_server::Server::replica(Arc::clone(&ledger), config)?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            outln!("{}", json!({"listening": listener.local_addr()?.to_string(), "replica": true}));
            let stopped = Arc::clone(&stop);
            server_task = Some(tokio::spawn(async move {
                server.run(listener, async move { stopped.notified().await }).await
            }));
        }
        let shutdown = crate::serve::shutdown_signal()?;
        tokio::pin!(shutdown);
        // The remote's size at the last round that reached it, for `mirror status`.
        let mut remote_seen: Option<u64> = None;
        let outcome = loop {
            let r = round(&ledger, &from, &token, &pinned).await;
            let head = ledger.head();
            let mut state = json!({"from": from, "public_key": hex::encode(pinned),
                                   "last_round_at": now_rfc3339(), "mirrored_entries": head.seq,
                                   "mirrored_head": hex::encode(head.hash),
                                   "remote_tree_size": remote_seen});
            match r {
                Ok(round) => {
                    state["state"] = json!("following");
                    remote_seen = Some(round.remote.tree_size);
                    state["remote_tree_size"] = json!(round.remote.tree_size);
                    state["remote_digest_recorded_at"] =
                        round.remote.to_json()["recorded_at"].clone();
                    write_json(&file, &state)?;
                    if args.once {
                        outln!(
                            "{}",
                            json!({"mirrored_entries": head.seq, "stored": round.stored,
                                            "remote_tree_size": round.remote.tree_size,
                                            "head": hex::encode(head.hash)})
                        );
                        break Ok(());
                    }
                }
                Err(RoundError::Contradiction(c)) => {
                    let kept = keep_evidence(data, &c)?;
                    state["state"] = json!(format!("stopped: {}", c.what));
                    state["evidence"] =
                        json!(kept.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
                    write_json(&file, &state)?;
                    let names: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
                    break Err(anyhow::Error::from(crate::Exit {
                        code: 3,
                        message: format!(
                            "integrity failure: {}. The mirror stopped; evidence kept: {}",
                            c.what,
                            names.join(", ")
                        ),
                    }));
                }
                Err(RoundError::Other(e)) => {
                    if args.once {
                        break Err(e);
                    }
                    // The remote may be restarting or unreachable: try again next round.
                    eprintln!("junbao mirror: round failed, retrying: {e:#}");
                    state["state"] = json!(format!("retrying: {e:#}"));
                    write_json(&file, &state)?;
                }
            }
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(args.interval)) => {}
            }
        };
        stop.notify_one();
        if let Some(t) = server_task {
            t.await??;
        }
        outcome
    })
}

fn status(data: &Path) -> Result<()> {
    let file = data.join(MIRROR_FILE);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        if e.kind() != std::io::ErrorKind::NotFound {
            return anyhow::Error::from(e).context(format!("reading {}", file.display()));
        }
        crate::rejected(format!("{} is not a mirror (no {MIRROR_FILE})", data.display()))
    })?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let mirrored = v["mirrored_entries"].as_u64().unwrap_or(0);
    let remote = v["remote_tree_size"].as_u64();
    let since = v["last_round_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds());
    let mut answer = json!({"from": v["from"], "state": v["state"], "mirrored_entries": mirrored,
           "remote_tree_size_seen": remote,
           "behind_entries": remote.map(|r| r.saturating_sub(mirrored)),
           "last_round_at": v["last_round_at"], "seconds_since_last_round": since,
           "evidence": v["evidence"]});
    // The remote's size now, from its health route (no token needed), if it answers soon.
    if let Some(from) = v["from"].as_str() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let health = runtime.block_on(http(STATUS_WAIT, from, "GET", "/health", None, None));
        match health.map(|(_, h)| h["entries"].as_u64()) {
            Ok(Some(now)) => {
                answer["remote_entries_now"] = json!(now);
                answer["behind_entries_now"] = json!(now.saturating_sub(mirrored));
            }
            Ok(None) => answer["remote_unreachable"] = json!("its /health names no entries"),
            Err(e) => answer["remote_unreachable"] = json!(format!("{e:#}")),
        }
    }
    outln!("{answer}");
    Ok(())
}
