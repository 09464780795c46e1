//! A Qdrant server or cluster as the vector store: one index shared by a team.
//!
//! [`ServerVectorStore`] speaks gRPC through `qdrant-client` and keeps the [`VectorStore`]
//! contract of the embedded store: replace a file's points, filtered queries, counts. Its
//! collection is always [team-shaped](StoreShape::team) (whole chunks, a `dense` and a `bm25`
//! vector), so hybrid retrieval is one Query API request fused on the server. Beside it, a
//! small ledger collection (`<name>-ledger`) holds the manifest, one point per file, so any
//! machine can sync the index incrementally.
//!
//! The trait is synchronous like the rest of the indexer: each call runs on the store's own
//! small runtime, under a timeout, with retries and backoff for transient gRPC errors
//! (unavailable, resource exhausted, aborted). A server that is down or silent becomes an
//! [`IndexError::Server`] naming the URL and what failed, never a hang.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, GetPointsBuilder, Modifier, NamedVectors,
    PointId, PointStruct, PrefetchQueryBuilder, Query, QueryPoints, QueryPointsBuilder, Rrf,
    ScrollPointsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPoints,
    UpsertPointsBuilder, Vector, VectorParamsBuilder, VectorsConfigBuilder, vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::json;

use super::sparse::{SparseVector, encode_chunk};
use super::{
    DENSE_VECTOR, GRAPH_FIELDS, HYBRID_RRF_K, INDEXED_FIELDS, SPARSE_VECTOR, StoreQuery,
    StoreShape, VectorFilter, VectorHit, VectorPoint, VectorStore, hit_from_payload, point_id,
    point_payload,
};
use crate::IndexError;

/// Points sent in one upsert request: well under the server's request size limit for
/// 1,024-dimension vectors with their chunk text.
const UPSERT_BATCH: usize = 128;
/// Ledger points read per scroll page.
const SCROLL_PAGE: u32 = 1_000;

/// How to reach the server and how to lay out a new collection.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// gRPC URL (`http://localhost:6334`).
    pub url: String,
    /// API key, for a server that asks for one.
    pub api_key: Option<String>,
    /// Shards of a new collection (`None`: the server's default, one per node).
    pub shard_number: Option<u32>,
    /// Copies of each shard in a cluster (`None`: the server's default, 1).
    pub replication_factor: Option<u32>,
    /// Keep dense vectors on disk (memory-mapped) rather than in RAM: for big repositories.
    pub on_disk: bool,
    /// Longest wait for any one request.
    pub timeout: Duration,
    /// Attempts of a request that fails transiently (1: no retry).
    pub attempts: u32,
}

impl ServerConfig {
    /// A config for `url` with the defaults.
    pub fn new(url: &str) -> Self {
        ServerConfig {
            url: url.trim_end_matches('/').to_string(),
            api_key: None,
            shard_number: None,
            replication_factor: None,
            on_disk: false,
            timeout: Duration::from_secs(30),
            attempts: 4,
        }
    }
}

/// A collection on a Qdrant server holding one team index.
pub struct ServerVectorStore {
    client: Arc<Qdrant>,
    runtime: tokio::runtime::Runtime,
    config: ServerConfig,
    collection: String,
}

/// What a collection on the server looks like, for checks and `quarry status`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionFacts {
    /// Length of its dense vectors.
    pub dims: u64,
    /// Points it holds (approximate, as the server reports it).
    pub points: u64,
    /// Its status (`green`, `yellow`, ...).
    pub status: String,
}

impl ServerVectorStore {
    /// Connects to the server and checks it answers. Nothing is created.
    pub fn connect(config: &ServerConfig, collection: &str) -> Result<Self, IndexError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("quarry-qdrant")
            .enable_all()
            .build()
            .map_err(|e| server_error(&config.url, "starting the client", e))?;
        let client = {
            let _entered = runtime.enter();
            Qdrant::from_url(&config.url)
                .api_key(config.api_key.clone())
                .timeout(config.timeout)
                .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                .skip_compatibility_check()
                .build()
                .map_err(|e| server_error(&config.url, "connecting", e))?
        };
        let store = ServerVectorStore {
            client: Arc::new(client),
            runtime,
            config: config.clone(),
            collection: collection.to_string(),
        };
        // A server that accepts connections but never answers is found out quickly here,
        // whatever the request timeout.
        let first_answer = config.timeout.min(Duration::from_secs(10));
        store.call_within("connecting", first_answer, |client| async move {
            client.health_check().await.map(|_| ())
        })?;
        Ok(store)
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The ledger collection beside the index's.
    pub fn ledger_collection(&self) -> String {
        format!("{}-ledger", self.collection)
    }

    /// The collection's dims, size and status; `None` when it does not exist.
    pub fn facts(&self) -> Result<Option<CollectionFacts>, IndexError> {
        let name = self.collection.clone();
        let exists = self.call("checking the collection", move |client| {
            let name = name.clone();
            async move { client.collection_exists(name).await }
        })?;
        if !exists {
            return Ok(None);
        }
        let name = self.collection.clone();
        let info = self.call("reading the collection", move |client| {
            let name = name.clone();
            async move { client.collection_info(name).await }
        })?;
        let info = info.result.unwrap_or_default();
        let dims = info
            .config
            .as_ref()
            .and_then(|c| c.params.as_ref())
            .and_then(|p| p.vectors_config.as_ref())
            .and_then(|v| v.config.as_ref())
            .and_then(|config| match config {
                vectors_config::Config::Params(params) => Some(params.size),
                vectors_config::Config::ParamsMap(map) => {
                    map.map.get(DENSE_VECTOR).map(|params| params.size)
                }
            })
            .unwrap_or(0);
        let status = match info.status {
            1 => "green",
            2 => "yellow",
            3 => "red",
            4 => "grey",
            _ => "unknown",
        };
        Ok(Some(CollectionFacts {
            dims,
            points: info.points_count.unwrap_or(0),
            status: status.to_string(),
        }))
    }

    /// Creates the collection for vectors of `dims` with its payload indexes, and the ledger
    /// collection beside it. Both must not exist yet.
    pub fn create(&self, dims: u64) -> Result<(), IndexError> {
        let request = collection_request(&self.collection, dims, &self.config);
        self.call("creating the collection", move |client| {
            let request = request.clone();
            async move { client.create_collection(request).await.map(|_| ()) }
        })?;
        for field in INDEXED_FIELDS.into_iter().chain(GRAPH_FIELDS) {
            let name = self.collection.clone();
            self.call("creating a payload index", move |client| {
                let request =
                    CreateFieldIndexCollectionBuilder::new(name.clone(), field, FieldType::Keyword)
                        .wait(true);
                async move { client.create_field_index(request).await.map(|_| ()) }
            })?;
        }
        let ledger = CreateCollectionBuilder::new(self.ledger_collection())
            .vectors_config(VectorParamsBuilder::new(1, Distance::Dot))
            .replication_factor(self.config.replication_factor.unwrap_or(1));
        self.call("creating the ledger collection", move |client| {
            let request = ledger.clone();
            async move { client.create_collection(request).await.map(|_| ()) }
        })?;
        Ok(())
    }

    /// Whether the ledger collection exists (a store never synced has none).
    fn has_ledger(&self) -> Result<bool, IndexError> {
        let name = self.ledger_collection();
        self.call("checking the ledger", move |client| {
            let name = name.clone();
            async move { client.collection_exists(name).await }
        })
    }

    /// Every ledger entry: key → JSON value; none when there is no ledger yet.
    pub fn ledger_entries(&self) -> Result<BTreeMap<String, serde_json::Value>, IndexError> {
        let mut entries = BTreeMap::new();
        if !self.has_ledger()? {
            return Ok(entries);
        }
        self.scroll_all(
            self.ledger_collection(),
            None,
            "reading the ledger",
            |payload| {
                if let (Some(key), Some(value)) = (
                    payload.get("key").and_then(|k| k.as_str()),
                    payload.get("value"),
                ) {
                    entries.insert(key.to_string(), value.clone());
                }
            },
        )?;
        Ok(entries)
    }

    /// Reads every point of `collection` that passes `filter`, page by page, handing each
    /// payload to `each`; `doing` names the work in errors.
    fn scroll_all(
        &self,
        collection: String,
        filter: Option<Filter>,
        doing: &str,
        mut each: impl FnMut(serde_json::Value),
    ) -> Result<(), IndexError> {
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(collection.clone())
                .limit(SCROLL_PAGE)
                .with_payload(true)
                .with_vectors(false);
            if let Some(filter) = &filter {
                request = request.filter(filter.clone());
            }
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let request = request.build();
            let page = self.call(doing, move |client| {
                let request = request.clone();
                async move { client.scroll(request).await }
            })?;
            for point in page.result {
                each(Payload::from(point.payload).into());
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// One ledger entry, read by its point id.
    pub fn ledger_entry(&self, key: &str) -> Result<Option<serde_json::Value>, IndexError> {
        if !self.has_ledger()? {
            return Ok(None);
        }
        let name = self.ledger_collection();
        let id: PointId = ledger_id(key).into();
        let response = self.call("reading the ledger", move |client| {
            let request = GetPointsBuilder::new(name.clone(), vec![id.clone()]).with_payload(true);
            async move { client.get_points(request).await }
        })?;
        Ok(response.result.into_iter().find_map(|point| {
            let payload: serde_json::Value = Payload::from(point.payload).into();
            (payload.get("key")?.as_str()? == key).then(|| payload.get("value").cloned())?
        }))
    }

    /// Writes ledger entries and removes others, by key.
    pub fn write_ledger(
        &self,
        upserts: &[(String, serde_json::Value)],
        removals: &[String],
    ) -> Result<(), IndexError> {
        for batch in upserts.chunks(SCROLL_PAGE as usize) {
            let points: Vec<PointStruct> = batch
                .iter()
                .map(|(key, value)| {
                    let payload = Payload::try_from(json!({ "key": key, "value": value }))
                        .unwrap_or_default();
                    PointStruct::new(ledger_id(key), vec![1.0], payload)
                })
                .collect();
            let request = UpsertPointsBuilder::new(self.ledger_collection(), points)
                .wait(true)
                .build();
            self.call("writing the ledger", move |client| {
                let request = request.clone();
                async move { client.upsert_points(request).await.map(|_| ()) }
            })?;
        }
        for batch in removals.chunks(SCROLL_PAGE as usize) {
            let ids: Vec<PointId> = batch.iter().map(|key| ledger_id(key).into()).collect();
            let name = self.ledger_collection();
            self.call("writing the ledger", move |client| {
                let request = DeletePointsBuilder::new(name.clone())
                    .points(ids.clone())
                    .wait(true);
                async move { client.delete_points(request).await.map(|_| ()) }
            })?;
        }
        Ok(())
    }

    /// Deletes the collection and its ledger, if they exist: a rebuild from scratch.
    pub fn drop_collections(&self) -> Result<(), IndexError> {
        for name in [self.collection.clone(), self.ledger_collection()] {
            self.call("deleting a collection", move |client| {
                let name = name.clone();
                async move {
                    if client.collection_exists(name.clone()).await? {
                        client.delete_collection(name).await?;
                    }
                    Ok(())
                }
            })?;
        }
        Ok(())
    }

    /// Runs one request on the store's runtime, with a timeout per attempt and retries with
    /// backoff for transient errors. Safe to call from inside another runtime's thread.
    fn call<T, F, Fut>(&self, action: &str, make: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: Fn(Arc<Qdrant>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, QdrantError>> + Send + 'static,
    {
        self.call_within(action, self.config.timeout, make)
    }

    /// [`ServerVectorStore::call`] with its own timeout per attempt.
    fn call_within<T, F, Fut>(
        &self,
        action: &str,
        timeout: Duration,
        make: F,
    ) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: Fn(Arc<Qdrant>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, QdrantError>> + Send + 'static,
    {
        let client = Arc::clone(&self.client);
        let policy = ServerRetries {
            attempts: self.config.attempts.max(1),
            first_backoff: Duration::from_millis(200),
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let result = with_retries(policy, timeout, || make(Arc::clone(&client))).await;
            let _ = sender.send(result);
        });
        match receiver.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(failure)) => Err(server_error(&self.config.url, action, failure)),
            Err(_) => Err(server_error(
                &self.config.url,
                action,
                "the client stopped before answering",
            )),
        }
    }
}

impl VectorStore for ServerVectorStore {
    fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        for batch in paths.chunks(256) {
            let filter = Filter::must([Condition::matches("path", batch.to_vec())]);
            let name = self.collection.clone();
            self.call("deleting points", move |client| {
                let request = DeletePointsBuilder::new(name.clone())
                    .points(filter.clone())
                    .wait(true);
                async move { client.delete_points(request).await.map(|_| ()) }
            })?;
        }
        Ok(())
    }

    fn upsert(&mut self, points: &[VectorPoint<'_>]) -> Result<(), IndexError> {
        for batch in points.chunks(UPSERT_BATCH) {
            let request = upsert_request(&self.collection, batch);
            self.call("writing points", move |client| {
                let request = request.clone();
                async move { client.upsert_points(request).await.map(|_| ()) }
            })?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        // Every write waited for the server to apply it.
        Ok(())
    }

    fn count(&self) -> Result<u64, IndexError> {
        let name = self.collection.clone();
        let response = self.call("counting points", move |client| {
            let request = CountPointsBuilder::new(name.clone()).exact(true);
            async move { client.count(request).await }
        })?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    fn points_by_id(&self, chunk_ids: &[String]) -> Result<Vec<VectorHit>, IndexError> {
        let mut hits = Vec::with_capacity(chunk_ids.len());
        for batch in chunk_ids.chunks(SCROLL_PAGE as usize) {
            let ids: Vec<PointId> = batch.iter().map(|id| point_id(id).into()).collect();
            let name = self.collection.clone();
            let response = self.call("reading points", move |client| {
                let request = GetPointsBuilder::new(name.clone(), ids.clone()).with_payload(true);
                async move { client.get_points(request).await }
            })?;
            hits.extend(response.result.into_iter().filter_map(|point| {
                let payload: serde_json::Value = Payload::from(point.payload).into();
                hit_from_payload(payload.as_object()?, 0.0)
            }));
        }
        Ok(hits)
    }

    fn points_naming(
        &self,
        role: crate::graph::NameRole,
        names: &[String],
    ) -> Result<Vec<VectorHit>, IndexError> {
        let mut hits = Vec::new();
        if names.is_empty() {
            return Ok(hits);
        }
        let filter = Filter::must([Condition::matches(role.field(), names.to_vec())]);
        self.scroll_all(
            self.collection.clone(),
            Some(filter),
            "reading the code graph",
            |payload| hits.extend(payload.as_object().and_then(|p| hit_from_payload(p, 0.0))),
        )?;
        Ok(hits)
    }

    fn query(
        &self,
        query: StoreQuery<'_>,
        filter: &VectorFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, IndexError> {
        let request = query_request(&self.collection, query, filter, limit);
        let response = self.call("searching", move |client| {
            let request = request.clone();
            async move { client.query(request).await }
        })?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|point| {
                let payload: serde_json::Value = Payload::from(point.payload).into();
                hit_from_payload(payload.as_object()?, point.score)
            })
            .collect())
    }
}

/// The request creating a team collection: a named dense vector (cosine) and a BM25 sparse
/// vector whose IDF the server computes, laid out as `config` says.
pub fn collection_request(
    name: &str,
    dims: u64,
    config: &ServerConfig,
) -> qdrant_client::qdrant::CreateCollection {
    let mut vectors = VectorsConfigBuilder::default();
    vectors.add_named_vector_params(
        DENSE_VECTOR,
        VectorParamsBuilder::new(dims, Distance::Cosine).on_disk(config.on_disk),
    );
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params(
        SPARSE_VECTOR,
        SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
    );
    let mut request = CreateCollectionBuilder::new(name)
        .vectors_config(vectors)
        .sparse_vectors_config(sparse);
    if let Some(shards) = config.shard_number {
        request = request.shard_number(shards);
    }
    if let Some(replicas) = config.replication_factor {
        request = request.replication_factor(replicas);
    }
    request.build()
}

/// The request writing `points`, each with its dense and BM25 vectors and its whole chunk.
pub fn upsert_request(collection: &str, points: &[VectorPoint<'_>]) -> UpsertPoints {
    let structs: Vec<PointStruct> = points
        .iter()
        .map(|point| {
            let sparse = encode_chunk(point.chunk);
            let mut vectors = NamedVectors::default().add_vector(
                SPARSE_VECTOR,
                Vector::new_sparse(sparse.indices, sparse.values),
            );
            if !point.vector.is_empty() {
                vectors =
                    vectors.add_vector(DENSE_VECTOR, Vector::new_dense(point.vector.to_vec()));
            }
            let payload = Payload::try_from(point_payload(point.chunk, StoreShape::team()))
                .unwrap_or_default();
            PointStruct::new(super::point_id(&point.chunk.id), vectors, payload)
        })
        .collect();
    UpsertPointsBuilder::new(collection, structs)
        .wait(true)
        .build()
}

/// The one Query API request for `query`: dense or BM25 alone, or both as prefetches fused
/// by reciprocal rank on the server.
pub fn query_request(
    collection: &str,
    query: StoreQuery<'_>,
    filter: &VectorFilter,
    limit: usize,
) -> QueryPoints {
    let limit = limit as u64;
    let conditions: Vec<Condition> = [("lang", &filter.lang), ("kind", &filter.kind)]
        .into_iter()
        .filter_map(|(field, value)| {
            value
                .as_ref()
                .map(|value| Condition::matches(field, value.clone()))
        })
        .collect();
    let filter = (!conditions.is_empty()).then(|| Filter::must(conditions));
    let mut request = QueryPointsBuilder::new(collection)
        .limit(limit)
        .with_payload(true);
    if let Some(filter) = &filter {
        request = request.filter(filter.clone());
    }
    // Each prefetch carries the filter too, so neither ranking spends its candidates on
    // points the answer cannot hold.
    let prefetch = |query: Query, using: &str| {
        let prefetch = PrefetchQueryBuilder::default()
            .query(query)
            .using(using)
            .limit(limit);
        match &filter {
            Some(filter) => prefetch.filter(filter.clone()),
            None => prefetch,
        }
    };
    let sparse_query = |vector: &SparseVector| {
        Query::new_nearest(qdrant_client::qdrant::VectorInput::new_sparse(
            vector.indices.clone(),
            vector.values.clone(),
        ))
    };
    match query {
        StoreQuery::Dense(vector) => request
            .query(Query::new_nearest(vector.to_vec()))
            .using(DENSE_VECTOR),
        StoreQuery::Sparse(vector) => request.query(sparse_query(vector)).using(SPARSE_VECTOR),
        StoreQuery::Hybrid { dense, sparse } => request
            .add_prefetch(prefetch(Query::new_nearest(dense.to_vec()), DENSE_VECTOR))
            .add_prefetch(prefetch(sparse_query(sparse), SPARSE_VECTOR))
            .query(Query::new_rrf(Rrf {
                k: Some(HYBRID_RRF_K),
                weights: Vec::new(),
            })),
    }
    .build()
}

/// The ledger point of a key.
fn ledger_id(key: &str) -> u64 {
    let hash = blake3::hash(key.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// Retries of one request.
#[derive(Debug, Clone, Copy)]
struct ServerRetries {
    attempts: u32,
    first_backoff: Duration,
}

/// Why a request failed for good.
#[derive(Debug)]
enum Failure {
    /// The server said no, or could not be reached.
    Qdrant(QdrantError),
    /// No answer within the timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TimedOut(after) => write!(f, "no answer within {} s", after.as_secs_f32()),
            Failure::Qdrant(QdrantError::ResponseError { status }) if is_connect_error(status) => {
                let message = status.message();
                let reason = if message.contains("Connection refused") {
                    "connection refused"
                } else if message.contains("dns error") {
                    "host not found"
                } else {
                    "cannot connect"
                };
                write!(
                    f,
                    "server unreachable ({reason}); is Qdrant running there, and is that its gRPC port (6334)?"
                )
            }
            Failure::Qdrant(QdrantError::ResponseError { status }) => {
                let message = status.message().trim();
                match status.code() {
                    tonic::Code::Unavailable => write!(f, "server unreachable ({message})"),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                        write!(f, "refused: check the API key ({message})")
                    }
                    code => write!(f, "{code:?}: {message}"),
                }
            }
            Failure::Qdrant(other) => write!(f, "{other}"),
        }
    }
}

/// Whether a status is the client failing to connect (the client reports these as
/// `Internal` or `Unavailable` with the transport's message).
fn is_connect_error(status: &tonic::Status) -> bool {
    let message = status.message();
    matches!(
        status.code(),
        tonic::Code::Internal | tonic::Code::Unavailable
    ) && (message.contains("Failed to connect")
        || message.contains("tcp connect error")
        || message.contains("transport error"))
}

/// Whether a failed request may succeed if sent again (a server restarting, overloaded, or
/// a connection dropped).
fn is_transient(error: &QdrantError) -> bool {
    match error {
        QdrantError::ResponseError { status } if is_connect_error(status) => true,
        QdrantError::ResponseError { status } => matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted
        ),
        QdrantError::ResourceExhaustedError { .. } => true,
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the attempts run out; each attempt
/// under `timeout`. Backoff doubles from the policy's first pause, with jitter. A timeout is
/// final: a silent server is reported, not waited on again.
async fn with_retries<T, Fut>(
    policy: ServerRetries,
    timeout: Duration,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, Failure>
where
    Fut: Future<Output = Result<T, QdrantError>>,
{
    let mut backoff = policy.first_backoff;
    let mut tries = 0;
    loop {
        tries += 1;
        match tokio::time::timeout(timeout, attempt()).await {
            Err(_) => return Err(Failure::TimedOut(timeout)),
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if tries < policy.attempts && is_transient(&error) => {
                let pause = match &error {
                    QdrantError::ResourceExhaustedError {
                        retry_after_seconds,
                        ..
                    } => Duration::from_secs(*retry_after_seconds).min(Duration::from_secs(30)),
                    _ => jittered(backoff),
                };
                tracing::debug!("qdrant request failed ({error}); retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Ok(Err(error)) => return Err(Failure::Qdrant(error)),
        }
    }
}

/// 50–100% of `pause`, so clients that failed together do not retry together.
fn jittered(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    pause.mul_f64(0.5 + f64::from(nanos % 1_000) / 2_000.0)
}

fn server_error(url: &str, action: &str, reason: impl std::fmt::Display) -> IndexError {
    IndexError::Server {
        url: url.to_string(),
        action: action.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Chunk, ChunkKind};
    use qdrant_client::qdrant::{point_id, query, vector_input};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn numeric_point_id(id: &PointId) -> Option<u64> {
        match id.point_id_options {
            Some(point_id::PointIdOptions::Num(n)) => Some(n),
            _ => None,
        }
    }

    fn chunk() -> Chunk {
        Chunk {
            graph: Default::default(),
            id: "0123456789abcdef0123456789abcdef".to_string(),
            path: "src/lib.rs".to_string(),
            lang: "rust".to_string(),
            kind: ChunkKind::Function,
            symbol: Some("crate::parse".to_string()),
            signature: Some("fn parse(s: &str)".to_string()),
            doc: None,
            context: None,
            start_line: 3,
            end_line: 9,
            start_byte: 10,
            end_byte: 90,
            text: "fn parse(s: &str) {}".to_string(),
        }
    }

    #[test]
    fn a_new_collection_has_named_dense_and_idf_sparse_vectors_and_the_configured_layout() {
        let mut config = ServerConfig::new("http://localhost:6334/");
        assert_eq!(config.url, "http://localhost:6334");
        config.shard_number = Some(3);
        config.replication_factor = Some(2);
        config.on_disk = true;
        let request = collection_request("quarry-x", 384, &config);
        assert_eq!(request.collection_name, "quarry-x");
        assert_eq!(request.shard_number, Some(3));
        assert_eq!(request.replication_factor, Some(2));
        let Some(vectors_config::Config::ParamsMap(map)) =
            request.vectors_config.and_then(|v| v.config)
        else {
            panic!("named vectors expected");
        };
        let dense = &map.map[DENSE_VECTOR];
        assert_eq!(dense.size, 384);
        assert_eq!(dense.distance, Distance::Cosine as i32);
        // `on_disk` is what servers from 1.15 on understand (newer ones also take `memory`).
        #[allow(deprecated)]
        let on_disk = dense.on_disk;
        assert_eq!(on_disk, Some(true));
        let sparse = request.sparse_vectors_config.expect("sparse config");
        assert_eq!(
            sparse.map[SPARSE_VECTOR].modifier,
            Some(Modifier::Idf as i32)
        );
        let defaults = collection_request("q", 8, &ServerConfig::new("http://h:6334"));
        assert_eq!(defaults.shard_number, None);
        assert_eq!(defaults.replication_factor, None);
    }

    #[test]
    fn points_carry_both_vectors_and_the_whole_chunk() {
        let chunk = chunk();
        let vector = [0.5_f32; 4];
        let request = upsert_request(
            "c",
            &[VectorPoint {
                chunk: &chunk,
                vector: &vector,
            }],
        );
        assert_eq!(request.wait, Some(true));
        let point = &request.points[0];
        assert_eq!(
            numeric_point_id(point.id.as_ref().expect("id")),
            Some(super::super::point_id(&chunk.id))
        );
        let payload: serde_json::Value = Payload::from(point.payload.clone()).into();
        let hit = hit_from_payload(payload.as_object().expect("object"), 1.0).expect("hit");
        assert_eq!(hit.chunk, Some(chunk));
        let names: Vec<&String> = match point
            .vectors
            .as_ref()
            .and_then(|v| v.vectors_options.as_ref())
        {
            Some(qdrant_client::qdrant::vectors::VectorsOptions::Vectors(named)) => {
                named.vectors.keys().collect()
            }
            _ => panic!("named vectors expected"),
        };
        assert!(names.contains(&&DENSE_VECTOR.to_string()));
        assert!(names.contains(&&SPARSE_VECTOR.to_string()));
    }

    #[test]
    fn hybrid_is_one_request_with_two_prefetches_fused_by_rrf() {
        let sparse = super::super::sparse::encode_query("parse header");
        let dense = [0.1_f32; 4];
        let filter = VectorFilter {
            lang: Some("rust".to_string()),
            kind: None,
        };
        let request = query_request(
            "c",
            StoreQuery::Hybrid {
                dense: &dense,
                sparse: &sparse,
            },
            &filter,
            40,
        );
        assert_eq!(request.limit, Some(40));
        assert_eq!(request.prefetch.len(), 2);
        assert_eq!(request.prefetch[0].using.as_deref(), Some(DENSE_VECTOR));
        assert_eq!(request.prefetch[1].using.as_deref(), Some(SPARSE_VECTOR));
        assert!(request.prefetch.iter().all(|p| p.limit == Some(40)));
        assert!(request.prefetch.iter().all(|p| p.filter.is_some()));
        let Some(query::Variant::Rrf(rrf)) = request.query.and_then(|q| q.variant) else {
            panic!("rrf fusion expected");
        };
        assert_eq!(rrf.k, Some(HYBRID_RRF_K));
        let filter = request.filter.expect("filter");
        assert_eq!(filter.must.len(), 1);

        let keyword = query_request(
            "c",
            StoreQuery::Sparse(&sparse),
            &VectorFilter::default(),
            5,
        );
        assert_eq!(keyword.using.as_deref(), Some(SPARSE_VECTOR));
        assert!(keyword.filter.is_none());
        let Some(query::Variant::Nearest(input)) = keyword.query.and_then(|q| q.variant) else {
            panic!("nearest expected");
        };
        assert!(matches!(
            input.variant,
            Some(vector_input::Variant::Sparse(_))
        ));
    }

    fn unavailable() -> QdrantError {
        QdrantError::ResponseError {
            status: tonic::Status::unavailable("tcp connect error"),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_with_backoff_then_reported() {
        let policy = ServerRetries {
            attempts: 3,
            first_backoff: Duration::from_millis(5),
        };
        let calls = AtomicU32::new(0);
        let result = with_retries(policy, Duration::from_secs(1), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 2 { Err(unavailable()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.ok(), Some(2));

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), Failure> = with_retries(policy, Duration::from_secs(1), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(unavailable()) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let message = result.expect_err("fails").to_string();
        assert!(message.contains("unreachable"), "{message}");

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), Failure> = with_retries(policy, Duration::from_secs(1), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(QdrantError::ResponseError {
                    status: tonic::Status::invalid_argument("bad filter"),
                })
            }
        })
        .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a bad request is not retried"
        );
        assert!(result.is_err());

        // The client reports a refused connection as `Internal`; it is still transient.
        calls.store(0, Ordering::SeqCst);
        let result: Result<(), Failure> = with_retries(policy, Duration::from_secs(1), || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(QdrantError::ResponseError {
                    status: tonic::Status::internal(
                        "Failed to connect to http://127.0.0.1:1/: tcp connect error: Connection refused",
                    ),
                })
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let message = result.expect_err("fails").to_string();
        assert!(
            message.starts_with("server unreachable (connection refused)"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_once() {
        let policy = ServerRetries {
            attempts: 3,
            first_backoff: Duration::from_millis(5),
        };
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> = with_retries(policy, Duration::from_millis(50), || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::pending()
        })
        .await;
        assert!(matches!(result, Err(Failure::TimedOut(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_server_that_is_down_is_one_clear_error_soon() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}");
        let mut config = ServerConfig::new(&url);
        config.timeout = Duration::from_secs(3);
        let started = std::time::Instant::now();
        let error = ServerVectorStore::connect(&config, "c")
            .err()
            .expect("fails");
        let message = error.to_string();
        assert!(message.contains(&url), "{message}");
        assert!(message.contains("connecting"), "{message}");
        assert!(message.contains("connection refused"), "{message}");
        assert!(!message.contains("tonic"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
