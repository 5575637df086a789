//! Workspace notifications: `didChangeWatchedFiles` (files to re-index, ignore files, a changed
//! `codeforge.toml`), `didChangeConfiguration` and `didChangeWorkspaceFolders`. Must not import
//! the `LanguageServer` impl.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use codeforge_config::WORKSPACE_CONFIG_FILE;
use tower_lsp_server::ls_types::*;

use crate::layers::reload_workspace;
use crate::session::{Session, uri_path};
use crate::workspace::{Job, Workspace};

/// What changed in one workspace.
struct Changes {
    ws: Arc<Workspace>,
    paths: Vec<String>,
    /// An ignore file changed: walk everything.
    full: bool,
    /// Its `codeforge.toml` changed.
    config: bool,
}

pub(crate) async fn did_change_watched_files(
    session: &Session,
    params: DidChangeWatchedFilesParams,
) {
    let mut per_ws: HashMap<PathBuf, Changes> = HashMap::new();
    for change in params.changes {
        let Some(path) = change.uri.to_file_path().map(|p| p.into_owned()) else {
            continue;
        };
        let Some(ws) = session.workspace_for(&path) else {
            continue;
        };
        let entry = per_ws.entry(ws.root.clone()).or_insert_with(|| Changes {
            ws: ws.clone(),
            paths: Vec::new(),
            full: false,
            config: false,
        });
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some(".gitignore") | Some(".codeforgeignore") => entry.full = true,
            Some(WORKSPACE_CONFIG_FILE) if path.parent() == Some(ws.root.as_path()) => {
                entry.config = true
            }
            _ => {
                if let Some(rel) = ws.rel_path(&path) {
                    entry.paths.push(rel);
                }
            }
        }
    }
    for (_, c) in per_ws {
        let Changes {
            ws,
            paths,
            full,
            config,
        } = c;
        if config {
            let (config, errors) =
                reload_workspace(session.layers(), session.trust_store().as_ref(), &ws);
            for e in errors {
                session.push_error(e);
            }
            if let Some(c) = config {
                session.ask_config_approval(ws.clone(), c);
            }
        } else if full {
            ws.submit(Job::Full);
        } else if !paths.is_empty() {
            // Open dirty buffers win over disk content.
            let mut overlays = HashMap::new();
            let docs = session.documents();
            for (uri, doc) in docs.iter() {
                if doc.dirty
                    && let Some(p) = uri_path(uri)
                    && let Some(rel) = ws.rel_path(&p)
                    && paths.contains(&rel)
                {
                    overlays.insert(rel, doc.text.clone());
                }
            }
            drop(docs);
            ws.submit(Job::Files { paths, overlays });
        }
    }
    session.flush_errors().await;
}

pub(crate) async fn did_change_configuration(
    session: &Session,
    params: DidChangeConfigurationParams,
) {
    match codeforge_config::parse_json(codeforge_config::DID_CHANGE_SOURCE, &params.settings) {
        Ok(layer) => {
            session.layers().set_change(layer);
            session.reconfigure_all();
        }
        Err(e) => session.push_error(format!(
            "CodeForge: {e}; the previous settings stay in effect"
        )),
    }
    session.flush_errors().await;
}

pub(crate) async fn did_change_workspace_folders(
    session: &Session,
    params: DidChangeWorkspaceFoldersParams,
) {
    for removed in params.event.removed {
        if let Some(p) = uri_path(&removed.uri) {
            session.remove_workspace(&p);
        }
    }
    for added in params.event.added {
        if let Some(p) = added.uri.to_file_path() {
            session.add_workspace(p.into_owned(), added.name);
        }
    }
    session.flush_errors().await;
}
