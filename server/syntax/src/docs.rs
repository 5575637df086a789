//! Turns raw documentation text (Python string literals, `///` runs, Javadoc blocks) into clean,
//! dedented docstrings.

const MAX_DOC_CHARS: usize = 4000;

/// A Python string literal (with prefixes and quotes) to its cleaned content.
pub fn python_string(literal: &str) -> String {
    let s = literal.trim_start_matches(|c: char| "rRbBuUfF".contains(c));
    let body = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find_map(|q| {
            s.strip_prefix(q)
                .map(|rest| rest.strip_suffix(q).unwrap_or(rest))
        })
        .unwrap_or(s);
    clean(&cleandoc(body))
}

/// Rust `///`/`//!` lines or `/** */` blocks, or Javadoc, to cleaned text.
pub fn comments(parts: &[&str]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for part in parts {
        let part = part.trim_end();
        if let Some(block) = part
            .strip_prefix("/**")
            .or_else(|| part.strip_prefix("/*!"))
        {
            let block = block.strip_suffix("*/").unwrap_or(block);
            for line in block.lines() {
                let t = line.trim_start();
                let t = t
                    .strip_prefix('*')
                    .map_or(t, |r| r.strip_prefix(' ').unwrap_or(r));
                lines.push(t.to_string());
            }
        } else {
            let t = part
                .strip_prefix("///")
                .or_else(|| part.strip_prefix("//!"))
                .unwrap_or(part);
            lines.push(t.strip_prefix(' ').unwrap_or(t).to_string());
        }
    }
    clean(&cleandoc(&lines.join("\n")))
}

/// Like Python's `inspect.cleandoc`: strip the common indentation of lines after the first and
/// blank lines at both ends.
fn cleandoc(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if i == 0 {
            out.push(l.trim().to_string());
        } else {
            let cut = l.char_indices().nth(indent).map_or(l.len(), |(b, _)| b);
            let cut = if l[..cut].trim().is_empty() { cut } else { 0 };
            out.push(l[cut..].trim_end().to_string());
        }
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

fn clean(text: &str) -> String {
    truncate_chars(text, MAX_DOC_CHARS)
}

/// Cuts `text` to at most `max` characters, never inside a UTF-8 character.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((b, _)) => text[..b].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_docstrings() {
        assert_eq!(python_string("\"\"\"Load it.\"\"\""), "Load it.");
        assert_eq!(
            python_string("r'''First.\n\n    More here.\n      indented\n    '''"),
            "First.\n\nMore here.\n  indented"
        );
        assert_eq!(python_string("'x'"), "x");
    }

    #[test]
    fn rust_and_java_docs() {
        assert_eq!(
            comments(&["/// Adds.", "///", "/// More."]),
            "Adds.\n\nMore."
        );
        assert_eq!(comments(&["//! Crate docs"]), "Crate docs");
        assert_eq!(
            comments(&["/**\n * Parses a value.\n *\n * @param s text\n */"]),
            "Parses a value.\n\n@param s text"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("日本語", 5), "日本語");
    }
}
