//! `codeforge/health`: the isolation test runs get on this machine, with a contained self-test
//! run (what `codeforge doctor --json` prints under `sandbox`), for the editors' status and
//! `:checkhealth`. Must not import the `LanguageServer` impl.

use tower_lsp_server::jsonrpc::Result as RpcResult;

pub(crate) async fn health() -> RpcResult<serde_json::Value> {
    let h = codeforge_verify::process::health().await;
    Ok(serde_json::json!({ "sandbox": h.to_json() }))
}
