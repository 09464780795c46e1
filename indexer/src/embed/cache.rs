//! A content-addressed store of computed vectors, on disk beside the index.
//!
//! One append-only file per model: a header naming the model and the vector size, then
//! records of a 16-byte key ([`super::cache_key`]) and the vector. Memory holds only where
//! each key's record is. Vectors are appended as
//! they are computed and flushed with every commit, so an interrupted index run resumes
//! without re-embedding what it already did. A torn last record (a crash mid-write) is
//! ignored and overwritten.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::IndexError;

const MAGIC: &[u8; 4] = b"QVC1";

/// Where each key's vector starts in the cache file.
type Offsets = HashMap<[u8; 16], u64>;

/// Vectors by content key, for one model.
///
/// Only the keys and where their records start are held in memory; a vector is read from
/// the file when asked for. Holding the vectors themselves cost a Django-sized index ~70 MB
/// for the whole run, for vectors that are each read once or twice.
pub struct VectorCache {
    path: PathBuf,
    dims: usize,
    offsets: Offsets,
    reader: File,
    writer: BufWriter<File>,
    /// The file's length with what `writer` still buffers.
    len: u64,
    /// How much of the file `reader` may read: what `writer` has handed to the OS.
    written: u64,
}

impl VectorCache {
    /// Opens (or creates) the cache for `model_id` in `dir`.
    pub fn open(dir: &Path, model_id: &str, dims: usize) -> Result<Self, IndexError> {
        fs::create_dir_all(dir).map_err(IndexError::io("creating", dir))?;
        let name = blake3::hash(model_id.as_bytes()).to_hex();
        let path = dir.join(format!("cache-{}.bin", &name[..16]));
        let header = header(model_id, dims);
        let found = match File::open(&path) {
            Ok(file) => read_keys(file, &header, dims).map_err(IndexError::io("reading", &path))?,
            Err(_) => None,
        };
        let (offsets, valid_len) = match found {
            Some(found) => found,
            None => {
                // Missing, another model's, or unreadable: start over.
                fs::write(&path, &header).map_err(IndexError::io("writing", &path))?;
                (Offsets::new(), header.len() as u64)
            }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(IndexError::io("opening", &path))?;
        // Drop a torn tail so appends line up with whole records.
        file.set_len(valid_len)
            .map_err(IndexError::io("truncating", &path))?;
        file.seek(SeekFrom::End(0))
            .map_err(IndexError::io("seeking", &path))?;
        let reader = File::open(&path).map_err(IndexError::io("opening", &path))?;
        Ok(VectorCache {
            path,
            dims,
            offsets,
            reader,
            writer: BufWriter::new(file),
            len: valid_len,
            written: valid_len,
        })
    }

    /// Whether a vector was computed for `key`.
    pub fn contains(&self, key: &[u8; 16]) -> bool {
        self.offsets.contains_key(key)
    }

    /// The vector computed for `key`, if any, read from the file.
    pub fn get(&mut self, key: &[u8; 16]) -> Result<Option<Vec<f32>>, IndexError> {
        let Some(&offset) = self.offsets.get(key) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; self.dims * 4];
        if offset + bytes.len() as u64 > self.written {
            self.writer
                .flush()
                .map_err(IndexError::io("writing", &self.path))?;
            self.written = self.len;
        }
        self.reader
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.reader.read_exact(&mut bytes))
            .map_err(IndexError::io("reading", &self.path))?;
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ))
    }

    /// Remembers a vector, appending it to the file.
    pub fn put(&mut self, key: [u8; 16], vector: &[f32]) -> Result<(), IndexError> {
        if vector.len() != self.dims || self.offsets.contains_key(&key) {
            return Ok(());
        }
        let mut record = Vec::with_capacity(16 + self.dims * 4);
        record.extend_from_slice(&key);
        for value in vector {
            record.extend_from_slice(&value.to_le_bytes());
        }
        self.writer
            .write_all(&record)
            .map_err(IndexError::io("writing", &self.path))?;
        self.offsets.insert(key, self.len + 16);
        self.len += record.len() as u64;
        Ok(())
    }

    /// Makes every vector put so far durable.
    pub fn flush(&mut self) -> Result<(), IndexError> {
        self.writer
            .flush()
            .and_then(|()| self.writer.get_ref().sync_data())
            .map_err(IndexError::io("writing", &self.path))?;
        self.written = self.len;
        Ok(())
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

/// The offsets of every whole record in a cache file that starts with `header`, and the
/// length they fill; `None` when the file is another model's or not a cache.
fn read_keys(file: File, header: &[u8], dims: usize) -> std::io::Result<Option<(Offsets, u64)>> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut found = vec![0u8; header.len()];
    if reader.read_exact(&mut found).is_err() || found != header {
        return Ok(None);
    }
    let mut offsets = Offsets::new();
    let mut at = header.len() as u64;
    let mut record = vec![0u8; 16 + dims * 4];
    loop {
        match reader.read_exact(&mut record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&record[..16]);
        offsets.entry(key).or_insert(at + 16);
        at += record.len() as u64;
    }
    Ok(Some((offsets, at)))
}

fn header(model_id: &str, dims: usize) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&(dims as u32).to_le_bytes());
    header.extend_from_slice(&(model_id.len() as u32).to_le_bytes());
    header.extend_from_slice(model_id.as_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = VectorCache::open(dir.path(), "model-a", 3).unwrap();
        cache.put([1; 16], &[1.0, 2.0, 3.0]).unwrap();
        cache.put([2; 16], &[4.0, 5.0, 6.0]).unwrap();
        // Read back before any flush: what the writer buffers is handed over first.
        assert_eq!(cache.get(&[1; 16]).unwrap(), Some(vec![1.0, 2.0, 3.0]));
        cache.flush().unwrap();
        let path = cache.path.clone();
        drop(cache);
        // A crash mid-append leaves half a record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[9; 20]).unwrap();
        drop(file);

        let mut cache = VectorCache::open(dir.path(), "model-a", 3).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&[2; 16]).unwrap(), Some(vec![4.0, 5.0, 6.0]));
        cache.put([3; 16], &[7.0, 8.0, 9.0]).unwrap();
        cache.flush().unwrap();
        drop(cache);
        let mut cache = VectorCache::open(dir.path(), "model-a", 3).unwrap();
        assert_eq!(cache.get(&[3; 16]).unwrap(), Some(vec![7.0, 8.0, 9.0]));
        assert!(cache.contains(&[1; 16]) && !cache.contains(&[4; 16]));

        let other = VectorCache::open(dir.path(), "model-b", 3).unwrap();
        assert!(other.is_empty(), "vectors never cross models");
    }
}
