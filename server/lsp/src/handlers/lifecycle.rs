//! `initialize` (what the client supports, the user's and editor's settings, the roots to start),
//! `initialized` (start the workspaces, register file watchers) and `shutdown`. Must not import
//! the `LanguageServer` impl.

use std::path::PathBuf;

use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::capabilities::{ClientCaps, server_capabilities, watched_files_registration};
use crate::session::Session;

pub(crate) fn initialize(
    session: &Session,
    params: InitializeParams,
) -> RpcResult<InitializeResult> {
    session.set_caps(ClientCaps::of(&params.capabilities));
    session.load_user_config();
    session.load_env();
    if let Some(opts) = &params.initialization_options {
        match codeforge_config::parse_json(codeforge_config::INIT_OPTIONS_SOURCE, opts) {
            Ok(l) => session.layers().set_init(l),
            Err(e) => session.push_error(format!("CodeForge: {e}; these options are ignored")),
        }
    }
    let mut roots: Vec<(PathBuf, String)> = Vec::new();
    for f in params.workspace_folders.iter().flatten() {
        if let Some(p) = f.uri.to_file_path() {
            roots.push((p.into_owned(), f.name.clone()));
        }
    }
    #[allow(deprecated)]
    if roots.is_empty()
        && let Some(uri) = &params.root_uri
        && let Some(p) = uri.to_file_path()
    {
        let p = p.into_owned();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        roots.push((p, name));
    }
    // Workspaces start on `initialized`, when the client can take requests.
    session.set_pending_roots(roots);

    Ok(InitializeResult {
        capabilities: server_capabilities(),
        server_info: Some(ServerInfo {
            name: "codeforge".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
        offset_encoding: None,
    })
}

pub(crate) async fn initialized(session: &Session, _: InitializedParams) {
    for (root, name) in session.take_pending_roots() {
        if root.is_dir() {
            session.add_workspace(root, name);
        } else {
            session.push_error(format!(
                "CodeForge: workspace folder {} does not exist",
                root.display()
            ));
        }
    }
    session.flush_errors().await;
    if session.caps().dynamic_watched_files
        && let Err(e) = session
            .client()
            .register_capability(vec![watched_files_registration()])
            .await
    {
        tracing::warn!("registering file watchers failed: {e}");
    }
}

pub(crate) fn shutdown(session: &Session) -> RpcResult<()> {
    for ws in session.workspaces() {
        ws.cancel();
    }
    Ok(())
}
