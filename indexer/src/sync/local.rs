//! The local index as a sync target: the manifest and journal files, the tantivy keyword
//! index and the Qdrant Edge shard under `.quarry/`.

use std::fs;
use std::time::Duration;

use super::target::{IndexSink, Ledger, Loaded, VectorsById};
use crate::IndexError;
use crate::chunk::Chunk;
use crate::embed::VectorModel;
use crate::failpoint;
use crate::keyword::KeywordIndex;
use crate::layout::{IndexLayout, ShardLock, remove_file_if_present, write_atomically};
use crate::manifest::{Journal, Manifest, SCHEMA_VERSION};
use crate::vector::edge::EdgeVectorStore;
use crate::vector::{VectorPoint, VectorStore};

/// Time between commits (and manifest checkpoints) in either phase of a long sync. A
/// keyword commit waits for every indexing thread to flush its segment, and a vector commit
/// opens and flushes the shard, so commits by count cost a Django-sized first index three
/// keyword commits where one does and a shard open per group of files. By time, a short
/// keyword phase commits once, at its end, and a huge one is searchable in part every
/// interval; the vector phase's first group is committed at once (see `sync::vectors`).
const COMMIT_INTERVAL: Duration = Duration::from_secs(20);

/// How long a sync waits for a search in another process to let go of the vector shard
/// before it gives up ([`IndexError::ShardBusy`]; nothing is written, nothing to repair
/// beyond what the journal covers).
const SHARD_WAIT: Duration = Duration::from_secs(10);

/// The stores of the index at a layout, opened by [`IndexSink::open`] or
/// [`IndexSink::recreate`].
///
/// The vector shard is held (with its [`ShardLock`]) only from a write to the next commit:
/// every commit lets go of it, so searches in other processes can open it between the
/// vector phase's commits.
pub(crate) struct LocalTarget<'l> {
    layout: &'l IndexLayout,
    /// The model of the vectors, or `None` for a keyword-only index.
    model: Option<VectorModel>,
    keyword: Option<KeywordIndex>,
    /// Whether the keyword index has writes not yet committed.
    keyword_dirty: bool,
    vectors: Option<(EdgeVectorStore, ShardLock)>,
}

impl<'l> LocalTarget<'l> {
    pub(crate) fn new(layout: &'l IndexLayout, model: Option<VectorModel>) -> Self {
        LocalTarget {
            layout,
            model,
            keyword: None,
            keyword_dirty: false,
            vectors: None,
        }
    }

    /// The lease on the shard, waited for up to [`SHARD_WAIT`].
    fn shard_lock(&self) -> Result<ShardLock, IndexError> {
        ShardLock::take(self.layout, SHARD_WAIT)?.ok_or_else(|| IndexError::ShardBusy {
            index_dir: self.layout.dir.clone(),
        })
    }

    /// The vector shard, opened (under its lease) if the last commit let go of it; `None`
    /// for a keyword-only index.
    fn vectors(&mut self) -> Result<Option<&mut EdgeVectorStore>, IndexError> {
        if self.model.is_none() {
            return Ok(None);
        }
        if self.vectors.is_none() {
            let lock = self.shard_lock()?;
            let layout = self.layout;
            let store = EdgeVectorStore::open(&layout.vector_shard_dir(), &layout.dir)?;
            self.vectors = Some((store, lock));
        }
        Ok(self.vectors.as_mut().map(|(store, _)| store))
    }

    fn keyword(&mut self) -> Result<&mut KeywordIndex, IndexError> {
        let index_dir = self.layout.dir.clone();
        self.keyword.as_mut().ok_or(IndexError::Corrupt {
            index_dir,
            reason: "keyword index written before it was opened".to_string(),
        })
    }

    /// Records the schema version and the vectors' model beside the stores, for readers.
    fn write_markers(&self) -> Result<(), IndexError> {
        let layout = self.layout;
        let version = SCHEMA_VERSION.to_string();
        if fs::read_to_string(layout.version_file()).ok().as_deref() != Some(version.as_str()) {
            write_atomically(&layout.version_file(), version.as_bytes())?;
        }
        if let Some(model) = &self.model
            && VectorModel::load(layout).as_ref() != Some(model)
        {
            let bytes = serde_json::to_vec(model).unwrap_or_default();
            write_atomically(&layout.vector_model_file(), &bytes)?;
        }
        Ok(())
    }
}

impl Ledger for LocalTarget<'_> {
    fn load(&mut self) -> Result<Loaded, IndexError> {
        let manifest = match Manifest::load(&self.layout.manifest()) {
            Ok(manifest) => Ok(manifest),
            Err(IndexError::SchemaMismatch { found, .. }) => Err(format!(
                "index schema changed (version {found} → {SCHEMA_VERSION})"
            )),
            Err(IndexError::Corrupt { reason, .. }) => Err(reason),
            Err(other) => return Err(other),
        };
        let journal = Journal::load(&self.layout.journal()).map(|j| j.paths);
        Ok(Loaded { manifest, journal })
    }

    fn save_journal(&mut self, paths: &[String]) -> Result<(), IndexError> {
        Journal {
            paths: paths.to_vec(),
        }
        .save(&self.layout.journal())
    }

    fn checkpoint(&mut self, manifest: &Manifest, _done: bool) -> Result<(), IndexError> {
        manifest.save(&self.layout.manifest())
    }

    fn clear_journal(&mut self) -> Result<(), IndexError> {
        Journal::clear(&self.layout.journal())
    }

    fn forget(&mut self) -> Result<(), IndexError> {
        remove_file_if_present(&self.layout.manifest())?;
        Journal::clear(&self.layout.journal())
    }
}

impl IndexSink for LocalTarget<'_> {
    fn open(&mut self, manifest: &Manifest, journaled: bool) -> Result<Option<String>, IndexError> {
        let layout = self.layout;
        let keyword = KeywordIndex::open(&layout.keyword_dir(), &layout.dir)
            .and_then(|mut keyword| keyword.count().map(|count| (keyword, count)));
        let listed = (manifest.chunk_count(), journaled);
        match vouched(keyword, listed, ("keyword index", "chunks"))? {
            Ok(keyword) => self.keyword = Some(keyword),
            Err(reason) => return Ok(Some(reason)),
        }
        if self.model.is_some() {
            let lock = self.shard_lock()?;
            let vectors = EdgeVectorStore::open(&layout.vector_shard_dir(), &layout.dir)
                .and_then(|vectors| vectors.count().map(|count| (vectors, count)));
            let listed = (manifest.vector_count(), journaled);
            match vouched(vectors, listed, ("vector store", "vectors"))? {
                Ok(vectors) => self.vectors = Some((vectors, lock)),
                Err(reason) => return Ok(Some(reason)),
            }
        }
        self.write_markers()?;
        Ok(None)
    }

    fn recreate(&mut self, _manifest: &Manifest) -> Result<(), IndexError> {
        let layout = self.layout;
        self.keyword = None;
        self.vectors = None;
        let lock = match self.model {
            Some(_) => Some(self.shard_lock()?),
            None => None,
        };
        remove_dir_if_present(&layout.vector_shard_dir())?;
        remove_file_if_present(&layout.vector_model_file())?;
        self.keyword = Some(KeywordIndex::create(&layout.keyword_dir())?);
        self.keyword_dirty = true;
        if let (Some(model), Some(lock)) = (&self.model, lock) {
            let store = EdgeVectorStore::open_or_create(
                &layout.vector_shard_dir(),
                &layout.dir,
                model.dims,
            )?;
            self.vectors = Some((store, lock));
        }
        self.write_markers()
    }

    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        self.keyword()?.delete_paths(paths)?;
        self.keyword_dirty = true;
        if let Some(vectors) = self.vectors()? {
            vectors.delete_paths(paths)?;
        }
        Ok(())
    }

    fn write(&mut self, chunks: &[Chunk], vectors: &VectorsById<'_>) -> Result<(), IndexError> {
        self.keyword()?.add_chunks(chunks)?;
        self.keyword_dirty = true;
        self.write_vectors(chunks, vectors)
    }

    fn write_vectors(
        &mut self,
        chunks: &[Chunk],
        vectors: &VectorsById<'_>,
    ) -> Result<(), IndexError> {
        if vectors.is_empty() {
            return Ok(());
        }
        if let Some(store) = self.vectors()? {
            let points: Vec<VectorPoint<'_>> = chunks
                .iter()
                .filter_map(|chunk| {
                    vectors
                        .get(chunk.id.as_str())
                        .map(|vector| VectorPoint { chunk, vector })
                })
                .collect();
            store.upsert(&points)?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        if self.keyword_dirty {
            self.keyword()?.commit()?;
            self.keyword_dirty = false;
        }
        failpoint::hit("between-stores");
        // Committed, the shard is let go of until the next write needs it.
        if let Some((vectors, lock)) = self.vectors.take() {
            vectors.close()?;
            drop(lock);
        }
        Ok(())
    }

    fn commit_due(&self, pending: usize, since: Duration) -> bool {
        pending > 0 && since >= COMMIT_INTERVAL
    }

    fn finish(&mut self) -> Result<(), IndexError> {
        self.keyword()?.finish()
    }
}

/// A store that opened and holds the `listed` count of the manifest (any count while a
/// journal is pending: the run it belongs to may have left the store ahead), or (inner
/// `Err`) why it must be rebuilt.
fn vouched<T>(
    opened: Result<(T, u64), IndexError>,
    (listed, journaled): (usize, bool),
    (store, unit): (&str, &str),
) -> Result<Result<T, String>, IndexError> {
    match opened {
        Ok((_, count)) if !journaled && count != listed as u64 => Ok(Err(format!(
            "{store} holds {count} {unit} where the manifest lists {listed}"
        ))),
        Ok((opened, _)) => Ok(Ok(opened)),
        Err(IndexError::Corrupt { reason, .. }) => Ok(Err(reason)),
        Err(other) => Err(other),
    }
}

fn remove_dir_if_present(path: &std::path::Path) -> Result<(), IndexError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IndexError::io("removing", path)(e)),
    }
}
