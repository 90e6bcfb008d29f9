//! Before the loop: one exchangeInfo request (weight 20) for every symbol, and what it decides:
//! the symbol list (`--symbol ALL`, `--quote`), each book's tick size, the weight budget the
//! snapshot scheduler plans with (exchangeInfo's REQUEST_WEIGHT limit, less the headroom) and the
//! snapshot depth (`--depth-limit auto`).
//!
//! [`resolve`] runs it on the caller's thread before the pipeline is built (with `--symbol ALL`
//! the books are only known from its answer) and leaves the answer in the [`LiveConfig`], so
//! [`super::run`] does not ask again; a configuration that was not resolved (an explicit list,
//! as a library caller may hand over) is fetched by `run` itself. Not here: snapshots (the loop
//! asks the REST pool) and connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{LiveConfig, LiveError};
use crate::binance::rest::{self, InfoError, RestClient, RestError, RestGate};
use crate::binance::schedule::{auto_depth_limit_for, planned_budget, HEADROOM_PERCENT};
use crate::binance::url::check_symbol;
use crate::binance::{ExchangeInfo, SymbolInfo};
use crate::net::backoff::Backoff;
use crate::notice::{Notice, NoticeLog, Sym};
use crate::pipeline::Pipeline;

/// What exchangeInfo said, as the loop needs it.
pub(crate) struct Resolved {
    /// The answer, or why it could not be used (the ticks are then inferred from the snapshots).
    info: Result<ExchangeInfo, RestError>,
    /// The URL asked, for messages about its body.
    url: String,
    /// The gate after the request: its weight, the server's count, any Retry-After, and the
    /// planned budget. The REST pool starts from it.
    pub(crate) gate: RestGate,
}

impl Resolved {
    /// Sets each book's tick size from its filters, telling what cannot be used.
    pub(crate) fn apply(&self, cfg: &LiveConfig, p: &mut Pipeline, log: &mut NoticeLog) {
        let now = Instant::now();
        let info = match &self.info {
            Ok(info) => info,
            Err(error) => {
                for sym in &cfg.symbols {
                    log.emit(&Notice::TickInferred { symbol: Sym::new(sym), error: error.clone() }, now);
                }
                return;
            }
        };
        let by_name: HashMap<&str, &SymbolInfo> = info.symbols.iter().map(|s| (s.symbol.as_str(), s)).collect();
        for (i, sym) in cfg.symbols.iter().enumerate() {
            let Some(entry) = by_name.get(sym.to_ascii_uppercase().as_str()) else { continue };
            match &entry.filters {
                Ok(f) => {
                    if let Some(t) = f.tick {
                        p.set_tick(i, t);
                    }
                    // Futures prints prices at the contract's pricePrecision ("64336.10").
                    if let (crate::venue::Venue::UsdM, Some(d)) = (cfg.venue, entry.price_precision) {
                        p.set_price_decimals(i, d);
                    }
                }
                Err(e) => {
                    let error = RestError::Body { url: self.url.clone(), error: e.clone() };
                    log.emit(&Notice::TickInferred { symbol: Sym::new(sym), error }, now);
                }
            }
            if !entry.is_trading() && !entry.status.is_empty() {
                log.emit(&Notice::NotTrading { symbol: Sym::new(sym), status: entry.status.clone() }, now);
            }
        }
    }
}

/// `--symbol ALL`: which symbols.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllSymbols {
    /// Only those quoted in this asset (`--quote`), any case.
    pub quote: Option<String>,
}

/// Asks exchangeInfo once, before the pipeline is built, and applies the answer to `cfg`:
/// `symbols` (with `--symbol ALL`: every TRADING symbol, in exchangeInfo's order, narrowed by
/// `--quote`; symbols that are not plain ASCII letters and digits are left out and counted),
/// `depth_limit` (with `--depth-limit auto`), the planned budget, and `duration` less the time
/// this took (so `--duration` still counts from the start). An unknown symbol is a configuration
/// error; network failures, 429/418 and 5xx are retried until they pass, `stop` is set or the
/// duration is spent. Returns false when stopped first.
pub fn resolve(cfg: &mut LiveConfig, log: &mut NoticeLog, stop: &AtomicBool) -> Result<bool, LiveError> {
    let started = Instant::now();
    let deadline = cfg.duration.and_then(|d| started.checked_add(d));
    let client = RestClient::new(&cfg.rest, &cfg.tls, cfg.rest_timeout).with_venue(cfg.venue);
    let mut gate = RestGate::new(cfg.weight_per_minute);
    let list = cfg.all_symbols.is_none().then_some(cfg.symbols.as_slice());
    let Some(resolved) = fetch(cfg, &client, &mut gate, list, log, stop, deadline)? else {
        return Ok(false);
    };
    let mut skipped = 0;
    if let Some(all) = &cfg.all_symbols {
        let info = match &resolved.info {
            Ok(info) => info,
            Err(error) => return Err(LiveError::NoSymbolList(error.clone())),
        };
        let mut symbols = Vec::new();
        // Futures: TRADING perpetual contracts only (no quarterly deliveries).
        let perpetual = |s: &&SymbolInfo| cfg.venue == crate::venue::Venue::Spot || s.contract_type == "PERPETUAL";
        for s in info.trading(all.quote.as_deref()).filter(perpetual) {
            // Stream names and URLs take ASCII letters and digits (url::check_symbol): Binance's
            // few Unicode symbols are left out rather than sent escaped into every layer.
            if check_symbol(&s.symbol).is_ok() {
                symbols.push(s.symbol.clone());
            } else {
                skipped += 1;
            }
        }
        if symbols.is_empty() {
            return Err(LiveError::NoTradingSymbols { quote: all.quote.clone() });
        }
        cfg.symbols = symbols;
    }
    let budget = resolved.gate.limit();
    let spent = u32::try_from(resolved.gate.totals().weight).unwrap_or(u32::MAX);
    let auto =
        cfg.depth_auto.then(|| auto_depth_limit_for(cfg.venue, cfg.symbols.len(), budget, cfg.sync_within, spent));
    if let Some(a) = auto {
        cfg.depth_limit = a.limit;
    }
    if cfg.all_symbols.is_some() || auto.is_some() {
        let server = resolved.info.as_ref().ok().and_then(|i| i.request_weight_per_minute);
        let plan = Notice::SnapshotPlan {
            symbols: cfg.symbols.len(),
            skipped,
            budget,
            server_limit: server,
            headroom_percent: HEADROOM_PERCENT,
            depth_limit: cfg.depth_limit,
            auto: auto.map(|a| (cfg.sync_within, a.fits)),
        };
        log.emit(&plan, Instant::now());
    }
    cfg.duration = cfg.duration.map(|d| d.saturating_sub(started.elapsed()));
    cfg.resolved = Some(Arc::new(resolved));
    Ok(true)
}

/// One exchangeInfo request for `list` (`None`: every symbol), retried while worth it, every
/// listed symbol checked against the answer, and the budget planned from its rate limits.
/// `None` when `stop` or the deadline came first.
pub(crate) fn fetch(
    cfg: &LiveConfig,
    client: &RestClient,
    gate: &mut RestGate,
    list: Option<&[String]>,
    log: &mut NoticeLog,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<Option<Resolved>, LiveError> {
    let mut backoff = Backoff::new(cfg.backoff_min.max(Duration::from_millis(200)), cfg.backoff_max, seed());
    let info = loop {
        if let Some((d, _)) = gate.wait(Instant::now(), client.exchange_info_weight()) {
            if !sleep_checked(d, stop, deadline) {
                return Ok(None);
            }
        }
        match rest::exchange_info(client, gate, list) {
            Ok(info) => break Ok(info),
            Err(InfoError::UnknownSymbols { symbols, among: true, error }) => {
                return Err(LiveError::UnknownSymbol(which_unknown(client, gate, symbols, error)))
            }
            Err(e @ (InfoError::UnknownSymbol { .. } | InfoError::UnknownSymbols { .. })) => {
                return Err(LiveError::UnknownSymbol(e))
            }
            Err(InfoError::Unavailable(error)) => break Err(error),
            Err(InfoError::Transient(error)) => {
                let d = backoff.next_delay();
                log.emit(&Notice::ExchangeInfoRetry { error, retry_in: d }, Instant::now());
                if !sleep_checked(d, stop, deadline) {
                    return Ok(None);
                }
            }
        }
    };
    if let (Ok(info), Some(list)) = (&info, list) {
        // A list asked as every symbol (too long for a request line) is checked here.
        let missing: Vec<String> =
            list.iter().filter(|s| info.get(s).is_none()).map(|s| s.to_ascii_uppercase()).collect();
        if !missing.is_empty() {
            return Err(LiveError::UnknownSymbol(InfoError::UnknownSymbols {
                symbols: missing,
                among: false,
                error: None,
            }));
        }
    }
    let server = info.as_ref().ok().and_then(|i| i.request_weight_per_minute);
    // Without a limit in the answer, the venue's documented one (spot 6,000, futures 2,400).
    let server = server.or(Some(cfg.venue.weight_per_minute()));
    gate.set_limit(planned_budget(cfg.weight_per_minute, server));
    Ok(Some(Resolved { info, url: client.url(&client.exchange_info_path(list)), gate: gate.clone() }))
}

/// Binance refused a list with -1121: asks for every symbol (one more request of 20) to name the
/// unknown ones; when that fails, the error says they are among the list.
fn which_unknown(client: &RestClient, gate: &mut RestGate, list: Vec<String>, error: Option<RestError>) -> InfoError {
    let among = |symbols, error| InfoError::UnknownSymbols { symbols, among: true, error };
    if gate.wait(Instant::now(), client.exchange_info_weight()).is_some() {
        return among(list, error);
    }
    let Ok(all) = rest::exchange_info(client, gate, None) else { return among(list, error) };
    let mut missing: Vec<String> = list.iter().filter(|s| all.get(s).is_none()).cloned().collect();
    match (missing.len(), error) {
        (0, error) => among(list, error),
        (1, Some(error)) => InfoError::UnknownSymbol { symbol: missing.remove(0), error },
        (_, error) => InfoError::UnknownSymbols { symbols: missing, among: false, error },
    }
}

/// Sleeps up to `d`, waking early for a stop request or the deadline. Returns false if stopped.
fn sleep_checked(d: Duration, stop: &AtomicBool, deadline: Option<Instant>) -> bool {
    // `d` may come from a peer's Retry-After: saturate rather than panic on overflow.
    let end = rest::later(Instant::now(), d);
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|t| Instant::now() >= t) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}
