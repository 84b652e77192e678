//! Transfer packages: export (one member or many), verify against a pinned key, render as
//! HTML, and the agency's confirmation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use crate::cmd::key::read_pinned_key;
use crate::cmd::read::parse_fund;
use crate::exit::{audit_exit, rejected};
use crate::{open, progress};

/// `transfer verify`: a package against the pinned key (and a trusted digest, if given).
pub(crate) fn verify(file: &Path, key: &Path, digest: Option<PathBuf>) -> Result<()> {
    let pinned = read_pinned_key(key)?;
    let package = read_json(file)?;
    let trusted =
        digest.map(|d| junbao_engine::SignedDigest::read(&d)).transpose().map_err(audit_exit)?;
    let r =
        junbao_engine::verify_package(&package, &pinned, trusted.as_ref()).map_err(audit_exit)?;
    outln!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// `transfer export`: one member's package to `--out`, or each member of a list into a folder.
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    data: &Path,
    member: Option<String>,
    members: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    fund: String,
    agency: &str,
    out: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<()> {
    let fund = parse_fund(Some(fund))?.expect("given");
    let ledger = open(data)?;
    let key = junbao_engine::load_signing_key(
        &key.unwrap_or_else(|| junbao_engine::default_key_path(data)),
    )?;
    if let (Some(list), Some(dir)) = (members, out_dir) {
        let text = std::fs::read_to_string(&list)
            .with_context(|| format!("reading {}", list.display()))?;
        let ids: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let bar = progress(ids.len() as u64, "packages");
        let packages = ledger
            .transfer_export_many(&ids, fund, agency, &key, &|n| bar.set_position(n as u64))
            .map_err(audit_exit)?;
        bar.finish_and_clear();
        for (id, package) in ids.iter().zip(&packages) {
            let path = dir.join(format!("{id}-{}.json", fund.name()));
            std::fs::write(&path, serde_json::to_string_pretty(package)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        outln!("{}", json!({"written": packages.len(), "out_dir": dir.display().to_string()}));
        return Ok(());
    }
    let member = member.expect("clap requires --member without --members");
    let out = out.expect("clap requires --out without --members");
    let package = ledger.transfer_export(&member, fund, agency, &key).map_err(audit_exit)?;
    std::fs::write(&out, serde_json::to_string_pretty(&package)?)
        .with_context(|| format!("writing {}", out.display()))?;
    outln!(
        "{}",
        json!({"written": out.display().to_string(), "transfer_entry": package.transfer_entry, "total": package.totals.total})
    );
    Ok(())
}

/// `transfer render`: a verified package as a printable HTML page.
pub(crate) fn render(file: &Path, key: &Path, out: &Path) -> Result<()> {
    let pinned = read_pinned_key(key)?;
    let package = read_json(file)?;
    let html = junbao_engine::render_package_html(&package, &pinned).map_err(audit_exit)?;
    std::fs::write(out, html).with_context(|| format!("writing {}", out.display()))?;
    outln!("{}", json!({"written": out.display().to_string()}));
    Ok(())
}

/// `transfer confirm`: posts the agency's confirmation of a transfer.
pub(crate) fn confirm(data: &Path, member: &str, fund: &str, agency: &str) -> Result<()> {
    let ledger = open(data)?;
    let line = junbao_engine::transfer_confirmed_line(member, fund, agency);
    outln!("{}", serde_json::to_string(&ledger.post_lines(&[&line])?)?);
    Ok(())
}

/// Reads a JSON document (a package); a file that is not JSON is rejected input.
pub(crate) fn read_json(file: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // A repeated key would let what a reader sees differ from what is verified.
    junbao_ledger::strict_json::check_unique_keys(&text)
        .map_err(|e| rejected(format!("{}: {e}", file.display())))?;
    serde_json::from_str(&text).map_err(|e| rejected(format!("{}: not JSON: {e}", file.display())))
}
