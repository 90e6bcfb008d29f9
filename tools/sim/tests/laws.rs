//! Binance's laws as a client meets them, each enforced by default and counted: 1024 streams per
//! connection (URL and SUBSCRIBE), 300 upgrade attempts per 5 minutes per IP (shortened here),
//! 5 incoming messages a second, REST weight answered 429 and a request inside a 429's
//! Retry-After answered 418 with a doubling ban, and exchangeInfo for one, several or all symbols
//! of a generated market with statuses, quote assets and filters.

mod util;

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tickfeed_sim::{FaultPlan, Pacing, RestReject, Sim, SimConfig, SimHandle};
use tungstenite::Message;
use util::{get, next_text, wait_for, ws, RawWs};

fn sim_with(faults: FaultPlan) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::Rate(1_000),
        levels_per_side: 200,
        faults,
        ..SimConfig::default()
    })
    .unwrap()
}

fn no_ping() -> FaultPlan {
    FaultPlan { ping_interval: None, ..FaultPlan::default() }
}

/// An upgrade request as a client sends it; the status, headers and body of a refusal (the body
/// is empty for a 101).
fn upgrade(sim: &SimHandle, target: &str) -> util::HttpResponse {
    let (mut s, head) = util::send_upgrade(sim, target);
    let mut lines = head.trim_end().split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut r = util::HttpResponse { status, headers, body: String::new() };
    if status != 101 {
        let len: usize = r.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        r.body = String::from_utf8(body).unwrap();
    }
    r
}

fn streams(n: usize, from: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("s{i}usdt@trade")).collect()
}

// ---- 1024 streams per connection ----

#[test]
fn a_connection_takes_at_most_1024_streams() {
    let sim = sim_with(no_ping());
    assert_eq!(FaultPlan::default().max_streams_per_connection, Some(1024));
    // Exactly 1024 distinct streams (plus a repeat, which is the same subscription) is fine.
    let mut names = streams(1024, 0);
    names.push(names[0].clone());
    assert_eq!(upgrade(&sim, &format!("/stream?streams={}", names.join("/"))).status, 101);
    // 1025 is refused before the upgrade, on /stream and on /ws alike.
    let r = upgrade(&sim, &format!("/stream?streams={}", streams(1025, 0).join("/")));
    assert_eq!(r.status, 400);
    assert_eq!(r.body, r#"{"code":-1101,"msg":"Too many streams: 1025 requested, at most 1024 per connection."}"#);
    assert_eq!(upgrade(&sim, &format!("/ws/{}", streams(1025, 0).join("/"))).status, 400);
    assert_eq!(sim.counters().streams_refused, 2);

    // SUBSCRIBE past the limit: refused whole, in Binance's documented error shape.
    let mut w = ws(&sim, &format!("/stream?streams={}", streams(1020, 0).join("/")));
    let subscribe = |w: &mut tungstenite::WebSocket<util::Stream>, names: &[String], id: u32| {
        let req = serde_json::json!({"method": "SUBSCRIBE", "params": names, "id": id});
        w.send(Message::text(req.to_string())).unwrap();
        next_text(w, Duration::from_secs(5))
    };
    // s1019 is already there: 1020 + 4 new = 1024 is fine.
    assert_eq!(subscribe(&mut w, &streams(5, 1019), 1), r#"{"result":null,"id":1}"#);
    let r = subscribe(&mut w, &streams(1, 2000), 2);
    assert!(r.starts_with(r#"{"code":2,"msg":"Invalid request: too many streams: 1025 would be subscribed"#), "{r}");
    w.send(Message::text(r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#)).unwrap();
    let list: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(5))).unwrap();
    assert_eq!(list["result"].as_array().unwrap().len(), 1024);
    let c = sim.counters();
    assert_eq!((c.streams_refused, c.control_errors, c.disconnects_rate_limit), (3, 1, 0));
}

// ---- 300 connection attempts per 5 minutes per IP ----

#[test]
fn connection_attempts_past_the_window_are_answered_429() {
    assert_eq!(
        (FaultPlan::default().max_connect_attempts, FaultPlan::default().connect_attempt_window),
        (Some(300), Duration::from_secs(300))
    );
    let sim = sim_with(FaultPlan {
        max_connect_attempts: Some(5),
        connect_attempt_window: Duration::from_secs(2),
        ..no_ping()
    });
    for _ in 0..5 {
        assert_eq!(upgrade(&sim, "/ws").status, 101);
        // REST requests are not upgrade attempts.
        assert_eq!(get(&sim, "/api/v3/ping").status, 200);
    }
    let r = upgrade(&sim, "/stream?streams=btcusdt@trade");
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(r.body.starts_with(r#"{"code":-1003,"msg":"Too many connection attempts"#), "{}", r.body);
    // Refused at once again: a refusal is an attempt too.
    let r = upgrade(&sim, "/ws");
    assert_eq!(r.status, 429);
    assert!(wait_for(Duration::from_secs(2), || sim.counters().ws_connections == 5));
    let c = sim.counters();
    assert_eq!((c.connect_attempts, c.connect_attempts_refused), (7, 2));
    // The window slides: waiting the Retry-After finds room again.
    std::thread::sleep(Duration::from_secs(retry_after(&r)));
    assert_eq!(upgrade(&sim, "/ws").status, 101);
    // Off switch, at runtime.
    sim.faults().set_connect_attempt_limit(None, Duration::from_secs(300));
    for _ in 0..10 {
        assert_eq!(upgrade(&sim, "/ws").status, 101);
    }
    assert_eq!(sim.counters().connect_attempts_refused, 2);
}

// ---- 5 incoming messages a second ----

fn closed_with(raw: &mut RawWs, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match raw.read_frame() {
            Ok(f) if f.opcode == 0x8 => return Some(u16::from_be_bytes([f.payload[0], f.payload[1]])),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    panic!("not closed within {within:?}");
}

#[test]
fn five_messages_a_second_is_the_default_limit() {
    assert_eq!(FaultPlan::default().max_incoming_per_sec, Some(5));
    let sim = sim_with(no_ping());
    // Four a second for 2.5 s, pings and control messages mixed: fine.
    let mut ok = ws(&sim, "/ws");
    for i in 0..10 {
        if i % 2 == 0 {
            ok.send(Message::Ping(vec![1, 2].into())).unwrap();
        } else {
            ok.send(Message::text(format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}"#))).unwrap();
            assert_eq!(next_text(&mut ok, Duration::from_secs(5)), format!(r#"{{"result":[],"id":{i}}}"#));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(sim.counters().disconnects_rate_limit, 0);
    // Six within a second, unsolicited pongs counting like anything else: closed with 1008.
    let mut raw = RawWs::open(&sim, "/ws");
    for _ in 0..3 {
        raw.send(0xA, b"").unwrap();
        raw.send(0x1, br#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#).unwrap();
    }
    assert_eq!(closed_with(&mut raw, Duration::from_secs(5)), Some(1008));
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_rate_limit == 1));

    // The limit off: twenty in a burst are fine.
    sim.faults().set_max_incoming_per_sec(None);
    let mut w = ws(&sim, "/ws");
    for id in 0..20 {
        w.send(Message::text(format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#))).unwrap();
    }
    for id in 0..20 {
        assert_eq!(next_text(&mut w, Duration::from_secs(5)), format!(r#"{{"result":[],"id":{id}}}"#));
    }
    assert_eq!(sim.counters().disconnects_rate_limit, 1);
}

#[test]
fn pongs_count_like_any_message_even_to_the_simulators_own_pings() {
    // As on Binance: a client that answers 10 pings a second sends 10 messages a second.
    let sim = sim_with(no_ping());
    sim.faults().set_ping(Some(Duration::from_millis(100)), Duration::from_secs(5));
    let mut raw = RawWs::open(&sim, "/ws");
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < Duration::from_millis(2500) {
        let Ok(f) = raw.read_frame() else { break };
        if f.opcode == 0x8 {
            closed = true;
            break;
        }
        if f.opcode == 0x9 {
            let _ = raw.send(0xA, &f.payload);
        }
    }
    assert!(closed, "a client answering every ping of a 100 ms pace broke the 5-messages law");
    let start = Instant::now();
    while sim.counters().disconnects_rate_limit == 0 && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = sim.counters();
    assert_eq!(c.disconnects_rate_limit, 1, "{c:?}");
}

// ---- REST: 429, then 418 for not backing off ----

/// Past the simulator's allowance for requests already in flight when a 429 arrives (100 ms).
const IN_HAND: Duration = Duration::from_millis(150);

#[test]
fn a_request_already_in_flight_when_the_429_came_is_not_a_failure_to_back_off() {
    let sim = Sim::start(SimConfig {
        tls: false,
        levels_per_side: 100,
        rest_ban_first: Some(Duration::from_secs(2)),
        ..SimConfig::default()
    })
    .unwrap();
    sim.faults().reject_rest(RestReject::TooManyRequests, 1, 1);
    let depth = "/api/v3/depth?symbol=BTCUSDT&limit=100";
    assert_eq!(get(&sim, depth).status, 429);
    // Sent before the client could have read the 429 (a second connection's request).
    assert_eq!(get(&sim, depth).status, 200);
    assert_eq!(sim.counters().rest_bans, 0);
}

fn weight(r: &util::HttpResponse) -> u32 {
    r.header("x-mbx-used-weight-1m").expect("X-MBX-USED-WEIGHT-1M on every answer").parse().unwrap()
}

fn retry_after(r: &util::HttpResponse) -> u64 {
    r.header("retry-after").expect("Retry-After").parse().unwrap()
}

fn ms_into_minute() -> u64 {
    (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 60_000) as u64
}

#[test]
fn over_the_weight_limit_is_429_until_the_minute_ends_and_ignoring_it_is_418() {
    // Weight resets with the wall-clock minute: keep clear of its end.
    if ms_into_minute() > 57_000 {
        std::thread::sleep(Duration::from_millis(60_500 - ms_into_minute()));
    }
    let sim = Sim::start(SimConfig {
        tls: false,
        levels_per_side: 100,
        weight_limit: Some(60),
        rest_ban_first: Some(Duration::from_secs(2)),
        ..SimConfig::default()
    })
    .unwrap();
    for n in 1..=3 {
        let r = get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT");
        assert_eq!((r.status, weight(&r)), (200, 20 * n), "exchangeInfo weighs 20");
    }
    let r = get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT");
    assert_eq!((r.status, weight(&r)), (429, 80));
    let left = (60_000 - ms_into_minute()).div_ceil(1000);
    assert!(
        retry_after(&r).abs_diff(left) <= 1,
        "Retry-After is the rest of the minute: {} vs {left}",
        retry_after(&r)
    );
    assert_eq!(r.json()["code"], -1003);
    assert!(r.json()["msg"].as_str().unwrap().contains("current limit is 60 request weight per 1 MINUTE"));
    // Asking again inside the Retry-After, with the 429 in hand: banned.
    std::thread::sleep(IN_HAND);
    let r = get(&sim, "/api/v3/ping");
    assert_eq!((r.status, retry_after(&r)), (418, 2));
    assert!(r.json()["msg"].as_str().unwrap().contains("IP banned until"), "{}", r.body);
    assert!(weight(&r) > 80);
    let c = sim.counters();
    assert_eq!((c.rest_429_sent, c.rest_418_sent, c.rest_bans), (1, 1, 1));
}

#[test]
fn a_request_inside_a_429s_retry_after_is_banned_and_bans_double() {
    let sim = Sim::start(SimConfig {
        tls: false,
        levels_per_side: 100,
        rest_ban_first: Some(Duration::from_secs(2)),
        rest_ban_max: Duration::from_secs(3),
        ..SimConfig::default()
    })
    .unwrap();
    let f = sim.faults();
    let depth = "/api/v3/depth?symbol=BTCUSDT&limit=5";
    // A 429 honoured: no ban.
    f.reject_rest(RestReject::TooManyRequests, 1, 1);
    let r = get(&sim, depth);
    assert_eq!((r.status, retry_after(&r)), (429, 1));
    std::thread::sleep(Duration::from_millis(1_050));
    assert_eq!(get(&sim, depth).status, 200);
    assert_eq!(sim.counters().rest_bans, 0);
    // A 429 ignored: 418 for the first ban's length, on every endpoint, until it ends.
    f.reject_rest(RestReject::TooManyRequests, 1, 1);
    assert_eq!(get(&sim, depth).status, 429);
    // A request sent the moment the 429 arrived was on its way already; one sent with the 429 in
    // hand (past the in-flight allowance) breaks the wait.
    std::thread::sleep(IN_HAND);
    let r = get(&sim, depth);
    assert_eq!((r.status, retry_after(&r)), (418, 2));
    let r = get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT");
    assert_eq!(r.status, 418);
    assert!((1..=2).contains(&retry_after(&r)));
    assert!(weight(&r) > 0);
    std::thread::sleep(Duration::from_millis(2_050));
    assert_eq!(get(&sim, depth).status, 200, "the ban is over");
    // A repeat offender's ban doubles (4 s), capped here at 3 s.
    f.reject_rest(RestReject::TooManyRequests, 1, 1);
    assert_eq!(get(&sim, depth).status, 429);
    std::thread::sleep(IN_HAND);
    let r = get(&sim, depth);
    assert_eq!((r.status, retry_after(&r)), (418, 3));
    let c = sim.counters();
    assert_eq!((c.rest_429_sent, c.rest_418_sent, c.rest_bans), (3, 3, 2));
}

// ---- exchangeInfo for one, several or all symbols of a generated market ----

fn market(generated: usize) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::RealTime,
        levels_per_side: 200,
        generated_symbols: generated,
        faults: no_ping(),
        ..SimConfig::default()
    })
    .unwrap()
}

#[test]
fn exchange_info_for_one_several_or_all_symbols() {
    let sim = market(300);
    assert_eq!(sim.symbols().len(), 301);
    let all = get(&sim, "/api/v3/exchangeInfo");
    assert_eq!(all.status, 200);
    let w0 = weight(&all);
    let v = all.json();
    assert_eq!(
        v["rateLimits"][0],
        serde_json::json!({"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000})
    );
    let kinds: Vec<&str> =
        v["rateLimits"].as_array().unwrap().iter().map(|l| l["rateLimitType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["REQUEST_WEIGHT", "ORDERS", "ORDERS", "RAW_REQUESTS"]);
    let symbols = v["symbols"].as_array().unwrap();
    assert_eq!(symbols.len(), 301);
    let count = |key: &str, val: &str| symbols.iter().filter(|s| s[key] == val).count();
    assert!(count("status", "TRADING") > 250 && count("status", "BREAK") > 0 && count("status", "HALT") > 0);
    assert!(count("quoteAsset", "USDT") > 100 && count("quoteAsset", "BTC") > 20 && count("quoteAsset", "FDUSD") > 10);
    let mut ticks = std::collections::HashSet::new();
    for s in symbols {
        let name = s["symbol"].as_str().unwrap();
        assert_eq!(format!("{}{}", s["baseAsset"].as_str().unwrap(), s["quoteAsset"].as_str().unwrap()), name);
        let filters = s["filters"].as_array().unwrap();
        let f = |t: &str| filters.iter().find(|f| f["filterType"] == t).unwrap_or_else(|| panic!("{name}: {t}"));
        ticks.insert(f("PRICE_FILTER")["tickSize"].as_str().unwrap().to_string());
        assert!(f("LOT_SIZE")["stepSize"].as_str().is_some());
    }
    assert!(ticks.len() >= 8, "{ticks:?}");

    // One symbol, and several as Binance takes them: a URL-encoded JSON array.
    let break_sym = symbols.iter().find(|s| s["status"] == "BREAK").unwrap()["symbol"].as_str().unwrap().to_string();
    let r = get(&sim, &format!("/api/v3/exchangeInfo?symbol={break_sym}"));
    assert_eq!(r.json()["symbols"][0]["status"], "BREAK");
    assert_eq!(weight(&r), w0 + 20);
    let r = get(&sim, &format!("/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22{break_sym}%22%5D"));
    let v = r.json();
    let picked: Vec<&str> = v["symbols"].as_array().unwrap().iter().map(|s| s["symbol"].as_str().unwrap()).collect();
    assert_eq!(picked, ["BTCUSDT", break_sym.as_str()]);
    assert_eq!(weight(&r), w0 + 40);
    for q in ["/api/v3/exchangeInfo?symbol=NOPEUSDT", "/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22,%22NOPE%22%5D"] {
        let r = get(&sim, q);
        assert_eq!((r.status, r.body.as_str()), (400, r#"{"code":-1121,"msg":"Invalid symbol."}"#), "{q}");
    }
    // depth's symbolStatus check.
    let r = get(&sim, &format!("/api/v3/depth?symbol={break_sym}&symbolStatus=TRADING"));
    assert_eq!((r.status, r.json()["code"].as_i64()), (400, Some(-1220)));
    assert_eq!(get(&sim, &format!("/api/v3/depth?symbol={break_sym}&symbolStatus=BREAK")).status, 200);
    assert_eq!(get(&sim, "/api/v3/depth?symbol=BTCUSDT&symbolStatus=TRADING").status, 200);
}

#[test]
fn symbols_not_trading_are_silent_and_busy_ones_stream() {
    let sim = market(300);
    let info = get(&sim, "/api/v3/exchangeInfo").json();
    let halted: Vec<String> = info["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "TRADING")
        .map(|s| s["symbol"].as_str().unwrap().to_ascii_lowercase())
        .collect();
    // The first generated symbols are the busiest.
    let busy = info["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "TRADING" && s["baseAsset"].as_str().unwrap().starts_with("SYN"))
        .map(|s| s["symbol"].as_str().unwrap().to_ascii_lowercase())
        .unwrap();
    let mut names: Vec<String> =
        halted.iter().flat_map(|s| [format!("{s}@depth@100ms"), format!("{s}@trade")]).collect();
    names.push(format!("{busy}@depth@100ms"));
    let mut w = ws(&sim, &format!("/stream?streams={}", names.join("/")));
    let t = Instant::now();
    let mut busy_diffs = 0;
    while t.elapsed() < Duration::from_millis(1500) {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(5))).unwrap();
        assert_eq!(v["stream"], format!("{busy}@depth@100ms"), "only the trading symbol moves");
        busy_diffs += 1;
    }
    assert!(busy_diffs >= 10, "{busy_diffs}");
}

#[test]
fn two_thousand_symbols_start_quickly_and_stream_over_several_connections() {
    let t = Instant::now();
    let sim = market(2000);
    let started = t.elapsed();
    assert_eq!(sim.symbols().len(), 2001);
    assert!(started < Duration::from_secs(20), "{started:?}");
    // Every generated symbol's depth, trade and bookTicker: 6000 streams, so 6 connections at
    // 1000 each.
    let names: Vec<String> = (0..2000)
        .map(|i| tickfeed_sim::SymbolSpec::generated(i, 1).lower())
        .flat_map(|s| [format!("{s}@depth@100ms"), format!("{s}@trade"), format!("{s}@bookTicker")])
        .collect();
    let conns: Vec<_> = names.chunks(1000).map(|c| ws(&sim, &format!("/stream?streams={}", c.join("/")))).collect();
    assert_eq!(conns.len(), 6);
    // One reader per connection, as a client would run them.
    let readers: Vec<_> = conns
        .into_iter()
        .map(|mut w| {
            std::thread::spawn(move || {
                let mut seen = std::collections::HashSet::new();
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(2) {
                    let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(5))).unwrap();
                    seen.insert(v["data"]["s"].as_str().unwrap().to_string());
                }
                seen
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for r in readers {
        let s = r.join().unwrap();
        assert!(!s.is_empty(), "every connection streams");
        seen.extend(s);
    }
    assert!(seen.len() > 300, "{} symbols seen", seen.len());
    let c = sim.counters();
    assert_eq!((c.streams_refused, c.disconnects_slow_consumer), (0, 0));
}
