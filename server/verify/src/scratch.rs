//! The scratch copy of a workspace that candidates are tested in: one per workspace under
//! `<cache>/verify/<hash>/tree`, kept between runs so builds stay incremental, brought back in sync
//! with the user's tree before every verification (changed files copied, files the user no longer
//! has or a candidate created removed, files a candidate touched restored). The user's tree is only
//! ever read. An exclusive lock file serialises verifications of one workspace across processes.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Directories never copied (VCS data, build outputs, caches, virtualenvs: those are shared or rebuilt).
pub const SKIP_DIRS: [&str; 11] = [
    ".git",
    ".hg",
    ".svn",
    "target",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".venv",
    "venv",
    ".mypy_cache",
    ".tox",
];
/// Directories inside the scratch tree that runs may fill and syncs leave alone.
const KEEP_IN_SCRATCH: [&str; 5] = [
    "target",
    "__pycache__",
    ".pytest_cache",
    ".codeforge-home",
    ".codeforge-report",
];
/// Files larger than this are not copied (tests rarely need them; secrets and data dumps stay home).
const MAX_FILE: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("the scratch copy {0} could not be prepared: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the workspace has over {0} files; verification copies at most that many")]
    TooBig(usize),
}

/// A synced scratch copy, held under an exclusive lock until dropped.
pub struct Scratch {
    pub tree: PathBuf,
    /// Where runs may put per-run files (`$HOME`, reports); inside `tree`, left alone by syncs.
    pub home: PathBuf,
    pub report_dir: PathBuf,
    base: PathBuf,
    max_files: usize,
    /// Files copied and entries removed by the last sync.
    pub copied: usize,
    pub removed: usize,
    _lock: fs::File,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Manifest {
    /// rel path → (source len, source mtime ns, copy len, copy mtime ns)
    files: HashMap<String, (u64, u128, u64, u128)>,
}

fn mtime_ns(m: &fs::Metadata) -> u128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The scratch base of a workspace: `<cache>/verify/<hash of the root>`.
pub fn scratch_base(cache_dir: &Path, root: &Path) -> PathBuf {
    let h = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
    cache_dir.join("verify").join(&h[..16])
}

/// The files of `root` that go into a scratch copy: gitignore-aware, hidden files included,
/// VCS/build/virtualenv directories left out; gitignored source files of a known language come
/// along (generated modules the project imports), secret-named files never.
pub fn source_files(root: &Path, max_files: usize) -> Result<Vec<String>, ScratchError> {
    let mut out = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .parents(false)
        .filter_entry(|e| !is_dir_named(e, |n| SKIP_DIRS.contains(&n)))
        .build();
    collect(walker, root, max_files, &mut out, |_, _| true)?;
    // Gitignored source files the build generates (`_version.py` from setuptools-scm/hatch-vcs,
    // generated Rust/Java sources) and what an install builds in place (`.mo` catalogs, extension
    // modules) are needed to import, compile or run the project: they come along, secret-named
    // files and build-output directories never.
    let listed: HashSet<String> = out.iter().cloned().collect();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .filter_entry(|e| {
            !is_dir_named(e, |n| {
                SKIP_DIRS.contains(&n)
                    || GENERATED_SKIP_DIRS.contains(&n)
                    || n.ends_with(".egg-info")
            })
        })
        .build();
    collect(walker, root, max_files, &mut out, |entry, rel| {
        let built = entry
            .path()
            .extension()
            .is_some_and(|e| GENERATED_EXTS.contains(&e.to_string_lossy().as_ref()));
        !listed.contains(rel)
            && (built || codeforge_syntax::Language::from_path(entry.path()).is_some())
            && !codeforge_syntax::secret_scan::is_secret_name(&entry.file_name().to_string_lossy())
    })?;
    out.sort();
    Ok(out)
}

fn is_dir_named(e: &ignore::DirEntry, skip: impl Fn(&str) -> bool) -> bool {
    e.file_type().is_some_and(|t| t.is_dir()) && skip(&e.file_name().to_string_lossy())
}

/// Appends the walk's files (relative, `/`-separated, at most [`MAX_FILE`] bytes) that `keep`
/// accepts; over `max_files` in all is an error.
fn collect(
    walker: ignore::Walk,
    root: &Path,
    max_files: usize,
    out: &mut Vec<String>,
    keep: impl Fn(&ignore::DirEntry, &str) -> bool,
) -> Result<(), ScratchError> {
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if !keep(&entry, &rel) || entry.metadata().map(|m| m.len() > MAX_FILE).unwrap_or(true) {
            continue;
        }
        out.push(rel);
        if out.len() > max_files {
            return Err(ScratchError::TooBig(max_files));
        }
    }
    Ok(())
}

/// Gitignored files an install builds into the source tree that the code loads at run time:
/// compiled message catalogs (humanize's `locale/*/LC_MESSAGES/*.mo`) and in-place extension
/// modules of an editable install.
const GENERATED_EXTS: [&str; 3] = ["mo", "so", "pyd"];

/// Gitignored directories whose source files are build output, not inputs (never copied).
const GENERATED_SKIP_DIRS: [&str; 5] = ["build", "dist", ".eggs", "site-packages", "out"];

impl Scratch {
    /// Locks the workspace's scratch copy and brings `<base>/tree` in sync with `root`
    /// (blocking; call off the async runtime).
    pub fn sync(root: &Path, base: &Path, max_files: usize) -> Result<Scratch, ScratchError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| ScratchError::Io(p, e)
        };
        fs::create_dir_all(base).map_err(io(base))?;
        let lock_path = base.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        // Blocks until another verification of this workspace ends (flock on Unix).
        if let Err(e) = lock.lock() {
            return Err(ScratchError::Io(lock_path, e));
        }
        let tree = base.join("tree");
        let mut s = Scratch {
            home: tree.join(".codeforge-home"),
            report_dir: tree.join(".codeforge-report"),
            tree,
            base: base.to_path_buf(),
            max_files,
            copied: 0,
            removed: 0,
            _lock: lock,
        };
        s.refresh(root)?;
        Ok(s)
    }

    /// Syncs again (before each candidate: the previous one may have vandalised the copy).
    pub fn refresh(&mut self, root: &Path) -> Result<(), ScratchError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| ScratchError::Io(p, e)
        };
        let tree = self.tree.clone();
        fs::create_dir_all(&tree).map_err(io(&tree))?;
        let manifest_path = self.base.join("manifest.json");
        let mut manifest: Manifest = fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let files = source_files(root, self.max_files)?;
        let wanted: HashSet<&str> = files.iter().map(String::as_str).collect();
        let mut copied = 0;
        for rel in &files {
            let src = root.join(rel);
            let dst = tree.join(rel);
            let Ok(sm) = fs::metadata(&src) else { continue };
            let (slen, smt) = (sm.len(), mtime_ns(&sm));
            let fresh = match (manifest.files.get(rel), fs::symlink_metadata(&dst)) {
                (Some(&(l, m, cl, cm)), Ok(dm)) => {
                    l == slen && m == smt && dm.is_file() && dm.len() == cl && mtime_ns(&dm) == cm
                }
                _ => false,
            };
            if fresh {
                continue;
            }
            if let Some(parent) = dst.parent() {
                // A candidate may have put a file where a directory belongs.
                for anc in parent
                    .ancestors()
                    .take_while(|a| a.starts_with(&tree) && *a != tree)
                {
                    if fs::symlink_metadata(anc).is_ok_and(|m| !m.is_dir()) {
                        let _ = fs::remove_file(anc);
                    }
                }
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&dst).map_err(io(&dst))?;
            } else {
                let _ = fs::remove_file(&dst);
            }
            // A fresh copy (reflinked where the filesystem can), never a hard link: a candidate
            // writing through a link would change the user's file.
            fs::copy(&src, &dst).map_err(io(&src))?;
            let dm = fs::metadata(&dst).map_err(io(&dst))?;
            manifest
                .files
                .insert(rel.clone(), (slen, smt, dm.len(), mtime_ns(&dm)));
            copied += 1;
        }
        manifest.files.retain(|k, _| wanted.contains(k.as_str()));
        let removed = prune(&tree, &tree, &wanted);
        let tmp = self.base.join("manifest.json.tmp");
        if let Ok(mut f) = fs::File::create(&tmp) {
            let _ = f.write_all(&serde_json::to_vec(&manifest).unwrap_or_default());
            let _ = fs::rename(&tmp, &manifest_path);
        }
        let _ = fs::remove_dir_all(&self.home);
        let _ = fs::remove_dir_all(&self.report_dir);
        fs::create_dir_all(&self.home).map_err(io(&self.home))?;
        fs::create_dir_all(&self.report_dir).map_err(io(&self.report_dir))?;
        self.copied = copied;
        self.removed = removed;
        Ok(())
    }

    /// Writes `text` at `rel` in the scratch tree (the candidate's file, or a generated test).
    pub fn write(&self, rel: &str, text: &str) -> std::io::Result<()> {
        let p = self.tree.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        let _ = fs::remove_file(&p);
        fs::write(&p, text)
    }
}

/// Removes what is in the scratch tree but not wanted; returns how many entries went.
fn prune(tree: &Path, dir: &Path, wanted: &HashSet<&str>) -> usize {
    let mut removed = 0;
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(rel) = p.strip_prefix(tree) else {
            continue;
        };
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if KEEP_IN_SCRATCH.contains(&name.as_str()) {
                continue;
            }
            removed += prune(tree, &p, wanted);
            if fs::read_dir(&p)
                .map(|mut r| r.next().is_none())
                .unwrap_or(false)
            {
                let prefix = format!("{rel_s}/");
                if !wanted.iter().any(|w| w.starts_with(&prefix)) && fs::remove_dir(&p).is_ok() {
                    removed += 1;
                }
            }
        } else if !wanted.contains(rel_s.as_str()) {
            if fs::remove_file(&p).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cloned repository's symlinks to the user's files (`key -> ~/.ssh/id_ed25519`) must not
    /// bring those files into the copy that candidates and the repository's tests can read.
    #[test]
    #[cfg(unix)]
    fn symlinks_out_of_the_workspace_are_not_followed() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("id_ed25519"), "KEY").unwrap();
        std::fs::write(ws.path().join("a.py"), "x = 1\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("id_ed25519"), ws.path().join("key"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join("dir")).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let base = cache.path().join("b");
        let s = Scratch::sync(ws.path(), &base, 1000).unwrap();
        assert!(s.tree.join("a.py").is_file());
        assert!(
            std::fs::symlink_metadata(s.tree.join("key")).is_err(),
            "the linked file came along"
        );
        assert!(
            std::fs::symlink_metadata(s.tree.join("dir")).is_err(),
            "the linked dir came along"
        );
    }

    #[test]
    fn sync_copies_restores_and_prunes() {
        let ws = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::create_dir_all(ws.path().join("pkg")).unwrap();
        fs::write(ws.path().join("pkg/a.py"), "a = 1\n").unwrap();
        fs::write(
            ws.path().join(".gitignore"),
            "secret.txt\n_version.py\nbuild/\n*.mo\n",
        )
        .unwrap();
        fs::write(ws.path().join("fr.mo"), "catalog").unwrap();
        fs::write(ws.path().join("secret.txt"), "key").unwrap();
        fs::write(ws.path().join("_version.py"), "__version__ = '1.0'\n").unwrap();
        fs::create_dir_all(ws.path().join("build/lib/pkg")).unwrap();
        fs::write(ws.path().join("build/lib/pkg/a.py"), "a = 0\n").unwrap();
        fs::create_dir_all(ws.path().join(".git")).unwrap();
        fs::write(ws.path().join(".git/HEAD"), "ref").unwrap();
        let base = scratch_base(cache.path(), ws.path());
        let s = Scratch::sync(ws.path(), &base, 1000).unwrap();
        assert_eq!(
            fs::read_to_string(s.tree.join("pkg/a.py")).unwrap(),
            "a = 1\n"
        );
        assert!(
            !s.tree.join("secret.txt").exists(),
            "gitignored files stay home"
        );
        assert!(
            s.tree.join("_version.py").is_file(),
            "a gitignored generated module the package imports comes along"
        );
        assert!(
            s.tree.join("fr.mo").is_file(),
            "a compiled message catalog comes along"
        );
        assert!(!s.tree.join("build").exists(), "build output stays home");
        assert!(!s.tree.join(".git").exists());
        // A candidate vandalises the scratch copy.
        fs::write(s.tree.join("pkg/a.py"), "broken").unwrap();
        fs::write(s.tree.join("junk.py"), "x").unwrap();
        fs::create_dir_all(s.tree.join("target/debug")).unwrap();
        drop(s);
        let s = Scratch::sync(ws.path(), &base, 1000).unwrap();
        assert_eq!(
            fs::read_to_string(s.tree.join("pkg/a.py")).unwrap(),
            "a = 1\n"
        );
        assert!(!s.tree.join("junk.py").exists());
        assert!(
            s.tree.join("target/debug").exists(),
            "build outputs are kept for incremental builds"
        );
        assert_eq!(s.copied, 1);
        // The user deletes a file.
        drop(s);
        fs::remove_file(ws.path().join("pkg/a.py")).unwrap();
        let s = Scratch::sync(ws.path(), &base, 1000).unwrap();
        assert!(!s.tree.join("pkg/a.py").exists());
        assert!(!s.tree.join("pkg").exists());
    }
}
