//! AI completion through the real server with a scripted model: three labelled granularities
//! ranked after everything else, `isIncomplete` while the model is still working, the same
//! prefix/suffix answered from the cache without a second model call, inline completion from the
//! same engine, and `$/cancelRequest` stopping the model work.

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
    let ws = codeforge_testkit::workspace("gen_python");
    let mut c = TestClient::start_with(&ws.cache, Some(model));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "index": {"on_startup": false}}),
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
    let (mut c, _ws, doc) = setup(model.clone()).await;
    let init_caps = c.request("textDocument/completion", at(&doc)).await;
    assert_eq!(init_caps["isIncomplete"], false, "{init_caps}");
    let items = init_caps["items"].as_array().unwrap().clone();
    let descr: Vec<&str> = items
        .iter()
        .map(|i| i["labelDetails"]["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        descr,
        ["CodeForge: rest of line", "CodeForge: rest of block"]
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
    assert_eq!(again["items"], Value::Array(items));
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
    assert_eq!(
        inline_items[0]["insertText"], "al += len(w)\n        if total > 100:\n            break",
        "largest first"
    );
    assert_eq!(inline_items[1]["insertText"], "al += len(w)");
    assert_eq!(model.calls(), 1);
}

#[tokio::test]
async fn a_slow_model_gives_is_incomplete_then_the_result() {
    let model = Arc::new(Scripted::new([ScriptedReply::Slow(
        Duration::from_millis(3500),
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
