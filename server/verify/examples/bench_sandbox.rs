//! Sandbox overhead per test run (prints figures; not a test): the same command started plainly
//! and through `process::run` in the full sandbox (namespaces, mounts, overlay, Landlock,
//! seccomp), on `true` and on the fixture workspaces' real test runs (pytest, cargo test).
//! Usage: `cargo run --example bench_sandbox -- [RUNS]` (after `bash .ci/setup`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codeforge_verify::process::{Isolation, Job, run};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// The same command and environment (the sandbox's allowlist plus the job's), not contained.
fn plain_cmd(argv: &[String], cwd: &Path, env: &[(String, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(&argv[0]);
    c.args(&argv[1..])
        .current_dir(cwd)
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| codeforge_verify::sandbox::env_allowed(k)))
        .envs(env.iter().cloned());
    c
}

async fn measure(
    name: &str,
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    runs: usize,
    dir: &Path,
) {
    let mut plain = Vec::new();
    let mut boxed = Vec::new();
    let ws = dir.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(dir.join("mnt")).unwrap();
    let mut iso = Isolation::for_scratch(
        dir.join("mnt"),
        ws,
        cwd.to_path_buf(),
        vec![dir.join("target")],
        vec![],
        false,
    );
    iso.policy
        .read_only
        .push(PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    iso.policy
        .read_only
        .push(PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".rustup"));
    if let Some(py) = std::env::var_os("CODEFORGE_VERIFY_PYTHON") {
        let py = PathBuf::from(py);
        if let Some(venv) = py.parent().and_then(Path::parent) {
            iso.policy.read_only.push(venv.to_path_buf());
        }
        if let Some(prefix) = std::fs::canonicalize(&py)
            .ok()
            .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        {
            iso.policy.read_only.push(prefix);
        }
    }
    let job = Job {
        program: argv[0].clone(),
        args: argv[1..].to_vec(),
        cwd: cwd.to_path_buf(),
        env: env.to_vec(),
        timeout: Duration::from_secs(300),
        max_output: 1 << 16,
        report_fd: false,
    };
    // One warm-up each (page cache, cargo's first build).
    let _ = run(&job, &iso).await;
    let _ = plain_cmd(argv, cwd, env).output();
    for _ in 0..runs {
        let t = Instant::now();
        let o = plain_cmd(argv, cwd, env).output().unwrap();
        plain.push(t.elapsed().as_secs_f64() * 1000.0);
        let plain_code = o.status.code();
        let t = Instant::now();
        let o = run(&job, &iso).await.expect("sandboxed run");
        boxed.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(o.sandbox, "full", "{o:?}");
        // The same outcome both ways, or the figures compare different work.
        assert_eq!(o.exit_code, plain_code, "{name}: {}", o.output);
    }
    let (p50, p95) = (pct(&mut plain.clone(), 0.5), pct(&mut plain, 0.95));
    let (b50, b95) = (pct(&mut boxed.clone(), 0.5), pct(&mut boxed, 0.95));
    println!(
        "{name:<28} plain p50 {p50:8.1} ms p95 {p95:8.1} | sandbox p50 {b50:8.1} ms p95 {b95:8.1} | overhead p50 {:+7.1} ms ({:.2}x)",
        b50 - p50,
        b50 / p50.max(0.001)
    );
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    println!(
        "sandbox: {}",
        codeforge_verify::process::isolation_summary()
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/workspaces");
    let tmp = tempfile::tempdir().unwrap();
    let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    let d = tmp.path().join("true");
    std::fs::create_dir_all(d.join("scratch")).unwrap();
    measure("sh -c true", &sh("true"), &d.join("scratch"), &[], runs, &d).await;

    if let Ok(py) = std::env::var("CODEFORGE_VERIFY_PYTHON") {
        let d = tmp.path().join("py");
        copy_dir(&root.join("verify_python"), &d.join("scratch"));
        let argv = vec![
            py,
            "-m".into(),
            "pytest".into(),
            "-q".into(),
            "-p".into(),
            "no:cacheprovider".into(),
        ];
        measure(
            "pytest (verify_python)",
            &argv,
            &d.join("scratch"),
            &[],
            runs,
            &d,
        )
        .await;
    }
    let d = tmp.path().join("rs");
    copy_dir(&root.join("verify_rust"), &d.join("scratch"));
    let env = vec![(
        "CARGO_TARGET_DIR".to_string(),
        d.join("target").display().to_string(),
    )];
    std::fs::create_dir_all(d.join("target")).unwrap();
    let argv: Vec<String> = ["cargo", "test", "--offline", "-q"]
        .map(String::from)
        .to_vec();
    measure(
        "cargo test (verify_rust)",
        &argv,
        &d.join("scratch"),
        &env,
        runs,
        &d,
    )
    .await;
}
