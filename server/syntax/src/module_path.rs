//! Module paths derived from a file's workspace-relative path (`src/pkg/mod.py` → `pkg.mod`,
//! `src/io/mod.rs` → `crate::io`). Java packages come from the source, not from here.

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
    match lang {
        Language::Python => {
            if parts
                .first()
                .is_some_and(|p| spec.source_roots.iter().any(|r| r == p))
            {
                parts.remove(0);
            }
            let mut out: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            if stem != "__init__" {
                out.push(stem.to_string());
            }
            out
        }
        Language::Rust => {
            let src_at = parts
                .iter()
                .rposition(|p| spec.source_roots.iter().any(|r| r == p));
            match src_at {
                Some(i) => {
                    let rest = &parts[i + 1..];
                    let mut out = vec!["crate".to_string()];
                    out.extend(rest.iter().map(|s| s.to_string()));
                    let is_root = rest.is_empty() && (stem == "lib" || stem == "main");
                    if !is_root && stem != "mod" {
                        out.push(stem.to_string());
                    }
                    out
                }
                // tests/, benches/, examples/: each file is its own crate.
                None => vec![stem.to_string()],
            }
        }
        Language::Java => Vec::new(),
    }
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
