//! Prompts as pure functions: what the model is asked, built from the target function and the
//! context retrieved for it, filled into a token budget in priority order (the task itself,
//! then the enclosing scope, imports, same-file definitions, repository hits) and clipped without
//! splitting a UTF-8 character. Every piece of context is recorded, included or dropped, so
//! `--explain` can show what the model saw. No I/O, no model calls: token counts come from a
//! function the caller hands in (the model's own tokenizer where it has one).
//!
//! Every text from the workspace that goes into a prompt (code around the cursor, the stub,
//! context snippets, a candidate, test output) has its secrets masked with
//! [`codeforge_syntax::secret_scan::REDACTED`] before it is budgeted: no builder here can put a
//! key found by `secret_scan` into a prompt.

use codeforge_model::{Message, Prompt};
use codeforge_syntax::Language;
use codeforge_syntax::secret_scan::redact;

/// Where a piece of context came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnippetKind {
    Scope,
    Imports,
    SameFile,
    Retrieved,
}

/// One piece of context offered to the prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snippet {
    pub kind: SnippetKind,
    /// Where it is from, e.g. `src/shapes.py:12 shapes.Circle.area`.
    pub label: String,
    pub text: String,
}

/// "Implement this function".
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTask {
    pub language: Language,
    /// Workspace-relative path of the file.
    pub path: String,
    pub qualified_name: String,
    pub name: String,
    /// The definition as written: doc comment, signature, docstring, stub body.
    pub stub_text: String,
    /// Context in priority order (the builder keeps this order within each kind).
    pub context: Vec<Snippet>,
}

/// What to do with the plan the model writes before the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    /// Ask for code only.
    Off,
    /// Ask for a plan, then drop it.
    Drop,
    /// Ask for a plan and keep it as comments at the top of the body.
    Comments,
}

/// Whether a context piece made it into the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextStatus {
    Full,
    Clipped,
    Dropped,
}

impl ContextStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextStatus::Full => "full",
            ContextStatus::Clipped => "clipped",
            ContextStatus::Dropped => "dropped",
        }
    }
}

impl std::fmt::Display for ContextStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A context piece and whether it made it into the prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Included {
    pub kind: SnippetKind,
    pub label: String,
    pub tokens: usize,
    pub status: ContextStatus,
}

impl Included {
    /// It did not fit the budget: the model never saw it.
    pub fn is_dropped(&self) -> bool {
        self.status == ContextStatus::Dropped
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuiltPrompt {
    pub prompt: Prompt,
    pub tokens: usize,
    pub context: Vec<Included>,
}

/// The longest prefix of `text` that counts at most `max` tokens, cut at a line end where one
/// is near, never inside a UTF-8 character.
pub fn clip_to_tokens<'a>(text: &'a str, max: usize, count: &dyn Fn(&str) -> usize) -> &'a str {
    if count(text) <= max {
        return text;
    }
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let (mut lo, mut hi) = (0usize, bounds.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count(&text[..bounds[mid]]) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let cut = &text[..bounds[lo]];
    match cut.rfind('\n') {
        Some(nl) if nl > cut.len() / 2 => &cut[..nl + 1],
        _ => cut,
    }
}

/// The system message for function-level generation.
fn system(lang: Language) -> String {
    format!(
        "You are an expert {} programmer working inside the user's repository. You implement \
         functions exactly as their signature and documentation specify, using the repository's \
         own helpers where they fit. You never change the signature, never add imports that are \
         not available, and never leave placeholders.",
        display_name(lang)
    )
}

/// The language's name in prose (`[prompt] display_name` in its `language.toml`).
fn display_name(lang: Language) -> &'static str {
    &lang.spec().prompt.display_name
}

fn heading(kind: SnippetKind) -> &'static str {
    match kind {
        SnippetKind::Scope => "Enclosing scope",
        SnippetKind::Imports => "Imports of this file",
        SnippetKind::SameFile => "Other definitions in this file",
        SnippetKind::Retrieved => "Related code from the repository",
    }
}

/// Builds the chat prompt for "implement this function" within `budget` prompt tokens.
pub fn function_prompt(
    task: &FunctionTask,
    plan: PlanMode,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> BuiltPrompt {
    let fence = &task.language.spec().generation.fence;
    let sys = system(task.language);
    let instructions = match plan {
        PlanMode::Off => format!(
            "Reply with the complete function, signature and documentation unchanged, in one ```{fence} code block, and nothing else."
        ),
        PlanMode::Drop | PlanMode::Comments => format!(
            "First write `Plan:` and a short numbered plan (at most 5 steps, one line each). Then \
             reply with the complete function, signature and documentation unchanged, in one ```{fence} code block."
        ),
    };
    let task_text = format!(
        "Implement `{}` in `{}`:\n\n```{fence}\n{}\n```\n\n{instructions}",
        task.qualified_name,
        task.path,
        redact(&task.stub_text).trim_end()
    );
    let fixed = count(&sys) + count(&task_text) + 16;
    let mut left = budget.saturating_sub(fixed);
    let mut included = Vec::new();
    let mut sections: Vec<(SnippetKind, Vec<String>)> = Vec::new();
    for kind in [
        SnippetKind::Scope,
        SnippetKind::Imports,
        SnippetKind::SameFile,
        SnippetKind::Retrieved,
    ] {
        for s in task.context.iter().filter(|s| s.kind == kind) {
            let text = redact(&s.text);
            // A retrieved definition is labelled by a comment line (where it is from); the file's
            // own definitions are not (their signatures say what they are). Measured with the
            // embedded 0.5B model on the editor fixture: with `# line 9 shapes.describe` above a
            // neighbour it rewrote the neighbour, label included. An answer that copies a label
            // is set aside (`ide/src/candidate.rs`).
            let piece = if kind == SnippetKind::Retrieved {
                format!(
                    "{} {}\n{}\n",
                    task.language.spec().generation.line_comment,
                    s.label,
                    text.trim_end()
                )
            } else {
                format!("{}\n", text.trim_end())
            };
            let tokens = count(&piece);
            let (text, status) = if tokens <= left {
                (piece, ContextStatus::Full)
            } else if left >= 24 && kind != SnippetKind::Retrieved {
                (
                    clip_to_tokens(&piece, left, count).to_string(),
                    ContextStatus::Clipped,
                )
            } else {
                (String::new(), ContextStatus::Dropped)
            };
            let used = if text.is_empty() { 0 } else { count(&text) };
            left = left.saturating_sub(used);
            included.push(Included {
                kind,
                label: s.label.clone(),
                tokens: used,
                status,
            });
            if !text.is_empty() {
                match sections.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, v)) => v.push(text),
                    None => sections.push((kind, vec![text])),
                }
            }
        }
    }
    // The context goes into the system message, apart from the task, so that what the user
    // asks for is only the function.
    let mut system_text = sys;
    if !sections.is_empty() {
        system_text
            .push_str("\n\nContext from the repository (for reference; do not repeat it):\n\n");
        for (kind, pieces) in &sections {
            system_text.push_str(&format!("### {}\n```{fence}\n", heading(*kind)));
            for p in pieces {
                system_text.push_str(p);
            }
            system_text.push_str("```\n\n");
        }
        let trimmed = system_text.trim_end().len();
        system_text.truncate(trimmed);
    }
    let messages = vec![Message::system(system_text), Message::user(task_text)];
    let tokens = messages.iter().map(|m| count(&m.content)).sum::<usize>() + 16;
    BuiltPrompt {
        prompt: Prompt::Chat(messages),
        tokens,
        context: included,
    }
}

/// Splits a model's answer into the plan (text before the code) and the first code block (the
/// one tagged with the language if there are several); a bare answer is all code.
pub fn split_answer(lang: Language, answer: &str) -> (Option<String>, String) {
    let fence = lang.spec().generation.fence.as_str();
    let aliases = &lang.spec().prompt.fence_aliases;
    let mut blocks: Vec<(usize, String, String)> = Vec::new(); // (start, tag, code)
    let mut rest = answer;
    let mut offset = 0;
    while let Some(i) = rest.find("```") {
        let after = &rest[i + 3..];
        let tag_end = after.find('\n').unwrap_or(after.len());
        let tag = after[..tag_end].trim().to_lowercase();
        let body = &after[(tag_end + 1).min(after.len())..];
        let (code, consumed) = match closing_fence(body).or_else(|| body.find("```")) {
            Some(j) => (&body[..j], i + 3 + tag_end + 1 + j + 3),
            None => (body, rest.len()), // unterminated: take the rest
        };
        blocks.push((offset + i, tag, code.to_string()));
        offset += consumed.min(rest.len());
        rest = &rest[consumed.min(rest.len())..];
    }
    let chosen = blocks
        .iter()
        .find(|(_, tag, _)| tag == fence || aliases.iter().any(|a| a == tag))
        .or_else(|| blocks.first());
    match chosen {
        None => (None, answer.trim_matches('\n').to_string()),
        Some((start, _, code)) => {
            let before = answer[..*start].trim();
            let plan = before
                .strip_prefix("Plan:")
                .map(str::trim)
                .or(Some(before))
                .filter(|p| !p.is_empty())
                .map(str::to_string);
            (plan, code.trim_end().to_string())
        }
    }
}

/// Where a code block's closing fence starts in `body` ([`codeforge_model::is_closing_fence`]).
fn closing_fence(body: &str) -> Option<usize> {
    let mut at = 0;
    for line in body.split_inclusive('\n') {
        if codeforge_model::is_closing_fence(line) {
            return Some(at + line.len() - line.trim_start_matches(' ').len());
        }
        at += line.len();
    }
    None
}

/// A fill-in-the-middle prompt for Qwen2.5-Coder base models: as much of the prefix (nearest the
/// cursor) and suffix as fits the budget, two thirds to the prefix.
pub fn fim_prompt(
    prefix: &str,
    suffix: &str,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Prompt {
    let (prefix, suffix) = (redact(prefix), redact(suffix));
    let pre_budget = budget * 2 / 3;
    let pre = sticky_tail(&prefix, pre_budget, count);
    let suf_budget = budget.saturating_sub(count(pre));
    let suf = clip_to_tokens(&suffix, suf_budget, count);
    Prompt::Text(format!(
        "<|fim_prefix|>{pre}<|fim_suffix|>{suf}<|fim_middle|>"
    ))
}

/// Repository context for a fill-in-the-middle prompt: one file's related code.
#[derive(Debug, Clone, PartialEq)]
pub struct FimFile {
    /// Workspace-relative path.
    pub path: String,
    pub text: String,
}

/// [`fim_prompt`] with repository context, in Qwen2.5-Coder's repository-level format
/// (`<|repo_name|>`, then each file after `<|file_sep|>path`, the edited file last with the
/// hole). The context takes at most a quarter of the budget, files in the order given (a file
/// that does not fit whole is left out); the rest goes to the prefix and suffix as in
/// [`fim_prompt`]. Without context (or when none fits) the prompt is exactly [`fim_prompt`]'s.
pub fn repo_fim_prompt(
    repo: &str,
    rel_path: &str,
    context: &[FimFile],
    prefix: &str,
    suffix: &str,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Prompt {
    let mut head = String::new();
    let mut used = 0;
    let max = budget / 4;
    for f in context {
        let section = format!("<|file_sep|>{}\n{}\n", f.path, redact(f.text.trim_end()));
        let n = count(&section);
        if used + n > max {
            continue;
        }
        used += n;
        head.push_str(&section);
    }
    let hole = fim_prompt(prefix, suffix, budget.saturating_sub(used), count);
    if head.is_empty() {
        return hole;
    }
    let Prompt::Text(hole) = hole else {
        return hole;
    };
    let repo = repo.replace(['\n', '<', '>'], " ");
    Prompt::Text(format!(
        "<|repo_name|>{repo}\n{head}<|file_sep|>{rel_path}\n{hole}"
    ))
}

/// Lines between the places a clipped prefix may start ([`sticky_tail`]).
pub const STICKY_LINES: usize = 16;

/// [`tail_to_tokens`] with its start moved forward to the next line whose number is a multiple
/// of [`STICKY_LINES`]. While the user types at the end of `text`, the start stays where it was
/// until the text outgrows it by that many lines, so the prompt begins the same from keystroke
/// to keystroke and a model that keeps the last prompt's KV cache re-reads only what changed.
pub fn sticky_tail<'a>(text: &'a str, max: usize, count: &dyn Fn(&str) -> usize) -> &'a str {
    let tail = tail_to_tokens(text, max, count);
    if tail.len() == text.len() {
        return text;
    }
    let start = text.len() - tail.len();
    for (line, (i, _)) in text.match_indices('\n').enumerate() {
        let line_start = i + 1;
        if line_start >= start && (line + 1) % STICKY_LINES == 0 {
            return &text[line_start..];
        }
    }
    tail
}

/// The longest suffix of `text` within `max` tokens, starting at a line start where possible.
pub fn tail_to_tokens<'a>(text: &'a str, max: usize, count: &dyn Fn(&str) -> usize) -> &'a str {
    if count(text) <= max {
        return text;
    }
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let (mut lo, mut hi) = (0usize, bounds.len() - 1);
    // smallest start index whose tail fits
    while lo < hi {
        let mid = (lo + hi) / 2;
        if count(&text[bounds[mid]..]) <= max {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let tail = &text[bounds[lo]..];
    match tail.find('\n') {
        Some(nl) if nl < tail.len() / 2 => &tail[nl + 1..],
        _ => tail,
    }
}

/// The follow-up turn of a refinement: the original conversation, the candidate as the model's
/// answer, and the failing tests' output clipped to `feedback_tokens`.
pub fn refine_prompt(
    original: &Prompt,
    lang: Language,
    candidate_function: &str,
    failures: &str,
    feedback_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Prompt {
    let fence = &lang.spec().generation.fence;
    let failures = redact(failures);
    let feedback = clip_to_tokens(&failures, feedback_tokens, count);
    let mut messages = match original {
        Prompt::Chat(m) => m.clone(),
        Prompt::Text(t) => vec![Message::user(t.clone())],
    };
    messages.push(Message::assistant(format!(
        "```{fence}\n{}\n```",
        redact(candidate_function).trim_end()
    )));
    messages.push(Message::user(format!(
        "That function was tested and failed:\n\n```\n{}\n```\n\nFind the mistake and reply with the \
         corrected complete function, signature and documentation unchanged, in one ```{fence} code block.",
        feedback.trim_end()
    )));
    Prompt::Chat(messages)
}

/// Asks again after an answer that held no usable function (no code block, no body that
/// parses, a stub): the answer and why it was set aside go back to the model.
pub fn reask_prompt(
    original: &Prompt,
    lang: Language,
    name: &str,
    answer: &str,
    reason: &str,
) -> Prompt {
    let fence = &lang.spec().generation.fence;
    let mut messages = match original {
        Prompt::Chat(m) => m.clone(),
        Prompt::Text(t) => vec![Message::user(t.clone())],
    };
    messages.push(Message::assistant(redact(answer).trim_end().to_string()));
    messages.push(Message::user(format!(
        "That answer could not be used: {reason}. Reply with the complete function `{name}` — \
         signature and documentation unchanged, its body implemented — in one ```{fence} code block."
    )));
    Prompt::Chat(messages)
}

/// The "test designer" prompt: ask for a few tests of `stub_text` written from its documentation
/// alone (used when the workspace has no test for the function).
pub fn test_designer_prompt(
    lang: Language,
    qualified_name: &str,
    name: &str,
    stub_text: &str,
) -> Prompt {
    let fence = &lang.spec().generation.fence;
    let style = lang.spec().prompt.test_style.replace("{name}", name);
    let sys = format!(
        "You are a careful {} tester. You write small, correct tests that check exactly what a \
         function's documentation promises: its examples, edge cases it names, and simple cases \
         whose answer is certain. Never guess at behaviour the documentation does not state.",
        display_name(lang)
    );
    let user = format!(
        "Write 3 to 5 tests for `{qualified_name}` from its documentation:\n\n```{fence}\n{}\n```\n\n\
         Write {style}. Reply with the tests only, in one ```{fence} code block.",
        redact(stub_text).trim_end()
    );
    Prompt::Chat(vec![Message::system(sys), Message::user(user)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn repository_fim_prompt_puts_context_files_first_within_a_quarter_of_the_budget() {
        let ctx = vec![
            FimFile {
                path: "pkg/util.py".into(),
                text: "def mean(xs):\n".into(),
            },
            FimFile {
                path: "pkg/big.py".into(),
                text: "x".repeat(500),
            },
        ];
        let Prompt::Text(p) = repo_fim_prompt(
            "proj",
            "pkg/main.py",
            &ctx,
            "def f(xs):\n    ",
            "\n",
            400,
            &chars,
        ) else {
            panic!("a text prompt")
        };
        assert_eq!(
            p,
            "<|repo_name|>proj\n<|file_sep|>pkg/util.py\ndef mean(xs):\n<|file_sep|>pkg/main.py\n\
             <|fim_prefix|>def f(xs):\n    <|fim_suffix|>\n<|fim_middle|>"
        );
        // No context (or none that fits): the plain FIM prompt.
        assert_eq!(
            repo_fim_prompt("proj", "a.py", &[], "x = ", "\n", 400, &chars),
            fim_prompt("x = ", "\n", 400, &chars)
        );
        assert_eq!(
            repo_fim_prompt("proj", "a.py", &ctx[1..], "x = ", "\n", 400, &chars),
            fim_prompt("x = ", "\n", 400, &chars)
        );
    }

    #[test]
    fn a_clipped_prefix_keeps_its_start_while_the_user_types() {
        let mut text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let first = sticky_tail(&text, 300, &chars);
        assert!(first.len() <= 300 && first.starts_with("line "), "{first}");
        let line_no = |t: &str| t[5..8].parse::<usize>().unwrap();
        assert_eq!(line_no(first) % STICKY_LINES, 0);
        // Typing at the end: the start stays until the text outgrows it.
        let start = line_no(first);
        let mut moved_at = None;
        for k in 0..40 {
            text.push_str(&format!("line {:03}\n", 100 + k));
            let t = sticky_tail(&text, 300, &chars);
            assert!(chars(t) <= 300);
            if line_no(t) != start {
                moved_at.get_or_insert(k);
            }
        }
        let moved_at = moved_at.expect("the start moves once the text outgrows it");
        assert!(moved_at >= 5, "the start held for {moved_at} lines");
        // A text that fits is whole.
        assert_eq!(sticky_tail("a\nb\n", 300, &chars), "a\nb\n");
    }

    #[test]
    fn clipping_never_splits_a_character() {
        let t = "ééééé\nabc";
        assert_eq!(clip_to_tokens(t, 3, &chars), "ééé");
        assert_eq!(clip_to_tokens(t, 100, &chars), t);
        assert_eq!(tail_to_tokens("abc\nééé", 3, &chars), "ééé");
    }

    #[test]
    fn answers_split_into_plan_and_code() {
        let a = "Plan:\n1. Split.\n2. Sum.\n\n```python\ndef f():\n    return 1\n```\nDone.";
        let (plan, code) = split_answer(Language::Python, a);
        assert_eq!(plan.as_deref(), Some("1. Split.\n2. Sum."));
        assert_eq!(code, "def f():\n    return 1");
        let (plan, code) = split_answer(Language::Rust, "```text\nx\n```\n```rust\nfn f() {}\n```");
        assert_eq!(plan.as_deref(), Some("```text\nx\n```"));
        assert_eq!(code, "fn f() {}");
        let (plan, code) = split_answer(Language::Java, "return 1;");
        assert_eq!((plan, code.as_str()), (None, "return 1;"));
        let (_, code) = split_answer(Language::Python, "```python\ndef f():\n    return 1\n");
        assert_eq!(code, "def f():\n    return 1", "unterminated fence");
        // A docstring with its own fenced example (humanize's docstrings have them).
        let doc = "def f():\n    \"\"\"One.\n\n    ```pycon\n    >>> f()\n    1\n    ```\n    \"\"\"\n    return 1";
        let (_, code) = split_answer(Language::Python, &format!("```python\n{doc}\n```\nDone."));
        assert_eq!(
            code, doc,
            "a fence inside the code neither closes nor opens"
        );
        let (_, code) = split_answer(Language::Python, "```python\nreturn 1```");
        assert_eq!(code, "return 1", "a closing fence at a line's end");
    }

    #[test]
    fn budget_drops_low_priority_context_first() {
        let task = FunctionTask {
            language: Language::Python,
            path: "a.py".into(),
            qualified_name: "a.f".into(),
            name: "f".into(),
            stub_text: "def f():\n    \"\"\"Doc.\"\"\"\n    pass".into(),
            context: vec![
                Snippet {
                    kind: SnippetKind::Retrieved,
                    label: "b.py:1 b.g".into(),
                    text: "def g(): ...".repeat(40),
                },
                Snippet {
                    kind: SnippetKind::Imports,
                    label: "imports".into(),
                    text: "import os".into(),
                },
            ],
        };
        let b = function_prompt(&task, PlanMode::Off, 10_000, &chars);
        assert!(b.context.iter().all(|c| c.status.as_str() == "full"));
        let small = chars(
            &function_prompt(&task, PlanMode::Off, 0, &chars)
                .prompt
                .render_plain(),
        ) + 60;
        let b = function_prompt(&task, PlanMode::Off, small, &chars);
        let status: Vec<_> = b
            .context
            .iter()
            .map(|c| (c.kind, c.status.as_str()))
            .collect();
        assert_eq!(
            status,
            [
                (SnippetKind::Imports, "full"),
                (SnippetKind::Retrieved, "dropped")
            ]
        );
        assert!(b.tokens <= small + 40, "{} > {small}", b.tokens);
    }

    #[test]
    fn refine_appends_the_candidate_and_clipped_failures() {
        let orig = Prompt::Chat(vec![Message::system("s"), Message::user("u")]);
        let count = |t: &str| t.len();
        let p = refine_prompt(
            &orig,
            Language::Python,
            "def f():\n    return 1\n",
            &"E assert 1 == 2\n".repeat(100),
            40,
            &count,
        );
        let Prompt::Chat(m) = p else { panic!() };
        assert_eq!(m.len(), 4);
        assert_eq!(m[2].content, "```python\ndef f():\n    return 1\n```");
        assert!(
            m[3].content
                .starts_with("That function was tested and failed")
        );
        assert!(
            m[3].content.len() < 400,
            "feedback clipped to its budget: {}",
            m[3].content.len()
        );
    }

    #[test]
    fn a_reask_carries_the_answer_and_the_reason() {
        let original = Prompt::Chat(vec![Message::user("Implement `f`.")]);
        let Prompt::Chat(m) = reask_prompt(
            &original,
            Language::Python,
            "f",
            "I cannot do that.",
            "the answer holds no body for `f` that parses",
        ) else {
            panic!("a chat prompt")
        };
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].content, "I cannot do that.");
        assert!(
            m[2].content.contains("no body for `f` that parses")
                && m[2].content.contains("```python")
        );
    }

    /// A high-entropy key, built here so that this file holds none.
    fn fake_key() -> String {
        ["q7Zp3Xc9", "Lm2Vb8Nw", "4Rt6Yk1H", "s5Dj0Gf"].concat()
    }

    #[test]
    fn secrets_around_the_cursor_and_in_context_are_masked() {
        let key = fake_key();
        let prefix = format!("import os\n\nAPI_KEY = \"{key}\"\n\ndef fetch(url):\n    ");
        let suffix = format!("\n\nBACKUP_TOKEN = '{key}'\n");
        let context = vec![Snippet {
            kind: SnippetKind::Retrieved,
            label: "cfg.py:1 cfg.load".into(),
            text: format!("# token: {key}\ndef load():"),
        }];
        for p in [
            cursor_prompt(
                Language::Python,
                "a.py",
                &prefix,
                &suffix,
                &context,
                10_000,
                &chars,
            )
            .prompt,
            fim_prompt(&prefix, &suffix, 10_000, &chars),
        ] {
            let text = p.render_plain();
            assert!(!text.contains(&key), "{text}");
            assert!(text.contains("API_KEY = \"«redacted»\""), "{text}");
            assert!(
                text.contains("def fetch(url):"),
                "the code itself stays: {text}"
            );
        }
    }

    #[test]
    fn secrets_in_the_stub_context_and_test_output_are_masked() {
        let key = fake_key();
        let task = FunctionTask {
            language: Language::Python,
            path: "a.py".into(),
            qualified_name: "a.Client.f".into(),
            name: "f".into(),
            stub_text: format!("def f(self, token=\"{key}\"):\n    \"\"\"Doc.\"\"\"\n    pass"),
            context: vec![Snippet {
                kind: SnippetKind::Scope,
                label: "a.Client".into(),
                text: format!("class Client:\n    password = '{key}'"),
            }],
        };
        let built = function_prompt(&task, PlanMode::Off, 10_000, &chars).prompt;
        let refined = refine_prompt(
            &built,
            Language::Python,
            "def f(self):\n    return 1",
            &format!("E AssertionError: secret = {key}"),
            1_000,
            &chars,
        );
        let designer = test_designer_prompt(Language::Python, "a.f", "f", &task.stub_text);
        for p in [built, refined, designer] {
            let text = p.render_plain();
            assert!(!text.contains(&key), "{text}");
            assert!(text.contains("«redacted»"), "{text}");
        }
    }

    #[test]
    fn test_designer_names_the_function() {
        let Prompt::Chat(m) = test_designer_prompt(
            Language::Rust,
            "crate::add",
            "add",
            "/// Adds.\nfn add(a: i32, b: i32) -> i32 { todo!() }",
        ) else {
            panic!()
        };
        assert!(
            m[1].content.contains("`crate::add`") && m[1].content.contains("```rust\n/// Adds.")
        );
        assert!(m[1].content.contains("#[test]"));
    }
}

/// The marker standing for the cursor in chat completion prompts.
pub const CURSOR: &str = "<CURSOR>";

/// "Complete the code at the cursor", for instruct (chat) models: the context that fits, then the
/// code around the cursor (as much prefix as fits, two thirds of what is left, then suffix).
pub fn cursor_prompt(
    lang: Language,
    path: &str,
    prefix: &str,
    suffix: &str,
    context: &[Snippet],
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> BuiltPrompt {
    let fence = &lang.spec().generation.fence;
    let sys = format!(
        "You are a {} code completion engine inside the user's editor. You continue code exactly at \
         the cursor, matching the surrounding style and indentation, using the repository's own \
         helpers where they fit.",
        display_name(lang)
    );
    let instructions = format!(
        "Reply with only the code that goes at {CURSOR} (complete the current statement, and the \
         rest of the current block or function if it is unfinished), in one ```{fence} code block. \
         Do not repeat code that comes before or after {CURSOR}."
    );
    let fixed = count(&sys) + count(&instructions) + 32;
    let code_budget = budget.saturating_sub(fixed) * 3 / 4;
    let (prefix, suffix) = (redact(prefix), redact(suffix));
    let pre = sticky_tail(&prefix, code_budget * 2 / 3, count);
    let suf = clip_to_tokens(&suffix, code_budget.saturating_sub(count(pre)), count);
    let code = format!("In `{path}`:\n```{fence}\n{pre}{CURSOR}{suf}\n```\n\n{instructions}");
    let mut left = budget.saturating_sub(fixed + count(&code));
    let mut included = Vec::new();
    let mut ctx = String::new();
    for s in context {
        let piece = format!(
            "{} {}\n{}\n",
            lang.spec().generation.line_comment,
            s.label,
            redact(&s.text).trim_end()
        );
        let tokens = count(&piece);
        if tokens <= left {
            left -= tokens;
            ctx.push_str(&piece);
            included.push(Included {
                kind: s.kind,
                label: s.label.clone(),
                tokens,
                status: ContextStatus::Full,
            });
        } else {
            included.push(Included {
                kind: s.kind,
                label: s.label.clone(),
                tokens: 0,
                status: ContextStatus::Dropped,
            });
        }
    }
    let mut user = String::new();
    if !ctx.is_empty() {
        user.push_str(&format!(
            "Related code from the repository (for reference):\n```{fence}\n{ctx}```\n\n"
        ));
    }
    user.push_str(&code);
    let messages = vec![Message::system(sys), Message::user(user)];
    let tokens = messages.iter().map(|m| count(&m.content)).sum::<usize>() + 16;
    BuiltPrompt {
        prompt: Prompt::Chat(messages),
        tokens,
        context: included,
    }
}
