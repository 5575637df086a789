//! Languages CodeForge understands: the enum and its registry (name, grammar, the data compiled in
//! from `grammars/<lang>/`, the per-language code in `lang/<lang>.rs`), and the parsed shape of that
//! data (file types, doc style, test markers, generation, prompt and verify settings). Knowledge
//! about a language belongs in its data or its `lang/` module, not here.

use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::lang::LanguageSupport;

/// A language with a tree-sitter grammar and a spec under `grammars/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Rust,
    Java,
}

/// How documentation is attached to a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocStyle {
    /// The first string statement of the definition's body (Python).
    BodyString,
    /// Comments right before the definition (Rust `///`, Javadoc).
    PrecedingComments,
}

/// Markers that make a symbol a test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestMarkers {
    /// When non-empty, name-based markers only apply in files whose stem matches one of these.
    pub file_prefixes: Vec<String>,
    pub file_suffixes: Vec<String>,
    pub function_prefixes: Vec<String>,
    pub class_prefixes: Vec<String>,
    pub attributes: Vec<String>,
    pub annotations: Vec<String>,
    /// A type or module that declares tests is marked as a test too.
    pub mark_containers: bool,
}

/// `grammars/<lang>/language.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageSpec {
    pub name: String,
    pub extensions: Vec<String>,
    pub project_roots: Vec<String>,
    pub doc_style: DocStyle,
    #[serde(default)]
    pub doc_comment_kinds: Vec<String>,
    #[serde(default)]
    pub doc_prefixes: Vec<String>,
    #[serde(default)]
    pub inner_doc_prefixes: Vec<String>,
    #[serde(default)]
    pub skip_between: Vec<String>,
    pub wrapper_kinds: Vec<String>,
    pub source_roots: Vec<String>,
    pub recovery_starts: Vec<String>,
    pub recovery_leaders: Vec<String>,
    pub scope_separator: String,
    pub member_separator: String,
    pub tests: TestMarkers,
    pub generation: GenerationSpec,
    pub prompt: PromptSpec,
    pub verify: VerifySpec,
}

/// `[prompt]` in `language.toml`: how prompts name and show the language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// The language's name in prose (`Python`).
    pub display_name: String,
    /// Code-fence tags that also mean this language in a model's answer (`py` for `python`).
    #[serde(default)]
    pub fence_aliases: Vec<String>,
    /// What the test designer is asked to write; `{name}` is the function's name.
    pub test_style: String,
}

/// How a test runner is driven (`runner` in `[verify]`); its code is in codeforge-verify's
/// `runner/<runner>.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    Pytest,
    Cargo,
    Maven,
}

impl RunnerKind {
    pub fn name(self) -> &'static str {
        match self {
            RunnerKind::Pytest => "pytest",
            RunnerKind::Cargo => "cargo",
            RunnerKind::Maven => "maven",
        }
    }
}

impl std::fmt::Display for RunnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// Where and in what format a runner reports its results (`report` in `[verify]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// JUnit XML written to the report pipe (`{report}`).
    Junit,
    /// libtest's text output.
    Libtest,
    /// JUnit XML files Surefire writes under `target/surefire-reports`.
    Surefire,
}

impl ReportFormat {
    /// The runner writes its report to the pipe `{report}` names, not to files or its output.
    pub fn uses_report_pipe(self) -> bool {
        self == ReportFormat::Junit
    }
}

/// How a function's body is written (`body_style` in `[generation]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyStyle {
    /// Between `{` and `}`; a declaration ending in `;` can take one.
    Braces,
    /// Indented lines after the signature's colon (Python).
    Indented,
}

/// `[verify]` in `language.toml`: how a candidate is checked by running the workspace's tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// How `{tests}` expands, tests are named and generated tests are placed.
    pub runner: RunnerKind,
    pub detect: Vec<String>,
    /// Without a detect file there is nothing to run.
    pub required: bool,
    /// `[file, message]`: builds this runner does not support.
    pub unsupported: Vec<Vec<String>>,
    pub test_files: Vec<String>,
    /// A file's test files are named after its stem as `{class}` when no class encloses the
    /// target (Java: a file holds the class it is named after).
    #[serde(default)]
    pub file_is_class: bool,
    pub check: Vec<String>,
    pub test: Vec<String>,
    pub report: ReportFormat,
    /// `[file, text]`: above the project found by `detect`, the nearest directory whose `file`
    /// holds `text` is where tests run (Cargo: `Cargo.toml` with `[workspace]`, so a member's
    /// function is checked by the tests of the members that use it). Empty: the project itself.
    #[serde(default)]
    pub workspace_root: Vec<String>,
    /// What the runner prints before a test id it cannot collect (pytest: `ERROR: not found: `,
    /// `ERROR: found no collectors for `); such ids are left out and the others run again.
    /// Empty: ids cannot sink a run.
    #[serde(default)]
    pub unknown_test_markers: Vec<String>,
    pub doctest_marker: String,
    /// Lines of the runner's output that start a compiler warning (a ranking objective: among
    /// candidates that pass as many tests, fewer warnings is better).
    #[serde(default)]
    pub warning_prefixes: Vec<String>,
    /// The command that runs the whole suite once on the stubbed workspace to find the tests
    /// that reach the target (those that fail with `reach_body`'s marker). Empty: none (the
    /// runner measures reach another way, or not at all).
    #[serde(default)]
    pub survey: Vec<String>,
    /// A body that fails loudly with `{marker}` in its message when a test reaches it (put in
    /// place of the stub for the survey).
    #[serde(default)]
    pub reach_body: String,
}

/// `[generation]` in `language.toml`: what a generatable function and a stub body look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSpec {
    pub function_kinds: Vec<String>,
    pub body_field: String,
    pub body_style: BodyStyle,
    /// A bare body (`{body}`, indented one level) inside a function of the language: a model's
    /// answer that is only a body must parse in it.
    pub bare_body_wrapper: String,
    /// Statement blocks (completion levels end at the last statement of one).
    pub block_kinds: Vec<String>,
    pub stub_statements: Vec<String>,
    pub stub_prefixes: Vec<String>,
    pub fence: String,
    pub line_comment: String,
    pub import_prefixes: Vec<String>,
    /// Statements that may come before the docstring in a body and still leave it the docstring
    /// (Python: `import math` written above it).
    #[serde(default)]
    pub doc_preamble_kinds: Vec<String>,
    /// A declaration with no body (`fn f();`, an interface method) can take one only inside
    /// these container kinds, with this text put before its `bodyless_insert_before` field
    /// (Java: an interface method becomes a `default` method). Empty: anywhere, nothing added.
    #[serde(default)]
    pub bodyless_prefix: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub bodyless_insert_before: Vec<String>,
    /// Modifiers that make a missing body deliberate (Java `abstract`, `native`): no target.
    #[serde(default)]
    pub bodyless_never: Vec<String>,
    /// Helper functions a model's answer defines next to the target go beside the target, at
    /// its indentation (Java: they are members of its class), rather than at the top level
    /// before the target's outermost definition (Python, Rust).
    #[serde(default)]
    pub helpers_beside_target: bool,
    /// The line that imports `{name}` from `{module}` (auto-import of a repository symbol the
    /// answer uses); empty: none.
    #[serde(default)]
    pub import_template: String,
    /// Names the language provides without an import (Python builtins, Rust's prelude,
    /// `java.lang`): never auto-imported from the repository.
    #[serde(default)]
    pub builtin_names: Vec<String>,
}

/// The raw data files of one language, compiled into the binary.
pub struct LanguageData {
    pub spec_toml: &'static str,
    pub symbols_query: &'static str,
    pub references_query: &'static str,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Python, Language::Rust, Language::Java];

    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Rust => "rust",
            Language::Java => "java",
        }
    }

    pub fn from_name(name: &str) -> Option<Language> {
        Language::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }

    /// The language of a file, from its extension (as listed in `grammars/<lang>/language.toml`).
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?;
        Language::ALL
            .into_iter()
            .find(|l| l.spec().extensions.iter().any(|e| e == ext))
    }

    /// The language's syntax behaviour that is code (`lang/<lang>.rs`).
    pub(crate) fn support(self) -> &'static dyn LanguageSupport {
        match self {
            Language::Python => &crate::lang::python::Python,
            Language::Rust => &crate::lang::rust::Rust,
            Language::Java => &crate::lang::java::Java,
        }
    }

    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }

    pub fn data(self) -> LanguageData {
        match self {
            Language::Python => LanguageData {
                spec_toml: include_str!("../grammars/python/language.toml"),
                symbols_query: include_str!("../grammars/python/symbols.scm"),
                references_query: include_str!("../grammars/python/references.scm"),
            },
            Language::Rust => LanguageData {
                spec_toml: include_str!("../grammars/rust/language.toml"),
                symbols_query: include_str!("../grammars/rust/symbols.scm"),
                references_query: include_str!("../grammars/rust/references.scm"),
            },
            Language::Java => LanguageData {
                spec_toml: include_str!("../grammars/java/language.toml"),
                symbols_query: include_str!("../grammars/java/symbols.scm"),
                references_query: include_str!("../grammars/java/references.scm"),
            },
        }
    }

    /// The parsed spec. The data is compiled in and checked by a unit test, so a parse failure
    /// here is a build defect, not user input.
    pub fn spec(self) -> &'static LanguageSpec {
        static SPECS: OnceLock<Vec<LanguageSpec>> = OnceLock::new();
        let specs = SPECS.get_or_init(|| {
            Language::ALL
                .into_iter()
                .map(|l| {
                    toml::from_str(l.data().spec_toml).unwrap_or_else(|e| {
                        panic!("grammars/{}/language.toml is invalid: {e}", l.name())
                    })
                })
                .collect()
        });
        &specs[self as usize]
    }

    /// The compiled `symbols.scm` and `references.scm`.
    pub(crate) fn patterns(self) -> &'static crate::patterns::Patterns {
        static PATTERNS: OnceLock<Vec<crate::patterns::Patterns>> = OnceLock::new();
        let all = PATTERNS.get_or_init(|| {
            Language::ALL
                .into_iter()
                .map(|l| crate::patterns::Patterns::compile(l).unwrap_or_else(|e| panic!("{e}")))
                .collect()
        });
        &all[self as usize]
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The query files of one language compiled by tree-sitter's own query engine: what the unit
/// tests check the data and [`crate::patterns`] against (extraction walks with the latter).
#[cfg(test)]
pub(crate) struct Queries {
    /// `symbols.scm` and `references.scm` (each compiled alone first, to check its captures)
    /// in one query (the symbols' patterns first, then the references'), so extraction
    /// walks the tree once: each walk was about a fifth of the extraction time.
    pub both: tree_sitter::Query,
}

#[cfg(test)]
impl Queries {
    pub fn compile(lang: Language) -> Result<Queries, String> {
        let grammar = lang.grammar();
        let data = lang.data();
        let symbols = tree_sitter::Query::new(&grammar, data.symbols_query)
            .map_err(|e| format!("grammars/{}/symbols.scm: {e}", lang.name()))?;
        let references = tree_sitter::Query::new(&grammar, data.references_query)
            .map_err(|e| format!("grammars/{}/references.scm: {e}", lang.name()))?;
        for (i, name) in symbols.capture_names().iter().enumerate() {
            let ok = *name == "name"
                || *name == "package"
                || name.starts_with("scope.")
                || name
                    .strip_prefix("definition.")
                    .is_some_and(|k| crate::SymbolKind::from_name(k).is_some());
            if !ok {
                return Err(format!(
                    "grammars/{}/symbols.scm: unknown capture @{name} (#{i})",
                    lang.name()
                ));
            }
        }
        for name in references.capture_names() {
            if *name != "reference" {
                return Err(format!(
                    "grammars/{}/references.scm: unknown capture @{name}",
                    lang.name()
                ));
            }
        }
        let both = tree_sitter::Query::new(
            &grammar,
            &format!("{}\n{}", data.symbols_query, data.references_query),
        )
        .map_err(|e| {
            format!(
                "grammars/{}: symbols.scm and references.scm: {e}",
                lang.name()
            )
        })?;
        Ok(Queries { both })
    }
}
