//! The harness for Quarry's end-to-end tests: find the built `quarry` binary, copy a fixture
//! repository into a temporary directory, run commands against it and read their output.
//!
//! The tests drive the release binary (`cargo build --release` first; `scripts/test.sh` does),
//! or the binary named by `QUARRY_BIN`.

pub mod llm;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// Runs each named test body (a `fn NAME(backend: Backend)` beside the call) against the
/// local and the team index, as the tests `NAME::local` and `NAME::team`.
#[macro_export]
macro_rules! on_each_backend {
    ($($body:ident),* $(,)?) => {
        $(
            mod $body {
                #[test]
                fn local() {
                    super::$body($crate::Backend::Local);
                }

                #[test]
                fn team() {
                    super::$body($crate::Backend::Team);
                }
            }
        )*
    };
}

/// The `quarry` binary under test.
pub fn quarry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("QUARRY_BIN") {
        return PathBuf::from(bin);
    }
    // This test executable lives in <target>/<profile>/deps/; the binary one level up.
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable inside a cargo target directory");
    let bin = profile_dir.join("quarry");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --release -p quarry-cli` before the e2e tests",
        bin.display()
    );
    bin
}

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("fixtures")
}

/// Which index a test's commands build and read. Suites that state what every index keeps
/// (incremental updates, crash repair, skip rules) run one body against each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The local index under `.quarry/`.
    Local,
    /// A team index in a Qdrant Edge directory (`QUARRY_QDRANT_URL=edge:///dir`).
    Team,
}

/// A scratch repository in a temporary directory.
pub struct Repo {
    dir: TempDir,
    /// The team store's directory, when the repository's index is a team index.
    store: Option<TempDir>,
}

impl Repo {
    /// An empty repository.
    pub fn empty() -> Self {
        Repo {
            dir: tempfile::tempdir().expect("temp dir"),
            store: None,
        }
    }

    /// This repository with its index on `backend`: every command it runs targets it.
    pub fn on(mut self, backend: Backend) -> Self {
        self.store = match backend {
            Backend::Local => None,
            Backend::Team => Some(tempfile::tempdir().expect("store dir")),
        };
        self
    }

    /// The backend its index is on.
    pub fn backend(&self) -> Backend {
        match self.store {
            Some(_) => Backend::Team,
            None => Backend::Local,
        }
    }

    /// `quarry status --json`, parsed.
    pub fn status(&self) -> Value {
        let run = self.quarry(&["status", "--json"]).success();
        serde_json::from_str(&run.stdout()).expect("status json")
    }

    /// Whether the status says the last sync did not finish (the next one repairs it).
    pub fn interrupted(&self) -> bool {
        let status = self.status();
        match self.backend() {
            Backend::Local => status["writer"] == "interrupted",
            Backend::Team => status["state"] == "syncing",
        }
    }

    /// Whether the status says no sync runs and none is left to repair.
    pub fn settled(&self) -> bool {
        let status = self.status();
        match self.backend() {
            Backend::Local => status["writer"] == "idle",
            Backend::Team => status["state"] == "ready" && status["points"] == status["chunks"],
        }
    }

    /// A copy of `fixtures/<name>` without build outputs.
    pub fn fixture(name: &str) -> Self {
        let repo = Repo::empty();
        copy_tree(&fixtures_dir().join(name), repo.path());
        repo
    }

    /// The repository root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file, creating folders.
    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>) {
        let path = self.path().join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }

    /// Reads a file as text.
    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path().join(relative)).expect("read")
    }

    /// Removes a file.
    pub fn remove(&self, relative: &str) {
        fs::remove_file(self.path().join(relative)).expect("remove");
    }

    /// Runs `quarry ARGS` with the repository as working directory.
    pub fn quarry(&self, args: &[&str]) -> Run {
        self.quarry_env(args, &[])
    }

    /// Like [`Repo::quarry`] with extra environment variables.
    pub fn quarry_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            output: self.command(args, env).output().expect("run quarry"),
        }
    }

    /// A `quarry ARGS` command in the repository, isolated from the developer's settings.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(quarry_bin());
        command.args(args).current_dir(self.path());
        command
            .env_remove("QUARRY_INDEX_DIR")
            .env_remove("QUARRY_FAILPOINT")
            // The developer's own LLM settings must not leak into a test.
            .env_remove("QUARRY_LLM_URL")
            .env_remove("QUARRY_LLM_MODEL")
            .env_remove("QUARRY_LLM_PROVIDER")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            // Nor their team store.
            .env_remove("QUARRY_QDRANT_URL")
            .env_remove("QUARRY_QDRANT_API_KEY")
            .env_remove("QUARRY_QDRANT_COLLECTION")
            .env("XDG_CONFIG_HOME", self.path().join(".no-user-config"));
        if let Some(store) = &self.store {
            command.env(
                "QUARRY_QDRANT_URL",
                format!("edge://{}", store.path().display()),
            );
        }
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    /// `quarry index` that must succeed; returns its summary line.
    pub fn index(&self) -> String {
        self.quarry(&["index"]).success().stdout()
    }

    /// `quarry search QUERY --json ARGS` that must succeed; returns the hits.
    pub fn search(&self, query: &str, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["search", query, "--json"];
        all.extend_from_slice(args);
        let run = self.quarry(&all).success();
        match serde_json::from_str(&run.stdout()) {
            Ok(Value::Array(hits)) => hits,
            other => panic!("search --json did not print an array: {other:?}"),
        }
    }
}

/// The outcome of one `quarry` run.
pub struct Run {
    args: Vec<String>,
    /// The raw output.
    pub output: Output,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the run exited 0.
    pub fn success(self) -> Self {
        assert!(
            self.output.status.success(),
            "quarry {:?} failed with {}\nstdout: {}\nstderr: {}",
            self.args,
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Asserts the run failed with exactly one `error: ...` line on stderr, and returns it.
    pub fn one_line_error(self) -> String {
        assert!(
            !self.output.status.success(),
            "quarry {:?} should have failed; stdout: {}",
            self.args,
            self.stdout()
        );
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
        assert!(
            lines[0].starts_with("error: "),
            "not an error line: {stderr}"
        );
        lines[0].to_string()
    }
}

/// Paths of hits, in order.
/// Whether two outputs of a command say the same thing: equal but for decimal numbers
/// (scores), which may differ by `tolerance`. A one-shot `quarry search` and a daemon embed
/// the query with differently optimised graphs of one model, whose scores differ in the
/// last digits.
pub fn same_but_scores(a: &str, b: &str, tolerance: f64) -> bool {
    let split = |s: &str| -> (Vec<String>, Vec<f64>) {
        let (mut words, mut numbers, mut word, mut number) =
            (Vec::new(), Vec::new(), String::new(), String::new());
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            let starts_number =
                c.is_ascii_digit() || (c == '-' && chars.peek().is_some_and(char::is_ascii_digit));
            if starts_number && number.is_empty() {
                number.push(c);
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == '-' {
                        number.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if number.contains('.') {
                    words.push(std::mem::take(&mut word));
                    numbers.push(number.parse().unwrap_or(f64::NAN));
                } else {
                    word.push_str(&number);
                }
                number.clear();
            } else {
                word.push(c);
            }
        }
        words.push(word);
        (words, numbers)
    };
    let (words_a, numbers_a) = split(a);
    let (words_b, numbers_b) = split(b);
    words_a == words_b
        && numbers_a.len() == numbers_b.len()
        && numbers_a
            .iter()
            .zip(&numbers_b)
            .all(|(x, y)| (x - y).abs() <= tolerance)
}

pub fn paths(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether any hit's text contains `needle`.
pub fn any_text_contains(hits: &[Value], needle: &str) -> bool {
    hits.iter()
        .any(|h| h["text"].as_str().is_some_and(|t| t.contains(needle)))
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("target" | "__pycache__" | ".quarry" | ".pytest_cache")
        ) {
            continue;
        }
        let source = entry.path();
        let dest = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&source, &dest);
        } else {
            fs::copy(&source, &dest).expect("copy");
        }
    }
}

/// Runs `tests/clients/mcp_session.py QUARRY REPO EXTRA...`, which drives `quarry mcp` with the
/// official MCP Python SDK (PyPI `mcp`), without LLM settings; returns the JSON it prints.
pub fn mcp_session<S: AsRef<std::ffi::OsStr>>(repo: &Repo, extra: &[S]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/mcp_session.py");
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

#[cfg(test)]
mod tests {
    use super::same_but_scores;

    #[test]
    fn scores_may_differ_by_the_tolerance_and_nothing_else_may() {
        let a = r#"[{"path":"a2.py","start_line":3,"score":0.03388,"v":-0.5}]"#;
        assert!(same_but_scores(a, &a.replace("0.03388", "0.03389"), 2e-5));
        assert!(!same_but_scores(a, &a.replace("0.03388", "0.0345"), 2e-5));
        assert!(!same_but_scores(
            a,
            &a.replace("start_line\":3", "start_line\":4"),
            2e-5
        ));
        assert!(!same_but_scores(a, &a.replace("a2.py", "a3.py"), 2e-5));
        assert!(same_but_scores("x · 0.5\n", "x · 0.500001\n", 2e-5));
    }
}
