//! A repository symbol related to what is being written, as retrieval hands it to prompts:
//! from an index hit, or from the name layer (`structure`).

use codeforge_index::Hit;
use codeforge_syntax::Language;

/// A related symbol found in the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub qualified_name: String,
    pub kind: String,
    pub language: Language,
    pub path: String,
    pub line: u32,
    pub signature: String,
    pub doc: Option<String>,
    pub score: f32,
    /// A test function or class: its signature says nothing about what code should do.
    pub is_test: bool,
}

impl Related {
    /// The related symbol of an index hit; `None` for a row in a language this build does not
    /// know (the index stores languages by name).
    pub fn from_hit(h: Hit) -> Option<Related> {
        Some(Related {
            language: Language::from_name(&h.language)?,
            qualified_name: h.qualified_name,
            kind: h.kind,
            path: h.path,
            line: h.line,
            signature: h.signature,
            doc: h.doc,
            score: h.score,
            is_test: h.is_test,
        })
    }
}
