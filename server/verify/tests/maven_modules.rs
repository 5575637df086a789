//! A Maven build with two modules, as users have them: the method lives in `geometry`, the only
//! test that reaches it lives in `report` (whose `Report.describeFloor` calls it). The tests run
//! at the aggregator's root for every module (the reactor builds `geometry` for `report`), so
//! that test decides: a mutant it catches is rejected, the right body passes, and the workspace
//! is untouched. The same test is found by measurement (the survey) and named by Surefire.

use std::path::Path;

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use codeforge_verify::{Strategy, TestReason, VerifyRequest, Workbench};

const GEOMETRY: &str = "package com.acme.geometry;\n\npublic class Geometry {\n    /** Area of a rectangle. */\n    public static int area(int w, int h) {\n        throw new UnsupportedOperationException();\n    }\n}\n";

const PLUGINS: &str = "<build><plugins>\
<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>\
<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId><version>2.22.3</version></plugin>\
<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>\
</plugins></build>";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn module_pom(name: &str, deps: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  <parent><groupId>com.acme</groupId><artifactId>plans</artifactId><version>0.1.0</version></parent>\n  <artifactId>{name}</artifactId>\n  <dependencies>{deps}<dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version><scope>test</scope></dependency></dependencies>\n</project>\n"
    )
}

#[tokio::test]
async fn a_modules_method_is_checked_by_the_tests_of_the_module_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    write(
        &root,
        "pom.xml",
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  <groupId>com.acme</groupId>\n  <artifactId>plans</artifactId>\n  <version>0.1.0</version>\n  <packaging>pom</packaging>\n  <modules>\n    <module>geometry</module>\n    <module>report</module>\n  </modules>\n  <properties><maven.compiler.release>17</maven.compiler.release><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>\n  {PLUGINS}\n</project>\n"
        ),
    );
    write(&root, "geometry/pom.xml", &module_pom("geometry", ""));
    write(&root, "geometry/src/main/java/com/acme/geometry/Geometry.java", GEOMETRY);
    write(
        &root,
        "report/pom.xml",
        &module_pom(
            "report",
            "<dependency><groupId>com.acme</groupId><artifactId>geometry</artifactId><version>0.1.0</version></dependency>",
        ),
    );
    write(
        &root,
        "report/src/main/java/com/acme/report/Report.java",
        "package com.acme.report;\n\nimport com.acme.geometry.Geometry;\n\npublic class Report {\n    /** One line about a floor plan. */\n    public static String describeFloor(int w, int h) {\n        return Geometry.area(w, h) + \" square metres\";\n    }\n}\n",
    );
    write(
        &root,
        "report/src/test/java/com/acme/report/FloorTest.java",
        "package com.acme.report;\n\nimport static org.junit.Assert.assertEquals;\nimport org.junit.Test;\n\npublic class FloorTest {\n    @Test\n    public void describesAFloor() {\n        assertEquals(\"12 square metres\", Report.describeFloor(3, 4));\n    }\n}\n",
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
        cache_dir: dir.path().join("cache"),
        settings,
    };
    let before = codeforge_testkit::snapshot(&root);
    let mut wb = tokio::task::spawn_blocking(move || Workbench::prepare(req))
        .await
        .unwrap()
        .expect("prepare");
    assert_eq!(wb.plan().project_dir, "", "tests run at the aggregator's root");
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

    let mutant = GEOMETRY.replace("throw new UnsupportedOperationException();", "return w + h;");
    let report = wb.run(&mutant).await;
    assert!(report.compiled && !report.all_passed(), "the mutant: {report:?}");
    let right = GEOMETRY.replace("throw new UnsupportedOperationException();", "return w * h;");
    let report = wb.run(&right).await;
    assert!(report.all_passed() && report.passed == 1, "the right body: {report:?}");
    assert_eq!(codeforge_testkit::snapshot(&root), before, "the workspace changed");
}
