//! The daemon's log: `tracing` to `.quarry/daemon.log`, rotated by size so a daemon that runs
//! for weeks never fills the disk, and to stderr with `-v`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A log file grows to this size before it is rotated.
const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;
/// Rotated files kept (`daemon.log.1`, `daemon.log.2`).
const KEEP: usize = 2;

/// Sends the process's `tracing` output to `path` (info, or debug with `-vv`) and, with
/// `verbose`, to stderr too.
pub fn init(path: &Path, verbose: u8) -> io::Result<()> {
    let file = RotatingFile::open(path)?;
    let writer = Arc::new(Mutex::new(file));
    // Quarry's own events at info (debug with -vv); dependencies only when they warn, and
    // the vector store's start-up chatter not at all.
    let level = if verbose >= 2 {
        "debug,qdrant_edge=error,notify=warn"
    } else {
        "warn,quarry=info,quarry_indexer=info,quarry_retriever=info,quarry_orchestrator=info,qdrant_edge=error,notify=warn"
    };
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()));
    let stderr_layer =
        (verbose > 0).then(|| tracing_subscriber::fmt::layer().with_writer(io::stderr));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(io::Error::other)
}

struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
}

impl RotatingFile {
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        let mut log = RotatingFile {
            path: path.to_path_buf(),
            file,
            written,
        };
        if log.written >= MAX_LOG_BYTES {
            log.rotate()?;
        }
        Ok(log)
    }

    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..KEEP).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > MAX_LOG_BYTES {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// One handle per log event on the shared file.
struct LogWriter(Arc<Mutex<RotatingFile>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut file) => file.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0.lock() {
            Ok(mut file) => file.flush(),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_is_rotated_and_old_ones_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("daemon.log");
        let mut log = RotatingFile::open(&path).expect("open");
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..30 {
            log.write_all(&line).expect("write");
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        assert!(fs::metadata(&path).expect("meta").len() <= MAX_LOG_BYTES);
    }
}
