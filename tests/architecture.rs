//! The invariants `ARCHITECTURE.md` states, checked on the source tree: every module opens with
//! its `//!` line; no import circle between the modules of a crate; only `lsp` knows LSP types;
//! `syntax` and `prompt` do no I/O; `verify` is the only crate that spawns processes; LanceDB is
//! reached only from `index`, HTTP only from `model` and `index`. (The number of parses per
//! request is counted by `server/ide/tests/generate.rs`; where a `match` over a language may
//! appear, by `server/syntax/tests/language_arms.rs`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn server_dir() -> PathBuf {
    codeforge_testkit::manifest_dir().join("..")
}

fn crates() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(server_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            p.join("Cargo.toml")
                .exists()
                .then(|| p.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 9, "crates under server/: {out:?}");
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The crate's `src/` files with their text up to the first `#[cfg(test)]` (unit tests sit at
/// the end of a file and may read fixtures).
fn sources(krate: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&server_dir().join(krate).join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            (p, code)
        })
        .collect()
}

/// Lines that are code (comments dropped), so prose may name what code must not use.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

fn find_uses(krates: &[String], needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for k in krates {
        for (path, text) in sources(k) {
            for (n, line) in code_lines(&text) {
                if let Some(needle) = needles.iter().find(|x| line.contains(**x)) {
                    hits.push(format!("{}:{n}: `{needle}`", path.display()));
                }
            }
        }
    }
    hits
}

fn except(all: &[String], allowed: &[&str]) -> Vec<String> {
    all.iter()
        .filter(|c| !allowed.contains(&c.as_str()))
        .cloned()
        .collect()
}

#[test]
fn every_module_opens_with_what_it_owns() {
    let mut missing = Vec::new();
    for k in crates() {
        let mut files = Vec::new();
        rust_files(&server_dir().join(&k).join("src"), &mut files);
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(p.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` line: {missing:#?}"
    );
}

/// The top-level module a source file belongs to (`handlers/x.rs` → `handlers`); `None` for the
/// crate root, which re-exports everything.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// `crate::a::…` and `use crate::{a, b::…}` references in a module's code.
fn references(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if modules.contains(name) {
                    out.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                out.insert(name);
            }
        }
    }
    out
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = server_dir().join(krate).join("src");
    let files = sources(krate);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(&src, p))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (p, text) in &files {
        let Some(m) = module_of(&src, p) else {
            continue;
        };
        let code: String = code_lines(text).map(|(_, l)| format!("{l}\n")).collect();
        let refs = references(&code, &modules);
        graph
            .entry(m.clone())
            .or_default()
            .extend(refs.into_iter().filter(|r| *r != m));
    }
    graph
}

#[test]
fn no_module_imports_back_up_within_a_crate() {
    let mut cycles = Vec::new();
    for k in crates() {
        if let Some(c) = find_cycle(&module_graph(&k)) {
            cycles.push(format!("{k}: {}", c.join(" → ")));
        }
    }
    assert!(cycles.is_empty(), "import circles: {cycles:#?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let modules: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mut g = BTreeMap::new();
    g.insert(
        "a".to_string(),
        references("use crate::{b::X, c};", &modules),
    );
    g.insert("b".to_string(), references("crate::c::f()", &modules));
    g.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
    g.insert("c".to_string(), references("use crate::a::Y;", &modules));
    assert!(find_cycle(&g).is_some());
}

#[test]
fn only_lsp_knows_lsp_types() {
    let all = crates();
    let mut bad = find_uses(
        &except(&all, &["lsp"]),
        &["tower_lsp_server", "ls_types", "lsp_types"],
    );
    for k in except(&all, &["lsp"]) {
        let manifest = std::fs::read_to_string(server_dir().join(&k).join("Cargo.toml")).unwrap();
        if manifest.contains("tower-lsp") || manifest.contains("lsp-types") {
            bad.push(format!("server/{k}/Cargo.toml depends on an LSP crate"));
        }
    }
    assert!(bad.is_empty(), "LSP types outside `lsp`: {bad:#?}");
}

#[test]
fn syntax_and_prompt_do_no_io() {
    let bad = find_uses(
        &["syntax".to_string(), "prompt".to_string()],
        &[
            "std::fs",
            "tokio::",
            "std::net",
            "std::process",
            "reqwest",
            "fs::File",
            "std::env::var",
        ],
    );
    assert!(bad.is_empty(), "I/O in a pure crate: {bad:#?}");
}

#[test]
fn only_verify_spawns_processes() {
    let bad = find_uses(
        &except(&crates(), &["verify"]),
        &[
            "Command::new",
            "process::Command",
            "tokio::process",
            "libc::fork",
        ],
    );
    assert!(
        bad.is_empty(),
        "processes spawned outside `verify`: {bad:#?}"
    );
}

#[test]
fn edges_are_reached_through_one_crate_each() {
    let all = crates();
    let lance = find_uses(&except(&all, &["index"]), &["lancedb::", "arrow_array::"]);
    assert!(lance.is_empty(), "LanceDB outside `index`: {lance:#?}");
    let http = find_uses(&except(&all, &["model", "index"]), &["reqwest::"]);
    assert!(http.is_empty(), "HTTP outside `model`/`index`: {http:#?}");
}
