//! `codeforge generate FILE:LINE` and `codeforge model prepare`: the generation pipeline from the
//! command line, with the same settings, index and backend the language server uses.

use std::path::{Path, PathBuf};

use anyhow::Context;
use codeforge_ide::{GenerateInput, GenerateOutcome, GenerateStatus, Retriever, generate_function, load_backend};
use codeforge_index::UpdateRequest;
use codeforge_syntax::Language;

use crate::{open_index, run_update, settings_for, usage};

fn parse_target(target: &str) -> anyhow::Result<(PathBuf, usize)> {
    let (file, line) = target
        .rsplit_once(':')
        .ok_or_else(|| usage(format!("expected FILE:LINE, got `{target}`")))?;
    let line: usize = line
        .parse()
        .ok()
        .filter(|l| *l >= 1)
        .ok_or_else(|| usage(format!("LINE must be a number from 1 (got `{line}`)")))?;
    Ok((PathBuf::from(file), line - 1))
}

/// The nearest ancestor holding `.git`, `codeforge.toml` or a project file of the language.
fn find_root(file: &Path, lang: Language) -> PathBuf {
    let start = file.parent().unwrap_or(Path::new("."));
    for dir in start.ancestors() {
        if dir.join(".git").exists() || dir.join(codeforge_config::WORKSPACE_CONFIG_FILE).is_file() {
            return dir.to_path_buf();
        }
        if lang.spec().project_roots.iter().any(|p| dir.join(p).is_file()) {
            return dir.to_path_buf();
        }
    }
    start.to_path_buf()
}

fn edit_json(source: &str, o: &GenerateOutcome) -> serde_json::Value {
    match &o.edit {
        None => serde_json::Value::Null,
        Some(e) => {
            let index = codeforge_lsp::line_index::LineIndex::new(source);
            let (sl, sc) = index.position(source, e.start);
            let (el, ec) = index.position(source, e.end);
            serde_json::json!({
                "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
                "start_byte": e.start,
                "end_byte": e.end,
                "new_text": e.new_text,
            })
        }
    }
}

pub(crate) async fn cmd_generate(
    target: &str,
    json: bool,
    explain: bool,
    workspace: Option<PathBuf>,
    force: bool,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let (file, line) = parse_target(target)?;
    let lang = Language::from_path(&file)
        .ok_or_else(|| usage(format!("{}: not a Python, Rust or Java file", file.display())))?;
    let source = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let file = file.canonicalize()?;
    let root = match workspace {
        Some(w) => w.canonicalize().with_context(|| format!("workspace {}", w.display()))?,
        None => find_root(&file, lang),
    };
    let rel = file
        .strip_prefix(&root)
        .map_err(|_| usage(format!("{} is not inside the workspace {}", file.display(), root.display())))?
        .to_string_lossy()
        .replace('\\', "/");
    let settings = settings_for(&root)?;
    // Say what is wrong with the target before any slow work (index, model load).
    match codeforge_syntax::function_at_line(lang, &rel, &source, line) {
        None => return Err(usage(format!("{}:{}: no function or method here", rel, line + 1))),
        Some(t) if t.stub == codeforge_syntax::StubKind::Implemented && !force => {
            return Err(usage(format!(
                "`{}` already has a body; pass --force to generate it again",
                t.symbol.qualified_name
            )));
        }
        Some(_) => {}
    }

    // Retrieval: bring the index up to date lexically (vectors already computed are used).
    let index = match open_index(&root, cache_dir).await {
        Ok(ix) => match run_update(&ix, UpdateRequest { skip_embedding: true, ..Default::default() }).await {
            Ok(_) => Some(ix),
            Err(e) => {
                eprintln!("codeforge: note: index update failed ({e:#}); generating without repository context");
                Some(ix)
            }
        },
        Err(e) => {
            eprintln!("codeforge: note: no index ({e:#}); generating without repository context");
            None
        }
    };
    let gen_settings = settings.generation.clone();
    let cache = cache_dir.to_path_buf();
    eprintln!("codeforge: loading the model…");
    let backend = tokio::task::spawn_blocking(move || {
        load_backend(&gen_settings, &cache, &|k| std::env::var(k).ok())
    })
    .await??;
    let progress = |msg: &str| eprintln!("codeforge: {msg}…");
    let outcome = generate_function(
        backend.as_ref(),
        index.as_ref().map(|i| i as &dyn Retriever),
        &settings.generation,
        GenerateInput { language: lang, rel_path: &rel, source: &source, line, allow_implemented: force },
        &progress,
    )
    .await
    .map_err(|e| match e {
        codeforge_ide::GenerateError::NoFunction { .. } | codeforge_ide::GenerateError::Implemented { .. } => {
            usage(e.to_string())
        }
        other => anyhow::anyhow!(other),
    })?;

    if json {
        let mut v = serde_json::json!({
            "status": outcome.status,
            "code": outcome.code,
            "edit": edit_json(&source, &outcome),
            "target": outcome.target,
            "file": rel,
            "chosen": outcome.chosen,
            "elapsed_ms": outcome.elapsed_ms,
            "backend": outcome.explain.backend,
            "usage": outcome.explain.usage,
        });
        if explain {
            v["explain"] = serde_json::to_value(&outcome.explain)?;
            v["candidates"] = serde_json::to_value(&outcome.candidates)?;
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        if explain {
            println!("── backend: {}", outcome.explain.backend);
            println!("── context ({} prompt tokens):", outcome.explain.prompt_tokens);
            for c in &outcome.explain.context {
                println!("   {:<8} {:>5} tok  {:?}  {}", c.status, c.tokens, c.kind, c.label);
            }
            for n in &outcome.explain.notes {
                println!("   note: {n}");
            }
            println!("── prompt:\n{}", outcome.explain.prompt);
            for c in &outcome.candidates {
                println!(
                    "── candidate {}: {}",
                    c.index,
                    c.rejected.as_deref().unwrap_or(if Some(c.index) == outcome.chosen { "chosen" } else { "usable" })
                );
                println!("{}", c.raw);
            }
            println!("── result:");
        }
        if let Some(code) = &outcome.code {
            println!("{code}");
        }
        eprintln!(
            "codeforge: {} `{}` in {:.1} s ({} prompt tokens, {} generated; unverified: test runs come with verification)",
            match outcome.status {
                GenerateStatus::Generated => "generated",
                GenerateStatus::NoValidCandidate => "no usable candidate for",
            },
            outcome.target.qualified_name,
            outcome.elapsed_ms as f64 / 1000.0,
            outcome.explain.usage.prompt_tokens,
            outcome.explain.usage.completion_tokens,
        );
    }
    if outcome.status == GenerateStatus::NoValidCandidate {
        let why: Vec<String> = outcome
            .candidates
            .iter()
            .filter_map(|c| c.rejected.as_ref().map(|r| format!("candidate {}: {r}", c.index)))
            .collect();
        anyhow::bail!("the model's answers were not usable ({})", why.join("; "));
    }
    Ok(())
}

pub(crate) async fn cmd_model_prepare(json: bool, cache_dir: &Path) -> anyhow::Result<()> {
    let gguf = codeforge_config::default_generation_gguf(cache_dir);
    let dir = gguf.parent().map(Path::to_path_buf).unwrap_or_default();
    let t0 = std::time::Instant::now();
    let model = tokio::task::spawn_blocking(move || {
        codeforge_model::EmbeddedQwen::load(&codeforge_model::EmbeddedConfig { gguf, cache_dir: dir, max_context: 4096 })
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string(&model.report)?);
    } else {
        println!(
            "embedded model ready: {} (requantized: {}; prepare {} ms, load {} ms, total {:.1} s)",
            model.report.gguf.display(),
            model.report.requantized,
            model.report.prepare_ms,
            model.report.load_ms,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
