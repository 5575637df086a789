//! Generation over LSP: the "Generate function from docstring" code action (listed from syntax
//! alone; the model runs on `codeAction/resolve`, or in the `codeforge.generateFunction` command
//! followed by `workspace/applyEdit` for clients without resolve), and the custom request
//! `codeforge/generate`. Model work runs in the request's own future: `$/cancelRequest` drops it,
//! which closes the HTTP connection or stops the embedded model between tokens. An edit is only
//! sent against the document version it was computed for, re-anchored if the text moved.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use codeforge_config::Settings;
use codeforge_ide::{
    BackendHandle, GenerateError, GenerateInput, GenerateOutcome, GenerateStatus, Retriever,
    generate_function, generate_targets, load_backend,
};
use codeforge_syntax::{Language, splice_body, stub_functions};
use serde::{Deserialize, Serialize};
use tower_lsp_server::jsonrpc::{Error as RpcError, ErrorCode, Result as RpcResult};
use tower_lsp_server::ls_types::*;

use crate::line_index::LineIndex;
use crate::server::{Backend, uri_path};

pub const GENERATE_COMMAND: &str = "codeforge.generateFunction";
pub const GENERATE_KIND: &str = "refactor.rewrite.codeforge";

/// What a listed action carries to its resolve (or command).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionData {
    pub uri: Uri,
    pub version: Option<i32>,
    /// 0-based line of the function.
    pub line: u32,
    pub qualified_name: String,
}

/// Parameters of `codeforge/generate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
    #[serde(default)]
    pub explain: bool,
    /// Regenerate even when the function has a body.
    #[serde(default)]
    pub force: bool,
}

/// Result of `codeforge/generate`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResult {
    pub status: GenerateStatus,
    pub code: Option<String>,
    pub edit: Option<WorkspaceEdit>,
    pub target: codeforge_ide::TargetInfo,
    pub message: String,
    /// How the code was checked: `{status, label, selectedTests, passed, failed, rounds, …}`.
    pub verification: Option<codeforge_ide::Verification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<serde_json::Value>,
}

/// Loaded model backends, by the settings that made them (loading the embedded model is slow).
#[derive(Default)]
pub struct Models {
    cache: tokio::sync::Mutex<HashMap<String, BackendHandle>>,
}

impl Models {
    pub async fn get(
        &self,
        settings: &Settings,
        cache_dir: &Path,
        fixed: Option<&BackendHandle>,
    ) -> Result<BackendHandle, String> {
        if let Some(b) = fixed {
            return Ok(b.clone());
        }
        let key = format!("{:?}", settings.generation.backend);
        let mut cache = self.cache.lock().await;
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        let gen_settings = settings.generation.clone();
        let dir = cache_dir.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || {
            load_backend(&gen_settings, &dir, &|k| std::env::var(k).ok())
        })
        .await
        .map_err(|e| format!("loading the model failed: {e}"))?
        .map_err(|e| e.to_string())?;
        cache.insert(key, loaded.clone());
        Ok(loaded)
    }
}

fn rpc_error(message: impl Into<String>) -> RpcError {
    RpcError {
        code: ErrorCode::ServerError(-32803),
        message: message.into().into(),
        data: None,
    }
}

/// The verification label, or "unverified" when verification was not asked for.
pub(crate) fn verification_label(o: &GenerateOutcome) -> String {
    o.verification.as_ref().map_or_else(
        || "⚠ unverified: no tests were run".to_string(),
        |v| v.label.clone(),
    )
}

fn summary(o: &GenerateOutcome) -> String {
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

impl Backend {
    /// Notes in the feedback store whether the user took a verified attempt's edit.
    fn record_accepted(&self, o: &GenerateOutcome, accepted: bool) {
        if let Some(id) = o
            .verification
            .as_ref()
            .and_then(|v| v.feedback_id.as_deref())
            && let Err(e) =
                codeforge_verify::feedback::record_accepted(&self.options().cache_dir, id, accepted)
        {
            tracing::warn!("could not record acceptance: {e}");
        }
    }

    /// The document text and version as the server holds it (open buffer, else disk).
    pub(crate) fn document_text(&self, uri: &Uri) -> Option<(String, Option<i32>)> {
        if let Some(d) = self.documents_lock().get(uri) {
            return Some((d.text.clone(), Some(d.version)));
        }
        let path = uri_path(uri)?;
        let bytes = std::fs::read(path).ok()?;
        String::from_utf8(bytes).ok().map(|t| (t, None))
    }

    pub(crate) fn rel_and_settings(
        &self,
        path: &Path,
    ) -> (String, Settings, Option<Arc<dyn Retriever>>) {
        let ws = self.workspace_for(path);
        let rel = ws
            .as_ref()
            .and_then(|w| codeforge_index::walk::rel_path(&w.root, path))
            .unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        let settings = match &ws {
            Some(w) => {
                let layer = w.file_layer.lock().unwrap().clone();
                self.settings_for(layer.as_ref()).0
            }
            None => self.settings_for(None).0,
        };
        let retriever = ws.and_then(|w| w.index()).map(|i| i as Arc<dyn Retriever>);
        (rel, settings, retriever)
    }

    pub(crate) async fn generate_code_actions(
        &self,
        params: &CodeActionParams,
    ) -> Vec<CodeActionOrCommand> {
        let uri = &params.text_document.uri;
        let Some(path) = uri_path(uri) else {
            return Vec::new();
        };
        let Some(lang) = Language::from_path(&path) else {
            return Vec::new();
        };
        let Some((text, version)) = self.document_text(uri) else {
            return Vec::new();
        };
        let (rel, _, _) = self.rel_and_settings(&path);
        let range = params.range;
        let targets = tokio::task::spawn_blocking(move || generate_targets(lang, &rel, &text))
            .await
            .unwrap_or_default();
        let resolve = self.client_supports_resolve();
        targets
            .into_iter()
            .filter(|t| {
                (t.start_line as u32) <= range.end.line && (t.end_line as u32) >= range.start.line
            })
            .map(|t| {
                let data = ActionData {
                    uri: uri.clone(),
                    version,
                    line: t.start_line as u32,
                    qualified_name: t.qualified_name.clone(),
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

    /// Runs the pipeline for `line` of `uri`, reporting `$/progress`.
    pub(crate) async fn run_generation(
        &self,
        uri: &Uri,
        line: u32,
        force: bool,
    ) -> RpcResult<(GenerateOutcome, String)> {
        let path = uri_path(uri).ok_or_else(|| rpc_error("not a file URI"))?;
        let lang = Language::from_path(&path)
            .ok_or_else(|| rpc_error("CodeForge generates Python, Rust and Java"))?;
        let (text, _) = self
            .document_text(uri)
            .ok_or_else(|| rpc_error("cannot read the document"))?;
        let (rel, settings, retriever) = self.rel_and_settings(&path);
        let progress = self
            .progress_reporter(format!(
                "Generating in {}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ))
            .await;
        // The trust question (if any) is asked now and answered while the model works.
        let verify = self.verify_context(&path, &settings);
        progress.report("loading the model");
        let model = match self.model_for(&settings).await {
            Ok(m) => m,
            Err(e) => {
                progress.end(format!("failed: {e}"));
                self.show_error(format!("CodeForge: {e}")).await;
                return Err(rpc_error(e));
            }
        };
        let p2 = progress.clone();
        let report = move |m: &str| p2.report(m);
        let result = generate_function(
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
        )
        .await;
        match result {
            Ok(o) => {
                progress.end(summary(&o));
                Ok((o, text))
            }
            Err(e) => {
                progress.end(format!("failed: {e}"));
                if matches!(e, GenerateError::Model(_)) {
                    self.show_error(format!("CodeForge: {e}")).await;
                }
                Err(rpc_error(e.to_string()))
            }
        }
    }

    /// The workspace edit for an outcome, against the document as it is now: the same version
    /// gets the edit as computed; a changed document gets it re-anchored on the same function if
    /// that is still a stub, else nothing.
    pub(crate) fn edit_for(
        &self,
        uri: &Uri,
        o: &GenerateOutcome,
        source: &str,
    ) -> Option<WorkspaceEdit> {
        let chosen = o
            .chosen
            .and_then(|i| o.candidates.iter().find(|c| c.index == i))?;
        let (now_text, now_version) = self.document_text(uri)?;
        let edit = if now_text == source {
            chosen.edit.clone()?
        } else {
            let path = uri_path(uri)?;
            let lang = Language::from_path(&path)?;
            let (rel, _, _) = self.rel_and_settings(&path);
            let t = stub_functions(lang, &rel, &now_text)
                .into_iter()
                .find(|t| t.symbol.qualified_name == o.target.qualified_name)?;
            tracing::info!(
                "document changed during generation; edit re-anchored on {}",
                o.target.qualified_name
            );
            splice_body(&t, chosen.body.as_deref()?)
        };
        let index = LineIndex::new(&now_text);
        let (sl, sc) = index.position(&now_text, edit.start);
        let (el, ec) = index.position(&now_text, edit.end);
        let text_edit = TextEdit {
            range: Range {
                start: Position::new(sl, sc),
                end: Position::new(el, ec),
            },
            new_text: edit.new_text,
        };
        if self.client_supports_document_changes() {
            Some(WorkspaceEdit {
                document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier {
                        uri: uri.clone(),
                        version: now_version,
                    },
                    edits: vec![OneOf::Left(text_edit)],
                }])),
                ..Default::default()
            })
        } else {
            Some(WorkspaceEdit {
                changes: Some(HashMap::from([(uri.clone(), vec![text_edit])])),
                ..Default::default()
            })
        }
    }

    pub(crate) async fn resolve_generate_action(
        &self,
        mut action: CodeAction,
    ) -> RpcResult<CodeAction> {
        let Some(data) = action
            .data
            .clone()
            .and_then(|d| serde_json::from_value::<ActionData>(d).ok())
        else {
            return Ok(action);
        };
        let (o, source) = self.run_generation(&data.uri, data.line, false).await?;
        match self.edit_for(&data.uri, &o, &source) {
            Some(edit) => {
                // Resolve is sent when the user picks the action: the edit is taken.
                self.record_accepted(&o, true);
                action.edit = Some(edit);
                action.title = format!("{} — {}", action.title, verification_label(&o));
                Ok(action)
            }
            None => {
                let msg = if o.status == GenerateStatus::Generated {
                    "CodeForge: the document changed while generating and the function is no longer a stub; nothing applied".to_string()
                } else {
                    format!("CodeForge: {}", summary(&o))
                };
                self.show_warning(msg.clone()).await;
                Err(rpc_error(msg))
            }
        }
    }

    pub(crate) async fn execute_generate_command(
        &self,
        args: Vec<serde_json::Value>,
    ) -> RpcResult<Option<serde_json::Value>> {
        let data: ActionData = args
            .into_iter()
            .next()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| rpc_error("codeforge.generateFunction expects {uri, line}"))?;
        let (o, source) = self.run_generation(&data.uri, data.line, false).await?;
        let Some(edit) = self.edit_for(&data.uri, &o, &source) else {
            let msg = format!("CodeForge: {}", summary(&o));
            self.show_warning(msg.clone()).await;
            return Ok(Some(
                serde_json::json!({"status": o.status, "applied": false, "message": msg, "verification": o.verification}),
            ));
        };
        let applied = match self.client().apply_edit(edit).await {
            Ok(r) => r.applied,
            Err(e) => {
                tracing::warn!("workspace/applyEdit failed: {e}");
                false
            }
        };
        self.record_accepted(&o, applied);
        Ok(Some(
            serde_json::json!({"status": o.status, "applied": applied, "message": summary(&o), "verification": o.verification}),
        ))
    }

    pub async fn generate_request(&self, params: GenerateParams) -> RpcResult<GenerateResult> {
        let uri = params.text_document.uri;
        let (o, source) = self
            .run_generation(&uri, params.position.line, params.force)
            .await?;
        let edit = self.edit_for(&uri, &o, &source);
        Ok(GenerateResult {
            status: o.status,
            code: o.code.clone(),
            edit,
            target: o.target.clone(),
            message: summary(&o),
            verification: o.verification.clone(),
            explain: params
                .explain
                .then(|| serde_json::json!({"explain": o.explain, "candidates": o.candidates})),
        })
    }
}

/// A `$/progress` sequence (or nothing, when the client does not take progress).
#[derive(Clone)]
pub(crate) struct ProgressHandle {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Option<String>>>,
}

impl ProgressHandle {
    pub fn report(&self, m: &str) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Some(m.to_string()));
        }
    }
    pub fn end(&self, m: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Some(m));
            let _ = tx.send(None);
        }
    }
}

impl Backend {
    pub(crate) async fn progress_reporter(&self, title: String) -> ProgressHandle {
        if !self.client_supports_progress() {
            return ProgressHandle { tx: None };
        }
        let client = self.client().clone();
        let token = crate::server::progress_token("generate");
        if client
            .create_work_done_progress(token.clone())
            .await
            .is_err()
        {
            return ProgressHandle { tx: None };
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
        tokio::spawn(async move {
            let ongoing = client
                .progress(token, title)
                .with_message("starting")
                .begin()
                .await;
            let mut last = String::new();
            while let Some(Some(m)) = rx.recv().await {
                ongoing.report(m.clone()).await;
                last = m;
            }
            ongoing.finish_with_message(last).await;
        });
        ProgressHandle { tx: Some(tx) }
    }
}
