//! `cargo test` (Rust): tests are named by their module path (`tests::adds`) and filtered by
//! libtest's substring match; doc-tests run under the function's name; model-written tests go
//! into a `#[cfg(test)]` module appended to the candidate's file.

use super::{ExpandCtx, GeneratedTests, Runner, generated_selection, generated_test_names};
use crate::report::TestResult;
use crate::request::VerifyRequest;
use crate::selected::SelectedTest;

pub(crate) struct Cargo;

/// The module that holds model-written Rust tests.
const GENERATED_MODULE: &str = "codeforge_generated_tests";

impl Runner for Cargo {
    fn test_id(&self, _rel_path: &str, chain: Vec<String>, name: &str) -> String {
        let mut parts = chain;
        parts.push(name.to_string());
        parts.join("::")
    }

    fn expand(&self, token: &str, ctx: &ExpandCtx) -> Option<Vec<String>> {
        if token != "{tests}" {
            return None;
        }
        let mut out: Vec<String> = ctx.plan.tests.iter().map(|t| t.id.clone()).collect();
        if ctx.plan.doctests {
            out.push(ctx.req.name.clone());
        }
        Some(out)
    }

    fn is_result_of(&self, t: &SelectedTest, r: &TestResult) -> bool {
        r.name == t.id || r.name.ends_with(&format!("::{}", t.id))
    }

    fn is_doctest_of(&self, name: &str, r: &TestResult) -> bool {
        r.name.contains(" - ") && r.name.contains(name)
    }

    /// libtest's own name (`tests::adds`), shown as its last segment.
    fn selection_of(&self, r: &TestResult) -> Option<(String, String)> {
        if r.name.contains(" - ") || r.name.is_empty() {
            return None;
        }
        let short = r.name.rsplit("::").next().unwrap_or(&r.name).to_string();
        Some((r.name.clone(), short))
    }

    fn generated_tests(
        &self,
        req: &VerifyRequest,
        _project_dir: &str,
        code: &str,
    ) -> Result<GeneratedTests, String> {
        let names = generated_test_names(req.language, "generated", code, false)?;
        let indented: String = code.lines().map(|l| format!("    {l}\n")).collect();
        Ok(GeneratedTests {
            appended: Some(format!(
                "\n#[cfg(test)]\nmod {GENERATED_MODULE} {{\n    #[allow(unused_imports)]\n    use super::*;\n{indented}}}\n"
            )),
            file: None,
            tests: generated_selection(&names, &req.rel_path, |n| {
                format!("{GENERATED_MODULE}::{n}")
            }),
        })
    }
}
