//! REST: the ureq client, `exchangeInfo` (one request for every symbol), Binance's request-weight
//! budget and its 429/418 `Retry-After` rule ([`RestGate`]), and the errors of a REST answer.
//!
//! `exchangeInfo` runs once at startup, on the caller's thread, before the loop starts: one
//! request (weight 20) for the whole symbol list, or for every symbol (`--symbol ALL`). Depth
//! snapshots are fetched by the worker pool of [`super::rest_pool`], which a sans-IO scheduler
//! ([`super::schedule`]) paces with the same gate. TLS comes from [`TlsSetup`], so REST trusts the
//! same roots as the websocket.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::binance::url::BaseUrl;
use crate::binance::{decode_exchange_info_all, DecodeError, ExchangeInfo};
use crate::net::tls::TlsSetup;

pub(crate) use super::rest_pool::{SnapshotError, SnapshotWorker, WorkerConfig, WorkerEvent};

/// Binance's REQUEST_WEIGHT limit per minute (the live value is in exchangeInfo.rateLimits).
pub(crate) const DEFAULT_WEIGHT_PER_MINUTE: u32 = 6000;
/// Weight of `GET /api/v3/exchangeInfo`, whether for one symbol, a list or every symbol.
pub(crate) const EXCHANGE_INFO_WEIGHT: u32 = 20;
/// Largest body accepted: a 5000-level snapshot is about 400 KB, exchangeInfo for every symbol
/// (about 1,500 on Binance spot) several MB. A larger answer is a transport failure, not memory
/// spent on it.
pub(crate) const MAX_BODY: u64 = 32 << 20;
/// A symbol list whose `symbols=[...]` query would be longer than this is asked as every symbol
/// and picked from the answer (same weight, 20): request lines of tens of KB are refused by
/// proxies and servers long before Binance's symbol count is reached.
const MAX_SYMBOLS_QUERY: usize = 4096;
/// The longest `Retry-After` honoured: three days, Binance's longest IP ban. A larger value (up to
/// `u64::MAX` seconds, which no `Instant` can be moved by) is taken as this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// `now + d`, saturating: `d` is capped at [`MAX_RETRY_AFTER`] (no peer-given wait is longer),
/// and an instant the platform cannot represent falls back to the cap, then to `now`. Every
/// deadline computed from a peer's value goes through this rather than `Instant + Duration`,
/// which panics on overflow.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_RETRY_AFTER)).or_else(|| now.checked_add(MAX_RETRY_AFTER)).unwrap_or(now)
}

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
            let until = later(now, retry_after.unwrap_or(Duration::from_secs(60)));
            self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
        }
        if let Some(u) = used_weight {
            self.budget.observe_used(now, u);
        }
    }
}

/// Parses `Retry-After` as Binance sends it: whole seconds. (The HTTP-date form is not used by
/// Binance and is treated as absent.) Capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
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
        crate::binance::json::from_slice::<ApiError>(&self.body).ok().map(|e| e.code)
    }
}

/// A blocking REST client for one base URL.
#[derive(Clone)]
pub(crate) struct RestClient {
    agent: ureq::Agent,
    base: String,
    /// What it was made from, for [`RestClient::fresh`].
    made_from: (BaseUrl, TlsSetup, Duration),
    /// Whose REST API it speaks: the paths and weights of depth and exchangeInfo.
    venue: crate::venue::Venue,
}

impl RestClient {
    /// Another client like this one with an agent of its own (its own connections), for a worker
    /// thread that should not share (or wait for) another's keep-alive connection.
    pub(crate) fn fresh(&self) -> RestClient {
        let (base, tls, timeout) = &self.made_from;
        RestClient::new(base, tls, *timeout).with_venue(self.venue)
    }

    /// This client, asking `venue`'s REST paths (`/fapi/v1/...` for USDⓈ-M futures).
    pub(crate) fn with_venue(mut self, venue: crate::venue::Venue) -> RestClient {
        self.venue = venue;
        self
    }

    /// The venue whose paths it asks.
    pub(crate) fn venue(&self) -> crate::venue::Venue {
        self.venue
    }

    /// The path and query of an exchangeInfo request for `symbols` on this venue: spot's
    /// [`exchange_info_path`]; futures' `/fapi/v1/exchangeInfo` takes no symbol parameter and
    /// lists every contract.
    pub(crate) fn exchange_info_path(&self, symbols: Option<&[String]>) -> String {
        match self.venue {
            crate::venue::Venue::Spot => exchange_info_path(symbols),
            crate::venue::Venue::UsdM => self.venue.exchange_info_path().to_owned(),
        }
    }

    /// Weight of one exchangeInfo request on this venue (spot 20, futures 1).
    pub(crate) fn exchange_info_weight(&self) -> u32 {
        self.venue.exchange_info_weight()
    }

    /// A client for `base` with a whole-request `timeout`, trusting `tls`'s roots.
    pub(crate) fn new(base: &BaseUrl, tls: &TlsSetup, timeout: Duration) -> RestClient {
        use ureq::unversioned::resolver::DefaultResolver;
        use ureq::unversioned::transport::{Connector, TcpConnector};
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // No redirect is followed: a 3xx could send an HTTPS request (and the book synced from
            // its answer) to plain HTTP or another host. It comes back as the status it is, a
            // non-200 answer like any other.
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("tickfeed/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = ().chain(TcpConnector::default()).chain(tls.rest_connector());
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        let scheme = if base.tls { "https" } else { "http" };
        let made_from = (base.clone(), tls.clone(), timeout);
        RestClient {
            agent,
            base: format!("{scheme}://{}:{}", base.host, base.port),
            made_from,
            venue: crate::venue::Venue::Spot,
        }
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

    /// `GET /api/v3/depth?symbol=SYMBOL&limit=N` (`/fapi/v1/depth` on futures).
    pub(crate) fn depth(&self, symbol: &str, limit: u32) -> Result<RestResponse, RestError> {
        self.get(&venue_depth_path(self.venue, symbol, limit))
    }
}

/// The path and query of a depth snapshot request, as sent and as recorded:
/// `/api/v3/depth?symbol=..&limit=..` on spot, `/fapi/v1/depth?symbol=..&limit=..` on USDⓈ-M futures.
pub(crate) fn venue_depth_path(venue: crate::venue::Venue, symbol: &str, limit: u32) -> String {
    format!("{}?symbol={symbol}&limit={limit}", venue.depth_path())
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

/// Why `exchangeInfo` did not give the symbols' filters.
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
    /// Symbols of a list the exchange does not know: a configuration error. Binance answers
    /// -1121 for a whole `symbols=[...]` list when one of them is unknown; the names are found
    /// by asking for every symbol, and when even that fails, `among` says they are the list.
    UnknownSymbols {
        /// The unknown symbols, or (with `among`) the list that holds at least one.
        symbols: Vec<String>,
        /// True when which of `symbols` is unknown could not be told.
        among: bool,
        /// The -1121 answer, when there was one (a list picked from every symbol has none).
        error: Option<RestError>,
    },
    /// Worth retrying (network, timeout, 429/418, 5xx).
    Transient(RestError),
    /// The server answered but has no usable filters (4xx other than the above, or a body we
    /// cannot read): continue and infer the tick size from the first snapshot.
    Unavailable(RestError),
}

/// `A, B, C`, or the first ten and how many more.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = names.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answered = |f: &mut fmt::Formatter<'_>, e: &RestError| match e {
            RestError::Status { url, status, excerpt, .. } => write!(f, "GET {url} answered HTTP {status} {excerpt}"),
            e => e.fmt(f),
        };
        match self {
            InfoError::UnknownSymbol { symbol, error } => {
                write!(f, "unknown symbol {symbol}: ")?;
                answered(f, error)
            }
            InfoError::UnknownSymbols { symbols, among: true, error } => {
                write!(f, "unknown symbol among {}", name_list(symbols))?;
                match error {
                    Some(e) => {
                        f.write_str(": ")?;
                        answered(f, e)
                    }
                    None => Ok(()),
                }
            }
            InfoError::UnknownSymbols { symbols, among: false, .. } => match symbols.as_slice() {
                [one] => write!(f, "unknown symbol {one}: exchangeInfo does not list it"),
                many => write!(f, "unknown symbols {}: exchangeInfo does not list them", name_list(many)),
            },
            InfoError::Transient(e) | InfoError::Unavailable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InfoError {}

/// The path and query of an exchangeInfo request: `?symbol=S` for one symbol, `?symbols=[...]`
/// (URL-encoded JSON) for several, nothing for every symbol (`None`, or a list too long for a
/// request line: see [`MAX_SYMBOLS_QUERY`]). Every form weighs 20.
pub(crate) fn exchange_info_path(symbols: Option<&[String]>) -> String {
    const PATH: &str = "/api/v3/exchangeInfo";
    match symbols {
        None | Some([]) => PATH.to_owned(),
        Some([one]) => format!("{PATH}?symbol={}", one.to_ascii_uppercase()),
        Some(list) => {
            let mut q = format!("{PATH}?symbols=%5B");
            for (i, s) in list.iter().enumerate() {
                if i > 0 {
                    q.push(',');
                }
                q.push_str("%22");
                // `--symbol` values are ASCII letters and digits (url::check_symbol): nothing to escape.
                q.push_str(&s.to_ascii_uppercase());
                q.push_str("%22");
            }
            q.push_str("%5D");
            if q.len() > MAX_SYMBOLS_QUERY {
                PATH.to_owned()
            } else {
                q
            }
        }
    }
}

/// One exchangeInfo request for `symbols` (`None`: every symbol), decoded whole. The caller has
/// already waited for `gate` (this records the request and its answer in it). A -1121 answer is
/// [`InfoError::UnknownSymbol`] for one symbol and [`InfoError::UnknownSymbols`] `among` the list
/// for several; a listed symbol the answer does not hold is left for the caller to find.
pub(crate) fn exchange_info(
    client: &RestClient,
    gate: &mut RestGate,
    symbols: Option<&[String]>,
) -> Result<ExchangeInfo, InfoError> {
    let path = client.exchange_info_path(symbols);
    gate.sent(Instant::now(), client.exchange_info_weight());
    let r = client.get(&path).map_err(InfoError::Transient)?;
    gate.on_response(Instant::now(), r.status, r.retry_after, r.used_weight);
    let url = client.url(&path);
    match r.status {
        200 => {
            decode_exchange_info_all(&r.body).map_err(|error| InfoError::Unavailable(RestError::Body { url, error }))
        }
        400 if r.api_code() == Some(-1121) => {
            let error = RestError::status(url, &r);
            Err(match symbols {
                Some([one]) => InfoError::UnknownSymbol { symbol: one.to_ascii_uppercase(), error },
                Some(list) if !list.is_empty() => InfoError::UnknownSymbols {
                    symbols: list.iter().map(|s| s.to_ascii_uppercase()).collect(),
                    among: true,
                    error: Some(error),
                },
                _ => InfoError::Unavailable(error),
            })
        }
        429 | 418 => Err(InfoError::Transient(RestError::status(url, &r))),
        s if s >= 500 => Err(InfoError::Transient(RestError::status(url, &r))),
        _ => Err(InfoError::Unavailable(RestError::status(url, &r))),
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
    fn a_huge_retry_after_waits_the_cap_and_does_not_panic() {
        let t0 = Instant::now();
        assert_eq!(parse_retry_after("18446744073709551615"), Some(MAX_RETRY_AFTER));
        // Even uncapped (a Duration from elsewhere), the gate saturates instead of overflowing.
        for ra in [Duration::from_secs(u64::MAX), Duration::MAX] {
            let mut g = RestGate::new(6000);
            g.on_response(t0, 429, Some(ra), None);
            let (d, why) = g.wait(t0, 5).expect("blocked");
            assert_eq!(why, WaitReason::RetryAfter);
            assert!(d <= MAX_RETRY_AFTER, "{d:?}");
            assert_eq!(d, MAX_RETRY_AFTER);
        }
        assert_eq!(later(t0, Duration::MAX), t0 + MAX_RETRY_AFTER);
    }

    /// Serves `n` connections on `listener`, each answered with a 302 to `location`.
    fn redirect_server(listener: std::net::TcpListener, location: String, n: usize) -> std::thread::JoinHandle<()> {
        use std::io::{BufRead, BufReader, Write};
        std::thread::spawn(move || {
            for _ in 0..n {
                let Ok((sock, _)) = listener.accept() else { return };
                let mut r = BufReader::new(sock);
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|k| k > 0) && line != "\r\n" {
                    line.clear();
                }
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = r.get_mut().write_all(answer.as_bytes());
            }
        })
    }

    #[test]
    fn a_302_is_not_followed_and_is_reported_as_its_status() {
        use std::net::TcpListener;
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        other.set_nonblocking(true).unwrap();
        let port = server.local_addr().unwrap().port();
        let location =
            format!("http://127.0.0.1:{}/api/v3/depth?symbol=BTCUSDT&limit=100", other.local_addr().unwrap().port());
        let t = redirect_server(server, location, 2);
        let base = BaseUrl { tls: false, host: "127.0.0.1".into(), port };
        let tls = TlsSetup::new(None).unwrap();
        let client = RestClient::new(&base, &tls, Duration::from_secs(2));
        // A depth request: the 302 itself comes back, for the pool to count and retry.
        let r = client.depth("BTCUSDT", 100).expect("an answer");
        assert_eq!(r.status, 302);
        let e =
            RestError::status(client.url(&venue_depth_path(crate::venue::Venue::Spot, "BTCUSDT", 100)), &r).to_string();
        assert!(e.contains("HTTP 302"), "{e}");
        // exchangeInfo: a non-200 status, like any other 3xx/4xx.
        let mut gate = RestGate::new(6000);
        match exchange_info(&client, &mut gate, None) {
            Err(InfoError::Unavailable(e)) => assert!(e.to_string().contains("HTTP 302"), "{e}"),
            other => panic!("{other:?}"),
        }
        t.join().unwrap();
        // Nothing ever connected to the redirect's target.
        match other.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            r => panic!("the redirect was followed: {r:?}"),
        }
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
    fn exchange_info_asks_once_for_the_whole_list() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exchange_info_path(None), "/api/v3/exchangeInfo");
        assert_eq!(exchange_info_path(Some(&list(&["btcusdt"]))), "/api/v3/exchangeInfo?symbol=BTCUSDT");
        assert_eq!(
            exchange_info_path(Some(&list(&["btcusdt", "ETHBTC"]))),
            "/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22ETHBTC%22%5D"
        );
        // Too long for a request line: every symbol (the same weight), picked by the caller.
        let many: Vec<String> = (0..400).map(|i| format!("SYM{i}USDT")).collect();
        assert_eq!(exchange_info_path(Some(&many)), "/api/v3/exchangeInfo");
        let some: Vec<String> = (0..100).map(|i| format!("SYM{i}USDT")).collect();
        assert!(exchange_info_path(Some(&some)).len() <= MAX_SYMBOLS_QUERY);
    }

    #[test]
    fn unknown_symbols_are_one_line_naming_them() {
        let r = RestResponse {
            status: 400,
            body: br#"{"code":-1121,"msg":"Invalid symbol."}"#.to_vec(),
            retry_after: None,
            used_weight: None,
        };
        let error = RestError::status("http://x/api/v3/exchangeInfo?symbol=NOPE".into(), &r);
        let one = InfoError::UnknownSymbol { symbol: "NOPE".into(), error: error.clone() };
        assert_eq!(
            one.to_string(),
            r#"unknown symbol NOPE: GET http://x/api/v3/exchangeInfo?symbol=NOPE answered HTTP 400 {"code":-1121,"msg":"Invalid symbol."}"#
        );
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let two = InfoError::UnknownSymbols { symbols: names(&["A1", "B2"]), among: false, error: None };
        assert_eq!(two.to_string(), "unknown symbols A1, B2: exchangeInfo does not list them");
        let single = InfoError::UnknownSymbols { symbols: names(&["A1"]), among: false, error: None };
        assert_eq!(single.to_string(), "unknown symbol A1: exchangeInfo does not list it");
        let among = InfoError::UnknownSymbols { symbols: names(&["A1", "B2", "C3"]), among: true, error: Some(error) };
        assert!(among.to_string().starts_with("unknown symbol among A1, B2, C3: GET http://x/"), "{among}");
        let many: Vec<String> = (0..12).map(|i| format!("S{i}")).collect();
        let long = InfoError::UnknownSymbols { symbols: many, among: false, error: None }.to_string();
        assert!(long.contains("S9 and 2 more:") && !long.contains("S10"), "{long}");
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
