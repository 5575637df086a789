//! Hybrid retrieval: BM25 over names/signatures/docstrings and vector similarity, fused by
//! reciprocal rank with a bonus for exact name matches; filters by language, kind, path prefix.

use std::collections::HashMap;

use codeforge_syntax::{Language, SymbolKind, split_identifier_words};
use serde::Serialize;

use crate::WorkspaceIndex;
use crate::store::{SymbolRow, sql_str};

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

pub(crate) fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((b, _)) => &s[..b],
        None => s,
    }
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
        let version = self.store().version();
        if let Some(hits) = self.search_cache.get(&key, version) {
            return Ok(hits);
        }
        let hits = self.search_uncached(q).await?;
        self.search_cache.put(key, version, hits.clone());
        Ok(hits)
    }

    /// [`Self::search`] without the cache (what the benchmark times).
    pub async fn search_uncached(&self, q: &SearchQuery) -> anyhow::Result<Vec<Hit>> {
        let text = q.text.trim();
        if text.is_empty() || q.k == 0 {
            return Ok(Vec::new());
        }
        let mut filters = Vec::new();
        if let Some(l) = &q.language {
            let lang = Language::from_name(l)
                .ok_or_else(|| anyhow::anyhow!("unknown language `{l}` (python, rust, java)"))?;
            filters.push(format!("language = {}", sql_str(lang.name())));
        }
        if let Some(k) = &q.kind {
            let kind = SymbolKind::from_name(k).ok_or_else(|| {
                let all: Vec<&str> = SymbolKind::ALL.iter().map(|k| k.name()).collect();
                anyhow::anyhow!("unknown kind `{k}` ({})", all.join(", "))
            })?;
            filters.push(format!("kind = {}", sql_str(kind.name())));
        }
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        let prefix = q.path_prefix.as_deref().map(|p| p.trim_start_matches("./"));
        // Over-fetch: the path filter and fusion work on more than k candidates.
        let fetch = (q.k * 4).max(40) + if prefix.is_some() { 200 } else { 0 };

        let lexical = self
            .store()
            .search_text(text, filter.as_deref(), fetch)
            .await;
        let semantic = match self.embedder() {
            Some(e) => {
                let v = e.embed(vec![text.to_string()]).await?;
                match v.first() {
                    Some(v) => Some(
                        self.store()
                            .search_vector(v, filter.as_deref(), fetch)
                            .await,
                    ),
                    None => None,
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
        let mut fused: HashMap<String, (SymbolRow, f32, Vec<&'static str>)> = HashMap::new();
        let keep = |r: &SymbolRow| prefix.is_none_or(|p| r.path.starts_with(p));
        // Reciprocal rank fusion: each list contributes 1 / (k + rank) to the rows it holds.
        for (list, label) in [(lexical, "lexical"), (semantic, "semantic")] {
            for (rank, (row, _)) in list.into_iter().filter(|(r, _)| keep(r)).enumerate() {
                let e = fused
                    .entry(row.id.clone())
                    .or_insert_with(|| (row, 0.0, Vec::new()));
                e.1 += 1.0 / (RRF_K + (rank + 1) as f32);
                e.2.push(label);
            }
        }
        let mut hits: Vec<Hit> = fused
            .into_values()
            .map(|(row, mut score, matched_by)| {
                // Exact identifier matches go first; all query words in the name come next.
                let name_lower = row.name.to_lowercase();
                if name_lower == query_lower || row.qualified_name.to_lowercase() == query_lower {
                    score += 0.05;
                } else if !query_words.is_empty() {
                    let name_words = split_identifier_words(&row.name);
                    if query_words.iter().all(|w| name_words.contains(w)) {
                        score += 0.02;
                    }
                }
                Hit {
                    doc: row
                        .docstring
                        .as_deref()
                        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
                        .map(|l| cut_chars(l, 200).to_string()),
                    name: row.name,
                    qualified_name: row.qualified_name,
                    kind: row.kind,
                    language: row.language,
                    path: row.path,
                    line: row.start_line + 1,
                    end_line: row.end_line + 1,
                    signature: row.signature,
                    score,
                    is_test: row.is_test,
                    matched_by,
                    start_byte: row.start_byte,
                    end_byte: row.end_byte,
                }
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
