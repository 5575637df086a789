//! A cloned repository's `codeforge.toml` cannot send the user's key to its own server: opening
//! the folder makes no connection to the URL it names while the file is unapproved, and the user
//! gets one question. Answering Allow (in a second session) pins the file and applies it, which
//! is when the first request, with the key, arrives.

mod common;

use std::time::Duration;

use common::{TestClient, recording_server};
use serde_json::{Value, json};

const KEY_VAR: &str = "CODEFORGE_TRUST_TEST_TOKEN";
const KEY: &str = "ghp_not_yours_1234";

fn options(cache: &std::path::Path) -> codeforge_lsp::ServerOptions {
    let mut o = codeforge_lsp::ServerOptions::new(cache.to_path_buf());
    o.trust_file = Some(cache.join("trust.json"));
    o.user_config = Some(cache.join("user-config.toml"));
    o
}

fn config_questions(c: &TestClient) -> Vec<String> {
    c.server_requests
        .iter()
        .filter(|r| r["method"] == "window/showMessageRequest")
        .map(|r| r["params"]["message"].as_str().unwrap_or("").to_string())
        .filter(|m| m.contains("codeforge.toml"))
        .collect()
}

/// Keeps reading (and answering) what the server sends for `secs` seconds.
async fn drain(c: &mut TestClient, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        c.request("workspace/symbol", json!({"query": "zzz"})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_workspace_file_gets_no_request_to_its_url_and_one_question() {
    // SAFETY: set before the server starts, in this binary's only test.
    unsafe { std::env::set_var(KEY_VAR, KEY) };
    let ws = codeforge_testkit::workspace("mixed");
    let (url, seen) = recording_server();
    std::fs::write(
        ws.root.join("codeforge.toml"),
        format!(
            "[embeddings]\nbackend = \"openai\"\nurl = \"{url}\"\nmodel = \"e\"\napi_key_env = \"{KEY_VAR}\"\n\n[index]\nexclude = [\"java/**\"]\n"
        ),
    )
    .unwrap();

    // Unapproved: the folder is indexed (lexically, with the file's safe keys), one question is
    // asked, and nothing connects to the file's URL.
    let cache = ws.cache.join("first");
    let mut c = TestClient::start_with_options(options(&cache));
    c.initialize(&[&ws.root], Value::Null).await;
    c.wait_indexed(1).await;
    c.poll_symbols("read_options", 30, |h| !h.is_empty()).await;
    let hits = c
        .request("workspace/symbol", json!({"query": "checksum crc32"}))
        .await;
    assert!(
        !hits.to_string().contains("/java/"),
        "the file's safe keys apply (java/ excluded): {hits:#}"
    );
    drain(&mut c, 2).await;
    let questions = config_questions(&c);
    assert_eq!(questions.len(), 1, "{:#?}", c.server_requests);
    for key in [
        "embeddings.backend",
        "embeddings.url",
        "embeddings.api_key_env",
    ] {
        assert!(questions[0].contains(key), "{}", questions[0]);
    }
    let actions: Vec<&str> = c
        .server_requests
        .iter()
        .find(|r| r["method"] == "window/showMessageRequest")
        .unwrap()["params"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["Allow", "Ignore"]);
    // Saving the file unchanged asks nothing more this session.
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": common::uri(&ws.root.join("codeforge.toml")), "type": 2}]}),
    )
    .await;
    drain(&mut c, 2).await;
    assert_eq!(config_questions(&c).len(), 1);
    assert!(
        seen.lock().unwrap().is_empty(),
        "a request reached the workspace's URL before approval: {:?}",
        seen.lock().unwrap()
    );
    assert!(!cache.join("trust.json").exists(), "nothing was approved");

    // A session where the user answers Allow: approved (pinned to the file's hash), applied, and
    // only now the endpoint is called, with the key.
    let cache = ws.cache.join("second");
    let mut c = TestClient::start_with_options(options(&cache));
    c.message_answer = Some("Allow".to_string());
    c.initialize(&[&ws.root], Value::Null).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the approved file's endpoint was never called"
        );
        drain(&mut c, 1).await;
    }
    assert_eq!(seen.lock().unwrap()[0].0, format!("Bearer {KEY}"));
    let store: Value =
        serde_json::from_slice(&std::fs::read(cache.join("trust.json")).unwrap()).unwrap();
    let entry = &store[ws.root.to_str().unwrap()];
    assert_eq!(
        entry["config_blake3"].as_str().unwrap().len(),
        64,
        "{store}"
    );
    assert!(
        entry.get("tests").is_none(),
        "tests were not trusted by it: {store}"
    );
}
