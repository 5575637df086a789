//! The server's state, one struct: open documents, workspace folders, what the client supports,
//! the settings layers, loaded models, the completion engine and this session's trust answers,
//! with the operations handlers share on them (settings for a file, the document text, the trust
//! gate for a test run, messages to the user). Documents are changed synchronously, in order;
//! long work never runs under a lock here. Must not import the `LanguageServer` impl or handlers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use codeforge_config::{Layer, Settings};
use codeforge_ide::{
    CompletionRepo, Retriever, TrustGate, VerifyContext, ranked_retriever, trust_known,
};
use codeforge_syntax::Language;
use codeforge_verify::TrustStore;
use codeforge_verify::trust::{WorkspaceConfig, known_trust};
use futures::FutureExt;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageType, Uri};

use crate::capabilities::ClientCaps;
use crate::completion_engine::CompletionEngine;
use crate::layers::{SharedLayers, read_workspace_file};
use crate::models::Models;
use crate::options::ServerOptions;
use crate::progress::WorkDone;
use crate::trust_prompt::{SessionTrust, ask_config_approval, ask_trust};
use crate::workspace::{Job, ProgressSink, Reporter, Workspace};

/// An open document.
pub struct Document {
    pub text: String,
    pub version: i32,
    /// Changed since it was opened or saved (the index holds the buffer, not the disk).
    pub dirty: bool,
}

pub(crate) struct Session {
    client: Client,
    options: ServerOptions,
    /// What the client said it supports, set by `initialize`.
    caps: OnceLock<ClientCaps>,
    documents: Mutex<HashMap<Uri, Document>>,
    workspaces: RwLock<Vec<Arc<Workspace>>>,
    /// Roots announced by `initialize`, started on `initialized`.
    pending_roots: Mutex<Vec<(PathBuf, String)>>,
    /// Messages for the user, shown by the next [`Session::flush_errors`].
    pending_errors: Mutex<Vec<String>>,
    /// The user's file, the editor's settings and the environment (shared with the approval
    /// question).
    layers: Arc<SharedLayers>,
    models: Models,
    model_offer: Arc<crate::model_offer::ModelOffer>,
    completion: Arc<CompletionEngine>,
    /// Workspaces answered "Not now" in this session, and the trust question's own lock.
    trust: Arc<SessionTrust>,
}

/// Why no model could be had; `offered`: the user was asked (or is being asked) about the
/// download, so another error message would only repeat it.
#[derive(Debug)]
pub struct ModelUnavailable {
    pub message: String,
    pub offered: bool,
}

impl std::fmt::Display for ModelUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Session {
    pub fn new(client: Client, options: ServerOptions) -> Self {
        Session {
            client,
            options,
            caps: OnceLock::new(),
            documents: Mutex::new(HashMap::new()),
            workspaces: RwLock::new(Vec::new()),
            pending_roots: Mutex::new(Vec::new()),
            pending_errors: Mutex::new(Vec::new()),
            layers: Default::default(),
            models: Default::default(),
            model_offer: Default::default(),
            completion: Default::default(),
            trust: Default::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// What the client supports (nothing before `initialize`).
    pub fn caps(&self) -> ClientCaps {
        self.caps.get().cloned().unwrap_or_default()
    }

    pub fn set_caps(&self, caps: ClientCaps) {
        let _ = self.caps.set(caps);
    }

    pub fn documents(&self) -> MutexGuard<'_, HashMap<Uri, Document>> {
        self.documents.lock().unwrap()
    }

    pub fn completion_engine(&self) -> &Arc<CompletionEngine> {
        &self.completion
    }

    pub fn trust(&self) -> &SessionTrust {
        &self.trust
    }

    pub fn layers(&self) -> &SharedLayers {
        &self.layers
    }

    pub fn set_pending_roots(&self, roots: Vec<(PathBuf, String)>) {
        *self.pending_roots.lock().unwrap() = roots;
    }

    pub fn take_pending_roots(&self) -> Vec<(PathBuf, String)> {
        std::mem::take(&mut *self.pending_roots.lock().unwrap())
    }

    /// Queues a message for the user (shown by the next [`Session::flush_errors`]).
    pub fn push_error(&self, message: String) {
        self.pending_errors.lock().unwrap().push(message);
    }

    pub async fn flush_errors(&self) {
        let errors: Vec<String> = std::mem::take(&mut *self.pending_errors.lock().unwrap());
        for e in errors {
            tracing::warn!("{e}");
            self.client.show_message(MessageType::ERROR, e).await;
        }
    }

    pub async fn show_error(&self, message: String) {
        tracing::error!("{message}");
        self.client.show_message(MessageType::ERROR, message).await;
    }

    pub async fn show_warning(&self, message: String) {
        tracing::warn!("{message}");
        self.client
            .show_message(MessageType::WARNING, message)
            .await;
    }

    /// (Re)reads the user's own settings file, `<config dir>/codeforge/config.toml`. Errors are
    /// queued for the user; the file is then left out.
    pub fn load_user_config(&self) {
        let path = self
            .options
            .user_config
            .clone()
            .or_else(codeforge_verify::trust::user_config_path);
        let layer = match path
            .as_deref()
            .map(codeforge_verify::trust::read_user_config)
        {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(l))) => path.map(|p| (p.display().to_string(), l)),
            Some(Err(e)) => {
                self.push_error(format!("CodeForge: {e}; this file is ignored until fixed"));
                None
            }
        };
        self.layers.set_user(layer);
    }

    /// Reads the environment's overrides. An error is queued for the user; they are then left out.
    pub fn load_env(&self) {
        match codeforge_config::env_layer(&*self.options.env) {
            Ok(l) => self.layers.set_env(Some(l)),
            Err(e) => {
                self.layers.set_env(None);
                self.push_error(format!(
                    "CodeForge: {e}; the environment's settings are ignored"
                ));
            }
        }
    }

    /// Settings for a workspace from its file layer and the other layers.
    pub fn settings_for(&self, file_layer: Option<&Layer>) -> (Settings, Option<String>) {
        self.layers.settings_for(file_layer)
    }

    /// The file's workspace-relative path (its name outside every workspace), its settings and
    /// its workspace's index.
    pub fn rel_and_settings(&self, path: &Path) -> (String, Settings, Option<Arc<dyn Retriever>>) {
        let ws = self.workspace_for(path);
        let rel = rel_path(ws.as_deref(), path);
        let settings = match &ws {
            Some(w) => {
                let layer = w.file_layer.lock().unwrap().clone();
                self.settings_for(layer.as_ref()).0
            }
            None => self.settings_for(None).0,
        };
        let retriever = ws
            .and_then(|w| w.index())
            .map(|i| ranked_retriever(i, settings.generation.context_ranking));
        (rel, settings, retriever)
    }

    /// Where completion in `path` gets repository context: its workspace's index and cache.
    pub fn completion_repo(&self, path: &Path) -> Option<CompletionRepo> {
        let ws = self.workspace_for(path)?;
        let layer = ws.file_layer.lock().unwrap().clone();
        let ranking = self
            .settings_for(layer.as_ref())
            .0
            .generation
            .context_ranking;
        let retriever = ranked_retriever(ws.index()?, ranking);
        Some(CompletionRepo {
            retriever,
            contexts: ws.completion_contexts.clone(),
            name: ws.name.clone(),
        })
    }

    /// Precomputes completion's repository context for the functions of an opened or saved
    /// document, in the background (nothing without an index yet, with `context_hits = 0`, or
    /// in a secrets file).
    pub fn warm_completion_context(&self, uri: &Uri) {
        let Some(path) = uri_path(uri) else { return };
        let Some(lang) = Language::from_path(&path) else {
            return;
        };
        let Some((text, _)) = self.document_text(uri) else {
            return;
        };
        let (rel, settings, _) = self.rel_and_settings(&path);
        if settings.generation.context_hits == 0
            || codeforge_syntax::secret_scan::is_secret_path(&rel)
        {
            return;
        }
        let Some(repo) = self.completion_repo(&path) else {
            return;
        };
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            let n = repo
                .contexts
                .warm(repo.retriever.clone(), lang, &rel, &text)
                .await;
            tracing::info!(
                "completion context for {n} functions of {rel} in {} ms",
                t.elapsed().as_millis()
            );
        });
    }

    /// The document text and version as the server holds it (open buffer, else disk).
    pub fn document_text(&self, uri: &Uri) -> Option<(String, Option<i32>)> {
        if let Some(d) = self.documents().get(uri) {
            return Some((d.text.clone(), Some(d.version)));
        }
        let path = uri_path(uri)?;
        let bytes = std::fs::read(path).ok()?;
        String::from_utf8(bytes).ok().map(|t| (t, None))
    }

    /// The generation backend for these settings (the fixed test backend when there is one).
    /// When it is the embedded model and that is not installed, the user is offered the
    /// download (once per session): `wait` awaits the answer and the download (generation),
    /// otherwise the offer goes on in the background and this call fails at once (completion).
    pub async fn model_for(
        &self,
        settings: &Settings,
        wait: bool,
    ) -> Result<codeforge_ide::BackendHandle, ModelUnavailable> {
        let get = || {
            self.models.get(
                settings,
                &self.options.cache_dir,
                self.options.backend.as_ref(),
                &self.options.env,
            )
        };
        let e = match get().await {
            Ok(m) => return Ok(m),
            Err(e) => e,
        };
        if self.options.backend.is_some()
            || !crate::model_offer::embedded_missing(settings, &self.options.cache_dir)
        {
            return Err(ModelUnavailable {
                message: e,
                offered: false,
            });
        }
        let offer = self.model_offer.clone();
        let (client, cache, env) = (
            self.client.clone(),
            self.options.cache_dir.clone(),
            self.options.env.clone(),
        );
        let progress = self.caps().work_done_progress;
        if !wait {
            tokio::spawn(async move {
                let _ = offer.offer(&client, &cache, &env, progress).await;
            });
            return Err(ModelUnavailable {
                message: e,
                offered: true,
            });
        }
        match offer.offer(&client, &cache, &env, progress).await {
            Ok(()) => get().await.map_err(|message| ModelUnavailable {
                message,
                offered: false,
            }),
            Err(why) => Err(ModelUnavailable {
                message: format!("{e} ({why})"),
                offered: true,
            }),
        }
    }

    /// `codeforge.pullModels`: installs the missing models with progress, unasked.
    pub async fn pull_models(&self) -> Result<usize, String> {
        crate::model_offer::pull_missing(
            &self.client,
            &self.options.cache_dir,
            &self.options.env,
            self.caps().work_done_progress,
        )
        .await
    }

    /// What workspace actors report with: progress if the client takes it, messages, logs.
    fn reporter(&self) -> Arc<dyn Reporter> {
        Arc::new(ClientReporter {
            client: self.client.clone(),
            progress: self.caps().work_done_progress,
        })
    }

    pub fn workspaces(&self) -> Vec<Arc<Workspace>> {
        self.workspaces.read().unwrap().clone()
    }

    /// The innermost workspace folder holding `path`.
    pub fn workspace_for(&self, path: &Path) -> Option<Arc<Workspace>> {
        self.workspaces
            .read()
            .unwrap()
            .iter()
            .filter(|w| w.contains(path))
            .max_by_key(|w| w.root.as_os_str().len())
            .cloned()
    }

    /// Starts a workspace folder (`None` if it is already one).
    pub fn add_workspace(&self, root: PathBuf, name: String) -> Option<Arc<Workspace>> {
        let root = root.canonicalize().unwrap_or(root);
        if self
            .workspaces
            .read()
            .unwrap()
            .iter()
            .any(|w| w.root == root)
        {
            return None;
        }
        // The index opens with these settings at once: a workspace's own file counts only
        // without its restricted keys until the user approved it (no request with its URLs or
        // keys before that).
        let (config, file_err) = read_workspace_file(self.trust_store().as_ref(), &root);
        let file_layer = config.as_ref().map(|c| c.effective.clone());
        let (settings, err) = self.settings_for(file_layer.as_ref());
        for e in [file_err, err].into_iter().flatten() {
            self.push_error(e);
        }
        let on_startup = settings.index.on_startup;
        let ws = Workspace::start(
            root,
            name,
            self.options.cache_dir.clone(),
            settings,
            file_layer,
            self.reporter(),
        );
        if on_startup {
            ws.submit(Job::Full);
        }
        self.workspaces.write().unwrap().push(ws.clone());
        if let Some(c) = config {
            self.ask_config_approval(ws.clone(), c);
        }
        Some(ws)
    }

    /// Stops and forgets the workspace folder at `root`.
    pub fn remove_workspace(&self, root: &Path) {
        self.workspaces.write().unwrap().retain(|w| {
            if w.root == root {
                w.cancel();
                false
            } else {
                true
            }
        });
    }

    /// Sends a changed file to its workspace: the buffer if it is open and dirty, else disk.
    pub fn notify_file(&self, uri: &Uri) {
        let Some(path) = uri_path(uri) else { return };
        let Some(ws) = self.workspace_for(&path) else {
            return;
        };
        let Some(rel) = ws.rel_path(&path) else {
            return;
        };
        let mut overlays = HashMap::new();
        if let Some(doc) = self.documents().get(uri)
            && doc.dirty
        {
            overlays.insert(rel.clone(), doc.text.clone());
        }
        ws.submit(Job::Files {
            paths: vec![rel],
            overlays,
        });
    }

    /// Re-reads the user's file and reconfigures every workspace with the layers as they are.
    pub fn reconfigure_all(&self) {
        self.load_user_config();
        for ws in self.workspaces() {
            let layer = ws.file_layer.lock().unwrap().clone();
            let (settings, err) = self.settings_for(layer.as_ref());
            if let Some(e) = err {
                self.push_error(e);
            }
            ws.submit(Job::Reconfigure(settings));
        }
    }

    pub fn trust_store(&self) -> Option<TrustStore> {
        self.options
            .trust_file
            .clone()
            .or_else(TrustStore::default_path)
            .map(TrustStore::new)
    }

    /// Asks once (per file content and session) whether a workspace's `codeforge.toml` may apply
    /// the restricted keys it sets.
    pub fn ask_config_approval(&self, ws: Arc<Workspace>, config: WorkspaceConfig) {
        ask_config_approval(
            &self.client,
            self.trust_store(),
            self.layers.clone(),
            &self.trust,
            ws,
            config,
        );
    }

    /// Starts finding out whether tests may run in `root` (asking the user once when nothing is
    /// known) without waiting: the model works meanwhile and verification awaits the answer.
    pub fn trust_gate(&self, root: PathBuf, settings: &Settings) -> TrustGate {
        if !settings.verify.enabled {
            return trust_known(Ok(()));
        }
        let client = self.client.clone();
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
    pub fn verify_context(&self, path: &Path, settings: &Settings) -> Option<VerifyContext> {
        let root = self.workspace_for(path)?.root.clone();
        let trusted = self.trust_gate(root.clone(), settings);
        Some(self.context_with(root, settings, trusted))
    }

    /// The verification context for a completion: only an answer already known counts (a
    /// completion never asks the trust question).
    pub fn quiet_verify_context(&self, path: &Path, settings: &Settings) -> Option<VerifyContext> {
        let root = self.workspace_for(path)?.root.clone();
        let answer = known_trust(settings.verify.trust, self.trust_store().as_ref(), &root)
            .unwrap_or_else(|| {
                Err("the workspace is not trusted to run tests yet (generate a function once to answer)".into())
            });
        Some(self.context_with(root, settings, trust_known(answer)))
    }

    fn context_with(
        &self,
        root: PathBuf,
        settings: &Settings,
        trusted: TrustGate,
    ) -> VerifyContext {
        VerifyContext {
            root,
            cache_dir: self.options.cache_dir.clone(),
            settings: settings.verify.clone(),
            trusted,
        }
    }
}

/// A file URI's path, canonical where it exists.
pub(crate) fn uri_path(uri: &Uri) -> Option<PathBuf> {
    let p = uri.to_file_path()?.into_owned();
    Some(p.canonicalize().unwrap_or(p))
}

/// `path` relative to its workspace's root, else its file name.
pub(crate) fn rel_path(ws: Option<&Workspace>, path: &Path) -> String {
    ws.and_then(|w| w.rel_path(path)).unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// Workspace actors' reports, sent to the client.
struct ClientReporter {
    client: Client,
    progress: bool,
}

impl Reporter for ClientReporter {
    fn progress_begin(&self, root: &Path) -> Box<dyn ProgressSink> {
        if !self.progress {
            return Box::new(WorkDone::disabled());
        }
        let title = format!(
            "Indexing {}",
            root.file_name().map_or_else(
                || root.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        );
        Box::new(WorkDone::begin_detached(
            self.client.clone(),
            "index",
            title,
            ("scanning".to_string(), Some(0)),
        ))
    }

    fn show_warning(&self, message: String) {
        let c = self.client.clone();
        tokio::spawn(async move { c.show_message(MessageType::WARNING, message).await });
    }

    fn show_error(&self, message: String) {
        tracing::error!("{message}");
        let c = self.client.clone();
        tokio::spawn(async move { c.show_message(MessageType::ERROR, message).await });
    }

    fn log(&self, message: String) {
        tracing::info!("{message}");
        let c = self.client.clone();
        tokio::spawn(async move { c.log_message(MessageType::INFO, message).await });
    }
}
