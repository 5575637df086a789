//! What is asked of a verification and how it will run, as plain data: the request (workspace,
//! target, settings), the test plan, what a measured selection found, and why nothing can run.
//! Shared by the workbench and the runners, which must not import each other.

use std::path::{Path, PathBuf};

use codeforge_config::VerifySettings;
use codeforge_syntax::Language;
use serde::Serialize;

use crate::scratch::ScratchError;
use crate::selected::SelectedTest;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The project cannot be tested here (Gradle, no Cargo.toml, …); the message says why.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    #[error("{0}")]
    Setup(String),
}

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// Workspace root (absolute).
    pub root: PathBuf,
    /// The target's file, workspace-relative.
    pub rel_path: String,
    pub language: Language,
    pub name: String,
    /// The enclosing type's name (Java class, Python class, Rust impl target), if any.
    pub class: Option<String>,
    pub doc: Option<String>,
    pub cache_dir: PathBuf,
    pub settings: VerifySettings,
}

/// How the tests will run, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestPlan {
    pub runner: String,
    /// Directory (workspace-relative) the runner runs in.
    pub project_dir: String,
    pub tests: Vec<SelectedTest>,
    pub doctests: bool,
    /// Tests came from the model (no workspace test exists).
    pub generated: bool,
    pub notes: Vec<String>,
    /// How many collected tests reached the target, when that was measured.
    pub reach: Option<Reach>,
}

/// What the measured selection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Tests the runner collected.
    pub collected: usize,
    /// Of those, the tests that entered the target.
    pub reaching: usize,
    /// How reach was measured and which tests run for each candidate.
    pub strategy: Strategy,
}

/// How the tests that decide were chosen (serialized as `traced`, `reaching`, `whole suite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Strategy {
    /// The suite ran once on the stub under a tracer (Python); the tests that entered the
    /// target's code run for each candidate.
    #[serde(rename = "traced")]
    Traced,
    /// The suite ran once with a body that fails with a marker (Rust, Java); the tests that
    /// failed with it run for each candidate (the suite was slower than `verify.whole_suite_s`).
    #[serde(rename = "reaching")]
    Reaching,
    /// As `Reaching`, but the suite was fast enough to run whole for each candidate (less the
    /// tests that failed on the stub for other reasons).
    #[serde(rename = "whole suite")]
    WholeSuite,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Traced => "traced",
            Strategy::Reaching => "reaching",
            Strategy::WholeSuite => "whole suite",
        }
    }
}

impl VerifyRequest {
    /// The target's path relative to the runner's project directory.
    pub(crate) fn rel_path_from(&self, project_dir: &Path) -> String {
        let abs = self.root.join(&self.rel_path);
        abs.strip_prefix(project_dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| self.rel_path.clone())
    }
}
