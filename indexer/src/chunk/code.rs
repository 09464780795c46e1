//! Chunking source code by item with tree-sitter.
//!
//! The language's query finds items. Leaves (functions, structs, enums, macros) become one
//! chunk with their verbatim text, including the doc comments, attributes and decorators in
//! front of them. Containers (impls, traits, classes, inline modules) become an *outline*:
//! their own lines verbatim with each inner item collapsed to its signature, and their inner
//! items become chunks of their own. Items nested in a function body stay part of that
//! function. Lines outside every item become module chunks, so no code is lost. A leaf that
//! contains a syntax error (other than an unexpanded macro in its header) is left to the
//! enclosing outline or module chunk, which keeps its text searchable. An item's doc and
//! the comments above it are [`super::docs`]'. The same parse feeds the code graph's query ([`crate::graph`]).

use std::collections::HashMap;

use tree_sitter::{Node, Parser, QueryCursor, StreamingIterator};

use super::docs;
use super::window::{split_by_lines, split_outline};
use super::{Chunk, ChunkKind, ChunkSettings, LineIndex};
use crate::graph::extract::{RawSite, SiteCollector};
use crate::lang::CodeLanguage;
use crate::tokens::TokenCounter;

/// Longest signature kept, in bytes.
const MAX_SIGNATURE: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Function,
    Struct,
    Enum,
    Macro,
    Trait,
    Impl,
    Module,
    Class,
    Interface,
}

impl ItemKind {
    fn from_capture(name: &str) -> Option<Self> {
        Some(match name.strip_prefix("item.")? {
            "function" => ItemKind::Function,
            "struct" => ItemKind::Struct,
            "enum" => ItemKind::Enum,
            "macro" => ItemKind::Macro,
            "trait" => ItemKind::Trait,
            "impl" => ItemKind::Impl,
            "module" => ItemKind::Module,
            "class" => ItemKind::Class,
            "interface" => ItemKind::Interface,
            _ => return None,
        })
    }

    fn is_container(self) -> bool {
        matches!(
            self,
            ItemKind::Trait
                | ItemKind::Impl
                | ItemKind::Module
                | ItemKind::Class
                | ItemKind::Interface
        )
    }
}

struct Item<'t> {
    node: Node<'t>,
    kind: ItemKind,
    name: String,
    /// The type a method is declared on outside its type's body (a Go receiver).
    receiver: Option<String>,
    start_line: u32,
    end_line: u32,
    /// Comments and attributes before the item that belong to it.
    leading: Vec<Node<'t>>,
    children: Vec<usize>,
}

/// Chunks one source file of a language with a grammar.
pub(crate) fn chunk_code(
    spec: &CodeLanguage,
    path: &str,
    text: &str,
    settings: &ChunkSettings,
    counter: &dyn TokenCounter,
) -> (Vec<Chunk>, Vec<RawSite>) {
    let lines = LineIndex::new(text);
    if lines.len() == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut ctx = Ctx {
        spec,
        path,
        text,
        lines: &lines,
        module: (spec.module_path)(path),
        settings,
        counter,
    };

    let mut parser = Parser::new();
    let tree = match (parser.set_language(&(spec.grammar)()), spec.query()) {
        (Ok(()), Ok(_)) => parser.parse(text, None),
        _ => None,
    };
    let mut sites = spec
        .query()
        .ok()
        .map(|query| SiteCollector::new(query, text));
    let Collected {
        items,
        roots,
        package,
    } = match (&tree, sites.as_mut()) {
        (Some(tree), Some(sites)) => collect_items(&ctx, tree.root_node(), sites),
        _ => Collected::default(),
    };
    if let Some(package) = package {
        ctx.module = package;
    }

    let mut chunks = Vec::new();
    let mut scope = Vec::new();
    for &root in &roots {
        ctx.emit(&items, root, &mut scope, &mut chunks);
    }
    ctx.emit_gaps(&items, &roots, &mut chunks);
    chunks.sort_by_key(|c| (c.start_line, c.end_line));
    let sites = sites.map(SiteCollector::finish).unwrap_or_default();
    (chunks, sites)
}

struct Ctx<'a> {
    spec: &'a CodeLanguage,
    path: &'a str,
    text: &'a str,
    lines: &'a LineIndex<'a>,
    /// The module path symbols start with: the file's package or namespace declaration
    /// when it has one, else what the path says.
    module: String,
    settings: &'a ChunkSettings,
    counter: &'a dyn TokenCounter,
}

/// What one walk of a file's tree found for chunking.
#[derive(Default)]
struct Collected<'t> {
    items: Vec<Item<'t>>,
    /// Indices of the top-level items.
    roots: Vec<usize>,
    /// The file's package or namespace declaration (`@package`).
    package: Option<String>,
}

/// What a capture of the item query stands for, looked up by capture index.
#[derive(Clone, Copy)]
enum ItemRole {
    Item(ItemKind),
    Name,
    Receiver,
    Package,
    Other,
}

/// A match of an item pattern, before nesting.
struct FoundItem<'t> {
    node: Node<'t>,
    kind: ItemKind,
    name: String,
    receiver: Option<String>,
}

/// Finds the items worth a chunk and the file's package; the same walk hands every match
/// to `sites` for the code graph.
fn collect_items<'t>(
    ctx: &Ctx<'_>,
    root: Node<'t>,
    sites: &mut SiteCollector<'_>,
) -> Collected<'t> {
    let Ok(query) = ctx.spec.query() else {
        return Collected::default();
    };
    // Looked up once: most matches are the graph's.
    let roles: Vec<ItemRole> = query
        .capture_names()
        .iter()
        .map(|name| match *name {
            "name" => ItemRole::Name,
            "receiver" => ItemRole::Receiver,
            "package" => ItemRole::Package,
            other => ItemKind::from_capture(other).map_or(ItemRole::Other, ItemRole::Item),
        })
        .collect();
    let mut found: Vec<FoundItem<'t>> = Vec::new();
    let mut package = None;
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, root, ctx.text.as_bytes());
    while let Some(m) = matches.next() {
        sites.take(m);
        let (mut item, mut name, mut receiver) = (None, None, None);
        for capture in m.captures() {
            match roles[capture.index as usize] {
                ItemRole::Name => name = Some(capture.node),
                ItemRole::Item(kind) => item = Some((capture.node, kind)),
                ItemRole::Receiver => receiver = Some(capture.node),
                ItemRole::Package => {
                    let declared = ctx.text[capture.node.byte_range()].trim();
                    package.get_or_insert_with(|| declared.to_string());
                }
                ItemRole::Other => {}
            }
        }
        if let (Some((node, kind)), Some(name)) = (item, name) {
            found.push(FoundItem {
                node,
                kind,
                name: item_name(kind, &ctx.text[name.byte_range()]),
                receiver: receiver.map(|r| type_name(&ctx.text[r.byte_range()])),
            });
        }
    }
    found.sort_by_key(|f| (f.node.start_byte(), std::cmp::Reverse(f.node.end_byte())));
    found.dedup_by_key(|f| f.node.id());

    let mut items: Vec<Item<'t>> = Vec::with_capacity(found.len());
    let mut by_node: HashMap<usize, usize> = HashMap::new();
    let mut roots = Vec::new();
    // Parents come before their children in this order, so a child can look its parent up.
    for FoundItem {
        node,
        kind,
        name,
        receiver,
    } in found
    {
        let parent = nearest_item_ancestor(node, &by_node);
        let parent = match parent {
            Ancestor::None => None,
            Ancestor::Item(i) if items[i].kind.is_container() => Some(i),
            // Inside a function body, or inside something we dropped: part of that text.
            Ancestor::Item(_) | Ancestor::Dropped => {
                by_node.insert(node.id(), usize::MAX);
                continue;
            }
        };
        // An item on its container's first line (`interface I { void f(); }`) stays in
        // the container's text: an outline cannot collapse part of a line.
        if let Some(p) = parent
            && items[p].node.start_position().row == node.start_position().row
        {
            by_node.insert(node.id(), usize::MAX);
            continue;
        }
        if !kind.is_container() && node.has_error() && !only_macro_errors(node) {
            by_node.insert(node.id(), usize::MAX);
            continue;
        }
        let (leading, outer) = docs::leading_trivia(ctx.spec, node);
        let start_byte = leading
            .first()
            .map_or(outer.start_byte(), |n| n.start_byte());
        let end_byte = outer.end_byte().max(start_byte + 1);
        // An item sharing a line with the sibling before it (minified code, `a(); b();` on
        // one line) stays in that sibling's text: chunks never repeat a line's text, so a
        // megabyte line of 28,000 functions is one chunk's windows, not 28,000 copies.
        let siblings = parent.map_or(&roots, |p| &items[p].children);
        if let Some(&last) = siblings.last()
            && items[last].end_line >= ctx.lines.line_of(start_byte)
        {
            by_node.insert(node.id(), usize::MAX);
            continue;
        }
        let index = items.len();
        items.push(Item {
            node,
            kind,
            name,
            receiver,
            start_line: ctx.lines.line_of(start_byte),
            end_line: ctx.lines.line_of(end_byte - 1),
            leading,
            children: Vec::new(),
        });
        by_node.insert(node.id(), index);
        match parent {
            Some(p) => items[p].children.push(index),
            None => roots.push(index),
        }
    }
    Collected {
        items,
        roots,
        package,
    }
}

enum Ancestor {
    None,
    Item(usize),
    Dropped,
}

fn nearest_item_ancestor(node: Node<'_>, by_node: &HashMap<usize, usize>) -> Ancestor {
    let mut current = node.parent();
    while let Some(n) = current {
        match by_node.get(&n.id()) {
            Some(&usize::MAX) => return Ancestor::Dropped,
            Some(&i) => return Ancestor::Item(i),
            None => current = n.parent(),
        }
    }
    Ancestor::None
}

/// The name an item is known by in symbols: an impl is named after its type, without
/// generics, references or path.
fn item_name(kind: ItemKind, raw: &str) -> String {
    if kind != ItemKind::Impl {
        return raw.to_string();
    }
    type_name(raw)
}

/// A type as written (`&'a mut Store<T>`, `*List[T]`, `a::b::C`) reduced to its name.
fn type_name(raw: &str) -> String {
    let mut name = raw.trim();
    name = name.split(['<', '[']).next().unwrap_or(name);
    name = name.trim_start_matches(['&', '*']);
    for prefix in ["mut ", "dyn ", "impl "] {
        name = name.trim_start().trim_start_matches(prefix);
    }
    if name.starts_with('\'') {
        name = name.split_once(' ').map_or(name, |(_, rest)| rest);
    }
    let name = name.rsplit("::").next().unwrap_or(name).trim();
    if name.is_empty() {
        raw.trim().to_string()
    } else {
        name.to_string()
    }
}

impl Ctx<'_> {
    fn chunk_kind(&self, items: &[Item<'_>], index: usize, parent: Option<usize>) -> ChunkKind {
        match items[index].kind {
            ItemKind::Function if items[index].receiver.is_some() => ChunkKind::Method,
            ItemKind::Function => match parent.map(|p| items[p].kind) {
                Some(ItemKind::Impl | ItemKind::Trait | ItemKind::Class | ItemKind::Interface) => {
                    ChunkKind::Method
                }
                _ => ChunkKind::Function,
            },
            ItemKind::Struct => ChunkKind::Struct,
            ItemKind::Enum => ChunkKind::Enum,
            ItemKind::Macro => ChunkKind::Macro,
            ItemKind::Trait => ChunkKind::Trait,
            ItemKind::Impl => ChunkKind::Impl,
            ItemKind::Module => ChunkKind::Module,
            ItemKind::Class => ChunkKind::Class,
            ItemKind::Interface => ChunkKind::Interface,
        }
    }

    /// The qualified symbol of item `index` inside `scope`: the module path, the enclosing
    /// containers, a Go receiver's type, then the item, each joined by the language's
    /// separators (`crate::a::T::f`, `src/x.ts:C.m`, `http.Server.Serve`, `A::B#m`).
    fn symbol(&self, items: &[Item<'_>], index: usize, scope: &[usize], kind: ChunkKind) -> String {
        let item = &items[index];
        let mut symbol = self.module.clone();
        let mut push = |segment: &str, separator: &str| {
            if !symbol.is_empty() {
                symbol.push_str(separator);
            }
            symbol.push_str(segment);
        };
        let mut segments: Vec<&str> = scope.iter().map(|&s| items[s].name.as_str()).collect();
        if let Some(receiver) = &item.receiver {
            segments.push(receiver);
        }
        for (i, segment) in segments.iter().enumerate() {
            let separator = if i == 0 {
                self.spec.module_separator
            } else {
                self.spec.separator
            };
            push(segment, separator);
        }
        let separator = match self.spec.method_separator {
            Some(method) if kind == ChunkKind::Method => method,
            _ if segments.is_empty() => self.spec.module_separator,
            _ => self.spec.separator,
        };
        push(&item.name, separator);
        symbol
    }

    /// Emits the chunks of item `index` and, for containers, of everything inside it.
    /// `scope` holds the enclosing containers, outermost first.
    fn emit(&self, items: &[Item<'_>], index: usize, scope: &mut Vec<usize>, out: &mut Vec<Chunk>) {
        let item = &items[index];
        let parent = scope.last().copied();
        let kind = self.chunk_kind(items, index, parent);
        let symbol = self.symbol(items, index, scope, kind);
        let context: Vec<String> = scope
            .iter()
            .map(|&s| self.signature(items[s].node))
            .collect();
        let base = Chunk {
            graph: Default::default(),
            id: String::new(),
            path: self.path.to_string(),
            lang: self.spec.name.to_string(),
            kind,
            symbol: Some(symbol),
            signature: Some(self.signature(item.node)),
            doc: self.doc(item),
            context: (!context.is_empty()).then(|| context.join("\n")),
            start_line: item.start_line,
            end_line: item.end_line,
            start_byte: self.lines.start_of(item.start_line),
            end_byte: self.lines.end_of(item.end_line),
            text: String::new(),
        };
        let budget = self.settings.max_tokens;
        if item.kind.is_container() {
            let outline = self.outline(items, index);
            out.extend(split_outline(
                Chunk {
                    text: outline,
                    ..base
                },
                budget,
                self.counter,
            ));
            scope.push(index);
            for &child in &item.children {
                self.emit(items, child, scope, out);
            }
            scope.pop();
        } else {
            let text = self.lines.lines(item.start_line, item.end_line);
            out.extend(split_by_lines(
                Chunk { text, ..base },
                self.lines,
                budget,
                self.counter,
            ));
        }
    }

    /// A container's own lines verbatim, each inner item collapsed to its signature.
    fn outline(&self, items: &[Item<'_>], index: usize) -> String {
        let item = &items[index];
        let mut out: Vec<String> = Vec::new();
        let mut line = item.start_line;
        for &child in &item.children {
            let child = &items[child];
            while line < child.start_line {
                out.push(self.lines.line(line).to_string());
                line += 1;
            }
            let first_line = self.lines.line(self.lines.line_of(child.node.start_byte()));
            let indent: String = first_line
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            let signature = self.signature(child.node);
            let elided = if signature.ends_with(';') {
                format!("{indent}{signature}")
            } else {
                format!("{indent}{signature}{}", self.spec.elision)
            };
            out.push(elided);
            line = line.max(child.end_line + 1);
        }
        while line <= item.end_line {
            out.push(self.lines.line(line).to_string());
            line += 1;
        }
        out.join("\n")
    }

    /// Module chunks for top-level lines outside every item: runs of uncovered lines, each
    /// trimmed of blank edges.
    fn emit_gaps(&self, items: &[Item<'_>], roots: &[usize], out: &mut Vec<Chunk>) {
        let total = self.lines.len() as u32;
        let mut covered = vec![false; total as usize + 2];
        for &root in roots {
            for line in items[root].start_line..=items[root].end_line {
                covered[line as usize] = true;
            }
        }
        let mut line = 1;
        while line <= total {
            if covered[line as usize] || self.lines.is_blank(line) {
                line += 1;
                continue;
            }
            let start = line;
            let mut end = line;
            while line <= total && !covered[line as usize] {
                if !self.lines.is_blank(line) {
                    end = line;
                }
                line += 1;
            }
            let base = Chunk {
                graph: Default::default(),
                id: String::new(),
                path: self.path.to_string(),
                lang: self.spec.name.to_string(),
                kind: ChunkKind::Module,
                symbol: (!self.module.is_empty()).then(|| self.module.to_string()),
                signature: None,
                doc: None,
                context: None,
                start_line: start,
                end_line: end,
                start_byte: self.lines.start_of(start),
                end_byte: self.lines.end_of(end),
                text: self.lines.lines(start, end),
            };
            out.extend(split_by_lines(
                base,
                self.lines,
                self.settings.max_tokens,
                self.counter,
            ));
        }
    }

    /// The item's header up to its body, whitespace collapsed; the first line for items
    /// without a body.
    fn signature(&self, node: Node<'_>) -> String {
        let raw = match node.child_by_field_name("body") {
            Some(body) => &self.text[node.start_byte()..body.start_byte()],
            None => self.text[node.byte_range()].lines().next().unwrap_or(""),
        };
        let mut signature = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if signature.len() > MAX_SIGNATURE {
            let mut cut = MAX_SIGNATURE;
            while !signature.is_char_boundary(cut) {
                cut -= 1;
            }
            signature.truncate(cut);
            signature.push('…');
        }
        signature
    }

    fn doc(&self, item: &Item<'_>) -> Option<String> {
        docs::item_doc(self.spec, self.text, item.node, &item.leading)
    }
}

/// Whether every parse error inside `node` lies outside its body and is a lone identifier:
/// an unexpanded macro in a C or C++ header (`MEM_STATIC size_t f(...)`, `BOOST_ASIO_DECL
/// void run()`), which the grammar cannot know is one. Such an item keeps its chunk; any
/// other error leaves its lines to the chunks around it.
fn only_macro_errors(node: Node<'_>) -> bool {
    let body = node.child_by_field_name("body");
    if body.is_some_and(|b| b.has_error()) {
        return false;
    }
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.is_missing() {
            return false;
        }
        if n.is_error() {
            let lone_identifier = n.child_count() == 1
                && n.named_child(0)
                    .is_some_and(|c| c.kind().ends_with("identifier"));
            if !lone_identifier {
                return false;
            }
            continue;
        }
        let mut cursor = n.walk();
        stack.extend(n.children(&mut cursor).filter(|c| c.has_error()));
    }
    true
}
