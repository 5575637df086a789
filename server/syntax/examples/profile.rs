//! Extraction throughput on a tree, files read into memory first: `parse` (tree-sitter alone) or
//! `extract` (the whole pass), on N threads. Prints MB/s. For profiling the extraction pass
//! without the index around it (`.ci/bench` measures the real pipeline against ctags).
//!   cargo run --profile dist --example profile -- DIR [parse|extract] [THREADS]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use codeforge_syntax::{Language, extract};

fn collect(dir: &Path, out: &mut Vec<(Language, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            collect(&p, out);
        } else if ft.is_file()
            && let Some(lang) = Language::from_path(&p)
        {
            out.push((lang, p));
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().expect("DIR"));
    let mode = args.next().unwrap_or_else(|| "extract".into());
    let threads: usize = args.next().map_or(1, |t| t.parse().expect("THREADS"));
    // As the shipped binary does, unless CF_TS_LIBC_MALLOC is set (to compare).
    if std::env::var_os("CF_TS_LIBC_MALLOC").is_none() {
        // SAFETY: first thing in main, no thread or tree-sitter object exists yet.
        unsafe { codeforge_syntax::install_tree_allocator() };
    }
    let mut files = Vec::new();
    collect(&root, &mut files);
    let texts: Vec<(Language, String, String)> = files
        .into_iter()
        .filter_map(|(l, p)| {
            let t = std::fs::read_to_string(&p).ok()?;
            (t.len() <= 1 << 20).then(|| (l, p.to_string_lossy().into_owned(), t))
        })
        .collect();
    let bytes: usize = texts.iter().map(|t| t.2.len()).sum();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let symbols: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    let mut reused = tree_sitter::Parser::new();
                    while let Some((lang, path, text)) =
                        texts.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        n += match mode.as_str() {
                            "parse" => {
                                let mut p = tree_sitter::Parser::new();
                                p.set_language(&lang.grammar()).unwrap();
                                p.parse(text, None)
                                    .map_or(0, |t| t.root_node().child_count() as usize)
                            }
                            "parse-reuse" => {
                                reused.set_language(&lang.grammar()).unwrap();
                                reused
                                    .parse(text, None)
                                    .map_or(0, |t| t.root_node().child_count() as usize)
                            }
                            _ => extract(*lang, path, text).symbols.len(),
                        };
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{mode} threads={threads} files={} MB={:.1} symbols={symbols} s={secs:.2} MB/s={:.1}",
        texts.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
}
