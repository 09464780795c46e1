//! The chunker's tricky cases, Rust and Python, plus the invariants every file must keep.

use super::*;
use crate::tokens::ApproxTokenCounter;

pub(super) fn chunks(path: &str, text: &str) -> Vec<Chunk> {
    let out = chunk_file(path, text, &ChunkSettings::default(), &ApproxTokenCounter);
    assert_invariants(text, &out);
    out
}

pub(super) fn find<'a>(chunks: &'a [Chunk], symbol: &str) -> &'a Chunk {
    chunks
        .iter()
        .find(|c| c.symbol.as_deref() == Some(symbol))
        .unwrap_or_else(|| {
            let symbols: Vec<_> = chunks.iter().map(|c| (&c.symbol, c.kind)).collect();
            panic!("no chunk for {symbol}; have {symbols:?}")
        })
}

/// Every non-blank line is in some chunk; spans are 1-based, ordered and within the file;
/// verbatim chunks hold exactly their lines; ids are unique.
fn assert_invariants(text: &str, chunks: &[Chunk]) {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let number = i as u32 + 1;
        if line.trim().is_empty() {
            continue;
        }
        assert!(
            chunks
                .iter()
                .any(|c| c.start_line <= number && number <= c.end_line),
            "line {number} `{line}` is in no chunk"
        );
    }
    let mut ids = std::collections::HashSet::new();
    for c in chunks {
        assert!(c.start_line >= 1 && c.start_line <= c.end_line, "{c:?}");
        assert!(c.end_line as usize <= lines.len(), "{c:?}");
        assert!(ids.insert(c.id.clone()), "duplicate id {}", c.id);
        assert_eq!(c.id.len(), 32);
        assert!(c.start_byte < c.end_byte && c.end_byte <= text.len());
        let outline = matches!(
            c.kind,
            ChunkKind::Impl | ChunkKind::Trait | ChunkKind::Class | ChunkKind::Interface
        ) || (c.kind == ChunkKind::Module && c.signature.is_some());
        if !outline {
            let expected: Vec<&str> = lines[c.start_line as usize - 1..c.end_line as usize]
                .iter()
                .map(|l| l.trim_end_matches('\r'))
                .collect();
            assert_eq!(c.text, expected.join("\n"), "text of {:?}", c.symbol);
        }
    }
}

const RUST: &str = r#"//! Config loading.
use std::path::Path;

const DEFAULT_PORT: u16 = 8080;

/// Settings read from disk.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
}

impl Config {
    /// Reads the config at `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        fn helper(x: u16) -> u16 {
            x + 1
        }
        Ok(Config { port: helper(DEFAULT_PORT) })
    }

    pub async fn reload(&mut self) {}
}

impl<T: Clone> From<T> for Wrapper<T> {
    fn from(value: T) -> Self {
        Wrapper(value)
    }
}

pub trait Store {
    fn get(&self, key: &str) -> Option<String>;

    /// Has the key?
    fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

macro_rules! square {
    ($x:expr) => {
        $x * $x
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads() {
        assert!(true);
    }
}
"#;

#[test]
fn rust_items_symbols_and_kinds() {
    let out = chunks("src/config.rs", RUST);
    let load = find(&out, "crate::config::Config::load");
    assert_eq!(load.kind, ChunkKind::Method);
    assert_eq!(load.lang, "rust");
    assert_eq!(load.doc.as_deref(), Some("Reads the config at `path`."));
    assert_eq!(
        load.signature.as_deref(),
        Some("pub fn load(path: &Path) -> Result<Config, String>")
    );
    assert_eq!(load.context.as_deref(), Some("impl Config"));
    assert!(
        load.text.starts_with("    /// Reads the config"),
        "doc comment kept"
    );
    // A function nested in a function body stays part of it.
    assert!(load.text.contains("fn helper"));
    assert!(
        !out.iter()
            .any(|c| c.symbol.as_deref().is_some_and(|s| s.ends_with("helper")))
    );

    let reload = find(&out, "crate::config::Config::reload");
    assert_eq!(
        reload.signature.as_deref(),
        Some("pub async fn reload(&mut self)")
    );

    let config = find(&out, "crate::config::Config");
    assert!(
        out.iter()
            .any(|c| c.kind == ChunkKind::Struct && c.text.contains("#[derive"))
    );
    assert!(
        config.start_line <= 7,
        "attributes and docs belong to the struct"
    );
}

#[test]
fn rust_generic_impls_traits_and_macros() {
    let out = chunks("src/config.rs", RUST);
    let from = find(&out, "crate::config::Wrapper::from");
    assert_eq!(from.kind, ChunkKind::Method);
    assert_eq!(
        from.context.as_deref(),
        Some("impl<T: Clone> From<T> for Wrapper<T>")
    );
    let impl_chunk = out
        .iter()
        .find(|c| {
            c.kind == ChunkKind::Impl && c.symbol.as_deref() == Some("crate::config::Wrapper")
        })
        .expect("impl outline");
    assert!(
        impl_chunk
            .text
            .contains("fn from(value: T) -> Self { ... }")
    );

    let contains = find(&out, "crate::config::Store::contains");
    assert_eq!(contains.kind, ChunkKind::Method);
    assert_eq!(contains.doc.as_deref(), Some("Has the key?"));
    let store = out
        .iter()
        .find(|c| c.kind == ChunkKind::Trait)
        .expect("trait");
    assert!(
        store
            .text
            .contains("fn get(&self, key: &str) -> Option<String>;")
    );
    assert!(
        store
            .text
            .contains("fn contains(&self, key: &str) -> bool { ... }")
    );

    let square = find(&out, "crate::config::square");
    assert_eq!(square.kind, ChunkKind::Macro);

    let test = find(&out, "crate::config::tests::loads");
    assert_eq!(test.kind, ChunkKind::Function);
    assert!(test.text.contains("#[test]"));
}

#[test]
fn rust_code_outside_items_becomes_module_chunks() {
    let out = chunks("src/config.rs", RUST);
    let module: Vec<&Chunk> = out
        .iter()
        .filter(|c| c.kind == ChunkKind::Module && c.signature.is_none())
        .collect();
    assert!(
        module
            .iter()
            .any(|c| c.text.contains("use std::path::Path;"))
    );
    assert!(module.iter().any(|c| c.text.contains("const DEFAULT_PORT")));
    assert!(
        module
            .iter()
            .all(|c| c.symbol.as_deref() == Some("crate::config"))
    );
}

const PYTHON: &str = r#""""Note storage."""
import json
from pathlib import Path

DEFAULT = "notes.json"


def decorator(fn):
    def wrapper(*args):
        return fn(*args)
    return wrapper


class Store(Base):
    """Keeps notes on disk."""

    version = 2

    def __init__(self, path):
        self.path = Path(path)

    @property
    @decorator
    def count(self):
        """How many notes."""
        return len(self.load())

    async def save(self, note):
        class Inner:
            pass
        return note

    class Meta:
        ordering = ["id"]

        def describe(self):
            return "meta"


if __name__ == "__main__":
    Store(DEFAULT).save("hello")
"#;

#[test]
fn python_classes_methods_and_decorators() {
    let out = chunks("notes/storage.py", PYTHON);
    let count = find(&out, "notes.storage.Store.count");
    assert_eq!(count.kind, ChunkKind::Method);
    assert!(
        count.text.starts_with("    @property\n    @decorator"),
        "{}",
        count.text
    );
    assert_eq!(count.doc.as_deref(), Some("How many notes."));
    assert_eq!(count.signature.as_deref(), Some("def count(self):"));
    assert_eq!(count.context.as_deref(), Some("class Store(Base):"));

    let store = find(&out, "notes.storage.Store");
    assert_eq!(store.kind, ChunkKind::Class);
    assert_eq!(store.doc.as_deref(), Some("Keeps notes on disk."));
    assert!(store.text.contains("version = 2"));
    assert!(store.text.contains("def __init__(self, path): ..."));
    assert!(store.text.contains("async def save(self, note): ..."));
    assert!(
        !store.text.contains("self.path = Path(path)"),
        "outline elides bodies"
    );

    let save = find(&out, "notes.storage.Store.save");
    assert!(
        save.signature
            .as_deref()
            .is_some_and(|s| s.starts_with("async def save"))
    );
    assert!(
        save.text.contains("class Inner"),
        "classes inside functions stay inside"
    );
    assert!(
        !out.iter()
            .any(|c| c.symbol.as_deref().is_some_and(|s| s.ends_with("Inner")))
    );

    let describe = find(&out, "notes.storage.Store.Meta.describe");
    assert_eq!(
        describe.context.as_deref(),
        Some("class Store(Base):\nclass Meta:")
    );
    find(&out, "notes.storage.Store.Meta");
}

#[test]
fn python_nested_functions_and_main_block() {
    let out = chunks("notes/storage.py", PYTHON);
    let decorator = find(&out, "notes.storage.decorator");
    assert_eq!(decorator.kind, ChunkKind::Function);
    assert!(decorator.text.contains("def wrapper"));
    assert!(
        !out.iter()
            .any(|c| c.symbol.as_deref().is_some_and(|s| s.ends_with("wrapper")))
    );

    let main = out
        .iter()
        .find(|c| c.kind == ChunkKind::Module && c.text.contains("__main__"))
        .expect("main block is a module chunk");
    assert!(main.text.contains("Store(DEFAULT).save"));
    assert!(
        out.iter()
            .any(|c| c.kind == ChunkKind::Module && c.text.contains("import json"))
    );
}

#[test]
fn syntax_errors_keep_the_valid_items_and_lose_no_line() {
    let text = "def good(a):\n    return a\n\ndef broken(:\n    return (\n\nclass Fine:\n    def ok(self):\n        return 1\n";
    let out = chunks("pkg/mod.py", text);
    find(&out, "pkg.mod.good");
    find(&out, "pkg.mod.Fine.ok");
    assert!(out.iter().any(|c| c.text.contains("def broken(:")));

    let rust = "fn fine() -> u8 { 1 }\n\nfn broken( { let x = ; }\n\nstruct After { a: u8 }\n";
    let out = chunks("src/lib.rs", rust);
    find(&out, "crate::fine");
    assert!(out.iter().any(|c| c.text.contains("fn broken(")));
}

#[test]
fn crlf_tabs_and_empty_files() {
    let crlf = "fn one() {\r\n\tlet x = 1;\r\n}\r\n\r\nfn two() {}\r\n";
    let out = chunks("src/lib.rs", crlf);
    let one = find(&out, "crate::one");
    assert_eq!((one.start_line, one.end_line), (1, 3));
    assert_eq!(one.text, "fn one() {\n\tlet x = 1;\n}");
    assert_eq!(
        &crlf[one.start_byte..one.end_byte],
        "fn one() {\r\n\tlet x = 1;\r\n}\r\n"
    );
    let two = find(&out, "crate::two");
    assert_eq!((two.start_line, two.end_line), (5, 5));

    let tabs = "class A:\n\tdef m(self):\n\t\treturn 1\n";
    let out = chunks("a.py", tabs);
    assert_eq!(find(&out, "a.A.m").text, "\tdef m(self):\n\t\treturn 1");

    assert!(chunks("src/empty.rs", "").is_empty());
    assert!(chunks("empty.py", "\n\n  \n").is_empty());
    assert!(chunks("README.md", "").is_empty());
    assert!(chunks("notes.txt", "   ").is_empty());
}

#[test]
fn long_functions_are_windowed_with_the_header_repeated() {
    let mut text = String::from("/// Does many things.\npub fn long_one(input: &str) -> usize {\n");
    for i in 0..300 {
        text.push_str(&format!("    let value_{i} = input.len() * {i};\n"));
    }
    text.push_str("    0\n}\n");
    let out = chunks("src/long.rs", &text);
    let windows: Vec<&Chunk> = out
        .iter()
        .filter(|c| c.symbol.as_deref() == Some("crate::long::long_one"))
        .collect();
    assert!(windows.len() > 3, "{} windows", windows.len());
    let counter = ApproxTokenCounter;
    for pair in windows.windows(2) {
        assert!(pair[1].start_line <= pair[0].end_line, "windows overlap");
    }
    for w in &windows {
        assert_eq!(
            w.signature.as_deref(),
            Some("pub fn long_one(input: &str) -> usize")
        );
        assert_eq!(w.doc.as_deref(), Some("Does many things."));
        assert!(counter.count(&w.text) + counter.count(&w.header_text()) <= 512 + 16);
    }
    assert_eq!(windows.last().map(|w| w.end_line), Some(304));
}

#[test]
fn markdown_sections_by_heading() {
    let text = "Intro line.\n\n# Quarry\n\nText.\n\n## Install\n\n```sh\n# not a heading\ncargo build\n```\n\n## Use\nRun it.\n";
    let out = chunks("README.md", text);
    let names: Vec<Option<&str>> = out.iter().map(|c| c.symbol.as_deref()).collect();
    assert_eq!(
        names,
        vec![
            None,
            Some("Quarry"),
            Some("Quarry > Install"),
            Some("Quarry > Use")
        ]
    );
    assert!(out[2].text.contains("# not a heading"));
    assert!(
        out.iter()
            .all(|c| c.kind == ChunkKind::Section && c.lang == "markdown")
    );
}

#[test]
fn other_text_files_get_line_windows() {
    let mut toml = String::new();
    for i in 0..400 {
        toml.push_str(&format!("key_{i} = \"value number {i}\"\n"));
    }
    let out = chunks("config/big.toml", &toml);
    assert!(out.len() > 3);
    assert!(
        out.iter()
            .all(|c| c.kind == ChunkKind::Text && c.lang == "toml")
    );
}

#[test]
fn ids_are_stable_and_change_with_content() {
    let a = chunks("src/config.rs", RUST);
    let b = chunks("src/config.rs", RUST);
    assert_eq!(a, b);
    let edited = RUST.replace("x + 1", "x + 2");
    let c = chunks("src/config.rs", &edited);
    let id = |cs: &[Chunk]| find(cs, "crate::config::Config::load").id.clone();
    assert_ne!(id(&a), id(&c));
    assert_eq!(
        find(&a, "crate::config::square").id,
        find(&c, "crate::config::square").id
    );
}

#[test]
fn minified_lines_make_distinct_windows() {
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("var a{i} = {i};\n"));
    }
    for i in 0..4 {
        text.push_str(&format!("{}\n", format!("f{i}(x,y);").repeat(400)));
        text.push('\n');
    }
    let out = chunks("vendor/app.min2.js", &text);
    for pair in out.windows(2) {
        assert!(
            pair[1].end_line > pair[0].end_line,
            "{:?}",
            (
                pair[0].start_line,
                pair[0].end_line,
                pair[1].start_line,
                pair[1].end_line
            )
        );
    }
}

#[test]
fn line_coverage_counts_non_blank_lines_inside_symbols_once() {
    let text = "import os\n\nLIMIT = 3\n\nclass Shelf:\n    def put(self, x):\n        return x\n\n\ndef take():\n    return 1\n";
    let out = chunks("shelf.py", text);
    // 7 non-blank lines; the import and the constant are module code; the class outline
    // and its method cover lines 5-7 once.
    assert_eq!(
        LineCoverage::of(text, &out),
        LineCoverage {
            lines: 7,
            symbol_lines: 5
        }
    );
    let windows = chunks("notes.txt", "one\ntwo\n\nthree\n");
    assert_eq!(
        LineCoverage::of("one\ntwo\n\nthree\n", &windows).symbol_lines,
        0
    );
}
