//! Repository context for completions: the structural context (see [`crate::structure`]) of the
//! function the cursor is in, the same ranking generation uses, computed once per function and
//! reused while the user types in it. Precomputed for every function of a file when the editor
//! opens or saves it ([`CompletionContexts::warm`]); a request for a function not computed yet
//! waits at most its deadline (the work goes on, for the next request), and an entry computed
//! before the index's last write is served at once and refreshed behind. Owns that cache; the
//! language server keeps one per workspace.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeforge_syntax::{CursorSyntax, ExtractedFile, Language, Symbol, extract};

use crate::context::{Retriever, retrieval_query};
use crate::related::Related;
use crate::structure::Around;

/// Related symbols kept per function (what a completion prompt can hold).
pub const COMPLETION_CONTEXT_K: usize = 6;
/// Functions remembered per workspace.
const SIZE: usize = 512;
/// Functions of one file precomputed on open/save.
const WARM_MAX: usize = 200;

/// One function's context: the workspace-relative path and the function's summary (doc comment,
/// signature, docstring: stable while the user types in its body).
type Key = (String, String);

struct Entry {
    key: Key,
    /// The index version the context was computed at.
    version: u64,
    items: Arc<Vec<Related>>,
}

/// The per-workspace cache of completion contexts.
#[derive(Default)]
pub struct CompletionContexts {
    entries: Mutex<VecDeque<Entry>>,
    /// Keys being computed (a second request joins nothing; it waits or goes without).
    pending: Mutex<HashSet<Key>>,
}

impl CompletionContexts {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lookup(&self, key: &Key) -> Option<(u64, Arc<Vec<Related>>)> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let pos = e.iter().position(|x| &x.key == key)?;
        let hit = e.remove(pos)?;
        let out = (hit.version, hit.items.clone());
        e.push_front(hit);
        Some(out)
    }

    fn put(&self, key: Key, version: u64, items: Arc<Vec<Related>>) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|x| x.key != key);
        e.push_front(Entry {
            key,
            version,
            items,
        });
        e.truncate(SIZE);
    }

    /// Marks `key` as being computed; false when it already is.
    fn claim(&self, key: &Key) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone())
    }

    /// Stores a claimed key's context and releases the claim.
    fn finish(&self, key: Key, version: u64, items: Arc<Vec<Related>>) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        self.put(key, version, items);
    }

    /// Functions with a context (for tests and logs).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts computing `key`'s context unless it is being computed already.
    fn spawn(
        self: &Arc<Self>,
        retriever: Arc<dyn Retriever>,
        key: Key,
        input: Owned,
    ) -> Option<tokio::task::JoinHandle<Arc<Vec<Related>>>> {
        if !self.claim(&key) {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move {
            let version = retriever.version();
            let items = Arc::new(
                compute(
                    retriever.as_ref(),
                    input.lang,
                    &input.rel_path,
                    &input.source,
                    input.offset,
                )
                .await,
            );
            me.finish(key, version, items.clone());
            items
        }))
    }

    /// The context of the function at `offset` whose summary is `summary`: the cached one (a
    /// stale one is refreshed behind), else the one computed within `deadline`, else `None` (the
    /// work goes on and the next request has it).
    #[allow(clippy::too_many_arguments)]
    pub async fn get(
        self: &Arc<Self>,
        retriever: Arc<dyn Retriever>,
        lang: Language,
        rel_path: &str,
        source: &str,
        offset: usize,
        summary: &str,
        deadline: Duration,
    ) -> Option<Arc<Vec<Related>>> {
        let key = (rel_path.to_string(), summary.to_string());
        let input = || Owned {
            lang,
            rel_path: rel_path.to_string(),
            source: source.to_string(),
            offset,
        };
        if let Some((version, items)) = self.lookup(&key) {
            if version != retriever.version() {
                self.spawn(retriever, key, input());
            }
            return Some(items);
        }
        let task = self.spawn(retriever, key, input())?;
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(items)) => Some(items),
            _ => None,
        }
    }

    /// Precomputes the context of every function of a file (at most [`WARM_MAX`]) not cached
    /// at the index's current version, one after another.
    pub async fn warm(
        self: &Arc<Self>,
        retriever: Arc<dyn Retriever>,
        lang: Language,
        rel_path: &str,
        source: &str,
    ) -> usize {
        let Some(syntax) = CursorSyntax::parse(lang, source) else {
            return 0;
        };
        let file = extract(lang, rel_path, source);
        let mut done = 0;
        for s in file
            .symbols
            .iter()
            .filter(|s| s.kind.is_callable() && s.end_line > s.start_line)
            .take(WARM_MAX)
        {
            // The summary a cursor at the end of the function's body gets.
            let offset = s.end_byte.min(source.len());
            let Some(f) = syntax.enclosing_function(source, offset) else {
                continue;
            };
            let key = (rel_path.to_string(), f.summary);
            if self
                .lookup(&key)
                .is_some_and(|(v, _)| v == retriever.version())
            {
                continue;
            }
            if !self.claim(&key) {
                continue;
            }
            let version = retriever.version();
            let items = compute_for(retriever.as_ref(), lang, rel_path, source, &file, s).await;
            self.finish(key, version, Arc::new(items));
            done += 1;
        }
        done
    }
}

struct Owned {
    lang: Language,
    rel_path: String,
    source: String,
    offset: usize,
}

/// The innermost callable of `file` whose definition holds `offset` and starts on an earlier
/// line (where [`CursorSyntax::enclosing_function`] looks).
fn target_at<'a>(file: &'a ExtractedFile, source: &str, offset: usize) -> Option<&'a Symbol> {
    let row = source[..offset.min(source.len())].matches('\n').count();
    file.symbols
        .iter()
        .filter(|s| s.kind.is_callable())
        .filter(|s| s.start_byte < offset && s.end_byte >= offset && s.start_line < row)
        .min_by_key(|s| s.end_byte - s.start_byte)
}

/// The structural context of the function at `offset`: other files' symbols only (the prompt
/// holds the file itself), no tests, never the function itself; at most
/// [`COMPLETION_CONTEXT_K`], best first. Empty when there is no function there or retrieval
/// fails (logged).
pub async fn compute(
    retriever: &dyn Retriever,
    lang: Language,
    rel_path: &str,
    source: &str,
    offset: usize,
) -> Vec<Related> {
    let file = extract(lang, rel_path, source);
    let Some(target) = target_at(&file, source, offset) else {
        return Vec::new();
    };
    compute_for(retriever, lang, rel_path, source, &file, target).await
}

/// [`compute`] for `target`, a symbol of `file` (the extraction of `source`).
async fn compute_for(
    retriever: &dyn Retriever,
    lang: Language,
    rel_path: &str,
    source: &str,
    file: &ExtractedFile,
    target: &Symbol,
) -> Vec<Related> {
    let k = COMPLETION_CONTEXT_K;
    let hits = match retriever.related(retrieval_query(target), k + 8).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("completion context for {rel_path}: {e}");
            return Vec::new();
        }
    };
    let at = Around {
        lang,
        rel_path,
        source,
        file,
        target,
    };
    let ranked = match retriever.structural(at, hits.clone(), k + 40).await {
        Some(r) => r,
        None => hits,
    };
    ranked
        .into_iter()
        .filter(|h| h.path != rel_path && !h.is_test)
        .filter(|h| h.qualified_name != target.qualified_name)
        .take(k)
        .collect()
}
