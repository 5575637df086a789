//! Bringing the index up to date: diff the workspace against stored content hashes, re-parse only
//! changed files (in parallel), replace their rows per batch in one transaction, drop deleted
//! files, then fill in vectors while lexical search already serves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use codeforge_syntax::{Language, extract};
use serde::Serialize;

use crate::embed::embedding_text;
use crate::store::{FileState, SymbolRow};
use crate::walk::{self, Candidate, SkipReason, WalkOptions};
use crate::{CancelFlag, IndexError, WorkspaceIndex};

/// Files per write transaction.
const FILES_PER_BATCH: usize = 256;
/// Rows fetched per embedding round.
const EMBED_ROUND: usize = 512;
const MAX_LISTED_SKIPS: usize = 200;

/// What to bring up to date.
#[derive(Debug, Default, Clone)]
pub struct UpdateRequest {
    /// Unsaved editor buffers, by workspace-relative path: indexed instead of the disk content.
    pub overlays: HashMap<String, String>,
    /// Only these workspace-relative paths (a full walk still happens for paths the index does
    /// not know yet).
    pub only: Option<Vec<String>>,
    /// Skip the embedding pass (vectors are filled in by a later update).
    pub skip_embedding: bool,
}

/// Progress of an update, for progress bars and `$/progress`.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Scanning,
    Parsing {
        done: usize,
        total: usize,
    },
    /// `eta_s`: seconds left at the rate so far (`None` before the first batch is done).
    Embedding {
        done: usize,
        total: usize,
        eta_s: Option<u64>,
    },
    Finishing,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: &'static str,
}

/// The outcome of an update.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateSummary {
    pub root: String,
    pub index_dir: String,
    /// Files in the index now.
    pub files: usize,
    /// Symbols in the index now.
    pub symbols: usize,
    /// Symbols embedded by this run.
    pub embedded: usize,
    /// Symbols that have a vector now (counted on full walks only).
    pub vectors: Option<usize>,
    /// Files parsed by this run (changed or new).
    pub parsed: usize,
    /// Files found unchanged (not re-parsed).
    pub unchanged: usize,
    /// Files removed from the index by this run.
    pub removed: usize,
    /// Files with syntax errors (indexed as far as the parse allowed).
    pub parse_errors: usize,
    /// Reason → number of files skipped.
    pub skipped: BTreeMap<&'static str, usize>,
    pub skipped_files: Vec<SkippedFile>,
    /// Directories left out as vendored or build output.
    pub vendored_dirs: usize,
    /// Language → kind → symbols in the index (full walks only).
    pub by_language: BTreeMap<String, BTreeMap<String, usize>>,
    /// The embedding model in use, `disabled` or `unavailable`.
    pub embeddings: String,
    /// Why search is lexical only, if it is.
    pub lexical_only_reason: Option<String>,
    /// Why the index was rebuilt from scratch on open, if it was.
    pub rebuilt: Option<String>,
    pub elapsed_ms: u64,
}

enum FileOutcome {
    Parsed {
        rows: Vec<crate::store::SymbolRow>,
        state: FileState,
        had_errors: bool,
    },
    Unchanged(FileState),
    Skipped(SkipReason),
    Vanished,
}

impl WorkspaceIndex {
    /// Brings the index up to date with the workspace. Cancelling stops between batches and
    /// leaves a consistent index that the next update completes.
    pub async fn update(
        &self,
        req: UpdateRequest,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: &CancelFlag,
    ) -> Result<UpdateSummary, IndexError> {
        let mut cache = self.update_lock.lock().await;
        let started = Instant::now();
        progress(Progress::Scanning);
        let stored = match (cache.take(), &req.only) {
            (Some(states), Some(_)) => states,
            _ => self.store.file_states().await?,
        };
        // Restored below once the writes are known; an error leaves no cache (reload next time).
        let mut states_after = stored.clone();

        let languages: Vec<Language> = self
            .settings
            .index
            .languages
            .iter()
            .filter_map(|l| Language::from_name(l))
            .collect();
        let targeted = req.only.as_ref().filter(|paths| {
            paths
                .iter()
                .all(|p| stored.contains_key(p) || !self.root.join(p).exists())
        });
        let mut skipped: Vec<(String, SkipReason)> = Vec::new();
        let mut vendored_dirs = 0;
        let (candidates, walked_all) = if let Some(paths) = targeted {
            let mut c = Vec::new();
            for p in paths {
                let abs = self.root.join(p);
                let Some(language) = Language::from_path(&abs) else {
                    continue;
                };
                match std::fs::symlink_metadata(&abs) {
                    Ok(meta) if meta.is_file() => {
                        if meta.len() > self.settings.index.max_file_size {
                            skipped.push((p.clone(), SkipReason::TooLarge));
                            continue;
                        }
                        c.push(Candidate {
                            rel_path: p.clone(),
                            abs_path: abs,
                            language,
                            size: meta.len(),
                            mtime_ns: walk::mtime_ns(&meta),
                        })
                    }
                    _ => {}
                }
            }
            (c, false)
        } else {
            let root = self.root.clone();
            let max = self.settings.index.max_file_size;
            let exclude = self.settings.index.exclude.clone();
            let langs = languages.clone();
            let w = tokio::task::spawn_blocking(move || {
                walk::walk(
                    &root,
                    &WalkOptions {
                        max_file_size: max,
                        exclude: &exclude,
                        languages: &langs,
                    },
                )
            })
            .await??;
            skipped.extend(w.skipped);
            vendored_dirs = w.vendored_dirs;
            (w.candidates, true)
        };

        // Decide what must be read.
        let mut to_read: Vec<(Candidate, Option<String>)> = Vec::new();
        let mut unchanged = 0usize;
        let mut present: HashSet<String> = HashSet::new();
        for c in candidates {
            present.insert(c.rel_path.clone());
            let overlay = req.overlays.get(&c.rel_path).cloned();
            if overlay.is_none()
                && let Some(s) = stored.get(&c.rel_path)
                && s.size == c.size as i64
                && s.mtime_ns == c.mtime_ns
            {
                unchanged += 1;
                continue;
            }
            to_read.push((c, overlay));
        }

        // Removed: gone from disk (or now skipped/ignored) but still in the index.
        let mut removed: Vec<String> = if walked_all {
            stored
                .keys()
                .filter(|p| !present.contains(*p))
                .cloned()
                .collect()
        } else {
            req.only
                .iter()
                .flatten()
                .filter(|p| !present.contains(*p) && stored.contains_key(*p))
                .cloned()
                .collect()
        };

        // Parse changed files in batches, write each batch in one transaction.
        let total = to_read.len();
        let mut parsed = 0usize;
        let mut parse_errors = 0usize;
        let mut done = 0usize;
        progress(Progress::Parsing { done: 0, total });
        // Few files (an edit): embed before writing, so the rows land complete in one transaction.
        let embed_inline = !req.skip_embedding && self.embedder.is_some() && to_read.len() <= 16;
        let mut embedded_inline = 0usize;
        let mut pending = to_read;
        while !pending.is_empty() {
            if cancel.is_cancelled() {
                return Err(IndexError::Cancelled);
            }
            let rest = pending.split_off(pending.len().min(FILES_PER_BATCH));
            let batch = std::mem::replace(&mut pending, rest);
            let stored_hashes: HashMap<String, (String, u32)> = batch
                .iter()
                .filter_map(|(c, _)| {
                    stored
                        .get(&c.rel_path)
                        .map(|s| (c.rel_path.clone(), (s.hash.clone(), s.symbols)))
                })
                .collect();
            let n = batch.len();
            let outcomes =
                tokio::task::spawn_blocking(move || process_batch(batch, &stored_hashes)).await?;
            let mut paths = Vec::new();
            let mut rows = Vec::new();
            let mut states = Vec::new();
            let mut touched = Vec::new();
            for (path, outcome) in outcomes {
                match outcome {
                    FileOutcome::Parsed {
                        rows: r,
                        state,
                        had_errors,
                    } => {
                        parsed += 1;
                        parse_errors += had_errors as usize;
                        paths.push(path);
                        rows.extend(r);
                        states.push(state);
                    }
                    FileOutcome::Unchanged(state) => {
                        unchanged += 1;
                        touched.push(state);
                    }
                    FileOutcome::Skipped(reason) => {
                        if stored.contains_key(&path) {
                            removed.push(path.clone());
                        }
                        skipped.push((path, reason));
                    }
                    FileOutcome::Vanished => {
                        if stored.contains_key(&path) {
                            removed.push(path);
                        }
                    }
                }
            }
            if embed_inline && !rows.is_empty() {
                // An edit's symbols are searchable from the name layer at once; their vectors
                // follow, with the store's write, once embedded.
                if self.names_loaded() {
                    self.names_replace(&paths, &rows);
                    self.names_changes
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                // Symbols whose embedding text the edit left alone keep their vectors: only
                // what changed is embedded (typing in a large file re-embedded all of it).
                if self.embedder.is_some() {
                    let stored = self.store.vectors_by_text(&paths).await?;
                    if !stored.is_empty() {
                        for r in rows.iter_mut() {
                            if let Some(v) = stored.get(&r.embedding_key()) {
                                r.vector = Some(v.clone());
                            }
                        }
                    }
                }
                embedded_inline += self.embed_rows(&mut rows).await?;
            }
            for st in states.iter().chain(touched.iter()) {
                states_after.insert(st.path.clone(), st.clone());
            }
            let names_rows = self.names_loaded().then(|| rows.clone());
            self.store.replace_files(&paths, rows, states).await?;
            if let Some(r) = names_rows {
                self.names_replace(&paths, &r);
            }
            self.store.upsert_states(touched).await?;
            done += n;
            progress(Progress::Parsing { done, total });
        }
        removed.sort();
        removed.dedup();
        self.store.remove_files(&removed).await?;
        self.names_replace(&removed, &[]);
        for p in &removed {
            states_after.remove(p);
        }
        let files = states_after.len();
        *cache = Some(states_after);
        progress(Progress::Finishing);
        self.store.maintain(parsed > 2000).await?;
        if parsed > 1000 {
            // The parse batches and LanceDB's write buffers are freed: give them back.
            crate::memory::release_freed();
        }

        let embedded = if req.skip_embedding || (embed_inline && !walked_all) {
            embedded_inline
        } else {
            // Full walks also fill in vectors missing from earlier (lexical-only or cut) runs.
            embedded_inline + self.embed_missing(progress, cancel).await?
        };

        // Summary from what is stored now. The breakdowns scan the table: full walks only.
        let symbols = self.store.count_symbols(None).await?;
        let mut by_language: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut vectors = None;
        if walked_all {
            for ((lang, kind), n) in self.store.symbol_counts().await? {
                *by_language
                    .entry(lang)
                    .or_default()
                    .entry(kind)
                    .or_insert(0) += n;
            }
            vectors = Some(if self.embedder.is_some() {
                self.store.count_vectors().await?
            } else {
                0
            });
        }
        let mut skipped_counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (_, r) in &skipped {
            *skipped_counts.entry(r.as_str()).or_insert(0) += 1;
        }
        skipped.sort();
        let skipped_files = skipped
            .iter()
            .take(MAX_LISTED_SKIPS)
            .map(|(p, r)| SkippedFile {
                path: p.clone(),
                reason: r.as_str(),
            })
            .collect();
        Ok(UpdateSummary {
            root: self.root.display().to_string(),
            index_dir: self.store.dir().display().to_string(),
            files,
            symbols,
            embedded,
            vectors,
            parsed,
            unchanged,
            removed: removed.len(),
            parse_errors,
            skipped: skipped_counts,
            skipped_files,
            vendored_dirs,
            by_language,
            embeddings: self.embeddings_status.clone(),
            lexical_only_reason: self.lexical_only_reason.clone(),
            rebuilt: match &self.open_outcome {
                crate::OpenOutcome::Rebuilt(r) => Some(r.clone()),
                _ => None,
            },
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Computes vectors in place for the rows that have none. Returns how many were embedded.
    async fn embed_rows(&self, rows: &mut [SymbolRow]) -> anyhow::Result<usize> {
        let Some(embedder) = &self.embedder else {
            return Ok(0);
        };
        let mut todo: Vec<&mut SymbolRow> =
            rows.iter_mut().filter(|r| r.vector.is_none()).collect();
        let n = todo.len();
        let per_call = self.texts_per_call(n);
        for chunk in todo.chunks_mut(per_call) {
            let texts: Vec<String> = chunk
                .iter()
                .map(|r| {
                    embedding_text(
                        &r.kind,
                        &r.qualified_name,
                        &r.signature,
                        r.docstring.as_deref(),
                    )
                })
                .collect();
            let vectors = embedder.embed(texts).await?;
            for (r, v) in chunk.iter_mut().zip(vectors) {
                r.vector = Some(v);
            }
        }
        Ok(n)
    }

    /// Texts per embedder call: an HTTP endpoint gets `batch_size` per request; the local model
    /// takes all `n` in one call and batches them by token count itself (MiniLmOptions::bucket).
    fn texts_per_call(&self, n: usize) -> usize {
        match &self.settings.embeddings {
            codeforge_config::EmbeddingSettings::Openai { batch_size, .. } => (*batch_size).max(1),
            _ => n.max(1),
        }
    }

    /// Embeds every stored symbol that has no vector yet. Returns how many were embedded.
    async fn embed_missing(
        &self,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: &CancelFlag,
    ) -> Result<usize, IndexError> {
        if self.embedder.is_none() {
            return Ok(0);
        }
        // Both counts come from table metadata (no scan); the stream below decides by id.
        let total = self
            .store
            .count_symbols(None)
            .await?
            .saturating_sub(self.store.count_vectors().await?);
        if total == 0 {
            return Ok(0);
        }
        let mut done = 0usize;
        progress(Progress::Embedding {
            done,
            total,
            eta_s: None,
        });
        let started = std::time::Instant::now();
        // One pass over the symbols: rounds of EMBED_ROUND missing rows are embedded and appended
        // as the scan goes (the update lock keeps the table as scanned).
        let mut missing = std::pin::pin!(self.store.rows_missing_vectors().await?);
        let mut pending: Vec<SymbolRow> = Vec::new();
        loop {
            if cancel.is_cancelled() {
                return Err(IndexError::Cancelled);
            }
            let next = futures::TryStreamExt::try_next(&mut missing).await?;
            let finished = next.is_none();
            pending.extend(next.into_iter().flatten());
            while pending.len() >= EMBED_ROUND || (finished && !pending.is_empty()) {
                let rest = pending.split_off(pending.len().min(EMBED_ROUND));
                let mut rows = std::mem::replace(&mut pending, rest);
                // Embed short texts first: batches of similar length pad less.
                rows.sort_by_key(|r| {
                    r.signature.len() + r.docstring.as_ref().map_or(0, |d| d.len().min(300))
                });
                for chunk in rows.chunks_mut(EMBED_ROUND / 4) {
                    if cancel.is_cancelled() {
                        return Err(IndexError::Cancelled);
                    }
                    self.embed_rows(chunk).await?;
                }
                let n = rows.len();
                let names_rows = self.names_loaded().then(|| rows.clone());
                self.store.set_vectors(rows).await?;
                if let Some(r) = names_rows {
                    self.names_set_vectors(&r);
                }
                done += n;
                progress(Progress::Embedding {
                    done: done.min(total),
                    total,
                    eta_s: eta_s(done, total, started.elapsed()),
                });
            }
            if finished {
                break;
            }
        }
        self.store.maintain(false).await?;
        crate::memory::release_freed();
        Ok(done)
    }
}

/// Seconds left for `total` items after `done` took `elapsed`, at the same rate.
fn eta_s(done: usize, total: usize, elapsed: std::time::Duration) -> Option<u64> {
    if done == 0 {
        return None;
    }
    let left = total.saturating_sub(done) as f64;
    Some((elapsed.as_secs_f64() / done as f64 * left).round() as u64)
}

fn process_batch(
    batch: Vec<(Candidate, Option<String>)>,
    stored_hashes: &HashMap<String, (String, u32)>,
) -> Vec<(String, FileOutcome)> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    // Files are taken one at a time from a shared counter, not in fixed shares: one large file
    // no longer leaves the other threads idle at the end of a batch.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, String, FileOutcome)> = Vec::with_capacity(batch.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.min(batch.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((c, overlay)) = batch.get(i) else {
                            break;
                        };
                        let outcome =
                            process_file(c, overlay.as_deref(), stored_hashes.get(&c.rel_path));
                        mine.push((i, c.rel_path.clone(), outcome));
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().unwrap_or_default());
        }
    });
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, path, o)| (path, o)).collect()
}

fn process_file(
    c: &Candidate,
    overlay: Option<&str>,
    stored: Option<&(String, u32)>,
) -> FileOutcome {
    let disk;
    let (bytes, size, mtime) = match overlay {
        Some(text) => (text.as_bytes(), -1i64, 0i64),
        None => {
            disk = match std::fs::read(&c.abs_path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileOutcome::Vanished,
                Err(_) => return FileOutcome::Skipped(SkipReason::Unreadable),
            };
            (disk.as_slice(), disk.len() as i64, c.mtime_ns)
        }
    };
    let text = match walk::classify_content(bytes) {
        Ok(t) => t,
        Err(r) => return FileOutcome::Skipped(r),
    };
    let hash = blake3::hash(bytes).to_hex().to_string();
    let language = c.language.name().to_string();
    if let Some((stored_hash, stored_symbols)) = stored
        && *stored_hash == hash
    {
        return FileOutcome::Unchanged(FileState {
            path: c.rel_path.clone(),
            hash,
            language,
            size,
            mtime_ns: mtime,
            symbols: *stored_symbols,
        });
    }
    let extracted = extract(c.language, &c.rel_path, text);
    let rows: Vec<SymbolRow> = extracted
        .symbols
        .iter()
        .enumerate()
        .map(|(i, s)| symbol_row(s, i, &c.rel_path, &language, &hash))
        .collect();
    FileOutcome::Parsed {
        state: FileState {
            path: c.rel_path.clone(),
            hash,
            language,
            size,
            mtime_ns: mtime,
            symbols: rows.len() as u32,
        },
        rows,
        had_errors: extracted.has_errors,
    }
}

/// The stored row of symbol number `i` of a file at `rel_path` whose content hashes to `hash`
/// (at least 16 hex digits): its search text is its names, their words, signature and docstring.
pub fn symbol_row(
    s: &codeforge_syntax::Symbol,
    i: usize,
    rel_path: &str,
    language: &str,
    hash: &str,
) -> SymbolRow {
    SymbolRow {
        id: format!("{}:{}#{}", &hash[..16.min(hash.len())], rel_path, i),
        path: rel_path.to_string(),
        language: language.to_string(),
        kind: s.kind.name().to_string(),
        name: s.name.clone(),
        qualified_name: s.qualified_name.clone(),
        scope: s.scope.clone(),
        signature: s.signature.clone(),
        docstring: s.docstring.clone(),
        start_line: s.start_line as u32,
        end_line: s.end_line as u32,
        start_byte: s.start_byte as u64,
        end_byte: s.end_byte as u64,
        references: s.references.join(" "),
        is_test: s.is_test,
        file_hash: hash.to_string(),
        text: crate::text::search_text(
            &s.name,
            &s.qualified_name,
            &s.signature,
            s.docstring.as_deref(),
        ),
        vector: None,
    }
}

#[cfg(test)]
mod tests {
    use super::eta_s;
    use std::time::Duration;

    #[test]
    fn eta_follows_the_rate_so_far() {
        assert_eq!(eta_s(0, 100, Duration::from_secs(5)), None);
        assert_eq!(eta_s(50, 150, Duration::from_secs(10)), Some(20));
        assert_eq!(eta_s(150, 150, Duration::from_secs(10)), Some(0));
    }
}
