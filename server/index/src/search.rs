//! Hybrid retrieval: BM25 over names/signatures/docstrings and vector similarity, fused by
//! reciprocal rank with a bonus for exact name matches; filters by language, kind, path prefix.

use std::collections::HashMap;

use codeforge_syntax::{Language, SymbolKind, split_identifier_words};
use serde::Serialize;

use crate::WorkspaceIndex;
use crate::names::NameEntry;
use crate::store::{SymbolRow, sql_str};
use crate::text::doc_summary;

/// RRF constant (the usual 60).
const RRF_K: f32 = 60.0;

#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub text: String,
    pub k: usize,
    pub language: Option<String>,
    pub kind: Option<String>,
    pub path_prefix: Option<String>,
}

impl SearchQuery {
    pub fn new(text: impl Into<String>, k: usize) -> Self {
        SearchQuery {
            text: text.into(),
            k,
            language: None,
            kind: None,
            path_prefix: None,
        }
    }
}

/// One search result. `line` is 1-based.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub name: String,
    pub qualified_name: String,
    pub kind: String,
    pub language: String,
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub signature: String,
    pub doc: Option<String>,
    pub score: f32,
    pub is_test: bool,
    /// Which retrievers found it: `lexical`, `semantic`.
    pub matched_by: Vec<&'static str>,
    #[serde(skip)]
    pub start_byte: u64,
    #[serde(skip)]
    pub end_byte: u64,
}

/// The last answers of [`WorkspaceIndex::search`], valid until the index is written again (or
/// for [`SearchCache::TTL`], in case another process wrote it). Completion asks the same question
/// while the user types in one function; this answers it without LanceDB.
#[derive(Default)]
pub struct SearchCache {
    entries: std::sync::Mutex<std::collections::VecDeque<CacheEntry>>,
}

struct CacheEntry {
    key: String,
    version: u64,
    at: std::time::Instant,
    hits: Vec<Hit>,
}

impl SearchCache {
    const SIZE: usize = 64;
    const TTL: std::time::Duration = std::time::Duration::from_secs(30);

    fn get(&self, key: &str, version: u64) -> Option<Vec<Hit>> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|c| c.version == version && c.at.elapsed() < Self::TTL);
        e.iter().find(|c| c.key == key).map(|c| c.hits.clone())
    }

    fn put(&self, key: String, version: u64, hits: Vec<Hit>) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|c| c.key != key);
        e.push_front(CacheEntry {
            key,
            version,
            at: std::time::Instant::now(),
            hits,
        });
        e.truncate(Self::SIZE);
    }
}

impl WorkspaceIndex {
    /// Hybrid search. Works lexically when no embedder is available. Answers from the cache when
    /// the same query was answered since the last write.
    pub async fn search(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        let key = format!("{q:?}");
        let version = self.generation();
        if let Some(hits) = self.search_cache.get(&key, version) {
            return Ok(hits);
        }
        let hits = self.search_uncached(q).await?;
        self.search_cache.put(key, version, hits.clone());
        Ok(hits)
    }

    /// [`Self::search`] without the cache (what the benchmark times). Lexical search runs from
    /// the name layer when it is loaded (or can be loaded now, no update running), else from
    /// LanceDB's full-text index.
    pub async fn search_uncached(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        let in_memory = self.try_load_names().await.unwrap_or_else(|e| {
            tracing::warn!("loading the name layer: {e:#}");
            false
        });
        self.search_with(q, in_memory).await
    }

    /// [`Self::search_uncached`] with lexical search from LanceDB's full-text index even when the
    /// name layer is loaded (the benchmark's comparison).
    pub async fn search_store_only(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        self.search_with(q, false).await
    }

    async fn search_with(&self, q: &SearchQuery, in_memory: bool) -> anyhow::Result<Vec<Hit>> {
        let text = q.text.trim();
        if text.is_empty() || q.k == 0 {
            return Ok(Vec::new());
        }
        let language = match &q.language {
            Some(l) => Some(
                Language::from_name(l)
                    .ok_or_else(|| anyhow::anyhow!("unknown language `{l}` (python, rust, java)"))?
                    .name(),
            ),
            None => None,
        };
        let kind = match &q.kind {
            Some(k) => Some(
                SymbolKind::from_name(k)
                    .ok_or_else(|| {
                        let all: Vec<&str> = SymbolKind::ALL.iter().map(|k| k.name()).collect();
                        anyhow::anyhow!("unknown kind `{k}` ({})", all.join(", "))
                    })?
                    .name(),
            ),
            None => None,
        };
        let mut filters = Vec::new();
        if let Some(l) = language {
            filters.push(format!("language = {}", sql_str(l)));
        }
        if let Some(k) = kind {
            filters.push(format!("kind = {}", sql_str(k)));
        }
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        let prefix = q.path_prefix.as_deref().map(|p| p.trim_start_matches("./"));
        // Over-fetch: fusion works on more than k candidates (and LanceDB's list on more than
        // the path filter keeps).
        let fetch = (q.k * 4).max(40);
        let store_fetch = fetch + if prefix.is_some() { 200 } else { 0 };
        let keep = |path: &str| prefix.is_none_or(|p| path.starts_with(p));

        // The name layer's filter, only when one is asked for (it costs a lookup per symbol).
        let accept = |e: &NameEntry| {
            language.is_none_or(|l| e.language == l)
                && kind.is_none_or(|k| e.kind == k)
                && keep(&e.path)
        };
        let filtered = language.is_some() || kind.is_some() || prefix.is_some();
        // Sync: it lives across the awaits below, in a future that must be Send.
        let accept = filtered.then_some(&accept as &(dyn Fn(&NameEntry) -> bool + Sync));
        let accept = || accept.map(|a| a as &dyn Fn(&NameEntry) -> bool);

        let from_names = if in_memory {
            self.with_names(|t| {
                t.search(text, fetch, accept())
                    .into_iter()
                    .map(|(e, _)| hit_of_entry(e))
                    .collect::<Vec<Hit>>()
            })
        } else {
            None
        };
        let lexical = match from_names {
            Some(hits) => Ok(hits),
            None => self
                .store()
                .search_text(text, filter.as_deref(), store_fetch)
                .await
                .map(|rows| rows.into_iter().map(|(r, _)| hit_of_row(r)).collect()),
        };
        let semantic = match self.embedder() {
            Some(e) => {
                let v = e.embed(vec![text.to_string()]).await?;
                // From the name layer's vectors when it holds them (the same cosine ranking,
                // on 8-bit copies), else LanceDB's vector query.
                let from_memory = match v.first() {
                    Some(v) if in_memory => self
                        .with_names(|t| {
                            (t.vector_count() > 0).then(|| {
                                t.nearest(v, fetch, accept())
                                    .into_iter()
                                    .map(|(e, _)| hit_of_entry(e))
                                    .collect::<Vec<Hit>>()
                            })
                        })
                        .flatten(),
                    _ => None,
                };
                match (from_memory, v.first()) {
                    (Some(hits), _) => Some(Ok(hits)),
                    (None, Some(v)) => Some(
                        self.store()
                            .search_vector(v, filter.as_deref(), store_fetch)
                            .await
                            .map(|rows| {
                                rows.into_iter()
                                    .map(|(r, _)| hit_of_row(r))
                                    .collect::<Vec<Hit>>()
                            }),
                    ),
                    (None, None) => None,
                }
            }
            None => None,
        };
        let (lexical, lexical_err) = match lexical {
            Ok(l) => (l, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let semantic = match semantic {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                if let Some(le) = lexical_err {
                    return Err(le.context(format!("vector search also failed: {e:#}")));
                }
                tracing::warn!("vector search failed: {e:#}");
                Vec::new()
            }
            None => {
                if let Some(le) = lexical_err {
                    // An empty index has no full-text index yet: nothing to find.
                    if self.store().count_symbols(None).await.unwrap_or(0) == 0 {
                        return Ok(Vec::new());
                    }
                    return Err(le);
                }
                Vec::new()
            }
        };

        let query_words = split_identifier_words(text);
        let query_lower = text.to_lowercase();
        let mut fused: HashMap<(String, u64), Hit> = HashMap::new();
        // Reciprocal rank fusion: each list contributes 1 / (k + rank) to the symbols it holds.
        for (list, label) in [(lexical, "lexical"), (semantic, "semantic")] {
            for (rank, hit) in list.into_iter().filter(|h| keep(&h.path)).enumerate() {
                let e = fused
                    .entry((hit.path.clone(), hit.start_byte))
                    .or_insert(hit);
                e.score += 1.0 / (RRF_K + (rank + 1) as f32);
                e.matched_by.push(label);
            }
        }
        let mut hits: Vec<Hit> = fused
            .into_values()
            .map(|mut hit| {
                // Exact identifier matches go first; all query words in the name come next.
                let name_lower = hit.name.to_lowercase();
                if name_lower == query_lower || hit.qualified_name.to_lowercase() == query_lower {
                    hit.score += 0.05;
                } else if !query_words.is_empty() {
                    let name_words = split_identifier_words(&hit.name);
                    if query_words.iter().all(|w| name_words.contains(w)) {
                        hit.score += 0.02;
                    }
                }
                hit
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.line.cmp(&b.line))
        });
        hits.truncate(q.k);
        Ok(hits)
    }
}

/// A stored row as a hit, not yet scored.
fn hit_of_row(row: SymbolRow) -> Hit {
    Hit {
        doc: doc_summary(row.docstring.as_deref()),
        name: row.name,
        qualified_name: row.qualified_name,
        kind: row.kind,
        language: row.language,
        path: row.path,
        line: row.start_line + 1,
        end_line: row.end_line + 1,
        signature: row.signature,
        score: 0.0,
        is_test: row.is_test,
        matched_by: Vec::new(),
        start_byte: row.start_byte,
        end_byte: row.end_byte,
    }
}

/// A name-layer entry as a hit, not yet scored.
fn hit_of_entry(e: &NameEntry) -> Hit {
    Hit {
        name: e.name.clone(),
        qualified_name: e.qualified_name.clone(),
        kind: e.kind.to_string(),
        language: e.language.to_string(),
        path: e.path.to_string(),
        line: e.line,
        end_line: e.end_line,
        signature: e.signature.clone(),
        doc: e.doc.clone(),
        score: 0.0,
        is_test: e.is_test,
        matched_by: Vec::new(),
        start_byte: e.start_byte,
        end_byte: e.end_byte,
    }
}
