//! How a symbol reads to search: its search text (what BM25 sees, in LanceDB and in the name
//! layer), its docstring summary, and strings cut at a character count.

use codeforge_syntax::split_identifier_words;

pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((b, _)) => &s[..b],
        None => s,
    }
}

/// The docstring's first non-empty line, at most 200 characters (what hits and the name layer
/// show).
pub fn doc_summary(doc: Option<&str>) -> Option<String> {
    doc.and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(|l| cut_chars(l, 200).to_string())
}

/// A symbol's search text, what BM25 sees (in LanceDB and in the name layer): its name, qualified
/// name, that name's words, signature and the docstring's first 1000 characters.
pub fn search_text(
    name: &str,
    qualified_name: &str,
    signature: &str,
    docstring: Option<&str>,
) -> String {
    let words = split_identifier_words(qualified_name).join(" ");
    let doc = cut_chars(docstring.unwrap_or(""), 1000);
    format!("{name} {qualified_name} {words} {signature} {doc}")
}
