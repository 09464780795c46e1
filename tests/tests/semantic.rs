//! Semantic and hybrid search: embeddings, the vector cache, model changes, fusion, filters,
//! and the two stores staying consistent across crashes.

use std::path::Path;

use quarry_e2e::{Repo, any_text_contains, paths};
use serde_json::Value;

fn symbols(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["symbol"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn status(repo: &Repo) -> Value {
    serde_json::from_str(&repo.quarry(&["status", "--json"]).success().stdout()).expect("json")
}

#[test]
fn finds_code_by_meaning_when_no_word_matches() {
    let repo = Repo::fixture("rust-shop");
    let summary = repo.index();
    assert!(summary.contains(" vectors"), "{summary}");
    let query = "reject unauthenticated modifications";
    // Fourth at the 128-token window: its doc, written twice in the embedded text (before
    // the code and in it), pushes the code's last line out. Embedding the doc once puts it
    // first here but lowered MRR@10 on bench/eval (0.473 -> 0.466 hybrid).
    let vector = symbols(&repo.search(query, &["-k", "5", "--mode", "vector"]));
    assert!(
        vector.contains(&"crate::handlers::require_admin_for_writes".to_string()),
        "{vector:?}"
    );
    let keyword = symbols(&repo.search(query, &["-k", "5", "--mode", "keyword"]));
    assert!(!keyword.contains(&"crate::handlers::require_admin_for_writes".to_string()));

    let hybrid = symbols(&repo.search(
        "undo a purchase and put the items back on the shelf",
        &["-k", "3"],
    ));
    assert!(
        hybrid.contains(&"crate::store::ProductStore::release".to_string()),
        "{hybrid:?}"
    );
}

#[test]
fn exact_identifiers_put_the_definition_first() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    for (query, symbol) in [
        ("Config::load", "crate::config::Config::load"),
        ("upload_with_retry", "crate::upload::upload_with_retry"),
        ("Router dispatch", "crate::router::Router::dispatch"),
        ("LruCache", "crate::cache::LruCache"),
    ] {
        let hits = repo.search(query, &["-k", "3"]);
        assert_eq!(hits[0]["symbol"], symbol, "{query}: {:?}", symbols(&hits));
    }
    let py = Repo::fixture("py-notes");
    py.index();
    let hits = py.search("NoteStore add", &["-k", "3"]);
    assert_eq!(hits[0]["symbol"], "notes.storage.NoteStore.add");
}

#[test]
fn explain_shows_both_rankings() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let hits = repo.search(
        "cancel an order and return its stock",
        &["-k", "5", "--explain"],
    );
    assert!(hits.iter().all(|h| h.get("explain").is_some()));
    let both = hits.iter().any(|h| {
        h["explain"]["keyword_rank"].as_u64().is_some()
            && h["explain"]["vector_rank"].as_u64().is_some()
    });
    assert!(both, "some hit is ranked by both retrievers: {hits:?}");
    let plain = repo.search("cancel an order", &["-k", "1"]);
    assert!(
        plain[0].get("explain").is_none(),
        "the contract is unchanged without --explain"
    );
    let human = repo
        .quarry(&["search", "cancel an order", "-k", "2", "--explain"])
        .success()
        .stdout();
    assert!(
        human.contains("keyword #") && human.contains("vector #"),
        "{human}"
    );
}

#[test]
fn unchanged_chunks_are_never_embedded_again() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let first = status(&repo);
    let embedded = first["last_run"]["chunks_embedded"]
        .as_u64()
        .expect("embedded");
    assert!(embedded > 50, "{first}");
    assert_eq!(first["vectors"], first["last_run"]["chunks_embedded"]);

    // Lines move (every chunk below gets a new span and id), content does not.
    let text = repo.read("notes/storage.py");
    repo.write("notes/storage.py", format!("# moved down\n\n{text}"));
    // A file moves to another path.
    let search = repo.read("notes/search.py");
    repo.remove("notes/search.py");
    repo.write("notes/ranking.py", search);
    let summary = repo.index();
    assert!(summary.contains("2 files indexed"), "{summary}");
    let second = status(&repo);
    assert_eq!(
        second["last_run"]["chunks_embedded"], 1,
        "only the new comment: {second}"
    );
    assert!(
        second["last_run"]["vectors_cached"].as_u64().unwrap_or(0) > 10,
        "{second}"
    );
    let hits = repo.search("TF-IDF ranking of notes", &["-k", "5", "--mode", "vector"]);
    assert!(
        paths(&hits).contains(&"notes/ranking.py".to_string()),
        "{hits:?}"
    );
    assert!(!paths(&hits).contains(&"notes/search.py".to_string()));
}

#[test]
fn deleting_a_file_deletes_its_vectors() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let before = status(&repo)["vectors"].as_u64().expect("vectors");
    repo.remove("src/upload.rs");
    repo.index();
    let after = status(&repo)["vectors"].as_u64().expect("vectors");
    assert!(after < before, "{before} -> {after}");
    let hits = repo.search(
        "retry failed uploads with backoff",
        &["-k", "20", "--mode", "vector"],
    );
    assert!(!paths(&hits).contains(&"src/upload.rs".to_string()));
}

#[test]
fn filters_apply_to_vector_search() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let methods = repo.search("remove an entry", &["--kind", "method", "--mode", "vector"]);
    assert!(!methods.is_empty());
    assert!(methods.iter().all(|h| h["kind"] == "method"), "{methods:?}");
    let markdown = repo.search(
        "how to run the tests",
        &["--lang", "markdown", "--mode", "vector"],
    );
    assert!(markdown.iter().all(|h| h["lang"] == "markdown"));
    let tests = repo.search(
        "orders",
        &["--path", "tests/**", "--mode", "vector", "-k", "3"],
    );
    assert!(!tests.is_empty());
    assert!(
        paths(&tests).iter().all(|p| p.starts_with("tests/")),
        "{tests:?}"
    );
    let error = repo
        .quarry(&["search", "x", "--kind", "methods"])
        .one_line_error();
    assert!(error.contains("unknown kind `methods`"), "{error}");
}

#[test]
fn a_crash_between_the_two_stores_is_repaired() {
    for point in [
        "between-stores",
        "after-commit",
        "after-journal",
        "vector-phase-write",
    ] {
        let repo = Repo::fixture("py-notes");
        repo.index();
        repo.write(
            "notes/ghost.py",
            "def vanishing_ghost_helper():\n    return 'spectre'\n",
        );
        repo.remove("notes/export.py");
        let run = repo.quarry_env(&["index"], &[("QUARRY_FAILPOINT", point)]);
        assert!(!run.output.status.success(), "{point}");
        repo.remove("notes/ghost.py");
        repo.quarry(&["index"]).success();
        for mode in ["vector", "keyword", "hybrid"] {
            let ghost = repo.search(
                "vanishing ghost helper spectre",
                &["-k", "20", "--mode", mode],
            );
            assert!(
                !any_text_contains(&ghost, "vanishing_ghost_helper"),
                "{point}/{mode}"
            );
            let export = repo.search("export notes as html", &["-k", "20", "--mode", mode]);
            assert!(
                !paths(&export).contains(&"notes/export.py".to_string()),
                "{point}/{mode}"
            );
        }
        let s = status(&repo);
        assert_eq!(s["writer"], "idle", "{point}");
        let again = repo.index();
        assert!(again.contains("is up to date"), "{point}: {again}");
    }
}

#[test]
fn changing_the_model_re_embeds_everything() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let model_dir = default_model_dir();
    let copy = tempfile::tempdir().expect("tmp");
    for entry in std::fs::read_dir(&model_dir).expect("model dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
    }
    let spec = copy.path().join("quarry-model.json");
    let text = std::fs::read_to_string(&spec).expect("spec");
    std::fs::write(
        &spec,
        text.replace("\"all-minilm-l6-v2-int8\"", "\"minilm-copy\""),
    )
    .expect("spec");
    let dir = copy.path().to_str().expect("utf-8");
    let run = repo
        .quarry_env(&["index"], &[("QUARRY_MODEL_DIR", dir)])
        .success();
    assert!(
        run.stderr().contains("embedding model changed"),
        "{}",
        run.stderr()
    );
    // Searching with another model than the index's is refused, in one line.
    let error = repo.quarry(&["search", "tags"]).one_line_error();
    assert!(error.contains("run `quarry index` to re-embed"), "{error}");
    let hits = repo
        .quarry_env(
            &["search", "count tags", "--json"],
            &[("QUARRY_MODEL_DIR", dir)],
        )
        .success();
    assert!(hits.stdout().contains("tag_counts"));
}

#[test]
fn keyword_only_indexes_skip_the_model() {
    let repo = Repo::fixture("py-notes");
    let summary = repo
        .quarry_env(
            &["index", "--keyword-only"],
            &[("QUARRY_MODEL_DIR", "/nonexistent")],
        )
        .success()
        .stdout();
    assert!(!summary.contains("vectors"), "{summary}");
    let s = status(&repo);
    assert_eq!(s["vectors"], 0);
    assert!(s["embed_model"].is_null());
    // Hybrid falls back to keyword; vector mode says what to do.
    let hits = repo.search("tag counts", &[]);
    assert!(any_text_contains(&hits, "def tag_counts"));
    let error = repo
        .quarry(&["search", "tags", "--mode", "vector"])
        .one_line_error();
    assert!(error.contains("has no vectors"), "{error}");
    // The setting sticks until --rebuild.
    let again = repo
        .quarry_env(&["index"], &[("QUARRY_MODEL_DIR", "/nonexistent")])
        .success()
        .stdout();
    assert!(again.contains("is up to date"), "{again}");
}

#[test]
fn a_missing_model_or_runtime_is_one_line_saying_what_to_run() {
    let repo = Repo::fixture("py-notes");
    let error = repo
        .quarry_env(&["index"], &[("QUARRY_MODEL_DIR", "/nonexistent/model")])
        .one_line_error();
    assert!(
        error.contains("no embedding model at /nonexistent/model"),
        "{error}"
    );
    assert!(error.contains("scripts/setup.sh"), "{error}");
    let error = repo
        .quarry_env(
            &["index"],
            &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
        )
        .one_line_error();
    assert!(error.contains("ONNX Runtime not found"), "{error}");
    assert!(error.contains("scripts/setup.sh"), "{error}");
}

fn default_model_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("QUARRY_MODEL_DIR") {
        return dir.into();
    }
    let cache = std::env::var_os("QUARRY_CACHE_DIR").map_or_else(
        || Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/quarry"),
        Into::into,
    );
    cache.join("models/all-minilm-l6-v2-int8")
}

#[test]
fn ctrl_c_stops_cleanly_and_the_next_run_resumes_from_the_cache() {
    let repo = Repo::empty();
    for i in 0..300 {
        repo.write(
            &format!("src/part_{i}.rs"),
            format!(
                "/// Computes value number {i} for the report.\npub fn compute_value_{i}(input: u64) -> u64 {{\n    input.wrapping_mul({i}) ^ 0x5eed\n}}\n"
            ),
        );
    }
    let child = std::process::Command::new(quarry_e2e::quarry_bin())
        .arg("index")
        .current_dir(repo.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted after"), "{stderr}");

    let s = status(&repo);
    assert_eq!(
        s["writer"], "idle",
        "a clean stop leaves nothing to repair: {s}"
    );
    let resumed = repo.index();
    assert!(resumed.contains("300 files"), "{resumed}");
    let s = status(&repo);
    let embedded = s["last_run"]["chunks_embedded"].as_u64().expect("embedded");
    assert!(embedded < 300, "work done before Ctrl-C is not redone: {s}");
    assert_eq!(s["vectors"], 300);
    let hits = repo.search("compute_value_7", &["-k", "1"]);
    assert_eq!(hits[0]["symbol"], "crate::part_7::compute_value_7");
}
