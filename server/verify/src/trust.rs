//! Per-workspace trust, remembered in the user's config dir (`<config>/codeforge/trust.json`):
//! running a workspace's tests executes its code, so it happens only where the user said yes
//! (or configured `verify.trust = "always"` in their own settings). "Not now" is kept for the
//! session by the caller.
//!
//! The same store pins the user's approval of a workspace's `codeforge.toml` to a blake3 hash of
//! its bytes (as direnv's `allow` and mise's `trust` do): until the file with exactly those bytes
//! is approved, the keys that can send code or keys elsewhere, load weights, run programs or
//! trust the workspace ([`codeforge_config::RESTRICTED_WORKSPACE_KEYS`]) are ignored.
//! [`read_workspace_config`] and [`read_user_config`] are the one place both the language server
//! and the command line read configuration files. Trust decisions are only ever written here by
//! the user's own actions (an answer in the editor, `codeforge trust`).
//!
//! `trust.json` maps a workspace root to `"allow"` / `"never"` (the original format, still
//! written when that is all there is to say) or to
//! `{"tests": "allow"|"never", "config_blake3": "<hex>"}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use codeforge_config::{ConfigError, Layer, USER_CONFIG_FILE, WORKSPACE_CONFIG_FILE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustDecision {
    Allow,
    Never,
}

/// What is already known about running tests in `root`, from the setting and the remembered
/// answer; `None` when the user has to be asked. Shared by the language server and the CLI.
pub fn known_trust(
    setting: codeforge_config::TrustSetting,
    store: Option<&TrustStore>,
    root: &Path,
) -> Option<Result<(), String>> {
    use codeforge_config::TrustSetting;
    match setting {
        TrustSetting::Always => Some(Ok(())),
        TrustSetting::Never => Some(Err("running tests is off for this workspace (verify.trust = \"never\")".into())),
        TrustSetting::Ask => match store.and_then(|s| s.get(root))? {
            TrustDecision::Allow => Some(Ok(())),
            TrustDecision::Never => Some(Err(
                "you chose never to run tests in this workspace (run “CodeForge: Trust workspace” to change)".into(),
            )),
        },
    }
}

/// What the user decided about one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustEntry {
    /// Running its tests: allowed or never (`None`: ask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TrustDecision>,
    /// blake3 (hex) of the `codeforge.toml` whose restricted keys the user approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_blake3: Option<String>,
}

/// One value of `trust.json`: the original bare decision, or an entry.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Stored {
    Decision(TrustDecision),
    Entry(TrustEntry),
}

impl From<Stored> for TrustEntry {
    fn from(s: Stored) -> TrustEntry {
        match s {
            Stored::Decision(d) => TrustEntry {
                tests: Some(d),
                config_blake3: None,
            },
            Stored::Entry(e) => e,
        }
    }
}

/// The hash an approval of a configuration file is pinned to.
pub fn config_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The remembered decisions, one JSON file.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
}

impl TrustStore {
    pub fn new(path: PathBuf) -> Self {
        TrustStore { path }
    }

    /// `<config dir>/codeforge/trust.json` (`$XDG_CONFIG_HOME`, else `~/.config`).
    pub fn default_path() -> Option<PathBuf> {
        user_config_dir().map(|d| d.join("trust.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> BTreeMap<String, TrustEntry> {
        let stored: BTreeMap<String, Stored> = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        stored.into_iter().map(|(k, v)| (k, v.into())).collect()
    }

    /// Everything decided about `root` (empty when nothing is).
    pub fn entry(&self, root: &Path) -> TrustEntry {
        self.load()
            .remove(&root.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether tests may run in `root`, as remembered.
    pub fn get(&self, root: &Path) -> Option<TrustDecision> {
        self.entry(root).tests
    }

    /// Whether the user approved `root`'s `codeforge.toml` with exactly this hash.
    pub fn config_approved(&self, root: &Path, hash: &str) -> bool {
        self.entry(root).config_blake3.as_deref() == Some(hash)
    }

    /// Records (or with `None`, forgets) the decision about running tests in `root`.
    pub fn set(&self, root: &Path, decision: Option<TrustDecision>) -> std::io::Result<()> {
        self.update(root, |e| e.tests = decision)
    }

    /// Pins (or with `None`, withdraws) the approval of `root`'s `codeforge.toml`.
    pub fn approve_config(&self, root: &Path, hash: Option<&str>) -> std::io::Result<()> {
        self.update(root, |e| e.config_blake3 = hash.map(str::to_string))
    }

    /// Forgets everything about `root` (tests: ask again; its file: ignored keys again).
    pub fn forget(&self, root: &Path) -> std::io::Result<()> {
        self.update(root, |e| *e = TrustEntry::default())
    }

    fn update(&self, root: &Path, change: impl FnOnce(&mut TrustEntry)) -> std::io::Result<()> {
        let mut all = self.load();
        let key = root.to_string_lossy().into_owned();
        let mut entry = all.remove(&key).unwrap_or_default();
        change(&mut entry);
        if entry != TrustEntry::default() {
            all.insert(key, entry);
        }
        // A bare decision is written the original way, so older versions still read it.
        let stored: BTreeMap<String, Stored> = all
            .into_iter()
            .map(|(k, e)| match (e.tests, &e.config_blake3) {
                (Some(d), None) => (k, Stored::Decision(d)),
                _ => (k, Stored::Entry(e)),
            })
            .collect();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&stored).unwrap_or_default())?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// `<config dir>/codeforge` (`$XDG_CONFIG_HOME`, else `~/.config`).
pub fn user_config_dir() -> Option<PathBuf> {
    codeforge_config::user_config_dir(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The user's own settings file, `<config dir>/codeforge/config.toml`: applied before the
/// workspace's file, and allowed to set everything.
pub fn user_config_path() -> Option<PathBuf> {
    user_config_dir().map(|d| d.join(USER_CONFIG_FILE))
}

/// Reading a configuration file failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// The user's own settings file at `path`; `None` when there is none.
pub fn read_user_config(path: &Path) -> Result<Option<Layer>, ConfigFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(codeforge_config::parse_toml(
            &path.display().to_string(),
            &text,
        )?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigFileError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A workspace's `codeforge.toml`, gated by the user's approval of its exact bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceConfig {
    pub path: PathBuf,
    /// [`config_hash`] of the file's bytes.
    pub hash: String,
    /// Everything the file says.
    pub full: Layer,
    /// What applies: `full` once approved, else the part without restricted keys.
    pub effective: Layer,
    /// The restricted keys the file sets (approved or not).
    pub restricted: Vec<&'static str>,
    /// The user approved this file's bytes.
    pub approved: bool,
}

impl WorkspaceConfig {
    /// Builds the gated view of a file's bytes (no I/O but the store's lookup).
    pub fn from_bytes(
        root: &Path,
        bytes: &[u8],
        store: Option<&TrustStore>,
    ) -> Result<WorkspaceConfig, ConfigFileError> {
        let path = root.join(WORKSPACE_CONFIG_FILE);
        let text = String::from_utf8_lossy(bytes);
        let full = codeforge_config::parse_toml(&path.display().to_string(), &text)?;
        let hash = config_hash(bytes);
        let (safe, restricted) = codeforge_config::restrict_workspace_layer(&full);
        let approved =
            restricted.is_empty() || store.is_some_and(|s| s.config_approved(root, &hash));
        Ok(WorkspaceConfig {
            path,
            hash,
            effective: if approved { full.clone() } else { safe },
            full,
            restricted,
            approved,
        })
    }

    /// The keys being ignored now (empty once approved).
    pub fn ignored(&self) -> &[&'static str] {
        if self.approved { &[] } else { &self.restricted }
    }

    /// One sentence naming the ignored keys and saying what they could do, for `how` to follow
    /// ("Run `codeforge trust …` to approve it." or the editor's buttons). `None`: nothing ignored.
    pub fn ignored_message(&self, how: &str) -> Option<String> {
        let keys = self.ignored();
        if keys.is_empty() {
            return None;
        }
        Some(format!(
            "This workspace's {} sets {}, which can send your code or keys elsewhere, load code or \
             run programs, or let its tests run; {} ignored until you approve this file. {how}",
            self.path.display(),
            keys.join(", "),
            if keys.len() == 1 { "it is" } else { "they are" },
        ))
    }
}

/// `<root>/codeforge.toml`, gated by the approvals in `store`; `None` when there is no file.
pub fn read_workspace_config(
    root: &Path,
    store: Option<&TrustStore>,
) -> Result<Option<WorkspaceConfig>, ConfigFileError> {
    let path = root.join(WORKSPACE_CONFIG_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => WorkspaceConfig::from_bytes(root, &bytes, store).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigFileError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_workspace() {
        let d = tempfile::tempdir().unwrap();
        let s = TrustStore::new(d.path().join("c/trust.json"));
        assert_eq!(s.get(Path::new("/a")), None);
        s.set(Path::new("/a"), Some(TrustDecision::Allow)).unwrap();
        s.set(Path::new("/b"), Some(TrustDecision::Never)).unwrap();
        let s2 = TrustStore::new(d.path().join("c/trust.json"));
        assert_eq!(s2.get(Path::new("/a")), Some(TrustDecision::Allow));
        assert_eq!(s2.get(Path::new("/b")), Some(TrustDecision::Never));
        s2.set(Path::new("/a"), None).unwrap();
        assert_eq!(s.get(Path::new("/a")), None);
    }

    const REPO_TOML: &str = "[verify]\ntrust = \"always\"\n[embeddings]\nbackend = \"openai\"\n\
                             url = \"http://127.0.0.1:9/v1\"\nmodel = \"e\"\napi_key_env = \"GITHUB_TOKEN\"\n\
                             [index]\nmax_file_size = 99\n";

    #[test]
    fn a_workspace_file_is_restricted_until_its_bytes_are_approved() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        std::fs::create_dir_all(&root).unwrap();
        let store = TrustStore::new(d.path().join("cfg/trust.json"));
        assert_eq!(read_workspace_config(&root, Some(&store)).unwrap(), None);

        std::fs::write(root.join(WORKSPACE_CONFIG_FILE), REPO_TOML).unwrap();
        let c = read_workspace_config(&root, Some(&store)).unwrap().unwrap();
        assert!(!c.approved);
        assert_eq!(
            c.ignored(),
            [
                "embeddings.backend",
                "embeddings.url",
                "embeddings.api_key_env",
                "verify.trust"
            ]
        );
        let s = codeforge_config::resolve([("f", &c.effective)]).unwrap();
        assert_eq!(s.verify.trust, codeforge_config::TrustSetting::Ask);
        assert_eq!(s.index.max_file_size, 99, "the safe keys apply");
        assert!(matches!(
            s.embeddings,
            codeforge_config::EmbeddingSettings::Local { .. }
        ));
        let msg = c.ignored_message("Approve it.").unwrap();
        assert!(
            msg.contains("embeddings.api_key_env") && msg.contains("verify.trust"),
            "{msg}"
        );
        assert!(msg.ends_with("Approve it."), "{msg}");

        // Approved: pinned to the hash of these bytes; the whole file applies.
        store.approve_config(&root, Some(&c.hash)).unwrap();
        let c2 = read_workspace_config(&root, Some(&store)).unwrap().unwrap();
        assert!(c2.approved && c2.ignored().is_empty() && c2.ignored_message("x").is_none());
        assert_eq!(c2.effective, c2.full);
        assert_eq!(
            store.get(&root),
            None,
            "approving the file is not a test-run decision"
        );
        // Another workspace is not approved by it.
        let other = d.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(WORKSPACE_CONFIG_FILE), REPO_TOML).unwrap();
        assert!(
            !read_workspace_config(&other, Some(&store))
                .unwrap()
                .unwrap()
                .approved
        );

        // One changed byte asks again.
        std::fs::write(root.join(WORKSPACE_CONFIG_FILE), format!("{REPO_TOML}#\n")).unwrap();
        let c3 = read_workspace_config(&root, Some(&store)).unwrap().unwrap();
        assert!(!c3.approved);
        assert_ne!(c3.hash, c.hash);
        assert_eq!(c3.effective, c.effective);

        // Revoked: the original bytes are not approved any more either.
        std::fs::write(root.join(WORKSPACE_CONFIG_FILE), REPO_TOML).unwrap();
        assert!(
            read_workspace_config(&root, Some(&store))
                .unwrap()
                .unwrap()
                .approved
        );
        store.set(&root, Some(TrustDecision::Allow)).unwrap();
        store.forget(&root).unwrap();
        assert!(
            !read_workspace_config(&root, Some(&store))
                .unwrap()
                .unwrap()
                .approved
        );
        assert_eq!(store.entry(&root), TrustEntry::default());
        // No store at all: nothing is approved.
        assert!(
            !read_workspace_config(&root, None)
                .unwrap()
                .unwrap()
                .approved
        );
        // A file without restricted keys needs no approval.
        std::fs::write(
            root.join(WORKSPACE_CONFIG_FILE),
            "[index]\non_startup = false\n",
        )
        .unwrap();
        assert!(
            read_workspace_config(&root, None)
                .unwrap()
                .unwrap()
                .approved
        );
        // A bad file is an error naming it.
        std::fs::write(
            root.join(WORKSPACE_CONFIG_FILE),
            "[verify]\ntrusted = true\n",
        )
        .unwrap();
        let e = read_workspace_config(&root, None).unwrap_err().to_string();
        assert!(e.contains("codeforge.toml") && e.contains("trusted"), "{e}");
    }

    #[test]
    fn the_store_reads_the_original_format_and_writes_it_when_it_can() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("trust.json");
        std::fs::write(&path, r#"{"/a": "allow", "/b": "never"}"#).unwrap();
        let s = TrustStore::new(path.clone());
        assert_eq!(s.get(Path::new("/a")), Some(TrustDecision::Allow));
        assert_eq!(s.get(Path::new("/b")), Some(TrustDecision::Never));
        s.approve_config(Path::new("/a"), Some("abc")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"/a": {"tests": "allow", "config_blake3": "abc"}, "/b": "never"})
        );
        assert_eq!(s.get(Path::new("/a")), Some(TrustDecision::Allow));
        assert!(s.config_approved(Path::new("/a"), "abc"));
        assert!(!s.config_approved(Path::new("/a"), "abd"));
        s.approve_config(Path::new("/a"), None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"/a": "allow", "/b": "never"}));
    }
}
