//! The contract every [`VectorStore`] keeps, as one suite run against each backend.
//!
//! The embedded store runs it always, in both its local and its team shape. A Qdrant server
//! runs it when `QUARRY_TEST_QDRANT_URL` points at one (Qdrant 1.15 or newer); otherwise the
//! server test says it was skipped.

use super::edge::EdgeVectorStore;
use super::server::{ServerConfig, ServerVectorStore};
use super::sparse::encode_query;
use super::*;
use crate::ChunkKind;

const DIMS: usize = 8;

fn chunk(path: &str, n: u32, kind: ChunkKind, symbol: &str, text: &str) -> Chunk {
    let id = blake3::hash(format!("{path}:{n}").as_bytes()).to_hex()[..32].to_string();
    // The graph the chunker finds in the text, as if it were the whole file.
    let mut graph = crate::graph::ChunkGraph::default();
    for piece in crate::chunk::chunk_file(
        path,
        text,
        &crate::ChunkSettings::default(),
        &crate::tokens::ApproxTokenCounter,
    ) {
        // The text sits at the chunk's lines.
        graph
            .sites
            .extend(piece.graph.sites.into_iter().map(|mut site| {
                site.line += n * 10;
                site
            }));
        graph.lines.extend(
            piece
                .graph
                .lines
                .into_iter()
                .map(|(line, text)| (line + n * 10, text)),
        );
    }
    Chunk {
        graph,
        id,
        path: path.to_string(),
        lang: if path.ends_with(".py") {
            "python"
        } else {
            "rust"
        }
        .to_string(),
        kind,
        symbol: Some(symbol.to_string()),
        signature: None,
        doc: None,
        context: None,
        start_line: n * 10 + 1,
        end_line: n * 10 + 9,
        start_byte: 0,
        end_byte: text.len(),
        text: text.to_string(),
    }
}

/// A unit vector pointing mostly along axis `axis`.
fn direction(axis: usize) -> Vec<f32> {
    let mut v = vec![0.05; DIMS];
    v[axis % DIMS] = 1.0;
    v
}

struct Corpus {
    chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
}

fn corpus() -> Corpus {
    let chunks = vec![
        chunk(
            "src/store.rs",
            0,
            ChunkKind::Function,
            "store::open",
            "fn open() { load_config() }",
        ),
        chunk(
            "src/store.rs",
            1,
            ChunkKind::Method,
            "store::Store::flush",
            "fn flush(&mut self) {}",
        ),
        chunk(
            "src/config.rs",
            0,
            ChunkKind::Function,
            "config::load_config",
            "fn load_config() -> Config {}",
        ),
        chunk(
            "app/cli.py",
            0,
            ChunkKind::Function,
            "cli.main",
            "def main(): retry_with_backoff()",
        ),
        chunk(
            "app/net.py",
            0,
            ChunkKind::Function,
            "net.retry_with_backoff",
            "def retry_with_backoff(): pass",
        ),
    ];
    let vectors = (0..chunks.len()).map(direction).collect();
    Corpus { chunks, vectors }
}

fn points(corpus: &Corpus) -> Vec<VectorPoint<'_>> {
    corpus
        .chunks
        .iter()
        .zip(&corpus.vectors)
        .map(|(chunk, vector)| VectorPoint { chunk, vector })
        .collect()
}

/// Upsert, idempotence, count, delete by file, filtered dense queries.
fn dense_contract(store: &mut dyn VectorStore) {
    let corpus = corpus();
    store.upsert(&points(&corpus)).expect("upsert");
    store.commit().expect("commit");
    assert_eq!(store.count().expect("count"), 5);

    // Writing the same chunks again replaces them: a repaired batch never duplicates.
    store.upsert(&points(&corpus)).expect("upsert again");
    store.commit().expect("commit");
    assert_eq!(store.count().expect("count"), 5);

    let hits = store
        .search(&direction(2), &VectorFilter::default(), 3)
        .expect("search");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].chunk_id, corpus.chunks[2].id, "nearest first");
    assert_eq!(hits[0].path, "src/config.rs");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));

    let python = VectorFilter {
        lang: Some("python".to_string()),
        kind: None,
    };
    let hits = store.search(&direction(0), &python, 10).expect("filtered");
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.path.ends_with(".py")));
    let methods = VectorFilter {
        lang: None,
        kind: Some("method".to_string()),
    };
    let hits = store.search(&direction(0), &methods, 10).expect("by kind");
    assert_eq!(
        hits.iter().map(|h| h.chunk_id.as_str()).collect::<Vec<_>>(),
        [corpus.chunks[1].id.as_str()]
    );

    // Points by id: the ones that exist, whatever the order asked.
    let asked = [
        corpus.chunks[3].id.clone(),
        "no-such-chunk".to_string(),
        corpus.chunks[0].id.clone(),
    ];
    let mut found: Vec<String> = store
        .points_by_id(&asked)
        .expect("by id")
        .into_iter()
        .map(|h| h.chunk_id)
        .collect();
    found.sort();
    let mut expected = vec![corpus.chunks[0].id.clone(), corpus.chunks[3].id.clone()];
    expected.sort();
    assert_eq!(found, expected);

    store
        .delete_paths(&["src/store.rs".to_string(), "app/absent.py".to_string()])
        .expect("delete");
    store.commit().expect("commit");
    assert_eq!(store.count().expect("count"), 3);
    let hits = store
        .search(&direction(0), &VectorFilter::default(), 10)
        .expect("search");
    assert!(hits.iter().all(|h| h.path != "src/store.rs"));
}

/// Team-shaped stores: whole chunks in hits, BM25 and hybrid queries.
fn team_contract(store: &mut dyn VectorStore) {
    let corpus = corpus();
    store.upsert(&points(&corpus)).expect("upsert");
    store.commit().expect("commit");

    let keyword = encode_query("retry_with_backoff");
    let hits = store
        .query(StoreQuery::Sparse(&keyword), &VectorFilter::default(), 10)
        .expect("sparse");
    assert_eq!(hits.len(), 2, "only chunks with the term: {hits:?}");
    assert_eq!(
        hits[0].chunk_id, corpus.chunks[4].id,
        "the definition first"
    );
    let chunk = hits[0].chunk.as_ref().expect("whole chunk");
    assert_eq!(chunk, &corpus.chunks[4]);
    let by_id = store
        .points_by_id(std::slice::from_ref(&corpus.chunks[1].id))
        .expect("by id");
    assert_eq!(by_id.len(), 1);
    assert_eq!(
        by_id[0].chunk.as_ref(),
        Some(&corpus.chunks[1]),
        "whole chunk by id"
    );

    // The vector points at `load_config`, the terms at `retry_with_backoff`: both show up.
    let dense = direction(2);
    let hits = store
        .query(
            StoreQuery::Hybrid {
                dense: &dense,
                sparse: &keyword,
            },
            &VectorFilter::default(),
            5,
        )
        .expect("hybrid");
    let ids: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
    assert!(ids.contains(&corpus.chunks[2].id.as_str()), "{ids:?}");
    assert!(ids.contains(&corpus.chunks[4].id.as_str()), "{ids:?}");
    assert!(hits.iter().all(|h| h.chunk.is_some()));

    // The code graph: every point naming a name, with its whole chunk and graph.
    use crate::graph::NameRole;
    let ids = |hits: Vec<VectorHit>| -> Vec<String> {
        let mut ids: Vec<String> = hits.into_iter().map(|h| h.chunk_id).collect();
        ids.sort();
        ids
    };
    let callers = store
        .points_naming(NameRole::References, &["load_config".to_string()])
        .expect("references");
    assert_eq!(
        callers[0].chunk.as_ref(),
        Some(&corpus.chunks[0]),
        "graph and all"
    );
    assert_eq!(ids(callers), [corpus.chunks[0].id.clone()]);
    let mut both = vec![corpus.chunks[2].id.clone(), corpus.chunks[4].id.clone()];
    both.sort();
    let defining = store
        .points_naming(
            NameRole::Defines,
            &["load_config".to_string(), "retry_with_backoff".to_string()],
        )
        .expect("definitions");
    assert_eq!(ids(defining), both);
    assert!(
        store
            .points_naming(NameRole::Defines, &["nowhere".to_string()])
            .expect("none")
            .is_empty()
    );

    let rust_only = VectorFilter {
        lang: Some("rust".to_string()),
        kind: None,
    };
    let hits = store
        .query(
            StoreQuery::Hybrid {
                dense: &dense,
                sparse: &keyword,
            },
            &rust_only,
            5,
        )
        .expect("filtered hybrid");
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.path.ends_with(".rs")), "{hits:?}");
}

#[test]
fn edge_local_shape_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        EdgeVectorStore::open_or_create(&dir.path().join("shard"), dir.path(), DIMS).expect("open");
    dense_contract(&mut store);
    let hits = store
        .search(&direction(2), &VectorFilter::default(), 1)
        .expect("search");
    assert!(hits[0].chunk.is_none(), "the local store keeps no text");
}

/// A closed shard's log is trimmed, and writes after the trim are kept: the log's numbering
/// goes on where it was, so no segment takes a new write for an old one.
#[test]
fn edge_shard_keeps_writes_across_closes_that_trim_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = dir.path().join("shard");
    let wide = 384;
    let vector = |i: u32| -> Vec<f32> { (0..wide).map(|d| ((i + d) % 7) as f32 + 1.0).collect() };
    let closed_logs = || {
        std::fs::read_dir(shard.join("wal"))
            .expect("wal")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("closed-"))
            .count()
    };
    // Each round writes more than a log segment (4 MiB) holds, so segments are closed.
    for round in 0..3u32 {
        let mut store =
            EdgeVectorStore::open_or_create(&shard, dir.path(), wide as usize).expect("open");
        let chunks: Vec<Chunk> = (0..3000)
            .map(|i| {
                chunk(
                    &format!("src/r{round}.rs"),
                    i,
                    ChunkKind::Function,
                    "f",
                    "fn f() {}",
                )
            })
            .collect();
        let vectors: Vec<Vec<f32>> = (0..3000).map(vector).collect();
        for (chunks, vectors) in chunks.chunks(500).zip(vectors.chunks(500)) {
            let points: Vec<VectorPoint<'_>> = chunks
                .iter()
                .zip(vectors)
                .map(|(chunk, vector)| VectorPoint { chunk, vector })
                .collect();
            store.upsert(&points).expect("upsert");
        }
        store.commit().expect("commit");
        store.close().expect("close");
        assert!(closed_logs() <= 1, "the log was not trimmed");
    }
    let store = EdgeVectorStore::open(&shard, dir.path()).expect("reopen");
    assert_eq!(store.count().expect("count"), 9000);
    let filter = VectorFilter::default();
    let hits = store.search(&vector(5), &filter, 3).expect("search");
    assert!(!hits.is_empty());
}

#[test]
fn edge_team_shape_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |name: &str| {
        EdgeVectorStore::open_or_create_shaped(
            &dir.path().join(name),
            dir.path(),
            DIMS,
            StoreShape::team(),
        )
        .expect("open")
    };
    dense_contract(&mut open("dense"));
    team_contract(&mut open("team"));
}

#[test]
fn qdrant_server_keeps_the_contract() {
    let Ok(url) = std::env::var("QUARRY_TEST_QDRANT_URL") else {
        // Written past the test harness's capture, so every run shows it.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED qdrant_server_keeps_the_contract: set QUARRY_TEST_QDRANT_URL to a Qdrant server (1.15 or newer) to run it\n",
        );
        return;
    };
    let config = ServerConfig::new(&url);
    let run = std::process::id();
    for (suffix, contract) in [
        ("dense", dense_contract as fn(&mut dyn VectorStore)),
        ("team", team_contract),
    ] {
        let name = format!("quarry-contract-{run}-{suffix}");
        let mut store = ServerVectorStore::connect(&config, &name).expect("connect");
        store.drop_collections().expect("clean");
        store.create(DIMS as u64).expect("create");
        contract(&mut store);
        store.drop_collections().expect("drop");
    }
}
