//! `textDocument/inlineCompletion` (LSP 3.18): the completion engine's items as inline
//! suggestions, in the order the user most likely takes them. Must not import the `LanguageServer` impl.

use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::handlers::completion::{accepted_command, completions_at};
use crate::session::Session;

pub(crate) async fn inline_completion(
    session: &Session,
    params: InlineCompletionParams,
) -> RpcResult<Option<InlineCompletionResponse>> {
    let pos = params.text_document_position;
    let Some((c, _, _, key)) =
        completions_at(session, &pos.text_document.uri, pos.position).await?
    else {
        return Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
            items: Vec::new(),
        })));
    };
    let at = Range {
        start: pos.position,
        end: pos.position,
    };
    // The one the user most likely takes first (inline UIs show it and let the user cycle):
    // tested and passed, then a finished FIM middle, then the smallest unit.
    let items: Vec<InlineCompletionItem> = c
        .ranked()
        .into_iter()
        .filter_map(|level| c.items.iter().find(|(l, _)| *l == level))
        .map(|(level, t)| InlineCompletionItem {
            insert_text: t.clone(),
            filter_text: None,
            range: Some(at),
            command: Some(accepted_command(&pos.text_document.uri, key, *level)),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        })
        .collect();
    Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
        items,
    })))
}
