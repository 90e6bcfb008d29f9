//! A JSON recording converted to SBE: each `<ns> <frame>` line of Binance's JSON streams becomes
//! `<ns> ~<base64 of the SBE message>` (tickfeed's line format for binary frames), written with
//! this crate's own encoder ([`crate::sbe`]), so a real recording can be replayed as if it had
//! come from `stream-sbe.binance.com`.
//!
//! - `depthUpdate` -> `DepthDiffStreamEvent` (U, u, levels; `E` in µs).
//! - `trade` -> a one-trade `TradesStreamEvent` (`E`, `T` in µs; the recording has one trade per
//!   message, so each stays one event).
//! - `bookTicker` -> `BestBidAskStreamEvent` with bookUpdateId = `u`; JSON has no event time, so
//!   the line's receive time (in µs) stands in.
//! - Everything else (REST snapshot bodies, request lines, aggTrade, which SBE does not have,
//!   control replies) is copied as it is.
//!
//! Times in ms (JSON's default) become µs; times already in µs (`timeUnit=MICROSECOND`) stay.
//! Decimals use [`Scale::Coarsest`](crate::sbe::Scale), as the simulator's SBE endpoint does.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::book::Level;
use crate::decimal::parse_units;
use crate::sbe::{self, Scale};

/// What [`convert_line`] made of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converted {
    /// An SBE line was written.
    Sbe,
    /// The line was copied as it is.
    Kept,
}

/// Counts of a conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertCounts {
    /// Lines read.
    pub lines: u64,
    /// Depth diffs, trades and bookTickers written as SBE.
    pub diffs: u64,
    /// Trades.
    pub trades: u64,
    /// bookTickers.
    pub book_tickers: u64,
    /// Lines copied unchanged.
    pub kept: u64,
}

/// Why a line could not be converted (a market event whose fields are not Binance's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

fn bad(what: &str) -> ConvertError {
    ConvertError(format!("not a Binance event: {what}"))
}

/// ms to µs (a value already in µs, above 1e14, is kept).
fn micros(t: i64) -> i64 {
    if t > 100_000_000_000_000 {
        t
    } else {
        t.saturating_mul(1000)
    }
}

fn int(v: &Value, k: &str) -> Result<i64, ConvertError> {
    v.get(k).and_then(Value::as_i64).ok_or_else(|| bad(k))
}

fn id(v: &Value, k: &str) -> Result<u64, ConvertError> {
    v.get(k).and_then(Value::as_u64).ok_or_else(|| bad(k))
}

fn units(v: &Value, k: &str) -> Result<i64, ConvertError> {
    v.get(k).and_then(Value::as_str).and_then(parse_units).ok_or_else(|| bad(k))
}

fn levels(v: &Value, k: &str) -> Result<Vec<Level>, ConvertError> {
    let arr = v.get(k).and_then(Value::as_array).ok_or_else(|| bad(k))?;
    arr.iter()
        .map(|l| {
            let p = l.get(0).and_then(Value::as_str).and_then(parse_units).ok_or_else(|| bad(k))?;
            let q = l.get(1).and_then(Value::as_str).and_then(parse_units).ok_or_else(|| bad(k))?;
            Ok(Level { price: p, qty: q })
        })
        .collect()
}

/// Appends the base64 (standard alphabet, padded) of `data` to `out`.
fn base64(data: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        out.push(A[(v >> 18) as usize & 63]);
        out.push(A[(v >> 12) as usize & 63]);
        out.push(if c.len() > 1 { A[(v >> 6) as usize & 63] } else { b'=' });
        out.push(if c.len() > 2 { A[v as usize & 63] } else { b'=' });
    }
}

/// Converts one recording line (without its newline) into `out` (cleared first, no newline).
pub fn convert_line(line: &[u8], frame: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<Converted, ConvertError> {
    out.clear();
    let keep = |out: &mut Vec<u8>| {
        out.extend_from_slice(line);
        Ok(Converted::Kept)
    };
    let Some(sp) = line.iter().position(|&c| c == b' ') else { return keep(out) };
    let (ns, rest) = (&line[..sp], &line[sp + 1..]);
    let Ok(recv) = std::str::from_utf8(ns).unwrap_or("").parse::<i64>() else { return keep(out) };
    if rest.first() != Some(&b'{') {
        return keep(out);
    }
    let Ok(v) = serde_json::from_slice::<Value>(rest) else { return keep(out) };
    let (Some(stream), Some(d)) = (v.get("stream").and_then(Value::as_str), v.get("data")) else {
        return keep(out);
    };
    let kind = stream.split_once('@').map_or("", |(_, k)| k);
    frame.clear();
    let symbol = d.get("s").and_then(Value::as_str).unwrap_or("");
    let r = match (kind, d.get("e").and_then(Value::as_str)) {
        ("depth" | "depth@100ms", Some("depthUpdate")) => {
            let (bids, asks) = (levels(d, "b")?, levels(d, "a")?);
            let m = sbe::DepthDiff {
                event_time_us: micros(int(d, "E")?),
                first_update_id: id(d, "U")?,
                last_update_id: id(d, "u")?,
                symbol,
                bids: &bids,
                asks: &asks,
            };
            sbe::encode_depth_diff(&m, Scale::Coarsest, frame)
        }
        ("trade", Some("trade")) => {
            let t = [sbe::TradeEntry {
                id: id(d, "t")?,
                price: units(d, "p")?,
                qty: units(d, "q")?,
                buyer_is_maker: d.get("m").and_then(Value::as_bool).ok_or_else(|| bad("m"))?,
            }];
            let m = sbe::Trades {
                event_time_us: micros(int(d, "E")?),
                transact_time_us: micros(int(d, "T")?),
                symbol,
                trades: &t,
            };
            sbe::encode_trades(&m, Scale::Coarsest, frame)
        }
        ("bookTicker", None) => {
            let m = sbe::BestBidAsk {
                event_time_us: recv / 1000,
                book_update_id: id(d, "u")?,
                symbol,
                bid: Level { price: units(d, "b")?, qty: units(d, "B")? },
                ask: Level { price: units(d, "a")?, qty: units(d, "A")? },
            };
            sbe::encode_best_bid_ask(&m, Scale::Coarsest, frame)
        }
        _ => return keep(out),
    };
    r.map_err(|e| ConvertError(e.to_string()))?;
    out.extend_from_slice(ns);
    out.extend_from_slice(b" ~");
    base64(frame, out);
    Ok(Converted::Sbe)
}

/// Converts every line of `input` (plain or gzip) into `output` (gzip when its name ends in
/// `.gz`). A line that cannot be converted is an error naming its number.
pub fn convert_file(input: &Path, output: &Path) -> io::Result<ConvertCounts> {
    let mut f = std::fs::File::open(input)?;
    let mut magic = [0u8; 2];
    let gz = f.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let f = std::fs::File::open(input)?;
    let r: Box<dyn BufRead> =
        if gz { Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f))) } else { Box::new(BufReader::new(f)) };
    let file = std::fs::File::create(output)?;
    let mut w: Box<dyn Write> = if output.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(io::BufWriter::new(file), flate2::Compression::default()))
    } else {
        Box::new(io::BufWriter::new(file))
    };
    let mut c = ConvertCounts::default();
    let (mut frame, mut out) = (Vec::new(), Vec::new());
    for line in r.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        c.lines += 1;
        let k = convert_line(&line, &mut frame, &mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {e}", c.lines)))?;
        match k {
            Converted::Kept => c.kept += 1,
            Converted::Sbe => match frame.get(2..4) {
                Some([0x10, 0x27]) => c.trades += 1,
                Some([0x11, 0x27]) => c.book_tickers += 1,
                _ => c.diffs += 1,
            },
        }
        w.write_all(&out)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(line: &str) -> (Converted, String, Vec<u8>) {
        let (mut f, mut o) = (Vec::new(), Vec::new());
        let k = convert_line(line.as_bytes(), &mut f, &mut o).unwrap();
        (k, String::from_utf8(o).unwrap(), f)
    }

    #[test]
    fn base64_vectors() {
        for (plain, b64) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            let mut o = Vec::new();
            base64(plain.as_bytes(), &mut o);
            assert_eq!(o, b64.as_bytes());
        }
    }

    #[test]
    fn each_stream_becomes_its_template() {
        let (k, line, f) = conv(
            r#"5 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":10,"u":12,"b":[["61737.63000000","0.00000000"]],"a":[]}}"#,
        );
        assert_eq!(k, Converted::Sbe);
        assert!(line.starts_with("5 ~"), "{line}");
        assert_eq!(u16::from_le_bytes([f[2], f[3]]), sbe::DEPTH_DIFF_TEMPLATE_ID);
        assert_eq!(i64::from_le_bytes(f[8..16].try_into().unwrap()), 1_723_161_255_208_000, "E in µs");
        let (_, _, f) = conv(
            r#"5 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
        );
        assert_eq!(u16::from_le_bytes([f[2], f[3]]), sbe::TRADES_TEMPLATE_ID);
        let (_, _, f) = conv(
            r#"1723161254087891268 {"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
        );
        assert_eq!(u16::from_le_bytes([f[2], f[3]]), sbe::BEST_BID_ASK_TEMPLATE_ID);
        assert_eq!(i64::from_le_bytes(f[8..16].try_into().unwrap()), 1_723_161_254_087_891, "receive time in µs");
        assert_eq!(u64::from_le_bytes(f[16..24].try_into().unwrap()), 50093239212);
        for kept in [
            r#"7 {"lastUpdateId":1,"bids":[],"asks":[]}"#,
            "7 GET /api/v3/depth?symbol=BTCUSDT&limit=1000",
            r#"7 {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade"}}"#,
            "",
        ] {
            assert_eq!(conv(kept).0, Converted::Kept);
            assert_eq!(conv(kept).1, kept);
        }
        let (mut f, mut o) = (Vec::new(), Vec::new());
        let e = convert_line(
            br#"5 {"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"x","q":"1","T":1,"m":true}}"#,
            &mut f,
            &mut o,
        );
        assert!(e.is_err());
    }
}
