//! `textDocument/completion`: AI completion items at three granularities (rest of line, block,
//! function; labelled, sorted below everything else), and the engine's answer for a cursor that
//! `textDocument/inlineCompletion` shares. Requests are debounced per document; a newer request
//! supersedes (aborts) older model work, in any document, unless the user typed along its answer; results are
//! cached by the text around the cursor. The line item is answered as soon as the model has
//! written its line (`isIncomplete`: the block and function items follow for the next request);
//! a request that cannot wait for the model answers `isIncomplete` and the model keeps going for
//! the client's next request; a request cancelled with `$/cancelRequest` stops the model work.
//! Must not import the `LanguageServer` impl.

use std::sync::Arc;

use codeforge_ide::{
    CompletionInput, Completions, Level, LineSink, complete_streaming, verify_items,
};
use codeforge_syntax::Language;
use tokio::sync::watch;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;

use crate::completion_engine::{DEBOUNCE, Inflight, Slot, WAIT, key_of};
use crate::line_index::LineIndex;
use crate::proto::COMPLETION_ACCEPTED_COMMAND;
use crate::session::{Session, uri_path};

/// Aborts the model task if the request is dropped (cancelled) while still armed.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// The engine's answer for a cursor: `None` while the model is still working.
pub(crate) async fn completions_at(
    session: &Session,
    uri: &Uri,
    position: Position,
) -> RpcResult<Option<(Arc<Completions>, String, usize, u64)>> {
    let Some(path) = uri_path(uri) else {
        return Ok(Some(empty()));
    };
    let Some(lang) = Language::from_path(&path) else {
        return Ok(Some(empty()));
    };
    let Some((text, _)) = session.document_text(uri) else {
        return Ok(Some(empty()));
    };
    let index = LineIndex::new(&text);
    let offset = index.offset(&text, position.line, position.character);
    let (rel, settings, _) = session.rel_and_settings(&path);
    let repo = session.completion_repo(&path);
    let key = key_of(
        lang,
        &text[..offset],
        &text[offset..],
        &format!("{:?}", settings.generation),
    );
    let engine = session.completion_engine();
    if let Some(hit) = engine.cached(key) {
        return Ok(Some((hit, text, offset, key)));
    }
    let latest = engine.latest(uri);
    // The user typed along the answer of the work in flight (or just finished) at an earlier
    // cursor: its items that start with what was typed, without it, instead of asking the
    // model again (the work goes on; nothing supersedes it).
    if let Some(work) = latest.as_ref().filter(|w| w.key != key)
        && let Some(typed) = work.typed_to(&text, offset)
    {
        let alive = match &*work.rx.borrow() {
            None => !work.handle.is_finished(),
            Some(Ok(c)) => c.typed_along(typed).is_some(),
            Some(Err(_)) => false,
        };
        if alive {
            let typed = typed.to_string();
            match wait_answer(&mut work.rx.clone()).await {
                None => return Ok(None),
                Some(Ok(c)) => {
                    if let Some(along) = c.typed_along(&typed) {
                        let along = Arc::new(along);
                        if !along.pending {
                            engine.store(key, along.clone());
                        }
                        return Ok(Some((along, text, offset, key)));
                    }
                }
                Some(Err(_)) => {}
            }
        }
    }
    let (mut rx, handle) = match latest.filter(|w| w.key == key) {
        Some(w) => (w.rx, w.handle),
        None => {
            let model = match session.model_for(&settings, false).await {
                Ok(m) => m,
                Err(e) => {
                    if !e.offered {
                        session.show_error(format!("CodeForge: {e}")).await;
                    }
                    return Ok(Some(empty()));
                }
            };
            let (tx, rx) = watch::channel(None);
            let tx = Arc::new(tx);
            let gen_settings = settings.generation.clone();
            let src: Arc<str> = text.as_str().into();
            let engine_calls = session.completion_engine().clone();
            let verify = session.quiet_verify_context(&path, &settings);
            let task_src = src.clone();
            let task = tokio::spawn(async move {
                tokio::time::sleep(DEBOUNCE).await;
                engine_calls
                    .model_calls
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let input = CompletionInput {
                    language: lang,
                    rel_path: &rel,
                    source: &task_src,
                    offset,
                };
                // The line item goes out as soon as its line ends.
                let line_tx = tx.clone();
                let on_line: LineSink = Arc::new(move |c: Completions| {
                    line_tx.send_if_modified(|v| {
                        let first = v.is_none();
                        if first {
                            *v = Some(Ok(Arc::new(c.clone())));
                        }
                        first
                    });
                });
                let r = complete_streaming(
                    model.as_ref(),
                    repo,
                    &gen_settings,
                    input.clone(),
                    Some(on_line),
                )
                .await;
                let r = match (r, verify) {
                    // Multi-line items are shown once the function's tests have run on
                    // them; line items go out at once.
                    (Ok(c), Some(ctx))
                        if ctx.settings.enabled
                            && c.items.iter().any(|(_, t)| t.contains('\n')) =>
                    {
                        let _ = tx.send(Some(Ok(Arc::new(c.held_back()))));
                        Ok(verify_items(&ctx, input, c).await)
                    }
                    (r, _) => r,
                };
                let r = r.map(Arc::new).map_err(|e| e.to_string());
                if let Ok(c) = &r {
                    engine_calls.store(key, c.clone());
                }
                let _ = tx.send(Some(r));
            });
            let handle = task.abort_handle();
            // A newer cursor supersedes older work.
            engine.start(
                uri,
                Inflight {
                    key,
                    rx: rx.clone(),
                    handle: handle.clone(),
                    text: src,
                    offset,
                },
            );
            (rx, handle)
        }
    };
    let mut guard = AbortOnDrop(Some(handle));
    let answer = wait_answer(&mut rx).await;
    guard.0 = None; // answered or timed out: let the model finish for the next request
    match answer {
        Some(Ok(c)) => Ok(Some((c, text, offset, key))),
        Some(Err(e)) => {
            tracing::warn!("completion failed: {e}");
            Ok(Some(empty()))
        }
        // Aborted by a newer request, or still working.
        None => Ok(None),
    }
}

/// Waits up to [`WAIT`] for a work's answer: the final one, or its streamed line item; after
/// that, whatever is there (line items while the multi-line ones are tested). `None`: nothing
/// yet, or the work was superseded.
async fn wait_answer(rx: &mut Slot) -> Option<Result<Arc<Completions>, String>> {
    let ready = |v: &Option<Result<Arc<Completions>, String>>| match v {
        Some(Err(_)) => true,
        Some(Ok(c)) => !c.pending || (c.partial && !c.items.is_empty()),
        None => false,
    };
    let waited = match tokio::time::timeout(WAIT, rx.wait_for(ready)).await {
        Ok(Ok(v)) => Ok(v.clone()),
        Ok(Err(_)) => Err(true),
        Err(_) => Err(false),
    };
    match waited {
        Ok(v) => v,
        Err(true) => None,
        Err(false) => rx.borrow().clone(),
    }
}

pub(crate) async fn completion(
    session: &Session,
    params: CompletionParams,
) -> RpcResult<Option<CompletionResponse>> {
    let pos = params.text_document_position;
    let Some((c, text, offset, key)) =
        completions_at(session, &pos.text_document.uri, pos.position).await?
    else {
        return Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: Vec::new(),
        })));
    };
    let index = LineIndex::new(&text);
    // Replace the identifier being typed, so clients' filtering keeps our items.
    let word_start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, ch)| ch.is_alphanumeric() || *ch == '_')
        .last()
        .map_or(offset, |(i, _)| i);
    let typed = &text[word_start..offset];
    let (sl, sc) = index.position(&text, word_start);
    let (el, ec) = index.position(&text, offset);
    let ranked = c.ranked();
    let items = c
        .items
        .iter()
        .map(|(level, t)| {
            let first = t
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let more = t
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
                .saturating_sub(1);
            let preview = if more > 0 {
                format!("{typed}{first} … (+{more} lines)")
            } else {
                format!("{typed}{first}")
            };
            CompletionItem {
                label: preview,
                label_details: Some(CompletionItemLabelDetails {
                    detail: None,
                    description: Some(match c.verdict(*level) {
                        // The verdict's mark: ✓ passed, ✗ failed (shown with
                        // `show_unverified`), ⚠ nothing could be run.
                        Some(v) => format!(
                            "CodeForge: {} {}",
                            level.label(),
                            v.label.chars().next().unwrap_or(' ')
                        ),
                        None => format!("CodeForge: {}", level.label()),
                    }),
                }),
                kind: Some(CompletionItemKind::SNIPPET),
                detail: Some(format!(
                    "CodeForge · {} · {}",
                    level.label(),
                    c.verdict(*level).map_or_else(
                        || "unverified (no tests run)".to_string(),
                        |v| v.label.clone()
                    )
                )),
                documentation: Some(Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: format!("```{}\n{typed}{t}\n```", "text"),
                })),
                // After everything else the server or other servers offer.
                // Among them, the one the user most likely takes first (`Completions::ranked`).
                sort_text: Some(format!(
                    "~~~codeforge{}",
                    ranked
                        .iter()
                        .position(|l| l == level)
                        .unwrap_or(ranked.len())
                )),
                filter_text: Some(format!("{typed}{first}")),
                text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                    range: Range {
                        start: Position::new(sl, sc),
                        end: Position::new(el, ec),
                    },
                    new_text: format!("{typed}{t}"),
                })),
                insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
                // Taking the item tells the server, which keeps it for fine-tuning.
                command: Some(accepted_command(&pos.text_document.uri, key, *level)),
                // The typed verdict (editors read `data.verification.status`, not the label).
                data: c.verdict(*level).map(|v| {
                    serde_json::json!({
                        "verification": {"status": v.status.as_str(), "label": v.label}
                    })
                }),
                ..Default::default()
            }
        })
        .collect();
    Ok(Some(CompletionResponse::List(CompletionList {
        // More (the tested multi-line items) is coming.
        is_incomplete: c.pending,
        items,
    })))
}

pub(crate) fn empty() -> (Arc<Completions>, String, usize, u64) {
    (Arc::new(Completions::default()), String::new(), 0, 0)
}

/// The command an item carries: the client runs it when the user takes the item.
pub(crate) fn accepted_command(uri: &Uri, key: u64, level: Level) -> Command {
    Command {
        title: "CodeForge: completion accepted".into(),
        command: COMPLETION_ACCEPTED_COMMAND.into(),
        arguments: Some(vec![serde_json::json!({
            "uri": uri,
            "key": key.to_string(),
            "level": level.rank(),
        })]),
    }
}

/// The level of a rank as `level_rank` gives it.
pub(crate) fn level_of_rank(rank: u64) -> Option<Level> {
    [Level::Line, Level::Block, Level::Function]
        .into_iter()
        .find(|l| u64::from(l.rank()) == rank)
}
