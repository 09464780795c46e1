//! `quarry daemon` end to end: the real daemon on a temp copy of a fixture, files edited,
//! renamed and deleted under it, searches that follow, crashes it survives, and the socket
//! it must defend.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use quarry_e2e::llm::StubLlm;
use quarry_e2e::{Repo, paths, same_but_scores};
use serde_json::Value;

/// A running `quarry daemon`, killed (`kill -9`) if the test did not stop it.
struct Daemon {
    child: Child,
}

impl Daemon {
    /// Starts the daemon in `repo` and waits until its first update is done.
    fn start(repo: &Repo, env: &[(&str, &str)]) -> Daemon {
        let child = repo
            .command(&["daemon"], env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start quarry daemon");
        let mut daemon = Daemon { child };
        wait_until("the daemon's first update", Duration::from_secs(60), || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("quarry daemon exited during start-up: {status}");
            }
            daemon_info(repo).is_some_and(|d| d["updates"].as_u64() >= Some(1))
        });
        daemon
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit and returns its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `daemon` object of `quarry status --json`, if a daemon answers.
fn daemon_info(repo: &Repo) -> Option<Value> {
    let run = repo.quarry(&["status", "--json"]);
    let status: Value = serde_json::from_str(&run.stdout()).ok()?;
    let daemon = status.get("daemon")?;
    (!daemon.is_null()).then(|| daemon.clone())
}

fn hits_for(repo: &Repo, query: &str) -> Vec<String> {
    paths(&repo.search(query, &["--mode", "keyword"]))
}

/// A one-word identifier unique to `i` (the tokenizer splits on digits and underscores).
fn marker(i: usize) -> String {
    let letters: String = [i / 26, i % 26]
        .iter()
        .map(|d| char::from(b'a' + *d as u8))
        .collect();
    format!("crashmarker{letters}")
}

fn keyword_fixture() -> Repo {
    let repo = Repo::fixture("rust-shop");
    repo.write(".gitignore", "target/\n*.log\n");
    repo.quarry(&["index", "--keyword-only"]).success();
    repo
}

#[test]
fn searches_follow_edits_renames_and_deletes() {
    let repo = keyword_fixture();
    let _daemon = Daemon::start(&repo, &[]);
    let within = Duration::from_secs(10);

    repo.write("src/aurora.rs", "pub fn zephyrquokka() -> u32 { 7 }\n");
    wait_until("a new file to be searchable", within, || {
        hits_for(&repo, "zephyrquokka") == ["src/aurora.rs"]
    });

    repo.write("src/aurora.rs", "pub fn pangolinmarmot() -> u32 { 8 }\n");
    wait_until("an edit to be searchable", within, || {
        hits_for(&repo, "pangolinmarmot") == ["src/aurora.rs"]
            && hits_for(&repo, "zephyrquokka").is_empty()
    });

    std::fs::rename(
        repo.path().join("src/aurora.rs"),
        repo.path().join("src/lights.rs"),
    )
    .expect("rename");
    wait_until("a rename to move the chunks", within, || {
        hits_for(&repo, "pangolinmarmot") == ["src/lights.rs"]
    });

    repo.remove("src/lights.rs");
    wait_until("a delete to drop the chunks", within, || {
        hits_for(&repo, "pangolinmarmot").is_empty()
    });

    // A file that comes and goes within one burst leaves nothing behind.
    repo.write("src/blink.rs", "pub fn blinkwombat() {}\n");
    repo.remove("src/blink.rs");
    repo.write("src/sentinel.rs", "pub fn sentinelokapi() {}\n");
    wait_until("the burst to be indexed", within, || {
        hits_for(&repo, "sentinelokapi") == ["src/sentinel.rs"]
    });
    assert!(hits_for(&repo, "blinkwombat").is_empty());

    // Writes the index does not care about start no update.
    let before = daemon_info(&repo).and_then(|d| d["updates"].as_u64());
    repo.write("target/debug/build.rs", "fn ignored_target_marker() {}\n");
    repo.write("build.log", "ignored_log_marker\n");
    repo.write(".hidden/notes.rs", "fn hidden_marker() {}\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        daemon_info(&repo).and_then(|d| d["updates"].as_u64()),
        before
    );
    let hits = hits_for(&repo, "ignored_target_marker");
    assert!(
        !hits
            .iter()
            .any(|p| p.starts_with("target/") || p.starts_with(".hidden/")),
        "{hits:?}"
    );
}

#[test]
fn output_is_the_same_with_and_without_the_daemon() {
    let repo = Repo::fixture("py-notes");
    repo.index(); // hybrid: vectors and the model
    let queries = [
        ("how are notes searched", vec!["-k", "5"]),
        ("NoteStore add", vec!["--json"]),
        (
            "parse front matter",
            vec!["--json", "--explain", "--lang", "python"],
        ),
    ];
    let direct: Vec<String> = queries
        .iter()
        .map(|(q, args)| {
            let mut all = vec!["search", *q];
            all.extend(args.iter().copied());
            repo.quarry(&all).success().stdout()
        })
        .collect();
    let stub = StubLlm::start(|_| "Notes are searched by TF-IDF.".to_string());
    let llm = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "m"),
    ];
    let ask = |repo: &Repo| -> Value {
        let out = repo
            .quarry_env(&["ask", "how are notes searched?", "--json"], &llm)
            .success()
            .stdout();
        serde_json::from_str::<Value>(&out).expect("ask json")["context"].clone()
    };
    let direct_context = ask(&repo);

    let mut daemon = Daemon::start(&repo, &[]);
    for ((q, args), expected) in queries.iter().zip(&direct) {
        let mut all = vec!["search", *q];
        all.extend(args.iter().copied());
        let through_daemon = repo.quarry(&all).success().stdout();
        assert!(
            same_but_scores(&through_daemon, expected, 2e-5),
            "{q} {args:?}:\n{through_daemon}\n---\n{expected}"
        );
    }
    assert!(same_but_scores(
        &ask(&repo).to_string(),
        &direct_context.to_string(),
        2e-5
    ));
    let info = daemon_info(&repo).expect("daemon in status");
    assert_eq!(info["pid"].as_u64(), Some(u64::from(daemon.pid())));
    assert!(info["model"].as_str().is_some_and(|m| m.contains("minilm")));

    // `quarry index` goes through the daemon instead of failing on its lock.
    let summary = repo.quarry(&["index"]).success().stdout();
    assert!(summary.contains("up to date"), "{summary}");

    let stopped = repo.quarry(&["daemon", "--stop"]).success().stdout();
    assert!(
        stopped.contains(&format!("pid {}", daemon.pid())),
        "{stopped}"
    );
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(!repo.path().join(".quarry/daemon.sock").exists());
    assert!(daemon_info(&repo).is_none());
}

#[test]
fn one_daemon_per_repository_and_a_stale_socket_is_replaced() {
    let repo = keyword_fixture();
    let mut first = Daemon::start(&repo, &[]);
    let second = repo.quarry(&["daemon"]).one_line_error();
    assert!(second.contains("already runs"), "{second}");
    assert!(second.contains(&first.pid().to_string()), "{second}");

    first.kill_9();
    assert!(
        repo.path().join(".quarry/daemon.sock").exists(),
        "kill -9 leaves the socket"
    );
    assert!(daemon_info(&repo).is_none(), "a dead socket is no daemon");
    // Searching still works without the daemon.
    assert_eq!(hits_for(&repo, "upload_with_retry")[0], "src/upload.rs");

    let replacement = Daemon::start(&repo, &[]);
    let info = daemon_info(&repo).expect("the new daemon answers");
    assert_eq!(info["pid"].as_u64(), Some(u64::from(replacement.pid())));
}

#[test]
fn a_crash_mid_update_is_repaired_by_the_next_start() {
    let repo = keyword_fixture();
    // Files written within 2 s of a scan are read again by the next one: let them age, so
    // the daemon's start-up sync has nothing to write.
    std::thread::sleep(Duration::from_millis(2100));
    repo.quarry(&["index"]).success();
    // The daemon aborts (like kill -9) right after journaling its first update that writes
    // anything, before any store is touched.
    let mut crashing = Daemon::start(&repo, &[("QUARRY_FAILPOINT", "after-journal")]);
    for i in 0..40 {
        repo.write(
            &format!("src/generated_{i}.rs"),
            format!("pub fn {}() -> usize {{ {i} }}\n", marker(i)),
        );
    }
    assert_ne!(
        crashing.wait_exit(Duration::from_secs(30)),
        Some(0),
        "the failpoint aborts the daemon"
    );

    let _daemon = Daemon::start(&repo, &[]);
    for i in [0, 17, 39] {
        assert_eq!(
            hits_for(&repo, &marker(i)),
            [format!("src/generated_{i}.rs")]
        );
    }
    let status: Value =
        serde_json::from_str(&repo.quarry(&["status", "--json"]).success().stdout())
            .expect("status");
    assert_eq!(status["writer"], "daemon");
    assert!(status["daemon"]["last_error"].is_null());
}

#[test]
fn the_socket_is_private_and_survives_malformed_requests() {
    let repo = keyword_fixture();
    let mut daemon = Daemon::start(&repo, &[]);
    let socket = repo.path().join(".quarry/daemon.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let stream = UnixStream::connect(&socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut exchange = |line: &str| -> Value {
        writer.write_all(line.as_bytes()).expect("send");
        writer.write_all(b"\n").expect("send");
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("answer");
        serde_json::from_str(&answer).expect("json answer")
    };
    for garbage in [
        "not json",
        "{\"v\":2,\"type\":\"launch_missiles\"}",
        "{\"v\":99,\"type\":\"status\"}",
        "{}",
    ] {
        let answer = exchange(garbage);
        assert_eq!(answer["type"], "error", "{garbage}: {answer}");
    }
    let answer = exchange(
        r#"{"v":2,"type":"search","request":{"query":"","k":3,"lang":null,"kind":null,"path":null,"mode":"keyword","explain":false}}"#,
    );
    assert_eq!(answer["type"], "error");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("empty query")
    );
    let answer = exchange(r#"{"v":2,"type":"status"}"#);
    assert_eq!(answer["type"], "status");
    assert_eq!(answer["pid"].as_u64(), Some(u64::from(daemon.pid())));

    // SIGTERM finishes cleanly.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.pid().to_string()])
        .status();
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(!socket.exists());
}
