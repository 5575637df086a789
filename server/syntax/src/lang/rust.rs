//! Rust's syntax behaviour beyond `grammars/rust/language.toml`: module paths from file paths
//! (`src/io/mod.rs` → `crate::io`; a file outside `src/` is a crate of its own).

use super::LanguageSupport;
use crate::LanguageSpec;

pub(crate) struct Rust;

impl LanguageSupport for Rust {
    fn module_path(&self, spec: &LanguageSpec, dirs: &[&str], stem: &str) -> Vec<String> {
        let src_at = dirs
            .iter()
            .rposition(|p| spec.source_roots.iter().any(|r| r == p));
        match src_at {
            Some(i) => {
                let rest = &dirs[i + 1..];
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
}
