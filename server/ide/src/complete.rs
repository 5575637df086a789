//! Hierarchical completion: one model answer at the cursor, offered at three granularities — the
//! rest of the line, the rest of the current block, the rest of the function — each cut at its
//! unit boundary, cleaned of text that repeats what is before or after the cursor, and kept only
//! if the file parses no worse with it. Pure except [`complete`], which calls the model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codeforge_config::GenerationSettings;
use codeforge_model::{Backend, Request, has_closed_code_block};
use codeforge_prompt::{Snippet, SnippetKind, cursor_prompt, fim_prompt, split_answer};
use codeforge_syntax::{CursorSyntax, Language};

use crate::context::Retriever;
use crate::generate::GenerateError;
use crate::verify::{VerifyContext, VerifyStatus, verify_insertion};

/// The granularity of a completion item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Line,
    Block,
    Function,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Line => "rest of line",
            Level::Block => "rest of block",
            Level::Function => "rest of function",
        }
    }
}

/// Text to insert at the cursor, per level (distinct texts only, smallest first).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Completions {
    pub items: Vec<(Level, String)>,
    /// Model answer before cutting (for `--explain`-style debugging).
    pub raw: String,
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
    /// Multi-line items held back while their tests run.
    pub pending: bool,
}

/// What the tests said about one completion item.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ItemVerdict {
    pub status: VerifyStatus,
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
    for (level, text) in std::mem::take(&mut c.items) {
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
            VerifyStatus::Unverified => format!(
                "⚠ unverified: {}",
                v.reason.as_deref().unwrap_or("no tests run")
            ),
            _ => v.label.clone(),
        };
        let failed = v.status == VerifyStatus::Failed;
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
    c.items = kept;
    c.pending = false;
    c
}

fn indent_width(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// Removes what the model repeated: lines already before the cursor, the typed part of the
/// current line, and a tail that duplicates the text after the cursor.
pub fn clean_completion(prefix: &str, suffix: &str, answer: &str) -> String {
    let mut text = answer.trim_end().to_string();
    let line_start = prefix.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let typed = &prefix[line_start..];
    // Repeated earlier lines (the model re-wrote the function header, say).
    let before: Vec<&str> = prefix[..line_start]
        .lines()
        .rev()
        .take(30)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    loop {
        let first = text.lines().next().unwrap_or("").trim().to_string();
        if first.is_empty() || !before.contains(&first.as_str()) || first == typed.trim() {
            break;
        }
        text = text
            .split_once('\n')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
    }
    // The typed part of the current line.
    if !typed.trim().is_empty() {
        if let Some(rest) = text.strip_prefix(typed) {
            text = rest.to_string();
        } else if let Some(rest) = text.trim_start().strip_prefix(typed.trim_start()) {
            text = rest.to_string();
        }
    } else if !typed.is_empty() {
        // Cursor after indentation: the model's own indentation of the first line goes.
        text = text.trim_start_matches([' ', '\t']).to_string();
    }
    // A tail that the suffix already holds.
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

/// Cuts a cleaned completion at the line, block and function boundaries. `cursor_line_indent`:
/// indentation of the line holding the cursor; `function_indent`: that of the enclosing
/// function's definition line, if any.
pub fn split_levels(
    text: &str,
    cursor_line_indent: usize,
    function_indent: Option<usize>,
) -> Vec<(Level, String)> {
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.is_empty() || text.trim().is_empty() {
        return Vec::new();
    }
    // Line: the first line; if it is empty (cursor at a line end), the next one too.
    let line_n = if lines[0].trim().is_empty() && lines.len() > 1 {
        2
    } else {
        1
    };
    let take = |n: usize| {
        lines[..n.min(lines.len())]
            .join("\n")
            .trim_end()
            .to_string()
    };
    let mut out = vec![(Level::Line, take(line_n))];
    // Block: later lines at the cursor line's depth or deeper.
    let mut block_n = line_n;
    while block_n < lines.len() {
        let l = lines[block_n];
        if !l.trim().is_empty() && indent_width(l) < cursor_line_indent {
            break;
        }
        block_n += 1;
    }
    out.push((Level::Block, take(block_n)));
    // Function: everything deeper than the function's definition line.
    let mut fn_n = block_n;
    if let Some(fi) = function_indent {
        while fn_n < lines.len() {
            let l = lines[fn_n];
            if !l.trim().is_empty() && indent_width(l) <= fi {
                break;
            }
            fn_n += 1;
        }
        out.push((Level::Function, take(fn_n)));
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

/// Asks the model for the code at the cursor and returns it at each granularity.
pub async fn complete(
    backend: &dyn Backend,
    retriever: Option<Arc<dyn Retriever>>,
    settings: &GenerationSettings,
    input: CompletionInput<'_>,
) -> Result<Completions, GenerateError> {
    let start = Instant::now();
    let lang = input.language;
    let offset = input.offset.min(input.source.len());
    let (prefix, suffix) = input.source.split_at(offset);
    let line_start = prefix.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let cursor_line = &input.source[line_start
        ..input.source[line_start..]
            .find('\n')
            .map_or(input.source.len(), |i| line_start + i)];
    let cursor_line_indent = if cursor_line.trim().is_empty() {
        offset - line_start
    } else {
        indent_width(cursor_line)
    };
    // One parse of the document serves the enclosing function and every parse check below.
    let syntax = CursorSyntax::parse(lang, input.source);
    let function = syntax
        .as_ref()
        .and_then(|s| s.enclosing_function(input.source, offset));
    let count = |t: &str| {
        backend
            .count_tokens(t)
            .unwrap_or_else(|| t.len().div_ceil(3))
    };
    let budget = settings.prompt_tokens;
    let (mut context_ms, mut context_hits) = (0, 0);
    let mut req = if backend.fim() {
        Request::new(fim_prompt(prefix, suffix, budget, &count))
    } else {
        // Repository hits for what the enclosing function is about (stable while the user types
        // in it, so the index's cache answers the later requests), else the lines above.
        let mut context = Vec::new();
        if let Some(r) = retriever {
            let t = Instant::now();
            let query = match &function {
                Some(f) => f.summary.clone(),
                None => prefix.lines().rev().take(3).collect::<Vec<_>>().join(" "),
            };
            let search = tokio::spawn(async move { r.related(query, 4).await });
            if let Ok(Ok(Ok(hits))) = tokio::time::timeout(CONTEXT_DEADLINE, search).await {
                for h in hits
                    .into_iter()
                    .filter(|h| h.path != input.rel_path && !h.is_test)
                {
                    context.push(Snippet {
                        kind: SnippetKind::Retrieved,
                        label: format!("{}:{} {}", h.path, h.line, h.qualified_name),
                        text: h.signature,
                    });
                }
            }
            context_ms = t.elapsed().as_millis() as u64;
            context_hits = context.len();
        }
        let mut req = Request::new(
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
        );
        req.stop_when = Some(std::sync::Arc::new(has_closed_code_block));
        req
    };
    req.max_tokens = settings.max_tokens.min(256);
    req.temperature = 0.0;
    let prepared_ms = start.elapsed().as_millis() as u64;
    let model_start = Instant::now();
    let g = backend.generate(req).await?;
    let model_ms = model_start.elapsed().as_millis() as u64;
    let post = Instant::now();
    let raw = g
        .samples
        .first()
        .map(|s| s.text.clone())
        .unwrap_or_default();
    let code = if backend.fim() {
        raw.clone()
    } else {
        split_answer(lang, &raw).1
    };
    let cleaned = clean_completion(prefix, suffix, &code);
    let levels = split_levels(&cleaned, cursor_line_indent, function.map(|f| f.indent));
    let items = match &syntax {
        Some(s) => keep_parsing(s, input.source, offset, levels),
        None => Vec::new(),
    };
    Ok(Completions {
        items,
        raw,
        elapsed_ms: start.elapsed().as_millis() as u64,
        overhead_ms: prepared_ms + post.elapsed().as_millis() as u64,
        context_ms,
        context_hits,
        model_ms,
        verdicts: Vec::new(),
        pending: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_text_is_removed() {
        let prefix = "def f(xs):\n    total = 0\n    for x in xs:\n        tot";
        let suffix = "\n    return total\n";
        let answer = "    for x in xs:\n        total += x\n    return total";
        assert_eq!(clean_completion(prefix, suffix, answer), "al += x");
        assert_eq!(clean_completion("x = ", "", "x = compute()"), "compute()");
        assert_eq!(clean_completion("    ", "", "    return 1"), "return 1");
        assert_eq!(clean_completion("print(", ")\n", "a, b)"), "a, b");
    }

    #[test]
    fn levels_cut_at_line_block_and_function() {
        // Cursor at the end of `if x:` (indent 4) in a function defined at indent 0.
        let text = "\n        y = 1\n        z = 2\n    w = 3\n    return w\ndef g():\n    pass";
        let levels = split_levels(text, 4, Some(0));
        assert_eq!(
            levels,
            [
                (Level::Line, "\n        y = 1".to_string()),
                (
                    Level::Block,
                    "\n        y = 1\n        z = 2\n    w = 3\n    return w".to_string()
                ),
            ],
            "the block at depth 4 runs to the end of the function: the function level adds nothing"
        );
        let text = "a + 1;\n        let b = 2;\n    }\n    b";
        let levels = split_levels(text, 8, Some(0));
        let names: Vec<Level> = levels.iter().map(|l| l.0).collect();
        assert_eq!(names, [Level::Line, Level::Block, Level::Function]);
        assert_eq!(levels[1].1, "a + 1;\n        let b = 2;");
        assert_eq!(levels[2].1, text);
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
}
