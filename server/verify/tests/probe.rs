//! The Python behaviour probe (`grammars/python/probe.py`): its own pytest suite, run with the
//! same interpreter verification uses.

#[test]
fn probe_pytest_suite_passes() {
    let python = codeforge_testkit::verify_python();
    let dir = codeforge_testkit::manifest_dir().join("../../grammars/python");
    let out = std::process::Command::new(python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_probe.py",
        ])
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("passed"), "{text}");
}
