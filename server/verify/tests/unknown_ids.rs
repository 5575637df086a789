//! A selected test the runner cannot collect must not sink the run: here pytest's own config
//! (`python_classes = Check*`) means a test class found by name is never collected, and pytest
//! answers the whole run with `ERROR: not found`. The id is left out, reported, and the other
//! selected test still decides, through the real pytest.

use std::path::PathBuf;

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{VerifyRequest, Workbench};

#[tokio::test]
async fn an_uncollectable_test_id_is_left_out_and_the_rest_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(
        root.join("pytest.ini"),
        "[pytest]\npython_classes = Check*\n",
    )
    .unwrap();
    std::fs::write(
        root.join("calc.py"),
        "def double(x):\n    \"\"\"Twice x.\"\"\"\n    pass\n",
    )
    .unwrap();
    std::fs::write(
        root.join("tests/test_calc.py"),
        "from calc import double\n\n\ndef test_double():\n    assert double(2) == 4\n\n\nclass TestDouble:\n    def test_negative(self):\n        assert double(-1) == -2\n",
    )
    .unwrap();
    std::fs::write(
        root.join("conftest.py"),
        "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n",
    )
    .unwrap();
    let settings = VerifySettings {
        python: std::env::var_os("CODEFORGE_VERIFY_PYTHON").map(PathBuf::from),
        ..VerifySettings::default()
    };
    let req = VerifyRequest {
        root: root.clone(),
        rel_path: "calc.py".into(),
        language: Language::Python,
        name: "double".into(),
        class: None,
        doc: None,
        cache_dir: dir.path().join("cache"),
        settings,
    };
    let mut wb = tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare");
    let ids: Vec<String> = wb.plan().tests.iter().map(|t| t.id.clone()).collect();
    assert!(
        ids.iter().any(|i| i.ends_with("TestDouble::test_negative")),
        "selection finds the class by name: {ids:?}"
    );
    let right = "def double(x):\n    \"\"\"Twice x.\"\"\"\n    return 2 * x\n";
    let report = wb.run(right).await;
    assert!(report.all_passed(), "{report:?}");
    assert_eq!(report.passed, 1, "{report:?}");
    assert_eq!(wb.unrunnable().len(), 1, "{:?}", wb.unrunnable());
    let wrong = "def double(x):\n    \"\"\"Twice x.\"\"\"\n    return x + 1\n";
    let report = wb.run(wrong).await;
    assert!(report.compiled && !report.all_passed(), "{report:?}");
}
