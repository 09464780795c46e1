//! Secrets never leave the machine: a corpus of secret files and of secrets inlined in
//! ordinary source files, indexed, searched, read over MCP and asked about, and no secret
//! string appears in the index's files, in any hit, in any MCP answer or in any request a
//! scripted LLM receives. Secrets are assembled at run time so none sits in the repository.

use quarry_e2e::Repo;
use quarry_e2e::llm::StubLlm;
use serde_json::Value;

/// A PEM private key block with the given indentation and line break.
fn pem(indent: &str, newline: &str) -> String {
    let dash = "-".repeat(5);
    let body = "MIIEowIBAAKCAQEAx7Yq3s9Kd2Lw0pZ4vQ1m8N5rT6uB2cD3eF4gH5iJ6kL7mN8o";
    format!(
        "{dash}BEGIN RSA PRIVATE KEY{dash}{newline}{indent}{body}{newline}{indent}{}{newline}{indent}{dash}END RSA PRIVATE KEY{dash}",
        body.chars().rev().collect::<String>()
    )
}

struct Corpus {
    repo: Repo,
    /// Every secret string planted.
    secrets: Vec<String>,
    /// Files that are secrets (skipped whole).
    secret_files: Vec<&'static str>,
    /// Ordinary files holding secrets (indexed, redacted).
    ordinary: Vec<&'static str>,
}

fn corpus() -> Corpus {
    let repo = Repo::fixture("py-notes");
    let aws_id = format!("AKIA{}", "Q3RZ7XKJ2M4PLW5N");
    let aws_secret = format!("wJalrXUtnFEMI/K7MDENG/{}", "bPxRfiCYzq8Jd3kPq9");
    let password = format!("Tr0ub4dor{}", "&3xQ");
    let stripe = format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc");
    let github = format!("ghp_{}", "Zx9QwErTyUiOpAsDfGhJkLzXcVbNm1234567");
    let compose = format!("c0mp0se{}", "S3cretPw");
    let rust_token = format!("glpat-{}", "x7Kq2Lm9Pz4Rt6Vw8Yb1");
    let ts_key = format!("AIza{}", "SyD3xAmPl3k3yH3r3_0123456789abcdEFG");
    let go_token = format!("xoxb-{}", "2210-1337-Zx9QwErTyUiOp");
    let pem_body = "MIIEowIBAAKCAQEAx7Yq3s9Kd2Lw0pZ4vQ1m8N5rT6uB2cD3eF4gH5iJ6kL7mN8o".to_string();
    let kube_token = format!("kube{}", "T0kenAbCdEf123456");
    let tf_secret = format!("tfstate{}", "S3cretValue99");
    let netrc = format!("N3trc{}", "Passw0rdX");

    repo.write(
        "keys/service-account.json",
        format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"shop\",\n  \"private_key\": \"{}\\n\",\n  \"client_email\": \"ci@shop.iam\"\n}}\n",
            pem("", "\\n")
        ),
    );
    repo.write(
        "notes/keys.py",
        format!(
            "\"\"\"Signing keys for the notes service.\"\"\"\n\nSIGNING_KEY = \"\"\"\n    {}\n\"\"\"\n\n\ndef signing_key():\n    \"\"\"The key notes are signed with.\"\"\"\n    return SIGNING_KEY\n",
            pem("    ", "\n")
        ),
    );
    repo.write(
        "notes/settings.py",
        format!(
            "\"\"\"Deployment settings.\"\"\"\n\nAWS_ACCESS_KEY_ID = \"{aws_id}\"\naws_secret_access_key = \"{aws_secret}\"\nDB_PASSWORD = \"{password}\"\nDB_HOST = \"db.internal\"\n\n\ndef database_url():\n    \"\"\"Where the notes database lives.\"\"\"\n    return f\"postgres://notes@{{DB_HOST}}/notes\"\n"
        ),
    );
    repo.write(
        "notes/payments.py",
        format!(
            "\"\"\"Charging for premium notes.\"\"\"\n\nimport stripe\n\nstripe.api_key = \"{stripe}\"\nGITHUB_TOKEN = \"{github}\"\n\n\ndef charge_premium(user, cents):\n    \"\"\"Charges a user for premium notes.\"\"\"\n    return stripe.Charge.create(amount=cents, customer=user)\n"
        ),
    );
    repo.write(
        "docker-compose.yml",
        format!(
            "services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_USER: notes\n      POSTGRES_PASSWORD: {compose}\n"
        ),
    );
    repo.write(
        "tools/src/client.rs",
        format!(
            "/// Talks to the notes mirror.\npub fn mirror_token() -> &'static str {{\n    \"{rust_token}\"\n}}\n"
        ),
    );
    repo.write(
        "web/maps.ts",
        format!("// Map tiles for the notes web app.\nexport const mapsKey = \"{ts_key}\";\n"),
    );
    repo.write(
        "bots/slack.go",
        format!(
            "package bots\n\n// Token posts note digests to Slack.\nvar Token = \"{go_token}\"\n"
        ),
    );
    repo.write(
        "deploy/aws_credentials",
        format!("[default]\naws_access_key_id = {aws_id}\naws_secret_access_key = {aws_secret}\n"),
    );
    repo.write(
        "ops/kubeconfig",
        format!(
            "apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- name: ci\n  user:\n    token: {kube_token}\n"
        ),
    );
    repo.write(
        "infra/terraform.tfstate",
        format!(
            "{{\"version\": 4, \"terraform_version\": \"1.6.0\", \"lineage\": \"l\", \"outputs\": {{\"db\": {{\"value\": \"{tf_secret}\"}}}}}}\n"
        ),
    );
    repo.write(
        "home/netrc",
        format!("machine api.notes.example login bot password {netrc}\n"),
    );
    Corpus {
        repo,
        secrets: vec![
            aws_id, aws_secret, password, stripe, github, compose, rust_token, ts_key, go_token,
            pem_body, kube_token, tf_secret, netrc,
        ],
        secret_files: vec![
            "keys/service-account.json",
            "deploy/aws_credentials",
            "ops/kubeconfig",
            "infra/terraform.tfstate",
            "home/netrc",
        ],
        ordinary: vec![
            "notes/keys.py",
            "notes/settings.py",
            "notes/payments.py",
            "docker-compose.yml",
            "tools/src/client.rs",
            "web/maps.ts",
            "bots/slack.go",
        ],
    }
}

fn leaked<'a>(secrets: &'a [String], text: &str) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .map(String::as_str)
        .collect()
}

/// Every byte under the index directory, as text where it is text.
fn index_bytes(repo: &Repo) -> String {
    let mut all = String::new();
    let mut stack = vec![repo.path().join(".quarry")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read index dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    all
}

const QUERIES: &[&str] = &[
    "aws secret access key",
    "database password",
    "stripe api key charge premium",
    "github token",
    "signing key",
    "POSTGRES_PASSWORD",
    "mirror token",
    "maps key",
    "slack token",
    "service account private key",
    "kubeconfig token",
    "terraform state",
    "machine login password",
];

#[test]
fn secrets_are_skipped_or_redacted_everywhere() {
    let Corpus {
        repo,
        secrets,
        secret_files,
        ordinary,
    } = corpus();
    let summary = repo.quarry(&["index", "--keyword-only"]).success().stdout();
    assert!(summary.contains("secret 5"), "{summary}");

    // Not in the index's files (manifest, keyword store, caches).
    let stored = index_bytes(&repo);
    assert_eq!(leaked(&secrets, &stored), Vec::<&str>::new(), "in .quarry/");

    // Not in any hit, and the rest of each ordinary file is still found.
    for query in QUERIES
        .iter()
        .copied()
        .chain(secrets.iter().map(String::as_str))
    {
        let hits = repo.search(query, &["-k", "50", "--mode", "keyword"]);
        let text = serde_json::to_string(&hits).unwrap();
        assert_eq!(
            leaked(&secrets, &text),
            Vec::<&str>::new(),
            "search {query}"
        );
        assert!(
            !secret_files
                .iter()
                .any(|f| text.contains(&format!("\"path\":\"{f}\""))),
            "a secret file was indexed: {query}"
        );
    }
    let hits = repo.search("charge_premium", &["--mode", "keyword"]);
    assert_eq!(hits[0]["path"], "notes/payments.py");
    let hits = repo.search("stripe api_key", &["--mode", "keyword", "-k", "20"]);
    assert!(
        hits.iter().any(|h| h["text"]
            .as_str()
            .unwrap()
            .contains("«redacted: stripe-key»")),
        "{hits:?}"
    );

    // `status` counts what was redacted, by rule.
    let status: Value =
        serde_json::from_str(&repo.quarry(&["status", "--json"]).success().stdout()).unwrap();
    let redactions = &status["redactions"];
    for rule in [
        "private-key",
        "aws-access-key",
        "aws-secret-key",
        "password-assignment",
        "stripe-key",
        "github-token",
        "gitlab-token",
        "google-api-key",
        "slack-token",
    ] {
        assert!(
            redactions[rule].as_u64().unwrap_or(0) >= 1,
            "{rule}: {redactions}"
        );
    }

    // Not in anything MCP serves: read_chunk of every file, search for every query.
    let mut args: Vec<String> = vec!["--read".into()];
    args.extend(ordinary.iter().chain(&secret_files).map(|p| p.to_string()));
    args.push("--query".into());
    args.extend(QUERIES.iter().map(|q| q.to_string()));
    let session = quarry_e2e::mcp_session(&repo, &args);
    let served = session.to_string();
    assert_eq!(leaked(&secrets, &served), Vec::<&str>::new(), "over MCP");
    for file in &secret_files {
        assert_eq!(
            session["read"][file]["is_error"], true,
            "{file}: {}",
            session["read"][file]
        );
    }
    for file in &ordinary {
        assert_eq!(session["read"][file]["is_error"], false, "{file}");
    }
    // Lines stay where they were: the function after the key is on its own line.
    let keys = &session["read"]["notes/keys.py"]["text"];
    let read: Value = serde_json::from_str(keys.as_str().unwrap()).unwrap();
    let source = repo.read("notes/keys.py");
    let line = source
        .lines()
        .position(|l| l.starts_with("def signing_key"))
        .unwrap();
    assert_eq!(
        read["text"].as_str().unwrap().lines().nth(line),
        Some("def signing_key():")
    );

    // Not in any request a model receives.
    let stub = StubLlm::start(|_| "The settings are in the settings module.".to_string());
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub-model"),
    ];
    // (A question nothing matches is answered without a call.)
    for question in QUERIES {
        repo.quarry_env(&["ask", question, "--json", "-k", "20"], &env);
    }
    let requests = stub.requests();
    assert!(
        requests.len() >= QUERIES.len() - 2,
        "{} calls",
        requests.len()
    );
    for request in &requests {
        let body = request.body.to_string();
        assert_eq!(
            leaked(&secrets, &body),
            Vec::<&str>::new(),
            "sent to the LLM"
        );
    }
    assert!(
        requests.iter().any(|r| r.prompt().contains("«redacted:")),
        "the redacted chunks were still retrieved"
    );
}

#[test]
fn a_secret_in_the_question_never_reaches_the_model() {
    let repo = Repo::fixture("py-notes");
    repo.quarry(&["index", "--keyword-only"]).success();
    let stub = StubLlm::start(|_| "No.".to_string());
    let token = format!("ghp_{}", "Qw3rTy7uIo9pAs2dFg4hJk6lZx8cVb1nMq5w");
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub-model"),
    ];
    let question = format!("why does the token {token} not work for NoteStore add?");
    repo.quarry_env(&["ask", &question], &env).success();
    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].body.to_string();
    assert!(!body.contains(&token), "{body}");
    assert!(body.contains("«redacted: github-token»"), "{body}");
    // The trace records what was sent, so it holds no secret either.
    let traces = index_bytes(&repo);
    assert!(!traces.contains(&token));
}

#[test]
fn an_edit_next_to_a_secret_applies_and_keeps_it_while_the_model_never_sees_it() {
    let repo = Repo::fixture("py-notes");
    let token = format!("ghp_{}", "Mn8bV7cX6zL5kJ4hG3fD2sA1pO0iU9yT8rE7");
    repo.write(
        "notes/mirror.py",
        format!(
            "\"\"\"Mirroring notes to GitHub.\"\"\"\n\nGITHUB_TOKEN = \"{token}\"\n\n\ndef mirror(notes):\n    \"\"\"Pushes notes to the mirror.\"\"\"\n    return len(notes)\n"
        ),
    );
    repo.quarry(&["index", "--keyword-only"]).success();
    let stub = StubLlm::start(|request| {
        if request.prompt().contains("You are the planner") {
            return serde_json::json!({"tasks": [{"id": "t1", "description": "Document the token",
                "files": ["notes/mirror.py"], "new_files": [], "depends_on": []}]})
            .to_string();
        }
        // What a model writes when it saw the redacted file: the marker kept as it was.
        "notes/mirror.py\n<<<<<<< SEARCH\nGITHUB_TOKEN = \"«redacted: github-token»\"\n=======\n# Rotated every year.\nGITHUB_TOKEN = \"«redacted: github-token»\"\n>>>>>>> REPLACE\nSUMMARY: documented\n".to_string()
    });
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub-model"),
    ];
    repo.quarry_env(&["edit", "document the mirror token", "--yes"], &env)
        .success();
    let text = repo.read("notes/mirror.py");
    assert!(
        text.contains(&format!(
            "# Rotated every year.\nGITHUB_TOKEN = \"{token}\"\n"
        )),
        "{text}"
    );
    let requests = stub.requests();
    assert!(requests.len() >= 2);
    for request in &requests {
        assert!(
            !request.body.to_string().contains(&token),
            "the model saw the token"
        );
    }
    assert!(
        requests.iter().any(|r| r
            .prompt()
            .contains("GITHUB_TOKEN = \"«redacted: github-token»\"")),
        "the worker saw the redacted line"
    );
}
