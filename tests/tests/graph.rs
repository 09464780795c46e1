//! The code graph end to end: `quarry defs`, `refs`, `callers` and `callees` on the fixtures
//! (the `--json` contract and the human lines), kept current by incremental syncs and crash
//! repair on the local and the team index alike, and one-line errors.

use quarry_e2e::{Backend, Repo, on_each_backend};
use serde_json::Value;

on_each_backend!(
    definitions_and_references_of_the_fixture,
    edits_deletes_and_renames_leave_no_stale_sites,
    a_killed_sync_is_repaired_without_stale_sites,
);

/// `quarry LOOKUP NAME --json ARGS`, parsed.
fn lookup(repo: &Repo, lookup: &str, name: &str, args: &[&str]) -> Value {
    let mut all = vec![lookup, name, "--json"];
    all.extend_from_slice(args);
    let run = repo.quarry(&all).success();
    serde_json::from_str(&run.stdout()).expect("graph json")
}

/// `path:line` of every site.
fn places(answer: &Value) -> Vec<String> {
    answer["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| format!("{}:{}", s["path"].as_str().unwrap_or(""), s["line"]))
        .collect()
}

/// The distinct paths of the sites.
fn files(answer: &Value) -> Vec<String> {
    let mut paths: Vec<String> = answer["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| s["path"].as_str().unwrap_or("").to_string())
        .collect();
    paths.dedup();
    paths
}

fn definitions_and_references_of_the_fixture(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    match backend {
        Backend::Local => repo.quarry(&["index", "--keyword-only"]).success(),
        Backend::Team => repo.quarry(&["index"]).success(),
    };

    let defs = lookup(&repo, "defs", "parse_note", &[]);
    assert_eq!(defs["lookup"], "definitions");
    assert_eq!(places(&defs), ["notes/parsing.py:85"]);
    let def = &defs["sites"][0];
    assert_eq!(def["kind"], "function");
    assert_eq!(def["symbol"], "notes.parsing.parse_note");
    assert_eq!(def["column"], 5);
    assert_eq!(def["lang"], "python");
    assert!(
        def["text"].as_str().unwrap().starts_with("def parse_note("),
        "{def}"
    );

    // Every use: the imports and the calls, in the package and its tests; the docstring that
    // names it is prose, not a use.
    let refs = lookup(&repo, "refs", "parse_note", &[]);
    assert_eq!(
        files(&refs),
        ["notes/cli.py", "tests/test_parsing.py"],
        "{refs}"
    );
    let kinds: Vec<&str> = refs["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"import") && kinds.contains(&"call"),
        "{kinds:?}"
    );
    assert!(places(&refs).contains(&"notes/cli.py:93".to_string()));
    let call = refs["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "notes/cli.py" && s["line"] == 93)
        .unwrap();
    assert!(
        call["text"]
            .as_str()
            .unwrap()
            .contains("parse_note(path.read_text")
    );
    assert!(
        call["enclosing"]
            .as_str()
            .unwrap()
            .starts_with("notes.cli."),
        "{call}"
    );

    // Filters.
    let tests_only = lookup(&repo, "refs", "parse_note", &["--path", "tests/**"]);
    assert_eq!(files(&tests_only), ["tests/test_parsing.py"]);
    let rust_only = lookup(&repo, "refs", "parse_note", &["--lang", "rust"]);
    assert!(places(&rust_only).is_empty());

    // Callers: the calls only, each in the symbol that makes it.
    let callers = lookup(&repo, "callers", "parse_note", &[]);
    assert!(
        callers["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["kind"] == "call"),
        "{callers}"
    );
    assert!(places(&callers).contains(&"notes/cli.py:93".to_string()));

    // Callees: what parse_note calls, each with where it is defined.
    let callees = lookup(&repo, "callees", "notes.parsing.parse_note", &[]);
    let called: Vec<&str> = callees["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(called.contains(&"parse_bool"), "{callees}");
    let parse_bool = callees["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "parse_bool")
        .unwrap();
    assert_eq!(parse_bool["targets"][0]["path"], "notes/parsing.py");
    assert_eq!(parse_bool["targets"][0]["line"], 51);

    // The human form: one `path:line:column: text` line per site.
    let run = repo.quarry(&["defs", "parse_note"]).success();
    let line = run.stdout();
    assert!(
        line.starts_with("notes/parsing.py:85:5: def parse_note(text: str) -> Note:"),
        "{line}"
    );
    assert!(
        line.contains("function · notes.parsing.parse_note"),
        "{line}"
    );
    let none = repo.quarry(&["refs", "no_such_name_anywhere"]).success();
    assert!(none.stdout().is_empty());
    assert!(
        none.stderr()
            .contains("no references of `no_such_name_anywhere`")
    );
}

fn edits_deletes_and_renames_leave_no_stale_sites(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    match backend {
        Backend::Local => repo.quarry(&["index", "--keyword-only"]).success(),
        Backend::Team => repo.quarry(&["index"]).success(),
    };
    let before = lookup(&repo, "refs", "parse_query", &[]);
    assert!(
        files(&before).contains(&"src/router.rs".to_string()),
        "{before}"
    );

    // A caller elsewhere is added, then edited away.
    repo.write(
        "src/caller.rs",
        "pub fn use_query(q: &str) -> usize {\n    crate::router::parse_query(q).len()\n}\n",
    );
    repo.quarry(&["index"]).success();
    let added = lookup(&repo, "callers", "parse_query", &[]);
    assert!(
        places(&added).contains(&"src/caller.rs:2".to_string()),
        "{added}"
    );
    repo.write(
        "src/caller.rs",
        "pub fn use_query(q: &str) -> usize {\n    q.len()\n}\n",
    );
    repo.quarry(&["index"]).success();
    let edited = lookup(&repo, "refs", "parse_query", &[]);
    assert!(
        !files(&edited).contains(&"src/caller.rs".to_string()),
        "{edited}"
    );

    // A file renamed: its sites move with it.
    let cache = repo.read("src/cache.rs");
    repo.remove("src/cache.rs");
    repo.write("src/lru.rs", cache);
    repo.quarry(&["index"]).success();
    let defs = lookup(&repo, "defs", "*", &["--path", "src/lru.rs"]);
    assert!(!places(&defs).is_empty(), "{defs}");
    let old = lookup(&repo, "defs", "*", &["--path", "src/cache.rs"]);
    assert!(places(&old).is_empty(), "{old}");

    // A file deleted: nothing of it is left.
    repo.remove("src/upload.rs");
    repo.quarry(&["index"]).success();
    let gone = lookup(&repo, "defs", "upload_with_retry", &[]);
    assert!(places(&gone).is_empty(), "{gone}");
}

fn a_killed_sync_is_repaired_without_stale_sites(backend: Backend) {
    for point in ["after-journal", "before-commit", "after-commit"] {
        let repo = Repo::fixture("rust-shop").on(backend);
        match backend {
            Backend::Local => repo.quarry(&["index", "--keyword-only"]).success(),
            Backend::Team => repo.quarry(&["index"]).success(),
        };
        repo.write(
            "src/ghost.rs",
            "pub fn ghost() -> usize { crate::router::parse_query(\"a=1\").len() }\n",
        );
        let run = repo.quarry_env(&["index"], &[("QUARRY_FAILPOINT", point)]);
        assert!(!run.output.status.success(), "{point}: the run must die");
        repo.remove("src/ghost.rs");
        repo.quarry(&["index"]).success();
        let refs = lookup(&repo, "refs", "parse_query", &[]);
        assert!(
            !files(&refs).contains(&"src/ghost.rs".to_string()),
            "{point}: {refs}"
        );
        assert!(
            places(&lookup(&repo, "defs", "ghost", &[])).is_empty(),
            "{point}"
        );
    }
}

#[test]
fn qualified_names_narrow_by_what_a_use_is_written_with() {
    let repo = Repo::fixture("rust-shop");
    repo.write(
        "src/money_use.rs",
        "use crate::model::Money;\n\npub fn total(a: &str) -> bool {\n    Money::parse(a).is_ok() && crate::router::Method::parse(a).is_some()\n}\n",
    );
    repo.quarry(&["index", "--keyword-only"]).success();
    let all = lookup(&repo, "refs", "parse", &[]);
    let narrowed = lookup(&repo, "refs", "Money::parse", &[]);
    assert!(
        places(&narrowed).contains(&"src/money_use.rs:4".to_string()),
        "{narrowed}"
    );
    assert!(places(&narrowed).len() < places(&all).len());
    assert!(
        narrowed["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["qualifier"] == "Money"
                || s["qualifier"] == "Self"
                || s["qualifier"] == "self"),
        "{narrowed}"
    );
    let defs = lookup(&repo, "defs", "Money::parse", &[]);
    assert_eq!(places(&defs), ["src/model.rs:19"]);
    assert_eq!(defs["sites"][0]["kind"], "method");
    assert_eq!(defs["sites"][0]["symbol"], "crate::model::Money::parse");
}

#[test]
fn graph_errors_are_one_line() {
    let repo = Repo::fixture("py-notes");
    let missing = repo.quarry(&["refs", "parse_note"]).one_line_error();
    assert!(missing.contains("run `quarry index"), "{missing}");
    repo.quarry(&["index", "--keyword-only"]).success();
    let empty = repo.quarry(&["refs", "  "]).one_line_error();
    assert!(empty.contains("empty query"), "{empty}");
    let lang = repo
        .quarry(&["defs", "x", "--lang", "cobol"])
        .one_line_error();
    assert!(lang.contains("unknown language"), "{lang}");
    let star = repo.quarry(&["defs", "*"]).one_line_error();
    assert!(star.contains("--path"), "{star}");
}

#[test]
fn a_running_daemon_keeps_lookups_current() {
    let repo = Repo::fixture("py-notes");
    repo.quarry(&["index", "--keyword-only"]).success();
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status: Value =
            serde_json::from_str(&repo.quarry(&["status", "--json"]).stdout()).unwrap_or_default();
        if status["daemon"]["updates"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never came up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A new caller, seen by the daemon's watcher, is found by the next lookup.
    repo.write(
        "notes/extra.py",
        "from notes.parsing import parse_note\n\n\ndef again(t):\n    return parse_note(t)\n",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let refs = lookup(&repo, "callers", "parse_note", &[]);
        if places(&refs).contains(&"notes/extra.py:5".to_string()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never indexed the caller: {refs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
