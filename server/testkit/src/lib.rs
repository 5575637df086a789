//! Shared helpers for CodeForge's tests (dev-dependency only): fixture paths, temp copies of
//! fixture workspaces with a separate cache dir, byte snapshots of a tree, and the location of
//! the real MiniLM model installed by `codeforge model pull`.

pub mod http;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest dir of the package under test, read when the test runs: cargo sets it for every
/// test it runs. The one compiled in (`env!`) may name another clone, because clones share one
/// target dir and cargo does not rebuild a binary that merely moved.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `tests/fixtures/<rel>` at the repository root (every package sits at `server/<name>`).
pub fn fixtures(rel: &str) -> PathBuf {
    manifest_dir().join("../../tests/fixtures").join(rel)
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Every file's bytes (and every directory), by relative path: equal snapshots mean a
/// byte-identical tree.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                go(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    go(dir, dir, &mut out);
    out
}

/// A temp copy of `tests/fixtures/workspaces/<name>` (canonical path) and a temp cache dir
/// beside it; both vanish on drop.
pub struct TempWorkspace {
    pub root: PathBuf,
    pub cache: PathBuf,
    _tmp: tempfile::TempDir,
}

pub fn workspace(name: &str) -> TempWorkspace {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(name);
    copy_dir(&fixtures(&format!("workspaces/{name}")), &root);
    let root = root.canonicalize().unwrap();
    let cache = tmp.path().join("cache");
    TempWorkspace {
        root,
        cache,
        _tmp: tmp,
    }
}

/// A copy of `workspaces/<name>` whose `codeforge.toml` asks for local embeddings, with the real
/// MiniLM model named in the user's config (`<cache>/../config/codeforge/config.toml`: run the
/// binary with `XDG_CONFIG_HOME` there), since a workspace's own file may not name a model
/// directory until the user approves it.
pub fn workspace_with_real_embeddings(name: &str) -> TempWorkspace {
    let ws = workspace(name);
    std::fs::write(
        ws.root.join("codeforge.toml"),
        "[embeddings]\nbackend = \"local\"\n",
    )
    .unwrap();
    let user = ws.cache.parent().unwrap().join("config/codeforge");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(
        user.join("config.toml"),
        format!("[embeddings]\nmodel_dir = {:?}\n", real_model_dir()),
    )
    .unwrap();
    ws
}

/// The real all-MiniLM-L6-v2 directory as installed by `codeforge model pull`. Fails (never skips) when
/// it is missing: these tests are meant to run against the real model.
pub fn real_model_dir() -> PathBuf {
    let cache =
        codeforge_config::cache_dir(None, std::env::var_os(codeforge_config::CACHE_DIR_ENV));
    let dir = codeforge_config::default_embedding_model_dir(&cache);
    assert!(
        dir.join("model.safetensors").is_file(),
        "the MiniLM model is not installed at {}; run `codeforge model pull embeddings` (`bash .ci/test` does)",
        dir.display()
    );
    dir
}

/// Compares `actual` with the snapshot file at `path` (created or rewritten when the environment
/// has `UPDATE_EXPECT=1`). Returns a description of the mismatch, if any.
pub fn check_snapshot(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            Some(format!(
                "{}: differs from line {}\n--- expected: {:?}\n--- actual:   {:?}",
                path.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("<end>"),
                actual.lines().nth(line).unwrap_or("<end>")
            ))
        }
        Err(_) => Some(format!(
            "{}: no snapshot (UPDATE_EXPECT=1 to write it)",
            path.display()
        )),
    }
}

/// The real Qwen2.5-Coder-0.5B-Instruct GGUF as installed by `codeforge model pull`. Fails (never skips)
/// when it is missing.
pub fn real_qwen_gguf() -> PathBuf {
    let cache =
        codeforge_config::cache_dir(None, std::env::var_os(codeforge_config::CACHE_DIR_ENV));
    let path = codeforge_config::default_generation_gguf(&cache);
    assert!(
        path.is_file(),
        "the Qwen model is not installed at {}; run `codeforge model pull embedded` (`bash .ci/test` does)",
        path.display()
    );
    path
}

/// CodeForge's pytest virtualenv as created by `.ci/setup` (`<cache>/venv`). Fails (never skips)
/// when it is missing: verification tests run the real pytest.
pub fn verify_python() -> PathBuf {
    let cache =
        codeforge_config::cache_dir(None, std::env::var_os(codeforge_config::CACHE_DIR_ENV));
    let py = cache.join("venv/bin/python");
    assert!(
        py.is_file(),
        "pytest's virtualenv is not at {}; run `bash .ci/setup`",
        py.display()
    );
    py
}

/// The offline Maven settings written by `.ci/setup` (every repository mirrored to Debian's).
pub fn maven_settings() -> PathBuf {
    let cache =
        codeforge_config::cache_dir(None, std::env::var_os(codeforge_config::CACHE_DIR_ENV));
    let p = cache.join("maven-settings.xml");
    assert!(
        p.is_file(),
        "the Maven settings are not at {}; run `bash .ci/setup`",
        p.display()
    );
    p
}

/// Processes whose command line contains `needle` (to prove nothing was left behind).
pub fn processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .chars()
                        .all(|c| c.is_ascii_digit())
                })
                .filter_map(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                    if stat.contains(") Z ") {
                        return None;
                    }
                    std::fs::read(e.path().join("cmdline")).ok()
                })
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

/// One HTTP/1.1 request as the scripted servers in tests see it.
pub struct HttpRequest {
    pub path: String,
    /// The `Authorization` header's value (empty when absent).
    pub authorization: String,
    pub body: Vec<u8>,
}

/// Reads one request (request line, headers, `Content-Length` body); `None` at end of stream.
pub async fn read_http_request<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> Option<HttpRequest> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = String::new();
    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut len = 0usize;
    let mut authorization = String::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if lower.starts_with("authorization:") {
            authorization = h["authorization:".len()..].trim().to_string();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    Some(HttpRequest {
        path,
        authorization,
        body,
    })
}
