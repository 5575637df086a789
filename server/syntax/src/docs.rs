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
    // Borrowed lines and one output buffer: a String per line, joined and split again, cost
    // about a tenth of what extraction adds to the parse on the JDK's Javadoc.
    let mut lines: Vec<&str> = Vec::new();
    for part in parts {
        let part = part.trim_end();
        if let Some(block) = part
            .strip_prefix("/**")
            .or_else(|| part.strip_prefix("/*!"))
        {
            let block = block.strip_suffix("*/").unwrap_or(block);
            for line in block.lines() {
                let t = line.trim_start();
                lines.push(
                    t.strip_prefix('*')
                        .map_or(t, |r| r.strip_prefix(' ').unwrap_or(r)),
                );
            }
        } else {
            let t = part
                .strip_prefix("///")
                .or_else(|| part.strip_prefix("//!"))
                .unwrap_or(part);
            lines.push(t.strip_prefix(' ').unwrap_or(t));
        }
    }
    clean(&cleandoc_lines(&lines))
}

/// Like Python's `inspect.cleandoc`: strip the common indentation of lines after the first and
/// blank lines at both ends.
fn cleandoc(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    cleandoc_lines(&lines)
}

/// [`cleandoc`] of text already split into lines.
fn cleandoc_lines(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    // Blank lines are written only once a non-blank line follows (none at either end).
    let mut blanks = 0;
    for (i, l) in lines.iter().enumerate() {
        let line = if i == 0 {
            l.trim()
        } else {
            let cut = l.char_indices().nth(indent).map_or(l.len(), |(b, _)| b);
            let cut = if l[..cut].trim().is_empty() { cut } else { 0 };
            l[cut..].trim_end()
        };
        if line.is_empty() {
            blanks += 1;
            continue;
        }
        if !out.is_empty() {
            for _ in 0..=blanks {
                out.push('\n');
            }
        }
        blanks = 0;
        out.push_str(line);
    }
    out
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
