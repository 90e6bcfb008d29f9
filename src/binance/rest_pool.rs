//! The snapshot workers: a small fixed pool of threads, each with a ureq agent of its own, that
//! fetch the depth snapshots the [`Scheduler`] picks, and one dispatcher thread that runs the
//! scheduler with the real clock. Only this file and `rest` do blocking HTTP.
//!
//! The event loop never waits for HTTP: it hands a symbol index and a priority to
//! [`SnapshotWorker::request`] and later picks the body up with [`SnapshotWorker::try_recv`] (a
//! channel read, no syscall); the `wake` callback (the loop's mio `Waker`) makes a blocking poll
//! return when something is ready. The dispatcher takes requests and answers in one channel,
//! feeds them to the scheduler, hands what `poll_send` gives to an idle worker, and sleeps until
//! the next message or `poll_timeout`. Answers go back to the loop through the dispatcher, so the
//! scheduler has taken an answer in before the loop can ask for that symbol again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::rest::{depth_weight, RestClient, RestError, RestGate, RestResponse, WaitReason};
use super::schedule::{Priority, ScheduleConfig, Scheduler};

/// A snapshot fetched (or not) by the pool.
#[derive(Debug)]
pub(crate) struct SnapshotResult {
    /// The symbol index it was requested for.
    pub symbol: usize,
    /// Wall-clock ns when the response was complete.
    pub recv_ns: i64,
    /// The depth body, or why there is none.
    pub body: Result<Vec<u8>, SnapshotError>,
}

/// Why the pool has no snapshot body, and when that symbol is asked for again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotError {
    /// What failed.
    pub error: RestError,
    /// The symbol is not fetched again before this long (a failure's backoff); `None` after a
    /// 429/418, whose Retry-After the error carries.
    pub retry_in: Option<Duration>,
}

/// What the pool sends back to the event loop.
#[derive(Debug)]
pub(crate) enum WorkerEvent {
    /// A snapshot request finished, well or not.
    Snapshot(SnapshotResult),
    /// Requests wait for the weight budget or a Retry-After (told once per wait, not per request).
    Waiting {
        /// The symbol index at the head of the queue.
        symbol: usize,
        /// How long.
        wait: Duration,
        /// Why.
        reason: WaitReason,
    },
}

/// What the pool did, for the stats file (exchangeInfo's request included where it says so).
#[derive(Debug, Default)]
pub(crate) struct RestCounters {
    /// Depth requests sent.
    pub requests: AtomicU64,
    /// Snapshots received with status 200.
    pub ok: AtomicU64,
    /// Failed depth requests (transport or HTTP).
    pub failures: AtomicU64,
    /// 429 and 418 answers to any REST request (exchangeInfo included).
    pub rate_limited: AtomicU64,
    /// HTTP 429 answers (exchangeInfo included).
    pub http_429: AtomicU64,
    /// HTTP 418 answers (exchangeInfo included).
    pub http_418: AtomicU64,
    /// Depth requests that waited for the weight budget or a Retry-After.
    pub delayed: AtomicU64,
    /// Request weight spent (exchangeInfo included).
    pub weight: AtomicU64,
}

/// Settings of the pool.
pub(crate) struct WorkerConfig {
    /// Uppercase symbols, by index.
    pub symbols: Vec<String>,
    /// Depth `limit`.
    pub limit: u32,
    /// Worker threads: requests in flight at once.
    pub workers: usize,
}

/// What reaches the dispatcher.
enum Inbox {
    /// The loop asks for a snapshot.
    Request(usize, Priority),
    /// The loop's book could use the snapshot it got (true), or not (too old, malformed).
    Used(usize, bool),
    /// A worker has an answer.
    Done { symbol: usize, recv_ns: i64, answer: Result<RestResponse, RestError> },
    /// The loop is gone (see `Drop`).
    Stop,
}

/// The worker pool, its dispatcher and their channels.
pub(crate) struct SnapshotWorker {
    tx: Sender<Inbox>,
    rx: Receiver<WorkerEvent>,
    counters: Arc<RestCounters>,
}

impl SnapshotWorker {
    /// Starts the dispatcher and `cfg.workers` workers, each with a fresh agent like `client`.
    /// `gate` carries what startup spent (exchangeInfo) and the planned budget. `wake` is called
    /// after each event is sent (the loop's waker).
    pub(crate) fn spawn(
        client: RestClient,
        gate: RestGate,
        cfg: WorkerConfig,
        wake: Box<dyn Fn() + Send>,
    ) -> std::io::Result<SnapshotWorker> {
        let (tx, inbox) = mpsc::channel::<Inbox>();
        let (results, rx) = mpsc::channel::<WorkerEvent>();
        let (jobs_tx, jobs) = mpsc::channel::<usize>();
        let jobs = Arc::new(Mutex::new(jobs));
        let counters = Arc::new(RestCounters::default());
        let workers = cfg.workers.max(1);
        let symbols = Arc::new(cfg.symbols);
        for i in 0..workers {
            let (client, jobs, done, symbols) = (client.fresh(), jobs.clone(), tx.clone(), symbols.clone());
            let limit = cfg.limit;
            std::thread::Builder::new().name(format!("tickfeed-rest-{i}")).spawn(move || loop {
                // One idle worker waits in recv at a time, the others on the lock: either way idle.
                let job = jobs.lock().map_err(drop).and_then(|rx| rx.recv().map_err(drop));
                let Ok(symbol) = job else { return };
                let Some(name) = symbols.get(symbol) else { continue };
                let answer = client.depth(name, limit);
                let recv_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
                if done.send(Inbox::Done { symbol, recv_ns, answer }).is_err() {
                    return;
                }
            })?;
        }
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let weight = client.venue().depth_weight(cfg.limit);
        debug_assert!(client.venue() != crate::venue::Venue::Spot || weight == depth_weight(cfg.limit));
        let sched = Scheduler::new(gate, ScheduleConfig::new(weight, workers, seed), symbols.len());
        let d =
            Dispatcher { sched, client, limit: cfg.limit, symbols, jobs: jobs_tx, results, counters: counters.clone() };
        d.publish();
        std::thread::Builder::new().name("tickfeed-rest".into()).spawn(move || d.run(inbox, wake))?;
        Ok(SnapshotWorker { tx, rx, counters })
    }

    /// Asks for a snapshot of symbol `symbol` (returns at once).
    pub(crate) fn request(&self, symbol: usize, priority: Priority) {
        let _ = self.tx.send(Inbox::Request(symbol, priority));
    }

    /// Tells whether the book could use the last snapshot of `symbol`: the scheduler backs off a
    /// symbol whose snapshots keep being unusable (see `Scheduler::handle_unusable`).
    pub(crate) fn used(&self, symbol: usize, usable: bool) {
        let _ = self.tx.send(Inbox::Used(symbol, usable));
    }

    /// What the pool has to say, if anything is waiting (no syscall).
    pub(crate) fn try_recv(&self) -> Option<WorkerEvent> {
        self.rx.try_recv().ok()
    }

    /// The pool's counters.
    pub(crate) fn counters(&self) -> &RestCounters {
        &self.counters
    }
}

impl Drop for SnapshotWorker {
    /// The workers hold senders to the dispatcher, so it would never see the channel close: it is
    /// told, and its end closes the job queue, which ends each worker after its request.
    fn drop(&mut self) {
        let _ = self.tx.send(Inbox::Stop);
    }
}

/// The dispatcher thread's state.
struct Dispatcher {
    sched: Scheduler,
    /// For the URL in error messages.
    client: RestClient,
    limit: u32,
    symbols: Arc<Vec<String>>,
    jobs: Sender<usize>,
    results: Sender<WorkerEvent>,
    counters: Arc<RestCounters>,
}

impl Dispatcher {
    fn run(mut self, inbox: Receiver<Inbox>, wake: Box<dyn Fn() + Send>) {
        loop {
            let now = Instant::now();
            while let Some(symbol) = self.sched.poll_send(now) {
                if self.jobs.send(symbol).is_err() {
                    return;
                }
            }
            if let Some(w) = self.sched.poll_wait() {
                let ev = WorkerEvent::Waiting { symbol: w.symbol, wait: w.wait, reason: w.reason };
                if self.results.send(ev).is_err() {
                    return;
                }
                wake();
            }
            self.publish();
            let msg = match self.sched.poll_timeout() {
                Some(t) => match inbox.recv_timeout(t.saturating_duration_since(Instant::now())) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match inbox.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            match msg {
                Inbox::Request(symbol, priority) => self.sched.handle_request(symbol, priority, Instant::now()),
                Inbox::Used(symbol, true) => self.sched.handle_usable(symbol),
                Inbox::Used(symbol, false) => {
                    let _ = self.sched.handle_unusable(symbol, Instant::now());
                }
                Inbox::Done { symbol, recv_ns, answer } => {
                    let body = self.answer(symbol, answer);
                    // Counted before the loop can see the answer (its stats are read after it).
                    self.publish();
                    if self.results.send(WorkerEvent::Snapshot(SnapshotResult { symbol, recv_ns, body })).is_err() {
                        return;
                    }
                    wake();
                }
                Inbox::Stop => return,
            }
        }
    }

    /// Takes an answer into the scheduler and the counters; the body or why there is none.
    fn answer(&mut self, symbol: usize, answer: Result<RestResponse, RestError>) -> Result<Vec<u8>, SnapshotError> {
        let c = &self.counters;
        let now = Instant::now();
        match answer {
            Ok(r) => {
                let retry_in = self.sched.handle_response(symbol, Some(r.status), r.retry_after, r.used_weight, now);
                if r.status == 200 {
                    c.ok.fetch_add(1, Ordering::Relaxed);
                    return Ok(r.body);
                }
                c.failures.fetch_add(1, Ordering::Relaxed);
                let name = self.symbols.get(symbol).map_or("", String::as_str);
                let url = self.client.url(&super::rest::venue_depth_path(self.client.venue(), name, self.limit));
                Err(SnapshotError { error: RestError::status(url, &r), retry_in })
            }
            Err(error) => {
                let retry_in = self.sched.handle_response(symbol, None, None, None, now);
                c.failures.fetch_add(1, Ordering::Relaxed);
                Err(SnapshotError { error, retry_in })
            }
        }
    }

    /// The scheduler's counts into the shared counters.
    fn publish(&self) {
        let c = &self.counters;
        let (s, t) = (self.sched.counters(), self.sched.totals());
        c.requests.store(s.sent, Ordering::Relaxed);
        c.delayed.store(s.delayed, Ordering::Relaxed);
        c.weight.store(t.weight, Ordering::Relaxed);
        c.http_429.store(t.http_429, Ordering::Relaxed);
        c.http_418.store(t.http_418, Ordering::Relaxed);
        c.rate_limited.store(t.http_429 + t.http_418, Ordering::Relaxed);
    }
}
