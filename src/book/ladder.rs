//! The price ladder: one symbol's L2 book, indexed by tick.
//!
//! Each side is a fixed window of `window_ticks` quantities indexed by tick, with an occupancy
//! bitmap (one bit per tick) and a summary bitmap (one bit per non-empty bitmap word), plus a
//! bounded, sorted overflow for the levels that lie outside the window. Setting a level near the
//! touch is a store and a bit flip; the best of each side is cached, and when the best is removed
//! the next one is found with a few `leading_zeros` on bitmap words, never by scanning the book.
//! All memory is allocated in [`Ladder::new`]: no later call allocates or frees, `clear` included
//! (except [`Ladder::levels`], which returns a `Vec` for dumps and tests).
//!
//! It is not an order book of orders (L3), it does not check that the book is uncrossed or in sync
//! (that is the sync layer's job), it knows nothing of tick sizes or decimals, and it is not shared
//! between threads.
//!
//! # Layout
//! - Both sides share one implementation written for "higher is better": bids are stored by tick,
//!   asks by *rank* `!tick` (bitwise not, i.e. `-tick - 1`), which reverses the order without ever
//!   overflowing, so the best ask is the highest rank just as the best bid is the highest tick.
//! - The window covers ranks `base..base + W` and is circular: rank `r` lives in slot `r mod W`.
//!   Moving the window therefore never moves the levels that stay inside it; only the slots that
//!   leave it are touched (and emptied), and the slots that enter it are already empty.
//! - **Invariant:** a non-empty side always has its best level inside its window. So every
//!   overflow level of a side is worse than every window level of that side (all overflow bids are
//!   below the bid window, all overflow asks above the ask window), the cached best is always a
//!   window slot, and a best-first walk is "window from the best down, then overflow from nearest to
//!   farthest". Overflow levels can thus never sit on both sides of a window.
//! - The overflow is a `VecDeque<(rank, qty)>` sorted by rank, its capacity reserved up front and
//!   never exceeded: the farthest level from the touch is at the front, the nearest at the back.
//!   Levels leaving the window on a recentre are the nearest of the overflow (pushed at the back),
//!   levels entering it are taken from the back, the farthest is evicted from the front: all O(1).
//!   A far level set directly is a binary search plus an insert that moves the shorter half.
//!
//! # Recentring
//! The best bid is kept around 3/4 of the bid window (room for the price to rise) and the best ask
//! around 1/4 of the ask window (room for it to fall): in rank terms, the best at offset `3W/4`. A
//! side recentres, putting its best back at the target, when:
//! - a new best arrives beyond the better edge of the window (the window moves at least `W/4`);
//! - the best, after the old best was removed, falls into the worse half of the window, offset
//!   below `W/2` (the window moves more than `W/4`), so at least half a window always lies on the
//!   worse side of the best, where the book's depth is;
//! - the window empties while the overflow still holds levels: the window moves onto the nearest
//!   overflow level, which is the new best.
//!
//! The gap between the target and the triggers is the hysteresis: a best wandering by less than a
//! quarter window from the target never recentres, each recentre moves the window by at least a
//! quarter window, and each costs `O(levels moved + bitmap words visited)`, with empty words
//! skipped through the summary bitmap. An empty side does not recentre: its first level simply
//! places the window around itself (not counted as a recentre).
//!
//! # Overflow eviction
//! When a side's overflow is full, the level farthest from the touch on that side is dropped (the
//! lowest bid, the highest ask); if the incoming level is itself the farthest, it is the one
//! refused. Each dropped level counts in [`LadderStats::evicted`]. The best is never evicted: it is
//! always in the window.
//!
//! # Sizing and memory
//! [`Ladder::new`] never panics on a configuration: `window_ticks` is clamped to
//! [`MIN_WINDOW_TICKS`]`..=`[`MAX_WINDOW_TICKS`] and rounded up to a power of two, `overflow_cap`
//! is clamped to at most [`MAX_OVERFLOW_CAP`] (0 is allowed: every level outside the window is then
//! evicted). [`Ladder::config`] answers the configuration in effect.
//!
//! Per side the heap holds `8 W` bytes of quantities, `W / 8` bytes of bitmap, `8 ceil(W / 4096)`
//! bytes of summary and `16 overflow_cap` bytes of overflow. For the default configuration (window
//! 65,536 ticks, overflow 16,384 levels per side) that is 524,288 + 8,192 + 128 + 262,144 =
//! 794,752 bytes per side, **1,589,504 bytes per book** plus the `Ladder` struct itself; see
//! [`Ladder::memory_bytes`]. Only the cache lines near the touch are hot.
//!
//! The defaults: BTCUSDT trades around 62,000 with a 0.01 tick, so 65,536 ticks is about $655, of
//! which about $490 lies below the best bid (and above the best ask) right after a recentre and at
//! least $327 (half the window) at any time: a 1000-level snapshot, a few hundred dollars deep,
//! fits. ETHUSDT (0.01 tick around 2,700) fits with room to spare. Diffs also touch levels ~10%
//! away from the touch (~620,000 ticks for BTCUSDT); those live in the overflow, 16,384 per side,
//! which keeps the whole book near 1.5 MiB. If a long session ever fills it, the farthest levels
//! go first and [`LadderStats::evicted`] shows it.
//!
//! Prices may be any `i64`: the window base is computed with saturating arithmetic and clamped so
//! that the window never runs past `i64::MAX`, and offsets use wrapping subtraction read as an
//! unsigned distance. Quantities are expected to be positive; any non-zero quantity is stored as
//! given and zero means "no level".

use crate::book::fixed::{Ticks, Units};
use std::collections::VecDeque;

/// Smallest window a ladder uses: one bitmap word.
pub const MIN_WINDOW_TICKS: usize = 64;
/// Largest window a ladder uses (32 MiB of quantities per side), so a bad config cannot ask for
/// unbounded memory.
pub const MAX_WINDOW_TICKS: usize = 1 << 22;
/// Largest overflow a ladder uses per side (16 MiB).
pub const MAX_OVERFLOW_CAP: usize = 1 << 20;

/// Which side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy orders; best is the highest price.
    Bid,
    /// Sell orders; best is the lowest price.
    Ask,
}

/// One price level: a price in ticks and its total quantity in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Price in ticks.
    pub tick: Ticks,
    /// Quantity in 1e-8 units, always > 0 for a level that exists.
    pub qty: Units,
}

/// Sizing of a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderConfig {
    /// Ticks covered by each side's array window (a power of two).
    pub window_ticks: usize,
    /// Levels each side may hold outside its window.
    pub overflow_cap: usize,
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig { window_ticks: 1 << 16, overflow_cap: 1 << 14 }
    }
}

impl LadderConfig {
    /// The configuration a ladder built from this one actually uses: the window clamped to
    /// [`MIN_WINDOW_TICKS`]`..=`[`MAX_WINDOW_TICKS`] and rounded up to a power of two, the overflow
    /// capped at [`MAX_OVERFLOW_CAP`].
    pub fn validated(self) -> LadderConfig {
        // Clamping first keeps next_power_of_two from overflowing on huge values.
        let window_ticks = self.window_ticks.clamp(MIN_WINDOW_TICKS, MAX_WINDOW_TICKS).next_power_of_two();
        LadderConfig { window_ticks, overflow_cap: self.overflow_cap.min(MAX_OVERFLOW_CAP) }
    }
}

/// Counters of the ladder's internal work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LadderStats {
    /// Times a side's window moved (placing the window of an empty side is free and not counted).
    pub recentres: u64,
    /// Levels dropped because a side's overflow was full (the farthest from the touch go first).
    pub evicted: u64,
}

/// Bits `0..=b` of a word.
#[inline(always)]
fn bits_upto(b: usize) -> u64 {
    u64::MAX >> (63 - b)
}

/// Bits `b..=63` of a word.
#[inline(always)]
fn bits_from(b: usize) -> u64 {
    u64::MAX << b
}

/// Highest set bit of `words` in `lo..hi`, scanning word by word (used on the short summary).
fn prev_in(words: &[u64], lo: usize, hi: usize) -> Option<usize> {
    if lo >= hi {
        return None;
    }
    let (lw, hw) = (lo >> 6, (hi - 1) >> 6);
    let mut w = hw;
    let mut m = words[w] & bits_upto((hi - 1) & 63);
    loop {
        if w == lw {
            m &= bits_from(lo & 63);
        }
        if m != 0 {
            return Some(w * 64 + 63 - m.leading_zeros() as usize);
        }
        if w == lw {
            return None;
        }
        w -= 1;
        m = words[w];
    }
}

/// Lowest set bit of `words` in `lo..hi`, scanning word by word (used on the short summary).
fn next_in(words: &[u64], lo: usize, hi: usize) -> Option<usize> {
    if lo >= hi {
        return None;
    }
    let (lw, hw) = (lo >> 6, (hi - 1) >> 6);
    let mut w = lw;
    let mut m = words[w] & bits_from(lo & 63);
    loop {
        if w == hw {
            m &= bits_upto((hi - 1) & 63);
        }
        if m != 0 {
            return Some(w * 64 + m.trailing_zeros() as usize);
        }
        if w == hw {
            return None;
        }
        w += 1;
        m = words[w];
    }
}

/// One side's window storage, addressed by physical slot (`rank mod W`); it knows nothing of ranks.
struct Slots {
    /// Quantity per slot, 0 when empty.
    qty: Box<[Units]>,
    /// Bit `p` set iff `qty[p] != 0`.
    bits: Box<[u64]>,
    /// Bit `w` set iff `bits[w] != 0`.
    summary: Box<[u64]>,
}

impl Slots {
    fn new(w: usize) -> Slots {
        let words = w / 64;
        Slots {
            qty: vec![0; w].into_boxed_slice(),
            bits: vec![0; words].into_boxed_slice(),
            summary: vec![0; words.div_ceil(64)].into_boxed_slice(),
        }
    }

    #[inline(always)]
    fn mark(&mut self, p: usize) {
        let w = p >> 6;
        self.bits[w] |= 1 << (p & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
    }

    /// Sets or clears the bit of slot `p` and keeps its summary bit right, without branching.
    #[inline(always)]
    fn set_bit(&mut self, p: usize, on: bool) {
        let w = p >> 6;
        let bit = 1u64 << (p & 63);
        let m = (self.bits[w] & !bit) | (bit * on as u64);
        self.bits[w] = m;
        let sbit = 1u64 << (w & 63);
        let s = &mut self.summary[w >> 6];
        *s = (*s & !sbit) | (sbit * (m != 0) as u64);
    }

    /// Highest occupied slot in `lo..hi`: the word holding `hi - 1`, then the summary to jump to
    /// the next non-empty word, so the cost does not depend on how far away that slot is.
    fn prev(&self, lo: usize, hi: usize) -> Option<usize> {
        if lo >= hi {
            return None;
        }
        let (lw, hw) = (lo >> 6, (hi - 1) >> 6);
        let mut m = self.bits[hw] & bits_upto((hi - 1) & 63);
        if hw == lw {
            m &= bits_from(lo & 63);
        }
        if m != 0 {
            return Some(hw * 64 + 63 - m.leading_zeros() as usize);
        }
        if hw == lw {
            return None;
        }
        let w = prev_in(&self.summary, lw, hw)?;
        let mut m = self.bits[w];
        if w == lw {
            m &= bits_from(lo & 63);
        }
        (m != 0).then(|| w * 64 + 63 - m.leading_zeros() as usize)
    }

    /// Calls `f(slot, qty)` on every occupied slot in `lo..hi`, highest first.
    fn for_each_desc(&self, lo: usize, hi: usize, mut f: impl FnMut(usize, Units)) {
        if lo >= hi {
            return;
        }
        let (lw, hw) = (lo >> 6, (hi - 1) >> 6);
        let mut w = hw;
        loop {
            let mut m = self.bits[w];
            if w == hw {
                m &= bits_upto((hi - 1) & 63);
            }
            if w == lw {
                m &= bits_from(lo & 63);
            }
            while m != 0 {
                let b = 63 - m.leading_zeros() as usize;
                let p = w * 64 + b;
                f(p, self.qty[p]);
                m ^= 1 << b;
            }
            if w == lw {
                return;
            }
            match prev_in(&self.summary, lw, w) {
                Some(w2) => w = w2,
                None => return,
            }
        }
    }

    /// Empties every occupied slot in `lo..hi`, lowest first, handing each to `f(slot, qty)`.
    fn drain_asc(&mut self, lo: usize, hi: usize, mut f: impl FnMut(usize, Units)) {
        if lo >= hi {
            return;
        }
        let (lw, hw) = (lo >> 6, (hi - 1) >> 6);
        let mut w = lw;
        loop {
            let mut mask = u64::MAX;
            if w == lw {
                mask &= bits_from(lo & 63);
            }
            if w == hw {
                mask &= bits_upto((hi - 1) & 63);
            }
            let mut m = self.bits[w] & mask;
            if m != 0 {
                let rest = self.bits[w] & !mask;
                self.bits[w] = rest;
                if rest == 0 {
                    self.summary[w >> 6] &= !(1 << (w & 63));
                }
                while m != 0 {
                    let p = w * 64 + m.trailing_zeros() as usize;
                    f(p, std::mem::take(&mut self.qty[p]));
                    m &= m - 1;
                }
            }
            if w == hw {
                return;
            }
            match next_in(&self.summary, w + 1, hw + 1) {
                Some(w2) => w = w2,
                None => return,
            }
        }
    }

    /// Empties every slot, visiting only the non-empty words (found through the summary).
    fn clear(&mut self) {
        for s in 0..self.summary.len() {
            let mut sm = self.summary[s];
            while sm != 0 {
                let w = s * 64 + sm.trailing_zeros() as usize;
                let mut m = self.bits[w];
                while m != 0 {
                    self.qty[w * 64 + m.trailing_zeros() as usize] = 0;
                    m &= m - 1;
                }
                self.bits[w] = 0;
                sm &= sm - 1;
            }
            self.summary[s] = 0;
        }
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.qty) + std::mem::size_of_val(&*self.bits) + std::mem::size_of_val(&*self.summary)
    }
}

/// One side in rank space (higher rank = better): window, overflow, cached best, counters.
struct HalfBook {
    slots: Slots,
    /// Levels outside the window, sorted by rank: front farthest from the touch, back nearest.
    /// Every rank here is below `base` (see the module invariant).
    ov: VecDeque<(i64, Units)>,
    /// The most levels `ov` may hold; never above its capacity, so pushes never reallocate.
    ov_cap: usize,
    /// `ov.capacity()` at construction, to prove it never changes.
    ov_alloc: usize,
    /// Window size W as u64 (a power of two), and W - 1.
    w: u64,
    mask: u64,
    /// Lowest rank of the window; at most `i64::MAX - (W - 1)`.
    base: i64,
    /// Highest occupied rank; meaningful only when `arr_len > 0`.
    best: i64,
    /// Occupied window slots.
    arr_len: usize,
    recentres: u64,
    evicted: u64,
}

impl HalfBook {
    fn new(w: usize, ov_cap: usize) -> HalfBook {
        let ov = VecDeque::with_capacity(ov_cap);
        HalfBook {
            slots: Slots::new(w),
            ov_alloc: ov.capacity(),
            ov,
            ov_cap,
            w: w as u64,
            mask: w as u64 - 1,
            base: 0,
            best: 0,
            arr_len: 0,
            recentres: 0,
            evicted: 0,
        }
    }

    #[inline(always)]
    fn phys(&self, r: i64) -> usize {
        (r as u64 & self.mask) as usize
    }

    /// The rank held by window slot `p` (wrapping is the modular distance from the base slot).
    #[inline(always)]
    fn rank_of(&self, p: usize) -> i64 {
        let off = (p as u64).wrapping_sub(self.base as u64) & self.mask;
        // base + off <= i64::MAX because base <= i64::MAX - (W - 1).
        self.base + off as i64
    }

    /// The base that puts rank `b` at the target offset 3W/4, clamped so the window stays in i64.
    fn target_base(&self, b: i64) -> i64 {
        let t = b.saturating_sub((self.w - self.w / 4) as i64);
        t.min(i64::MAX - (self.w as i64 - 1))
    }

    /// The hot path: a level inside the window of a non-empty side costs one unsigned compare, a
    /// store, and a bit flip plus a best compare when the level appears or disappears.
    #[inline]
    fn set(&mut self, r: i64, q: Units) {
        let off = r.wrapping_sub(self.base) as u64;
        if off < self.w && self.arr_len != 0 {
            let p = self.phys(r);
            let old = std::mem::replace(&mut self.slots.qty[p], q);
            // Whether a level appears, stays or goes depends on the data, so it is computed with
            // selects rather than branches, which would mispredict on a live feed.
            let (occupied, was) = (q != 0, old != 0);
            self.slots.set_bit(p, occupied);
            self.arr_len = self.arr_len + occupied as usize - was as usize;
            // A higher best only moves away from the worse half: no recentre check.
            let better = occupied & (r > self.best);
            self.best = if better { r } else { self.best };
            // Removing the best is the one rare case that needs work.
            if !occupied & (r == self.best) {
                self.refind_best(r);
            }
            return;
        }
        self.set_slow(r, q);
    }

    /// Everything that is not the hot path: an empty side, a new best beyond the window, and the
    /// levels below the window, which live in the overflow.
    #[inline(never)]
    fn set_slow(&mut self, r: i64, q: Units) {
        if self.arr_len == 0 {
            // Empty side (its overflow is empty too, by the invariant): a removal is a no-op and a
            // new level gets a window placed around it.
            debug_assert!(self.ov.is_empty());
            if q != 0 {
                self.base = self.target_base(r);
                self.insert_slot(r, q);
                self.best = r;
            }
            return;
        }
        if r > self.best {
            // Beyond the better edge of the window, where no level can exist: a new best.
            if q != 0 {
                self.recentre(self.target_base(r));
                self.insert_slot(r, q);
                self.best = r;
            }
        } else if q != 0 {
            self.ov_upsert(r, q);
        } else {
            self.ov_remove(r);
        }
    }

    #[inline(always)]
    fn insert_slot(&mut self, r: i64, q: Units) {
        let p = self.phys(r);
        debug_assert_eq!(self.slots.qty[p], 0);
        self.slots.qty[p] = q;
        self.slots.mark(p);
        self.arr_len += 1;
    }

    /// The best at `r` was just removed: find the next one below it in the window, or failing
    /// that bring the window onto the nearest overflow level.
    #[inline(never)]
    fn refind_best(&mut self, r: i64) {
        if self.arr_len == 0 {
            if let Some(&(b, _)) = self.ov.back() {
                self.recentre(self.target_base(b));
                self.best = b;
            }
            return;
        }
        // Nothing is above r, so the next best is the highest occupied rank in base..r; in slots
        // that range may wrap around the end of the circular array.
        let (pb, pr) = (self.phys(self.base), self.phys(r));
        let found = if pb <= pr {
            self.slots.prev(pb, pr)
        } else {
            self.slots.prev(0, pr).or_else(|| self.slots.prev(pb, self.w as usize))
        };
        let Some(p) = found else {
            debug_assert!(false, "occupied window without a level below its removed best");
            return;
        };
        self.best = self.rank_of(p);
        if ((self.best - self.base) as u64) < self.w / 2 {
            self.recentre(self.target_base(self.best));
        }
    }

    /// Moves the window to start at `nb`. By the invariant, moving up (toward better ranks) only
    /// pushes the lowest window levels into the overflow, and moving down only pulls the overflow's
    /// nearest levels into the window: nothing is ever above the best.
    fn recentre(&mut self, nb: i64) {
        if nb == self.base {
            return;
        }
        self.recentres += 1;
        if nb > self.base {
            if self.arr_len > 0 {
                // Ranks base..base+n leave the window, in ascending order, so each one is the
                // nearest overflow level so far and goes to the back.
                let n = (nb.wrapping_sub(self.base) as u64).min(self.w) as usize;
                let w = self.w as usize;
                let pb = self.phys(self.base);
                let (base, mask, cap) = (self.base as u64, self.mask, self.ov_cap);
                let (ov, evicted) = (&mut self.ov, &mut self.evicted);
                let mut moved = 0usize;
                let mut spill = |p: usize, q: Units| {
                    let r = base.wrapping_add((p as u64).wrapping_sub(base) & mask) as i64;
                    push_nearest(ov, cap, evicted, r, q);
                    moved += 1;
                };
                if pb + n <= w {
                    self.slots.drain_asc(pb, pb + n, &mut spill);
                } else {
                    self.slots.drain_asc(pb, w, &mut spill);
                    self.slots.drain_asc(0, pb + n - w, &mut spill);
                }
                self.arr_len -= moved;
            }
            self.base = nb;
        } else {
            self.base = nb;
            while let Some(&(r, q)) = self.ov.back() {
                if r < nb {
                    break;
                }
                self.ov.pop_back();
                self.insert_slot(r, q);
            }
        }
    }

    /// Sets a level below the window, evicting the farthest one when the overflow is full.
    fn ov_upsert(&mut self, r: i64, q: Units) {
        match self.ov.binary_search_by(|e| e.0.cmp(&r)) {
            Ok(i) => self.ov[i].1 = q,
            Err(i) => {
                if self.ov.len() < self.ov_cap {
                    self.ov.insert(i, (r, q));
                } else {
                    self.evicted += 1;
                    // At the front it would be the farthest level itself: refuse it.
                    if i > 0 {
                        self.ov.pop_front();
                        self.ov.insert(i - 1, (r, q));
                    }
                }
            }
        }
    }

    fn ov_remove(&mut self, r: i64) {
        if let Ok(i) = self.ov.binary_search_by(|e| e.0.cmp(&r)) {
            self.ov.remove(i);
        }
    }

    fn get(&self, r: i64) -> Units {
        if (r.wrapping_sub(self.base) as u64) < self.w {
            self.slots.qty[self.phys(r)]
        } else if r < self.base {
            self.ov.binary_search_by(|e| e.0.cmp(&r)).map_or(0, |i| self.ov[i].1)
        } else {
            0
        }
    }

    #[inline]
    fn best(&self) -> Option<(i64, Units)> {
        (self.arr_len != 0).then(|| (self.best, self.slots.qty[self.phys(self.best)]))
    }

    fn len(&self) -> usize {
        self.arr_len + self.ov.len()
    }

    fn clear(&mut self) {
        self.slots.clear();
        // VecDeque::clear keeps its buffer.
        self.ov.clear();
        self.arr_len = 0;
    }

    /// Calls `f(rank, qty)` best first: the window from the best down, then the overflow from the
    /// nearest level to the farthest (all of it is below the window).
    fn for_each(&self, mut f: impl FnMut(i64, Units)) {
        if self.arr_len != 0 {
            let (pb, pt) = (self.phys(self.base), self.phys(self.best));
            let mut g = |p: usize, q: Units| f(self.rank_of(p), q);
            if pb <= pt {
                self.slots.for_each_desc(pb, pt + 1, &mut g);
            } else {
                self.slots.for_each_desc(0, pt + 1, &mut g);
                self.slots.for_each_desc(pb, self.w as usize, &mut g);
            }
        }
        for &(r, q) in self.ov.iter().rev() {
            f(r, q);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes() + self.ov.capacity() * std::mem::size_of::<(i64, Units)>()
    }

    /// Checks every invariant by brute force, O(W + overflow).
    fn check(&self) -> Result<(), &'static str> {
        let w = self.w as usize;
        let s = &self.slots;
        if self.base > i64::MAX - (w as i64 - 1) {
            return Err("window runs past i64::MAX");
        }
        let mut count = 0;
        let mut top: Option<i64> = None;
        for p in 0..w {
            let bit = (s.bits[p >> 6] >> (p & 63)) & 1 == 1;
            if bit != (s.qty[p] != 0) {
                return Err("slot quantity and occupancy bit disagree");
            }
            if bit {
                count += 1;
                let r = self.rank_of(p);
                top = Some(top.map_or(r, |t| t.max(r)));
            }
        }
        let mut summary_ones = 0;
        for (i, &word) in s.bits.iter().enumerate() {
            let bit = (s.summary[i >> 6] >> (i & 63)) & 1 == 1;
            if bit != (word != 0) {
                return Err("summary bit disagrees with its word");
            }
            summary_ones += bit as u32;
        }
        if s.summary.iter().map(|x| x.count_ones()).sum::<u32>() != summary_ones {
            return Err("summary bit set beyond the bitmap");
        }
        if count != self.arr_len {
            return Err("window level count is wrong");
        }
        match top {
            None if !self.ov.is_empty() => return Err("overflow holds levels but the window is empty"),
            Some(t) if t != self.best => return Err("cached best is not the highest window level"),
            _ => {}
        }
        if self.ov.len() > self.ov_cap {
            return Err("overflow above its cap");
        }
        if self.ov.capacity() != self.ov_alloc {
            return Err("overflow reallocated");
        }
        if self.ov.iter().any(|&(r, q)| r >= self.base || q == 0) {
            return Err("overflow level inside or above the window, or empty");
        }
        if self.ov.iter().zip(self.ov.iter().skip(1)).any(|(a, b)| a.0 >= b.0) {
            return Err("overflow not strictly sorted");
        }
        Ok(())
    }
}

/// Appends a level nearer than every overflow level, evicting the farthest when full.
#[inline]
fn push_nearest(ov: &mut VecDeque<(i64, Units)>, cap: usize, evicted: &mut u64, r: i64, q: Units) {
    debug_assert!(ov.back().is_none_or(|b| b.0 < r));
    if ov.len() >= cap {
        *evicted += 1;
        // With a zero cap there is nothing to make room from: the level itself is dropped.
        if ov.pop_front().is_none() {
            return;
        }
    }
    ov.push_back((r, q));
}

/// Asks are stored by rank `!tick` so that, as for bids, a higher rank is a better price.
#[inline(always)]
fn ask_rank(tick: Ticks) -> i64 {
    !tick
}

/// One symbol's book.
pub struct Ladder {
    bids: HalfBook,
    asks: HalfBook,
    cfg: LadderConfig,
}

impl Ladder {
    /// An empty ladder; all of its memory is allocated here (see the module doc for the sizes).
    /// Never panics: the configuration is first passed through [`LadderConfig::validated`].
    pub fn new(cfg: LadderConfig) -> Ladder {
        let cfg = cfg.validated();
        Ladder {
            bids: HalfBook::new(cfg.window_ticks, cfg.overflow_cap),
            asks: HalfBook::new(cfg.window_ticks, cfg.overflow_cap),
            cfg,
        }
    }
    /// The configuration in effect: the one given to [`Ladder::new`], validated.
    pub fn config(&self) -> LadderConfig {
        self.cfg
    }
    /// Removes every level, touching only occupied bitmap words; keeps all memory and the counters.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }
    /// Sets the quantity at a price; zero removes the level (removing an absent level is a no-op).
    #[inline]
    pub fn set(&mut self, side: Side, tick: Ticks, qty: Units) {
        match side {
            Side::Bid => self.bids.set(tick, qty),
            Side::Ask => self.asks.set(ask_rank(tick), qty),
        }
    }
    /// The best level of a side.
    #[inline]
    pub fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Bid => self.bids.best().map(|(tick, qty)| Level { tick, qty }),
            Side::Ask => self.asks.best().map(|(r, qty)| Level { tick: ask_rank(r), qty }),
        }
    }
    /// Best bid.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.best(Side::Bid)
    }
    /// Best ask.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.best(Side::Ask)
    }
    /// Quantity at a price, 0 when there is no level.
    pub fn qty(&self, side: Side, tick: Ticks) -> Units {
        match side {
            Side::Bid => self.bids.get(tick),
            Side::Ask => self.asks.get(ask_rank(tick)),
        }
    }
    /// Number of levels on a side.
    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }
    /// True when both sides are empty.
    pub fn is_empty(&self) -> bool {
        self.bids.len() == 0 && self.asks.len() == 0
    }
    /// Calls `f` on every level of a side, best first. Does not allocate.
    pub fn for_each_level(&self, side: Side, mut f: impl FnMut(Level)) {
        match side {
            Side::Bid => self.bids.for_each(|tick, qty| f(Level { tick, qty })),
            Side::Ask => self.asks.for_each(|r, qty| f(Level { tick: ask_rank(r), qty })),
        }
    }
    /// Every level of a side, best first (allocates: for dumps and tests, not the hot path).
    pub fn levels(&self, side: Side) -> Vec<Level> {
        let mut v = Vec::with_capacity(self.len(side));
        self.for_each_level(side, |l| v.push(l));
        v
    }
    /// Internal work counters, both sides summed.
    pub fn stats(&self) -> LadderStats {
        LadderStats {
            recentres: self.bids.recentres + self.asks.recentres,
            evicted: self.bids.evicted + self.asks.evicted,
        }
    }
    /// The fixed memory of the book in bytes: this struct plus both sides' arrays, bitmaps and
    /// reserved overflow. It does not change after [`Ladder::new`].
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Ladder>() + self.bids.heap_bytes() + self.asks.heap_bytes()
    }
    /// Checks every internal invariant by brute force (O(window + overflow)): bitmaps agree with
    /// the quantities, the cached bests are the real ones, each overflow is sorted, within its cap,
    /// never reallocated and entirely worse than its window. For tests and debugging; the error
    /// names the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.bids.check()?;
        self.asks.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ladder(window_ticks: usize, overflow_cap: usize) -> Ladder {
        Ladder::new(LadderConfig { window_ticks, overflow_cap })
    }

    fn lv(tick: Ticks, qty: Units) -> Level {
        Level { tick, qty }
    }

    fn ok(l: &Ladder) {
        l.check_invariants().unwrap();
    }

    /// Ticks of a side's overflow, in tick order.
    fn overflow_ticks(l: &Ladder, side: Side) -> Vec<Ticks> {
        let mut v: Vec<Ticks> = match side {
            Side::Bid => l.bids.ov.iter().map(|e| e.0).collect(),
            Side::Ask => l.asks.ov.iter().map(|e| ask_rank(e.0)).collect(),
        };
        v.sort();
        v
    }

    fn in_window(l: &Ladder, side: Side, tick: Ticks) -> bool {
        let (b, r) = match side {
            Side::Bid => (&l.bids, tick),
            Side::Ask => (&l.asks, ask_rank(tick)),
        };
        (r.wrapping_sub(b.base) as u64) < b.w
    }

    fn ticks(l: &Ladder, side: Side) -> Vec<Ticks> {
        l.levels(side).iter().map(|x| x.tick).collect()
    }

    #[test]
    fn set_remove_and_best_on_both_sides() {
        let mut l = Ladder::new(LadderConfig::default());
        assert!(l.is_empty());
        assert_eq!(l.best_bid(), None);
        assert_eq!(l.best_ask(), None);
        l.set(Side::Bid, 6_183_763, 5);
        l.set(Side::Bid, 6_183_760, 7);
        l.set(Side::Ask, 6_183_764, 3);
        l.set(Side::Ask, 6_183_770, 9);
        ok(&l);
        assert_eq!(l.best_bid(), Some(lv(6_183_763, 5)));
        assert_eq!(l.best_ask(), Some(lv(6_183_764, 3)));
        assert_eq!(l.len(Side::Bid), 2);
        assert_eq!(l.len(Side::Ask), 2);
        // Quantity update in place, then a better level on each side.
        l.set(Side::Bid, 6_183_763, 6);
        assert_eq!(l.best_bid(), Some(lv(6_183_763, 6)));
        l.set(Side::Bid, 6_183_765, 1);
        l.set(Side::Ask, 6_183_762, 2);
        assert_eq!(l.best_bid(), Some(lv(6_183_765, 1)));
        assert_eq!(l.best_ask(), Some(lv(6_183_762, 2)));
        assert_eq!(l.qty(Side::Bid, 6_183_760), 7);
        assert_eq!(l.qty(Side::Ask, 6_183_770), 9);
        assert_eq!(l.qty(Side::Ask, 6_183_771), 0);
        // Removals.
        l.set(Side::Bid, 6_183_765, 0);
        l.set(Side::Ask, 6_183_762, 0);
        assert_eq!(l.best_bid(), Some(lv(6_183_763, 6)));
        assert_eq!(l.best_ask(), Some(lv(6_183_764, 3)));
        l.set(Side::Bid, 6_183_763, 0);
        l.set(Side::Bid, 6_183_760, 0);
        assert_eq!(l.best_bid(), None);
        assert_eq!(l.len(Side::Bid), 0);
        assert!(!l.is_empty());
        l.set(Side::Ask, 6_183_764, 0);
        l.set(Side::Ask, 6_183_770, 0);
        assert!(l.is_empty());
        ok(&l);
        assert_eq!(l.stats(), LadderStats::default());
    }

    #[test]
    fn removing_an_absent_level_is_a_no_op() {
        let mut l = ladder(64, 8);
        // On an empty side.
        l.set(Side::Bid, 1000, 0);
        l.set(Side::Ask, 1000, 0);
        assert!(l.is_empty());
        l.set(Side::Bid, 1000, 4);
        l.set(Side::Ask, 1001, 4);
        l.set(Side::Bid, 900, 2); // overflow
        l.set(Side::Ask, 1100, 2); // overflow
        let (bids, asks) = (l.levels(Side::Bid), l.levels(Side::Ask));
        for t in [999, 1010, 990, 901, 2000, 0, -5, i64::MIN, i64::MAX] {
            l.set(Side::Bid, t, 0);
        }
        for t in [1002, 995, 1099, 1101, 500, i64::MIN, i64::MAX] {
            l.set(Side::Ask, t, 0);
        }
        ok(&l);
        assert_eq!(l.levels(Side::Bid), bids);
        assert_eq!(l.levels(Side::Ask), asks);
        assert_eq!(l.stats(), LadderStats::default());
    }

    #[test]
    fn next_best_found_across_words_and_summary_words() {
        // 32,768 ticks: 512 bitmap words, 8 summary words (4,096 ticks each); the best is placed
        // at offset 24,576 and the window only drifts below offset 16,384.
        let mut l = ladder(1 << 15, 64);
        let x = 6_183_763;
        let below = [0, 1, 63, 64, 65, 1000, 4095, 4096, 4097, 5000, 8000, 8191];
        for d in below {
            l.set(Side::Bid, x - d, 10 + d);
            l.set(Side::Ask, x + d, 20 + d);
        }
        ok(&l);
        for d in below {
            assert_eq!(l.best_bid(), Some(lv(x - d, 10 + d)));
            assert_eq!(l.best_ask(), Some(lv(x + d, 20 + d)));
            l.set(Side::Bid, x - d, 0);
            l.set(Side::Ask, x + d, 0);
            ok(&l);
        }
        assert!(l.is_empty());
        // All of it within the window, above its worse half: no recentre was needed.
        assert_eq!(l.stats().recentres, 0);
    }

    #[test]
    fn next_best_search_wraps_around_the_circular_array() {
        let mut l = ladder(64, 8);
        // 1029 mod 64 = 5: the window 981..1045 starts at slot 21, so levels below 1029 that sit
        // in slots 21..64 are found only after wrapping past slot 0.
        l.set(Side::Bid, 1029, 1);
        assert_eq!(l.bids.base, 981);
        l.set(Side::Bid, 1024, 2); // slot 0
        l.set(Side::Bid, 1019, 3); // slot 59
        l.set(Side::Bid, 1014, 4); // slot 54
                                   // The best-first walk wraps too: slots 5 and 0, then 59 and 54.
        assert_eq!(ticks(&l, Side::Bid), vec![1029, 1024, 1019, 1014]);
        l.set(Side::Bid, 1029, 0);
        assert_eq!(l.best_bid(), Some(lv(1024, 2)));
        l.set(Side::Bid, 1024, 0);
        assert_eq!(l.best_bid(), Some(lv(1019, 3)));
        l.set(Side::Bid, 1019, 0);
        assert_eq!(l.best_bid(), Some(lv(1014, 4)));
        ok(&l);
        assert_eq!(l.stats().recentres, 0);
    }

    #[test]
    fn next_best_in_the_lowest_word_of_the_window() {
        // 4,096 ticks: 64 words, one summary word. The window base 1,000,000 is a multiple of 64,
        // so the level at base + 5 is alone in the lowest word of the range searched.
        let mut l = ladder(1 << 12, 8);
        let x = 1_000_000 + 3072;
        l.set(Side::Bid, x, 1);
        assert_eq!(l.bids.base, 1_000_000);
        l.set(Side::Bid, 1_000_005, 2);
        l.set(Side::Bid, x, 0);
        assert_eq!(l.best_bid(), Some(lv(1_000_005, 2)));
        ok(&l);
        // Mirrored on the ask side: the ask window's lowest rank is its highest tick.
        let y = 2_000_000;
        l.set(Side::Ask, y, 1);
        let top = ask_rank(l.asks.base);
        l.set(Side::Ask, top, 2);
        l.set(Side::Ask, y, 0);
        assert_eq!(l.best_ask(), Some(lv(top, 2)));
        ok(&l);
    }

    #[test]
    fn recentre_spills_levels_from_many_words() {
        let mut l = ladder(1 << 12, 64);
        let x = 5_000_000;
        let below = [0, 1, 64, 100, 700, 1000, 1500, 2000];
        for d in below {
            l.set(Side::Bid, x - d, 1 + d);
            l.set(Side::Ask, x + d, 1 + d);
        }
        // A new best far beyond each window: every level spills, in order, to the overflow.
        l.set(Side::Bid, x + 10_000, 9);
        l.set(Side::Ask, x - 10_000, 9);
        ok(&l);
        let mut spilled: Vec<Ticks> = below.iter().map(|d| x - d).collect();
        spilled.sort();
        assert_eq!(overflow_ticks(&l, Side::Bid), spilled);
        let mut spilled: Vec<Ticks> = below.iter().map(|d| x + d).collect();
        spilled.sort();
        assert_eq!(overflow_ticks(&l, Side::Ask), spilled);
        assert_eq!(l.stats().recentres, 2);
        // And they all come back, best first.
        l.set(Side::Bid, x + 10_000, 0);
        l.set(Side::Ask, x - 10_000, 0);
        ok(&l);
        let want: Vec<Level> = below.iter().map(|&d| lv(x - d, 1 + d)).collect();
        assert_eq!(l.levels(Side::Bid), want);
        let want: Vec<Level> = below.iter().map(|&d| lv(x + d, 1 + d)).collect();
        assert_eq!(l.levels(Side::Ask), want);
    }

    #[test]
    fn far_levels_go_to_the_overflow_and_come_back_on_recentre() {
        // BTCUSDT-like: touch at 61,837.00 with a 0.01 tick, a bid 10% away.
        let mut l = ladder(1 << 16, 1 << 10);
        let touch = 6_183_700;
        let far = 5_565_387;
        l.set(Side::Bid, touch, 1);
        l.set(Side::Bid, far, 2);
        l.set(Side::Ask, touch + 1, 1);
        l.set(Side::Ask, touch + 618_000, 2);
        ok(&l);
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![far]);
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![touch + 618_000]);
        assert_eq!(l.len(Side::Bid), 2);
        assert_eq!(l.qty(Side::Bid, far), 2);
        assert_eq!(l.qty(Side::Ask, touch + 618_000), 2);
        assert_eq!(l.levels(Side::Bid), vec![lv(touch, 1), lv(far, 2)]);
        // The touch goes away: the far level is the best and back in the array.
        l.set(Side::Bid, touch, 0);
        l.set(Side::Ask, touch + 1, 0);
        ok(&l);
        assert_eq!(l.best_bid(), Some(lv(far, 2)));
        assert_eq!(l.best_ask(), Some(lv(touch + 618_000, 2)));
        assert!(overflow_ticks(&l, Side::Bid).is_empty());
        assert!(overflow_ticks(&l, Side::Ask).is_empty());
        assert_eq!(l.stats().recentres, 2);
    }

    #[test]
    fn bid_window_recentres_up_and_down() {
        let mut l = ladder(64, 16);
        l.set(Side::Bid, 1000, 1);
        assert_eq!(l.bids.base, 952, "best placed at 3/4 of the window");
        l.set(Side::Bid, 990, 2);
        // A rise within the window: no recentre.
        l.set(Side::Bid, 1015, 3);
        assert_eq!(l.stats().recentres, 0);
        // A new best beyond the window: it moves up, the lowest levels spill to the overflow.
        l.set(Side::Bid, 1100, 4);
        ok(&l);
        assert_eq!(l.stats().recentres, 1);
        assert_eq!(l.bids.base, 1052);
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![990, 1000, 1015]);
        assert_eq!(ticks(&l, Side::Bid), vec![1100, 1015, 1000, 990]);
        // The best leaves and the window is empty: it moves down onto the overflow's best.
        l.set(Side::Bid, 1100, 0);
        ok(&l);
        assert_eq!(l.stats().recentres, 2);
        assert_eq!(l.best_bid(), Some(lv(1015, 3)));
        assert_eq!(l.bids.base, 967);
        assert!(overflow_ticks(&l, Side::Bid).is_empty());
        // Drift: the best falls into the worse half (offset < 32) and the window follows, pulling
        // in the overflow levels that now fit.
        l.set(Side::Bid, 960, 5);
        l.set(Side::Bid, 942, 6); // exactly the base after the next recentre
        l.set(Side::Bid, 941, 7); // one below it
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![941, 942, 960]);
        l.set(Side::Bid, 1015, 0);
        assert_eq!(l.best_bid(), Some(lv(1000, 1)));
        assert_eq!(l.stats().recentres, 2, "offset 33 is not in the worse half");
        l.set(Side::Bid, 1000, 0);
        ok(&l);
        assert_eq!(l.best_bid(), Some(lv(990, 2)));
        assert_eq!(l.stats().recentres, 3);
        assert_eq!(l.bids.base, 942);
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![941]);
        assert_eq!(ticks(&l, Side::Bid), vec![990, 960, 942, 941]);
    }

    #[test]
    fn ask_window_recentres_down_and_up() {
        let mut l = ladder(64, 16);
        l.set(Side::Ask, 1000, 1);
        // The ask window covers ticks 985..=1048: the best sits at 1/4 of it.
        assert!(in_window(&l, Side::Ask, 985) && in_window(&l, Side::Ask, 1048));
        assert!(!in_window(&l, Side::Ask, 984) && !in_window(&l, Side::Ask, 1049));
        l.set(Side::Ask, 1048, 2);
        l.set(Side::Ask, 1049, 3);
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![1049]);
        l.set(Side::Ask, 985, 4);
        assert_eq!(l.stats().recentres, 0);
        // A new best below the window: it moves down in price, the highest asks spill.
        l.set(Side::Ask, 900, 5);
        ok(&l);
        assert_eq!(l.stats().recentres, 1);
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![985, 1000, 1048, 1049]);
        assert_eq!(ticks(&l, Side::Ask), vec![900, 985, 1000, 1048, 1049]);
        // Empty window: back up onto the nearest overflow ask (985), pulling in what now fits
        // (window 970..=1033).
        l.set(Side::Ask, 900, 0);
        ok(&l);
        assert_eq!(l.stats().recentres, 2);
        assert_eq!(l.best_ask(), Some(lv(985, 4)));
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![1048, 1049]);
        // Drift: the best moves up in price into the worse half of the window.
        l.set(Side::Ask, 1030, 6);
        l.set(Side::Ask, 985, 0);
        assert_eq!(l.stats().recentres, 2, "1000 is still outside the worse half");
        l.set(Side::Ask, 1000, 0);
        ok(&l);
        assert_eq!(l.best_ask(), Some(lv(1030, 6)));
        assert_eq!(l.stats().recentres, 3);
        assert!(overflow_ticks(&l, Side::Ask).is_empty());
        assert_eq!(ticks(&l, Side::Ask), vec![1030, 1048, 1049]);
    }

    #[test]
    fn overflow_evicts_the_farthest_and_counts_it() {
        let mut l = ladder(64, 2);
        l.set(Side::Bid, 1000, 1);
        l.set(Side::Bid, 900, 2);
        l.set(Side::Bid, 800, 3);
        assert_eq!(l.stats().evicted, 0);
        l.set(Side::Bid, 850, 4); // full: 800 is the farthest
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![850, 900]);
        assert_eq!(l.stats().evicted, 1);
        l.set(Side::Bid, 700, 5); // the farthest itself: refused
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![850, 900]);
        assert_eq!(l.qty(Side::Bid, 700), 0);
        assert_eq!(l.stats().evicted, 2);
        l.set(Side::Bid, 900, 6); // an update of a kept level evicts nothing
        assert_eq!(l.stats().evicted, 2);
        ok(&l);

        l.set(Side::Ask, 1000, 1);
        l.set(Side::Ask, 1100, 2);
        l.set(Side::Ask, 1200, 3);
        l.set(Side::Ask, 1150, 4);
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![1100, 1150]);
        l.set(Side::Ask, 1300, 5);
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![1100, 1150]);
        assert_eq!(l.stats().evicted, 4);
        ok(&l);

        // Spilling on a recentre evicts the farthest too: 850 and 900 go, then 990 (the lowest
        // of the spilled levels) once the spill alone exceeds the cap.
        l.set(Side::Bid, 990, 7);
        l.set(Side::Bid, 995, 8);
        l.set(Side::Bid, 2000, 9);
        ok(&l);
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![995, 1000]);
        assert_eq!(l.stats().evicted, 7);
        assert_eq!(ticks(&l, Side::Bid), vec![2000, 1000, 995]);
    }

    #[test]
    fn zero_overflow_cap_keeps_only_the_window() {
        let mut l = ladder(64, 0);
        l.set(Side::Bid, 1000, 1);
        l.set(Side::Bid, 990, 2);
        l.set(Side::Bid, 10, 3);
        assert_eq!(l.stats().evicted, 1);
        l.set(Side::Bid, 5000, 4);
        assert_eq!(l.stats().evicted, 3);
        assert_eq!(l.levels(Side::Bid), vec![lv(5000, 4)]);
        ok(&l);
    }

    #[test]
    fn clear_empties_both_sides_and_keeps_memory() {
        let mut l = ladder(256, 16);
        let mem = l.memory_bytes();
        for i in 0..200 {
            l.set(Side::Bid, 50_000 - i * 3, 1 + i);
            l.set(Side::Ask, 50_001 + i * 3, 1 + i);
        }
        assert!(l.len(Side::Bid) > 80 && !l.bids.ov.is_empty());
        l.clear();
        ok(&l);
        assert!(l.is_empty());
        assert_eq!(l.best_bid(), None);
        assert_eq!(l.best_ask(), None);
        assert!(l.levels(Side::Bid).is_empty());
        assert_eq!(l.qty(Side::Bid, 50_000), 0);
        assert_eq!(l.memory_bytes(), mem);
        // Reusable afterwards, with a window placed on the new prices.
        l.set(Side::Bid, 7, 1);
        l.set(Side::Ask, 9, 1);
        ok(&l);
        assert_eq!(l.best_bid(), Some(lv(7, 1)));
        assert_eq!(l.best_ask(), Some(lv(9, 1)));
    }

    #[test]
    fn for_each_level_merges_window_and_overflow_best_first() {
        let mut l = ladder(64, 64);
        let mut model: [BTreeMap<Ticks, Units>; 2] = Default::default();
        let mut set = |l: &mut Ladder, side: Side, t: Ticks, q: Units| {
            l.set(side, t, q);
            model[side as usize].insert(t, q);
        };
        // Far levels set directly, then levels that spill on a recentre, then more far levels,
        // some between the spilled ones and the window.
        for (t, q) in [(500, 1), (1000, 2), (990, 3), (1015, 4), (2000, 5), (1990, 6), (1500, 7)] {
            set(&mut l, Side::Bid, t, q);
        }
        for (t, q) in [(3000, 1), (1000, 2), (1010, 3), (985, 4), (100, 5), (110, 6), (700, 7)] {
            set(&mut l, Side::Ask, t, q);
        }
        ok(&l);
        assert!(l.stats().recentres >= 2);
        assert_eq!(overflow_ticks(&l, Side::Bid), vec![500, 990, 1000, 1015, 1500]);
        assert_eq!(overflow_ticks(&l, Side::Ask), vec![700, 985, 1000, 1010, 3000]);
        let bids: Vec<Level> = model[0].iter().rev().map(|(&t, &q)| lv(t, q)).collect();
        let asks: Vec<Level> = model[1].iter().map(|(&t, &q)| lv(t, q)).collect();
        assert_eq!(l.levels(Side::Bid), bids);
        assert_eq!(l.levels(Side::Ask), asks);
    }

    #[test]
    fn config_is_validated_never_panics() {
        let v = |w, c| LadderConfig { window_ticks: w, overflow_cap: c }.validated();
        assert_eq!(v(0, 0), LadderConfig { window_ticks: 64, overflow_cap: 0 });
        assert_eq!(v(65, 3).window_ticks, 128);
        assert_eq!(v(1000, 3).window_ticks, 1024);
        assert_eq!(v(1 << 16, 5).window_ticks, 1 << 16);
        assert_eq!(
            v(usize::MAX, usize::MAX),
            LadderConfig { window_ticks: MAX_WINDOW_TICKS, overflow_cap: MAX_OVERFLOW_CAP }
        );
        assert_eq!(LadderConfig::default().validated(), LadderConfig::default());
        for (w, c) in [(0, 0), (1, 1), (63, 7), (65, 0), (100, 1)] {
            let mut l = ladder(w, c);
            assert_eq!(l.config(), v(w, c));
            l.set(Side::Bid, 1, 1);
            l.set(Side::Ask, 2, 1);
            ok(&l);
        }
    }

    #[test]
    fn extreme_ticks_do_not_panic() {
        let mut l = ladder(64, 8);
        let mut model: [BTreeMap<Ticks, Units>; 2] = Default::default();
        let ops = [i64::MAX, i64::MIN, 0, -5, i64::MAX - 1, i64::MIN + 1, i64::MAX - 40, i64::MIN + 40, -1];
        for side in [Side::Bid, Side::Ask] {
            for (i, &t) in ops.iter().enumerate() {
                l.set(side, t, i as i64 + 1);
                model[side as usize].insert(t, i as i64 + 1);
                ok(&l);
            }
            // Each step removes the best, then one level in set order.
            for &t in ops.iter().chain(ops.iter()) {
                let best = match side {
                    Side::Bid => model[0].keys().next_back().copied(),
                    Side::Ask => model[1].keys().next().copied(),
                };
                assert_eq!(l.best(side).map(|x| x.tick), best);
                if let Some(b) = best {
                    l.set(side, b, 0);
                    model[side as usize].remove(&b);
                }
                l.set(side, t, 0);
                model[side as usize].remove(&t);
                ok(&l);
                assert_eq!(l.len(side), model[side as usize].len());
            }
        }
        assert!(l.is_empty());
    }

    #[test]
    fn memory_bytes_of_the_default_book() {
        let l = Ladder::new(LadderConfig::default());
        // 2 sides x (65,536 x 8 + 1,024 x 8 + 16 x 8 + 16,384 x 16), as stated in the module doc.
        assert_eq!(l.memory_bytes(), 1_589_504 + std::mem::size_of::<Ladder>());
    }
}
