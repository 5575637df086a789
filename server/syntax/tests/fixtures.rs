//! Data-driven extraction tests: every source file under `tests/fixtures/symbols/<lang>/` has a
//! `<file>.expected` snapshot next to it. `UPDATE_EXPECT=1 cargo test -p codeforge-syntax`
//! rewrites the snapshots (review the diff before committing).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use codeforge_syntax::{Language, extract};

fn fixtures_root() -> PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../tests/fixtures/symbols")
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if Language::from_path(&p).is_some() {
            out.push(p);
        }
    }
}

fn render(lang: Language, rel: &str, text: &str) -> String {
    let r = extract(lang, rel, text);
    let mut s = String::new();
    writeln!(s, "# has_errors: {}", r.has_errors).unwrap();
    for sym in &r.symbols {
        let depth = {
            let mut d = 0;
            let mut p = sym.parent;
            while let Some(i) = p {
                d += 1;
                p = r.symbols[i].parent;
            }
            d
        };
        let pad = "  ".repeat(depth);
        writeln!(
            s,
            "{pad}{} {} L{}-{}{}",
            sym.kind,
            sym.qualified_name,
            sym.start_line + 1,
            sym.end_line + 1,
            if sym.is_test { " [test]" } else { "" }
        )
        .unwrap();
        writeln!(s, "{pad}  scope: {}", sym.scope).unwrap();
        writeln!(s, "{pad}  sig: {}", sym.signature).unwrap();
        if let Some(d) = &sym.docstring {
            writeln!(s, "{pad}  doc: {}", d.replace('\n', "\\n")).unwrap();
        }
        if !sym.references.is_empty() {
            writeln!(s, "{pad}  refs: {}", sym.references.join(", ")).unwrap();
        }
        // Ranges must cover the name and lie inside the text.
        assert!(sym.start_byte <= sym.name_start_byte || sym.name_start_byte == sym.name_end_byte);
        assert!(sym.end_byte <= text.len());
        assert_eq!(
            &text[sym.name_start_byte..sym.name_end_byte],
            if sym.name_start_byte == sym.name_end_byte {
                ""
            } else {
                sym.name.as_str()
            }
        );
    }
    s
}

#[test]
fn extraction_matches_snapshots() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    for lang in Language::ALL {
        let root = fixtures_root().join(lang.name());
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(!files.is_empty(), "no fixtures for {lang}");
        for file in files {
            count += 1;
            let rel = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&file).unwrap();
            let got = render(Language::from_path(&file).unwrap(), &rel, &text);
            let expected_path = PathBuf::from(format!("{}.expected", file.display()));
            if update {
                std::fs::write(&expected_path, &got).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if got != expected {
                failures.push(format!(
                    "--- {}\n+++ actual\n{}",
                    expected_path.display(),
                    diff(&expected, &got)
                ));
            }
        }
    }
    assert!(count >= 8, "expected the fixture set, found {count} files");
    assert!(
        failures.is_empty(),
        "snapshot mismatches (UPDATE_EXPECT=1 to accept):\n{}",
        failures.join("\n")
    );
}

fn diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for i in 0..al.len().max(bl.len()) {
        match (al.get(i), bl.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    writeln!(out, "-{i:>4} {x}").unwrap();
                }
                if let Some(y) = y {
                    writeln!(out, "+{i:>4} {y}").unwrap();
                }
            }
        }
    }
    out
}

/// Spot checks that state the rules directly (the snapshots hold the details).
#[test]
fn qualified_names_and_test_flags() {
    let root = fixtures_root();
    let py = std::fs::read_to_string(root.join("python/src/shop/cart.py")).unwrap();
    let r = extract(Language::Python, "src/shop/cart.py", &py);
    let find = |q: &str| {
        r.symbols
            .iter()
            .find(|s| s.qualified_name == q)
            .unwrap_or_else(|| panic!("{q} missing"))
    };
    assert_eq!(find("shop.cart.Cart.add").kind.name(), "method");
    assert_eq!(find("shop.cart.Cart.Discount.apply").kind.name(), "method");
    assert_eq!(find("shop.cart.fetch_prices").kind.name(), "function");
    assert_eq!(find("shop.cart.Cart.subtotal.line").kind.name(), "function");
    assert!(
        find("shop.cart.load_settings")
            .docstring
            .as_deref()
            .unwrap()
            .starts_with("Parse the TOML config file")
    );
    // Decorators belong to the definition's range.
    assert_eq!(find("shop.cart.Cart.empty").start_line + 1, 58);
    assert!(
        find("shop.cart.Cart")
            .references
            .iter()
            .all(|r| r != "staticmethod"),
        "decorators belong to their method"
    );
    assert!(r.symbols.iter().all(|s| !s.is_test), "not a test file");

    let t = std::fs::read_to_string(root.join("python/tests/test_cart.py")).unwrap();
    let r = extract(Language::Python, "tests/test_cart.py", &t);
    let tests: Vec<&str> = r
        .symbols
        .iter()
        .filter(|s| s.is_test)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        tests,
        [
            "test_add_merges_quantities",
            "TestTotals",
            "test_empty_total_is_zero",
            "test_discount"
        ]
    );
    let add = r
        .symbols
        .iter()
        .find(|s| s.name == "test_add_merges_quantities")
        .unwrap();
    assert!(
        add.references.iter().any(|x| x == "add"),
        "{:?}",
        add.references
    );
    assert!(
        add.references.iter().any(|x| x == "make_cart"),
        "{:?}",
        add.references
    );

    let rs = std::fs::read_to_string(root.join("rust/src/lib.rs")).unwrap();
    let r = extract(Language::Rust, "src/lib.rs", &rs);
    let q: Vec<&str> = r
        .symbols
        .iter()
        .map(|s| s.qualified_name.as_str())
        .collect();
    assert!(q.contains(&"crate::Endpoint::parse"), "{q:?}");
    assert!(q.contains(&"crate::tests::parses_host_and_port"), "{q:?}");
    let t: Vec<&str> = r
        .symbols
        .iter()
        .filter(|s| s.is_test)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(t, ["tests", "parses_host_and_port", "connects"]);

    let j = std::fs::read_to_string(root.join("java/src/main/java/com/acme/Util.java")).unwrap();
    let r = extract(Language::Java, "src/main/java/com/acme/Util.java", &j);
    let q: Vec<&str> = r
        .symbols
        .iter()
        .map(|s| s.qualified_name.as_str())
        .collect();
    assert!(q.contains(&"com.acme.Util#parse"), "{q:?}");
    assert!(q.contains(&"com.acme.Util.Builder#build"), "{q:?}");
    assert!(q.contains(&"com.acme.Util#Util"), "{q:?}");
}

#[test]
fn broken_files_keep_what_parses() {
    let root = fixtures_root();
    for (lang, rel, must) in [
        (Language::Python, "broken.py", &["complete", "Survivor"][..]),
        (Language::Rust, "tests/broken.rs", &["ok_one", "ok_two"][..]),
        (Language::Java, "Broken.java", &["Broken", "ok"][..]),
    ] {
        let text = std::fs::read_to_string(root.join(lang.name()).join(rel)).unwrap();
        let r = extract(lang, rel, &text);
        assert!(r.has_errors, "{rel} should report syntax errors");
        for name in must {
            assert!(
                r.symbols.iter().any(|s| s.name == *name),
                "{rel}: {name} lost: {:?}",
                r.symbols.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
        }
    }
}
