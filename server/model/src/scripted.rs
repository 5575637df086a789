//! A scripted backend for tests only: answers from a queue, records every prompt, and can hang
//! (to test cancellation) or fail (to test fault handling). Never offered to users.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::{Backend, FinishReason, Generation, ModelError, Prompt, Request, Sample, Usage};

#[derive(Debug, Clone)]
pub enum ScriptedReply {
    Text(String),
    Fail(ModelError),
    /// Never answers (until dropped).
    Hang,
    /// Answers after a delay.
    Slow(Duration, String),
    /// Streams the text a line at a time, waiting the delay before each line (a model that
    /// writes slowly, for streaming tests).
    Lines(Duration, String),
}

#[derive(Default)]
pub struct Scripted {
    queue: Mutex<VecDeque<ScriptedReply>>,
    /// Answer when the queue is empty (else `ModelError::Empty`).
    fallback: Option<String>,
    prompts: Mutex<Vec<Prompt>>,
    /// Per request: its `avoid_starts` and temperature.
    asked: Mutex<Vec<(Option<Vec<String>>, f32)>>,
    /// Whether it claims to honour `avoid_starts` (it answers from its queue either way).
    steers: bool,
    calls: AtomicUsize,
    dropped: std::sync::Arc<AtomicUsize>,
}

impl Scripted {
    pub fn new(replies: impl IntoIterator<Item = ScriptedReply>) -> Self {
        Scripted {
            queue: Mutex::new(replies.into_iter().collect()),
            ..Default::default()
        }
    }

    /// Always answers `text`.
    pub fn always(text: impl Into<String>) -> Self {
        Scripted {
            fallback: Some(text.into()),
            ..Default::default()
        }
    }

    /// Claims to honour [`Request::avoid_starts`] as the embedded model does (the answers still
    /// come from the queue: the script plays the model's next-best answers).
    pub fn steering(mut self) -> Self {
        self.steers = true;
        self
    }

    pub fn push(&self, r: ScriptedReply) {
        self.queue.lock().unwrap().push_back(r);
    }

    /// Requests seen so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Requests whose future was dropped before it answered.
    pub fn cancelled(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    pub fn prompts(&self) -> Vec<Prompt> {
        self.prompts.lock().unwrap().clone()
    }

    /// Each request's `avoid_starts` and temperature, in order.
    pub fn asked(&self) -> Vec<(Option<Vec<String>>, f32)> {
        self.asked.lock().unwrap().clone()
    }

    fn next(&self) -> Option<ScriptedReply> {
        self.queue
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| self.fallback.clone().map(ScriptedReply::Text))
    }
}

struct DropCount(std::sync::Arc<AtomicUsize>, bool);
impl Drop for DropCount {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Backend for Scripted {
    fn describe(&self) -> String {
        "scripted (tests only)".into()
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        Some(text.len().div_ceil(4))
    }

    fn steers(&self) -> bool {
        self.steers
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Generation, ModelError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.prompts.lock().unwrap().push(req.prompt.clone());
        self.asked
            .lock()
            .unwrap()
            .push((req.avoid_starts.clone(), req.temperature));
        let replies: Vec<Option<ScriptedReply>> = (0..req.n.max(1)).map(|_| self.next()).collect();
        let guard = DropCount(self.dropped.clone(), false);
        Box::pin(async move {
            // Move the whole guard in (not just the field), so it drops with the future.
            let mut guard = guard;
            let mut samples = Vec::new();
            for (i, r) in replies.into_iter().enumerate() {
                let text = match r {
                    None => {
                        guard.1 = true;
                        return Err(ModelError::Empty);
                    }
                    Some(ScriptedReply::Fail(e)) => {
                        guard.1 = true;
                        return Err(e);
                    }
                    Some(ScriptedReply::Hang) => futures::future::pending::<String>().await,
                    Some(ScriptedReply::Slow(d, t)) => {
                        tokio::time::sleep(d).await;
                        t
                    }
                    Some(ScriptedReply::Lines(d, t)) => {
                        for line in t.split_inclusive('\n') {
                            tokio::time::sleep(d).await;
                            if let Some(sink) = &req.on_text {
                                sink(i, line);
                            }
                        }
                        samples.push(Sample {
                            text: t,
                            finish: FinishReason::Stop,
                            mean_logprob: None,
                        });
                        continue;
                    }
                    Some(ScriptedReply::Text(t)) => t,
                };
                if let Some(sink) = &req.on_text {
                    sink(i, &text);
                }
                samples.push(Sample {
                    text,
                    finish: FinishReason::Stop,
                    mean_logprob: None,
                });
            }
            guard.1 = true;
            Ok(Generation {
                samples,
                usage: Usage::default(),
            })
        })
    }
}
