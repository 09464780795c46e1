//! Where a block's SEARCH lands in a file: tiers of tolerance, strictest first.
//!
//! Models copy the lines they mean to change imperfectly, and mostly in ways that do not
//! matter: whitespace at line ends, a uniform shift of indentation (or tabs written as
//! spaces), blank lines dropped or doubled, a `...` line standing for lines they did not copy.
//! Each tier below is tried only when every stricter one found no place:
//!
//! 1. [`MatchKind::Exact`]: the lines as written (line ends aside: CRLF files match LF answers).
//! 2. [`MatchKind::TrailingWhitespace`]: ignoring whitespace at line ends.
//! 3. [`MatchKind::Indentation`]: every line shifted by the same indentation (after turning
//!    tabs into spaces or back, at one width); the REPLACE is shifted the same way.
//! 4. [`MatchKind::BlankLines`]: blank lines ignored (with tier 3's shift allowed).
//! 5. [`MatchKind::Elision`]: a `...` line in SEARCH stands for one or more lines between the
//!    exact anchor lines on both sides, inside the anchors' block; in REPLACE too, it keeps them.
//!
//! Invariant: a tier that finds more than one place refuses ([`MatchError::Ambiguous`]); it
//! never falls through to a looser tier, and never picks one. Reordered lines, a misspelt line
//! or an indentation that is not uniform match no tier. Matching is line by line: a SEARCH
//! never lands in the middle of a line.

use serde::Serialize;

use super::nearest::{self, Region};

/// How a SEARCH was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Line for line as written.
    Exact,
    /// Only after ignoring whitespace at the ends of lines.
    TrailingWhitespace,
    /// Every line shifted by the same indentation; the REPLACE was shifted to match.
    Indentation,
    /// Only after ignoring blank lines.
    BlankLines,
    /// A `...` line stood for lines between exact anchors.
    Elision,
    /// The SEARCH was empty and the file new or empty: the REPLACE is its content.
    NewFile,
    /// The SEARCH was empty on a file with content: the REPLACE was added at its end.
    Append,
    /// The answer was the whole new file.
    WholeFile,
}

/// Why a block does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// No tier found the SEARCH; `closest` is the most similar region, for the retry.
    #[error("the SEARCH text does not occur in {path}{}", closest_note(closest.as_ref()))]
    NotFound {
        /// The file.
        path: String,
        /// The lines most like the SEARCH.
        closest: Option<Region>,
    },
    /// A tier found the SEARCH in more than one place.
    #[error(
        "the SEARCH text fits {} places in {path} (lines {}); include more lines so it matches once",
        lines.len(),
        lines.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        /// The file.
        path: String,
        /// Where each place starts (1-based).
        lines: Vec<usize>,
    },
    /// A `...` that cannot be placed safely.
    #[error("the SEARCH's `...` cannot be placed in {path}: {reason}")]
    Elision {
        /// The file.
        path: String,
        /// Why not.
        reason: String,
    },
    /// The REPLACE cannot be shifted like the SEARCH was.
    #[error(
        "the SEARCH matched {path} at another indentation, but the REPLACE cannot be re-indented the same way; copy the lines with their indentation"
    )]
    Reindent {
        /// The file.
        path: String,
    },
}

fn closest_note(closest: Option<&Region>) -> String {
    closest.map_or_else(String::new, Region::describe)
}

/// A file's line: its text and its line end (`""` on a last line without one).
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    end: &'a str,
}

fn file_lines(text: &str) -> Vec<Line<'_>> {
    text.split_inclusive('\n')
        .map(|raw| {
            let body = raw.strip_suffix('\n').unwrap_or(raw);
            let body = body.strip_suffix('\r').unwrap_or(body);
            Line {
                text: body,
                end: &raw[body.len()..],
            }
        })
        .collect()
}

/// The line end the file mostly uses.
fn line_end(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Lines `start..end` of the file replaced by `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    start: usize,
    end: usize,
    with: Vec<String>,
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Whether `line` is a model's "lines left out" marker: `...`, `…`, or a comment holding
/// only one (`// ... existing code ...`, `# ...`).
pub fn is_elision(line: &str) -> bool {
    let mut t = line.trim();
    for leader in ["<!--", "//", "/*", "#", "--", "*"] {
        if let Some(rest) = t.strip_prefix(leader) {
            t = rest.trim();
            break;
        }
    }
    for closer in ["-->", "*/"] {
        if let Some(rest) = t.strip_suffix(closer) {
            t = rest.trim();
        }
    }
    let Some(rest) = t.strip_prefix("...").or_else(|| t.strip_prefix('…')) else {
        return false;
    };
    let rest = rest.trim_end_matches('.').trim_end_matches('…').trim();
    rest.len() <= 40
        && rest
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-')
}

/// A shift of indentation: tabs turned into `width` spaces (or back) first, then `prefix`
/// added to (or removed from) every non-blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shift {
    retab: Retab,
    prefix: String,
    add: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retab {
    None,
    /// The answer's tabs are `n` spaces in the file.
    TabsToSpaces(usize),
    /// The answer's `n` spaces are a tab in the file.
    SpacesToTabs(usize),
}

impl Retab {
    /// `line` with its leading indentation converted, or `None` when it cannot be.
    fn apply(self, line: &str) -> Option<String> {
        let indent = indent_of(line);
        let body = &line[indent.len()..];
        match self {
            Retab::None => Some(line.to_string()),
            Retab::TabsToSpaces(n) => {
                (!indent.contains(' ')).then(|| format!("{}{body}", " ".repeat(indent.len() * n)))
            }
            Retab::SpacesToTabs(n) => (!indent.contains('\t') && indent.len().is_multiple_of(n))
                .then(|| format!("{}{body}", "\t".repeat(indent.len() / n))),
        }
    }
}

impl Shift {
    /// The shift that turns every non-blank `answer` line into its `file` line, if one does.
    fn between(answer: &[&str], file: &[&str]) -> Option<Shift> {
        let retabs = [
            Retab::None,
            Retab::TabsToSpaces(4),
            Retab::TabsToSpaces(8),
            Retab::TabsToSpaces(2),
            Retab::SpacesToTabs(4),
            Retab::SpacesToTabs(8),
            Retab::SpacesToTabs(2),
        ];
        retabs.into_iter().find_map(|retab| {
            let answer: Vec<String> = answer
                .iter()
                .map(|l| retab.apply(l.trim_end()))
                .collect::<Option<_>>()?;
            Shift::uniform(&answer, file, retab)
        })
    }

    fn uniform(answer: &[String], file: &[&str], retab: Retab) -> Option<Shift> {
        let (first_a, first_f) = answer
            .iter()
            .zip(file)
            .find(|(a, _)| !is_blank(a))
            .map(|(a, f)| (indent_of(a), indent_of(f)))?;
        let shift = if let Some(prefix) = first_f.strip_suffix(first_a) {
            Shift {
                retab,
                prefix: prefix.to_string(),
                add: true,
            }
        } else {
            Shift {
                retab,
                prefix: first_a.strip_suffix(first_f)?.to_string(),
                add: false,
            }
        };
        answer
            .iter()
            .zip(file)
            .filter(|(a, _)| !is_blank(a))
            .all(|(a, f)| shift.shift(a).as_deref() == Some(f.trim_end()))
            .then_some(shift)
    }

    /// `line` (already retabbed) shifted; `None` when it lacks the prefix to remove.
    fn shift(&self, line: &str) -> Option<String> {
        let line = line.trim_end();
        if is_blank(line) {
            return Some(String::new());
        }
        if self.add {
            Some(format!("{}{line}", self.prefix))
        } else {
            line.strip_prefix(self.prefix.as_str()).map(str::to_string)
        }
    }

    /// A REPLACE line converted the same way (its text after the indentation untouched), or
    /// `None` when it cannot be.
    fn reindent(&self, line: &str) -> Option<String> {
        if is_blank(line) {
            return Some(line.to_string());
        }
        let line = self.retab.apply(line)?;
        if self.add {
            Some(format!("{}{line}", self.prefix))
        } else {
            line.strip_prefix(self.prefix.as_str()).map(str::to_string)
        }
    }
}

/// Tier 1 and 2: the lines equal as `same` compares them.
fn equal_lines(
    file: &[&str],
    search: &[&str],
    replace: &[&str],
    same: fn(&str, &str) -> bool,
) -> Vec<Placement> {
    if search.len() > file.len() {
        return Vec::new();
    }
    (0..=file.len() - search.len())
        .filter(|&start| search.iter().zip(&file[start..]).all(|(s, f)| same(s, f)))
        .map(|start| Placement {
            start,
            end: start + search.len(),
            with: replace.iter().map(|l| (*l).to_string()).collect(),
        })
        .collect()
}

/// Tier 3 over the lines at `at` (file positions of `search`'s lines, in order).
fn shifted(
    file: &[&str],
    at: &[usize],
    search: &[&str],
    replace: &[&str],
) -> Option<Result<Vec<String>, ()>> {
    let lines: Vec<&str> = at.iter().map(|&i| file[i]).collect();
    if !search.iter().zip(&lines).all(|(s, f)| s.trim() == f.trim()) {
        return None;
    }
    let shift = Shift::between(search, &lines)?;
    Some(
        replace
            .iter()
            .map(|l| shift.reindent(l).ok_or(()))
            .collect(),
    )
}

/// Tiers 3 and 4: contents equal, indentation shifted uniformly; `skip_blank` ignores blank
/// lines on both sides.
fn reindented(
    file: &[&str],
    search: &[&str],
    replace: &[&str],
    skip_blank: bool,
) -> Result<Vec<Placement>, ()> {
    let replace = if skip_blank {
        trim_shared_blank_edges(search, replace)
    } else {
        replace.to_vec()
    };
    let wanted: Vec<&str> = if skip_blank {
        search.iter().copied().filter(|l| !is_blank(l)).collect()
    } else {
        search.to_vec()
    };
    let positions: Vec<usize> = if skip_blank {
        (0..file.len()).filter(|&i| !is_blank(file[i])).collect()
    } else {
        (0..file.len()).collect()
    };
    if wanted.is_empty() || wanted.len() > positions.len() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for k in 0..=positions.len() - wanted.len() {
        let at = &positions[k..k + wanted.len()];
        if let Some(with) = shifted(file, at, &wanted, &replace) {
            found.push(Placement {
                start: at[0],
                end: at[at.len() - 1] + 1,
                with: with?,
            });
        }
    }
    Ok(found)
}

/// Blank lines that open or close both SEARCH and REPLACE are context, not content: with
/// blank lines ignored they are dropped from the REPLACE as they are from the match.
fn trim_shared_blank_edges<'a>(search: &[&str], replace: &[&'a str]) -> Vec<&'a str> {
    let lead = |ls: &[&str]| ls.iter().take_while(|l| is_blank(l)).count();
    let trail = |ls: &[&str]| ls.iter().rev().take_while(|l| is_blank(l)).count();
    let head = lead(search).min(lead(replace));
    let rest = &replace[head..];
    let tail = trail(search).min(trail(rest));
    rest[..rest.len() - tail].to_vec()
}

/// Tier 5: `...` lines in SEARCH.
fn elided(file: &[&str], search: &[&str], replace: &[&str]) -> Result<Vec<Placement>, String> {
    let segments = split_elisions(search);
    if segments.len() < 2 {
        return Ok(Vec::new());
    }
    if segments.iter().any(Vec::is_empty) {
        return Err("a `...` line must have SEARCH lines on both sides".to_string());
    }
    let replace_segments = split_elisions(replace);
    let keep_elided = replace_segments.len() > 1;
    if keep_elided && replace_segments.len() != segments.len() {
        return Err(format!(
            "the REPLACE has {} `...` lines and the SEARCH {}; use the same in both, or none in the REPLACE",
            replace_segments.len() - 1,
            segments.len() - 1
        ));
    }
    let starts_of = |seg: &[&str], from: usize| -> Vec<usize> {
        let last = file.len().saturating_sub(seg.len());
        (from..=last)
            .filter(|&i| {
                i + seg.len() <= file.len()
                    && seg
                        .iter()
                        .zip(&file[i..])
                        .all(|(s, f)| s.trim_end() == f.trim_end())
            })
            .collect()
    };
    let mut found = Vec::new();
    let mut left_block = false;
    'starts: for first in starts_of(&segments[0], 0) {
        let mut spans = vec![(first, first + segments[0].len())];
        for seg in &segments[1..] {
            let from = spans[spans.len() - 1].1;
            // Only the places the elided lines can reach without leaving the anchors' block.
            let reachable: Vec<usize> = starts_of(seg, from)
                .into_iter()
                .filter(|&next| {
                    // A `...` stands for at least one line.
                    if next == from {
                        return false;
                    }
                    let inside = gap_is_inside(&file[from..next], file[from - 1], seg[0]);
                    left_block |= !inside;
                    inside
                })
                .collect();
            let next = match reachable.as_slice() {
                [] => continue 'starts,
                [one] => *one,
                many => {
                    return Err(format!(
                        "the lines after a `...` occur {} times in the block after the lines before it",
                        many.len()
                    ));
                }
            };
            spans.push((next, next + seg.len()));
        }
        found.push(assemble(
            file,
            &spans,
            replace,
            &replace_segments,
            keep_elided,
        ));
    }
    if found.is_empty() && left_block {
        return Err(
            "the lines a `...` stands for would leave the block the anchors are in".to_string(),
        );
    }
    Ok(found)
}

/// Whether the lines a `...` stands for stay inside the block its anchors are in, so an
/// elision never runs from one item into the next: they never go shallower than both anchor
/// lines around them, and when the line before them opens a block (the lines after it are
/// deeper) and the line after them is deeper too, they stay inside that block (from a
/// function's header to the inside of the next function is refused).
fn gap_is_inside(gap: &[&str], before: &str, after: &str) -> bool {
    let width = |l: &str| {
        indent_of(l)
            .chars()
            .map(|c| if c == '\t' { 4 } else { 1 })
            .sum::<usize>()
    };
    let lines: Vec<usize> = gap
        .iter()
        .filter(|l| !is_blank(l))
        .map(|l| width(l))
        .collect();
    let (before, after) = (width(before), width(after));
    let mut floor = before.min(after);
    if after > before && lines.first().is_some_and(|&first| first > before) {
        floor = floor.max(before + 1);
    }
    lines.iter().all(|&w| w >= floor)
}

fn assemble(
    file: &[&str],
    spans: &[(usize, usize)],
    replace: &[&str],
    replace_segments: &[Vec<&str>],
    keep_elided: bool,
) -> Placement {
    let start = spans[0].0;
    let end = spans[spans.len() - 1].1;
    let with = if keep_elided {
        let mut out = Vec::new();
        for (i, seg) in replace_segments.iter().enumerate() {
            out.extend(seg.iter().map(|l| (*l).to_string()));
            if let Some(next) = spans.get(i + 1) {
                out.extend(file[spans[i].1..next.0].iter().map(|l| (*l).to_string()));
            }
        }
        out
    } else {
        replace.iter().map(|l| (*l).to_string()).collect()
    };
    Placement { start, end, with }
}

/// `lines` split at `...` lines, blank lines at the edges of each piece dropped.
fn split_elisions<'a>(lines: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut pieces = vec![Vec::new()];
    for line in lines {
        if is_elision(line) {
            pieces.push(Vec::new());
        } else if let Some(piece) = pieces.last_mut() {
            piece.push(*line);
        }
    }
    for piece in &mut pieces {
        while piece.last().is_some_and(|l| is_blank(l)) {
            piece.pop();
        }
        while piece.first().is_some_and(|l| is_blank(l)) {
            piece.remove(0);
        }
    }
    pieces
}

/// `text` (split into `lines`) with lines `placement.start..end` replaced, in the file's line ends; a last line
/// without a line end keeps having none.
fn splice(text: &str, lines: &[Line<'_>], placement: &Placement) -> String {
    let end_mark = line_end(text);
    let mut out: String = lines[..placement.start]
        .iter()
        .map(|l| format!("{}{}", l.text, l.end))
        .collect();
    let at_end = placement.end == lines.len();
    let last_had_end = placement
        .end
        .checked_sub(1)
        .and_then(|i| lines.get(i))
        .is_none_or(|l| !l.end.is_empty());
    for line in &placement.with {
        out.push_str(line);
        out.push_str(end_mark);
    }
    if at_end && !last_had_end && !placement.with.is_empty() {
        out.truncate(out.len() - end_mark.len());
    }
    for line in &lines[placement.end..] {
        out.push_str(line.text);
        out.push_str(line.end);
    }
    out
}

/// `text` with `replace` added at its end (a line end first if it lacks one).
pub fn append(text: &str, replace: &str) -> String {
    let end_mark = line_end(text);
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(end_mark);
    }
    for line in replace.lines() {
        out.push_str(line);
        out.push_str(end_mark);
    }
    out
}

/// One tier's search: every place it finds, or why it refuses outright.
type Tier<'a> = &'a dyn Fn() -> Result<Vec<Placement>, MatchError>;

/// `text` with one non-empty `search` replaced by `replace`, and the tier that found it.
/// `path` is for messages.
pub fn apply_block(
    text: &str,
    search: &str,
    replace: &str,
    path: &str,
) -> Result<(String, MatchKind), MatchError> {
    let lines = file_lines(text);
    let file: Vec<&str> = lines.iter().map(|l| l.text).collect();
    let search: Vec<&str> = search.lines().collect();
    let replace: Vec<&str> = replace.lines().collect();
    let reindent_error = || MatchError::Reindent {
        path: path.to_string(),
    };
    let tiers: [(MatchKind, Tier<'_>); 5] = [
        (MatchKind::Exact, &|| {
            Ok(equal_lines(&file, &search, &replace, |s, f| s == f))
        }),
        (MatchKind::TrailingWhitespace, &|| {
            Ok(equal_lines(&file, &search, &replace, |s, f| {
                s.trim_end() == f.trim_end()
            }))
        }),
        (MatchKind::Indentation, &|| {
            reindented(&file, &search, &replace, false).map_err(|()| reindent_error())
        }),
        (MatchKind::BlankLines, &|| {
            reindented(&file, &search, &replace, true).map_err(|()| reindent_error())
        }),
        (MatchKind::Elision, &|| {
            elided(&file, &search, &replace).map_err(|reason| MatchError::Elision {
                path: path.to_string(),
                reason,
            })
        }),
    ];
    for (kind, tier) in tiers {
        let found = tier()?;
        match found.as_slice() {
            [] => continue,
            [one] => return Ok((splice(text, &lines, one), kind)),
            many => {
                return Err(MatchError::Ambiguous {
                    path: path.to_string(),
                    lines: many.iter().map(|p| p.start + 1).collect(),
                });
            }
        }
    }
    Err(MatchError::NotFound {
        path: path.to_string(),
        closest: nearest::closest(&file, &search),
    })
}

#[cfg(test)]
mod tests;
