//! What the binary (or a test) hands the server: the cache dir, a fixed model, where trust
//! answers and the user's settings live, and the environment. Plain data; must not import any
//! other module of the crate.

use std::path::PathBuf;
use std::sync::Arc;

/// Reads an environment variable (the process environment unless a test injects another).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Options the binary hands the server.
#[derive(Clone)]
pub struct ServerOptions {
    pub cache_dir: PathBuf,
    /// A fixed model backend instead of the configured one (tests inject a scripted backend).
    pub backend: Option<codeforge_ide::BackendHandle>,
    /// Where per-workspace trust answers are remembered (default `<config dir>/codeforge/trust.json`).
    pub trust_file: Option<PathBuf>,
    /// The user's own settings file, applied before each workspace's `codeforge.toml`
    /// (default `<config dir>/codeforge/config.toml`).
    pub user_config: Option<PathBuf>,
    /// The environment: its overrides (`CODEFORGE_API_BASE`, `CODEFORGE_MODEL`,
    /// `CODEFORGE_REQUEST_TIMEOUT_S`) are the last settings layer, and `CODEFORGE_API_KEY` is read
    /// from it when a model is loaded. Default: the process environment.
    pub env: Env,
}

impl ServerOptions {
    pub fn new(cache_dir: PathBuf) -> Self {
        ServerOptions {
            cache_dir,
            backend: None,
            trust_file: None,
            user_config: None,
            env: Arc::new(|k| std::env::var(k).ok()),
        }
    }
}
