//! The generation pipeline as the server runs it for the code action's resolve, the
//! `codeforge.generateFunction` command and `codeforge/generate`: settings and context for the
//! file, the trust gate, the model, `$/progress`, and the edit against the document as it is
//! now (re-anchored if the text moved). Model work runs in the request's own future:
//! `$/cancelRequest` drops it, which closes the HTTP connection or stops the embedded model
//! between tokens. Owns no state; must not import the `LanguageServer` impl or handlers.

use std::collections::HashMap;

use codeforge_ide::{GenerateError, GenerateInput, GenerateStatus, Outcome, generate_function};
use codeforge_syntax::{Language, splice_body};
use tower_lsp_server::jsonrpc::{Error as RpcError, ErrorCode, Result as RpcResult};
use tower_lsp_server::ls_types::*;

use crate::line_index::LineIndex;
use crate::progress::WorkDone;
use crate::session::{Session, uri_path};

pub(crate) fn rpc_error(message: impl Into<String>) -> RpcError {
    RpcError {
        code: ErrorCode::ServerError(-32803),
        message: message.into().into(),
        data: None,
    }
}

/// The verification label, or "unverified" when verification was not asked for.
pub(crate) fn verification_label(o: &Outcome) -> String {
    o.verification.as_ref().map_or_else(
        || "⚠ unverified: no tests were run".to_string(),
        |v| v.label.clone(),
    )
}

pub(crate) fn summary(o: &Outcome) -> String {
    match o.status {
        GenerateStatus::Generated => format!(
            "generated `{}` — {} ({} of {} candidates usable)",
            o.target.name,
            verification_label(o),
            o.candidates.iter().filter(|c| c.rejected.is_none()).count(),
            o.candidates.len()
        ),
        GenerateStatus::NoPassingCandidate => format!(
            "nothing shown for `{}`: {} (set verify.show_unverified to see failing candidates)",
            o.target.name,
            verification_label(o)
        ),
        GenerateStatus::NoValidCandidate => {
            let why: Vec<&str> = o
                .candidates
                .iter()
                .filter_map(|c| c.rejected.as_deref())
                .collect();
            format!(
                "no usable candidate for `{}`: {}",
                o.target.name,
                why.join("; ")
            )
        }
    }
}

/// Notes in the feedback store whether the user took a verified attempt's edit.
pub(crate) fn record_accepted(session: &Session, o: &Outcome, accepted: bool) {
    if let Some(id) = o
        .verification
        .as_ref()
        .and_then(|v| v.feedback_id.as_deref())
        && let Err(e) =
            codeforge_verify::feedback::record_accepted(&session.options().cache_dir, id, accepted)
    {
        tracing::warn!("could not record acceptance: {e}");
    }
}

/// Runs the pipeline for `line` of `uri`, reporting `$/progress`.
pub(crate) async fn run_generation(
    session: &Session,
    uri: &Uri,
    line: u32,
    force: bool,
) -> RpcResult<(Outcome, String)> {
    let path = uri_path(uri).ok_or_else(|| rpc_error("not a file URI"))?;
    let lang = Language::from_path(&path)
        .ok_or_else(|| rpc_error("CodeForge generates Python, Rust and Java"))?;
    let (text, _) = session
        .document_text(uri)
        .ok_or_else(|| rpc_error("cannot read the document"))?;
    let (rel, settings, retriever) = session.rel_and_settings(&path);
    let title = format!(
        "Generating in {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let progress = if session.caps().work_done_progress {
        WorkDone::begin(
            session.client().clone(),
            "generate",
            title,
            ("starting".to_string(), None),
        )
        .await
    } else {
        WorkDone::disabled()
    };
    // The trust question (if any) is asked now and answered while the model works.
    let verify = session.verify_context(&path, &settings);
    progress.report("loading the model", None);
    let model = match session.model_for(&settings, true).await {
        Ok(m) => m,
        Err(e) => {
            progress.end(format!("failed: {e}"));
            if !e.offered {
                session.show_error(format!("CodeForge: {e}")).await;
            }
            return Err(rpc_error(e.to_string()));
        }
    };
    let p2 = progress.clone();
    let report = move |m: &str| p2.report(m, None);
    let result = Box::pin(generate_function(
        model.as_ref(),
        retriever.as_deref(),
        &settings.generation,
        verify.as_ref(),
        GenerateInput {
            language: lang,
            rel_path: &rel,
            source: &text,
            line: line as usize,
            allow_implemented: force,
        },
        &report,
    ))
    .await;
    match result {
        Ok(o) => {
            progress.end(summary(&o));
            // The typed verdict, for editors that show it (status bars, notifications).
            session
                .client()
                .send_notification::<crate::proto::VerificationNotification>(
                    crate::proto::VerificationParams {
                        uri: uri.clone(),
                        target: o.target.qualified_name.clone(),
                        verification: crate::proto::VerificationSummary::of(
                            o.verification.as_ref(),
                        ),
                    },
                )
                .await;
            Ok((o, text))
        }
        Err(e) => {
            progress.end(format!("failed: {e}"));
            if matches!(e, GenerateError::Model(_)) {
                session.show_error(format!("CodeForge: {e}")).await;
            }
            Err(rpc_error(e.to_string()))
        }
    }
}

/// The workspace edit for an outcome, against the document as it is now: the same version
/// gets the edit as computed; a changed document gets it re-anchored on the same function if
/// that is still a stub, else nothing.
pub(crate) fn edit_for(
    session: &Session,
    uri: &Uri,
    o: &Outcome,
    source: &str,
) -> Option<WorkspaceEdit> {
    let chosen = o
        .chosen
        .and_then(|i| o.candidates.iter().find(|c| c.index == i))?;
    let (now_text, now_version) = session.document_text(uri)?;
    // The body's edit and the imports and helpers it needs: one change, against one text.
    let edits = if now_text == source {
        let mut all = vec![chosen.edit.clone()?];
        all.extend(chosen.extra_edits.iter().cloned());
        all
    } else {
        let path = uri_path(uri)?;
        let lang = Language::from_path(&path)?;
        let (rel, _, _) = session.rel_and_settings(&path);
        let file = codeforge_syntax::ParsedFile::parse(lang, &rel, &now_text);
        let t = file
            .stub_functions()
            .into_iter()
            .find(|t| t.symbol.qualified_name == o.target.qualified_name)?;
        tracing::info!(
            "document changed during generation; edit re-anchored on {}",
            o.target.qualified_name
        );
        let code = codeforge_prompt::split_answer(lang, &chosen.raw).1;
        let extras = codeforge_syntax::answer_extras(lang, &code, &t.symbol.name);
        let mut all = vec![splice_body(&t, chosen.body.as_deref()?)];
        all.extend(file.extra_edits(&t, &extras));
        all
    };
    let index = LineIndex::new(&now_text);
    let text_edits: Vec<TextEdit> = edits
        .into_iter()
        .map(|edit| {
            let (sl, sc) = index.position(&now_text, edit.start);
            let (el, ec) = index.position(&now_text, edit.end);
            TextEdit {
                range: Range {
                    start: Position::new(sl, sc),
                    end: Position::new(el, ec),
                },
                new_text: edit.new_text,
            }
        })
        .collect();
    if session.caps().document_changes {
        Some(WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: now_version,
                },
                edits: text_edits.into_iter().map(OneOf::Left).collect(),
            }])),
            ..Default::default()
        })
    } else {
        Some(WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), text_edits)])),
            ..Default::default()
        })
    }
}
