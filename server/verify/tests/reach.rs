//! Tests are chosen by measurement: the workspace's suite runs once on the stub, and the tests
//! that entered the target's code (here only through a caller, never by name) are the ones that
//! decide, through the real pytest. A mutant only that indirect test catches is rejected.

use std::path::PathBuf;

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{TestReason, VerifyRequest, Workbench};

const STUB: &str = "def double(x):\n    \"\"\"Twice x.\"\"\"\n    raise NotImplementedError\n\n\ndef quadruple(x):\n    return double(double(x))\n\n\ndef name():\n    return 'calc'\n";

#[tokio::test]
async fn the_tests_that_reach_the_stub_decide() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join("src/calc")).unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(
        root.join("pyproject.toml"),
        "[tool.pytest.ini_options]\npythonpath = [\"src\"]\n",
    )
    .unwrap();
    std::fs::write(root.join("src/calc/__init__.py"), STUB).unwrap();
    std::fs::write(
        root.join("tests/test_calc.py"),
        "import pytest\nfrom calc import quadruple, name\n\n\n@pytest.mark.parametrize('x', [1, 3])\ndef test_quadruple(x):\n    assert quadruple(x) == 4 * x\n\n\ndef test_name():\n    assert name() == 'calc'\n",
    )
    .unwrap();
    let settings = VerifySettings {
        python: std::env::var_os("CODEFORGE_VERIFY_PYTHON").map(PathBuf::from),
        ..VerifySettings::default()
    };
    let req = VerifyRequest {
        root: root.clone(),
        rel_path: "src/calc/__init__.py".into(),
        language: Language::Python,
        name: "double".into(),
        class: None,
        doc: None,
        cache_dir: dir.path().join("cache"),
        settings,
    };
    let before = codeforge_testkit::snapshot(&root);
    let mut wb = tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare");
    let reach = wb.select_by_reach(STUB, 1..=3).await.expect("measured");
    assert_eq!((reach.collected, reach.reaching), (3, 1), "{:?}", wb.plan());
    let tests = &wb.plan().tests;
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].id, "tests/test_calc.py::test_quadruple");
    assert_eq!(tests[0].reason, TestReason::Reaches);
    assert!(wb.has_direct_tests());
    // Measured again on the same files: the cached answer.
    assert_eq!(wb.select_by_reach(STUB, 1..=3).await, Some(reach));

    let mutant = STUB.replace("raise NotImplementedError", "return x + x if x > 1 else x");
    let report = wb.run(&mutant).await;
    assert!(
        report.compiled && !report.all_passed(),
        "the mutant: {report:?}"
    );
    let right = STUB.replace("raise NotImplementedError", "return 2 * x");
    let report = wb.run(&right).await;
    assert!(
        report.all_passed() && report.passed >= 1,
        "the right body: {report:?}"
    );
    assert_eq!(
        codeforge_testkit::snapshot(&root),
        before,
        "the workspace changed"
    );
}
