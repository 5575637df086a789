//! The `LanguageServer` impl: [`Server`] holds the [`Session`] and dispatches each method to its
//! handler in `handlers/`. Owns no logic and no state of its own; nothing else in the crate
//! imports it but the crate root, which builds the service from it.

use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::handlers;
use crate::options::ServerOptions;
use crate::proto::{ContextParams, ContextResult, GenerateParams, GenerateResult};
use crate::session::Session;
use crate::workspace::Workspace;

/// The CodeForge language server.
pub struct Server {
    session: Session,
}

impl Server {
    pub fn new(client: Client, options: ServerOptions) -> Self {
        Server {
            session: Session::new(client, options),
        }
    }

    /// Model calls made for completions so far.
    pub fn completion_model_calls(&self) -> usize {
        self.session
            .completion_engine()
            .model_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn workspaces(&self) -> Vec<std::sync::Arc<Workspace>> {
        self.session.workspaces()
    }

    /// `codeforge/generate`.
    pub async fn generate_request(&self, params: GenerateParams) -> RpcResult<GenerateResult> {
        handlers::generate::generate(&self.session, params).await
    }

    /// `codeforge/context`.
    pub async fn context_request(&self, params: ContextParams) -> RpcResult<ContextResult> {
        handlers::context::context(&self.session, params).await
    }

    /// `codeforge/health`.
    pub async fn health_request(&self, _params: serde_json::Value) -> RpcResult<serde_json::Value> {
        handlers::health::health().await
    }

    /// `textDocument/inlineCompletion` (LSP 3.18, not in the `LanguageServer` trait).
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> RpcResult<Option<InlineCompletionResponse>> {
        handlers::inline_completion::inline_completion(&self.session, params).await
    }
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        handlers::lifecycle::initialize(&self.session, params)
    }

    async fn initialized(&self, params: InitializedParams) {
        handlers::lifecycle::initialized(&self.session, params).await
    }

    async fn shutdown(&self) -> RpcResult<()> {
        handlers::lifecycle::shutdown(&self.session)
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        handlers::text_document::did_open(&self.session, params)
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        handlers::text_document::did_change(&self.session, params)
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        handlers::text_document::did_save(&self.session, params)
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        handlers::text_document::did_close(&self.session, params)
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        handlers::workspace_changes::did_change_watched_files(&self.session, params).await
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        handlers::workspace_changes::did_change_configuration(&self.session, params).await
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        handlers::workspace_changes::did_change_workspace_folders(&self.session, params).await
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> RpcResult<Option<DocumentSymbolResponse>> {
        handlers::document_symbol::document_symbol(&self.session, params).await
    }

    async fn completion(&self, params: CompletionParams) -> RpcResult<Option<CompletionResponse>> {
        handlers::completion::completion(&self.session, params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> RpcResult<Option<CodeActionResponse>> {
        handlers::code_action::code_action(&self.session, params).await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> RpcResult<CodeAction> {
        handlers::code_action_resolve::code_action_resolve(&self.session, action).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> RpcResult<Option<LSPAny>> {
        handlers::execute_command::execute_command(&self.session, params).await
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> RpcResult<Option<WorkspaceSymbolResponse>> {
        handlers::workspace_symbol::workspace_symbol(&self.session, params).await
    }
}
