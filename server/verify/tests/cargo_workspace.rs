//! A Cargo workspace with two members, as users have them: the function lives in `geometry`,
//! the only test that reaches it lives in `report` (which uses `geometry` through its own
//! function). The tests run at the workspace root for every member, so that test decides: a
//! mutant it catches is rejected, the right body passes, and the workspace is untouched.

use std::path::Path;

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{TestReason, VerifyRequest, Workbench};

const GEOMETRY: &str = "/// Area of a rectangle.\npub fn area(w: u32, h: u32) -> u32 {\n    todo!()\n}\n";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[tokio::test]
async fn a_members_function_is_checked_by_the_tests_of_the_member_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    write(&root, "Cargo.toml", "[workspace]\nmembers = [\"geometry\", \"report\"]\nresolver = \"2\"\n");
    write(&root, "geometry/Cargo.toml", "[package]\nname = \"geometry\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
    write(&root, "geometry/src/lib.rs", GEOMETRY);
    write(
        &root,
        "report/Cargo.toml",
        "[package]\nname = \"report\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngeometry = { path = \"../geometry\" }\n",
    );
    write(
        &root,
        "report/src/lib.rs",
        "/// One line about a floor plan.\npub fn describe_floor(w: u32, h: u32) -> String {\n    format!(\"{} square metres\", geometry::area(w, h))\n}\n",
    );
    write(
        &root,
        "report/tests/floor.rs",
        "#[test]\nfn describes_a_floor() {\n    assert_eq!(report::describe_floor(3, 4), \"12 square metres\");\n}\n",
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
        cache_dir: dir.path().join("cache"),
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
    assert!(report.compiled && !report.all_passed(), "the mutant: {report:?}");
    let right = GEOMETRY.replace("todo!()", "w * h");
    let report = wb.run(&right).await;
    assert!(report.all_passed() && report.passed == 1, "the right body: {report:?}");
    assert_eq!(codeforge_testkit::snapshot(&root), before, "the workspace changed");
}
