//! Java's syntax behaviour beyond `grammars/java/language.toml`: a file's module is the package
//! it declares, never its path.

use super::LanguageSupport;
use crate::LanguageSpec;

pub(crate) struct Java;

impl LanguageSupport for Java {
    /// `import a.b.C;` gives `C`, `import static a.B.max;` gives `max`; `package` nothing.
    fn imported_names(&self, statement: &str) -> Vec<String> {
        let Some(body) = statement.strip_prefix("import ") else {
            return Vec::new();
        };
        let body = body.trim_start();
        let body = body.strip_prefix("static ").unwrap_or(body);
        let path = body.split(';').next().unwrap_or("").trim();
        vec![path.rsplit('.').next().unwrap_or("").trim().to_string()]
    }

    /// A class of the file's own package needs no import.
    fn import_needed(&self, rel_path: &str, path: &str, module: &str) -> bool {
        rel_path != path && package_of(rel_path).as_deref() != Some(module)
    }

    fn module_path(&self, _spec: &LanguageSpec, _dirs: &[&str], _stem: &str) -> Vec<String> {
        Vec::new()
    }

    fn file_module(&self, _from_path: Vec<String>, package: Option<&str>) -> Vec<String> {
        package
            .map(|p| p.split('.').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    }
}

/// A Java file's package from its path under `src/main/java/` or `src/test/java/`.
fn package_of(rel_path: &str) -> Option<String> {
    let (_, rest) = rel_path
        .split_once("src/main/java/")
        .or_else(|| rel_path.split_once("src/test/java/"))?;
    let (dir, _) = rest.rsplit_once('/')?;
    Some(dir.replace('/', "."))
}
