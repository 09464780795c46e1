//! Re-indexing touches only what changed: adds, edits, renames and deletes, on the local
//! and the team index alike (one body each, run against both).

use quarry_e2e::{Backend, Repo, any_text_contains, on_each_backend, paths};

on_each_backend!(
    nothing_changed_means_nothing_done,
    added_files_become_searchable,
    modified_files_replace_their_old_chunks,
    touching_without_changing_content_rewrites_nothing,
    renamed_files_move_their_chunks,
    deleted_files_leave_no_hits,
    changing_chunk_settings_rebuilds_with_a_message,
);

fn search_symbol(repo: &Repo, query: &str) -> Vec<serde_json::Value> {
    repo.search(query, &["-k", "5"])
}

fn nothing_changed_means_nothing_done(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    repo.index();
    let again = repo.index();
    assert!(again.contains("is up to date"), "{again}");
    assert_eq!(repo.status()["last_run"]["files_indexed"], 0);
}

fn added_files_become_searchable(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    repo.index();
    repo.write(
        "src/coupon.rs",
        "/// Applies a coupon code.\npub fn redeem_coupon_code(code: &str) -> u8 { code.len() as u8 }\n",
    );
    let summary = repo.index();
    assert!(summary.contains("(1 file indexed, 0 removed"), "{summary}");
    let hits = search_symbol(&repo, "redeem coupon");
    assert_eq!(hits[0]["symbol"], "crate::coupon::redeem_coupon_code");
}

fn modified_files_replace_their_old_chunks(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    repo.index();
    let original = repo.read("notes/export.py");
    let edited = original.replace(
        "def slugify(title: str) -> str:",
        "def make_url_slug(title: str) -> str:",
    );
    assert_ne!(original, edited);
    repo.write("notes/export.py", edited);
    let summary = repo.index();
    assert!(summary.contains("(1 file indexed"), "{summary}");
    let hits = search_symbol(&repo, "make_url_slug");
    assert_eq!(hits[0]["symbol"], "notes.export.make_url_slug");
    let old = repo.search("slugify", &["-k", "20", "--path", "notes/export.py"]);
    assert!(
        !any_text_contains(&old, "def slugify"),
        "old definition is gone"
    );
}

fn touching_without_changing_content_rewrites_nothing(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    repo.index();
    let content = repo.read("notes/search.py");
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.write("notes/search.py", content);
    let summary = repo.index();
    assert!(summary.contains("is up to date"), "{summary}");
    let run = &repo.status()["last_run"];
    assert_eq!(run["chunks_written"], 0, "{run}");
    assert_eq!(run["chunks_embedded"], 0, "nothing re-embedded: {run}");
}

fn renamed_files_move_their_chunks(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    repo.index();
    let cache = repo.read("src/cache.rs");
    repo.remove("src/cache.rs");
    repo.write("src/lru.rs", cache);
    let summary = repo.index();
    assert!(summary.contains("1 file indexed, 1 removed"), "{summary}");
    let hits = repo.search("evict least recently used", &["-k", "10"]);
    let found = paths(&hits);
    assert!(found.contains(&"src/lru.rs".to_string()), "{found:?}");
    assert!(!found.contains(&"src/cache.rs".to_string()), "{found:?}");
}

fn deleted_files_leave_no_hits(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    repo.index();
    assert!(!repo.search("UploadQueue", &[]).is_empty());
    repo.remove("src/upload.rs");
    let summary = repo.index();
    assert!(summary.contains("0 files indexed, 1 removed"), "{summary}");
    let hits = repo.search("UploadQueue drain", &["-k", "20"]);
    assert!(!paths(&hits).contains(&"src/upload.rs".to_string()));
}

fn changing_chunk_settings_rebuilds_with_a_message(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    repo.index();
    let run = repo.quarry(&["index", "--chunk-tokens", "128"]).success();
    assert!(
        run.stderr()
            .contains("rebuilding the index: chunk settings changed"),
        "{}",
        run.stderr()
    );
    // The setting sticks: the next plain run does not rebuild again.
    let run = repo.quarry(&["index"]).success();
    assert!(run.stdout().contains("is up to date"), "{}", run.stdout());
    assert!(!run.stderr().contains("rebuilding"));
}
