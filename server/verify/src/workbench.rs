//! A verification workbench for one target function: the synced scratch copy, the detected
//! project and runner (from `[verify]` in `grammars/<lang>/language.toml`), the selected tests,
//! and `run(candidate_source)`, which writes the candidate into the scratch copy, runs the cheap
//! gate and the tests, and returns structured results. Never touches the user's tree.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codeforge_config::VerifySettings;
use codeforge_syntax::{Language, module_path};
use serde::Serialize;

use crate::process::{Isolation, Job, run};
use crate::report::{TestResult, Verdict, clip, parse_junit, parse_libtest};
use crate::scratch::{Scratch, ScratchError, scratch_base, source_files};
use crate::select::{SelectedTest, has_doc_examples, select_tests};

/// The behaviour probe run on Python candidates that pass every selected test.
const PYTHON_PROBE: &str = include_str!("../../../grammars/python/probe.py");

/// Most files a workspace may have for verification to copy it.
const MAX_FILES: usize = 50_000;
/// Test files read when selecting (others are skipped unless they name the target).
const MAX_TEST_FILE: u64 = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The project cannot be tested here (Gradle, no Cargo.toml, …); the message says why.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    #[error("{0}")]
    Setup(String),
}

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// Workspace root (absolute).
    pub root: PathBuf,
    /// The target's file, workspace-relative.
    pub rel_path: String,
    pub language: Language,
    pub name: String,
    /// The enclosing type's name (Java class, Python class, Rust impl target), if any.
    pub class: Option<String>,
    pub doc: Option<String>,
    pub cache_dir: PathBuf,
    pub settings: VerifySettings,
}

/// The outcome of running one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// It parsed/compiled (the gate, or the build step of the test run).
    pub compiled: bool,
    pub results: Vec<TestResult>,
    pub passed: usize,
    pub failed: usize,
    pub timed_out: bool,
    /// Tail of the runner's output (for `--explain` and refinement when nothing was parsed).
    pub output: String,
    pub elapsed_ms: u64,
    pub sandbox: String,
    /// Compiler warnings in the run's output (`warning_prefixes` in the grammars data).
    pub warnings: usize,
}

/// Compiler warnings in a runner's output: lines starting with one of `prefixes`, less the
/// summaries (`warning: `x` (lib) generated 2 warnings`).
pub fn count_warnings(prefixes: &[String], output: &str) -> usize {
    output
        .lines()
        .map(str::trim_start)
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p.as_str())))
        .filter(|l| !(l.contains(" generated ") && l.contains(" warning")))
        .count()
}

impl RunReport {
    pub fn all_passed(&self) -> bool {
        self.compiled && self.failed == 0 && self.passed > 0 && !self.timed_out
    }
    /// The failing tests' messages, for a refinement prompt.
    pub fn failure_text(&self, max: usize) -> String {
        let mut s = String::new();
        if !self.compiled {
            s.push_str("It does not compile:\n");
            s.push_str(&clip(&self.output, max));
            return s;
        }
        if self.timed_out {
            s.push_str("The tests timed out (an infinite loop?).\n");
        }
        for r in self
            .results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Failed | Verdict::Error))
        {
            s.push_str(&format!("FAILED {}:\n{}\n\n", r.name, r.message));
        }
        if s.is_empty() {
            s = clip(&self.output, max);
        }
        clip(&s, max)
    }
}

/// How the tests will run, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestPlan {
    pub runner: String,
    /// Directory (workspace-relative) the runner runs in.
    pub project_dir: String,
    pub tests: Vec<SelectedTest>,
    pub doctests: bool,
    /// Tests came from the model (no workspace test exists).
    pub generated: bool,
    pub notes: Vec<String>,
}

pub struct Workbench {
    req: VerifyRequest,
    scratch: Scratch,
    base: PathBuf,
    plan: TestPlan,
    project_dir: PathBuf,
    python: Option<String>,
    /// Rust: generated tests appended to the candidate's file.
    rust_generated: Option<String>,
    /// Python and Java: the generated test file, path relative to the root (rewritten after
    /// every sync).
    generated_file: Option<(String, String)>,
}

/// Finds the runner's project directory for `rel` (nearest detect file upwards, inside `root`).
/// The package a Java file declares (`""` for the default package).
fn java_package(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim_end_matches(';').trim().to_string())
        .unwrap_or_default()
}

/// A JUnit 4 test class holding the model's test methods: in the target's package, with the
/// target file's imports, JUnit's, and any the model wrote. The methods are taken out of a class
/// when the model wrote one anyway, and made `public` (JUnit 4 runs only those).
fn java_test_class(target: &str, package: &str, code: &str) -> String {
    let mut imports: Vec<String> = target
        .lines()
        .chain(code.lines())
        .map(str::trim)
        .filter(|l| l.starts_with("import ") && l.ends_with(';'))
        .map(str::to_string)
        .collect();
    imports.push("import org.junit.Test;".into());
    imports.push("import static org.junit.Assert.*;".into());
    imports.dedup();
    let members = java_members(code);
    let package = if package.is_empty() {
        String::new()
    } else {
        format!("package {package};\n\n")
    };
    format!(
        "{package}{}\n\npublic class {JAVA_GENERATED_CLASS} {{\n{members}\n}}\n",
        imports.join("\n")
    )
}

/// The class that holds model-written Java tests.
const JAVA_GENERATED_CLASS: &str = "CodeforgeGeneratedTest";

/// The members of the class the model wrote (or its code when it wrote bare methods), without
/// package and import lines, test methods made `public`.
fn java_members(code: &str) -> String {
    let body = match code
        .find("class ")
        .and_then(|c| code[c..].find('{').map(|b| c + b))
    {
        Some(open) => match code.rfind('}') {
            Some(close) if close > open => &code[open + 1..close],
            _ => &code[open + 1..],
        },
        None => code,
    };
    body.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("import ") || t.starts_with("package "))
        })
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            let t = t
                .strip_prefix("private ")
                .or_else(|| t.strip_prefix("protected "))
                .unwrap_or(t);
            if t.starts_with("void ") || t.starts_with("static void ") {
                format!("{indent}public {t}")
            } else if let Some(rest) = t.strip_prefix("@Test void ") {
                format!("{indent}@Test public void {rest}")
            } else {
                format!("{indent}{t}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn detect_project(root: &Path, rel: &str, lang: Language) -> Result<PathBuf, VerifyError> {
    let spec = &lang.spec().verify;
    let file = root.join(rel);
    let mut dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.to_path_buf());
    loop {
        for u in &spec.unsupported {
            if let [f, msg] = u.as_slice()
                && dir.join(f).is_file()
                && !spec.detect.iter().any(|d| dir.join(d).is_file())
            {
                return Err(VerifyError::Unsupported(format!("{msg} (found {f})")));
            }
        }
        if spec.detect.iter().any(|d| dir.join(d).is_file()) {
            return Ok(dir);
        }
        if dir == root || !dir.starts_with(root) {
            break;
        }
        if !dir.pop() {
            break;
        }
    }
    if spec.required {
        Err(VerifyError::Unsupported(format!(
            "no {} found above {rel}: CodeForge runs {} tests with {}",
            spec.detect.join(" or "),
            lang.name(),
            spec.runner
        )))
    } else {
        Ok(root.to_path_buf())
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

fn cargo_home(home: &str) -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(home).join(".cargo"))
}

fn rustup_home(home: &str) -> PathBuf {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(home).join(".rustup"))
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

impl Workbench {
    /// Syncs the scratch copy, detects the project and selects the tests (blocking: run it off
    /// the async runtime). Holds the workspace's verification lock until dropped.
    pub fn prepare(req: VerifyRequest) -> Result<Workbench, VerifyError> {
        let support = crate::sandbox::support();
        if support.level < crate::sandbox::Level::from(req.settings.sandbox) {
            return Err(VerifyError::Setup(format!(
                "tests not run: this machine gives {}. To run them anyway, set verify.sandbox = \"{}\" in ~/.config/codeforge/config.toml",
                support.summary(),
                support.level.as_str()
            )));
        }
        let lang = req.language;
        let spec = &lang.spec().verify;
        let project_dir = detect_project(&req.root, &req.rel_path, lang)?;
        let mut notes = Vec::new();
        let python = if lang == Language::Python {
            Some(python_for(
                &req.root,
                &req.cache_dir,
                &req.settings,
                &mut notes,
            )?)
        } else {
            None
        };
        let base = scratch_base(&req.cache_dir, &req.root);
        let scratch = Scratch::sync(&req.root, &base, MAX_FILES)?;
        // Candidate test files: same language, small enough, read from the scratch copy.
        let exts = &lang.spec().extensions;
        let files: Vec<(String, String)> = source_files(&scratch.tree, MAX_FILES)?
            .into_iter()
            .filter(|r| {
                r.rsplit_once('.')
                    .is_some_and(|(_, e)| exts.iter().any(|x| x == e))
            })
            .filter(|r| {
                std::fs::metadata(scratch.tree.join(r)).is_ok_and(|m| m.len() <= MAX_TEST_FILE)
            })
            .filter_map(|r| {
                std::fs::read_to_string(scratch.tree.join(&r))
                    .ok()
                    .map(|t| (r, t))
            })
            .collect();
        let tests = select_tests(
            lang,
            &req.rel_path,
            &req.name,
            req.class.as_deref(),
            &files,
            req.settings.max_tests,
        );
        let doctests = has_doc_examples(lang, req.doc.as_deref());
        let plan = TestPlan {
            runner: spec.runner.clone(),
            project_dir: project_dir
                .strip_prefix(&req.root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            tests,
            doctests,
            generated: false,
            notes,
        };
        Ok(Workbench {
            req,
            scratch,
            base,
            plan,
            project_dir,
            python,
            rust_generated: None,
            generated_file: None,
        })
    }

    pub fn plan(&self) -> &TestPlan {
        &self.plan
    }

    /// Whether anything can be run.
    pub fn has_tests(&self) -> bool {
        !self.plan.tests.is_empty() || self.plan.doctests
    }

    /// Whether some selected test exercises the target itself (by name, or its doc examples);
    /// module tests that never call it are weak evidence.
    pub fn has_direct_tests(&self) -> bool {
        self.plan.doctests || self.plan.tests.iter().any(|t| t.reason == "references")
    }

    /// Leaves only the tests that call the target (and its doc examples) selected.
    pub fn keep_only_direct_tests(&mut self) {
        self.plan.tests.retain(|t| t.reason == "references");
    }

    /// Adds model-written tests (a code block's content) when no workspace test calls the target.
    /// Python: a test module beside the workspace root; Rust: a test module appended to the
    /// candidate's file; Java: a JUnit 4 class `CodeforgeGeneratedTest` in the target's package
    /// under `src/test/java`.
    pub fn set_generated_tests(&mut self, code: &str) -> Result<usize, String> {
        let lang = self.req.language;
        // Java: the model's methods go into a test class of their own, in the target's package.
        let target = match lang {
            Language::Java => {
                std::fs::read_to_string(self.req.root.join(&self.req.rel_path)).unwrap_or_default()
            }
            _ => String::new(),
        };
        let package = java_package(&target);
        let java = (lang == Language::Java).then(|| java_test_class(&target, &package, code));
        let (code, file_name) = match &java {
            Some(c) => (c.as_str(), format!("{JAVA_GENERATED_CLASS}.java")),
            None => (code, "generated".to_string()),
        };
        let ex = codeforge_syntax::extract(lang, &file_name, code);
        let names: Vec<String> = ex
            .symbols
            .iter()
            .filter(|s| {
                (s.name.starts_with("test") || (lang == Language::Java && s.is_test))
                    && matches!(
                        s.kind,
                        codeforge_syntax::SymbolKind::Function
                            | codeforge_syntax::SymbolKind::Method
                    )
            })
            .map(|s| s.name.clone())
            .collect();
        if names.is_empty() || ex.has_errors {
            return Err("the model's tests do not parse or hold no test function".into());
        }
        // No workspace test calls the target: its module's other tests say nothing about it.
        self.plan.tests.retain(|t| t.reason == "references");
        match lang {
            Language::Python => {
                let module = module_path(lang, &self.req.rel_path).join(".");
                let rel = "test_codeforge_generated.py".to_string();
                let header = format!(
                    "import os as _os, sys as _sys\n_here = _os.path.dirname(_os.path.abspath(__file__))\nfor _p in (_os.path.join(_here, 'src'), _here):\n    if _p not in _sys.path:\n        _sys.path.insert(0, _p)\nfrom {module} import *  # noqa\nfrom {module} import {name}  # noqa\n\n",
                    name = self.req.name
                );
                self.generated_file = Some((rel.clone(), format!("{header}{code}\n")));
                self.plan.tests.extend(names.iter().map(|n| SelectedTest {
                    id: format!("{rel}::{n}"),
                    name: n.clone(),
                    file: rel.clone(),
                    reason: "generated",
                }));
            }
            Language::Rust => {
                let indented: String = code.lines().map(|l| format!("    {l}\n")).collect();
                self.rust_generated = Some(format!(
                    "\n#[cfg(test)]\nmod codeforge_generated_tests {{\n    #[allow(unused_imports)]\n    use super::*;\n{indented}}}\n"
                ));
                let file = self.req.rel_path.clone();
                self.plan.tests.extend(names.iter().map(|n| SelectedTest {
                    id: format!("codeforge_generated_tests::{n}"),
                    name: n.clone(),
                    file: file.clone(),
                    reason: "generated",
                }));
            }
            Language::Java => {
                let mut rel = self.plan.project_dir.clone();
                if !rel.is_empty() {
                    rel.push('/');
                }
                rel.push_str("src/test/java/");
                if !package.is_empty() {
                    rel.push_str(&package.replace('.', "/"));
                    rel.push('/');
                }
                rel.push_str(&file_name);
                self.generated_file = Some((rel.clone(), code.to_string()));
                self.plan.tests.extend(names.iter().map(|n| SelectedTest {
                    id: format!("{JAVA_GENERATED_CLASS}#{n}"),
                    name: n.clone(),
                    file: rel.clone(),
                    reason: "generated",
                }));
            }
        }
        self.plan.generated = true;
        Ok(names.len())
    }

    fn env(&self) -> Vec<(String, String)> {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let m2 = self.base.join("m2");
        vec![
            (
                "HOME".to_string(),
                self.scratch.home.to_string_lossy().into_owned(),
            ),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("PYTHONHASHSEED".into(), "0".into()),
            (
                "CARGO_TARGET_DIR".into(),
                self.base
                    .join("cargo-target")
                    .to_string_lossy()
                    .into_owned(),
            ),
            ("CARGO_TERM_COLOR".into(), "never".into()),
            ("RUST_BACKTRACE".into(), "0".into()),
            (
                "CARGO_HOME".into(),
                cargo_home(&home).to_string_lossy().into_owned(),
            ),
            (
                "RUSTUP_HOME".into(),
                rustup_home(&home).to_string_lossy().into_owned(),
            ),
            // Maven's local repository is the scratch copy's own (the user's stays read-only).
            (
                "MAVEN_OPTS".into(),
                format!("-Dmaven.repo.local={}", m2.join("repository").display()),
            ),
        ]
    }

    /// The sandbox of this workspace's runs: the scratch copy (shown where the workspace is) and
    /// the build outputs writable; home and workspace hidden; toolchains and the interpreter's
    /// virtualenv read-only.
    fn isolation(&self) -> Isolation {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let mount_point = self.base.join("sandbox-root");
        let cargo_target = self.base.join("cargo-target");
        let m2 = self.base.join("m2");
        for d in [&mount_point, &cargo_target, &m2] {
            let _ = std::fs::create_dir_all(d);
        }
        let mut read_only = vec![
            cargo_home(&home),
            rustup_home(&home),
            PathBuf::from(&home).join(".m2/repository"),
        ];
        if let Some(py) = &self.python {
            let py = Path::new(py);
            // `<venv>/bin/python`: the virtualenv, and the interpreter it points at.
            if let Some(venv) = py.parent().and_then(Path::parent) {
                read_only.push(venv.to_path_buf());
            }
            if let Some(prefix) = std::fs::canonicalize(py)
                .ok()
                .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf))
                .filter(|p| p.components().count() > 2)
            {
                read_only.push(prefix);
            }
        }
        let mut iso = Isolation::for_scratch(
            mount_point,
            self.req.root.clone(),
            self.scratch.tree.clone(),
            vec![cargo_target, m2],
            read_only,
            self.req.settings.network,
        );
        iso.pass_env = self.req.settings.pass_env.clone();
        // Other workspaces' scratch copies and indexes stay out of view.
        iso.policy.hidden.push(self.req.cache_dir.clone());
        iso.minimum = self.req.settings.sandbox.into();
        iso
    }

    fn expand(&self, template: &[String], file: &str, report: &str) -> Vec<String> {
        let mut out = Vec::new();
        let lang = self.req.language;
        for t in template {
            match t.as_str() {
                "{tests}" => match lang {
                    Language::Python => {
                        let prefix = format!("{}/", self.plan.project_dir);
                        out.extend(self.plan.tests.iter().map(|t| {
                            if self.plan.project_dir.is_empty() {
                                t.id.clone()
                            } else {
                                t.id.strip_prefix(&prefix).unwrap_or(&t.id).to_string()
                            }
                        }));
                        if self.plan.doctests {
                            out.push("--doctest-modules".into());
                            out.push(self.req.rel_path_from(&self.project_dir));
                        }
                    }
                    Language::Rust => {
                        out.extend(self.plan.tests.iter().map(|t| t.id.clone()));
                        if self.plan.doctests {
                            out.push(self.req.name.clone());
                        }
                    }
                    Language::Java => {}
                },
                "{settings}" => {
                    // Configured, else the offline settings `.ci/setup` writes into the cache dir.
                    let default = self.req.cache_dir.join("maven-settings.xml");
                    let s = self
                        .req
                        .settings
                        .maven_settings
                        .clone()
                        .or_else(|| default.is_file().then_some(default));
                    if let Some(s) = s {
                        // A copy beside the scratch copy's Maven repository: the cache dir is
                        // hidden from the run.
                        let copy = self.base.join("m2").join("settings.xml");
                        let _ = std::fs::create_dir_all(self.base.join("m2"));
                        let used = match std::fs::copy(&s, &copy) {
                            Ok(_) => copy,
                            Err(_) => s,
                        };
                        out.push("-s".into());
                        out.push(used.to_string_lossy().into_owned());
                    }
                }
                _ if t.contains("{tests}") => {
                    // Surefire: `Cls#m1+m2,Cls2#m3`.
                    let mut classes: Vec<(String, Vec<String>)> = Vec::new();
                    for s in &self.plan.tests {
                        let (c, m) = s.id.split_once('#').unwrap_or((&s.id, ""));
                        match classes.iter_mut().find(|(k, _)| k == c) {
                            Some((_, ms)) => ms.push(m.to_string()),
                            None => classes.push((c.to_string(), vec![m.to_string()])),
                        }
                    }
                    let filter = classes
                        .iter()
                        .map(|(c, ms)| format!("{c}#{}", ms.join("+")))
                        .collect::<Vec<_>>()
                        .join(",");
                    out.push(t.replace("{tests}", &filter));
                }
                _ => out.push(
                    t.replace("{python}", self.python.as_deref().unwrap_or("python3"))
                        .replace("{file}", file)
                        .replace("{report}", report),
                ),
            }
        }
        out
    }

    /// Re-syncs the scratch copy (undoing what the previous candidate did) and writes `text` as
    /// the target's file, plus any generated tests.
    async fn reset(&mut self, text: &str) -> Result<(), String> {
        let root = self.req.root.clone();
        // Unchanged files are skipped by size and mtime, so this is quick after the first sync.
        self.scratch.refresh(&root).map_err(|e| e.to_string())?;
        self.scratch
            .write(&self.req.rel_path, text)
            .map_err(|e| e.to_string())?;
        if let Some((rel, code)) = &self.generated_file {
            self.scratch.write(rel, code).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Whether candidates can be compared by behaviour (Python: `grammars/python/probe.py`).
    pub fn can_probe(&self) -> bool {
        self.req.language == Language::Python
            && self.python.is_some()
            && !self.plan.tests.is_empty()
    }

    /// The candidate's behaviour fingerprint on inputs derived from the selected tests' calls
    /// (the same inputs for every candidate); `None` when it could not be computed.
    pub async fn probe(&mut self, source: &str) -> Option<String> {
        if !self.can_probe() {
            return None;
        }
        self.reset(source).await.ok()?;
        let script = self.scratch.report_dir.join("probe.py");
        std::fs::write(&script, PYTHON_PROBE).ok()?;
        let mut args = vec![
            script.to_string_lossy().into_owned(),
            "--root".into(),
            self.scratch.tree.to_string_lossy().into_owned(),
            "--module-file".into(),
            self.req.rel_path.clone(),
            "--function".into(),
            self.req.name.clone(),
        ];
        let mut files: Vec<&str> = self.plan.tests.iter().map(|t| t.file.as_str()).collect();
        files.dedup();
        for f in files {
            args.push("--tests".into());
            args.push(f.to_string());
        }
        let job = Job {
            program: self.python.clone()?,
            args,
            cwd: self.scratch.tree.clone(),
            env: self.env(),
            timeout: Duration::from_secs(120),
            max_output: 256 * 1024,
            report_fd: false,
        };
        let iso = self.isolation();
        let out = run(&job, &iso).await.ok()?;
        let line = out
            .output
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))?;
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        v.get("fingerprint")?.as_str().map(str::to_string)
    }

    /// Whether a runner's result is the selected test `t`.
    fn matches(&self, t: &SelectedTest, r: &TestResult) -> bool {
        let base = r.name.split('[').next().unwrap_or(&r.name);
        match self.req.language {
            Language::Python => base.rsplit('.').next() == Some(t.name.as_str()),
            Language::Rust => r.name == t.id || r.name.ends_with(&format!("::{}", t.id)),
            Language::Java => {
                let (c, m) = t.id.split_once('#').unwrap_or((&t.id, ""));
                base.ends_with(&format!("{c}.{m}"))
            }
        }
    }

    /// Whether a runner's result belongs to the selection (filters may match more).
    fn selected(&self, r: &TestResult) -> bool {
        let base = r.name.split('[').next().unwrap_or(&r.name);
        let doctest_hit = self.plan.doctests
            && match self.req.language {
                Language::Python => base.rsplit('.').next() == Some(self.req.name.as_str()),
                Language::Rust => r.name.contains(" - ") && r.name.contains(&self.req.name),
                Language::Java => false,
            };
        doctest_hit || self.plan.tests.iter().any(|t| self.matches(t, r))
    }

    /// Runs the selected tests that do not call the target on the file as it is (the stub in
    /// place) and leaves out those that already fail: they fail for reasons the candidate cannot
    /// fix (another stub in the module, a broken fixture). Returns the names left out.
    pub async fn drop_tests_failing_without_it(&mut self, original: &str) -> Vec<String> {
        let others: Vec<SelectedTest> = self
            .plan
            .tests
            .iter()
            .filter(|t| t.reason != "references" && t.reason != "generated")
            .cloned()
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let saved = (
            self.plan.tests.clone(),
            self.plan.doctests,
            self.rust_generated.take(),
            self.generated_file.take(),
        );
        self.plan.tests = others.clone();
        self.plan.doctests = false;
        let report = self.run(original).await;
        (
            self.plan.tests,
            self.plan.doctests,
            self.rust_generated,
            self.generated_file,
        ) = saved;
        if !report.compiled || report.timed_out {
            return Vec::new();
        }
        let failing: Vec<SelectedTest> = others
            .into_iter()
            .filter(|t| {
                !report
                    .results
                    .iter()
                    .any(|r| self.matches(t, r) && r.verdict == Verdict::Passed)
            })
            .collect();
        self.plan.tests.retain(|t| !failing.contains(t));
        failing.iter().map(|t| t.name.clone()).collect()
    }

    /// Puts `source` (the whole file with the candidate in place) into the scratch copy and runs
    /// the gate and the selected tests. Dropping the future kills the run.
    pub async fn run(&mut self, source: &str) -> RunReport {
        let start = Instant::now();
        let lang = self.req.language;
        let spec = &lang.spec().verify;
        let mut text = source.to_string();
        if let Some(extra) = &self.rust_generated {
            text.push_str(extra);
        }
        let n_tests = self.plan.tests.len().max(1);
        let failed_report = |output: String, sandbox: String| RunReport {
            compiled: false,
            results: Vec::new(),
            passed: 0,
            failed: n_tests,
            timed_out: false,
            output: clip(&output, 6000),
            elapsed_ms: start.elapsed().as_millis() as u64,
            sandbox,
            warnings: 0,
        };
        if let Err(e) = self.reset(&text).await {
            return failed_report(
                format!("could not prepare the scratch copy: {e}"),
                String::new(),
            );
        }
        let iso = self.isolation();
        let timeout = Duration::from_secs(self.req.settings.test_timeout_s);
        let file_abs = self
            .scratch
            .tree
            .join(&self.req.rel_path)
            .to_string_lossy()
            .into_owned();
        // The runner's report goes to fd 3, a pipe only CodeForge reads: a file the candidate
        // could write does not count.
        let report_path = PathBuf::from("/dev/fd/3");
        let rel_project = self
            .project_dir
            .strip_prefix(&self.req.root)
            .unwrap_or(Path::new(""));
        let cwd = self.scratch.tree.join(rel_project);
        let job = |argv: Vec<String>| Job {
            program: argv.first().cloned().unwrap_or_default(),
            args: argv.into_iter().skip(1).collect(),
            cwd: cwd.clone(),
            env: self.env(),
            timeout,
            max_output: 64 * 1024,
            report_fd: spec.report == "junit",
        };
        if !spec.check.is_empty() {
            let argv = self.expand(&spec.check, &file_abs, "");
            match run(&job(argv), &iso).await {
                Ok(o) if o.exit_code == Some(0) => {}
                Ok(o) => return failed_report(o.output, o.sandbox),
                Err(e) => {
                    return failed_report(
                        format!("could not run {}: {e}", spec.check[0]),
                        String::new(),
                    );
                }
            }
        }
        let argv = self.expand(&spec.test, &file_abs, &report_path.to_string_lossy());
        let out = match run(&job(argv.clone()), &iso).await {
            Ok(o) => o,
            Err(e) => {
                return failed_report(
                    format!("could not run `{}`: {e}", argv.join(" ")),
                    String::new(),
                );
            }
        };
        let mut results = match spec.report.as_str() {
            "junit" => parse_junit(&String::from_utf8_lossy(&out.report)),
            "libtest" => parse_libtest(&out.output),
            "surefire" => {
                // Maven wrote into the run's overlay when there was one.
                let dir = match &out.writes_in {
                    Some(upper) => upper.join(rel_project).join("target/surefire-reports"),
                    None => cwd.join("target/surefire-reports"),
                };
                let mut all = String::new();
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("TEST-"))
                    {
                        all.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                    }
                }
                // Reports of this run only: Surefire rewrites them each run; clear them for the next.
                let _ = std::fs::remove_dir_all(&dir);
                parse_junit(&all)
            }
            other => {
                return failed_report(
                    format!("unknown report kind `{other}` in grammars data"),
                    out.sandbox,
                );
            }
        };
        results.retain(|r| self.selected(r));
        let passed = results
            .iter()
            .filter(|r| r.verdict == Verdict::Passed)
            .count();
        let mut failed = results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Failed | Verdict::Error))
            .count();
        // Nothing ran and the runner failed: a build or collection error.
        let compiled = !(results.is_empty() && out.exit_code != Some(0) && !out.timed_out);
        if results.is_empty() {
            failed = self.plan.tests.len().max(1);
        }
        RunReport {
            compiled,
            results,
            passed,
            failed,
            timed_out: out.timed_out,
            warnings: count_warnings(&spec.warning_prefixes, &out.output),
            output: clip(&out.output, 6000),
            elapsed_ms: start.elapsed().as_millis() as u64,
            sandbox: out.sandbox,
        }
    }
}

impl VerifyRequest {
    /// The target's path relative to the runner's project directory.
    fn rel_path_from(&self, project_dir: &Path) -> String {
        let abs = self.root.join(&self.rel_path);
        abs.strip_prefix(project_dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| self.rel_path.clone())
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

    #[test]
    fn compiler_warnings_are_counted_without_their_summaries() {
        let cargo = "   Compiling demo v0.1.0\nwarning: unused variable: `x`\n --> src/lib.rs:3:9\nwarning: variable does not need to be mutable\nwarning: `demo` (lib test) generated 2 warnings\n    Finished `test` profile\ntest tests::a ... ok\n";
        let rust = &Language::Rust.spec().verify.warning_prefixes;
        assert_eq!(count_warnings(rust, cargo), 2);
        let maven = "[INFO] Compiling 1 source file\n[WARNING] /src/main/java/A.java:[3,9] unchecked call\n[INFO] BUILD SUCCESS\n";
        assert_eq!(
            count_warnings(&Language::Java.spec().verify.warning_prefixes, maven),
            1
        );
        assert_eq!(
            count_warnings(&Language::Python.spec().verify.warning_prefixes, cargo),
            0
        );
    }

    #[test]
    fn java_test_methods_come_out_of_a_class_and_become_public() {
        let code = "import java.util.List;\nimport org.junit.Test;\n\npublic class StringsTest {\n    @Test\n    void testEmpty() {\n        assertEquals(0, Strings.count(\"\"));\n    }\n    @Test void testOne() { assertEquals(1, Strings.count(\"a\")); }\n    private static int helper() { return 1; }\n}\n";
        let m = java_members(code);
        assert!(
            m.contains("    @Test\n    public void testEmpty() {"),
            "{m}"
        );
        assert!(m.contains("    @Test public void testOne()"), "{m}");
        assert!(m.contains("    static int helper()"), "{m}");
        assert!(!m.contains("import ") && !m.contains("class "), "{m}");
        // Bare methods stay as they are, made public.
        let bare = "@Test\npublic void testTwo() {\n    assertTrue(true);\n}\n";
        assert_eq!(
            java_members(bare),
            "@Test\npublic void testTwo() {\n    assertTrue(true);\n}"
        );
    }
}
