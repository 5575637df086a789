//! Module paths derived from a file's workspace-relative path (`src/pkg/mod.py` → `pkg.mod`,
//! `src/io/mod.rs` → `crate::io`). Java packages come from the source, not from here. The
//! path is split here; each language's rule is in `lang/<lang>.rs`.

use crate::Language;

/// The module path of a file, as segments. `rel_path` uses `/` or the platform separator.
pub fn module_path(lang: Language, rel_path: &str) -> Vec<String> {
    let spec = lang.spec();
    let mut parts: Vec<&str> = rel_path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some(file) = parts.pop() else {
        return Vec::new();
    };
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    lang.support().module_path(spec, &parts, stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_paths() {
        assert_eq!(
            module_path(Language::Python, "src/pkg/mod.py"),
            ["pkg", "mod"]
        );
        assert_eq!(module_path(Language::Python, "pkg/__init__.py"), ["pkg"]);
        assert_eq!(
            module_path(Language::Python, "tests/test_x.py"),
            ["tests", "test_x"]
        );
        assert_eq!(module_path(Language::Python, "app.py"), ["app"]);
    }

    #[test]
    fn rust_paths() {
        assert_eq!(module_path(Language::Rust, "src/lib.rs"), ["crate"]);
        assert_eq!(module_path(Language::Rust, "src/main.rs"), ["crate"]);
        assert_eq!(
            module_path(Language::Rust, "src/io/mod.rs"),
            ["crate", "io"]
        );
        assert_eq!(
            module_path(Language::Rust, "src/io/read.rs"),
            ["crate", "io", "read"]
        );
        assert_eq!(
            module_path(Language::Rust, "server/index/src/store.rs"),
            ["crate", "store"]
        );
        assert_eq!(module_path(Language::Rust, "tests/it.rs"), ["it"]);
    }
}
