//! What the server offers (`initialize`'s capabilities, the watched-file globs, derived from the
//! languages' extensions) and what it takes from the client's capabilities. Owns those two
//! descriptions; must not hold state, reach the client, the session or handlers.

use codeforge_syntax::Language;
use tower_lsp_server::ls_types::*;

use crate::proto::{
    COMPLETION_ACCEPTED_COMMAND, GENERATE_COMMAND, GENERATE_KIND, PULL_MODELS_COMMAND,
    REINDEX_COMMAND, TRUST_COMMAND, UNTRUST_COMMAND,
};

/// What the server uses of the client's capabilities.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClientCaps {
    pub work_done_progress: bool,
    pub dynamic_watched_files: bool,
    pub code_action_resolve: bool,
    pub document_changes: bool,
}

impl ClientCaps {
    pub fn of(c: &ClientCapabilities) -> ClientCaps {
        ClientCaps {
            work_done_progress: c
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            dynamic_watched_files: c
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false),
            code_action_resolve: c
                .text_document
                .as_ref()
                .and_then(|t| t.code_action.as_ref())
                .and_then(|c| c.resolve_support.as_ref())
                .is_some_and(|r| r.properties.iter().any(|p| p == "edit")),
            document_changes: c
                .workspace
                .as_ref()
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false),
        }
    }
}

pub(crate) fn server_capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        document_symbol_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            resolve_provider: Some(false),
            trigger_characters: None,
            ..Default::default()
        }),
        inline_completion_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::new(GENERATE_KIND)]),
            resolve_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: [
                GENERATE_COMMAND,
                REINDEX_COMMAND,
                TRUST_COMMAND,
                UNTRUST_COMMAND,
                COMPLETION_ACCEPTED_COMMAND,
                PULL_MODELS_COMMAND,
            ]
            .map(String::from)
            .to_vec(),
            work_done_progress_options: Default::default(),
        }),
        workspace_symbol_provider: Some(OneOf::Left(true)),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..Default::default()
    }
}

/// Files whose change the server must hear of: every source extension of the supported
/// languages (from their `language.toml`), the ignore files and `codeforge.toml`.
pub(crate) fn watched_globs() -> Vec<String> {
    Language::ALL
        .into_iter()
        .flat_map(|l| l.spec().extensions.iter().map(|e| format!("**/*.{e}")))
        .chain(
            [
                ".gitignore",
                ".codeforgeignore",
                codeforge_config::WORKSPACE_CONFIG_FILE,
            ]
            .map(|f| format!("**/{f}")),
        )
        .collect()
}

/// The `workspace/didChangeWatchedFiles` registration for [`watched_globs`].
pub(crate) fn watched_files_registration() -> Registration {
    let watchers = watched_globs()
        .into_iter()
        .map(|g| FileSystemWatcher {
            glob_pattern: GlobPattern::String(g),
            kind: None,
        })
        .collect();
    Registration {
        id: "codeforge-watched-files".to_string(),
        method: "workspace/didChangeWatchedFiles".to_string(),
        register_options: serde_json::to_value(DidChangeWatchedFilesRegistrationOptions {
            watchers,
        })
        .ok(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn watched_globs_cover_every_extension_and_the_config_files() {
        assert_eq!(
            super::watched_globs(),
            [
                "**/*.py",
                "**/*.pyi",
                "**/*.rs",
                "**/*.java",
                "**/.gitignore",
                "**/.codeforgeignore",
                "**/codeforge.toml",
            ]
        );
    }
}
