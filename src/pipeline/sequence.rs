//! One rule for update ids: where an event of one (symbol, stream) stands against what has been
//! processed on that stream, whichever connection it came from.
//!
//! A [`Sequence`] is kept per symbol for each id-per-event stream (trades, aggTrades); a diff
//! depth event is judged against its book ([`book_position`]). The pipeline uses the answer to
//! skip duplicates and count trade-id gaps; the live loop uses the same answer, through the
//! pipeline's admission callback, to decide during a make-before-break overlap whether a frame
//! from the new connection may be processed now or must be held back. Pure: no I/O, no clock.

use crate::book::sync::OrderBook;

/// Where an event stands against what was processed on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Every id in it was processed already (a second connection's copy, or a late repeat).
    Duplicate,
    /// It continues what was processed: its first id is at most one past the last (for a book:
    /// `U <= id + 1 < u + 1`), or nothing was processed yet on an id-per-event stream.
    Next,
    /// It starts beyond the next id: something in between has not been processed (yet).
    Ahead,
}

/// The ids an event carries: `first..=last` (`U`, `u` of a diff; a trade's id twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// The first id in the event.
    pub first: u64,
    /// The last id in the event.
    pub last: u64,
}

impl Ids {
    /// An event with one id.
    pub fn one(id: u64) -> Ids {
        Ids { first: id, last: id }
    }
}

/// The last id processed on one id-per-event stream of one symbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sequence {
    last: Option<u64>,
}

impl Sequence {
    /// A sequence whose last processed id is `last`.
    pub fn at(last: u64) -> Sequence {
        Sequence { last: Some(last) }
    }

    /// Where an event with `ids` stands.
    pub fn position(&self, ids: Ids) -> Position {
        match self.last {
            None => Position::Next,
            Some(at) if ids.last <= at => Position::Duplicate,
            Some(at) if ids.first <= at.saturating_add(1) => Position::Next,
            Some(_) => Position::Ahead,
        }
    }

    /// Records an event with `ids` as processed (the last id never goes back).
    pub fn advance(&mut self, ids: Ids) {
        self.last = Some(self.last.map_or(ids.last, |l| l.max(ids.last)));
    }

    /// The last id processed, if any.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// Forgets everything: ids seen before belong to another connection or run.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// Where a diff with `ids` (`U`, `u`) stands against `book`: judged by the book's update id when
/// it is synced, and by the last diff it buffered when it is not (so two connections feeding one
/// buffer neither repeat a diff in it nor put a later one before an earlier one); `Next` for a
/// book that has buffered nothing since it was last discarded (anything starts it).
pub fn book_position(book: &OrderBook, ids: Ids) -> Position {
    if book.is_synced() {
        Sequence::at(book.last_update_id()).position(ids)
    } else {
        book.buffered_last().map_or(Position::Next, |last| Sequence::at(last).position(ids))
    }
}

/// [`book_position`] for a USDⓈ-M futures diff, whose ids skip: it continues what was processed
/// when its `pu` (`prev_final`) is at or below the last id (`pu` equal to it, or a first diff
/// after a snapshot that starts at or before it), and is ahead when its `pu` is past it (a diff
/// in between has not been processed). The spot `U <= id + 1` test would call nearly every
/// futures diff ahead.
pub fn futures_book_position(book: &OrderBook, ids: Ids, prev_final: u64) -> Position {
    let last = if book.is_synced() { Some(book.last_update_id()) } else { book.buffered_last() };
    match last {
        None => Position::Next,
        Some(at) if ids.last <= at => Position::Duplicate,
        Some(at) if prev_final <= at => Position::Next,
        Some(_) => Position::Ahead,
    }
}

/// Where a bookTicker with update id `id` stands against the last one processed: a repeat (a
/// second connection's copy) or newer. Never `Ahead`: a bookTicker is sent when the top changes,
/// not for every update id.
pub(crate) fn ticker_position(last: &Sequence, id: u64) -> Position {
    match last.last() {
        Some(at) if id <= at => Position::Duplicate,
        _ => Position::Next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::sync::BookConfig;

    #[test]
    fn duplicate_next_ahead() {
        let mut s = Sequence::default();
        assert_eq!(s.position(Ids::one(7)), Position::Next, "nothing processed: anything starts it");
        s.advance(Ids::one(7));
        assert_eq!(s.position(Ids::one(6)), Position::Duplicate);
        assert_eq!(s.position(Ids::one(7)), Position::Duplicate);
        assert_eq!(s.position(Ids::one(8)), Position::Next);
        assert_eq!(s.position(Ids::one(9)), Position::Ahead);
        // A range is a duplicate only when all of it was processed, and next when it overlaps.
        assert_eq!(s.position(Ids { first: 5, last: 7 }), Position::Duplicate);
        assert_eq!(s.position(Ids { first: 5, last: 12 }), Position::Next);
        assert_eq!(s.position(Ids { first: 9, last: 12 }), Position::Ahead);
        s.advance(Ids::one(3));
        assert_eq!(s.last(), Some(7), "the last id never goes back");
        assert_eq!(Sequence::at(u64::MAX).position(Ids::one(u64::MAX)), Position::Duplicate);
        s.reset();
        assert_eq!(s.position(Ids::one(1)), Position::Next);
    }

    #[test]
    fn an_unsynced_book_is_judged_by_what_it_buffered() {
        let mut book = OrderBook::new(BookConfig::default(), None);
        assert_eq!(book_position(&book, Ids { first: 10, last: 12 }), Position::Next, "nothing buffered");
        assert_eq!(book.on_diff(10, 12, &[], &[]), crate::book::sync::DiffOutcome::Buffered);
        assert_eq!(book_position(&book, Ids { first: 10, last: 12 }), Position::Duplicate);
        assert_eq!(book_position(&book, Ids { first: 13, last: 15 }), Position::Next);
        assert_eq!(book_position(&book, Ids { first: 14, last: 15 }), Position::Ahead);
    }

    #[test]
    fn a_futures_diff_is_placed_by_its_pu() {
        let cfg = BookConfig { procedure: crate::book::sync::Procedure::UsdM, ..BookConfig::default() };
        let mut book = OrderBook::new(cfg, None);
        assert_eq!(futures_book_position(&book, Ids { first: 10, last: 12 }, 7), Position::Next, "nothing buffered");
        book.on_futures_diff(10, 12, 7, &[], &[]);
        assert_eq!(futures_book_position(&book, Ids { first: 10, last: 12 }, 7), Position::Duplicate);
        // Ids skip: U = 20 after u = 12 continues it when pu = 12.
        assert_eq!(futures_book_position(&book, Ids { first: 20, last: 25 }, 12), Position::Next);
        assert_eq!(book_position(&book, Ids { first: 20, last: 25 }), Position::Ahead, "the spot rule would hold it");
        assert_eq!(futures_book_position(&book, Ids { first: 30, last: 31 }, 25), Position::Ahead, "25 is missing");
    }

    #[test]
    fn a_held_futures_diff_needs_its_pu_not_its_u() {
        use crate::binance::StreamKind;
        let ev = |prev_final| crate::pipeline::Sequenced {
            symbol: 0,
            kind: StreamKind::Depth,
            ids: Ids { first: 20, last: 25 },
            position: Position::Ahead,
            synced: true,
            prev_final,
        };
        assert_eq!(ev(None).first_needed(), 20, "spot: continues a book at 19");
        assert_eq!(ev(Some(12)).first_needed(), 13, "futures: continues a book at 12 (U - 1 = 19 never comes)");
    }

    #[test]
    fn a_repeated_book_ticker_is_a_duplicate() {
        let mut s = Sequence::default();
        assert_eq!(ticker_position(&s, 5), Position::Next);
        s.advance(Ids::one(5));
        assert_eq!(ticker_position(&s, 5), Position::Duplicate);
        assert_eq!(ticker_position(&s, 4), Position::Duplicate);
        assert_eq!(ticker_position(&s, 9), Position::Next, "tickers skip ids: never ahead");
    }
}
