//! The name layer: every indexed symbol's name, place, signature and references, in memory beside
//! the LanceDB table and updated with each write, so structural questions (where is `name`
//! defined, what do the symbols of this file or package call, what are a type's members) are
//! answered without a query, and lexical search runs from memory ([`crate::lexical`]). Loaded on
//! first use; plain data, no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use codeforge_syntax::{Language, SymbolKind};

use crate::lexical::Lexicon;
use crate::store::SymbolRow;

/// One symbol as the name layer keeps it. `line` is 1-based.
#[derive(Debug, Clone, PartialEq)]
pub struct NameEntry {
    pub name: String,
    pub qualified_name: String,
    pub kind: &'static str,
    pub language: &'static str,
    pub path: Arc<str>,
    pub scope: String,
    pub line: u32,
    pub end_line: u32,
    pub signature: String,
    /// The docstring's first non-empty line, at most 200 characters.
    pub doc: Option<String>,
    pub is_test: bool,
    /// Space-separated names the symbol calls or references (`references.scm`).
    pub references: String,
    /// First and last byte of the definition in its file.
    pub start_byte: u64,
    pub end_byte: u64,
    /// Its document in the table's [`Lexicon`].
    slot: u32,
}

impl NameEntry {
    pub fn from_row(row: &SymbolRow, path: Arc<str>) -> NameEntry {
        NameEntry {
            name: row.name.clone(),
            qualified_name: row.qualified_name.clone(),
            kind: SymbolKind::from_name(&row.kind).map_or("unknown", |k| k.name()),
            language: Language::from_name(&row.language).map_or("unknown", |l| l.name()),
            path,
            scope: row.scope.clone(),
            line: row.start_line + 1,
            end_line: row.end_line + 1,
            signature: crate::text::cut_chars(&row.signature, 400).to_string(),
            doc: crate::text::doc_summary(row.docstring.as_deref()),
            is_test: row.is_test,
            references: row.references.clone(),
            start_byte: row.start_byte,
            end_byte: row.end_byte,
            slot: u32::MAX,
        }
    }

    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.references.split_whitespace()
    }
}

/// Builds a table from rows that arrive in batches, in any order (a file's rows may span
/// batches), keeping only what the table keeps: the load never holds every full row at once.
#[derive(Default)]
pub struct NameTableBuilder {
    table: NameTable,
    pending: HashMap<Arc<str>, Vec<NameEntry>>,
}

impl NameTableBuilder {
    pub fn add(&mut self, row: &SymbolRow) {
        let key = match self.pending.get_key_value(row.path.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(row.path.as_str()),
        };
        let e = self.table.entry_of(row, key.clone());
        self.pending.entry(key).or_default().push(e);
    }

    pub fn finish(mut self) -> NameTable {
        for (key, entries) in std::mem::take(&mut self.pending) {
            self.table.insert_file(key, entries);
        }
        self.table.lexicon.shrink_to_fit();
        self.table
    }
}

/// All symbols by file, and the files that define each name.
#[derive(Debug, Default)]
pub struct NameTable {
    files: HashMap<Arc<str>, Vec<NameEntry>>,
    /// name → the files defining a symbol of that name (each once).
    defined_in: HashMap<String, Vec<Arc<str>>>,
    /// directory → its files that hold symbols.
    dirs: HashMap<String, Vec<Arc<str>>>,
    symbols: usize,
    /// BM25 over each symbol's search text.
    lexicon: Lexicon,
    /// Lexicon slot → (file, index in the file's entries).
    owners: Vec<(Arc<str>, u32)>,
    /// Each symbol's embedding, by lexicon slot, for semantic search from memory.
    vectors: Vectors,
}

/// Embeddings quantized to 8 bits with a scale per vector (a quarter of f32's memory: 384 bytes
/// a symbol for all-MiniLM-L6-v2), by slot, and each vector's signs as bits (48 bytes). A small
/// table is scanned whole, exactly. Past [`PREFILTER_FROM`] vectors the scan first ranks every
/// vector by the Hamming distance of its signs to the query's (an eighth of the bytes to read),
/// then scores exactly the nearest [`Vectors::candidates`] of them: the JDK's 219k vectors are
/// 84 MB, which no core reads in the 5 ms a query may take, but their signs are 10 MB.
#[derive(Debug, Default)]
struct Vectors {
    dims: usize,
    /// Per slot, `dims` values stored +128 (as `u8`: what `vpdpbusd` takes unsigned).
    q: Vec<u8>,
    /// Per slot; NaN where the slot has no vector.
    scale: Vec<f32>,
    /// Per slot, `dims / 64` words: bit `i` set where value `i` is positive (empty when `dims`
    /// is not a multiple of 64).
    bits: Vec<u64>,
    count: usize,
}

/// Vectors from which a search is prefiltered by sign bits (below it, every vector is scored).
const PREFILTER_FROM: usize = 16_384;

impl Vectors {
    fn clear(&mut self, slot: u32) {
        if let Some(s) = self.scale.get_mut(slot as usize)
            && !s.is_nan()
        {
            *s = f32::NAN;
            self.count -= 1;
        }
    }

    fn set(&mut self, slot: u32, v: &[f32]) {
        if self.dims == 0 {
            self.dims = v.len();
        }
        if v.is_empty() || v.len() != self.dims {
            return self.clear(slot);
        }
        let (s, d) = (slot as usize, self.dims);
        let words = self.words();
        if self.scale.len() <= s {
            self.scale.resize(s + 1, f32::NAN);
            self.q.resize((s + 1) * d, 0);
            self.bits.resize((s + 1) * words, 0);
        }
        let scale = quantize(v, &mut self.q[s * d..(s + 1) * d]);
        if words > 0 {
            sign_bits(v, &mut self.bits[s * words..(s + 1) * words]);
        }
        if self.scale[s].is_nan() {
            self.count += 1;
        }
        self.scale[s] = scale;
    }

    /// Sign words per vector (0: no sign bits, `dims` not a multiple of 64).
    fn words(&self) -> usize {
        if self.dims.is_multiple_of(64) {
            self.dims / 64
        } else {
            0
        }
    }

    /// How many of `n` vectors a prefiltered search scores exactly for `limit` results.
    fn candidates(n: usize, limit: usize) -> usize {
        (limit * 64).max(n / 64)
    }

    /// Whether a search of this table is prefiltered by sign bits (a large table).
    fn prefilters(&self) -> bool {
        self.count >= PREFILTER_FROM && self.words() > 0
    }

    /// Slots by cosine similarity to `query` (both unit length), best first, at most `limit`
    /// that `keep` accepts (all when `None`): every vector scored, or (`prefilter`, where the
    /// table has sign bits) only the nearest by sign bits.
    fn nearest(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
        prefilter: bool,
    ) -> Vec<(u32, f32)> {
        if self.count == 0 || query.len() != self.dims || limit == 0 {
            return Vec::new();
        }
        let mut qq = vec![0u8; self.dims];
        let qs = quantize(query, &mut qq);
        let qq: Vec<i8> = qq.iter().map(|&b| (b ^ 0x80) as i8).collect();
        // Σ (a + 128)·b = Σ a·b + 128·Σ b.
        let offset = 128 * qq.iter().map(|&b| b as i32).sum::<i32>();
        let dot = dot_fn(self.dims);
        let d = self.dims;
        let score = |slot: usize| {
            let q = &self.q[slot * d..(slot + 1) * d];
            (dot(q, &qq) - offset) as f32 * self.scale[slot] * qs
        };
        let live = |slot: usize| !self.scale[slot].is_nan() && keep.is_none_or(|k| k(slot as u32));
        let mut scored: Vec<(u32, f32)> = Vec::new();
        if prefilter && self.words() > 0 {
            let words = self.words();
            let mut qb = vec![0u64; words];
            sign_bits(query, &mut qb);
            // Hamming distances (u16::MAX: no vector) and how many at each.
            let far = u16::MAX;
            let mut hist = vec![0usize; self.dims + 1];
            let dist: Vec<u16> = self
                .bits
                .chunks_exact(words)
                .zip(&self.scale)
                .map(|(b, scale)| {
                    if scale.is_nan() {
                        return far;
                    }
                    let h = b
                        .iter()
                        .zip(&qb)
                        .map(|(x, y)| (x ^ y).count_ones())
                        .sum::<u32>() as usize;
                    hist[h] += 1;
                    h as u16
                })
                .collect();
            // The nearest by distance, a whole distance at a time, until enough candidates are
            // found; with a filter, what it rejects does not count (checked on candidates only:
            // the filter looks each symbol up), so the search widens until enough pass.
            let mut want = Self::candidates(self.count, limit);
            let (mut lo, mut seen, mut h) = (0usize, 0usize, 0usize);
            loop {
                while h <= self.dims && seen < want {
                    seen += hist[h];
                    h += 1;
                }
                let (from, to) = (lo as u16, (h - 1) as u16);
                for (slot, &d) in dist.iter().enumerate() {
                    if d >= from && d <= to && keep.is_none_or(|k| k(slot as u32)) {
                        scored.push((slot as u32, score(slot)));
                    }
                }
                if scored.len() >= Self::candidates(0, limit) || h > self.dims {
                    break;
                }
                lo = h;
                want = seen + want;
            }
        } else {
            scored.reserve(self.count);
            for slot in 0..self.scale.len() {
                if live(slot) {
                    scored.push((slot as u32, score(slot)));
                }
            }
        }
        let by_score = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, by_score);
            scored.truncate(limit);
        }
        scored.sort_by(by_score);
        scored
    }
}

/// Bit `i` of `out` (64 to a word) set where `v[i]` is positive.
fn sign_bits(v: &[f32], out: &mut [u64]) {
    for (w, chunk) in out.iter_mut().zip(v.chunks(64)) {
        *w = chunk
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, x)| acc | (u64::from(*x > 0.0) << i));
    }
}

/// `v` as 8-bit values (symmetric, nearest) stored +128 in `q`; returns the scale.
fn quantize(v: &[f32], q: &mut [u8]) -> f32 {
    let amax = v.iter().fold(0f32, |a, x| a.max(x.abs()));
    let scale = amax / 127.0;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    for (o, x) in q.iter_mut().zip(v) {
        *o = ((x * inv).round() as i8 as u8) ^ 0x80;
    }
    scale
}

/// `Σ a·b` for `a` unsigned and `b` signed bytes.
type Dot = fn(&[u8], &[i8]) -> i32;

/// The fastest dot product this CPU runs for vectors of `dims` values.
fn dot_fn(dims: usize) -> Dot {
    #[cfg(target_arch = "x86_64")]
    if dims.is_multiple_of(64)
        && std::env::var_os("CODEFORGE_NO_VNNI").is_none()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vnni")
    {
        // SAFETY: the features it needs were just detected.
        return |a, b| unsafe { dot_vnni(a, b) };
    }
    let _ = dims;
    dot_plain
}

/// In 16 lanes of products that fit in 16 bits, so that it vectorises (`vpmaddwd`).
fn dot_plain(a: &[u8], b: &[i8]) -> i32 {
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let mut tail = 0i32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += *x as i32 * *y as i32;
    }
    let mut acc = [0i32; 16];
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] as i16 as i32 * y[l] as i32;
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// 64 products per instruction (`vpdpbusd`); `a.len()` a multiple of 64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dot_vnni(a: &[u8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    debug_assert!(a.len() == b.len() && a.len().is_multiple_of(64));
    let mut acc = _mm512_setzero_si512();
    for i in (0..a.len()).step_by(64) {
        let (x, y) = unsafe {
            (
                _mm512_loadu_si512(a.as_ptr().add(i) as *const _),
                _mm512_loadu_si512(b.as_ptr().add(i) as *const _),
            )
        };
        acc = _mm512_dpbusd_epi32(acc, x, y);
    }
    _mm512_reduce_add_epi32(acc)
}

fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

impl NameTable {
    /// A table of `rows` (any order).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a SymbolRow>) -> NameTable {
        let mut b = NameTableBuilder::default();
        for r in rows {
            b.add(r);
        }
        b.finish()
    }

    /// `row` as an entry of file `key`, its search text in the lexicon.
    fn entry_of(&mut self, row: &SymbolRow, key: Arc<str>) -> NameEntry {
        let mut e = NameEntry::from_row(row, key);
        e.slot = self.lexicon.add(&crate::text::search_text(
            &row.name,
            &row.qualified_name,
            &row.signature,
            row.docstring.as_deref(),
        ));
        match &row.vector {
            Some(v) => self.vectors.set(e.slot, v),
            None => self.vectors.clear(e.slot),
        }
        e
    }

    /// Adds file `key` (not in the table) with `entries` (its symbols, any order, already in
    /// the lexicon).
    fn insert_file(&mut self, key: Arc<str>, mut entries: Vec<NameEntry>) {
        if entries.is_empty() {
            return;
        }
        entries.sort_by_key(|e| e.start_byte);
        for (i, e) in entries.iter().enumerate() {
            let slot = e.slot as usize;
            if self.owners.len() <= slot {
                self.owners.resize(slot + 1, (key.clone(), 0));
            }
            self.owners[slot] = (key.clone(), i as u32);
            let files = self.defined_in.entry(e.name.clone()).or_default();
            // A file's entries come together: a repeat can only be the last one.
            if files.last().is_none_or(|f| *f != key) {
                files.push(key.clone());
            }
        }
        self.symbols += entries.len();
        self.dirs
            .entry(parent_dir(&key).to_string())
            .or_default()
            .push(key.clone());
        self.files.insert(key, entries);
    }

    /// Replaces what the table holds of `path` by `rows` (all of that file's symbols; none
    /// removes the file).
    pub fn replace_file<'a>(&mut self, path: &str, rows: impl IntoIterator<Item = &'a SymbolRow>) {
        self.remove_file(path);
        let key: Arc<str> = Arc::from(path);
        let entries: Vec<NameEntry> = rows
            .into_iter()
            .map(|r| self.entry_of(r, key.clone()))
            .collect();
        self.insert_file(key, entries);
    }

    pub fn remove_file(&mut self, path: &str) {
        let Some(old) = self.files.remove(path) else {
            return;
        };
        self.symbols -= old.len();
        for e in &old {
            self.lexicon.remove(e.slot);
            self.vectors.clear(e.slot);
        }
        let dir = parent_dir(path);
        if let Some(files) = self.dirs.get_mut(dir) {
            files.retain(|f| **f != *path);
            if files.is_empty() {
                self.dirs.remove(dir);
            }
        }
        for e in &old {
            if let Some(files) = self.defined_in.get_mut(&e.name) {
                files.retain(|f| **f != *path);
                if files.is_empty() {
                    self.defined_in.remove(&e.name);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.symbols
    }

    pub fn is_empty(&self) -> bool {
        self.symbols == 0
    }

    /// Every file's path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(|p| &**p)
    }

    /// The symbols of one file, in source order.
    pub fn file(&self, path: &str) -> &[NameEntry] {
        self.files.get(path).map_or(&[], |v| v.as_slice())
    }

    /// Is some symbol called `name`?
    pub fn is_defined(&self, name: &str) -> bool {
        self.defined_in.contains_key(name)
    }

    /// Every symbol called `name`.
    pub fn defined(&self, name: &str) -> impl Iterator<Item = &NameEntry> {
        self.defined_in
            .get(name)
            .into_iter()
            .flatten()
            .flat_map(move |p| self.file(p).iter().filter(move |e| e.name == name))
    }

    /// The symbols of each file directly in directory `dir` ("" for the root).
    pub fn files_in_dir<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a [NameEntry]> + 'a {
        self.dirs
            .get(dir)
            .into_iter()
            .flatten()
            .map(|p| self.file(p))
    }

    /// BM25 search over the symbols' search text (names, their words, signature, docstring):
    /// at most `limit` symbols that `keep` accepts (all when `None`), best first, with their
    /// scores.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        keep: Option<&dyn Fn(&NameEntry) -> bool>,
    ) -> Vec<(&NameEntry, f32)> {
        let entry = |slot: u32| self.entry(slot);
        let keep_slot = keep.map(|k| move |s: u32| k(entry(s)));
        self.lexicon
            .search(
                query,
                limit,
                keep_slot.as_ref().map(|k| k as &dyn Fn(u32) -> bool),
            )
            .into_iter()
            .map(|(s, score)| (entry(s), score))
            .collect()
    }

    /// The entry in lexicon slot `slot` (a live one).
    fn entry(&self, slot: u32) -> &NameEntry {
        let (path, i) = &self.owners[slot as usize];
        &self.files[path][*i as usize]
    }

    /// Gives the symbol `name` at `start_byte` of `path` its vector (written after the symbol,
    /// by the embedding phase). False when the table has no such symbol.
    pub fn set_vector(&mut self, path: &str, start_byte: u64, name: &str, v: &[f32]) -> bool {
        let Some(entries) = self.files.get(path) else {
            return false;
        };
        let from = entries.partition_point(|e| e.start_byte < start_byte);
        let Some(e) = entries[from..]
            .iter()
            .take_while(|e| e.start_byte == start_byte)
            .find(|e| e.name == name)
        else {
            return false;
        };
        self.vectors.set(e.slot, v);
        true
    }

    /// How many symbols have a vector.
    pub fn vector_count(&self) -> usize {
        self.vectors.count
    }

    /// Semantic search: the symbols whose vectors are nearest `query` (a unit vector from the
    /// index's embedder) by cosine similarity, at most `limit` that `keep` accepts, best first.
    pub fn nearest(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(&NameEntry) -> bool>,
    ) -> Vec<(&NameEntry, f32)> {
        self.nearest_with(query, limit, keep, self.vectors.prefilters())
    }

    /// [`Self::nearest`] with every vector scored, also in a large table where [`Self::nearest`]
    /// prefilters by sign bits (the benchmark's measure of what the prefilter loses).
    pub fn nearest_exact(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(&NameEntry) -> bool>,
    ) -> Vec<(&NameEntry, f32)> {
        self.nearest_with(query, limit, keep, false)
    }

    fn nearest_with(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(&NameEntry) -> bool>,
        prefilter: bool,
    ) -> Vec<(&NameEntry, f32)> {
        let entry = |slot: u32| self.entry(slot);
        let keep_slot = keep.map(|k| move |s: u32| k(entry(s)));
        let keep_slot = keep_slot.as_ref().map(|k| k as &dyn Fn(u32) -> bool);
        self.vectors
            .nearest(query, limit, keep_slot, prefilter)
            .into_iter()
            .map(|(s, score)| (entry(s), score))
            .collect()
    }

    /// The members of the type `qualified_name` defined in `path` (methods, nested types).
    pub fn members<'a>(
        &'a self,
        path: &str,
        qualified_name: &'a str,
    ) -> impl Iterator<Item = &'a NameEntry> + 'a {
        self.file(path)
            .iter()
            .filter(move |e| e.scope == qualified_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, name: &str, scope: &str, refs: &str, start: u64) -> SymbolRow {
        SymbolRow {
            id: format!("{path}#{name}"),
            path: path.into(),
            language: "python".into(),
            kind: "function".into(),
            name: name.into(),
            qualified_name: if scope.is_empty() {
                name.into()
            } else {
                format!("{scope}.{name}")
            },
            scope: scope.into(),
            signature: format!("def {name}():"),
            docstring: Some("\n  Does it.\nMore.".into()),
            start_line: start as u32,
            end_line: start as u32 + 1,
            start_byte: start,
            end_byte: start + 10,
            references: refs.into(),
            is_test: false,
            file_hash: "h".into(),
            text: String::new(),
            vector: None,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// Vectors arrive with rows or later (`set_vector`), follow replaced and removed files, and
    /// rank by cosine similarity with the filter applied.
    #[test]
    fn vectors_follow_the_rows_and_rank_by_cosine() {
        let with = |name: &str, start, v: &[f32]| {
            let mut r = row("a.py", name, "", "", start);
            r.vector = Some(unit(v));
            r
        };
        let rows = vec![
            with("east", 0, &[1.0, 0.0, 0.0, 0.1]),
            with("north", 20, &[0.0, 1.0, 0.0, 0.0]),
            row("a.py", "later", "", "", 40),
        ];
        let mut t = NameTable::from_rows(&rows);
        assert_eq!(t.vector_count(), 2);
        let names = |hits: Vec<(&NameEntry, f32)>| -> Vec<String> {
            hits.into_iter().map(|(e, _)| e.name.clone()).collect()
        };
        let q = unit(&[0.9, 0.3, 0.0, 0.0]);
        assert_eq!(names(t.nearest(&q, 5, None)), ["east", "north"]);
        let (_, score) = t.nearest(&q, 1, None)[0];
        let want: f32 = q
            .iter()
            .zip(unit(&[1.0, 0.0, 0.0, 0.1]))
            .map(|(a, b)| a * b)
            .sum();
        assert!((score - want).abs() < 0.02, "{score} vs {want}");
        let not_east = |e: &NameEntry| e.name != "east";
        assert_eq!(names(t.nearest(&q, 5, Some(&not_east))), ["north"]);

        assert!(t.set_vector("a.py", 40, "later", &unit(&[1.0, 0.2, 0.0, 0.0])));
        assert!(!t.set_vector("a.py", 41, "later", &unit(&[1.0, 0.0, 0.0, 0.0])));
        assert!(!t.set_vector("b.py", 40, "later", &unit(&[1.0, 0.0, 0.0, 0.0])));
        assert_eq!(t.vector_count(), 3);
        assert_eq!(names(t.nearest(&q, 2, None)), ["later", "east"]);

        // A replaced file keeps only its new rows' vectors; a removed one has none left.
        t.replace_file("a.py", &[with("west", 0, &[-1.0, 0.0, 0.0, 0.0])]);
        assert_eq!(t.vector_count(), 1);
        assert_eq!(names(t.nearest(&q, 5, None)), ["west"]);
        t.replace_file("b.py", &[row("b.py", "none", "", "", 0)]);
        t.remove_file("a.py");
        assert_eq!(t.vector_count(), 0);
        assert!(t.nearest(&q, 5, None).is_empty());
    }

    /// In a table large enough to be prefiltered by sign bits, the vectors near the query are
    /// found, in the exact scan's order, among thousands of others; and a filter still applies.
    #[test]
    fn the_sign_bit_prefilter_finds_what_the_exact_scan_finds() {
        let mut seed = 17u64;
        let mut rand = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let dims = 384;
        let query: Vec<f32> = unit(&(0..dims).map(|_| rand()).collect::<Vec<_>>());
        let n = PREFILTER_FROM + 4000;
        let mut v = Vectors::default();
        for slot in 0..n as u32 {
            let noise: Vec<f32> = (0..dims).map(|_| rand()).collect();
            // Every 1000th vector lies near the query (nearer the lower its slot), the rest anywhere.
            let near = slot % 1000 == 0;
            let w = 0.05 + slot as f32 / n as f32;
            let x: Vec<f32> = if near {
                query
                    .iter()
                    .zip(&noise)
                    .map(|(q, e)| q + w * e * 0.2)
                    .collect()
            } else {
                noise
            };
            v.set(slot, &unit(&x));
        }
        assert!(v.count >= PREFILTER_FROM);
        assert!(v.prefilters());
        let exact = v.nearest(&query, 10, None, false);
        let fast = v.nearest(&query, 10, None, true);
        assert!(exact.iter().all(|(s, _)| s % 1000 == 0), "{exact:?}");
        assert_eq!(
            fast.iter().map(|x| x.0).collect::<Vec<_>>(),
            exact.iter().map(|x| x.0).collect::<Vec<_>>()
        );
        let odd = |s: u32| (s / 1000) % 2 == 1;
        let kept = v.nearest(&query, 5, Some(&odd), true);
        assert_eq!(kept.len(), 5);
        assert!(
            kept.iter().all(|(s, _)| s % 1000 == 0 && odd(*s)),
            "{kept:?}"
        );
        // A cleared vector is never a candidate.
        v.clear(exact[0].0);
        assert!(
            v.nearest(&query, 10, None, true)
                .iter()
                .all(|x| x.0 != exact[0].0)
        );
    }

    /// The VNNI product and the plain one agree with the exact sum, at the extremes too.
    #[test]
    fn the_byte_dot_products_agree() {
        let a: Vec<u8> = (0..384).map(|i| (i * 37 % 256) as u8).collect();
        let mut b: Vec<i8> = (0..384).map(|i| (i * 91 % 256) as u8 as i8).collect();
        b[0] = -128;
        let exact: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(dot_plain(&a, &b), exact);
        assert_eq!(dot_fn(384)(&a, &b), exact);
        assert_eq!(
            dot_plain(&a[..37], &b[..37]),
            a[..37]
                .iter()
                .zip(&b)
                .map(|(&x, &y)| x as i32 * y as i32)
                .sum::<i32>()
        );
    }

    #[test]
    fn replace_and_remove_keep_the_name_map_true() {
        let rows = vec![
            row("a/x.py", "helper", "", "", 0),
            row("a/x.py", "main", "", "helper parse", 20),
            row("a/y.py", "parse", "", "", 0),
            row("b/z.py", "helper", "", "", 0),
        ];
        let mut t = NameTable::from_rows(&rows);
        assert_eq!(t.len(), 4);
        assert_eq!(t.defined("helper").count(), 2);
        assert_eq!(
            t.file("a/x.py")[1].references().collect::<Vec<_>>(),
            ["helper", "parse"]
        );
        assert_eq!(t.file("a/x.py")[0].doc.as_deref(), Some("Does it."));
        assert_eq!(t.files_in_dir("a").count(), 2);
        assert_eq!(t.files_in_dir("b").count(), 1);
        assert_eq!(t.files_in_dir("").count(), 0);
        // The file changes: `helper` leaves it, `render` arrives.
        t.replace_file("a/x.py", &[row("a/x.py", "render", "", "", 0)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.defined("helper").count(), 1);
        assert!(t.is_defined("render"));
        assert!(!t.is_defined("main"));
        t.remove_file("b/z.py");
        assert!(!t.is_defined("helper"));
        t.replace_file("a/y.py", &[]);
        assert!(!t.is_defined("parse"));
        assert_eq!(t.len(), 1);
        assert_eq!(t.files_in_dir("a").count(), 1);
        assert_eq!(t.files_in_dir("b").count(), 0);
    }

    #[test]
    fn members_are_found_by_scope() {
        let rows = vec![
            row("m.py", "Cart", "", "", 0),
            row("m.py", "total", "Cart", "", 10),
            row("m.py", "add", "Cart", "", 30),
            row("m.py", "free", "", "", 50),
        ];
        let t = NameTable::from_rows(&rows);
        let names: Vec<&str> = t.members("m.py", "Cart").map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["total", "add"]);
    }
}
