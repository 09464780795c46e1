//! The table of languages with a grammar: one entry per language, each naming its grammar,
//! its two query files and the facts of its syntax the chunker needs. Entries start from
//! [`c_family`]'s defaults and say only where their language differs.

use std::sync::OnceLock;

use super::paths::{
    file_module, go_package, java_package, no_module, python_module_path, rust_module_path,
};
use super::{CodeLanguage, DocStyle};

/// A language's grammar and query files, with the C family's syntax (`//` and `/* */`
/// comments above the item, `.` between names, `{ ... }` bodies, no module path); the
/// table's entries override what differs.
const fn c_family(
    name: &'static str,
    extensions: &'static [&'static str],
    grammar: fn() -> tree_sitter::Language,
    query_source: &'static str,
    graph_query_source: &'static str,
) -> CodeLanguage {
    CodeLanguage {
        name,
        extensions,
        grammar,
        query_source,
        graph_query_source,
        separator: ".",
        module_separator: ".",
        method_separator: None,
        comment_kinds: &["comment"],
        attribute_kinds: &[],
        wrapper_kinds: &[],
        doc_style: DocStyle::LeadingComments,
        elision: " { ... }",
        module_path: no_module,
        test_file_names: &[],
        query: OnceLock::new(),
    }
}

/// TypeScript, TSX and JavaScript share their syntax facts: symbols read
/// `path/to/file.ts:Class.method`, decorators precede items, `export` wraps them.
const fn ecmascript(
    name: &'static str,
    extensions: &'static [&'static str],
    grammar: fn() -> tree_sitter::Language,
    queries: (&'static str, &'static str),
    test_file_names: &'static [&'static str],
) -> CodeLanguage {
    let mut language = c_family(name, extensions, grammar, queries.0, queries.1);
    language.module_separator = ":";
    language.attribute_kinds = &["decorator"];
    language.wrapper_kinds = &["export_statement"];
    language.module_path = file_module;
    language.test_file_names = test_file_names;
    language
}

/// Every language with a grammar.
pub static CODE_LANGUAGES: [CodeLanguage; 12] = [
    {
        let mut language = c_family(
            "rust",
            &["rs"],
            || tree_sitter_rust::LANGUAGE.into(),
            include_str!("../../queries/rust.scm"),
            include_str!("../../queries/rust-graph.scm"),
        );
        language.separator = "::";
        language.module_separator = "::";
        language.comment_kinds = &["line_comment", "block_comment"];
        language.attribute_kinds = &["attribute_item"];
        language.doc_style = DocStyle::RustComments;
        language.module_path = rust_module_path;
        language
    },
    {
        let mut language = c_family(
            "python",
            &["py", "pyi"],
            || tree_sitter_python::LANGUAGE.into(),
            include_str!("../../queries/python.scm"),
            include_str!("../../queries/python-graph.scm"),
        );
        language.wrapper_kinds = &["decorated_definition"];
        language.doc_style = DocStyle::PythonDocstring;
        language.elision = " ...";
        language.module_path = python_module_path;
        language.test_file_names = &["test_*.py", "*_test.py", "conftest.py"];
        language
    },
    ecmascript(
        "typescript",
        &["ts", "mts", "cts"],
        || tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        TYPESCRIPT_QUERIES,
        &["*.test.ts", "*.spec.ts", "*.test.mts", "*.spec.mts"],
    ),
    ecmascript(
        "tsx",
        &["tsx"],
        || tree_sitter_typescript::LANGUAGE_TSX.into(),
        TYPESCRIPT_QUERIES,
        &["*.test.tsx", "*.spec.tsx"],
    ),
    ecmascript(
        "javascript",
        &["js", "mjs", "cjs", "jsx"],
        || tree_sitter_javascript::LANGUAGE.into(),
        (
            include_str!("../../queries/javascript.scm"),
            include_str!("../../queries/javascript-graph.scm"),
        ),
        &[
            "*.test.js",
            "*.spec.js",
            "*.test.mjs",
            "*.spec.mjs",
            "*.test.cjs",
            "*.spec.cjs",
            "*.test.jsx",
            "*.spec.jsx",
        ],
    ),
    {
        let mut language = c_family(
            "go",
            &["go"],
            || tree_sitter_go::LANGUAGE.into(),
            include_str!("../../queries/go.scm"),
            include_str!("../../queries/go-graph.scm"),
        );
        language.module_path = go_package;
        language.test_file_names = &["*_test.go"];
        language
    },
    {
        let mut language = c_family(
            "java",
            &["java"],
            || tree_sitter_java::LANGUAGE.into(),
            include_str!("../../queries/java.scm"),
            include_str!("../../queries/java-graph.scm"),
        );
        language.comment_kinds = &["line_comment", "block_comment"];
        language.module_path = java_package;
        language.test_file_names = &["*Test.java", "*Tests.java"];
        language
    },
    {
        let mut language = c_family(
            "c",
            &["c", "h"],
            || tree_sitter_c::LANGUAGE.into(),
            include_str!("../../queries/c.scm"),
            include_str!("../../queries/c-graph.scm"),
        );
        language.separator = "::";
        language.module_separator = "::";
        language.test_file_names = &["*_test.c", "test_*.c"];
        language
    },
    {
        let mut language = c_family(
            "cpp",
            &[
                "cc", "cpp", "cxx", "c++", "hpp", "hh", "hxx", "h++", "ipp", "tpp",
            ],
            || tree_sitter_cpp::LANGUAGE.into(),
            include_str!("../../queries/cpp.scm"),
            include_str!("../../queries/cpp-graph.scm"),
        );
        language.separator = "::";
        language.module_separator = "::";
        language.wrapper_kinds = &["template_declaration"];
        language.test_file_names = &[
            "*_test.cc",
            "*_test.cpp",
            "*_unittest.cc",
            "*_unittest.cpp",
            "test_*.cc",
            "test_*.cpp",
        ];
        language
    },
    {
        let mut language = c_family(
            "csharp",
            &["cs"],
            || tree_sitter_c_sharp::LANGUAGE.into(),
            include_str!("../../queries/csharp.scm"),
            include_str!("../../queries/csharp-graph.scm"),
        );
        language.separator = "::";
        language.module_separator = "::";
        language.attribute_kinds = &["attribute_list"];
        language.test_file_names = &["*Tests.cs", "*Test.cs"];
        language
    },
    {
        let mut language = c_family(
            "ruby",
            &["rb", "rake", "gemspec"],
            || tree_sitter_ruby::LANGUAGE.into(),
            include_str!("../../queries/ruby.scm"),
            include_str!("../../queries/ruby-graph.scm"),
        );
        language.separator = "::";
        language.module_separator = "::";
        language.method_separator = Some("#");
        language.elision = " ... end";
        language.test_file_names = &["*_spec.rb", "*_test.rb", "test_*.rb"];
        language
    },
    {
        let mut language = c_family(
            "php",
            &["php"],
            || tree_sitter_php::LANGUAGE_PHP.into(),
            include_str!("../../queries/php.scm"),
            include_str!("../../queries/php-graph.scm"),
        );
        language.separator = "::";
        language.module_separator = "\\";
        language.attribute_kinds = &["attribute_list"];
        language.test_file_names = &["*Test.php"];
        language
    },
];

/// TypeScript and TSX share their query files.
const TYPESCRIPT_QUERIES: (&str, &str) = (
    include_str!("../../queries/typescript.scm"),
    include_str!("../../queries/typescript-graph.scm"),
);
