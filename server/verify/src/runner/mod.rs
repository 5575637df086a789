//! Test runners, one module per `runner` of `[verify]` in `grammars/<lang>/language.toml`
//! (`pytest.rs`, `cargo.rs`, `maven.rs`): how a test is named for its runner, the runner's own
//! command-line placeholders, which results are the selected tests, where model-written tests
//! go, and what a run needs set up first (an interpreter). Values (commands, detect files, test
//! file patterns, report format) stay data; the workbench drives whichever runner a language
//! names.

use std::path::{Path, PathBuf};

use codeforge_syntax::{Language, ReportFormat, RunnerKind, SymbolKind, extract};

use crate::process::JobOutput;
use crate::report::{TestResult, parse_junit, parse_libtest};
use crate::request::{TestPlan, VerifyError, VerifyRequest};
use crate::selected::{SelectedTest, TestReason};

mod cargo;
mod maven;
mod pytest;

/// What a runner's placeholders expand from.
pub(crate) struct ExpandCtx<'a> {
    pub req: &'a VerifyRequest,
    pub plan: &'a TestPlan,
    /// The runner's project directory (absolute, in the user's tree).
    pub project_dir: &'a Path,
    /// This workspace's scratch base (beside the scratch copy).
    pub base: &'a Path,
}

/// Model-written tests, placed for the runner.
#[derive(Debug, Default)]
pub(crate) struct GeneratedTests {
    /// Appended to the candidate's file before each run.
    pub appended: Option<String>,
    /// A test file written into the scratch copy after each sync: (root-relative path, text).
    pub file: Option<(String, String)>,
    pub tests: Vec<SelectedTest>,
}

/// One test runner's behaviour.
pub(crate) trait Runner: Sync {
    /// The runner's id for a test `name` in `rel_path`, whose enclosing symbols are `chain`
    /// (outermost first).
    fn test_id(&self, rel_path: &str, chain: Vec<String>, name: &str) -> String;

    /// The interpreter the runner's commands use as `{python}`, found or set up when the
    /// workbench is prepared; `None` when it needs none.
    fn interpreter(
        &self,
        req: &VerifyRequest,
        notes: &mut Vec<String>,
    ) -> Result<Option<String>, VerifyError> {
        let _ = (req, notes);
        Ok(None)
    }

    /// The arguments a template token the runner owns expands to (`{tests}`, `{settings}`);
    /// `None` for tokens left to the common placeholders (`{python}`, `{file}`, `{report}`).
    fn expand(&self, token: &str, ctx: &ExpandCtx) -> Option<Vec<String>>;

    /// Whether the runner's result `r` is the selected test `t`.
    fn is_result_of(&self, t: &SelectedTest, r: &TestResult) -> bool;

    /// Whether `r` is a doc-test of the function `name`.
    fn is_doctest_of(&self, name: &str, r: &TestResult) -> bool {
        let _ = (name, r);
        false
    }

    /// Places model-written tests (a code block's content); `project_dir` is the runner's
    /// directory relative to the workspace root.
    fn generated_tests(
        &self,
        req: &VerifyRequest,
        project_dir: &str,
        code: &str,
    ) -> Result<GeneratedTests, String>;

    /// A script that fingerprints a candidate's behaviour, run with the interpreter; `None` when
    /// candidates of this runner are not probed.
    fn probe_script(&self) -> Option<&'static str> {
        None
    }

    /// A script, run with the interpreter, that runs the collected tests once and says which
    /// entered the target (`grammars/python/reach.py`); `None` where the runner has none.
    fn reach_script(&self) -> Option<&'static str> {
        None
    }

    /// The selection entry that names the runner's result `r` (its own id, never synthesized);
    /// `None` for results that cannot be selected on their own (doc-tests).
    fn selection_of(&self, r: &TestResult) -> Option<(String, String)> {
        let _ = r;
        None
    }
}

/// The runner of a language's tests.
pub(crate) fn for_language(lang: Language) -> &'static dyn Runner {
    match lang.spec().verify.runner {
        RunnerKind::Pytest => &pytest::Pytest,
        RunnerKind::Cargo => &cargo::Cargo,
        RunnerKind::Maven => &maven::Maven,
    }
}

/// The test functions of model-written `code` (parsed as `file_name`): named `test…`, or marked as
/// tests when `marked_count` (Java's `@Test`). An error when there are none or the code has syntax
/// errors.
pub(crate) fn generated_test_names(
    lang: Language,
    file_name: &str,
    code: &str,
    marked_count: bool,
) -> Result<Vec<String>, String> {
    let ex = extract(lang, file_name, code);
    let names: Vec<String> = ex
        .symbols
        .iter()
        .filter(|s| {
            (s.name.starts_with("test") || (marked_count && s.is_test))
                && matches!(s.kind, SymbolKind::Function | SymbolKind::Method)
        })
        .map(|s| s.name.clone())
        .collect();
    if names.is_empty() || ex.has_errors {
        return Err("the model's tests do not parse or hold no test function".into());
    }
    Ok(names)
}

/// Generated tests selected by `names`, each with the id `id(name)`, in `file`.
pub(crate) fn generated_selection(
    names: &[String],
    file: &str,
    id: impl Fn(&str) -> String,
) -> Vec<SelectedTest> {
    names
        .iter()
        .map(|n| SelectedTest {
            id: id(n),
            name: n.clone(),
            file: file.to_string(),
            reason: TestReason::Generated,
        })
        .collect()
}

/// A result's name without pytest's parameters (`test_x[1-2]` → `test_x`).
pub(crate) fn base_name(r: &TestResult) -> &str {
    r.name.split('[').next().unwrap_or(&r.name)
}

/// `target/surefire-reports` of the project and of its modules (a multi-module build writes one
/// per module; modules nest at most a few levels under the aggregator).
fn surefire_dirs(project_out: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let reports = dir.join("target/surefire-reports");
        if reports.is_dir() {
            out.push(reports);
        }
        if depth == 0 {
            return;
        }
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name == "target" || name == "src" || name.starts_with('.') {
                continue;
            }
            // (The run's writes may be an overlay's upper layer: no pom.xml to go by there.)
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(project_out, 4, &mut out);
    out
}

/// The results of a run, read as `format` says: JUnit XML from the report pipe, libtest's text
/// output, or the Surefire reports under `project_out/**/target/surefire-reports` (`project_out`:
/// where the run wrote the project directory; the reports are cleared for the next run).
pub(crate) fn read_results(
    format: ReportFormat,
    out: &JobOutput,
    project_out: &Path,
) -> Vec<TestResult> {
    match format {
        ReportFormat::Junit => parse_junit(&String::from_utf8_lossy(&out.report)),
        ReportFormat::Libtest => parse_libtest(&out.output),
        ReportFormat::Surefire => {
            let mut all = String::new();
            for dir in surefire_dirs(project_out) {
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("TEST-"))
                    {
                        all.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                    }
                }
                // Reports of this run only: Surefire rewrites them each run; clear them for the
                // next.
                let _ = std::fs::remove_dir_all(&dir);
            }
            parse_junit(&all)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn req(root: &Path, lang: Language, rel: &str, name: &str) -> VerifyRequest {
        VerifyRequest {
            root: root.to_path_buf(),
            rel_path: rel.into(),
            language: lang,
            name: name.into(),
            class: None,
            doc: None,
            cache_dir: root.join("no-cache"),
            settings: Default::default(),
        }
    }

    fn plan(ids: &[&str], project_dir: &str, doctests: bool) -> TestPlan {
        TestPlan {
            runner: String::new(),
            project_dir: project_dir.into(),
            tests: ids
                .iter()
                .map(|id| SelectedTest {
                    id: id.to_string(),
                    name: id.rsplit([':', '#']).next().unwrap().to_string(),
                    file: String::new(),
                    reason: TestReason::References,
                })
                .collect(),
            doctests,
            generated: false,
            notes: Vec::new(),
            reach: None,
        }
    }

    fn expand(lang: Language, rel: &str, p: &TestPlan, token: &str) -> Option<Vec<String>> {
        let root = PathBuf::from("/ws");
        let r = req(&root, lang, rel, "f");
        let project_dir = root.join(&p.project_dir);
        let ctx = ExpandCtx {
            req: &r,
            plan: p,
            project_dir: &project_dir,
            base: Path::new("/nonexistent-base"),
        };
        for_language(lang).expand(token, &ctx)
    }

    #[test]
    fn each_runner_expands_its_own_placeholders() {
        let p = plan(&["pkg/tests/test_m.py::test_a"], "pkg", true);
        assert_eq!(
            expand(Language::Python, "pkg/m.py", &p, "{tests}").unwrap(),
            ["tests/test_m.py::test_a", "--doctest-modules", "m.py"]
        );
        assert_eq!(expand(Language::Python, "pkg/m.py", &p, "{python}"), None);
        let p = plan(&["tests::adds"], "", true);
        assert_eq!(
            expand(Language::Rust, "src/lib.rs", &p, "{tests}").unwrap(),
            ["tests::adds", "f"]
        );
        let p = plan(&["UtilTest#a", "OtherTest#c", "UtilTest#b"], "", false);
        assert_eq!(
            expand(Language::Java, "U.java", &p, "-Dtest={tests}").unwrap(),
            ["-Dtest=UtilTest#a+b,OtherTest#c"]
        );
        assert_eq!(
            expand(Language::Java, "U.java", &p, "{tests}").unwrap(),
            Vec::<String>::new()
        );
        // No settings configured and none in the cache dir: nothing.
        assert_eq!(
            expand(Language::Java, "U.java", &p, "{settings}").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(expand(Language::Java, "U.java", &p, "test"), None);
    }

    #[test]
    fn generated_tests_go_where_each_runner_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let py = for_language(Language::Python)
            .generated_tests(
                &req(root, Language::Python, "src/pkg/m.py", "f"),
                "",
                "def test_one():\n    assert f() == 1\n",
            )
            .unwrap();
        let (rel, text) = py.file.unwrap();
        assert_eq!(rel, "test_codeforge_generated.py");
        assert!(text.contains("from pkg.m import f  # noqa\n"), "{text}");
        assert_eq!(py.tests[0].id, "test_codeforge_generated.py::test_one");
        assert_eq!(py.tests[0].reason, TestReason::Generated);
        assert!(py.appended.is_none());

        let rs = for_language(Language::Rust)
            .generated_tests(
                &req(root, Language::Rust, "src/lib.rs", "f"),
                "",
                "#[test]\nfn test_one() { assert_eq!(f(), 1); }\n",
            )
            .unwrap();
        assert!(
            rs.appended
                .unwrap()
                .contains("mod codeforge_generated_tests {")
        );
        assert_eq!(rs.tests[0].id, "codeforge_generated_tests::test_one");
        assert_eq!(rs.tests[0].file, "src/lib.rs");

        std::fs::create_dir_all(root.join("app/src/main/java/com/acme")).unwrap();
        std::fs::write(
            root.join("app/src/main/java/com/acme/Util.java"),
            "package com.acme;\nimport java.util.List;\npublic class Util {}\n",
        )
        .unwrap();
        let java = for_language(Language::Java)
            .generated_tests(
                &req(
                    root,
                    Language::Java,
                    "app/src/main/java/com/acme/Util.java",
                    "f",
                ),
                "app",
                "@Test\nvoid checksOne() { assertEquals(1, Util.f()); }\n",
            )
            .unwrap();
        let (rel, text) = java.file.unwrap();
        assert_eq!(
            rel,
            "app/src/test/java/com/acme/CodeforgeGeneratedTest.java"
        );
        assert!(
            text.starts_with("package com.acme;\n\nimport java.util.List;"),
            "{text}"
        );
        assert_eq!(java.tests[0].id, "CodeforgeGeneratedTest#checksOne");

        let none = for_language(Language::Rust).generated_tests(
            &req(root, Language::Rust, "src/lib.rs", "f"),
            "",
            "fn helper() {}\n",
        );
        assert!(none.is_err());
    }
}
