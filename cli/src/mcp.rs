//! `quarry mcp`: Quarry's index, code graph, answers and status as Model Context Protocol tools over stdio,
//! so coding agents (Claude Code, Cursor, Codex, Zed, Continue) can use it as their retrieval
//! layer.
//!
//! Stdout carries the protocol and nothing else; logs go to stderr. Each tool answers like
//! the command of the same name: `search` returns the `quarry search --json` array, `status`
//! the `quarry status --json` object. Requests go through the repository's daemon when one
//! runs (warm model); otherwise the server keeps its own search handle, reopened whenever the
//! index on disk changes. A bad argument or a missing index is a tool error the agent can
//! read and act on; the server keeps serving.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::Args;
use quarry_indexer::IndexLayout;
use quarry_indexer::embed::onnx::OnnxEmbedder;
use quarry_indexer::embed::{Embedder, ModelSlot};
use quarry_indexer::secrets;
use quarry_indexer::sync::{SyncEvent, SyncOptions, is_keyword_only, sync};
use quarry_indexer::walk::is_secret_path;
use quarry_orchestrator::ask::{CommitContext, ask, history_request};
use quarry_orchestrator::config::{Config, Environment, FlagOverrides};
use quarry_orchestrator::edit::run::RunStore;
use quarry_orchestrator::edit::{ApproveAll, Cancel};
use quarry_retriever::{
    ContextPack, Fallback, GraphAnswer, GraphRequest, Hit, Lookup, Mode, Retriever, SearchError,
    SearchRequest, Source, TestScope, open_reader, open_team_reader,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler,
    tool_router,
};
use serde::Deserialize;

use crate::commands::edit::{drive, settings_from_config};
use crate::commands::find_layout;
use crate::daemon::client::DaemonClient;

/// Most lines `read_chunk` returns at once.
const MAX_READ_LINES: u32 = 2000;
/// Most bytes `read_chunk` returns at once.
const MAX_READ_BYTES: usize = 256 * 1024;

/// Arguments of `quarry mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The repository to serve [default: the index around the current directory].
    path: Option<PathBuf>,

    /// Bring the index up to date (or build it) in the background when the server starts;
    /// searches answer once it is done.
    #[arg(long)]
    index_on_start: bool,

    /// With --index-on-start, build a keyword-only index (no model, much faster).
    #[arg(long)]
    keyword_only: bool,

    /// Let the `edit` tool write files (`dry_run: false`); without it, edits are refused and
    /// only dry runs (plan and diff) are served.
    #[arg(long)]
    allow_edits: bool,
}

/// Runs the MCP server until the client closes stdin.
pub fn run(args: McpArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.path.as_deref(), index_dir)?;
    let team = crate::commands::team::team_configured(&layout.root)?;
    if team && args.index_on_start {
        anyhow::bail!(
            "--index-on-start builds a local index, but a team store is configured ([store] url or QUARRY_QDRANT_URL); keep the team index current with `quarry index` (from CI)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = QuarryMcp::new(layout, args.allow_edits, team);
        if args.index_on_start {
            server.start_indexing(args.keyword_only);
        }
        let (transport, writer) = crate::mcp_stdio::Stdio::start().split();
        let running = server.serve(transport).await?;
        running.waiting().await?;
        crate::mcp_stdio::Stdio::flush(writer).await;
        anyhow::Ok(())
    })
}

/// Arguments of the `search` tool.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// What to look for: words, identifiers (`Config::load`), or a question in words.
    query: String,
    /// Number of hits (default 10, at most 100).
    k: Option<usize>,
    /// `hybrid` (default: BM25 and vectors fused), `vector` or `keyword`.
    mode: Option<String>,
    /// Only this language: rust, python, markdown, toml, ...
    lang: Option<String>,
    /// Only this kind of chunk: function, method, class, struct, enum, trait, impl, module, section, text.
    kind: Option<String>,
    /// Only paths matching this glob (`src/**`, `*.py`) or under this folder (`src/store`); for commits, commits that changed such a path.
    path: Option<String>,
    /// `code` (default), `commits` (the git history: messages and changed paths; hits add commit, date, paths) or `all`.
    source: Option<String>,
    /// Test code: `include` (default), `exclude` or `only`; hits that are tests carry `test: true`.
    tests: Option<String>,
    /// Rank files instead of chunks (for "which files" questions): returns [{path, lang, score, spans: [{start_line, end_line, symbol, kind, score}]}], each file scored by all its matching chunks.
    files: Option<bool>,
}

/// Arguments of the `definitions` and `references` tools.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct GraphArgs {
    /// The name, bare (`open`) or qualified (`Store::open`, `pkg.Store.open`).
    name: String,
    /// Only paths matching this glob or under this folder.
    path: Option<String>,
    /// Skip this many sites (paging; default 0).
    offset: Option<usize>,
    /// At most this many sites (default 100, at most 500).
    limit: Option<usize>,
}

/// Sites a graph tool returns when the agent does not say.
const GRAPH_PAGE: usize = 100;
/// Most sites a graph tool returns at once.
const MAX_GRAPH_PAGE: usize = 500;

/// Arguments of the `read_chunk` tool.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    /// Path relative to the repository root, as `search` returns it.
    path: String,
    /// First line, 1-based.
    start_line: u32,
    /// Last line, 1-based and inclusive.
    end_line: u32,
    /// Extra lines to include before and after (default 0).
    context: Option<u32>,
}

/// Arguments of the `ask` tool.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AskArgs {
    /// The question about the code, in words.
    question: String,
    /// Chunks to retrieve before packing (default from config, 12).
    k: Option<usize>,
}

/// Arguments of the `edit` tool.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    /// The change to make, in words ("add a timeout option to the HTTP client and pass it from every caller").
    request: String,
    /// Plan and produce the diff without writing (default true). Writing needs the server started with --allow-edits.
    dry_run: Option<bool>,
    /// Command that must pass after the change (`cargo test`, `pytest -q`); default from quarry.toml [edit] check.
    check: Option<String>,
}

/// The MCP server for one repository.
#[derive(Clone)]
struct QuarryMcp {
    layout: IndexLayout,
    allow_edits: bool,
    /// A team store is configured: `search`, `ask` and `status` read it.
    team: bool,
    local: Arc<Mutex<SearchHandle>>,
    /// Progress of `--index-on-start`, while it runs or if it failed.
    indexing: Arc<Mutex<Option<Indexing>>>,
    // Read by the code `tool_handler` generates.
    #[allow(dead_code)]
    tool_router: ToolRouter<Self>,
}

/// Where the start-up index run is.
#[derive(Debug, Clone, Default)]
struct Indexing {
    files_done: usize,
    files_total: usize,
    failed: Option<String>,
}

/// The server's own search handle, used when no daemon runs.
#[derive(Default)]
struct SearchHandle {
    /// The team index's handle, kept for the session (a local index gets one per request).
    retriever: Option<Retriever>,
    /// The model, loaded on the first search that needs it and kept across reopenings.
    models: ModelSlot,
}

#[tool_router]
impl QuarryMcp {
    fn new(layout: IndexLayout, allow_edits: bool, team: bool) -> Self {
        QuarryMcp {
            layout,
            allow_edits,
            team,
            local: Arc::new(Mutex::new(SearchHandle::default())),
            indexing: Arc::new(Mutex::new(None)),
            tool_router: Self::tool_router() + Self::edit_router(),
        }
    }

    #[tool(
        description = "Search the repository's code index. Returns a JSON array of hits, best first: {path, start_line, end_line, symbol, kind, lang, score, text}, paths relative to the repository root, lines 1-based inclusive. Use identifiers for definitions (`Config::load`) and plain words for behaviour (`where are failed uploads retried`). With `files: true`, returns ranked files with their best spans instead (for \"which files\" questions). Follow up with read_chunk for more lines around a hit."
    )]
    async fn search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.wait_for_indexing(&context).await;
        let mode = match args.mode.as_deref().unwrap_or("hybrid").parse::<Mode>() {
            Ok(mode) => mode,
            Err(e) => return Ok(tool_error(e)),
        };
        let source = match args.source.as_deref().unwrap_or("code").parse::<Source>() {
            Ok(source) => source,
            Err(e) => return Ok(tool_error(e)),
        };
        let tests = match args
            .tests
            .as_deref()
            .unwrap_or("include")
            .parse::<TestScope>()
        {
            Ok(tests) => tests,
            Err(e) => return Ok(tool_error(e)),
        };
        let request = SearchRequest {
            query: args.query,
            k: args.k.unwrap_or(10).min(100),
            lang: args.lang,
            kind: args.kind,
            path: args.path,
            mode,
            explain: false,
            source,
            tests,
        };
        let server = self.clone();
        let result = if args.files == Some(true) {
            tokio::task::spawn_blocking(move || {
                server
                    .searched(
                        request,
                        |daemon, request| Ok(daemon.search_files(request)?.0),
                        |retriever, request| retriever.search_files(request),
                    )
                    .map(|files| json_result(&files))
            })
            .await
        } else {
            tokio::task::spawn_blocking(move || {
                server.search_blocking(request).map(|h| json_result(&h))
            })
            .await
        };
        Ok(match result {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => tool_error(format!("{e:#}")),
            Err(e) => tool_error(format!("search failed: {e}")),
        })
    }

    #[tool(
        description = "Where a name is defined: {total, next_offset?, sites: [{path, line, column, kind, name, symbol, lang, text}]}, every definition (functions, methods, types, constants, modules, fields), not top-k."
    )]
    async fn definitions(
        &self,
        Parameters(args): Parameters<GraphArgs>,
    ) -> Result<CallToolResult, McpError> {
        self.graph_tool(Lookup::Definitions, args).await
    }

    #[tool(
        description = "Every use of a name (calls, method calls, paths, types, imports, fields, values): {total, next_offset?, sites: [{path, line, column, kind, name, qualifier?, enclosing?, lang, text}]}, exhaustive and paged. `Type::method` keeps uses written with that qualifier (or self inside it)."
    )]
    async fn references(
        &self,
        Parameters(args): Parameters<GraphArgs>,
    ) -> Result<CallToolResult, McpError> {
        self.graph_tool(Lookup::References, args).await
    }

    #[tool(
        description = "Read exact lines of a file in the repository: {path, start_line, end_line, text}. Paths are relative to the repository root; absolute paths, `..`, paths leaving the repository (symlinks included), .git/, .quarry/ and files that look like secrets are refused."
    )]
    async fn read_chunk(
        &self,
        Parameters(args): Parameters<ReadArgs>,
    ) -> Result<CallToolResult, McpError> {
        Ok(match read_lines(&self.layout.root, &args) {
            Ok(value) => json_result(&value),
            Err(message) => tool_error(message),
        })
    }

    #[tool(
        description = "What is indexed and how fresh: files, chunks, vectors, languages, the embedding model, the last index run, and the daemon if one keeps the index fresh. Same object as `quarry status --json`."
    )]
    async fn status(&self) -> Result<CallToolResult, McpError> {
        let server = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            if server.team {
                // Through the session's own handle: the store has one owner at a time.
                return server.with_local(|retriever, _| match retriever.team_store() {
                    Some(store) => crate::commands::team::status_json(&server.layout.root, store),
                    None => anyhow::bail!("the team index could not be opened"),
                });
            }
            crate::commands::status::status_json(&server.layout)
        })
        .await;
        Ok(match result {
            Ok(Ok(status)) => json_result(&status),
            Ok(Err(e)) => tool_error(format!("{e:#}")),
            Err(e) => tool_error(format!("status failed: {e}")),
        })
    }

    #[tool(
        description = "Answer a question about the code with the configured LLM, from retrieved chunks. Returns {answer, citations, unverified, model, usage}: citations point inside chunks the model was shown; unverified ones do not and are not sources. Needs an LLM configured for quarry (QUARRY_LLM_URL and QUARRY_LLM_MODEL, OPENAI_API_KEY, ANTHROPIC_API_KEY or quarry.toml)."
    )]
    async fn ask(&self, Parameters(args): Parameters<AskArgs>) -> Result<CallToolResult, McpError> {
        let config = match Config::load(
            &Environment::from_process(Some(&self.layout.root)),
            &FlagOverrides::default(),
        ) {
            Ok(config) => config,
            Err(e) => return Ok(tool_error(e.to_string())),
        };
        let provider = match config.provider() {
            Ok(provider) => provider,
            Err(e) => return Ok(tool_error(e.to_string())),
        };
        let request = SearchRequest::new(
            &args.question,
            args.k.unwrap_or(config.ask.k.value).clamp(1, 100),
        );
        let budget = config.ask.context_tokens.value;
        let history_request = history_request(&request);
        let server = self.clone();
        let pack = match tokio::task::spawn_blocking(move || server.pack_blocking(request, budget))
            .await
        {
            Ok(Ok(pack)) => pack,
            Ok(Err(e)) => return Ok(tool_error(format!("{e:#}"))),
            Err(e) => return Ok(tool_error(format!("retrieval failed: {e}"))),
        };
        let server = self.clone();
        let commits: Vec<CommitContext> = match history_request {
            Some(request) => tokio::task::spawn_blocking(move || server.search_blocking(request))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
                .iter()
                .filter_map(CommitContext::from_hit)
                .collect(),
            None => Vec::new(),
        };
        Ok(
            match ask(
                &provider,
                &args.question,
                &pack,
                &commits,
                config.ask.answer_tokens.value,
                None,
            )
            .await
            {
                Ok(answer) => json_result(&answer),
                Err(e) => tool_error(e.to_string()),
            },
        )
    }
}

#[tool_router(router = edit_router)]
impl QuarryMcp {
    #[tool(
        description = "Make a change across the repository's files: Quarry plans it as tasks, runs LLM workers with retrieved context, applies their edits and runs the check command. Returns JSON {id, status, plan, summary, diff, checks, error}. dry_run defaults to true (nothing is written; the diff shows what would change). Applying (dry_run: false) is refused unless the server was started with --allow-edits; an applied run can be undone with `quarry undo ID`."
    )]
    async fn edit(
        &self,
        Parameters(args): Parameters<EditArgs>,
    ) -> Result<CallToolResult, McpError> {
        let dry_run = args.dry_run.unwrap_or(true);
        if !dry_run && !self.allow_edits {
            return Ok(tool_error(
                "edits are refused: this server was started without --allow-edits; call edit with dry_run: true to get the plan and diff, or restart it with `quarry mcp --allow-edits`",
            ));
        }
        if args.request.trim().is_empty() {
            return Ok(tool_error("empty request; say what to change"));
        }
        if let Err(e) = self.check_indexing() {
            return Ok(tool_error(format!("{e:#}")));
        }
        let config = match Config::load(
            &Environment::from_process(Some(&self.layout.root)),
            &FlagOverrides::default(),
        ) {
            Ok(config) => config,
            Err(e) => return Ok(tool_error(e.to_string())),
        };
        if let Err(e) = config.provider() {
            return Ok(tool_error(e.to_string()));
        }
        let settings = settings_from_config(&config, args.check, dry_run);
        let run = match RunStore::create(&self.layout.dir, &args.request, settings) {
            Ok(run) => Arc::new(run),
            Err(e) => return Ok(tool_error(e.to_string())),
        };
        // The run opens the index itself: the server's own handle lets go of the vector shard.
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retriever = None;
        let driven = drive(
            &self.layout,
            &config,
            run.clone(),
            Arc::new(ApproveAll),
            Arc::new(|_| {}),
            Cancel::default(),
        )
        .await;
        let driven = match driven {
            Ok(driven) => driven,
            Err(e) => return Ok(tool_error(format!("{e:#}"))),
        };
        let state = run.snapshot();
        let outcome = serde_json::json!({
            "id": state.id,
            "status": state.status,
            "dry_run": dry_run,
            "plan": state.plan,
            "summary": state.summary,
            "diff": driven.diff,
            "checks": state.checks,
            "error": driven.result.err().map(|e| e.to_string()),
            "run_dir": run.dir().display().to_string(),
        });
        Ok(json_result(&outcome))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for QuarryMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::from_build_env())
            .with_instructions(format!(
                "Quarry indexes the repository at {} by function. Use `search` to find code by identifier or by what it does, `read_chunk` to read exact lines, `status` to see what is indexed, `ask` for an answer with checked citations, and `edit` to plan and make a change across files (a dry run unless the server allows edits).",
                self.layout.root.display()
            ))
    }
}

impl QuarryMcp {
    /// Runs an incremental index of the repository in the background (through the daemon
    /// when one runs); until it is done, searches answer with its progress.
    fn start_indexing(&self, keyword_only: bool) {
        *self.indexing.lock().unwrap_or_else(|p| p.into_inner()) = Some(Indexing::default());
        let server = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = server.index_blocking(keyword_only);
            let mut indexing = server.indexing.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(()) => {
                    tracing::info!("index of {} is up to date", server.layout.root.display());
                    *indexing = None;
                }
                Err(e) => {
                    tracing::error!("indexing failed: {e:#}");
                    indexing.get_or_insert_with(Indexing::default).failed = Some(format!("{e:#}"));
                }
            }
        });
    }

    fn index_blocking(&self, keyword_only: bool) -> Result<()> {
        if let Some(mut daemon) = DaemonClient::connect(&self.layout) {
            daemon.index(Default::default(), false, keyword_only.then_some(true))?;
            return Ok(());
        }
        let keyword_only = keyword_only || is_keyword_only(&self.layout);
        let mut embedder = if keyword_only {
            None
        } else {
            Some(OnnxEmbedder::configured()?)
        };
        let progress = self.indexing.clone();
        let mut on_event = |event: SyncEvent| {
            let mut indexing = progress.lock().unwrap_or_else(|p| p.into_inner());
            let state = indexing.get_or_insert_with(Indexing::default);
            match event {
                SyncEvent::Scanned { to_index, .. } => state.files_total = to_index,
                SyncEvent::Indexed { files_done, .. } => state.files_done = files_done,
                _ => {}
            }
        };
        sync(
            &self.layout,
            &SyncOptions::default(),
            embedder.as_mut().map(|e| e as &mut dyn Embedder),
            &mut on_event,
        )?;
        Ok(())
    }

    /// While the start-up index run goes on, a request that carries a progress token waits
    /// for it, told its progress (files indexed of files to index) as MCP progress
    /// notifications; one without a token does not wait and gets the progress as an error.
    async fn wait_for_indexing(&self, context: &RequestContext<RoleServer>) {
        let Some(token) = context.meta.get_progress_token() else {
            return;
        };
        let mut reported = None;
        loop {
            let state = self
                .indexing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let Some(state) = state.filter(|s| s.failed.is_none()) else {
                return;
            };
            let now = (state.files_done, state.files_total);
            if reported != Some(now) {
                reported = Some(now);
                let progress = ProgressNotificationParam::new(token.clone(), now.0 as f64)
                    .with_total(now.1.max(now.0) as f64)
                    .with_message(format!(
                        "indexing {}: {} of {} files",
                        self.layout.root.display(),
                        now.0,
                        now.1
                    ));
                if context.peer.notify_progress(progress).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = context.ct.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
        }
    }

    /// An error while the start-up index run is not done.
    fn check_indexing(&self) -> Result<()> {
        let indexing = self.indexing.lock().unwrap_or_else(|p| p.into_inner());
        match indexing.as_ref() {
            None => Ok(()),
            Some(Indexing {
                failed: Some(error),
                ..
            }) => anyhow::bail!("indexing {} failed: {error}", self.layout.root.display()),
            Some(state) => anyhow::bail!(
                "the index of {} is being built ({} of {} files); try again in a moment, or send a progress token to wait for it",
                self.layout.root.display(),
                state.files_done,
                state.files_total
            ),
        }
    }

    fn search_blocking(&self, request: SearchRequest) -> Result<Vec<Hit>> {
        self.searched(
            request,
            |daemon, request| Ok(daemon.search(request)?.0),
            |retriever, request| retriever.search(request),
        )
    }

    /// Runs a search through the daemon when one runs, otherwise on the server's own handle
    /// (keyword only while another process writes the index).
    fn searched<T>(
        &self,
        request: SearchRequest,
        through_daemon: impl FnOnce(&mut DaemonClient, SearchRequest) -> Result<T>,
        local: impl FnOnce(&mut Retriever, &SearchRequest) -> Result<T, SearchError>,
    ) -> Result<T> {
        self.check_indexing()?;
        if !self.team
            && let Some(mut daemon) = DaemonClient::connect(&self.layout)
        {
            return through_daemon(&mut daemon, request);
        }
        self.with_local(|retriever, keyword_only| {
            let mut request = request;
            if keyword_only && request.mode == Mode::Hybrid {
                request.mode = Mode::Keyword;
            }
            Ok(local(retriever, &request)?)
        })
    }

    /// One page of a graph lookup, as the `definitions` and `references` tools return it.
    async fn graph_tool(
        &self,
        lookup: Lookup,
        args: GraphArgs,
    ) -> Result<CallToolResult, McpError> {
        let request = GraphRequest {
            lookup,
            name: args.name,
            lang: None,
            path: args.path,
        };
        let offset = args.offset.unwrap_or(0);
        let limit = args.limit.unwrap_or(GRAPH_PAGE).clamp(1, MAX_GRAPH_PAGE);
        let server = self.clone();
        let result = tokio::task::spawn_blocking(move || server.graph_blocking(request)).await;
        Ok(match result {
            Ok(Ok(answer)) => {
                let total = answer.sites.len();
                let page: Vec<_> = answer.sites.into_iter().skip(offset).take(limit).collect();
                let next = (offset + page.len() < total).then_some(offset + page.len());
                let mut value = serde_json::json!({"total": total, "sites": page});
                if let Some(next) = next {
                    value["next_offset"] = next.into();
                }
                json_result(&value)
            }
            Ok(Err(e)) => tool_error(format!("{e:#}")),
            Err(e) => tool_error(format!("lookup failed: {e}")),
        })
    }

    fn graph_blocking(&self, request: GraphRequest) -> Result<GraphAnswer> {
        self.check_indexing()?;
        if !self.team
            && let Some(mut daemon) = DaemonClient::connect(&self.layout)
        {
            return daemon.graph(request);
        }
        self.with_local(|retriever, _| Ok(retriever.graph(&request)?))
    }

    fn pack_blocking(&self, request: SearchRequest, budget: usize) -> Result<ContextPack> {
        self.check_indexing()?;
        if !self.team
            && let Some(mut daemon) = DaemonClient::connect(&self.layout)
        {
            return daemon.pack(request, budget);
        }
        self.with_local(|retriever, keyword_only| {
            let mut request = request;
            if keyword_only {
                request.mode = Mode::Keyword;
            }
            Ok(retriever.pack_context(&request, budget)?)
        })
    }

    /// Runs `work` on a search handle of the server's own: the team index's, kept for the
    /// session, or a local one opened for this request. `work` is told whether the handle has
    /// only keyword search now (another process kept the vector shard).
    fn with_local<T>(&self, work: impl FnOnce(&mut Retriever, bool) -> Result<T>) -> Result<T> {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if self.team {
            // The team store answers while it is written; one handle serves the session.
            if local.retriever.is_none()
                && let Some(setup) = crate::commands::team::team_setup(&self.layout.root)?
            {
                let reader = open_team_reader(
                    &self.layout,
                    setup.store,
                    Box::new(setup.embedder),
                    Mode::Hybrid,
                )?;
                let retriever = reader.retriever;
                local.retriever = Some(retriever);
            }
            return match local.retriever.as_mut() {
                Some(retriever) => work(retriever, false),
                None => anyhow::bail!("the team index could not be opened"),
            };
        }
        if !self.layout.manifest().is_file() {
            anyhow::bail!(
                "no index at {}; run `quarry index {}` first (or start the server with --index-on-start)",
                self.layout.root.display(),
                self.layout.root.display()
            );
        }
        // A handle per request: the vector shard admits one process at a time, so holding it
        // between requests would keep `quarry search` and syncs elsewhere out (the model
        // stays loaded in `models`).
        let reader = open_reader(&self.layout, Mode::Hybrid, &local.models)?;
        let keyword_only = matches!(reader.fallback, Some(Fallback::WriterBusy { .. }));
        let mut retriever = reader.retriever;
        work(&mut retriever, keyword_only)
    }
}

/// The lines `start_line - context ..= end_line + context` of a file inside `root`, refusing
/// anything that is not a plain repository file an agent may read.
fn read_lines(root: &Path, args: &ReadArgs) -> Result<serde_json::Value, String> {
    let relative = Path::new(&args.path);
    if args.path.trim().is_empty() {
        return Err("path is empty".to_string());
    }
    if relative.is_absolute() {
        return Err(format!(
            "`{}` is absolute; give a path relative to the repository root",
            args.path
        ));
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "`{}` leaves the repository (`..` is not allowed)",
            args.path
        ));
    }
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .unwrap_or_default();
    if first == ".git" || first == ".quarry" {
        return Err(format!(
            "`{}` is inside {first}/, which is not repository content",
            args.path
        ));
    }
    if is_secret_path(&args.path) {
        return Err(format!(
            "`{}` looks like a secret; quarry never returns it",
            args.path
        ));
    }
    let resolved = root
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("cannot read `{}`: {e}", args.path))?;
    if !resolved.starts_with(root) {
        return Err(format!(
            "`{}` resolves outside the repository (a symlink?)",
            args.path
        ));
    }
    if !resolved.is_file() {
        return Err(format!("`{}` is not a file", args.path));
    }
    if args.start_line == 0 || args.end_line < args.start_line {
        return Err("lines are 1-based and start_line must not exceed end_line".to_string());
    }
    let context = args.context.unwrap_or(0);
    let from = args.start_line.saturating_sub(context).max(1);
    let to = args.end_line.saturating_add(context);
    if to - from + 1 > MAX_READ_LINES {
        return Err(format!("at most {MAX_READ_LINES} lines at once"));
    }
    let bytes =
        std::fs::read(&resolved).map_err(|e| format!("cannot read `{}`: {e}", args.path))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", args.path))?;
    if secrets::is_secret_content(&args.path, &text) {
        return Err(format!(
            "`{}` holds a secret (a key or credentials file); quarry never returns it",
            args.path
        ));
    }
    // Secrets inside an ordinary file are redacted as in the index; lines stay where they are.
    let text = secrets::redact(&text, secrets::TextKind::of_path(&args.path)).text;
    let lines: Vec<&str> = text.lines().collect();
    if from as usize > lines.len() {
        return Err(format!("`{}` has only {} lines", args.path, lines.len()));
    }
    let to = to.min(lines.len() as u32);
    let mut body = lines[from as usize - 1..to as usize].join("\n");
    body.push('\n');
    // A minified file's one line can be megabytes: the answer stays bounded.
    let truncated = body.len() > MAX_READ_BYTES;
    if truncated {
        let mut cut = MAX_READ_BYTES;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    let mut answer = serde_json::json!({
        "path": args.path.trim_start_matches("./"),
        "start_line": from,
        "end_line": to,
        "text": body,
    });
    if truncated {
        answer["truncated"] = serde_json::Value::Bool(true);
    }
    Ok(answer)
}

fn json_result(value: &impl serde::Serialize) -> CallToolResult {
    match serde_json::to_string(value) {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(e) => tool_error(format!("cannot encode the result: {e}")),
    }
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(path: &str, start: u32, end: u32) -> ReadArgs {
        ReadArgs {
            path: path.to_string(),
            start_line: start,
            end_line: end,
            context: None,
        }
    }

    #[test]
    fn reads_are_confined_to_plain_repository_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "a\nb\nc\nd\n").expect("write");
        std::fs::write(root.join("secrets.toml"), "x").expect("write");
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("o.txt"), "outside\n").expect("write");
        std::os::unix::fs::symlink(outside.path().join("o.txt"), root.join("src/link.txt"))
            .expect("symlink");

        let read = read_lines(
            &root,
            &ReadArgs {
                context: Some(1),
                ..args("src/lib.rs", 2, 2)
            },
        )
        .expect("read");
        assert_eq!(read["text"], "a\nb\nc\n");
        assert_eq!(
            (read["start_line"].as_u64(), read["end_line"].as_u64()),
            (Some(1), Some(3))
        );

        for (path, why) in [
            ("../etc/passwd", "leaves"),
            ("/etc/passwd", "absolute"),
            ("src/../../x", "leaves"),
            ("src/link.txt", "outside"),
            (".git/config", ".git"),
            ("secrets.toml", "secret"),
            ("src", "not a file"),
        ] {
            let error = read_lines(&root, &args(path, 1, 1)).expect_err(path);
            assert!(error.contains(why), "{path}: {error}");
        }
        assert!(read_lines(&root, &args("src/lib.rs", 0, 1)).is_err());
        assert!(read_lines(&root, &args("src/lib.rs", 9, 9)).is_err());
    }
}
