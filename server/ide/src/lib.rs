//! The IDE façade in editor terms (paths, lines, byte offsets, labels; no LSP types): lists the
//! "Generate function from docstring" targets from syntax alone and runs the generation pipeline
//! retrieve → prompt → model → post-process → verify and refine → edit. The LSP crate and
//! the CLI both call this; neither knows how a prompt is made.

mod backend;
mod complete;
mod context;
mod generate;
mod verify;

pub use backend::{BackendHandle, load_backend};
pub use complete::{
    CONTEXT_DEADLINE, CompletionInput, Completions, ItemVerdict, Level, clean_completion, complete,
    parsing_levels, split_levels, verify_items,
};
pub use context::{Related, Retriever, gather_context};
pub use generate::{
    Candidate, Explain, GenerateError, GenerateInput, GenerateOutcome, GenerateStatus, TargetInfo,
    build_prompt, generate_function, generate_targets,
};
pub use verify::{
    CandidateRun, TrustGate, Verification, VerifyContext, VerifyStatus, trust_known,
    verify_insertion,
};
