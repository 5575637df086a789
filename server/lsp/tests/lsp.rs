//! The language server end to end through the real tower service: document sync with UTF-16
//! positions, document symbols, indexing with `$/progress`, workspace symbols from the index
//! (with the real MiniLM model), re-indexing on edits and watched-file events, multi-root, and
//! bad configuration reported while the server keeps serving.

mod common;

use codeforge_testkit::real_model_dir;
use common::{TestClient, uri};
use serde_json::{Value, json};

type Ws = codeforge_testkit::TempWorkspace;

fn workspace() -> Ws {
    codeforge_testkit::workspace("mixed")
}

fn lexical() -> Value {
    json!({"embeddings": {"backend": "none"}})
}

fn names(symbols: &[Value]) -> Vec<String> {
    symbols
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn document_symbols_use_utf16_positions_and_follow_incremental_edits() {
    let ws = workspace();
    let mut c = TestClient::start(&ws.cache);
    let init = c.initialize(&[&ws.root], lexical()).await;
    assert_eq!(
        init["capabilities"]["textDocumentSync"]["change"], 2,
        "incremental sync"
    );
    assert_eq!(init["serverInfo"]["name"], "codeforge");

    let path = ws.root.join("src/emoji.rs");
    // `/* 😀 */ fn ` is 12 UTF-16 units (14 bytes) before the name.
    let text = "/* 😀 */ fn smile() {}\n\nstruct Face;\n";
    std::fs::write(&path, text).unwrap();
    let doc = uri(&path);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "rust", "version": 1, "text": text}}),
    )
    .await;
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": doc}}),
        )
        .await;
    let syms = syms.as_array().unwrap();
    assert_eq!(names(syms), ["smile", "Face"]);
    assert_eq!(
        syms[0]["selectionRange"]["start"],
        json!({"line": 0, "character": 12})
    );
    assert_eq!(
        syms[0]["selectionRange"]["end"],
        json!({"line": 0, "character": 17})
    );

    // Insert "日本😀 " (4 units... 日=1, 本=1, 😀=2, space=1 → 5) at column 3, inside the comment.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": doc, "version": 2},
            "contentChanges": [
                {"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 3}}, "text": "日本😀 "},
                {"range": {"start": {"line": 2, "character": 7}, "end": {"line": 2, "character": 11}}, "text": "Grin"}
            ]
        }),
    )
    .await;
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": doc}}),
        )
        .await;
    let syms = syms.as_array().unwrap();
    assert_eq!(names(syms), ["smile", "Grin"]);
    assert_eq!(
        syms[0]["selectionRange"]["start"],
        json!({"line": 0, "character": 17})
    );
    assert_eq!(
        syms[1]["range"]["start"],
        json!({"line": 2, "character": 0})
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "buffers never reach the disk"
    );

    // Nested symbols for a Python class.
    let py = uri(&ws.root.join("app/mailer.py"));
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": py}}),
        )
        .await;
    let mailer = &syms.as_array().unwrap()[0];
    assert_eq!(mailer["name"], "Mailer");
    assert_eq!(
        names(mailer["children"].as_array().unwrap()),
        ["__init__", "send_email", "render_html"]
    );
    assert_eq!(
        mailer["children"][1]["detail"],
        "def send_email(self, to, subject, body)"
    );
}

#[tokio::test]
async fn indexing_reports_progress_and_workspace_symbol_finds_by_meaning() {
    let ws = workspace();
    let mut c = TestClient::start(&ws.cache);
    let model = real_model_dir();
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "local", "model_dir": model}}),
    )
    .await;
    c.wait_indexed(1).await;
    // Progress: created by the server, then begin → report(s) with percentages → end.
    assert!(
        c.server_requests
            .iter()
            .any(|r| r["method"] == "window/workDoneProgress/create")
    );
    let kinds: Vec<&str> = c
        .notifications
        .iter()
        .filter(|n| n["method"] == "$/progress")
        .map(|n| n["params"]["value"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"begin"));
    assert_eq!(kinds.last(), Some(&"end"));
    assert!(kinds.contains(&"report"));
    assert!(c.notifications.iter().any(|n| {
        n["method"] == "$/progress"
            && n["params"]["value"]["percentage"]
                .as_u64()
                .is_some_and(|p| p > 0)
    }));
    // File watchers were registered dynamically.
    let reg = c
        .server_requests
        .iter()
        .find(|r| r["method"] == "client/registerCapability")
        .expect("watchers registered");
    assert_eq!(
        reg["params"]["registrations"][0]["method"],
        "workspace/didChangeWatchedFiles"
    );

    let hits = c
        .request(
            "workspace/symbol",
            json!({"query": "parse the config file"}),
        )
        .await;
    let hits = hits.as_array().unwrap();
    assert_eq!(hits[0]["name"], "read_options", "{hits:#?}");
    assert_eq!(
        hits[0]["location"]["uri"],
        uri(&ws.root.join("app/settings.py"))
    );
    assert_eq!(hits[0]["location"]["range"]["start"]["line"], 4);
    assert_eq!(hits[0]["containerName"], "app.settings");
    // No warning about lexical-only search with a working model.
    assert!(
        !c.notifications
            .iter()
            .any(|n| n["method"] == "window/showMessage")
    );
}

#[tokio::test]
async fn edits_saves_and_watched_files_reindex() {
    let ws = workspace();
    let mut c = TestClient::start(&ws.cache);
    c.initialize(&[&ws.root], lexical()).await;
    c.wait_indexed(1).await;
    // Lexical-only is said once, clearly.
    let warn = c
        .wait_for("lexical-only warning", 5, |n| {
            n["method"] == "window/showMessage"
        })
        .await;
    assert!(
        warn["params"]["message"]
            .as_str()
            .unwrap()
            .contains("lexical only")
    );

    // An unsaved edit is indexed from the buffer (debounced).
    let path = ws.root.join("app/geometry.py");
    let disk = std::fs::read_to_string(&path).unwrap();
    let doc = uri(&path);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": disk}}),
    )
    .await;
    let lines = disk.lines().count() as u32;
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": doc, "version": 2},
            "contentChanges": [{"range": {"start": {"line": lines, "character": 0}, "end": {"line": lines, "character": 0}},
                                "text": "\n\ndef zz_live_edit(x):\n    return x\n"}]
        }),
    )
    .await;
    c.poll_symbols("zz_live_edit", 20, |l| {
        names(l).contains(&"zz_live_edit".to_string())
    })
    .await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), disk);

    // Closing without saving returns the index to the disk content.
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": doc}}),
    )
    .await;
    c.poll_symbols("zz_live_edit", 20, |l| {
        !names(l).contains(&"zz_live_edit".to_string())
    })
    .await;

    // A file created on disk and announced by the watcher.
    let new_file = ws.root.join("app/fresh.py");
    std::fs::write(&new_file, "def zz_from_disk():\n    pass\n").unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&new_file), "type": 1}]}),
    )
    .await;
    c.poll_symbols("zz_from_disk", 20, |l| {
        names(l).contains(&"zz_from_disk".to_string())
    })
    .await;
    std::fs::remove_file(&new_file).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&new_file), "type": 3}]}),
    )
    .await;
    c.poll_symbols("zz_from_disk", 20, |l| {
        !names(l).contains(&"zz_from_disk".to_string())
    })
    .await;

    // A .gitignore change re-walks the tree.
    std::fs::write(ws.root.join(".gitignore"), "java/\n").unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&ws.root.join(".gitignore")), "type": 1}]}),
    )
    .await;
    c.poll_symbols("crc32", 20, |l| !names(l).contains(&"crc32".to_string()))
        .await;
}

#[tokio::test]
async fn multi_root_workspaces_have_their_own_indexes() {
    let a = workspace();
    let tmp = tempfile::tempdir().unwrap();
    let b_root = tmp.path().join("other");
    std::fs::create_dir_all(b_root.join("pkg")).unwrap();
    std::fs::write(
        b_root.join("pkg/only_here.py"),
        "def zz_second_root():\n    pass\n",
    )
    .unwrap();
    let b_root = b_root.canonicalize().unwrap();
    let mut c = TestClient::start(&a.cache);
    c.initialize(&[&a.root, &b_root], lexical()).await;
    c.wait_indexed(2).await;
    let hits = c
        .request("workspace/symbol", json!({"query": "zz_second_root"}))
        .await;
    assert_eq!(
        hits[0]["location"]["uri"],
        uri(&b_root.join("pkg/only_here.py"))
    );
    let hits = c
        .request("workspace/symbol", json!({"query": "RateLimiter"}))
        .await;
    assert_eq!(hits[0]["location"]["uri"], uri(&a.root.join("src/lib.rs")));
    let dirs = std::fs::read_dir(a.cache.join("indexes")).unwrap().count();
    assert_eq!(dirs, 2, "one index per root");
}

#[tokio::test]
async fn bad_configuration_is_reported_and_the_server_keeps_serving() {
    let ws = workspace();
    std::fs::write(
        ws.root.join("codeforge.toml"),
        "[index]\nmax_file_size = \"big\"\n",
    )
    .unwrap();
    let mut c = TestClient::start(&ws.cache);
    c.initialize(
        &[&ws.root],
        json!({"indx": {"on_startup": true}, "embeddings": {"backend": "none"}}),
    )
    .await;
    let m1 = c
        .wait_for("init options error", 10, |n| {
            n["method"] == "window/showMessage"
                && n["params"]["message"].as_str().unwrap().contains("indx")
        })
        .await;
    assert_eq!(m1["params"]["type"], 1, "an error message");
    c.wait_for("codeforge.toml error", 10, |n| {
        n["method"] == "window/showMessage"
            && n["params"]["message"]
                .as_str()
                .unwrap()
                .contains("codeforge.toml")
    })
    .await;
    // Still serving: symbols work and indexing ran with defaults.
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri(&ws.root.join("app/settings.py"))}}),
        )
        .await;
    assert_eq!(
        names(syms.as_array().unwrap()),
        ["read_options", "merge_options"]
    );
    c.wait_indexed(1).await;
    c.poll_symbols("merge_options", 20, |l| !l.is_empty()).await;

    // A bad didChangeConfiguration is refused; the previous settings stay.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"codeforge": {"embeddings": {"backend": "quantum"}}}}),
    )
    .await;
    c.wait_for("config change error", 10, |n| {
        n["method"] == "window/showMessage"
            && n["params"]["message"].as_str().unwrap().contains("quantum")
    })
    .await;
    c.poll_symbols("merge_options", 20, |l| !l.is_empty()).await;
    let r = c.request("shutdown", Value::Null).await;
    assert!(r.is_null());
}

#[tokio::test]
async fn requests_are_answered_while_indexing_runs() {
    let ws = workspace();
    for n in 0..1500 {
        std::fs::write(
            ws.root.join(format!("app/bulk_{n}.py")),
            format!("def bulk_{n}(x):\n    \"\"\"Bulk {n}.\"\"\"\n    return x\n"),
        )
        .unwrap();
    }
    let mut c = TestClient::start(&ws.cache);
    c.initialize(&[&ws.root], lexical()).await;
    // Wait until indexing has begun, then ask.
    c.wait_for("progress begin", 30, |n| {
        n["method"] == "$/progress" && n["params"]["value"]["kind"] == "begin"
    })
    .await;
    let syms = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri(&ws.root.join("app/mailer.py"))}}),
        )
        .await;
    assert_eq!(names(syms.as_array().unwrap()), ["Mailer"]);
    let _ = c
        .request("workspace/symbol", json!({"query": "Mailer"}))
        .await;
    let ended = c
        .notifications
        .iter()
        .any(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "end");
    assert!(
        !ended,
        "the answers should not have waited for indexing to finish"
    );
    c.wait_indexed(1).await;
    c.poll_symbols("bulk_1499", 20, |l| {
        names(l).contains(&"bulk_1499".to_string())
    })
    .await;
}
