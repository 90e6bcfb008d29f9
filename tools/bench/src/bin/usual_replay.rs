//! The usual approach to replaying a Binance recording, for `replay_race` to set beside
//! `tickfeed replay`: each line read into a `String`, parsed into a `serde_json::Value`, a
//! `BTreeMap` book per side, the official sync procedure (buffer, snapshot, drop what it covers,
//! apply, a gap resyncs), and the bookTicker check against the book. Prices and quantities are
//! `rust_decimal::Decimal` keys and values, the usual choice; with `--int-decimals` they go
//! through tickfeed's own parser into integers instead (as the e2e benchmark's usual client does),
//! which leaves only the JSON value and the tree book to compare.
//!
//! `usual-replay [--int-decimals] FILE...` (plain or gzip); prints one summary line on stderr.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use tickfeed::book::fixed::parse_units_str;

/// A price or quantity as the book keeps it.
trait Num: Ord + Copy + Default {
    fn parse(v: &Value) -> Self;
    fn is_zero(&self) -> bool;
}

impl Num for i64 {
    fn parse(v: &Value) -> i64 {
        v.as_str().and_then(|s| parse_units_str(s).ok()).unwrap_or(0)
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

impl Num for rust_decimal::Decimal {
    fn parse(v: &Value) -> Self {
        v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
    }
    fn is_zero(&self) -> bool {
        rust_decimal::Decimal::is_zero(self)
    }
}

#[derive(Default)]
struct Book<N> {
    bids: BTreeMap<N, N>,
    asks: BTreeMap<N, N>,
    last: u64,
    synced: bool,
    buffered: Vec<Value>,
    checks: u64,
    mismatches: u64,
}

fn apply<N: Num>(side: &mut BTreeMap<N, N>, levels: &Value) {
    for l in levels.as_array().into_iter().flatten() {
        let (p, q) = (N::parse(&l[0]), N::parse(&l[1]));
        if q.is_zero() {
            side.remove(&p);
        } else {
            side.insert(p, q);
        }
    }
}

impl<N: Num> Book<N> {
    fn diff(&mut self, d: &Value) {
        if !self.synced {
            self.buffered.push(d.clone());
            return;
        }
        let (first, last) = (d["U"].as_u64().unwrap_or(0), d["u"].as_u64().unwrap_or(0));
        if last <= self.last {
            return;
        }
        if first > self.last + 1 {
            self.synced = false;
            self.buffered.push(d.clone());
            return;
        }
        apply(&mut self.bids, &d["b"]);
        apply(&mut self.asks, &d["a"]);
        self.last = last;
    }

    fn snapshot(&mut self, s: &Value) {
        self.bids.clear();
        self.asks.clear();
        apply(&mut self.bids, &s["bids"]);
        apply(&mut self.asks, &s["asks"]);
        self.last = s["lastUpdateId"].as_u64().unwrap_or(0);
        self.synced = true;
        for d in std::mem::take(&mut self.buffered) {
            self.diff(&d);
        }
    }

    fn ticker(&mut self, t: &Value) {
        if self.synced && t["u"].as_u64() == Some(self.last) {
            self.checks += 1;
            let bid = self.bids.iter().next_back().map(|(p, q)| (*p, *q));
            let ask = self.asks.iter().next().map(|(p, q)| (*p, *q));
            let (b, bq, a, aq) = (N::parse(&t["b"]), N::parse(&t["B"]), N::parse(&t["a"]), N::parse(&t["A"]));
            if bid != Some((b, bq)) || ask != Some((a, aq)) {
                self.mismatches += 1;
            }
        }
    }
}

fn main() {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    let ints = paths.first().is_some_and(|a| a == "--int-decimals");
    if ints {
        paths.remove(0);
    }
    if paths.is_empty() || paths.iter().any(|p| p.starts_with("--")) {
        eprintln!("usage: usual-replay [--int-decimals] FILE...");
        std::process::exit(2);
    }
    if ints {
        run::<i64>(paths)
    } else {
        run::<rust_decimal::Decimal>(paths)
    }
}

fn run<N: Num>(paths: Vec<String>) {
    let (mut book, mut events, mut trades) = (Book::<N>::default(), 0u64, 0u64);
    for path in paths {
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("usual-replay: {path}: {e}");
                std::process::exit(1);
            }
        };
        let r: Box<dyn Read> =
            if path.ends_with(".gz") { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) };
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let Some((_, json)) = line.split_once(' ') else { continue };
            let Ok(v) = serde_json::from_str::<Value>(json) else { continue };
            if v.get("lastUpdateId").is_some() {
                book.snapshot(&v);
                continue;
            }
            let (Some(stream), data) = (v["stream"].as_str(), &v["data"]) else { continue };
            events += 1;
            if stream.contains("@depth") {
                book.diff(data);
            } else if stream.ends_with("@bookTicker") {
                book.ticker(data);
            } else if stream.ends_with("@trade") {
                trades += 1;
                std::hint::black_box((N::parse(&data["p"]), N::parse(&data["q"]), data["t"].as_u64()));
            }
        }
    }
    eprintln!(
        "usual-replay: events {events} trades {trades} lastUpdateId {} bids {} asks {} bookTicker checks {} mismatches {}",
        book.last,
        book.bids.len(),
        book.asks.len(),
        book.checks,
        book.mismatches
    );
}
