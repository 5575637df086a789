//! Prints the tree-sitter tree of a file (a debugging aid for writing queries under `grammars/`).
fn main() {
    let path = std::env::args().nth(1).expect("usage: sexp FILE");
    let text = std::fs::read_to_string(&path).expect("readable UTF-8 file");
    let lang =
        codeforge_syntax::Language::from_path(std::path::Path::new(&path)).expect("known language");
    let mut p = tree_sitter::Parser::new();
    p.set_language(&lang.grammar()).expect("grammar");
    let tree = p.parse(&text, None).expect("parse");
    println!("{}", tree.root_node().to_sexp());
}
