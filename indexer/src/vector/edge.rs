//! The embedded vector store: a Qdrant Edge shard in the index directory.
//!
//! Qdrant Edge is synchronous and in process: every write goes to its write-ahead log first,
//! so a crash loses at most unflushed work, which the sync's journal makes it redo. Payload
//! indexes on `path`, `lang` and `kind` keep deletes by file and filtered searches fast.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, Filter, JsonPath, Match, NamedQuery, PayloadFieldSchema,
    PayloadSchemaType, PointInsertOperations, PointOperations, PointStruct, QueryEnum,
    QueryRequest, ScoringQuery, UpdateOperation, ValueVariants, VectorInternal, WalOptions,
    WithPayloadInterface, WithVector,
};
use serde_json::json;

use super::{VectorFilter, VectorHit, VectorPoint, VectorStore, point_id};
use crate::IndexError;

/// Write-ahead log segment size: points are small (a 384-float vector and a short payload),
/// and Qdrant's 32 MiB default is sized for servers.
const WAL_SEGMENT_BYTES: usize = 4 * 1024 * 1024;

/// Fields with a payload index.
const INDEXED_FIELDS: [&str; 3] = ["path", "lang", "kind"];

/// A Qdrant Edge shard holding one index's vectors.
pub struct EdgeVectorStore {
    dir: PathBuf,
    index_dir: PathBuf,
    shard: EdgeShard,
}

impl EdgeVectorStore {
    /// Opens the shard in `dir`, or creates it for vectors of `dims` (cosine distance).
    pub fn open_or_create(dir: &Path, index_dir: &Path, dims: usize) -> Result<Self, IndexError> {
        let exists = dir.join("edge_config.json").is_file();
        std::fs::create_dir_all(dir).map_err(IndexError::io("creating", dir))?;
        let shard = if exists {
            EdgeShard::load(dir, None)
        } else {
            let config = EdgeConfig::builder()
                .vector(
                    "",
                    EdgeVectorParams::builder(dims, Distance::Cosine).build(),
                )
                .on_disk_payload(false)
                .wal_options(WalOptions {
                    segment_capacity: WAL_SEGMENT_BYTES,
                    segment_queue_len: 0,
                    retain_closed: NonZeroUsize::MIN,
                })
                .build();
            EdgeShard::new(dir, config)
        };
        let shard = shard.map_err(|e| IndexError::Corrupt {
            index_dir: index_dir.to_path_buf(),
            reason: format!("vector store unreadable: {e}"),
        })?;
        let store = EdgeVectorStore {
            dir: dir.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            shard,
        };
        if !exists {
            for field in INDEXED_FIELDS {
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

    /// Opens an existing shard; a missing or unreadable one is [`IndexError::Corrupt`].
    pub fn open(dir: &Path, index_dir: &Path) -> Result<Self, IndexError> {
        if !dir.join("edge_config.json").is_file() {
            return Err(IndexError::Corrupt {
                index_dir: index_dir.to_path_buf(),
                reason: "vector store is missing".to_string(),
            });
        }
        let shard = EdgeShard::load(dir, None).map_err(|e| IndexError::Corrupt {
            index_dir: index_dir.to_path_buf(),
            reason: format!("vector store unreadable: {e}"),
        })?;
        Ok(EdgeVectorStore {
            dir: dir.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            shard,
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
        let structs = points
            .iter()
            .map(|point| {
                let chunk = point.chunk;
                let payload = json!({
                    "chunk_id": chunk.id,
                    "path": chunk.path,
                    "lang": chunk.lang,
                    "kind": chunk.kind.as_str(),
                    "symbol": chunk.symbol,
                    "start_line": chunk.start_line,
                    "end_line": chunk.end_line,
                });
                PointStruct::new(point_id(&chunk.id), point.vector.to_vec(), payload).into()
            })
            .collect();
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

    fn search(
        &self,
        vector: &[f32],
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
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::Dense(vector.to_vec()),
                using: None,
            }))),
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
            .filter_map(|point| {
                let payload = point.payload?;
                let text = |key: &str| payload.0.get(key)?.as_str().map(str::to_string);
                Some(VectorHit {
                    chunk_id: text("chunk_id")?,
                    path: text("path")?,
                    score: point.score,
                })
            })
            .collect())
    }
}
