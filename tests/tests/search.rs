//! Indexing the fixtures and searching them, as a user would.

use quarry_e2e::{Repo, any_text_contains, paths};

#[test]
fn finds_rust_functions_by_what_they_do() {
    let repo = Repo::fixture("rust-shop");
    let summary = repo.index();
    assert!(summary.starts_with("indexed "), "{summary}");
    assert!(summary.contains(" chunks"), "{summary}");

    let hits = repo.search(
        "retry failed upload backoff",
        &["-k", "5", "--mode", "keyword"],
    );
    let top = &hits[0];
    assert_eq!(top["path"], "src/upload.rs");
    assert_eq!(top["symbol"], "crate::upload::upload_with_retry");
    assert_eq!(top["kind"], "function");
    assert_eq!(top["lang"], "rust");

    let hits = repo.search("Router dispatch", &["-k", "3"]);
    assert_eq!(hits[0]["symbol"], "crate::router::Router::dispatch");
    assert_eq!(hits[0]["kind"], "method");
}

#[test]
fn finds_python_functions_and_methods() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let hits = repo.search(
        "atomic write temporary file rename",
        &["-k", "3", "--mode", "keyword"],
    );
    assert_eq!(hits[0]["path"], "notes/storage.py");
    assert_eq!(hits[0]["symbol"], "notes.storage.atomic_write");

    let hits = repo.search("NoteStore add", &["-k", "3"]);
    assert_eq!(hits[0]["symbol"], "notes.storage.NoteStore.add");
    assert_eq!(hits[0]["kind"], "method");
}

#[test]
fn json_is_the_documented_contract() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let hits = repo.search("LruCache evict", &["-k", "10"]);
    assert!(!hits.is_empty());
    for hit in &hits {
        let object = hit.as_object().expect("each hit is an object");
        // `test` is written only on hits in test code, and then it is `true`.
        if let Some(test) = object.get("test") {
            assert_eq!(test, true, "test is present only when true: {hit}");
        }
        let mut keys: Vec<&str> = object
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "test")
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "end_line",
                "kind",
                "lang",
                "path",
                "score",
                "start_line",
                "symbol",
                "text"
            ]
        );
        let path = hit["path"].as_str().expect("path");
        assert!(
            !path.starts_with('/') && !path.contains('\\'),
            "relative path: {path}"
        );
        let start = hit["start_line"].as_u64().expect("start_line");
        let end = hit["end_line"].as_u64().expect("end_line");
        assert!(start >= 1 && start <= end);
        assert!(hit["score"].as_f64().is_some());
        // Functions and methods are verbatim: their text is exactly those lines of the file.
        if matches!(hit["kind"].as_str(), Some("function" | "method")) {
            let file = repo.read(path);
            let lines: Vec<&str> = file.lines().collect();
            let expected = lines[start as usize - 1..end as usize].join("\n");
            assert_eq!(hit["text"].as_str(), Some(expected.as_str()));
        }
    }
    let scores: Vec<f64> = hits.iter().filter_map(|h| h["score"].as_f64()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
}

#[test]
fn results_never_overlap_and_respect_k() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let hits = repo.search("order", &["-k", "7"]);
    assert_eq!(hits.len(), 7);
    for (i, a) in hits.iter().enumerate() {
        for b in &hits[i + 1..] {
            if a["path"] == b["path"] {
                let disjoint = a["end_line"].as_u64() < b["start_line"].as_u64()
                    || b["end_line"].as_u64() < a["start_line"].as_u64();
                assert!(disjoint, "overlapping hits: {a} / {b}");
            }
        }
    }
}

#[test]
fn filters_by_language_and_path() {
    let repo = Repo::fixture("py-notes");
    repo.write(
        "tools/helper.rs",
        "/// Parses notes quickly.\npub fn parse_notes() {}\n",
    );
    repo.index();
    let python = repo.search("parse notes", &["--lang", "python"]);
    assert!(!python.is_empty());
    assert!(python.iter().all(|h| h["lang"] == "python"));
    let rust = repo.search("parse notes", &["--lang", "rust"]);
    assert_eq!(paths(&rust), ["tools/helper.rs"]);
    let tests = repo.search("note", &["--path", "tests/**", "-k", "20"]);
    assert!(!tests.is_empty());
    assert!(paths(&tests).iter().all(|p| p.starts_with("tests/")));
    let folder = repo.search("note", &["--path", "notes"]);
    assert!(paths(&folder).iter().all(|p| p.starts_with("notes/")));
}

#[test]
fn markdown_and_config_files_are_searchable() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let hits = repo.search("running the tests", &["--lang", "markdown"]);
    assert_eq!(hits[0]["path"], "README.md");
    assert_eq!(hits[0]["kind"], "section");
    let toml = repo.search("rust-shop version", &["--lang", "toml"]);
    assert_eq!(paths(&toml), ["Cargo.toml"]);
}

#[test]
fn human_output_is_ripgrep_like() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let run = repo
        .quarry(&["search", "upload_with_retry", "-k", "1"])
        .success();
    let out = run.stdout();
    let first = out.lines().next().unwrap_or_default();
    assert!(first.starts_with("src/upload.rs:"), "{out}");
    assert!(first.contains("crate::upload::upload_with_retry"), "{out}");
    assert!(out.contains("│ pub fn upload_with_retry("), "{out}");
    assert!(
        !out.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );
}

#[test]
fn search_works_from_a_subdirectory() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let run = repo
        .quarry(&["search", "slugify", "--json", "--root", "notes"])
        .success();
    assert!(run.stdout().contains("notes/export.py"), "{}", run.stdout());
}

#[test]
fn status_reports_what_is_indexed() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let run = repo.quarry(&["status", "--json"]).success();
    let status: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert!(status["files"].as_u64().unwrap_or(0) >= 10);
    let python = &status["languages"]["python"];
    assert!(python["chunks"].as_u64().unwrap_or(0) > 50, "{status}");
    assert_eq!(status["writer"], "idle");
    assert_eq!(status["schema_version"], 6);
    assert!(status["size_bytes"].as_u64().unwrap_or(0) > 0);
    assert!(status["last_indexed_at"].as_u64().is_some());
    let human = repo.quarry(&["status"]).success().stdout();
    assert!(
        human.contains("chunks:") && human.contains("python"),
        "{human}"
    );
}

#[test]
fn custom_index_dir() {
    let repo = Repo::fixture("py-notes");
    let elsewhere = tempfile::tempdir().expect("tmp");
    let dir = elsewhere.path().join("idx");
    let dir = dir.to_str().expect("utf-8 path");
    repo.quarry(&["index", "--index-dir", dir]).success();
    assert!(!repo.path().join(".quarry").exists());
    let run = repo
        .quarry(&["search", "tag counts", "--json", "--index-dir", dir])
        .success();
    assert!(run.stdout().contains("tag_counts"));
    assert!(any_text_contains(
        &serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout()).expect("json"),
        "def tag_counts"
    ));
}
