//! Hierarchical completion: one model answer at the cursor, offered at three granularities — the
//! rest of the line, the rest of the current block, the rest of the function — each cut at its
//! unit boundary as the tree-sitter parse of the document with the answer finds it, cleaned of
//! text that repeats what is before or after the cursor, and kept only if the file parses no
//! worse with it. Pure except [`complete`], which calls the model — never in a secrets file
//! (`.env`, `credentials.py`, …), and with every secret in the document masked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codeforge_config::GenerationSettings;
use codeforge_model::Backend;
use codeforge_prompt::{
    FimFile, Snippet, SnippetKind, cursor_prompt, repo_fim_prompt, split_answer,
};
use codeforge_syntax::secret_scan::{REDACTED, is_secret_path, redact_split};
use codeforge_syntax::{CursorSyntax, Language, UnitEnds};

use crate::checking::{VerificationStatus, VerifyContext, verify_insertion};
use crate::completion_context::{COMPLETION_CONTEXT_K, CompletionContexts};
use crate::context::Retriever;
use crate::generate::GenerateError;
use crate::related::Related;
use crate::sampler::{RequestTemplate, token_counter};

/// The granularity of a completion item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Line,
    Block,
    Function,
}

impl Level {
    /// Smallest unit first: line 0, block 1, function 2.
    pub fn rank(self) -> u8 {
        match self {
            Level::Line => 0,
            Level::Block => 1,
            Level::Function => 2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Level::Line => "rest of line",
            Level::Block => "rest of block",
            Level::Function => "rest of function",
        }
    }
}

/// Text to insert at the cursor, per level (distinct texts only, smallest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completions {
    pub items: Vec<(Level, String)>,
    /// Model answer before cutting (for `--explain`-style debugging).
    pub raw: String,
    /// What the model was asked (kept for the feedback store when the user takes an item).
    pub prompt: Option<codeforge_model::Prompt>,
    pub elapsed_ms: u64,
    /// Time spent outside the model (syntax, retrieval, prompt, post-processing), of which
    /// `context_ms` waiting for repository context.
    pub overhead_ms: u64,
    pub context_ms: u64,
    /// Repository hits that made it into the prompt in time.
    pub context_hits: usize,
    pub model_ms: u64,
    /// How each multi-line item was checked (see [`verify_items`]); line items are never tested.
    pub verdicts: Vec<(Level, ItemVerdict)>,
    /// Multi-line items held back while their tests run, or the model still writing
    /// ([`Self::partial`]): more is coming.
    pub pending: bool,
    /// The model is still writing: these are the items of the lines it has finished (the line
    /// item, streamed as soon as its line ends; see [`complete_streaming`]).
    pub partial: bool,
    /// The item to show first, where it is not the line: a FIM answer that reached the text
    /// after the cursor is the model's whole middle, so its largest item goes first.
    pub preferred: Option<Level>,
    /// Why there are no items, when there are none: every empty answer is a decision with a
    /// reason (logged, and shown by `--explain`-style tools), never an accident.
    pub reason: Option<String>,
}

/// What the tests said about one completion item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemVerdict {
    pub status: VerificationStatus,
    pub label: String,
}

impl Completions {
    /// The answer to show while multi-line items are being tested: line items only.
    pub fn held_back(&self) -> Completions {
        let mut c = self.clone();
        c.items.retain(|(l, _)| *l == Level::Line);
        c.pending = true;
        c
    }

    /// The answer at a cursor the user has moved by typing `typed` along it: the items that
    /// start with what was typed, without it. `None` when no item does (the user went
    /// elsewhere: the model must be asked again).
    pub fn typed_along(&self, typed: &str) -> Option<Completions> {
        let mut c = self.clone();
        c.items = self
            .items
            .iter()
            .filter_map(|(l, t)| {
                let rest = t.strip_prefix(typed)?;
                (!rest.trim().is_empty()).then(|| (*l, rest.to_string()))
            })
            .collect();
        c.verdicts
            .retain(|(l, _)| c.items.iter().any(|(i, _)| i == l));
        (!c.items.is_empty()).then_some(c)
    }

    /// The items' levels in the order a user most likely takes them: those whose tests passed
    /// (smallest unit first), then a FIM answer that finished the hole ([`Self::preferred`]),
    /// then the rest smallest first (the line completes the statement being typed).
    pub fn ranked(&self) -> Vec<Level> {
        let mut levels: Vec<Level> = self.items.iter().map(|(l, _)| *l).collect();
        levels.sort_by_key(|l| {
            let passed = self
                .verdict(*l)
                .is_some_and(|v| v.status == VerificationStatus::Passed);
            (!passed, self.preferred != Some(*l), l.rank())
        });
        levels
    }

    pub fn verdict(&self, level: Level) -> Option<&ItemVerdict> {
        self.verdicts
            .iter()
            .find(|(l, _)| *l == level)
            .map(|(_, v)| v)
    }
}

/// Runs the enclosing function's tests on each multi-line item: passing items are kept and say
/// so; failing ones are dropped (kept, marked ✗, with `show_unverified`); where nothing could be
/// run the item stays, marked unverified with the reason.
pub async fn verify_items(
    ctx: &VerifyContext,
    input: CompletionInput<'_>,
    mut c: Completions,
) -> Completions {
    let mut kept = Vec::new();
    for (level, text) in c.items.clone() {
        if level == Level::Line || !text.contains('\n') {
            kept.push((level, text));
            continue;
        }
        let v = verify_insertion(
            ctx,
            input.language,
            input.rel_path,
            input.source,
            input.offset,
            &text,
        )
        .await;
        let label = match v.status {
            VerificationStatus::Unverified => format!(
                "⚠ unverified: {}",
                v.reason.as_deref().unwrap_or("no tests run")
            ),
            _ => v.label.clone(),
        };
        let failed = v.status == VerificationStatus::Failed;
        if !failed || ctx.settings.show_unverified {
            c.verdicts.push((
                level,
                ItemVerdict {
                    status: v.status,
                    label,
                },
            ));
            kept.push((level, text));
        }
    }
    if kept.is_empty() && !c.items.is_empty() && c.reason.is_none() {
        c.reason = Some("every item failed the tests of its function".to_string());
    }
    c.items = kept;
    c.pending = false;
    c
}

/// Where a FIM answer's middle ends (a byte offset at a line start), if its complete lines
/// show it: the line that repeats the first line of code after the cursor, a line indented
/// less than the cursor's own line inside an indented definition (the answer left it), or a
/// markdown fence. `None` while the answer may still be the middle.
pub fn fim_middle_end(prefix: &str, suffix: &str, text: &str) -> Option<usize> {
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let cursor_line = &prefix[line_start..];
    // The indentation of the code the cursor is in: its line's, or the line above when the
    // cursor's line holds nothing yet.
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let context_indent = if cursor_line.trim().is_empty() {
        prefix[..line_start]
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or(0, indent_of)
    } else {
        indent_of(cursor_line)
    };
    // The first line of code after the cursor's line.
    let next_code = suffix
        .lines()
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty());
    let mut at = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break;
        }
        let t = line.trim();
        // The first line continues the cursor's own line: only later lines can end it.
        if i > 0 || cursor_line.trim().is_empty() {
            let repeats_suffix = next_code.is_some_and(|n| t == n);
            let left = context_indent > 0 && !t.is_empty() && indent_of(line) == 0;
            let fence = t.starts_with("```");
            if repeats_suffix || left || fence {
                return Some(at);
            }
        }
        at += line.len();
    }
    None
}

/// Removes what the model repeated: lines already before the cursor, the typed part of the
/// current line, and a tail that duplicates the text after the cursor. The most-stripped
/// reading of [`readings`].
pub fn clean_completion(prefix: &str, suffix: &str, answer: &str) -> String {
    readings(prefix, suffix, answer)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The ways an answer can be read, most likely first: with the lines it repeats from before the
/// cursor and the typed part of the current line taken off (models restate what they continue),
/// with only the repeated lines off, and as the exact continuation (first when a single
/// character is typed). Each has the tail that the
/// text after the cursor already holds removed, and ends before a line that reopens a block
/// the user already wrote. The caller keeps the one that parses best ([`complete`]): a `"`
/// typed before an answer `""Doc."""` is the docstring's start, not a repetition.
pub fn readings(prefix: &str, suffix: &str, answer: &str) -> Vec<String> {
    let text = answer.trim_end();
    let line_start = prefix.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let typed = &prefix[line_start..];
    let without_lines = strip_repeated_lines(&prefix[..line_start], text);
    let stripped = strip_typed(typed, without_lines);
    // One character typed (`/` before `// doc`, `_` before `_init__`, `r` before `return x`) is
    // as likely the start of the answer as a repetition of it: the exact reading goes first and
    // the parse has the last word.
    let order = if typed.trim().chars().count() == 1 {
        [without_lines, text, stripped]
    } else {
        [stripped, without_lines, text]
    };
    let mut out = Vec::new();
    for t in order {
        let t = cut_reopened_blocks(&prefix[..line_start], t);
        let t = strip_suffix_tail(suffix, &t);
        if !t.trim().is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The readings moved to the other indentations the cursor's empty line could take (each line
/// shifted alike): the line above's, one level deeper after a line that opens a block, one level
/// shallower, and the next line's. Small models often write the right statement at the wrong
/// depth; the parse picks among these after the model's own (ties keep the model's). Only at a
/// line that holds nothing but spaces before the cursor.
pub fn reindented(prefix: &str, suffix: &str, readings: &[String]) -> Vec<String> {
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let typed = &prefix[line_start..];
    if typed.contains(|c: char| c != ' ') {
        return Vec::new();
    }
    let indent_of = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let code = |l: &&str| !l.trim().is_empty();
    let above = prefix[..line_start].lines().rev().find(code);
    let below = suffix.lines().skip(1).find(code);
    if above.into_iter().chain(below).any(|l| l.starts_with('\t')) {
        return Vec::new();
    }
    // The indentation step: the first indented line's.
    let unit = prefix
        .lines()
        .chain(suffix.lines())
        .filter(code)
        .map(indent_of)
        .find(|&i| i > 0)
        .unwrap_or(4);
    let mut targets: Vec<usize> = Vec::new();
    if let Some(a) = above {
        let i = indent_of(a);
        if a.trim_end().ends_with([':', '{', '(', '[']) {
            targets.push(i + unit);
        }
        targets.push(i);
        targets.extend(i.checked_sub(unit));
    }
    if let Some(b) = below {
        targets.push(indent_of(b));
    }
    let mut out: Vec<String> = Vec::new();
    for r in readings {
        let lines: Vec<&str> = r.split('\n').collect();
        // The first line of code: the cursor's own (its depth counts from what is typed), or a
        // later one after the answer ended the cursor's line.
        let Some(fc) = lines.iter().position(|l| !l.trim().is_empty()) else {
            continue;
        };
        let now = if fc == 0 {
            typed.len() + indent_of(lines[0])
        } else {
            indent_of(lines[fc])
        };
        for &t in &targets {
            if t == now || (fc == 0 && t < typed.len()) {
                continue;
            }
            let shifted: Option<Vec<String>> = lines
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    if l.trim().is_empty() {
                        Some(l.to_string())
                    } else if k == 0 {
                        Some(format!("{}{}", " ".repeat(t - typed.len()), l.trim_start()))
                    } else if t > now {
                        Some(format!("{}{l}", " ".repeat(t - now)))
                    } else {
                        let cut = now - t;
                        (indent_of(l) >= cut).then(|| l[cut..].to_string())
                    }
                })
                .collect();
            if let Some(v) = shifted.map(|v| v.join("\n"))
                && !readings.contains(&v)
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
    }
    out
}

/// `text` without its first lines where they restate the lines before the cursor: the lines
/// just above it (the model re-wrote the loop it continues), or a run of them further up that is
/// two lines or more, one long line or one that opens a block (the function's header). A lone
/// `return` or `}` from further up is the answer's own.
fn strip_repeated_lines<'a>(before_line: &str, text: &'a str) -> &'a str {
    let before: Vec<&str> = before_line
        .lines()
        .rev()
        .take(30)
        .map(str::trim)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let answer: Vec<&str> = text.lines().map(str::trim).collect();
    let mut best = 0;
    for start in 0..before.len() {
        let run = before[start..]
            .iter()
            .zip(&answer)
            .take_while(|(b, a)| !a.is_empty() && b == a)
            .count();
        if run == 0 {
            continue;
        }
        let at_end = start + run == before.len();
        let long = answer[0].len() >= 12 || answer[0].ends_with([':', '{']);
        if (at_end || run >= 2 || long) && run > best {
            best = run;
        }
    }
    let mut rest = text;
    for _ in 0..best {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest
}

/// `text` without the part of the current line the user already typed, where it repeats it: the
/// whole typed line, or the identifier the cursor is in (`text.spl|` answered `split()`). After
/// indentation alone, the answer's own indentation of its first line goes.
fn strip_typed<'a>(typed: &str, text: &'a str) -> &'a str {
    if typed.trim().is_empty() {
        return if typed.is_empty() {
            text
        } else {
            text.trim_start_matches([' ', '\t'])
        };
    }
    if let Some(rest) = text.strip_prefix(typed) {
        return rest;
    }
    if let Some(rest) = text.trim_start().strip_prefix(typed.trim_start()) {
        return rest;
    }
    let word_start = typed
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(typed.len(), |(i, _)| i);
    let word = &typed[word_start..];
    if word.chars().count() >= 2
        && let Some(rest) = text.trim_start().strip_prefix(word)
        && rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
    {
        return rest;
    }
    text
}

/// `text` up to a later line that opens again a block already opened in the lines before the
/// cursor (`for w in words:` inside that same loop): the model started over.
fn cut_reopened_blocks(before_line: &str, text: &str) -> String {
    let opened: Vec<&str> = before_line
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 3 && (l.ends_with(':') || l.ends_with('{')))
        .collect();
    let lines: Vec<&str> = text.split('\n').collect();
    match lines
        .iter()
        .skip(1)
        .position(|l| opened.contains(&l.trim()))
    {
        Some(i) => lines[..=i].join("\n"),
        None => text.to_string(),
    }
}

/// `text` without a tail that the text after the cursor already holds: its next lines, or the
/// rest of the cursor's line.
fn strip_suffix_tail(suffix: &str, text: &str) -> String {
    let mut text = text.trim_end().to_string();
    let suffix_lines: Vec<&str> = suffix
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(5)
        .collect();
    if let Some(first_after) = suffix_lines.first() {
        let lines: Vec<&str> = text.lines().collect();
        if let Some(pos) = lines
            .iter()
            .position(|l| l.trim() == *first_after && !first_after.is_empty())
        {
            let same = lines[pos..]
                .iter()
                .map(|l| l.trim())
                .zip(suffix_lines.iter())
                .all(|(a, b)| a == *b);
            if same && pos > 0 {
                text = lines[..pos].join("\n");
            }
        }
        let rest_of_line = suffix.lines().next().unwrap_or("");
        if !rest_of_line.trim().is_empty() {
            let first = text.lines().next().unwrap_or("");
            if let Some(cut) = first.strip_suffix(rest_of_line.trim_end())
                && !text.contains('\n')
            {
                text = cut.to_string();
            }
        }
    }
    text.trim_end().to_string()
}

/// Cuts a cleaned completion at the line, block and function boundaries: the first line, and
/// the ends that the parse of the document with the completion found ([`CursorSyntax::unit_ends`]).
pub fn split_levels(text: &str, ends: UnitEnds) -> Vec<(Level, String)> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let lines: Vec<&str> = text.split('\n').collect();
    // Line: the first line; if it is empty (cursor at a line end), the next one too.
    let line_n = if lines[0].trim().is_empty() && lines.len() > 1 {
        2
    } else {
        1
    };
    let mut out = vec![(
        Level::Line,
        lines[..line_n].join("\n").trim_end().to_string(),
    )];
    for (level, end) in [(Level::Block, ends.block), (Level::Function, ends.function)] {
        // (`is_char_boundary` is false past the end too.)
        if let Some(end) = end.filter(|e| text.is_char_boundary(*e)) {
            out.push((level, text[..end].trim_end().to_string()));
        }
    }
    let mut seen: Vec<String> = Vec::new();
    out.retain(|(_, t)| {
        if t.trim().is_empty() || seen.contains(t) {
            false
        } else {
            seen.push(t.clone());
            true
        }
    });
    out
}

/// Keeps the levels that leave the file parsing no worse than without them.
pub fn parsing_levels(
    lang: Language,
    prefix: &str,
    suffix: &str,
    levels: Vec<(Level, String)>,
) -> Vec<(Level, String)> {
    let source = format!("{prefix}{suffix}");
    match CursorSyntax::parse(lang, &source) {
        Some(syntax) => keep_parsing(&syntax, &source, prefix.len(), levels),
        None => Vec::new(),
    }
}

fn keep_parsing(
    syntax: &CursorSyntax,
    source: &str,
    offset: usize,
    levels: Vec<(Level, String)>,
) -> Vec<(Level, String)> {
    levels
        .into_iter()
        .filter(|(_, t)| syntax.errors_with_insert(source, offset, t) <= syntax.errors())
        .collect()
}

/// An accepted completion item, for the feedback store.
pub struct AcceptedItem<'a> {
    pub root: &'a std::path::Path,
    pub rel_path: &'a str,
    pub language: Language,
    pub level: Level,
    pub text: &'a str,
}

/// Records in the feedback store (`<cache>/feedback/attempts.jsonl`) that the user took a
/// completion item: what the model was asked, the item and how its tests went, as an attempt
/// already accepted (target `completion: rest of line`, say). Returns the attempt's id.
pub fn record_accepted_completion(
    cache_dir: &std::path::Path,
    c: &Completions,
    item: AcceptedItem<'_>,
) -> std::io::Result<String> {
    use codeforge_verify::feedback::{Attempt, CandidateRecord, record};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let id = blake3::hash(format!("{now}:{}:{}", item.rel_path, item.text).as_bytes()).to_hex()
        [..16]
        .to_string();
    let verdict = c.verdict(item.level);
    let verified = verdict.is_some_and(|v| v.status == VerificationStatus::Passed);
    let attempt = Attempt {
        id: id.clone(),
        unix_ms: now,
        workspace: item.root.display().to_string(),
        file: item.rel_path.to_string(),
        target: format!("completion: {}", item.level.label()),
        language: item.language.name().to_string(),
        fence: item.language.spec().generation.fence.clone(),
        prompt: c
            .prompt
            .as_ref()
            .map(crate::checking::stored_prompt)
            .unwrap_or_default(),
        context: Vec::new(),
        tests_from: if verdict.is_some() {
            "workspace"
        } else {
            "none"
        }
        .into(),
        selected_tests: Vec::new(),
        candidates: vec![CandidateRecord {
            code: item.text.to_string(),
            passed: usize::from(verified),
            failed: 0,
            compiled: verified,
            verified,
            round: 0,
            shown: true,
        }],
        accepted: Some(true),
    };
    record(cache_dir, &attempt)?;
    Ok(id)
}

/// A related symbol as completion shows it: its doc summary as a comment, then its signature.
fn related_text(lang: Language, h: &Related) -> String {
    let c = &lang.spec().generation.line_comment;
    let mut text = String::new();
    if h.language != lang {
        text.push_str(&format!("{c} ({})\n", h.language));
    }
    if let Some(d) = h
        .doc
        .as_deref()
        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
    {
        text.push_str(&format!("{c} {d}\n"));
    }
    text.push_str(h.signature.trim_end());
    text.push('\n');
    text
}

/// How long a completion waits for repository context. A cached answer takes well under 1 ms; a
/// search that takes longer keeps going and the index caches its answer, so the next completion
/// in the same function has it.
pub const CONTEXT_DEADLINE: Duration = Duration::from_millis(10);

/// Where the cursor is, for a completion.
#[derive(Debug, Clone)]
pub struct CompletionInput<'a> {
    pub language: Language,
    pub rel_path: &'a str,
    pub source: &'a str,
    /// Byte offset of the cursor.
    pub offset: usize,
}

/// Where completion's repository context comes from: the workspace's index and its cache of
/// per-function contexts ([`CompletionContexts`]).
#[derive(Clone)]
pub struct CompletionRepo {
    pub retriever: Arc<dyn Retriever>,
    pub contexts: Arc<CompletionContexts>,
    /// The workspace's name (the repository-level FIM prompt's `<|repo_name|>`).
    pub name: String,
}

impl CompletionRepo {
    /// A repository with a cache of its own (a language server keeps one per workspace).
    pub fn new(retriever: Arc<dyn Retriever>, name: impl Into<String>) -> Self {
        CompletionRepo {
            retriever,
            contexts: CompletionContexts::new(),
            name: name.into(),
        }
    }
}

/// The FIM request at the cursor: Qwen2.5-Coder's repository-level format, ending where the
/// middle ends ([`fim_middle_end`]).
#[allow(clippy::too_many_arguments)]
fn fim_request(
    template: &RequestTemplate,
    repo_name: &str,
    rel_path: &str,
    files: &[FimFile],
    prefix: &str,
    suffix: &str,
    budget: usize,
    count: &(dyn Fn(&str) -> usize + Sync),
) -> codeforge_model::Request {
    let mut req = template.request(
        repo_fim_prompt(repo_name, rel_path, files, prefix, suffix, budget, count),
        1,
    );
    // Models (instruct ones above all) rarely end the middle themselves: they write on into
    // the suffix and beyond. The middle ends where the answer reaches the text after the
    // cursor, leaves the definition the cursor is in, or opens a markdown fence.
    let (pre, suf) = (prefix.to_string(), suffix.to_string());
    req.stop_when = Some(Arc::new(move |text: &str| {
        fim_middle_end(&pre, &suf, text).is_some()
    }));
    req
}

/// The indentation still to type at an empty line of an indented language for code there to
/// parse: one level past a line above that opens a block (`elif gpa > 3.0:`); inside a function
/// (`in_function`), at least the lesser depth of the lines of code above and below (at column 0
/// right after a docstring, small models write `if __name__ == "__main__":`). `None` elsewhere
/// (the depth is the model's to choose: the hole may close blocks), where the cursor's line
/// holds more than spaces, or where what is typed is already that deep.
fn expected_indent(
    lang: Language,
    prefix: &str,
    suffix: &str,
    in_function: bool,
) -> Option<String> {
    if lang.spec().generation.body_style != codeforge_syntax::BodyStyle::Indented {
        return None;
    }
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let typed = &prefix[line_start..];
    if typed.contains(|c: char| c != ' ') {
        return None;
    }
    let indent_of = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let code = |l: &&str| !l.trim().is_empty();
    let above = prefix[..line_start].lines().rev().find(code)?;
    let unit = prefix
        .lines()
        .filter(code)
        .map(indent_of)
        .find(|&i| i > 0)
        .unwrap_or(4);
    let want = if above.trim_end().ends_with(':') {
        indent_of(above) + unit
    } else if in_function {
        let line_end = suffix.find('\n').unwrap_or(suffix.len());
        if suffix[..line_end].contains(|c: char| !c.is_whitespace()) {
            return None;
        }
        let next = suffix[line_end..]
            .lines()
            .find(|l| code(l) && !l.trim_start().starts_with('#'))?;
        indent_of(above).min(indent_of(next))
    } else {
        return None;
    };
    (want > typed.len()).then(|| " ".repeat(want - typed.len()))
}

/// Whether the hole at an empty line of an indented language must hold a block's header: the
/// next line of code is indented past the line of code above, which opens no block (the hole
/// took `if not s:` and left its body). An item there should mend that; one at the body's depth
/// leaves the file as broken as it was. `false` where the cursor's line holds more than spaces,
/// the line above opens a block or continues a bracket, or either is missing.
pub fn needs_header(lang: Language, prefix: &str, suffix: &str) -> bool {
    if lang.spec().generation.body_style != codeforge_syntax::BodyStyle::Indented {
        return false;
    }
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let line_end = suffix.find('\n').unwrap_or(suffix.len());
    if prefix[line_start..].contains(|c: char| c != ' ')
        || suffix[..line_end].contains(|c: char| !c.is_whitespace())
    {
        return false;
    }
    let indent_of = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let code = |l: &&str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    let (Some(above), Some(next)) = (
        prefix[..line_start].lines().rev().find(code),
        suffix[line_end..].lines().find(code),
    ) else {
        return false;
    };
    let above_code = above.trim_end();
    // (The closing line of a docstring or string that spans lines: its depth says nothing. A
    // one-line docstring's does.)
    let closes_string = |q: &str| above_code.ends_with(q) && above_code.matches(q).count() % 2 == 1;
    let opens = above_code.ends_with(':')
        || above_code.ends_with(['(', '[', '{', ',', '\\'])
        || closes_string("\"\"\"")
        || closes_string("'''");
    !opens && indent_of(next) > indent_of(above)
}

/// How many times the model is asked again when its answer gives no item.
const RETRIES: u32 = 2;
/// Tokens a retry may write.
const RETRY_MAX_TOKENS: u32 = 128;
/// The temperature of a retry where the backend cannot take its next-best first token.
const RETRY_TEMPERATURE: f32 = 0.7;

/// Asks the model for the code at the cursor and returns it at each granularity. In a secrets
/// file (by its name) nothing is asked and nothing is offered; elsewhere the model sees the
/// document with its secrets masked, and an item that holds the mask is dropped. With a
/// repository, the prompt carries the structural context of the function at the cursor (what
/// generation gets, [`crate::completion_context`]), if it is ready within [`CONTEXT_DEADLINE`].
pub async fn complete(
    backend: &dyn Backend,
    repo: Option<CompletionRepo>,
    settings: &GenerationSettings,
    input: CompletionInput<'_>,
) -> Result<Completions, GenerateError> {
    complete_streaming(backend, repo, settings, input, None).await
}

/// Called with the line item as soon as the model has finished writing its line, while it
/// writes on (a [`Completions`] that is [`partial`](Completions::partial)).
pub type LineSink = Arc<dyn Fn(Completions) + Send + Sync>;

/// [`complete`], handing the line item to `on_line` as soon as its line ends (FIM prompts),
/// before the model has finished the block and function items.
pub async fn complete_streaming(
    backend: &dyn Backend,
    repo: Option<CompletionRepo>,
    settings: &GenerationSettings,
    input: CompletionInput<'_>,
    on_line: Option<LineSink>,
) -> Result<Completions, GenerateError> {
    let start = Instant::now();
    if is_secret_path(input.rel_path) {
        let reason = "a secrets file (by its name) is never sent to a model".to_string();
        tracing::info!("no completion in {}: {reason}", input.rel_path);
        return Ok(Completions {
            reason: Some(reason),
            ..Completions::default()
        });
    }
    let lang = input.language;
    let offset = input.offset.min(input.source.len());
    // What the model sees: the document with its secrets masked (found whole, even one the
    // cursor is in).
    let (prefix, suffix) = redact_split(input.source, offset);
    let (prefix, suffix) = (prefix.as_str(), suffix.as_str());
    // One parse of the document serves the enclosing function and every parse check below.
    let syntax = CursorSyntax::parse(lang, input.source);
    let function = syntax
        .as_ref()
        .and_then(|s| s.enclosing_function(input.source, offset));
    let count = token_counter(backend);
    // Greedy, short: a completion is one answer the user reads while typing.
    let template = RequestTemplate {
        max_tokens: settings.max_tokens.min(256),
        temperature: 0.0,
        n: 1,
    };
    let budget = settings.completion_prompt_tokens;
    // Repository context for the function the cursor is in: computed once per function (stable
    // while the user types in it) and cached per workspace; a request does not wait for it
    // longer than the deadline.
    let fim = settings.fim.unwrap_or_else(|| backend.fim());
    let mut related: Vec<Related> = Vec::new();
    let mut context_ms = 0;
    let k = settings.context_hits.min(COMPLETION_CONTEXT_K);
    if let (Some(repo), Some(f)) = (&repo, &function)
        && k > 0
    {
        let t = Instant::now();
        if let Some(items) = repo
            .contexts
            .get(
                repo.retriever.clone(),
                lang,
                input.rel_path,
                input.source,
                offset,
                &f.summary,
                CONTEXT_DEADLINE,
            )
            .await
        {
            related = items.iter().take(k).cloned().collect();
        }
        context_ms = t.elapsed().as_millis() as u64;
    } else if let Some(repo) = &repo
        && function.is_none()
        && k > 0
        && !fim
    {
        // Outside any function, a chat prompt gets the hits for the lines above the cursor.
        let t = Instant::now();
        let query = prefix.lines().rev().take(3).collect::<Vec<_>>().join(" ");
        let r = repo.retriever.clone();
        let search = tokio::spawn(async move { r.related(query, k).await });
        if let Ok(Ok(Ok(hits))) = tokio::time::timeout(CONTEXT_DEADLINE, search).await {
            related = hits
                .into_iter()
                .filter(|h| h.path != input.rel_path && !h.is_test)
                .take(k)
                .collect();
        }
        context_ms = t.elapsed().as_millis() as u64;
    }
    let context_hits = related.len();
    // A FIM answer is raw code: no code block to wait for. Related code goes first, as the
    // other files of Qwen2.5-Coder's repository-level format, one section per file.
    let mut files: Vec<FimFile> = Vec::new();
    if fim {
        for h in &related {
            let text = related_text(lang, h);
            match files.iter_mut().find(|f| f.path == h.path) {
                Some(f) => {
                    f.text.push_str(&text);
                }
                None => files.push(FimFile {
                    path: h.path.clone(),
                    text,
                }),
            }
        }
    }
    let repo_name = repo.as_ref().map_or("", |r| r.name.as_str());
    let req = if fim {
        fim_request(
            &template,
            repo_name,
            input.rel_path,
            &files,
            prefix,
            suffix,
            budget,
            &count,
        )
    } else {
        let context: Vec<Snippet> = related
            .iter()
            .map(|h| Snippet {
                kind: SnippetKind::Retrieved,
                label: format!("{}:{} {}", h.path, h.line, h.qualified_name),
                text: related_text(lang, h),
            })
            .collect();
        template.request(
            cursor_prompt(
                lang,
                input.rel_path,
                prefix,
                suffix,
                &context,
                budget,
                &count,
            )
            .prompt,
            1,
        )
    };
    let prepared_ms = start.elapsed().as_millis() as u64;
    // The whole prompt, for `CODEFORGE_LOG=codeforge_ide=debug` (secrets are masked in it).
    tracing::debug!("completion prompt: {}", req.prompt.render_plain());
    let prompt = Some(req.prompt.clone());
    let model_start = Instant::now();
    // The line item goes out as soon as its line ends (FIM answers are raw code; a chat answer's
    // code block is read whole): the text so far, up to its last newline, is cut as a finished
    // answer would be, and its line item, if it has one, is handed to `on_line`.
    let on_line = on_line.filter(|_| fim);
    let streamed = Arc::new(AtomicBool::new(false));
    // An answer that gives no item (it holds no code, only repeats the text around the cursor,
    // or every item of it would break the parse) is not the last word: the model is asked for
    // its next-best answer, up to RETRIES times. The embedded model is steered away from ending
    // at once and from the starts of the answers of no use (`Request::avoid_starts`) and goes
    // on greedily (the prompt's keys and values are cached: this costs the decode only); an
    // HTTP backend is asked at a temperature, seeded.
    let mut attempt: u32 = 0;
    let mut tokens = (0, 0, 0);
    // The starts of the answers of no use so far (their first lines of code).
    let mut avoid: Vec<String> = Vec::new();
    // In an indented language, at an empty line after a block's header, the first retry writes
    // from the depth the body must take (as if the user had typed its indentation): small
    // models keep writing at the wrong one (`elif` right after an `elif …:` header).
    let lead = if fim {
        expected_indent(lang, prefix, suffix, function.is_some()).unwrap_or_default()
    } else {
        String::new()
    };
    // The first answer with items, when a retry is asked for because none of them mends the
    // file ([`needs_header`]): what is offered if no retry does better.
    let mut fallback: Option<(String, Cut)> = None;
    let (raw, cut) = loop {
        let mut req = req.clone();
        // What the model is told was typed at the cursor (its answer comes after it).
        let mut typed = "";
        if attempt > 0 {
            if attempt == 1 && !lead.is_empty() {
                typed = lead.as_str();
                let pre = format!("{prefix}{typed}");
                req = fim_request(
                    &template,
                    repo_name,
                    input.rel_path,
                    &files,
                    &pre,
                    suffix,
                    budget,
                    &count,
                );
            }
            // A retry that runs on (a long literal, a loop of prints) costs the user more time
            // than an answer is worth here.
            req.max_tokens = req.max_tokens.min(RETRY_MAX_TOKENS);
            if backend.steers() && req.temperature <= 0.0 {
                req.avoid_starts = Some(avoid.clone());
            } else {
                req.temperature = RETRY_TEMPERATURE;
                req.seed = Some(attempt as u64);
            }
        }
        let mut lines_rx = None;
        if on_line.is_some() {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            lines_rx = Some(rx);
            let so_far = Mutex::new(String::new());
            let streamed = streamed.clone();
            req.on_text = Some(Arc::new(move |sample: usize, delta: &str| {
                if sample != 0 || streamed.load(Ordering::SeqCst) {
                    return;
                }
                let mut t = so_far.lock().unwrap();
                t.push_str(delta);
                if delta.contains('\n')
                    && let Some(end) = t.rfind('\n')
                {
                    let _ = tx.send(t[..=end].to_string());
                }
            }));
        }
        let generation = backend.generate(req);
        tokio::pin!(generation);
        let g = loop {
            tokio::select! {
                g = &mut generation => break g,
                Some(text) = async {
                    match lines_rx.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => None,
                    }
                } => {
                    let text = format!("{typed}{text}");
                    // An answer that already reached the code after the cursor is about to end.
                    if streamed.load(Ordering::SeqCst) || fim_middle_end(prefix, suffix, &text).is_some() {
                        continue;
                    }
                    let cut = cut_answer(syntax.as_ref(), &input, prefix, suffix, &text, fim);
                    // (A line that leaves the hole's missing header missing waits for the
                    // rest of the answer, and perhaps the next-best.)
                    if cut.unmended || cut.line_leaves_error {
                        continue;
                    }
                    if let (Some(sink), Some(line)) = (
                        on_line.as_ref(),
                        cut.items.into_iter().find(|(l, _)| *l == Level::Line),
                    ) {
                        streamed.store(true, Ordering::SeqCst);
                        tracing::info!(
                            "completion: line item after {} ms (model {} ms), the model writes on",
                            start.elapsed().as_millis(),
                            model_start.elapsed().as_millis()
                        );
                        sink(Completions {
                            items: vec![line],
                            raw: text,
                            prompt: prompt.clone(),
                            elapsed_ms: start.elapsed().as_millis() as u64,
                            overhead_ms: prepared_ms,
                            context_ms,
                            context_hits,
                            model_ms: model_start.elapsed().as_millis() as u64,
                            pending: true,
                            partial: true,
                            ..Completions::default()
                        });
                    }
                }
            }
        };
        // The model ending at once (an empty answer) is an answer without code.
        let raw = match g {
            Ok(g) => {
                tokens.0 += g.usage.prompt_tokens;
                tokens.1 += g.usage.cached_prompt_tokens;
                tokens.2 += g.usage.completion_tokens;
                g.samples
                    .first()
                    .map(|s| s.text.clone())
                    .unwrap_or_default()
            }
            Err(codeforge_model::ModelError::Empty) => String::new(),
            Err(e) => return Err(e.into()),
        };
        let raw = if raw.trim().is_empty() {
            raw
        } else {
            format!("{typed}{raw}")
        };
        tracing::debug!("completion answer (attempt {attempt}): {raw:?}");
        let cut = cut_answer(syntax.as_ref(), &input, prefix, suffix, &raw, fim);
        let of_use = !cut.items.is_empty() && !cut.unmended;
        let retry =
            !of_use && syntax.is_some() && !streamed.load(Ordering::SeqCst) && attempt < RETRIES;
        if !retry {
            match fallback.take() {
                // (Not after a line of this answer was streamed: the user has it.)
                Some(first) if !of_use && !streamed.load(Ordering::SeqCst) => {
                    tracing::info!(
                        "completion at byte {offset} of {}: no answer mends the missing header; offering the first",
                        input.rel_path
                    );
                    break first;
                }
                _ => break (raw, cut),
            }
        }
        let why = if cut.unmended {
            "no item gives the indented line after the cursor its block's header".to_string()
        } else {
            cut.reason.clone().unwrap_or_else(|| "none".into())
        };
        // (A chat answer's code is in its code block: the fence is not what to avoid.)
        let code = if fim {
            raw.clone()
        } else {
            split_answer(lang, &raw).1
        };
        if let Some(first) = code.lines().map(str::trim).find(|l| !l.is_empty())
            && !avoid.iter().any(|a| a == first)
        {
            avoid.push(first.to_string());
        }
        if cut.unmended && fallback.is_none() {
            fallback = Some((raw.clone(), cut));
        }
        attempt += 1;
        tracing::info!(
            "completion at byte {offset} of {}: no item from the model's answer of use ({why}); asking for its next-best answer ({attempt} of {RETRIES})",
            input.rel_path
        );
    };
    let model_ms = model_start.elapsed().as_millis() as u64;
    let post = Instant::now();
    let Cut {
        items,
        reason,
        middle_end,
        mends,
        ..
    } = cut;
    if let Some(r) = &reason {
        tracing::info!("no completion at byte {offset} of {}: {r}", input.rel_path);
    }
    // An item that mends the file at the cursor where the line does not goes first; else a
    // FIM answer that finished the hole is the model's whole middle: its largest item.
    let preferred = match (mends, items.last()) {
        (Some(level), _) if level != Level::Line => Some(level),
        (_, Some((level, _))) if middle_end.is_some() && items.len() > 1 => Some(*level),
        _ => None,
    };
    tracing::info!(
        "completion: {} ms in all: prepare {prepared_ms} ms (repository context: {context_hits} symbols, {context_ms} ms), model {model_ms} ms ({} prompt tokens of which {} cached, {} generated, {} answers), after {} ms; {} items",
        start.elapsed().as_millis(),
        tokens.0,
        tokens.1,
        tokens.2,
        attempt + 1,
        post.elapsed().as_millis(),
        items.len()
    );
    Ok(Completions {
        items,
        raw,
        prompt,
        elapsed_ms: start.elapsed().as_millis() as u64,
        overhead_ms: prepared_ms + post.elapsed().as_millis() as u64,
        context_ms,
        context_hits,
        model_ms,
        verdicts: Vec::new(),
        pending: false,
        partial: false,
        preferred,
        reason,
    })
}

/// A model answer cut into items, or the reason there are none.
struct Cut {
    items: Vec<(Level, String)>,
    reason: Option<String>,
    /// The hole must hold a block's header ([`needs_header`]) and no item mends the file there.
    unmended: bool,
    /// Where the file is broken at the cursor ([`CursorSyntax::errors_near`]): the smallest
    /// item that leaves the fewest errors there, if that is fewer than before.
    mends: Option<Level>,
    /// The line item leaves the file broken at the cursor as it was (it is not streamed: the
    /// rest of the answer may mend it).
    line_leaves_error: bool,
    /// Where a FIM answer reached the code after the cursor.
    middle_end: Option<usize>,
}

/// Cuts a model answer (`raw`; a finished one, or the finished lines of one still being
/// written) into the items at the cursor: the reading that fits the file best, at its units,
/// without items that break the parse or hold a masked secret.
fn cut_answer(
    syntax: Option<&CursorSyntax>,
    input: &CompletionInput<'_>,
    prefix: &str,
    suffix: &str,
    raw: &str,
    fim: bool,
) -> Cut {
    let lang = input.language;
    let offset = input.offset.min(input.source.len());
    let middle_end = if fim {
        fim_middle_end(prefix, suffix, raw)
    } else {
        None
    };
    let code = if fim {
        raw[..middle_end.unwrap_or(raw.len())].to_string()
    } else {
        split_answer(lang, raw).1
    };
    let mut readings = readings(prefix, suffix, &code);
    let shifted = reindented(prefix, suffix, &readings);
    readings.extend(shifted);
    let mut reason = None;
    let mut items = match syntax {
        Some(s) => {
            // The reading whose first line fits the file best (fewest parse errors with it; the
            // most stripped of equals), cut at its units.
            let mut best: Option<(usize, Vec<(Level, String)>)> = None;
            let mut all: Vec<Vec<(Level, String)>> = Vec::new();
            for r in &readings {
                let levels = split_levels(r, s.unit_ends(input.source, offset, r));
                let Some((_, line)) = levels.first() else {
                    continue;
                };
                let errors = s.errors_with_insert(input.source, offset, line);
                if best.as_ref().is_none_or(|(e, _)| errors < *e) {
                    best = Some((errors, levels.clone()));
                }
                all.push(levels);
            }
            match best {
                None => {
                    reason = Some(if code.trim().is_empty() {
                        "the model's answer holds no code".to_string()
                    } else {
                        "the model's answer only repeats the text around the cursor".to_string()
                    });
                    Vec::new()
                }
                Some((_, levels)) => {
                    let mut kept = keep_parsing(s, input.source, offset, levels);
                    // No item of that reading parses (a line that opens a block is the first
                    // item, and its body is at the wrong depth): the first reading, in order,
                    // with an item that does.
                    if kept.is_empty() {
                        kept = all
                            .into_iter()
                            .map(|levels| keep_parsing(s, input.source, offset, levels))
                            .find(|k| !k.is_empty())
                            .unwrap_or_default();
                    }
                    // Still none (an answer cut off by the token limit in the middle of a
                    // statement): the longest beginning of a reading, in whole lines, that
                    // parses, as its block.
                    if kept.is_empty() {
                        kept = readings
                            .iter()
                            .take(8)
                            .find_map(|r| {
                                let lines: Vec<&str> = r.split('\n').collect();
                                (1..lines.len()).rev().take(24).find_map(|n| {
                                    let t = lines[..n].join("\n");
                                    (!t.trim().is_empty()
                                        && s.errors_with_insert(input.source, offset, &t)
                                            <= s.errors())
                                    .then_some(t)
                                })
                            })
                            .map(|t| vec![(Level::Block, t)])
                            .unwrap_or_default();
                    }
                    if kept.is_empty() {
                        reason = Some("every item would add syntax errors to the file".to_string());
                    }
                    kept
                }
            }
        }
        None => {
            reason = Some("the file could not be parsed".to_string());
            Vec::new()
        }
    };
    // The model echoed a mask: that text is not code to insert.
    let n = items.len();
    items.retain(|(_, t)| !t.contains(REDACTED));
    if n > 0 && items.is_empty() {
        reason = Some("every item holds a masked secret".to_string());
    }
    // Where the file is broken right at the cursor (the line above, the cursor's, the next),
    // an item should mend it: the one that does goes first, and a line that leaves it broken
    // waits for the rest of the answer.
    let near = match syntax {
        Some(s) if !items.is_empty() => s.errors_near(input.source, offset),
        _ => 0,
    };
    let (mut unmended, mut mends, mut line_leaves_error) = (false, None, false);
    if let Some(s) = syntax.filter(|_| near > 0) {
        let after: Vec<usize> = items
            .iter()
            .map(|(_, t)| s.errors_near_with_insert(input.source, offset, t))
            .collect();
        let best = (0..items.len())
            .min_by_key(|&i| (after[i], items[i].0.rank()))
            .expect("items");
        let mended = after[best] < near;
        mends = mended.then_some(items[best].0);
        unmended = !mended && needs_header(lang, prefix, suffix);
        line_leaves_error = items
            .iter()
            .zip(&after)
            .any(|((l, _), e)| *l == Level::Line && *e >= near);
    }
    Cut {
        items,
        reason,
        unmended,
        mends,
        line_leaves_error,
        middle_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_along_an_answer_keeps_the_items_that_start_with_what_was_typed() {
        let c = Completions {
            items: vec![
                (Level::Line, "return n".into()),
                (Level::Block, "return n\nprint(n)".into()),
            ],
            verdicts: vec![(
                Level::Block,
                ItemVerdict {
                    status: VerificationStatus::Passed,
                    label: "✓".into(),
                },
            )],
            ..Completions::default()
        };
        let along = c.typed_along("ret").unwrap();
        assert_eq!(
            along.items,
            [
                (Level::Line, "urn n".to_string()),
                (Level::Block, "urn n\nprint(n)".to_string())
            ]
        );
        assert_eq!(
            along.verdicts, c.verdicts,
            "the file is the same with either"
        );
        let whole_line = c.typed_along("return n").unwrap();
        assert_eq!(
            whole_line.items,
            [(Level::Block, "\nprint(n)".to_string())],
            "a line typed in full leaves nothing of it to offer"
        );
        assert!(c.typed_along("x").is_none(), "the user went elsewhere");
    }

    #[test]
    fn items_rank_passed_first_then_a_finished_middle_then_the_smallest() {
        let mut c = Completions {
            items: vec![
                (Level::Line, "a".into()),
                (Level::Block, "a\nb".into()),
                (Level::Function, "a\nb\nc".into()),
            ],
            ..Completions::default()
        };
        assert_eq!(c.ranked(), [Level::Line, Level::Block, Level::Function]);
        c.preferred = Some(Level::Function);
        assert_eq!(c.ranked(), [Level::Function, Level::Line, Level::Block]);
        let verdict = |status| ItemVerdict {
            status,
            label: String::new(),
        };
        c.verdicts = vec![
            (Level::Block, verdict(VerificationStatus::Passed)),
            (Level::Function, verdict(VerificationStatus::Failed)),
        ];
        assert_eq!(c.ranked(), [Level::Block, Level::Function, Level::Line]);
    }

    #[test]
    fn repeated_text_is_removed() {
        let prefix = "def f(xs):\n    total = 0\n    for x in xs:\n        tot";
        let suffix = "\n    return total\n";
        let answer = "    for x in xs:\n        total += x\n    return total";
        assert_eq!(clean_completion(prefix, suffix, answer), "al += x");
        assert_eq!(clean_completion("x = ", "", "x = compute()"), "compute()");
        assert_eq!(clean_completion("    ", "", "    return 1"), "return 1");
        assert_eq!(clean_completion("print(", ")\n", "a, b)"), "a, b");
        // Mid-identifier: the answer repeats the line, or only the word being typed.
        let prefix = "def f(text):\n    words = text.spl";
        assert_eq!(clean_completion(prefix, "\n", "split()"), "it()");
        assert_eq!(
            clean_completion(prefix, "\n", "words = text.split()"),
            "it()"
        );
        assert_eq!(clean_completion(prefix, "\n", "it()"), "it()");
        // After a keyword.
        let prefix = "def f(text):\n    best = ''\n    for w in ";
        assert_eq!(
            clean_completion(prefix, "\n", "for w in text.split():\n        best = w"),
            "text.split():\n        best = w"
        );
        // Inside the loop the user wrote, an answer that starts the loop over ends there.
        let prefix = "def f(text):\n    best = ''\n    for w in text.split():\n        ";
        let answer = "best = w\n    for w in text.split():\n        best = w\n    return best";
        assert_eq!(clean_completion(prefix, "\n", answer), "best = w");
        // Lines repeated from further up are kept unless they are a run or a long line.
        let prefix = "def f(x):\n    if x:\n        return\n    y = 1\n    ";
        assert_eq!(clean_completion(prefix, "\n", "return y"), "return y");
        assert_eq!(
            clean_completion(prefix, "\n", "def f(x):\n    return x"),
            "return x"
        );
    }

    #[test]
    fn a_fim_middle_ends_where_the_answer_reaches_the_suffix_or_leaves_the_definition() {
        // The cursor on an empty line inside a function; the model writes the missing line,
        // then the lines that follow it in the file.
        let prefix = "def f(x):\n    total = 0\n";
        let suffix = "\n        total += i\n    return total\n";
        let text = "    for i in x:\n        total += i\n    return total\n";
        assert_eq!(fim_middle_end(prefix, suffix, text), Some(16));
        assert_eq!(
            fim_middle_end(prefix, suffix, "    for i in x:\n        tot"),
            None
        );
        // Out of the function and into a test of its own.
        let text = "    return total\n\n# Test\nprint(f([1]))\n";
        assert_eq!(fim_middle_end(prefix, "\n", text), Some(18));
        // Into markdown.
        let text = "    return total\n```\n";
        assert_eq!(fim_middle_end(prefix, "\n", text), Some(17));
        // Mid-line, the first line continues the cursor's line, whatever it holds.
        let prefix = "def f(x):\n    return ";
        assert_eq!(fim_middle_end(prefix, "\n", "x\n"), None);
    }

    #[test]
    fn every_reading_of_an_answer_is_offered_to_the_parse() {
        // `"` typed, answer `""Doc."""`: stripping the quote is one reading, the exact
        // continuation another; the parse picks (in `complete`).
        let r = readings("def f():\n    \"\"", "\n", "\"Doc.\"\"\"");
        assert!(r.contains(&"\"Doc.\"\"\"".to_string()), "{r:?}");
    }

    /// The levels of `answer` completed at `|` in `doc`.
    fn levels(lang: Language, doc: &str, answer: &str) -> Vec<(Level, String)> {
        let offset = doc.find('|').unwrap();
        let source = doc.replacen('|', "", 1);
        let s = CursorSyntax::parse(lang, &source).unwrap();
        split_levels(answer, s.unit_ends(&source, offset, answer))
    }

    #[test]
    fn levels_cut_at_line_block_and_function_by_the_parse() {
        // Cursor at the end of `if x:`: the block is the `if`'s body, the function ends where
        // the model's answer leaves it (`def g` is not part of it).
        let doc = "def f(x):\n    if x:|\n";
        let answer = "\n        y = 1\n        z = 2\n    w = 3\n    return w\ndef g():\n    pass";
        assert_eq!(
            levels(Language::Python, doc, answer),
            [
                (Level::Line, "\n        y = 1".to_string()),
                (Level::Block, "\n        y = 1\n        z = 2".to_string()),
                (
                    Level::Function,
                    "\n        y = 1\n        z = 2\n    w = 3\n    return w".to_string()
                ),
            ]
        );
        // Rust: the answer closes the inner block itself; the brace the document already has is
        // left out of every level, and the function level stops before the function's own `}`.
        let doc = "fn f(a: i32) -> i32 {\n    let b = {\n        |\n    };\n    b\n}\n";
        let answer = "a + 1;\n        let c = 2;\n        c\n    };\n    b + c\n}\nfn g() {}";
        let got = levels(Language::Rust, doc, answer);
        assert_eq!(got[0], (Level::Line, "a + 1;".to_string()));
        assert_eq!(
            got[1],
            (
                Level::Block,
                "a + 1;\n        let c = 2;\n        c".to_string()
            )
        );
        assert_eq!(
            got[2],
            (
                Level::Function,
                "a + 1;\n        let c = 2;\n        c\n    };\n    b + c".to_string()
            )
        );
        // Java: a statement in a method body, which is both the block and the function (one
        // item, labelled as the smaller unit); nothing beyond the method.
        let doc = "class A {\n    int f(int x) {\n        int y = |\n    }\n}\n";
        let answer = "x * 2;\n        return y;\n    }\n    int g() { return 1; }";
        assert_eq!(
            levels(Language::Java, doc, answer),
            [
                (Level::Line, "x * 2;".to_string()),
                (Level::Block, "x * 2;\n        return y;".to_string()),
            ]
        );
    }

    #[test]
    fn levels_that_break_the_parse_are_dropped() {
        let prefix = "def f():\n    return ";
        let levels = vec![
            (Level::Line, "1 +".to_string()),
            (Level::Block, "1".to_string()),
        ];
        assert_eq!(
            parsing_levels(Language::Python, prefix, "\n", levels),
            [(Level::Block, "1".to_string())]
        );
    }

    #[test]
    fn a_hole_needs_a_header_where_the_next_line_is_deeper_than_a_line_that_opens_nothing() {
        let at = |doc: &str| {
            let i = doc.find('|').unwrap();
            needs_header(Language::Python, &doc[..i], &doc[i + 1..])
        };
        assert!(at("def f(s):\n    n = 0\n    |\n        return 0\n"));
        assert!(at("def f(s):\n    n = 0\n|\n\n        return 0\n"));
        assert!(
            !at("def f(s):\n    if s:\n    |\n        return 0\n"),
            "opened above"
        );
        assert!(
            !at("def f(s):\n    n = 0\n    |\n    return 0\n"),
            "same depth"
        );
        assert!(
            !at("def f(s):\n    n = g(\n    |\n        1)\n"),
            "a bracket"
        );
        assert!(
            !at("def f(s):\n    n = 0\n    n|\n        return 0\n"),
            "typed"
        );
        assert!(!at(
            "def f(s):\n    \"\"\"Doc.\n    \"\"\"\n|\n        return 0\n"
        ));
        assert!(
            at("def f(s):\n    \"\"\"Doc.\"\"\"\n|\n        return 0\n"),
            "a one-line docstring's depth counts"
        );
        assert!(
            !needs_header(
                Language::Rust,
                "fn f() {\n    let n = 0;\n    ",
                "\n        n\n}\n"
            ),
            "braces"
        );
    }

    #[test]
    fn readings_move_to_the_depths_an_empty_line_can_take() {
        let prefix = "def f(xs):\n    for x in xs:\n";
        let suffix = "\n    return 0\n";
        let r = reindented(prefix, suffix, &["  y = x\n  if y:\n      print(y)".into()]);
        // One level into the loop, the loop's own depth, one level out, the next line's (the
        // same as the loop's: once).
        assert_eq!(
            r,
            vec![
                "        y = x\n        if y:\n            print(y)".to_string(),
                "    y = x\n    if y:\n        print(y)".to_string(),
                "y = x\nif y:\n    print(y)".to_string(),
            ]
        );
        // After spaces typed, only as deep as those or deeper, the first line without its own.
        let r = reindented(&format!("{prefix}    "), suffix, &["y = x".into()]);
        assert_eq!(r, vec!["    y = x".to_string()]);
        // A line that cannot move left as far as the first rules the move out; after code typed
        // on the line, nothing moves.
        let r = reindented(prefix, suffix, &["        y = x\n  z".into()]);
        assert!(r.is_empty(), "{r:?}");
        assert!(reindented(&format!("{prefix}    y"), suffix, &["y = x".into()]).is_empty());
        // An answer that first ends the cursor's line moves from its first line of code.
        let r = reindented(prefix, suffix, &["\n    y = x\n    z = y".into()]);
        assert_eq!(r[0], "\n        y = x\n        z = y");
    }
}
