//! The suite's cases: worker answers written the way models get them wrong, each against a
//! real file and labelled with the one correct result or "must refuse".
//!
//! Every case starts from one intended edit of a real file: a window of lines that occurs
//! once, with a line inserted after its first line and another before its last. The correct
//! result is that edit applied by plain string replacement, computed here and never by the
//! code under test. A mode then writes the answer the way a model might (shifted
//! indentation, dropped blank lines, `...` elisions, fences, odd paths, CRLF, a whole file),
//! or builds one that must be refused (a SEARCH that fits twice, reordered lines, another
//! file's text, an elision at an edge, a whole file with parts left out).

use std::collections::BTreeMap;

mod elision;
mod whole_file;
mod window;

use elision::{body_elision_case, elision_cases, elision_into_next_case, pick_body};
use whole_file::file_cases;
use window::{blank_cases, window_cases};
/// What applying a case's answer must do.
#[derive(Debug, Clone)]
pub enum Expect {
    /// These files end with these texts (files not named are unchanged).
    Result(BTreeMap<String, String>),
    /// The answer is sent back and nothing changes.
    Refuse,
}
/// One worker answer against a repository.
#[derive(Debug, Clone)]
pub struct Case {
    /// The failure mode the answer shows.
    pub mode: &'static str,
    /// The file the case was built from.
    pub source: String,
    /// The repository's files (path, text).
    pub files: Vec<(String, String)>,
    /// What the task may edit.
    pub owned: Vec<String>,
    /// The answer.
    pub answer: String,
    /// The label.
    pub expect: Expect,
    /// For a near miss: what the answer was about, so a retry can be judged.
    pub near_miss: Option<NearMiss>,
}

/// Where a refused near miss meant to land, and the file it meant to leave.
#[derive(Debug, Clone)]
pub struct NearMiss {
    /// The file.
    pub path: String,
    /// The first and last line (1-based) the answer was about.
    pub lines: (usize, usize),
    /// The file's text after the intended edit.
    pub intended: String,
}
/// A real file the cases are built from.
pub struct Source {
    /// Its path in the case's repository.
    pub path: String,
    /// Its text (LF line ends).
    pub text: String,
}
/// The lines of `text`, each without its line end.
pub(super) fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}
pub(super) fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}
pub(super) fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}
/// A small deterministic hash, to pick windows and variants per file.
pub(super) fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
pub(super) fn comment_leader(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "py" | "rb" => "#",
        _ => "//",
    }
}
pub(super) fn fence_lang(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "rs" => "rust",
        "py" => "python",
        "go" => "go",
        "ts" | "tsx" => "typescript",
        "js" => "javascript",
        "java" => "java",
        "rb" => "ruby",
        "php" => "php",
        "cs" => "csharp",
        "c" | "h" => "c",
        _ => "cpp",
    }
}
/// One SEARCH/REPLACE block as a model writes it, under a path line.
pub(super) fn block(path_line: &str, search: &str, replace: &str) -> String {
    format!("{path_line}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
}
pub(super) fn answer(body: &str) -> String {
    format!("Here is the change.\n\n{body}\nSUMMARY: made the change\n")
}
pub(super) fn is_plain(line: &str) -> bool {
    let t = line.trim();
    !t.starts_with("<<<<<<<")
        && !t.starts_with(">>>>>>>")
        && !t.starts_with("=======")
        && !t.contains("...")
        && !t.contains('…')
        && !t.starts_with("```")
}
/// A window of `len` lines starting at a non-blank line and ending at one, occurring once
/// in the file as lines, with some indentation inside; `need_blank` also wants a blank line
/// inside it.
pub(super) fn pick_window(ls: &[&str], len: usize, seed: u64, need_blank: bool) -> Option<usize> {
    if ls.len() < len + 1 {
        return None;
    }
    let candidates: Vec<usize> = (0..=ls.len() - len)
        .filter(|&s| {
            let w = &ls[s..s + len];
            let first = w[0];
            let last = w[len - 1];
            !first.trim().is_empty()
                && !last.trim().is_empty()
                && w.iter().all(|l| is_plain(l) && !l.contains('\r'))
                && w.iter()
                    .any(|l| !indent_of(l).is_empty() && !l.trim().is_empty())
                && (!need_blank || w[1..len - 1].iter().any(|l| l.trim().is_empty()))
                && (need_blank || w.iter().all(|l| !l.trim().is_empty()))
                && occurrences(ls, w) == 1
                && trimmed_occurrences(ls, w) == 1
        })
        .collect();
    (!candidates.is_empty()).then(|| candidates[(seed % candidates.len() as u64) as usize])
}
pub(super) fn occurrences(ls: &[&str], w: &[&str]) -> usize {
    ls.windows(w.len()).filter(|c| c == &w).count()
}
/// Occurrences ignoring indentation and blank lines, so no tolerant reading can find a
/// second place either.
pub(super) fn trimmed_occurrences(ls: &[&str], w: &[&str]) -> usize {
    let want: Vec<&str> = w
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let have: Vec<&str> = ls
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    have.windows(want.len())
        .filter(|c| *c == want.as_slice())
        .count()
}
/// The intended edit of a window: a line after its first, another before its last.
pub(super) fn intended(window: &[&str]) -> Vec<String> {
    let n = window.len();
    let mut out: Vec<String> = Vec::new();
    for (i, line) in window.iter().enumerate() {
        if i == n - 1 {
            out.push(format!("{}also_edited();", indent_of(line)));
        }
        out.push((*line).to_string());
        if i == 0 {
            let next_indent = window
                .iter()
                .skip(1)
                .find(|l| !l.trim().is_empty())
                .map_or("", |l| indent_of(l));
            out.push(format!("{next_indent}edited_here();"));
        }
    }
    out
}
/// The file with `window` (at line `start`) replaced by `replacement`.
pub(super) fn replaced(ls: &[&str], start: usize, len: usize, replacement: &[String]) -> String {
    let mut out: Vec<String> = ls[..start].iter().map(|l| (*l).to_string()).collect();
    out.extend(replacement.iter().cloned());
    out.extend(ls[start + len..].iter().map(|l| (*l).to_string()));
    join(&out)
}
/// What the builders share for one file.
pub(super) struct Ctx<'a> {
    pub(super) src: &'a Source,
    pub(super) other: &'a Source,
    pub(super) ls: Vec<&'a str>,
    pub(super) seed: u64,
    pub(super) whole_file_lines: usize,
    pub(super) out: Vec<Case>,
}
impl Ctx<'_> {
    pub(super) fn path(&self) -> &str {
        &self.src.path
    }

    pub(super) fn push(&mut self, mode: &'static str, answer: String, expect: Expect) {
        self.push_full(
            mode,
            vec![(self.src.path.clone(), self.src.text.clone())],
            vec![self.src.path.clone()],
            answer,
            expect,
            None,
        );
    }

    pub(super) fn push_full(
        &mut self,
        mode: &'static str,
        files: Vec<(String, String)>,
        owned: Vec<String>,
        answer: String,
        expect: Expect,
        near_miss: Option<NearMiss>,
    ) {
        self.out.push(Case {
            mode,
            source: self.src.path.clone(),
            files,
            owned,
            answer,
            expect,
            near_miss,
        });
    }

    pub(super) fn result(&self, text: String) -> Expect {
        Expect::Result(BTreeMap::from([(self.src.path.clone(), text)]))
    }
}
/// Every case for `src`; `other` is a second real file for the wrong-file cases.
pub fn cases_for(src: &Source, other: &Source, whole_file_lines: usize) -> Vec<Case> {
    let mut ctx = Ctx {
        src,
        other,
        ls: lines(&src.text),
        seed: hash(&src.path),
        whole_file_lines,
        out: Vec::new(),
    };
    if let Some(start) = pick_window(&ctx.ls, 5, ctx.seed, false) {
        window_cases(&mut ctx, start, 5);
    }
    if let Some(start) = pick_window(&ctx.ls, 7, ctx.seed / 3, true) {
        blank_cases(&mut ctx, start, 7);
    }
    if let Some(start) = pick_window(&ctx.ls, 10, ctx.seed / 7, false) {
        elision_cases(&mut ctx, start, 10);
    }
    if let Some((start, len)) = pick_body(&ctx.ls, ctx.seed / 13) {
        body_elision_case(&mut ctx, start, len);
        elision_into_next_case(&mut ctx, start, len);
    }
    file_cases(&mut ctx);
    ctx.out
}
