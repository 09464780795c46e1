//! Input Quarry must not trust, tried as a hostile user would: planted run files, `-k` at
//! the integer limit, indexes this user may only read or not read at all, a minified file,
//! an index directory inside the repository, garbage on the MCP wire, escape sequences in
//! files.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use quarry_e2e::llm::{StubLlm, StubRequest};
use quarry_e2e::{Repo, quarry_bin};
use serde_json::{Value, json};

/// One task that adds a line to `notes/export.py`.
fn one_task(request: &StubRequest) -> String {
    if request.prompt().contains("You are the planner") {
        return json!({"tasks": [{"id": "t1", "description": "Add a comment to export",
            "files": ["notes/export.py"], "new_files": [], "depends_on": []}]})
        .to_string();
    }
    let first = "\"\"\"Exporting notes as Markdown, HTML or JSON.\"\"\"";
    format!(
        "notes/export.py\n<<<<<<< SEARCH\n{first}\n=======\n# exported notes\n{first}\n>>>>>>> REPLACE\nSUMMARY: commented\n"
    )
}

/// A repository with one applied run; returns it, the run's id and its state.
fn applied_run() -> (Repo, String, Value) {
    let repo = Repo::fixture("py-notes");
    assert!(repo.read("notes/export.py").starts_with("\"\"\""));
    repo.quarry(&["index", "--keyword-only"]).success();
    let stub = StubLlm::start(one_task);
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub"),
    ];
    repo.quarry_env(&["edit", "comment the export module", "--yes"], &env)
        .success();
    let runs = repo.path().join(".quarry/runs");
    let dir = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let id = dir.file_name().unwrap().to_string_lossy().to_string();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert!(state["touched"]["notes/export.py"].is_object(), "{state}");
    (repo, id, state)
}

fn plant(repo: &Repo, id: &str, state: &Value) {
    let file = repo.path().join(format!(".quarry/runs/{id}/run.json"));
    std::fs::write(file, serde_json::to_vec_pretty(state).unwrap()).unwrap();
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn planted_run_files_are_refused_and_nothing_outside_is_touched() {
    let (repo, id, good) = applied_run();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim.txt"), "keep me\n").unwrap();
    let victim_hash = blake3::hash(b"keep me\n").to_hex().to_string();
    let before = snapshot(outside.path());
    let climb = format!(
        "../{}/victim.txt",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    let absolute = outside.path().join("victim.txt").display().to_string();
    let export_before = repo.read("notes/export.py");

    let touched = |path: &str, existed: bool| {
        let name = blake3::hash(path.as_bytes()).to_hex()[..16].to_string();
        json!({path: {"existed": existed, "original": if existed { json!(name) } else { Value::Null },
            "written_hash": victim_hash}})
    };
    let mut forgeries: Vec<(&str, Value, Vec<&str>)> = Vec::new();
    for (path, existed) in [
        (climb.as_str(), true),
        (absolute.as_str(), true),
        (climb.as_str(), false),
    ] {
        let mut state = good.clone();
        state["touched"] = touched(path, existed);
        forgeries.push(("outside the repository", state, vec!["undo", "--force"]));
    }
    let mut state = good.clone();
    state["touched"]["notes/export.py"]["original"] = json!("/etc/hostname");
    forgeries.push(("not its own", state, vec!["undo", "--force"]));
    let mut state = good.clone();
    state["status"] = json!("interrupted");
    state["pending_write"] = json!({"step": "t1", "files": {climb.clone(): "pwned\n"}});
    forgeries.push(("pending write", state, vec!["edit", "--yes", "--resume"]));

    let stub = StubLlm::start(|_| "never asked".to_string());
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub"),
    ];
    for (expected, state, command) in forgeries {
        plant(&repo, &id, &state);
        let mut args: Vec<&str> = command.clone();
        if args[0] == "undo" {
            args.insert(1, &id);
        } else {
            args.push(&id);
        }
        let error = repo.quarry_env(&args, &env).one_line_error();
        assert!(
            error.contains("refused") && error.contains(expected),
            "{command:?}: {error}"
        );
        let runs = repo.quarry(&["runs"]).success().stdout();
        assert!(!runs.contains(&id), "a forged run is listed: {runs}");
        assert_eq!(
            snapshot(outside.path()),
            before,
            "{command:?} touched a file outside"
        );
        assert_eq!(repo.read("notes/export.py"), export_before);
    }
    assert!(stub.requests().is_empty(), "a forged run reached the model");

    // A saved original that is a link out of `originals/` is not followed.
    plant(&repo, &id, &good);
    let name = blake3::hash(b"notes/export.py").to_hex()[..16].to_string();
    let saved = repo
        .path()
        .join(format!(".quarry/runs/{id}/originals/{name}"));
    std::fs::remove_file(&saved).unwrap();
    std::os::unix::fs::symlink(outside.path().join("victim.txt"), &saved).unwrap();
    let error = repo.quarry(&["undo", &id]).one_line_error();
    assert!(error.contains("not a regular file"), "{error}");
    assert_eq!(repo.read("notes/export.py"), export_before);

    // The real run still undoes.
    std::fs::remove_file(&saved).unwrap();
    std::fs::write(&saved, "\"\"\"restored\n").unwrap();
    repo.quarry(&["undo", &id]).success();
    assert_eq!(repo.read("notes/export.py"), "\"\"\"restored\n");
}

#[test]
fn k_at_the_integer_limit_is_one_line_in_every_command() {
    let repo = Repo::fixture("py-notes");
    repo.quarry(&["index", "--keyword-only"]).success();
    let huge = u64::MAX.to_string();
    for args in [
        vec!["search", "NoteStore", "-k", huge.as_str()],
        vec!["search", "NoteStore", "-k", "99999999", "--json"],
        vec!["search", "NoteStore", "-k", "0"],
        vec![
            "search",
            "retry",
            "-k",
            huge.as_str(),
            "--source",
            "commits",
        ],
    ] {
        let error = repo.quarry(&args).one_line_error();
        assert!(
            error.contains("-k must be at least 1 and at most 1000"),
            "{args:?}: {error}"
        );
    }
    let stub = StubLlm::start(|_| "unused".to_string());
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub"),
    ];
    let run = repo.quarry_env(&["ask", "how are notes stored?", "-k", &huge], &env);
    let error = run.one_line_error();
    assert!(
        error.contains("-k must be at least 1 and at most 1000"),
        "{error}"
    );
    assert!(stub.requests().is_empty());
    // The bound itself is fine.
    repo.search("NoteStore", &["-k", "1000"]);
}

/// Runs `quarry ARGS` in `repo` as the user `nobody`.
fn as_nobody(repo: &Repo, args: &[&str]) -> std::process::Output {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(quarry_bin())
        .args(args)
        .current_dir(repo.path())
        .env("HOME", "/nonexistent")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    command.output().expect("setpriv")
}

/// Whether this process can run commands as `nobody` (root with setpriv); says SKIPPED if not.
fn can_act_as_nobody(test: &str) -> bool {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !(is_root && setpriv) {
        eprintln!("SKIPPED {test}: needs root and setpriv to act as another user");
    }
    is_root && setpriv
}

/// Opens the repository's folders (and those above it) to other users.
fn open_up(repo: &Repo) {
    use std::os::unix::fs::PermissionsExt;
    let mut dir = Some(repo.path());
    while let Some(d) = dir {
        if d == Path::new("/") {
            break;
        }
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
        dir = d.parent();
    }
}

#[test]
fn another_users_index_is_searched_or_said_unreadable_never_corrupt() {
    if !can_act_as_nobody("another_users_index") {
        return;
    }
    let repo = Repo::fixture("py-notes");
    repo.quarry(&["index", "--keyword-only"]).success();
    open_up(&repo);
    // Readable but not writable by nobody: searching works.
    let out = as_nobody(&repo, &["search", "NoteStore add", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!hits.is_empty());
    // Not readable at all: said so, in one line, without advice to rebuild.
    use std::os::unix::fs::PermissionsExt;
    let index = repo.path().join(".quarry");
    std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o700)).unwrap();
    for args in [["search", "NoteStore"], ["status", "--json"]] {
        let out = as_nobody(&repo, &args);
        assert!(!out.status.success());
        let error = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(error.trim().lines().count(), 1, "{error}");
        assert!(error.contains("permission denied"), "{args:?}: {error}");
        assert!(
            !error.contains("corrupt") && !error.contains("rebuild"),
            "{args:?}: {error}"
        );
    }
}

#[test]
fn a_folder_this_user_cannot_read_is_counted_as_unreadable() {
    if !can_act_as_nobody("a_folder_this_user_cannot_read") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::fixture("py-notes");
    repo.write("private/notes.py", "def hidden_from_nobody():\n    pass\n");
    open_up(&repo);
    let index = tempfile::tempdir().unwrap();
    std::fs::set_permissions(index.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        repo.path().join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let dir = index.path().join("idx").display().to_string();
    let out = as_nobody(&repo, &["index", "--keyword-only", "--index-dir", &dir]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("unreadable 1"), "{summary}");
}

#[test]
fn a_read_only_index_is_searched_never_called_corrupt() {
    let probe = Command::new("unshare").args(["-rm", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED a_read_only_index: needs `unshare -rm` for a read-only mount");
        return;
    }
    let repo = Repo::fixture("py-notes");
    repo.quarry(&["index", "--keyword-only"]).success();
    let index = repo.path().join(".quarry").display().to_string();
    let script = format!(
        "mount --bind -o ro '{index}' '{index}' && exec '{}' search 'NoteStore add' --json",
        quarry_bin().display()
    );
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.path().join(".no-user-config"))
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{error}");
    assert!(!error.contains("corrupt"), "{error}");
    let hits: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!hits.is_empty());
}

#[test]
fn a_minified_file_becomes_bounded_chunks_that_ask_can_use() {
    let repo = Repo::fixture("py-notes");
    let line: String = (0..28_000)
        .map(|i| format!("function zqx{i}(a){{return a+{i}}};"))
        .collect();
    assert!(
        line.len() > 900_000 && line.len() < 1024 * 1024,
        "{}",
        line.len()
    );
    repo.write("web/app.js", format!("{line}\n"));
    repo.quarry(&["index", "--keyword-only"]).success();
    let hits = repo.search("zqx27999", &["-k", "50", "--mode", "keyword"]);
    assert!(!hits.is_empty());
    assert_eq!(hits[0]["path"], "web/app.js");
    for hit in &hits {
        assert!(
            hit["text"].as_str().unwrap().len() <= 4096,
            "a chunk over the cap"
        );
    }
    let stub = StubLlm::start(|_| "It returns its argument plus one.".to_string());
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub"),
    ];
    repo.quarry_env(&["ask", "what does zqx27999 return?"], &env)
        .success();
    assert!(stub.requests()[0].prompt().contains("zqx27999"));
}

#[test]
fn an_index_dir_inside_the_repository_never_indexes_itself_or_hides_sources() {
    let repo = Repo::fixture("py-notes");
    for dir in [".", "notes", ".."] {
        let error = repo
            .quarry(&["index", "--keyword-only", "--index-dir", dir])
            .one_line_error();
        assert!(error.contains("--index-dir"), "{dir}: {error}");
    }
    let summary = repo
        .quarry(&["index", "--keyword-only", "--index-dir", "idx"])
        .success()
        .stdout();
    let again = repo
        .quarry(&["index", "--keyword-only", "--index-dir", "./idx/../idx"])
        .success()
        .stdout();
    assert!(again.contains("up to date"), "{summary} / {again}");
    let status: Value = serde_json::from_str(
        &repo
            .quarry(&["status", "--json", "--index-dir", "idx"])
            .success()
            .stdout(),
    )
    .unwrap();
    let default = Repo::fixture("py-notes");
    default.quarry(&["index", "--keyword-only"]).success();
    let expected: Value =
        serde_json::from_str(&default.quarry(&["status", "--json"]).success().stdout()).unwrap();
    assert_eq!(
        status["files"], expected["files"],
        "the index's own files were indexed"
    );
}

#[test]
fn garbage_on_the_mcp_wire_gets_a_parse_error_and_the_server_goes_on() {
    let repo = Repo::fixture("py-notes");
    let mut child = Command::new(quarry_bin())
        .args(["mcp", "."])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", repo.path().join(".no-user-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"{this is not json\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let error: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(error["error"]["code"], -32700, "{line}");
    assert_eq!(error["id"], Value::Null);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});
    stdin.write_all(format!("{init}\n").as_bytes()).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let answer: Value = serde_json::from_str(&line).expect("initialize answered");
    assert_eq!(answer["id"], 1, "{line}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn escape_sequences_from_files_never_reach_the_terminal() {
    let repo = Repo::fixture("py-notes");
    repo.write(
        "notes/evil.py",
        "def evil_title():\n    \"\"\"\x1b]0;pwned\x07\x1b[2J retitles the terminal.\"\"\"\n    return 1\n",
    );
    repo.quarry(&["index", "--keyword-only"]).success();
    let run = repo.quarry(&["search", "evil_title"]).success();
    assert!(run.stdout().contains("evil_title"));
    assert!(!run.stdout().contains('\x1b') && !run.stdout().contains('\x07'));
    // JSON keeps the text exact (escaped by JSON itself).
    let hits = repo.search("evil_title", &[]);
    assert!(hits[0]["text"].as_str().unwrap().contains('\x1b'));
}

#[test]
fn special_files_are_counted_and_scores_never_increase() {
    let repo = Repo::fixture("rust-shop");
    let fifo = repo.path().join("src/pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let summary = repo.quarry(&["index", "--keyword-only"]).success().stdout();
    assert!(summary.contains("special 1"), "{summary}");
    for query in [
        "Config::load",
        "parse_query",
        "upload_with_retry",
        "Cart add",
    ] {
        let hits = repo.search(query, &["-k", "10"]);
        let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{query}: {scores:?}"
        );
    }
}
