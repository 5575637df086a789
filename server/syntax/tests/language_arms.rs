//! Guard: per-language behaviour lives in one place per language. Scans every
//! `server/*/src/**/*.rs` and fails, naming file and line, where a source names `Language::Python`,
//! `Language::Rust` or `Language::Java` (a branch on a language), or imports the variants
//! (`Language::*`, `Language::{…}`) to match on them, outside the files allowed below; the same
//! for the test runners (`RunnerKind`) and report formats (`ReportFormat`). In-file
//! `#[cfg(test)]` modules, `tests/` and `examples/` are not scanned (tests name languages as data).
//!
//! Where per-language behaviour goes instead: values in `grammars/<lang>/language.toml`, syntax code
//! in `server/syntax/src/lang/<lang>.rs`, runner code in `server/verify/src/runner/<runner>.rs`.

use std::path::{Path, PathBuf};

/// An enum whose variants only some files may name.
struct Guarded {
    name: &'static str,
    variants: &'static [&'static str],
    allowed: &'static [&'static str],
}

const GUARDED: &[Guarded] = &[
    // The enum's registry: name, grammar, data, `support` (the `lang/<lang>.rs` module).
    Guarded {
        name: "Language",
        variants: &["Python", "Rust", "Java"],
        allowed: &["server/syntax/src/language.rs"],
    },
    // The runner registry (`runner::for_language`) and the enum's names.
    Guarded {
        name: "RunnerKind",
        variants: &["Pytest", "Cargo", "Maven"],
        allowed: &[
            "server/syntax/src/language.rs",
            "server/verify/src/runner/mod.rs",
        ],
    },
    // How each format's results are read (`runner::read_results`).
    Guarded {
        name: "ReportFormat",
        variants: &["Junit", "Libtest", "Surefire"],
        allowed: &[
            "server/syntax/src/language.rs",
            "server/verify/src/runner/mod.rs",
        ],
    },
];

/// `(line number, line)` of every violation in one file's text (comments and in-file
/// `#[cfg(test)]` modules skipped).
fn violations(text: &str, g: &Guarded) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        if t == "#[cfg(test)]" {
            // Skip the test module: from its `mod … {` to the `}` at the same indentation.
            if let Some(m) = lines.get(i + 1).filter(|l| {
                let l = l.trim_start();
                (l.starts_with("mod ") || l.starts_with("pub mod ")) && l.ends_with('{')
            }) {
                let indent = &m[..m.len() - m.trim_start().len()];
                let close = format!("{indent}}}");
                let end = lines[i + 2..]
                    .iter()
                    .position(|l| *l == close)
                    .map_or(lines.len(), |p| i + 2 + p);
                i = end + 1;
                continue;
            }
        }
        if !t.starts_with("//") && names_a_variant(line, g) {
            out.push((i + 1, line.trim().to_string()));
        }
        i += 1;
    }
    out
}

/// Whether `line` names a variant of the guarded enum or imports them.
fn names_a_variant(line: &str, g: &Guarded) -> bool {
    let code = line.split("//").next().unwrap_or(line);
    let path = format!("{}::", g.name);
    let mut from = 0;
    while let Some(p) = code[from..].find(&path) {
        let at = from + p;
        let standalone = code[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let rest = &code[at + path.len()..];
        let variant = g.variants.iter().any(|v| {
            rest.starts_with(v)
                && !rest[v.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if standalone && (variant || rest.starts_with('*') || rest.starts_with('{')) {
            return true;
        }
        from = at + path.len();
    }
    false
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn language_runner_and_report_variants_are_named_only_in_the_allowed_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("server")).unwrap().flatten() {
        rust_files(&krate.path().join("src"), &mut files);
    }
    assert!(files.len() > 20, "found only {} sources", files.len());
    let mut found = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        for g in GUARDED
            .iter()
            .filter(|g| !g.allowed.contains(&rel.as_str()))
        {
            for (n, line) in violations(&text, g) {
                found.push(format!("{rel}:{n}: {line}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "per-language branches outside the per-language files (put values in \
         grammars/<lang>/language.toml, code in server/syntax/src/lang/<lang>.rs or \
         server/verify/src/runner/<runner>.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_finds_branches_and_skips_tests_and_comments() {
    let src = "\
use codeforge_syntax::Language;
// Language::Python in a comment
fn f(lang: Language) -> bool {
    lang == Language::Python
}
fn g(lang: Language) -> u8 {
    match lang {
        Language::Rust => 1, // Language::Java
        _ => 0,
    }
}
use codeforge_syntax::Language::*;
fn h() { let _ = MyLanguage::Python; let _ = Language::Pythonic; }

#[cfg(test)]
mod tests {
    fn t() { let _ = Language::Java; }
}
fn after() -> Language { Language::Java }
";
    let lines: Vec<usize> = violations(src, &GUARDED[0])
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(lines, [4, 8, 12, 19]);
    let runner = "fn r(k: RunnerKind) -> bool { k == RunnerKind::Maven }\n";
    assert_eq!(violations(runner, &GUARDED[1]).len(), 1);
    assert!(violations(runner, &GUARDED[0]).is_empty());
}

#[test]
fn every_language_is_known_to_the_config() {
    // codeforge-config does not depend on this crate, so its list of language names is a
    // constant; a language added here must be added there.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = std::fs::read_to_string(root.join("server/config/src/lib.rs")).unwrap();
    let line = config
        .lines()
        .find(|l| l.starts_with("pub const KNOWN_LANGUAGES"))
        .expect("KNOWN_LANGUAGES in server/config/src/lib.rs");
    let listed = line.matches('"').count() / 2;
    assert_eq!(listed, codeforge_syntax::Language::ALL.len(), "{line}");
    for lang in codeforge_syntax::Language::ALL {
        assert!(
            line.contains(&format!("\"{}\"", lang.name())),
            "{lang}: {line}"
        );
    }
}
