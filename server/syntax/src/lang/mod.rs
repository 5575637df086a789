//! Per-language syntax behaviour that is code rather than data: one [`LanguageSupport`]
//! implementation per language in this directory, picked by [`crate::Language::support`].
//! Differences that are values (node kinds, prefixes, separators, stub statements) stay in
//! `grammars/<lang>/language.toml`.

use crate::LanguageSpec;

pub(crate) mod java;
pub(crate) mod python;
pub(crate) mod rust;

/// What one language does differently, beyond its `language.toml`.
pub(crate) trait LanguageSupport: Sync {
    /// The module path of a file, from its directories (workspace-relative, outermost first,
    /// `.` and empty segments removed) and its file stem.
    fn module_path(&self, spec: &LanguageSpec, dirs: &[&str], stem: &str) -> Vec<String>;

    /// The module a file's symbols are qualified with: by default its path's module
    /// (`from_path`); `package` is what the symbols query captured as `@package`, if anything.
    fn file_module(&self, from_path: Vec<String>, package: Option<&str>) -> Vec<String> {
        let _ = package;
        from_path
    }

    /// Whether a file `rel_path` can and must import a symbol of `module` defined in `path`
    /// (both workspace-relative) to use it: by default whenever the files differ.
    fn import_needed(&self, rel_path: &str, path: &str, module: &str) -> bool {
        let _ = module;
        rel_path != path
    }

    /// The names one import statement (`[generation] import_prefixes`, joined onto one line)
    /// brings into a file, as the file's code uses them; nothing for a module import.
    fn imported_names(&self, statement: &str) -> Vec<String>;
}
