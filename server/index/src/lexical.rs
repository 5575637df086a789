//! The in-memory BM25 index beside the name layer: the same search text and tokens as the
//! LanceDB full-text index (names, their words, signature, docstring; identifiers kept whole and
//! split), answered from postings in memory in a few milliseconds at 200k symbols, where a
//! LanceDB full-text query costs 12–18 ms. Plain data, no I/O; documents are opaque slots the
//! name layer maps to its entries.

use rustc_hash::FxHashMap;

/// BM25's usual constants (the same as LanceDB's scorer).
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// A posting packs the document slot and its term frequency (capped) into one `u32`.
const TF_BITS: u32 = 5;
const TF_MAX: u32 = (1 << TF_BITS) - 1;
/// The most slots the packing allows (134M symbols).
const MAX_SLOTS: usize = 1 << (32 - TF_BITS);

/// Postings per term over document slots. Removed documents are tombstoned and dropped from the
/// postings when they outnumber a quarter of the live ones.
#[derive(Debug, Default)]
pub struct Lexicon {
    terms: FxHashMap<Box<str>, u32>,
    postings: Vec<Vec<u32>>,
    /// Per slot: token count, 0 for a free or removed slot.
    lens: Vec<u32>,
    /// Per slot: removed, not yet dropped from the postings.
    dead: Vec<bool>,
    free: Vec<u32>,
    removed: usize,
    live: usize,
    total_len: u64,
    /// Term frequencies of the document being added (kept for its capacity).
    scratch: FxHashMap<u32, u32>,
}

/// The search text's tokens, as LanceDB's `code` tokenizer with `split_identifiers` makes them:
/// each identifier lowercased whole and, when it has several words, each word (split at `_`,
/// lower→upper, letter↔digit and `HTTPServer`-style boundaries, as
/// `codeforge_syntax::split_identifier_words`). Allocates nothing per token.
pub fn tokens(text: &str, mut emit: impl FnMut(&str)) {
    let mut buf = String::new();
    let lower = |w: &str, buf: &mut String| {
        buf.clear();
        if w.is_ascii() {
            buf.push_str(w);
            buf.make_ascii_lowercase();
        } else {
            buf.extend(w.chars().flat_map(char::to_lowercase));
        }
    };
    for run in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let run = run.trim_matches('_');
        if run.is_empty() {
            continue;
        }
        let mut words = 0;
        for part in run.split('_').filter(|p| !p.is_empty()) {
            let mut start = 0;
            let mut it = part.char_indices().peekable();
            let mut prev: Option<char> = None;
            while let Some((i, c)) = it.next() {
                let next = it.peek().map(|&(_, n)| n);
                let boundary = prev.is_some_and(|p| {
                    (p.is_lowercase() && c.is_uppercase())
                        || (p.is_alphabetic() && c.is_numeric())
                        || (p.is_numeric() && c.is_alphabetic())
                        || (p.is_uppercase()
                            && c.is_uppercase()
                            && next.is_some_and(char::is_lowercase))
                });
                if boundary {
                    lower(&part[start..i], &mut buf);
                    emit(&buf);
                    words += 1;
                    start = i;
                }
                prev = Some(c);
            }
            lower(&part[start..], &mut buf);
            emit(&buf);
            words += 1;
        }
        if words > 1 {
            lower(run, &mut buf);
            emit(&buf);
        }
    }
}

impl Lexicon {
    /// Indexes `text` as a new document and returns its slot.
    pub fn add(&mut self, text: &str) -> u32 {
        let mut tf = std::mem::take(&mut self.scratch);
        tf.clear();
        let mut len = 0u32;
        tokens(text, |t| {
            len += 1;
            let id = match self.terms.get(t) {
                Some(&id) => id,
                None => {
                    let id = self.postings.len() as u32;
                    self.terms.insert(t.into(), id);
                    self.postings.push(Vec::new());
                    id
                }
            };
            *tf.entry(id).or_insert(0) += 1;
        });
        let len = len.max(1);
        let slot = match self.free.pop() {
            Some(s) => {
                self.lens[s as usize] = len;
                s
            }
            None => {
                assert!(
                    self.lens.len() < MAX_SLOTS,
                    "too many symbols for one index"
                );
                self.lens.push(len);
                self.dead.push(false);
                (self.lens.len() - 1) as u32
            }
        };
        for (&term, &n) in &tf {
            self.postings[term as usize].push((slot << TF_BITS) | n.min(TF_MAX));
        }
        self.scratch = tf;
        self.live += 1;
        self.total_len += len as u64;
        slot
    }

    /// Gives back what growing the postings over-allocated (after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        for p in &mut self.postings {
            p.shrink_to_fit();
        }
        self.postings.shrink_to_fit();
        self.scratch = FxHashMap::default();
    }

    /// Removes the document in `slot` (from results at once, from the postings in batches).
    pub fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        if self.lens.get(s).is_none_or(|&l| l == 0) || self.dead[s] {
            return;
        }
        self.total_len -= self.lens[s] as u64;
        self.lens[s] = 0;
        self.dead[s] = true;
        self.live -= 1;
        self.removed += 1;
        if self.removed > 1024 && self.removed * 4 > self.live {
            self.compact();
        }
    }

    /// Drops removed documents from the postings and frees their slots.
    fn compact(&mut self) {
        let dead = &self.dead;
        for p in &mut self.postings {
            p.retain(|&x| !dead[(x >> TF_BITS) as usize]);
        }
        for (s, d) in self.dead.iter_mut().enumerate() {
            if *d {
                *d = false;
                self.free.push(s as u32);
            }
        }
        self.removed = 0;
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The slots matching any of `query`'s tokens, best BM25 score first: at most `limit` of
    /// those `keep` accepts (all when `None`).
    ///
    /// Rare terms are scored first. Without a filter, once the `limit`-th best score so far
    /// exceeds the most the remaining terms could give a document (MaxScore), those terms only
    /// add to documents already found: a long query's common words ("the", "of") then cost a
    /// pass over their postings, not a score for each. The result is the same.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        let mut query_terms: Vec<u32> = Vec::new();
        tokens(query, |t| {
            if let Some(&id) = self.terms.get(t)
                && !query_terms.contains(&id)
            {
                query_terms.push(id);
            }
        });
        if query_terms.is_empty() || self.live == 0 || limit == 0 {
            return Vec::new();
        }
        let n = self.live as f32;
        let avg = self.total_len as f32 / n;
        // norm(len) = K1 * (1 - B + B * len / avg) = base + per_len * len
        let (base, per_len) = (K1 * (1.0 - B), K1 * B / avg);
        query_terms.sort_by_key(|&t| (self.postings[t as usize].len(), t));
        let idfs: Vec<f32> = query_terms
            .iter()
            .map(|&t| {
                let df = self.postings[t as usize].len() as f32;
                (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
            })
            .collect();
        // The most a term adds to one document: tf → ∞.
        let mut rest: f32 = idfs.iter().map(|idf| idf * (K1 + 1.0)).sum();
        let mut open = true;
        let mut scores = vec![0f32; self.lens.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut best: Vec<f32> = Vec::new();
        for (&t, &idf) in query_terms.iter().zip(&idfs) {
            if open && keep.is_none() && touched.len() >= limit {
                best.clear();
                best.extend(touched.iter().map(|&s| scores[s as usize]));
                let (_, kth, _) = best.select_nth_unstable_by(limit - 1, |a, b| b.total_cmp(a));
                open = *kth <= rest;
            }
            rest -= idf * (K1 + 1.0);
            for &x in &self.postings[t as usize] {
                let slot = (x >> TF_BITS) as usize;
                let s = &mut scores[slot];
                if !open && *s == 0.0 {
                    continue;
                }
                let len = self.lens[slot];
                if len == 0 {
                    continue;
                }
                let tf = (x & TF_MAX) as f32;
                if *s == 0.0 {
                    touched.push(slot as u32);
                }
                *s += idf * tf * (K1 + 1.0) / (tf + base + per_len * len as f32);
            }
        }
        let mut hits: Vec<(u32, f32)> = touched
            .into_iter()
            .filter(|&s| keep.is_none_or(|k| k(s)))
            .map(|s| (s, scores[s as usize]))
            .collect();
        let best_first = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, best_first);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(best_first);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut v = Vec::new();
        tokens(text, |t| v.push(t.to_string()));
        v
    }

    #[test]
    fn identifiers_are_kept_whole_and_split() {
        assert_eq!(
            all("def parse_config(path: str) -> HTTPServer:"),
            [
                "def",
                "parse",
                "config",
                "parse_config",
                "path",
                "str",
                "http",
                "server",
                "httpserver"
            ]
        );
        assert_eq!(all("  __init__ x"), ["init", "x"]);
        assert_eq!(
            all("utf8Decode ÜberCase"),
            [
                "utf",
                "8",
                "decode",
                "utf8decode",
                "über",
                "case",
                "übercase"
            ]
        );
        // The same words as the identifier splitter the rest of the index uses.
        for id in [
            "getHTTPResponseCode",
            "parse_v2_config",
            "XMLHttpRequest",
            "i18n_Label",
        ] {
            let mut words = all(id);
            words.pop();
            assert_eq!(words, codeforge_syntax::split_identifier_words(id), "{id}");
        }
    }

    #[test]
    fn rare_words_and_short_documents_rank_first_and_removed_ones_vanish() {
        let mut l = Lexicon::default();
        let a = l.add("read_file read a file from disk");
        let b = l.add("write_file write a file to disk and then read it back for checking");
        let c = l.add("parse the config");
        let hits = l.search("read config", 10, None);
        let order: Vec<u32> = hits.iter().map(|h| h.0).collect();
        assert_eq!(order.len(), 3);
        assert!(order.contains(&a) && order.contains(&b) && order.contains(&c));
        assert_eq!(
            l.search("read", 10, None)[0].0,
            a,
            "the shorter, denser one"
        );
        assert_eq!(
            l.search("read", 10, Some(&|s| s != a))[0].0,
            b,
            "`keep` filters"
        );
        l.remove(a);
        assert!(l.search("from", 10, None).is_empty(), "only `a` said it");
        assert_eq!(l.len(), 2);
        let d = l.add("read_file again");
        assert_eq!(l.search("read_file", 10, None)[0].0, d);
        assert!(l.search("nothing matches", 10, None).is_empty());
    }

    #[test]
    fn compaction_keeps_the_live_documents() {
        let mut l = Lexicon::default();
        let mut keep = Vec::new();
        let mut was = std::collections::HashMap::new();
        for i in 0..4000 {
            let s = l.add(&format!("item_{i} common word"));
            if i % 3 == 0 {
                keep.push((i, s));
            } else {
                was.insert(s, i);
                l.remove(s);
            }
        }
        assert!(
            l.lens.len() < 3000,
            "compaction ran and its slots were reused"
        );
        assert_eq!(l.len(), keep.len());
        assert_eq!(l.search("common", 10_000, None).len(), keep.len());
        for (i, s) in keep.iter().step_by(97) {
            assert_eq!(l.search(&format!("item_{i}"), 1, None)[0].0, *s);
        }
        // Freed slots are reused, and a reused slot answers for its new text only.
        let n = l.add("fresh text");
        assert!(n < 4000);
        assert_eq!(
            l.search("fresh", 5, None),
            vec![(n, l.search("fresh", 1, None)[0].1)]
        );
        let old = format!("item_{}", was[&n]);
        assert!(l.search(&old, 10_000, None).iter().all(|h| h.0 != n));
    }

    #[test]
    fn pruning_common_words_changes_no_result() {
        // A corpus with a few very common words and many rare ones; long queries.
        let mut seed = 17u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let mut l = Lexicon::default();
        for _ in 0..3000 {
            let words: Vec<String> = (0..5 + next() % 30)
                .map(|_| match next() % 4 {
                    0 => ["the", "of", "a", "to"][next() % 4].to_string(),
                    1 => format!("w{}", next() % 50),
                    _ => format!("r{}", next() % 2000),
                })
                .collect();
            l.add(&words.join(" "));
        }
        for q in 0..50 {
            let query: Vec<String> = (0..3 + q % 20)
                .map(|i| match (q + i) % 3 {
                    0 => "the of a".to_string(),
                    1 => format!("w{}", next() % 50),
                    _ => format!("r{}", next() % 2000),
                })
                .collect();
            let query = query.join(" ");
            for limit in [1, 10, 40] {
                let pruned = l.search(&query, limit, None);
                let exact = l.search(&query, limit, Some(&|_| true));
                assert_eq!(pruned.len(), exact.len(), "{query}");
                for (p, e) in pruned.iter().zip(&exact) {
                    assert!((p.1 - e.1).abs() < 1e-4, "{query}: {pruned:?} vs {exact:?}");
                }
            }
        }
    }
}
