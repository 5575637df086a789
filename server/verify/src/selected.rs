//! What a test plan is made of: one selected test (named the way its runner filters it) and why
//! it was selected. Plain data shared by selection (`select.rs`) and the runners (`runner/`).

use serde::Serialize;

/// Why a test was selected (serialized as `reaches`, `references`, `through caller`, `test module`, `same file`,
/// `suite`, `generated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TestReason {
    /// Run once on the stubbed workspace, it entered the target's code (directly or through a
    /// caller): measured, not guessed.
    #[serde(rename = "reaches")]
    Reaches,
    /// It calls or names the target.
    #[serde(rename = "references")]
    References,
    /// It calls a function that calls the target (followed up to two calls away).
    #[serde(rename = "through caller")]
    ThroughCaller,
    /// It is in the target's test module (`test_files` in `[verify]`).
    #[serde(rename = "test module")]
    TestModule,
    /// It is in the target's own file.
    #[serde(rename = "same file")]
    SameFile,
    /// The rest of a suite fast enough to run whole (it did not reach the stub, and passed).
    #[serde(rename = "suite")]
    Suite,
    /// The model wrote it (no workspace test calls the target).
    #[serde(rename = "generated")]
    Generated,
}

impl TestReason {
    /// The test exercises the target itself (measured, or by name), not only its neighbours.
    pub fn is_direct(self) -> bool {
        matches!(
            self,
            TestReason::Reaches | TestReason::References | TestReason::ThroughCaller
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TestReason::Reaches => "reaches",
            TestReason::References => "references",
            TestReason::ThroughCaller => "through caller",
            TestReason::TestModule => "test module",
            TestReason::SameFile => "same file",
            TestReason::Suite => "suite",
            TestReason::Generated => "generated",
        }
    }
}

impl std::fmt::Display for TestReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One selected test, named the way its runner filters it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectedTest {
    /// pytest node id, libtest name filter, or `Class#method`.
    pub id: String,
    /// Short name shown to the user.
    pub name: String,
    pub file: String,
    pub reason: TestReason,
}
