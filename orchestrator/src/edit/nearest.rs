//! The region of a file most like a SEARCH that matched nowhere, so the retry can copy it.
//!
//! A worker whose SEARCH missed is told where the lines it probably meant are, with those
//! lines, and which of its SEARCH lines are nowhere in the file: a second try then copies
//! the real text instead of guessing again from the whole file.

/// The lines of a file most similar to a SEARCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// First line shown (1-based).
    pub first_line: usize,
    /// Last line shown (1-based, inclusive).
    pub last_line: usize,
    /// Those lines.
    pub text: String,
    /// SEARCH lines that occur nowhere in the file (trimmed).
    pub missing: Vec<String>,
}

impl Region {
    /// The region as the worker reads it, on the lines after "does not occur in path" (so
    /// that line alone still reads as a one-line error).
    pub fn describe(&self) -> String {
        let mut out = format!(
            "\nthe most similar lines are {}-{}:\n```\n{}```",
            self.first_line, self.last_line, self.text
        );
        if !self.missing.is_empty() {
            let shown: Vec<String> = self
                .missing
                .iter()
                .take(5)
                .map(|l| format!("`{l}`"))
                .collect();
            out.push_str(&format!(
                "\nThese SEARCH lines are nowhere in the file: {}",
                shown.join(", ")
            ));
        }
        out
    }
}

/// Lines of context shown around the best window.
const CONTEXT: usize = 2;

/// Character bigrams of a trimmed line, for a similarity that survives small edits.
fn bigrams(line: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = line.trim().chars().collect();
    let mut grams: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
    grams.sort_unstable();
    grams
}

/// Dice similarity of two sorted bigram lists, in [0, 1].
fn dice(a: &[(char, char)], b: &[(char, char)]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return if a.is_empty() && b.is_empty() {
            1.0
        } else {
            0.0
        };
    }
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * shared as f64 / (a.len() + b.len()) as f64
}

/// The window of `file` most like the non-blank lines of `search`, with context, or `None`
/// when nothing is even half alike.
pub fn closest(file: &[&str], search: &[&str]) -> Option<Region> {
    let wanted: Vec<&str> = search
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if wanted.is_empty() || file.is_empty() {
        return None;
    }
    let lines: Vec<usize> = (0..file.len())
        .filter(|&i| !file[i].trim().is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let wanted_grams: Vec<Vec<(char, char)>> = wanted.iter().map(|l| bigrams(l)).collect();
    let file_grams: Vec<Vec<(char, char)>> = lines.iter().map(|&i| bigrams(file[i])).collect();
    let width = wanted.len().min(lines.len());
    let mut best: Option<(f64, usize)> = None;
    for start in 0..=lines.len() - width {
        let score: f64 = (0..width)
            .map(|k| {
                if file[lines[start + k]].trim() == wanted[k].trim() {
                    1.0
                } else {
                    dice(&wanted_grams[k], &file_grams[start + k])
                }
            })
            .sum();
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, start));
        }
    }
    let (score, start) = best?;
    if score < 0.5 * width as f64 {
        return None;
    }
    let first = lines[start].saturating_sub(CONTEXT);
    let last = (lines[start + width - 1] + CONTEXT).min(file.len() - 1);
    let text: String = file[first..=last]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let missing = wanted
        .iter()
        .filter(|w| !file.iter().any(|f| f.trim() == w.trim()))
        .map(|w| w.trim().to_string())
        .collect();
    Some(Region {
        first_line: first + 1,
        last_line: last + 1,
        text,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_with_a_misspelt_line_is_found_with_context() {
        let file = [
            "fn a() {",
            "    one();",
            "}",
            "",
            "fn b() {",
            "    two();",
            "    three();",
            "}",
            "",
            "fn c() {}",
        ];
        let region = closest(&file, &["fn b() {", "    twoo();", "    three();"]).unwrap();
        assert_eq!((region.first_line, region.last_line), (3, 9));
        assert!(region.text.contains("    two();\n"));
        assert_eq!(region.missing, vec!["twoo();"]);
        assert!(region.describe().contains("lines are 3-9"));
    }

    #[test]
    fn nothing_alike_gives_no_region() {
        let file = ["alpha", "beta"];
        assert_eq!(closest(&file, &["zzzz qqqq xxxx"]), None);
    }
}
