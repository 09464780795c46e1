//! Chunks: the unit Quarry indexes, retrieves and cites.
//!
//! A chunk is a contiguous span of one file (1-based inclusive lines, byte offsets) with the
//! metadata retrieval needs: a qualified symbol, a kind, the signature, the doc comment and
//! the enclosing headers. [`chunk_file`] picks the strategy for a file: tree-sitter items for
//! languages with a grammar ([`code`]), headings for Markdown and line windows for every
//! other text file ([`text`]). Chunks over the token budget are cut into overlapping windows
//! ([`window`]).

pub mod code;
mod docs;
pub mod text;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::graph::{self, ChunkGraph};
use crate::lang::{self, Language};
use crate::tokens::TokenCounter;

/// What a chunk is, as users and filters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    /// A free function.
    Function,
    /// A function inside an `impl`, trait or class.
    Method,
    /// A Python class (its outline: header, attributes and method signatures).
    Class,
    /// A Rust struct or union.
    Struct,
    /// A Rust enum.
    Enum,
    /// A Rust trait or a PHP trait (its outline).
    Trait,
    /// An interface of TypeScript, Go, Java, C# or PHP (its outline).
    Interface,
    /// A Rust `impl` block (its outline).
    Impl,
    /// A `macro_rules!` definition.
    Macro,
    /// Code outside any item: imports, constants, top-level statements, inline modules.
    Module,
    /// A Markdown section under one heading.
    Section,
    /// A line window of a text file without a grammar.
    Text,
    /// A commit of the repository's history: its message and changed paths.
    Commit,
}

impl ChunkKind {
    /// Every kind a code or text file's chunk can have (commits live in the history's
    /// stores, not the code index): what `--kind` accepts.
    pub const OF_FILES: [ChunkKind; 12] = [
        ChunkKind::Function,
        ChunkKind::Method,
        ChunkKind::Class,
        ChunkKind::Struct,
        ChunkKind::Enum,
        ChunkKind::Trait,
        ChunkKind::Interface,
        ChunkKind::Impl,
        ChunkKind::Macro,
        ChunkKind::Module,
        ChunkKind::Section,
        ChunkKind::Text,
    ];

    /// Whether a chunk of this kind is one definition (a function, method, type, trait,
    /// impl or macro) rather than module code, a section or a line window.
    pub fn is_symbol(self) -> bool {
        !matches!(
            self,
            ChunkKind::Module | ChunkKind::Section | ChunkKind::Text | ChunkKind::Commit
        )
    }

    /// The lowercase name used in payloads, filters and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Function => "function",
            ChunkKind::Method => "method",
            ChunkKind::Class => "class",
            ChunkKind::Struct => "struct",
            ChunkKind::Enum => "enum",
            ChunkKind::Trait => "trait",
            ChunkKind::Interface => "interface",
            ChunkKind::Impl => "impl",
            ChunkKind::Macro => "macro",
            ChunkKind::Module => "module",
            ChunkKind::Section => "section",
            ChunkKind::Text => "text",
            ChunkKind::Commit => "commit",
        }
    }
}

/// One indexed span of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable id derived from the path, span and content (32 hex digits).
    pub id: String,
    /// Path relative to the indexed root, `/`-separated.
    pub path: String,
    /// Language name (`rust`, `python`, `markdown`, `toml`, `text`, ...).
    pub lang: String,
    /// What the chunk is.
    pub kind: ChunkKind,
    /// Qualified symbol (`crate::config::Config::load`, `notes.cli.main`), a module path for
    /// module chunks or the heading path of a Markdown section.
    pub symbol: Option<String>,
    /// The item's signature, whitespace collapsed (`pub fn load(path: &Path) -> Result<Config>`).
    pub signature: Option<String>,
    /// The doc comment or docstring, markers stripped.
    pub doc: Option<String>,
    /// Enclosing headers, outermost first, one per line (`impl<T> Cache<T>`, `class Store:`).
    pub context: Option<String>,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based and inclusive.
    pub end_line: u32,
    /// Byte offset of the span's start in the file.
    pub start_byte: usize,
    /// Byte offset one past the span's end.
    pub end_byte: usize,
    /// The chunk's text: the span's lines, or an outline for classes, impls and traits.
    pub text: String,
    /// The code graph's sites inside the chunk (definitions and references).
    #[serde(default, skip_serializing_if = "ChunkGraph::is_empty")]
    pub graph: ChunkGraph,
}

impl Chunk {
    /// The text the keyword index and the embedder see besides the body: symbol, signature,
    /// enclosing headers and doc, so a window cut from the middle of a long function still
    /// carries the header that says what it belongs to.
    pub fn header_text(&self) -> String {
        let mut out = String::new();
        for part in [&self.context, &self.symbol, &self.signature, &self.doc]
            .into_iter()
            .flatten()
        {
            out.push_str(part);
            out.push('\n');
        }
        out
    }

    /// Whether the chunk is test code (a test file's, or a Rust `tests` module's): see
    /// [`crate::lang::is_test_code`].
    pub fn is_test(&self) -> bool {
        crate::lang::is_test_code(&self.path, &self.lang, self.symbol.as_deref())
    }
}

/// Settings that change what chunks come out of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSettings {
    /// Largest chunk in model tokens before it is cut into windows.
    pub max_tokens: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings { max_tokens: 512 }
    }
}

/// Chunks one file's text. Never fails: a file the grammar cannot make sense of still gets
/// line-window chunks covering every non-blank line.
pub fn chunk_file(
    path: &str,
    text: &str,
    settings: &ChunkSettings,
    counter: &dyn TokenCounter,
) -> Vec<Chunk> {
    let language = lang::detect(path);
    let (mut chunks, sites) = match language {
        Language::Code(spec) => code::chunk_code(spec, path, text, settings, counter),
        Language::Markdown => (
            text::chunk_markdown(path, text, settings, counter),
            Vec::new(),
        ),
        Language::Text(name) => (
            text::chunk_lines(path, name, text, settings, counter),
            Vec::new(),
        ),
    };
    let max_bytes = window::max_chunk_bytes(settings.max_tokens);
    if chunks.iter().any(|c| c.text.len() > max_bytes) {
        chunks = chunks
            .into_iter()
            .flat_map(|c| window::cap_bytes(c, max_bytes))
            .collect();
    }
    if let Language::Code(spec) = language
        && !sites.is_empty()
    {
        graph::attach(&mut chunks, sites, spec.separator, &LineIndex::new(text));
    }
    for chunk in &mut chunks {
        chunk.id = chunk_id(chunk);
    }
    // Two chunks with the same id would be one point in a store and one too many in the
    // manifest; the chunkers should never produce them, and this makes sure.
    let mut seen = std::collections::HashSet::new();
    chunks.retain(|chunk| seen.insert(chunk.id.clone()));
    chunks
}

/// How much of a file its chunks understood: its non-blank lines, and how many of them lie
/// inside a symbol's chunk ([`ChunkKind::is_symbol`]) rather than module code or a window.
/// A line inside several chunks (a class outline and its method) counts once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCoverage {
    /// Non-blank lines of the file.
    pub lines: u32,
    /// Of those, the lines inside a symbol's chunk.
    pub symbol_lines: u32,
}

impl LineCoverage {
    /// The coverage of `chunks`, cut from `text`.
    pub fn of(text: &str, chunks: &[Chunk]) -> LineCoverage {
        let index = LineIndex::new(text);
        let mut in_symbol = vec![false; index.len() + 1];
        for chunk in chunks.iter().filter(|c| c.kind.is_symbol()) {
            let end = (chunk.end_line as usize).min(index.len());
            for flag in in_symbol
                .iter_mut()
                .take(end + 1)
                .skip(chunk.start_line as usize)
            {
                *flag = true;
            }
        }
        let mut coverage = LineCoverage::default();
        for line in 1..=index.len() as u32 {
            if !index.is_blank(line) {
                coverage.lines += 1;
                coverage.symbol_lines += u32::from(in_symbol[line as usize]);
            }
        }
        coverage
    }
}

fn chunk_id(chunk: &Chunk) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in [
        chunk.path.as_str(),
        chunk.kind.as_str(),
        chunk.symbol.as_deref().unwrap_or(""),
        &chunk.start_byte.to_string(),
        &chunk.end_byte.to_string(),
        &chunk.text,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hasher.finalize().to_hex()[..32].to_string()
}

/// Maps byte offsets of one file to 1-based line numbers and line slices.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        if starts.len() > 1 && *starts.last().unwrap_or(&0) == text.len() {
            starts.pop();
        }
        LineIndex { text, starts }
    }

    /// Number of lines (a trailing newline does not start a new line).
    pub(crate) fn len(&self) -> usize {
        if self.text.is_empty() {
            0
        } else {
            self.starts.len()
        }
    }

    /// 1-based line containing byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> u32 {
        match self.starts.binary_search(&offset) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }

    /// Byte offset where 1-based `line` starts.
    pub(crate) fn start_of(&self, line: u32) -> usize {
        self.starts[(line - 1) as usize]
    }

    /// Byte offset just past 1-based `line`, including its newline.
    pub(crate) fn end_of(&self, line: u32) -> usize {
        self.starts
            .get(line as usize)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// The text of 1-based line `line`, without its line ending.
    pub(crate) fn line(&self, line: u32) -> &'a str {
        let slice = &self.text[self.start_of(line)..self.end_of(line)];
        slice.trim_end_matches('\n').trim_end_matches('\r')
    }

    /// The lines `start..=end` joined with `\n` (CRLF normalised).
    pub(crate) fn lines(&self, start: u32, end: u32) -> String {
        let mut out = String::new();
        for l in start..=end {
            if l > start {
                out.push('\n');
            }
            out.push_str(self.line(l));
        }
        out
    }

    pub(crate) fn is_blank(&self, line: u32) -> bool {
        self.line(line).trim().is_empty()
    }
}

#[cfg(test)]
mod language_tests;
#[cfg(test)]
mod tests;
