//! The IDE façade in editor terms (paths, lines, byte offsets, labels; no LSP types): lists the
//! "Generate function from docstring" targets from syntax alone and runs the generation pipeline
//! retrieve → prompt → model → post-process → verify and refine → edit. The LSP crate and
//! the CLI both call this; neither knows how a prompt is made.

mod backend;
mod candidate;
mod checking;
mod complete;
pub mod completion_context;
mod context;
mod generate;
mod related;
mod run;
mod sampler;
pub mod structure;

pub use backend::{BackendHandle, api_key, load_backend};
pub use candidate::{Candidate, candidate_from_answer};
pub use checking::{
    CandidateRun, TestsFrom, TrustGate, Verification, VerificationStatus, VerifyContext,
    trust_known, verify_insertion,
};
pub use complete::{
    AcceptedItem, CONTEXT_DEADLINE, CompletionInput, CompletionRepo, Completions, ItemVerdict,
    Level, LineSink, clean_completion, complete, complete_streaming, parsing_levels, readings,
    record_accepted_completion, split_levels, verify_items,
};
pub use completion_context::CompletionContexts;
pub use context::{Retriever, SearchOnly, gather_context, ranked_retriever, retrieval_query};
pub use generate::{
    Explain, GenerateError, GenerateInput, GenerateStatus, Outcome, TargetInfo, generate_targets,
};
pub use related::Related;
pub use run::{GenerationRun, build_prompt, generate_function, target_at};
pub use sampler::{RequestTemplate, Sampler, token_counter};
