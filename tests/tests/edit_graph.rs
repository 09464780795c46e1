//! What the code graph adds to `quarry edit`: the planner sees every file that uses the
//! names a change is about, workers see the callers and callees of what they change, and the
//! fixer sees the text around every `path:line` a failing check prints.

use quarry_e2e::Repo;
use quarry_e2e::llm::{StubLlm, block, is_fix, is_plan, stub_env as env};
use serde_json::{Value, json};

fn plan(files: &[&str]) -> String {
    json!({"tasks": [{"id": "t1", "description": "Rename slugify to make_slug", "files": files, "new_files": [], "depends_on": []}]}).to_string()
}

/// A module that only calls `slugify`, deep inside code about something else entirely, so
/// that nothing but the graph ties it to a request about slugs.
/// The part of `prompt` after `marker`, or a failure showing the prompt.
fn section<'p>(prompt: &'p str, marker: &str) -> &'p str {
    prompt
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{marker}` in the prompt:\n{prompt}"))
}

const ARCHIVE: &str = "\"\"\"Archiving of old notebooks to cold storage.\"\"\"\n\nfrom notes.export import slugify\n\n\ndef archive_bucket(notebook, year):\n    \"\"\"Which cold-storage bucket holds a notebook's year.\"\"\"\n    region = notebook.region or \"eu\"\n    shard = (year * 7919) % 64\n    key = slugify(notebook.name)\n    return f\"{region}-{shard}-{key}\"\n";

#[test]
fn a_file_that_only_calls_the_renamed_function_reaches_the_plan() {
    let repo = Repo::fixture("py-notes");
    repo.write("notes/archive.py", ARCHIVE);
    repo.quarry(&["index", "--keyword-only"]).success();
    let stub = StubLlm::start(|request| {
        if is_plan(request) {
            return plan(&["notes/export.py"]);
        }
        "SUMMARY: nothing to do\n".to_string()
    });
    // The worker's answer holds no edit, so the run fails; the plan is what is looked at.
    let _ = repo.quarry_env(
        &[
            "edit",
            "rename slugify to make_slug everywhere, updating every caller",
            "--yes",
            "--dry-run",
            "--json",
        ],
        &env(&stub),
    );
    let planner = stub
        .requests()
        .into_iter()
        .find(is_plan)
        .expect("a plan request");
    let prompt = planner.prompt();
    let uses = section(&prompt, "Uses of the names this change is about");
    // Its import and its call, by line; the tests and the defining module too.
    assert!(uses.contains("notes/archive.py:3,10"), "{uses}");
    assert!(uses.contains("tests/test_cli.py:"), "{uses}");
    assert!(
        uses.contains("`slugify` defined at notes/export.py:17"),
        "{uses}"
    );
    // The plan's schema lets the planner name it.
    let schema = planner.body["response_format"]["json_schema"]["schema"].to_string();
    assert!(schema.contains("notes/archive.py"), "{schema}");
}

#[test]
fn workers_see_callers_and_the_fixer_sees_where_the_check_points() {
    let repo = Repo::fixture("py-notes");
    repo.write("notes/archive.py", ARCHIVE);
    repo.quarry(&["index", "--keyword-only"]).success();
    let stub = StubLlm::start(|request| {
        if is_plan(request) {
            return plan(&["notes/export.py"]);
        }
        if is_fix(request) {
            return format!(
                "{}SUMMARY: marked the config\n",
                block(
                    "notes/config.py",
                    "def parse_simple_toml(text: str) -> dict:\n",
                    "def parse_simple_toml(text: str) -> dict:  # checked\n",
                )
            );
        }
        format!(
            "{}SUMMARY: documented slugify\n",
            block(
                "notes/export.py",
                "def slugify(title: str) -> str:\n",
                "def slugify(title: str) -> str:  # used by archive\n",
            )
        )
    });
    // The check fails, naming an absolute path into the repository and a line, until the
    // fixer changes that file.
    let check = "python3 -c \"import os,sys; t=open('notes/config.py').read(); ok='# checked' in t; print('' if ok else os.path.abspath('notes/config.py')+':29: E999 not checked'); sys.exit(0 if ok else 1)\"";
    let run = repo
        .quarry_env(
            &[
                "edit",
                "document slugify",
                "--yes",
                "--check",
                check,
                "--json",
            ],
            &env(&stub),
        )
        .success();
    let result: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(result["status"], "succeeded", "{result}");
    assert!(repo.read("notes/config.py").contains("# checked"));

    let worker = stub
        .requests()
        .into_iter()
        .find(|r| r.prompt().contains("Your task [t1]"))
        .expect("a worker request");
    let prompt = worker.prompt();
    let neighbours = section(
        &prompt,
        "Callers and callees of the functions your task is about",
    );
    assert!(
        neighbours.contains("notes/archive.py:10 in notes.archive.archive_bucket"),
        "{neighbours}"
    );

    let fix = stub
        .requests()
        .into_iter()
        .find(is_fix)
        .expect("a fix request");
    let prompt = fix.prompt();
    let around = section(&prompt, "Where the failure points");
    assert!(around.contains("notes/config.py:25-33"), "{around}");
    assert!(
        around.contains("   29 | def parse_simple_toml(text: str) -> dict:"),
        "{around}"
    );
}
