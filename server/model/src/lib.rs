//! Model backends behind one small trait: an OpenAI-compatible HTTP client (remote Qwen-72B on
//! vLLM/SGLang/DashScope, or a local Ollama/llama.cpp/vLLM server), the embedded Qwen GGUF run
//! in-process with candle, and a scripted backend for tests. Knows nothing of LSP, prompts or the
//! index: it takes a rendered [`Prompt`] and returns text.
//!
//! Cancellation is by drop: dropping the future returned by [`Backend::generate`] closes the HTTP
//! connection or stops the embedded model between two tokens.

mod bert;
mod embedded;
mod openai;
pub mod pull;
mod qwen2;
mod scripted;
mod vnni;

use std::sync::Arc;

pub use bert::{BertInt8, BertShape};
pub use embedded::{EmbeddedConfig, EmbeddedQwen, LoadReport, prepare_gguf};
pub use openai::{OpenAiBackend, OpenAiConfig, Probe, probe};
pub use scripted::{Scripted, ScriptedReply};
/// Whether this CPU runs the embedded model's AVX-512 VNNI kernels (else candle's).
pub use vnni::available as vnni_kernels_available;

use futures::future::BoxFuture;

/// An error with every cause after it (`reqwest` hides "connection refused" two sources down).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Who speaks in a chat prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(c: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: c.into(),
        }
    }
    pub fn user(c: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: c.into(),
        }
    }
    pub fn assistant(c: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: c.into(),
        }
    }
}

/// What the model is asked: a chat conversation or raw text to continue (plain or FIM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Chat(Vec<Message>),
    Text(String),
}

impl Prompt {
    /// The prompt as one string (for logging sizes and for `--explain`).
    pub fn render_plain(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(m) => chatml(m, true),
        }
    }
}

/// Qwen's ChatML rendering, ending with an open assistant turn when `open` is set.
pub fn chatml(messages: &[Message], open: bool) -> String {
    let mut s = String::new();
    for m in messages {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        s.push_str("<|im_start|>");
        s.push_str(role);
        s.push('\n');
        s.push_str(&m.content);
        s.push_str("<|im_end|>\n");
    }
    if open {
        s.push_str("<|im_start|>assistant\n");
    }
    s
}

/// Called with (sample index, text delta) as text streams in.
pub type TokenSink = Arc<dyn Fn(usize, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Request {
    pub prompt: Prompt,
    pub max_tokens: u32,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub stop: Vec<String>,
    /// Samples wanted.
    pub n: u32,
    pub seed: Option<u64>,
    pub on_text: Option<TokenSink>,
    /// Ends a sample early once its text so far satisfies this (e.g. a code block closed).
    pub stop_when: Option<StopPredicate>,
    /// A retry after answers that were of no use: until the answer's first code (its first
    /// token with text other than whitespace), greedy decoding skips the stop tokens and every
    /// token whose code begins one of these texts or begins with one (`"return True"` skips
    /// `return` and `re`; `"```"` every run of backticks), so the model gives its next-best
    /// answer that holds code. Only backends whose [`Backend::steers`] is true honour it.
    pub avoid_starts: Option<Vec<String>>,
}

/// Checked on a sample's text as it grows.
pub type StopPredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Whether `line` is a fence line that can close a code block: only backticks (three or more),
/// indented by at most three spaces, as CommonMark has it. A docstring's indented "```pycon"
/// example inside the code neither opens nor closes the block.
pub fn is_closing_fence(line: &str) -> bool {
    let t = line.trim();
    fence_indent_ok(line) && t.len() >= 3 && t.chars().all(|c| c == '`')
}

fn fence_indent_ok(line: &str) -> bool {
    line.len() - line.trim_start_matches(' ').len() <= 3
}

/// True once `text` holds a complete fenced code block: an opening fence line, then a closing one
/// ([`is_closing_fence`]).
pub fn has_closed_code_block(text: &str) -> bool {
    let mut open = false;
    for l in text.lines() {
        if open && is_closing_fence(l) {
            return true;
        }
        open |= fence_indent_ok(l) && l.trim_start().starts_with("```");
    }
    false
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("prompt_chars", &self.prompt.render_plain().len())
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("n", &self.n)
            .finish()
    }
}

impl Request {
    pub fn new(prompt: Prompt) -> Self {
        Request {
            prompt,
            max_tokens: 256,
            temperature: 0.0,
            top_p: 0.95,
            stop: Vec::new(),
            n: 1,
            seed: None,
            on_text: None,
            stop_when: None,
            avoid_starts: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    Other,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    pub text: String,
    pub finish: FinishReason,
    /// Mean log-probability per generated token, where the backend knows it.
    pub mean_logprob: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    /// Prompt tokens whose keys and values were already cached (embedded backend), not computed.
    pub cached_prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Time to the first generated text, and in all.
    pub first_token_ms: u64,
    pub total_ms: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generation {
    pub samples: Vec<Sample>,
    pub usage: Usage,
}

/// Which phase of a request ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    Connect,
    FirstToken,
    Total,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::FirstToken => "waiting for the first token",
            TimeoutPhase::Total => "generating",
        })
    }
}

/// Everything that can go wrong, in words a user can act on. Messages never contain API keys.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("model backend at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("model backend timed out {phase} after {:.1} s", *ms as f64 / 1000.0)]
    Timeout { phase: TimeoutPhase, ms: u64 },
    #[error("model backend answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("model backend sent a malformed answer: {0}")]
    Malformed(String),
    #[error("model backend closed the stream before finishing")]
    StreamCut,
    #[error("model backend returned an empty answer")]
    Empty,
    #[error("{0}")]
    ModelMissing(String),
    #[error("embedded model failed: {0}")]
    Inference(String),
    #[error("request cancelled")]
    Cancelled,
}

impl ModelError {
    /// Worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            ModelError::Http { status, .. } => *status == 429 || *status >= 500,
            ModelError::Unreachable { .. } => true,
            _ => false,
        }
    }
}

/// A way to get text from a model.
pub trait Backend: Send + Sync {
    /// Short description for logs and `--explain`, e.g. `openai http://h/v1 qwen2.5-72b`.
    fn describe(&self) -> String;
    /// Whether this backend wants FIM-formatted text prompts for infill.
    fn fim(&self) -> bool {
        false
    }
    /// Counts tokens the way the model does, where it can (for prompt budgets).
    fn count_tokens(&self, text: &str) -> Option<usize> {
        let _ = text;
        None
    }
    /// Whether greedy requests honour [`Request::avoid_starts`] (the embedded model does; an
    /// HTTP server cannot be told, and is asked at a temperature instead).
    fn steers(&self) -> bool {
        false
    }
    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Generation, ModelError>>;
}

/// Whether a token whose text is `token` may start an answer that must avoid `avoid` (see
/// [`Request::avoid_starts`]): whitespace may, code may unless it begins one of those texts or
/// begins with one.
pub fn may_start(token: &str, avoid: &[String]) -> bool {
    let code = token.trim_start();
    code.is_empty()
        || !avoid
            .iter()
            .filter(|a| !a.is_empty())
            .any(|a| a.starts_with(code) || code.starts_with(a.as_str()))
}

/// Cuts `text` at the first stop string; returns whether one was found.
pub fn cut_at_stop(text: &mut String, stop: &[String]) -> bool {
    let cut = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    if let Some(i) = cut {
        text.truncate(i);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_block_closes_on_a_closing_fence_line_only() {
        assert!(has_closed_code_block(
            "Plan.\n```python\ndef f():\n    return 1\n```"
        ));
        assert!(!has_closed_code_block("```python\ndef f():\n    return 1"));
        // humanize's docstrings hold fenced examples: the sample goes on past them.
        let doc = "```python\ndef f():\n    \"\"\"One.\n\n    ```pycon\n    >>> f()\n    1\n    ```\n    \"\"\"\n";
        assert!(!has_closed_code_block(doc));
        assert!(has_closed_code_block(&format!("{doc}    return 1\n```\n")));
    }

    #[test]
    fn an_avoided_start_rules_out_its_prefixes_and_extensions_only() {
        let avoid = vec!["return True".to_string(), "```".to_string()];
        for t in ["return", " re", "``", "`", "```python", "return True:"] {
            assert!(!may_start(t, &avoid), "{t:?}");
        }
        for t in ["    ", "\n", "if", " result", "ret_val", ""] {
            assert!(may_start(t, &avoid), "{t:?}");
        }
    }

    #[test]
    fn chatml_renders_an_open_assistant_turn() {
        let p = chatml(&[Message::system("s"), Message::user("u")], true);
        assert_eq!(
            p,
            "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn stop_strings_cut_at_the_earliest() {
        let mut t = "abc\n```\nxyz<|im_end|>".to_string();
        assert!(cut_at_stop(&mut t, &["<|im_end|>".into(), "```".into()]));
        assert_eq!(t, "abc\n");
        let mut t = "abc".to_string();
        assert!(!cut_at_stop(&mut t, &["".into()]));
        assert_eq!(t, "abc");
    }

    #[test]
    fn transient_errors() {
        assert!(
            ModelError::Http {
                status: 429,
                message: String::new()
            }
            .is_transient()
        );
        assert!(
            ModelError::Http {
                status: 503,
                message: String::new()
            }
            .is_transient()
        );
        assert!(
            !ModelError::Http {
                status: 401,
                message: String::new()
            }
            .is_transient()
        );
        assert!(!ModelError::Malformed(String::new()).is_transient());
    }
}
