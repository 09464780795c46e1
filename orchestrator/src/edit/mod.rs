//! `quarry edit`: a multi-file change planned as a DAG of tasks, carried out by LLM workers
//! in parallel, applied atomically, verified, and undoable.
//!
//! A run goes through fixed stages, each saved in the run's folder as it happens
//! ([`run::RunStore`]), so a killed run resumes where it stopped:
//!
//! 1. **plan** ([`plan`]): one call turns the request, retrieved code and a repository map into
//!    tasks with dependencies; an invalid plan goes back once with the exact error;
//! 2. **approve**: the caller's [`Approver`] sees the plan (and, if it asks, each task's
//!    diff) before anything is written;
//! 3. **execute** ([`scheduler`], [`worker`]): ready tasks run in parallel up to the job
//!    limit, never two on one file; each worker gets context retrieved for its own task and
//!    answers with
//!    SEARCH/REPLACE blocks ([`blocks`]) that apply all together or not at all, only inside
//!    the repository ([`workspace`]); after each task the index is refreshed so later tasks
//!    retrieve the new code;
//! 4. **verify** ([`check`]): the check command runs isolated; a failure goes to a fixing
//!    worker for a bounded number of rounds;
//! 5. **synthesize**: a summary and the unified diff of the whole run.

pub mod apply;
pub mod blocks;
pub mod check;
mod executor;
pub mod index;
pub mod locations;
pub mod matching;
pub mod nearest;
pub mod plan;
pub mod prompts;
pub mod run;
mod scheduler;
pub mod uses;
mod worker;
pub mod workspace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::Notify;

use crate::llm::LlmError;
use crate::llm::reliable::Reliable;
use crate::llm::trace::{TraceLog, now_rfc3339};
use apply::ApplyOptions;
use index::CodeIndex;
use plan::{Plan, PlanError, Task};
use run::{RunState, RunStatus, RunStore, TaskStatus};
use workspace::Workspace;

/// Why an edit run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The planner's answer was invalid twice.
    #[error("the model could not produce a valid plan: {0}")]
    InvalidPlan(PlanError),
    /// A call to the LLM failed for good.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A run limit was reached.
    #[error("stopped: the run reached its limit of {0}")]
    Limit(String),
    /// The user stopped the run.
    #[error("interrupted")]
    Interrupted,
    /// A path the run may not touch.
    #[error("refused to write {path}: {reason}")]
    Refused {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file or the run's state could not be read or written.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The index could not be searched or refreshed.
    #[error("index: {0}")]
    Index(String),
    /// No run has that id.
    #[error("no run `{0}` in this index; `quarry runs` lists them")]
    NoSuchRun(String),
    /// The run's files were not written by Quarry as they stand (planted or edited by hand).
    #[error("run {id} is refused: {reason}; nothing was written (remove {} if you did not make it)", dir.display())]
    ForgedRun {
        /// The run.
        id: String,
        /// Its folder.
        dir: PathBuf,
        /// What does not hold.
        reason: String,
    },
    /// The run cannot be resumed.
    #[error("run {id} cannot be resumed: it is {status}")]
    NotResumable {
        /// The run.
        id: String,
        /// Its status.
        status: String,
    },
    /// Undo would overwrite changes made after the run.
    #[error(
        "not undone: {} changed since run {id} wrote {}; restore by hand, or pass --force to overwrite",
        paths.join(", "),
        if paths.len() == 1 { "it" } else { "them" }
    )]
    ChangedSince {
        /// The run.
        id: String,
        /// Files that no longer hold what the run wrote.
        paths: Vec<String>,
    },
}

/// Who says yes before anything is written.
#[async_trait]
pub trait Approver: Send + Sync {
    /// Whether to carry out `plan`.
    async fn approve_plan(&self, plan: &Plan) -> bool;
    /// Whether to apply `task`'s `diff`; only asked when [`Approver::per_task`] says so.
    async fn approve_task(&self, task: &Task, diff: &str) -> bool;
    /// Whether every task's diff needs its own approval.
    fn per_task(&self) -> bool {
        false
    }
}

/// Approves everything (`--yes`, and dry runs, which write nothing).
pub struct ApproveAll;

#[async_trait]
impl Approver for ApproveAll {
    async fn approve_plan(&self, _: &Plan) -> bool {
        true
    }
    async fn approve_task(&self, _: &Task, _: &str) -> bool {
        true
    }
}

/// What happens during a run, for the caller to show.
#[derive(Debug, Clone)]
pub enum EditEvent {
    /// The plan is ready.
    Planned(Plan),
    /// A task's worker started.
    TaskStarted(String),
    /// A task ended (done, failed or skipped).
    TaskEnded {
        /// The task.
        id: String,
        /// How it ended.
        status: TaskStatus,
        /// Its summary or error.
        detail: String,
    },
    /// The check command is running.
    Checking(String),
    /// The check command finished.
    Checked {
        /// Whether it passed.
        passed: bool,
        /// After what.
        after: String,
    },
}

/// A flag Ctrl-C raises; the run stops at once, consistent and resumable.
#[derive(Clone, Default)]
pub struct Cancel {
    raised: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Cancel {
    /// Raises the flag.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether it is raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Waits until it is raised.
    pub async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

/// Token budgets of the prompts.
#[derive(Debug, Clone, Copy)]
pub struct PromptBudgets {
    /// Retrieved code in the planner's prompt.
    pub plan_context: usize,
    /// The repository map.
    pub repo_map: usize,
    /// The planner's uses section (every file referencing the names the change is about);
    /// when it needs more, it takes up to half of `plan_context` and of `repo_map` first.
    pub plan_uses: usize,
    /// Retrieved code in each worker's prompt.
    pub worker_context: usize,
    /// The callers and callees in each worker's prompt.
    pub worker_graph: usize,
    /// Most tokens of a plan.
    pub plan_answer: u32,
    /// Most tokens of a worker's answer.
    pub worker_answer: u32,
}

impl Default for PromptBudgets {
    fn default() -> Self {
        PromptBudgets {
            plan_context: 2000,
            repo_map: 800,
            plan_uses: 1200,
            worker_context: 1500,
            worker_graph: 500,
            plan_answer: 1200,
            worker_answer: 2048,
        }
    }
}

/// What an edit run works with, handed to [`EditSession::new`].
pub struct SessionDeps {
    /// The LLM.
    pub provider: Arc<Reliable>,
    /// The index.
    pub index: Arc<dyn CodeIndex>,
    /// The repository.
    pub workspace: Arc<Workspace>,
    /// The run's state.
    pub run: Arc<RunStore>,
    /// The run's trace (LLM calls and tool steps).
    pub trace: Arc<TraceLog>,
    /// Who approves.
    pub approver: Arc<dyn Approver>,
    /// Where progress goes.
    pub on_event: Arc<dyn Fn(EditEvent) + Send + Sync>,
    /// Ctrl-C.
    pub cancel: Cancel,
    /// Prompt sizes.
    pub budgets: PromptBudgets,
    /// How tolerant applying workers' answers is.
    pub apply: ApplyOptions,
    /// Long-term notes retrieved for this run.
    pub memory: Vec<String>,
}

/// One edit run and everything it works with.
pub struct EditSession {
    provider: Arc<Reliable>,
    index: Arc<dyn CodeIndex>,
    workspace: Arc<Workspace>,
    run: Arc<RunStore>,
    trace: Arc<TraceLog>,
    approver: Arc<dyn Approver>,
    on_event: Arc<dyn Fn(EditEvent) + Send + Sync>,
    cancel: Cancel,
    budgets: PromptBudgets,
    apply: ApplyOptions,
    memory: Vec<String>,
    /// Where this invocation's limits count from.
    baseline: Baseline,
}

/// The run's figures when this invocation started: limits apply to each invocation, so a
/// run stopped by one can be resumed with the same or a larger budget.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    /// Milliseconds since the epoch.
    pub started_ms: u64,
    /// LLM calls made before.
    pub calls: u32,
    /// Tokens used before.
    pub tokens: u64,
}

impl Baseline {
    /// Now, for a run in `state`.
    fn now(state: &RunState) -> Self {
        Baseline {
            started_ms: run::now_ms(),
            calls: state.llm_calls,
            tokens: u64::from(state.usage.prompt_tokens) + u64::from(state.usage.completion_tokens),
        }
    }
}

/// One tool step in the trace.
#[derive(Serialize)]
struct StepRecord<'a> {
    time: String,
    step: &'a str,
    target: &'a str,
    detail: serde_json::Value,
}

impl EditSession {
    /// A session over `deps`; this invocation's limits count from the run's state now.
    pub fn new(deps: SessionDeps) -> Self {
        let baseline = Baseline::now(&deps.run.snapshot());
        EditSession {
            provider: deps.provider,
            index: deps.index,
            workspace: deps.workspace,
            run: deps.run,
            trace: deps.trace,
            approver: deps.approver,
            on_event: deps.on_event,
            cancel: deps.cancel,
            budgets: deps.budgets,
            apply: deps.apply,
            memory: deps.memory,
            baseline,
        }
    }

    /// The index the run reads and refreshes.
    pub fn index(&self) -> &Arc<dyn CodeIndex> {
        &self.index
    }

    fn emit(&self, event: EditEvent) {
        (self.on_event)(event);
    }

    /// Appends a tool step (`apply`, `reindex`, `check`) to the trace.
    fn trace_step(&self, step: &str, target: &str, detail: serde_json::Value) {
        self.trace.write(&StepRecord {
            time: now_rfc3339(),
            step,
            target,
            detail,
        });
    }

    /// Runs (or resumes) the run to its end and returns its final state.
    pub async fn execute(self: Arc<Self>) -> Result<RunState, EditError> {
        let result = self.clone().stages().await;
        let status = match &result {
            Ok(status) => *status,
            Err(EditError::Interrupted) | Err(EditError::Limit(_)) => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        };
        let error = result.as_ref().err().map(ToString::to_string);
        self.run.update(|state| {
            state.status = status;
            if error.is_some() {
                state.error = error.clone();
            }
        })?;
        result.map(|_| self.run.snapshot())
    }

    async fn stages(self: Arc<Self>) -> Result<RunStatus, EditError> {
        let state = self.run.snapshot();
        let plan = match state.plan {
            Some(plan) => plan,
            None => self.make_plan().await?,
        };
        if matches!(
            state.status,
            RunStatus::Planning | RunStatus::AwaitingApproval
        ) {
            self.run
                .update(|s| s.status = RunStatus::AwaitingApproval)?;
            self.emit(EditEvent::Planned(plan.clone()));
            if !self.approver.approve_plan(&plan).await {
                self.run.update(|s| s.status = RunStatus::Declined)?;
                return Ok(RunStatus::Declined);
            }
        }
        // A write a kill interrupted is finished before anything else.
        if let Some(pending) = self.run.snapshot().pending_write {
            self.workspace.finish_write(&self.run, &pending.files)?;
            self.trace_step(
                "finish-write",
                &pending.step,
                serde_json::json!({"files": pending.files.keys().collect::<Vec<_>>() }),
            );
            if let Some(task) = pending.step.strip_prefix("task ") {
                let task = task.to_string();
                self.run.update(|s| {
                    if let Some(record) = s.tasks.get_mut(&task) {
                        record.status = TaskStatus::Done;
                    }
                })?;
            }
        }
        self.run.update(|s| {
            s.status = RunStatus::Running;
            s.error = None;
            for task in &plan.tasks {
                let record = s.tasks.entry(task.id.clone()).or_default();
                // Whatever did not finish runs again.
                if record.status != TaskStatus::Done {
                    *record = run::TaskRecord::default();
                }
            }
        })?;
        self.clone().run_tasks(&plan).await?;
        let state = self.run.snapshot();
        let all_done = state.tasks.values().all(|t| t.status == TaskStatus::Done);
        let any_done = state.tasks.values().any(|t| t.status == TaskStatus::Done);
        let mut passed = true;
        if any_done && state.settings.check.is_some() && !self.workspace.is_dry_run() {
            self.run.update(|s| s.status = RunStatus::Checking)?;
            passed = self.clone().verify().await?;
        }
        let summary = self.synthesize()?;
        self.run.update(|s| s.summary = Some(summary))?;
        Ok(if all_done && passed {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        })
    }

    /// The unified diff of everything the run changed so far.
    pub fn diff(&self) -> Result<String, EditError> {
        let state = self.run.snapshot();
        let mut paths: Vec<String> = state.touched.keys().cloned().collect();
        if self.workspace.is_dry_run() {
            // A dry run's edits live in memory; the disk holds the originals.
            paths = state
                .tasks
                .values()
                .flat_map(|t| t.files_changed.clone())
                .chain(paths)
                .collect();
            paths.sort();
            paths.dedup();
        }
        let mut out = String::new();
        for path in paths {
            let before = if self.workspace.is_dry_run() {
                std::fs::read(self.workspace.root().join(&path)).ok()
            } else {
                self.run.original(&path)?
            };
            let before = before.map(|b| String::from_utf8_lossy(&b).to_string());
            let after = self.workspace.read(&path)?;
            out.push_str(&unified_diff(&path, before.as_deref(), after.as_deref()));
        }
        Ok(out)
    }

    fn synthesize(&self) -> Result<String, EditError> {
        let state = self.run.snapshot();
        let mut lines = Vec::new();
        let plan = state.plan.clone().unwrap_or(Plan { tasks: Vec::new() });
        for task in &plan.tasks {
            let Some(record) = state.tasks.get(&task.id) else {
                continue;
            };
            let detail = match record.status {
                TaskStatus::Done => record
                    .summary
                    .clone()
                    .unwrap_or_else(|| task.description.clone()),
                _ => record.error.clone().unwrap_or_default(),
            };
            let status = serde_json::to_value(record.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let files = if record.files_changed.is_empty() {
                String::new()
            } else {
                format!(" ({})", record.files_changed.join(", "))
            };
            lines.push(format!("[{}] {status}: {detail}{files}", task.id));
        }
        if let Some(check) = state.checks.last() {
            lines.push(format!(
                "check `{}` {} after {}{}",
                state.settings.check.as_deref().unwrap_or(""),
                if check.passed { "passed" } else { "failed" },
                check.after,
                if state.fix_rounds_used > 0 {
                    format!(" ({} fixing rounds)", state.fix_rounds_used)
                } else {
                    String::new()
                }
            ));
        } else if state.settings.check.is_some() && self.workspace.is_dry_run() {
            lines.push("check not run: a dry run writes nothing to check".to_string());
        }
        Ok(lines.join("\n"))
    }
}

/// A unified diff of one file (`None`: absent), with `a/` and `b/` headers; empty when equal.
pub fn unified_diff(path: &str, before: Option<&str>, after: Option<&str>) -> String {
    if before == after {
        return String::new();
    }
    let old = before.unwrap_or("");
    let new = after.unwrap_or("");
    let from = if before.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".to_string()
    };
    let to = if after.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".to_string()
    };
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}

/// Restores the originals of every file run `id` wrote. Files changed since the run wrote
/// them make it refuse, naming them, unless `force`. Every path is checked against the
/// workspace's rules before anything is written or deleted: a run's state is input, and a
/// planted one must not reach outside the repository. Returns the paths restored.
pub fn undo(run: &RunStore, workspace: &Workspace, force: bool) -> Result<Vec<String>, EditError> {
    let state = run.snapshot();
    if state.status == RunStatus::Undone {
        return Ok(Vec::new());
    }
    for path in state.touched.keys() {
        workspace
            .check_path(path, true)
            .map_err(|reason| EditError::Refused {
                path: path.clone(),
                reason,
            })?;
    }
    let root = workspace.root();
    let mut changed = Vec::new();
    for (path, touched) in &state.touched {
        let current = std::fs::read(root.join(path)).ok();
        let hash = current
            .as_ref()
            .map(|b| blake3::hash(b).to_hex().to_string())
            .unwrap_or_default();
        if hash != touched.written_hash {
            changed.push(path.clone());
        }
    }
    if !changed.is_empty() && !force {
        return Err(EditError::ChangedSince {
            id: state.id,
            paths: changed,
        });
    }
    let mut restored = BTreeMap::new();
    for path in state.touched.keys() {
        let original = run.original(path)?;
        restored.insert(path.clone(), original);
    }
    workspace.restore(&restored)?;
    run.update(|s| s.status = RunStatus::Undone)?;
    Ok(restored.into_keys().collect())
}
