//! `workspace/executeCommand`: `codeforge.generateFunction` (generation, then
//! `workspace/applyEdit`, for clients without resolve), `codeforge.reindex`,
//! `codeforge.trustWorkspace` and `codeforge.untrustWorkspace`. Must not import the
//! `LanguageServer` impl.

use std::path::PathBuf;

use codeforge_verify::TrustDecision;
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::*;

use crate::generation::{edit_for, record_accepted, rpc_error, run_generation, summary};
use crate::proto::{
    ActionData, GENERATE_COMMAND, GenerateCommandResult, REINDEX_COMMAND, ReindexResult,
    TRUST_COMMAND, TrustCommandResult, UNTRUST_COMMAND,
};
use crate::session::{Session, uri_path};
use crate::workspace::Job;

pub(crate) async fn execute_command(
    session: &Session,
    params: ExecuteCommandParams,
) -> RpcResult<Option<LSPAny>> {
    let result = match params.command.as_str() {
        GENERATE_COMMAND => to_json(generate(session, params.arguments).await?),
        REINDEX_COMMAND => to_json(reindex(session)),
        TRUST_COMMAND => to_json(trust(session, &params.arguments, true).await),
        UNTRUST_COMMAND => to_json(trust(session, &params.arguments, false).await),
        _ => {
            return Err(RpcError::invalid_params(format!(
                "unknown command `{}`",
                params.command
            )));
        }
    };
    Ok(Some(result))
}

fn to_json(v: impl serde::Serialize) -> LSPAny {
    serde_json::to_value(v).unwrap_or_default()
}

async fn generate(
    session: &Session,
    args: Vec<serde_json::Value>,
) -> RpcResult<GenerateCommandResult> {
    let data: ActionData = args
        .into_iter()
        .next()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| rpc_error("codeforge.generateFunction expects {uri, line}"))?;
    let (o, source) = run_generation(session, &data.uri, data.line, false).await?;
    let Some(edit) = edit_for(session, &data.uri, &o, &source) else {
        let msg = format!("CodeForge: {}", summary(&o));
        session.show_warning(msg.clone()).await;
        return Ok(GenerateCommandResult {
            status: o.status.into(),
            applied: false,
            message: msg,
            verification: o.verification.as_ref().map(Into::into),
        });
    };
    let applied = match session.client().apply_edit(edit).await {
        Ok(r) => r.applied,
        Err(e) => {
            tracing::warn!("workspace/applyEdit failed: {e}");
            false
        }
    };
    record_accepted(session, &o, applied);
    Ok(GenerateCommandResult {
        status: o.status.into(),
        applied,
        message: summary(&o),
        verification: o.verification.as_ref().map(Into::into),
    })
}

fn reindex(session: &Session) -> ReindexResult {
    let workspaces = session.workspaces();
    for ws in &workspaces {
        ws.submit(Job::Full);
    }
    ReindexResult {
        workspaces: workspaces.len(),
    }
}

/// The workspaces named by the arguments (URIs, or `{uri}`), else every workspace.
fn roots_from_args(session: &Session, args: &[serde_json::Value]) -> Vec<PathBuf> {
    let given: Vec<PathBuf> = args
        .iter()
        .filter_map(|a| {
            a.as_str()
                .map(str::to_string)
                .or_else(|| a.get("uri").and_then(|u| u.as_str()).map(str::to_string))
        })
        .filter_map(|u| u.parse::<Uri>().ok())
        .filter_map(|u| uri_path(&u))
        .collect();
    if given.is_empty() {
        session
            .workspaces()
            .iter()
            .map(|w| w.root.clone())
            .collect()
    } else {
        given
    }
}

async fn trust(session: &Session, args: &[serde_json::Value], trust: bool) -> TrustCommandResult {
    let roots = roots_from_args(session, args);
    let store = session.trust_store();
    let mut done = Vec::new();
    for r in &roots {
        session.trust().forget_not_now(r);
        if let Some(s) = &store {
            let d = if trust {
                TrustDecision::Allow
            } else {
                TrustDecision::Never
            };
            if let Err(e) = s.set(r, Some(d)) {
                session
                    .show_error(format!("CodeForge: could not save the trust setting: {e}"))
                    .await;
                continue;
            }
        }
        done.push(r.display().to_string());
    }
    TrustCommandResult {
        trusted: trust,
        workspaces: done,
    }
}
