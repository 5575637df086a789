//! Typed, closed configuration: layers from `codeforge.toml`, LSP `initializationOptions` and
//! `workspace/didChangeConfiguration` are parsed (unknown keys rejected with their path), merged in
//! order, and validated into [`Settings`]. No I/O here: callers read files and environment.
//! A workspace's own `codeforge.toml` comes from whoever wrote the repository: callers pass it
//! through [`restrict_workspace_layer`] unless the user approved that file's exact bytes.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Name of the optional per-workspace configuration file.
pub const WORKSPACE_CONFIG_FILE: &str = "codeforge.toml";
/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "CODEFORGE_CACHE_DIR";
/// Default size limit of an indexed file.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Name of the user's own configuration file inside [`user_config_dir`].
pub const USER_CONFIG_FILE: &str = "config.toml";

/// Every key a workspace's own `codeforge.toml` may not set until the user approves that file:
/// each one can send code or keys elsewhere (a URL, the name of a variable holding a key, the
/// `openai` backends), load code or weights from a path, run a program, or loosen what running
/// the workspace's tests may do. See [`restrict_workspace_layer`].
pub const RESTRICTED_WORKSPACE_KEYS: [&str; 14] = [
    "generation.backend",
    "generation.url",
    "generation.api_key_env",
    "generation.gguf",
    "embeddings.backend",
    "embeddings.url",
    "embeddings.api_key_env",
    "embeddings.model_dir",
    "verify.trust",
    "verify.python",
    "verify.maven_settings",
    "verify.network",
    "verify.sandbox",
    "verify.pass_env",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

/// One layer of configuration: every field optional, unknown keys rejected.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub index: Option<IndexLayer>,
    pub embeddings: Option<EmbeddingsLayer>,
    pub generation: Option<GenerationLayer>,
    pub verify: Option<VerifyLayer>,
}

/// Whether test runs may happen in a workspace without asking.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrustSetting {
    /// Ask once per workspace and remember the answer (the default).
    Ask,
    /// Pre-trusted: run the workspace's tests without asking.
    Always,
    /// Never run anything: results stay unverified.
    Never,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerifyLayer {
    /// Run the workspace's tests on candidates (in a scratch copy).
    pub enabled: Option<bool>,
    pub trust: Option<TrustSetting>,
    /// Refinement rounds after the first batch fails.
    pub rounds: Option<u32>,
    /// Wall-clock budget for a whole verification, seconds.
    pub time_budget_s: Option<u64>,
    /// Timeout of one test run, seconds.
    pub test_timeout_s: Option<u64>,
    /// Most tests selected for one target.
    pub max_tests: Option<usize>,
    /// A suite whose survey run (the whole suite once on the stub) took at most this many
    /// seconds runs whole for every candidate; a slower one runs only the tests that reached
    /// the target. 0: never the whole suite.
    pub whole_suite_s: Option<u64>,
    /// Show candidates that failed (marked) when tests exist; by default only passing ones are shown.
    pub show_unverified: Option<bool>,
    /// When no test exists, ask the model to write some from the docstring.
    pub generate_tests: Option<bool>,
    /// Python interpreter with pytest (default: the workspace's `.venv`, else CodeForge's own).
    pub python: Option<PathBuf>,
    /// A Maven `settings.xml` passed with `-s` (offline mirrors).
    pub maven_settings: Option<PathBuf>,
    /// Let test runs reach the network (default: cut off where the machine allows).
    pub network: Option<bool>,
    /// The least isolation a test run accepts: "full" (the default: refuse to run where the
    /// kernel cannot give the rootless sandbox), "reduced" (Landlock + seccomp without
    /// namespaces is enough) or "none" (run even with no isolation).
    pub sandbox: Option<SandboxMinimum>,
    /// Environment variables passed into test runs beside the sandbox's allowlist (`PATH`,
    /// `LANG`, …); a name that looks like a secret (`*_TOKEN`, `*_KEY`, …) passes only when
    /// listed here, and a variable named by an `api_key_env` never does.
    pub pass_env: Option<Vec<String>>,
}

/// The least isolation a test run accepts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMinimum {
    #[default]
    Full,
    Reduced,
    None,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexLayer {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: Option<u64>,
    /// Extra gitignore-style patterns to leave out.
    pub exclude: Option<Vec<String>>,
    /// Languages to index (`python`, `rust`, `java`).
    pub languages: Option<Vec<String>>,
    /// Index automatically when the language server starts.
    pub on_startup: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingBackendKind {
    /// all-MiniLM-L6-v2 in-process (the default).
    Local,
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Openai,
    /// No vectors: lexical search only.
    None,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsLayer {
    pub backend: Option<EmbeddingBackendKind>,
    /// Local: directory holding `model.safetensors`, `tokenizer.json`, `config.json`.
    pub model_dir: Option<PathBuf>,
    /// OpenAI-compatible: base URL, e.g. `http://localhost:8000/v1`.
    pub url: Option<String>,
    /// OpenAI-compatible: model name.
    pub model: Option<String>,
    /// OpenAI-compatible: name of the environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// OpenAI-compatible: request timeout in seconds.
    pub timeout_s: Option<u64>,
    /// Texts per embedding call.
    pub batch_size: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GenerationBackendKind {
    /// Qwen2.5-Coder-0.5B-Instruct (or `gguf`) in-process (the default).
    Embedded,
    /// An OpenAI-compatible server: vLLM, SGLang, DashScope, Ollama, llama.cpp's server.
    Openai,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PlanSetting {
    Off,
    Drop,
    Comments,
}

/// How the repository hits offered to a prompt are ranked.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContextRanking {
    /// The repository's structure around the target (imports, what the file's other
    /// definitions call, signature types, callers), fused with the search hits: the default.
    Structure,
    /// The index's hybrid search hits for the target's name, signature and docstring, as they
    /// are.
    Search,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerationLayer {
    pub backend: Option<GenerationBackendKind>,
    /// OpenAI-compatible: base URL, e.g. `http://localhost:8000/v1`.
    pub url: Option<String>,
    pub model: Option<String>,
    /// Name of the environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Completion asks in Qwen2.5-Coder's FIM format (`<|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>`)
    /// instead of a chat prompt: for base models behind `openai`, and for the embedded model.
    pub fim: Option<bool>,
    /// The server honours `n` (vLLM, SGLang: yes; Ollama, llama.cpp: no).
    pub supports_n: Option<bool>,
    pub connect_timeout_s: Option<u64>,
    pub first_token_timeout_s: Option<u64>,
    pub timeout_s: Option<u64>,
    pub retries: Option<u32>,
    /// Embedded: a Qwen2 GGUF to run instead of the default.
    pub gguf: Option<PathBuf>,
    /// Samples per request.
    pub n: Option<u32>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Prompt budget in tokens.
    pub prompt_tokens: Option<usize>,
    /// Prompt budget of a completion at the cursor, in tokens (smaller: what matters is near the
    /// cursor, and every token is read before the first item).
    pub completion_prompt_tokens: Option<usize>,
    /// Repository hits offered to a prompt.
    pub context_hits: Option<usize>,
    /// How those hits are ranked: `structure` (default) or `search`.
    pub context_ranking: Option<ContextRanking>,
    /// Plan before code: `off`, `drop` (default) or `comments`.
    pub plan: Option<PlanSetting>,
}

/// Resolved generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSettings {
    pub backend: GenerationBackend,
    pub n: u32,
    pub temperature: f32,
    pub max_tokens: u32,
    pub prompt_tokens: usize,
    /// A completion's prompt budget (the line item waits for the model to read all of it).
    pub completion_prompt_tokens: usize,
    pub context_hits: usize,
    pub context_ranking: ContextRanking,
    pub plan: PlanSetting,
    /// Completion prompts in the model's FIM format rather than as a chat (see the layer's `fim`);
    /// `None`: the backend's own choice (`Backend::fim`, set per backend by the infilling
    /// benchmark, `tests/bench/infilling/`).
    pub fim: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GenerationBackend {
    Embedded {
        /// `None`: the Qwen2.5-Coder-0.5B-Instruct GGUF installed by the setup.
        gguf: Option<PathBuf>,
    },
    Openai {
        url: String,
        model: String,
        api_key_env: Option<String>,
        fim: bool,
        supports_n: bool,
        connect_timeout_s: u64,
        first_token_timeout_s: u64,
        timeout_s: u64,
        retries: u32,
    },
}

/// Resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub index: IndexSettings,
    pub embeddings: EmbeddingSettings,
    pub generation: GenerationSettings,
    pub verify: VerifySettings,
}

/// Resolved verification settings.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifySettings {
    pub enabled: bool,
    pub trust: TrustSetting,
    pub rounds: u32,
    pub time_budget_s: u64,
    pub test_timeout_s: u64,
    pub max_tests: usize,
    pub whole_suite_s: u64,
    pub show_unverified: bool,
    pub generate_tests: bool,
    pub python: Option<PathBuf>,
    pub maven_settings: Option<PathBuf>,
    pub network: bool,
    pub sandbox: SandboxMinimum,
    pub pass_env: Vec<String>,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            enabled: true,
            trust: TrustSetting::Ask,
            rounds: 2,
            time_budget_s: 300,
            test_timeout_s: 120,
            max_tests: 20,
            whole_suite_s: 10,
            show_unverified: false,
            generate_tests: true,
            python: None,
            maven_settings: None,
            network: false,
            sandbox: SandboxMinimum::Full,
            pass_env: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexSettings {
    pub max_file_size: u64,
    pub exclude: Vec<String>,
    pub languages: Vec<String>,
    pub on_startup: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingSettings {
    Local {
        /// `None`: `<cache>/models/all-MiniLM-L6-v2`.
        model_dir: Option<PathBuf>,
        batch_size: usize,
    },
    Openai {
        url: String,
        model: String,
        api_key_env: Option<String>,
        timeout_s: u64,
        batch_size: usize,
    },
    None,
}

pub const KNOWN_LANGUAGES: [&str; 3] = ["python", "rust", "java"];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            index: IndexSettings {
                max_file_size: DEFAULT_MAX_FILE_SIZE,
                exclude: Vec::new(),
                languages: KNOWN_LANGUAGES.iter().map(|s| s.to_string()).collect(),
                on_startup: true,
            },
            embeddings: EmbeddingSettings::Local {
                model_dir: None,
                batch_size: 32,
            },
            generation: GenerationSettings {
                backend: GenerationBackend::Embedded { gguf: None },
                n: 1,
                temperature: 0.0,
                max_tokens: 384,
                prompt_tokens: 900,
                completion_prompt_tokens: 500,
                context_hits: 6,
                context_ranking: ContextRanking::Structure,
                plan: PlanSetting::Drop,
                fim: None,
            },
            verify: VerifySettings::default(),
        }
    }
}

/// Environment overrides for scripting, read by the caller and handed in (no I/O here):
/// `CODEFORGE_API_BASE`, `CODEFORGE_MODEL`, `CODEFORGE_REQUEST_TIMEOUT_S`. A base URL switches the
/// backend to `openai`. (`CODEFORGE_API_KEY` is read where the key is used, never stored here.)
pub fn env_layer(get: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let mut g = GenerationLayer::default();
    let mut any = false;
    if let Some(url) = get("CODEFORGE_API_BASE").filter(|v| !v.is_empty()) {
        g.backend = Some(GenerationBackendKind::Openai);
        g.url = Some(url);
        any = true;
    }
    if let Some(m) = get("CODEFORGE_MODEL").filter(|v| !v.is_empty()) {
        g.model = Some(m);
        any = true;
    }
    if let Some(t) = get("CODEFORGE_REQUEST_TIMEOUT_S").filter(|v| !v.is_empty()) {
        let secs = t.parse::<u64>().map_err(|_| ConfigError::Invalid {
            source_name: ENV_SOURCE.into(),
            message: format!("CODEFORGE_REQUEST_TIMEOUT_S must be a number of seconds (got `{t}`)"),
        })?;
        g.timeout_s = Some(secs);
        any = true;
    }
    Ok(Layer {
        generation: any.then_some(g),
        ..Layer::default()
    })
}

/// Parses a `codeforge.toml`.
pub fn parse_toml(source_name: &str, text: &str) -> Result<Layer, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        source_name: source_name.to_string(),
        message: e.message().to_string()
            + &e.span()
                .map(|s| format!(" (at byte {})", s.start))
                .unwrap_or_default(),
    })
}

/// Parses JSON settings from the editor. `null` is an empty layer. A top-level `codeforge`
/// key is unwrapped (editors often send `{"codeforge": {...}}`).
pub fn parse_json(source_name: &str, value: &serde_json::Value) -> Result<Layer, ConfigError> {
    let value = match value {
        serde_json::Value::Null => return Ok(Layer::default()),
        serde_json::Value::Object(map) if map.len() == 1 && map.contains_key("codeforge") => {
            &map["codeforge"]
        }
        v => v,
    };
    if value.is_null() {
        return Ok(Layer::default());
    }
    Layer::deserialize(value).map_err(|e| ConfigError::Parse {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })
}

/// Splits a workspace's `codeforge.toml` layer into the part that applies without the user's
/// approval and the [`RESTRICTED_WORKSPACE_KEYS`] it sets (in that list's order). A repository
/// someone cloned must not be able to send its owner's code or keys to its own server, load
/// weights or run programs it names, or trust itself to run its tests: those keys are left out
/// until the user approves the file (the caller pins that approval to the file's bytes).
/// Only values that loosen count: `backend = "local"`/`"none"`/`"embedded"`, `trust = "never"`
/// or `"ask"`, `network = false` and `sandbox = "full"` stay. When a section's
/// `backend = "openai"` is left out, its openai-only `model` and `fim` go too (they would make
/// the rest invalid).
pub fn restrict_workspace_layer(layer: &Layer) -> (Layer, Vec<&'static str>) {
    fn drop_if<T>(field: &mut Option<T>, restricted: impl Fn(&T) -> bool) -> bool {
        if field.as_ref().is_some_and(restricted) {
            *field = None;
            true
        } else {
            false
        }
    }
    fn any<T>(_: &T) -> bool {
        true
    }
    let mut safe = layer.clone();
    let mut found: Vec<&'static str> = Vec::new();
    if let Some(g) = &mut safe.generation {
        if drop_if(&mut g.backend, |b| *b == GenerationBackendKind::Openai) {
            found.push("generation.backend");
            g.model = None;
            g.fim = None;
        }
        if drop_if(&mut g.url, any) {
            found.push("generation.url");
        }
        if drop_if(&mut g.api_key_env, any) {
            found.push("generation.api_key_env");
        }
        if drop_if(&mut g.gguf, any) {
            found.push("generation.gguf");
        }
    }
    if let Some(e) = &mut safe.embeddings {
        if drop_if(&mut e.backend, |b| *b == EmbeddingBackendKind::Openai) {
            found.push("embeddings.backend");
            e.model = None;
        }
        if drop_if(&mut e.url, any) {
            found.push("embeddings.url");
        }
        if drop_if(&mut e.api_key_env, any) {
            found.push("embeddings.api_key_env");
        }
        if drop_if(&mut e.model_dir, any) {
            found.push("embeddings.model_dir");
        }
    }
    if let Some(v) = &mut safe.verify {
        if drop_if(&mut v.trust, |t| *t == TrustSetting::Always) {
            found.push("verify.trust");
        }
        if drop_if(&mut v.python, any) {
            found.push("verify.python");
        }
        if drop_if(&mut v.maven_settings, any) {
            found.push("verify.maven_settings");
        }
        if drop_if(&mut v.network, |n| *n) {
            found.push("verify.network");
        }
        if drop_if(&mut v.sandbox, |m| *m != SandboxMinimum::Full) {
            found.push("verify.sandbox");
        }
        if drop_if(&mut v.pass_env, |l| !l.is_empty()) {
            found.push("verify.pass_env");
        }
    }
    // Sections left empty are dropped (an empty section still names itself as a source).
    if safe.generation.as_ref() == Some(&GenerationLayer::default()) {
        safe.generation = None;
    }
    if safe.embeddings.as_ref() == Some(&EmbeddingsLayer::default()) {
        safe.embeddings = None;
    }
    if safe.verify.as_ref() == Some(&VerifyLayer::default()) {
        safe.verify = None;
    }
    (safe, found)
}

/// The user's CodeForge config dir, `<config>/codeforge`: `$XDG_CONFIG_HOME` when it is an
/// absolute path, else `$HOME/.config` (values handed in by the caller). It holds
/// [`USER_CONFIG_FILE`] and the trust store.
pub fn user_config_dir(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    xdg_config_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .map(|c| c.join("codeforge"))
}

/// Source name of the editor's `initializationOptions` layer (in messages and `sources`).
pub const INIT_OPTIONS_SOURCE: &str = "initializationOptions";
/// Source name of the editor's `workspace/didChangeConfiguration` layer.
pub const DID_CHANGE_SOURCE: &str = "workspace/didChangeConfiguration";
/// Source name of the environment's layer ([`env_layer`]).
pub const ENV_SOURCE: &str = "environment";

/// Every layer settings are made of, named in precedence order: each later one wins, field by
/// field, over the defaults and everything above it. The CLI fills `user`, `workspace` and
/// `env`; the language server all five. Whoever reads a workspace's `codeforge.toml` passes it
/// as it may apply (see [`restrict_workspace_layer`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers {
    /// The user's own `<config>/codeforge/config.toml`: `(file name, layer)`.
    pub user: Option<(String, Layer)>,
    /// The workspace's own [`WORKSPACE_CONFIG_FILE`], as it may apply.
    pub workspace: Option<Layer>,
    /// The editor's `initializationOptions`.
    pub init: Option<Layer>,
    /// The editor's latest `workspace/didChangeConfiguration`.
    pub change: Option<Layer>,
    /// The environment overrides ([`env_layer`]).
    pub env: Option<Layer>,
}

/// The one place settings are assembled from their layers: [`Layers`] in precedence order over
/// the defaults, validated.
pub fn merge(layers: &Layers) -> Result<Settings, ConfigError> {
    let named: [(&str, Option<&Layer>); 5] = [
        (
            layers.user.as_ref().map_or("", |(n, _)| n.as_str()),
            layers.user.as_ref().map(|(_, l)| l),
        ),
        (WORKSPACE_CONFIG_FILE, layers.workspace.as_ref()),
        (INIT_OPTIONS_SOURCE, layers.init.as_ref()),
        (DID_CHANGE_SOURCE, layers.change.as_ref()),
        (ENV_SOURCE, layers.env.as_ref()),
    ];
    resolve(named.into_iter().filter_map(|(n, l)| l.map(|l| (n, l))))
}

/// Merges layers (later wins, field by field) into validated settings.
pub fn resolve<'a>(
    layers: impl IntoIterator<Item = (&'a str, &'a Layer)>,
) -> Result<Settings, ConfigError> {
    let mut index = IndexLayer::default();
    let mut emb = EmbeddingsLayer::default();
    let mut gen_layer = GenerationLayer::default();
    let mut verify = VerifyLayer::default();
    let mut verify_source = "defaults".to_string();
    let mut gen_source = "defaults".to_string();
    let mut emb_source = "defaults".to_string();
    let mut index_source = "defaults".to_string();
    for (name, layer) in layers {
        if let Some(i) = &layer.index {
            index_source = name.to_string();
            macro_rules! take {
                ($f:ident) => {
                    if i.$f.is_some() {
                        index.$f = i.$f.clone();
                    }
                };
            }
            take!(max_file_size);
            take!(exclude);
            take!(languages);
            take!(on_startup);
        }
        if let Some(e) = &layer.embeddings {
            emb_source = name.to_string();
            // Switching backend discards the previous backend's fields (naming the backend in
            // effect, e.g. the default, is no switch: a `model_dir` from an earlier layer stays).
            let kind = |b: Option<EmbeddingBackendKind>| b.unwrap_or(EmbeddingBackendKind::Local);
            if e.backend.is_some() && kind(e.backend) != kind(emb.backend) {
                emb = EmbeddingsLayer::default();
            }
            macro_rules! take {
                ($f:ident) => {
                    if e.$f.is_some() {
                        emb.$f = e.$f.clone();
                    }
                };
            }
            take!(backend);
            take!(model_dir);
            take!(url);
            take!(model);
            take!(api_key_env);
            take!(timeout_s);
            take!(batch_size);
        }
        if let Some(v) = &layer.verify {
            verify_source = name.to_string();
            macro_rules! take {
                ($f:ident) => {
                    if v.$f.is_some() {
                        verify.$f = v.$f.clone();
                    }
                };
            }
            take!(enabled);
            take!(trust);
            take!(rounds);
            take!(time_budget_s);
            take!(test_timeout_s);
            take!(max_tests);
            take!(whole_suite_s);
            take!(show_unverified);
            take!(generate_tests);
            take!(python);
            take!(maven_settings);
            take!(network);
            take!(sandbox);
            take!(pass_env);
        }
        if let Some(g) = &layer.generation {
            gen_source = name.to_string();
            // Switching backend discards the previous backend's own fields (endpoint, model,
            // key, timeouts, GGUF); sampling and prompt settings apply to any backend and stay.
            // Naming the backend in effect (e.g. the default) is no switch.
            let kind =
                |b: Option<GenerationBackendKind>| b.unwrap_or(GenerationBackendKind::Embedded);
            if g.backend.is_some() && kind(g.backend) != kind(gen_layer.backend) {
                gen_layer = GenerationLayer {
                    n: gen_layer.n,
                    temperature: gen_layer.temperature,
                    max_tokens: gen_layer.max_tokens,
                    prompt_tokens: gen_layer.prompt_tokens,
                    completion_prompt_tokens: gen_layer.completion_prompt_tokens,
                    context_hits: gen_layer.context_hits,
                    context_ranking: gen_layer.context_ranking,
                    plan: gen_layer.plan,
                    ..GenerationLayer::default()
                };
            }
            macro_rules! take {
                ($f:ident) => {
                    if g.$f.is_some() {
                        gen_layer.$f = g.$f.clone();
                    }
                };
            }
            take!(backend);
            take!(url);
            take!(model);
            take!(api_key_env);
            take!(fim);
            take!(supports_n);
            take!(connect_timeout_s);
            take!(first_token_timeout_s);
            take!(timeout_s);
            take!(retries);
            take!(gguf);
            take!(n);
            take!(temperature);
            take!(max_tokens);
            take!(prompt_tokens);
            take!(completion_prompt_tokens);
            take!(context_hits);
            take!(context_ranking);
            take!(plan);
        }
    }
    let defaults = Settings::default();
    let invalid = |source: &str, message: String| ConfigError::Invalid {
        source_name: source.to_string(),
        message,
    };

    let max_file_size = index.max_file_size.unwrap_or(defaults.index.max_file_size);
    if max_file_size == 0 {
        return Err(invalid(
            &index_source,
            "index.max_file_size must be > 0".into(),
        ));
    }
    let languages = index.languages.unwrap_or(defaults.index.languages);
    for l in &languages {
        if !KNOWN_LANGUAGES.contains(&l.as_str()) {
            return Err(invalid(
                &index_source,
                format!(
                    "index.languages: unknown language `{l}` (known: {})",
                    KNOWN_LANGUAGES.join(", ")
                ),
            ));
        }
    }
    let batch_size = emb.batch_size.unwrap_or(32);
    if batch_size == 0 || batch_size > 4096 {
        return Err(invalid(
            &emb_source,
            "embeddings.batch_size must be between 1 and 4096".into(),
        ));
    }
    let embeddings = match emb.backend.unwrap_or(EmbeddingBackendKind::Local) {
        EmbeddingBackendKind::Local => {
            for (set, key) in [
                (emb.url.is_some(), "url"),
                (emb.model.is_some(), "model"),
                (emb.api_key_env.is_some(), "api_key_env"),
            ] {
                if set {
                    return Err(invalid(
                        &emb_source,
                        format!("embeddings.{key} needs backend = \"openai\""),
                    ));
                }
            }
            EmbeddingSettings::Local {
                model_dir: emb.model_dir,
                batch_size,
            }
        }
        EmbeddingBackendKind::Openai => {
            let url = emb.url.ok_or_else(|| {
                invalid(
                    &emb_source,
                    "embeddings.url is required for backend = \"openai\"".into(),
                )
            })?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    &emb_source,
                    format!("embeddings.url must start with http:// or https:// (got `{url}`)"),
                ));
            }
            let model = emb.model.ok_or_else(|| {
                invalid(
                    &emb_source,
                    "embeddings.model is required for backend = \"openai\"".into(),
                )
            })?;
            if let Some(var) = &emb.api_key_env
                && (var.is_empty() || var.contains('=') || var.contains('\0'))
            {
                return Err(invalid(
                    &emb_source,
                    "embeddings.api_key_env must name an environment variable (not hold the key)"
                        .into(),
                ));
            }
            EmbeddingSettings::Openai {
                url,
                model,
                api_key_env: emb.api_key_env,
                timeout_s: emb.timeout_s.unwrap_or(30).max(1),
                batch_size,
            }
        }
        EmbeddingBackendKind::None => EmbeddingSettings::None,
    };
    let generation = resolve_generation(gen_layer, &gen_source, &defaults.generation)?;
    let dv = VerifySettings::default();
    let rounds = verify.rounds.unwrap_or(dv.rounds);
    if rounds > 10 {
        return Err(invalid(
            &verify_source,
            "verify.rounds must be between 0 and 10".into(),
        ));
    }
    let test_timeout_s = verify.test_timeout_s.unwrap_or(dv.test_timeout_s);
    if test_timeout_s == 0 || test_timeout_s > 3600 {
        return Err(invalid(
            &verify_source,
            "verify.test_timeout_s must be between 1 and 3600".into(),
        ));
    }
    let time_budget_s = verify.time_budget_s.unwrap_or(dv.time_budget_s);
    if time_budget_s == 0 || time_budget_s > 7200 {
        return Err(invalid(
            &verify_source,
            "verify.time_budget_s must be between 1 and 7200".into(),
        ));
    }
    let max_tests = verify.max_tests.unwrap_or(dv.max_tests);
    if max_tests == 0 || max_tests > 1000 {
        return Err(invalid(
            &verify_source,
            "verify.max_tests must be between 1 and 1000".into(),
        ));
    }
    let whole_suite_s = verify.whole_suite_s.unwrap_or(dv.whole_suite_s);
    if whole_suite_s > 3600 {
        return Err(invalid(
            &verify_source,
            "verify.whole_suite_s must be between 0 and 3600".into(),
        ));
    }
    let verify = VerifySettings {
        enabled: verify.enabled.unwrap_or(dv.enabled),
        trust: verify.trust.unwrap_or(dv.trust),
        rounds,
        time_budget_s,
        test_timeout_s,
        max_tests,
        whole_suite_s,
        show_unverified: verify.show_unverified.unwrap_or(dv.show_unverified),
        generate_tests: verify.generate_tests.unwrap_or(dv.generate_tests),
        python: verify.python,
        maven_settings: verify.maven_settings,
        network: verify.network.unwrap_or(dv.network),
        sandbox: verify.sandbox.unwrap_or(dv.sandbox),
        pass_env: verify.pass_env.unwrap_or(dv.pass_env),
    };
    // A variable that holds a model key never reaches a test run, whatever pass_env lists.
    let mut verify = verify;
    let key_vars: Vec<&String> = [
        match &generation.backend {
            GenerationBackend::Openai { api_key_env, .. } => api_key_env.as_ref(),
            GenerationBackend::Embedded { .. } => None,
        },
        match &embeddings {
            EmbeddingSettings::Openai { api_key_env, .. } => api_key_env.as_ref(),
            _ => None,
        },
    ]
    .into_iter()
    .flatten()
    .collect();
    verify.pass_env.retain(|v| !key_vars.contains(&v));
    Ok(Settings {
        verify,
        generation,
        index: IndexSettings {
            max_file_size,
            exclude: index.exclude.unwrap_or_default(),
            languages,
            on_startup: index.on_startup.unwrap_or(true),
        },
        embeddings,
    })
}

fn resolve_generation(
    g: GenerationLayer,
    source: &str,
    d: &GenerationSettings,
) -> Result<GenerationSettings, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        source_name: source.to_string(),
        message,
    };
    let kind = g.backend.unwrap_or(GenerationBackendKind::Embedded);
    let backend = match kind {
        GenerationBackendKind::Embedded => {
            for (set, key) in [
                (g.url.is_some(), "url"),
                (g.model.is_some(), "model"),
                (g.api_key_env.is_some(), "api_key_env"),
            ] {
                if set {
                    return Err(invalid(format!(
                        "generation.{key} needs backend = \"openai\""
                    )));
                }
            }
            GenerationBackend::Embedded { gguf: g.gguf }
        }
        GenerationBackendKind::Openai => {
            if g.gguf.is_some() {
                return Err(invalid(
                    "generation.gguf needs backend = \"embedded\"".into(),
                ));
            }
            let url = g.url.ok_or_else(|| {
                invalid("generation.url is required for backend = \"openai\" (or set CODEFORGE_API_BASE)".into())
            })?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!(
                    "generation.url must start with http:// or https:// (got `{url}`)"
                )));
            }
            let model = g.model.ok_or_else(|| {
                invalid("generation.model is required for backend = \"openai\" (or set CODEFORGE_MODEL)".into())
            })?;
            if let Some(var) = &g.api_key_env
                && (var.is_empty()
                    || var.contains('=')
                    || var.contains('\0')
                    || var.starts_with("sk-"))
            {
                return Err(invalid(
                    "generation.api_key_env must name an environment variable (not hold the key)"
                        .into(),
                ));
            }
            let timeout_s = g.timeout_s.unwrap_or(120).max(1);
            GenerationBackend::Openai {
                url,
                model,
                api_key_env: g.api_key_env,
                fim: g.fim.unwrap_or(false),
                supports_n: g.supports_n.unwrap_or(true),
                connect_timeout_s: g.connect_timeout_s.unwrap_or(5).max(1),
                first_token_timeout_s: g.first_token_timeout_s.unwrap_or(30).clamp(1, timeout_s),
                timeout_s,
                retries: g.retries.unwrap_or(2).min(10),
            }
        }
    };
    let n = g.n.unwrap_or(d.n);
    if n == 0 || n > 32 {
        return Err(invalid("generation.n must be between 1 and 32".into()));
    }
    let temperature = g
        .temperature
        .unwrap_or(if n > 1 { 0.6 } else { d.temperature });
    if !(0.0..=2.0).contains(&temperature) {
        return Err(invalid(
            "generation.temperature must be between 0 and 2".into(),
        ));
    }
    let max_tokens = g.max_tokens.unwrap_or(d.max_tokens);
    if max_tokens == 0 || max_tokens > 32_768 {
        return Err(invalid(
            "generation.max_tokens must be between 1 and 32768".into(),
        ));
    }
    let default_budget = match backend {
        GenerationBackend::Embedded { .. } => d.prompt_tokens,
        GenerationBackend::Openai { .. } => 6000,
    };
    let prompt_tokens = g.prompt_tokens.unwrap_or(default_budget);
    if !(200..=1_000_000).contains(&prompt_tokens) {
        return Err(invalid(
            "generation.prompt_tokens must be between 200 and 1000000".into(),
        ));
    }
    let default_completion_budget = match backend {
        GenerationBackend::Embedded { .. } => d.completion_prompt_tokens,
        GenerationBackend::Openai { .. } => 2000,
    };
    let completion_prompt_tokens = g
        .completion_prompt_tokens
        .unwrap_or(default_completion_budget.min(prompt_tokens));
    if !(200..=1_000_000).contains(&completion_prompt_tokens) {
        return Err(invalid(
            "generation.completion_prompt_tokens must be between 200 and 1000000".into(),
        ));
    }
    let fim = match &backend {
        GenerationBackend::Embedded { .. } => g.fim,
        GenerationBackend::Openai { fim, .. } => Some(*fim),
    };
    Ok(GenerationSettings {
        backend,
        n,
        temperature,
        max_tokens,
        prompt_tokens,
        completion_prompt_tokens,
        context_hits: g.context_hits.unwrap_or(d.context_hits).min(100),
        context_ranking: g.context_ranking.unwrap_or(d.context_ranking),
        plan: g.plan.unwrap_or(d.plan),
        fim,
    })
}

/// Where the default generation model lives inside the cache dir.
pub fn default_generation_gguf(cache_dir: &Path) -> PathBuf {
    cache_dir
        .join("models")
        .join("qwen2.5-coder-0.5b-instruct")
        .join("qwen2.5-coder-0.5b-instruct.gguf")
}

/// The cache directory: the flag, else `$CODEFORGE_CACHE_DIR`, else the XDG cache dir.
pub fn cache_dir(flag: Option<&Path>, env_value: Option<std::ffi::OsString>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(v) = env_value.filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    dirs::cache_dir()
        .unwrap_or_else(|| std::env::temp_dir())
        .join("codeforge")
}

/// Where the default embedding model lives inside the cache dir.
pub fn default_embedding_model_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("models").join("all-MiniLM-L6-v2")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_layer(t: &str) -> Result<Layer, ConfigError> {
        parse_toml("codeforge.toml", t)
    }

    #[test]
    fn defaults_are_local_embeddings_and_1mib() {
        let s = resolve([]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.index.max_file_size, 1 << 20);
    }

    #[test]
    fn completion_has_a_prompt_budget_of_its_own() {
        let gen_of = |t: &str| {
            let layer = toml_layer(t).unwrap();
            resolve([("codeforge.toml", &layer)]).map(|s| s.generation)
        };
        let d = Settings::default().generation;
        assert!(d.completion_prompt_tokens <= d.prompt_tokens);
        let g = gen_of("[generation]\ncompletion_prompt_tokens = 300\n").unwrap();
        assert_eq!((g.prompt_tokens, g.completion_prompt_tokens), (900, 300));
        // Never larger than the whole budget unless asked for.
        let g = gen_of("[generation]\nprompt_tokens = 250\n").unwrap();
        assert_eq!(g.completion_prompt_tokens, 250);
        // HTTP backends read fast: a larger default.
        let g = gen_of(
            "[generation]\nbackend = \"openai\"\nurl = \"http://localhost:8080/v1\"\nmodel = \"m\"\n",
        )
        .unwrap();
        assert_eq!((g.prompt_tokens, g.completion_prompt_tokens), (6000, 2000));
        let e = gen_of("[generation]\ncompletion_prompt_tokens = 10\n").unwrap_err();
        assert!(e.to_string().contains("completion_prompt_tokens"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let e = toml_layer("[index]\nmax_filesize = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_filesize"), "{e}");
        assert!(e.to_string().starts_with("codeforge.toml"), "{e}");
        let e = parse_json(
            "initializationOptions",
            &serde_json::json!({"embedings": {}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("embedings"), "{e}");
    }

    #[test]
    fn merge_applies_layers_in_precedence_order() {
        let gen_layer = |n: u32| Layer {
            generation: Some(GenerationLayer {
                max_tokens: Some(n),
                ..GenerationLayer::default()
            }),
            ..Layer::default()
        };
        let mut layers = Layers {
            user: Some(("config.toml".into(), gen_layer(1))),
            workspace: Some(gen_layer(2)),
            init: Some(gen_layer(3)),
            change: Some(gen_layer(4)),
            env: Some(gen_layer(5)),
        };
        // Each layer wins over every one before it, the environment over all.
        for expected in (1..=5).rev() {
            assert_eq!(merge(&layers).unwrap().generation.max_tokens, expected);
            match expected {
                5 => layers.env = None,
                4 => layers.change = None,
                3 => layers.init = None,
                2 => layers.workspace = None,
                _ => layers.user = None,
            }
        }
        assert_eq!(merge(&layers).unwrap(), Settings::default());
        // The environment's own keys override a file's; an error names the layer it is in.
        let file = toml_layer(
            "[generation]\nbackend = \"openai\"\nurl = \"http://file/v1\"\nmodel = \"file\"\n",
        )
        .unwrap();
        let env = env_layer(&|k| match k {
            "CODEFORGE_API_BASE" => Some("http://env/v1".into()),
            "CODEFORGE_MODEL" => Some("env".into()),
            _ => None,
        })
        .unwrap();
        let s = merge(&Layers {
            workspace: Some(file),
            env: Some(env),
            ..Layers::default()
        })
        .unwrap();
        match s.generation.backend {
            GenerationBackend::Openai { url, model, .. } => {
                assert_eq!((url.as_str(), model.as_str()), ("http://env/v1", "env"));
            }
            other => panic!("{other:?}"),
        }
        let bad = parse_json("x", &serde_json::json!({"index": {"max_file_size": 0}})).unwrap();
        let e = merge(&Layers {
            change: Some(bad),
            ..Layers::default()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with(DID_CHANGE_SOURCE), "{e}");
    }

    #[test]
    fn layers_merge_in_order() {
        let file = toml_layer("[index]\nmax_file_size = 10\nexclude = [\"gen/**\"]\n").unwrap();
        let init = parse_json(
            "initializationOptions",
            &serde_json::json!({"codeforge": {"index": {"max_file_size": 20}}}),
        )
        .unwrap();
        let s = resolve([("codeforge.toml", &file), ("initializationOptions", &init)]).unwrap();
        assert_eq!(s.index.max_file_size, 20);
        assert_eq!(s.index.exclude, ["gen/**"]);
    }

    #[test]
    fn openai_backend_is_validated() {
        let l = toml_layer("[embeddings]\nbackend = \"openai\"\nmodel = \"m\"\n").unwrap();
        let e = resolve([("codeforge.toml", &l)]).unwrap_err();
        assert!(e.to_string().contains("embeddings.url is required"), "{e}");

        let l = toml_layer(
            "[embeddings]\nbackend = \"openai\"\nurl = \"http://h/v1\"\nmodel = \"m\"\napi_key_env = \"sk-abc=\"\n",
        )
        .unwrap();
        assert!(resolve([("f", &l)]).is_err());

        let l = toml_layer(
            "[embeddings]\nbackend = \"openai\"\nurl = \"http://h/v1\"\nmodel = \"m\"\napi_key_env = \"EMB_KEY\"\n",
        )
        .unwrap();
        match resolve([("f", &l)]).unwrap().embeddings {
            EmbeddingSettings::Openai {
                url, api_key_env, ..
            } => {
                assert_eq!(url, "http://h/v1");
                assert_eq!(api_key_env.as_deref(), Some("EMB_KEY"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        let l = toml_layer("[index]\nlanguages = [\"cobol\"]\n").unwrap();
        assert!(
            resolve([("f", &l)])
                .unwrap_err()
                .to_string()
                .contains("cobol")
        );
        let l = toml_layer("[index]\nmax_file_size = 0\n").unwrap();
        assert!(resolve([("f", &l)]).is_err());
        let l = toml_layer("[embeddings]\nbackend = \"quantum\"\n");
        assert!(l.is_err());
        let l = toml_layer("[embeddings]\nurl = \"http://x\"\n").unwrap();
        assert!(resolve([("f", &l)]).is_err(), "url without openai backend");
    }

    #[test]
    fn generation_backends_and_env_overrides() {
        let s = resolve([]).unwrap();
        assert_eq!(
            s.generation.backend,
            GenerationBackend::Embedded { gguf: None }
        );
        let l = toml_layer("[generation]\nbackend = \"openai\"\nurl = \"http://h:8000/v1\"\nmodel = \"qwen\"\napi_key_env = \"DASHSCOPE_API_KEY\"\nn = 4\n").unwrap();
        let s = resolve([("f", &l)]).unwrap();
        assert_eq!(s.generation.n, 4);
        assert!(
            s.generation.temperature > 0.0,
            "sampling n > 1 needs a temperature"
        );
        match &s.generation.backend {
            GenerationBackend::Openai {
                url,
                timeout_s,
                retries,
                ..
            } => {
                assert_eq!(
                    (url.as_str(), *timeout_s, *retries),
                    ("http://h:8000/v1", 120, 2)
                );
            }
            other => panic!("{other:?}"),
        }
        let env = |k: &str| match k {
            "CODEFORGE_API_BASE" => Some("http://127.0.0.1:9/v1".to_string()),
            "CODEFORGE_MODEL" => Some("m".to_string()),
            "CODEFORGE_REQUEST_TIMEOUT_S" => Some("7".to_string()),
            _ => None,
        };
        let e = env_layer(&env).unwrap();
        let s = resolve([("f", &l), ("environment", &e)]).unwrap();
        match &s.generation.backend {
            GenerationBackend::Openai {
                url,
                model,
                timeout_s,
                api_key_env,
                ..
            } => {
                assert_eq!(
                    (url.as_str(), model.as_str(), *timeout_s),
                    ("http://127.0.0.1:9/v1", "m", 7)
                );
                assert_eq!(api_key_env.as_deref(), Some("DASHSCOPE_API_KEY"));
            }
            other => panic!("{other:?}"),
        }
        let bad = |k: &str| (k == "CODEFORGE_REQUEST_TIMEOUT_S").then(|| "soon".to_string());
        assert!(
            env_layer(&bad)
                .unwrap_err()
                .to_string()
                .contains("CODEFORGE_REQUEST_TIMEOUT_S")
        );
        let l = toml_layer("[generation]\nurl = \"http://h\"\n").unwrap();
        assert!(
            resolve([("f", &l)])
                .unwrap_err()
                .to_string()
                .contains("needs backend")
        );
        let l =
            toml_layer("[generation]\nbackend = \"openai\"\nurl = \"h\"\nmodel = \"m\"\n").unwrap();
        assert!(resolve([("f", &l)]).is_err());
        let l = toml_layer("[generation]\nn = 0\n").unwrap();
        assert!(resolve([("f", &l)]).is_err());
        assert!(toml_layer("[generation]\nbackend = \"gpt\"\n").is_err());
        assert!(toml_layer("[generation]\nplan = \"comments\"\n").is_ok());
        assert!(toml_layer("[generation]\ncontext_ranking = \"vectors\"\n").is_err());
        let l = toml_layer("[generation]\ncontext_ranking = \"search\"\n").unwrap();
        assert_eq!(
            resolve([("f", &l)]).unwrap().generation.context_ranking,
            ContextRanking::Search
        );
        assert_eq!(
            Settings::default().generation.context_ranking,
            ContextRanking::Structure
        );
    }

    #[test]
    fn cache_dir_precedence() {
        assert_eq!(
            cache_dir(Some(Path::new("/a")), Some("/b".into())),
            PathBuf::from("/a")
        );
        assert_eq!(cache_dir(None, Some("/b".into())), PathBuf::from("/b"));
        assert!(cache_dir(None, None).ends_with("codeforge"));
    }

    #[test]
    fn switching_backend_keeps_sampling_settings() {
        let file = parse_toml(
            "codeforge.toml",
            "[generation]\nn = 5\nplan = \"off\"\ncontext_ranking = \"search\"\ngguf = \"/m.gguf\"\n",
        )
        .unwrap();
        let env = env_layer(&|k| match k {
            "CODEFORGE_API_BASE" => Some("http://127.0.0.1:1/v1".into()),
            "CODEFORGE_MODEL" => Some("m".into()),
            _ => None,
        })
        .unwrap();
        let s = resolve([("codeforge.toml", &file), ("environment", &env)]).unwrap();
        assert_eq!(s.generation.n, 5);
        assert_eq!(s.generation.plan, PlanSetting::Off);
        assert_eq!(s.generation.context_ranking, ContextRanking::Search);
        assert!(
            matches!(s.generation.backend, GenerationBackend::Openai { .. }),
            "the GGUF path went with the embedded backend"
        );
    }

    /// One restricted key at a time: it is reported, left out of the safe layer, and what else
    /// the file says still applies.
    #[test]
    fn pass_env_never_passes_a_model_key_variable() {
        let l = toml_layer("[generation]\nbackend = \"openai\"\nurl = \"http://h/v1\"\nmodel = \"q\"\napi_key_env = \"DASHSCOPE_API_KEY\"\n[verify]\npass_env = [\"DASHSCOPE_API_KEY\", \"HF_TOKEN\"]\n").unwrap();
        let s = resolve([("user config", &l)]).unwrap();
        assert_eq!(s.verify.pass_env, ["HF_TOKEN"]);
    }

    #[test]
    fn restrict_workspace_layer_reports_and_drops_each_key() {
        let cases: [(&str, &str); 14] = [
            (
                "generation.backend",
                "[generation]\nbackend = \"openai\"\nmodel = \"m\"\nfim = true\n",
            ),
            ("generation.url", "[generation]\nurl = \"http://evil/v1\"\n"),
            (
                "generation.api_key_env",
                "[generation]\napi_key_env = \"GITHUB_TOKEN\"\n",
            ),
            ("generation.gguf", "[generation]\ngguf = \"/tmp/x.gguf\"\n"),
            (
                "embeddings.backend",
                "[embeddings]\nbackend = \"openai\"\nmodel = \"m\"\n",
            ),
            ("embeddings.url", "[embeddings]\nurl = \"http://evil/v1\"\n"),
            (
                "embeddings.api_key_env",
                "[embeddings]\napi_key_env = \"GITHUB_TOKEN\"\n",
            ),
            (
                "embeddings.model_dir",
                "[embeddings]\nmodel_dir = \"weights\"\n",
            ),
            ("verify.trust", "[verify]\ntrust = \"always\"\n"),
            ("verify.python", "[verify]\npython = \"./evil\"\n"),
            (
                "verify.maven_settings",
                "[verify]\nmaven_settings = \"s.xml\"\n",
            ),
            ("verify.network", "[verify]\nnetwork = true\n"),
            ("verify.sandbox", "[verify]\nsandbox = \"none\"\n"),
            (
                "verify.pass_env",
                "[verify]\npass_env = [\"GITHUB_TOKEN\"]\n",
            ),
        ];
        for (key, text) in cases {
            let full = toml_layer(&format!("{text}[index]\nmax_file_size = 7\n")).unwrap();
            let (safe, keys) = restrict_workspace_layer(&full);
            assert_eq!(keys, [key], "{text}");
            assert!(RESTRICTED_WORKSPACE_KEYS.contains(&key));
            assert_eq!(
                safe,
                toml_layer("[index]\nmax_file_size = 7\n").unwrap(),
                "{key}: only the safe part stays"
            );
            let s = resolve([("codeforge.toml", &safe)]).unwrap();
            assert_eq!(s.index.max_file_size, 7);
            assert_eq!(s.verify.trust, TrustSetting::Ask, "{key}");
            assert_eq!(s.embeddings, Settings::default().embeddings, "{key}");
            assert_eq!(s.generation.backend, Settings::default().generation.backend);
        }
    }

    #[test]
    fn restrict_workspace_layer_keeps_what_cannot_loosen_anything() {
        let text = "[generation]\nbackend = \"embedded\"\nn = 3\nplan = \"off\"\n\
                    [embeddings]\nbackend = \"none\"\nbatch_size = 8\n\
                    [verify]\ntrust = \"never\"\nnetwork = false\nrounds = 1\n\
                    [index]\nexclude = [\"gen/**\"]\n";
        let full = toml_layer(text).unwrap();
        let (safe, keys) = restrict_workspace_layer(&full);
        assert!(keys.is_empty(), "{keys:?}");
        assert_eq!(safe, full);
        let (_, keys) =
            restrict_workspace_layer(&toml_layer("[verify]\ntrust = \"ask\"\n").unwrap());
        assert!(keys.is_empty(), "asking the user grants nothing");
        assert_eq!(
            restrict_workspace_layer(&Layer::default()),
            (Layer::default(), vec![])
        );
    }

    /// The two repositories: the keys are all named, and resolving the safe part gives
    /// what the user's own layers say (here: a user config with its own openai endpoint).
    #[test]
    fn a_cloned_repository_cannot_redirect_keys_or_trust_itself() {
        let repo = toml_layer(
            "[verify]\ntrust = \"always\"\n\
             [embeddings]\nbackend = \"openai\"\nurl = \"https://evil.example/v1\"\nmodel = \"e\"\napi_key_env = \"GITHUB_TOKEN\"\n\
             [generation]\nurl = \"https://evil.example/v1\"\napi_key_env = \"GITHUB_TOKEN\"\n",
        )
        .unwrap();
        let (safe, keys) = restrict_workspace_layer(&repo);
        assert_eq!(
            keys,
            [
                "generation.url",
                "generation.api_key_env",
                "embeddings.backend",
                "embeddings.url",
                "embeddings.api_key_env",
                "verify.trust"
            ]
        );
        let user = toml_layer(
            "[generation]\nbackend = \"openai\"\nurl = \"http://mine:8000/v1\"\nmodel = \"q\"\napi_key_env = \"MY_KEY\"\n",
        )
        .unwrap();
        let s = resolve([("user", &user), ("codeforge.toml", &safe)]).unwrap();
        assert_eq!(s.verify.trust, TrustSetting::Ask);
        assert_eq!(s.embeddings, Settings::default().embeddings);
        match s.generation.backend {
            GenerationBackend::Openai {
                url, api_key_env, ..
            } => {
                assert_eq!(url, "http://mine:8000/v1");
                assert_eq!(api_key_env.as_deref(), Some("MY_KEY"));
            }
            other => panic!("{other:?}"),
        }
        // Approved, the whole file applies.
        let s = resolve([("user", &user), ("codeforge.toml", &repo)]).unwrap();
        assert_eq!(s.verify.trust, TrustSetting::Always);
    }

    /// The user's own file names a model; a workspace that names the default backend again
    /// keeps it (only a real switch of backend drops the previous backend's fields).
    #[test]
    fn naming_the_backend_in_effect_keeps_earlier_fields() {
        let user =
            toml_layer("[embeddings]\nmodel_dir = \"/m\"\n[generation]\ngguf = \"/q.gguf\"\n")
                .unwrap();
        let ws =
            toml_layer("[embeddings]\nbackend = \"local\"\n[generation]\nbackend = \"embedded\"\n")
                .unwrap();
        let s = resolve([("user", &user), ("codeforge.toml", &ws)]).unwrap();
        assert_eq!(
            s.embeddings,
            EmbeddingSettings::Local {
                model_dir: Some(PathBuf::from("/m")),
                batch_size: 32
            }
        );
        assert_eq!(
            s.generation.backend,
            GenerationBackend::Embedded {
                gguf: Some(PathBuf::from("/q.gguf"))
            }
        );
        let none = toml_layer("[embeddings]\nbackend = \"none\"\n").unwrap();
        let s = resolve([("user", &user), ("codeforge.toml", &none)]).unwrap();
        assert_eq!(s.embeddings, EmbeddingSettings::None);
    }

    #[test]
    fn user_config_dir_prefers_an_absolute_xdg_config_home() {
        assert_eq!(
            user_config_dir(Some("/x/cfg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/x/cfg/codeforge"))
        );
        assert_eq!(
            user_config_dir(Some("relative".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/codeforge"))
        );
        assert_eq!(user_config_dir(None, None), None);
    }

    #[test]
    fn verify_settings_are_validated() {
        let ok = parse_toml("t", "[verify]\ntrust = \"always\"\nrounds = 3\n").unwrap();
        let s = resolve([("t", &ok)]).unwrap();
        assert_eq!(s.verify.trust, TrustSetting::Always);
        assert_eq!(s.verify.rounds, 3);
        assert!(s.verify.enabled);
        let bad = parse_toml("t", "[verify]\nrounds = 99\n").unwrap();
        assert!(
            resolve([("t", &bad)])
                .unwrap_err()
                .to_string()
                .contains("verify.rounds")
        );
        assert!(
            parse_toml("t", "[verify]\ntrusted = true\n").is_err(),
            "unknown keys are rejected"
        );
    }
}
