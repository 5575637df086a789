//! The LanceDB edge: one database per workspace under the cache dir, a `symbols` table (text
//! fields, search text, optional vector) and a `files` table (content hash per file). Every write
//! that replaces a file's symbols is one transaction; the `files` row is written after it, so a
//! crash leaves at worst a file that the next run re-parses.

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
pub const SCHEMA_VERSION: u32 = 3;
const SYMBOLS: &str = "symbols";
const FILES: &str = "files";
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
    pub vector: Option<Vec<f32>>,
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

fn symbols_schema(dims: usize) -> SchemaRef {
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
        Field::new(
            "vector",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                dims as i32,
            ),
            true,
        ),
    ]))
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

/// What a search hit needs: no vector, no search text (they dominate a row's size).
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
            db.create_empty_table(SYMBOLS, symbols_schema(dims))
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
            self.symbols.delete(pred.as_str()).await?;
        }
        if !rows.is_empty() {
            self.symbols
                .add(symbols_batch(&rows, self.dims)?)
                .execute()
                .await?;
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
            self.symbols.delete(pred.as_str()).await?;
            self.files.delete(pred.as_str()).await?;
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
            for table in [&self.symbols, &self.files] {
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

    /// Symbols that have no vector yet (oldest files first is not guaranteed).
    pub async fn rows_missing_vectors(&self, limit: usize) -> anyhow::Result<Vec<SymbolRow>> {
        let batches: Vec<RecordBatch> = self
            .symbols
            .query()
            .only_if("vector IS NULL")
            .limit(limit)
            .execute()
            .await?
            .try_collect()
            .await?;
        rows_of(&batches)
    }

    /// Writes vectors for rows that still exist unchanged (ids carry the file hash, so rows of
    /// files changed meanwhile are not matched and not resurrected).
    pub async fn set_vectors(&self, rows: Vec<SymbolRow>) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = symbols_batch(&rows, self.dims)?;
        let schema = batch.schema();
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let mut m = self.symbols.merge_insert(&["id"]);
        m.when_matched_update_all(None);
        m.execute(Box::new(reader)).await?;
        self.note_write().await;
        Ok(())
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

    /// Nearest neighbours by cosine distance among rows that have a vector.
    pub async fn search_vector(
        &self,
        vector: &[f32],
        filter: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(SymbolRow, f32)>> {
        let f = match filter {
            Some(f) => format!("vector IS NOT NULL AND ({f})"),
            None => "vector IS NOT NULL".to_string(),
        };
        let batches: Vec<RecordBatch> = self
            .symbols
            .query()
            .nearest_to(vector)?
            .distance_type(DistanceType::Cosine)
            .select(Select::columns(HIT_COLUMNS))
            .only_if(f)
            .limit(limit)
            .execute()
            .await?
            .try_collect()
            .await?;
        scored_rows(&batches, "_distance", 1.0)
    }

    /// Every symbol, without its search text and vector, a batch at a time (the name layer's
    /// load: never all rows in memory at once).
    pub async fn scan_rows(
        &self,
        with_vectors: bool,
    ) -> anyhow::Result<impl futures::Stream<Item = anyhow::Result<Vec<SymbolRow>>> + Send + use<>>
    {
        let mut columns = HIT_COLUMNS.to_vec();
        if with_vectors {
            columns.push("vector");
        }
        let stream = self
            .symbols
            .query()
            .select(Select::columns(&columns))
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

fn symbols_batch(rows: &[SymbolRow], dims: usize) -> anyhow::Result<RecordBatch> {
    let s = |f: fn(&SymbolRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
        rows.iter().map(|r| {
            r.vector
                .as_ref()
                .filter(|v| v.len() == dims)
                .map(|v| v.iter().copied().map(Some).collect::<Vec<_>>())
        }),
        dims as i32,
    );
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
        Arc::new(vectors),
    ];
    Ok(RecordBatch::try_new(symbols_schema(dims), columns)?)
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
    let vectors = b
        .column_by_name("vector")
        .map(|c| c.as_fixed_size_list().clone());
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let vector = vectors.as_ref().and_then(|v| {
            if v.is_null(i) {
                None
            } else {
                let a = v.value(i);
                Some(a.as_primitive::<Float32Type>().values().to_vec())
            }
        });
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
            vector,
        });
    }
    Ok(out)
}
