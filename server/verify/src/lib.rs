//! Execution-aware verification, the edge where CodeForge runs code: a synced scratch copy of the
//! workspace ([`scratch`]), test selection ([`select`]), runners described as data in
//! `grammars/<lang>/language.toml` `[verify]` and driven by the [`workbench`] (what is code per
//! runner is in `runner/<runner>.rs`), contained child processes
//! ([`process`], in the rootless [`sandbox`]), structured results ([`report`]), per-workspace trust ([`trust`]) and the local
//! store of verified attempts for fine-tuning ([`feedback`]).
//! It never writes into the user's tree and never decides which candidate wins (the `ide` crate
//! owns the generate → test → refine loop).

pub mod feedback;
pub mod process;
pub mod report;
mod request;
mod runner;
pub mod sandbox;
pub mod scratch;
pub mod select;
mod selected;
pub mod trust;
pub mod workbench;

pub use report::{TestResult, Verdict};
pub use select::{SelectedTest, TestReason};
pub use trust::{TrustDecision, TrustStore};
pub use workbench::{
    REACH_MARKER, Reach, RunReport, Strategy, TestPlan, VerifyError, VerifyRequest, Workbench,
};
