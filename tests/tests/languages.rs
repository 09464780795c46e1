//! Every language with a grammar, end to end on `fixtures/polyglot` (one small file or two
//! of TypeScript, JSX, Go, Java, C, C++, C#, Ruby and PHP): `status` counts chunks per
//! language, `--lang` and `--kind` filter by them, and the graph commands answer across
//! languages.

use quarry_e2e::Repo;
use serde_json::Value;

fn json(repo: &Repo, args: &[&str]) -> Value {
    let run = repo.quarry(args).success();
    serde_json::from_str(&run.stdout()).expect("json")
}

fn indexed() -> Repo {
    let repo = Repo::fixture("polyglot");
    repo.quarry(&["index", "--keyword-only"]).success();
    repo
}

#[test]
fn status_counts_files_chunks_and_lines_in_symbols_per_language() {
    let repo = indexed();
    let status = json(&repo, &["status", "--json"]);
    let languages = status["languages"].as_object().expect("languages");
    for lang in [
        "c",
        "cpp",
        "csharp",
        "go",
        "java",
        "javascript",
        "php",
        "ruby",
        "typescript",
    ] {
        let chunks = languages[lang]["chunks"].as_u64().unwrap_or(0);
        assert!(chunks >= 3, "{lang}: {chunks} chunks in {status}");
        // Most of each fixture's code is functions, methods and types, not module code.
        let lines = languages[lang]["lines"].as_u64().unwrap_or(0);
        let in_symbols = languages[lang]["symbol_lines"].as_u64().unwrap_or(0);
        assert!(
            lines > 0 && in_symbols * 2 > lines && in_symbols <= lines,
            "{lang}: {in_symbols} of {lines} lines in symbols"
        );
    }
    let human = repo.quarry(&["status"]).success().stdout();
    assert!(human.contains("in symbols:  c "), "{human}");
}

#[test]
fn search_filters_by_language_and_kind_with_symbols_in_each_convention() {
    let repo = indexed();
    let hits = json(&repo, &["search", "serve", "--lang", "go", "--json"]);
    let hits = hits.as_array().expect("hits");
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["lang"] == "go"), "{hits:?}");
    assert_eq!(hits[0]["symbol"], "server.Server.ListenAndServe");
    assert_eq!(hits[0]["kind"], "method");

    let interfaces = json(
        &repo,
        &["search", "shape area", "--kind", "interface", "--json"],
    );
    let symbols: Vec<&str> = interfaces
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["symbol"].as_str())
        .collect();
    assert_eq!(symbols, ["Acme.Ui::IShape"]);

    let java = json(&repo, &["search", "opens the store", "--json", "-k", "1"]);
    assert_eq!(java[0]["symbol"], "com.acme.store.Store.open");
}

#[test]
fn the_graph_answers_in_every_language() {
    let repo = indexed();
    let defs = json(&repo, &["defs", "vec_push", "--json"]);
    let mut paths: Vec<&str> = defs["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .filter_map(|s| s["path"].as_str())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["src/vec.c", "src/vec.h"],
        "a definition and its prototype"
    );

    let callers = json(&repo, &["callers", "log", "--json"]);
    assert_eq!(callers["sites"][0]["path"], "app/Repo.php");
    assert_eq!(
        callers["sites"][0]["enclosing"],
        "App\\Data\\UserRepo::find"
    );

    let refs = json(&repo, &["refs", "square", "--lang", "cpp", "--json"]);
    assert_eq!(refs["sites"][0]["line"], 17);
    assert_eq!(refs["sites"][0]["kind"], "call");

    let ruby = json(&repo, &["defs", "find", "--lang", "ruby", "--json"]);
    assert_eq!(ruby["sites"][0]["symbol"], "Shop::Account#find");
    assert_eq!(ruby["sites"][0]["kind"], "method");
    let predicate = json(&repo, &["defs", "Account#active?", "--json"]);
    assert_eq!(predicate["sites"][0]["symbol"], "Shop::Account#active?");
}

#[test]
fn test_files_are_marked_and_filtered_in_every_language() {
    let repo = indexed();
    let paths = |hits: &Value| -> Vec<(String, bool)> {
        hits.as_array()
            .expect("hits")
            .iter()
            .map(|h| {
                let path = h["path"].as_str().unwrap_or_default().to_string();
                (path, h["test"].as_bool().unwrap_or(false))
            })
            .collect()
    };
    for (query, test_file, code_file) in [
        ("New", "pkg/server/server_test.go", "pkg/server/server.go"),
        ("formatPrice", "src/cart.test.ts", "src/cart.ts"),
    ] {
        let all = paths(&json(&repo, &["search", query, "--json"]));
        assert!(all.contains(&(test_file.to_string(), true)), "{all:?}");
        assert!(all.contains(&(code_file.to_string(), false)), "{all:?}");

        let without = paths(&json(
            &repo,
            &["search", query, "--tests", "exclude", "--json"],
        ));
        assert!(without.iter().any(|(p, _)| p == code_file), "{without:?}");
        assert!(without.iter().all(|(_, test)| !test), "{without:?}");

        let only = paths(&json(
            &repo,
            &["search", query, "--tests", "only", "--json"],
        ));
        assert!(only.iter().any(|(p, _)| p == test_file), "{only:?}");
        assert!(only.iter().all(|(_, test)| *test), "{only:?}");
    }
    let bad = repo.quarry(&["search", "New", "--tests", "some"]);
    assert!(!bad.output.status.success());
    assert!(
        bad.stderr().contains("include, exclude or only"),
        "{}",
        bad.stderr()
    );
}
