//! Work-done progress (`window/workDoneProgress/create`, then `$/progress` begin/report/end),
//! written once for indexing and generation. A [`WorkDone`] is a cheap handle: steps go through a
//! channel to one task that talks to the client, in order, dropping a step identical to the last.
//! Owns the progress token and the step channel; must not know about sessions or handlers.

use codeforge_index::Progress;
use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::NumberOrString;

use crate::workspace::ProgressSink;

/// A step: a message and, for progress that has one, a percentage.
type Step = (String, Option<u32>);

/// One progress sequence (or nothing, when the client does not take progress).
#[derive(Clone)]
pub(crate) struct WorkDone {
    tx: Option<mpsc::UnboundedSender<Option<Step>>>,
}

impl WorkDone {
    /// A sequence that shows nothing.
    pub fn disabled() -> WorkDone {
        WorkDone { tx: None }
    }

    /// Asks the client for a token (waiting for its answer), then begins with `first` in the
    /// background. A percentage in `first` makes the whole sequence carry one.
    pub async fn begin(client: Client, kind: &str, title: String, first: Step) -> WorkDone {
        let token = progress_token(kind);
        if client
            .create_work_done_progress(token.clone())
            .await
            .is_err()
        {
            return WorkDone::disabled();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(relay(client, token, title, first, rx));
        WorkDone { tx: Some(tx) }
    }

    /// Like [`WorkDone::begin`] without waiting: steps sent before the client answered are
    /// kept and follow the begin (nothing is shown if the client refuses the token).
    pub fn begin_detached(client: Client, kind: &str, title: String, first: Step) -> WorkDone {
        let token = progress_token(kind);
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            if client
                .create_work_done_progress(token.clone())
                .await
                .is_err()
            {
                while rx.recv().await.is_some() {}
                return;
            }
            relay(client, token, title, first, rx).await;
        });
        WorkDone { tx: Some(tx) }
    }

    /// Reports a step (`percentage` is ignored by a sequence begun without one).
    pub fn report(&self, message: impl Into<String>, percentage: Option<u32>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Some((message.into(), percentage)));
        }
    }

    /// Reports `message` as the last step (100 % where there is a percentage) and ends with it.
    pub fn end(&self, message: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Some((message, Some(100))));
            let _ = tx.send(None);
        }
    }
}

/// `42 s`, `7 min`, `1 h 05 min`.
fn duration_text(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", (secs + 30) / 60),
        _ => format!("{} h {:02} min", secs / 3600, (secs % 3600 + 30) / 60),
    }
}

/// Indexing progress: scanning, then parsing up to 60 %, embedding up to 99 %.
impl ProgressSink for WorkDone {
    fn report(&self, p: &Progress) {
        let (msg, pct) = match p {
            Progress::Scanning => ("scanning".to_string(), 0),
            Progress::Parsing { done, total } => (
                format!("parsing {done}/{total} files"),
                (*done * 60 / (*total).max(1)) as u32,
            ),
            Progress::Embedding { done, total, eta_s } => (
                format!(
                    "embedding {done}/{total} symbols{} (search works meanwhile)",
                    eta_s
                        .map(|s| format!(", about {} left", duration_text(s)))
                        .unwrap_or_default()
                ),
                60 + (*done * 39 / (*total).max(1)) as u32,
            ),
            Progress::Finishing => ("writing the index".to_string(), 60),
        };
        WorkDone::report(self, msg, Some(pct));
    }

    fn end(&self, message: String) {
        WorkDone::end(self, message);
    }
}

/// Sends the steps until the end (or until every handle is gone), then finishes with the last
/// message.
async fn relay(
    client: Client,
    token: NumberOrString,
    title: String,
    (first, first_pct): Step,
    mut rx: mpsc::UnboundedReceiver<Option<Step>>,
) {
    let progress = client.progress(token, title).with_message(first.clone());
    // The last step reported (a repeat of it is dropped) and the message to finish with.
    let mut last: Option<Step> = None;
    let mut end = first;
    match first_pct {
        Some(pct) => {
            let ongoing = progress.with_percentage(pct).begin().await;
            while let Some(Some((m, p))) = rx.recv().await {
                let p = p.or(last.as_ref().and_then(|l| l.1)).unwrap_or(pct);
                if last
                    .as_ref()
                    .is_some_and(|(lm, lp)| *lm == m && *lp == Some(p))
                {
                    continue;
                }
                ongoing.report_with_message(m.clone(), p).await;
                end = m.clone();
                last = Some((m, Some(p)));
            }
            ongoing.finish_with_message(end).await;
        }
        None => {
            let ongoing = progress.begin().await;
            while let Some(Some((m, _))) = rx.recv().await {
                if last.as_ref().is_some_and(|(lm, _)| *lm == m) {
                    continue;
                }
                ongoing.report(m.clone()).await;
                end = m.clone();
                last = Some((m, None));
            }
            ongoing.finish_with_message(end).await;
        }
    }
}

/// A fresh `$/progress` token, `codeforge/<kind>/<nanoseconds>`.
fn progress_token(kind: &str) -> NumberOrString {
    NumberOrString::String(format!(
        "codeforge/{kind}/{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ))
}

#[cfg(test)]
mod tests {
    use super::duration_text;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(42), "42 s");
        assert_eq!(duration_text(60), "1 min");
        assert_eq!(duration_text(7 * 60 + 40), "8 min");
        assert_eq!(duration_text(3600 + 5 * 60), "1 h 05 min");
    }
}
