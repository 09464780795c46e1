//! A team index: the whole index inside one vector store, shared by every machine.
//!
//! The local index keeps its manifest and keyword index on disk beside the repository. A
//! team index keeps everything in the store: each chunk's point carries the chunk, a dense
//! and a BM25 sparse vector ([`crate::vector::StoreShape::team`]), and a ledger beside the
//! points holds the manifest (one entry per file, the index's [`TeamMeta`] and, while a
//! sync runs, its journal). So CI can keep the index current with [`sync::sync_team`] (the
//! local index's sync driver over the store) from a
//! fresh checkout, and laptops search it read-only without indexing anything.
//!
//! [`TeamStore`] is the seam: a Qdrant server ([`crate::vector::server`]) in production; a
//! Qdrant Edge shard in a directory ([`EdgeTeamStore`]) runs the same engine in process, for
//! tests and evaluation where no server is at hand.
//!
//! Collections are named from the repository's identity (its `origin` remote, so every
//! clone agrees) and the embedding model ([`collection_name`]): another model is another
//! collection, never vectors of two models mixed in one.

pub mod settings;
pub mod sync;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::IndexError;
use crate::layout::write_atomically;
use crate::manifest::{IndexSettings, RunStats};
use crate::vector::edge::EdgeVectorStore;
use crate::vector::server::{CollectionFacts, ServerConfig, ServerVectorStore};
use crate::vector::{StoreShape, VectorStore};

/// Version of a team collection's layout (payload, vectors, ledger); a collection of
/// another version is rebuilt by the next `quarry index`.
pub const TEAM_SCHEMA: u32 = 2;

/// Ledger key of the [`TeamMeta`].
pub(crate) const META_KEY: &str = "meta";
/// Ledger key of the journal of a sync in flight.
pub(crate) const JOURNAL_KEY: &str = "journal";
/// Prefix of the ledger key of each file's entry.
pub(crate) const FILE_PREFIX: &str = "file:";
/// Prefix of the ledger key of each skipped file's entry.
pub(crate) const SKIP_PREFIX: &str = "skip:";

/// What a team index records about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMeta {
    /// [`TEAM_SCHEMA`] of the writer.
    pub schema: u32,
    /// The repository's identity ([`repository_identity`]).
    pub repository: String,
    /// The embedding model's id.
    pub model_id: String,
    /// Its vector length.
    pub dims: usize,
    /// Vector distance (`cosine`).
    pub distance: String,
    /// Settings the index is built with.
    pub settings: IndexSettings,
    /// The commit the last sync indexed (the writer's HEAD), when it was a git checkout.
    #[serde(default)]
    pub head: Option<String>,
    /// Files and chunks after the last sync.
    #[serde(default)]
    pub files: usize,
    /// Chunks after the last sync.
    #[serde(default)]
    pub chunks: usize,
    /// Figures of the last sync.
    #[serde(default)]
    pub last_run: Option<RunStats>,
    /// When the index was created (seconds since the epoch).
    #[serde(default)]
    pub created_at: u64,
    /// When the last scan started (ns since the epoch): the racy-mtime guard's reference.
    #[serde(default)]
    pub scan_started_ns: u64,
}

/// The meta of the team index in `store`, if it has one.
pub fn team_meta(store: &dyn TeamStore) -> Result<Option<TeamMeta>, IndexError> {
    Ok(store
        .ledger_entry(META_KEY)?
        .and_then(|meta| serde_json::from_value(meta).ok()))
}

/// Every file of the team index in `store` with its entry, by path (the ledger's manifest).
pub fn team_files(
    store: &dyn TeamStore,
) -> Result<BTreeMap<String, crate::manifest::FileEntry>, IndexError> {
    Ok(LedgerContents::read(store)?.files)
}

/// A team index's ledger, read whole and typed: how the sync and readers see it.
#[derive(Default)]
pub(crate) struct LedgerContents {
    pub(crate) meta: Option<TeamMeta>,
    /// The journal of a sync in flight or interrupted.
    pub(crate) journal: Option<Vec<String>>,
    pub(crate) files: BTreeMap<String, crate::manifest::FileEntry>,
    pub(crate) skipped: BTreeMap<String, crate::manifest::SkippedEntry>,
    /// Entries read, whatever they were.
    pub(crate) entries: usize,
}

impl LedgerContents {
    /// Reads every entry of `store`'s ledger; one that does not parse is left out.
    pub(crate) fn read(store: &dyn TeamStore) -> Result<Self, IndexError> {
        let raw = store.ledger()?;
        let mut contents = LedgerContents {
            entries: raw.len(),
            ..LedgerContents::default()
        };
        for (key, value) in raw {
            if key == META_KEY {
                contents.meta = serde_json::from_value(value).ok();
            } else if key == JOURNAL_KEY {
                contents.journal = Some(serde_json::from_value(value).unwrap_or_default());
            } else if let Some(path) = key.strip_prefix(FILE_PREFIX) {
                if let Ok(entry) = serde_json::from_value(value) {
                    contents.files.insert(path.to_string(), entry);
                }
            } else if let Some(path) = key.strip_prefix(SKIP_PREFIX)
                && let Ok(entry) = serde_json::from_value(value)
            {
                contents.skipped.insert(path.to_string(), entry);
            }
        }
        Ok(contents)
    }
}

/// Whether a sync of the team index in `store` is in flight or was interrupted.
pub fn sync_pending(store: &dyn TeamStore) -> Result<bool, IndexError> {
    Ok(store.ledger_entry(JOURNAL_KEY)?.is_some())
}

/// Where a team index lives, for messages and `quarry status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamLocation {
    /// `qdrant server` or `qdrant edge`.
    pub backend: String,
    /// The server's URL or the store's directory.
    pub address: String,
    /// The collection.
    pub collection: String,
}

/// A vector store able to hold a whole team index: team-shaped points plus a ledger.
pub trait TeamStore: VectorStore {
    /// Where it lives.
    fn location(&self) -> TeamLocation;
    /// The collection's dims and size; `None` when it does not exist yet.
    fn facts(&self) -> Result<Option<CollectionFacts>, IndexError>;
    /// Creates the (missing) collection for vectors of `dims`, with its ledger.
    fn create(&mut self, dims: usize) -> Result<(), IndexError>;
    /// Deletes the collection and its ledger.
    fn drop_all(&mut self) -> Result<(), IndexError>;
    /// Every ledger entry by key.
    fn ledger(&self) -> Result<BTreeMap<String, serde_json::Value>, IndexError>;
    /// One ledger entry (a reader needs the meta, not every file's entry).
    fn ledger_entry(&self, key: &str) -> Result<Option<serde_json::Value>, IndexError> {
        Ok(self.ledger()?.remove(key))
    }
    /// Writes entries and removes others, by key.
    fn write_ledger(
        &mut self,
        upserts: &[(String, serde_json::Value)],
        removals: &[String],
    ) -> Result<(), IndexError>;
}

impl TeamStore for ServerVectorStore {
    fn location(&self) -> TeamLocation {
        TeamLocation {
            backend: "qdrant server".to_string(),
            address: self.url().to_string(),
            collection: self.collection().to_string(),
        }
    }

    fn facts(&self) -> Result<Option<CollectionFacts>, IndexError> {
        ServerVectorStore::facts(self)
    }

    fn create(&mut self, dims: usize) -> Result<(), IndexError> {
        ServerVectorStore::create(self, dims as u64)
    }

    fn drop_all(&mut self) -> Result<(), IndexError> {
        self.drop_collections()
    }

    fn ledger(&self) -> Result<BTreeMap<String, serde_json::Value>, IndexError> {
        self.ledger_entries()
    }

    fn ledger_entry(&self, key: &str) -> Result<Option<serde_json::Value>, IndexError> {
        ServerVectorStore::ledger_entry(self, key)
    }

    fn write_ledger(
        &mut self,
        upserts: &[(String, serde_json::Value)],
        removals: &[String],
    ) -> Result<(), IndexError> {
        ServerVectorStore::write_ledger(self, upserts, removals)
    }
}

/// A team index in a directory: a team-shaped Qdrant Edge shard per collection plus its
/// ledger as a JSON file. One process at a time; the engine and the requests are a server's.
pub struct EdgeTeamStore {
    dir: PathBuf,
    collection: String,
    store: Option<EdgeVectorStore>,
}

impl EdgeTeamStore {
    /// The collection `collection` under `dir` (opened if it exists).
    pub fn open(dir: &Path, collection: &str) -> Result<Self, IndexError> {
        let mut team = EdgeTeamStore {
            dir: dir.to_path_buf(),
            collection: collection.to_string(),
            store: None,
        };
        if team.shard_dir().join("edge_config.json").is_file() {
            team.store = Some(EdgeVectorStore::open_or_create_shaped(
                &team.shard_dir(),
                &team.dir,
                0,
                StoreShape::team(),
            )?);
        }
        Ok(team)
    }

    fn shard_dir(&self) -> PathBuf {
        self.dir.join(&self.collection)
    }

    fn ledger_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ledger.json", self.collection))
    }

    fn store(&self) -> Result<&EdgeVectorStore, IndexError> {
        self.store.as_ref().ok_or_else(|| self.missing())
    }

    fn store_mut(&mut self) -> Result<&mut EdgeVectorStore, IndexError> {
        let missing = self.missing();
        self.store.as_mut().ok_or(missing)
    }

    fn missing(&self) -> IndexError {
        IndexError::Collection(format!(
            "no collection `{}` in {}",
            self.collection,
            self.dir.display()
        ))
    }
}

impl VectorStore for EdgeTeamStore {
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        self.store_mut()?.delete_paths(paths)
    }

    fn upsert(&mut self, points: &[crate::vector::VectorPoint<'_>]) -> Result<(), IndexError> {
        self.store_mut()?.upsert(points)
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        self.store_mut()?.commit()
    }

    fn count(&self) -> Result<u64, IndexError> {
        self.store()?.count()
    }

    fn points_by_id(
        &self,
        chunk_ids: &[String],
    ) -> Result<Vec<crate::vector::VectorHit>, IndexError> {
        self.store()?.points_by_id(chunk_ids)
    }

    fn points_naming(
        &self,
        role: crate::graph::NameRole,
        names: &[String],
    ) -> Result<Vec<crate::vector::VectorHit>, IndexError> {
        self.store()?.points_naming(role, names)
    }

    fn query(
        &self,
        query: crate::vector::StoreQuery<'_>,
        filter: &crate::vector::VectorFilter,
        limit: usize,
    ) -> Result<Vec<crate::vector::VectorHit>, IndexError> {
        self.store()?.query(query, filter, limit)
    }
}

impl TeamStore for EdgeTeamStore {
    fn location(&self) -> TeamLocation {
        TeamLocation {
            backend: "qdrant edge".to_string(),
            address: self.dir.display().to_string(),
            collection: self.collection.clone(),
        }
    }

    fn facts(&self) -> Result<Option<CollectionFacts>, IndexError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let dims = self
            .ledger_entry(META_KEY)?
            .as_ref()
            .and_then(|meta| meta.get("dims"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Ok(Some(CollectionFacts {
            dims,
            points: store.count()?,
            status: "green".to_string(),
        }))
    }

    fn create(&mut self, dims: usize) -> Result<(), IndexError> {
        self.store = Some(EdgeVectorStore::open_or_create_shaped(
            &self.shard_dir(),
            &self.dir,
            dims,
            StoreShape::team(),
        )?);
        write_atomically(&self.ledger_file(), b"{}")
    }

    fn drop_all(&mut self) -> Result<(), IndexError> {
        self.store = None;
        let shard = self.shard_dir();
        match std::fs::remove_dir_all(&shard) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(IndexError::io("removing", shard)(e));
            }
            _ => {}
        }
        crate::layout::remove_file_if_present(&self.ledger_file())
    }

    fn ledger(&self) -> Result<BTreeMap<String, serde_json::Value>, IndexError> {
        let path = self.ledger_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
                index_dir: self.dir.clone(),
                reason: format!("ledger {}: {e}", path.display()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(IndexError::io("reading", path)(e)),
        }
    }

    fn write_ledger(
        &mut self,
        upserts: &[(String, serde_json::Value)],
        removals: &[String],
    ) -> Result<(), IndexError> {
        let mut ledger = self.ledger()?;
        for key in removals {
            ledger.remove(key);
        }
        for (key, value) in upserts {
            ledger.insert(key.clone(), value.clone());
        }
        let bytes = serde_json::to_vec(&ledger).map_err(|e| IndexError::Corrupt {
            index_dir: self.dir.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.ledger_file(), &bytes)
    }
}

/// Where a team index is, as configured.
#[derive(Debug, Clone, PartialEq)]
pub enum TeamTarget {
    /// A Qdrant server or cluster.
    Server(ServerConfig),
    /// A Qdrant Edge directory (`edge:///path`): tests and evaluation.
    Edge(PathBuf),
}

impl TeamTarget {
    /// The target a store URL names: `http(s)://host:port` for a server, `edge:///dir` for
    /// an in-process directory.
    pub fn from_url(url: &str) -> Result<Self, IndexError> {
        if let Some(dir) = url.strip_prefix("edge://") {
            if !dir.starts_with('/') {
                return Err(IndexError::Collection(format!(
                    "store URL `{url}`: an edge:// URL needs an absolute directory (edge:///path)"
                )));
            }
            return Ok(TeamTarget::Edge(PathBuf::from(dir)));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(TeamTarget::Server(ServerConfig::new(url)));
        }
        Err(IndexError::Collection(format!(
            "store URL `{url}` is not a Qdrant gRPC URL; use http://host:6334 or https://host:6334"
        )))
    }

    /// Opens the store of `collection`.
    pub fn open(&self, collection: &str) -> Result<Box<dyn TeamStore>, IndexError> {
        Ok(match self {
            TeamTarget::Server(config) => Box::new(ServerVectorStore::connect(config, collection)?),
            TeamTarget::Edge(dir) => Box::new(EdgeTeamStore::open(dir, collection)?),
        })
    }
}

/// The repository's identity, the same on every clone: its `origin` remote normalised
/// (`git@host:org/repo.git` and `https://host/org/repo` are both `host/org/repo`), else the
/// root folder's name.
pub fn repository_identity(root: &Path) -> String {
    let remote = gix::discover(root).ok().and_then(|repo| {
        let remote = repo.find_remote("origin").ok()?;
        let url = remote.url(gix::remote::Direction::Fetch)?;
        Some(url.to_bstring().to_string())
    });
    match remote {
        Some(url) => normalise_remote(&url),
        None => format!(
            "local/{}",
            root.file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default()
        ),
    }
}

/// `scheme://user@host:port/org/repo.git` or `user@host:org/repo` → `host/org/repo`.
fn normalise_remote(url: &str) -> String {
    let mut rest = url.trim();
    if let Some((_, after)) = rest.split_once("://") {
        rest = after;
    } else if let Some((host, path)) = rest.split_once(':')
        && !host.contains('/')
    {
        // scp-like syntax: user@host:org/repo
        let host = host.rsplit('@').next().unwrap_or(host);
        return format!("{}/{}", host, trim_repo_path(path)).to_lowercase();
    }
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.split(':').next().unwrap_or(host);
    if path.is_empty() {
        return host.to_lowercase();
    }
    format!("{}/{}", host, trim_repo_path(path)).to_lowercase()
}

fn trim_repo_path(path: &str) -> &str {
    let path = path.trim_matches('/');
    path.strip_suffix(".git").unwrap_or(path)
}

/// The collection of `repository` embedded with `model_id`: readable words of both plus a
/// short hash of each, so names stay distinct and valid (`[a-z0-9-]`, under 100 characters).
pub fn collection_name(repository: &str, model_id: &str) -> String {
    let repo_words = repository
        .rsplit('/')
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("-");
    let model_words = model_id.split('@').next().unwrap_or(model_id);
    format!(
        "quarry-{}-{}-{}-{}",
        slug(&repo_words, 40),
        short_hash(repository),
        slug(model_words, 32),
        short_hash(model_id)
    )
}

fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let cut: String = out.chars().take(max).collect();
    let cut = cut.trim_end_matches('-').to_string();
    if cut.is_empty() {
        "repo".to_string()
    } else {
        cut
    }
}

fn short_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..6].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_remote_spelling_of_a_repository_is_one_identity() {
        let expected = "github.com/acme/shop";
        for url in [
            "git@github.com:acme/shop.git",
            "https://github.com/acme/shop",
            "https://user@github.com/acme/shop.git/",
            "ssh://git@github.com:22/acme/shop.git",
            "HTTPS://GitHub.com/Acme/Shop",
        ] {
            assert_eq!(normalise_remote(url), expected, "{url}");
        }
        assert_eq!(
            normalise_remote("/srv/git/shop.git"),
            "/srv/git/shop",
            "a local path stays a path"
        );
    }

    #[test]
    fn the_identity_of_a_clone_is_its_origin_and_otherwise_its_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("My Shop");
        std::fs::create_dir_all(&root).expect("mkdir");
        assert_eq!(repository_identity(&root), "local/my shop");
        let status = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status();
        if status.is_ok_and(|s| s.success()) {
            let added = std::process::Command::new("git")
                .args(["remote", "add", "origin", "git@example.com:acme/shop.git"])
                .current_dir(&root)
                .status()
                .expect("git remote");
            assert!(added.success());
            assert_eq!(repository_identity(&root), "example.com/acme/shop");
        }
    }

    #[test]
    fn collection_names_are_valid_and_differ_by_repository_and_model() {
        let model = "all-minilm-l6-v2-int8@22928619/256/384";
        let name = collection_name("github.com/acme/shop", model);
        assert!(name.starts_with("quarry-acme-shop-"), "{name}");
        assert!(name.contains("-all-minilm-l6-v2-int8-"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(name.len() < 100);
        assert_eq!(name, collection_name("github.com/acme/shop", model));
        assert_ne!(name, collection_name("gitlab.com/acme/shop", model));
        assert_ne!(
            name,
            collection_name("github.com/acme/shop", "all-minilm-l6-v2-int8@1/256/384")
        );
        let odd = collection_name("local/ä ö !!", "x");
        assert!(odd.starts_with("quarry-local-"), "{odd}");
    }

    #[test]
    fn store_urls_name_a_server_or_an_edge_directory() {
        assert!(matches!(
            TeamTarget::from_url("http://qdrant:6334/"),
            Ok(TeamTarget::Server(config)) if config.url == "http://qdrant:6334"
        ));
        assert_eq!(
            TeamTarget::from_url("edge:///tmp/team").ok(),
            Some(TeamTarget::Edge(PathBuf::from("/tmp/team")))
        );
        for bad in ["qdrant:6334", "edge://relative", "ftp://x"] {
            let error = TeamTarget::from_url(bad).expect_err("refused");
            assert!(error.to_string().contains(bad), "{error}");
        }
    }
}
