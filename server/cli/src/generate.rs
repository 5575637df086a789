//! `codeforge generate FILE:LINE` and `codeforge model prepare`: the generation pipeline from the
//! command line, with the same settings, index and backend the language server uses.

use std::path::{Path, PathBuf};

use anyhow::Context;
use codeforge_config::{ContextRanking, TrustSetting};
use codeforge_ide::{
    GenerateInput, GenerateStatus, Outcome, Retriever, SearchOnly, VerifyContext,
    generate_function, load_backend,
};
use codeforge_index::UpdateRequest;
use codeforge_lsp::proto;
use codeforge_syntax::Language;
use codeforge_verify::TrustStore;

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
        if dir.join(".git").exists() || dir.join(codeforge_config::WORKSPACE_CONFIG_FILE).is_file()
        {
            return dir.to_path_buf();
        }
        if lang
            .spec()
            .project_roots
            .iter()
            .any(|p| dir.join(p).is_file())
        {
            return dir.to_path_buf();
        }
    }
    start.to_path_buf()
}

fn one_edit_json(source: &str, e: &codeforge_syntax::BodyEdit) -> serde_json::Value {
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

/// The body's edit, with the imports and helpers it needs as `additional_edits` (all against
/// the source as it was read).
fn edit_json(source: &str, o: &Outcome) -> serde_json::Value {
    match &o.edit {
        None => serde_json::Value::Null,
        Some(e) => {
            let mut j = one_edit_json(source, e);
            j["additional_edits"] = o
                .extra_edits
                .iter()
                .map(|x| one_edit_json(source, x))
                .collect();
            j
        }
    }
}

/// Whether `codeforge generate` runs tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerifyMode {
    /// `--no-verify`.
    Off,
    /// `--trust`: run them this time.
    Trusted,
    /// As configured: `verify.trust = "always"` in the user's own settings (or in a
    /// `codeforge.toml` the user approved), or a workspace trusted earlier (in the editor or with
    /// `codeforge trust`). A workspace's file cannot trust itself.
    Configured,
}

fn trusted(root: &Path, setting: TrustSetting, mode: VerifyMode) -> Result<(), String> {
    if mode == VerifyMode::Trusted {
        return Ok(());
    }
    let store = TrustStore::default_path().map(TrustStore::new);
    codeforge_verify::trust::known_trust(setting, store.as_ref(), root).unwrap_or_else(|| {
        Err(format!(
            "the workspace is not trusted to run tests: pass --trust, or run `codeforge trust {}`",
            root.display()
        ))
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn cmd_generate(
    target: &str,
    json: bool,
    explain: bool,
    workspace: Option<PathBuf>,
    force: bool,
    verify_mode: VerifyMode,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let (file, line) = parse_target(target)?;
    let lang = Language::from_path(&file).ok_or_else(|| {
        usage(format!(
            "{}: not a Python, Rust or Java file",
            file.display()
        ))
    })?;
    let source =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let file = file.canonicalize()?;
    let root = match workspace {
        Some(w) => w
            .canonicalize()
            .with_context(|| format!("workspace {}", w.display()))?,
        None => find_root(&file, lang),
    };
    let rel = file
        .strip_prefix(&root)
        .map_err(|_| {
            usage(format!(
                "{} is not inside the workspace {}",
                file.display(),
                root.display()
            ))
        })?
        .to_string_lossy()
        .replace('\\', "/");
    let settings = settings_for(&root)?;
    // Say what is wrong with the target before any slow work (index, model load).
    match codeforge_syntax::function_at_line(lang, &rel, &source, line) {
        None => {
            return Err(usage(format!(
                "{}:{}: no function or method here",
                rel,
                line + 1
            )));
        }
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
        Ok(ix) => match run_update(
            &ix,
            UpdateRequest {
                skip_embedding: true,
                ..Default::default()
            },
        )
        .await
        {
            Ok(_) => Some(ix),
            Err(e) => {
                eprintln!(
                    "codeforge: note: index update failed ({e:#}); generating without repository context"
                );
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
    let verify = (verify_mode != VerifyMode::Off).then(|| VerifyContext {
        root: root.clone(),
        cache_dir: cache_dir.to_path_buf(),
        settings: settings.verify.clone(),
        trusted: codeforge_ide::trust_known(trusted(&root, settings.verify.trust, verify_mode)),
    });
    let search_only = index.as_ref().map(SearchOnly);
    let retriever = match settings.generation.context_ranking {
        ContextRanking::Structure => index.as_ref().map(|i| i as &dyn Retriever),
        ContextRanking::Search => search_only.as_ref().map(|s| s as &dyn Retriever),
    };
    let outcome = generate_function(
        backend.as_ref(),
        retriever,
        &settings.generation,
        verify.as_ref(),
        GenerateInput {
            language: lang,
            rel_path: &rel,
            source: &source,
            line,
            allow_implemented: force,
        },
        &progress,
    )
    .await
    .map_err(|e| match e {
        codeforge_ide::GenerateError::NoFunction { .. }
        | codeforge_ide::GenerateError::Implemented { .. } => usage(e.to_string()),
        other => anyhow::anyhow!(other),
    })?;

    if json {
        let mut v = serde_json::json!({
            "status": proto::GenerateStatus::from(outcome.status),
            "code": outcome.code,
            "edit": edit_json(&source, &outcome),
            "target": proto::TargetInfo::from(&outcome.target),
            "file": rel,
            "chosen": outcome.chosen,
            "elapsed_ms": outcome.elapsed_ms,
            "backend": outcome.explain.backend,
            "usage": proto::Usage::from(&outcome.explain.usage),
            "verification": verification_json(&outcome, explain),
        });
        if explain {
            v["explain"] = serde_json::to_value(proto::Explain::from(&outcome.explain))?;
            let candidates: Vec<proto::Candidate> = outcome
                .candidates
                .iter()
                .map(proto::Candidate::from)
                .collect();
            v["candidates"] = serde_json::to_value(candidates)?;
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        if explain {
            println!("── backend: {}", outcome.explain.backend);
            println!(
                "── context ({} prompt tokens):",
                outcome.explain.prompt_tokens
            );
            for c in &outcome.explain.context {
                println!(
                    "   {:<8} {:>5} tok  {:?}  {}",
                    c.status, c.tokens, c.kind, c.label
                );
            }
            for n in &outcome.explain.notes {
                println!("   note: {n}");
            }
            println!("── prompt:\n{}", outcome.explain.prompt);
            for c in &outcome.candidates {
                println!(
                    "── candidate {}: {}",
                    c.index,
                    c.rejected
                        .as_deref()
                        .unwrap_or(if Some(c.index) == outcome.chosen {
                            "chosen"
                        } else {
                            "usable"
                        })
                );
                println!("{}", c.raw);
            }
            println!("── result:");
        }
        if let Some(code) = &outcome.code {
            println!("{code}");
        }
        if explain && let Some(v) = &outcome.verification {
            for r in &v.runs {
                println!(
                    "── test run: candidate {} (round {}): {} passed, {} failed{}{}",
                    r.candidate,
                    r.round,
                    r.report.passed,
                    r.report.failed,
                    if r.report.compiled {
                        ""
                    } else {
                        ", does not compile"
                    },
                    r.fingerprint
                        .as_deref()
                        .map(|f| format!(", behaviour {}", &f[..f.len().min(12)]))
                        .unwrap_or_default()
                );
                println!("{}", r.report.output);
            }
        }
        eprintln!(
            "codeforge: {} `{}` in {:.1} s ({} prompt tokens, {} generated) — {}",
            match outcome.status {
                GenerateStatus::Generated => "generated",
                GenerateStatus::NoValidCandidate => "no usable candidate for",
                GenerateStatus::NoPassingCandidate => "no candidate passed the tests for",
            },
            outcome.target.qualified_name,
            outcome.elapsed_ms as f64 / 1000.0,
            outcome.explain.usage.prompt_tokens,
            outcome.explain.usage.completion_tokens,
            outcome
                .verification
                .as_ref()
                .map_or("unverified: tests not run (--no-verify)", |v| v
                    .label
                    .as_str()),
        );
        for n in outcome.verification.iter().flat_map(|v| &v.notes) {
            eprintln!("codeforge: note: {n}");
        }
    }
    if outcome.status == GenerateStatus::NoPassingCandidate {
        anyhow::bail!(
            "no candidate passed the tests ({}); nothing shown (set verify.show_unverified = true to see the best one)",
            outcome
                .verification
                .as_ref()
                .map_or("", |v| v.label.as_str())
        );
    }
    if outcome.status == GenerateStatus::NoValidCandidate {
        let why: Vec<String> = outcome
            .candidates
            .iter()
            .filter_map(|c| {
                c.rejected
                    .as_ref()
                    .map(|r| format!("candidate {}: {r}", c.index))
            })
            .collect();
        anyhow::bail!("the model's answers were not usable ({})", why.join("; "));
    }
    Ok(())
}

/// `verification` in `--json`: the summary fields, and with `--explain` every run's output.
fn verification_json(o: &Outcome, explain: bool) -> serde_json::Value {
    let Some(v) = &o.verification else {
        return serde_json::json!({"status": "unverified", "reason": "tests not run (--no-verify)", "label": "⚠ unverified: tests not run"});
    };
    let mut j = serde_json::json!({
        "status": proto::VerifyStatus::from(v.status),
        "reason": v.reason,
        "label": v.label,
        "tests_from": v.tests_from.as_str(),
        "selected_tests": v.selected_tests,
        "passed": v.passed,
        "failed": v.failed,
        "rounds": v.rounds,
        "candidates": v.candidates,
        "agreement": v.agreement,
        "sandbox": v.sandbox,
        "notes": v.notes,
        "elapsed_ms": v.elapsed_ms,
    });
    if explain {
        let runs: Vec<proto::CandidateRun> = v.runs.iter().map(proto::CandidateRun::from).collect();
        j["runs"] = serde_json::to_value(runs).unwrap_or_default();
    }
    j
}

pub(crate) fn cmd_feedback_export(
    format: &str,
    output: Option<&Path>,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    use codeforge_verify::feedback::{ExportFormat, export, load, store_path};
    let fmt = match format {
        "sft" => ExportFormat::Sft,
        "dpo" => ExportFormat::Dpo,
        other => {
            return Err(usage(format!(
                "--format must be sft or dpo (got `{other}`)"
            )));
        }
    };
    let attempts = load(cache_dir);
    let n = match output {
        Some(p) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            );
            let n = export(&attempts, fmt, &mut f)?;
            std::io::Write::flush(&mut f)?;
            n
        }
        None => export(&attempts, fmt, &mut std::io::stdout().lock())?,
    };
    eprintln!(
        "codeforge: {n} {format} examples from {} attempts in {}",
        attempts.len(),
        store_path(cache_dir).display()
    );
    Ok(())
}

/// Loads (requantizing once) the embedded model from the cache dir.
async fn load_embedded(cache_dir: &Path) -> anyhow::Result<codeforge_model::EmbeddedQwen> {
    let gguf = codeforge_config::default_generation_gguf(cache_dir);
    let dir = gguf.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(tokio::task::spawn_blocking(move || {
        codeforge_model::EmbeddedQwen::load(&codeforge_model::EmbeddedConfig {
            gguf,
            cache_dir: dir,
            max_context: 4096,
        })
    })
    .await??)
}

pub(crate) async fn cmd_model_prepare(json: bool, cache_dir: &Path) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let model = load_embedded(cache_dir).await?;
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

pub(crate) async fn cmd_model_run(
    prompt: &str,
    max_tokens: u32,
    json: bool,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    use codeforge_model::Backend;
    let model = load_embedded(cache_dir).await?;
    let mut req = codeforge_model::Request::new(codeforge_model::Prompt::Text(prompt.to_string()));
    req.max_tokens = max_tokens;
    req.temperature = 0.0;
    let g = model.generate(req).await?;
    let sample = g
        .samples
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the model returned no sample"))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "text": sample.text,
                "finish": sample.finish,
                "prompt_tokens": g.usage.prompt_tokens,
                "completion_tokens": g.usage.completion_tokens,
            })
        );
    } else {
        println!("{}", sample.text);
    }
    Ok(())
}
