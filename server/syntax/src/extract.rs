//! The extraction pass: parse, match `symbols.scm`, nest definitions by range, name them, attach
//! docs, signatures, references (`references.scm`) and test flags. Broken input yields whatever the
//! tree allows; this function has no failure mode.

use std::collections::HashSet;

use tree_sitter::{Node, Parser, Tree};

use crate::docs;
use crate::language::{DocStyle, Language, LanguageSpec};
use crate::module_path::module_path;
use crate::patterns::Role;
use crate::{Symbol, SymbolKind};

const MAX_SIGNATURE_CHARS: usize = 400;
const MAX_REFERENCES: usize = 64;
const MAX_SYMBOLS: usize = 50_000;

/// The result of extracting one file.
#[derive(Debug, Clone, Default)]
pub struct ExtractedFile {
    pub symbols: Vec<Symbol>,
    /// The parse had syntax errors (the symbols are what the tree allowed).
    pub has_errors: bool,
}

#[derive(Debug)]
enum DefKind {
    Symbol(SymbolKind),
    /// A naming scope that is not itself a symbol (Rust `impl` blocks).
    Scope,
}

struct Def<'t> {
    node: Node<'t>,
    /// The node the range starts at (a wrapper such as a decorated definition, or the node).
    outer: Node<'t>,
    kind: DefKind,
    name: String,
    name_node: Node<'t>,
    /// The comments and attributes right before `outer`, nearest last (its previous siblings
    /// of [`crate::patterns::leading_kinds`], as far back as they go).
    leading: Vec<Node<'t>>,
}

/// Extracts the symbols of one file. `rel_path` is the workspace-relative path (used for module
/// paths and test-file rules).
pub fn extract(lang: Language, rel_path: &str, source: &str) -> ExtractedFile {
    match crate::parse::parse_file(lang, source, None) {
        Some(tree) => extract_tree(lang, rel_path, source, &tree),
        None => ExtractedFile::default(),
    }
}

/// [`extract`] from a tree already parsed from `source` (no second parse).
pub(crate) fn extract_tree(
    lang: Language,
    rel_path: &str,
    source: &str,
    tree: &Tree,
) -> ExtractedFile {
    extract_from(lang, rel_path, source, tree, 0)
}

/// How many times a recovered chunk may itself be recovered.
const MAX_RECOVERY_DEPTH: usize = 2;

/// A chunk recovered from an ERROR region: parsed on its own (not a file version).
fn extract_at_depth(lang: Language, rel_path: &str, source: &str, depth: usize) -> ExtractedFile {
    let mut parser = Parser::new();
    if parser.set_language(&lang.grammar()).is_err() {
        return ExtractedFile::default();
    }
    let Some(tree) = parser.parse(source, None) else {
        return ExtractedFile::default();
    };
    extract_from(lang, rel_path, source, &tree, depth)
}

fn extract_from(
    lang: Language,
    rel_path: &str,
    source: &str,
    tree: &Tree,
    depth: usize,
) -> ExtractedFile {
    let root = tree.root_node();
    let spec = lang.spec();
    let bytes = source.as_bytes();
    let text = |n: Node| -> &str { n.utf8_text(bytes).unwrap_or("") };

    // 1. Definitions and the references' nodes (for step 4), in one walk of the tree.
    let mut defs: Vec<Def> = Vec::new();
    let mut package: Option<String> = None;
    let mut seen: HashSet<usize> = HashSet::new();
    let mut ref_nodes: Vec<Node> = Vec::new();
    lang.patterns().walk(root, |m| {
        if m.pattern.reference {
            ref_nodes.extend(m.captures().map(|(_, n)| n));
            return;
        }
        let mut def_node = None;
        let mut kind = None;
        let mut name_node = None;
        for (role, node) in m.captures() {
            match role {
                Role::Name => name_node = Some(node),
                Role::Package => {
                    package.get_or_insert_with(|| text(node).to_string());
                }
                Role::Definition(k) => {
                    def_node = Some(node);
                    kind = Some(DefKind::Symbol(k));
                }
                Role::Scope => {
                    def_node = Some(node);
                    kind = Some(DefKind::Scope);
                }
                Role::Reference => {}
            }
        }
        let (Some(node), Some(kind), Some(name_node)) = (def_node, kind, name_node) else {
            return;
        };
        if !seen.insert(node.id()) || defs.len() >= MAX_SYMBOLS {
            return;
        }
        // Rust `mod foo;` declares a file module; the file itself carries the symbols.
        if node.kind() == "mod_item" && node.child_by_field_name("body").is_none() {
            return;
        }
        let name = match kind {
            DefKind::Scope => scope_type_name(text(name_node)),
            DefKind::Symbol(_) => text(name_node).to_string(),
        };
        if name.is_empty() {
            return;
        }
        let outer = match m.parent_of(node) {
            Some(p) if spec.wrapper_kinds.iter().any(|w| w == p.kind()) => p,
            _ => node,
        };
        defs.push(Def {
            node,
            outer,
            kind,
            name,
            name_node,
            leading: m.leading(outer).to_vec(),
        });
    });
    defs.sort_by_key(|d| (d.node.start_byte(), std::cmp::Reverse(d.node.end_byte())));

    // 2. Nesting by range.
    let mut parent_of: Vec<Option<usize>> = vec![None; defs.len()];
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..defs.len() {
        let (s, e) = (defs[i].node.start_byte(), defs[i].node.end_byte());
        while let Some(&top) = stack.last() {
            if defs[top].node.start_byte() <= s && e <= defs[top].node.end_byte() {
                break;
            }
            stack.pop();
        }
        parent_of[i] = stack.last().copied();
        stack.push(i);
    }

    // 3. Names, kinds, scopes.
    let module: Vec<String> = lang
        .support()
        .file_module(module_path(lang, rel_path), package.as_deref());
    let module_prefix = module.join(&spec.scope_separator);
    let file_stem = rel_path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(rel_path)
        .rsplit_once('.')
        .map_or(rel_path, |(s, _)| s);
    let test_file = spec.tests.file_prefixes.is_empty() && spec.tests.file_suffixes.is_empty()
        || spec
            .tests
            .file_prefixes
            .iter()
            .any(|p| file_stem.starts_with(p.as_str()))
        || spec
            .tests
            .file_suffixes
            .iter()
            .any(|s| file_stem.ends_with(s.as_str()));

    let mut qualified: Vec<String> = Vec::with_capacity(defs.len());
    let mut kinds: Vec<Option<SymbolKind>> = Vec::with_capacity(defs.len());
    for i in 0..defs.len() {
        let parent = parent_of[i];
        let parent_is_type = parent.is_some_and(|p| match defs[p].kind {
            DefKind::Scope => true,
            DefKind::Symbol(k) => k.is_type_like(),
        });
        let kind = match defs[i].kind {
            DefKind::Symbol(SymbolKind::Function) if parent_is_type => Some(SymbolKind::Method),
            DefKind::Symbol(k) => Some(k),
            DefKind::Scope => None,
        };
        let scope = match parent {
            Some(p) => qualified[p].clone(),
            None => module_prefix.clone(),
        };
        let sep = if kind.is_some_and(|k| k.is_callable()) && parent_is_type {
            &spec.member_separator
        } else {
            &spec.scope_separator
        };
        qualified.push(if scope.is_empty() {
            defs[i].name.clone()
        } else {
            format!("{scope}{sep}{}", defs[i].name)
        });
        kinds.push(kind);
    }

    // 4. References, attributed to the innermost enclosing symbol: found by byte range among
    // the symbols (nested as their ranges are), not by walking up the tree (`Node::parent`
    // descends from the root each time: it was most of the extraction time).
    let span = |d: &Def| {
        (
            d.node.start_byte().min(d.outer.start_byte()),
            d.node.end_byte().max(d.outer.end_byte()),
        )
    };
    let mut owners: Vec<usize> = (0..defs.len())
        .filter(|&i| matches!(defs[i].kind, DefKind::Symbol(_)))
        .collect();
    owners.sort_by_key(|&i| {
        let (s, e) = span(&defs[i]);
        (s, std::cmp::Reverse(e))
    });
    let owner_spans: Vec<(usize, usize)> = owners.iter().map(|&i| span(&defs[i])).collect();
    let mut owner_parent: Vec<Option<usize>> = vec![None; owners.len()];
    let mut open: Vec<usize> = Vec::new();
    for k in 0..owners.len() {
        let (s, e) = owner_spans[k];
        while let Some(&top) = open.last() {
            if owner_spans[top].0 <= s && e <= owner_spans[top].1 {
                break;
            }
            open.pop();
        }
        owner_parent[k] = open.last().copied();
        open.push(k);
    }
    let owner_of = |s: usize, e: usize| -> Option<usize> {
        let mut k = owner_spans
            .partition_point(|&(os, _)| os <= s)
            .checked_sub(1);
        while let Some(j) = k {
            let (os, oe) = owner_spans[j];
            if os <= s && e <= oe && (os, oe) != (s, e) {
                return Some(owners[j]);
            }
            k = owner_parent[j];
        }
        None
    };
    let name_starts: HashSet<usize> = defs.iter().map(|d| d.name_node.start_byte()).collect();
    let mut refs: Vec<Vec<String>> = vec![Vec::new(); defs.len()];
    let mut ref_seen: Vec<HashSet<&str>> = vec![HashSet::new(); defs.len()];
    // In source order, as a capture iterator would give them (the list is cut at
    // MAX_REFERENCES in that order).
    ref_nodes.sort_by_key(|n| (n.start_byte(), n.end_byte()));
    for node in ref_nodes {
        if name_starts.contains(&node.start_byte()) {
            continue;
        }
        if let Some(i) = owner_of(node.start_byte(), node.end_byte()) {
            let name = text(node);
            if refs[i].len() < MAX_REFERENCES && !name.is_empty() && ref_seen[i].insert(name) {
                refs[i].push(name.to_string());
            }
        }
    }

    // 5. Symbols, with output indices that skip scopes.
    let mut out_index: Vec<Option<usize>> = vec![None; defs.len()];
    let mut symbols: Vec<Symbol> = Vec::new();
    for i in 0..defs.len() {
        let Some(kind) = kinds[i] else { continue };
        let d = &defs[i];
        // Nearest enclosing *symbol* (skipping impl scopes) is the parent.
        let mut p = parent_of[i];
        while let Some(pi) = p {
            if out_index[pi].is_some() {
                break;
            }
            p = parent_of[pi];
        }
        let parent = p.and_then(|pi| out_index[pi]);
        let scope = match parent_of[i] {
            Some(pi) => qualified[pi].clone(),
            None => module_prefix.clone(),
        };
        let parent_is_test_class = parent.is_some_and(|pi: usize| {
            let ps: &Symbol = &symbols[pi];
            ps.is_test && ps.kind.is_type_like()
        });
        let is_test = is_test(spec, kind, d, source, test_file, parent_is_test_class);
        let end = d.node.end_position();
        let end_line = if end.column == 0 && end.row > d.outer.start_position().row {
            end.row - 1
        } else {
            end.row
        };
        let start = range_start(spec, d);
        out_index[i] = Some(symbols.len());
        symbols.push(Symbol {
            name: d.name.clone(),
            qualified_name: qualified[i].clone(),
            kind,
            language: lang,
            signature: signature(d.node, source),
            docstring: docstring(spec, d, source).filter(|s| !s.is_empty()),
            scope,
            parent,
            start_byte: start.start_byte(),
            end_byte: d.node.end_byte().max(d.outer.end_byte()),
            name_start_byte: d.name_node.start_byte(),
            name_end_byte: d.name_node.end_byte(),
            start_line: start.start_position().row,
            end_line,
            references: std::mem::take(&mut refs[i]),
            is_test,
        });
    }

    // A type holding tests is a test container (JUnit classes, Rust `mod tests`).
    for i in (0..symbols.len()).rev() {
        if symbols[i].is_test
            && let Some(p) = symbols[i].parent
            && (symbols[p].kind.is_type_like() || symbols[p].kind == SymbolKind::Module)
            && spec.tests.mark_containers
        {
            symbols[p].is_test = true;
        }
    }

    // 6. Inner docs of the file itself (Rust `//!`) become a module symbol for the file.
    if let Some(doc) = inner_docs(spec, root, source) {
        let name = module
            .last()
            .cloned()
            .unwrap_or_else(|| file_stem.to_string());
        let end = root.end_position();
        symbols.insert(
            0,
            Symbol {
                name,
                qualified_name: module_prefix.clone(),
                kind: SymbolKind::Module,
                language: lang,
                signature: String::new(),
                docstring: Some(doc),
                scope: module[..module.len().saturating_sub(1)].join(&spec.scope_separator),
                parent: None,
                start_byte: 0,
                end_byte: source.len(),
                name_start_byte: 0,
                name_end_byte: 0,
                start_line: 0,
                end_line: end.row,
                references: Vec::new(),
                is_test: false,
            },
        );
        for s in symbols.iter_mut().skip(1) {
            if let Some(p) = s.parent.as_mut() {
                *p += 1;
            }
        }
    }

    if root.has_error() && depth < MAX_RECOVERY_DEPTH {
        recover(lang, rel_path, source, root, depth, &mut symbols);
    }

    ExtractedFile {
        symbols,
        has_errors: root.has_error(),
    }
}

/// Re-parses definition-shaped chunks inside top-level ERROR regions and adds what they hold.
fn recover(
    lang: Language,
    rel_path: &str,
    source: &str,
    root: Node,
    depth: usize,
    symbols: &mut Vec<Symbol>,
) {
    let spec = lang.spec();
    if spec.recovery_starts.is_empty() {
        return;
    }
    let mut cursor = root.walk();
    let errors: Vec<(usize, usize)> = root
        .children(&mut cursor)
        .filter(|n| n.is_error())
        .map(|n| (n.start_byte(), n.end_byte()))
        .collect();
    for (err_start, err_end) in errors {
        // Line starts inside the region that begin a definition (with its leader lines).
        let mut starts: Vec<usize> = Vec::new();
        let mut leader_start: Option<usize> = None;
        let mut pos = source[..err_start].rfind('\n').map_or(0, |i| i + 1);
        while pos < err_end {
            let line_end = source[pos..]
                .find('\n')
                .map_or(source.len(), |i| pos + i + 1);
            let line = &source[pos..line_end];
            let is = |list: &[String]| list.iter().any(|p| line.starts_with(p.as_str()));
            if is(&spec.recovery_leaders) {
                leader_start.get_or_insert(pos);
            } else if is(&spec.recovery_starts) {
                starts.push(leader_start.take().unwrap_or(pos));
            } else if !line.trim().is_empty() {
                leader_start = None;
            }
            pos = line_end;
        }
        // The chunk holding the error itself is usually unparseable: skip chunks that start
        // inside an already extracted symbol.
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(err_end.max(start));
            if symbols.iter().any(|s| {
                s.parent.is_none()
                    && s.start_byte <= start
                    && start < s.end_byte
                    && s.kind != SymbolKind::Module
            }) {
                continue;
            }
            let chunk = &source[start..end];
            let sub = extract_at_depth(lang, rel_path, chunk, depth + 1);
            if sub.symbols.is_empty() {
                continue;
            }
            let line_off = source[..start].matches('\n').count();
            let base = symbols.len();
            for mut s in sub.symbols {
                if s.kind == SymbolKind::Module
                    && s.start_byte == 0
                    && s.name_start_byte == s.name_end_byte
                {
                    continue;
                }
                s.start_byte += start;
                s.end_byte += start;
                s.name_start_byte += start;
                s.name_end_byte += start;
                s.start_line += line_off;
                s.end_line += line_off;
                s.parent = s.parent.map(|p| p + base);
                symbols.push(s);
            }
        }
    }
    // Keep source order with parents' indices intact: sort by start and remap.
    let mut order: Vec<usize> = (0..symbols.len()).collect();
    order.sort_by_key(|&i| {
        (
            symbols[i].start_byte,
            std::cmp::Reverse(symbols[i].end_byte),
        )
    });
    let mut new_index = vec![0; symbols.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut sorted: Vec<Symbol> = order.iter().map(|&i| symbols[i].clone()).collect();
    for s in &mut sorted {
        s.parent = s.parent.map(|p| new_index[p]);
    }
    *symbols = sorted;
}

/// The node a definition's range starts at: the earliest of the attributes right before it
/// (`#[test]`), looking past doc comments between them.
fn range_start<'t>(spec: &LanguageSpec, d: &Def<'t>) -> Node<'t> {
    let mut start = d.outer;
    for &n in d.leading.iter().rev() {
        if spec.skip_between.iter().any(|k| k == n.kind()) {
            start = n;
        } else if !spec.doc_comment_kinds.iter().any(|k| k == n.kind()) {
            break;
        }
    }
    start
}

/// `Foo<T>` → `Foo`, `&'a mut Foo` → `Foo`, `fmt::Display` → `Display`.
fn scope_type_name(raw: &str) -> String {
    let base = raw.split('<').next().unwrap_or(raw);
    let base = base.trim_start_matches(['&', '*']).trim();
    let base = base
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ")
        .trim();
    let base = if base.starts_with('\'') {
        base.split_whitespace().last().unwrap_or(base)
    } else {
        base
    };
    base.rsplit("::").next().unwrap_or(base).trim().to_string()
}

/// Header text of a definition: from its start to its body, whitespace collapsed.
fn signature(node: Node, source: &str) -> String {
    let end = node
        .child_by_field_name("body")
        .map_or(node.end_byte(), |b| b.start_byte());
    let raw = &source[node.start_byte()..end.max(node.start_byte())];
    let mut sig = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    while sig.ends_with(['{', ':', ';']) {
        sig.pop();
        sig.truncate(sig.trim_end().len());
    }
    docs::truncate_chars(&sig, MAX_SIGNATURE_CHARS)
}

fn docstring(spec: &LanguageSpec, d: &Def, source: &str) -> Option<String> {
    let bytes = source.as_bytes();
    match spec.doc_style {
        DocStyle::BodyString => {
            let body = d.node.child_by_field_name("body")?;
            // Imports written above the docstring do not hide it.
            let preamble = &spec.generation.doc_preamble_kinds;
            let mut cursor = body.walk();
            let first = body
                .named_children(&mut cursor)
                .find(|c| !preamble.iter().any(|k| k == c.kind()))?;
            if first.kind() != "expression_statement" {
                return None;
            }
            let s = first.named_child(0)?;
            if s.kind() != "string" {
                return None;
            }
            Some(docs::python_string(s.utf8_text(bytes).ok()?))
        }
        DocStyle::PrecedingComments => {
            let mut parts: Vec<&str> = Vec::new();
            for &n in d.leading.iter().rev() {
                let kind = n.kind();
                if spec.skip_between.iter().any(|k| k == kind) {
                    continue;
                }
                if !spec.doc_comment_kinds.iter().any(|k| k == kind) {
                    break;
                }
                let t = n.utf8_text(bytes).ok()?;
                let is_doc = spec.doc_prefixes.iter().any(|p| t.starts_with(p.as_str()))
                    && !t.starts_with("////")
                    && !t.starts_with("/**/");
                if !is_doc {
                    break;
                }
                parts.push(t);
            }
            parts.reverse();
            // Module bodies may carry inner docs (`mod m { //! ... }`).
            if parts.is_empty()
                && let Some(body) = d.node.child_by_field_name("body")
            {
                return inner_docs(spec, body, source);
            }
            if parts.is_empty() {
                None
            } else {
                Some(docs::comments(&parts))
            }
        }
    }
}

/// Leading inner doc comments (`//!`, `/*!`) of a file or block.
fn inner_docs(spec: &LanguageSpec, container: Node, source: &str) -> Option<String> {
    if spec.inner_doc_prefixes.is_empty() {
        return None;
    }
    let bytes = source.as_bytes();
    let mut parts = Vec::new();
    let mut cursor = container.walk();
    for child in container.children(&mut cursor) {
        if !spec.doc_comment_kinds.iter().any(|k| k == child.kind()) {
            if child.is_named() {
                break;
            }
            continue;
        }
        let t = child.utf8_text(bytes).ok()?;
        if spec
            .inner_doc_prefixes
            .iter()
            .any(|p| t.starts_with(p.as_str()))
        {
            parts.push(t);
        } else {
            break;
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(docs::comments(&parts))
    }
}

fn is_test(
    spec: &LanguageSpec,
    kind: SymbolKind,
    d: &Def,
    source: &str,
    test_file: bool,
    parent_is_test_class: bool,
) -> bool {
    let markers = &spec.tests;
    let bytes = source.as_bytes();
    if test_file && kind.is_callable() {
        let top_level_or_in_test_class = kind == SymbolKind::Function || parent_is_test_class;
        if top_level_or_in_test_class
            && markers
                .function_prefixes
                .iter()
                .any(|p| d.name.starts_with(p.as_str()))
        {
            return true;
        }
    }
    if test_file
        && kind.is_type_like()
        && markers
            .class_prefixes
            .iter()
            .any(|p| d.name.starts_with(p.as_str()))
    {
        return true;
    }
    if !markers.attributes.is_empty() {
        for &n in d.leading.iter().rev() {
            match n.kind() {
                "attribute_item" => {
                    let t = n.utf8_text(bytes).unwrap_or("");
                    let inner: String = t
                        .trim_start_matches("#[")
                        .trim_end_matches(']')
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect();
                    let path = inner.split('(').next().unwrap_or("");
                    if markers.attributes.iter().any(|a| a == path || *a == inner) {
                        return true;
                    }
                }
                "line_comment" | "block_comment" => {}
                _ => break,
            }
        }
    }
    if !markers.annotations.is_empty() {
        let mut cursor = d.node.walk();
        for child in d.node.children(&mut cursor) {
            if child.kind() != "modifiers" {
                continue;
            }
            let mut c2 = child.walk();
            for ann in child.children(&mut c2) {
                if !matches!(ann.kind(), "marker_annotation" | "annotation") {
                    continue;
                }
                let Some(name) = ann.child_by_field_name("name") else {
                    continue;
                };
                let t = name.utf8_text(bytes).unwrap_or("");
                let last = t.rsplit('.').next().unwrap_or(t);
                if markers.annotations.iter().any(|a| a == last) {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impl_scope_names() {
        assert_eq!(scope_type_name("Foo<T>"), "Foo");
        assert_eq!(scope_type_name("&'a mut Foo"), "Foo");
        assert_eq!(scope_type_name("fmt::Display"), "Display");
    }

    #[test]
    fn empty_and_garbage_input_do_not_fail() {
        for lang in Language::ALL {
            assert!(extract(lang, "x", "").symbols.is_empty());
            let r = extract(lang, "x", "\u{0}\u{1}}}}{{{((( def class fn ]]]");
            assert!(r.symbols.len() < 5);
        }
    }
}
