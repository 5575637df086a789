//! Structural context: the repository symbols a function is likely to use, from what the code's
//! structure says rather than from words alike. The target file's imports, the members of its
//! scope, what its sibling definitions call, what its callers in the same package call, the types
//! in its signature and their members, fused with the hybrid (BM25 + vector) hits under the
//! documented weights of [`Weights`], one symbol per name, best first. Pure: the name layer is
//! plain data.

use std::collections::HashMap;

use codeforge_index::{NameEntry, NameTable};
use codeforge_syntax::{ExtractedFile, Language, Symbol, SymbolKind, imported_names};

use crate::related::Related;

/// How much each kind of evidence adds to a name's score (hand-set; measured by
/// `tests/bench/retrieval`). Repeated evidence of one kind grows by its logarithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Named by an import of the target's file.
    pub import: f32,
    /// Called or referenced by other definitions of the file (× ln(1 + uses), uses in the
    /// target's own scope counting 1, elsewhere in the file 0.5, in tests 0.25).
    pub sibling_calls: f32,
    /// A callable defined in the target's scope (its class, impl, module).
    pub same_scope: f32,
    /// A type named in the target's signature.
    pub signature_type: f32,
    /// A member of a type named in the signature (or of the target's own type).
    pub type_member: f32,
    /// Called by the target's callers in the same directory (× share of callers).
    pub caller_calls: f32,
    /// A hybrid hit at rank r (0-based): × 10 / (10 + r).
    pub hybrid: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            import: 1.0,
            sibling_calls: 1.0,
            same_scope: 0.4,
            signature_type: 1.0,
            type_member: 0.2,
            caller_calls: 0.6,
            hybrid: 0.5,
        }
    }
}

/// The last segment of a qualified name (`a.b.C.run`, `a::B::run`, `a.B#run` give `run`).
pub fn last_segment(qualified: &str) -> &str {
    qualified
        .rsplit(['.', ':', '#'])
        .find(|s| !s.is_empty())
        .unwrap_or(qualified)
}

/// Identifiers of a signature that may name types (start with a capital letter, or any for
/// Python where `str`-like builtins are not repository symbols anyway).
fn signature_words(sig: &str) -> Vec<&str> {
    sig.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_alphabetic()))
        .collect()
}

/// Where the body is being written: the target definition of `file`, the parse of `source` at
/// `rel_path`.
#[derive(Clone, Copy)]
pub struct Around<'a> {
    pub lang: Language,
    pub rel_path: &'a str,
    pub source: &'a str,
    pub file: &'a ExtractedFile,
    pub target: &'a Symbol,
}

/// Ranks repository symbols for the target of `at`: structural evidence from `names` plus the
/// `hybrid` hits. One symbol per name, the target and what it defines inside excluded; returns
/// at most `k`, best first. A name is resolved to its definition nearest the target's file (same
/// file, then the longest shared directory), tests last; a hybrid hit keeps its own symbol.
pub fn rank_structural(
    at: &Around<'_>,
    names: &NameTable,
    hybrid: &[Related],
    k: usize,
    w: &Weights,
) -> Vec<Related> {
    let Around {
        lang,
        rel_path,
        source,
        file,
        target,
    } = *at;
    let inside = |s: &Symbol| {
        s.start_byte >= target.start_byte
            && s.end_byte <= target.end_byte
            && s.qualified_name != target.qualified_name
    };
    let mut excluded: Vec<&str> = file
        .symbols
        .iter()
        .filter(|s| inside(s))
        .map(|s| s.name.as_str())
        .collect();
    excluded.push(target.name.as_str());
    let usable = |name: &str| !excluded.contains(&name) && names.defined(name).any(|e| !e.is_test);
    let mut score: HashMap<String, f32> = HashMap::new();
    let mut add = |name: &str, s: f32| {
        if s > 0.0 && usable(name) {
            *score.entry(name.to_string()).or_default() += s;
        }
    };

    // The file without the target (an import inside its body is part of the answer).
    let around = format!(
        "{}{}",
        source.get(..target.start_byte).unwrap_or(""),
        source.get(target.end_byte..).unwrap_or("")
    );
    for name in imported_names(lang, &around) {
        add(&name, w.import);
    }

    // What the file's other definitions call: the target's scope counts most.
    let mut sibling: HashMap<&str, f32> = HashMap::new();
    for s in file
        .symbols
        .iter()
        .filter(|s| s.qualified_name != target.qualified_name && !inside(s))
    {
        let mut weight = if s.scope == target.scope { 1.0 } else { 0.5 };
        if s.is_test {
            weight *= 0.5;
        }
        for r in &s.references {
            *sibling.entry(r.as_str()).or_default() += weight;
        }
        if s.scope == target.scope && s.kind.is_callable() {
            add(&s.name, w.same_scope);
        }
    }
    for (name, uses) in &sibling {
        add(name, w.sibling_calls * (1.0 + uses).ln());
    }

    // Types in the signature, and their members; the members of the target's own type.
    let mut types: Vec<&NameEntry> = Vec::new();
    for word in signature_words(&target.signature) {
        if word == target.name {
            continue;
        }
        if let Some(e) = nearest(names.defined(word), rel_path)
            && SymbolKind::from_name(e.kind).is_some_and(|k| k.is_type_like())
        {
            add(word, w.signature_type);
            types.push(e);
        }
    }
    if let Some(own) = names
        .file(rel_path)
        .iter()
        .find(|e| e.qualified_name == target.scope)
    {
        types.push(own);
    }
    for t in types {
        for m in names.members(&t.path, &t.qualified_name).take(40) {
            add(&m.name, w.type_member);
        }
    }

    // What the target's callers in its directory call.
    let dir = rel_path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut callers = 0usize;
    let mut caller_calls: HashMap<&str, usize> = HashMap::new();
    for entries in names.files_in_dir(dir) {
        for e in entries {
            if e.qualified_name == target.qualified_name && *e.path == *rel_path {
                continue;
            }
            if e.references().any(|r| r == target.name) {
                callers += 1;
                for r in e.references() {
                    *caller_calls.entry(r).or_default() += 1;
                }
            }
        }
    }
    if callers > 0 {
        for (name, n) in caller_calls {
            add(name, w.caller_calls * n as f32 / callers as f32);
        }
    }

    // The hybrid hits, by rank; each keeps its own symbol.
    let mut chosen: HashMap<String, Related> = HashMap::new();
    for (rank, h) in hybrid.iter().enumerate() {
        let name = last_segment(&h.qualified_name).to_string();
        if h.qualified_name == target.qualified_name && h.path == rel_path {
            continue;
        }
        add(&name, w.hybrid * 10.0 / (10.0 + rank as f32));
        chosen.entry(name).or_insert_with(|| h.clone());
    }

    let mut ranked: Vec<(String, f32)> = score.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .filter_map(|(name, s)| {
            if let Some(mut r) = chosen.remove(&name) {
                r.score = s;
                return Some(r);
            }
            let e = nearest(names.defined(&name), rel_path)?;
            related(e, s)
        })
        .take(k)
        .collect()
}

/// The definition nearest `rel_path`: same file, then most shared directories; tests last.
fn nearest<'a>(defs: impl Iterator<Item = &'a NameEntry>, rel_path: &str) -> Option<&'a NameEntry> {
    defs.max_by_key(|e| {
        let shared = e
            .path
            .split('/')
            .zip(rel_path.split('/'))
            .take_while(|(a, b)| a == b)
            .count();
        (
            !e.is_test,
            *e.path == *rel_path,
            shared,
            std::cmp::Reverse(e.line),
        )
    })
}

fn related(e: &NameEntry, score: f32) -> Option<Related> {
    Some(Related {
        qualified_name: e.qualified_name.clone(),
        kind: e.kind.to_string(),
        language: Language::from_name(e.language)?,
        path: e.path.to_string(),
        line: e.line,
        signature: e.signature.clone(),
        doc: e.doc.clone(),
        score,
        is_test: e.is_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_segments() {
        assert_eq!(last_segment("a.b.C.run"), "run");
        assert_eq!(last_segment("a::B::run"), "run");
        assert_eq!(last_segment("run"), "run");
    }
}
