//! The stages that call the LLM, outside the tasks: every call within the run's limits,
//! planning, re-indexing, and the check-and-fix loop. The tasks themselves are run by the
//! [`super::scheduler`] and its [`super::worker`]s.
//!
//! Every LLM call first takes one unit of the run's call budget and checks its token budget
//! and deadline; running out stops new work, lets nothing half-apply, and says which limit.

use std::sync::Arc;
use std::time::Duration;

use quarry_retriever::{ContextPack, SearchRequest};

use super::blocks::parse_reply;
use super::check::run_check;
use super::plan::{Plan, parse_plan, plan_schema, validate};
use super::prompts;
use super::run::{CheckRecord, now_ms};
use super::{EditError, EditEvent, EditSession};
use super::{locations, uses};
use crate::llm::{ChatOptions, ChatRequest, ChatResponse, JsonSchema, Message};

/// Chunks retrieved before packing a prompt's context.
const RETRIEVE_K: usize = 12;
/// Files the planner asks the file view for: the repository map lists them first.
const PLAN_FILES: usize = 10;

/// The paths a repository map lists (when it lists them all).
fn map_files(map: &str) -> Vec<String> {
    map.lines()
        .filter(|l| !l.starts_with("… "))
        .filter_map(|l| l.split(": ").next())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// The existing files the plan's schema enumerates: every file when the map lists them all,
/// plus those the uses section names; for a map cut short, the files the prompt shows (map,
/// context and uses), since a file the planner never saw is not one it can mean.
fn schema_files(map: &str, pack: &ContextPack, uses: &[String]) -> Vec<String> {
    let mut files = map_files(map);
    if map.lines().any(|l| l.starts_with("… ")) {
        files.extend(pack.items.iter().map(|i| i.path.clone()));
    }
    files.extend(uses.iter().cloned());
    files.sort();
    files.dedup();
    files
}

/// Drops the pack's last items until it fits `budget` (the uses section took the rest).
fn trim_pack(pack: &mut ContextPack, budget: usize) {
    while pack.tokens > budget && pack.items.len() > 1 {
        if let Some(item) = pack.items.pop() {
            pack.tokens = pack.tokens.saturating_sub(item.tokens);
            pack.dropped += 1;
        }
    }
}

impl EditSession {
    /// One LLM call within the run's limits, counted in its state.
    pub(super) async fn call(
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
    pub(super) async fn context(
        &self,
        query: &str,
        budget: usize,
    ) -> Result<ContextPack, EditError> {
        self.index
            .pack(SearchRequest::new(query, RETRIEVE_K), budget)
            .await
    }

    /// Asks for a plan, sends an invalid one back once, and stores the valid one.
    pub(super) async fn make_plan(&self) -> Result<Plan, EditError> {
        let request = self.run.snapshot().request;
        let mut pack = self.context(&request, self.budgets.plan_context).await?;
        let found =
            uses::gather(self.index.as_ref(), uses::names_for_plan(&request, &pack)).await?;
        // The uses section grows with need before anything else is cut: it takes up to half
        // of the context's budget, then up to half of the map's.
        let needed = uses::render(&found, usize::MAX).tokens;
        let extra = needed.saturating_sub(self.budgets.plan_uses);
        let from_context = extra.min(self.budgets.plan_context / 2);
        let from_map = (extra - from_context).min(self.budgets.repo_map / 2);
        let section = uses::render(&found, self.budgets.plan_uses + from_context + from_map);
        trim_pack(&mut pack, self.budgets.plan_context - from_context);
        self.trace_step(
            "plan-uses",
            "",
            serde_json::json!({"names": found.iter().map(|u| u.name.clone()).collect::<Vec<_>>(),
                "files": section.files.len(), "tokens": section.tokens}),
        );
        // Which files: the exhaustive uses first, then files by all their matching chunks,
        // then the pack's. The file view is a ranking aid: when it fails, the plan goes on
        // without it.
        let ranked_files = self
            .index
            .files(SearchRequest::new(&request, PLAN_FILES))
            .await
            .unwrap_or_default();
        self.trace_step(
            "plan-files",
            "",
            serde_json::json!({"files": ranked_files.iter().map(|f| f.path.clone()).collect::<Vec<_>>()}),
        );
        let mut priority: Vec<String> = section.files.clone();
        let paths = ranked_files
            .into_iter()
            .map(|f| f.path)
            .chain(pack.items.iter().map(|i| i.path.clone()));
        for path in paths {
            if !priority.contains(&path) {
                priority.push(path);
            }
        }
        let map = self
            .index
            .repo_map(priority, self.budgets.repo_map - from_map)
            .await?;
        let files = schema_files(&map, &pack, &section.files);
        let mut messages =
            prompts::plan_messages(&request, &pack, &section.text, &map, &files, &self.memory);
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

    /// Re-indexes what the run wrote, so later tasks retrieve it.
    pub(super) async fn refresh(&self, step: &str) -> Result<(), EditError> {
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
    pub(super) async fn check(&self, command: &str, after: &str) -> Result<CheckRecord, EditError> {
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
            // The places the failure names, with the text around them; the fixer may edit
            // those files too.
            let located = locations::resolve(&self.workspace, &record.output)?;
            let around = locations::excerpts(&self.workspace, &located)?;
            let messages = prompts::fix_messages(
                &state.request,
                &command,
                &record.output,
                &self.diff()?,
                &files,
                &around,
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
            for location in located {
                if !allowed.contains(&location.path) {
                    allowed.push(location.path);
                }
            }
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
                Err(refusal) => {
                    self.trace_step(
                        "apply-failed",
                        &step,
                        serde_json::json!({"reason": refusal.reason, "problem": refusal.message}),
                    );
                }
            }
            record = self.check(&command, &step).await?;
        }
        Ok(record.passed)
    }
}
