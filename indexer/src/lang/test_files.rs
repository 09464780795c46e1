//! Which code is test code: a rule on paths (and a Rust symbol's `tests` module), so the
//! index stores nothing for it and search, the repository map and the edit planner all ask
//! the same question the same way.
//!
//! A path is a test path when a folder on it is a test folder in every language's
//! convention (`test/`, `tests/`, `spec/`, `__tests__/`, `testdata/`, Java's `src/test/`,
//! .NET's `Foo.Tests/`), or when its file name matches one of its language's test-file
//! patterns ([`CodeLanguage::test_file_names`](super::CodeLanguage::test_file_names):
//! `*_test.go`, `*.test.ts`, `test_*.py`, `*Test.java`, `*_spec.rb`, ...).

use super::{Language, detect};

/// Folders whose contents are tests or test data, in any language.
const TEST_FOLDERS: &[&str] = &["test", "tests", "__tests__", "spec", "specs", "testdata"];

/// Suffixes of .NET test-project folders (`Acme.Tests/`).
const TEST_FOLDER_SUFFIXES: &[&str] = &[".Tests", ".Test", ".UnitTests", ".IntegrationTests"];

/// Whether the file at `path` (repository-relative, `/`-separated) is a test file.
pub fn is_test_path(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let file_name = parts.next().unwrap_or_default();
    let in_test_folder = parts.any(|folder| {
        TEST_FOLDERS.contains(&folder) || TEST_FOLDER_SUFFIXES.iter().any(|s| folder.ends_with(s))
    });
    in_test_folder
        || match detect(path) {
            Language::Code(spec) => spec
                .test_file_names
                .iter()
                .any(|pattern| name_matches(pattern, file_name)),
            Language::Markdown | Language::Text(_) => false,
        }
}

/// Whether a chunk is test code: its file is a test file, or (Rust's inline tests) its
/// symbol runs through a `tests` module (`crate::store::tests::round_trip`).
pub fn is_test_code(path: &str, lang: &str, symbol: Option<&str>) -> bool {
    is_test_path(path)
        || (lang == "rust" && symbol.is_some_and(|s| s.split("::").any(|part| part == "tests")))
}

/// `pattern` has one `*`, matching any non-empty run of characters: `*_test.go`, `test_*.py`.
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        Some((prefix, suffix)) => {
            name.len() > prefix.len() + suffix.len()
                && name.starts_with(prefix)
                && name.ends_with(suffix)
        }
        None => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_by_language() {
        for path in [
            "net/http/server_test.go",
            "src/cart.test.ts",
            "src/cart.spec.tsx",
            "lib/util.test.mjs",
            "src/test/java/com/acme/StoreTest.java",
            "lib/acme/StoreTests.java",
            "Acme.Tests/WidgetFacts.cs",
            "src/WidgetTests.cs",
            "spec/models/user_spec.rb",
            "lib/store_test.rb",
            "tests/Unit/RepoTest.php",
            "src/RepoTest.php",
            "pkg/test_views.py",
            "pkg/views_test.py",
            "conftest.py",
            "tests/api.rs",
            "src/__tests__/cart.js",
            "lib/vec_test.c",
            "src/shape_unittest.cc",
            "internal/testdata/input.json",
        ] {
            assert!(is_test_path(path), "{path} is a test file");
        }
        for path in [
            "net/http/server.go",
            "net/http/httptest/server.go",
            "src/testing.ts",
            "lib/acme/Store.java",
            "src/contest.py",
            "src/latest.rs",
            "app/models.rb",
            "docs/test.md",
            "Test.java",
            "test_.py",
        ] {
            assert!(!is_test_path(path), "{path} is not a test file");
        }
    }

    #[test]
    fn rust_inline_tests_by_symbol() {
        assert!(is_test_code(
            "src/store.rs",
            "rust",
            Some("crate::store::tests::round_trip")
        ));
        assert!(!is_test_code(
            "src/store.rs",
            "rust",
            Some("crate::store::Store::open")
        ));
        assert!(!is_test_code("src/a.py", "python", Some("a.tests")));
    }
}
