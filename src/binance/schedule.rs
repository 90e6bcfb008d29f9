//! The snapshot scheduler: which depth snapshot goes out next, and when, under Binance's REST
//! rules. Sans-IO in the manner of quinn-proto: it owns no socket, thread or clock. Requests and
//! answers go in through [`Scheduler::handle_request`] and [`Scheduler::handle_response`] with the
//! caller's `now`; what to send comes out of [`Scheduler::poll_send`], when to call again out of
//! [`Scheduler::poll_timeout`], and a wait worth telling a person out of [`Scheduler::poll_wait`].
//!
//! The rules, each with a fake-clock test below:
//! - **Budget.** Every request spends its weight in a sliding one-minute window ([`RestGate`]);
//!   one that would exceed the planned budget waits. The plan is [`planned_budget`]: the
//!   REQUEST_WEIGHT limit exchangeInfo announces (6,000 when it says nothing), or `--weight-budget`
//!   when lower, less [`HEADROOM_PERCENT`]. When the server's `X-MBX-USED-WEIGHT-1M` is higher than
//!   the window's count (another process on the same IP), the server's count wins.
//! - **Several in flight**, at most `max_in_flight` (the worker pool's size), and **one per symbol**:
//!   a request for a symbol already queued or in flight is served by that one.
//! - **Priority.** Books never synced go before resyncs (FIFO within each).
//! - **Rate limits.** A 429 or 418 holds every request back for its `Retry-After` (60 s when
//!   absent); a shorter one never shortens a pause already in force.
//! - **Failures back off.** No answer, a 403 (Binance's WAF, per IP) or a 5xx pauses every request
//!   (jittered exponential backoff, reset by a success); any other failed status delays only that
//!   symbol (its own doubling delay), so one delisted symbol does not hold the others back.
//!
//! Not here: HTTP ([`super::rest_pool`] runs the requests), and books (the pipeline says when one
//! needs a snapshot and judges the one that arrives).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rest::{depth_weight, later, RestGate, RestTotals, WaitReason, DEFAULT_WEIGHT_PER_MINUTE};
use crate::net::backoff::Backoff;

/// Share of the weight limit the scheduler leaves unused. Our window counts a request when it is
/// sent, but the server's count is only seen in answers, so another client on the same IP (a
/// second tickfeed, a browser, a script) is invisible until our next answer; and the server counts
/// per calendar minute, so the two windows never line up exactly. 10% of 6,000 is 600: room for
/// two 5000-level snapshots (250 each) from someone else between two of our answers. A 429 costs a
/// paused IP for its Retry-After, and repeating one brings a 418 ban of minutes to days: far dearer
/// than a tenth of the throughput.
pub(crate) const HEADROOM_PERCENT: u32 = 10;

/// The weight per minute the scheduler plans with: the smaller of `--weight-budget` (`user`) and
/// exchangeInfo's REQUEST_WEIGHT limit (`server`; Binance's documented 6,000 when unknown), less
/// [`HEADROOM_PERCENT`].
pub(crate) fn planned_budget(user: u32, server: Option<u32>) -> u32 {
    let limit = server.unwrap_or(DEFAULT_WEIGHT_PER_MINUTE).min(user);
    let planned = u64::from(limit) * u64::from(100 - HEADROOM_PERCENT) / 100;
    u32::try_from(planned).unwrap_or(u32::MAX).max(1)
}

/// The limits `--depth-limit auto` chooses from, deepest first: the largest of each weight class
/// (5000/1000/500/100 weigh 250/50/25/5).
pub(crate) const AUTO_LIMITS: [u32; 4] = [5000, 1000, 500, 100];

/// What `--depth-limit auto` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AutoDepth {
    /// The snapshot `limit`.
    pub limit: u32,
    /// False when even the shallowest limit does not let every book sync in time (it is used
    /// anyway: the books sync later).
    pub fits: bool,
}

/// `--depth-limit auto`: the deepest of [`AUTO_LIMITS`] for which one snapshot of each of `books`
/// fits the weight available within `within`, after `spent` (exchangeInfo's 20). The weight
/// available within `within` is `budget_per_minute` x `within` / 1 min, and never less than one
/// minute's budget: the window lets a whole minute's budget go at once, so every `within` up to a
/// minute plans with one minute's. Request latency is not modelled (4 requests in flight fetch
/// hundreds of small snapshots a second).
pub(crate) fn auto_depth_limit(books: usize, budget_per_minute: u32, within: Duration, spent: u32) -> AutoDepth {
    let millis = within.as_millis().max(60_000);
    let available = (u128::from(budget_per_minute) * millis / 60_000).saturating_sub(u128::from(spent));
    for limit in AUTO_LIMITS {
        if books as u128 * u128::from(depth_weight(limit)) <= available {
            return AutoDepth { limit, fits: true };
        }
    }
    AutoDepth { limit: AUTO_LIMITS[AUTO_LIMITS.len() - 1], fits: false }
}

/// [`auto_depth_limit`] on `venue`: USDⓈ-M futures chooses from 1000/500/100/50 at its own
/// weights (20/10/5/2).
pub(crate) fn auto_depth_limit_for(
    venue: crate::venue::Venue,
    books: usize,
    budget_per_minute: u32,
    within: Duration,
    spent: u32,
) -> AutoDepth {
    if venue == crate::venue::Venue::Spot {
        return auto_depth_limit(books, budget_per_minute, within, spent);
    }
    let millis = within.as_millis().max(60_000);
    let available = (u128::from(budget_per_minute) * millis / 60_000).saturating_sub(u128::from(spent));
    let limits = venue.auto_limits();
    for &limit in limits {
        if books as u128 * u128::from(venue.depth_weight(limit)) <= available {
            return AutoDepth { limit, fits: true };
        }
    }
    AutoDepth { limit: limits[limits.len() - 1], fits: false }
}

/// How urgent a snapshot request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Priority {
    /// A book never synced yet: nothing of it can be shown.
    Initial = 0,
    /// A book that was synced (a gap, a reconnect, a stale snapshot), or a snapshot the recording
    /// wants.
    Resync = 1,
}

/// A wait worth telling a person: the request at the head of the queue cannot go yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wait {
    /// The symbol index at the head of the queue.
    pub symbol: usize,
    /// How long, from when it was found.
    pub wait: Duration,
    /// Why.
    pub reason: WaitReason,
}

/// What the scheduler did, for the stats file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScheduleCounters {
    /// Requests sent.
    pub sent: u64,
    /// Requests that waited for the weight budget or a Retry-After before going.
    pub delayed: u64,
}

/// How the scheduler is set up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScheduleConfig {
    /// Weight of one request (`depth_weight(limit)`).
    pub weight: u32,
    /// Requests in flight at once (the worker pool's size).
    pub max_in_flight: usize,
    /// First failure delay (doubling up to `retry_max`).
    pub retry_min: Duration,
    /// Longest failure delay.
    pub retry_max: Duration,
    /// Seed of the backoff's jitter.
    pub seed: u64,
}

impl ScheduleConfig {
    /// Requests of `weight`, `max_in_flight` at once, failures retried after 0.5 s doubling to 30 s.
    pub(crate) fn new(weight: u32, max_in_flight: usize, seed: u64) -> ScheduleConfig {
        ScheduleConfig {
            weight,
            max_in_flight: max_in_flight.max(1),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            seed,
        }
    }
}

/// Where one symbol's request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Idle,
    Queued(Priority),
    /// Asked for during the symbol's own failure delay: queued once it ends.
    Delayed(Priority),
    InFlight,
}

#[derive(Debug, Clone, Copy)]
struct SymState {
    slot: Slot,
    /// Failures in a row of this symbol alone (statuses that are not the IP's fault).
    failures: u32,
    /// Not sent before this (its own failure delay).
    not_before: Option<Instant>,
    /// Answers in a row the book could not use (too old for its buffer, malformed): each waits
    /// twice as long before the next request, so a snapshot that is always too old is not
    /// refetched as fast as the budget allows.
    unusable: u32,
}

const IDLE: SymState = SymState { slot: Slot::Idle, failures: 0, not_before: None, unusable: 0 };

/// The snapshot scheduler (see the module documentation for its rules).
#[derive(Debug)]
pub(crate) struct Scheduler {
    gate: RestGate,
    cfg: ScheduleConfig,
    in_flight: usize,
    /// Queued symbols with the time they were queued, by priority (index = `Priority as usize`).
    queues: [VecDeque<(usize, Instant)>; 2],
    /// Symbols waiting out their own failure delay: (until, symbol).
    delayed: Vec<(Instant, usize)>,
    syms: Vec<SymState>,
    /// Every request waits until then (a failure that is the IP's or the server's).
    paused_until: Option<Instant>,
    backoff: Backoff,
    /// The last time a queued request was held back by the budget or a Retry-After.
    held_at: Option<Instant>,
    /// The reason already told for the wait in progress (reset when the queue empties).
    told: Option<WaitReason>,
    wait: Option<Wait>,
    counters: ScheduleCounters,
}

impl Scheduler {
    /// A scheduler for `symbols` symbols (more are added as they are asked for), spending through
    /// `gate` (which may carry exchangeInfo's spend and a Retry-After already).
    pub(crate) fn new(gate: RestGate, cfg: ScheduleConfig, symbols: usize) -> Scheduler {
        Scheduler {
            gate,
            cfg,
            in_flight: 0,
            queues: [VecDeque::with_capacity(symbols), VecDeque::new()],
            delayed: Vec::new(),
            syms: vec![IDLE; symbols],
            paused_until: None,
            backoff: Backoff::new(cfg.retry_min, cfg.retry_max, cfg.seed),
            held_at: None,
            told: None,
            wait: None,
            counters: ScheduleCounters::default(),
        }
    }

    /// Asks for a snapshot of `symbol`. A request for a symbol already queued or in flight is
    /// served by that one (a queued one is moved up if this one is more urgent).
    pub(crate) fn handle_request(&mut self, symbol: usize, priority: Priority, now: Instant) {
        if symbol >= self.syms.len() {
            self.syms.resize(symbol + 1, IDLE);
        }
        let s = &mut self.syms[symbol];
        match s.slot {
            Slot::InFlight => {}
            Slot::Queued(p) | Slot::Delayed(p) if p <= priority => {}
            Slot::Delayed(_) => s.slot = Slot::Delayed(priority),
            Slot::Queued(p) => {
                s.slot = Slot::Queued(priority);
                let q = &mut self.queues[p as usize];
                if let Some(i) = q.iter().position(|&(x, _)| x == symbol) {
                    let entry = q.remove(i).unwrap_or((symbol, now));
                    self.queues[priority as usize].push_back(entry);
                }
            }
            Slot::Idle => match s.not_before.filter(|&t| t > now) {
                Some(until) => {
                    s.slot = Slot::Delayed(priority);
                    self.delayed.push((until, symbol));
                }
                None => {
                    s.slot = Slot::Queued(priority);
                    self.queues[priority as usize].push_back((symbol, now));
                }
            },
        }
    }

    /// The next symbol to fetch now, if any: call until `None` after every `handle_*` and when
    /// [`Scheduler::poll_timeout`] is reached. A symbol returned is in flight (its weight spent)
    /// until its [`Scheduler::handle_response`].
    #[must_use]
    pub(crate) fn poll_send(&mut self, now: Instant) -> Option<usize> {
        self.promote(now);
        if self.in_flight >= self.cfg.max_in_flight {
            return None;
        }
        let Some(&(head, _)) = self.queues.iter().find_map(|q| q.front()) else {
            self.told = None;
            return None;
        };
        if let Some(until) = self.paused_until {
            if until > now {
                return None;
            }
            self.paused_until = None;
        }
        if let Some((wait, reason)) = self.gate.wait(now, self.cfg.weight) {
            self.held_at = Some(now);
            if self.told != Some(reason) {
                self.told = Some(reason);
                self.wait = Some(Wait { symbol: head, wait, reason });
            }
            return None;
        }
        let (symbol, queued_at) = self.queues.iter_mut().find_map(|q| q.pop_front())?;
        self.syms[symbol].slot = Slot::InFlight;
        self.in_flight += 1;
        self.gate.sent(now, self.cfg.weight);
        self.counters.sent += 1;
        if self.held_at.is_some_and(|h| h >= queued_at) {
            self.counters.delayed += 1;
        }
        Some(symbol)
    }

    /// When [`Scheduler::poll_send`] may have something again, if nothing else happens first
    /// (`None`: only a `handle_*` call can change that). Valid after `poll_send` returned `None`.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut at = self.delayed.iter().map(|&(t, _)| t).min();
        let queued = self.queues.iter().any(|q| !q.is_empty());
        if queued && self.in_flight < self.cfg.max_in_flight {
            // Every blocker must have passed: the latest of them.
            let blockers = [self.gate.blocked_until(), self.paused_until, self.gate.budget_free_at(self.cfg.weight)];
            if let Some(t) = blockers.into_iter().flatten().max() {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        }
        at
    }

    /// A wait begun since the last call: once per reason while requests stay queued, so a queue
    /// of hundreds behind the budget is one line, not hundreds.
    #[must_use]
    pub(crate) fn poll_wait(&mut self) -> Option<Wait> {
        self.wait.take()
    }

    /// The answer to `symbol`'s request: `status` (`None`: no answer, a transport failure), its
    /// `Retry-After` and `X-MBX-USED-WEIGHT-1M`, at `now`. Returns how long until this symbol is
    /// asked for again when a failure delays it (`None` after a success, and after a 429/418,
    /// whose Retry-After holds every request back).
    pub(crate) fn handle_response(
        &mut self,
        symbol: usize,
        status: Option<u16>,
        retry_after: Option<Duration>,
        used_weight: Option<u32>,
        now: Instant,
    ) -> Option<Duration> {
        self.gate.on_response(now, status.unwrap_or(0), retry_after, used_weight);
        // An answer for a symbol not in flight is taken for its rate facts only.
        let s = self.syms.get_mut(symbol).filter(|s| s.slot == Slot::InFlight)?;
        s.slot = Slot::Idle;
        self.in_flight -= 1;
        match status {
            Some(200..=299) => {
                self.backoff.reset();
                s.failures = 0;
                s.not_before = None;
                None
            }
            Some(429 | 418) => None,
            None | Some(403) | Some(500..) => {
                let d = self.backoff.next_delay();
                let until = later(now, d);
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                Some(d)
            }
            Some(_) => {
                s.failures = s.failures.saturating_add(1);
                let shift = (s.failures - 1).min(16);
                let d = self.cfg.retry_min.saturating_mul(1 << shift).min(self.cfg.retry_max);
                s.not_before = Some(later(now, d));
                Some(d)
            }
        }
    }

    /// The book of `symbol` could not use the snapshot it was given (a 200 answer, but too old or
    /// malformed): its next request waits `retry_min`, doubling with each such answer in a row up
    /// to `retry_max`. Returns the wait.
    pub(crate) fn handle_unusable(&mut self, symbol: usize, now: Instant) -> Duration {
        if symbol >= self.syms.len() {
            self.syms.resize(symbol + 1, IDLE);
        }
        let s = &mut self.syms[symbol];
        s.unusable = s.unusable.saturating_add(1);
        let shift = (s.unusable - 1).min(16);
        let d = self.cfg.retry_min.saturating_mul(1 << shift).min(self.cfg.retry_max);
        let until = super::rest::later(now, d);
        s.not_before = Some(s.not_before.map_or(until, |t| t.max(until)));
        d
    }

    /// The book of `symbol` synced from its snapshot: the unusable streak ends.
    pub(crate) fn handle_usable(&mut self, symbol: usize) {
        if let Some(s) = self.syms.get_mut(symbol) {
            s.unusable = 0;
        }
    }

    /// Moves the symbols whose own failure delay has ended into their queue.
    fn promote(&mut self, now: Instant) {
        if self.delayed.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.delayed.len() {
            let (until, symbol) = self.delayed[i];
            if until > now {
                i += 1;
                continue;
            }
            self.delayed.swap_remove(i);
            let s = &mut self.syms[symbol];
            if let Slot::Delayed(p) = s.slot {
                s.slot = Slot::Queued(p);
                self.queues[p as usize].push_back((symbol, until));
            }
        }
    }

    /// Requests in flight.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Requests sent and delayed.
    pub(crate) fn counters(&self) -> ScheduleCounters {
        self.counters
    }

    /// Weight spent and 429/418 answers, exchangeInfo's included.
    pub(crate) fn totals(&self) -> RestTotals {
        self.gate.totals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// A scheduler of `symbols` requests of `weight` against a planned budget of `budget`.
    fn sched(budget: u32, weight: u32, in_flight: usize, symbols: usize) -> Scheduler {
        Scheduler::new(RestGate::new(budget), ScheduleConfig::new(weight, in_flight, 7), symbols)
    }

    /// Everything `poll_send` gives at `now`.
    fn drain(s: &mut Scheduler, now: Instant) -> Vec<usize> {
        std::iter::from_fn(|| s.poll_send(now)).collect()
    }

    #[test]
    fn the_plan_keeps_ten_percent_of_the_smaller_limit() {
        assert_eq!(planned_budget(6000, None), 5400);
        assert_eq!(planned_budget(6000, Some(6000)), 5400);
        assert_eq!(planned_budget(6000, Some(1200)), 1080, "exchangeInfo's limit wins when lower");
        assert_eq!(planned_budget(100, Some(6000)), 90, "--weight-budget wins when lower");
        assert_eq!(planned_budget(u32::MAX, Some(u32::MAX)), u32::MAX / 10 * 9 + 4);
        assert_eq!(planned_budget(1, None), 1);
    }

    #[test]
    fn auto_depth_is_the_deepest_limit_every_book_fits() {
        let min = S(60);
        let b = planned_budget(6000, Some(6000));
        let auto = |n, within| auto_depth_limit(n, b, within, 20).limit;
        assert_eq!(auto(1, min), 5000);
        assert_eq!(auto(21, min), 5000, "21 x 250 = 5250 <= 5380");
        assert_eq!(auto(22, min), 1000);
        assert_eq!(auto(50, min), 1000);
        assert_eq!(auto(107, min), 1000, "107 x 50 = 5350");
        assert_eq!(auto(108, min), 500);
        assert_eq!(auto(215, min), 500, "215 x 25 = 5375");
        assert_eq!(auto(216, min), 100);
        assert_eq!(auto(1000, min), 100, "1000 x 5 = 5000");
        assert_eq!(auto_depth_limit(1076, b, min, 20), AutoDepth { limit: 100, fits: true });
        assert_eq!(auto_depth_limit(1077, b, min, 20), AutoDepth { limit: 100, fits: false });
        // Two minutes hold two minutes' budget; less than a minute still holds one.
        assert_eq!(auto(43, S(120)), 5000, "43 x 250 = 10750 <= 10780");
        assert_eq!(auto(21, S(10)), 5000);
        assert_eq!(auto(22, Duration::ZERO), 1000);
        // A small --weight-budget.
        assert_eq!(auto_depth_limit(1, planned_budget(100, None), min, 20).limit, 1000, "90 - 20 = 70 >= 50");
    }

    #[test]
    fn the_budget_holds_requests_until_the_window_frees() {
        let t0 = Instant::now();
        let mut s = sched(planned_budget(6000, Some(6000)), 250, 64, 30);
        for i in 0..30 {
            s.handle_request(i, Priority::Initial, t0);
        }
        // 5400 / 250: 21 go at once, the 22nd waits for the first to leave the window.
        assert_eq!(drain(&mut s, t0), (0..21).collect::<Vec<_>>());
        assert_eq!(s.poll_wait(), Some(Wait { symbol: 21, wait: S(60), reason: WaitReason::Budget }));
        assert_eq!(s.poll_timeout(), Some(t0 + S(60)));
        for i in 0..21 {
            assert_eq!(s.handle_response(i, Some(200), None, None, t0 + S(1)), None);
        }
        assert_eq!(drain(&mut s, t0 + S(59)), Vec::<usize>::new());
        assert_eq!(s.poll_wait(), None, "the same wait is told once");
        assert_eq!(drain(&mut s, t0 + S(60)), (21..30).collect::<Vec<_>>());
        assert_eq!(s.counters(), ScheduleCounters { sent: 30, delayed: 9 });
        assert_eq!(s.totals().weight, 30 * 250);
    }

    #[test]
    fn the_servers_used_weight_wins_when_higher() {
        let t0 = Instant::now();
        let mut s = sched(5400, 50, 4, 3);
        s.handle_request(0, Priority::Initial, t0);
        assert_eq!(s.poll_send(t0), Some(0));
        // Another client on the IP: the server counts 5500 where we count 50.
        s.handle_response(0, Some(200), None, Some(5500), t0 + S(1));
        s.handle_request(1, Priority::Initial, t0 + S(1));
        assert_eq!(s.poll_send(t0 + S(1)), None);
        // The difference is held as spent at the answer, for a minute from then: our own request's
        // expiry at t0 + 60 is not enough.
        assert_eq!(s.poll_timeout(), Some(t0 + S(61)));
        assert_eq!(s.poll_send(t0 + S(60)), None);
        assert_eq!(s.poll_send(t0 + S(61)), Some(1));
        // A lower count than ours changes nothing.
        let mut s = sched(5400, 50, 4, 3);
        s.handle_request(0, Priority::Initial, t0);
        let _ = s.poll_send(t0);
        s.handle_response(0, Some(200), None, Some(1), t0);
        s.handle_request(1, Priority::Initial, t0);
        assert_eq!(s.poll_send(t0), Some(1));
    }

    #[test]
    fn several_in_flight_but_never_more_than_the_pool() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 10);
        for i in 0..10 {
            s.handle_request(i, Priority::Initial, t0);
        }
        assert_eq!(drain(&mut s, t0), vec![0, 1, 2, 3]);
        assert_eq!(s.in_flight(), 4);
        assert_eq!(s.poll_timeout(), None, "only an answer frees a worker");
        s.handle_response(2, Some(200), None, None, t0 + MS(30));
        assert_eq!(drain(&mut s, t0 + MS(30)), vec![4]);
        assert_eq!(s.poll_wait(), None, "a full pool is not a wait worth telling");
        assert_eq!(s.counters().delayed, 0);
    }

    #[test]
    fn never_synced_books_go_before_resyncs() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 1, 6);
        s.handle_request(0, Priority::Resync, t0);
        s.handle_request(1, Priority::Resync, t0);
        s.handle_request(2, Priority::Initial, t0 + MS(1));
        s.handle_request(3, Priority::Initial, t0 + MS(2));
        // A resync asked again as initial moves up, behind the initials already queued.
        s.handle_request(1, Priority::Initial, t0 + MS(3));
        let mut order = Vec::new();
        for i in 0..4 {
            let now = t0 + MS(10 * (i + 1));
            let sym = s.poll_send(now).unwrap();
            order.push(sym);
            s.handle_response(sym, Some(200), None, None, now);
        }
        assert_eq!(order, vec![2, 3, 1, 0]);
    }

    #[test]
    fn one_request_per_symbol_at_a_time() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 2);
        s.handle_request(0, Priority::Initial, t0);
        s.handle_request(0, Priority::Initial, t0);
        s.handle_request(0, Priority::Resync, t0);
        assert_eq!(drain(&mut s, t0), vec![0], "queued once");
        s.handle_request(0, Priority::Initial, t0);
        assert_eq!(drain(&mut s, t0), Vec::<usize>::new(), "the one in flight answers it");
        s.handle_response(0, Some(200), None, None, t0 + MS(5));
        s.handle_request(0, Priority::Resync, t0 + MS(6));
        assert_eq!(drain(&mut s, t0 + MS(6)), vec![0]);
        // An answer for a symbol not in flight is taken for its rate facts only.
        assert_eq!(s.handle_response(1, Some(500), None, None, t0 + MS(7)), None);
        assert_eq!(s.in_flight(), 1);
    }

    #[test]
    fn a_429_or_418_pauses_every_request_for_its_retry_after() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 4);
        for i in 0..2 {
            s.handle_request(i, Priority::Initial, t0);
        }
        assert_eq!(drain(&mut s, t0), vec![0, 1]);
        assert_eq!(s.handle_response(0, Some(429), Some(S(7)), Some(50), t0 + S(1)), None);
        s.handle_request(0, Priority::Initial, t0 + S(1));
        s.handle_request(2, Priority::Initial, t0 + S(1));
        assert_eq!(drain(&mut s, t0 + S(1)), Vec::<usize>::new());
        assert_eq!(s.poll_wait(), Some(Wait { symbol: 0, wait: S(7), reason: WaitReason::RetryAfter }));
        assert_eq!(s.poll_timeout(), Some(t0 + S(8)));
        // A 418 with a shorter Retry-After does not shorten the pause.
        s.handle_response(1, Some(418), Some(S(2)), None, t0 + S(2));
        assert_eq!(drain(&mut s, t0 + S(7)), Vec::<usize>::new());
        assert_eq!(drain(&mut s, t0 + S(8)), vec![0, 2]);
        assert_eq!(s.counters().delayed, 2);
        assert_eq!((s.totals().http_429, s.totals().http_418), (1, 1));
        // No Retry-After: a minute.
        s.handle_response(0, Some(429), None, None, t0 + S(10));
        s.handle_request(3, Priority::Resync, t0 + S(10));
        assert_eq!(s.poll_send(t0 + S(69)), None);
        assert_eq!(s.poll_timeout(), Some(t0 + S(70)));
        assert_eq!(s.poll_send(t0 + S(70)), Some(3));
    }

    #[test]
    fn a_retry_after_of_u64_max_seconds_waits_the_cap_without_panicking() {
        use crate::binance::rest::{parse_retry_after, MAX_RETRY_AFTER};
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 2);
        s.handle_request(0, Priority::Initial, t0);
        assert_eq!(drain(&mut s, t0), vec![0]);
        let ra = parse_retry_after("18446744073709551615");
        assert_eq!(s.handle_response(0, Some(429), ra, None, t0), None);
        // Uncapped, straight into the scheduler: it saturates too.
        s.handle_response(0, Some(418), Some(Duration::MAX), None, t0);
        s.handle_request(1, Priority::Initial, t0);
        assert_eq!(drain(&mut s, t0 + S(1)), Vec::<usize>::new());
        let w = s.poll_wait().expect("a wait is reported");
        assert_eq!(w.reason, WaitReason::RetryAfter);
        assert!(w.wait <= MAX_RETRY_AFTER, "{:?}", w.wait);
        assert_eq!(s.poll_timeout(), Some(t0 + MAX_RETRY_AFTER));
        assert_eq!(s.poll_send(t0 + MAX_RETRY_AFTER), Some(1));
    }

    #[test]
    fn transport_failures_and_5xx_back_off_for_everyone() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 3);
        s.handle_request(0, Priority::Initial, t0);
        assert_eq!(s.poll_send(t0), Some(0));
        let d1 = s.handle_response(0, None, None, None, t0 + S(1)).unwrap();
        assert!(d1 >= MS(250) && d1 <= MS(500), "{d1:?}");
        s.handle_request(0, Priority::Initial, t0 + S(1));
        s.handle_request(1, Priority::Initial, t0 + S(1));
        assert_eq!(s.poll_send(t0 + S(1)), None, "everyone waits");
        assert_eq!(s.poll_wait(), None, "the failure notice says when: no wait notice");
        assert_eq!(s.poll_timeout(), Some(t0 + S(1) + d1));
        assert_eq!(s.poll_send(t0 + S(1) + d1), Some(0));
        // The delay doubles with each failure in a row ...
        let d2 = s.handle_response(0, Some(503), None, None, t0 + S(2)).unwrap();
        assert!(d2 >= MS(500) && d2 <= S(1), "{d2:?}");
        s.handle_request(0, Priority::Initial, t0 + S(2));
        let now = t0 + S(2) + d2;
        assert_eq!(s.poll_send(now), Some(1));
        let d3 = s.handle_response(1, Some(403), None, None, now).unwrap();
        assert!(d3 >= S(1) && d3 <= S(2), "{d3:?}");
        // ... and a success starts it over.
        let now = now + d3;
        assert_eq!(s.poll_send(now), Some(0));
        assert_eq!(s.handle_response(0, Some(200), None, None, now), None);
        s.handle_request(2, Priority::Initial, now);
        assert_eq!(s.poll_send(now), Some(2));
        let d = s.handle_response(2, None, None, None, now).unwrap();
        assert!(d <= MS(500), "{d:?}");
    }

    #[test]
    fn other_failed_statuses_delay_only_their_symbol() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 3);
        s.handle_request(0, Priority::Initial, t0);
        assert_eq!(s.poll_send(t0), Some(0));
        assert_eq!(s.handle_response(0, Some(400), None, None, t0), Some(MS(500)));
        s.handle_request(0, Priority::Initial, t0);
        s.handle_request(1, Priority::Initial, t0);
        assert_eq!(drain(&mut s, t0), vec![1], "the others go on");
        assert_eq!(s.poll_timeout(), Some(t0 + MS(500)));
        assert_eq!(drain(&mut s, t0 + MS(499)), Vec::<usize>::new());
        assert_eq!(drain(&mut s, t0 + MS(500)), vec![0]);
        // Its own delay doubles, up to the cap.
        assert_eq!(s.handle_response(0, Some(404), None, None, t0 + S(1)), Some(S(1)));
        for _ in 0..10 {
            s.handle_request(0, Priority::Initial, t0 + S(1));
            let at = s.poll_timeout().unwrap();
            assert_eq!(s.poll_send(at), Some(0));
            s.handle_response(0, Some(400), None, None, t0 + S(1));
        }
        s.handle_request(0, Priority::Initial, t0 + S(1));
        assert_eq!(s.poll_timeout(), Some(t0 + S(31)));
        // A success clears it.
        assert_eq!(s.poll_send(t0 + S(31)), Some(0));
        s.handle_response(0, Some(200), None, None, t0 + S(31));
        s.handle_request(0, Priority::Initial, t0 + S(31));
        assert_eq!(s.poll_send(t0 + S(31)), Some(0));
    }

    #[test]
    fn a_snapshot_that_keeps_being_unusable_is_asked_for_less_and_less_often() {
        let t0 = Instant::now();
        let mut s = sched(5400, 5, 4, 3);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            s.handle_request(0, Priority::Resync, now);
            let at = s.poll_timeout().unwrap_or(now).max(now);
            assert_eq!(s.poll_send(at), Some(0));
            // A 200 answer, but too old for the book's buffer.
            assert_eq!(s.handle_response(0, Some(200), None, None, at), None);
            waits.push(s.handle_unusable(0, at));
            now = at;
        }
        assert_eq!(waits[..4], [MS(500), S(1), S(2), S(4)]);
        assert_eq!(*waits.last().unwrap(), S(30), "capped at retry_max");
        // Requested again at once, it waits out the delay; another symbol does not.
        s.handle_request(0, Priority::Resync, now);
        s.handle_request(1, Priority::Resync, now);
        assert_eq!(drain(&mut s, now), vec![1]);
        assert_eq!(s.poll_timeout(), Some(now + S(30)));
        // A snapshot the book could use ends the streak.
        assert_eq!(s.poll_send(now + S(30)), Some(0));
        s.handle_response(0, Some(200), None, None, now + S(30));
        s.handle_usable(0);
        assert_eq!(s.handle_unusable(0, now + S(30)), MS(500));
    }

    #[test]
    fn a_wait_is_told_once_per_reason_while_requests_stay_queued() {
        let t0 = Instant::now();
        let mut s = sched(100, 50, 4, 5);
        for i in 0..5 {
            s.handle_request(i, Priority::Initial, t0);
        }
        assert_eq!(drain(&mut s, t0), vec![0, 1]);
        assert_eq!(s.poll_wait().map(|w| w.reason), Some(WaitReason::Budget));
        for i in 0..2 {
            s.handle_response(i, Some(200), None, None, t0);
        }
        assert_eq!(drain(&mut s, t0 + S(60)), vec![2, 3]);
        assert_eq!(s.poll_wait(), None, "still the same wait");
        s.handle_response(2, Some(429), Some(S(5)), None, t0 + S(61));
        assert_eq!(drain(&mut s, t0 + S(61)), Vec::<usize>::new());
        assert_eq!(s.poll_wait().map(|w| (w.symbol, w.reason)), Some((4, WaitReason::RetryAfter)));
        s.handle_response(3, Some(200), None, None, t0 + S(61));
        assert_eq!(drain(&mut s, t0 + S(120)), vec![4]);
        assert_eq!(drain(&mut s, t0 + S(120)), Vec::<usize>::new());
        // The queue emptied: the next wait is told again.
        s.handle_response(4, Some(200), None, None, t0 + S(120));
        s.handle_request(0, Priority::Resync, t0 + S(120));
        s.handle_request(1, Priority::Resync, t0 + S(120));
        let _ = drain(&mut s, t0 + S(120));
        assert!(s.poll_wait().is_some());
    }

    #[test]
    fn exchange_info_spent_before_counts_against_the_first_minute() {
        let t0 = Instant::now();
        let mut gate = RestGate::new(6000);
        gate.sent(t0, 20);
        gate.set_limit(planned_budget(6000, Some(6000)));
        let mut s = Scheduler::new(gate, ScheduleConfig::new(250, 64, 1), 22);
        for i in 0..22 {
            s.handle_request(i, Priority::Initial, t0);
        }
        // 5400 - 20 = 5380: still 21 of 250.
        assert_eq!(drain(&mut s, t0).len(), 21);
        assert_eq!(s.totals().weight, 20 + 21 * 250);
        let mut gate = RestGate::new(5400);
        gate.sent(t0, 160);
        let mut s = Scheduler::new(gate, ScheduleConfig::new(250, 64, 1), 22);
        for i in 0..22 {
            s.handle_request(i, Priority::Initial, t0);
        }
        assert_eq!(drain(&mut s, t0).len(), 20, "5400 - 160 = 5240: 20 of 250");
    }
}

#[cfg(test)]
mod venue_tests {
    use super::*;
    use crate::venue::Venue;

    #[test]
    fn futures_auto_depth_uses_futures_limits_and_weights() {
        let min = Duration::from_secs(60);
        let b = planned_budget(2400, Some(2400));
        assert_eq!(b, 2160);
        // 2160 - 1 (exchangeInfo) = 2159: 107 books at 20, 215 at 10, 431 at 5, then 50s at 2.
        let auto = |n| auto_depth_limit_for(Venue::UsdM, n, b, min, 1);
        assert_eq!(auto(107), AutoDepth { limit: 1000, fits: true });
        assert_eq!(auto(108), AutoDepth { limit: 500, fits: true });
        assert_eq!(auto(215), AutoDepth { limit: 500, fits: true });
        assert_eq!(auto(216), AutoDepth { limit: 100, fits: true });
        assert_eq!(auto(432), AutoDepth { limit: 50, fits: true });
        assert_eq!(auto(1080), AutoDepth { limit: 50, fits: false });
        assert_eq!(auto_depth_limit_for(Venue::Spot, 5, 5400, min, 20), auto_depth_limit(5, 5400, min, 20));
    }
}
