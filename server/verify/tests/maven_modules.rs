//! A Maven build with two modules, as users have them: the method lives in `geometry`, the only
//! test that reaches it lives in `report` (whose `Report.describeFloor` calls it). The tests run
//! at the aggregator's root for every module (the reactor builds `geometry` for `report`), so
//! that test decides: a mutant it catches is rejected, the right body passes, and the workspace
//! is untouched. The same test is found by measurement (the survey) and named by Surefire.

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{Strategy, TestReason, VerifyRequest, Workbench};

const GEOMETRY: &str = "package com.acme.geometry;\n\npublic class Geometry {\n    /** Area of a rectangle. */\n    public static int area(int w, int h) {\n        throw new UnsupportedOperationException();\n    }\n}\n";

#[tokio::test]
async fn a_modules_method_is_checked_by_the_tests_of_the_module_that_uses_it() {
    // tests/fixtures/workspaces/verify_maven_modules: an aggregator with `geometry` and `report`.
    let ws = codeforge_testkit::workspace("verify_maven_modules");
    let root = ws.root.clone();
    assert_eq!(
        std::fs::read_to_string(
            root.join("geometry/src/main/java/com/acme/geometry/Geometry.java")
        )
        .unwrap(),
        GEOMETRY
    );
    let settings = VerifySettings {
        test_timeout_s: 300,
        whole_suite_s: 0,
        maven_settings: Some(codeforge_testkit::maven_settings()),
        ..VerifySettings::default()
    };
    let req = VerifyRequest {
        root: root.clone(),
        rel_path: "geometry/src/main/java/com/acme/geometry/Geometry.java".into(),
        language: Language::Java,
        name: "area".into(),
        class: Some("Geometry".into()),
        doc: Some("Area of a rectangle.".into()),
        cache_dir: ws.cache.clone(),
        settings,
    };
    let before = codeforge_testkit::snapshot(&root);
    let mut wb = tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare");
    assert_eq!(
        wb.plan().project_dir,
        "",
        "tests run at the aggregator's root"
    );
    let tests = &wb.plan().tests;
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(tests[0].name, "describesAFloor");
    assert_eq!(tests[0].reason, TestReason::ThroughCaller);

    // Measured: the suite runs once with a failing body in place of the stub; the test whose
    // failure carries the marker is named by Surefire itself.
    let body = wb.survey_body().expect("maven surveys");
    let survey = GEOMETRY.replace("throw new UnsupportedOperationException();", &body);
    let reach = wb.select_by_survey(&survey).await.expect("measured");
    assert_eq!(reach.strategy, Strategy::Reaching, "whole_suite_s = 0");
    assert_eq!((reach.collected, reach.reaching), (1, 1), "{:?}", wb.plan());
    let tests = &wb.plan().tests;
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(tests[0].id, "FloorTest#describesAFloor");
    assert_eq!(tests[0].reason, TestReason::Reaches);

    let mutant = GEOMETRY.replace(
        "throw new UnsupportedOperationException();",
        "return w + h;",
    );
    let report = wb.run(&mutant).await;
    assert!(
        report.compiled && !report.all_passed(),
        "the mutant: {report:?}"
    );
    let right = GEOMETRY.replace(
        "throw new UnsupportedOperationException();",
        "return w * h;",
    );
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
