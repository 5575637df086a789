//! The only crate that speaks LSP: the tower-lsp-server service, document sync, conversions to
//! protocol types, workspace actors that keep each folder's index current, and the generation
//! requests (code action, command, `codeforge/generate`, `codeforge/context`), and the
//! per-workspace trust question that gates test runs.
//! stdout belongs to the protocol: nothing here prints.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod complete;
mod generate;
pub mod line_index;
mod server;
mod to_proto;
mod trust;
pub mod workspace;

pub use generate::{ActionData, GENERATE_COMMAND, GENERATE_KIND, GenerateParams, GenerateResult};
pub use server::{Backend, ServerOptions};

use tower_lsp_server::{ClientSocket, LspService, Server};

/// Builds the service (tests drive it in-process).
pub fn build_service(options: ServerOptions) -> (LspService<Backend>, ClientSocket) {
    LspService::build(move |client| Backend::new(client, options))
        .custom_method("codeforge/generate", Backend::generate_request)
        .custom_method("codeforge/context", Backend::context_request)
        .custom_method("codeforge/health", Backend::health_request)
        .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
        .finish()
}

/// Serves LSP on any byte streams.
pub async fn serve<I, O>(input: I, output: O, options: ServerOptions)
where
    I: tokio::io::AsyncRead + Unpin,
    O: tokio::io::AsyncWrite,
{
    let (service, socket) = build_service(options);
    Server::new(input, output, socket).serve(service).await;
}

/// Serves LSP on stdin/stdout.
pub async fn run_stdio(options: ServerOptions) {
    serve(tokio::io::stdin(), tokio::io::stdout(), options).await;
}
