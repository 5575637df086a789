//! One generation run as a typed object, phase by phase: the target (from the request's one
//! [`ParsedFile`]) → context and prompt → samples → candidates (re-asked once when none is
//! usable) → verification → [`Outcome`]. Each phase is a small method; the model is reached only
//! through the run's [`Sampler`], tests only through `checking.rs`.

use std::time::Instant;

use codeforge_config::{GenerationSettings, PlanSetting};
use codeforge_model::Backend;
use codeforge_prompt::{
    BuiltPrompt, FunctionTask, Included, PlanMode, SnippetKind, function_prompt,
};
use codeforge_syntax::secret_scan::is_secret_path;
use codeforge_syntax::{FunctionTarget, Importable, ParsedFile, StubKind};

use crate::candidate::by_confidence;
use crate::checking::{AttemptInfo, VerificationStatus, VerifyContext, verify_candidates};
use crate::context::{Retriever, gather_context};
use crate::generate::{Explain, GenerateError, GenerateInput, GenerateStatus, Outcome, TargetInfo};
use crate::sampler::{RequestTemplate, Sampler, token_counter};

pub(crate) fn plan_mode(p: PlanSetting) -> PlanMode {
    match p {
        PlanSetting::Off => PlanMode::Off,
        PlanSetting::Drop => PlanMode::Drop,
        PlanSetting::Comments => PlanMode::Comments,
    }
}

/// The prompt for `target`: its context gathered (retrieval included) and fitted to the budget.
/// Also what `codeforge/context` shows without calling the model.
pub async fn build_prompt(
    retriever: Option<&dyn Retriever>,
    settings: &GenerationSettings,
    file: &ParsedFile,
    target: &FunctionTarget,
    count: &(dyn Fn(&str) -> usize + Sync),
) -> (BuiltPrompt, Option<String>, Vec<Importable>) {
    let lang = file.language();
    let (context, importable, note) = gather_context(
        lang,
        file.rel_path(),
        file.source(),
        file.extracted(),
        target,
        retriever,
        settings.context_hits,
    )
    .await;
    let task = FunctionTask {
        language: lang,
        path: file.rel_path().to_string(),
        qualified_name: target.symbol.qualified_name.clone(),
        name: target.symbol.name.clone(),
        stub_text: target.text(file.source()).to_string(),
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
        importable,
    )
}

/// The function generation targets at `input.line`, found in one parse.
pub fn target_at(
    file: &ParsedFile,
    line: usize,
    allow_implemented: bool,
) -> Result<FunctionTarget, GenerateError> {
    if is_secret_path(file.rel_path()) {
        return Err(GenerateError::SecretFile {
            path: file.rel_path().to_string(),
        });
    }
    let target = file
        .function_at_line(line)
        .ok_or(GenerateError::NoFunction { line })?;
    if target.stub == StubKind::Implemented && !allow_implemented {
        return Err(GenerateError::Implemented {
            name: target.symbol.qualified_name.clone(),
        });
    }
    Ok(target)
}

/// One run: what it works on and what it has so far.
pub struct GenerationRun<'a> {
    settings: &'a GenerationSettings,
    retriever: Option<&'a dyn Retriever>,
    verify: Option<&'a VerifyContext>,
    progress: &'a (dyn Fn(&str) + Sync),
    sampler: Sampler<'a>,
    start: Instant,
}

impl<'a> GenerationRun<'a> {
    pub fn new(
        backend: &'a dyn Backend,
        retriever: Option<&'a dyn Retriever>,
        settings: &'a GenerationSettings,
        verify: Option<&'a VerifyContext>,
        file: &'a ParsedFile,
        target: &'a FunctionTarget,
        progress: &'a (dyn Fn(&str) + Sync),
    ) -> Self {
        // Answers repeat the signature and docstring before the body: that text comes on top
        // of `max_tokens` (a long docstring otherwise leaves no room for the body).
        let mut template = RequestTemplate::from_settings(settings);
        let repeated = token_counter(backend)(target.text(file.source()));
        template.max_tokens = template
            .max_tokens
            .saturating_add(u32::try_from(repeated).unwrap_or(u32::MAX).min(4096));
        GenerationRun {
            settings,
            retriever,
            verify,
            progress,
            sampler: Sampler::new(backend, file, target, template, plan_mode(settings.plan)),
            start: Instant::now(),
        }
    }

    /// Runs every phase.
    pub async fn run(mut self) -> Result<Outcome, GenerateError> {
        let (built, note, importable) = self.context().await;
        self.sampler.set_importable(importable);
        self.samples(&built).await?;
        let (verification, chosen, status) = self.verification(&built).await;
        Ok(self.outcome(built, note, verification, chosen, status))
    }

    /// Phase 1: context and prompt.
    async fn context(&self) -> (BuiltPrompt, Option<String>, Vec<Importable>) {
        (self.progress)("retrieving context");
        let count = token_counter(self.sampler.backend());
        build_prompt(
            self.retriever,
            self.settings,
            self.sampler.file(),
            self.sampler.target(),
            &count,
        )
        .await
    }

    /// Phases 2 and 3: the first samples as candidates; when none is usable and the user wants
    /// the checked loop, one more ask with the answer and why it was set aside (a 0.5B model
    /// sometimes answers with prose or test code).
    async fn samples(&mut self, built: &BuiltPrompt) -> Result<(), GenerateError> {
        let describe = self.sampler.backend().describe();
        (self.progress)(&format!("generating with {describe}"));
        let labels = built
            .context
            .iter()
            .filter(|c| {
                !c.is_dropped() && matches!(c.kind, SnippetKind::SameFile | SnippetKind::Retrieved)
            })
            .map(|c| c.label.clone())
            .collect();
        self.sampler.first(&built.prompt, labels).await?;
        (self.progress)("checking candidates");
        // Asked again whenever answers are checked (an echo of the prompt, prose or test code
        // from a small model is common), even with no refinement rounds.
        let wants_loop = self.verify.is_some_and(|v| v.settings.enabled);
        if wants_loop && !self.sampler.candidates.iter().any(|c| c.usable()) {
            (self.progress)("no usable answer: asking again");
            // A failed re-ask leaves the first answers as they are.
            let _ = self.sampler.reask().await;
        }
        Ok(())
    }

    /// Phase 4: without verification, the usable candidate the model was most sure of; with
    /// it, what the check-and-refine loop shows.
    async fn verification(
        &mut self,
        built: &BuiltPrompt,
    ) -> (
        Option<crate::checking::Verification>,
        Option<usize>,
        GenerateStatus,
    ) {
        let chosen = by_confidence(&self.sampler.candidates).first().copied();
        let status = if chosen.is_some() {
            GenerateStatus::Generated
        } else {
            GenerateStatus::NoValidCandidate
        };
        let Some(ctx) = self.verify.filter(|_| chosen.is_some()) else {
            return (None, chosen, status);
        };
        let attempt = AttemptInfo {
            context_labels: built
                .context
                .iter()
                .filter(|c| !c.is_dropped())
                .map(|c| c.label.clone())
                .collect(),
        };
        let (v, pick) = Box::pin(verify_candidates(
            ctx,
            &mut self.sampler,
            attempt,
            self.progress,
        ))
        .await;
        let status = if pick.is_none() && v.status == VerificationStatus::Failed {
            GenerateStatus::NoPassingCandidate
        } else {
            status
        };
        (Some(v), pick, status)
    }

    /// Phase 5: the typed outcome.
    fn outcome(
        self,
        built: BuiltPrompt,
        note: Option<String>,
        verification: Option<crate::checking::Verification>,
        chosen: Option<usize>,
        status: GenerateStatus,
    ) -> Outcome {
        let backend = self.sampler.backend().describe();
        let target = TargetInfo::of(self.sampler.target());
        let usage = self.sampler.usage.clone();
        let candidates = self.sampler.candidates;
        let pick = chosen.and_then(|i| candidates.iter().find(|c| c.index == i));
        let mut notes: Vec<String> = note.into_iter().collect();
        if built.context.iter().any(Included::is_dropped) {
            notes.push(format!(
                "some context did not fit the {}-token prompt budget",
                self.settings.prompt_tokens
            ));
        }
        Outcome {
            status,
            target,
            edit: pick.and_then(|c| c.edit.clone()),
            extra_edits: pick.map(|c| c.extra_edits.clone()).unwrap_or_default(),
            code: pick.and_then(|c| c.function.clone()),
            chosen,
            explain: Explain {
                backend,
                prompt: built.prompt.render_plain(),
                prompt_tokens: built.tokens,
                context: built.context,
                notes,
                usage,
            },
            verification,
            candidates,
            elapsed_ms: self.start.elapsed().as_millis() as u64,
        }
    }
}

/// Runs the pipeline for the function at `input.line`: one parse of the file, then the run.
pub async fn generate_function(
    backend: &dyn Backend,
    retriever: Option<&dyn Retriever>,
    settings: &GenerationSettings,
    verify: Option<&VerifyContext>,
    input: GenerateInput<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, GenerateError> {
    if is_secret_path(input.rel_path) {
        return Err(GenerateError::SecretFile {
            path: input.rel_path.to_string(),
        });
    }
    let file = ParsedFile::parse(input.language, input.rel_path, input.source);
    let target = target_at(&file, input.line, input.allow_implemented)?;
    Box::pin(
        GenerationRun::new(
            backend, retriever, settings, verify, &file, &target, progress,
        )
        .run(),
    )
    .await
}
