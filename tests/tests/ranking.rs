//! The file view, whole items out of windows, and the optional reranker, as a user sees them.

use quarry_e2e::{Backend, Repo};
use serde_json::Value;

#[test]
fn the_file_view_json_is_the_documented_contract() {
    for backend in [Backend::Local, Backend::Team] {
        file_view_contract(backend);
    }
}

fn file_view_contract(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    repo.index();
    let files = repo.search("cancel an order", &["--files", "-k", "4"]);
    assert!(!files.is_empty() && files.len() <= 4, "{files:?}");
    let mut seen = std::collections::HashSet::new();
    for file in &files {
        let object = file.as_object().expect("each file is an object");
        if let Some(test) = object.get("test") {
            assert_eq!(test, true, "test is present only when true: {file}");
        }
        let mut keys: Vec<&str> = object
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "test")
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["lang", "path", "score", "spans"]);
        let path = file["path"].as_str().expect("path");
        assert!(seen.insert(path.to_string()), "each file once: {path}");
        let lines = repo.read(path).lines().count() as u64;
        let spans = file["spans"].as_array().expect("spans");
        assert!((1..=3).contains(&spans.len()), "{file}");
        for span in spans {
            let mut keys: Vec<&str> = span
                .as_object()
                .expect("span object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["end_line", "kind", "score", "start_line", "symbol"]);
            let (start, end) = (span["start_line"].as_u64(), span["end_line"].as_u64());
            assert!(
                start >= Some(1) && start <= end && end <= Some(lines),
                "{span}"
            );
        }
    }
    let scores: Vec<f64> = files.iter().filter_map(|f| f["score"].as_f64()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(files[0]["path"], "src/store.rs", "{files:?}");

    let error = repo
        .quarry(&["search", "cancel", "--files", "--source", "commits"])
        .one_line_error();
    assert!(error.contains("--files"), "{error}");
}

/// A method whose doc comment alone is longer than a chunk: it is indexed as windows.
fn long_doc_method() -> String {
    let mut text = String::from("pub struct Notify;\n\nimpl Notify {\n");
    text.push_str(
        "    /// Wakes exactly one waiting listener, or stores a permit for the next one.\n",
    );
    for i in 0..120 {
        text.push_str(&format!(
            "    /// let example_{i} = Notify::new(); example_{i}.wait();\n"
        ));
    }
    text.push_str("    pub fn notify_one(&self) {\n        self.wake(1);\n    }\n\n");
    text.push_str("    fn wake(&self, _n: usize) {}\n}\n");
    text
}

#[test]
fn a_hit_on_a_window_is_the_whole_item() {
    for backend in [Backend::Local, Backend::Team] {
        window_hit_is_the_whole_item(backend);
    }
}

fn window_hit_is_the_whole_item(backend: Backend) {
    let repo = Repo::fixture("rust-shop").on(backend);
    let text = long_doc_method();
    repo.write("src/notify.rs", &text);
    repo.index();
    let hits = repo.search(
        "wakes exactly one waiting listener stores a permit",
        &["-k", "3", "--mode", "keyword"],
    );
    let hit = hits
        .iter()
        .find(|h| h["symbol"] == "crate::notify::Notify::notify_one")
        .unwrap_or_else(|| panic!("notify_one found: {hits:?}"));
    let lines: Vec<&str> = text.lines().collect();
    let fn_line = lines
        .iter()
        .position(|l| l.contains("pub fn notify_one"))
        .map(|i| i as u64 + 1);
    let (start, end) = (hit["start_line"].as_u64(), hit["end_line"].as_u64());
    assert!(start <= fn_line && fn_line <= end, "{hit}");
    let (start, end) = (start.unwrap_or(1) as usize, end.unwrap_or(1) as usize);
    assert_eq!(
        hit["text"].as_str(),
        Some(lines[start - 1..end].join("\n").as_str())
    );
    let windows = hits
        .iter()
        .filter(|h| h["symbol"] == "crate::notify::Notify::notify_one")
        .count();
    assert_eq!(windows, 1, "one hit per item: {hits:?}");
}

#[test]
fn the_reranker_is_off_by_default_and_a_broken_one_never_fails_a_search() {
    let repo = Repo::fixture("rust-shop");
    repo.index();
    let config = repo.quarry(&["config"]).success().stdout();
    let line = config
        .lines()
        .find(|l| l.contains("search.reranker"))
        .unwrap_or_default()
        .to_string();
    assert!(!line.is_empty(), "{config}");
    assert!(!line.contains("jina") && !line.contains("bge"), "{line}");
    let plain = repo
        .quarry(&["search", "retry failed upload", "--json"])
        .success();
    assert!(!plain.stderr().contains("reranker"), "{}", plain.stderr());

    // A model that cannot be loaded (here: not a reranker at all, so nothing is fetched).
    let run = repo
        .quarry_env(
            &["search", "retry failed upload", "--json"],
            &[("QUARRY_RERANKER", "sentence-transformers/no-such-reranker")],
        )
        .success();
    let hits: Vec<Value> = serde_json::from_str(&run.stdout()).expect("JSON hits");
    assert_eq!(
        hits.first().map(|h| &h["path"]),
        Some(&Value::from("src/upload.rs"))
    );
    assert!(run.stderr().contains("signals alone"), "{}", run.stderr());
}
