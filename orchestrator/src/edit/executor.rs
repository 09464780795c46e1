//! The stages that call the LLM: planning, the task scheduler and its workers, and the
//! check-and-fix loop.
//!
//! The scheduler starts a task when every task it depends on is done, no running task owns
//! one of its files, and fewer than `jobs` are running. A failed task skips its dependants.
//! Every LLM call first takes one unit of the run's call budget and checks its token budget
//! and deadline; running out stops new work, lets nothing half-apply, and says which limit.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use quarry_indexer::secrets;
use quarry_retriever::{ContextPack, SearchRequest};
use tokio::task::JoinSet;

use super::blocks::{MatchKind, apply_block, parse_reply};
use super::check::run_check;
use super::plan::{Plan, Task, parse_plan, plan_schema, validate};
use super::prompts::{self, Prerequisite, WorkerBrief};
use super::run::{CheckRecord, TaskStatus, now_ms};
use super::{EditError, EditEvent, EditSession};
use crate::llm::{ChatOptions, ChatRequest, ChatResponse, JsonSchema, Message};

/// Worker calls per task, the first included.
const WORKER_ATTEMPTS: u32 = 3;
/// Chunks retrieved before packing a prompt's context.
const RETRIEVE_K: usize = 12;

/// New file contents, by path (`None`: removed).
type FileChanges = BTreeMap<String, Option<String>>;

/// The paths a repository map lists (when it lists them all).
fn map_files(map: &str) -> Vec<String> {
    if map.lines().any(|l| l.starts_with("… ")) {
        return Vec::new();
    }
    map.lines()
        .filter_map(|l| l.split(": ").next())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

impl EditSession {
    /// One LLM call within the run's limits, counted in its state.
    async fn call(
        &self,
        purpose: &str,
        messages: Vec<Message>,
        options: ChatOptions,
    ) -> Result<ChatResponse, EditError> {
        if self.cancel.is_raised() {
            return Err(EditError::Interrupted);
        }
        let baseline = self.baseline;
        self.run.update(|s| {
            let settings = &s.settings;
            let tokens = (u64::from(s.usage.prompt_tokens) + u64::from(s.usage.completion_tokens))
                .saturating_sub(baseline.tokens);
            if s.llm_calls.saturating_sub(baseline.calls) >= settings.max_calls {
                Err(EditError::Limit(format!(
                    "{} LLM calls (--max-calls)",
                    settings.max_calls
                )))
            } else if tokens >= settings.max_tokens {
                Err(EditError::Limit(format!(
                    "{} tokens (--max-tokens)",
                    settings.max_tokens
                )))
            } else if now_ms().saturating_sub(baseline.started_ms) >= settings.max_seconds * 1000 {
                Err(EditError::Limit(format!(
                    "{} s of wall time (--max-time)",
                    settings.max_seconds
                )))
            } else {
                s.llm_calls += 1;
                Ok(())
            }
        })??;
        let request = ChatRequest { messages, options };
        let response = self.provider.chat_as(purpose, &request, None).await?;
        self.run.update(|s| {
            s.usage.prompt_tokens += response.usage.prompt_tokens;
            s.usage.completion_tokens += response.usage.completion_tokens;
        })?;
        Ok(response)
    }

    /// Context for `query`, packed to `budget`.
    async fn context(&self, query: &str, budget: usize) -> Result<ContextPack, EditError> {
        self.index
            .pack(SearchRequest::new(query, RETRIEVE_K), budget)
            .await
    }

    /// Asks for a plan, sends an invalid one back once, and stores the valid one.
    pub(super) async fn make_plan(&self) -> Result<Plan, EditError> {
        let request = self.run.snapshot().request;
        let pack = self.context(&request, self.budgets.plan_context).await?;
        let mut priority: Vec<String> = Vec::new();
        for item in &pack.items {
            if !priority.contains(&item.path) {
                priority.push(item.path.clone());
            }
        }
        let map = self.index.repo_map(priority, self.budgets.repo_map).await?;
        let files = map_files(&map);
        let mut messages = prompts::plan_messages(&request, &pack, &map, &files, &self.memory);
        let options = ChatOptions {
            max_tokens: self.budgets.plan_answer,
            temperature: 0.0,
            stop: Vec::new(),
            json_schema: Some(JsonSchema {
                name: "plan".to_string(),
                schema: plan_schema(&files),
            }),
        };
        let workspace = self.workspace.clone();
        let check_file = move |path: &str, is_new: bool| workspace.check_path(path, is_new);
        let mut last_error = None;
        for attempt in 0..2 {
            let purpose = if attempt == 0 { "plan" } else { "plan retry" };
            let answer = self
                .call(purpose, messages.clone(), options.clone())
                .await?;
            let parsed = parse_plan(&answer.text).and_then(|mut plan| {
                validate(&mut plan, &check_file)?;
                Ok(plan)
            });
            match parsed {
                Ok(plan) => {
                    self.trace_step(
                        "plan",
                        "",
                        serde_json::json!({"tasks": plan.tasks.len(), "attempt": attempt + 1}),
                    );
                    self.run.update(|s| s.plan = Some(plan.clone()))?;
                    return Ok(plan);
                }
                Err(error) => {
                    self.trace_step(
                        "plan-invalid",
                        "",
                        serde_json::json!({"error": error.to_string()}),
                    );
                    messages.push(Message::assistant(answer.text));
                    messages.push(prompts::plan_retry(&error.to_string()));
                    last_error = Some(error);
                }
            }
        }
        Err(EditError::InvalidPlan(
            last_error.unwrap_or(super::plan::PlanError::Empty),
        ))
    }

    /// Runs every pending task of `plan` to its end.
    pub(super) async fn run_tasks(self: Arc<Self>, plan: &Plan) -> Result<(), EditError> {
        let jobs = self.run.snapshot().settings.jobs.max(1);
        let mut running: JoinSet<(String, Result<(), EditError>)> = JoinSet::new();
        let mut busy: HashSet<String> = HashSet::new();
        let mut stop: Option<EditError> = None;
        loop {
            if stop.is_none() {
                self.skip_blocked(plan)?;
                let state = self.run.snapshot();
                for task in &plan.tasks {
                    if running.len() >= jobs {
                        break;
                    }
                    let ready = state
                        .tasks
                        .get(&task.id)
                        .is_some_and(|t| t.status == TaskStatus::Pending)
                        && task.depends_on.iter().all(|d| {
                            state
                                .tasks
                                .get(d)
                                .is_some_and(|t| t.status == TaskStatus::Done)
                        })
                        && task.all_files().all(|f| !busy.contains(f));
                    if !ready {
                        continue;
                    }
                    busy.extend(task.all_files().cloned());
                    self.run.update(|s| {
                        if let Some(record) = s.tasks.get_mut(&task.id) {
                            record.status = TaskStatus::Running;
                            record.started_ms = Some(now_ms());
                        }
                    })?;
                    self.emit(EditEvent::TaskStarted(task.id.clone()));
                    let session = Arc::clone(&self);
                    let task = task.clone();
                    let plan = plan.clone();
                    running.spawn(async move {
                        let result = session.run_task(&plan, &task).await;
                        (task.id, result)
                    });
                }
            }
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                joined = running.join_next() => joined,
                _ = self.cancel.raised() => {
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    stop = Some(EditError::Interrupted);
                    None
                }
            };
            let Some(joined) = joined else {
                continue;
            };
            let (id, result) =
                joined.map_err(|e| EditError::Index(format!("a task panicked: {e}")))?;
            if let Some(task) = plan.task(&id) {
                for file in task.all_files() {
                    busy.remove(file);
                }
            }
            match result {
                Ok(()) => {}
                Err(error @ (EditError::Limit(_) | EditError::Interrupted)) => {
                    // Not the task's fault: it runs again on resume.
                    self.run.update(|s| {
                        if let Some(record) = s.tasks.get_mut(&id) {
                            record.status = TaskStatus::Pending;
                            record.started_ms = None;
                        }
                    })?;
                    stop.get_or_insert(error);
                }
                Err(error) => {
                    let message = error.to_string();
                    self.run.update(|s| {
                        if let Some(record) = s.tasks.get_mut(&id) {
                            record.status = TaskStatus::Failed;
                            record.error = Some(message.clone());
                            record.finished_ms = Some(now_ms());
                        }
                    })?;
                    self.trace_step("task-failed", &id, serde_json::json!({"error": message}));
                    self.emit(EditEvent::TaskEnded {
                        id: id.clone(),
                        status: TaskStatus::Failed,
                        detail: message,
                    });
                }
            }
        }
        // Tasks still running when the run stopped go back to pending.
        self.run.update(|s| {
            for record in s.tasks.values_mut() {
                if record.status == TaskStatus::Running {
                    record.status = TaskStatus::Pending;
                    record.started_ms = None;
                }
            }
        })?;
        if stop.is_none() {
            self.skip_blocked(plan)?;
        }
        match stop {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Marks pending tasks whose dependencies failed or were skipped as skipped.
    fn skip_blocked(&self, plan: &Plan) -> Result<(), EditError> {
        loop {
            let state = self.run.snapshot();
            let blocked = plan.tasks.iter().find_map(|task| {
                let pending = state
                    .tasks
                    .get(&task.id)
                    .is_some_and(|t| t.status == TaskStatus::Pending);
                let failed = task.depends_on.iter().find(|d| {
                    state.tasks.get(*d).is_some_and(|t| {
                        matches!(t.status, TaskStatus::Failed | TaskStatus::Skipped)
                    })
                })?;
                pending.then(|| (task.id.clone(), failed.clone()))
            });
            let Some((id, failed)) = blocked else {
                return Ok(());
            };
            let reason = format!("skipped: it depends on `{failed}`, which did not succeed");
            self.run.update(|s| {
                if let Some(record) = s.tasks.get_mut(&id) {
                    record.status = TaskStatus::Skipped;
                    record.error = Some(reason.clone());
                }
            })?;
            self.emit(EditEvent::TaskEnded {
                id,
                status: TaskStatus::Skipped,
                detail: reason,
            });
        }
    }

    /// The current text of each of `paths`.
    fn current_texts(&self, paths: &[String]) -> Result<Vec<(String, Option<String>)>, EditError> {
        paths
            .iter()
            .map(|p| Ok((p.clone(), self.workspace.read(p)?)))
            .collect()
    }

    /// One worker: prompt, answer, apply (asking again while blocks do not apply), refresh.
    async fn run_task(&self, plan: &Plan, task: &Task) -> Result<(), EditError> {
        let state = self.run.snapshot();
        let owned: Vec<String> = task.all_files().cloned().collect();
        let query = format!("{}\n{}", task.description, owned.join(" "));
        let context = self.context(&query, self.budgets.worker_context).await?;
        let prerequisites: Vec<Prerequisite<'_>> = task
            .depends_on
            .iter()
            .filter_map(|d| {
                let record = state.tasks.get(d)?;
                Some(Prerequisite {
                    task: plan.task(d)?,
                    summary: record.summary.as_deref().unwrap_or("done"),
                    diff: &record.diff,
                })
            })
            .collect();
        let files = self.current_texts(&owned)?;
        let mut messages = prompts::worker_messages(&WorkerBrief {
            request: &state.request,
            task,
            files: &files,
            prerequisites: &prerequisites,
            scratchpad: &state.scratchpad,
            memory: &self.memory,
            context: &context,
        });
        let options = ChatOptions {
            max_tokens: self.budgets.worker_answer,
            temperature: 0.0,
            ..ChatOptions::default()
        };
        let check_each = state
            .settings
            .check
            .clone()
            .filter(|_| state.settings.check_each);
        let mut last_problem = String::new();
        for attempt in 1..=WORKER_ATTEMPTS {
            let purpose = format!("task {} attempt {attempt}", task.id);
            let answer = self
                .call(&purpose, messages.clone(), options.clone())
                .await?;
            self.run.update(|s| {
                if let Some(record) = s.tasks.get_mut(&task.id) {
                    record.attempts = attempt;
                }
            })?;
            messages.push(Message::assistant(answer.text.clone()));
            let applied = self.apply_answer(&answer.text, &task.id, &owned, &task.new_files);
            let (changes, reply) = match applied {
                Ok(applied) => applied,
                Err(problem) => {
                    self.trace_step(
                        "apply-failed",
                        &task.id,
                        serde_json::json!({"attempt": attempt, "problem": problem}),
                    );
                    messages.push(prompts::worker_retry(
                        &problem,
                        &self.current_texts(&owned)?,
                    ));
                    last_problem = problem;
                    continue;
                }
            };
            let diff: String = changes
                .iter()
                .map(|(path, after)| -> Result<String, EditError> {
                    let before = self.workspace.read(path)?;
                    Ok(super::unified_diff(
                        path,
                        before.as_deref(),
                        after.as_deref(),
                    ))
                })
                .collect::<Result<_, _>>()?;
            if self.approver.per_task() && !self.approver.approve_task(task, &diff).await {
                return Err(EditError::Refused {
                    path: owned.join(", "),
                    reason: "the user rejected the task's diff".to_string(),
                });
            }
            // Written, then recorded as done, with no await between: an abort cannot split them.
            self.workspace
                .write(&self.run, &format!("task {}", task.id), &changes)?;
            let summary = reply
                .summary
                .clone()
                .unwrap_or_else(|| task.description.clone());
            self.run.update(|s| {
                if let Some(record) = s.tasks.get_mut(&task.id) {
                    record.status = TaskStatus::Done;
                    record.summary = Some(summary.clone());
                    record.facts = reply.facts.clone();
                    for path in changes.keys() {
                        if !record.files_changed.contains(path) {
                            record.files_changed.push(path.clone());
                        }
                    }
                    record.diff.push_str(&diff);
                    record.finished_ms = Some(now_ms());
                    record.error = None;
                }
                for fact in &reply.facts {
                    s.scratchpad.push(format!("[{}] {fact}", task.id));
                }
            })?;
            self.refresh(&task.id).await?;
            if let Some(command) = &check_each {
                let record = self.check(command, &format!("task {}", task.id)).await?;
                if !record.passed && attempt < WORKER_ATTEMPTS {
                    let problem = format!(
                        "they were applied, but then the check `{command}` failed:\n```\n{}\n```\nFix it with more blocks against the files as they are now.",
                        record.output.trim_end()
                    );
                    messages.push(prompts::worker_retry(
                        &problem,
                        &self.current_texts(&owned)?,
                    ));
                    continue;
                }
            }
            self.emit(EditEvent::TaskEnded {
                id: task.id.clone(),
                status: TaskStatus::Done,
                detail: summary,
            });
            return Ok(());
        }
        if self
            .run
            .snapshot()
            .tasks
            .get(&task.id)
            .is_some_and(|t| t.status == TaskStatus::Done)
        {
            // Applied, but the per-task check kept failing: the final check decides.
            return Ok(());
        }
        Err(EditError::Refused {
            path: owned.join(", "),
            reason: format!(
                "no applicable edit after {WORKER_ATTEMPTS} attempts; last problem: {last_problem}"
            ),
        })
    }

    /// Parses `answer` and applies its blocks in memory, all or nothing. The error is what
    /// the worker is told.
    fn apply_answer(
        &self,
        answer: &str,
        step: &str,
        owned: &[String],
        new_files: &[String],
    ) -> Result<(FileChanges, super::blocks::WorkerReply), String> {
        let reply = parse_reply(answer).map_err(|e| e.to_string())?;
        if reply.blocks.is_empty() {
            return Err("the answer has no SEARCH/REPLACE blocks".to_string());
        }
        let mut changes: FileChanges = BTreeMap::new();
        let mut tolerated = Vec::new();
        for (n, block) in reply.blocks.iter().enumerate() {
            let path = self
                .workspace
                .check_path(&block.path, true)
                .map_err(|reason| {
                    format!(
                        "block {} targets {}, which is refused: {reason}",
                        n + 1,
                        block.path
                    )
                })?;
            let is_new = new_files.contains(&path);
            if !owned.contains(&path) {
                return Err(format!(
                    "block {} edits {path}, but this task may only edit {}",
                    n + 1,
                    owned.join(", ")
                ));
            }
            let current = match changes.get(&path) {
                Some(text) => text.clone(),
                None => self.workspace.read(&path).map_err(|e| e.to_string())?,
            };
            if current.is_none() && !is_new && !block.search.trim().is_empty() {
                return Err(format!("block {}: {path} does not exist", n + 1));
            }
            let current_text = current.as_deref().unwrap_or("");
            // The worker saw the file with its secrets redacted; markers it kept are put back.
            let unredacted = secrets::unredact_edit(
                current_text,
                secrets::TextKind::of_path(&path),
                &block.search,
                &block.replace,
            );
            let (search, replace) = match &unredacted {
                Some((search, replace)) => (search.as_str(), replace.as_str()),
                None => (block.search.as_str(), block.replace.as_str()),
            };
            let (text, kind) = apply_block(current_text, search, replace, &path)
                .map_err(|e| format!("block {}: {e}", n + 1))?;
            if kind == MatchKind::TrailingWhitespace {
                tolerated.push(format!("block {} ({path})", n + 1));
            }
            changes.insert(path, Some(text));
        }
        self.trace_step(
            "apply",
            step,
            serde_json::json!({
                "blocks": reply.blocks.len(),
                "files": changes.keys().collect::<Vec<_>>(),
                "matched_ignoring_trailing_whitespace": tolerated,
            }),
        );
        Ok((changes, reply))
    }

    /// Re-indexes what the run wrote, so later tasks retrieve it.
    async fn refresh(&self, step: &str) -> Result<(), EditError> {
        if self.workspace.is_dry_run() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        self.index.refresh().await?;
        self.trace_step(
            "reindex",
            step,
            serde_json::json!({"ms": started.elapsed().as_millis() as u64}),
        );
        Ok(())
    }

    /// Runs the check command once and records it.
    async fn check(&self, command: &str, after: &str) -> Result<CheckRecord, EditError> {
        self.emit(EditEvent::Checking(after.to_string()));
        let timeout = Duration::from_secs(self.run.snapshot().settings.check_timeout_secs.max(1));
        let outcome = tokio::select! {
            outcome = run_check(self.workspace.root(), command, timeout) => outcome,
            _ = self.cancel.raised() => return Err(EditError::Interrupted),
        }
        .map_err(|e| EditError::Io {
            path: self.workspace.root().to_path_buf(),
            reason: format!("cannot run the check `{command}`: {e}"),
        })?;
        let record = CheckRecord {
            after: after.to_string(),
            passed: outcome.passed,
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            output: outcome.output,
            isolation: outcome.isolation,
            elapsed_ms: outcome.elapsed.as_millis() as u64,
        };
        self.trace_step(
            "check",
            after,
            serde_json::to_value(&record).unwrap_or_default(),
        );
        self.run.update(|s| s.checks.push(record.clone()))?;
        self.emit(EditEvent::Checked {
            passed: record.passed,
            after: after.to_string(),
        });
        Ok(record)
    }

    /// The final check, and fixing rounds while it fails. Returns whether it passed.
    pub(super) async fn verify(self: Arc<Self>) -> Result<bool, EditError> {
        let state = self.run.snapshot();
        let Some(command) = state.settings.check.clone() else {
            return Ok(true);
        };
        let mut round = state.fix_rounds_used;
        let mut record = self
            .check(&command, if round == 0 { "tasks" } else { "resume" })
            .await?;
        while !record.passed && round < state.settings.fix_rounds {
            round += 1;
            self.run.update(|s| s.fix_rounds_used = round)?;
            let step = format!("fix {round}");
            let touched: Vec<String> = self.run.snapshot().touched.keys().cloned().collect();
            let files = self.current_texts(&touched)?;
            let messages = prompts::fix_messages(
                &state.request,
                &command,
                &record.output,
                &self.diff()?,
                &files,
            );
            let options = ChatOptions {
                max_tokens: self.budgets.worker_answer,
                temperature: 0.0,
                ..ChatOptions::default()
            };
            let answer = self.call(&step, messages, options).await?;
            // The fixer may edit any file the run touched, or any other existing file the
            // failure points at.
            let mut allowed = touched.clone();
            if let Ok(reply) = parse_reply(&answer.text) {
                for block in &reply.blocks {
                    if let Ok(path) = self.workspace.check_path(&block.path, false)
                        && !allowed.contains(&path)
                    {
                        allowed.push(path);
                    }
                }
            }
            match self.apply_answer(&answer.text, &step, &allowed, &[]) {
                Ok((changes, _)) => {
                    self.workspace.write(&self.run, &step, &changes)?;
                    self.refresh(&step).await?;
                }
                Err(problem) => {
                    self.trace_step(
                        "apply-failed",
                        &step,
                        serde_json::json!({"problem": problem}),
                    );
                }
            }
            record = self.check(&command, &step).await?;
        }
        Ok(record.passed)
    }
}
