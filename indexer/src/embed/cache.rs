//! A content-addressed store of computed vectors, on disk beside the index.
//!
//! One append-only file per model: a header naming the model and the vector size, then
//! records of a 16-byte key ([`super::cache_key`]) and the vector. Vectors are appended as
//! they are computed and flushed with every commit, so an interrupted index run resumes
//! without re-embedding what it already did. A torn last record (a crash mid-write) is
//! ignored and overwritten.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::IndexError;

const MAGIC: &[u8; 4] = b"QVC1";

/// Vectors by content key, for one model.
pub struct VectorCache {
    path: PathBuf,
    dims: usize,
    vectors: HashMap<[u8; 16], Vec<f32>>,
    writer: Option<BufWriter<File>>,
    records_on_disk: usize,
}

impl VectorCache {
    /// Opens (or creates) the cache for `model_id` in `dir`.
    pub fn open(dir: &Path, model_id: &str, dims: usize) -> Result<Self, IndexError> {
        fs::create_dir_all(dir).map_err(IndexError::io("creating", dir))?;
        let name = blake3::hash(model_id.as_bytes()).to_hex();
        let path = dir.join(format!("cache-{}.bin", &name[..16]));
        let header = header(model_id, dims);
        let mut vectors = HashMap::new();
        let mut valid_len = header.len() as u64;
        let mut bytes = Vec::new();
        if let Ok(mut file) = File::open(&path) {
            file.read_to_end(&mut bytes)
                .map_err(IndexError::io("reading", &path))?;
        }
        if bytes.starts_with(&header) {
            let record = 16 + dims * 4;
            let body = &bytes[header.len()..];
            for raw in body.chunks_exact(record) {
                let mut key = [0u8; 16];
                key.copy_from_slice(&raw[..16]);
                let vector = raw[16..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                vectors.insert(key, vector);
            }
            valid_len += (body.len() / record * record) as u64;
        } else {
            // Missing, another model's, or unreadable: start over.
            fs::write(&path, &header).map_err(IndexError::io("writing", &path))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(IndexError::io("opening", &path))?;
        // Drop a torn tail so appends line up with whole records.
        file.set_len(valid_len)
            .map_err(IndexError::io("truncating", &path))?;
        let mut file = file;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(IndexError::io("seeking", &path))?;
        let records_on_disk = vectors.len();
        Ok(VectorCache {
            path,
            dims,
            vectors,
            writer: Some(BufWriter::new(file)),
            records_on_disk,
        })
    }

    /// The vector computed for `key`, if any.
    pub fn get(&self, key: &[u8; 16]) -> Option<&[f32]> {
        self.vectors.get(key).map(Vec::as_slice)
    }

    /// Remembers a vector, appending it to the file.
    pub fn put(&mut self, key: [u8; 16], vector: Vec<f32>) -> Result<(), IndexError> {
        if vector.len() != self.dims || self.vectors.contains_key(&key) {
            return Ok(());
        }
        if let Some(writer) = self.writer.as_mut() {
            let mut record = Vec::with_capacity(16 + self.dims * 4);
            record.extend_from_slice(&key);
            for value in &vector {
                record.extend_from_slice(&value.to_le_bytes());
            }
            writer
                .write_all(&record)
                .map_err(IndexError::io("writing", &self.path))?;
            self.records_on_disk += 1;
        }
        self.vectors.insert(key, vector);
        Ok(())
    }

    /// Makes every vector put so far durable.
    pub fn flush(&mut self) -> Result<(), IndexError> {
        if let Some(writer) = self.writer.as_mut() {
            writer
                .flush()
                .and_then(|()| writer.get_ref().sync_data())
                .map_err(IndexError::io("writing", &self.path))?;
        }
        Ok(())
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
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
        cache.put([1; 16], vec![1.0, 2.0, 3.0]).unwrap();
        cache.put([2; 16], vec![4.0, 5.0, 6.0]).unwrap();
        cache.flush().unwrap();
        let path = cache.path.clone();
        drop(cache);
        // A crash mid-append leaves half a record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[9; 20]).unwrap();
        drop(file);

        let mut cache = VectorCache::open(dir.path(), "model-a", 3).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&[2; 16]), Some(&[4.0, 5.0, 6.0][..]));
        cache.put([3; 16], vec![7.0, 8.0, 9.0]).unwrap();
        cache.flush().unwrap();
        drop(cache);
        let cache = VectorCache::open(dir.path(), "model-a", 3).unwrap();
        assert_eq!(cache.get(&[3; 16]), Some(&[7.0, 8.0, 9.0][..]));

        let other = VectorCache::open(dir.path(), "model-b", 3).unwrap();
        assert!(other.is_empty(), "vectors never cross models");
    }
}
