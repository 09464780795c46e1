//! Bad input gets one line naming the problem and the fix, and a non-zero exit.

use std::fs;

use quarry_e2e::Repo;

#[test]
fn search_without_an_index() {
    let repo = Repo::fixture("py-notes");
    let error = repo.quarry(&["search", "note"]).one_line_error();
    assert!(error.contains("no index at"), "{error}");
    assert!(error.contains("run `quarry index"), "{error}");
    let error = repo.quarry(&["status"]).one_line_error();
    assert!(error.contains("no index at"), "{error}");
}

#[test]
fn paths_that_do_not_exist() {
    let repo = Repo::empty();
    let error = repo.quarry(&["index", "no/such/dir"]).one_line_error();
    assert_eq!(error, "error: path does not exist: no/such/dir");
    let error = repo
        .quarry(&["search", "x", "--root", "nowhere"])
        .one_line_error();
    assert!(error.contains("path does not exist: nowhere"), "{error}");
    repo.write("file.txt", "x");
    let error = repo.quarry(&["index", "file.txt"]).one_line_error();
    assert!(error.contains("not a directory"), "{error}");
}

#[test]
fn empty_query_and_zero_k() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let error = repo.quarry(&["search", "  "]).one_line_error();
    assert!(error.contains("empty query"), "{error}");
    let error = repo.quarry(&["search", "note", "-k", "0"]).one_line_error();
    assert!(error.contains("-k must be at least 1"), "{error}");
    let error = repo
        .quarry(&["search", "note", "--lang", "cobol"])
        .one_line_error();
    assert!(error.contains("unknown language `cobol`"), "{error}");
    let error = repo
        .quarry(&["search", "note", "--path", "src/[a"])
        .one_line_error();
    assert!(error.contains("invalid --path glob"), "{error}");
}

#[test]
fn a_corrupt_manifest_is_reported_then_rebuilt() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    fs::write(repo.path().join(".quarry/manifest.json"), "{ half written").expect("corrupt");
    let error = repo.quarry(&["status"]).one_line_error();
    assert!(error.contains("is corrupt"), "{error}");
    assert!(
        error.contains("run `quarry index` to rebuild it"),
        "{error}"
    );
    let run = repo.quarry(&["index"]).success();
    assert!(
        run.stderr().contains("rebuilding the index"),
        "{}",
        run.stderr()
    );
    assert!(!repo.search("NoteStore", &[]).is_empty());
}

#[test]
fn a_corrupt_keyword_index_is_reported_then_rebuilt() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    fs::write(repo.path().join(".quarry/keyword/meta.json"), "garbage").expect("corrupt");
    let error = repo.quarry(&["search", "router"]).one_line_error();
    assert!(error.contains("is corrupt"), "{error}");
    let run = repo.quarry(&["index"]).success();
    assert!(
        run.stderr().contains("rebuilding the index"),
        "{}",
        run.stderr()
    );
    assert!(!repo.search("router", &[]).is_empty());
}

#[test]
fn missing_segments_are_detected_and_rebuilt() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let keyword = repo.path().join(".quarry/keyword");
    for entry in fs::read_dir(&keyword).expect("keyword dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "store") {
            fs::remove_file(path).expect("remove segment file");
        }
    }
    let run = repo.quarry(&["index"]).success();
    assert!(
        run.stderr().contains("rebuilding the index"),
        "{}",
        run.stderr()
    );
    let hits = repo.search("LruCache", &[]);
    assert!(!hits.is_empty());
}

#[test]
fn an_index_from_another_schema_version_is_rebuilt() {
    let repo = Repo::fixture("py-notes");
    repo.index();
    let manifest = repo.path().join(".quarry/manifest.json");
    let text = fs::read_to_string(&manifest).expect("manifest");
    let current = fs::read_to_string(repo.path().join(".quarry/VERSION")).expect("version");
    let stamp = format!("\"schema_version\":{}", current.trim());
    assert!(text.contains(&stamp), "{stamp} not in the manifest");
    fs::write(&manifest, text.replacen(&stamp, "\"schema_version\":0", 1)).expect("write");
    fs::write(repo.path().join(".quarry/VERSION"), "0").expect("version");
    let error = repo.quarry(&["search", "note"]).one_line_error();
    assert!(error.contains("schema version 0"), "{error}");
    let run = repo.quarry(&["index"]).success();
    assert!(
        run.stderr().contains("index schema changed"),
        "{}",
        run.stderr()
    );
    assert!(!repo.search("note", &[]).is_empty());
}

#[test]
fn bad_flags_are_usage_errors() {
    let repo = Repo::empty();
    let run = repo.quarry(&["index", "--max-file-size", "huge"]);
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("is not a size"), "{}", run.stderr());
}

#[test]
fn bad_llm_settings_fail_only_the_commands_that_call_an_llm() {
    for section in ["[llm]\nprovider = \"bogus\"\n", "[llm]\nmodle = \"typo\"\n"] {
        let repo = Repo::fixture("rust-shop");
        repo.write("quarry.toml", section);
        repo.index();
        for mode in ["keyword", "hybrid", "vector"] {
            let hits = repo.search("parse headers", &["--mode", mode, "-k", "3"]);
            assert!(!hits.is_empty(), "{section} {mode}");
        }
        repo.quarry(&["status"]).success();
        let session = quarry_e2e::mcp_session(&repo, &[] as &[&str]);
        assert_eq!(session["search"]["is_error"], false, "{section}: {session}");
        assert_eq!(session["status"]["is_error"], false, "{section}: {session}");

        // The commands that call an LLM say what is wrong, in one line.
        let wrong = if section.contains("bogus") {
            "bogus"
        } else {
            "modle"
        };
        let error = repo
            .quarry(&["ask", "how are uploads retried?"])
            .one_line_error();
        assert!(error.contains(wrong), "{error}");
        let error = repo
            .quarry(&["edit", "add a timeout", "--dry-run"])
            .one_line_error();
        assert!(error.contains(wrong), "{error}");
        assert_eq!(session["ask_without_llm"]["is_error"], true, "{session}");
        assert!(
            session["ask_without_llm"]["text"]
                .as_str()
                .is_some_and(|t| t.contains(wrong)),
            "{session}"
        );
    }
}
