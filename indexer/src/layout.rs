//! Where an index lives on disk, and the lock that keeps it to one writer.
//!
//! An index for a repository root lives in one directory (`<root>/.quarry/` unless
//! configured otherwise) holding the manifest, the crash journal, the keyword index and the
//! writer lock. Nothing else in the repository is ever written by the indexer.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::IndexError;

/// Name of the index directory inside a repository root, by default.
pub const DEFAULT_DIR_NAME: &str = ".quarry";

/// `path` made absolute and free of `.`, `..` and symlinks as far as it exists, so it
/// compares equal to the paths the walk sees.
fn resolve(path: &Path) -> Result<PathBuf, IndexError> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(IndexError::io("resolving", path))?
            .join(path)
    };
    // Canonicalize the longest existing ancestor; append the rest as written.
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                match part {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::Normal(name) => out.push(name),
                    _ => {}
                }
            }
            return Ok(out);
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return Ok(absolute),
        }
    }
}

/// Refuses an index directory that would index itself or hide sources: the repository
/// itself or a folder holding it, or a folder inside it that already holds files and is
/// not an index. An empty or new folder inside the repository is fine: the walk leaves the
/// index directory out.
fn check_index_dir(root: &Path, dir: &Path, given: &Path) -> Result<(), IndexError> {
    let refuse = |reason: &str| IndexError::BadIndexDir {
        dir: given.to_path_buf(),
        reason: reason.to_string(),
    };
    if root.starts_with(dir) {
        return Err(refuse(
            "is the repository or a folder that holds it; the index would index itself (use a folder of its own, such as .quarry)",
        ));
    }
    if dir.starts_with(root) && dir.is_dir() {
        let is_index = dir.file_name() == Some(std::ffi::OsStr::new(DEFAULT_DIR_NAME))
            || dir.join(MANIFEST_FILE).is_file()
            || dir.join("VERSION").is_file()
            || dir.join("lock").is_file();
        let empty = fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none());
        if !is_index && !empty {
            return Err(refuse(
                "is a folder of the repository that holds other files, which would be left out of the index; use an empty or new folder, or one outside the repository",
            ));
        }
    }
    Ok(())
}

/// The paths that make up one index.
#[derive(Debug, Clone)]
pub struct IndexLayout {
    /// The indexed repository root (canonical).
    pub root: PathBuf,
    /// The index directory.
    pub dir: PathBuf,
}

impl IndexLayout {
    /// The layout for `root`, with the index in `index_dir` or `<root>/.quarry`.
    /// Fails when `root` does not exist or is not a directory.
    pub fn new(root: &Path, index_dir: Option<&Path>) -> Result<Self, IndexError> {
        let meta = fs::metadata(root).map_err(|_| IndexError::NotFound(root.to_path_buf()))?;
        if !meta.is_dir() {
            return Err(IndexError::NotADirectory(root.to_path_buf()));
        }
        let root = root
            .canonicalize()
            .map_err(IndexError::io("resolving", root))?;
        let dir = match index_dir {
            Some(given) => {
                let dir = resolve(given)?;
                check_index_dir(&root, &dir, given)?;
                dir
            }
            None => root.join(DEFAULT_DIR_NAME),
        };
        Ok(IndexLayout { root, dir })
    }

    /// Finds the index that covers `start`: the nearest ancestor (or `start` itself) holding
    /// an index directory. Falls back to `start` itself when none does, so the caller's
    /// "no index" error names the place the user pointed at.
    pub fn discover(start: &Path) -> Result<Self, IndexError> {
        let base = IndexLayout::new(start, None)?;
        let mut current = Some(base.root.as_path());
        while let Some(dir) = current {
            if dir.join(DEFAULT_DIR_NAME).join(MANIFEST_FILE).is_file() {
                return IndexLayout::new(dir, None);
            }
            current = dir.parent();
        }
        Ok(base)
    }

    /// The manifest: what was indexed, from which version of each file.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// The journal of a sync in flight; present only while one runs or after a crash.
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.json")
    }

    /// The tantivy keyword index directory.
    pub fn keyword_dir(&self) -> PathBuf {
        self.dir.join("keyword")
    }

    /// The vector store and the vector cache.
    pub fn vector_dir(&self) -> PathBuf {
        self.dir.join("vectors")
    }

    /// The Qdrant Edge shard.
    pub fn vector_shard_dir(&self) -> PathBuf {
        self.vector_dir().join("shard")
    }

    /// Which model the vectors were made with, for readers: `{"model_id", "dims"}`.
    pub fn vector_model_file(&self) -> PathBuf {
        self.vector_dir().join("model.json")
    }

    /// What a sync in flight is doing (`sync::progress`); present only while one runs.
    pub fn progress_file(&self) -> PathBuf {
        self.dir.join("progress.json")
    }

    /// The lease every process holding the vector shard open takes ([`ShardLock`]).
    pub fn shard_lock_file(&self) -> PathBuf {
        self.vector_dir().join("shard.lock")
    }

    /// The writer lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// A one-line file holding the schema version, so readers can check it without parsing
    /// the manifest.
    pub fn version_file(&self) -> PathBuf {
        self.dir.join("VERSION")
    }

    /// Fails with [`IndexError::NoIndex`] when no index exists here, or
    /// [`IndexError::SchemaMismatch`] when it was written with another schema.
    pub fn check_readable(&self) -> Result<(), IndexError> {
        let denied = |e: &std::io::Error| e.kind() == std::io::ErrorKind::PermissionDenied;
        match fs::metadata(self.manifest()) {
            Ok(meta) if meta.is_file() => {}
            Err(e) if denied(&e) => {
                return Err(IndexError::opening(&self.dir, "manifest", e));
            }
            _ => {
                return Err(IndexError::NoIndex {
                    root: self.root.clone(),
                    index_dir: self.dir.clone(),
                });
            }
        }
        let found = match fs::read_to_string(self.version_file()) {
            Ok(text) => text.trim().parse::<u32>().unwrap_or(0),
            Err(e) if denied(&e) => return Err(IndexError::opening(&self.dir, "VERSION", e)),
            Err(_) => 0,
        };
        if found != crate::manifest::SCHEMA_VERSION {
            return Err(IndexError::SchemaMismatch {
                index_dir: self.dir.clone(),
                found,
                expected: crate::manifest::SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// Whether an index has been written here.
    pub fn exists(&self) -> bool {
        self.manifest().is_file()
    }

    /// Bytes the index directory occupies on disk (allocated blocks: preallocated, sparse
    /// write-ahead logs count for what they use, not their nominal size).
    pub fn size_on_disk(&self) -> u64 {
        fn allocated(meta: &fs::Metadata) -> u64 {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                meta.blocks() * 512
            }
            #[cfg(not(unix))]
            {
                meta.len()
            }
        }
        fn walk(path: &Path) -> u64 {
            let Ok(entries) = fs::read_dir(path) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(_) => e.metadata().map(|m| allocated(&m)).unwrap_or(0),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.dir)
    }

    /// The pid written by the writer that holds (or last held) the lock.
    pub fn lock_holder(&self) -> Option<u32> {
        fs::read_to_string(self.lock_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether a writer other than this process holds the lock right now.
    pub fn is_locked_by_another_process(&self) -> bool {
        self.is_locked() && self.lock_holder() != Some(std::process::id())
    }

    /// Whether a writer holds the lock right now.
    pub fn is_locked(&self) -> bool {
        let Ok(file) = File::open(self.lock_file()) else {
            return false;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        }
    }
}

const MANIFEST_FILE: &str = "manifest.json";

/// The exclusive right to write an index, held until dropped. The holder's pid is written
/// into the lock file so a second writer can say who holds it.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    dir: PathBuf,
}

impl WriterLock {
    /// Takes the lock without waiting; fails with [`IndexError::Locked`] when another
    /// process holds it. The OS releases it if the holder dies, so a crash never leaves a
    /// stale lock.
    pub fn acquire(layout: &IndexLayout) -> Result<Self, IndexError> {
        let path = layout.lock_file();
        let mut file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(IndexError::Locked {
                    index_dir: layout.dir.clone(),
                    pid: holder.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(IndexError::io("locking", &path)(e)),
        }
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()));
        written.map_err(IndexError::io("writing", &path))?;
        Ok(WriterLock {
            file,
            dir: layout.dir.clone(),
        })
    }

    /// Whether this lock is the one of `layout`'s index.
    pub fn guards(&self, layout: &IndexLayout) -> bool {
        self.dir == layout.dir
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The right to hold the local index's Qdrant Edge shard open. A shard admits one process
/// at a time (its write-ahead log is locked while open; a second opener fails), so every
/// process takes this lease before it opens the shard and keeps it until the shard is
/// closed: a sync only from a write to its next commit, a search only while it searches. A
/// lease is waited for (briefly) instead of failing on the log's lock. The OS releases it
/// if the holder dies.
#[derive(Debug)]
pub struct ShardLock {
    file: File,
}

/// How often a waiting [`ShardLock`] tries again.
const SHARD_LOCK_POLL: Duration = Duration::from_millis(10);

impl ShardLock {
    /// The lease, waiting up to `wait` for its holder to let go; `None` if it did not.
    pub fn take(layout: &IndexLayout, wait: Duration) -> Result<Option<Self>, IndexError> {
        let path = layout.shard_lock_file();
        let file = open_lock_file(&path)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(ShardLock { file })),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(SHARD_LOCK_POLL);
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(IndexError::io("locking", &path)(e)),
            }
        }
    }
}

impl Drop for ShardLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Opens (creating it and its folder if needed) a file that is only ever locked, never
/// truncated: the writer lock keeps its holder's pid in it.
fn open_lock_file(path: &Path) -> Result<File, IndexError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(IndexError::io("creating", dir))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(IndexError::io("opening", path))
}

/// Removes a file; one that is already gone is fine.
pub(crate) fn remove_file_if_present(path: &Path) -> Result<(), IndexError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IndexError::io("removing", path)(e)),
    }
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a mix
/// ([`replace_file`]), as an [`IndexError`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    replace_file(path, bytes).map_err(IndexError::io("writing", path))
}

/// Replaces the file at `path` with `bytes`, all or nothing, for every file Quarry writes
/// (index files, run state, edits to the repository): a hidden temporary file beside it is
/// written, flushed to disk, given the old file's permissions (an executable script stays
/// executable) and renamed over it; then the folder is flushed, so the rename survives a
/// crash too.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.quarry-{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if let Ok(meta) = fs::metadata(path) {
            let _ = fs::set_permissions(&temp, meta.permissions());
        }
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}
