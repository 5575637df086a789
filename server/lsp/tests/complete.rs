//! AI completion through the real server with a scripted model: three labelled granularities
//! ranked after everything else, `isIncomplete` while the model is still working, the same
//! prefix/suffix answered from the cache without a second model call, inline completion from the
//! same engine, `$/cancelRequest` stopping the model work, the line item streamed before the
//! rest, typing along an answer served from it, and a taken item recorded in the feedback store.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use codeforge_model::{Scripted, ScriptedReply};
use common::{TestClient, uri};
use serde_json::{Value, json};

const SRC: &str = "def total_length(words):\n    \"\"\"Sum of the lengths of words.\"\"\"\n    total = 0\n    for w in words:\n        tot\n    return total\n";
const ANSWER: &str =
    "```python\n        total += len(w)\n        if total > 100:\n            break\n```";

async fn setup(model: Arc<Scripted>) -> (TestClient, codeforge_testkit::TempWorkspace, String) {
    setup_with(model, json!({})).await
}

async fn setup_with(
    model: Arc<Scripted>,
    generation: Value,
) -> (TestClient, codeforge_testkit::TempWorkspace, String) {
    let ws = codeforge_testkit::workspace("gen_python");
    let mut c = TestClient::start_with(&ws.cache, Some(model));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "index": {"on_startup": false},
               "generation": generation}),
    )
    .await;
    let doc = uri(&ws.root.join("shapes/lengths.py"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": SRC}}),
    )
    .await;
    (c, ws, doc)
}

fn at(doc: &str) -> Value {
    json!({"textDocument": {"uri": doc}, "position": {"line": 4, "character": 11}})
}

#[tokio::test]
async fn completion_offers_line_and_block_items_then_answers_from_the_cache() {
    let model = Arc::new(Scripted::new([ScriptedReply::Text(ANSWER.into())]));
    let (mut c, ws, doc) = setup(model.clone()).await;
    let init_caps = c.request("textDocument/completion", at(&doc)).await;
    assert_eq!(init_caps["isIncomplete"], false, "{init_caps}");
    let items = init_caps["items"].as_array().unwrap().clone();
    let descr: Vec<&str> = items
        .iter()
        .map(|i| i["labelDetails"]["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        descr,
        ["CodeForge: rest of line", "CodeForge: rest of block ⚠"],
        "the block could not be tested: the workspace is not trusted"
    );
    assert!(
        items
            .iter()
            .all(|i| i["sortText"].as_str().unwrap().starts_with("~~~")),
        "ranked below everything"
    );
    assert!(
        items
            .iter()
            .all(|i| i["detail"].as_str().unwrap().contains("unverified"))
    );
    // The edit replaces the word being typed, so client-side filtering keeps the item.
    let edit = &items[0]["textEdit"];
    assert_eq!(edit["range"]["start"], json!({"line": 4, "character": 8}));
    assert_eq!(edit["newText"], "total += len(w)");
    assert_eq!(
        items[1]["textEdit"]["newText"],
        "total += len(w)\n        if total > 100:\n            break"
    );
    assert_eq!(model.calls(), 1);

    let t = Instant::now();
    let again = c.request("textDocument/completion", at(&doc)).await;
    let cached_ms = t.elapsed().as_millis();
    assert_eq!(again["items"], Value::Array(items.clone()));
    assert_eq!(
        model.calls(),
        1,
        "the same prefix/suffix never reaches the model twice"
    );
    assert!(cached_ms < 1000, "a cached answer took {cached_ms} ms");

    let inline = c.request("textDocument/inlineCompletion", json!({
        "textDocument": {"uri": doc}, "position": {"line": 4, "character": 11}, "context": {"triggerKind": 2}
    })).await;
    let inline_items = inline["items"].as_array().unwrap();
    // Nothing tested, no finished FIM middle: the line, which completes the statement, first.
    assert_eq!(inline_items[0]["insertText"], "al += len(w)");
    assert_eq!(
        inline_items[1]["insertText"],
        "al += len(w)\n        if total > 100:\n            break"
    );
    assert_eq!(model.calls(), 1);

    // Taking an item runs its command, which keeps the item and its prompt for fine-tuning.
    let cmd = &items[0]["command"];
    assert_eq!(cmd["command"], "codeforge.completionAccepted", "{cmd}");
    let r = c
        .request(
            "workspace/executeCommand",
            json!({"command": cmd["command"], "arguments": cmd["arguments"]}),
        )
        .await;
    let id = r["recorded"].as_str().expect("recorded").to_string();
    let attempts = codeforge_verify::feedback::load(&ws.cache);
    let a = attempts
        .iter()
        .find(|a| a.id == id)
        .expect("the attempt is stored");
    assert_eq!(a.accepted, Some(true));
    assert_eq!(a.target, "completion: rest of line");
    assert_eq!(a.file, "shapes/lengths.py");
    assert_eq!(a.candidates[0].code, "al += len(w)");
    assert!(
        a.prompt
            .iter()
            .any(|m| m.content.contains("for w in words:")),
        "{:?}",
        a.prompt
    );
}

#[tokio::test]
async fn a_slow_model_gives_is_incomplete_then_the_result() {
    // Past the request's wait (6 s).
    let model = Arc::new(Scripted::new([ScriptedReply::Slow(
        Duration::from_millis(7000),
        ANSWER.into(),
    )]));
    let (mut c, _ws, doc) = setup(model.clone()).await;
    let first = c.request("textDocument/completion", at(&doc)).await;
    assert_eq!(first["isIncomplete"], true, "{first}");
    assert!(first["items"].as_array().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = c.request("textDocument/completion", at(&doc)).await;
    assert_eq!(second["isIncomplete"], false, "{second}");
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        model.calls(),
        1,
        "the second request joined the first one's model call"
    );
}

/// With a FIM prompt the line item is answered as soon as the model has written its line
/// (`isIncomplete`: the block follows); typing along the answer keeps that model work and
/// answers from it, without what was typed, instead of asking the model again.
#[tokio::test]
async fn the_line_item_goes_out_when_its_line_ends_and_typing_along_keeps_the_work() {
    let model = Arc::new(Scripted::new([ScriptedReply::Lines(
        Duration::from_millis(1200),
        "al += len(w)\n        if total > 100:\n            break\n".into(),
    )]));
    let (mut c, _ws, doc) = setup_with(model.clone(), json!({"fim": true})).await;
    let t = Instant::now();
    let first = c.request("textDocument/completion", at(&doc)).await;
    let first_ms = t.elapsed().as_millis();
    assert_eq!(first["isIncomplete"], true, "{first}");
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the line item alone: {first}");
    assert_eq!(items[0]["textEdit"]["newText"], "total += len(w)");
    assert!(
        first_ms < 2400,
        "the line item came after {first_ms} ms, not when its line ended (1.2 s)"
    );

    // The user types "al" along the answer.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2},
               "contentChanges": [{"text": SRC.replace("        tot\n", "        total\n")}]}),
    )
    .await;
    let typed = json!({"textDocument": {"uri": doc}, "position": {"line": 4, "character": 13}});
    let t = Instant::now();
    let along = c.request("textDocument/completion", typed.clone()).await;
    assert!(t.elapsed().as_millis() < 1000, "{along}");
    let items = along["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{along}");
    assert_eq!(items[0]["textEdit"]["newText"], "total += len(w)");
    assert_eq!(
        items[0]["textEdit"]["range"]["end"],
        json!({"line": 4, "character": 13})
    );
    // Once the model has finished, the block is there too, from the same model call.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let done = c.request("textDocument/completion", typed).await;
    assert_eq!(done["isIncomplete"], false, "{done}");
    let texts: Vec<&str> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["textEdit"]["newText"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "total += len(w)",
            "total += len(w)\n        if total > 100:\n            break"
        ]
    );
    assert_eq!(model.calls(), 1, "typing along never asked the model again");
}

#[tokio::test]
async fn cancelling_a_completion_stops_the_model_work() {
    let model = Arc::new(Scripted::new([ScriptedReply::Hang]));
    let (mut c, _ws, doc) = setup(model.clone()).await;
    let id = c.send_request("textDocument/completion", at(&doc)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(model.calls(), 1);
    c.notify("$/cancelRequest", json!({"id": id})).await;
    let _ = c.response(id, 10).await;
    for _ in 0..40 {
        if model.cancelled() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the model call survived $/cancelRequest");
}

/// Model work stops when its document is closed, and when a cursor in another document asks:
/// there is one user, and the model's time goes to where they are typing.
#[tokio::test]
async fn closing_the_document_or_asking_in_another_stops_older_work() {
    let model = Arc::new(Scripted::new([ScriptedReply::Hang, ScriptedReply::Hang]));
    let (mut c, ws, doc) = setup(model.clone()).await;
    let wait_cancelled = |n: usize| {
        let model = model.clone();
        async move {
            for _ in 0..60 {
                if model.cancelled() == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{} model calls cancelled, wanted {n}", model.cancelled());
        }
    };
    let first = c.send_request("textDocument/completion", at(&doc)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(model.calls(), 1);
    // A cursor in another document.
    let other = uri(&ws.root.join("shapes/other.py"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": other, "languageId": "python", "version": 1, "text": SRC}}),
    )
    .await;
    let second = c.send_request("textDocument/completion", at(&other)).await;
    let answer = c.response(first, 10).await.unwrap();
    assert_eq!(answer["isIncomplete"], true, "{answer}");
    wait_cancelled(1).await;
    tokio::time::sleep(Duration::from_millis(400)).await; // past the debounce
    assert_eq!(model.calls(), 2);
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": other}}),
    )
    .await;
    wait_cancelled(2).await;
    let _ = c.response(second, 10).await;
}

/// Multi-line completions are checked by the enclosing function's tests before they are shown:
/// the line item goes out at once, the block item only once its tests pass, marked ✓; a block
/// that fails them is never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_line_completions_are_shown_only_after_the_functions_tests_pass() {
    const RIGHT: &str = "```python\n    n = 0\n    for c in text.lower():\n        if c in \"aeiou\":\n            n += 1\n    return n\n```";
    const WRONG: &str = "```python\n    n = 0\n    for c in text:\n        if c in \"aeiou\":\n            n += 1\n    return n\n```";
    let ws = codeforge_testkit::workspace("verify_python");
    let model = Arc::new(Scripted::new([
        ScriptedReply::Text(RIGHT.into()),
        ScriptedReply::Text(WRONG.into()),
    ]));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "index": {"on_startup": false},
               "verify": {"trust": "always", "python": codeforge_testkit::verify_python()}}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let path = ws.root.join("textstat/words.py");
    let src = std::fs::read_to_string(&path).unwrap().replacen(
        "    raise NotImplementedError\n",
        "    \n",
        1,
    );
    let doc = uri(&path);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": src}}),
    )
    .await;
    let pos = json!({"textDocument": {"uri": doc}, "position": {"line": 9, "character": 4}});

    // Until the tests have run, only the line item is offered and the list is incomplete.
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = c.request("textDocument/completion", pos.clone()).await;
        let done = r["isIncomplete"] == false;
        answers.push(r);
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for a in &answers[..answers.len() - 1] {
        assert!(
            a["items"].as_array().unwrap().len() <= 1,
            "nothing multi-line before its tests ran: {a}"
        );
    }
    let last = answers.last().unwrap();
    assert_eq!(last["isIncomplete"], false, "{last}");
    let items = last["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{last}");
    assert_eq!(items[0]["textEdit"]["newText"], "n = 0");
    let block = &items[1];
    assert!(
        block["textEdit"]["newText"]
            .as_str()
            .unwrap()
            .contains("text.lower()")
    );
    let detail = block["detail"].as_str().unwrap();
    assert!(
        detail.contains("✓ 4/4 tests passed") && detail.contains("test_counts_capitals"),
        "{detail}"
    );
    assert_eq!(
        block["labelDetails"]["description"],
        "CodeForge: rest of block ✓"
    );
    assert!(items[0]["detail"].as_str().unwrap().contains("unverified"));

    // A block that fails the tests is never offered; the line item still is.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": doc, "version": 2}, "contentChanges": [{"text": format!("{src}\n")}]}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = loop {
        let r = c.request("textDocument/completion", pos.clone()).await;
        assert!(r["items"].as_array().unwrap().len() <= 1, "{r}");
        if r["isIncomplete"] == false || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(last["isIncomplete"], false, "{last}");
    let items = last["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{last}");
    assert_eq!(items[0]["textEdit"]["newText"], "n = 0");
    assert_eq!(model.calls(), 2);
    assert_eq!(codeforge_testkit::snapshot(&ws.root), before);
}

/// A file whose name marks it secret gets no completion and sends nothing to the model (`.env`
/// and `x.pem` are no source files, so the server stops at once; `credentials.py` goes as far as
/// the engine, which refuses it).
#[tokio::test]
async fn a_secrets_file_gets_no_completion_and_sends_nothing_to_the_model() {
    let model = Arc::new(Scripted::always(ANSWER));
    let ws = codeforge_testkit::workspace("gen_python");
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "index": {"on_startup": false}}),
    )
    .await;
    for name in ["credentials.py", ".env", "x.pem"] {
        let doc = uri(&ws.root.join("shapes").join(name));
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": SRC}}),
        )
        .await;
        let r = c.request("textDocument/completion", at(&doc)).await;
        assert!(r["items"].as_array().unwrap().is_empty(), "{name}: {r}");
        assert_eq!(
            r["isIncomplete"], false,
            "{name}: an answer, not a wait: {r}"
        );
    }
    // The same code in an ordinary file does reach the model (one more line at the end, so the
    // engine's cache, keyed by the text around the cursor, does not answer for it).
    let doc = uri(&ws.root.join("shapes/lengths.py"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": format!("{SRC}\n")}}),
    )
    .await;
    assert_eq!(
        model.calls(),
        0,
        "nothing from a secrets file reached the model"
    );
    let r = c.request("textDocument/completion", at(&doc)).await;
    assert!(!r["items"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(model.calls(), 1);
}
