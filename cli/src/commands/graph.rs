//! `quarry defs`, `refs`, `callers` and `callees`: the code graph, for people (one line per
//! site, `path:line:column: text`, as ripgrep prints) or (`--json`) for programs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use quarry_retriever::{GraphAnswer, GraphRequest, Lookup, Mode, SiteHit};

use crate::commands::find_layout;
use crate::commands::search::{IndexAccess, open_index};
use crate::commands::team::team_setup;
use crate::format::{Style, sanitize};

/// Arguments every graph command takes.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The name: bare (`open`) or qualified (`Store::open`, `store.Store.open`) to narrow by
    /// what it is written with.
    name: String,

    /// Only files of this language (rust, python).
    #[arg(long, value_name = "LANG")]
    lang: Option<String>,

    /// Only paths matching this glob (`src/**`, `*.py`) or under this folder.
    #[arg(long, value_name = "GLOB")]
    path: Option<String>,

    /// Print one JSON object: {lookup, name, sites: [{path, line, column, kind, name,
    /// symbol?, qualifier?, enclosing?, lang, text, targets?}]}.
    #[arg(long)]
    json: bool,

    /// Use the index of this repository instead of the one around the current directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// Runs one graph lookup and prints its sites.
pub fn run(lookup: Lookup, args: GraphArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let request = GraphRequest {
        lookup,
        name: args.name.clone(),
        lang: args.lang,
        path: args.path,
    };
    let answer = match open_index(&layout, team_setup(&layout.root)?, Mode::Keyword)? {
        IndexAccess::Daemon(mut daemon) => daemon.graph(request)?,
        IndexAccess::Direct(reader) => reader.retriever.graph(&request)?,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer(&mut out, &answer)?;
        writeln!(out)?;
        return Ok(());
    }
    if answer.sites.is_empty() {
        eprintln!("no {} of `{}`", lookup.as_str(), sanitize(&answer.name));
        return Ok(());
    }
    write_sites(&mut out, &answer, Style::stdout())
}

fn write_sites(out: &mut impl Write, answer: &GraphAnswer, style: Style) -> Result<()> {
    for site in &answer.sites {
        let location = format!("{}:{}:{}:", sanitize(&site.path), site.line, site.column);
        writeln!(
            out,
            "{} {}  {}",
            style.path(&location),
            sanitize(site.text.trim()),
            style.dim(&describe(site))
        )?;
        for target in &site.targets {
            let symbol = target.symbol.as_deref().unwrap_or("");
            writeln!(
                out,
                "    → {} {}",
                style.path(&format!("{}:{}", sanitize(&target.path), target.line)),
                style.symbol(&sanitize(symbol))
            )?;
        }
    }
    Ok(())
}

/// `method · crate::store::Store::open` for a definition, `call in crate::main` for a use.
fn describe(site: &SiteHit) -> String {
    match (&site.symbol, &site.enclosing) {
        (Some(symbol), _) => format!("{} · {}", site.kind, sanitize(symbol)),
        (None, Some(enclosing)) => format!("{} in {}", site.kind, sanitize(enclosing)),
        (None, None) => site.kind.clone(),
    }
}
