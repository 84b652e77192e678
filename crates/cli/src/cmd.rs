//! One module per family of commands; `main::run` dispatches to them.

pub(crate) mod audit;
pub(crate) mod init;
pub(crate) mod key;
pub(crate) mod post;
pub(crate) mod read;
pub(crate) mod token;
pub(crate) mod transfer;
