//! A small HTTP/1.1 file server for download tests: fixed routes, `Range: bytes=N-` answered
//! with 206, a route that cuts its first answer after some bytes, and a log of every request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    routes: HashMap<String, Arc<[u8]>>,
    /// Path → bytes after which the next answer for it is cut (once).
    cut_once: HashMap<String, usize>,
    log: Vec<String>,
}

/// Serves on 127.0.0.1 until dropped (the accept thread then exits on its next connection).
pub struct FileServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FileServer {
    pub fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let weak = Arc::downgrade(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Some(state) = weak.upgrade() else { break };
                let Ok(conn) = conn else { continue };
                std::thread::spawn(move || serve(conn, &state));
            }
        });
        FileServer { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `body` at `path` (which starts with `/`).
    pub fn route(&self, path: &str, body: impl Into<Vec<u8>>) {
        let body: Arc<[u8]> = body.into().into();
        self.state.lock().unwrap().routes.insert(path.into(), body);
    }

    /// The next answer for `path` closes the connection after `after` bytes of the body.
    pub fn cut_once(&self, path: &str, after: usize) {
        self.state
            .lock()
            .unwrap()
            .cut_once
            .insert(path.into(), after);
    }

    /// Every request so far, as `"GET /path"` plus `" range=bytes=N-"` when it had one.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let (body, cut) = {
        let mut s = state.lock().unwrap();
        s.log.push(match &range {
            Some(r) => format!("{method} {path} range={r}"),
            None => format!("{method} {path}"),
        });
        let body = s.routes.get(&path).cloned();
        (body, s.cut_once.remove(&path))
    };
    let mut out = conn;
    let Some(body) = body else {
        let _ = out.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found",
        );
        return;
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, slice, extra) = match start {
        Some(n) if n < body.len() => (
            "206 Partial Content",
            &body[n..],
            format!(
                "content-range: bytes {n}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
        ),
        Some(_) => ("416 Range Not Satisfiable", &body[..0], String::new()),
        None => ("200 OK", &body[..], String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n",
        slice.len()
    );
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let n = cut.map_or(slice.len(), |c| c.min(slice.len()));
    let _ = out.write_all(&slice[..n]);
    let _ = out.flush();
    if cut.is_some() {
        let _ = out.shutdown(std::net::Shutdown::Both);
    }
}
