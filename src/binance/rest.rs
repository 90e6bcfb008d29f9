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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::binance::url::BaseUrl;
use crate::binance::{decode_exchange_info, SymbolFilters};
use crate::net::backoff::Backoff;
use crate::net::tls::TlsSetup;

/// Binance's REQUEST_WEIGHT limit per minute (the live value is in exchangeInfo.rateLimits).
pub const DEFAULT_WEIGHT_PER_MINUTE: u32 = 6000;
/// Weight of `GET /api/v3/exchangeInfo` for one symbol.
pub const EXCHANGE_INFO_WEIGHT: u32 = 20;
/// Largest body accepted (a 5000-level snapshot is about 400 KB).
const MAX_BODY: u64 = 32 << 20;

/// Weight of `GET /api/v3/depth` by `limit` (in force since 2023-10-19): 5/25/50/250.
pub fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// A sliding one-minute window of the request weight spent, against a budget.
#[derive(Debug, Clone)]
pub struct WeightBudget {
    limit: u32,
    window: Duration,
    spent: VecDeque<(Instant, u32)>,
}

impl WeightBudget {
    /// A budget of `limit` weight per minute.
    pub fn new(limit: u32) -> WeightBudget {
        WeightBudget { limit: limit.max(1), window: Duration::from_secs(60), spent: VecDeque::new() }
    }

    fn prune(&mut self, now: Instant) {
        while self.spent.front().is_some_and(|&(t, _)| now.saturating_duration_since(t) >= self.window) {
            self.spent.pop_front();
        }
    }

    /// Weight spent in the window ending at `now`.
    pub fn used(&mut self, now: Instant) -> u32 {
        self.prune(now);
        self.spent.iter().map(|&(_, w)| w).sum()
    }

    /// How long to wait before spending `weight` (zero: now). A request heavier than the whole
    /// budget waits for an empty window.
    pub fn delay(&mut self, now: Instant, weight: u32) -> Duration {
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

    /// Records `weight` spent at `now`.
    pub fn spend(&mut self, now: Instant, weight: u32) {
        self.spent.push_back((now, weight));
    }

    /// The server reported `used` weight in its current minute (`X-MBX-USED-WEIGHT-1M`): if that
    /// is more than we counted (another process on the same IP), count the difference as spent now.
    pub fn observe_used(&mut self, now: Instant, used: u32) {
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

/// The rules every REST request passes: `Retry-After` first, then the weight budget.
#[derive(Debug, Clone)]
pub struct RestGate {
    budget: WeightBudget,
    blocked_until: Option<Instant>,
}

impl RestGate {
    /// A gate with a per-minute weight budget.
    pub fn new(weight_per_minute: u32) -> RestGate {
        RestGate { budget: WeightBudget::new(weight_per_minute), blocked_until: None }
    }

    /// How long a request of `weight` must wait at `now`, and why; `None`: send it now.
    pub fn wait(&mut self, now: Instant, weight: u32) -> Option<(Duration, WaitReason)> {
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
    pub fn sent(&mut self, now: Instant, weight: u32) {
        self.budget.spend(now, weight);
    }

    /// Takes in a response's rate-limit facts: a 429 or 418 blocks every request until its
    /// `Retry-After` (60 s when absent); a used-weight header tightens the budget.
    pub fn on_response(&mut self, now: Instant, status: u16, retry_after: Option<Duration>, used_weight: Option<u32>) {
        if status == 429 || status == 418 {
            let until = now + retry_after.unwrap_or(Duration::from_secs(60));
            self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
        }
        if let Some(u) = used_weight {
            self.budget.observe_used(now, u);
        }
    }

    /// The weight budget.
    pub fn budget(&mut self) -> &mut WeightBudget {
        &mut self.budget
    }
}

/// Parses `Retry-After` as Binance sends it: whole seconds. (The HTTP-date form is not used by
/// Binance and is treated as absent.)
pub fn parse_retry_after(v: &str) -> Option<Duration> {
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
pub struct RestClient {
    agent: ureq::Agent,
    base: String,
}

impl RestClient {
    /// A client for `base` with a whole-request `timeout`, trusting `tls`'s roots.
    pub fn new(base: &BaseUrl, tls: &TlsSetup, timeout: Duration) -> RestClient {
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
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// `GET path_and_query`. `Err` is a transport failure (DNS, connect, TLS, timeout) as one line.
    pub fn get(&self, path_and_query: &str) -> Result<RestResponse, String> {
        let url = self.url(path_and_query);
        let mut resp =
            self.agent.get(&url).call().map_err(|e| format!("GET {url} failed: {}", strip_os_error(&e.to_string())))?;
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
        let used_weight = header("x-mbx-used-weight-1m").and_then(|v| v.trim().parse().ok());
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| format!("GET {url}: reading the body failed: {e}"))?;
        Ok(RestResponse { status, body, retry_after, used_weight })
    }

    /// `GET /api/v3/depth?symbol=SYMBOL&limit=N`.
    pub fn depth(&self, symbol: &str, limit: u32) -> Result<RestResponse, String> {
        self.get(&format!("/api/v3/depth?symbol={symbol}&limit={limit}"))
    }
}

/// Why `exchangeInfo` did not give a symbol's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoError {
    /// The exchange does not know the symbol (HTTP 400, code -1121): a configuration error.
    UnknownSymbol(String),
    /// Worth retrying (network, timeout, 429/418, 5xx).
    Transient(String),
    /// The server answered but has no usable filters (4xx other than the above, or a body we
    /// cannot read): continue and infer the tick size from the first snapshot.
    Unavailable(String),
}

/// Fetches one symbol's filters, passing `gate` (waits for it on this thread).
pub fn exchange_info(client: &RestClient, gate: &mut RestGate, symbol: &str) -> Result<SymbolFilters, InfoError> {
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
            .map_err(|e| InfoError::Unavailable(format!("GET {url}: unusable exchangeInfo ({e})"))),
        400 if r.api_code() == Some(-1121) => InfoError::UnknownSymbol(format!(
            "unknown symbol {symbol}: GET {url} answered HTTP 400 {}",
            r.body_excerpt()
        ))
        .into_err(),
        429 | 418 => InfoError::Transient(format!(
            "GET {url}: HTTP {} (rate limited), retry after {}s",
            r.status,
            r.retry_after.map_or(60, |d| d.as_secs())
        ))
        .into_err(),
        s if s >= 500 => InfoError::Transient(format!("GET {url}: HTTP {s} {}", r.body_excerpt())).into_err(),
        s => InfoError::Unavailable(format!("GET {url}: HTTP {s} {}", r.body_excerpt())).into_err(),
    }
}

impl InfoError {
    fn into_err<T>(self) -> Result<T, InfoError> {
        Err(self)
    }
}

/// A snapshot fetched (or not) by the worker.
#[derive(Debug)]
pub struct SnapshotResult {
    /// The symbol index it was requested for.
    pub symbol: usize,
    /// Wall-clock ns when the response was complete.
    pub recv_ns: i64,
    /// The depth body, or a one-line reason.
    pub body: Result<Vec<u8>, String>,
}

/// What the worker did, for the stats file.
#[derive(Debug, Default)]
pub struct RestCounters {
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
pub struct SnapshotWorker {
    tx: Sender<usize>,
    rx: Receiver<SnapshotResult>,
    counters: Arc<RestCounters>,
}

/// Settings of the snapshot worker.
pub struct WorkerConfig {
    /// Uppercase symbols, by index.
    pub symbols: Vec<String>,
    /// Depth `limit`.
    pub limit: u32,
    /// Log waits and failures to stderr.
    pub log: bool,
}

impl SnapshotWorker {
    /// Starts the worker thread. `wake` is called after each result is sent (the loop's waker).
    pub fn spawn(
        client: RestClient,
        mut gate: RestGate,
        cfg: WorkerConfig,
        wake: Box<dyn Fn() + Send>,
    ) -> std::io::Result<SnapshotWorker> {
        let (tx, jobs) = mpsc::channel::<usize>();
        let (results, rx) = mpsc::channel::<SnapshotResult>();
        let counters = Arc::new(RestCounters::default());
        let c = counters.clone();
        std::thread::Builder::new().name("tickfeed-rest".into()).spawn(move || {
            let weight = depth_weight(cfg.limit);
            let mut fail_backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30), 0x5eed);
            while let Ok(sym) = jobs.recv() {
                let Some(symbol) = cfg.symbols.get(sym) else { continue };
                let mut logged_wait = false;
                while let Some((d, why)) = gate.wait(Instant::now(), weight) {
                    if !logged_wait {
                        c.delayed.fetch_add(1, Ordering::Relaxed);
                        if cfg.log {
                            let why = match why {
                                WaitReason::RetryAfter => "Retry-After from a 429/418",
                                WaitReason::Budget => "request weight budget",
                            };
                            eprintln!("tickfeed: {symbol} snapshot waits {:.1}s ({why})", d.as_secs_f64());
                        }
                        logged_wait = true;
                    }
                    std::thread::sleep(d);
                }
                let now = Instant::now();
                gate.sent(now, weight);
                c.requests.fetch_add(1, Ordering::Relaxed);
                let r = client.depth(symbol, cfg.limit);
                let recv_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
                let mut pause = None;
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
                                Err(format!(
                                    "{symbol} snapshot: HTTP {} (rate limited), not asking again for {}s",
                                    resp.status,
                                    resp.retry_after.map_or(60, |d| d.as_secs())
                                ))
                            }
                            s => {
                                c.failures.fetch_add(1, Ordering::Relaxed);
                                let d = fail_backoff.next_delay();
                                pause = Some(d);
                                Err(format!(
                                    "{symbol} snapshot: HTTP {s} {}; retrying in {:.1}s",
                                    resp.body_excerpt(),
                                    d.as_secs_f64()
                                ))
                            }
                        }
                    }
                    Err(e) => {
                        c.failures.fetch_add(1, Ordering::Relaxed);
                        let d = fail_backoff.next_delay();
                        pause = Some(d);
                        Err(format!("{e}; retrying in {:.1}s", d.as_secs_f64()))
                    }
                };
                if results.send(SnapshotResult { symbol: sym, recv_ns, body }).is_err() {
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
    pub fn request(&self, symbol: usize) {
        let _ = self.tx.send(symbol);
    }

    /// A finished snapshot, if one is waiting (no syscall).
    pub fn try_recv(&self) -> Option<SnapshotResult> {
        self.rx.try_recv().ok()
    }

    /// The worker's counters.
    pub fn counters(&self) -> &RestCounters {
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
