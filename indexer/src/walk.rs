//! Finding the files worth indexing.
//!
//! The walk honours `.gitignore`, `.ignore` and `.quarryignore` files (even outside a git
//! checkout), skips hidden files, `.git/` and the index directory, and decides from names and
//! sizes alone what to skip. Decisions that need the content (binary, not UTF-8, a private
//! key inside) are made by [`classify_content`] when the file is read. Every skip has a
//! [`SkipReason`] so the user can see what was left out and why.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ignore::WalkBuilder;
use serde::{Deserialize, Serialize};

use crate::{IndexError, secrets};

/// Settings that decide which files are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkSettings {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// Index files that look like secrets (`.env`, keys, credentials) instead of skipping them.
    pub include_secrets: bool,
}

impl Default for WalkSettings {
    fn default() -> Self {
        WalkSettings {
            max_file_size: 1024 * 1024,
            include_secrets: false,
        }
    }
}

/// Why a file was left out of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Over the size cap.
    TooLarge,
    /// Binary content or a binary file type.
    Binary,
    /// Looks like a secret: `.env`, keys, credentials.
    Secret,
    /// Not valid UTF-8 (content or file name).
    NotUtf8,
    /// A lock file or minified bundle: generated, not written.
    Generated,
    /// Could not be read (a file or a whole folder: permissions).
    Unreadable,
    /// Not a regular file: a FIFO, a socket, a device.
    Special,
}

impl SkipReason {
    /// Short name used in summaries and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too-large",
            SkipReason::Binary => "binary",
            SkipReason::Secret => "secret",
            SkipReason::NotUtf8 => "not-utf8",
            SkipReason::Generated => "generated",
            SkipReason::Unreadable => "unreadable",
            SkipReason::Special => "special",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file the walk found and did not rule out by name or size.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Path relative to the root, `/`-separated.
    pub rel_path: String,
    /// Absolute path.
    pub abs_path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct WalkOutcome {
    /// Files to consider, sorted by path.
    pub files: Vec<Candidate>,
    /// Files ruled out by name or size, with the reason.
    pub skipped: BTreeMap<String, SkipReason>,
}

/// Walks `root`, never descending into `index_dir`.
pub fn walk(
    root: &Path,
    index_dir: &Path,
    settings: &WalkSettings,
) -> Result<WalkOutcome, IndexError> {
    let index_dir = index_dir.to_path_buf();
    let walker = WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .add_custom_ignore_filename(".quarryignore")
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| entry.file_name() != ".git" && entry.path() != index_dir)
        .build();

    let relative_to_root =
        |path: &Path| path.strip_prefix(root).ok().and_then(relative_path_string);
    let mut outcome = WalkOutcome::default();
    for entry in walker {
        // Unreadable folders and broken entries are left out, counted; the walk goes on.
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                if let Some(rel) = error_path(&error).and_then(relative_to_root) {
                    outcome.skipped.insert(rel, SkipReason::Unreadable);
                }
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() || file_type.is_symlink() {
            continue;
        }
        if !file_type.is_file() {
            if let Some(rel) = relative_to_root(entry.path()) {
                outcome.skipped.insert(rel, SkipReason::Special);
            }
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let Some(rel_path) = relative_path_string(relative) else {
            let lossy = relative.to_string_lossy().replace('\\', "/");
            outcome.skipped.insert(lossy, SkipReason::NotUtf8);
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            outcome.skipped.insert(rel_path, SkipReason::Unreadable);
            continue;
        };
        let file_name = entry.file_name().to_string_lossy();
        let reason = if !settings.include_secrets && secrets::is_secret_file_name(&file_name) {
            Some(SkipReason::Secret)
        } else if is_generated_name(&file_name) {
            Some(SkipReason::Generated)
        } else if has_binary_extension(&file_name) {
            Some(SkipReason::Binary)
        } else if meta.len() > settings.max_file_size {
            Some(SkipReason::TooLarge)
        } else {
            None
        };
        if let Some(reason) = reason {
            outcome.skipped.insert(rel_path, reason);
            continue;
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        outcome.files.push(Candidate {
            rel_path,
            abs_path: entry.path().to_path_buf(),
            size: meta.len(),
            mtime_ns,
        });
    }
    Ok(outcome)
}

/// The path an error of the walker is about, if it names one.
fn error_path(error: &ignore::Error) -> Option<&Path> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

fn relative_path_string(relative: &Path) -> Option<String> {
    let mut out = String::new();
    for component in relative.components() {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(component.as_os_str().to_str()?);
    }
    Some(out)
}

/// Decides from a file's bytes whether it can be indexed, returning its text if so. A file
/// whose content is a secret (see [`crate::secrets::is_secret_content`]) is skipped unless
/// `include_secrets` is set.
pub fn classify_content<'a>(
    path: &str,
    bytes: &'a [u8],
    settings: &WalkSettings,
) -> Result<&'a str, SkipReason> {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)?;
    if !settings.include_secrets && secrets::is_secret_content(path, text) {
        return Err(SkipReason::Secret);
    }
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Whether a path's file name looks like a secret (`.env`, keys, credentials): what the walk
/// skips unless told otherwise, and what nothing may send to an LLM.
pub fn is_secret_path(path: &str) -> bool {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    secrets::is_secret_file_name(name)
}

fn is_generated_name(name: &str) -> bool {
    matches!(
        name,
        "Cargo.lock"
            | "package-lock.json"
            | "yarn.lock"
            | "pnpm-lock.yaml"
            | "poetry.lock"
            | "uv.lock"
            | "Pipfile.lock"
            | "composer.lock"
            | "Gemfile.lock"
    ) || name.ends_with(".min.js")
        || name.ends_with(".min.css")
        || name.ends_with(".map")
}

fn has_binary_extension(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "png"
            | "jpg"
            | "jpeg"
            | "gif"
            | "bmp"
            | "ico"
            | "webp"
            | "tiff"
            | "psd"
            | "pdf"
            | "zip"
            | "gz"
            | "tgz"
            | "bz2"
            | "xz"
            | "zst"
            | "7z"
            | "rar"
            | "tar"
            | "jar"
            | "war"
            | "class"
            | "o"
            | "a"
            | "so"
            | "dylib"
            | "dll"
            | "exe"
            | "bin"
            | "wasm"
            | "pyc"
            | "pyo"
            | "whl"
            | "mo"
            | "ttf"
            | "otf"
            | "woff"
            | "woff2"
            | "eot"
            | "mp3"
            | "mp4"
            | "wav"
            | "ogg"
            | "flac"
            | "avi"
            | "mov"
            | "mkv"
            | "webm"
            | "sqlite"
            | "sqlite3"
            | "db"
            | "parquet"
            | "onnx"
            | "pt"
            | "safetensors"
            | "npy"
            | "npz"
            | "pkl"
            | "gguf"
            | "rlib"
            | "rmeta"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn content_classification() {
        let s = WalkSettings::default();
        assert_eq!(
            classify_content("a.rs", b"fn main() {}", &s),
            Ok("fn main() {}")
        );
        assert_eq!(
            classify_content("a.rs", b"ab\0cd", &s),
            Err(SkipReason::Binary)
        );
        assert_eq!(
            classify_content("a.txt", &[0xff, 0xfe, b'a'], &s),
            Err(SkipReason::NotUtf8)
        );
        let key = format!(
            "x\n{}BEGIN RSA PRIVATE KEY-----\n{}\n",
            "-".repeat(5),
            "MIIEowIBAAKCAQEA".repeat(4)
        );
        let key = key.as_bytes();
        assert_eq!(
            classify_content("key.txt", key, &s),
            Err(SkipReason::Secret)
        );
        let mention = b"let header = \"-----BEGIN RSA PRIVATE KEY-----\";\n";
        assert!(classify_content("a.rs", mention, &s).is_ok());
        let open = WalkSettings {
            include_secrets: true,
            ..s
        };
        assert!(classify_content("key.txt", key, &open).is_ok());
    }

    #[test]
    fn walk_honours_ignores_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join("target/debug")).unwrap();
        fs::create_dir_all(root.join(".quarry")).unwrap();
        fs::write(root.join(".gitignore"), "target/\n").unwrap();
        fs::write(root.join("src/lib.rs"), "fn a() {}").unwrap();
        fs::write(root.join("target/debug/out.rs"), "fn b() {}").unwrap();
        fs::write(root.join(".quarry/x.rs"), "fn c() {}").unwrap();
        fs::write(root.join("server.pem"), "key").unwrap();
        fs::write(root.join("logo.png"), "png").unwrap();
        fs::write(root.join("Cargo.lock"), "lock").unwrap();
        fs::write(root.join("big.txt"), "x".repeat(2048)).unwrap();
        let settings = WalkSettings {
            max_file_size: 1024,
            include_secrets: false,
        };
        let out = walk(root, &root.join(".quarry"), &settings).unwrap();
        let files: Vec<&str> = out.files.iter().map(|c| c.rel_path.as_str()).collect();
        assert_eq!(files, vec!["src/lib.rs"]);
        assert_eq!(out.skipped.get("server.pem"), Some(&SkipReason::Secret));
        assert_eq!(out.skipped.get("logo.png"), Some(&SkipReason::Binary));
        assert_eq!(out.skipped.get("Cargo.lock"), Some(&SkipReason::Generated));
        assert_eq!(out.skipped.get("big.txt"), Some(&SkipReason::TooLarge));
    }
}
