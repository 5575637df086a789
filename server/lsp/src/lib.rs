//! The only crate that speaks LSP: the tower-lsp-server service ([`Server`], dispatching to one
//! handler per method in `handlers/` over the [`session`](crate::session) state), document sync,
//! the server's own wire types (`proto`) and conversions to protocol types (`to_proto`),
//! workspace actors that keep each folder's index current, generation and completion over LSP,
//! work-done progress, and the trust questions that gate test runs and a workspace's own
//! settings. Module arrows point one way: server → handlers → session/generation/proto/… .
//! stdout belongs to the protocol: nothing here prints.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod capabilities;
mod completion_engine;
mod generation;
mod handlers;
mod layers;
pub mod line_index;
mod model_offer;
mod models;
mod options;
mod progress;
/// The JSON the server sends (and the CLI prints): lsp-owned mirrors of `ide`'s types.
pub mod proto;
mod server;
mod session;
mod to_proto;
mod trust_prompt;
pub mod workspace;

pub use options::{Env, ServerOptions};
pub use proto::{
    ActionData, ContextItem, ContextParams, ContextResult, GENERATE_COMMAND, GENERATE_KIND,
    GenerateParams, GenerateResult,
};
pub use server::Server;

use tower_lsp_server::{ClientSocket, LspService};

/// Builds the service (tests drive it in-process).
pub fn build_service(options: ServerOptions) -> (LspService<Server>, ClientSocket) {
    LspService::build(move |client| Server::new(client, options))
        .custom_method("codeforge/generate", Server::generate_request)
        .custom_method("codeforge/context", Server::context_request)
        .custom_method("codeforge/health", Server::health_request)
        .custom_method("textDocument/inlineCompletion", Server::inline_completion)
        .finish()
}

/// Serves LSP on any byte streams.
pub async fn serve<I, O>(input: I, output: O, options: ServerOptions)
where
    I: tokio::io::AsyncRead + Unpin,
    O: tokio::io::AsyncWrite,
{
    let (service, socket) = build_service(options);
    tower_lsp_server::Server::new(input, output, socket)
        .serve(service)
        .await;
}

/// Serves LSP on stdin/stdout.
pub async fn run_stdio(options: ServerOptions) {
    serve(tokio::io::stdin(), tokio::io::stdout(), options).await;
}
