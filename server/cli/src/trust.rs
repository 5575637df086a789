//! `codeforge trust [PATH]`, `--revoke`, `--status`: the user's approvals of a workspace, kept in
//! `<config>/codeforge/trust.json` (as direnv's `allow` and mise's `trust`). Approving pins the
//! workspace's `codeforge.toml` to the blake3 hash of its bytes (its restricted keys apply until
//! the file changes) and allows running its tests to verify generated code. Only a command the
//! user types writes here; nothing a workspace contains can.

use std::path::{Path, PathBuf};

use anyhow::Context;
use codeforge_config::WORKSPACE_CONFIG_FILE;
use codeforge_verify::trust::{TrustEntry, WorkspaceConfig, config_hash};
use codeforge_verify::{TrustDecision, TrustStore};

use crate::{config_file_error, usage, workspace_root};

/// The workspace's file as it is on disk, with what the store says about it.
struct FileState {
    path: PathBuf,
    /// `None`: there is no file.
    config: Option<Result<WorkspaceConfig, String>>,
    /// Hash of the bytes on disk (also when they do not parse).
    hash: Option<String>,
}

fn file_state(root: &Path, store: &TrustStore) -> anyhow::Result<FileState> {
    let path = root.join(WORKSPACE_CONFIG_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(FileState {
            hash: Some(config_hash(&bytes)),
            config: Some(
                WorkspaceConfig::from_bytes(root, &bytes, Some(store)).map_err(|e| e.to_string()),
            ),
            path,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileState {
            path,
            config: None,
            hash: None,
        }),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn status_json(
    root: &Path,
    store: &TrustStore,
    entry: &TrustEntry,
    f: &FileState,
) -> serde_json::Value {
    let config = match &f.config {
        None => serde_json::json!({"path": f.path, "exists": false}),
        Some(c) => {
            let (restricted, ignored, approved, error) = match c {
                Ok(c) => (c.restricted.clone(), c.ignored().to_vec(), c.approved, None),
                Err(e) => (Vec::new(), Vec::new(), false, Some(e.clone())),
            };
            serde_json::json!({
                "path": f.path,
                "exists": true,
                "blake3": f.hash,
                "approved_blake3": entry.config_blake3,
                "approved": approved,
                "restricted_keys": restricted,
                "ignored_keys": ignored,
                "error": error,
            })
        }
    };
    serde_json::json!({
        "workspace": root,
        "trust_file": store.path(),
        "tests": match entry.tests {
            Some(TrustDecision::Allow) => "allow",
            Some(TrustDecision::Never) => "never",
            None => "ask",
        },
        "config": config,
    })
}

fn print_status(root: &Path, entry: &TrustEntry, f: &FileState) {
    println!("workspace       {}", root.display());
    println!(
        "tests           {}",
        match entry.tests {
            Some(TrustDecision::Allow) => "allowed to run (to verify generated code)",
            Some(TrustDecision::Never) => "never run (you chose Never)",
            None => "not approved (`codeforge generate` runs them only with --trust)",
        }
    );
    let line = match &f.config {
        None => "none".to_string(),
        Some(Err(e)) => format!("does not parse: {e}"),
        Some(Ok(c)) if c.restricted.is_empty() => "sets nothing that needs approval".to_string(),
        Some(Ok(c)) if c.approved => format!(
            "approved as it is (blake3 {}): {} apply",
            &c.hash[..16],
            c.restricted.join(", ")
        ),
        Some(Ok(c)) => format!(
            "{}: {} ignored",
            if entry.config_blake3.is_some() {
                "changed since you approved it"
            } else {
                "not approved"
            },
            c.restricted.join(", ")
        ),
    };
    println!("{WORKSPACE_CONFIG_FILE}  {line}");
}

pub(crate) fn cmd_trust(
    path: Option<PathBuf>,
    revoke: bool,
    status: bool,
    json: bool,
) -> anyhow::Result<()> {
    let root = workspace_root(path)?;
    let store = TrustStore::default_path()
        .map(TrustStore::new)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no config directory: set HOME or XDG_CONFIG_HOME to keep trust decisions"
            )
        })?;
    let save =
        |r: std::io::Result<()>| r.with_context(|| format!("saving {}", store.path().display()));
    if revoke {
        save(store.forget(&root))?;
        if !json {
            eprintln!(
                "codeforge: approvals of {} withdrawn: its tests are not run without asking and its \
                 {WORKSPACE_CONFIG_FILE}'s restricted keys are ignored",
                root.display()
            );
        }
    } else if !status {
        let f = file_state(&root, &store)?;
        if let Some(Err(_)) = &f.config {
            // Say what is wrong rather than approve a file nobody can read.
            let e = codeforge_verify::trust::read_workspace_config(&root, None)
                .err()
                .map(config_file_error)
                .unwrap_or_else(|| usage("the file changed while it was read"));
            return Err(e.context(format!("{} was not approved", f.path.display())));
        }
        if let Some(hash) = &f.hash {
            save(store.approve_config(&root, Some(hash)))?;
        }
        save(store.set(&root, Some(TrustDecision::Allow)))?;
        if !json {
            let keys = match &f.config {
                Some(Ok(c)) if !c.restricted.is_empty() => format!(
                    "; {WORKSPACE_CONFIG_FILE} approved as it is now, so {} apply (a changed file must be approved again)",
                    c.restricted.join(", ")
                ),
                Some(_) => format!("; {WORKSPACE_CONFIG_FILE} approved as it is now"),
                None => String::new(),
            };
            eprintln!(
                "codeforge: trusted {}: its tests may run to verify generated code{keys}",
                root.display()
            );
        }
    }
    let entry = store.entry(&root);
    let f = file_state(&root, &store)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&status_json(&root, &store, &entry, &f))?
        );
    } else if status {
        print_status(&root, &entry, &f);
    }
    Ok(())
}
