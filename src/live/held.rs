//! The frames a new connection delivers ahead of the old one during a make-before-break overlap:
//! held back in arrival order until the old connection has caught up, then replayed.
//!
//! It answers the pipeline's admission callback ([`Held::admit`]) from the event's place in its
//! sequence; it reads no clock and touches no socket.

use std::time::Instant;

use crate::binance::{ByStream, StreamKind};
use crate::pipeline::{Admit, FrameOutcome, Pipeline, Position, Sequenced, Wire};

/// Most memory a standby's held frames take during a make-before-break switch (their bytes and
/// their index). A normal overlap holds the few seconds the old connection lags (a few MB even on
/// the whole market); a server that lets the old connection fall far behind, or floods the new one
/// with frames ahead of the books, would otherwise grow the process until `--switch-timeout`
/// (3.3 GB in 10 s was seen). Past the bound the switch happens at once, as at the timeout: the
/// held frames are processed in order and a book they run ahead of resyncs by the gap rule, so
/// no book is ever wrong, only resynced sooner.
pub(crate) const MAX_HELD_BYTES: usize = 64 << 20;

/// Frame bytes [`Held::reset`] keeps for the next overlap after one that came near
/// [`MAX_HELD_BYTES`]; the rest is given back.
const KEPT_HELD_BYTES: usize = 8 << 20;
/// Frames [`Held::reset`] keeps room for in the same case.
const KEPT_HELD_FRAMES: usize = 16 << 10;

/// One held frame's place in [`Held::bytes`], its receive time, and its wire (JSON or SBE).
type Frame = (usize, usize, Instant, Wire);

/// Frames of the new connection held back during an overlap, in arrival order, with the first
/// held id of each sequenced stream per symbol. Memory is kept across overlaps.
#[derive(Default)]
pub(super) struct Held {
    pub(super) bytes: Vec<u8>,
    pub(super) frames: Vec<Frame>,
    /// Per symbol and stream: the first held id (`U` of a diff, `pu + 1` of a futures diff, a
    /// trade's id; see [`Sequenced::first_needed`]); `None`: not held.
    pub(super) first: Vec<ByStream<Option<u64>>>,
    /// Per symbol: the new connection delivered a diff that advanced the book (it is not behind).
    pub(super) front: Vec<bool>,
    /// The new connection delivered a market event not seen before.
    pub(super) fresh: bool,
    /// Frames held over the whole run.
    pub(super) total: u64,
}

impl Held {
    pub(super) fn reset(&mut self, symbols: usize) {
        self.bytes.clear();
        self.frames.clear();
        // Only after an overlap near the bound: a normal one's memory is reused, not reallocated.
        if self.bytes.capacity() + self.frames.capacity() * std::mem::size_of::<Frame>() > MAX_HELD_BYTES / 2 {
            self.bytes.shrink_to(KEPT_HELD_BYTES);
            self.frames.shrink_to(KEPT_HELD_FRAMES);
        }
        self.first.clear();
        self.first.resize(symbols, ByStream::default());
        self.front.clear();
        self.front.resize(symbols, false);
        self.fresh = false;
    }

    /// Memory the held frames take: their bytes and their index.
    pub(super) fn held_bytes(&self) -> usize {
        self.bytes.len() + self.frames.len() * std::mem::size_of::<Frame>()
    }

    /// The held frames reached [`MAX_HELD_BYTES`]: stop holding (switch now).
    pub(super) fn is_full(&self) -> bool {
        self.held_bytes() >= MAX_HELD_BYTES
    }

    /// Holds a JSON text frame.
    #[cfg(test)]
    pub(super) fn push(&mut self, frame: &[u8], t: Instant) {
        self.push_as(Wire::Text, frame, t);
    }

    /// Holds a frame of `wire`.
    pub(super) fn push_as(&mut self, wire: Wire, frame: &[u8], t: Instant) {
        self.keep(wire, frame, t);
        self.total += 1;
    }

    /// Holds a frame again (a release sweep keeping it): not counted a second time.
    pub(super) fn keep(&mut self, wire: Wire, frame: &[u8], t: Instant) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(frame);
        self.frames.push((start, frame.len(), t, wire));
    }

    /// During an overlap: may this event from the new connection be processed now? Only if it is
    /// not ahead of what the old connection delivered. A diff for an unsynced book is ahead (that
    /// book is fed by the old connection alone: interleaving two streams in its buffer could put a
    /// later diff before an earlier one). Once one event of a stream is held, the rest of that
    /// stream is held too, to keep its order. bookTickers are never held.
    pub(super) fn admit(&mut self, ev: &Sequenced) -> Admit {
        if ev.kind == StreamKind::BookTicker {
            return Admit::Process;
        }
        let Some(first) = self.first.get_mut(ev.symbol) else { return Admit::Process };
        let first = &mut first[ev.kind];
        let position = if ev.synced { ev.position } else { Position::Ahead };
        self.fresh |= position != Position::Duplicate;
        if ev.kind == StreamKind::Depth && position == Position::Next && first.is_none() {
            self.front[ev.symbol] = true;
        }
        if first.is_some() {
            return Admit::Hold;
        }
        if position == Position::Ahead {
            *first = Some(ev.first_needed());
            return Admit::Hold;
        }
        Admit::Process
    }

    /// With A/B redundancy: may this event from one of a shard's live connections be processed
    /// now? An event ahead of its stream (something before it was not processed yet) is held
    /// while `hold` (the other connection is up and may still deliver what is missing); once one
    /// event of a stream is held, the rest of that stream is held too, to keep its order.
    /// Duplicates and bookTickers are never held (the pipeline drops the duplicates).
    pub(super) fn admit_ahead(&mut self, ev: &Sequenced, hold: bool) -> Admit {
        if ev.kind == StreamKind::BookTicker || ev.position == Position::Duplicate {
            return Admit::Process;
        }
        let Some(first) = self.first.get_mut(ev.symbol) else { return Admit::Process };
        let first = &mut first[ev.kind];
        if first.is_some() {
            return Admit::Hold;
        }
        if hold && ev.position == Position::Ahead {
            *first = Some(ev.first_needed());
            return Admit::Hold;
        }
        Admit::Process
    }

    /// When the oldest held frame arrived.
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.frames.first().map(|f| f.2)
    }

    /// With redundancy: feeds the held frames through `p` again, in order, and moves those still
    /// ahead of their stream into `keep` (emptied first; `symbols` sizes it). A frame is held
    /// again only while `hold(arrived)`; once one frame of a stream is processed the ones after it
    /// are judged afresh. `done` is told of every frame processed (with its receive time). Leaves
    /// `self` empty, its capacity kept.
    pub(super) fn release_into(
        &mut self,
        keep: &mut Held,
        symbols: usize,
        p: &mut Pipeline,
        recv_ns: impl Fn(Instant) -> i64,
        hold: impl Fn(Instant) -> bool,
        mut done: impl FnMut(&mut Pipeline, Wire, &[u8], i64, &FrameOutcome),
    ) {
        keep.reset(symbols);
        keep.total = self.total;
        for &(start, len, t, wire) in &self.frames {
            let frame = &self.bytes[start..start + len];
            let ns = recv_ns(t);
            let hold = hold(t);
            let o = p.on_message_with(ns, wire, frame, &mut |ev| keep.admit_ahead(ev, hold));
            if let FrameOutcome::Held { .. } = o {
                keep.keep(wire, frame, t);
            } else {
                done(p, wire, frame, ns, &o);
            }
        }
        self.bytes.clear();
        self.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputMode;
    use crate::pipeline::PipelineConfig;

    fn trade(id: u64) -> String {
        format!(
            r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1,"s":"BTCUSDT","t":{id},"p":"1.00","q":"1","T":1,"m":true,"M":true}}}}"#
        )
    }

    /// Connection B of a shard is behind A; A reconnects and comes back ahead of B. Its frames
    /// wait until B has delivered what is missing, and nothing is counted a gap.
    #[test]
    fn frames_ahead_wait_for_the_other_connection_then_continue_it() {
        let mut p =
            Pipeline::new(PipelineConfig { output: OutputMode::None, ..PipelineConfig::default() }, &["btcusdt"]);
        let t0 = Instant::now();
        let (mut a, mut spare) = (Held::default(), Held::default());
        a.reset(1);
        let feed = |p: &mut Pipeline, held: &mut Held, id: u64, hold: bool| {
            let f = trade(id);
            let o = p.on_frame_with(0, f.as_bytes(), &mut |ev| held.admit_ahead(ev, hold));
            if let FrameOutcome::Held { .. } = o {
                held.push(f.as_bytes(), t0);
            }
            o
        };
        let mut b = Held::default();
        b.reset(1);
        for id in 1..=2 {
            assert!(matches!(feed(&mut p, &mut b, id, true), FrameOutcome::Market { .. }));
        }
        // A is back, ahead: 5 and 6 wait (6 because 5 of its stream waits).
        assert!(matches!(feed(&mut p, &mut a, 5, true), FrameOutcome::Held { .. }));
        assert!(matches!(feed(&mut p, &mut a, 6, true), FrameOutcome::Held { .. }));
        assert_eq!(a.total, 2);
        // A sweep before B has caught up keeps both.
        let mut processed = Vec::new();
        a.release_into(&mut spare, 1, &mut p, |_| 0, |_| true, |_, _, _, _, o| processed.push(o.clone()));
        std::mem::swap(&mut a, &mut spare);
        assert_eq!((a.frames.len(), processed.len(), a.total), (2, 0, 2));
        // B delivers 3 and 4 (and a copy of 5 would be a duplicate); now A's frames continue it.
        for id in 3..=4 {
            assert!(matches!(feed(&mut p, &mut b, id, true), FrameOutcome::Market { .. }));
        }
        a.release_into(&mut spare, 1, &mut p, |_| 0, |_| true, |_, _, _, _, o| processed.push(o.clone()));
        std::mem::swap(&mut a, &mut spare);
        assert!(a.frames.is_empty());
        assert_eq!(processed.len(), 2);
        assert!(processed.iter().all(|o| matches!(o, FrameOutcome::Market { .. })), "{processed:?}");
        assert_eq!((p.stats().trades, p.stats().trade_id_gaps), (6, 0));
        // B's late copies are duplicates.
        assert!(matches!(feed(&mut p, &mut b, 5, true), FrameOutcome::Duplicate { .. }));
    }

    /// When the other connection cannot fill the gap (it is down, or the wait is over), the held
    /// frames are processed in order and the gap is counted.
    #[test]
    fn frames_held_too_long_are_processed_and_the_gap_counted() {
        let mut p =
            Pipeline::new(PipelineConfig { output: OutputMode::None, ..PipelineConfig::default() }, &["btcusdt"]);
        let t0 = Instant::now();
        let (mut a, mut spare) = (Held::default(), Held::default());
        a.reset(1);
        assert!(matches!(p.on_frame(0, trade(1).as_bytes()), FrameOutcome::Market { .. }));
        for id in [3, 4] {
            let f = trade(id);
            let o = p.on_frame_with(0, f.as_bytes(), &mut |ev| a.admit_ahead(ev, true));
            assert!(matches!(o, FrameOutcome::Held { .. }));
            a.push(f.as_bytes(), t0);
        }
        // Not holding any more: both go, in order; the one gap (2) is counted once.
        let mut n = 0;
        a.release_into(&mut spare, 1, &mut p, |_| 0, |_| false, |_, _, _, _, _| n += 1);
        assert_eq!((n, spare.frames.len()), (2, 0));
        assert_eq!((p.stats().trades, p.stats().trade_id_gaps), (3, 1));
    }

    /// A standby flooded with frames ahead of the books: the held memory is measured bytes and
    /// index together, reaches the bound, and a reset gives most of it back.
    #[test]
    fn held_frames_are_full_at_the_bound_and_a_reset_gives_the_memory_back() {
        let mut h = Held::default();
        h.reset(1);
        let frame = vec![b'x'; 64 << 10];
        let t0 = Instant::now();
        let mut n = 0;
        while !h.is_full() {
            h.push(&frame, t0);
            n += 1;
            assert!(n <= MAX_HELD_BYTES / frame.len(), "not full after {n} frames");
        }
        assert_eq!(n, MAX_HELD_BYTES / (frame.len() + std::mem::size_of::<Frame>()) + 1);
        assert!(h.held_bytes() < MAX_HELD_BYTES + frame.len() + 64);
        // Tiny frames count their index too.
        let mut tiny = Held::default();
        tiny.reset(1);
        for _ in 0..1000 {
            tiny.push(b"{}", t0);
        }
        assert_eq!(tiny.held_bytes(), 1000 * (2 + std::mem::size_of::<Frame>()));
        let total = h.total;
        h.reset(1);
        assert!(h.bytes.capacity() <= KEPT_HELD_BYTES && h.frames.is_empty() && !h.is_full());
        assert_eq!(h.total, total, "the run's count is kept");
    }

    #[test]
    fn duplicates_and_book_tickers_are_never_held() {
        let mut h = Held::default();
        h.reset(1);
        let ev = |kind, position| Sequenced {
            symbol: 0,
            kind,
            ids: crate::pipeline::Ids::one(9),
            position,
            synced: true,
            prev_final: None,
        };
        assert_eq!(h.admit_ahead(&ev(StreamKind::BookTicker, Position::Next), true), Admit::Process);
        assert_eq!(h.admit_ahead(&ev(StreamKind::Trade, Position::Duplicate), true), Admit::Process);
        assert_eq!(h.admit_ahead(&ev(StreamKind::Trade, Position::Ahead), false), Admit::Process, "not holding");
        assert_eq!(h.admit_ahead(&ev(StreamKind::Depth, Position::Ahead), true), Admit::Hold);
        assert_eq!(h.admit_ahead(&ev(StreamKind::Depth, Position::Next), false), Admit::Hold, "behind a held diff");
        assert_eq!(h.admit_ahead(&ev(StreamKind::Trade, Position::Next), true), Admit::Process, "another stream");
    }
}
