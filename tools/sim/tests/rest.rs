//! REST as a client sees it: depth shapes and limits, weights, exchangeInfo, Binance's error
//! bodies, injected 429/418 with Retry-After, slow answers, keep-alive.

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tickfeed_sim::{decimal::parse_units, Pacing, RestReject, Sim, SimConfig, SimHandle};
use util::get;

fn sim(levels: usize) -> SimHandle {
    Sim::start(SimConfig { tls: false, pacing: Pacing::Rate(2_000), levels_per_side: levels, ..SimConfig::default() })
        .unwrap()
}

fn side(v: &serde_json::Value) -> Vec<(i64, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let p = l[0].as_str().unwrap();
            let q = l[1].as_str().unwrap();
            assert_eq!(p.split('.').nth(1).map(str::len), Some(8), "8-decimal price {p}");
            assert_eq!(q.split('.').nth(1).map(str::len), Some(8), "8-decimal qty {q}");
            (parse_units(p).unwrap(), parse_units(q).unwrap())
        })
        .collect()
}

#[test]
fn depth_levels_best_first_limit_and_weights() {
    let sim = sim(6000);
    let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=5");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    assert!(r.body.starts_with("{\"lastUpdateId\":"), "{}", r.body);
    let v = r.json();
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["asks", "bids", "lastUpdateId"]);
    let (bids, asks) = (side(&v["bids"]), side(&v["asks"]));
    assert_eq!((bids.len(), asks.len()), (5, 5));
    assert!(bids.windows(2).all(|w| w[0].0 > w[1].0), "bids best (highest) first");
    assert!(asks.windows(2).all(|w| w[0].0 < w[1].0), "asks best (lowest) first");
    assert!(bids[0].0 < asks[0].0);
    let w0: u32 = r.header("x-mbx-used-weight-1m").unwrap().parse().unwrap();

    let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT");
    assert_eq!(side(&r.json()["bids"]).len(), 100, "default limit 100");
    let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=101");
    assert_eq!(side(&r.json()["asks"]).len(), 101);
    let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=1000");
    let r2 = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=9999");
    let v2 = r2.json();
    assert_eq!(side(&v2["bids"]).len(), 5000, "over 5000 is truncated to 5000");
    let r3 = get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT");
    let w = |r: &util::HttpResponse| r.header("x-mbx-used-weight-1m").unwrap().parse::<u32>().unwrap();
    // 5 (limit 5), 5 (default), 25 (101), 50 (1000), 250 (>5000), 20 (exchangeInfo). The window is a
    // wall-clock minute: if it rolled over mid-test the sums restart, so accept either.
    let total = w(&r3);
    if total > w0 {
        assert_eq!(w(&r), w0 + 5 + 25 + 50);
        assert_eq!(w(&r2), w0 + 5 + 25 + 50 + 250);
        assert_eq!(total, w0 + 5 + 25 + 50 + 250 + 20);
    }
    assert!(w0 >= 5);
}

#[test]
fn depth_matches_reference_and_errors_are_binance_shaped() {
    let sim = sim(400);
    let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=5000");
    let v = r.json();
    let id = v["lastUpdateId"].as_u64().unwrap();
    let reference = sim.reference_book("BTCUSDT", id).expect("REST id is a reference id");
    let bids = side(&v["bids"]);
    assert_eq!(bids.len(), reference.bids.len());
    assert!(bids.iter().zip(&reference.bids).all(|(a, b)| a.0 == b.price && a.1 == b.qty));

    for (q, status, body) in [
        ("/api/v3/depth?symbol=FOOBAR", 400, r#"{"code":-1121,"msg":"Invalid symbol."}"#),
        ("/api/v3/depth?symbol=btcusdt", 400, r#"{"code":-1121,"msg":"Invalid symbol."}"#),
        ("/api/v3/exchangeInfo?symbol=NOPE", 400, r#"{"code":-1121,"msg":"Invalid symbol."}"#),
        (
            "/api/v3/depth",
            400,
            r#"{"code":-1102,"msg":"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}"#,
        ),
        (
            "/api/v3/depth?symbol=BTCUSDT&limit=abc",
            400,
            r#"{"code":-1100,"msg":"Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}"#,
        ),
        ("/api/v3/ping", 200, "{}"),
    ] {
        let r = get(&sim, q);
        assert_eq!((r.status, r.body.as_str()), (status, body), "{q}");
        assert!(r.header("x-mbx-used-weight-1m").is_some());
    }
    assert_eq!(get(&sim, "/nope").status, 404);
}

#[test]
fn exchange_info_has_filters() {
    let sim = sim(200);
    let v = get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT").json();
    assert_eq!(v["timezone"], "UTC");
    assert_eq!(v["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT");
    let s = &v["symbols"][0];
    assert_eq!(
        (s["symbol"].as_str(), s["baseAsset"].as_str(), s["quoteAsset"].as_str()),
        (Some("BTCUSDT"), Some("BTC"), Some("USDT"))
    );
    let filters = s["filters"].as_array().unwrap();
    let f = |t: &str| filters.iter().find(|f| f["filterType"] == t).unwrap().clone();
    assert_eq!(f("PRICE_FILTER")["tickSize"], "0.01000000");
    assert_eq!(f("LOT_SIZE")["stepSize"], "0.00001000");
    assert_eq!(f("LOT_SIZE")["minQty"], "0.00001000");
    let all = get(&sim, "/api/v3/exchangeInfo").json();
    assert_eq!(all["symbols"].as_array().unwrap().len(), 1);
    let some = get(&sim, "/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22%5D").json();
    assert_eq!(some["symbols"][0]["symbol"], "BTCUSDT");
}

#[test]
fn injected_429_418_and_delay() {
    // Back-to-back requests after a 429 would start a ban (tests/laws.rs): not this test's subject.
    let sim = Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::Rate(2_000),
        levels_per_side: 200,
        rest_ban_first: None,
        ..SimConfig::default()
    })
    .unwrap();
    let f = sim.faults();
    f.reject_rest(RestReject::TooManyRequests, 2, 7);
    for _ in 0..2 {
        let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=10");
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("7"));
        assert_eq!(r.json()["code"], -1003);
    }
    assert_eq!(get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=10").status, 200, "only the next K");
    f.reject_rest(RestReject::Banned, 1, 120);
    let r = get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT");
    assert_eq!(r.status, 418);
    assert_eq!(r.header("retry-after"), Some("120"));
    assert!(r.json()["msg"].as_str().unwrap().contains("banned until"));
    assert_eq!(get(&sim, "/api/v3/exchangeInfo?symbol=BTCUSDT").status, 200);
    let c = sim.counters();
    assert_eq!((c.rest_429_sent, c.rest_418_sent), (2, 1));
    // Per path, rejected requests included.
    assert_eq!((c.depth_requests, c.exchange_info_requests, c.rest_requests), (3, 2, 5));

    f.set_rest_delay(Some(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=10").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    f.set_rest_delay(None);
    assert_eq!(sim.counters().rest_delayed, 1);
}

#[test]
fn weight_limit_answers_429() {
    let sim =
        Sim::start(SimConfig { tls: false, levels_per_side: 200, weight_limit: Some(300), ..SimConfig::default() })
            .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=5000");
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
        }
    }
    // 250 fits; 500 does not (unless the wall-clock minute rolled over in between).
    assert_eq!(statuses[0], 200);
    assert!(statuses[1] == 429 || statuses[2] == 429, "{statuses:?}");
}

#[test]
fn keep_alive_serves_several_requests() {
    let sim = sim(100);
    let mut s = util::connect(&sim);
    let mut all = Vec::new();
    s.write_all(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\nGET /api/v3/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8(all).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(text.contains("{\"serverTime\":"));
}
