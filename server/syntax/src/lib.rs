//! Symbol extraction with tree-sitter: turns source text into symbols (name, kind, signature,
//! docstring, scope, ranges, references, test flag). Pure: no I/O, never fails on broken code.
//!
//! What a language looks like lives in `grammars/<lang>/` (queries and `language.toml`); this
//! crate interprets that data. What a language does that is code (module paths) lives in one
//! module per language under `lang/`.

mod answer;
mod cursor;
mod docs;
mod extract;
mod imports;
mod lang;
mod language;
mod module_path;
mod parse;
mod parsed;
mod patterns;
pub mod secret_scan;
mod stub;

pub use answer::{AnswerExtras, Helper, answer_extras};
pub use cursor::{CursorSyntax, EnclosingFunction, UnitEnds, indentation_errors};
pub use extract::{ExtractedFile, extract};
pub use imports::{Importable, importable, imported_names, missing_imports};
pub use language::{
    BodyStyle, DocStyle, GenerationSpec, Language, LanguageData, LanguageSpec, PromptSpec,
    ReportFormat, RunnerKind, TestMarkers, VerifySpec,
};
pub use module_path::module_path;
pub use parse::{file_parses, install_tree_allocator};
pub use parsed::{ParsedFile, function_at_line, stub_functions};
pub use stub::{
    BodyEdit, FunctionTarget, StubKind, body_from_generated, count_syntax_errors, is_stub_body,
    splice_body,
};

use serde::{Deserialize, Serialize};

/// What a symbol is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    Function,
    Method,
    Constructor,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    Record,
    Module,
}

impl SymbolKind {
    pub const ALL: [SymbolKind; 10] = [
        SymbolKind::Function,
        SymbolKind::Method,
        SymbolKind::Constructor,
        SymbolKind::Class,
        SymbolKind::Struct,
        SymbolKind::Enum,
        SymbolKind::Trait,
        SymbolKind::Interface,
        SymbolKind::Record,
        SymbolKind::Module,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Constructor => "constructor",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Trait => "trait",
            SymbolKind::Interface => "interface",
            SymbolKind::Record => "record",
            SymbolKind::Module => "module",
        }
    }

    pub fn from_name(name: &str) -> Option<SymbolKind> {
        SymbolKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Kinds whose members are "methods" (functions defined directly inside them).
    pub fn is_type_like(self) -> bool {
        matches!(
            self,
            SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Trait
                | SymbolKind::Interface
                | SymbolKind::Record
        )
    }

    pub fn is_callable(self) -> bool {
        matches!(
            self,
            SymbolKind::Function | SymbolKind::Method | SymbolKind::Constructor
        )
    }
}

impl std::fmt::Display for SymbolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One definition found in a file. Lines are 0-based; byte ranges index the source text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub qualified_name: String,
    pub kind: SymbolKind,
    pub language: Language,
    pub signature: String,
    pub docstring: Option<String>,
    /// Qualified name of the enclosing scope (module, type, impl target); empty at the top.
    pub scope: String,
    /// Index of the enclosing symbol in the same file's list, if any.
    pub parent: Option<usize>,
    /// The whole definition, decorators/attributes included, doc comments excluded.
    pub start_byte: usize,
    pub end_byte: usize,
    pub name_start_byte: usize,
    pub name_end_byte: usize,
    pub start_line: usize,
    pub end_line: usize,
    /// Names this symbol calls or references (deduplicated, in order of first use, capped).
    pub references: Vec<String>,
    pub is_test: bool,
}

impl Symbol {
    /// First non-empty line of the docstring.
    pub fn doc_summary(&self) -> Option<&str> {
        self.docstring
            .as_deref()
            .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
    }
}

/// Splits identifiers into lower-case words: `loadSettings` and `load_settings` both give
/// `load settings`; `HTTPServer2` gives `http server 2`. Used for lexical search text.
pub fn split_identifier_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for token in text.split(|c: char| !c.is_alphanumeric()) {
        if token.is_empty() {
            continue;
        }
        let chars: Vec<char> = token.chars().collect();
        let mut cur = String::new();
        for i in 0..chars.len() {
            let c = chars[i];
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) => {
                    (p.is_lowercase() && c.is_uppercase())
                        || (p.is_alphabetic() && c.is_numeric())
                        || (p.is_numeric() && c.is_alphabetic())
                        || (p.is_uppercase()
                            && c.is_uppercase()
                            && next.is_some_and(|n| n.is_lowercase()))
                }
            };
            if boundary && !cur.is_empty() {
                words.push(std::mem::take(&mut cur).to_lowercase());
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            words.push(cur.to_lowercase());
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_identifiers() {
        assert_eq!(split_identifier_words("loadSettings"), ["load", "settings"]);
        assert_eq!(
            split_identifier_words("load_settings"),
            ["load", "settings"]
        );
        assert_eq!(
            split_identifier_words("HTTPServer2"),
            ["http", "server", "2"]
        );
        assert_eq!(
            split_identifier_words("crate::io::read_to_end"),
            ["crate", "io", "read", "to", "end"]
        );
        assert_eq!(split_identifier_words("ÜberCafé"), ["über", "café"]);
    }

    #[test]
    fn every_query_and_spec_compiles_against_its_grammar() {
        for lang in Language::ALL {
            let spec: LanguageSpec = toml::from_str(lang.data().spec_toml)
                .unwrap_or_else(|e| panic!("{lang}: language.toml: {e}"));
            assert_eq!(spec.name, lang.name());
            assert!(!spec.extensions.is_empty());
            language::Queries::compile(lang).unwrap_or_else(|e| panic!("{e}"));
            patterns::Patterns::compile(lang).unwrap_or_else(|e| panic!("{e}"));
            // Node kinds named as data must be kinds of the grammar (a typo would silently
            // match nothing).
            let g = &spec.generation;
            let grammar = lang.grammar();
            for kind in g
                .function_kinds
                .iter()
                .chain(&g.block_kinds)
                .chain(&g.doc_preamble_kinds)
                .chain(&spec.wrapper_kinds)
            {
                assert_ne!(
                    grammar.id_for_node_kind(kind, true),
                    0,
                    "{lang}: `{kind}` is not a node kind of the grammar"
                );
            }
        }
    }

    #[test]
    fn every_grammar_file_on_disk_is_compiled_in() {
        // A query file added under grammars/ but not wired into `Language::data` would be dead.
        let root =
            std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
                .join("../../grammars");
        for lang in Language::ALL {
            let dir = root.join(lang.name());
            let data = lang.data();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let name = path.file_name().unwrap().to_str().unwrap().to_string();
                let compiled = match name.as_str() {
                    "language.toml" => data.spec_toml,
                    "symbols.scm" => data.symbols_query,
                    "references.scm" => data.references_query,
                    // The behaviour probe is compiled into codeforge-verify (checked there); its
                    // pytest suite runs from codeforge-verify's tests.
                    "probe.py" | "test_probe.py" | "reach.py" if lang == Language::Python => {
                        continue;
                    }
                    other => panic!("grammars/{lang}/{other} is not used by the server"),
                };
                assert_eq!(text, compiled, "grammars/{lang}/{name}");
            }
        }
    }

    #[test]
    fn languages_from_paths() {
        use std::path::Path;
        assert_eq!(
            Language::from_path(Path::new("a/b.py")),
            Some(Language::Python)
        );
        assert_eq!(
            Language::from_path(Path::new("src/lib.rs")),
            Some(Language::Rust)
        );
        assert_eq!(
            Language::from_path(Path::new("A.java")),
            Some(Language::Java)
        );
        assert_eq!(Language::from_path(Path::new("README.md")), None);
        assert_eq!(Language::from_path(Path::new("Makefile")), None);
    }
}
