//! Server overhead per generation and per completion, model time excluded: retrieval from the
//! real index, context, prompt and post-processing, with a scripted model that answers at once.
//! Completion is measured as a user types: four requests at successive lines of each function's
//! body, 300 ms apart (the model's and the typist's time, not counted). Prints one JSON line.
//! Usage: `bench_overhead --path DIR --cache DIR [--n N]` (indexes DIR lexically first).

use std::time::{Duration, Instant};

use codeforge_config::{EmbeddingSettings, Settings};
use codeforge_ide::{
    CompletionContexts, CompletionInput, CompletionRepo, GenerateInput, Retriever, complete,
    generate_function,
};
use codeforge_index::{CancelFlag, Progress, UpdateRequest, WorkspaceIndex};
use codeforge_model::Scripted;
use codeforge_syntax::{Language, extract};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut path = None;
    let mut cache = None;
    let mut n = 100usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--path" => path = it.next().map(std::path::PathBuf::from),
            "--cache" => cache = it.next().map(std::path::PathBuf::from),
            "--n" => n = it.next().unwrap().parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let (root, cache) = (path.expect("--path"), cache.expect("--cache"));
    let mut settings = Settings::default();
    settings.embeddings = EmbeddingSettings::None;
    let index = std::sync::Arc::new(WorkspaceIndex::open(&root, &cache, settings.clone()).await?);
    let t = Instant::now();
    let s = index
        .update(
            UpdateRequest::default(),
            &|_: Progress| {},
            &CancelFlag::new(),
        )
        .await?;
    let index_s = t.elapsed().as_secs_f64();
    // The language server loads the name layer after the first index; so does this.
    let t = Instant::now();
    index.load_names().await?;
    let names_load_s = t.elapsed().as_secs_f64();
    // Targets: the first callable of every k-th source file, spread over the tree.
    let opts = codeforge_index::walk::WalkOptions {
        max_file_size: settings.index.max_file_size,
        exclude: &[],
        languages: &Language::ALL,
    };
    let mut files = codeforge_index::walk::walk(index.root(), &opts)?.candidates;
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    let step = (files.len() / n).max(1);
    let model = Scripted::always("```\nreturn 0;\n```");
    // One completion-context cache for the workspace, as the language server keeps.
    let repo = CompletionRepo::new(index.clone() as std::sync::Arc<dyn Retriever>, "bench");
    let (mut warm_times, mut warmed) = (Vec::new(), 0usize);
    let mut times: Vec<Duration> = Vec::new();
    let (mut comp_first, mut comp_all, mut with_context) = (Vec::new(), Vec::new(), 0usize);
    for f in files.iter().step_by(step).take(n) {
        let lang = f.language;
        let Ok(source) = std::fs::read_to_string(&f.abs_path) else {
            continue;
        };
        let Some(sym) = extract(lang, &f.rel_path, &source)
            .symbols
            .into_iter()
            .find(|s| s.kind.is_callable())
        else {
            continue;
        };
        let t = Instant::now();
        let r = generate_function(
            &model,
            Some(index.as_ref() as &dyn Retriever),
            &settings.generation,
            None,
            GenerateInput {
                language: lang,
                rel_path: &f.rel_path,
                source: &source,
                line: sym.start_line,
                allow_implemented: true,
            },
            &|_| {},
        )
        .await;
        if r.is_ok() {
            times.push(t.elapsed());
        }
        // What opening the file costs in the background: every function's completion context
        // (a cache of its own, so the requests below start cold).
        let t = Instant::now();
        warmed += CompletionContexts::new()
            .warm(index.clone(), lang, &f.rel_path, &source)
            .await;
        warm_times.push(t.elapsed());
        // Completion while typing in the body: the ends of its first lines after the header.
        let body_lines: Vec<usize> = source[sym.start_byte..sym.end_byte.min(source.len())]
            .match_indices('\n')
            .map(|(i, _)| sym.start_byte + i)
            .skip(1)
            .take(4)
            .collect();
        for (k, offset) in body_lines.into_iter().enumerate() {
            let c = complete(
                &model,
                Some(repo.clone()),
                &settings.generation,
                CompletionInput {
                    language: lang,
                    rel_path: &f.rel_path,
                    source: &source,
                    offset,
                },
            )
            .await;
            if let Ok(c) = c {
                let d = Duration::from_millis(c.overhead_ms);
                if k == 0 {
                    comp_first.push(d);
                }
                comp_all.push(d);
                with_context += usize::from(c.context_hits > 0);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    times.sort();
    comp_first.sort();
    comp_all.sort();
    warm_times.sort();
    let at = |v: &Vec<Duration>, p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| (d.as_secs_f64() * 10000.0).round() / 10.0)
    };
    let pct = |p: f64| at(&times, p);
    println!(
        "{}",
        serde_json::json!({
            "workspace": root, "symbols": s.symbols, "index_s": (index_s * 10.0).round() / 10.0, "names_load_s": (names_load_s * 100.0).round() / 100.0,
            "generations": times.len(),
            "overhead_p50_ms": (pct(0.5) * 10.0).round() / 10.0,
            "overhead_p95_ms": (pct(0.95) * 10.0).round() / 10.0,
            "completions": comp_all.len(),
            "completion_overhead_p50_ms": at(&comp_all, 0.5),
            "completion_overhead_p95_ms": at(&comp_all, 0.95),
            "completion_first_in_function_p95_ms": at(&comp_first, 0.95),
            "completions_with_repository_context": with_context,
            "warm_file_p50_ms": at(&warm_times, 0.5),
            "warm_file_p95_ms": at(&warm_times, 0.95),
            "warmed_functions": warmed,
        })
    );
    Ok(())
}
