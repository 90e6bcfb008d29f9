//! The simulator's USDⓈ-M futures mode as a client sees it on the wire: `/fapi/v1` REST at
//! futures weights and limits, depth diffs whose ids skip and chain by `pu`, a client following
//! the futures procedure converging to the reference book, the `/public` and `/market` path
//! tiers, and futures' connection law (10 incoming messages a second, a 3-minute ping).

mod util;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tickfeed_sim::{decimal::parse_units, FaultPlan, Pacing, Sim, SimConfig, SimHandle, Venue};
use tungstenite::Message;
use util::{get, next_text, wait_for, ws, RawWs};

fn futures_sim(faults: FaultPlan) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::Rate(2_000),
        levels_per_side: 600,
        faults,
        venue: Venue::UsdM,
        ..SimConfig::default()
    })
    .unwrap()
}

fn no_ping() -> FaultPlan {
    FaultPlan { ping_interval: None, ..FaultPlan::default() }
}

#[test]
fn rest_is_fapi_v1_at_futures_weights_and_limits() {
    let sim = futures_sim(no_ping());
    let r = get(&sim, "/fapi/v1/depth?symbol=BTCUSDT&limit=5");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("X-MBX-USED-WEIGHT-1M"), Some("2"));
    let v = r.json();
    assert!(v["E"].is_i64() && v["T"].is_i64() && v["lastUpdateId"].is_u64(), "{}", r.body);
    let bid = v["bids"][0][0].as_str().unwrap();
    assert_eq!(bid.split('.').nth(1).map(str::len), Some(2), "price at precision 2: {bid}");
    assert_eq!(v["bids"].as_array().unwrap().len(), 5);
    for (limit, used) in [(10, 4), (50, 6), (100, 11), (500, 21), (1000, 41)] {
        let r = get(&sim, &format!("/fapi/v1/depth?symbol=BTCUSDT&limit={limit}"));
        assert_eq!((r.status, r.header("X-MBX-USED-WEIGHT-1M")), (200, Some(used.to_string().as_str())), "{limit}");
    }
    let r = get(&sim, "/fapi/v1/depth?symbol=BTCUSDT&limit=200");
    assert_eq!((r.status, r.json()["code"].as_i64()), (400, Some(-1130)), "200 is not a futures limit");
    let r = get(&sim, "/fapi/v1/exchangeInfo");
    assert_eq!(r.status, 200);
    let info = r.json();
    assert_eq!(info["rateLimits"][0]["limit"], 2400);
    assert_eq!(info["symbols"][0]["contractType"], "PERPETUAL");
    assert_eq!(info["symbols"][0]["pricePrecision"], 2);
    assert_eq!(get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=5").status, 404, "no spot paths on futures");
}

#[test]
fn the_429_comes_at_2400_a_minute() {
    let sim = futures_sim(no_ping());
    // 1000-level snapshots weigh 20: the 121st passes 2400.
    let mut first_429 = None;
    for i in 1..=125 {
        let r = get(&sim, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000");
        if r.status == 429 {
            first_429 = Some(i);
            assert!(r.header("Retry-After").is_some());
            break;
        }
    }
    // A minute boundary inside the loop resets the count: then the 429 comes later or not at all.
    if let Some(i) = first_429 {
        assert!(i >= 121, "429 at request {i}");
    }
}

/// A client keeping a book by the futures procedure: ids skip, `pu` chains the diffs.
#[test]
fn a_futures_client_converges_to_the_reference_and_a_dropped_diff_breaks_pu() {
    let sim = futures_sim(no_ping());
    let mut w = ws(&sim, "/public/stream?streams=btcusdt@depth@100ms");
    let mut buffered: Vec<Value> = Vec::new();
    for _ in 0..3 {
        buffered.push(serde_json::from_str::<Value>(&next_text(&mut w, Duration::from_secs(5))).unwrap());
    }
    let snap = get(&sim, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000").json();
    let lid = snap["lastUpdateId"].as_u64().unwrap();
    let mut book: [BTreeMap<i64, i64>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let apply = |book: &mut [BTreeMap<i64, i64>; 2], side: usize, levels: &Value| {
        for l in levels.as_array().unwrap() {
            let (p, q) = (parse_units(l[0].as_str().unwrap()).unwrap(), parse_units(l[1].as_str().unwrap()).unwrap());
            if q == 0 {
                book[side].remove(&p);
            } else {
                book[side].insert(p, q);
            }
        }
    };
    apply(&mut book, 0, &snap["bids"]);
    apply(&mut book, 1, &snap["asks"]);
    let (mut last_u, mut started, mut skips, mut checked) = (lid, false, 0, 0);
    let mut gap_seen = false;
    for i in 0..200 {
        if i == 100 {
            sim.faults().drop_next_diff();
        }
        let d = if let Some(d) = buffered.first().cloned() {
            buffered.remove(0);
            d
        } else {
            serde_json::from_str::<Value>(&next_text(&mut w, Duration::from_secs(5))).unwrap()
        };
        let d = &d["data"];
        let (uu, u, pu) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap(), d["pu"].as_u64().unwrap());
        assert!(d["T"].is_i64());
        if !started {
            if u < lid {
                continue;
            }
            assert!(uu <= lid && lid <= u, "first event U={uu} u={u} around lastUpdateId={lid}");
            started = true;
        } else if pu != last_u {
            assert!(i >= 100, "pu breaks only after the injected drop");
            gap_seen = true;
            break;
        } else if uu > last_u + 1 {
            skips += 1;
        }
        apply(&mut book, 0, &d["b"]);
        apply(&mut book, 1, &d["a"]);
        last_u = u;
        if let Some(r) = sim.reference_book("BTCUSDT", u) {
            let bids: Vec<(i64, i64)> = r.bids.iter().map(|l| (l.price, l.qty)).collect();
            let mine: Vec<(i64, i64)> = book[0].iter().rev().take(bids.len().min(200)).map(|(&p, &q)| (p, q)).collect();
            assert_eq!(mine, bids[..mine.len()], "bids at u={u}");
            checked += 1;
        }
    }
    assert!(started && gap_seen, "the dropped diff shows as a pu break");
    assert!(skips > 10, "futures ids skip between diffs: {skips}");
    assert!(checked > 10, "{checked}");
}

#[test]
fn streams_go_to_their_path_tier_only() {
    let sim = futures_sim(no_ping());
    // aggTrade on /market; on /public (and the legacy path) it is taken and never delivered.
    let mut m = ws(&sim, "/market/stream?streams=btcusdt@aggTrade");
    let v: Value = serde_json::from_str(&next_text(&mut m, Duration::from_secs(5))).unwrap();
    assert_eq!(v["data"]["e"], "aggTrade");
    let mut p = ws(&sim, "/public/stream?streams=btcusdt@aggTrade/btcusdt@trade");
    for _ in 0..50 {
        let v: Value = serde_json::from_str(&next_text(&mut p, Duration::from_secs(5))).unwrap();
        assert_eq!(v["stream"], "btcusdt@trade", "aggTrade is not served on /public");
        assert_eq!(v["data"]["X"], "MARKET");
    }
    let mut legacy = ws(&sim, "/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker");
    for _ in 0..20 {
        let v: Value = serde_json::from_str(&next_text(&mut legacy, Duration::from_secs(5))).unwrap();
        assert_eq!(v["stream"], "btcusdt@bookTicker", "the legacy path carries /public streams only");
        assert!(v["data"]["E"].is_i64() && v["data"]["T"].is_i64() && v["data"]["u"].is_u64());
    }
    // depth on /market is silent too.
    let _d = ws(&sim, "/market/stream?streams=btcusdt@depth@100ms");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().wrong_tier_streams >= 3));
}

#[test]
fn futures_allows_ten_incoming_messages_a_second_and_pings_every_three_minutes() {
    let sim = futures_sim(FaultPlan::default());
    let mut ok = ws(&sim, "/public/ws");
    for id in 0..10 {
        ok.send(Message::text(format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#))).unwrap();
        assert_eq!(next_text(&mut ok, Duration::from_secs(5)), format!(r#"{{"result":[],"id":{id}}}"#));
    }
    let mut raw = RawWs::open(&sim, "/public/ws");
    for _ in 0..11 {
        raw.send(0x9, b"hi").unwrap();
    }
    let mut code = None;
    while let Ok(f) = raw.read_frame() {
        if f.opcode == 0x8 {
            code = Some(u16::from_be_bytes([f.payload[0], f.payload[1]]));
            break;
        }
    }
    assert_eq!(code, Some(1008), "the eleventh message in a second closes");
    // No ping within the first seconds (spot would ping at 20 s; futures at 180 s).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sim.counters().pings_sent, 0);
    assert_eq!(FaultPlan::default().for_usdm().ping_interval, Some(Duration::from_secs(180)));
    assert_eq!(FaultPlan::default().for_usdm().pong_timeout, Duration::from_secs(600));
    let fast = FaultPlan { ping_interval: Some(Duration::from_millis(200)), ..FaultPlan::default() };
    assert_eq!(fast.for_usdm().ping_interval, Some(Duration::from_millis(200)), "a test's own period is kept");
}
