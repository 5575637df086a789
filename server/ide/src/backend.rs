//! Turns generation settings into a model backend: the one place where configuration meets the
//! edges (environment variables for keys, model files in the cache dir). Loading the embedded
//! model is slow (seconds), so it happens once, off the async runtime, and is shared.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codeforge_config::{GenerationBackend, GenerationSettings, default_generation_gguf};
use codeforge_model::{
    Backend, EmbeddedConfig, EmbeddedQwen, ModelError, OpenAiBackend, OpenAiConfig,
};

pub type BackendHandle = Arc<dyn Backend>;

/// The key sent to an OpenAI-compatible server: `CODEFORGE_API_KEY`, else the variable
/// `api_key_env` names; empty values count as unset.
pub fn api_key(api_key_env: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env("CODEFORGE_API_KEY")
        .filter(|k| !k.is_empty())
        .or_else(|| api_key_env.and_then(env).filter(|k| !k.is_empty()))
}

/// Builds the configured backend. `env` reads environment variables (`CODEFORGE_API_KEY`, or the
/// variable `api_key_env` names). Blocking for the embedded model: call from a blocking thread.
pub fn load_backend(
    settings: &GenerationSettings,
    cache_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BackendHandle, ModelError> {
    match &settings.backend {
        GenerationBackend::Embedded { gguf } => {
            let gguf = gguf
                .clone()
                .unwrap_or_else(|| default_generation_gguf(cache_dir));
            let cache = gguf
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| cache_dir.join("models"));
            let model = EmbeddedQwen::load(&EmbeddedConfig {
                gguf,
                cache_dir: cache,
                max_context: 4096,
            })?;
            tracing::info!(
                "embedded model ready: {} (requantized: {}, prepare {} ms, load {} ms)",
                model.report.gguf.display(),
                model.report.requantized,
                model.report.prepare_ms,
                model.report.load_ms
            );
            Ok(Arc::new(model))
        }
        GenerationBackend::Openai {
            url,
            model,
            api_key_env,
            fim,
            supports_n,
            connect_timeout_s,
            first_token_timeout_s,
            timeout_s,
            retries,
        } => {
            let api_key = api_key(api_key_env.as_deref(), env);
            if api_key.is_none()
                && let Some(var) = api_key_env
            {
                tracing::warn!(
                    "generation.api_key_env names `{var}`, which is not set; sending no key"
                );
            }
            let cfg = OpenAiConfig {
                base_url: url.clone(),
                model: model.clone(),
                api_key,
                fim: *fim,
                connect_timeout: Duration::from_secs(*connect_timeout_s),
                first_token_timeout: Duration::from_secs(*first_token_timeout_s),
                total_timeout: Duration::from_secs(*timeout_s),
                retries: *retries,
                supports_n: *supports_n,
            };
            Ok(Arc::new(OpenAiBackend::new(cfg)?))
        }
    }
}
