//! One handler per LSP method (or group of notifications): each takes the [`Session`] and the
//! request's parameters and returns its answer. Handlers use the session, the pipeline modules
//! (`generation`, `completion_engine`) and the conversions (`proto`, `to_proto`); they must not
//! import the `LanguageServer` impl (`server.rs`), which only dispatches to them.
//!
//! [`Session`]: crate::session::Session

pub(crate) mod code_action;
pub(crate) mod code_action_resolve;
pub(crate) mod completion;
pub(crate) mod context;
pub(crate) mod document_symbol;
pub(crate) mod execute_command;
pub(crate) mod generate;
pub(crate) mod health;
pub(crate) mod inline_completion;
pub(crate) mod lifecycle;
pub(crate) mod text_document;
pub(crate) mod workspace_changes;
pub(crate) mod workspace_symbol;
