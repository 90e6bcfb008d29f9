//! The connection supervisor: every decision about connections, as a sans-IO state machine.
//!
//! Shaped like quinn-proto: the driver feeds what happened through `handle_*(.., now)` and carries
//! out what the supervisor wants through [`Supervisor::poll_action`]; [`Supervisor::poll_timeout`]
//! says when it next needs [`Supervisor::handle_timeout`]. It owns: when to open a connection (at
//! start, after a loss with jittered backoff, before `--max-conn-age`, on `serverShutdown`), the
//! connect-and-upgrade timeout, the stale-stream watchdog, make-before-break (open a standby, switch
//! once it has caught up or after `--switch-timeout`, close the old one), and Binance's law of 300
//! connection attempts per 5 minutes per IP, which it never breaks whatever the server does.
//!
//! It does not touch a socket, read a clock or look at a frame: the driver moves bytes, words what
//! a socket did (`Loss::what`), and tells whether a standby has caught up with the active
//! connection (it needs the books and the held frames for that).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::net::backoff::Backoff;

/// A connection, named by the supervisor (1, 2, ...: also its serial in log lines).
pub(crate) type ConnId = u64;

/// Binance's connection-attempt law: this many per window per IP.
pub(crate) const ATTEMPTS_PER_WINDOW: usize = 300;
/// The window of that law.
pub(crate) const ATTEMPT_WINDOW: Duration = Duration::from_secs(300);
/// A connection that stayed up this long resets the reconnect backoff.
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// What the supervisor is configured with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SupervisorConfig {
    /// Connect + TLS + upgrade must finish within this (DNS included).
    pub(crate) connect_timeout: Duration,
    /// No text frame for this long on the active connection: drop it. Zero disables.
    pub(crate) stale: Duration,
    /// Open a standby once the active connection is this old.
    pub(crate) max_conn_age: Duration,
    /// Longest overlap: switch even if the standby has not caught up.
    pub(crate) switch_timeout: Duration,
    /// First reconnect delay.
    pub(crate) backoff_min: Duration,
    /// Longest reconnect delay.
    pub(crate) backoff_max: Duration,
    /// Connection attempts allowed per [`ATTEMPT_WINDOW`] (Binance: 300).
    pub(crate) attempts_per_window: usize,
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Feeds the books.
    Active,
    /// The make-before-break replacement: its frames are held until it has caught up.
    Standby,
}

/// What the driver is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Resolve, connect and upgrade a new connection `id` (its role: [`Supervisor::role`]). Its
    /// end is reported with [`Supervisor::handle_opened`] or [`Supervisor::handle_lost`].
    Open(ConnId),
    /// Close connection `id` (with a close frame when `graceful`, else drop the socket) and forget
    /// it: the supervisor already has. Not followed by a `handle_lost` for it.
    Close {
        /// The connection.
        id: ConnId,
        /// A close frame first (a planned switch), or just the socket (a dead connection).
        graceful: bool,
    },
    /// The standby `to` becomes the active connection: feed the frames it held back, then
    /// report any `serverShutdown` among them with [`Supervisor::handle_server_shutdown`].
    Switch {
        /// The new active connection.
        to: ConnId,
    },
    /// Forget the frames held for a standby that is gone or became active before it opened.
    DropHeld,
    /// The books cannot be continued: every one resyncs from its next diff and a snapshot.
    ResetBooks,
    /// A line for a person (connection events and the decision taken).
    Tell(String),
}

/// How a connection ended, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loss {
    /// What happened, worded for a person (`connection #3 to host:443: server sent close 1001`).
    pub(crate) what: String,
    /// The server closed it in order (a close frame): shut the socket down rather than abort it.
    pub(crate) graceful: bool,
    /// Wait at least this long before the next attempt (a 429/418 refusal's Retry-After).
    pub(crate) retry_floor: Duration,
}

/// What the supervisor counted, for `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SupervisorCounters {
    /// Connections that completed the upgrade.
    pub(crate) connections: u64,
    /// Connection attempts (Open actions).
    pub(crate) attempts: u64,
    /// Attempts that failed before the upgrade.
    pub(crate) connect_failures: u64,
    /// Make-before-break switches.
    pub(crate) switches: u64,
    /// Connections dropped for silence (`--stale-secs`).
    pub(crate) stale_reconnects: u64,
    /// Opens delayed by the 300-per-5-minutes law.
    pub(crate) attempts_delayed: u64,
    /// `serverShutdown` notices ignored: a second one on a connection already being replaced.
    pub(crate) shutdowns_ignored: u64,
    /// Switches made at once because the standby's held frames reached their bound.
    pub(crate) held_overflows: u64,
}

/// Why a standby is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    MaxAge,
    ServerShutdown,
}

#[derive(Debug, Clone)]
struct Conn {
    id: ConnId,
    role: Role,
    /// When its Open was asked for.
    started: Instant,
    /// When its upgrade completed.
    opened: Option<Instant>,
    /// Last text frame.
    last_data: Instant,
    /// A market frame arrived.
    data_seen: bool,
}

/// The supervisor of one feed's connections (one shard: an active connection, at most one standby).
#[derive(Debug)]
pub(crate) struct Supervisor {
    cfg: SupervisorConfig,
    conns: Vec<Conn>,
    /// When to open the next connection (the active one when there is none, else a standby).
    open_at: Option<Instant>,
    replace: Option<Replace>,
    /// The standby has caught up with the active connection (the driver's judgement).
    caught_up: bool,
    backoff: Backoff,
    /// Times of the attempts in the last [`ATTEMPT_WINDOW`].
    attempts: VecDeque<Instant>,
    next_id: ConnId,
    actions: VecDeque<Action>,
    counters: SupervisorCounters,
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Supervisor {
    /// A supervisor that opens its first connection at `now`.
    pub(crate) fn new(cfg: SupervisorConfig, now: Instant, seed: u64) -> Supervisor {
        Supervisor {
            cfg,
            conns: Vec::with_capacity(2),
            open_at: Some(now),
            replace: None,
            caught_up: false,
            backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max, seed),
            attempts: VecDeque::with_capacity(cfg.attempts_per_window + 1),
            next_id: 1,
            actions: VecDeque::new(),
            counters: SupervisorCounters::default(),
        }
    }

    /// The next thing to do, if any. Call until `None` after every `handle_*`.
    #[must_use]
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Supervisor::handle_timeout`] must next be called (`None`: only after an input).
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.open_at.map(|o| o.max(self.attempt_allowed_at(o)));
        let mut at = |d: Option<Instant>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |t| t.min(d)));
            }
        };
        for c in &self.conns {
            match c.opened {
                None => at(Some(c.started + self.cfg.connect_timeout)),
                Some(o) => match c.role {
                    Role::Active => {
                        if !self.cfg.stale.is_zero() {
                            at(Some(c.last_data + self.cfg.stale));
                        }
                        if self.replace.is_none() {
                            at(Some(o + self.cfg.max_conn_age));
                        }
                    }
                    Role::Standby => at(Some(o + self.cfg.switch_timeout)),
                },
            }
        }
        t
    }

    /// The role of connection `id`, if the supervisor still has it.
    pub(crate) fn role(&self, id: ConnId) -> Option<Role> {
        self.conns.iter().find(|c| c.id == id).map(|c| c.role)
    }

    /// The active connection, if any.
    pub(crate) fn active(&self) -> Option<ConnId> {
        self.conns.iter().find(|c| c.role == Role::Active).map(|c| c.id)
    }

    /// What was counted so far.
    pub(crate) fn counters(&self) -> SupervisorCounters {
        self.counters
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn standby(&self) -> Option<&Conn> {
        self.conns.iter().find(|c| c.role == Role::Standby)
    }

    fn tell(&mut self, text: String) {
        self.actions.push_back(Action::Tell(text));
    }

    /// Connection `id` completed its upgrade; `where_` names its peer for the log.
    pub(crate) fn handle_opened(&mut self, id: ConnId, where_: &str, now: Instant) {
        let active = self.active();
        let Some(c) = self.conn_mut(id) else { return };
        c.opened = Some(now);
        c.last_data = now;
        let role = c.role;
        self.counters.connections += 1;
        match role {
            Role::Active => self.tell(format!("connected #{id} {where_}")),
            Role::Standby => self.tell(format!(
                "connected #{id} {where_} alongside #{}: switching once it is in flow",
                active.unwrap_or(0)
            )),
        }
    }

    /// Text frames arrived on `id` at `now`; `market`: at least one was a market event.
    pub(crate) fn handle_data(&mut self, id: ConnId, market: bool, now: Instant) {
        if let Some(c) = self.conn_mut(id) {
            c.last_data = now;
            c.data_seen |= market;
        }
    }

    /// The driver's judgement of the standby: it has caught up with the active connection (every
    /// stream it held back is now contiguous with what the active one delivered).
    pub(crate) fn handle_caught_up(&mut self, caught_up: bool, now: Instant) {
        self.caught_up = caught_up;
        self.maybe_switch(now);
    }

    /// The frames held for standby `id` reached their bound (`bytes`): switch to it now, as at
    /// `--switch-timeout`, rather than hold more. Nothing if `id` is not an open standby.
    pub(crate) fn handle_held_full(&mut self, id: ConnId, bytes: usize) {
        if self.standby().is_some_and(|s| s.id == id && s.opened.is_some()) {
            self.counters.held_overflows += 1;
            self.switch(&format!("held-back frames reached {} MiB", bytes >> 20));
        }
    }

    /// `serverShutdown` arrived on `id`: that connection is about to be closed by the server.
    pub(crate) fn handle_server_shutdown(&mut self, id: ConnId, now: Instant) {
        if self.role(id) != Some(Role::Active) {
            return;
        }
        if self.replace.is_some() || self.standby().is_some() {
            // A replacement is already under way: a repeat (or a flood) changes nothing.
            self.counters.shutdowns_ignored += 1;
            return;
        }
        self.replace = Some(Replace::ServerShutdown);
        let young =
            self.conns.iter().find(|c| c.id == id).and_then(|c| c.opened).is_none_or(|o| now - o < HEALTHY_AFTER);
        // A server that announces shutdown right after every connect gets backoff, not a storm.
        let d = if young { self.backoff.next_delay() } else { Duration::ZERO };
        self.open_at = Some(crate::binance::rest::later(now, d));
        if d.is_zero() {
            self.tell(format!("serverShutdown on connection #{id}: opening a new one before closing it"));
        } else {
            self.tell(format!(
                "serverShutdown on connection #{id} (up less than {}): opening a new one in {}",
                secs(HEALTHY_AFTER),
                secs(d)
            ));
        }
        self.maybe_open(now);
    }

    /// Connection `id` ended (it failed to connect, the server closed it, a socket or protocol
    /// error). Not called for a connection the supervisor closed itself ([`Action::Close`]).
    pub(crate) fn handle_lost(&mut self, id: ConnId, loss: Loss, now: Instant) {
        let Some(pos) = self.conns.iter().position(|c| c.id == id) else { return };
        let c = self.conns.remove(pos);
        self.lost(c, loss, now);
        self.maybe_open(now);
    }

    /// Runs the timers due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        // Connections that do not get through DNS + connect + TLS + upgrade in time.
        let limit = self.cfg.connect_timeout;
        let late: Vec<ConnId> =
            self.conns.iter().filter(|c| c.opened.is_none() && now - c.started >= limit).map(|c| c.id).collect();
        for id in late {
            self.abort(id, format!("connection #{id}: not connected and upgraded after {}", secs(limit)), now);
        }
        // A silent active connection.
        let stale = self.cfg.stale;
        let silent = self
            .conns
            .iter()
            .find(|c| c.role == Role::Active && c.opened.is_some() && !stale.is_zero() && now - c.last_data >= stale)
            .map(|c| (c.id, now - c.last_data));
        if let Some((id, d)) = silent {
            self.counters.stale_reconnects += 1;
            self.abort(id, format!("connection #{id}: no data for {} (--stale-secs)", secs(d)), now);
        }
        // The 24-hour rule: start a replacement before the old one is cut.
        let old = self
            .conns
            .iter()
            .find(|c| c.role == Role::Active && c.opened.is_some_and(|o| now - o >= self.cfg.max_conn_age))
            .map(|c| c.id);
        if let (Some(id), None, None) = (old, self.replace, self.standby()) {
            if self.open_at.is_none() {
                self.replace = Some(Replace::MaxAge);
                self.open_at = Some(now);
                self.tell(format!(
                    "connection #{id} reached --max-conn-age {}: opening a new one before closing it",
                    secs(self.cfg.max_conn_age)
                ));
            }
        }
        self.maybe_switch(now);
        self.maybe_open(now);
    }

    /// Switch once the standby is in flow and has caught up, or its overlap is too long.
    fn maybe_switch(&mut self, now: Instant) {
        let Some(s) = self.standby() else { return };
        let Some(opened) = s.opened else { return };
        let why = if s.data_seen && self.caught_up {
            "the old connection caught up with it"
        } else if now - opened >= self.cfg.switch_timeout {
            "switch timeout"
        } else {
            return;
        };
        self.switch(why);
    }

    fn switch(&mut self, why: &str) {
        let Some(pos) = self.conns.iter().position(|c| c.role == Role::Standby) else { return };
        let to = self.conns[pos].id;
        let old = self.conns.iter().position(|c| c.role == Role::Active).map(|i| self.conns.remove(i).id);
        if let Some(c) = self.conn_mut(to) {
            c.role = Role::Active;
        }
        self.counters.switches += 1;
        self.replace = None;
        self.caught_up = false;
        self.actions.push_back(Action::Switch { to });
        match old {
            Some(o) => {
                self.actions.push_back(Action::Close { id: o, graceful: true });
                self.tell(format!("switched #{o} -> #{to} ({why}), closed #{o}"));
            }
            None => self.tell(format!("switched to #{to} ({why})")),
        }
    }

    /// Opens the connection that is due, within the attempt law.
    fn maybe_open(&mut self, now: Instant) {
        let Some(at) = self.open_at else { return };
        if now < at {
            return;
        }
        let has_active = self.active().is_some();
        // A standby is opened only when a replacement is wanted and none exists yet.
        if has_active && (self.standby().is_some() || self.replace.is_none()) {
            self.open_at = None;
            return;
        }
        // The law: an attempt waits until it would be at most the 300th in its 5 minutes.
        let allowed = self.attempt_allowed_at(at);
        if now < allowed {
            return;
        }
        if allowed > at {
            self.counters.attempts_delayed += 1;
        }
        while self.attempts.front().is_some_and(|&t| now - t >= ATTEMPT_WINDOW) {
            self.attempts.pop_front();
        }
        self.open_at = None;
        self.attempts.push_back(now);
        let id = self.next_id;
        self.next_id += 1;
        let role = if has_active { Role::Standby } else { Role::Active };
        self.conns.push(Conn { id, role, started: now, opened: None, last_data: now, data_seen: false });
        self.counters.attempts += 1;
        if role == Role::Standby {
            self.caught_up = false;
        }
        self.actions.push_back(Action::Open(id));
    }

    /// The earliest time at or after `t` when one more attempt keeps within the law.
    fn attempt_allowed_at(&self, t: Instant) -> Instant {
        let n = self.attempts.iter().filter(|&&a| t.saturating_duration_since(a) < ATTEMPT_WINDOW).count();
        if n < self.cfg.attempts_per_window {
            return t;
        }
        // The attempt that must leave the window first.
        let k = n - self.cfg.attempts_per_window;
        let in_window: Vec<Instant> =
            self.attempts.iter().copied().filter(|&a| t.saturating_duration_since(a) < ATTEMPT_WINDOW).collect();
        in_window[k] + ATTEMPT_WINDOW
    }

    /// The supervisor gives up on `id` itself (a timeout): the driver drops the socket.
    fn abort(&mut self, id: ConnId, what: String, now: Instant) {
        let Some(pos) = self.conns.iter().position(|c| c.id == id) else { return };
        let c = self.conns.remove(pos);
        self.actions.push_back(Action::Close { id, graceful: false });
        self.lost(c, Loss { what, graceful: false, retry_floor: Duration::ZERO }, now);
    }

    fn lost(&mut self, c: Conn, loss: Loss, now: Instant) {
        if c.opened.is_some_and(|o| now - o >= HEALTHY_AFTER) {
            self.backoff.reset();
        }
        if c.opened.is_none() {
            self.counters.connect_failures += 1;
        }
        let what = loss.what;
        let delay = |s: &mut Supervisor| s.backoff.next_delay().max(loss.retry_floor);
        match c.role {
            Role::Active => {
                // A planned replacement (serverShutdown, --max-conn-age) of a connection that was
                // live: the books are kept, and the sync engine's own check on the next
                // connection's first diff (`U <= id + 1`, else a gap and a resync) decides
                // whether anything was missed in between, as the Binance docs allow.
                let planned = c.opened.is_some() && self.replace.take().is_some();
                let standby = self.standby().map(|s| (s.id, s.opened.is_some()));
                match standby {
                    Some((_, true)) => {
                        self.tell(what);
                        // The standby takes over at once (there is no active connection any more).
                        self.switch("the old connection ended");
                    }
                    Some((sid, false)) => {
                        if let Some(s) = self.conn_mut(sid) {
                            s.role = Role::Active;
                        }
                        self.actions.push_back(Action::DropHeld);
                        self.tell(format!(
                            "{what}; continuing with #{sid} (connecting): books continue if its first diffs are \
                             contiguous, else resync"
                        ));
                    }
                    None if planned => {
                        self.open_at = Some(now.max(self.open_at.unwrap_or(now)));
                        self.tell(format!(
                            "{what}; reconnecting now: books continue if the new connection's first diffs are \
                             contiguous, else resync"
                        ));
                    }
                    None => {
                        self.actions.push_back(Action::ResetBooks);
                        let d = delay(self);
                        self.open_at = Some(crate::binance::rest::later(now, d));
                        if c.opened.is_some() {
                            self.tell(format!("{what}; reconnecting in {}{BOOKS_RESYNC}", secs(d)));
                        } else {
                            self.tell(format!("{what}; retrying in {}", secs(d)));
                        }
                    }
                }
            }
            Role::Standby => {
                self.actions.push_back(Action::DropHeld);
                self.caught_up = false;
                let d = delay(self);
                self.open_at = Some(crate::binance::rest::later(now, d));
                self.tell(format!("{what}; new connection retried in {}", secs(d)));
            }
        }
    }
}

/// How a lost connection's log line ends when its books resync (the loop rewords it when another
/// connection of the shard keeps them).
pub(crate) const BOOKS_RESYNC: &str = " (books resync)";

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SupervisorConfig {
        SupervisorConfig {
            connect_timeout: Duration::from_secs(10),
            stale: Duration::from_secs(30),
            max_conn_age: Duration::from_secs(3600),
            switch_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            attempts_per_window: ATTEMPTS_PER_WINDOW,
        }
    }

    /// Without the stale watchdog, for tests about something else that let time pass silently.
    fn quiet_cfg() -> SupervisorConfig {
        SupervisorConfig { stale: Duration::ZERO, ..cfg() }
    }

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    /// A fake-clock harness: drives a supervisor and keeps what it asked for.
    struct Harness {
        sup: Supervisor,
        now: Instant,
        opened: Vec<ConnId>,
        open_times: Vec<Instant>,
        closed: Vec<(ConnId, bool)>,
        switches: Vec<ConnId>,
        resets: usize,
        dropped_held: usize,
        told: Vec<String>,
    }

    impl Harness {
        fn new(cfg: SupervisorConfig) -> Harness {
            let now = Instant::now();
            let mut h = Harness {
                sup: Supervisor::new(cfg, now, 7),
                now,
                opened: vec![],
                open_times: vec![],
                closed: vec![],
                switches: vec![],
                resets: 0,
                dropped_held: 0,
                told: vec![],
            };
            h.tick();
            h
        }

        fn drain(&mut self) {
            while let Some(a) = self.sup.poll_action() {
                match a {
                    Action::Open(id) => {
                        self.opened.push(id);
                        self.open_times.push(self.now);
                    }
                    Action::Close { id, graceful } => self.closed.push((id, graceful)),
                    Action::Switch { to } => self.switches.push(to),
                    Action::DropHeld => self.dropped_held += 1,
                    Action::ResetBooks => self.resets += 1,
                    Action::Tell(t) => self.told.push(t),
                }
            }
        }

        /// Runs the timers now.
        fn tick(&mut self) {
            self.sup.handle_timeout(self.now);
            self.drain();
        }

        /// Advances the clock to `t`, firing every timer due on the way.
        fn advance(&mut self, d: Duration) {
            let end = self.now + d;
            while let Some(t) = self.sup.poll_timeout().filter(|&t| t <= end) {
                self.now = t.max(self.now);
                self.tick();
            }
            self.now = end;
            self.tick();
        }

        fn open(&mut self, id: ConnId) {
            self.sup.handle_opened(id, "ws://127.0.0.1:1", self.now);
            self.drain();
        }

        fn data(&mut self, id: ConnId) {
            self.sup.handle_data(id, true, self.now);
            self.drain();
        }

        fn lose(&mut self, id: ConnId, what: &str) {
            self.sup.handle_lost(
                id,
                Loss { what: what.into(), graceful: false, retry_floor: Duration::ZERO },
                self.now,
            );
            self.drain();
        }

        fn last_told(&self) -> &str {
            self.told.last().map_or("", String::as_str)
        }
    }

    #[test]
    fn opens_at_start_and_reconnects_with_growing_jittered_backoff() {
        let mut h = Harness::new(cfg());
        assert_eq!(h.opened, [1]);
        assert_eq!(h.sup.role(1), Some(Role::Active));
        // Refused three times: each retry waits longer (equal jitter: at least half the step).
        let mut waits = vec![];
        for id in 1..=3 {
            h.lose(id, &format!("connect #{id} failed: refused"));
            assert!(h.last_told().contains("retrying in"), "{}", h.last_told());
            let due = h.sup.poll_timeout().unwrap();
            waits.push(due - h.now);
            h.advance(due - h.now);
            assert_eq!(h.opened.len() as u64, id + 1);
        }
        assert!(waits[0] >= 50 * MS && waits[0] <= 100 * MS, "{waits:?}");
        assert!(waits[1] >= 100 * MS && waits[2] >= 200 * MS, "{waits:?}");
        assert_eq!(h.sup.counters().connect_failures, 3);
        assert_eq!(h.resets, 3, "an unplanned loss resyncs the books");
    }

    #[test]
    fn connect_timeout_aborts_and_retries() {
        let mut h = Harness::new(cfg());
        h.advance(10 * S);
        assert_eq!(h.closed, [(1, false)]);
        assert!(h.told[0].contains("not connected and upgraded after 10.0s"), "{:?}", h.told);
        h.advance(S);
        assert_eq!(h.opened, [1, 2]);
    }

    #[test]
    fn a_silent_stream_is_dropped_and_replaced() {
        let mut h = Harness::new(cfg());
        h.open(1);
        h.advance(20 * S);
        h.data(1);
        h.advance(29 * S);
        assert!(h.closed.is_empty(), "data 29 s ago is not stale");
        h.advance(S);
        assert_eq!(h.closed, [(1, false)]);
        assert!(h.told.iter().any(|t| t.contains("no data for 30.0s (--stale-secs)")), "{:?}", h.told);
        assert_eq!(h.sup.counters().stale_reconnects, 1);
        h.advance(S);
        assert_eq!(h.opened, [1, 2]);
    }

    #[test]
    fn server_shutdown_makes_before_it_breaks() {
        let mut h = Harness::new(quiet_cfg());
        h.open(1);
        h.advance(60 * S);
        h.data(1);
        h.sup.handle_server_shutdown(1, h.now);
        h.drain();
        assert_eq!(h.opened, [1, 2], "a healthy connection's replacement opens at once");
        assert_eq!(h.sup.role(2), Some(Role::Standby));
        // Repeats change nothing.
        h.sup.handle_server_shutdown(1, h.now);
        assert_eq!(h.sup.counters().shutdowns_ignored, 1);
        h.open(2);
        h.data(2);
        h.sup.handle_caught_up(false, h.now);
        h.drain();
        assert!(h.switches.is_empty(), "not caught up yet");
        h.advance(2 * S);
        h.data(1);
        h.sup.handle_caught_up(true, h.now);
        h.drain();
        assert_eq!(h.switches, [2]);
        assert_eq!(h.closed, [(1, true)], "the old connection is closed in order");
        assert_eq!(h.sup.active(), Some(2));
        assert_eq!(h.resets, 0, "no resync");
        assert!(h.last_told().contains("switched #1 -> #2 (the old connection caught up with it)"), "{:?}", h.told);
    }

    #[test]
    fn switch_timeout_switches_anyway() {
        let mut h = Harness::new(quiet_cfg());
        h.open(1);
        h.advance(3600 * S);
        assert_eq!(h.opened, [1, 2], "--max-conn-age opens a standby");
        assert!(h.told.iter().any(|t| t.contains("reached --max-conn-age 3600.0s")), "{:?}", h.told);
        h.open(2);
        h.advance(10 * S);
        assert_eq!(h.switches, [2]);
        assert!(h.last_told().contains("(switch timeout)"), "{:?}", h.told);
    }

    #[test]
    fn held_frames_at_their_bound_switch_at_once() {
        let mut h = Harness::new(quiet_cfg());
        h.open(1);
        h.advance(3600 * S);
        assert_eq!(h.opened, [1, 2]);
        // Not open yet, or not the standby: nothing.
        h.sup.handle_held_full(2, 64 << 20);
        h.sup.handle_held_full(1, 64 << 20);
        h.drain();
        assert!(h.switches.is_empty());
        h.open(2);
        h.data(2);
        h.advance(S);
        assert!(h.switches.is_empty(), "not caught up, well before the timeout");
        h.sup.handle_held_full(2, 64 << 20);
        h.drain();
        assert_eq!(h.switches, [2], "the switch happens at once");
        assert_eq!(h.closed, [(1, true)]);
        assert_eq!(h.sup.counters().held_overflows, 1);
        assert!(h.last_told().contains("(held-back frames reached 64 MiB)"), "{:?}", h.told);
        // Once switched there is no standby: a late report changes nothing.
        h.sup.handle_held_full(2, 64 << 20);
        assert_eq!(h.sup.counters().held_overflows, 1);
    }

    #[test]
    fn the_old_connection_ending_first_hands_over_without_a_resync() {
        // Standby open: it takes over at once.
        let mut h = Harness::new(quiet_cfg());
        h.open(1);
        h.advance(60 * S);
        h.sup.handle_server_shutdown(1, h.now);
        h.drain();
        h.open(2);
        h.lose(1, "connection #1: server sent close 1001");
        assert_eq!(h.switches, [2]);
        assert_eq!((h.resets, h.sup.active()), (0, Some(2)));
        // Standby still connecting: it becomes the active one, its held frames are dropped.
        let mut h = Harness::new(quiet_cfg());
        h.open(1);
        h.advance(60 * S);
        h.sup.handle_server_shutdown(1, h.now);
        h.drain();
        h.lose(1, "connection #1: server closed the connection");
        assert_eq!((h.sup.role(2), h.dropped_held, h.resets), (Some(Role::Active), 1, 0));
        assert!(h.last_told().contains("continuing with #2 (connecting)"), "{}", h.last_told());
    }

    #[test]
    fn a_lost_standby_is_retried_with_backoff_and_the_active_one_goes_on() {
        let mut h = Harness::new(quiet_cfg());
        h.open(1);
        h.advance(3600 * S);
        h.lose(2, "connect #2 failed: refused");
        assert_eq!((h.dropped_held, h.resets, h.sup.active()), (1, 0, Some(1)));
        assert!(h.last_told().contains("new connection retried in"), "{}", h.last_told());
        let due = h.sup.poll_timeout().unwrap();
        h.advance(due - h.now);
        assert_eq!(h.opened, [1, 2, 3]);
        assert_eq!(h.sup.role(3), Some(Role::Standby));
    }

    #[test]
    fn a_rate_limited_refusal_waits_its_retry_after() {
        let mut h = Harness::new(cfg());
        h.sup.handle_lost(
            1,
            Loss { what: "handshake refused: HTTP 429".into(), graceful: false, retry_floor: 120 * S },
            h.now,
        );
        h.drain();
        assert_eq!(h.sup.poll_timeout(), Some(h.now + 120 * S));
        h.advance(119 * S);
        assert_eq!(h.opened, [1]);
        h.advance(S);
        assert_eq!(h.opened, [1, 2]);
    }

    #[test]
    fn a_server_that_shuts_down_every_connection_at_once_gets_backoff_not_a_storm() {
        let mut h = Harness::new(cfg());
        let start = h.now;
        // Every connection opens, is told serverShutdown at once, and is closed 10 ms later.
        for _ in 0..1000 {
            let id = *h.opened.last().unwrap();
            if h.sup.role(id).is_some() {
                h.open(id);
                h.sup.handle_server_shutdown(id, h.now);
                h.drain();
                h.advance(10 * MS);
                h.lose(id, "server sent close 1001");
            }
            let Some(due) = h.sup.poll_timeout() else { break };
            h.advance(due.saturating_duration_since(h.now));
            if h.now - start > 60 * S {
                break;
            }
        }
        let in_10s = h.opened.len();
        // Backoff doubles from 100 ms to 30 s: a handful of attempts in the first 10 s of a minute,
        // never the storm of dozens (before the supervisor: 48 in 10 s).
        assert!(in_10s <= 20, "{in_10s} connections in {:?}", h.now - start);
    }

    #[test]
    fn never_more_than_300_attempts_in_any_5_minutes_whatever_the_server_does() {
        let mut c = cfg();
        c.backoff_min = MS;
        c.backoff_max = MS; // an adversarially eager backoff: only the law holds attempts back
        let mut h = Harness::new(c);
        let start = h.now;
        while h.now - start < 20 * 60 * S {
            let id = *h.opened.last().unwrap();
            if h.sup.role(id).is_some() {
                h.lose(id, "refused");
            }
            let due = h.sup.poll_timeout().unwrap();
            h.advance(due.saturating_duration_since(h.now).max(MS));
        }
        // Every sliding 5-minute window holds at most 300 attempts.
        let t = &h.open_times;
        for (i, &a) in t.iter().enumerate() {
            let in_window = t[i..].iter().take_while(|&&b| b - a < ATTEMPT_WINDOW).count();
            assert!(in_window <= ATTEMPTS_PER_WINDOW, "{in_window} attempts within 5 minutes of attempt {i}");
        }
        assert!(h.sup.counters().attempts_delayed > 0, "the law did hold attempts back");
        let total = h.sup.counters().attempts;
        assert!((1150..=1210).contains(&total), "{total} attempts in 20 minutes: 300 per 5 minutes at most");
    }
}
