//! The code graph's lookups: definitions, references, callers and callees of a name, and
//! the file graph (which file uses names defined in which).
//!
//! `*` as the name of a definitions lookup lists every definition of the files a path
//! filter selects (a file's outline). Every lookup is exhaustive: the stores return every chunk that defines or references the
//! name ([`CandidateSource::chunks_naming`]), and the sites come from those chunks' graphs.
//! Resolution is by name, narrowed by a qualifier when the query has one (`Store::open`,
//! `store.Store.open`):
//!
//! - definitions whose qualified symbol ends with the query's segments;
//! - references written with that qualifier (`Store::open(..)`, aliases followed), written
//!   with `self`/`Self`/`cls` inside a symbol holding the qualifier, or written bare in a
//!   file that imports the name from the qualifier (`use store::open;`). A method call on any
//!   other receiver (`x.open()`) is left out: receivers' types are not inferred.

pub(crate) mod files;

use std::collections::{BTreeSet, HashMap};

use quarry_indexer::Chunk;
use quarry_indexer::graph::{NameRole, Site, SiteKind};
use serde::{Deserialize, Serialize};

use crate::filter::PathFilter;
use crate::source::CandidateSource;
use crate::{Retriever, SearchError, check_language};

/// Definitions of each callee a `callees` lookup lists at most.
const TARGETS_PER_CALLEE: usize = 5;

/// What a graph lookup asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lookup {
    /// Where the name is defined.
    Definitions,
    /// Every use of the name.
    References,
    /// Every call of the name, each with the symbol it is in.
    Callers,
    /// What the symbol's definitions call, each with where that is defined.
    Callees,
}

impl Lookup {
    /// The lookup's name in `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Definitions => "definitions",
            Lookup::References => "references",
            Lookup::Callers => "callers",
            Lookup::Callees => "callees",
        }
    }
}

/// A graph lookup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphRequest {
    /// What to look up.
    pub lookup: Lookup,
    /// The name, bare (`open`) or qualified (`Store::open`, `store.Store.open`).
    pub name: String,
    /// Only sites in files of this language.
    pub lang: Option<String>,
    /// Only sites in paths matching this glob or under this folder.
    pub path: Option<String>,
}

/// Where a callee is defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Path of the definition.
    pub path: String,
    /// Its line.
    pub line: u32,
    /// Its qualified symbol.
    pub symbol: Option<String>,
    /// What it is (`function`, `method`, ...).
    pub kind: String,
}

/// One site a lookup found: the `--json` contract of `quarry defs/refs/callers/callees`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteHit {
    /// Path relative to the repository root.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based byte column of the name.
    pub column: u32,
    /// What the site is: a definition kind (`function`, `method`, `type`, `trait`,
    /// `class`, `constant`, `module`, `macro`, `field`, `variant`) or a use (`call`,
    /// `method_call`, `macro_call`, `path`, `type_use`, `import`, `field_use`, `name`).
    pub kind: String,
    /// The name (import aliases followed).
    pub name: String,
    /// A definition's qualified symbol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// A use's qualifier as written (last segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// The symbol of the chunk the site is in (the caller, for `callers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enclosing: Option<String>,
    /// Language of the file.
    pub lang: String,
    /// The site's line, as indexed (secrets redacted).
    pub text: String,
    /// For `callees`: where the called name is defined, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// What a lookup found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphAnswer {
    /// The lookup.
    pub lookup: Lookup,
    /// The name as asked.
    pub name: String,
    /// Every site, by path, line and column.
    pub sites: Vec<SiteHit>,
}

/// A query name split into segments: `a::B::c` and `a.B.c` alike.
struct QueryName {
    segments: Vec<String>,
}

impl QueryName {
    fn parse(raw: &str) -> Result<Self, SearchError> {
        let segments: Vec<String> = raw
            .trim()
            .split([':', '.', '#', '\\'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if segments.is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        Ok(QueryName { segments })
    }

    fn name(&self) -> &str {
        self.segments.last().map_or("", String::as_str)
    }

    fn qualifier(&self) -> Option<&str> {
        let n = self.segments.len();
        (n >= 2).then(|| self.segments[n - 2].as_str())
    }

    /// Whether a qualified symbol ends with every segment of the query.
    fn matches_symbol(&self, symbol: &str) -> bool {
        let parts: Vec<&str> = symbol_segments(symbol).collect();
        parts.len() >= self.segments.len()
            && parts[parts.len() - self.segments.len()..]
                .iter()
                .zip(&self.segments)
                .all(|(a, b)| a == b)
    }
}

fn symbol_has_segment(symbol: Option<&str>, segment: &str) -> bool {
    symbol.is_some_and(|s| symbol_segments(s).any(|part| part == segment))
}

/// The segments of a qualified symbol in any language's convention: `::`, `.`, Ruby's `#`,
/// PHP's `\` and the `:` after a TypeScript file path all separate.
fn symbol_segments(symbol: &str) -> impl Iterator<Item = &str> {
    symbol
        .split([':', '.', '#', '\\'])
        .filter(|part| !part.is_empty())
}

impl Retriever {
    /// Answers a graph lookup over the whole index.
    pub fn graph(&self, request: &GraphRequest) -> Result<GraphAnswer, SearchError> {
        graph_lookup(self.code.as_ref(), request)
    }
}

pub(crate) fn graph_lookup(
    source: &dyn CandidateSource,
    request: &GraphRequest,
) -> Result<GraphAnswer, SearchError> {
    if let Some(lang) = &request.lang {
        check_language(lang)?;
    }
    let filter = request.path.as_deref().map(PathFilter::new).transpose()?;
    let query = QueryName::parse(&request.name)?;
    let scope = |chunk: &Chunk| {
        request.lang.as_deref().is_none_or(|l| chunk.lang == l)
            && filter.as_ref().is_none_or(|f| f.matches(&chunk.path))
    };
    let mut sites: Vec<SiteHit> = match request.lookup {
        Lookup::Definitions if query.name() == "*" => {
            let Some(filter) = &filter else {
                return Err(SearchError::WholeFilesNeedPath);
            };
            definitions_in(source, filter, &scope)?
        }
        Lookup::Definitions => definitions(source, &query, &scope)?,
        Lookup::References => references(source, &query, &scope, false)?,
        Lookup::Callers => references(source, &query, &scope, true)?,
        Lookup::Callees => callees(source, &query, &scope)?,
    };
    sites.sort_by(|a: &SiteHit, b: &SiteHit| {
        (&a.path, a.line, a.column, &a.name).cmp(&(&b.path, b.line, b.column, &b.name))
    });
    sites.dedup_by(|a, b| a.path == b.path && a.line == b.line && a.column == b.column);
    Ok(GraphAnswer {
        lookup: request.lookup,
        name: request.name.clone(),
        sites,
    })
}

fn site_hit(chunk: &Chunk, site: &Site) -> SiteHit {
    SiteHit {
        path: chunk.path.clone(),
        line: site.line,
        column: site.column,
        kind: site.kind.as_str().to_string(),
        name: site.name.clone(),
        symbol: site.symbol.clone(),
        qualifier: site.qualifier.clone(),
        enclosing: chunk.symbol.clone(),
        lang: chunk.lang.clone(),
        text: chunk.line_text(site.line).unwrap_or("").to_string(),
        targets: Vec::new(),
    }
}

/// The sites of `chunks` that `keep` selects, each as a hit (its chunk's path, symbol,
/// language and line text).
fn hits_where(
    chunks: impl IntoIterator<Item = Chunk>,
    mut keep: impl FnMut(&Chunk, &Site) -> bool,
) -> Vec<SiteHit> {
    let mut hits = Vec::new();
    for chunk in chunks {
        for site in &chunk.graph.sites {
            if keep(&chunk, site) {
                hits.push(site_hit(&chunk, site));
            }
        }
    }
    hits
}

/// Every definition site of the query's name whose symbol ends with its segments, in
/// chunks `scope` keeps.
fn definitions(
    source: &dyn CandidateSource,
    query: &QueryName,
    scope: &dyn Fn(&Chunk) -> bool,
) -> Result<Vec<SiteHit>, SearchError> {
    let chunks = source.chunks_naming(NameRole::Defines, &[query.name().to_string()])?;
    Ok(hits_where(chunks, |chunk, s| {
        scope(chunk)
            && s.kind.is_definition()
            && s.name == query.name()
            && s.symbol
                .as_deref()
                .is_some_and(|sym| query.matches_symbol(sym))
    }))
}

/// Every definition in the files `filter` selects (`quarry defs '*' --path FILE`).
fn definitions_in(
    source: &dyn CandidateSource,
    filter: &PathFilter,
    scope: &dyn Fn(&Chunk) -> bool,
) -> Result<Vec<SiteHit>, SearchError> {
    let mut out = Vec::new();
    for (path, ids) in source.files()? {
        if filter.matches(&path) {
            let chunks = source.chunks_by_id(&ids)?.into_values();
            out.extend(hits_where(chunks, |chunk, s| {
                scope(chunk) && s.kind.is_definition()
            }));
        }
    }
    Ok(out)
}

/// Every reference site of the query's name (only calls with `calls_only`), narrowed by
/// its qualifier (see the module's documentation), in chunks `scope` keeps.
fn references(
    source: &dyn CandidateSource,
    query: &QueryName,
    scope: &dyn Fn(&Chunk) -> bool,
    calls_only: bool,
) -> Result<Vec<SiteHit>, SearchError> {
    let name = query.name();
    let chunks = source.chunks_naming(NameRole::References, &[name.to_string()])?;
    let qualifier = query.qualifier();
    // Files that import the name from the qualifier: their bare uses mean it.
    let importing: BTreeSet<String> = match qualifier {
        Some(q) => chunks
            .iter()
            .filter(|c| {
                c.graph.sites.iter().any(|s| {
                    s.kind == SiteKind::Import
                        && s.name == name
                        && s.qualifier.as_deref() == Some(q)
                })
            })
            .map(|c| c.path.clone())
            .collect(),
        None => BTreeSet::new(),
    };
    Ok(hits_where(chunks, |chunk, s| {
        let narrowed = match qualifier {
            None => true,
            Some(q) => match s.qualifier.as_deref() {
                Some(written) if written == q => true,
                Some("self" | "Self" | "cls") => symbol_has_segment(chunk.symbol.as_deref(), q),
                Some(_) => false,
                None => importing.contains(&chunk.path) || s.kind == SiteKind::Import,
            },
        };
        scope(chunk)
            && !s.kind.is_definition()
            && s.name == name
            && (!calls_only || s.kind.is_call())
            && narrowed
    }))
}

/// The call sites inside the definitions of the query's symbol, in chunks `scope` keeps,
/// each with where the called name is defined: definitions in the caller's own type or file
/// first.
fn callees(
    source: &dyn CandidateSource,
    query: &QueryName,
    scope: &dyn Fn(&Chunk) -> bool,
) -> Result<Vec<SiteHit>, SearchError> {
    // The chunks of each defined symbol: its first chunk, plus the windows of a long one.
    let mut bodies: Vec<Chunk> = Vec::new();
    let files = source.files()?;
    for definition in definitions(source, query, &|_| true)? {
        if definition.enclosing != definition.symbol {
            continue;
        }
        let ids = files.get(&definition.path).cloned().unwrap_or_default();
        bodies.extend(
            source
                .chunks_by_id(&ids)?
                .into_values()
                .filter(|c| c.symbol == definition.symbol),
        );
    }
    let calls = hits_where(bodies, |chunk, s| scope(chunk) && s.kind.is_call());
    let names: Vec<String> = calls
        .iter()
        .map(|hit| hit.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut defined: HashMap<String, Vec<Target>> = HashMap::new();
    for chunk in source.chunks_naming(NameRole::Defines, &names)? {
        for site in chunk.graph.sites.iter().filter(|s| s.kind.is_definition()) {
            defined.entry(site.name.clone()).or_default().push(Target {
                path: chunk.path.clone(),
                line: site.line,
                symbol: site.symbol.clone(),
                kind: site.kind.as_str().to_string(),
            });
        }
    }
    let mut out = Vec::new();
    for mut hit in calls {
        let mut targets = defined.get(&hit.name).cloned().unwrap_or_default();
        if targets.is_empty() {
            continue; // a call of something outside the repository
        }
        let owner = hit
            .qualifier
            .as_deref()
            .filter(|q| !matches!(*q, "self" | "Self" | "cls"));
        // A call written with a type (`String::new`, `Vec::with_capacity`) means that type's
        // function: when the repository defines none inside it, the call leaves it.
        if let Some(q) = owner.filter(|q| q.starts_with(char::is_uppercase)) {
            targets.retain(|t| symbol_has_segment(t.symbol.as_deref(), q));
            if targets.is_empty() {
                continue;
            }
        }
        targets.sort_by_key(|t| {
            let qualified = owner.is_some_and(|q| symbol_has_segment(t.symbol.as_deref(), q));
            (!qualified, t.path != hit.path, t.path.clone(), t.line)
        });
        targets.truncate(TARGETS_PER_CALLEE);
        hit.targets = targets;
        out.push(hit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_split_on_either_separator() {
        let q = QueryName::parse("crate::store::Store::open").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.name(), "open");
        assert_eq!(q.qualifier(), Some("Store"));
        assert!(q.matches_symbol("crate::store::Store::open"));
        let q = QueryName::parse("Store.open").unwrap_or_else(|e| panic!("{e}"));
        assert!(q.matches_symbol("crate::store::Store::open"));
        assert!(q.matches_symbol("pkg.store.Store.open"));
        assert!(!q.matches_symbol("pkg.store.Other.open"));
        assert!(QueryName::parse(" :: ").is_err());
    }
}
