//! The repository as the run sees it: which paths may be written, what each file holds now,
//! and the one place edits reach the disk.
//!
//! Nothing is written outside the root. A path is refused when it is absolute, climbs with
//! `..`, lies in `.git/` or the index directory, is hidden or ignored (the index's own rules),
//! looks like a secret, is not a regular file, or is a symlink, and when any folder on its way
//! resolves outside the root. Paths are checked when the plan is validated and again just
//! before writing. In a dry run, edits stay in memory: later tasks read them, the disk never
//! sees them.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use quarry_indexer::layout::replace_file;
use quarry_indexer::walk::is_secret_path;
use quarry_indexer::watch::IgnoreRules;

use super::EditError;
use super::apply::EditTarget;
use super::run::{PendingWrite, RunStore};

/// Why `path`, as written, names a place outside the repository root wherever it is read
/// from (absolute, a drive letter, a `..` part), or `None`. Such a path is refused, and never
/// reinterpreted as another one.
pub fn leaves_root(path: &str) -> Option<&'static str> {
    let raw = path.trim().replace('\\', "/");
    if Path::new(&raw).is_absolute() || raw.chars().nth(1) == Some(':') {
        return Some("absolute paths are refused; use a path relative to the repository root");
    }
    raw.split('/')
        .any(|part| part == "..")
        .then_some("`..` would leave the repository root")
}

/// The repository root and the edits of one run.
pub struct Workspace {
    root: PathBuf,
    index_dir: PathBuf,
    rules: IgnoreRules,
    dry_run: bool,
    /// Dry run only: the current text of every file edited so far (`None`: removed).
    overlay: Mutex<HashMap<String, Option<String>>>,
}

impl Workspace {
    /// The repository at `root` with its index at `index_dir`; `dry_run` keeps every edit in
    /// memory.
    pub fn open(root: &Path, index_dir: &Path, dry_run: bool) -> Result<Self, EditError> {
        let root = root.canonicalize().map_err(|e| EditError::Io {
            path: root.to_path_buf(),
            reason: e.to_string(),
        })?;
        let index_dir = index_dir
            .canonicalize()
            .unwrap_or_else(|_| index_dir.to_path_buf());
        Ok(Workspace {
            rules: IgnoreRules::load(&root, &index_dir),
            root,
            index_dir,
            dry_run,
            overlay: Mutex::new(HashMap::new()),
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether edits stay in memory.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// `path` normalised (`./a//b.rs` → `a/b.rs`) if the run may write it; `is_new`: it may
    /// not exist yet. The error says why not, in one line.
    pub fn check_path(&self, path: &str, is_new: bool) -> Result<String, String> {
        let raw = path.trim().replace('\\', "/");
        if raw.is_empty() {
            return Err("empty path".to_string());
        }
        if let Some(reason) = leaves_root(&raw) {
            return Err(reason.to_string());
        }
        let mut parts: Vec<String> = Vec::new();
        for component in Path::new(&raw).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().to_string()),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err("the path leaves the repository root".to_string());
                }
            }
        }
        if parts.is_empty() {
            return Err("not a file path".to_string());
        }
        let relative = parts.join("/");
        if parts.iter().any(|p| p == ".git") {
            return Err("files inside .git/ are never edited".to_string());
        }
        let full = self.root.join(&relative);
        if full.starts_with(&self.index_dir) || parts[0] == ".quarry" {
            return Err("files inside Quarry's index directory are never edited".to_string());
        }
        if is_secret_path(&relative) {
            return Err("looks like a secret file; Quarry never edits those".to_string());
        }
        // Every folder on the way must resolve inside the root.
        let mut ancestor = full.parent();
        while let Some(folder) = ancestor {
            if folder.exists() {
                let real = folder
                    .canonicalize()
                    .map_err(|e| format!("cannot resolve {}: {e}", folder.display()))?;
                if !real.starts_with(&self.root) {
                    return Err(
                        "a folder on its way is a symlink that leaves the repository root"
                            .to_string(),
                    );
                }
                break;
            }
            ancestor = folder.parent();
        }
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let outside = full
                    .canonicalize()
                    .map_or(true, |real| !real.starts_with(&self.root));
                return Err(if outside {
                    "is a symlink that leaves the repository root".to_string()
                } else {
                    "is a symlink; edit the file it points to instead".to_string()
                });
            }
            Ok(meta) if !meta.is_file() => return Err("is not a regular file".to_string()),
            Ok(_) => {}
            Err(_) if is_new => {}
            Err(_) if self.overlay_has(&relative) => {}
            Err(_) => {
                return Err("does not exist (list it under new_files to create it)".to_string());
            }
        }
        if self.rules.excludes(&full) {
            return Err("is hidden or ignored by the repository's ignore files".to_string());
        }
        Ok(relative)
    }

    fn overlay_has(&self, relative: &str) -> bool {
        self.overlay
            .lock()
            .map(|o| matches!(o.get(relative), Some(Some(_))))
            .unwrap_or(false)
    }

    /// What `path` holds now (`None`: it does not exist), edits of this run included.
    pub fn read(&self, path: &str) -> Result<Option<String>, EditError> {
        if self.dry_run
            && let Some(current) = self.overlay.lock().ok().and_then(|o| o.get(path).cloned())
        {
            return Ok(current);
        }
        let full = self.root.join(path);
        match fs::read(&full) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| EditError::Io {
                    path: full,
                    reason: "not UTF-8 text; Quarry only edits text files".to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EditError::Io {
                path: full,
                reason: e.to_string(),
            }),
        }
    }

    /// Checks every path with [`Workspace::check_path`], failing on the first refused.
    fn check_all<'p>(&self, paths: impl IntoIterator<Item = &'p String>) -> Result<(), EditError> {
        for path in paths {
            self.check_path(path, true)
                .map_err(|reason| EditError::Refused {
                    path: path.clone(),
                    reason,
                })?;
        }
        Ok(())
    }

    /// Puts files back as they were before a run (`None`: the run created it, so it is
    /// removed), each path checked just before its write or delete.
    pub fn restore(&self, originals: &BTreeMap<String, Option<Vec<u8>>>) -> Result<(), EditError> {
        for (path, original) in originals {
            self.check_all([path])?;
            let full = self.root.join(path);
            let io = |e: std::io::Error| EditError::Io {
                path: full.clone(),
                reason: e.to_string(),
            };
            match original {
                Some(bytes) => replace_file(&full, bytes).map_err(io)?,
                None => match fs::remove_file(&full) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                    _ => {}
                },
            }
        }
        Ok(())
    }

    /// Writes one step's new file contents: the originals are kept in the run first, the
    /// contents recorded as pending, then each file replaced atomically. In a dry run only
    /// the in-memory view changes.
    pub fn write(
        &self,
        run: &RunStore,
        step: &str,
        files: &BTreeMap<String, Option<String>>,
    ) -> Result<(), EditError> {
        self.check_all(files.keys())?;
        if self.dry_run {
            let mut overlay = self.overlay.lock().unwrap_or_else(|p| p.into_inner());
            for (path, content) in files {
                overlay.insert(path.clone(), content.clone());
            }
            return Ok(());
        }
        for path in files.keys() {
            let full = self.root.join(path);
            let bytes = match fs::read(&full) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(EditError::Io {
                        path: full,
                        reason: e.to_string(),
                    });
                }
            };
            run.keep_original(path, bytes.as_deref())?;
        }
        run.update(|state| {
            state.pending_write = Some(PendingWrite {
                step: step.to_string(),
                files: files.clone(),
            })
        })?;
        self.finish_write(run, files)
    }

    /// Writes `files` to disk and records what was written: the second half of
    /// [`Workspace::write`], and what `--resume` does with a write a kill interrupted.
    pub fn finish_write(
        &self,
        run: &RunStore,
        files: &BTreeMap<String, Option<String>>,
    ) -> Result<(), EditError> {
        // Checked again here: on resume `files` come from the run's state on disk.
        self.check_all(files.keys())?;
        for (path, content) in files {
            let full = self.root.join(path);
            let io = |e: std::io::Error| EditError::Io {
                path: full.clone(),
                reason: e.to_string(),
            };
            match content {
                Some(text) => {
                    if let Some(parent) = full.parent() {
                        fs::create_dir_all(parent).map_err(io)?;
                    }
                    replace_file(&full, text.as_bytes()).map_err(io)?;
                    quarry_indexer::failpoint::hit("edit-mid-write");
                }
                None => match fs::remove_file(&full) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                    _ => {}
                },
            }
        }
        run.update(|state| {
            for (path, content) in files {
                if let Some(touched) = state.touched.get_mut(path) {
                    touched.written_hash = content
                        .as_ref()
                        .map(|t| blake3::hash(t.as_bytes()).to_hex().to_string())
                        .unwrap_or_default();
                }
            }
            state.pending_write = None;
        })
    }
}

/// The run's workspace is what workers' answers apply against.
impl EditTarget for Workspace {
    fn check_path(&self, path: &str, is_new: bool) -> Result<String, String> {
        Workspace::check_path(self, path, is_new)
    }

    fn read(&self, path: &str) -> Result<Option<String>, String> {
        Workspace::read(self, path).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join(".quarry")).unwrap();
        fs::write(root.join("src/lib.rs"), "fn a() {}\n").unwrap();
        fs::write(root.join(".gitignore"), "target/\n").unwrap();
        fs::write(root.join(".env"), "KEY=1\n").unwrap();
        let workspace = Workspace::open(root, &root.join(".quarry"), false).unwrap();
        (dir, workspace)
    }

    #[test]
    fn paths_inside_the_repository_are_accepted_and_normalised() {
        let (_dir, ws) = repo();
        assert_eq!(ws.check_path("./src//lib.rs", false).unwrap(), "src/lib.rs");
        assert_eq!(ws.check_path("src/new.rs", true).unwrap(), "src/new.rs");
        assert!(
            ws.check_path("src/new.rs", false)
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn hostile_paths_are_refused() {
        let (dir, ws) = repo();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("x.rs"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("src/out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.rs"), dir.path().join("src/link.rs"))
            .unwrap();
        for (path, expected) in [
            ("../outside.rs", "leave the repository"),
            ("src/../../x.rs", "leave the repository"),
            ("/etc/passwd", "absolute"),
            (".git/config", ".git/"),
            (".quarry/manifest.json", "index directory"),
            (".env", "secret"),
            ("target/x.rs", "ignored"),
            ("src/out/x.rs", "leaves the repository root"),
            ("src/out/new.rs", "leaves the repository root"),
            ("src/link.rs", "symlink that leaves"),
            ("src", "not a regular file"),
        ] {
            let error = ws.check_path(path, true).unwrap_err();
            assert!(error.contains(expected), "{path}: {error}");
        }
    }

    #[test]
    fn writes_keep_originals_and_dry_runs_stay_in_memory() {
        let (dir, ws) = repo();
        let run = RunStore::create(
            &dir.path().join(".quarry"),
            "r",
            super::super::run::tests_settings(),
        )
        .unwrap();
        let mut files = BTreeMap::new();
        files.insert("src/lib.rs".to_string(), Some("fn b() {}\n".to_string()));
        files.insert("src/new/mod.rs".to_string(), Some("// new\n".to_string()));
        ws.write(&run, "t1", &files).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("src/lib.rs")).unwrap(),
            "fn b() {}\n"
        );
        assert_eq!(
            ws.read("src/new/mod.rs").unwrap().as_deref(),
            Some("// new\n")
        );
        assert_eq!(
            run.original("src/lib.rs").unwrap().as_deref(),
            Some(&b"fn a() {}\n"[..])
        );
        assert!(run.snapshot().pending_write.is_none());

        let dry = Workspace::open(dir.path(), &dir.path().join(".quarry"), true).unwrap();
        let mut files = BTreeMap::new();
        files.insert("src/lib.rs".to_string(), Some("fn c() {}\n".to_string()));
        dry.write(&run, "t2", &files).unwrap();
        assert_eq!(
            dry.read("src/lib.rs").unwrap().as_deref(),
            Some("fn c() {}\n")
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("src/lib.rs")).unwrap(),
            "fn b() {}\n"
        );
    }
}
