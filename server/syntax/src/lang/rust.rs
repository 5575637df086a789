//! Rust's syntax behaviour beyond `grammars/rust/language.toml`: module paths from file paths
//! (`src/io/mod.rs` → `crate::io`; a file outside `src/` is a crate of its own).

use super::LanguageSupport;
use crate::LanguageSpec;

pub(crate) struct Rust;

impl LanguageSupport for Rust {
    /// `use a::{B, c::D as E};` gives `B`, `D`; `extern crate` nothing.
    fn imported_names(&self, statement: &str) -> Vec<String> {
        let Some((_, body)) = statement.split_once("use ") else {
            return Vec::new();
        };
        body.split(['{', '}', ',', ';'])
            .map(|piece| piece.split(" as ").next().unwrap_or("").trim())
            .filter(|path| !path.is_empty())
            .map(|path| path.rsplit("::").next().unwrap_or("").trim().to_string())
            .collect()
    }

    /// `crate::` means the file's own crate: a symbol of another crate of a Cargo workspace is
    /// not imported that way.
    fn import_needed(&self, rel_path: &str, path: &str, _module: &str) -> bool {
        rel_path != path && crate_root(path) == crate_root(rel_path)
    }

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

/// The directory holding a Rust file's crate (`geometry/src/x.rs` → `geometry/`).
fn crate_root(path: &str) -> &str {
    match path.rfind("src/") {
        Some(i) if i == 0 || path[..i].ends_with('/') => &path[..i],
        _ => "",
    }
}
