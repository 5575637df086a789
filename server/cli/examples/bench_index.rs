//! Index benchmark (prints figures; not a test). For one corpus directory it measures: symbol
//! extraction throughput against universal-ctags on the same tree, cold indexing (lexical, then
//! embeddings), a restart with no changes, one-file edits until searchable (and until written with their vectors), query latency, and
//! peak RSS. Driven by `.ci/bench`, which fetches the corpora and prints the table.
//!
//! Usage: bench_index --name NAME --path DIR --cache DIR [--embed] [--edits N] [--queries N]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use codeforge_config::{EmbeddingSettings, Settings};
use codeforge_index::walk::{self, WalkOptions};
use codeforge_index::{CancelFlag, SearchQuery, UpdateRequest, WorkspaceIndex};
use codeforge_syntax::{Language, extract};

struct Args {
    name: String,
    path: PathBuf,
    cache: PathBuf,
    embed: bool,
    edits: usize,
    queries: usize,
    /// Stop after the extraction figures (walk + read + extract vs ctags).
    extract_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        name: String::new(),
        path: PathBuf::new(),
        cache: PathBuf::new(),
        embed: false,
        edits: 20,
        queries: 100,
        extract_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--name" => a.name = it.next().expect("--name NAME"),
            "--path" => a.path = it.next().expect("--path DIR").into(),
            "--cache" => a.cache = it.next().expect("--cache DIR").into(),
            "--embed" => a.embed = true,
            "--extract-only" => a.extract_only = true,
            "--edits" => a.edits = it.next().expect("N").parse().expect("number"),
            "--queries" => a.queries = it.next().expect("N").parse().expect("number"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.path.is_dir(), "--path must be a directory");
    a
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// A `/proc/self/status` figure in MB (`VmHWM:` the peak, `VmRSS:` now).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// The peak RSS since the last call (or the start), recorded as `peak_rss_<phase>_mb`; the
/// kernel's peak is then reset (`/proc/self/clear_refs`), so each phase gets its own.
fn phase_peak(report: &mut serde_json::Map<String, serde_json::Value>, phase: &str) -> f64 {
    let peak = peak_rss_mb();
    report.insert(format!("peak_rss_{phase}_mb"), format!("{peak:.0}").into());
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    eprintln!("bench_index: {phase}: peak RSS {peak:.0} MB");
    peak
}

/// Logs RSS to stderr every 5 s (where in a phase its peak falls).
fn rss_log() {
    std::thread::spawn(|| {
        let t = Instant::now();
        loop {
            std::thread::sleep(Duration::from_secs(5));
            eprintln!(
                "bench_index: {:>6.0} s RSS {:.0} MB",
                t.elapsed().as_secs_f64(),
                status_mb("VmRSS:")
            );
        }
    });
}

/// Walk + read + extract, on `threads` threads. Returns (files, bytes, symbols, elapsed).
fn extraction(root: &Path, threads: usize) -> (usize, u64, usize, Duration) {
    let started = Instant::now();
    let w = walk::walk(
        root,
        &WalkOptions {
            max_file_size: 1 << 20,
            exclude: &[],
            languages: &Language::ALL,
        },
    )
    .expect("walk");
    // One file at a time from a shared counter, as the indexer takes them.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (mut bytes, mut symbols) = (0u64, 0usize);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut b, mut n) = (0u64, 0usize);
                    while let Some(c) = w
                        .candidates
                        .get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let Ok(data) = std::fs::read(&c.abs_path) else {
                            continue;
                        };
                        let Ok(text) = walk::classify_content(&data) else {
                            continue;
                        };
                        b += data.len() as u64;
                        n += extract(c.language, &c.rel_path, text).symbols.len();
                    }
                    (b, n)
                })
            })
            .collect();
        for h in hs {
            let (b, n) = h.join().unwrap();
            bytes += b;
            symbols += n;
        }
    });
    (w.candidates.len(), bytes, symbols, started.elapsed())
}

/// Rounds of the extraction comparison; each figure is the best round's.
const EXTRACTION_ROUNDS: usize = 3;

/// universal-ctags over the same tree, same languages, output discarded.
fn ctags(root: &Path) -> Option<(usize, Duration)> {
    let started = Instant::now();
    let out = Command::new("ctags")
        .args([
            "-R",
            "--languages=Python,Rust,Java",
            "--fields=+n",
            "-f",
            "-",
        ])
        .arg(root)
        .output()
        .ok()?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return None;
    }
    let tags = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"!_"))
        .count();
    Some((tags, elapsed))
}

// The shipped binary's allocator setting, so that peak RSS is what users get.
#[path = "../src/alloc.rs"]
mod alloc;

fn main() -> anyhow::Result<()> {
    alloc::limit_arenas();
    // SAFETY: first thing in main: no thread or tree-sitter object exists yet.
    unsafe { codeforge_syntax::install_tree_allocator() };
    alloc::limit_scan_buffers();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let a = args();
    let root = a.path.canonicalize()?;
    rss_log();
    let mut peak = 0f64;
    let mut report = serde_json::Map::new();
    report.insert("corpus".into(), a.name.clone().into());

    // 1. Extraction vs ctags (ctags first: both then read from a warm page cache). Best of three
    // rounds, interleaved: on a shared machine single runs of either moved by ±20%.
    let _ = extraction(&root, 2); // warm the page cache
    let mut ct: Option<(usize, Duration)> = None;
    let (mut files, mut bytes, mut symbols) = (0, 0, 0);
    let (mut ex2, mut ex1) = (Duration::MAX, Duration::MAX);
    for _ in 0..EXTRACTION_ROUNDS {
        if let Some((tags, t)) = ctags(&root) {
            ct = Some((tags, ct.map_or(t, |(_, best)| best.min(t))));
        }
        let (f, b, s, t2) = extraction(&root, 2);
        (files, bytes, symbols) = (f, b, s);
        ex2 = ex2.min(t2);
        ex1 = ex1.min(extraction(&root, 1).3);
    }
    let mb = bytes as f64 / 1e6;
    report.insert("files".into(), files.into());
    report.insert("mbytes".into(), format!("{mb:.1}").into());
    report.insert("symbols".into(), symbols.into());
    report.insert(
        "extract_ms_2threads".into(),
        (ex2.as_millis() as u64).into(),
    );
    report.insert("extract_ms_1thread".into(), (ex1.as_millis() as u64).into());
    report.insert(
        "extract_mb_s_2threads".into(),
        format!("{:.1}", mb / ex2.as_secs_f64()).into(),
    );
    if let Some((tags, t)) = ct {
        report.insert("ctags_ms".into(), (t.as_millis() as u64).into());
        report.insert("ctags_tags".into(), tags.into());
        report.insert(
            "ctags_mb_s".into(),
            format!("{:.1}", mb / t.as_secs_f64()).into(),
        );
    }

    if a.extract_only {
        println!("{}", serde_json::Value::Object(report));
        return Ok(());
    }

    // 2. Cold index, lexical first (what makes search available), then embeddings.
    // The model as installed by `codeforge model pull` (the benchmark's own cache dir holds only indexes).
    let model_dir = codeforge_config::default_embedding_model_dir(&codeforge_config::cache_dir(
        None,
        std::env::var_os(codeforge_config::CACHE_DIR_ENV),
    ));
    let settings = |embed: bool| {
        let mut s = Settings::default();
        s.embeddings = if embed {
            EmbeddingSettings::Local {
                model_dir: Some(model_dir.clone()),
                batch_size: 32,
            }
        } else {
            EmbeddingSettings::None
        };
        s
    };
    let cancel = CancelFlag::new();
    let t = Instant::now();
    let index = WorkspaceIndex::open(&root, &a.cache, settings(a.embed)).await?;
    if a.embed
        && let Some(why) = index.lexical_only_reason()
    {
        anyhow::bail!("--embed but no embeddings: {why}");
    }
    let s = index
        .update(
            UpdateRequest {
                skip_embedding: true,
                ..Default::default()
            },
            &|_| {},
            &cancel,
        )
        .await?;
    let lexical = t.elapsed();
    report.insert(
        "cold_index_lexical_s".into(),
        format!("{:.1}", lexical.as_secs_f64()).into(),
    );
    report.insert("indexed_symbols".into(), s.symbols.into());
    peak = peak.max(phase_peak(&mut report, "lexical"));
    if a.embed {
        let t = Instant::now();
        let s = index
            .update(UpdateRequest::default(), &|_| {}, &cancel)
            .await?;
        let e = t.elapsed();
        report.insert("embed_s".into(), format!("{:.1}", e.as_secs_f64()).into());
        report.insert("embedded".into(), s.embedded.into());
        report.insert(
            "embed_symbols_per_s".into(),
            format!("{:.0}", s.embedded as f64 / e.as_secs_f64()).into(),
        );
        report.insert(
            "cold_index_with_embeddings_s".into(),
            format!("{:.1}", (lexical + e).as_secs_f64()).into(),
        );
        peak = peak.max(phase_peak(&mut report, "embedding"));
    }
    drop(index);

    // 3. Restart with no changes.
    let t = Instant::now();
    let index = WorkspaceIndex::open(&root, &a.cache, settings(a.embed)).await?;
    let s = index
        .update(UpdateRequest::default(), &|_| {}, &cancel)
        .await?;
    report.insert(
        "restart_s".into(),
        format!("{:.2}", t.elapsed().as_secs_f64()).into(),
    );
    assert_eq!(
        (s.parsed, s.embedded),
        (0, 0),
        "a restart must not re-parse or re-embed"
    );

    // The name layer (what the language server loads after its first update): lexical search
    // and structural context from memory.
    let rss_before = status_mb("VmRSS:");
    let t = Instant::now();
    index.load_names().await?;
    report.insert(
        "names_load_s".into(),
        format!("{:.2}", t.elapsed().as_secs_f64()).into(),
    );
    report.insert(
        "names_rss_mb".into(),
        format!("{:.0}", status_mb("VmRSS:") - rss_before).into(),
    );

    // 4. One-file edits (as unsaved buffers, like the LSP sends them) until searchable.
    let py_or_any = walk::walk(
        &root,
        &WalkOptions {
            max_file_size: 1 << 20,
            exclude: &[],
            languages: &Language::ALL,
        },
    )?
    .candidates;
    let mut edit_times = Vec::new();
    let mut vector_times = Vec::new();
    for n in 0..a.edits {
        let c = &py_or_any[(n * 7919) % py_or_any.len()];
        let text = std::fs::read_to_string(&c.abs_path)?;
        let name = format!("cf_bench_edit_{n}");
        let added = match c.language {
            Language::Python => format!("{text}\n\ndef {name}():\n    pass\n"),
            Language::Rust => format!("{text}\n\nfn {name}() {{}}\n"),
            Language::Java => format!("{text}\n\nclass {name} {{}}\n"),
        };
        // Searchable: the first search (polled beside the update, as an editor's
        // workspace/symbol request would come) that finds the new symbol. The update itself
        // returns once the edit's vectors are written too ("edit → vectors").
        let t = Instant::now();
        let query = SearchQuery::new(name.clone(), 3);
        let update = index.update(
            UpdateRequest {
                overlays: [(c.rel_path.clone(), added)].into_iter().collect(),
                only: Some(vec![c.rel_path.clone()]),
                skip_embedding: !a.embed,
            },
            &|_| {},
            &cancel,
        );
        let poll = async {
            loop {
                let hits = index.search(&query).await.expect("search");
                if hits.iter().any(|h| h.name == name) {
                    return t.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::pin!(update);
        tokio::pin!(poll);
        let (mut found, mut updated) = (None, None);
        while found.is_none() || updated.is_none() {
            tokio::select! {
                r = &mut update, if updated.is_none() => {
                    r?;
                    updated = Some(t.elapsed());
                }
                d = &mut poll, if found.is_none() => found = Some(d),
            }
        }
        edit_times.push(found.unwrap());
        vector_times.push(updated.unwrap());
    }
    report.insert(
        "edit_searchable_p50_ms".into(),
        format!("{:.0}", percentile(&mut edit_times, 0.5)).into(),
    );
    report.insert(
        "edit_searchable_p95_ms".into(),
        format!("{:.0}", percentile(&mut edit_times, 0.95)).into(),
    );
    report.insert(
        "edit_written_p50_ms".into(),
        format!("{:.0}", percentile(&mut vector_times, 0.5)).into(),
    );
    report.insert(
        "edit_written_p95_ms".into(),
        format!("{:.0}", percentile(&mut vector_times, 0.95)).into(),
    );

    // 5. Query latency: identifiers from the corpus and natural-language phrases.
    let phrases = [
        "parse the config file",
        "open a network connection",
        "read bytes from a stream",
        "format a date as a string",
        "sort a list of items",
        "compute a hash of the data",
        "start an http server",
        "escape html special characters",
        "validate user input",
        "retry with backoff",
    ];
    let mut idents: Vec<String> = Vec::new();
    for c in py_or_any
        .iter()
        .step_by((py_or_any.len() / 50).max(1))
        .take(a.queries)
    {
        if let Ok(t) = std::fs::read_to_string(&c.abs_path)
            && let Some(s) = extract(c.language, &c.rel_path, &t).symbols.first()
        {
            idents.push(s.name.clone());
        }
    }
    // Each query twice: lexical search from the name layer (what search does), and from
    // LanceDB's full-text index (what it did before the name layer), in a second pass after the
    // serving phase's peak RSS is taken (the server makes no such query once the layer is
    // loaded; each one reads the whole vector table).
    let (mut q_times, mut store_times) = (Vec::new(), Vec::new());
    let mut mem_hits = Vec::new();
    let mut asked = Vec::new();
    // With vectors: how much of a query is embedding the query itself.
    let mut embed_times = Vec::new();
    let (mut scan_times, mut exact_times, mut found, mut wanted) = (Vec::new(), Vec::new(), 0, 0);
    let mut same_top = 0;
    for i in 0..a.queries {
        let q = if i % 2 == 0 && !idents.is_empty() {
            idents[(i / 2) % idents.len()].clone()
        } else {
            phrases[i % phrases.len()].to_string()
        };
        let t = Instant::now();
        let mem = index
            .search_uncached(&SearchQuery::new(q.clone(), 10))
            .await?;
        q_times.push(t.elapsed());
        if let Some(e) = index.embedder() {
            let t = Instant::now();
            let v = e.embed(vec![q.clone()]).await?.remove(0);
            embed_times.push(t.elapsed());
            // The name layer's vector search as it runs (prefiltered by sign bits in a large
            // table) against every vector scored: time, and how many of the exact top 10 it finds.
            index.with_names(|t| {
                let key = |h: &[(&codeforge_index::NameEntry, f32)]| -> Vec<(String, u64)> {
                    h.iter()
                        .map(|(e, _)| (e.path.to_string(), e.start_byte))
                        .collect()
                };
                let t0 = Instant::now();
                let fast = key(&t.nearest(&v, 10, None));
                scan_times.push(t0.elapsed());
                let t0 = Instant::now();
                let exact = key(&t.nearest_exact(&v, 10, None));
                exact_times.push(t0.elapsed());
                found += exact.iter().filter(|k| fast.contains(k)).count();
                wanted += exact.len();
            });
        }
        mem_hits.push(mem);
        asked.push(q);
    }
    peak = peak.max(phase_peak(&mut report, "serving"));
    for (q, mem) in asked.into_iter().zip(&mem_hits) {
        let t = Instant::now();
        let store = index.search_store_only(&SearchQuery::new(q, 10)).await?;
        store_times.push(t.elapsed());
        let top = |h: &[codeforge_index::Hit]| h.first().map(|h| (h.path.clone(), h.line));
        same_top += usize::from(top(mem) == top(&store));
    }
    // Not part of `peak_rss_mb`: the server does not make these queries.
    phase_peak(&mut report, "lancedb_comparison");
    report.insert(
        "query_p50_ms".into(),
        format!("{:.2}", percentile(&mut q_times, 0.5)).into(),
    );
    report.insert(
        "query_p95_ms".into(),
        format!("{:.2}", percentile(&mut q_times, 0.95)).into(),
    );
    report.insert(
        "lancedb_query_p50_ms".into(),
        format!("{:.1}", percentile(&mut store_times, 0.5)).into(),
    );
    report.insert(
        "lancedb_query_p95_ms".into(),
        format!("{:.1}", percentile(&mut store_times, 0.95)).into(),
    );
    if !embed_times.is_empty() {
        report.insert(
            "query_embed_p50_ms".into(),
            format!("{:.2}", percentile(&mut embed_times, 0.5)).into(),
        );
    }
    if !scan_times.is_empty() {
        report.insert(
            "vector_scan_p50_ms".into(),
            format!("{:.2}", percentile(&mut scan_times, 0.5)).into(),
        );
        report.insert(
            "vector_exact_scan_p50_ms".into(),
            format!("{:.2}", percentile(&mut exact_times, 0.5)).into(),
        );
        report.insert(
            "vector_recall_at_10".into(),
            format!("{:.3}", found as f64 / wanted.max(1) as f64).into(),
        );
    }
    report.insert(
        "same_first_hit".into(),
        format!("{same_top}/{}", a.queries).into(),
    );
    report.insert("semantic_queries".into(), index.embedder().is_some().into());
    report.insert("peak_rss_mb".into(), format!("{peak:.0}").into());
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
