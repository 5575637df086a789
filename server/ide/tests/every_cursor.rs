//! Completion at every cursor of real files in the three languages, with a model that always
//! knows the answer: at each position, the rest of the line (or the rest of the word) is cut from
//! the document and the scripted model answers with exactly that text, continued by the lines
//! that follow, as models do. The post-processing must hand the cut text back as the line item,
//! and nothing else decides against it: no cursor here is one where offering nothing is right.

use codeforge_config::{GenerationSettings, Settings};
use codeforge_ide::{CompletionInput, Level, complete};
use codeforge_model::{Scripted, ScriptedReply};
use codeforge_syntax::Language;
use codeforge_testkit::fixtures;

const FILES: [(&str, Language); 3] = [
    ("symbols/python/src/shop/cart.py", Language::Python),
    ("symbols/rust/src/lib.rs", Language::Rust),
    (
        "symbols/java/src/main/java/com/acme/Util.java",
        Language::Java,
    ),
];

fn settings() -> GenerationSettings {
    Settings::default().generation
}

/// Where the cut ends: the end of the line, or the end of the identifier the cursor is in.
#[derive(Debug, Clone, Copy)]
enum Cut {
    RestOfLine,
    RestOfWord,
}

fn cut_end(source: &str, at: usize, cut: Cut) -> usize {
    let rest = &source[at..];
    match cut {
        Cut::RestOfLine => at + rest.find('\n').unwrap_or(rest.len()),
        Cut::RestOfWord => {
            at + rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        }
    }
}

/// What went wrong at one cursor, or `None`.
async fn check_cursor(
    lang: Language,
    fence: &str,
    source: &str,
    at: usize,
    cut: Cut,
) -> Option<String> {
    let end = cut_end(source, at, cut);
    let removed = &source[at..end];
    if removed.trim().is_empty() {
        return None;
    }
    // Only cursors that follow code on their line or start a line's code: the middle of the
    // leading indentation is not a place anyone types.
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    let typed = &source[line_start..at];
    if typed.trim().is_empty() && removed.starts_with(char::is_whitespace) {
        return None;
    }
    let doc = format!("{}{}", &source[..at], &source[end..]);
    // The model: the cut text, then (for a rest-of-line cut) the next two lines it would go on with.
    let following: String = source[end..]
        .split_inclusive('\n')
        .skip(1)
        .take(2)
        .collect();
    let answer = match cut {
        Cut::RestOfLine => format!("{removed}\n{following}"),
        Cut::RestOfWord => removed.to_string(),
    };
    // A line that closes a code block (a doc comment's " ```" cut after `///`) cannot be said
    // inside the chat answer's own block.
    if answer.lines().any(codeforge_model::is_closing_fence) {
        return None;
    }
    let model = Scripted::new([ScriptedReply::Text(format!("```{fence}\n{answer}\n```"))]);
    let input = CompletionInput {
        language: lang,
        rel_path: "src/file",
        source: &doc,
        offset: at,
    };
    let c = complete(&model, None, &settings(), input).await.ok()?;
    let line = c
        .items
        .iter()
        .find(|(l, _)| *l == Level::Line)
        .map(|(_, t)| t.as_str());
    if line == Some(removed.trim_end()) {
        return None;
    }
    let line_no = source[..at].matches('\n').count() + 1;
    Some(format!(
        "{cut:?} at line {line_no} after {typed:?}: expected {removed:?}, got {:?} (reason: {:?})",
        c.items, c.reason
    ))
}

#[tokio::test]
async fn every_cursor_gets_the_right_item() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, lang) in FILES {
        let source = std::fs::read_to_string(fixtures(file)).unwrap();
        let fence = lang.spec().generation.fence.clone();
        for at in (0..=source.len()).filter(|i| source.is_char_boundary(*i)) {
            for cut in [Cut::RestOfLine, Cut::RestOfWord] {
                checked += 1;
                if let Some(f) = check_cursor(lang, &fence, &source, at, cut).await {
                    failures.push(format!("{file}: {f}"));
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} cursors did not get the right line item:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The cases the walk cannot make: a model that restates what was typed. One letter typed is
/// read both ways and the parse decides (`r` + `return x` is `eturn x`; `_` + `_init__` stays).
#[tokio::test]
async fn a_restated_start_is_taken_off_when_the_parse_says_so() {
    for (doc, answer, want) in [
        ("def f(x):\n    r|\n", "return x", "eturn x"),
        ("def f(x):\n    ret|\n", "return x", "urn x"),
        ("def f(x):\n    words = x.spl|\n", "split()", "it()"),
        (
            "def f(x):\n    words = x.spl|\n",
            "words = x.split()",
            "it()",
        ),
        (
            "class A:\n    def _|\n",
            "_init__(self):\n        pass",
            "_init__(self):",
        ),
    ] {
        let offset = doc.find('|').unwrap();
        let source = doc.replacen('|', "", 1);
        let model = Scripted::new([ScriptedReply::Text(format!("```python\n{answer}\n```"))]);
        let input = CompletionInput {
            language: Language::Python,
            rel_path: "a.py",
            source: &source,
            offset,
        };
        let c = complete(&model, None, &settings(), input).await.unwrap();
        assert_eq!(
            c.items.first().map(|(_, t)| t.as_str()),
            Some(want),
            "{doc:?} answered {answer:?}: {c:?}"
        );
    }
}
