//! One model answer turned into a candidate edit: take the code block, take the target's body,
//! re-indent it to the insertion point, reject stubs, answers that repeat an earlier candidate,
//! and anything that leaves the file with more syntax errors than it had (checked by one
//! incremental re-parse of the request's [`ParsedFile`]). Also the model-confidence order that
//! every later phase starts from. Pure: no model, no processes.

use codeforge_prompt::{PlanMode, split_answer};
use codeforge_syntax::{
    BodyEdit, FunctionTarget, ParsedFile, body_from_generated, is_stub_body, splice_body,
};

/// One model sample after post-processing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    pub index: usize,
    /// Why it was set aside; `None` when usable.
    pub rejected: Option<String>,
    /// The new body (dedented) and the edit that puts it in place.
    pub body: Option<String>,
    pub edit: Option<BodyEdit>,
    /// The whole function after the edit, doc comment included.
    pub function: Option<String>,
    pub plan: Option<String>,
    pub mean_logprob: Option<f64>,
    pub raw: String,
}

impl Candidate {
    pub fn usable(&self) -> bool {
        self.rejected.is_none()
    }

    /// The candidate's whole file (`None` when it has no edit).
    pub fn file_text(&self, file: &ParsedFile) -> Option<String> {
        self.edit.as_ref().map(|e| file.with_edit(e))
    }
}

/// Post-processes one answer against the target.
pub fn candidate_from_answer(
    file: &ParsedFile,
    target: &FunctionTarget,
    plan: PlanMode,
    index: usize,
    answer: &str,
) -> Candidate {
    let lang = file.language();
    let mut c = Candidate {
        index,
        rejected: None,
        body: None,
        edit: None,
        function: None,
        plan: None,
        mean_logprob: None,
        raw: answer.to_string(),
    };
    let (plan_text, code) = split_answer(lang, answer);
    c.plan = plan_text.clone();
    let Some(mut body) = body_from_generated(lang, &code, &target.symbol.name) else {
        c.rejected = Some(format!(
            "the answer holds no body for `{}` that parses",
            target.symbol.name
        ));
        return c;
    };
    if is_stub_body(lang, &body) {
        c.rejected = Some("the answer is itself a stub".into());
        return c;
    }
    if plan == PlanMode::Comments
        && let Some(p) = &plan_text
    {
        let cm = &lang.spec().generation.line_comment;
        let comments: String = p
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{cm} {}\n", l.trim()))
            .collect();
        body = format!("{comments}{body}");
    }
    let edit = splice_body(target, &body);
    if file.errors_after(&edit) > file.errors() {
        c.rejected = Some("the function does not parse once put in place".into());
        return c;
    }
    let new_source = file.with_edit(&edit);
    let delta = edit.new_text.len() as isize - (edit.end - edit.start) as isize;
    let fn_end = (target.symbol.end_byte as isize + delta).max(0) as usize;
    c.function = new_source
        .get(target.doc_start_byte..fn_end.min(new_source.len()))
        .map(str::to_string);
    c.body = Some(body);
    c.edit = Some(edit);
    c
}

/// Sets aside a usable candidate whose body an earlier usable one already has.
pub(crate) fn reject_repeat(c: &mut Candidate, earlier: &[Candidate]) {
    if c.usable()
        && let Some(prev) = earlier.iter().find(|p| p.usable() && p.body == c.body)
    {
        c.rejected = Some(format!("same body as candidate {}", prev.index));
    }
}

/// Usable candidates, the one the model was surest of first (ties: the earlier one).
pub(crate) fn by_confidence(candidates: &[Candidate]) -> Vec<usize> {
    let mut u: Vec<&Candidate> = candidates.iter().filter(|c| c.usable()).collect();
    u.sort_by(|a, b| {
        b.mean_logprob
            .unwrap_or(0.0)
            .partial_cmp(&a.mean_logprob.unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.index.cmp(&b.index))
    });
    u.into_iter().map(|c| c.index).collect()
}
