//! Showing bytes to people: what was sent and received, and what a program printed.
//!
//! Student programs print UTF-8, GBK (common in this course), or binary noise. None of
//! it may crash the grader or garble a report: valid UTF-8 is shown as text, GBK is
//! decoded when the bytes are valid GBK and not valid UTF-8, anything else is escaped.

/// Longest quoted excerpt shown inline in a report.
const MAX_QUOTE: usize = 160;

/// A quoted, escaped, length-capped rendering of bytes, e.g. `"hello\n"`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut shown = 0;
    for piece in pieces(bytes) {
        let chars: Vec<char> = match piece {
            Piece::Text(t) => t.chars().collect(),
            Piece::Byte(b) => {
                out.push_str(&format!("\\x{b:02x}"));
                shown += 1;
                continue;
            }
        };
        for ch in chars {
            if shown >= MAX_QUOTE {
                out.push_str(&format!("\"… ({} bytes in all)", bytes.len()));
                return out;
            }
            match ch {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
            shown += 1;
        }
    }
    out.push('"');
    out
}

enum Piece {
    Text(String),
    Byte(u8),
}

/// Bytes as text where they are text (UTF-8, else plausible GBK), single bytes where not.
fn pieces(bytes: &[u8]) -> Vec<Piece> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return vec![Piece::Text(s.to_string())];
    }
    let (gbk, had_errors) = encoding_rs::GBK.decode_without_bom_handling(bytes);
    // GBK accepts many byte pairs; trust it only when the text looks like text: no
    // private-use characters (what stray high bytes map to) and no control characters.
    let plausible = gbk
        .chars()
        .all(|c| !('\u{E000}'..='\u{F8FF}').contains(&c) && (!c.is_control() || c.is_whitespace()));
    if !had_errors && plausible {
        return vec![Piece::Text(gbk.into_owned())];
    }
    let mut out = Vec::new();
    for chunk in bytes.utf8_chunks() {
        out.push(Piece::Text(chunk.valid().to_string()));
        out.extend(chunk.invalid().iter().map(|b| Piece::Byte(*b)));
    }
    out
}

/// Bytes as text: UTF-8 if valid, else GBK if valid, else UTF-8 with each invalid byte
/// shown as `\xNN` (so binary noise stays visible and harmless).
pub fn decode(bytes: &[u8]) -> String {
    pieces(bytes)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t,
            Piece::Byte(b) => format!("\\x{b:02x}"),
        })
        .collect()
}
/// The last `n` non-empty lines of some output, decoded safely (for "last stderr lines").
pub fn last_lines(bytes: &[u8], n: usize) -> Vec<String> {
    let text = decode(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| {
            let l: String = l
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            if l.chars().count() > 200 {
                let cut: String = l.chars().take(200).collect();
                format!("{cut}…")
            } else {
                l
            }
        })
        .collect()
}

/// Keeps at least the last `max` bytes of `buf`, dropping older ones in batches: the
/// buffer may grow by half of `max` before the front is cut, so a flood of small chunks
/// costs two bytes moved per byte received instead of a whole buffer per chunk (which,
/// for a program that prints a few bytes in a busy loop, was a quarter of the grader's
/// CPU time).
pub(crate) fn keep_last(buf: &mut Vec<u8>, max: usize) {
    if buf.len() > max + max / 2 {
        let cut = buf.len() - max;
        buf.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_text_gbk_and_noise() {
        assert_eq!(quote(b"hi\n"), "\"hi\\n\"");
        let gbk = encoding_rs::GBK.encode("你好").0.into_owned();
        assert_eq!(quote(&gbk), "\"你好\"");
        assert_eq!(quote(&[0xff, 0xfe, b'a', 0x00]), "\"\\xff\\xfea\\x00\"");
        let long = vec![b'x'; 500];
        assert!(quote(&long).ends_with("(500 bytes in all)"));
    }

    #[test]
    fn last_lines_of_a_traceback() {
        let err = b"Traceback (most recent call last):\n  File \"s.py\", line 3\nNameError: name 'AF_INET' is not defined\n\n";
        assert_eq!(
            last_lines(err, 2),
            vec![
                "  File \"s.py\", line 3",
                "NameError: name 'AF_INET' is not defined"
            ]
        );
    }
}
