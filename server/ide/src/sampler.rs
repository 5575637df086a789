//! Where every model request of a generation is made: one request template (token cap,
//! temperature, samples, stop at the end of the code block) for first samples, the re-ask after
//! unusable answers, refinement with test failures, model-written tests and completion. The
//! [`Sampler`] of a generation also turns answers into [`Candidate`]s against the request's one
//! [`ParsedFile`], numbering them and setting aside repeats. Prompts come from `codeforge-prompt`
//! (pure); this module only asks.

use std::sync::Arc;

use codeforge_config::GenerationSettings;
use codeforge_model::{Backend, Generation, ModelError, Prompt, Request, Usage};
use codeforge_prompt::{PlanMode, reask_prompt, refine_prompt, split_answer, test_designer_prompt};
use codeforge_syntax::{FunctionTarget, Importable, ParsedFile};

use crate::candidate::{Candidate, EchoMarkers, candidate_from_answer, reject_repeat};

/// Tokens of test output fed back in a refinement.
const FEEDBACK_TOKENS: usize = 700;

/// The settings every request of one run shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestTemplate {
    pub max_tokens: u32,
    pub temperature: f32,
    /// Samples asked for first; later asks take one.
    pub n: u32,
}

impl RequestTemplate {
    pub fn from_settings(s: &GenerationSettings) -> Self {
        RequestTemplate {
            max_tokens: s.max_tokens,
            temperature: s.temperature,
            n: s.n,
        }
    }

    /// A request for `prompt` with `n` samples that stops once a code block closes (a chat
    /// answer is complete there; anything after it is chatter).
    pub fn request(&self, prompt: Prompt, n: u32) -> Request {
        let mut req = Request::new(prompt);
        req.max_tokens = self.max_tokens;
        req.temperature = self.temperature;
        req.n = n;
        req.stop_when = Some(Arc::new(codeforge_model::has_closed_code_block));
        req
    }
}

/// Token counting with the backend's tokenizer where it has one, else about 3 bytes a token.
pub fn token_counter(backend: &dyn Backend) -> impl Fn(&str) -> usize + Sync + '_ {
    move |t: &str| {
        backend
            .count_tokens(t)
            .unwrap_or_else(|| t.len().div_ceil(3))
    }
}

/// The model side of one generation: the backend, the file and target the answers are fitted
/// to, and the candidates so far.
pub struct Sampler<'a> {
    backend: &'a dyn Backend,
    file: &'a ParsedFile,
    target: &'a FunctionTarget,
    template: RequestTemplate,
    plan: PlanMode,
    /// The first prompt (re-ask and refinement continue its conversation).
    prompt: Option<Prompt>,
    echo: EchoMarkers,
    /// Repository symbols retrieval found, with their imports (auto-import).
    importable: Vec<Importable>,
    pub candidates: Vec<Candidate>,
    /// Of the first samples.
    pub usage: Usage,
}

impl<'a> Sampler<'a> {
    pub fn new(
        backend: &'a dyn Backend,
        file: &'a ParsedFile,
        target: &'a FunctionTarget,
        template: RequestTemplate,
        plan: PlanMode,
    ) -> Self {
        Sampler {
            backend,
            file,
            target,
            template,
            plan,
            prompt: None,
            echo: EchoMarkers::default(),
            importable: Vec::new(),
            candidates: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// The repository symbols answers may use without importing them: their imports are added.
    pub fn set_importable(&mut self, importable: Vec<Importable>) {
        self.importable = importable;
    }

    pub fn backend(&self) -> &'a dyn Backend {
        self.backend
    }

    pub fn file(&self) -> &'a ParsedFile {
        self.file
    }

    pub fn target(&self) -> &'a FunctionTarget {
        self.target
    }

    /// The first prompt, once asked.
    pub fn prompt(&self) -> Option<&Prompt> {
        self.prompt.as_ref()
    }

    pub fn template(&self) -> RequestTemplate {
        self.template
    }

    /// Post-processes the generation's samples into new candidates; returns their indices.
    fn take(&mut self, g: Generation) -> Vec<usize> {
        let mut added = Vec::new();
        for s in &g.samples {
            let index = self.candidates.len();
            let mut c = candidate_from_answer(
                self.file,
                self.target,
                self.plan,
                index,
                &s.text,
                &self.importable,
            );
            c.mean_logprob = s.mean_logprob;
            if c.usable() {
                c.rejected = self.echo.find(&c);
            }
            reject_repeat(&mut c, &self.candidates);
            self.candidates.push(c);
            added.push(index);
        }
        added
    }

    /// The first `n` samples for `prompt`, which showed the context labelled `context_labels`
    /// (an answer that repeats one is unusable).
    pub async fn first(
        &mut self,
        prompt: &Prompt,
        context_labels: Vec<String>,
    ) -> Result<Vec<usize>, ModelError> {
        self.prompt = Some(prompt.clone());
        self.echo = EchoMarkers::new(self.file, self.target, context_labels);
        let g = self
            .backend
            .generate(self.template.request(prompt.clone(), self.template.n))
            .await?;
        self.usage = g.usage.clone();
        Ok(self.take(g))
    }

    /// Asks once more after unusable answers, with the first answer and why it was set aside.
    pub async fn reask(&mut self) -> Result<Vec<usize>, ModelError> {
        let (Some(prompt), Some(first)) = (&self.prompt, self.candidates.first()) else {
            return Ok(Vec::new());
        };
        let again = reask_prompt(
            prompt,
            self.file.language(),
            &self.target.symbol.name,
            &first.raw,
            first.rejected.as_deref().unwrap_or_default(),
        );
        let g = self
            .backend
            .generate(self.template.request(again, self.template.n))
            .await?;
        Ok(self.take(g))
    }

    /// One refinement of `function` given its test `failures`.
    pub async fn refine(
        &mut self,
        function: &str,
        failures: &str,
    ) -> Result<Vec<usize>, ModelError> {
        let Some(prompt) = &self.prompt else {
            return Ok(Vec::new());
        };
        let count = token_counter(self.backend);
        let p = refine_prompt(
            prompt,
            self.file.language(),
            function,
            failures,
            FEEDBACK_TOKENS,
            &count,
        );
        let g = self.backend.generate(self.template.request(p, 1)).await?;
        Ok(self.take(g))
    }

    /// Tests written by the model from the target's docstring (greedy, one sample); the code of
    /// its answer.
    pub async fn tests(&self) -> Result<String, ModelError> {
        let lang = self.file.language();
        let t = self.target;
        let p = test_designer_prompt(
            lang,
            &t.symbol.qualified_name,
            &t.symbol.name,
            t.text(self.file.source()),
        );
        let mut req = self.template.request(p, 1);
        req.max_tokens = self.template.max_tokens.max(256);
        req.temperature = 0.0;
        let g = self.backend.generate(req).await?;
        let text = g
            .samples
            .first()
            .map(|s| s.text.clone())
            .unwrap_or_default();
        Ok(split_answer(lang, &text).1)
    }
}
