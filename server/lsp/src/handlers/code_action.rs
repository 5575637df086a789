//! `textDocument/codeAction`: "Generate function from docstring" on every stub in the range,
//! listed from syntax alone (no model). Clients with `codeAction/resolve` get the edit there;
//! others get the `codeforge.generateFunction` command. Must not import the `LanguageServer` impl.

use codeforge_ide::generate_targets;
use codeforge_syntax::Language;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::proto::{ActionData, GENERATE_COMMAND, GENERATE_KIND};
use crate::session::{Session, uri_path};

pub(crate) async fn code_action(
    session: &Session,
    params: CodeActionParams,
) -> RpcResult<Option<CodeActionResponse>> {
    if let Some(only) = &params.context.only
        && !only.iter().any(|k| GENERATE_KIND.starts_with(k.as_str()))
    {
        return Ok(None);
    }
    let actions = generate_actions(session, &params).await;
    Ok((!actions.is_empty()).then_some(actions))
}

async fn generate_actions(
    session: &Session,
    params: &CodeActionParams,
) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let Some(path) = uri_path(uri) else {
        return Vec::new();
    };
    let Some(lang) = Language::from_path(&path) else {
        return Vec::new();
    };
    let Some((text, _)) = session.document_text(uri) else {
        return Vec::new();
    };
    let (rel, _, _) = session.rel_and_settings(&path);
    let range = params.range;
    let targets = tokio::task::spawn_blocking(move || generate_targets(lang, &rel, &text))
        .await
        .unwrap_or_default();
    let resolve = session.caps().code_action_resolve;
    targets
        .into_iter()
        .filter(|t| {
            (t.start_line as u32) <= range.end.line && (t.end_line as u32) >= range.start.line
        })
        .map(|t| {
            let data = ActionData {
                uri: uri.clone(),
                line: t.start_line as u32,
                verification: None,
            };
            let title = format!("Generate `{}` from its docstring (CodeForge)", t.name);
            let mut action = CodeAction {
                title: title.clone(),
                kind: Some(CodeActionKind::new(GENERATE_KIND)),
                data: serde_json::to_value(&data).ok(),
                ..Default::default()
            };
            if !resolve {
                action.command = Some(Command {
                    title,
                    command: GENERATE_COMMAND.to_string(),
                    arguments: Some(vec![serde_json::to_value(&data).unwrap_or_default()]),
                });
            }
            CodeActionOrCommand::CodeAction(action)
        })
        .collect()
}
