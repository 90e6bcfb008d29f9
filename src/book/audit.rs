//! Online audit of the book against the exchange's own top of book.
//!
//! A `bookTicker` carries the order book update id `u` its best bid and ask belong to. Whenever
//! the local book stands at exactly that id, its best levels must equal the ticker's, price and
//! quantity: an independent check, from the exchange, of every diff applied so far. Tickers
//! usually arrive a little before the diff that brings the book to their `u`, so they are held in
//! a small fixed ring until the book reaches their id (checked) or passes it (dropped unchecked).
//!
//! This is a check, not a repair: a mismatch is counted and reported; the sync engine alone
//! decides when a book is discarded.

use crate::book::fixed::Units;
use crate::book::top::Top;

/// How many tickers wait for the book at most; older ones are dropped when it is full.
pub const PENDING_CAP: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pending {
    update_id: u64,
    bid: (Units, Units),
    ask: (Units, Units),
}

/// A mismatch, for the log: the ticker's top and the book's at the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// The update id both claim to be at.
    pub update_id: u64,
    /// The ticker's best bid and ask `(price, qty)`.
    pub ticker: ((Units, Units), (Units, Units)),
    /// The book's best bid and ask.
    pub book: Top,
}

/// Counters of the audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounters {
    /// Tickers compared with the book at the same update id.
    pub checks: u64,
    /// Comparisons that differed.
    pub mismatches: u64,
    /// Tickers dropped unchecked because the ring was full.
    pub overflowed: u64,
}

/// The audit state of one symbol.
#[derive(Debug, Clone)]
pub struct Audit {
    ring: [Pending; PENDING_CAP],
    head: usize,
    len: usize,
    counters: AuditCounters,
}

impl Default for Audit {
    fn default() -> Self {
        Audit { ring: [Pending::default(); PENDING_CAP], head: 0, len: 0, counters: AuditCounters::default() }
    }
}

impl Audit {
    /// The counters.
    pub fn counters(&self) -> &AuditCounters {
        &self.counters
    }

    /// Forgets pending tickers (the book was discarded: their ids may never come back in sync).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// A ticker arrived. `book_id` and `top` are the synced book's, or `None` when not synced.
    pub fn on_ticker(
        &mut self,
        update_id: u64,
        bid: (Units, Units),
        ask: (Units, Units),
        book: Option<(u64, Top)>,
    ) -> Option<Mismatch> {
        let p = Pending { update_id, bid, ask };
        match book {
            Some((id, top)) if id == update_id => self.compare(p, top),
            Some((id, _)) if id > update_id => None,
            _ => {
                if self.len == PENDING_CAP {
                    self.head = (self.head + 1) % PENDING_CAP;
                    self.len -= 1;
                    self.counters.overflowed += 1;
                }
                self.ring[(self.head + self.len) % PENDING_CAP] = p;
                self.len += 1;
                None
            }
        }
    }

    /// The synced book moved to `id`: check the tickers waiting for exactly this id, drop those
    /// it passed. Calls `report` for each mismatch.
    pub fn on_book(&mut self, id: u64, top: Top, mut report: impl FnMut(Mismatch)) {
        let mut kept = 0;
        // Tickers normally arrive in id order, but nothing relies on it: scan the whole ring.
        for i in 0..self.len {
            let p = self.ring[(self.head + i) % PENDING_CAP];
            if p.update_id == id {
                if let Some(m) = self.compare(p, top) {
                    report(m);
                }
            } else if p.update_id > id {
                self.ring[(self.head + kept) % PENDING_CAP] = p;
                kept += 1;
            }
        }
        self.len = kept;
    }

    fn compare(&mut self, p: Pending, top: Top) -> Option<Mismatch> {
        self.counters.checks += 1;
        if top.bid == Some(p.bid) && top.ask == Some(p.ask) {
            None
        } else {
            self.counters.mismatches += 1;
            Some(Mismatch { update_id: p.update_id, ticker: (p.bid, p.ask), book: top })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(b: i64, a: i64) -> Top {
        Top { bid: Some((b, 1)), ask: Some((a, 1)) }
    }

    #[test]
    fn held_until_book_reaches_id() {
        let mut a = Audit::default();
        assert_eq!(a.on_ticker(12, (10, 1), (11, 1), Some((10, top(10, 11)))), None);
        assert_eq!(a.counters().checks, 0);
        let mut seen = vec![];
        a.on_book(11, top(9, 11), |m| seen.push(m));
        assert_eq!(a.counters().checks, 0);
        a.on_book(12, top(10, 11), |m| seen.push(m));
        assert_eq!((a.counters().checks, a.counters().mismatches), (1, 0));
        assert!(seen.is_empty());
    }

    #[test]
    fn passed_ids_are_dropped_and_mismatch_reported() {
        let mut a = Audit::default();
        a.on_ticker(12, (10, 1), (11, 1), None);
        a.on_ticker(20, (10, 1), (11, 1), None);
        let mut seen = vec![];
        a.on_book(15, top(10, 11), |m| seen.push(m));
        assert_eq!(a.counters().checks, 0);
        a.on_book(20, top(10, 12), |m| seen.push(m));
        assert_eq!((a.counters().checks, a.counters().mismatches), (1, 1));
        assert_eq!(seen[0].update_id, 20);
        // A ticker at the book's current id is checked at once; an older one is ignored.
        assert!(a.on_ticker(20, (10, 1), (11, 1), Some((20, top(10, 11)))).is_none());
        assert!(a.on_ticker(19, (0, 1), (0, 1), Some((20, top(10, 11)))).is_none());
        assert_eq!(a.counters().checks, 2);
    }

    #[test]
    fn ring_is_bounded() {
        let mut a = Audit::default();
        for i in 0..(PENDING_CAP as u64 + 5) {
            a.on_ticker(100 + i, (1, 1), (2, 1), None);
        }
        assert_eq!(a.counters().overflowed, 5);
        a.on_book(104, top(1, 2), |_| {});
        assert_eq!(a.counters().checks, 0, "id 104 was pushed out");
        a.on_book(105, top(1, 2), |_| {});
        assert_eq!(a.counters().checks, 1);
    }
}
