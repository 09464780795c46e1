//! A sync in two phases, seen from other processes: the whole tree is searchable by
//! keyword while vectors are made, `status` tells how far the writer is, and searches say
//! what they searched.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quarry_e2e::{Repo, any_text_contains, quarry_bin};
use serde_json::Value;

/// Files in the generated repository: enough that embedding them takes some seconds.
const FILES: usize = 800;

fn many_files() -> Repo {
    let repo = Repo::empty();
    for i in 0..FILES {
        repo.write(
            &format!("src/module_{i:03}.rs"),
            format!(
                "/// Adds {i} to a reading taken by sensor {i}.\npub fn calibrate_sensor_{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n"
            ),
        );
    }
    repo
}

fn start_index(repo: &Repo) -> Child {
    Command::new(quarry_bin())
        .arg("index")
        .current_dir(repo.path())
        .env_remove("QUARRY_INDEX_DIR")
        .env_remove("QUARRY_FAILPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn quarry index")
}

/// `quarry status --json` while the index may not exist yet: `None` when it fails.
fn try_status(repo: &Repo) -> Option<Value> {
    let run = repo.quarry(&["status", "--json"]);
    if !run.output.status.success() {
        return None;
    }
    serde_json::from_str(&run.stdout()).ok()
}

/// Polls `status` until `done` holds for it or the writer exits; returns the last status
/// seen while the writer ran.
fn poll_status(repo: &Repo, child: &mut Child, done: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = None;
    while Instant::now() < deadline {
        if child.try_wait().expect("child").is_some() {
            return last;
        }
        if let Some(status) = try_status(repo) {
            if done(&status) {
                return Some(status);
            }
            last = Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    last
}

fn in_vector_phase(status: &Value) -> bool {
    status["progress"]["phase"] == "vectors"
}

#[test]
fn status_during_a_first_index_shows_the_writer_and_its_progress() {
    let repo = many_files();
    let mut child = start_index(&repo);
    let seen = poll_status(&repo, &mut child, |s| {
        s["writer"] == "indexing" && !s["progress"].is_null()
    });
    let status = seen.expect("status answered while the first index ran");
    assert_eq!(status["writer"], "indexing", "{status}");
    assert_eq!(
        status["writer_pid"].as_u64(),
        Some(u64::from(child.id())),
        "{status}"
    );
    let phase = status["progress"]["phase"].as_str().unwrap_or_default();
    assert!(
        ["scanning", "keyword", "vectors"].contains(&phase),
        "{status}"
    );
    let human = repo.quarry(&["status"]);
    if child.try_wait().expect("child").is_none() {
        let out = human.stdout();
        assert!(out.contains("indexing now (pid"), "{out}");
    }
    assert!(child.wait().expect("wait").success());
    let done = repo.status();
    assert_eq!(done["writer"], "idle");
    assert!(done["progress"].is_null(), "{done}");
    assert_eq!(done["vectors_pending"], 0);
    assert_eq!(done["vectors"], done["chunks"], "{done}");
}

#[test]
fn every_file_is_searchable_by_keyword_while_vectors_are_made() {
    let repo = many_files();
    let mut child = start_index(&repo);
    let status = poll_status(&repo, &mut child, in_vector_phase);
    let Some(status) = status.filter(in_vector_phase) else {
        let _ = child.kill();
        panic!("the vector phase was never seen");
    };
    let total = status["progress"]["vector_chunks_total"].as_u64();
    assert!(total >= Some(FILES as u64), "{status}");

    // The last file walked is there by keyword already.
    let last = format!("calibrate_sensor_{}", FILES - 1);
    let hits = repo.search(&last, &["--mode", "keyword", "-k", "3"]);
    assert!(any_text_contains(&hits, &last), "{hits:?}");

    // Hybrid answers too, over every file, and says the index is being built.
    let run = repo
        .quarry(&["search", &last, "--json", "-k", "3"])
        .success();
    assert!(run.stdout().contains(&last), "{}", run.stdout());
    if child.try_wait().expect("child").is_none() {
        assert!(run.stderr().contains("being updated"), "{}", run.stderr());
    }
    // Vector search reads the shard between the writer's commits, once a group is in.
    poll_status(&repo, &mut child, |s| {
        s["progress"]["vector_chunks_done"].as_u64() > Some(0)
    });
    let vector = repo.search("sensor reading calibration", &["--mode", "vector"]);
    assert!(!vector.is_empty());

    assert!(child.wait().expect("wait").success());
    let done = repo.status();
    assert_eq!(done["vectors"], done["chunks"], "{done}");
    let again = repo.index();
    assert!(again.contains("is up to date"), "{again}");
}

#[test]
fn vectors_a_stopped_run_left_out_are_made_by_the_next_one() {
    let repo = many_files();
    let mut child = start_index(&repo);
    let status = poll_status(&repo, &mut child, in_vector_phase);
    assert!(status.as_ref().is_some_and(in_vector_phase), "{status:?}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let _ = child.wait().expect("wait");

    let stopped = repo.status();
    let pending = stopped["vectors_pending"].as_u64().unwrap_or_default();
    assert!(pending > 0, "{stopped}");
    assert_eq!(stopped["files"], FILES, "{stopped}");
    // What has no vector yet is still found, by keyword, in hybrid mode.
    let last = format!("calibrate_sensor_{}", FILES - 1);
    let hits = repo.search(&last, &["-k", "3"]);
    assert!(any_text_contains(&hits, &last), "{hits:?}");

    let finished = repo.index();
    assert!(finished.contains("finished the vectors"), "{finished}");
    let done = repo.status();
    assert_eq!(done["vectors_pending"], 0, "{done}");
    assert_eq!(done["vectors"], done["chunks"], "{done}");
}
