//! pytest (Python): tests are named by node id (`tests/test_x.py::TestX::test_y`); doc examples run
//! with `--doctest-modules`; model-written tests go into a test module at the workspace root; the
//! interpreter is the configured one, the workspace's virtualenv, or CodeForge's own (bootstrapped
//! with pytest on first use); candidates are compared by `grammars/python/probe.py`; the tests
//! that reach the target are found by `grammars/python/reach.py`.

use std::path::Path;

use codeforge_config::VerifySettings;
use codeforge_syntax::module_path;

use super::{
    ExpandCtx, GeneratedTests, Runner, base_name, generated_selection, generated_test_names,
};
use crate::report::TestResult;
use crate::request::{VerifyError, VerifyRequest};
use crate::selected::SelectedTest;

pub(crate) struct Pytest;

/// The behaviour probe run on Python candidates that pass every selected test.
const PROBE: &str = include_str!("../../grammars/python/probe.py");

/// Records which collected tests enter the target (coverage of one code object).
const REACH: &str = include_str!("../../grammars/python/reach.py");

/// The test module that holds model-written tests, at the workspace root.
const GENERATED_FILE: &str = "test_codeforge_generated.py";

impl Runner for Pytest {
    fn test_id(&self, rel_path: &str, chain: Vec<String>, name: &str) -> String {
        let mut parts = vec![rel_path.to_string()];
        parts.extend(chain);
        parts.push(name.to_string());
        parts.join("::")
    }

    fn interpreter(
        &self,
        req: &VerifyRequest,
        notes: &mut Vec<String>,
    ) -> Result<Option<String>, VerifyError> {
        python_for(&req.root, &req.cache_dir, &req.settings, notes).map(Some)
    }

    fn expand(&self, token: &str, ctx: &ExpandCtx) -> Option<Vec<String>> {
        if token != "{tests}" {
            return None;
        }
        let plan = ctx.plan;
        let prefix = format!("{}/", plan.project_dir);
        let mut out: Vec<String> = plan
            .tests
            .iter()
            .map(|t| {
                if plan.project_dir.is_empty() {
                    t.id.clone()
                } else {
                    t.id.strip_prefix(&prefix).unwrap_or(&t.id).to_string()
                }
            })
            .collect();
        if plan.doctests {
            out.push("--doctest-modules".into());
            out.push(ctx.req.rel_path_from(ctx.project_dir));
        }
        Some(out)
    }

    fn is_result_of(&self, t: &SelectedTest, r: &TestResult) -> bool {
        base_name(r).rsplit('.').next() == Some(t.name.as_str())
    }

    fn is_doctest_of(&self, name: &str, r: &TestResult) -> bool {
        base_name(r).rsplit('.').next() == Some(name)
    }

    fn generated_tests(
        &self,
        req: &VerifyRequest,
        _project_dir: &str,
        code: &str,
    ) -> Result<GeneratedTests, String> {
        let names = generated_test_names(req.language, "generated", code, false)?;
        let module = module_path(req.language, &req.rel_path).join(".");
        let header = format!(
            "import os as _os, sys as _sys\n_here = _os.path.dirname(_os.path.abspath(__file__))\nfor _p in (_os.path.join(_here, 'src'), _here):\n    if _p not in _sys.path:\n        _sys.path.insert(0, _p)\nfrom {module} import *  # noqa\nfrom {module} import {name}  # noqa\n\n",
            name = req.name
        );
        Ok(GeneratedTests {
            appended: None,
            file: Some((GENERATED_FILE.to_string(), format!("{header}{code}\n"))),
            tests: generated_selection(&names, GENERATED_FILE, |n| {
                format!("{GENERATED_FILE}::{n}")
            }),
        })
    }

    fn probe_script(&self) -> Option<&'static str> {
        Some(PROBE)
    }

    fn reach_script(&self) -> Option<&'static str> {
        Some(REACH)
    }
}

fn has_pytest(python: &Path) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import pytest"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a virtualenv has pytest installed (`lib/python*/site-packages/pytest`), read from
/// disk without running anything.
fn venv_has_pytest(venv: &Path) -> bool {
    ["lib", "lib64"].iter().any(|lib| {
        std::fs::read_dir(venv.join(lib))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().starts_with("python")
                    && e.path().join("site-packages/pytest").is_dir()
            })
    })
}

/// The interpreter to test Python with: configured, the workspace's virtualenv (if it has pytest),
/// else CodeForge's own virtualenv in the cache dir (created with pytest on first use).
fn python_for(
    root: &Path,
    cache_dir: &Path,
    settings: &VerifySettings,
    notes: &mut Vec<String>,
) -> Result<String, VerifyError> {
    if let Some(p) = &settings.python {
        return Ok(p.to_string_lossy().into_owned());
    }
    for v in [".venv", "venv"] {
        let p = root.join(v).join("bin/python");
        // The workspace's interpreter is the workspace's code: never started outside the
        // sandbox, so pytest is looked for on disk.
        if p.is_file() && venv_has_pytest(&root.join(v)) {
            return Ok(p.to_string_lossy().into_owned());
        }
    }
    let venv = cache_dir.join("venv");
    let py = venv.join("bin/python");
    if py.is_file() && has_pytest(&py) {
        return Ok(py.to_string_lossy().into_owned());
    }
    notes.push(format!("installed pytest into {}", venv.display()));
    let ok = std::process::Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pytest",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if ok && has_pytest(&py) {
        Ok(py.to_string_lossy().into_owned())
    } else {
        Err(VerifyError::Setup(format!(
            "pytest is not available: configure verify.python, or run `python3 -m venv {0} && {0}/bin/pip install pytest`",
            venv.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_virtualenv_is_checked_for_pytest_without_running_it() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join(".venv");
        std::fs::create_dir_all(venv.join("lib/python3.11/site-packages/requests")).unwrap();
        assert!(!venv_has_pytest(&venv));
        std::fs::create_dir_all(venv.join("lib/python3.11/site-packages/pytest")).unwrap();
        assert!(venv_has_pytest(&venv));
    }
}
