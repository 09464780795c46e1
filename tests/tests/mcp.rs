//! `quarry mcp` driven by a client nobody here wrote: the official MCP Python SDK (PyPI `mcp`,
//! installed by `scripts/setup.sh --test`), through `tests/clients/mcp_session.py`.

use quarry_e2e::Repo;
use quarry_e2e::llm::StubLlm;
use serde_json::Value;

fn run_session(repo: &Repo) -> Value {
    run_script(repo, &[])
}

fn run_script(repo: &Repo, extra: &[&str]) -> Value {
    quarry_e2e::mcp_session(repo, extra)
}

fn hits(call: &Value) -> Vec<Value> {
    assert_eq!(call["is_error"], false, "{call}");
    serde_json::from_str(call["text"].as_str().unwrap_or("")).expect("hits are a JSON array")
}

#[test]
fn an_agent_searches_reads_and_is_refused_what_it_must_not_do() {
    let repo = Repo::fixture("rust-shop");
    repo.quarry(&["index", "--keyword-only"]).success();
    let session = run_session(&repo);

    let tools = session["tools"].as_object().expect("tools");
    let mut names: Vec<&str> = tools.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ask",
            "definitions",
            "edit",
            "read_chunk",
            "references",
            "search",
            "status"
        ]
    );
    assert_eq!(
        tools["edit"]["schema"]["required"],
        serde_json::json!(["request"])
    );
    for (name, tool) in tools {
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 40),
            "{name}"
        );
        assert_eq!(tool["schema"]["type"], "object", "{name}");
    }
    let search_schema = &tools["search"]["schema"];
    assert_eq!(search_schema["required"], serde_json::json!(["query"]));
    assert_eq!(search_schema["properties"]["k"]["type"][0], "integer");

    let found = hits(&session["search"]);
    assert_eq!(found[0]["path"], "src/upload.rs");
    assert_eq!(found[0]["symbol"], "crate::upload::upload_with_retry");
    // Same contract as `quarry search --json`.
    let cli = repo.search("where do we retry failed uploads", &["-k", "3"]);
    assert_eq!(found, cli);
    assert_eq!(
        hits(&session["search_identifier"])[0]["symbol"],
        "crate::router::parse_query"
    );

    // The code graph, paged; each page a slice of `quarry refs --json`.
    let page = |call: &Value| -> Value {
        assert_eq!(call["is_error"], false, "{call}");
        serde_json::from_str(call["text"].as_str().unwrap_or("")).expect("a graph page")
    };
    let definitions = page(&session["definitions"]);
    assert_eq!(definitions["total"], 1);
    assert_eq!(
        definitions["sites"][0]["symbol"],
        "crate::upload::upload_with_retry"
    );
    let first = page(&session["references"]);
    let next = page(&session["references_next"]);
    let cli: Value =
        serde_json::from_str(&repo.quarry(&["refs", "new", "--json"]).success().stdout()).unwrap();
    let all = cli["sites"].as_array().unwrap();
    assert!(all.len() > 6, "{cli}");
    assert_eq!(first["total"], all.len());
    assert_eq!(first["next_offset"], 3);
    assert_eq!(first["sites"].as_array().unwrap()[..], all[..3]);
    assert_eq!(next["sites"].as_array().unwrap()[..], all[3..6]);
    for tool in ["definitions", "references"] {
        let schema = &tools[tool]["schema"];
        assert_eq!(schema["required"], serde_json::json!(["name"]), "{tool}");
        assert!(
            schema.to_string().len() < 700,
            "{tool}: a lean schema: {schema}"
        );
    }

    let read: Value = serde_json::from_str(session["read_chunk"]["text"].as_str().unwrap_or(""))
        .expect("read_chunk JSON");
    let source = repo.read("src/upload.rs");
    let expected: Vec<&str> = source.lines().take(3).collect();
    assert_eq!(read["text"], format!("{}\n", expected.join("\n")));

    for refused in [
        "read_parent",
        "read_absolute",
        "bad_mode",
        "missing_argument",
        "wrong_type",
    ] {
        let call = &session[refused];
        // A tool error (or a protocol error reported as one) the agent can read.
        assert_eq!(call["is_error"], true, "{refused}: {call}");
        assert!(!call["text"].as_str().unwrap_or("").is_empty(), "{refused}");
    }
    assert!(
        session["read_parent"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("leaves the repository")
    );
    assert!(
        session["bad_mode"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("unknown mode")
    );

    let status: Value = serde_json::from_str(session["status"]["text"].as_str().unwrap_or(""))
        .expect("status JSON");
    assert!(status["chunks"].as_u64().unwrap_or(0) > 100);
    assert_eq!(session["ask_without_llm"]["is_error"], true);
    assert!(
        session["ask_without_llm"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("QUARRY_LLM_URL")
    );
    assert_eq!(
        hits(&session["search_after_errors"])[0]["path"],
        "src/upload.rs"
    );
    assert!(
        session["bad_source"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("use code, commits or all")
    );
    let commits = &session["commits_without_git"];
    assert_eq!(commits["is_error"], true, "{commits}");
    assert!(
        commits["text"]
            .as_str()
            .unwrap_or("")
            .contains("no git history is indexed"),
        "{commits}"
    );
    assert_eq!(
        tools["search"]["schema"]["properties"]["source"]["type"][0],
        "string"
    );
    let refused = &session["edit_apply_refused"];
    assert_eq!(refused["is_error"], true, "{refused}");
    assert!(
        refused["text"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-edits"),
        "{refused}"
    );
    let no_llm = &session["edit_without_llm"];
    assert_eq!(no_llm["is_error"], true, "{no_llm}");
    assert!(
        no_llm["text"]
            .as_str()
            .unwrap_or("")
            .contains("QUARRY_LLM_URL"),
        "{no_llm}"
    );
    assert!(
        std::fs::read_dir(repo.path().join(".quarry/runs")).is_err(),
        "a refused edit starts no run"
    );
}

#[test]
fn an_agent_edits_with_a_dry_run_first_then_for_real() {
    let repo = Repo::fixture("py-notes");
    repo.quarry(&["index", "--keyword-only"]).success();
    let original = repo.read("notes/export.py");
    let stub = StubLlm::start(|request| {
        let prompt = request.prompt();
        if prompt.contains("You are the planner") {
            return r#"{"tasks": [{"id": "t1", "description": "Add export_count", "files": ["notes/export.py"], "new_files": [], "depends_on": []}]}"#.to_string();
        }
        "notes/export.py\n<<<<<<< SEARCH\ndef slugify(title: str) -> str:\n=======\ndef export_count(notes) -> int:\n    return len(list(notes))\n\n\ndef slugify(title: str) -> str:\n>>>>>>> REPLACE\nSUMMARY: added export_count\n".to_string()
    });
    let session = run_script(&repo, &["--edit", &stub.url]);
    let dry = &session["dry"];
    assert_eq!(dry["is_error"], false, "{dry}");
    let dry: Value = serde_json::from_str(dry["text"].as_str().unwrap()).unwrap();
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["plan"]["tasks"][0]["id"], "t1");
    assert!(
        dry["diff"]
            .as_str()
            .unwrap()
            .contains("+def export_count(notes)"),
        "{dry}"
    );

    let applied = &session["applied"];
    assert_eq!(applied["is_error"], false, "{applied}");
    let applied: Value = serde_json::from_str(applied["text"].as_str().unwrap()).unwrap();
    assert_eq!(applied["status"], "succeeded", "{applied}");
    assert!(
        repo.read("notes/export.py")
            .contains("def export_count(notes)")
    );
    // The applied run can be undone like any other.
    repo.quarry(&["undo", applied["id"].as_str().unwrap()])
        .success();
    assert_eq!(repo.read("notes/export.py"), original);
}

#[test]
fn without_an_index_search_says_how_to_make_one() {
    let repo = Repo::fixture("py-notes");
    let session = run_session(&repo);
    let search = &session["search"];
    assert_eq!(search["is_error"], true, "{search}");
    assert!(
        search["text"]
            .as_str()
            .unwrap_or("")
            .contains("quarry index"),
        "{search}"
    );
}

#[test]
fn index_on_start_builds_the_index_then_answers() {
    let repo = Repo::fixture("py-notes");
    let session = run_script(&repo, &["--index-on-start"]);
    // Asked at once, without a progress token: the answer says how far indexing is (a
    // hybrid index of the fixture takes seconds, loading the model included).
    let early = &session["early"];
    assert_eq!(early["is_error"], true, "{early}");
    assert!(
        early["text"].as_str().unwrap_or("").contains("being built"),
        "{early}"
    );
    // With a progress token the call waits for the index and answers.
    let found = hits(&session["search"]);
    assert_eq!(found[0]["symbol"], "notes.storage.NoteStore.add");
    assert!(repo.path().join(".quarry/manifest.json").is_file());
    let progress = session["progress"].as_array().expect("progress");
    assert!(!progress.is_empty(), "no progress notification");
    for progress in progress {
        let message = progress["message"].as_str().unwrap_or("");
        assert!(message.contains("files"), "{progress}");
        assert!(progress["progress"].as_f64() <= progress["total"].as_f64());
    }
}

#[test]
fn an_agent_searches_the_team_index_when_a_store_is_configured() {
    let store = tempfile::tempdir().expect("tempdir");
    let repo = Repo::fixture("rust-shop");
    repo.write(
        "quarry.toml",
        format!("[store]\nurl = \"edge://{}\"\n", store.path().display()),
    );
    let summary = repo.index();
    assert!(summary.contains("team collection"), "{summary}");
    let session = run_session(&repo);

    let found = hits(&session["search"]);
    assert_eq!(found[0]["path"], "src/upload.rs", "{found:?}");
    assert!(
        found
            .iter()
            .any(|h| h["symbol"] == "crate::upload::upload_with_retry"),
        "{found:?}"
    );
    // The same hits as `quarry search --json` against the team index.
    let cli = repo.search("where do we retry failed uploads", &["-k", "3"]);
    assert_eq!(found, cli);
    assert_eq!(
        hits(&session["search_identifier"])[0]["symbol"],
        "crate::router::parse_query"
    );
    let status: Value = serde_json::from_str(session["status"]["text"].as_str().unwrap_or(""))
        .expect("status JSON");
    assert_eq!(status["store"]["backend"], "qdrant edge", "{status}");
    assert_eq!(status["state"], "ready", "{status}");
    assert!(!repo.path().join(".quarry/manifest.json").exists());
}
