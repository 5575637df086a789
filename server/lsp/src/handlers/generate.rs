//! `codeforge/generate`: generation at a position, answered with the outcome (status, code, the
//! edit against the document as it is now, target, verification, and with `explain` what the
//! model was shown and every candidate). Must not import the `LanguageServer` impl.

use tower_lsp_server::jsonrpc::Result as RpcResult;

use crate::generation::{edit_for, run_generation, summary};
use crate::proto::{Candidate, ExplainResult, GenerateParams, GenerateResult};
use crate::session::Session;

pub(crate) async fn generate(
    session: &Session,
    params: GenerateParams,
) -> RpcResult<GenerateResult> {
    let uri = params.text_document.uri;
    let (o, source) = run_generation(session, &uri, params.position.line, params.force).await?;
    let edit = edit_for(session, &uri, &o, &source);
    Ok(GenerateResult {
        status: o.status.into(),
        code: o.code.clone(),
        edit,
        target: (&o.target).into(),
        message: summary(&o),
        verification: o.verification.as_ref().map(Into::into),
        explain: params.explain.then(|| ExplainResult {
            explain: (&o.explain).into(),
            candidates: o.candidates.iter().map(Candidate::from).collect(),
        }),
    })
}
