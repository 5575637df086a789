//! The completion engine's state, shared by `textDocument/completion` and
//! `textDocument/inlineCompletion`: answers cached by the text around the cursor (the same
//! prefix/suffix never reaches the model twice), the model work in flight per document (a newer
//! cursor supersedes it), and the model call count. Owns that state; must not reach the client,
//! the session or handlers (the handlers drive it).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codeforge_ide::Completions;
use codeforge_syntax::Language;
use tokio::sync::watch;
use tower_lsp_server::ls_types::Uri;

/// Quiet time before the model is asked (typing bursts collapse into one call).
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(75);
/// How long a completion request waits for the model before answering `isIncomplete`.
pub(crate) const WAIT: Duration = Duration::from_millis(2500);
const CACHE_SIZE: usize = 128;

pub(crate) type Slot = watch::Receiver<Option<Result<Arc<Completions>, String>>>;

#[derive(Default)]
pub(crate) struct CompletionEngine {
    cache: Mutex<VecDeque<(u64, Arc<Completions>)>>,
    /// Per document: the key being computed, its result channel, and the task.
    pub inflight: Mutex<HashMap<Uri, (u64, Slot, tokio::task::AbortHandle)>>,
    /// Model calls made (for tests and logs).
    pub model_calls: std::sync::atomic::AtomicUsize,
}

impl CompletionEngine {
    pub fn cached(&self, key: u64) -> Option<Arc<Completions>> {
        let mut c = self.cache.lock().unwrap();
        let pos = c.iter().position(|(k, _)| *k == key)?;
        let hit = c.remove(pos)?;
        c.push_front(hit.clone());
        Some(hit.1)
    }

    pub fn store(&self, key: u64, v: Arc<Completions>) {
        let mut c = self.cache.lock().unwrap();
        c.retain(|(k, _)| *k != key);
        c.push_front((key, v));
        c.truncate(CACHE_SIZE);
    }
}

/// The cache key of a cursor: the language, up to 4000 bytes before it and 2000 after, the
/// generation settings.
pub(crate) fn key_of(lang: Language, prefix: &str, suffix: &str, settings: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut p = prefix.len().saturating_sub(4000);
    while !prefix.is_char_boundary(p) {
        p += 1;
    }
    let mut s = suffix.len().min(2000);
    while !suffix.is_char_boundary(s) {
        s -= 1;
    }
    (lang, &prefix[p..], &suffix[..s], settings).hash(&mut h);
    h.finish()
}
