//! The `junbao` command: the ledger of the servicemen insurance funds.
//!
//! Exit status: 0 success; 2 input rejected (nothing stored); 3 integrity failure; 1 otherwise.

/// `println!` that returns an error instead of panicking when stdout is closed (as with
/// `junbao journal | head`); `main` ends quietly on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        std::io::Write::write_fmt(&mut out, format_args!($($arg)*))?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }};
}

/// mimalloc: the server's many small, short-lived allocations across threads (requests, events,
/// answers) cost a fifth of its time in glibc's allocator under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
mod admin;
mod args;
mod backup;
mod bench;
mod cmd;
mod demo;
mod exit;
mod keys;
mod mirror;
mod serve;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use junbao_engine::{Ledger, system_clock};

use crate::args::{
    AccessAction, CheckpointAction, Cli, Command, ExportWhat, KeyAction, TokenAction,
    TransferAction,
};
use crate::cmd::{audit, init, key, post, read, token, transfer};
use crate::exit::{classify, is_broken_pipe};
// The commands' modules reach these as `crate::…`.
use crate::cmd::read::sink;
use crate::exit::{Exit, audit_exit, rejected};

fn main() -> ExitCode {
    // Everything this program creates — the ledger folder, RocksDB's WAL and tables, the access
    // log, the tokens file, keys — is for its owner only (0700 folders, 0600 files).
    #[cfg(unix)]
    let _ = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let (code, message) = classify(&err);
            eprintln!("junbao: {message}");
            ExitCode::from(code)
        }
    }
}

/// Opens the ledger for one command: the process ends when it is closed, so the closing
/// leaves the state's memory to the end of the process ([`Ledger::exit_after_close`]), and
/// RocksDB's compactions wait for a write ([`Ledger::open_for_one_command`]).
fn open(data: &Path) -> Result<Ledger> {
    Ledger::open_for_one_command(data, system_clock())
        .with_context(|| format!("opening the ledger at {}", data.display()))
}

/// Dispatches a parsed command line to its command.
fn run(cli: Cli) -> Result<()> {
    if let Command::Demo { members } = cli.command {
        return demo::run(&cli.data.unwrap_or_else(|| PathBuf::from("./junbao-demo")), members);
    }
    let data = cli.data.unwrap_or_else(|| PathBuf::from("./junbao-data"));
    let data = data.as_path();
    match cli.command {
        Command::Init { key } => init::init(data, key),
        Command::Digest { key, format, origin } => audit::digest(data, key, &format, origin),
        Command::Proof { kind } => audit::proof(data, kind),
        Command::Export { what: ExportWhat::Balances { format, unit, as_of, out } } => {
            read::export_balances(data, &format, unit, as_of, out)
        }
        Command::Export { what: ExportWhat::Journal { format, out } } => {
            read::export_journal(data, &format, out)
        }
        Command::Statement { member, from, to, json: as_json } => {
            read::statement(data, &member, from, to, as_json)
        }
        Command::Report { kind } => read::report(data, kind),
        Command::Transfer { action: TransferAction::Verify { file, key, digest } } => {
            transfer::verify(&file, &key, digest)
        }
        Command::Transfer {
            action: TransferAction::Export { member, members, out_dir, fund, agency, out, key },
        } => transfer::export(data, member, members, out_dir, fund, &agency, out, key),
        Command::Transfer { action: TransferAction::Render { file, key, out } } => {
            transfer::render(&file, &key, &out)
        }
        Command::Transfer { action: TransferAction::Confirm { member, fund, agency } } => {
            transfer::confirm(data, &member, &fund, &agency)
        }
        Command::Backpay { action } => post::backpay(data, action),
        Command::Post { file } => post::post(data, file),
        Command::Close(args) => admin::close(data, args),
        Command::Balance { fund, member, json } => read::balance(data, fund, member, json),
        Command::Verify { export: Some(file), digest, key, .. } => {
            audit::verify_export_file(&file, key, digest)
        }
        Command::Verify { export: None, digest: Some(_), .. } => {
            Err(rejected("--digest goes with --export; use --from-digest for the database"))
        }
        Command::Verify { export: None, digest: None, from_digest: Some(d), key } => {
            audit::verify_since(data, &d, key)
        }
        Command::Verify { export: None, digest: None, from_digest: None, .. } => {
            audit::verify(data)
        }
        Command::Migrate => audit::migrate(data),
        Command::Key { action: KeyAction::Rotate { key } } => {
            key::key_rotate(data, &key::key_path(data, key))
        }
        Command::Key { action: KeyAction::Show { key, vkey, origin } } => {
            key::key_show(data, key, vkey, origin)
        }
        Command::Checkpoint { action: CheckpointAction::Verify { file, key, origin } } => {
            audit::checkpoint_verify(&file, &key, origin)
        }
        Command::Journal { from, limit, json } => read::journal(data, from, limit, json),
        Command::Demo { .. } => unreachable!("handled above"),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::serve(data, args),
        Command::Token { action: TokenAction::Add { name, role, units, tokens } } => {
            serve::token_add(data, tokens, &name, &role, units)
        }
        Command::Token { action: TokenAction::Remove { name, tokens } } => {
            token::remove(data, &name, tokens)
        }
        Command::BenchHttp(args) => serve::bench_http(args),
        Command::Access { action: AccessAction::Verify { file, digest, key } } => {
            audit::access_verify(data, file, digest, key)
        }
        Command::CrashWriter { batch, batches, checkpoint_every } => {
            post::crash_writer(data, batch, batches, checkpoint_every)
        }
        Command::Backup(args) => backup::run(data, args),
        Command::Restore(args) => backup::restore(args),
        Command::Mirror(args) => mirror::run(data, args),
    }
}

/// A spinner on stderr when it is a terminal; hidden otherwise.
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("static template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
