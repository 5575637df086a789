//! The server applies the environment's overrides as the last settings layer, as the CLI does:
//! with `CODEFORGE_API_BASE` and `CODEFORGE_MODEL` set (in an injected environment, not the
//! process's), generation goes to that endpoint with that model, and `CODEFORGE_API_KEY` is the
//! key it sends.

mod common;

use std::sync::Arc;

use common::{TestClient, recording_server, uri};
use serde_json::json;

#[tokio::test]
async fn the_server_honours_the_environment_overrides() {
    let ws = codeforge_testkit::workspace("gen_python");
    let (url, seen) = recording_server();
    let mut options = codeforge_lsp::ServerOptions::new(ws.cache.clone());
    options.trust_file = Some(ws.cache.join("trust.json"));
    options.user_config = Some(ws.cache.join("user-config.toml"));
    options.env = Arc::new(move |k| match k {
        "CODEFORGE_API_BASE" => Some(url.clone()),
        "CODEFORGE_MODEL" => Some("model-from-env".to_string()),
        "CODEFORGE_REQUEST_TIMEOUT_S" => Some("20".to_string()),
        "CODEFORGE_API_KEY" => Some("key-from-env".to_string()),
        _ => None,
    });
    let mut c = TestClient::start_with_options(options);
    // Nothing in the editor's settings names a backend: the default (embedded) would apply.
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"enabled": false}}),
    )
    .await;
    let path = ws.root.join("shapes/text.py");
    let doc = uri(&path);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1,
               "text": std::fs::read_to_string(&path).unwrap()}}),
    )
    .await;
    let r = c
        .request_result(
            "codeforge/generate",
            json!({"textDocument": {"uri": doc}, "position": {"line": 10, "character": 0}}),
        )
        .await;
    assert!(r.is_err(), "the endpoint refuses: {r:?}");
    let seen = seen.lock().unwrap();
    assert!(
        !seen.is_empty(),
        "nothing reached the environment's endpoint"
    );
    let (auth, body) = &seen[0];
    assert_eq!(auth, "Bearer key-from-env");
    assert!(body.contains("\"model-from-env\""), "{body}");
    // The environment's settings were valid: none was left out.
    assert!(
        !c.notifications.iter().any(|n| n
            .to_string()
            .contains("the environment's settings are ignored")),
        "{:#?}",
        c.notifications
    );
}

#[tokio::test]
async fn an_invalid_environment_override_is_reported_and_left_out() {
    let ws = codeforge_testkit::workspace("gen_python");
    let mut options = codeforge_lsp::ServerOptions::new(ws.cache.clone());
    options.trust_file = Some(ws.cache.join("trust.json"));
    options.user_config = Some(ws.cache.join("user-config.toml"));
    options.env = Arc::new(|k| (k == "CODEFORGE_REQUEST_TIMEOUT_S").then(|| "soon".to_string()));
    let mut c = TestClient::start_with_options(options);
    c.initialize(&[&ws.root], json!({"embeddings": {"backend": "none"}}))
        .await;
    let shown = c
        .wait_for("window/showMessage", 10, |n| {
            n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("CODEFORGE_REQUEST_TIMEOUT_S"))
        })
        .await;
    assert!(
        shown["params"]["message"]
            .as_str()
            .unwrap()
            .starts_with("CodeForge: environment: "),
        "{shown}"
    );
    // The server keeps serving.
    c.request("workspace/symbol", json!({"query": "x"})).await;
}
