//! `quarry edit`, `quarry runs`, `quarry undo`: a planned, verified multi-file change, the list
//! of past runs, and the way back.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use clap::{Args, ValueEnum};
use quarry_indexer::IndexLayout;
use quarry_indexer::sync::SettingsOverrides;
use quarry_orchestrator::config::Config;
use quarry_orchestrator::edit::apply::ApplyOptions;
use quarry_orchestrator::edit::index::{CodeIndex, LocalIndex};
use quarry_orchestrator::edit::plan::{Plan, Task};
use quarry_orchestrator::edit::run::{RunSettings, RunState, RunStatus, RunStore, TaskStatus};
use quarry_orchestrator::edit::workspace::Workspace;
use quarry_orchestrator::edit::{
    ApproveAll, Approver, Cancel, EditError, EditEvent, EditSession, PromptBudgets, SessionDeps,
    undo,
};
use quarry_orchestrator::llm::trace::TraceLog;
use quarry_orchestrator::memory::{recall_notes, remember_run};
use quarry_retriever::{ContextPack, FileHit, GraphAnswer, GraphRequest, Retriever, SearchRequest};
use serde::Serialize;

use crate::commands::config::LlmArgs;
use crate::commands::find_layout;
use crate::daemon::client::DaemonClient;
use crate::format::Style;

/// When to ask before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApproveMode {
    /// Once, for the plan.
    Plan,
    /// For the plan, then for each task's diff.
    Each,
}

/// Arguments of `quarry edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The change to make, in your own words.
    #[arg(required_unless_present = "resume")]
    request: Option<String>,

    /// Command that verifies the change (`cargo test`, `pytest -q`) [config: edit.check].
    #[arg(long, value_name = "CMD")]
    check: Option<String>,

    /// Also run the check after every task; a failure goes back to that task's worker.
    #[arg(long)]
    check_each: bool,

    /// Seconds the check may run before its process group is killed [config:
    /// edit.check_timeout_secs, default 600].
    #[arg(long, value_name = "SECS")]
    check_timeout: Option<u64>,

    /// Tasks run at once [config: edit.jobs, default 2].
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=32))]
    jobs: Option<u64>,

    /// Rounds of fixing after a failing check [config: edit.fix_rounds, default 2].
    #[arg(long, value_name = "N")]
    fix_rounds: Option<u32>,

    /// Stop after this many LLM calls [config: edit.max_calls, default 60].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_calls: Option<u32>,

    /// Stop after this many tokens, prompts and answers together [config: edit.max_tokens,
    /// default 400000].
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,

    /// Stop after this much wall time, e.g. 90s or 20m [config: edit.max_seconds, default 30m].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_time: Option<Duration>,

    /// Plan and run the workers, show the diff, write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,

    /// Ask once for the plan, or also for each task's diff.
    #[arg(long, value_enum, default_value = "plan", value_name = "WHEN")]
    approve: ApproveMode,

    /// Continue run ID (after Ctrl-C, a kill, a limit or a failure); finished tasks are kept.
    #[arg(long, value_name = "ID", conflicts_with = "dry_run")]
    resume: Option<String>,

    /// Print the result as JSON.
    #[arg(long)]
    json: bool,

    /// Edit this repository instead of the one around the current directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(flatten)]
    llm: LlmArgs,
}

/// Arguments of `quarry runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print the runs as JSON.
    #[arg(long)]
    json: bool,

    /// The repository [default: the one around the current directory].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// Arguments of `quarry undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The run to undo (`quarry runs` lists them).
    id: String,

    /// Restore even files changed since the run wrote them.
    #[arg(long)]
    force: bool,

    /// The repository [default: the one around the current directory].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// The index through a running daemon: its warm model searches, and it re-indexes.
struct DaemonIndex {
    layout: IndexLayout,
}

fn daemon_error(e: anyhow::Error) -> EditError {
    EditError::Index(format!("{e:#}"))
}

impl DaemonIndex {
    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut DaemonClient) -> Result<T> + Send + 'static,
    ) -> Result<T, EditError> {
        let layout = self.layout.clone();
        tokio::task::spawn_blocking(move || {
            let mut client = DaemonClient::connect(&layout).ok_or_else(|| {
                EditError::Index("the quarry daemon stopped during the run".to_string())
            })?;
            work(&mut client).map_err(daemon_error)
        })
        .await
        .map_err(|e| EditError::Index(e.to_string()))?
    }
}

#[async_trait]
impl CodeIndex for DaemonIndex {
    async fn pack(&self, request: SearchRequest, budget: usize) -> Result<ContextPack, EditError> {
        self.call(move |daemon| daemon.pack(request, budget)).await
    }

    async fn files(&self, request: SearchRequest) -> Result<Vec<FileHit>, EditError> {
        self.call(move |daemon| daemon.search_files(request).map(|(files, _)| files))
            .await
    }

    async fn repo_map(&self, priority: Vec<String>, budget: usize) -> Result<String, EditError> {
        let layout = self.layout.clone();
        tokio::task::spawn_blocking(move || {
            Retriever::open(&layout)
                .and_then(|r| r.repo_map(&priority, budget))
                .map_err(|e| EditError::Index(e.to_string()))
        })
        .await
        .map_err(|e| EditError::Index(e.to_string()))?
    }

    async fn graph(&self, request: GraphRequest) -> Result<GraphAnswer, EditError> {
        self.call(move |daemon| daemon.graph(request)).await
    }

    async fn refresh(&self) -> Result<(), EditError> {
        self.call(|daemon| {
            daemon
                .index(SettingsOverrides::default(), false, None)
                .map(|_| ())
        })
        .await
    }
}

/// Asks on the terminal; one question at a time.
struct TerminalApprover {
    each: bool,
    asking: tokio::sync::Mutex<()>,
}

fn ask_yes_no(question: String) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve_plan(&self, _plan: &Plan) -> bool {
        let _turn = self.asking.lock().await;
        tokio::task::spawn_blocking(|| ask_yes_no("Carry out this plan?".to_string()))
            .await
            .unwrap_or(false)
    }

    async fn approve_task(&self, task: &Task, diff: &str) -> bool {
        let _turn = self.asking.lock().await;
        let question = format!("{diff}\nApply task {}?", task.id);
        tokio::task::spawn_blocking(move || ask_yes_no(question))
            .await
            .unwrap_or(false)
    }

    fn per_task(&self) -> bool {
        self.each
    }
}

/// Prints a plan to stderr.
fn show_plan(run_id: &str, plan: &Plan, style: Style) {
    eprintln!(
        "Plan of run {run_id} ({}):",
        crate::format::plural(plan.tasks.len(), "task")
    );
    for task in &plan.tasks {
        let after = if task.depends_on.is_empty() {
            String::new()
        } else {
            format!(" (after {})", task.depends_on.join(", "))
        };
        let files: Vec<String> = task
            .files
            .iter()
            .cloned()
            .chain(task.new_files.iter().map(|f| format!("{f} (new)")))
            .collect();
        eprintln!(
            "  {} {}{}\n     {}",
            style.symbol(&format!("[{}]", task.id)),
            task.description,
            style.dim(&after),
            style.path(&files.join(", "))
        );
    }
}

/// The `--json` result of `quarry edit`.
#[derive(Serialize)]
struct JsonRun<'a> {
    #[serde(flatten)]
    state: &'a RunState,
    diff: &'a str,
    run_dir: String,
    trace: String,
}

/// Runs `quarry edit`.
pub fn run(args: EditArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.dry_run && !args.yes && !interactive {
        bail!(
            "refusing to edit without approval: stdin is not a terminal; pass --yes to apply, or --dry-run to see the diff without writing"
        );
    }
    let config = args.llm.load(Some(&layout.root))?;
    // Configuration problems are reported before anything else happens.
    config.provider()?;
    let edit = &config.edit;

    let run = match &args.resume {
        Some(id) => {
            let run = RunStore::open(&layout.dir, id)?;
            let state = run.snapshot();
            if matches!(
                state.status,
                RunStatus::Succeeded | RunStatus::Undone | RunStatus::Declined
            ) || state.settings.dry_run
            {
                let status = if state.settings.dry_run {
                    "a dry run".to_string()
                } else {
                    format!("{:?}", state.status).to_lowercase()
                };
                return Err(EditError::NotResumable {
                    id: id.clone(),
                    status,
                }
                .into());
            }
            // Limits given again apply to the resumed run.
            run.update(|s| {
                let settings = &mut s.settings;
                if let Some(jobs) = args.jobs {
                    settings.jobs = jobs as usize;
                }
                if let Some(calls) = args.max_calls {
                    settings.max_calls = calls;
                }
                if let Some(tokens) = args.max_tokens {
                    settings.max_tokens = tokens;
                }
                if let Some(time) = args.max_time {
                    settings.max_seconds = time.as_secs().max(1);
                }
            })?;
            run
        }
        None => {
            let settings = RunSettings {
                jobs: args.jobs.map_or(edit.jobs.value, |j| j as usize),
                check_each: args.check_each,
                check_timeout_secs: args.check_timeout.unwrap_or(edit.check_timeout_secs.value),
                fix_rounds: args.fix_rounds.unwrap_or(edit.fix_rounds.value),
                max_calls: args.max_calls.unwrap_or(edit.max_calls.value),
                max_tokens: args.max_tokens.unwrap_or(edit.max_tokens.value),
                max_seconds: args
                    .max_time
                    .map_or(edit.max_seconds.value, |d| d.as_secs().max(1)),
                ..settings_from_config(&config, args.check.clone(), args.dry_run)
            };
            let request = args.request.clone().unwrap_or_default();
            if request.trim().is_empty() {
                bail!(
                    "empty request; say what to change, e.g. quarry edit \"add a timeout to the client\""
                );
            }
            RunStore::create(&layout.dir, &request, settings)?
        }
    };
    let state = run.snapshot();
    let trace_path = run.trace_path();
    let approver: Arc<dyn Approver> = if args.yes || state.settings.dry_run {
        Arc::new(ApproveAll)
    } else {
        Arc::new(TerminalApprover {
            each: args.approve == ApproveMode::Each,
            asking: tokio::sync::Mutex::new(()),
        })
    };
    let style = Style::stderr();
    let quiet = args.json;
    let run_id = state.id.clone();
    let on_event = Arc::new(move |event: EditEvent| match event {
        EditEvent::Planned(plan) => show_plan(&run_id, &plan, style),
        _ if quiet => {}
        EditEvent::TaskStarted(id) => eprintln!("{} started", style.symbol(&format!("[{id}]"))),
        EditEvent::TaskEnded { id, status, detail } => {
            let status = format!("{status:?}").to_lowercase();
            eprintln!("{} {status}: {detail}", style.symbol(&format!("[{id}]")));
        }
        EditEvent::Checking(after) => eprintln!("checking after {after}…"),
        EditEvent::Checked { passed, after } => eprintln!(
            "check after {after}: {}",
            if passed { "passed" } else { "failed" }
        ),
    });
    let cancel = Cancel::default();
    let handler_cancel = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if handler_cancel.is_raised() {
            std::process::exit(130);
        }
        eprintln!("\nstopping the run (Ctrl-C again to quit at once)");
        handler_cancel.raise();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let run = Arc::new(run);
    let Driven { result, diff } = runtime.block_on(drive(
        &layout,
        &config,
        run.clone(),
        approver,
        on_event,
        cancel,
    ))?;
    let state = run.snapshot();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer(
            &mut out,
            &JsonRun {
                state: &state,
                diff: &diff,
                run_dir: run.dir().display().to_string(),
                trace: trace_path.display().to_string(),
            },
        )?;
        writeln!(out)?;
    } else {
        if !diff.is_empty() {
            write!(out, "{diff}")?;
        }
        if let Some(summary) = &state.summary {
            eprintln!("{summary}");
        }
    }
    let id = &state.id;
    let tokens = state.usage.prompt_tokens + state.usage.completion_tokens;
    let figures = style.dim(&format!("{} LLM calls, {tokens} tokens", state.llm_calls));
    match (state.status, result) {
        (RunStatus::Succeeded, _) if state.settings.dry_run => {
            eprintln!("dry run {id}: nothing written · {figures}");
            Ok(())
        }
        (RunStatus::Succeeded, _) => {
            eprintln!("run {id} succeeded · {figures} · undo with `quarry undo {id}`");
            Ok(())
        }
        (RunStatus::Declined, _) => {
            eprintln!("plan declined; nothing written (run {id})");
            Ok(())
        }
        (RunStatus::Interrupted, Err(EditError::Interrupted)) => {
            eprintln!(
                "run {id} interrupted · {figures} · continue with `quarry edit --resume {id}`"
            );
            std::process::exit(130)
        }
        (_, Err(error)) => {
            let way_back = if state.touched.is_empty() {
                "nothing written".to_string()
            } else {
                format!("`quarry undo {id}` restores the files")
            };
            bail!("run {id}: {error}; `quarry edit --resume {id}` tries again, {way_back}")
        }
        (_, Ok(_)) => bail!(
            "run {id} failed: {} · {figures} · fix and `quarry edit --resume {id}`, or `quarry undo {id}`",
            failure_reason(&state)
        ),
    }
}

/// Run settings from the configuration, with the check command and dry-run given.
pub(crate) fn settings_from_config(
    config: &Config,
    check: Option<String>,
    dry_run: bool,
) -> RunSettings {
    let edit = &config.edit;
    RunSettings {
        jobs: edit.jobs.value,
        check: check
            .or_else(|| edit.check.as_ref().map(|c| c.value.clone()))
            .filter(|c| !c.trim().is_empty()),
        check_each: false,
        check_timeout_secs: edit.check_timeout_secs.value,
        fix_rounds: edit.fix_rounds.value,
        max_calls: edit.max_calls.value,
        max_tokens: edit.max_tokens.value,
        max_seconds: edit.max_seconds.value,
        dry_run,
    }
}

/// How a driven run ended: its result and the diff of what it changed.
pub(crate) struct Driven {
    pub(crate) result: Result<RunState, EditError>,
    pub(crate) diff: String,
}

/// Runs (or resumes) `run` to its end: opens the index (through the daemon when one runs),
/// recalls memory, executes, and remembers the outcome. Shared by `quarry edit` and the MCP
/// `edit` tool.
pub(crate) async fn drive(
    layout: &IndexLayout,
    config: &Config,
    run: Arc<RunStore>,
    approver: Arc<dyn Approver>,
    on_event: Arc<dyn Fn(EditEvent) + Send + Sync>,
    cancel: Cancel,
) -> Result<Driven> {
    let state = run.snapshot();
    let trace_path = run.trace_path();
    let trace = Arc::new(
        TraceLog::open(&trace_path, config.secrets())
            .with_context(|| format!("cannot open the trace {}", trace_path.display()))?,
    );
    let provider = Arc::new(config.provider()?.with_trace(trace.clone(), "edit"));
    let workspace = Arc::new(Workspace::open(
        &layout.root,
        &layout.dir,
        state.settings.dry_run,
    )?);
    let budgets = PromptBudgets {
        worker_context: config.edit.context_tokens.value,
        worker_answer: config.edit.answer_tokens.value,
        ..PromptBudgets::default()
    };
    let index: Arc<dyn CodeIndex> = if DaemonClient::connect(layout).is_some() {
        Arc::new(DaemonIndex {
            layout: layout.clone(),
        })
    } else {
        Arc::new(LocalIndex::open(layout.clone()).await?)
    };
    let memory = recall_notes(layout.dir.clone(), state.request.clone(), index.embedder()).await;
    let session = Arc::new(EditSession::new(SessionDeps {
        provider,
        index,
        workspace,
        run: run.clone(),
        trace,
        approver,
        on_event,
        cancel,
        budgets,
        apply: ApplyOptions {
            whole_file_lines: config.edit.whole_file_lines.value,
        },
        memory,
    }));
    let result = session.clone().execute().await;
    let diff = session.diff().unwrap_or_default();
    remember_run(
        layout.dir.clone(),
        run.snapshot(),
        session.index().embedder(),
    )
    .await;
    Ok(Driven { result, diff })
}

/// Why a finished run failed, in one line.
fn failure_reason(state: &RunState) -> String {
    let failed: Vec<String> = state
        .tasks
        .iter()
        .filter(|(_, t)| matches!(t.status, TaskStatus::Failed | TaskStatus::Skipped))
        .map(|(id, t)| format!("{id} {}", format!("{:?}", t.status).to_lowercase()))
        .collect();
    let mut reasons = Vec::new();
    if !failed.is_empty() {
        reasons.push(format!("tasks {}", failed.join(", ")));
    }
    if state.checks.last().is_some_and(|c| !c.passed) {
        reasons.push("the check still fails".to_string());
    }
    reasons.join("; ")
}

/// Runs `quarry runs`.
pub fn list(args: RunsArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let runs = RunStore::list(&layout.dir);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer(&mut out, &runs)?;
        writeln!(out)?;
        return Ok(());
    }
    if runs.is_empty() {
        eprintln!("no edit runs yet in {}", layout.root.display());
        return Ok(());
    }
    let style = Style::stdout();
    for run in runs {
        let done = run
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::Done)
            .count();
        let mut request = run.request.replace('\n', " ");
        if request.chars().count() > 60 {
            request = request.chars().take(59).collect::<String>() + "…";
        }
        writeln!(
            out,
            "{}  {:<12} {done}/{} tasks  {}{}",
            style.path(&run.id),
            format!("{:?}", run.status).to_lowercase(),
            run.tasks.len(),
            request,
            if run.settings.dry_run {
                style.dim(" (dry run)")
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// Runs `quarry undo`.
pub fn undo_run(args: UndoArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let run = RunStore::open(&layout.dir, &args.id)?;
    let workspace = Workspace::open(&layout.root, &layout.dir, false)?;
    let restored = undo(&run, &workspace, args.force)?;
    if restored.is_empty() {
        eprintln!("run {} wrote nothing left to undo", args.id);
        return Ok(());
    }
    for path in &restored {
        println!("restored {path}");
    }
    // Bring the index back in step with the restored files.
    if let Some(mut daemon) = DaemonClient::connect(&layout) {
        daemon.index(SettingsOverrides::default(), false, None)?;
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(LocalIndex::open(layout.clone()))?;
    }
    eprintln!("run {} undone: {} files restored", args.id, restored.len());
    Ok(())
}
