//! Which files of a workspace may be indexed: `.gitignore` semantics plus `.codeforgeignore` and
//! configured excludes, vendored/build output left out, and secrets refused whatever any ignore
//! file says. Reads directory metadata only; file contents are checked by [`classify_content`].

use std::path::{Path, PathBuf};

use codeforge_syntax::Language;
use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use serde::Serialize;

pub const CUSTOM_IGNORE_FILE: &str = ".codeforgeignore";

/// Why a file was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    TooLarge,
    Binary,
    NotUtf8,
    Secret,
    Unreadable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too_large",
            SkipReason::Binary => "binary",
            SkipReason::NotUtf8 => "not_utf8",
            SkipReason::Secret => "secret",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

/// A file the walk found that may be indexed, with its metadata.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub rel_path: String,
    pub abs_path: PathBuf,
    pub language: Language,
    pub size: u64,
    pub mtime_ns: i64,
}

#[derive(Debug, Default)]
pub struct WalkResult {
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<(String, SkipReason)>,
    /// Directories left out as vendored or build output.
    pub vendored_dirs: usize,
}

/// Directory names that hold vendored code or build output, anywhere in the tree.
const VENDORED_ANYWHERE: &[&str] = &[
    "node_modules",
    "target",
    "vendor",
    "third_party",
    "__pycache__",
    "site-packages",
    ".tox",
    ".nox",
    ".eggs",
    ".mypy_cache",
    ".pytest_cache",
    ".venv",
    "venv",
    ".git",
    ".hg",
    ".svn",
];
/// Directory names that are build output when directly under the workspace root.
const VENDORED_AT_TOP: &[&str] = &["build", "dist", "out"];

/// Is this file name secret material? Applies whatever the ignore files say. The rules live in
/// `codeforge_syntax::secret_scan` (shared with the prompts, which mask what it finds).
pub use codeforge_syntax::secret_scan::is_secret_name;

/// Does this text hold secret material (private keys, provider tokens, high-entropy
/// `password = "…"` assignments; see `codeforge_syntax::secret_scan`)?
pub fn has_secret_content(text: &str) -> bool {
    codeforge_syntax::secret_scan::has_secret(text)
}

/// Decides from the bytes whether a file can be indexed, and gives its text.
pub fn classify_content(bytes: &[u8]) -> Result<&str, SkipReason> {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)?;
    if has_secret_content(text) {
        return Err(SkipReason::Secret);
    }
    Ok(text)
}

/// Workspace-relative path with `/` separators.
pub fn rel_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(c.as_os_str().to_str()?);
    }
    Some(out)
}

pub struct WalkOptions<'a> {
    pub max_file_size: u64,
    pub exclude: &'a [String],
    pub languages: &'a [Language],
}

/// Walks the workspace. Never follows symlinks; never descends into vendored directories.
pub fn walk(root: &Path, opts: &WalkOptions) -> anyhow::Result<WalkResult> {
    let mut result = WalkResult::default();
    let mut overrides = OverrideBuilder::new(root);
    for pat in opts.exclude {
        let pat = pat.trim();
        if pat.is_empty() {
            continue;
        }
        overrides
            .add(&format!("!{}", pat.trim_start_matches('!')))
            .map_err(|e| anyhow::anyhow!("bad exclude pattern `{pat}`: {e}"))?;
    }
    let overrides = overrides.build()?;
    let root_owned = root.to_path_buf();
    let vendored = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let vendored_in = vendored.clone();
    let walker = WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        .require_git(false)
        .parents(true)
        .ignore(true)
        .follow_links(false)
        .add_custom_ignore_filename(CUSTOM_IGNORE_FILE)
        .overrides(overrides)
        .filter_entry(move |e| {
            if e.depth() == 0 || !e.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            let vendored_dir = VENDORED_ANYWHERE.contains(&name.as_ref())
                || (e.depth() == 1 && VENDORED_AT_TOP.contains(&name.as_ref()))
                || e.path().join("pyvenv.cfg").exists();
            if vendored_dir {
                vendored_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            !vendored_dir
        })
        .build();
    for entry in walker {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Some(language) = Language::from_path(path) else {
            continue;
        };
        if !opts.languages.contains(&language) {
            continue;
        }
        let Some(rel) = rel_path(&root_owned, path) else {
            continue;
        };
        let file_name = entry.file_name().to_string_lossy();
        if is_secret_name(&file_name) {
            result.skipped.push((rel, SkipReason::Secret));
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            result.skipped.push((rel, SkipReason::Unreadable));
            continue;
        };
        if meta.len() > opts.max_file_size {
            result.skipped.push((rel, SkipReason::TooLarge));
            continue;
        }
        result.candidates.push(Candidate {
            rel_path: rel,
            abs_path: path.to_path_buf(),
            language,
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
        });
    }
    result.vendored_dirs = vendored.load(std::sync::atomic::Ordering::Relaxed);
    result
        .candidates
        .sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(result)
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_content() {
        let body: String = (0..4)
            .map(|i| {
                format!(
                    "{}\n",
                    ["MIIEowIBAAKCAQEA", "q7Zp3Xc9Lm2Vb8Nw"][i % 2].repeat(4)
                )
            })
            .collect();
        assert!(has_secret_content(&format!(
            "x = '''-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----'''"
        )));
        assert!(has_secret_content(&format!(
            "KEY = '{}{}'",
            "AKIA", "IOSFODNN7EXAMPLE"
        )));
        assert!(has_secret_content(&format!(
            "API_KEY = \"{}\"",
            "q7Zp3Xc9Lm2Vb8Nw4Rt6Yk1Hs5Dj0Gf"
        )));
        assert!(!has_secret_content("AKIA_PREFIX = 1\ndef f(): pass"));
        assert!(!has_secret_content("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(!has_secret_content(
            "def read(p):\n    password = input()\n    token = self.next_token()\n"
        ));
        // A file holding one is refused.
        assert_eq!(
            classify_content(
                format!(
                    "GH = '{}_{}'",
                    "ghp", "q7Zp3Xc9Lm2Vb8Nw4Rt6Yk1Hs5Dj0GfAb123"
                )
                .as_bytes()
            ),
            Err(SkipReason::Secret)
        );
    }

    #[test]
    fn content_classes() {
        assert_eq!(classify_content(b"a\0b"), Err(SkipReason::Binary));
        assert_eq!(
            classify_content(&[0xff, 0xfe, 0x41]),
            Err(SkipReason::NotUtf8)
        );
        assert_eq!(
            classify_content("def f(): pass".as_bytes()),
            Ok("def f(): pass")
        );
    }
}
