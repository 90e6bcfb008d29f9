//! The state every simulator thread shares: the published event log with its readers, the
//! reference books, the stream-name registry, fault switches and counters, the registry of live
//! websocket connections, and the stop flag.
//!
//! The log is the one hand-off between the market thread and connection threads: the market
//! appends under a mutex and wakes everyone on a condvar; each connection keeps a cursor and
//! takes what is new. Nothing here spins: every wait is a condvar wait with a deadline. This
//! module holds no sockets and knows nothing of JSON or HTTP.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::book::{Book, History};
use crate::event::{MarketEvent, StreamRegistry};
use crate::faults::{ConnFaults, Counters, FaultState};
use crate::symbols::SymbolSpec;

/// Locks a mutex, recovering the data if a thread panicked while holding it: a simulator that
/// keeps serving after one bad connection is more useful to a test than one that cascades.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Microseconds since the Unix epoch, the simulator's clock for E/T.
pub(crate) fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The published-event log.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Sequence number of `events[0]`.
    pub base: u64,
    pub events: VecDeque<Arc<MarketEvent>>,
    /// Websocket connection id -> next sequence it will take.
    pub readers: HashMap<u64, u64>,
}

impl Log {
    /// The sequence number the next published event gets.
    pub fn head(&self) -> u64 {
        self.base + self.events.len() as u64
    }
}

/// Why a connection could not take events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TakeError {
    /// The events it needed were evicted: it is too slow for the pace.
    Lagged,
    /// The simulator is stopping.
    Stopped,
}

/// Reference state of one symbol.
#[derive(Debug)]
pub(crate) struct SymbolBook {
    pub spec: SymbolSpec,
    /// `None` while the book is unknown (a replay before/without a snapshot, or after a gap in
    /// the recording).
    pub history: Option<History>,
}

/// Everything shared between the simulator's threads.
#[derive(Debug)]
pub(crate) struct Hub {
    pub stop: AtomicBool,
    pub log: Mutex<Log>,
    /// Signalled on every publication (and on faults/stop): wakes connection threads.
    pub log_cv: Condvar,
    /// Signalled when readers advance or join: wakes a back-pressured market thread.
    pub space_cv: Condvar,
    pub log_capacity: usize,
    pub books: Mutex<Vec<SymbolBook>>,
    pub streams: Mutex<StreamRegistry>,
    pub faults: FaultState,
    pub counters: Counters,
    /// Live websocket connections by id, for faults aimed at the connections open at one moment.
    pub conns: Mutex<HashMap<u64, Arc<ConnFaults>>>,
    pub market_done: AtomicBool,
    /// For stop-aware sleeps.
    pub sleep_lock: Mutex<()>,
    pub sleep_cv: Condvar,
}

impl Hub {
    /// A hub for `books`, with a log holding at most `log_capacity` events.
    pub fn new(books: Vec<SymbolBook>, streams: StreamRegistry, faults: FaultState, log_capacity: usize) -> Hub {
        Hub {
            stop: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
            log_cv: Condvar::new(),
            space_cv: Condvar::new(),
            log_capacity: log_capacity.max(64),
            books: Mutex::new(books),
            streams: Mutex::new(streams),
            faults,
            counters: Counters::default(),
            conns: Mutex::new(HashMap::new()),
            market_done: AtomicBool::new(false),
            sleep_lock: Mutex::new(()),
            sleep_cv: Condvar::new(),
        }
    }

    /// True once shutdown began.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Begins shutdown and wakes every waiter.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake_all();
        self.wake_sleepers();
    }

    /// Wakes all connection threads and the market thread (used after injecting faults).
    pub fn wake_all(&self) {
        let _g = lock(&self.log);
        self.log_cv.notify_all();
        self.space_cv.notify_all();
    }

    /// Sleeps up to `d`, returning early (false) if the simulator stops.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut g = lock(&self.sleep_lock);
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            g = self.sleep_cv.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Wakes the threads that wait on the sleep condvar (timed faults, REST delays, a paused
    /// market) so they re-check their condition.
    pub fn wake_sleepers(&self) {
        let _g = lock(&self.sleep_lock);
        self.sleep_cv.notify_all();
    }

    /// Waits while the market is paused. Returns how long it waited, or `None` if the simulator
    /// stops meanwhile.
    pub fn wait_while_paused(&self) -> Option<Duration> {
        let start = Instant::now();
        let mut g = lock(&self.sleep_lock);
        loop {
            if self.stopping() {
                return None;
            }
            if !self.faults.paused.load(Ordering::Acquire) {
                return Some(start.elapsed());
            }
            g = self.sleep_cv.wait_timeout(g, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Registers a live websocket connection subscribed to `streams`; it starts with the lag set
    /// for new connections.
    pub fn register_conn(&self, conn: u64, streams: &[String]) -> Arc<ConnFaults> {
        let c = Arc::new(ConnFaults::new(streams, self.faults.new_conn_lag_us.load(Ordering::Relaxed)));
        lock(&self.conns).insert(conn, c.clone());
        c
    }

    /// The registry entry of live connection `conn`, if it is live.
    pub fn conn(&self, conn: u64) -> Option<Arc<ConnFaults>> {
        lock(&self.conns).get(&conn).cloned()
    }

    /// Forgets a connection registered by `register_conn`.
    pub fn unregister_conn(&self, conn: u64) {
        lock(&self.conns).remove(&conn);
    }

    /// Registers a websocket reader starting at the log head; returns its cursor.
    pub fn join_reader(&self, conn: u64) -> u64 {
        let mut log = lock(&self.log);
        let head = log.head();
        log.readers.insert(conn, head);
        self.space_cv.notify_all();
        head
    }

    /// Forgets a reader.
    pub fn leave_reader(&self, conn: u64) {
        let mut log = lock(&self.log);
        log.readers.remove(&conn);
        self.space_cv.notify_all();
    }

    /// Takes up to `max` events at `cursor`, waiting up to `timeout` if there are none. An empty
    /// vector means the wait timed out (or something woke the reader: check faults and timers).
    /// Also returns how many published events are still waiting for this reader after the take
    /// (0: caught up), and keeps the high-water mark of how far behind any reader came to take.
    pub fn take(
        &self,
        conn: u64,
        cursor: &mut u64,
        max: usize,
        timeout: Duration,
    ) -> Result<(Vec<Arc<MarketEvent>>, u64), TakeError> {
        let mut log = lock(&self.log);
        if !self.stopping() && *cursor >= log.head() && !timeout.is_zero() {
            log = self.log_cv.wait_timeout(log, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        if self.stopping() {
            return Err(TakeError::Stopped);
        }
        if *cursor < log.base {
            return Err(TakeError::Lagged);
        }
        let start = (*cursor - log.base) as usize;
        let waiting = log.events.len() - start.min(log.events.len());
        self.counters.ws_backlog_max.fetch_max(waiting as u64, Ordering::Relaxed);
        let n = waiting.min(max);
        let out: Vec<_> = log.events.range(start..start + n).cloned().collect();
        *cursor += n as u64;
        log.readers.insert(conn, *cursor);
        if n > 0 {
            self.space_cv.notify_all();
        }
        Ok((out, (waiting - n) as u64))
    }

    /// The current reference book of `symbol` (any case), `limit` levels per side.
    pub fn current_book(&self, symbol: &str, limit: Option<usize>) -> Option<Book> {
        let books = lock(&self.books);
        let sb = books.iter().find(|b| b.spec.symbol.eq_ignore_ascii_case(symbol))?;
        Some(sb.history.as_ref()?.current().to_book(&sb.spec.symbol, limit))
    }

    /// The reference book of `symbol` after the diff ending at `id`, if still held.
    pub fn reference_book(&self, symbol: &str, id: u64) -> Option<Book> {
        let books = lock(&self.books);
        let sb = books.iter().find(|b| b.spec.symbol.eq_ignore_ascii_case(symbol))?;
        Some(sb.history.as_ref()?.at(id)?.to_book(&sb.spec.symbol, None))
    }
}
