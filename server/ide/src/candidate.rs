//! One model answer turned into a candidate edit: take the code block, take the target's body,
//! re-indent it to the insertion point, reject stubs, answers that repeat an earlier candidate,
//! and anything that leaves the file with more syntax errors than it had (checked by one
//! incremental re-parse of the request's [`ParsedFile`]). Also the model-confidence order that
//! every later phase starts from. Pure: no model, no processes.

use codeforge_prompt::{PlanMode, split_answer};
use codeforge_syntax::{
    BodyEdit, FunctionTarget, Importable, ParsedFile, answer_extras, body_from_generated,
    is_stub_body, missing_imports, splice_body,
};

/// One model sample after post-processing.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub index: usize,
    /// Why it was set aside; `None` when usable.
    pub rejected: Option<String>,
    /// The new body (dedented) and the edit that puts it in place.
    pub body: Option<String>,
    pub edit: Option<BodyEdit>,
    /// What the answer needs around the body: its imports and helper functions, inserted
    /// elsewhere in the file (part of the same accepted change, and of what is verified).
    pub extra_edits: Vec<BodyEdit>,
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

    /// Every edit of the candidate: the body's, then the imports' and helpers'.
    pub fn edits(&self) -> Vec<BodyEdit> {
        self.edit
            .iter()
            .chain(self.extra_edits.iter())
            .cloned()
            .collect()
    }

    /// The candidate's whole file (`None` when it has no edit).
    pub fn file_text(&self, file: &ParsedFile) -> Option<String> {
        self.edit.as_ref()?;
        Some(file.with_edits(&self.edits()))
    }
}

/// Post-processes one answer against the target.
pub fn candidate_from_answer(
    file: &ParsedFile,
    target: &FunctionTarget,
    plan: PlanMode,
    index: usize,
    answer: &str,
    importable: &[Importable],
) -> Candidate {
    let lang = file.language();
    let mut c = Candidate {
        index,
        rejected: None,
        body: None,
        edit: None,
        extra_edits: Vec::new(),
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
    let mut extras = answer_extras(lang, &code, &target.symbol.name);
    // Repository symbols the answer uses that nothing imports (the target's own text aside: its
    // docstring may name them).
    let source = file.source();
    let outside = format!(
        "{}{}",
        source.get(..target.doc_start_byte).unwrap_or(""),
        source.get(target.symbol.end_byte..).unwrap_or("")
    );
    let auto = missing_imports(lang, &outside, &code, &extras.imports, importable);
    extras.imports.extend(auto);
    let extra = file.extra_edits(target, &extras);
    let mut all = vec![edit.clone()];
    all.extend(extra.iter().cloned());
    if file.errors_after_edits(&all) > file.errors() {
        c.rejected = Some("the function does not parse once put in place".into());
        return c;
    }
    let new_source = file.with_edits(&all);
    // Inserted above the function (imports, helpers) moves it down.
    let before: usize = extra
        .iter()
        .filter(|e| e.start <= target.doc_start_byte)
        .map(|e| e.new_text.len() - (e.end - e.start))
        .sum();
    let delta = edit.new_text.len() as isize - (edit.end - edit.start) as isize;
    let fn_start = target.doc_start_byte + before;
    let fn_end = (target.symbol.end_byte as isize + before as isize + delta).max(0) as usize;
    c.function = new_source
        .get(fn_start..fn_end.min(new_source.len()))
        .map(str::to_string);
    c.extra_edits = extra;
    c.body = Some(body);
    c.edit = Some(edit);
    c
}

/// What in an answer shows it copied the prompt's scaffolding instead of answering: the labels
/// of the context the model was shown, and the signatures of the file's other functions (a
/// nested copy of a neighbour).
#[derive(Debug, Clone, Default)]
pub(crate) struct EchoMarkers {
    labels: Vec<String>,
    signatures: Vec<(String, String)>,
}

/// A definition line compared without its indentation and the `:`/`{` that opens its body.
fn signature_key(line: &str) -> String {
    line.trim()
        .trim_end_matches(['{', ':'])
        .trim_end()
        .to_string()
}

/// Headings of the function prompt's context sections.
const SCAFFOLDING: [&str; 2] = [
    "Context from the repository",
    "### Other definitions in this file",
];

impl EchoMarkers {
    /// `labels`: the context shown (same-file and retrieved definitions).
    pub(crate) fn new(file: &ParsedFile, target: &FunctionTarget, labels: Vec<String>) -> Self {
        let signatures = file
            .extracted()
            .symbols
            .iter()
            .filter(|s| s.kind.is_callable() && s.qualified_name != target.symbol.qualified_name)
            .filter(|s| !s.signature.trim().is_empty())
            .map(|s| (signature_key(&s.signature), s.qualified_name.clone()))
            .collect();
        EchoMarkers { labels, signatures }
    }

    /// Why `c`'s body is an echo of the prompt, if it is.
    pub(crate) fn find(&self, c: &Candidate) -> Option<String> {
        let body = c.body.as_deref()?;
        // Labels and headings anywhere in the answer (a body keeps no leading comments).
        let answer = c.raw.as_str();
        if let Some(h) = SCAFFOLDING.iter().find(|h| answer.contains(**h)) {
            return Some(format!("the answer repeats the prompt's `{h}`"));
        }
        if let Some(l) = self.labels.iter().find(|l| answer.contains(l.as_str())) {
            return Some(format!("the answer repeats the context label `{l}`"));
        }
        self.signatures
            .iter()
            .find(|(sig, _)| body.lines().any(|line| signature_key(line) == *sig))
            .map(|(_, name)| format!("the answer holds a copy of `{name}` from the context"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use codeforge_syntax::Language;

    const SRC: &str = "def describe(shape):\n    \"\"\"Name and area.\"\"\"\n    return f\"{shape}\"\n\n\ndef area(r):\n    \"\"\"Area of a circle of radius r.\"\"\"\n    pass\n";

    fn check(answer: &str) -> Option<String> {
        let file = ParsedFile::parse(Language::Python, "shapes.py", SRC);
        let target = file.function_at_line(6).unwrap();
        let echo = EchoMarkers::new(&file, &target, vec!["line 1 shapes.describe".into()]);
        let c = candidate_from_answer(&file, &target, PlanMode::Off, 0, answer, &[]);
        assert!(c.usable(), "{:?}", c.rejected);
        echo.find(&c)
    }

    #[test]
    fn a_repository_function_the_answer_calls_is_imported_in_the_same_edit() {
        let file = ParsedFile::parse(Language::Python, "shapes.py", SRC);
        let target = file.function_at_line(6).unwrap();
        let importable = [Importable {
            name: "square".into(),
            import: "from geometry.util import square".into(),
        }];
        let answer = "```python\nimport math\n\ndef area(r):\n    return math.pi * square(r)\n```";
        let c = candidate_from_answer(&file, &target, PlanMode::Off, 0, answer, &importable);
        assert!(c.usable(), "{:?}", c.rejected);
        let text = c.file_text(&file).unwrap();
        assert!(
            text.starts_with("import math\nfrom geometry.util import square\n"),
            "{text}"
        );
        assert!(text.contains("return math.pi * square(r)"), "{text}");
        // Not used: nothing added.
        let answer = "```python\ndef area(r):\n    return 3.14159 * r * r\n```";
        let c = candidate_from_answer(&file, &target, PlanMode::Off, 0, answer, &importable);
        assert!(c.extra_edits.is_empty(), "{:?}", c.extra_edits);
    }

    #[test]
    fn answers_that_echo_the_prompt_are_found() {
        assert_eq!(
            check("```python\ndef area(r):\n    return 3.14159 * r * r\n```"),
            None
        );
        let label = check(
            "```python\ndef area(r):\n    # line 1 shapes.describe\n    return 3.14159 * r * r\n```",
        );
        assert!(label.is_some_and(|w| w.contains("context label")));
        let copy = check(
            "```python\ndef area(r):\n    def describe(shape):\n        return str(shape)\n    return 3.14159 * r * r\n```",
        );
        assert!(
            copy.is_some_and(|w| w.contains("shapes.describe")),
            "a nested copy of a neighbour"
        );
        let heading =
            check("```python\ndef area(r):\n    # Context from the repository\n    return r\n```");
        assert!(heading.is_some());
    }
}
