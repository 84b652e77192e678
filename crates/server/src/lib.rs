//! junbao-server: the ledger over HTTP (`junbao serve`).
//!
//! JSON endpoints that mirror the command line (docs/HTTP.md, docs/openapi.json), bearer tokens
//! with roles, and group commit: posts from many clients are gathered by the engine's
//! [`GroupCommitter`] into one synced write, and each request is answered once the write that
//! carries it is on disk.
//!
//! Architecture invariant: the server never writes to the ledger but through the engine
//! (`GroupCommitter` for events, `Ledger::transfer_export` and `Ledger::digest`, which take the
//! same writer lock), so one writer owns the chain head.
//!
//! Architecture invariant: nothing personal is logged. Logs name the token (never the token
//! itself), the route and, at most, a member id; bodies are never logged. Reads of members'
//! records go to the access log ([`access`]) before they are answered.

pub mod access;
mod api;
pub mod auth;
mod console;
mod error;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use junbao_engine::{GroupCommitter, Ledger, Sequencing, SignedDigest};

pub use access::{AccessLogError, AccessLogReport, verify_access_log, verify_access_log_anchored};
pub use api::{REPLICA_ROUTES, ROUTES};
pub use auth::{Action, Principal, Role, Tokens, TokensError, add_token, remove_token};
pub use error::ApiError;

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The ledger folder.
    pub data: PathBuf,
    /// The tokens file (hashes only).
    pub tokens: PathBuf,
    /// The key that signs digests and transfer packages.
    pub key: PathBuf,
    /// Where reads of members' records are logged.
    pub access_log: PathBuf,
    /// Largest request body accepted (413 past it).
    pub body_bytes_max: usize,
    /// Most events one `POST /v1/events` may carry (413 past it).
    pub batch_events_max: usize,
    /// A request not answered in this time gets 408. A post that times out may still be stored:
    /// retry it with the same ids, which answers with the original entries.
    pub request_timeout: Duration,
    /// For the console's browser tests only (never set by `junbao serve`): statements of this
    /// member are answered with one inclusion proof altered, so that a test can see the
    /// browser refuse it.
    pub test_tamper_proofs_of: Option<String>,
    /// A connection that has not sent a whole request head (request line and headers) within
    /// this time after it opened, or after its previous request, is closed.
    pub header_read_timeout: Duration,
    /// The log's origin in `GET /v1/checkpoint` (C2SP tlog-checkpoint); `None`: the default
    /// derived from the public key (`junbao_ledger::checkpoint::default_origin`).
    pub origin: Option<String>,
    /// Each member's latest years the ledger keeps in memory (`Some(0)`: every year, read back
    /// at the start; `None`: the ledger's default, `junbao_engine::RESIDENT_YEARS`).
    pub resident_years: Option<u16>,
    /// The server's one thread runs the sequencer's step itself (a `current_thread` runtime,
    /// `junbao serve --one-thread`): a post reaches the law's rules without a hop to the
    /// sequencer's thread ([`junbao_engine::Sequencing::Caller`]), unless more than
    /// [`INLINE_GROUP_EVENTS_MAX`] events wait (then the group goes to the blocking pool).
    /// Posts are taken while [`Server::run`] runs (a task of its runtime) and, at its end, by
    /// the shutdown. A read replica takes no posts and ignores it.
    pub sequence_on_server_thread: bool,
}

/// After SIGTERM, requests in flight get this long to be answered; connections still open
/// then (stalled clients) are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Default of [`ServerConfig::header_read_timeout`].
pub const HEADER_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

impl ServerConfig {
    /// Defaults for a ledger folder: `DIR/tokens.json`, the signing key `DIR.key` beside it
    /// (`junbao_engine::default_key_path`), `DIR/access.jsonl`,
    /// 16 MiB bodies, 10,000 events per post, 30 s per request.
    pub fn for_ledger(data: PathBuf) -> ServerConfig {
        ServerConfig {
            tokens: default_tokens_path(&data),
            key: junbao_engine::default_key_path(&data),
            access_log: data.join("access.jsonl"),
            data,
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            batch_events_max: BATCH_EVENTS_MAX_DEFAULT,
            request_timeout: Duration::from_secs(30),
            test_tamper_proofs_of: None,
            header_read_timeout: HEADER_READ_TIMEOUT_DEFAULT,
            origin: None,
            resident_years: None,
            sequence_on_server_thread: false,
        }
    }
}

pub const BODY_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
pub const BATCH_EVENTS_MAX_DEFAULT: usize = 10_000;

/// The tokens file of a ledger folder unless told otherwise.
pub fn default_tokens_path(data: &std::path::Path) -> PathBuf {
    data.join("tokens.json")
}

/// The server could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("opening the ledger at {path}: {reason}")]
    Ledger { path: String, reason: String },
    #[error("tokens file {0}")]
    Tokens(#[from] TokensError),
    #[error("signing key: {0}")]
    Key(String),
    #[error("access log {0}")]
    AccessLog(access::AccessLogError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

fn reload_tokens(state: &AppState) -> Result<usize, TokensError> {
    let tokens = Tokens::load(&state.config.tokens)?;
    let n = tokens.len();
    *state.tokens.write().expect("the tokens lock is never held across a panic") = Arc::new(tokens);
    Ok(n)
}

/// Reloads the tokens on every SIGHUP, until the server stops.
async fn reload_on_hangup(state: Arc<AppState>, mut hangups: tokio::signal::unix::Signal) {
    while hangups.recv().await.is_some() {
        let s = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || reload_tokens(&s)).await {
            Ok(Ok(n)) => tracing::info!(tokens = n, "tokens reloaded"),
            Ok(Err(e)) => tracing::error!(error = %e, "tokens not reloaded; the old ones stay"),
            Err(e) => tracing::error!(error = %e, "tokens not reloaded"),
        }
    }
}

pub(crate) struct AppState {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) committer: GroupCommitter,
    /// Replaced whole on SIGHUP (`Server::reload_tokens`); a request uses the set it found.
    pub(crate) tokens: std::sync::RwLock<Arc<Tokens>>,
    /// The signing key; `None` in a read replica, which signs nothing.
    pub(crate) key: Option<ed25519_dalek::SigningKey>,
    /// A read replica (a mirror's copy): read routes only, digests are the copied ledger's.
    pub(crate) replica: bool,
    pub(crate) access: access::AccessLog,
    pub(crate) config: ServerConfig,
    /// The last digest signed, returned again while the tree has not grown.
    pub(crate) digest: Mutex<Option<SignedDigest>>,
    /// Notified when a post is queued, if the serving thread runs the sequencer's step
    /// ([`ServerConfig::sequence_on_server_thread`]).
    pub(crate) queued: Option<Arc<tokio::sync::Notify>>,
}

/// An open ledger with its writer's threads, ready to serve.
pub struct Server {
    state: Arc<AppState>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("data", &self.state.config.data).finish()
    }
}

impl Server {
    /// Opens the ledger, the tokens, the key and the access log, and starts the writer's
    /// threads (the syncer alone when the serving thread runs the sequencer's step).
    pub fn open(config: ServerConfig) -> Result<Server, ServeError> {
        let ledger = Ledger::open(&config.data, junbao_engine::system_clock()).map_err(|e| {
            ServeError::Ledger { path: config.data.display().to_string(), reason: e.to_string() }
        })?;
        if let Some(years) = config.resident_years {
            ledger.set_resident_years((years > 0).then_some(years)).map_err(|e| {
                ServeError::Ledger {
                    path: config.data.display().to_string(),
                    reason: format!("reading back the members' years out of memory: {e}"),
                }
            })?;
        }
        let tokens = Tokens::load(&config.tokens)?;
        let key = junbao_engine::load_signing_key(&config.key)
            .map_err(|e| ServeError::Key(e.to_string()))?;
        let access = access::AccessLog::open(&config.access_log).map_err(ServeError::AccessLog)?;
        let ledger = Arc::new(ledger);
        let (committer, queued) = if config.sequence_on_server_thread {
            let queued = Arc::new(tokio::sync::Notify::new());
            let wake = Arc::clone(&queued);
            let sequencing = Sequencing::Caller(Box::new(move || wake.notify_one()));
            (GroupCommitter::start_with(Arc::clone(&ledger), sequencing), Some(queued))
        } else {
            (GroupCommitter::start(Arc::clone(&ledger)), None)
        };
        let state = AppState::new(ledger, committer, queued, tokens, Some(key), access, config);
        Ok(Server { state: Arc::new(state) })
    }

    /// A read replica over `ledger`, a mirror's copy that the mirror keeps writing: the read
    /// routes only ([`REPLICA_ROUTES`]), with `config`'s tokens and access log; no signing
    /// key (`GET /v1/digest` answers the copied ledger's last digest the mirror trusted).
    pub fn replica(ledger: Arc<Ledger>, config: ServerConfig) -> Result<Server, ServeError> {
        let tokens = Tokens::load(&config.tokens)?;
        let access = access::AccessLog::open(&config.access_log).map_err(ServeError::AccessLog)?;
        // Nothing is ever submitted to it; its threads idle, and readers wait on it for
        // durability as they do in a server (the mirror's writes are synced).
        let committer = GroupCommitter::start(Arc::clone(&ledger));
        let state = AppState::new(ledger, committer, None, tokens, None, access, config);
        Ok(Server { state: Arc::new(state) })
    }

    /// How many tokens the server accepts.
    pub fn tokens(&self) -> usize {
        self.state.tokens().len()
    }

    /// Reads the tokens file again and, if it is valid, serves with it from now on (added
    /// tokens work, removed ones are refused). A file that does not load leaves the tokens as
    /// they were.
    pub fn reload_tokens(&self) -> Result<usize, TokensError> {
        reload_tokens(&self.state)
    }

    /// The routes, with their limits and layers (served by [`Server::run`], which also runs
    /// the sequencer's step when the serving thread takes it).
    fn router(&self) -> Router {
        api::router(Arc::clone(&self.state))
    }

    /// Installs the SIGHUP handler that reloads the tokens file ([`Server::reload_tokens`]).
    /// Call it inside the runtime before announcing the server, so that an early SIGHUP
    /// reloads instead of ending the process.
    pub fn reload_tokens_on_hangup(&self) -> Result<tokio::task::JoinHandle<()>, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let hangups = signal(SignalKind::hangup())?;
        Ok(tokio::spawn(reload_on_hangup(Arc::clone(&self.state), hangups)))
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting, closes idle
    /// connections at once, lets the requests in flight finish (their batch is written and
    /// answered) for up to [`SHUTDOWN_GRACE`], drops whatever connection is left (a client
    /// stalled mid-request), and stops the writer. A connection that does not send a whole
    /// request head within the header-read timeout is closed at any time.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = self.router();
        let header_timeout = self.state.config.header_read_timeout;
        tracing::info!(addr = %listener.local_addr()?, tokens = self.tokens(), "serving");
        // The sequencer's step, when this runtime runs it: one group at a time, yielding to
        // the requests between groups. After the requests have drained, the committer's
        // shutdown posts whatever is still queued.
        let sequencer = self.state.queued.as_ref().map(|queued| {
            let (queued, state) = (Arc::clone(queued), Arc::clone(&self.state));
            tokio::spawn(async move {
                loop {
                    queued.notified().await;
                    while sequence_group(&state).await {
                        tokio::task::yield_now().await;
                    }
                }
            })
        });
        let mut connections = tokio::task::JoinSet::new();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of descriptors and the like: wait a moment, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app.clone());
                    let mut stop = stop_rx.clone();
                    connections.spawn(async move {
                        let mut builder = hyper::server::conn::http1::Builder::new();
                        builder
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(header_timeout);
                        let conn = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let mut conn = std::pin::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stop.changed() => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        tracing::info!(connections = connections.len(), "stopping: no new connections");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(connections = connections.len(), "dropping stalled connections");
            connections.abort_all();
        }
        tracing::info!("no request in flight; stopping the writer");
        if let Some(sequencer) = sequencer {
            sequencer.abort();
        }
        let state = self.state;
        tokio::task::spawn_blocking(move || state.committer.shutdown())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Events waiting (queued, or carried over from the last group) past which the serving thread
/// hands a group to the blocking pool instead of posting it itself
/// ([`ServerConfig::sequence_on_server_thread`]): a group of single-event posts takes tens of
/// microseconds and stays on the thread, without a hop; a batch of thousands of events takes
/// tens of milliseconds, which the hop's few microseconds do not matter to, and the thread goes
/// on answering meanwhile.
pub const INLINE_GROUP_EVENTS_MAX: usize = 256;

/// One call of the committer's step, on the serving thread or, for a large group, on the
/// blocking pool ([`INLINE_GROUP_EVENTS_MAX`]); whether a group was posted. The step holds
/// the committer's own lock, so groups are posted one at a time and in order either way.
async fn sequence_group(state: &Arc<AppState>) -> bool {
    if state.committer.queued_events() <= INLINE_GROUP_EVENTS_MAX {
        return state.committer.sequence_queued();
    }
    let state = Arc::clone(state);
    // An error is a panic while posting (the panic hook reported it): the committer takes no
    // more, and `/health` says the ledger cannot be written.
    tokio::task::spawn_blocking(move || state.committer.sequence_queued()).await.unwrap_or_default()
}

impl AppState {
    /// A server's state; without a signing key, a read replica's.
    fn new(
        ledger: Arc<Ledger>,
        committer: GroupCommitter,
        queued: Option<Arc<tokio::sync::Notify>>,
        tokens: Tokens,
        key: Option<ed25519_dalek::SigningKey>,
        access: access::AccessLog,
        config: ServerConfig,
    ) -> AppState {
        AppState {
            ledger,
            committer,
            tokens: std::sync::RwLock::new(Arc::new(tokens)),
            replica: key.is_none(),
            key,
            access,
            config,
            digest: Mutex::new(None),
            queued,
        }
    }

    /// The key that signs digests and packages; a read replica has none.
    pub(crate) fn signing_key(&self) -> Result<&ed25519_dalek::SigningKey, ApiError> {
        self.key.as_ref().ok_or_else(|| ApiError::forbidden("a read replica signs nothing"))
    }

    pub(crate) fn tokens(&self) -> Arc<Tokens> {
        Arc::clone(&self.tokens.read().expect("the tokens lock is never held across a panic"))
    }
}
