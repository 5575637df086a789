//! Per-workspace trust, remembered in the user's config dir (`<config>/codeforge/trust.json`):
//! running a workspace's tests executes its code, so it happens only where the user said yes
//! (or configured `verify.trust = "always"`). "Not now" is kept for the session by the caller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|c| c.join("codeforge").join("trust.json"))
    }

    fn load(&self) -> BTreeMap<String, TrustDecision> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn get(&self, root: &Path) -> Option<TrustDecision> {
        self.load()
            .get(&root.to_string_lossy().into_owned())
            .copied()
    }

    /// Records (or with `None`, forgets) the decision for `root`.
    pub fn set(&self, root: &Path, decision: Option<TrustDecision>) -> std::io::Result<()> {
        let mut all = self.load();
        let key = root.to_string_lossy().into_owned();
        match decision {
            Some(d) => {
                all.insert(key, d);
            }
            None => {
                all.remove(&key);
            }
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&all).unwrap_or_default())?;
        std::fs::rename(&tmp, &self.path)
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
}
