//! The keyword index: BM25 over chunks with tantivy.
//!
//! One document per chunk. Text fields (symbol, signature, doc, enclosing headers, path and
//! body) go through the code-aware [`tokenizer`]; the symbol and signature weigh more than the
//! body, so a query naming a function ranks its definition above its callers. `path`,
//! `lang` and `kind` are also stored raw for exact deletes and filters, and the code graph's
//! names (`defs`, `refs`) raw for exhaustive lookups, with the sites stored beside them.

pub mod tokenizer;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, META_LOCK, MmapDirectory, WatchCallback,
    WatchHandle, WritePtr,
};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::IndexError;
use crate::chunk::{Chunk, ChunkKind};
use crate::graph::{ChunkGraph, NameRole};
use tokenizer::{CODE_TOKENIZER, analyzer};

/// Memory the writer may buffer before flushing a segment, across its threads.
const WRITER_MEMORY: usize = 96 * 1024 * 1024;

/// How much each searchable field of a chunk counts towards its BM25 score. The keyword
/// index boosts its queries by these, and the team index's sparse vectors
/// ([`crate::vector::sparse`]) weigh their terms by them, so both rank alike.
pub mod field_boost {
    /// The qualified symbol.
    pub const SYMBOL: f32 = 3.0;
    /// The signature.
    pub const SIGNATURE: f32 = 2.0;
    /// The file's path.
    pub const PATH: f32 = 1.0;
    /// The doc comment.
    pub const DOC: f32 = 1.0;
    /// The enclosing headers.
    pub const CONTEXT: f32 = 0.5;
    /// The code itself.
    pub const BODY: f32 = 1.0;
}

const BOOSTS: [(FieldName, f32); 6] = [
    (FieldName::Symbol, field_boost::SYMBOL),
    (FieldName::Signature, field_boost::SIGNATURE),
    (FieldName::Path, field_boost::PATH),
    (FieldName::Doc, field_boost::DOC),
    (FieldName::Context, field_boost::CONTEXT),
    (FieldName::Body, field_boost::BODY),
];

#[derive(Clone, Copy)]
enum FieldName {
    Symbol,
    Signature,
    Path,
    Doc,
    Context,
    Body,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    path: Field,
    path_terms: Field,
    lang: Field,
    kind: Field,
    symbol: Field,
    signature: Field,
    doc: Field,
    context: Field,
    body: Field,
    start_line: Field,
    end_line: Field,
    start_byte: Field,
    end_byte: Field,
    defs: Field,
    refs: Field,
    graph: Field,
}

impl Fields {
    fn schema() -> Schema {
        let mut builder = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(CODE_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs);
        let text_stored = TextOptions::default()
            .set_indexing_options(indexing.clone())
            .set_stored();
        let text_only = TextOptions::default().set_indexing_options(indexing);
        builder.add_text_field("id", STRING | STORED);
        builder.add_text_field("path", STRING | STORED);
        builder.add_text_field("path_terms", text_only);
        builder.add_text_field("lang", STRING | STORED);
        builder.add_text_field("kind", STRING | STORED);
        builder.add_text_field("symbol", text_stored.clone());
        builder.add_text_field("signature", text_stored.clone());
        builder.add_text_field("doc", text_stored.clone());
        builder.add_text_field("context", text_stored.clone());
        builder.add_text_field("body", text_stored);
        for name in ["start_line", "end_line", "start_byte", "end_byte"] {
            builder.add_u64_field(name, STORED);
        }
        // The code graph: the names a chunk defines and references, raw, for exhaustive
        // lookups by name; its sites in their compact form.
        // One value per chunk, the names separated by spaces (identifiers hold none): a
        // value per name costs a document field each.
        let names = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("whitespace")
                .set_index_option(IndexRecordOption::Basic),
        );
        builder.add_text_field(NameRole::Defines.field(), names.clone());
        builder.add_text_field(NameRole::References.field(), names);
        builder.add_text_field("graph", STORED);
        builder.build()
    }

    fn resolve(schema: &Schema) -> Result<Self, String> {
        let get = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| format!("keyword index has no `{name}` field"))
        };
        Ok(Fields {
            id: get("id")?,
            path: get("path")?,
            path_terms: get("path_terms")?,
            lang: get("lang")?,
            kind: get("kind")?,
            symbol: get("symbol")?,
            signature: get("signature")?,
            doc: get("doc")?,
            context: get("context")?,
            body: get("body")?,
            start_line: get("start_line")?,
            end_line: get("end_line")?,
            start_byte: get("start_byte")?,
            end_byte: get("end_byte")?,
            defs: get(NameRole::Defines.field())?,
            refs: get(NameRole::References.field())?,
            graph: get("graph")?,
        })
    }

    fn by_name(&self, name: FieldName) -> Field {
        match name {
            FieldName::Symbol => self.symbol,
            FieldName::Signature => self.signature,
            FieldName::Path => self.path_terms,
            FieldName::Doc => self.doc,
            FieldName::Context => self.context,
            FieldName::Body => self.body,
        }
    }
}

/// A keyword query.
#[derive(Debug, Clone)]
pub struct KeywordQuery<'a> {
    /// Free text: words, identifiers, paths.
    pub text: &'a str,
    /// Only chunks of this language.
    pub lang: Option<&'a str>,
    /// Only chunks of this kind.
    pub kind: Option<&'a str>,
    /// At most this many hits.
    pub limit: usize,
}

/// A chunk that matched, with its BM25 score.
#[derive(Debug, Clone)]
pub struct KeywordHit {
    /// Higher is better.
    pub score: f32,
    /// The stored chunk.
    pub chunk: Chunk,
}

/// The keyword index's files as Quarry opens them: tantivy's memory-mapped directory, except
/// that the meta lock a reader cannot create (a read-only file system, another user's
/// index) is taken as granted. A reader takes that lock only so that a writer's garbage
/// collection does not delete files while it loads; where the reader may not create a file,
/// a reload that races a writer fails and is retried by the next search, never corrupting
/// anything. Every other lock (the writer's) and every write behave as tantivy's.
#[derive(Clone, Debug)]
struct ReaderDirectory(MmapDirectory);

impl Directory for ReaderDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.0.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.0.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.0.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.0.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.0.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.0.atomic_write(path, data)
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        self.0.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        match self.0.acquire_lock(lock) {
            Err(LockError::IoError(error))
                if lock.filepath == META_LOCK.filepath
                    && matches!(
                        error.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                Ok(DirectoryLock::from(Box::new(())))
            }
            other => other,
        }
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.0.watch(callback)
    }
}

/// The tantivy index of one Quarry index directory.
pub struct KeywordIndex {
    dir: PathBuf,
    index: Index,
    fields: Fields,
    reader: IndexReader,
    writer: Option<IndexWriter>,
}

impl KeywordIndex {
    /// Opens the index in `dir`, reporting anything unreadable as [`IndexError::Corrupt`].
    pub fn open(dir: &Path, index_dir: &Path) -> Result<Self, IndexError> {
        let corrupt = |reason: String| IndexError::Corrupt {
            index_dir: index_dir.to_path_buf(),
            reason,
        };
        if !dir.join("meta.json").is_file() {
            return Err(corrupt("keyword index is missing".to_string()));
        }
        let opening = |e: tantivy::TantivyError| IndexError::opening(index_dir, "keyword index", e);
        let directory = MmapDirectory::open(dir)
            .map_err(|e| IndexError::opening(index_dir, "keyword index", e))?;
        let index = Index::open(ReaderDirectory(directory)).map_err(opening)?;
        let fields = Fields::resolve(&index.schema()).map_err(corrupt)?;
        Self::from_index(dir, index, fields).map_err(opening)
    }

    /// Creates an empty index in `dir`, replacing whatever was there.
    pub fn create(dir: &Path) -> Result<Self, IndexError> {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(IndexError::io("removing", dir))?;
        }
        fs::create_dir_all(dir).map_err(IndexError::io("creating", dir))?;
        let schema = Fields::schema();
        let fields = Fields::resolve(&schema).map_err(|reason| IndexError::Corrupt {
            index_dir: dir.to_path_buf(),
            reason,
        })?;
        let index = Index::create_in_dir(dir, schema)?;
        Ok(Self::from_index(dir, index, fields)?)
    }

    fn from_index(dir: &Path, index: Index, fields: Fields) -> tantivy::Result<Self> {
        index.tokenizers().register(CODE_TOKENIZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KeywordIndex {
            dir: dir.to_path_buf(),
            index,
            fields,
            reader,
            writer: None,
        })
    }

    fn writer(&mut self) -> Result<&mut IndexWriter, IndexError> {
        if self.writer.is_none() {
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 4);
            self.writer = Some(self.index.writer_with_num_threads(threads, WRITER_MEMORY)?);
        }
        self.writer.as_mut().ok_or_else(|| IndexError::Corrupt {
            index_dir: self.dir.clone(),
            reason: "keyword writer unavailable".to_string(),
        })
    }

    /// The best chunks for a query by BM25, best first. A query with no searchable words
    /// matches nothing.
    pub fn search(&self, query: &KeywordQuery<'_>) -> Result<Vec<KeywordHit>, IndexError> {
        let terms = query_terms(query.text);
        if terms.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in &terms {
            for (name, boost) in BOOSTS {
                let field = self.fields.by_name(name);
                let term_query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                should.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(term_query), boost)),
                ));
            }
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(should)))];
        for (field, value) in [
            (self.fields.lang, query.lang),
            (self.fields.kind, query.kind),
        ] {
            if let Some(value) = value {
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        let full = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&full, &TopDocs::with_limit(query.limit).order_by_score())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            hits.push(KeywordHit {
                score,
                chunk: self.to_chunk(&doc),
            });
        }
        Ok(hits)
    }

    /// The stored chunks with these ids (those that exist), by id.
    pub fn chunks_by_id(&self, ids: &[String]) -> Result<HashMap<String, Chunk>, IndexError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = ids
            .iter()
            .map(|id| {
                let query: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.id, id),
                    IndexRecordOption::Basic,
                ));
                (Occur::Should, query)
            })
            .collect();
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(ids.len()).order_by_score(),
        )?;
        let mut chunks = HashMap::with_capacity(top.len());
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let chunk = self.to_chunk(&doc);
            chunks.insert(chunk.id.clone(), chunk);
        }
        Ok(chunks)
    }

    fn to_chunk(&self, doc: &TantivyDocument) -> Chunk {
        let f = &self.fields;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
        };
        let number = |field: Field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let chunk = Chunk {
            id: text(f.id).unwrap_or_default(),
            path: text(f.path).unwrap_or_default(),
            lang: text(f.lang).unwrap_or_default(),
            kind: text(f.kind)
                .and_then(|k| serde_json::from_value(serde_json::Value::String(k)).ok())
                .unwrap_or(ChunkKind::Text),
            symbol: text(f.symbol),
            signature: text(f.signature),
            doc: text(f.doc),
            context: text(f.context),
            start_line: number(f.start_line) as u32,
            end_line: number(f.end_line) as u32,
            start_byte: number(f.start_byte) as usize,
            end_byte: number(f.end_byte) as usize,
            text: text(f.body).unwrap_or_default(),
            graph: ChunkGraph::default(),
        };
        match text(f.graph) {
            Some(stored) => chunk.with_stored_graph(&stored),
            None => chunk,
        }
    }

    fn to_document(&self, chunk: &Chunk) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &chunk.id);
        doc.add_text(f.path, &chunk.path);
        doc.add_text(f.path_terms, &chunk.path);
        doc.add_text(f.lang, &chunk.lang);
        doc.add_text(f.kind, chunk.kind.as_str());
        for (field, value) in [
            (f.symbol, &chunk.symbol),
            (f.signature, &chunk.signature),
            (f.doc, &chunk.doc),
            (f.context, &chunk.context),
        ] {
            if let Some(value) = value {
                doc.add_text(field, value);
            }
        }
        doc.add_text(f.body, &chunk.text);
        doc.add_u64(f.start_line, u64::from(chunk.start_line));
        doc.add_u64(f.end_line, u64::from(chunk.end_line));
        doc.add_u64(f.start_byte, chunk.start_byte as u64);
        doc.add_u64(f.end_byte, chunk.end_byte as u64);
        if !chunk.graph.is_empty() {
            doc.add_text(f.defs, chunk.graph.defined_names().join(" "));
            doc.add_text(f.refs, chunk.graph.referenced_names().join(" "));
            doc.add_text(f.graph, chunk.stored_graph());
        }
        doc
    }

    /// Every chunk of the file at `path`, in index order.
    pub fn chunks_of_path(&self, path: &str) -> Result<Vec<Chunk>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.path, path),
            IndexRecordOption::Basic,
        );
        let searcher = self.reader.searcher();
        let mut addresses: Vec<_> = searcher
            .search(&query, &DocSetCollector)?
            .into_iter()
            .collect();
        addresses.sort_unstable();
        let mut chunks = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher.doc(address)?;
            chunks.push(self.to_chunk(&doc));
        }
        Ok(chunks)
    }

    /// Every chunk that defines (or references) one of `names`: exhaustive, not top-k, in
    /// no particular order.
    pub fn chunks_naming(
        &self,
        role: NameRole,
        names: &[String],
    ) -> Result<Vec<Chunk>, IndexError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let field = match role {
            NameRole::Defines => self.fields.defs,
            NameRole::References => self.fields.refs,
        };
        let clauses: Vec<(Occur, Box<dyn Query>)> = names
            .iter()
            .map(|name| {
                let query: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(field, name),
                    IndexRecordOption::Basic,
                ));
                (Occur::Should, query)
            })
            .collect();
        let searcher = self.reader.searcher();
        let addresses = searcher.search(&BooleanQuery::new(clauses), &DocSetCollector)?;
        let mut addresses: Vec<_> = addresses.into_iter().collect();
        addresses.sort_unstable();
        let mut chunks = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher.doc(address)?;
            chunks.push(self.to_chunk(&doc));
        }
        Ok(chunks)
    }
}

/// The distinct analysed terms of a query, in order of first appearance.
fn query_terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut terms: Vec<String> = Vec::new();
    while let Some(token) = stream.next() {
        if !terms.contains(&token.text) {
            terms.push(token.text.clone());
        }
    }
    terms
}

/// The writes a sync makes. Every write replaces a file's chunks wholesale (delete by path,
/// then add), so a sync interrupted anywhere is repaired by running it again; writes become
/// visible to readers atomically on commit.
impl KeywordIndex {
    /// Removes every chunk of these files.
    pub fn delete_paths(&mut self, paths: &[String]) -> Result<(), IndexError> {
        let field = self.fields.path;
        let writer = self.writer()?;
        for path in paths {
            writer.delete_term(Term::from_field_text(field, path));
        }
        Ok(())
    }

    /// Adds chunks. A file's old chunks must have been deleted first, in the same commit.
    pub fn add_chunks(&mut self, chunks: &[Chunk]) -> Result<(), IndexError> {
        let docs: Vec<TantivyDocument> = chunks.iter().map(|c| self.to_document(c)).collect();
        let writer = self.writer()?;
        for doc in docs {
            writer.add_document(doc)?;
        }
        Ok(())
    }

    /// Makes all writes since the last commit durable and visible, all or nothing.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        if let Some(writer) = self.writer.as_mut() {
            writer.commit()?;
            share_like_dir(&self.dir);
        }
        self.reader.reload()?;
        Ok(())
    }

    /// Number of chunks visible to readers.
    pub fn count(&mut self) -> Result<u64, IndexError> {
        self.reader.reload()?;
        Ok(self.reader.searcher().num_docs())
    }

    /// Lets background work (segment merges) finish before the process exits.
    pub fn finish(&mut self) -> Result<(), IndexError> {
        if let Some(writer) = self.writer.take() {
            writer.wait_merging_threads()?;
            share_like_dir(&self.dir);
        }
        Ok(())
    }
}

/// Gives the files tantivy writes through a temporary file (`meta.json`, `.managed.json`,
/// created owner-only) the permissions of every other file of the index: what the
/// directory allows, without execute. An index others may read (a shared checkout, CI's
/// index read by developers) is then readable whole.
fn share_like_dir(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = fs::metadata(dir) else { return };
        let mode = meta.permissions().mode() & 0o666;
        for name in ["meta.json", ".managed.json"] {
            // Best effort: a file that cannot be changed stays as tantivy wrote it.
            let _ = fs::set_permissions(dir.join(name), fs::Permissions::from_mode(mode));
        }
    }
}
