//! A Cargo workspace with two members, as users have them: the function lives in `geometry`,
//! the only test that reaches it lives in `report` (which uses `geometry` through its own
//! function). The tests run at the workspace root for every member, so that test decides: a
//! mutant it catches is rejected, the right body passes, and the workspace is untouched.

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{TestReason, VerifyRequest, Workbench};

const GEOMETRY: &str =
    "/// Area of a rectangle.\npub fn area(w: u32, h: u32) -> u32 {\n    todo!()\n}\n";

#[tokio::test]
async fn a_members_function_is_checked_by_the_tests_of_the_member_that_uses_it() {
    // tests/fixtures/workspaces/verify_cargo_workspace: members `geometry` and `report`.
    let ws = codeforge_testkit::workspace("verify_cargo_workspace");
    let root = ws.root.clone();
    assert_eq!(
        std::fs::read_to_string(root.join("geometry/src/lib.rs")).unwrap(),
        GEOMETRY
    );
    let settings = VerifySettings {
        test_timeout_s: 300,
        ..VerifySettings::default()
    };
    let req = VerifyRequest {
        root: root.clone(),
        rel_path: "geometry/src/lib.rs".into(),
        language: Language::Rust,
        name: "area".into(),
        class: None,
        doc: Some("Area of a rectangle.".into()),
        cache_dir: ws.cache.clone(),
        settings,
    };
    let before = codeforge_testkit::snapshot(&root);
    let mut wb = tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare");
    assert_eq!(wb.plan().project_dir, "", "tests run at the workspace root");
    let tests = &wb.plan().tests;
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(tests[0].name, "describes_a_floor");
    assert_eq!(tests[0].reason, TestReason::ThroughCaller);

    let mutant = GEOMETRY.replace("todo!()", "w + h");
    let report = wb.run(&mutant).await;
    assert!(
        report.compiled && !report.all_passed(),
        "the mutant: {report:?}"
    );
    let right = GEOMETRY.replace("todo!()", "w * h");
    let report = wb.run(&right).await;
    assert!(
        report.all_passed() && report.passed == 1,
        "the right body: {report:?}"
    );
    assert_eq!(
        codeforge_testkit::snapshot(&root),
        before,
        "the workspace changed"
    );
}
