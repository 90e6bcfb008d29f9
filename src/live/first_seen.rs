//! With A/B redundancy: when the first copy of each recent event arrived, so that a later copy
//! from another connection can say how far behind it was. A fixed-size table, overwritten as it
//! goes (a copy of an event evicted by newer ones is simply not measured); it never allocates
//! after it is made. Pure: the caller brings the times.

use crate::binance::StreamKind;

/// One slot: which event (symbol, stream, last id) and when its first copy arrived (wall ns).
#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    id: u64,
    at_ns: i64,
}

/// Receive times of the first copies of recent events, by (symbol, stream, id).
pub(super) struct FirstSeen {
    slots: Vec<Slot>,
    mask: usize,
}

impl FirstSeen {
    /// A table of at least `capacity` slots (a power of two). Zero: an empty table that measures
    /// nothing.
    pub(super) fn new(capacity: usize) -> FirstSeen {
        if capacity == 0 {
            return FirstSeen { slots: Vec::new(), mask: 0 };
        }
        let n = capacity.next_power_of_two();
        FirstSeen { slots: vec![Slot::default(); n], mask: n - 1 }
    }

    fn key(symbol: usize, kind: StreamKind) -> u64 {
        // +1: the zero key marks an empty slot.
        ((symbol as u64) << 3 | kind.slot() as u64) + 1
    }

    fn index(&self, key: u64, id: u64) -> usize {
        let h = (id ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        (h >> 20) as usize & self.mask
    }

    /// The first copy of (`symbol`, `kind`, `id`) arrived at `at_ns`.
    #[inline]
    pub(super) fn insert(&mut self, symbol: usize, kind: StreamKind, id: u64, at_ns: i64) {
        if self.slots.is_empty() {
            return;
        }
        let key = Self::key(symbol, kind);
        let i = self.index(key, id);
        self.slots[i] = Slot { key, id, at_ns };
    }

    /// When the first copy of (`symbol`, `kind`, `id`) arrived, if the table still has it.
    #[inline]
    pub(super) fn get(&self, symbol: usize, kind: StreamKind, id: u64) -> Option<i64> {
        if self.slots.is_empty() {
            return None;
        }
        let key = Self::key(symbol, kind);
        let s = self.slots[self.index(key, id)];
        (s.key == key && s.id == id).then_some(s.at_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_first_copies_and_never_confuses_events() {
        let mut t = FirstSeen::new(1024);
        for id in 0..500u64 {
            t.insert(3, StreamKind::Trade, id, id as i64 * 10);
        }
        let found = (0..500u64).filter(|&id| t.get(3, StreamKind::Trade, id) == Some(id as i64 * 10)).count();
        assert!(found > 300, "most of 500 recent events are still there: {found}");
        // Another symbol or stream with the same id is another event.
        assert_eq!(t.get(4, StreamKind::Trade, 7), None);
        assert_eq!(t.get(3, StreamKind::AggTrade, 7), None);
        // Whatever a slot holds, it is never answered for another event.
        for id in 500..100_000u64 {
            if let Some(at) = t.get(3, StreamKind::Trade, id) {
                panic!("{id} was never inserted, got {at}");
            }
        }
        assert_eq!(FirstSeen::new(0).get(3, StreamKind::Trade, 1), None);
    }
}
