//! Positions: LSP's (line, UTF-16 column) against byte offsets in UTF-8 text, and applying
//! incremental edits. Out-of-range positions clamp instead of failing (clients send them). Pure;
//! must not know about LSP types, the session or handlers.

/// Line start offsets of a text.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    /// Byte offset of (line, UTF-16 column), clamped to the line and the text.
    pub fn offset(&self, text: &str, line: u32, character: u32) -> usize {
        let line = line as usize;
        if line >= self.starts.len() {
            return text.len();
        }
        let start = self.starts[line];
        let end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |&e| e.saturating_sub(1).max(start));
        // Exclude a `\r` before `\n` from the columns.
        let line_text = &text[start..end];
        let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
        let mut units = 0u32;
        for (i, c) in line_text.char_indices() {
            if units >= character {
                return start + i;
            }
            units += c.len_utf16() as u32;
            if units > character {
                // Inside a surrogate pair: snap to the character's start.
                return start + i;
            }
        }
        start + line_text.len()
    }

    /// (line, UTF-16 column) of a byte offset (snapped down to a char boundary).
    pub fn position(&self, text: &str, offset: usize) -> (u32, u32) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        let start = self.starts[line];
        let col: usize = text[start..offset].chars().map(char::len_utf16).sum();
        (line as u32, col as u32)
    }
}

/// Applies one change (a range in LSP coordinates, or the whole text) to `text`.
pub fn apply_change(text: &mut String, range: Option<((u32, u32), (u32, u32))>, new_text: &str) {
    match range {
        None => {
            text.clear();
            text.push_str(new_text);
        }
        Some(((sl, sc), (el, ec))) => {
            let index = LineIndex::new(text);
            let start = index.offset(text, sl, sc);
            let end = index.offset(text, el, ec).max(start);
            text.replace_range(start..end, new_text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_with_multibyte_text() {
        // 'é' is 2 bytes/1 unit, '😀' is 4 bytes/2 units, '日' is 3 bytes/1 unit.
        let text = "aé😀日b\nxyz\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.offset(text, 0, 0), 0);
        assert_eq!(idx.offset(text, 0, 1), 1);
        assert_eq!(idx.offset(text, 0, 2), 3);
        assert_eq!(idx.offset(text, 0, 4), 7);
        assert_eq!(idx.offset(text, 0, 5), 10);
        assert_eq!(idx.offset(text, 0, 99), 11, "clamped to the line end");
        assert_eq!(idx.offset(text, 1, 1), 13);
        assert_eq!(idx.offset(text, 9, 0), text.len());
        assert_eq!(idx.position(text, 7), (0, 4));
        assert_eq!(idx.position(text, 10), (0, 5));
        assert_eq!(idx.position(text, 13), (1, 1));
        // Inside the emoji's bytes: snaps to its start.
        assert_eq!(idx.position(text, 5), (0, 2));
    }

    #[test]
    fn incremental_edits() {
        let mut t = String::from("héllo 😀 world\nline2\n");
        // Replace "world" (UTF-16 cols 9..14) with "wörld".
        apply_change(&mut t, Some(((0, 9), (0, 14))), "wörld");
        assert_eq!(t, "héllo 😀 wörld\nline2\n");
        // Insert across lines.
        apply_change(&mut t, Some(((0, 14), (1, 0))), "!\n> ");
        assert_eq!(t, "héllo 😀 wörld!\n> line2\n");
        apply_change(&mut t, None, "new");
        assert_eq!(t, "new");
    }

    #[test]
    fn crlf_lines() {
        let text = "ab\r\ncd";
        let idx = LineIndex::new(text);
        assert_eq!(idx.offset(text, 0, 5), 2);
        assert_eq!(idx.offset(text, 1, 1), 5);
    }
}
