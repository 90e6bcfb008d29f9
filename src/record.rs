//! `--record DIR`: raw capture of what the live handler receives, in the recording format
//! `tickfeed replay` reads (`<local receive ns> <raw frame or REST body>` per line).
//!
//! Layout: `DIR/{symbol}/{YYYYMMDD}/take_{n}/{orderbook,trades,aggTrades}/{symbol}_{YYYYMMDD}.log`,
//! `n` the first take number not yet used; the date is the UTC day the run started (a run past
//! midnight keeps writing the same take). `orderbook` holds depth diffs, bookTickers and REST
//! snapshots, each snapshot preceded by its request line (`<ns> GET /api/v3/depth?symbol=..`) so
//! replay knows whose it is; `trades` and `aggTrades` hold those streams. Frames are recorded as
//! the pipeline takes them (during a connection switch both connections' copies may appear;
//! replay skips duplicates as the live pipeline does).
//!
//! Files are buffered (1 MiB each) and opened at start, so recording costs a copy per frame and a
//! `write` per MiB; a failed write stops the recording with one log line, never the run.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::decode::{parse_stream_name, split_envelope, Envelope, StreamKind};

const KINDS: [&str; 3] = ["orderbook", "trades", "aggTrades"];

/// The capture files of one run.
pub struct Recorder {
    /// Per symbol (pipeline order): lowercase name and the three writers.
    symbols: Vec<(String, [BufWriter<File>; 3])>,
    /// Where the takes are, for the log line.
    dirs: Vec<PathBuf>,
    failed: bool,
    log: bool,
}

/// `YYYYMMDD` (UTC) of a Unix time in seconds (Howard Hinnant's civil_from_days).
pub fn utc_date(unix_secs: i64) -> String {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

impl Recorder {
    /// Creates the take directories and files for `symbols` under `dir`, dated `unix_secs`.
    pub fn create(dir: &Path, symbols: &[String], unix_secs: i64, log: bool) -> io::Result<Recorder> {
        let date = utc_date(unix_secs);
        let mut out = Vec::new();
        let mut dirs = Vec::new();
        for s in symbols {
            let lower = s.to_ascii_lowercase();
            let day = dir.join(&lower).join(&date);
            let mut n = 1;
            let take = loop {
                let t = day.join(format!("take_{n}"));
                if !t.exists() {
                    break t;
                }
                n += 1;
            };
            let open = |kind: &str| -> io::Result<BufWriter<File>> {
                let d = take.join(kind);
                std::fs::create_dir_all(&d)?;
                let f = File::create(d.join(format!("{lower}_{date}.log")))?;
                Ok(BufWriter::with_capacity(1 << 20, f))
            };
            let writers = [open(KINDS[0])?, open(KINDS[1])?, open(KINDS[2])?];
            dirs.push(take);
            out.push((lower, writers));
        }
        Ok(Recorder { symbols: out, dirs, failed: false, log })
    }

    /// The take directories, one per symbol.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn line(&mut self, symbol: usize, kind: usize, recv_ns: i64, payload: &[u8]) {
        if self.failed {
            return;
        }
        let Some((_, w)) = self.symbols.get_mut(symbol) else { return };
        let w = &mut w[kind];
        let mut num = [0u8; 20];
        let ns = fmt_i64(recv_ns, &mut num);
        let r = w
            .write_all(ns)
            .and_then(|()| w.write_all(b" "))
            .and_then(|()| w.write_all(payload))
            .and_then(|()| w.write_all(b"\n"));
        if let Err(e) = r {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        self.failed = true;
        if self.log {
            eprintln!("tickfeed: --record: write failed ({e}): recording stops, the run goes on");
        }
    }

    /// Records a websocket frame the pipeline took (market frames only; others are skipped).
    pub fn frame(&mut self, recv_ns: i64, frame: &[u8]) {
        let Ok(Envelope::Stream { stream, .. }) = split_envelope(frame) else { return };
        let Some(name) = parse_stream_name(stream) else { return };
        let Some(sym) = self.symbols.iter().position(|(l, _)| l.eq_ignore_ascii_case(name.symbol)) else { return };
        let kind = match name.kind {
            StreamKind::Depth | StreamKind::BookTicker => 0,
            StreamKind::Trade => 1,
            StreamKind::AggTrade => 2,
        };
        self.line(sym, kind, recv_ns, frame);
    }

    /// Records a REST snapshot request line (`GET /api/v3/depth?...`), sent at `sent_ns`.
    pub fn snapshot_request(&mut self, symbol: usize, sent_ns: i64, request: &str) {
        self.line(symbol, 0, sent_ns, request.as_bytes());
    }

    /// Records a REST snapshot body.
    pub fn snapshot(&mut self, symbol: usize, recv_ns: i64, body: &[u8]) {
        // A body is one line in the recording: Binance's is compact JSON; anything else is
        // recorded with its line breaks turned into spaces.
        if body.contains(&b'\n') {
            let flat: Vec<u8> = body.iter().map(|&c| if c == b'\n' || c == b'\r' { b' ' } else { c }).collect();
            self.line(symbol, 0, recv_ns, &flat);
        } else {
            self.line(symbol, 0, recv_ns, body);
        }
    }

    /// Writes everything buffered (at exit).
    pub fn flush(&mut self) {
        if self.failed {
            return;
        }
        for i in 0..self.symbols.len() {
            for k in 0..3 {
                if let Err(e) = self.symbols[i].1[k].flush() {
                    self.fail(&e);
                    return;
                }
            }
        }
    }
}

fn fmt_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "19700101");
        assert_eq!(utc_date(1_723_161_253), "20240808");
        assert_eq!(utc_date(951_782_400), "20000229");
        assert_eq!(utc_date(1_709_251_199), "20240229");
    }

    #[test]
    fn layout_and_lines_replay_can_read() {
        let dir = std::env::temp_dir().join(format!("tickfeed-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let syms = vec!["BTCUSDT".to_string()];
        let mut r = Recorder::create(&dir, &syms, 1_723_161_253, false).unwrap();
        let take = dir.join("btcusdt/20240808/take_1");
        assert_eq!(r.dirs(), std::slice::from_ref(&take));
        r.frame(5, br#"{"stream":"btcusdt@trade","data":{"e":"trade"}}"#);
        r.frame(6, br#"{"stream":"btcusdt@depth@100ms","data":{}}"#);
        r.frame(7, br#"{"stream":"ethusdt@trade","data":{}}"#);
        r.snapshot_request(0, 8, "GET /api/v3/depth?symbol=BTCUSDT&limit=1000");
        r.snapshot(0, 9, b"{\"lastUpdateId\":1,\n\"bids\":[],\"asks\":[]}");
        r.flush();
        let read = |k: &str| std::fs::read_to_string(take.join(k).join("btcusdt_20240808.log")).unwrap();
        assert_eq!(read("trades"), "5 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\"}}\n");
        assert_eq!(
            read("orderbook"),
            "6 {\"stream\":\"btcusdt@depth@100ms\",\"data\":{}}\n8 GET /api/v3/depth?symbol=BTCUSDT&limit=1000\n9 {\"lastUpdateId\":1, \"bids\":[],\"asks\":[]}\n"
        );
        assert_eq!(read("aggTrades"), "");
        // A second run the same day is take 2.
        let r2 = Recorder::create(&dir, &syms, 1_723_161_300, false).unwrap();
        assert_eq!(r2.dirs(), &[dir.join("btcusdt/20240808/take_2")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
