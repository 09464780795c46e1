//! Human-readable numbers, sizes, durations and colours for terminal output, and making
//! text from files and models safe to print on a terminal.

use std::io::{IsTerminal, Write};

/// Writes `text` and a newline to stdout, returning the error (a closed pipe included)
/// instead of panicking as `println!` would.
pub fn print_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `text` with every control character but line breaks and tabs shown as `\u{fffd}`: file
/// names, file contents and model answers can hold escape sequences that would move the
/// cursor, retitle the window or recolour the terminal. Quarry's own colours are added after.
pub fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
            .collect(),
    )
}

/// `1234567` → `1,234,567`.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `1 file`, `3 files`.
pub fn plural(n: usize, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", count(n))
}

/// Bytes in binary units: `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Milliseconds as `850 ms` or `12.3 s`.
pub fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Parses a size like `1048576`, `512K`, `1M`, `2MiB`, `1G`.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{input}` is not a size; use bytes or a suffix like 512K, 1M"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`; use K, M or G")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{input}` is too large"))
}

/// ANSI styling, active only when the stream is a terminal and `NO_COLOR` is unset.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Styling for stdout.
    pub fn stdout() -> Self {
        Style {
            enabled: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// Styling for stderr.
    pub fn stderr() -> Self {
        Style {
            enabled: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Paths.
    pub fn path(&self, text: &str) -> String {
        self.paint("35", text)
    }

    /// Line numbers.
    pub fn line(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Symbols.
    pub fn symbol(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Secondary information.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Matched words.
    pub fn matched(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    /// Whether styling is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible_and_plain_text_is_borrowed() {
        assert_eq!(
            sanitize("a\x1b]0;x\x07b\tc\nd"),
            "a\u{fffd}]0;x\u{fffd}b\tc\nd"
        );
        assert!(matches!(
            sanitize("plain text"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(sanitize("\u{9b}2J"), "\u{fffd}2J");
    }

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(millis(850), "850 ms");
        assert_eq!(millis(12_345), "12.3 s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert!(parse_size("big").is_err());
        assert!(parse_size("1T").is_err());
    }
}
