//! `quarry memory`: the project notes and past runs that edit prompts recall.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use quarry_indexer::embed::Embedder;
use quarry_indexer::embed::VectorModel;
use quarry_indexer::embed::onnx::OnnxEmbedder;
use quarry_orchestrator::memory::{Memory, NoteSource};

use crate::commands::find_layout;
use crate::format::Style;

/// Arguments of `quarry memory`.
#[derive(Debug, Args)]
pub struct MemoryArgs {
    #[command(subcommand)]
    action: MemoryAction,

    /// The repository [default: the one around the current directory].
    #[arg(long, value_name = "DIR", global = true)]
    root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum MemoryAction {
    /// Remember a project convention or fact ("use anyhow in binaries").
    Add {
        /// The note.
        text: String,
    },
    /// List every note, oldest first.
    List {
        /// Print the notes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget the note with this id.
    Forget {
        /// The note's id (from `quarry memory list`).
        id: String,
    },
}

/// Runs `quarry memory`.
pub fn run(args: MemoryArgs, index_dir: Option<&Path>) -> Result<()> {
    let layout = find_layout(args.root.as_deref(), index_dir)?;
    let memory = Memory::open(&layout.dir)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.action {
        MemoryAction::Add { text } => {
            // Notes get vectors when the index has them, so recall can match by meaning.
            let mut embedder = if VectorModel::load(&layout).is_some() {
                match OnnxEmbedder::configured() {
                    Ok(model) => Some(model),
                    Err(e) => {
                        eprintln!(
                            "note: stored without a vector ({e}); recall will match its words"
                        );
                        None
                    }
                }
            } else {
                None
            };
            let note = memory.add(
                &text,
                NoteSource::User,
                None,
                embedder.as_mut().map(|e| e as &mut dyn Embedder),
            )?;
            writeln!(out, "remembered {}", note.id)?;
        }
        MemoryAction::List { json } => {
            let notes = memory.list()?;
            if json {
                serde_json::to_writer(&mut out, &notes)?;
                writeln!(out)?;
            } else if notes.is_empty() {
                eprintln!("no notes yet; add one with `quarry memory add \"...\"`");
            } else {
                let style = Style::stdout();
                for note in notes {
                    let source = match note.source {
                        NoteSource::User => "user".to_string(),
                        NoteSource::Run => format!("run {}", note.run.unwrap_or_default()),
                    };
                    writeln!(
                        out,
                        "{}  {}  {}",
                        style.path(&note.id),
                        style.dim(&source),
                        note.text
                    )?;
                }
            }
        }
        MemoryAction::Forget { id } => {
            let note = memory.forget(&id)?;
            writeln!(out, "forgot {}: {}", note.id, note.text)?;
        }
    }
    Ok(())
}
