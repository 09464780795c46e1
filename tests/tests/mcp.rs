//! `quarry mcp` driven by a client nobody here wrote: the official MCP Python SDK (PyPI `mcp`,
//! installed by `scripts/setup.sh --test`), through `tests/clients/mcp_session.py`.

use std::process::Command;

use quarry_e2e::{Repo, quarry_bin};
use serde_json::Value;

fn run_session(repo: &Repo) -> Value {
    run_script(repo, &[])
}

fn run_script(repo: &Repo, extra: &[&str]) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/mcp_session.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(quarry_bin())
        .arg(repo.path())
        .args(extra)
        .env_remove("QUARRY_LLM_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("XDG_CONFIG_HOME", repo.path().join(".no-user-config"))
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "the MCP session failed (is PyPI `mcp` installed? scripts/setup.sh --test): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the session prints JSON")
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
    assert_eq!(names, ["ask", "read_chunk", "search", "status"]);
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
    for waiting in session["waiting"].as_array().expect("waiting") {
        let text = waiting.as_str().unwrap_or("");
        assert!(text.contains("being built"), "{text}");
    }
    let found = hits(&session["search"]);
    assert_eq!(found[0]["symbol"], "notes.storage.NoteStore.add");
    assert!(repo.path().join(".quarry/manifest.json").is_file());
}
