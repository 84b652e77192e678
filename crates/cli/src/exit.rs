//! Exit statuses (0 success, 2 input rejected, 3 integrity failure, 1 otherwise) and the
//! classification of an error into one.

use junbao_engine::{PostError, VerifyError};

/// A failure with the exit status the contract gives it.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// The reader of our output went away (`| head`): not a failure of the command.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub(crate) fn classify(err: &anyhow::Error) -> (u8, String) {
    if let Some(e) = err.downcast_ref::<Exit>() {
        return (e.code, e.message.clone());
    }
    if let Some(e) = err.downcast_ref::<PostError>() {
        return (exit_code(e.kind()), format!("{err:#}"));
    }
    if let Some(e) = err.downcast_ref::<junbao_engine::AuditError>() {
        return (exit_code(e.kind()), format!("{err:#}"));
    }
    if let Some(e) = err.downcast_ref::<junbao_engine::ReadJournalError>() {
        return (exit_code(e.kind()), format!("{err:#}"));
    }
    if let Some(e) = err.downcast_ref::<VerifyError>() {
        return (if e.is_integrity() { 3 } else { 1 }, format!("{err:#}"));
    }
    if let Some(e) = err.downcast_ref::<junbao_engine::LedgerOpenError>() {
        return (if e.is_integrity() { 3 } else { 1 }, format!("{err:#}"));
    }
    (1, format!("{err:#}"))
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub(crate) fn rejected(message: impl Into<String>) -> anyhow::Error {
    Exit { code: 2, message: message.into() }.into()
}

/// A broken access log exits 3 (integrity); one that cannot be read, 1.
pub(crate) fn access_exit(e: junbao_server::AccessLogError) -> anyhow::Error {
    match e {
        junbao_server::AccessLogError::Broken { .. } => {
            anyhow::Error::from(Exit { code: 3, message: e.to_string() })
        }
        other => anyhow::Error::from(other),
    }
}

pub(crate) fn audit_exit(e: impl Into<junbao_engine::AuditError>) -> anyhow::Error {
    let e: junbao_engine::AuditError = e.into();
    Exit { code: exit_code(e.kind()), message: e.to_string() }.into()
}

/// The exit status of each kind of failure: 2 input refused, 3 integrity, 1 I/O.
pub(crate) fn exit_code(kind: junbao_engine::ErrorKind) -> u8 {
    match kind {
        junbao_engine::ErrorKind::Input => 2,
        junbao_engine::ErrorKind::Integrity => 3,
        junbao_engine::ErrorKind::Io => 1,
    }
}
