//! The code graph: which names each chunk defines and which it uses.
//!
//! Every identifier of a file in a language with a grammar is a [`Site`]: a definition (a
//! function, type, constant, ... being named where it is declared) or a reference (a call, a
//! method call, a path, a type, an import, a field, a bare name). The language's graph query
//! (`queries/<lang>-graph.scm`) finds them ([`extract`]); each site then belongs to the
//! innermost chunk around it ([`attach`]), so the graph is stored with the chunks and kept
//! by the same incremental, crash-safe sync: a changed file's chunks are replaced, and its
//! facts with them.
//!
//! Resolution is by name. A reference keeps the qualifier it was written with (`Type` in
//! `Type::new`, `self` in `self.len()`) so queries can narrow by it, and an import alias is
//! followed within its file (`use a::b as c;` makes every `c` a reference to `b`).

pub mod extract;

use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, LineIndex};

/// What a site is. The first group are definitions, the rest references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    /// A free function.
    Function,
    /// A function defined in an `impl`, trait or class.
    Method,
    /// A struct, enum, union, type alias or associated type.
    Type,
    /// A trait.
    Trait,
    /// A Python class.
    Class,
    /// A `const`, a `static` or a module-level assignment.
    Constant,
    /// A module (`mod name`).
    Module,
    /// A `macro_rules!` macro.
    Macro,
    /// A struct field or a class attribute.
    Field,
    /// An enum variant.
    Variant,
    /// A call of a function by name or path (`f(x)`, `a::f(x)`).
    Call,
    /// A method call (`x.f()`).
    #[serde(rename = "method_call")]
    MethodCall,
    /// A macro invocation (`m!()`).
    #[serde(rename = "macro_call")]
    MacroCall,
    /// A path segment that is not called (`a::B`, `module.attr` in an import).
    Path,
    /// A type used in a signature, an impl or an expression.
    #[serde(rename = "type_use")]
    TypeUse,
    /// A name in an import item (`use`, `import`, `from ... import`).
    Import,
    /// A field or attribute read or written (`x.f`, `self.f = ...`).
    #[serde(rename = "field_use")]
    FieldUse,
    /// Any other use of a name (a value, an argument, a binding).
    Name,
}

impl SiteKind {
    /// Every kind, in a fixed order (the encoding's table).
    pub const ALL: [SiteKind; 18] = [
        SiteKind::Function,
        SiteKind::Method,
        SiteKind::Type,
        SiteKind::Trait,
        SiteKind::Class,
        SiteKind::Constant,
        SiteKind::Module,
        SiteKind::Macro,
        SiteKind::Field,
        SiteKind::Variant,
        SiteKind::Call,
        SiteKind::MethodCall,
        SiteKind::MacroCall,
        SiteKind::Path,
        SiteKind::TypeUse,
        SiteKind::Import,
        SiteKind::FieldUse,
        SiteKind::Name,
    ];

    /// Whether the site defines its name (rather than using it).
    pub fn is_definition(self) -> bool {
        (self as usize) < (SiteKind::Call as usize)
    }

    /// Whether the site calls its name: what `callers` and `callees` follow.
    pub fn is_call(self) -> bool {
        matches!(
            self,
            SiteKind::Call | SiteKind::MethodCall | SiteKind::MacroCall
        )
    }

    /// The name used in `--json` output and `--kind` filters.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Function => "function",
            SiteKind::Method => "method",
            SiteKind::Type => "type",
            SiteKind::Trait => "trait",
            SiteKind::Class => "class",
            SiteKind::Constant => "constant",
            SiteKind::Module => "module",
            SiteKind::Macro => "macro",
            SiteKind::Field => "field",
            SiteKind::Variant => "variant",
            SiteKind::Call => "call",
            SiteKind::MethodCall => "method_call",
            SiteKind::MacroCall => "macro_call",
            SiteKind::Path => "path",
            SiteKind::TypeUse => "type_use",
            SiteKind::Import => "import",
            SiteKind::FieldUse => "field_use",
            SiteKind::Name => "name",
        }
    }

    /// The kind a graph query's capture names (`def.function`, `ref.call`, ...).
    fn from_capture(capture: &str) -> Option<SiteKind> {
        Some(match capture {
            "def.function" => SiteKind::Function,
            "def.type" => SiteKind::Type,
            "def.trait" => SiteKind::Trait,
            "def.class" => SiteKind::Class,
            "def.constant" => SiteKind::Constant,
            "def.module" => SiteKind::Module,
            "def.macro" => SiteKind::Macro,
            "def.field" => SiteKind::Field,
            "def.variant" => SiteKind::Variant,
            "ref.call" => SiteKind::Call,
            "ref.method" => SiteKind::MethodCall,
            "ref.macro" => SiteKind::MacroCall,
            "ref.path" => SiteKind::Path,
            "ref.type" => SiteKind::TypeUse,
            "ref.field" => SiteKind::FieldUse,
            "ref.name" => SiteKind::Name,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<SiteKind> {
        SiteKind::ALL.get(code as usize).copied()
    }
}

/// Which side of the graph a lookup asks about: the chunks that define a name, or those
/// that reference it. Stores index both sides by name (`defs`, `refs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRole {
    /// Chunks with a definition site of the name.
    Defines,
    /// Chunks with a reference site of the name.
    References,
}

impl NameRole {
    /// The stores' field holding this side's names.
    pub fn field(self) -> &'static str {
        match self {
            NameRole::Defines => "defs",
            NameRole::References => "refs",
        }
    }
}

/// One identifier of a chunk: where it is, what it names, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Definition or which kind of use.
    pub kind: SiteKind,
    /// 1-based line in the file.
    pub line: u32,
    /// 1-based byte column in that line.
    pub column: u32,
    /// The name, with import aliases followed (`c` of `use a::b as c` is recorded as `b`).
    pub name: String,
    /// A definition's qualified symbol (`crate::store::Store::open`, `notes.cli.main`).
    pub symbol: Option<String>,
    /// A reference's qualifier as written, last segment only (`Store` in
    /// `crate::Store::open`, `self` in `self.open()`); none for a bare name or when the
    /// qualifier is an expression.
    pub qualifier: Option<String>,
}

/// The code graph of one chunk: its sites.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkGraph {
    /// Its sites, in file order.
    pub sites: Vec<Site>,
    /// The file's text of site lines the chunk's text does not hold at their place (an
    /// outline collapses its members, so its lines shift); the others are read from the
    /// chunk's text.
    pub lines: Vec<(u32, String)>,
}

impl ChunkGraph {
    /// No sites.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// The distinct names this chunk defines.
    pub fn defined_names(&self) -> Vec<&str> {
        self.names(true)
    }

    /// The distinct names this chunk references.
    pub fn referenced_names(&self) -> Vec<&str> {
        self.names(false)
    }

    fn names(&self, definitions: bool) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .sites
            .iter()
            .filter(|s| s.kind.is_definition() == definitions)
            .map(|s| s.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl Chunk {
    /// The compact text form stores keep of the chunk's graph, one row per site and per
    /// kept line of text, tab-separated, lines relative to the chunk's first:
    /// `<kind letter><line>\t<column>\t<name>\t<detail>` and `L<line>\t<text>`. A use's
    /// detail is its qualifier; a definition's is empty when its symbol is the chunk's, `+`
    /// when it is the chunk's symbol and the name, else the symbol.
    pub fn stored_graph(&self) -> String {
        use std::fmt::Write as _;
        let own = self.symbol.as_deref().unwrap_or("");
        let separator = crate::lang::symbol_separator(&self.lang);
        let mut out = String::new();
        for site in &self.graph.sites {
            let detail = match (&site.symbol, &site.qualifier) {
                (Some(symbol), _) if symbol == own => "",
                (Some(symbol), _) if *symbol == member_symbol(own, separator, &site.name) => "+",
                (Some(symbol), _) => symbol,
                (None, Some(qualifier)) => qualifier,
                (None, None) => "",
            };
            let _ = writeln!(
                out,
                "{}{}\t{}\t{}\t{detail}",
                (b'a' + site.kind.code()) as char,
                site.line.saturating_sub(self.start_line),
                site.column,
                site.name,
            );
        }
        for (line, text) in &self.graph.lines {
            let _ = writeln!(out, "L{}\t{text}", line.saturating_sub(self.start_line));
        }
        out
    }

    /// The chunk with its graph read back from [`Chunk::stored_graph`]'s form (the chunk's
    /// own fields must be set); rows it cannot read are left out.
    pub fn with_stored_graph(mut self, stored: &str) -> Chunk {
        let own = self.symbol.clone().unwrap_or_default();
        let separator = crate::lang::symbol_separator(&self.lang);
        let mut graph = ChunkGraph::default();
        for row in stored.lines() {
            if let Some(rest) = row.strip_prefix('L') {
                if let Some((line, text)) = rest.split_once('\t')
                    && let Ok(line) = line.parse::<u32>()
                {
                    graph.lines.push((self.start_line + line, text.to_string()));
                }
                continue;
            }
            let mut fields = row.split('\t');
            let (Some(head), Some(column), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let detail = fields.next().unwrap_or("");
            let Some(letter) = head.bytes().next() else {
                continue;
            };
            let (Some(kind), Ok(line), Ok(column)) = (
                SiteKind::from_code(letter.wrapping_sub(b'a')),
                head[1..].parse::<u32>(),
                column.parse(),
            ) else {
                continue;
            };
            let (symbol, qualifier) = if kind.is_definition() {
                let symbol = match detail {
                    "" => own.clone(),
                    "+" => member_symbol(&own, separator, name),
                    other => other.to_string(),
                };
                (Some(symbol), None)
            } else {
                (None, (!detail.is_empty()).then(|| detail.to_string()))
            };
            graph.sites.push(Site {
                kind,
                line: self.start_line + line,
                column,
                name: name.to_string(),
                symbol,
                qualifier,
            });
        }
        self.graph = graph;
        self
    }

    /// The text of file line `line` as this chunk saw it, when it holds the line.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        if let Some((_, text)) = self.graph.lines.iter().find(|(l, _)| *l == line) {
            return Some(text);
        }
        if line < self.start_line || line > self.end_line {
            return None;
        }
        self.text.lines().nth((line - self.start_line) as usize)
    }
}

/// Gives each site to the innermost chunk around its line (the smallest span; among equal
/// spans, such as overlapping windows, the first), naming definitions by that chunk's
/// symbol. `file` holds the file's lines, to keep those a chunk's text does not hold at
/// their place.
pub(crate) fn attach(
    chunks: &mut [Chunk],
    sites: Vec<extract::RawSite>,
    separator: &str,
    file: &LineIndex<'_>,
) {
    let owners = innermost_by_line(chunks);
    let mut owned: Vec<Vec<extract::RawSite>> = vec![Vec::new(); chunks.len()];
    for raw in sites {
        if let Some(&Some(owner)) = owners.get(raw.line as usize) {
            owned[owner].push(raw);
        }
    }
    for (chunk, sites) in chunks.iter_mut().zip(owned) {
        if sites.is_empty() {
            continue;
        }
        let text = std::mem::take(&mut chunk.text);
        let text_lines: Vec<&str> = text.lines().collect();
        let mut last_line = 0;
        for raw in sites {
            if raw.line != last_line {
                last_line = raw.line;
                let line = file.line(raw.line);
                let held = raw
                    .line
                    .checked_sub(chunk.start_line)
                    .and_then(|i| text_lines.get(i as usize))
                    .is_some_and(|t| *t == line);
                if !held {
                    chunk.graph.lines.push((raw.line, line.to_string()));
                }
            }
            let symbol = raw
                .kind
                .is_definition()
                .then(|| definition_symbol(chunk, &raw.name, separator));
            let kind = match raw.kind {
                SiteKind::Function
                    if chunk.kind == crate::ChunkKind::Method
                        && symbol.as_deref() == chunk.symbol.as_deref() =>
                {
                    SiteKind::Method
                }
                SiteKind::Function
                    if matches!(
                        chunk.kind,
                        crate::ChunkKind::Impl
                            | crate::ChunkKind::Trait
                            | crate::ChunkKind::Class
                            | crate::ChunkKind::Interface
                    ) =>
                {
                    SiteKind::Method
                }
                other => other,
            };
            chunk.graph.sites.push(Site {
                kind,
                line: raw.line,
                column: raw.column,
                name: raw.name,
                symbol,
                qualifier: raw.qualifier,
            });
        }
        chunk.text = text;
    }
}

/// For each line (1-based index), the innermost chunk holding it: the smallest span, and
/// among equal spans (overlapping windows) the first.
fn innermost_by_line(chunks: &[Chunk]) -> Vec<Option<usize>> {
    let last = chunks.iter().map(|c| c.end_line).max().unwrap_or(0) as usize;
    let mut owners: Vec<Option<usize>> = vec![None; last + 1];
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    // Widest first, so narrower chunks overwrite; among equals the first chunk last.
    order.sort_by_key(|&i| {
        let c = &chunks[i];
        (
            std::cmp::Reverse(c.end_line - c.start_line),
            std::cmp::Reverse(i),
        )
    });
    for i in order {
        let c = &chunks[i];
        for owner in &mut owners[c.start_line as usize..=c.end_line as usize] {
            *owner = Some(i);
        }
    }
    owners
}

/// A definition's qualified symbol: the chunk's own when the chunk is that item (its
/// symbol ends with the name and this is the chunk's first definition of it: an item's name
/// comes before its body), else the chunk's symbol with the name appended (a member of an
/// outline, a nested item, a constant among a module's lines).
fn definition_symbol(chunk: &Chunk, name: &str, separator: &str) -> String {
    let own = chunk.symbol.as_deref().unwrap_or("");
    let is_item = chunk.kind != crate::ChunkKind::Module || chunk.signature.is_some();
    // On a segment boundary, whatever the language's separators (`::`, `.`, `#`, `:`).
    let ends_with_name = own
        .strip_suffix(name)
        .is_some_and(|head| !head.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$'));
    let first = !chunk
        .graph
        .sites
        .iter()
        .any(|s| s.kind.is_definition() && s.name == name);
    if is_item && ends_with_name && first {
        return own.to_string();
    }
    member_symbol(own, separator, name)
}

/// The symbol of `name` defined inside `own`: `own` + separator + `name`, or the name
/// alone when `own` is empty.
fn member_symbol(own: &str, separator: &str, name: &str) -> String {
    if own.is_empty() {
        name.to_string()
    } else {
        format!("{own}{separator}{name}")
    }
}

#[cfg(test)]
mod tests;
