//! A sync killed at any point leaves an index the next `quarry index` repairs, and that never
//! returns hits for deleted code.

use std::process::{Command, Stdio};
use std::time::Duration;

use quarry_e2e::{Backend, Repo, any_text_contains, on_each_backend, paths, quarry_bin};

/// Every crash point between two writes of a sync (the driver's, so both indexes have them).
const CRASH_POINTS: [&str; 5] = [
    "after-journal",
    "before-commit",
    "after-commit",
    "after-manifest",
    "vector-phase-write",
];

on_each_backend!(crash_at_every_point_is_repaired);

fn crash_at_every_point_is_repaired(backend: Backend) {
    for point in CRASH_POINTS {
        let repo = Repo::fixture("rust-shop").on(backend);
        repo.index();
        // A change set touching every kind of write: add, modify, delete.
        repo.write("src/ghost.rs", "pub fn ghost_marker_fn() {}\n");
        let router = repo
            .read("src/router.rs")
            .replace("fn parse_query", "fn parse_query_string");
        repo.write("src/router.rs", router);
        repo.remove("src/upload.rs");

        let run = repo.quarry_env(&["index"], &[("QUARRY_FAILPOINT", point)]);
        assert!(!run.output.status.success(), "{point}: the run must die");

        // The file added before the crash disappears before the repair.
        repo.remove("src/ghost.rs");
        if point != "after-manifest" {
            assert!(repo.interrupted(), "{point}: {}", repo.status());
        }
        let run = repo.quarry(&["index"]).success();
        assert!(
            run.stderr().contains("interrupted"),
            "{point}: {}",
            run.stderr()
        );

        let ghost = repo.search("ghost_marker_fn", &["-k", "20"]);
        assert!(
            !any_text_contains(&ghost, "ghost_marker_fn"),
            "{point}: ghost hit {ghost:?}"
        );
        let upload = repo.search("upload_with_retry", &["-k", "20"]);
        assert!(
            !paths(&upload).contains(&"src/upload.rs".to_string()),
            "{point}: deleted file"
        );
        let renamed = repo.search("parse_query_string", &["-k", "3"]);
        assert_eq!(
            renamed[0]["symbol"], "crate::router::parse_query_string",
            "{point}"
        );

        let again = repo.index();
        assert!(again.contains("is up to date"), "{point}: {again}");
        assert!(repo.settled(), "{point}: {}", repo.status());
    }
}

#[test]
fn killed_at_random_moments_the_index_is_repaired() {
    let repo = Repo::empty();
    for i in 0..400 {
        repo.write(
            &format!("src/module_{i}.rs"),
            format!(
                "/// Item {i}.\npub fn function_number_{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n"
            ),
        );
    }
    for delay_ms in [2u64, 8, 20, 40, 80] {
        let mut child = Command::new(quarry_bin())
            .args(["index", "--rebuild"])
            .current_dir(repo.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn quarry");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        repo.quarry(&["index"]).success();
        let again = repo.index();
        assert!(
            again.contains("is up to date"),
            "after kill at {delay_ms} ms: {again}"
        );
        assert!(
            again.contains("400 files"),
            "after kill at {delay_ms} ms: {again}"
        );
        let hits = repo.search("function_number_399", &["-k", "1"]);
        assert_eq!(hits[0]["path"], "src/module_399.rs");
    }
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let lock_path = repo.path().join(".quarry/lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .expect("lock file");
    lock.try_lock().expect("take the lock");
    std::fs::write(&lock_path, "4242").expect("write holder pid");
    let error = repo.quarry(&["index"]).one_line_error();
    assert!(
        error.contains("another quarry process (pid 4242)"),
        "{error}"
    );
    let status = repo.quarry(&["status", "--json"]).success().stdout();
    assert!(status.contains("\"writer\": \"indexing\""), "{status}");
    // Readers are not blocked by a writer: between its writes the vector shard is theirs.
    assert!(!repo.search("NoteStore", &["--mode", "vector"]).is_empty());
    // While it writes vectors (it holds the shard's lease), hybrid search answers from the
    // keyword index and says so; vector search waits a moment, then says why it cannot.
    let shard = std::fs::OpenOptions::new()
        .write(true)
        .open(repo.path().join(".quarry/vectors/shard.lock"))
        .expect("shard lock file");
    shard.try_lock().expect("take the shard's lease");
    let run = repo.quarry(&["search", "NoteStore", "--json"]).success();
    assert!(
        run.stdout().contains("notes/storage.py"),
        "{}",
        run.stdout()
    );
    assert!(run.stderr().contains("keyword results"), "{}", run.stderr());
    let error = repo
        .quarry(&["search", "NoteStore", "--mode", "vector"])
        .one_line_error();
    assert!(
        error.contains("being written by another quarry process"),
        "{error}"
    );
    drop(shard);
    drop(lock);
    assert!(!repo.search("NoteStore", &["--mode", "vector"]).is_empty());
    repo.quarry(&["index"]).success();
}
