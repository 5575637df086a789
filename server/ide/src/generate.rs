//! What "Generate function from docstring" is asked and answers, in editor terms: where to
//! generate ([`GenerateInput`]), the targets listed from syntax alone ([`generate_targets`]), and
//! the typed [`Outcome`] of a run (status, the chosen edit, every candidate, what the model was
//! shown, how it was checked). The run itself is `run.rs`. Nothing from a secrets file (by its
//! name: `.env`, `credentials.py`, …) is ever listed or sent to a model.

use codeforge_model::{ModelError, Usage};
use codeforge_prompt::Included;
use codeforge_syntax::secret_scan::is_secret_path;
use codeforge_syntax::{BodyEdit, FunctionTarget, Language, ParsedFile, StubKind, SymbolKind};

use crate::candidate::Candidate;
use crate::checking::{Verification, VerificationStatus};

/// Where to generate.
#[derive(Debug, Clone)]
pub struct GenerateInput<'a> {
    pub language: Language,
    /// Workspace-relative path (module paths, and to keep the file's own symbols out of hits).
    pub rel_path: &'a str,
    pub source: &'a str,
    /// 0-based line anywhere in the function (doc comment included).
    pub line: usize,
    /// Generate even when the body is already implemented.
    pub allow_implemented: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetInfo {
    pub qualified_name: String,
    pub name: String,
    pub kind: SymbolKind,
    /// 0-based lines of the definition, doc comment included.
    pub start_line: usize,
    pub end_line: usize,
    pub stub: StubKind,
}

impl TargetInfo {
    pub(crate) fn of(t: &FunctionTarget) -> Self {
        TargetInfo {
            qualified_name: t.symbol.qualified_name.clone(),
            name: t.symbol.name.clone(),
            kind: t.symbol.kind,
            start_line: t.doc_start_line,
            end_line: t.symbol.end_line,
            stub: t.stub,
        }
    }
}

/// What the model was shown and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct Explain {
    pub backend: String,
    pub prompt: String,
    pub prompt_tokens: usize,
    pub context: Vec<Included>,
    pub notes: Vec<String>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateStatus {
    /// At least one candidate parses in place; `edit` holds the chosen one.
    Generated,
    /// The model answered, but no candidate was usable (see `candidates`).
    NoValidCandidate,
    /// Tests exist and no candidate passed them (nothing is shown unless `show_unverified`).
    NoPassingCandidate,
}

/// How a run ended, typed: the editors read `status` and `verification.status`, not labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: GenerateStatus,
    pub target: TargetInfo,
    /// The chosen candidate's edit, against the source the pipeline was given.
    pub edit: Option<BodyEdit>,
    /// The chosen candidate's imports and helpers, inserted elsewhere in the same source: part
    /// of the one change the user accepts (`additionalTextEdits` / the workspace edit).
    pub extra_edits: Vec<BodyEdit>,
    /// The chosen function, as it reads after the edit.
    pub code: Option<String>,
    pub chosen: Option<usize>,
    pub candidates: Vec<Candidate>,
    pub explain: Explain,
    /// How the chosen candidate was checked (`None` when verification was not asked for).
    pub verification: Option<Verification>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum GenerateError {
    #[error("no function or method at line {line}")]
    NoFunction { line: usize },
    #[error("`{name}` already has a body; generation only fills stubs here")]
    Implemented { name: String },
    #[error("`{path}` is a secrets file (by its name): nothing from it is sent to a model")]
    SecretFile { path: String },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The stubs "Generate function from docstring" is offered on (syntax only, no model); none in a
/// secrets file.
pub fn generate_targets(language: Language, rel_path: &str, source: &str) -> Vec<TargetInfo> {
    if is_secret_path(rel_path) {
        return Vec::new();
    }
    ParsedFile::parse(language, rel_path, source)
        .stub_functions()
        .iter()
        .map(TargetInfo::of)
        .collect()
}

impl Outcome {
    /// The verification status, `None` when verification was not asked for.
    pub fn verification_status(&self) -> Option<VerificationStatus> {
        self.verification.as_ref().map(|v| v.status)
    }
}
