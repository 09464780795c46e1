//! Where a failing check points: the `path:line` locations compilers and test runners print
//! (`--> src/lib.rs:10:5`, `tests/test_x.py:12: AssertionError`, `File "/tmp/x/a.py", line
//! 3`, `./pkg/a.go:7:2:`), resolved to files of the repository, with the text around each
//! for the fixer's prompt.

use super::EditError;
use super::workspace::Workspace;

/// Locations read from one output at most.
const MAX_LOCATIONS: usize = 12;
/// Files the fixer is shown around locations at most.
const MAX_FILES: usize = 6;
/// Lines shown before and after each location.
const AROUND: u32 = 4;

/// A place in a file of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Path relative to the repository root.
    pub path: String,
    /// 1-based line.
    pub line: u32,
}

/// Every `path:line` the output names, as written, in order of first mention.
pub fn mentioned(output: &str) -> Vec<(String, u32)> {
    let mut found: Vec<(String, u32)> = Vec::new();
    let mut push = |path: &str, line: u32| {
        let entry = (path.to_string(), line);
        if line > 0 && !found.contains(&entry) {
            found.push(entry);
        }
    };
    for text in output.lines() {
        // Python tracebacks: File "path", line N
        if let Some(rest) = text.trim_start().strip_prefix("File \"")
            && let Some((path, tail)) = rest.split_once('"')
            && let Some(number) = tail
                .trim_start_matches(", line ")
                .split(|c: char| !c.is_ascii_digit())
                .next()
            && let Ok(line) = number.parse()
        {
            push(path, line);
            continue;
        }
        let bytes = text.as_bytes();
        for (colon, _) in text.match_indices(':') {
            let digits: String = text[colon + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if digits.is_empty() {
                continue;
            }
            let mut start = colon;
            while start > 0 && is_path_byte(bytes[start - 1]) {
                start -= 1;
            }
            let path = &text[start..colon];
            let file = path.rsplit('/').next().unwrap_or(path);
            let has_extension = file
                .rsplit_once('.')
                .is_some_and(|(stem, ext)| !stem.is_empty() && !ext.is_empty() && ext.len() <= 6);
            if has_extension && let Ok(line) = digits.parse() {
                push(path, line);
            }
        }
    }
    found.truncate(MAX_LOCATIONS);
    found
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-' | b'+' | b'@')
}

/// The locations of `output` that are files of the repository: paths as written, `./`
/// dropped, and absolute paths (a check run in a copy of the repository) matched by their
/// longest tail that is a file here.
pub fn resolve(workspace: &Workspace, output: &str) -> Result<Vec<Location>, EditError> {
    let mut out = Vec::new();
    for (raw, line) in mentioned(output) {
        let parts: Vec<&str> = raw
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        for start in 0..parts.len() {
            let candidate = parts[start..].join("/");
            let Ok(path) = workspace.check_path(&candidate, false) else {
                continue;
            };
            if workspace.read(&path)?.is_some() {
                out.push(Location { path, line });
                break;
            }
        }
    }
    Ok(out)
}

/// The text around each location, by file (at most [`MAX_FILES`]), each excerpt labelled
/// `path:start-end` with numbered lines.
pub fn excerpts(workspace: &Workspace, locations: &[Location]) -> Result<String, EditError> {
    let mut files: Vec<&str> = Vec::new();
    for location in locations {
        if !files.contains(&location.path.as_str()) {
            files.push(&location.path);
        }
    }
    files.truncate(MAX_FILES);
    let mut out = String::new();
    for path in files {
        let Some(text) = workspace.read(path)? else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut ranges: Vec<(u32, u32)> = locations
            .iter()
            .filter(|l| l.path == path && l.line as usize <= lines.len())
            .map(|l| {
                (
                    l.line.saturating_sub(AROUND).max(1),
                    (l.line + AROUND).min(lines.len() as u32),
                )
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (start, end) in ranges {
            match merged.last_mut() {
                Some((_, last_end)) if start <= *last_end + 1 => *last_end = (*last_end).max(end),
                _ => merged.push((start, end)),
            }
        }
        for (start, end) in merged {
            out.push_str(&format!("{path}:{start}-{end}\n"));
            for number in start..=end {
                out.push_str(&format!("{number:>5} | {}\n", lines[number as usize - 1]));
            }
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compilers_and_test_runners_are_read() {
        let output = "\
error[E0061]: this function takes 2 arguments but 1 argument was supplied
  --> src/main.rs:12:5
   |
warning: unused import at src/lib.rs:3:1
tests/test_store.py:41: AssertionError
  File \"/tmp/quarry-check-1/pkg/store.py\", line 17, in save
./cmd/app/main.go:7:2: undefined: Load
error: 12:30 is not a location, nor is http://example.invalid:8080
";
        assert_eq!(
            mentioned(output),
            vec![
                ("src/main.rs".to_string(), 12),
                ("src/lib.rs".to_string(), 3),
                ("tests/test_store.py".to_string(), 41),
                ("/tmp/quarry-check-1/pkg/store.py".to_string(), 17),
                ("./cmd/app/main.go".to_string(), 7),
            ]
        );
    }
}
