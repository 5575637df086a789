//! The LanceDB edge: one database per workspace under the cache dir, a `symbols` table (text
//! fields, search text), a `vectors` table (a symbol's id, path, start byte, name and embedding,
//! appended as the embedding phase computes them) and a `files` table (content hash per file).
//! Vectors live apart so that embedding appends and never rewrites symbol rows: no merge against
//! the whole table per batch, no full-text index to rebuild, no scan of the vector column to find
//! what is missing. A file's rows are replaced in order (state, vectors, symbols, then the new
//! rows and the state last), so a crash leaves at worst a file that the next run re-parses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use futures::TryStreamExt;
use lancedb::arrow::arrow_array::cast::AsArray;
use lancedb::arrow::arrow_array::types::{Float32Type, Int64Type, UInt32Type, UInt64Type};
use lancedb::arrow::arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Int64Array, RecordBatch,
    RecordBatchIterator, StringArray, UInt32Array, UInt64Array,
};
use lancedb::arrow::arrow_schema::{DataType, Field, Schema, SchemaRef};
use lancedb::index::Index;
use lancedb::index::scalar::{FullTextSearchQuery, InvertedIndexParams};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::OptimizeAction;
use lancedb::{Connection, DistanceType, Table};
use serde::{Deserialize, Serialize};

/// Bump when the tables' layout or the meaning of a column changes: the index is rebuilt.
pub const SCHEMA_VERSION: u32 = 5;
const SYMBOLS: &str = "symbols";
const FILES: &str = "files";
const VECTORS: &str = "vectors";
const META_FILE: &str = "meta.json";
/// Held while an index is opened (created or rebuilt).
const OPEN_LOCK_FILE: &str = "open.lock";
/// Vector size used for the (empty) vector column when no embedder was ever configured.
const DEFAULT_DIMS: usize = 384;

/// A symbol as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolRow {
    pub id: String,
    pub path: String,
    pub language: String,
    pub kind: String,
    pub name: String,
    pub qualified_name: String,
    pub scope: String,
    pub signature: String,
    pub docstring: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
    pub start_byte: u64,
    pub end_byte: u64,
    /// Space-separated names the symbol calls or references.
    pub references: String,
    pub is_test: bool,
    pub file_hash: String,
    /// What full-text search sees: identifiers, their split words, signature, docstring.
    pub text: String,
    /// Kept in the `vectors` table; rows read from `symbols` have none.
    pub vector: Option<Vec<f32>>,
}

impl SymbolRow {
    /// The hash of the text this symbol's vector is computed from (see
    /// [`crate::embed::embedding_key`]).
    pub fn embedding_key(&self) -> String {
        crate::embed::embedding_key(
            &self.kind,
            &self.qualified_name,
            &self.signature,
            self.docstring.as_deref(),
        )
    }
}

/// What the index knows of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub path: String,
    pub hash: String,
    pub language: String,
    /// Size and mtime seen on disk; -1 when the content came from an unsaved editor buffer, so
    /// the next walk re-reads the file.
    pub size: i64,
    pub mtime_ns: i64,
    pub symbols: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    schema_version: u32,
    root: String,
    embedder_id: Option<String>,
    dims: usize,
    #[serde(default)]
    writes_since_optimize: u32,
}

pub struct Store {
    dir: PathBuf,
    #[allow(dead_code)]
    db: Connection,
    symbols: Table,
    vectors: Table,
    files: Table,
    meta: tokio::sync::Mutex<Meta>,
    dims: usize,
    /// Bumped by every write this process makes: cached search results older than it are stale.
    version: std::sync::atomic::AtomicU64,
}

/// Why the index was (re)created on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Existing,
    Created,
    Rebuilt(String),
}

fn symbols_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("language", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("qualified_name", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("signature", DataType::Utf8, false),
        Field::new("docstring", DataType::Utf8, true),
        Field::new("start_line", DataType::UInt32, false),
        Field::new("end_line", DataType::UInt32, false),
        Field::new("start_byte", DataType::UInt64, false),
        Field::new("end_byte", DataType::UInt64, false),
        Field::new("references", DataType::Utf8, false),
        Field::new("is_test", DataType::Boolean, false),
        Field::new("file_hash", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ]))
}

/// A symbol's vector, with what finds its symbol in the name layer (path, start byte, name) and
/// the hash of the text it was computed from ([`SymbolRow::embedding_key`]).
fn vectors_schema(dims: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("start_byte", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("text_hash", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                dims as i32,
            ),
            false,
        ),
    ]))
}

/// A vector as read back for the name layer.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVector {
    pub path: String,
    pub start_byte: u64,
    pub name: String,
    pub vector: Vec<f32>,
}

fn files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("hash", DataType::Utf8, false),
        Field::new("language", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("mtime_ns", DataType::Int64, false),
        Field::new("symbols", DataType::UInt32, false),
    ]))
}

/// What a search hit needs: no search text (it dominates a row's size).
const HIT_COLUMNS: &[&str] = &[
    "id",
    "path",
    "language",
    "kind",
    "name",
    "qualified_name",
    "scope",
    "signature",
    "docstring",
    "start_line",
    "end_line",
    "start_byte",
    "end_byte",
    "references",
    "is_test",
    "file_hash",
];

/// SQL string literal.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn path_in(paths: &[String]) -> String {
    let list: Vec<String> = paths.iter().map(|p| sql_str(p)).collect();
    format!("path IN ({})", list.join(", "))
}

/// The index directory of a workspace: `<cache>/indexes/<hash of the root path>`.
pub fn index_dir(cache_dir: &Path, root: &Path) -> PathBuf {
    let key = blake3::hash(root.to_string_lossy().as_bytes()).to_hex();
    cache_dir.join("indexes").join(&key.as_str()[..16])
}

impl Store {
    /// Opens (or creates, or rebuilds on schema/embedder mismatch) the index of `root`.
    /// `embedder`: id and dims of the embedder in use, if any.
    pub async fn open(
        cache_dir: &Path,
        root: &Path,
        embedder: Option<(&str, usize)>,
    ) -> anyhow::Result<(Store, OpenOutcome)> {
        let dir = index_dir(cache_dir, root);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // One open at a time per index, in this process and across processes (a client that
        // sends the root twice, two editors on one workspace): otherwise both find no index,
        // both create it, and the second fails with "Table 'symbols' already exists". Taken off
        // the async workers (it blocks); released when the open returns.
        let lock_path = dir.join(OPEN_LOCK_FILE);
        let _open_lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            f.lock()?;
            Ok(f)
        })
        .await
        .map_err(|e| anyhow!("waiting for the index lock: {e}"))?
        .with_context(|| format!("locking {}", dir.join(OPEN_LOCK_FILE).display()))?;
        let meta_path = dir.join(META_FILE);
        let old: Option<Meta> = std::fs::read_to_string(&meta_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let mismatch = match &old {
            None => Some(None),
            Some(m) if m.schema_version != SCHEMA_VERSION => Some(Some(format!(
                "index schema {} is not the current {SCHEMA_VERSION}",
                m.schema_version
            ))),
            Some(m) => match embedder {
                Some((id, dims)) if m.embedder_id.as_deref() != Some(id) || m.dims != dims => {
                    Some(Some(format!(
                        "embedding model changed ({} → {id})",
                        m.embedder_id.as_deref().unwrap_or("none")
                    )))
                }
                _ => None,
            },
        };
        let uri = dir.join("db");
        let uri_str = uri
            .to_str()
            .ok_or_else(|| anyhow!("cache path is not UTF-8"))?;
        let outcome = match mismatch {
            None => OpenOutcome::Existing,
            Some(reason) => {
                // Start from nothing: stale tables from an older layout are never reused.
                let _ = std::fs::remove_file(&meta_path);
                if uri.exists() {
                    std::fs::remove_dir_all(&uri)
                        .with_context(|| format!("removing {}", uri.display()))?;
                }
                match reason {
                    None => OpenOutcome::Created,
                    Some(r) => OpenOutcome::Rebuilt(r),
                }
            }
        };
        let dims = match (&outcome, embedder, &old) {
            (OpenOutcome::Existing, _, Some(m)) => m.dims,
            (_, Some((_, d)), _) => d,
            _ => DEFAULT_DIMS,
        };
        let db = lancedb::connect(uri_str)
            .execute()
            .await
            .with_context(|| format!("opening LanceDB at {uri_str}"))?;
        let names = db.table_names().execute().await?;
        let symbols = if names.iter().any(|n| n == SYMBOLS) {
            db.open_table(SYMBOLS).execute().await?
        } else {
            db.create_empty_table(SYMBOLS, symbols_schema())
                .execute()
                .await?
        };
        let vectors = if names.iter().any(|n| n == VECTORS) {
            db.open_table(VECTORS).execute().await?
        } else {
            db.create_empty_table(VECTORS, vectors_schema(dims))
                .execute()
                .await?
        };
        let files = if names.iter().any(|n| n == FILES) {
            db.open_table(FILES).execute().await?
        } else {
            db.create_empty_table(FILES, files_schema())
                .execute()
                .await?
        };
        let meta = match (&outcome, old) {
            (OpenOutcome::Existing, Some(m)) => m,
            _ => {
                let m = Meta {
                    schema_version: SCHEMA_VERSION,
                    root: root.to_string_lossy().into_owned(),
                    embedder_id: embedder.map(|(id, _)| id.to_string()),
                    dims,
                    writes_since_optimize: 0,
                };
                write_meta(&meta_path, &m)?;
                m
            }
        };
        Ok((
            Store {
                dir,
                db,
                symbols,
                vectors,
                files,
                meta: tokio::sync::Mutex::new(meta),
                dims,
                version: std::sync::atomic::AtomicU64::new(0),
            },
            outcome,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Has this index held vectors from `embedder_id`?
    pub async fn embedder_id(&self) -> Option<String> {
        self.meta.lock().await.embedder_id.clone()
    }

    pub async fn file_states(&self) -> anyhow::Result<HashMap<String, FileState>> {
        let batches: Vec<RecordBatch> = self.files.query().execute().await?.try_collect().await?;
        let mut out = HashMap::new();
        for b in &batches {
            let path = b.column_by_name("path").unwrap().as_string::<i32>();
            let hash = b.column_by_name("hash").unwrap().as_string::<i32>();
            let lang = b.column_by_name("language").unwrap().as_string::<i32>();
            let size = b
                .column_by_name("size")
                .unwrap()
                .as_primitive::<Int64Type>();
            let mtime = b
                .column_by_name("mtime_ns")
                .unwrap()
                .as_primitive::<Int64Type>();
            let syms = b
                .column_by_name("symbols")
                .unwrap()
                .as_primitive::<UInt32Type>();
            for i in 0..b.num_rows() {
                out.insert(
                    path.value(i).to_string(),
                    FileState {
                        path: path.value(i).to_string(),
                        hash: hash.value(i).to_string(),
                        language: lang.value(i).to_string(),
                        size: size.value(i),
                        mtime_ns: mtime.value(i),
                        symbols: syms.value(i),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Replaces all symbols of `paths` by `rows`, then records the files. Crash-safe by order:
    /// the files' states go first (a file without a state is re-parsed by the next run), then
    /// their old symbols, then the new symbols are appended and the states written last.
    /// Appends and deletes are cheap; a merge would join against the whole table.
    pub async fn replace_files(
        &self,
        paths: &[String],
        rows: Vec<SymbolRow>,
        states: Vec<FileState>,
    ) -> anyhow::Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        for chunk in paths.chunks(500) {
            let pred = path_in(chunk);
            self.files.delete(pred.as_str()).await?;
            self.vectors.delete(pred.as_str()).await?;
            self.symbols.delete(pred.as_str()).await?;
        }
        if !rows.is_empty() {
            self.symbols.add(symbols_batch(&rows)?).execute().await?;
            self.add_vectors(&rows).await?;
        }
        if !states.is_empty() {
            self.files.add(files_batch(&states)?).execute().await?;
        }
        self.note_write().await;
        Ok(())
    }

    /// Records file states without touching symbols (content unchanged).
    pub async fn upsert_states(&self, states: Vec<FileState>) -> anyhow::Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let batch = files_batch(&states)?;
        let schema = batch.schema();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let mut m = self.files.merge_insert(&["path"]);
        m.when_matched_update_all(None)
            .when_not_matched_insert_all();
        m.execute(Box::new(reader)).await?;
        Ok(())
    }

    /// Removes files and their symbols.
    pub async fn remove_files(&self, paths: &[String]) -> anyhow::Result<()> {
        for chunk in paths.chunks(500) {
            let pred = path_in(chunk);
            self.files.delete(pred.as_str()).await?;
            self.vectors.delete(pred.as_str()).await?;
            self.symbols.delete(pred.as_str()).await?;
        }
        if !paths.is_empty() {
            self.note_write().await;
        }
        Ok(())
    }

    /// Changes with every write made through this store.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn note_write(&self) {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut m = self.meta.lock().await;
        m.writes_since_optimize += 1;
    }

    /// Creates the full-text index if it is missing (new rows are searched unindexed until the
    /// next optimize), and compacts after many small writes.
    pub async fn maintain(&self, force: bool) -> anyhow::Result<()> {
        let indices = self.symbols.list_indices().await?;
        let has_fts = indices
            .iter()
            .any(|i| i.columns.iter().any(|c| c == "text"));
        let rows = self.symbols.count_rows(None).await?;
        if !has_fts && rows > 0 {
            let params = InvertedIndexParams::code()
                .split_identifiers(true)
                .stem(false)
                .remove_stop_words(false)
                .with_position(false);
            self.symbols
                .create_index(&["text"], Index::FTS(params))
                .replace(true)
                .execute()
                .await
                .context("creating the full-text index")?;
        }
        let mut meta = self.meta.lock().await;
        if force || meta.writes_since_optimize >= 32 {
            for table in [&self.symbols, &self.vectors, &self.files] {
                table.optimize(OptimizeAction::All).await?;
                table
                    .optimize(OptimizeAction::Prune {
                        older_than: Some(lancedb::table::Duration::seconds(0)),
                        delete_unverified: Some(false),
                        error_if_tagged_old_versions: Some(false),
                    })
                    .await?;
            }
            meta.writes_since_optimize = 0;
        }
        write_meta(&self.dir.join(META_FILE), &meta)?;
        Ok(())
    }

    /// Symbols that have no vector yet, a batch at a time: the ids that have one are read first
    /// (one column of the `vectors` table), then the symbols are scanned without their search
    /// text. Never all rows in memory at once.
    pub async fn rows_missing_vectors(
        &self,
    ) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<Vec<SymbolRow>>> + Send + use<>>
    {
        let mut have: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut ids = self
            .vectors
            .query()
            .select(Select::columns(&["id"]))
            .execute()
            .await?;
        while let Some(b) = ids.try_next().await? {
            let col = vector_column(&b, "id")?.as_string::<i32>();
            have.extend(col.iter().flatten().map(str::to_string));
        }
        let stream = self
            .symbols
            .query()
            .select(Select::columns(HIT_COLUMNS))
            .execute()
            .await?;
        let have = Arc::new(have);
        Ok(stream.map_err(anyhow::Error::from).and_then(move |b| {
            let have = have.clone();
            async move {
                let mut rows = rows_of(std::slice::from_ref(&b))?;
                rows.retain(|r| !have.contains(&r.id));
                Ok(rows)
            }
        }))
    }

    /// Appends the vectors of `rows` (those that have one). The caller holds the update order:
    /// the rows' symbols are stored and unchanged.
    pub async fn set_vectors(&self, rows: Vec<SymbolRow>) -> anyhow::Result<()> {
        if self.add_vectors(&rows).await? > 0 {
            self.note_write().await;
        }
        Ok(())
    }

    async fn add_vectors(&self, rows: &[SymbolRow]) -> anyhow::Result<usize> {
        let with: Vec<&SymbolRow> = rows
            .iter()
            .filter(|r| r.vector.as_ref().is_some_and(|v| v.len() == self.dims))
            .collect();
        if with.is_empty() {
            return Ok(0);
        }
        self.vectors
            .add(vectors_batch(&with, self.dims)?)
            .execute()
            .await?;
        Ok(with.len())
    }

    /// The stored vectors of `paths`' symbols by the hash of their embedding text.
    pub async fn vectors_by_text(
        &self,
        paths: &[String],
    ) -> anyhow::Result<HashMap<String, Vec<f32>>> {
        let mut out = HashMap::new();
        for chunk in paths.chunks(500) {
            let batches: Vec<RecordBatch> = self
                .vectors
                .query()
                .only_if(path_in(chunk))
                .select(Select::columns(&["text_hash", "vector"]))
                .execute()
                .await?
                .try_collect()
                .await?;
            for b in &batches {
                let keys = vector_column(b, "text_hash")?.as_string::<i32>();
                let v = vector_column(b, "vector")?.as_fixed_size_list();
                for i in 0..b.num_rows() {
                    let x = v.value(i);
                    out.insert(
                        keys.value(i).to_string(),
                        x.as_primitive::<Float32Type>().values().to_vec(),
                    );
                }
            }
        }
        Ok(out)
    }

    /// How many symbols have a vector.
    pub async fn count_vectors(&self) -> anyhow::Result<usize> {
        Ok(self.vectors.count_rows(None).await?)
    }

    pub async fn count_symbols(&self, filter: Option<&str>) -> anyhow::Result<usize> {
        Ok(self.symbols.count_rows(filter.map(str::to_string)).await?)
    }

    /// (language, kind) → count over all stored symbols.
    pub async fn symbol_counts(&self) -> anyhow::Result<HashMap<(String, String), usize>> {
        let batches: Vec<RecordBatch> = self
            .symbols
            .query()
            .select(Select::columns(&["language", "kind"]))
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut out = HashMap::new();
        for b in &batches {
            let l = b.column_by_name("language").unwrap().as_string::<i32>();
            let k = b.column_by_name("kind").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                *out.entry((l.value(i).to_string(), k.value(i).to_string()))
                    .or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// Full-text (BM25) search over the search text.
    pub async fn search_text(
        &self,
        query: &str,
        filter: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(SymbolRow, f32)>> {
        let fts = FullTextSearchQuery::new(query.to_string())
            .with_column("text".to_string())
            .map_err(|e| anyhow!("{e}"))?;
        let mut q = self
            .symbols
            .query()
            .full_text_search(fts)
            .select(Select::columns(HIT_COLUMNS))
            .limit(limit);
        if let Some(f) = filter {
            q = q.only_if(f);
        }
        let batches: Vec<RecordBatch> = q.execute().await?.try_collect().await?;
        scored_rows(&batches, "_score", 0.0)
    }

    /// Nearest neighbours by cosine distance among rows that have a vector (a brute-force scan of
    /// the `vectors` table; the name layer's copy answers once it is loaded). `filter` applies to
    /// the symbols, after the nearest `limit` (four times that with a filter) are taken.
    pub async fn search_vector(
        &self,
        vector: &[f32],
        filter: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(SymbolRow, f32)>> {
        let fetch = if filter.is_some() { limit * 4 } else { limit };
        let batches: Vec<RecordBatch> = self
            .vectors
            .query()
            .nearest_to(vector)?
            .distance_type(DistanceType::Cosine)
            .select(Select::columns(&["id"]))
            .limit(fetch)
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut ranked: Vec<(String, f32)> = Vec::new();
        for b in &batches {
            let ids = vector_column(b, "id")?.as_string::<i32>();
            let dist = b
                .column_by_name("_distance")
                .map(|c| c.as_primitive::<Float32Type>().clone());
            for i in 0..b.num_rows() {
                ranked.push((
                    ids.value(i).to_string(),
                    dist.as_ref().map_or(1.0, |d| d.value(i)),
                ));
            }
        }
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ranked.iter().map(|(id, _)| sql_str(id)).collect();
        let mut pred = format!("id IN ({})", list.join(", "));
        if let Some(f) = filter {
            pred = format!("({pred}) AND ({f})");
        }
        let batches: Vec<RecordBatch> = self
            .symbols
            .query()
            .select(Select::columns(HIT_COLUMNS))
            .only_if(pred)
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut by_id: HashMap<String, SymbolRow> = rows_of(&batches)?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(ranked
            .into_iter()
            .filter_map(|(id, d)| by_id.remove(&id).map(|r| (r, d)))
            .take(limit)
            .collect())
    }

    /// Every stored vector, a batch at a time (the name layer's load).
    pub async fn scan_vectors(
        &self,
    ) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<Vec<StoredVector>>> + Send + use<>>
    {
        let stream = self.vectors.query().execute().await?;
        Ok(stream
            .map_err(anyhow::Error::from)
            .and_then(|b| async move { vectors_from_batch(&b) }))
    }

    /// Every symbol, without its search text, a batch at a time (the name layer's load: never
    /// all rows in memory at once).
    pub async fn scan_rows(
        &self,
    ) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<Vec<SymbolRow>>> + Send + use<>>
    {
        let stream = self
            .symbols
            .query()
            .select(Select::columns(HIT_COLUMNS))
            .execute()
            .await?;
        Ok(stream
            .map_err(anyhow::Error::from)
            .and_then(|b| async move { rows_of(std::slice::from_ref(&b)) }))
    }

    /// All symbols of one file, in source order.
    pub async fn file_symbols(&self, path: &str) -> anyhow::Result<Vec<SymbolRow>> {
        let batches: Vec<RecordBatch> = self
            .symbols
            .query()
            .only_if(format!("path = {}", sql_str(path)))
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut out = rows_of(&batches)?;
        out.sort_by_key(|r| r.start_byte);
        Ok(out)
    }
}

/// The rows of `batches`, in order.
fn rows_of(batches: &[RecordBatch]) -> anyhow::Result<Vec<SymbolRow>> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(rows_from_batch(b)?);
    }
    Ok(out)
}

/// Rows with the value of a score column (`_score`, `_distance`), `missing` where absent.
fn scored_rows(
    batches: &[RecordBatch],
    column: &str,
    missing: f32,
) -> anyhow::Result<Vec<(SymbolRow, f32)>> {
    let mut out = Vec::new();
    for b in batches {
        let scores = b
            .column_by_name(column)
            .map(|c| c.as_primitive::<Float32Type>().clone());
        for (i, row) in rows_from_batch(b)?.into_iter().enumerate() {
            out.push((row, scores.as_ref().map_or(missing, |s| s.value(i))));
        }
    }
    Ok(out)
}

fn write_meta(path: &Path, meta: &Meta) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(meta)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn symbols_batch(rows: &[SymbolRow]) -> anyhow::Result<RecordBatch> {
    let s = |f: fn(&SymbolRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        s(|r| &r.id),
        s(|r| &r.path),
        s(|r| &r.language),
        s(|r| &r.kind),
        s(|r| &r.name),
        s(|r| &r.qualified_name),
        s(|r| &r.scope),
        s(|r| &r.signature),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.docstring.clone()).collect::<Vec<_>>(),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.start_line),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.end_line),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.start_byte),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.end_byte),
        )),
        s(|r| &r.references),
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.is_test).collect::<Vec<_>>(),
        )),
        s(|r| &r.file_hash),
        s(|r| &r.text),
    ];
    Ok(RecordBatch::try_new(symbols_schema(), columns)?)
}

/// `rows` all have a vector of `dims` values.
fn vectors_batch(rows: &[&SymbolRow], dims: usize) -> anyhow::Result<RecordBatch> {
    let values: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.vector.iter().flatten().copied())
        .collect();
    let vectors = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        dims as i32,
        Arc::new(lancedb::arrow::arrow_array::Float32Array::from(values)),
        None,
    )?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.path))),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.start_byte),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.name))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.embedding_key()),
        )),
        Arc::new(vectors),
    ];
    Ok(RecordBatch::try_new(vectors_schema(dims), columns)?)
}

/// Column `name` of a batch read from the `vectors` table.
fn vector_column<'a>(b: &'a RecordBatch, name: &str) -> anyhow::Result<&'a ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| anyhow!("column {name} missing from the vectors"))
}

fn vectors_from_batch(b: &RecordBatch) -> anyhow::Result<Vec<StoredVector>> {
    let col = |name: &str| vector_column(b, name);
    let path = col("path")?.as_string::<i32>().clone();
    let name = col("name")?.as_string::<i32>().clone();
    let sb = col("start_byte")?.as_primitive::<UInt64Type>().clone();
    let v = col("vector")?.as_fixed_size_list().clone();
    let values = v.values().as_primitive::<Float32Type>().clone();
    let dims = v.value_length() as usize;
    let offset = v.offset();
    Ok((0..b.num_rows())
        .map(|i| StoredVector {
            path: path.value(i).to_string(),
            start_byte: sb.value(i),
            name: name.value(i).to_string(),
            vector: values.values()[(offset + i) * dims..(offset + i + 1) * dims].to_vec(),
        })
        .collect())
}

fn files_batch(states: &[FileState]) -> anyhow::Result<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            states.iter().map(|s| &s.path),
        )),
        Arc::new(StringArray::from_iter_values(
            states.iter().map(|s| &s.hash),
        )),
        Arc::new(StringArray::from_iter_values(
            states.iter().map(|s| &s.language),
        )),
        Arc::new(Int64Array::from_iter_values(states.iter().map(|s| s.size))),
        Arc::new(Int64Array::from_iter_values(
            states.iter().map(|s| s.mtime_ns),
        )),
        Arc::new(UInt32Array::from_iter_values(
            states.iter().map(|s| s.symbols),
        )),
    ];
    Ok(RecordBatch::try_new(files_schema(), columns)?)
}

fn rows_from_batch(b: &RecordBatch) -> anyhow::Result<Vec<SymbolRow>> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| anyhow!("column {name} missing from the index"))
    };
    let st =
        |name: &str| -> anyhow::Result<StringArray> { Ok(col(name)?.as_string::<i32>().clone()) };
    let id = st("id")?;
    let path = st("path")?;
    let language = st("language")?;
    let kind = st("kind")?;
    let name = st("name")?;
    let qualified = st("qualified_name")?;
    let scope = st("scope")?;
    let signature = st("signature")?;
    let doc = st("docstring")?;
    let refs = st("references")?;
    let hash = st("file_hash")?;
    // `text` is left out of search projections.
    let text = b
        .column_by_name("text")
        .map(|c| c.as_string::<i32>().clone());
    let sl = col("start_line")?.as_primitive::<UInt32Type>().clone();
    let el = col("end_line")?.as_primitive::<UInt32Type>().clone();
    let sb = col("start_byte")?.as_primitive::<UInt64Type>().clone();
    let eb = col("end_byte")?.as_primitive::<UInt64Type>().clone();
    let is_test = col("is_test")?.as_boolean().clone();
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        out.push(SymbolRow {
            id: id.value(i).to_string(),
            path: path.value(i).to_string(),
            language: language.value(i).to_string(),
            kind: kind.value(i).to_string(),
            name: name.value(i).to_string(),
            qualified_name: qualified.value(i).to_string(),
            scope: scope.value(i).to_string(),
            signature: signature.value(i).to_string(),
            docstring: (!doc.is_null(i)).then(|| doc.value(i).to_string()),
            start_line: sl.value(i),
            end_line: el.value(i),
            start_byte: sb.value(i),
            end_byte: eb.value(i),
            references: refs.value(i).to_string(),
            is_test: is_test.value(i),
            file_hash: hash.value(i).to_string(),
            text: text
                .as_ref()
                .map_or_else(String::new, |t| t.value(i).to_string()),
            vector: None,
        });
    }
    Ok(out)
}
