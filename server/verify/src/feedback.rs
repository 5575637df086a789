//! Learning from execution feedback: every verified attempt (prompt, what was retrieved, each
//! candidate with its test verdict, and later whether the user took the edit) is appended as one
//! JSON line to `<cache>/feedback/attempts.jsonl`; `export` turns them into JSONL for
//! parameter-efficient fine-tuning: SFT (prompt → a passing candidate) or DPO (prompt, chosen =
//! passing, rejected = failing). Nothing here leaves the machine.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One chat message of the prompt, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// The whole function as the model's answer would put it.
    pub code: String,
    pub passed: usize,
    pub failed: usize,
    pub compiled: bool,
    /// Passed every selected test.
    pub verified: bool,
    pub round: u32,
    pub shown: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub unix_ms: u64,
    pub workspace: String,
    pub file: String,
    pub target: String,
    pub language: String,
    /// The fence tag of the language (for the assistant answer in exports).
    pub fence: String,
    pub prompt: Vec<StoredMessage>,
    /// Labels of the retrieved context that went into the prompt.
    pub context: Vec<String>,
    /// `workspace` or `generated`.
    pub tests_from: String,
    pub selected_tests: Vec<String>,
    pub candidates: Vec<CandidateRecord>,
    /// Filled in by a later `accepted` line when the editor reports it.
    #[serde(default)]
    pub accepted: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Attempt(Box<Attempt>),
    Accepted { id: String, accepted: bool },
}

pub fn store_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("feedback").join("attempts.jsonl")
}

fn append_line(cache_dir: &Path, line: &Line) -> std::io::Result<()> {
    let path = store_path(cache_dir);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    // One write per line: concurrent appenders do not interleave within a line.
    f.write_all(text.as_bytes())
}

pub fn record(cache_dir: &Path, attempt: &Attempt) -> std::io::Result<()> {
    append_line(cache_dir, &Line::Attempt(Box::new(attempt.clone())))
}

pub fn record_accepted(cache_dir: &Path, id: &str, accepted: bool) -> std::io::Result<()> {
    append_line(
        cache_dir,
        &Line::Accepted {
            id: id.to_string(),
            accepted,
        },
    )
}

/// All attempts, with their acceptance applied; unreadable lines are skipped.
pub fn load(cache_dir: &Path) -> Vec<Attempt> {
    let Ok(f) = std::fs::File::open(store_path(cache_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<Attempt> = Vec::new();
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Attempt(a)) => out.push(*a),
            Ok(Line::Accepted { id, accepted }) => {
                if let Some(a) = out.iter_mut().rev().find(|a| a.id == id) {
                    a.accepted = Some(accepted);
                }
            }
            Err(_) => {}
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `{"messages": [..prompt.., {"role": "assistant", "content": passing code}]}`
    Sft,
    /// `{"prompt": [..], "chosen": [assistant passing], "rejected": [assistant failing]}`
    Dpo,
}

fn answer(fence: &str, code: &str) -> serde_json::Value {
    serde_json::json!({"role": "assistant", "content": format!("```{fence}\n{}\n```", code.trim_end())})
}

/// Writes training examples; returns how many. Attempts the user rejected give no SFT example.
pub fn export(
    attempts: &[Attempt],
    format: ExportFormat,
    out: &mut dyn Write,
) -> std::io::Result<usize> {
    let mut n = 0;
    for a in attempts {
        let prompt: Vec<serde_json::Value> = a
            .prompt
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
            .collect();
        // Prefer the shown passing candidate, then any passing one.
        let mut passing: Vec<&CandidateRecord> =
            a.candidates.iter().filter(|c| c.verified).collect();
        passing.sort_by_key(|c| !c.shown);
        let failing: Vec<&CandidateRecord> = a.candidates.iter().filter(|c| !c.verified).collect();
        match format {
            ExportFormat::Sft => {
                if a.accepted == Some(false) {
                    continue;
                }
                if let Some(c) = passing.first() {
                    let mut messages = prompt.clone();
                    messages.push(answer(&a.fence, &c.code));
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"messages": messages, "meta": {"id": a.id, "target": a.target, "tests_from": a.tests_from}})
                    )?;
                    n += 1;
                }
            }
            ExportFormat::Dpo => {
                let Some(good) = passing.first() else {
                    continue;
                };
                for bad in &failing {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({
                            "prompt": prompt,
                            "chosen": [answer(&a.fence, &good.code)],
                            "rejected": [answer(&a.fence, &bad.code)],
                            "meta": {"id": a.id, "target": a.target, "rejected_passed": bad.passed, "rejected_failed": bad.failed},
                        })
                    )?;
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(code: &str, verified: bool, shown: bool) -> CandidateRecord {
        CandidateRecord {
            code: code.into(),
            passed: usize::from(verified),
            failed: usize::from(!verified),
            compiled: true,
            verified,
            round: 0,
            shown,
        }
    }

    fn attempt(id: &str, cands: Vec<CandidateRecord>) -> Attempt {
        Attempt {
            id: id.into(),
            unix_ms: 0,
            workspace: "/w".into(),
            file: "a.py".into(),
            target: "f".into(),
            language: "python".into(),
            fence: "python".into(),
            prompt: vec![StoredMessage {
                role: "user".into(),
                content: "implement f".into(),
            }],
            context: vec![],
            tests_from: "workspace".into(),
            selected_tests: vec!["test_f".into()],
            candidates: cands,
            accepted: None,
        }
    }

    #[test]
    fn store_round_trip_and_exports() {
        let d = tempfile::tempdir().unwrap();
        record(
            d.path(),
            &attempt(
                "a1",
                vec![
                    cand("def f(): return 1", false, false),
                    cand("def f(): return 2", true, true),
                ],
            ),
        )
        .unwrap();
        record(
            d.path(),
            &attempt("a2", vec![cand("def f(): return 3", false, false)]),
        )
        .unwrap();
        record(
            d.path(),
            &attempt("a3", vec![cand("def f(): return 4", true, true)]),
        )
        .unwrap();
        record_accepted(d.path(), "a3", false).unwrap();
        let all = load(d.path());
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].accepted, Some(false));

        let mut sft = Vec::new();
        assert_eq!(
            export(&all, ExportFormat::Sft, &mut sft).unwrap(),
            1,
            "a2 has no passing candidate, a3 was rejected by the user"
        );
        let line: serde_json::Value =
            serde_json::from_slice(sft.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(
            line["messages"][1]["content"],
            "```python\ndef f(): return 2\n```"
        );

        let mut dpo = Vec::new();
        assert_eq!(export(&all, ExportFormat::Dpo, &mut dpo).unwrap(), 1);
        let line: serde_json::Value =
            serde_json::from_slice(dpo.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert!(
            line["chosen"][0]["content"]
                .as_str()
                .unwrap()
                .contains("return 2")
        );
        assert!(
            line["rejected"][0]["content"]
                .as_str()
                .unwrap()
                .contains("return 1")
        );
    }
}
