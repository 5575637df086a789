//! The OpenAI-compatible embeddings backend through real HTTP (reqwest) against a scripted local
//! server: vectors land in the index, the key goes only into the Authorization header, and
//! faults (HTTP errors, garbage, a missing key) fall back to lexical search with a clear reason
//! that never contains the key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use codeforge_config::{EmbeddingSettings, Settings};
use codeforge_index::{CancelFlag, SearchQuery, UpdateRequest, WorkspaceIndex};
use tokio::io::{AsyncWriteExt, BufReader};

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    Http500,
    Garbage,
}

#[derive(Default)]
struct Seen {
    auth: Vec<String>,
    bodies: Vec<serde_json::Value>,
}

/// A deterministic "embedding": hashed word counts over 16 dims.
fn fake_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 16];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = w
            .to_lowercase()
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        v[(h % 16) as usize] += 1.0;
    }
    v
}

async fn serve(mode: Mode, seen: Arc<Mutex<Seen>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let Some(http) = codeforge_testkit::read_http_request(&mut r).await else {
                        return;
                    };
                    let (auth, body) = (http.authorization, http.body);
                    let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let (status, answer) = match mode {
                        Mode::Http500 => ("500 Internal Server Error", "boom".to_string()),
                        Mode::Garbage => ("200 OK", "{\"nope\": true".to_string()),
                        Mode::Ok => {
                            let data: Vec<serde_json::Value> = req["input"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .enumerate()
                                .rev() // out of order: the client must use `index`
                                .map(|(i, t)| serde_json::json!({"index": i, "embedding": fake_vector(t.as_str().unwrap())}))
                                .collect();
                            (
                                "200 OK",
                                serde_json::json!({"data": data, "model": req["model"]})
                                    .to_string(),
                            )
                        }
                    };
                    {
                        let mut s = seen.lock().unwrap();
                        s.auth.push(auth);
                        s.bodies.push(req);
                    }
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if w.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/v1")
}

fn workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("app")).unwrap();
    let src = codeforge_testkit::fixtures("workspaces/mixed/app");
    for f in ["settings.py", "mailer.py", "geometry.py"] {
        std::fs::copy(src.join(f), ws.join("app").join(f)).unwrap();
    }
    let cache = tmp.path().join("cache");
    (tmp, ws, cache)
}

fn settings(url: &str, key_env: &str) -> Settings {
    let mut s = Settings::default();
    s.embeddings = EmbeddingSettings::Openai {
        url: url.to_string(),
        model: "test-embed".to_string(),
        api_key_env: Some(key_env.to_string()),
        timeout_s: 10,
        batch_size: 4,
    };
    s
}

#[tokio::test]
async fn vectors_come_from_the_endpoint_and_the_key_only_in_the_header() {
    let key = "sk-test-very-secret-1";
    // SAFETY: a variable name used by this test only; set before any thread reads it.
    unsafe { std::env::set_var("CF_TEST_EMB_KEY_OK", key) };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(Mode::Ok, seen.clone()).await;
    let (_tmp, ws, cache) = workspace();
    let i = WorkspaceIndex::open(&ws, &cache, settings(&url, "CF_TEST_EMB_KEY_OK"))
        .await
        .unwrap();
    assert!(
        i.lexical_only_reason().is_none(),
        "{:?}",
        i.lexical_only_reason()
    );
    let s = i
        .update(UpdateRequest::default(), &|_| {}, &CancelFlag::new())
        .await
        .unwrap();
    assert!(s.symbols > 5);
    assert_eq!(s.embedded, s.symbols);
    assert_eq!(s.vectors, Some(s.symbols));
    assert!(s.embeddings.starts_with("openai:"), "{}", s.embeddings);
    let hits = i
        .search(&SearchQuery::new("circle area radius", 3))
        .await
        .unwrap();
    assert_eq!(hits[0].name, "circle_area");
    assert!(
        hits[0].matched_by.contains(&"semantic"),
        "{:?}",
        hits[0].matched_by
    );
    let seen = seen.lock().unwrap();
    assert!(seen.auth.len() >= 3, "probe + batches of 4");
    assert!(seen.auth.iter().all(|a| a == &format!("Bearer {key}")));
    assert!(seen.bodies.iter().all(|b| b["model"] == "test-embed"));
    assert!(
        seen.bodies
            .iter()
            .all(|b| b["input"].as_array().unwrap().len() <= 4)
    );
}

#[tokio::test]
async fn faults_fall_back_to_lexical_search_with_a_reason_and_no_key() {
    let key = "sk-test-very-secret-2";
    // SAFETY: a variable name used by this test only.
    unsafe { std::env::set_var("CF_TEST_EMB_KEY_FAULT", key) };
    for (mode, expect) in [
        (Mode::Http500, "HTTP 500"),
        (Mode::Garbage, "malformed answer"),
    ] {
        let url = serve(mode, Arc::new(Mutex::new(Seen::default()))).await;
        let (_tmp, ws, cache) = workspace();
        let i = WorkspaceIndex::open(&ws, &cache, settings(&url, "CF_TEST_EMB_KEY_FAULT"))
            .await
            .unwrap();
        let reason = i.lexical_only_reason().expect("lexical only").to_string();
        assert!(
            reason.contains(expect) && reason.contains("lexical only"),
            "{reason}"
        );
        assert!(!reason.contains(key), "the key leaked into: {reason}");
        let s = i
            .update(UpdateRequest::default(), &|_| {}, &CancelFlag::new())
            .await
            .unwrap();
        assert_eq!(s.embedded, 0);
        let hits = i.search(&SearchQuery::new("circle_area", 3)).await.unwrap();
        assert_eq!(hits[0].name, "circle_area");
    }
    // A key variable that is not set: said plainly, nothing sent without it.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(Mode::Ok, seen.clone()).await;
    let (_tmp, ws, cache) = workspace();
    let i = WorkspaceIndex::open(&ws, &cache, settings(&url, "CF_TEST_EMB_KEY_UNSET_XYZ"))
        .await
        .unwrap();
    let reason = i.lexical_only_reason().unwrap();
    assert!(
        reason.contains("CF_TEST_EMB_KEY_UNSET_XYZ") && reason.contains("not set"),
        "{reason}"
    );
    assert!(seen.lock().unwrap().auth.is_empty());
    // Nothing listening: a connection error, still lexical.
    let (_tmp2, ws2, cache2) = workspace();
    let i = WorkspaceIndex::open(
        &ws2,
        &cache2,
        settings("http://127.0.0.1:9/v1", "CF_TEST_EMB_KEY_FAULT"),
    )
    .await
    .unwrap();
    let reason = i.lexical_only_reason().unwrap();
    assert!(
        reason.contains("request failed") && !reason.contains(key),
        "{reason}"
    );
}
