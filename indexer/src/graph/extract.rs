//! Running a language's graph query over a parsed file.
//!
//! The query's captures name what each identifier is (see `queries/rust-graph.scm`); the
//! chunker's one walk of the tree hands every match to a [`SiteCollector`], which turns them
//! into [`RawSite`]s: one per identifier node (the first pattern that
//! captured it wins), import scopes turning references into imports, and import aliases
//! followed within the file.

use std::collections::HashMap;

use tree_sitter::{Node, Query, QueryMatch};

use super::SiteKind;

/// Longest name or qualifier recorded, in bytes; longer identifiers are generated code.
const MAX_NAME: usize = 120;

/// A site before it belongs to a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSite {
    /// What the site is.
    pub kind: SiteKind,
    /// 1-based line.
    pub line: u32,
    /// 1-based byte column.
    pub column: u32,
    /// The name, aliases followed.
    pub name: String,
    /// The qualifier's last segment, for references.
    pub qualifier: Option<String>,
}

struct Found {
    node: usize,
    pattern: usize,
    /// None for a node a `@skip` pattern claimed: part of a site another node makes.
    kind: Option<SiteKind>,
    start: usize,
    end: usize,
    line: u32,
    column: u32,
    /// The qualifier's byte range.
    qualifier: Option<(usize, usize)>,
}

/// What a capture of the graph query stands for, looked up by capture index.
#[derive(Clone, Copy)]
enum Role {
    Site(SiteKind),
    Qualifier,
    ImportScope,
    ImportPath,
    ImportAlias,
    /// The node is no site of its own (PHP's `path` inside the variable `$path`).
    Skip,
    Other,
}

fn roles(query: &Query) -> Vec<Role> {
    query
        .capture_names()
        .iter()
        .map(|name| match *name {
            "qualifier" => Role::Qualifier,
            "import.scope" => Role::ImportScope,
            "import.path" => Role::ImportPath,
            "import.alias" => Role::ImportAlias,
            "skip" => Role::Skip,
            other => SiteKind::from_capture(other).map_or(Role::Other, Role::Site),
        })
        .collect()
}

/// Gathers sites from the matches of a language's query (the chunker's walk hands it every
/// match; those of item patterns hold no site capture and pass through), then
/// [`SiteCollector::finish`] makes the sites.
pub struct SiteCollector<'a> {
    text: &'a str,
    roles: Vec<Role>,
    found: Vec<Found>,
    import_scopes: Vec<(usize, usize)>,
    aliases: HashMap<&'a str, &'a str>,
}

impl<'a> SiteCollector<'a> {
    /// A collector for matches of `query` over `text`.
    pub fn new(query: &Query, text: &'a str) -> Self {
        SiteCollector {
            text,
            roles: roles(query),
            found: Vec::new(),
            import_scopes: Vec::new(),
            aliases: HashMap::new(),
        }
    }

    /// Takes what one match says about sites.
    pub fn take(&mut self, m: &QueryMatch<'_, '_>) {
        let text = self.text;
        let mut site: Option<(Node<'_>, Option<SiteKind>)> = None;
        let mut qualifier: Option<Node<'_>> = None;
        let mut alias: (Option<Node<'_>>, Option<Node<'_>>) = (None, None);
        for capture in m.captures() {
            match self.roles[capture.index as usize] {
                Role::Site(kind) => site = Some((capture.node, Some(kind))),
                Role::Skip => site = Some((capture.node, None)),
                Role::Qualifier => qualifier = Some(capture.node),
                Role::ImportScope => self
                    .import_scopes
                    .push((capture.node.start_byte(), capture.node.end_byte())),
                Role::ImportPath => alias.0 = Some(capture.node),
                Role::ImportAlias => alias.1 = Some(capture.node),
                Role::Other => {}
            }
        }
        if let (Some(path), Some(alias)) = alias
            && let Some(original) = last_segment(&text[path.byte_range()])
        {
            self.aliases.insert(&text[alias.byte_range()], original);
        }
        let Some((node, kind)) = site else { return };
        let position = node.start_position();
        self.found.push(Found {
            node: node.id(),
            pattern: m.pattern_index,
            kind,
            start: node.start_byte(),
            end: node.end_byte(),
            line: position.row as u32 + 1,
            column: position.column as u32 + 1,
            qualifier: qualifier.map(|q| (q.start_byte(), q.end_byte())),
        });
    }

    /// Every site, in file order: one per node (the first pattern that captured it wins),
    /// imports marked, aliases followed.
    pub fn finish(mut self) -> Vec<RawSite> {
        let text = self.text;
        self.import_scopes.sort_unstable();
        self.found
            .sort_unstable_by_key(|f| (f.start, f.node, f.pattern));
        self.found.dedup_by_key(|f| f.node);
        let mut sites = Vec::with_capacity(self.found.len());
        for f in &self.found {
            let Some(site_kind) = f.kind else { continue };
            let written = &text[f.start..f.end];
            if written.len() > MAX_NAME || !is_identifier(written) {
                continue;
            }
            let in_import = inside(&self.import_scopes, f.start);
            let kind = if in_import && !site_kind.is_definition() {
                SiteKind::Import
            } else {
                site_kind
            };
            // Outside the import that binds it, a use of an alias is a use of the original.
            let name = match self.aliases.get(written) {
                Some(original) if !site_kind.is_definition() && !in_import => original,
                _ => written,
            };
            let qualifier = f
                .qualifier
                .and_then(|(start, end)| last_segment(&text[start..end]))
                .map(|q| self.aliases.get(q).copied().unwrap_or(q).to_string());
            sites.push(RawSite {
                kind,
                line: f.line,
                column: f.column,
                name: name.to_string(),
                qualifier,
            });
        }
        sites
    }
}

/// Whether `offset` lies in one of the sorted ranges (import items do not nest).
fn inside(ranges: &[(usize, usize)], offset: usize) -> bool {
    let end = ranges.partition_point(|(start, _)| *start <= offset);
    end > 0 && offset < ranges[end - 1].1
}

/// The last identifier of a path or expression (`a::b::C` → `C`, `self.x` → `x`,
/// `crate` → `crate`); none for an expression that does not end in one (`f()`).
fn last_segment(text: &str) -> Option<&str> {
    let text = text.trim();
    let segment = text
        .rsplit(['.', ':'])
        .next()
        .unwrap_or(text)
        .split('<')
        .next()
        .unwrap_or("")
        .trim();
    (!segment.is_empty() && segment.len() <= MAX_NAME && is_identifier(segment)).then_some(segment)
}

/// Letters, digits, `_` and `$` (JavaScript, PHP), not starting with a digit; Ruby's
/// predicate and bang methods may end in `?` or `!`.
fn is_identifier(text: &str) -> bool {
    let text = text.strip_suffix(['?', '!']).unwrap_or(text);
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}
