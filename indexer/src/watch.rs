//! Watching a repository for changes that matter to its index.
//!
//! The OS reports every write, often several per save and thousands for a `git checkout`.
//! [`RepoWatcher`] turns that stream into batches: it waits for the first relevant event,
//! then keeps gathering until the tree has been quiet for a moment (or a cap is reached), so
//! a burst becomes one incremental sync instead of thousands. Events the index does not care
//! about never start a batch: paths inside the index directory, `.git/` and other hidden
//! paths, and paths the repository's ignore files exclude, the same rules the walk follows.
//! When the OS says events were lost, the batch asks for a rescan; since every sync compares
//! the whole tree with the manifest (size, mtime, then hash), a rescan is simply a sync and no
//! change is ever missed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use ignore::WalkBuilder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Names of the files whose rules decide what is indexed.
const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".quarryignore"];

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {root}: {reason}")]
pub struct WatchError {
    /// The tree that was to be watched.
    pub root: PathBuf,
    /// What failed (for example the OS limit on watches).
    pub reason: String,
}

/// Changes gathered from one burst of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Relevant paths that changed, relative to the root, `/`-separated.
    pub paths: BTreeSet<String>,
    /// Events were lost or the ignore rules changed: compare the whole tree.
    pub rescan: bool,
}

/// What waiting for a batch gave.
#[derive(Debug)]
pub enum Wait {
    /// A batch of relevant changes.
    Changes(ChangeBatch),
    /// Nothing relevant happened within the wait.
    Idle,
    /// The OS watcher stopped; no more events will come.
    Closed,
}

/// How events are grouped into batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchTiming {
    /// A batch closes once no relevant event arrived for this long.
    pub settle: Duration,
    /// A batch closes at the latest this long after its first event, even if events keep
    /// coming (a long build writing into the tree must not starve the index).
    pub max_delay: Duration,
}

impl Default for BatchTiming {
    fn default() -> Self {
        BatchTiming {
            settle: Duration::from_millis(150),
            max_delay: Duration::from_secs(1),
        }
    }
}

/// A recursive watch on a repository that yields batches of relevant changes.
pub struct RepoWatcher {
    // Held for its side effect: dropping it stops the OS watch.
    _watcher: RecommendedWatcher,
    events: Receiver<notify::Result<Event>>,
    filter: ChangeFilter,
}

impl RepoWatcher {
    /// Starts watching `root` recursively. `index_dir` is never reported.
    pub fn start(root: &Path, index_dir: &Path) -> Result<Self, WatchError> {
        let error = |reason: String| WatchError {
            root: root.to_path_buf(),
            reason,
        };
        let (sender, events) = channel();
        let mut watcher = notify::recommended_watcher(sender).map_err(|e| error(e.to_string()))?;
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| error(e.to_string()))?;
        Ok(RepoWatcher {
            _watcher: watcher,
            events,
            filter: ChangeFilter::new(root, index_dir),
        })
    }

    /// Waits up to `wait` for a relevant event, then gathers the rest of its burst.
    pub fn next_batch(&mut self, wait: Duration, timing: BatchTiming) -> Wait {
        let mut batch = ChangeBatch::default();
        let deadline = Instant::now() + wait;
        while batch.paths.is_empty() && !batch.rescan {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.absorb(event, &mut batch),
                Err(RecvTimeoutError::Timeout) => return Wait::Idle,
                Err(RecvTimeoutError::Disconnected) => return Wait::Closed,
            }
        }
        let opened = Instant::now();
        let mut last_relevant = Instant::now();
        loop {
            let now = Instant::now();
            let settle_left = timing.settle.saturating_sub(now - last_relevant);
            let cap_left = timing.max_delay.saturating_sub(now - opened);
            let left = settle_left.min(cap_left);
            if left.is_zero() {
                break;
            }
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    let before = (batch.paths.len(), batch.rescan);
                    self.absorb(event, &mut batch);
                    if (batch.paths.len(), batch.rescan) != before {
                        last_relevant = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Wait::Changes(batch)
    }

    fn absorb(&mut self, event: notify::Result<Event>, batch: &mut ChangeBatch) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!("file watcher error, rescanning: {error}");
                batch.rescan = true;
                return;
            }
        };
        if event.need_rescan() {
            batch.rescan = true;
            return;
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            match self.filter.classify(path) {
                Relevance::Irrelevant => {}
                Relevance::Changed(relative) => {
                    batch.paths.insert(relative);
                }
                Relevance::IgnoreRules(relative) => {
                    batch.paths.insert(relative);
                    batch.rescan = true;
                    self.filter = ChangeFilter::new(&self.filter.root, &self.filter.index_dir);
                }
            }
        }
    }
}

/// The walk's rules for single paths, for callers that must know whether a path is one the
/// index would hold (the edit orchestrator refuses to write any other).
pub struct IgnoreRules(ChangeFilter);

impl IgnoreRules {
    /// Reads the ignore files under `root`; `index_dir` is always excluded.
    pub fn load(root: &Path, index_dir: &Path) -> Self {
        IgnoreRules(ChangeFilter::new(root, index_dir))
    }

    /// Whether `path` (absolute, under the root; it need not exist) is excluded: inside the
    /// index directory or `.git/`, hidden, outside the root, or matched by an ignore file.
    pub fn excludes(&self, path: &Path) -> bool {
        !matches!(self.0.classify(path), Relevance::Changed(_))
    }
}

/// What an event on one path means for the index.
#[derive(Debug, PartialEq, Eq)]
enum Relevance {
    /// Nothing: inside the index, hidden, ignored or outside the root.
    Irrelevant,
    /// A file the index may hold changed.
    Changed(String),
    /// An ignore file changed: what is indexed may change anywhere.
    IgnoreRules(String),
}

/// The walk's rules, applied to single paths.
struct ChangeFilter {
    root: PathBuf,
    index_dir: PathBuf,
    /// The ignore rules of each folder that has ignore files, outermost first.
    rules: Vec<(PathBuf, Gitignore)>,
}

impl ChangeFilter {
    fn new(root: &Path, index_dir: &Path) -> Self {
        let mut folders: BTreeSet<PathBuf> = BTreeSet::new();
        let skip = index_dir.to_path_buf();
        let walker = WalkBuilder::new(root)
            .hidden(false)
            .git_ignore(true)
            .require_git(false)
            .add_custom_ignore_filename(".quarryignore")
            .filter_entry(move |e| e.file_name() != ".git" && e.path() != skip)
            .build();
        for entry in walker.flatten() {
            let name = entry.file_name().to_string_lossy();
            if IGNORE_FILES.contains(&name.as_ref())
                && let Some(parent) = entry.path().parent()
            {
                folders.insert(parent.to_path_buf());
            }
        }
        let rules = folders
            .into_iter()
            .filter_map(|folder| {
                let mut builder = GitignoreBuilder::new(&folder);
                for name in IGNORE_FILES {
                    let file = folder.join(name);
                    if file.is_file() {
                        // A malformed line only drops that line's rule; the rest still apply.
                        let _ = builder.add(file);
                    }
                }
                builder.build().ok().map(|rules| (folder, rules))
            })
            .collect();
        ChangeFilter {
            root: root.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            rules,
        }
    }

    fn classify(&self, path: &Path) -> Relevance {
        if path.starts_with(&self.index_dir) {
            return Relevance::Irrelevant;
        }
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return Relevance::Irrelevant;
        };
        let relative_text = relative.to_string_lossy().replace('\\', "/");
        let name = relative
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let components: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        if components.iter().any(|c| c == ".git") {
            return Relevance::Irrelevant;
        }
        if IGNORE_FILES.contains(&name.as_str()) {
            return Relevance::IgnoreRules(relative_text);
        }
        if components.iter().any(|c| c.starts_with('.')) {
            return Relevance::Irrelevant;
        }
        let is_dir = path.is_dir();
        let ignored = self.rules.iter().any(|(folder, rules)| {
            path.starts_with(folder) && rules.matched_path_or_any_parents(path, is_dir).is_ignore()
        });
        if ignored {
            Relevance::Irrelevant
        } else {
            Relevance::Changed(relative_text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::write(root.join(".gitignore"), "target/\n*.log\n").expect("write");
        fs::create_dir_all(root.join("src/gen")).expect("mkdir");
        fs::write(root.join("src/gen/.gitignore"), "*.rs\n").expect("write");
        fs::create_dir_all(root.join("target")).expect("mkdir");
        dir
    }

    #[test]
    fn paths_are_classified_by_the_walk_rules() {
        let dir = repo();
        let root = dir.path().canonicalize().expect("canonical");
        let index_dir = root.join(".quarry");
        let filter = ChangeFilter::new(&root, &index_dir);
        let changed = |p: &str| Relevance::Changed(p.to_string());
        assert_eq!(
            filter.classify(&root.join("src/lib.rs")),
            changed("src/lib.rs")
        );
        assert_eq!(
            filter.classify(&root.join("README.md")),
            changed("README.md")
        );
        for irrelevant in [
            "target/debug/out.rs",
            "build.log",
            "src/gen/made.rs",
            ".git/index",
            ".quarry/manifest.json",
            ".env",
            "src/.hidden/x.rs",
        ] {
            assert_eq!(
                filter.classify(&root.join(irrelevant)),
                Relevance::Irrelevant,
                "{irrelevant}"
            );
        }
        assert_eq!(
            filter.classify(&root.join("src/gen/.gitignore")),
            Relevance::IgnoreRules("src/gen/.gitignore".into())
        );
        assert_eq!(
            filter.classify(Path::new("/elsewhere/file.rs")),
            Relevance::Irrelevant
        );
    }

    #[test]
    fn a_burst_of_writes_becomes_one_batch() {
        let dir = repo();
        let root = dir.path().canonicalize().expect("canonical");
        let mut watcher = RepoWatcher::start(&root, &root.join(".quarry")).expect("watch");
        for i in 0..50 {
            fs::write(root.join(format!("src/file_{i}.rs")), "fn f() {}\n").expect("write");
        }
        fs::write(root.join("target/ignored.rs"), "fn g() {}\n").expect("write");
        let timing = BatchTiming {
            settle: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        };
        let Wait::Changes(batch) = watcher.next_batch(Duration::from_secs(5), timing) else {
            panic!("no batch");
        };
        assert_eq!(batch.paths.len(), 50, "{:?}", batch.paths);
        assert!(!batch.paths.iter().any(|p| p.starts_with("target/")));
        assert!(matches!(
            watcher.next_batch(Duration::from_millis(300), timing),
            Wait::Idle
        ));
    }
}
