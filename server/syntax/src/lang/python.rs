//! Python's syntax behaviour beyond `grammars/python/language.toml`: module paths from file
//! paths (`src/pkg/mod.py` → `pkg.mod`, a package's `__init__.py` is the package).

use super::LanguageSupport;
use crate::LanguageSpec;

pub(crate) struct Python;

impl LanguageSupport for Python {
    /// `from m import a, b as c` gives `a`, `b` (the names as defined); `import m` nothing.
    fn imported_names(&self, statement: &str) -> Vec<String> {
        let Some((_, items)) = statement
            .strip_prefix("from ")
            .and_then(|s| s.split_once(" import "))
        else {
            return Vec::new();
        };
        items
            .split([',', '(', ')', '\\'])
            .map(|item| item.split('#').next().unwrap_or(""))
            .map(|item| item.split(" as ").next().unwrap_or("").trim().to_string())
            .collect()
    }

    fn module_path(&self, spec: &LanguageSpec, dirs: &[&str], stem: &str) -> Vec<String> {
        let dirs = match dirs.first() {
            Some(first) if spec.source_roots.iter().any(|r| r == first) => &dirs[1..],
            _ => dirs,
        };
        let mut out: Vec<String> = dirs.iter().map(|s| s.to_string()).collect();
        if stem != "__init__" {
            out.push(stem.to_string());
        }
        out
    }
}
