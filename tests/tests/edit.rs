//! `quarry edit`, `runs` and `undo` end to end: the real binary on a copy of the Python
//! fixture, a scripted OpenAI-compatible stub answering by what each prompt asks for (plan,
//! a given task, a fix), and the fixture's real `pytest` as the check command.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use quarry_e2e::Repo;
use quarry_e2e::llm::{StubLlm, StubRequest, block, is_fix, is_plan, stub_env as env};
use serde_json::{Value, json};

const CHECK: &str = "python3 -m pytest -q -x";

const EXPORT_COUNT: &str = "def export_count(notes: Iterable[Note]) -> int:\n    \"\"\"How many notes an export would hold.\"\"\"\n    return len(list(notes))\n";

fn keyword_index(repo: &Repo) {
    repo.quarry(&["index", "--keyword-only"]).success();
}

/// The task a worker prompt is for.
fn task_of(request: &StubRequest) -> Option<String> {
    let prompt = request.prompt();
    let at = prompt.find("Your task [")? + "Your task [".len();
    let end = prompt[at..].find(']')?;
    Some(prompt[at..at + end].to_string())
}

fn task(id: &str, description: &str, files: &[&str], depends_on: &[&str]) -> Value {
    json!({"id": id, "description": description, "files": files, "new_files": [], "depends_on": depends_on})
}

fn plan(tasks: Vec<Value>) -> String {
    json!({ "tasks": tasks }).to_string()
}

/// The state of the only run in the repository.
fn only_run(repo: &Repo) -> Value {
    let runs = repo.path().join(".quarry/runs");
    let mut dirs: Vec<_> = std::fs::read_dir(&runs)
        .expect("runs folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run expected: {dirs:?}");
    read_json(&dirs.remove(0).join("run.json"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn trace_steps(repo: &Repo, id: &str) -> Vec<Value> {
    std::fs::read_to_string(repo.path().join(format!(".quarry/runs/{id}/trace.jsonl")))
        .expect("trace")
        .lines()
        .map(|l| serde_json::from_str(l).expect("trace line"))
        .collect()
}

/// t1 adds `export_count` to export.py; t2 (after t1) uses it from search.py.
fn two_step_answer(request: &StubRequest) -> String {
    if is_plan(request) {
        return plan(vec![
            task(
                "t1",
                "Add export_count(notes) to the export module",
                &["notes/export.py"],
                &[],
            ),
            task(
                "t2",
                "Add count_matches using export_count in the search module",
                &["notes/search.py"],
                &["t1"],
            ),
        ]);
    }
    match task_of(request).as_deref() {
        Some("t1") => format!(
            "{}SUMMARY: added export_count\nFACT: export_count(notes) returns how many notes an export holds\n",
            block(
                "notes/export.py",
                "def export_notes(notes: Iterable[Note], fmt: str) -> str:\n",
                &format!(
                    "{EXPORT_COUNT}\n\ndef export_notes(notes: Iterable[Note], fmt: str) -> str:\n"
                ),
            )
        ),
        Some("t2") => format!(
            "{}SUMMARY: added count_matches\n",
            block(
                "notes/search.py",
                "def tokenize(text: str) -> list[str]:\n",
                "def count_matches(notes) -> int:\n    from notes.export import export_count\n    return export_count(notes)\n\n\ndef tokenize(text: str) -> list[str]:\n",
            )
        ),
        _ => "nothing".to_string(),
    }
}

/// A stub that answers like [`two_step_answer`].
fn two_step_stub() -> StubLlm {
    StubLlm::start(two_step_answer)
}

/// `quarry edit --yes` on the two-step plan, with a stub whose t2 worker never answers in
/// time; returns once t2's worker has been asked, with the stub and the running process.
fn edit_stuck_in_t2(repo: &Repo, stderr: std::process::Stdio) -> (StubLlm, std::process::Child) {
    let slow = StubLlm::start(|request| {
        if task_of(request).as_deref() == Some("t2") {
            std::thread::sleep(Duration::from_secs(60));
        }
        two_step_answer(request)
    });
    let child = repo
        .command(&["edit", "count notes", "--yes"], &env(&slow))
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !slow
        .requests()
        .iter()
        .any(|r| task_of(r).as_deref() == Some("t2"))
    {
        assert!(Instant::now() < deadline, "t2 never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    (slow, child)
}

#[test]
fn a_dependent_task_sees_its_prerequisites_code_and_undo_restores_everything() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let export_before = repo.read("notes/export.py");
    let search_before = repo.read("notes/search.py");
    let stub = two_step_stub();
    let run = repo
        .quarry_env(
            &[
                "edit",
                "count notes for export and search",
                "--yes",
                "--check",
                CHECK,
                "--json",
            ],
            &env(&stub),
        )
        .success();
    let result: Value = serde_json::from_str(&run.stdout()).expect("edit --json");
    assert_eq!(result["status"], "succeeded", "{result}");
    assert!(
        repo.read("notes/export.py")
            .contains("def export_count(notes")
    );
    assert!(
        repo.read("notes/search.py")
            .contains("def count_matches(notes)")
    );
    let diff = result["diff"].as_str().unwrap();
    assert!(
        diff.contains("--- a/notes/export.py") && diff.contains("+def count_matches"),
        "{diff}"
    );
    assert_eq!(result["checks"][0]["passed"], true);
    assert!(
        result["checks"][0]["isolation"]
            .as_str()
            .unwrap()
            .contains("unshare"),
        "{result}"
    );
    assert_eq!(
        result["scratchpad"][0],
        "[t1] export_count(notes) returns how many notes an export holds"
    );

    // t2's prompt holds export_count as retrieved code (a chunk whose line starts with the
    // definition), not only as t1's diff (whose lines start with `+`): the index was
    // refreshed between the tasks.
    let t2 = stub
        .requests()
        .into_iter()
        .find(|r| task_of(r).as_deref() == Some("t2"))
        .expect("t2 worker call");
    let prompt = t2.prompt();
    let related = prompt.split("Files your task owns").next().unwrap();
    assert!(
        related
            .lines()
            .any(|l| l.starts_with("def export_count(notes")),
        "retrieved context lacks the new function:\n{related}"
    );
    assert!(
        prompt.contains("export_count(notes) returns how many notes"),
        "scratchpad shown"
    );

    let id = result["id"].as_str().unwrap().to_string();
    let steps: Vec<String> = trace_steps(&repo, &id)
        .iter()
        .map(|s| {
            s["step"]
                .as_str()
                .or(s["purpose"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for expected in ["plan", "apply", "reindex", "check"] {
        assert!(
            steps.iter().any(|s| s == expected),
            "{expected} missing from {steps:?}"
        );
    }
    let runs = repo.quarry(&["runs"]).success().stdout();
    assert!(
        runs.contains(&id) && runs.contains("succeeded") && runs.contains("2/2"),
        "{runs}"
    );

    // Someone edits a file after the run: undo refuses, naming it.
    let edited = repo.read("notes/search.py") + "\n# mine\n";
    repo.write("notes/search.py", &edited);
    let error = repo.quarry(&["undo", &id]).one_line_error();
    assert!(
        error.contains("notes/search.py") && error.contains("--force"),
        "{error}"
    );
    assert_eq!(repo.read("notes/search.py"), edited);
    repo.quarry(&["undo", &id, "--force"]).success();
    assert_eq!(repo.read("notes/export.py"), export_before);
    assert_eq!(repo.read("notes/search.py"), search_before);
    assert!(
        repo.search("export_count", &["--mode", "keyword"])
            .iter()
            .all(|h| !h["text"]
                .as_str()
                .unwrap_or("")
                .contains("def export_count"))
    );
}

#[test]
fn without_a_terminal_edit_refuses_to_write_unless_told() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = two_step_stub();
    let error = repo
        .quarry_env(&["edit", "anything"], &env(&stub))
        .one_line_error();
    assert!(
        error.contains("--yes") && error.contains("--dry-run"),
        "{error}"
    );
    assert!(stub.requests().is_empty(), "no LLM call before approval");
}

#[test]
fn dry_run_shows_the_diff_and_writes_nothing() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let before_export = repo.read("notes/export.py");
    let before_search = repo.read("notes/search.py");
    let stub = two_step_stub();
    let run = repo
        .quarry_env(&["edit", "count notes", "--dry-run"], &env(&stub))
        .success();
    let diff = run.stdout();
    assert!(
        diff.contains("+def export_count(notes") && diff.contains("+def count_matches"),
        "{diff}"
    );
    assert!(run.stderr().contains("nothing written"), "{}", run.stderr());
    assert_eq!(repo.read("notes/export.py"), before_export);
    assert_eq!(repo.read("notes/search.py"), before_search);
    // The second task still saw the first one's edit (in memory).
    let t2 = stub
        .requests()
        .into_iter()
        .find(|r| task_of(r).as_deref() == Some("t2"))
        .unwrap();
    assert!(t2.prompt().contains("+def export_count"));
    assert_eq!(only_run(&repo)["settings"]["dry_run"], true);
}

#[test]
fn invalid_json_goes_back_once_and_a_cycle_twice_ends_the_run() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let stub = StubLlm::start(move |request| {
        if is_plan(request) {
            return match counter.fetch_add(1, Ordering::SeqCst) {
                0 => "{\"tasks\": [ oops".to_string(),
                _ => plan(vec![task(
                    "t1",
                    "Add export_count",
                    &["notes/export.py"],
                    &[],
                )]),
            };
        }
        block(
            "notes/export.py",
            "def export_notes(notes: Iterable[Note], fmt: str) -> str:\n",
            &format!(
                "{EXPORT_COUNT}\n\ndef export_notes(notes: Iterable[Note], fmt: str) -> str:\n"
            ),
        )
    });
    repo.quarry_env(&["edit", "add export_count", "--yes"], &env(&stub))
        .success();
    let plans: Vec<StubRequest> = stub.requests().into_iter().filter(is_plan).collect();
    assert_eq!(plans.len(), 2);
    assert!(
        plans[1]
            .prompt()
            .contains("That plan cannot be used: the plan is not valid JSON"),
        "{}",
        plans[1].prompt()
    );

    let cyclic = Repo::fixture("py-notes");
    keyword_index(&cyclic);
    let stub = StubLlm::start(|_| {
        plan(vec![
            task("a", "first", &["notes/export.py"], &["b"]),
            task("b", "second", &["notes/search.py"], &["a"]),
        ])
    });
    let error = cyclic
        .quarry_env(&["edit", "anything", "--yes"], &env(&stub))
        .one_line_error();
    assert!(
        error.contains("could not produce a valid plan") && error.contains("cycle: a → b → a"),
        "{error}"
    );
    assert_eq!(stub.requests().len(), 2, "sent back exactly once");
    assert!(stub.requests()[1].prompt().contains("cycle: a → b → a"));
    assert_eq!(only_run(&cyclic)["status"], "failed");

    let unknown = Repo::fixture("py-notes");
    keyword_index(&unknown);
    let stub = StubLlm::start(|_| plan(vec![task("a", "first", &["notes/export.py"], &["zz"])]));
    let error = unknown
        .quarry_env(&["edit", "anything", "--yes"], &env(&stub))
        .one_line_error();
    assert!(error.contains("depends on `zz`"), "{error}");
}

#[test]
fn independent_tasks_overlap_and_tasks_on_one_file_never_do() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = StubLlm::start(|request| {
        if is_plan(request) {
            return plan(vec![
                task("a", "Comment export", &["notes/export.py"], &[]),
                task("b", "Comment search once", &["notes/search.py"], &[]),
                task("c", "Comment search twice", &["notes/search.py"], &[]),
            ]);
        }
        std::thread::sleep(Duration::from_millis(800));
        let id = task_of(request).unwrap_or_default();
        let path = if id == "a" {
            "notes/export.py"
        } else {
            "notes/search.py"
        };
        let first = if id == "a" {
            "\"\"\"Exporting notes as Markdown, HTML or JSON.\"\"\"\n"
        } else {
            "\"\"\"Ranking notes for a query with TF-IDF over titles and bodies.\"\"\"\n"
        };
        // Each task adds its own line after the module docstring.
        block(path, first, &format!("{first}# touched by {id}\n"))
    });
    let started = Instant::now();
    repo.quarry_env(
        &["edit", "comment things", "--yes", "--jobs", "2"],
        &env(&stub),
    )
    .success();
    let elapsed = started.elapsed();
    let state = only_run(&repo);
    let span = |id: &str| {
        let t = &state["tasks"][id];
        (
            t["started_ms"].as_u64().unwrap(),
            t["finished_ms"].as_u64().unwrap(),
        )
    };
    let (a, b, c) = (span("a"), span("b"), span("c"));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "a and b ran at the same time: {a:?} {b:?}"
    );
    assert!(
        b.1 <= c.0 || c.1 <= b.0,
        "b and c share a file and overlapped: {b:?} {c:?}"
    );
    let search = repo.read("notes/search.py");
    assert!(search.contains("# touched by b") && search.contains("# touched by c"));
    assert!(elapsed < Duration::from_secs(30));
}

#[test]
fn a_search_that_does_not_match_goes_back_with_the_real_text() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = StubLlm::start(|request| {
        if is_plan(request) {
            return plan(vec![task(
                "t1",
                "Lower-case slugs explicitly",
                &["notes/export.py"],
                &[],
            )]);
        }
        if request.prompt().contains("were not applied") {
            block(
                "notes/export.py",
                "def slugify(title: str) -> str:\n",
                "def slugify(title: str) -> str:\n    # slugs are lower case\n",
            )
        } else {
            block(
                "notes/export.py",
                "def slugify(title):\n",
                "def slugify(title: str) -> str:\n",
            )
        }
    });
    let run = repo
        .quarry_env(
            &["edit", "document slugify", "--yes", "--json"],
            &env(&stub),
        )
        .success();
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(result["tasks"]["t1"]["attempts"], 2);
    assert!(
        repo.read("notes/export.py")
            .contains("    # slugs are lower case\n")
    );
    let retry = stub
        .requests()
        .into_iter()
        .filter(|r| task_of(r).is_some())
        .nth(1)
        .unwrap();
    let prompt = retry.prompt();
    assert!(
        prompt.contains("does not occur in notes/export.py"),
        "{prompt}"
    );
    assert!(
        prompt.contains("def markdown_to_html(body: str) -> str:"),
        "the real text is sent back"
    );
    assert!(
        prompt.contains("the most similar lines are")
            && prompt.contains("These SEARCH lines are nowhere in the file: `def slugify(title):`"),
        "the closest lines are pointed at: {prompt}"
    );
}

#[test]
fn a_worker_that_keeps_missing_fails_its_task_with_a_one_line_error() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = StubLlm::start(|request| {
        if is_plan(request) {
            return plan(vec![task(
                "t1",
                "Document slugify",
                &["notes/export.py"],
                &[],
            )]);
        }
        block(
            "notes/export.py",
            "def slugify(title):\n",
            "def slug(title):\n",
        )
    });
    let run = repo.quarry_env(
        &["edit", "document slugify", "--yes", "--json"],
        &env(&stub),
    );
    assert!(!run.output.status.success());
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    let error = result["tasks"]["t1"]["error"].as_str().unwrap();
    assert!(
        error.contains("does not occur in notes/export.py"),
        "{error}"
    );
    assert!(
        !error.contains('\n'),
        "the closest lines go to the worker, not here: {error}"
    );
}

#[test]
fn a_whole_new_small_file_is_applied_with_its_diff_and_a_snippet_is_not() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let original = repo.read("notes/export.py");
    let whole = original.replace(
        "def slugify(title: str) -> str:\n",
        "def slugify(title: str) -> str:\n    # slugs are lower case\n",
    );
    assert_ne!(whole, original);
    let answer = format!("notes/export.py\n```python\n{whole}```\nSUMMARY: documented slugify\n");
    let stub = StubLlm::start(move |request| {
        if is_plan(request) {
            return plan(vec![task(
                "t1",
                "Document slugify",
                &["notes/export.py"],
                &[],
            )]);
        }
        if request.prompt().contains("were not applied") {
            return answer.clone();
        }
        // First a fenced snippet: not the whole file, so it is sent back.
        "notes/export.py\n```python\ndef slugify(title: str) -> str:\n    # lower\n```\n"
            .to_string()
    });
    let run = repo
        .quarry_env(
            &["edit", "document slugify", "--yes", "--json"],
            &env(&stub),
        )
        .success();
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(result["tasks"]["t1"]["attempts"], 2);
    assert_eq!(repo.read("notes/export.py"), whole);
    let diff = result["diff"].as_str().unwrap();
    assert!(diff.contains("+    # slugs are lower case"), "{diff}");
    let problems: Vec<String> = trace_steps(&repo, result["id"].as_str().unwrap())
        .iter()
        .filter(|s| s["step"] == "apply-failed")
        .map(|s| s["detail"]["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems, vec!["whole_file"]);
}

#[test]
fn hostile_blocks_write_nothing_outside_the_repository() {
    let repo = Repo::fixture("py-notes");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("target.py"), "keep = True\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("target.py"),
        repo.path().join("notes/link.py"),
    )
    .unwrap();
    keyword_index(&repo);
    let absolute = outside.path().join("abs.py").display().to_string();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let stub = StubLlm::start(move |request| {
        if is_plan(request) {
            return plan(vec![task("t1", "Edit export", &["notes/export.py"], &[])]);
        }
        let path = match counter.fetch_add(1, Ordering::SeqCst) {
            0 => "../outside.py".to_string(),
            1 => absolute.clone(),
            _ => "notes/link.py".to_string(),
        };
        block(&path, "", "pwned = True\n")
    });
    let run = repo.quarry_env(&["edit", "edit things", "--yes", "--json"], &env(&stub));
    assert!(!run.output.status.success());
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(result["tasks"]["t1"]["status"], "failed");
    assert!(!repo.path().parent().unwrap().join("outside.py").exists());
    assert!(!outside.path().join("abs.py").exists());
    assert_eq!(
        std::fs::read_to_string(outside.path().join("target.py")).unwrap(),
        "keep = True\n"
    );
    let problems: Vec<String> = trace_steps(&repo, result["id"].as_str().unwrap())
        .iter()
        .filter(|s| s["step"] == "apply-failed")
        .map(|s| s["detail"]["problem"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].contains("`..` would leave the repository root"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("absolute paths are refused"),
        "{problems:?}"
    );
    assert!(
        problems[2].contains("symlink that leaves the repository root"),
        "{problems:?}"
    );
}

#[test]
fn a_failing_check_is_fixed_in_the_second_round() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let fixes = Arc::new(AtomicUsize::new(0));
    let counter = fixes.clone();
    let stub = StubLlm::start(move |request| {
        if is_plan(request) {
            return plan(vec![task(
                "t1",
                "Keep the case of slugs",
                &["notes/export.py"],
                &[],
            )]);
        }
        if is_fix(request) {
            return match counter.fetch_add(1, Ordering::SeqCst) {
                // Round 1 changes something unrelated; round 2 restores lower-casing.
                0 => block(
                    "notes/export.py",
                    "    return slug or \"note\"\n",
                    "    return slug or \"untitled\"\n",
                ),
                _ => block(
                    "notes/export.py",
                    "    slug = re.sub(r\"[^A-Za-z0-9]+\", \"-\", title).strip(\"-\")\n",
                    "    slug = re.sub(r\"[^a-z0-9]+\", \"-\", title.lower()).strip(\"-\")\n",
                ),
            };
        }
        block(
            "notes/export.py",
            "    slug = re.sub(r\"[^a-z0-9]+\", \"-\", title.lower()).strip(\"-\")\n",
            "    slug = re.sub(r\"[^A-Za-z0-9]+\", \"-\", title).strip(\"-\")\n",
        )
    });
    let run = repo
        .quarry_env(
            &[
                "edit",
                "keep slug case",
                "--yes",
                "--check",
                CHECK,
                "--json",
            ],
            &env(&stub),
        )
        .success();
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    let passed: Vec<bool> = result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(passed, vec![false, false, true]);
    assert_eq!(result["fix_rounds_used"], 2);
    assert_eq!(result["status"], "succeeded");
    let fix = stub.requests().into_iter().find(is_fix).unwrap();
    assert!(
        fix.prompt().contains("test_cli.py"),
        "the failure output reaches the fixer"
    );
    assert!(
        fix.prompt()
            .contains("+    slug = re.sub(r\"[^A-Za-z0-9]+\""),
        "so does the diff"
    );
}

#[test]
fn a_call_limit_stops_new_work_and_resume_finishes_without_redoing() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = two_step_stub();
    let run = repo.quarry_env(
        &["edit", "count notes", "--yes", "--max-calls", "2"],
        &env(&stub),
    );
    assert_eq!(run.output.status.code(), Some(1));
    assert!(
        run.stderr().contains("limit of 2 LLM calls (--max-calls)"),
        "{}",
        run.stderr()
    );
    let state = only_run(&repo);
    assert_eq!(state["status"], "interrupted");
    assert_eq!(state["tasks"]["t1"]["status"], "done");
    assert_eq!(state["tasks"]["t2"]["status"], "pending");
    let id = state["id"].as_str().unwrap().to_string();

    let before = stub.requests().len();
    repo.quarry_env(&["edit", "--resume", &id, "--yes"], &env(&stub))
        .success();
    let after: Vec<StubRequest> = stub.requests().into_iter().skip(before).collect();
    assert_eq!(after.len(), 1, "only t2 runs again");
    assert_eq!(task_of(&after[0]).as_deref(), Some("t2"));
    assert_eq!(only_run(&repo)["status"], "succeeded");
    assert_eq!(
        repo.read("notes/export.py")
            .matches("def export_count")
            .count(),
        1
    );
}

#[test]
fn a_killed_run_resumes_where_it_stopped() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    // t2's worker never answers in time: the run is killed while waiting for it.
    let (_slow, mut child) = edit_stuck_in_t2(&repo, std::process::Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    let state = only_run(&repo);
    assert_eq!(state["tasks"]["t1"]["status"], "done");
    assert!(repo.read("notes/export.py").contains("def export_count"));

    let id = state["id"].as_str().unwrap().to_string();
    let fast = two_step_stub();
    repo.quarry_env(
        &["edit", "--resume", &id, "--yes", "--check", CHECK],
        &env(&fast),
    )
    .success();
    let asked: Vec<Option<String>> = fast.requests().iter().map(task_of).collect();
    assert_eq!(
        asked,
        vec![Some("t2".to_string())],
        "t1 is not redone, no new plan"
    );
    assert!(repo.read("notes/search.py").contains("def count_matches"));
    assert_eq!(
        repo.read("notes/export.py")
            .matches("def export_count")
            .count(),
        1
    );
    let error = repo
        .quarry_env(&["edit", "--resume", &id, "--yes"], &env(&fast))
        .one_line_error();
    assert!(error.contains("cannot be resumed"), "{error}");
}

/// The real transport: llama.cpp's server with a tiny model. The model is far too small to
/// plan or edit well (see FACTS.md), so this asserts what must hold whatever it answers: the
/// plan is asked under a JSON schema, the run ends with a clear status, every call is traced
/// with real usage, and nothing is half-applied or written outside the repository.
#[test]
fn a_real_local_model_drives_a_run_to_a_clean_end() {
    let Some(server) = quarry_e2e::llm::LlamaServer::start() else {
        return;
    };
    let repo = Repo::empty();
    repo.write(
        "greet.py",
        "def greet(name):\n    return \"Hello, \" + name\n",
    );
    repo.write(
        "test_greet.py",
        "from greet import greet\n\n\ndef test_greet():\n    assert greet(\"Ann\").startswith(\"Hello\")\n",
    );
    // ~20 generated tokens/s on one thread: keep every answer short.
    repo.write(
        "quarry.toml",
        "[edit]\nanswer_tokens = 96\ncontext_tokens = 300\nmax_calls = 6\n",
    );
    keyword_index(&repo);
    let originals = [repo.read("greet.py"), repo.read("test_greet.py")];
    let run = repo.quarry_env(
        &[
            "edit",
            "Add a docstring to greet in greet.py",
            "--yes",
            "--json",
            "--check",
            "python3 -m pytest -q",
        ],
        &[
            ("QUARRY_LLM_URL", server.url.as_str()),
            ("QUARRY_LLM_MODEL", "smollm2"),
        ],
    );
    let stderr = run.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let result: Value = match serde_json::from_str(&run.stdout()) {
        Ok(result) => result,
        // A plan the model could not get right ends the run before any JSON result.
        Err(_) => {
            assert!(
                stderr.contains("could not produce a valid plan"),
                "{stderr}"
            );
            only_run(&repo)
        }
    };
    let status = result["status"].as_str().unwrap();
    assert!(
        ["succeeded", "failed", "interrupted"].contains(&status),
        "{result}"
    );
    assert_eq!(run.output.status.success(), status == "succeeded");
    if status == "succeeded" {
        assert_eq!(
            result["checks"].as_array().unwrap().last().unwrap()["passed"],
            true
        );
    }

    let id = result["id"].as_str().unwrap();
    let calls: Vec<Value> = trace_steps(&repo, id)
        .into_iter()
        .filter(|r| r.get("purpose").is_some())
        .collect();
    assert!(!calls.is_empty());
    assert_eq!(calls[0]["purpose"], "plan");
    assert!(calls[0]["options"]["json_schema"]["schema"]["properties"]["tasks"].is_object());
    assert!(
        calls[0]["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 50,
        "{}",
        calls[0]
    );
    assert!(
        calls.iter().all(|c| c["error"].is_null()),
        "transport errors: {calls:?}"
    );

    // Nothing half-applied: every file holds its original or what a finished step wrote.
    let touched = result["touched"].as_object().cloned().unwrap_or_default();
    for (path, original) in ["greet.py", "test_greet.py"].iter().zip(&originals) {
        let now = repo.read(path);
        if let Some(entry) = touched.get(*path) {
            let hash = blake3::hash(now.as_bytes()).to_hex().to_string();
            assert_eq!(
                entry["written_hash"],
                hash.as_str(),
                "{path} differs from what the run wrote"
            );
        } else {
            assert_eq!(&now, original, "{path} changed without a record");
        }
    }
    if !touched.is_empty() {
        repo.quarry(&["undo", id, "--force"]).success();
        assert_eq!(repo.read("greet.py"), originals[0]);
    }
}

#[test]
fn a_write_cut_short_by_a_crash_is_finished_on_resume() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = StubLlm::start(|request| {
        if is_plan(request) {
            return plan(vec![task(
                "t1",
                "Mark both modules",
                &["notes/export.py", "notes/search.py"],
                &[],
            )]);
        }
        let export_doc = "\"\"\"Exporting notes as Markdown, HTML or JSON.\"\"\"\n";
        let search_doc =
            "\"\"\"Ranking notes for a query with TF-IDF over titles and bodies.\"\"\"\n";
        block(
            "notes/export.py",
            export_doc,
            &format!("{export_doc}# marked\n"),
        ) + &block(
            "notes/search.py",
            search_doc,
            &format!("{search_doc}# marked\n"),
        )
    });
    // The process dies right after the first of the task's two files is written.
    let run = repo.quarry_env(
        &["edit", "mark modules", "--yes"],
        &[
            ("QUARRY_LLM_URL", stub.url.as_str()),
            ("QUARRY_LLM_MODEL", "stub"),
            ("QUARRY_FAILPOINT", "edit-mid-write"),
        ],
    );
    assert!(!run.output.status.success());
    let state = only_run(&repo);
    assert!(state["pending_write"].is_object(), "{state}");
    let marked = |path: &str| repo.read(path).contains("# marked\n");
    assert!(
        marked("notes/export.py") != marked("notes/search.py"),
        "one file written"
    );

    let id = state["id"].as_str().unwrap().to_string();
    let before = stub.requests().len();
    repo.quarry_env(&["edit", "--resume", &id, "--yes"], &env(&stub))
        .success();
    assert_eq!(
        stub.requests().len(),
        before,
        "the write is finished, not asked again"
    );
    assert!(marked("notes/export.py") && marked("notes/search.py"));
    let state = only_run(&repo);
    assert_eq!(state["tasks"]["t1"]["status"], "done");
    assert!(state["pending_write"].is_null());
    // Undo knows both files.
    repo.quarry(&["undo", &id]).success();
    assert!(!marked("notes/export.py") && !marked("notes/search.py"));
}

#[test]
fn memory_notes_reach_the_prompts_and_runs_are_remembered() {
    let repo = Repo::fixture("py-notes");
    // A hybrid index: notes get vectors and are recalled by meaning as well as by words.
    repo.index();
    let added = repo
        .quarry(&[
            "memory",
            "add",
            "Every exported note keeps its tags in sorted order.",
        ])
        .success()
        .stdout();
    let note_id = added.trim().trim_start_matches("remembered ").to_string();
    repo.quarry(&["memory", "add", "The cache module is thread-safe."])
        .success();
    assert_eq!(
        repo.quarry(&["memory", "list"])
            .success()
            .stdout()
            .lines()
            .count(),
        2
    );

    let stub = two_step_stub();
    repo.quarry_env(&["edit", "count exported notes", "--yes"], &env(&stub))
        .success();
    let requests = stub.requests();
    let plan_prompt = requests.iter().find(|r| is_plan(r)).unwrap().prompt();
    assert!(
        plan_prompt.contains("Every exported note keeps its tags in sorted order."),
        "{plan_prompt}"
    );
    assert!(
        !plan_prompt.contains("thread-safe"),
        "an unrelated note stays out"
    );
    let worker = requests
        .iter()
        .find(|r| task_of(r).is_some())
        .unwrap()
        .prompt();
    assert!(worker.contains("Every exported note keeps its tags"));

    let notes: Value = serde_json::from_str(
        &repo
            .quarry(&["memory", "list", "--json"])
            .success()
            .stdout(),
    )
    .unwrap();
    let run_note = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["source"] == "run")
        .expect("run remembered");
    let text = run_note["text"].as_str().unwrap();
    assert!(
        text.contains("count exported notes") && text.contains("export_count(notes) returns"),
        "{text}"
    );

    // A later run about the same code recalls the earlier one.
    let later = two_step_stub();
    repo.quarry_env(
        &["edit", "rename export_count", "--yes", "--dry-run"],
        &env(&later),
    )
    .success();
    let plan_prompt = later.requests().into_iter().find(is_plan).unwrap().prompt();
    assert!(
        plan_prompt.contains("export_count(notes) returns how many notes"),
        "{plan_prompt}"
    );

    repo.quarry(&["memory", "forget", &note_id]).success();
    let error = repo
        .quarry(&["memory", "forget", &note_id])
        .one_line_error();
    assert!(error.contains("no memory note"), "{error}");
}

#[test]
fn ctrl_c_stops_the_run_consistently_and_says_how_to_resume() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let (_slow, child) = edit_stuck_in_t2(&repo, std::process::Stdio::piped());
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let state = only_run(&repo);
    let id = state["id"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("quarry edit --resume {id}")),
        "{stderr}"
    );
    assert_eq!(state["status"], "interrupted");
    assert_eq!(state["tasks"]["t1"]["status"], "done");
    assert_eq!(state["tasks"]["t2"]["status"], "pending");
    assert!(!repo.read("notes/search.py").contains("count_matches"));
}

#[test]
fn with_a_daemon_running_the_run_retrieves_and_reindexes_through_it() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    /// Kills the daemon however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = Running(
        repo.command(&["daemon"], &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let daemon_updates = |repo: &Repo| -> Option<u64> {
        let status: Value =
            serde_json::from_str(&repo.quarry(&["status", "--json"]).stdout()).ok()?;
        status["daemon"]["updates"].as_u64()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon_updates(&repo).unwrap_or(0) < 1 {
        assert!(Instant::now() < deadline, "the daemon never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = daemon_updates(&repo).unwrap();

    let stub = two_step_stub();
    let run = repo
        .quarry_env(&["edit", "count notes", "--yes", "--json"], &env(&stub))
        .success();
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(result["status"], "succeeded", "{result}");
    // The daemon (the index's only writer) re-indexed after each task, and t2 retrieved t1's
    // new function through it.
    assert!(daemon_updates(&repo).unwrap() >= before + 2);
    let t2 = stub
        .requests()
        .into_iter()
        .find(|r| task_of(r).as_deref() == Some("t2"))
        .unwrap();
    let related = t2.prompt();
    let related = related.split("Files your task owns").next().unwrap();
    assert!(
        related
            .lines()
            .any(|l| l.starts_with("def export_count(notes")),
        "{related}"
    );
    repo.quarry(&["undo", result["id"].as_str().unwrap()])
        .success();
    assert!(!repo.read("notes/export.py").contains("export_count"));
}

#[test]
fn bad_edit_input_is_one_clear_line() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo);
    let stub = two_step_stub();
    let error = repo
        .quarry_env(&["edit", "  ", "--yes"], &env(&stub))
        .one_line_error();
    assert!(error.contains("empty request"), "{error}");
    let error = repo
        .quarry_env(
            &["edit", "--resume", "20990101-000000-0000", "--yes"],
            &env(&stub),
        )
        .one_line_error();
    assert!(
        error.contains("no run `20990101-000000-0000`") && error.contains("quarry runs"),
        "{error}"
    );
    let error = repo.quarry(&["undo", "../../etc"]).one_line_error();
    assert!(error.contains("no run"), "{error}");
    assert!(stub.requests().is_empty());
}

#[test]
fn searches_in_every_mode_work_while_an_edit_waits_on_its_model() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let (_slow, mut child) = edit_stuck_in_t2(&repo, std::process::Stdio::null());
    for mode in ["vector", "hybrid", "keyword"] {
        let run = repo
            .quarry(&["search", "export notes as html", "--json", "--mode", mode])
            .success();
        assert!(
            run.stdout().contains("notes/export.py"),
            "{mode}: {}",
            run.stdout()
        );
        assert!(
            !run.stderr().contains("keyword results"),
            "{mode}: {}",
            run.stderr()
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
