//! `quarry`: index a repository, search it and ask about it.
//!
//! This binary owns presentation: argument parsing, progress bars, colours, output formats
//! and exit codes. All the work happens in the library crates; every error they return is
//! printed here as one line, followed by a non-zero exit.

mod commands;
mod daemon;
mod format;
mod mcp;
mod mcp_stdio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quarry_retriever::Lookup;

const EXAMPLES: &str = "\
Examples:
  quarry index                       index the current repository (incremental on re-run)
  quarry index ~/src/django          index another folder
  quarry search \"load config\"        best matching functions, classes and sections
  quarry search Router -k 5 --lang rust --path 'src/**'
  quarry search \"retry upload\" --json | jq '.[0].path'
  quarry ask \"how is config loaded?\"   an answer citing path:start-end
  quarry status                      what is indexed, how fresh, how big
  quarry config                      which LLM and settings are in effect, and from where
  quarry edit \"add a timeout to the client\" --check \"cargo test\"   a verified multi-file change
  quarry daemon                      keep the index fresh as you edit";

/// A RAG-first code index: function-level search and answers over your repository.
#[derive(Debug, Parser)]
#[command(name = "quarry", version, after_help = EXAMPLES)]
struct Cli {
    /// Keep the index in this directory instead of `<repo>/.quarry`.
    #[arg(long, global = true, env = "QUARRY_INDEX_DIR", value_name = "DIR")]
    index_dir: Option<PathBuf>,

    /// Log what quarry does to stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Index a repository, or bring its index up to date.
    #[command(after_help = "\
Examples:
  quarry index                 index the current directory
  quarry index ../other-repo   index another repository
  quarry index --rebuild       throw the index away and build it again")]
    Index(commands::index::IndexArgs),
    /// Search the index of the repository you are in.
    #[command(after_help = "\
Examples:
  quarry search \"parse config file\"
  quarry search Config::load -k 3
  quarry search cache --lang python --path 'notes/**'
  quarry search \"route request\" --json")]
    Search(commands::search::SearchArgs),
    /// Where a name is defined (functions, methods, types, constants, modules, fields).
    #[command(after_help = "\
Examples:
  quarry defs open
  quarry defs Store::open --json
  quarry defs parse --lang python --path 'src/**'")]
    Defs(commands::graph::GraphArgs),
    /// Every use of a name: calls, method calls, paths, types, imports, fields, values.
    #[command(after_help = "\
Examples:
  quarry refs open              every use of `open`
  quarry refs Store::open       uses written Store::open, self.open() inside Store, or
                                open() where the file imports it from Store
  quarry refs load_config --json | jq '.sites | length'")]
    Refs(commands::graph::GraphArgs),
    /// Every call of a function or method, with the symbol each call is in.
    Callers(commands::graph::GraphArgs),
    /// What a function or method calls, with where each callee is defined.
    Callees(commands::graph::GraphArgs),
    /// Show what is indexed, how fresh it is and how big.
    #[command(after_help = "\
Examples:
  quarry status
  quarry status --json | jq .chunks")]
    Status(commands::status::StatusArgs),
    /// Ask a question about the code; the answer cites the chunks it used.
    #[command(after_help = "\
Examples:
  quarry ask \"how is the config loaded?\"
  quarry ask \"what retries a failed upload?\" --json
  QUARRY_LLM_URL=http://127.0.0.1:8080/v1 QUARRY_LLM_MODEL=local quarry ask \"where are routes matched?\"

The LLM comes from quarry.toml, ~/.config/quarry/config.toml, QUARRY_LLM_URL / QUARRY_LLM_MODEL /
QUARRY_LLM_PROVIDER, OPENAI_API_KEY or ANTHROPIC_API_KEY; `quarry config` shows what is in effect.")]
    Ask(commands::ask::AskArgs),
    /// Show the effective configuration and where each value came from (keys redacted).
    Config(commands::config::ConfigArgs),
    /// Watch the repository and keep its index fresh; other commands use it while it runs.
    #[command(after_help = "\
Examples:
  quarry daemon                 watch the current repository (Ctrl-C or --stop ends it)
  quarry daemon ../other &      watch another one in the background
  quarry daemon --stop          stop the daemon of the current repository

While it runs, `quarry search`, `ask`, `status` and `index` go through it (warm model, open
index); it logs to .quarry/daemon.log.")]
    Daemon(daemon::DaemonArgs),
    /// Make a change across files: plan it, run LLM workers, apply, check, and keep a way back.
    #[command(after_help = "\
Examples:
  quarry edit \"add a timeout option to the HTTP client and pass it from every caller\" --check \"cargo test\"
  quarry edit \"rename load_config to read_config\" --dry-run      show the diff, write nothing
  quarry edit \"...\" --yes --jobs 3 --max-calls 30                 no questions, 3 tasks at once
  quarry edit --resume 20261126-120000-a1b2                       continue a stopped run

Every run is kept in .quarry/runs/ID (plan, task states, trace, originals);
`quarry runs` lists them and `quarry undo ID` restores the files.")]
    Edit(commands::edit::EditArgs),
    /// List edit runs, newest first.
    Runs(commands::edit::RunsArgs),
    /// Restore the files an edit run changed.
    Undo(commands::edit::UndoArgs),
    /// Project notes and past runs that `quarry edit` recalls into its prompts.
    #[command(after_help = "\
Examples:
  quarry memory add \"binaries use anyhow, libraries thiserror\"
  quarry memory list
  quarry memory forget 1a2b3c4d")]
    Memory(commands::memory::MemoryArgs),
    /// Serve the index to coding agents over the Model Context Protocol (stdio).
    #[command(after_help = "\
Tools: search, definitions, references, read_chunk, status, ask, edit (dry runs only unless
--allow-edits).
Configure an MCP client with
  {\"command\": \"quarry\", \"args\": [\"mcp\", \"/path/to/repo\"]}")]
    Mcp(mcp::McpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon sets up its own logging (to its log file too).
    if !matches!(cli.command, Command::Daemon(_)) {
        init_logging(cli.verbose);
    }
    let result = match cli.command {
        Command::Index(args) => commands::index::run(args, cli.index_dir.as_deref()),
        Command::Search(args) => commands::search::run(args, cli.index_dir.as_deref()),
        Command::Defs(args) => {
            commands::graph::run(Lookup::Definitions, args, cli.index_dir.as_deref())
        }
        Command::Refs(args) => {
            commands::graph::run(Lookup::References, args, cli.index_dir.as_deref())
        }
        Command::Callers(args) => {
            commands::graph::run(Lookup::Callers, args, cli.index_dir.as_deref())
        }
        Command::Callees(args) => {
            commands::graph::run(Lookup::Callees, args, cli.index_dir.as_deref())
        }
        Command::Status(args) => commands::status::run(args, cli.index_dir.as_deref()),
        Command::Ask(args) => commands::ask::run(args, cli.index_dir.as_deref()),
        Command::Config(args) => commands::config::run(args),
        Command::Edit(args) => commands::edit::run(args, cli.index_dir.as_deref()),
        Command::Runs(args) => commands::edit::list(args, cli.index_dir.as_deref()),
        Command::Undo(args) => commands::edit::undo_run(args, cli.index_dir.as_deref()),
        Command::Memory(args) => commands::memory::run(args, cli.index_dir.as_deref()),
        Command::Daemon(args) => daemon::run(args, cli.index_dir.as_deref(), cli.verbose),
        Command::Mcp(args) => mcp::run(args, cli.index_dir.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", format::sanitize(&one_line(&err)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: a cause whose text the line
/// already holds (an I/O error its wrapper quoted) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.replace('\n', " ")
}

/// A reader that stopped reading (`quarry search ... | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let text = io.to_string();
        let err = anyhow::Error::new(io).context(format!("reading /x: {text}"));
        assert_eq!(super::one_line(&err), format!("reading /x: {text}"));
        let err = anyhow::anyhow!("inner\ncause").context("outer");
        assert_eq!(super::one_line(&err), "outer: inner cause");
    }
}
