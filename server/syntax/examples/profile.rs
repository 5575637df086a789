//! Times the phases of extraction over a directory (parse only, symbols query, full extract),
//! single-threaded. A tuning aid for the queries under `grammars/`.
use std::time::Instant;
use tree_sitter::StreamingIterator;

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if codeforge_syntax::Language::from_path(&p).is_some() {
            out.push(p);
        }
    }
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: profile DIR"));
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    let texts: Vec<(codeforge_syntax::Language, String)> = paths
        .iter()
        .filter_map(|p| {
            Some((
                codeforge_syntax::Language::from_path(p)?,
                std::fs::read_to_string(p).ok()?,
            ))
        })
        .collect();
    let mb: f64 = texts.iter().map(|(_, t)| t.len()).sum::<usize>() as f64 / 1e6;
    let t = Instant::now();
    let mut trees = Vec::new();
    for (l, text) in &texts {
        let mut p = tree_sitter::Parser::new();
        p.set_language(&l.grammar()).unwrap();
        trees.push(p.parse(text, None).unwrap());
    }
    let parse = t.elapsed().as_secs_f64();
    for (name, pick) in [("symbols", 0), ("references", 1)] {
        let t = Instant::now();
        let mut n = 0;
        let queries: Vec<tree_sitter::Query> = codeforge_syntax::Language::ALL
            .iter()
            .map(|l| {
                let d = l.data();
                tree_sitter::Query::new(
                    &l.grammar(),
                    if pick == 0 {
                        d.symbols_query
                    } else {
                        d.references_query
                    },
                )
                .unwrap()
            })
            .collect();
        for ((l, text), tree) in texts.iter().zip(&trees) {
            let q = &queries[*l as usize];
            let mut c = tree_sitter::QueryCursor::new();
            let mut m = c.matches(q, tree.root_node(), text.as_bytes());
            while m.next().is_some() {
                n += 1;
            }
        }
        println!(
            "{name} query: {:.2}s ({n} matches, incl. query compile per file)",
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let mut n = 0;
    for (l, text) in &texts {
        n += codeforge_syntax::extract(*l, "x.py", text).symbols.len();
    }
    let full = t.elapsed().as_secs_f64();
    println!(
        "{mb:.1} MB: parse {parse:.2}s ({:.1} MB/s); full extract {full:.2}s ({:.1} MB/s, {n} symbols)",
        mb / parse,
        mb / full
    );
}
