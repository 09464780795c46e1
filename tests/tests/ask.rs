//! `quarry ask` and `quarry config` end to end: the real binary against a fixture, with a
//! scripted OpenAI-compatible stub (deterministic answers) or llama.cpp's server with a tiny
//! local model (real transport, streaming and timing).

use quarry_e2e::Repo;
use quarry_e2e::llm::{LlamaServer, StubLlm, StubRequest};
use serde_json::Value;

/// The labels (`path:start-end`) the prompt offered, in order.
fn offered_labels(request: &StubRequest) -> Vec<String> {
    request
        .prompt()
        .lines()
        .filter_map(|line| line.strip_prefix('['))
        .filter_map(|rest| rest.split_once(']').map(|(label, _)| label.to_string()))
        .collect()
}

/// An answer citing the first chunk offered and one that was never offered.
fn cite_first_and_invent_one(request: &StubRequest) -> String {
    let first = offered_labels(request)
        .into_iter()
        .next()
        .unwrap_or_default();
    format!("The configuration is loaded in [{first}]. It also reads [src/nowhere.rs:1-10].")
}

fn keyword_index(repo: &Repo, extra: &[&str]) {
    let mut args = vec!["index", "--keyword-only"];
    args.extend_from_slice(extra);
    repo.quarry(&args).success();
}

#[test]
fn ask_without_an_llm_names_what_to_set() {
    let repo = Repo::fixture("rust-shop");
    keyword_index(&repo, &[]);
    let error = repo
        .quarry(&["ask", "how is config loaded?"])
        .one_line_error();
    assert!(error.contains("QUARRY_LLM_URL"), "{error}");
    assert!(error.contains("OPENAI_API_KEY"), "{error}");
}

#[test]
fn ask_json_keeps_cited_chunks_and_flags_invented_ones() {
    let repo = Repo::fixture("rust-shop");
    keyword_index(&repo, &[]);
    let stub = StubLlm::start(cite_first_and_invent_one);
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub-model"),
        ("OPENAI_API_KEY", "sk-e2e-never-in-traces"),
    ];
    let run = repo
        .quarry_env(
            &["ask", "how is the config loaded from a file?", "--json"],
            &env,
        )
        .success();
    let answer: Value = serde_json::from_str(&run.stdout()).expect("ask --json prints JSON");

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let offered = offered_labels(&requests[0]);
    assert!(!offered.is_empty(), "the prompt labels its chunks");
    assert!(
        requests[0]
            .prompt()
            .contains("how is the config loaded from a file?")
    );
    assert!(
        offered.iter().any(|l| l.starts_with("src/config.rs:")),
        "config code retrieved: {offered:?}"
    );
    assert!(
        requests[0]
            .head
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-e2e-never-in-traces")
    );

    let cited: Vec<String> = answer["citations"]
        .as_array()
        .expect("citations")
        .iter()
        .map(|c| {
            format!(
                "{}:{}-{}",
                c["path"].as_str().unwrap_or(""),
                c["start_line"],
                c["end_line"]
            )
        })
        .collect();
    assert_eq!(cited, [offered[0].clone()]);
    assert_eq!(answer["unverified"][0]["path"], "src/nowhere.rs");
    assert_eq!(answer["model"], "stub");
    assert!(answer["usage"]["prompt_tokens"].as_u64().is_some());
    assert!(
        answer["answer"]
            .as_str()
            .unwrap_or("")
            .contains("configuration is loaded")
    );
    let budget = answer["context_budget"].as_u64().expect("budget");
    assert!(answer["context_tokens"].as_u64().expect("tokens") <= budget);

    // Every call is traced, without the key.
    let trace_path = answer["trace"].as_str().expect("trace path");
    let trace = std::fs::read_to_string(trace_path).expect("trace written");
    assert_eq!(trace.lines().count(), 1);
    assert!(trace.contains("how is the config loaded from a file?"));
    assert!(!trace.contains("sk-e2e-never-in-traces"));
    assert!(trace_path.contains("/.quarry/traces/"), "{trace_path}");
}

#[test]
fn ask_text_lists_sources_and_marks_invented_citations() {
    let repo = Repo::fixture("py-notes");
    keyword_index(&repo, &[]);
    let stub = StubLlm::start(cite_first_and_invent_one);
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "m"),
    ];
    let out = repo
        .quarry_env(&["ask", "how are notes searched?"], &env)
        .success()
        .stdout();
    let first = offered_labels(&stub.requests()[0]).remove(0);
    assert!(out.contains(&format!("Sources:\n  {first}")), "{out}");
    assert!(
        out.contains("[src/nowhere.rs:1-10 (not in the retrieved context)]"),
        "{out}"
    );
    assert!(out.contains("Not in the retrieved context, so not sources: src/nowhere.rs:1-10"));
}

#[test]
fn secret_files_are_never_sent_even_when_indexed() {
    let repo = Repo::fixture("py-notes");
    repo.write(
        "deploy/secrets.toml",
        "NOTES_DATABASE_PASSWORD = \"hunter2-do-not-send\"\nNOTES_STORE_PATH = \"/tmp/notes\"\n",
    );
    keyword_index(&repo, &["--include-secrets"]);
    let hits = repo.search("NOTES_DATABASE_PASSWORD", &["--mode", "keyword"]);
    assert!(
        quarry_e2e::paths(&hits).contains(&"deploy/secrets.toml".to_string()),
        "indexed on request"
    );
    let stub = StubLlm::start(|_| "No idea.".to_string());
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "m"),
    ];
    repo.quarry_env(&["ask", "what is NOTES_DATABASE_PASSWORD?"], &env)
        .success();
    let prompt = stub.requests()[0].prompt();
    assert!(!prompt.contains("hunter2-do-not-send"), "{prompt}");
}

#[test]
fn config_shows_each_value_with_its_origin_and_hides_keys() {
    let repo = Repo::empty();
    repo.write(
        "quarry.toml",
        "[llm]\nmodel = \"repo-model\"\n[ask]\nk = 7\n",
    );
    let env = [
        ("QUARRY_LLM_URL", "http://127.0.0.1:1/v1"),
        ("OPENAI_API_KEY", "sk-config-secret"),
    ];
    let run = repo.quarry_env(&["config", "--json"], &env).success();
    let config: Value = serde_json::from_str(&run.stdout()).expect("config --json");
    let settings = &config["settings"];
    assert_eq!(settings["llm.url"]["source"], "env QUARRY_LLM_URL");
    assert_eq!(settings["llm.model"]["value"], "repo-model");
    assert!(
        settings["llm.model"]["source"]
            .as_str()
            .unwrap_or("")
            .ends_with("quarry.toml")
    );
    assert_eq!(settings["ask.k"]["value"], "7");
    assert_eq!(config["llm_ready"], true);
    let text = repo.quarry_env(&["config"], &env).success().stdout();
    assert!(!text.contains("sk-config-secret") && !run.stdout().contains("sk-config-secret"));
    assert!(text.contains("redacted"), "{text}");

    repo.write("quarry.toml", "[llm]\nmodle = \"typo\"\n");
    let error = repo.quarry(&["config"]).one_line_error();
    assert!(
        error.contains("quarry.toml") && error.contains("modle"),
        "{error}"
    );
}

#[test]
fn ask_with_a_local_model_behind_llama_cpp() {
    let Some(server) = LlamaServer::start() else {
        return;
    };
    let repo = Repo::fixture("rust-shop");
    keyword_index(&repo, &[]);
    // The model reads ~200 tokens/s and writes ~20 on one thread: keep the prompt small.
    repo.write(
        "quarry.toml",
        "[ask]\ncontext_tokens = 800\nanswer_tokens = 48\n",
    );
    let env = [
        ("QUARRY_LLM_URL", server.url.as_str()),
        ("QUARRY_LLM_MODEL", "smollm2"),
    ];
    let run = repo
        .quarry_env(
            &["ask", "How does the router match a path?", "--json"],
            &env,
        )
        .success();
    let answer: Value = serde_json::from_str(&run.stdout()).expect("ask --json prints JSON");
    assert!(!answer["answer"].as_str().unwrap_or("").trim().is_empty());
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 100);
    assert!(
        answer["context_tokens"].as_u64().unwrap_or(u64::MAX) <= 800,
        "{answer}"
    );
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0);
    assert!(
        answer["first_token_ms"].as_u64().is_some(),
        "streamed: {answer}"
    );
    assert!(answer["first_token_ms"].as_u64() <= answer["latency_ms"].as_u64());
    // Whatever the tiny model writes, a citation is only kept if it points into the context.
    let context: Vec<&str> = answer["context"]
        .as_array()
        .expect("context labels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for citation in answer["citations"].as_array().expect("citations") {
        let path = citation["path"].as_str().unwrap_or("");
        let (start, end) = (
            citation["start_line"].as_u64(),
            citation["end_line"].as_u64(),
        );
        let inside = context.iter().any(|label| {
            let Some((p, lines)) = label.rsplit_once(':') else {
                return false;
            };
            let Some((a, b)) = lines.split_once('-') else {
                return false;
            };
            p == path && a.parse::<u64>().ok() <= start && end <= b.parse::<u64>().ok()
        });
        assert!(
            inside,
            "citation {citation} is outside the context {context:?}"
        );
    }
}
