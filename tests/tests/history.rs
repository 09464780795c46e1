//! Git history in the index, end to end: repositories built with gix in a temp dir (commit,
//! amend, rebase), `quarry index`, then `search --source commits|all` and `status`.

use gix::ObjectId;
use gix::object::tree::EntryKind;
use gix::refs::transaction::PreviousValue;
use quarry_e2e::Repo;
use serde_json::Value;

/// A scratch git repository whose commits are written with gix.
struct GitRepo {
    repo: Repo,
    git: gix::Repository,
    time: i64,
}

impl GitRepo {
    fn new() -> Self {
        let repo = Repo::empty();
        let git = gix::init(repo.path()).expect("git init");
        GitRepo {
            repo,
            git,
            time: 1_700_000_000,
        }
    }

    fn head(&self) -> Option<ObjectId> {
        self.git.head_id().ok().map(|id| id.detach())
    }

    /// Writes `files` to the work tree and commits them on top of `parent` (the tree of
    /// `parent` plus these files), moving the branch to the new commit.
    fn commit_on(
        &mut self,
        parent: Option<ObjectId>,
        files: &[(&str, &str)],
        message: &str,
    ) -> ObjectId {
        for (path, content) in files {
            self.repo.write(path, content);
        }
        let base = match parent {
            Some(id) => self
                .git
                .find_commit(id)
                .unwrap()
                .tree_id()
                .unwrap()
                .detach(),
            None => ObjectId::empty_tree(gix::hash::Kind::Sha1),
        };
        let mut editor = self.git.edit_tree(base).unwrap();
        for (path, content) in files {
            let blob = self.git.write_blob(content.as_bytes()).unwrap().detach();
            editor.upsert(*path, EntryKind::Blob, blob).unwrap();
        }
        let tree = editor.write().unwrap().detach();
        self.time += 3600;
        let signature = gix::actor::Signature {
            name: "Ann".into(),
            email: "ann@example.com".into(),
            time: gix::date::Time::new(self.time, 0),
        };
        let mut buf = gix::date::parse::TimeBuf::default();
        let sig = signature.to_ref(&mut buf);
        let commit = self
            .git
            .new_commit_as(sig, sig, message, tree, parent)
            .unwrap()
            .id;
        let branch = self
            .git
            .head_name()
            .unwrap()
            .unwrap_or_else(|| "refs/heads/main".try_into().unwrap());
        self.git
            .reference(branch, commit, PreviousValue::Any, "test commit")
            .unwrap();
        commit
    }

    fn commit(&mut self, files: &[(&str, &str)], message: &str) -> ObjectId {
        let parent = self.head();
        self.commit_on(parent, files, message)
    }

    fn commits(&self, query: &str) -> Vec<Value> {
        self.repo
            .search(query, &["--source", "commits", "--mode", "keyword"])
    }
}

fn subjects(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["symbol"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn commits_are_searchable_with_their_paths_and_dates() {
    let mut git = GitRepo::new();
    git.commit(
        &[("src/lib.rs", "pub fn add(a: u8, b: u8) -> u8 { a + b }\n")],
        "Add the adder",
    );
    git.commit(
        &[("src/retry.rs", "pub fn retry() {}\n"), ("src/lib.rs", "pub mod retry;\npub fn add(a: u8, b: u8) -> u8 { a + b }\n")],
        "Retry failed uploads with exponential backoff\n\nUploads to flaky storage used to fail the whole batch; now each is retried.",
    );
    git.commit(&[("README.md", "# demo\n")], "Document the crate");
    let summary = git
        .repo
        .quarry(&["index", "--keyword-only"])
        .success()
        .stdout();
    assert!(summary.contains("history 3 commits (+3)"), "{summary}");

    let hits = git.commits("why are uploads retried");
    assert_eq!(
        subjects(&hits)[0],
        "Retry failed uploads with exponential backoff"
    );
    let hit = &hits[0];
    assert_eq!(hit["kind"], "commit");
    assert_eq!(hit["path"], "");
    assert_eq!(hit["commit"].as_str().unwrap().len(), 40);
    assert!(hit["date"] == "2023-11-15T00:13:20Z", "{hit}");
    assert_eq!(
        hit["paths"],
        serde_json::json!(["src/lib.rs", "src/retry.rs"])
    );
    assert!(
        hit["text"]
            .as_str()
            .unwrap()
            .contains("src/retry.rs (+1 -0)"),
        "{hit}"
    );

    // A path filter keeps commits that touched a matching path.
    let readme = git
        .repo
        .search("document", &["--source", "commits", "--path", "README.md"]);
    assert_eq!(subjects(&readme), vec!["Document the crate"]);

    // `all` mixes code and commits; code stays the default.
    let code = git.repo.search("retry", &["--mode", "keyword"]);
    assert!(code.iter().all(|h| h["kind"] != "commit"));
    let all = git
        .repo
        .search("retry", &["--source", "all", "--mode", "keyword"]);
    assert!(all.iter().any(|h| h["kind"] == "commit") && all.iter().any(|h| h["kind"] != "commit"));

    // Nothing new: nothing re-indexed.
    let again = git.repo.quarry(&["index"]).success().stdout();
    assert!(!again.contains("history"), "{again}");

    let status: Value =
        serde_json::from_str(&git.repo.quarry(&["status", "--json"]).success().stdout()).unwrap();
    assert_eq!(status["history"]["state"], "indexed");
    assert_eq!(status["history"]["commits"], 3);
    assert_eq!(status["history"]["head"], git.head().unwrap().to_string());
}

#[test]
fn new_commits_are_added_and_rewritten_history_replaces_the_old() {
    let mut git = GitRepo::new();
    let base = git.commit(&[("a.py", "x = 1\n")], "Start the project");
    git.commit(&[("a.py", "x = 2\n")], "Bump x to two");
    git.repo.quarry(&["index", "--keyword-only"]).success();

    // A new commit: only it is added.
    git.commit(&[("b.py", "y = 1\n")], "Add the y setting");
    let summary = git.repo.quarry(&["index"]).success().stdout();
    assert!(summary.contains("history 3 commits (+1)"), "{summary}");

    // Amend the last commit: the old one disappears from search, the new one appears.
    let parent = git
        .git
        .find_commit(git.head().unwrap())
        .unwrap()
        .parent_ids()
        .next()
        .unwrap()
        .detach();
    git.commit_on(
        Some(parent),
        &[("b.py", "y = 10\n")],
        "Add the y setting, set to ten",
    );
    let summary = git.repo.quarry(&["index"]).success().stdout();
    assert!(summary.contains("(+1 -1, rewritten)"), "{summary}");
    assert_eq!(
        subjects(&git.commits("setting")),
        vec!["Add the y setting, set to ten"]
    );

    // Rebase: replay new work onto the first commit; everything after it is replaced.
    git.commit_on(Some(base), &[("c.py", "z = 3\n")], "Introduce z");
    git.commit(&[("c.py", "z = 4\n")], "Raise z");
    let summary = git.repo.quarry(&["index"]).success().stdout();
    assert!(
        summary.contains("history 3 commits (+2 -2, rewritten)"),
        "{summary}"
    );
    assert!(
        git.commits("bump two").is_empty(),
        "rewritten commits are gone"
    );
    assert!(git.commits("setting").is_empty());
    let mut left = subjects(&git.commits("raise z introduce start"));
    left.sort();
    assert_eq!(left, vec!["Introduce z", "Raise z", "Start the project"]);
}

#[test]
fn no_repository_or_no_commits_leaves_code_search_alone() {
    let plain = Repo::fixture("py-notes");
    plain.quarry(&["index", "--keyword-only"]).success();
    assert!(!plain.search("NoteStore", &["--mode", "keyword"]).is_empty());
    let error = plain
        .quarry(&["search", "anything", "--source", "commits"])
        .one_line_error();
    assert!(error.contains("no git history is indexed"), "{error}");
    let status: Value =
        serde_json::from_str(&plain.quarry(&["status", "--json"]).success().stdout()).unwrap();
    assert_eq!(status["history"]["state"], "none");

    let git = GitRepo::new();
    git.repo.write("main.py", "print('hi')\n");
    git.repo.quarry(&["index", "--keyword-only"]).success();
    let status: Value =
        serde_json::from_str(&git.repo.quarry(&["status", "--json"]).success().stdout()).unwrap();
    assert_eq!(status["history"]["state"], "empty");
    assert_eq!(status["history"]["commits"], 0);
    assert!(git.commits("print").is_empty());
    assert_eq!(git.repo.search("print", &["--mode", "keyword"]).len(), 1);
}

#[test]
fn files_that_change_together_are_reported() {
    let mut git = GitRepo::new();
    for round in 0..3 {
        git.commit(
            &[
                ("src/api.rs", &format!("// v{round}\n")),
                ("src/client.rs", &format!("// v{round}\n")),
            ],
            &format!("Change the API, round {round}"),
        );
    }
    git.commit(&[("README.md", "# x\n")], "Docs");
    git.repo.quarry(&["index", "--keyword-only"]).success();
    let status: Value =
        serde_json::from_str(&git.repo.quarry(&["status", "--json"]).success().stdout()).unwrap();
    let pairs = status["history"]["co_change"].as_array().unwrap();
    assert_eq!(pairs[0]["a"], "src/api.rs");
    assert_eq!(pairs[0]["b"], "src/client.rs");
    assert_eq!(pairs[0]["commits"], 3);
    assert_eq!(pairs.len(), 1, "one-off pairs are not reported: {pairs:?}");
}

#[test]
fn depth_limits_and_shallow_clones_index_what_there_is() {
    let mut git = GitRepo::new();
    for n in 0..5 {
        git.commit(
            &[("a.py", &format!("x = {n}\n"))],
            &format!("Step number {n}"),
        );
    }
    git.repo
        .quarry(&["index", "--keyword-only", "--history-depth", "2"])
        .success();
    let mut newest = subjects(&git.commits("step number"));
    newest.sort();
    assert_eq!(newest, vec!["Step number 3", "Step number 4"]);
    // The depth is kept from the last run.
    git.commit(&[("a.py", "x = 5\n")], "Step number 5");
    git.repo.quarry(&["index"]).success();
    let mut kept = subjects(&git.commits("step number"));
    kept.sort();
    assert_eq!(kept, vec!["Step number 4", "Step number 5"]);

    // 0 turns history off; code search is unaffected.
    git.repo
        .quarry(&["index", "--history-depth", "0"])
        .success();
    let status: Value =
        serde_json::from_str(&git.repo.quarry(&["status", "--json"]).success().stdout()).unwrap();
    assert_eq!(status["history"]["state"], "off");
    let error = git
        .repo
        .quarry(&["search", "step", "--source", "commits"])
        .one_line_error();
    assert!(error.contains("history is off"), "{error}");
    assert_eq!(git.repo.search("x", &["--mode", "keyword"]).len(), 1);

    // A shallow clone: the history ends at its boundary, and status says so.
    let clone = Repo::empty();
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "2"])
        .arg(format!("file://{}", git.repo.path().display()))
        .arg(clone.path().join("shallow"))
        .status()
        .expect("git clone");
    assert!(cloned.success());
    let shallow = clone.path().join("shallow");
    let run = std::process::Command::new(quarry_e2e::quarry_bin())
        .args(["index", "--keyword-only"])
        .current_dir(&shallow)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let status = std::process::Command::new(quarry_e2e::quarry_bin())
        .args(["status", "--json"])
        .current_dir(&shallow)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["history"]["commits"], 2, "{status}");
    assert_eq!(status["history"]["shallow"], true, "{status}");
}

#[test]
fn a_why_question_gets_the_matching_commits_and_their_citations_are_checked() {
    let mut git = GitRepo::new();
    git.commit(
        &[("upload.py", "def upload(x):\n    return x\n")],
        "Add uploads",
    );
    git.commit(
        &[("upload.py", "def upload(x, tries=3):\n    return x\n")],
        "Retry uploads three times\n\nThe storage service drops one request in fifty.",
    );
    git.repo.quarry(&["index", "--keyword-only"]).success();
    let retry = git.head().unwrap().to_string();
    let stub = quarry_e2e::llm::StubLlm::start(|request| {
        let prompt = request.prompt();
        // The label of the commit that says why.
        let short = prompt
            .split("[commit ")
            .find(|block| block.contains("Retry uploads three times"))
            .map(|block| block[..8].to_string())
            .unwrap_or_default();
        format!(
            "Uploads are retried because storage drops requests [commit {short}], not [commit deadbeef7]."
        )
    });
    let env = [
        ("QUARRY_LLM_URL", stub.url.as_str()),
        ("QUARRY_LLM_MODEL", "stub"),
    ];
    let run = git
        .repo
        .quarry_env(&["ask", "why are uploads retried?", "--json"], &env)
        .success();
    let answer: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        answer["commits"],
        serde_json::json!([&retry[..8]]),
        "{answer}"
    );
    assert_eq!(
        answer["unverified_commits"],
        serde_json::json!(["deadbeef7"])
    );
    let prompt = stub.requests()[0].prompt();
    assert!(
        prompt.contains(&format!("[commit {}]", &retry[..8])),
        "{prompt}"
    );
    assert!(prompt.contains("drops one request in fifty"));

    // A question that is not about history gets no commits.
    git.repo
        .quarry_env(&["ask", "how does upload work?", "--json"], &env)
        .success();
    let user = stub.requests()[1].body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        user.contains("upload.py") && !user.contains("[commit "),
        "{user}"
    );
}
