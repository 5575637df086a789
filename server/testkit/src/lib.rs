//! Shared helpers for CodeForge's tests (dev-dependency only): fixture paths, temp copies of
//! fixture workspaces with a separate cache dir, byte snapshots of a tree, and the location of
//! the real MiniLM model installed by `.ci/setup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `tests/fixtures/<rel>` at the repository root.
pub fn fixtures(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel)
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
    TempWorkspace { root, cache, _tmp: tmp }
}

/// The real all-MiniLM-L6-v2 directory as installed by `.ci/setup`. Fails (never skips) when
/// it is missing: these tests are meant to run against the real model.
pub fn real_model_dir() -> PathBuf {
    let cache = codeforge_config::cache_dir(None, std::env::var_os(codeforge_config::CACHE_DIR_ENV));
    let dir = codeforge_config::default_embedding_model_dir(&cache);
    assert!(
        dir.join("model.safetensors").is_file(),
        "the MiniLM model is not installed at {}; run `bash .ci/setup`",
        dir.display()
    );
    dir
}
