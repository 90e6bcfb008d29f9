//! Replay: recordings driven through the same pipeline as the live handler, runs merged by
//! receive time, books reset between runs, at full speed or the recorded pace.
//!
//! See [`super::reader`] for how inputs are planned. This module reads files and sleeps; it does
//! not print or decide about books.

use super::line::{request_symbol, split_line, RecordedLine, StampUnit};
use super::reader::{open_recording, plan, ReadError, Segment, Stream};
use crate::binance::{parse_futures_stream_name, parse_stream_name, split_envelope, Envelope, LevelBuf};
use crate::pipeline::{FrameOutcome, Pipeline};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a replay read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounters {
    /// Lines read.
    pub lines: u64,
    /// Lines not of the recording format (counted, skipped).
    pub malformed_lines: u64,
    /// A last line cut short (no newline and not parseable): a killed recorder.
    pub torn_lines: u64,
    /// Snapshots handed to a symbol.
    pub snapshots: u64,
    /// Snapshots that could not be attributed to any symbol.
    pub unattributed_snapshots: u64,
    /// Segments replayed (runs of a capture, or groups of files given by name); the books are
    /// reset between two.
    pub runs: u64,
    /// Files whose receive times were read as ns, µs and ms ([`StampUnit`]), in that order.
    pub stamp_units: [u64; 3],
    /// Lines longer than [`MAX_LINE`], skipped whole (memory stays bounded whatever a file holds).
    pub long_lines: u64,
    /// Binary-frame lines (`<ns> ~<base64>`) whose base64 is not canonical: skipped.
    pub bad_base64_lines: u64,
}

/// The longest recording line replayed: far above any real line (a 5,000-level snapshot is some
/// 200 kB, a websocket message at most `--max-message`, 1 MiB by default); a longer one is
/// skipped, counted in `long_lines`.
pub const MAX_LINE: usize = 64 << 20;

/// Reads one line (with its newline) into `line`, at most `max` bytes of it: a longer line is
/// read to its end and dropped, and the answer is `(bytes read, true)`. Returns 0 bytes at the
/// end of the input.
fn read_line_bounded(r: &mut dyn BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<(usize, bool)> {
    let (mut total, mut long) = (0, false);
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((total, long));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !long && line.len() + take > max {
            long = true;
            line.clear();
        }
        if !long {
            line.extend_from_slice(&buf[..take]);
        }
        r.consume(take);
        total += take;
        if done {
            return Ok((total, long));
        }
    }
}

/// The next whole line in `r`'s buffer, without its newline, handed to `f` in place (no copy);
/// `None` when the buffer holds no newline (or is empty), and then nothing is consumed. Most
/// lines of a recording are a few hundred bytes and the buffer 256 KiB, so nearly every line
/// takes this path and [`read_line_bounded`] only joins the one that straddles a refill.
fn with_buffered_line<T>(r: &mut dyn BufRead, f: impl FnOnce(&[u8]) -> T) -> std::io::Result<Option<T>> {
    let buf = loop {
        match r.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let Some(i) = memchr::memchr(b'\n', buf) else { return Ok(None) };
    let out = f(&buf[..i]);
    r.consume(i + 1);
    Ok(Some(out))
}

impl ReplayCounters {
    /// One line for a person: how each file's receive times were read, e.g. `receive times: 2
    /// files in ns, 1 in us (converted to ns)`.
    pub fn stamps_text(&self) -> String {
        let [ns, us, ms] = self.stamp_units;
        let mut t = format!("receive times: {ns} files in ns");
        if us + ms > 0 {
            t.push_str(&format!(", {us} in us, {ms} in ms (converted to ns)"));
        }
        t
    }
}

/// How fast to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Pace {
    /// No waiting.
    #[default]
    AsFastAsPossible,
    /// Wait until each line's receive time, relative to the first line of its segment, divided by
    /// `speed` (2.0 is twice as fast as recorded).
    Recorded {
        /// Speed factor, > 0.
        speed: f64,
    },
}

/// Options of one replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Stop after this many market events.
    pub max_events: Option<u64>,
    /// Measure in-process time per frame (two clock reads per frame).
    pub measure: bool,
    /// Pacing.
    pub pace: Pace,
    /// Set by a signal handler: stop at the next line, or within 50 ms of a pacing wait.
    pub stop: Option<&'static std::sync::atomic::AtomicBool>,
}

/// Drives recordings through a pipeline; `flush` is called whenever output is worth writing.
pub struct Replayer<'p> {
    p: &'p mut Pipeline,
    counters: ReplayCounters,
    scratch: LevelBuf,
    /// A binary frame decoded from its line's base64, reused.
    binary: Vec<u8>,
    /// Recorded pace: the wall instant and receive time of the segment's first line.
    pacer: Option<(Instant, i64)>,
    /// A line of another venue was met (its file's line number): the replay stops with
    /// [`ReadError::WrongVenue`].
    wrong_venue: Option<u64>,
}

impl<'p> Replayer<'p> {
    /// A replayer feeding `p`.
    pub fn new(p: &'p mut Pipeline) -> Replayer<'p> {
        Replayer {
            p,
            counters: ReplayCounters::default(),
            scratch: LevelBuf::default(),
            binary: Vec::new(),
            pacer: None,
            wrong_venue: None,
        }
    }

    /// What was read so far.
    pub fn counters(&self) -> ReplayCounters {
        self.counters
    }

    /// Replays the inputs (files and capture folders, see [`plan`]). `flush` receives the
    /// pipeline whenever its output buffer is large, before a pacing sleep, and at the end; it
    /// returns false to stop early (stdout closed).
    pub fn run(
        &mut self,
        paths: &[PathBuf],
        opts: ReplayOptions,
        flush: &mut dyn FnMut(&mut Pipeline) -> bool,
    ) -> Result<(), ReadError> {
        let segments = plan(paths)?;
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                // A new run: what happened between the two was never received.
                self.p.reset_books();
            }
            self.counters.runs += 1;
            self.pacer = None;
            let go_on = match seg {
                Segment::Files(files) => self.run_files(files, opts, flush)?,
                Segment::Run { streams, .. } => self.run_merged(streams, opts, flush)?,
            };
            if !go_on {
                break;
            }
        }
        flush(self.p);
        Ok(())
    }

    /// Files one after another; false when told to stop.
    fn run_files(
        &mut self,
        paths: &[PathBuf],
        opts: ReplayOptions,
        flush: &mut dyn FnMut(&mut Pipeline) -> bool,
    ) -> Result<bool, ReadError> {
        for path in paths {
            let mut r = open_recording(path).map_err(ReadError::at(path))?;
            let mut file = FileState::default();
            let mut line = Vec::with_capacity(1 << 16);
            loop {
                // The common case: the whole line is in the reader's buffer.
                let go_on = with_buffered_line(&mut *r, |l| -> Result<bool, ReadError> {
                    self.check_stamp(&mut file, l, true, path)?;
                    let go_on = self.step(l, true, &mut file, opts, flush);
                    self.check_venue(path)?;
                    Ok(go_on)
                })
                .map_err(ReadError::at(path))?;
                match go_on {
                    Some(Ok(true)) => continue,
                    Some(Ok(false)) => return Ok(false),
                    Some(Err(e)) => return Err(e),
                    None => {}
                }
                line.clear();
                let (n, long) = read_line_bounded(&mut *r, &mut line, MAX_LINE).map_err(ReadError::at(path))?;
                if n == 0 {
                    break;
                }
                if long {
                    self.counters.lines += 1;
                    self.counters.long_lines += 1;
                    continue;
                }
                let complete = line.last() == Some(&b'\n');
                if complete {
                    line.pop();
                }
                self.check_stamp(&mut file, &line, complete, path)?;
                let go_on = self.step(&line, complete, &mut file, opts, flush);
                self.check_venue(path)?;
                if !go_on {
                    return Ok(false);
                }
            }
            self.end_of_file(&mut file);
        }
        Ok(true)
    }

    /// One run's streams merged by receive time; false when told to stop.
    fn run_merged(
        &mut self,
        streams: &[Stream],
        opts: ReplayOptions,
        flush: &mut dyn FnMut(&mut Pipeline) -> bool,
    ) -> Result<bool, ReadError> {
        let mut sources: Vec<Source> = streams.iter().map(Source::new).collect();
        // Min-heap on (receive ns, kind rank, stream index): stable for equal times.
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, src) in sources.iter_mut().enumerate() {
            if self.advance(src)? {
                heap.push(Reverse((src.key, src.rank, i)));
            }
        }
        while let Some(Reverse((_, _, i))) = heap.pop() {
            let src = &mut sources[i];
            let go_on = self.step(&src.line, src.complete, &mut src.state, opts, flush);
            if let Some(path) = src.files.get(src.next.wrapping_sub(1)) {
                self.check_venue(path)?;
            }
            if !go_on {
                return Ok(false);
            }
            if self.advance(src)? {
                heap.push(Reverse((src.key, src.rank, i)));
            }
        }
        Ok(true)
    }

    /// Reads the next line of a merged stream into `src.line` (opening its next file at the end
    /// of one); false when the stream is exhausted.
    fn advance(&mut self, src: &mut Source) -> Result<bool, ReadError> {
        loop {
            if src.reader.is_none() {
                let Some(path) = src.files.get(src.next) else { return Ok(false) };
                src.next += 1;
                src.reader = Some(open_recording(path).map_err(ReadError::at(path))?);
                src.state = FileState::default();
            }
            let Some(r) = src.reader.as_mut() else { return Ok(false) };
            let path = &src.files[src.next - 1];
            src.line.clear();
            let (n, long) = read_line_bounded(&mut **r, &mut src.line, MAX_LINE).map_err(ReadError::at(path))?;
            if n == 0 {
                src.reader = None;
                self.end_of_file(&mut src.state);
                continue;
            }
            if long {
                self.counters.lines += 1;
                self.counters.long_lines += 1;
                continue;
            }
            src.complete = src.line.last() == Some(&b'\n');
            if src.complete {
                src.line.pop();
            }
            self.check_stamp(&mut src.state, &src.line, src.complete, path)?;
            // A line without a time (blank, malformed, torn) keeps its place after the previous one.
            if let RecordedLine::Data { recv_ns, .. }
            | RecordedLine::Binary { recv_ns, .. }
            | RecordedLine::Request { recv_ns, .. } = split_line(&src.line)
            {
                src.key = src.state.ns(recv_ns);
            }
            return Ok(true);
        }
    }

    /// The first line of a file that has one decides the unit of its receive times; a file whose
    /// first line is not `<number> <payload>` is not a recording and is refused.
    fn check_stamp(&mut self, file: &mut FileState, line: &[u8], complete: bool, path: &Path) -> Result<(), ReadError> {
        file.lines += 1;
        if file.unit.is_some() {
            return Ok(());
        }
        let unit = match split_line(line) {
            RecordedLine::Empty => return Ok(()),
            // A torn first line (a recorder killed at once) is counted as torn, as any torn line.
            RecordedLine::Malformed if !complete => return Ok(()),
            RecordedLine::Malformed => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
                return Err(ReadError::NotStamped { path: path.to_path_buf(), line: file.lines, found: shown });
            }
            RecordedLine::Data { recv_ns, .. }
            | RecordedLine::Binary { recv_ns, .. }
            | RecordedLine::Request { recv_ns, .. } => StampUnit::detect(recv_ns),
        };
        file.unit = Some(unit);
        self.counters.stamp_units[unit as usize] += 1;
        Ok(())
    }

    /// [`ReadError::WrongVenue`] once a line of another venue was met.
    fn check_venue(&mut self, path: &Path) -> Result<(), ReadError> {
        match self.wrong_venue.take() {
            Some(line) => Err(ReadError::WrongVenue { path: path.to_path_buf(), line, venue: self.p.venue() }),
            None => Ok(()),
        }
    }

    fn end_of_file(&mut self, file: &mut FileState) {
        if file.deferred.take().is_some() {
            // A snapshot in a file whose streams never named a symbol: nobody to give it to.
            self.counters.unattributed_snapshots += 1;
        }
    }

    /// Counts, paces and processes one line; false when told to stop.
    fn step(
        &mut self,
        line: &[u8],
        complete: bool,
        file: &mut FileState,
        opts: ReplayOptions,
        flush: &mut dyn FnMut(&mut Pipeline) -> bool,
    ) -> bool {
        if opts.stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
            return false;
        }
        self.counters.lines += 1;
        if let Pace::Recorded { speed } = opts.pace {
            if let RecordedLine::Data { recv_ns, .. } | RecordedLine::Binary { recv_ns, .. } = split_line(line) {
                if !self.pace(file.ns(recv_ns), speed, opts.stop, flush) {
                    return false;
                }
            }
        }
        if !self.line(line, complete, file, opts) {
            return true;
        }
        // Notices are handed over as they come (a gap is told next to where it happened), output
        // in large writes.
        // The fan-out's records (`--publish`) go out in batches of the same size, or at once
        // when paced: a paced replay is a live feed for its subscribers.
        let publish_due = self.p.tap_pending() >= 64 * 1024 || (self.p.tap_pending() > 0 && self.pacer.is_some());
        if (self.p.output().pending() >= 64 * 1024 || publish_due || !self.p.notices().is_empty()) && !flush(self.p) {
            return false;
        }
        opts.max_events.is_none_or(|m| self.p.stats().events < m)
    }

    /// Sleeps until `recv_ns` is due at the recorded pace; false when told to stop.
    fn pace(
        &mut self,
        recv_ns: i64,
        speed: f64,
        stop: Option<&std::sync::atomic::AtomicBool>,
        flush: &mut dyn FnMut(&mut Pipeline) -> bool,
    ) -> bool {
        let &mut (t0, ns0) = self.pacer.get_or_insert_with(|| (Instant::now(), recv_ns));
        let ahead_ns = recv_ns.saturating_sub(ns0) as f64 / speed;
        if ahead_ns <= 0.0 {
            return true;
        }
        // A line stamped centuries ahead waits "forever" (until a signal), never overflows.
        let wait = Duration::from_nanos(ahead_ns.min(u64::MAX as f64) as u64);
        let due = t0.checked_add(wait);
        let now = Instant::now();
        if due.is_none_or(|d| d > now) {
            // What was processed so far is shown at its time, not when the buffer fills.
            if (self.p.output().pending() > 0 || self.p.tap_pending() > 0 || !self.p.notices().is_empty())
                && !flush(self.p)
            {
                return false;
            }
            // In slices, so a signal is heard within 50 ms.
            loop {
                if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                    return false;
                }
                let now = Instant::now();
                let left = due.map_or(Duration::from_millis(50), |d| d.saturating_duration_since(now));
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
        }
        true
    }

    /// One line; returns true when it was processed (for the flush/stop checks).
    fn line(&mut self, line: &[u8], complete: bool, file: &mut FileState, opts: ReplayOptions) -> bool {
        match split_line(line) {
            RecordedLine::Empty => false,
            RecordedLine::Malformed => {
                if complete {
                    self.counters.malformed_lines += 1;
                } else {
                    self.counters.torn_lines += 1;
                }
                false
            }
            RecordedLine::Request { text, .. } => {
                file.requested = request_symbol(text).map(|s| self.p.add_symbol(s, None));
                true
            }
            RecordedLine::Data { recv_ns, json } => {
                if !complete && split_envelope(json).is_err() {
                    self.counters.torn_lines += 1;
                    return false;
                }
                self.data(file.ns(recv_ns), json, file, opts);
                true
            }
            RecordedLine::Binary { recv_ns, base64 } => {
                let mut frame = std::mem::take(&mut self.binary);
                let ok = super::base64::decode_into(base64, &mut frame).is_ok();
                if ok {
                    let t0 = opts.measure.then(Instant::now);
                    let outcome = self.p.on_binary(file.ns(recv_ns), &frame);
                    if let Some(t0) = t0 {
                        self.p.stats_mut().record_process_ns(t0.elapsed().as_nanos() as u64);
                    }
                    if let FrameOutcome::Market { symbol, .. } | FrameOutcome::Depth20 { symbol, .. } = outcome {
                        if !file.symbols.contains(&symbol) {
                            file.symbols.push(symbol);
                        }
                    }
                } else if complete {
                    self.counters.bad_base64_lines += 1;
                } else {
                    self.counters.torn_lines += 1;
                }
                self.binary = frame;
                ok
            }
        }
    }

    fn data(&mut self, recv_ns: i64, json: &[u8], file: &mut FileState, opts: ReplayOptions) {
        if file.deferred.is_some() {
            if let Ok(Envelope::Stream { stream, .. }) = split_envelope(json) {
                let name = match self.p.venue() {
                    crate::venue::Venue::Spot => parse_stream_name(stream),
                    crate::venue::Venue::UsdM => parse_futures_stream_name(stream),
                };
                if let Some(name) = name {
                    let idx = self.p.add_symbol(name.symbol, None);
                    let (ns, body) = file.deferred.take().unwrap_or_default();
                    self.snapshot(idx, ns, &body);
                }
            }
        }
        let t0 = opts.measure.then(Instant::now);
        let outcome = self.p.on_frame(recv_ns, json);
        if let Some(t0) = t0 {
            let ns = t0.elapsed().as_nanos() as u64;
            self.p.stats_mut().record_process_ns(ns);
        }
        self.venue_check(json, &outcome, file);
        match outcome {
            FrameOutcome::Market { symbol, .. } if !file.symbols.contains(&symbol) => file.symbols.push(symbol),
            FrameOutcome::Snapshot => {
                if let Some(idx) = file.requested.take() {
                    self.snapshot(idx, recv_ns, json);
                } else if file.symbols.len() == 1 {
                    self.snapshot(file.symbols[0], recv_ns, json);
                } else if file.symbols.is_empty() {
                    file.deferred = Some((recv_ns, json.to_vec()));
                } else if let Some(idx) = self.nearest_symbol(json, &file.symbols) {
                    self.snapshot(idx, recv_ns, json);
                } else {
                    self.counters.unattributed_snapshots += 1;
                }
            }
            _ => {}
        }
    }

    /// Is this line of the replay's venue? Under usdm a depth diff the futures decoder refuses
    /// for want of `T` or `pu` is spot's; under spot the first diff of each file is looked at for
    /// a `pu` (one search a file: the spot path stays as fast as it was).
    fn venue_check(&mut self, json: &[u8], outcome: &FrameOutcome, file: &mut FileState) {
        use crate::binance::{DecodeError, StreamKind};
        use crate::venue::Venue;
        let wrong = match (self.p.venue(), outcome) {
            (Venue::UsdM, FrameOutcome::Bad(DecodeError::MissingField("T" | "pu"))) => {
                matches!(split_envelope(json), Ok(Envelope::Stream { stream, .. }) if stream.contains("@depth"))
            }
            // Futures' own depth stream names (@depth@0ms, @depth@500ms) are unknown to spot.
            (Venue::Spot, FrameOutcome::Bad(DecodeError::UnknownStream)) => matches!(
                split_envelope(json),
                Ok(Envelope::Stream { stream, .. })
                    if parse_stream_name(stream).is_none() && parse_futures_stream_name(stream).is_some()
            ),
            (Venue::Spot, FrameOutcome::Market { kind: StreamKind::Depth, .. }) if !file.venue_checked => {
                file.venue_checked = true;
                memchr::memmem::find(json, b"\"pu\":").is_some()
            }
            _ => false,
        };
        if wrong {
            self.wrong_venue = Some(file.lines);
        }
    }

    fn snapshot(&mut self, idx: usize, recv_ns: i64, body: &[u8]) {
        self.counters.snapshots += 1;
        let _ = self.p.on_snapshot(idx, recv_ns, body);
    }

    /// The symbol among `candidates` whose last price is relatively nearest the snapshot's best bid.
    fn nearest_symbol(&mut self, body: &[u8], candidates: &[usize]) -> Option<usize> {
        crate::binance::decode_snapshot(body, &mut self.scratch).ok()?;
        let px = self.scratch.bids.first().or(self.scratch.asks.first())?.price as i128;
        let syms = self.p.symbols();
        candidates.iter().copied().filter(|&i| syms[i].last_price() > 0).min_by(|&a, &b| {
            // Compare |px - la| / la with |px - lb| / lb without division.
            let (la, lb) = (syms[a].last_price() as i128, syms[b].last_price() as i128);
            ((px - la).abs() * lb).cmp(&((px - lb).abs() * la))
        })
    }
}

#[derive(Default)]
struct FileState {
    symbols: Vec<usize>,
    requested: Option<usize>,
    deferred: Option<(i64, Vec<u8>)>,
    /// The unit of the file's receive times, once its first line is read.
    unit: Option<StampUnit>,
    /// Lines read.
    lines: u64,
    /// Its first diff was looked at for another venue's fields.
    venue_checked: bool,
}

impl FileState {
    /// A receive time of this file in ns.
    fn ns(&self, stamp: i64) -> i64 {
        self.unit.unwrap_or(StampUnit::Nanos).to_ns(stamp)
    }
}

/// One stream of a merged run, being read.
struct Source {
    files: Vec<PathBuf>,
    next: usize,
    reader: Option<Box<dyn BufRead>>,
    line: Vec<u8>,
    complete: bool,
    /// Receive time of `line` (of the last timed line for one without a time).
    key: i64,
    rank: u8,
    state: FileState,
}

impl Source {
    fn new(s: &Stream) -> Source {
        Source {
            files: s.files.clone(),
            next: 0,
            reader: None,
            line: Vec::with_capacity(1 << 16),
            complete: true,
            key: i64::MIN,
            rank: s.rank,
            state: FileState::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputMode;
    use crate::pipeline::PipelineConfig;
    use std::fs::File;
    use std::io::Write;
    use std::path::Path;

    #[test]
    fn splits_lines() {
        assert_eq!(split_line(b"123 {\"a\":1}"), RecordedLine::Data { recv_ns: 123, json: b"{\"a\":1}" });
        assert_eq!(split_line(b"123 {\"a\":1}\r"), RecordedLine::Data { recv_ns: 123, json: b"{\"a\":1}" });
        assert_eq!(split_line(b""), RecordedLine::Empty);
        assert_eq!(split_line(b"12x {}"), RecordedLine::Malformed);
        assert_eq!(split_line(b"{}"), RecordedLine::Malformed);
        assert_eq!(split_line(b"99999999999999999999 {}"), RecordedLine::Malformed);
        assert!(matches!(split_line(b"5 GET /api/v3/depth?symbol=ETHUSDT&limit=1000"), RecordedLine::Request { .. }));
        assert_eq!(request_symbol(b"GET /api/v3/depth?symbol=ETHUSDT&limit=1000"), Some("ETHUSDT"));
        assert_eq!(request_symbol(b"GET /api/v3/depth?limit=5&symbol=BTCUSDT HTTP/1.1"), Some("BTCUSDT"));
        assert_eq!(request_symbol(b"GET /api/v3/exchangeInfo?symbol=BTCUSDT"), None);
        assert_eq!(request_symbol(b"GET /fapi/v1/depth?symbol=BTCUSDT&limit=1000"), Some("BTCUSDT"));
        assert_eq!(request_symbol(b"GET /fapi/v1/exchangeInfo"), None);
    }

    fn write_tmp(name: &str, text: &str, gz: bool) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tickfeed-replay-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        let f = File::create(&p).unwrap();
        if gz {
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap();
        } else {
            let mut f = f;
            f.write_all(text.as_bytes()).unwrap();
        }
        p
    }

    const D1: &str = r#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":10,"u":12,"b":[["2683.80000000","1.00000000"]],"a":[]}}"#;
    const SNAP: &str =
        r#"{"lastUpdateId":11,"bids":[["2683.79000000","1.00000000"]],"asks":[["2683.81000000","1.00000000"]]}"#;

    #[test]
    fn a_line_past_the_bound_is_skipped_whole_in_bounded_memory() {
        let data = format!("ab\n{}\ncd", "x".repeat(100));
        let mut r = std::io::BufReader::with_capacity(3, data.as_bytes());
        let mut line = Vec::new();
        assert_eq!(read_line_bounded(&mut r, &mut line, 10).unwrap(), (3, false));
        assert_eq!(line, b"ab\n");
        line.clear();
        assert_eq!(read_line_bounded(&mut r, &mut line, 10).unwrap(), (101, true));
        assert!(line.len() <= 10, "never held more than the bound: {}", line.len());
        line.clear();
        assert_eq!(read_line_bounded(&mut r, &mut line, 10).unwrap(), (2, false));
        assert_eq!(line, b"cd");
        line.clear();
        assert_eq!(read_line_bounded(&mut r, &mut line, 10).unwrap(), (0, false));
    }

    #[test]
    fn snapshot_before_any_stream_line_waits_for_the_symbol_and_torn_line_is_skipped() {
        let text = format!("1 {SNAP}\n2 {D1}\n3 {{\"stream\":\"ethusdt@depth@100ms\",\"data\":{{\"e\":\"dep");
        for gz in [false, true] {
            let path = write_tmp(if gz { "a.gz" } else { "a.txt" }, &text, gz);
            let mut p = Pipeline::new(
                PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() },
                &[],
            );
            let mut r = Replayer::new(&mut p);
            r.run(&[path], ReplayOptions::default(), &mut |_| true).unwrap();
            let c = r.counters();
            assert_eq!((c.lines, c.snapshots, c.torn_lines, c.malformed_lines), (3, 1, 1, 0));
            let s = &p.symbols()[0];
            assert_eq!(s.symbol(), "ETHUSDT");
            assert!(s.book().is_synced());
            assert_eq!(s.book().last_update_id(), 12);
        }
    }

    #[test]
    fn a_replay_line_nested_too_deep_is_a_bad_message_and_the_replay_goes_on() {
        let deep = format!("{}{}", "[".repeat(80_000), "]".repeat(80_000));
        let line = format!(r#"{{"stream":"ethusdt@depth@100ms","data":{{"e":"depthUpdate","x":{deep}}}}}"#);
        let text = format!("1 {line}\n2 {{\"x\":{deep}}}\n3 {SNAP}\n4 {D1}\n");
        let path = write_tmp("deep.txt", &text, false);
        // The default 2 MiB test stack, where 80,000 levels of recursion overflow.
        let t = std::thread::Builder::new().stack_size(2 << 20).spawn(move || {
            let mut p = Pipeline::new(
                PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() },
                &[],
            );
            let mut r = Replayer::new(&mut p);
            r.run(&[path], ReplayOptions::default(), &mut |_| true).unwrap();
            assert_eq!(r.counters().lines, 4);
            assert_eq!(p.stats().bad_messages, 2);
            assert!(p.symbols()[0].book().is_synced());
        });
        t.unwrap().join().unwrap();
    }

    #[test]
    fn request_line_names_the_snapshot_symbol() {
        let b1 = D1.replace("ethusdt", "btcusdt").replace("ETHUSDT", "BTCUSDT").replace("2683.80", "61000.00");
        let text = format!("1 {b1}\n2 {D1}\n3 GET /api/v3/depth?symbol=ETHUSDT&limit=1000\n4 {SNAP}\n");
        let path = write_tmp("b.txt", &text, false);
        let mut p =
            Pipeline::new(PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() }, &[]);
        Replayer::new(&mut p).run(std::slice::from_ref(&path), ReplayOptions::default(), &mut |_| true).unwrap();
        let eth = p.find("ethusdt").unwrap();
        assert!(p.symbols()[eth].book().is_synced());
        assert!(!p.symbols()[p.find("btcusdt").unwrap()].book().is_synced());
        // Without the request line, the nearest price decides.
        let text = format!("1 {b1}\n2 {D1}\n4 {SNAP}\n");
        let path = write_tmp("c.txt", &text, false);
        let mut p =
            Pipeline::new(PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() }, &[]);
        Replayer::new(&mut p).run(&[path], ReplayOptions::default(), &mut |_| true).unwrap();
        assert!(p.symbols()[p.find("ethusdt").unwrap()].book().is_synced());
    }

    /// Writes `files` (relative path -> text; a `.gz` name is gzipped) under a fresh folder.
    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("tickfeed-plan-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (rel, text) in files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let f = File::create(&p).unwrap();
            if rel.ends_with(".gz") {
                let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
                e.write_all(text.as_bytes()).unwrap();
                e.finish().unwrap();
            } else {
                let mut f = f;
                f.write_all(text.as_bytes()).unwrap();
            }
        }
        root
    }

    fn runs(segs: &[Segment], root: &Path) -> Vec<(String, Vec<Vec<String>>)> {
        let rel = |p: &PathBuf| p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        segs.iter()
            .map(|s| match s {
                Segment::Files(f) => ("files".to_owned(), vec![f.iter().map(rel).collect()]),
                Segment::Run { id, streams } => {
                    (id.clone(), streams.iter().map(|s| s.files.iter().map(rel).collect()).collect())
                }
            })
            .collect()
    }

    #[test]
    fn plan_groups_takes_into_runs_in_start_order() {
        let root = tree(
            "runs",
            &[
                ("btcusdt/2024-08-08/take_1/.run", "200-1\n"),
                ("btcusdt/2024-08-08/take_1/orderbook/2024-08-08T23.log", "plain twin, skipped"),
                ("btcusdt/2024-08-08/take_1/orderbook/2024-08-08T23.log.gz", ""),
                ("btcusdt/2024-08-08/take_1/orderbook/.2024-08-08T22.log.gz.tmp", "being compressed"),
                ("btcusdt/2024-08-08/take_1/orderbook/x.tmp", ""),
                ("btcusdt/2024-08-08/take_1/trades/2024-08-08T23.log", ""),
                // Started earlier (a racing recorder): replayed first despite its higher number.
                ("btcusdt/2024-08-08/take_2/.run", "100-1\n"),
                ("btcusdt/2024-08-08/take_2/orderbook/2024-08-08T23.log", ""),
                // Numbers compare as numbers; no .run: a run of its own, after the known ones.
                ("btcusdt/2024-08-08/take_10/orderbook/2024-08-08T23.log", ""),
                ("btcusdt/2024-08-08/take_9/orderbook/2024-08-08T23.log", ""),
                // Run 200 crossed midnight: its next take is in the new date's folder.
                ("btcusdt/2024-08-09/take_1/.run", "200-1\n"),
                ("btcusdt/2024-08-09/take_1/orderbook/2024-08-09T00.log", ""),
                ("ethusdt/2024-08-08/take_1/.run", "200-1\n"),
                ("ethusdt/2024-08-08/take_1/orderbook/2024-08-08T23.log", ""),
                ("loose.log", ""),
            ],
        );
        let segs = plan(std::slice::from_ref(&root)).unwrap();
        let name = |s: &str| format!("take {}", root.join(s).display());
        assert_eq!(
            runs(&segs, &root),
            vec![
                ("100-1".to_owned(), vec![vec!["btcusdt/2024-08-08/take_2/orderbook/2024-08-08T23.log".to_owned()]]),
                (
                    "200-1".to_owned(),
                    vec![
                        vec![
                            "btcusdt/2024-08-08/take_1/orderbook/2024-08-08T23.log.gz".to_owned(),
                            "btcusdt/2024-08-09/take_1/orderbook/2024-08-09T00.log".to_owned()
                        ],
                        vec!["btcusdt/2024-08-08/take_1/trades/2024-08-08T23.log".to_owned()],
                        vec!["ethusdt/2024-08-08/take_1/orderbook/2024-08-08T23.log".to_owned()],
                    ]
                ),
                (
                    name("btcusdt/2024-08-08/take_9"),
                    vec![vec!["btcusdt/2024-08-08/take_9/orderbook/2024-08-08T23.log".to_owned()]]
                ),
                (
                    name("btcusdt/2024-08-08/take_10"),
                    vec![vec!["btcusdt/2024-08-08/take_10/orderbook/2024-08-08T23.log".to_owned()]]
                ),
                (format!("folder {}", root.display()), vec![vec!["loose.log".to_owned()]]),
            ]
        );
        if let Segment::Run { streams, .. } = &segs[1] {
            assert_eq!(streams.iter().map(|s| s.rank).collect::<Vec<_>>(), [0, 1, 0]);
        }
        // Files by name are one segment read in order; a run named by two arguments is one run.
        let f = |s: &str| root.join(s);
        let segs = plan(&[
            f("loose.log"),
            f("btcusdt/2024-08-08/take_2/orderbook/2024-08-08T23.log"),
            f("btcusdt/2024-08-09/take_1"),
            f("btcusdt/2024-08-08/take_1"),
            f("loose.log"),
        ])
        .unwrap();
        let r = runs(&segs, &root);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].1, vec![vec!["loose.log", "btcusdt/2024-08-08/take_2/orderbook/2024-08-08T23.log"]]);
        assert_eq!(r[1].0, "200-1");
        assert_eq!(r[1].1[0].len(), 2, "both dates of run 200, in date order: {:?}", r[1]);
        assert!(r[1].1[0][0].contains("2024-08-08"));
        assert_eq!(r[2].1, vec![vec!["loose.log"]]);
        // Errors name the path.
        let e = plan(&[root.join("nope")]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::create_dir_all(root.join("empty/.hidden")).unwrap();
        let e = plan(&[root.join("empty")]).unwrap_err();
        assert!(e.to_string().contains("no recording files"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }

    fn run_ndjson(inputs: &[PathBuf]) -> (String, ReplayCounters, Pipeline) {
        let mut p =
            Pipeline::new(PipelineConfig { output: OutputMode::Ndjson, auto_symbols: true, ..Default::default() }, &[]);
        let mut out = Vec::new();
        let c = {
            let mut r = Replayer::new(&mut p);
            r.run(inputs, ReplayOptions::default(), &mut |p| p.output().flush_to(&mut out).is_ok()).unwrap();
            r.counters()
        };
        (String::from_utf8(out).unwrap(), c, p)
    }

    const T1: &str = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":7,"p":"2683.80000000","q":"1.00000000","T":1,"m":true,"M":true}}"#;

    #[test]
    fn receive_times_in_us_and_ms_are_read_as_such_per_file() {
        // The same trade received 2.5 ms after its event time, stamped by three collectors.
        let e_ms = 1_723_182_855_308_i64;
        let trade = T1.replace("\"E\":1,", &format!("\"E\":{e_ms},"));
        let recv_ns = e_ms * 1_000_000 + 2_500_000;
        let stamps = [("ns.log", recv_ns), ("us.log", recv_ns / 1_000), ("ms.log", recv_ns / 1_000_000)];
        let mut lines = Vec::new();
        for (i, (name, stamp)) in stamps.iter().enumerate() {
            let t = trade.replace("\"t\":7", &format!("\"t\":{}", 7 + i));
            let path = write_tmp(name, &format!("{stamp} {t}\n"), false);
            let (out, c, p) = run_ndjson(&[path]);
            lines.push(out);
            let want = [u64::from(i == 0), u64::from(i == 1), u64::from(i == 2)];
            assert_eq!(c.stamp_units, want, "{name}");
            assert_eq!(p.stats().negative_latency, 0, "{name}");
            // ms stamps lose the sub-millisecond part: 2 ms, not 2.5.
            let lat = if i == 2 { "\"latency_ms\":2.000," } else { "\"latency_ms\":2.500," };
            assert!(lines[i].contains(lat), "{name}: {}", lines[i]);
        }
        assert!(lines[0].starts_with("{\"ts_recv_ms\":1723182855310.500,\"latency_ms\":2.500,"), "{}", lines[0]);
        assert_eq!(lines[0], lines[1].replace("\"t\":8", "\"t\":7"), "µs replays as ns");
        let (_, c, _) =
            run_ndjson(&stamps.iter().map(|(n, s)| write_tmp(n, &format!("{s} {trade}\n"), false)).collect::<Vec<_>>());
        assert_eq!(c.stamp_units, [1, 1, 1]);
        assert_eq!(c.stamps_text(), "receive times: 1 files in ns, 1 in us, 1 in ms (converted to ns)");
    }

    #[test]
    fn a_file_whose_lines_do_not_start_with_a_number_is_refused() {
        for (name, text) in [
            ("header.log", format!("# recorded by something\n1 {T1}\n")),
            ("float.log", format!("1723182855.308 {T1}\n")),
            ("iso.log", format!("2024-08-09T05:54:15Z {T1}\n")),
        ] {
            let path = write_tmp(name, &text, false);
            let mut p = Pipeline::new(PipelineConfig { auto_symbols: true, ..Default::default() }, &[]);
            let err = Replayer::new(&mut p).run(std::slice::from_ref(&path), ReplayOptions::default(), &mut |_| true);
            let err = err.unwrap_err();
            assert!(matches!(err, ReadError::NotStamped { line: 1, .. }), "{name}: {err:?}");
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{}: line 1 does not start with a receive time", path.display())),
                "{text}"
            );
            assert!(!text.contains('\n'), "one line: {text}");
        }
        // Blank lines before the first stamp are fine; a malformed line later is counted, not fatal.
        let path = write_tmp("later.log", &format!("\n1 {T1}\nnot a line\n"), false);
        let (_, c, p) = run_ndjson(&[path]);
        assert_eq!((c.malformed_lines, p.stats().trades), (1, 1));
    }

    #[test]
    fn merge_orders_by_time_then_orderbook_before_trades() {
        let d2 = D1.replace("\"U\":10,\"u\":12", "\"U\":13,\"u\":13");
        let root = tree(
            "ties",
            &[
                ("ethusdt/2024-08-08/take_1/trades/a.log", &format!("5 {T1}\n")),
                (
                    "ethusdt/2024-08-08/take_1/orderbook/a.log",
                    &format!("1 GET /api/v3/depth?symbol=ETHUSDT&limit=5\n1 {SNAP}\n5 {D1}\n6 {d2}\n"),
                ),
            ],
        );
        let (out, c, p) = run_ndjson(std::slice::from_ref(&root));
        let streams: Vec<&str> = out.lines().map(|l| &l[l.find("\"stream\":\"").unwrap() + 10..][..12]).collect();
        assert_eq!(streams, ["ethusdt@dept", "ethusdt@trad", "ethusdt@dept"], "{out}");
        assert_eq!((c.lines, c.snapshots, c.runs), (5, 1, 1));
        assert_eq!(p.symbols()[0].book().last_update_id(), 13);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn books_are_reset_between_runs() {
        // Run 2 is far ahead of run 1: without a reset its snapshot would be ignored (the book
        // is synced) and its first diff would be a gap.
        let shift = |s: &str| s.replace(":10,", ":1010,").replace(":11,", ":1011,").replace(":12,", ":1012,");
        let root = tree(
            "reset",
            &[
                ("ethusdt/2024-08-08/take_1/.run", "100-1\n"),
                ("ethusdt/2024-08-08/take_1/orderbook/a.log", &format!("1 {SNAP}\n2 {D1}\n")),
                ("ethusdt/2024-08-08/take_2/.run", "200-1\n"),
                ("ethusdt/2024-08-08/take_2/orderbook/a.log", &format!("9 {}\n10 {}\n", shift(SNAP), shift(D1))),
            ],
        );
        let (_, c, p) = run_ndjson(std::slice::from_ref(&root));
        assert_eq!(c.runs, 2);
        let b = p.symbols()[0].book();
        assert!(b.is_synced());
        assert_eq!(b.last_update_id(), 1012);
        assert_eq!(b.counters().gaps, 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
