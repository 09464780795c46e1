//! `quarry ask`: an answer about the code from retrieved context, with checked citations.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use quarry_orchestrator::ask::{Answer, CommitContext, ask, history_request, mark_unverified};
use quarry_orchestrator::llm::trace::{TraceLog, now_rfc3339};
use quarry_retriever::{ContextPack, Mode, SearchRequest};
use serde::Serialize;

use crate::commands::config::LlmArgs;
use crate::commands::find_layout;
use crate::commands::search::{IndexAccess, open_index};
use crate::commands::team::team_setup_for;
use crate::format::{self, Style};

/// Arguments of `quarry ask`.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question, in your own words.
    question: String,

    /// Chunks to retrieve before packing [config: ask.k, default 12]
    #[arg(short, value_name = "N")]
    k: Option<usize>,

    /// Estimated tokens of code context to send [config: ask.context_tokens, default 3000]
    #[arg(long, value_name = "N")]
    context_tokens: Option<usize>,

    /// Only context in this language.
    #[arg(long, value_name = "LANG")]
    lang: Option<String>,

    /// Only context from paths matching this glob or under this folder.
    #[arg(long, value_name = "GLOB")]
    path: Option<String>,

    /// Print {answer, citations, unverified, model, usage, ...} as JSON.
    #[arg(long)]
    json: bool,

    /// Ask about this repository instead of the one around the current directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(flatten)]
    llm: LlmArgs,
}

/// The `--json` output.
#[derive(Serialize)]
struct JsonAnswer<'a> {
    #[serde(flatten)]
    answer: &'a Answer,
    latency_ms: u64,
    first_token_ms: Option<u64>,
    context: Vec<String>,
    trace: String,
}

/// Runs `quarry ask`.
pub fn run(args: AskArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let config = args.llm.load(Some(&layout.root))?;
    // Configuration problems are reported before the model and index are loaded.
    let provider = config.provider()?;
    let trace_path = layout
        .dir
        .join("traces")
        .join(format!("ask-{}.jsonl", &now_rfc3339()[..10]));

    let request = SearchRequest {
        query: args.question.clone(),
        k: args.k.unwrap_or(config.ask.k.value),
        lang: args.lang,
        kind: None,
        path: args.path,
        mode: Mode::Hybrid,
        explain: false,
        source: quarry_retriever::Source::Code,
        tests: quarry_retriever::TestScope::Include,
    };
    let budget = args
        .context_tokens
        .unwrap_or(config.ask.context_tokens.value);
    // A question about why or when also gets the commits that match it.
    let history_request = history_request(&request);
    let team = team_setup_for(&config.store, &layout.root)?;
    let (pack, commit_hits) = match open_index(&layout, team, request.mode)? {
        IndexAccess::Daemon(mut daemon) => {
            let commits = history_request
                .and_then(|r| daemon.search(r).ok())
                .map(|(hits, _)| hits)
                .unwrap_or_default();
            (daemon.pack(request, budget)?, commits)
        }
        IndexAccess::Direct(mut reader) => {
            let mode = reader.mode;
            let retriever = &mut reader.retriever;
            let commits = history_request
                .and_then(|r| retriever.search(&SearchRequest { mode, ..r }).ok())
                .unwrap_or_default();
            (
                retriever.pack_context(&SearchRequest { mode, ..request }, budget)?,
                commits,
            )
        }
    };
    let commits: Vec<CommitContext> = commit_hits
        .iter()
        .filter_map(CommitContext::from_hit)
        .collect();

    let trace = TraceLog::open(&trace_path, config.secrets())
        .with_context(|| format!("cannot open the trace {}", trace_path.display()))?;
    let provider = provider.with_trace(Arc::new(trace), "ask");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // The answer is always streamed (so time to first token is measured); it is shown as it
    // arrives only on a terminal.
    let stream = !args.json && std::io::stdout().is_terminal();
    let answer_tokens = config.ask.answer_tokens.value;
    let mut sink = move |delta: &str| {
        if stream {
            let mut out = std::io::stdout().lock();
            // A closed stdout shows up again, as an error, when the answer is printed below.
            let _ = out.write_all(format::sanitize(delta).as_bytes());
            let _ = out.flush();
        }
    };
    let answer = runtime.block_on(ask(
        &provider,
        &args.question,
        &pack,
        &commits,
        answer_tokens,
        Some(&mut sink),
    ))?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let json = JsonAnswer {
            answer: &answer,
            latency_ms: answer.latency.as_millis() as u64,
            first_token_ms: answer.first_token.map(|d| d.as_millis() as u64),
            context: pack.items.iter().map(|i| i.label()).collect(),
            trace: trace_path.display().to_string(),
        };
        serde_json::to_writer(&mut out, &json)?;
        writeln!(out)?;
        return Ok(());
    }
    if stream {
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}",
            format::sanitize(&mark_unverified(
                answer.answer.trim_end(),
                &answer.unverified
            ))
        )?;
    }
    write_sources(&mut out, &answer, &pack, &commits, Style::stdout())?;
    let style = Style::stderr();
    let first = answer
        .first_token
        .map(|d| format!(", first token {}", format::millis(d.as_millis() as u64)))
        .unwrap_or_default();
    eprintln!(
        "{}",
        style.dim(&format!(
            "{} · {} prompt + {} answer tokens · context {}/{} · {}{first}",
            answer.model,
            format::count(answer.usage.prompt_tokens as usize),
            format::count(answer.usage.completion_tokens as usize),
            format::count(answer.context_tokens),
            format::count(answer.context_budget),
            format::millis(answer.latency.as_millis() as u64),
        ))
    );
    Ok(())
}

fn write_sources(
    out: &mut impl Write,
    answer: &Answer,
    pack: &ContextPack,
    commits: &[CommitContext],
    style: Style,
) -> Result<()> {
    if answer.citations.is_empty() && answer.commits.is_empty() {
        writeln!(
            out,
            "\n{}",
            style.dim("(the answer cites no retrieved code)")
        )?;
    } else {
        writeln!(out, "\nSources:")?;
        for citation in &answer.citations {
            let symbol = pack
                .find(&citation.path, citation.start_line, citation.end_line)
                .and_then(|item| item.symbol.clone())
                .unwrap_or_default();
            writeln!(
                out,
                "  {}  {}",
                style.path(&format::sanitize(&citation.label())),
                style.symbol(&format::sanitize(&symbol))
            )?;
        }
    }
    for short in &answer.commits {
        let subject = commits
            .iter()
            .find(|c| c.short() == short)
            .and_then(|c| c.text.lines().next())
            .unwrap_or("");
        writeln!(
            out,
            "  {}  {}",
            style.path(&format!("commit {short}")),
            style.symbol(&format::sanitize(subject))
        )?;
    }
    if !answer.unverified.is_empty() || !answer.unverified_commits.is_empty() {
        let labels: Vec<String> = answer
            .unverified
            .iter()
            .map(|c| c.label())
            .chain(
                answer
                    .unverified_commits
                    .iter()
                    .map(|id| format!("commit {id}")),
            )
            .collect();
        writeln!(
            out,
            "{}",
            style.dim(&format!(
                "Not in the retrieved context, so not sources: {}",
                labels.join(", ")
            ))
        )?;
    }
    Ok(())
}
