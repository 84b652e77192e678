//! `junbao serve`, `junbao token add`, and `junbao bench-http` (the load test).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use junbao_server::{Role, Server, ServerConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on the first line of output).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Tokens file (hashes only; `junbao token add` writes it) [default: DIR/tokens.json].
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Signing key for digests and transfer packages [default: $JUNBAO_KEY, else DIR.key
    /// beside the ledger folder].
    #[arg(long, env = "JUNBAO_KEY")]
    key: Option<PathBuf>,
    /// Where reads of members' records are logged [default: DIR/access.jsonl].
    #[arg(long)]
    access_log: Option<PathBuf>,
    /// The log's origin in `GET /v1/checkpoint` [default: as `digest --format checkpoint`].
    #[arg(long, env = "JUNBAO_ORIGIN")]
    origin: Option<String>,
    /// Seconds a connection has to send a whole request head (request line and headers)
    /// before it is closed.
    #[arg(long, default_value_t = junbao_server::HEADER_READ_TIMEOUT_DEFAULT.as_secs())]
    header_timeout_secs: u64,
    /// Largest request body, in bytes (413 past it).
    #[arg(long, default_value_t = junbao_server::BODY_BYTES_MAX_DEFAULT)]
    body_bytes_max: usize,
    /// Most events in one post (413 past it).
    #[arg(long, default_value_t = junbao_server::BATCH_EVENTS_MAX_DEFAULT)]
    batch_events_max: usize,
    /// Seconds before an unanswered request gets 408.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Log filter (tracing's syntax), e.g. `info` or `junbao_server=debug`.
    #[arg(long, default_value = "info", env = "JUNBAO_LOG")]
    log: String,
    /// Logs as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Threads answering HTTP requests [default: one per core]. The ledger's writer has two
    /// threads of its own (the sequencer and the syncer).
    #[arg(long, env = "JUNBAO_HTTP_THREADS", conflicts_with = "one_thread")]
    threads: Option<usize>,
    /// Serve on one thread that also runs the writer's rules and writes (a `current_thread`
    /// runtime, no sequencer thread): a post reaches the rules without a hop to another thread;
    /// a batch of more than 256 waiting events goes to the blocking pool. What holds that
    /// thread: docs/OPERATIONS.md, "HTTP threads on a small host".
    #[arg(long, env = "JUNBAO_ONE_THREAD")]
    one_thread: bool,
    /// Each member's latest years kept in memory; older ones are read back from their stored
    /// pages when an event needs them (0: every year stays in memory) [default: 2].
    #[arg(long, env = "JUNBAO_RESIDENT_YEARS")]
    resident_years: Option<u16>,
}

pub fn serve(data: &Path, args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("--log {:?}", args.log))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let mut config = ServerConfig::for_ledger(data.to_path_buf());
    if let Some(t) = args.tokens {
        config.tokens = t;
    }
    if let Some(k) = args.key {
        config.key = k;
    }
    if let Some(a) = args.access_log {
        config.access_log = a;
    }
    if let Some(o) = args.origin {
        if !junbao_ledger::checkpoint::origin_is_valid(&o) {
            return Err(crate::rejected(format!(
                "--origin {o:?}: not a valid log origin (non-empty, no spaces or '+', not \
                 starting with \"junbao-\")"
            )));
        }
        config.origin = Some(o);
    }
    config.body_bytes_max = args.body_bytes_max;
    config.batch_events_max = args.batch_events_max.clamp(1, junbao_engine::BATCH_EVENTS_MAX);
    config.request_timeout = Duration::from_secs(args.timeout_secs.max(1));
    config.header_read_timeout = Duration::from_secs(args.header_timeout_secs.max(1));
    config.resident_years = args.resident_years;
    config.sequence_on_server_thread = args.one_thread;
    let server = Server::open(config)?;
    let mut runtime = if args.one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if let Some(n) = args.threads {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let addr = listener.local_addr()?;
        // Signal handlers first: once the address is out, SIGTERM and SIGHUP may come.
        let shutdown = shutdown_signal()?;
        let reload = server.reload_tokens_on_hangup()?;
        outln!("{}", serde_json::json!({"listening": addr.to_string(), "tokens": server.tokens()}));
        server.run(listener, shutdown).await?;
        reload.abort();
        Ok(())
    })
}

/// SIGINT or SIGTERM; the handlers are installed when this is called.
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested: finishing the requests in flight");
    })
}

pub fn token_add(
    data: &Path,
    tokens: Option<PathBuf>,
    name: &str,
    role: &str,
    units: Option<String>,
) -> Result<()> {
    let role = Role::parse(role).map_err(|m| crate::rejected(format!("--role: {m}")))?;
    let units: Vec<String> = units
        .iter()
        .flat_map(|u| u.split(','))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let path = tokens.unwrap_or_else(|| junbao_server::default_tokens_path(data));
    let token = junbao_server::add_token(&path, name, role, &units)
        .map_err(|e| crate::rejected(e.to_string()))?;
    outln!(
        "{}",
        serde_json::json!({"name": name, "role": role.name(), "units": units, "token": token,
                           "tokens_file": path.display().to_string(),
                           "note": "the token is shown once; the file keeps only its SHA-256"})
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct BenchHttpArgs {
    /// Concurrent clients, each with its own connection, posting one event per request.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Requests in all (each a single contribution event).
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Members enrolled before the run; each pays one premium per month.
    #[arg(long, default_value_t = 8_000)]
    members: usize,
    /// Stop after this many seconds even if requests remain.
    #[arg(long, default_value_t = 120)]
    seconds_max: u64,
    /// Folder for the ledger; a temporary folder when omitted.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The server's HTTP threads (`serve --threads`) [default: one per core].
    #[arg(long, conflicts_with = "server_one_thread")]
    server_threads: Option<usize>,
    /// The server on one thread that also runs the writer's rules (`serve --one-thread`).
    #[arg(long)]
    server_one_thread: bool,
    /// Ask `GET /health` instead of posting: what HTTP alone costs on this machine.
    #[arg(long)]
    health_only: bool,
}

/// Starts `junbao serve` on a fresh ledger (a child process, loopback, a free port), drives it
/// with `clients` connections posting single events, stops it with SIGTERM, verifies the chain.
// Floats here are latencies and rates for people, never money.
#[allow(clippy::float_arithmetic)]
pub fn bench_http(args: BenchHttpArgs) -> Result<()> {
    let (_tmp, dir) = crate::bench::ledger_dir(args.dir.as_deref())?;
    anyhow::ensure!(args.requests <= args.members * 144, "at most 144 premiums per member");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    // Closed before the server opens it.
    drop(crate::bench::enrolled_ledger(&dir, args.members)?);
    junbao_engine::create_signing_key(&junbao_engine::default_key_path(&dir))?;
    let units: Vec<String> = (0..100).map(|u| format!("U{u:03}")).collect();
    let token = junbao_server::add_token(
        &junbao_server::default_tokens_path(&dir),
        "load-poster",
        Role::Poster,
        &units,
    )?;
    let mut server = std::process::Command::new(std::env::current_exe()?);
    server
        .args(["--data", &dir.display().to_string(), "serve", "--addr", "127.0.0.1:0"])
        .args(["--log", "warn"]);
    if let Some(n) = args.server_threads {
        server.args(["--threads", &n.to_string()]);
    }
    if args.server_one_thread {
        server.arg("--one-thread");
    }
    let mut child =
        server.stdout(std::process::Stdio::piped()).spawn().context("starting junbao serve")?;
    let addr = read_listening(&mut child)?;
    // One thread drives all the clients: on a small machine the load generator must leave
    // the cores to the server it measures.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(load(&args, &addr, &token));
    let health = runtime.block_on(get_json(&addr, "/health")).unwrap_or_default();
    let server_cpu_seconds = process_cpu_seconds(child.id());
    let status =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    anyhow::ensure!(status.success(), "sending SIGTERM to the server");
    let exit = child.wait()?;
    let outcome = outcome?;
    let ledger = junbao_engine::Ledger::open(&dir, junbao_engine::system_clock())?;
    let report = ledger.verify(&|_| {})?;
    let mut latencies = outcome.latencies;
    latencies.sort_unstable();
    let pct = |p: usize| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = (latencies.len() * p / 1000).min(latencies.len() - 1);
        latencies[i].as_secs_f64() * 1e3
    };
    let ok = latencies.len();
    let groups = health["groups_written"].as_u64().unwrap_or(0);
    outln!(
        "{}",
        serde_json::json!({
            "clients": args.clients,
            "health_only": args.health_only,
            "server_threads": args.server_threads,
            "server_one_thread": args.server_one_thread,
            "requests_ok": ok,
            "requests_failed": outcome.failed,
            "first_failure": outcome.first_failure,
            "seconds": outcome.elapsed.as_secs_f64(),
            "requests_per_second": (ok as f64 / outcome.elapsed.as_secs_f64()).round(),
            "entries_per_second": if args.health_only { 0.0 } else { (ok as f64 / outcome.elapsed.as_secs_f64()).round() },
            "latency_ms": {"p50": pct(500), "p90": pct(900), "p99": pct(990), "p999": pct(999),
                           "max": latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)},
            "groups_written": groups,
            "entries_per_group": if groups > 0 { (ok as f64 / groups as f64 * 10.0).round() / 10.0 } else { 0.0 },
            "writer_busy_seconds": health["writer_busy_us"].as_f64().unwrap_or(0.0) / 1e6,
            "writer_write_seconds": health["writer_write_us"].as_f64().unwrap_or(0.0) / 1e6,
            "syncs": health["syncs"],
            "sync_seconds": health["sync_us"].as_f64().unwrap_or(0.0) / 1e6,
            "server_cpu_seconds": server_cpu_seconds,
            "server_exit": exit.code(),
            "verified_entries": report.entries,
        })
    );
    Ok(())
}

/// User plus system CPU time of a process, from /proc (Linux); `None` elsewhere.
#[allow(clippy::float_arithmetic)]
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Reads the server's first line, `{"listening": "ADDR", ...}`.
pub fn read_listening(child: &mut std::process::Child) -> Result<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let v: serde_json::Value =
        serde_json::from_str(&line).with_context(|| format!("server said {line:?}"))?;
    Ok(v["listening"].as_str().context("no listening address")?.to_string())
}

struct Outcome {
    latencies: Vec<Duration>,
    failed: usize,
    first_failure: Option<String>,
    elapsed: Duration,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn get_json(addr: &str, path: &str) -> Result<serde_json::Value> {
    let mut sender = connect(addr).await?;
    let req = hyper::Request::get(path).header("host", addr).body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

async fn load(args: &BenchHttpArgs, addr: &str, token: &str) -> Result<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds_max);
    let auth = format!("Bearer {token}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (next, addr, auth) = (Arc::clone(&next), addr.to_string(), auth.clone());
        let (requests, members, health_only) = (args.requests, args.members, args.health_only);
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&addr).await?;
            let mut latencies = Vec::new();
            let (mut failed, mut first_failure) = (0usize, None);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests || Instant::now() > deadline {
                    break;
                }
                let req = if health_only {
                    hyper::Request::get("/health")
                        .header("host", &addr)
                        .body(Full::new(Bytes::new()))?
                } else {
                    let body = crate::bench::poster_contribution_line(i % members, i / members);
                    hyper::Request::post("/v1/events")
                        .header("host", &addr)
                        .header("authorization", &auth)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))?
                };
                let sent = Instant::now();
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                if status.is_success() {
                    latencies.push(sent.elapsed());
                } else {
                    failed += 1;
                    first_failure.get_or_insert_with(|| {
                        format!("{status}: {}", String::from_utf8_lossy(&bytes))
                    });
                }
            }
            anyhow::Ok((latencies, failed, first_failure))
        }));
    }
    let mut outcome =
        Outcome { latencies: Vec::new(), failed: 0, first_failure: None, elapsed: Duration::ZERO };
    for t in tasks {
        let (l, f, ff) = t.await??;
        outcome.latencies.extend(l);
        outcome.failed += f;
        if outcome.first_failure.is_none() {
            outcome.first_failure = ff;
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}
