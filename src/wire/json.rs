//! The records as JSON (`--publish-format json`): one object per record, decimal strings for
//! prices and quantities, for consumers that would rather not read the binary layout. Rendered
//! off the hot thread (by the NATS thread), from the binary records the tap wrote, so both
//! formats always say the same thing.

use super::{Header, Levels, Record, SyncStatus};
use crate::book::fixed::{push_i64, push_u64, push_units, push_units_trim};

/// A record whose price does not fit 1e-8 units in an i64 (ticks × tick overflows): not
/// rendered. The tap never writes one; a record from elsewhere might.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

fn price(out: &mut Vec<u8>, ticks: i64, tick: i64, decimals: u32) -> Result<(), Overflow> {
    let units = ticks.checked_mul(tick.max(1)).ok_or(Overflow)?;
    out.push(b'"');
    push_units(out, units, decimals);
    out.push(b'"');
    Ok(())
}

fn qty(out: &mut Vec<u8>, units: i64) {
    out.push(b'"');
    push_units_trim(out, units, 0);
    out.push(b'"');
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn levels(out: &mut Vec<u8>, ls: Levels<'_>, tick: i64, decimals: u32) -> Result<(), Overflow> {
    out.push(b'[');
    for (i, (p, q)) in ls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        price(out, p, tick, decimals)?;
        out.push(b',');
        qty(out, q);
        out.push(b']');
    }
    out.push(b']');
    Ok(())
}

fn side(out: &mut Vec<u8>, s: Option<(i64, i64)>, tick: i64, decimals: u32) -> Result<(), Overflow> {
    match s {
        None => out.extend_from_slice(b"null"),
        Some((p, q)) => {
            out.push(b'[');
            price(out, p, tick, decimals)?;
            out.push(b',');
            qty(out, q);
            out.push(b']');
        }
    }
    Ok(())
}

/// Appends `r` as one JSON object (no newline) for symbol `name`, prices with `decimals`
/// fractional digits. On [`Overflow`] `out` is left as it was.
pub fn render(out: &mut Vec<u8>, name: &str, decimals: u32, h: &Header, r: &Record<'_>) -> Result<(), Overflow> {
    let start = out.len();
    let res = render_inner(out, name, decimals, h, r);
    if res.is_err() {
        out.truncate(start);
    }
    res
}

fn render_inner(out: &mut Vec<u8>, name: &str, decimals: u32, h: &Header, r: &Record<'_>) -> Result<(), Overflow> {
    out.extend_from_slice(b"{\"kind\":\"");
    out.extend_from_slice(h.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"symbol\":\"");
    // Symbols are the exchange's ASCII names; anything else is escaped away rather than
    // breaking the object.
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b);
        }
    }
    out.push(b'"');
    key(out, "seq");
    push_u64(out, h.seq);
    match r {
        Record::Top(t) => {
            key(out, "u");
            push_u64(out, t.update_id);
            key(out, "E");
            push_i64(out, t.exch_time_us);
            key(out, "recv_ns");
            push_i64(out, t.recv_ns);
            key(out, "bid");
            side(out, t.bid, t.tick, decimals)?;
            key(out, "ask");
            side(out, t.ask, t.tick, decimals)?;
        }
        Record::Diff(d) => {
            key(out, "U");
            push_u64(out, d.first_id);
            key(out, "u");
            push_u64(out, d.last_id);
            key(out, "prev");
            push_u64(out, d.prev_id);
            key(out, "E");
            push_i64(out, d.exch_time_us);
            key(out, "recv_ns");
            push_i64(out, d.recv_ns);
            key(out, "b");
            levels(out, d.bids, d.tick, decimals)?;
            key(out, "a");
            levels(out, d.asks, d.tick, decimals)?;
        }
        Record::Trade(t) => {
            key(out, "t");
            push_u64(out, t.trade_id);
            key(out, "T");
            push_i64(out, t.exch_time_us);
            key(out, "recv_ns");
            push_i64(out, t.recv_ns);
            key(out, "p");
            // A trade written in units (tick 1) still prints at the symbol's decimals or finer.
            let d = if t.tick == 1 { 8 } else { decimals };
            price(out, t.price, t.tick, d)?;
            key(out, "q");
            qty(out, t.qty);
            key(out, "m");
            out.extend_from_slice(if t.buyer_maker { b"true" } else { b"false" });
            key(out, "agg");
            out.extend_from_slice(if t.aggregate { b"true" } else { b"false" });
        }
        Record::Snapshot(s) => {
            key(out, "lastUpdateId");
            push_u64(out, s.update_id);
            key(out, "recv_ns");
            push_i64(out, s.recv_ns);
            key(out, "depth");
            push_u64(out, u64::from(s.depth));
            key(out, "bids");
            levels(out, s.bids, s.tick, decimals)?;
            key(out, "asks");
            levels(out, s.asks, s.tick, decimals)?;
        }
        Record::Status(s) => {
            key(out, "status");
            out.extend_from_slice(match s.status {
                SyncStatus::Synced => b"\"synced\"",
                SyncStatus::Resyncing => b"\"resyncing\"",
                SyncStatus::Gap => b"\"gap\"",
            });
            key(out, "cause");
            push_u64(out, u64::from(s.cause));
            key(out, "u");
            push_u64(out, s.update_id);
            key(out, "recv_ns");
            push_i64(out, s.recv_ns);
        }
        Record::Symbol(s) => {
            key(out, "tick");
            qty(out, s.tick);
            key(out, "step");
            qty(out, s.step);
            key(out, "venue");
            out.extend_from_slice(if s.venue == 1 { b"\"usdm\"" } else { b"\"spot\"" });
            key(out, "price_decimals");
            push_u64(out, u64::from(s.price_decimals));
        }
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    fn json(buf: &[u8], decimals: u32) -> serde_json::Value {
        let (h, r) = decode(buf).unwrap();
        let mut out = Vec::new();
        render(&mut out, "BTCUSDT", decimals, &h, &r).unwrap();
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn each_kind_renders_as_valid_json_with_decimal_strings() {
        let mut enc = Encoder::new();
        let mut b = Vec::new();
        let top = TopRec {
            update_id: 5,
            exch_time_us: 6,
            recv_ns: 7,
            tick: 1_000_000,
            bid: Some((6_183_763, 150_000_000)),
            ask: None,
        };
        enc.top(&mut b, 0, &top);
        let v = json(&b, 2);
        assert_eq!(v["kind"], "top");
        assert_eq!(v["bid"], serde_json::json!(["61837.63", "1.5"]));
        assert!(v["ask"].is_null());
        assert_eq!((v["u"].as_u64(), v["seq"].as_u64()), (Some(5), Some(1)));
        b.clear();
        let head = DiffHead { first_id: 1, last_id: 2, prev_id: 0, exch_time_us: 3, recv_ns: 4, tick: 1_000_000 };
        enc.diff(&mut b, 0, head, [(100, 1)].into_iter(), [(101, 0)].into_iter()).unwrap();
        let v = json(&b, 2);
        assert_eq!(v["b"], serde_json::json!([["1.00", "0.00000001"]]));
        assert_eq!(v["a"], serde_json::json!([["1.01", "0"]]));
        assert_eq!(v["prev"], 0);
        b.clear();
        let t = TradeRec {
            trade_id: 9,
            exch_time_us: 1,
            recv_ns: 2,
            tick: 1,
            price: 123,
            qty: 5,
            buyer_maker: true,
            aggregate: false,
        };
        enc.trade(&mut b, 0, &t);
        let v = json(&b, 2);
        assert_eq!((v["p"].as_str(), v["m"].as_bool()), (Some("0.00000123"), Some(true)));
        b.clear();
        enc.status(&mut b, 0, &StatusRec { status: SyncStatus::Gap, cause: 0, update_id: 1, recv_ns: 1 });
        assert_eq!(json(&b, 2)["status"], "gap");
        b.clear();
        enc.symbol(
            &mut b,
            0,
            &SymbolRec { tick: 1_000_000, step: 1_000, venue: 1, price_decimals: 2, name: "BTCUSDT" },
        )
        .unwrap();
        let v = json(&b, 2);
        assert_eq!((v["tick"].as_str(), v["venue"].as_str()), (Some("0.01"), Some("usdm")));
        b.clear();
        enc.snapshot(
            &mut b,
            0,
            SnapshotHead { update_id: 3, recv_ns: 1, tick: 1_000_000, depth: 0 },
            [(1, 1)].into_iter(),
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(json(&b, 2)["bids"], serde_json::json!([["0.01", "0.00000001"]]));
    }

    #[test]
    fn an_overflowing_price_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut b = Vec::new();
        let top = TopRec { update_id: 5, exch_time_us: 6, recv_ns: 7, tick: i64::MAX, bid: Some((2, 1)), ask: None };
        Encoder::new().top(&mut b, 0, &top);
        let (h, r) = decode(&b).unwrap();
        let mut out = b"x".to_vec();
        assert_eq!(render(&mut out, "BTCUSDT", 2, &h, &r), Err(Overflow));
        assert_eq!(out, b"x");
    }
}
