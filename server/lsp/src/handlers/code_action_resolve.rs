//! `codeAction/resolve`: runs generation for the listed action and fills in its edit (the user
//! picked it, so the edit counts as taken). Must not import the `LanguageServer` impl.

use codeforge_ide::GenerateStatus;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::CodeAction;

use crate::generation::{
    edit_for, record_accepted, rpc_error, run_generation, summary, verification_label,
};
use crate::proto::ActionData;
use crate::session::Session;

pub(crate) async fn code_action_resolve(
    session: &Session,
    mut action: CodeAction,
) -> RpcResult<CodeAction> {
    let Some(data) = action
        .data
        .clone()
        .and_then(|d| serde_json::from_value::<ActionData>(d).ok())
    else {
        return Ok(action);
    };
    let (o, source) = run_generation(session, &data.uri, data.line, false).await?;
    match edit_for(session, &data.uri, &o, &source) {
        Some(edit) => {
            // Resolve is sent when the user picks the action: the edit is taken.
            record_accepted(session, &o, true);
            action.edit = Some(edit);
            action.title = format!("{} — {}", action.title, verification_label(&o));
            let mut data = data;
            data.verification = Some(crate::proto::VerificationSummary::of(
                o.verification.as_ref(),
            ));
            action.data = serde_json::to_value(&data).ok();
            Ok(action)
        }
        None => {
            let msg = if o.status == GenerateStatus::Generated {
                "CodeForge: the document changed while generating and the function is no longer a stub; nothing applied".to_string()
            } else {
                format!("CodeForge: {}", summary(&o))
            };
            session.show_warning(msg.clone()).await;
            Err(rpc_error(msg))
        }
    }
}
