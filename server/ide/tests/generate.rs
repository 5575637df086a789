//! The generation pipeline with a scripted model: prompt snapshots per language (every file under
//! `tests/fixtures/prompts/<lang>/`, its first stub, `.expected` beside it; `UPDATE_EXPECT=1` to
//! accept), post-processing of good and bad answers, and retrieval from the real index.

use std::sync::Arc;

use codeforge_config::{GenerationSettings, PlanSetting, Settings};
use codeforge_ide::{
    CompletionInput, CompletionRepo, GenerateError, GenerateInput, GenerateStatus, Level, Related,
    Retriever, complete, generate_function, generate_targets,
};
use codeforge_model::{Backend, ModelError, Scripted, ScriptedReply};
use codeforge_syntax::Language;
use futures::future::BoxFuture;

/// Always the same three hits: one in another language, and a test, which never reaches a prompt
/// (the snapshots would show it).
struct FixedHits;

impl Retriever for FixedHits {
    fn related(&self, _query: String, _k: usize) -> BoxFuture<'_, Result<Vec<Related>, String>> {
        Box::pin(async {
            Ok(vec![
                Related {
                    qualified_name: "util.numbers.parse_int".into(),
                    kind: "function".into(),
                    language: Language::Python,
                    path: "util/numbers.py".into(),
                    line: 3,
                    signature: "def parse_int(text: str) -> int:".into(),
                    doc: Some("Parse a decimal integer.".into()),
                    score: 0.5,
                    is_test: false,
                },
                Related {
                    qualified_name: "crate::codec::decode".into(),
                    kind: "function".into(),
                    language: Language::Rust,
                    path: "src/codec.rs".into(),
                    line: 10,
                    signature: "pub fn decode(input: &[u8]) -> Vec<u8>".into(),
                    doc: Some("Decodes bytes.".into()),
                    score: 0.25,
                    is_test: false,
                },
                Related {
                    qualified_name: "tests.test_numbers.test_parse_int".into(),
                    kind: "function".into(),
                    language: Language::Python,
                    path: "tests/test_numbers.py".into(),
                    line: 7,
                    signature: "def test_parse_int():".into(),
                    doc: None,
                    score: 0.4,
                    is_test: true,
                },
            ])
        })
    }
}

/// [`FixedHits`], counting the searches.
#[derive(Default)]
struct CountedHits(std::sync::atomic::AtomicUsize);

impl Retriever for CountedHits {
    fn related(&self, query: String, k: usize) -> BoxFuture<'_, Result<Vec<Related>, String>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        FixedHits.related(query, k)
    }
}

/// Completion gets the repository context of the function at the cursor: precomputed when the
/// file opens, searched once per function (not per keystroke), in Qwen2.5-Coder's
/// repository-level FIM format or as the chat prompt's related code; none with
/// `context_hits = 0`.
#[tokio::test]
async fn completion_prompts_carry_the_functions_repository_context_searched_once() {
    let src = "def total(lines):\n    \"\"\"Sum of the integers in lines.\"\"\"\n    n = 0\n    for l in lines:\n        \n    return n\n";
    let hits = Arc::new(CountedHits::default());
    let repo = CompletionRepo::new(hits.clone(), "ws");
    assert_eq!(
        repo.contexts
            .warm(hits.clone(), Language::Python, "calc.py", src)
            .await,
        1
    );
    assert_eq!(hits.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    let model = Scripted::always("n += parse_int(l)");
    let mut s = settings();
    s.fim = Some(true);
    let at = |needle: &str| src.find(needle).unwrap() + needle.len();
    let ask = |s: GenerationSettings, offset: usize| {
        let (model, repo) = (&model, repo.clone());
        async move {
            let input = CompletionInput {
                language: Language::Python,
                rel_path: "calc.py",
                source: src,
                offset,
            };
            complete(model, Some(repo), &s, input).await.unwrap()
        }
    };
    for offset in [at("for l in lines:\n        "), at("n = 0")] {
        let c = ask(s.clone(), offset).await;
        assert_eq!(c.context_hits, 2, "the test hit never counts");
    }
    assert_eq!(
        hits.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one search per function, not per request"
    );
    let prompts = model.prompts();
    let fim = prompts[0].render_plain();
    assert!(
        fim.starts_with("<|repo_name|>ws\n<|file_sep|>util/numbers.py\n# Parse a decimal integer.\ndef parse_int(text: str) -> int:\n"),
        "{fim}"
    );
    assert!(
        fim.contains("<|file_sep|>src/codec.rs\n# (rust)\n"),
        "{fim}"
    );
    assert!(
        fim.contains("<|file_sep|>calc.py\n<|fim_prefix|>def total(lines):"),
        "{fim}"
    );
    assert!(!fim.contains("test_parse_int"), "{fim}");
    // The chat prompt lists the same symbols.
    s.fim = Some(false);
    ask(s.clone(), at("n = 0")).await;
    // (The last prompt: an answer without items is asked again, with the same prompt.)
    let chat = model.prompts().last().unwrap().render_plain();
    assert!(chat.contains("def parse_int(text: str) -> int:"), "{chat}");
    assert!(!chat.contains("test_parse_int"), "{chat}");
    // context_hits = 0: the plain FIM prompt.
    s.fim = Some(true);
    s.context_hits = 0;
    let c = ask(s.clone(), at("n = 0")).await;
    assert_eq!(c.context_hits, 0);
    let plain = model.prompts().last().unwrap().render_plain();
    assert!(plain.starts_with("<|fim_prefix|>def total"), "{plain}");
}

fn settings() -> GenerationSettings {
    Settings::default().generation
}

fn noop(_: &str) {}

#[tokio::test]
async fn prompt_snapshots_per_language() {
    let root = codeforge_testkit::fixtures("prompts");
    let mut failures = Vec::new();
    let mut cases = 0;
    for lang_dir in std::fs::read_dir(&root).unwrap() {
        let lang_dir = lang_dir.unwrap().path();
        for f in std::fs::read_dir(&lang_dir).unwrap() {
            let path = f.unwrap().path();
            let Some(lang) = Language::from_path(&path) else {
                continue;
            };
            let source = std::fs::read_to_string(&path).unwrap();
            let rel = path.file_name().unwrap().to_str().unwrap().to_string();
            let targets = generate_targets(lang, &rel, &source);
            assert!(!targets.is_empty(), "{}: no stub", path.display());
            let stub_answer = match lang {
                Language::Python => "```\npass\n```",
                Language::Rust => "```rust\ntodo!()\n```",
                Language::Java => "```java\nthrow new UnsupportedOperationException();\n```",
            };
            let model = Scripted::always(stub_answer);
            let o = generate_function(
                &model,
                Some(&FixedHits),
                &settings(),
                None,
                GenerateInput {
                    language: lang,
                    rel_path: &rel,
                    source: &source,
                    line: targets[0].start_line,
                    allow_implemented: false,
                },
                &noop,
            )
            .await
            .unwrap();
            assert_eq!(
                o.status,
                GenerateStatus::NoValidCandidate,
                "a `pass` answer is a stub"
            );
            let mut snap = o.explain.prompt.clone();
            snap.push_str("\n=== context\n");
            for c in &o.explain.context {
                snap.push_str(&format!("{:?} {} {}\n", c.kind, c.status, c.label));
            }
            let expected = path.with_extension(format!(
                "{}.expected",
                path.extension().unwrap().to_str().unwrap()
            ));
            if let Some(f) = codeforge_testkit::check_snapshot(&expected, &snap) {
                failures.push(f);
            }
            // Cross-language context is labelled as such; the target is shown as written.
            assert!(
                o.explain.prompt.contains("(rust)") || lang == Language::Rust,
                "{}",
                o.explain.prompt
            );
            assert!(o.explain.prompt.contains(targets[0].name.as_str()));
            cases += 1;
        }
    }
    assert_eq!(cases, 3);
    assert!(
        failures.is_empty(),
        "prompt snapshots differ (UPDATE_EXPECT=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn good_answers_become_edits_and_bad_ones_are_rejected_with_reasons() {
    let src = std::fs::read_to_string(codeforge_testkit::fixtures(
        "workspaces/gen_python/shapes/text.py",
    ))
    .unwrap();
    let good = "Plan:\n1. Split the words.\n2. Average their lengths.\n\n```python\ndef average_word_length(text):\n    \"\"\"Doc.\"\"\"\n    words = word_lengths(text)\n    if not words:\n        return 0.0\n    return mean(words)\n```";
    let model = Scripted::new([
        ScriptedReply::Text("Sorry, I cannot help with that.".into()),
        ScriptedReply::Text("```python\ndef average_word_length(text):\n    pass\n```".into()),
        ScriptedReply::Text("```python\ndef average_word_length(text):\n    return (\n```".into()),
        ScriptedReply::Text(good.into()),
    ]);
    let mut s = settings();
    s.n = 4;
    s.plan = PlanSetting::Comments;
    let o = generate_function(
        &model,
        None,
        &s,
        None,
        GenerateInput {
            language: Language::Python,
            rel_path: "shapes/text.py",
            source: &src,
            line: 9,
            allow_implemented: false,
        },
        &noop,
    )
    .await
    .unwrap();
    assert_eq!(o.status, GenerateStatus::Generated);
    assert_eq!(o.chosen, Some(3));
    let reasons: Vec<Option<&str>> = o.candidates.iter().map(|c| c.rejected.as_deref()).collect();
    assert!(reasons[0].unwrap().contains("no body"), "{reasons:?}");
    assert!(reasons[1].unwrap().contains("stub"), "{reasons:?}");
    assert!(
        reasons[2].unwrap().contains("no body") || reasons[2].unwrap().contains("parse"),
        "{reasons:?}"
    );
    assert_eq!(reasons[3], None);
    let code = o.code.unwrap();
    assert!(
        code.starts_with("def average_word_length(text):\n    \"\"\"Return the mean length"),
        "{code}"
    );
    assert!(code.contains("    # 1. Split the words.\n    # 2. Average their lengths.\n    words = word_lengths(text)\n"), "{code}");
    let e = o.edit.unwrap();
    let new = format!("{}{}{}", &src[..e.start], e.new_text, &src[e.end..]);
    assert_eq!(
        codeforge_syntax::count_syntax_errors(Language::Python, &new),
        0
    );
    assert!(
        new.ends_with("        return 0.0\n    return mean(words)\n"),
        "{new}"
    );
    assert!(
        o.explain.notes.iter().any(|n| n.contains("no index")),
        "{:?}",
        o.explain.notes
    );
}

#[tokio::test]
async fn model_faults_and_non_stubs_are_errors() {
    let src = std::fs::read_to_string(codeforge_testkit::fixtures(
        "workspaces/gen_python/shapes/text.py",
    ))
    .unwrap();
    let input = |line| GenerateInput {
        language: Language::Python,
        rel_path: "shapes/text.py",
        source: &src,
        line,
        allow_implemented: false,
    };
    let model = Scripted::new([ScriptedReply::Fail(ModelError::StreamCut)]);
    let e = generate_function(&model, None, &settings(), None, input(12), &noop)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "model backend closed the stream before finishing"
    );
    let e = generate_function(&model, None, &settings(), None, input(4), &noop)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already has a body"), "{e}");
    let e = generate_function(&model, None, &settings(), None, input(0), &noop)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no function"), "{e}");
    assert_eq!(model.calls(), 1, "only the stub reached the model");
}

#[tokio::test]
async fn retrieval_from_the_real_index_reaches_the_prompt() {
    let ws = codeforge_testkit::workspace("gen_python");
    let mut s = Settings::default();
    s.embeddings = codeforge_config::EmbeddingSettings::None;
    let index = codeforge_index::WorkspaceIndex::open(&ws.root, &ws.cache, s)
        .await
        .unwrap();
    index
        .update(
            codeforge_index::UpdateRequest::default(),
            &|_: codeforge_index::Progress| {},
            &codeforge_index::CancelFlag::new(),
        )
        .await
        .unwrap();
    let src = std::fs::read_to_string(ws.root.join("shapes/text.py")).unwrap();
    let model = Arc::new(Scripted::always(
        "```python\ndef average_word_length(text):\n    return 1.0\n```",
    ));
    let o = generate_function(
        model.as_ref() as &dyn Backend,
        Some(&index as &dyn Retriever),
        &settings(),
        None,
        GenerateInput {
            language: Language::Python,
            rel_path: "shapes/text.py",
            source: &src,
            line: 12,
            allow_implemented: false,
        },
        &noop,
    )
    .await
    .unwrap();
    let labels: Vec<&str> = o.explain.context.iter().map(|c| c.label.as_str()).collect();
    assert!(
        labels.iter().any(|l| l.contains("shapes.stats.mean")),
        "{labels:?}"
    );
    assert!(
        !labels.iter().any(|l| l.starts_with("shapes/text.py")),
        "same-file hits come from the buffer, not the index: {labels:?}"
    );
    assert!(
        o.explain
            .prompt
            .contains("# Arithmetic mean of a non-empty list of numbers.\ndef mean(values)"),
        "{}",
        o.explain.prompt
    );
    assert!(o.explain.prompt.contains("from shapes.stats import mean"));
    assert!(
        o.explain
            .prompt
            .contains("### Other definitions in this file\n```python\n")
            && o.explain.prompt.contains("def word_lengths(text)"),
        "same-file definitions are offered"
    );
}

/// A high-entropy key, built here so that this file holds none.
fn fake_key() -> String {
    ["q7Zp3Xc9", "Lm2Vb8Nw", "4Rt6Yk1H", "s5Dj0Gf"].concat()
}

#[tokio::test]
async fn nothing_from_a_secrets_file_reaches_the_model() {
    let src = "def load():\n    \"\"\"Read the settings.\"\"\"\n    pass\n";
    let model = Scripted::always("```python\ndef load():\n    return 1\n```");
    for rel in [".env", "x.pem", "config/credentials.py"] {
        assert!(
            generate_targets(Language::Python, rel, src).is_empty(),
            "{rel}"
        );
        let e = generate_function(
            &model,
            Some(&FixedHits),
            &settings(),
            None,
            GenerateInput {
                language: Language::Python,
                rel_path: rel,
                source: src,
                line: 0,
                allow_implemented: false,
            },
            &noop,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, GenerateError::SecretFile { .. }), "{rel}: {e}");
        assert!(e.to_string().contains("secrets file"), "{e}");
        let c = complete(
            &model,
            Some(CompletionRepo::new(Arc::new(FixedHits), "ws")),
            &settings(),
            CompletionInput {
                language: Language::Python,
                rel_path: rel,
                source: src,
                offset: src.len() - 1,
            },
        )
        .await
        .unwrap();
        assert!(c.items.is_empty(), "{rel}: {:?}", c.items);
    }
    assert_eq!(model.calls(), 0, "a secrets file never reaches the model");
    // The same file under an ordinary name does.
    assert_eq!(
        generate_targets(Language::Python, "config/load.py", src).len(),
        1
    );
}

#[tokio::test]
async fn a_key_next_to_the_cursor_or_in_the_stub_is_masked_in_every_prompt() {
    let key = fake_key();
    let src = format!(
        "import requests\n\nAPI_KEY = \"{key}\"\n\ndef fetch(url, token=\"{key}\"):\n    \"\"\"GET url with the key.\"\"\"\n    pass\n\ndef other():\n    return req\n"
    );
    let model =
        Scripted::always("```python\n    return requests.get(url, headers={'k': API_KEY})\n```");
    // Completion right after the key's line, and inside the key itself.
    for offset in [
        src.find("\n\ndef fetch").unwrap(),
        src.find(&key).unwrap() + 5,
        src.len() - 1,
    ] {
        complete(
            &model,
            Some(CompletionRepo::new(Arc::new(FixedHits), "ws")),
            &settings(),
            CompletionInput {
                language: Language::Python,
                rel_path: "client.py",
                source: &src,
                offset,
            },
        )
        .await
        .unwrap();
    }
    let o = generate_function(
        &model,
        Some(&FixedHits),
        &settings(),
        None,
        GenerateInput {
            language: Language::Python,
            rel_path: "client.py",
            source: &src,
            line: 4,
            allow_implemented: false,
        },
        &noop,
    )
    .await
    .unwrap();
    assert!(!o.explain.prompt.contains(&key), "{}", o.explain.prompt);
    let prompts = model.prompts();
    assert_eq!(prompts.len(), 4);
    for p in prompts {
        let text = p.render_plain();
        assert!(!text.contains(&key), "{text}");
        assert!(
            !text.contains(&key[..8]),
            "no part of the key either: {text}"
        );
        assert!(text.contains("«redacted»"), "{text}");
    }
}

/// A request parses its file once; each candidate costs one (incremental) re-parse of the file
/// with the candidate in place, and listing the targets parses once.
#[tokio::test]
async fn one_parse_per_file_version_plus_one_per_candidate() {
    let source =
        "def double(x):\n    \"\"\"Twice x.\"\"\"\n    pass\n\n\ndef other():\n    return 1\n";
    let before = codeforge_syntax::file_parses();
    let targets = generate_targets(Language::Python, "m.py", source);
    assert_eq!(targets.len(), 1);
    assert_eq!(codeforge_syntax::file_parses() - before, 1, "listing");

    let answers = [
        "```python\ndef double(x):\n    return x * 2\n```",
        "```python\ndef double(x):\n    return x + x\n```",
        "```python\ndef double(x):\n    return 2 * x\n```",
    ];
    let model = Scripted::new(answers.iter().map(|a| ScriptedReply::Text(a.to_string())));
    let mut s = settings();
    s.n = 3;
    let before = codeforge_syntax::file_parses();
    let o = generate_function(
        &model,
        Some(&FixedHits),
        &s,
        None,
        GenerateInput {
            language: Language::Python,
            rel_path: "m.py",
            source,
            line: 0,
            allow_implemented: false,
        },
        &noop,
    )
    .await
    .unwrap();
    assert_eq!(o.status, GenerateStatus::Generated);
    assert_eq!(o.candidates.len(), 3);
    assert!(o.candidates.iter().all(|c| c.rejected.is_none()));
    let parses = codeforge_syntax::file_parses() - before;
    assert!(
        parses <= 1 + o.candidates.len() as u64,
        "{parses} parses for one file version and {} candidates",
        o.candidates.len()
    );
}

/// An answer that gives no item is not the last word: the model is asked for its next-best
/// answer (the embedded model steered away from the starts of the answers of no use, greedy; an
/// HTTP server at a temperature), at most twice, and the first answer with items is offered.
#[tokio::test]
async fn an_answer_without_items_is_followed_by_the_models_next_best() {
    let src = "def total(xs):\n    n = 0\n    for x in xs:\n        n += x\n\n    return n\n";
    let (input, s) = fim_at("calc.py", src, "n += x\n");
    // First the next line again (no item), then nothing at all, then code.
    let replies = || {
        [
            ScriptedReply::Text("    return n\n".into()),
            ScriptedReply::Text(String::new()),
            ScriptedReply::Text("    print(n)\n".into()),
        ]
    };
    let model = Scripted::new(replies()).steering();
    let c = complete(&model, None, &s, input.clone()).await.unwrap();
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("    print(n)")
    );
    assert_eq!(c.reason, None);
    let avoid = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        model.asked(),
        vec![
            (None, 0.0),
            (avoid(&["return n"]), 0.0),
            (avoid(&["return n"]), 0.0)
        ]
    );
    // A backend that cannot take a next-best first token is asked at a temperature.
    let model = Scripted::new(replies());
    complete(&model, None, &s, input.clone()).await.unwrap();
    assert_eq!(model.asked(), vec![(None, 0.0), (None, 0.7), (None, 0.7)]);
    // Three answers without items: none is offered, and the reason is the last answer's.
    let model = Scripted::new([
        ScriptedReply::Text("    return n\n".into()),
        ScriptedReply::Text("    return n\n".into()),
        ScriptedReply::Text("```\n".into()),
    ])
    .steering();
    let c = complete(&model, None, &s, input).await.unwrap();
    assert!(c.items.is_empty());
    assert_eq!(model.calls(), 3);
    assert_eq!(model.asked()[2].0, avoid(&["return n"]), "each start once");
    assert_eq!(
        c.reason.as_deref(),
        Some("the model's answer holds no code")
    );
}

/// A statement written at the wrong depth (the loop's own instead of its body's) is offered at
/// the depth the parse accepts.
#[tokio::test]
async fn a_line_at_the_wrong_depth_is_offered_at_the_right_one() {
    let src = "def total(xs):\n    n = 0\n    for x in xs:\n\n    return n\n";
    let (input, s) = fim_at("calc.py", src, "xs:\n");
    let model = Scripted::always("    n += x\n");
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("        n += x"),
        "{c:?}"
    );
}

/// At an empty line after a block's header, the first retry writes from the depth the block's
/// body must take, as if the user had typed the indentation: the model is told it was typed,
/// and the item carries it.
#[tokio::test]
async fn the_first_retry_writes_from_the_depth_the_line_must_take() {
    let src =
        "def grade(x):\n    if x > 3:\n        return 'A'\n    elif x > 2:\n\n    return 'C'\n";
    let (input, s) = fim_at("grade.py", src, "x > 2:\n");
    let model = Scripted::new([
        // At the header's own depth: the `elif` has no body.
        ScriptedReply::Text("    elif x > 1:\n        return 'C'\n".into()),
        ScriptedReply::Text("return 'B'\n".into()),
    ])
    .steering();
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("        return 'B'"),
        "{c:?}"
    );
    let retry = model.prompts()[1].render_plain();
    assert!(
        retry.contains("    elif x > 2:\n        <|fim_suffix|>"),
        "{retry}"
    );
    assert_eq!(model.asked()[1].0, Some(vec!["elif x > 1:".to_string()]));
    // A backend that cannot be steered gets the same forced depth, at a temperature.
    let (input, s) = fim_at("grade.py", src, "x > 2:\n");
    let model = Scripted::new([
        ScriptedReply::Text("    elif x > 1:\n        return 'C'\n".into()),
        ScriptedReply::Text("return 'B'\n".into()),
    ]);
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("        return 'B'"),
        "{c:?}"
    );
    assert!(
        model.prompts()[1]
            .render_plain()
            .contains("    elif x > 2:\n        <|fim_suffix|>")
    );
    assert_eq!(model.asked()[1], (None, 0.7));
}

/// At column 0 inside a function (right after its docstring), the first retry writes from the
/// body's depth: the answer that went to the top level (`# Test cases`, `if __name__ ==
/// "__main__":`) is not asked for again.
#[tokio::test]
async fn the_first_retry_inside_a_function_writes_at_the_bodys_depth() {
    let src = "def count(s):\n    \"\"\"How many.\"\"\"\n\n    return n\n";
    let (input, s) = fim_at("count.py", src, "many.\"\"\"\n");
    let model = Scripted::new([
        ScriptedReply::Text("# Test cases\n".into()),
        ScriptedReply::Text("n = len(s)\n".into()),
    ])
    .steering();
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("    n = len(s)"),
        "{c:?}"
    );
    let retry = model.prompts()[1].render_plain();
    assert!(retry.contains("many.\"\"\"\n    <|fim_suffix|>"), "{retry}");
    assert_eq!(model.asked()[1].0, Some(vec!["# Test cases".to_string()]));
}

/// Where the hole took a block's header (the line after the cursor is indented past the line
/// above, which opens no block), an item at the body's depth leaves the file as broken as it
/// was: the model is asked for its next-best answer, and one that gives the body its header is
/// offered. If none does, the first answer is.
#[tokio::test]
async fn a_hole_that_took_a_header_gets_an_answer_that_mends_it() {
    let src = "def count(s):\n    n = 0\n\n        return 0\n    return len(s)\n";
    let (input, s) = fim_at("count.py", src, "n = 0\n");
    let model = Scripted::new([
        ScriptedReply::Text("    n += 1\n".into()),
        ScriptedReply::Text("    if not s:\n".into()),
    ])
    .steering();
    let c = complete(&model, None, &s, input.clone()).await.unwrap();
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("    if not s:"),
        "{c:?}"
    );
    assert_eq!(model.asked()[1].0, Some(vec!["n += 1".to_string()]));
    let model = Scripted::new([
        ScriptedReply::Text("    n += 1\n".into()),
        ScriptedReply::Text("    n -= 1\n".into()),
        ScriptedReply::Text(String::new()),
    ])
    .steering();
    let c = complete(&model, None, &s, input.clone()).await.unwrap();
    assert_eq!(model.calls(), 3);
    assert_eq!(
        c.items.first().map(|(_, t)| t.as_str()),
        Some("    n += 1"),
        "{c:?}"
    );
    assert_eq!(c.reason, None);
    // Where the line above opens the block, nothing is missing: the first answer stands.
    let src = "def count(s):\n    if not s:\n\n        return 0\n    return len(s)\n";
    let (input, s) = fim_at("count.py", src, "not s:\n");
    let model = Scripted::always("        n = 1\n").steering();
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(model.calls(), 1, "{c:?}");
}

/// An answer whose line item opens a block (which never parses alone) and whose body is at the
/// wrong depth is offered at the depth where its block parses.
#[tokio::test]
async fn a_block_at_the_wrong_depth_is_offered_where_it_parses() {
    let src = "def valid(d):\n    try:\n        m, y = d.split('-')\n\n    except ValueError:\n        return False\n    return True\n";
    let (input, s) = fim_at("valid.py", src, "split('-')\n");
    let model = Scripted::always("\n    if int(m) > 12:\n        return False\n");
    let c = complete(&model, None, &s, input).await.unwrap();
    assert!(
        c.items
            .iter()
            .any(|(_, t)| t == "\n        if int(m) > 12:\n            return False"),
        "{c:?}"
    );
    assert_eq!(model.calls(), 1, "no retry needed");
}

/// An answer cut off by the token limit inside a statement is offered up to its last line that
/// leaves the file parsing.
#[tokio::test]
async fn an_answer_cut_off_inside_a_statement_is_offered_up_to_where_it_parses() {
    let src = "def valid(d):\n    try:\n        m, y = d.split('-')\n\n    except ValueError:\n        return False\n    return True\n";
    let (input, s) = fim_at("valid.py", src, "split('-')\n");
    let model = Scripted::always(
        "\n    if int(m) > 12:\n        return False\n    if int(y) < 0:\n        if int(y) % 4:\n            return False\n        elif int(y",
    );
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(
        c.items,
        vec![(
            Level::Block,
            "\n        if int(m) > 12:\n            return False\n        if int(y) < 0:\n            if int(y) % 4:\n                return False".to_string()
        )],
        "{c:?}"
    );
}

/// Where the file is broken at the cursor (a hole that took more than a line), the item that
/// mends it goes first, not a line that leaves it broken.
#[tokio::test]
async fn the_item_that_mends_the_file_at_the_cursor_goes_first() {
    let src =
        "def f(n):\n    \"\"\"Doc.\"\"\"\n\n        if n:\n            return 1\n    return 0\n";
    let (input, s) = fim_at("f.py", src, "\"\"\"\n");
    let model = Scripted::always("    ret = []\n    for i in range(n):\n").steering();
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(model.calls(), 1, "an item mends: no retry");
    assert_eq!(c.preferred, Some(Level::Block), "{c:?}");
    assert_eq!(c.ranked().first(), Some(&Level::Block));
    let (_, block) = c.items.iter().find(|(l, _)| *l == Level::Block).unwrap();
    assert_eq!(block, "    ret = []\n    for i in range(n):");
    // In a clean file the line goes first, as before.
    let src = "def f(n):\n    ret = []\n\n    return ret\n";
    let (input, s) = fim_at("f.py", src, "[]\n");
    let model = Scripted::always("    ret.append(n)\n    ret.append(n + 1)\n").steering();
    let c = complete(&model, None, &s, input).await.unwrap();
    assert_eq!(c.preferred, None, "{c:?}");
    assert_eq!(c.ranked().first(), Some(&Level::Line));
}

/// A Python document's completion input with the cursor after `after`, and FIM settings.
fn fim_at<'a>(
    rel_path: &'a str,
    src: &'a str,
    after: &str,
) -> (CompletionInput<'a>, GenerationSettings) {
    let mut s = settings();
    s.fim = Some(true);
    let offset = src.find(after).unwrap() + after.len();
    let input = CompletionInput {
        language: Language::Python,
        rel_path,
        source: src,
        offset,
    };
    (input, s)
}
