//! The frames a new connection delivers ahead of the old one during a make-before-break overlap:
//! held back in arrival order until the old connection has caught up, then replayed.
//!
//! It answers the pipeline's admission callback ([`Held::admit`]) from the event's place in its
//! sequence; it reads no clock and touches no socket.

use std::time::Instant;

use crate::binance::{ByStream, StreamKind};
use crate::pipeline::{Admit, Position, Sequenced};

/// Frames of the new connection held back during an overlap, in arrival order, with the first
/// held id of each sequenced stream per symbol. Memory is kept across overlaps.
#[derive(Default)]
pub(super) struct Held {
    pub(super) bytes: Vec<u8>,
    pub(super) frames: Vec<(usize, usize, Instant)>,
    /// Per symbol and stream: the first held id (`U` of a diff, a trade's id); `None`: not held.
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
        self.first.clear();
        self.first.resize(symbols, ByStream::default());
        self.front.clear();
        self.front.resize(symbols, false);
        self.fresh = false;
    }

    pub(super) fn push(&mut self, frame: &[u8], t: Instant) {
        self.keep(frame, t);
        self.total += 1;
    }

    /// Holds a frame again (a release sweep keeping it): not counted a second time.
    pub(super) fn keep(&mut self, frame: &[u8], t: Instant) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(frame);
        self.frames.push((start, frame.len(), t));
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
            *first = Some(ev.ids.first);
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
            *first = Some(ev.ids.first);
            return Admit::Hold;
        }
        Admit::Process
    }

    /// When the oldest held frame arrived.
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.frames.first().map(|f| f.2)
    }
}
