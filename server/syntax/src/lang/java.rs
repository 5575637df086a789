//! Java's syntax behaviour beyond `grammars/java/language.toml`: a file's module is the package
//! it declares, never its path.

use super::LanguageSupport;
use crate::LanguageSpec;

pub(crate) struct Java;

impl LanguageSupport for Java {
    fn module_path(&self, _spec: &LanguageSpec, _dirs: &[&str], _stem: &str) -> Vec<String> {
        Vec::new()
    }

    fn file_module(&self, _from_path: Vec<String>, package: Option<&str>) -> Vec<String> {
        package
            .map(|p| p.split('.').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    }
}
