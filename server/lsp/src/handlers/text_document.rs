//! Document sync notifications: `didOpen`, `didChange` (applied before any await, so edits are
//! never reordered), `didSave`, `didClose`; changed files go to their workspace's index. Must not
//! import the `LanguageServer` impl.

use codeforge_config::WORKSPACE_CONFIG_FILE;
use tower_lsp_server::ls_types::*;

use crate::line_index::apply_change;
use crate::session::{Document, Session, uri_path};

pub(crate) fn did_open(session: &Session, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    session.documents().insert(
        doc.uri.clone(),
        Document {
            text: doc.text,
            version: doc.version,
            dirty: false,
        },
    );
    session.warm_completion_context(&doc.uri);
}

pub(crate) fn did_change(session: &Session, params: DidChangeTextDocumentParams) {
    let uri = params.text_document.uri;
    {
        let mut docs = session.documents();
        let Some(doc) = docs.get_mut(&uri) else {
            return;
        };
        for change in params.content_changes {
            let range = change.range.map(|r| {
                (
                    (r.start.line, r.start.character),
                    (r.end.line, r.end.character),
                )
            });
            apply_change(&mut doc.text, range, &change.text);
        }
        doc.version = params.text_document.version;
        doc.dirty = true;
    }
    session.notify_file(&uri);
}

pub(crate) fn did_save(session: &Session, params: DidSaveTextDocumentParams) {
    let uri = params.text_document.uri;
    if let Some(doc) = session.documents().get_mut(&uri) {
        if let Some(text) = params.text {
            doc.text = text;
        }
        doc.dirty = false;
    }
    if let Some(path) = uri_path(&uri)
        && path.file_name().is_some_and(|n| n == WORKSPACE_CONFIG_FILE)
    {
        return;
    }
    session.notify_file(&uri);
    session.warm_completion_context(&uri);
}

pub(crate) fn did_close(session: &Session, params: DidCloseTextDocumentParams) {
    let uri = params.text_document.uri;
    // Completion work for a closed document is for nobody.
    session.completion_engine().forget(&uri);
    let was_dirty = session.documents().remove(&uri).is_some_and(|d| d.dirty);
    if was_dirty {
        // Closed without saving: the index goes back to the disk content.
        session.notify_file(&uri);
    }
}
