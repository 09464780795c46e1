//! A team store as a sync target: the manifest in the store's ledger, the chunks as its
//! points. The driver ([`crate::sync`]) is the local index's; what differs is only where
//! things are kept:
//!
//! - the ledger holds one entry per indexed file (`file:PATH`), one per skipped file
//!   (`skip:PATH`), the [`TeamMeta`] and, while a run is in flight, the journal;
//! - every chunk becomes a point, those without a vector found by their BM25 sparse vector;
//! - the store commits every batch (a server's writes are waited for), and each checkpoint
//!   writes only the ledger entries that changed since the last one.
//!
//! A run that stops anywhere leaves the ledger behind the points for journaled paths only,
//! and the next run re-reads (or deletes) each of those whatever the ledger says.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    FILE_PREFIX, JOURNAL_KEY, LedgerContents, META_KEY, SKIP_PREFIX, TEAM_SCHEMA, TeamMeta,
    TeamStore, repository_identity,
};
use crate::IndexError;
use crate::chunk::Chunk;
use crate::embed::{Embedder, VectorModel};
use crate::history::git::head_commit;
use crate::layout::{IndexLayout, WriterLock};
use crate::manifest::{FileEntry, Manifest, SCHEMA_VERSION, SkippedEntry};
use crate::sync::target::{IndexSink, Ledger, Loaded, VectorsById};
use crate::sync::{SyncEvent, SyncOptions, SyncReport, driver_run};
use crate::vector::VectorPoint;
use crate::vector::server::CollectionFacts;

/// Brings the team index in `store` in step with the checkout at `layout.root`. The local
/// index directory only holds the vector cache (so a warm CI cache embeds nothing twice),
/// the git history, and the writer lock that keeps two syncs on this machine apart.
pub fn sync_team(
    layout: &IndexLayout,
    store: &mut dyn TeamStore,
    options: &SyncOptions,
    embedder: &mut dyn Embedder,
    on_event: &mut dyn FnMut(SyncEvent),
) -> Result<SyncReport, IndexError> {
    std::fs::create_dir_all(&layout.dir).map_err(IndexError::io("creating", &layout.dir))?;
    let _lock = WriterLock::acquire(layout)?;
    let mut target = TeamStoreTarget {
        store,
        model: VectorModel::of(embedder),
        force: options.force_rebuild,
        repository: repository_identity(&layout.root),
        head: head_commit(&layout.root),
        facts: None,
        ledger_entries: 0,
        indexed_head: None,
        written_files: BTreeMap::new(),
        written_skipped: BTreeMap::new(),
    };
    driver_run(&mut target, layout, options, Some(embedder), on_event)
}

/// A team store being synced, and what its ledger held when last read or written.
struct TeamStoreTarget<'s> {
    store: &'s mut dyn TeamStore,
    model: VectorModel,
    force: bool,
    repository: String,
    /// The commit being indexed.
    head: Option<String>,
    facts: Option<CollectionFacts>,
    ledger_entries: usize,
    /// The commit the ledger says is indexed: it moves only when a run completes.
    indexed_head: Option<String>,
    written_files: BTreeMap<String, FileEntry>,
    written_skipped: BTreeMap<String, SkippedEntry>,
}

impl TeamStoreTarget<'_> {
    /// Refuses a collection of points Quarry did not write, or vectors of another model
    /// (unless a rebuild was asked for).
    fn refuse_foreign(&self, meta: Option<&TeamMeta>) -> Result<(), IndexError> {
        let location = self.store.location();
        let Some(facts) = &self.facts else {
            return Ok(());
        };
        let Some(meta) = meta else {
            if facts.points > 0 {
                return Err(IndexError::Collection(format!(
                    "collection `{}` at {} holds {} points that Quarry did not write; refusing to mix them with an index (set [store] collection to another name)",
                    location.collection, location.address, facts.points
                )));
            }
            return Ok(());
        };
        let (model, dims) = (&self.model.model_id, self.model.dims);
        let other_dims = facts.dims != 0 && facts.dims != dims as u64;
        if (meta.model_id != *model || meta.dims != dims || other_dims) && !self.force {
            return Err(IndexError::Collection(format!(
                "collection `{}` at {} holds vectors of {} ({} dims), but this quarry embeds with {model} ({dims} dims); never mixing them: set [store] collection to another name, or rebuild it with `quarry index --rebuild`",
                location.collection, location.address, meta.model_id, meta.dims
            )));
        }
        Ok(())
    }

    fn meta_of(&self, manifest: &Manifest, head: Option<String>) -> TeamMeta {
        TeamMeta {
            schema: TEAM_SCHEMA,
            repository: self.repository.clone(),
            model_id: self.model.model_id.clone(),
            dims: self.model.dims,
            distance: "cosine".to_string(),
            settings: manifest.settings.clone(),
            head,
            files: manifest.files.len(),
            chunks: manifest.chunk_count(),
            last_run: manifest.last_run.clone(),
            created_at: manifest.created_at,
            scan_started_ns: manifest.scan_started_ns,
        }
    }
}

impl Ledger for TeamStoreTarget<'_> {
    fn load(&mut self) -> Result<Loaded, IndexError> {
        let ledger = LedgerContents::read(self.store)?;
        self.facts = self.store.facts()?;
        self.ledger_entries = ledger.entries;
        let LedgerContents {
            meta,
            journal,
            files,
            skipped,
            ..
        } = ledger;
        self.refuse_foreign(meta.as_ref())?;
        let manifest = match (&self.facts, meta) {
            // A ledger without its collection (or nothing at all): a new index.
            (None, _) => Ok(None),
            (Some(_), None) => Err("collection without a ledger".to_string()),
            (Some(_), Some(meta)) if meta.schema != TEAM_SCHEMA => Err(format!(
                "collection layout changed (version {} → {TEAM_SCHEMA})",
                meta.schema
            )),
            (Some(_), Some(meta)) if meta.dims != self.model.dims => Err(format!(
                "vector size changed ({} → {} dims)",
                meta.dims, self.model.dims
            )),
            (Some(_), Some(meta)) => {
                let mut settings = meta.settings.clone();
                settings.embed_model = Some(meta.model_id.clone());
                let manifest = Manifest {
                    schema_version: SCHEMA_VERSION,
                    settings,
                    created_at: meta.created_at,
                    scan_started_ns: meta.scan_started_ns,
                    files: files.clone(),
                    skipped: skipped.clone(),
                    last_run: meta.last_run.clone(),
                };
                self.written_files = files;
                self.written_skipped = skipped;
                self.indexed_head = meta.head;
                Ok(Some(manifest))
            }
        };
        Ok(Loaded { manifest, journal })
    }

    fn save_journal(&mut self, paths: &[String]) -> Result<(), IndexError> {
        self.store
            .write_ledger(&[(JOURNAL_KEY.to_string(), to_value(&paths))], &[])
    }

    fn checkpoint(&mut self, manifest: &Manifest, done: bool) -> Result<(), IndexError> {
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        diff_entries(
            &mut self.written_files,
            &manifest.files,
            FILE_PREFIX,
            &mut upserts,
            &mut removals,
        );
        diff_entries(
            &mut self.written_skipped,
            &manifest.skipped,
            SKIP_PREFIX,
            &mut upserts,
            &mut removals,
        );
        if done {
            self.indexed_head = self.head.clone();
        }
        let meta = self.meta_of(manifest, self.indexed_head.clone());
        upserts.push((META_KEY.to_string(), to_value(&meta)));
        self.store.write_ledger(&upserts, &removals)
    }

    fn clear_journal(&mut self) -> Result<(), IndexError> {
        self.store.write_ledger(&[], &[JOURNAL_KEY.to_string()])
    }

    fn forget(&mut self) -> Result<(), IndexError> {
        // The ledger lives and goes with the collection: `recreate` drops both.
        Ok(())
    }
}

impl IndexSink for TeamStoreTarget<'_> {
    fn open(
        &mut self,
        _manifest: &Manifest,
        _journaled: bool,
    ) -> Result<Option<String>, IndexError> {
        // Points and ledger agree once no journal is pending; `quarry status` shows both.
        Ok(None)
    }

    fn recreate(&mut self, manifest: &Manifest) -> Result<(), IndexError> {
        if self.facts.is_some() || self.ledger_entries > 0 {
            self.store.drop_all()?;
        }
        self.store.create(self.model.dims)?;
        self.written_files.clear();
        self.written_skipped.clear();
        // The meta goes in before any point: points never sit in a collection without one.
        self.indexed_head = None;
        let meta = self.meta_of(manifest, None);
        self.store
            .write_ledger(&[(META_KEY.to_string(), to_value(&meta))], &[])
    }

    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        self.store.delete_paths(paths)
    }

    fn write(&mut self, chunks: &[Chunk], vectors: &VectorsById<'_>) -> Result<(), IndexError> {
        // Every chunk becomes a point: those without a vector are found by their terms.
        let points: Vec<VectorPoint<'_>> = chunks
            .iter()
            .map(|chunk| VectorPoint {
                chunk,
                vector: vectors.get(chunk.id.as_str()).copied().unwrap_or(&[]),
            })
            .collect();
        if points.is_empty() {
            return Ok(());
        }
        self.store.upsert(&points)
    }

    fn write_vectors(
        &mut self,
        chunks: &[Chunk],
        vectors: &VectorsById<'_>,
    ) -> Result<(), IndexError> {
        // A point is the chunk with its vectors: written again whole, with the dense one.
        let with_vectors: Vec<Chunk> = chunks
            .iter()
            .filter(|c| vectors.contains_key(c.id.as_str()))
            .cloned()
            .collect();
        self.write(&with_vectors, vectors)
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        self.store.commit()
    }

    fn commit_due(&self, _pending: usize, _since: Duration) -> bool {
        // A team store commits each batch: its writes are visible as they land anyway.
        true
    }
}

/// Adds to `upserts`/`removals` the ledger writes that bring `written` to `now`, and
/// records them in `written`.
fn diff_entries<E: Clone + PartialEq + serde::Serialize>(
    written: &mut BTreeMap<String, E>,
    now: &BTreeMap<String, E>,
    prefix: &str,
    upserts: &mut Vec<(String, serde_json::Value)>,
    removals: &mut Vec<String>,
) {
    written.retain(|path, _| {
        let keep = now.contains_key(path);
        if !keep {
            removals.push(format!("{prefix}{path}"));
        }
        keep
    });
    for (path, entry) in now {
        if written.get(path) != Some(entry) {
            upserts.push((format!("{prefix}{path}"), to_value(entry)));
            written.insert(path.clone(), entry.clone());
        }
    }
}

fn to_value(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
