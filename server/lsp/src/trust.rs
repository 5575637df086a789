//! Trust before running code: the first time verification would run in a workspace, the user is
//! asked (`window/showMessageRequest`: Allow / Not now / Never); Allow and Never are remembered
//! per workspace in the user's config dir, Not now for this session. `verify.trust` in the
//! settings can pre-trust (`always`) or forbid (`never`). Also the small workspace commands
//! (re-index, trust, untrust) and the `codeforge/context` request ("what would be retrieved").
//!
//! A workspace's own `codeforge.toml` cannot trust itself or send code or keys elsewhere: its
//! restricted keys are ignored (the index opens without them) until the user answers Allow to
//! one question per file content and session; Allow pins the approval to the file's blake3 hash
//! in the trust store and reloads the settings, and a changed file asks again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use codeforge_config::{Settings, TrustSetting};
use std::sync::Arc;

use codeforge_ide::{TrustGate, VerifyContext, trust_known};
use codeforge_verify::trust::known_trust;
use codeforge_verify::{TrustDecision, TrustStore};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::server::{Backend, reload_workspace, uri_path};
use crate::workspace::{Job, Workspace};
use codeforge_verify::trust::WorkspaceConfig;

pub const REINDEX_COMMAND: &str = "codeforge.reindex";
pub const TRUST_COMMAND: &str = "codeforge.trustWorkspace";
pub const UNTRUST_COMMAND: &str = "codeforge.untrustWorkspace";

const ALLOW: &str = "Allow";
const NOT_NOW: &str = "Not now";
const NEVER: &str = "Never";

#[derive(Default)]
pub(crate) struct SessionTrust {
    not_now: std::sync::Mutex<HashSet<PathBuf>>,
    /// `(root, file hash)` of every `codeforge.toml` asked about this session (asked once).
    config_asked: std::sync::Mutex<HashSet<(PathBuf, String)>>,
    /// One question at a time: concurrent generations wait for the first answer.
    asking: tokio::sync::Mutex<()>,
}

/// Parameters of `codeforge/context`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContextItem {
    pub label: String,
    pub kind: String,
    pub status: String,
    pub tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContextResult {
    pub target: Option<String>,
    pub items: Vec<ContextItem>,
    pub notes: Vec<String>,
    pub prompt_tokens: usize,
}

/// Whether tests may run in `root`; asks the user once when nothing is known.
async fn ask_trust(
    client: Client,
    store: Option<TrustStore>,
    session: Arc<SessionTrust>,
    root: PathBuf,
    setting: TrustSetting,
) -> Result<(), String> {
    let root = root.as_path();
    // One question at a time; a concurrent generation sees the first answer.
    let _one = session.asking.lock().await;
    if let Some(known) = known_trust(setting, store.as_ref(), root) {
        return known;
    }
    if session.not_now.lock().unwrap().contains(root) {
        return Err(
            "this workspace is not trusted to run tests (answered “Not now” this session)".into(),
        );
    }
    // What a test run gets on this machine, said as it is: below full isolation nothing runs
    // unless the user's own config lowers `verify.sandbox`.
    let support = codeforge_verify::sandbox::support();
    let isolation = match support.level {
        codeforge_verify::sandbox::Level::Full => {
            "Test runs are sandboxed: they see a scratch copy, not your files, your home directory or the network".to_string()
        }
        _ => format!(
            "This machine gives {}. Tests run only if your ~/.config/codeforge/config.toml sets verify.sandbox = \"{}\"",
            support.summary(),
            support.level.as_str()
        ),
    };
    let question = format!(
        "CodeForge checks generated code by running this workspace's tests on it. Running tests executes the workspace's code. {isolation}. Allow it in {}?",
        root.display()
    );
    let actions = [ALLOW, NOT_NOW, NEVER].map(|t| MessageActionItem {
        title: t.to_string(),
        properties: Default::default(),
    });
    let answer = client
        .show_message_request(MessageType::WARNING, question, Some(actions.to_vec()))
        .await;
    let title = answer.ok().flatten().map(|a| a.title);
    match title.as_deref() {
        Some(ALLOW) => {
            if let Some(s) = &store
                && let Err(e) = s.set(root, Some(TrustDecision::Allow))
            {
                tracing::warn!("could not remember the trust answer: {e}");
            }
            Ok(())
        }
        Some(NEVER) => {
            if let Some(s) = &store {
                let _ = s.set(root, Some(TrustDecision::Never));
            }
            Err("you chose never to run tests in this workspace".into())
        }
        _ => {
            session.not_now.lock().unwrap().insert(root.to_path_buf());
            Err("this workspace is not trusted to run tests (answered “Not now”)".into())
        }
    }
}

const APPROVE_CONFIG: &str = "Allow";
const IGNORE_CONFIG: &str = "Ignore";

impl Backend {
    /// Asks once (per file content and session) whether a workspace's `codeforge.toml` may apply
    /// the restricted keys it sets; meanwhile the workspace runs without them. Allow pins the
    /// approval to the hash of the bytes asked about and reloads the workspace's settings.
    pub(crate) fn ask_config_approval(&self, ws: Arc<Workspace>, config: WorkspaceConfig) {
        let Some(question) = config.ignored_message(
            "Allow applies them to this file as it is now (a changed file asks again); Ignore keeps them ignored.",
        ) else {
            return;
        };
        if !self
            .trust
            .config_asked
            .lock()
            .unwrap()
            .insert((ws.root.clone(), config.hash.clone()))
        {
            return;
        }
        tracing::warn!("{question}");
        let client = self.client().clone();
        let store = self.trust_store();
        let layers = self.layers();
        tokio::spawn(async move {
            let actions = [APPROVE_CONFIG, IGNORE_CONFIG].map(|t| MessageActionItem {
                title: t.to_string(),
                properties: Default::default(),
            });
            let answer = client
                .show_message_request(MessageType::WARNING, question, Some(actions.to_vec()))
                .await;
            if answer.ok().flatten().map(|a| a.title).as_deref() != Some(APPROVE_CONFIG) {
                return;
            }
            let Some(store) = store else {
                client
                    .show_message(
                        MessageType::ERROR,
                        "CodeForge: no config directory (HOME unset) to remember the approval in",
                    )
                    .await;
                return;
            };
            if let Err(e) = store.approve_config(&ws.root, Some(&config.hash)) {
                client
                    .show_message(
                        MessageType::ERROR,
                        format!("CodeForge: could not save the approval: {e}"),
                    )
                    .await;
                return;
            }
            let (_, errors) = reload_workspace(&layers, Some(&store), &ws);
            for e in errors {
                client.show_message(MessageType::ERROR, e).await;
            }
        });
    }

    pub(crate) fn trust_store(&self) -> Option<TrustStore> {
        self.options()
            .trust_file
            .clone()
            .or_else(TrustStore::default_path)
            .map(TrustStore::new)
    }

    /// Starts finding out whether tests may run in `root` (asking the user once when nothing is
    /// known) without waiting: the model works meanwhile and verification awaits the answer.
    pub(crate) fn trust_gate(&self, root: PathBuf, settings: &Settings) -> TrustGate {
        if !settings.verify.enabled {
            return trust_known(Ok(()));
        }
        let client = self.client().clone();
        let store = self.trust_store();
        let session = self.trust.clone();
        let setting = settings.verify.trust;
        let asked =
            tokio::spawn(async move { ask_trust(client, store, session, root, setting).await });
        async move {
            asked
                .await
                .unwrap_or_else(|e| Err(format!("the trust question failed: {e}")))
        }
        .boxed()
        .shared()
    }

    /// The verification context for a file (`None` outside any workspace folder).
    pub(crate) fn verify_context(&self, path: &Path, settings: &Settings) -> Option<VerifyContext> {
        let root = self.workspace_for(path)?.root.clone();
        let trusted = self.trust_gate(root.clone(), settings);
        Some(self.context_with(root, settings, trusted))
    }

    fn context_with(
        &self,
        root: PathBuf,
        settings: &Settings,
        trusted: TrustGate,
    ) -> VerifyContext {
        VerifyContext {
            root,
            cache_dir: self.options().cache_dir.clone(),
            settings: settings.verify.clone(),
            trusted,
        }
    }

    /// The verification context for a completion: only an answer already known counts (a
    /// completion never asks the trust question).
    pub(crate) fn quiet_verify_context(
        &self,
        path: &Path,
        settings: &Settings,
    ) -> Option<VerifyContext> {
        let root = self.workspace_for(path)?.root.clone();
        let answer = known_trust(settings.verify.trust, self.trust_store().as_ref(), &root)
            .unwrap_or_else(|| {
                Err("the workspace is not trusted to run tests yet (generate a function once to answer)".into())
            });
        Some(self.context_with(root, settings, trust_known(answer)))
    }

    fn roots_from_args(&self, args: &[serde_json::Value]) -> Vec<PathBuf> {
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
            self.workspaces().iter().map(|w| w.root.clone()).collect()
        } else {
            given
        }
    }

    pub(crate) async fn execute_trust(
        &self,
        args: Vec<serde_json::Value>,
        trust: bool,
    ) -> RpcResult<Option<LSPAny>> {
        let roots = self.roots_from_args(&args);
        let store = self.trust_store();
        let mut done = Vec::new();
        for r in &roots {
            self.trust.not_now.lock().unwrap().remove(r);
            if let Some(s) = &store {
                let d = if trust {
                    Some(TrustDecision::Allow)
                } else {
                    Some(TrustDecision::Never)
                };
                if let Err(e) = s.set(r, d) {
                    self.show_error(format!("CodeForge: could not save the trust setting: {e}"))
                        .await;
                    continue;
                }
            }
            done.push(r.display().to_string());
        }
        Ok(Some(
            serde_json::json!({"trusted": trust, "workspaces": done}),
        ))
    }

    pub(crate) async fn execute_reindex(&self) -> RpcResult<Option<LSPAny>> {
        let n = self.workspaces().len();
        for ws in self.workspaces() {
            ws.submit(Job::Full);
        }
        Ok(Some(serde_json::json!({"workspaces": n})))
    }

    /// `codeforge/health`: the isolation test runs get on this machine, with a contained
    /// self-test run (what `codeforge doctor --json` prints under `sandbox`). For the editors'
    /// status and `:checkhealth`.
    pub async fn health_request(&self, _params: serde_json::Value) -> RpcResult<serde_json::Value> {
        let h = codeforge_verify::process::health().await;
        Ok(serde_json::json!({ "sandbox": h.to_json() }))
    }

    /// What a generation at this position would show the model, without calling it.
    pub async fn context_request(&self, params: ContextParams) -> RpcResult<ContextResult> {
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
        let Some((text, _)) = self.document_text(&uri) else {
            return Ok(empty("cannot read the document"));
        };
        let (rel, settings, retriever) = self.rel_and_settings(&path);
        let line = params.position.line as usize;
        let Some(target) = codeforge_syntax::function_at_line(lang, &rel, &text, line) else {
            return Ok(empty("no function or method at the cursor"));
        };
        let input = codeforge_ide::GenerateInput {
            language: lang,
            rel_path: &rel,
            source: &text,
            line,
            allow_implemented: true,
        };
        let count = |t: &str| t.len().div_ceil(3);
        let (built, note) = codeforge_ide::build_prompt(
            retriever.as_deref(),
            &settings.generation,
            &input,
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
}
