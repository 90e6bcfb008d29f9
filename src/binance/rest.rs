//! REST: `exchangeInfo` and depth snapshots with ureq, Binance's request-weight budget and its
//! 429/418 `Retry-After` rule, and the helper thread that keeps blocking HTTP off the hot thread.
//!
//! The event loop never waits for HTTP: it hands a symbol index to [`SnapshotWorker::request`]
//! and later picks the body up with [`SnapshotWorker::try_recv`] (a channel read, no syscall); a
//! mio `Waker` makes a blocking poll return when a result is ready. The worker paces itself:
//! [`RestGate`] delays a request that would exceed the per-minute weight budget or come before a
//! `Retry-After` expires, and failures back off. TLS comes from [`TlsSetup`], so REST trusts the
//! same roots as the websocket. `exchangeInfo` runs once per symbol at startup, on the caller's
//! thread, before the loop starts.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::binance::url::BaseUrl;
use crate::binance::{decode_exchange_info, DecodeError, SymbolFilters};
use crate::net::backoff::Backoff;
use crate::net::tls::TlsSetup;

/// Binance's REQUEST_WEIGHT limit per minute (the live value is in exchangeInfo.rateLimits).
pub(crate) const DEFAULT_WEIGHT_PER_MINUTE: u32 = 6000;
/// Weight of `GET /api/v3/exchangeInfo` for one symbol.
pub(crate) const EXCHANGE_INFO_WEIGHT: u32 = 20;
/// Largest body accepted (a 5000-level snapshot is about 400 KB).
const MAX_BODY: u64 = 32 << 20;

/// Weight of `GET /api/v3/depth` by `limit` (in force since 2023-10-19): 5/25/50/250.
pub(crate) fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// A sliding one-minute window of the request weight spent, against a budget.
#[derive(Debug, Clone)]
pub(crate) struct WeightBudget {
    limit: u32,
    window: Duration,
    spent: VecDeque<(Instant, u32)>,
}

impl WeightBudget {
    /// A budget of `limit` weight per minute.
    pub(crate) fn new(limit: u32) -> WeightBudget {
        WeightBudget { limit: limit.max(1), window: Duration::from_secs(60), spent: VecDeque::new() }
    }

    fn prune(&mut self, now: Instant) {
        while self.spent.front().is_some_and(|&(t, _)| now.saturating_duration_since(t) >= self.window) {
            self.spent.pop_front();
        }
    }

    /// Weight spent in the window ending at `now`.
    pub(crate) fn used(&mut self, now: Instant) -> u32 {
        self.prune(now);
        self.spent.iter().map(|&(_, w)| w).sum()
    }

    /// How long to wait before spending `weight` (zero: now). A request heavier than the whole
    /// budget waits for an empty window.
    pub(crate) fn delay(&mut self, now: Instant, weight: u32) -> Duration {
        let mut used = self.used(now);
        let need = weight.min(self.limit);
        for &(t, w) in &self.spent {
            if used + need <= self.limit {
                break;
            }
            used -= w;
            if used + need <= self.limit {
                return (t + self.window).saturating_duration_since(now);
            }
        }
        Duration::ZERO
    }

    /// When `weight` can be spent: `None` when it fits now, else the instant the window will have
    /// dropped enough. Needs no clock: entries already expired give an instant in the past.
    pub(crate) fn free_at(&self, weight: u32) -> Option<Instant> {
        let mut used: u32 = self.spent.iter().map(|&(_, w)| w).sum();
        let need = weight.min(self.limit);
        if used + need <= self.limit {
            return None;
        }
        for &(t, w) in &self.spent {
            used -= w;
            if used + need <= self.limit {
                return Some(t + self.window);
            }
        }
        None
    }

    /// Records `weight` spent at `now`.
    pub(crate) fn spend(&mut self, now: Instant, weight: u32) {
        self.spent.push_back((now, weight));
    }

    /// The weight allowed per window.
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// Changes the weight allowed per window (what was spent stays counted).
    pub(crate) fn set_limit(&mut self, limit: u32) {
        self.limit = limit.max(1);
    }

    /// The server reported `used` weight in its current minute (`X-MBX-USED-WEIGHT-1M`): if that
    /// is more than we counted (another process on the same IP), count the difference as spent now.
    pub(crate) fn observe_used(&mut self, now: Instant, used: u32) {
        let ours = self.used(now);
        if used > ours {
            self.spent.push_back((now, used - ours));
        }
    }
}

/// Why a request must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// A 429/418 `Retry-After` has not expired.
    RetryAfter,
    /// The weight budget would be exceeded.
    Budget,
}

/// The rules every REST request passes: `Retry-After` first, then the weight budget. It also
/// keeps the run's totals (weight spent, 429 and 418 answers) for the stats file.
#[derive(Debug, Clone)]
pub(crate) struct RestGate {
    budget: WeightBudget,
    blocked_until: Option<Instant>,
    totals: RestTotals,
}

/// What passed a [`RestGate`] over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RestTotals {
    /// Weight of every request sent (exchangeInfo and snapshots).
    pub weight: u64,
    /// HTTP 429 answers.
    pub http_429: u64,
    /// HTTP 418 answers.
    pub http_418: u64,
}

impl RestGate {
    /// A gate with a per-minute weight budget.
    pub(crate) fn new(weight_per_minute: u32) -> RestGate {
        RestGate { budget: WeightBudget::new(weight_per_minute), blocked_until: None, totals: RestTotals::default() }
    }

    /// The weight budget per minute.
    pub(crate) fn limit(&self) -> u32 {
        self.budget.limit()
    }

    /// Plans with a new budget per minute from now on (what was spent stays counted).
    pub(crate) fn set_limit(&mut self, weight_per_minute: u32) {
        self.budget.set_limit(weight_per_minute);
    }

    /// Until when a 429/418 holds every request back (possibly already past).
    pub(crate) fn blocked_until(&self) -> Option<Instant> {
        self.blocked_until
    }

    /// When a request of `weight` fits the budget: `None` now, else the instant it will.
    pub(crate) fn budget_free_at(&self, weight: u32) -> Option<Instant> {
        self.budget.free_at(weight)
    }

    /// Weight spent and rate-limit answers so far.
    pub(crate) fn totals(&self) -> RestTotals {
        self.totals
    }

    /// How long a request of `weight` must wait at `now`, and why; `None`: send it now.
    pub(crate) fn wait(&mut self, now: Instant, weight: u32) -> Option<(Duration, WaitReason)> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Some((until - now, WaitReason::RetryAfter));
            }
            self.blocked_until = None;
        }
        let d = self.budget.delay(now, weight);
        (!d.is_zero()).then_some((d, WaitReason::Budget))
    }

    /// Records a request of `weight` sent at `now`.
    pub(crate) fn sent(&mut self, now: Instant, weight: u32) {
        self.budget.spend(now, weight);
        self.totals.weight += u64::from(weight);
    }

    /// Takes in a response's rate-limit facts: a 429 or 418 blocks every request until its
    /// `Retry-After` (60 s when absent); a used-weight header tightens the budget.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        retry_after: Option<Duration>,
        used_weight: Option<u32>,
    ) {
        match status {
            429 => self.totals.http_429 += 1,
            418 => self.totals.http_418 += 1,
            _ => {}
        }
        if status == 429 || status == 418 {
            let until = now + retry_after.unwrap_or(Duration::from_secs(60));
            self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
        }
        if let Some(u) = used_weight {
            self.budget.observe_used(now, u);
        }
    }
}

/// Parses `Retry-After` as Binance sends it: whole seconds. (The HTTP-date form is not used by
/// Binance and is treated as absent.)
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `text` without an " (os error N)" part, for one-line messages.
fn strip_os_error(text: &str) -> String {
    match text.find(" (os error ") {
        Some(i) => {
            let rest = &text[i + 1..];
            let end = rest.find(')').map_or(text.len(), |j| i + 1 + j + 1);
            format!("{}{}", &text[..i], &text[end..])
        }
        None => text.to_owned(),
    }
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct RestResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// `Retry-After`, if sent.
    pub retry_after: Option<Duration>,
    /// `X-MBX-USED-WEIGHT-1M`, if sent.
    pub used_weight: Option<u32>,
}

impl RestResponse {
    /// A bounded, printable prefix of the body for error messages.
    pub fn body_excerpt(&self) -> String {
        let b = &self.body[..self.body.len().min(200)];
        String::from_utf8_lossy(b).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
    }

    /// Binance's error code in a `{"code":..,"msg":..}` body.
    pub fn api_code(&self) -> Option<i64> {
        #[derive(serde::Deserialize)]
        struct ApiError {
            code: i64,
        }
        sonic_rs::from_slice::<ApiError>(&self.body).ok().map(|e| e.code)
    }
}

/// A blocking REST client for one base URL.
#[derive(Clone)]
pub(crate) struct RestClient {
    agent: ureq::Agent,
    base: String,
}

impl RestClient {
    /// A client for `base` with a whole-request `timeout`, trusting `tls`'s roots.
    pub(crate) fn new(base: &BaseUrl, tls: &TlsSetup, timeout: Duration) -> RestClient {
        use ureq::unversioned::resolver::DefaultResolver;
        use ureq::unversioned::transport::{Connector, TcpConnector};
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("tickfeed/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = ().chain(TcpConnector::default()).chain(tls.rest_connector());
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        let scheme = if base.tls { "https" } else { "http" };
        RestClient { agent, base: format!("{scheme}://{}:{}", base.host, base.port) }
    }

    /// The full URL of `path_and_query`.
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// `GET path_and_query`. `Err` is a transport failure (DNS, connect, TLS, timeout, a body cut
    /// short or over the size cap); any HTTP status is an `Ok` answer for the caller to judge.
    pub(crate) fn get(&self, path_and_query: &str) -> Result<RestResponse, RestError> {
        let url = self.url(path_and_query);
        let mut resp = match self.agent.get(&url).call() {
            Ok(r) => r,
            Err(e) => return Err(RestError::Transport { url, message: strip_os_error(&e.to_string()) }),
        };
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
        let used_weight = header("x-mbx-used-weight-1m").and_then(|v| v.trim().parse().ok());
        let status = resp.status().as_u16();
        match resp.body_mut().with_config().limit(MAX_BODY).read_to_vec() {
            Ok(body) => Ok(RestResponse { status, body, retry_after, used_weight }),
            Err(e) => Err(RestError::Transport { url, message: format!("reading the body failed: {e}") }),
        }
    }

    /// `GET /api/v3/depth?symbol=SYMBOL&limit=N`.
    pub(crate) fn depth(&self, symbol: &str, limit: u32) -> Result<RestResponse, RestError> {
        self.get(&depth_path(symbol, limit))
    }
}

/// The path and query of a depth snapshot request, as sent and as recorded.
pub(crate) fn depth_path(symbol: &str, limit: u32) -> String {
    format!("/api/v3/depth?symbol={symbol}&limit={limit}")
}

/// Why a REST request gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestError {
    /// The request did not complete: DNS, connect, TLS, timeout, or a body cut short or too large.
    /// Worth retrying.
    Transport {
        /// The URL asked for.
        url: String,
        /// What failed, in one line.
        message: String,
    },
    /// The server answered with a status other than 200.
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Binance's error code from a `{"code":..,"msg":..}` body.
        code: Option<i64>,
        /// `Retry-After`, when sent (429 and 418).
        retry_after: Option<Duration>,
        /// The body's first bytes, printable.
        excerpt: String,
    },
    /// A 200 answer whose body could not be decoded.
    Body {
        /// The URL asked for.
        url: String,
        /// Why.
        error: DecodeError,
    },
}

impl RestError {
    /// The error for a non-200 answer to `url`.
    pub fn status(url: String, r: &RestResponse) -> RestError {
        RestError::Status {
            url,
            status: r.status,
            code: r.api_code(),
            retry_after: r.retry_after,
            excerpt: r.body_excerpt(),
        }
    }

    /// Rate limited (429) or banned (418): the answer carries Binance's wait.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, RestError::Status { status: 429 | 418, .. })
    }
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestError::Transport { url, message } => write!(f, "GET {url} failed: {message}"),
            RestError::Status { url, status, excerpt, .. } => {
                write!(f, "GET {url}: HTTP {status}")?;
                if *status == 429 || *status == 418 {
                    f.write_str(" (rate limited)")?;
                }
                if !excerpt.is_empty() {
                    write!(f, " {excerpt}")?;
                }
                Ok(())
            }
            RestError::Body { url, error } => write!(f, "GET {url}: unusable body ({error})"),
        }
    }
}

impl std::error::Error for RestError {}

/// Why `exchangeInfo` did not give a symbol's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InfoError {
    /// The exchange does not know the symbol (HTTP 400, code -1121): a configuration error.
    UnknownSymbol {
        /// The symbol asked for.
        symbol: String,
        /// The answer.
        error: RestError,
    },
    /// Worth retrying (network, timeout, 429/418, 5xx).
    Transient(RestError),
    /// The server answered but has no usable filters (4xx other than the above, or a body we
    /// cannot read): continue and infer the tick size from the first snapshot.
    Unavailable(RestError),
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoError::UnknownSymbol { symbol, error: RestError::Status { url, status, excerpt, .. } } => {
                write!(f, "unknown symbol {symbol}: GET {url} answered HTTP {status} {excerpt}")
            }
            InfoError::UnknownSymbol { symbol, error } => write!(f, "unknown symbol {symbol}: {error}"),
            InfoError::Transient(e) | InfoError::Unavailable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InfoError {}

/// Fetches one symbol's filters, passing `gate` (waits for it on this thread).
pub(crate) fn exchange_info(
    client: &RestClient,
    gate: &mut RestGate,
    symbol: &str,
) -> Result<SymbolFilters, InfoError> {
    let path = format!("/api/v3/exchangeInfo?symbol={symbol}");
    if let Some((d, _)) = gate.wait(Instant::now(), EXCHANGE_INFO_WEIGHT) {
        std::thread::sleep(d);
    }
    let now = Instant::now();
    gate.sent(now, EXCHANGE_INFO_WEIGHT);
    let r = client.get(&path).map_err(InfoError::Transient)?;
    gate.on_response(now, r.status, r.retry_after, r.used_weight);
    let url = client.url(&path);
    match r.status {
        200 => decode_exchange_info(&r.body, symbol)
            .map_err(|error| InfoError::Unavailable(RestError::Body { url, error })),
        400 if r.api_code() == Some(-1121) => {
            Err(InfoError::UnknownSymbol { symbol: symbol.to_owned(), error: RestError::status(url, &r) })
        }
        429 | 418 => Err(InfoError::Transient(RestError::status(url, &r))),
        s if s >= 500 => Err(InfoError::Transient(RestError::status(url, &r))),
        _ => Err(InfoError::Unavailable(RestError::status(url, &r))),
    }
}

/// A snapshot fetched (or not) by the worker.
#[derive(Debug)]
pub(crate) struct SnapshotResult {
    /// The symbol index it was requested for.
    pub symbol: usize,
    /// Wall-clock ns when the response was complete.
    pub recv_ns: i64,
    /// The depth body, or why there is none.
    pub body: Result<Vec<u8>, SnapshotError>,
}

/// Why the worker has no snapshot body, and whether it pauses before the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotError {
    /// What failed.
    pub error: RestError,
    /// The worker waits this long before its next request (a transport failure or a 5xx).
    pub retry_in: Option<Duration>,
}

/// What the worker sends back to the event loop.
#[derive(Debug)]
pub(crate) enum WorkerEvent {
    /// A snapshot request finished, well or not.
    Snapshot(SnapshotResult),
    /// A request waits for the weight budget or a Retry-After (said once per request).
    Waiting {
        /// The symbol index.
        symbol: usize,
        /// How long.
        wait: Duration,
        /// Why.
        reason: WaitReason,
    },
}

/// What the worker did, for the stats file.
#[derive(Debug, Default)]
pub(crate) struct RestCounters {
    /// Depth requests sent.
    pub requests: AtomicU64,
    /// Snapshots received with status 200.
    pub ok: AtomicU64,
    /// Failed requests (transport or HTTP).
    pub failures: AtomicU64,
    /// 429/418 answers.
    pub rate_limited: AtomicU64,
    /// Requests delayed by the weight budget or a Retry-After.
    pub delayed: AtomicU64,
}

/// The snapshot helper thread and its channels.
pub(crate) struct SnapshotWorker {
    tx: Sender<usize>,
    rx: Receiver<WorkerEvent>,
    counters: Arc<RestCounters>,
}

/// Settings of the snapshot worker.
pub(crate) struct WorkerConfig {
    /// Uppercase symbols, by index.
    pub symbols: Vec<String>,
    /// Depth `limit`.
    pub limit: u32,
}

impl SnapshotWorker {
    /// Starts the worker thread. `wake` is called after each result is sent (the loop's waker).
    pub(crate) fn spawn(
        client: RestClient,
        mut gate: RestGate,
        cfg: WorkerConfig,
        wake: Box<dyn Fn() + Send>,
    ) -> std::io::Result<SnapshotWorker> {
        let (tx, jobs) = mpsc::channel::<usize>();
        let (results, rx) = mpsc::channel::<WorkerEvent>();
        let counters = Arc::new(RestCounters::default());
        let c = counters.clone();
        std::thread::Builder::new().name("tickfeed-rest".into()).spawn(move || {
            let weight = depth_weight(cfg.limit);
            let mut fail_backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30), 0x5eed);
            while let Ok(sym) = jobs.recv() {
                let Some(symbol) = cfg.symbols.get(sym) else { continue };
                let mut told = false;
                while let Some((wait, reason)) = gate.wait(Instant::now(), weight) {
                    if !told {
                        c.delayed.fetch_add(1, Ordering::Relaxed);
                        if results.send(WorkerEvent::Waiting { symbol: sym, wait, reason }).is_err() {
                            return;
                        }
                        wake();
                        told = true;
                    }
                    std::thread::sleep(wait);
                }
                let now = Instant::now();
                gate.sent(now, weight);
                c.requests.fetch_add(1, Ordering::Relaxed);
                let r = client.depth(symbol, cfg.limit);
                let recv_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
                let mut pause = None;
                let url = client.url(&depth_path(symbol, cfg.limit));
                let body = match r {
                    Ok(resp) => {
                        gate.on_response(now, resp.status, resp.retry_after, resp.used_weight);
                        match resp.status {
                            200 => {
                                c.ok.fetch_add(1, Ordering::Relaxed);
                                fail_backoff.reset();
                                Ok(resp.body)
                            }
                            429 | 418 => {
                                c.rate_limited.fetch_add(1, Ordering::Relaxed);
                                c.failures.fetch_add(1, Ordering::Relaxed);
                                // The gate holds every request back until the Retry-After.
                                Err(SnapshotError { error: RestError::status(url, &resp), retry_in: None })
                            }
                            _ => {
                                c.failures.fetch_add(1, Ordering::Relaxed);
                                let d = fail_backoff.next_delay();
                                pause = Some(d);
                                Err(SnapshotError { error: RestError::status(url, &resp), retry_in: pause })
                            }
                        }
                    }
                    Err(error) => {
                        c.failures.fetch_add(1, Ordering::Relaxed);
                        let d = fail_backoff.next_delay();
                        pause = Some(d);
                        Err(SnapshotError { error, retry_in: pause })
                    }
                };
                if results.send(WorkerEvent::Snapshot(SnapshotResult { symbol: sym, recv_ns, body })).is_err() {
                    return;
                }
                wake();
                if let Some(d) = pause {
                    std::thread::sleep(d);
                }
            }
        })?;
        Ok(SnapshotWorker { tx, rx, counters })
    }

    /// Asks for a snapshot of symbol `symbol` (returns at once).
    pub(crate) fn request(&self, symbol: usize) {
        let _ = self.tx.send(symbol);
    }

    /// What the worker has to say, if anything is waiting (no syscall).
    pub(crate) fn try_recv(&self) -> Option<WorkerEvent> {
        self.rx.try_recv().ok()
    }

    /// The worker's counters.
    pub(crate) fn counters(&self) -> &RestCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_weights_follow_the_documented_table() {
        let w: Vec<u32> = [1, 100, 101, 500, 501, 1000, 1001, 5000].iter().map(|&l| depth_weight(l)).collect();
        assert_eq!(w, [5, 5, 25, 25, 50, 50, 250, 250]);
    }

    #[test]
    fn budget_delays_what_would_exceed_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = WeightBudget::new(6000);
        // 24 snapshots of limit 5000 fit in a minute; the 25th waits for the first to expire.
        for i in 0..24 {
            let now = t0 + s(i);
            assert_eq!(b.delay(now, 250), Duration::ZERO, "request {i}");
            b.spend(now, 250);
        }
        assert_eq!(b.used(t0 + s(24)), 6000);
        assert_eq!(b.delay(t0 + s(24), 250), s(36));
        assert_eq!(b.delay(t0 + s(60), 250), Duration::ZERO);
        // Needing two expiries: 500 needs the first two entries gone.
        assert_eq!(b.delay(t0 + s(24), 500), s(37));
        // The server counted more than we did: the difference is spent now.
        let mut b = WeightBudget::new(100);
        b.observe_used(t0, 90);
        assert_eq!(b.used(t0), 90);
        assert_eq!(b.delay(t0, 50), s(60));
        b.observe_used(t0, 10);
        assert_eq!(b.used(t0), 90);
        // Heavier than the whole budget: waits for an empty window, then goes.
        let mut b = WeightBudget::new(100);
        b.spend(t0, 5);
        assert_eq!(b.delay(t0 + s(1), 250), s(59));
        assert_eq!(b.delay(t0 + s(60), 250), Duration::ZERO);
    }

    #[test]
    fn retry_after_blocks_every_request_until_it_expires() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut g = RestGate::new(6000);
        assert_eq!(g.wait(t0, 50), None);
        g.sent(t0, 50);
        g.on_response(t0, 429, Some(s(7)), Some(50));
        assert_eq!(g.wait(t0 + s(1), 5), Some((s(6), WaitReason::RetryAfter)));
        // A shorter Retry-After does not shorten a ban already in force.
        g.on_response(t0 + s(1), 418, Some(s(2)), None);
        assert_eq!(g.wait(t0 + s(6), 5), Some((s(1), WaitReason::RetryAfter)));
        assert_eq!(g.wait(t0 + s(7), 5), None);
        // No Retry-After header: a minute.
        g.on_response(t0 + s(10), 429, None, None);
        assert_eq!(g.wait(t0 + s(10), 5), Some((s(60), WaitReason::RetryAfter)));
        // Other statuses do not block.
        let mut g = RestGate::new(6000);
        g.on_response(t0, 500, Some(s(5)), None);
        assert_eq!(g.wait(t0, 5), None);
        assert_eq!(parse_retry_after(" 12 "), Some(s(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn free_at_needs_no_clock_and_agrees_with_delay() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = WeightBudget::new(100);
        assert_eq!(b.free_at(100), None);
        b.spend(t0, 60);
        b.spend(t0 + s(10), 30);
        assert_eq!(b.free_at(10), None);
        assert_eq!(b.free_at(20), Some(t0 + s(60)));
        assert_eq!(b.free_at(80), Some(t0 + s(70)));
        assert_eq!(b.delay(t0 + s(20), 80), s(50));
        b.set_limit(50);
        assert_eq!(b.limit(), 50);
        assert_eq!(b.free_at(10), Some(t0 + s(60)), "90 spent of 50: the first must go, then 30 + 10 fits");
    }

    #[test]
    fn the_gate_keeps_the_runs_totals() {
        let t0 = Instant::now();
        let mut g = RestGate::new(6000);
        g.sent(t0, 20);
        g.sent(t0, 250);
        g.on_response(t0, 429, Some(Duration::from_secs(1)), None);
        g.on_response(t0, 418, None, None);
        g.on_response(t0, 200, None, None);
        assert_eq!(g.totals(), RestTotals { weight: 270, http_429: 1, http_418: 1 });
        assert_eq!(g.blocked_until(), Some(t0 + Duration::from_secs(60)));
        g.set_limit(5400);
        assert_eq!(g.limit(), 5400);
        assert_eq!(g.budget_free_at(5200), Some(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn os_error_numbers_are_left_out_of_messages() {
        assert_eq!(strip_os_error("io: Connection refused (os error 111)"), "io: Connection refused");
        assert_eq!(strip_os_error("a (os error 2) b"), "a b");
        assert_eq!(strip_os_error("timeout"), "timeout");
    }

    #[test]
    fn api_error_codes() {
        let r = RestResponse {
            status: 400,
            body: br#"{"code":-1121,"msg":"Invalid symbol."}"#.to_vec(),
            retry_after: None,
            used_weight: None,
        };
        assert_eq!(r.api_code(), Some(-1121));
        assert_eq!(r.body_excerpt(), r#"{"code":-1121,"msg":"Invalid symbol."}"#);
    }
}
