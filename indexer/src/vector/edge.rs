//! The embedded vector store: a Qdrant Edge shard in the index directory.
//!
//! Qdrant Edge is synchronous and in process: every write goes to its write-ahead log first,
//! so a crash loses at most unflushed work, which the sync's journal makes it redo. Payload
//! indexes on `path`, `lang` and `kind` keep deletes by file and filtered searches fast.
//!
//! The local index's shard holds one unnamed dense vector and locations. A shard of
//! [`StoreShape::team`] is laid out like a team's server collection (named `dense` and
//! `bm25` vectors, whole chunks) and runs the same queries with Qdrant's own engine: the
//! contract tests and the hybrid-retrieval eval use it where no server is at hand.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FieldCondition, FieldIndexOperations, Filter, Fusion, JsonPath, Match,
    Modifier, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStruct, Prefetch, QueryEnum, QueryRequest, ScoringQuery, ScrollRequest,
    UpdateOperation, ValueVariants, Vector, VectorInternal, Vectors, WalOptions,
    WithPayloadInterface, WithVector,
};

use super::sparse::{SparseVector, encode_chunk};
use super::{
    DENSE_VECTOR, GRAPH_FIELDS, INDEXED_FIELDS, SCAN_PAGE, SPARSE_VECTOR, StoreQuery, StoreShape,
    VectorFilter, VectorHit, VectorPoint, VectorStore, hit_from_payload, point_id, point_payload,
};
use crate::IndexError;

/// Write-ahead log segment size: points are small (a 384-float vector and a short payload),
/// and Qdrant's 32 MiB default is sized for servers.
const WAL_SEGMENT_BYTES: usize = 4 * 1024 * 1024;

/// A Qdrant Edge shard holding one index's vectors.
pub struct EdgeVectorStore {
    dir: PathBuf,
    index_dir: PathBuf,
    shard: EdgeShard,
    shape: StoreShape,
}

impl EdgeVectorStore {
    /// Opens the shard in `dir`, or creates it for vectors of `dims` (cosine distance).
    pub fn open_or_create(dir: &Path, index_dir: &Path, dims: usize) -> Result<Self, IndexError> {
        Self::open_or_create_shaped(dir, index_dir, dims, StoreShape::local())
    }

    /// [`EdgeVectorStore::open_or_create`] for a shard of the given shape.
    pub fn open_or_create_shaped(
        dir: &Path,
        index_dir: &Path,
        dims: usize,
        shape: StoreShape,
    ) -> Result<Self, IndexError> {
        let exists = dir.join("edge_config.json").is_file();
        std::fs::create_dir_all(dir).map_err(IndexError::io("creating", dir))?;
        let shard = if exists {
            EdgeShard::load(dir, None)
        } else {
            let dense = EdgeVectorParams::builder(dims, Distance::Cosine).build();
            let mut config = EdgeConfig::builder();
            config = if shape.sparse {
                config.vector(DENSE_VECTOR, dense).sparse_vector(
                    SPARSE_VECTOR,
                    EdgeSparseVectorParams::builder()
                        .modifier(Modifier::Idf)
                        .build(),
                )
            } else {
                config.vector("", dense)
            };
            let config = config
                .on_disk_payload(false)
                .wal_options(WalOptions {
                    segment_capacity: WAL_SEGMENT_BYTES,
                    segment_queue_len: 0,
                    retain_closed: NonZeroUsize::MIN,
                })
                .build();
            EdgeShard::new(dir, config)
        };
        let shard = shard.map_err(|e| IndexError::opening(index_dir, "vector store", e))?;
        let store = EdgeVectorStore {
            dir: dir.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            shard,
            shape,
        };
        if !exists {
            let graph: &[&str] = if shape.full_chunks {
                &GRAPH_FIELDS
            } else {
                &[]
            };
            for field in INDEXED_FIELDS.iter().chain(graph) {
                store.apply(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: json_path(field)?,
                        field_schema: Some(PayloadFieldSchema::FieldType(
                            PayloadSchemaType::Keyword,
                        )),
                    }),
                ))?;
            }
        }
        Ok(store)
    }

    /// Opens an existing shard of the local shape; a missing or unreadable one is
    /// [`IndexError::Corrupt`].
    pub fn open(dir: &Path, index_dir: &Path) -> Result<Self, IndexError> {
        if !dir.join("edge_config.json").is_file() {
            return Err(IndexError::Corrupt {
                index_dir: index_dir.to_path_buf(),
                reason: "vector store is missing".to_string(),
            });
        }
        let shard = EdgeShard::load(dir, None)
            .map_err(|e| IndexError::opening(index_dir, "vector store", e))?;
        Ok(EdgeVectorStore {
            dir: dir.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            shard,
            shape: StoreShape::local(),
        })
    }

    /// Closes the shard, which makes every write durable (the shard flushes its segments as
    /// it closes, so no [`VectorStore::commit`] is needed first), and trims its write-ahead
    /// log to the last closed log segment.
    ///
    /// Qdrant Edge 0.7 never reads its log back (loading a shard reads the segments alone)
    /// and never truncates it either, so without this the log grows with every write, and
    /// every later open, a search's included, scans and maps all of it: on a Django-sized
    /// index ~90 MB of log, ~100 ms and as many MB of resident memory per open. Trimming
    /// removes the oldest closed segments first, as Qdrant's own truncation does, so the
    /// remaining segments stay contiguous and the log's numbering (which the segments'
    /// versions follow) goes on where it was. Call it only under the shard's lease.
    pub fn close(self) -> Result<(), IndexError> {
        let EdgeVectorStore { dir, shard, .. } = self;
        drop(shard);
        trim_log(&dir.join("wal"))
    }

    /// The dense vector under the shard's name for it.
    fn dense_query(&self, vector: &[f32]) -> NamedQuery<VectorInternal> {
        NamedQuery {
            query: VectorInternal::Dense(vector.to_vec()),
            using: self.shape.sparse.then(|| DENSE_VECTOR.into()),
        }
    }

    fn sparse_query(
        &self,
        vector: &SparseVector,
    ) -> Result<NamedQuery<VectorInternal>, IndexError> {
        if !self.shape.sparse {
            return Err(self.error("this store keeps no sparse vectors"));
        }
        let sparse = Vector::new_sparse(vector.indices.clone(), vector.values.clone())
            .map_err(|e| self.error(e))?;
        Ok(NamedQuery {
            query: sparse.0,
            using: Some(SPARSE_VECTOR.into()),
        })
    }

    fn apply(&self, operation: UpdateOperation) -> Result<(), IndexError> {
        self.shard.update(operation).map_err(|e| self.error(e))
    }

    fn error(&self, error: impl std::fmt::Display) -> IndexError {
        IndexError::Corrupt {
            index_dir: self.index_dir.clone(),
            reason: format!("vector store at {}: {error}", self.dir.display()),
        }
    }
}

/// A payload field's path.
fn json_path(field: &str) -> Result<JsonPath, IndexError> {
    field.parse().map_err(|_| IndexError::Corrupt {
        index_dir: std::path::PathBuf::new(),
        reason: format!("`{field}` is not a payload path"),
    })
}

fn field_equals(field: &str, value: &str) -> Result<Condition, IndexError> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        Match::new_value(ValueVariants::String(value.to_string())),
    )))
}

impl VectorStore for EdgeVectorStore {
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        for path in paths {
            self.apply(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(Filter::new_must(field_equals(
                    "path", path,
                )?)),
            ))?;
        }
        Ok(())
    }

    fn upsert(&mut self, points: &[VectorPoint<'_>]) -> Result<(), IndexError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut structs = Vec::with_capacity(points.len());
        for point in points {
            let chunk = point.chunk;
            let payload = point_payload(chunk, self.shape);
            let vectors: Vectors = if self.shape.sparse {
                let sparse = encode_chunk(chunk);
                let sparse =
                    Vector::new_sparse(sparse.indices, sparse.values).map_err(|e| self.error(e))?;
                if point.vector.is_empty() {
                    Vectors::new_named([(SPARSE_VECTOR, sparse)])
                } else {
                    Vectors::new_named([
                        (DENSE_VECTOR, Vector::new_dense(point.vector.to_vec())),
                        (SPARSE_VECTOR, sparse),
                    ])
                }
            } else {
                point.vector.to_vec().into()
            };
            structs.push(PointStruct::new(point_id(&chunk.id), vectors, payload).into());
        }
        self.apply(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(structs)),
        ))
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        self.shard.flush();
        Ok(())
    }

    fn count(&self) -> Result<u64, IndexError> {
        let count = self
            .shard
            .count(CountRequest {
                filter: None,
                exact: true,
            })
            .map_err(|e| self.error(e))?;
        Ok(count as u64)
    }

    fn points_by_id(&self, chunk_ids: &[String]) -> Result<Vec<VectorHit>, IndexError> {
        let ids: Vec<PointId> = chunk_ids
            .iter()
            .map(|id| PointId::NumId(point_id(id)))
            .collect();
        let records = self
            .shard
            .retrieve(&ids, Some(WithPayloadInterface::Bool(true)), None)
            .map_err(|e| self.error(e))?;
        Ok(records
            .into_iter()
            .filter_map(|record| hit_from_payload(&record.payload?.0, 0.0))
            .collect())
    }

    fn points_naming(
        &self,
        role: crate::graph::NameRole,
        names: &[String],
    ) -> Result<Vec<VectorHit>, IndexError> {
        if !self.shape.full_chunks || names.is_empty() {
            return Ok(Vec::new());
        }
        let conditions = names
            .iter()
            .map(|name| field_equals(role.field(), name))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = Filter {
            should: Some(conditions),
            min_should: None,
            must: None,
            must_not: None,
        };
        let mut hits = Vec::new();
        let mut offset = None;
        loop {
            let (records, next) = self
                .shard
                .scroll(ScrollRequest {
                    offset,
                    limit: Some(SCAN_PAGE),
                    filter: Some(filter.clone()),
                    with_payload: Some(WithPayloadInterface::Bool(true)),
                    with_vector: WithVector::Bool(false),
                    order_by: None,
                })
                .map_err(|e| self.error(e))?;
            hits.extend(
                records
                    .into_iter()
                    .filter_map(|record| hit_from_payload(&record.payload?.0, 0.0)),
            );
            match next {
                Some(next) => offset = Some(next),
                None => return Ok(hits),
            }
        }
    }

    fn query(
        &self,
        query: StoreQuery<'_>,
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, IndexError> {
        let mut conditions = Vec::new();
        if let Some(lang) = &filter.lang {
            conditions.push(field_equals("lang", lang)?);
        }
        if let Some(kind) = &filter.kind {
            conditions.push(field_equals("kind", kind)?);
        }
        let filter = (!conditions.is_empty()).then(|| Filter {
            should: None,
            min_should: None,
            must: Some(conditions),
            must_not: None,
        });
        let nearest = |named| Some(ScoringQuery::Vector(QueryEnum::Nearest(named)));
        let (prefetches, scoring) = match query {
            StoreQuery::Dense(vector) => (Vec::new(), nearest(self.dense_query(vector))),
            StoreQuery::Sparse(vector) => (Vec::new(), nearest(self.sparse_query(vector)?)),
            StoreQuery::Hybrid { dense, sparse } => {
                let prefetch = |query| Prefetch {
                    prefetches: Vec::new(),
                    query,
                    limit,
                    params: None,
                    filter: filter.clone(),
                    score_threshold: None,
                };
                (
                    vec![
                        prefetch(nearest(self.dense_query(dense))),
                        prefetch(nearest(self.sparse_query(sparse)?)),
                    ],
                    Some(ScoringQuery::Fusion(Fusion::Rrf {
                        k: super::HYBRID_RRF_K as usize,
                        weights: None,
                    })),
                )
            }
        };
        let request = QueryRequest {
            prefetches,
            query: scoring,
            filter,
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        let points = self.shard.query(request).map_err(|e| self.error(e))?;
        Ok(points
            .into_iter()
            .filter_map(|point| hit_from_payload(&point.payload?.0, point.score))
            .collect())
    }
}

/// Deletes every closed segment (`closed-<first entry>`) of the write-ahead log in `wal`
/// but the newest, oldest first. The open segments are kept.
fn trim_log(wal: &Path) -> Result<(), IndexError> {
    let entries = match std::fs::read_dir(wal) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(IndexError::io("reading", wal)(e)),
    };
    let mut closed: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let start = name
                .to_str()?
                .strip_prefix("closed-")?
                .parse::<u64>()
                .ok()?;
            Some((start, entry.path()))
        })
        .collect();
    closed.sort_unstable();
    closed.pop();
    for (_, path) in closed {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(IndexError::io("removing", &path)(e)),
        }
    }
    Ok(())
}
