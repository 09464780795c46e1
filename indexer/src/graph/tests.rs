use super::*;
use crate::chunk::{ChunkSettings, chunk_file};
use crate::tokens::ApproxTokenCounter;

fn chunks(path: &str, text: &str) -> Vec<Chunk> {
    chunk_file(path, text, &ChunkSettings::default(), &ApproxTokenCounter)
}

/// `(kind, name, qualifier or symbol, line)` of every site named `name`, in file order.
fn sites_named(chunks: &[Chunk], name: &str) -> Vec<(SiteKind, Option<String>, u32)> {
    let mut out: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.graph.sites.iter())
        .filter(|s| s.name == name)
        .map(|s| (s.kind, s.symbol.clone().or(s.qualifier.clone()), s.line))
        .collect();
    out.sort_by_key(|(_, _, line)| *line);
    out
}

const RUST: &str = r#"use crate::store::{Store, open as open_store};
use std::collections::HashMap;

/// A cache.
pub struct Cache {
    map: HashMap<String, u32>,
}

const LIMIT: usize = 10;

impl Cache {
    pub fn new() -> Self {
        Cache { map: HashMap::new() }
    }

    pub fn get(&self, key: &str) -> Option<u32> {
        fn helper(x: u32) -> u32 {
            x + 1
        }
        let store = open_store(LIMIT);
        println!("{}", helper(1));
        assert_eq!(compute(key), self.map.len());
        self.map.get(key).copied()
    }
}

fn compute(key: &str) -> usize {
    let c = Cache::new();
    c.get(key);
    crate::store::Store::open(key).len()
}
"#;

/// The first definition site named `name`: `(kind, symbol, line)`.
fn definition(chunks: &[Chunk], name: &str) -> (SiteKind, Option<String>, u32) {
    sites_named(chunks, name)
        .into_iter()
        .find(|(kind, _, _)| kind.is_definition())
        .unwrap_or_else(|| panic!("no definition of {name}"))
}

#[test]
fn rust_definitions_are_named_by_their_symbol() {
    let chunks = chunks("src/cache.rs", RUST);
    assert_eq!(
        definition(&chunks, "Cache"),
        (SiteKind::Type, Some("crate::cache::Cache".into()), 5)
    );
    assert_eq!(
        definition(&chunks, "new"),
        (
            SiteKind::Method,
            Some("crate::cache::Cache::new".into()),
            12
        )
    );
    assert_eq!(
        definition(&chunks, "compute"),
        (SiteKind::Function, Some("crate::cache::compute".into()), 27)
    );
    assert_eq!(
        definition(&chunks, "LIMIT"),
        (SiteKind::Constant, Some("crate::cache::LIMIT".into()), 9)
    );
    // A function nested in a body is a definition inside its parent.
    assert_eq!(
        definition(&chunks, "helper"),
        (
            SiteKind::Function,
            Some("crate::cache::Cache::get::helper".into()),
            17
        )
    );
    assert_eq!(
        definition(&chunks, "map"),
        (SiteKind::Field, Some("crate::cache::Cache::map".into()), 6)
    );
}

#[test]
fn rust_references_are_calls_methods_paths_macros_and_imports() {
    let chunks = chunks("src/cache.rs", RUST);
    let compute = sites_named(&chunks, "compute");
    // Inside a macro's arguments a call is still a call.
    assert_eq!(compute[0], (SiteKind::Call, None, 22));
    let new = sites_named(&chunks, "new");
    assert!(new.contains(&(SiteKind::Call, Some("HashMap".into()), 13)));
    assert!(new.contains(&(SiteKind::Call, Some("Cache".into()), 28)));
    let get = sites_named(&chunks, "get");
    assert!(get.contains(&(SiteKind::MethodCall, Some("c".into()), 29)));
    assert!(get.contains(&(SiteKind::MethodCall, Some("map".into()), 23)));
    assert!(sites_named(&chunks, "println").contains(&(SiteKind::MacroCall, None, 21)));
    assert!(sites_named(&chunks, "assert_eq").contains(&(SiteKind::MacroCall, None, 22)));
    let open = sites_named(&chunks, "open");
    // `open as open_store`: the import names `open`, and the alias's use is a use of `open`.
    assert!(open.contains(&(SiteKind::Import, None, 1)));
    assert!(open.contains(&(SiteKind::Call, None, 20)));
    assert!(open.contains(&(SiteKind::Call, Some("Store".into()), 30)));
    let store = sites_named(&chunks, "Store");
    assert!(store.contains(&(SiteKind::Import, Some("store".into()), 1)));
    assert!(store.contains(&(SiteKind::Path, Some("store".into()), 30)));
    let hashmap = sites_named(&chunks, "HashMap");
    assert!(hashmap.contains(&(SiteKind::Import, Some("collections".into()), 2)));
    assert!(hashmap.contains(&(SiteKind::TypeUse, None, 6)));
    assert!(sites_named(&chunks, "LIMIT").contains(&(SiteKind::Name, None, 20)));
}

#[test]
fn every_site_keeps_its_line_text() {
    let chunks = chunks("src/cache.rs", RUST);
    let file: Vec<&str> = RUST.lines().collect();
    let mut count = 0;
    for chunk in &chunks {
        for site in &chunk.graph.sites {
            let text = chunk.line_text(site.line).expect("line held");
            assert_eq!(text, file[site.line as usize - 1], "{site:?}");
            let at = &text[site.column as usize - 1..];
            // A use of an alias is recorded under the original name.
            assert!(
                at.starts_with(&site.name) || at.starts_with("open_store"),
                "{site:?}"
            );
            count += 1;
        }
    }
    assert!(count > 40, "{count}");
}

#[test]
fn comments_and_strings_are_not_sites() {
    let text = "// compute here\nfn a() {\n    let s = \"compute\";\n    /* compute */\n}\n";
    let chunks = chunks("src/a.rs", text);
    assert!(sites_named(&chunks, "compute").is_empty());
}

const PYTHON: &str = r#"import os.path as osp
from django.db import models as m, connection
from .utils import helper as h


TIMEOUT = 30


def cached(fn):
    return fn


class Store(m.Model):
    name = m.CharField(max_length=10)

    @cached
    def save(self, *args):
        def inner():
            return h(TIMEOUT)
        self.name = osp.join("a", "b")
        return super().save(*args)


@cached
def main():
    Store().save()
    connection.close()
"#;

#[test]
fn python_definitions_and_references() {
    let chunks = chunks("pkg/store.py", PYTHON);
    assert_eq!(
        definition(&chunks, "Store"),
        (SiteKind::Class, Some("pkg.store.Store".into()), 13)
    );
    assert_eq!(
        definition(&chunks, "save"),
        (SiteKind::Method, Some("pkg.store.Store.save".into()), 17)
    );
    assert_eq!(
        definition(&chunks, "TIMEOUT"),
        (SiteKind::Constant, Some("pkg.store.TIMEOUT".into()), 6)
    );
    assert_eq!(
        definition(&chunks, "name"),
        (SiteKind::Field, Some("pkg.store.Store.name".into()), 14)
    );
    assert_eq!(
        definition(&chunks, "inner"),
        (
            SiteKind::Function,
            Some("pkg.store.Store.save.inner".into()),
            18
        )
    );
    // Decorators are calls of the decorator.
    let cached = sites_named(&chunks, "cached");
    assert!(cached.contains(&(SiteKind::Call, None, 16)));
    assert!(cached.contains(&(SiteKind::Call, None, 24)));
    // `from .utils import helper as h`: a call of `h` is a call of `helper`.
    let helper = sites_named(&chunks, "helper");
    assert!(helper.contains(&(SiteKind::Import, None, 3)));
    assert!(helper.contains(&(SiteKind::Call, None, 19)));
    // `import os.path as osp`: `osp.join` is qualified by `path`.
    assert!(sites_named(&chunks, "join").contains(&(
        SiteKind::MethodCall,
        Some("path".into()),
        20
    )));
    // `models as m`: `m.CharField` is qualified by `models`.
    assert!(sites_named(&chunks, "CharField").contains(&(
        SiteKind::MethodCall,
        Some("models".into()),
        14
    )));
    let save = sites_named(&chunks, "save");
    assert!(save.contains(&(SiteKind::MethodCall, None, 21)));
    assert!(save.contains(&(SiteKind::MethodCall, None, 26)));
    assert!(sites_named(&chunks, "name").contains(&(SiteKind::FieldUse, Some("self".into()), 20)));
    assert!(sites_named(&chunks, "close").contains(&(
        SiteKind::MethodCall,
        Some("connection".into()),
        27
    )));
}

#[test]
fn the_graph_survives_its_stored_form() {
    for chunk in chunks("src/cache.rs", RUST)
        .into_iter()
        .chain(chunks("pkg/store.py", PYTHON))
    {
        let stored = chunk.stored_graph();
        let back = Chunk {
            graph: ChunkGraph::default(),
            ..chunk.clone()
        }
        .with_stored_graph(&stored);
        assert_eq!(back.graph, chunk.graph);
    }
}

#[test]
fn files_without_a_grammar_have_no_graph() {
    let chunks = chunks("notes.txt", "compute(1)\n");
    assert!(chunks.iter().all(|c| c.graph.is_empty()));
}
