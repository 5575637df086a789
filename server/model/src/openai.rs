//! The OpenAI-compatible HTTP backend (reqwest, streamed with server-sent events): chat prompts go
//! to `/chat/completions`, text prompts (plain or FIM) to `/completions`. Owns timeouts (connect,
//! first token, total), retries with backoff on 429/5xx/unreachable, and `n` samples (asked for in
//! one request; topped up with more requests where a server ignores `n`). The API key goes only
//! into the `Authorization` header: never into logs, errors or `Debug` output.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::timeout_at;

use crate::{
    Backend, FinishReason, Generation, ModelError, Prompt, Request, Sample, TimeoutPhase, Usage,
};

#[derive(Clone)]
pub struct OpenAiConfig {
    /// Base URL ending in the API version, e.g. `http://localhost:8000/v1`.
    pub base_url: String,
    pub model: String,
    /// The key itself (the caller reads it from the environment variable the config names).
    pub api_key: Option<String>,
    /// Text prompts use Qwen2.5-Coder's FIM tokens.
    pub fim: bool,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub total_timeout: Duration,
    /// Extra attempts after a transient failure.
    pub retries: u32,
    /// The server honours `n` (vLLM, SGLang do; Ollama and llama.cpp's server do not).
    pub supports_n: bool,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("fim", &self.fim)
            .field("total_timeout", &self.total_timeout)
            .finish()
    }
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            fim: false,
            connect_timeout: Duration::from_secs(5),
            first_token_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            retries: 2,
            supports_n: true,
        }
    }
}

/// What `GET {base_url}/models` said: the HTTP status and the model ids listed.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: u16,
    pub models: Vec<String>,
}

/// Asks an OpenAI-compatible server for its models (`codeforge doctor`): whether it answers at
/// all within `limit`, with what status, and which models it lists. The key is sent, never shown.
pub async fn probe(
    base_url: &str,
    api_key: Option<&str>,
    limit: Duration,
) -> Result<Probe, String> {
    let url = format!("{}/models", base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(limit)
        .timeout(limit)
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.get(&url);
    if let Some(k) = api_key {
        req = req.bearer_auth(k);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::error_chain(&e)))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let models = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(String::from))
        .collect();
    Ok(Probe { status, models })
}

pub struct OpenAiBackend {
    cfg: OpenAiConfig,
    client: reqwest::Client,
}

impl OpenAiBackend {
    pub fn new(cfg: OpenAiConfig) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .build()
            .map_err(|e| ModelError::Unreachable {
                url: cfg.base_url.clone(),
                message: e.to_string(),
            })?;
        Ok(OpenAiBackend { cfg, client })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.cfg.base_url.trim_end_matches('/'), path)
    }

    fn body(&self, req: &Request, n: u32) -> (String, Value) {
        let mut body = match &req.prompt {
            Prompt::Chat(messages) => json!({ "model": self.cfg.model, "messages": messages }),
            Prompt::Text(text) => json!({ "model": self.cfg.model, "prompt": text }),
        };
        let path = match &req.prompt {
            Prompt::Chat(_) => "chat/completions",
            Prompt::Text(_) => "completions",
        };
        let o = body.as_object_mut().expect("object");
        o.insert("max_tokens".into(), json!(req.max_tokens));
        o.insert("temperature".into(), json!(req.temperature));
        if req.temperature > 0.0 {
            o.insert("top_p".into(), json!(req.top_p));
        }
        if !req.stop.is_empty() {
            o.insert("stop".into(), json!(req.stop));
        }
        if n > 1 {
            o.insert("n".into(), json!(n));
        }
        if let Some(seed) = req.seed {
            o.insert("seed".into(), json!(seed));
        }
        o.insert("stream".into(), json!(true));
        (self.url(path), body)
    }

    /// One HTTP exchange asking for `n` samples.
    async fn attempt(
        &self,
        req: &Request,
        n: u32,
        start: Instant,
    ) -> Result<Generation, ModelError> {
        let (url, body) = self.body(req, n);
        let mut rb = self.client.post(&url).json(&body);
        if let Some(key) = &self.cfg.api_key {
            rb = rb.bearer_auth(key);
        }
        let first_deadline = tokio::time::Instant::from_std(start + self.cfg.first_token_timeout);
        let first_timeout = || ModelError::Timeout {
            phase: TimeoutPhase::FirstToken,
            ms: self.cfg.first_token_timeout.as_millis() as u64,
        };
        let mut resp = timeout_at(first_deadline, rb.send())
            .await
            .map_err(|_| first_timeout())?
            .map_err(|e| self.send_error(e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(ModelError::Http {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));

        let mut samples: Vec<Option<Sample>> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut usage = Usage::default();
        let mut got_text = false;
        if !is_sse {
            // A server that ignored `stream`: one JSON document.
            let bytes = timeout_at(first_deadline, resp.bytes())
                .await
                .map_err(|_| first_timeout())?
                .map_err(|_| ModelError::StreamCut)?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ModelError::Malformed(format!("{e} in {}", preview(&bytes))))?;
            absorb(&v, &mut texts, &mut samples, &mut usage, req, false)?;
            usage.first_token_ms = start.elapsed().as_millis() as u64;
        } else {
            let mut buf: Vec<u8> = Vec::new();
            let mut done = false;
            while !done {
                let chunk = if got_text {
                    resp.chunk().await
                } else {
                    timeout_at(first_deadline, resp.chunk())
                        .await
                        .map_err(|_| first_timeout())?
                };
                let chunk = match chunk {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(_) => return Err(ModelError::StreamCut),
                };
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim();
                    let Some(data) = line.strip_prefix("data:") else {
                        continue;
                    };
                    let data = data.trim();
                    if data == "[DONE]" {
                        done = true;
                        break;
                    }
                    let v: Value = serde_json::from_str(data).map_err(|e| {
                        ModelError::Malformed(format!("{e} in {}", preview(data.as_bytes())))
                    })?;
                    if absorb(&v, &mut texts, &mut samples, &mut usage, req, true)? && !got_text {
                        got_text = true;
                        usage.first_token_ms = start.elapsed().as_millis() as u64;
                    }
                    // Every sample stopped early: hang up rather than read the rest.
                    if req.stop_when.is_some()
                        && samples.len() as u32 >= n
                        && samples.iter().all(Option::is_some)
                    {
                        done = true;
                        break;
                    }
                }
            }
            let all_finished = !samples.is_empty() && samples.iter().all(Option::is_some);
            if !done && !all_finished {
                return Err(ModelError::StreamCut);
            }
        }
        let out: Vec<Sample> = texts
            .into_iter()
            .zip(samples)
            .map(|(text, s)| {
                let finish = s.map(|s| s.finish).unwrap_or(FinishReason::Other);
                Sample {
                    text,
                    finish,
                    mean_logprob: None,
                }
            })
            .collect();
        if out.is_empty() {
            return Err(ModelError::Malformed("no choices in the answer".into()));
        }
        usage.total_ms = start.elapsed().as_millis() as u64;
        Ok(Generation {
            samples: out,
            usage,
        })
    }

    fn send_error(&self, e: reqwest::Error) -> ModelError {
        if e.is_timeout() && e.is_connect() {
            return ModelError::Timeout {
                phase: TimeoutPhase::Connect,
                ms: self.cfg.connect_timeout.as_millis() as u64,
            };
        }
        // reqwest's message names the URL but never headers, so no key can leak here.
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message = format!("{message}: {s}");
            src = s.source();
        }
        ModelError::Unreachable {
            url: self.cfg.base_url.clone(),
            message,
        }
    }

    async fn run(&self, req: Request) -> Result<Generation, ModelError> {
        let start = Instant::now();
        let want = req.n.max(1);
        let mut samples = Vec::new();
        let mut usage = Usage::default();
        while (samples.len() as u32) < want {
            let ask = if self.cfg.supports_n {
                want - samples.len() as u32
            } else {
                1
            };
            let mut attempt = 0;
            let g = loop {
                match self.attempt(&req, ask, Instant::now()).await {
                    Ok(g) => break g,
                    Err(e) if e.is_transient() && attempt < self.cfg.retries => {
                        attempt += 1;
                        let wait = Duration::from_millis(250 * (1 << attempt.min(6)));
                        tracing::warn!("model request failed ({e}); retry {attempt} in {wait:?}");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            if usage.first_token_ms == 0 {
                usage.first_token_ms = (start.elapsed().as_millis() as u64)
                    .saturating_sub(g.usage.total_ms)
                    + g.usage.first_token_ms;
            }
            usage.prompt_tokens += g.usage.prompt_tokens;
            usage.completion_tokens += g.usage.completion_tokens;
            let got = g.samples.len();
            samples.extend(g.samples);
            if got == 0 {
                break;
            }
        }
        samples.truncate(want as usize);
        if samples.iter().all(|s| s.text.trim().is_empty()) {
            return Err(ModelError::Empty);
        }
        usage.total_ms = start.elapsed().as_millis() as u64;
        Ok(Generation { samples, usage })
    }
}

/// Folds one answer object (a stream chunk or a whole answer) into the per-choice texts.
/// Returns whether it carried text.
fn absorb(
    v: &Value,
    texts: &mut Vec<String>,
    finished: &mut Vec<Option<Sample>>,
    usage: &mut Usage,
    req: &Request,
    streamed: bool,
) -> Result<bool, ModelError> {
    if let Some(err) = v.get("error") {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string());
        let status = err.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
        return Err(ModelError::Http {
            status,
            message: clip(&message, 300),
        });
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        usage.prompt_tokens = u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
        usage.completion_tokens = u
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        if v.get("usage").is_some() {
            return Ok(false);
        }
        return Err(ModelError::Malformed(format!(
            "no `choices` in {}",
            preview(v.to_string().as_bytes())
        )));
    };
    let mut any = false;
    for (pos, c) in choices.iter().enumerate() {
        let idx = c
            .get("index")
            .and_then(Value::as_u64)
            .map(|i| i as usize)
            .unwrap_or(pos);
        if idx > 1024 {
            return Err(ModelError::Malformed(format!("choice index {idx}")));
        }
        while texts.len() <= idx {
            texts.push(String::new());
            finished.push(None);
        }
        let delta = if streamed {
            c.get("delta")
                .and_then(|d| d.get("content"))
                .or_else(|| c.get("text"))
        } else {
            c.get("message")
                .and_then(|d| d.get("content"))
                .or_else(|| c.get("text"))
        };
        if let Some(t) = delta.and_then(Value::as_str)
            && !t.is_empty()
        {
            texts[idx].push_str(t);
            any = true;
            if finished[idx].is_none() && req.stop_when.as_ref().is_some_and(|f| f(&texts[idx])) {
                finished[idx] = Some(Sample {
                    text: String::new(),
                    finish: FinishReason::Stop,
                    mean_logprob: None,
                });
            }
            if let Some(sink) = &req.on_text {
                sink(idx, t);
            }
        }
        if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
            let finish = match f {
                "stop" | "eos" => FinishReason::Stop,
                "length" => FinishReason::Length,
                _ => FinishReason::Other,
            };
            finished[idx] = Some(Sample {
                text: String::new(),
                finish,
                mean_logprob: None,
            });
        }
    }
    Ok(any)
}

/// The `error.message` of an OpenAI-style error body, else the body's start.
fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && let Some(m) = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .or_else(|| v.get("error").and_then(Value::as_str))
    {
        return clip(m, 300);
    }
    let t = body.trim();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        clip(t, 300)
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn preview(b: &[u8]) -> String {
    format!("`{}`", clip(&String::from_utf8_lossy(b), 80))
}

impl Backend for OpenAiBackend {
    fn describe(&self) -> String {
        format!(
            "openai-compatible {} model {}",
            self.cfg.base_url, self.cfg.model
        )
    }

    fn fim(&self) -> bool {
        self.cfg.fim
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Generation, ModelError>> {
        Box::pin(async move {
            let total = self.cfg.total_timeout;
            match tokio::time::timeout(total, self.run(req)).await {
                Ok(r) => r,
                Err(_) => Err(ModelError::Timeout {
                    phase: TimeoutPhase::Total,
                    ms: total.as_millis() as u64,
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let mut c = OpenAiConfig::new("http://h/v1", "m");
        c.api_key = Some("sk-secret-123".into());
        assert!(!format!("{c:?}").contains("sk-secret"));
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_message(r#"{"error":{"message":"model not found"}}"#),
            "model not found"
        );
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(error_message(&"é".repeat(400)).chars().count(), 151);
    }
}
