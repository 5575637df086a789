//! The server's own wire types: parameters and results of the custom requests and commands
//! (`codeforge/generate`, `codeforge/context`, `codeforge.generateFunction`, the trust commands),
//! the data a code action carries, and mirrors of the ide/syntax/prompt/model/verify outcome types
//! with exactly the JSON shape editors read, converted with `From`. Owns field names and
//! order on the wire; must not serialise another crate's type, nor reach the session or handlers.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Position, TextDocumentIdentifier, Uri, WorkspaceEdit};

pub const GENERATE_COMMAND: &str = "codeforge.generateFunction";
pub const GENERATE_KIND: &str = "refactor.rewrite.codeforge";
pub const REINDEX_COMMAND: &str = "codeforge.reindex";
pub const TRUST_COMMAND: &str = "codeforge.trustWorkspace";
pub const UNTRUST_COMMAND: &str = "codeforge.untrustWorkspace";
/// Sent by the client when the user takes a completion item (the item's own `command`):
/// `[{uri, key, level}]`; records the acceptance in the feedback store.
pub const COMPLETION_ACCEPTED_COMMAND: &str = "codeforge.completionAccepted";
/// Installs the missing models (`codeforge model pull`) with progress: `{"installed": n}` (the
/// number of models downloaded) or an error saying why.
pub const PULL_MODELS_COMMAND: &str = "codeforge.pullModels";

/// What a listed action carries to its resolve (or command): the document and the function's
/// 0-based line. (Clients treat it as opaque and send it back unchanged.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionData {
    pub uri: Uri,
    /// 0-based line of the function.
    pub line: u32,
    /// Set on the resolved action: how its edit was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSummary>,
}

/// The verdict editors read: a typed status and counts, never parsed from the label. Sent as
/// `verification` in a resolved action's `data`, in completion items' `data`, and in the
/// `codeforge/verification` notification after every generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    /// `passed`, `disputed`, `failed` or `unverified`.
    pub status: String,
    /// One line for people ("✓ 3/3 tests passed …"); for display only.
    pub label: String,
    pub passed: usize,
    pub failed: usize,
    /// `workspace`, `generated` (model-written tests) or `none`.
    pub tests_from: String,
    /// The tests that decided.
    pub tests: Vec<String>,
}

impl VerificationSummary {
    /// `None` (verification not asked for) reads as unverified.
    pub fn of(v: Option<&codeforge_ide::Verification>) -> VerificationSummary {
        match v {
            Some(v) => VerificationSummary {
                status: v.status.as_str().to_string(),
                label: v.label.clone(),
                passed: v.passed,
                failed: v.failed,
                tests_from: v.tests_from.as_str().to_string(),
                tests: v.selected_tests.clone(),
            },
            None => VerificationSummary {
                status: "unverified".into(),
                label: "⚠ unverified: no tests were run".into(),
                passed: 0,
                failed: 0,
                tests_from: "none".into(),
                tests: Vec::new(),
            },
        }
    }
}

/// Parameters of the `codeforge/verification` notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationParams {
    pub uri: Uri,
    /// The function's qualified name.
    pub target: String,
    pub verification: VerificationSummary,
}

/// `codeforge/verification`: sent when a generation ends, with how its result was checked.
pub enum VerificationNotification {}

impl tower_lsp_server::ls_types::notification::Notification for VerificationNotification {
    type Params = VerificationParams;
    const METHOD: &'static str = "codeforge/verification";
}

/// Parameters of `codeforge/generate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
    #[serde(default)]
    pub explain: bool,
    /// Regenerate even when the function has a body.
    #[serde(default)]
    pub force: bool,
}

/// Result of `codeforge/generate`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResult {
    pub status: GenerateStatus,
    pub code: Option<String>,
    pub edit: Option<WorkspaceEdit>,
    pub target: TargetInfo,
    pub message: String,
    /// How the code was checked: `{status, reason, label, tests_from, selected_tests, passed,
    /// failed, rounds, …}` (snake_case, as [`Verification`] writes it).
    pub verification: Option<Verification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<ExplainResult>,
}

/// `explain` of [`GenerateResult`] (asked with `explain: true`).
#[derive(Debug, Clone, Serialize)]
pub struct ExplainResult {
    pub explain: Explain,
    pub candidates: Vec<Candidate>,
}

/// Result of the `codeforge.generateFunction` command.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateCommandResult {
    pub status: GenerateStatus,
    pub applied: bool,
    pub message: String,
    pub verification: Option<Verification>,
}

/// Result of `codeforge.trustWorkspace` / `codeforge.untrustWorkspace`.
#[derive(Debug, Clone, Serialize)]
pub struct TrustCommandResult {
    pub trusted: bool,
    pub workspaces: Vec<String>,
}

/// Result of `codeforge.reindex`.
#[derive(Debug, Clone, Serialize)]
pub struct ReindexResult {
    pub workspaces: usize,
}

/// Parameters of `codeforge/context`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
}

/// One piece of context `codeforge/context` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ContextItem {
    pub label: String,
    pub kind: String,
    pub status: String,
    pub tokens: usize,
}

/// Result of `codeforge/context`.
#[derive(Debug, Clone, Serialize)]
pub struct ContextResult {
    pub target: Option<String>,
    pub items: Vec<ContextItem>,
    pub notes: Vec<String>,
    pub prompt_tokens: usize,
}

// Mirrors of the outcome types. Each `From` destructures its source completely, so a field added
// there fails to compile here until it is mirrored (or deliberately left off the wire).

/// Mirrors [`codeforge_ide::GenerateStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerateStatus {
    Generated,
    NoValidCandidate,
    NoPassingCandidate,
}

impl From<codeforge_ide::GenerateStatus> for GenerateStatus {
    fn from(s: codeforge_ide::GenerateStatus) -> Self {
        use codeforge_ide::GenerateStatus as S;
        match s {
            S::Generated => GenerateStatus::Generated,
            S::NoValidCandidate => GenerateStatus::NoValidCandidate,
            S::NoPassingCandidate => GenerateStatus::NoPassingCandidate,
        }
    }
}

/// Mirrors [`codeforge_syntax::StubKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StubKind {
    Empty,
    Placeholder,
    Implemented,
}

impl From<codeforge_syntax::StubKind> for StubKind {
    fn from(s: codeforge_syntax::StubKind) -> Self {
        use codeforge_syntax::StubKind as S;
        match s {
            S::Empty => StubKind::Empty,
            S::Placeholder => StubKind::Placeholder,
            S::Implemented => StubKind::Implemented,
        }
    }
}

/// Mirrors [`codeforge_ide::TargetInfo`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetInfo {
    pub qualified_name: String,
    pub name: String,
    pub kind: String,
    pub start_line: usize,
    pub end_line: usize,
    pub stub: StubKind,
}

impl From<&codeforge_ide::TargetInfo> for TargetInfo {
    fn from(t: &codeforge_ide::TargetInfo) -> Self {
        let codeforge_ide::TargetInfo {
            qualified_name,
            name,
            kind,
            start_line,
            end_line,
            stub,
        } = t;
        TargetInfo {
            qualified_name: qualified_name.clone(),
            name: name.clone(),
            kind: kind.name().to_string(),
            start_line: *start_line,
            end_line: *end_line,
            stub: (*stub).into(),
        }
    }
}

/// Mirrors [`codeforge_syntax::BodyEdit`] (byte offsets into the source the pipeline was given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodyEdit {
    pub start: usize,
    pub end: usize,
    pub new_text: String,
}

impl From<&codeforge_syntax::BodyEdit> for BodyEdit {
    fn from(e: &codeforge_syntax::BodyEdit) -> Self {
        let codeforge_syntax::BodyEdit {
            start,
            end,
            new_text,
        } = e;
        BodyEdit {
            start: *start,
            end: *end,
            new_text: new_text.clone(),
        }
    }
}

/// Mirrors [`codeforge_ide::Candidate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub index: usize,
    pub rejected: Option<String>,
    pub body: Option<String>,
    pub edit: Option<BodyEdit>,
    /// Imports and helpers the answer needs, inserted elsewhere in the same source.
    pub extra_edits: Vec<BodyEdit>,
    pub function: Option<String>,
    pub plan: Option<String>,
    pub mean_logprob: Option<f64>,
    pub raw: String,
}

impl From<&codeforge_ide::Candidate> for Candidate {
    fn from(c: &codeforge_ide::Candidate) -> Self {
        let codeforge_ide::Candidate {
            index,
            rejected,
            body,
            edit,
            extra_edits,
            function,
            plan,
            mean_logprob,
            raw,
        } = c;
        Candidate {
            index: *index,
            rejected: rejected.clone(),
            body: body.clone(),
            edit: edit.as_ref().map(BodyEdit::from),
            extra_edits: extra_edits.iter().map(BodyEdit::from).collect(),
            function: function.clone(),
            plan: plan.clone(),
            mean_logprob: *mean_logprob,
            raw: raw.clone(),
        }
    }
}

/// Mirrors [`codeforge_prompt::SnippetKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnippetKind {
    Scope,
    Imports,
    SameFile,
    Retrieved,
}

impl From<codeforge_prompt::SnippetKind> for SnippetKind {
    fn from(k: codeforge_prompt::SnippetKind) -> Self {
        use codeforge_prompt::SnippetKind as K;
        match k {
            K::Scope => SnippetKind::Scope,
            K::Imports => SnippetKind::Imports,
            K::SameFile => SnippetKind::SameFile,
            K::Retrieved => SnippetKind::Retrieved,
        }
    }
}

/// Mirrors [`codeforge_prompt::Included`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Included {
    pub kind: SnippetKind,
    pub label: String,
    pub tokens: usize,
    pub status: String,
}

impl From<&codeforge_prompt::Included> for Included {
    fn from(i: &codeforge_prompt::Included) -> Self {
        let codeforge_prompt::Included {
            kind,
            label,
            tokens,
            status,
        } = i;
        Included {
            kind: (*kind).into(),
            label: label.clone(),
            tokens: *tokens,
            status: status.to_string(),
        }
    }
}

/// Mirrors [`codeforge_model::Usage`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub cached_prompt_tokens: u64,
    pub completion_tokens: u64,
    pub first_token_ms: u64,
    pub total_ms: u64,
}

impl From<&codeforge_model::Usage> for Usage {
    fn from(u: &codeforge_model::Usage) -> Self {
        let codeforge_model::Usage {
            prompt_tokens,
            cached_prompt_tokens,
            completion_tokens,
            first_token_ms,
            total_ms,
        } = u;
        Usage {
            prompt_tokens: *prompt_tokens,
            cached_prompt_tokens: *cached_prompt_tokens,
            completion_tokens: *completion_tokens,
            first_token_ms: *first_token_ms,
            total_ms: *total_ms,
        }
    }
}

/// Mirrors [`codeforge_ide::Explain`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explain {
    pub backend: String,
    pub prompt: String,
    pub prompt_tokens: usize,
    pub context: Vec<Included>,
    pub notes: Vec<String>,
    pub usage: Usage,
}

impl From<&codeforge_ide::Explain> for Explain {
    fn from(e: &codeforge_ide::Explain) -> Self {
        let codeforge_ide::Explain {
            backend,
            prompt,
            prompt_tokens,
            context,
            notes,
            usage,
        } = e;
        Explain {
            backend: backend.clone(),
            prompt: prompt.clone(),
            prompt_tokens: *prompt_tokens,
            context: context.iter().map(Included::from).collect(),
            notes: notes.clone(),
            usage: usage.into(),
        }
    }
}

/// Mirrors [`codeforge_ide::VerificationStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyStatus {
    Passed,
    Disputed,
    Failed,
    Unverified,
}

impl From<codeforge_ide::VerificationStatus> for VerifyStatus {
    fn from(s: codeforge_ide::VerificationStatus) -> Self {
        use codeforge_ide::VerificationStatus as S;
        match s {
            S::Passed => VerifyStatus::Passed,
            S::Disputed => VerifyStatus::Disputed,
            S::Failed => VerifyStatus::Failed,
            S::Unverified => VerifyStatus::Unverified,
        }
    }
}

/// Mirrors [`codeforge_verify::Verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl From<codeforge_verify::Verdict> for Verdict {
    fn from(v: codeforge_verify::Verdict) -> Self {
        use codeforge_verify::Verdict as V;
        match v {
            V::Passed => Verdict::Passed,
            V::Failed => Verdict::Failed,
            V::Error => Verdict::Error,
            V::Skipped => Verdict::Skipped,
        }
    }
}

/// Mirrors [`codeforge_verify::TestResult`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub name: String,
    pub verdict: Verdict,
    pub message: String,
}

impl From<&codeforge_verify::TestResult> for TestResult {
    fn from(r: &codeforge_verify::TestResult) -> Self {
        let codeforge_verify::TestResult {
            name,
            verdict,
            message,
        } = r;
        TestResult {
            name: name.clone(),
            verdict: (*verdict).into(),
            message: message.clone(),
        }
    }
}

/// Mirrors [`codeforge_verify::workbench::RunReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub compiled: bool,
    pub results: Vec<TestResult>,
    pub passed: usize,
    pub failed: usize,
    pub timed_out: bool,
    pub output: String,
    pub elapsed_ms: u64,
    pub sandbox: String,
    pub warnings: usize,
}

impl From<&codeforge_verify::workbench::RunReport> for RunReport {
    fn from(r: &codeforge_verify::workbench::RunReport) -> Self {
        let codeforge_verify::workbench::RunReport {
            compiled,
            results,
            passed,
            failed,
            timed_out,
            output,
            elapsed_ms,
            sandbox,
            warnings,
        } = r;
        RunReport {
            compiled: *compiled,
            results: results.iter().map(TestResult::from).collect(),
            passed: *passed,
            failed: *failed,
            timed_out: *timed_out,
            output: output.clone(),
            elapsed_ms: *elapsed_ms,
            sandbox: sandbox.clone(),
            warnings: *warnings,
        }
    }
}

/// Mirrors [`codeforge_ide::CandidateRun`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateRun {
    pub candidate: usize,
    pub round: u32,
    pub fingerprint: Option<String>,
    pub report: RunReport,
}

impl From<&codeforge_ide::CandidateRun> for CandidateRun {
    fn from(r: &codeforge_ide::CandidateRun) -> Self {
        let codeforge_ide::CandidateRun {
            candidate,
            round,
            fingerprint,
            report,
        } = r;
        CandidateRun {
            candidate: *candidate,
            round: *round,
            fingerprint: fingerprint.clone(),
            report: report.into(),
        }
    }
}

/// Mirrors [`codeforge_ide::Verification`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub status: VerifyStatus,
    pub reason: Option<String>,
    pub label: String,
    pub tests_from: String,
    pub selected_tests: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    pub rounds: u32,
    pub candidates: usize,
    pub elapsed_ms: u64,
    pub sandbox: String,
    /// `[agreeing, passing]`.
    pub agreement: Option<(usize, usize)>,
    pub runs: Vec<CandidateRun>,
    pub notes: Vec<String>,
    pub feedback_id: Option<String>,
}

impl From<&codeforge_ide::Verification> for Verification {
    fn from(v: &codeforge_ide::Verification) -> Self {
        let codeforge_ide::Verification {
            status,
            reason,
            label,
            tests_from,
            selected_tests,
            passed,
            failed,
            rounds,
            candidates,
            elapsed_ms,
            sandbox,
            agreement,
            runs,
            notes,
            feedback_id,
        } = v;
        Verification {
            status: (*status).into(),
            reason: reason.clone(),
            label: label.clone(),
            tests_from: tests_from.as_str().to_string(),
            selected_tests: selected_tests.clone(),
            passed: *passed,
            failed: *failed,
            rounds: *rounds,
            candidates: *candidates,
            elapsed_ms: *elapsed_ms,
            sandbox: sandbox.clone(),
            agreement: *agreement,
            runs: runs.iter().map(CandidateRun::from).collect(),
            notes: notes.clone(),
            feedback_id: feedback_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON editors read, written out: the mirrors must keep it field for field.
    #[test]
    fn mirrors_keep_the_wire_shape() {
        let run = codeforge_ide::CandidateRun {
            candidate: 1,
            round: 2,
            fingerprint: Some("fp".into()),
            report: codeforge_verify::workbench::RunReport {
                compiled: true,
                results: vec![codeforge_verify::TestResult {
                    name: "t::a".into(),
                    verdict: codeforge_verify::Verdict::Failed,
                    message: "boom".into(),
                }],
                passed: 3,
                failed: 1,
                timed_out: false,
                output: "out".into(),
                elapsed_ms: 7,
                sandbox: "full".into(),
                warnings: 0,
            },
        };
        let v = codeforge_ide::Verification {
            status: codeforge_ide::VerificationStatus::Disputed,
            reason: None,
            label: "✓ 3/4".into(),
            tests_from: codeforge_ide::TestsFrom::Workspace,
            selected_tests: vec!["t::a".into()],
            passed: 3,
            failed: 1,
            rounds: 2,
            candidates: 4,
            elapsed_ms: 9,
            sandbox: "full".into(),
            agreement: Some((1, 2)),
            runs: vec![run],
            notes: vec!["n".into()],
            feedback_id: Some("id".into()),
        };
        assert_eq!(
            serde_json::to_value(Verification::from(&v)).unwrap(),
            json!({
                "status": "disputed", "reason": null, "label": "✓ 3/4", "tests_from": "workspace",
                "selected_tests": ["t::a"], "passed": 3, "failed": 1, "rounds": 2, "candidates": 4,
                "elapsed_ms": 9, "sandbox": "full", "agreement": [1, 2],
                "runs": [{"candidate": 1, "round": 2, "fingerprint": "fp", "report": {
                    "compiled": true,
                    "results": [{"name": "t::a", "verdict": "failed", "message": "boom"}],
                    "passed": 3, "failed": 1, "timed_out": false, "output": "out",
                    "elapsed_ms": 7, "sandbox": "full", "warnings": 0}}],
                "notes": ["n"], "feedback_id": "id"
            })
        );
        let t = codeforge_ide::TargetInfo {
            qualified_name: "m.f".into(),
            name: "f".into(),
            kind: codeforge_syntax::SymbolKind::Function,
            start_line: 1,
            end_line: 4,
            stub: codeforge_syntax::StubKind::Placeholder,
        };
        assert_eq!(
            serde_json::to_value(TargetInfo::from(&t)).unwrap(),
            json!({"qualified_name": "m.f", "name": "f", "kind": "function", "start_line": 1,
                   "end_line": 4, "stub": "placeholder"})
        );
        let c = codeforge_ide::Candidate {
            index: 0,
            rejected: None,
            body: Some("pass".into()),
            edit: Some(codeforge_syntax::BodyEdit {
                start: 1,
                end: 2,
                new_text: "x".into(),
            }),
            extra_edits: vec![codeforge_syntax::BodyEdit {
                start: 0,
                end: 0,
                new_text: "import os\n".into(),
            }],
            function: None,
            plan: None,
            mean_logprob: Some(-0.5),
            raw: "r".into(),
        };
        assert_eq!(
            serde_json::to_value(Candidate::from(&c)).unwrap(),
            json!({"index": 0, "rejected": null, "body": "pass",
                   "edit": {"start": 1, "end": 2, "new_text": "x"},
                   "extra_edits": [{"start": 0, "end": 0, "new_text": "import os\n"}],
                   "function": null,
                   "plan": null, "mean_logprob": -0.5, "raw": "r"})
        );
        let e = codeforge_ide::Explain {
            backend: "b".into(),
            prompt: "p".into(),
            prompt_tokens: 5,
            context: vec![codeforge_prompt::Included {
                kind: codeforge_prompt::SnippetKind::SameFile,
                label: "l".into(),
                tokens: 2,
                status: codeforge_prompt::ContextStatus::Clipped,
            }],
            notes: vec![],
            usage: codeforge_model::Usage {
                prompt_tokens: 1,
                cached_prompt_tokens: 2,
                completion_tokens: 3,
                first_token_ms: 4,
                total_ms: 5,
            },
        };
        assert_eq!(
            serde_json::to_value(Explain::from(&e)).unwrap(),
            json!({"backend": "b", "prompt": "p", "prompt_tokens": 5,
                   "context": [{"kind": "same_file", "label": "l", "tokens": 2, "status": "clipped"}],
                   "notes": [], "usage": {"prompt_tokens": 1, "cached_prompt_tokens": 2,
                   "completion_tokens": 3, "first_token_ms": 4, "total_ms": 5}})
        );
        for (s, name) in [
            (codeforge_ide::GenerateStatus::Generated, "generated"),
            (
                codeforge_ide::GenerateStatus::NoValidCandidate,
                "no_valid_candidate",
            ),
            (
                codeforge_ide::GenerateStatus::NoPassingCandidate,
                "no_passing_candidate",
            ),
        ] {
            assert_eq!(
                serde_json::to_value(GenerateStatus::from(s)).unwrap(),
                json!(name)
            );
        }
    }
}
