//! End-to-end tests of the `codeforge` binary: `index`, `search`, `symbols`, `lsp` on stdio, bad
//! input, a kill during indexing followed by a restart, and that workspaces stay byte-identical.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_codeforge");

use codeforge_testkit::{
    TempWorkspace, copy_dir, fixtures, snapshot, workspace, workspace_with_real_embeddings,
};

/// A copy of the mixed fixture, configured to use the real MiniLM model (named in the user's
/// config, see [`run`]) or no embeddings.
fn mixed(with_model: bool) -> TempWorkspace {
    if with_model {
        workspace_with_real_embeddings("mixed")
    } else {
        let ws = workspace("mixed");
        std::fs::write(
            ws.root.join("codeforge.toml"),
            "[embeddings]\nbackend = \"none\"\n",
        )
        .unwrap();
        ws
    }
}

/// Runs the binary with `cache` as its cache dir and `<cache>/../config` as the user's config dir.
fn run(args: &[&str], cache: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("CODEFORGE_CACHE_DIR", cache)
        .env("XDG_CONFIG_HOME", cache.parent().unwrap().join("config"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn index_then_search_with_the_real_model() {
    let ws = mixed(true);
    let root = ws.root.to_str().unwrap();
    let before = snapshot(&ws.root);
    let (code, out, err) = run(&["index", "--json", root], &ws.cache);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["files", "symbols", "embedded", "skipped", "elapsed_ms"] {
        assert!(s.get(key).is_some(), "summary lacks {key}: {s}");
    }
    assert_eq!(s["files"], 7);
    assert_eq!(s["embedded"], s["symbols"]);
    assert_eq!(snapshot(&ws.root), before, "indexing changed the workspace");

    let (code, out, err) = run(
        &[
            "search",
            "--json",
            "-w",
            root,
            "-k",
            "3",
            "parse the config file",
        ],
        &ws.cache,
    );
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    let top = &hits[0];
    assert_eq!(top["name"], "read_options");
    assert_eq!(top["qualified_name"], "app.settings.read_options");
    assert_eq!(top["kind"], "function");
    assert_eq!(top["language"], "python");
    assert_eq!(top["path"], "app/settings.py");
    assert_eq!(top["line"], 5);
    assert!(top["score"].as_f64().unwrap() > 0.0);
    assert_eq!(r["lexical_only"], false);

    // Second index: nothing re-parsed, nothing re-embedded.
    let (_, out, _) = run(&["index", "--json", root], &ws.cache);
    let s: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (s["parsed"].as_u64(), s["embedded"].as_u64()),
        (Some(0), Some(0))
    );

    // Human output mentions the counts.
    let (code, out, _) = run(
        &["search", "-w", root, "--language", "java", "checksum"],
        &ws.cache,
    );
    assert_eq!(code, 0);
    assert!(out.contains("org.demo.Checksums#crc32"), "{out}");
}

#[test]
fn symbols_command() {
    let file = fixtures("symbols/python/src/shop/cart.py");
    let (code, out, err) = run(
        &["symbols", "--json", file.to_str().unwrap()],
        Path::new("/nonexistent-cache"),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["language"], "python");
    let syms = v["symbols"].as_array().unwrap();
    let add = syms.iter().find(|s| s["name"] == "add").unwrap();
    assert_eq!(add["kind"], "method");
    assert_eq!(add["line"], 50);
    assert_eq!(
        add["docstring"],
        "Add an item, merging quantities of the same SKU."
    );
    let (code, out, _) = run(
        &["symbols", file.to_str().unwrap()],
        Path::new("/nonexistent-cache"),
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("class") && out.contains("Cart.Discount"),
        "{out}"
    );
}

#[test]
fn bad_input_gets_a_clear_message_and_exit_status() {
    let ws = mixed(false);
    let root = ws.root.to_str().unwrap();
    let (code, _, err) = run(&["search", "-w", root], &ws.cache);
    assert_eq!(code, 2);
    assert!(err.contains("needs a query"), "{err}");
    let (code, _, err) = run(
        &["search", "-w", root, "--kind", "spaceship", "x"],
        &ws.cache,
    );
    assert_eq!(code, 2);
    assert!(err.contains("spaceship"), "{err}");
    let (code, _, err) = run(&["symbols", "README.md"], &ws.cache);
    assert_eq!(code, 2, "{err}");
    std::fs::write(
        ws.root.join("codeforge.toml"),
        "[index]\nmax_file_sise = 1\n",
    )
    .unwrap();
    let (code, _, err) = run(&["index", root], &ws.cache);
    assert_eq!(code, 2);
    assert!(
        err.contains("max_file_sise") && err.contains("codeforge.toml"),
        "{err}"
    );
    let (code, _, err) = run(&["index", "/definitely/not/here"], &ws.cache);
    assert_eq!(code, 2, "{err}");
    // The cache dir may never be inside the workspace.
    std::fs::write(ws.root.join("codeforge.toml"), "").unwrap();
    let (code, _, err) = run(&["index", root], &ws.root.join(".cache"));
    assert_ne!(code, 0);
    assert!(err.contains("never writes into a workspace"), "{err}");
    assert!(!ws.root.join(".cache").exists());
}

#[test]
fn killed_mid_indexing_the_next_run_opens_and_completes_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("big");
    let files = 4000;
    for n in 0..files {
        let dir = root.join(format!("pkg{}", n % 40));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("mod_{n}.py")),
            format!(
                "\"\"\"Module {n}.\"\"\"\n\n\ndef func_{n}(x):\n    \"\"\"Add {n}.\"\"\"\n    return x + {n}\n\n\nclass Klass{n}:\n    def method(self):\n        return func_{n}(1)\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(
        root.join("codeforge.toml"),
        "[embeddings]\nbackend = \"none\"\n",
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let mut child = Command::new(BIN)
        .args(["index", root.to_str().unwrap()])
        .env("CODEFORGE_CACHE_DIR", &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once some batches are fully committed (their file states are written last) but
    // before the run ends.
    let started = Instant::now();
    let killed_midway = loop {
        let versions = std::fs::read_dir(&cache)
            .ok()
            .and_then(|_| glob_versions(&cache));
        if versions.is_some_and(|v| v >= 4) {
            let running = child.try_wait().unwrap().is_none();
            child.kill().unwrap();
            break running;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "indexing finished ({status}) before it could be killed; make the workspace larger"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.wait().unwrap();
    assert!(killed_midway, "the process was killed mid-run");

    let (code, out, err) = run(&["index", "--json", root.to_str().unwrap()], &cache);
    assert_eq!(code, 0, "restart failed: {err}");
    let s: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(s["files"], files);
    assert_eq!(s["symbols"], files * 3, "{s}");
    assert!(
        s["parsed"].as_u64().unwrap() < files as u64,
        "committed work was reused: {s}"
    );
    let (_, out, _) = run(
        &[
            "search",
            "--json",
            "--no-update",
            "-w",
            root.to_str().unwrap(),
            "func_3999",
        ],
        &cache,
    );
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["hits"][0]["qualified_name"], "pkg39.mod_3999.func_3999");
}

/// Number of committed versions (manifests) of the `files` table under a cache dir: 1 is the
/// empty table; each batch adds a delete and an append, so 4 means at least one append landed.
fn glob_versions(cache: &Path) -> Option<usize> {
    let indexes = cache.join("indexes");
    let dir = std::fs::read_dir(indexes).ok()?.next()?.ok()?.path();
    let versions = dir.join("db/files.lance/_versions");
    Some(
        std::fs::read_dir(versions)
            .ok()?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "manifest"))
            })
            .count(),
    )
}

/// `codeforge lsp` writes only framed JSON-RPC to stdout.
#[test]
fn lsp_on_stdio_speaks_only_protocol() {
    let ws = mixed(false);
    // Debug logging goes to a file: an undrained stderr pipe would block the server.
    let log_path = ws.cache.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .arg("lsp")
        .env("CODEFORGE_CACHE_DIR", &ws.cache)
        .env("CODEFORGE_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let uri = format!("file://{}", ws.root.display());
    let msgs = [
        serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,"rootUri":uri,"capabilities":{}}}),
        serde_json::json!({"jsonrpc":"2.0","method":"initialized","params":{}}),
        serde_json::json!({"jsonrpc":"2.0","id":2,"method":"workspace/symbol","params":{"query":"x"}}),
        serde_json::json!({"jsonrpc":"2.0","id":3,"method":"shutdown","params":null}),
        serde_json::json!({"jsonrpc":"2.0","method":"exit","params":null}),
    ];
    let mut stdin = child.stdin.take().unwrap();
    for (i, m) in msgs.iter().enumerate() {
        if i == 3 {
            // Shut down once the startup indexing is done (on a loaded machine it takes a while).
            let waited = Instant::now();
            while !std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("indexed")
                && waited.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let body = m.to_string();
        write!(stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(stdin);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not exit after `exit`"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut rest = &out[..];
    let mut ids = Vec::new();
    while !rest.is_empty() {
        let text = std::str::from_utf8(rest).unwrap();
        let head_end = text
            .find("\r\n\r\n")
            .unwrap_or_else(|| panic!("not a frame: {text:?}"));
        let len: usize = text[..head_end]
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap_or_else(|| panic!("no Content-Length in {:?}", &text[..head_end]))
            .parse()
            .unwrap();
        let body = &rest[head_end + 4..head_end + 4 + len];
        let v: Value = serde_json::from_slice(body).unwrap();
        if let Some(id) = v.get("id").and_then(Value::as_i64) {
            ids.push(id);
        }
        rest = &rest[head_end + 4 + len..];
    }
    for id in [1, 2, 3] {
        assert!(ids.contains(&id), "no response {id} in {ids:?}");
    }
    let err = std::fs::read_to_string(&log_path).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("indexed"),
        "the server logged its work to stderr: {err}"
    );
}

#[test]
fn version_and_help() {
    let (code, out, _) = run(&["--version"], Path::new("/tmp"));
    assert_eq!(code, 0);
    assert!(out.starts_with("codeforge "));
    let (code, out, _) = run(&["--help"], Path::new("/tmp"));
    assert_eq!(code, 0);
    for cmd in ["lsp", "index", "search", "symbols"] {
        assert!(out.contains(cmd), "{out}");
    }
}

/// A one-thread OpenAI-compatible server answering every request with `status` and `body`
/// (one JSON document); returns its base URL and the Authorization headers it saw.
fn scripted_openai(
    status: &'static str,
    body: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut r = std::io::BufReader::new(sock.try_clone().unwrap());
            let mut len = 0;
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    break;
                }
                let h = h.trim_end().to_string();
                if h.is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    seen2
                        .lock()
                        .unwrap()
                        .push(h["authorization:".len()..].trim().to_string());
                }
            }
            let mut b = vec![0; len];
            let _ = r.read_exact(&mut b);
            let _ = write!(
                sock,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn generate_prints_json_with_an_edit_through_the_http_backend_from_env_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("gen_python");
    copy_dir(&fixtures("workspaces/gen_python"), &root);
    std::fs::write(
        root.join("codeforge.toml"),
        "[embeddings]\nbackend = \"none\"\n",
    )
    .unwrap();
    let before = snapshot(&root);
    let answer = "```python\ndef average_word_length(text):\n    words = word_lengths(text)\n    return mean(words) if words else 0.0\n```";
    let body = serde_json::json!({"choices": [{"index": 0, "message": {"content": answer}, "finish_reason": "stop"}]}).to_string();
    let (url, seen) = scripted_openai("200 OK", body);
    let key = "sk-cli-secret-77";
    let target = format!("{}:10", root.join("shapes/text.py").display());
    let out = Command::new(BIN)
        .args(["generate", "--json", &target])
        .env("CODEFORGE_CACHE_DIR", tmp.path().join("cache"))
        .env("CODEFORGE_API_BASE", &url)
        .env("CODEFORGE_MODEL", "qwen2.5-coder-72b")
        .env("CODEFORGE_API_KEY", key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "generated");
    assert!(
        v["code"]
            .as_str()
            .unwrap()
            .contains("    return mean(words) if words else 0.0"),
        "{v}"
    );
    assert_eq!(v["edit"]["range"]["end"]["line"], 14, "{v}");
    assert!(
        v["edit"]["new_text"]
            .as_str()
            .unwrap()
            .starts_with("\n    words = word_lengths(text)")
    );
    assert!(v["backend"].as_str().unwrap().contains(&url));
    assert_eq!(seen.lock().unwrap().as_slice(), [format!("Bearer {key}")]);
    assert!(!stderr.contains(key) && !String::from_utf8_lossy(&out.stdout).contains(key));
    assert_eq!(snapshot(&root), before, "generate changed the workspace");

    // A failing backend: exit 1, a clear message, no key.
    let (url, _) = scripted_openai(
        "401 Unauthorized",
        r#"{"error":{"message":"bad key"}}"#.to_string(),
    );
    let out = Command::new(BIN)
        .args(["generate", &target])
        .env("CODEFORGE_CACHE_DIR", tmp.path().join("cache"))
        .env("CODEFORGE_API_BASE", &url)
        .env("CODEFORGE_MODEL", "m")
        .env("CODEFORGE_API_KEY", key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 401: bad key"), "{stderr}");
    assert!(!stderr.contains(key));

    // Bad input: exit 2.
    let (code, _, err) = run(&["generate", "nowhere.py"], &tmp.path().join("cache"));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &[
            "generate",
            &format!("{}:1", root.join("shapes/text.py").display()),
        ],
        &tmp.path().join("cache"),
    );
    assert_eq!(code, 2, "line 1 is an import, not a function: {err}");
}

#[test]
fn doctor_reports_the_binary_cpu_models_runners_and_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (code, out, err) = run(&["doctor", "--json"], &cache);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["binary"].as_str().unwrap().ends_with("codeforge"), "{v}");
    assert!(v["cpu"]["vnni_kernels"].is_boolean(), "{v}");
    assert!(
        v["cpu"]["features"][0]
            .as_str()
            .unwrap()
            .starts_with("x86-64-v3"),
        "{v}"
    );
    // An empty cache dir: both models missing, said so with where they belong.
    let models = v["models"].as_array().unwrap();
    assert_eq!(
        models
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["embeddings", "embedded"],
        "{v}"
    );
    for m in models {
        assert_eq!(m["ready"], false, "{v}");
        for f in m["files"].as_array().unwrap() {
            assert_eq!(f["state"], "missing", "{v}");
            assert!(
                f["path"]
                    .as_str()
                    .unwrap()
                    .starts_with(cache.to_str().unwrap()),
                "{v}"
            );
        }
    }
    assert!(
        v["runners"]["cargo"].as_str().is_some(),
        "cargo runs this test: {v}"
    );
    assert!(
        ["full", "reduced", "none"].contains(&v["sandbox"]["level"].as_str().unwrap()),
        "{v}"
    );
    let (code, out, _) = run(&["doctor"], &cache);
    assert_eq!(code, 0);
    assert!(out.contains("model embedded: missing at"), "{out}");
    assert!(
        out.contains("`codeforge model pull embedded` installs it"),
        "{out}"
    );
    assert!(out.contains("generation: the embedded model ("), "{out}");
    assert!(out.contains("sandbox:"), "{out}");
}

/// `model pull` from a mirror (a local HTTP server with the real MiniLM files), with the
/// connection cut in the middle of the weights: resumed, verified, installed; `doctor` and
/// `model list` then say verified. A mirror with a changed byte fails with a message and leaves
/// no file.
#[test]
fn model_pull_from_a_mirror_resumes_and_verifies() {
    use codeforge_testkit::http::FileServer;
    let real = codeforge_testkit::real_model_dir();
    let server = FileServer::start();
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        server.route(
            &format!("/all-MiniLM-L6-v2/{f}"),
            std::fs::read(real.join(f)).unwrap(),
        );
    }
    server.cut_once("/all-MiniLM-L6-v2/model.safetensors", 40_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mirror = server.url();
    let (code, out, err) = run(
        &[
            "model",
            "pull",
            "embeddings",
            "--from",
            "mirror",
            "--mirror",
            &mirror,
            "--json",
        ],
        &cache,
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["models"][0]["ready"], true, "{v}");
    assert_eq!(v["downloaded_bytes"], 90868376 + 466247 + 612, "{v}");
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        assert_eq!(
            std::fs::read(cache.join("models/all-MiniLM-L6-v2").join(f)).unwrap(),
            std::fs::read(real.join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        server
            .log()
            .contains(&"GET /all-MiniLM-L6-v2/model.safetensors range=bytes=40000000-".to_string()),
        "{:?}",
        server.log()
    );
    let (code, out, _) = run(&["model", "list", "--verify"], &cache);
    assert_eq!(code, 0);
    assert!(out.contains("verified"), "{out}");
    let (_, out, _) = run(&["doctor"], &cache);
    assert!(out.contains("sha256 verified"), "{out}");

    // A corrupt mirror: the pull fails, says why, and installs nothing.
    let bad = FileServer::start();
    let mut weights = std::fs::read(real.join("model.safetensors")).unwrap();
    weights[1000] ^= 0xff;
    bad.route("/all-MiniLM-L6-v2/model.safetensors", weights);
    let cache2 = tmp.path().join("cache2");
    let (code, _, err) = run(
        &[
            "model",
            "pull",
            "embeddings",
            "--from",
            "mirror",
            "--mirror",
            &bad.url(),
        ],
        &cache2,
    );
    assert_ne!(code, 0);
    assert!(err.contains("is not the pinned one"), "{err}");
    assert!(
        err.contains("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        "{err}"
    );
    assert!(
        !cache2
            .join("models/all-MiniLM-L6-v2/model.safetensors")
            .exists()
    );
    assert!(
        !cache2
            .join("models/all-MiniLM-L6-v2/model.safetensors.part")
            .exists()
    );
}

/// `doctor` asks the configured OpenAI-compatible backend for its models: reachable with the
/// model listed (a local server), and not reachable (a port nobody listens on) with the error.
#[test]
fn doctor_says_whether_the_configured_backend_answers() {
    use codeforge_testkit::http::FileServer;
    let server = FileServer::start();
    server.route(
        "/v1/models",
        r#"{"object":"list","data":[{"id":"qwen-test","object":"model"}]}"#,
    );
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port())
    };
    let tmp = tempfile::tempdir().unwrap();
    let doctor = |base: &str| -> Value {
        let out = Command::new(BIN)
            .args(["doctor", "--json"])
            .current_dir(tmp.path())
            .env("CODEFORGE_CACHE_DIR", tmp.path().join("cache"))
            .env("XDG_CONFIG_HOME", tmp.path().join("config"))
            .env("CODEFORGE_API_BASE", base)
            .env("CODEFORGE_MODEL", "qwen-test")
            .env("CODEFORGE_API_KEY", "sk-doctor-secret")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !text.contains("sk-doctor-secret"),
            "the key is never shown: {text}"
        );
        serde_json::from_str(text.trim()).unwrap()
    };
    let v = doctor(&format!("{}/v1", server.url()));
    let g = &v["generation"];
    assert_eq!(g["kind"], "openai", "{v}");
    assert_eq!(g["reachable"], true, "{v}");
    assert_eq!(g["status"], 200, "{v}");
    assert_eq!(g["model_listed"], true, "{v}");
    assert_eq!(g["key"], "set", "{v}");
    assert!(server.log().contains(&"GET /v1/models".to_string()));
    let v = doctor(&down);
    assert_eq!(v["generation"]["reachable"], false, "{v}");
    assert!(
        v["generation"]["error"]
            .as_str()
            .unwrap()
            .contains("/v1/models"),
        "{v}"
    );
}
