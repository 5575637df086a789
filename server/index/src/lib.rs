//! The repository index of one workspace: walks it (ignore rules, secrets refused), extracts
//! symbols, stores them in LanceDB outside the workspace, embeds them, and answers hybrid
//! (BM25 + vector) searches. Never writes inside the workspace.

pub mod embed;
mod indexer;
pub mod lexical;
mod memory;
pub mod names;
mod search;
pub mod store;
mod text;
pub mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use codeforge_config::Settings;

pub use embed::{Embedder, EmbedderChoice, MiniLm, MiniLmOptions, load_embedder};
pub use indexer::{Progress, UpdateRequest, UpdateSummary, symbol_row};
pub use names::{NameEntry, NameTable};
pub use search::{Hit, SearchQuery};
pub use store::{OpenOutcome, Store, index_dir};

/// Cooperative cancellation, checked between batches.
#[derive(Clone, Default, Debug)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why an update stopped: cancelled (not a failure: the next update completes it), or failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<tokio::task::JoinError> for IndexError {
    fn from(e: tokio::task::JoinError) -> Self {
        IndexError::Failed(anyhow::anyhow!("indexing task failed: {e}"))
    }
}

/// The index of one workspace root.
pub struct WorkspaceIndex {
    root: PathBuf,
    settings: Settings,
    store: Store,
    embedder: Option<Arc<dyn Embedder>>,
    embeddings_status: String,
    lexical_only_reason: Option<String>,
    open_outcome: OpenOutcome,
    /// Serialises updates: writes are ordered, reads (searches) run beside them. Holds the file
    /// states as last written, so one-file updates need not rescan the `files` table (reloaded
    /// from the store on every full walk).
    update_lock: tokio::sync::Mutex<Option<std::collections::HashMap<String, store::FileState>>>,
    /// Recent search results (see [`search::SearchCache`]).
    search_cache: search::SearchCache,
    /// The name layer ([`NameTable`]): `None` until first asked for, then kept in step with
    /// every write (under `update_lock`).
    names: std::sync::RwLock<Option<NameTable>>,
    /// Changes with every change of the name layer that the store has not seen yet (an edit's
    /// symbols, searchable before their vectors are written): see [`Self::generation`].
    names_changes: std::sync::atomic::AtomicU64,
}

impl WorkspaceIndex {
    /// Opens the index of `root`, loading the configured embedder. A missing embedding model is
    /// not an error: the index works lexically and [`Self::lexical_only_reason`] says why.
    pub async fn open(root: &Path, cache_dir: &Path, settings: Settings) -> anyhow::Result<Self> {
        let choice = load_embedder(&settings.embeddings, cache_dir).await;
        Self::open_with(root, cache_dir, settings, choice).await
    }

    /// Opens with an embedder chosen by the caller (tests, or sharing one model between roots).
    pub async fn open_with(
        root: &Path,
        cache_dir: &Path,
        settings: Settings,
        choice: EmbedderChoice,
    ) -> anyhow::Result<Self> {
        let root = root
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("workspace {}: {e}", root.display()))?;
        if !root.is_dir() {
            anyhow::bail!("workspace {} is not a directory", root.display());
        }
        let (embedder, status, reason) = match choice {
            EmbedderChoice::Ready(e) => {
                let id = e.id().to_string();
                (Some(e), id, None)
            }
            EmbedderChoice::Disabled => (
                None,
                "disabled".to_string(),
                Some("embeddings are disabled in the configuration; search is lexical only".into()),
            ),
            EmbedderChoice::Unavailable(why) => (None, "unavailable".to_string(), Some(why)),
        };
        let cache_dir = cache_dir.to_path_buf();
        if cache_dir.starts_with(&root) {
            anyhow::bail!(
                "the cache dir {} is inside the workspace {}; CodeForge never writes into a \
                 workspace. Set CODEFORGE_CACHE_DIR elsewhere",
                cache_dir.display(),
                root.display()
            );
        }
        let (store, open_outcome) = Store::open(
            &cache_dir,
            &root,
            embedder.as_ref().map(|e| (e.id(), e.dims())),
        )
        .await?;
        Ok(WorkspaceIndex {
            root,
            settings,
            store,
            embedder,
            embeddings_status: status,
            lexical_only_reason: reason,
            open_outcome,
            update_lock: tokio::sync::Mutex::new(None),
            search_cache: Default::default(),
            names: std::sync::RwLock::new(None),
            names_changes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Answers `f` from the name layer, or `None` while it is not loaded ([`Self::load_names`]).
    /// Holds a read lock for the call: keep `f` short and synchronous.
    pub fn with_names<R>(&self, f: impl FnOnce(&NameTable) -> R) -> Option<R> {
        let g = self.names.read().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(f)
    }

    /// Loads the name layer from the store if it is not loaded yet. Waits for a running update
    /// (the layer must match what is written).
    pub async fn load_names(&self) -> anyhow::Result<()> {
        if self.names_loaded() {
            return Ok(());
        }
        let _order = self.update_lock.lock().await;
        self.load_names_locked().await
    }

    /// Like [`Self::load_names`], but answers `false` at once while an update runs (a cold
    /// index can take minutes) instead of waiting for it.
    pub async fn try_load_names(&self) -> anyhow::Result<bool> {
        if self.names_loaded() {
            return Ok(true);
        }
        let Ok(_order) = self.update_lock.try_lock() else {
            return Ok(false);
        };
        self.load_names_locked().await?;
        Ok(true)
    }

    /// Called under `update_lock`.
    async fn load_names_locked(&self) -> anyhow::Result<()> {
        if self.names_loaded() {
            return Ok(());
        }
        // Batches stream to a blocking thread that builds the table as they come.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<store::SymbolRow>>(4);
        let build = tokio::task::spawn_blocking(move || {
            let mut b = names::NameTableBuilder::default();
            while let Some(rows) = rx.blocking_recv() {
                rows.iter().for_each(|r| b.add(r));
            }
            b.finish()
        });
        let scanned: anyhow::Result<()> = async {
            let mut rows = std::pin::pin!(self.store.scan_rows().await?);
            while let Some(batch) = futures::TryStreamExt::try_next(&mut rows).await? {
                if tx.send(batch).await.is_err() {
                    anyhow::bail!("the name layer's builder stopped");
                }
            }
            Ok(())
        }
        .await;
        drop(tx);
        let mut table = build.await?;
        scanned?;
        // Then the vectors, a batch at a time, onto the symbols they belong to.
        if self.embedder.is_some() {
            let mut vectors = std::pin::pin!(self.store.scan_vectors().await?);
            while let Some(batch) = futures::TryStreamExt::try_next(&mut vectors).await? {
                for v in batch {
                    table.set_vector(&v.path, v.start_byte, &v.name, &v.vector);
                }
            }
        }
        *self.names.write().unwrap_or_else(|p| p.into_inner()) = Some(table);
        // The scan's batches are freed: give them back.
        memory::release_freed();
        Ok(())
    }

    /// Changes whenever what a search can find changes: every write to the store, and every
    /// change of the name layer ahead of one. Caches of search answers key on it.
    pub fn generation(&self) -> u64 {
        self.store.version() + self.names_changes.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn names_loaded(&self) -> bool {
        self.names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Keeps a loaded name layer in step with a write (called under `update_lock`).
    fn names_replace(&self, paths: &[String], rows: &[store::SymbolRow]) {
        let mut g = self.names.write().unwrap_or_else(|p| p.into_inner());
        let Some(t) = g.as_mut() else { return };
        let mut by_path: std::collections::HashMap<&str, Vec<&store::SymbolRow>> =
            paths.iter().map(|p| (p.as_str(), Vec::new())).collect();
        for r in rows {
            by_path.entry(r.path.as_str()).or_default().push(r);
        }
        for (p, rows) in by_path {
            t.replace_file(p, rows);
        }
    }

    /// Gives a loaded name layer the vectors just written for `rows` (called under
    /// `update_lock`).
    fn names_set_vectors(&self, rows: &[store::SymbolRow]) {
        let mut g = self.names.write().unwrap_or_else(|p| p.into_inner());
        let Some(t) = g.as_mut() else { return };
        for r in rows {
            if let Some(v) = &r.vector {
                t.set_vector(&r.path, r.start_byte, &r.name, v);
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// Why search is lexical only, if it is.
    pub fn lexical_only_reason(&self) -> Option<&str> {
        self.lexical_only_reason.as_deref()
    }

    pub fn open_outcome(&self) -> &OpenOutcome {
        &self.open_outcome
    }
}
