//! The `--dump-book` file: every level a synced book holds, best first, as exact decimal strings:
//! `{"symbol":"BTCUSDT","lastUpdateId":N,"bids":[["price","qty"],...],"asks":[...]}`.
//!
//! Runs once at exit, so it may allocate; it writes nothing itself.

use crate::book::fixed::{push_u64, push_units};
use crate::book::ladder::Side;
use crate::book::sync::OrderBook;

/// The dump of `book` (uppercase `symbol`), or `None` when the book is not synced or has no tick
/// size yet: a book that is not known to be right is not written.
pub(crate) fn book_json(symbol: &str, book: &OrderBook) -> Option<String> {
    if !book.is_synced() {
        return None;
    }
    let tick = book.tick()?.units();
    let lad = book.ladder();
    let mut o: Vec<u8> = Vec::with_capacity(64 * (lad.len(Side::Bid) + lad.len(Side::Ask)) + 128);
    o.extend_from_slice(b"{\"symbol\":\"");
    o.extend_from_slice(symbol.as_bytes());
    o.extend_from_slice(b"\",\"lastUpdateId\":");
    push_u64(&mut o, book.last_update_id());
    for (key, side) in [(&b",\"bids\":["[..], Side::Bid), (&b"],\"asks\":["[..], Side::Ask)] {
        o.extend_from_slice(key);
        let mut first = true;
        lad.for_each_level(side, |l| {
            if !first {
                o.push(b',');
            }
            first = false;
            o.extend_from_slice(b"[\"");
            push_units(&mut o, l.tick * tick, 8);
            o.extend_from_slice(b"\",\"");
            push_units(&mut o, l.qty, 8);
            o.extend_from_slice(b"\"]");
        });
    }
    o.extend_from_slice(b"]}\n");
    String::from_utf8(o).ok()
}
