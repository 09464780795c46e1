//! Languages Quarry knows, and how a path maps to one.
//!
//! A language with a grammar is a [`CodeLanguage`]: a tree-sitter grammar, two query files
//! under `indexer/queries/` (`<lang>.scm` captures its items, `<lang>-graph.scm` its
//! definitions and references), and a few facts about its syntax (comment and attribute
//! node kinds, how a file path becomes a module path). Adding a language means adding a
//! grammar crate, its query files and one entry in [`CODE_LANGUAGES`] (`lang/table.rs`).
//! Every other UTF-8 file is indexed as text in line windows, Markdown by heading.

use std::path::Path;
use std::sync::OnceLock;

/// How a language writes the documentation of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocStyle {
    /// `///` and `/** */` comments before the item.
    RustComments,
    /// A string literal as the first statement of the body.
    PythonDocstring,
    /// The comments directly above the item, markers stripped: JSDoc, Javadoc, Doxygen,
    /// Go doc comments, C#'s `///` XML docs, PHPDoc, Ruby's `#` (RDoc/YARD).
    LeadingComments,
}

/// A language chunked by tree-sitter.
pub struct CodeLanguage {
    /// Name used in payloads and `--lang` filters.
    pub name: &'static str,
    /// File extensions, without the dot.
    pub extensions: &'static [&'static str],
    /// The tree-sitter grammar.
    pub grammar: fn() -> tree_sitter::Language,
    /// The query capturing items as `@item.<kind>` with their `@name`.
    pub query_source: &'static str,
    /// The query capturing the code graph's definitions and references
    /// (`queries/<lang>-graph.scm`, see [`crate::graph`]).
    pub graph_query_source: &'static str,
    /// Separator between the parts of a qualified symbol.
    pub separator: &'static str,
    /// Node kinds that are comments (kept with the item they precede).
    pub comment_kinds: &'static [&'static str],
    /// Node kinds that are attributes preceding an item (`#[derive]`).
    pub attribute_kinds: &'static [&'static str],
    /// Parent node kinds that belong to the item they wrap (`@decorator` + def).
    pub wrapper_kinds: &'static [&'static str],
    /// How docs are written.
    pub doc_style: DocStyle,
    /// What follows a collapsed inner item's signature in a container's outline
    /// (` { ... }`, ` ...`); nothing when the signature ends in `;`.
    pub elision: &'static str,
    /// Separator between the module path and the first item (`:` after a TS file path).
    pub module_separator: &'static str,
    /// Separator before a method's name when it differs from [`CodeLanguage::separator`]
    /// (Ruby's `Class#method`).
    pub method_separator: Option<&'static str>,
    /// Turns a repository-relative file path into the module path symbols start with.
    pub module_path: fn(&str) -> String,
    /// File-name patterns of the language's test files, each with one `*` (`*_test.go`);
    /// test folders are common to all languages (see [`is_test_path`]).
    pub test_file_names: &'static [&'static str],
    query: OnceLock<Result<tree_sitter::Query, String>>,
}

impl CodeLanguage {
    /// The item query and the graph query compiled as one (items first, so their pattern
    /// indices come first), built once per process: one walk of the tree answers both.
    pub fn query(&self) -> Result<&tree_sitter::Query, String> {
        self.query
            .get_or_init(|| {
                let source = format!("{}\n{}", self.query_source, self.graph_query_source);
                tree_sitter::Query::new(&(self.grammar)(), &source)
                    .map_err(|e| format!("{} queries: {e}", self.name))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

mod paths;
mod table;
mod test_files;

pub use table::CODE_LANGUAGES;
pub use test_files::{is_test_code, is_test_path};

/// How a file is chunked.
#[derive(Clone, Copy)]
pub enum Language {
    /// Items by tree-sitter.
    Code(&'static CodeLanguage),
    /// Sections by heading.
    Markdown,
    /// Line windows; the name is the language reported (`toml`, `yaml`, `text`, ...).
    Text(&'static str),
}

/// Text languages without a grammar and their extensions. Anything else is `text`.
const TEXT_LANGUAGES: [(&str, &[&str]); 9] = [
    ("toml", &["toml"]),
    ("yaml", &["yaml", "yml"]),
    ("json", &["json"]),
    ("html", &["html", "htm"]),
    ("css", &["css"]),
    ("shell", &["sh", "bash"]),
    ("rst", &["rst"]),
    ("sql", &["sql"]),
    ("text", &[]),
];

/// Picks the language of a path from its extension.
pub fn detect(path: &str) -> Language {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if let Some(spec) = CODE_LANGUAGES
        .iter()
        .find(|spec| spec.extensions.contains(&ext.as_str()))
    {
        return Language::Code(spec);
    }
    if matches!(ext.as_str(), "md" | "markdown") {
        return Language::Markdown;
    }
    let name = TEXT_LANGUAGES
        .iter()
        .find(|(_, exts)| exts.contains(&ext.as_str()))
        .map_or("text", |(name, _)| name);
    Language::Text(name)
}

/// The language name chunks of this path carry.
pub fn language_name(path: &str) -> &'static str {
    match detect(path) {
        Language::Code(spec) => spec.name,
        Language::Markdown => "markdown",
        Language::Text(name) => name,
    }
}

/// The separator of qualified symbols in chunks of language `lang` (`::` unless the
/// language says otherwise).
pub fn symbol_separator(lang: &str) -> &'static str {
    CODE_LANGUAGES
        .iter()
        .find(|spec| spec.name == lang)
        .map_or("::", |spec| spec.separator)
}

/// Every language name a chunk can carry: the names `--lang` accepts.
pub fn all_language_names() -> impl Iterator<Item = &'static str> {
    CODE_LANGUAGES
        .iter()
        .map(|spec| spec.name)
        .chain(std::iter::once("markdown"))
        .chain(TEXT_LANGUAGES.iter().map(|(name, _)| *name))
}

#[cfg(test)]
mod tests {
    use super::paths::*;
    use super::*;

    #[test]
    fn rust_module_paths() {
        assert_eq!(rust_module_path("src/lib.rs"), "crate");
        assert_eq!(rust_module_path("src/main.rs"), "crate");
        assert_eq!(rust_module_path("src/config.rs"), "crate::config");
        assert_eq!(rust_module_path("src/store/mod.rs"), "crate::store");
        assert_eq!(rust_module_path("crates/a/src/x/y.rs"), "crate::x::y");
        assert_eq!(rust_module_path("tests/api-e2e.rs"), "tests::api_e2e");
        assert_eq!(rust_module_path("build.rs"), "build");
    }

    #[test]
    fn python_module_paths() {
        assert_eq!(python_module_path("notes/cli.py"), "notes.cli");
        assert_eq!(python_module_path("src/notes/__init__.py"), "notes");
        assert_eq!(python_module_path("setup.py"), "setup");
        assert_eq!(
            python_module_path("django/db/models/base.py"),
            "django.db.models.base"
        );
    }

    #[test]
    fn queries_compile() {
        for spec in &CODE_LANGUAGES {
            if let Err(e) = spec.query() {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn detects_by_extension() {
        assert!(matches!(detect("a/b.rs"), Language::Code(s) if s.name == "rust"));
        assert!(matches!(detect("x.PY"), Language::Code(s) if s.name == "python"));
        assert!(matches!(detect("README.md"), Language::Markdown));
        assert!(matches!(detect("Cargo.toml"), Language::Text("toml")));
        assert!(matches!(detect("LICENSE"), Language::Text("text")));
    }
}
