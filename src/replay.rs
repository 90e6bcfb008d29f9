//! Replay of recordings through the same pipeline as the live handler.
//!
//! A recording is lines of `<local receive time in ns> <raw frame or raw REST body>` (the format
//! of the shared Binance captures and of `tickfeed run --record`), plain or gzip (detected by its
//! magic bytes, not its name). Files are read in the order given. A REST depth body carries no
//! symbol: it goes to the symbol named by a preceding recorded request line
//! (`<ns> GET /api/v3/depth?symbol=BTCUSDT&limit=1000`), else to the one symbol whose streams the
//! same file carries, else (several symbols, no request line) to the symbol whose last seen price
//! is nearest the snapshot's best bid. A torn last line (a killed recorder) is counted and skipped.
//!
//! This module reads files; it does not pace, print or decide anything about books.

use crate::decode::{parse_stream_name, split_envelope, Envelope, LevelBuf};
use crate::pipeline::{FrameOutcome, Pipeline};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Opens a recording, transparently gunzipping it.
pub fn open_recording(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut f, &mut magic)?;
    drop(f);
    let f = File::open(path)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(BufReader::with_capacity(1 << 16, f)))))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// One recorded line, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedLine<'a> {
    /// A frame or REST body and its receive time.
    Data {
        /// Local receive time, ns since the epoch.
        recv_ns: i64,
        /// The raw JSON.
        json: &'a [u8],
    },
    /// A recorded REST request line (`GET /api/v3/depth?symbol=..&limit=..`).
    Request {
        /// When it was sent, ns since the epoch.
        recv_ns: i64,
        /// The request line.
        text: &'a [u8],
    },
    /// Blank.
    Empty,
    /// Not of the form `<ns> <payload>`.
    Malformed,
}

/// Splits a line (without its newline) into time and payload.
pub fn split_line(line: &[u8]) -> RecordedLine<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return RecordedLine::Empty;
    }
    let Some(sp) = line.iter().position(|&c| c == b' ') else { return RecordedLine::Malformed };
    let (ts, rest) = (&line[..sp], &line[sp + 1..]);
    if ts.is_empty() || ts.len() > 19 || !ts.iter().all(u8::is_ascii_digit) {
        return RecordedLine::Malformed;
    }
    let recv_ns = ts.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64);
    if rest.first() == Some(&b'{') {
        RecordedLine::Data { recv_ns, json: rest }
    } else if rest.starts_with(b"GET ") {
        RecordedLine::Request { recv_ns, text: rest }
    } else {
        RecordedLine::Malformed
    }
}

/// The symbol of a recorded depth request line, if it is one.
pub fn request_symbol(text: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(text).ok()?;
    let q = s.split_once("/api/v3/depth?")?.1;
    let q = q.split_whitespace().next()?;
    q.split('&').find_map(|kv| kv.strip_prefix("symbol="))
}

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
}

/// Options of one replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Stop after this many market events.
    pub max_events: Option<u64>,
    /// Measure in-process time per frame (two clock reads per frame).
    pub measure: bool,
}

/// Drives recordings through a pipeline; `flush` is called whenever output is worth writing.
pub struct Replayer<'p> {
    p: &'p mut Pipeline,
    counters: ReplayCounters,
    scratch: LevelBuf,
}

impl<'p> Replayer<'p> {
    /// A replayer feeding `p`.
    pub fn new(p: &'p mut Pipeline) -> Replayer<'p> {
        Replayer { p, counters: ReplayCounters::default(), scratch: LevelBuf::default() }
    }

    /// What was read so far.
    pub fn counters(&self) -> ReplayCounters {
        self.counters
    }

    /// Replays the files in order. `flush` receives the pipeline whenever its output buffer is
    /// large and at the end; it returns false to stop early (stdout closed).
    pub fn run(
        &mut self,
        paths: &[PathBuf],
        opts: ReplayOptions,
        flush: &mut dyn FnMut(&mut Pipeline) -> bool,
    ) -> io::Result<()> {
        'files: for path in paths {
            let mut r =
                open_recording(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let mut file = FileState::default();
            let mut line = Vec::with_capacity(1 << 16);
            loop {
                line.clear();
                let n = r
                    .read_until(b'\n', &mut line)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                if n == 0 {
                    break;
                }
                let complete = line.last() == Some(&b'\n');
                if complete {
                    line.pop();
                }
                self.counters.lines += 1;
                if !self.line(&line, complete, &mut file, opts) {
                    continue;
                }
                if self.p.output().pending() >= 64 * 1024 && !flush(self.p) {
                    break 'files;
                }
                if opts.max_events.is_some_and(|m| self.p.stats().events >= m) {
                    break 'files;
                }
            }
            if let Some((ns, body)) = file.deferred.take() {
                // A snapshot in a file whose streams never named a symbol: nobody to give it to.
                let _ = (ns, body);
                self.counters.unattributed_snapshots += 1;
            }
        }
        flush(self.p);
        Ok(())
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
                self.data(recv_ns, json, file, opts);
                true
            }
        }
    }

    fn data(&mut self, recv_ns: i64, json: &[u8], file: &mut FileState, opts: ReplayOptions) {
        if file.deferred.is_some() {
            if let Ok(Envelope::Stream { stream, .. }) = split_envelope(json) {
                if let Some(name) = parse_stream_name(stream) {
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

    fn snapshot(&mut self, idx: usize, recv_ns: i64, body: &[u8]) {
        self.counters.snapshots += 1;
        let _ = self.p.on_snapshot(idx, recv_ns, body);
    }

    /// The symbol among `candidates` whose last price is relatively nearest the snapshot's best bid.
    fn nearest_symbol(&mut self, body: &[u8], candidates: &[usize]) -> Option<usize> {
        crate::decode::decode_snapshot(body, &mut self.scratch).ok()?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputMode;
    use crate::pipeline::PipelineConfig;
    use std::io::Write;

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
    fn snapshot_before_any_stream_line_waits_for_the_symbol_and_torn_line_is_skipped() {
        let text = format!("1 {SNAP}\n2 {D1}\n3 {{\"stream\":\"ethusdt@depth@100ms\",\"data\":{{\"e\":\"dep");
        for gz in [false, true] {
            let path = write_tmp(if gz { "a.gz" } else { "a.txt" }, &text, gz);
            let mut p = Pipeline::new(
                PipelineConfig { output: OutputMode::None, log: false, auto_symbols: true, ..Default::default() },
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
    fn request_line_names_the_snapshot_symbol() {
        let b1 = D1.replace("ethusdt", "btcusdt").replace("ETHUSDT", "BTCUSDT").replace("2683.80", "61000.00");
        let text = format!("1 {b1}\n2 {D1}\n3 GET /api/v3/depth?symbol=ETHUSDT&limit=1000\n4 {SNAP}\n");
        let path = write_tmp("b.txt", &text, false);
        let mut p = Pipeline::new(
            PipelineConfig { output: OutputMode::None, log: false, auto_symbols: true, ..Default::default() },
            &[],
        );
        Replayer::new(&mut p).run(std::slice::from_ref(&path), ReplayOptions::default(), &mut |_| true).unwrap();
        let eth = p.find("ethusdt").unwrap();
        assert!(p.symbols()[eth].book().is_synced());
        assert!(!p.symbols()[p.find("btcusdt").unwrap()].book().is_synced());
        // Without the request line, the nearest price decides.
        let text = format!("1 {b1}\n2 {D1}\n4 {SNAP}\n");
        let path = write_tmp("c.txt", &text, false);
        let mut p = Pipeline::new(
            PipelineConfig { output: OutputMode::None, log: false, auto_symbols: true, ..Default::default() },
            &[],
        );
        Replayer::new(&mut p).run(&[path], ReplayOptions::default(), &mut |_| true).unwrap();
        assert!(p.symbols()[p.find("ethusdt").unwrap()].book().is_synced());
    }
}
