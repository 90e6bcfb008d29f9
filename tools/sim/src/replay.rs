//! Replay of recordings: reads `<recv ns> <raw frame or REST body>` lines (gzip or plain) from
//! files or from tickfeed capture directories, merges them by receive time, and turns them into
//! timed market events with `E`/`T` re-stamped at send time and ids, prices and quantities kept.
//!
//! Reference book policy (documented because a replay starts mid-stream): a symbol's reference
//! book starts at its first recorded REST snapshot (`{"lastUpdateId":...}` line). Recorded diffs
//! ending at or before that id are not replayed; every later diff is, including one recorded just
//! before the snapshot that bridges it (U <= lastUpdateId+1 <= u), so REST depth always has an
//! exact answer and a correct client converges. A symbol with no snapshot is replayed but its book
//! is unknown: REST depth answers 503 (-1008) and `reference_book` is `None`. A gap inside a
//! recording makes the book unknown from there on (counted in `replay_gaps`).
//!
//! `@depth@100ms` recordings also feed a synthesized `@depth` (1000 ms) stream: every ten diffs
//! merged, as Binance's slower stream would carry them. Not handled: recordings of streams other
//! than diff depth, trade, aggTrade, bookTicker are passed through untouched under their recorded
//! stream names.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::book::{Diff, History, Level, LiveBook};
use crate::decimal::parse_units;
use crate::event::{Fields, MarketEvent, Payload, StreamKind, StreamRegistry};
use crate::hub::SymbolBook;
use crate::market::Source;
use crate::symbols::SymbolSpec;
use crate::synth::{depth_payload, Timed};

/// A loaded replay: the symbols' starting books and the event source.
pub(crate) struct Replay {
    pub books: Vec<SymbolBook>,
    pub source: ReplaySource,
}

/// Pre-built timed events, handed out in order.
pub(crate) struct ReplaySource {
    events: std::vec::IntoIter<Timed>,
}

impl Source for ReplaySource {
    fn next_event(&mut self) -> Option<Timed> {
        self.events.next()
    }
}

/// One recorded line, classified.
enum Rec {
    Snapshot(LiveBook),
    Frame { stream: String, data: String },
}

struct Line {
    recv_ns: u64,
    file: usize,
    rec: Rec,
}

#[derive(Deserialize)]
struct RawDiff<'a> {
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    #[serde(rename = "b", borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(rename = "a", borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
struct RawSnapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

fn levels(raw: &[(&str, &str)]) -> Option<Vec<Level>> {
    raw.iter().map(|(p, q)| Some(Level { price: parse_units(p)?, qty: parse_units(q)? })).collect()
}

/// Expands directories (recursively, sorted) into files.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    if out.is_empty() {
        return Err("replay: no recording files found".into());
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("replay: cannot read {}: {e}", p.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| format!("replay: cannot list {}: {e}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')))
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, out)?;
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// The symbol a tickfeed capture path names: `.../{symbol}/{date}/take_{n}/{kind}/{file}`.
fn symbol_from_path(p: &Path) -> Option<String> {
    let comps: Vec<&str> = p.iter().filter_map(|c| c.to_str()).collect();
    let i = comps.iter().position(|c| c.starts_with("take_"))?;
    let sym = comps.get(i.checked_sub(2)?)?;
    (!sym.is_empty() && sym.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| sym.to_ascii_uppercase())
}

fn open(p: &Path) -> Result<Box<dyn BufRead>, String> {
    let mut f = File::open(p).map_err(|e| format!("replay: cannot open {}: {e}", p.display()))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| format!("replay: cannot read {}: {e}", p.display()))?;
    let f = File::open(p).map_err(|e| format!("replay: cannot open {}: {e}", p.display()))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(1 << 16, flate2::read::MultiGzDecoder::new(f))))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
    }
}

/// Splits `{"stream":"NAME","data":DATA}` without a full parse (Binance writes it exactly so).
fn split_combined(json: &str) -> Option<(&str, &str)> {
    let rest = json.strip_prefix("{\"stream\":\"")?;
    let q = rest.find('"')?;
    let name = &rest[..q];
    let data = rest[q..].strip_prefix("\",\"data\":")?.trim_end();
    let data = data.strip_suffix('}')?;
    data.starts_with('{').then_some((name, data))
}

/// Value of a top-level `"key":"value"` string field (first occurrence).
fn str_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let i = json.find(&pat)? + pat.len();
    let end = json[i..].find('"')?;
    Some(&json[i..i + end])
}

/// Stream name for a raw (`/ws`) frame, inferred from its shape.
fn infer_stream(data: &str) -> Option<String> {
    let sym = str_field(data, "s")?.to_ascii_lowercase();
    let suffix = match str_field(data, "e") {
        Some("depthUpdate") => "depth@100ms",
        Some("trade") => "trade",
        Some("aggTrade") => "aggTrade",
        Some(_) => return None,
        None if data.starts_with("{\"u\":") => "bookTicker",
        None => return None,
    };
    Some(format!("{sym}@{suffix}"))
}

fn read_file(
    path: &Path,
    file: usize,
    lines: &mut Vec<Line>,
    file_symbol: &mut Option<String>,
) -> Result<usize, String> {
    let mut reader = open(path)?;
    let mut buf = String::new();
    let mut skipped = 0;
    loop {
        buf.clear();
        match reader.read_line(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("replay: {}: {e}", path.display())),
        }
        let line = buf.trim_end();
        let Some((ts, json)) = line.split_once(' ') else {
            skipped += usize::from(!line.is_empty());
            continue;
        };
        let Ok(recv_ns) = ts.parse::<u64>() else {
            skipped += 1;
            continue;
        };
        let json = json.trim();
        let rec = if json.starts_with("{\"lastUpdateId\"") {
            let Ok(s) = serde_json::from_str::<RawSnapshot>(json) else {
                skipped += 1;
                continue;
            };
            let (Some(bids), Some(asks)) = (levels(&s.bids), levels(&s.asks)) else {
                skipped += 1;
                continue;
            };
            Rec::Snapshot(LiveBook {
                bids: bids.iter().map(|l| (l.price, l.qty)).collect(),
                asks: asks.iter().map(|l| (l.price, l.qty)).collect(),
                last_update_id: s.last_update_id,
            })
        } else if let Some((name, data)) = split_combined(json) {
            Rec::Frame { stream: name.to_string(), data: data.to_string() }
        } else if let Some(name) = infer_stream(json) {
            Rec::Frame { stream: name, data: json.to_string() }
        } else {
            skipped += 1;
            continue;
        };
        if file_symbol.is_none() {
            if let Rec::Frame { stream, .. } = &rec {
                if let Some((sym, _)) = stream.split_once('@') {
                    *file_symbol = Some(sym.to_ascii_uppercase());
                }
            }
        }
        lines.push(Line { recv_ns, file, rec });
    }
    Ok(skipped)
}

/// Cuts the first `"E":<digits>` and `"T":<digits>` out of a payload so they are re-stamped at
/// send time; T keeps its recorded distance before E.
fn template(data: &str) -> Payload {
    let find = |key: &str| -> Option<(usize, usize, i64)> {
        let i = data.find(key)? + key.len();
        let len = data[i..].bytes().take_while(u8::is_ascii_digit).count();
        let v = data[i..i + len].parse::<i64>().ok()?;
        Some((i, i + len, v))
    };
    let e = find("\"E\":");
    let t = find("\"T\":");
    // Recorded times above 1e14 are already microseconds.
    let to_us = |v: i64| {
        if v >= 100_000_000_000_000 {
            v
        } else {
            v * 1000
        }
    };
    let mut cuts: Vec<(usize, usize, i64)> = Vec::new();
    if let Some((s, end, _)) = e {
        cuts.push((s, end, 0));
    }
    if let Some((s, end, tv)) = t {
        let lag = e.map_or(0, |(_, _, ev)| (to_us(ev) - to_us(tv)).max(0));
        cuts.push((s, end, lag));
    }
    cuts.sort_by_key(|c| c.0);
    let mut p = Payload::new();
    let mut from = 0;
    for (s, end, lag) in cuts {
        p.push_str(&data[from..s]);
        p.push_time(lag);
        from = end;
    }
    p.push_str(&data[from..]);
    p
}

/// Loads recordings into books and a source.
pub(crate) fn load(paths: &[PathBuf], streams: &mut StreamRegistry, history_diffs: usize) -> Result<Replay, String> {
    let files = expand(paths)?;
    let mut lines = Vec::new();
    let mut snapshot_symbol: HashMap<usize, String> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        let mut sym = symbol_from_path(f);
        read_file(f, i, &mut lines, &mut sym)?;
        if let Some(s) = sym {
            snapshot_symbol.insert(i, s);
        }
    }
    // Stable: equal receive times keep file and line order.
    lines.sort_by_key(|l| l.recv_ns);
    if lines.is_empty() {
        return Err("replay: the recordings hold no usable lines".into());
    }

    // Symbols in order of first appearance, their first snapshot and primary depth stream.
    let mut order: Vec<String> = Vec::new();
    let mut snapshots: HashMap<String, LiveBook> = HashMap::new();
    let mut has_100ms: HashMap<String, bool> = HashMap::new();
    let mut has_1000ms: HashMap<String, bool> = HashMap::new();
    for l in &lines {
        let sym = match &l.rec {
            Rec::Snapshot(_) => match snapshot_symbol.get(&l.file) {
                Some(s) => s.clone(),
                None => return Err(format!("replay: {} has a depth snapshot but no symbol", files[l.file].display())),
            },
            Rec::Frame { stream, .. } => match stream.split_once('@') {
                Some((s, _)) if !s.starts_with('!') => s.to_ascii_uppercase(),
                _ => continue,
            },
        };
        if !order.contains(&sym) {
            order.push(sym.clone());
        }
        match &l.rec {
            Rec::Snapshot(b) => {
                snapshots.entry(sym).or_insert_with(|| b.clone());
            }
            Rec::Frame { stream, .. } => {
                if stream.ends_with("@depth@100ms") {
                    has_100ms.insert(sym, true);
                } else if stream.ends_with("@depth") {
                    has_1000ms.insert(sym, true);
                }
            }
        }
    }

    let mut books = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for sym in &order {
        index.insert(sym.clone(), books.len());
        books.push(SymbolBook {
            spec: SymbolSpec::for_symbol(sym),
            history: snapshots.get(sym).map(|b| History::new(b.clone(), history_diffs)),
        });
    }

    struct Acc {
        first: Option<u64>,
        levels: BTreeMap<(u8, i64), i64>,
        count: u32,
    }
    let mut accs: HashMap<usize, Acc> = HashMap::new();
    let base_ns = lines[0].recv_ns;
    let mut events = Vec::with_capacity(lines.len());
    for l in lines {
        let Rec::Frame { stream, data } = l.rec else {
            continue;
        };
        let Some((sym_lower, suffix)) = stream.split_once('@') else {
            continue;
        };
        let sym = sym_lower.to_ascii_uppercase();
        let Some(&si) = index.get(&sym) else { continue };
        let at_ns = l.recv_ns - base_ns;
        let kind = StreamKind::of_name(&stream);
        let primary =
            (suffix == "depth@100ms") || (suffix == "depth" && !has_100ms.get(&sym).copied().unwrap_or(false));
        let mut reference = None;
        if primary {
            let Ok(raw) = serde_json::from_str::<RawDiff>(&data) else {
                continue;
            };
            let (Some(bids), Some(asks)) = (levels(&raw.bids), levels(&raw.asks)) else {
                continue;
            };
            if let Some(snap) = snapshots.get(&sym) {
                if raw.last <= snap.last_update_id {
                    continue;
                }
            }
            let diff = Arc::new(Diff { first_id: raw.first, last_id: raw.last, bids, asks });
            reference = Some(diff.clone());
            if suffix == "depth@100ms" && !has_1000ms.get(&sym).copied().unwrap_or(false) {
                let acc = accs.entry(si).or_insert(Acc { first: None, levels: BTreeMap::new(), count: 0 });
                acc.first.get_or_insert(diff.first_id);
                for lv in &diff.bids {
                    acc.levels.insert((0, lv.price), lv.qty);
                }
                for lv in &diff.asks {
                    acc.levels.insert((1, lv.price), lv.qty);
                }
                acc.count += 1;
                if acc.count == 10 {
                    let merged = Diff {
                        first_id: acc.first.take().unwrap_or(diff.first_id),
                        last_id: diff.last_id,
                        bids: acc
                            .levels
                            .range((0, i64::MIN)..=(0, i64::MAX))
                            .rev()
                            .map(|(&(_, price), &qty)| Level { price, qty })
                            .collect(),
                        asks: acc
                            .levels
                            .range((1, i64::MIN)..=(1, i64::MAX))
                            .map(|(&(_, price), &qty)| Level { price, qty })
                            .collect(),
                    };
                    acc.levels.clear();
                    acc.count = 0;
                    let stream_id = streams.intern(&format!("{sym_lower}@depth"));
                    // Published right after the 100 ms diff that completes it.
                    events.push(Timed {
                        at_ns,
                        event: MarketEvent {
                            symbol: si,
                            stream: streams.intern(&stream),
                            kind,
                            payload: template(&data),
                            reference: reference.take(),
                            fields: Fields::Opaque,
                        },
                    });
                    events.push(Timed {
                        at_ns,
                        event: MarketEvent {
                            symbol: si,
                            stream: stream_id,
                            kind: StreamKind::Depth,
                            payload: depth_payload(&sym, &merged),
                            reference: None,
                            fields: Fields::Opaque,
                        },
                    });
                    continue;
                }
            }
        }
        events.push(Timed {
            at_ns,
            event: MarketEvent {
                symbol: si,
                stream: streams.intern(&stream),
                kind,
                payload: template(&data),
                reference,
                fields: Fields::Opaque,
            },
        });
    }
    if events.is_empty() {
        return Err("replay: the recordings hold no market events".into());
    }
    Ok(Replay { books, source: ReplaySource { events: events.into_iter() } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_combined_and_infers_raw() {
        let j = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT"}}"#;
        assert_eq!(split_combined(j), Some(("btcusdt@trade", r#"{"e":"trade","E":1,"s":"BTCUSDT"}"#)));
        assert_eq!(
            infer_stream(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1}"#).as_deref(),
            Some("btcusdt@depth@100ms")
        );
        assert_eq!(infer_stream(r#"{"u":5,"s":"ETHUSDT","b":"1"}"#).as_deref(), Some("ethusdt@bookTicker"));
        assert_eq!(infer_stream(r#"{"result":null,"id":1}"#), None);
        assert_eq!(
            symbol_from_path(Path::new("/cap/btcusdt/2024-08-08/take_1/orderbook/0.log")).as_deref(),
            Some("BTCUSDT")
        );
    }

    #[test]
    fn templates_restamp_e_and_keep_t_lag() {
        let p = template(r#"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":1,"T":1723161255342,"m":true}"#);
        let mut s = String::new();
        p.render_into(&mut s, 2_000_000_000_000_000, false);
        assert_eq!(s, r#"{"e":"trade","E":2000000000000,"s":"BTCUSDT","t":1,"T":1999999999999,"m":true}"#);
        let p = template(r#"{"u":1,"s":"X"}"#);
        assert!(p.slots.is_empty());
    }
}
