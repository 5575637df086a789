//! `workspace/symbol`: the best index hits of every workspace for the query. Must not import the
//! `LanguageServer` impl.

use codeforge_index::SearchQuery;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::session::Session;
use crate::to_proto;

pub(crate) async fn workspace_symbol(
    session: &Session,
    params: WorkspaceSymbolParams,
) -> RpcResult<Option<WorkspaceSymbolResponse>> {
    let query = params.query.trim().to_string();
    if query.is_empty() {
        return Ok(Some(WorkspaceSymbolResponse::Flat(Vec::new())));
    }
    let mut all = Vec::new();
    for ws in session.workspaces() {
        let Some(index) = ws.index() else { continue };
        match index.search(&SearchQuery::new(query.clone(), 50)).await {
            Ok(hits) => all.extend(hits.into_iter().map(|h| (ws.root.clone(), h))),
            Err(e) => {
                tracing::warn!("workspace/symbol in {}: {e:#}", ws.root.display());
            }
        }
    }
    all.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    all.truncate(100);
    let out = all
        .into_iter()
        .filter_map(|(root, hit)| to_proto::symbol_information(&root, &hit))
        .collect();
    Ok(Some(WorkspaceSymbolResponse::Flat(out)))
}
