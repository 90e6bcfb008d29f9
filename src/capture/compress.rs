//! Gzip of closed capture files on a background thread, off the feed's thread.
//!
//! A closed file `X.log` is compressed into `.X.log.gz.tmp` (a dot file, so tools that walk a
//! capture skip it while it is incomplete), synced to disk, renamed to `X.log.gz` (atomic), and
//! only then is `X.log` removed. A crash at any point leaves either the plain file, or both (replay
//! reads the `.gz` and skips the plain twin), never a half-written `.gz` under the real name. A
//! failure leaves the plain file in place, counted and told once (the recorder turns it into a notice).
//!
//! This is not a general job queue: one thread, files in the order closed.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the compressor has done, shared with the recorder's thread.
#[derive(Debug, Default)]
pub(crate) struct CompressStats {
    pub files: AtomicU64,
    pub errors: AtomicU64,
    /// The first failure (file and reason), until the recorder takes it as a notice.
    first_failure: Mutex<Option<(PathBuf, String)>>,
    told: AtomicBool,
}

/// The background compressor: hand it closed files, join it at the end.
pub(crate) struct Compressor {
    tx: Option<Sender<PathBuf>>,
    handle: Option<JoinHandle<()>>,
    pub stats: Arc<CompressStats>,
    failure_taken: bool,
}

impl Compressor {
    /// Starts the thread. The first failure is kept for [`Compressor::take_first_failure`].
    pub(super) fn start(level: u32) -> io::Result<Compressor> {
        let (tx, rx) = channel::<PathBuf>();
        let stats = Arc::new(CompressStats::default());
        let st = Arc::clone(&stats);
        let handle = std::thread::Builder::new().name("tickfeed-gzip".into()).spawn(move || {
            for plain in rx {
                match gzip_file(&plain, level) {
                    Ok(_) => {
                        st.files.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        st.errors.fetch_add(1, Ordering::Relaxed);
                        if !st.told.swap(true, Ordering::Relaxed) {
                            if let Ok(mut f) = st.first_failure.lock() {
                                *f = Some((plain.clone(), e.to_string()));
                            }
                        }
                    }
                }
            }
        })?;
        Ok(Compressor { tx: Some(tx), handle: Some(handle), stats, failure_taken: false })
    }

    /// The first file that could not be gzipped and why, once (later failures are only counted).
    /// Two plain loads on the feed's thread while nothing failed.
    pub(super) fn take_first_failure(&mut self) -> Option<(PathBuf, String)> {
        if self.failure_taken || !self.stats.told.load(Ordering::Relaxed) {
            return None;
        }
        let f = self.stats.first_failure.try_lock().ok()?.take();
        self.failure_taken = f.is_some();
        f
    }

    /// Queues a closed file. Never blocks.
    pub(super) fn submit(&self, plain: PathBuf) {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(plain).is_ok());
        if !sent {
            // The thread is gone (it panicked): the file stays plain, which replay reads too.
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every queued file is compressed.
    pub(super) fn finish(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The name of the compressed twin of `plain` and of its temporary file.
pub(crate) fn gz_names(plain: &Path) -> (PathBuf, PathBuf) {
    let name = plain.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (plain.with_file_name(format!("{name}.gz")), plain.with_file_name(format!(".{name}.gz.tmp")))
}

/// Compresses `plain` into `plain.gz` (via a synced temporary file and a rename), then removes
/// `plain`. Returns the `.gz` path.
pub(crate) fn gzip_file(plain: &Path, level: u32) -> io::Result<PathBuf> {
    let (gz, tmp) = gz_names(plain);
    let r = (|| {
        let mut input = BufReader::with_capacity(1 << 16, File::open(plain)?);
        let out = File::create(&tmp)?;
        let mut enc = GzEncoder::new(BufWriter::with_capacity(1 << 16, out), Compression::new(level));
        io::copy(&mut input, &mut enc)?;
        let mut w = enc.finish()?;
        w.flush()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        // On disk before it takes the real name: a power cut must not leave a `.gz` that is empty
        // while the plain file is already gone.
        f.sync_all()?;
        std::fs::rename(&tmp, &gz)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::remove_file(plain)?;
    Ok(gz)
}
