//! A run's state on disk: `.quarry/runs/ID/`, written as it changes, so a killed or failed
//! run can be resumed and any run undone.
//!
//! `run.json` holds the request, the options, the plan, every task's state and result, the
//! scratchpad, the check results and the files touched; it is replaced atomically (temp file
//! and rename) at every change. `trace.jsonl` has one line per LLM call and per tool step.
//! `originals/` keeps the bytes every touched file had before the run first wrote it. A task's
//! new file contents are recorded in `run.json` before any of them is written, so a run killed
//! half-way through writing a task finishes writing it on resume instead of leaving it
//! half-applied.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use quarry_indexer::layout::replace_file;
use serde::{Deserialize, Serialize};

use super::EditError;
use super::plan::Plan;
use crate::llm::Usage;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Asking the model for a plan.
    Planning,
    /// Waiting for the user to approve the plan.
    AwaitingApproval,
    /// Tasks are running.
    Running,
    /// The check command and fixing rounds are running.
    Checking,
    /// Finished: every task done and the check (if any) passed.
    Succeeded,
    /// Finished with failed tasks or a failing check.
    Failed,
    /// Stopped by Ctrl-C, a kill or a limit; `--resume` continues it.
    Interrupted,
    /// The user declined the plan.
    Declined,
    /// `quarry undo` restored the originals.
    Undone,
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not started.
    Pending,
    /// A worker is on it.
    Running,
    /// Its edits are applied.
    Done,
    /// It could not produce edits that apply, or the user rejected them.
    Failed,
    /// A task it depends on failed.
    Skipped,
}

/// One task's state and result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Where it stands.
    pub status: TaskStatus,
    /// Worker calls made for it.
    pub attempts: u32,
    /// The worker's one-line summary.
    pub summary: Option<String>,
    /// Facts it recorded in the scratchpad.
    pub facts: Vec<String>,
    /// Files it changed.
    pub files_changed: Vec<String>,
    /// Its diff.
    pub diff: String,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Milliseconds since the epoch when its worker started.
    pub started_ms: Option<u64>,
    /// Milliseconds since the epoch when it finished.
    pub finished_ms: Option<u64>,
}

impl Default for TaskRecord {
    fn default() -> Self {
        TaskRecord {
            status: TaskStatus::Pending,
            attempts: 0,
            summary: None,
            facts: Vec::new(),
            files_changed: Vec::new(),
            diff: String::new(),
            error: None,
            started_ms: None,
            finished_ms: None,
        }
    }
}

/// A file the run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchedFile {
    /// Whether it existed before the run.
    pub existed: bool,
    /// The saved original's name under `originals/`, when it existed.
    pub original: Option<String>,
    /// blake3 of what the run last wrote: undo refuses a file that no longer has it.
    pub written_hash: String,
}

/// One run of the check command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// After which step (`tasks`, `task t1`, `fix 1`).
    pub after: String,
    /// Whether it passed.
    pub passed: bool,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Whether it was killed at the timeout.
    pub timed_out: bool,
    /// The end of its output.
    pub output: String,
    /// How it was isolated from the network.
    pub isolation: String,
    /// How long it ran.
    pub elapsed_ms: u64,
}

/// Edits recorded before they are written, so an interrupted write is finished on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    /// The task (or fix round) the edits belong to.
    pub step: String,
    /// New content by path; `None` removes the file.
    pub files: BTreeMap<String, Option<String>>,
}

/// Settings a run was started with, kept so `--resume` runs it the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Tasks run at once.
    pub jobs: usize,
    /// The check command.
    pub check: Option<String>,
    /// Run the check after every task too.
    pub check_each: bool,
    /// Seconds the check may take.
    pub check_timeout_secs: u64,
    /// Fixing rounds after a failing check.
    pub fix_rounds: u32,
    /// Most LLM calls.
    pub max_calls: u32,
    /// Most tokens, prompt and answer together.
    pub max_tokens: u64,
    /// Most seconds of wall time.
    pub max_seconds: u64,
    /// Write nothing; show the diff.
    pub dry_run: bool,
}

/// Everything `run.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The run's id (its folder's name).
    pub id: String,
    /// What the user asked for.
    pub request: String,
    /// When the run was created (RFC 3339).
    pub created_at: String,
    /// Where it stands.
    pub status: RunStatus,
    /// How it runs.
    pub settings: RunSettings,
    /// The validated plan.
    pub plan: Option<Plan>,
    /// Each task's state, by id.
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Facts tasks recorded for later ones.
    pub scratchpad: Vec<String>,
    /// Files written, by path.
    pub touched: BTreeMap<String, TouchedFile>,
    /// Check runs, in order.
    pub checks: Vec<CheckRecord>,
    /// Fixing rounds used.
    pub fix_rounds_used: u32,
    /// LLM calls made.
    pub llm_calls: u32,
    /// Tokens used.
    pub usage: Usage,
    /// Edits recorded but perhaps not all written.
    pub pending_write: Option<PendingWrite>,
    /// The final summary.
    pub summary: Option<String>,
    /// Why the run stopped early or failed, one line.
    pub error: Option<String>,
}

/// A run's folder and its state, saved at every change.
pub struct RunStore {
    dir: PathBuf,
    state: Mutex<RunState>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn io_error(path: &Path, error: io::Error) -> EditError {
    EditError::Io {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// A run id: creation time to the second, then four random hex digits.
fn new_id() -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let stamp: String = now
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mix = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{}-{mix:04x}", &stamp[..8], &stamp[8..])
}

impl RunStore {
    /// The folder that holds all runs of the index at `index_dir`.
    pub fn runs_dir(index_dir: &Path) -> PathBuf {
        index_dir.join("runs")
    }

    /// Creates a new run for `request`.
    pub fn create(
        index_dir: &Path,
        request: &str,
        settings: RunSettings,
    ) -> Result<Self, EditError> {
        let runs = Self::runs_dir(index_dir);
        let mut id = new_id();
        while runs.join(&id).exists() {
            id = format!("{id}x");
        }
        let dir = runs.join(&id);
        fs::create_dir_all(dir.join("originals")).map_err(|e| io_error(&dir, e))?;
        let state = RunState {
            id,
            request: request.to_string(),
            created_at: crate::llm::trace::now_rfc3339(),
            status: RunStatus::Planning,
            settings,
            plan: None,
            tasks: BTreeMap::new(),
            scratchpad: Vec::new(),
            touched: BTreeMap::new(),
            checks: Vec::new(),
            fix_rounds_used: 0,
            llm_calls: 0,
            usage: Usage::default(),
            pending_write: None,
            summary: None,
            error: None,
        };
        let store = RunStore {
            dir,
            state: Mutex::new(state),
        };
        store.update(|_| ())?;
        Ok(store)
    }

    /// Opens the run `id` of the index at `index_dir`.
    pub fn open(index_dir: &Path, id: &str) -> Result<Self, EditError> {
        let valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let dir = Self::runs_dir(index_dir).join(id);
        let file = dir.join("run.json");
        if !valid || !file.is_file() {
            return Err(EditError::NoSuchRun(id.to_string()));
        }
        let text = fs::read_to_string(&file).map_err(|e| io_error(&file, e))?;
        let state: RunState = serde_json::from_str(&text).map_err(|e| EditError::Io {
            path: file.clone(),
            reason: format!("not a run state Quarry can read: {e}"),
        })?;
        if let Err(reason) = check_state(id, &state) {
            return Err(EditError::ForgedRun {
                id: id.to_string(),
                dir,
                reason,
            });
        }
        Ok(RunStore {
            dir,
            state: Mutex::new(state),
        })
    }

    /// Every run of the index, newest first; a run whose state fails [`RunStore::open`]'s
    /// checks is not listed.
    pub fn list(index_dir: &Path) -> Vec<RunState> {
        let Ok(entries) = fs::read_dir(Self::runs_dir(index_dir)) else {
            return Vec::new();
        };
        let mut runs: Vec<RunState> = entries
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                let text = fs::read_to_string(e.path().join("run.json")).ok()?;
                let state: RunState = serde_json::from_str(&text).ok()?;
                check_state(&id, &state).is_ok().then_some(state)
            })
            .collect();
        runs.sort_by(|a: &RunState, b| b.id.cmp(&a.id));
        runs
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The trace file.
    pub fn trace_path(&self) -> PathBuf {
        self.dir.join("trace.jsonl")
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> RunState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the state with `change` and saves it, returning what `change` returned.
    pub fn update<T>(&self, change: impl FnOnce(&mut RunState) -> T) -> Result<T, EditError> {
        let mut state = self.lock();
        let out = change(&mut state);
        let file = self.dir.join("run.json");
        let text = serde_json::to_vec_pretty(&*state).map_err(|e| EditError::Io {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        replace_file(&file, &text).map_err(|e| io_error(&file, e))?;
        Ok(out)
    }

    /// Saves the original of `path` (its bytes, or that it did not exist) unless the run
    /// already has it.
    pub fn keep_original(&self, path: &str, bytes: Option<&[u8]>) -> Result<(), EditError> {
        if self.lock().touched.contains_key(path) {
            return Ok(());
        }
        let original = match bytes {
            Some(bytes) => {
                let name = original_name(path);
                let file = self.dir.join("originals").join(&name);
                replace_file(&file, bytes).map_err(|e| io_error(&file, e))?;
                Some(name)
            }
            None => None,
        };
        let hash = bytes.map(|b| blake3::hash(b).to_hex().to_string());
        self.update(|state| {
            state.touched.insert(
                path.to_string(),
                TouchedFile {
                    existed: original.is_some(),
                    original,
                    written_hash: hash.unwrap_or_default(),
                },
            );
        })
    }

    /// The original bytes of a touched file (`None`: it did not exist).
    pub fn original(&self, path: &str) -> Result<Option<Vec<u8>>, EditError> {
        let touched = self.lock().touched.get(path).cloned();
        match touched.and_then(|t| t.original) {
            Some(name) => {
                // Only a regular file of the run's own `originals/`: never a link out of it.
                let file = self.dir.join("originals").join(name);
                let meta = fs::symlink_metadata(&file).map_err(|e| io_error(&file, e))?;
                if !meta.is_file() {
                    return Err(EditError::ForgedRun {
                        id: self.lock().id.clone(),
                        dir: self.dir.clone(),
                        reason: format!("its saved original of {path} is not a regular file"),
                    });
                }
                fs::read(&file).map(Some).map_err(|e| io_error(&file, e))
            }
            None => Ok(None),
        }
    }
}

/// The name under `originals/` of `path`'s saved original: derived from the path, so
/// parallel tasks never pick the same name and a run's state cannot point anywhere else.
fn original_name(path: &str) -> String {
    blake3::hash(path.as_bytes()).to_hex()[..16].to_string()
}

/// A path as a run records it: relative, `/`-separated, no `.`/`..`/empty parts.
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// What a state Quarry wrote always satisfies: it names its own folder, every path it
/// touched or is about to write is plain and relative, and every saved original is the one
/// named after its path. The workspace's full rules are applied again before each write.
fn check_state(id: &str, state: &RunState) -> Result<(), String> {
    if state.id != id {
        return Err(format!("its state names run `{}`", state.id));
    }
    for (path, touched) in &state.touched {
        if !is_plain_relative(path) {
            return Err(format!(
                "it records a file outside the repository: `{path}`"
            ));
        }
        if let Some(name) = &touched.original
            && *name != original_name(path)
        {
            return Err(format!(
                "its saved original of {path} is `{name}`, not its own"
            ));
        }
        if touched.original.is_some() != touched.existed {
            return Err(format!("its record of {path} contradicts itself"));
        }
    }
    if let Some(pending) = &state.pending_write
        && let Some(path) = pending.files.keys().find(|p| !is_plain_relative(p))
    {
        return Err(format!(
            "its pending write names a file outside the repository: `{path}`"
        ));
    }
    Ok(())
}

/// Settings for unit tests.
#[cfg(test)]
pub(crate) fn tests_settings() -> RunSettings {
    tests::settings()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings() -> RunSettings {
        RunSettings {
            jobs: 2,
            check: None,
            check_each: false,
            check_timeout_secs: 60,
            fix_rounds: 2,
            max_calls: 10,
            max_tokens: 1000,
            max_seconds: 60,
            dry_run: false,
        }
    }

    #[test]
    fn forged_states_are_refused_and_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::create(dir.path(), "real", settings()).unwrap();
        run.keep_original("src/a.rs", Some(b"old")).unwrap();
        let id = run.snapshot().id;
        let good = run.snapshot();
        type Forge = Box<dyn Fn(&mut RunState)>;
        let forgeries: Vec<(&str, Forge)> = vec![
            (
                "outside",
                Box::new(|s| {
                    let t = s.touched.remove("src/a.rs").unwrap();
                    s.touched.insert("../x.rs".into(), t);
                }),
            ),
            (
                "outside",
                Box::new(|s| {
                    let t = s.touched.remove("src/a.rs").unwrap();
                    s.touched.insert("/tmp/x.rs".into(), t);
                }),
            ),
            (
                "not its own",
                Box::new(|s| {
                    s.touched.get_mut("src/a.rs").unwrap().original = Some("/etc/hostname".into());
                }),
            ),
            (
                "not its own",
                Box::new(|s| {
                    s.touched.get_mut("src/a.rs").unwrap().original = Some("../../run.json".into());
                }),
            ),
            (
                "pending write",
                Box::new(|s| {
                    let mut files = BTreeMap::new();
                    files.insert("src/../../x".to_string(), Some("x".to_string()));
                    s.pending_write = Some(PendingWrite {
                        step: "t1".into(),
                        files,
                    });
                }),
            ),
            ("names run", Box::new(|s| s.id = "other".into())),
        ];
        for (expected, forge) in forgeries {
            let mut state = good.clone();
            forge(&mut state);
            let file = dir.path().join("runs").join(&id).join("run.json");
            fs::write(&file, serde_json::to_vec(&state).unwrap()).unwrap();
            let error = RunStore::open(dir.path(), &id)
                .err()
                .expect("refused")
                .to_string();
            assert!(error.contains(expected), "{expected}: {error}");
            assert!(RunStore::list(dir.path()).is_empty(), "{expected}: listed");
        }
    }

    #[test]
    fn an_original_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::create(dir.path(), "real", settings()).unwrap();
        run.keep_original("src/a.rs", Some(b"old")).unwrap();
        let saved = run.dir().join("originals").join(original_name("src/a.rs"));
        fs::remove_file(&saved).unwrap();
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, "not yours").unwrap();
        std::os::unix::fs::symlink(&outside, &saved).unwrap();
        let error = run.original("src/a.rs").unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn state_survives_a_reopen_and_runs_are_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::create(dir.path(), "add a timeout", settings()).unwrap();
        run.update(|s| s.scratchpad.push("renamed a to b".into()))
            .unwrap();
        run.keep_original("src/a.rs", Some(b"old")).unwrap();
        run.keep_original("src/a.rs", Some(b"newer")).unwrap();
        run.keep_original("src/new.rs", None).unwrap();
        let id = run.snapshot().id;

        let again = RunStore::open(dir.path(), &id).unwrap();
        let state = again.snapshot();
        assert_eq!(state.request, "add a timeout");
        assert_eq!(state.scratchpad, vec!["renamed a to b"]);
        assert_eq!(
            again.original("src/a.rs").unwrap().as_deref(),
            Some(&b"old"[..])
        );
        assert_eq!(again.original("src/new.rs").unwrap(), None);
        assert!(!state.touched["src/new.rs"].existed);

        std::thread::sleep(std::time::Duration::from_millis(1100));
        let newer = RunStore::create(dir.path(), "second", settings()).unwrap();
        let ids: Vec<String> = RunStore::list(dir.path())
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![newer.snapshot().id, id]);
    }

    #[test]
    fn unknown_or_malformed_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            RunStore::open(dir.path(), "../../etc"),
            Err(EditError::NoSuchRun(_))
        ));
        assert!(matches!(
            RunStore::open(dir.path(), "20260101-000000-ffff"),
            Err(EditError::NoSuchRun(_))
        ));
    }
}
