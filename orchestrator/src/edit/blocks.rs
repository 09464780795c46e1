//! SEARCH/REPLACE blocks: how workers write edits, and how one block applies to a file's text.
//!
//! A worker answers with blocks of this shape, each preceded by the file's path on its own
//! line:
//!
//! ```text
//! src/config.rs
//! <<<<<<< SEARCH
//! fn load() {
//! =======
//! fn load(timeout: Duration) {
//! >>>>>>> REPLACE
//! ```
//!
//! plus a `SUMMARY:` line and any number of `FACT:` lines for the run's scratchpad. Parsing is
//! strict about structure (a block without a path, or not closed, is an error the worker is
//! told about) and lenient about what models put around it: fences, `**path**`, `### path`,
//! `File: path`, a path in a fence's info string. Where a block lands is
//! [`matching`](super::matching)'s job; an answer with no blocks may still be whole files in
//! fences ([`fenced_files`]).

use serde::Serialize;

/// One edit: replace `search` in `path` with `replace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditBlock {
    /// Path as the worker wrote it.
    pub path: String,
    /// Exact text to find (whole lines, `\n`-terminated); empty to create a file.
    pub search: String,
    /// What replaces it.
    pub replace: String,
}

/// A worker's answer, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerReply {
    /// The edits, in order.
    pub blocks: Vec<EditBlock>,
    /// The one-line summary, if given.
    pub summary: Option<String>,
    /// Facts for the scratchpad (`renamed X to Y`).
    pub facts: Vec<String>,
}

/// Why an answer could not be read as blocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A block has no path line before it.
    #[error("block {0} has no file path on the line before `<<<<<<< SEARCH`")]
    NoPath(usize),
    /// A block is missing its divider or end marker.
    #[error("block {index} ({path}) is not closed: expected `{expected}`")]
    Unclosed {
        /// 1-based block number.
        index: usize,
        /// Its path.
        path: String,
        /// The missing marker.
        expected: &'static str,
    },
}

fn is_marker(line: &str, prefix: char, word: &str) -> bool {
    let line = line.trim();
    let marks = line.chars().take_while(|&c| c == prefix).count();
    (5..=9).contains(&marks) && line[marks..].trim() == word
}

fn is_divider(line: &str) -> bool {
    let line = line.trim();
    (5..=9).contains(&line.len()) && line.chars().all(|c| c == '=')
}

/// The path a line names, if it can be one: backticks, bold markers, a heading's `#`s and a
/// `File:` label stripped; on a fence's opening line, a path in its info string.
fn path_of(line: &str) -> Option<String> {
    let mut line = line.trim();
    if let Some(info) = line.strip_prefix("```") {
        return path_in_info(info);
    }
    // A heading names a path only when it looks like one (`### src/a.rs`, not `## Changes`).
    let heading = line.starts_with('#');
    if heading {
        line = line.trim_start_matches('#').trim();
    }
    for label in ["File:", "file:", "Path:", "path:"] {
        if let Some(rest) = line.strip_prefix(label) {
            line = rest.trim();
        }
    }
    let line = line
        .trim_matches(|c| matches!(c, '`' | '*' | '"' | '\'' | ':'))
        .trim();
    let looks_like_path = !heading || line.contains('/') || line.contains('.');
    (!line.is_empty() && !line.contains(char::is_whitespace) && looks_like_path)
        .then(|| line.to_string())
}

/// A path in a fence's info string (```` ```rust src/lib.rs ````, ```` ```src/lib.rs ````):
/// a word with a `/` or a `.` in it.
fn path_in_info(info: &str) -> Option<String> {
    info.split(|c: char| c.is_whitespace() || c == ':')
        .map(|w| w.trim_matches('`'))
        .find(|w| !w.is_empty() && (w.contains('/') || w.contains('.')))
        .map(str::to_string)
}

/// A fenced block in an answer that has no SEARCH/REPLACE blocks: maybe a whole new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedFile {
    /// The path on the line before the fence, or in its info string.
    pub path: Option<String>,
    /// What the fence holds (`\n`-terminated lines).
    pub content: String,
}

/// Every fenced block of `answer`, with the path it is given. Fences that hold
/// SEARCH/REPLACE markers are not files.
pub fn fenced_files(answer: &str) -> Vec<FencedFile> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut files = Vec::new();
    let mut last_path: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let Some(info) = line.strip_prefix("```") else {
            if !line.is_empty() {
                last_path = path_of(line).filter(|p| p.contains('/') || p.contains('.'));
            }
            i += 1;
            continue;
        };
        let path = path_in_info(info).or_else(|| last_path.take());
        let mut content = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            content.push_str(lines[i]);
            content.push('\n');
            i += 1;
        }
        i += 1;
        let markers = content.lines().any(|l| is_marker(l, '<', "SEARCH"));
        if !markers {
            files.push(FencedFile { path, content });
        }
    }
    files
}

/// Parses a worker's answer.
pub fn parse_reply(answer: &str) -> Result<WorkerReply, BlockError> {
    let mut reply = WorkerReply::default();
    let lines: Vec<&str> = answer.lines().collect();
    let mut last_path: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_marker(line, '<', "SEARCH") {
            let index = reply.blocks.len() + 1;
            let path = last_path.clone().ok_or(BlockError::NoPath(index))?;
            let mut search = String::new();
            let mut replace = String::new();
            i += 1;
            loop {
                let Some(line) = lines.get(i) else {
                    return Err(BlockError::Unclosed {
                        index,
                        path,
                        expected: "=======",
                    });
                };
                i += 1;
                if is_divider(line) {
                    break;
                }
                search.push_str(line);
                search.push('\n');
            }
            loop {
                let Some(line) = lines.get(i) else {
                    return Err(BlockError::Unclosed {
                        index,
                        path,
                        expected: ">>>>>>> REPLACE",
                    });
                };
                i += 1;
                if is_marker(line, '>', "REPLACE") {
                    break;
                }
                replace.push_str(line);
                replace.push('\n');
            }
            reply.blocks.push(EditBlock {
                path,
                search,
                replace,
            });
            continue;
        }
        let trimmed = line.trim();
        if let Some(summary) = trimmed.strip_prefix("SUMMARY:") {
            reply.summary = Some(summary.trim().to_string());
        } else if let Some(fact) = trimmed.strip_prefix("FACT:") {
            let fact = fact.trim();
            if !fact.is_empty() {
                reply.facts.push(fact.to_string());
            }
        } else if let Some(path) = path_of(line) {
            last_path = Some(path);
        }
        i += 1;
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_summary_and_facts_are_parsed() {
        let answer = "I will rename it.\n\n```\nsrc/a.rs\n<<<<<<< SEARCH\nfn old() {}\n=======\nfn new() {}\n>>>>>>> REPLACE\n```\n\n**`src/b.py`**\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\nSUMMARY: renamed old to new\nFACT: old() is now new()\nFACT:\n";
        let reply = parse_reply(answer).unwrap();
        assert_eq!(reply.blocks.len(), 2);
        assert_eq!(reply.blocks[0].path, "src/a.rs");
        assert_eq!(reply.blocks[0].search, "fn old() {}\n");
        assert_eq!(reply.blocks[0].replace, "fn new() {}\n");
        assert_eq!(reply.blocks[1].path, "src/b.py");
        assert_eq!(reply.blocks[1].search, "");
        assert_eq!(reply.summary.as_deref(), Some("renamed old to new"));
        assert_eq!(reply.facts, vec!["old() is now new()"]);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert_eq!(
            parse_reply("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"),
            Err(BlockError::NoPath(1))
        );
        assert!(matches!(
            parse_reply("a.rs\n<<<<<<< SEARCH\na\n"),
            Err(BlockError::Unclosed {
                expected: "=======",
                ..
            })
        ));
        assert!(matches!(
            parse_reply("a.rs\n<<<<<<< SEARCH\na\n=======\nb\n"),
            Err(BlockError::Unclosed {
                expected: ">>>>>>> REPLACE",
                ..
            })
        ));
    }

    #[test]
    fn labels_headings_and_fence_info_name_paths() {
        for (line, path) in [
            ("### src/a.rs", Some("src/a.rs")),
            ("`src/a.rs`:", Some("src/a.rs")),
            ("**src/a.rs**", Some("src/a.rs")),
            ("File: `src/a.rs`", Some("src/a.rs")),
            ("```rust src/a.rs", Some("src/a.rs")),
            ("```rust", None),
            ("## Changes", None),
            ("Here is the change.", None),
        ] {
            assert_eq!(path_of(line).as_deref(), path, "{line}");
        }
    }

    #[test]
    fn fenced_files_take_their_path_from_the_line_before_or_the_info() {
        let answer = "src/a.py\n```python\nx = 1\n```\n\n```rust src/b.rs\nfn b() {}\n```\n```\nloose\n```\n";
        assert_eq!(
            fenced_files(answer),
            vec![
                FencedFile {
                    path: Some("src/a.py".into()),
                    content: "x = 1\n".into()
                },
                FencedFile {
                    path: Some("src/b.rs".into()),
                    content: "fn b() {}\n".into()
                },
                FencedFile {
                    path: None,
                    content: "loose\n".into()
                },
            ]
        );
    }
}
