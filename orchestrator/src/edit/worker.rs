//! One task's worker: its prompt (retrieved context, the files it owns, what the tasks it
//! depends on did), the answer's SEARCH/REPLACE blocks applied all or none (sent back with
//! the real text while they do not apply, at most [`WORKER_ATTEMPTS`] calls), then a
//! re-index so later tasks see the change.

use super::apply::{self, FileChanges, Refusal};
use super::blocks::WorkerReply;
use super::plan::{Plan, Task};
use super::prompts::{self, Prerequisite, WorkerBrief};
use super::run::{TaskStatus, now_ms};
use super::uses;
use super::{EditError, EditEvent, EditSession};
use crate::llm::{ChatOptions, Message};

/// Worker calls per task, the first included.
const WORKER_ATTEMPTS: u32 = 3;

impl EditSession {
    /// The current text of each of `paths`.
    pub(super) fn current_texts(
        &self,
        paths: &[String],
    ) -> Result<Vec<(String, Option<String>)>, EditError> {
        paths
            .iter()
            .map(|p| Ok((p.clone(), self.workspace.read(p)?)))
            .collect()
    }

    /// One worker: prompt, answer, apply (asking again while blocks do not apply), refresh.
    pub(super) async fn run_task(&self, plan: &Plan, task: &Task) -> Result<(), EditError> {
        let state = self.run.snapshot();
        let owned: Vec<String> = task.all_files().cloned().collect();
        let query = format!("{}\n{}", task.description, owned.join(" "));
        let context = self.context(&query, self.budgets.worker_context).await?;
        let neighbours = uses::neighbours(
            self.index.as_ref(),
            &task.description,
            &owned,
            self.budgets.worker_graph,
        )
        .await?;
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
            neighbours: &neighbours,
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
                Err(refusal) => {
                    self.trace_step(
                        "apply-failed",
                        &task.id,
                        serde_json::json!({
                            "attempt": attempt,
                            "reason": refusal.reason,
                            "problem": refusal.message,
                        }),
                    );
                    messages.push(prompts::worker_retry(
                        &refusal.message,
                        &self.current_texts(&owned)?,
                    ));
                    // The user's error is one line: the worker also got the closest lines.
                    last_problem = refusal
                        .message
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string();
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

    /// Parses `answer` and applies its blocks in memory, all or nothing (see [`apply`]),
    /// recording how each block was placed. The error is what the worker is told.
    pub(super) fn apply_answer(
        &self,
        answer: &str,
        step: &str,
        owned: &[String],
        new_files: &[String],
    ) -> Result<(FileChanges, WorkerReply), Refusal> {
        let scope = apply::Scope { owned, new_files };
        let applied = apply::apply_answer(answer, self.workspace.as_ref(), scope, &self.apply)?;
        self.trace_step(
            "apply",
            step,
            serde_json::json!({
                "blocks": applied.matches.len(),
                "files": applied.changes.keys().collect::<Vec<_>>(),
                "matches": applied.matches,
            }),
        );
        Ok((applied.changes, applied.reply))
    }
}
