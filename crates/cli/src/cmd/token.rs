//! `token remove` (`token add` is with `serve`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use crate::exit::rejected;

pub(crate) fn remove(data: &Path, name: &str, tokens: Option<PathBuf>) -> Result<()> {
    let path = tokens.unwrap_or_else(|| junbao_server::default_tokens_path(data));
    junbao_server::remove_token(&path, name).map_err(|e| rejected(e.to_string()))?;
    outln!(
        "{}",
        json!({"removed": name, "tokens_file": path.display().to_string(),
                        "note": "a running server refuses it after SIGHUP"})
    );
    Ok(())
}
