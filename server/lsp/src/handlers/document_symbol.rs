//! `textDocument/documentSymbol`: the file's symbols from syntax alone (the open buffer, else
//! disk), nested. Must not import the `LanguageServer` impl.

use codeforge_syntax::Language;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::line_index::LineIndex;
use crate::session::{Session, rel_path, uri_path};
use crate::to_proto;

pub(crate) async fn document_symbol(
    session: &Session,
    params: DocumentSymbolParams,
) -> RpcResult<Option<DocumentSymbolResponse>> {
    let uri = params.text_document.uri;
    let Some(path) = uri_path(&uri) else {
        return Ok(None);
    };
    let Some(language) = Language::from_path(&path) else {
        return Ok(None);
    };
    let open = session.documents().get(&uri).map(|d| d.text.clone());
    let text = match open {
        Some(t) => t,
        None => match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            _ => return Ok(None),
        },
    };
    let rel = rel_path(session.workspace_for(&path).as_deref(), &path);
    let symbols = tokio::task::spawn_blocking(move || {
        let extracted = codeforge_syntax::extract(language, &rel, &text);
        let index = LineIndex::new(&text);
        to_proto::document_symbols(&extracted.symbols, &text, &index)
    })
    .await
    .unwrap_or_default();
    Ok(Some(DocumentSymbolResponse::Nested(symbols)))
}
