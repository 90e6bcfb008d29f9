//! Capture: writes what the live handler receives to disk, in the format of the shared Binance
//! recordings, for `tickfeed run --record DIR` and `tickfeed replay DIR/...`.
//!
//! One line per message, `<receive time in ns> <frame exactly as received>\n`: the whole
//! combined-stream frame `{"stream":..,"data":..}` for websocket events, and for a REST depth
//! snapshot its request line `<ns> GET /api/v3/depth?symbol=..&limit=..` followed by the body.
//! Files go to `DIR/{symbol}/{date}/take_{n}/{orderbook,trades,aggTrades,bookTickers}/` (the
//! layout and its decisions are in [`super::layout`]), rotate every UTC hour, and are gzipped on a
//! background thread once closed.
//!
//! Cost on the feed's thread: [`Recorder::record`] appends the line to the open file's buffer
//! (memory only: no syscall, no allocation once the buffer exists). Writing happens in
//! [`Recorder::tick`], which the caller runs when it has time (after a batch of frames): it writes
//! buffers that are large or hold a line older than a second, and rotates files at the period
//! boundary. Only a buffer that would overflow is written inside `record`. The recorder reads no
//! clock: every time comes from the caller, so rotation and midnight are testable with a fake one.
//!
//! Safety of the data: the buffer holds whole lines and is written whole; a killed process leaves
//! every line written so far complete, except possibly a torn last line, which replay counts and
//! skips. A payload's `\n` (legal JSON whitespace, never sent by Binance) is written as a space so
//! one message stays one line.
//!
//! Failure: the first I/O error (disk full, permission, a path that is not a folder) stops the
//! recording: it is told once (a [`Notice`] from [`Recorder::poll_notice`]) naming the path and the error, counted, and every
//! later line is counted as dropped. `record` never panics and never returns an error; the feed,
//! its books and its stdout go on. A file that was being written is cut back to its last whole
//! line.
//!
//! Not done here: sockets, REST, deciding what to subscribe; and no reading of captures (that is
//! [`super::reader`] and [`super::replay`]).

use super::compress::Compressor;
use super::layout::{create_take, file_name, kind_index, UtcDate, DAY_NS, HOUR_NS, KIND_DIRS, RUN_MARKER, SECOND_NS};
use super::line::append_line;
use crate::binance::StreamKind;
use crate::notice::Notice;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

const KINDS: usize = KIND_DIRS.len();
const ORDERBOOK: usize = 0;
/// `i64::MAX` digits plus the space and the newline.
const LINE_OVERHEAD: usize = 21;

/// How a recorder writes.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The capture root (`--record DIR`).
    pub root: PathBuf,
    /// Period of a file: a new file starts at every multiple of it (UTC). Whole seconds that
    /// divide a day; default one hour. Shorter periods are for tests.
    pub rotate_ns: i64,
    /// Gzip each file on a background thread once it is closed (at rotation and at the end).
    pub compress: bool,
    /// Gzip level 0..=9.
    pub gzip_level: u32,
    /// Bytes of buffer per open file. A line longer than this is written on its own.
    pub buffer_bytes: usize,
    /// [`Recorder::tick`] writes a buffer holding at least this many bytes.
    pub flush_bytes: usize,
    /// [`Recorder::tick`] writes a buffer whose oldest line is at least this old.
    pub flush_interval_ns: i64,
}

impl RecorderConfig {
    /// The defaults for a capture under `root`: hourly files, gzip level 6 on rotation, 256 KiB
    /// buffers written at 64 KiB or after one second.
    pub fn new(root: impl Into<PathBuf>) -> RecorderConfig {
        RecorderConfig {
            root: root.into(),
            rotate_ns: HOUR_NS,
            compress: true,
            gzip_level: 6,
            buffer_bytes: 256 * 1024,
            flush_bytes: 64 * 1024,
            flush_interval_ns: SECOND_NS,
        }
    }
}

/// A recorder that cannot be set up as asked. Nothing has touched the disk when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `rotate_ns` is not a whole number of seconds dividing a day.
    Rotation(i64),
    /// Buffer sizes: zero, or `flush_bytes` above `buffer_bytes`; or a non-positive interval.
    Buffering,
    /// A gzip level above 9.
    GzipLevel(u32),
    /// A symbol that is empty or not ASCII letters and digits (it becomes a folder name).
    Symbol(String),
    /// The compression thread could not be started.
    Thread(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Rotation(ns) => write!(f, "rotation period {ns} ns is not whole seconds dividing a day"),
            ConfigError::Buffering => f.write_str("buffer sizes or flush interval out of range"),
            ConfigError::GzipLevel(l) => write!(f, "gzip level {l} is not 0..=9"),
            ConfigError::Symbol(s) => write!(f, "symbol '{s}' is not ASCII letters and digits"),
            ConfigError::Thread(e) => write!(f, "cannot start the compression thread: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The I/O failure that stopped a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// What was being done: `create folder`, `create file`, `write`.
    pub op: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The error's kind.
    pub kind: io::ErrorKind,
    /// The error as the OS described it.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}: {}", self.op, self.path.display(), self.message)
    }
}

impl std::error::Error for RecordError {}

/// What a recorder has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderCounters {
    /// Lines written to files (a snapshot is two: request and body).
    pub lines: u64,
    /// Bytes written to files (before compression).
    pub bytes: u64,
    /// Files written (opened and not removed for being empty).
    pub files: u64,
    /// Take folders created.
    pub takes: u64,
    /// Write calls.
    pub flushes: u64,
    /// I/O failures (recording stops at the first, so this is 0 or 1).
    pub write_errors: u64,
    /// Lines not written: buffered when recording failed, or offered after it failed or finished,
    /// or for a symbol index the recorder does not know.
    pub dropped_lines: u64,
    /// Payloads that held a newline, written with spaces in its place.
    pub newlines_replaced: u64,
    /// Files gzipped by the background thread.
    pub compressed_files: u64,
    /// Files the background thread could not gzip (left plain).
    pub compress_errors: u64,
}

struct SymbolDirs {
    lower: String,
    /// The take being written: the UTC day number it is for, and its folder.
    take: Option<(i64, PathBuf)>,
    /// Set when the take moved to a new date; see [`Recorder::poll_snapshot_wanted`].
    wants_snapshot: bool,
}

struct OpenFile {
    file: File,
    path: PathBuf,
    /// Bytes written so far: where to cut back to if a write fails.
    written: u64,
}

/// One (symbol, kind) stream: its buffer and open file.
struct Slot {
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    /// Receive time of the first line in `buf`.
    oldest_ns: i64,
    file: Option<OpenFile>,
    /// The open file's period: lines before `end_ns` go into it.
    period: i64,
    end_ns: i64,
}

/// Writes a capture. See the module documentation for the cost, the layout and failure rules.
pub struct Recorder {
    cfg: RecorderConfig,
    run_id: String,
    syms: Vec<SymbolDirs>,
    slots: Vec<Slot>,
    c: RecorderCounters,
    /// False once recording failed or finished: the one check on the hot path.
    active: bool,
    finished: bool,
    error: Option<RecordError>,
    /// `tick` has nothing to do before this time unless `flush_wanted`.
    deadline_ns: i64,
    flush_wanted: bool,
    /// Some symbol's `wants_snapshot` may be set (keeps the poll O(1) when none is).
    any_wants_snapshot: bool,
    compressor: Option<Compressor>,
    #[cfg(test)]
    injected: Option<io::Error>,
    /// The failure that stopped recording, until the caller has taken it as a notice.
    untold: Option<RecordError>,
    /// A binary frame's base64, reused.
    b64: Vec<u8>,
}

impl Recorder {
    /// A recorder for `symbols` (any case; index `i` here is `symbols[i]`: give them in the
    /// pipeline's order so the pipeline's symbol indices can be passed to [`Recorder::record`]).
    /// `now_ns` is the run's start (wall clock, ns since the epoch): it names the run. Nothing is
    /// written until the first line, [`Recorder::tick`] or [`Recorder::prepare`].
    pub fn new(cfg: RecorderConfig, symbols: &[&str], now_ns: i64) -> Result<Recorder, ConfigError> {
        let r = cfg.rotate_ns;
        if r <= 0 || r % SECOND_NS != 0 || DAY_NS % r != 0 {
            return Err(ConfigError::Rotation(r));
        }
        if cfg.buffer_bytes == 0 || cfg.flush_bytes == 0 || cfg.flush_bytes > cfg.buffer_bytes {
            return Err(ConfigError::Buffering);
        }
        if cfg.flush_interval_ns <= 0 {
            return Err(ConfigError::Buffering);
        }
        if cfg.gzip_level > 9 {
            return Err(ConfigError::GzipLevel(cfg.gzip_level));
        }
        let compressor = if cfg.compress {
            Some(Compressor::start(cfg.gzip_level).map_err(|e| ConfigError::Thread(e.to_string()))?)
        } else {
            None
        };
        let mut rec = Recorder {
            run_id: format!("{now_ns}-{}", std::process::id()),
            cfg,
            syms: Vec::new(),
            slots: Vec::new(),
            c: RecorderCounters::default(),
            active: true,
            finished: false,
            error: None,
            deadline_ns: i64::MAX,
            flush_wanted: false,
            any_wants_snapshot: false,
            compressor,
            #[cfg(test)]
            injected: None,
            untold: None,
            b64: Vec::new(),
        };
        for s in symbols {
            rec.add_symbol(s)?;
        }
        Ok(rec)
    }

    /// Adds a symbol (no-op if present); returns its index.
    pub fn add_symbol(&mut self, symbol: &str) -> Result<usize, ConfigError> {
        if symbol.is_empty() || !symbol.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Symbol(symbol.to_owned()));
        }
        if let Some(i) = self.find(symbol) {
            return Ok(i);
        }
        self.syms.push(SymbolDirs { lower: symbol.to_ascii_lowercase(), take: None, wants_snapshot: false });
        for _ in 0..KINDS {
            self.slots.push(Slot {
                buf: Vec::new(),
                lines: 0,
                oldest_ns: 0,
                file: None,
                period: i64::MIN,
                end_ns: i64::MIN,
            });
        }
        Ok(self.syms.len() - 1)
    }

    /// Index of a symbol, any case.
    pub fn find(&self, symbol: &str) -> Option<usize> {
        self.syms.iter().position(|s| s.lower.eq_ignore_ascii_case(symbol))
    }

    /// The id written to every take's `.run` file: `<start ns>-<pid>`.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The configuration.
    pub fn config(&self) -> &RecorderConfig {
        &self.cfg
    }

    /// The take folder a symbol is being recorded into, once it has one.
    pub fn take_dir(&self, symbol: usize) -> Option<&Path> {
        self.syms.get(symbol)?.take.as_ref().map(|(_, p)| p.as_path())
    }

    /// Creates every symbol's take folder for the date of `now_ns` now, rather than at the first
    /// line: a startup check that the folder is writable, and the first line then costs no
    /// folder scan. On failure the recorder is stopped (as for any failure) and the error is
    /// returned instead of printed, so the caller chooses to exit or to run on unrecorded.
    pub fn prepare(&mut self, now_ns: i64) -> Result<(), RecordError> {
        let day = now_ns.div_euclid(DAY_NS);
        for s in 0..self.syms.len() {
            self.ensure_take(s, day, false)?;
        }
        Ok(())
    }

    /// Records one websocket frame of `kind` for symbol index `symbol`, received at `recv_ns`
    /// (wall clock, ns since the epoch). Appends to a buffer; never fails, never panics.
    #[inline]
    pub fn record(&mut self, recv_ns: i64, kind: StreamKind, symbol: usize, frame: &[u8]) {
        if !self.active || symbol >= self.syms.len() {
            self.c.dropped_lines += 1;
            return;
        }
        self.push_line(symbol * KINDS + kind_index(kind), recv_ns, b"", frame);
    }

    /// Records a binary websocket frame (SBE) of stream `kind` of symbol index `symbol` as
    /// `<ns> ~<base64>` (see [`super::line`]), in the same file as the JSON frames of that stream
    /// would go. The base64 is written into a buffer kept across calls: no allocation once it has
    /// grown to the largest frame. Never fails.
    pub fn record_binary(&mut self, recv_ns: i64, kind: StreamKind, symbol: usize, frame: &[u8]) {
        if !self.active || symbol >= self.syms.len() {
            self.c.dropped_lines += 1;
            return;
        }
        let mut b64 = std::mem::take(&mut self.b64);
        b64.clear();
        super::base64::encode_into(frame, &mut b64);
        self.push_line(symbol * KINDS + kind_index(kind), recv_ns, super::line::BINARY_MARKER, &b64);
        self.b64 = b64;
    }

    /// Records a REST depth snapshot for symbol index `symbol`: its request line (`GET
    /// /api/v3/depth?symbol=BTCUSDT&limit=1000`, the request target without the host; `GET ` is
    /// added if missing) and, just after it, the body, both stamped `recv_ns` (when the body
    /// arrived) so they stay adjacent under any merge by time. Never fails.
    pub fn record_snapshot(&mut self, recv_ns: i64, symbol: usize, request_line: &str, body: &[u8]) {
        if !self.active || symbol >= self.syms.len() {
            self.c.dropped_lines += 2;
            return;
        }
        let slot = symbol * KINDS + ORDERBOOK;
        let req = request_line.trim();
        let prefix: &[u8] = if req.starts_with("GET ") { b"" } else { b"GET " };
        self.push_line(slot, recv_ns, prefix, req.as_bytes());
        if self.active {
            self.push_line(slot, recv_ns, b"", body.trim_ascii_end());
        } else {
            self.c.dropped_lines += 1;
        }
    }

    /// Does what is due at `now_ns` (the caller's wall clock): writes buffers that are large or
    /// hold a line older than the flush interval, and closes files whose period has ended
    /// (handing them to the compressor) and opens the next ones. Cheap when nothing is due (two
    /// compares); call it after every batch of frames, and at least every few hundred ms.
    #[inline]
    pub fn tick(&mut self, now_ns: i64) {
        if self.active && (now_ns >= self.deadline_ns || self.flush_wanted) {
            self.tick_due(now_ns);
        }
    }

    /// A symbol whose take just moved to a new date (a run crossing midnight), once per move.
    /// Recording a fresh REST snapshot for it ([`Recorder::record_snapshot`]) makes the new
    /// date's folder replayable on its own; without one, only a replay that also reads the
    /// previous date's take (the same run) syncs that symbol's book. Optional.
    #[must_use]
    pub fn poll_snapshot_wanted(&mut self) -> Option<usize> {
        if !self.any_wants_snapshot {
            return None;
        }
        match self.syms.iter().position(|s| s.wants_snapshot) {
            Some(i) => {
                self.syms[i].wants_snapshot = false;
                Some(i)
            }
            None => {
                self.any_wants_snapshot = false;
                None
            }
        }
    }

    /// What has been done so far.
    pub fn counters(&self) -> RecorderCounters {
        let mut c = self.c;
        if let Some(z) = &self.compressor {
            c.compressed_files = z.stats.files.load(Ordering::Relaxed);
            c.compress_errors = z.stats.errors.load(Ordering::Relaxed);
        }
        c
    }

    /// The failure that stopped recording, if any.
    pub fn error(&self) -> Option<&RecordError> {
        self.error.as_ref()
    }

    /// What the recorder has to tell a person: the failure that stopped it (once), a file that
    /// could not be gzipped (the first one). The caller writes it through its notice log.
    #[must_use]
    pub fn poll_notice(&mut self) -> Option<Notice> {
        if let Some(e) = self.untold.take() {
            return Some(Notice::RecordingStopped(e));
        }
        let (path, error) = self.compressor.as_mut()?.take_first_failure()?;
        Some(Notice::GzipFailed { path, error })
    }

    /// False once recording has stopped (a failure, or [`Recorder::finish`]).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Writes everything buffered, closes the files, gzips them (when compression is on) and
    /// waits for the compressor. Idempotent; `Drop` does it too.
    pub fn finish(&mut self) -> RecorderCounters {
        if !self.finished {
            self.finished = true;
            for i in 0..self.slots.len() {
                if self.active {
                    self.flush(i);
                }
                self.close(i);
            }
            self.active = false;
            if let Some(z) = &mut self.compressor {
                z.finish();
            }
        }
        self.counters()
    }

    /// Fault injection for tests: the next write to a capture file fails with `e` as if the disk
    /// had returned it (e.g. `io::Error::from_raw_os_error(28)`, no space left on device).
    #[cfg(test)]
    pub(crate) fn inject_write_error(&mut self, e: io::Error) {
        self.injected = Some(e);
    }

    #[inline]
    fn push_line(&mut self, slot: usize, recv_ns: i64, prefix: &[u8], payload: &[u8]) {
        let s = &mut self.slots[slot];
        if s.file.is_none() || recv_ns >= s.end_ns {
            self.roll_for(slot, recv_ns);
            if !self.active {
                self.c.dropped_lines += 1;
                return;
            }
        }
        let len = LINE_OVERHEAD + prefix.len() + payload.len();
        let s = &mut self.slots[slot];
        if s.buf.len() + len > s.buf.capacity() {
            self.flush(slot);
            if !self.active {
                self.c.dropped_lines += 1;
                return;
            }
            if len > self.slots[slot].buf.capacity() {
                self.write_long_line(slot, recv_ns, prefix, payload);
                return;
            }
        }
        let s = &mut self.slots[slot];
        if s.lines == 0 {
            s.oldest_ns = recv_ns;
            self.deadline_ns = self.deadline_ns.min(recv_ns.saturating_add(self.cfg.flush_interval_ns));
        }
        s.lines += 1;
        if append_line(&mut s.buf, recv_ns, prefix, payload) {
            self.c.newlines_replaced += 1;
        }
        if s.buf.len() >= self.cfg.flush_bytes {
            self.flush_wanted = true;
        }
    }

    /// A line longer than the buffer (a very deep snapshot): built in its own allocation and
    /// written at once.
    #[cold]
    fn write_long_line(&mut self, slot: usize, recv_ns: i64, prefix: &[u8], payload: &[u8]) {
        let s = &mut self.slots[slot];
        let mut tmp = std::mem::replace(&mut s.buf, Vec::with_capacity(LINE_OVERHEAD + prefix.len() + payload.len()));
        if append_line(&mut s.buf, recv_ns, prefix, payload) {
            self.c.newlines_replaced += 1;
        }
        s.lines = 1;
        self.flush(slot);
        // Give the ordinary buffer back (empty, its capacity kept).
        tmp.clear();
        self.slots[slot].buf = tmp;
    }

    /// The line at `recv_ns` does not belong in the slot's open file (none open, or its period
    /// ended): rotate. Time that goes backwards never reopens an older file: such a line goes into
    /// the current one.
    #[cold]
    fn roll_for(&mut self, slot: usize, recv_ns: i64) {
        let period = recv_ns.div_euclid(self.cfg.rotate_ns);
        let s = &self.slots[slot];
        if s.file.is_some() && period <= s.period {
            return;
        }
        self.rotate(slot, period);
    }

    #[cold]
    fn tick_due(&mut self, now_ns: i64) {
        let period = now_ns.div_euclid(self.cfg.rotate_ns);
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.file.is_some() && period > s.period {
                self.rotate(i, period);
            } else if s.lines > 0
                && (s.buf.len() >= self.cfg.flush_bytes
                    || now_ns.saturating_sub(s.oldest_ns) >= self.cfg.flush_interval_ns)
            {
                self.flush(i);
            }
            if !self.active {
                return;
            }
        }
        self.flush_wanted = false;
        let mut deadline = (period + 1).saturating_mul(self.cfg.rotate_ns);
        for s in &self.slots {
            if s.lines > 0 {
                deadline = deadline.min(s.oldest_ns.saturating_add(self.cfg.flush_interval_ns));
            }
            if s.buf.len() >= self.cfg.flush_bytes {
                self.flush_wanted = true;
            }
        }
        self.deadline_ns = deadline;
    }

    /// Closes the slot's file (if any) and opens the one for `period`.
    fn rotate(&mut self, slot: usize, period: i64) {
        self.flush(slot);
        self.close(slot);
        if self.active {
            self.open(slot, period);
        }
    }

    /// Closes the slot's file: gzipped in the background, or removed if it holds nothing (the
    /// file for a new period is opened at the period's start, before anyone knows whether that
    /// stream will still send; an empty file says nothing a missing one does not).
    fn close(&mut self, slot: usize) {
        if let Some(f) = self.slots[slot].file.take() {
            drop(f.file);
            if !self.active {
                return;
            }
            if f.written == 0 {
                let _ = std::fs::remove_file(&f.path);
                if let Some(dir) = f.path.parent() {
                    // Fails, as it should, unless the kind folder is now empty.
                    let _ = std::fs::remove_dir(dir);
                }
                self.c.files -= 1;
            } else if let Some(z) = &self.compressor {
                z.submit(f.path);
            }
        }
    }

    fn open(&mut self, slot: usize, period: i64) {
        let start = period.saturating_mul(self.cfg.rotate_ns);
        let sym = slot / KINDS;
        if self.ensure_take(sym, start.div_euclid(DAY_NS), true).is_err() {
            return;
        }
        let Some((_, take)) = &self.syms[sym].take else { return };
        let dir = take.join(KIND_DIRS[slot % KINDS]);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            self.fail("create folder", dir, e, true);
            return;
        }
        let path = dir.join(file_name(start, self.cfg.rotate_ns));
        let file = match File::options().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) => {
                self.fail("create file", path, e, true);
                return;
            }
        };
        self.c.files += 1;
        let s = &mut self.slots[slot];
        s.file = Some(OpenFile { file, path, written: 0 });
        s.period = period;
        s.end_ns = start.saturating_add(self.cfg.rotate_ns);
        if s.buf.capacity() == 0 {
            s.buf.reserve_exact(self.cfg.buffer_bytes);
        }
        self.deadline_ns = self.deadline_ns.min(s.end_ns);
    }

    /// Makes sure symbol `sym` has a take folder for UTC day `day`.
    fn ensure_take(&mut self, sym: usize, day: i64, tell: bool) -> Result<(), RecordError> {
        if !self.active {
            return Err(self.error.clone().unwrap_or_else(|| RecordError {
                op: "record into",
                path: self.cfg.root.clone(),
                kind: io::ErrorKind::Other,
                message: "the recorder has finished".into(),
            }));
        }
        let s = &self.syms[sym];
        if s.take.as_ref().is_some_and(|(d, _)| *d >= day) {
            return Ok(());
        }
        let moved = s.take.is_some();
        let date_dir = self.cfg.root.join(&s.lower).join(UtcDate::from_days(day).to_string());
        let take = match create_take(&date_dir) {
            Ok((_, dir)) => dir,
            Err(e) => return Err(self.fail("create a take folder in", date_dir, e, tell)),
        };
        let marker = take.join(RUN_MARKER);
        if let Err(e) = std::fs::write(&marker, format!("{}\n", self.run_id)) {
            return Err(self.fail("write", marker, e, tell));
        }
        self.c.takes += 1;
        let s = &mut self.syms[sym];
        s.take = Some((day, take));
        s.wants_snapshot |= moved;
        self.any_wants_snapshot |= moved;
        Ok(())
    }

    fn flush(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        if s.buf.is_empty() {
            return;
        }
        let Some(f) = s.file.as_mut() else {
            // Unreachable by construction (a line is only buffered with a file open); never panic.
            self.c.dropped_lines += s.lines;
            s.buf.clear();
            s.lines = 0;
            return;
        };
        #[cfg(test)]
        let r = match self.injected.take() {
            Some(e) => Err(e),
            None => f.file.write_all(&s.buf),
        };
        #[cfg(not(test))]
        let r = f.file.write_all(&s.buf);
        match r {
            Ok(()) => {
                self.c.bytes += s.buf.len() as u64;
                self.c.lines += s.lines;
                self.c.flushes += 1;
                f.written += s.buf.len() as u64;
                s.buf.clear();
                s.lines = 0;
            }
            Err(e) => {
                // Cut a partly written buffer back to the last whole line (best effort).
                let _ = f.file.set_len(f.written);
                let path = f.path.clone();
                self.fail("write", path, e, true);
            }
        }
    }

    /// Stops recording after an I/O failure: told once (unless `tell` is false: the caller gets
    /// the error back and reports it itself), buffered lines counted as dropped.
    #[cold]
    fn fail(&mut self, op: &'static str, path: PathBuf, e: io::Error, tell: bool) -> RecordError {
        let err = RecordError { op, path, kind: e.kind(), message: e.to_string() };
        if self.active {
            self.active = false;
            self.c.write_errors += 1;
            if tell {
                self.untold = Some(err.clone());
            }
            for s in &mut self.slots {
                self.c.dropped_lines += s.lines;
                s.buf.clear();
                s.lines = 0;
                // Files already written stay as they are (plain): the disk may be full.
                s.file = None;
            }
            self.error = Some(err.clone());
        }
        err
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
