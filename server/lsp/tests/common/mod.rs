//! A scripted LSP client driving the real server in-process over `tokio::io::duplex`: framed
//! JSON-RPC, answers the server's own requests, records notifications.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

pub struct TestClient {
    writer: WriteHalf<tokio::io::DuplexStream>,
    reader: BufReader<ReadHalf<tokio::io::DuplexStream>>,
    next_id: i64,
    pub notifications: Vec<Value>,
    pub server_requests: Vec<Value>,
    /// The button this client clicks on `window/showMessageRequest` (`None`: dismisses it).
    pub message_answer: Option<String>,
}

impl TestClient {
    pub fn start(cache_dir: &Path) -> TestClient {
        Self::start_with(cache_dir, None)
    }

    /// A server whose model is `backend` (a scripted one) instead of the configured backend.
    pub fn start_with(
        cache_dir: &Path,
        backend: Option<codeforge_ide::BackendHandle>,
    ) -> TestClient {
        let mut options = codeforge_lsp::ServerOptions::new(cache_dir.to_path_buf());
        options.backend = backend;
        options.trust_file = Some(cache_dir.join("trust.json"));
        // Not the user's own settings file: tests see only the settings they give.
        options.user_config = Some(cache_dir.join("user-config.toml"));
        Self::start_with_options(options)
    }

    /// A server with exactly these options.
    pub fn start_with_options(options: codeforge_lsp::ServerOptions) -> TestClient {
        let (client_io, server_io) = tokio::io::duplex(1 << 22);
        let (server_in, server_out) = tokio::io::split(server_io);
        tokio::spawn(codeforge_lsp::serve(server_in, server_out, options));
        let (r, w) = tokio::io::split(client_io);
        TestClient {
            writer: w,
            reader: BufReader::new(r),
            next_id: 1,
            notifications: Vec::new(),
            server_requests: Vec::new(),
            message_answer: None,
        }
    }

    async fn send(&mut self, msg: Value) {
        let body = serde_json::to_vec(&msg).unwrap();
        let head = format!("Content-Length: {}\r\n\r\n", body.len());
        self.writer.write_all(head.as_bytes()).await.unwrap();
        self.writer.write_all(&body).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let mut len = None;
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await.unwrap();
            assert!(n > 0, "server closed the stream");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = Some(v.parse::<usize>().unwrap());
            }
        }
        let mut buf = vec![0; len.expect("Content-Length")];
        self.reader.read_exact(&mut buf).await.unwrap();
        serde_json::from_slice(&buf).unwrap()
    }

    /// Handles one incoming message; returns it if it is a response.
    async fn pump(&mut self) -> Option<Value> {
        let msg = self.recv().await;
        if msg.get("method").is_some() {
            if let Some(id) = msg.get("id").cloned() {
                // A request from the server: accept it (edits are applied, as an editor would).
                self.server_requests.push(msg.clone());
                let result = if msg["method"] == "workspace/applyEdit" {
                    json!({"applied": true})
                } else if msg["method"] == "window/showMessageRequest" {
                    self.message_answer
                        .as_ref()
                        .map_or(Value::Null, |t| json!({"title": t}))
                } else {
                    Value::Null
                };
                self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}))
                    .await;
            } else {
                self.notifications.push(msg);
            }
            None
        } else {
            Some(msg)
        }
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        match self.request_result(method, params).await {
            Ok(v) => v,
            Err(err) => panic!("{method} failed: {err}"),
        }
    }

    /// Sends a request without waiting; returns its id.
    pub async fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// Reads until the response to `id` arrives: `Ok(result)` or `Err(error)`.
    pub async fn response(&mut self, id: i64, secs: u64) -> Result<Value, Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let msg = tokio::time::timeout_at(deadline, self.pump())
                .await
                .unwrap_or_else(|_| panic!("no answer to request {id}"));
            if let Some(resp) = msg
                && resp["id"] == json!(id)
            {
                return match resp.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(resp["result"].clone()),
                };
            }
        }
    }

    pub async fn request_result(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params).await;
        self.response(id, 120).await
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Reads messages until a notification matches (it is also kept in `notifications`).
    pub async fn wait_for(
        &mut self,
        what: &str,
        secs: u64,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(n) = self.notifications.iter().find(|n| pred(n)) {
            return n.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.pump()).await {
                Err(_) => panic!(
                    "timed out waiting for {what}; notifications: {:#?}",
                    self.notifications
                ),
                Ok(_) => {
                    if let Some(n) = self.notifications.iter().find(|n| pred(n)) {
                        return n.clone();
                    }
                }
            }
        }
    }

    /// Waits until the `index`-th indexing progress ends.
    pub async fn wait_indexed(&mut self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        loop {
            let ends = self
                .notifications
                .iter()
                .filter(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "end")
                .count();
            if ends >= count {
                return;
            }
            tokio::time::timeout_at(deadline, self.pump())
                .await
                .expect("indexing did not finish");
        }
    }

    /// Polls `workspace/symbol` until `pred` holds for its answer.
    pub async fn poll_symbols(
        &mut self,
        query: &str,
        secs: u64,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self
                .request("workspace/symbol", json!({"query": query}))
                .await;
            let list = r.as_array().cloned().unwrap_or_default();
            if pred(&list) {
                return list;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "workspace/symbol {query:?} never satisfied the check; last answer: {list:#?}"
                );
            }
            // Keep reading what the server sends meanwhile.
            let _ = tokio::time::timeout(Duration::from_millis(200), self.pump()).await;
        }
    }

    pub async fn initialize(&mut self, roots: &[&Path], init_options: Value) -> Value {
        self.initialize_with(roots, init_options, true).await
    }

    /// `resolve`: whether the client advertises `codeAction/resolve` of edits.
    pub async fn initialize_with(
        &mut self,
        roots: &[&Path],
        init_options: Value,
        resolve: bool,
    ) -> Value {
        let folders: Vec<Value> = roots
            .iter()
            .map(|r| json!({"uri": uri(r), "name": r.file_name().unwrap().to_string_lossy()}))
            .collect();
        let result = self
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": uri(roots[0]),
                    "workspaceFolders": folders,
                    "initializationOptions": init_options,
                    "capabilities": {
                        "window": {"workDoneProgress": true},
                        "workspace": {
                            "didChangeWatchedFiles": {"dynamicRegistration": true},
                            "workspaceFolders": true,
                            "applyEdit": true,
                            "workspaceEdit": {"documentChanges": true}
                        },
                        "textDocument": {
                            "documentSymbol": {"hierarchicalDocumentSymbolSupport": true},
                            "codeAction": if resolve {
                                json!({"resolveSupport": {"properties": ["edit"]}, "dataSupport": true})
                            } else {
                                json!({})
                            }
                        }
                    }
                }),
            )
            .await;
        self.notify("initialized", json!({})).await;
        result
    }
}

pub fn uri(p: &Path) -> String {
    tower_lsp_server::ls_types::Uri::from_file_path(p)
        .expect("absolute path")
        .to_string()
}

/// `(Authorization header, body)` of each request a [`recording_server`] got.
pub type Recorded = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A listener on 127.0.0.1 that records each request's Authorization header and body, and
/// answers 401.
pub fn recording_server() -> (String, Recorded) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut r = std::io::BufReader::new(sock.try_clone().unwrap());
            let (mut len, mut auth) = (0, String::new());
            loop {
                let mut h = String::new();
                if std::io::BufRead::read_line(&mut r, &mut h).unwrap_or(0) == 0
                    || h.trim_end().is_empty()
                {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = h["authorization:".len()..].trim().to_string();
                }
            }
            let mut b = vec![0; len];
            let _ = std::io::Read::read_exact(&mut r, &mut b);
            seen2
                .lock()
                .unwrap()
                .push((auth, String::from_utf8_lossy(&b).into_owned()));
            let body = r#"{"error":{"message":"no"}}"#;
            let _ = std::io::Write::write_fmt(
                &mut sock,
                format_args!(
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                ),
            );
        }
    });
    (url, seen)
}
