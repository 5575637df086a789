//! The patterns of `grammars/<lang>/symbols.scm` and `references.scm`, compiled for one walk of
//! the tree with a cursor: what extraction matches, without tree-sitter's query engine (the
//! engine's walk and the `parent`/`prev_sibling` look-ups it left to extraction were about as
//! much time as the parse itself on the JDK).
//!
//! The files are tree-sitter queries restricted to chains: each node pattern has at most one
//! child pattern, `field:` prefixes, `(_)` wildcards and captures; no predicates, alternations,
//! quantifiers, anchors or strings. A pattern outside that subset is a build defect, reported by
//! [`Patterns::compile`] and caught by the grammar data's unit test, which also checks that the
//! walk finds exactly what tree-sitter's query engine finds on real files.

use tree_sitter::Node;

use crate::{Language, LanguageSpec, SymbolKind};

/// The node kinds extraction looks back over before a definition (its range's start, docs, test
/// attributes): all a definition's `leading` run may hold.
pub(crate) fn leading_kinds(spec: &LanguageSpec) -> impl Iterator<Item = &str> {
    let attributes: &[&str] = if spec.tests.attributes.is_empty() {
        &[]
    } else {
        &ATTRIBUTE_RUN_KINDS
    };
    spec.skip_between
        .iter()
        .chain(&spec.doc_comment_kinds)
        .map(String::as_str)
        .chain(attributes.iter().copied())
}

/// What `is_test` looks back over for test attributes (Rust `#[test]`).
const ATTRIBUTE_RUN_KINDS: [&str; 3] = ["attribute_item", "line_comment", "block_comment"];

/// What a capture marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Name,
    Package,
    Definition(SymbolKind),
    /// A naming scope that is not itself a symbol (`@scope.impl`).
    Scope,
    Reference,
}

/// One node of a chain pattern, outermost first.
#[derive(Debug)]
struct Step {
    /// `None` is `(_)`: any named node.
    kind: Option<u16>,
    /// The field this node must be in, of the previous step's node.
    field: Option<u16>,
    roles: Vec<Role>,
}

#[derive(Debug)]
pub(crate) struct Pattern {
    steps: Vec<Step>,
    /// From `references.scm`.
    pub reference: bool,
}

/// A node on the walk's path from the root.
#[derive(Clone, Copy)]
pub(crate) struct Frame<'t> {
    pub node: Node<'t>,
    kind: u16,
    /// The node's field in its parent, where a pattern needs it (0 otherwise, or none).
    field: u16,
    /// The run of comment-like siblings right before the node: `runs[run_start..run_end]`.
    run_start: u32,
    run_end: u32,
}

/// A pattern matched at the end of the walk's path.
pub(crate) struct Match<'a, 't> {
    pub pattern: &'a Pattern,
    /// The path from the root; the match is its last `steps.len()` frames.
    path: &'a [Frame<'t>],
    runs: &'a [Node<'t>],
}

impl<'a, 't> Match<'a, 't> {
    /// The captured nodes with their roles, outermost first.
    pub fn captures(&self) -> impl Iterator<Item = (Role, Node<'t>)> + '_ {
        let first = self.path.len() - self.pattern.steps.len();
        self.pattern
            .steps
            .iter()
            .zip(&self.path[first..])
            .flat_map(|(s, f)| s.roles.iter().map(move |r| (*r, f.node)))
    }

    /// Where `node` (a captured node or one of its ancestors) is on the path.
    fn position(&self, node: Node<'t>) -> Option<usize> {
        self.path.iter().rposition(|f| f.node.id() == node.id())
    }

    /// The parent of a captured node.
    pub fn parent_of(&self, node: Node<'t>) -> Option<Node<'t>> {
        let i = self.position(node)?;
        i.checked_sub(1).map(|p| self.path[p].node)
    }

    /// The comment-like siblings right before a captured node or its parent, nearest last
    /// (what `prev_sibling` would give, up to the first sibling of another kind).
    pub fn leading(&self, node: Node<'t>) -> &'a [Node<'t>] {
        match self.position(node) {
            Some(i) => {
                let f = &self.path[i];
                &self.runs[f.run_start as usize..f.run_end as usize]
            }
            None => &[],
        }
    }
}

pub(crate) struct Patterns {
    patterns: Vec<Pattern>,
    /// By node kind: the patterns whose innermost step is that kind.
    by_last: Vec<Vec<u32>>,
    /// Patterns whose innermost step is `(_)`.
    wild_last: Vec<u32>,
    /// Kinds whose field in their parent a pattern checks.
    field_kinds: Vec<bool>,
    /// Kinds whose children's fields a pattern checks (a `field: (_)` step below them).
    field_parents: Vec<bool>,
    /// Kinds that extraction looks back over before a definition (comments, attributes).
    run_kinds: Vec<bool>,
}

enum Token<'s> {
    Open,
    Close,
    Colon,
    Capture(&'s str),
    Word(&'s str),
}

fn tokens(src: &str) -> Result<Vec<Token<'_>>, String> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-';
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                out.push(Token::Open);
                i += 1;
            }
            b')' => {
                out.push(Token::Close);
                i += 1;
            }
            b':' => {
                out.push(Token::Colon);
                i += 1;
            }
            b'@' => {
                let s = i + 1;
                i = s;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                out.push(Token::Capture(&src[s..i]));
            }
            c if word(c) && c != b'.' => {
                let s = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                out.push(Token::Word(&src[s..i]));
            }
            c => {
                return Err(format!(
                    "`{}` at byte {i}: only chains of `(kind field: (kind) @capture)` are supported",
                    c as char
                ));
            }
        }
    }
    Ok(out)
}

impl Patterns {
    /// Compiles both files of a language, the symbols' patterns first.
    pub fn compile(lang: Language) -> Result<Patterns, String> {
        let grammar = lang.grammar();
        let data = lang.data();
        let mut patterns = Vec::new();
        for (file, src, reference) in [
            ("symbols.scm", data.symbols_query, false),
            ("references.scm", data.references_query, true),
        ] {
            let err = |e: String| format!("grammars/{}/{file}: {e}", lang.name());
            let toks = tokens(src).map_err(err)?;
            let mut pos = 0;
            while pos < toks.len() {
                let steps = chain(&grammar, &toks, &mut pos, None).map_err(err)?;
                for s in &steps {
                    for r in &s.roles {
                        let ok = if reference {
                            *r == Role::Reference
                        } else {
                            *r != Role::Reference
                        };
                        if !ok {
                            return Err(err(format!("capture {r:?} does not belong here")));
                        }
                    }
                }
                patterns.push(Pattern { steps, reference });
            }
        }
        let kinds = grammar.node_kind_count();
        let mut p = Patterns {
            by_last: vec![Vec::new(); kinds],
            wild_last: Vec::new(),
            field_kinds: vec![false; kinds],
            field_parents: vec![false; kinds],
            run_kinds: vec![false; kinds],
            patterns,
        };
        for (i, pat) in p.patterns.iter().enumerate() {
            match pat.steps.last().and_then(|s| s.kind) {
                Some(k) => p.by_last[k as usize].push(i as u32),
                None => p.wild_last.push(i as u32),
            }
            for (j, s) in pat.steps.iter().enumerate().skip(1) {
                if s.field.is_none() {
                    continue;
                }
                match (s.kind, pat.steps[j - 1].kind) {
                    (Some(k), _) => p.field_kinds[k as usize] = true,
                    (None, Some(parent)) => p.field_parents[parent as usize] = true,
                    (None, None) => {
                        return Err(format!(
                            "grammars/{}: a `field: (_)` step below `(_)` is not supported",
                            lang.name()
                        ));
                    }
                }
            }
        }
        for name in leading_kinds(lang.spec()) {
            for named in [true, false] {
                let id = grammar.id_for_node_kind(name, named);
                if id != 0 && (id as usize) < kinds {
                    p.run_kinds[id as usize] = true;
                }
            }
        }
        Ok(p)
    }

    /// Walks the whole tree once, calling `on_match` for every match, each as soon as its
    /// innermost node is reached (so in document order of that node).
    pub fn walk<'t>(&self, root: Node<'t>, mut on_match: impl FnMut(&Match<'_, 't>)) {
        let mut cursor = root.walk();
        let mut path: Vec<Frame<'t>> = Vec::with_capacity(64);
        let mut runs: Vec<Node<'t>> = Vec::new();
        let mut seg_start = 0u32;
        loop {
            let node = cursor.node();
            let kind = node.kind_id();
            let k = kind as usize;
            let needs_field = self.field_kinds.get(k).copied().unwrap_or(false)
                || path
                    .last()
                    .is_some_and(|p| self.field_parents.get(p.kind as usize) == Some(&true));
            let field = if needs_field {
                cursor.field_id().map_or(0, |f| f.get())
            } else {
                0
            };
            path.push(Frame {
                node,
                kind,
                field,
                run_start: seg_start,
                run_end: runs.len() as u32,
            });
            if let Some(list) = self.by_last.get(k) {
                for &pi in list {
                    self.check(pi, &path, &runs, &mut on_match);
                }
            }
            if !self.wild_last.is_empty() && node.is_named() {
                for &pi in &self.wild_last {
                    self.check(pi, &path, &runs, &mut on_match);
                }
            }
            if cursor.goto_first_child() {
                seg_start = runs.len() as u32;
                continue;
            }
            // Leave nodes until one has a next sibling.
            loop {
                let Some(f) = path.pop() else { return };
                if self
                    .run_kinds
                    .get(f.kind as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    runs.truncate(f.run_end as usize);
                    runs.push(f.node);
                } else {
                    runs.truncate(f.run_start as usize);
                }
                seg_start = f.run_start;
                if path.is_empty() {
                    return;
                }
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return;
                }
            }
        }
    }

    fn check<'t>(
        &self,
        pi: u32,
        path: &[Frame<'t>],
        runs: &[Node<'t>],
        on_match: &mut impl FnMut(&Match<'_, 't>),
    ) {
        let pattern = &self.patterns[pi as usize];
        let n = pattern.steps.len();
        if path.len() < n {
            return;
        }
        let first = path.len() - n;
        for (j, s) in pattern.steps.iter().enumerate() {
            let f = &path[first + j];
            let kind_ok = match s.kind {
                Some(k) => f.kind == k,
                None => f.node.is_named(),
            };
            if !kind_ok || (j > 0 && s.field.is_some_and(|fld| fld != f.field)) {
                return;
            }
        }
        on_match(&Match {
            pattern,
            path,
            runs,
        });
    }
}

/// `(kind [field:] (child ...) ) @captures`: this node's step, then the child's chain.
fn chain(
    grammar: &tree_sitter::Language,
    toks: &[Token],
    pos: &mut usize,
    field: Option<u16>,
) -> Result<Vec<Step>, String> {
    let next = |pos: &mut usize| {
        let t = toks.get(*pos);
        *pos += 1;
        t
    };
    if !matches!(next(pos), Some(Token::Open)) {
        return Err("expected `(`".into());
    }
    let kind = match next(pos) {
        Some(Token::Word("_")) => None,
        Some(Token::Word(name)) => {
            let id = grammar.id_for_node_kind(name, true);
            if id == 0 {
                return Err(format!("unknown node kind `{name}`"));
            }
            if !grammar.node_kind_is_visible(id) {
                return Err(format!(
                    "`{name}` is not a visible node kind (a supertype?)"
                ));
            }
            Some(id)
        }
        _ => return Err("expected a node kind after `(`".into()),
    };
    let mut steps = vec![Step {
        kind,
        field,
        roles: Vec::new(),
    }];
    let mut children = 0;
    loop {
        match toks.get(*pos) {
            Some(Token::Close) => {
                *pos += 1;
                break;
            }
            Some(Token::Word(f)) if matches!(toks.get(*pos + 1), Some(Token::Colon)) => {
                let id = grammar
                    .field_id_for_name(f)
                    .ok_or_else(|| format!("unknown field `{f}`"))?;
                *pos += 2;
                steps.extend(chain(grammar, toks, pos, Some(id.get()))?);
                children += 1;
            }
            Some(Token::Open) => {
                steps.extend(chain(grammar, toks, pos, None)?);
                children += 1;
            }
            _ => return Err("expected `)`, `field:` or a child pattern".into()),
        }
        if children > 1 {
            return Err("a node pattern may have one child pattern only (a chain)".into());
        }
    }
    while let Some(Token::Capture(c)) = toks.get(*pos) {
        *pos += 1;
        let role = match *c {
            "name" => Role::Name,
            "package" => Role::Package,
            "reference" => Role::Reference,
            c if c.starts_with("scope.") => Role::Scope,
            c => match c
                .strip_prefix("definition.")
                .and_then(SymbolKind::from_name)
            {
                Some(k) => Role::Definition(k),
                None => return Err(format!("unknown capture @{c}")),
            },
        };
        steps[0].roles.push(role);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use tree_sitter::{Parser, QueryCursor, StreamingIterator};

    use super::*;
    use crate::language::Queries;

    /// (pattern index, captured nodes as (capture, start, end, kind)), sorted.
    type Found = Vec<(usize, Vec<(String, usize, usize, u16)>)>;

    fn by_query(q: &Queries, root: Node, src: &str) -> Found {
        let names = q.both.capture_names();
        let mut out = Vec::new();
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(&q.both, root, src.as_bytes());
        while let Some(m) = matches.next() {
            let mut caps: Vec<_> = m
                .captures()
                .iter()
                .map(|c| {
                    let n = c.node;
                    (
                        names[c.index as usize].to_string(),
                        n.start_byte(),
                        n.end_byte(),
                        n.kind_id(),
                    )
                })
                .collect();
            caps.sort();
            out.push((m.pattern_index, caps));
        }
        out.sort();
        out
    }

    fn role_name(r: Role) -> String {
        match r {
            Role::Name => "name".into(),
            Role::Package => "package".into(),
            Role::Reference => "reference".into(),
            Role::Scope => "scope.impl".into(),
            Role::Definition(k) => format!("definition.{}", k.name()),
        }
    }

    /// The walk's matches, and for each definition whether its leading run is what
    /// `prev_sibling` gives.
    fn by_walk(p: &Patterns, lang: Language, root: Node) -> Found {
        let spec = lang.spec();
        let kinds: Vec<&str> = leading_kinds(spec).collect();
        let mut out = Vec::new();
        p.walk(root, |m| {
            let index = p
                .patterns
                .iter()
                .position(|q| std::ptr::eq(q, m.pattern))
                .unwrap();
            let mut caps: Vec<_> = m
                .captures()
                .map(|(r, n)| (role_name(r), n.start_byte(), n.end_byte(), n.kind_id()))
                .collect();
            caps.sort();
            out.push((index, caps));
            for (r, n) in m.captures() {
                if !matches!(r, Role::Definition(_) | Role::Scope) {
                    continue;
                }
                assert_eq!(m.parent_of(n).map(|p| p.id()), n.parent().map(|p| p.id()));
                let mut expected = Vec::new();
                let mut prev = n.prev_sibling();
                while let Some(s) = prev.filter(|s| kinds.contains(&s.kind())) {
                    expected.push(s.id());
                    prev = s.prev_sibling();
                }
                expected.reverse();
                let got: Vec<usize> = m.leading(n).iter().map(|s| s.id()).collect();
                assert_eq!(got, expected, "leading run of {}", n.kind());
            }
        });
        out.sort();
        out
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name()
                .is_some_and(|n| n == "target" || n == "node_modules")
            {
                continue;
            }
            if p.is_dir() {
                files(&p, out);
            } else if Language::from_path(&p).is_some() {
                out.push(p);
            }
        }
    }

    /// Checks the walk against tree-sitter's query engine on every file under `dirs`, and on
    /// each file cut in half (broken code). Returns how many files were compared, per language.
    fn compare(dirs: &[PathBuf]) -> BTreeMap<Language, usize> {
        let mut paths = Vec::new();
        for d in dirs {
            files(d, &mut paths);
        }
        let mut counted = BTreeMap::new();
        let queries: Vec<Queries> = Language::ALL
            .into_iter()
            .map(|l| Queries::compile(l).unwrap())
            .collect();
        for path in paths {
            let lang = Language::from_path(&path).unwrap();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let q = &queries[lang as usize];
            let p = lang.patterns();
            let mut parser = Parser::new();
            parser.set_language(&lang.grammar()).unwrap();
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            for src in [&text[..], &text[..cut]] {
                let tree = parser.parse(src, None).unwrap();
                let root = tree.root_node();
                assert_eq!(
                    by_walk(p, lang, root),
                    by_query(q, root, src),
                    "{}",
                    path.display()
                );
            }
            *counted.entry(lang).or_insert(0) += 1;
        }
        counted
    }

    #[test]
    fn the_walk_finds_what_the_query_engine_finds() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        // This repository's own code and fixtures (Rust, Python, Java), whole and cut in half.
        let counted = compare(&[
            repo.join("server"),
            repo.join("tests"),
            repo.join("grammars"),
        ]);
        for lang in Language::ALL {
            assert!(
                counted.get(&lang).copied().unwrap_or(0) >= 5,
                "too few {lang} files compared: {counted:?}"
            );
        }
        // Real projects too, when a benchmark corpus is at hand (`.ci/corpora`: Django, tokio,
        // the JDK): CODEFORGE_PATTERN_CORPORA=dir[:dir...].
        if let Some(extra) = std::env::var_os("CODEFORGE_PATTERN_CORPORA") {
            let dirs: Vec<PathBuf> = std::env::split_paths(&extra).collect();
            let counted = compare(&dirs);
            eprintln!("compared on {counted:?}");
            assert!(!counted.is_empty());
        }
    }

    #[test]
    fn patterns_outside_the_chain_subset_are_refused() {
        let g: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        let compile = |src: &str| -> Result<usize, String> {
            let toks = tokens(src)?;
            let mut pos = 0;
            let mut n = 0;
            while pos < toks.len() {
                chain(&g, &toks, &mut pos, None)?;
                n += 1;
            }
            Ok(n)
        };
        assert_eq!(
            compile("(call function: (attribute attribute: (identifier) @reference))"),
            Ok(1)
        );
        assert!(compile("(call (identifier) (argument_list))").is_err());
        assert!(compile(r#"((identifier) @r (#eq? @r "x"))"#).is_err());
        assert!(compile("[(identifier) (string)] @r").is_err());
        assert!(compile("(no_such_kind) @r").is_err());
        assert!(compile("(call nosuchfield: (identifier))").is_err());
        assert!(compile("(expression) @r").is_err(), "a supertype");
    }
}
