//! `codeforge/context`: what a generation at this position would show the model (the pieces of
//! context, whether each made it into the prompt, the prompt's size), without calling it. Must
//! not import the `LanguageServer` impl.

use tower_lsp_server::jsonrpc::Result as RpcResult;

use crate::proto::{ContextItem, ContextParams, ContextResult};
use crate::session::{Session, uri_path};

/// What a generation at this position would show the model, without calling it.
pub(crate) async fn context(session: &Session, params: ContextParams) -> RpcResult<ContextResult> {
    let uri = params.text_document.uri;
    let empty = |note: &str| ContextResult {
        target: None,
        items: Vec::new(),
        notes: vec![note.to_string()],
        prompt_tokens: 0,
    };
    let Some(path) = uri_path(&uri) else {
        return Ok(empty("not a file URI"));
    };
    let Some(lang) = codeforge_syntax::Language::from_path(&path) else {
        return Ok(empty("CodeForge works on Python, Rust and Java files"));
    };
    let Some((text, _)) = session.document_text(&uri) else {
        return Ok(empty("cannot read the document"));
    };
    let (rel, settings, retriever) = session.rel_and_settings(&path);
    let line = params.position.line as usize;
    let file = codeforge_syntax::ParsedFile::parse(lang, &rel, &text);
    let Some(target) = file.function_at_line(line) else {
        return Ok(empty("no function or method at the cursor"));
    };
    let count = |t: &str| t.len().div_ceil(3);
    let (built, note, _) = codeforge_ide::build_prompt(
        retriever.as_deref(),
        &settings.generation,
        &file,
        &target,
        &count,
    )
    .await;
    Ok(ContextResult {
        target: Some(target.symbol.qualified_name.clone()),
        items: built
            .context
            .iter()
            .map(|c| ContextItem {
                label: c.label.clone(),
                kind: format!("{:?}", c.kind).to_lowercase(),
                status: c.status.to_string(),
                tokens: c.tokens,
            })
            .collect(),
        notes: note.into_iter().collect(),
        prompt_tokens: built.tokens,
    })
}
