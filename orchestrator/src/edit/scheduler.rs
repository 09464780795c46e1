//! The task scheduler: it starts a task when every task it depends on is done, no running
//! task owns one of its files, and fewer than `jobs` are running. A failed task skips its
//! dependants; a task stopped by a limit or Ctrl-C goes back to pending for `--resume`.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::plan::Plan;
use super::run::{TaskStatus, now_ms};
use super::{EditError, EditEvent, EditSession};

impl EditSession {
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
}
