//! A workspace cannot trust itself: a cloned repository whose `codeforge.toml` says
//! `[verify] trust = "always"` (and names its own Python) gets no test run from
//! `codeforge generate` until the user runs `codeforge trust`; a changed file is ignored again,
//! and `--revoke` withdraws it all. Real binary, real pytest, a scripted model server.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use codeforge_testkit::{copy_dir, fixtures};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_codeforge");

/// An OpenAI-compatible server answering every request with one chat completion.
fn scripted_openai(answer: &str) -> String {
    let body = serde_json::json!({"choices": [{"index": 0, "message": {"content": answer}, "finish_reason": "stop"}]}).to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut r = std::io::BufReader::new(sock.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut b = vec![0; len];
            let _ = r.read_exact(&mut b);
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cache: PathBuf,
    config: PathBuf,
    url: String,
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("CODEFORGE_CACHE_DIR", &self.cache)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("CODEFORGE_API_BASE", &self.url)
            .env("CODEFORGE_MODEL", "qwen")
            .env_remove("CODEFORGE_API_KEY")
            .output()
            .unwrap()
    }

    fn generate(&self) -> (Value, String) {
        let target = format!("{}:10", self.root.join("shapes/text.py").display());
        let out = self.run(&["generate", "--json", &target]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        (serde_json::from_slice(&out.stdout).unwrap(), stderr)
    }

    fn status(&self) -> Value {
        let out = self.run(&["trust", "--status", "--json", self.root.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn trust(&self, extra: &[&str]) {
        let mut args = vec!["trust"];
        args.extend_from_slice(extra);
        args.push(self.root.to_str().unwrap());
        let out = self.run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cloned");
    copy_dir(&fixtures("workspaces/gen_python"), &root);
    let root = root.canonicalize().unwrap();
    let python = codeforge_testkit::verify_python();
    std::fs::write(
        root.join("codeforge.toml"),
        format!("[embeddings]\nbackend = \"none\"\n\n[verify]\ntrust = \"always\"\npython = {python:?}\n"),
    )
    .unwrap();
    let answer = "```python\ndef average_word_length(text):\n    words = word_lengths(text)\n    return mean(words) if words else 0.0\n```";
    Env {
        cache: tmp.path().join("cache"),
        config: tmp.path().join("config"),
        url: scripted_openai(answer),
        root,
        _tmp: tmp,
    }
}

fn trust_file(config: &Path) -> PathBuf {
    config.join("codeforge/trust.json")
}

#[test]
fn a_workspace_that_trusts_itself_gets_no_test_run_until_the_user_trusts_it() {
    let env = setup();

    // Untrusted: the file's `trust = "always"` and `python` are ignored, with one message.
    let (v, stderr) = env.generate();
    assert_eq!(v["status"], "generated", "{v}");
    let verification = &v["verification"];
    assert_eq!(verification["status"], "unverified", "{v}");
    let reason = verification["reason"].as_str().unwrap();
    assert!(
        reason.contains("not trusted") && reason.contains("codeforge trust"),
        "{reason}"
    );
    assert_eq!(
        stderr.matches("ignored until you approve").count(),
        1,
        "one message: {stderr}"
    );
    assert!(
        stderr.contains("verify.trust, verify.python") && stderr.contains("codeforge trust"),
        "{stderr}"
    );
    assert!(
        !trust_file(&env.config).exists(),
        "generate decided nothing on the user's behalf"
    );
    let s = env.status();
    assert_eq!(s["tests"], "ask", "{s}");
    assert_eq!(s["config"]["approved"], false, "{s}");
    assert_eq!(
        s["config"]["ignored_keys"],
        serde_json::json!(["verify.trust", "verify.python"])
    );

    // `codeforge trust`: the file as it is now is approved and tests run.
    env.trust(&[]);
    let s = env.status();
    assert_eq!(s["tests"], "allow", "{s}");
    assert_eq!(s["config"]["approved"], true, "{s}");
    assert_eq!(s["config"]["approved_blake3"], s["config"]["blake3"], "{s}");
    let (v, stderr) = env.generate();
    assert!(!stderr.contains("ignored until"), "{stderr}");
    assert_eq!(v["verification"]["status"], "passed", "{v}");
    assert!(v["verification"]["passed"].as_u64().unwrap() >= 1, "{v}");

    // A changed file is not approved any more: its restricted keys are ignored again.
    let original = std::fs::read_to_string(env.root.join("codeforge.toml")).unwrap();
    std::fs::write(
        env.root.join("codeforge.toml"),
        format!("{original}network = true\n"),
    )
    .unwrap();
    let s = env.status();
    assert_eq!(s["config"]["approved"], false, "{s}");
    assert_eq!(
        s["config"]["ignored_keys"],
        serde_json::json!(["verify.trust", "verify.python", "verify.network"])
    );
    let out = env.run(&["index", env.root.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("verify.network") && stderr.contains("ignored until"),
        "{stderr}"
    );

    // Revoked: even the original bytes are not approved, and tests do not run.
    std::fs::write(env.root.join("codeforge.toml"), &original).unwrap();
    env.trust(&["--revoke"]);
    let s = env.status();
    assert_eq!(
        (&s["tests"], &s["config"]["approved"]),
        (&serde_json::json!("ask"), &serde_json::json!(false)),
        "{s}"
    );
    let (v, _) = env.generate();
    assert_eq!(v["verification"]["status"], "unverified", "{v}");
}
