//! The language server: thin LSP handlers over documents (mutated synchronously, in order) and
//! workspace actors (indexing in the background). Long work never runs inside a handler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use codeforge_config::{Layer, Settings, WORKSPACE_CONFIG_FILE};
use codeforge_index::{Progress, SearchQuery};
use codeforge_syntax::Language;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::line_index::{LineIndex, apply_change};
use crate::to_proto;
use crate::workspace::{Job, ProgressSink, Reporter, Workspace};

/// Options the binary hands the server.
#[derive(Clone)]
pub struct ServerOptions {
    pub cache_dir: PathBuf,
    /// A fixed model backend instead of the configured one (tests inject a scripted backend).
    pub backend: Option<codeforge_ide::BackendHandle>,
    /// Where per-workspace trust answers are remembered (default `<config dir>/codeforge/trust.json`).
    pub trust_file: Option<PathBuf>,
    /// The user's own settings file, applied before each workspace's `codeforge.toml`
    /// (default `<config dir>/codeforge/config.toml`).
    pub user_config: Option<PathBuf>,
}

impl ServerOptions {
    pub fn new(cache_dir: PathBuf) -> Self {
        ServerOptions {
            cache_dir,
            backend: None,
            trust_file: None,
            user_config: None,
        }
    }
}

/// An open document.
pub struct Document {
    pub text: String,
    pub version: i32,
    /// Changed since it was opened or saved (the index holds the buffer, not the disk).
    pub dirty: bool,
}

pub struct Backend {
    client: Client,
    options: ServerOptions,
    documents: Mutex<HashMap<Uri, Document>>,
    workspaces: RwLock<Vec<Arc<Workspace>>>,
    /// The user's own file and the editor's settings (shared with the approval question).
    layers: Arc<SharedLayers>,
    pending_errors: Mutex<Vec<String>>,
    caps: Mutex<ClientCaps>,
    /// Roots announced by `initialize`, started on `initialized`.
    pending_roots: Mutex<Vec<(PathBuf, String)>>,
    models: crate::generate::Models,
    completion: Arc<crate::complete::CompletionEngine>,
    /// Workspaces answered "Not now" in this session, and the trust question's own lock.
    pub(crate) trust: Arc<crate::trust::SessionTrust>,
}

#[derive(Default, Clone)]
struct ClientCaps {
    work_done_progress: bool,
    dynamic_watched_files: bool,
    code_action_resolve: bool,
    document_changes: bool,
}

struct ClientReporter {
    client: Client,
    progress: bool,
}

impl Reporter for ClientReporter {
    fn progress_begin(&self, root: &Path) -> Box<dyn ProgressSink> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<(String, u32)>>();
        let client = self.client.clone();
        let enabled = self.progress;
        let title = format!(
            "Indexing {}",
            root.file_name().map_or_else(
                || root.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        );
        tokio::spawn(async move {
            if !enabled {
                while rx.recv().await.is_some() {}
                return;
            }
            let token = progress_token("index");
            if client
                .create_work_done_progress(token.clone())
                .await
                .is_err()
            {
                while rx.recv().await.is_some() {}
                return;
            }
            let ongoing = client
                .progress(token, title)
                .with_percentage(0)
                .with_message("scanning")
                .begin()
                .await;
            let mut last: Option<(String, u32)> = None;
            while let Some(msg) = rx.recv().await {
                match msg {
                    Some((m, pct)) => {
                        if last.as_ref().is_some_and(|(lm, lp)| *lp == pct && *lm == m) {
                            continue;
                        }
                        ongoing.report_with_message(m.clone(), pct).await;
                        last = Some((m, pct));
                    }
                    None => break,
                }
            }
            let end = last.map(|(m, _)| m).unwrap_or_default();
            ongoing.finish_with_message(end).await;
        });
        Box::new(ClientProgress { tx })
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

struct ClientProgress {
    tx: tokio::sync::mpsc::UnboundedSender<Option<(String, u32)>>,
}

impl ProgressSink for ClientProgress {
    fn report(&self, p: &Progress) {
        let (msg, pct) = match p {
            Progress::Scanning => ("scanning".to_string(), 0),
            Progress::Parsing { done, total } => (
                format!("parsing {done}/{total} files"),
                (*done * 60 / (*total).max(1)) as u32,
            ),
            Progress::Embedding { done, total } => (
                format!("embedding {done}/{total} symbols"),
                60 + (*done * 39 / (*total).max(1)) as u32,
            ),
            Progress::Finishing => ("writing the index".to_string(), 60),
        };
        let _ = self.tx.send(Some((msg, pct)));
    }

    fn end(&self, message: String) {
        let _ = self.tx.send(Some((message, 100)));
        let _ = self.tx.send(None);
    }
}

impl Backend {
    pub fn new(client: Client, options: ServerOptions) -> Self {
        Backend {
            client,
            options,
            documents: Mutex::new(HashMap::new()),
            workspaces: RwLock::new(Vec::new()),
            layers: Default::default(),
            pending_errors: Mutex::new(Vec::new()),
            caps: Mutex::new(ClientCaps::default()),
            pending_roots: Mutex::new(Vec::new()),
            models: Default::default(),
            completion: Default::default(),
            trust: Default::default(),
        }
    }

    pub(crate) fn completion_engine(&self) -> &crate::complete::CompletionEngine {
        &self.completion
    }
    pub(crate) fn completion_engine_arc(&self) -> Arc<crate::complete::CompletionEngine> {
        self.completion.clone()
    }
    /// Model calls made for completions so far.
    pub fn completion_model_calls(&self) -> usize {
        self.completion
            .model_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn documents_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uri, Document>> {
        self.documents.lock().unwrap()
    }
    pub(crate) fn options(&self) -> &ServerOptions {
        &self.options
    }
    /// The generation backend for these settings (the fixed test backend when there is one).
    pub(crate) async fn model_for(
        &self,
        settings: &codeforge_config::Settings,
    ) -> Result<codeforge_ide::BackendHandle, String> {
        self.models
            .get(
                settings,
                &self.options().cache_dir,
                self.options().backend.as_ref(),
            )
            .await
    }
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
    pub(crate) fn client_supports_resolve(&self) -> bool {
        self.caps.lock().unwrap().code_action_resolve
    }
    pub(crate) fn client_supports_document_changes(&self) -> bool {
        self.caps.lock().unwrap().document_changes
    }
    pub(crate) fn client_supports_progress(&self) -> bool {
        self.caps.lock().unwrap().work_done_progress
    }
    pub(crate) async fn show_error(&self, message: String) {
        tracing::error!("{message}");
        self.client.show_message(MessageType::ERROR, message).await;
    }
    pub(crate) async fn show_warning(&self, message: String) {
        tracing::warn!("{message}");
        self.client
            .show_message(MessageType::WARNING, message)
            .await;
    }

    fn reporter(&self) -> Arc<dyn Reporter> {
        Arc::new(ClientReporter {
            client: self.client.clone(),
            progress: self.caps.lock().unwrap().work_done_progress,
        })
    }

    pub(crate) fn layers(&self) -> Arc<SharedLayers> {
        self.layers.clone()
    }

    /// (Re)reads the user's own settings file, `<config dir>/codeforge/config.toml`. Errors are
    /// queued for the user; the file is then left out.
    fn load_user_config(&self) {
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
                self.pending_errors
                    .lock()
                    .unwrap()
                    .push(format!("CodeForge: {e}; this file is ignored until fixed"));
                None
            }
        };
        *self.layers.user.lock().unwrap() = layer;
    }

    /// Settings for a workspace from its file layer and the other layers.
    pub(crate) fn settings_for(&self, file_layer: Option<&Layer>) -> (Settings, Option<String>) {
        self.layers.settings_for(file_layer)
    }

    fn add_workspace(&self, root: PathBuf, name: String) -> Option<Arc<Workspace>> {
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
            self.pending_errors.lock().unwrap().push(e);
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

    pub(crate) fn workspace_for(&self, path: &Path) -> Option<Arc<Workspace>> {
        self.workspaces
            .read()
            .unwrap()
            .iter()
            .filter(|w| w.contains(path))
            .max_by_key(|w| w.root.as_os_str().len())
            .cloned()
    }

    pub fn workspaces(&self) -> Vec<Arc<Workspace>> {
        self.workspaces.read().unwrap().clone()
    }

    async fn flush_errors(&self) {
        let errors: Vec<String> = std::mem::take(&mut *self.pending_errors.lock().unwrap());
        for e in errors {
            tracing::warn!("{e}");
            self.client.show_message(MessageType::ERROR, e).await;
        }
    }

    /// Sends a changed file to its workspace: the buffer if it is open and dirty, else disk.
    fn notify_file(&self, uri: &Uri) {
        let Some(path) = uri_path(uri) else { return };
        let Some(ws) = self.workspace_for(&path) else {
            return;
        };
        let Some(rel) = codeforge_index::walk::rel_path(&ws.root, &path) else {
            return;
        };
        let mut overlays = HashMap::new();
        if let Some(doc) = self.documents.lock().unwrap().get(uri)
            && doc.dirty
        {
            overlays.insert(rel.clone(), doc.text.clone());
        }
        ws.submit(Job::Files {
            paths: vec![rel],
            overlays,
        });
    }

    fn reconfigure_all(&self) {
        self.load_user_config();
        for ws in self.workspaces() {
            let layer = ws.file_layer.lock().unwrap().clone();
            let (settings, err) = self.settings_for(layer.as_ref());
            if let Some(e) = err {
                self.pending_errors.lock().unwrap().push(e);
            }
            ws.submit(Job::Reconfigure(settings));
        }
    }
}

/// The settings layers that are not a workspace's own: the user's file and the editor's two. All
/// come from the user (the editor's from its settings), so none of them is restricted.
#[derive(Default)]
pub(crate) struct SharedLayers {
    /// `(file name, layer)` of `<config dir>/codeforge/config.toml`.
    user: Mutex<Option<(String, Layer)>>,
    init: Mutex<Layer>,
    change: Mutex<Layer>,
}

impl SharedLayers {
    /// Settings for a workspace, layer over layer: defaults, the user's file, the workspace's
    /// `codeforge.toml` as it may apply (`file_layer`), `initializationOptions`,
    /// `workspace/didChangeConfiguration`. On a validation error the editor layers are dropped,
    /// then the workspace's, and the error is reported.
    pub(crate) fn settings_for(&self, file_layer: Option<&Layer>) -> (Settings, Option<String>) {
        let user = self.user.lock().unwrap().clone();
        let init = self.init.lock().unwrap().clone();
        let change = self.change.lock().unwrap().clone();
        let empty = Layer::default();
        let (user_name, user_layer) = user.as_ref().map_or(("", &empty), |(n, l)| (n.as_str(), l));
        let all = [
            (user_name, user_layer),
            (WORKSPACE_CONFIG_FILE, file_layer.unwrap_or(&empty)),
            ("initializationOptions", &init),
            ("workspace/didChangeConfiguration", &change),
        ];
        let first = |n: usize| codeforge_config::resolve(all[..n].iter().map(|(n, l)| (*n, *l)));
        match first(all.len()) {
            Ok(s) => (s, None),
            Err(e) => {
                let fallback = first(2).or_else(|_| first(1)).unwrap_or_default();
                (fallback, Some(format!("CodeForge: invalid settings: {e}")))
            }
        }
    }
}

/// Reads `<root>/codeforge.toml` with the user's approvals from `store` applied. Errors are
/// returned as messages for the user.
pub(crate) fn read_workspace_file(
    store: Option<&codeforge_verify::TrustStore>,
    root: &Path,
) -> (
    Option<codeforge_verify::trust::WorkspaceConfig>,
    Option<String>,
) {
    use codeforge_verify::trust::ConfigFileError;
    match codeforge_verify::trust::read_workspace_config(root, store) {
        Ok(c) => (c, None),
        Err(ConfigFileError::Invalid(e)) => (
            None,
            Some(format!("CodeForge: {e}; this file is ignored until fixed")),
        ),
        Err(e) => (None, Some(format!("CodeForge: {e}"))),
    }
}

/// Re-reads a workspace's `codeforge.toml` and reconfigures the workspace with it; returns the
/// file (whose ignored keys may need a question) and messages for the user.
pub(crate) fn reload_workspace(
    layers: &SharedLayers,
    store: Option<&codeforge_verify::TrustStore>,
    ws: &Workspace,
) -> (
    Option<codeforge_verify::trust::WorkspaceConfig>,
    Vec<String>,
) {
    let (config, file_err) = read_workspace_file(store, &ws.root);
    let layer = config.as_ref().map(|c| c.effective.clone());
    *ws.file_layer.lock().unwrap() = layer.clone();
    let (settings, err) = layers.settings_for(layer.as_ref());
    ws.submit(Job::Reconfigure(settings));
    (config, [file_err, err].into_iter().flatten().collect())
}

pub(crate) fn uri_path(uri: &Uri) -> Option<PathBuf> {
    let p = uri.to_file_path()?.into_owned();
    Some(p.canonicalize().unwrap_or(p))
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        {
            let mut caps = self.caps.lock().unwrap();
            caps.work_done_progress = params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false);
            caps.dynamic_watched_files = params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false);
            caps.code_action_resolve = params
                .capabilities
                .text_document
                .as_ref()
                .and_then(|t| t.code_action.as_ref())
                .and_then(|c| c.resolve_support.as_ref())
                .is_some_and(|r| r.properties.iter().any(|p| p == "edit"));
            caps.document_changes = params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false);
        }
        self.load_user_config();
        if let Some(opts) = &params.initialization_options {
            match codeforge_config::parse_json("initializationOptions", opts) {
                Ok(l) => *self.layers.init.lock().unwrap() = l,
                Err(e) => self
                    .pending_errors
                    .lock()
                    .unwrap()
                    .push(format!("CodeForge: {e}; these options are ignored")),
            }
        }
        let mut roots: Vec<(PathBuf, String)> = Vec::new();
        for f in params.workspace_folders.iter().flatten() {
            if let Some(p) = f.uri.to_file_path() {
                roots.push((p.into_owned(), f.name.clone()));
            }
        }
        #[allow(deprecated)]
        if roots.is_empty()
            && let Some(uri) = &params.root_uri
            && let Some(p) = uri.to_file_path()
        {
            let p = p.into_owned();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            roots.push((p, name));
        }
        // Workspaces start on `initialized`, when the client can take requests.
        *self.pending_roots.lock().unwrap() = roots;

        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(PositionEncodingKind::UTF16),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                        ..Default::default()
                    },
                )),
                document_symbol_provider: Some(OneOf::Left(true)),
                completion_provider: Some(CompletionOptions {
                    resolve_provider: Some(false),
                    trigger_characters: None,
                    ..Default::default()
                }),
                inline_completion_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![CodeActionKind::new(
                            crate::generate::GENERATE_KIND,
                        )]),
                        resolve_provider: Some(true),
                        work_done_progress_options: Default::default(),
                    },
                )),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: [
                        crate::generate::GENERATE_COMMAND,
                        crate::trust::REINDEX_COMMAND,
                        crate::trust::TRUST_COMMAND,
                        crate::trust::UNTRUST_COMMAND,
                    ]
                    .map(String::from)
                    .to_vec(),
                    work_done_progress_options: Default::default(),
                }),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                        supported: Some(true),
                        change_notifications: Some(OneOf::Left(true)),
                    }),
                    file_operations: None,
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "codeforge".to_string(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let roots = std::mem::take(&mut *self.pending_roots.lock().unwrap());
        for (root, name) in roots {
            if root.is_dir() {
                self.add_workspace(root, name);
            } else {
                self.pending_errors.lock().unwrap().push(format!(
                    "CodeForge: workspace folder {} does not exist",
                    root.display()
                ));
            }
        }
        self.flush_errors().await;
        let dynamic = self.caps.lock().unwrap().dynamic_watched_files;
        if dynamic {
            let watchers: Vec<FileSystemWatcher> = [
                "**/*.py",
                "**/*.pyi",
                "**/*.rs",
                "**/*.java",
                "**/.gitignore",
                "**/.codeforgeignore",
                "**/codeforge.toml",
            ]
            .iter()
            .map(|g| FileSystemWatcher {
                glob_pattern: GlobPattern::String(g.to_string()),
                kind: None,
            })
            .collect();
            let reg = Registration {
                id: "codeforge-watched-files".to_string(),
                method: "workspace/didChangeWatchedFiles".to_string(),
                register_options: serde_json::to_value(DidChangeWatchedFilesRegistrationOptions {
                    watchers,
                })
                .ok(),
            };
            if let Err(e) = self.client.register_capability(vec![reg]).await {
                tracing::warn!("registering file watchers failed: {e}");
            }
        }
    }

    async fn shutdown(&self) -> RpcResult<()> {
        for ws in self.workspaces() {
            ws.cancel();
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        self.documents.lock().unwrap().insert(
            doc.uri,
            Document {
                text: doc.text,
                version: doc.version,
                dirty: false,
            },
        );
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Applied before any await: edits are never reordered.
        let uri = params.text_document.uri;
        {
            let mut docs = self.documents.lock().unwrap();
            let Some(doc) = docs.get_mut(&uri) else {
                return;
            };
            for change in params.content_changes {
                let range = change.range.map(|r| {
                    (
                        (r.start.line, r.start.character),
                        (r.end.line, r.end.character),
                    )
                });
                apply_change(&mut doc.text, range, &change.text);
            }
            doc.version = params.text_document.version;
            doc.dirty = true;
        }
        self.notify_file(&uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let uri = params.text_document.uri;
        if let Some(doc) = self.documents.lock().unwrap().get_mut(&uri) {
            if let Some(text) = params.text {
                doc.text = text;
            }
            doc.dirty = false;
        }
        if let Some(path) = uri_path(&uri)
            && path.file_name().is_some_and(|n| n == WORKSPACE_CONFIG_FILE)
        {
            return;
        }
        self.notify_file(&uri);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        let was_dirty = self
            .documents
            .lock()
            .unwrap()
            .remove(&uri)
            .is_some_and(|d| d.dirty);
        if was_dirty {
            // Closed without saving: the index goes back to the disk content.
            self.notify_file(&uri);
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let mut per_ws: HashMap<PathBuf, (Arc<Workspace>, Vec<String>, bool, bool)> =
            HashMap::new();
        for change in params.changes {
            let Some(path) = change.uri.to_file_path().map(|p| p.into_owned()) else {
                continue;
            };
            let Some(ws) = self.workspace_for(&path) else {
                continue;
            };
            let entry = per_ws
                .entry(ws.root.clone())
                .or_insert_with(|| (ws.clone(), Vec::new(), false, false));
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            match name.as_deref() {
                Some(".gitignore") | Some(".codeforgeignore") => entry.2 = true,
                Some(WORKSPACE_CONFIG_FILE) if path.parent() == Some(ws.root.as_path()) => {
                    entry.3 = true
                }
                _ => {
                    if let Some(rel) = codeforge_index::walk::rel_path(&ws.root, &path) {
                        entry.1.push(rel);
                    }
                }
            }
        }
        for (_, (ws, paths, full, config)) in per_ws {
            if config {
                let (config, errors) =
                    reload_workspace(&self.layers, self.trust_store().as_ref(), &ws);
                self.pending_errors.lock().unwrap().extend(errors);
                if let Some(c) = config {
                    self.ask_config_approval(ws.clone(), c);
                }
            } else if full {
                ws.submit(Job::Full);
            } else if !paths.is_empty() {
                // Open dirty buffers win over disk content.
                let mut overlays = HashMap::new();
                let docs = self.documents.lock().unwrap();
                for (uri, doc) in docs.iter() {
                    if doc.dirty
                        && let Some(p) = uri_path(uri)
                        && let Some(rel) = codeforge_index::walk::rel_path(&ws.root, &p)
                        && paths.contains(&rel)
                    {
                        overlays.insert(rel, doc.text.clone());
                    }
                }
                drop(docs);
                ws.submit(Job::Files { paths, overlays });
            }
        }
        self.flush_errors().await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        match codeforge_config::parse_json("workspace/didChangeConfiguration", &params.settings) {
            Ok(layer) => {
                *self.layers.change.lock().unwrap() = layer;
                self.reconfigure_all();
            }
            Err(e) => self.pending_errors.lock().unwrap().push(format!(
                "CodeForge: {e}; the previous settings stay in effect"
            )),
        }
        self.flush_errors().await;
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        for removed in params.event.removed {
            if let Some(p) = uri_path(&removed.uri) {
                let mut list = self.workspaces.write().unwrap();
                list.retain(|w| {
                    if w.root == p {
                        w.cancel();
                        false
                    } else {
                        true
                    }
                });
            }
        }
        for added in params.event.added {
            if let Some(p) = added.uri.to_file_path() {
                self.add_workspace(p.into_owned(), added.name);
            }
        }
        self.flush_errors().await;
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> RpcResult<Option<DocumentSymbolResponse>> {
        let uri = params.text_document.uri;
        let Some(path) = uri_path(&uri) else {
            return Ok(None);
        };
        let Some(language) = Language::from_path(&path) else {
            return Ok(None);
        };
        let text = match self.documents.lock().unwrap().get(&uri) {
            Some(d) => Some(d.text.clone()),
            None => None,
        };
        let text = match text {
            Some(t) => t,
            None => match std::fs::read(&path) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => t,
                    Err(_) => return Ok(None),
                },
                Err(_) => return Ok(None),
            },
        };
        let rel = self
            .workspace_for(&path)
            .and_then(|ws| codeforge_index::walk::rel_path(&ws.root, &path))
            .unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        let symbols = tokio::task::spawn_blocking(move || {
            let extracted = codeforge_syntax::extract(language, &rel, &text);
            let index = LineIndex::new(&text);
            to_proto::document_symbols(&extracted.symbols, &text, &index)
        })
        .await
        .unwrap_or_default();
        Ok(Some(DocumentSymbolResponse::Nested(symbols)))
    }

    async fn completion(&self, params: CompletionParams) -> RpcResult<Option<CompletionResponse>> {
        self.ai_completion(params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> RpcResult<Option<CodeActionResponse>> {
        if let Some(only) = &params.context.only
            && !only
                .iter()
                .any(|k| crate::generate::GENERATE_KIND.starts_with(k.as_str()))
        {
            return Ok(None);
        }
        let actions = self.generate_code_actions(&params).await;
        Ok((!actions.is_empty()).then_some(actions))
    }

    async fn code_action_resolve(&self, action: CodeAction) -> RpcResult<CodeAction> {
        self.resolve_generate_action(action).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> RpcResult<Option<LSPAny>> {
        match params.command.as_str() {
            crate::generate::GENERATE_COMMAND => {
                return self.execute_generate_command(params.arguments).await;
            }
            crate::trust::REINDEX_COMMAND => return self.execute_reindex().await,
            crate::trust::TRUST_COMMAND => return self.execute_trust(params.arguments, true).await,
            crate::trust::UNTRUST_COMMAND => {
                return self.execute_trust(params.arguments, false).await;
            }
            _ => {}
        }
        Err(tower_lsp_server::jsonrpc::Error::invalid_params(format!(
            "unknown command `{}`",
            params.command
        )))
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> RpcResult<Option<WorkspaceSymbolResponse>> {
        let query = params.query.trim().to_string();
        if query.is_empty() {
            return Ok(Some(WorkspaceSymbolResponse::Flat(Vec::new())));
        }
        let mut all = Vec::new();
        for ws in self.workspaces() {
            let Some(index) = ws.index() else { continue };
            match index.search(&SearchQuery::new(query.clone(), 50)).await {
                Ok(hits) => all.extend(hits.into_iter().map(|h| (ws.root.clone(), h))),
                Err(e) => {
                    tracing::warn!("workspace/symbol in {}: {e:#}", ws.root.display());
                }
            }
        }
        all.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        all.truncate(100);
        let out = all
            .into_iter()
            .filter_map(|(root, hit)| to_proto::symbol_information(&root, &hit))
            .collect();
        Ok(Some(WorkspaceSymbolResponse::Flat(out)))
    }
}

/// A fresh `$/progress` token, `codeforge/<kind>/<nanoseconds>`.
pub(crate) fn progress_token(kind: &str) -> NumberOrString {
    NumberOrString::String(format!(
        "codeforge/{kind}/{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ))
}
