//! Context packing: the best chunks for a question, fitted into an LLM prompt's token budget.
//!
//! A prompt needs more than the top hits' bodies. Each packed chunk carries its enclosing
//! headers (the `impl` or `class` line a method lives in) so the model knows what `self` is,
//! and when budget is left after the hits, the definitions of functions the top hits call are
//! added, so an answer about `load` can see the `parse_env` it delegates to. Every item gets a
//! label, `path:start-end`, that the prompt asks the model to cite and that citation checking
//! compares against. Files that look like secrets are never packed, even when they were
//! indexed with `--include-secrets`.

use std::collections::HashSet;

use quarry_indexer::Chunk;
use quarry_indexer::graph::NameRole;
use quarry_indexer::tokens::{ApproxTokenCounter, TokenCounter};
use quarry_indexer::walk::is_secret_path;
use serde::{Deserialize, Serialize};

use crate::fusion::is_definition;
use crate::{Retriever, SearchError, SearchRequest, overlapping};

/// How many of the top hits are scanned for calls whose definitions to add.
const CALLERS_SCANNED: usize = 3;
/// Most callee definitions added to one pack.
const MAX_CALLEES: usize = 6;

/// Why a chunk is in the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextRole {
    /// Retrieved for the question.
    Hit,
    /// The definition of something a hit calls.
    Callee,
}

/// One chunk in a prompt's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextItem {
    /// Path relative to the repository root.
    pub path: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based and inclusive.
    pub end_line: u32,
    /// Qualified symbol, when the chunk has one.
    pub symbol: Option<String>,
    /// Language name.
    pub lang: String,
    /// Enclosing headers (`impl Config`, `class Store:`), outermost first, one per line.
    pub enclosing: Option<String>,
    /// The chunk's text.
    pub text: String,
    /// Why it is here.
    pub role: ContextRole,
    /// What this item costs in the prompt, in estimated tokens.
    pub tokens: usize,
}

impl ContextItem {
    /// The citation label, `path:start-end`.
    pub fn label(&self) -> String {
        format!("{}:{}-{}", self.path, self.start_line, self.end_line)
    }

    /// The item as it appears in a prompt: its label, enclosing headers and text.
    pub fn render(&self) -> String {
        let mut out = format!("[{}]", self.label());
        if let Some(symbol) = &self.symbol {
            out.push(' ');
            out.push_str(symbol);
        }
        out.push('\n');
        if let Some(enclosing) = &self.enclosing {
            for line in enclosing.lines() {
                out.push_str("(inside) ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&self.text);
        if !self.text.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// The packed context for one question.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextPack {
    /// The items, hits first (best first), then callee definitions.
    pub items: Vec<ContextItem>,
    /// Estimated tokens of all items.
    pub tokens: usize,
    /// The budget they had to fit in.
    pub budget: usize,
    /// Hits left out because they did not fit.
    pub dropped: usize,
}

impl ContextPack {
    /// The item a citation of `path` lines `start..=end` refers to: one whose span contains it.
    pub fn find(&self, path: &str, start: u32, end: u32) -> Option<&ContextItem> {
        self.items
            .iter()
            .find(|item| item.path == path && item.start_line <= start && end <= item.end_line)
    }
}

/// Estimated prompt tokens of a piece of text.
pub fn estimate_tokens(text: &str) -> usize {
    ApproxTokenCounter.count(text)
}

impl Retriever {
    /// Retrieves chunks for `request` (its `k` is the number of hits considered) and packs as
    /// many as fit into `budget` estimated tokens, plus callee definitions when room is left.
    pub fn pack_context(
        &mut self,
        request: &SearchRequest,
        budget: usize,
    ) -> Result<ContextPack, SearchError> {
        let ranked = self.ranked(request)?;
        let mut pack = ContextPack {
            budget,
            ..ContextPack::default()
        };
        let mut packed: Vec<Chunk> = Vec::new();
        for hit in ranked {
            if is_secret_path(&hit.chunk.path) {
                continue;
            }
            let item = item_for(&hit.chunk, ContextRole::Hit);
            if pack.tokens + item.tokens > budget {
                pack.dropped += 1;
                continue;
            }
            pack.tokens += item.tokens;
            pack.items.push(item);
            packed.push(hit.chunk);
        }

        let mut looked_up: HashSet<String> = packed
            .iter()
            .filter_map(|c| c.symbol.as_deref().map(last_segment))
            .map(str::to_string)
            .collect();
        let callers: Vec<Chunk> = packed.iter().take(CALLERS_SCANNED).cloned().collect();
        let mut added = 0;
        'callers: for caller in &callers {
            for (name, qualifier) in callees_of(caller) {
                if added == MAX_CALLEES {
                    break 'callers;
                }
                if !looked_up.insert(name.clone()) {
                    continue;
                }
                let Some(definition) = self.definition_of(&name, qualifier.as_deref(), caller)?
                else {
                    continue;
                };
                if is_secret_path(&definition.path)
                    || packed.iter().any(|c| overlapping(c, &definition))
                {
                    continue;
                }
                let item = item_for(&definition, ContextRole::Callee);
                if pack.tokens + item.tokens > budget {
                    continue;
                }
                pack.tokens += item.tokens;
                pack.items.push(item);
                packed.push(definition);
                added += 1;
            }
        }
        Ok(pack)
    }

    /// The chunk defining `name`: from the code graph, the chunk that is that item (a
    /// function, method or type), preferring one inside the call's qualifier (`Store` of
    /// `Store::open`), then one in the caller's file, then in its language. Chunks of a
    /// language without a graph fall back to a keyword lookup of the name.
    fn definition_of(
        &self,
        name: &str,
        qualifier: Option<&str>,
        caller: &Chunk,
    ) -> Result<Option<Chunk>, SearchError> {
        if caller.graph.is_empty() {
            return self.keyword_definition_of(name, caller);
        }
        let chunks = self
            .code
            .chunks_naming(NameRole::Defines, &[name.to_string()])?;
        // A call written with a type (`String::new`) means that type's function only.
        let typed = qualifier.filter(|q| q.starts_with(char::is_uppercase));
        let parent_of = |chunk: &Chunk| {
            chunk
                .symbol
                .as_deref()
                .and_then(|s| s.rsplit([':', '.']).filter(|p| !p.is_empty()).nth(1))
                .map(str::to_string)
        };
        let best = chunks
            .into_iter()
            .filter(|chunk| typed.is_none_or(|q| parent_of(chunk).as_deref() == Some(q)))
            .filter(|chunk| {
                is_definition(chunk.kind)
                    && chunk.graph.sites.iter().any(|site| {
                        site.kind.is_definition()
                            && site.name == name
                            && site.symbol.is_some()
                            && site.symbol == chunk.symbol
                    })
            })
            .min_by_key(|chunk| {
                let inside_qualifier =
                    qualifier.is_some_and(|q| parent_of(chunk).as_deref() == Some(q));
                (
                    !inside_qualifier,
                    chunk.path != caller.path,
                    chunk.lang != caller.lang,
                    chunk.path.clone(),
                    chunk.start_line,
                )
            });
        Ok(best)
    }

    /// [`Retriever::definition_of`] by BM25, for chunks without a graph.
    fn keyword_definition_of(
        &self,
        name: &str,
        caller: &Chunk,
    ) -> Result<Option<Chunk>, SearchError> {
        let candidates = self.code.keyword_chunks(name, &caller.lang)?;
        let mut best: Option<Chunk> = None;
        for chunk in candidates {
            let defines = is_definition(chunk.kind)
                && chunk.symbol.as_deref().map(last_segment) == Some(name);
            if !defines {
                continue;
            }
            if chunk.path == caller.path {
                return Ok(Some(chunk));
            }
            if best.is_none() {
                best = Some(chunk);
            }
        }
        Ok(best)
    }
}

/// What a chunk calls, in order of first call, with the qualifier each call was written
/// with: the code graph's call sites, or for a chunk without a graph, names followed by `(`.
fn callees_of(chunk: &Chunk) -> Vec<(String, Option<String>)> {
    if chunk.graph.is_empty() {
        return called_names(&chunk.text)
            .into_iter()
            .map(|name| (name, None))
            .collect();
    }
    let mut seen = HashSet::new();
    chunk
        .graph
        .sites
        .iter()
        .filter(|site| site.kind.is_call() && site.name.len() >= 3)
        .filter(|site| seen.insert(site.name.clone()))
        .map(|site| {
            // `self.f()` means the caller's own type: the segment before its name.
            let qualifier = match site.qualifier.as_deref() {
                Some("self" | "Self" | "cls") => chunk
                    .symbol
                    .as_deref()
                    .and_then(|s| s.rsplit([':', '.']).filter(|p| !p.is_empty()).nth(1))
                    .map(str::to_string),
                _ => site.qualifier.clone(),
            };
            (site.name.clone(), qualifier)
        })
        .collect()
}

fn item_for(chunk: &Chunk, role: ContextRole) -> ContextItem {
    let mut item = ContextItem {
        path: chunk.path.clone(),
        start_line: chunk.start_line,
        end_line: chunk.end_line,
        symbol: chunk.symbol.clone(),
        lang: chunk.lang.clone(),
        enclosing: chunk.context.clone(),
        text: chunk.text.clone(),
        role,
        tokens: 0,
    };
    item.tokens = estimate_tokens(&item.render());
    item
}

/// `load` of `crate::config::Config::load` or `notes.store.Store.load`.
fn last_segment(symbol: &str) -> &str {
    symbol.rsplit([':', '.']).next().unwrap_or(symbol)
}

/// Names called in a piece of code (`name(`, `.name(`, `Type::name(`), in order of first
/// use, without language keywords and very short names.
fn called_names(code: &str) -> Vec<String> {
    const KEYWORDS: [&str; 24] = [
        "if",
        "for",
        "while",
        "match",
        "return",
        "fn",
        "def",
        "print",
        "len",
        "str",
        "int",
        "Some",
        "Ok",
        "Err",
        "Box",
        "Vec",
        "self",
        "super",
        "isinstance",
        "range",
        "format",
        "println",
        "assert",
        "dict",
    ];
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let name = &code[start..i];
            let preceded_by_def = code[..start].trim_end().ends_with("fn")
                || code[..start].trim_end().ends_with("def");
            let called = bytes.get(i) == Some(&b'(');
            if called
                && !preceded_by_def
                && name.len() >= 3
                && !KEYWORDS.contains(&name)
                && seen.insert(name)
            {
                names.push(name.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_found_in_order_without_definitions_or_keywords() {
        let code = "fn load(path: &Path) -> Result<Config> {\n    let text = read_file(path)?;\n    if ok(x) { Config::parse(&text).map(apply_env) }\n    self.store.save(x); read_file(y)\n}";
        assert_eq!(called_names(code), ["read_file", "parse", "map", "save"]);
        let python = "def main(argv):\n    args = parse_args(argv)\n    print(len(args))\n";
        assert_eq!(called_names(python), ["parse_args"]);
    }

    #[test]
    fn last_segments_of_rust_and_python_symbols() {
        assert_eq!(last_segment("crate::config::Config::load"), "load");
        assert_eq!(last_segment("notes.store.Store.add"), "add");
        assert_eq!(last_segment("main"), "main");
    }

    #[test]
    fn items_render_with_label_and_enclosing_header() {
        let item = ContextItem {
            path: "src/config.rs".into(),
            start_line: 12,
            end_line: 14,
            symbol: Some("Config::load".into()),
            lang: "rust".into(),
            enclosing: Some("impl Config".into()),
            text: "fn load() {\n}".into(),
            role: ContextRole::Hit,
            tokens: 0,
        };
        assert_eq!(item.label(), "src/config.rs:12-14");
        assert_eq!(
            item.render(),
            "[src/config.rs:12-14] Config::load\n(inside) impl Config\nfn load() {\n}\n"
        );
    }

    #[test]
    fn citations_resolve_to_the_item_containing_them() {
        let pack = ContextPack {
            items: vec![ContextItem {
                path: "a.py".into(),
                start_line: 10,
                end_line: 20,
                symbol: None,
                lang: "python".into(),
                enclosing: None,
                text: String::new(),
                role: ContextRole::Hit,
                tokens: 1,
            }],
            ..ContextPack::default()
        };
        assert!(pack.find("a.py", 10, 20).is_some());
        assert!(pack.find("a.py", 12, 15).is_some());
        assert!(pack.find("a.py", 9, 15).is_none());
        assert!(pack.find("b.py", 12, 15).is_none());
    }
}
