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
//! strict (a block without a path, or not closed, is an error the worker is told about), and
//! so is matching: a SEARCH must occur exactly once. The only tolerance is whitespace at the
//! end of lines, which models routinely drop or add; a match that needed it says so.

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

/// How a SEARCH was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Byte for byte.
    Exact,
    /// Only after ignoring whitespace at the ends of lines.
    TrailingWhitespace,
    /// The SEARCH was empty and the file new or empty: the REPLACE is its content.
    NewFile,
}

/// Why a block does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The SEARCH text is nowhere in the file.
    #[error("the SEARCH text does not occur in {path}")]
    NotFound {
        /// The file.
        path: String,
    },
    /// The SEARCH text occurs more than once.
    #[error(
        "the SEARCH text occurs {count} times in {path}; include more lines so it matches once"
    )]
    Ambiguous {
        /// The file.
        path: String,
        /// How often it occurs.
        count: usize,
    },
    /// An empty SEARCH on a file that has content.
    #[error("an empty SEARCH can only create a new file, and {path} already has content")]
    EmptySearch {
        /// The file.
        path: String,
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

/// The path a line names, if it can be one: backticks, bold markers and a `File:` label
/// stripped.
fn path_of(line: &str) -> Option<String> {
    let mut line = line.trim();
    if line.starts_with("```") {
        return None;
    }
    for label in ["File:", "file:", "Path:", "path:"] {
        if let Some(rest) = line.strip_prefix(label) {
            line = rest.trim();
        }
    }
    let line = line.trim_matches(|c| c == '`' || c == '*' || c == '"' || c == '\'');
    let line = line.trim_end_matches(':').trim();
    (!line.is_empty() && !line.contains(char::is_whitespace)).then(|| line.to_string())
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

/// `text` with `block` applied, and how the SEARCH was found. `path` is for messages.
pub fn apply_block(
    text: &str,
    search: &str,
    replace: &str,
    path: &str,
) -> Result<(String, MatchKind), MatchError> {
    let crlf = text.contains("\r\n");
    let replace = if crlf {
        replace.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        replace.to_string()
    };
    if search.trim().is_empty() {
        if text.trim().is_empty() {
            return Ok((replace, MatchKind::NewFile));
        }
        return Err(MatchError::EmptySearch {
            path: path.to_string(),
        });
    }
    match text.matches(search).count() {
        1 => return Ok((text.replacen(search, &replace, 1), MatchKind::Exact)),
        0 => {}
        count => {
            return Err(MatchError::Ambiguous {
                path: path.to_string(),
                count,
            });
        }
    }
    // Line by line, ignoring whitespace at line ends.
    let file_lines: Vec<&str> = text.split_inclusive('\n').collect();
    let wanted: Vec<&str> = search.lines().map(str::trim_end).collect();
    let starts: Vec<usize> = (0..file_lines.len().saturating_sub(wanted.len() - 1))
        .filter(|&start| {
            wanted
                .iter()
                .enumerate()
                .all(|(offset, want)| file_lines[start + offset].trim_end() == *want)
        })
        .collect();
    match starts.as_slice() {
        [start] => {
            let mut out: String = file_lines[..*start].concat();
            out.push_str(&replace);
            let rest = &file_lines[start + wanted.len()..];
            // The last replaced line may have had no newline (end of file).
            let replaced_last = file_lines[start + wanted.len() - 1];
            if !replaced_last.ends_with('\n') && out.ends_with('\n') && rest.is_empty() {
                out.pop();
                if out.ends_with('\r') {
                    out.pop();
                }
            }
            out.push_str(&rest.concat());
            Ok((out, MatchKind::TrailingWhitespace))
        }
        [] => Err(MatchError::NotFound {
            path: path.to_string(),
        }),
        many => Err(MatchError::Ambiguous {
            path: path.to_string(),
            count: many.len(),
        }),
    }
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
    fn a_search_must_match_exactly_once() {
        let text = "fn a() {}\nfn b() {}\nfn a() {}\n";
        assert_eq!(
            apply_block(text, "fn b() {}\n", "fn c() {}\n", "x.rs").unwrap(),
            (
                "fn a() {}\nfn c() {}\nfn a() {}\n".to_string(),
                MatchKind::Exact
            )
        );
        assert_eq!(
            apply_block(text, "fn a() {}\n", "", "x.rs"),
            Err(MatchError::Ambiguous {
                path: "x.rs".into(),
                count: 2
            })
        );
        assert_eq!(
            apply_block(text, "fn z() {}\n", "", "x.rs"),
            Err(MatchError::NotFound {
                path: "x.rs".into()
            })
        );
    }

    #[test]
    fn only_trailing_whitespace_is_tolerated_and_reported() {
        let text = "def f():   \n    return 1\n\nprint(f())";
        let (out, kind) = apply_block(
            text,
            "def f():\n    return 1\n",
            "def f():\n    return 2\n",
            "f.py",
        )
        .unwrap();
        assert_eq!(kind, MatchKind::TrailingWhitespace);
        assert_eq!(out, "def f():\n    return 2\n\nprint(f())");
        // Indentation is not whitespace at a line end: no match.
        assert!(apply_block(text, "def f():\n  return 1\n", "", "f.py").is_err());
        // The last line without a newline keeps having none.
        let (out, _) = apply_block("a\nb  ", "b\n", "c\n", "t").unwrap();
        assert_eq!(out, "a\nc");
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let text = "a\r\nb\r\n";
        let (out, kind) = apply_block(text, "b\n", "c\nd\n", "w.txt").unwrap();
        assert_eq!(kind, MatchKind::TrailingWhitespace);
        assert_eq!(out, "a\r\nc\r\nd\r\n");
    }

    #[test]
    fn an_empty_search_only_creates() {
        assert_eq!(
            apply_block("", "", "new\n", "n.rs").unwrap(),
            ("new\n".to_string(), MatchKind::NewFile)
        );
        assert!(matches!(
            apply_block("old\n", "", "new\n", "n.rs"),
            Err(MatchError::EmptySearch { .. })
        ));
    }
}
