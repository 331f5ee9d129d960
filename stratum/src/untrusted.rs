//! Text that came from a peer (a pool's `client.show_message`, error strings, reject reasons,
//! job ids, malformed lines), made safe to put in a log line or hand to code that logs it.
//!
//! A log line is trusted by whoever reads it: a pool that could put a newline, a carriage
//! return, a terminal escape sequence or a bidirectional override into our logs could forge
//! whole lines ("share accepted", "wallet changed to ...") or hide text. [`escape`] writes
//! every such character as a visible escape and bounds the length, so one line from a pool
//! stays one line in the log and reads as what it is.

use std::fmt::Write;

/// The most characters of peer text kept; the rest is summarised by its size.
pub const MAX_CHARS: usize = 1024;

/// `s` with control characters, line and paragraph separators and bidirectional formatting
/// characters written as escapes (`\n`, `\r`, `\t`, `\u{1b}`, ...) and backslashes doubled
/// (so an escape in the output always means the character was there), cut to [`MAX_CHARS`]
/// characters.
pub fn escape(s: &str) -> String {
    escape_max(s, MAX_CHARS)
}

/// [`escape`] with its own length bound, in characters of `s`.
pub fn escape_max(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars) + 8);
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            let _ = write!(out, "… ({} bytes)", s.len());
            return out;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that end, overwrite or reorder what a reader sees of a line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Line and paragraph separators: some viewers break lines on them.
            '\u{2028}' | '\u{2029}'
            // Bidirectional marks, embeddings, overrides and isolates.
            | '\u{061c}' | '\u{200e}' | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape("maintenance at noon"), "maintenance at noon");
        assert_eq!(escape("Grüße, 矿池 ✓"), "Grüße, 矿池 ✓");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn line_breaks_cannot_start_a_new_log_line() {
        let forged = "ok\n2024-01-01T00:00:00Z  INFO share accepted\r\n";
        let e = escape(forged);
        assert!(!e.contains('\n') && !e.contains('\r'), "{e}");
        assert_eq!(e, "ok\\n2024-01-01T00:00:00Z  INFO share accepted\\r\\n");
    }

    #[test]
    fn terminal_escapes_and_other_controls_are_visible() {
        assert_eq!(escape("\u{1b}[2K\u{1b}[1Agone"), "\\u{1b}[2K\\u{1b}[1Agone");
        assert_eq!(
            escape("a\tb\0c\u{7f}d\u{85}e"),
            "a\\tb\\u{0}c\\u{7f}d\\u{85}e"
        );
    }

    #[test]
    fn separators_and_bidi_overrides_are_visible() {
        assert_eq!(escape("a\u{2028}b\u{2029}c"), "a\\u{2028}b\\u{2029}c");
        assert_eq!(
            escape("\u{202e}txt.exe\u{202c}\u{2066}x\u{2069}"),
            "\\u{202e}txt.exe\\u{202c}\\u{2066}x\\u{2069}"
        );
    }

    #[test]
    fn escapes_are_unambiguous() {
        // A literal backslash-n from the pool is not mistaken for an escaped newline.
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_ne!(escape("a\\nb"), escape("a\nb"));
    }

    #[test]
    fn length_is_bounded_on_character_boundaries() {
        let long = "é".repeat(5000);
        let e = escape(&long);
        assert!(e.starts_with(&"é".repeat(MAX_CHARS)));
        assert!(e.ends_with("… (10000 bytes)"), "{}", &e[e.len() - 40..]);
        assert_eq!(escape_max("abcdef", 3), "abc… (6 bytes)");
        assert_eq!(escape_max("abc", 3), "abc");
    }
}
