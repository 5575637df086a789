//! One workspace folder of the server: an actor task that owns its index and applies updates in
//! order (debounced), while requests read the index concurrently through a shared handle. Talks
//! to the client only through [`Reporter`]; must not reach the session or handlers.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeforge_config::{Layer, Settings};
use codeforge_index::{CancelFlag, Progress, UpdateRequest, WorkspaceIndex};
use tokio::sync::{mpsc, watch};

/// How long edits are collected before the index is updated.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Work for a workspace actor.
#[derive(Debug)]
pub enum Job {
    /// Walk everything (start, ignore files changed).
    Full,
    /// These workspace-relative paths changed (on disk, or as unsaved buffers in `overlays`).
    Files {
        paths: Vec<String>,
        overlays: HashMap<String, String>,
    },
    /// Settings changed: reopen the index with them, then walk everything.
    Reconfigure(Settings),
}

/// What the actor tells the server (the server owns the client).
pub trait Reporter: Send + Sync + 'static {
    fn progress_begin(&self, root: &Path) -> Box<dyn ProgressSink>;
    fn show_warning(&self, message: String);
    fn show_error(&self, message: String);
    fn log(&self, message: String);
}

pub trait ProgressSink: Send + Sync {
    fn report(&self, p: &Progress);
    fn end(&self, message: String);
}

/// A workspace folder as the server sees it.
pub struct Workspace {
    pub root: PathBuf,
    pub name: String,
    jobs: mpsc::UnboundedSender<Job>,
    index: watch::Receiver<Option<Arc<WorkspaceIndex>>>,
    cancel: Mutex<CancelFlag>,
    /// The workspace's `codeforge.toml` as it applies: without its restricted keys until the user
    /// approved the file's content (`codeforge_verify::trust::WorkspaceConfig::effective`). The
    /// settings the actor starts with are built from it, so the index never opens with a URL,
    /// key or model path the user did not approve.
    pub file_layer: Mutex<Option<Layer>>,
    /// Completion's repository context per function (precomputed on open/save).
    pub completion_contexts: Arc<codeforge_ide::CompletionContexts>,
}

impl Workspace {
    /// Starts the actor for `root`.
    pub fn start(
        root: PathBuf,
        name: String,
        cache_dir: PathBuf,
        settings: Settings,
        file_layer: Option<Layer>,
        reporter: Arc<dyn Reporter>,
    ) -> Arc<Workspace> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (index_tx, index_rx) = watch::channel(None);
        let ws = Arc::new(Workspace {
            root: root.clone(),
            name,
            jobs: tx,
            index: index_rx,
            cancel: Mutex::new(CancelFlag::new()),
            file_layer: Mutex::new(file_layer),
            completion_contexts: codeforge_ide::CompletionContexts::new(),
        });
        let weak = Arc::downgrade(&ws);
        tokio::spawn(async move {
            run_actor(root, cache_dir, settings, rx, index_tx, reporter, weak).await;
        });
        ws
    }

    pub fn submit(&self, job: Job) {
        if matches!(job, Job::Reconfigure(_)) {
            // A running update with old settings is pointless now.
            self.cancel.lock().unwrap().cancel();
        }
        let _ = self.jobs.send(job);
    }

    /// The index, once opened.
    pub fn index(&self) -> Option<Arc<WorkspaceIndex>> {
        self.index.borrow().clone()
    }

    /// `path` relative to the root (`None` outside it).
    pub fn rel_path(&self, path: &Path) -> Option<String> {
        codeforge_index::walk::rel_path(&self.root, path)
    }

    /// Stops the running update, if any.
    pub fn cancel(&self) {
        self.cancel.lock().unwrap().cancel();
    }

    fn fresh_cancel(&self) -> CancelFlag {
        let flag = CancelFlag::new();
        *self.cancel.lock().unwrap() = flag.clone();
        flag
    }

    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
    }
}

async fn run_actor(
    root: PathBuf,
    cache_dir: PathBuf,
    mut settings: Settings,
    mut rx: mpsc::UnboundedReceiver<Job>,
    index_tx: watch::Sender<Option<Arc<WorkspaceIndex>>>,
    reporter: Arc<dyn Reporter>,
    ws: std::sync::Weak<Workspace>,
) {
    let mut index: Option<Arc<WorkspaceIndex>> = None;
    let mut warned_lexical = false;
    let mut need_open = true;
    while let Some(first) = rx.recv().await {
        // Debounce: gather what arrives shortly after.
        let mut jobs = vec![first];
        tokio::time::sleep(DEBOUNCE).await;
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        let mut full = false;
        let mut paths: HashSet<String> = HashSet::new();
        let mut overlays: HashMap<String, String> = HashMap::new();
        for j in jobs {
            match j {
                Job::Full => full = true,
                Job::Files {
                    paths: p,
                    overlays: o,
                } => {
                    for path in p {
                        if !o.contains_key(&path) {
                            overlays.remove(&path);
                        }
                        paths.insert(path);
                    }
                    overlays.extend(o);
                }
                Job::Reconfigure(s) => {
                    if s != settings {
                        settings = s;
                        need_open = true;
                    }
                    full = true;
                }
            }
        }
        let Some(ws_handle) = ws.upgrade() else {
            return;
        };
        if need_open {
            // Drop the old handle first so its tables are released.
            index = None;
            let _ = index_tx.send(None);
            match WorkspaceIndex::open(&root, &cache_dir, settings.clone()).await {
                Ok(i) => {
                    let i = Arc::new(i);
                    if let Some(reason) = i.lexical_only_reason()
                        && !warned_lexical
                    {
                        warned_lexical = true;
                        reporter.show_warning(format!("CodeForge ({}): {reason}", root.display()));
                    }
                    if let codeforge_index::OpenOutcome::Rebuilt(why) = i.open_outcome() {
                        reporter.log(format!("index of {} rebuilt: {why}", root.display()));
                    }
                    index = Some(i.clone());
                    let _ = index_tx.send(Some(i));
                    need_open = false;
                    full = true;
                }
                Err(e) => {
                    reporter.show_error(format!(
                        "CodeForge could not open the index of {}: {e:#}",
                        root.display()
                    ));
                    continue;
                }
            }
        }
        let Some(idx) = index.clone() else { continue };
        let cancel = ws_handle.fresh_cancel();
        drop(ws_handle);
        let req = UpdateRequest {
            only: (!full).then(|| paths.into_iter().collect()),
            overlays,
            skip_embedding: false,
        };
        let sink = if full {
            Some(reporter.progress_begin(&root))
        } else {
            None
        };
        let sink_ref = sink.as_deref();
        let report = move |p: Progress| {
            if let Some(s) = sink_ref {
                s.report(&p);
            }
        };
        let result = idx.update(req, &report, &cancel).await;
        match result {
            Ok(summary) => {
                if full && !idx.names_loaded() {
                    // The name layer serves lexical search and structural context from memory;
                    // load it now rather than on the first request (3–4 s at 200k symbols).
                    let idx = idx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = idx.load_names().await {
                            tracing::warn!("loading the name layer: {e:#}");
                        }
                    });
                }
                if let Some(s) = &sink {
                    s.end(format!(
                        "{} files, {} symbols ({} embedded)",
                        summary.files,
                        summary.symbols,
                        summary.vectors.unwrap_or(0)
                    ));
                }
                reporter.log(format!(
                    "indexed {}: {} parsed, {} unchanged, {} removed, {} embedded in {} ms",
                    root.display(),
                    summary.parsed,
                    summary.unchanged,
                    summary.removed,
                    summary.embedded,
                    summary.elapsed_ms
                ));
            }
            Err(codeforge_index::IndexError::Cancelled) => {
                if let Some(s) = &sink {
                    s.end("cancelled".into());
                }
            }
            Err(e) => {
                if let Some(s) = &sink {
                    s.end("failed".into());
                }
                reporter.show_error(format!(
                    "CodeForge: indexing {} failed: {e:#}",
                    root.display()
                ));
            }
        }
    }
}
