//! The check-and-refine loop between "candidates post-processed" and "shown": select the
//! workspace's tests for the target (or have the model write some when none exist), run every
//! usable candidate in the scratch copy, refine the best failing one with its test output for up
//! to `rounds` rounds, rank by a multi-objective score (tests passed, compiled, failures,
//! behavioural agreement among passing candidates, warnings, model confidence, size), and say how
//! the shown candidate was checked. Running code is the `codeforge-verify` crate's business.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use codeforge_config::VerifySettings;
use codeforge_model::Prompt;
use codeforge_syntax::{FunctionTarget, Language, ParsedFile};
use codeforge_verify::{RunReport, VerifyRequest, Workbench};

use crate::candidate::{Candidate, by_confidence};
use crate::sampler::Sampler;

/// The answer to "may tests run in this workspace?", possibly still being asked while the model
/// works; `Err(reason)` keeps results unverified.
pub type TrustGate =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<(), String>>>;

/// A trust answer known now.
pub fn trust_known(answer: Result<(), String>) -> TrustGate {
    use futures::FutureExt;
    futures::future::ready(answer).boxed().shared()
}

/// Where and whether verification may run.
#[derive(Clone)]
pub struct VerifyContext {
    pub root: PathBuf,
    pub cache_dir: PathBuf,
    pub settings: VerifySettings,
    pub trusted: TrustGate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationStatus {
    /// The shown candidate passed every selected test and nothing contradicts it: it was the only
    /// one to pass, or other passing candidates behave the same on further inputs.
    Passed,
    /// It passed every selected test, but the candidates that pass disagree on further inputs and
    /// none of the others behaves like it: the tests do not pin the behaviour down. Shown, but not
    /// called verified.
    Disputed,
    /// Tests ran and no candidate passed them all.
    Failed,
    /// Nothing was run (not trusted, disabled, no tests, unsupported project), or only tests that
    /// do not call it passed; `reason` says why.
    Unverified,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Passed => "passed",
            VerificationStatus::Disputed => "disputed",
            VerificationStatus::Failed => "failed",
            VerificationStatus::Unverified => "unverified",
        }
    }
}

/// Whose tests decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestsFrom {
    /// The workspace's own tests.
    Workspace,
    /// Tests the model wrote from the docstring (no workspace test calls the function).
    Generated,
    /// Nothing ran.
    None,
}

impl TestsFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            TestsFrom::Workspace => "workspace",
            TestsFrom::Generated => "generated",
            TestsFrom::None => "none",
        }
    }
}

/// One candidate's test run.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRun {
    pub candidate: usize,
    pub round: u32,
    /// Behaviour fingerprint on probe inputs (agreement ranking), when computed.
    pub fingerprint: Option<String>,
    pub report: RunReport,
}

/// How the shown candidate was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub status: VerificationStatus,
    /// Why nothing ran, or other notes.
    pub reason: Option<String>,
    /// One line for the user: "✓ 4/4 tests passed (test_parse, test_empty, …) in 2 rounds".
    pub label: String,
    pub tests_from: TestsFrom,
    pub selected_tests: Vec<String>,
    /// Of the shown (or best) candidate.
    pub passed: usize,
    pub failed: usize,
    /// Refinement rounds used.
    pub rounds: u32,
    /// Candidates tested.
    pub candidates: usize,
    pub elapsed_ms: u64,
    pub sandbox: String,
    /// Passing candidates whose behaviour agreed with the shown one on probe inputs (of all passing).
    pub agreement: Option<(usize, usize)>,
    pub runs: Vec<CandidateRun>,
    pub notes: Vec<String>,
    /// The attempt's id in the local feedback store (to record whether the edit was taken).
    pub feedback_id: Option<String>,
}

impl Verification {
    pub fn unverified(reason: impl Into<String>) -> Verification {
        let reason = reason.into();
        Verification {
            status: VerificationStatus::Unverified,
            label: format!("⚠ unverified: {reason}"),
            reason: Some(reason),
            tests_from: TestsFrom::None,
            selected_tests: Vec::new(),
            passed: 0,
            failed: 0,
            rounds: 0,
            candidates: 0,
            elapsed_ms: 0,
            // What a run would have got here (`none` where the machine gives no sandbox).
            sandbox: codeforge_verify::sandbox::support()
                .level
                .as_str()
                .to_string(),
            agreement: None,
            runs: Vec::new(),
            notes: Vec::new(),
            feedback_id: None,
        }
    }
}

/// Ranking key: higher is better.
fn score(
    run: &CandidateRun,
    cluster: usize,
    c: &Candidate,
) -> (bool, usize, bool, isize, usize, isize, i64, isize) {
    let r = &run.report;
    (
        r.all_passed(),
        r.passed,
        r.compiled,
        -(r.failed as isize),
        cluster,
        -(r.warnings as isize),
        (c.mean_logprob.unwrap_or(0.0) * 1000.0) as i64,
        -(c.body.as_ref().map_or(0, |b| b.len()) as isize),
    )
}

fn short_list(names: &[String], max: usize) -> String {
    let mut s = names
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        s.push_str(", …");
    }
    s
}

/// The usable candidate the model was surest of (what is shown when nothing ran).
fn usable_first(candidates: &[Candidate]) -> Option<usize> {
    by_confidence(candidates).first().copied()
}

/// What was asked, for the feedback store.
pub(crate) struct AttemptInfo {
    /// Labels of the retrieved context.
    pub context_labels: Vec<String>,
}

/// One verification in progress: the workbench, the runs so far and what to tell the user.
struct Check<'c, 's, 'a> {
    ctx: &'c VerifyContext,
    sampler: &'s mut Sampler<'a>,
    wb: Workbench,
    start: Instant,
    budget: Duration,
    notes: Vec<String>,
    runs: Vec<CandidateRun>,
    rounds: u32,
}

/// Runs the loop; returns the verification and the chosen candidate's index (if any is shown).
pub(crate) async fn verify_candidates(
    ctx: &VerifyContext,
    sampler: &mut Sampler<'_>,
    attempt: AttemptInfo,
    progress: &(dyn Fn(&str) + Sync),
) -> (Verification, Option<usize>) {
    let start = Instant::now();
    if let Err(v) = may_run(ctx, &sampler.candidates, progress).await {
        return (v, usable_first(&sampler.candidates));
    }
    progress("preparing the scratch copy and selecting tests");
    let wb = match Box::pin(prepare(ctx, sampler.file(), sampler.target())).await {
        Ok(wb) => wb,
        Err(v) => return (v, usable_first(&sampler.candidates)),
    };
    let mut check = Check {
        ctx,
        notes: wb.plan().notes.clone(),
        wb,
        sampler,
        start,
        budget: Duration::from_secs(ctx.settings.time_budget_s),
        runs: Vec::new(),
        rounds: 0,
    };
    // Each step boxed: their futures are large (debug builds poll them on a 2 MiB worker stack).
    if let Err(why) = Box::pin(check.find_tests(progress)).await {
        let mut v = Verification::unverified(why);
        v.notes = check.notes;
        v.elapsed_ms = start.elapsed().as_millis() as u64;
        return (v, usable_first(&check.sampler.candidates));
    }
    Box::pin(check.test_candidates(progress)).await;
    Box::pin(check.refine(progress)).await;
    let clusters = Box::pin(check.agreement(progress)).await;
    check.verdict(&clusters, attempt)
}

/// Whether anything may run at all: verification on, the workspace trusted, a usable candidate.
async fn may_run(
    ctx: &VerifyContext,
    candidates: &[Candidate],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), Verification> {
    if !ctx.settings.enabled {
        return Err(Verification::unverified(
            "verification is off (verify.enabled = false)",
        ));
    }
    progress("waiting for the workspace trust answer");
    ctx.trusted
        .clone()
        .await
        .map_err(Verification::unverified)?;
    if !candidates.iter().any(Candidate::usable) {
        return Err(Verification::unverified("no usable candidate to test"));
    }
    Ok(())
}

/// The scratch copy and the test plan for the target.
async fn prepare(
    ctx: &VerifyContext,
    file: &ParsedFile,
    target: &FunctionTarget,
) -> Result<Workbench, Verification> {
    let req = VerifyRequest {
        root: ctx.root.clone(),
        rel_path: file.rel_path().to_string(),
        language: file.language(),
        name: target.symbol.name.clone(),
        class: class_of(file.language(), target),
        doc: target.symbol.docstring.clone(),
        cache_dir: ctx.cache_dir.clone(),
        settings: ctx.settings.clone(),
    };
    match tokio::task::spawn_blocking(move || Workbench::prepare(req)).await {
        Ok(Ok(wb)) => Ok(wb),
        Ok(Err(e)) => Err(Verification::unverified(e.to_string())),
        Err(e) => Err(Verification::unverified(format!(
            "preparing verification failed: {e}"
        ))),
    }
}

impl Check<'_, '_, '_> {
    fn over_budget(&self) -> bool {
        self.start.elapsed() > self.budget
    }

    /// Makes sure there are tests that can tell: the workspace's, else (when allowed) the
    /// model's; tests that already fail without the function are left out. `Err` says why
    /// nothing can be checked.
    async fn find_tests(&mut self, progress: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
        let t = self.sampler.target();
        let target_lines = t.doc_start_line + 1..=t.symbol.end_line + 1;
        progress("finding the tests that reach the function");
        let name = t.symbol.name.clone();
        let plan_notes = self.wb.plan().notes.len();
        let measured = match self.wb.survey_body() {
            // Rust, Java: the suite runs once with a body that fails with a marker.
            Some(body) => {
                let survey = self
                    .sampler
                    .file()
                    .with_edits(&[codeforge_syntax::splice_body(t, &body)]);
                self.wb.select_by_survey(&survey).await
            }
            // Python: the suite runs once on the stub under a tracer.
            None => {
                self.wb
                    .select_by_reach(self.sampler.file().source(), target_lines.clone())
                    .await
            }
        };
        // What the measurement found out on the way (its time, the strategy, why it fell back).
        let new_notes = self.wb.plan().notes[plan_notes..].to_vec();
        self.notes.extend(new_notes);
        if let Some(r) = measured {
            self.notes.push(format!(
                "{} of {} collected tests reach `{name}` (measured on the stub; {})",
                r.reaching,
                r.collected,
                r.strategy.as_str()
            ));
        }
        if !self.wb.has_direct_tests() {
            if self.ctx.settings.generate_tests {
                progress("no tests found: asking the model for tests from the docstring");
                match self.sampler.tests().await {
                    Ok(code) => match self.wb.set_generated_tests(&code) {
                        Ok(n) => self.notes.push(format!(
                            "no workspace test calls it: checked against {n} model-written tests"
                        )),
                        Err(e) => self
                            .notes
                            .push(format!("model-written tests unusable: {e}")),
                    },
                    Err(e) => self.notes.push(format!("asking for tests failed: {e}")),
                }
            }
            if !self.wb.has_tests() {
                return Err("no tests found".into());
            }
        }
        progress("running the selected tests without the function");
        let dropped = self
            .wb
            .drop_tests_failing_without_it(self.sampler.file().source(), target_lines)
            .await;
        if !dropped.is_empty() {
            self.notes.push(format!(
                "left out {} test(s) that already fail without this function: {}",
                dropped.len(),
                dropped.join(", ")
            ));
        }
        if !self.wb.has_tests() {
            return Err("the only tests found already fail without this function".into());
        }
        Ok(())
    }

    async fn run(&mut self, candidate: usize, round: u32) -> Option<bool> {
        let src = self.sampler.candidates[candidate].file_text(self.sampler.file())?;
        let report = self.wb.run(&src).await;
        let passed = report.all_passed();
        self.runs.push(CandidateRun {
            candidate,
            round,
            fingerprint: None,
            report,
        });
        Some(passed)
    }

    /// Tests every usable candidate, the one the model was surest of first, within the budget.
    async fn test_candidates(&mut self, progress: &(dyn Fn(&str) + Sync)) {
        let order = by_confidence(&self.sampler.candidates);
        let probe_agreement = self.wb.can_probe() && order.len() > 1;
        let total = order.len();
        for (k, idx) in order.iter().enumerate() {
            if self.over_budget() {
                self.notes.push(format!(
                    "time budget of {} s spent after {k} of {total} candidates",
                    self.budget.as_secs()
                ));
                break;
            }
            progress(&format!("testing {}/{}", k + 1, total));
            // Without agreement ranking the first full pass is as good as any: stop there.
            if self.run(*idx, 0).await == Some(true) && !probe_agreement {
                break;
            }
        }
    }

    /// While nothing passes: the best failing candidate and its failures go back to the model.
    async fn refine(&mut self, progress: &(dyn Fn(&str) + Sync)) {
        let max = self.ctx.settings.rounds;
        while !self.runs.iter().any(|r| r.report.all_passed())
            && self.rounds < max
            && !self.over_budget()
        {
            let candidates = &self.sampler.candidates;
            let Some((best, failures)) = self
                .runs
                .iter()
                .max_by_key(|r| score(r, 0, &candidates[r.candidate]))
                .map(|r| (r.candidate, r.report.failure_text(3000)))
            else {
                break;
            };
            let Some(function) = candidates[best].function.clone() else {
                break;
            };
            self.rounds += 1;
            let round = self.rounds;
            progress(&format!("refining (round {round} of {max})"));
            let added = match self.sampler.refine(&function, &failures).await {
                Ok(added) => added,
                Err(e) => {
                    self.notes
                        .push(format!("refinement round {round} failed: {e}"));
                    break;
                }
            };
            for index in added {
                if self.sampler.candidates[index].usable() {
                    progress(&format!("testing the refinement of round {round}"));
                    self.run(index, round).await;
                }
            }
        }
    }

    /// Agreement among candidates that pass everything: the biggest group that behaves alike on
    /// further inputs is the most likely to be right (CodeT-style). Fingerprint → group size.
    async fn agreement(&mut self, progress: &(dyn Fn(&str) + Sync)) -> HashMap<String, usize> {
        let passing: Vec<usize> = (0..self.runs.len())
            .filter(|i| self.runs[*i].report.all_passed())
            .collect();
        let mut clusters: HashMap<String, usize> = HashMap::new();
        if passing.len() > 1 && self.wb.can_probe() {
            progress("comparing the passing candidates' behaviour");
            for i in passing {
                let c = &self.sampler.candidates[self.runs[i].candidate];
                let Some(src) = c.file_text(self.sampler.file()) else {
                    continue;
                };
                let fp = self.wb.probe(&src).await;
                if let Some(fp) = &fp {
                    *clusters.entry(fp.clone()).or_default() += 1;
                }
                self.runs[i].fingerprint = fp;
            }
        }
        clusters
    }

    /// The best run, its status and label, and whether it is shown.
    fn verdict(
        self,
        clusters: &HashMap<String, usize>,
        attempt: AttemptInfo,
    ) -> (Verification, Option<usize>) {
        let mut notes = self.notes;
        if !self.wb.unrunnable().is_empty() {
            notes.push(format!(
                "left out {} selected test(s) the runner cannot collect: {}",
                self.wb.unrunnable().len(),
                self.wb.unrunnable().join(", ")
            ));
        }
        let candidates = &self.sampler.candidates;
        let cluster_of = |r: &CandidateRun| {
            r.fingerprint
                .as_ref()
                .and_then(|f| clusters.get(f))
                .copied()
                .unwrap_or(0)
        };
        let passing = self.runs.iter().filter(|r| r.report.all_passed()).count();
        let plan = self.wb.plan().clone();
        let mut selected: Vec<String> = plan.tests.iter().map(|t| t.name.clone()).collect();
        if plan.doctests {
            selected.push(format!("doctest of {}", self.sampler.target().symbol.name));
        }
        let Some(best) = self
            .runs
            .iter()
            .max_by_key(|r| score(r, cluster_of(r), &candidates[r.candidate]))
            .cloned()
        else {
            let mut v = Verification::unverified("no candidate could be tested");
            v.notes = notes;
            return (v, usable_first(candidates));
        };
        let tests_from = if plan.generated {
            TestsFrom::Generated
        } else {
            TestsFrom::Workspace
        };
        let sandbox = self
            .runs
            .first()
            .map(|r| r.report.sandbox.clone())
            .unwrap_or_default();
        let r = &best.report;
        let agreeing = cluster_of(&best);
        let disputed = r.all_passed() && passing > 1 && !clusters.is_empty() && agreeing < 2;
        // Only tests of its module ran, none of which calls it (chosen by name, nothing
        // measured, no model-written tests): passing them does not verify it.
        let weak = !plan.generated && !self.wb.has_direct_tests();
        let status = match (r.all_passed(), disputed) {
            (true, _) if weak => VerificationStatus::Unverified,
            (true, false) => VerificationStatus::Passed,
            (true, true) => VerificationStatus::Disputed,
            _ => VerificationStatus::Failed,
        };
        let name = self.sampler.target().symbol.name.as_str();
        let label = if status == VerificationStatus::Unverified {
            format!(
                "⚠ {}/{} tests of its module passed, but none of them calls `{name}`",
                r.passed,
                r.passed + r.failed
            )
        } else {
            label(
                status,
                r,
                &selected,
                plan.generated,
                passing,
                self.rounds,
                plan.reach.map(|x| (x, name)),
            )
        };
        let agreement = (!clusters.is_empty()).then_some((agreeing, passing));
        let show = matches!(
            status,
            VerificationStatus::Passed | VerificationStatus::Disputed
        ) || self.ctx.settings.show_unverified;
        let shown = show.then_some(best.candidate);
        let feedback_id = record_attempt(
            self.ctx,
            self.sampler,
            &attempt,
            &self.runs,
            tests_from,
            &selected,
            shown,
        );
        let reason = (status == VerificationStatus::Unverified)
            .then(|| format!("none of the tests that ran calls `{name}`"));
        let v = Verification {
            status,
            reason,
            label,
            tests_from,
            selected_tests: selected,
            passed: r.passed,
            failed: r.failed,
            rounds: self.rounds,
            candidates: self.runs.len(),
            elapsed_ms: self.start.elapsed().as_millis() as u64,
            sandbox,
            agreement,
            runs: self.runs,
            notes: notes,
            feedback_id,
        };
        (v, shown)
    }
}

/// A prompt as the feedback store keeps it: its messages with their roles.
pub(crate) fn stored_prompt(p: &Prompt) -> Vec<codeforge_verify::feedback::StoredMessage> {
    use codeforge_verify::feedback::StoredMessage;
    match p {
        Prompt::Chat(m) => m
            .iter()
            .map(|m| StoredMessage {
                role: serde_json::to_value(m.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                content: m.content.clone(),
            })
            .collect(),
        Prompt::Text(t) => vec![StoredMessage {
            role: "user".into(),
            content: t.clone(),
        }],
    }
}

/// One line for the user about the best run.
fn label(
    status: VerificationStatus,
    r: &RunReport,
    selected: &[String],
    generated: bool,
    passing: usize,
    rounds: u32,
    reach: Option<(codeforge_verify::Reach, &str)>,
) -> String {
    let total_tests = r.passed + r.failed;
    let rounds_text = if rounds > 0 {
        format!(" in {} rounds", rounds + 1)
    } else {
        String::new()
    };
    let written = if generated { "model-written " } else { "" };
    if let (VerificationStatus::Passed, Some((reach, name)), false) = (status, reach, generated) {
        if reach.strategy == codeforge_verify::Strategy::WholeSuite {
            return format!(
                "✓ {}/{} tests passed, the whole suite ({} reach `{name}`){rounds_text}",
                r.passed, total_tests, reach.reaching,
            );
        }
        return format!(
            "✓ {}/{} tests passed that reach `{name}` (of {} collected){rounds_text}",
            r.passed, total_tests, reach.collected,
        );
    }
    match status {
        VerificationStatus::Passed => format!(
            "✓ {}/{} {written}tests passed ({}){rounds_text}",
            r.passed,
            total_tests,
            short_list(selected, 3),
        ),
        VerificationStatus::Disputed => format!(
            "≈ {}/{} {written}tests passed ({}), but the {passing} passing candidates behave differently on other inputs{rounds_text}",
            r.passed,
            total_tests,
            short_list(selected, 3),
        ),
        _ if !r.compiled => format!("✗ best candidate does not compile{rounds_text}"),
        _ if r.timed_out => format!("✗ best candidate timed out{rounds_text}"),
        _ => format!(
            "✗ best candidate fails {}/{}{rounds_text}",
            r.failed,
            total_tests.max(1)
        ),
    }
}

/// The class a target belongs to, for test selection (`<Class>Test.java`): the last scope segment
/// when it reads as a type name.
fn class_of(lang: Language, target: &FunctionTarget) -> Option<String> {
    target
        .symbol
        .scope
        .rsplit(lang.spec().scope_separator.as_str())
        .next()
        .filter(|s| !s.is_empty() && s.chars().next().is_some_and(char::is_uppercase))
        .map(str::to_string)
}

/// Verifies a multi-line completion: the tests that call the enclosing function run once on the
/// file with `text` inserted at `offset`. No refinement and no model-written tests (a completion
/// is shown as it is, or not at all); only a workspace already trusted runs anything (`ctx.trusted`
/// should be a known answer: completion never asks).
pub async fn verify_insertion(
    ctx: &VerifyContext,
    lang: Language,
    rel_path: &str,
    source: &str,
    offset: usize,
    text: &str,
) -> Verification {
    let start = Instant::now();
    if !ctx.settings.enabled {
        return Verification::unverified("verification is off (verify.enabled = false)");
    }
    if let Err(why) = ctx.trusted.clone().await {
        return Verification::unverified(why);
    }
    let offset = offset.min(source.len());
    let new_source = format!("{}{text}{}", &source[..offset], &source[offset..]);
    let line = source[..offset].matches('\n').count();
    let file = ParsedFile::parse(lang, rel_path, &new_source);
    let Some(target) = file.function_at_line(line) else {
        return Verification::unverified("not inside a function");
    };
    let name = target.symbol.name.clone();
    let mut wb = match prepare(ctx, &file, &target).await {
        Ok(wb) => wb,
        Err(v) => return v,
    };
    if !wb.has_direct_tests() {
        return Verification::unverified(format!("no test calls `{name}`"));
    }
    // Only what exercises the function itself: its module's other tests say little about it.
    wb.keep_only_direct_tests();
    let plan = wb.plan().clone();
    let mut selected: Vec<String> = plan.tests.iter().map(|t| t.name.clone()).collect();
    if plan.doctests {
        selected.push(format!("doctest of {name}"));
    }
    let report = wb.run(&new_source).await;
    let total = report.passed + report.failed;
    let (status, label) = if report.all_passed() {
        (
            VerificationStatus::Passed,
            format!(
                "✓ {}/{} tests passed ({})",
                report.passed,
                total,
                short_list(&selected, 3)
            ),
        )
    } else if !report.compiled {
        (VerificationStatus::Failed, "✗ does not compile".to_string())
    } else if report.timed_out {
        (VerificationStatus::Failed, "✗ timed out".to_string())
    } else {
        (
            VerificationStatus::Failed,
            format!("✗ fails {}/{}", report.failed, total.max(1)),
        )
    };
    Verification {
        status,
        reason: None,
        label,
        tests_from: TestsFrom::Workspace,
        selected_tests: selected,
        passed: report.passed,
        failed: report.failed,
        rounds: 0,
        candidates: 1,
        elapsed_ms: start.elapsed().as_millis() as u64,
        sandbox: report.sandbox.clone(),
        agreement: None,
        runs: Vec::new(),
        notes: Vec::new(),
        feedback_id: None,
    }
}

/// Appends the attempt to the local feedback store; returns its id (`None` if it could not).
fn record_attempt(
    ctx: &VerifyContext,
    sampler: &Sampler<'_>,
    attempt: &AttemptInfo,
    runs: &[CandidateRun],
    tests_from: TestsFrom,
    selected: &[String],
    shown: Option<usize>,
) -> Option<String> {
    use codeforge_verify::feedback::{Attempt, CandidateRecord, record};
    let file = sampler.file();
    let target = sampler.target();
    let lang = file.language();
    let candidates = &sampler.candidates;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let id = blake3::hash(
        format!(
            "{now}:{}:{}",
            ctx.root.display(),
            target.symbol.qualified_name
        )
        .as_bytes(),
    )
    .to_hex()[..16]
        .to_string();
    let prompt = sampler.prompt().map(stored_prompt).unwrap_or_default();
    let attempt = Attempt {
        id: id.clone(),
        unix_ms: now,
        workspace: ctx.root.display().to_string(),
        file: file.rel_path().to_string(),
        target: target.symbol.qualified_name.clone(),
        language: lang.name().to_string(),
        fence: lang.spec().generation.fence.clone(),
        prompt,
        context: attempt.context_labels.clone(),
        tests_from: tests_from.as_str().into(),
        selected_tests: selected.to_vec(),
        candidates: runs
            .iter()
            .filter_map(|r| {
                let c = candidates.get(r.candidate)?;
                Some(CandidateRecord {
                    code: c.function.clone()?,
                    passed: r.report.passed,
                    failed: r.report.failed,
                    compiled: r.report.compiled,
                    verified: r.report.all_passed(),
                    round: r.round,
                    shown: shown == Some(r.candidate),
                })
            })
            .collect(),
        accepted: None,
    };
    match record(&ctx.cache_dir, &attempt) {
        Ok(()) => Some(id),
        Err(e) => {
            tracing::warn!("could not record the attempt for fine-tuning: {e}");
            None
        }
    }
}
