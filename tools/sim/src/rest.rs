//! The REST responder: `GET /api/v3/depth`, `/api/v3/exchangeInfo`, `/api/v3/ping`,
//! `/api/v3/time`, with Binance's error bodies, request weights in `X-MBX-USED-WEIGHT-1M`, and the
//! injected REST faults (429/418 with `Retry-After`, slow answers).
//!
//! Depth answers are the reference book at the moment of the request, `lastUpdateId` being the
//! `u` of the last published diff, so a client following the official procedure always
//! converges to it.
//!
//! Binance's REST limits, per peer IP (every client on loopback is one IP): request weight per
//! fixed wall-clock minute (Binance resets it at each minute), answered 429 with `Retry-After`
//! (the seconds to the minute's end) once over the limit; and the escalation: a request that
//! arrives inside the `Retry-After` of a 429 its IP was sent (by the weight limit or an injected
//! one; the last 100 ms excepted, for clients that count from their request) starts a ban, answered 418 with `Retry-After` the ban's length, and every request during
//! it gets 418 with what is left. Bans double for each earlier ban of the IP, up to a cap
//! (Binance: "from 2 minutes to 3 days"). Every answer carries `X-MBX-USED-WEIGHT-1M`. This module
//! builds responses; the connection module reads requests and writes them.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::faults::Counters;
use crate::http::RequestHead;
use crate::hub::{lock, now_us, Hub};
use crate::limits::{secs_until, BanRule, RestLimits};
use crate::symbols::{exchange_info_json, SymbolSpec};

/// A response ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Hold the answer this long before writing it (injected slowness).
    pub delay: Option<Duration>,
}

/// REST-side shared state.
#[derive(Debug)]
pub(crate) struct RestState {
    /// Weight and bans per IP.
    pub limits: Mutex<RestLimits>,
    /// Weight per minute above which requests get 429 (Binance: 6000). `None`: unlimited.
    pub weight_limit: Option<u32>,
    /// How a 429 ignored escalates to a 418 ban. `None`: never ban.
    pub ban: Option<BanRule>,
    /// USDⓈ-M futures: `/fapi/v1/...` is served instead of `/api/v3/...`.
    pub futures: bool,
}

/// USDⓈ-M futures' `GET /fapi/v1/depth` weight by limit: 5, 10, 20, 50: 2; 100: 5; 500: 10;
/// 1000: 20.
pub(crate) fn futures_depth_weight(limit: u32) -> u32 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// The `limit` values `GET /fapi/v1/depth` takes.
const FUTURES_DEPTH_LIMITS: [u64; 7] = [5, 10, 20, 50, 100, 500, 1000];

/// Binance's depth weight by limit (in force since 2023-10-19).
pub(crate) fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

const MAX_DEPTH_LIMIT: u32 = 5000;

fn err_body(code: i64, msg: &str) -> String {
    format!("{{\"code\":{code},\"msg\":\"{msg}\"}}")
}

fn too_much_weight(limit: u32) -> String {
    err_body(
        -1003,
        &format!("Too much request weight used; current limit is {limit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."),
    )
}

fn banned_until(until_ms: i64) -> String {
    err_body(
        -1003,
        &format!("Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for live updates to avoid bans."),
    )
}

/// Answers one request from `peer`.
pub(crate) fn respond(hub: &Hub, rest: &RestState, head: &RequestHead, peer: IpAddr) -> Response {
    Counters::bump(&hub.counters.rest_requests);
    let path = head.path();
    let query = head.query();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    // Each venue serves its own paths; the other's are unknown (404), as on Binance's hosts.
    let path = match (rest.futures, path) {
        (true, p) if p.starts_with("/fapi/v1/") => p,
        (true, _) => "/unknown",
        (false, p) if p.starts_with("/fapi/") => "/unknown",
        (false, p) => p,
    };
    match path {
        "/api/v3/depth" | "/fapi/v1/depth" => Counters::bump(&hub.counters.depth_requests),
        "/api/v3/exchangeInfo" | "/fapi/v1/exchangeInfo" => Counters::bump(&hub.counters.exchange_info_requests),
        _ => {}
    }

    let weight = match path {
        "/fapi/v1/depth" => {
            let limit = param("limit").and_then(|l| l.parse::<u32>().ok()).unwrap_or(500);
            futures_depth_weight(limit)
        }
        "/fapi/v1/exchangeInfo" | "/fapi/v1/ping" | "/fapi/v1/time" => 1,
        "/api/v3/depth" => {
            let limit = param("limit").and_then(|l| l.parse::<u32>().ok()).unwrap_or(100);
            depth_weight(limit.min(MAX_DEPTH_LIMIT))
        }
        "/api/v3/exchangeInfo" => 20,
        "/api/v3/ping" | "/api/v3/time" => 1,
        _ => 0,
    };
    let now_ms = now_us() / 1000;
    let (used, banned) = {
        let mut l = lock(&rest.limits);
        let used = l.charge(peer, weight, now_ms);
        (used, l.check_ban(peer, now_ms, rest.ban))
    };
    let mut resp = Response {
        status: 200,
        headers: vec![("X-MBX-USED-WEIGHT-1M", used.to_string())],
        body: String::new(),
        delay: None,
    };

    // A ban first: nothing else is served to a banned IP.
    let mut f = lock(&hub.faults.rest);
    resp.delay = f.delay;
    if let Some(b) = banned {
        if b.new_ban {
            Counters::bump(&hub.counters.rest_bans);
        }
        Counters::bump(&hub.counters.rest_418_sent);
        resp.status = 418;
        resp.headers.push(("Retry-After", b.retry_after_secs.to_string()));
        resp.body = banned_until(b.until_ms);
        return resp;
    }
    // Injected rejections next: they model an exchange that is already angry with us. An
    // injected 429 asks for a wait like any other, and breaking it bans.
    if f.reject_429 > 0 {
        f.reject_429 -= 1;
        Counters::bump(&hub.counters.rest_429_sent);
        resp.status = 429;
        resp.headers.push(("Retry-After", f.retry_after_secs.to_string()));
        resp.body = too_much_weight(rest.weight_limit.unwrap_or(6000));
        // The Retry-After runs from when the client gets the answer (a slow answer is late).
        let delivered = now_ms + resp.delay.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let until = delivered.saturating_add(i64::from(f.retry_after_secs) * 1000);
        drop(f);
        lock(&rest.limits).notice(peer, delivered, until);
        return resp;
    }
    if f.reject_418 > 0 {
        f.reject_418 -= 1;
        Counters::bump(&hub.counters.rest_418_sent);
        resp.status = 418;
        resp.headers.push(("Retry-After", f.retry_after_secs.to_string()));
        resp.body = banned_until(now_ms + i64::from(f.retry_after_secs) * 1000);
        return resp;
    }
    drop(f);
    if resp.delay.is_some() {
        Counters::bump(&hub.counters.rest_delayed);
    }
    if let Some(limit) = rest.weight_limit {
        if used > limit && weight > 0 {
            Counters::bump(&hub.counters.rest_429_sent);
            // The weight resets with the wall-clock minute: that is the wait that avoids a ban.
            let minute_end = (now_ms.div_euclid(60_000) + 1) * 60_000;
            resp.status = 429;
            resp.headers.push(("Retry-After", secs_until(minute_end, now_ms).to_string()));
            resp.body = too_much_weight(limit);
            let delivered = now_ms + resp.delay.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            lock(&rest.limits).notice(peer, delivered, minute_end.max(delivered));
            return resp;
        }
    }

    if head.method != "GET" {
        resp.status = 405;
        resp.body = err_body(-1000, "Only GET is supported by this simulator.");
        return resp;
    }
    let (status, body) = match path {
        "/api/v3/depth" => depth(hub, param("symbol"), param("limit"), param("symbolStatus")),
        "/api/v3/exchangeInfo" => exchange_info(hub, param("symbol"), param("symbols"), now_ms, rest.weight_limit),
        "/fapi/v1/depth" => futures_depth(hub, param("symbol"), param("limit"), now_ms),
        // Futures' exchangeInfo takes no symbol parameter: every contract, always.
        "/fapi/v1/exchangeInfo" => exchange_info(hub, None, None, now_ms, rest.weight_limit),
        "/fapi/v1/ping" => (200, "{}".to_string()),
        "/fapi/v1/time" => (200, format!("{{\"serverTime\":{now_ms}}}")),
        "/api/v3/ping" => (200, "{}".to_string()),
        "/api/v3/time" => (200, format!("{{\"serverTime\":{now_ms}}}")),
        _ => (404, err_body(-1000, "Unknown path.")),
    };
    resp.status = status;
    resp.body = body;
    resp
}

fn depth(hub: &Hub, symbol: Option<&str>, limit: Option<&str>, status: Option<&str>) -> (u16, String) {
    let Some(symbol) = symbol.filter(|s| !s.is_empty()) else {
        return (400, err_body(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."));
    };
    let limit = match limit {
        None => 100,
        Some(l) if l.is_empty() || l.len() > 20 || !l.bytes().all(|b| b.is_ascii_digit()) => {
            return (
                400,
                err_body(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."),
            );
        }
        Some(l) => match l.parse::<u64>() {
            Ok(0) | Err(_) => return (400, err_body(-1130, "Data sent for parameter 'limit' is not valid.")),
            Ok(n) => n.min(u64::from(MAX_DEPTH_LIMIT)) as usize,
        },
    };
    let books = lock(&hub.books);
    // Binance symbols are uppercase in REST; a lowercase symbol is an invalid symbol there.
    let Some(sb) = books.iter().find(|b| b.spec.symbol == symbol) else {
        return (400, err_body(-1121, "Invalid symbol."));
    };
    if let Some(want) = status {
        if !matches!(want, "TRADING" | "HALT" | "BREAK") {
            return (400, err_body(-1122, "Invalid symbolStatus."));
        }
        if want != sb.spec.status.as_str() {
            return (400, err_body(-1220, "The symbol's status does not match the requested symbolStatus."));
        }
    }
    match &sb.history {
        Some(h) => (200, h.current().to_book(&sb.spec.symbol, Some(limit)).to_depth_json()),
        None => (
            503,
            err_body(-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
        ),
    }
}

/// `GET /fapi/v1/depth`: default 500 levels; a limit futures does not list is refused with -1130
/// (the simulator's reading: Binance documents the valid limits, not the answer to others).
fn futures_depth(hub: &Hub, symbol: Option<&str>, limit: Option<&str>, now_ms: i64) -> (u16, String) {
    let Some(symbol) = symbol.filter(|s| !s.is_empty()) else {
        return (400, err_body(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."));
    };
    let limit = match limit {
        None => 500,
        Some(l) if l.is_empty() || l.len() > 20 || !l.bytes().all(|b| b.is_ascii_digit()) => {
            return (
                400,
                err_body(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."),
            );
        }
        Some(l) => match l.parse::<u64>() {
            Ok(n) if FUTURES_DEPTH_LIMITS.contains(&n) => n as usize,
            _ => return (400, err_body(-1130, "Data sent for parameter 'limit' is not valid.")),
        },
    };
    let books = lock(&hub.books);
    let Some(sb) = books.iter().find(|b| b.spec.symbol == symbol) else {
        return (400, err_body(-1121, "Invalid symbol."));
    };
    let (pd, qd) = sb.spec.decimals();
    match &sb.history {
        // E is the answer's time, T the book's (a millisecond before: as in Binance's example).
        Some(h) => {
            (200, h.current().to_book(&sb.spec.symbol, Some(limit)).to_futures_depth_json(pd, qd, now_ms, now_ms - 1))
        }
        None => (
            503,
            err_body(-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
        ),
    }
}

fn exchange_info(
    hub: &Hub,
    symbol: Option<&str>,
    symbols: Option<&str>,
    now_ms: i64,
    weight_limit: Option<u32>,
) -> (u16, String) {
    let books = lock(&hub.books);
    let all: Vec<&SymbolSpec> = books.iter().map(|b| &b.spec).collect();
    let wanted: Vec<String> = match (symbol, symbols) {
        (Some(s), _) => vec![s.to_string()],
        (None, Some(list)) => match serde_json::from_str::<Vec<String>>(list) {
            Ok(v) => v,
            Err(_) => return (400, err_body(-1100, "Illegal characters found in parameter 'symbols'.")),
        },
        (None, None) => return (200, exchange_info_json(&all, now_ms, weight_limit)),
    };
    let mut picked = Vec::with_capacity(wanted.len());
    for w in &wanted {
        match all.iter().find(|s| s.symbol == *w) {
            Some(s) => picked.push(*s),
            None => return (400, err_body(-1121, "Invalid symbol.")),
        }
    }
    (200, exchange_info_json(&picked, now_ms, weight_limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futures_weights_follow_the_usdm_table() {
        let w: Vec<u32> = FUTURES_DEPTH_LIMITS.iter().map(|&l| futures_depth_weight(l as u32)).collect();
        assert_eq!(w, [2, 2, 2, 2, 5, 10, 20]);
    }

    #[test]
    fn weights_follow_binance_table() {
        assert_eq!(depth_weight(1), 5);
        assert_eq!(depth_weight(100), 5);
        assert_eq!(depth_weight(101), 25);
        assert_eq!(depth_weight(500), 25);
        assert_eq!(depth_weight(501), 50);
        assert_eq!(depth_weight(1000), 50);
        assert_eq!(depth_weight(1001), 250);
        assert_eq!(depth_weight(5000), 250);
    }
}
