//! Context for a prompt: the enclosing scope, the file's imports, other definitions in the same
//! file, and the index's best hits for the target's name, signature and docstring (any language).
//! Retrieval is reached through the small [`Retriever`] trait; the index implements it here.

use codeforge_index::{SearchQuery, WorkspaceIndex};
use codeforge_prompt::{Snippet, SnippetKind};
use codeforge_syntax::{ExtractedFile, FunctionTarget, Importable, Language, SymbolKind};
use futures::future::BoxFuture;

use crate::related::Related;
use crate::structure::{Around, Weights, rank_structural};

/// Finds symbols related to a query.
pub trait Retriever: Send + Sync {
    fn related(&self, query: String, k: usize) -> BoxFuture<'_, Result<Vec<Related>, String>>;

    /// The version of what this retriever answers from (the index's, bumped by every write):
    /// answers computed at an older version may be stale.
    fn version(&self) -> u64 {
        0
    }

    /// Re-ranks `hybrid` (the hits of [`Retriever::related`]) with the repository's structure
    /// around `target` (see [`crate::structure`]); `None` where this retriever knows no
    /// structure, and the hits are used as they are.
    fn structural<'a>(
        &'a self,
        _at: Around<'a>,
        _hybrid: Vec<Related>,
        _k: usize,
    ) -> BoxFuture<'a, Option<Vec<Related>>> {
        Box::pin(async { None })
    }
}

/// A retriever's search hits as they are, without its structural ranking
/// (`[generation] context_ranking = "search"`).
pub struct SearchOnly<R>(pub R);

impl<R, T> Retriever for SearchOnly<R>
where
    R: std::ops::Deref<Target = T> + Send + Sync,
    T: Retriever + ?Sized + 'static,
{
    fn related(&self, query: String, k: usize) -> BoxFuture<'_, Result<Vec<Related>, String>> {
        self.0.related(query, k)
    }

    fn version(&self) -> u64 {
        self.0.version()
    }
}

/// `retriever` as `ranking` asks: itself, or its search hits alone.
pub fn ranked_retriever(
    retriever: std::sync::Arc<dyn Retriever>,
    ranking: codeforge_config::ContextRanking,
) -> std::sync::Arc<dyn Retriever> {
    match ranking {
        codeforge_config::ContextRanking::Structure => retriever,
        codeforge_config::ContextRanking::Search => std::sync::Arc::new(SearchOnly(retriever)),
    }
}

impl Retriever for WorkspaceIndex {
    fn related(&self, query: String, k: usize) -> BoxFuture<'_, Result<Vec<Related>, String>> {
        Box::pin(async move {
            let hits = self
                .search(&SearchQuery::new(query, k))
                .await
                .map_err(|e| e.to_string())?;
            // The index stores the language by name; a row in a language this build does not
            // know is skipped here, once, at the boundary.
            Ok(hits.into_iter().filter_map(Related::from_hit).collect())
        })
    }

    fn version(&self) -> u64 {
        self.generation()
    }

    fn structural<'a>(
        &'a self,
        at: Around<'a>,
        hybrid: Vec<Related>,
        k: usize,
    ) -> BoxFuture<'a, Option<Vec<Related>>> {
        Box::pin(async move {
            // Never wait for a running update (a cold index takes minutes): the hits serve
            // until the name layer can load.
            match self.try_load_names().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("index update running: repository context from search only");
                    return None;
                }
                Err(e) => {
                    tracing::warn!("name layer unavailable, search hits only: {e:#}");
                    return None;
                }
            }
            self.with_names(|names| rank_structural(&at, names, &hybrid, k, &Weights::default()))
        })
    }
}

fn comment_doc(lang: Language, doc: &str, max_lines: usize) -> String {
    let c = &lang.spec().generation.line_comment;
    doc.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(max_lines)
        .map(|l| format!("{c} {l}\n"))
        .collect()
}

/// Everything but the retrieved hits (no I/O).
pub fn local_context(
    lang: Language,
    source: &str,
    file: &ExtractedFile,
    target: &FunctionTarget,
) -> Vec<Snippet> {
    let mut out = Vec::new();
    let sym = &target.symbol;
    // Enclosing scopes, outermost first. Rust methods sit in `impl` blocks, which are not
    // symbols: their scope is found by name.
    let mut chain = Vec::new();
    let mut p = sym.parent;
    while let Some(i) = p {
        let Some(s) = file.symbols.get(i) else { break };
        chain.push(s);
        p = s.parent;
    }
    if chain.is_empty()
        && let Some(s) = file
            .symbols
            .iter()
            .find(|s| s.qualified_name == sym.scope && s.kind.is_type_like())
    {
        chain.push(s);
    }
    if let Some(parent) = chain.first() {
        let mut text = String::new();
        for s in chain.iter().rev() {
            if let Some(d) = s.doc_summary() {
                text.push_str(&comment_doc(lang, d, 1));
            }
            // Data types are shown whole (their fields matter); classes by their header.
            let whole = matches!(
                s.kind,
                SymbolKind::Struct | SymbolKind::Enum | SymbolKind::Record
            ) && s.end_line - s.start_line < 40
                && s.end_byte <= source.len();
            if whole {
                text.push_str(source[s.start_byte..s.end_byte].trim_end());
            } else {
                text.push_str(s.signature.trim_end());
            }
            text.push('\n');
        }
        out.push(Snippet {
            kind: SnippetKind::Scope,
            label: parent.qualified_name.clone(),
            text,
        });
    }
    let prefixes = &lang.spec().generation.import_prefixes;
    let imports: String = source
        .lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p.as_str())))
        .take(60)
        .map(|l| format!("{l}\n"))
        .collect();
    if !imports.is_empty() {
        out.push(Snippet {
            kind: SnippetKind::Imports,
            label: "imports".into(),
            text: imports,
        });
    }
    // Siblings first (same scope), then the rest of the file; never the target or its insides.
    let mut others: Vec<&codeforge_syntax::Symbol> = file
        .symbols
        .iter()
        .filter(|s| s.qualified_name != sym.qualified_name)
        .filter(|s| !(s.start_byte >= sym.start_byte && s.end_byte <= sym.end_byte))
        .filter(|s| s.kind != SymbolKind::Module)
        .filter(|s| !chain.iter().any(|c| c.qualified_name == s.qualified_name))
        .collect();
    others.sort_by_key(|s| (s.scope != sym.scope, s.is_test, s.start_line));
    for s in others.into_iter().take(40) {
        let mut text = String::new();
        if let Some(d) = &s.docstring {
            text.push_str(&comment_doc(lang, d, 2));
        }
        text.push_str(s.signature.trim_end());
        out.push(Snippet {
            kind: SnippetKind::SameFile,
            label: format!("line {} {}", s.start_line + 1, s.qualified_name),
            text,
        });
    }
    out
}

/// The query used to find related code: the target's words, signature and doc summary, secrets
/// masked (an embedding backend may be remote).
pub fn retrieval_query(s: &codeforge_syntax::Symbol) -> String {
    let mut q = codeforge_syntax::split_identifier_words(&s.name).join(" ");
    if let Some(d) = s.doc_summary() {
        q.push(' ');
        q.push_str(d);
    }
    q.push(' ');
    q.push_str(&s.signature);
    codeforge_syntax::secret_scan::redact(&q).into_owned()
}

/// Local context plus up to `k` repository hits (the target itself and same-file symbols
/// excluded), and how to import each hit an answer may use (auto-import). A retriever error
/// yields fewer snippets and a note, never a failure.
pub async fn gather_context(
    lang: Language,
    rel_path: &str,
    source: &str,
    file: &ExtractedFile,
    target: &FunctionTarget,
    retriever: Option<&dyn Retriever>,
    k: usize,
) -> (Vec<Snippet>, Vec<Importable>, Option<String>) {
    let mut out = local_context(lang, source, file, target);
    let mut importable = Vec::new();
    let mut note = None;
    if let Some(r) = retriever
        && k > 0
    {
        match r.related(retrieval_query(&target.symbol), k + 8).await {
            Ok(hits) => {
                // Structure first (imports, siblings' and callers' calls, signature types),
                // fused with the hits; same-file symbols are in the local context already.
                let hits = match r
                    .structural(
                        Around {
                            lang,
                            rel_path,
                            source,
                            file,
                            target: &target.symbol,
                        },
                        hits.clone(),
                        k + 40,
                    )
                    .await
                {
                    Some(ranked) => ranked,
                    None => hits,
                };
                for h in hits
                    .into_iter()
                    .filter(|h| h.path != rel_path && !h.is_test)
                    .filter(|h| h.qualified_name != target.symbol.qualified_name)
                    .take(k)
                {
                    let mut text = String::new();
                    if h.language != lang {
                        text.push_str(&format!(
                            "{} ({})\n",
                            lang.spec().generation.line_comment,
                            h.language
                        ));
                    }
                    if let Some(d) = &h.doc {
                        text.push_str(&comment_doc(lang, d, 3));
                    }
                    text.push_str(h.signature.trim_end());
                    if h.language == lang
                        && let Some(kind) = SymbolKind::from_name(&h.kind)
                        && let Some(i) = codeforge_syntax::importable(
                            lang,
                            rel_path,
                            &h.path,
                            &h.qualified_name,
                            kind,
                        )
                    {
                        importable.push(i);
                    }
                    out.push(Snippet {
                        kind: SnippetKind::Retrieved,
                        label: format!(
                            "{}:{} {} (score {:.3})",
                            h.path, h.line, h.qualified_name, h.score
                        ),
                        text,
                    });
                }
            }
            Err(e) => note = Some(format!("repository context unavailable: {e}")),
        }
    } else if retriever.is_none() {
        note = Some("repository context unavailable: no index for this workspace".into());
    }
    (out, importable, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One search hit, and a structural ranking that puts another symbol first.
    struct Ranked;

    fn hit(name: &str) -> Related {
        Related {
            qualified_name: name.into(),
            kind: "function".into(),
            language: Language::Python,
            path: format!("{name}.py"),
            line: 1,
            signature: format!("def {name}():"),
            doc: None,
            score: 1.0,
            is_test: false,
        }
    }

    impl Retriever for Ranked {
        fn related(&self, _q: String, _k: usize) -> BoxFuture<'_, Result<Vec<Related>, String>> {
            Box::pin(async { Ok(vec![hit("searched")]) })
        }

        fn version(&self) -> u64 {
            7
        }

        fn structural<'a>(
            &'a self,
            _at: Around<'a>,
            hybrid: Vec<Related>,
            _k: usize,
        ) -> BoxFuture<'a, Option<Vec<Related>>> {
            Box::pin(async move { Some([vec![hit("structural")], hybrid].concat()) })
        }
    }

    async fn labels(r: &dyn Retriever) -> Vec<String> {
        let source = "def target():\n    \"\"\"Does it.\"\"\"\n    pass\n";
        let parsed = codeforge_syntax::ParsedFile::parse(Language::Python, "t.py", source);
        let target = parsed.function_at_line(0).expect("a target");
        let (snippets, _, _) = gather_context(
            Language::Python,
            "t.py",
            source,
            parsed.extracted(),
            &target,
            Some(r),
            6,
        )
        .await;
        snippets
            .into_iter()
            .filter(|s| s.kind == SnippetKind::Retrieved)
            .map(|s| s.label)
            .collect()
    }

    /// `context_ranking = "search"` offers the search hits as they are; the default ranks them
    /// by structure first.
    #[tokio::test]
    async fn search_only_skips_the_structural_ranking() {
        let structure = ranked_retriever(
            std::sync::Arc::new(Ranked),
            codeforge_config::ContextRanking::Structure,
        );
        let search = ranked_retriever(
            std::sync::Arc::new(Ranked),
            codeforge_config::ContextRanking::Search,
        );
        assert_eq!(search.version(), 7);
        let s = labels(structure.as_ref()).await;
        assert!(s[0].contains("structural"), "{s:?}");
        let o = labels(search.as_ref()).await;
        assert_eq!(o.len(), 1, "{o:?}");
        assert!(o[0].contains("searched"), "{o:?}");
    }
}
