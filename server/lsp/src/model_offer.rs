//! The offer to install missing models: when the embedded model is needed and not installed,
//! one `window/showMessageRequest` per session ("Download" / "Not now"), then
//! `codeforge_model::pull` with `$/progress`; `codeforge.pullModels` runs the same pull unasked.
//! Owns the session's answer; must not know about handlers or documents.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use codeforge_config::{GenerationBackend, Settings};
use codeforge_model::pull::{
    FileState, Manifest, ModelSpec, PullEvent, default_sources, file_state,
};
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageActionItem, MessageType};

use crate::options::Env;
use crate::progress::WorkDone;

pub(crate) const DOWNLOAD: &str = "Download";
pub(crate) const NOT_NOW: &str = "Not now";

/// The session's answer: `None` until asked; then whether the models were installed, or why not.
#[derive(Default)]
pub(crate) struct ModelOffer {
    state: tokio::sync::Mutex<Option<Result<(), String>>>,
}

/// Whether `settings` use the embedded model at its default place and it is not there.
pub(crate) fn embedded_missing(settings: &Settings, cache_dir: &Path) -> bool {
    matches!(
        settings.generation.backend,
        GenerationBackend::Embedded { gguf: None }
    ) && !codeforge_config::default_generation_gguf(cache_dir).is_file()
}

/// The models of the manifest that are not installed and verified (checked without hashing
/// files that carry the record of an earlier check).
fn missing_models(manifest: &Manifest, cache_dir: &Path) -> Vec<ModelSpec> {
    manifest
        .model
        .iter()
        .filter(|m| {
            m.files
                .iter()
                .any(|f| file_state(&m.path(cache_dir, f), f, false) != FileState::Verified)
        })
        .cloned()
        .collect()
}

impl ModelOffer {
    /// Asks (once per session; concurrent callers wait for the one question) and installs.
    pub async fn offer(
        &self,
        client: &Client,
        cache_dir: &Path,
        env: &Env,
        progress: bool,
    ) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if let Some(r) = &*state {
            return r.clone();
        }
        let manifest = Manifest::builtin();
        let dir = cache_dir.to_path_buf();
        let m2 = manifest.clone();
        let missing = tokio::task::spawn_blocking(move || missing_models(&m2, &dir))
            .await
            .unwrap_or_default();
        let what: Vec<String> = missing
            .iter()
            .map(|m| format!("{}, {:.0} MB", m.title, m.total_bytes() as f64 / 1e6))
            .collect();
        let question = format!(
            "CodeForge's models are not installed: {}. Download them into {} now? Each file is checked against its pinned sha256 (or run `codeforge model pull` in a terminal).",
            what.join("; "),
            cache_dir.join("models").display()
        );
        let actions = [DOWNLOAD, NOT_NOW].map(|t| MessageActionItem {
            title: t.to_string(),
            properties: Default::default(),
        });
        let answer = client
            .show_message_request(MessageType::INFO, question, Some(actions.to_vec()))
            .await;
        let r = if answer.ok().flatten().map(|a| a.title).as_deref() == Some(DOWNLOAD) {
            install(client, cache_dir, env, progress, &missing, true).await
        } else {
            Err(
                "the download was declined (“Not now”); `codeforge model pull` installs the models"
                    .to_string(),
            )
        };
        *state = Some(r.clone());
        r
    }
}

/// Pulls `models` with `$/progress` (percent per file); `announce`: says how it ended in a
/// message (the offer does; a command's caller shows its own).
pub(crate) async fn install(
    client: &Client,
    cache_dir: &Path,
    env: &Env,
    progress: bool,
    models: &[ModelSpec],
    announce: bool,
) -> Result<(), String> {
    let work = if progress {
        WorkDone::begin(
            client.clone(),
            "model-pull",
            "CodeForge: downloading models".into(),
            ("starting".into(), Some(0)),
        )
        .await
    } else {
        WorkDone::disabled()
    };
    let sources = default_sources(&|k| env(k), None);
    let last = AtomicU32::new(u32::MAX);
    let w2 = work.clone();
    let sink = move |e: PullEvent| match e {
        PullEvent::Bytes {
            file,
            done,
            total: Some(t),
        } if t > 0 => {
            let pct = (done.saturating_mul(100) / t).min(100) as u32;
            if last.swap(pct, Ordering::Relaxed) != pct {
                w2.report(
                    format!(
                        "{file}: {:.0} of {:.0} MB",
                        done as f64 / 1e6,
                        t as f64 / 1e6
                    ),
                    Some(pct),
                );
            }
        }
        PullEvent::Checking { file } => w2.report(format!("{file}: checking"), None),
        PullEvent::SourceFailed {
            file,
            source,
            error,
        } => tracing::info!("model pull: {file}: {source} failed: {error}"),
        PullEvent::Installed { file, path } => {
            tracing::info!("model pull: {file} installed at {}", path.display())
        }
        _ => {}
    };
    for m in models {
        if let Err(e) = codeforge_model::pull::pull(cache_dir, m, &sources, &sink).await {
            let msg = format!("CodeForge could not install {}: {e}", m.title);
            work.end(format!("failed: {e}"));
            tracing::error!("{msg}");
            if announce {
                client.show_message(MessageType::ERROR, msg.clone()).await;
            }
            return Err(msg);
        }
    }
    work.end("models installed".into());
    if !announce {
        return Ok(());
    }
    let semantic = models.iter().any(|m| m.id == "embeddings");
    client
        .show_message(
            MessageType::INFO,
            format!(
                "CodeForge: models installed and verified in {}{}",
                cache_dir.join("models").display(),
                if semantic {
                    " (semantic search starts when a workspace is next opened)"
                } else {
                    ""
                }
            ),
        )
        .await;
    Ok(())
}

/// The `codeforge.pullModels` command: installs whatever is missing, without asking; the
/// caller shows the outcome.
pub(crate) async fn pull_missing(
    client: &Client,
    cache_dir: &Path,
    env: &Env,
    progress: bool,
) -> Result<usize, String> {
    let manifest = Manifest::builtin();
    let dir = cache_dir.to_path_buf();
    let missing = tokio::task::spawn_blocking(move || missing_models(&manifest, &dir))
        .await
        .unwrap_or_default();
    if missing.is_empty() {
        return Ok(0);
    }
    install(client, cache_dir, env, progress, &missing, false).await?;
    Ok(missing.len())
}
