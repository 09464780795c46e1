//! The edit robustness suite: worker answers written the way real models get them wrong,
//! applied through the run's real `Workspace` (path checks included) by `apply_answer`.
//!
//! Each case is labelled with the one correct result or "must refuse" (see `cases.rs`). The
//! suite prints, per failure mode, how many answers applied correctly, were refused (sent
//! back, by reason) or applied wrongly, and fails if any applied wrongly. For the near misses
//! it also measures the feedback: whether the closest lines a refusal shows hold the lines
//! meant, and whether a worker that copies them lands on its second call. The cases come
//! from this repository's fixtures and its own sources; `QUARRY_EDIT_SUITE_CORPUS` (folders
//! separated by `:`) adds real code from elsewhere, e.g. Django's sdist or the cargo registry.
//!
//! `QUARRY_EDIT_SUITE_SHOW=<mode>` prints every refusal of one mode with its message.
//!
//! One command: `cargo test --release -p quarry-orchestrator --test edit_robustness -- --nocapture`.

mod cases;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cases::{Case, Expect, Source};
use quarry_orchestrator::edit::apply::{self, Refusal, Scope};
use quarry_orchestrator::edit::blocks::parse_reply;
use quarry_orchestrator::edit::workspace::Workspace;

/// Source files the cases are built from, by extension.
const EXTENSIONS: &[&str] = &[
    "rs", "py", "go", "ts", "tsx", "js", "java", "rb", "php", "cs", "c", "h", "cpp", "hpp",
];

/// Files taken from each extra corpus folder.
const CORPUS_FILES: usize = 120;

/// Whole-file answers are taken for files up to this many lines (the suite's setting).
const WHOLE_FILE_LINES: usize = 300;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
}

fn sources_under(root: &Path, limit: usize) -> Vec<Source> {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    let step = paths.len().div_ceil(limit.max(1)).max(1);
    paths
        .into_iter()
        .step_by(step)
        .filter_map(|p| {
            let text = fs::read_to_string(&p).ok()?;
            let rel = p
                .strip_prefix(root)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            // Files that hold conflict markers would read as blocks themselves.
            let markers = text.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("<<<<<<<") || l.starts_with(">>>>>>>")
            });
            (text.lines().count() >= 6 && !text.contains('\r') && !markers && text.len() < 200_000)
                .then_some(Source { path: rel, text })
        })
        .collect()
}

/// The fixtures, the workspace's own crates, and any extra corpus.
fn sources() -> Vec<Source> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = sources_under(&workspace.join("fixtures"), usize::MAX);
    for krate in ["indexer", "retriever", "orchestrator", "cli"] {
        for source in sources_under(&workspace.join(krate).join("src"), 12) {
            all.push(Source {
                path: format!("{krate}/src/{}", source.path),
                text: source.text,
            });
        }
    }
    if let Ok(extra) = std::env::var("QUARRY_EDIT_SUITE_CORPUS") {
        for (n, dir) in extra.split(':').filter(|d| !d.is_empty()).enumerate() {
            for source in sources_under(Path::new(dir), CORPUS_FILES) {
                all.push(Source {
                    path: format!("corpus{n}/{}", source.path),
                    text: source.text,
                });
            }
        }
    }
    all
}

/// How one case came out.
enum Outcome {
    Correct,
    Refused(Refusal),
    Wrong(String),
}

fn run(case: &Case) -> Outcome {
    let dir = tempfile::Builder::new()
        .prefix("quarry-suite")
        .tempdir()
        .expect("a temporary folder");
    for (path, text) in &case.files {
        let full = dir.path().join(path);
        fs::create_dir_all(full.parent().expect("a parent")).expect("a folder");
        fs::write(&full, text).expect("a file");
    }
    let workspace =
        Workspace::open(dir.path(), &dir.path().join(".quarry"), true).expect("a workspace");
    let scope = Scope {
        owned: &case.owned,
        new_files: &[],
    };
    let applied = match apply::apply_answer(&case.answer, &workspace, scope, &options()) {
        Ok(applied) => applied,
        Err(refusal) => return Outcome::Refused(refusal),
    };
    let Expect::Result(expected) = &case.expect else {
        return Outcome::Wrong("applied an answer that must be refused".to_string());
    };
    for (path, before) in &case.files {
        let after = match applied.changes.get(path) {
            Some(Some(text)) => text.as_str(),
            Some(None) => return Outcome::Wrong(format!("removed {path}")),
            None => before.as_str(),
        };
        let want = expected.get(path).map_or(before.as_str(), String::as_str);
        if after != want {
            return Outcome::Wrong(format!("{path} differs from the intended result"));
        }
    }
    Outcome::Correct
}

fn options() -> apply::ApplyOptions {
    apply::ApplyOptions {
        whole_file_lines: WHOLE_FILE_LINES,
    }
}

/// Whether the feedback on a near miss (a misremembered line, reordered lines, a broken
/// indentation) lets the second call land: do the closest lines shown hold every line the
/// answer was about, and does a worker that copies them land on the intended result?
#[derive(Default)]
struct Feedback {
    near_misses: usize,
    covered: usize,
    landed: usize,
}

impl Feedback {
    fn count(&mut self, case: &Case, refusal: &Refusal) {
        let Some(near) = &case.near_miss else {
            return;
        };
        self.near_misses += 1;
        if let Some((shown, region)) = &refusal.closest
            && *shown == near.path
            && region.first_line <= near.lines.0
            && region.last_line >= near.lines.1
        {
            self.covered += 1;
        }
        let Some(answer) = second_try(case, refusal) else {
            return;
        };
        let retry = Case {
            answer,
            expect: Expect::Result(BTreeMap::from([(near.path.clone(), near.intended.clone())])),
            ..case.clone()
        };
        if matches!(run(&retry), Outcome::Correct) {
            self.landed += 1;
        }
    }

    fn print(&self) {
        println!(
            "feedback on {} refused near misses: the closest lines shown hold the intended lines in {}; a worker copying them lands on its second call in {}",
            self.near_misses, self.covered, self.landed
        );
    }
}

/// The answer of a worker told its SEARCH missed that copies, from the lines shown, the run
/// most like its SEARCH (as many lines as it wrote), keeping its REPLACE.
fn second_try(case: &Case, refusal: &Refusal) -> Option<String> {
    let (path, region) = refusal.closest.as_ref()?;
    let reply = parse_reply(&case.answer).ok()?;
    let block = reply.blocks.first()?;
    let search: Vec<&str> = block.search.lines().collect();
    let shown: Vec<&str> = region.text.lines().collect();
    if search.is_empty() || shown.len() < search.len() {
        return None;
    }
    let alike = |start: usize| {
        search
            .iter()
            .zip(&shown[start..])
            .filter(|(a, b)| a.trim() == b.trim())
            .count()
    };
    let best =
        (0..=shown.len() - search.len()).max_by_key(|&start| (alike(start), Reverse(start)))?;
    let copied: String = shown[best..best + search.len()]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    Some(format!(
        "{path}\n<<<<<<< SEARCH\n{copied}=======\n{}>>>>>>> REPLACE\n",
        block.replace
    ))
}

/// Per mode: cases, correct, refused, wrong.
#[derive(Default)]
struct Tally {
    cases: usize,
    correct: usize,
    refused: usize,
    wrong: usize,
}

#[test]
fn worker_answers_apply_correctly_or_are_refused_never_misapplied() {
    let sources = sources();
    assert!(sources.len() > 20, "the fixtures hold the suite's files");
    let mut all: Vec<Case> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let other = &sources[(i + 1) % sources.len()];
        all.extend(cases::cases_for(src, other, WHOLE_FILE_LINES));
    }
    let mut by_mode: BTreeMap<(bool, &str), Tally> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut feedback = Feedback::default();
    // `QUARRY_EDIT_SUITE_SHOW=mode` prints why each answer of that mode was refused.
    let show = std::env::var("QUARRY_EDIT_SUITE_SHOW").ok();
    for case in &all {
        let must_refuse = matches!(case.expect, Expect::Refuse);
        let tally = by_mode.entry((must_refuse, case.mode)).or_default();
        tally.cases += 1;
        match run(case) {
            Outcome::Correct => tally.correct += 1,
            Outcome::Refused(refusal) => {
                tally.refused += 1;
                feedback.count(case, &refusal);
                if show.as_deref() == Some(case.mode) {
                    println!("{} on {}: {}", case.mode, case.source, refusal.message);
                }
                *reasons.entry(refusal.reason.name()).or_default() += 1;
            }
            Outcome::Wrong(why) => {
                tally.wrong += 1;
                if show.as_deref() == Some(case.mode) {
                    println!("{} on {}: {why}\n{}", case.mode, case.source, case.answer);
                }
                wrong.push(format!("{} on {}: {why}", case.mode, case.source));
            }
        }
    }
    print_table(&all, &by_mode, &reasons, sources.len());
    feedback.print();
    for line in wrong.iter().take(20) {
        eprintln!("applied wrongly: {line}");
    }
    assert!(all.len() >= 200, "the suite has {} cases", all.len());
    assert!(wrong.is_empty(), "{} answers applied wrongly", wrong.len());
}

fn print_table(
    all: &[Case],
    by_mode: &BTreeMap<(bool, &str), Tally>,
    reasons: &BTreeMap<&str, usize>,
    files: usize,
) {
    println!(
        "\nedit robustness: {} answers over {files} real files",
        all.len()
    );
    println!("| label | mode | cases | applied correctly | refused | applied wrongly |");
    println!("|---|---|---|---|---|---|");
    let mut totals = [Tally::default(), Tally::default()];
    for ((must_refuse, mode), t) in by_mode {
        let label = if *must_refuse {
            "must refuse"
        } else {
            "one result"
        };
        println!(
            "| {label} | {mode} | {} | {} | {} | {} |",
            t.cases, t.correct, t.refused, t.wrong
        );
        let total = &mut totals[usize::from(*must_refuse)];
        total.cases += t.cases;
        total.correct += t.correct;
        total.refused += t.refused;
        total.wrong += t.wrong;
    }
    for (must_refuse, t) in totals.iter().enumerate() {
        let label = if must_refuse == 1 {
            "must refuse"
        } else {
            "one result"
        };
        println!(
            "| **{label}** | all | {} | {} | {} | {} |",
            t.cases, t.correct, t.refused, t.wrong
        );
    }
    let named: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    println!("refusals by reason: {}", named.join(", "));
}
