//! The completion engine's state, shared by `textDocument/completion` and
//! `textDocument/inlineCompletion`: answers cached by the text around the cursor (the same
//! prefix/suffix never reaches the model twice), the model work in flight per document (a newer
//! cursor, in any document, supersedes it, unless the user only typed along its answer; closing
//! the document stops it), and the model call count. Owns that state; must not reach the client,
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
/// How long a completion request waits for the model before answering `isIncomplete`. Clients
/// ask again only on the next keystroke, so a user who stopped typing sees what comes within
/// this time or nothing: long enough for the embedded model's first item in a real file on 2
/// cores (3.5 s p50, 4.6 s p95 on Django), which is answered as soon as it is there.
pub(crate) const WAIT: Duration = Duration::from_millis(6000);
const CACHE_SIZE: usize = 128;

pub(crate) type Slot = watch::Receiver<Option<Result<Arc<Completions>, String>>>;

#[derive(Default)]
pub(crate) struct CompletionEngine {
    cache: Mutex<VecDeque<(u64, Arc<Completions>)>>,
    /// Per document: the latest model work (running or finished) and where it was asked.
    inflight: Mutex<HashMap<Uri, Inflight>>,
    /// Model calls made (for tests and logs).
    pub model_calls: std::sync::atomic::AtomicUsize,
}

/// Model work for one cursor of a document.
#[derive(Clone)]
pub(crate) struct Inflight {
    pub key: u64,
    pub rx: Slot,
    pub handle: tokio::task::AbortHandle,
    /// The document and cursor it was asked at.
    pub text: Arc<str>,
    pub offset: usize,
}

impl Inflight {
    /// What the user typed at this work's cursor to get from its document to `text` with the
    /// cursor at `offset` (insertions at the cursor only: nothing else changed), if that is how.
    pub fn typed_to<'t>(&self, text: &'t str, offset: usize) -> Option<&'t str> {
        let (old, at) = (&*self.text, self.offset);
        let typed_len = offset.checked_sub(at)?;
        (typed_len > 0
            && text.len() == old.len() + typed_len
            && text.is_char_boundary(at)
            && text.is_char_boundary(offset)
            && text[..at] == old[..at]
            && text[offset..] == old[at..])
            .then(|| &text[at..offset])
    }
}

impl CompletionEngine {
    /// Records new model work for a document's cursor. It supersedes all older work, in that
    /// document and in every other (there is one cursor: the model's time goes to it).
    pub fn start(&self, uri: &Uri, work: Inflight) {
        let mut inflight = self.inflight.lock().unwrap();
        for old in inflight.values() {
            old.handle.abort();
        }
        inflight.insert(uri.clone(), work);
    }

    /// A document's latest model work, running or finished.
    pub fn latest(&self, uri: &Uri) -> Option<Inflight> {
        self.inflight.lock().unwrap().get(uri).cloned()
    }

    /// Stops and forgets a document's work (it was closed).
    pub fn forget(&self, uri: &Uri) {
        if let Some(old) = self.inflight.lock().unwrap().remove(uri) {
            old.handle.abort();
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_at_the_cursor_is_told_from_other_edits() {
        let (tx, rx) = watch::channel(None);
        drop(tx);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = rt.block_on(async { tokio::spawn(async {}).abort_handle() });
        let work = Inflight {
            key: 1,
            rx,
            handle,
            text: "def f(x):\n    re\n".into(),
            offset: 16,
        };
        assert_eq!(work.typed_to("def f(x):\n    retu\n", 18), Some("tu"));
        assert_eq!(
            work.typed_to("def f(x):\n    re\n", 16),
            None,
            "nothing typed"
        );
        assert_eq!(
            work.typed_to("def g(x):\n    retu\n", 18),
            None,
            "an edit above"
        );
        assert_eq!(
            work.typed_to("def f(x):\n    retu\n\n", 18),
            None,
            "an edit below"
        );
        assert_eq!(work.typed_to("def f(x):\n    r\n", 15), None, "a deletion");
    }
}
