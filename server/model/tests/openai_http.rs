//! The OpenAI-compatible backend over real HTTP (reqwest) against a scripted local server:
//! streamed chat and text completions, `n` samples (asked once, or topped up when the server
//! ignores `n`), retries on 429/5xx, and every fault the issue lists (HTTP errors, malformed
//! JSON, a stream cut mid-way, an empty answer, timeouts) turned into a clear error that never
//! holds the API key. Dropping a request closes its connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeforge_model::{
    Backend, Message, ModelError, OpenAiBackend, OpenAiConfig, Prompt, Request, TimeoutPhase,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

const KEY: &str = "sk-test-very-secret-key-42";

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// SSE stream, honours `n`.
    Stream,
    /// SSE stream, ignores `n` (one choice per answer).
    StreamNoN,
    /// One JSON document (a server that ignores `stream`).
    Json,
    /// 500 on the first request, then Stream.
    FailOnce,
    /// Always 429.
    TooMany,
    /// 401 with an OpenAI error body.
    Unauthorized,
    /// 200 with garbage.
    Garbage,
    /// Sends a chunk, then closes without [DONE] or finish_reason.
    Cut,
    /// Streams only empty deltas.
    Empty,
    /// Sends headers then nothing.
    Silent,
    /// Starts streaming, then trickles forever.
    Trickle,
}

#[derive(Default)]
struct Seen {
    paths: Vec<String>,
    auth: Vec<String>,
    bodies: Vec<Value>,
    closed: usize,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
    requests: Arc<AtomicUsize>,
}

async fn serve(mode: Mode) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let requests = Arc::new(AtomicUsize::new(0));
    let (s2, r2) = (seen.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (seen, requests) = (s2.clone(), r2.clone());
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                let Some(http) = codeforge_testkit::read_http_request(&mut r).await else {
                    return;
                };
                let (path, auth, body) = (http.path, http.authorization, http.body);
                let req: Value = serde_json::from_slice(&body).unwrap();
                let nth = requests.fetch_add(1, Ordering::SeqCst);
                {
                    let mut s = seen.lock().unwrap();
                    s.paths.push(path.clone());
                    s.auth.push(auth);
                    s.bodies.push(req.clone());
                }
                let chat = path.ends_with("/chat/completions");
                let n = req["n"].as_u64().unwrap_or(1) as usize;
                let chunk = |i: usize, text: &str, finish: Option<&str>| {
                    let choice = if chat {
                        json!({"index": i, "delta": {"content": text}, "finish_reason": finish})
                    } else {
                        json!({"index": i, "text": text, "finish_reason": finish})
                    };
                    format!("data: {}\n\n", json!({"choices": [choice]}))
                };
                let sse_head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                let stream = |n: usize, nth: usize| {
                    let mut out = String::new();
                    for i in 0..n {
                        out += &chunk(i, &format!("answer {nth}.{i}"), None);
                        out += &chunk(i, " done", Some("stop"));
                    }
                    out += "data: [DONE]\n\n";
                    out
                };
                let plain = |status: &str, ctype: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let reply = match mode {
                    Mode::Stream => format!("{sse_head}{}", stream(n, nth)),
                    Mode::StreamNoN => format!("{sse_head}{}", stream(1, nth)),
                    Mode::FailOnce if nth == 0 => plain("500 Internal Server Error", "text/plain", "overloaded"),
                    Mode::FailOnce => format!("{sse_head}{}", stream(n, nth)),
                    Mode::TooMany => plain("429 Too Many Requests", "application/json", r#"{"error":{"message":"slow down"}}"#),
                    Mode::Unauthorized => plain("401 Unauthorized", "application/json", r#"{"error":{"message":"invalid api key"}}"#),
                    Mode::Json => plain(
                        "200 OK",
                        "application/json",
                        &json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "whole answer"}, "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": 12, "completion_tokens": 3}}).to_string(),
                    ),
                    Mode::Garbage => format!("{sse_head}data: {{\"choices\": [oops\n\n"),
                    Mode::Cut => format!("{sse_head}{}", chunk(0, "half an ans", None)),
                    Mode::Empty => format!("{sse_head}{}{}data: [DONE]\n\n", chunk(0, "", None), chunk(0, "", Some("stop"))),
                    Mode::Silent => {
                        let _ = w.write_all(sse_head.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    Mode::Trickle => {
                        let _ = w.write_all(sse_head.as_bytes()).await;
                        let _ = w.write_all(chunk(0, "x", None).as_bytes()).await;
                        let mut buf = [0u8; 1];
                        // Keep sending until the client hangs up; count the hang-up.
                        loop {
                            tokio::select! {
                                r = r.read(&mut buf) => {
                                    if matches!(r, Ok(0) | Err(_)) {
                                        seen.lock().unwrap().closed += 1;
                                        return;
                                    }
                                }
                                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                                    if w.write_all(chunk(0, "y", None).as_bytes()).await.is_err() {
                                        seen.lock().unwrap().closed += 1;
                                        return;
                                    }
                                }
                            }
                        }
                    }
                };
                let _ = w.write_all(reply.as_bytes()).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Server {
        url,
        seen,
        requests,
    }
}

fn backend(url: &str, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAiBackend {
    let mut cfg = OpenAiConfig::new(url, "qwen2.5-coder-72b");
    cfg.api_key = Some(KEY.to_string());
    cfg.first_token_timeout = Duration::from_secs(5);
    cfg.total_timeout = Duration::from_secs(10);
    tweak(&mut cfg);
    OpenAiBackend::new(cfg).unwrap()
}

fn chat() -> Prompt {
    Prompt::Chat(vec![Message::system("be brief"), Message::user("write f")])
}

fn no_key(e: &ModelError) {
    assert!(!e.to_string().contains(KEY), "the key leaked into: {e}");
    assert!(
        !format!("{e:?}").contains(KEY),
        "the key leaked into: {e:?}"
    );
}

#[tokio::test]
async fn streams_chat_with_n_samples_and_sends_the_key_only_in_the_header() {
    let s = serve(Mode::Stream).await;
    let b = backend(&s.url, |_| {});
    let streamed = Arc::new(Mutex::new(String::new()));
    let st = streamed.clone();
    let mut req = Request::new(chat());
    req.n = 3;
    req.temperature = 0.7;
    req.on_text = Some(Arc::new(move |i, t| {
        st.lock().unwrap().push_str(&format!("[{i}]{t}"))
    }));
    let g = b.generate(req).await.unwrap();
    let texts: Vec<&str> = g.samples.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        ["answer 0.0 done", "answer 0.1 done", "answer 0.2 done"]
    );
    assert_eq!(
        s.requests.load(Ordering::SeqCst),
        1,
        "n is asked for in one request"
    );
    assert!(streamed.lock().unwrap().contains("[2]answer 0.2"));
    let seen = s.seen.lock().unwrap();
    assert_eq!(seen.paths, ["/v1/chat/completions"]);
    assert_eq!(seen.auth, [format!("Bearer {KEY}")]);
    let body = &seen.bodies[0];
    assert_eq!(body["n"], 3);
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "qwen2.5-coder-72b");
    assert_eq!(body["messages"][1]["content"], "write f");
    assert!(!body.to_string().contains(KEY));
}

#[tokio::test]
async fn text_prompts_go_to_completions_and_n_is_topped_up_when_ignored() {
    let s = serve(Mode::StreamNoN).await;
    let b = backend(&s.url, |c| c.supports_n = true);
    let mut req = Request::new(Prompt::Text(
        "<|fim_prefix|>def f():\n<|fim_suffix|>\n<|fim_middle|>".into(),
    ));
    req.n = 2;
    let g = b.generate(req).await.unwrap();
    assert_eq!(g.samples.len(), 2);
    assert_eq!(g.samples[1].text, "answer 1.0 done");
    let seen = s.seen.lock().unwrap();
    assert_eq!(seen.paths, ["/v1/completions", "/v1/completions"]);
    assert!(
        seen.bodies[0]["prompt"]
            .as_str()
            .unwrap()
            .starts_with("<|fim_prefix|>")
    );
}

#[tokio::test]
async fn a_server_that_ignores_stream_still_works() {
    let s = serve(Mode::Json).await;
    let g = backend(&s.url, |_| {})
        .generate(Request::new(chat()))
        .await
        .unwrap();
    assert_eq!(g.samples[0].text, "whole answer");
    assert_eq!(g.usage.prompt_tokens, 12);
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let s = serve(Mode::FailOnce).await;
    let g = backend(&s.url, |_| {})
        .generate(Request::new(chat()))
        .await
        .unwrap();
    assert_eq!(g.samples[0].text, "answer 1.0 done");
    assert_eq!(s.requests.load(Ordering::SeqCst), 2);

    let s = serve(Mode::TooMany).await;
    let e = backend(&s.url, |c| c.retries = 2)
        .generate(Request::new(chat()))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ModelError::Http {
            status: 429,
            message: "slow down".into()
        }
    );
    assert_eq!(
        s.requests.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );
}

#[tokio::test]
async fn faults_become_clear_errors_without_the_key() {
    let cases: Vec<(Mode, Box<dyn Fn(&ModelError) -> bool>)> = vec![
        (
            Mode::Unauthorized,
            Box::new(
                |e| matches!(e, ModelError::Http { status: 401, message } if message == "invalid api key"),
            ),
        ),
        (
            Mode::Garbage,
            Box::new(|e| matches!(e, ModelError::Malformed(_))),
        ),
        (Mode::Cut, Box::new(|e| *e == ModelError::StreamCut)),
        (Mode::Empty, Box::new(|e| *e == ModelError::Empty)),
    ];
    for (mode, ok) in cases {
        let s = serve(mode).await;
        let e = backend(&s.url, |_| {})
            .generate(Request::new(chat()))
            .await
            .unwrap_err();
        assert!(ok(&e), "{mode:?}: {e:?}");
        no_key(&e);
        assert_eq!(
            s.requests.load(Ordering::SeqCst),
            1,
            "{mode:?} is not retried"
        );
    }
    // Nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = backend(&format!("http://127.0.0.1:{port}/v1"), |c| c.retries = 0)
        .generate(Request::new(chat()))
        .await
        .unwrap_err();
    assert!(matches!(&e, ModelError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("unreachable"), "{e}");
    no_key(&e);
}

#[tokio::test]
async fn timeouts_name_their_phase() {
    let s = serve(Mode::Silent).await;
    let e = backend(&s.url, |c| {
        c.first_token_timeout = Duration::from_millis(300)
    })
    .generate(Request::new(chat()))
    .await
    .unwrap_err();
    assert_eq!(
        e,
        ModelError::Timeout {
            phase: TimeoutPhase::FirstToken,
            ms: 300
        }
    );
    let s = serve(Mode::Trickle).await;
    let e = backend(&s.url, |c| c.total_timeout = Duration::from_millis(500))
        .generate(Request::new(chat()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::Timeout {
                phase: TimeoutPhase::Total,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("timed out generating"), "{e}");
}

#[tokio::test]
async fn dropping_a_request_closes_its_connection() {
    let s = serve(Mode::Trickle).await;
    let b = backend(&s.url, |_| {});
    let fut = b.generate(Request::new(chat()));
    let _ = tokio::time::timeout(Duration::from_millis(400), fut).await;
    // The future is gone: the server must see the hang-up soon.
    for _ in 0..50 {
        if s.seen.lock().unwrap().closed == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the connection stayed open after the request was dropped");
}

#[tokio::test]
async fn a_stop_predicate_ends_the_stream_early() {
    let s = serve(Mode::Trickle).await;
    let mut req = Request::new(chat());
    req.stop_when = Some(Arc::new(|t: &str| t.len() >= 4));
    let g = backend(&s.url, |_| {}).generate(req).await.unwrap();
    assert_eq!(g.samples[0].text, "xyyy");
    assert_eq!(g.samples[0].finish, codeforge_model::FinishReason::Stop);
    assert!(codeforge_model::has_closed_code_block(
        "Plan: x\n```python\ndef f(): pass\n```"
    ));
    assert!(!codeforge_model::has_closed_code_block(
        "```python\ndef f(): pass\n"
    ));
}
