//! Rust and Java tests are chosen by measurement too: the suite runs once with a body that fails
//! with a marker in place of the stub, and the tests whose failure carries it are those that
//! reach the function, named by the runner itself. Here the only such test reaches `double`
//! three calls away (past what selection by name follows), a test that fails anyway is left
//! out, and a suite faster than `verify.whole_suite_s` runs whole for each candidate.

use std::path::Path;

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{Strategy, TestReason, VerifyRequest, Workbench};

const LIB: &str = "/// Twice x.\npub fn double(x: u32) -> u32 {\n    todo!()\n}\n\npub fn quadruple(x: u32) -> u32 {\n    double(double(x))\n}\n\npub fn octuple(x: u32) -> u32 {\n    quadruple(x) + quadruple(x)\n}\n\npub fn hexadecuple(x: u32) -> u32 {\n    octuple(x) + octuple(x)\n}\n\npub fn name() -> &'static str {\n    \"calc\"\n}\n";

const TESTS: &str = "#[test]\nfn sixteen_times() {\n    assert_eq!(calc::hexadecuple(3), 48);\n}\n\n#[test]\nfn named() {\n    assert_eq!(calc::name(), \"calc\");\n}\n\n#[test]\nfn broken_anyway() {\n    assert_eq!(calc::name(), \"other\");\n}\n";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

async fn workbench(root: &Path, cache: &Path, whole_suite_s: u64) -> Workbench {
    let settings = VerifySettings {
        test_timeout_s: 300,
        whole_suite_s,
        ..VerifySettings::default()
    };
    let req = VerifyRequest {
        root: root.to_path_buf(),
        rel_path: "src/lib.rs".into(),
        language: Language::Rust,
        name: "double".into(),
        class: None,
        doc: Some("Twice x.".into()),
        cache_dir: cache.to_path_buf(),
        settings,
    };
    tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare")
}

#[tokio::test]
async fn the_tests_that_fail_with_the_marker_decide() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let cache = dir.path().join("cache");
    write(
        &root,
        "Cargo.toml",
        "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(&root, "src/lib.rs", LIB);
    write(&root, "tests/calc.rs", TESTS);
    let before = codeforge_testkit::snapshot(&root);

    // A suite slower than the setting: only the reaching test runs.
    let mut wb = workbench(&root, &cache, 0).await;
    assert!(
        !wb.plan().tests.iter().any(|t| t.name == "sixteen_times"),
        "by name, the test three calls away is not found: {:?}",
        wb.plan().tests
    );
    let body = wb.survey_body().expect("cargo surveys");
    assert!(body.contains(codeforge_verify::REACH_MARKER));
    let survey = LIB.replace("todo!()", &body);
    let reach = wb.select_by_survey(&survey).await.expect("measured");
    assert_eq!(reach.strategy, Strategy::Reaching);
    assert_eq!((reach.collected, reach.reaching), (3, 1), "{:?}", wb.plan());
    let tests = &wb.plan().tests;
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(tests[0].id, "sixteen_times");
    assert_eq!(tests[0].reason, TestReason::Reaches);
    assert!(wb.has_direct_tests());
    assert!(
        wb.drop_tests_failing_without_it(LIB, 1..=4)
            .await
            .is_empty(),
        "the survey already knows"
    );
    let mutant = LIB.replace("todo!()", "x + 2");
    let report = wb.run(&mutant).await;
    assert!(
        report.compiled && !report.all_passed(),
        "the mutant: {report:?}"
    );
    let right = LIB.replace("todo!()", "2 * x");
    let report = wb.run(&right).await;
    assert!(
        report.all_passed() && report.passed == 1,
        "the right body: {report:?}"
    );
    drop(wb);

    // Fast enough: the whole suite runs, less the test that fails without the function. The
    // survey is not run again (cached by the files' content).
    let mut wb = workbench(&root, &cache, 3600).await;
    let reach = wb.select_by_survey(&survey).await.expect("measured");
    assert_eq!(reach.strategy, Strategy::WholeSuite);
    assert_eq!(reach.reaching, 1);
    let mut names: Vec<&str> = wb.plan().tests.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["named", "sixteen_times"]);
    let report = wb.run(&mutant).await;
    assert!(
        report.compiled && !report.all_passed(),
        "the mutant: {report:?}"
    );
    let report = wb.run(&right).await;
    assert!(
        report.all_passed() && report.passed == 2,
        "the right body: {report:?}"
    );
    assert_eq!(
        codeforge_testkit::snapshot(&root),
        before,
        "the workspace changed"
    );
}
