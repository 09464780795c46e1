//! How a file path becomes the module path a language's symbols start with.

/// `src/store/mod.rs` → `crate::store`; `src/lib.rs` → `crate`; files outside a crate's
/// `src/` (tests, examples, build scripts) are named by their path: `tests/api.rs` → `tests::api`.
pub(super) fn rust_module_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let (prefix, rest): (Vec<&str>, &[&str]) = match parts.iter().rposition(|p| *p == "src") {
        Some(i) => (vec!["crate"], &parts[i + 1..]),
        None => {
            // Name from the crate directory down: drop leading directories above a
            // `tests`/`examples`/`benches` folder when there is one.
            let start = parts
                .iter()
                .rposition(|p| matches!(*p, "tests" | "examples" | "benches"))
                .unwrap_or(0);
            (Vec::new(), &parts[start..])
        }
    };
    let mut segments: Vec<String> = prefix.into_iter().map(str::to_string).collect();
    for (i, part) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let stem = if last {
            part.strip_suffix(".rs").unwrap_or(part)
        } else {
            part
        };
        if last && matches!(stem, "mod" | "lib" | "main") && !segments.is_empty() {
            continue;
        }
        segments.push(stem.replace('-', "_"));
    }
    if segments.is_empty() {
        segments.push("crate".to_string());
    }
    segments.join("::")
}

/// `pkg/sub/mod.py` → `pkg.sub.mod`, `pkg/__init__.py` → `pkg`. Leading source-root folders
/// (`src/`, `lib/`, `python/`) are dropped, so a `src` layout names modules as Python does.
/// The chunker sees paths only, so the dotted path follows folders, not `__init__.py` files.
pub(super) fn python_module_path(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    while parts.len() > 1 && matches!(parts[0], "src" | "lib" | "python" | "." | "") {
        parts.remove(0);
    }
    let Some(last) = parts.pop() else {
        return String::new();
    };
    let stem = last
        .strip_suffix(".py")
        .or_else(|| last.strip_suffix(".pyi"))
        .unwrap_or(last);
    if stem != "__init__" {
        parts.push(stem);
    }
    parts.join(".")
}

/// Go names symbols by package: the folder a file is in (`net/http/server.go` → `http`)
/// until the file's `package` clause says otherwise.
pub(super) fn go_package(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    parts.pop().unwrap_or("main").to_string()
}

/// Java's fallback when a file has no `package` line: its folders below a source root,
/// dotted (`src/main/java/com/acme/Foo.java` → `com.acme`).
pub(super) fn java_package(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    if let Some(root) = parts.iter().rposition(|p| *p == "java" || *p == "src") {
        parts.drain(..=root);
    }
    parts.join(".")
}

/// TypeScript and JavaScript name a module by its file (`src/util/strings.ts`); symbols
/// read `src/util/strings.ts:Class.method`.
pub(super) fn file_module(path: &str) -> String {
    path.to_string()
}

/// Languages whose symbols start at their namespaces, modules or classes (C, C++, C#, Ruby,
/// PHP): the file path is not part of the name.
pub(super) fn no_module(_path: &str) -> String {
    String::new()
}
