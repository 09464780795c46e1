//! A team index in one shared store: CI keeps it current, laptops search it read-only.
//!
//! The workflow runs against a Qdrant Edge directory (`edge:///path`, the same engine and
//! requests as a server) always, and against a real Qdrant server when
//! `QUARRY_TEST_QDRANT_URL` names one; otherwise those tests say they were skipped. Faults
//! (a server that is down, one that never answers) need no server at all.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use quarry_e2e::{Repo, Run};
use serde_json::Value;

/// Where the team store lives for one test: an Edge directory, or the test server with a
/// collection of the test's own.
struct Store {
    url: String,
    collection: String,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    fn edge() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Store {
            url: format!("edge://{}", dir.path().display()),
            collection: String::new(),
            _dir: Some(dir),
        }
    }

    /// The test server, or `None` (after saying so) when none is configured.
    fn server(test: &str) -> Option<Self> {
        let Ok(url) = std::env::var("QUARRY_TEST_QDRANT_URL") else {
            // Written past the test harness's capture, so every run shows it.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set QUARRY_TEST_QDRANT_URL to a Qdrant server (1.15 or newer) to run it"
            );
            return None;
        };
        Some(Store {
            url,
            collection: format!("quarry-e2e-{test}-{}", std::process::id()),
            _dir: None,
        })
    }

    fn env(&self) -> Vec<(&str, &str)> {
        let mut env = vec![("QUARRY_QDRANT_URL", self.url.as_str())];
        if !self.collection.is_empty() {
            env.push(("QUARRY_QDRANT_COLLECTION", self.collection.as_str()));
        }
        env
    }

    fn run(&self, repo: &Repo, args: &[&str]) -> Run {
        repo.quarry_env(args, &self.env())
    }

    fn search(&self, repo: &Repo, query: &str, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["search", query, "--json"];
        all.extend_from_slice(args);
        let run = self.run(repo, &all).success();
        serde_json::from_str(&run.stdout()).expect("hits")
    }

    fn status(&self, repo: &Repo) -> Value {
        let run = self.run(repo, &["status", "--json"]).success();
        serde_json::from_str(&run.stdout()).expect("status json")
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A checkout of the rust-shop fixture with `origin` set, committed.
fn checkout() -> Repo {
    let repo = Repo::fixture("rust-shop");
    repo.write(".gitignore", ".quarry/\ntarget/\n");
    git(repo.path(), &["init", "-q"]);
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "git@example.com:acme/rust-shop.git",
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "shop"]);
    repo
}

/// A clone of `repo` with the same `origin`: another machine's checkout.
fn clone_of(repo: &Repo) -> Repo {
    let clone = Repo::empty();
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(repo.path())
        .arg(clone.path())
        .status()
        .expect("git clone");
    assert!(status.success());
    git(
        clone.path(),
        &[
            "remote",
            "set-url",
            "origin",
            "git@example.com:acme/rust-shop.git",
        ],
    );
    clone
}

fn symbols(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["symbol"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// CI indexes, a laptop (another clone, no local index) searches and asks for status; a
/// change on CI's side reaches the laptop's searches incrementally.
fn team_workflow(store: &Store) {
    let ci = checkout();
    let summary = store.run(&ci, &["index"]).success().stdout();
    assert!(summary.contains("team collection"), "{summary}");
    assert!(summary.contains(" vectors"), "{summary}");

    let laptop = clone_of(&ci);
    let hits = store.search(
        &laptop,
        "undo a purchase and put the items back on the shelf",
        &["-k", "3"],
    );
    assert!(
        symbols(&hits).contains(&"crate::store::ProductStore::release".to_string()),
        "{hits:?}"
    );
    assert!(hits[0]["text"].as_str().is_some_and(|t| !t.is_empty()));
    // Keyword mode is BM25 on the store's sparse vectors; a bare identifier lifts its
    // definition to the top.
    let hits = store.search(
        &laptop,
        "OrderStore::cancel",
        &["-k", "3", "--mode", "keyword"],
    );
    assert_eq!(
        hits[0]["symbol"], "crate::store::OrderStore::cancel",
        "{hits:?}"
    );
    // Fourth at the 128-token window, as in the local index (semantic.rs).
    let hits = store.search(
        &laptop,
        "reject unauthenticated modifications",
        &["-k", "5", "--mode", "vector"],
    );
    assert!(
        symbols(&hits).contains(&"crate::handlers::require_admin_for_writes".to_string()),
        "{hits:?}"
    );
    let filtered = store.search(&laptop, "stock", &["-k", "5", "--path", "src/store.rs"]);
    assert!(!filtered.is_empty());
    assert!(
        filtered.iter().all(|h| h["path"] == "src/store.rs"),
        "{filtered:?}"
    );
    // The laptop only read: it has no index of its own.
    assert!(!laptop.path().join(".quarry/manifest.json").exists());

    let status = store.status(&laptop);
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["repository"], "example.com/acme/rust-shop");
    assert_eq!(status["points"], status["chunks"], "{status}");
    assert_eq!(status["files"], 12, "{status}");
    assert_eq!(status["lag"]["commits_behind"], 0, "{status}");

    // CI: one file changes, one goes, one commit.
    ci.write(
        "src/store.rs",
        ci.read("src/store.rs")
            + "\n/// Applies a seasonal markdown to every price.\npub fn apply_markdown(percent: u32) -> u32 { percent }\n",
    );
    ci.remove("src/error.rs");
    git(ci.path(), &["add", "-A"]);
    git(ci.path(), &["commit", "-q", "-m", "markdown"]);
    let summary = store.run(&ci, &["index"]).success().stdout();
    assert!(summary.contains("1 file indexed, 1 removed"), "{summary}");
    let hits = store.search(&laptop, "apply_markdown", &["-k", "1", "--mode", "keyword"]);
    assert_eq!(
        hits[0]["symbol"], "crate::store::apply_markdown",
        "{hits:?}"
    );
    let gone = store.search(&laptop, "ShopError", &["-k", "20", "--mode", "keyword"]);
    assert!(gone.iter().all(|h| h["path"] != "src/error.rs"), "{gone:?}");
    // The laptop has not pulled: the index is one commit ahead of its HEAD.
    let status = store.status(&laptop);
    assert_eq!(status["lag"]["commits_behind"], Value::Null, "{status}");
    assert_eq!(status["files"], 11, "{status}");
    assert_eq!(status["points"], status["chunks"], "{status}");

    // A fresh CI clone of the same commit (new mtimes everywhere) re-embeds nothing.
    let fresh = clone_of(&ci);
    let stdout = store.run(&fresh, &["index"]).success().stdout();
    assert!(stdout.contains("is up to date"), "{stdout}");
    assert!(!stdout.contains("embedded"), "{stdout}");
}

#[test]
fn a_team_index_on_an_edge_store_serves_ci_and_laptops() {
    team_workflow(&Store::edge());
}

#[test]
fn a_team_index_on_a_qdrant_server_serves_ci_and_laptops() {
    let Some(store) = Store::server("workflow") else {
        return;
    };
    team_workflow(&store);
}

#[test]
fn an_interrupted_team_sync_is_repaired_by_the_next_run() {
    let store = Store::edge();
    let repo = checkout();
    // The sync driver's crash points (`tests/crash.rs` runs every one on both indexes).
    for point in ["after-journal", "after-commit", "after-manifest"] {
        let mut env = store.env();
        env.push(("QUARRY_FAILPOINT", point));
        let crashed = repo.quarry_env(&["index", "--rebuild"], &env);
        assert!(!crashed.output.status.success(), "{point} should crash");
        let status = store.status(&repo);
        assert_eq!(status["state"], "syncing", "{point}: {status}");

        let repaired = store.run(&repo, &["index"]).success();
        assert!(
            repaired.stderr().contains("interrupted"),
            "{point}: {}",
            repaired.stderr()
        );
        let status = store.status(&repo);
        assert_eq!(status["state"], "ready", "{point}: {status}");
        assert_eq!(status["files"], 12, "{point}: {status}");
        assert_eq!(status["points"], status["chunks"], "{point}: {status}");
        let hits = store.search(&repo, "ProductStore::release", &["-k", "1"]);
        assert_eq!(hits[0]["symbol"], "crate::store::ProductStore::release");
    }
}

#[test]
fn a_collection_of_another_model_is_never_mixed_into() {
    let store = Store::edge();
    let repo = checkout();
    let env = {
        let mut env = store.env();
        env.push(("QUARRY_QDRANT_COLLECTION", "shared"));
        env
    };
    repo.quarry_env(&["index"], &env).success();
    // Another model wrote this collection: rewrite its recorded model as such.
    let dir = store.url.trim_start_matches("edge://");
    let ledger_path = Path::new(dir).join("shared-ledger.json");
    let mut ledger: Value =
        serde_json::from_slice(&std::fs::read(&ledger_path).expect("ledger")).expect("json");
    ledger["meta"]["model_id"] = Value::from("bge-large-en@1/512/1024");
    ledger["meta"]["dims"] = Value::from(1024);
    std::fs::write(&ledger_path, serde_json::to_vec(&ledger).expect("json")).expect("write");

    let error = repo.quarry_env(&["index"], &env).one_line_error();
    assert!(error.contains("bge-large-en"), "{error}");
    assert!(error.contains("1024 dims"), "{error}");
    assert!(error.contains("[store] collection"), "{error}");
    // --rebuild replaces it with this model's index.
    repo.quarry_env(&["index", "--rebuild"], &env).success();
    let hits = repo
        .quarry_env(&["search", "OrderStore::cancel", "--json", "-k", "1"], &env)
        .success();
    assert!(hits.stdout().contains("crate::store::OrderStore::cancel"));
}

#[test]
fn searching_an_empty_team_store_says_to_index_it_first() {
    let store = Store::edge();
    let repo = checkout();
    let error = store.run(&repo, &["search", "cancel"]).one_line_error();
    assert!(error.contains("no team index"), "{error}");
    assert!(error.contains("quarry index"), "{error}");
    let status = store.status(&repo);
    assert_eq!(status["state"], "empty", "{status}");
    let error = store
        .run(&repo, &["index", "--keyword-only"])
        .one_line_error();
    assert!(error.contains("needs the embedding model"), "{error}");
}

#[test]
fn a_server_that_is_down_is_one_clear_line_and_no_hang() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let repo = Repo::fixture("rust-shop");
    for args in [
        &["index"][..],
        &["search", "cancel an order"][..],
        &["status"][..],
    ] {
        let started = Instant::now();
        let error = repo
            .quarry_env(args, &[("QUARRY_QDRANT_URL", url.as_str())])
            .one_line_error();
        assert!(error.contains(&url), "{error}");
        assert!(error.contains("connecting failed"), "{error}");
        assert!(error.contains("connection refused"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts connections and says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            open.push(stream);
        }
    });
    let repo = Repo::fixture("rust-shop");
    repo.write("quarry.toml", "[store]\ntimeout_secs = 2\n");
    let started = Instant::now();
    let error = repo
        .quarry_env(&["status"], &[("QUARRY_QDRANT_URL", url.as_str())])
        .one_line_error();
    assert!(error.contains(&url), "{error}");
    assert!(
        error.contains("no answer within 2 s") || error.contains("timed out"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_daemon_refuses_to_keep_a_local_index_beside_a_team_store() {
    let store = Store::edge();
    let repo = checkout();
    let error = store.run(&repo, &["daemon"]).one_line_error();
    assert!(error.contains("daemon keeps a local index"), "{error}");
    assert!(!repo.path().join(".quarry/manifest.json").exists());
}
