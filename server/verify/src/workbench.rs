//! A verification workbench for one target function: the synced scratch copy, the detected
//! project and runner (from `[verify]` in `grammars/<lang>/language.toml`), the selected tests,
//! and `run(candidate_source)`, which writes the candidate into the scratch copy, runs the cheap
//! gate and the tests, and returns structured results. Never touches the user's tree. What
//! differs per runner (test names, placeholders, generated tests, an interpreter) is in
//! [`crate::runner`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use codeforge_syntax::Language;
use serde::Serialize;

use crate::process::{Isolation, Job, run};
use crate::report::{TestResult, Verdict, clip};
pub use crate::request::{Reach, Strategy, TestPlan, VerifyError, VerifyRequest};
use crate::runner::{ExpandCtx, Runner, read_results};
use crate::scratch::{Scratch, scratch_base, source_files};
use crate::select::{SelectedTest, TestReason, has_doc_examples, select_tests};

/// Most files a workspace may have for verification to copy it.
const MAX_FILES: usize = 50_000;
/// Test files read when selecting (others are skipped unless they name the target).
const MAX_TEST_FILE: u64 = 512 * 1024;

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

pub struct Workbench {
    req: VerifyRequest,
    scratch: Scratch,
    base: PathBuf,
    plan: TestPlan,
    project_dir: PathBuf,
    runner: &'static dyn Runner,
    /// The runner's interpreter (`{python}`), if it needs one.
    python: Option<String>,
    /// Generated tests appended to the candidate's file (cargo).
    appended_tests: Option<String>,
    /// The generated test file, path relative to the root (rewritten after every sync).
    generated_file: Option<(String, String)>,
    /// Selected tests the runner could not collect, left out.
    unrunnable: Vec<String>,
    /// A hash of the workspace's source files (what a measured selection depends on).
    files_key: String,
    /// The next run is the survey: the runner's `survey` command, every result kept.
    survey_mode: bool,
}

/// What a failure says when it passed through the survey's body (`reach_body`'s `{marker}`).
pub const REACH_MARKER: &str = "codeforge: the stub was reached";

/// Most output kept from a survey run (libtest prints a line per test).
const SURVEY_OUTPUT: usize = 8 * 1024 * 1024;

/// Finds the runner's project directory for `rel` (nearest detect file upwards, inside `root`).
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
            return Ok(workspace_root_above(root, dir, &spec.workspace_root));
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

/// The nearest directory from `project` up to `root` whose `[file, text]` file holds `text`
/// (a Cargo workspace's root), else `project`.
fn workspace_root_above(root: &Path, project: PathBuf, marker: &[String]) -> PathBuf {
    let [file, text] = marker else {
        return project;
    };
    let mut dir = project.clone();
    loop {
        if std::fs::read_to_string(dir.join(file)).is_ok_and(|t| t.contains(text.as_str())) {
            return dir;
        }
        if dir == root || !dir.starts_with(root) || !dir.pop() {
            return project;
        }
    }
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
        let runner = crate::runner::for_language(lang);
        let python = runner.interpreter(&req, &mut notes)?;
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
        let files_key = {
            let mut h = blake3::Hasher::new();
            for (r, t) in &files {
                h.update(r.as_bytes());
                h.update(&[0]);
                h.update(blake3::hash(t.as_bytes()).as_bytes());
            }
            h.finalize().to_hex().to_string()
        };
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
            runner: spec.runner.to_string(),
            project_dir: project_dir
                .strip_prefix(&req.root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            tests,
            doctests,
            generated: false,
            notes,
            reach: None,
        };
        Ok(Workbench {
            req,
            scratch,
            base,
            plan,
            project_dir,
            runner,
            python,
            appended_tests: None,
            generated_file: None,
            unrunnable: Vec::new(),
            files_key,
            survey_mode: false,
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
        self.plan.doctests || self.plan.tests.iter().any(|t| t.reason.is_direct())
    }

    /// Leaves only the tests that call the target (and its doc examples) selected.
    pub fn keep_only_direct_tests(&mut self) {
        self.plan.tests.retain(|t| t.reason.is_direct());
    }

    /// Adds model-written tests (a code block's content) when no workspace test calls the target.
    /// Python: a test module beside the workspace root; Rust: a test module appended to the
    /// candidate's file; Java: a JUnit 4 class `CodeforgeGeneratedTest` in the target's package
    /// under `src/test/java`.
    pub fn set_generated_tests(&mut self, code: &str) -> Result<usize, String> {
        let generated = self
            .runner
            .generated_tests(&self.req, &self.plan.project_dir, code)?;
        // No workspace test calls the target: its module's other tests say nothing about it.
        self.plan.tests.retain(|t| t.reason.is_direct());
        let n = generated.tests.len();
        self.appended_tests = generated.appended;
        self.generated_file = generated.file;
        self.plan.tests.extend(generated.tests);
        self.plan.generated = true;
        Ok(n)
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

    /// The command `template` with the runner's placeholders and `{python}`, `{file}`,
    /// `{report}` filled in.
    fn expand(&self, template: &[String], file: &str, report: &str) -> Vec<String> {
        let ctx = ExpandCtx {
            req: &self.req,
            plan: &self.plan,
            project_dir: &self.project_dir,
            base: &self.base,
        };
        let mut out = Vec::new();
        for t in template {
            match self.runner.expand(t, &ctx) {
                Some(args) => out.extend(args),
                None => out.push(
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

    /// Where a measurement of the target (`kind`: what was measured, on `source`) is cached: it
    /// depends on the workspace's files, the target and that source.
    fn measurement_path(&self, kind: &str, source: &str) -> PathBuf {
        let key = blake3::hash(
            format!(
                "{kind}\0{}\0{}\0{}",
                self.files_key,
                self.req.name,
                blake3::hash(source.as_bytes())
            )
            .as_bytes(),
        )
        .to_hex()
        .to_string();
        self.base.join("reach").join(format!("{}.json", &key[..32]))
    }

    /// Runs the workspace's collected tests once on `stub_source` (the file as it is, the stub in
    /// place) and makes the tests that entered the target (declared on `target_lines`, 1-based)
    /// the selection: those, and nothing else, decide. Cached per content of the workspace's
    /// files. `None` where the runner cannot measure this or the run told nothing (nothing
    /// collected, timed out): the selection by name stays.
    pub async fn select_by_reach(
        &mut self,
        stub_source: &str,
        target_lines: std::ops::RangeInclusive<usize>,
    ) -> Option<Reach> {
        let script = self.runner.reach_script()?;
        let python = self.python.clone()?;
        let cache = self.measurement_path(&format!("{target_lines:?}"), stub_source);
        let parsed: serde_json::Value = match std::fs::read(&cache)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(v) => v,
            None => {
                self.reset(stub_source).await.ok()?;
                let script_path = self.scratch.report_dir.join("reach.py");
                std::fs::write(&script_path, script).ok()?;
                let job = Job {
                    program: python,
                    args: vec![
                        script_path.to_string_lossy().into_owned(),
                        self.req.rel_path.clone(),
                        self.req.name.clone(),
                        target_lines.start().to_string(),
                        target_lines.end().to_string(),
                    ],
                    cwd: self.scratch.tree.join(&self.plan.project_dir),
                    env: self.env(),
                    timeout: Duration::from_secs(self.req.settings.test_timeout_s),
                    max_output: 64 * 1024,
                    report_fd: true,
                };
                let out = run(&job, &self.isolation()).await.ok()?;
                if out.timed_out {
                    self.plan.notes.push(
                        "the test suite did not finish within the test timeout: tests chosen by name"
                            .into(),
                    );
                    return None;
                }
                let v: serde_json::Value = serde_json::from_slice(&out.report).ok()?;
                store_measurement(&cache, &v);
                v
            }
        };
        let collected = parsed.get("collected")?.as_u64()? as usize;
        if collected == 0 {
            return None;
        }
        let prefix = if self.plan.project_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.plan.project_dir)
        };
        let mut tests: Vec<SelectedTest> = Vec::new();
        for id in parsed
            .get("hits")?
            .as_array()?
            .iter()
            .filter_map(|h| h.as_str())
        {
            // Parameters run together: `test_x[1]` and `test_x[2]` are `test_x`.
            let id = id.split('[').next().unwrap_or(id);
            let full = format!("{prefix}{id}");
            if tests.iter().any(|t| t.id == full) {
                continue;
            }
            let file = full.split("::").next().unwrap_or(&full).to_string();
            let name = id.rsplit("::").next().unwrap_or(id).to_string();
            tests.push(SelectedTest {
                id: full,
                name,
                file,
                reason: TestReason::Reaches,
            });
        }
        let reach = Reach {
            collected,
            reaching: tests.len(),
            strategy: Strategy::Traced,
        };
        self.plan.tests = tests;
        self.plan.reach = Some(reach);
        Some(reach)
    }

    /// The body the survey puts in place of the stub (`reach_body` with the marker); `None` where
    /// the runner surveys no suite (it traces, or has no survey command).
    pub fn survey_body(&self) -> Option<String> {
        let spec = &self.req.language.spec().verify;
        (self.runner.reach_script().is_none()
            && !spec.survey.is_empty()
            && !spec.reach_body.is_empty())
        .then(|| spec.reach_body.replace("{marker}", REACH_MARKER))
    }

    /// Runs the whole suite once with `survey_source` (the file with [`Self::survey_body`] in
    /// place of the stub) and makes the tests whose failure carries the marker the selection:
    /// measured, not guessed, and named by the runner itself. When that run took at most
    /// `verify.whole_suite_s`, every test that passed on the stub runs too (the whole suite, less
    /// what already fails without the function). Cached per content of the workspace's files.
    /// `None` where nothing could be learnt (no survey command, it did not build, timed out or
    /// collected nothing): the selection by name stays, with a note.
    pub async fn select_by_survey(&mut self, survey_source: &str) -> Option<Reach> {
        self.survey_body()?;
        let cache = self.measurement_path("survey", survey_source);
        let cached: Option<SurveyRecord> = std::fs::read(&cache)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        // A suite that outlasted the test timeout is not surveyed again for a week (unless the
        // timeout grew): each attempt would cost the whole timeout.
        let too_slow = self.base.join("reach").join("survey-timed-out");
        let timeout_s = self.req.settings.test_timeout_s;
        let recently_too_slow = std::fs::read_to_string(&too_slow)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .is_some_and(|t| t >= timeout_s)
            && std::fs::metadata(&too_slow)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age < Duration::from_secs(7 * 24 * 3600));
        let record = match cached {
            Some(r) => r,
            None if recently_too_slow => {
                self.plan.notes.push(format!(
                    "the suite did not finish within the test timeout ({timeout_s} s) when last surveyed: tests chosen by name"
                ));
                return None;
            }
            None => {
                let saved = (
                    std::mem::take(&mut self.plan.tests),
                    std::mem::replace(&mut self.plan.doctests, false),
                );
                self.survey_mode = true;
                let report = Box::pin(self.run_once(survey_source)).await;
                self.survey_mode = false;
                (self.plan.tests, self.plan.doctests) = saved;
                let why = if report.timed_out {
                    Some("the suite did not finish within the test timeout")
                } else if !report.compiled {
                    Some("the suite did not build with a failing body in place of the stub")
                } else if report.results.is_empty() {
                    Some("the suite reported no tests")
                } else {
                    None
                };
                if let Some(why) = why {
                    if report.timed_out {
                        let _ = std::fs::create_dir_all(self.base.join("reach"));
                        let _ = std::fs::write(&too_slow, timeout_s.to_string());
                    }
                    self.plan.notes.push(format!("{why}: tests chosen by name"));
                    return None;
                }
                let record = SurveyRecord {
                    elapsed_ms: report.elapsed_ms,
                    tests: report
                        .results
                        .iter()
                        .filter_map(|r| {
                            let (id, name) = self.runner.selection_of(r)?;
                            let outcome = match r.verdict {
                                Verdict::Passed => SurveyOutcome::Passed,
                                Verdict::Skipped => return None,
                                _ if r.message.contains(REACH_MARKER) => SurveyOutcome::Reached,
                                _ => SurveyOutcome::Failed,
                            };
                            Some((id, name, outcome))
                        })
                        .collect(),
                };
                store_measurement(&cache, &record);
                record
            }
        };
        let whole = record.elapsed_ms <= self.req.settings.whole_suite_s * 1000;
        let mut tests: Vec<SelectedTest> = Vec::new();
        for (id, name, outcome) in &record.tests {
            let reason = match outcome {
                SurveyOutcome::Reached => TestReason::Reaches,
                SurveyOutcome::Passed if whole => TestReason::Suite,
                _ => continue,
            };
            if tests.iter().any(|t| &t.id == id) {
                continue;
            }
            tests.push(SelectedTest {
                id: id.clone(),
                name: name.clone(),
                file: String::new(),
                reason,
            });
        }
        let reaching = tests
            .iter()
            .filter(|t| t.reason == TestReason::Reaches)
            .count();
        let broken = record
            .tests
            .iter()
            .filter(|(_, _, o)| *o == SurveyOutcome::Failed)
            .count();
        let strategy = if whole {
            Strategy::WholeSuite
        } else {
            Strategy::Reaching
        };
        let secs = record.elapsed_ms as f64 / 1000.0;
        self.plan.notes.push(if whole {
            format!(
                "the whole suite took {secs:.1} s on the stub (within verify.whole_suite_s = {}): it runs for each candidate",
                self.req.settings.whole_suite_s
            )
        } else {
            format!(
                "the whole suite took {secs:.1} s on the stub (over verify.whole_suite_s = {}): only the tests that reached the stub run",
                self.req.settings.whole_suite_s
            )
        });
        if broken > 0 {
            self.plan.notes.push(format!(
                "{broken} test(s) fail without reaching the stub: left out"
            ));
        }
        let reach = Reach {
            collected: record.tests.len(),
            reaching,
            strategy,
        };
        self.plan.tests = if reaching == 0 { Vec::new() } else { tests };
        self.plan.reach = Some(reach);
        Some(reach)
    }

    /// Whether candidates can be compared by behaviour (the runner's probe script, run with its
    /// interpreter: `grammars/python/probe.py`).
    pub fn can_probe(&self) -> bool {
        self.runner.probe_script().is_some() && self.python.is_some() && !self.plan.tests.is_empty()
    }

    /// The candidate's behaviour fingerprint on inputs derived from the selected tests' calls
    /// (the same inputs for every candidate); `None` when it could not be computed.
    pub async fn probe(&mut self, source: &str) -> Option<String> {
        if !self.can_probe() {
            return None;
        }
        self.reset(source).await.ok()?;
        let script = self.scratch.report_dir.join("probe.py");
        std::fs::write(&script, self.runner.probe_script()?).ok()?;
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
        self.runner.is_result_of(t, r)
    }

    /// Whether a runner's result belongs to the selection (filters may match more).
    fn selected(&self, r: &TestResult) -> bool {
        let doctest_hit = self.plan.doctests && self.runner.is_doctest_of(&self.req.name, r);
        doctest_hit || self.plan.tests.iter().any(|t| self.matches(t, r))
    }

    /// Runs the selected tests that do not call the target by name on the file as it is (the
    /// stub in place) and leaves out those that already fail for reasons the candidate cannot
    /// fix (another stub in the module, a broken fixture). A test whose failure passes through
    /// the stub (a frame at one of `target_lines`, 1-based, in the target's file, or the stub's
    /// value named in an assertion) reached it: that is the best test there is, and it stays.
    /// Returns the names left out.
    pub async fn drop_tests_failing_without_it(
        &mut self,
        original: &str,
        target_lines: std::ops::RangeInclusive<usize>,
    ) -> Vec<String> {
        // A measured selection already knows what fails without the function.
        if self.plan.reach.is_some() {
            return Vec::new();
        }
        let others: Vec<SelectedTest> = self
            .plan
            .tests
            .iter()
            .filter(|t| !t.reason.is_direct() && t.reason != TestReason::Generated)
            .cloned()
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let saved = (
            self.plan.tests.clone(),
            self.plan.doctests,
            self.appended_tests.take(),
            self.generated_file.take(),
        );
        self.plan.tests = others.clone();
        self.plan.doctests = false;
        let report = self.run(original).await;
        (
            self.plan.tests,
            self.plan.doctests,
            self.appended_tests,
            self.generated_file,
        ) = saved;
        if !report.compiled || report.timed_out {
            return Vec::new();
        }
        let file_name = std::path::Path::new(&self.req.rel_path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let failing: Vec<SelectedTest> = others
            .into_iter()
            .filter(|t| {
                let mine: Vec<&TestResult> = report
                    .results
                    .iter()
                    .filter(|r| self.matches(t, r))
                    .collect();
                let passed = mine.iter().any(|r| r.verdict == Verdict::Passed);
                let reached = mine.iter().any(|r| {
                    failure_reaches(&r.message, &file_name, &self.req.name, &target_lines)
                });
                !passed && !reached
            })
            .collect();
        self.plan.tests.retain(|t| !failing.contains(t));
        failing.iter().map(|t| t.name.clone()).collect()
    }

    /// Puts `source` (the whole file with the candidate in place) into the scratch copy and runs
    /// the gate and the selected tests. Dropping the future kills the run.
    pub async fn run(&mut self, source: &str) -> RunReport {
        // Boxed: a run's future is large, and it is polled deep inside a request's.
        let report = Box::pin(self.run_once(source)).await;
        // A selected id the runner cannot collect sank the run: leave it out, run the rest.
        let dropped = self.drop_unknown_ids(&report);
        if dropped.is_empty() || self.plan.tests.is_empty() {
            return report;
        }
        self.unrunnable.extend(dropped);
        Box::pin(self.run_once(source)).await
    }

    /// Selected tests the runner could not collect (left out of every later run).
    pub fn unrunnable(&self) -> &[String] {
        &self.unrunnable
    }

    /// Drops the selected tests `report`'s output names as uncollectable; their names.
    fn drop_unknown_ids(&mut self, report: &RunReport) -> Vec<String> {
        let markers = &self.req.language.spec().verify.unknown_test_markers;
        if markers.is_empty() || !report.results.is_empty() || report.timed_out {
            return Vec::new();
        }
        let missing = uncollectable_ids(markers, &report.output);
        let (gone, kept): (Vec<SelectedTest>, Vec<SelectedTest>) =
            self.plan.tests.drain(..).partition(|t| {
                missing
                    .iter()
                    .any(|m| m.ends_with(&t.id) || m.ends_with(&format!("/{}", t.id)))
            });
        self.plan.tests = kept;
        gone.into_iter().map(|t| t.name).collect()
    }

    async fn run_once(&mut self, source: &str) -> RunReport {
        let start = Instant::now();
        let lang = self.req.language;
        let spec = &lang.spec().verify;
        let mut text = source.to_string();
        if let Some(extra) = &self.appended_tests {
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
            max_output: if self.survey_mode {
                SURVEY_OUTPUT
            } else {
                64 * 1024
            },
            report_fd: spec.report.uses_report_pipe(),
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
        let template = if self.survey_mode {
            &spec.survey
        } else {
            &spec.test
        };
        let argv = self.expand(template, &file_abs, &report_path.to_string_lossy());
        let out = match run(&job(argv.clone()), &iso).await {
            Ok(o) => o,
            Err(e) => {
                return failed_report(
                    format!("could not run `{}`: {e}", argv.join(" ")),
                    String::new(),
                );
            }
        };
        // Maven wrote into the run's overlay when there was one.
        let project_out = match &out.writes_in {
            Some(upper) => upper.join(rel_project),
            None => cwd.clone(),
        };
        let mut results = read_results(spec.report, &out, &project_out);
        if !self.survey_mode {
            results.retain(|r| self.selected(r));
        }
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

/// Caches a measurement at `path` (best effort: a failed write only costs a later re-run).
fn store_measurement(path: &Path, value: &impl Serialize) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(path, serde_json::to_vec(value).unwrap_or_default());
    }
}

/// The ids a runner's `output` says it could not collect (after one of `markers`).
fn uncollectable_ids<'a>(markers: &[String], output: &'a str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|l| {
            markers
                .iter()
                .find_map(|m| l.split_once(m.as_str()).map(|(_, id)| id.trim()))
        })
        .collect()
}

/// What one test did in the survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
enum SurveyOutcome {
    Passed,
    /// Failed with the marker: it reached the target.
    Reached,
    /// Failed without reaching it.
    Failed,
}

/// A survey's findings, cached: the run's time and each test as `(id, name, outcome)`.
#[derive(Debug, Serialize, serde::Deserialize)]
struct SurveyRecord {
    elapsed_ms: u64,
    tests: Vec<(String, String, SurveyOutcome)>,
}

/// Whether a failure's message passes through the target: a frame in its file at one of its
/// lines (`mod.py:12`, `lib.rs:12:5`, `Shapes.java:12)`, `mod.py", line 12`), or pytest's
/// assertion rewriting naming its value (`where None = wrap_text(…)`).
fn failure_reaches(
    message: &str,
    file_name: &str,
    name: &str,
    lines: &std::ops::RangeInclusive<usize>,
) -> bool {
    if file_name.is_empty() {
        return false;
    }
    let line_in_range = |rest: &str| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<usize>().is_ok_and(|l| lines.contains(&l))
    };
    let frame = message.match_indices(file_name).any(|(i, _)| {
        let after = &message[i + file_name.len()..];
        after.strip_prefix(':').is_some_and(line_in_range)
            || after.strip_prefix("\", line ").is_some_and(line_in_range)
    });
    frame || message.contains(&format!("= {name}("))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytests_both_ways_of_not_collecting_an_id_are_read() {
        let markers = &Language::Python.spec().verify.unknown_test_markers;
        let out = "no tests ran in 0.01s\nERROR: found no collectors for /w/tests/test_x.py::test_a::test\n\nERROR: not found: /w/tests/test_x.py::test_zzz\n(no match in any of [<Module test_x.py>])\n";
        assert_eq!(
            uncollectable_ids(markers, out),
            [
                "/w/tests/test_x.py::test_a::test",
                "/w/tests/test_x.py::test_zzz"
            ]
        );
    }

    #[test]
    fn a_failure_through_the_stub_reached_it() {
        let lines = 10..=14;
        let reach = |m: &str| failure_reaches(m, "mod.py", "wrap", &lines);
        // pytest's long repr, a Python traceback frame, libtest's panic, a Java stack frame.
        assert!(reach(
            "    raise NotImplementedError\nsrc/pkg/mod.py:12: NotImplementedError"
        ));
        assert!(reach("  File \"/w/src/pkg/mod.py\", line 11, in wrap"));
        assert!(failure_reaches(
            "panicked at src/lib.rs:13:5:\nnot yet implemented",
            "lib.rs",
            "wrap",
            &lines
        ));
        assert!(failure_reaches(
            "at a.Shapes.area(Shapes.java:10)",
            "Shapes.java",
            "area",
            &lines
        ));
        assert!(reach(
            "AssertionError: assert None == 'a b'\n +  where None = wrap('a b', 3)"
        ));
        // Another line of the same file, another file, or no frame at all: not through the stub.
        assert!(!reach("src/pkg/mod.py:40: KeyError"));
        assert!(!reach("tests/test_x.py:12: AssertionError"));
        assert!(!reach("fixture 'tmpdir_factory' not found"));
        assert!(!failure_reaches("mod.py:12", "", "wrap", &lines));
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
}
