//! The shapes of the languages beyond Rust and Python, on the `fixtures/polyglot` tree:
//! what becomes a chunk, its symbol in the language's convention, its doc, and the graph's
//! definitions and references. Every file also keeps the chunker's invariants.

use super::tests::{chunks, find};
use super::*;
use crate::graph::SiteKind;

macro_rules! fixture {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../../fixtures/polyglot/", $path)),
        )
    };
}

fn chunked((path, text): (&str, &str)) -> Vec<Chunk> {
    chunks(path, text)
}

fn doc_of(chunks: &[Chunk], symbol: &str) -> String {
    find(chunks, symbol).doc.clone().unwrap_or_default()
}

/// `(kind, line)` of the sites named `name`.
fn sites(chunks: &[Chunk], name: &str) -> Vec<(SiteKind, u32)> {
    let mut out: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.graph.sites.iter())
        .filter(|s| s.name == name)
        .map(|s| (s.kind, s.line))
        .collect();
    out.sort_by_key(|(_, line)| *line);
    out
}

#[test]
fn typescript_classes_arrow_consts_fields_and_default_exports() {
    let out = chunked(fixture!("src/cart.ts"));
    assert_eq!(find(&out, "src/cart.ts:Cart").kind, ChunkKind::Class);
    let add = find(&out, "src/cart.ts:Cart.add");
    assert_eq!(add.kind, ChunkKind::Method);
    assert_eq!(add.doc.as_deref(), Some("Adds an item to the cart."));
    assert_eq!(find(&out, "src/cart.ts:Cart.total").kind, ChunkKind::Method);
    assert_eq!(find(&out, "src/cart.ts:Item").kind, ChunkKind::Interface);
    let format = find(&out, "src/cart.ts:formatPrice");
    assert_eq!(format.kind, ChunkKind::Function);
    assert_eq!(format.doc.as_deref(), Some("Formats a price for display."));
    assert!(format.text.starts_with("/** Formats"), "{}", format.text);
    assert_eq!(find(&out, "src/cart.ts:default").kind, ChunkKind::Function);
    assert!(sites(&out, "Cart").contains(&(SiteKind::Call, 24)));
    // `Cash` is an alias of `Money` inside this file.
    assert!(
        sites(&out, "Money")
            .iter()
            .any(|(k, _)| *k == SiteKind::Import)
    );
}

#[test]
fn tsx_and_jsx_parse_with_their_grammars() {
    let tsx = chunks(
        "ui/Button.tsx",
        "export const Button = (p: Props) => <button onClick={p.onClick}>{p.label}</button>;\n",
    );
    assert_eq!(tsx[0].lang, "tsx");
    assert_eq!(find(&tsx, "ui/Button.tsx:Button").kind, ChunkKind::Function);
    let out = chunked(fixture!("src/app.jsx"));
    assert_eq!(out[0].lang, "javascript");
    assert_eq!(doc_of(&out, "src/app.jsx:App"), "Renders the app.");
    assert_eq!(find(&out, "src/app.jsx:load").kind, ChunkKind::Function);
    assert_eq!(sites(&out, "save")[0], (SiteKind::Call, 3));
    assert!(sites(&out, "Button").contains(&(SiteKind::Call, 3)));
}

#[test]
fn go_methods_are_named_after_their_receivers() {
    let out = chunked(fixture!("pkg/server/server.go"));
    let serve = find(&out, "server.Server.ListenAndServe");
    assert_eq!(serve.kind, ChunkKind::Method);
    assert_eq!(
        serve.doc.as_deref(),
        Some("ListenAndServe starts the server on its address.")
    );
    assert_eq!(find(&out, "server.Server").kind, ChunkKind::Struct);
    assert_eq!(find(&out, "server.Handler").kind, ChunkKind::Interface);
    assert_eq!(find(&out, "server.New").kind, ChunkKind::Function);
    assert!(sites(&out, "ListenAndServe").contains(&(SiteKind::MethodCall, 17)));
    assert!(sites(&out, "Serve").contains(&(SiteKind::Method, 12)));
}

#[test]
fn java_symbols_start_at_the_package_and_nest_classes() {
    let out = chunked(fixture!("lib/acme/Store.java"));
    assert_eq!(find(&out, "com.acme.store.Store").kind, ChunkKind::Class);
    let open = find(&out, "com.acme.store.Store.open");
    assert_eq!(open.kind, ChunkKind::Method);
    assert_eq!(open.doc.as_deref(), Some("Opens the store at a path."));
    assert_eq!(
        find(&out, "com.acme.store.Store.Entry").kind,
        ChunkKind::Class
    );
    assert_eq!(
        find(&out, "com.acme.store.Store.Visitor.visit").kind,
        ChunkKind::Method
    );
    assert!(sites(&out, "Store").contains(&(SiteKind::Call, 9)));
}

#[test]
fn c_definitions_prototypes_structs_and_macros() {
    let source = chunked(fixture!("src/vec.c"));
    let push = find(&source, "vec_push");
    assert_eq!(push.kind, ChunkKind::Function);
    assert_eq!(push.doc.as_deref(), Some("Pushes a value onto the vector."));
    assert_eq!(find(&source, "name_of").kind, ChunkKind::Function);
    let header = chunked(fixture!("src/vec.h"));
    assert_eq!(find(&header, "vec").kind, ChunkKind::Struct);
    assert_eq!(find(&header, "VEC_LEN").kind, ChunkKind::Macro);
    // A prototype stays in a module chunk but is a definition in the graph.
    assert!(sites(&header, "vec_push").contains(&(SiteKind::Function, 6)));
}

#[test]
fn cpp_namespaces_classes_templates_and_extern_c() {
    let out = chunked(fixture!("src/shape.cpp"));
    assert_eq!(find(&out, "geo::Shape").kind, ChunkKind::Class);
    let scale = find(&out, "geo::Shape::scale");
    assert_eq!(scale.kind, ChunkKind::Method);
    assert_eq!(scale.doc.as_deref(), Some("Scales the shape."));
    let square = find(&out, "geo::square");
    assert!(square.text.starts_with("template"), "{}", square.text);
    assert_eq!(
        find(&out, "geo::Shape::perimeter").kind,
        ChunkKind::Function
    );
    assert_eq!(find(&out, "c_entry").kind, ChunkKind::Function);
    assert!(sites(&out, "square").contains(&(SiteKind::Call, 17)));
}

#[test]
fn csharp_namespaces_classes_interfaces_and_xml_docs() {
    let out = chunked(fixture!("src/Widget.cs"));
    let draw = find(&out, "Acme.Ui::Widget::Draw");
    assert_eq!(draw.kind, ChunkKind::Method);
    assert_eq!(
        draw.doc.as_deref(),
        Some("<summary>Draws the widget.</summary>")
    );
    assert_eq!(find(&out, "Acme.Ui::IShape").kind, ChunkKind::Interface);
    assert!(sites(&out, "WriteLine").contains(&(SiteKind::MethodCall, 9)));
}

#[test]
fn ruby_modules_classes_and_singleton_methods() {
    let out = chunked(fixture!("app/models.rb"));
    assert_eq!(find(&out, "Shop").kind, ChunkKind::Module);
    assert_eq!(find(&out, "Shop::Account").kind, ChunkKind::Class);
    let active = find(&out, "Shop::Account#active?");
    assert_eq!(active.kind, ChunkKind::Method);
    assert_eq!(active.doc.as_deref(), Some("Whether the account may buy."));
    assert_eq!(
        doc_of(&out, "Shop::Account#find"),
        "Finds an account by id."
    );
    assert!(sites(&out, "active?").contains(&(SiteKind::Method, 5)));
}

#[test]
fn php_namespaces_traits_and_classes() {
    let out = chunked(fixture!("app/Repo.php"));
    assert_eq!(find(&out, "App\\Data\\Logs").kind, ChunkKind::Trait);
    assert_eq!(find(&out, "App\\Data\\UserRepo").kind, ChunkKind::Class);
    let find_user = find(&out, "App\\Data\\UserRepo::find");
    assert_eq!(find_user.kind, ChunkKind::Method);
    assert_eq!(find_user.doc.as_deref(), Some("Finds a user by id."));
    assert!(sites(&out, "log").contains(&(SiteKind::MethodCall, 13)));
}

#[test]
fn destructured_properties_are_sites_in_typescript_and_javascript() {
    for path in ["opts.ts", "opts.js"] {
        let out = chunks(
            path,
            "function read(config) {\n  const { first, each } = config;\n  return first;\n}\n",
        );
        assert_eq!(
            sites(&out, "first"),
            [(SiteKind::FieldUse, 2), (SiteKind::Name, 3)],
            "{path}"
        );
    }
}

#[test]
fn php_variables_are_sites_of_their_own_name() {
    let text = "<?php\nclass Box {\n    private $path;\n    public function path() { return $this->path; }\n    public function set($path) { $this->path = $path; }\n}\n";
    let out = chunks("Box.php", text);
    // The property, the method and the `->path` uses; never the variable `$path`.
    let path: Vec<u32> = sites(&out, "path").iter().map(|(_, line)| *line).collect();
    assert_eq!(path, [3, 4, 4, 5]);
    assert_eq!(
        sites(&out, "$path"),
        [(SiteKind::Name, 5), (SiteKind::Name, 5)]
    );
    assert!(sites(&out, "$this").is_empty() && sites(&out, "this").is_empty());
}

#[test]
fn c_and_cpp_functions_behind_unexpanded_macros_are_still_chunks() {
    let c = "MEM_STATIC size_t align(size_t size)\n{\n    return size;\n}\n\nstatic\nINLINE_ATTR\nint twice(int x)\n{\n    return 2 * x;\n}\n";
    let out = chunks("mem.c", c);
    assert_eq!(find(&out, "align").kind, ChunkKind::Function);
    assert_eq!(find(&out, "align").start_line, 1);
    assert_eq!(find(&out, "twice").start_line, 6);
    let cpp = "namespace net {\nBOOST_DECL void run(int n)\n{\n  step(n);\n}\n}\n";
    let out = chunks("run.cpp", cpp);
    assert_eq!(find(&out, "net::run").kind, ChunkKind::Function);
    // A body the parser could not make sense of still leaves the item to its neighbours.
    let broken = chunks("bad.c", "MEM_STATIC int f(int x)\n{\n    return x +;\n}\n");
    assert!(broken.iter().all(|c| c.kind == ChunkKind::Module));
}

#[test]
fn files_that_fail_to_parse_still_cover_every_line() {
    for (path, text) in [
        ("broken.ts", "export class {\n  add(: void {\n}\n"),
        ("broken.go", "package x\nfunc (\n  return }\n"),
        ("Broken.java", "class A { void f( { }\n"),
        ("broken.cpp", "namespace { class ; int f( {\n"),
        ("broken.rb", "class\n  def x(\nend end end\n"),
    ] {
        let out = chunks(path, text);
        assert!(!out.is_empty(), "{path}");
    }
}
