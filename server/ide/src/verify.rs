//! The verify-and-refine loop between "candidates post-processed" and "shown": select the
//! workspace's tests for the target (or have the model write some when none exist), run every
//! usable candidate in the scratch copy, refine the best failing one with its test output for up
//! to `rounds` rounds, rank by a multi-objective score (tests passed, compiled, failures,
//! behavioural agreement among passing candidates, warnings, model confidence, size), and say how
//! the shown candidate was checked. Running code is the `codeforge-verify` crate's business.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codeforge_config::VerifySettings;
use codeforge_model::{Backend, Prompt, Request};
use codeforge_prompt::{PlanMode, refine_prompt, split_answer, test_designer_prompt};
use codeforge_syntax::{FunctionTarget, Language};
use codeforge_verify::{RunReport, VerifyRequest, Workbench};
use serde::Serialize;

use crate::generate::{Candidate, by_confidence, candidate_from_answer};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyStatus {
    /// The shown candidate passed every selected test and nothing contradicts it: it was the only
    /// one to pass, or other passing candidates behave the same on further inputs.
    Passed,
    /// It passed every selected test, but the candidates that pass disagree on further inputs and
    /// none of the others behaves like it: the tests do not pin the behaviour down. Shown, but not
    /// called verified.
    Disputed,
    /// Tests ran and no candidate passed them all.
    Failed,
    /// Nothing was run (not trusted, disabled, no tests, unsupported project); `reason` says why.
    Unverified,
}

/// One candidate's test run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateRun {
    pub candidate: usize,
    pub round: u32,
    /// Behaviour fingerprint on probe inputs (agreement ranking), when computed.
    pub fingerprint: Option<String>,
    pub report: RunReport,
}

/// How the shown candidate was checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub status: VerifyStatus,
    /// Why nothing ran, or other notes.
    pub reason: Option<String>,
    /// One line for the user: "✓ 4/4 tests passed (test_parse, test_empty, …) in 2 rounds".
    pub label: String,
    /// `workspace`, `generated` (model-written tests only) or `none`.
    pub tests_from: &'static str,
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
            status: VerifyStatus::Unverified,
            label: format!("⚠ unverified: {reason}"),
            reason: Some(reason),
            tests_from: "none",
            selected_tests: Vec::new(),
            passed: 0,
            failed: 0,
            rounds: 0,
            candidates: 0,
            elapsed_ms: 0,
            // What a run would have got here (`none` where the machine gives no sandbox).
            sandbox: codeforge_verify::sandbox::support().level.as_str().to_string(),
            agreement: None,
            runs: Vec::new(),
            notes: Vec::new(),
            feedback_id: None,
        }
    }
}

/// What the loop needs from the generation step.
pub(crate) struct LoopInput<'a> {
    pub lang: Language,
    pub rel_path: &'a str,
    pub source: &'a str,
    pub target: &'a FunctionTarget,
    pub prompt: &'a Prompt,
    pub plan: PlanMode,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Labels of the retrieved context (for the feedback store).
    pub context_labels: Vec<String>,
}

/// The candidate's whole file.
fn source_with(source: &str, c: &Candidate) -> Option<String> {
    let e = c.edit.as_ref()?;
    Some(format!(
        "{}{}{}",
        &source[..e.start],
        e.new_text,
        &source[e.end..]
    ))
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

/// Runs the loop; returns the verification and the chosen candidate's index (if any is shown).
pub(crate) async fn verify_candidates(
    backend: &dyn Backend,
    ctx: &VerifyContext,
    input: LoopInput<'_>,
    candidates: &mut Vec<Candidate>,
    progress: &(dyn Fn(&str) + Sync),
) -> (Verification, Option<usize>) {
    let start = Instant::now();
    let budget = Duration::from_secs(ctx.settings.time_budget_s);
    let usable_first = |candidates: &[Candidate]| by_confidence(candidates).first().copied();
    if !ctx.settings.enabled {
        return (
            Verification::unverified("verification is off (verify.enabled = false)"),
            usable_first(candidates),
        );
    }
    progress("waiting for the workspace trust answer");
    if let Err(why) = ctx.trusted.clone().await {
        return (Verification::unverified(why), usable_first(candidates));
    }
    if !candidates.iter().any(|c| c.rejected.is_none()) {
        return (
            Verification::unverified("no usable candidate to test"),
            None,
        );
    }
    progress("preparing the scratch copy and selecting tests");
    let class = class_of(input.lang, input.target);
    let req = VerifyRequest {
        root: ctx.root.clone(),
        rel_path: input.rel_path.to_string(),
        language: input.lang,
        name: input.target.symbol.name.clone(),
        class,
        doc: input.target.symbol.docstring.clone(),
        cache_dir: ctx.cache_dir.clone(),
        settings: ctx.settings.clone(),
    };
    let wb = match tokio::task::spawn_blocking(move || Workbench::prepare(req)).await {
        Ok(Ok(wb)) => wb,
        Ok(Err(e)) => {
            return (
                Verification::unverified(e.to_string()),
                usable_first(candidates),
            );
        }
        Err(e) => {
            return (
                Verification::unverified(format!("preparing verification failed: {e}")),
                usable_first(candidates),
            );
        }
    };
    let mut wb = wb;
    let mut notes: Vec<String> = wb.plan().notes.clone();
    if !wb.has_direct_tests() {
        if ctx.settings.generate_tests {
            progress("no tests found: asking the model for tests from the docstring");
            let stub = input.target.text(input.source).to_string();
            let mut req = Request::new(test_designer_prompt(
                input.lang,
                &input.target.symbol.qualified_name,
                &input.target.symbol.name,
                &stub,
            ));
            req.max_tokens = input.max_tokens.max(256);
            req.temperature = 0.0;
            req.n = 1;
            req.stop_when = Some(std::sync::Arc::new(codeforge_model::has_closed_code_block));
            match backend.generate(req).await {
                Ok(g) => {
                    let text = g
                        .samples
                        .first()
                        .map(|s| s.text.clone())
                        .unwrap_or_default();
                    let (_, code) = split_answer(input.lang, &text);
                    match wb.set_generated_tests(&code) {
                        Ok(n) => notes.push(format!(
                            "no workspace test calls it: checked against {n} model-written tests"
                        )),
                        Err(e) => notes.push(format!("model-written tests unusable: {e}")),
                    }
                }
                Err(e) => notes.push(format!("asking for tests failed: {e}")),
            }
        }
        if !wb.has_tests() {
            let mut v = Verification::unverified("no tests found");
            v.notes = notes;
            v.elapsed_ms = start.elapsed().as_millis() as u64;
            return (v, usable_first(candidates));
        }
    }
    if wb.has_tests() {
        progress("running the selected tests without the function");
        let dropped = wb.drop_tests_failing_without_it(input.source).await;
        if !dropped.is_empty() {
            notes.push(format!(
                "left out {} test(s) that already fail without this function: {}",
                dropped.len(),
                dropped.join(", ")
            ));
        }
        if !wb.has_tests() {
            let mut v =
                Verification::unverified("the only tests found already fail without this function");
            v.notes = notes;
            v.elapsed_ms = start.elapsed().as_millis() as u64;
            return (v, usable_first(candidates));
        }
    }
    let plan = wb.plan().clone();
    let mut selected: Vec<String> = plan.tests.iter().map(|t| t.name.clone()).collect();
    if plan.doctests {
        selected.push(format!("doctest of {}", input.target.symbol.name));
    }
    let mut runs: Vec<CandidateRun> = Vec::new();
    // Candidates in the order the model was surest of them.
    let order = by_confidence(candidates);
    let probe_agreement = wb.can_probe() && order.len() > 1;
    let total = order.len();
    for (k, idx) in order.iter().enumerate() {
        if start.elapsed() > budget {
            notes.push(format!(
                "time budget of {} s spent after {k} of {total} candidates",
                budget.as_secs()
            ));
            break;
        }
        progress(&format!("testing {}/{}", k + 1, total));
        let Some(src) = source_with(input.source, &candidates[*idx]) else {
            continue;
        };
        let report = wb.run(&src).await;
        let passed_all = report.all_passed();
        runs.push(CandidateRun {
            candidate: *idx,
            round: 0,
            fingerprint: None,
            report,
        });
        // Without agreement ranking the first full pass is as good as any: stop there.
        if passed_all && !probe_agreement {
            break;
        }
    }
    let mut rounds = 0;
    while !runs.iter().any(|r| r.report.all_passed())
        && rounds < ctx.settings.rounds
        && start.elapsed() < budget
        && !runs.is_empty()
    {
        rounds += 1;
        let best = runs
            .iter()
            .max_by_key(|r| score(r, 0, &candidates[r.candidate]))
            .map(|r| (r.candidate, r.report.failure_text(3000)))
            .expect("non-empty");
        let Some(function) = candidates[best.0].function.clone() else {
            break;
        };
        progress(&format!(
            "refining (round {rounds} of {})",
            ctx.settings.rounds
        ));
        let count = |t: &str| {
            backend
                .count_tokens(t)
                .unwrap_or_else(|| t.len().div_ceil(3))
        };
        let mut req = Request::new(refine_prompt(
            input.prompt,
            input.lang,
            &function,
            &best.1,
            700,
            &count,
        ));
        req.max_tokens = input.max_tokens;
        req.temperature = input.temperature;
        req.n = 1;
        req.stop_when = Some(std::sync::Arc::new(codeforge_model::has_closed_code_block));
        let answer = match backend.generate(req).await {
            Ok(g) => g,
            Err(e) => {
                notes.push(format!("refinement round {rounds} failed: {e}"));
                break;
            }
        };
        for s in &answer.samples {
            let index = candidates.len();
            let mut c = candidate_from_answer(
                input.lang,
                input.source,
                input.target,
                input.plan,
                index,
                &s.text,
            );
            c.mean_logprob = s.mean_logprob;
            if c.rejected.is_none()
                && let Some(prev) = candidates
                    .iter()
                    .find(|p| p.rejected.is_none() && p.body == c.body)
            {
                c.rejected = Some(format!("same body as candidate {}", prev.index));
            }
            let src = if c.rejected.is_none() {
                source_with(input.source, &c)
            } else {
                None
            };
            candidates.push(c);
            if let Some(src) = src {
                progress(&format!("testing the refinement of round {rounds}"));
                let report = wb.run(&src).await;
                runs.push(CandidateRun {
                    candidate: index,
                    round: rounds,
                    fingerprint: None,
                    report,
                });
            }
        }
    }
    // Agreement among candidates that pass everything: the biggest group that behaves alike on
    // further inputs is the most likely to be right (CodeT-style).
    let passing: Vec<usize> = (0..runs.len())
        .filter(|i| runs[*i].report.all_passed())
        .collect();
    let mut clusters: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    if passing.len() > 1 && wb.can_probe() {
        progress("comparing the passing candidates' behaviour");
        for i in &passing {
            let Some(src) = source_with(input.source, &candidates[runs[*i].candidate]) else {
                continue;
            };
            let fp = wb.probe(&src).await;
            if let Some(fp) = &fp {
                *clusters.entry(fp.clone()).or_default() += 1;
            }
            runs[*i].fingerprint = fp;
        }
    }
    let cluster_of = |r: &CandidateRun| {
        r.fingerprint
            .as_ref()
            .and_then(|f| clusters.get(f))
            .copied()
            .unwrap_or(0)
    };
    let best = runs
        .iter()
        .max_by_key(|r| score(r, cluster_of(r), &candidates[r.candidate]))
        .cloned();
    let sandbox = runs
        .first()
        .map(|r| r.report.sandbox.clone())
        .unwrap_or_default();
    let tests_from = if plan.generated {
        "generated"
    } else {
        "workspace"
    };
    let Some(best) = best else {
        let mut v = Verification::unverified("no candidate could be tested");
        v.notes = notes;
        return (v, usable_first(candidates));
    };
    let r = &best.report;
    let agreeing = cluster_of(&best);
    let disputed = r.all_passed() && passing.len() > 1 && !clusters.is_empty() && agreeing < 2;
    let status = match (r.all_passed(), disputed) {
        (true, false) => VerifyStatus::Passed,
        (true, true) => VerifyStatus::Disputed,
        _ => VerifyStatus::Failed,
    };
    let total_tests = r.passed + r.failed;
    let rounds_text = if rounds > 0 {
        format!(" in {} rounds", rounds + 1)
    } else {
        String::new()
    };
    let label = match status {
        VerifyStatus::Passed => format!(
            "✓ {}/{} {}tests passed ({}){}",
            r.passed,
            total_tests,
            if plan.generated { "model-written " } else { "" },
            short_list(&selected, 3),
            rounds_text
        ),
        VerifyStatus::Disputed => format!(
            "≈ {}/{} {}tests passed ({}), but the {} passing candidates behave differently on other inputs{}",
            r.passed,
            total_tests,
            if plan.generated { "model-written " } else { "" },
            short_list(&selected, 3),
            passing.len(),
            rounds_text
        ),
        _ if !r.compiled => format!("✗ best candidate does not compile{rounds_text}"),
        _ if r.timed_out => format!("✗ best candidate timed out{rounds_text}"),
        _ => format!(
            "✗ best candidate fails {}/{}{rounds_text}",
            r.failed,
            total_tests.max(1)
        ),
    };
    let agreement = (!clusters.is_empty()).then_some((agreeing, passing.len()));
    let show = matches!(status, VerifyStatus::Passed | VerifyStatus::Disputed)
        || ctx.settings.show_unverified;
    let shown = show.then_some(best.candidate);
    let feedback_id = record_attempt(ctx, &input, candidates, &runs, &plan, &selected, shown);
    let v = Verification {
        status,
        reason: None,
        label,
        tests_from,
        selected_tests: selected,
        passed: r.passed,
        failed: r.failed,
        rounds,
        candidates: runs.len(),
        elapsed_ms: start.elapsed().as_millis() as u64,
        sandbox,
        agreement,
        runs,
        notes,
        feedback_id,
    };
    (v, shown)
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
    let Some(target) = codeforge_syntax::function_at_line(lang, rel_path, &new_source, line) else {
        return Verification::unverified("not inside a function");
    };
    let name = target.symbol.name.clone();
    let req = VerifyRequest {
        root: ctx.root.clone(),
        rel_path: rel_path.to_string(),
        language: lang,
        name: name.clone(),
        class: class_of(lang, &target),
        doc: target.symbol.docstring.clone(),
        cache_dir: ctx.cache_dir.clone(),
        settings: ctx.settings.clone(),
    };
    let mut wb = match tokio::task::spawn_blocking(move || Workbench::prepare(req)).await {
        Ok(Ok(wb)) => wb,
        Ok(Err(e)) => return Verification::unverified(e.to_string()),
        Err(e) => return Verification::unverified(format!("preparing verification failed: {e}")),
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
            VerifyStatus::Passed,
            format!(
                "✓ {}/{} tests passed ({})",
                report.passed,
                total,
                short_list(&selected, 3)
            ),
        )
    } else if !report.compiled {
        (VerifyStatus::Failed, "✗ does not compile".to_string())
    } else if report.timed_out {
        (VerifyStatus::Failed, "✗ timed out".to_string())
    } else {
        (
            VerifyStatus::Failed,
            format!("✗ fails {}/{}", report.failed, total.max(1)),
        )
    };
    Verification {
        status,
        reason: None,
        label,
        tests_from: "workspace",
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
    input: &LoopInput<'_>,
    candidates: &[Candidate],
    runs: &[CandidateRun],
    plan: &codeforge_verify::TestPlan,
    selected: &[String],
    shown: Option<usize>,
) -> Option<String> {
    use codeforge_verify::feedback::{Attempt, CandidateRecord, StoredMessage, record};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let id = blake3::hash(
        format!(
            "{now}:{}:{}",
            ctx.root.display(),
            input.target.symbol.qualified_name
        )
        .as_bytes(),
    )
    .to_hex()[..16]
        .to_string();
    let prompt = match input.prompt {
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
    };
    let attempt = Attempt {
        id: id.clone(),
        unix_ms: now,
        workspace: ctx.root.display().to_string(),
        file: input.rel_path.to_string(),
        target: input.target.symbol.qualified_name.clone(),
        language: input.lang.name().to_string(),
        fence: input.lang.spec().generation.fence.clone(),
        prompt,
        context: input.context_labels.clone(),
        tests_from: if plan.generated {
            "generated".into()
        } else {
            "workspace".into()
        },
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
