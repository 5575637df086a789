//! Loaded model backends, by the settings that made them (loading the embedded model is slow).
//! Owns the model cache; must not reach the client, the session or handlers.

use std::collections::HashMap;
use std::path::Path;

use codeforge_config::Settings;
use codeforge_ide::{BackendHandle, load_backend};

use crate::options::Env;

#[derive(Default)]
pub(crate) struct Models {
    cache: tokio::sync::Mutex<HashMap<String, BackendHandle>>,
}

impl Models {
    /// The backend for `settings` (`fixed` when there is one); `env` is where the API key is read.
    pub async fn get(
        &self,
        settings: &Settings,
        cache_dir: &Path,
        fixed: Option<&BackendHandle>,
        env: &Env,
    ) -> Result<BackendHandle, String> {
        if let Some(b) = fixed {
            return Ok(b.clone());
        }
        let key = format!("{:?}", settings.generation.backend);
        let mut cache = self.cache.lock().await;
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        let gen_settings = settings.generation.clone();
        let dir = cache_dir.to_path_buf();
        let env = env.clone();
        let loaded = tokio::task::spawn_blocking(move || load_backend(&gen_settings, &dir, &*env))
            .await
            .map_err(|e| format!("loading the model failed: {e}"))?
            .map_err(|e| e.to_string())?;
        cache.insert(key, loaded.clone());
        Ok(loaded)
    }
}
