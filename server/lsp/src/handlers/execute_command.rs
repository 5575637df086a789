//! `workspace/executeCommand`: `codeforge.generateFunction` (generation, then
//! `workspace/applyEdit`, for clients without resolve), `codeforge.reindex`,
//! `codeforge.trustWorkspace`, `codeforge.untrustWorkspace`, `codeforge.completionAccepted`
//! (a completion item taken: kept in the feedback store) and `codeforge.pullModels`. Must not import the
//! `LanguageServer` impl.

use std::path::PathBuf;

use codeforge_verify::TrustDecision;
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::*;

use crate::generation::{edit_for, record_accepted, rpc_error, run_generation, summary};
use crate::proto::{
    ActionData, COMPLETION_ACCEPTED_COMMAND, GENERATE_COMMAND, GenerateCommandResult,
    PULL_MODELS_COMMAND, REINDEX_COMMAND, ReindexResult, TRUST_COMMAND, TrustCommandResult,
    UNTRUST_COMMAND,
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
        COMPLETION_ACCEPTED_COMMAND => completion_accepted(session, &params.arguments)?,
        PULL_MODELS_COMMAND => match session.pull_models().await {
            Ok(n) => serde_json::json!({ "installed": n }),
            Err(e) => return Err(rpc_error(e)),
        },
        _ => {
            return Err(RpcError::invalid_params(format!(
                "unknown command `{}`",
                params.command
            )));
        }
    };
    Ok(Some(result))
}

/// The user took a completion item: its answer (still in the engine's cache) goes to the
/// feedback store as an accepted attempt. `{"recorded": id}`, or `{"recorded": null}` when the
/// answer has left the cache.
fn completion_accepted(session: &Session, args: &[serde_json::Value]) -> RpcResult<LSPAny> {
    let bad = || rpc_error("codeforge.completionAccepted expects {uri, key, level}");
    let a = args.first().ok_or_else(bad)?;
    let uri: Uri = serde_json::from_value(a["uri"].clone()).map_err(|_| bad())?;
    let key: u64 = a["key"]
        .as_str()
        .and_then(|k| k.parse().ok())
        .ok_or_else(bad)?;
    let level = a["level"]
        .as_u64()
        .and_then(crate::handlers::completion::level_of_rank)
        .ok_or_else(bad)?;
    let path = uri_path(&uri).ok_or_else(bad)?;
    let lang = codeforge_syntax::Language::from_path(&path).ok_or_else(bad)?;
    let Some(c) = session.completion_engine().cached(key) else {
        return Ok(serde_json::json!({"recorded": null}));
    };
    let Some((_, text)) = c.items.iter().find(|(l, _)| *l == level) else {
        return Ok(serde_json::json!({"recorded": null}));
    };
    let (rel, _, _) = session.rel_and_settings(&path);
    let root = session
        .workspace_for(&path)
        .map(|w| w.root.clone())
        .unwrap_or_default();
    let item = codeforge_ide::AcceptedItem {
        root: &root,
        rel_path: &rel,
        language: lang,
        level,
        text,
    };
    match codeforge_ide::record_accepted_completion(&session.options().cache_dir, &c, item) {
        Ok(id) => Ok(serde_json::json!({"recorded": id})),
        Err(e) => {
            tracing::warn!("could not record an accepted completion: {e}");
            Ok(serde_json::json!({"recorded": null}))
        }
    }
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
