//! Conversions from CodeForge's plain types to LSP types (byte offsets → UTF-16 positions):
//! document symbols, workspace symbols. Pure functions; must not reach the session or handlers.

use std::path::Path;

use codeforge_index::Hit;
use codeforge_syntax::{Symbol, SymbolKind};
use tower_lsp_server::ls_types::{self as lsp, Location, Position, Range, Uri};

use crate::line_index::LineIndex;

pub fn symbol_kind(kind: SymbolKind) -> lsp::SymbolKind {
    match kind {
        SymbolKind::Function => lsp::SymbolKind::FUNCTION,
        SymbolKind::Method => lsp::SymbolKind::METHOD,
        SymbolKind::Constructor => lsp::SymbolKind::CONSTRUCTOR,
        SymbolKind::Class => lsp::SymbolKind::CLASS,
        SymbolKind::Struct => lsp::SymbolKind::STRUCT,
        SymbolKind::Enum => lsp::SymbolKind::ENUM,
        SymbolKind::Trait | SymbolKind::Interface => lsp::SymbolKind::INTERFACE,
        SymbolKind::Record => lsp::SymbolKind::STRUCT,
        SymbolKind::Module => lsp::SymbolKind::MODULE,
    }
}

fn range(text: &str, index: &LineIndex, start: usize, end: usize) -> Range {
    let (sl, sc) = index.position(text, start);
    let (el, ec) = index.position(text, end);
    Range {
        start: Position::new(sl, sc),
        end: Position::new(el, ec),
    }
}

/// Nested document symbols, children under their parents.
#[allow(deprecated)]
pub fn document_symbols(
    symbols: &[Symbol],
    text: &str,
    index: &LineIndex,
) -> Vec<lsp::DocumentSymbol> {
    fn build(
        i: usize,
        symbols: &[Symbol],
        children_of: &[Vec<usize>],
        text: &str,
        index: &LineIndex,
    ) -> lsp::DocumentSymbol {
        let s = &symbols[i];
        let full = range(text, index, s.start_byte, s.end_byte);
        let mut selection = range(text, index, s.name_start_byte, s.name_end_byte);
        // The selection must lie inside the full range (file modules have an empty name span).
        if selection.start < full.start || selection.end > full.end {
            selection = Range {
                start: full.start,
                end: full.start,
            };
        }
        let children: Vec<lsp::DocumentSymbol> = children_of[i]
            .iter()
            .map(|&c| build(c, symbols, children_of, text, index))
            .collect();
        let detail = if s.signature.is_empty() {
            s.doc_summary().map(str::to_string)
        } else {
            Some(s.signature.clone())
        };
        lsp::DocumentSymbol {
            name: s.name.clone(),
            detail,
            kind: symbol_kind(s.kind),
            tags: None,
            deprecated: None,
            range: full,
            selection_range: selection,
            children: (!children.is_empty()).then_some(children),
        }
    }
    let mut children_of: Vec<Vec<usize>> = vec![Vec::new(); symbols.len()];
    let mut roots = Vec::new();
    for (i, s) in symbols.iter().enumerate() {
        match s.parent {
            Some(p) if p < symbols.len() => children_of[p].push(i),
            _ => roots.push(i),
        }
    }
    roots
        .into_iter()
        .map(|i| build(i, symbols, &children_of, text, index))
        .collect()
}

/// A search hit as a workspace symbol (line-granular range: the index stores lines).
#[allow(deprecated)]
pub fn symbol_information(root: &Path, hit: &Hit) -> Option<lsp::SymbolInformation> {
    let uri = Uri::from_file_path(root.join(&hit.path))?;
    let kind = SymbolKind::from_name(&hit.kind).map_or(lsp::SymbolKind::FUNCTION, symbol_kind);
    let container = hit
        .qualified_name
        .strip_suffix(hit.name.as_str())
        .map(|c| c.trim_end_matches(['.', ':', '#']).to_string())
        .filter(|c| !c.is_empty());
    Some(lsp::SymbolInformation {
        name: hit.name.clone(),
        kind,
        tags: None,
        deprecated: None,
        location: Location {
            uri,
            range: Range {
                start: Position::new(hit.line.saturating_sub(1), 0),
                end: Position::new(hit.end_line, 0),
            },
        },
        container_name: container,
    })
}
