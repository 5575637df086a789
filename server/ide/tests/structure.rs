//! Structural context on a small repository parsed for real: what the target's file imports,
//! what its siblings and its callers in the package call, and the members of the types in its
//! signature rank above symbols that only share words with the docstring; the target, what it
//! defines inside, tests and undefined names never appear.

use codeforge_ide::structure::{Around, Weights, last_segment, rank_structural};
use codeforge_ide::{Related, retrieval_query};
use codeforge_index::store::SymbolRow;
use codeforge_index::{NameTable, symbol_row};
use codeforge_syntax::{Language, extract};

const FILES: &[(&str, &str)] = &[
    (
        "shop/money.py",
        "def to_cents(amount):\n    \"\"\"Amount in cents.\"\"\"\n    return round(amount * 100)\n\n\
         def format_price(cents):\n    \"\"\"Price text of an amount in cents.\"\"\"\n    return f\"{cents / 100:.2f}\"\n",
    ),
    (
        "shop/cart.py",
        "from shop.money import to_cents\n\n\
         class Cart:\n    \"\"\"Items and their prices.\"\"\"\n\n\
         \x20   def add(self, item):\n        self.items.append(item)\n\n\
         \x20   def total(self):\n        \"\"\"The sum of the prices of the items, in cents.\"\"\"\n\
         \x20       def inner(x):\n            return x\n        return sum(inner(to_cents(i.price)) for i in self.items)\n\n\
         \x20   def discounted(self, rate):\n        return apply_rate(self.total(), rate)\n\n\
         def apply_rate(cents, rate):\n    return int(cents * (1 - rate))\n",
    ),
    (
        "shop/report.py",
        "from shop.cart import Cart\n\n\
         def receipt(cart: Cart):\n    \"\"\"One line per cart.\"\"\"\n    return format_price(cart.total())\n",
    ),
    (
        "shop/tests/test_cart.py",
        "def sum_of_prices_helper():\n    \"\"\"The sum of the prices of the items.\"\"\"\n    return 0\n",
    ),
    (
        "other/prices.py",
        "def sum_prices(items):\n    \"\"\"The sum of the prices of the items.\"\"\"\n    return 0\n",
    ),
];

fn rows() -> Vec<SymbolRow> {
    let mut out = Vec::new();
    for (path, src) in FILES {
        let f = extract(Language::Python, path, src);
        for (i, s) in f.symbols.iter().enumerate() {
            out.push(symbol_row(s, i, path, "python", "0123456789abcdef"));
        }
    }
    out
}

fn rank(path: &str, target: &str, hybrid: &[Related]) -> Vec<String> {
    let rows = rows();
    let names = NameTable::from_rows(&rows);
    let src = FILES.iter().find(|(p, _)| *p == path).unwrap().1;
    let file = extract(Language::Python, path, src);
    let t = file
        .symbols
        .iter()
        .find(|s| s.qualified_name.ends_with(target))
        .unwrap();
    assert!(!retrieval_query(t).is_empty());
    rank_structural(
        &Around {
            lang: Language::Python,
            rel_path: path,
            source: src,
            file: &file,
            target: t,
        },
        &names,
        hybrid,
        10,
        &Weights::default(),
    )
    .iter()
    .map(|r| last_segment(&r.qualified_name).to_string())
    .collect()
}

#[test]
fn structure_finds_what_the_body_calls() {
    // A word-alike hit, as BM25 would give for the docstring.
    let hybrid = vec![Related {
        qualified_name: "other.prices.sum_prices".into(),
        kind: "function".into(),
        language: Language::Python,
        path: "other/prices.py".into(),
        line: 1,
        signature: "def sum_prices(items):".into(),
        doc: None,
        score: 0.03,
        is_test: false,
    }];
    let got = rank("shop/cart.py", "Cart.total", &hybrid);
    // Imported by the file, and called by a caller in the package (`receipt`, `discounted`).
    let pos = |n: &str| got.iter().position(|g| g == n);
    assert!(pos("to_cents").is_some(), "{got:?}");
    assert!(
        pos("format_price").is_some(),
        "the caller `receipt` calls it: {got:?}"
    );
    assert!(
        pos("apply_rate").is_some(),
        "the sibling `discounted` calls it: {got:?}"
    );
    assert!(
        pos("add").is_some(),
        "a member of the target's own class: {got:?}"
    );
    assert!(
        pos("to_cents") < pos("sum_prices"),
        "structure outranks a word-alike hit: {got:?}"
    );
    for never in ["total", "inner", "sum_of_prices_helper", "round", "sum"] {
        assert!(pos(never).is_none(), "{never} must not appear: {got:?}");
    }
}

#[test]
fn signature_types_bring_their_members() {
    let got = rank("shop/report.py", "receipt", &[]);
    assert!(got.iter().any(|g| g == "Cart"), "{got:?}");
    assert!(
        got.iter().any(|g| g == "total"),
        "a member of Cart: {got:?}"
    );
    assert!(!got.iter().any(|g| g == "receipt"), "{got:?}");
}
