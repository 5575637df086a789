//! The "Generate function from docstring" pipeline: find the target at a line, gather context,
//! build the prompt within budget, ask the model for `n` candidates, and post-process each one
//! (take the code block, take the target's body, re-indent to the insertion point, reject stubs
//! and anything that does not parse in place). The result says what happened to every candidate
//! and what the model was shown. Given a [`VerifyContext`], verification (`verify.rs`) runs
//! between "candidates post-processed" and "chosen", and may add refined candidates. Nothing from
//! a secrets file (by its name: `.env`, `credentials.py`, …) is ever sent to a model.

use std::time::Instant;

use codeforge_config::{GenerationSettings, PlanSetting};
use codeforge_model::{Backend, ModelError, Request, Usage};
use codeforge_prompt::{
    BuiltPrompt, FunctionTask, Included, PlanMode, function_prompt, reask_prompt, split_answer,
};
use codeforge_syntax::secret_scan::is_secret_path;
use codeforge_syntax::{
    BodyEdit, FunctionTarget, Language, StubKind, body_from_generated, count_syntax_errors,
    extract, function_at_line, is_stub_body, splice_body, stub_functions,
};

use crate::context::{Retriever, gather_context};
use crate::verify::{LoopInput, Verification, VerifyContext, VerifyStatus, verify_candidates};

/// Where to generate.
#[derive(Debug, Clone)]
pub struct GenerateInput<'a> {
    pub language: Language,
    /// Workspace-relative path (module paths, and to keep the file's own symbols out of hits).
    pub rel_path: &'a str,
    pub source: &'a str,
    /// 0-based line anywhere in the function (doc comment included).
    pub line: usize,
    /// Generate even when the body is already implemented.
    pub allow_implemented: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TargetInfo {
    pub qualified_name: String,
    pub name: String,
    pub kind: String,
    /// 0-based lines of the definition, doc comment included.
    pub start_line: usize,
    pub end_line: usize,
    pub stub: StubKind,
}

impl TargetInfo {
    fn of(t: &FunctionTarget) -> Self {
        TargetInfo {
            qualified_name: t.symbol.qualified_name.clone(),
            name: t.symbol.name.clone(),
            kind: t.symbol.kind.name().to_string(),
            start_line: t.doc_start_line,
            end_line: t.symbol.end_line,
            stub: t.stub,
        }
    }
}

/// One model sample after post-processing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    pub index: usize,
    /// Why it was set aside; `None` when usable.
    pub rejected: Option<String>,
    /// The new body (dedented) and the edit that puts it in place.
    pub body: Option<String>,
    pub edit: Option<BodyEdit>,
    /// The whole function after the edit, doc comment included.
    pub function: Option<String>,
    pub plan: Option<String>,
    pub mean_logprob: Option<f64>,
    pub raw: String,
}

/// What the model was shown and how it went.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Explain {
    pub backend: String,
    pub prompt: String,
    pub prompt_tokens: usize,
    pub context: Vec<Included>,
    pub notes: Vec<String>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerateStatus {
    /// At least one candidate parses in place; `edit` holds the chosen one.
    Generated,
    /// The model answered, but no candidate was usable (see `candidates`).
    NoValidCandidate,
    /// Tests exist and no candidate passed them (nothing is shown unless `show_unverified`).
    NoPassingCandidate,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GenerateOutcome {
    pub status: GenerateStatus,
    pub target: TargetInfo,
    /// The chosen candidate's edit, against the source the pipeline was given.
    pub edit: Option<BodyEdit>,
    /// The chosen function, as it reads after the edit.
    pub code: Option<String>,
    pub chosen: Option<usize>,
    pub candidates: Vec<Candidate>,
    pub explain: Explain,
    /// How the chosen candidate was checked (`None` when verification was not asked for).
    pub verification: Option<Verification>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum GenerateError {
    #[error("no function or method at line {line}")]
    NoFunction { line: usize },
    #[error("`{name}` already has a body; generation only fills stubs here")]
    Implemented { name: String },
    #[error("`{path}` is a secrets file (by its name): nothing from it is sent to a model")]
    SecretFile { path: String },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The stubs "Generate function from docstring" is offered on (syntax only, no model); none in a
/// secrets file.
pub fn generate_targets(language: Language, rel_path: &str, source: &str) -> Vec<TargetInfo> {
    if is_secret_path(rel_path) {
        return Vec::new();
    }
    stub_functions(language, rel_path, source)
        .iter()
        .map(TargetInfo::of)
        .collect()
}

fn plan_mode(p: PlanSetting) -> PlanMode {
    match p {
        PlanSetting::Off => PlanMode::Off,
        PlanSetting::Drop => PlanMode::Drop,
        PlanSetting::Comments => PlanMode::Comments,
    }
}

/// Post-processes one answer against the target.
pub fn candidate_from_answer(
    lang: Language,
    source: &str,
    target: &FunctionTarget,
    plan: PlanMode,
    index: usize,
    answer: &str,
) -> Candidate {
    let mut c = Candidate {
        index,
        rejected: None,
        body: None,
        edit: None,
        function: None,
        plan: None,
        mean_logprob: None,
        raw: answer.to_string(),
    };
    let (plan_text, code) = split_answer(lang, answer);
    c.plan = plan_text.clone();
    let Some(mut body) = body_from_generated(lang, &code, &target.symbol.name) else {
        c.rejected = Some(format!(
            "the answer holds no body for `{}` that parses",
            target.symbol.name
        ));
        return c;
    };
    if is_stub_body(lang, &body) {
        c.rejected = Some("the answer is itself a stub".into());
        return c;
    }
    if plan == PlanMode::Comments
        && let Some(p) = &plan_text
    {
        let cm = &lang.spec().generation.line_comment;
        let comments: String = p
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{cm} {}\n", l.trim()))
            .collect();
        body = format!("{comments}{body}");
    }
    let edit = splice_body(target, &body);
    let new_source = format!(
        "{}{}{}",
        &source[..edit.start],
        edit.new_text,
        &source[edit.end..]
    );
    if count_syntax_errors(lang, &new_source) > count_syntax_errors(lang, source) {
        c.rejected = Some("the function does not parse once put in place".into());
        return c;
    }
    let delta = edit.new_text.len() as isize - (edit.end - edit.start) as isize;
    let fn_end = (target.symbol.end_byte as isize + delta).max(0) as usize;
    c.function = new_source
        .get(target.doc_start_byte..fn_end.min(new_source.len()))
        .map(str::to_string);
    c.body = Some(body);
    c.edit = Some(edit);
    c
}

/// The prompt for `target`: its context gathered (retrieval included) and fitted to the budget.
/// Also what `codeforge/context` shows without calling the model.
pub async fn build_prompt(
    retriever: Option<&dyn Retriever>,
    settings: &GenerationSettings,
    input: &GenerateInput<'_>,
    target: &FunctionTarget,
    count: &(dyn Fn(&str) -> usize + Sync),
) -> (BuiltPrompt, Option<String>) {
    let lang = input.language;
    let file = extract(lang, input.rel_path, input.source);
    let (context, note) = gather_context(
        lang,
        input.rel_path,
        input.source,
        &file,
        target,
        retriever,
        settings.context_hits,
    )
    .await;
    let task = FunctionTask {
        language: lang,
        path: input.rel_path.to_string(),
        qualified_name: target.symbol.qualified_name.clone(),
        name: target.symbol.name.clone(),
        stub_text: target.text(input.source).to_string(),
        context,
    };
    (
        function_prompt(
            &task,
            plan_mode(settings.plan),
            settings.prompt_tokens,
            count,
        ),
        note,
    )
}

/// Usable candidates, the one the model was surest of first (ties: the earlier one).
pub(crate) fn by_confidence(candidates: &[Candidate]) -> Vec<usize> {
    let mut u: Vec<&Candidate> = candidates.iter().filter(|c| c.rejected.is_none()).collect();
    u.sort_by(|a, b| {
        b.mean_logprob
            .unwrap_or(0.0)
            .partial_cmp(&a.mean_logprob.unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.index.cmp(&b.index))
    });
    u.into_iter().map(|c| c.index).collect()
}

/// Runs the pipeline for the function at `input.line`.
pub async fn generate_function(
    backend: &dyn Backend,
    retriever: Option<&dyn Retriever>,
    settings: &GenerationSettings,
    verify: Option<&VerifyContext>,
    input: GenerateInput<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<GenerateOutcome, GenerateError> {
    let start = Instant::now();
    if is_secret_path(input.rel_path) {
        return Err(GenerateError::SecretFile {
            path: input.rel_path.to_string(),
        });
    }
    let lang = input.language;
    let target = function_at_line(lang, input.rel_path, input.source, input.line)
        .ok_or(GenerateError::NoFunction { line: input.line })?;
    if target.stub == StubKind::Implemented && !input.allow_implemented {
        return Err(GenerateError::Implemented {
            name: target.symbol.qualified_name.clone(),
        });
    }
    progress("retrieving context");
    let count = |t: &str| {
        backend
            .count_tokens(t)
            .unwrap_or_else(|| t.len().div_ceil(3))
    };
    let plan = plan_mode(settings.plan);
    let (built, note) = build_prompt(retriever, settings, &input, &target, &count).await;
    progress(&format!("generating with {}", backend.describe()));
    let mut req = Request::new(built.prompt.clone());
    req.max_tokens = settings.max_tokens;
    req.temperature = settings.temperature;
    req.n = settings.n;
    // The answer is complete once its code block closes; anything after it is chatter.
    req.stop_when = Some(std::sync::Arc::new(codeforge_model::has_closed_code_block));
    let generation = backend.generate(req).await?;
    progress("checking candidates");
    let mut candidates: Vec<Candidate> = Vec::new();
    for (i, s) in generation.samples.iter().enumerate() {
        let mut c = candidate_from_answer(lang, input.source, &target, plan, i, &s.text);
        c.mean_logprob = s.mean_logprob;
        if c.rejected.is_none()
            && let Some(prev) = candidates
                .iter()
                .find(|p| p.rejected.is_none() && p.body == c.body)
        {
            c.rejected = Some(format!("same body as candidate {}", prev.index));
        }
        candidates.push(c);
    }
    // Nothing usable, and the user wants the checked loop: ask once more, with the answer and
    // why it was set aside (a 0.5B model sometimes answers with prose or test code).
    if let Some(ctx) = verify
        && ctx.settings.enabled
        && ctx.settings.rounds > 0
        && candidates.iter().all(|c| c.rejected.is_some())
        && let Some(first) = candidates.first()
    {
        progress("no usable answer: asking again");
        let reason = first.rejected.clone().unwrap_or_default();
        let mut again = Request::new(reask_prompt(
            &built.prompt,
            lang,
            &target.symbol.name,
            &first.raw,
            &reason,
        ));
        again.max_tokens = settings.max_tokens;
        again.temperature = settings.temperature;
        again.stop_when = Some(std::sync::Arc::new(codeforge_model::has_closed_code_block));
        if let Ok(g) = backend.generate(again).await {
            for s in &g.samples {
                let index = candidates.len();
                let mut c =
                    candidate_from_answer(lang, input.source, &target, plan, index, &s.text);
                c.mean_logprob = s.mean_logprob;
                candidates.push(c);
            }
        }
    }
    // Without verification: the usable candidate the model was most sure of, else the first.
    let mut chosen = by_confidence(&candidates).first().copied();
    let mut verification = None;
    let mut status = if chosen.is_some() {
        GenerateStatus::Generated
    } else {
        GenerateStatus::NoValidCandidate
    };
    if let Some(ctx) = verify
        && chosen.is_some()
    {
        let (v, pick) = verify_candidates(
            backend,
            ctx,
            LoopInput {
                lang,
                rel_path: input.rel_path,
                source: input.source,
                target: &target,
                prompt: &built.prompt,
                plan,
                max_tokens: settings.max_tokens,
                temperature: settings.temperature,
                context_labels: built
                    .context
                    .iter()
                    .filter(|c| !c.is_dropped())
                    .map(|c| c.label.clone())
                    .collect(),
            },
            &mut candidates,
            progress,
        )
        .await;
        chosen = pick;
        if chosen.is_none() && v.status == VerifyStatus::Failed {
            status = GenerateStatus::NoPassingCandidate;
        }
        verification = Some(v);
    }
    let pick = chosen.and_then(|i| candidates.iter().find(|c| c.index == i));
    let mut notes: Vec<String> = note.into_iter().collect();
    if built.context.iter().any(Included::is_dropped) {
        notes.push(format!(
            "some context did not fit the {}-token prompt budget",
            settings.prompt_tokens
        ));
    }
    Ok(GenerateOutcome {
        status,
        verification,
        target: TargetInfo::of(&target),
        edit: pick.and_then(|c| c.edit.clone()),
        code: pick.and_then(|c| c.function.clone()),
        chosen,
        explain: Explain {
            backend: backend.describe(),
            prompt: built.prompt.render_plain(),
            prompt_tokens: built.tokens,
            context: built.context,
            notes,
            usage: generation.usage,
        },
        candidates,
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}
