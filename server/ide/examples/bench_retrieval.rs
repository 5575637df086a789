//! Retrieval benchmark (prints figures; `tests/bench/retrieval/`): for documented functions of a
//! real corpus, queries with the signature and docstring (the body removed) and measures
//! recall@k of the repository symbols the body really calls or names (its `references`, kept
//! where a non-test symbol of that name exists in the corpus), for plain BM25, the index's hybrid
//! search (BM25 + vectors when `--embed`), and the structural context of
//! `codeforge_ide::structure` fused with the hybrid hits.
//!
//! `bench_retrieval --name N --path DIR --cache DIR [--sample 300] [--seed 17] [--k 10] [--embed]`

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use codeforge_config::{EmbeddingSettings, Settings};
use codeforge_ide::structure::{Around, Weights, last_segment, rank_structural};
use codeforge_ide::{Related, retrieval_query};
use codeforge_index::{CancelFlag, NameEntry, SearchQuery, UpdateRequest, WorkspaceIndex};
use codeforge_syntax::{Language, SymbolKind, extract};

struct Args {
    name: String,
    path: PathBuf,
    cache: PathBuf,
    sample: usize,
    seed: u64,
    k: usize,
    embed: bool,
}

fn args() -> Args {
    let mut a = Args {
        name: "corpus".into(),
        path: PathBuf::from("."),
        cache: std::env::temp_dir().join("codeforge-bench-retrieval"),
        sample: 300,
        seed: 17,
        k: 10,
        embed: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().expect("a value after the flag");
        match x.as_str() {
            "--name" => a.name = val(),
            "--path" => a.path = PathBuf::from(val()),
            "--cache" => a.cache = PathBuf::from(val()),
            "--sample" => a.sample = val().parse().expect("--sample N"),
            "--seed" => a.seed = val().parse().expect("--seed N"),
            "--k" => a.k = val().parse().expect("--k N"),
            "--embed" => a.embed = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Deterministic shuffle (xorshift), so every row of a run sees the same targets.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Names (deduplicated, in rank order) of the first `k` distinct names of `ranked`.
fn top_names<'a>(ranked: impl Iterator<Item = &'a str>, k: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in ranked {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
        if out.len() == k {
            break;
        }
    }
    out
}

/// The kinds of evidence of [`Weights`], each measured alone.
const ABLATIONS: &[&str] = &[
    "import",
    "sibling_calls",
    "same_scope",
    "signature_type",
    "type_member",
    "caller_calls",
    "hybrid",
    "structure_without_hybrid",
];

fn ablations(w: &Weights) -> Vec<Weights> {
    let zero = Weights {
        import: 0.0,
        sibling_calls: 0.0,
        same_scope: 0.0,
        signature_type: 0.0,
        type_member: 0.0,
        caller_calls: 0.0,
        hybrid: 0.0,
    };
    ABLATIONS
        .iter()
        .map(|name| {
            let mut only = zero;
            match *name {
                "import" => only.import = w.import,
                "sibling_calls" => only.sibling_calls = w.sibling_calls,
                "same_scope" => only.same_scope = w.same_scope,
                "signature_type" => only.signature_type = w.signature_type,
                "type_member" => only.type_member = w.type_member,
                "caller_calls" => only.caller_calls = w.caller_calls,
                "hybrid" => only.hybrid = w.hybrid,
                _ => {
                    only = *w;
                    only.hybrid = 0.0;
                }
            }
            only
        })
        .collect()
}

fn occurs_as_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(ident)
            && !text[i + word.len()..].chars().next().is_some_and(ident)
    })
}

fn recall(truth: &HashSet<String>, got: &[String]) -> f64 {
    got.iter().filter(|n| truth.contains(*n)).count() as f64 / truth.len() as f64
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let root = a.path.canonicalize()?;
    let model_dir = codeforge_config::default_embedding_model_dir(&codeforge_config::cache_dir(
        None,
        std::env::var_os(codeforge_config::CACHE_DIR_ENV),
    ));
    let settings = Settings {
        embeddings: if a.embed {
            EmbeddingSettings::Local {
                model_dir: Some(model_dir),
                batch_size: 32,
            }
        } else {
            EmbeddingSettings::None
        },
        ..Settings::default()
    };
    let t = Instant::now();
    let index = WorkspaceIndex::open(&root, &a.cache, settings).await?;
    if a.embed
        && let Some(why) = index.lexical_only_reason()
    {
        anyhow::bail!("--embed but no embeddings: {why}");
    }
    let summary = index
        .update(UpdateRequest::default(), &|_| {}, &CancelFlag::new())
        .await?;
    let index_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    index.load_names().await?;
    let names_ms = t.elapsed().as_millis() as u64;
    eprintln!(
        "{}: {} files indexed in {index_s:.1} s, name layer loaded in {names_ms} ms",
        a.name, summary.files
    );

    // Targets: documented, non-test functions and methods whose body calls or names at least
    // one repository symbol other than itself.
    let mut targets: Vec<(NameEntry, HashSet<String>)> = index
        .with_names(|t| {
            let mut paths: Vec<&str> = t.paths().collect();
            paths.sort();
            let mut out = Vec::new();
            for p in paths {
                for e in t.file(p) {
                    let callable = SymbolKind::from_name(e.kind).is_some_and(|k| k.is_callable());
                    if !callable || e.is_test || e.doc.is_none() {
                        continue;
                    }
                    let truth: HashSet<String> = e
                        .references()
                        .filter(|r| *r != e.name)
                        .filter(|r| t.defined(r).any(|d| !d.is_test))
                        .map(str::to_string)
                        .collect();
                    if !truth.is_empty() {
                        out.push((e.clone(), truth));
                    }
                }
            }
            out
        })
        .unwrap_or_default();
    let population = targets.len();
    shuffle(&mut targets, a.seed);

    let k = a.k;
    let weights = Weights::default();
    let (mut r_bm25, mut r_hybrid, mut r_struct) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ms_struct, mut ms_hybrid) = (Vec::new(), Vec::new());
    let mut truth_sizes = Vec::new();
    let mut r_alone: Vec<Vec<f64>> = vec![Vec::new(); ABLATIONS.len()];
    let mut skipped = 0usize;
    for (e, refs) in &targets {
        if r_bm25.len() == a.sample {
            break;
        }
        let Some(lang) = Language::from_name(&e.language) else {
            skipped += 1;
            continue;
        };
        let Ok(source) = std::fs::read_to_string(root.join(&*e.path)) else {
            skipped += 1;
            continue;
        };
        let file = extract(lang, &e.path, &source);
        let Some(target) = file
            .symbols
            .iter()
            .find(|s| s.qualified_name == e.qualified_name && s.start_line + 1 == e.line as usize)
        else {
            skipped += 1;
            continue;
        };
        // What the body really uses: references that occur in the body's code (not in the
        // signature, whose types `references.scm` also collects, nor only in the docstring).
        let mut body = source[target.start_byte..target.end_byte.min(source.len())].to_string();
        if let Some(i) = body.find(target.signature.trim_end()) {
            body.replace_range(..i + target.signature.trim_end().len(), "");
        }
        if let Some(d) = &target.docstring {
            body = body.replace(d.as_str(), "");
        }
        let truth: HashSet<String> = refs
            .iter()
            .filter(|r| occurs_as_word(&body, r))
            .cloned()
            .collect();
        if truth.is_empty() {
            continue;
        }
        let truth = &truth;
        let query = retrieval_query(target);
        let at = Around {
            lang,
            rel_path: &e.path,
            source: &source,
            file: &file,
            target,
        };
        let is_target = |qn: &str, path: &str| qn == e.qualified_name && path == &*e.path;

        let bm25 = index
            .store()
            .search_text(&query, None, 3 * k + 10)
            .await
            .unwrap_or_default();
        let bm25 = top_names(
            bm25.iter()
                .filter(|(r, _)| !is_target(&r.qualified_name, &r.path))
                .map(|(r, _)| r.name.as_str()),
            k,
        );

        let t = Instant::now();
        let hits = index
            .search_uncached(&SearchQuery::new(query.clone(), 3 * k + 10))
            .await?;
        ms_hybrid.push(t.elapsed().as_secs_f64() * 1e3);
        let hybrid: Vec<Related> = hits
            .into_iter()
            .filter(|h| !is_target(&h.qualified_name, &h.path))
            .filter_map(Related::from_hit)
            .collect();
        let hybrid_names = top_names(hybrid.iter().map(|h| last_segment(&h.qualified_name)), k);

        let t = Instant::now();
        let ranked = index
            .with_names(|names| rank_structural(&at, names, &hybrid, k, &weights))
            .unwrap_or_default();
        ms_struct.push(t.elapsed().as_secs_f64() * 1e3);
        let struct_names = top_names(ranked.iter().map(|h| last_segment(&h.qualified_name)), k);

        // Each kind of evidence alone (the others' weights at 0), with the same hybrid hits.
        for (i, only) in ablations(&weights).iter().enumerate() {
            let ranked = index
                .with_names(|names| rank_structural(&at, names, &hybrid, k, only))
                .unwrap_or_default();
            let got = top_names(ranked.iter().map(|h| last_segment(&h.qualified_name)), k);
            r_alone[i].push(recall(truth, &got));
        }
        r_bm25.push(recall(truth, &bm25));
        r_hybrid.push(recall(truth, &hybrid_names));
        r_struct.push(recall(truth, &struct_names));
        truth_sizes.push(truth.len() as f64);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let report = serde_json::json!({
        "corpus": a.name,
        "symbols": index.with_names(|t| t.len()).unwrap_or(0),
        "vectors": a.embed,
        "population": population,
        "targets": r_bm25.len(),
        "skipped": skipped,
        "k": k,
        "truth_mean": format!("{:.1}", mean(&truth_sizes)),
        "recall_bm25": format!("{:.3}", mean(&r_bm25)),
        "recall_hybrid": format!("{:.3}", mean(&r_hybrid)),
        "recall_structural": format!("{:.3}", mean(&r_struct)),
        "hybrid_ms_p50": format!("{:.1}", pct(&mut ms_hybrid.clone(), 0.5)),
        "structural_ms_p50": format!("{:.2}", pct(&mut ms_struct.clone(), 0.5)),
        "structural_ms_p95": format!("{:.2}", pct(&mut ms_struct, 0.95)),
        "index_s": format!("{index_s:.1}"),
        "names_load_ms": names_ms,
    });
    let mut report = report;
    for (i, name) in ABLATIONS.iter().enumerate() {
        report[format!("recall_only_{name}")] = format!("{:.3}", mean(&r_alone[i])).into();
    }
    println!("{report}");
    Ok(())
}
