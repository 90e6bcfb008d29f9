//! The market thread: pulls timed events from a source (synthetic or replay), paces them (real
//! time, sped up, a fixed rate, or as fast as clients read), applies depth diffs to the reference
//! books and appends everything to the shared log.
//!
//! A paused market (a fault) holds the next event back and stops the pacing clock while paused,
//! so the stream goes silent on open connections and resumes at its normal pace.
//!
//! Pacing never spins: it sleeps on a condvar until the next event is due (oversleeping makes the
//! following events late, and late events go out at once, so the average rate is exact), or in
//! as-fast-as-read mode it waits until every reader has room. In real-time and sped-up pacing,
//! events due within a millisecond of each other are published together, with one lock and one
//! wake-up of the connections: a whole market is tens of thousands of events a second, and waking
//! every connection thread for each one would cost more than the events. `--rate` keeps every
//! event at its own instant, since latency benchmarks use it. It does not format per-connection
//! bytes; connection threads do that.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::MarketEvent;
use crate::faults::Counters;
use crate::hub::{lock, Hub};
use crate::synth::{Synth, Timed};

/// How fast the market plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Simulated time runs at wall-clock speed (synthetic: a diff every 100 ms; replay: the
    /// recording's own receive-time gaps).
    RealTime,
    /// Simulated time runs N times faster than wall clock.
    Speed(f64),
    /// A fixed number of market messages per second (all streams, all symbols), whatever their
    /// simulated times. For latency benchmarks.
    Rate(u32),
    /// No clock at all: publish whenever every connected websocket reader has room. Blocking
    /// writes to a client are the back-pressure. With no websocket client connected the market
    /// waits.
    AsFastAsRead,
}

/// Something that yields market events in simulated-time order.
pub(crate) trait Source: Send {
    /// The next event, or `None` when the source is exhausted (a replay's end).
    fn next_event(&mut self) -> Option<Timed>;
}

/// Steps every synthetic symbol 100 ms at a time and interleaves their events by time.
pub(crate) struct SynthSource {
    synths: Vec<Synth>,
    buf: VecDeque<Timed>,
    t_ns: u64,
}

/// Simulated time between diffs (Binance's `@depth@100ms`).
pub(crate) const STEP_NS: u64 = 100_000_000;

impl SynthSource {
    /// A source over `synths`.
    pub fn new(synths: Vec<Synth>) -> SynthSource {
        SynthSource { synths, buf: VecDeque::new(), t_ns: 0 }
    }
}

impl Source for SynthSource {
    fn next_event(&mut self) -> Option<Timed> {
        if self.buf.is_empty() {
            let mut v = Vec::new();
            for s in &mut self.synths {
                s.step(self.t_ns, STEP_NS, &mut v);
            }
            // Stable: each symbol's own order survives the merge.
            v.sort_by_key(|t| t.at_ns);
            self.buf.extend(v);
            self.t_ns += STEP_NS;
        }
        self.buf.pop_front()
    }
}

/// How far ahead of its time a real-time or sped-up event may go out with the ones before it.
const COALESCE: Duration = Duration::from_millis(1);

/// Runs the market until the source ends or the simulator stops.
pub(crate) fn run(hub: Arc<Hub>, mut source: Box<dyn Source>, pacing: Pacing) {
    let mut start = Instant::now();
    let mut first_at: Option<u64> = None;
    let mut index: u64 = 0;
    let coalesce = if matches!(pacing, Pacing::RealTime | Pacing::Speed(_)) { COALESCE } else { Duration::ZERO };
    let mut batch: Vec<MarketEvent> = Vec::new();
    while let Some(t) = source.next_event() {
        if hub.stopping() {
            return;
        }
        let due = match pacing {
            Pacing::RealTime | Pacing::Speed(_) => {
                let speed = match pacing {
                    Pacing::Speed(s) if s.is_finite() && s > 0.0 => s,
                    _ => 1.0,
                };
                let base = *first_at.get_or_insert(t.at_ns);
                let rel = t.at_ns.saturating_sub(base) as f64 / speed;
                Some(start + Duration::from_nanos(rel as u64))
            }
            Pacing::Rate(n) => {
                let n = u64::from(n.max(1));
                let ns = u128::from(index) * 1_000_000_000 / u128::from(n);
                Some(start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
            }
            Pacing::AsFastAsRead => None,
        };
        match due {
            Some(due) => {
                let now = Instant::now();
                if due > now + coalesce {
                    publish_all(&hub, &mut batch, false);
                    if !hub.sleep(due - now) {
                        return;
                    }
                }
            }
            None => {
                if !wait_for_room(&hub) {
                    return;
                }
            }
        }
        if hub.faults.paused.load(Ordering::Acquire) {
            publish_all(&hub, &mut batch, false);
            Counters::bump(&hub.counters.market_pauses);
            match hub.wait_while_paused() {
                // The clock stops with the market: it resumes where it stopped instead of sending
                // everything that fell due meanwhile in one burst.
                Some(held) => start += held,
                None => return,
            }
        }
        batch.push(t.event);
        if coalesce.is_zero() {
            publish_all(&hub, &mut batch, pacing == Pacing::AsFastAsRead);
        }
        index += 1;
    }
    publish_all(&hub, &mut batch, false);
    hub.market_done.store(true, Ordering::Release);
}

/// As-fast-as-read: waits until a reader exists and the log has room for one more event without
/// evicting anything a reader still needs. False if stopping.
fn wait_for_room(hub: &Hub) -> bool {
    let mut log = lock(&hub.log);
    loop {
        if hub.stopping() {
            return false;
        }
        if !log.readers.is_empty() {
            if log.events.len() < hub.log_capacity {
                return true;
            }
            let min = log.readers.values().copied().min().unwrap_or(0);
            let mut freed = false;
            while log.base < min && !log.events.is_empty() {
                log.events.pop_front();
                log.base += 1;
                freed = true;
            }
            if freed {
                return true;
            }
        }
        log = hub.space_cv.wait_timeout(log, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// Applies the reference diffs (if any) of `events` and appends them all to the log, in order,
/// then wakes the connections once. The references move first, so REST never answers with a
/// state older than a diff a client has already seen. Empties `events`.
pub(crate) fn publish_all(hub: &Hub, events: &mut Vec<MarketEvent>, lossless: bool) {
    if events.is_empty() {
        return;
    }
    let mut diffs = 0;
    if events.iter().any(|e| e.reference.is_some()) {
        let mut books = lock(&hub.books);
        for event in events.iter() {
            let Some(diff) = &event.reference else {
                continue;
            };
            diffs += 1;
            let Some(sb) = books.get_mut(event.symbol) else {
                continue;
            };
            if let Some(h) = sb.history.as_mut() {
                let cur = h.current().last_update_id;
                // Futures ids skip between diffs (the diffs chain by pu): no gap to find there.
                if sb.spec.futures.is_none() && diff.first_id > cur.saturating_add(1) {
                    // Only a recording can do this: the reference can no longer be exact.
                    sb.history = None;
                    Counters::bump(&hub.counters.replay_gaps);
                } else if diff.last_id > cur {
                    h.push(diff.clone());
                }
            }
        }
    }
    let n = events.len() as u64;
    let mut log = lock(&hub.log);
    for event in events.drain(..) {
        if !lossless {
            while log.events.len() >= hub.log_capacity {
                log.events.pop_front();
                log.base += 1;
            }
        }
        log.events.push_back(Arc::new(event));
    }
    drop(log);
    hub.log_cv.notify_all();
    hub.counters.diffs_published.fetch_add(diffs, Ordering::Relaxed);
    hub.counters.events_published.fetch_add(n, Ordering::Relaxed);
}
